//! The text header (version 1): `PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n`, `TCP6` alike,
//! or `PROXY UNKNOWN` and anything up to the CRLF. At most 107 bytes, CRLF included.
//!
//! The protocol word and the characters of an address line are checked as they arrive;
//! the fields are read once the CRLF is there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{canonical, prefix_matches, Command, Header, ProxyError, V1_MAX_LINE};

const PREFIX: &[u8] = b"PROXY ";
const PROTOCOLS: [&[u8]; 3] = [b"TCP4 ", b"TCP6 ", b"UNKNOWN"];

fn malformed(what: &'static str) -> ProxyError {
    ProxyError::V1Malformed(what)
}

/// Parses a v1 line; `buf` starts with `P`.
pub(super) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    if !prefix_matches(buf, PREFIX)? {
        return Ok(None);
    }
    // The CR must sit at index 105 at the latest for the line to end within 107 bytes.
    let scanned = &buf[..buf.len().min(V1_MAX_LINE - 1)];
    let Some(cr) = scanned.iter().position(|&b| b == b'\r' || b == b'\n') else {
        check_partial(&buf[PREFIX.len()..scanned.len()])?;
        return if buf.len() >= V1_MAX_LINE - 1 {
            Err(ProxyError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    // The bytes before the line end first: an error is the one at the earliest byte,
    // whatever the read boundaries (found by the proxy_protocol fuzz target).
    check_partial(&buf[PREFIX.len()..cr])?;
    if buf[cr] == b'\n' {
        return Err(malformed("LF without CR"));
    }
    match buf.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((parse_line(&buf[PREFIX.len()..cr])?, cr + 2))),
        Some(_) => Err(malformed("CR without LF")),
    }
}

/// Checks what has arrived of the line after `PROXY ` (no CR or LF in it): a known
/// protocol word, then only address characters on a TCP line.
fn check_partial(rest: &[u8]) -> Result<(), ProxyError> {
    let known = PROTOCOLS.iter().any(|p| {
        let n = rest.len().min(p.len());
        rest[..n] == p[..n]
    });
    if !known {
        return Err(malformed("unknown protocol"));
    }
    if rest.first() == Some(&b'U') {
        // Anything may follow UNKNOWN (ignored), after a space.
        return match rest.get(7) {
            None | Some(b' ') => Ok(()),
            Some(_) => Err(malformed("unknown protocol")),
        };
    }
    // A TCP4 or TCP6 line (or the start of one).
    let fields = rest.get(5..).unwrap_or_default();
    if fields
        .iter()
        .all(|&b| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b' ')
    {
        Ok(())
    } else {
        Err(malformed("invalid character"))
    }
}

/// Reads the complete line after `PROXY `, CRLF excluded; `check_partial` passed on it.
fn parse_line(rest: &[u8]) -> Result<Header, ProxyError> {
    if rest.starts_with(b"UNKNOWN") {
        return Ok(Header {
            command: Command::Proxy,
            source: None,
            destination: None,
            tlvs: Vec::new(),
        });
    }
    // check_partial let through only ASCII on a TCP line.
    let text = std::str::from_utf8(rest).map_err(|_| malformed("invalid character"))?;
    let mut fields = text.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(malformed("wrong number of fields"));
    };
    let ip = |s: &str, what| -> Result<IpAddr, ProxyError> {
        match proto {
            "TCP4" => s.parse::<Ipv4Addr>().map(IpAddr::V4),
            _ => s.parse::<Ipv6Addr>().map(|v6| canonical(IpAddr::V6(v6))),
        }
        .map_err(|_| malformed(what))
    };
    let source = SocketAddr::new(
        ip(src, "source address")?,
        port(sport).ok_or(malformed("source port"))?,
    );
    let destination = SocketAddr::new(
        ip(dst, "destination address")?,
        port(dport).ok_or(malformed("destination port"))?,
    );
    Ok(Header {
        command: Command::Proxy,
        source: Some(source),
        destination: Some(destination),
        tlvs: Vec::new(),
    })
}

/// A decimal port in 0..=65535 without leading zeros or sign.
fn port(s: &str) -> Option<u16> {
    let digits_ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}
