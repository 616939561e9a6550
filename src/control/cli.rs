//! The command line (clap derive); doc comments are the help text.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use super::config::{ConfigSource, ProxyConfig, DEFAULT_BIND, DEFAULT_FORWARD};
use super::problems::Problems;
use crate::engine::auth_throttle::ThrottleSettings;
use crate::engine::limits::LimitSettings;
use crate::engine::privileges::RunAs;
use crate::front::http::{TokenFile, TokenLookup, UpgradePolicy, WebRoot};
use crate::front::proxy_protocol::Cidr;
use crate::front::tls::CertStore;
use crate::front::web::WebDoor;
use crate::front::xpra::{AuthMode, XpraDoor};
use crate::relay::{DataPathMode, SpliceVia};
use crate::xpra::auth::{AuthFile, SessionTarget};

/// deskrelay: a thread-per-core gateway for remote-desktop sessions.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `deskrelay=debug`.
    #[arg(long, global = true, env = "DESKRELAY_LOG", default_value = "info", value_parser = log_filter)]
    pub log: String,

    /// Log lines as text, or as one JSON object a line (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the proxy variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay connections: to one backend (L4), or as an xpra proxy (`--auth`).
    Proxy(ProxyArgs),
    /// Check a `--config` file: every error with its line; exit status 1 if any.
    CheckConfig {
        /// The TOML file (keys are `proxy`'s long flag names).
        file: PathBuf,
    },
    /// A running relay's version, uptime, sessions and bytes per shard, data-path choices,
    /// authentication outcomes and errors (from its `--control` socket).
    Info(ControlArgs),
    /// A running relay's sessions: user, target, client, shard, bytes each way, age.
    List(ControlArgs),
    /// Stop a running relay as SIGTERM does: no new sessions, drain, exit.
    Stop {
        #[command(flatten)]
        socket: ControlSocketArg,
    },
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `info` and `list`.
#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// Print the relay's JSON answer as it came (schema in the README).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: ControlSocketArg,
}

/// Where a running relay's control socket is.
#[derive(Debug, clap::Args)]
pub struct ControlSocketArg {
    /// The relay's `--control` socket. Default: $XDG_RUNTIME_DIR/deskrelay.sock, else
    /// /run/deskrelay/deskrelay.sock for root, else /tmp/deskrelay-UID.sock.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

impl ControlSocketArg {
    fn path(&self) -> PathBuf {
        self.control
            .clone()
            .unwrap_or_else(super::socket::default_path)
    }
}

impl Cli {
    /// Parses the process's command line, reading `proxy --config FILE` if given (exits
    /// with the errors, and their lines, as clap does for flags).
    pub fn from_env() -> Cli {
        Self::try_parse_from_args(std::env::args_os()).unwrap_or_else(|e| {
            // clap's own: help and version on stdout with status 0, errors with 2.
            if let Some(clap) = e.downcast_ref::<clap::Error>() {
                clap.exit()
            }
            eprintln!("{e:#}");
            std::process::exit(2)
        })
    }

