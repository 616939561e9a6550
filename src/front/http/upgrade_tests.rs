//! Tests for the upgrade decision: the RFC 6455 example, refusals, routes.

use std::collections::HashMap;

use super::*;
use crate::front::http::request::parse;
use crate::front::http::testdir::TempDir;
use crate::front::http::tokens::TokenFile;

fn request(target: &str, extra: &str) -> Request {
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    parse(head.as_bytes()).unwrap().unwrap().0
}

fn v13(target: &str, extra: &str) -> Request {
    request(target, &format!("Sec-WebSocket-Version: 13\r\n{extra}"))
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn tokens(pairs: &[(&str, &str)]) -> UpgradePolicy {
    let map: HashMap<String, Target> = pairs
        .iter()
        .map(|(t, a)| (t.to_string(), Target::parse(a).unwrap()))
        .collect();
    UpgradePolicy {
        tokens: Some(Arc::new(map)),
        ..UpgradePolicy::default()
    }
}

#[test]
fn rfc6455_example() {
    let req = v13("/chat", "Sec-WebSocket-Protocol: chat, binary\r\n");
    let ok = accept(&req, &UpgradePolicy::default()).unwrap();
    assert_eq!(
        text(&ok.response),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
    );
    assert_eq!(ok.route, Route::Xpra);
    assert_eq!(ok.protocol, Some("binary"));
}

#[test]
fn subprotocols() {
    let ok = accept(&v13("/", ""), &UpgradePolicy::default()).unwrap();
    assert_eq!(ok.protocol, None);
    assert!(!text(&ok.response).contains("Sec-WebSocket-Protocol"));
    let err = accept(
        &v13("/", "Sec-WebSocket-Protocol: base64\r\n"),
        &UpgradePolicy::default(),
    )
    .unwrap_err();
    assert_eq!(err.status().code(), 400);
    let ok = accept(
        &v13(
            "/",
            "Sec-WebSocket-Protocol: x\r\nSec-WebSocket-Protocol: binary\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n",
        ),
        &UpgradePolicy::default(),
    )
    .unwrap();
    assert_eq!(ok.protocol, Some("binary"));
    assert!(
        !text(&ok.response).contains("Extensions"),
        "no extension accepted"
    );
}

#[test]
fn version_missing_or_wrong_is_426() {
    for req in [
        request("/", ""),
        request("/", "Sec-WebSocket-Version: 8\r\n"),
    ] {
        let err = accept(&req, &UpgradePolicy::default()).unwrap_err();
        assert_eq!(err, HttpError::WebSocketVersion);
        let resp = err.response(false);
        let s = text(&resp);
        assert!(s.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{s}");
        assert!(s.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{s}");
    }
}

#[test]
fn bad_handshakes_are_400() {
    let mut no_key = v13("/", "");
    no_key.headers.retain(|(n, _)| n != "sec-websocket-key");
    let mut bad_key = v13("/", "");
    for (n, v) in bad_key.headers.iter_mut() {
        if n == "sec-websocket-key" {
            *v = "not base64 at all".into();
        }
    }
    let mut http10 = v13("/", "");
    http10.version = Version::Http10;
    let mut plain = v13("/", "");
    plain.headers.retain(|(n, _)| n != "upgrade");
    for req in [no_key, bad_key, http10, plain] {
        let err = accept(&req, &UpgradePolicy::default()).unwrap_err();
        assert_eq!(err.status().code(), 400, "{err}");
    }
}

#[test]
fn origin_allow_list() {
    let policy = UpgradePolicy {
        allowed_origins: Some(vec!["https://Desk.example.com/".into()]),
        ..UpgradePolicy::default()
    };
    let good = v13("/", "Origin: https://desk.example.com\r\n");
    assert!(accept(&good, &policy).is_ok());
    for origin in ["https://evil.example", "http://desk.example.com", "null"] {
        let req = v13("/", &format!("Origin: {origin}\r\n"));
        let err = accept(&req, &policy).unwrap_err();
        assert_eq!(err, HttpError::Forbidden("Origin not allowed"), "{origin}");
        assert_eq!(err.status().code(), 403);
    }
    let none = v13("/", "");
    assert!(
        accept(&none, &policy).is_ok(),
        "non-browser clients send no Origin"
    );
    let strict = UpgradePolicy {
        require_origin: true,
        ..policy
    };
    assert_eq!(
        accept(&none, &strict).unwrap_err(),
        HttpError::Forbidden("Origin required")
    );
    let any = v13("/", "Origin: https://anything.example\r\n");
    assert!(accept(&any, &UpgradePolicy::default()).is_ok());
}

#[test]
fn token_routes() {
    let policy = tokens(&[("abc", "127.0.0.1:5901"), ("named", "desk.example:5902")]);
    let ok = accept(&v13("/?token=abc", ""), &policy).unwrap();
    assert_eq!(
        ok.route,
        Route::Token(Target::parse("127.0.0.1:5901").unwrap())
    );
    let ok = accept(&v13("/websockify?token=named&x=1", ""), &policy).unwrap();
    assert_eq!(
        ok.route,
        Route::Token(Target::parse("desk.example:5902").unwrap())
    );
    assert_eq!(accept(&v13("/", ""), &policy).unwrap().route, Route::Xpra);
    for target in ["/?token=nope", "/?token=", "/?token"] {
        let err = accept(&v13(target, ""), &policy).unwrap_err();
        assert_eq!(err, HttpError::Forbidden("unknown token"), "{target}");
    }
    let err = accept(&v13("/?token=abc", ""), &UpgradePolicy::default()).unwrap_err();
    assert_eq!(err, HttpError::Forbidden("unknown token"), "no token map");
    let err = accept(&v13("/?token=abc&token=abc", ""), &policy).unwrap_err();
    assert_eq!(err.status().code(), 400);
}

#[test]
fn urls_never_name_a_port() {
    let policy = tokens(&[("abc", "127.0.0.1:5901")]);
    for target in [
        "/?port=5900",
        "/?token=abc&port=22",
        "/?host=127.0.0.1",
        "/?Target=127.0.0.1:22",
    ] {
        let err = accept(&v13(target, ""), &policy).unwrap_err();
        assert_eq!(
            err,
            HttpError::Forbidden("target named in the URL"),
            "{target}"
        );
    }
    // The path is not a route: /x2gows/5900 goes to the xpra door, never to port 5900.
    let ok = accept(&v13("/x2gows/5900", ""), &policy).unwrap();
    assert_eq!(ok.route, Route::Xpra);
}

#[test]
fn token_file_reload_reaches_the_route() {
    let dir = TempDir::new("upgrade-tokens");
    let path = dir.write("tokens", b"abc: 127.0.0.1:5901\n");
    let policy = UpgradePolicy {
        tokens: Some(Arc::new(TokenFile::open(&path).unwrap())),
        ..UpgradePolicy::default()
    };
    assert!(accept(&v13("/?token=abc", ""), &policy).is_ok());
    assert!(accept(&v13("/?token=def", ""), &policy).is_err());
    dir.write("tokens", b"def: 127.0.0.1:5902\n");
    let ok = accept(&v13("/?token=def", ""), &policy).unwrap();
    assert_eq!(
        ok.route,
        Route::Token(Target::parse("127.0.0.1:5902").unwrap())
    );
    assert!(accept(&v13("/?token=abc", ""), &policy).is_err(), "revoked");
}
