//! The two halves of a direction: the scheduled sender and the verifying receiver, shared by
//! the client side (upstream sender, downstream receiver) and the backend side.

use std::io;

use crate::metrics::Sent;
use crate::net::{now_ns, sleep_until, Conn};
use crate::schedule::Schedule;
use crate::wire::{Header, Kind, WireError, HEADER_LEN};
use crate::worker::Ctx;

/// Scratch room of a sender: a header and a coalesced payload (see
/// [`crate::protocol`]'s `write_message`).
const COALESCE: usize = 16 * 1024;
/// Read buffer of a receiver.
const READ_BUF: usize = 64 * 1024;

/// Which way a direction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to backend.
    Up,
    /// Backend to client.
    Down,
}

/// Why a direction stopped early.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
}

impl FlowError {
    /// Short key for the report's error counts.
    pub fn kind(&self) -> String {
        match self {
            FlowError::Io(e) => format!("io: {}", e.kind()),
            FlowError::Wire(WireError::Corrupt { .. }) => "corrupt payload".into(),
            FlowError::Wire(WireError::OutOfOrder { .. }) => "sequence gap".into(),
            FlowError::Wire(WireError::Truncated) => "truncated message".into(),
            FlowError::Wire(WireError::Framing(_)) => "bad xpra frame".into(),
            FlowError::Wire(WireError::WebSocket(_)) => "bad websocket frame".into(),
            FlowError::Wire(WireError::WsClosed { code, .. }) => format!("websocket close {code}"),
            FlowError::Wire(WireError::AfterEnd) => "data after the end".into(),
            FlowError::Wire(_) => "bad header".into(),
        }
    }
}

/// Sends `schedule` on `conn`, each message at its due time, or at once when late. The
/// caller ends the direction ([`crate::protocol`]'s `end_stream`).
pub async fn send(
    ctx: &Ctx,
    conn: &Conn,
    session: u32,
    dir: Dir,
    schedule: Schedule,
) -> io::Result<()> {
    let plan = &ctx.plan;
    let mut buf = Vec::with_capacity(HEADER_LEN + 64 + COALESCE);
    for (seq, (due_ns, len)) in schedule.enumerate() {
        let due_ns = if plan.profile.saturate {
            let now = now_ns();
            if now >= plan.end_ns {
                break;
            }
            // Loopback writes rarely block: let the session's receivers and the other
            // sessions run.
            glommio::yield_if_needed().await;
            now
        } else {
            sleep_until(due_ns).await;
            due_ns
        };
        let h = Header {
            kind: Kind::Data,
            session,
            len,
            seq: seq as u64,
            due_ns,
        };
        let payload = plan.pattern.payload(session, h.seq, len as usize);
        plan.protocol
            .write_message(conn, dir, &h, payload, &mut buf)
            .await?;
        let (msgs, bytes) = match dir {
            Dir::Up => (&plan.sent.up_messages, &plan.sent.up_bytes),
            Dir::Down => (&plan.sent.down_messages, &plan.sent.down_bytes),
        };
        Sent::add(msgs, 1);
        Sent::add(bytes, HEADER_LEN as u64 + len as u64);
    }
    Ok(())
}

/// [`send`] for one side of a session (`side`: "client" or "backend"), then, with
/// `end`, the end of the direction: a failure is counted under "`side` send: io: kind" and
/// ends the whole connection, so the other half stops too. True when all went out.
pub async fn send_or_record(
    ctx: &Ctx,
    conn: &Conn,
    session: u32,
    dir: Dir,
    schedule: Schedule,
    side: &str,
    end: bool,
) -> bool {
    let mut r = send(ctx, conn, session, dir, schedule).await;
    if r.is_ok() && end {
        r = ctx.plan.protocol.end_stream(conn, dir, session).await;
    }
    match r {
        Ok(()) => true,
        Err(e) => {
            send_failed(ctx, conn, session, side, &e);
            false
        }
    }
}

/// Counts a failed send of `side` and ends the whole connection.
pub fn send_failed(ctx: &Ctx, conn: &Conn, session: u32, side: &str, e: &io::Error) {
    ctx.metrics.borrow_mut().error(
        &format!("{side} send: io: {}", e.kind()),
        format!("session {session}: {e}"),
    );
    conn.shutdown_both();
}

