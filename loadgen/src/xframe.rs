//! The data phase of `--protocol xpra`: every loadgen message (the 32-byte header of
//! [`crate::wire`] plus its pattern payload, unchanged) travels inside real xpra frames, so
//! a relay's frame gate walks real frames and the receiver still checks every byte.
//!
//! - A message whose payload is at most [`INLINE_MAX`] bytes is one packet frame: header
//!   (rencode flag, no compression, chunk 0), then the rencode list `["loadgen", message]`,
//!   the message written as a rencode string (`len:bytes`, or one type byte under 64 bytes).
//! - A larger one is sent the way xpra sends pixels: a raw chunk frame (chunk index 1, no
//!   encoder flag, no compression) whose payload is the message, then its packet frame
//!   `["loadgen", ""]` with the empty placeholder at index 1.
//!
//! - After its last message a sender writes the packet `["loadgen-end"]` ([`END`]) instead
//!   of half-closing: xpra has no half-close, and xpra's own proxy tears a session down when
//!   either side closes, so each end closes only once it has sent its end and read the
//!   peer's, and no message in flight is cut off.
//!
//! The receiver ([`Unframer`]) parses the frames as a stream and hands the message bytes to
//! the same verifying [`Decoder`] the raw protocol uses, checking that every frame holds
//! exactly one whole message. Packets of other types (a relay's own ping, say) are skipped.

use deskrelay::xpra::header::{Header as XHeader, FLAG_RENCODE, HEADER_LEN as XHEADER_LEN};

use crate::decode::Decoder;
use crate::wire::{Header, Pattern, WireError};

/// The packet type of loadgen's messages.
pub const PACKET_TYPE: &[u8; 7] = b"loadgen";
/// Payloads up to this size travel inline in their packet; larger ones as a chunk.
pub const INLINE_MAX: usize = 16 * 1024;

/// rencode: a list of two items, then the packet type as a short string.
const PREFIX: [u8; 2 + PACKET_TYPE.len()] = prefix();
/// rencode's empty string: the placeholder of a chunked item.
const EMPTY_STR: u8 = 0x80;
/// Longest rencode string length prefix loadgen reads (10 digits and `:`).
const MAX_LEN_DIGITS: usize = 10;
/// The packet frame that follows a chunk: `["loadgen", ""]`.
pub const TRAILER: [u8; XHEADER_LEN + PREFIX.len() + 1] = trailer();

const fn prefix() -> [u8; 2 + PACKET_TYPE.len()] {
    let mut p = [0u8; 2 + PACKET_TYPE.len()];
    p[0] = 0xc0 + 2;
    p[1] = 0x80 + PACKET_TYPE.len() as u8;
    let mut i = 0;
    while i < PACKET_TYPE.len() {
        p[2 + i] = PACKET_TYPE[i];
        i += 1;
    }
    p
}

const fn trailer() -> [u8; XHEADER_LEN + PREFIX.len() + 1] {
    let size = (PREFIX.len() + 1) as u8;
    let mut t = [0u8; XHEADER_LEN + PREFIX.len() + 1];
    t[0] = b'P';
    t[1] = FLAG_RENCODE;
    t[7] = size;
    let mut i = 0;
    while i < PREFIX.len() {
        t[XHEADER_LEN + i] = PREFIX[i];
        i += 1;
    }
    t[XHEADER_LEN + PREFIX.len()] = EMPTY_STR;
    t
}

/// The end-of-stream packet's type.
const END_TYPE: &[u8; 11] = b"loadgen-end";
/// The end-of-stream packet, `["loadgen-end"]`: its 13-byte payload is shorter than any
/// message packet's (at least 42), so its frame size alone marks it.
pub const END: [u8; XHEADER_LEN + 2 + END_TYPE.len()] = end();

