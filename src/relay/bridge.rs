//! Relays a [`ByteStream`] client (TLS, WebSocket, sniffed) to its backend socket: both
//! directions by pooled-buffer copy, half-close passed on, an error on one side closing
//! both.

use std::io;
use std::task::Poll;

use futures_lite::future::{poll_fn, zip};

use super::buffer_pool::BufferPool;
use super::direction::Side;
use super::stream::ByteStream;
use crate::control::registry::{ByteTally, Live};

/// How a bridged session ended: bytes each way, and the first error if any.
#[derive(Debug)]
pub struct BridgeEnd {
    pub to_backend: u64,
    pub to_client: u64,
    pub error: Option<io::Error>,
}

/// Runs both directions between `client` and `backend` until both are done; bytes are
/// counted for the session and its shard as they go.
pub async fn bridge(
    client: &impl ByteStream,
    backend: &impl ByteStream,
    pool: &BufferPool,
    live: Live<'_>,
) -> BridgeEnd {
    let (a, b) = zip(
        direction(client, backend, pool, live.to_backend()),
        direction(backend, client, pool, live.to_client()),
    )
    .await;
    BridgeEnd {
        to_backend: live.to_backend().session_bytes(),
        to_client: live.to_client().session_bytes(),
        error: a.err().or(b.err()),
    }
}

/// Copies `src` to `dst` until EOF, then half-closes `dst`; on an error closes both.
async fn direction(
    src: &impl ByteStream,
    dst: &impl ByteStream,
    pool: &BufferPool,
    moved: ByteTally<'_>,
) -> io::Result<()> {
    let result = copy_until_eof(src, dst, pool, moved).await;
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
        let written = dst.write_all(&buf[..n]).await;
        pool.give_back(buf);
        written.map_err(|e| (Side::Destination, e))?;
        moved.add(n as u64);
    }
}
