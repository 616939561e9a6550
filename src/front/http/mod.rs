//! The HTTP side of the front door, without I/O: what a browser's request asks for and the
//! bytes that answer it.
//!
//! One port speaks xpra, TLS and HTTP. Once the sniffer ([`sniff`]) has seen a method, the
//! I/O layer feeds the bytes read so far to [`parse`] until it returns a request head, then
//! calls [`handle`]:
//! - a WebSocket upgrade ([`upgrade`]): checked (version, key, `Origin` allow-list,
//!   subprotocol `binary`), routed by `?token=` through the `--tokens` file ([`tokens`]) or
//!   to the xpra door, and answered with `101`; the bytes after the head are WebSocket frames;
//! - anything else: a file from the web root ([`static_files`], the xpra HTML5 client), GET
//!   and HEAD only, with the security headers of [`response`]; the caller sends the head,
//!   streams the named file, and reads the next request if `keep_alive`;
//! - a refusal: an error response, then close.
//!
//! Nothing here panics on input, reads a request body, or logs a token.

pub mod date;
pub mod error;
pub mod request;
pub mod response;
pub mod static_files;
pub mod tokens;
pub mod upgrade;

#[cfg(test)]
mod testdir;

pub use error::{HttpError, Side};
pub use request::{looks_like_http, parse, sniff, Method, Request, Sniff, Version, MAX_HEAD};
pub use response::{Response, Status};
pub use static_files::{BodySource, FileInfo, Resolved, StaticResponse, WebRoot};
pub use tokens::{Target, TokenFile, TokenFileError, TokenLookup};
pub use upgrade::{accept, Accepted, Route, UpgradePolicy, UNKNOWN_TOKEN};

/// What to do with one parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `response`, then relay WebSocket frames along `route`.
    Upgrade(Accepted),
    /// Send the head and body; read another request if `keep_alive`.
    Static(StaticResponse),
    /// Send [`HttpError::response`] and close.
    Refuse(HttpError),
}

/// Decides what a request gets: an upgrade, a file from `web` (none: 404), or a refusal.
pub fn handle(req: &Request, web: Option<&WebRoot>, policy: &UpgradePolicy, tls: bool) -> Action {
    if req.wants_websocket() {
        return match accept(req, policy) {
            Ok(a) => Action::Upgrade(a),
            Err(e) => Action::Refuse(e),
        };
    }
    match web {
        Some(root) => Action::Static(root.respond(req, tls)),
        None => Action::Refuse(HttpError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(head: &str) -> Request {
        parse(head.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn dispatch() {
        let policy = UpgradePolicy::default();
        let ws = req(
            "GET /?token=x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\
                      Upgrade: websocket\r\n\r\n",
        );
        assert_eq!(
            handle(&ws, None, &policy, false),
            Action::Refuse(HttpError::WebSocketVersion),
            "a broken upgrade is refused, never served a file"
        );
        let page = req("GET /index.html HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            handle(&page, None, &policy, false),
            Action::Refuse(HttpError::NotFound),
            "no web root"
        );
        let dir = testdir::TempDir::new("dispatch");
        dir.write("index.html", b"hi");
        let root = WebRoot::new(dir.path()).unwrap();
        match handle(&page, Some(&root), &policy, false) {
            Action::Static(r) => assert_eq!(r.status, Status::Ok),
            other => panic!("{other:?}"),
        }
    }
}
