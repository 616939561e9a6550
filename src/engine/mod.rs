//! Engine: shards, listeners, start-up and shutdown.
//!
//! [`Relay::start`] binds every listening socket up front (so port 0 resolves once and errors
//! come before any thread starts), starts one pinned executor per shard ([`runtime`]), waits
//! until each accepts. [`run_proxy`] adds signals and the `listening on ADDR` lines, and
//! returns after SIGINT or SIGTERM once every shard has drained.

mod accept;
pub mod auth_throttle;
pub mod limits;
pub mod listener;
pub mod log_rate;
pub mod privileges;
pub mod runtime;
mod shard;
pub mod shutdown;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use anyhow::Context;

use crate::control::config::ProxyConfig;
use crate::control::metrics::{self, Metrics, MetricsServer, Timings};
use crate::control::registry::{Registry, SessionView};
use crate::control::report::Sources;
use crate::control::socket::{ControlServer, ControlSocket};
use crate::control::stats::{Stats, Totals};
use crate::front::dispatch::Doors;
use crate::front::tls;
use crate::front::FrontDoor;
use runtime::PoolThreadHandles;
use shard::Shared;
use shutdown::ShutdownPipe;

/// Runs the relay until SIGINT/SIGTERM and drain: the `deskrelay proxy` command.
/// Prints `listening on ADDR` on stdout once every shard accepts.
pub fn run_proxy(config: ProxyConfig) -> anyhow::Result<()> {
    let relay = Relay::start(config)?;
    let certs = relay.config.tls.clone();
    let limits = Arc::clone(&relay.limits);
    let source = relay.config.reload_from.clone();
    shutdown::watch_signals(
        Arc::clone(&relay.shutdown),
        relay.config.drain_timeout.as_secs_f64(),
        move || {
            let files = crate::control::watched_file::reread_all();
            if certs.is_none() && source.is_none() && files == 0 {
                tracing::info!("SIGHUP: nothing to reload");
            }
            reload(certs.as_deref());
            if let Some(source) = &source {
                reload_limits(&limits, source);
            }
        },
    )
    .context("cannot install signal handlers")?;
    match (&relay.config.xpra, &relay.config.web) {
        (Some(door), _) => tracing::info!(
            shards = relay.config.shards,
            data_path = %relay.config.data_path,
            "xpra proxy: {}",
            door.describe()
        ),
        (None, Some(_)) => tracing::info!(
            shards = relay.config.shards,
            "web and WebSocket door; other connections to --fallback or closed"
        ),
        (None, None) => tracing::info!(
            shards = relay.config.shards,
            data_path = %relay.config.data_path,
            "relaying every connection to {}",
            relay.config.forward
        ),
    }
    let mut out = std::io::stdout().lock();
    if let Some(addr) = relay.metrics_addr() {
        tracing::info!("metrics on http://{addr}/metrics");
        writeln!(out, "metrics on {addr}")?;
    }
    for addr in &relay.addrs {
        writeln!(out, "listening on {addr}")?;
    }
    out.flush()?;
    drop(out);
    relay.wait()
}

