//! Where an authenticated client goes: the user's displays and the one the client asked for.
//!
//! A display is `:N` (a local xpra server, reached by its unix socket) or
//! `tcp://[user[:password]@]host[:port][/]` (also xpra's `tcp:` spelling; port 14500 when
//! left out; an empty host is 127.0.0.1; IPv6 in brackets). The URI's user and password are
//! the backend's, used to answer its own challenge; they are not percent-decoded (xpra does
//! not decode them either). A remote display after the port (`tcp://h:p/10`) is refused.
//!
//! Choosing follows xpra 3.1.3's `proxy_server.py`: no displays, "no sessions found"; one
//! and nothing asked, that one; several and nothing asked, "please specify a display".
//! Only a string `display` in the hello is a request (newer GUI clients put a dict of
//! display capabilities under that key).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::{CleanText, RouteError, TargetError};
use super::secret::Secret;
use super::sys;
use crate::xpra::Value;

/// xpra's default TCP port.
pub const DEFAULT_PORT: u16 = 14500;

/// One session a user may be routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionTarget {
    /// An xpra server over TCP.
    Tcp {
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<Secret>,
    },
    /// A local xpra server on X display `:display`, reached through its unix socket.
    Local { display: u32 },
}

impl FromStr for SessionTarget {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, TargetError> {
        if let Some(n) = s.strip_prefix(':') {
            return parse_number(n)
                .map(|display| SessionTarget::Local { display })
                .ok_or(TargetError::DisplayNumber);
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("tcp:"))
            .ok_or(TargetError::Unsupported)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(TargetError::RemoteDisplay);
        }
        let (userinfo, hostport) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (user, pass),
                None => (u, ""),
            },
            None => ("", ""),
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(SessionTarget::Tcp {
            host,
            port,
            username: (!username.is_empty()).then(|| username.to_string()),
            password: (!password.is_empty()).then(|| Secret::new(password.as_bytes())),
        })
    }
}

/// `host[:port]` or `[v6][:port]`; the host is returned without brackets.
fn split_host_port(s: &str) -> Result<(String, u16), TargetError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(TargetError::Host)?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":.%".contains(&b))
        {
            return Err(TargetError::Host);
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(TargetError::Port)?),
            ),
        }
    } else {
        match s.split_once(':') {
            Some((_, p)) if p.contains(':') => return Err(TargetError::Host),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let ok_name = |b: u8| b.is_ascii_alphanumeric() || b".-_:%".contains(&b);
    if !host.bytes().all(ok_name) {
        return Err(TargetError::Host);
    }
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => parse_number(p)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|&n| n != 0)
            .ok_or(TargetError::Port)?,
    };
    Ok((host.to_string(), port))
}

/// Plain decimal digits (no sign, no spaces) that fit a u32.
/// `N` or `:N`: a display number, or a port of a TCP session.
fn display_number(s: &str) -> Option<u32> {
    parse_number(s.strip_prefix(':').unwrap_or(s))
}

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The display without credentials: `:N` or `tcp://host:port/`. Safe to log.
impl fmt::Display for SessionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionTarget::Local { display } => write!(f, ":{display}"),
            SessionTarget::Tcp { host, port, .. } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}/")
            }
            SessionTarget::Tcp { host, port, .. } => write!(f, "tcp://{host}:{port}/"),
        }
    }
}

impl SessionTarget {
    /// Where xpra 3.1.3 puts the unix socket of a local display for `uid`, in the order it
    /// searches (its Debian `socket-dirs`): `/run/user/UID/xpra`, `/run/xpra`, `~/.xpra`,
    /// each holding `HOSTNAME-N`. Empty for TCP targets.
    pub fn socket_candidates(&self, uid: u32) -> Vec<PathBuf> {
        match sys::hostname() {
            Some(host) => self.socket_candidates_in(uid, sys::home_of(uid).as_deref(), &host),
            None => Vec::new(),
        }
    }

    /// [`Self::socket_candidates`] with the home directory and host name given.
    pub fn socket_candidates_in(
        &self,
        uid: u32,
        home: Option<&Path>,
        hostname: &str,
    ) -> Vec<PathBuf> {
        let SessionTarget::Local { display } = self else {
            return Vec::new();
        };
        let name = format!("{hostname}-{display}");
        let mut dirs = vec![
            PathBuf::from(format!("/run/user/{uid}/xpra")),
            PathBuf::from("/run/xpra"),
        ];
        dirs.extend(home.map(|h| h.join(".xpra")));
        dirs.into_iter().map(|d| d.join(&name)).collect()
    }

    /// Whether the client's `requested` display names this target: the same display or
    /// host and port (credentials ignored, host case-insensitive), or a number (`N` or `:N`,
    /// what the 3.1.3 client sends for `tcp://proxy/N`) equal to the display number or the
    /// port.
    pub fn matches(&self, requested: &str) -> bool {
        if let Some(n) = display_number(requested) {
            return match self {
                SessionTarget::Local { display } => *display == n,
                SessionTarget::Tcp { port, .. } => u32::from(*port) == n,
            };
        }
        match (self, requested.parse::<SessionTarget>()) {
            (SessionTarget::Local { display: a }, Ok(SessionTarget::Local { display: b })) => {
                *a == b
            }
            (
                SessionTarget::Tcp {
                    host: h1, port: p1, ..
                },
                Ok(SessionTarget::Tcp {
                    host: h2, port: p2, ..
                }),
            ) => *p1 == p2 && h1.eq_ignore_ascii_case(&h2),
            _ => false,
        }
    }
}

/// Picks the session for a client among the user's `displays`, given the display it
/// asked for (see [`requested_display`]).
pub fn choose<'a>(
    displays: &'a [SessionTarget],
    requested: Option<&str>,
) -> Result<&'a SessionTarget, RouteError> {
    if displays.is_empty() {
        return Err(RouteError::NoSessions);
    }
    let Some(req) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
        return match displays {
            [only] => Ok(only),
            _ => Err(RouteError::SpecifyDisplay),
        };
    };
    // `:N` names local display N first; only without one may it mean a port.
    let local = req.strip_prefix(':').and_then(parse_number);
    if let Some(exact) = displays
        .iter()
        .find(|d| matches!(d, SessionTarget::Local { display } if Some(*display) == local))
    {
        return Ok(exact);
    }
    let mut found = displays.iter().filter(|d| d.matches(req));
    let first = found
        .next()
        .ok_or_else(|| RouteError::NotFound(CleanText::new(req)))?;
    // A bare number may name a display on one entry and a port on another.
    if display_number(req).is_some() && found.next().is_some() {
        return Err(RouteError::Ambiguous(CleanText::new(req)));
    }
    Ok(first)
}

/// The display a client's hello asks for: only a non-empty string counts.
pub fn requested_display(hello: &Value) -> Option<String> {
    match hello.get("display")? {
        v @ (Value::Str(_) | Value::Bytes(_)) => {
            v.as_str().filter(|s| !s.is_empty()).map(String::from)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
