//! WebSocket on the shared port: raw targets by token, checked byte for byte with an
//! independent client (Python's `websockets`); the close codes and HTTP refusals a client
//! gets for bad input; xpra over WebSocket through the same door as TCP; the heartbeat,
//! which closes a session whose client answers nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Backend, RelayProcess, Scratch};
use deskrelay::front::ws::{client_binary, client_frame, CloseCode, OpCode};
use tungstenite::protocol::frame::coding::Control;

/// A relay with a token file naming `target` as `good`.
fn token_relay(scratch: &Scratch, target: &str, extra: &[&str]) -> RelayProcess {
    let tokens = scratch.file("tokens", &format!("# raw targets\ngood: {target}\n"));
    let mut args = vec!["--tokens", tokens.to_str().unwrap()];
    args.extend_from_slice(extra);
    RelayProcess::start(&args)
}

fn python(script: &str) -> (bool, String) {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_token_session_carries_every_byte_both_ways() {
    let scratch = Scratch::new("ws-bytes");
    let echo = Backend::echo();
    let relay = token_relay(&scratch, &echo.addr.to_string(), &[]);
    let script = format!(
        r#"
import asyncio, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:{port}/?token=good", subprotocols=["binary"], max_size=None) as ws:
        assert ws.subprotocol == "binary", ws.subprotocol
        sent = b""
        for i, size in enumerate([1, 125, 126, 65535, 65536, 1 << 20, 7, 300000]):
            chunk = bytes((i * 31 + j) % 251 for j in range(size))
            await ws.send(chunk)
            sent += chunk
        got = b""
        while len(got) < len(sent):
            got += await ws.recv()
        print("ok" if got == sent else "mismatch at %d" % next(i for i in range(len(got)) if got[i] != sent[i]))
asyncio.run(main())
"#,
        port = relay.addr.port()
    );
    let (ok, out) = python(&script);
    assert!(
        ok && out.trim_end().ends_with("ok"),
        "{out}\n{}",
        relay.stderr()
    );
}

#[test]
fn an_unknown_token_or_a_port_in_the_url_is_refused_before_the_upgrade() {
    let scratch = Scratch::new("ws-refuse");
    let echo = Backend::echo();
    let relay = token_relay(&scratch, &echo.addr.to_string(), &[]);
    for query in ["?token=bad", "?port=22", ""] {
        let mut s = relay.connect();
        write!(
            s,
            "GET /{query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{query}: {answer}");
    }
}

/// Upgrades a raw socket to `?token=good`; returns it after the 101.
fn upgraded(relay: &RelayProcess) -> TcpStream {
    upgrade(relay.connect())
}

fn upgrade(mut s: TcpStream) -> TcpStream {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /?token=good HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    s
}

/// The server frames in `all` (which starts at a frame boundary): opcode and payload.
fn frames(all: &[u8]) -> Vec<(u8, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 2 <= all.len() {
        let op = all[pos] & 0x0f;
        let mut len = (all[pos + 1] & 0x7f) as usize;
        let mut at = pos + 2;
        if len == 126 {
            len = u16::from_be_bytes([all[at], all[at + 1]]) as usize;
            at += 2;
        } else if len == 127 {
            len = u64::from_be_bytes(all[at..at + 8].try_into().unwrap()) as usize;
            at += 8;
        }
        out.push((op, at..(at + len).min(all.len())));
        pos = at + len;
    }
    out
}

/// Reads server frames until the end; returns the close frame's code.
fn close_code(s: &mut TcpStream) -> u16 {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    close_code_in(&all)
}

/// The code of the first close frame in `all` (server frames from a frame boundary).
fn close_code_in(all: &[u8]) -> u16 {
    let (_, payload) = frames(all)
        .into_iter()
        .find(|(op, _)| *op == 0x8)
        .unwrap_or_else(|| panic!("no close frame in {} bytes", all.len()));
    u16::from_be_bytes([all[payload.start], all[payload.start + 1]])
}

#[test]
fn bad_frames_get_their_close_codes() {
    let scratch = Scratch::new("ws-codes");
    let echo = Backend::echo();
    let relay = token_relay(
        &scratch,
        &echo.addr.to_string(),
        &["--ws-max-frame", "65536"],
    );
    let key = [1, 2, 3, 4];
    // Text frames: 1003. Unmasked frames: 1002. Over --ws-max-frame: 1009.
    let text = client_frame(
        OpCode::Data(tungstenite::protocol::frame::coding::Data::Text),
        true,
        b"hi",
        key,
    );
    let mut unmasked = client_binary(b"hello", key);
    unmasked[1] &= 0x7f;
    unmasked.drain(2..6);
    let mut big = vec![0x82u8, 0xff];
    big.extend_from_slice(&(1u64 << 30).to_be_bytes());
    big.extend_from_slice(&key);
    for (frame, code) in [(text, 1003), (unmasked, 1002), (big, 1009)] {
        let mut s = upgraded(&relay);
        s.write_all(&frame).unwrap();
        assert_eq!(close_code(&mut s), code);
    }
    // A clean close is answered with a close.
    let mut s = upgraded(&relay);
    s.write_all(&deskrelay::front::ws::client_close(
        CloseCode::Normal,
        "bye",
        key,
    ))
    .unwrap();
    assert_eq!(close_code(&mut s), 1000);
}

#[test]
fn an_unreachable_token_target_closes_with_1011() {
    let scratch = Scratch::new("ws-1011");
    let relay = token_relay(&scratch, &common::dead_addr().to_string(), &[]);
    let mut s = upgraded(&relay);
    assert_eq!(close_code(&mut s), 1011);
}

#[test]
fn the_heartbeat_pings_an_idle_session() {
    let scratch = Scratch::new("ws-ping");
    let echo = Backend::echo();
    let relay = token_relay(&scratch, &echo.addr.to_string(), &["--ws-heartbeat", "0.2"]);
    let mut s = upgraded(&relay);
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x89, "a ping frame (FIN + opcode 9)");
}

