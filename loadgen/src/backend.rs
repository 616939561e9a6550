//! Simulated desktop backends: every worker accepts on the shared backend listener; each
//! accepted connection learns its session from the protocol set-up, then sends downstream
//! on schedule (or echoes) while verifying upstream.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;

use crate::cli::{ProfileKind, Protocol};
use crate::flow::{self, Dir, FlowError};
use crate::metrics::Sent;
use crate::net::{before, now_ns, Conn};
use crate::schedule::Schedule;
use crate::session::{record, seed};
use crate::worker::Ctx;

/// Accepts backend connections until the worker stops.
pub async fn accept_loop(ctx: Rc<Ctx>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                // Counted before the task starts, so the worker cannot miss it when it checks.
                Sent::add(&ctx.plan.sent.backends_open, 1);
                glommio::spawn_local(serve(Rc::clone(&ctx), stream)).detach();
            }
            Err(e) => {
                ctx.metrics
                    .borrow_mut()
                    .error("backend accept", format!("backend accept: {e}"));
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Decrements the open-backend count however the task ends.
struct OpenGuard<'a>(&'a Ctx);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0
            .plan
            .sent
            .backends_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn serve(ctx: Rc<Ctx>, stream: glommio::net::TcpStream) {
    let _guard = OpenGuard(&ctx);
    let plan = &ctx.plan;
    let conn = match Conn::new(stream) {
        Ok(c) => c,
        Err(e) => {
            return ctx
                .metrics
                .borrow_mut()
                .error("backend set-up", e.to_string())
        }
    };
    let round_trip = plan.profile.kind == ProfileKind::Handshake;
    let open = plan.protocol.backend_open(&conn, round_trip);
    let (id, leftover) = match before(plan.hard_deadline_ns, open).await {
        Some(Ok(Some(opened))) => opened,
        Some(Ok(None)) => return,
        Some(Err(e)) => {
            let kind = format!("backend {}", e.reason());
            return ctx
                .metrics
                .borrow_mut()
                .error(&kind, format!("backend set-up: {e}"));
        }
        None => return,
    };
    let echo = plan.profile.echo;
    if plan.profile.kind == ProfileKind::Handshake {
        // The client closes first, as a client leaving does; it sends nothing more.
        if let Some(Err(e)) = before(
            plan.hard_deadline_ns,
            until_closed(&conn, &leftover, plan.protocol),
        )
        .await
        {
            record(&ctx, "backend receive", id, &e);
        }
        return;
    }
    // The backend ends its direction only once upstream has ended: then the client, which
    // closes first, has everything it sent delivered when it sees that end.
    let sender = async {
        if echo {
            return true;
        }
        let schedule = Schedule::new(
            &plan.profile.down,
            now_ns(),
            plan.end_ns,
            seed(id, Dir::Down),
        );
        flow::send_or_record(&ctx, &conn, id, Dir::Down, schedule, "backend", false).await
    };
    let receiver = async {
        let received = before(
            plan.hard_deadline_ns,
            flow::receive(&ctx, &conn, id, Dir::Up, echo, leftover),
        );
        match received.await {
            Some(Ok(())) => return true,
            Some(Err(e)) => record(&ctx, "backend receive", id, &e),
            None => ctx.metrics.borrow_mut().error(
                "backend receive: timed out",
                format!("session {id}: upstream did not end by the deadline"),
            ),
        }
        conn.shutdown_both();
        false
    };
    if futures_lite::future::zip(sender, receiver).await != (true, true) {
        return;
    }
    if let Err(e) = plan.protocol.end_stream(&conn, Dir::Down, id).await {
        return flow::send_failed(&ctx, &conn, id, "backend", &e);
    }
    // xpra, ws: the client closes once it has read our end; wait for that.
    if plan.protocol.backend_waits_for_close() {
        if let Some(Err(e)) = before(
            plan.hard_deadline_ns,
            until_closed(&conn, &[], plan.protocol),
        )
        .await
        {
            record(&ctx, "backend receive", id, &e);
        }
    }
}

/// Waits for the client to leave. A raw peer sends nothing more: any byte is an error. An
/// xpra relay may: xpra's own proxy tells the server `disconnect` when the client leaves.
async fn until_closed(conn: &Conn, leftover: &[u8], protocol: Protocol) -> Result<(), FlowError> {
    let after_end =
        |what: String| FlowError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, what));
    if protocol == Protocol::Xpra {
        return crate::xpra::until_disconnect(conn, leftover)
            .await
            .map_err(|e| after_end(e.to_string()));
    }
    let mut b = [0u8; 64];
    if leftover.is_empty() && conn.read(&mut b).await? == 0 {
        return Ok(());
    }
    Err(after_end("data after the end of the session".into()))
}
