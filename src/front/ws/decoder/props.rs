//! Property tests: no input panics the decoder, and any binary stream, fragmented and cut
//! anywhere, comes out exactly.

use proptest::collection::vec;
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::tests::{relay, relay_bytes};
use crate::front::ws::encoder::client_frame;

/// A client frame with arbitrary header fields, as bytes.
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..16,
        any::<bool>(),
        0u8..8,
        any::<[u8; 4]>(),
        vec(any::<u8>(), 0..200),
        any::<bool>(),
    )
        .prop_map(|(op, fin, rsv, key, payload, masked)| {
            let mut frame = client_frame(OpCode::from(op), fin, &payload, key);
            frame[0] |= rsv << 4;
            if !masked {
                frame[1] &= 0x7f;
            }
            frame
        })
}

/// One message's payload cut into fragments, maybe with a ping after some fragments.
fn message() -> impl Strategy<Value = (Vec<u8>, Vec<usize>, Vec<bool>)> {
    vec(any::<u8>(), 0..3000).prop_flat_map(|data| {
        let len = data.len();
        (Just(data), vec(0..=len, 0..4), vec(any::<bool>(), 4))
    })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        data in vec(any::<u8>(), 0..600),
        cuts in vec(0usize..600, 0..6),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let a = relay(&data, &cuts);
        let b = relay_bytes(&data, &cuts);
        prop_assert_eq!(a.is_ok(), b.is_ok());
    }

    #[test]
    fn random_frames_never_panic(
        frames in vec(any_frame(), 0..8),
        cuts in vec(0usize..1500, 0..6),
    ) {
        let stream = frames.concat();
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = relay(&stream, &[]);
        prop_assert_eq!(&relay(&stream, &cuts), &whole);
        prop_assert_eq!(&relay_bytes(&stream, &cuts), &whole);
    }

    #[test]
    fn binary_streams_round_trip(
        messages in vec(message(), 1..5),
        keys in vec(any::<[u8; 4]>(), 1..4),
        cuts in vec(0usize..20_000, 0..12),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        let mut pings = Vec::new();
        let mut k = 0;
        let mut key = || { k += 1; keys[k % keys.len()] };
        for (data, splits, ping_after) in &messages {
            let mut splits = splits.clone();
            splits.sort_unstable();
            let bounds: Vec<usize> = [0].into_iter().chain(splits).chain([data.len()]).collect();
            let parts = bounds.len() - 1;
            for (i, w) in bounds.windows(2).enumerate() {
                let op = if i == 0 { Data::Binary } else { Data::Continue };
                stream.extend(client_frame(OpCode::Data(op), i + 1 == parts, &data[w[0]..w[1]], key()));
                if ping_after[i % ping_after.len()] {
                    let p = vec![i as u8; i * 10];
                    stream.extend(client_frame(OpCode::Control(Control::Ping), true, &p, key()));
                    pings.push(p);
                }
            }
            want.extend_from_slice(data);
        }
        let mut cuts = cuts;
        cuts.sort_unstable();
        let seen = relay(&stream, &cuts).expect("valid stream");
        prop_assert_eq!(&seen.data, &want);
        prop_assert_eq!(&seen.pings, &pings);
        let seen = relay_bytes(&stream, &cuts).expect("valid stream");
        prop_assert_eq!(&seen.data, &want);
    }
}