/// Reads `conn` to its end (end of stream, or an in-band end: xpra's end packet, ws's end
/// marker or close frame), verifying every message
/// of `session` and recording its latency (arrival - due) under `dir`; `leftover` (bytes
/// the set-up read past its end) comes first. With `echo`, writes each verified message
/// back on `conn` (the backend of the echo profile; its caller ends that direction).
pub async fn receive(
    ctx: &Ctx,
    conn: &Conn,
    session: u32,
    dir: Dir,
    echo: bool,
    leftover: Vec<u8>,
) -> Result<(), FlowError> {
    let plan = &ctx.plan;
    let mut decoder = plan.protocol.decoder(session, dir);
    let mut buf = vec![0u8; READ_BUF.max(leftover.len())];
    let mut pending = leftover.len();
    buf[..pending].copy_from_slice(&leftover);
    drop(leftover);
    let mut done: Vec<Header> = Vec::new();
    let mut out = Vec::new();
    loop {
        let n = if pending > 0 {
            std::mem::take(&mut pending)
        } else {
            conn.read(&mut buf).await?
        };
        if n == 0 {
            decoder.finish()?;
            return Ok(());
        }
        let now = now_ns();
        {
            let mut m = ctx.metrics.borrow_mut();
            let d = match dir {
                Dir::Up => &mut m.up,
                Dir::Down => &mut m.down,
            };
            decoder.feed(&plan.pattern, &buf[..n], |h| {
                d.record(
                    now.saturating_sub(h.due_ns),
                    HEADER_LEN as u64 + h.len as u64,
                );
                if echo {
                    done.push(*h);
                }
            })?;
        }
        for h in done.drain(..) {
            let payload = plan.pattern.payload(session, h.seq, h.len as usize);
            plan.protocol
                .write_message(conn, Dir::Down, &h, payload, &mut out)
                .await?;
            Sent::add(&plan.sent.down_messages, 1);
            Sent::add(&plan.sent.down_bytes, HEADER_LEN as u64 + h.len as u64);
        }
        if decoder.ended() {
            decoder.finish()?;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::cli::{ProfileKind, Protocol};
    use crate::metrics::Metrics;
    use crate::profile::{Profile, StreamSpec};
    use crate::wire::Pattern;
    use crate::worker::Plan;

    const MS: u64 = 1_000_000;

    fn plan(spec: StreamSpec) -> Plan {
        Plan {
            profile: Profile {
                kind: ProfileKind::Bulk,
                up: vec![spec],
                down: vec![],
                echo: false,
                saturate: false,
            },
            protocol: Protocol::Raw,
            pattern: Pattern::new(),
            sent: Sent::default(),
            sessions: 1,
            credentials: Vec::new(),
            max_handshakes: u64::MAX,
            ramp: 1.0,
            connect_to: "127.0.0.1:9".parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            start_ns: 0,
            end_ns: 0,
            hard_deadline_ns: u64::MAX,
        }
    }

    /// Coordinated omission, synthetically: the receiver stalls for a second while the
    /// sender's socket buffers are tiny, so the sender blocks. The messages due during the
    /// stall must carry their due times, so their latency covers the stall: a quarter of
    /// them waited over half a second. Stamped when finally sent, they would look fast.
    #[test]
    fn a_blocked_sender_keeps_due_times_so_a_stall_is_measured() {
        let spec = StreamSpec {
            rate: 100.0,
            min: 16 * 1024,
            max: 16 * 1024,
        };
        let h = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let std_listener = {
                    use socket2::{Domain, Socket, Type};
                    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                    s.set_recv_buffer_size(4096).unwrap(); // inherited by the accepted socket
                    s.bind(
                        &"127.0.0.1:0"
                            .parse::<std::net::SocketAddr>()
                            .unwrap()
                            .into(),
                    )
                    .unwrap();
                    s.listen(8).unwrap();
                    std::net::TcpListener::from(s)
                };
                let addr = std_listener.local_addr().unwrap();
                // SAFETY: the descriptor moves from the std listener into glommio's.
                let listener =
                    unsafe { glommio::net::TcpListener::from_raw_fd(std_listener.into_raw_fd()) };
                let sender_conn = Conn::connect(addr, Duration::from_secs(2)).await.unwrap();
                sender_conn.set_send_buffer(4096).unwrap();
                let receiver_conn = Conn::new(listener.accept().await.unwrap()).unwrap();
                let ctx = Ctx {
                    plan: Arc::new(plan(spec)),
                    metrics: RefCell::new(Metrics::default()),
                };
                let start = now_ns();
                let schedule = Schedule::aligned(&[spec], start, start + 2000 * MS);
                let sender = async {
                    let sent = send(&ctx, &sender_conn, 0, Dir::Up, schedule).await;
                    sender_conn.shutdown_write();
                    sent
                };
                let receiver = async {
                    glommio::timer::sleep(Duration::from_secs(1)).await;
                    receive(&ctx, &receiver_conn, 0, Dir::Up, false, Vec::new()).await
                };
                let (sent, received) = futures_lite::future::zip(sender, receiver).await;
                sent.unwrap();
                received.unwrap();
                ctx.metrics.take().up
            })
            .unwrap();
        let up = h.join().unwrap();
        let lat = &up.latency;
        assert_eq!(up.messages, 200, "every due message is a sample");
        assert!(lat.max() >= 900 * MS, "max {} ms", lat.max() / MS);
        assert!(
            lat.value_at_quantile(0.75) >= 500 * MS,
            "p75 {} ms",
            lat.value_at_quantile(0.75) / MS
        );
    }
}
