//! One shard: its ring, pools and counters, its accept loops, and its drain at shutdown.
//!
//! A session lives its whole life on the shard that accepted it: the backend socket is
//! opened there, its buffers and pipes come from that shard's pools, its counters are that
//! shard's. Nothing on this path takes a lock or talks to another shard.

use std::cell::Cell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use tracing::Instrument;

use super::accept::accept_loop;
use super::limits::{Limits, Over};
use super::listener::stop_listening;
use super::runtime::{self, listener_from_fd, Conn};
use super::shutdown::ShutdownPipe;
use crate::control::config::ProxyConfig;
use crate::control::metrics;
use crate::control::registry::{Door, Live, Registry};
use crate::control::stats::{ShardStats, Stats};
use crate::front::dispatch::{self, Served};
use crate::front::{over_limit, proxy_protocol};
use crate::front::{web, xpra, FrontDoor};
use crate::relay::buffer_pool::BufferPool;
use crate::relay::direction::DataPath;
use crate::relay::pipe_pool::PipePool;
use crate::relay::session::{relay_after, SessionEnd};
use crate::uring::{PollEvents, ShardRing};

/// Entries of the shard ring's submission queue.
const RING_ENTRIES: u32 = 1024;
/// io-wq workers one shard's ring may start (only `--splice-via ring` uses them).
const IOWQ_WORKERS: u32 = 4;
/// Free copy buffers a shard keeps.
const IDLE_BUFFERS: usize = 16;
/// Empty pipes a shard keeps for reuse.
const IDLE_PIPES: usize = 32;
/// Connections past a session limit a shard answers at once; past this, under a flood,
/// refused connections are closed at once (as on a plain L4 listener).
const MAX_ANSWERED_REFUSALS: usize = 64;
/// Time a refused connection gets to show what it speaks and to take its answer.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(1);

/// What all shards share, read-only after start.
pub struct Shared {
    pub config: ProxyConfig,
    pub stats: Arc<Stats>,
    pub shutdown: Arc<ShutdownPipe>,
    pub front: FrontDoor,
    /// `--max-sessions`, `--max-sessions-per-client`, the failed-login throttle and the
    /// idle timeout (reloaded on SIGHUP).
    pub limits: Arc<Limits>,
    /// Every shard's live sessions (`deskrelay list`).
    pub registry: Arc<Registry>,
}

/// A shard's own state.
struct Shard {
    id: usize,
    shared: Arc<Shared>,
    dp: DataPath,
    active: Cell<usize>,
    /// Refused connections being answered now ([`MAX_ANSWERED_REFUSALS`] at most).
    answering: Cell<usize>,
}

impl Shard {
    fn stats(&self) -> &ShardStats {
        self.shared.stats.shard(self.id)
    }
}

/// Runs shard `id` until shutdown and drain are over. `ready` is called once the shard
/// accepts, or with the reason it cannot start.
pub async fn run(
    id: usize,
    listeners: Vec<OwnedFd>,
    shared: Arc<Shared>,
    ready: impl FnOnce(Result<(), String>),
) {
    let cfg = &shared.config;
    let ring = match ShardRing::new(RING_ENTRIES, IOWQ_WORKERS) {
        Ok(ring) => ring,
        Err(err) => {
            return ready(Err(format!(
                "shard {id}: cannot create its io_uring ring: {err}"
            )))
        }
    };
    if let Err(err) = ring.start_driver() {
        return ready(Err(format!("shard {id}: cannot watch its ring: {err}")));
    }

    let shard = Rc::new(Shard {
        id,
        dp: DataPath {
            ring: Rc::clone(&ring),
            buffers: BufferPool::new(cfg.copy_buffer, IDLE_BUFFERS),
            pipes: PipePool::new(cfg.pipe_size, cfg.pipes_per_shard, IDLE_PIPES),
            mode: cfg.data_path,
            tuning: cfg.auto,
            via: cfg.splice_via,
            idle: Arc::clone(&shared.limits.idle),
        },
        shared: Arc::clone(&shared),
        active: Cell::new(0),
        answering: Cell::new(0),
    });
    // glommio 0.9 can sleep with a runnable task: the tick bounds that (see its docs).
    let weak = Rc::downgrade(&shard);
    runtime::spawn(runtime::wakeup_tick(move || {
        weak.upgrade()
            .map(|s| s.active.get() > 0 || s.answering.get() > 0)
    }));
    let listeners: Vec<_> = listeners.into_iter().map(listener_from_fd).collect();
    ready(Ok(()));

    let accepting = join_all(listeners.iter().map(|l| {
        let shard = Rc::clone(&shard);
        let shard_for_errors = Rc::clone(&shard);
        accept_loop(
            l,
            &ring,
            id,
            move |conn| runtime::spawn(serve(Rc::clone(&shard), conn)),
            move || ShardStats::add(&shard_for_errors.stats().accept_errors, 1),
        )
    }));
    let stop = async {
        if let Err(err) = ring.ready(shared.shutdown.fd(), PollEvents::Readable).await {
            tracing::error!(shard = id, "cannot wait for shutdown: {err}; stopping");
        }
    };
    future::or(accepting, stop).await;
    for listener in &listeners {
        stop_listening(listener.fd());
    }
    drop(listeners);
    drain(&shard, cfg.drain_timeout).await;
    // Sessions still open are cut with the shard: their tasks never finish, so the
    // registry writes their end lines.
    shared.registry.cut(id, "cut at the drain timeout");
}

