//! Data path: moves a session's bytes between its client and backend sockets.
//!
//! Two strategies sit behind one direction driver ([`direction::pump`]):
//! - **copy** ([`copy`]): read into a pooled buffer leased only while it holds bytes, write
//!   it out, give it back. Cheapest for small interactive writes.
//! - **splice** ([`splice`]): socket -> pipe -> socket in the kernel, with a pipe leased from
//!   the shard's [`pipe_pool`] only while a direction is bulk.
//!
//! [`policy`] decides per direction which one runs (`--data-path auto|copy|splice`).
//! [`session`] ties a client to its backend and runs both directions.
//!
//! Clients that are not a plain socket (TLS, WebSocket, a sniffed connection) are a
//! [`stream::ByteStream`]; [`bridge`] relays one to its backend by pooled-buffer copy (the
//! bytes pass through user space anyway: decryption, unmasking).
//!
//! Every path touches its session's [`idle::Activity`] as bytes move, which is what
//! `--idle-timeout` watches.

pub mod bridge;
pub mod buffer_pool;
pub mod copy;
pub mod direction;
pub mod idle;
pub mod pipe_pool;
pub mod policy;
pub mod session;
pub mod splice;
pub mod stream;

pub use policy::{AutoTuning, DataPathMode};
pub use splice::SpliceVia;
