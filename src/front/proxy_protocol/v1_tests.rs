//! The v1 text line: TCP4, TCP6, UNKNOWN, the 107-byte limit, and what is refused.

use super::tests::{assert_incremental, sa, whole};
use super::*;

#[test]
fn v1_tcp4() {
    let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    let h = assert_incremental(line);
    assert_eq!(h.command, Command::Proxy);
    assert_eq!(h.source, Some(sa("192.168.0.1:56324")));
    assert_eq!(h.destination, Some(sa("192.168.0.11:443")));
    assert!(h.tlvs.is_empty());
    let h = whole(b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    assert_eq!(h.source, Some(sa("255.255.255.255:65535")));
    let h = whole(b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
    assert_eq!(h.destination, Some(sa("0.0.0.0:0")));
}

#[test]
fn v1_tcp6() {
    let h = assert_incremental(b"PROXY TCP6 2001:db8::1 2001:DB8::2 40000 443\r\n");
    assert_eq!(h.source, Some(sa("[2001:db8::1]:40000")));
    assert_eq!(h.destination, Some(sa("[2001:db8::2]:443")));
    // A mapped IPv4 client is reported as IPv4.
    let h = whole(b"PROXY TCP6 ::ffff:10.1.2.3 ::1 1 2\r\n");
    assert_eq!(h.source, Some(sa("10.1.2.3:1")));
    // The longest line the spec allows: 104 bytes.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), 104);
    assert!(whole(line.as_bytes()).source.is_some());
}

#[test]
fn v1_unknown() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        b"PROXY UNKNOWN anything at all, even \xff\r\n",
    ] {
        let h = assert_incremental(line);
        assert_eq!(h.command, Command::Proxy);
        assert_eq!((h.source, h.destination), (None, None));
    }
    // The worst case of the spec: 107 bytes.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX_LINE);
    assert_incremental(line.as_bytes());
    assert_eq!(
        parse(b"PROXY UNKNOWNX\r\n"),
        Err(ProxyError::V1Malformed("unknown protocol"))
    );
}

#[test]
fn v1_too_long_decided_when_no_crlf_can_fit() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LINE - 2, b'a');
    assert_eq!(parse(&line), Ok(None));
    line.push(b'a'); // 106 bytes, no CR: the CRLF can no longer end by byte 107
    assert_eq!(parse(&line), Err(ProxyError::V1TooLong));
    line.extend_from_slice(b"\r\n");
    assert_eq!(parse(&line), Err(ProxyError::V1TooLong));
    assert_eq!(parse(&[b'P'; 300]), Err(ProxyError::NotProxy));
}

#[test]
fn v1_malformed() {
    let cases: &[(&[u8], &str)] = &[
        (b"PROXY TCP5 ", "unknown protocol"),
        (b"PROXY tcp4 ", "unknown protocol"),
        (b"PROXY UDP4 ", "unknown protocol"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR"),
        // The earliest bad byte decides, as it does when the line arrives byte by byte.
        (b"PROXY U\0\n", "unknown protocol"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF"),
        (b"PROXY TCP4 1.2.3.4/", "invalid character"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1", "invalid character"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "invalid character"),
        (b"PROXY TCP4 1.2.3.4\t", "invalid character"),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            "wrong number of fields",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            "wrong number of fields",
        ),
        (
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            "wrong number of fields",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            "wrong number of fields",
        ),
        (b"PROXY TCP4\r\n", "wrong number of fields"),
        (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "source address"),
        (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "source address"),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "source address"),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "source address"),
        (b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n", "destination address"),
        (b"PROXY TCP6 ::1 ::g 1 2\r\n", "invalid character"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "source port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n", "source port"),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999\r\n",
            "destination port",
        ),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 ab\r\n", "destination port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", "destination port"),
    ];
    for (line, what) in cases {
        assert_eq!(
            parse(line),
            Err(ProxyError::V1Malformed(what)),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}
