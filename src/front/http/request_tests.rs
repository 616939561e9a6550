//! Tests for the request head parser and the sniffer.

use super::*;
use proptest::prelude::*;

const UPGRADE: &str = "GET /chat?token=abc HTTP/1.1\r\nHost: server.example.com\r\n\
Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\
Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n";

fn ok(head: &str) -> Request {
    parse(head.as_bytes()).unwrap().unwrap().0
}

#[test]
fn incomplete_then_complete() {
    let bytes = UPGRADE.as_bytes();
    for end in 0..bytes.len() {
        assert_eq!(parse(&bytes[..end]), Ok(None), "prefix of {end} bytes");
    }
    let mut more = bytes.to_vec();
    more.extend_from_slice(b"\x81\x85frame");
    let (req, len) = parse(&more).unwrap().unwrap();
    assert_eq!(
        len,
        bytes.len(),
        "bytes after the head stay with the caller"
    );
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.path, "/chat");
    assert_eq!(req.query("token"), Some("abc"));
    assert_eq!(req.version, Version::Http11);
    assert_eq!(req.header("sec-websocket-version"), Some("13"));
    assert!(req.wants_websocket());
    assert!(req.is_websocket_upgrade());
}

#[test]
fn oversized_head_is_431() {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ".to_vec();
    head.resize(MAX_HEAD + 10, b'a');
    assert_eq!(parse(&head), Err(HttpError::HeadTooLarge));
    assert_eq!(HttpError::HeadTooLarge.status().code(), 431);
    // Just under the limit, still incomplete: wait for more.
    assert_eq!(parse(&head[..MAX_HEAD - 1]), Ok(None));
    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(parse(&many), Err(HttpError::HeadTooLarge));
}

#[test]
fn bad_syntax_is_400() {
    for bad in [
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",
        "GET  HTTP/1.1\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET relative HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /?a=%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /?a=%ff HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n\r\n",
    ] {
        let err = parse(bad.as_bytes()).unwrap_err();
        assert_eq!(err.status().code(), 400, "{bad:?}: {err}");
    }
    assert_eq!(
        parse(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
        Err(HttpError::VersionNotSupported)
    );
}

#[test]
fn targets() {
    let r = ok("GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((r.path.as_str(), r.query("x")), ("/a/b", Some("1")));
    let r = ok("GET HTTPS://example.com HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.path, "/");
    let r = ok("GET https://example.com?q=2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((r.path.as_str(), r.query("q")), ("/", Some("2")));
    let r = ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.path, "*");
    let r = ok("GET /a%2Fb?t=a+b%2Bc&flag&&=v HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.path, "/a%2Fb", "the path stays encoded");
    assert_eq!(r.query("t"), Some("a b+c"));
    assert_eq!(r.query("flag"), Some(""));
    assert_eq!(r.query(""), Some("v"));
}

#[test]
fn headers_lower_cased_and_trimmed() {
    let r = ok("GET / HTTP/1.0\r\nX-Thing:   spaced  \r\nACCEPT: */*\r\n\r\n");
    assert_eq!(r.header("x-thing"), Some("spaced"));
    assert_eq!(r.header("accept"), Some("*/*"));
    assert_eq!(r.version, Version::Http10);
    assert!(!r.keep_alive(), "1.0 closes by default");
    let r = ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(r.keep_alive());
    let r = ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(!r.keep_alive());
    let r = ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(r.keep_alive());
    let r = ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
    assert!(!r.keep_alive(), "an unread body ends the connection");
    let r = ok("GET / HTTP/1.1\r\nHost: a\r\nX: café\r\n\r\n");
    assert_eq!(r.header("x"), Some("café"));
}

#[test]
fn websocket_detection() {
    let base = ok(UPGRADE);
    let without = |name: &str| {
        let mut r = base.clone();
        r.headers.retain(|(n, _)| n != name);
        r
    };
    assert!(!without("upgrade").wants_websocket());
    assert!(!without("connection").wants_websocket());
    assert!(without("sec-websocket-key").wants_websocket());
    assert!(!without("sec-websocket-key").is_websocket_upgrade());
    assert!(!without("sec-websocket-version").is_websocket_upgrade());
    let with = |name: &str, value: &str| {
        let mut r = without(name);
        r.headers.push((name.to_owned(), value.to_owned()));
        r
    };
    assert!(with("upgrade", "WebSocket").is_websocket_upgrade());
    assert!(with("connection", "UPGRADE").is_websocket_upgrade());
    assert!(!with("connection", "upgraded").wants_websocket());
    assert!(!with("sec-websocket-version", "8").is_websocket_upgrade());
    assert!(!with("sec-websocket-key", "short==").is_websocket_upgrade());
    assert!(!with("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=!").is_websocket_upgrade());
    let mut post = base.clone();
    post.method = Method::Post;
    assert!(!post.wants_websocket());
    let mut old = base;
    old.version = Version::Http10;
    assert!(!old.is_websocket_upgrade());
}

#[test]
fn sniffing() {
    for m in [
        "GET /",
        "HEAD /",
        "POST /",
        "PUT /",
        "OPTIONS *",
        "DELETE /",
    ] {
        assert!(looks_like_http(m.as_bytes()), "{m}");
    }
    assert_eq!(sniff(b""), Sniff::NeedMore);
    assert_eq!(sniff(b"OPTION"), Sniff::NeedMore);
    assert_eq!(sniff(b"P"), Sniff::NeedMore);
    assert_eq!(sniff(b"GETX"), Sniff::NotHttp);
    assert_eq!(sniff(b"get /"), Sniff::NotHttp);
    // An xpra packet header: 'P', flags, level, index, size.
    assert_eq!(sniff(b"P\x10\x00\x00\x00\x00\x01\x00"), Sniff::NotHttp);
    // A TLS ClientHello.
    assert_eq!(sniff(b"\x16\x03\x01\x02\x00\x01\x00\x01"), Sniff::NotHttp);
    assert!(METHODS.iter().all(|m| m.len() <= SNIFF_LEN));
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b%2f", false).unwrap(), b"a b/");
    assert_eq!(percent_decode("a+b", false).unwrap(), b"a+b");
    assert_eq!(percent_decode("a+b", true).unwrap(), b"a b");
    assert_eq!(percent_decode("%", false), None);
    assert_eq!(percent_decode("%4", false), None);
    assert_eq!(percent_decode("%g0", false), None);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
        let _ = sniff(&bytes);
    }

    #[test]
    fn mutated_heads_never_panic(
        cut in 0..UPGRADE.len(),
        flips in proptest::collection::vec((0..UPGRADE.len(), any::<u8>()), 0..8),
    ) {
        let mut bytes = UPGRADE.as_bytes().to_vec();
        for (at, b) in flips {
            bytes[at] = b;
        }
        if let Ok(Some((req, len))) = parse(&bytes) {
            prop_assert!(len <= bytes.len());
            let _ = (req.is_websocket_upgrade(), req.keep_alive(), req.query("token"));
        }
        let _ = parse(&bytes[..cut]);
    }
}
