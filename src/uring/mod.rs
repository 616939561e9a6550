//! The shard's own io_uring ring: the only place that uses the `io-uring` crate.
//!
//! glommio owns the executor's rings but exposes neither splice nor a way to wait until an
//! arbitrary descriptor is ready. Each shard therefore keeps one extra ring ([`ShardRing`])
//! for the operations glommio lacks: `IORING_OP_POLL_ADD` (readiness of a socket without
//! consuming bytes) and `IORING_OP_SPLICE` (socket <-> pipe without a user-space copy).
//!
//! The ring is driven without a thread and without spinning: an eventfd is registered with
//! it, so every asynchronous completion bumps the eventfd, and a small task on the shard
//! ([`ShardRing::start_driver`], through [`crate::engine::runtime::EventFdWaiter`]) waits for the
//! eventfd through glommio's own reactor and then drains the completion queue. Operations
//! that complete during submission (a poll on a socket that is already readable) are reaped
//! at once, without waiting for the eventfd round trip.

mod ops;
mod ring;

pub use ops::{PollEvents, RingOp};
pub use ring::ShardRing;
