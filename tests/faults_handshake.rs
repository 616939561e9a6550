//! Garbage and stalls at every stage of a handshake, on one shared port (xpra, HTTP,
//! WebSocket, TLS): each gets a clear answer (an xpra `disconnect` with its reason, an HTTP
//! status, a TLS alert) or a prompt close, and an established xpra session on the same
//! relay keeps every byte, checked after each fault. The two deadlines before a door knows
//! who it talks to (sniff, xpra login) are counted and logged at most a line a second.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::xpra_login::{echo_session_server, frame, hello, login, read_packet, still_relays};
use common::{info_json, OnePortFiles, RelayProcess, Scratch};
use deskrelay::xpra::Value;

/// The relay's pre-auth and HTTP request deadlines in these tests.
const DEADLINE_S: u64 = 2;

/// The `[code, detail]` of the disconnect the relay sent, or a panic saying what came.
fn disconnect(s: &mut TcpStream) -> (String, String) {
    let p = read_packet(s).expect("a disconnect packet, not a bare close");
    assert_eq!(p[0].as_str(), Some("disconnect"), "{p:?}");
    let text = |i: usize| p.get(i).and_then(Value::as_str).unwrap_or("").to_string();
    (text(1), text(2))
}

/// A user logged in through the relay, its session's hello received.
fn established(relay: &RelayProcess) -> TcpStream {
    let (s, reply, _) = login(relay.addr, "zoe", "zoe-pw");
    assert_eq!(reply[0].as_str(), Some("hello"), "{reply:?}");
    s
}

/// Writes `bytes` one at a time, `gap` apart, until done or the relay closes.
fn trickle(mut s: TcpStream, bytes: Vec<u8>, gap: Duration) {
    thread::spawn(move || {
        for b in bytes {
            if s.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(gap);
        }
    });
}

/// Everything the relay sends until it closes, and how long that took.
fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    (all, start.elapsed())
}

struct Setup {
    relay: RelayProcess,
    _scratch: Scratch,
}

fn setup() -> Setup {
    let scratch = Scratch::new("faults");
    let session = echo_session_server();
    let files = OnePortFiles::new(&scratch, session, "127.0.0.1");
    let deadline = DEADLINE_S.to_string();
    let mut args = files.args();
    args.extend(
        [
            "--pre-auth-timeout",
            &deadline,
            "--sniff-timeout",
            &deadline,
        ]
        .map(String::from),
    );
    let relay = RelayProcess::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    Setup {
        relay,
        _scratch: scratch,
    }
}

