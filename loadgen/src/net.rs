//! glommio plumbing: the run's monotonic clock, timers, and one TCP connection shared by the
//! two directions of a session (a `RefCell` borrowed for one poll, never across an await).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the run's epoch (the first call), the same for every thread.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Sleeps on the executor's timer until the clock reads `due_ns` (at once if past).
pub async fn sleep_until(due_ns: u64) {
    let now = now_ns();
    if due_ns > now {
        glommio::timer::sleep(Duration::from_nanos(due_ns - now)).await;
    }
}

/// `Some(output)` if `fut` finishes before the clock reads `deadline_ns`.
pub async fn before<T>(deadline_ns: u64, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        sleep_until(deadline_ns).await;
        None
    })
    .await
}

/// A connected socket, usable by one reader task and one writer task at once.
pub struct Conn {
    stream: RefCell<TcpStream>,
}

impl Conn {
    /// Connects to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(io::Error::from)?;
        Self::new(stream)
    }

    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true).map_err(io::Error::from)?;
        Ok(Self {
            stream: RefCell::new(stream),
        })
    }

    /// Reads what is available (0 at end of stream).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::future::poll_fn(|cx| {
            Pin::new(&mut *self.stream.borrow_mut()).poll_read(cx, buf)
        })
        .await
    }

    /// Reads exactly `buf.len()` bytes.
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = futures_lite::future::poll_fn(|cx| {
                Pin::new(&mut *self.stream.borrow_mut()).poll_write(cx, buf)
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Shrinks the kernel send buffer (tests that need a blocked sender).
    #[cfg(test)]
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        socket2::SockRef::from(&*self.stream.borrow()).set_send_buffer_size(bytes)
    }

    /// Sends FIN: the peer reads end of stream.
    pub fn shutdown_write(&self) {
        let _ = shutdown(&self.stream.borrow(), libc::SHUT_WR);
    }

    /// Ends both directions (wakes a pending read or write).
    pub fn shutdown_both(&self) {
        let _ = shutdown(&self.stream.borrow(), libc::SHUT_RDWR);
    }
}

fn shutdown(stream: &TcpStream, how: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: shutdown(2) on the descriptor of a live stream.
    if unsafe { libc::shutdown(stream.as_raw_fd(), how) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
