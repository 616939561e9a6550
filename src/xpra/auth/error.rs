//! Why authentication, routing or loading the password file failed.
//!
//! The Display of [`AuthError`] and [`RouteError`] is the reason to put in the xpra
//! `["disconnect", reason]` packet: short, in xpra's own words where xpra has them, and free
//! of anything secret. No message here ever carries a password, a salt or a response; the
//! only client-supplied text that appears is a requested display name, cleaned first.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Who caused a failure: decides the log level and who gets told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The xpra client: a bad answer, a bad request. Log at `debug`/`warn`.
    Client,
    /// The backend xpra server we answer a challenge from.
    Backend,
    /// Our configuration (the password file and what it lists).
    Config,
}

/// A failed challenge/response, on either side of the proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The client offers no HMAC digest we implement (3.1.3 clients offer hmac+sha512).
    #[error("unsupported digest")]
    UnsupportedDigest,
    /// Only `xor` is on offer (or demanded) and the transport is neither TLS nor loopback.
    #[error("xor digest refused without encryption")]
    XorNotAllowed,
    /// The salt digest would be `xor` (pre-2.x clients); xpra 3.1.3 refuses it too.
    #[error("insecure salt digest rejected")]
    InsecureSaltDigest,
    /// The second hello has no `challenge_response`.
    #[error("no challenge response")]
    MissingResponse,
    /// `challenge_client_salt` is missing, too short or too long.
    #[error("invalid client salt")]
    BadClientSalt,
    /// This client salt was accepted before: a replay, or a broken client.
    #[error("client salt already used")]
    ReplayedSalt,
    /// `verify` was called a second time on the same challenge.
    #[error("challenge already answered")]
    AlreadyAnswered,
    /// Wrong password, unknown user, or a response of the wrong shape: all look alike.
    #[error("authentication failed")]
    Failed,
    /// A backend's `challenge` packet we cannot answer.
    #[error("invalid challenge from server: {0}")]
    InvalidChallenge(&'static str),
    /// A backend asks for a password and the session URI carries none.
    #[error("no password available")]
    NoPassword,
}

impl AuthError {
    pub fn origin(&self) -> Origin {
        match self {
            AuthError::InvalidChallenge(_) => Origin::Backend,
            AuthError::NoPassword => Origin::Config,
            _ => Origin::Client,
        }
    }
}

/// No session could be picked for an authenticated client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The user's entry lists no displays.
    #[error("no sessions found")]
    NoSessions,
    /// Several displays and the client named none. (xpra appends the list; we do not, since
    /// an entry's URIs may carry backend credentials.)
    #[error("please specify a display")]
    SpecifyDisplay,
    /// The client named a display that is not among the user's.
    #[error("display '{0}' not found")]
    NotFound(CleanText),
    /// The client named a port or number that matches more than one of the user's displays.
    #[error("display '{0}' matches more than one session")]
    Ambiguous(CleanText),
}

impl RouteError {
    pub fn origin(&self) -> Origin {
        match self {
            RouteError::NoSessions => Origin::Config,
            _ => Origin::Client,
        }
    }
}

/// xpra's connection-string schemes, the ones that may carry `user:password@`.
const URI_SCHEMES: [&str; 7] = ["tcp", "ssl", "ws", "wss", "ssh", "udp", "socket"];

/// Client-supplied text made fit for a message: credentials in a URI dropped, control
/// characters replaced, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanText(String);

impl CleanText {
    pub fn new(raw: &str) -> CleanText {
        // Keep "tcp://" or "tcp:" and what follows the last '@'; drop the user:password.
        let without_userinfo = match raw.rfind('@') {
            Some(at) => {
                let scheme = raw
                    .find(':')
                    .filter(|&i| URI_SCHEMES.contains(&&raw[..i]))
                    .map(|i| {
                        i + 1
                            + raw[i + 1..]
                                .bytes()
                                .take_while(|&b| b == b'/')
                                .count()
                                .min(2)
                    })
                    .filter(|&end| end <= at)
                    .unwrap_or(0);
                format!("{}{}", &raw[..scheme], &raw[at + 1..])
            }
            None => raw.to_string(),
        };
        let clean = without_userinfo
            .chars()
            .take(64)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        CleanText(clean)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CleanText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display string that is not `:N` or `tcp://[user[:pass]@]host[:port][/]`. The messages
/// never quote the string (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unsupported display (expected :N or tcp://host:port/)")]
    Unsupported,
    #[error("invalid display number")]
    DisplayNumber,
    #[error("missing or invalid host")]
    Host,
    #[error("invalid port")]
    Port,
    #[error("a remote display after the port is not supported")]
    RemoteDisplay,
}

/// What is wrong with one line of a multifile password file. Never quotes the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not enough fields: {0} (need at least username|password)")]
    NotEnoughFields(usize),
    #[error("too many fields: {0} (at most 7; is there a '|' in a password?)")]
    TooManyFields(usize),
    #[error("{0} fields: uid and gid count only with a displays field (5 fields or more)")]
    PartialFields(usize),
    #[error("the {0} field is not UTF-8")]
    NotUtf8(&'static str),
    #[error("empty username")]
    EmptyUsername,
    #[error("empty password")]
    EmptyPassword,
    #[error("duplicate entry for this username (first at line {0})")]
    Duplicate(usize),
    #[error("invalid {0}: not a number nor a known name")]
    UnknownId(&'static str),
    #[error("{0} 0 (root) is refused: use an unprivileged account such as nobody")]
    Root(&'static str),
    #[error("display {index}: {source}")]
    Display { index: usize, source: TargetError },
    #[error("{field} item {index}: expected key=value")]
    Pair { field: &'static str, index: usize },
}

/// A multifile line that does not parse, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct ParseError {
    pub line: usize,
    pub error: LineError,
}

/// The password file could not be used. Carries the path; parse errors carry the line.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot read password file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("refusing password file {path}: mode {mode:04o} lets group or others read or write it (chmod 600 it)")]
    Mode { path: PathBuf, mode: u32 },
    #[error("refusing password file {path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("refusing password file {path}: {size} bytes is more than the {limit} allowed")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("password file {path} line {line}: {error}")]
    Parse {
        path: PathBuf,
        line: usize,
        error: LineError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_drops_uri_credentials_and_controls() {
        let t = CleanText::new("tcp://bob:s3cret@host:1/\n");
        assert_eq!(t.as_str(), "tcp://host:1/?");
        assert_eq!(CleanText::new("tcp:bob:pw@h:1").as_str(), "tcp:h:1");
        assert_eq!(CleanText::new("bob:pw@h").as_str(), "h");
        assert_eq!(CleanText::new(&"x".repeat(100)).as_str().len(), 64);
        assert_eq!(CleanText::new(":10").as_str(), ":10");
    }

    #[test]
    fn disconnect_reasons_are_xpras_words() {
        assert_eq!(AuthError::Failed.to_string(), "authentication failed");
        assert_eq!(RouteError::NoSessions.to_string(), "no sessions found");
        assert_eq!(
            RouteError::SpecifyDisplay.to_string(),
            "please specify a display"
        );
    }
}
