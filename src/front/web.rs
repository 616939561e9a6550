//! The HTTP door: static files from `--web-root` (keep-alive), and WebSocket upgrades: to
//! the xpra door (the HTML5 client), or by `?token=` to a raw target (X2Go kdrive, VNC-style)
//! bridged byte for byte.
//!
//! Unknown tokens count as failed logins of the client's address in the shared throttle
//! (`engine/auth_throttle.rs`); a blocked address gets `429 Too Many Requests` with
//! `Retry-After` for any `?token=` upgrade, before its token is looked up. A bridged
//! session quiet for the idle timeout ends with a close frame 1001 (going away).
//!
//! With `--ws-heartbeat`, a bridged session whose client answered no ping (and sent
//! nothing else) for two intervals ends the same way: close 1001 when its stream is between
//! frames, then the transport and the backend closed, and a line logged at most once a
//! second. 1001 rather than 1011: the relay gives up on a peer it takes for gone, as for
//! the idle timeout; nothing failed on the server's side.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::future::{or, poll_fn};

use super::dispatch::Ctx;
use super::http::{
    self, Action, BodySource, HttpError, Route, Target, UpgradePolicy, WebRoot, UNKNOWN_TOKEN,
};
use super::ws::{CloseCode, WsStream};
use super::xpra::{self, XpraDoor, XpraEnd};
use crate::control::registry::{Door, Live};
use crate::control::stats::ShardStats;
use crate::engine::log_rate::LogRate;
use crate::engine::runtime::{resolve, within};
use crate::relay::bridge::{bridge, BridgeEnd};
use crate::relay::buffer_pool::BufferPool;
use crate::relay::idle::GOODBYE;
use crate::relay::stream::{ByteStream, Prefixed};

/// The HTTP door's configuration.
#[derive(Debug)]
pub struct WebDoor {
    /// Static files (`--web-root`), None: no pages, WebSocket only.
    pub root: Option<WebRoot>,
    /// Upgrade rules: Origin allow-list, token map.
    pub policy: UpgradePolicy,
    /// Largest WebSocket frame accepted from a client (close 1009 above).
    pub max_frame: u64,
    /// Ping interval on idle WebSocket sessions (`--ws-heartbeat`).
    pub heartbeat: Option<Duration>,
    /// Time to wait for a request head (and between keep-alive requests).
    pub request_timeout: Duration,
}

/// How an HTTP connection ended.
#[derive(Debug)]
pub enum WebEnd {
    /// Pages served, then closed (`why`).
    Pages { requests: u32, why: String },
    /// The HTML5 client's session through the xpra door.
    Xpra(XpraEnd),
    /// A raw WebSocket session by token.
    Bridged { target: String, end: BridgeEnd },
    /// Refused before or at the upgrade.
    Refused { why: String },
}

