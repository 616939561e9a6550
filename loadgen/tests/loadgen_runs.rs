//! loadgen, run for real: sessions through a real relay on loopback, every byte checked, the
//! JSON report's schema, a stalled relay measured as latency, and a target that is down.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn loadgen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.env("DESKRELAY_LOG", "warn");
    cmd
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port nothing listens on, for a backend that several runs in a row bind.
///
/// Taken from just below the kernel's ephemeral range: a port the kernel handed out with
/// `:0` can meanwhile become the local end of some other test's outgoing connection, and
/// then the next run cannot bind it (seen in CI). Ports below the range are never picked
/// for outgoing connections.
fn free_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    const SPAN: u16 = 8000;
    let base = low.saturating_sub(SPAN).max(1024);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let addr = SocketAddr::from(([127, 0, 0, 1], base + offset));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port in {base}..{}", base + SPAN);
}

fn report(path: &PathBuf, out: &Output) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// Every key the schema in loadgen/README.md promises, with its JSON type.
fn assert_schema(r: &Value) {
    let number = |v: &Value, what: &str| assert!(v.is_number(), "{what} is not a number: {v}");
    assert_eq!(r["schema"], 1);
    for key in ["label", "profile", "protocol", "mode", "target", "backend"] {
        assert!(r["config"][key].is_string(), "config.{key}");
    }
    assert!(r["config"]["saturate"].is_boolean(), "config.saturate");
    for key in [
        "workers",
        "sessions",
        "ramp_per_sec",
        "duration_s",
        "elapsed_s",
    ] {
        number(&r["config"][key], key);
    }
    for key in ["opened", "failed"] {
        number(&r["sessions"][key], key);
    }
    assert!(r["sessions"]["failed_reasons"].is_object());
    let percentiles = |p: &Value, what: &str| {
        for key in [
            "count", "p50", "p90", "p99", "p99_9", "p99_99", "max", "mean",
        ] {
            number(&p[key], &format!("{what}.{key}"));
        }
    };
    percentiles(&r["sessions"]["connect_us"], "connect_us");
    percentiles(&r["sessions"]["handshake_us"], "handshake_us");
    for key in ["completed", "failed", "per_sec"] {
        number(&r["handshakes"][key], &format!("handshakes.{key}"));
    }
    let per_cpu = &r["handshakes"]["per_relay_cpu_s"];
    assert!(per_cpu.is_number() || per_cpu.is_null(), "{per_cpu}");
    for dir in ["upstream", "downstream"] {
        let d = &r[dir];
        for key in [
            "messages_sent",
            "bytes_sent",
            "messages",
            "bytes",
            "throughput_mbit_s",
            "messages_per_s",
        ] {
            number(&d[key], &format!("{dir}.{key}"));
        }
        percentiles(&d["latency_us"], dir);
        let dist = d["distribution"].as_array().expect("distribution");
        assert!(!dist.is_empty(), "{dir} distribution is empty");
        assert_eq!(dist.last().unwrap()["percentile"], 100.0);
        assert!(dist
            .windows(2)
            .all(|w| w[0]["latency_us"].as_f64() <= w[1]["latency_us"].as_f64()));
    }
    number(&r["errors"]["total"], "errors.total");
    assert!(r["errors"]["by_kind"].is_object() && r["errors"]["samples"].is_array());
    assert!(r["resources"].is_object());
}

/// The report shows a clean run: all sessions, no error, every sent message verified.
fn assert_clean(r: &Value, sessions: u64) {
    assert_eq!(r["sessions"]["opened"], sessions, "{r:#}");
    assert_eq!(r["sessions"]["failed"], 0);
    assert_eq!(r["errors"]["total"], 0, "errors: {:#}", r["errors"]);
    for dir in ["upstream", "downstream"] {
        let d = &r[dir];
        assert!(d["messages"].as_u64().unwrap() > 0, "{dir} carried nothing");
        assert_eq!(d["messages"], d["messages_sent"], "{dir}");
        assert_eq!(d["bytes"], d["bytes_sent"], "{dir}");
    }
}

