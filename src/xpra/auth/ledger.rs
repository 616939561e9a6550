//! [`SaltLedger`]: the client salts accepted lately, so none is accepted twice.
//!
//! xpra keeps the last 1 Mi combined salts in a deque; we keep the SHA-256 of the last
//! `capacity` client salts (32 bytes each, plus the set's overhead: about 100 bytes an
//! entry), oldest forgotten first. A replayed answer already fails against a fresh server
//! salt; the ledger is the second line, for a server salt that should never repeat but might.
//! One ledger is shared by every shard (behind a mutex held for one hash-set insert), so a
//! replay cannot dodge it by landing on another core.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// Default capacity: 64 Ki salts, about 6 MiB at most.
pub const DEFAULT_CAPACITY: usize = 64 * 1024;

/// A bounded record of client salts already used.
#[derive(Debug)]
pub struct SaltLedger {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    order: VecDeque<[u8; 32]>,
    seen: HashSet<[u8; 32]>,
}

impl SaltLedger {
    /// A ledger remembering the last `capacity` salts (at least one).
    pub fn new(capacity: usize) -> SaltLedger {
        SaltLedger {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Records `client_salt`; false if it was already recorded (and is still remembered).
    pub fn record(&self, client_salt: &[u8]) -> bool {
        let key: [u8; 32] = Sha256::digest(client_salt).into();
        // A panic elsewhere while holding the lock leaves the set consistent (each step
        // below is a single insert or remove), so a poisoned lock is still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.seen.insert(key) {
            return false;
        }
        inner.order.push_back(key);
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.seen.remove(&old);
            }
        }
        true
    }

    /// How many salts are remembered now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .order
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SaltLedger {
    fn default() -> Self {
        SaltLedger::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_salt_is_accepted_once_and_the_oldest_is_forgotten_first() {
        let ledger = SaltLedger::new(2);
        assert!(ledger.record(b"a"));
        assert!(!ledger.record(b"a"));
        assert!(ledger.record(b"b"));
        assert!(ledger.record(b"c")); // forgets "a"
        assert_eq!(ledger.len(), 2);
        assert!(!ledger.record(b"b"));
        assert!(!ledger.record(b"c"));
        assert!(ledger.record(b"a"));
    }
}
