//! [`ByteStream`]: what a front door needs of a client connection, whatever carries it
//! (plain TCP, a connection whose first bytes were already read by the sniffer, WebSocket
//! binary frames, TLS). The xpra door is written against it, so xpra over TCP, over
//! WebSocket and over TLS are one code path.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;

use crate::engine::runtime::Conn;
use crate::uring::{PollEvents, ShardRing};

/// A bidirectional byte stream of one session, used from one task.
pub trait ByteStream {
    /// Reads what is available into `buf` (0 at EOF), or registers the task for readiness.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes all of `buf`.
    fn write_all(&self, buf: &[u8]) -> impl Future<Output = io::Result<()>>;
    /// Ends our sending side (the peer reads EOF), at the transport level, now.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Ends our sending side the way the protocol says goodbye (a WebSocket close frame,
    /// a TLS close_notify), then the transport's.
    fn close_write(&self) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.shutdown_write())
    }
    /// Ends our sending side because the relay gives up on the session (the idle timeout):
    /// a WebSocket close 1001 (going away) with `reason`; elsewhere [`Self::close_write`].
    fn close_going_away(&self, reason: &str) -> impl Future<Output = io::Result<()>> {
        let _ = reason;
        self.close_write()
    }
    /// Stops reading: a pending read wakes with EOF; writing still works.
    fn shutdown_read(&self);
    /// Ends both sides now.
    fn shutdown_both(&self);
    /// Whether the peer is on this host (loopback or unix socket): `xor` digests need it.
    fn is_local(&self) -> bool;
    /// Whether the stream is encrypted (TLS): `xor` digests and HSTS need it.
    fn is_tls(&self) -> bool {
        false
    }
    /// Bytes the peer's TCP has acknowledged so far, where the transport is TCP: a peer
    /// whose count moves is still there (heartbeats use it).
    fn bytes_acked(&self) -> Option<u64> {
        None
    }
    /// Reads what the stream holds now without waiting: `None` when it holds nothing, or
    /// when the stream is not read straight off a socket (see [`Self::ready_fd`]).
    fn try_read(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let _ = buf;
        None
    }
    /// The socket to wait on when [`Self::try_read`] found nothing, for streams read
    /// straight off their socket (TCP, unix); `None` for streams with state above their
    /// socket (TLS, WebSocket), which are read through [`Self::poll_read`].
    fn ready_fd(&self) -> Option<RawFd> {
        None
    }
}

/// The reader [`read_ready`] hands its attempt: fills a buffer, or is not ready yet.
pub type Read<'a> = dyn FnMut(&mut [u8]) -> Poll<io::Result<usize>> + 'a;

/// Runs `attempt` until it is ready, handing it a reader of `stream`. A stream read
/// straight off its socket is read with recv(2) and, when empty, waits on the shard ring
/// (no reactor turn per read: ARCHITECTURE.md, "Why the copy path waits on the shard
/// ring"); other streams are read through their `poll_read`. The attempt owns the buffer
/// it reads into, so it can lease one per attempt and give it back when nothing came.
pub async fn read_ready<T>(
    stream: &impl ByteStream,
    ring: &Rc<ShardRing>,
    mut attempt: impl FnMut(&mut Read<'_>) -> Poll<T>,
) -> io::Result<T> {
    loop {
        let Some(fd) = stream.ready_fd() else {
            return Ok(poll_fn(|cx| attempt(&mut |buf| stream.poll_read(cx, buf))).await);
        };
        let mut read = |buf: &mut [u8]| match stream.try_read(buf) {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        };
        if let Poll::Ready(done) = attempt(&mut read) {
            return Ok(done);
        }
        ring.ready(fd, PollEvents::Readable).await?;
    }
}

impl ByteStream for Conn {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Conn::poll_read(self, cx, buf)
    }

    fn write_all(&self, buf: &[u8]) -> impl Future<Output = io::Result<()>> {
        Conn::write_all(self, buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        Conn::shutdown_write(self)
    }

    fn shutdown_read(&self) {
        Conn::shutdown_read(self)
    }

    fn shutdown_both(&self) {
        Conn::shutdown_both(self)
    }

    fn is_local(&self) -> bool {
        Conn::is_local(self)
    }

    fn bytes_acked(&self) -> Option<u64> {
        Conn::bytes_acked(self)
    }

    fn try_read(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        Conn::try_read(self, buf)
    }

    fn ready_fd(&self) -> Option<RawFd> {
        Some(self.fd())
    }
}

/// A stream whose first bytes were already read (by the sniffer): they are read again
/// first, then the stream itself.
pub struct Prefixed<S> {
    prefix: RefCell<Vec<u8>>,
    taken: Cell<usize>,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix: RefCell::new(prefix),
            taken: Cell::new(0),
            inner,
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S> Prefixed<S> {
    /// Copies the next of the prefix into `buf`; None once it is all replayed.
    fn replay(&self, buf: &mut [u8]) -> Option<usize> {
        let mut prefix = self.prefix.borrow_mut();
        let taken = self.taken.get();
        if taken >= prefix.len() {
            return None;
        }
        let n = (prefix.len() - taken).min(buf.len());
        buf[..n].copy_from_slice(&prefix[taken..taken + n]);
        self.taken.set(taken + n);
        if taken + n == prefix.len() {
            // Replayed in full: the memory goes back now, not at the session's end.
            *prefix = Vec::new();
            self.taken.set(0);
        }
        Some(n)
    }
}

impl<S: ByteStream> ByteStream for Prefixed<S> {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.replay(buf) {
            Some(n) => Poll::Ready(Ok(n)),
            None => self.inner.poll_read(cx, buf),
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        match self.replay(buf) {
            Some(n) => Some(Ok(n)),
            None => self.inner.try_read(buf),
        }
    }

    fn ready_fd(&self) -> Option<RawFd> {
        self.inner.ready_fd()
    }

    fn write_all(&self, buf: &[u8]) -> impl Future<Output = io::Result<()>> {
        self.inner.write_all(buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn close_write(&self) -> impl Future<Output = io::Result<()>> {
        self.inner.close_write()
    }

    fn close_going_away(&self, reason: &str) -> impl Future<Output = io::Result<()>> {
        self.inner.close_going_away(reason)
    }

    fn shutdown_read(&self) {
        self.inner.shutdown_read()
    }

    fn shutdown_both(&self) {
        self.inner.shutdown_both()
    }

    fn is_local(&self) -> bool {
        self.inner.is_local()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }

    fn bytes_acked(&self) -> Option<u64> {
        self.inner.bytes_acked()
    }
}
