//! Front doors: what an accepted connection is, and where it goes.
//!
//! - [`FrontDoor::Forward`]: L4, every connection relayed to one backend.
//! - [`FrontDoor::Xpra`]: xpra clients authenticated with xpra's challenge-response and
//!   joined to their own session ([`xpra`]).
//!
//! The sniffing door (xpra, TLS, HTTP/WebSocket on one port) plugs in here.

pub mod http;
pub mod xpra;

use std::net::SocketAddr;
use std::sync::Arc;

/// The door a shard's listeners lead to.
#[derive(Debug, Clone)]
pub enum FrontDoor {
    /// Relay every connection to this backend.
    Forward(SocketAddr),
    /// Authenticate xpra clients and relay each to its session.
    Xpra(Arc<xpra::XpraDoor>),
}
