//! The backend leg of the handshake: connect to the session, send it the client's hello
//! (rewritten), answer its challenge if it asks, and bring back its hello.
//!
//! A server may send packets before its hello: xpra 3.1.3's ping timer runs from the
//! connection, and a server slow to set up its side (a busy host, a display resize) pings
//! first. Those are held, bounded, and reach the client right after the hello, in order.

use std::time::{Duration, Instant};

use super::caps::{hello_for_backend, hello_for_client};
use super::handshake::{hello_caps, reason, Admitted};
use super::reader::{PacketReader, ReadError};
use super::{Refusal, XpraDoor};
use crate::engine::runtime::{connect, connect_unix, resolve, Conn};
use crate::relay::direction::DataPath;
use crate::relay::stream::ByteStream;
use crate::xpra::auth::{answer, SessionTarget, Transport};
use crate::xpra::header::Compression;
use crate::xpra::packet::{encode_frame, Decoded, Packet};
use crate::xpra::Value;

/// Packets a server may send ahead of its hello that the client still gets (after it).
const HELD_MAX_PACKETS: usize = 16;
/// Their encoded size, in all.
const HELD_MAX_BYTES: usize = 64 * 1024;

/// A backend that accepted the session.
pub struct Joined {
    pub backend: Conn,
    /// Bytes the backend sent past its hello: the first packets of the session.
    pub leftover: Vec<u8>,
    /// Time to connect to the backend.
    pub connect_ms: f64,
}

/// Connects `admitted` to its session and relays the backend's hello to `client`.
pub async fn join(
    door: &XpraDoor,
    shard: usize,
    client: &impl ByteStream,
    admitted: &mut Admitted,
    dp: &DataPath,
) -> Result<Joined, Refusal> {
    let enc = admitted.encoding;
    let fail = |detail: String| Refusal::new(reason::SERVER_ERROR, &detail, enc);
    let started = Instant::now();
    let (backend, local, password, uri_user) = match &admitted.target {
        SessionTarget::Tcp {
            host,
            port,
            username,
            password,
        } => {
            let addr = resolve(host, *port)
                .await
                .ok_or_else(|| fail(format!("cannot resolve session host {host}")))?;
            let conn = connect(addr, door.connect_timeout)
                .await
                .map_err(|e| fail(format!("failed to connect to the session: {e}")))?;
            (
                conn,
                addr.ip().is_loopback(),
                password.clone(),
                username.clone(),
            )
        }
        local @ SessionTarget::Local { .. } => {
            let conn = connect_local(door, local, admitted.uid)
                .map_err(|detail| Refusal::new(reason::SESSION_NOT_FOUND, &detail, enc))?;
            (conn, true, None, None)
        }
    };
    let connect_ms = started.elapsed().as_secs_f64() * 1e3;

    let username = uri_user.as_deref().or(admitted.username.as_deref());
    let info_request = super::info::is_info_request(&admitted.caps);
    let info_namespace = admitted
        .caps
        .get("info-namespace")
        .is_some_and(Value::is_true);
    // The client's capabilities are not needed past this point: moved, not copied.
    let caps = std::mem::replace(&mut admitted.caps, Value::None);
    let mut hello = hello_for_backend(caps, username, &admitted.session_options);
    send(&backend, &mut hello, enc).await?;

    let deadline = Instant::now() + door.connect_timeout + Duration::from_secs(30);
    let mut reader = PacketReader::new(door.limits());
    let mut answered = false;
    // Encoded packets that came before the hello, to follow it to the client.
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let got = reader
            .next(&backend, deadline, dp)
            .await
            .map_err(|e| match e {
                ReadError::Timeout => fail("the session did not answer in time".into()),
                other => fail(format!("the session closed the connection: {other}")),
            })?;
        let kind = got.packet.kind().map(str::to_owned);
        match kind.as_deref() {
            Some("hello") => {
                let compression = compression_of(&got);
                let caps = hello_caps(got.packet)
                    .ok_or_else(|| fail("invalid hello from the session".into()))?;
                let mut to_client = hello_for_client(caps);
                if info_request {
                    super::info::augment_hello(&mut to_client, info_namespace, shard, connect_ms);
                }
                // Re-encoded as the backend sent it: its encoder and its compressor.
                let frame = encode_frame(
                    &Packet {
                        items: vec![Value::str("hello"), to_client],
                    },
                    got.encoding,
                    compression,
                )
                .map_err(|e| fail(format!("cannot re-encode the session's hello: {e}")))?;
                let mut out = frame;
                held.iter().for_each(|p| out.extend_from_slice(p));
                client
                    .write_all(&out)
                    .await
                    .map_err(|_| Refusal::silent())?;
                return Ok(Joined {
                    backend,
                    leftover: reader.into_leftover(),
                    connect_ms,
                });
            }
            Some("challenge") if !answered => {
                let Some(password) = password.as_ref() else {
                    return Err(fail(
                        "authentication requested by the server, but no password is available for this session".into(),
                    ));
                };
                let transport = if local {
                    Transport::Loopback
                } else {
                    Transport::Plain
                };
                answer(&got.packet.items, password.expose(), transport)
                    .map_err(|e| fail(format!("cannot answer the session's challenge: {e}")))?
                    .apply(&mut hello);
                send(&backend, &mut hello, enc).await?;
                answered = true;
            }
            Some("disconnect") => {
                let why: Vec<&str> = got.packet.items[1..]
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                return Err(Refusal::new(
                    reason::SERVER_ERROR,
                    &format!("the session refused the connection: {}", why.join(": ")),
                    enc,
                ));
            }
            Some("ping") => {
                let frame = encode_frame(&got.packet, got.encoding, compression_of(&got))
                    .map_err(|e| fail(format!("cannot re-encode the session's ping: {e}")))?;
                let bytes: usize = held.iter().map(Vec::len).sum::<usize>() + frame.len();
                if held.len() == HELD_MAX_PACKETS || bytes > HELD_MAX_BYTES {
                    return Err(fail(
                        "the session sent too many packets before its hello".into(),
                    ));
                }
                held.push(frame);
            }
            other => {
                return Err(fail(format!(
                    "unexpected packet from the session before its hello: {}",
                    other.unwrap_or("?")
                )))
            }
        }
    }
}