#[test]
fn garbage_and_stalls_at_every_stage_get_a_clear_answer_and_spare_a_live_session() {
    let Setup { relay, _scratch } = setup();
    let mut bystander = established(&relay);
    still_relays(&mut bystander, 0);
    let deadline = Duration::from_secs(DEADLINE_S);
    let mut round = 0;
    let mut check = |what: &str| {
        round += 1;
        still_relays(&mut bystander, round);
        eprintln!("ok: {what}");
    };

    // First bytes no door speaks: closed without a word (no fallback configured).
    let mut s = relay.connect();
    s.write_all(b"\x00\x01\x02 SSH-2.0-nothing-here\r\n")
        .unwrap();
    let (got, _) = read_to_close(&mut s);
    assert!(got.is_empty(), "{got:?}");
    check("unknown protocol");

    // An xpra frame whose payload decodes to nothing.
    let mut s = relay.connect();
    s.write_all(b"P\x01\x00\x00\x00\x00\x00\x04\xff\xfe\xfd\xfc")
        .unwrap();
    let (code, detail) = disconnect(&mut s);
    assert_eq!(code, "protocol error", "{detail}");
    check("undecodable first frame");

    // A first packet that is not a hello.
    let mut s = relay.connect();
    s.write_all(&frame(vec![Value::str("ping"), Value::Int(1)]))
        .unwrap();
    assert_eq!(
        disconnect(&mut s),
        (
            "protocol error".into(),
            "invalid packet: expected a hello".into()
        )
    );
    check("ping instead of hello");

    // The challenge answered with bytes that are no frame at all.
    let mut s = relay.connect();
    s.write_all(&frame(vec![Value::str("hello"), hello("zoe")]))
        .unwrap();
    assert_eq!(read_packet(&mut s).unwrap()[0].as_str(), Some("challenge"));
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (code, _) = disconnect(&mut s);
    assert_eq!(code, "protocol error");
    check("garbage instead of the challenge response");

    // The challenge answered with a packet that is not a hello.
    let mut s = relay.connect();
    s.write_all(&frame(vec![Value::str("hello"), hello("zoe")]))
        .unwrap();
    assert_eq!(read_packet(&mut s).unwrap()[0].as_str(), Some("challenge"));
    s.write_all(&frame(vec![Value::str("ping"), Value::Int(1)]))
        .unwrap();
    let (code, detail) = disconnect(&mut s);
    assert_eq!(code, "protocol error");
    assert!(detail.contains("challenge response"), "{detail}");
    check("ping instead of the challenge response");

    // Slowloris on the xpra door: a hello one byte every 200 ms never beats the deadline.
    let mut s = relay.connect();
    let slow = frame(vec![Value::str("hello"), hello("zoe")]);
    trickle(s.try_clone().unwrap(), slow, Duration::from_millis(200));
    let start = Instant::now();
    let (code, _) = disconnect(&mut s);
    assert_eq!(code, "login timeout");
    let took = start.elapsed();
    assert!(took >= deadline - Duration::from_millis(300), "{took:?}");
    assert!(took < deadline * 3, "{took:?}");
    check("xpra hello at one byte per 200 ms");

    // A malformed HTTP request head.
    let mut s = relay.connect();
    s.write_all(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (got, _) = read_to_close(&mut s);
    assert!(
        got.starts_with(b"HTTP/1.1 400 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    check("malformed HTTP request");

    // Slowloris on the HTTP door: 408 at the deadline, as haproxy answers.
    let mut s = relay.connect();
    let head = b"GET /desk HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n".repeat(4);
    trickle(s.try_clone().unwrap(), head, Duration::from_millis(200));
    let (got, took) = read_to_close(&mut s);
    assert!(
        got.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(took < deadline * 3, "{took:?}");
    check("HTTP head at one byte per 200 ms");

    // A TLS record that is no ClientHello: a TLS alert, then the close.
    let mut s = relay.connect();
    s.write_all(b"\x16\x03\x01\x00\x08\x01\x00\x00\x04garbage")
        .unwrap();
    let (got, _) = read_to_close(&mut s);
    assert_eq!(got.first(), Some(&0x15), "an alert record: {got:?}");
    check("garbage ClientHello");

    // A WebSocket upgrade, then a frame no client may send (unmasked): close 1002. On the
    // xpra door (no token) where the hello should be, and on a token's bridge.
    for path in ["/", "/?token=desk"] {
        let mut s = relay.connect();
        let upgrade = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(upgrade.as_bytes()).unwrap();
        s.write_all(b"\x82\x03abc").unwrap();
        let (got, _) = read_to_close(&mut s);
        assert!(got.starts_with(b"HTTP/1.1 101 "), "{path}: {got:?}");
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let close = &got[head_end..];
        assert!(
            close.len() >= 4 && close[0] == 0x88,
            "{path}: a close frame: {close:?}"
        );
        assert_eq!(&close[2..4], &1002u16.to_be_bytes(), "{path}: {close:?}");
        check("unmasked WebSocket frame");
    }

    // The data phase: a frame over the packet limit ends that session with a reason.
    let mut s = established(&relay);
    s.write_all(b"P\x01\x00\x00\x7f\xff\xff\xff").unwrap();
    let (code, detail) = disconnect(&mut s);
    assert_eq!(code, "protocol error");
    assert!(detail.contains("too large"), "{detail}");
    check("oversized frame after login");

    // A client that vanishes mid-handshake (reset after its hello).
    let mut s = relay.connect();
    s.write_all(&frame(vec![Value::str("hello"), hello("zoe")]))
        .unwrap();
    common::reset(s);
    check("reset after the hello");
}

/// Waits for `info` to show `errors.KEY` at `want`, and returns what it last showed.
fn errors_reach(socket: &std::path::Path, key: &str, want: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = info_json(socket);
        if info["errors"][key] == want || Instant::now() > deadline {
            return info;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn login_and_sniff_timeouts_are_counted_and_logged_at_a_bounded_rate() {
    const STALLED: usize = 6;
    let scratch = Scratch::new("faults-timeouts");
    let session = echo_session_server();
    let control = scratch.path("control.sock");
    let relay = RelayProcess::start(&[
        "--auth",
        "allow",
        "--session",
        &format!("tcp://{session}/"),
        "--pre-auth-timeout",
        "1",
        "--sniff-timeout",
        "1",
        "--control",
        control.to_str().unwrap(),
    ]);
    let info = info_json(&control);
    assert_eq!(info["errors"]["login_timeouts"], 0, "{info}");

    // A hello's header and half its payload, then nothing: `login timeout` for each, all at
    // once; and as many connections that send nothing at all.
    let hello_frame = frame(vec![Value::str("hello"), hello("zoe")]);
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut s = relay.connect();
            s.write_all(&hello_frame[..hello_frame.len() / 2]).unwrap();
            s
        })
        .collect();
    let silent: Vec<TcpStream> = (0..STALLED).map(|_| relay.connect()).collect();
    let start = Instant::now();
    for mut s in stalled {
        assert_eq!(disconnect(&mut s).0, "login timeout");
    }
    for mut s in silent {
        let (got, _) = read_to_close(&mut s);
        assert!(got.is_empty(), "{got:?}");
    }
    let secs = start.elapsed().as_secs();

    let info = errors_reach(&control, "login_timeouts", STALLED as u64);
    assert_eq!(info["errors"]["login_timeouts"], STALLED as u64, "{info}");
    let info = errors_reach(&control, "sniff_timeouts", STALLED as u64);
    assert_eq!(info["errors"]["sniff_timeouts"], STALLED as u64, "{info}");
    let log = relay.stderr();
    for line in ["xpra login timeout: ", "sniff timeout: "] {
        let n = log.matches(line).count();
        assert!(
            (1..=secs as usize + 2).contains(&n),
            "{n} `{line}` lines for {STALLED} timeouts in {secs} s:\n{log}"
        );
    }
    assert!(
        log.contains("did not log in within 1s"),
        "the line names the deadline:\n{log}"
    );
}
