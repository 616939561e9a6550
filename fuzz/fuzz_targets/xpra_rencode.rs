//! `xpra_rencode`: the rencode and rencodeplus decoders (`xpra::rencode::decode`), what
//! every xpra 3.x/4.x packet payload goes through, and their encoder.
//!
//! Input: a flag byte (bit 0: rencodeplus), a cut point, then the encoded item.
//!
//! Guards:
//! - never panics, never overflows the stack (nesting is bounded);
//! - allocates in proportion to the bytes given, never to a length they claim;
//! - reads nothing past what it reports used, and a truncated item never decodes (so a
//!   payload prefix, which is what the gate decodes, cannot read as another packet type);
//! - what it decodes, encoded again, decodes to the same value, and encoding is stable.
#![no_main]

use deskrelay::xpra::rencode::{decode, encode};
use deskrelay_fuzz::{measure, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let plus = input.byte() & 1 != 0;
    let cut = input.u16();
    let bytes = input.rest();

    let (r, used) = measure(|| decode(bytes, plus));
    assert!(
        used.peak <= 128 * bytes.len() + (256 << 10),
        "{} bytes live decoding {} bytes",
        used.peak,
        bytes.len()
    );
    let Ok((value, n)) = r else { return };
    assert!(1 <= n && n <= bytes.len());
    let shown = format!("{value:?}");

    let (again, m) = decode(&bytes[..n], plus).expect("the bytes it used decode alone");
    assert_eq!((format!("{again:?}"), m), (shown.clone(), n));
    let short = usize::from(cut) % n;
    assert!(
        decode(&bytes[..short], plus).is_err(),
        "{short} of {n} bytes decode to something"
    );

    let mut out = Vec::new();
    encode(&value, plus, &mut out);
    let (back, used) = decode(&out, plus).expect("our encoding decodes");
    assert_eq!(used, out.len());
    assert_eq!(format!("{back:?}"), shown, "re-encoded as {out:02x?}");
    let mut twice = Vec::new();
    encode(&back, plus, &mut twice);
    assert_eq!(twice, out, "encoding is stable");
});
