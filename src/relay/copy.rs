//! The copy path: one pooled buffer per read, leased only while it holds bytes.

use std::io;
use std::rc::Rc;
use std::task::Poll;

use super::buffer_pool::BufferPool;
use super::direction::Side;
use super::stream::read_ready;
use crate::engine::runtime::Conn;
use crate::uring::ShardRing;

/// Moves one read's worth of bytes from `src` to `dst`. Returns the count, 0 at EOF.
///
/// The buffer is taken only when a read is attempted and handed back if the socket has
/// nothing: an idle direction waits for readiness (on the shard ring) holding no buffer.
pub async fn copy_once(
    src: &Conn,
    dst: &Conn,
    pool: &BufferPool,
    ring: &Rc<ShardRing>,
) -> Result<usize, (Side, io::Error)> {
    let source = |err| (Side::Source, err);
    let (buf, n) = read_ready(src, ring, |read| {
        let mut buf = pool.take();
        match read(&mut buf) {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok((buf, n))),
            Poll::Ready(Err(err)) => {
                pool.give_back(buf);
                Poll::Ready(Err(err))
            }
            Poll::Pending => {
                pool.give_back(buf);
                Poll::Pending
            }
        }
    })
    .await
    .map_err(source)?
    .map_err(source)?;
    let written = if n > 0 {
        dst.write_all(&buf[..n]).await
    } else {
        Ok(())
    };
    pool.give_back(buf);
    written.map(|()| n).map_err(|err| (Side::Destination, err))
}
