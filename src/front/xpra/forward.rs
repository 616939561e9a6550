//! The data phase of an xpra session: both directions through a [`Gate`], bytes written
//! straight from the read buffer, watched packets handed to the session.
//!
//! Reads use the shard's pooled buffers exactly like the L4 copy path (a buffer is held
//! only while it has bytes, and a plain socket waits for readiness on the shard ring), so
//! an idle xpra session holds no buffer either. The only
//! per-direction memory is `carry`: the few bytes of a frame header or type prefix split
//! across reads, or a watched packet (info, disconnect) being gathered.

use std::io;
use std::task::Poll;

use super::gate::{Gate, Step};
use crate::control::registry::ByteTally;
use crate::relay::buffer_pool::BufferPool;
use crate::relay::direction::{DataPath, Side};
use crate::relay::idle::Meter;
use crate::relay::stream::{read_ready, ByteStream};
use crate::xpra::ProtocolError;

/// Capacity the carry may keep while empty.
const CARRY_KEEP: usize = 4096;

/// What the session wants done with a watched frame.
pub enum Verdict {
    /// Forward the frame as it came.
    Forward,
    /// Forward these bytes instead (a rewritten packet, header included).
    Replace(Vec<u8>),
    /// Forward the frame, then end this direction (a `disconnect`).
    ForwardAndEnd,
    /// Do not forward it.
    Drop,
}

/// Why a direction ended.
#[derive(Debug)]
pub enum ForwardEnd {
    /// The source closed cleanly.
    Eof,
    /// A watched packet ended it (`disconnect`).
    Ended,
}

/// A failed direction: which side, and why.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{side:?} socket: {error}")]
    Io { side: Side, error: io::Error },
    #[error("protocol error from the source: {0}")]
    Protocol(#[from] ProtocolError),
}

/// Where a direction's writes are seen: the session's activity (for the idle timeout) and
/// its byte counters (the session's and its shard's).
#[derive(Clone, Copy)]
pub struct Written<'a> {
    pub meter: &'a Meter<'a>,
    pub bytes: ByteTally<'a>,
}

/// Relays frames from `src` to `dst` through `gate` until EOF or a verdict ends it,
/// starting with `carry` (bytes already read from `src`). `on_watched` gets each watched
/// frame whole; `written` sees what was written to `dst`.
pub async fn forward(
    src: &impl ByteStream,
    dst: &impl ByteStream,
    gate: &mut Gate,
    dp: &DataPath,
    mut carry: Vec<u8>,
    mut on_watched: impl FnMut(&str, &[u8]) -> Verdict,
    written: Written<'_>,
) -> Result<ForwardEnd, ForwardError> {
    let Written { meter, bytes } = written;
    let pool = &dp.buffers;
    let mut steps = Vec::new();
    loop {
        let (mut buf, n) = read_after(src, dp, &carry).await?;
        if n == 0 {
            recycle(pool, buf);
            return Ok(ForwardEnd::Eof);
        }
        meter.read();
        // The carry was copied in front of the new bytes; it is consumed from here on.
        let filled = carry.len() + n;
        carry.clear();
        let input = &mut buf[..filled];
        steps.clear();
        let done = match gate.feed(input, &mut steps) {
            Ok(done) => done,
            Err(err) => {
                recycle(pool, buf);
                return Err(err.into());
            }
        };
        let mut end = false;
        for step in &steps {
            let result = match step {
                Step::Pass(range) => write(dst, &input[range.clone()], meter, bytes).await,
                Step::Watched { kind, frame } => {
                    let raw = &input[frame.clone()];
                    match on_watched(kind, raw) {
                        Verdict::Forward => write(dst, raw, meter, bytes).await,
                        Verdict::Replace(frame) => write(dst, &frame, meter, bytes).await,
                        Verdict::ForwardAndEnd => {
                            end = true;
                            write(dst, raw, meter, bytes).await
                        }
                        Verdict::Drop => Ok(()),
                    }
                }
            };
            if let Err(err) = result {
                recycle(pool, buf);
                return Err(err);
            }
            if end {
                break;
            }
        }
        carry.extend_from_slice(&input[done..]);
        if carry.is_empty() && carry.capacity() > CARRY_KEEP {
            // It held a big watched packet once; an idle session should not keep that.
            carry = Vec::new();
        }
        recycle(pool, buf);
        if end {
            return Ok(ForwardEnd::Ended);
        }
    }
}

async fn write(
    dst: &impl ByteStream,
    bytes: &[u8],
    meter: &Meter<'_>,
    counter: ByteTally<'_>,
) -> Result<(), ForwardError> {
    meter
        .write(dst, bytes)
        .await
        .map_err(|error| ForwardError::Io {
            side: Side::Destination,
            error,
        })?;
    counter.add(bytes.len() as u64);
    Ok(())
}

/// Reads once into a pooled buffer, after a copy of `carry`. A carry larger than half a
/// buffer (a big watched packet being gathered) gets a buffer of its own size instead.
async fn read_after(
    src: &impl ByteStream,
    dp: &DataPath,
    carry: &[u8],
) -> Result<(Box<[u8]>, usize), ForwardError> {
    let pool = &dp.buffers;
    let grow = carry.len() * 2 > pool.buffer_size();
    let source = |error| ForwardError::Io {
        side: Side::Source,
        error,
    };
    read_ready(src, &dp.ring, |read| {
        let mut buf = if grow {
            vec![0u8; carry.len() * 2].into_boxed_slice()
        } else {
            pool.take()
        };
        buf[..carry.len()].copy_from_slice(carry);
        let outcome = read(&mut buf[carry.len()..]);
        match outcome {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok((buf, n))),
            Poll::Ready(Err(error)) => {
                recycle(pool, buf);
                Poll::Ready(Err(source(error)))
            }
            Poll::Pending => {
                recycle(pool, buf);
                Poll::Pending
            }
        }
    })
    .await
    .map_err(source)?
}

/// Returns a pool buffer to its pool; a one-off larger buffer is just freed.
fn recycle(pool: &BufferPool, buf: Box<[u8]>) {
    if buf.len() == pool.buffer_size() {
        pool.give_back(buf);
    }
}
