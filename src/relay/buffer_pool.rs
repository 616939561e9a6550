//! Pooled copy buffers, leased only while they hold a session's bytes.
//!
//! An idle session holds no buffer: the copy path takes one when the socket has bytes and
//! returns it once they are written. The pool keeps a bounded number of free buffers per
//! shard, so a burst allocates and the steady state does not.

use std::cell::RefCell;

/// A shard's free list of equally sized buffers (single-threaded).
#[derive(Debug)]
pub struct BufferPool {
    free: RefCell<Vec<Box<[u8]>>>,
    buffer_size: usize,
    max_idle: usize,
}

impl BufferPool {
    /// A pool of `buffer_size`-byte buffers keeping at most `max_idle` free ones.
    pub fn new(buffer_size: usize, max_idle: usize) -> Self {
        Self {
            free: RefCell::new(Vec::new()),
            buffer_size,
            max_idle,
        }
    }

    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// A buffer from the free list, or a new one.
    pub fn take(&self) -> Box<[u8]> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0u8; self.buffer_size].into_boxed_slice())
    }

    /// Returns a buffer; beyond `max_idle` free buffers it is released to the allocator.
    pub fn give_back(&self, buf: Box<[u8]>) {
        debug_assert_eq!(buf.len(), self.buffer_size);
        let mut free = self.free.borrow_mut();
        if free.len() < self.max_idle {
            free.push(buf);
        }
    }

    /// Free buffers held right now.
    pub fn idle(&self) -> usize {
        self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused() {
        let pool = BufferPool::new(4096, 4);
        let buf = pool.take();
        let ptr = buf.as_ptr();
        pool.give_back(buf);
        assert_eq!(pool.idle(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), ptr);
    }

    #[test]
    fn idle_buffers_are_bounded() {
        let pool = BufferPool::new(1024, 2);
        let bufs: Vec<_> = (0..5).map(|_| pool.take()).collect();
        bufs.into_iter().for_each(|b| pool.give_back(b));
        assert_eq!(pool.idle(), 2);
    }
}
