//! Building response heads: status line, headers, `Content-Length`, `Connection`, and the
//! security headers every answer from the web root carries.
//!
//! The security headers follow X2Go's nginx configuration for its HTML client and xpra's own
//! `http-headers/10_content_security_policy.txt`, adjusted to what xpra's HTML5 client
//! (Debian's `/usr/share/xpra/www`) does; see [`CONTENT_SECURITY_POLICY`].
//! `Strict-Transport-Security` goes out only over TLS: sent over plain HTTP it is ignored by
//! browsers, and it would be a lie about how the page arrived.

/// The status codes this layer answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    SwitchingProtocols,
    Ok,
    MovedPermanently,
    NotModified,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    UpgradeRequired,
    TooManyRequests,
    HeaderFieldsTooLarge,
    InternalServerError,
    ServiceUnavailable,
    VersionNotSupported,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::SwitchingProtocols => 101,
            Status::Ok => 200,
            Status::MovedPermanently => 301,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::PayloadTooLarge => 413,
            Status::UpgradeRequired => 426,
            Status::TooManyRequests => 429,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::ServiceUnavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::SwitchingProtocols => "Switching Protocols",
            Status::Ok => "OK",
            Status::MovedPermanently => "Moved Permanently",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::UpgradeRequired => "Upgrade Required",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// 1xx, 204 and 304 never carry a body (RFC 9112 §6.3).
    pub fn has_body(self) -> bool {
        !matches!(self, Status::SwitchingProtocols | Status::NotModified)
    }
}

/// What xpra's HTML5 client needs, and nothing more:
/// - `script-src 'self' 'unsafe-inline'`: `index.html` and `connect.html` each run an inline
///   `<script>` block and use inline `onclick=` handlers; no `eval` is reached (forge.js and
///   FileSaver.js only fall back to `Function()` when `self`/`window` are missing).
/// - `style-src 'self' 'unsafe-inline'`: `style="..."` attributes throughout both pages.
/// - `img-src`/`media-src` `data: blob:`: window contents, icons and cursors arrive as
///   `data:` URLs, audio through a `MediaSource` object URL (`blob:`), the bell is a
///   `data:audio/wav`.
/// - `worker-src 'self'`: `new Worker('js/Protocol.js')` and `js/lib/wsworker_check.js`.
/// - `connect-src 'self' ws: wss:`: the WebSocket (built as `ws://host:port/path`, which
///   older Safari does not match with `'self'`) and connect.html's `XMLHttpRequest` for
///   `/favicon.png?echo-headers`.
/// - `font-src 'self'`: the Material Icons woff.
/// - the rest locked down: no plugins, no `<base>` elsewhere, forms and framing same-origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self'; \
connect-src 'self' ws: wss:; worker-src 'self'; object-src 'none'; base-uri 'self'; \
form-action 'self'; frame-ancestors 'self'";

/// The successor of X2Go's `Feature-Policy`: sensors and devices the client never uses.
pub const PERMISSIONS_POLICY: &str =
    "camera=(), microphone=(), geolocation=(), gyroscope=(), magnetometer=(), payment=(), usb=()";

