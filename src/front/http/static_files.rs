//! The web root: which file a request path names, and the head to send before it.
//!
//! [`WebRoot::resolve`] decodes the path one segment at a time (so `%2F` is never a
//! separator), skips empty and `.` segments, and refuses `..` (also as `%2e%2e`), an encoded
//! `/` or `\` (403), NUL or a bad escape (400), and hidden names (`.git`, 404). It then
//! canonicalizes the file and serves it only if the result is under the root or under one
//! of the *link roots*: Debian's xpra package links `js/lib/jquery.js` to
//! `/usr/share/javascript/jquery/jquery.js`, and the client is unusable without jQuery, so
//! [`WebRoot::with_link_roots`] names the trees such links may lead into (for Debian:
//! [`DEBIAN_JAVASCRIPT`]). A path from a request can never name a file there directly:
//! it is joined to the root with `..` refused, so only a link placed in the root leads out.
//!
//! A directory is served through its `index.html` (a path without its final `/` is
//! redirected first, so relative links in the page resolve); there is no directory listing.
//! Only regular files are served (never a FIFO or a device). Content types come from
//! `mime_guess` by the requested name (not a link target's), with `charset=utf-8` on text.
//! When the client accepts it, a precompressed sibling (`x.js.br`, then `x.js.gz`) is
//! served with `Content-Encoding`. `If-Modified-Since` is answered with 304 (responses say
//! `Cache-Control: no-cache`, so browsers revalidate after a package upgrade).
//!
//! No I/O beyond `stat`: [`WebRoot::respond`] returns the head and a [`BodySource`] naming
//! the canonical file and its length; the caller opens it (`O_NOFOLLOW` is safe: the path
//! holds no links), checks that `fstat` still gives that length, and streams exactly that
//! many bytes, or closes.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::date;
use super::error::HttpError;
use super::request::{percent_decode, Method, Request};
use super::response::{error_body, error_head, Response, Status};

/// Where Debian keeps the JavaScript libraries its web packages link to.
pub const DEBIAN_JAVASCRIPT: &str = "/usr/share/javascript";

/// The file a directory is served through.
const INDEX: &str = "index.html";

/// Precompressed siblings, in order of preference: (coding, file suffix).
const PRECOMPRESSED: [(&str, &str); 2] = [("br", ".br"), ("gzip", ".gz")];

/// A directory served over HTTP.
#[derive(Debug, Clone)]
pub struct WebRoot {
    root: PathBuf,
    link_roots: Vec<PathBuf>,
}

/// A file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Canonical: no links, no `..`.
    pub path: PathBuf,
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub content_type: String,
    /// `Some("gzip")`/`Some("br")` when `path` is a precompressed sibling.
    pub encoding: Option<&'static str>,
}

/// What a path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    File(FileInfo),
    /// A directory named without its final `/`: where to send the client.
    Redirect(String),
}

/// What follows the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySource {
    Empty,
    /// A small body made here (error text).
    Bytes(Vec<u8>),
    /// Exactly `len` bytes of the file at `path`.
    File {
        path: PathBuf,
        len: u64,
    },
}

/// A complete answer to a static request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    pub status: Status,
    pub head: Vec<u8>,
    pub body: BodySource,
    /// Whether another request may follow on this connection.
    pub keep_alive: bool,
}

