//! SIGTERM and SIGINT: stop accepting, drain open sessions up to --drain-timeout, exit 0.

mod common;
use common::{Backend, RelayProcess};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn echo_once(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(buf, msg);
}

#[test]
fn sigterm_drains_open_sessions_refuses_new_ones_and_exits_zero() {
    let backend = Backend::echo();
    let mut relay = RelayProcess::start(&["--forward", &backend.addr.to_string()]);
    let mut open = relay.connect();
    echo_once(&mut open, b"before");

    relay.signal(libc::SIGTERM);
    assert!(
        relay.wait_for_log("draining", Duration::from_secs(5)),
        "{}",
        relay.stderr()
    );
    // Listeners close at once: a new connection is refused.
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(relay.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The open session goes on.
    echo_once(&mut open, b"during the drain");
    assert!(
        relay.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a session open"
    );
    drop(open);
    let status = relay
        .wait_exit(Duration::from_secs(5))
        .expect("exits once the session ends");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigint_with_no_sessions_exits_zero_promptly() {
    let mut relay = RelayProcess::start(&["--forward", "127.0.0.1:9"]);
    let start = Instant::now();
    relay.signal(libc::SIGINT);
    let status = relay.wait_exit(Duration::from_secs(3)).expect("exits");
    assert_eq!(status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn drain_timeout_bounds_the_wait_for_sessions_that_never_end() {
    let backend = Backend::echo();
    let mut relay = RelayProcess::start(&[
        "--drain-timeout",
        "1",
        "--forward",
        &backend.addr.to_string(),
    ]);
    let mut open = relay.connect();
    echo_once(&mut open, b"hold");
    let start = Instant::now();
    relay.signal(libc::SIGTERM);
    let status = relay
        .wait_exit(Duration::from_secs(4))
        .expect("exits after the drain timeout");
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "did not wait for the session"
    );
    assert!(
        relay.stderr().contains("drain timeout"),
        "{}",
        relay.stderr()
    );
    // The held session was closed.
    let mut buf = [0u8; 1];
    assert!(matches!(open.read(&mut buf), Ok(0) | Err(_)));
}

/// Once the process is gone nothing answers on its port: a relay restarted there gets every
/// connection. (The kernel tears an exited process's io_uring rings down asynchronously,
/// and a listener the ring still held stayed in LISTEN, in the port's SO_REUSEPORT group,
/// accepting SYNs nobody would accept: about one exit in three before the fix.)
#[test]
fn an_exited_relay_leaves_nothing_listening_on_its_port() {
    for round in 0..6 {
        let mut relay = RelayProcess::start(&["--forward", "127.0.0.1:9"]);
        let addr = relay.addr;
        relay.signal(libc::SIGTERM);
        let status = relay.wait_exit(Duration::from_secs(3)).expect("exits");
        assert_eq!(status.code(), Some(0));
        let refused = TcpStream::connect_timeout(&addr, Duration::from_millis(500));
        assert!(
            refused.is_err(),
            "round {round}: {addr} still accepts connections after the relay exited"
        );
    }
}