    /// [`Cli::from_env`] for given arguments: the config file's keys go in front of the
    /// command line's own flags, and a key whose flag the command line (or the environment,
    /// `DESKRELAY_LOG`) sets is left out, so the command line wins.
    pub fn try_parse_from_args(
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> anyhow::Result<Cli> {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // A first, lenient look for `proxy --config`: the file may hold flags the command
        // line needs (`--tls-key` for its `--tls-cert`).
        let lenient = Cli::command()
            .ignore_errors(true)
            .try_get_matches_from(&args)
            .ok();
        let root = lenient.as_ref();
        let proxy = root.and_then(|m| m.subcommand_matches("proxy"));
        let path = proxy.and_then(|p| p.get_one::<PathBuf>("config")).cloned();
        let (Some(root), Some(proxy), Some(path)) = (root, proxy, path) else {
            return Ok(Cli::try_parse_from(&args)?);
        };
        let given = |arg: &clap::Arg| {
            use clap::parser::ValueSource::{CommandLine, EnvVariable};
            let id = arg.get_id().as_str();
            let set = |m: &clap::ArgMatches| {
                matches!(m.value_source(id), Some(CommandLine | EnvVariable))
            };
            set(proxy) || (arg.is_global_set() && set(root))
        };
        let lines = |errors: Vec<super::config_file::ConfigError>| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(lines.join("\n"))
        };
        let file = super::config_file::ConfigFile::load(&path).map_err(lines)?;
        let from_file = file.to_args(given).map_err(lines)?;
        // argv: the program and everything up to `proxy`, the file's flags, the rest.
        let at = args
            .iter()
            .position(|a| a == "proxy")
            .expect("parsed as proxy");
        let mut merged: Vec<OsString> = args[..=at].to_vec();
        merged.extend(from_file);
        merged.extend_from_slice(&args[at + 1..]);
        let mut cli = Cli::try_parse_from(merged)?;
        if let Command::Proxy(proxy) = &mut cli.command {
            // For SIGHUP: the file is read again, under the same command line.
            proxy.reload_from = Some(ConfigSource { path, args });
        }
        Ok(cli)
    }

    /// The limits (`--max-sessions`, `--idle-timeout`, `--auth-*`) `args` configure, the
    /// `--config` file read again: what SIGHUP applies. Any error in the file refuses all.
    pub fn limits_from_args(args: &[OsString]) -> anyhow::Result<LimitSettings> {
        match Self::try_parse_from_args(args.iter().cloned())?.command {
            Command::Proxy(proxy) => proxy.limit_settings(),
            _ => anyhow::bail!("not a proxy command"),
        }
    }

    /// The relay configuration `proxy` would run with.
    pub fn into_config(self) -> anyhow::Result<ProxyConfig> {
        match self.command {
            Command::Proxy(args) => args.into_config(),
            _ => anyhow::bail!("not a proxy command"),
        }
    }

    /// Sets up logging (tracing to stderr, colours only on a terminal) and runs the command:
    /// what the `deskrelay` binary does, and what loadgen's relay child does with the same
    /// arguments.
    pub fn run(self) -> anyhow::Result<()> {
        use std::io::IsTerminal;
        let logs = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(&self.log)?)
            .with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
            LogFormat::Json => logs.json().init(),
        }
        match self.command {
            Command::Info(args) => super::client::info(&args.socket.path(), args.json),
            Command::List(args) => super::client::list(&args.socket.path(), args.json),
            Command::Stop { socket } => super::client::stop(&socket.path()),
            Command::Proxy(args) => crate::run_proxy(args.into_config()?),
            Command::CheckConfig { file } => {
                let errors = super::config_file::check(&file);
                if errors.is_empty() {
                    println!("{}: ok", file.display());
                    return Ok(());
                }
                for e in &errors {
                    eprintln!("{e}");
                }
                std::process::exit(1)
            }
        }
    }
}