/// Waits for the shard's sessions to end, up to `timeout`.
async fn drain(shard: &Shard, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    // Shutdown only: a 10 ms check is cheaper to reason about than a wake-up per session end.
    while shard.active.get() > 0 && Instant::now() < deadline {
        runtime::sleep(Duration::from_millis(10)).await;
    }
    let left = shard.active.get();
    if left > 0 {
        tracing::warn!(
            shard = shard.id,
            "drain timeout: closing {left} open session(s)"
        );
    }
}

/// One accepted connection, from admission to close.
async fn serve(shard: Rc<Shard>, client: Conn) {
    let stats = shard.stats();
    ShardStats::add(&stats.accepted, 1);
    let cfg = &shard.shared.config;
    let socket_peer = client.peer_addr().ok();
    // A trusted balancer's PROXY header names the real client (--accept-proxy-from).
    let (client_addr, early) = match socket_peer {
        Some(p) if cfg.accept_proxy_from.contains(p.ip()) => {
            match read_proxy_header(&client, cfg.sniff_timeout).await {
                Ok((source, rest)) => (source.or(socket_peer), rest),
                Err(why) => {
                    ShardStats::add(&stats.session_errors, 1);
                    tracing::warn!(balancer = %p, "bad PROXY header: {why}; closed");
                    client.abort();
                    return;
                }
            }
        }
        _ => (socket_peer, Vec::new()),
    };
    let ip = client_addr.map(|a| a.ip());
    let _slot = match shard.shared.limits.admit(ip) {
        Ok(slot) => slot,
        Err(over) => {
            ShardStats::add(&stats.limit_refusals, 1);
            turn_away(&shard, client, early, over).await;
            return;
        }
    };
    ShardStats::add(&stats.active, 1);
    shard.active.set(shard.active.get() + 1);
    let admitted = Instant::now();
    let first_door = match &shard.shared.front {
        FrontDoor::Forward(_) => Door::L4,
        FrontDoor::Sniff(_) => Door::Sniffing,
    };
    // Unlisted (and its end line written) when dropped, however this function ends.
    let registration = shard
        .shared
        .registry
        .register(shard.id, client_addr, first_door);
    let live = registration.live(stats);
    let peer = client_addr.map_or_else(|| "?".into(), |a| a.to_string());
    let span = tracing::info_span!("session", shard = shard.id, client = %peer);
    async {
        match &shard.shared.front {
            FrontDoor::Forward(backend) => {
                let mut head = match (cfg.send_proxy, client_addr) {
                    (true, Some(c)) => proxy_protocol::encode_v2(c, *backend),
                    (true, None) => proxy_protocol::encode_v2_local(),
                    (false, _) => Vec::new(),
                };
                head.extend_from_slice(&early);
                let end = relay_after(
                    client,
                    &head,
                    *backend,
                    cfg.connect_timeout,
                    &shard.dp,
                    live,
                )
                .await;
                log_end(end, live);
            }
            FrontDoor::Sniff(doors) => {
                let ctx = dispatch::Ctx {
                    dp: &shard.dp,
                    live,
                    connect_timeout: cfg.connect_timeout,
                    client_addr,
                    send_proxy: cfg.send_proxy,
                    throttle: &shard.shared.limits.auth,
                };
                match dispatch::serve(doors, client, early, ctx).await {
                    Served::Xpra(end) => log_xpra_end(end, live),
                    Served::Fallback(end) => log_end(end, live),
                    Served::Bridged(end) => live.set_reason(match end.error {
                        Some(e) => format!("error: {e}"),
                        None => "closed".into(),
                    }),
                    Served::Closed { why } => tracing::debug!("closed at the door: {why}"),
                    Served::Web(web::WebEnd::Xpra(end)) => log_xpra_end(end, live),
                    Served::Web(web::WebEnd::Bridged { end, .. }) => {
                        live.set_reason(match end.error {
                            Some(e) => format!("error: {e}"),
                            None => "closed".into(),
                        })
                    }
                    Served::Web(end) => tracing::debug!("http: {end:?}"),
                }
            }
        }
    }
    .instrument(span)
    .await;
    drop(registration);
    shard.active.set(shard.active.get() - 1);
    stats
        .active
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    ShardStats::add(&stats.closed, 1);
    metrics::session_ended(admitted.elapsed());
}

