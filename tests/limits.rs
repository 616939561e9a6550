//! `--max-sessions` and `--max-sessions-per-client`: connections past a limit are closed at
//! once and logged; the sessions already open keep their bytes; a freed place is reusable.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Backend, RelayProcess};

fn echo_once(s: &mut TcpStream, msg: &[u8]) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if s.write_all(msg).is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).is_ok() && back == msg
}

#[test]
fn connections_past_max_sessions_are_closed_and_the_others_keep_working() {
    let echo = Backend::echo();
    let relay = RelayProcess::start(&["--forward", &echo.addr.to_string(), "--max-sessions", "2"]);
    let mut a = relay.connect();
    let mut b = relay.connect();
    assert!(echo_once(&mut a, b"a1") && echo_once(&mut b, b"b1"));
    let mut c = relay.connect();
    assert!(!echo_once(&mut c, b"c1"), "a third session got through");
    assert!(relay.wait_for_log("--max-sessions (2) reached", Duration::from_secs(5)));
    assert!(echo_once(&mut a, b"a2") && echo_once(&mut b, b"b2"));
    drop(a);
    // The place is free again once the first session has ended.
    let mut ok = false;
    for _ in 0..50 {
        let mut d = relay.connect();
        if echo_once(&mut d, b"d1") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "a freed place was not reused");
}

#[test]
fn one_client_address_cannot_take_every_place() {
    let echo = Backend::echo();
    let relay = RelayProcess::start(&[
        "--forward",
        &echo.addr.to_string(),
        "--max-sessions-per-client",
        "1",
    ]);
    let mut a = relay.connect();
    assert!(echo_once(&mut a, b"a"));
    let mut b = relay.connect();
    assert!(!echo_once(&mut b, b"b"));
    // Another source address is another client.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    sock.bind(&source.into()).unwrap();
    sock.connect(&relay.addr.into()).unwrap();
    let mut other: TcpStream = sock.into();
    assert!(echo_once(&mut other, b"o"));
}

#[test]
fn sighup_reloads_the_limits_from_the_config_file_and_keeps_the_sessions() {
    let echo = Backend::echo();
    let path = std::env::temp_dir().join(format!("deskrelay-limits-{}.toml", std::process::id()));
    let write =
        |text: &str| std::fs::write(&path, format!("forward = \"{}\"\n{text}", echo.addr)).unwrap();
    write("max-sessions = 1\n");
    let relay = RelayProcess::start(&["--config", path.to_str().unwrap()]);
    let mut a = relay.connect();
    assert!(echo_once(&mut a, b"a1"));
    assert!(!echo_once(&mut relay.connect(), b"refused"));

    // More places, and an idle timeout for sessions from now on.
    write("max-sessions = 3\nidle-timeout = 1\n");
    relay.signal(libc::SIGHUP);
    assert!(
        relay.wait_for_log(
            "max-sessions: 1 -> 3, idle-timeout: off -> 1s",
            Duration::from_secs(5)
        ),
        "{}",
        relay.stderr()
    );
    let mut b = relay.connect();
    assert!(echo_once(&mut b, b"b1"));
    std::thread::sleep(Duration::from_millis(1800));
    // The session opened before the reload keeps its (absent) timeout; the new one is gone.
    assert!(echo_once(&mut a, b"a2"), "the reload dropped a session");
    assert!(
        !echo_once(&mut b, b"b2"),
        "the new idle timeout did not apply"
    );

    // A broken file changes nothing: still three places.
    write("max-sessions = \"lots\"\n");
    relay.signal(libc::SIGHUP);
    assert!(
        relay.wait_for_log(
            "not reloaded, keeping the current limits: invalid value 'lots' for '--max-sessions",
            Duration::from_secs(5)
        ),
        "{}",
        relay.stderr()
    );
    std::fs::write(&path, "max-sessions = [\n").unwrap();
    relay.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while relay.stderr().matches("not reloaded").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", relay.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut c, mut d) = (relay.connect(), relay.connect());
    assert!(echo_once(&mut c, b"c") && echo_once(&mut d, b"d"));
    assert!(!echo_once(&mut relay.connect(), b"fourth"));
    assert!(echo_once(&mut a, b"a3"));
    let _ = std::fs::remove_file(&path);
}