/// Flags of `deskrelay proxy`.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Read flags from a TOML file: each key is a flag's long name (`bind = ["..."]`,
    /// `connect-timeout = 5`); flags on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on; repeat for several. Every shard listens on each (SO_REUSEPORT).
    #[arg(long = "bind", value_name = "ADDR", default_value = DEFAULT_BIND)]
    pub binds: Vec<SocketAddr>,

    /// Backend address every session is relayed to.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_FORWARD)]
    pub forward: SocketAddr,

    /// Number of shards (pinned executors). Default: every online CPU.
    #[arg(long)]
    pub shards: Option<usize>,

    /// Data path between the two sockets of a session.
    #[arg(long, value_enum, default_value_t = DataPathMode::Auto)]
    pub data_path: DataPathMode,

    /// How the splice path issues splices: `syscall` (non-blocking splice(2) on the shard,
    /// readiness from the shard's ring) or `ring` (IORING_OP_SPLICE, run by io-wq workers).
    #[arg(long, value_enum, default_value_t = SpliceVia::Syscall)]
    pub splice_via: SpliceVia,

    /// Auto path: a read at least this large counts as bulk.
    #[arg(long, value_name = "BYTES")]
    pub splice_threshold: Option<usize>,

    /// Auto path: consecutive bulk reads before a direction moves to splice.
    #[arg(long, value_name = "COUNT")]
    pub splice_streak: Option<u32>,

    /// Size of one pooled copy buffer.
    #[arg(long, value_name = "BYTES")]
    pub copy_buffer: Option<usize>,

    /// Pipe capacity asked for each pooled pipe (the kernel may grant less).
    #[arg(long, value_name = "BYTES")]
    pub pipe_size: Option<usize>,

    /// Pipes one shard may lease at once; directions past it stay on the copy path.
    #[arg(long, value_name = "COUNT")]
    pub pipes_per_shard: Option<usize>,

    /// Seconds allowed to connect to the backend.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub connect_timeout: f64,

    /// Seconds SIGINT/SIGTERM waits for open sessions before exiting.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub drain_timeout: f64,

    /// Be an xpra proxy: authenticate clients with `allow` (no check; every client goes to
    /// `--session`) or `multifile:PATH` (xpra's multifile: user|password|uid|gid|displays|
    /// env_vars|session_options). Without it, connections are forwarded (L4) to --forward.
    #[arg(long, value_name = "MODE")]
    pub auth: Option<String>,

    /// With `--auth allow`: the session every client joins, e.g. tcp://127.0.0.1:10000/.
    #[arg(long, value_name = "URI")]
    pub session: Option<String>,

    /// Largest xpra packet accepted after authentication (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_packet: usize,

    /// Largest xpra packet accepted before authentication (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub pre_auth_max_packet: usize,

    /// Directory searched first for local displays' xpra sockets (`:N` sessions); repeat
    /// for several. xpra's own places for the user's uid are searched after these.
    #[arg(long = "socket-dir", value_name = "DIR")]
    pub socket_dirs: Vec<std::path::PathBuf>,

    /// Serve static files (the xpra HTML5 client: /usr/share/xpra/www) over HTTP on the same
    /// port, with the security headers; WebSocket upgrades go to the xpra door or by token.
    #[arg(long, value_name = "DIR")]
    pub web_root: Option<std::path::PathBuf>,

    /// Directory that symlinks inside --web-root may lead to (repeat for several). Default:
    /// /usr/share/javascript when it exists (Debian links the HTML5 client's jQuery there).
    #[arg(long = "web-link-root", value_name = "DIR")]
    pub web_link_roots: Vec<std::path::PathBuf>,

    /// WebSocket tokens for raw targets (X2Go kdrive, VNC-style): `token: host:port` lines,
    /// re-read when the file changes. `ws://gateway/?token=T` is relayed to T's target.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<std::path::PathBuf>,

    /// Origin allowed to open a WebSocket (repeat for several); any Origin when none given.
    #[arg(long = "ws-origin", value_name = "ORIGIN")]
    pub ws_origins: Vec<String>,

    /// Seconds between pings on WebSocket sessions (keeps intermediaries from closing idle
    /// connections); none when 0.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub ws_heartbeat: f64,

    /// Largest WebSocket frame a client may send (close 1009 above).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub ws_max_frame: u64,

    /// Where connections that are not xpra (nor anything else served here) are relayed,
    /// e.g. the web server this port is shared with. Closed without it.
    #[arg(long, value_name = "ADDR")]
    pub fallback: Option<SocketAddr>,

    /// With `--auth`: TLS on the same port, certificate chain (PEM). Reloaded on SIGHUP.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// With `--auth`: seconds a client has to send its first recognisable bytes.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub sniff_timeout: f64,

    /// Networks (CIDR, comma-separated or repeated) of balancers whose connections start
    /// with a PROXY protocol v1/v2 header naming the real client; others are taken as is.
    #[arg(long = "accept-proxy-from", value_name = "CIDR", value_delimiter = ',')]
    pub accept_proxy_from: Vec<Cidr>,

    /// Start every L4, fallback and WebSocket-token backend connection with a PROXY v2
    /// header naming the client (xpra sessions: never, xpra does not read one).
    #[arg(long)]
    pub send_proxy: bool,

    /// Most sessions at once (all shards); connections past it are closed at once, counted
    /// and logged (at most a line a second).
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// Most sessions at once from one client address.
    #[arg(long, value_name = "N")]
    pub max_sessions_per_client: Option<usize>,

    /// Become this user (name or uid) once the listening sockets are bound: start as root
    /// for port 443, serve as nobody. Files read later (multifile, tokens, certificates on
    /// SIGHUP) must be readable by it.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// The group to run as with --user (name or gid); default: the user's own.
    #[arg(long, value_name = "GROUP", requires = "user")]
    pub group: Option<String>,

    /// Seconds a client has to authenticate.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub pre_auth_timeout: f64,

    /// Serve Prometheus metrics (`GET /metrics`, text format 0.0.4) on this address, e.g.
    /// 127.0.0.1:9711, from a thread of its own. No authentication: whoever reaches it reads
    /// the counters, so keep it on loopback or a private network.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,

    /// Close a session that moves no bytes either way for this many seconds (xpra clients
    /// hear `idle timeout`, WebSocket clients a close 1001); none when 0.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub idle_timeout: f64,

    /// Failed logins (xpra passwords, WebSocket tokens) from one address, or for one user,
    /// after which further attempts are refused for a while; none when 0.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub auth_fail_limit: u32,

    /// Seconds without a failure (and after any block) that forget an address or user.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub auth_fail_window: f64,

    /// Seconds of the first block; each further block doubles it.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub auth_backoff: f64,

    /// Seconds of the longest block.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub auth_backoff_max: f64,

    /// Set by `--config` parsing: the file and command line SIGHUP reads again.
    #[arg(skip)]
    pub reload_from: Option<ConfigSource>,

    /// Answer `deskrelay info|list|stop` on this unix socket (mode 0600; created before
    /// --user takes effect). None unless given; `deskrelay info` looks, by default, at
    /// $XDG_RUNTIME_DIR/deskrelay.sock, else /run/deskrelay/deskrelay.sock for root, else
    /// /tmp/deskrelay-UID.sock.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

