//! WebSocket on the shared port: raw targets by token, checked byte for byte with an
//! independent client (Python's `websockets`); the close codes and HTTP refusals a client
//! gets for bad input; xpra over WebSocket through the same door as TCP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{Backend, RelayProcess, Scratch};
use deskrelay::front::ws::{client_binary, client_frame, CloseCode, OpCode};

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
    let mut s = relay.connect();
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
    let (_, payload) = frames(&all)
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