const fn end() -> [u8; XHEADER_LEN + 2 + END_TYPE.len()] {
    let mut t = [0u8; XHEADER_LEN + 2 + END_TYPE.len()];
    t[0] = b'P';
    t[1] = FLAG_RENCODE;
    t[7] = (2 + END_TYPE.len()) as u8;
    t[XHEADER_LEN] = 0xc0 + 1;
    t[XHEADER_LEN + 1] = 0x80 + END_TYPE.len() as u8;
    let mut i = 0;
    while i < END_TYPE.len() {
        t[XHEADER_LEN + 2 + i] = END_TYPE[i];
        i += 1;
    }
    t
}

/// True when a message with `payload_len` payload bytes goes inline (else as a chunk).
pub fn inline(payload_len: usize) -> bool {
    payload_len <= INLINE_MAX
}

/// Appends the frame header and rencode prefix of an inline packet carrying a message of
/// `message_len` bytes (loadgen header included); the message bytes follow.
pub fn inline_head(message_len: usize, out: &mut Vec<u8>) {
    let mut len_form = [0u8; MAX_LEN_DIGITS + 1];
    let len_form = if message_len < 64 {
        len_form[0] = 0x80 + message_len as u8;
        &len_form[..1]
    } else {
        let digits = message_len.to_string();
        len_form[..digits.len()].copy_from_slice(digits.as_bytes());
        len_form[digits.len()] = b':';
        &len_form[..digits.len() + 1]
    };
    let size = PREFIX.len() + len_form.len() + message_len;
    let h = XHeader {
        flags: FLAG_RENCODE,
        compression: 0,
        chunk: 0,
        size: size as u32,
    };
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(&PREFIX);
    out.extend_from_slice(len_form);
}

/// The header of the chunk frame carrying a message of `message_len` bytes.
pub fn chunk_head(message_len: usize) -> [u8; XHEADER_LEN] {
    XHeader {
        flags: 0,
        compression: 0,
        chunk: 1,
        size: message_len as u32,
    }
    .to_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a frame header into `scratch`.
    Header,
    /// Collecting the rencode prefix of a packet frame of `size` payload bytes.
    Prefix { size: usize },
    /// Message bytes of the current frame still to come.
    Body { left: usize },
    /// Collecting the placeholder packet after a chunk (`size` payload bytes).
    Trailer { size: usize },
    /// A packet that is not loadgen's: bytes to skip.
    Skip { left: usize },
    /// Collecting a packet the size of [`END`]'s.
    MaybeEnd { size: usize },
    /// The end-of-stream packet arrived: nothing may follow.
    Ended,
}

/// Strips the xpra framing of one direction and verifies the messages inside.
pub struct Unframer {
    inner: Decoder,
    state: State,
    scratch: [u8; 32],
    fill: usize,
    /// A chunk arrived; its placeholder packet must come next.
    chunk_pending: bool,
    /// Packets of other types skipped.
    pub skipped: u64,
}

fn framing(what: &'static str) -> WireError {
    WireError::Framing(what)
}

impl Unframer {
    pub fn new(session: u32) -> Self {
        Self {
            inner: Decoder::new(session),
            state: State::Header,
            scratch: [0; 32],
            fill: 0,
            chunk_pending: false,
            skipped: 0,
        }
    }

