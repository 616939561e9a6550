//! `http_request`: the HTTP front door on a client's first bytes: the request-head parser
//! (`front::http::parse`), then what the door answers (`front::http::handle`: WebSocket
//! upgrade, static file from a small web root, or refusal).
//!
//! Input: policy selector, cut point (2 bytes), then the bytes read so far.
//!
//! Guards:
//! - never panics;
//! - streaming-safe: the door parses again after every read, so a request that parses once
//!   whole never parses differently from a prefix of it: a shorter prefix is `Ok(None)` or
//!   the same answer, and the head's own bytes give the same request;
//! - never looks past `MAX_HEAD`: a longer buffer reads like its first `MAX_HEAD` bytes, and
//!   a buffer that long is decided (a request or an error, never "need more");
//! - a parsed request is normalised as documented: the path starts with `/` (or is `*`),
//!   header names lower-case, values trimmed;
//! - every answer's head is well formed, whatever the client put in its headers (no
//!   injected line, no early end); an upgrade is granted only to a valid RFC 6455
//!   handshake; a file served lies under the web root; a token route only from `?token=`;
//! - an `If-Modified-Since` date that reads, written back, reads the same.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use deskrelay::front::http::{
    date, handle, parse, Action, BodySource, HttpError, Request, Route, Target, UpgradePolicy,
    MAX_HEAD,
};
use deskrelay_fuzz::{check_response_head, web_root, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let knobs = input.byte();
    let cut = input.u16();
    let buf = input.rest();

    let full = parse(buf);
    check_prefixes(buf, &full, cut);
    check_max_head(buf);

    let Ok(Some((req, _))) = full else {
        if let Err(e) = full {
            check_response_head(&e.response(knobs & 1 != 0));
        }
        return;
    };
    check_request(&req);
    check_answer(&req, knobs);
});

/// What a prefix of the bytes parses to is "need more" or the answer for all of them.
fn check_prefixes(buf: &[u8], full: &Result<Option<(Request, usize)>, HttpError>, cut: u16) {
    let at = usize::from(cut) % (buf.len() + 1);
    let part = parse(&buf[..at]);
    assert!(
        matches!(part, Ok(None)) || part == *full,
        "{at} of {} bytes parse to {part:?}, all of them to {full:?}",
        buf.len()
    );
    if let Ok(Some((_, n))) = full {
        assert!(*n <= buf.len().min(MAX_HEAD));
        assert_eq!(parse(&buf[..*n]), *full, "the head alone");
        if *n > 0 {
            assert_eq!(parse(&buf[..n - 1]), Ok(None), "one byte short of the head");
        }
    }
}

/// The buffer repeated past `MAX_HEAD` reads like its first `MAX_HEAD` bytes.
fn check_max_head(buf: &[u8]) {
    if buf.is_empty() {
        return;
    }
    let long: Vec<u8> = buf.iter().copied().cycle().take(MAX_HEAD + 1).collect();
    let r = parse(&long);
    assert_eq!(r, parse(&long[..MAX_HEAD]));
    assert!(!matches!(r, Ok(None)), "{} bytes undecided", MAX_HEAD);
}

fn check_request(req: &Request) {
    assert!(
        req.path.starts_with('/') || req.path == "*",
        "path {:?}",
        req.path
    );
    for (name, value) in &req.headers {
        assert!(
            !name.bytes().any(|b| b.is_ascii_uppercase()),
            "name {name:?}"
        );
        assert_eq!(value.trim(), value);
    }
    let _ = (req.keep_alive(), req.content_length(), req.has_body());
    if let Some(since) = req.header("if-modified-since") {
        if let Some(t) = date::parse(since) {
            assert_eq!(date::parse(&date::format(t)), Some(t), "{since:?}");
        }
    }
}

fn check_answer(req: &Request, knobs: u8) {
    let tls = knobs & 1 != 0;
    let tokens: HashMap<String, Target> = HashMap::from([
        (
            "t1".to_owned(),
            Target::parse("127.0.0.1:5900").expect("addr"),
        ),
        (
            "t2".to_owned(),
            Target::parse("desk.example:5901").expect("host"),
        ),
    ]);
    let policy = UpgradePolicy {
        allowed_origins: (knobs & 2 != 0).then(|| vec!["https://desk.example.com/".to_owned()]),
        require_origin: knobs & 4 != 0,
        tokens: (knobs & 8 != 0).then(|| Arc::new(tokens) as _),
    };
    let web = (knobs & 16 == 0).then(web_root);
    match handle(req, web, &policy, tls) {
        Action::Upgrade(a) => {
            assert!(req.is_websocket_upgrade(), "upgrade granted to {req:?}");
            assert!(a.response.starts_with(b"HTTP/1.1 101 "));
            check_response_head(&a.response);
            if let Route::Token(_) = a.route {
                assert!(req.query("token").is_some());
            }
        }
        Action::Static(r) => {
            check_response_head(&r.head);
            if let BodySource::File { path, .. } = &r.body {
                let root = web.expect("files only from a web root").root();
                assert!(path.starts_with(root), "{path:?} outside {root:?}");
            }
        }
        Action::Refuse(e) => check_response_head(&e.response(tls)),
    }
}
