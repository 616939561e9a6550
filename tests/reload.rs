//! SIGHUP reloads everything reloadable at once (the TLS certificate, the multifile, the
//! tokens file, the limits in the `--config` file) while an authenticated xpra session over
//! TLS and a WebSocket token session keep their bytes both ways; then SIGTERM drains them.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::xpra_login::{echo_session_server, frame, hello};
use common::{Backend, RelayProcess, Scratch};
use deskrelay::front::ws::client_binary;
use deskrelay::xpra::auth::{answer, Transport};
use deskrelay::xpra::{FrameDecoder, Limits, Value};
use rustls::pki_types::{CertificateDer, ServerName};

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A self-signed certificate for `localhost`; written over `cert.pem` and `key.pem`.
fn write_cert(scratch: &Scratch) -> CertificateDer<'static> {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    scratch.file("cert.pem", &key.cert.pem());
    scratch.file("key.pem", &key.key_pair.serialize_pem());
    key.cert.der().clone()
}

/// A TLS connection to `addr` that trusts `cert` and nothing else.
fn tls_connect(addr: SocketAddr, cert: &CertificateDer<'static>) -> std::io::Result<TlsStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, common::connect(addr));
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Reads one xpra packet from any stream, a byte at a time (None when it ends first).
fn read_packet(s: &mut impl Read) -> Option<Vec<Value>> {
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some(d) = dec.decode(&mut buf).expect("valid frames") {
            return Some(d.packet.items);
        }
        match s.read(&mut byte) {
            Ok(0) | Err(_) => return None,
            Ok(_) => buf.extend_from_slice(&byte),
        }
    }
}

/// An xpra login over `s` (TLS or not): the packet that ended the handshake.
fn login(s: &mut (impl Read + Write), user: &str, password: &str, t: Transport) -> Vec<Value> {
    s.write_all(&frame(vec![Value::str("hello"), hello(user)]))
        .unwrap();
    let challenge = read_packet(s).expect("a challenge");
    assert_eq!(challenge[0].as_str(), Some("challenge"), "{challenge:?}");
    let mut second = hello(user);
    answer(&challenge, password.as_bytes(), t)
        .expect("a digest we know")
        .apply(&mut second);
    s.write_all(&frame(vec![Value::str("hello"), second]))
        .unwrap();
    read_packet(s).expect("an answer")
}

/// One frame there and back through an xpra session on the echo server, byte for byte.
fn xpra_round(s: &mut (impl Read + Write), round: u8) {
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8 ^ round).collect();
    let sent = frame(vec![Value::str("test-data"), Value::Bytes(payload)]);
    s.write_all(&sent).unwrap();
    s.flush().unwrap();
    let mut back = vec![0u8; sent.len()];
    s.read_exact(&mut back).unwrap();
    assert!(back == sent, "xpra round {round}: the echoed frame differs");
}

/// One masked binary frame there and back through a WebSocket token session on an echo
/// backend: the server's unmasked frame carries the same payload.
fn ws_round(s: &mut TcpStream, round: u8) {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8 ^ round).collect();
    s.write_all(&client_binary(&payload, [round, 1, 2, 3]))
        .unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    assert_eq!(
        head[..2],
        [0x82, 126],
        "round {round}: a binary frame of 1000 bytes"
    );
    assert_eq!(u16::from_be_bytes([head[2], head[3]]), 1000);
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).unwrap();
    assert!(
        back == payload,
        "ws round {round}: the echoed payload differs"
    );
}

/// The status line the relay answers a WebSocket upgrade of `target` with.
fn upgrade_status(addr: SocketAddr, target: &str) -> String {
    let mut s = common::ws_upgrade_request(addr, target);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).trim_end().to_string()
}

fn users(session: SocketAddr, password: &str) -> String {
    format!("amy|{password}|1000|1000|tcp://{session}/||\n")
}

