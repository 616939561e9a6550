//! One run, start to report: check the targets, raise the descriptor limit, bind the simulated
//! backends, start (or find) the relay, run the workers, stop the relay, measure, report.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, ProfileKind, Protocol};
use crate::metrics::{Metrics, Sent};
use crate::net::now_ns;
use crate::profile::Profile;
use crate::progress::Progress;
use crate::relay_child::RelayChild;
use crate::report::{
    Direction, Errors, Handshakes, Percentiles, Point, RelayUsage, Report, Resources, RunConfig,
    Sessions,
};
use crate::sys;
use crate::wire::Pattern;
use crate::worker::{self, Plan};
use crate::{ws, xpra};

/// Descriptors beyond two per session: rings, eventfds, listeners, stdio.
const SPARE_FDS: u64 = 1024;
/// Backlog of the backend listener, so a connect storm queues instead of dropping SYNs.
const BACKLOG: i32 = 4096;
/// First connect this long after the plan is made, so every worker is up.
const START_DELAY_NS: u64 = 100_000_000;
/// Directions still open this long after the last due message are abandoned as errors.
const GRACE_NS: u64 = 15_000_000_000;

/// Runs what `cli` asks and returns the report (not yet printed or written).
pub fn run(cli: &Cli) -> Result<Report> {
    let profile = Profile::from_cli(cli)?;
    if cli.sessions == 0 {
        bail!("--sessions must be at least 1");
    }
    if !(cli.ramp > 0.0 && cli.duration > 0.0 && cli.connect_timeout > 0.0) {
        bail!("--ramp, --duration and --connect-timeout must be positive");
    }
    for addr in cli.target.iter().chain(&cli.backend_listen) {
        if !addr.ip().is_loopback() {
            bail!("{addr} is not a loopback address; loadgen sends traffic to loopback only");
        }
    }
    if cli.protocol != Protocol::Xpra && (cli.xpra_users.is_some() || cli.xpra_wrong_password) {
        bail!("--xpra-users is for --protocol xpra");
    }
    if cli.protocol != Protocol::Ws && cli.ws_tokens.is_some() {
        bail!("--ws-tokens is for --protocol ws");
    }
    if cli.protocol == Protocol::Ws && cli.direct {
        bail!(
            "--direct with --protocol ws: the backends speak raw TCP and only a relay speaks \
             WebSocket to clients; the no-relay baseline is `--protocol raw --direct`"
        );
    }
    if cli.max_handshakes.is_some() && cli.profile != ProfileKind::Handshake {
        bail!("--max-handshakes is for --profile handshake");
    }
    sys::raise_nofile(cli.sessions as u64 * 2 + SPARE_FDS)?;

    let backend_at = cli
        .backend_listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = listen(backend_at)
        .with_context(|| format!("cannot listen for backend connections on {backend_at}"))?;
    let backend = listener.local_addr()?;

    // Per-session secrets. xpra users: the relay child's come from a multifile loadgen
    // writes; an external relay's from --xpra-users. ws tokens: likewise, a token file for
    // the child's --tokens, or --ws-tokens. Without a relay nobody asks.
    let mut secret_file = None;
    let mut relay_args = Vec::new();
    let mut credentials = Vec::new();
    if cli.protocol == Protocol::Xpra && !cli.direct {
        if let Some(path) = &cli.xpra_users {
            credentials = xpra::read_multifile(path, cli.sessions, backend)?;
        } else if cli.target.is_none() {
            credentials = xpra::random_passwords(cli.sessions)
                .context("cannot draw passwords for the xpra users")?;
            let file =
                xpra::TempPrivateFile::write("users", &xpra::multifile_text(&credentials, backend))
                    .context("cannot write the relay's multifile")?;
            relay_args = vec![
                "--auth".into(),
                format!("multifile:{}", file.path.display()),
            ];
            secret_file = Some(file);
        }
    }
    if cli.protocol == Protocol::Ws {
        if let Some(path) = &cli.ws_tokens {
            credentials = ws::read_tokens(path, cli.sessions, backend)?;
        } else if cli.target.is_none() {
            credentials =
                ws::random_tokens(cli.sessions).context("cannot draw the WebSocket tokens")?;
            let file =
                xpra::TempPrivateFile::write("tokens", &ws::token_file_text(&credentials, backend))
                    .context("cannot write the relay's token file")?;
            relay_args = vec!["--tokens".into(), file.path.display().to_string()];
            secret_file = Some(file);
        }
    }
    let mut credentials: Vec<Vec<u8>> = credentials.into_iter().map(String::into_bytes).collect();
    if cli.xpra_wrong_password {
        credentials.iter_mut().for_each(|p| p.push(b'!'));
    }

    let mut child = None;
    let (mode, connect_to, relay_pid) = if cli.direct {
        ("direct", backend, None)
    } else if let Some(target) = cli.target {
        ("external", target, cli.relay_pid)
    } else {
        let relay =
            RelayChild::start(backend, cli.relay_shards, &cli.relay_data_path, &relay_args)?;
        let at = (relay.addr, relay.pid());
        child = Some(relay);
        ("child", at.0, Some(at.1))
    };
    let connect_timeout = Duration::from_secs_f64(cli.connect_timeout);
    TcpStream::connect_timeout(&connect_to, connect_timeout)
        .with_context(|| format!("cannot reach the {mode} target at {connect_to}"))?;
    let before = match relay_pid {
        Some(pid) => {
            Some(sys::tree_usage(pid).with_context(|| format!("no process {pid} to measure"))?)
        }
        None => None,
    };

    let workers = cli
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let start_ns = now_ns() + START_DELAY_NS;
    let ramp_ns = (cli.sessions as f64 / cli.ramp * 1e9) as u64;
    let end_ns = start_ns + ramp_ns + (cli.duration * 1e9) as u64;
    let plan = Arc::new(Plan {
        profile,
        protocol: cli.protocol,
        pattern: Pattern::new(),
        sent: Sent::default(),
        sessions: cli.sessions,
        credentials,
        max_handshakes: cli.max_handshakes.unwrap_or(u64::MAX),
        ramp: cli.ramp,
        connect_to,
        connect_timeout,
        start_ns,
        end_ns,
        hard_deadline_ns: end_ns + GRACE_NS,
    });
    let cpu_before = sys::process_cpu();
    let progress = Progress::start(Arc::clone(&plan), relay_pid);
    let metrics = worker::run_workers(Arc::clone(&plan), workers, listener.as_raw_fd());
    release_listener(&listener);
    let elapsed_s = now_ns().saturating_sub(start_ns) as f64 / 1e9;
    let peak_sampled = progress.finish();
    let metrics = metrics?;

    // A handshake-profile session opens many connections, `--sessions` at a time.
    let concurrent = match cli.profile {
        ProfileKind::Handshake => cli.sessions as u64,
        _ => metrics.opened,
    };
    let relay = relay_pid.zip(before).and_then(|(pid, before)| {
        let after = sys::tree_usage(pid)?;
        let peak = peak_sampled
            .max(sys::peak_rss(pid).unwrap_or(0))
            .max(after.rss_bytes);
        Some(RelayUsage {
            pid,
            cpu_s: after.cpu_s - before.cpu_s,
            rss_before_bytes: before.rss_bytes,
            peak_rss_bytes: peak,
            rss_per_session_bytes: peak.saturating_sub(before.rss_bytes) as f64
                / concurrent.max(1) as f64,
        })
    });
    let mut relay_failure = None;
    if let Some(child) = child {
        if let Err(e) = child.stop() {
            relay_failure = Some(e.to_string());
        }
    }
    drop(secret_file);

    let resources = Resources {
        loadgen_cpu_s: sys::process_cpu().zip(cpu_before).map(|(a, b)| a - b),
        loadgen_peak_rss_bytes: sys::status_bytes("VmHWM"),
        relay,
    };
    let config = RunConfig {
        label: cli.label.clone().unwrap_or_else(|| mode.to_string()),
        profile: format!("{:?}", cli.profile).to_lowercase(),
        protocol: format!("{:?}", cli.protocol).to_lowercase(),
        mode: mode.to_string(),
        target: connect_to.to_string(),
        backend: backend.to_string(),
        relay_shards: cli.relay_shards.filter(|_| mode == "child"),
        relay_data_path: (mode == "child").then(|| cli.relay_data_path.clone()),
        workers,
        sessions: cli.sessions,
        ramp_per_sec: cli.ramp,
        duration_s: cli.duration,
        elapsed_s,
        max_handshakes: cli.max_handshakes,
        saturate: cli.saturate,
    };
    Ok(build_report(
        config,
        &plan.sent,
        &metrics,
        resources,
        relay_failure,
    ))
}

