//! One direction of a session (source socket -> destination socket) on whichever path the
//! policy picks, switching between copy and splice as the traffic changes.

use std::io;
use std::rc::Rc;
use std::sync::Arc;

use super::buffer_pool::BufferPool;
use super::copy::copy_once;
use super::idle::{Activity, IdleTimeout};
use super::pipe_pool::{PipeLease, PipePool};
use super::policy::{AutoTuning, DataPathMode, Decision, Path, Policy};
use super::splice::{splice_once, SpliceStep, SpliceVia};
use crate::control::registry::ByteTally;
use crate::control::stats::ShardStats;
use crate::engine::runtime::{within, Conn};
use crate::uring::{PollEvents, ShardRing};

/// Which socket of a direction an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// A direction that ended on an error.
#[derive(Debug)]
pub struct DirectionError {
    pub side: Side,
    pub error: io::Error,
}

/// A shard's data-path resources, shared by all its sessions.
pub struct DataPath {
    pub ring: Rc<ShardRing>,
    pub buffers: BufferPool,
    pub pipes: Rc<PipePool>,
    pub mode: DataPathMode,
    pub tuning: AutoTuning,
    pub via: SpliceVia,
    /// `--idle-timeout`, shared by every shard (reloadable).
    pub idle: Arc<IdleTimeout>,
}

/// Relays `src` to `dst` until `src` reaches EOF, then half-closes `dst`. Returns the bytes
/// moved; every chunk is also added to `bytes` (the shard's and the session's counters)
/// and touches `activity` as it goes.
pub async fn pump(
    src: &Conn,
    dst: &Conn,
    dp: &DataPath,
    stats: &ShardStats,
    bytes: ByteTally<'_>,
    activity: &Activity,
) -> Result<u64, DirectionError> {
    let mut policy = Policy::new(dp.mode, dp.tuning);
    let mut pipe = match policy.initial() {
        Path::Splice => lease(dp, stats, &mut policy),
        Path::Copy => None,
    };
    let mut total = 0u64;
    loop {
        let moved = match pipe.as_mut() {
            None => {
                let n = copy_once(src, dst, &dp.buffers, &dp.ring)
                    .await
                    .map_err(fail)?;
                if n > 0 && policy.after_copy_read(n) == Decision::UseSplice {
                    pipe = lease(dp, stats, &mut policy);
                }
                n
            }
            Some(lease_) => match splice_once(src, dst, lease_, &dp.ring, dp.via)
                .await
                .map_err(fail)?
            {
                SpliceStep::Moved(n) => {
                    if policy.after_splice(n) == Decision::UseCopy {
                        pipe = None;
                        policy.reset();
                    }
                    n
                }
                SpliceStep::Eof => 0,
                SpliceStep::SourceEmpty => {
                    if !wait_readable(src, dp, &mut policy).await.map_err(fail)? {
                        pipe = None;
                        policy.reset();
                    }
                    continue;
                }
            },
        };
        if moved == 0 {
            break;
        }
        total += moved as u64;
        bytes.add(moved as u64);
        activity.touch();
    }
    dst.shutdown_write().map_err(|error| DirectionError {
        side: Side::Destination,
        error,
    })?;
    Ok(total)
}

/// Waits for the spliced source to have bytes. Returns false when the policy wants the pipe
/// back because the source stayed silent too long.
async fn wait_readable(
    src: &Conn,
    dp: &DataPath,
    policy: &mut Policy,
) -> Result<bool, (Side, io::Error)> {
    let ready = dp.ring.ready(src.fd(), PollEvents::Readable);
    let outcome = match policy.idle_release() {
        None => Some(ready.await),
        Some(idle) => within(idle, ready).await,
    };
    match outcome {
        Some(result) => result.map(|()| true).map_err(|err| (Side::Source, err)),
        None => Ok(policy.after_splice_idle() != Decision::UseCopy),
    }
}

fn lease(dp: &DataPath, stats: &ShardStats, policy: &mut Policy) -> Option<PipeLease> {
    policy.reset();
    match dp.pipes.lease() {
        Ok(lease) => {
            ShardStats::add(&stats.splice_switches, 1);
            Some(lease)
        }
        Err(shortage) => {
            ShardStats::add(&stats.pipe_shortages, 1);
            tracing::debug!(%shortage, "staying on the copy path");
            None
        }
    }
}

fn fail((side, error): (Side, io::Error)) -> DirectionError {
    DirectionError { side, error }
}
