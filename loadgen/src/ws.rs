//! `--protocol ws`: loadgen's client behind a WebSocket, as a browser's remote-desktop client
//! reaches a gateway that bridges it to TCP by token (deskrelay's `--tokens`, websockify's
//! `TokenFile`).
//!
//! - Set-up (the handshake): `GET /?token=T` with the upgrade headers (`Sec-WebSocket-Version:
//!   13`, a fresh `Sec-WebSocket-Key`, `Sec-WebSocket-Protocol: binary`); the answer must be
//!   `101` with the right `Sec-WebSocket-Accept`, `binary` or no subprotocol, and no extension.
//!   Then the raw protocol's hello goes up inside a frame, as every message after it.
//! - Upstream: each loadgen message (header and pattern payload, unchanged) is one final
//!   binary frame, masked with a fresh key ([`client_frame`]); the direction ends with a
//!   [`Kind::End`] header in a frame, because a WebSocket has no half-close (websockify tears
//!   the target connection down when the client closes, and deskrelay would answer a close
//!   frame at once).
//! - Downstream: the server's unmasked frames ([`FrameReader`], hand-rolled here so loadgen
//!   does not read frames with the code it measures) are a byte stream: frame boundaries mean
//!   nothing, fragments are joined, pings and pongs skipped (loadgen writes no pong: the
//!   relays under test send no pings unless told to). The payload goes to the raw protocol's
//!   verifier; a close frame with code 1000 (or none) ends the direction, any other code
//!   fails it. The client then answers with its own close frame.
//! - Backends speak the raw protocol (the relay strips the WebSocket layer), ending their
//!   direction with FIN once the client's end marker arrived; the relay turns that FIN into
//!   its close frame.

use std::cell::Cell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};
use deskrelay::front::ws::apply_mask;

use crate::decode::Decoder;
use crate::net::Conn;
use crate::protocol::SetupError;
use crate::wire::{Header, Kind, Pattern, WireError, HEADER_LEN};

/// Frame opcodes (RFC 6455 §5.2).
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;
/// Largest control frame payload.
const MAX_CONTROL: usize = 125;
/// Longest frame header: 2 bytes, a 64-bit length, a masking key.
const MAX_HEADER: usize = 14;
/// Largest response head read during the upgrade.
const MAX_HEAD: usize = 8 * 1024;
/// The close code of a normal end, and the one that stands for "no code given".
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_NO_STATUS: u16 = 1005;

// ---------------------------------------------------------------------------------------
// Client frames

thread_local! {
    static MASK_STATE: Cell<u64> = const { Cell::new(0) };
}

/// A fresh masking key. RFC 6455 wants them unpredictable to a page's script (against cache
/// poisoning of intermediaries); for a load generator on loopback a xorshift seeded from the
/// clock and the thread suffices, and keys still vary frame to frame.
fn mask_key() -> [u8; 4] {
    MASK_STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let local = 0u8;
            x = crate::net::now_ns() ^ (&local as *const u8 as u64).rotate_left(32) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 16) as u32).to_le_bytes()
    })
}

/// Appends one final client frame of `opcode` whose payload is `parts` joined, masked with
/// a fresh key.
pub fn client_frame(opcode: u8, parts: &[&[u8]], out: &mut Vec<u8>) {
    client_frame_with_key(opcode, parts, mask_key(), out)
}

fn client_frame_with_key(opcode: u8, parts: &[&[u8]], key: [u8; 4], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(MAX_HEADER + len);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let start = out.len();
    for p in parts {
        out.extend_from_slice(p);
    }
    apply_mask(&mut out[start..], key, 0);
}

/// The client's frame of a message: header and payload.
pub fn message_frame(h: &Header, payload: &[u8], out: &mut Vec<u8>) {
    client_frame(OP_BINARY, &[&h.encode(), payload], out)
}

