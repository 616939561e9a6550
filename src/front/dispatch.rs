//! The sniffing door: one port for xpra and, where configured, everything else.
//!
//! Each accepted connection is sniffed ([`super::sniff`]) within `--sniff-timeout`, then
//! handed on with the bytes already read: xpra to the xpra door; anything unrecognised to
//! `--fallback` (relayed like L4: the port is shared with, say, a web server) or closed.
//! A client that says nothing recognisable in time (in the clear, or inside TLS, or that
//! does not finish its TLS handshake) is closed, counted in `sniff_timeouts`, and logged at
//! most a line a second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use super::proxy_protocol;
use super::sniff::{sniff, sniff_from, Kind, SniffError};
use super::tls::TlsStream;
use super::web::{self, WebDoor, WebEnd};
use super::xpra::{self, XpraDoor, XpraEnd};
use crate::control::registry::{Door, Live};
use crate::control::stats::ShardStats;
use crate::engine::auth_throttle::AuthThrottle;
use crate::engine::log_rate::LogRate;
use crate::engine::runtime::{connect, within, Conn};
use crate::relay::bridge::{bridge, BridgeEnd};
use crate::relay::direction::DataPath;
use crate::relay::session::{relay_after, SessionEnd};
use crate::relay::stream::{ByteStream, Prefixed};

/// What the sniffing door leads to.
#[derive(Debug)]
pub struct Doors {
    /// xpra clients (frames starting with `P`).
    pub xpra: Option<Arc<XpraDoor>>,
    /// Where connections nobody here speaks go (`--fallback`); closed when None.
    pub fallback: Option<SocketAddr>,
    /// HTTP: the web root and WebSocket upgrades.
    pub web: Option<Arc<WebDoor>>,
    /// TLS on the same port (`--tls-cert`, `--tls-key`); after the handshake the
    /// plaintext is sniffed again.
    pub tls: Option<Arc<ServerConfig>>,
    /// How long a client may take to send its first recognisable bytes.
    pub sniff_timeout: Duration,
}

/// How one connection went.
#[derive(Debug)]
pub enum Served {
    Xpra(XpraEnd),
    /// Relayed to the fallback server.
    Fallback(SessionEnd),
    /// Relayed, from a client that is not a plain socket (TLS, WebSocket).
    Bridged(BridgeEnd),
    /// An HTTP connection: pages, or a WebSocket session.
    Web(WebEnd),
    /// Closed at the door.
    Closed {
        why: String,
    },
}

/// What a shard lends the door for one connection.
pub struct Ctx<'a> {
    pub dp: &'a DataPath,
    /// The session's registry entry and its shard's counters.
    pub live: Live<'a>,
    pub connect_timeout: Duration,
    /// The client's address: from a trusted PROXY header, else the socket's peer.
    pub client_addr: Option<SocketAddr>,
    /// `--send-proxy`: backends get a PROXY v2 header with `client_addr` first.
    pub send_proxy: bool,
    /// Failed-login throttling, shared by every shard.
    pub throttle: &'a AuthThrottle,
}

impl Ctx<'_> {
    /// The PROXY v2 header a backend at `backend` gets, or nothing.
    pub fn proxy_header_for(&self, backend: SocketAddr) -> Vec<u8> {
        match (self.send_proxy, self.client_addr) {
            (true, Some(client)) => proxy_protocol::encode_v2(client, backend),
            (true, None) => proxy_protocol::encode_v2_local(),
            (false, _) => Vec::new(),
        }
    }

    /// Connects to the backend of a bridged session (a token's target, the fallback behind
    /// TLS), the PROXY v2 header written first under `--send-proxy`.
    pub async fn connect_backend(&self, addr: SocketAddr) -> std::io::Result<Conn> {
        let backend = connect(addr, self.connect_timeout).await?;
        let header = self.proxy_header_for(addr);
        if !header.is_empty() {
            backend.write_all(&header).await?;
        }
        Ok(backend)
    }
}

/// Sniff timeouts of every shard, logged at most a line a second.
static SNIFF_TIMEOUT_LOG: LogRate = LogRate::new();

/// Counts a sniff timeout (`what` did not come in time) and logs it at a bounded rate.
fn sniff_timed_out(ctx: &Ctx<'_>, deadline: Duration, what: &str) {
    ShardStats::add(&ctx.live.stats.sniff_timeouts, 1);
    if let Some(suppressed) = SNIFF_TIMEOUT_LOG.allow_counted() {
        let client = ctx
            .client_addr
            .map_or_else(|| "?".into(), |a| a.to_string());
        tracing::info!(
            suppressed,
            "sniff timeout: {client} sent no {what} within {deadline:?}; closed"
        );
    }
}

