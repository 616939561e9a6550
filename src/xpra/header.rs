//! The 8-byte xpra frame header, and what its flag and compression bytes select.
//!
//! Layout (big-endian): magic `P`, protocol flags, compression byte, chunk index, payload
//! size (u32). The flags byte names the packet encoder (bencode 0x00, rencode 0x01,
//! rencodeplus 0x10) plus `cipher` 0x02, `yaml` 0x04 and `flush` 0x08; the compression byte
//! holds a level in its low nibble and the algorithm in its high nibble (none: zlib, 0x10 lz4,
//! 0x20 lzo, 0x40 brotli, 0x80 zstd). A zero byte means "not compressed": xpra tests the
//! whole byte, so `0x10` alone is lz4 at level 0 and is decompressed.

use super::error::{ProtocolError, Result};

/// Size of the frame header.
pub const HEADER_LEN: usize = 8;
/// The magic first byte of every frame.
pub const MAGIC: u8 = b'P';

pub const FLAG_RENCODE: u8 = 0x01;
pub const FLAG_CIPHER: u8 = 0x02;
pub const FLAG_YAML: u8 = 0x04;
pub const FLAG_FLUSH: u8 = 0x08;
pub const FLAG_RENCODEPLUS: u8 = 0x10;

const LZ4: u8 = 0x10;
const LZO: u8 = 0x20;
const BROTLI: u8 = 0x40;
const ZSTD: u8 = 0x80;

/// A parsed frame header; fields are the raw wire bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub flags: u8,
    pub compression: u8,
    /// 0 for a packet; 1..16 for a raw item sent ahead of the packet that holds it.
    pub chunk: u8,
    /// Payload size in bytes, not counting the header.
    pub size: u32,
}

impl Header {
    /// Parses a header; rejects a bad magic byte and a zero size (xpra never sends one).
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header> {
        let size = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if bytes[0] != MAGIC || size == 0 {
            return Err(ProtocolError::InvalidHeader);
        }
        Ok(Header {
            flags: bytes[1],
            compression: bytes[2],
            chunk: bytes[3],
            size,
        })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let s = self.size.to_be_bytes();
        [
            MAGIC,
            self.flags,
            self.compression,
            self.chunk,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }

    /// The packet encoder the flags select; `cipher` and `yaml` are unsupported errors.
    pub fn encoding(&self) -> Result<Encoding> {
        Encoding::from_flags(self.flags)
    }

    /// The compression the compression byte selects.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_byte(self.compression)
    }

    /// Payload size as a usize.
    pub fn payload_len(&self) -> usize {
        self.size as usize
    }
}

/// A packet encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Bencode,
    Rencode,
    RencodePlus,
}

impl Encoding {
    /// Reads the flags byte the way xpra does: cipher first (we cannot decrypt), then
    /// rencodeplus, rencode, yaml, and bencode when no encoder bit is set.
    pub fn from_flags(flags: u8) -> Result<Encoding> {
        if flags & FLAG_CIPHER != 0 {
            Err(ProtocolError::UnsupportedEncoder("cipher"))
        } else if flags & FLAG_RENCODEPLUS != 0 {
            Ok(Encoding::RencodePlus)
        } else if flags & FLAG_RENCODE != 0 {
            Ok(Encoding::Rencode)
        } else if flags & FLAG_YAML != 0 {
            Err(ProtocolError::UnsupportedEncoder("yaml"))
        } else {
            Ok(Encoding::Bencode)
        }
    }

    /// The flags byte for this encoder.
    pub fn flag(self) -> u8 {
        match self {
            Encoding::Bencode => 0,
            Encoding::Rencode => FLAG_RENCODE,
            Encoding::RencodePlus => FLAG_RENCODEPLUS,
        }
    }

    /// The name xpra uses in capabilities (`rencode`, `rencodeplus`, `bencode`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Bencode => "bencode",
            Encoding::Rencode => "rencode",
            Encoding::RencodePlus => "rencodeplus",
        }
    }
}

/// A payload compression and its level (0..=15; 0 when writing means "not compressed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Zlib(u8),
    Lz4(u8),
}

