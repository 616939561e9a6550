//! `--idle-timeout`: a session that moves nothing either way for that long is closed, on
//! every path (L4 copy and splice, xpra, WebSocket), with the client's own goodbye where
//! its protocol has one; a session that keeps moving bytes, however few, stays open.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{ws_upgrade, Backend, RelayProcess};
use deskrelay::front::ws::client_binary;
use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet, Value};

/// Sends a few bytes every 300 ms for 3 s (three idle timeouts) and checks each echo.
fn keep_busy(s: &mut TcpStream, round_trip: impl FnMut(&mut TcpStream, u8) -> bool) {
    keep_busy_for(Duration::from_secs(3), s, round_trip)
}

fn keep_busy_for(
    how_long: Duration,
    s: &mut TcpStream,
    mut round_trip: impl FnMut(&mut TcpStream, u8) -> bool,
) {
    let until = Instant::now() + how_long;
    let mut n = 0u8;
    while Instant::now() < until {
        assert!(
            round_trip(s, n),
            "an active session was cut after {n} round trips"
        );
        n = n.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits for the relay to close `s`; returns everything it sent before, and when.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    (all, started.elapsed())
}

fn echo_byte(s: &mut TcpStream, n: u8) -> bool {
    let mut b = [0u8; 1];
    s.write_all(&[n]).is_ok() && s.read_exact(&mut b).is_ok() && b[0] == n
}

#[test]
fn a_quiet_tcp_session_is_closed_and_a_busy_one_is_not_on_copy_and_splice() {
    let echo = Backend::echo();
    for path in ["copy", "splice"] {
        let relay = RelayProcess::start(&[
            "--forward",
            &echo.addr.to_string(),
            "--idle-timeout",
            "1",
            "--data-path",
            path,
        ]);
        let mut quiet = relay.connect();
        // Bytes once, then silence: the timeout counts from the last byte.
        let mut bulk = vec![5u8; 300_000];
        quiet.write_all(&bulk).unwrap();
        quiet.read_exact(&mut bulk).unwrap();
        let mut busy = relay.connect();
        let busy = std::thread::spawn(move || {
            keep_busy_for(Duration::from_secs(5), &mut busy, echo_byte);
        });
        let (rest, _) = read_until_closed(&mut quiet);
        assert!(rest.is_empty(), "{path}");
        assert!(relay.wait_for_log(
            "idle timeout: closed a TCP session quiet for 1 s",
            Duration::from_secs(5)
        ));
        // Closed within a timeout and a quarter of going quiet (plus scheduling slack).
        let mut late = relay.connect();
        assert!(echo_byte(&mut late, 1));
        let (_, after) = read_until_closed(&mut late);
        assert!(after >= Duration::from_millis(950), "{path}: {after:?}");
        assert!(after < Duration::from_secs(3), "{path}: {after:?}");
        busy.join().expect("the busy session stayed open");
        let line = relay.stop_summary();
        assert!(line.contains("idle_timeouts=2"), "{path}: {line}");
    }
}

fn xpra_frame(items: Vec<Value>) -> Vec<u8> {
    encode_frame(&Packet::new(items), Encoding::Rencode, Compression::None).unwrap()
}

fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Vec<Value>> {
    let mut dec = FrameDecoder::new(Limits::default());
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(d) = dec.decode(buf).expect("valid frames") {
            return Some(d.packet.items);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An xpra session server: answers the hello with a hello, then echoes every byte.
fn echoing_xpra_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut buf = BytesMut::new();
                if read_packet(&mut s, &mut buf).is_none() {
                    return;
                }
                let _ = s.write_all(&xpra_frame(vec![Value::str("hello"), Value::Dict(vec![])]));
                let _ = s.write_all(&buf);
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut chunk) {
                    if s.write_all(&chunk[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An xpra client through the door (`--auth allow`), after the server's hello.
fn xpra_session(relay: &RelayProcess) -> (TcpStream, BytesMut) {
    let mut s = relay.connect();
    let mut caps = Value::Dict(vec![]);
    caps.insert("version", Value::str("3.1.3"));
    s.write_all(&xpra_frame(vec![Value::str("hello"), caps]))
        .unwrap();
    let mut buf = BytesMut::new();
    let hello = read_packet(&mut s, &mut buf).expect("the server's hello");
    assert_eq!(hello[0].as_str(), Some("hello"));
    (s, buf)
}

#[test]
fn a_quiet_xpra_session_hears_idle_timeout_and_a_busy_one_stays() {
    let server = echoing_xpra_server();
    let relay = RelayProcess::start(&[
        "--auth",
        "allow",
        "--session",
        &format!("tcp://{server}/"),
        "--idle-timeout",
        "1",
    ]);
    let (mut quiet, mut quiet_buf) = xpra_session(&relay);
    let (mut busy, mut busy_buf) = xpra_session(&relay);
    keep_busy(&mut busy, |s, n| {
        let ping = vec![Value::str("ping"), Value::Int(i64::from(n))];
        s.write_all(&xpra_frame(ping.clone())).is_ok()
            && read_packet(s, &mut busy_buf).is_some_and(|p| p == ping)
    });
    let got = read_packet(&mut quiet, &mut quiet_buf).expect("a disconnect");
    let words: Vec<&str> = got.iter().filter_map(Value::as_str).collect();
    assert_eq!(words, ["disconnect", "idle timeout", "no traffic for 1 s"]);
    let (rest, _) = read_until_closed(&mut quiet);
    assert!(rest.is_empty());
    assert!(relay.wait_for_log("session end", Duration::from_secs(5)));
    assert!(relay.wait_for_log("idle timeout (1 s)", Duration::from_secs(5)));
    assert!(relay.wait_for_log(
        "idle timeout: closed a xpra session",
        Duration::from_secs(5)
    ));
    drop(busy);
    assert!(relay.stop_summary().contains("idle_timeouts=1"));
}

#[test]
fn a_quiet_websocket_session_gets_close_1001_and_a_busy_one_stays() {
    let echo = Backend::echo();
    let dir = std::env::temp_dir().join(format!("deskrelay-idle-ws-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("good: {}\n", echo.addr)).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let relay = RelayProcess::start(&[
        "--tokens",
        tokens.to_str().unwrap(),
        "--idle-timeout",
        "1",
        // Pings do not count as traffic: the quiet session is closed all the same (by the
        // idle timeout, before its unanswered pings would close it at 3 intervals).
        "--ws-heartbeat",
        "0.5",
    ]);
    let mut quiet = ws_upgrade(relay.addr, "/?token=good");
    let mut busy = ws_upgrade(relay.addr, "/?token=good");
    keep_busy(&mut busy, |s, n| {
        if s.write_all(&client_binary(&[n], [1, 2, 3, 4])).is_err() {
            return false;
        }
        // The echo, after any heartbeat pings.
        loop {
            let mut head = [0u8; 2];
            if s.read_exact(&mut head).is_err() {
                return false;
            }
            let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
            if s.read_exact(&mut payload).is_err() {
                return false;
            }
            if head[0] == 0x82 {
                return payload == [n];
            }
        }
    });
    let (all, _) = read_until_closed(&mut quiet);
    // Server frames are unmasked with short payloads here: walk them to the close.
    let mut pos = 0;
    let mut close = None;
    while pos + 2 <= all.len() {
        let len = usize::from(all[pos + 1] & 0x7f);
        if all[pos] & 0x0f == 0x8 {
            close = Some(all[pos + 2..pos + 2 + len].to_vec());
        }
        pos += 2 + len;
    }
    let close = close.expect("a close frame");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
    assert_eq!(&close[2..], b"idle timeout");
    assert!(relay.wait_for_log(
        "idle timeout: closed a WebSocket session",
        Duration::from_secs(5)
    ));
    drop(busy);
    assert!(relay.stop_summary().contains("idle_timeouts=1"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_that_stops_reading_is_idle_once_its_buffers_are_full() {
    // The backend writes for ever; the client reads nothing: once the socket buffers are
    // full, nothing moves, and the blocked write must not keep the session open.
    let firehose = Backend::start(|mut s| {
        let chunk = vec![7u8; 65536];
        while s.write_all(&chunk).is_ok() {}
    });
    let relay = RelayProcess::start(&[
        "--forward",
        &firehose.addr.to_string(),
        "--idle-timeout",
        "1",
    ]);
    let mut stalled = relay.connect();
    stalled.write_all(b"go").unwrap();
    assert!(relay.wait_for_log(
        "idle timeout: closed a TCP session",
        Duration::from_secs(10)
    ));
    // What was buffered, then the end: no hang.
    let started = Instant::now();
    let (all, _) = read_until_closed(&mut stalled);
    assert!(!all.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}
