//! One xpra session from accept to close: handshake, join, then the data phase with a
//! frame gate on each direction, until a side closes, a `disconnect` goes through, or
//! nothing moves for the idle timeout (then the client hears `idle timeout` when its
//! stream is between frames).

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::future::{or, poll_fn, zip};

use super::backend::join;
use super::forward::{forward, ForwardEnd, ForwardError, Verdict, Written};
use super::gate::Gate;
use super::handshake::reason;
use super::handshake::{admit, refusal_frame};
use super::info::{augment_info_response, ProxyInfo};
use super::{disconnect_frame, Refusal, RefusalKind, XpraDoor};
use crate::engine::runtime::{sleep, within, Conn};
use crate::front::dispatch::Ctx;
use crate::relay::idle::{Activity, Meter, GOODBYE};
use crate::relay::stream::ByteStream;
use crate::xpra::header::Compression;
use crate::xpra::packet::{encode_frame, FrameDecoder, Limits};
use crate::xpra::Value;

/// Packets from the client the proxy opens: a disconnect ends the session; a hello after
/// authentication is dropped (xpra's proxy does the same).
const FROM_CLIENT: &[&str] = &["disconnect", "hello"];
/// Packets from the server the proxy opens: a disconnect ends the session; info gets the
/// proxy's entries.
const FROM_SERVER: &[&str] = &["disconnect", "info-response"];

/// How long the other side may stay connected after a `disconnect` went through (xpra
/// servers give their clients one second).
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// How an xpra session ended.
#[derive(Debug)]
pub enum XpraEnd {
    /// Turned away before relaying, with the reason the client was sent.
    Refused { reason: String },
    /// Turned away because its address or user is blocked after failed logins (counted
    /// and logged at a bounded rate by the throttle, so not logged per connection).
    Throttled { reason: String },
    /// No valid hello (or answer to the challenge) before the pre-auth deadline: told
    /// `login timeout`, counted in `login_timeouts` and logged at a bounded rate by the
    /// handshake.
    LoginTimeout { reason: String },
    /// Relayed, then closed.
    Closed {
        user: Option<String>,
        target: String,
        to_server: u64,
        to_client: u64,
        secs: f64,
        why: String,
    },
}

/// Serves one accepted connection on the xpra door; its registry entry (`ctx.live`) learns
/// the user and target once the session is joined, and counts its bytes.
pub async fn serve(door: &XpraDoor, client: impl ByteStream, ctx: &Ctx<'_>) -> XpraEnd {
    let live = ctx.live;
    let (shard, dp) = (live.shard(), ctx.dp);
    let hello_at = Instant::now();
    let mut admitted = match admit(door, &client, ctx).await {
        Ok(a) => a,
        Err(refusal) => return refuse(&client, refusal).await,
    };
    let mut joined = match join(door, shard, &client, &mut admitted, dp).await {
        Ok(j) => j,
        Err(refusal) => return refuse(&client, refusal).await,
    };
    crate::control::metrics::xpra_joined(hello_at.elapsed());
    live.set_user(admitted.username.as_deref());
    live.set_target(&admitted.target);
    live.established();
    let started = Instant::now();
    let backend = &joined.backend;
    let activity = Activity::default();
    let to_server = Meter::new(&activity);
    let to_client = Meter::new(&activity);
    let (server_bytes, client_bytes) = (live.to_backend(), live.to_client());
    let idle_timeout = ctx.dp.idle.get();
    let idle = Cell::new(false);
    let why = Cell::new(None::<String>);
    let note = |w: String| {
        let prev = why.take();
        why.set(prev.or(Some(w)));
    };

    let broken = Cell::new(false);
    let disconnected = Signal::default();
    let mut up_gate = Gate::new(FROM_CLIENT, door.max_packet);
    let mut down_gate = Gate::new(FROM_SERVER, door.max_packet);
    let upstream = async {
        let r = forward(
            &client,
            backend,
            &mut up_gate,
            dp,
            std::mem::take(&mut admitted.leftover),
            |kind, frame| match kind {
                "disconnect" => {
                    note(format!("client: {}", disconnect_reason(frame)));
                    Verdict::ForwardAndEnd
                }
                _ => {
                    tracing::debug!("dropped a hello from the client after authentication");
                    Verdict::Drop
                }
            },
            Written {
                meter: &to_server,
                bytes: server_bytes,
            },
        )
        .await;
        if matches!(r, Ok(ForwardEnd::Ended)) {
            disconnected.raise();
        }
        finish(r, &client, backend, Culprit::Client, &note, &broken).await
    };
    let downstream = async {
        let r = forward(
            backend,
            &client,
            &mut down_gate,
            dp,
            std::mem::take(&mut joined.leftover),
            |kind, frame| match kind {
                "disconnect" => {
                    note(format!("server: {}", disconnect_reason(frame)));
                    Verdict::ForwardAndEnd
                }
                _ => {
                    let info = ProxyInfo {
                        shard,
                        client_rtt_ms: admitted.client_rtt_ms,
                        server_connect_ms: joined.connect_ms,
                        bytes_to_server: server_bytes.session_bytes(),
                        bytes_to_client: client_bytes.session_bytes(),
                    };
                    match rewrite_info(frame, &info, door.max_packet) {
                        Some(new) => Verdict::Replace(new),
                        None => Verdict::Forward,
                    }
                }
            },
            Written {
                meter: &to_client,
                bytes: client_bytes,
            },
        )
        .await;
        if matches!(r, Ok(ForwardEnd::Ended)) {
            disconnected.raise();
        }
        finish(r, &client, backend, Culprit::Server, &note, &broken).await
    };
    // After a disconnect the other side has DISCONNECT_GRACE to close by itself (it
    // normally does at once), then both sockets are shut.
    let grace = async {
        disconnected.wait().await;
        sleep(DISCONNECT_GRACE).await;
        client.shutdown_both();
        backend.shutdown_both();
        (None, None)
    };
    let quiet = async {
        activity.quiet_for(idle_timeout).await;
        idle.set(true);
        (None, None)
    };
    let (up, down) = or(or(zip(upstream, downstream), grace), quiet).await;
    if idle.get() {
        let after = idle_timeout.unwrap_or_default();
        ctx.dp.idle.closed(ctx.live.stats, "xpra", after);
        note(format!("idle timeout ({} s)", after.as_secs_f64()));
        let detail = format!("no traffic for {} s", after.as_secs_f64());
        let frame = disconnect_frame(reason::IDLE_TIMEOUT, &detail, admitted.encoding);
        // Both peers hear why, each only if its stream is between frames and no write to
        // it was cut short (a half-written frame cannot be followed by another).
        // Bounded: a peer that stopped reading must not keep the session alive.
        if up_gate.at_boundary() && !to_server.mid_write() {
            let _ = within(GOODBYE, backend.write_all(&frame)).await;
        }
        if down_gate.at_boundary() && !to_client.mid_write() {
            let _ = within(GOODBYE, async {
                if client.write_all(&frame).await.is_ok() {
                    let _ = client.close_going_away("idle timeout").await;
                }
            })
            .await;
        }
        client.shutdown_both();
        backend.shutdown_both();
    }
    // A protocol violation on either side: the client hears why, if its stream is between
    // frames (it always is when the server's stream broke: that is found at a header).
    if let Some(detail) = up.or(down) {
        if down_gate.at_boundary() {
            let frame = disconnect_frame(reason::PROTOCOL_ERROR, &detail, admitted.encoding);
            let _ = client.write_all(&frame).await;
        }
        client.shutdown_both();
    }
    XpraEnd::Closed {
        user: admitted.username.clone(),
        target: admitted.target.to_string(),
        to_server: server_bytes.session_bytes(),
        to_client: client_bytes.session_bytes(),
        secs: started.elapsed().as_secs_f64(),
        why: why.take().unwrap_or_else(|| "closed".into()),
    }
}

