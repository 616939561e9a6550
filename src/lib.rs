//! deskrelay: a thread-per-core gateway for remote-desktop sessions.
//!
//! The path of a connection, and the module that owns each step:
//! - [`engine`]: one pinned glommio executor per core (a *shard*); each binds its own
//!   SO_REUSEPORT listener and accepts by itself. glommio is named only in
//!   [`engine::runtime`].
//! - [`front`]: the front door decides where an accepted connection goes (L4 today).
//! - [`relay`]: the session connects its backend on the same shard and moves bytes both ways,
//!   by pooled-buffer copy or by splice through a pooled pipe, chosen per direction.
//! - [`uring`]: the shard's own io_uring ring for what glommio lacks (splice, readiness);
//!   the only user of the `io-uring` crate.
//! - [`control`]: configuration, command line, per-shard counters, the Prometheus endpoint.

pub mod control;
pub mod engine;
pub mod front;
pub mod relay;
pub mod uring;
pub mod xpra;

pub use control::config::ProxyConfig;
pub use engine::{run_proxy, Relay};
