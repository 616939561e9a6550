//! Descriptor exhaustion: the shard stops accepting, says so (rate-limited), keeps the
//! sessions it has, and resumes by itself once descriptors free up.
//!
//! Steps:
//! 1. start the relay and open three sessions;
//! 2. cap the relay's RLIMIT_NOFILE below the descriptors it holds: a new connection
//!    waits in the accept queue, unserved;
//! 3. the established sessions still echo, and stderr names the exhaustion, rate-limited;
//! 4. close the sessions: the waiting connection is served without reconnecting.

mod common;
use common::{Backend, RelayProcess};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn open_fds(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

fn set_nofile(pid: i32, limit: u64) {
    let new = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: prlimit on our own child with a live rlimit struct.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// True if a new session echoes within `wait`.
fn served(relay: &RelayProcess, wait: Duration) -> Option<TcpStream> {
    let mut s = relay.connect();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(b"ping").ok()?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).ok()?;
    (&buf == b"ping").then_some(s)
}

#[test]
fn descriptor_exhaustion_pauses_accepting_and_recovers() {
    let backend = Backend::echo();
    let relay = RelayProcess::start(&[
        "--shards",
        "1",
        "--data-path",
        "copy",
        "--forward",
        &backend.addr.to_string(),
    ]);
    // Step 1.
    let mut sessions: Vec<TcpStream> = (0..3)
        .map(|_| served(&relay, Duration::from_secs(5)).expect("served before the cap"))
        .collect();

    // Step 2.
    // One below what it holds: no accept can succeed, existing sessions need no new ones.
    set_nofile(relay.pid(), open_fds(relay.pid()) - 1);
    let mut waiting = relay.connect();
    waiting.write_all(b"queued").unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 6];
    assert!(
        waiting.read_exact(&mut buf).is_err(),
        "served although no descriptor was free"
    );

    // Step 3.
    for s in sessions.iter_mut() {
        s.write_all(b"still").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still");
    }
    assert!(
        relay.wait_for_log("accept paused: Too many open files", Duration::from_secs(5)),
        "no exhaustion log: {}",
        relay.stderr()
    );
    let lines = relay.stderr().matches("accept paused").count();
    assert!(
        (1..=3).contains(&lines),
        "{lines} log lines in ~1.5 s: not rate limited"
    );

    // Step 4.
    drop(sessions);
    let started = Instant::now();
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    waiting
        .read_exact(&mut buf)
        .expect("the queued connection is served once descriptors free");
    assert_eq!(&buf, b"queued");
    assert!(started.elapsed() < Duration::from_secs(5));
}
