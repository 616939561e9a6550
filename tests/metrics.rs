//! `--metrics`: the real binary's Prometheus endpoint on loopback. Byte and session counters
//! and histogram counts match the sessions the test ran; the Python client library's parser
//! (`prometheus_client`, an independent reading of the text format) accepts the whole page
//! and every value asserted here comes from it; other paths get 404; a scraper that sends
//! one byte and stalls neither blocks the next scrape nor stays connected.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Backend, RelayProcess};
use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet, Value};

/// Reads the page with `prometheus_client.parser` and prints what it understood: one
/// `F name type samples` line per family, one `S name labels value` line per sample (labels
/// as `k=v` pairs joined by `,`, sorted; `-` when none). A page it refuses exits non-zero.
const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    print("F", f.name, f.type, len(f.samples))
    for s in f.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) or "-"
        print("S", s.name, labels, repr(float(s.value)))
"#;

/// A page as the independent parser read it.
#[derive(Debug, Default)]
struct Page {
    /// Family name (without `_total`, as the parser names counters) -> type.
    families: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Page {
    fn parse(text: &str) -> Page {
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", PARSE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 (scripts/test.sh installs python3-prometheus-client)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client refused the page: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut page = Page::default();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f[..] {
                ["F", name, kind, samples] => {
                    // A sample under no TYPE line of its name would be a family of its
                    // own, `unknown`, and leave its TYPE line's family empty.
                    assert!(kind != "unknown" && samples != "0", "{line}");
                    page.families.insert(name.into(), kind.into());
                }
                ["S", name, labels, value] => {
                    let labels = labels
                        .split(',')
                        .filter(|l| *l != "-")
                        .map(|l| {
                            let (k, v) = l.split_once('=').unwrap();
                            (k.to_string(), v.to_string())
                        })
                        .collect();
                    page.samples
                        .push((name.into(), labels, value.parse().unwrap()));
                }
                _ => panic!("unexpected parser output {line:?}"),
            }
        }
        assert!(page.samples.len() > 50, "{page:?}");
        page
    }

    /// The samples named `name` whose labels include every pair of `with`.
    fn values(&self, name: &str, with: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && with
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect()
    }

    /// The sum of [`Page::values`]; the sample must exist.
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        let v = self.values(name, with);
        assert!(!v.is_empty(), "no sample {name} {with:?}");
        v.iter().sum()
    }

    /// Checks a histogram's shape (buckets cumulative, `+Inf` equal to `_count`) and returns
    /// its count.
    fn histogram_count(&self, name: &str) -> f64 {
        assert_eq!(
            self.families.get(name).map(String::as_str),
            Some("histogram")
        );
        let buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|(n, _, _)| *n == format!("{name}_bucket"))
            .map(|(_, l, v)| (l["le"].parse::<f64>().unwrap(), *v))
            .collect();
        assert!(buckets.len() >= 10, "{name}: {buckets:?}");
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        let (last_le, last) = *buckets.last().unwrap();
        assert!(last_le.is_infinite());
        let count = self.sum(&format!("{name}_count"), &[]);
        assert_eq!(last, count, "{name}: +Inf bucket and count differ");
        count
    }
}

/// The address the relay's log says `/metrics` is served on.
fn metrics_addr(relay: &RelayProcess) -> SocketAddr {
    const SAYS: &str = "metrics on http://";
    assert!(
        relay.wait_for_log(SAYS, Duration::from_secs(10)),
        "{}",
        relay.stderr()
    );
    let log = relay.stderr();
    let at = &log[log.find(SAYS).unwrap() + SAYS.len()..];
    at[..at.find('/').unwrap()].parse().unwrap()
}

