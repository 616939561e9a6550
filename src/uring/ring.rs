//! [`ShardRing`]: submission, completion reaping, and the eventfd bridge to glommio.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::task::Waker;

use io_uring::{opcode, squeue, IoUring};

use super::ops::RingOp;
use crate::engine::runtime::{self, EventFdWaiter};

/// `user_data` of cancellation requests, whose completions nobody awaits.
const CANCEL_TAG: u64 = u64::MAX;

/// One operation's place in the ring while the kernel holds it.
#[derive(Debug, Default)]
enum Slot {
    #[default]
    Free,
    /// Submitted; `waker` is the task to wake on completion. `abandoned` means the future
    /// was dropped: the slot is freed when the completion (or the cancellation) arrives.
    Pending {
        waker: Option<Waker>,
        abandoned: bool,
    },
    /// Completed with the kernel's result (`-errno` on failure), not yet read.
    Done(i32),
}

struct Inner {
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// A shard's private io_uring ring for splice and readiness polls. Single-threaded (`Rc`).
pub struct ShardRing {
    inner: RefCell<Inner>,
    eventfd: OwnedFd,
}

impl ShardRing {
    /// Creates the ring with `entries` submission slots and at most `max_workers` bounded
    /// and unbounded io-wq workers (splice runs on io-wq; the bound keeps a burst of bulk
    /// sessions from spawning a kernel thread each).
    pub fn new(entries: u32, max_workers: u32) -> io::Result<Rc<Self>> {
        // Completions of polls run as task work on this thread; cooperatively (at its next
        // entry into the kernel, or waking it when it sleeps) instead of by an IPI into a
        // running shard: Linux 5.19, else the plain ring.
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        // SAFETY: eventfd(2) returns a new descriptor we own, or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let eventfd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Every completion bumps the eventfd. (`register_eventfd_async` would skip poll
        // completions: they run as task work on this thread, not on an io-wq worker.)
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        let mut workers = [max_workers, max_workers];
        if let Err(err) = ring.submitter().register_iowq_max_workers(&mut workers) {
            tracing::debug!(%err, "cannot bound io-wq workers; kernel default applies");
        }
        Ok(Rc::new(Self {
            inner: RefCell::new(Inner {
                ring,
                slots: Vec::new(),
                free: Vec::new(),
            }),
            eventfd,
        }))
    }

    /// Starts the shard task that reaps completions whenever the eventfd is signalled. It
    /// holds only a weak reference: it ends with the ring.
    pub fn start_driver(self: &Rc<Self>) -> io::Result<()> {
        let waiter = EventFdWaiter::new(self.eventfd.as_raw_fd())?;
        let ring = Rc::downgrade(self);
        runtime::spawn(async move {
            loop {
                if let Err(err) = waiter.wait().await {
                    tracing::error!("shard ring: cannot wait for completions: {err}");
                    return;
                }
                match ring.upgrade() {
                    Some(ring) => ring.reap(),
                    None => return,
                }
            }
        });
        Ok(())
    }