/// HSTS as X2Go sets it: one year, this host only.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// A response head under construction. Header names are ours (`&'static str`); values are
/// cleaned of control characters so nothing can split the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: Status,
    headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: Status) -> Response {
        Response {
            status,
            headers: Vec::with_capacity(12),
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Adds a header; CR, LF, NUL and other controls but tab are dropped from `value`.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        debug_assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'));
        let mut value = value.into();
        value.retain(|c| c == '\t' || !c.is_control());
        self.headers.push((name, value));
        self
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The security headers; HSTS only when the connection is TLS.
    pub fn security(self, tls: bool) -> Response {
        let r = self
            .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            .header("X-Content-Type-Options", "nosniff")
            .header("X-Frame-Options", "SAMEORIGIN")
            .header("Referrer-Policy", "no-referrer")
            .header("Permissions-Policy", PERMISSIONS_POLICY);
        if tls {
            r.header("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        } else {
            r
        }
    }

    pub fn content_length(self, len: u64) -> Response {
        self.header("Content-Length", len.to_string())
    }

    /// `Connection: keep-alive` or `Connection: close`, said explicitly for both versions.
    pub fn connection(self, keep_alive: bool) -> Response {
        self.header(
            "Connection",
            if keep_alive { "keep-alive" } else { "close" },
        )
    }

    /// The head as bytes, ending with the empty line.
    pub fn encode(&self) -> Vec<u8> {
        let len = 32
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.code().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.reason().as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The tiny plain-text body of an error: `404 Not Found\n`.
pub fn error_body(status: Status) -> String {
    format!("{} {}\n", status.code(), status.reason())
}

/// The head of an error response: security headers, `text/plain`, the length of
/// [`error_body`], `Connection`, and `extra` (`Allow`, `Sec-WebSocket-Version`).
pub fn error_head(
    status: Status,
    tls: bool,
    keep_alive: bool,
    extra: &[(&'static str, &'static str)],
) -> Response {
    let mut r = Response::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-store")
        .security(tls)
        .content_length(error_body(status).len() as u64)
        .connection(keep_alive);
    for (name, value) in extra {
        r = r.header(name, *value);
    }
    r
}

/// An error response, head and body.
pub fn error_response(
    status: Status,
    tls: bool,
    keep_alive: bool,
    extra: &[(&'static str, &'static str)],
) -> Vec<u8> {
    let mut out = error_head(status, tls, keep_alive, extra).encode();
    out.extend_from_slice(error_body(status).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn head_layout() {
        let head = Response::new(Status::Ok)
            .header("Content-Type", "text/html")
            .content_length(5)
            .connection(true)
            .encode();
        assert_eq!(
            text(&head),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\
             Connection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn values_cannot_split_the_head() {
        let head = Response::new(Status::Ok)
            .header("X-Test", "a\r\nSet-Cookie: x=1\0")
            .encode();
        assert_eq!(
            text(&head),
            "HTTP/1.1 200 OK\r\nX-Test: aSet-Cookie: x=1\r\n\r\n"
        );
    }

    #[test]
    fn hsts_only_over_tls() {
        let plain = Response::new(Status::Ok).security(false);
        let tls = Response::new(Status::Ok).security(true);
        assert_eq!(plain.get("strict-transport-security"), None);
        assert_eq!(
            tls.get("Strict-Transport-Security"),
            Some("max-age=31536000")
        );
        for r in [&plain, &tls] {
            assert_eq!(r.get("X-Content-Type-Options"), Some("nosniff"));
            assert_eq!(r.get("X-Frame-Options"), Some("SAMEORIGIN"));
            assert_eq!(r.get("Referrer-Policy"), Some("no-referrer"));
            let csp = r.get("Content-Security-Policy").unwrap();
            assert!(csp.contains("connect-src 'self' ws: wss:"), "{csp}");
            assert!(csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
            assert!(!csp.contains("unsafe-eval"), "{csp}");
        }
    }

    #[test]
    fn error_responses_are_complete() {
        for status in [
            Status::BadRequest,
            Status::Forbidden,
            Status::NotFound,
            Status::MethodNotAllowed,
            Status::RequestTimeout,
            Status::PayloadTooLarge,
            Status::HeaderFieldsTooLarge,
            Status::InternalServerError,
        ] {
            let bytes = error_response(status, false, false, &[]);
            let s = text(&bytes);
            let (head, body) = s.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {} ", status.code())),
                "{head}"
            );
            assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
            assert!(head.contains("\r\nConnection: close"));
            assert_eq!(body, error_body(status));
        }
        let bytes = error_response(
            Status::MethodNotAllowed,
            true,
            true,
            &[("Allow", "GET, HEAD")],
        );
        let s = text(&bytes);
        assert!(s.contains("\r\nAllow: GET, HEAD\r\n"), "{s}");
        assert!(s.contains("\r\nConnection: keep-alive\r\n"), "{s}");
        assert!(s.contains("\r\nStrict-Transport-Security: "), "{s}");
    }
}
