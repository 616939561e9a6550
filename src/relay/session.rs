//! One session: the client connection, its backend connection, and both directions.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::future::{or, zip};

use super::direction::{pump, DataPath, DirectionError, Side};
use super::idle::Activity;
use crate::control::registry::Live;
use crate::control::stats::ShardStats;
use crate::engine::runtime::{connect, sleep, Conn};

/// Which end of a session caused its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    Client,
    Backend,
}

impl std::fmt::Display for Culprit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Culprit::Client => "client",
            Culprit::Backend => "backend",
        })
    }
}

/// How a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Both directions reached EOF.
    Closed { to_backend: u64, to_client: u64 },
    /// The backend could not be reached; the client was closed.
    BackendUnreachable {
        backend: SocketAddr,
        error: io::Error,
    },
    /// A socket failed mid-session; both sides were closed.
    Failed { culprit: Culprit, error: io::Error },
    /// Nothing moved either way for `--idle-timeout`; both sides were closed.
    Idle { after: Duration },
}

/// Connects to `backend` and relays until both directions are done.
pub async fn relay_to(
    client: Conn,
    backend: SocketAddr,
    connect_timeout: Duration,
    dp: &DataPath,
    live: Live<'_>,
) -> SessionEnd {
    relay_after(client, &[], backend, connect_timeout, dp, live).await
}

/// [`relay_to`] for a client whose first bytes (`already_read`, by the sniffer) must reach
/// the backend before the rest. The session is marked established (its start line) once
/// the backend is connected.
pub async fn relay_after(
    client: Conn,
    already_read: &[u8],
    backend: SocketAddr,
    connect_timeout: Duration,
    dp: &DataPath,
    live: Live<'_>,
) -> SessionEnd {
    live.set_target(backend);
    let backend_conn = match connect_patiently(backend, connect_timeout).await {
        Ok(conn) => {
            live.established();
            conn
        }
        Err(error) => {
            ShardStats::add(&live.stats.backend_connect_failures, 1);
            client.shutdown_both();
            return SessionEnd::BackendUnreachable { backend, error };
        }
    };
    if !already_read.is_empty() {
        if let Err(error) = backend_conn.write_all(already_read).await {
            client.shutdown_both();
            return SessionEnd::Failed {
                culprit: Culprit::Backend,
                error,
            };
        }
        live.to_backend().add(already_read.len() as u64);
    }
    relay(&client, &backend_conn, dp, live).await
}

/// Connects within `timeout`. Running out of descriptors is local and passing (sessions end,
/// descriptors free up), so it is retried until the deadline instead of failing the client
/// at once; any other error is final.
async fn connect_patiently(backend: SocketAddr, timeout: Duration) -> io::Result<Conn> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match connect(backend, left.max(Duration::from_millis(1))).await {
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
                    && Instant::now() < deadline =>
            {
                sleep(Duration::from_millis(20)).await
            }
            other => return other,
        }
    }
}

/// Runs both directions of an established session. When one fails, both sockets are shut
/// down so the other direction ends at once; a reset is passed on as a reset. A session
/// quiet for the idle timeout is closed both ways (counted, logged at a bounded rate).
pub async fn relay(client: &Conn, backend: &Conn, dp: &DataPath, live: Live<'_>) -> SessionEnd {
    let stats = live.stats;
    let activity = Activity::default();
    let timeout = dp.idle.get();
    let upstream = async {
        let r = pump(client, backend, dp, stats, live.to_backend(), &activity).await;
        if let Err(e) = &r {
            tear_down(e, client, backend);
        }
        r
    };
    let downstream = async {
        let r = pump(backend, client, dp, stats, live.to_client(), &activity).await;
        if let Err(e) = &r {
            tear_down(e, backend, client);
        }
        r
    };
    let idle = async {
        activity.quiet_for(timeout).await;
        None
    };
    let both = async { Some(zip(upstream, downstream).await) };
    let Some(ends) = or(both, idle).await else {
        // Both directions were waiting (a read, or a write the peer does not take): the
        // dropped operations are cancelled, a pipe still holding bytes is closed.
        let after = timeout.unwrap_or_default();
        dp.idle.closed(stats, "TCP", after);
        client.shutdown_both();
        backend.shutdown_both();
        return SessionEnd::Idle { after };
    };
    match ends {
        (Ok(to_backend), Ok(to_client)) => SessionEnd::Closed {
            to_backend,
            to_client,
        },
        (Err(e), _) => failed(e, Culprit::Client, Culprit::Backend),
        (_, Err(e)) => failed(e, Culprit::Backend, Culprit::Client),
    }
}

fn tear_down(e: &DirectionError, src: &Conn, dst: &Conn) {
    let reset = e.error.kind() == io::ErrorKind::ConnectionReset;
    let (failed, other) = match e.side {
        Side::Source => (src, dst),
        Side::Destination => (dst, src),
    };
    failed.shutdown_both();
    if reset {
        other.abort();
    } else {
        other.shutdown_both();
    }
}

fn failed(e: DirectionError, source: Culprit, destination: Culprit) -> SessionEnd {
    let culprit = match e.side {
        Side::Source => source,
        Side::Destination => destination,
    };
    SessionEnd::Failed {
        culprit,
        error: e.error,
    }
}