/// Takes the backend listener off its port now, not when the process is gone.
///
/// The workers' io_uring rings still hold the socket through their cancelled accepts, and
/// the kernel tears a ring down asynchronously after its process exits: until then the
/// socket stays in LISTEN, and a run started right after this one with the same
/// `--backend-listen` failed with EADDRINUSE (about one run in three back to back).
/// shutdown(2) moves a listening socket out of LISTEN whatever still refers to it.
fn release_listener(listener: &TcpListener) {
    // SAFETY: shutdown(2) on a descriptor we own; failure leaves it as it was.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
}

/// A listening socket with a deep backlog.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    // Every worker accepts on a dup of this socket, and glommio tries a plain accept(2)
    // before io_uring: on a blocking socket a worker that lost the race for a connection
    // slept in accept(2), its whole executor with it (found by the soak run).
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The report of a finished run. Every message sent and not verified at the far end counts
/// as an error ("lost"), so a clean report means every byte arrived intact.
pub fn build_report(
    config: RunConfig,
    sent: &Sent,
    m: &Metrics,
    resources: Resources,
    relay_failure: Option<String>,
) -> Report {
    let elapsed = config.elapsed_s.max(1e-9);
    let direction = |d: &crate::metrics::DirMetrics, msgs_sent: u64, bytes_sent: u64| Direction {
        messages_sent: msgs_sent,
        bytes_sent,
        messages: d.messages,
        bytes: d.bytes,
        throughput_mbit_s: d.bytes as f64 * 8.0 / elapsed / 1e6,
        messages_per_s: d.messages as f64 / elapsed,
        latency_us: Percentiles::of(&d.latency),
        distribution: Point::distribution(&d.latency),
        histogram: d.latency.clone(),
    };
    let upstream = direction(
        &m.up,
        Sent::get(&sent.up_messages),
        Sent::get(&sent.up_bytes),
    );
    let downstream = direction(
        &m.down,
        Sent::get(&sent.down_messages),
        Sent::get(&sent.down_bytes),
    );
    let mut by_kind = m.errors.clone();
    let mut samples = m.error_samples.clone();
    for (name, d) in [("upstream", &upstream), ("downstream", &downstream)] {
        if d.messages_sent > d.messages {
            let lost = d.messages_sent - d.messages;
            *by_kind
                .entry(format!("{name}: messages sent but not received"))
                .or_default() += lost;
        }
    }
    if let Some(reason) = relay_failure {
        *by_kind.entry("relay process".into()).or_default() += 1;
        samples.push(reason);
    }
    let handshakes = Handshakes {
        completed: m.opened,
        failed: m.failed.values().sum(),
        per_sec: m.opened as f64 / elapsed,
        per_relay_cpu_s: resources
            .relay
            .as_ref()
            .filter(|r| r.cpu_s > 0.0)
            .map(|r| m.opened as f64 / r.cpu_s),
    };
    Report {
        schema: 1,
        config,
        sessions: Sessions {
            opened: m.opened,
            failed: m.failed.values().sum(),
            failed_reasons: m.failed.clone(),
            connect_us: Percentiles::of(&m.connect),
            handshake_us: Percentiles::of(&m.handshake),
        },
        handshakes,
        upstream,
        downstream,
        errors: Errors {
            total: by_kind.values().sum(),
            by_kind,
            samples,
        },
        resources,
    }
}

/// `--xpra-users PATH` or `--ws-tokens PATH` naming no file yet: writes one for sessions
/// 0..`sessions`-1 with fresh passwords or tokens, leading to `--backend-listen`, so the
/// external relay can be started with it before the run. Returns the path written and what
/// it is, or None when there is nothing to do.
pub fn write_missing_secrets(cli: &Cli) -> Result<Option<(std::path::PathBuf, &'static str)>> {
    let (path, kind) = match (&cli.xpra_users, &cli.ws_tokens) {
        (Some(p), _) if !p.exists() => (p, "users"),
        (_, Some(p)) if !p.exists() => (p, "tokens"),
        _ => return Ok(None),
    };
    let Some(backend) = cli.backend_listen else {
        bail!(
            "--xpra-users and --ws-tokens need --backend-listen: the sessions they list lead \
             to the backends"
        );
    };
    let text = if kind == "users" {
        xpra::multifile_text(&xpra::random_passwords(cli.sessions)?, backend)
    } else {
        ws::token_file_text(&ws::random_tokens(cli.sessions)?, backend)
    };
    xpra::write_private(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some((path.clone(), kind)))
}
