//! Property tests of the gate: a stream of valid frames (packets in every encoder and
//! compression, raw chunks compressed or not) fed in arbitrary pieces passes every byte
//! through unchanged and types the same packets as the stream fed whole; arbitrary bytes
//! in arbitrary pieces never panic it.

use proptest::collection::vec;
use proptest::prelude::*;

use super::tests::{feed_pieces, frame, raw_chunk, WATCH};
use super::*;
use crate::xpra::compress::compress;
use crate::xpra::header::{Compression, Encoding};

/// One frame of the generated stream, and the watched type it carries, if any.
fn any_frame() -> impl Strategy<Value = (Vec<u8>, Option<&'static str>)> {
    let encoding = prop_oneof![
        Just(Encoding::Bencode),
        Just(Encoding::Rencode),
        Just(Encoding::RencodePlus),
    ];
    let compression = prop_oneof![
        Just(Compression::None),
        (1u8..=9).prop_map(Compression::Zlib),
        (1u8..=15).prop_map(Compression::Lz4),
    ];
    let kind = prop_oneof![
        Just("draw"),
        Just("ping"),
        Just("cursor"),
        Just("disconnect"),
        Just("info-response"),
    ];
    let packet = (kind, 0usize..3000, encoding, compression.clone()).prop_map(
        |(kind, filler, enc, comp)| {
            let watched = WATCH.contains(&kind).then_some(kind);
            (frame(kind, filler, enc, comp), watched)
        },
    );
    let chunk = (1u8..=3, vec(any::<u8>(), 1..2000), compression).prop_map(|(i, body, comp)| {
        let mut f = raw_chunk(i, &compress(&body, comp));
        f[2] = comp.byte();
        (f, None)
    });
    prop_oneof![3 => packet, 1 => chunk]
}

/// Feeds `stream` cut at `cuts` (sorted) the way the forwarder does, unconsumed bytes in
/// front of the next piece; returns passed bytes and watched kinds, or the first error.
fn feed_in_pieces(stream: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Vec<String>), ProtocolError> {
    let bounds: Vec<usize> = [0]
        .into_iter()
        .chain(cuts.iter().map(|&c| c.min(stream.len())))
        .chain([stream.len()])
        .collect();
    let (out, kinds, _) = feed_pieces(bounds.windows(2).map(|w| &stream[w[0]..w[1]]))?;
    Ok((out, kinds))
}

fn sorted(mut cuts: Vec<usize>) -> Vec<usize> {
    cuts.sort_unstable();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_frames_in_any_pieces_pass_unchanged_and_typed_as_whole(
        frames in vec(any_frame(), 1..8),
        cuts in vec(0usize..16_000, 0..24).prop_map(sorted),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(|(f, _)| f.iter().copied()).collect();
        let watched: Vec<&str> = frames.iter().filter_map(|(_, k)| *k).collect();
        let whole = feed_in_pieces(&stream, &[]).expect("a valid stream");
        prop_assert_eq!(&whole.0, &stream);
        prop_assert_eq!(&whole.1, &watched);
        let pieces = feed_in_pieces(&stream, &cuts).expect("a valid stream");
        prop_assert_eq!(&pieces.0, &stream);
        prop_assert_eq!(&pieces.1, &whole.1);
    }

    #[test]
    fn arbitrary_bytes_in_any_pieces_never_panic(
        data in vec(any::<u8>(), 0..600),
        cuts in vec(0usize..600, 0..8).prop_map(sorted),
    ) {
        // What passes is the input's own bytes, in order.
        if let Ok((out, _)) = feed_in_pieces(&data, &cuts) {
            prop_assert!(data.starts_with(&out));
        }
        let _ = feed_in_pieces(&data, &[]);
    }
}
