//! One xpra session from accept to close: handshake, join, then the data phase with a
//! frame gate on each direction.

use std::cell::Cell;
use std::time::Instant;

use bytes::BytesMut;
use futures_lite::future::zip;

use super::backend::join;
use super::forward::{forward, ForwardEnd, ForwardError, Verdict};
use super::gate::Gate;
use super::handshake::{admit, refusal_frame};
use super::info::{augment_info_response, ProxyInfo};
use super::{Refusal, XpraDoor};
use crate::engine::runtime::Conn;
use crate::relay::buffer_pool::BufferPool;
use crate::xpra::header::Compression;
use crate::xpra::packet::{encode_frame, FrameDecoder, Limits};
use crate::xpra::Value;

/// Packets from the client the proxy opens: a disconnect ends the session; a hello after
/// authentication is dropped (xpra's proxy does the same).
const FROM_CLIENT: &[&str] = &["disconnect", "hello"];
/// Packets from the server the proxy opens: a disconnect ends the session; info gets the
/// proxy's entries.
const FROM_SERVER: &[&str] = &["disconnect", "info-response"];

/// How an xpra session ended.
#[derive(Debug)]
pub enum XpraEnd {
    /// Turned away before relaying, with the reason the client was sent.
    Refused { reason: String },
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

/// Serves one accepted connection on the xpra door.
pub async fn serve(door: &XpraDoor, client: Conn, shard: usize, pool: &BufferPool) -> XpraEnd {
    let admitted = match admit(door, &client).await {
        Ok(a) => a,
        Err(refusal) => return refuse(&client, refusal).await,
    };
    let joined = match join(door, shard, &client, &admitted).await {
        Ok(j) => j,
        Err(refusal) => return refuse(&client, refusal).await,
    };
    let started = Instant::now();
    let backend = &joined.backend;
    let to_server = Cell::new(0u64);
    let to_client = Cell::new(0u64);
    let why = Cell::new(None::<String>);
    let note = |w: String| {
        let prev = why.take();
        why.set(prev.or(Some(w)));
    };

    let upstream = async {
        let mut gate = Gate::new(FROM_CLIENT, door.max_packet);
        let r = forward(
            &client,
            backend,
            &mut gate,
            pool,
            admitted.leftover.clone(),
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
            &to_server,
        )
        .await;
        finish(r, &client, backend, "client", &note);
    };
    let downstream = async {
        let mut gate = Gate::new(FROM_SERVER, door.max_packet);
        let r = forward(
            backend,
            &client,
            &mut gate,
            pool,
            joined.leftover.clone(),
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
                        bytes_to_server: to_server.get(),
                        bytes_to_client: to_client.get(),
                    };
                    match rewrite_info(frame, &info, door.max_packet) {
                        Some(new) => Verdict::Replace(new),
                        None => Verdict::Forward,
                    }
                }
            },
            &to_client,
        )
        .await;
        finish(r, backend, &client, "server", &note);
    };
    zip(upstream, downstream).await;
    XpraEnd::Closed {
        user: admitted.username.clone(),
        target: admitted.target.to_string(),
        to_server: to_server.get(),
        to_client: to_client.get(),
        secs: started.elapsed().as_secs_f64(),
        why: why.take().unwrap_or_else(|| "closed".into()),
    }
}

/// Ends one direction: EOF or a disconnect half-closes the destination; an error closes
/// both sockets so the other direction ends too.
fn finish(
    r: Result<ForwardEnd, ForwardError>,
    src: &Conn,
    dst: &Conn,
    source_name: &str,
    note: &impl Fn(String),
) {
    match r {
        Ok(_) => {
            let _ = dst.shutdown_write();
        }
        Err(ForwardError::Protocol(e)) => {
            tracing::warn!("protocol error from the {source_name}: {e}; closing the session");
            note(format!("{source_name} protocol error: {e}"));
            src.shutdown_both();
            dst.shutdown_both();
        }
        Err(ForwardError::Io { side, error }) => {
            note(format!("{source_name} direction {side:?} error: {error}"));
            src.shutdown_both();
            dst.shutdown_both();
        }
    }
}

async fn refuse(client: &Conn, refusal: Refusal) -> XpraEnd {
    if let Some(frame) = refusal_frame(&refusal) {
        // Best effort: the client may already be gone.
        let _ = client.write_all(&frame).await;
    }
    let _ = client.shutdown_write();
    client.shutdown_both();
    XpraEnd::Refused {
        reason: refusal.detail,
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
