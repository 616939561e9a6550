//! Client side of one session: wait for its slot in the ramp, connect (through the relay,
//! or straight to the backends), set the session up (the protocol's handshake), then send
//! upstream on schedule while verifying downstream until both ends close. In the handshake
//! profile a session instead connects, sets up and closes over and over.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use crate::cli::ProfileKind;
use crate::flow::{self, Dir, FlowError};
use crate::metrics::Sent;
use crate::net::{before, now_ns, sleep_until, Conn};
use crate::schedule::Schedule;
use crate::worker::Ctx;

/// How long the protocol's set-up may take after connect.
const SETUP_TIMEOUT_NS: u64 = 30_000_000_000;

/// Runs session `id` to its end, recording into the worker's metrics.
pub async fn run_client(ctx: Rc<Ctx>, id: u32) {
    let plan = &ctx.plan;
    sleep_until(plan.start_ns + (id as f64 / plan.ramp * 1e9) as u64).await;
    if plan.profile.kind == ProfileKind::Handshake {
        handshakes(&ctx, id).await;
        Sent::add(&plan.sent.clients_done, 1);
        return;
    }
    let (conn, leftover) = match open(&ctx, id).await {
        Ok(opened) => opened,
        Err(reason) => {
            ctx.metrics.borrow_mut().fail(reason);
            Sent::add(&plan.sent.clients_done, 1);
            return;
        }
    };

    let schedule = Schedule::new(&plan.profile.up, now_ns(), plan.end_ns, seed(id, Dir::Up));
    let sender = flow::send_or_record(&ctx, &conn, id, Dir::Up, schedule, "client", true);
    let receiver = async {
        let r = before(
            plan.hard_deadline_ns,
            flow::receive(&ctx, &conn, id, Dir::Down, false, leftover),
        );
        // At a clean end of downstream the sender may still be writing its last messages:
        // only a failure ends the whole connection.
        match r.await {
            Some(Ok(())) => return,
            Some(Err(e)) => record(&ctx, "client receive", id, &e),
            None => ctx.metrics.borrow_mut().error(
                "client receive: timed out",
                format!("session {id}: downstream did not end by the deadline"),
            ),
        }
        conn.shutdown_both();
    };
    futures_lite::future::zip(sender, receiver).await;
    plan.protocol.client_close(&conn).await;
    Sent::add(&plan.sent.clients_done, 1);
}

/// Connects and sets the session up, recording the connect and handshake times and the
/// session as opened. Returns the connection and the bytes read past the set-up, or the
/// reason it failed.
async fn open(ctx: &Ctx, id: u32) -> Result<(Conn, Vec<u8>), String> {
    let plan = &ctx.plan;
    let t0 = now_ns();
    let conn = Conn::connect(plan.connect_to, plan.connect_timeout)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let t1 = now_ns();
    let round_trip = plan.profile.kind == ProfileKind::Handshake;
    let setup =
        plan.protocol
            .client_open(&conn, id, plan.credential(id), plan.connect_to, round_trip);
    let leftover = match before(t1 + SETUP_TIMEOUT_NS, setup).await {
        Some(Ok(leftover)) => leftover,
        Some(Err(e)) => return Err(e.reason()),
        None => return Err("set-up: timed out".into()),
    };
    let mut m = ctx.metrics.borrow_mut();
    m.connect.saturating_record((t1 - t0).max(1));
    m.handshake.saturating_record((now_ns() - t1).max(1));
    m.opened += 1;
    Ok((conn, leftover))
}

/// The handshake profile: connect, set up, close, again, until the run's end or its
/// handshake budget; the first failure ends the loop.
async fn handshakes(ctx: &Ctx, id: u32) {
    let plan = &ctx.plan;
    while now_ns() < plan.end_ns
        && plan.sent.handshakes.fetch_add(1, Ordering::Relaxed) < plan.max_handshakes
    {
        match open(ctx, id).await {
            // Dropping the connection closes it, as a client leaving does.
            Ok((conn, _)) => drop(conn),
            Err(reason) => {
                ctx.metrics.borrow_mut().fail(reason);
                return;
            }
        }
    }
}

/// Records a direction's failure under "`side`: kind".
pub fn record(ctx: &Ctx, side: &str, id: u32, e: &FlowError) {
    ctx.metrics.borrow_mut().error(
        &format!("{side}: {}", e.kind()),
        format!("session {id}, {side}: {e}"),
    );
}

/// Seed of the schedule of one direction of one session.
pub fn seed(id: u32, dir: Dir) -> u64 {
    (id as u64) << 1 | (dir == Dir::Down) as u64
}
