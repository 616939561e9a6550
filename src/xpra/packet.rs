//! xpra packets and frames: [`encode_frame`], the sans-I/O [`FrameDecoder`], and
//! [`peek_kind`] to read a packet's type from the first bytes of its payload.
//!
//! A packet is a list whose first item names its type (`hello`, `draw`, ...). On the wire it
//! is one frame (header + encoded, maybe compressed, payload), possibly preceded by up to
//! three *chunk* frames (index 1..=15): raw binary items sent ahead, each standing in for
//! the empty placeholder at that list position of the main packet (index 0). Chunk payloads
//! carry no encoder but may be compressed (xpra 3.1 sends some items zlib/lz4-compressed).
//!
//! The decoder checks a frame's declared size against [`Limits::max_packet`] as soon as its
//! header is in the buffer, before waiting for (or reserving room for) the payload, and
//! leaves bytes it has not consumed in the caller's buffer. After an error the stream is
//! unusable: the caller sends the error as the disconnect reason and closes.

use bytes::{Bytes, BytesMut};

use super::compress::{compress, decompress, decompress_prefix};
use super::error::{ProtocolError, Result};
use super::header::{Compression, Encoding, Header, FLAG_CIPHER, HEADER_LEN, MAGIC};
use super::value::Value;
use super::{bencode, rencode};

/// xpra's default packet size limit.
pub const DEFAULT_MAX_PACKET: usize = 16 << 20;
/// xpra's absolute limit: no frame may claim more, whatever the configuration.
pub const ABS_MAX_PACKET: usize = 256 << 20;
/// Chunk indexes are 1..=MAX_CHUNK_INDEX.
pub const MAX_CHUNK_INDEX: u8 = 15;
/// Chunk frames that may wait for their main packet.
pub const MAX_PENDING_CHUNKS: usize = 3;
/// Decompressed bytes [`peek_kind`] looks at: room for the list head and any real type name.
pub const PEEK_LEN: usize = 96;

/// One xpra packet: its items, the first being the packet type.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub items: Vec<Value>,
}

impl Packet {
    pub fn new(items: Vec<Value>) -> Packet {
        Packet { items }
    }

    /// The packet type, when the first item is a string (xpra 3.1 peers that agreed on
    /// `aliases` may send an integer instead; that reads as None).
    pub fn kind(&self) -> Option<&str> {
        self.items.first()?.as_str()
    }

    /// Appends the encoded packet (the uncompressed payload) to `out`.
    pub fn encode_into(&self, encoding: Encoding, out: &mut Vec<u8>) -> Result<()> {
        match encoding {
            Encoding::Rencode => rencode::encode_list(&self.items, false, out),
            Encoding::RencodePlus => rencode::encode_list(&self.items, true, out),
            Encoding::Bencode => bencode::encode_list(&self.items, out)?,
        }
        Ok(())
    }

    /// Decodes an uncompressed payload: exactly one non-empty list, nothing after it.
    pub fn decode(payload: &[u8], encoding: Encoding) -> Result<Packet> {
        let (value, used) = match encoding {
            Encoding::Rencode => rencode::decode(payload, false)?,
            Encoding::RencodePlus => rencode::decode(payload, true)?,
            Encoding::Bencode => bencode::decode(payload)?,
        };
        if used != payload.len() {
            return Err(ProtocolError::Corrupt("data after the packet"));
        }
        match value {
            Value::List(items) if !items.is_empty() => Ok(Packet { items }),
            Value::List(_) => Err(ProtocolError::Corrupt("empty packet")),
            _ => Err(ProtocolError::Corrupt("packet is not a list")),
        }
    }
}

/// One whole frame: header + payload (compressed as the header says) as an xpra peer
/// expects it. `Compression::Zlib(0)`/`Lz4(0)` mean "not compressed", as in xpra.
pub fn encode_frame(packet: &Packet, encoding: Encoding, c: Compression) -> Result<Vec<u8>> {
    let c = c.effective();
    let mut out = vec![0u8; HEADER_LEN];
    if c == Compression::None {
        packet.encode_into(encoding, &mut out)?;
    } else {
        let mut payload = Vec::new();
        packet.encode_into(encoding, &mut payload)?;
        out.extend_from_slice(&compress(&payload, c));
    }
    let size = out.len() - HEADER_LEN;
    if size > ABS_MAX_PACKET {
        return Err(ProtocolError::TooLarge {
            size,
            limit: ABS_MAX_PACKET,
        });
    }
    let header = Header {
        flags: encoding.flag(),
        compression: c.byte(),
        chunk: 0,
        size: size as u32,
    };
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(out)
}

