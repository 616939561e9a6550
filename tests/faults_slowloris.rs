//! Slowloris at every door of one shared port: clients trickling one byte per second into
//! an xpra hello, an HTTP request head, a TLS ClientHello and (from a trusted balancer) a
//! PROXY header are each cut at their deadline with their answer (`disconnect` "login
//! timeout", HTTP 408, a close and a log line), all at once, while an authenticated xpra
//! session on the same relay carries verified bytes throughout.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::xpra_login::{echo_frame, echo_session_server, frame, hello, login};
use common::{connect_from, OnePortFiles, RelayProcess, Scratch};
use deskrelay::front::proxy_protocol::encode_v2;
use deskrelay::xpra::{FrameDecoder, Limits, Value};

/// `--pre-auth-timeout`: from the xpra door's start to the end of the login.
const PRE_AUTH: Duration = Duration::from_secs(3);
/// `--sniff-timeout`: from accept to the first bytes that say what a connection is (and to
/// a whole PROXY header), from then to a whole HTTP request head or TLS handshake. Long
/// enough that "GET " at one byte a second (4 s) is sniffed as HTTP before it passes.
const SNIFF: Duration = Duration::from_secs(5);
/// The only peer trusted to send a PROXY header; everyone else connects from 127.0.0.1.
const BALANCER: &str = "127.0.0.9";

/// What a slow client got: everything the relay sent before it closed, and when it closed
/// (since connecting).
struct Cut {
    got: Vec<u8>,
    after: Duration,
}

/// Connects from `source`, writes `bytes` one per second (stopping when the relay closes)
/// and reads until the relay closes.
fn trickle(relay: SocketAddr, source: &str, bytes: Vec<u8>) -> Cut {
    let mut s = connect_from(relay, source);
    let start = Instant::now();
    let mut writer = s.try_clone().unwrap();
    thread::spawn(move || {
        for b in bytes {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_secs(1));
        }
    });
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    Cut {
        got,
        after: start.elapsed(),
    }
}

/// A ClientHello as rustls writes it: a real first flight, never to be finished.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    assert_eq!(hello[..2], [0x16, 0x03], "a handshake record");
    hello
}

/// The bystander: frames through an established xpra session, each echoed and checked
/// byte for byte, until `stop`; returns the rounds and the slowest one.
fn keep_relaying(mut s: TcpStream, stop: Arc<AtomicBool>) -> Result<(u32, Duration), String> {
    let (mut rounds, mut slowest) = (0u32, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        echo_frame(&mut s, rounds, 16_384)?;
        slowest = slowest.max(start.elapsed());
        rounds += 1;
        thread::sleep(Duration::from_millis(50));
    }
    Ok((rounds, slowest))
}

#[test]
fn one_byte_a_second_is_cut_at_each_deadline_and_a_live_session_keeps_its_bytes() {
    let scratch = Scratch::new("slowloris");
    let session = echo_session_server();
    let files = OnePortFiles::new(&scratch, session, "localhost");
    let mut args = files.args();
    args.extend([
        "--pre-auth-timeout".into(),
        PRE_AUTH.as_secs().to_string(),
        "--sniff-timeout".into(),
        SNIFF.as_secs().to_string(),
        "--accept-proxy-from".into(),
        format!("{BALANCER}/32"),
    ]);
    let relay = RelayProcess::start_logging(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        // The door's own closes (a TLS handshake that never ended) are debug lines.
        "info,deskrelay::engine::shard=debug",
    );

    let (bystander, reply, _) = login(relay.addr, "zoe", "zoe-pw");
    assert_eq!(reply[0].as_str(), Some("hello"), "{reply:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let bystander = thread::spawn(move || keep_relaying(bystander, flag));

    let addr = relay.addr;
    let xpra_hello = frame(vec![Value::str("hello"), hello("zoe")]);
    let http_head =
        b"GET /?token=desk HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n".to_vec();
    let tls_hello = client_hello();
    let proxy_header = encode_v2("198.51.100.7:40000".parse().unwrap(), addr);
    let slow = [
        ("127.0.0.1", xpra_hello),
        ("127.0.0.1", http_head),
        ("127.0.0.1", tls_hello),
        (BALANCER, proxy_header),
    ]
    .map(|(source, bytes)| thread::spawn(move || trickle(addr, source, bytes)));
    let [xpra, http, tls, proxy] = slow.map(|t| t.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    let (rounds, slowest) = bystander
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("the bystander lost bytes: {e}\n{}", relay.stderr()));
    let log = relay.stderr();

    // (a) xpra: a disconnect with the reason, at the pre-auth deadline (after the two bytes
    // the sniffer needs).
    let packet = first_packet(&xpra.got);
    assert_eq!(
        (packet[0].as_str(), packet[1].as_str()),
        (Some("disconnect"), Some("login timeout")),
        "{packet:?}"
    );
    within(
        xpra.after,
        PRE_AUTH,
        PRE_AUTH + Duration::from_secs(3),
        "xpra hello",
    );

    // (b) HTTP: 408 once the head is not whole a request deadline after it was sniffed.
    let answer = String::from_utf8_lossy(&http.got);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    within(http.after, SNIFF, SNIFF * 2, "HTTP head");

    // (c) TLS: closed at the handshake deadline without a byte of ours, and logged.
    assert!(tls.got.is_empty(), "TLS: {:?}", tls.got);
    within(
        tls.after,
        SNIFF,
        SNIFF + Duration::from_secs(3),
        "TLS ClientHello",
    );
    assert!(
        log.contains("closed at the door: TLS handshake timed out"),
        "{log}"
    );

    // (d) PROXY from the trusted balancer: closed at the sniff deadline, and logged.
    assert!(proxy.got.is_empty(), "PROXY: {:?}", proxy.got);
    within(
        proxy.after,
        SNIFF,
        SNIFF + Duration::from_secs(3),
        "PROXY header",
    );
    let line =
        format!("bad PROXY header: no header before the deadline; closed balancer={BALANCER}");
    assert!(log.contains(&line), "no {line:?} in\n{log}");

    // The bystander kept going the whole time, each round promptly.
    let longest = [xpra.after, http.after, tls.after, proxy.after]
        .into_iter()
        .max()
        .unwrap();
    assert!(
        rounds as u128 >= longest.as_millis() / 1000 * 5,
        "{rounds} rounds in {longest:?}"
    );
    assert!(slowest < Duration::from_secs(1), "a round took {slowest:?}");
    eprintln!(
        "xpra {:?}, http {:?}, tls {:?}, proxy {:?}; bystander {rounds} rounds, slowest {slowest:?}",
        xpra.after, http.after, tls.after, proxy.after
    );
}

/// Asserts that `took` is in `[low - 0.3 s, high)`.
fn within(took: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        took >= low.saturating_sub(Duration::from_millis(300)) && took < high,
        "{what}: cut after {took:?}, not between {low:?} and {high:?}"
    );
}

/// The first xpra packet in `bytes`.
fn first_packet(bytes: &[u8]) -> Vec<Value> {
    let mut buf = BytesMut::from(bytes);
    FrameDecoder::new(Limits::default())
        .decode(&mut buf)
        .expect("valid frames")
        .unwrap_or_else(|| panic!("no whole packet before the close: {bytes:?}"))
        .packet
        .items
}
