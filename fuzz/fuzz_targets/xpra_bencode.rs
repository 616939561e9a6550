//! `xpra_bencode`: xpra's bencode decoder (`xpra::bencode::decode`), the fallback packet
//! encoder a client may pick in its very first frame, and its encoder.
//!
//! Input: a cut point, then the encoded item.
//!
//! Guards:
//! - never panics, never overflows the stack (nesting is bounded);
//! - allocates in proportion to the bytes given, never to a length they claim;
//! - reads nothing past what it reports used, and a truncated item never decodes (so a
//!   payload prefix, which is what the gate decodes, cannot read as another packet type);
//! - what it decodes can always be encoded again (bencode values only), and decodes back
//!   to the same value; encoding is stable.
#![no_main]

use deskrelay::xpra::bencode::{decode, encode};
use deskrelay_fuzz::{measure, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let cut = input.u16();
    let bytes = input.rest();

    let (r, used) = measure(|| decode(bytes));
    assert!(
        used.peak <= 128 * bytes.len() + (256 << 10),
        "{} bytes live decoding {} bytes",
        used.peak,
        bytes.len()
    );
    let Ok((value, n)) = r else { return };
    assert!(1 <= n && n <= bytes.len());

    let (again, m) = decode(&bytes[..n]).expect("the bytes it used decode alone");
    assert_eq!((&again, m), (&value, n));
    let short = usize::from(cut) % n;
    assert!(
        decode(&bytes[..short]).is_err(),
        "{short} of {n} bytes decode to something"
    );

    let mut out = Vec::new();
    encode(&value, &mut out).expect("a decoded bencode value encodes");
    let (back, used) = decode(&out).expect("our encoding decodes");
    assert_eq!(
        (&back, used),
        (&value, out.len()),
        "re-encoded as {out:02x?}"
    );
    let mut twice = Vec::new();
    encode(&back, &mut twice).expect("encodes");
    assert_eq!(twice, out, "encoding is stable");
});