impl Compression {
    /// Reads the compression byte; lzo, brotli and zstd are unsupported errors.
    pub fn from_byte(b: u8) -> Result<Compression> {
        let level = b & 0x0f;
        if b == 0 {
            Ok(Compression::None)
        } else if b & LZ4 != 0 {
            Ok(Compression::Lz4(level))
        } else if b & LZO != 0 {
            Err(ProtocolError::UnsupportedCompression("lzo"))
        } else if b & BROTLI != 0 {
            Err(ProtocolError::UnsupportedCompression("brotli"))
        } else if b & ZSTD != 0 {
            Err(ProtocolError::UnsupportedCompression("zstd"))
        } else {
            Ok(Compression::Zlib(level))
        }
    }

    /// What a writer actually does: level 0 of any algorithm means not compressed; zlib
    /// levels stop at 9 (zlib's maximum), lz4 levels at 15 (the nibble).
    pub fn effective(self) -> Compression {
        match self {
            Compression::Zlib(0) | Compression::Lz4(0) | Compression::None => Compression::None,
            Compression::Zlib(l) => Compression::Zlib(l.min(9)),
            Compression::Lz4(l) => Compression::Lz4(l.min(15)),
        }
    }

    /// The compression byte a writer puts in the header.
    pub fn byte(self) -> u8 {
        match self.effective() {
            Compression::None => 0,
            Compression::Zlib(l) => l,
            Compression::Lz4(l) => LZ4 | l,
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_captured_debian_client_header_and_writes_it_back() {
        let raw = [0x50, 0x01, 0x01, 0x00, 0x00, 0x00, 0x58, 0x43];
        let h = Header::parse(&raw).unwrap();
        assert_eq!(h.size, 22_595);
        assert_eq!(h.encoding(), Ok(Encoding::Rencode));
        assert_eq!(h.compression(), Ok(Compression::Zlib(1)));
        assert_eq!(h.chunk, 0);
        assert_eq!(h.to_bytes(), raw);
    }

    #[test]
    fn rejects_bad_magic_and_zero_size() {
        assert_eq!(
            Header::parse(b"GET / HT"),
            Err(ProtocolError::InvalidHeader)
        );
        assert_eq!(
            Header::parse(&[b'P', 1, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::InvalidHeader)
        );
    }

    #[test]
    fn encoder_flags_follow_xpra_precedence() {
        assert_eq!(Encoding::from_flags(0x00), Ok(Encoding::Bencode));
        assert_eq!(Encoding::from_flags(0x08), Ok(Encoding::Bencode));
        assert_eq!(Encoding::from_flags(0x09), Ok(Encoding::Rencode));
        assert_eq!(Encoding::from_flags(0x11), Ok(Encoding::RencodePlus));
        let yaml = Encoding::from_flags(0x04).unwrap_err();
        assert_eq!(yaml.to_string(), "unsupported encoder (yaml)");
        assert_eq!(
            Encoding::from_flags(0x03),
            Err(ProtocolError::UnsupportedEncoder("cipher"))
        );
        for e in [Encoding::Bencode, Encoding::Rencode, Encoding::RencodePlus] {
            assert_eq!(Encoding::from_flags(e.flag()), Ok(e));
        }
    }

    #[test]
    fn compression_byte_round_trips_and_names_unsupported_algorithms() {
        assert_eq!(Compression::from_byte(0), Ok(Compression::None));
        assert_eq!(Compression::from_byte(0x03), Ok(Compression::Zlib(3)));
        assert_eq!(Compression::from_byte(0x10), Ok(Compression::Lz4(0)));
        assert_eq!(Compression::from_byte(0x1f), Ok(Compression::Lz4(15)));
        let brotli = Compression::from_byte(0x45).unwrap_err();
        assert_eq!(brotli.to_string(), "unsupported compression (brotli)");
        assert!(Compression::from_byte(0x21).is_err());
        assert!(Compression::from_byte(0x81).is_err());
        assert_eq!(Compression::Lz4(0).byte(), 0);
        assert_eq!(Compression::Zlib(0).byte(), 0);
        assert_eq!(Compression::Zlib(12).byte(), 9);
        assert_eq!(Compression::Lz4(1).byte(), 0x11);
        for c in [Compression::Zlib(6), Compression::Lz4(3), Compression::None] {
            assert_eq!(Compression::from_byte(c.byte()), Ok(c));
        }
    }
}
