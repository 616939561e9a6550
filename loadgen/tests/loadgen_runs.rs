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

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
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
            "--forward",
        ])
        .arg(backend.to_string())
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
