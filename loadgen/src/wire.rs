//! The message framing both ends speak: a fixed 32-byte header followed by a payload whose
//! bytes are a known pattern, so the receiver can verify every byte without storing anything.
//!
//! Header (little endian): magic `u32` ("DRLG"), kind `u16`, reserved `u16`, session `u32`,
//! payload length `u32`, sequence `u64`, due time `u64` (ns since the run's monotonic epoch).

use thiserror::Error;

/// Size of the encoded header.
pub const HEADER_LEN: usize = 32;
/// "DRLG" in little endian.
pub const MAGIC: u32 = u32::from_le_bytes(*b"DRLG");
/// Largest payload a header may announce (a 1 MiB frame plus room).
pub const MAX_PAYLOAD: u32 = 4 * 1024 * 1024;
/// Distinct payload start offsets into the pattern.
const PATTERN_OFFSETS: usize = 251;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// First message of a session, client to backend: names the session.
    Hello = 1,
    /// A timed message of the profile.
    Data = 2,
    /// End of a direction, in band: what `--protocol ws` sends upstream instead of a FIN,
    /// because a WebSocket has no half-close (no payload).
    End = 3,
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub session: u32,
    pub len: u32,
    pub seq: u64,
    pub due_ns: u64,
}

/// Why bytes on the wire are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    #[error("unknown message kind {0}")]
    BadKind(u16),
    #[error("payload length {0} exceeds the limit")]
    TooLong(u32),
    #[error("session {got} on a connection of session {want}")]
    WrongSession { want: u32, got: u32 },
    #[error("sequence {got}, expected {want}")]
    OutOfOrder { want: u64, got: u64 },
    #[error("payload byte {at} of message {seq} is corrupt")]
    Corrupt { seq: u64, at: usize },
    #[error("connection closed inside a message")]
    Truncated,
    #[error("xpra framing: {0}")]
    Framing(&'static str),
    #[error("websocket framing: {0}")]
    WebSocket(&'static str),
    /// The server closed the WebSocket with a code other than 1000 (normal).
    #[error("websocket closed with code {code}: {reason:?}")]
    WsClosed { code: u16, reason: String },
    #[error("data after the end of the stream")]
    AfterEnd,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&(self.kind as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.session.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.due_ns.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, WireError> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let magic = u32_at(0);
        if magic != MAGIC {
            return Err(WireError::BadMagic(magic));
        }
        let kind = match u16::from_le_bytes([b[4], b[5]]) {
            1 => Kind::Hello,
            2 => Kind::Data,
            3 => Kind::End,
            k => return Err(WireError::BadKind(k)),
        };
        let len = u32_at(12);
        if len > MAX_PAYLOAD {
            return Err(WireError::TooLong(len));
        }
        Ok(Self {
            kind,
            session: u32_at(8),
            len,
            seq: u64_at(16),
            due_ns: u64_at(24),
        })
    }
}

/// The pseudo-random bytes payloads are cut from.
pub struct Pattern(Vec<u8>);

impl Pattern {
    pub fn new() -> Self {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let n = MAX_PAYLOAD as usize + PATTERN_OFFSETS;
        let bytes = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Self(bytes)
    }

    /// Where the payload of message `seq` of `session` starts in the pattern.
    pub fn offset(session: u32, seq: u64) -> usize {
        ((session as u64).wrapping_mul(31).wrapping_add(seq) % PATTERN_OFFSETS as u64) as usize
    }

    /// The payload of a message, `len` bytes.
    pub fn payload(&self, session: u32, seq: u64, len: usize) -> &[u8] {
        let off = Self::offset(session, seq);
        &self.0[off..off + len]
    }
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: Kind::Data,
            session: 7,
            len: 4096,
            seq: 42,
            due_ns: 123_456_789,
        }
    }

    #[test]
    fn round_trip() {
        let h = sample();
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        let hello = Header {
            kind: Kind::Hello,
            len: 0,
            ..h
        };
        assert_eq!(Header::decode(&hello.encode()), Ok(hello));
    }

    #[test]
    fn rejects_bad_magic_kind_and_length() {
        let mut b = sample().encode();
        b[0] ^= 0xff;
        assert!(matches!(Header::decode(&b), Err(WireError::BadMagic(_))));
        let mut b = sample().encode();
        b[4] = 9;
        assert_eq!(Header::decode(&b), Err(WireError::BadKind(9)));
        let mut b = sample().encode();
        b[12..16].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert_eq!(Header::decode(&b), Err(WireError::TooLong(MAX_PAYLOAD + 1)));
    }

    #[test]
    fn payloads_differ_by_sequence() {
        let p = Pattern::new();
        assert_ne!(p.payload(1, 0, 64), p.payload(1, 1, 64));
        assert_eq!(p.payload(1, 5, 64), p.payload(1, 5, 64));
    }
}
