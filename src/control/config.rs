//! The relay's validated configuration, independent of how it was given (flags, or a
//! `--config` file turned into flags).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::auth_throttle::ThrottleSettings;
use crate::engine::limits::LimitSettings;
use crate::engine::privileges::RunAs;
use crate::front::proxy_protocol::TrustedSources;
use crate::front::tls::CertStore;
use crate::front::web::WebDoor;
use crate::front::xpra::XpraDoor;
use crate::relay::{AutoTuning, DataPathMode, SpliceVia};

/// Address the relay listens on when no `--bind` is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:14500";
/// Backend of the L4 mode when no `--forward` is given: iperf3's default port, so that
/// `iperf3 -s` plus `deskrelay proxy` is a complete demo.
pub const DEFAULT_FORWARD: &str = "127.0.0.1:5201";

/// Everything `deskrelay proxy` needs to run.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Every address each shard listens on (SO_REUSEPORT, one socket per shard each).
    pub binds: Vec<SocketAddr>,
    /// The backend every accepted connection is relayed to (L4 mode).
    pub forward: SocketAddr,
    /// Number of shards: one pinned glommio executor each.
    pub shards: usize,
    /// How bulk bytes move between the two sockets of a session.
    pub data_path: DataPathMode,
    /// How splices are issued when the splice path runs.
    pub splice_via: SpliceVia,
    /// Thresholds of the auto data path.
    pub auto: AutoTuning,
    /// Size of one pooled copy buffer.
    pub copy_buffer: usize,
    /// Capacity asked for each pipe of the pipe pool (the kernel may give less).
    pub pipe_size: usize,
    /// Pipes one shard may lease at once; sessions past it stay on the copy path.
    pub pipes_per_shard: usize,
    /// Limit for establishing the backend connection.
    pub connect_timeout: Duration,
    /// How long SIGINT/SIGTERM waits for open sessions before exiting.
    pub drain_timeout: Duration,
    /// The xpra door, when clients authenticate and pick their session (`--auth`); L4
    /// forwarding to `forward` otherwise.
    pub xpra: Option<Arc<XpraDoor>>,
    /// The HTTP door (`--web-root`, `--tokens`): pages and WebSocket upgrades.
    pub web: Option<Arc<WebDoor>>,
    /// TLS on the sniffing door's port: the certificate and key (reloaded on SIGHUP).
    pub tls: Option<Arc<CertStore>>,
    /// With a sniffing door: where connections no door here speaks are relayed.
    pub fallback: Option<SocketAddr>,
    /// With a sniffing door: time a client has to send its first recognisable bytes.
    pub sniff_timeout: Duration,
    /// Who to become once the listeners are bound (`--user`, `--group`).
    pub run_as: Option<RunAs>,
    /// Sessions in all, and from one client address; more are closed at once.
    pub max_sessions: Option<usize>,
    pub max_sessions_per_client: Option<usize>,
    /// Balancers whose PROXY v1/v2 header names the real client (`--accept-proxy-from`).
    pub accept_proxy_from: TrustedSources,
    /// Send backends a PROXY v2 header with the client's address (`--send-proxy`).
    pub send_proxy: bool,
    /// Where Prometheus scrapes `/metrics` (`--metrics`); no such listener when None.
    pub metrics: Option<SocketAddr>,
    /// Close sessions that move no bytes either way for this long (`--idle-timeout`).
    pub idle_timeout: Option<Duration>,
    /// Failed-login throttling (`--auth-fail-limit` and friends).
    pub auth_throttle: ThrottleSettings,
    /// Where the limits come from again on SIGHUP: set when started with `--config`.
    pub reload_from: Option<ConfigSource>,
    /// The control socket (`--control`): none unless asked for.
    pub control: Option<std::path::PathBuf>,
}

/// A `--config` file and the command line it was given with (whose flags still win when
/// the file is read again).
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub args: Vec<OsString>,
}

/// A configuration that cannot run, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("at least one --bind address is required")]
    NoBind,
    #[error("--shards must be at least 1")]
    NoShards,
    #[error("{name} must be between {min} and {max} bytes, got {value}")]
    OutOfRange {
        name: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
    #[error("--connect-timeout must be greater than zero")]
    ZeroConnectTimeout,
}

impl ProxyConfig {
    /// The configuration `deskrelay proxy` runs with when given no arguments.
    pub fn defaults() -> Self {
        Self {
            binds: vec![DEFAULT_BIND.parse().expect("valid default bind")],
            forward: DEFAULT_FORWARD.parse().expect("valid default forward"),
            shards: online_cpus(),
            data_path: DataPathMode::Auto,
            splice_via: SpliceVia::Syscall,
            auto: AutoTuning::default(),
            copy_buffer: 256 * 1024,
            pipe_size: 256 * 1024,
            pipes_per_shard: 512,
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            xpra: None,
            web: None,
            tls: None,
            fallback: None,
            sniff_timeout: Duration::from_secs(5),
            run_as: None,
            max_sessions: None,
            max_sessions_per_client: None,
            accept_proxy_from: TrustedSources::default(),
            send_proxy: false,
            metrics: None,
            idle_timeout: None,
            auth_throttle: ThrottleSettings::default(),
            reload_from: None,
            control: None,
        }
    }

    /// The limits a SIGHUP may change, as configured now.
    pub fn limit_settings(&self) -> LimitSettings {
        LimitSettings {
            max_sessions: self.max_sessions,
            max_sessions_per_client: self.max_sessions_per_client,
            idle_timeout: self.idle_timeout,
            auth: self.auth_throttle,
        }
    }

    /// Checks the values that flags alone cannot constrain: the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every value that flags alone cannot constrain and that is wrong.
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut found = Vec::new();
        if self.binds.is_empty() {
            found.push(ConfigError::NoBind);
        }
        if self.shards == 0 {
            found.push(ConfigError::NoShards);
        }
        if self.connect_timeout.is_zero() {
            found.push(ConfigError::ZeroConnectTimeout);
        }
        let ranges = [
            ("--copy-buffer", self.copy_buffer),
            ("--pipe-size", self.pipe_size),
        ];
        for (name, value) in ranges {
            found.extend(check_range(name, value, 4 * 1024, 16 * 1024 * 1024).err());
        }
        found
    }
}

impl ConfigError {
    /// The flag (long name, no dashes) the problem is about.
    pub fn flag(&self) -> &'static str {
        match self {
            ConfigError::NoBind => "bind",
            ConfigError::NoShards => "shards",
            ConfigError::OutOfRange { name, .. } => name.trim_start_matches('-'),
            ConfigError::ZeroConnectTimeout => "connect-timeout",
        }
    }
}

fn check_range(
    name: &'static str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

/// CPUs this process may run on.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ProxyConfig::defaults().validate().unwrap();
    }

    #[test]
    fn zero_shards_is_refused() {
        let cfg = ProxyConfig {
            shards: 0,
            ..ProxyConfig::defaults()
        };
        assert!(matches!(cfg.validate(), Err(ConfigError::NoShards)));
    }

    #[test]
    fn tiny_copy_buffer_is_refused() {
        let cfg = ProxyConfig {
            copy_buffer: 16,
            ..ProxyConfig::defaults()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("--copy-buffer"), "{err}");
    }
}
