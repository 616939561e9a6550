//! The binary header (version 2): signature, version/command, family, length, addresses,
//! TLVs. Parsing decides each field as soon as its byte arrives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    canonical, prefix_matches, tlv, Command, Header, ProxyError, V2_MAX_LEN, V2_SIGNATURE,
};

/// Signature, version/command, family/transport, length.
const FIXED: usize = 16;
/// Version 2 in the high nibble.
const VERSION: u8 = 0x20;
const CMD_LOCAL: u8 = 0x0;
const CMD_PROXY: u8 = 0x1;
const TCP4: u8 = 0x11;
const TCP6: u8 = 0x21;

/// The bytes of addresses a family/transport byte announces, for the bytes the spec lists;
/// None for any other (refused).
fn address_len(family: u8) -> Option<usize> {
    match family {
        0x00 => Some(0),
        0x11 | 0x12 => Some(12),
        0x21 | 0x22 => Some(36),
        0x31 | 0x32 => Some(216),
        _ => None,
    }
}

/// Parses a v2 header; `buf` starts with `\r`.
pub(super) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    if !prefix_matches(buf, &V2_SIGNATURE)? {
        return Ok(None);
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(None);
    };
    if ver_cmd & 0xF0 != VERSION {
        return Err(ProxyError::V2Version(ver_cmd >> 4));
    }
    let command = match ver_cmd & 0x0F {
        CMD_LOCAL => Command::Local,
        CMD_PROXY => Command::Proxy,
        other => return Err(ProxyError::V2Command(other)),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(None);
    };
    let addr_len = address_len(family).ok_or(ProxyError::V2Family(family))?;
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > V2_MAX_LEN {
        return Err(ProxyError::V2TooLong { len });
    }
    if len < addr_len {
        return Err(ProxyError::V2Truncated { family, len });
    }
    let total = FIXED + len;
    let Some(block) = buf.get(FIXED..total) else {
        return Ok(None);
    };
    let addresses = &block[..addr_len];
    let (source, destination) = match (command, family) {
        (Command::Proxy, TCP4 | TCP6) => {
            let (s, d) = addresses_of(addresses);
            (Some(s), Some(d))
        }
        // LOCAL: the real endpoints apply. UNSPEC, UDP, AF_UNIX: not what a TCP gateway
        // relays; the spec lets a receiver fall back to the real endpoints.
        _ => (None, None),
    };
    let tlvs = parse_tlvs(&buf[..total], FIXED + addr_len)?;
    Ok(Some((
        Header {
            command,
            source,
            destination,
            tlvs,
        },
        total,
    )))
}

/// Source and destination from a TCP4 (12 bytes) or TCP6 (36 bytes) address block.
fn addresses_of(block: &[u8]) -> (SocketAddr, SocketAddr) {
    let ip_len = (block.len() - 4) / 2;
    let ip = |bytes: &[u8]| -> IpAddr {
        if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
            IpAddr::V4(Ipv4Addr::from(v4))
        } else {
            let mut v6 = [0u8; 16];
            v6.copy_from_slice(bytes);
            canonical(IpAddr::V6(Ipv6Addr::from(v6)))
        }
    };
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let src = ip(&block[..ip_len]);
    let dst = ip(&block[ip_len..2 * ip_len]);
    (
        SocketAddr::new(src, port(2 * ip_len)),
        SocketAddr::new(dst, port(2 * ip_len + 2)),
    )
}

/// The TLVs of `header` (the whole header, fixed part included) from byte `start`; checks
/// a CRC32C TLV against the header when there is one.
fn parse_tlvs(header: &[u8], start: usize) -> Result<Vec<(u8, Vec<u8>)>, ProxyError> {
    let mut tlvs = Vec::new();
    let mut at = start;
    while at < header.len() {
        let (Some(&kind), Some(&hi), Some(&lo)) =
            (header.get(at), header.get(at + 1), header.get(at + 2))
        else {
            return Err(ProxyError::V2Tlv(at));
        };
        let value_at = at + 3;
        let end = value_at + usize::from(u16::from_be_bytes([hi, lo]));
        let Some(value) = header.get(value_at..end) else {
            return Err(ProxyError::V2Tlv(at));
        };
        if kind == tlv::CRC32C {
            let Ok(expected) = <[u8; 4]>::try_from(value) else {
                return Err(ProxyError::V2Tlv(at));
            };
            // The checksum covers the whole header with its own value zeroed.
            let crc = crc32c_update(!0, &header[..value_at]);
            let crc = crc32c_update(crc, &[0; 4]);
            let crc = !crc32c_update(crc, &header[end..]);
            if crc != u32::from_be_bytes(expected) {
                return Err(ProxyError::V2Checksum);
            }
        }
        tlvs.push((kind, value.to_vec()));
        at = end;
    }
    Ok(tlvs)
}

/// Feeds `bytes` to a CRC32C (Castagnoli, reflected 0x82F63B78) register; the caller
/// starts from `!0` and inverts the result. Headers are short: bitwise is fast enough.
fn crc32c_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// The CRC32C of `bytes` (RFC 4960 appendix B).
#[cfg(test)]
pub(super) fn crc32c(bytes: &[u8]) -> u32 {
    !crc32c_update(!0, bytes)
}

/// A PROXY header for a TCP connection from `source` to `destination`.
///
/// Two IPv4 addresses go as TCP over IPv4; otherwise both go as TCP over IPv6, an IPv4
/// one mapped (`::ffff:a.b.c.d`). IPv6 flow labels and scope ids are not carried.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(VERSION | CMD_PROXY);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(TCP4);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.push(TCP6);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&as_v6(s).octets());
            out.extend_from_slice(&as_v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

/// A LOCAL header: the connection is ours (a health check), no addresses.
pub fn encode_v2_local() -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED);
    out.extend_from_slice(&V2_SIGNATURE);
    out.extend_from_slice(&[VERSION | CMD_LOCAL, 0x00, 0, 0]);
    out
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}