impl ProxyArgs {
    /// Applies the flags over the defaults; every problem, one a line, if any.
    pub fn into_config(self) -> anyhow::Result<ProxyConfig> {
        Ok(self.build()?)
    }

    /// Applies the flags over the defaults, finding every problem there is, each with the
    /// flags it concerns (a bad value is reported and its default used to check the rest).
    pub fn build(self) -> Result<ProxyConfig, Problems> {
        let mut p = Problems::default();
        let mut cfg = ProxyConfig::defaults();
        cfg.binds = self.binds.clone();
        cfg.forward = self.forward;
        if let Some(n) = self.shards {
            cfg.shards = n;
        }
        cfg.data_path = self.data_path;
        cfg.splice_via = self.splice_via;
        if let Some(n) = self.splice_threshold {
            cfg.auto.bulk_read = n;
        }
        if let Some(n) = self.splice_streak {
            cfg.auto.bulk_streak = n;
        }
        if let Some(n) = self.copy_buffer {
            cfg.copy_buffer = n;
        }
        if let Some(n) = self.pipe_size {
            cfg.pipe_size = n;
        }
        if let Some(n) = self.pipes_per_shard {
            cfg.pipes_per_shard = n;
        }
        let connect = seconds("--connect-timeout", self.connect_timeout);
        if let Some(t) = p.take(&["connect-timeout"], connect) {
            cfg.connect_timeout = t;
        }
        let drain = seconds("--drain-timeout", self.drain_timeout);
        if let Some(t) = p.take(&["drain-timeout"], drain) {
            cfg.drain_timeout = t;
        }
        if let Some(spec) = &self.auth {
            let mode = auth_mode(spec, self.session.as_deref(), &mut p);
            let pre_auth = seconds("--pre-auth-timeout", self.pre_auth_timeout);
            let pre_auth = p.take(&["pre-auth-timeout"], pre_auth);
            if let Some(mode) = mode {
                let mut door = XpraDoor::new(mode);
                door.max_packet = self.max_packet;
                door.pre_auth_max_packet = self.pre_auth_max_packet.min(self.max_packet);
                door.pre_auth_timeout = pre_auth.unwrap_or(door.pre_auth_timeout);
                door.connect_timeout = cfg.connect_timeout;
                door.socket_dirs = self.socket_dirs.clone();
                cfg.xpra = Some(Arc::new(door));
            }
        } else if self.session.is_some() {
            p.push(&["session"], "--session needs --auth allow");
        }
        if self.fallback.is_some()
            && self.auth.is_none()
            && self.web_root.is_none()
            && self.tokens.is_none()
        {
            p.push(
                &["fallback"],
                "--fallback needs a door beside it: --auth, --web-root or --tokens",
            );
        }
        cfg.fallback = self.fallback;
        cfg.max_sessions = self.max_sessions;
        cfg.accept_proxy_from = self.accept_proxy_from.iter().copied().collect();
        cfg.send_proxy = self.send_proxy;
        cfg.control = self.control.clone();
        cfg.max_sessions_per_client = self.max_sessions_per_client;
        cfg.metrics = self.metrics;
        if let Some(user) = &self.user {
            let run_as = RunAs::resolve(user, self.group.as_deref())
                .map_err(|e| anyhow::anyhow!("--user: {e}"));
            cfg.run_as = p.take(&["user", "group"], run_as);
        }
        if self.web_root.is_some() || self.tokens.is_some() {
            cfg.web = self.web_door(&mut p).map(Arc::new);
        }
        let sniffing = self.auth.is_some() || self.web_root.is_some() || self.tokens.is_some();
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            if !sniffing {
                p.push(
                    &["tls-cert", "tls-key"],
                    "--tls-cert needs a door behind it: --auth, --web-root or --tokens",
                );
            } else {
                let store = CertStore::load(cert, key).map_err(|e| anyhow::anyhow!("TLS: {e}"));
                cfg.tls = p.take(&["tls-cert", "tls-key"], store);
            }
        }
        let sniff = seconds("--sniff-timeout", self.sniff_timeout);
        if let Some(t) = p.take(&["sniff-timeout"], sniff) {
            cfg.sniff_timeout = t;
        }
        let limits = self.limits(&mut p);
        cfg.idle_timeout = limits.idle_timeout;
        cfg.auth_throttle = limits.auth;
        cfg.reload_from = self.reload_from.clone();
        for e in cfg.problems() {
            p.push(&[e.flag()], e);
        }
        p.or_value(cfg)
    }

    /// The limits SIGHUP may change, checked.
    pub fn limit_settings(&self) -> anyhow::Result<LimitSettings> {
        let mut p = Problems::default();
        let limits = self.limits(&mut p);
        Ok(p.or_value(limits)?)
    }

    /// The limits, problems recorded in `p` (and the default used for a bad value).
    fn limits(&self, p: &mut Problems) -> LimitSettings {
        let defaults = ThrottleSettings::default();
        let mut secs = |flag: &'static str, value: f64, default: Duration| {
            p.take(&[flag], seconds(&format!("--{flag}"), value))
                .unwrap_or(default)
        };
        let auth = ThrottleSettings {
            max_failures: self.auth_fail_limit,
            window: secs("auth-fail-window", self.auth_fail_window, defaults.window),
            backoff: secs("auth-backoff", self.auth_backoff, defaults.backoff),
            max_backoff: secs(
                "auth-backoff-max",
                self.auth_backoff_max,
                defaults.max_backoff,
            ),
        };
        let idle = secs("idle-timeout", self.idle_timeout, Duration::ZERO);
        if auth.backoff > auth.max_backoff {
            p.push(
                &["auth-backoff", "auth-backoff-max"],
                "--auth-backoff must not exceed --auth-backoff-max",
            );
        }
        LimitSettings {
            max_sessions: self.max_sessions,
            max_sessions_per_client: self.max_sessions_per_client,
            idle_timeout: (!idle.is_zero()).then_some(idle),
            auth,
        }
    }
}

