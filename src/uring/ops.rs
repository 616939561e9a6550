//! The operations a shard submits to its [`ShardRing`]: readiness polls and splices.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::{opcode, types};

use super::ShardRing;

/// Readiness a poll waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollEvents {
    Readable,
    Writable,
}

impl PollEvents {
    fn mask(self) -> u32 {
        // Errors and hang-ups always complete a poll, whatever the mask says.
        match self {
            PollEvents::Readable => (libc::POLLIN | libc::POLLRDHUP) as u32,
            PollEvents::Writable => libc::POLLOUT as u32,
        }
    }
}

impl ShardRing {
    /// Waits until `fd` is ready for `events` (or has an error or hang-up).
    pub async fn ready(self: &Rc<Self>, fd: RawFd, events: PollEvents) -> io::Result<()> {
        let op = opcode::PollAdd::new(types::Fd(fd), events.mask()).build();
        self.submit(op)?.await.map(drop)
    }

    /// `IORING_OP_SPLICE` of up to `len` bytes from `fd_in` to `fd_out` (one must be a pipe).
    /// The kernel runs it on an io-wq worker; `SPLICE_F_NONBLOCK` keeps that worker from
    /// blocking on a full or empty pipe.
    pub async fn splice(
        self: &Rc<Self>,
        fd_in: RawFd,
        fd_out: RawFd,
        len: u32,
    ) -> io::Result<usize> {
        let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
        let op = opcode::Splice::new(types::Fd(fd_in), -1, types::Fd(fd_out), -1, len)
            .flags(flags)
            .build();
        self.submit(op)?.await
    }
}

/// The completion of one submitted operation: `Ok(result)` or the kernel's error.
/// Dropping it before completion cancels the operation.
pub struct RingOp {
    ring: Rc<ShardRing>,
    slot: u32,
    done: bool,
}

impl RingOp {
    pub(super) fn new(ring: Rc<ShardRing>, slot: u32) -> Self {
        Self {
            ring,
            slot,
            done: false,
        }
    }
}

impl Future for RingOp {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.ring.poll_slot(self.slot, cx.waker()) {
            None => Poll::Pending,
            Some(res) => {
                self.done = true;
                Poll::Ready(if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else {
                    Ok(res as usize)
                })
            }
        }
    }
}

impl Drop for RingOp {
    fn drop(&mut self) {
        if !self.done {
            self.ring.abandon(self.slot);
        }
    }
}