/// A one-shot flag a future can wait on (single-threaded: the session's own task).
#[derive(Default)]
struct Signal {
    raised: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl Signal {
    fn raise(&self) {
        self.raised.set(true);
        if let Some(w) = self.waiter.take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.raised.get() {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// Which peer a direction reads from.
#[derive(Debug, Clone, Copy)]
enum Culprit {
    Client,
    Server,
}

/// Ends one direction: EOF or a disconnect half-closes the destination; an I/O error closes
/// every socket so the other direction ends too. A protocol violation closes the backend
/// and stops reading the client, but leaves the client writable for the disconnect packet;
/// the reason is returned for it.
async fn finish(
    r: Result<ForwardEnd, ForwardError>,
    client: &impl ByteStream,
    backend: &Conn,
    source: Culprit,
    note: &impl Fn(String),
    broken: &Cell<bool>,
) -> Option<String> {
    match r {
        // After a violation the other direction ends by our own shutdown; the client's
        // write side stays open for the disconnect.
        Ok(_) if broken.get() => None,
        Ok(_) => {
            let _ = match source {
                Culprit::Client => backend.shutdown_write(),
                Culprit::Server => client.close_write().await,
            };
            None
        }
        Err(ForwardError::Protocol(e)) => {
            let detail = match source {
                Culprit::Client => e.to_string(),
                Culprit::Server => format!("invalid data from the session: {e}"),
            };
            tracing::warn!("protocol error from the {source:?}: {e}; closing the session");
            note(format!("{source:?} protocol error: {e}"));
            broken.set(true);
            backend.shutdown_both();
            client.shutdown_read();
            Some(detail)
        }
        Err(ForwardError::Io { side, error }) => {
            note(format!("{source:?} direction, {side:?} socket: {error}"));
            client.shutdown_both();
            backend.shutdown_both();
            None
        }
    }
}

async fn refuse(client: &impl ByteStream, refusal: Refusal) -> XpraEnd {
    if let Some(frame) = refusal_frame(&refusal) {
        // Best effort: the client may already be gone.
        let _ = client.write_all(&frame).await;
    }
    // The transport's own end: over WebSocket this sends the close frame (with the
    // protocol error's code when the client's framing was at fault), over TLS close_notify.
    let _ = client.close_write().await;
    client.shutdown_both();
    let reason = refusal.detail;
    match refusal.kind {
        RefusalKind::Plain => XpraEnd::Refused { reason },
        RefusalKind::Throttled => XpraEnd::Throttled { reason },
        RefusalKind::LoginTimeout => XpraEnd::LoginTimeout { reason },
    }
}

fn decode(frame: &[u8], max_packet: usize) -> Option<crate::xpra::packet::Decoded> {
    let mut buf = BytesMut::from(frame);
    FrameDecoder::new(Limits { max_packet })
        .decode(&mut buf)
        .ok()
        .flatten()
}

fn disconnect_reason(frame: &[u8]) -> String {
    decode(frame, frame.len())
        .map(|d| {
            d.packet.items[1..]
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(": ")
        })
        .unwrap_or_else(|| "(unreadable)".into())
}

fn rewrite_info(frame: &[u8], info: &ProxyInfo, max_packet: usize) -> Option<Vec<u8>> {
    let mut decoded = decode(frame, max_packet)?;
    augment_info_response(&mut decoded.packet.items, info);
    encode_frame(&decoded.packet, decoded.encoding, Compression::None).ok()
}
