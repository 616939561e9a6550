//! zlib and lz4: round trips, limits, corrupt input, and the prefix decoders.

use super::*;
use proptest::prelude::*;

const MIB: usize = 1 << 20;

fn sample() -> Vec<u8> {
    let mut v = b"\xdc\x85hello\x84draw".to_vec();
    for i in 0..5000u32 {
        v.extend_from_slice(format!("item-{}-", i % 97).as_bytes());
    }
    v
}

#[test]
fn both_round_trip_and_level_zero_is_a_copy() {
    let data = sample();
    for c in [
        Compression::Zlib(1),
        Compression::Zlib(9),
        Compression::Lz4(3),
    ] {
        let wire = compress(&data, c);
        assert!(wire.len() < data.len() / 4, "{c:?}");
        assert_eq!(decompress(&wire, c, MIB).unwrap(), &data[..]);
    }
    assert_eq!(compress(&data, Compression::Zlib(0)), data);
    assert_eq!(compress(&data, Compression::Lz4(0)), data);
    assert!(matches!(
        decompress(&data, Compression::None, 1),
        Ok(Cow::Borrowed(_))
    ));
}

#[test]
fn zlib_is_the_stream_format_with_a_header() {
    let wire = zlib_compress(b"hello", 6);
    assert_eq!(wire[0], 0x78);
    // Python's zlib.compress(b'hello'*10, 1).
    let py = hex::decode("7801cb48cdc9c9cf20850000116a14c9").unwrap();
    assert_eq!(zlib_decompress(&py, 100).unwrap(), b"hello".repeat(10));
}

#[test]
fn lz4_payload_is_a_little_endian_size_and_a_block() {
    // Python's lz4.block.compress(b'hello'*10) and lz4.block.compress(b'').
    let py = hex::decode("320000005f68656c6c6f0500155068656c6c6f").unwrap();
    assert_eq!(lz4_decompress(&py, 100).unwrap(), b"hello".repeat(10));
    assert_eq!(lz4_decompress(&[0, 0, 0, 0, 0], 100).unwrap(), b"");
    let ours = lz4_compress(b"hello");
    assert_eq!(&ours[..4], &[5, 0, 0, 0]);
}

#[test]
fn output_over_the_limit_is_refused() {
    let zeros = vec![0u8; 4 * MIB];
    let z = zlib_compress(&zeros, 9);
    assert!(z.len() < 8 * 1024);
    assert_eq!(
        zlib_decompress(&z, MIB),
        Err(ProtocolError::InflatedTooLarge { limit: MIB })
    );
    assert_eq!(zlib_decompress(&z, 4 * MIB).unwrap().len(), 4 * MIB);
    let l = lz4_compress(&zeros);
    assert_eq!(
        lz4_decompress(&l, MIB),
        Err(ProtocolError::InflatedTooLarge { limit: MIB })
    );
    // A 4 GiB claim in a 5-byte payload is refused before any allocation.
    let hostile = [0xff, 0xff, 0xff, 0xff, 0x00];
    assert!(lz4_decompress(&hostile, usize::MAX).is_err());
    let err = lz4_decompress(&hostile, 16 * MIB).unwrap_err();
    assert_eq!(
        err.to_string(),
        "decompressed packet too large: over 16777216 bytes"
    );
}

#[test]
fn corrupt_and_truncated_payloads_are_errors() {
    let data = sample();
    let z = zlib_compress(&data, 6);
    assert!(zlib_decompress(&z[..z.len() - 3], MIB).is_err());
    assert!(zlib_decompress(&[z.as_slice(), b"xx"].concat(), MIB).is_err());
    assert!(zlib_decompress(b"not zlib at all", MIB).is_err());
    assert!(zlib_decompress(b"", MIB).is_err());
    let l = lz4_compress(&data);
    assert!(lz4_decompress(&l[..l.len() - 3], MIB).is_err());
    assert!(lz4_decompress(&l[..3], MIB).is_err());
    let mut bigger = l.clone();
    bigger[0] = bigger[0].wrapping_add(1);
    assert!(lz4_decompress(&bigger, MIB).is_err());
    // A match reaching before the start of the output.
    let bad = [4, 0, 0, 0, 0x10, b'a', 0x05, 0x00];
    assert!(lz4_decompress(&bad, MIB).is_err());
    // The prefix walker gives what came before the corruption: the literal `a`.
    assert_eq!(lz4_prefix(&bad, 10).unwrap(), b"a");
}

#[test]
fn prefixes_stop_early_and_accept_a_cut_payload() {
    let data = sample();
    for c in [Compression::Zlib(6), Compression::Lz4(1), Compression::None] {
        let wire = compress(&data, c);
        for n in [0, 1, 5, 64, 1000, data.len(), data.len() + 10] {
            let p = decompress_prefix(&wire, c, n).unwrap();
            assert_eq!(&p[..], &data[..n.min(data.len())], "{c:?} n={n}");
        }
        // Only the first bytes of the payload have arrived (zlib's Huffman tables come
        // first and may take a few hundred bytes).
        let cut = &wire[..wire.len().min(PEEK_PAYLOAD_LEN)];
        let p = decompress_prefix(cut, c, 16).unwrap();
        assert_eq!(&p[..], &data[..16], "{c:?}");
    }
    assert_eq!(lz4_prefix(&[1, 0], 8).unwrap(), b"");
    assert_eq!(zlib_prefix(b"", 8).unwrap(), b"");
}

#[test]
fn lz4_prefix_handles_long_literals_and_overlapping_matches() {
    // 300 distinct-ish literals (extension bytes), then a long run (overlapping match).
    let mut data: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    data.extend(std::iter::repeat(b'x').take(5000));
    data.extend_from_slice(b"tail");
    let wire = lz4_compress(&data);
    for n in [3, 299, 300, 301, 2000, data.len()] {
        assert_eq!(lz4_prefix(&wire, n).unwrap(), &data[..n]);
    }
}

proptest! {
    #[test]
    fn round_trips(data in proptest::collection::vec(0u8..4, 0..3000), level in 1u8..10) {
        for c in [Compression::Zlib(level), Compression::Lz4(level)] {
            let wire = compress(&data, c);
            prop_assert_eq!(&decompress(&wire, c, data.len())?[..], &data[..]);
            let n = data.len() / 2;
            prop_assert_eq!(&decompress_prefix(&wire, c, n)?[..], &data[..n]);
        }
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..100) {
        let _ = zlib_decompress(&data, 4096);
        let _ = lz4_decompress(&data, 4096);
        let _ = zlib_prefix(&data, n);
        let _ = lz4_prefix(&data, n);
    }
}
