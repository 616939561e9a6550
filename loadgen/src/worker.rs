//! The load generator's executors: `--workers` unpinned glommio executors, each running a
//! share of the client sessions and accepting backend connections on the shared listener.
//! Each returns its own [`Metrics`], merged by the caller.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::cli::Protocol;
use crate::metrics::{Metrics, Sent};
use crate::net::now_ns;
use crate::profile::Profile;
use crate::wire::Pattern;

/// Registered-buffer memory per executor: loadgen does no direct file I/O.
const IO_MEMORY: usize = 256 * 1024;
/// glommio ring depth: every idle connection keeps a poll armed.
const RING_DEPTH: usize = 2048;

/// Everything the workers share, fixed before they start.
pub struct Plan {
    pub profile: Profile,
    pub protocol: Protocol,
    pub pattern: Pattern,
    pub sent: Sent,
    pub sessions: u32,
    /// Each session's secret (index = session): xpra, the user's password; ws, the token
    /// that leads to its backend. Empty when there is none to give.
    pub credentials: Vec<Vec<u8>>,
    /// handshake profile: handshakes started in all stop at this count.
    pub max_handshakes: u64,
    /// Sessions opened per second.
    pub ramp: f64,
    /// Where clients connect (the relay, or the backends with `--direct`).
    pub connect_to: SocketAddr,
    pub connect_timeout: Duration,
    /// Session 0 connects at this time; session `i` at `start + i / ramp`.
    pub start_ns: u64,
    /// No message is due at or after this time.
    pub end_ns: u64,
    /// Directions still open at this time are abandoned and counted as errors.
    pub hard_deadline_ns: u64,
}

impl Plan {
    /// Session `id`'s password (xpra) or token (ws).
    pub fn credential(&self, id: u32) -> Option<&[u8]> {
        self.credentials.get(id as usize).map(Vec::as_slice)
    }
}

/// One worker's view: the shared plan and its own metrics.
pub struct Ctx {
    pub plan: Arc<Plan>,
    pub metrics: RefCell<Metrics>,
}

/// Runs every session on `workers` executors; `listener` is the bound, listening backend
/// socket (each worker accepts on a duplicate). Returns the merged metrics.
pub fn run_workers(plan: Arc<Plan>, workers: usize, listener: RawFd) -> anyhow::Result<Metrics> {
    let next = Arc::new(AtomicUsize::new(0));
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(workers))
        .name("loadgen")
        .io_memory(IO_MEMORY)
        .ring_depth(RING_DEPTH)
        .on_all_shards(move || async move {
            // glommio 0.9 can sleep with a runnable task: see the tick's documentation.
            deskrelay::engine::runtime::spawn(deskrelay::engine::runtime::wakeup_tick(|| {
                Some(true)
            }));
            let w = next.fetch_add(1, Ordering::Relaxed);
            worker(plan, w, workers, listener).await
        })
        .map_err(|e| anyhow!("cannot start the load-generator executors: {e}"))?;
    let mut total = Metrics::default();
    for r in handles.join_all() {
        let m = r.map_err(|e| anyhow!("a load-generator executor failed: {e}"))??;
        total.merge(&m);
    }
    Ok(total)
}

async fn worker(
    plan: Arc<Plan>,
    index: usize,
    workers: usize,
    listener: RawFd,
) -> anyhow::Result<Metrics> {
    let ctx = Rc::new(Ctx {
        plan: Arc::clone(&plan),
        metrics: RefCell::new(Metrics::default()),
    });
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that we own, or -1.
    let dup = unsafe { libc::fcntl(listener, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot share the backend listener");
    }
    // SAFETY: `dup` is a listening TCP socket owned by this worker alone.
    let listener = unsafe { glommio::net::TcpListener::from_raw_fd(dup) };
    glommio::spawn_local(crate::backend::accept_loop(Rc::clone(&ctx), listener)).detach();

    let tasks: Vec<_> = (index as u32..plan.sessions)
        .step_by(workers)
        .map(|id| glommio::spawn_local(crate::session::run_client(Rc::clone(&ctx), id)))
        .collect();
    for t in tasks {
        t.await;
    }
    // Backends of this worker may serve sessions of another: wait until every session ended.
    let give_up = plan.hard_deadline_ns + 1_000_000_000;
    while (Sent::get(&plan.sent.clients_done) < plan.sessions as u64
        || Sent::get(&plan.sent.backends_open) > 0)
        && now_ns() < give_up
    {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    let m = ctx.metrics.take();
    Ok(m)
}
