use proptest::prelude::*;

use super::*;
use crate::xpra::auth::error::TargetError;
use crate::xpra::auth::tests::TempDir;

fn nobody_uid() -> u32 {
    sys::uid_by_name("nobody").unwrap_or(NOBODY)
}

fn line_error(data: &str) -> (usize, LineError) {
    let e = parse(data.as_bytes()).unwrap_err();
    (e.line, e.error)
}

#[test]
fn full_entries_parse() {
    let users = parse(
        b"# comment\n\n  alice|pw one|1000|1001|:10, tcp://bob:x@h:1/|A=1;B=b=c;|compression=0  \r\n\
          carol|pw2\r\
          dave|pw3|daemon||:11\n",
    )
    .unwrap();
    assert_eq!(users.len(), 3);
    let a = &users["alice"];
    assert_eq!(a.password.expose(), b"pw one");
    assert_eq!((a.uid, a.gid, a.line), (1000, 1001, 3));
    assert_eq!(
        a.displays,
        vec![":10".parse().unwrap(), "tcp://bob:x@h:1/".parse().unwrap()]
    );
    assert_eq!(
        a.env,
        vec![("A".into(), "1".into()), ("B".into(), "b=c".into())]
    );
    assert_eq!(a.session_options, vec![("compression".into(), "0".into())]);
    let c = &users["carol"];
    assert_eq!((c.uid, c.line), (nobody_uid(), 4));
    assert!(c.displays.is_empty() && c.env.is_empty());
    let d = &users["dave"];
    assert_eq!(d.uid, sys::uid_by_name("daemon").unwrap());
    assert_eq!(d.line, 5);
    assert!(
        !format!("{users:?}").contains("pw one"),
        "Debug masks passwords"
    );
}

#[test]
fn malformed_lines_are_reported_with_their_number() {
    let cases: Vec<(&str, usize, LineError)> = vec![
        ("ok|pw\njustaname\n", 2, LineError::NotEnoughFields(1)),
        ("\n\nu|pw|1000\n", 3, LineError::PartialFields(3)),
        ("u|pw|1|1|:1|||x\n", 1, LineError::TooManyFields(8)),
        ("|pw\n", 1, LineError::EmptyUsername),
        ("u|\n", 1, LineError::EmptyPassword),
        ("a|pw\n#x\na|pw2\n", 3, LineError::Duplicate(1)),
        ("u|pw|0|1000|:1\n", 1, LineError::Root("uid")),
        ("u|pw|root|1000|:1\n", 1, LineError::Root("uid")),
        ("u|pw|1000|0|:1\n", 1, LineError::Root("gid")),
        ("u|pw|no-such-user-x|1|:1\n", 1, LineError::UnknownId("uid")),
        ("u|pw|-5|1|:1\n", 1, LineError::UnknownId("uid")),
        ("u|pw|99999999999|1|:1\n", 1, LineError::UnknownId("uid")),
        (
            "u|pw|1|1|:1,tcp://h:0/\n",
            1,
            LineError::Display {
                index: 2,
                source: TargetError::Port,
            },
        ),
        (
            "u|pw|1|1|:1|A=1;novalue\n",
            1,
            LineError::Pair {
                field: "env_vars",
                index: 2,
            },
        ),
        (
            "u|pw|1|1||=v\n",
            1,
            LineError::Pair {
                field: "env_vars",
                index: 1,
            },
        ),
    ];
    for (data, line, error) in cases {
        assert_eq!(line_error(data), (line, error), "{data:?}");
    }
    let e = parse(b"u\xff|pw\n").unwrap_err();
    assert_eq!((e.line, e.error), (1, LineError::NotUtf8("username")));
}