impl ProxyArgs {
    /// The HTTP door from `--web-root`, `--tokens` and the `--ws-*` flags; `None` with the
    /// problems recorded in `p`.
    fn web_door(&self, p: &mut Problems) -> Option<WebDoor> {
        let found = p.0.len();
        let root = self.web_root.as_ref().and_then(|dir| {
            let mut links = self.web_link_roots.clone();
            let debian_js =
                std::path::Path::new(crate::front::http::static_files::DEBIAN_JAVASCRIPT);
            if links.is_empty() && debian_js.is_dir() {
                links.push(debian_js.to_path_buf());
            }
            let root = WebRoot::new(dir)
                .and_then(|r| r.with_link_roots(links))
                .map_err(|e| anyhow::anyhow!("--web-root {}: {e}", dir.display()));
            p.take(&["web-root", "web-link-root"], root)
        });
        let tokens = self.tokens.as_ref().and_then(|path| {
            let file = TokenFile::open(path).map_err(|e| anyhow::anyhow!("--tokens: {e}"));
            p.take(&["tokens"], file)
                .map(|file| Arc::new(file) as Arc<dyn TokenLookup + Send + Sync>)
        });
        let heartbeat = (self.ws_heartbeat > 0.0)
            .then(|| seconds("--ws-heartbeat", self.ws_heartbeat))
            .transpose();
        let heartbeat = p.take(&["ws-heartbeat"], heartbeat).flatten();
        let request_timeout = Duration::try_from_secs_f64(self.sniff_timeout).ok()?;
        (p.0.len() == found).then(|| WebDoor {
            root,
            policy: UpgradePolicy {
                allowed_origins: (!self.ws_origins.is_empty()).then(|| self.ws_origins.clone()),
                require_origin: false,
                tokens,
            },
            max_frame: self.ws_max_frame,
            heartbeat,
            request_timeout,
        })
    }
}

