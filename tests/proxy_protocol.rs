//! PROXY protocol: deskrelay behind a balancer learns the real client from its header
//! (`--accept-proxy-from`, v1 text or v2 binary), and tells backends who the client is
//! (`--send-proxy`); the named client is who the session log names and who failed-login
//! throttling counts.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::xpra_login::{echo_session_server, login_outcome};
use common::{RelayProcess, Scratch};
use deskrelay::front::proxy_protocol::{encode_v2, parse};
use deskrelay::xpra::auth::Transport;

/// A backend that reads one PROXY header, then echoes; reports the header's source.
fn header_backend() -> (SocketAddr, std::sync::mpsc::Receiver<Option<SocketAddr>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let rest = loop {
                    let n = s.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    match parse(&got) {
                        Ok(Some((h, used))) => {
                            let _ = tx.send(h.source);
                            break got[used..].to_vec();
                        }
                        Ok(None) => continue,
                        Err(e) => panic!("backend got no PROXY header: {e}"),
                    }
                };
                let _ = s.write_all(&rest);
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn echo(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// A relay to `backend` that sends it PROXY v2 headers and trusts headers from `trusted`.
fn forwarding_with_proxy_headers(backend: SocketAddr, trusted: &str) -> RelayProcess {
    RelayProcess::start(&[
        "--forward",
        &backend.to_string(),
        "--send-proxy",
        "--accept-proxy-from",
        trusted,
    ])
}

#[test]
fn backends_are_told_the_client_address() {
    let (backend, sources) = header_backend();
    let relay = RelayProcess::start(&["--forward", &backend.to_string(), "--send-proxy"]);
    let mut s = relay.connect();
    let me = s.local_addr().unwrap();
    assert_eq!(echo(&mut s, b"hello"), b"hello");
    assert_eq!(
        sources.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some(me)
    );
}

#[test]
fn a_trusted_balancer_header_names_the_client_for_the_backend_and_the_log() {
    let (backend, sources) = header_backend();
    let relay = forwarding_with_proxy_headers(backend, "127.0.0.0/8");
    let mut s = relay.connect();
    s.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 14500\r\n")
        .unwrap();
    assert_eq!(
        echo(&mut s, b"payload after the header"),
        b"payload after the header"
    );
    assert_eq!(
        sources.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some("203.0.113.7:40000".parse().unwrap())
    );
    drop(s);

    // A trusted peer that sends garbage instead of a header is cut off, and logged.
    let mut bad = relay.connect();
    bad.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(bad.read(&mut [0u8; 8]).unwrap_or(0), 0);
    assert!(relay.wait_for_log("bad PROXY header", Duration::from_secs(5)));
}

#[test]
fn an_untrusted_peer_cannot_claim_an_address() {
    let (backend, sources) = header_backend();
    let relay = forwarding_with_proxy_headers(backend, "10.0.0.0/8");
    let mut s = relay.connect();
    let me = s.local_addr().unwrap();
    let line = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 14500\r\n";
    // Not from 10/8: the line is just bytes of the stream, relayed as such.
    assert_eq!(echo(&mut s, line), line);
    assert_eq!(
        sources.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some(me)
    );
}

/// A WebSocket token's backend gets the header too, before the first bridged byte.
#[test]
fn a_token_backend_is_told_the_client_address() {
    let (backend, sources) = header_backend();
    let scratch = Scratch::new("pp-token");
    let tokens = scratch.file("tokens", &format!("desk: {backend}\n"));
    let relay = RelayProcess::start(&["--tokens", tokens.to_str().unwrap(), "--send-proxy"]);
    let mut s = common::ws_upgrade(relay.addr, "/?token=desk");
    let me = s.local_addr().unwrap();
    // One masked binary frame "hello" out; the backend echoes it; one frame back.
    let key = [9u8, 8, 7, 6];
    let mut frame = vec![0x82, 0x80 | 5];
    frame.extend_from_slice(&key);
    frame.extend(b"hello".iter().enumerate().map(|(i, c)| c ^ key[i % 4]));
    s.write_all(&frame).unwrap();
    let mut back = [0u8; 7];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"\x82\x05hello");
    assert_eq!(
        sources.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some(me)
    );
}

#[test]
fn a_trusted_balancer_v2_header_names_the_client_ipv4_or_ipv6() {
    let (backend, sources) = header_backend();
    let relay = forwarding_with_proxy_headers(backend, "127.0.0.0/8");
    for named in ["198.51.100.4:41000", "[2001:db8::7]:41001"] {
        let named: SocketAddr = named.parse().unwrap();
        let mut s = relay.connect();
        // The binary header and the client's first bytes in one write, as haproxy sends them.
        let mut first = encode_v2(named, relay.addr);
        assert_eq!(&first[..12], b"\r\n\r\n\0\r\nQUIT\n", "a v2 signature");
        first.extend_from_slice(b"after a v2 header");
        s.write_all(&first).unwrap();
        let mut back = vec![0u8; b"after a v2 header".len()];
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, b"after a v2 header");
        assert_eq!(echo(&mut s, b"and more"), b"and more");
        assert_eq!(
            sources.recv_timeout(Duration::from_secs(10)).unwrap(),
            Some(named),
            "the backend is told the named client"
        );
        let line = format!("client={named}");
        assert!(
            relay.wait_for_log(&line, Duration::from_secs(5)),
            "no session line with {line}:\n{}",
            relay.stderr()
        );
    }
}

/// One xpra login through the balancer on behalf of `client`: the packet that ends the
/// handshake (a `disconnect` before or after the challenge, or `hello`), as strings.
fn login_via_balancer(relay: &RelayProcess, client: &str, user: &str, pw: &str) -> Vec<String> {
    let mut s = relay.connect();
    s.write_all(&encode_v2(client.parse().unwrap(), relay.addr))
        .unwrap();
    login_outcome(&mut s, user, pw, Transport::Plain)
}

#[test]
fn failed_logins_through_the_balancer_throttle_the_named_address_not_the_balancer() {
    let scratch = Scratch::new("pp-throttle");
    let session = echo_session_server();
    let users = scratch.file(
        "users",
        &format!("ann|ann-pw|1000|1000|tcp://{session}/||\n"),
    );
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--accept-proxy-from",
        "127.0.0.0/8",
        "--auth-fail-limit",
        "2",
        "--auth-backoff",
        "30",
    ]);
    // Two wrong guesses on behalf of 203.0.113.50, each for another name (so no user name
    // is blocked): that address is.
    for user in ["bob", "carl"] {
        let got = login_via_balancer(&relay, "203.0.113.50:5000", user, "guess");
        assert_eq!(
            got[..3],
            [
                "disconnect",
                "authentication error",
                "authentication failed"
            ]
        );
    }
    let got = login_via_balancer(&relay, "203.0.113.50:5001", "ann", "ann-pw");
    assert_eq!(got[0], "disconnect", "{got:?}");
    assert!(got[2].starts_with("too many failed logins"), "{got:?}");
    assert!(
        relay.wait_for_log(
            "address 203.0.113.50 blocked for 30 s after 2 failed logins",
            Duration::from_secs(5)
        ),
        "{}",
        relay.stderr()
    );
    // Another client behind the same balancer (same peer address) still gets a challenge,
    // and logs in.
    let got = login_via_balancer(&relay, "203.0.113.51:5000", "ann", "ann-pw");
    assert_eq!(got[0], "hello", "{got:?}\n{}", relay.stderr());
    assert!(relay.wait_for_log("client=203.0.113.51:5000", Duration::from_secs(5)));
}
