//! Relays a [`ByteStream`] client (TLS, WebSocket, sniffed) to its backend socket: both
//! directions by pooled-buffer copy, half-close passed on, an error on one side closing
//! both, and a session quiet for the idle timeout closed with the client's own goodbye
//! ([`ByteStream::close_going_away`]: a WebSocket close 1001) when its stream allows one.

use std::io;
use std::task::Poll;
use std::time::Duration;

use futures_lite::future::{or, poll_fn, zip};

use super::buffer_pool::BufferPool;
use super::direction::Side;
use super::idle::{Activity, Meter, GOODBYE};
use super::stream::ByteStream;
use crate::control::registry::{ByteTally, Live};
use crate::engine::runtime::within;

/// How a bridged session ended: bytes each way, and the first error if any.
#[derive(Debug)]
pub struct BridgeEnd {
    pub to_backend: u64,
    pub to_client: u64,
    pub error: Option<io::Error>,
    /// Closed after this long with nothing moving (the idle timeout).
    pub idle: Option<Duration>,
}

/// Runs both directions between `client` and `backend` until both are done, or until
/// nothing has moved for `idle_timeout`; bytes are counted for the session and its shard
/// as they go.
pub async fn bridge(
    client: &impl ByteStream,
    backend: &impl ByteStream,
    pool: &BufferPool,
    idle_timeout: Option<Duration>,
    live: Live<'_>,
) -> BridgeEnd {
    let activity = Activity::default();
    let up = Meter::new(&activity);
    let down = Meter::new(&activity);
    let both = async {
        Some(
            zip(
                direction(client, backend, pool, &up, live.to_backend()),
                direction(backend, client, pool, &down, live.to_client()),
            )
            .await,
        )
    };
    let quiet = async {
        activity.quiet_for(idle_timeout).await;
        None
    };
    let (error, idle) = match or(both, quiet).await {
        Some((a, b)) => (a.err().or(b.err()), None),
        None => {
            // A client write cut short may have left half a message (a WebSocket frame, a
            // TLS record): then no goodbye can follow it.
            if !down.mid_write() {
                let _ = within(GOODBYE, client.close_going_away("idle timeout")).await;
            }
            client.shutdown_both();
            backend.shutdown_both();
            (None, idle_timeout)
        }
    };
    BridgeEnd {
        to_backend: live.to_backend().session_bytes(),
        to_client: live.to_client().session_bytes(),
        error,
        idle,
    }
}

/// Copies `src` to `dst` until EOF, then half-closes `dst`; on an error closes both.
async fn direction(
    src: &impl ByteStream,
    dst: &impl ByteStream,
    pool: &BufferPool,
    meter: &Meter<'_>,
    moved: ByteTally<'_>,
) -> io::Result<()> {
    let result = copy_until_eof(src, dst, pool, meter, moved).await;
    match &result {
        Ok(()) => {
            let _ = dst.close_write().await;
        }
        Err((side, _)) => {
            if *side == Side::Source {
                // A WebSocket client hears its close code (1002, 1003, 1009) before the end.
                let _ = src.close_write().await;
            }
            src.shutdown_both();
            dst.shutdown_both();
        }
    }
    result.map_err(|(_, e)| e)
}

async fn copy_until_eof(
    src: &impl ByteStream,
    dst: &impl ByteStream,
    pool: &BufferPool,
    meter: &Meter<'_>,
    moved: ByteTally<'_>,
) -> Result<(), (Side, io::Error)> {
    loop {
        // The buffer is held only while it has bytes, as on the plain copy path.
        let (buf, n) = poll_fn(|cx| {
            let mut buf = pool.take();
            match src.poll_read(cx, &mut buf) {
                Poll::Ready(Ok(n)) => Poll::Ready(Ok((buf, n))),
                Poll::Ready(Err(e)) => {
                    pool.give_back(buf);
                    Poll::Ready(Err((Side::Source, e)))
                }
                Poll::Pending => {
                    pool.give_back(buf);
                    Poll::Pending
                }
            }
        })
        .await?;
        if n == 0 {
            pool.give_back(buf);
            return Ok(());
        }
        meter.read();
        let written = meter.write(dst, &buf[..n]).await;
        pool.give_back(buf);
        written.map_err(|e| (Side::Destination, e))?;
        moved.add(n as u64);
    }
}
