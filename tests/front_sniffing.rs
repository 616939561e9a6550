//! One port, several doors: the first bytes of a connection decide where it goes. xpra
//! frames go to the xpra door (tests/xpra_*.rs); anything else is relayed to `--fallback`
//! byte for byte, first bytes included; a client that says nothing is closed at the
//! sniff deadline.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Backend, RelayProcess};
use deskrelay::xpra::{encode_frame, Compression, Encoding, Packet, Value};

fn xpra_relay_with(extra: &[&str]) -> RelayProcess {
    let mut args = vec!["--auth", "allow", "--session", "tcp://127.0.0.1:9/"];
    args.extend_from_slice(extra);
    RelayProcess::start(&args)
}

#[test]
fn what_is_not_xpra_reaches_the_fallback_with_its_first_bytes() {
    let web = Backend::echo();
    let addr = web.addr.to_string();
    let relay = xpra_relay_with(&["--fallback", &addr]);
    for first in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"SSH-2.0-client\r\n",
        b"\x00\x01\x02 binary",
        b"POST /form HTTP/1.1\r\n\r\n",
    ] {
        let mut s = relay.connect();
        s.write_all(first).unwrap();
        let mut back = vec![0u8; first.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, first);
        // And the stream goes on after the sniffed bytes.
        s.write_all(b"more").unwrap();
        let mut more = [0u8; 4];
        s.read_exact(&mut more).unwrap();
        assert_eq!(&more, b"more");
    }
}

#[test]
fn without_a_fallback_a_foreign_protocol_is_closed() {
    let relay = xpra_relay_with(&[]);
    let mut s = relay.connect();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed without an answer");
}

#[test]
fn a_client_that_sends_nothing_is_closed_at_the_sniff_deadline() {
    let relay = xpra_relay_with(&["--sniff-timeout", "0.5"]);
    let mut s = relay.connect();
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The door still serves: an xpra hello gets the xpra door's answer (here: the session
    // is unreachable, which the client is told in a disconnect packet).
    let mut t = relay.connect();
    let mut caps = Value::Dict(vec![]);
    caps.insert("version", Value::str("3.1.3"));
    let hello = Packet::new(vec![Value::str("hello"), caps]);
    t.write_all(&encode_frame(&hello, Encoding::Rencode, Compression::None).unwrap())
        .unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = Vec::new();
    let _ = t.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains("disconnect") && text.contains("failed to connect"),
        "{text}"
    );
}
