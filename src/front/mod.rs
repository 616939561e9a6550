//! Front doors: what an accepted connection is, and where it goes.
//!
//! - [`FrontDoor::Forward`]: L4, every connection relayed to one backend.
//! - [`FrontDoor::Sniff`]: the first bytes decide ([`sniff`], [`dispatch`]): xpra clients
//!   are authenticated with xpra's challenge-response and joined to their own session
//!   ([`xpra`]); what no door here speaks goes to `--fallback`.
//! - [`over_limit`]: a connection past a session limit is told so in its own protocol.

pub mod dispatch;
pub mod http;
pub mod over_limit;
pub mod proxy_protocol;
pub mod sniff;
pub mod tls;
pub mod web;
pub mod ws;
pub mod xpra;

use std::net::SocketAddr;
use std::sync::Arc;

/// The door a shard's listeners lead to.
#[derive(Debug, Clone)]
pub enum FrontDoor {
    /// Relay every connection to this backend.
    Forward(SocketAddr),
    /// Sniff each connection and hand it to the door it belongs to.
    Sniff(Arc<dispatch::Doors>),
}
