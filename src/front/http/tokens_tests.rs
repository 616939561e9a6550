//! Tests for the token file: format, errors with line numbers, reloads.

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
