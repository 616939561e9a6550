//! Everything glommio: executors, tasks, timers, TCP and unix streams. No other module names glommio.
//!
//! Keeping the executor behind this file means the pinned glommio version (0.9, quiet
//! upstream) can be swapped for a fork or another runtime by rewriting one file.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::AsyncRead;
use glommio::io::BufferedFile;
use glommio::net::{TcpStream, UnixStream};
pub use glommio::PoolThreadHandles;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};

/// A shard's listening socket: non-blocking, with `TCP_NODELAY` set so that every
/// connection accepted from it starts with it (Linux copies it to the accepted socket).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// glommio registers this much memory per executor for direct file I/O, which the relay does
/// not use; the default (10 MiB) would be pinned memory for nothing.
const IO_MEMORY: usize = 256 * 1024;
/// Depth of glommio's own rings: every idle session keeps a readiness poll there.
const RING_DEPTH: usize = 1024;

/// Starts `shards` pinned executors, each running the future `make()` returns.
pub fn start_shards<G, F>(shards: usize, make: G) -> io::Result<PoolThreadHandles<()>>
where
    G: FnOnce() -> F + Clone + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let cpus = CpuSet::online().map_err(io::Error::from)?;
    // One executor per CPU, spread as far apart as the topology allows; asked for more
    // shards than CPUs, they share the online set unpinned to a single CPU.
    let placement = if shards <= cpus.len() {
        PoolPlacement::MaxSpread(shards, Some(cpus))
    } else {
        PoolPlacement::Fenced(shards, cpus)
    };
    LocalExecutorPoolBuilder::new(placement)
        .name("shard")
        .io_memory(IO_MEMORY)
        .ring_depth(RING_DEPTH)
        .on_all_shards(make)
        .map_err(io::Error::from)
}

/// How long an executor with work in hand may sleep at most; see [`wakeup_tick`].
const TICK: Duration = Duration::from_millis(5);
/// The same for one with nothing to do but wait for new connections.
const IDLE_TICK: Duration = Duration::from_millis(50);

/// Wakes the executor every [`TICK`] while `busy()` (every [`IDLE_TICK`] otherwise), until
/// `busy` returns None: glommio 0.9 can put an executor to sleep while one of its tasks
/// is runnable. Its run loop reads "preempted before running anything" (a completion
/// pending on its latency ring, which it reaps itself) as "nothing to run" and parks;
/// the task then waits for the executor's next I/O completion or timer. A shard whose
/// sessions all wait on the shard ring has none coming: the task that reaps that ring was
/// runnable and never ran, and the shard slept for good (seen: 250 sessions frozen, their
/// readiness completions posted, one run in five at 500 sessions with `--data-path copy`);
/// with other I/O around, the same stall lasted until it came (the 70-150 ms p99 tails of
/// one run in three). glommio's own repository has the fix, no release has; until one
/// does, this tick bounds any such stall. Each wake-up of a sleeping executor costs about
/// 0.1 ms of CPU on this VM (glommio issues a membarrier before it sleeps), hence 5 ms
/// rather than less, and the slower tick for a shard without sessions.
pub async fn wakeup_tick(busy: impl Fn() -> Option<bool>) {
    while let Some(busy) = busy() {
        sleep(if busy { TICK } else { IDLE_TICK }).await;
    }
}

/// Runs `fut` to completion on a fresh single executor on this thread (tests and tools).
pub fn block_on<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::default()
        .io_memory(IO_MEMORY)
        .make()
        .expect("a local executor")
        .run(fut)
}

/// `host:port` as a socket address. Literal addresses at once; names through the shard's
/// blocking-thread pool, so a slow resolver stalls this lookup, not the shard's sessions.
pub async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
    {
        return Some(SocketAddr::new(ip, port));
    }
    let host = host.to_owned();
    glommio::executor()
        .spawn_blocking(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .ok()?
                .next()
        })
        .await
}