#[test]
fn fifty_desktop_sessions_through_deskrelay_arrive_intact() {
    let dir = scratch("fifty");
    let json = dir.join("r.json");
    let out = loadgen()
        .args(["--sessions", "50", "--duration", "2", "--relay-shards", "2"])
        .args(["--frame-every", "0.5", "--json"])
        .arg(&json)
        .arg("--hgrm")
        .arg(dir.join("hgrm"))
        .arg("--plot")
        .arg(dir.join("p.svg"))
        .output()
        .unwrap();
    let r = report(&json, &out);
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert_schema(&r);
    assert_clean(&r, 50);
    assert_eq!(r["config"]["mode"], "child");
    let relay = &r["resources"]["relay"];
    assert!(relay["pid"].as_u64().unwrap() > 0);
    assert!(
        relay["peak_rss_bytes"].as_u64().unwrap() >= relay["rss_before_bytes"].as_u64().unwrap()
    );
    // 50 sessions x ~1 large frame every 0.5 s of at least 64 KiB each went down.
    assert!(r["downstream"]["bytes"].as_u64().unwrap() > 50 * 3 * 65536);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("result     OK") && text.contains("p99.99"),
        "{text}"
    );
    let hgrm = std::fs::read_to_string(dir.join("hgrm/child-downstream.hgrm")).unwrap();
    assert!(hgrm.contains("1/(1-Percentile)") && hgrm.contains("#[Max"));
    let svg = std::fs::read_to_string(dir.join("p.svg")).unwrap();
    assert!(svg.contains("child downstream"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn echo_and_bulk_profiles_run_direct_and_clean() {
    let dir = scratch("profiles");
    for profile in ["echo", "bulk"] {
        let json = dir.join(format!("{profile}.json"));
        let out = loadgen()
            .args([
                "--direct",
                "--sessions",
                "20",
                "--duration",
                "1",
                "--profile",
                profile,
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let r = report(&json, &out);
        assert!(
            out.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_clean(&r, 20);
        assert_eq!(r["config"]["mode"], "direct");
        if profile == "echo" {
            // The backend answers each message: as many come back as went up.
            assert_eq!(r["upstream"]["messages"], r["downstream"]["messages"]);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Coordinated omission: a relay frozen for a second must show up as a second of latency
/// for the messages due meanwhile, not as missing samples. The messages are large enough
/// (256 KiB at 100/s a session) that the senders block on full socket buffers during the
/// stall, so only due-time stamping (not send-time) can see it.
#[test]
fn a_stalled_relay_shows_up_as_latency_not_as_fewer_samples() {
    let dir = scratch("stall");
    let backend = free_port();
    let mut relay = start_relay(backend);
    let json = dir.join("r.json");
    let run = loadgen()
        .args([
            "--target",
            &relay.1.to_string(),
            "--backend-listen",
            &backend.to_string(),
        ])
        .args([
            "--profile",
            "echo",
            "--rate",
            "100",
            "--sessions",
            "10",
            "--duration",
            "3",
        ])
        .args(["--relay-pid", &relay.0.id().to_string(), "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    signal(&relay.0, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1000));
    signal(&relay.0, libc::SIGCONT);
    let out = run.wait_with_output().unwrap();
    let r = report(&json, &out);
    relay.0.kill().unwrap();
    relay.0.wait().unwrap();
    assert_clean(&r, 10);
    // 10 sessions x 100/s x ~3 s: the stall did not thin the samples out.
    let msgs = r["upstream"]["messages"].as_u64().unwrap();
    assert!(msgs >= 2800, "only {msgs} upstream samples");
    let lat = &r["downstream"]["latency_us"];
    let at = |k: &str| lat[k].as_f64().unwrap();
    eprintln!(
        "stall: p50 {} p90 {} p99 {} max {} us",
        at("p50"),
        at("p90"),
        at("p99"),
        at("max")
    );
    // A third of the messages were due during the stall, their delays spread over 0..1 s:
    // about a sixth waited more than half a second. Stamped at send time instead, only the
    // few queued in socket buffers would.
    assert!(at("max") >= 900_000.0, "max {} us", at("max"));
    assert!(at("p90") >= 400_000.0, "p90 {} us", at("p90"));
    assert!(at("p50") < 200_000.0, "p50 {} us", at("p50"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_target_that_is_down_is_a_clear_error() {
    let closed = free_port();
    let out = loadgen()
        .args([
            "--target",
            &closed.to_string(),
            "--sessions",
            "5",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach the external target at {closed}")),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn non_loopback_targets_are_refused() {
    let out = loadgen()
        .args(["--target", "192.0.2.1:80"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

/// A deskrelay (loadgen's own relay mode) forwarding to `backend`: (child, its address).
fn start_relay(backend: SocketAddr) -> (Child, SocketAddr) {
    start_relay_with(&["--forward", &backend.to_string()])
}

/// A one-shard deskrelay with `args`: (child, its address).
fn start_relay_with(args: &[&str]) -> (Child, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = loadgen()
        .args([
            "relay",
            "--",
            "proxy",
            "--bind",
            "127.0.0.1:0",
            "--shards",
            "1",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .parse()
        .unwrap();
    (child, addr)
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a child we have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

fn run_json(args: &[&str], json: &PathBuf) -> (Output, Value) {
    // A run that fails before writing must not be judged by an earlier run's report.
    let _ = std::fs::remove_file(json);
    let out = loadgen()
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap();
    let r = report(json, &out);
    (out, r)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Through the relay child as an xpra proxy: every session authenticates (a multifile
/// loadgen wrote), gets its server's hello, and then every byte arrives intact inside xpra
/// frames, the large ones as chunks.
#[test]
fn twenty_xpra_sessions_authenticate_through_deskrelay_and_arrive_intact() {
    let dir = scratch("xpra");
    let json = dir.join("r.json");
    let (out, r) = run_json(
        &[
            "--protocol",
            "xpra",
            "--sessions",
            "20",
            "--duration",
            "2",
            "--relay-shards",
            "2",
            "--frame-every",
            "0.5",
        ],
        &json,
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_schema(&r);
    assert_clean(&r, 20);
    assert_eq!(r["config"]["protocol"], "xpra");
    assert_eq!(r["config"]["mode"], "child");
    let hs = &r["sessions"]["handshake_us"];
    assert_eq!(hs["count"], 20);
    assert!(hs["p50"].as_f64().unwrap() > 0.0 && hs["p99"].as_f64().unwrap() > 0.0);
    assert_eq!(r["handshakes"]["completed"], 20);
    assert_eq!(r["handshakes"]["failed"], 0);
    // 20 sessions x ~1 frame of at least 64 KiB every 0.5 s: chunk frames went through.
    assert!(r["downstream"]["bytes"].as_u64().unwrap() > 20 * 3 * 65536);
    assert!(stdout(&out).contains("handshakes 20 completed, 0 failed"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_xpra_password_fails_every_session_as_authentication_failed() {
    let dir = scratch("xpra-wrong");
    let json = dir.join("r.json");
    let (out, r) = run_json(
        &[
            "--protocol",
            "xpra",
            "--sessions",
            "5",
            "--duration",
            "1",
            "--xpra-wrong-password",
        ],
        &json,
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(r["sessions"]["opened"], 0);
    assert_eq!(r["sessions"]["failed"], 5);
    assert_eq!(
        r["sessions"]["failed_reasons"],
        serde_json::json!({ "authentication failed": 5 })
    );
    assert_eq!(r["handshakes"]["failed"], 5);
    assert!(stdout(&out).contains("failed: authentication failed x5"));
    assert!(stdout(&out).contains("result     FAILED"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The handshake profile: sessions connect, authenticate and close over and over; the
/// rate is positive, every handshake has a latency sample, and --max-handshakes ends the
/// run at exactly that count, long before --duration. The raw protocol's hello round trip
/// (the L4 baseline) runs too.
#[test]
fn the_xpra_handshake_profile_reports_a_positive_rate_within_its_bounds() {
    let dir = scratch("xpra-handshake");
    let json = dir.join("r.json");
    let base = [
        "--protocol",
        "xpra",
        "--profile",
        "handshake",
        "--sessions",
        "10",
        "--relay-shards",
        "1",
    ];
    let (out, r) = run_json(&[&base[..], &["--duration", "1"]].concat(), &json);
    assert!(out.status.success(), "{}", stdout(&out));
    let done = r["handshakes"]["completed"].as_u64().unwrap();
    assert!(done > 10, "only {done} handshakes");
    assert_eq!(r["sessions"]["opened"], done);
    assert_eq!(r["sessions"]["handshake_us"]["count"], done);
    assert_eq!(r["errors"]["total"], 0, "{:#}", r["errors"]);
    assert!(r["handshakes"]["per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["handshakes"]["per_relay_cpu_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["config"]["profile"], "handshake");

    let (out, r) = run_json(
        &[&base[..], &["--duration", "30", "--max-handshakes", "50"]].concat(),
        &json,
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(r["handshakes"]["completed"], 50);
    assert_eq!(r["config"]["max_handshakes"], 50);
    assert!(r["config"]["elapsed_s"].as_f64().unwrap() < 15.0);

    // The L4 baseline: raw hellos there and back through the plain relay.
    let raw = [
        "--profile",
        "handshake",
        "--sessions",
        "10",
        "--duration",
        "1",
    ];
    let (out, r) = run_json(&raw, &json);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(r["handshakes"]["completed"].as_u64().unwrap() > 10);
    assert_eq!(r["config"]["protocol"], "raw");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An external xpra relay: `--xpra-users` first writes the multifile (and stops), the relay
/// starts with it, and the run then reads the passwords from it. `--direct` needs no relay
/// and no password: the backend answers the first hello.
#[test]
fn xpra_users_file_drives_an_external_relay_and_direct_needs_none() {
    let dir = scratch("xpra-external");
    let users = dir.join("users");
    let backend = free_port().to_string();
    let common = ["--protocol", "xpra", "--sessions", "10", "--duration", "1"];
    let out = loadgen()
        .args(common)
        .args(["--target", "127.0.0.1:9", "--backend-listen", &backend])
        .arg("--xpra-users")
        .arg(&users)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert_eq!(text.lines().count(), 10);
    assert!(
        text.contains(&format!("|1000|1000|tcp://{backend}/||")),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&users).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let auth = format!("multifile:{}", users.display());
    let mut relay = start_relay_with(&["--auth", &auth]);
    let json = dir.join("r.json");
    let (out, r) = run_json(
        &[
            &common[..],
            &[
                "--target",
                &relay.1.to_string(),
                "--backend-listen",
                &backend,
                "--relay-pid",
                &relay.0.id().to_string(),
                "--xpra-users",
                users.to_str().unwrap(),
            ],
        ]
        .concat(),
        &json,
    );
    relay.0.kill().unwrap();
    relay.0.wait().unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_clean(&r, 10);
    assert_eq!(r["config"]["mode"], "external");

    let (out, r) = run_json(
        &[
            &common[..],
            &["--direct", "--profile", "bulk", "--size", "100000"],
        ]
        .concat(),
        &json,
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_clean(&r, 10);
    assert_eq!(r["sessions"]["handshake_us"]["count"], 10);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--protocol ws` through the relay child: each session upgrades with its own token (a
/// token file loadgen wrote for the child's `--tokens`), and every byte arrives intact
/// through the WebSocket layer both ways, the large frames included.
#[test]
fn twenty_ws_sessions_upgrade_by_token_through_deskrelay_and_arrive_intact() {
    let dir = scratch("ws");
    let json = dir.join("r.json");
    let (out, r) = run_json(
        &[
            "--protocol",
            "ws",
            "--sessions",
            "20",
            "--duration",
            "2",
            "--relay-shards",
            "2",
            "--frame-every",
            "0.5",
        ],
        &json,
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_schema(&r);
    assert_clean(&r, 20);
    assert_eq!(r["config"]["protocol"], "ws");
    assert_eq!(r["config"]["mode"], "child");
    assert_eq!(r["config"]["saturate"], false);
    let hs = &r["sessions"]["handshake_us"];
    assert_eq!(hs["count"], 20);
    assert!(hs["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(r["handshakes"]["completed"], 20);
    // 20 sessions x ~1 frame of at least 64 KiB every 0.5 s.
    assert!(r["downstream"]["bytes"].as_u64().unwrap() > 20 * 3 * 65536);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bulk through the WebSocket layer: 64 KiB messages both ways on schedule, then saturated
/// (back to back until the end), both clean; and the handshake profile's round trip.
#[test]
fn ws_bulk_saturated_and_handshake_runs_are_clean() {
    let dir = scratch("ws-bulk");
    let json = dir.join("r.json");
    let base = ["--protocol", "ws", "--sessions", "4"];
    let bulk = [&base[..], &["--duration", "1.5", "--profile", "bulk"]].concat();
    let (out, r) = run_json(&bulk, &json);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_clean(&r, 4);
    // 4 sessions x 50/s x 1.5 s, each way.
    assert!(r["upstream"]["messages"].as_u64().unwrap() >= 4 * 70);

    let (out, r) = run_json(
        &[&bulk[..], &["--saturate", "--size", "100000"]].concat(),
        &json,
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_clean(&r, 4);
    assert_eq!(r["config"]["saturate"], true);
    assert!(stdout(&out).contains("saturating"));
    // Back to back carries more than the 50/s schedule would.
    assert!(r["downstream"]["messages"].as_u64().unwrap() > 4 * 75);

    let (out, r) = run_json(
        &[&base[..], &["--profile", "handshake", "--duration", "1"]].concat(),
        &json,
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let done = r["handshakes"]["completed"].as_u64().unwrap();
    assert!(done > 4, "only {done} handshakes");
    assert_eq!(r["errors"]["total"], 0, "{:#}", r["errors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An external gateway: `--ws-tokens` first writes the token file (and stops), a deskrelay
/// started with `--tokens` on it carries the run; tokens it does not know are refused with
/// 403, a token whose target is down is closed with 1011 after the upgrade, and `--direct`
/// is refused with the baseline to use instead.
#[test]
fn ws_tokens_file_drives_an_external_gateway_and_refusals_are_counted() {
    let dir = scratch("ws-external");
    let tokens = dir.join("tokens");
    let backend = free_port().to_string();
    let common = ["--protocol", "ws", "--sessions", "5", "--duration", "1"];
    let out = loadgen()
        .args(common)
        .args(["--target", "127.0.0.1:9", "--backend-listen", &backend])
        .arg("--ws-tokens")
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&tokens).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(text.starts_with("s0-") && text.contains(&format!(": {backend}\n")));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let relay = Stopped::on_drop(start_relay_with(&["--tokens", tokens.to_str().unwrap()]));
    let json = dir.join("r.json");
    let (target, pid) = (relay.addr.to_string(), relay.child.id().to_string());
    let args = [
        &common[..],
        &["--target", &target, "--backend-listen", &backend],
        &["--ws-tokens", tokens.to_str().unwrap()],
        &["--relay-pid", &pid],
    ]
    .concat();
    let (out, r) = run_json(&args, &json);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_clean(&r, 5);
    assert_eq!(r["config"]["mode"], "external");

    // Other tokens: the relay does not know them.
    let others = dir.join("others");
    let out = loadgen()
        .args(common)
        .args(["--target", "127.0.0.1:9", "--backend-listen", &backend])
        .arg("--ws-tokens")
        .arg(&others)
        .output()
        .unwrap();
    assert!(out.status.success());
    let args = [
        &common[..],
        &["--target", &target, "--backend-listen", &backend],
        &["--ws-tokens", others.to_str().unwrap()],
    ]
    .concat();
    let (out, r) = run_json(&args, &json);
    assert!(!out.status.success());
    assert_eq!(
        r["sessions"]["failed_reasons"],
        serde_json::json!({ "HTTP 403 Forbidden": 5 })
    );

    // Tokens that lead where nothing listens: upgraded, then closed with 1011.
    drop(relay);
    let nowhere = dir.join("nowhere");
    let dead = free_port().to_string();
    let out = loadgen()
        .args(common)
        .args(["--target", "127.0.0.1:9", "--backend-listen", &dead])
        .arg("--ws-tokens")
        .arg(&nowhere)
        .output()
        .unwrap();
    assert!(out.status.success());
    let relay = Stopped::on_drop(start_relay_with(&["--tokens", nowhere.to_str().unwrap()]));
    let target = relay.addr.to_string();
    let args = [
        &common[..],
        &["--target", &target, "--backend-listen", &backend],
        &["--ws-tokens", nowhere.to_str().unwrap()],
    ]
    .concat();
    let (out, r) = run_json(&args, &json);
    drop(relay);
    assert!(!out.status.success());
    assert_eq!(r["sessions"]["opened"], 5, "{:#}", r["sessions"]);
    assert_eq!(
        r["errors"]["by_kind"]["client receive: websocket close 1011"], 5,
        "{:#}",
        r["errors"]
    );

    let out = loadgen().args(common).arg("--direct").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--protocol raw --direct"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A relay child killed and reaped when dropped, so a failed assertion leaves no process
/// behind (one would also hold the test's output pipe open).
struct Stopped {
    child: Child,
    addr: SocketAddr,
}

impl Stopped {
    fn on_drop((child, addr): (Child, SocketAddr)) -> Self {
        Self { child, addr }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
