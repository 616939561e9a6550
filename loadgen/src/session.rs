//! Client side of one session: wait for its slot in the ramp, connect (through the relay,
//! or straight to the backends), announce the session, then send upstream on schedule while
//! verifying downstream until both ends close.

use std::rc::Rc;

use crate::flow::{self, Dir, FlowError};
use crate::metrics::Sent;
use crate::net::{before, now_ns, sleep_until, Conn};
use crate::schedule::Schedule;
use crate::worker::Ctx;

/// Runs session `id` to its end, recording into the worker's metrics.
pub async fn run_client(ctx: Rc<Ctx>, id: u32) {
    let plan = &ctx.plan;
    sleep_until(plan.start_ns + (id as f64 / plan.ramp * 1e9) as u64).await;
    let t0 = now_ns();
    let mut t1 = t0;
    let opened = match Conn::connect(plan.connect_to, plan.connect_timeout).await {
        Ok(conn) => {
            t1 = now_ns();
            match plan.protocol.client_open(&conn, id).await {
                Ok(()) => Ok(conn),
                Err(e) => Err(format!("set-up: {}", e.kind())),
            }
        }
        Err(e) => Err(format!("connect: {}", e.kind())),
    };
    let conn = match opened {
        Ok(c) => c,
        Err(reason) => {
            ctx.metrics.borrow_mut().fail(reason);
            Sent::add(&plan.sent.clients_done, 1);
            return;
        }
    };
    {
        let mut m = ctx.metrics.borrow_mut();
        m.connect.saturating_record((t1 - t0).max(1));
        m.handshake.saturating_record((now_ns() - t1).max(1));
        m.opened += 1;
    }

    let schedule = Schedule::new(&plan.profile.up, now_ns(), plan.end_ns, seed(id, Dir::Up));
    let sender = flow::send_or_record(&ctx, &conn, id, Dir::Up, schedule, "client");
    let receiver = async {
        let r = before(
            plan.hard_deadline_ns,
            flow::receive(&ctx, &conn, id, Dir::Down, false),
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
    Sent::add(&plan.sent.clients_done, 1);
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