/// One request; the status code and the whole response.
fn request(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = common::connect(addr);
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

/// `/metrics` read by the independent parser.
fn scrape(addr: SocketAddr) -> Page {
    let (status, response) = get(addr, "/metrics");
    assert_eq!(status, 200, "{response}");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    Page::parse(body)
}

/// Scrapes until `closed` sessions have ended (a client sees EOF a moment before the relay
/// counts the close).
fn scrape_after(addr: SocketAddr, closed: f64) -> Page {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = scrape(addr);
        let done = page.sum("deskrelay_sessions_closed_total", &[]);
        if done >= closed || Instant::now() > deadline {
            return page;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn counters_and_histograms_match_the_sessions_and_the_whole_page_parses() {
    const SESSIONS: u64 = 3;
    const LEN: u64 = 1 << 20;
    let backend = Backend::transfer();
    let relay = RelayProcess::start(&[
        "--forward",
        &backend.addr.to_string(),
        "--shards",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&relay);

    let before = scrape(addr);
    assert_eq!(before.sum("deskrelay_connections_accepted_total", &[]), 0.0);
    assert_eq!(
        before.histogram_count("deskrelay_backend_connect_seconds"),
        0.0
    );

    let failures = common::transfers(relay.addr, SESSIONS, LEN);
    assert!(failures.is_empty(), "{failures:?}");
    let page = scrape_after(addr, SESSIONS as f64);

    // Every family typed, per-shard samples for both shards.
    for (family, kind) in [
        ("deskrelay_connections_accepted", "counter"),
        ("deskrelay_relayed_bytes", "counter"),
        ("deskrelay_sessions_active", "gauge"),
        ("deskrelay_build_info", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(page.families.get(family).map(String::as_str), Some(kind));
    }
    let accepted = page.values("deskrelay_connections_accepted_total", &[]);
    assert_eq!(accepted.len(), 2, "one sample per shard");

    // What happened: SESSIONS sessions, each a 16-byte header and LEN bytes up, LEN down.
    let n = SESSIONS as f64;
    assert_eq!(accepted.iter().sum::<f64>(), n);
    assert_eq!(page.sum("deskrelay_sessions_closed_total", &[]), n);
    assert_eq!(page.sum("deskrelay_sessions_active", &[]), 0.0);
    let up = [("direction", "client_to_backend")];
    let down = [("direction", "backend_to_client")];
    assert_eq!(
        page.sum("deskrelay_relayed_bytes_total", &up),
        n * (16 + LEN) as f64
    );
    assert_eq!(
        page.sum("deskrelay_relayed_bytes_total", &down),
        n * LEN as f64
    );
    assert_eq!(
        page.sum("deskrelay_backend_connect_failures_total", &[]),
        0.0
    );
    assert_eq!(
        page.histogram_count("deskrelay_session_duration_seconds"),
        n
    );
    assert_eq!(page.histogram_count("deskrelay_backend_connect_seconds"), n);
    assert_eq!(
        page.histogram_count("deskrelay_xpra_handshake_seconds"),
        0.0
    );
    assert!(page.sum("deskrelay_session_duration_seconds_sum", &[]) > 0.0);
    let connect_secs = page.sum("deskrelay_backend_connect_seconds_sum", &[]);
    assert!(
        connect_secs > 0.0 && connect_secs < n * 5.0,
        "{connect_secs}"
    );

    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(page.sum("deskrelay_build_info", &version), 1.0);
    assert!(page.sum("deskrelay_uptime_seconds", &[]) > 0.0);
    assert!(page.sum("process_open_fds", &[]) >= 3.0);
    assert!(page.sum("process_resident_memory_bytes", &[]) > 1e6);
}

#[test]
fn other_paths_are_404_and_a_stalled_scraper_does_not_block_the_next() {
    let relay = RelayProcess::start(&[
        "--forward",
        &common::dead_addr().to_string(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&relay);
    assert_eq!(get(addr, "/").0, 404);
    assert_eq!(get(addr, "/metrics/extra").0, 404);
    assert_eq!(
        request(addr, "POST /metrics HTTP/1.1\r\nHost: t\r\n\r\n").0,
        405
    );
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
    assert_eq!(request(addr, &huge).0, 431);

    // One byte, then silence.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"G").unwrap();
    let opened = Instant::now();
    for _ in 0..3 {
        let t = Instant::now();
        scrape(addr);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "a scrape took {:?} beside a stalled one",
            t.elapsed()
        );
    }
    // And the stalled one is cut off after the server's deadline (5 s), not kept.
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    let held = opened.elapsed();
    assert!(
        held > Duration::from_secs(3) && held < Duration::from_secs(15),
        "{held:?}"
    );
}

fn xpra_frame(items: Vec<Value>) -> Vec<u8> {
    encode_frame(&Packet::new(items), Encoding::Rencode, Compression::None).unwrap()
}

fn xpra_hello() -> Vec<u8> {
    let mut caps = Value::Dict(vec![]);
    caps.insert("version", Value::str("3.1.3"));
    caps.insert("rencode", Value::Bool(true));
    xpra_frame(vec![Value::str("hello"), caps])
}

fn read_packet(s: &mut TcpStream) -> Vec<Value> {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut dec = FrameDecoder::new(Limits::default());
    let (mut buf, mut chunk) = (BytesMut::new(), [0u8; 4096]);
    loop {
        if let Some(d) = dec.decode(&mut buf).expect("valid frames") {
            return d.packet.items;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a whole packet");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn an_xpra_login_is_timed_from_its_hello_to_relaying() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let session = format!("tcp://{}/", server.local_addr().unwrap());
    let relay = RelayProcess::start(&[
        "--auth",
        "allow",
        "--session",
        &session,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&relay);
    let mut client = relay.connect();
    client.write_all(&xpra_hello()).unwrap();
    let (mut backend, _) = server.accept().unwrap();
    assert_eq!(read_packet(&mut backend)[0].as_str(), Some("hello"));
    // The server takes its time: the handshake histogram sees it.
    std::thread::sleep(Duration::from_millis(30));
    backend.write_all(&xpra_hello()).unwrap();
    assert_eq!(read_packet(&mut client)[0].as_str(), Some("hello"));
    drop(client);
    drop(backend);

    let page = scrape_after(addr, 1.0);
    assert_eq!(page.sum("deskrelay_sessions_closed_total", &[]), 1.0);
    assert_eq!(
        page.histogram_count("deskrelay_xpra_handshake_seconds"),
        1.0
    );
    assert_eq!(
        page.histogram_count("deskrelay_backend_connect_seconds"),
        1.0
    );
    assert_eq!(
        page.histogram_count("deskrelay_session_duration_seconds"),
        1.0
    );
    let handshake = page.sum("deskrelay_xpra_handshake_seconds_sum", &[]);
    assert!((0.03..10.0).contains(&handshake), "{handshake}");
    // At or below 10 ms: none; the 30 ms wait puts it in a later bucket.
    let early = page.sum("deskrelay_xpra_handshake_seconds_bucket", &[("le", "0.01")]);
    assert_eq!(early, 0.0);
}
