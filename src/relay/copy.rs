//! The copy path: one pooled buffer per read, leased only while it holds bytes.

use std::io;

use std::rc::Rc;

use super::buffer_pool::BufferPool;
use super::direction::Side;
use crate::engine::runtime::Conn;
use crate::uring::{PollEvents, ShardRing};

/// Moves one read's worth of bytes from `src` to `dst`. Returns the count, 0 at EOF.
///
/// The buffer is taken only when a read is attempted and handed back if the socket has
/// nothing: an idle direction waits for readiness holding no buffer at all.
pub async fn copy_once(
    src: &Conn,
    dst: &Conn,
    pool: &BufferPool,
    ring: &Rc<ShardRing>,
) -> Result<usize, (Side, io::Error)> {
    let (buf, n) = loop {
        let mut buf = pool.take();
        match src.try_read(&mut buf) {
            Some(Ok(n)) => break (buf, n),
            Some(Err(err)) => {
                pool.give_back(buf);
                return Err((Side::Source, err));
            }
            None => {
                pool.give_back(buf);
                ring.ready(src.fd(), PollEvents::Readable)
                    .await
                    .map_err(|e| (Side::Source, e))?;
            }
        }
    };
    let written = if n > 0 {
        dst.write_all(&buf[..n]).await
    } else {
        Ok(())
    };
    pool.give_back(buf);
    written.map(|()| n).map_err(|err| (Side::Destination, err))
}
