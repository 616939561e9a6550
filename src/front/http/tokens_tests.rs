//! Tests for the token file: format, errors with line numbers, reloads; properties: no
//! text panics the parser, and generated files read back as the map they were made from.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::collection::{hash_map, vec};
use proptest::prelude::*;

use super::*;
use crate::front::http::testdir::TempDir;

fn addr(s: &str) -> Target {
    Target::Addr(s.parse().unwrap())
}

#[test]
fn websockify_format() {
    let text = b"# targets\n\nvnc1: 127.0.0.1:5901\r\n  vnc2:\t[::1]:5902  \n\
        desk-3: desktop.example:14500\nweird:tok: 10.0.0.1:1\n";
    let map = parse(text).unwrap();
    assert_eq!(map.len(), 4);
    assert_eq!(map.lookup("vnc1"), Some(addr("127.0.0.1:5901")));
    assert_eq!(map.lookup("vnc2"), Some(addr("[::1]:5902")));
    assert_eq!(
        map.lookup("desk-3"),
        Some(Target::Host {
            host: "desktop.example".into(),
            port: 14500
        })
    );
    assert_eq!(map.lookup("weird:tok"), Some(addr("10.0.0.1:1")));
    assert_eq!(map.lookup("vnc"), None);
    assert_eq!(
        map.lookup("desk-3").unwrap().to_string(),
        "desktop.example:14500"
    );
}

#[test]
fn errors_name_the_line() {
    for (text, line) in [
        ("ok: 1.2.3.4:5\nno separator\n", 2),
        ("a:1.2.3.4:5\n", 1),
        ("# c\n\n: 1.2.3.4:5\n", 3),
        ("a b: 1.2.3.4:5\n", 1),
        ("a: 1.2.3.4\n", 1),
        ("a: 1.2.3.4:0\n", 1),
        ("a: host:70000\n", 1),
        ("a: ::1:5900\n", 1),
        ("a: bad/host:1\n", 1),
        ("a: :1\n", 1),
        ("a: h:1\nb: h:2\na: h:3\n", 3),
    ] {
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.0, line, "{text:?}: {}", err.1);
    }
    let err = parse(b"a: h:1\n\xff: h:2\n").unwrap_err();
    assert_eq!(err, (2, "not UTF-8"));
}

#[test]
fn errors_never_show_tokens() {
    let dir = TempDir::new("tokens-err");
    let path = dir.write("tokens", b"secret-token-value host:1\n");
    let err = TokenFile::open(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 1"), "{msg}");
    assert!(!msg.contains("secret-token-value"), "{msg}");
}

#[test]
fn found_unknown_and_reload() {
    let dir = TempDir::new("tokens");
    let path = dir.write("tokens", b"one: 127.0.0.1:5901\n");
    let file = TokenFile::open(&path).unwrap();
    assert_eq!(file.lookup("one"), Some(addr("127.0.0.1:5901")));
    assert_eq!(file.lookup("two"), None);

    dir.write("tokens", b"two: 127.0.0.1:5902\n");
    assert_eq!(
        file.lookup("two"),
        Some(addr("127.0.0.1:5902")),
        "rewrite is seen"
    );
    assert_eq!(file.lookup("one"), None, "and replaces the old map");

    dir.write("tokens", b"three 127.0.0.1:5903\n");
    assert_eq!(
        file.lookup("two"),
        Some(addr("127.0.0.1:5902")),
        "a broken rewrite keeps the last good map"
    );
    assert_eq!(file.lookup("two"), Some(addr("127.0.0.1:5902")));

    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        file.lookup("two"),
        Some(addr("127.0.0.1:5902")),
        "so does a removal"
    );

    dir.write("tokens", b"four: 127.0.0.1:5904\n");
    assert_eq!(
        file.lookup("four"),
        Some(addr("127.0.0.1:5904")),
        "and a fix is picked up"
    );
    assert_eq!(file.len(), 1);
}

#[test]
fn in_place_append_is_seen() {
    use std::io::Write;
    let dir = TempDir::new("tokens-append");
    let path = dir.write("tokens", b"one: 127.0.0.1:1\n");
    let file = TokenFile::open(&path).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"two: 127.0.0.1:2\n").unwrap();
    drop(f);
    assert_eq!(
        file.lookup("two"),
        Some(addr("127.0.0.1:2")),
        "size changed, same inode"
    );
}

#[test]
fn refuses_what_is_not_a_file() {
    let dir = TempDir::new("tokens-dir");
    assert!(matches!(
        TokenFile::open(dir.path()),
        Err(TokenFileError::NotAFile { .. })
    ));
    assert!(matches!(
        TokenFile::open(dir.path().join("missing")),
        Err(TokenFileError::Io { .. })
    ));
}

/// A target in each of the three written forms.
fn any_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| Target::Addr(SocketAddr::V4(
            SocketAddrV4::new(Ipv4Addr::from(ip), port)
        ))),
        (any::<[u16; 8]>(), 1u16..).prop_map(|(ip, port)| Target::Addr(SocketAddr::V6(
            SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
        ))),
        ("h[a-z0-9._-]{0,30}", 1u16..).prop_map(|(host, port)| Target::Host { host, port }),
    ]
}

/// How a line may be laid out around `token: target`.
#[derive(Debug, Clone)]
struct Layout {
    indent: &'static str,
    gap: &'static str,
    trailing: &'static str,
    crlf: bool,
    comment_before: bool,
}

fn any_layout() -> impl Strategy<Value = Layout> {
    let space = || prop_oneof![Just(""), Just(" "), Just("\t"), Just("  \t ")];
    let gap = prop_oneof![Just(" "), Just("\t"), Just("   ")];
    (space(), gap, space(), any::<bool>(), any::<bool>()).prop_map(
        |(indent, gap, trailing, crlf, comment_before)| Layout {
            indent,
            gap,
            trailing,
            crlf,
            comment_before,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
        if let Err((line, _)) = parse(&data) {
            prop_assert!(line >= 1 && line <= data.split(|&b| b == b'\n').count());
        }
    }

    #[test]
    fn line_shaped_text_never_panics(lines in vec("[a-z0-9:#\\[\\]. \t/_-]{0,40}", 0..8)) {
        let text = lines.join("\n");
        if let Err((line, _)) = parse(text.as_bytes()) {
            prop_assert!(line >= 1 && line <= lines.len().max(1));
        }
    }

    #[test]
    fn generated_files_read_back_as_their_map(
        map in hash_map("[A-Za-z0-9_.~-][A-Za-z0-9_.~:#-]{0,20}", any_target(), 0..8),
        layouts in vec(any_layout(), 8),
    ) {
        let mut text = String::new();
        for ((token, target), l) in map.iter().zip(&layouts) {
            if l.comment_before {
                text.push_str("# a comment: 10.0.0.1:1\n\n");
            }
            let eol = if l.crlf { "\r\n" } else { "\n" };
            text.push_str(&format!("{}{token}:{}{target}{}{eol}", l.indent, l.gap, l.trailing));
        }
        prop_assert_eq!(parse(text.as_bytes()), Ok(map));
    }
}
