//! Parsing and encoding as a whole: v2 round trips, the documented layout, TLVs, limits,
//! the early verdicts, and properties over random input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use proptest::prelude::*;

use super::v2::crc32c;
use super::*;

pub(super) fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Parses a complete header and checks it consumed exactly `bytes`.
pub(super) fn whole(bytes: &[u8]) -> Header {
    let (h, n) = parse(bytes).unwrap().expect("complete header");
    assert_eq!(n, bytes.len());
    h
}

/// Every strict prefix of `bytes` is incomplete, the whole is a header, and trailing data
/// stays with the caller.
pub(super) fn assert_incremental(bytes: &[u8]) -> Header {
    for k in 0..bytes.len() {
        assert_eq!(parse(&bytes[..k]), Ok(None), "prefix of {k} bytes");
    }
    let mut more = bytes.to_vec();
    more.extend_from_slice(b"\x10rest of the stream");
    let (h, n) = parse(&more).unwrap().unwrap();
    assert_eq!(n, bytes.len());
    assert_eq!(h, whole(bytes));
    h
}

/// A v2 header with the given command/family bytes and block after the length.
fn v2(ver_cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(family);
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(block);
    out
}

/// The 12-byte TCP4 address block of 192.168.0.1:56324 -> 192.168.0.11:443.
const DOC_V4_BLOCK: [u8; 12] = [
    192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB, //
];

#[test]
fn round_trip_v4() {
    let (a, b) = (sa("192.168.0.1:56324"), sa("192.168.0.11:443"));
    let bytes = encode_v2(a, b);
    assert_eq!(bytes.len(), 16 + 12);
    assert_eq!(bytes[12..16], [0x21, 0x11, 0x00, 0x0C]);
    let h = assert_incremental(&bytes);
    assert_eq!(h.command, Command::Proxy);
    assert_eq!((h.source, h.destination), (Some(a), Some(b)));
    assert!(h.tlvs.is_empty());
}

#[test]
fn round_trip_v6() {
    let (a, b) = (sa("[2001:db8::1]:40000"), sa("[fe80::2]:14500"));
    let bytes = encode_v2(a, b);
    assert_eq!(bytes[12..16], [0x21, 0x21, 0x00, 0x24]);
    let h = assert_incremental(&bytes);
    assert_eq!((h.source, h.destination), (Some(a), Some(b)));
}

#[test]
fn round_trip_mixed_maps_v4_into_v6_and_back() {
    let (a, b) = (sa("203.0.113.7:5000"), sa("[2001:db8::80]:443"));
    let bytes = encode_v2(a, b);
    assert_eq!(bytes[13], 0x21, "mixed families go as TCP over IPv6");
    assert_eq!(
        bytes[16..32],
        Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped().octets()
    );
    let h = whole(&bytes);
    assert_eq!((h.source, h.destination), (Some(a), Some(b)));
    // And the other way round.
    let h = whole(&encode_v2(b, a));
    assert_eq!((h.source, h.destination), (Some(b), Some(a)));
}

#[test]
fn encode_drops_flow_label_and_scope() {
    let a = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 99, 3));
    let h = whole(&encode_v2(a, sa("[::1]:1")));
    assert_eq!(h.source, Some(sa("[fe80::1]:7")));
}

