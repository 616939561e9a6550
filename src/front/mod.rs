//! Front doors: what an accepted connection is, and where it goes.
//!
//! Today the only door is L4 forwarding: every connection goes to one backend. The sniffing
//! door (xpra, TLS, HTTP/WebSocket on one port) and xpra's authenticated routing plug in
//! here: they read what they must from the client and return the backend to relay to.

use std::net::SocketAddr;

use crate::engine::runtime::Conn;

/// The door a shard's listeners lead to.
#[derive(Debug, Clone)]
pub enum FrontDoor {
    /// Relay every connection to this backend.
    Forward(SocketAddr),
}

/// Where an admitted connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub backend: SocketAddr,
}

/// Why a connection was turned away at the door.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {}

impl FrontDoor {
    /// Decides where `client` goes.
    pub async fn admit(&self, _client: &Conn) -> Result<Admission, Refusal> {
        match self {
            FrontDoor::Forward(backend) => Ok(Admission { backend: *backend }),
        }
    }
}