/// Sniffs `client` and serves it through the door its first bytes name.
///
/// Each door's future is boxed: a session's task is as large as the largest state its
/// future can be in, so with the doors inline every session (an idle xpra client too)
/// carried the TLS and WebSocket doors' state, 19 KB of it; boxed, a session pays for the
/// door it took (measured: loadgen's RSS per session, see README).
pub async fn serve(doors: &Doors, client: Conn, early: Vec<u8>, ctx: Ctx<'_>) -> Served {
    let (kind, first) = match sniff_from(&client, early, doors.sniff_timeout, &ctx.dp.ring).await {
        Ok(found) => found,
        Err(e) => {
            if matches!(e, SniffError::Timeout) {
                sniff_timed_out(&ctx, doors.sniff_timeout, "recognisable bytes");
            }
            client.shutdown_both();
            return Served::Closed { why: e.to_string() };
        }
    };
    match (kind, &doors.xpra, &doors.tls) {
        (Kind::Xpra, Some(door), _) => {
            ctx.live.set_door(Door::Xpra);
            let stream = Prefixed::new(first, client);
            Served::Xpra(Box::pin(xpra::serve(door, stream, &ctx)).await)
        }
        (Kind::Tls, _, Some(config)) => {
            ctx.live.set_tls();
            Box::pin(serve_tls(doors, client, &first, config, ctx)).await
        }
        (Kind::Http, _, _) if doors.web.is_some() => {
            Box::pin(serve_web(doors, Prefixed::new(first, client), &ctx)).await
        }
        _ => match doors.fallback {
            Some(addr) => {
                ctx.live.set_door(Door::Fallback);
                let mut head = ctx.proxy_header_for(addr);
                head.extend_from_slice(&first);
                Served::Fallback(
                    relay_after(client, &head, addr, ctx.connect_timeout, ctx.dp, ctx.live).await,
                )
            }
            None => {
                client.shutdown_both();
                Served::Closed {
                    why: format!("{kind:?} connection, and no door for it (see --fallback)"),
                }
            }
        },
    }
}

/// Completes the TLS handshake, then sniffs the plaintext: xpra over TLS goes to the xpra
/// door (HTTP over TLS, for the web door, is next).
async fn serve_tls(
    doors: &Doors,
    client: Conn,
    first: &[u8],
    config: &Arc<ServerConfig>,
    ctx: Ctx<'_>,
) -> Served {
    let tls = match within(
        doors.sniff_timeout,
        TlsStream::accept(client, first, Arc::clone(config)),
    )
    .await
    {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => {
            return Served::Closed {
                why: format!("TLS handshake failed: {e}"),
            }
        }
        None => {
            sniff_timed_out(&ctx, doors.sniff_timeout, "complete TLS handshake");
            return Served::Closed {
                why: "TLS handshake timed out".into(),
            };
        }
    };
    let (kind, inner) = match sniff(&tls, doors.sniff_timeout, &ctx.dp.ring).await {
        Ok(found) => found,
        Err(e) => {
            if matches!(e, SniffError::Timeout) {
                sniff_timed_out(&ctx, doors.sniff_timeout, "recognisable bytes inside TLS");
            }
            tls.shutdown_both();
            return Served::Closed {
                why: format!("inside TLS: {e}"),
            };
        }
    };
    let stream = Prefixed::new(inner, tls);
    match (kind, &doors.xpra, doors.fallback) {
        (Kind::Xpra, Some(door), _) => {
            ctx.live.set_door(Door::Xpra);
            Served::Xpra(Box::pin(xpra::serve(door, stream, &ctx)).await)
        }
        (Kind::Http, _, _) if doors.web.is_some() => Box::pin(serve_web(doors, stream, &ctx)).await,
        // TLS terminated here, the plaintext relayed to the fallback server.
        (_, _, Some(addr)) => match ctx.connect_backend(addr).await {
            Ok(backend) => {
                ctx.live.set_door(Door::Fallback);
                ctx.live.set_target(addr);
                ctx.live.established();
                let idle = ctx.dp.idle.get();
                let end = bridge(&stream, &backend, &ctx.dp.buffers, idle, ctx.live).await;
                if let Some(after) = end.idle {
                    ctx.dp.idle.closed(ctx.live.stats, "TLS", after);
                }
                Served::Bridged(end)
            }
            Err(e) => {
                ShardStats::add(&ctx.live.stats.backend_connect_failures, 1);
                stream.shutdown_both();
                Served::Closed {
                    why: format!("fallback {addr} unreachable: {e}"),
                }
            }
        },
        _ => {
            stream.shutdown_both();
            Served::Closed {
                why: format!("{kind:?} inside TLS, and no door for it"),
            }
        }
    }
}

/// HTTP (plain or inside TLS) to the web door; the caller checked there is one.
async fn serve_web(doors: &Doors, stream: impl ByteStream, ctx: &Ctx<'_>) -> Served {
    let web = doors.web.as_deref().expect("a web door");
    let xpra = doors.xpra.as_ref();
    ctx.live.set_door(Door::Http);
    Served::Web(web::serve(web, xpra, stream, ctx).await)
}
