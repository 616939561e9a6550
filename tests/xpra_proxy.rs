//! deskrelay as an xpra proxy, between the real xpra 3.1.3 client and real xpra servers:
//! the window the session shows reaches the client, refusals are the disconnect reasons the
//! client prints, and one session's end leaves the others alone.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::xpra::{
    tcp_uri, xpra_info, Compression, Dir, FrameTap, ServerOpts, XpraClient, XpraServer, STARTUP,
};
use common::RelayProcess;
use deskrelay::xpra::{FrameDecoder, Limits, Value};

/// A multifile in a private temp dir (mode 0600), removed on drop.
struct MultiFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl MultiFile {
    fn new(lines: &[String]) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("deskrelay-mf-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self { dir, path }
    }

    fn arg(&self) -> String {
        format!("multifile:{}", self.path.display())
    }
}

impl Drop for MultiFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn line(user: &str, password: &str, displays: &[String]) -> String {
    format!("{user}|{password}|1000|1000|{}||", displays.join(","))
}

fn relay_uri(relay: &RelayProcess, user: &str, display: Option<&str>) -> String {
    let base = tcp_uri(relay.addr, Some(user));
    match display {
        Some(d) => format!("{base}{d}"),
        None => base,
    }
}

/// Reads frames from a raw socket until a `disconnect`; returns its strings.
fn read_disconnect(s: &mut std::net::TcpStream) -> Vec<String> {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = bytes::BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(d) = dec.decode(&mut buf).expect("the relay writes valid frames") {
            let items: Vec<String> = d
                .packet
                .items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            if items.first().map(String::as_str) == Some("disconnect") {
                return items;
            }
            continue;
        }
        let n = s.read(&mut chunk).expect("read from the relay");
        assert!(n > 0, "closed without a disconnect packet");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn the_session_window_reaches_the_client_through_the_relay() {
    let server = XpraServer::start(ServerOpts::default());
    let users = MultiFile::new(&[line("alice", "alice-pw", &[server.uri()])]);
    let relay = RelayProcess::start(&["--auth", &users.arg()]);
    let client = XpraClient::attach(&relay_uri(&relay, "alice", None), Some("alice-pw"), &[]);
    let took = client
        .wait_for_window("xclock", STARTUP)
        .unwrap_or_else(|e| panic!("{e}\nrelay:\n{}", relay.stderr()));
    println!("attach through deskrelay -> xclock window mapped: {took:?}");
    // Painted, not just mapped: screen updates flow through the frame gate.
    let deadline = Instant::now() + STARTUP;
    loop {
        let w = client.find_window("xclock").unwrap().expect("window");
        if client.window_colours(&w).unwrap() > 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the clock was never painted");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_wrong_password_or_an_unknown_user_is_told_authentication_failed() {
    let server = XpraServer::start(ServerOpts::default());
    let users = MultiFile::new(&[line("alice", "alice-pw", &[server.uri()])]);
    let relay = RelayProcess::start(&["--auth", &users.arg()]);
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-pw")] {
        let mut client = XpraClient::attach(&relay_uri(&relay, user, None), Some(password), &[]);
        let (code, out) = client.wait_exit(STARTUP).unwrap();
        assert_eq!(code, 18, "{user}: {out}");
        assert!(out.contains(" authentication failed\n"), "{user}: {out}");
    }
    assert!(relay.wait_for_log("refused: authentication failed", Duration::from_secs(5)));
    assert!(
        !relay.stderr().contains("alice-pw"),
        "a password reached the log"
    );
}

#[test]
fn a_user_with_two_sessions_picks_one_by_display_or_is_asked_to() {
    let tcp = XpraServer::start(ServerOpts::default());
    let local = XpraServer::start(ServerOpts::default());
    let users = MultiFile::new(&[line(
        "bob",
        "bob-pw",
        &[tcp.uri(), format!(":{}", local.display)],
    )]);
    let socket_dir = local.socket_dir();
    let relay = RelayProcess::start(&[
        "--auth",
        &users.arg(),
        "--socket-dir",
        socket_dir.to_str().unwrap(),
    ]);

    let mut unspecified = XpraClient::attach(&relay_uri(&relay, "bob", None), Some("bob-pw"), &[]);
    let (code, out) = unspecified.wait_exit(STARTUP).unwrap();
    assert_eq!(code, 18, "{out}");
    assert!(out.contains(" please specify a display\n"), "{out}");

    // By display number: the local session, over its unix socket.
    let display = local.display.to_string();
    let by_display = XpraClient::attach(
        &relay_uri(&relay, "bob", Some(&display)),
        Some("bob-pw"),
        &[],
    );
    by_display
        .wait_for_window("xclock", STARTUP)
        .unwrap_or_else(|e| panic!("{e}\nrelay:\n{}", relay.stderr()));
    drop(by_display);
    // The session's end line (the start line has no byte counts).
    let ended = format!("target=\":{}\" to_backend=", local.display);
    assert!(relay.wait_for_log(&ended, STARTUP), "{}", relay.stderr());

    // By port: the TCP session.
    let port = tcp.port.to_string();
    let by_port = XpraClient::attach(&relay_uri(&relay, "bob", Some(&port)), Some("bob-pw"), &[]);
    by_port
        .wait_for_window("xclock", STARTUP)
        .unwrap_or_else(|e| panic!("{e}\nrelay:\n{}", relay.stderr()));
    drop(by_port);
    let ended = format!("target=\"tcp://127.0.0.1:{}/\" to_backend=", tcp.port);
    assert!(relay.wait_for_log(&ended, STARTUP), "{}", relay.stderr());
}

#[test]
fn xpra_info_through_the_relay_shows_the_proxy_entries() {
    let server = XpraServer::start(ServerOpts::default());
    let users = MultiFile::new(&[line("carol", "carol-pw", &[server.uri()])]);
    let relay = RelayProcess::start(&["--auth", &users.arg()]);
    let lines = xpra_info(&relay_uri(&relay, "carol", None), Some("carol-pw"))
        .unwrap_or_else(|e| panic!("{e}\nrelay:\n{}", relay.stderr()));
    for key in [
        "proxy.server=deskrelay",
        "proxy.version=",
        "proxy.shard=",
        "proxy.latency.server-us=",
        "server.mode=",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(key)),
            "no {key} in xpra info through the relay: {lines:?}"
        );
    }
}