/// Runs `fut` on the current shard in the background.
pub fn spawn<F: Future<Output = ()> + 'static>(fut: F) {
    glommio::spawn_local(fut).detach();
}

/// Lets the shard's other tasks run before this one goes on.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}

/// Sleeps on the shard's timer.
pub async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await;
}

/// `Some(output)` if `fut` finishes within `d`, `None` otherwise (`fut` is dropped).
pub async fn within<T>(d: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        sleep(d).await;
        None
    })
    .await
}

/// Waits until an eventfd has been signalled, through glommio's reactor (an io_uring read
/// that the kernel arms as a poll: no thread blocks, nothing spins).
pub struct EventFdWaiter {
    file: BufferedFile,
}

impl EventFdWaiter {
    /// Watches a duplicate of `fd`, so the caller keeps ownership of its descriptor.
    pub fn new(fd: RawFd) -> io::Result<Self> {
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that we own, or -1.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is ours alone; BufferedFile closes it on drop.
        Ok(Self {
            file: unsafe { BufferedFile::from_raw_fd(dup) },
        })
    }

    /// Resolves once the eventfd counter is non-zero, resetting it.
    pub async fn wait(&self) -> io::Result<()> {
        self.file
            .read_at(0, 8)
            .await
            .map(drop)
            .map_err(io::Error::from)
    }
}

/// Accepts on an already bound, listening, non-blocking socket (from `engine::listener`).
pub fn listener_from_fd(fd: OwnedFd) -> Listener {
    Listener { fd }
}

/// Takes one connection off the listener's queue, if one is waiting: `None` when the
/// queue is empty (the caller waits for the listener to become readable).
///
/// Not glommio's accept: that one flips the listener to non-blocking and back around a
/// try (three fcntl(2) and a failed accept(2) per connection), then queues an accept in
/// its ring. One accept4(2) here returns the socket non-blocking, with its peer address,
/// and with `TCP_NODELAY` inherited from the listener.
pub fn try_accept(listener: &Listener) -> Option<io::Result<Conn>> {
    // SAFETY: accept4(2) writes at most `len` bytes of address into the storage that
    // `SockAddr::init` provides, and updates `len`.
    let accepted = unsafe {
        socket2::SockAddr::init(|storage, len| {
            let fd = libc::accept4(
                listener.fd(),
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(fd)
            }
        })
    };
    match accepted {
        Ok((fd, addr)) => {
            // SAFETY: `fd` is the connected socket accept4 just returned; glommio owns it
            // from here and closes it on drop.
            let stream = unsafe { TcpStream::from_raw_fd(fd) };
            Some(Ok(Conn {
                stream: RefCell::new(Stream::Tcp(stream)),
                fd,
                peer: addr.as_socket(),
            }))
        }
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            None
        }
        Err(err) => Some(Err(err)),
    }
}

/// Connects to `addr` within `timeout`. Every backend TCP connect (L4, xpra, WebSocket
/// token, fallback) comes through here, so this is where its latency is recorded.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
    let began = std::time::Instant::now();
    let stream = TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(io::Error::from)?;
    crate::control::metrics::backend_connected(began.elapsed());
    Conn::connected(stream, addr)
}

/// Connects to the unix socket at `path` (local xpra sessions). A unix connect completes
/// or fails at once, so it is made with std and handed to glommio; glommio's own
/// `UnixStream` does not expose the descriptor the splice path needs.
pub fn connect_unix(path: &std::path::Path) -> io::Result<Conn> {
    use std::os::fd::IntoRawFd;
    let fd = std::os::unix::net::UnixStream::connect(path)?.into_raw_fd();
    set_nonblocking(fd)?;
    // SAFETY: `fd` is a connected unix stream socket we own; glommio closes it on drop.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    Ok(Conn {
        stream: RefCell::new(Stream::Unix(stream)),
        fd,
        peer: None,
    })
}