/// A backend that reads until its client's end and then reports (with the time).
fn eof_reporting_backend() -> (Backend, mpsc::Receiver<Instant>) {
    let (tx, rx) = mpsc::channel();
    let backend = Backend::start(move |mut s| {
        let mut buf = [0u8; 4096];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(Instant::now());
    });
    (backend, rx)
}

#[test]
fn a_client_that_never_answers_pings_is_closed_after_two_intervals() {
    let scratch = Scratch::new("ws-heartbeat-dead");
    let (backend, backend_eof) = eof_reporting_backend();
    let relay = token_relay(
        &scratch,
        &backend.addr.to_string(),
        &["--ws-heartbeat", "0.4"],
    );
    // Upgrades, then neither reads nor writes: a peer that vanished without a FIN. The
    // clock starts before the upgrade: the relay's own starts later, so 1.2 s is a floor.
    let upgraded_at = Instant::now();
    let mut s = upgraded(&relay);
    let eof = backend_eof
        .recv_timeout(Duration::from_secs(10))
        .expect("the backend leg is shut down");
    // First ping at 1 interval, then 2 silent ones: 1.2 s (no earlier), with slack above.
    let took = eof - upgraded_at;
    assert!(took >= Duration::from_millis(1100), "closed after {took:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .expect("the transport ends with a FIN");
    let ops: Vec<u8> = frames(&all).into_iter().map(|(op, _)| op).collect();
    assert!(ops.len() >= 3, "pings, then the close: {ops:?}");
    assert!(ops[..ops.len() - 1].iter().all(|&op| op == 0x9), "{ops:?}");
    assert_eq!(close_code_in(&all), 1001);
    assert!(relay.wait_for_log(
        "heartbeat: closed a WebSocket session silent for 0.8 s",
        Duration::from_secs(5)
    ));
}

/// Reads one server frame: opcode and payload.
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l)?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l)?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok((head[0] & 0x0f, payload))
}

