//! The xpra door: authenticates an xpra client with xpra's challenge-response, picks its
//! session, joins it to the session's server, then relays frames both ways.
//!
//! - [`handshake`]: the client's hello, the challenge and its check, the session choice.
//! - [`backend`]: connecting the session, the backend's own challenge, its hello.
//! - [`caps`]: what each hello loses and gains on the way through.
//! - [`gate`] and [`forward`]: the data phase, frames passed verbatim from the read buffer;
//!   only `disconnect`, `info-response` and stray `hello` packets are opened.
//! - [`info`]: the proxy's entries in `xpra info` and info-response packets.

mod backend;
mod caps;
mod forward;
pub mod gate;
pub mod handshake;
mod info;
mod reader;
mod session;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::xpra::auth::ledger::DEFAULT_CAPACITY;
use crate::xpra::auth::{AuthFile, SaltLedger, SessionTarget};
use crate::xpra::header::{Compression, Encoding};
use crate::xpra::packet::{encode_frame, Limits, Packet};
use crate::xpra::Value;

pub use session::{serve, XpraEnd};

/// How clients prove who they are.
pub enum AuthMode {
    /// No check: every client goes to `session`.
    Allow { session: SessionTarget },
    /// xpra's multifile: a password and the sessions of each user.
    MultiFile(AuthFile),
}

/// The xpra door's configuration and its shared state (all shards).
pub struct XpraDoor {
    pub auth: AuthMode,
    /// Largest packet payload once authenticated.
    pub max_packet: usize,
    /// Largest packet payload before authentication.
    pub pre_auth_max_packet: usize,
    /// Time a client has to complete authentication.
    pub pre_auth_timeout: Duration,
    /// Time allowed to connect to a session's server.
    pub connect_timeout: Duration,
    /// Directories searched first for local displays' sockets (`--socket-dir`).
    pub socket_dirs: Vec<PathBuf>,
    /// Client salts already seen, shared by all shards (a salt is never accepted twice).
    pub ledger: Arc<SaltLedger>,
    pub auth_successes: AtomicU64,
    pub auth_failures: AtomicU64,
}

impl XpraDoor {
    /// A door with xpra's limits: 16 MiB packets, 64 KiB... before authentication.
    pub fn new(auth: AuthMode) -> Self {
        Self {
            auth,
            max_packet: 16 * 1024 * 1024,
            pre_auth_max_packet: 1024 * 1024,
            pre_auth_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            socket_dirs: Vec::new(),
            ledger: Arc::new(SaltLedger::new(DEFAULT_CAPACITY)),
            auth_successes: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match &self.auth {
            AuthMode::Allow { session } => format!("no authentication, every client to {session}"),
            AuthMode::MultiFile(file) => {
                format!("multifile authentication from {}", file.path().display())
            }
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_packet: self.max_packet,
        }
    }

    fn pre_auth_limits(&self) -> Limits {
        Limits {
            max_packet: self.pre_auth_max_packet,
        }
    }

    fn count_auth_success(&self) {
        self.auth_successes.fetch_add(1, Ordering::Relaxed);
    }

    fn count_auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for XpraDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XpraDoor")
            .field("max_packet", &self.max_packet)
            .field("pre_auth_timeout", &self.pre_auth_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a client was turned away; `code` is None when there is nobody left to tell.
#[derive(Debug)]
pub struct Refusal {
    pub code: Option<&'static str>,
    pub detail: String,
    pub encoding: Encoding,
    /// Who counts and logs it.
    pub kind: RefusalKind,
}

/// Which refusals are logged per connection, and which by a counter of their own at a
/// bounded rate (a flood of them must not flood the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Logged by the shard, one line each.
    Plain,
    /// By the failed-login throttle.
    Throttled,
    /// By the handshake's pre-auth deadline (`login_timeouts`).
    LoginTimeout,
}

impl Refusal {
    fn new(code: &'static str, detail: &str, encoding: Encoding) -> Self {
        Self {
            code: Some(code),
            detail: detail.to_string(),
            encoding,
            kind: RefusalKind::Plain,
        }
    }

    /// An authentication error from the failed-login throttle.
    fn throttled(detail: &str, encoding: Encoding) -> Self {
        Self {
            kind: RefusalKind::Throttled,
            ..Self::new(handshake::reason::AUTHENTICATION_ERROR, detail, encoding)
        }
    }

    /// The peer is gone: nothing to send.
    fn silent() -> Self {
        Self {
            code: None,
            detail: "connection closed".into(),
            encoding: Encoding::Rencode,
            kind: RefusalKind::Plain,
        }
    }
}

/// `["disconnect", code, detail]` as a frame, uncompressed.
pub fn disconnect_frame(code: &str, detail: &str, encoding: Encoding) -> Vec<u8> {
    encode_frame(
        &Packet {
            items: vec![
                Value::str("disconnect"),
                Value::str(code),
                Value::str(detail),
            ],
        },
        encoding,
        Compression::None,
    )
    .expect("strings encode in every encoder")
}
