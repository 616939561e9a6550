//! Looking at what real xpra peers put on the wire: frame headers, the packet type inside a
//! frame, a listener that keeps a client's first bytes, a tap between a client and a server
//! that records every frame, and a fake server that answers a hello with one packet.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The 8-byte header in front of every xpra frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Byte 1: encoder (0x01 rencode, 0x10 rencodeplus, 0x04 yaml, none = bencode), 0x02 cipher.
    pub flags: u8,
    /// Byte 2: level in the low nibble, algorithm in the high one (none = zlib).
    pub compression: u8,
    /// Byte 3: 0 for a packet, > 0 for a raw chunk sent ahead of it.
    pub index: u8,
    pub size: u32,
}

/// What the compression byte says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib(u8),
    Lz4(u8),
    Lzo(u8),
    Brotli(u8),
}

impl FrameHeader {
    /// Parses a header; `None` without the `P` magic.
    pub fn parse(b: [u8; 8]) -> Option<Self> {
        (b[0] == b'P').then(|| Self {
            flags: b[1],
            compression: b[2],
            index: b[3],
            size: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    pub fn compression(&self) -> Compression {
        let level = self.compression & 0x0f;
        match self.compression & 0xf0 {
            _ if level == 0 => Compression::None,
            0x10 => Compression::Lz4(level),
            0x20 => Compression::Lzo(level),
            0x40 => Compression::Brotli(level),
            _ => Compression::Zlib(level),
        }
    }
}

/// The first item of a packet: its type, by name or by the number the receiver asked for.
/// After the hellos, 3.1.3 peers send most packets under the numeric aliases the other side
/// listed in its hello (`aliases`), and the server's own hello already uses the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketType {
    Name(String),
    Alias(i64),
}

/// The packet type of a main frame's payload, when the frame is not encrypted, uses zlib,
/// lz4 or nothing, and is rencode or bencode.
pub fn packet_type(h: &FrameHeader, payload: &[u8]) -> Option<PacketType> {
    if h.index != 0 || h.flags & 0x02 != 0 {
        return None;
    }
    let plain = match h.compression() {
        Compression::None => payload.to_vec(),
        Compression::Zlib(_) => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(payload)
                .read_to_end(&mut out)
                .ok()?;
            out
        }
        Compression::Lz4(_) => {
            // python-lz4's block format: uncompressed size (u32 LE), then the block.
            let size = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
            lz4_flex::block::decompress(&payload[4..], size).ok()?
        }
        _ => return None,
    };
    match (h.flags & 0x01 != 0, plain.first()?) {
        (true, 192..=255 | 59) => decode_rencode_head(&plain[1..]),
        (false, b'l') => decode_bencode_head(&plain[1..]),
        _ => None,
    }
}

fn decode_rencode_head(b: &[u8]) -> Option<PacketType> {
    let int = |n: usize| -> Option<i64> {
        let raw = b.get(1..1 + n)?;
        let mut v = if raw[0] & 0x80 != 0 { -1i64 } else { 0 };
        for &byte in raw {
            v = (v << 8) | byte as i64;
        }
        Some(v)
    };
    let name = |s: &[u8]| Some(PacketType::Name(String::from_utf8(s.to_vec()).ok()?));
    match *b.first()? {
        n @ 0..=43 => Some(PacketType::Alias(n as i64)),
        n @ 70..=101 => Some(PacketType::Alias(-(n as i64 - 69))),
        62 => int(1).map(PacketType::Alias),
        63 => int(2).map(PacketType::Alias),
        64 => int(4).map(PacketType::Alias),
        65 => int(8).map(PacketType::Alias),
        n @ 128..=191 => name(b.get(1..1 + (n - 128) as usize)?),
        b'0'..=b'9' => name(decode_len_prefixed(b, b':')?),
        _ => None,
    }
}

fn decode_bencode_head(b: &[u8]) -> Option<PacketType> {
    if let Some(rest) = b.strip_prefix(b"i") {
        let end = rest.iter().position(|&c| c == b'e')?;
        let v = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        return Some(PacketType::Alias(v));
    }
    let s = decode_len_prefixed(b, b':')?;
    Some(PacketType::Name(String::from_utf8(s.to_vec()).ok()?))
}

fn decode_len_prefixed(b: &[u8], sep: u8) -> Option<&[u8]> {
    let colon = b.iter().position(|&c| c == sep)?;
    let len: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
    b.get(colon + 1..colon + 1 + len)
}

/// rencode of a list of strings, e.g. `["disconnect", "no sessions found"]`.
pub fn rencode_strings(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    if items.len() < 64 {
        out.push(192 + items.len() as u8);
    } else {
        out.push(59);
    }
    for s in items {
        if s.len() < 64 {
            out.push(128 + s.len() as u8);
        } else {
            out.extend_from_slice(format!("{}:", s.len()).as_bytes());
        }
        out.extend_from_slice(s.as_bytes());
    }
    if items.len() >= 64 {
        out.push(127);
    }
    out
}

/// A whole uncompressed rencode frame carrying `payload`.
pub fn rencode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b'P', 0x01, 0x00, 0x00];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame; `Ok(None)` at a clean EOF before it.
pub fn read_frame(s: &mut impl Read) -> std::io::Result<Option<(FrameHeader, Vec<u8>)>> {
    let mut raw = [0u8; 8];
    match s.read_exact(&mut raw) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let h = FrameHeader::parse(raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not xpra: {raw:02x?}"),
        )
    })?;
    if h.size > 256 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut payload = vec![0u8; h.size as usize];
    s.read_exact(&mut payload)?;
    Ok(Some((h, payload)))
}

