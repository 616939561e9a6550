//! The `--tokens FILE`: which backend a WebSocket's `?token=` leads to.
//!
//! websockify's `TokenFile` format: one `token: host:port` a line, the token ending at the
//! first `:` followed by white space; blank lines and lines starting with `#` are skipped.
//! `host` is an IPv4 address, a bracketed IPv6 address (`[::1]:5900`) or a DNS name; `port`
//! is 1-65535. Where websockify logs and skips a bad line (and lets a duplicate token
//! silently win), we refuse the file, naming the line, so a typo is seen when it is made.
//!
//! [`TokenFile`] re-reads the file when its device, inode, size or mtime change (one `stat`
//! a lookup); a rewrite that does not load keeps the last good map and is reported once.
//! Token values are map keys and are never logged, nor put in an error message.

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::control::watched_file::{Stamp, WatchedFile};

/// Largest token file read.
pub const MAX_FILE_SIZE: u64 = 4 << 20;

/// Where a token leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An IP address and port.
    Addr(SocketAddr),
    /// A name, resolved by whoever connects.
    Host { host: String, port: u16 },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl Target {
    /// `host:port`, `[v6]:port` or `ip:port`.
    pub fn parse(s: &str) -> Result<Target, &'static str> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err("port 0")
            } else {
                Ok(Target::Addr(addr))
            };
        }
        let (host, port) = s.rsplit_once(':').ok_or("expected host:port")?;
        let port: u16 = match port.parse() {
            Ok(0) | Err(_) => return Err("port must be 1-65535"),
            Ok(p) => p,
        };
        if host.parse::<IpAddr>().is_ok() || host.contains(':') || host.starts_with('[') {
            return Err("an IPv6 address needs brackets: [addr]:port");
        }
        let valid = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_';
        if host.is_empty() || host.len() > 253 || !host.bytes().all(valid) {
            return Err("invalid host name");
        }
        Ok(Target::Host {
            host: host.to_owned(),
            port,
        })
    }
}

/// Anything that maps a token to a target: a [`TokenFile`], or a plain map in tests.
pub trait TokenLookup {
    fn lookup(&self, token: &str) -> Option<Target>;
}

impl TokenLookup for HashMap<String, Target> {
    fn lookup(&self, token: &str) -> Option<Target> {
        self.get(token).cloned()
    }
}

/// Why a token file did not load.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: {size} bytes, more than the {limit} allowed")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
}

/// Parses a whole file; `Err((line, reason))` names the first bad line (1-based).
pub fn parse(text: &[u8]) -> Result<HashMap<String, Target>, (usize, &'static str)> {
    let mut map = HashMap::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = std::str::from_utf8(line).map_err(|_| (n, "not UTF-8"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sep = line
            .char_indices()
            .find(|&(i, c)| c == ':' && line[i + 1..].starts_with(char::is_whitespace))
            .map(|(i, _)| i)
            .ok_or((n, "expected `token: host:port`"))?;
        let token = line[..sep].trim_end();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err((n, "empty token or white space in token"));
        }
        let target = Target::parse(line[sep + 1..].trim()).map_err(|reason| (n, reason))?;
        if map.insert(token.to_owned(), target).is_some() {
            return Err((n, "token already given on an earlier line"));
        }
    }
    Ok(map)
}

/// Token -> target, as one version of the file reads.
type Map = HashMap<String, Target>;

/// A token file on disk, re-read when it changes; shareable between shards.
#[derive(Debug)]
pub struct TokenFile {
    file: WatchedFile<Map, TokenFileError>,
}

impl TokenFile {
    /// Loads `path`; errors name the file and the line.
    pub fn open(path: impl Into<PathBuf>) -> Result<TokenFile, TokenFileError> {
        Ok(TokenFile {
            file: WatchedFile::open(path.into(), "token file", load)?,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// How many tokens the current map holds (after a reload check).
    pub fn len(&self) -> usize {
        self.file.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TokenLookup for TokenFile {
    /// The target for `token` in the file as it is now (re-read if it changed; the last
    /// good map if it no longer loads).
    fn lookup(&self, token: &str) -> Option<Target> {
        self.file.current().get(token).cloned()
    }
}

fn load(path: &Path) -> Result<(Stamp, Map), TokenFileError> {
    let io = |source| TokenFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: a FIFO put in the file's place must not hang the lookup.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let md = file.metadata().map_err(io)?;
    if !md.is_file() {
        return Err(TokenFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if md.len() > MAX_FILE_SIZE {
        return Err(TokenFileError::TooLarge {
            path: path.to_path_buf(),
            size: md.len(),
            limit: MAX_FILE_SIZE,
        });
    }
    let mut data = Vec::with_capacity(md.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > MAX_FILE_SIZE {
        return Err(TokenFileError::TooLarge {
            path: path.to_path_buf(),
            size: data.len() as u64,
            limit: MAX_FILE_SIZE,
        });
    }
    let map = parse(&data).map_err(|(line, reason)| TokenFileError::Line {
        path: path.to_path_buf(),
        line,
        reason,
    })?;
    Ok((Stamp::of(&md), map))
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
