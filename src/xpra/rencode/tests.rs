//! rencode/rencodeplus vectors (checked against Python's rencode 1.0.6 and the rencodeplus
//! source), limits, corrupt input, and encode/decode round trips.

use super::*;
use crate::xpra::value::Value as V;
use proptest::prelude::*;

fn enc(v: &V, plus: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, plus, &mut out);
    out
}

/// Encodes with both flavours, checks the bytes, and decodes them back.
fn check(v: V, hex_wire: &str) {
    for plus in [false, true] {
        let wire = enc(&v, plus);
        assert_eq!(hex::encode(&wire), hex_wire, "{v:?} plus={plus}");
        assert_eq!(decode(&wire, plus), Ok((v.clone(), wire.len())));
    }
}

#[test]
fn integers_use_the_smallest_form_at_every_bound() {
    let cases: &[(i64, &str)] = &[
        (0, "00"),
        (43, "2b"),
        (44, "3e2c"),
        (-1, "46"),
        (-32, "65"),
        (-33, "3edf"),
        (127, "3e7f"),
        (128, "3f0080"),
        (-128, "3e80"),
        (-129, "3fff7f"),
        (32767, "3f7fff"),
        (32768, "4000008000"),
        (-32768, "3f8000"),
        (-32769, "40ffff7fff"),
        (i32::MAX as i64, "407fffffff"),
        (1 << 31, "410000000080000000"),
        (i32::MIN as i64, "4080000000"),
        (i32::MIN as i64 - 1, "41ffffffff7fffffff"),
        (i64::MAX, "417fffffffffffffff"),
        (i64::MIN, "418000000000000000"),
    ];
    for &(i, h) in cases {
        check(V::Int(i), h);
    }
}

#[test]
fn big_ints_are_decimal_text_and_bounded_at_63_chars() {
    check(
        V::BigInt("9223372036854775808".into()),
        "3d393232333337323033363835343737353830387f",
    );
    check(
        V::BigInt("-18446744073709551616".into()),
        &format!("3d{}7f", hex::encode("-18446744073709551616")),
    );
    // A short big int decodes as an Int; an i64-sized BigInt encodes compactly.
    assert_eq!(decode(b"=5\x7f", false), Ok((V::Int(5), 3)));
    assert_eq!(enc(&V::BigInt("-1".into()), false), [0x46]);
    let max = [b"=".as_slice(), &[b'9'; 63], b"\x7f"].concat();
    assert!(matches!(decode(&max, false), Ok((V::BigInt(_), 65))));
    let over = [b"=".as_slice(), &[b'9'; 64], b"\x7f"].concat();
    assert_eq!(
        decode(&over, false),
        Err(ProtocolError::Corrupt("integer too long"))
    );
    for bad in [
        &b"=\x7f"[..],
        b"=-0\x7f",
        b"=007\x7f",
        b"=+5\x7f",
        b"=1_0\x7f",
        b"=-\x7f",
    ] {
        assert_eq!(
            decode(bad, false),
            Err(ProtocolError::Corrupt("invalid integer")),
            "{bad:?}"
        );
    }
    assert_eq!(decode(b"=123", false), Err(TRUNCATED));
}

#[test]
fn scalars() {
    check(V::None, "45");
    check(V::Bool(true), "43");
    check(V::Bool(false), "44");
    // 1.1 needs float64 in both flavours.
    check(V::Float(1.1), "2c3ff199999999999a");
    // 0.5 is exact in float32: rencode writes it as Python's default dumps does.
    assert_eq!(hex::encode(enc(&V::Float(0.5), false)), "423f000000");
    assert_eq!(hex::encode(enc(&V::Float(0.5), true)), "2c3fe0000000000000");
    assert_eq!(
        decode(&hex::decode("423f000000").unwrap(), true),
        Ok((V::Float(0.5), 5))
    );
}

#[test]
fn strings_switch_to_the_length_prefix_at_64_bytes() {
    check(V::str(""), "80");
    check(V::str("héllo"), "8668c3a96c6c6f");
    let s63 = V::Str(vec![b'a'; 63]);
    assert_eq!(enc(&s63, false)[0], 0xbf);
    check(s63.clone(), &hex::encode(enc(&s63, false)));
    let s64 = V::Str(vec![b'a'; 64]);
    let wire = enc(&s64, false);
    assert_eq!(&wire[..3], b"64:");
    check(s64, &hex::encode(&wire));
    let s1000 = V::Str(vec![b'z'; 1000]);
    assert_eq!(&enc(&s1000, true)[..5], b"1000:");
}