/// The client's end of upstream: the end marker of `session` in a binary frame.
pub fn end_frame(session: u32) -> Vec<u8> {
    let end = Header {
        kind: Kind::End,
        session,
        len: 0,
        seq: 0,
        due_ns: 0,
    };
    let mut out = Vec::new();
    client_frame(OP_BINARY, &[&end.encode()], &mut out);
    out
}

/// The client's close frame (code 1000), answering the server's.
pub fn close_frame() -> Vec<u8> {
    let mut out = Vec::new();
    client_frame(OP_CLOSE, &[&CLOSE_NORMAL.to_be_bytes()], &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// Server frames

fn framing(what: &'static str) -> WireError {
    WireError::WebSocket(what)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a frame header.
    Header,
    /// Payload bytes of a data frame still to come; `fin`: the frame ends its message.
    Data { left: u64, fin: bool },
    /// A control frame's payload still to come.
    Control { opcode: u8, left: usize },
}

/// The server's frames as a byte stream: [`FrameReader::feed`] hands over each piece of data
/// payload as it arrives (nothing is buffered but a header or a control frame).
#[derive(Debug)]
pub struct FrameReader {
    hdr: [u8; MAX_HEADER],
    hdr_fill: usize,
    state: State,
    /// A data message goes on in continuation frames.
    fragmented: bool,
    control: Vec<u8>,
    closed: bool,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

/// How long the header that starts with `h` is, as far as `h` tells (2 until it has 2 bytes).
fn header_len(h: &[u8]) -> usize {
    if h.len() < 2 {
        return 2;
    }
    let ext = match h[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if h[1] & 0x80 != 0 { 4 } else { 0 }
}

impl FrameReader {
    pub fn new() -> Self {
        Self {
            hdr: [0; MAX_HEADER],
            hdr_fill: 0,
            state: State::Header,
            fragmented: false,
            control: Vec::with_capacity(MAX_CONTROL),
            closed: false,
        }
    }

    /// True once the server's close frame (code 1000 or none) has arrived.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Consumes `buf`, calling `payload` with each piece of data payload in order. A close
    /// frame with a code other than 1000 is [`WireError::WsClosed`]; bytes after a close
    /// frame are an error.
    pub fn feed(
        &mut self,
        mut buf: &[u8],
        mut payload: impl FnMut(&[u8]) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        while !buf.is_empty() {
            if self.closed {
                return Err(framing("bytes after the close frame"));
            }
            match self.state {
                State::Header => {
                    let need = header_len(&self.hdr[..self.hdr_fill]);
                    let take = (need - self.hdr_fill).min(buf.len());
                    self.hdr[self.hdr_fill..self.hdr_fill + take].copy_from_slice(&buf[..take]);
                    self.hdr_fill += take;
                    buf = &buf[take..];
                    if self.hdr_fill == header_len(&self.hdr[..self.hdr_fill]) {
                        self.hdr_fill = 0;
                        self.start_frame()?;
                    }
                }
                State::Data { left, fin } => {
                    let take = left.min(buf.len() as u64) as usize;
                    payload(&buf[..take])?;
                    buf = &buf[take..];
                    self.state = State::Data {
                        left: left - take as u64,
                        fin,
                    };
                    self.end_data_frame();
                }
                State::Control { opcode, left } => {
                    let take = left.min(buf.len());
                    self.control.extend_from_slice(&buf[..take]);
                    buf = &buf[take..];
                    self.state = State::Control {
                        opcode,
                        left: left - take,
                    };
                    self.end_control_frame()?;
                }
            }
        }
        Ok(())
    }

    /// A whole header sits in `hdr`: checks it and enters its payload.
    fn start_frame(&mut self) -> Result<(), WireError> {
        let h = &self.hdr;
        let fin = h[0] & 0x80 != 0;
        if h[0] & 0x70 != 0 {
            return Err(framing("reserved bits set (no extension was negotiated)"));
        }
        if h[1] & 0x80 != 0 {
            return Err(framing("a masked frame from the server"));
        }
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes([h[2], h[3]]) as u64,
            127 => {
                let len = u64::from_be_bytes(h[2..10].try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(framing("a 64-bit length with its top bit set"));
                }
                len
            }
            n => n as u64,
        };
        let opcode = h[0] & 0x0f;
        match opcode {
            OP_CONTINUATION if !self.fragmented => {
                return Err(framing("a continuation frame outside a message"))
            }
            OP_BINARY if self.fragmented => {
                return Err(framing("a new message inside a fragmented one"))
            }
            OP_CONTINUATION | OP_BINARY => {
                self.state = State::Data { left: len, fin };
                self.end_data_frame();
            }
            OP_TEXT => return Err(framing("a text frame (the stream is binary)")),
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(framing("a fragmented control frame"));
                }
                if len > MAX_CONTROL as u64 {
                    return Err(framing("a control frame over 125 bytes"));
                }
                self.control.clear();
                self.state = State::Control {
                    opcode,
                    left: len as usize,
                };
                self.end_control_frame()?;
            }
            _ => return Err(framing("a reserved opcode")),
        }
        Ok(())
    }

    fn end_data_frame(&mut self) {
        if let State::Data { left: 0, fin } = self.state {
            self.fragmented = !fin;
            self.state = State::Header;
        }
    }

    fn end_control_frame(&mut self) -> Result<(), WireError> {
        let State::Control { opcode, left: 0 } = self.state else {
            return Ok(());
        };
        self.state = State::Header;
        if opcode != OP_CLOSE {
            return Ok(()); // ping, pong
        }
        self.closed = true;
        let code = match self.control.as_slice() {
            [] => CLOSE_NO_STATUS,
            [_] => return Err(framing("a close frame with a 1-byte body")),
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
        };
        if code != CLOSE_NORMAL && code != CLOSE_NO_STATUS {
            return Err(WireError::WsClosed {
                code,
                reason: String::from_utf8_lossy(&self.control[2..]).into_owned(),
            });
        }
        Ok(())
    }

    /// At end of stream: an error unless the close frame came first.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.closed {
            Ok(())
        } else if self.state != State::Header || self.hdr_fill > 0 {
            Err(WireError::Truncated)
        } else {
            Err(framing("the connection ended without a close frame"))
        }
    }
}

