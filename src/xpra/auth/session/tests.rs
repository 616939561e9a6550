use std::path::{Path, PathBuf};

use super::*;
use crate::xpra::auth::error::{RouteError, TargetError};

fn t(s: &str) -> SessionTarget {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn tcp(host: &str, port: u16) -> SessionTarget {
    SessionTarget::Tcp {
        host: host.into(),
        port,
        username: None,
        password: None,
    }
}

#[test]
fn display_strings_parse() {
    assert_eq!(t(":10"), SessionTarget::Local { display: 10 });
    assert_eq!(t("tcp://host:10000/"), tcp("host", 10000));
    assert_eq!(t("tcp://host:10000"), tcp("host", 10000));
    assert_eq!(t("tcp:host:10000"), tcp("host", 10000));
    assert_eq!(t("tcp://host/"), tcp("host", DEFAULT_PORT));
    assert_eq!(t("tcp://:5000/"), tcp("127.0.0.1", 5000));
    assert_eq!(t("tcp://[::1]:5000/"), tcp("::1", 5000));
    assert_eq!(
        t("tcp://[fe80::1%eth0]/"),
        tcp("fe80::1%eth0", DEFAULT_PORT)
    );
    assert_eq!(
        t("tcp://bob:pa:ss@host:1/"),
        SessionTarget::Tcp {
            host: "host".into(),
            port: 1,
            username: Some("bob".into()),
            password: Some(Secret::new(b"pa:ss".to_vec())),
        }
    );
    assert_eq!(
        t("tcp://bob@host:1/"),
        SessionTarget::Tcp {
            host: "host".into(),
            port: 1,
            username: Some("bob".into()),
            password: None,
        }
    );
}

#[test]
fn bad_display_strings_are_refused_without_quoting_them() {
    let cases = [
        ("10", TargetError::Unsupported),
        ("ssl://host:1/", TargetError::Unsupported),
        (":", TargetError::DisplayNumber),
        (":-1", TargetError::DisplayNumber),
        (":10.0", TargetError::DisplayNumber),
        (":99999999999", TargetError::DisplayNumber),
        ("tcp://host:0/", TargetError::Port),
        ("tcp://host:65536/", TargetError::Port),
        ("tcp://host:+1/", TargetError::Port),
        ("tcp://u:secret@host:x/", TargetError::Port),
        ("tcp://host:1/10", TargetError::RemoteDisplay),
        ("tcp://a b:1/", TargetError::Host),
        ("tcp://::1:5000/", TargetError::Host),
        ("tcp://[::1/", TargetError::Host),
        ("tcp://[::1]5000/", TargetError::Port),
    ];
    for (s, want) in cases {
        let got = s.parse::<SessionTarget>().unwrap_err();
        assert_eq!(got, want, "{s}");
        assert!(!got.to_string().contains("secret"));
    }
}

#[test]
fn display_shows_no_credentials() {
    assert_eq!(t("tcp://bob:secret@host:1/").to_string(), "tcp://host:1/");
    assert_eq!(t("tcp://[::1]:2").to_string(), "tcp://[::1]:2/");
    assert_eq!(t(":7").to_string(), ":7");
    assert!(!format!("{:?}", t("tcp://bob:secret@host:1/")).contains("secret"));
}

#[test]
fn socket_candidates_follow_xpras_socket_dirs() {
    let got = t(":10").socket_candidates_in(1000, Some(Path::new("/home/al")), "box");
    let want: Vec<PathBuf> = [
        "/run/user/1000/xpra/box-10",
        "/run/xpra/box-10",
        "/home/al/.xpra/box-10",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(got, want);
    assert!(t("tcp://h:1/").socket_candidates(0).is_empty());
    assert_eq!(t(":3").socket_candidates(0).len(), 3, "root has a home");
}

#[test]
fn choose_follows_the_proxy_rules() {
    let one = [t(":10")];
    let many = [
        t(":10"),
        t("tcp://bob:pw@Host:10000/"),
        t("tcp://other:10/"),
    ];
    assert_eq!(choose(&[], None), Err(RouteError::NoSessions));
    assert_eq!(choose(&[], Some(":10")), Err(RouteError::NoSessions));
    assert_eq!(choose(&one, None), Ok(&one[0]));
    assert_eq!(choose(&one, Some("  ")), Ok(&one[0]));
    assert_eq!(choose(&many, None), Err(RouteError::SpecifyDisplay));
    assert_eq!(choose(&many, Some(":10")), Ok(&many[0]));
    assert_eq!(choose(&many, Some("tcp://host:10000/")), Ok(&many[1]));
    assert_eq!(choose(&many, Some("tcp:HOST:10000")), Ok(&many[1]));
    assert_eq!(choose(&many, Some("10000")), Ok(&many[1]));
    // What the 3.1.3 client sends for tcp://proxy/10000: a port when no display has it.
    assert_eq!(choose(&many, Some(":10000")), Ok(&many[1]));
    assert_eq!(
        choose(&many, Some("10")),
        Err(RouteError::Ambiguous(CleanText::new("10")))
    );
    let err = choose(&many, Some("tcp://eve:pw@host:1/")).unwrap_err();
    assert_eq!(err.to_string(), "display 'tcp://host:1/' not found");
    assert_eq!(
        choose(&one, Some(":11")).unwrap_err().to_string(),
        "display ':11' not found"
    );
    assert_eq!(
        choose(&one, Some("garbage")),
        Err(RouteError::NotFound(CleanText::new("garbage")))
    );
}

#[test]
fn only_a_string_display_is_a_request() {
    let hello = |v: Value| Value::Dict(vec![(Value::str("display"), v)]);
    assert_eq!(
        requested_display(&hello(Value::str(":10"))),
        Some(":10".into())
    );
    assert_eq!(
        requested_display(&hello(Value::Bytes(b"tcp://h:1/".to_vec()))),
        Some("tcp://h:1/".into())
    );
    assert_eq!(requested_display(&hello(Value::str(""))), None);
    assert_eq!(requested_display(&hello(Value::Dict(vec![]))), None);
    assert_eq!(requested_display(&hello(Value::Int(10))), None);
    assert_eq!(requested_display(&Value::Dict(vec![])), None);
}
