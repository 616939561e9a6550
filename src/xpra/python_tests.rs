//! Cross-checks against the real peers' code: Debian's xpra 3.1.3 and python3-rencode,
//! run through `/usr/bin/python3` (`python_tests/vectors.py`).
//!
//! Our decoders must read what Python writes, our encoders must write the same bytes
//! (rencode and bencode; rencodeplus is newer than 3.1.3 and is checked by vectors in
//! `rencode/tests.rs`), and xpra must decode the frames we write. Skipped, with a message,
//! only where that Python lacks `rencode`; the project's test setup installs xpra.

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::BytesMut;

use super::value::Value as V;
use super::*;

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = include_str!("python_tests/vectors.py");

/// Runs the script in `mode` with `input` on stdin; None (after saying why) to skip.
fn python(mode: &str, input: &str) -> Option<String> {
    let spawned = Command::new(PYTHON)
        .args(["-c", SCRIPT, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        println!("skip: {PYTHON} cannot run, so it has no rencode module");
        return None;
    };
    let mut stdin = child.stdin.take().expect("stdin was piped");
    stdin
        .write_all(input.as_bytes())
        .expect("python reads its stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("python runs");
    let stdout = String::from_utf8(out.stdout).expect("the script prints ASCII");
    assert!(
        out.status.success(),
        "{PYTHON} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(why) = stdout.strip_prefix("skip:") {
        println!("skip:{why}");
        return None;
    }
    Some(stdout)
}

fn s(x: &str) -> V {
    V::str(x)
}
fn l(items: Vec<V>) -> V {
    V::List(items)
}
fn ints(r: impl Iterator<Item = i64>) -> Vec<V> {
    r.map(V::Int).collect()
}

fn hello() -> Vec<V> {
    let kv = |k: &str, v: V| (s(k), v);
    vec![
        s("hello"),
        V::Dict(vec![
            kv("version", s("3.1.3")),
            kv("rencode", V::Bool(true)),
            kv("bencode", V::Bool(false)),
            kv("desktop_size", l(ints([1920, 1080].into_iter()))),
            kv(
                "encodings",
                l(["rgb24", "png", "jpeg", "webp", "h264"].map(s).to_vec()),
            ),
            kv("challenge", V::Bool(true)),
            kv("digest", l(["hmac+sha512", "hmac", "xor"].map(s).to_vec())),
            kv("uuid", s("0f3c2a")),
            kv("dpi", V::Int(96)),
            kv("session-name", s("t\u{e9}st")),
            kv(
                "screen_sizes",
                l(vec![l(vec![
                    s(":0"),
                    V::Int(1920),
                    V::Int(1080),
                    V::Int(508),
                    V::Int(286),
                ])]),
            ),
            kv("big", V::BigInt("18446744073709551616".into())),
            kv("neg", V::Int(-70000)),
            kv("padding", s(&"p".repeat(300))),
        ]),
    ]
}

/// The cases of `vectors.py`, in the same order and by the same names.
fn cases() -> Vec<(&'static str, V)> {
    let big = |d: &str| V::BigInt(d.to_owned());
    vec![
        (
            "ints",
            l(ints(
                [
                    0, 1, 43, 44, -1, -32, -33, 127, 128, -128, -129, 32767, 32768, -32768, -32769,
                ]
                .into_iter()
                .chain([
                    i32::MAX as i64,
                    1 << 31,
                    i32::MIN as i64,
                    i32::MIN as i64 - 1,
                ])
                .chain([i64::MAX, i64::MIN]),
            )),
        ),
        (
            "bigints",
            l(vec![
                big("9223372036854775808"),
                big("-9223372036854775809"),
                big(&format!("1{}", "0".repeat(40))),
                big(&format!("1{}", "0".repeat(62))),
            ]),
        ),
        ("bools", l(vec![V::Bool(true), V::Bool(false)])),
        ("none", l(vec![V::None, V::Dict(vec![(V::None, V::None)])])),
        (
            "strings",
            l(vec![
                s(""),
                s(&"a".repeat(63)),
                s(&"b".repeat(64)),
                s("h\u{e9}llo"),
                V::Str(b"\x00\xff".repeat(100)),
                s(&"z".repeat(1000)),
            ]),
        ),
        (
            "float32",
            l(vec![V::Float(0.5), V::Float(-2.25), V::Float(1e10)]),
        ),
        (
            "float64",
            l(vec![V::Float(1.1), V::Float(1e300), V::Float(-0.1)]),
        ),
        (
            "lists",
            l(vec![
                l(vec![]),
                l(ints(0..63)),
                l(ints(0..64)),
                l(vec![l(vec![l(vec![])])]),
                l(vec![
                    V::Int(1),
                    l(vec![V::Int(2), l(vec![V::Int(3), s("x")])]),
                ]),
            ]),
        ),
        (
            "dicts",
            l(vec![
                V::Dict(vec![]),
                V::Dict((0..24).map(|i| (V::Int(i), V::Int(i))).collect()),
                V::Dict((0..25).map(|i| (V::Int(i), s(&i.to_string()))).collect()),
                V::Dict(vec![
                    (s("b"), V::Int(1)),
                    (s("a"), l(ints(1..3))),
                    (V::Int(3), V::Dict(vec![(s("x"), s("y"))])),
                ]),
            ]),
        ),
        ("hello", l(hello())),
    ]
}

/// xpra's bencode carries booleans as integers.
fn bools_as_ints(v: V) -> V {
    match v {
        V::Bool(b) => V::Int(b.into()),
        V::List(l) => V::List(l.into_iter().map(bools_as_ints).collect()),
        V::Dict(d) => V::Dict(
            d.into_iter()
                .map(|(k, v)| (bools_as_ints(k), bools_as_ints(v)))
                .collect(),
        ),
        other => other,
    }
}

fn pixels() -> Vec<u8> {
    (0..=255u8).cycle().take(256 * 64).collect()
}

#[test]
fn matches_the_real_xpra_and_rencode() {
    let Some(out) = python("gen", "") else { return };
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    let expected = cases();
    let case_lines: Vec<_> = lines.iter().filter(|l| l[0] == "case").collect();
    assert_eq!(
        case_lines.len(),
        expected.len(),
        "python printed every case"
    );
    for (line, (name, value)) in case_lines.iter().zip(&expected) {
        assert_eq!(line[1], *name);
        let py_rencode = hex::decode(line[2]).unwrap();
        assert_eq!(
            rencode::decode(&py_rencode, false),
            Ok((value.clone(), py_rencode.len())),
            "{name}"
        );
        let mut ours = Vec::new();
        rencode::encode(value, false, &mut ours);
        assert_eq!(hex::encode(&ours), line[2], "rencode bytes of {name}");
        let mut ours = Vec::new();
        match line[3] {
            "-" => assert!(bencode::encode(value, &mut ours).is_err(), "{name}"),
            py => {
                let py_bencode = hex::decode(py).unwrap();
                let read = bencode::decode(&py_bencode);
                assert_eq!(
                    read,
                    Ok((bools_as_ints(value.clone()), py_bencode.len())),
                    "{name}"
                );
                bencode::encode(value, &mut ours).unwrap();
                assert_eq!(hex::encode(&ours), py, "bencode bytes of {name}");
            }
        }
    }

    let field = |kind: &str, name: &str| {
        let line = lines
            .iter()
            .find(|l| l[0] == kind && (l.len() == 2 || l[1] == name))
            .expect(kind);
        hex::decode(line[line.len() - 1]).unwrap()
    };
    for (name, items) in [
        ("hello_zlib", hello()),
        ("hello_lz4", hello()),
        (
            "hello_bencode",
            bools_as_ints(l(hello())).as_list().unwrap().to_vec(),
        ),
    ] {
        let wire = field("frame", name);
        let header = Header::parse(wire[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(
            peek_kind(&header, &wire[HEADER_LEN..]).as_deref(),
            Some("hello"),
            "{name}"
        );
        let d = FrameDecoder::default()
            .decode(&mut BytesMut::from(&wire[..]))
            .unwrap()
            .unwrap();
        assert_eq!(d.packet.items, items, "{name}");
    }
    let wire = field("frame", "draw_chunked");
    let mut b = BytesMut::from(&wire[..]);
    let d = FrameDecoder::default().decode(&mut b).unwrap().unwrap();
    assert_eq!(d.frames.len(), 2);
    assert_eq!(
        peek_kind(&d.frames[1].header, d.frames[1].payload()).as_deref(),
        Some("draw")
    );
    let mut draw = vec![s("draw")];
    draw.extend(ints([1, 0, 0, 64, 64].into_iter()));
    draw.extend([
        s("rgb24"),
        V::Bytes(pixels()),
        V::Int(0),
        V::Int(256),
        V::Dict(vec![]),
    ]);
    assert_eq!(d.packet.items, draw);

    let limit = 1 << 20;
    assert_eq!(
        compress::zlib_decompress(&field("zlib", ""), limit).unwrap(),
        pixels()
    );
    assert_eq!(
        compress::lz4_decompress(&field("lz4", ""), limit).unwrap(),
        pixels()
    );
}

#[test]
fn xpra_decodes_our_frames() {
    let packet = Packet::new(hello());
    let ours = [
        ("rencode_zlib", Encoding::Rencode, Compression::Zlib(1)),
        ("rencode_lz4", Encoding::Rencode, Compression::Lz4(3)),
        ("rencode_plain", Encoding::Rencode, Compression::None),
        ("bencode_plain", Encoding::Bencode, Compression::None),
        ("bencode_zlib", Encoding::Bencode, Compression::Zlib(6)),
    ];
    let input: String = ours
        .iter()
        .map(|(name, e, c)| {
            format!(
                "{name} {}\n",
                hex::encode(encode_frame(&packet, *e, *c).unwrap())
            )
        })
        .collect();
    let Some(out) = python("check", &input) else {
        return;
    };
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), ours.len(), "{out}");
    for (v, (name, ..)) in verdicts.iter().zip(&ours) {
        assert!(v.starts_with(&format!("ok {name} ")), "{v}");
    }
}
