//! Telling a connection turned away by `--max-sessions` or `--max-sessions-per-client` why,
//! in its own protocol, when its listener has a door that speaks one (xpra, HTTP).
//!
//! Its first bytes are sniffed ([`super::sniff`]); an xpra client gets
//! `["disconnect", "server full", reason]` in the encoder its frame header names, right after
//! the first bytes of its hello (the failed-login throttle's answer, sent earlier); HTTP,
//! WebSocket upgrades included, gets `503 Service Unavailable` with `Retry-After` before any
//! upgrade; anything else (TLS too: a handshake per refusal is what a flood would want) just
//! a FIN. Then the refusal half-closes and reads what the client still sends, into a small
//! buffer thrown away, until it closes: closing with unread bytes would reset the connection
//! and could destroy the answer before the client reads it. All of it within one deadline,
//! and nothing is kept: the connection never becomes a session and reaches no backend.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_fn;

use super::dispatch::Doors;
use super::http::HttpError;
use super::sniff::{sniff_from, Kind};
use super::xpra::disconnect_frame;
use super::xpra::handshake::reason::SERVER_FULL;
use crate::engine::limits::Over;
use crate::engine::runtime::{within, Conn};
use crate::uring::ShardRing;
use crate::xpra::header::Encoding;

/// What a refused HTTP client is told to wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 5;

/// How a refused connection was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    XpraDisconnect,
    ServiceUnavailable,
    /// Nothing to say in its protocol (or it said nothing in time): FIN only.
    Closed,
}

/// Whether these doors can tell a refused client anything (an xpra or a web door).
pub fn can_answer(doors: &Doors) -> bool {
    doors.xpra.is_some() || doors.web.is_some()
}

/// The answer for a connection whose first bytes are `first`, and its bytes.
pub fn answer_for(doors: &Doors, kind: Kind, first: &[u8], over: Over) -> (Answer, Vec<u8>) {
    match kind {
        Kind::Xpra if doors.xpra.is_some() => {
            // The second header byte is the frame's flags, which name its encoder.
            let encoding = first
                .get(1)
                .and_then(|&flags| Encoding::from_flags(flags).ok())
                .unwrap_or(Encoding::Rencode);
            let frame = disconnect_frame(SERVER_FULL, over.client_reason(), encoding);
            (Answer::XpraDisconnect, frame)
        }
        Kind::Http if doors.web.is_some() => {
            let full = HttpError::ServiceUnavailable {
                retry_after: RETRY_AFTER_SECS,
            };
            (Answer::ServiceUnavailable, full.response(false))
        }
        _ => (Answer::Closed, Vec::new()),
    }
}

/// Answers `client` (its bytes read so far: `early`) and closes it, all within `deadline`.
pub async fn answer(
    doors: &Doors,
    client: &Conn,
    early: Vec<u8>,
    over: Over,
    deadline: Duration,
    ring: &Rc<ShardRing>,
) -> Answer {
    let answering = async {
        let (answer, bytes) = match sniff_from(client, early, deadline, ring).await {
            Ok((kind, first)) => answer_for(doors, kind, &first, over),
            Err(_) => (Answer::Closed, Vec::new()),
        };
        let said = bytes.is_empty() || client.write_all(&bytes).await.is_ok();
        let _ = client.shutdown_write();
        drain(client).await;
        if said {
            answer
        } else {
            Answer::Closed
        }
    };
    let answered = within(deadline, answering).await.unwrap_or(Answer::Closed);
    client.shutdown_both();
    answered
}

/// Reads and throws away what the client sends until it closes (or fails).
async fn drain(client: &Conn) {
    let mut scratch = [0u8; 512];
    while let Ok(1..) = poll_fn(|cx| client.poll_read(cx, &mut scratch)).await {}
}
