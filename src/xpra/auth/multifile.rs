//! xpra's `multifile` password file: who may log in, with which password, to which sessions.
//!
//! One entry a line: `username|password|uid|gid|displays|env_vars|session_options`.
//! Lines are split like Python's `bytes.splitlines()` and stripped of ASCII white space;
//! blank lines and lines starting with `#` are skipped. As in xpra 3.1.3
//! (`multifile_auth.py`): at least `username|password`; uid, gid and displays are read only
//! when there are 5 fields or more (fewer: uid/gid default to nobody, no displays); an empty
//! or missing uid or gid is nobody's, a name is looked up, a number is taken as is;
//! `displays` is a comma list (see [`SessionTarget`]); `env_vars` and `session_options` are
//! `;`-separated `key=value` pairs. Fields are not trimmed (a password may end in a space).
//!
//! Where xpra logs and skips a bad line, we refuse the whole file, naming the line, so a
//! typo is seen at start-up instead of as a user locked out; a reload that fails keeps the
//! entries loaded before. Also refused, all as line errors: 3 or 4 fields (xpra silently
//! ignores their uid/gid), more than 7 fields (a `|` in a password), an empty username or
//! password, an unknown uid/gid name (xpra falls back to its own uid), duplicate users
//! (xpra keeps the first), a `key=value` item without `=`, and uid or gid 0: xpra 3.1.3's
//! proxy refuses root only after authenticating, and only when it runs as root; refusing it
//! up front is simpler to reason about, and deskrelay never needs root for a session.
//!
//! Two places where 3.1.3 under Python 3 does not do what its format says, and we do:
//! `env_vars` and `session_options` are always empty there (`parse_simple_dict` splits
//! bytes on a str `=` and drops every pair on the TypeError); and a missing gid looks up a
//! group "nobody", which Debian lacks, falling back to the proxy's own gid. We parse the
//! pairs, and take "nobody", else "nogroup", else 65534.
//!
//! [`AuthFile`] refuses a file that group or others may read or write, re-reads it when its
//! inode, size, mtime or ctime change (one `stat` per lookup; ctime catches a `chmod`), and
//! never logs its contents.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::control::watched_file::{Stamp, WatchedFile};

use super::error::{AuthFileError, LineError, ParseError};
use super::secret::Secret;
use super::session::SessionTarget;
use super::sys;

/// Largest password file we read.
pub const MAX_FILE_SIZE: u64 = 4 << 20;
/// The uid and gid used when none is given and "nobody" cannot be looked up.
const NOBODY: u32 = 65534;

/// One user's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub username: String,
    pub password: Secret,
    pub uid: u32,
    pub gid: u32,
    pub displays: Vec<SessionTarget>,
    pub env: Vec<(String, String)>,
    pub session_options: Vec<(String, String)>,
    /// Where the entry is in the file (1-based), for messages.
    pub line: usize,
}

/// Entries by username.
pub type Users = HashMap<String, Arc<UserEntry>>;

/// Parses a whole multifile.
pub fn parse(data: &[u8]) -> Result<Users, ParseError> {
    let mut users = Users::new();
    for (index, raw) in split_lines(data).enumerate() {
        let line = index + 1;
        let text = strip(raw);
        if text.is_empty() || text.starts_with(b"#") {
            continue;
        }
        let entry = parse_line(text, line).map_err(|error| ParseError { line, error })?;
        if let Some(first) = users.get(&entry.username) {
            let error = LineError::Duplicate(first.line);
            return Err(ParseError { line, error });
        }
        users.insert(entry.username.clone(), Arc::new(entry));
    }
    Ok(users)
}

