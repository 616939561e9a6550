//! Authentication and session choice at the xpra front door, compatible with xpra 3.1.3's
//! `proxy` server and its `multifile` auth module.
//!
//! The flow for one client:
//! 1. first `hello` (with `challenge: True`, `username`, `digest`, `salt-digest`):
//!    [`Challenge::new`] and send [`Challenge::packet`];
//! 2. second `hello`: [`AuthFile::lookup`] the username, then [`Challenge::verify`] with
//!    the entry's password (an empty one for an unknown user, so both fail alike);
//! 3. [`choose`] among the entry's displays with [`requested_display`]; a TCP target with a
//!    password lets the proxy [`answer`] the backend's own challenge.
//!
//! Any [`AuthError`] or [`RouteError`] ends the connection with `["disconnect", reason]`,
//! the reason being the error's Display. Secrets stay in [`Secret`]; no error or log line
//! carries a password, salt or response.
//!
//! - [`digest`]: xpra's `gendigest` (HMAC-SHA1/256/384/512 as hex, xor) and the choice.
//! - [`challenge`]: the exchange, server end and client end.
//! - [`ledger`]: client salts already used.
//! - [`multifile`]: the password file, its permissions and reloads.
//! - [`session`]: display strings and the choice of session.

pub mod challenge;
pub mod digest;
pub mod error;
pub mod ledger;
pub mod multifile;
pub mod secret;
pub mod session;
pub(crate) mod sys;

pub use challenge::{answer, Answer, Challenge};
pub use digest::{Digest, Transport};
pub use error::{AuthError, AuthFileError, LineError, Origin, ParseError, RouteError, TargetError};
pub use ledger::SaltLedger;
pub use multifile::{AuthFile, UserEntry, Users};
pub use secret::Secret;
pub use session::{choose, requested_display, SessionTarget};

#[cfg(test)]
mod tests;