    /// Consumes `buf`; calls `done` with the header of each message completed in it.
    pub fn feed(
        &mut self,
        pattern: &Pattern,
        mut buf: &[u8],
        mut done: impl FnMut(&Header),
    ) -> Result<(), WireError> {
        while !buf.is_empty() {
            match self.state {
                State::Header => {
                    let take = self.collect(&mut buf, XHEADER_LEN);
                    if take {
                        self.fill = 0;
                        let head: &[u8; XHEADER_LEN] = self.scratch[..XHEADER_LEN]
                            .try_into()
                            .expect("header bytes");
                        let h = XHeader::parse(head).map_err(|_| framing("bad frame header"))?;
                        self.state = self.after_header(h)?;
                    }
                }
                State::Prefix { size } => {
                    let want = size.min(PREFIX.len() + MAX_LEN_DIGITS + 1);
                    // One byte at a time: the prefix ends where the length form ends.
                    let b = buf[0];
                    buf = &buf[1..];
                    self.scratch[self.fill] = b;
                    self.fill += 1;
                    let got = &self.scratch[..self.fill];
                    if self.fill <= PREFIX.len() {
                        if got[self.fill - 1] != PREFIX[self.fill - 1] {
                            self.skipped += 1;
                            self.state = skip(size - self.fill);
                            self.fill = 0;
                        } else if self.fill == size {
                            return Err(framing("loadgen packet without a message"));
                        }
                        continue;
                    }
                    match length_form(&got[PREFIX.len()..])? {
                        Some((form_len, message_len)) => {
                            let prefix_len = PREFIX.len() + form_len;
                            if prefix_len + message_len != size {
                                return Err(framing("frame size does not match its message"));
                            }
                            if message_len == 0 {
                                return Err(framing("loadgen packet without a message"));
                            }
                            self.fill = 0;
                            self.state = State::Body { left: message_len };
                        }
                        None if self.fill >= want => {
                            return Err(framing("bad message length in a loadgen packet"))
                        }
                        None => {}
                    }
                }
                State::Body { left } => {
                    let take = left.min(buf.len());
                    self.inner.feed(pattern, &buf[..take], &mut done)?;
                    buf = &buf[take..];
                    if take == left {
                        if !self.inner.at_boundary() {
                            return Err(framing("frame ends inside a message"));
                        }
                        self.state = State::Header;
                    } else {
                        self.state = State::Body { left: left - take };
                    }
                }
                State::Trailer { size } => {
                    if self.collect(&mut buf, size) {
                        if self.scratch[..size] != TRAILER[XHEADER_LEN..] {
                            return Err(framing("a chunk not followed by its loadgen packet"));
                        }
                        self.fill = 0;
                        self.chunk_pending = false;
                        self.state = State::Header;
                    }
                }
                State::Skip { left } => {
                    let take = left.min(buf.len());
                    buf = &buf[take..];
                    self.state = skip(left - take);
                }
                State::MaybeEnd { size } => {
                    if self.collect(&mut buf, size) {
                        self.fill = 0;
                        self.state = if self.scratch[..size] == END[XHEADER_LEN..] {
                            State::Ended
                        } else {
                            self.skipped += 1;
                            State::Header
                        };
                    }
                }
                State::Ended => return Err(framing("data after the end of the stream")),
            }
        }
        Ok(())
    }

    /// At end of stream: an error if it ended inside a frame or a message.
    pub fn finish(&self) -> Result<(), WireError> {
        if !matches!(self.state, State::Header | State::Ended)
            || self.fill != 0
            || self.chunk_pending
        {
            return Err(WireError::Truncated);
        }
        self.inner.finish()
    }

    /// True once the peer's end-of-stream packet has arrived.
    pub fn ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Appends bytes to `scratch` until it holds `n`; true once it does.
    fn collect(&mut self, buf: &mut &[u8], n: usize) -> bool {
        let take = (n - self.fill).min(buf.len());
        self.scratch[self.fill..self.fill + take].copy_from_slice(&buf[..take]);
        self.fill += take;
        *buf = &buf[take..];
        self.fill == n
    }

    fn after_header(&mut self, h: XHeader) -> Result<State, WireError> {
        let size = h.size as usize;
        match h.chunk {
            0 if self.chunk_pending => {
                if h.flags != FLAG_RENCODE
                    || h.compression != 0
                    || size != TRAILER.len() - XHEADER_LEN
                {
                    return Err(framing("a chunk not followed by its loadgen packet"));
                }
                Ok(State::Trailer { size })
            }
            0 if h.flags != FLAG_RENCODE || h.compression != 0 => {
                // Not how loadgen writes its packets: some other peer's.
                self.skipped += 1;
                Ok(skip(size))
            }
            0 if size == END.len() - XHEADER_LEN => Ok(State::MaybeEnd { size }),
            0 => Ok(State::Prefix { size }),
            1 if self.chunk_pending => Err(framing("two chunks for one packet")),
            1 if h.flags != 0 || h.compression != 0 => {
                Err(framing("an encoded or compressed chunk"))
            }
            1 => {
                self.chunk_pending = true;
                Ok(State::Body { left: size })
            }
            _ => Err(framing("unexpected chunk index")),
        }
    }
}

