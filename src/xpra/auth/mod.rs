//! Authentication and session choice at the xpra front door, compatible with xpra 3.1.3's
//! `proxy` server and its `multifile` auth module.
//!
//! - [`digest`]: xpra's `gendigest` (HMAC-SHA1/256/384/512 as hex, xor) and the choice.
//! - [`secret`]: password bytes that never reach a log.

pub mod digest;
pub mod secret;

pub use digest::{Digest, Transport};
pub use secret::Secret;