/// SIGHUP: loads the TLS certificate again; a failed load keeps the current one. (The
/// multifile and the tokens file are re-read when they change, and on SIGHUP by
/// `watched_file::reread_all`.)
fn reload(certs: Option<&tls::CertStore>) {
    match certs.map(tls::CertStore::reload) {
        None => {}
        Some(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Some(Err(e)) => {
            tracing::warn!("SIGHUP: TLS certificate not reloaded, keeping the current one: {e}")
        }
    }
}

/// SIGHUP with `--config`: reads the file again (under the same command line, whose flags
/// still win) and applies the limits that can change under open sessions: session limits,
/// failed-login throttling, the idle timeout. Other keys wait for a restart. A file that
/// does not parse, or a value out of range anywhere in it, changes nothing.
fn reload_limits(limits: &limits::Limits, source: &crate::control::config::ConfigSource) {
    let file = source.path.display();
    match crate::control::cli::Cli::limits_from_args(&source.args) {
        Ok(new) => {
            let changes = limits.reload(new);
            if changes.is_empty() {
                tracing::info!("SIGHUP: {file}: limits unchanged");
            } else {
                tracing::info!("SIGHUP: {file}: {}", changes.join(", "));
            }
        }
        Err(e) => {
            let why: Vec<String> = e
                .to_string()
                .lines()
                .map(|l| l.trim().trim_start_matches("error: ").to_string())
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            tracing::warn!(
                "SIGHUP: {file} not reloaded, keeping the current limits: {}",
                why.join("; ")
            );
        }
    }
}

/// A running relay, started in this process (by `run_proxy`, or embedded by loadgen and
/// tests).
pub struct Relay {
    /// The bound addresses, port 0 resolved.
    pub addrs: Vec<SocketAddr>,
    pub config: ProxyConfig,
    /// The limits every shard applies; SIGHUP reloads them.
    pub limits: Arc<limits::Limits>,
    stats: Arc<Stats>,
    registry: Arc<Registry>,
    shutdown: Arc<ShutdownPipe>,
    handles: PoolThreadHandles<()>,
    /// The `--metrics` listener, stopped once the shards have.
    metrics: Option<MetricsServer>,
    /// `--control`: served until the relay has drained.
    control: Option<ControlServer>,
}

impl Relay {
    /// Binds, starts every shard, and returns once all of them accept.
    pub fn start(config: ProxyConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let bound = listener::bind_all(&config.binds, config.shards)?;
        let metrics_listener = config
            .metrics
            .map(|addr| {
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen for --metrics on {addr}"))
            })
            .transpose()?;
        let shutdown = ShutdownPipe::new().context("cannot create the shutdown pipe")?;
        // Like the listeners: created with the privileges the relay started with.
        let control = match &config.control {
            Some(path) => Some(ControlSocket::bind(path)?),
            None => None,
        };
        let started = std::time::Instant::now();
        if let Some(run_as) = config.run_as {
            run_as
                .apply()
                .with_context(|| format!("cannot become uid {} gid {}", run_as.uid, run_as.gid))?;
            tracing::info!(uid = run_as.uid, gid = run_as.gid, "privileges dropped");
        }
        let shards = config.shards;
        let stats = Arc::new(Stats::new(shards));
        let timings = Arc::new(Timings::new(shards));
        let limits = limits::Limits::with(config.limit_settings());
        let registry = Arc::new(Registry::new(shards));
        let shared = Arc::new(Shared {
            front: match (&config.xpra, &config.web) {
                (None, None) => FrontDoor::Forward(config.forward),
                (xpra, web) => FrontDoor::Sniff(Arc::new(Doors {
                    xpra: xpra.clone(),
                    web: web.clone(),
                    fallback: config.fallback,
                    tls: config
                        .tls
                        .as_ref()
                        .map(|certs| tls::server_config(Arc::clone(certs))),
                    sniff_timeout: config.sniff_timeout,
                })),
            },
            limits: Arc::clone(&limits),
            config: config.clone(),
            stats: Arc::clone(&stats),
            registry: Arc::clone(&registry),
            shutdown: Arc::clone(&shutdown),
        });
        let listeners = Arc::new(Mutex::new(bound.per_shard));
        let next_id = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let ready_tx = Arc::new(Mutex::new(ready_tx));
        let shard_timings = Arc::clone(&timings);

        let handles = runtime::start_shards(shards, move || {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            // This runs on the shard's own thread: its histograms become the ones that
            // code on this thread records into.
            metrics::timings::install(Arc::clone(shard_timings.shard(id)));
            let mine = std::mem::take(&mut listeners.lock().expect("listener hand-out")[id]);
            let ready = move |r| {
                let _ = ready_tx.lock().expect("ready channel").send(r);
            };
            shard::run(id, mine, shared, ready)
        })
        .context("cannot start the shards")?;

        for _ in 0..shards {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => {
                    shutdown.trigger();
                    handles.join_all();
                    anyhow::bail!(reason);
                }
                Err(_) => anyhow::bail!("a shard stopped during start-up"),
            }
        }
        let metrics = match metrics_listener {
            None => None,
            Some(listener) => {
                let page = Metrics::new(Arc::clone(&stats), shards, timings);
                let render = Arc::new(move || page.render());
                match MetricsServer::start(listener, render) {
                    Ok(server) => Some(server),
                    Err(e) => {
                        shutdown.trigger();
                        handles.join_all();
                        anyhow::bail!("cannot start the metrics listener: {e}");
                    }
                }
            }
        };
        let control = match control {
            None => None,
            Some(socket) => {
                let sources = Sources {
                    stats: Arc::clone(&stats),
                    registry: Arc::clone(&registry),
                    started,
                    data_path: config.data_path.to_string(),
                    splice_via: format!("{:?}", config.splice_via).to_lowercase(),
                    xpra: config.xpra.clone(),
                };
                let pipe = Arc::clone(&shutdown);
                let server = socket
                    .serve(sources, move || pipe.trigger())
                    .context("cannot serve the control socket")?;
                tracing::info!(path = %server.path().display(), "control socket ready");
                Some(server)
            }
        };
        Ok(Self {
            addrs: bound.addrs,
            config,
            limits,
            stats,
            registry,
            shutdown,
            handles,
            metrics,
            control,
        })
    }

    /// Where `--metrics` listens, port 0 resolved.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// Counters summed over shards, now.
    pub fn totals(&self) -> Totals {
        self.stats.total()
    }

    /// Every live session, as `deskrelay list` shows them.
    pub fn sessions(&self) -> Vec<SessionView> {
        self.registry.sessions()
    }

    /// Asks every shard to stop accepting and drain (what SIGTERM does).
    pub fn stop(&self) {
        self.shutdown.trigger();
    }

    /// Waits until every shard has drained and stopped.
    pub fn wait(self) -> anyhow::Result<()> {
        let results = self.handles.join_all();
        if let Some(server) = self.metrics {
            server.stop();
        }
        // Closed (and its file removed) once nothing is left to report.
        drop(self.control);
        for result in results {
            result.map_err(|e| anyhow::anyhow!("a shard failed: {e}"))?;
        }
        let t = self.stats.total();
        tracing::info!(
            sessions = t.accepted,
            to_backend = t.bytes_client_to_backend,
            to_client = t.bytes_backend_to_client,
            backend_failures = t.backend_connect_failures,
            limit_refusals = t.limit_refusals,
            login_timeouts = t.login_timeouts,
            sniff_timeouts = t.sniff_timeouts,
            auth_throttled = t.auth_throttled,
            idle_timeouts = t.idle_timeouts,
            "stopped"
        );
        Ok(())
    }
}
