//! Parsing an HTTP/1.1 request head from the bytes read so far (sans-I/O).
//!
//! [`parse`] answers `Ok(None)` while the head is incomplete and never looks past
//! [`MAX_HEAD`] bytes, so a client cannot make us buffer or scan more than that. Bytes after
//! the head stay with the caller: after a WebSocket upgrade they are the first frames.
//!
//! What is refused (400 unless said): a request target that is not origin-form (`/...`),
//! absolute-form (`http://host/...`, reduced to its path) or `*`; a query with bad
//! percent-encoding or not UTF-8; HTTP/1.1 without `Host`; a second `Host`, `Content-Length`,
//! `Origin`, `Sec-WebSocket-Key` or `Sec-WebSocket-Version` (RFC 6455 §4.1 and request
//! smuggling both make a second copy ambiguous); `Content-Length` together with
//! `Transfer-Encoding`; a version other than 1.0/1.1 (505); more than [`MAX_HEADERS`]
//! headers or a head over [`MAX_HEAD`] (431).
//!
//! The path is kept percent-encoded: decoding is the web root's job, segment by segment, so
//! that `%2F` can never become a separator.

use super::error::HttpError;

/// Largest request head accepted (request line, headers, the empty line).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// Bytes the sniffer needs to tell HTTP from anything else (`"OPTIONS "`).
pub const SNIFF_LEN: usize = 8;

/// The methods the sniffer recognises, each with its space. None starts like an xpra packet
/// header (`P` then a flags byte below 0x40), so `"POST "`/`"PUT "` cannot be confused.
const METHODS: [&[u8]; 6] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"OPTIONS ",
    b"DELETE ",
];

/// Headers that may appear once at most.
const SINGLETONS: [&str; 5] = [
    "host",
    "content-length",
    "origin",
    "sec-websocket-key",
    "sec-websocket-version",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    /// Any other token, as sent.
    Other(String),
}

impl Method {
    fn from_token(t: &str) -> Method {
        match t {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The target's path, still percent-encoded, without query or fragment: starts with `/`,
    /// or is `*`.
    pub path: String,
    /// The query's `name=value` pairs, decoded (`+` is a space), in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased; values trimmed, non-UTF-8 bytes replaced by U+FFFD (which
    /// then matches no allow-list entry).
    pub headers: Vec<(String, String)>,
    pub version: Version,
}

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    Http,
    NotHttp,
    /// A prefix of some method: read more (at most [`SNIFF_LEN`] in all).
    NeedMore,
}

/// Decides from the first bytes whether a connection speaks HTTP.
pub fn sniff(first: &[u8]) -> Sniff {
    if METHODS.iter().any(|m| first.starts_with(m)) {
        Sniff::Http
    } else if METHODS.iter().any(|m| m.starts_with(first)) {
        Sniff::NeedMore
    } else {
        Sniff::NotHttp
    }
}

/// True when `first` starts with a known method and its space.
pub fn looks_like_http(first: &[u8]) -> bool {
    sniff(first) == Sniff::Http
}

/// Parses a request head: `Ok(None)` while incomplete, else the request and the head's
/// length in `buf`.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Request::new(&mut headers);
    let head_len = match raw.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(HttpError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(HttpError::VersionNotSupported),
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    let (Some(method), Some(target), Some(version)) = (raw.method, raw.path, raw.version) else {
        return Err(HttpError::BadRequest("incomplete request line"));
    };
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HttpError::VersionNotSupported),
    };
    let method = Method::from_token(method);
    let (path, query) = split_target(target, &method)?;
    let headers: Vec<(String, String)> = raw
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value);
            (h.name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let req = Request {
        method,
        path,
        query: parse_query(query)?,
        headers,
        version,
    };
    req.check_headers()?;
    Ok(Some((req, head_len)))
}

/// Splits a request target into its path and raw query.
fn split_target<'a>(target: &'a str, method: &Method) -> Result<(String, &'a str), HttpError> {
    if target == "*" {
        return match method {
            Method::Options => Ok(("*".to_owned(), "")),
            _ => Err(HttpError::BadRequest("asterisk target")),
        };
    }
    let target = target.split('#').next().unwrap_or_default();
    let origin_form = if target.starts_with('/') {
        target
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &target[7..]
        } else if lower.starts_with("https://") {
            &target[8..]
        } else {
            return Err(HttpError::BadRequest("request target"));
        };
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            Some(i) => return Ok(("/".to_owned(), &rest[i + 1..])),
            None => "/",
        }
    };
    match origin_form.split_once('?') {
        Some((path, query)) => Ok((path.to_owned(), query)),
        None => Ok((origin_form.to_owned(), "")),
    }
}

/// `a=1&b=%20x&flag` into decoded pairs (`flag` has an empty value).
fn parse_query(query: &str) -> Result<Vec<(String, String)>, HttpError> {
    let decode = |s: &str| {
        percent_decode(s, true)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(HttpError::BadRequest("query encoding"))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); `None` on a `%` not
/// followed by two hex digits.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl Request {
    /// The first value of header `name` (give it lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The comma-separated elements of every `name` header, trimmed, empty ones skipped.
    pub fn header_tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// True when some `name` header lists `token` (ASCII case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The first query parameter called `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, 0 when absent (checked to be digits by [`parse`]).
    pub fn content_length(&self) -> u64 {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The request announces a body (which this layer never reads).
    pub fn has_body(&self) -> bool {
        self.content_length() > 0 || self.header("transfer-encoding").is_some()
    }

    /// Whether the connection may carry another request after this one: the version's
    /// default, `Connection: close`/`keep-alive`, and never after an unread body.
    pub fn keep_alive(&self) -> bool {
        if self.has_body() || self.has_token("connection", "close") {
            return false;
        }
        match self.version {
            Version::Http11 => true,
            Version::Http10 => self.has_token("connection", "keep-alive"),
        }
    }

    /// The client asks for a WebSocket (GET, `Connection: upgrade`, `Upgrade: websocket`),
    /// valid or not: such a request goes to the upgrade decision, which says what is wrong,
    /// and is never answered with a file.
    pub fn wants_websocket(&self) -> bool {
        self.method == Method::Get
            && self.has_token("connection", "upgrade")
            && self.has_token("upgrade", "websocket")
    }

    /// A complete, valid RFC 6455 opening handshake: [`Self::wants_websocket`], HTTP/1.1,
    /// `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` of 16 bytes in base64.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.wants_websocket()
            && self.version == Version::Http11
            && self.header("sec-websocket-version") == Some("13")
            && self
                .header("sec-websocket-key")
                .is_some_and(is_websocket_key)
    }

    fn check_headers(&self) -> Result<(), HttpError> {
        for name in SINGLETONS {
            if self.headers.iter().filter(|(n, _)| n == name).count() > 1 {
                return Err(HttpError::BadRequest("repeated header"));
            }
        }
        if self.version == Version::Http11 && self.header("host").is_none() {
            return Err(HttpError::BadRequest("missing Host"));
        }
        if let Some(len) = self.header("content-length") {
            if len.is_empty() || len.len() > 19 || !len.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::BadRequest("Content-Length"));
            }
            if self.header("transfer-encoding").is_some() {
                return Err(HttpError::BadRequest(
                    "Content-Length with Transfer-Encoding",
                ));
            }
        }
        Ok(())
    }
}

/// 16 bytes in base64: 22 alphabet characters then `==`.
pub fn is_websocket_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