/// Reads frames, answering every ping, until a binary frame; returns its payload.
fn next_binary_answering_pings(s: &mut TcpStream, pings: &mut u32) -> Vec<u8> {
    loop {
        let (op, payload) = read_frame(s).expect("a frame");
        match op {
            0x9 => {
                *pings += 1;
                let pong = OpCode::Control(Control::Pong);
                s.write_all(&client_frame(pong, true, &payload, [3, 1, 4, 1]))
                    .unwrap();
            }
            0x2 => return payload,
            other => panic!("unexpected opcode {other:#x}: {payload:?}"),
        }
    }
}

#[test]
fn a_client_that_answers_pings_stays_open_for_many_intervals() {
    let scratch = Scratch::new("ws-heartbeat-alive");
    let echo = Backend::echo();
    let relay = token_relay(&scratch, &echo.addr.to_string(), &["--ws-heartbeat", "0.3"]);
    let mut s = upgraded(&relay);
    s.write_all(&client_binary(b"first", [1, 1, 1, 1])).unwrap();
    let mut pings = 0;
    assert_eq!(next_binary_answering_pings(&mut s, &mut pings), b"first");
    // Only pongs for 6 intervals: three times the silence that closes a session.
    let quiet_until = Instant::now() + Duration::from_millis(1800);
    while Instant::now() < quiet_until {
        let (op, payload) = read_frame(&mut s).expect("a ping, not the end");
        assert_eq!(op, 0x9, "only pings while the session is quiet");
        pings += 1;
        let pong = OpCode::Control(Control::Pong);
        s.write_all(&client_frame(pong, true, &payload, [2, 7, 1, 8]))
            .unwrap();
    }
    assert!(pings >= 4, "{pings} pings in 1.8 s at 0.3 s");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    s.write_all(&client_binary(&data, [9, 8, 7, 6])).unwrap();
    let mut back = Vec::new();
    while back.len() < data.len() {
        back.extend(next_binary_answering_pings(&mut s, &mut pings));
    }
    assert_eq!(back, data, "every byte both ways after the quiet spell");
    assert!(!relay.stderr().contains("heartbeat: closed"));
}