/// Accepts one connection and keeps the first 8 bytes the peer sends, then closes it.
pub struct HeaderTrap {
    pub addr: SocketAddr,
    rx: mpsc::Receiver<std::io::Result<[u8; 8]>>,
}

impl HeaderTrap {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut b = [0u8; 8];
            let _ = tx.send(s.read_exact(&mut b).map(|_| b));
        });
        Self { addr, rx }
    }

    /// The first 8 bytes of the first connection.
    pub fn first_bytes(&self, timeout: Duration) -> Result<[u8; 8], String> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!(
                "no connection with 8 bytes within {timeout:?}: {e}"
            )),
        }
    }
}

/// Which way a frame went through a [`FrameTap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

/// One frame seen by a [`FrameTap`].
#[derive(Debug, Clone)]
pub struct Frame {
    pub dir: Dir,
    pub header: FrameHeader,
    pub packet_type: Option<PacketType>,
}

/// A loopback forwarder between xpra clients and one server that records every frame header
/// (and packet type) in both directions while passing the bytes through unchanged.
pub struct FrameTap {
    pub addr: SocketAddr,
    frames: Arc<Mutex<Vec<Frame>>>,
}

impl FrameTap {
    pub fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let frames = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&frames);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(server) else {
                    continue;
                };
                for (from, to, dir) in [
                    (&client, &upstream, Dir::ClientToServer),
                    (&upstream, &client, Dir::ServerToClient),
                ] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let log = Arc::clone(&log);
                    thread::spawn(move || pump(from, to, dir, &log));
                }
            }
        });
        Self { addr, frames }
    }

    /// The frames seen so far, in the order each direction carried them.
    pub fn frames(&self) -> Vec<Frame> {
        self.frames.lock().unwrap().clone()
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, dir: Dir, log: &Mutex<Vec<Frame>>) {
    while let Ok(Some((header, payload))) = read_frame(&mut from) {
        let packet_type = packet_type(&header, &payload);
        log.lock().unwrap().push(Frame {
            dir,
            header,
            packet_type,
        });
        let mut raw = vec![b'P', header.flags, header.compression, header.index];
        raw.extend_from_slice(&header.size.to_be_bytes());
        raw.extend_from_slice(&payload);
        if to.write_all(&raw).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// A fake xpra server: reads the client's first frame (its hello), answers with one
/// uncompressed rencode packet made of `reply` strings, then waits for the client to close.
pub struct FakeServer {
    pub addr: SocketAddr,
    hello: mpsc::Receiver<FrameHeader>,
}

impl FakeServer {
    pub fn reply_with(reply: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let frame = rencode_frame(&rencode_strings(reply));
        let (tx, hello) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let Ok(Some((h, _))) = read_frame(&mut s) else {
                return;
            };
            let _ = tx.send(h);
            if s.write_all(&frame).is_ok() {
                let mut sink = [0u8; 4096];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            }
        });
        Self { addr, hello }
    }

    /// The header of the hello the client sent.
    pub fn hello_header(&self, timeout: Duration) -> Option<FrameHeader> {
        self.hello.recv_timeout(timeout).ok()
    }
}
