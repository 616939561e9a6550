//! [`WriteTurn`]: one writer at a time on a WebSocket's transport.
//!
//! Two tasks write to a browser's connection: the session's direction toward the client
//! (data frames, the close) and the heartbeat (pings). A frame's bytes must reach the wire
//! together, and a write can be cut into pieces by a full socket buffer, so a second
//! writer must wait for the first one's frame to be written whole, not only started.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

use futures_lite::future::poll_fn;

/// The right to write to the transport; see the module doc.
#[derive(Default)]
pub struct WriteTurn {
    busy: Cell<bool>,
    waiting: RefCell<Vec<Waker>>,
}

/// Held while writing; dropping it (also when the write is cut short) gives the turn up.
pub struct Turn<'a>(&'a WriteTurn);

impl WriteTurn {
    /// The turn now, or `None` when another writer holds it.
    pub fn try_take(&self) -> Option<Turn<'_>> {
        // `then`, not `then_some`: a Turn built and dropped would give the turn up.
        (!self.busy.replace(true)).then(|| Turn(self))
    }

    /// Waits for the turn.
    pub async fn take(&self) -> Turn<'_> {
        poll_fn(|cx| match self.try_take() {
            Some(turn) => Poll::Ready(turn),
            None => {
                let mut waiting = self.waiting.borrow_mut();
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
        for waker in self.0.waiting.take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn a_second_writer_waits_until_the_first_gives_the_turn_up() {
        let turn = WriteTurn::default();
        let first = turn.try_take().expect("free at first");
        assert!(turn.try_take().is_none(), "held");
        let mut second = Box::pin(turn.take());
        assert!(future::block_on(future::poll_once(&mut second)).is_none());
        drop(first);
        let second = future::block_on(second);
        assert!(turn.try_take().is_none(), "held by the second writer");
        drop(second);
        assert!(turn.try_take().is_some());
    }
}
