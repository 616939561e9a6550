//! `proxy_protocol`: the PROXY protocol reader (`front::proxy_protocol::parse`, v1 and v2)
//! that runs on the first bytes from a trusted balancer, before any door, and the v2 writer.
//!
//! Input: the first bytes of a connection.
//!
//! Guards:
//! - never panics;
//! - decides within the header's bounds and never waits for more: a v1 line within
//!   `V1_MAX_LINE` bytes, a v2 header within its 16 fixed bytes plus the declared length
//!   (at most `V2_MAX_LEN`);
//! - read boundaries change nothing: the verdict on a prefix holds for every longer prefix
//!   (a header parsed stays the same header and length; an error stays the same error),
//!   and an undecided prefix has only undecided prefixes;
//! - an unrelated client is refused from the first byte that differs from both signatures
//!   (within 12 bytes for v2, 6 for `PROXY `);
//! - a v2 header consumes exactly 16 + its declared length; TLVs lie inside it;
//! - addresses parsed are what `encode_v2` writes back: a PROXY header with addresses,
//!   re-encoded, parses to the same addresses.
#![no_main]

use deskrelay::front::proxy_protocol::{
    encode_v2, parse, Command, ProxyError, V1_MAX_LINE, V2_MAX_LEN,
};
use libfuzzer_sys::fuzz_target;

const V2_FIXED: usize = 16;

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(V2_FIXED + V2_MAX_LEN + 8)];
    let whole = parse(data);
    let mut first_verdict: Option<usize> = None;
    for n in 0..=data.len() {
        let verdict = parse(&data[..n]);
        match (&verdict, first_verdict) {
            (Ok(None), None) => {}
            (Ok(None), Some(at)) => panic!("decided at {at} bytes, undecided at {n}"),
            (_, None) => {
                first_verdict = Some(n);
                // Every longer prefix, the whole input included, must say the same.
                assert_eq!(verdict, whole, "verdict at {n} bytes differs from the whole");
            }
            (_, Some(_)) => assert_eq!(verdict, whole, "verdict changed at {n} bytes"),
        }
    }
    let v2 = data.first() == Some(&b'\r');
    match (&whole, first_verdict) {
        (Ok(None), _) => {
            let bound = if v2 {
                let declared = data
                    .get(14..16)
                    .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                V2_FIXED + declared
            } else {
                V1_MAX_LINE
            };
            assert!(data.len() < bound, "undecided after {} bytes", data.len());
        }
        (Err(ProxyError::NotProxy), Some(at)) => {
            assert!(at <= if v2 { 12 } else { 6 }, "refused only at {at} bytes")
        }
        (Err(_), _) => {}
        (Ok(Some((header, used))), Some(at)) => {
            assert_eq!(*used, at, "a header is decided by its last byte");
            if v2 {
                let declared = usize::from(u16::from_be_bytes([data[14], data[15]]));
                assert_eq!(*used, V2_FIXED + declared);
                let tlv_bytes: usize = header.tlvs.iter().map(|(_, v)| 3 + v.len()).sum();
                assert!(tlv_bytes <= declared);
            } else {
                assert!(*used <= V1_MAX_LINE && data[..*used].ends_with(b"\r\n"));
                assert!(header.tlvs.is_empty());
            }
            assert_eq!(header.source.is_some(), header.destination.is_some());
            if let (Command::Proxy, Some(src), Some(dst)) =
                (header.command, header.source, header.destination)
            {
                let again = encode_v2(src, dst);
                let (back, n) = parse(&again).expect("our own header").expect("whole");
                assert_eq!(n, again.len());
                assert_eq!((back.source, back.destination), (Some(src), Some(dst)));
            }
        }
        (Ok(Some(_)), None) => unreachable!("the whole input is one of the prefixes"),
    }
});
