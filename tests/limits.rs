//! `--max-sessions` and `--max-sessions-per-client`: connections past a limit are closed at
//! once on an L4 listener, told why on a door (an xpra `disconnect`, HTTP 503), counted and
//! logged at most a line a second; the sessions already open keep their bytes; a freed place
//! is reusable.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::xpra_login::{echo_session_server, frame, read_packet, still_relays};
use common::{connect_from, info_json, Backend, RelayProcess, Scratch};
use deskrelay::xpra::Value;

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

/// A new xpra client from `source`: its hello sent, the relay's first packet as strings.
fn xpra_hello(relay: &RelayProcess, source: &str) -> (TcpStream, Vec<String>) {
    let mut s = connect_from(relay.addr, source);
    let mut caps = Value::Dict(vec![]);
    caps.insert("version", Value::str("3.1.3"));
    s.write_all(&frame(vec![Value::str("hello"), caps]))
        .unwrap();
    let first = read_packet(&mut s).expect("a packet, not a bare close");
    let first = first
        .iter()
        .map(|v| v.as_str().unwrap_or("(not a string)").to_string())
        .collect();
    (s, first)
}

/// Everything the relay sends `head` from `source`, until its FIN (a reset fails the test).
fn http(relay: &RelayProcess, source: &str, head: &str) -> String {
    let mut s = connect_from(relay.addr, source);
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("a FIN, not a reset");
    String::from_utf8_lossy(&got).into_owned()
}

const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn refusal_lines(relay: &RelayProcess) -> Vec<String> {
    let log = relay.stderr();
    log.lines()
        .filter(|l| l.contains("connection refused:"))
        .map(String::from)
        .collect()
}

#[test]
fn clients_over_a_limit_on_a_door_are_told_why_counted_and_logged_once_a_second() {
    let scratch = Scratch::new("limits-door");
    let www = scratch.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<p>desk</p>").unwrap();
    let control = scratch.path("control.sock");
    let session = format!("tcp://{}/", echo_session_server());
    let relay = RelayProcess::start(&[
        "--auth",
        "allow",
        "--session",
        &session,
        "--web-root",
        www.to_str().unwrap(),
        "--max-sessions",
        "2",
        "--max-sessions-per-client",
        "1",
        "--control",
        control.to_str().unwrap(),
    ]);
    let (mut a, first) = xpra_hello(&relay, "127.0.0.1");
    assert_eq!(first[0], "hello", "{first:?}");
    still_relays(&mut a, 0);
    let burst_start = Instant::now();

    // Over the per-client limit: the reason in xpra's own disconnect, then a clean close.
    let (mut refused, answer) = xpra_hello(&relay, "127.0.0.1");
    assert_eq!(
        answer,
        [
            "disconnect",
            "server full",
            "too many sessions from your address"
        ]
    );
    let mut rest = Vec::new();
    refused.read_to_end(&mut rest).expect("a FIN, not a reset");
    assert!(rest.is_empty(), "{rest:?}");

    let (mut b, first) = xpra_hello(&relay, "127.0.0.2");
    assert_eq!(first[0], "hello", "{first:?}");
    let (_, answer) = xpra_hello(&relay, "127.0.0.3");
    assert_eq!(answer, ["disconnect", "server full", "too many sessions"]);

    // HTTP, and a WebSocket upgrade before any 101: 503 with Retry-After.
    let upgrade = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    for head in [GET, upgrade] {
        let got = http(&relay, "127.0.0.3", head);
        assert!(
            got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{got}"
        );
        assert!(got.contains("\r\nRetry-After: 5\r\n"), "{got}");
    }
    const BURST: usize = 30;
    for _ in 0..BURST {
        assert!(http(&relay, "127.0.0.4", GET).starts_with("HTTP/1.1 503 "));
    }
    let burst_secs = burst_start.elapsed().as_secs();
    let refused_total = 4 + BURST;
    let lines = refusal_lines(&relay);
    // One line a second at most, however many were refused in it.
    assert!(
        !lines.is_empty() && lines.len() as u64 <= burst_secs + 2,
        "{} lines for {refused_total} refusals in {burst_secs} s:\n{}",
        lines.len(),
        relay.stderr()
    );

    // The next second's line says how many the last ones held back.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(http(&relay, "127.0.0.4", GET).starts_with("HTTP/1.1 503 "));
    let deadline = Instant::now() + Duration::from_secs(5);
    while refusal_lines(&relay).len() == lines.len() {
        assert!(Instant::now() < deadline, "{}", relay.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let all = refusal_lines(&relay);
    let last = all.last().unwrap();
    let held_back = refused_total - lines.len();
    assert!(
        last.contains("--max-sessions (2) reached")
            && last.contains(&format!("({} refused so far)", refused_total + 1)),
        "{last} (after {held_back} held back)"
    );
    // Some line after the first counts what was held back (the last one does unless the
    // burst's own last refusal opened a new second and was logged itself).
    assert!(
        all[1..]
            .iter()
            .any(|l| l.contains("suppressed=") && !l.contains("suppressed=0")),
        "no line says what was held back:\n{}",
        all.join("\n")
    );

    // Counted, never sessions: the two admitted ones only, and they keep their bytes.
    let info = info_json(&control);
    assert_eq!(
        info["errors"]["limit_refusals"],
        refused_total as u64 + 1,
        "{info}"
    );
    assert_eq!(info["sessions"], 2, "{info}");
    still_relays(&mut a, 1);
    still_relays(&mut b, 2);
}