/// The compressor the backend used for a packet (its last frame's), to answer in kind.
fn compression_of(got: &Decoded) -> Compression {
    got.frames
        .last()
        .and_then(|f| f.header.compression().ok())
        .unwrap_or(Compression::None)
}

/// Sends `hello` and leaves it in place (it may be sent again with a challenge answer).
async fn send(
    backend: &Conn,
    hello: &mut Value,
    enc: crate::xpra::header::Encoding,
) -> Result<(), Refusal> {
    let packet = Packet::new(vec![
        Value::str("hello"),
        std::mem::replace(hello, Value::None),
    ]);
    let frame = encode_frame(&packet, enc, Compression::None);
    *hello = packet
        .items
        .into_iter()
        .nth(1)
        .expect("the hello put there");
    let frame = frame.map_err(|e| {
        Refusal::new(
            reason::SERVER_ERROR,
            &format!("cannot encode the hello: {e}"),
            enc,
        )
    })?;
    backend.write_all(&frame).await.map_err(|e| {
        Refusal::new(
            reason::SERVER_ERROR,
            &format!("failed to send the hello to the session: {e}"),
            enc,
        )
    })
}

/// Connects to a local display's unix socket: first in `--socket-dir`s, then where xpra
/// itself puts them for the session's uid.
fn connect_local(door: &XpraDoor, target: &SessionTarget, uid: u32) -> Result<Conn, String> {
    let SessionTarget::Local { display } = target else {
        unreachable!("called for local targets only")
    };
    let host = crate::xpra::auth::sys::hostname().unwrap_or_default();
    let mut candidates: Vec<_> = door
        .socket_dirs
        .iter()
        .map(|d| d.join(format!("{host}-{display}")))
        .collect();
    candidates.extend(target.socket_candidates(uid));
    let mut last = None;
    for path in &candidates {
        match connect_unix(path) {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(format!(
        "failed to connect to display :{display}: {}",
        last.map_or_else(|| "no socket directory".into(), |e| e.to_string())
    ))
}
