//! Authentication and session choice at the xpra front door, compatible with xpra 3.1.3's
//! `proxy` server and its `multifile` auth module.
//!
//! Any [`AuthError`] or [`RouteError`] ends the connection with `["disconnect", reason]`, the reason being the
//! error's Display. Secrets stay in [`Secret`]; no error or log line carries a password,
//! salt or response.
//!
//! - [`digest`]: xpra's `gendigest` (HMAC-SHA1/256/384/512 as hex, xor) and the choice.
//! - [`challenge`]: the exchange, server end and client end.
//! - [`ledger`]: client salts already used.
//! - [`session`]: display strings and the choice of session.
//! - [`secret`]: password bytes that never reach a log.

pub mod challenge;
pub mod digest;
pub mod error;
pub mod ledger;
pub mod secret;
pub mod session;
mod sys;

pub use challenge::{answer, Answer, Challenge};
pub use digest::{Digest, Transport};
pub use error::{AuthError, AuthFileError, LineError, Origin, ParseError, RouteError, TargetError};
pub use ledger::SaltLedger;
pub use secret::Secret;
pub use session::{choose, requested_display, SessionTarget};

#[cfg(test)]
mod tests;
