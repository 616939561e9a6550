//! An established xpra session, byte by byte: frames pass verbatim both ways, the few
//! packets the proxy opens are handled (info gets the proxy's entries, a disconnect ends the
//! session), and bad input cuts off the peer that sent it with an xpra `disconnect` to the
//! client, without allocating what a lying header claims. Plain sockets play both ends, so
//! every byte is under the test's control.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use common::RelayProcess;
use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet, Value};

fn frame(items: Vec<Value>) -> Vec<u8> {
    encode_frame(&Packet::new(items), Encoding::Rencode, Compression::None).unwrap()
}

fn hello(extra: &[(&str, Value)]) -> Vec<u8> {
    let mut caps = Value::Dict(vec![]);
    caps.insert("version", Value::str("3.1.3"));
    caps.insert("rencode", Value::Bool(true));
    for (k, v) in extra {
        caps.insert(k, v.clone());
    }
    frame(vec![Value::str("hello"), caps])
}

/// Reads one packet (its items) from `s`, keeping what follows in `buf`.
fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Vec<Value>> {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
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

fn kind(items: &[Value]) -> &str {
    items[0].as_str().unwrap()
}

/// A relay (`--auth allow`) in front of a scripted backend, up to the client's hello
/// reaching the backend; returns the relay, the client's socket and the backend's.
fn hello_at_backend() -> (RelayProcess, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let session = format!("tcp://{}/", listener.local_addr().unwrap());
    let relay = RelayProcess::start(&["--auth", "allow", "--session", &session]);
    let mut client = relay.connect();
    client.write_all(&hello(&[])).unwrap();
    let (mut backend, _) = listener.accept().unwrap();
    let got = read_packet(&mut backend, &mut BytesMut::new()).expect("the client's hello");
    assert_eq!(kind(&got), "hello");
    assert_eq!(got[1].get("proxy"), Some(&Value::Bool(true)));
    (relay, client, backend)
}

/// [`hello_at_backend`], then the backend's hello through to the client: an established
/// session.
fn established() -> (RelayProcess, TcpStream, TcpStream) {
    let (relay, mut client, mut backend) = hello_at_backend();
    backend.write_all(&hello(&[])).unwrap();
    let back = read_packet(&mut client, &mut BytesMut::new()).expect("the server's hello");
    assert_eq!(kind(&back), "hello");
    (relay, client, backend)
}

#[test]
fn pings_the_server_sends_before_its_hello_reach_the_client_after_it() {
    let (_relay, mut client, mut backend) = hello_at_backend();
    // xpra 3.1.3 pings from the connection on: a slow server pings before it says hello.
    backend
        .write_all(&frame(vec![Value::str("ping"), Value::Int(1000)]))
        .unwrap();
    backend
        .write_all(&frame(vec![Value::str("ping"), Value::Int(2000)]))
        .unwrap();
    backend.write_all(&hello(&[])).unwrap();
    let mut buf = BytesMut::new();
    let kinds: Vec<(String, Option<i64>)> = (0..3)
        .map(|_| {
            let p = read_packet(&mut client, &mut buf).expect("a packet");
            (kind(&p).to_string(), p.get(1).and_then(Value::as_int))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("hello".to_string(), None),
            ("ping".to_string(), Some(1000)),
            ("ping".to_string(), Some(2000)),
        ]
    );
    // And the session is relayed as usual.
    let up = frame(vec![Value::str("ping_echo"), Value::Int(1000)]);
    client.write_all(&up).unwrap();
    let mut got = vec![0u8; up.len()];
    backend.read_exact(&mut got).unwrap();
    assert_eq!(got, up);
}

#[test]
fn frames_pass_both_ways_byte_for_byte_after_the_handshake() {
    let (_relay, mut client, mut backend) = established();
    let up = frame(vec![
        Value::str("pointer-position"),
        Value::Int(1),
        Value::Int(2),
    ]);
    let mut down = frame(vec![Value::str("draw"), Value::Bytes(vec![9u8; 300_000])]);
    // A raw chunk ahead of its packet, compressed payloads: all opaque to the relay.
    let mut chunk = vec![b'P', 0, 0, 1];
    chunk.extend_from_slice(&5u32.to_be_bytes());
    chunk.extend_from_slice(b"pixel");
    down.extend_from_slice(&chunk);
    client.write_all(&up).unwrap();
    backend.write_all(&down).unwrap();
    let mut got_up = vec![0u8; up.len()];
    backend.read_exact(&mut got_up).unwrap();
    assert_eq!(got_up, up);
    let mut got_down = vec![0u8; down.len()];
    client.read_exact(&mut got_down).unwrap();
    assert_eq!(got_down, down);
}

#[test]
fn an_oversized_frame_from_the_client_ends_the_session_with_a_disconnect() {
    let (relay, mut client, mut backend) = established();
    // 200 MiB claimed; the relay's limit is 16 MiB.
    client
        .write_all(&[b'P', 1, 0, 0, 0x0c, 0x80, 0, 0])
        .unwrap();
    let got = read_packet(&mut client, &mut BytesMut::new()).expect("a disconnect");
    assert_eq!(kind(&got), "disconnect");
    assert_eq!(got[1].as_str(), Some("protocol error"));
    assert!(
        got[2].as_str().unwrap().contains("packet too large"),
        "{got:?}"
    );
    // The backend is closed; nothing of the bad frame reached it.
    backend
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = backend.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes reached the backend", rest.len());
    assert!(relay.wait_for_log("protocol error from the Client", Duration::from_secs(5)));
}

#[test]
fn garbage_from_the_server_is_reported_to_the_client() {
    let (_relay, mut client, mut backend) = established();
    backend.write_all(b"this is not an xpra frame").unwrap();
    let got = read_packet(&mut client, &mut BytesMut::new()).expect("a disconnect");
    assert_eq!(kind(&got), "disconnect");
    assert!(
        got[2]
            .as_str()
            .unwrap()
            .contains("invalid data from the session"),
        "{got:?}"
    );
}

#[test]
fn a_hello_after_authentication_is_not_forwarded() {
    let (_relay, mut client, mut backend) = established();
    let marker = frame(vec![Value::str("ping"), Value::Int(7)]);
    client.write_all(&hello(&[])).unwrap();
    client.write_all(&marker).unwrap();
    let mut got = vec![0u8; marker.len()];
    backend.read_exact(&mut got).unwrap();
    assert_eq!(
        got, marker,
        "the stray hello must be dropped, the ping passed"
    );
}

#[test]
fn an_encrypted_hello_is_refused_with_a_reason() {
    let relay = RelayProcess::start(&["--auth", "allow", "--session", "tcp://127.0.0.1:9/"]);
    let mut client = relay.connect();
    client
        .write_all(&hello(&[
            ("cipher", Value::str("AES")),
            ("cipher.iv", Value::str("x")),
        ]))
        .unwrap();
    let got = read_packet(&mut client, &mut BytesMut::new()).expect("a disconnect");
    assert_eq!(kind(&got), "disconnect");
    assert!(got[2].as_str().unwrap().contains("encryption"), "{got:?}");
}

#[test]
fn an_unreachable_session_is_a_server_error_for_the_client() {
    let dead = common::dead_addr();
    let relay = RelayProcess::start(&["--auth", "allow", "--session", &format!("tcp://{dead}/")]);
    let mut client = relay.connect();
    client.write_all(&hello(&[])).unwrap();
    let got = read_packet(&mut client, &mut BytesMut::new()).expect("a disconnect");
    assert_eq!(got[1].as_str(), Some("server error"), "{got:?}");
    assert!(
        got[2].as_str().unwrap().contains("failed to connect"),
        "{got:?}"
    );
}

#[test]
fn an_info_response_gains_the_proxy_dictionary() {
    let (_relay, mut client, mut backend) = established();
    let mut info = Value::Dict(vec![]);
    info.insert("server", Value::str("the session's own info"));
    backend
        .write_all(&frame(vec![Value::str("info-response"), info]))
        .unwrap();
    let got = read_packet(&mut client, &mut BytesMut::new()).expect("the info");
    assert_eq!(kind(&got), "info-response");
    assert_eq!(
        got[1].get("server").and_then(Value::as_str),
        Some("the session's own info")
    );
    let proxy = got[1].get("proxy").expect("a proxy dictionary");
    assert_eq!(
        proxy.get("server").and_then(Value::as_str),
        Some("deskrelay")
    );
    assert!(
        proxy.get("shard").and_then(Value::as_int).is_some(),
        "{proxy:?}"
    );
    let bytes = proxy.get("bytes").expect("byte counters");
    assert!(
        bytes.get("to-client").and_then(Value::as_int).is_some(),
        "{bytes:?}"
    );
    let latency = proxy.get("latency").expect("latencies");
    assert!(
        latency.get("server-us").and_then(Value::as_int).is_some(),
        "{latency:?}"
    );
}

#[test]
fn a_disconnect_from_the_server_reaches_the_client_and_ends_the_session() {
    let (relay, mut client, mut backend) = established();
    let bye = frame(vec![
        Value::str("disconnect"),
        Value::str("server shutdown"),
    ]);
    backend.write_all(&bye).unwrap();
    let mut got = vec![0u8; bye.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, bye);
    // The relay half-closes toward the client after the disconnect.
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(client.read(&mut [0u8; 16]).unwrap(), 0);
    drop(backend);
    // The session's end line names the reason.
    assert!(relay.wait_for_log("session end", Duration::from_secs(10)));
    assert!(relay.wait_for_log("server: server shutdown", Duration::from_secs(10)));
}
