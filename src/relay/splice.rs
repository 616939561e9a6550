//! The splice path: source socket -> leased pipe -> destination socket, bytes never in user
//! space.
//!
//! Each step fills the pipe from the source, then drains it completely into the destination
//! before filling again. That settles splice's EAGAIN ambiguity (empty source or full pipe?):
//! a fill always starts on an empty pipe, so EAGAIN there means the source is empty; a drain
//! always has bytes in the pipe, so EAGAIN there means the destination is full.
//!
//! Two ways to issue a splice ([`SpliceVia`]): `syscall` runs a non-blocking splice(2) on the
//! shard and waits for readiness through the shard ring; `ring` submits `IORING_OP_SPLICE`,
//! which the kernel always hands to an io-wq worker thread. ARCHITECTURE.md has the numbers
//! that chose the default.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use super::direction::Side;
use super::pipe_pool::PipeLease;
use crate::engine::runtime::Conn;
use crate::uring::{PollEvents, ShardRing};

/// `--splice-via`: how one splice is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpliceVia {
    /// Non-blocking splice(2) on the shard thread; readiness from the shard ring.
    Syscall,
    /// IORING_OP_SPLICE on the shard ring (executed by io-wq workers).
    Ring,
}

/// Outcome of one fill-and-drain step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceStep {
    /// This many bytes went from source to destination.
    Moved(usize),
    /// The source has nothing right now; the pipe is empty.
    SourceEmpty,
    /// The source reached EOF; the pipe is empty.
    Eof,
}

/// One fill of the pipe from `src`, drained fully into `dst`.
pub async fn splice_once(
    src: &Conn,
    dst: &Conn,
    lease: &mut PipeLease,
    ring: &Rc<ShardRing>,
    via: SpliceVia,
) -> Result<SpliceStep, (Side, io::Error)> {
    debug_assert_eq!(lease.buffered, 0, "a fill starts on an empty pipe");
    let (pipe_in, pipe_out, cap) = {
        let p = lease.pipe();
        (p.write_fd(), p.read_fd(), p.capacity())
    };
    let n = match issue(ring, via, src.fd(), pipe_in, cap).await {
        Ok(0) => return Ok(SpliceStep::Eof),
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(SpliceStep::SourceEmpty),
        Err(err) => return Err((Side::Source, err)),
    };
    lease.buffered = n;
    while lease.buffered > 0 {
        match issue(ring, via, pipe_out, dst.fd(), lease.buffered).await {
            Ok(0) => return Err((Side::Destination, io::ErrorKind::WriteZero.into())),
            Ok(m) => lease.buffered -= m,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => ring
                .ready(dst.fd(), PollEvents::Writable)
                .await
                .map_err(|err| (Side::Destination, err))?,
            Err(err) => return Err((Side::Destination, err)),
        }
    }
    Ok(SpliceStep::Moved(n))
}

async fn issue(
    ring: &Rc<ShardRing>,
    via: SpliceVia,
    fd_in: RawFd,
    fd_out: RawFd,
    len: usize,
) -> io::Result<usize> {
    let len = len.min(u32::MAX as usize);
    match via {
        SpliceVia::Ring => ring.splice(fd_in, fd_out, len as u32).await,
        SpliceVia::Syscall => loop {
            // SAFETY: splice(2) between descriptors owned by live Conns and a leased pipe;
            // null offsets (sockets and pipes have none); both sides are non-blocking.
            let n = unsafe {
                libc::splice(
                    fd_in,
                    std::ptr::null_mut(),
                    fd_out,
                    std::ptr::null_mut(),
                    len,
                    libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                )
            };
            if n >= 0 {
                break Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                break Err(err);
            }
        },
    }
}
