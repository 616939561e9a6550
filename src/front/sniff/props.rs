//! Property tests of the sniffer: no input panics it, a verdict once reached never changes
//! as more bytes arrive, and generated xpra headers, TLS ClientHello starts and HTTP
//! request lines get their doors from their first bytes on.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{classify, Kind, METHODS, SNIFF_MAX};
use crate::xpra::header::Header;

/// Bytes that start like something: part of a method, `P`, 0x16, or nothing special.
fn tricky_start() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0..METHODS.len(), 0usize..9)
            .prop_map(|(m, n)| METHODS[m][..n.min(METHODS[m].len())].to_vec()),
        Just(b"P".to_vec()),
        Just(vec![0x16]),
        Just(Vec::new()),
    ]
}

/// A start and an arbitrary tail: most of the interesting verdicts are near the front.
fn input() -> impl Strategy<Value = Vec<u8>> {
    (tricky_start(), vec(any::<u8>(), 0..SNIFF_MAX + 40)).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

/// The first verdict on a prefix of `data`, and the prefix length that reached it.
fn first_verdict(data: &[u8]) -> Option<(usize, Kind)> {
    (0..=data.len()).find_map(|n| classify(&data[..n]).map(|k| (n, k)))
}

/// Asserts that `data` gets `want` from `from` bytes on (and no verdict before).
fn decided_at(data: &[u8], from: usize, want: Kind) -> Result<(), TestCaseError> {
    for n in 0..from {
        prop_assert_eq!(classify(&data[..n]), None, "prefix of {} bytes", n);
    }
    for n in from..=data.len() {
        prop_assert_eq!(classify(&data[..n]), Some(want), "prefix of {} bytes", n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_wait_past_the_limit(data in vec(any::<u8>(), 0..SNIFF_MAX + 40)) {
        let verdict = classify(&data);
        if data.len() >= SNIFF_MAX {
            prop_assert!(verdict.is_some());
        }
    }

    #[test]
    fn a_verdict_holds_for_every_longer_input(data in input()) {
        if let Some((at, kind)) = first_verdict(&data) {
            for n in at..=data.len() {
                prop_assert_eq!(classify(&data[..n]), Some(kind), "{} of {} bytes", n, data.len());
            }
        } else {
            prop_assert!(data.len() < SNIFF_MAX, "undecided at {} bytes", data.len());
        }
    }

    #[test]
    fn xpra_headers_are_xpra_from_their_second_byte(
        flags in 0u8..0x20,
        compression in any::<u8>(),
        chunk in any::<u8>(),
        size in 1u32..,
        payload in vec(any::<u8>(), 0..64),
    ) {
        let mut data = Header { flags, compression, chunk, size }.to_bytes().to_vec();
        data.extend(payload);
        decided_at(&data, 2, Kind::Xpra)?;
    }

    #[test]
    fn tls_client_hello_starts_are_tls_from_their_second_byte(
        minor in 0u8..=4,
        record_len in 1u16..=16_384,
        body in vec(any::<u8>(), 0..64),
    ) {
        // Record header (handshake, version 3.x, length), then a ClientHello (type 1).
        let mut data = vec![0x16, 0x03, minor];
        data.extend(record_len.to_be_bytes());
        data.push(0x01);
        data.extend(body);
        decided_at(&data, 2, Kind::Tls)?;
    }

    #[test]
    fn http_request_lines_are_http_once_the_method_and_its_space_are_in(
        method in 0..METHODS.len(),
        path in "/[A-Za-z0-9/._~%?=&-]{0,40}",
        version in prop_oneof![Just("HTTP/1.0"), Just("HTTP/1.1")],
        headers in vec("[A-Za-z-]{1,12}: [ -~]{0,20}", 0..4),
    ) {
        let mut text = format!("{}{path} {version}\r\n", std::str::from_utf8(METHODS[method]).unwrap());
        for h in headers {
            text.push_str(&h);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        decided_at(text.as_bytes(), METHODS[method].len(), Kind::Http)?;
    }
}