/// The type of the packet whose header is `header` and whose payload starts with
/// `payload_prefix` (which may be cut anywhere; [`super::compress::PEEK_PAYLOAD_LEN`]
/// bytes usually suffice). Only the list head and the first item are decoded. None for
/// chunk frames, unsupported encoders or compressors, non-string types, or too few bytes.
pub fn peek_kind(header: &Header, payload_prefix: &[u8]) -> Option<String> {
    if header.chunk != 0 {
        return None;
    }
    let encoding = header.encoding().ok()?;
    let head = decompress_prefix(payload_prefix, header.compression().ok()?, PEEK_LEN).ok()?;
    let (&code, rest) = head.split_first()?;
    let first = match encoding {
        // A terminated list (59) or a fixed list of at least one item (193..=255).
        Encoding::Rencode | Encoding::RencodePlus if code == 59 || code > 192 => {
            rencode::decode(rest, encoding == Encoding::RencodePlus)
                .ok()?
                .0
        }
        Encoding::Bencode if code == b'l' => bencode::decode(rest).ok()?.0,
        _ => return None,
    };
    first.as_str().map(str::to_owned)
}

/// Decoder limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted, and largest decompressed payload; capped at
    /// [`ABS_MAX_PACKET`].
    pub max_packet: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_packet: DEFAULT_MAX_PACKET,
        }
    }
}

impl Limits {
    fn max(&self) -> usize {
        self.max_packet.min(ABS_MAX_PACKET)
    }
}

/// One frame as received: its parsed header and its bytes (header included), ready to be
/// forwarded unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub raw: Bytes,
}

impl Frame {
    /// The payload, as on the wire (compressed if the header says so).
    pub fn payload(&self) -> &[u8] {
        &self.raw[HEADER_LEN..]
    }
}

/// A decoded packet, with the frames that carried it (chunks first, main frame last).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub packet: Packet,
    pub encoding: Encoding,
    pub frames: Vec<Frame>,
}

/// Sans-I/O decoder of one direction of an xpra stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    limits: Limits,
    /// Chunk items waiting for their main packet, by index.
    pending: Vec<(u8, Value)>,
    frames: Vec<Frame>,
}

impl FrameDecoder {
    pub fn new(limits: Limits) -> FrameDecoder {
        FrameDecoder {
            limits,
            ..FrameDecoder::default()
        }
    }

    /// Splits the next whole frame off the front of `buf`, or returns None until it has
    /// arrived. Fails on a bad magic byte as soon as it is seen, and on an oversized frame
    /// as soon as its header is complete; reserves nothing.
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        if buf.first().is_some_and(|&b| b != MAGIC) {
            return Err(ProtocolError::InvalidHeader);
        }
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::parse(head)?;
        let size = header.payload_len();
        if size > self.limits.max() {
            return Err(ProtocolError::TooLarge {
                size,
                limit: self.limits.max(),
            });
        }
        if buf.len() < HEADER_LEN + size {
            return Ok(None);
        }
        let raw = buf.split_to(HEADER_LEN + size).freeze();
        Ok(Some(Frame { header, raw }))
    }

    /// Decodes the next packet in `buf`, holding chunk frames until their main packet
    /// arrives; None until a main packet is complete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>> {
        while let Some(frame) = self.next_frame(buf)? {
            let h = frame.header;
            let max = self.limits.max();
            if h.chunk > 0 {
                self.hold_chunk(&frame, max)?;
                self.frames.push(frame);
                continue;
            }
            let encoding = h.encoding()?;
            let payload = decompress(frame.payload(), h.compression()?, max)?;
            let mut packet = Packet::decode(&payload, encoding)?;
            for (index, item) in self.pending.drain(..) {
                let slot = packet
                    .items
                    .get_mut(usize::from(index))
                    .ok_or(ProtocolError::Corrupt("chunk index beyond the packet"))?;
                *slot = item;
            }
            self.frames.push(frame);
            let frames = std::mem::take(&mut self.frames);
            return Ok(Some(Decoded {
                packet,
                encoding,
                frames,
            }));
        }
        Ok(None)
    }

    fn hold_chunk(&mut self, frame: &Frame, max: usize) -> Result<()> {
        let h = frame.header;
        if h.chunk > MAX_CHUNK_INDEX {
            return Err(ProtocolError::ChunkIndex(h.chunk));
        }
        if self.pending.iter().any(|(i, _)| *i == h.chunk) {
            return Err(ProtocolError::DuplicateChunk(h.chunk));
        }
        if self.pending.len() >= MAX_PENDING_CHUNKS {
            return Err(ProtocolError::TooManyChunks(self.pending.len() + 1));
        }
        if h.flags & FLAG_CIPHER != 0 {
            return Err(ProtocolError::UnsupportedEncoder("cipher"));
        }
        let data = decompress(frame.payload(), h.compression()?, max)?;
        self.pending
            .push((h.chunk, Value::Bytes(data.into_owned())));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