/// Parses `--auth`: `allow` (with `--session`) or `multifile:PATH`; `None` with the
/// problems recorded in `p`.
fn auth_mode(spec: &str, session: Option<&str>, p: &mut Problems) -> Option<AuthMode> {
    match spec.split_once(':') {
        None if spec == "allow" => {
            let Some(uri) = session else {
                p.push(&["auth"], "--auth allow needs --session URI");
                return None;
            };
            let session = uri
                .parse::<SessionTarget>()
                .map_err(|e| anyhow::anyhow!("--session {uri}: {e}"));
            p.take(&["session"], session)
                .map(|session| AuthMode::Allow { session })
        }
        Some(("multifile", path)) => {
            if session.is_some() {
                p.push(
                    &["session"],
                    "--session is for --auth allow; multifile lines name each user's sessions",
                );
            }
            let file = AuthFile::open(std::path::Path::new(path))
                .map_err(|e| anyhow::anyhow!("--auth multifile: {e}"));
            p.take(&["auth"], file).map(AuthMode::MultiFile)
        }
        _ => {
            p.push(
                &["auth"],
                format!("--auth {spec}: expected `allow` or `multifile:PATH`"),
            );
            None
        }
    }
}

/// `--log`: a filter tracing accepts.
fn log_filter(spec: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(spec)
        .map(|_| spec.to_string())
        .map_err(|e| e.to_string())
}

fn seconds(name: &str, secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("{name}: {secs} is not a duration"))
}