/// Closes a connection past a session limit: told why in its own protocol when the
/// listener has a door that speaks one and the shard is not answering too many already,
/// else at once. It is never a session: no registry entry, no backend.
async fn turn_away(shard: &Shard, client: Conn, early: Vec<u8>, over: Over) {
    let doors = match &shard.shared.front {
        FrontDoor::Sniff(doors)
            if over_limit::can_answer(doors) && shard.answering.get() < MAX_ANSWERED_REFUSALS =>
        {
            doors
        }
        _ => return client.abort(),
    };
    let _answering = Answering::start(&shard.answering);
    let answer = over_limit::answer(
        doors,
        &client,
        early,
        over,
        REFUSAL_DEADLINE,
        &shard.dp.ring,
    )
    .await;
    tracing::debug!(shard = shard.id, "over a limit ({over}): {answer:?}");
}

/// One refusal being answered, counted in its shard's `answering` until dropped (however
/// the answer ends, a task cut at shutdown included).
struct Answering<'a>(&'a Cell<usize>);

impl<'a> Answering<'a> {
    fn start(count: &'a Cell<usize>) -> Self {
        count.set(count.get() + 1);
        Self(count)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Reads a PROXY v1/v2 header from a trusted balancer within `deadline`: the client's
/// address it names (None for LOCAL/UNKNOWN) and the bytes read past it.
async fn read_proxy_header(
    conn: &Conn,
    deadline: Duration,
) -> Result<(Option<std::net::SocketAddr>, Vec<u8>), String> {
    let mut got = Vec::new();
    let reading = async {
        loop {
            match proxy_protocol::parse(&got) {
                Ok(Some((header, used))) => return Ok((header.source, got[used..].to_vec())),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            let mut buf = [0u8; 512];
            let n = future::poll_fn(|cx| conn.poll_read(cx, &mut buf))
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before the header ended".into());
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    runtime::within(deadline, reading)
        .await
        .unwrap_or_else(|| Err("no header before the deadline".into()))
}

/// Records how an L4 (or fallback) session ended; errors that are not the session's own
/// end are logged here, the end line itself comes from the registration.
fn log_end(end: SessionEnd, live: Live<'_>) {
    match end {
        SessionEnd::Closed { .. } => live.set_reason("closed"),
        SessionEnd::BackendUnreachable { backend, error } => {
            tracing::warn!(%backend, "backend unreachable: {error}; client closed")
        }
        SessionEnd::Failed { culprit, error } => {
            ShardStats::add(&live.stats.session_errors, 1);
            live.set_reason(format!("{culprit} error: {error}"));
        }
        SessionEnd::Idle { after } => {
            live.set_reason(format!("idle timeout ({} s)", after.as_secs_f64()))
        }
    }
}

fn log_xpra_end(end: xpra::XpraEnd, live: Live<'_>) {
    match end {
        xpra::XpraEnd::Refused { reason } => {
            ShardStats::add(&live.stats.session_errors, 1);
            tracing::info!("refused: {reason}")
        }
        // Counted, and logged at a bounded rate, by the throttle.
        xpra::XpraEnd::Throttled { reason } => tracing::debug!("refused: {reason}"),
        // Counted, and logged at a bounded rate, by the handshake.
        xpra::XpraEnd::LoginTimeout { reason } => {
            ShardStats::add(&live.stats.session_errors, 1);
            tracing::debug!("refused: {reason}")
        }
        // Bytes were counted as they went; the end line has them.
        xpra::XpraEnd::Closed { why, .. } => live.set_reason(why),
    }
}

/// Runs every future to completion, concurrently, on the current task.
async fn join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    future::poll_fn(|cx| {
        futs.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if futs.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