/// The client's downstream receiver: server frames unwrapped, every message verified.
pub struct Unframer {
    frames: FrameReader,
    inner: Decoder,
}

impl Unframer {
    pub fn new(session: u32) -> Self {
        Self {
            frames: FrameReader::new(),
            inner: Decoder::new(session),
        }
    }

    pub fn feed(
        &mut self,
        pattern: &Pattern,
        buf: &[u8],
        mut done: impl FnMut(&Header),
    ) -> Result<(), WireError> {
        let inner = &mut self.inner;
        self.frames
            .feed(buf, |piece| inner.feed(pattern, piece, &mut done))
    }

    /// True once the server's close frame arrived.
    pub fn ended(&self) -> bool {
        self.frames.closed()
    }

    pub fn finish(&self) -> Result<(), WireError> {
        self.frames.finish()?;
        self.inner.finish()
    }
}

// ---------------------------------------------------------------------------------------
// The upgrade

/// The upgrade request for `token` (none: `GET /`, for a relay with one fixed target).
fn request(host: SocketAddr, token: Option<&str>, key: &str) -> String {
    let path = match token {
        Some(t) => format!("/?token={t}"),
        None => "/".into(),
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
}

/// The length of the response head in `buf` once it is whole and accepts the upgrade.
fn response(buf: &[u8], key: &str) -> Result<Option<usize>, SetupError> {
    let bad = |what: String| SetupError::Protocol(format!("ws: {what}"));
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("bad HTTP response: {e}"))),
    };
    let code = r.code.unwrap_or(0);
    if code != 101 {
        return Err(SetupError::Refused(format!(
            "HTTP {code} {}",
            r.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err(bad(
            "101 without Upgrade: websocket / Connection: Upgrade".into()
        ));
    }
    let want = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if header("sec-websocket-accept").as_deref() != Some(want.as_str()) {
        return Err(bad("wrong Sec-WebSocket-Accept".into()));
    }
    if let Some(p) = header("sec-websocket-protocol").filter(|p| p != "binary") {
        return Err(bad(format!("subprotocol {p:?}, asked for binary")));
    }
    if header("sec-websocket-extensions").is_some() {
        return Err(bad("an extension nobody asked for".into()));
    }
    Ok(Some(len))
}

fn raw_hello(session: u32) -> Header {
    Header {
        kind: Kind::Hello,
        session,
        len: 0,
        seq: 0,
        due_ns: 0,
    }
}

/// The client's set-up: upgrade to `token`'s target at `host`, then the raw hello in a
/// frame. With `round_trip` (the handshake profile) waits for the backend's hello back and
/// returns nothing more; else returns the bytes read past the response head (frames).
pub async fn client_handshake(
    conn: &Conn,
    session: u32,
    token: Option<&[u8]>,
    host: SocketAddr,
    round_trip: bool,
) -> Result<Vec<u8>, SetupError> {
    let token = token
        .map(std::str::from_utf8)
        .transpose()
        .map_err(|_| SetupError::Protocol("ws: a token that is not UTF-8".into()))?;
    let key = tungstenite::handshake::client::generate_key();
    conn.write_all(request(host, token, &key).as_bytes())
        .await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head = loop {
        if let Some(n) = response(&buf, &key)? {
            break n;
        }
        if buf.len() > MAX_HEAD {
            return Err(SetupError::Protocol(
                "ws: a response head over 8 KiB".into(),
            ));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(SetupError::Protocol(
                "ws: closed before answering the upgrade".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let leftover = buf.split_off(head);
    let mut hello = Vec::new();
    client_frame(OP_BINARY, &[&raw_hello(session).encode()], &mut hello);
    conn.write_all(&hello).await?;
    if !round_trip {
        return Ok(leftover);
    }
    let mut frames = FrameReader::new();
    let mut got = Vec::new();
    let mut pending = leftover;
    loop {
        frames
            .feed(&pending, |p| {
                got.extend_from_slice(p);
                Ok(())
            })
            .map_err(|e| match e {
                WireError::WsClosed { code, reason } => {
                    SetupError::Refused(format!("websocket close {code}: {reason}"))
                }
                e => SetupError::Protocol(format!("ws: {e}")),
            })?;
        if got.len() >= HEADER_LEN {
            break;
        }
        if frames.closed() {
            return Err(SetupError::Protocol(
                "ws: closed before the backend's hello".into(),
            ));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(SetupError::Protocol(
                "ws: closed before the backend's hello".into(),
            ));
        }
        pending = chunk[..n].to_vec();
    }
    let b: [u8; HEADER_LEN] = got[..HEADER_LEN].try_into().expect("32 bytes");
    if got.len() > HEADER_LEN || Header::decode(&b).ok() != Some(raw_hello(session)) {
        return Err(SetupError::Protocol("the backend's hello is wrong".into()));
    }
    Ok(Vec::new())
}

// ---------------------------------------------------------------------------------------
// Token files

/// Session `id`'s token: `s<id>-` and 24 random hex digits.
fn token(id: usize, random: &str) -> String {
    format!("s{id}-{random}")
}

/// Fresh tokens for sessions 0..`n`-1.
pub fn random_tokens(n: u32) -> io::Result<Vec<String>> {
    Ok(crate::xpra::random_passwords(n)?
        .iter()
        .enumerate()
        .map(|(i, r)| token(i, r))
        .collect())
}

/// The token file: `token: BACKEND` a line (websockify's `TokenFile` format, and deskrelay's
/// `--tokens`).
pub fn token_file_text(tokens: &[String], backend: SocketAddr) -> String {
    let mut out = Vec::new();
    for t in tokens {
        let _ = writeln!(out, "{t}: {backend}");
    }
    String::from_utf8(out).expect("ASCII")
}

/// The tokens of sessions 0..`n`-1 in an existing token file (`s<N>-...: host:port` lines);
/// warns on stderr when some do not lead to `backend`.
pub fn read_tokens(path: &Path, n: u32, backend: SocketAddr) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut found: Vec<Option<String>> = vec![None; n as usize];
    let mut elsewhere = 0;
    for line in text.lines().map(str::trim) {
        let Some((tok, target)) = line.split_once(": ") else {
            continue;
        };
        let Some(i) = tok
            .strip_prefix('s')
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(i, _)| i.parse::<usize>().ok())
            .filter(|&i| i < n as usize)
        else {
            continue;
        };
        if found[i].is_none() {
            found[i] = Some(tok.to_string());
            if target.trim() != backend.to_string() {
                elsewhere += 1;
            }
        }
    }
    if elsewhere > 0 {
        eprintln!(
            "loadgen: {elsewhere} tokens of {} do not lead to {backend}, where the backends \
             listen; their sessions will fail unless the relay forwards there anyway",
            path.display()
        );
    }
    let missing = found.iter().filter(|t| t.is_none()).count();
    if missing > 0 {
        bail!(
            "{} has no token for {missing} of the sessions 0..{}: delete it to have loadgen \
             write a new one",
            path.display(),
            n - 1
        );
    }
    Ok(found.into_iter().map(Option::unwrap_or_default).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskrelay::front::ws::{binary_header, client_binary, close, ping, CloseCode};

    fn message(p: &Pattern, session: u32, seq: u64, len: u32) -> (Header, Vec<u8>) {
        let h = Header {
            kind: Kind::Data,
            session,
            len,
            seq,
            due_ns: 7,
        };
        (h, p.payload(session, seq, len as usize).to_vec())
    }

    /// A server frame as the relay writes it.
    fn server_frame(payload: &[u8]) -> Vec<u8> {
        let (h, n) = binary_header(payload.len() as u64);
        let mut v = h[..n].to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn client_frames_are_the_relays_own_client_frames() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in [0usize, 1, 125, 126, 65535, 65536, 300_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            let (a, b) = payload.split_at(len / 3);
            let mut out = Vec::new();
            client_frame_with_key(OP_BINARY, &[a, b], key, &mut out);
            assert_eq!(out, client_binary(&payload, key), "len {len}");
        }
        assert_ne!(mask_key(), mask_key(), "a fresh key each frame");
    }

    #[test]
    fn server_frames_in_any_pieces_verify_and_end_at_close() {
        let p = Pattern::new();
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (seq, len) in [(0u64, 40u32), (1, 70_000), (2, 0), (3, 3000)] {
            let (h, payload) = message(&p, 9, seq, len);
            want.extend_from_slice(&h.encode());
            want.extend_from_slice(&payload);
        }
        // Frame boundaries mean nothing: cut the byte stream anywhere, fragment one message,
        // put a ping in the middle.
        let cuts = [0, 5, 33, 200, 70_100, want.len()];
        for (i, w) in cuts.windows(2).enumerate() {
            if i == 2 {
                stream.extend(ping(b"hb"));
            }
            stream.extend(server_frame(&want[w[0]..w[1]]));
        }
        stream.extend(close(CloseCode::Normal, ""));
        for step in [1usize, 7, 1000, stream.len()] {
            let mut u = Unframer::new(9);
            let mut seen = Vec::new();
            for piece in stream.chunks(step) {
                assert!(!u.ended());
                u.feed(&p, piece, |h| seen.push(h.seq)).unwrap();
            }
            assert!(u.ended(), "step {step}");
            u.finish().unwrap();
            assert_eq!(seen, [0, 1, 2, 3], "step {step}");
        }
        // A fragmented message joins its continuation frames.
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        r.feed(&[0x02, 2, 1, 2, 0x00, 1, 3, 0x80, 1, 4], |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
    }

    #[test]
    fn broken_frames_and_abnormal_closes_are_errors() {
        let feed = |bytes: &[u8]| FrameReader::new().feed(bytes, |_| Ok(()));
        let ws = |what| Err(WireError::WebSocket(what));
        assert_eq!(feed(&[0x81, 0]), ws("a text frame (the stream is binary)"));
        assert_eq!(
            feed(&[0xc2, 0]),
            ws("reserved bits set (no extension was negotiated)")
        );
        assert_eq!(
            feed(&client_binary(b"x", [1, 2, 3, 4])),
            ws("a masked frame from the server")
        );
        assert_eq!(
            feed(&[0x00, 0]),
            ws("a continuation frame outside a message")
        );
        assert_eq!(feed(&[0x09, 0]), ws("a fragmented control frame"));
        assert_eq!(feed(&[0x83, 0]), ws("a reserved opcode"));
        assert_eq!(
            feed(&close(CloseCode::Error, "backend unreachable")),
            Err(WireError::WsClosed {
                code: 1011,
                reason: "backend unreachable".into()
            })
        );
        let mut after = close(CloseCode::Normal, "");
        after.extend(server_frame(b"late"));
        assert_eq!(feed(&after), ws("bytes after the close frame"));

        // End of stream: without a close frame, or inside a frame or message.
        let mut r = FrameReader::new();
        r.feed(&server_frame(b"abc"), |_| Ok(())).unwrap();
        assert_eq!(r.finish(), ws("the connection ended without a close frame"));
        r.feed(&[0x82, 10, 1], |_| Ok(())).unwrap();
        assert_eq!(r.finish(), Err(WireError::Truncated));
        let p = Pattern::new();
        let (h, payload) = message(&p, 1, 0, 100);
        let mut u = Unframer::new(1);
        let mut bytes = server_frame(&h.encode());
        bytes.extend(server_frame(&payload[..50]));
        bytes.extend(close(CloseCode::Normal, ""));
        u.feed(&p, &bytes, |_| {}).unwrap();
        assert!(u.ended());
        assert_eq!(u.finish(), Err(WireError::Truncated));
    }

    #[test]
    fn the_upgrade_response_is_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                  Sec-WebSocket-Protocol: binary\r\n\r\n";
        let mut bytes = ok.as_bytes().to_vec();
        bytes.extend([0x82, 0]);
        assert_eq!(response(&bytes, key).unwrap(), Some(ok.len()));
        assert_eq!(response(&bytes[..20], key).unwrap(), None);
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            response(refused, key).unwrap_err().reason(),
            "HTTP 403 Forbidden"
        );
        let wrong = ok.replace("s3pP", "AAAA");
        assert!(response(wrong.as_bytes(), key).is_err());
        let text = ok.replace("binary", "text");
        assert!(response(text.as_bytes(), key).is_err());
        let without = ok.replace("Sec-WebSocket-Protocol: binary\r\n", "");
        assert!(response(without.as_bytes(), key).unwrap().is_some());
        let req = request("127.0.0.1:80".parse().unwrap(), Some("s1-ab"), key);
        assert!(req.starts_with("GET /?token=s1-ab HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
        assert!(req.ends_with("Sec-WebSocket-Protocol: binary\r\n\r\n"));
    }

    #[test]
    fn token_files_round_trip_and_the_relay_reads_them() {
        let backend: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let tokens = random_tokens(3).unwrap();
        assert!(tokens[1].starts_with("s1-") && tokens[1].len() == 3 + 24);
        let text = token_file_text(&tokens, backend);
        assert_eq!(text.lines().count(), 3);
        assert_eq!(
            text.lines().next(),
            Some(&*format!("{}: 127.0.0.1:4321", tokens[0]))
        );
        let map = deskrelay::front::http::tokens::parse(text.as_bytes()).unwrap();
        assert_eq!(map.len(), 3);
        let f = crate::xpra::TempPrivateFile::write("tokens", &text).unwrap();
        assert_eq!(read_tokens(&f.path, 3, backend).unwrap(), tokens);
        assert!(read_tokens(&f.path, 4, backend).is_err());
    }
}