    /// Number of operations the kernel still holds (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        let inner = self.inner.borrow();
        inner
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Pending { .. }))
            .count()
    }

    /// Queues `entry`, submits it, and returns the future of its completion.
    ///
    /// Submission is immediate, so descriptor numbers in `entry` are resolved by the kernel
    /// before this returns: closing them afterwards cannot redirect the operation.
    pub fn submit(self: &Rc<Self>, entry: squeue::Entry) -> io::Result<RingOp> {
        let slot = {
            let mut inner = self.inner.borrow_mut();
            let slot = match inner.free.pop() {
                Some(i) => i,
                None => {
                    inner.slots.push(Slot::Free);
                    (inner.slots.len() - 1) as u32
                }
            };
            inner.slots[slot as usize] = Slot::Pending {
                waker: None,
                abandoned: false,
            };
            if let Err(err) = inner.push_and_submit(entry.user_data(slot as u64)) {
                inner.slots[slot as usize] = Slot::Free;
                inner.free.push(slot);
                return Err(err);
            }
            slot
        };
        self.reap();
        Ok(RingOp::new(Rc::clone(self), slot))
    }

    /// Moves every available completion into its slot and wakes the waiting tasks.
    pub fn reap(&self) {
        let mut wake = Vec::new();
        {
            let mut inner = self.inner.borrow_mut();
            let Inner { ring, slots, free } = &mut *inner;
            for cqe in ring.completion() {
                if cqe.user_data() == CANCEL_TAG {
                    continue;
                }
                let idx = cqe.user_data() as usize;
                match std::mem::take(&mut slots[idx]) {
                    Slot::Pending {
                        abandoned: true, ..
                    } => free.push(idx as u32),
                    Slot::Pending {
                        waker,
                        abandoned: false,
                    } => {
                        slots[idx] = Slot::Done(cqe.result());
                        wake.extend(waker);
                    }
                    other => {
                        debug_assert!(false, "completion for slot {idx} in state {other:?}");
                        slots[idx] = other;
                    }
                }
            }
        }
        // Wake outside the borrow: a woken task may submit right away on this thread.
        wake.into_iter().for_each(Waker::wake);
    }

    /// Returns the result if the operation completed, otherwise records `waker`.
    pub(super) fn poll_slot(&self, slot: u32, waker: &Waker) -> Option<i32> {
        let mut inner = self.inner.borrow_mut();
        let idx = slot as usize;
        match &mut inner.slots[idx] {
            Slot::Done(res) => {
                let res = *res;
                inner.slots[idx] = Slot::Free;
                inner.free.push(slot);
                Some(res)
            }
            Slot::Pending { waker: w, .. } => {
                match w {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                }
                None
            }
            Slot::Free => unreachable!("polled a freed ring slot"),
        }
    }

    /// The operation's future was dropped before it completed: cancel it in the kernel and
    /// free the slot when its completion arrives.
    pub(super) fn abandon(&self, slot: u32) {
        let mut inner = self.inner.borrow_mut();
        let idx = slot as usize;
        match &mut inner.slots[idx] {
            Slot::Done(_) => {
                inner.slots[idx] = Slot::Free;
                inner.free.push(slot);
            }
            Slot::Pending { abandoned, waker } => {
                *abandoned = true;
                *waker = None;
                let cancel = opcode::AsyncCancel::new(slot as u64)
                    .build()
                    .user_data(CANCEL_TAG);
                if let Err(err) = inner.push_and_submit(cancel) {
                    tracing::warn!(%err, "cannot cancel an abandoned ring operation");
                }
            }
            Slot::Free => {}
        }
    }
}

impl Inner {
    fn push_and_submit(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every operation we queue refers to descriptors only (no user memory), and
        // the descriptors are resolved during the submit below, while they are still open.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.ring.submit()?;
        }
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
                Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
                    // Completion queue overflow: the entry stays queued and goes with the next
                    // submit, after the shard reaps.
                    return Ok(());
                }
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::RawFd;
    use std::time::Duration;

    use super::*;
    use crate::engine::runtime::{block_on, sleep};
    use crate::relay::pipe_pool::Pipe;
    use crate::uring::PollEvents;

    fn write(fd: RawFd, bytes: &[u8]) {
        // SAFETY: write from a live slice to the test's own pipe.
        assert_eq!(
            unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) },
            bytes.len() as isize
        );
    }

    fn ring() -> Rc<ShardRing> {
        let ring = ShardRing::new(64, 2).unwrap();
        ring.start_driver().unwrap();
        ring
    }

    #[test]
    fn a_poll_completes_through_the_eventfd_bridge() {
        block_on(async {
            let ring = ring();
            let pipe = Pipe::new(4096).unwrap();
            let fd = pipe.write_fd();
            // The write happens on another thread while the shard sleeps in glommio's ring:
            // only the eventfd can wake it.
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                write(fd, b"x");
            });
            let ready = runtime::within(
                Duration::from_secs(5),
                ring.ready(pipe.read_fd(), PollEvents::Readable),
            );
            ready.await.expect("woken within 5 s").unwrap();
            writer.join().unwrap();
            assert_eq!(ring.in_flight(), 0);
        });
    }

    #[test]
    fn a_dropped_operation_is_cancelled_and_its_slot_freed() {
        block_on(async {
            let ring = ring();
            let pipe = Pipe::new(4096).unwrap();
            let op = ring.ready(pipe.read_fd(), PollEvents::Readable);
            let timed_out = runtime::within(Duration::from_millis(20), op).await;
            assert!(timed_out.is_none());
            // The cancellation's completion arrives through the bridge.
            for _ in 0..100 {
                if ring.in_flight() == 0 {
                    break;
                }
                sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(ring.in_flight(), 0);
        });
    }

    #[test]
    fn ring_splice_moves_bytes_between_pipes() {
        block_on(async {
            let ring = ring();
            let (a, b) = (Pipe::new(4096).unwrap(), Pipe::new(4096).unwrap());
            write(a.write_fd(), b"spliced");
            let n = ring.splice(a.read_fd(), b.write_fd(), 64).await.unwrap();
            assert_eq!(n, 7);
            let mut buf = [0u8; 16];
            // SAFETY: read into a live buffer from the test's own pipe.
            let got = unsafe { libc::read(b.read_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            assert_eq!(&buf[..got as usize], b"spliced");
        });
    }
}
