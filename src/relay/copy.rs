//! The copy path: one pooled buffer per read, leased only while it holds bytes.

use std::io;
use std::task::Poll;

use futures_lite::future::poll_fn;

use super::buffer_pool::BufferPool;
use super::direction::Side;
use crate::engine::runtime::Conn;

/// Moves one read's worth of bytes from `src` to `dst`. Returns the count, 0 at EOF.
///
/// The buffer is taken only when a read is attempted and handed back if the socket has
/// nothing: an idle direction waits for readiness holding no buffer at all.
pub async fn copy_once(
    src: &Conn,
    dst: &Conn,
    pool: &BufferPool,
) -> Result<usize, (Side, io::Error)> {
    let (buf, n) = poll_fn(|cx| {
        let mut buf = pool.take();
        match src.poll_read(cx, &mut buf) {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok((buf, n))),
            Poll::Ready(Err(err)) => {
                pool.give_back(buf);
                Poll::Ready(Err((Side::Source, err)))
            }
            Poll::Pending => {
                pool.give_back(buf);
                Poll::Pending
            }
        }
    })
    .await?;
    let written = if n > 0 {
        dst.write_all(&buf[..n]).await
    } else {
        Ok(())
    };
    pool.give_back(buf);
    written.map(|()| n).map_err(|err| (Side::Destination, err))
}
