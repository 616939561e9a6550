//! Why an HTTP request is refused, and the status line that says so.
//!
//! Every variant maps to one [`Status`]; [`HttpError::response`] turns it into the bytes to
//! send before closing. Messages are fixed strings: nothing the client sent (a path, a token,
//! a header value) is ever copied into them, so they are safe to log and to put in a body.

use super::response::{error_body, error_head, Status};

/// Who caused a failure: decides the log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something malformed or not allowed: log at `debug`.
    Client,
    /// Our side failed (an I/O error reading the web root): log at `warn`.
    Internal,
}

/// A request refused before any body or upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Malformed request line, header, path or query.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request head is larger than [`super::request::MAX_HEAD`] or has too many headers.
    #[error("request head too large")]
    HeadTooLarge,
    /// Part of a request head arrived, not all of it in time (a slow or stalled client).
    #[error("request timeout")]
    RequestTimeout,
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// A method other than GET or HEAD on a static file.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Nothing to serve at this path (also: directories without an index, hidden files).
    #[error("not found")]
    NotFound,
    /// Refused by policy: traversal, a link out of the web root, an unknown token, an Origin
    /// not on the allow-list, a URL naming its own target.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A WebSocket upgrade asking for a version other than 13.
    #[error("unsupported WebSocket version")]
    WebSocketVersion,
    /// Our own failure while answering.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The client's address is blocked after failed token logins (`Retry-After` seconds).
    #[error("too many failed logins; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// `--max-sessions` or `--max-sessions-per-client` is reached (`Retry-After` seconds).
    #[error("server full; retry in {retry_after} s")]
    ServiceUnavailable { retry_after: u64 },
}

impl HttpError {
    pub fn status(&self) -> Status {
        match self {
            HttpError::BadRequest(_) => Status::BadRequest,
            HttpError::HeadTooLarge => Status::HeaderFieldsTooLarge,
            HttpError::RequestTimeout => Status::RequestTimeout,
            HttpError::VersionNotSupported => Status::VersionNotSupported,
            HttpError::MethodNotAllowed => Status::MethodNotAllowed,
            HttpError::NotFound => Status::NotFound,
            HttpError::Forbidden(_) => Status::Forbidden,
            HttpError::WebSocketVersion => Status::UpgradeRequired,
            HttpError::Internal(_) => Status::InternalServerError,
            HttpError::TooManyRequests { .. } => Status::TooManyRequests,
            HttpError::ServiceUnavailable { .. } => Status::ServiceUnavailable,
        }
    }

    pub fn side(&self) -> Side {
        match self {
            HttpError::Internal(_) => Side::Internal,
            _ => Side::Client,
        }
    }

    /// Headers this refusal must carry besides the common ones (RFC 9110 §15.5.6, RFC 6455
    /// §4.4).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HttpError::MethodNotAllowed => &[("Allow", "GET, HEAD")],
            HttpError::WebSocketVersion => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }

    /// The whole response (head and tiny body), with `Connection: close`: after a refusal
    /// the caller closes, so no body the client may have sent has to be skipped.
    pub fn response(&self, tls: bool) -> Vec<u8> {
        let mut head = error_head(self.status(), tls, false, self.extra_headers());
        if let HttpError::TooManyRequests { retry_after }
        | HttpError::ServiceUnavailable { retry_after } = self
        {
            // RFC 6585 §4, RFC 9110 §15.6.4 and §10.2.3.
            head = head.header("Retry-After", retry_after.to_string());
        }
        let mut out = head.encode();
        out.extend_from_slice(error_body(self.status()).as_bytes());
        out
    }
}
