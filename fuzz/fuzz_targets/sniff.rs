//! `sniff`: the single-port sniffer (`front::sniff::classify`) that picks a door from a
//! connection's first bytes, read after read.
//!
//! Input: the first bytes a client sends.
//!
//! Guards:
//! - never panics;
//! - it decides within `SNIFF_MAX` bytes (the reader has no room for more: a `None` there
//!   would stall the connection until the deadline);
//! - read boundaries change nothing: once a prefix decides, every longer prefix decides the
//!   same, so a verdict never depends on how the client's bytes were split into reads;
//! - a verdict is what the door behind it can read: xpra starts with the frame magic `P`,
//!   TLS with a handshake record of version 3.x, and whatever the HTTP module's own sniff
//!   calls HTTP goes to the HTTP door.
#![no_main]

use deskrelay::front::http::{self, Sniff};
use deskrelay::front::sniff::{classify, Kind, SNIFF_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|first: &[u8]| {
    let first = &first[..first.len().min(SNIFF_MAX + 8)];
    let mut decided: Option<(usize, Kind)> = None;
    for n in 0..=first.len() {
        let prefix = &first[..n];
        let verdict = classify(prefix);
        match (verdict, decided) {
            (None, None) => assert!(n < SNIFF_MAX, "undecided after {n} bytes"),
            (None, Some((at, k))) => panic!("decided {k:?} at {at} bytes, undecided at {n}"),
            (Some(v), None) => decided = Some((n, v)),
            (Some(v), Some((at, k))) => assert_eq!(v, k, "decided at {at}, changed at {n}"),
        }
        match verdict {
            Some(Kind::Xpra) => assert_eq!(prefix[0], b'P'),
            Some(Kind::Tls) => assert_eq!(&prefix[..2], &[0x16, 0x03]),
            _ => {}
        }
        if http::sniff(prefix) == Sniff::Http {
            assert_eq!(
                verdict,
                Some(Kind::Http),
                "the HTTP module's own sniff says HTTP"
            );
        }
    }
});