#[test]
fn rencodeplus_bytes_use_slash_and_rencode_writes_them_as_strings() {
    let b = V::Bytes(vec![0, 1, 2]);
    assert_eq!(enc(&b, true), b"3/\x00\x01\x02");
    assert_eq!(decode(b"3/\x00\x01\x02", true), Ok((b.clone(), 5)));
    assert_eq!(enc(&b, false), b"\x83\x00\x01\x02");
    assert_eq!(enc(&V::Bytes(vec![]), true), b"0/");
    assert_eq!(decode(b"0/", true), Ok((V::Bytes(vec![]), 2)));
    // rencode proper has no `/` form.
    assert!(decode(b"3/abc", false).is_err());
    // rencodeplus text must be UTF-8; rencode strings are raw bytes.
    assert_eq!(decode(b"\x81\xff", false), Ok((V::Str(vec![0xff]), 2)));
    assert!(decode(b"\x81\xff", true).is_err());
    assert!(decode(b"1:\xff", true).is_err());
}

#[test]
fn lists_and_dicts_switch_to_terminated_forms_at_64_and_25() {
    check(V::List(vec![]), "c0");
    let l63 = V::List(vec![V::Int(1); 63]);
    assert_eq!(enc(&l63, false)[0], 0xff);
    let l64 = V::List(vec![V::Int(1); 64]);
    let wire = enc(&l64, false);
    assert_eq!((wire[0], wire[wire.len() - 1], wire.len()), (59, 127, 66));
    check(l64, &hex::encode(&wire));
    check(V::Dict(vec![]), "66");
    let pairs = |n: i64| V::Dict((0..n).map(|i| (V::Int(i), V::Int(i))).collect());
    assert_eq!(enc(&pairs(24), false)[0], 0x7e);
    let wire = enc(&pairs(25), false);
    assert_eq!((wire[0], wire[wire.len() - 1]), (60, 127));
    check(pairs(25), &hex::encode(&wire));
    // Wire order is kept; keys need not be strings.
    check(
        V::Dict(vec![(V::str("b"), V::Int(1)), (V::None, V::List(vec![]))]),
        "6881620145c0",
    );
}

#[test]
fn truncated_and_corrupt_input_is_an_error() {
    let bad: &[&[u8]] = &[
        b"",
        b">",
        b"?\x00",
        b"@\x00\x00\x00",
        b"A\x00",
        b",\x00",
        b"B\x00",
        b"\x83ab",
        b"\xc1",
        b"\xc2\x01",
        b";\x01",
        b"<\x01\x7f",
        b"h\x01",
        b"3:ab",
        b"9999999999999999999999:",
        b"05:abcde",
        b"5x",
        b"\x7f",
        b"-",
        b":",
    ];
    for b in bad {
        assert!(decode(b, false).is_err(), "{b:?}");
        assert!(decode(b, true).is_err(), "{b:?}");
    }
    // A declared length far beyond the input fails without allocating it.
    assert_eq!(decode(b"18446744073709551615:x", false), Err(TRUNCATED));
    assert!(decode(b"99999999999999999999:x", false).is_err());
}

#[test]
fn nesting_is_limited() {
    let mut deep = vec![0xc1u8; MAX_DEPTH];
    deep.push(0x00);
    assert_eq!(decode(&deep, false).map(|(_, n)| n), Ok(MAX_DEPTH + 1));
    let mut too_deep = vec![0xc1u8; MAX_DEPTH + 1];
    too_deep.push(0x00);
    assert_eq!(
        decode(&too_deep, false),
        Err(ProtocolError::Corrupt("nesting too deep"))
    );
    // Terminated forms count too, and a hostile depth fails before the stack does.
    let hostile = vec![59u8; 1 << 20];
    assert!(decode(&hostile, true).is_err());
}

#[test]
fn decode_reports_bytes_used_and_leaves_the_rest() {
    assert_eq!(decode(b"\x01\x02", false), Ok((V::Int(1), 1)));
}

pub(crate) fn arb_value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(V::Int),
        (-100i64..100).prop_map(V::Int),
        "-?[1-9][0-9]{19,40}".prop_map(V::BigInt),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(V::Float),
        any::<bool>().prop_map(V::Bool),
        Just(V::None),
        ".{0,80}".prop_map(|s: String| V::Str(s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(V::Bytes),
    ];
    leaf.prop_recursive(4, 200, 70, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..70).prop_map(V::List),
            proptest::collection::vec((inner.clone(), inner), 0..30).prop_map(V::Dict),
        ]
    })
}

/// What a value becomes after a trip through rencode proper, which has no bytes type.
pub(crate) fn without_bytes(v: V) -> V {
    match v {
        V::Bytes(b) => V::Str(b),
        V::List(l) => V::List(l.into_iter().map(without_bytes).collect()),
        V::Dict(d) => V::Dict(
            d.into_iter()
                .map(|(k, v)| (without_bytes(k), without_bytes(v)))
                .collect(),
        ),
        other => other,
    }
}

proptest! {
    #[test]
    fn rencodeplus_round_trips(v in arb_value()) {
        let wire = enc(&v, true);
        prop_assert_eq!(decode(&wire, true), Ok((v, wire.len())));
    }

    #[test]
    fn rencode_round_trips(v in arb_value()) {
        let wire = enc(&v, false);
        prop_assert_eq!(decode(&wire, false), Ok((without_bytes(v), wire.len())));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&data, false);
        let _ = decode(&data, true);
    }
}
