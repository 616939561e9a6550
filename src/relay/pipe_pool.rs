//! The shard's pipe pool: a pipe is leased only while a direction is on the splice path.
//!
//! Pipes are scarce: the kernel charges their capacity to the user (`fs.pipe-user-pages-soft`,
//! 16384 pages by default) and shrinks new pipes to one page past it, and each costs two
//! descriptors. So a shard leases at most `max_leased` pipes, keeps a few empty ones for
//! reuse, and a pipe that still holds bytes when its lease ends (a session died mid-splice)
//! is closed instead of reused, so no byte ever leaks into another session.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

/// A kernel pipe: read end, write end, and the capacity the kernel granted.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// Creates a non-blocking pipe and asks for `size` bytes of capacity; the kernel may grant
    /// less (per-user limits), so the capacity is read back.
    pub fn new(size: usize) -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are new and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; failure only means the default size stays.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
        // SAFETY: as above.
        let granted = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if granted <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            read,
            write,
            capacity: granted as usize,
        })
    }

    pub fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    pub fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A shard's pool of pipes (single-threaded).
#[derive(Debug)]
pub struct PipePool {
    free: RefCell<Vec<Pipe>>,
    pipe_size: usize,
    max_leased: usize,
    max_idle: usize,
    leased: Cell<usize>,
}

impl PipePool {
    pub fn new(pipe_size: usize, max_leased: usize, max_idle: usize) -> Rc<Self> {
        Rc::new(Self {
            free: RefCell::new(Vec::new()),
            pipe_size,
            max_leased,
            max_idle,
            leased: Cell::new(0),
        })
    }

    /// A pipe for one direction, or why there is none (limit reached, or the kernel refused:
    /// EMFILE, ENFILE, ...). Callers stay on the copy path then.
    pub fn lease(self: &Rc<Self>) -> Result<PipeLease, PipeShortage> {
        if self.leased.get() >= self.max_leased {
            return Err(PipeShortage::PoolExhausted);
        }
        let pipe = match self.free.borrow_mut().pop() {
            Some(p) => p,
            None => Pipe::new(self.pipe_size).map_err(PipeShortage::Kernel)?,
        };
        self.leased.set(self.leased.get() + 1);
        Ok(PipeLease {
            pipe: Some(pipe),
            pool: Rc::clone(self),
            buffered: 0,
        })
    }

    /// Pipes leased right now.
    pub fn leased(&self) -> usize {
        self.leased.get()
    }

    /// Empty pipes kept for reuse.
    pub fn idle(&self) -> usize {
        self.free.borrow().len()
    }

    fn give_back(&self, pipe: Pipe, buffered: usize) {
        self.leased.set(self.leased.get() - 1);
        let mut free = self.free.borrow_mut();
        if buffered == 0 && free.len() < self.max_idle {
            free.push(pipe);
        }
        // Otherwise `pipe` drops here: a pipe holding bytes is never handed to another session.
    }
}

/// Why no pipe could be leased.
#[derive(Debug, thiserror::Error)]
pub enum PipeShortage {
    #[error("the shard's pipe limit is reached")]
    PoolExhausted,
    #[error("the kernel refused a pipe: {0}")]
    Kernel(io::Error),
}

/// A pipe on loan to one direction, with the count of bytes it holds.
#[derive(Debug)]
pub struct PipeLease {
    pipe: Option<Pipe>,
    pool: Rc<PipePool>,
    /// Bytes spliced into the pipe and not yet out of it.
    pub buffered: usize,
}

impl PipeLease {
    pub fn pipe(&self) -> &Pipe {
        self.pipe
            .as_ref()
            .expect("a lease holds its pipe until dropped")
    }
}

impl Drop for PipeLease {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            self.pool.give_back(pipe, self.buffered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bytes(fd: RawFd, bytes: &[u8]) {
        // SAFETY: writing from a live slice to a descriptor the test owns.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(n, bytes.len() as isize);
    }

    #[test]
    fn pipe_capacity_is_read_back() {
        let pipe = Pipe::new(256 * 1024).unwrap();
        assert!(pipe.capacity() >= 4096, "capacity {}", pipe.capacity());
    }

    #[test]
    fn an_empty_pipe_is_reused() {
        let pool = PipePool::new(64 * 1024, 8, 4);
        let lease = pool.lease().unwrap();
        let fd = lease.pipe().read_fd();
        drop(lease);
        assert_eq!((pool.leased(), pool.idle()), (0, 1));
        assert_eq!(pool.lease().unwrap().pipe().read_fd(), fd);
    }

    #[test]
    fn a_pipe_holding_bytes_is_never_reused() {
        let pool = PipePool::new(64 * 1024, 8, 4);
        let mut lease = pool.lease().unwrap();
        write_bytes(lease.pipe().write_fd(), b"leftover");
        lease.buffered = 8;
        drop(lease);
        assert_eq!((pool.leased(), pool.idle()), (0, 0));
        let fresh = pool.lease().unwrap();
        let mut buf = [0u8; 16];
        // SAFETY: reading into a live buffer from the test's own non-blocking pipe.
        let n = unsafe { libc::read(fresh.pipe().read_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(n, -1, "a fresh lease must be empty");
    }

    #[test]
    fn leases_are_bounded() {
        let pool = PipePool::new(64 * 1024, 2, 2);
        let a = pool.lease().unwrap();
        let _b = pool.lease().unwrap();
        assert!(matches!(pool.lease(), Err(PipeShortage::PoolExhausted)));
        drop(a);
        assert!(pool.lease().is_ok());
    }

    #[test]
    fn idle_pipes_are_bounded() {
        let pool = PipePool::new(64 * 1024, 8, 1);
        let leases: Vec<_> = (0..3).map(|_| pool.lease().unwrap()).collect();
        drop(leases);
        assert_eq!((pool.leased(), pool.idle()), (0, 1));
    }
}
