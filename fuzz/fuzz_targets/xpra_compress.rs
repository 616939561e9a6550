//! `xpra_compress`: xpra payload decompression (`xpra::compress`): zlib and lz4 whole, with
//! a size limit, and as a prefix (`decompress_prefix`, `zlib_prefix`, `lz4_prefix`: what
//! the gate reads a packet type from).
//!
//! Input: mode (bit 0: round trip), limit selector, prefix length and cut point (2 bytes
//! each), then a payload (mode 0) or the data to compress first (mode 1).
//!
//! Guards:
//! - never panics;
//! - the limit holds before anything is allocated: output never over the limit, no single
//!   allocation over the limit plus the inflater's fixed state (64 KiB), a zlib or lz4
//!   bomb refused without inflating it;
//! - the hand-rolled lz4 prefix walker agrees with lz4_flex, and the zlib prefix with the
//!   whole stream: a prefix of any length, of a payload cut anywhere, is the start of what
//!   the whole payload decompresses to, whenever that succeeds;
//! - what we compress (either algorithm, any level) decompresses to itself, within a limit
//!   of its own size, and is refused one byte under it.
#![no_main]

use deskrelay::xpra::compress::{compress, decompress, decompress_prefix, lz4_prefix, zlib_prefix};
use deskrelay::xpra::{Compression, ProtocolError};
use deskrelay_fuzz::{measure, Input};
use libfuzzer_sys::fuzz_target;

const LIMITS: [usize; 6] = [0, 1, 64, 1000, 64 << 10, 16 << 20];
/// What the reference decompression may produce: more than any input can inflate to.
const REFERENCE: usize = 64 << 20;
/// miniz_oxide's inflater state, allocated once per stream whatever the payload.
const INFLATER: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte();
    let max = input.pick(&LIMITS);
    let n = usize::from(input.u16());
    let cut = input.u16();
    let bytes = input.rest();

    if mode & 1 == 0 {
        for c in [Compression::Zlib(1), Compression::Lz4(1), Compression::None] {
            check_payload(bytes, c, max, n, cut);
        }
    } else {
        let level = mode >> 1 & 0x0f;
        for c in [
            Compression::Zlib(level.max(1)),
            Compression::Lz4(level.max(1)),
        ] {
            round_trip(bytes, c, n, cut);
        }
    }
});

fn check_payload(payload: &[u8], c: Compression, max: usize, n: usize, cut: u16) {
    let (r, used) = measure(|| decompress(payload, c, max).map(|out| out.len()));
    if c != Compression::None {
        assert!(
            used.largest <= (max + 1).max(INFLATER),
            "{c:?}: {used:?}, limit {max}"
        );
        assert!(
            used.peak <= 2 * (max + 1) + 2 * INFLATER,
            "{c:?}: {used:?}, limit {max}"
        );
    }
    if let (Ok(len), true) = (r, c != Compression::None) {
        // Uncompressed payloads are held to the limit by the frame header, not here.
        assert!(len <= max, "{c:?}: {len} bytes out, limit {max}");
    }
    let whole = decompress(payload, c, REFERENCE).ok();
    let cut = usize::from(cut) % (payload.len() + 1);
    for part in [payload, &payload[..cut]] {
        let prefix = decompress_prefix(part, c, n);
        let direct = match c {
            Compression::Zlib(_) => Some(zlib_prefix(part, n)),
            Compression::Lz4(_) => Some(lz4_prefix(part, n)),
            Compression::None => None,
        };
        if let Some(direct) = direct {
            assert_eq!(
                prefix.as_deref().map_err(Clone::clone),
                direct.as_deref().map_err(Clone::clone)
            );
        }
        if let Ok(p) = &prefix {
            assert!(p.len() <= n);
        }
        if let Some(whole) = &whole {
            check_prefix_of(&prefix, whole, n, part.len() == payload.len(), c);
        }
    }
}

fn check_prefix_of(
    prefix: &Result<std::borrow::Cow<'_, [u8]>, ProtocolError>,
    whole: &[u8],
    n: usize,
    complete: bool,
    c: Compression,
) {
    let p = match prefix {
        Ok(p) => p,
        Err(e) => panic!("{c:?}: the whole payload decompresses, its prefix fails: {e}"),
    };
    assert_eq!(
        &p[..],
        &whole[..p.len()],
        "{c:?}: prefix differs from the whole"
    );
    if complete {
        assert_eq!(
            p.len(),
            n.min(whole.len()),
            "{c:?}: short prefix of a whole payload"
        );
    }
}

fn round_trip(data: &[u8], c: Compression, n: usize, cut: u16) {
    let packed = compress(data, c);
    let out = decompress(&packed, c, data.len()).expect("our own payload decompresses");
    assert_eq!(&out[..], data, "{c:?}");
    if let Some(under) = data.len().checked_sub(1) {
        assert_eq!(
            decompress(&packed, c, under),
            Err(ProtocolError::InflatedTooLarge { limit: under }),
            "{c:?}"
        );
    }
    let cut = usize::from(cut) % (packed.len() + 1);
    for (part, complete) in [(&packed[..], true), (&packed[..cut], false)] {
        check_prefix_of(&decompress_prefix(part, c, n), data, n, complete, c);
    }
}