#[test]
fn lz4_and_zlib_clients_both_get_their_compression_end_to_end() {
    let server = XpraServer::start(ServerOpts::default());
    let users = MultiFile::new(&[line("dave", "dave-pw", &[server.uri()])]);
    let relay = RelayProcess::start(&["--auth", &users.arg()]);
    for lz4 in [true, false] {
        let tap = FrameTap::start(relay.addr);
        let uri = tcp_uri(tap.addr, Some("dave"));
        let client = if lz4 {
            XpraClient::attach(&uri, Some("dave-pw"), &[])
        } else {
            XpraClient::attach_without_lz4(&uri, Some("dave-pw"), &[])
        };
        client
            .wait_for_window("xclock", STARTUP)
            .unwrap_or_else(|e| panic!("lz4={lz4}: {e}\nrelay:\n{}", relay.stderr()));
        drop(client);
        let from_server: Vec<Compression> = tap
            .frames()
            .iter()
            .filter(|f| f.dir == Dir::ServerToClient)
            .map(|f| f.header.compression())
            .filter(|c| *c != Compression::None)
            .collect();
        let any_lz4 = from_server.iter().any(|c| matches!(c, Compression::Lz4(_)));
        assert_eq!(any_lz4, lz4, "lz4={lz4}: server frames {from_server:?}");
    }
}

#[test]
fn a_dying_backend_disconnects_its_client_and_the_relay_serves_the_others() {
    let doomed = XpraServer::start(ServerOpts::default());
    let survivor = XpraServer::start(ServerOpts::default());
    let users = MultiFile::new(&[
        line("erin", "erin-pw", &[doomed.uri()]),
        line("frank", "frank-pw", &[survivor.uri()]),
    ]);
    let relay = RelayProcess::start(&["--auth", &users.arg()]);
    let mut erin = XpraClient::attach(&relay_uri(&relay, "erin", None), Some("erin-pw"), &[]);
    let frank = XpraClient::attach(&relay_uri(&relay, "frank", None), Some("frank-pw"), &[]);
    erin.wait_for_window("xclock", STARTUP).unwrap();
    frank.wait_for_window("xclock", STARTUP).unwrap();

    doomed.stop();
    let (_, out) = erin.wait_exit(STARTUP).unwrap();
    assert!(out.contains("server shutdown"), "{out}");
    assert!(
        relay.wait_for_log("server: server shutdown", STARTUP),
        "{}",
        relay.stderr()
    );

    // frank's session is untouched, and new sessions still start.
    assert!(frank.find_window("xclock").unwrap().is_some());
    drop(frank);
    let again = XpraClient::attach(&relay_uri(&relay, "frank", None), Some("frank-pw"), &[]);
    again.wait_for_window("xclock", STARTUP).unwrap();
}

#[test]
fn an_oversized_first_frame_gets_a_disconnect_without_the_allocation() {
    let users = MultiFile::new(&[line("gina", "gina-pw", &["tcp://127.0.0.1:9/".into()])]);
    let relay = RelayProcess::start(&["--auth", &users.arg()]);
    let mut s = relay.connect();
    // Claims 200 MiB: refused from the header alone.
    s.write_all(&[b'P', 1, 0, 0, 0x0c, 0x80, 0, 0]).unwrap();
    let reasons = read_disconnect(&mut s);
    assert_eq!(reasons[1], "protocol error", "{reasons:?}");
    assert!(reasons[2].contains("packet too large"), "{reasons:?}");
}

#[test]
fn a_client_stuck_in_its_hello_is_disconnected_at_the_pre_auth_deadline() {
    let users = MultiFile::new(&[line("hank", "hank-pw", &["tcp://127.0.0.1:9/".into()])]);
    let relay = RelayProcess::start(&["--auth", &users.arg(), "--pre-auth-timeout", "1"]);
    let started = Instant::now();
    let mut s = relay.connect();
    // An xpra header announcing 100 bytes, then nothing: a slowloris hello. (A client that
    // sends nothing at all is not known to be xpra: the sniffer closes it, front_sniffing.rs.)
    s.write_all(&[b'P', 1, 0, 0, 0, 0, 0, 100]).unwrap();
    let reasons = read_disconnect(&mut s);
    assert_eq!(reasons[1], "login timeout", "{reasons:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_world_readable_multifile_is_refused_at_start() {
    let users = MultiFile::new(&[line("ivy", "ivy-pw", &["tcp://127.0.0.1:9/".into()])]);
    std::fs::set_permissions(&users.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskrelay"))
        .args(["proxy", "--bind", "127.0.0.1:0", "--auth", &users.arg()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(users.path.to_str().unwrap()), "{err}");
}