#[test]
fn python_line_splitting_and_stripping() {
    let lines: Vec<&[u8]> = split_lines(b"a\r\nb\rc\n\nd").collect();
    assert_eq!(lines, [&b"a"[..], b"b", b"c", b"", b"d"]);
    assert_eq!(split_lines(b"a\n").count(), 1);
    assert_eq!(split_lines(b"").count(), 0);
    assert_eq!(strip(b"\x0b\x0c x \t"), b"x");
    assert_eq!(strip(b"   "), b"");
}

#[test]
fn open_refuses_files_others_may_read_or_write() {
    let dir = TempDir::new("mode");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o666] {
        let path = dir.write("auth", b"u|pw\n", mode);
        let err = AuthFile::open(&path).unwrap_err();
        assert!(matches!(err, AuthFileError::Mode { mode: m, .. } if m == mode));
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
    }
    for mode in [0o600, 0o400, 0o700, 0o611] {
        let path = dir.write("auth", b"u|pw\n", mode);
        assert!(AuthFile::open(&path).is_ok(), "{mode:o}");
    }
    let missing = AuthFile::open(dir.path().join("missing")).unwrap_err();
    assert!(matches!(missing, AuthFileError::Io { .. }));
    assert!(matches!(
        AuthFile::open(dir.path()).unwrap_err(),
        AuthFileError::NotAFile { .. }
    ));
}

#[test]
fn open_reports_the_path_and_line_but_not_the_contents() {
    let dir = TempDir::new("parse");
    let path = dir.write(
        "auth",
        b"# users\nalice|topsecret|1000|1000|tcp://h:0/\n",
        0o600,
    );
    let err = AuthFile::open(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
}

#[test]
fn lookup_rereads_a_changed_file_and_keeps_the_last_good_one() {
    let dir = TempDir::new("reload");
    let path = dir.write("auth", b"alice|one\n", 0o600);
    let file = AuthFile::open(&path).unwrap();
    assert_eq!(file.lookup("alice").unwrap().password.expose(), b"one");
    assert!(file.lookup("bob").is_none());

    dir.write("auth", b"alice|two\nbob|three\n", 0o600);
    assert_eq!(file.lookup("alice").unwrap().password.expose(), b"two");
    assert_eq!(file.lookup("bob").unwrap().password.expose(), b"three");

    // A broken rewrite: the last good entries stay.
    dir.write("auth", b"alice|two\nbob\n", 0o600);
    assert_eq!(file.lookup("bob").unwrap().password.expose(), b"three");
    // Loosened permissions: refused the same way.
    dir.write("auth", b"carol|four\n", 0o644);
    assert!(file.lookup("carol").is_none());
    assert!(file.lookup("alice").is_some());
    // Removed: still the last good entries.
    std::fs::remove_file(&path).unwrap();
    assert!(file.lookup("alice").is_some());
    // Fixed: picked up.
    dir.write("auth", b"carol|four\n", 0o600);
    assert!(file.lookup("alice").is_none());
    assert_eq!(file.lookup("carol").unwrap().password.expose(), b"four");
}

#[test]
fn an_in_place_chmod_is_noticed() {
    use std::fs::{set_permissions, write, Permissions};
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("chmod");
    let path = dir.write("auth", b"alice|one\n", 0o600);
    let file = AuthFile::open(&path).unwrap();
    // Opened to the world and rewritten: refused, the old entries stay.
    set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
    write(&path, b"carol|two\n").unwrap();
    assert!(file.lookup("alice").is_some());
    assert!(file.lookup("carol").is_none());
    // Closed again: only the ctime moves, and that is enough to be looked at again.
    set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
    assert!(file.lookup("alice").is_none());
    assert_eq!(file.lookup("carol").unwrap().password.expose(), b"two");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&data);
    }

    #[test]
    fn line_shaped_input_never_panics(
        lines in proptest::collection::vec("[a-z0-9|:,;=#@/\\[\\] .%+-]{0,48}", 0..8)
    ) {
        let data = lines.join("\n");
        if let Err(e) = parse(data.as_bytes()) {
            prop_assert!(e.line >= 1 && e.line <= lines.len());
        }
    }
}