/// The socket under a [`Conn`].
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One connection of a session (TCP, or a unix socket to a local session), shared by its
/// two directions (one reads while the other writes; each borrow lasts one poll, never
/// across an await).
pub struct Conn {
    stream: RefCell<Stream>,
    fd: RawFd,
    /// The peer's address, known from accept or connect (no getpeername(2) per use);
    /// None for unix sockets.
    peer: Option<SocketAddr>,
}

impl Conn {
    /// A socket glommio connected to `peer`.
    fn connected(stream: TcpStream, peer: SocketAddr) -> io::Result<Self> {
        stream.set_nodelay(true).map_err(io::Error::from)?;
        let fd = stream.as_raw_fd();
        // The splice path issues plain syscalls on this descriptor: they must never block.
        set_nonblocking(fd)?;
        Ok(Self {
            stream: RefCell::new(Stream::Tcp(stream)),
            fd,
            peer: Some(peer),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The peer's address; unix sockets have none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.peer.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets have no peer address",
            )
        })
    }

    /// Whether the peer is on this host (loopback address or unix socket).
    pub fn is_local(&self) -> bool {
        match &*self.stream.borrow() {
            Stream::Tcp(_) => self.peer.is_some_and(|a| a.ip().is_loopback()),
            Stream::Unix(_) => true,
        }
    }

    /// Reads what is available into `buf` with a plain non-blocking recv(2): `None` when
    /// the socket has nothing yet (the caller waits for readiness its own way).
    pub fn try_read(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        // SAFETY: recv(2) into a live, writable buffer of `buf.len()` bytes.
        let n = unsafe {
            libc::recv(
                self.fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Some(Ok(n as usize));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => None,
            _ => Some(Err(err)),
        }
    }

    /// Reads what is available into `buf`, or registers the task for readiness.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match &mut *self.stream.borrow_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }

    /// Writes all of `buf`, waiting for room as needed.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        use futures_lite::io::AsyncWrite;
        while !buf.is_empty() {
            let n = futures_lite::future::poll_fn(|cx| match &mut *self.stream.borrow_mut() {
                Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Bytes the peer has acknowledged (TCP_INFO `tcpi_bytes_acked`); `None` for unix
    /// sockets or when the kernel does not say.
    pub fn bytes_acked(&self) -> Option<u64> {
        if matches!(&*self.stream.borrow(), Stream::Unix(_)) {
            return None;
        }
        // SAFETY: tcp_info is plain data; all zeroes is a valid value.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large.
        let r = unsafe {
            libc::getsockopt(
                self.fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        let end = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
        (r == 0 && len as usize >= end).then_some(info.tcpi_bytes_acked)
    }

    /// Sends FIN: the peer reads EOF, and may still send.
    pub fn shutdown_write(&self) -> io::Result<()> {
        shutdown(self.fd, libc::SHUT_WR)
    }

    /// Stops reading: a pending read wakes up with EOF; writing still works (so a last
    /// message can still be sent).
    pub fn shutdown_read(&self) {
        let _ = shutdown(self.fd, libc::SHUT_RD);
    }

    /// Ends both directions now: every pending read or write on this socket wakes up.
    pub fn shutdown_both(&self) {
        let _ = shutdown(self.fd, libc::SHUT_RDWR);
    }

    /// Makes the close send RST instead of FIN (the other side of the session was reset),
    /// and wakes pending operations.
    pub fn abort(&self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt with a pointer to a live linger struct of the right size.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        self.shutdown_both();
    }
}

fn shutdown(fd: RawFd, how: libc::c_int) -> io::Result<()> {
    // SAFETY: shutdown(2) on a descriptor owned by a live Conn.
    if unsafe { libc::shutdown(fd, how) } < 0 {
        let err = io::Error::last_os_error();
        // Already disconnected is the state we wanted.
        if err.raw_os_error() != Some(libc::ENOTCONN) {
            return Err(err);
        }
    }
    Ok(())
}

/// One ioctl(2), where fcntl would take two (get the flags, then set them).
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: FIONBIO reads one int from a live pointer; the descriptor is the caller's.
    if unsafe { libc::ioctl(fd, libc::FIONBIO, &on) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