fn skip(left: usize) -> State {
    if left == 0 {
        State::Header
    } else {
        State::Skip { left }
    }
}

/// A rencode string's length form at the start of `b`: (its bytes, the string length), or
/// None while it is incomplete.
fn length_form(b: &[u8]) -> Result<Option<(usize, usize)>, WireError> {
    match b.first() {
        None => Ok(None),
        Some(&c) if (0x80..0xc0).contains(&c) => Ok(Some((1, (c - 0x80) as usize))),
        Some(c) if c.is_ascii_digit() => {
            for (i, &c) in b.iter().enumerate() {
                if c == b':' {
                    let n = std::str::from_utf8(&b[..i])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(framing("bad message length in a loadgen packet"))?;
                    return Ok(Some((i + 1, n)));
                }
                if !c.is_ascii_digit() || i >= MAX_LEN_DIGITS {
                    return Err(framing("bad message length in a loadgen packet"));
                }
            }
            Ok(None)
        }
        Some(_) => Err(framing("the message of a loadgen packet is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use deskrelay::front::xpra::gate::{Gate, Step};
    use deskrelay::xpra::Value;
    use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet};

    use super::*;
    use crate::wire::{Kind, HEADER_LEN};

    /// One message as the sender frames it.
    fn framed(p: &Pattern, session: u32, seq: u64, len: u32) -> (Vec<u8>, Vec<u8>) {
        let h = Header {
            kind: Kind::Data,
            session,
            len,
            seq,
            due_ns: seq,
        };
        let mut message = h.encode().to_vec();
        message.extend_from_slice(p.payload(session, seq, len as usize));
        let mut out = Vec::new();
        if inline(len as usize) {
            inline_head(message.len(), &mut out);
            out.extend_from_slice(&message);
        } else {
            out.extend_from_slice(&chunk_head(message.len()));
            out.extend_from_slice(&message);
            out.extend_from_slice(&TRAILER);
        }
        (out, message)
    }

    const SIZES: [u32; 6] = [0, 20, 31, 32, 4000, 200_000];

    #[test]
    fn frames_are_real_xpra_packets_carrying_the_message() {
        let p = Pattern::new();
        for (seq, len) in SIZES.iter().enumerate() {
            let (wire, message) = framed(&p, 5, seq as u64, *len);
            let mut buf = BytesMut::from(&wire[..]);
            let d = FrameDecoder::new(Limits::default())
                .decode(&mut buf)
                .unwrap()
                .expect("one whole packet");
            assert!(buf.is_empty(), "{len}: bytes left over");
            assert_eq!(d.encoding, Encoding::Rencode);
            assert_eq!(d.packet.kind(), Some("loadgen"));
            assert_eq!(d.packet.items.len(), 2);
            assert_eq!(d.packet.items[1].as_bytes(), Some(&message[..]), "{len}");
            assert_eq!(d.frames.len(), if inline(*len as usize) { 1 } else { 2 });
            // The same bytes as deskrelay's own encoder writes for an inline message.
            if inline(*len as usize) {
                let packet = Packet::new(vec![Value::str("loadgen"), Value::Bytes(message)]);
                let theirs = encode_frame(&packet, Encoding::Rencode, Compression::None).unwrap();
                assert_eq!(theirs, wire);
            }
        }
    }

    #[test]
    fn the_end_packet_is_a_real_xpra_packet() {
        let mut buf = BytesMut::from(&END[..]);
        let d = FrameDecoder::new(Limits::default())
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(d.packet.items, vec![Value::str("loadgen-end")]);
    }

    #[test]
    fn the_relay_gate_passes_every_frame_whole() {
        let p = Pattern::new();
        let mut stream = Vec::new();
        for (seq, len) in SIZES.iter().enumerate() {
            stream.extend(framed(&p, 1, seq as u64, *len).0);
        }
        let mut gate = Gate::new(&["disconnect", "hello"], 16 << 20);
        let mut steps = Vec::new();
        assert_eq!(gate.feed(&stream, &mut steps).unwrap(), stream.len());
        assert_eq!(steps, vec![Step::Pass(0..stream.len())]);
        assert_eq!(gate.frames(), SIZES.len() as u64 + 1);
    }

    #[test]
    fn byte_by_byte_frames_unframe_and_verify() {
        let p = Pattern::new();
        let mut stream = Vec::new();
        for (seq, len) in SIZES.iter().enumerate() {
            stream.extend(framed(&p, 9, seq as u64, *len).0);
            // A packet of another type between messages is skipped.
            let ping = Packet::new(vec![Value::str("ping"), Value::Int(5)]);
            stream.extend(encode_frame(&ping, Encoding::Rencode, Compression::Zlib(1)).unwrap());
            stream.extend(encode_frame(&ping, Encoding::Rencode, Compression::None).unwrap());
        }
        stream.extend_from_slice(&END);
        for step in [1, 7, 4096, stream.len()] {
            let mut u = Unframer::new(9);
            let mut seen = Vec::new();
            for b in stream.chunks(step) {
                assert!(!u.ended());
                u.feed(&p, b, |h| seen.push((h.seq, h.len))).unwrap();
            }
            assert!(u.ended());
            u.finish().unwrap();
            let want: Vec<_> = SIZES
                .iter()
                .enumerate()
                .map(|(s, l)| (s as u64, *l))
                .collect();
            assert_eq!(seen, want, "step {step}");
            assert_eq!(u.skipped, 2 * SIZES.len() as u64);
        }
    }

    #[test]
    fn corruption_and_broken_framing_are_caught() {
        let p = Pattern::new();
        // A payload byte flipped inside an inline packet and inside a chunk.
        for len in [100, 100_000] {
            let (mut wire, message) = framed(&p, 2, 0, len);
            let trailer = if inline(len as usize) {
                0
            } else {
                TRAILER.len()
            };
            let at = wire.len() - trailer - message.len() + HEADER_LEN + 50;
            wire[at] ^= 1;
            let err = Unframer::new(2).feed(&p, &wire, |_| {}).unwrap_err();
            assert_eq!(err, WireError::Corrupt { seq: 0, at: 50 }, "{len}");
        }
        // A frame one byte shorter than its message.
        let (mut wire, _) = framed(&p, 2, 0, 100);
        let size = u32::from_be_bytes(wire[4..8].try_into().unwrap()) - 1;
        wire[4..8].copy_from_slice(&size.to_be_bytes());
        assert!(matches!(
            Unframer::new(2).feed(&p, &wire, |_| {}),
            Err(WireError::Framing(_))
        ));
        // A chunk without its placeholder packet, then the stream ends.
        let (wire, _) = framed(&p, 2, 0, 100_000);
        let mut u = Unframer::new(2);
        u.feed(&p, &wire[..wire.len() - TRAILER.len()], |_| {})
            .unwrap();
        assert_eq!(u.finish(), Err(WireError::Truncated));
        // Anything after the end.
        let mut u = Unframer::new(2);
        u.feed(&p, &END, |_| {}).unwrap();
        assert!(u.ended());
        assert!(u.feed(&p, &END, |_| {}).is_err());
        // Not an xpra frame at all.
        assert!(matches!(
            Unframer::new(2).feed(&p, b"GET / HTTP/1.1\r\n", |_| {}),
            Err(WireError::Framing(_))
        ));
    }
}