/// Serves one HTTP connection (plain or inside TLS).
pub async fn serve(
    web: &WebDoor,
    xpra_door: Option<&Arc<XpraDoor>>,
    stream: impl ByteStream,
    ctx: &Ctx<'_>,
) -> WebEnd {
    let pool = &ctx.dp.buffers;
    let tls = stream.is_tls();
    let mut buf: Vec<u8> = Vec::new();
    let mut requests = 0;
    loop {
        let (req, head_len) = match read_head(&stream, &mut buf, web.request_timeout, pool).await {
            Ok(found) => found,
            Err(why) => {
                if let Some(e) = &why.1 {
                    let _ = stream.write_all(&e.response(tls)).await;
                }
                stream.shutdown_both();
                return WebEnd::Pages {
                    requests,
                    why: why.0,
                };
            }
        };
        requests += 1;
        let rest = buf.split_off(head_len);
        buf = rest;
        let ip = ctx.client_addr.map(|a| a.ip());
        let token_upgrade = req.wants_websocket() && req.query("token").is_some();
        let action = match token_upgrade {
            true => match ctx.throttle.check(ip, None) {
                Ok(()) => http::handle(&req, web.root.as_ref(), &web.policy, tls),
                Err(blocked) => {
                    ShardStats::add(&ctx.live.stats.auth_throttled, 1);
                    Action::Refuse(HttpError::TooManyRequests {
                        retry_after: blocked.retry_secs(),
                    })
                }
            },
            false => http::handle(&req, web.root.as_ref(), &web.policy, tls),
        };
        match &action {
            Action::Refuse(HttpError::Forbidden(_)) if token_upgrade => {
                ctx.throttle.failed(ip, None)
            }
            Action::Upgrade(a) if matches!(a.route, Route::Token(_)) => {
                ctx.throttle.succeeded(ip, None)
            }
            _ => {}
        }
        count_token(&action, ctx.live);
        match action {
            Action::Refuse(e) => {
                let _ = stream.write_all(&e.response(tls)).await;
                let _ = stream.close_write().await;
                stream.shutdown_both();
                return WebEnd::Refused { why: e.to_string() };
            }
            Action::Static(resp) => {
                if let Err(e) = send_static(&stream, &resp.head, &resp.body).await {
                    stream.shutdown_both();
                    return WebEnd::Pages {
                        requests,
                        why: e.to_string(),
                    };
                }
                if !resp.keep_alive {
                    let _ = stream.close_write().await;
                    stream.shutdown_both();
                    return WebEnd::Pages {
                        requests,
                        why: "done".into(),
                    };
                }
            }
            Action::Upgrade(accepted)
                if matches!(accepted.route, Route::Xpra) && xpra_door.is_none() =>
            {
                // No token, and no xpra door to take it: refused before the upgrade.
                let e = HttpError::Forbidden("no xpra sessions here");
                let _ = stream.write_all(&e.response(tls)).await;
                let _ = stream.close_write().await;
                stream.shutdown_both();
                return WebEnd::Refused { why: e.to_string() };
            }
            Action::Upgrade(accepted) => {
                if stream.write_all(&accepted.response).await.is_err() {
                    return WebEnd::Pages {
                        requests,
                        why: "client gone".into(),
                    };
                }
                // Bytes after the head are the first frames.
                let ws = WsStream::new(Prefixed::new(buf, stream), web.max_frame);
                ctx.live.set_websocket();
                return upgraded(web, xpra_door, ws, accepted.route, ctx).await;
            }
        }
    }
}

async fn upgraded<S: ByteStream>(
    web: &WebDoor,
    xpra_door: Option<&Arc<XpraDoor>>,
    ws: WsStream<S>,
    route: Route,
    ctx: &Ctx<'_>,
) -> WebEnd {
    let pool = &ctx.dp.buffers;
    match route {
        Route::Xpra => match xpra_door {
            Some(door) => {
                ctx.live.set_door(Door::Xpra);
                WebEnd::Xpra(xpra::serve(door, ws, ctx).await)
            }
            None => {
                ws.close_with(CloseCode::Policy, "no xpra sessions here")
                    .await;
                WebEnd::Refused {
                    why: "xpra over WebSocket, and no xpra door".into(),
                }
            }
        },
        Route::Token(target) => {
            ctx.live.set_door(Door::Token);
            ctx.live.set_target(&target);
            let addr = match &target {
                Target::Addr(a) => Some(*a),
                Target::Host { host, port } => resolve(host, *port).await,
            };
            let backend = match addr {
                Some(a) => ctx.connect_backend(a).await.ok(),
                None => None,
            };
            let Some(backend) = backend else {
                // RFC 6455 1011: the server cannot fulfil the request.
                ws.close_with(CloseCode::Error, "backend unreachable").await;
                ws.shutdown_both();
                return WebEnd::Refused {
                    why: format!("token target {target} unreachable"),
                };
            };
            ctx.live.established();
            let idle = ctx.dp.idle.get();
            let end = match web.heartbeat {
                None => bridge(&ws, &backend, pool, idle, ctx.live).await,
                Some(every) => {
                    // The bridge is dropped before the goodbye, so no frame can follow it.
                    let relayed = async { Ok(bridge(&ws, &backend, pool, idle, ctx.live).await) };
                    match or(relayed, async { Err(ws.keep_alive(every).await) }).await {
                        Ok(end) => end,
                        Err(silent) => heartbeat_timeout(&ws, &backend, silent, ctx.live).await,
                    }
                }
            };
            if let Some(after) = end.idle {
                ctx.dp.idle.closed(ctx.live.stats, "WebSocket", after);
            }
            WebEnd::Bridged {
                target: target.to_string(),
                end,
            }
        }
    }
}