#[test]
fn sighup_reloads_certificate_passwords_tokens_and_limits_without_dropping_a_session() {
    let scratch = Scratch::new("reload");
    let session = echo_session_server();
    let echo = Backend::echo();
    let old_cert = write_cert(&scratch);
    let users_file = scratch.file("users", &users(session, "old-pw"));
    let tokens = scratch.file("tokens", &format!("old-token: {}\n", echo.addr));
    let config = scratch.file("deskrelay.toml", "max-sessions = 50\n");
    let relay = RelayProcess::start(&[
        "--config",
        config.to_str().unwrap(),
        "--auth",
        &format!("multifile:{}", users_file.display()),
        "--tokens",
        tokens.to_str().unwrap(),
        "--tls-cert",
        scratch.path("cert.pem").to_str().unwrap(),
        "--tls-key",
        scratch.path("key.pem").to_str().unwrap(),
        "--drain-timeout",
        "20",
    ]);

    // (a) amy over TLS, (b) a WebSocket token session, both carrying bytes.
    let mut xpra = tls_connect(relay.addr, &old_cert).expect("TLS with the first certificate");
    let reply = login(&mut xpra, "amy", "old-pw", Transport::Tls);
    assert_eq!(reply[0].as_str(), Some("hello"), "{reply:?}");
    xpra_round(&mut xpra, 0);
    let mut ws = common::ws_upgrade(relay.addr, "/?token=old-token");
    ws_round(&mut ws, 0);

    // Everything changes on disk, then one signal.
    let new_cert = write_cert(&scratch);
    scratch.file("users", &users(session, "new-pw"));
    scratch.file("tokens", &format!("new-token: {}\n", echo.addr));
    scratch.file("deskrelay.toml", "max-sessions = 60\n");
    relay.signal(libc::SIGHUP);
    for line in [
        "SIGHUP: TLS certificate reloaded".to_string(),
        format!("SIGHUP: password file {} reloaded", users_file.display()),
        format!("SIGHUP: token file {} reloaded", tokens.display()),
        "max-sessions: 50 -> 60".to_string(),
    ] {
        assert!(
            relay.wait_for_log(&line, Duration::from_secs(10)),
            "no {line:?} in\n{}",
            relay.stderr()
        );
    }

    // The open sessions carry bytes both ways, several rounds.
    for round in 1..=3 {
        xpra_round(&mut xpra, round);
        ws_round(&mut ws, round);
    }

    // A new handshake gets the new certificate: a client that trusts only the old one fails.
    let refused = tls_connect(relay.addr, &old_cert);
    assert!(refused.is_err(), "a new handshake still sees the old cert");
    let mut fresh = tls_connect(relay.addr, &new_cert).expect("TLS with the new certificate");

    // The new password logs in, the old one is refused.
    let ok = login(&mut fresh, "amy", "new-pw", Transport::Tls);
    assert_eq!(ok[0].as_str(), Some("hello"), "{ok:?}");
    xpra_round(&mut fresh, 9);
    let mut old = tls_connect(relay.addr, &new_cert).unwrap();
    let no = login(&mut old, "amy", "old-pw", Transport::Tls);
    assert_eq!(no[0].as_str(), Some("disconnect"), "{no:?}");
    assert_eq!(no[2].as_str(), Some("authentication failed"), "{no:?}");

    // The new token upgrades, the old one is refused.
    let mut ws_new = common::ws_upgrade(relay.addr, "/?token=new-token");
    ws_round(&mut ws_new, 7);
    let status = upgrade_status(relay.addr, "/?token=old-token");
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");

    // The sessions from before the reload still work after all that.
    xpra_round(&mut xpra, 4);
    ws_round(&mut ws, 4);

    // SIGTERM drains: no new sessions, the open ones keep their bytes until they close.
    drop((fresh, ws_new, old));
    let mut relay = relay;
    relay.signal(libc::SIGTERM);
    assert!(relay.wait_for_log("no new sessions; draining", Duration::from_secs(10)));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(relay.addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        std::thread::sleep(Duration::from_millis(50));
    }
    xpra_round(&mut xpra, 5);
    ws_round(&mut ws, 5);
    assert!(
        relay.wait_exit(Duration::from_millis(500)).is_none(),
        "did not wait"
    );
    xpra.conn.send_close_notify();
    let _ = xpra.flush();
    drop((xpra, ws));
    let status = relay.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", relay.stderr());
}