#[test]
fn a_client_that_sends_data_but_no_pongs_stays_open() {
    let scratch = Scratch::new("ws-heartbeat-data");
    let echo = Backend::echo();
    let relay = token_relay(&scratch, &echo.addr.to_string(), &["--ws-heartbeat", "0.3"]);
    let mut s = upgraded(&relay);
    // A frame every half interval for 6 intervals, pings unanswered and unread meanwhile.
    let mut sent = Vec::new();
    for i in 0..12u8 {
        let chunk = [i; 33];
        s.write_all(&client_binary(&chunk, [i, 2, 3, 4])).unwrap();
        sent.extend_from_slice(&chunk);
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut back = Vec::new();
    let mut pings = 0;
    while back.len() < sent.len() {
        let (op, payload) = read_frame(&mut s).expect("a frame, not the end");
        match op {
            0x9 => pings += 1,
            0x2 => back.extend(payload),
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    assert_eq!(back, sent);
    assert!(pings >= 3, "{pings} pings");
    assert!(!relay.stderr().contains("heartbeat: closed"));
}

#[test]
fn nothing_follows_our_close_frame_even_while_the_backend_streams() {
    let scratch = Scratch::new("ws-after-close");
    let firehose = Backend::start(|mut s| {
        let chunk = vec![7u8; 65536];
        while s.write_all(&chunk).is_ok() {}
    });
    let relay = token_relay(&scratch, &firehose.addr.to_string(), &[]);
    let mut s = upgraded(&relay);
    let mut some = vec![0u8; 200_000];
    s.read_exact(&mut some).unwrap();
    s.write_all(&deskrelay::front::ws::client_close(
        CloseCode::Normal,
        "enough",
        [9, 9, 9, 9],
    ))
    .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let all = [some, rest].concat();
    let ops: Vec<u8> = frames(&all).into_iter().map(|(op, _)| op).collect();
    let closes = ops.iter().filter(|&&op| op == 0x8).count();
    let after_close = ops.iter().skip_while(|&&op| op != 0x8).skip(1).count();
    assert_eq!(closes, 1, "exactly one close frame");
    assert_eq!(after_close, 0, "frames after the close");
}

/// A token whose target is a host name: resolved (off the shard), then bridged.
#[test]
fn a_host_name_target_is_resolved_and_bridged() {
    let scratch = Scratch::new("ws-hostname");
    let echo = Backend::echo();
    let relay = token_relay(&scratch, &format!("localhost:{}", echo.addr.port()), &[]);
    let mut s = common::ws_upgrade(relay.addr, "/?token=good");
    s.write_all(&client_binary(b"by name", [5, 6, 7, 8]))
        .unwrap();
    let mut back = [0u8; 9];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"\x82\x07by name");
}

/// A slow client reading a big stream under a heartbeat: its pongs wait behind our data
/// frames in its socket, so it must not be taken for gone while it reads them (it was: a
/// reset mid-stream in one round of two); and pings must never land inside a data frame,
/// though the backend trickling bytes leaves the data path idle between writes, so pings
/// start while the socket is full and data writes queue behind them.
#[test]
fn a_slow_client_under_a_heartbeat_gets_every_frame_whole_and_stays_open() {
    const LEN: usize = 4 << 20;
    let data: Vec<u8> = (0..LEN as u32).map(|i| (i * 31 % 253) as u8).collect();
    let sent = data.clone();
    let trickler = Backend::start(move |mut s| {
        for chunk in sent.chunks(8 * 1024) {
            if s.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_micros(1500));
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read(&mut [0u8; 1]);
    });
    let scratch = Scratch::new("ws-heartbeat-slow-client");
    let relay = token_relay(
        &scratch,
        &trickler.addr.to_string(),
        &["--ws-heartbeat", "0.25"],
    );
    // Three rounds of a second or so: the failures were one round in a few.
    for round in 0..3 {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap(); // before connect: a small window
        socket.connect(&relay.addr.into()).unwrap();
        let mut s = upgrade(socket.into());
        let (mut back, mut pings) = (Vec::with_capacity(LEN), 0);
        while back.len() < LEN {
            // A frame at a time, each read slowed down: the relay's writes wait for room.
            back.extend(next_binary_answering_pings(&mut s, &mut pings));
            std::thread::sleep(Duration::from_millis(3));
        }
        assert_eq!(back.len(), LEN, "round {round}");
        assert!(back == data, "round {round}: the stream arrived altered");
        assert!(
            pings >= 2,
            "round {round}: {pings} pings, the case never happened"
        );
    }
}

/// A client whose program hung (its kernel still acknowledges what fits in its receive
/// buffer, it reads nothing, answers no ping) while the backend keeps sending small
/// updates: our writes still succeed into the socket, but its TCP stops acknowledging once
/// its window is full, so two intervals later the session is closed.
#[test]
fn a_hung_client_is_closed_though_the_backend_keeps_sending() {
    let (tx, rx) = mpsc::channel();
    let ticker = Backend::start(move |mut s| {
        let started = Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        while started.elapsed() < Duration::from_secs(8) {
            if s.write_all(&[5u8; 1024]).is_err() || matches!(s.read(&mut [0u8; 64]), Ok(0)) {
                let _ = tx.send(started.elapsed());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let scratch = Scratch::new("ws-heartbeat-hung");
    let relay = token_relay(
        &scratch,
        &ticker.addr.to_string(),
        &["--ws-heartbeat", "0.3"],
    );
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&relay.addr.into()).unwrap();
    let _hung = upgrade(socket.into());
    let cut = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the backend leg is shut down while the backend still sends");
    assert!(cut < Duration::from_secs(6), "cut after {cut:?}");
    assert!(relay.wait_for_log("heartbeat: closed", Duration::from_secs(5)));
}