#[test]
fn local_header() {
    let bytes = encode_v2_local();
    assert_eq!(bytes, b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00");
    let h = assert_incremental(&bytes);
    assert_eq!(h.command, Command::Local);
    assert_eq!((h.source, h.destination), (None, None));
}

#[test]
fn documented_v2_layout_by_hand() {
    // Section 2.2, byte by byte: signature, 0x21 (v2 PROXY), 0x11 (TCP over IPv4),
    // length 12, src addr, dst addr, src port, dst port.
    let bytes: Vec<u8> = [
        &[
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        ][..],
        &[0x21, 0x11, 0x00, 0x0C],
        &DOC_V4_BLOCK,
    ]
    .concat();
    let h = assert_incremental(&bytes);
    assert_eq!(h.source, Some(sa("192.168.0.1:56324")));
    assert_eq!(h.destination, Some(sa("192.168.0.11:443")));
    assert_eq!(
        bytes,
        encode_v2(sa("192.168.0.1:56324"), sa("192.168.0.11:443"))
    );
}

#[test]
fn local_skips_whatever_block_it_announces() {
    // "Receivers MUST always consider this field to skip the appropriate number of bytes
    // and must not assume zero is presented for LOCAL connections."
    let bytes = v2(0x20, 0x11, &DOC_V4_BLOCK);
    let h = assert_incremental(&bytes);
    assert_eq!(h.command, Command::Local);
    assert_eq!((h.source, h.destination), (None, None));
}

#[test]
fn unsupported_families_fall_back_to_real_endpoints() {
    for (family, len) in [
        (0x00u8, 0usize),
        (0x12, 12),
        (0x22, 36),
        (0x31, 216),
        (0x32, 216),
    ] {
        let bytes = v2(0x21, family, &vec![7; len]);
        let h = assert_incremental(&bytes);
        assert_eq!(h.command, Command::Proxy, "family {family:#x}");
        assert_eq!(
            (h.source, h.destination),
            (None, None),
            "family {family:#x}"
        );
    }
}

#[test]
fn tlvs_parsed_after_the_addresses() {
    let mut block = DOC_V4_BLOCK.to_vec();
    block.extend_from_slice(&[tlv::ALPN, 0, 2, b'h', b'2']);
    block.extend_from_slice(&[tlv::NOOP, 0, 0]);
    block.extend_from_slice(&[0xE0, 0, 3, 1, 2, 3]);
    let h = assert_incremental(&v2(0x21, 0x11, &block));
    assert_eq!(h.source, Some(sa("192.168.0.1:56324")));
    assert_eq!(
        h.tlvs,
        vec![
            (tlv::ALPN, b"h2".to_vec()),
            (tlv::NOOP, vec![]),
            (0xE0, vec![1, 2, 3])
        ]
    );
    assert_eq!(h.tlv(tlv::ALPN), Some(&b"h2"[..]));
    assert_eq!(h.tlv(tlv::AUTHORITY), None);
}

#[test]
fn tlvs_after_unspec_and_local() {
    // haproxy sends LOCAL + UNSPEC with TLVs (unique id) right after the length.
    let h = whole(&v2(0x20, 0x00, &[tlv::UNIQUE_ID, 0, 3, b'a', b'b', b'c']));
    assert_eq!(h.tlvs, vec![(tlv::UNIQUE_ID, b"abc".to_vec())]);
}

#[test]
fn tlv_overrunning_the_header_is_refused() {
    let mut block = DOC_V4_BLOCK.to_vec();
    block.extend_from_slice(&[tlv::AUTHORITY, 0, 5, b'a']);
    assert_eq!(parse(&v2(0x21, 0x11, &block)), Err(ProxyError::V2Tlv(28)));
    // A TLV header cut short by the declared length.
    let mut block = DOC_V4_BLOCK.to_vec();
    block.extend_from_slice(&[tlv::AUTHORITY, 0]);
    assert_eq!(parse(&v2(0x21, 0x11, &block)), Err(ProxyError::V2Tlv(28)));
}

#[test]
fn crc32c_known_answer() {
    // RFC 3720 B.4 / the usual check value of CRC-32C.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&[0; 32]), 0x8A91_36AA);
}

/// A TCP4 header with a CRC32C TLV holding `crc(header)` (or a wrong value).
fn with_crc(correct: bool) -> Vec<u8> {
    let mut block = DOC_V4_BLOCK.to_vec();
    block.extend_from_slice(&[tlv::CRC32C, 0, 4, 0, 0, 0, 0]);
    block.extend_from_slice(&[tlv::AUTHORITY, 0, 1, b'x']);
    let mut bytes = v2(0x21, 0x11, &block);
    let crc = crc32c(&bytes) ^ u32::from(!correct);
    bytes[31..35].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn crc32c_tlv_checked() {
    let h = assert_incremental(&with_crc(true));
    assert_eq!(h.tlvs.len(), 2);
    assert_eq!(parse(&with_crc(false)), Err(ProxyError::V2Checksum));
    // A CRC32C TLV must hold 4 bytes.
    let mut block = DOC_V4_BLOCK.to_vec();
    block.extend_from_slice(&[tlv::CRC32C, 0, 2, 0, 0]);
    assert_eq!(parse(&v2(0x21, 0x11, &block)), Err(ProxyError::V2Tlv(28)));
}

#[test]
fn length_over_the_limit_refused_from_the_fixed_header() {
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend_from_slice(&[0x21, 0x21]);
    fixed.extend_from_slice(&((V2_MAX_LEN + 1) as u16).to_be_bytes());
    assert_eq!(
        parse(&fixed),
        Err(ProxyError::V2TooLong {
            len: V2_MAX_LEN + 1
        })
    );
    fixed[14..16].copy_from_slice(&[0xFF, 0xFF]);
    assert_eq!(parse(&fixed), Err(ProxyError::V2TooLong { len: 65535 }));
    // Exactly the limit is waited for.
    fixed[14..16].copy_from_slice(&(V2_MAX_LEN as u16).to_be_bytes());
    assert_eq!(parse(&fixed), Ok(None));
}

#[test]
fn length_too_short_for_the_family() {
    assert_eq!(
        parse(&v2(0x21, 0x11, &[0; 11])[..16]),
        Err(ProxyError::V2Truncated {
            family: 0x11,
            len: 11
        })
    );
    assert_eq!(
        parse(&v2(0x21, 0x21, &[0; 12])[..16]),
        Err(ProxyError::V2Truncated {
            family: 0x21,
            len: 12
        })
    );
    // LOCAL too: the length must still cover the family's addresses.
    assert_eq!(
        parse(&v2(0x20, 0x31, &[])),
        Err(ProxyError::V2Truncated {
            family: 0x31,
            len: 0
        })
    );
}

#[test]
fn bad_version_command_family_decided_at_their_byte() {
    let sig = V2_SIGNATURE.to_vec();
    let at = |extra: &[u8]| parse(&[&sig[..], extra].concat());
    assert_eq!(at(&[0x11]), Err(ProxyError::V2Version(1)));
    assert_eq!(at(&[0x31]), Err(ProxyError::V2Version(3)));
    assert_eq!(at(&[0x22]), Err(ProxyError::V2Command(2)));
    assert_eq!(at(&[0x2F]), Err(ProxyError::V2Command(15)));
    for family in [0x01u8, 0x10, 0x13, 0x23, 0x30, 0x41, 0xFF] {
        assert_eq!(at(&[0x21, family]), Err(ProxyError::V2Family(family)));
    }
}

#[test]
fn not_proxy_decided_at_the_first_differing_byte() {
    for header in [&V2_SIGNATURE[..], b"PROXY "] {
        for i in 0..header.len() {
            let mut bytes = header[..=i].to_vec();
            // Every byte value but the right one is refused right there.
            for b in (0..=255u8).filter(|&b| b != header[i]) {
                bytes[i] = b;
                let got = parse(&bytes);
                let expected = if i == 0 && (b == b'\r' || b == b'P') {
                    Ok(None) // the other version's first byte
                } else {
                    Err(ProxyError::NotProxy)
                };
                assert_eq!(got, expected, "byte {i} = {b:#04x}");
            }
        }
    }
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
    assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROXY"), Ok(None));
    assert_eq!(parse(b"PROXYTCP4"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b""), Ok(None));
}

#[test]
fn errors_read_well_in_a_log_line() {
    assert_eq!(
        ProxyError::V2TooLong { len: 2000 }.to_string(),
        "PROXY v2 header too long: 2000 bytes, limit 1536"
    );
    assert_eq!(
        ProxyError::V1Malformed("source port").to_string(),
        "malformed PROXY v1 line: source port"
    );
    assert_eq!(
        ProxyError::V2Family(0x41).to_string(),
        "unsupported PROXY v2 address family 0x41"
    );
    assert_eq!(
        ProxyError::NotProxy.to_string(),
        "not a PROXY protocol header"
    );
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
        // Mapped addresses are common on dual-stack sockets: give them their own share.
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(
            IpAddr::V6(Ipv4Addr::from(ip).to_ipv6_mapped()),
            port
        )),
    ]
}