impl WebRoot {
    /// Serves `dir`, which must be a directory; links may not lead out of it.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<WebRoot> {
        let root = fs::canonicalize(dir)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a directory",
            ));
        }
        Ok(WebRoot {
            root,
            link_roots: Vec::new(),
        })
    }

    /// Also serves files that links in the root lead to under these directories (each
    /// canonicalized; a missing one is an error).
    pub fn with_link_roots<P: AsRef<Path>>(
        mut self,
        roots: impl IntoIterator<Item = P>,
    ) -> io::Result<WebRoot> {
        for r in roots {
            self.link_roots.push(fs::canonicalize(r)?);
        }
        Ok(self)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a request path names (percent-encoded, as in [`Request::path`]).
    pub fn resolve(&self, path: &str) -> Result<Resolved, HttpError> {
        let segments = decode_segments(path)?;
        let mut fs_path = self.root.clone();
        fs_path.extend(&segments);
        let (canon, md) = self.open_within(&fs_path)?;
        let (canon, md, name) = if md.is_dir() {
            if !path.ends_with('/') {
                return Ok(Resolved::Redirect(location(&segments)));
            }
            let (c, m) = self.open_within(&canon.join(INDEX))?;
            (c, m, INDEX)
        } else {
            (canon, md, segments.last().map_or(INDEX, String::as_str))
        };
        if !md.is_file() {
            return Err(HttpError::NotFound);
        }
        Ok(Resolved::File(FileInfo {
            len: md.len(),
            modified: md.modified().ok(),
            content_type: content_type(name),
            path: canon,
            encoding: None,
        }))
    }

    /// Answers a request for a static file: GET and HEAD (same head, no body); 405 with
    /// `Allow` for other methods; errors as small text bodies.
    pub fn respond(&self, req: &Request, tls: bool) -> StaticResponse {
        let keep_alive = req.keep_alive();
        let head_only = req.method == Method::Head;
        let result = match req.method {
            Method::Get | Method::Head => self.resolve(&req.path),
            _ => Err(HttpError::MethodNotAllowed),
        };
        let file = match result {
            Ok(Resolved::File(f)) => self.precompressed(req, f),
            Ok(Resolved::Redirect(to)) => {
                let head = Response::new(Status::MovedPermanently)
                    .header("Location", to)
                    .security(tls)
                    .content_length(0)
                    .connection(keep_alive)
                    .encode();
                return finish(
                    Status::MovedPermanently,
                    head,
                    BodySource::Empty,
                    keep_alive,
                );
            }
            Err(e) => {
                let status = e.status();
                if e.side() == super::error::Side::Internal {
                    tracing::warn!(error = %e, "web root");
                }
                let head = error_head(status, tls, keep_alive, e.extra_headers()).encode();
                let body = if head_only {
                    BodySource::Empty
                } else {
                    BodySource::Bytes(error_body(status).into_bytes())
                };
                return finish(status, head, body, keep_alive);
            }
        };
        let last_modified = file.modified.map(date::format);
        let not_modified = match (file.modified, req.header("if-modified-since")) {
            (Some(m), Some(since)) => date::parse(since).is_some_and(|s| whole_secs(m) <= s),
            _ => false,
        };
        let status = if not_modified {
            Status::NotModified
        } else {
            Status::Ok
        };
        let mut r = Response::new(status);
        if !not_modified {
            r = r
                .header("Content-Type", file.content_type.clone())
                .content_length(file.len);
            if let Some(enc) = file.encoding {
                r = r.header("Content-Encoding", enc);
            }
        }
        if let Some(lm) = last_modified {
            r = r.header("Last-Modified", lm);
        }
        r = r
            .header("Cache-Control", "no-cache")
            .header("Vary", "Accept-Encoding");
        if let Some(lang) = echo_accept_language(req) {
            r = r.header("Echo-Accept-Language", lang);
        }
        let head = r.security(tls).connection(keep_alive).encode();
        let body = if head_only || not_modified {
            BodySource::Empty
        } else {
            BodySource::File {
                path: file.path,
                len: file.len,
            }
        };
        finish(status, head, body, keep_alive)
    }

    /// Swaps `file` for a precompressed sibling the client accepts, when there is one.
    fn precompressed(&self, req: &Request, file: FileInfo) -> FileInfo {
        for (coding, suffix) in PRECOMPRESSED {
            if !accepts_encoding(req, coding) {
                continue;
            }
            let mut name = file.path.clone().into_os_string();
            name.push(suffix);
            if let Ok((path, md)) = self.open_within(Path::new(&name)) {
                if md.is_file() && md.len() > 0 {
                    return FileInfo {
                        path,
                        len: md.len(),
                        modified: md.modified().ok(),
                        encoding: Some(coding),
                        ..file
                    };
                }
            }
        }
        file
    }

    /// Canonicalizes `path` and stats it, refusing anything outside the allowed trees.
    fn open_within(&self, path: &Path) -> Result<(PathBuf, Metadata), HttpError> {
        let canon = fs::canonicalize(path).map_err(fs_error)?;
        let inside =
            canon.starts_with(&self.root) || self.link_roots.iter().any(|r| canon.starts_with(r));
        if !inside {
            tracing::debug!(target = %canon.display(), "web root: link leads outside, refused");
            return Err(HttpError::Forbidden("outside the web root"));
        }
        let md = fs::metadata(&canon).map_err(fs_error)?;
        Ok((canon, md))
    }
}

