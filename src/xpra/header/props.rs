//! Property tests of the frame header: every header writes and parses back to itself, any
//! 8 bytes parse exactly when they are a header, and a frame claiming more than the limit
//! is refused from its header alone, with nothing reserved for the claimed size.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;

use super::{Header, HEADER_LEN, MAGIC};
use crate::xpra::packet::{FrameDecoder, Limits, ABS_MAX_PACKET};
use crate::xpra::ProtocolError;

fn any_header() -> impl Strategy<Value = Header> {
    (any::<u8>(), any::<u8>(), any::<u8>(), 1u32..).prop_map(|(flags, compression, chunk, size)| {
        Header {
            flags,
            compression,
            chunk,
            size,
        }
    })
}

/// Eight bytes, often with the magic byte or a zero size (rare among random bytes).
fn eight_bytes() -> impl Strategy<Value = [u8; HEADER_LEN]> {
    (any::<[u8; HEADER_LEN]>(), any::<bool>(), any::<bool>()).prop_map(|(mut b, magic, zero)| {
        if magic {
            b[0] = MAGIC;
        }
        if zero {
            b[4..].fill(0);
        }
        b
    })
}

/// A configured limit (some above xpra's absolute one) and a size over what it enforces.
fn over_limit() -> impl Strategy<Value = (usize, u32)> {
    (1usize..=(2 * ABS_MAX_PACKET)).prop_flat_map(|limit| {
        let enforced = limit.min(ABS_MAX_PACKET) as u32;
        (Just(limit), (enforced + 1)..=u32::MAX)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn headers_round_trip(h in any_header()) {
        let bytes = h.to_bytes();
        prop_assert_eq!(bytes[0], MAGIC);
        prop_assert_eq!(Header::parse(&bytes), Ok(h));
        prop_assert_eq!(h.payload_len(), h.size as usize);
    }

    #[test]
    fn any_eight_bytes_parse_exactly_when_they_are_a_header(bytes in eight_bytes()) {
        let size = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        match Header::parse(&bytes) {
            Ok(h) => {
                prop_assert!(bytes[0] == MAGIC && size != 0);
                prop_assert_eq!(h.to_bytes(), bytes);
            }
            Err(e) => {
                prop_assert!(bytes[0] != MAGIC || size == 0);
                prop_assert_eq!(e, ProtocolError::InvalidHeader);
            }
        }
    }

    #[test]
    fn an_over_limit_size_is_refused_from_the_header_without_reserving_it(
        mut h in any_header(),
        (limit, size) in over_limit(),
        some_payload in vec(any::<u8>(), 0..256),
    ) {
        h.size = size;
        let mut buf = BytesMut::with_capacity(HEADER_LEN + some_payload.len());
        buf.extend_from_slice(&h.to_bytes());
        buf.extend_from_slice(&some_payload);
        let (len, capacity) = (buf.len(), buf.capacity());
        let decoder = FrameDecoder::new(Limits { max_packet: limit });
        let err = decoder.next_frame(&mut buf).unwrap_err();
        prop_assert_eq!(err, ProtocolError::TooLarge {
            size: h.size as usize,
            limit: limit.min(ABS_MAX_PACKET),
        });
        // Nothing consumed, nothing grown: the claimed size was never reserved.
        prop_assert_eq!((buf.len(), buf.capacity()), (len, capacity));
    }
}