fn parse_line(text: &[u8], line: usize) -> Result<UserEntry, LineError> {
    let fields: Vec<&[u8]> = text.split(|&b| b == b'|').collect();
    match fields.len() {
        0 | 1 => return Err(LineError::NotEnoughFields(fields.len())),
        n @ (3 | 4) => return Err(LineError::PartialFields(n)),
        n if n > 7 => return Err(LineError::TooManyFields(n)),
        _ => {}
    }
    let username = utf8(fields[0], "username")?;
    if username.is_empty() {
        return Err(LineError::EmptyUsername);
    }
    if fields[1].is_empty() {
        return Err(LineError::EmptyPassword);
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    let uid = parse_id(field(2), "uid", sys::uid_by_name, || {
        sys::uid_by_name("nobody")
    })?;
    let gid = parse_id(field(3), "gid", sys::gid_by_name, || {
        sys::gid_by_name("nobody").or_else(|| sys::gid_by_name("nogroup"))
    })?;
    let displays = utf8(field(4), "displays")?
        .split(',')
        .map(|d| d.trim_matches(|c: char| c.is_ascii_whitespace()))
        .filter(|d| !d.is_empty())
        .enumerate()
        .map(|(i, d)| {
            d.parse().map_err(|source| LineError::Display {
                index: i + 1,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserEntry {
        username: username.to_string(),
        password: Secret::new(fields[1]),
        uid,
        gid,
        displays,
        env: pairs(field(5), "env_vars")?,
        session_options: pairs(field(6), "session_options")?,
        line,
    })
}

/// A uid or gid field: empty means nobody, digits a number, anything else a name.
fn parse_id(
    raw: &[u8],
    kind: &'static str,
    by_name: fn(&str) -> Option<u32>,
    nobody: impl FnOnce() -> Option<u32>,
) -> Result<u32, LineError> {
    let text = utf8(strip(raw), kind)?;
    let id = if text.is_empty() {
        nobody().unwrap_or(NOBODY)
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().map_err(|_| LineError::UnknownId(kind))?
    } else {
        by_name(text).ok_or(LineError::UnknownId(kind))?
    };
    if id == 0 {
        return Err(LineError::Root(kind));
    }
    Ok(id)
}

/// `k=v;k=v` (xpra's `parse_simple_dict` with `;`), empty items skipped.
fn pairs(raw: &[u8], field: &'static str) -> Result<Vec<(String, String)>, LineError> {
    utf8(raw, field)?
        .split(';')
        .filter(|item| !item.is_empty())
        .enumerate()
        .map(|(i, item)| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(LineError::Pair {
                field,
                index: i + 1,
            }),
        })
        .collect()
}

fn utf8<'a>(raw: &'a [u8], field: &'static str) -> Result<&'a str, LineError> {
    std::str::from_utf8(raw).map_err(|_| LineError::NotUtf8(field))
}

/// Python's `bytes.splitlines()`: lines end at `\n`, `\r` or `\r\n`; no empty last line.
fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ if end < rest.len() => 1,
            _ => 0,
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

/// Python's `bytes.strip()`: ASCII white space at both ends.
fn strip(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| b" \t\n\r\x0b\x0c".contains(b);
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// A multifile on disk, re-read when it changes; shareable between shards.
#[derive(Debug)]
pub struct AuthFile {
    file: WatchedFile<Users, AuthFileError>,
}

impl AuthFile {
    /// Loads `path`, refusing a file group or others may read or write.
    pub fn open(path: impl Into<PathBuf>) -> Result<AuthFile, AuthFileError> {
        Ok(AuthFile {
            file: WatchedFile::open(path.into(), "password file", load)?,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The entry for `username`, from the file as it is now (re-read if it changed; the
    /// last good entries if it no longer loads).
    pub fn lookup(&self, username: &str) -> Option<Arc<UserEntry>> {
        self.users().get(username).cloned()
    }

    /// All entries, from the file as it is now (see [`Self::lookup`]).
    pub fn users(&self) -> Arc<Users> {
        self.file.current()
    }
}

fn load(path: &Path) -> Result<(Stamp, Users), AuthFileError> {
    let io = |source| AuthFileError::Io {
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
        return Err(AuthFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o066 != 0 {
        return Err(AuthFileError::Mode {
            path: path.to_path_buf(),
            mode,
        });
    }
    let too_large = |size| AuthFileError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_SIZE,
    };
    if md.len() > MAX_FILE_SIZE {
        return Err(too_large(md.len()));
    }
    let mut data = Vec::with_capacity(md.len() as usize);
    read_limited(file, &mut data).map_err(io)?;
    if data.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(data.len() as u64));
    }
    let users = parse(&data).map_err(|e| AuthFileError::Parse {
        path: path.to_path_buf(),
        line: e.line,
        error: e.error,
    })?;
    Ok((Stamp::of(&md), users))
}

fn read_limited(file: File, data: &mut Vec<u8>) -> std::io::Result<usize> {
    file.take(MAX_FILE_SIZE + 1).read_to_end(data)
}

#[cfg(test)]
mod tests;