fn finish(status: Status, head: Vec<u8>, body: BodySource, keep_alive: bool) -> StaticResponse {
    StaticResponse {
        status,
        head,
        body,
        keep_alive,
    }
}

/// Splits and decodes a request path into file name segments.
fn decode_segments(path: &str) -> Result<Vec<String>, HttpError> {
    if !path.starts_with('/') {
        return Err(HttpError::NotFound);
    }
    let mut out = Vec::new();
    for raw in path.split('/') {
        let bytes = percent_decode(raw, false).ok_or(HttpError::BadRequest("path encoding"))?;
        let seg = String::from_utf8(bytes).map_err(|_| HttpError::NotFound)?;
        match seg.as_str() {
            "" | "." => continue,
            ".." => return Err(HttpError::Forbidden("path traversal")),
            _ => {}
        }
        if seg.contains('\0') {
            return Err(HttpError::BadRequest("NUL in path"));
        }
        if seg.contains(['/', '\\']) {
            return Err(HttpError::Forbidden("encoded separator"));
        }
        if seg.starts_with('.') {
            return Err(HttpError::NotFound);
        }
        out.push(seg);
    }
    Ok(out)
}

/// `/a/b/` from decoded segments, re-encoded: always one leading `/`, never `//host`.
fn location(segments: &[String]) -> String {
    let mut out = String::from("/");
    for seg in segments {
        for b in seg.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out.push('/');
    }
    out
}

fn fs_error(e: io::Error) -> HttpError {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => HttpError::Forbidden("permission denied"),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP | libc::EINVAL) => {
            HttpError::NotFound
        }
        _ => HttpError::Internal("web root unreadable"),
    }
}

/// The `Content-Type` for a file name.
pub fn content_type(name: &str) -> String {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let ty = match ext.to_ascii_lowercase().as_str() {
        // mime_guess says text/plain and application/font-woff.
        "map" => "application/json".to_owned(),
        "woff" => "font/woff".to_owned(),
        _ => mime_guess::from_ext(ext)
            .first()
            .map_or_else(|| "application/octet-stream".to_owned(), |m| m.to_string()),
    };
    let texty = ty.starts_with("text/")
        || matches!(
            ty.as_str(),
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if texty {
        ty + "; charset=utf-8"
    } else {
        ty
    }
}

/// Whether `Accept-Encoding` allows `coding` (by name or `*`, with q above 0).
fn accepts_encoding(req: &Request, coding: &str) -> bool {
    let mut star = false;
    for item in req.header_tokens("accept-encoding") {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q_zero = parts.any(|p| {
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .is_some_and(|q| q.parse::<f32>().map_or(true, |q| q <= 0.0))
        });
        if name.eq_ignore_ascii_case(coding) {
            return !q_zero;
        }
        if name == "*" {
            star = !q_zero;
        }
    }
    star
}

/// xpra's `?echo-headers`: `connect.html` learns the browser's languages (for the keyboard
/// layout) from `Echo-Accept-Language`; only letters, digits and `-,./:;= ` pass.
fn echo_accept_language(req: &Request) -> Option<String> {
    req.query("echo-headers")?;
    let lang = req.header("accept-language")?;
    let clean: String = lang
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-,./:;= ".contains(*c))
        .take(256)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// `t` rounded down to whole seconds, as HTTP dates carry.
fn whole_secs(t: SystemTime) -> SystemTime {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

#[cfg(test)]
#[path = "static_files_tests.rs"]
mod tests;
