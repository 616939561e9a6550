//! The PROXY protocol (haproxy's `proxy-protocol.txt`, versions 1 and 2), sans I/O.
//!
//! A trusted balancer (haproxy `send-proxy-v2`, `send-proxy`) prepends one header to the
//! connection telling the real client's address; a backend that wants it gets one from us.
//!
//! - [`parse`] reads either version from the first bytes of a connection: `Ok(None)` while
//!   the header is still incomplete, `Ok(Some((header, consumed)))` once whole (the bytes
//!   after `consumed` are the client's first data and stay with the caller), an error as soon
//!   as the bytes cannot be a valid header. Limits are checked before anything is buffered
//!   beyond them: a v1 line ends within [`V1_MAX_LINE`] bytes, a v2 header declares at most
//!   [`V2_MAX_LEN`] bytes of addresses and TLVs.
//! - [`encode_v2`] and [`encode_v2_local`] write the header we send to backends.
//! - [`Cidr`] and [`TrustedSources`] say which peers may send a header at all: the spec
//!   forbids guessing whether one is present, so the caller expects one from trusted
//!   balancers only and refuses (never sniffs) it from anyone else.
//!
//! Every [`ProxyError`] is the fault of the peer that sent the header (the balancer, or a
//! client connecting where a balancer was expected): log it at `warn` and close.
//!
//! Addresses are reported as the client would see them: IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`) come back as IPv4, so `parse(&encode_v2(a, b))` gives `a` and `b`
//! back even when one is IPv4 and the other IPv6.

mod cidr;
mod v1;
mod v2;

#[cfg(test)]
mod cidr_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v1_tests;

use std::net::{IpAddr, SocketAddr};

pub use cidr::{Cidr, CidrError, TrustedSources};
pub use v2::{encode_v2, encode_v2_local};

/// The 12 bytes that open a v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The most bytes of addresses and TLVs a v2 header may declare (its length field).
///
/// haproxy's own headers are 16 + 36 bytes of IPv6 addresses plus a few short TLVs
/// (unique id up to 128 bytes, ALPN, SNI, SSL details); 1536 leaves room for all of them
/// and for AF_UNIX addresses (216 bytes) while bounding what one peer makes us buffer.
pub const V2_MAX_LEN: usize = 1536;
/// The longest v1 line, CRLF included (`PROXY UNKNOWN` with two full IPv6 addresses).
pub const V1_MAX_LINE: usize = 107;

/// Registered TLV types (section 2.2 of the spec); [`Header::tlvs`] keeps any type.
pub mod tlv {
    /// Application-Layer Protocol Negotiation, as the client sent it in TLS.
    pub const ALPN: u8 = 0x01;
    /// The host name the client asked for (TLS SNI or otherwise), UTF-8.
    pub const AUTHORITY: u8 = 0x02;
    /// CRC32C of the whole header; [`super::parse`] verifies it.
    pub const CRC32C: u8 = 0x03;
    /// Padding, to be ignored.
    pub const NOOP: u8 = 0x04;
    /// An opaque id of the connection, up to 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// TLS details of the client's connection (flags, verify result, sub-TLVs).
    pub const SSL: u8 = 0x20;
    /// The network namespace the connection was accepted in.
    pub const NETNS: u8 = 0x30;
}

/// What the sender says the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The sender's own connection (a health check): its real endpoints apply.
    Local,
    /// Relayed on behalf of a client: the header's addresses (when given) apply.
    Proxy,
}

/// A parsed PROXY header, v1 or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub command: Command,
    /// The client's address; None for LOCAL, and for families we do not relay (v2 UNSPEC,
    /// UDP, AF_UNIX; v1 UNKNOWN): the connection's own peer address applies.
    pub source: Option<SocketAddr>,
    /// The address the client connected to; None exactly when `source` is.
    pub destination: Option<SocketAddr>,
    /// v2 TLVs as (type, value), in wire order, unknown types included; empty for v1.
    pub tlvs: Vec<(u8, Vec<u8>)>,
}

impl Header {
    /// The value of the first TLV of this type.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, v)| v.as_slice())
    }
}

/// Why the first bytes of a connection are not an acceptable PROXY header.
///
/// Messages are short and fit a log line; all are the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Neither the v2 signature nor `PROXY `: a client speaking directly, not a balancer.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// No CRLF within the first 107 bytes of a v1 line.
    #[error("PROXY v1 line longer than {V1_MAX_LINE} bytes")]
    V1TooLong,
    /// A v1 line that does not match the grammar; the text says which part.
    #[error("malformed PROXY v1 line: {0}")]
    V1Malformed(&'static str),
    /// The v2 signature with a version other than 2 (the byte's high nibble).
    #[error("unsupported PROXY version {0} (expected 2)")]
    V2Version(u8),
    /// A command other than LOCAL (0) or PROXY (1).
    #[error("unsupported PROXY v2 command {0}")]
    V2Command(u8),
    /// A family/transport byte the spec does not list.
    #[error("unsupported PROXY v2 address family 0x{0:02x}")]
    V2Family(u8),
    /// The declared length is over [`V2_MAX_LEN`]; raised from the 16-byte header alone.
    #[error("PROXY v2 header too long: {len} bytes, limit {V2_MAX_LEN}")]
    V2TooLong { len: usize },
    /// The declared length cannot hold the addresses of the declared family.
    #[error("PROXY v2 length {len} too short for family 0x{family:02x}")]
    V2Truncated { family: u8, len: usize },
    /// A TLV that overruns the header, or a CRC32C TLV that is not 4 bytes; the offset
    /// counts from the header's first byte.
    #[error("malformed PROXY v2 TLV at offset {0}")]
    V2Tlv(usize),
    /// The CRC32C TLV does not match the header.
    #[error("PROXY v2 checksum mismatch")]
    V2Checksum,
}

/// Reads a PROXY header (v1 or v2) from the start of `buf`.
///
/// `Ok(None)`: the bytes so far are a valid beginning; read more. `Ok(Some((h, n)))`: the
/// header is `buf[..n]`. Errors are raised from the first byte that rules the header out,
/// so a direct client is refused from its first byte and an oversized header from its
/// length field. Never panics, whatever `buf` holds.
pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    match buf.first() {
        None => Ok(None),
        Some(b'\r') => v2::parse(buf),
        Some(b'P') => v1::parse(buf),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

/// `ip` as a client would see it: an IPv4-mapped IPv6 address is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Whether `buf` is a prefix of `expected` or starts with all of it; Err at the first
/// differing byte.
fn prefix_matches(buf: &[u8], expected: &[u8]) -> Result<bool, ProxyError> {
    let n = buf.len().min(expected.len());
    if buf[..n] == expected[..n] {
        Ok(n == expected.len())
    } else {
        Err(ProxyError::NotProxy)
    }
}