/// What a round trip gives back: mapped IPv6 addresses as IPv4.
fn canonical_addr(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(super::canonical(a.ip()), a.port())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&data);
    }

    #[test]
    fn bytes_after_a_signature_never_panic(
        v2_first in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..1700),
    ) {
        let mut bytes = if v2_first { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
        bytes.extend_from_slice(&data);
        if let Ok(Some((_, n))) = parse(&bytes) {
            prop_assert!(n <= bytes.len());
        }
    }

    #[test]
    fn v2_headers_with_random_tlv_areas_never_panic(
        ver_cmd in prop_oneof![Just(0x20u8), Just(0x21u8)],
        family in prop_oneof![Just(0x00u8), Just(0x11), Just(0x21), Just(0x31), any::<u8>()],
        block in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let bytes = v2(ver_cmd, family, &block);
        if let Ok(Some((_, n))) = parse(&bytes) {
            prop_assert_eq!(n, bytes.len());
        }
    }

    #[test]
    fn encode_then_parse_gives_the_addresses_back(a in socket_addr(), b in socket_addr()) {
        let bytes = encode_v2(a, b);
        let (h, n) = parse(&bytes).unwrap().unwrap();
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(h.command, Command::Proxy);
        prop_assert_eq!(h.source, Some(canonical_addr(a)));
        prop_assert_eq!(h.destination, Some(canonical_addr(b)));
        prop_assert!(h.tlvs.is_empty());
    }

    #[test]
    fn every_split_point_waits_then_completes(a in socket_addr(), b in socket_addr()) {
        let bytes = encode_v2(a, b);
        for k in 0..bytes.len() {
            prop_assert_eq!(parse(&bytes[..k]), Ok(None));
        }
    }
}