/// Closes a bridged session whose client stopped answering pings (see the module doc).
async fn heartbeat_timeout<S: ByteStream>(
    ws: &WsStream<S>,
    backend: &impl ByteStream,
    silent: Duration,
    live: Live<'_>,
) -> BridgeEnd {
    static LOG: LogRate = LogRate::new();
    static CLOSED: AtomicU64 = AtomicU64::new(0);
    // The client may have stopped reading too: the goodbye gets as long as an idle one.
    let _ = within(GOODBYE, ws.close_going_away("heartbeat timeout")).await;
    ws.shutdown_both();
    backend.shutdown_both();
    let total = CLOSED.fetch_add(1, Ordering::Relaxed) + 1;
    if LOG.allow() {
        tracing::info!(
            "heartbeat: closed a WebSocket session silent for {} s after a ping ({total} so far)",
            silent.as_secs_f64()
        );
    }
    BridgeEnd {
        to_backend: live.to_backend().session_bytes(),
        to_client: live.to_client().session_bytes(),
        error: Some(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no answer to heartbeat pings for {} s",
                silent.as_secs_f64()
            ),
        )),
        idle: None,
    }
}

/// Counts a `?token=` upgrade: accepted, or refused for its token.
fn count_token(action: &Action, live: Live<'_>) {
    match action {
        Action::Upgrade(accepted) if matches!(accepted.route, Route::Token(_)) => {
            ShardStats::add(&live.stats.ws_token_successes, 1)
        }
        Action::Refuse(HttpError::Forbidden(UNKNOWN_TOKEN)) => {
            ShardStats::add(&live.stats.ws_token_failures, 1)
        }
        _ => {}
    }
}

/// Reads until `buf` holds a whole request head; the error says why (and what to answer).
async fn read_head(
    stream: &impl ByteStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
    pool: &BufferPool,
) -> Result<(http::Request, usize), (String, Option<HttpError>)> {
    let deadline = Instant::now() + timeout;
    loop {
        match http::parse(buf) {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(e) => return Err((e.to_string(), Some(e))),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let read = within(left, read_some(stream, buf, pool)).await;
        match read {
            // Part of a request: 408, as haproxy's `timeout http-request` answers. An idle
            // keep-alive connection (nothing of a next request) is closed without a word.
            None if !buf.is_empty() => {
                let e = HttpError::RequestTimeout;
                return Err((e.to_string(), Some(e)));
            }
            None => return Err(("idle timeout".into(), None)),
            Some(Ok(0)) => return Err(("closed".into(), None)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err((e.to_string(), None)),
        }
    }
}

async fn read_some(
    stream: &impl ByteStream,
    buf: &mut Vec<u8>,
    pool: &BufferPool,
) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut scratch = pool.take();
        let r = stream.poll_read(cx, &mut scratch);
        if let Poll::Ready(Ok(n)) = r {
            buf.extend_from_slice(&scratch[..n]);
        }
        pool.give_back(scratch);
        r
    })
    .await
}

/// Writes a static response. Files are read in 64 KiB pieces from the page cache on the
/// shard (web-root files are small and hot: the HTML5 client is ~2 MiB in all).
async fn send_static(stream: &impl ByteStream, head: &[u8], body: &BodySource) -> io::Result<()> {
    stream.write_all(head).await?;
    match body {
        BodySource::Empty => Ok(()),
        BodySource::Bytes(b) => stream.write_all(b).await,
        BodySource::File { path, len } => {
            let mut file = std::fs::File::open(path)?;
            let mut left = *len;
            let mut chunk = vec![0u8; 64 * 1024];
            while left > 0 {
                let want = chunk.len().min(left as usize);
                let n = file.read(&mut chunk[..want])?;
                if n == 0 {
                    // The file shrank after the head promised `len` bytes: close, do not lie.
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                stream.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            Ok(())
        }
    }
}
