//! The command line (clap derive); doc comments are the help text.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::config::{ProxyConfig, DEFAULT_BIND, DEFAULT_FORWARD};
use crate::relay::{DataPathMode, SpliceVia};

/// deskrelay: a thread-per-core gateway for remote-desktop sessions.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `deskrelay=debug`.
    #[arg(long, global = true, env = "DESKRELAY_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay every accepted connection to one backend (L4 forwarding).
    Proxy(ProxyArgs),
}

impl Cli {
    /// Sets up logging (tracing to stderr, colours only on a terminal) and runs the command:
    /// what the `deskrelay` binary does, and what loadgen's relay child does with the same
    /// arguments.
    pub fn run(self) -> anyhow::Result<()> {
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(&self.log)?)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
        match self.command {
            Command::Proxy(args) => crate::run_proxy(args.into_config()?),
        }
    }
}

/// Flags of `deskrelay proxy`.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
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
}

impl ProxyArgs {
    /// Applies the flags over the defaults.
    pub fn into_config(self) -> anyhow::Result<ProxyConfig> {
        let mut cfg = ProxyConfig::defaults();
        cfg.binds = self.binds;
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
        cfg.connect_timeout = seconds("--connect-timeout", self.connect_timeout)?;
        cfg.drain_timeout = seconds("--drain-timeout", self.drain_timeout)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

fn seconds(name: &str, secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("{name}: {secs} is not a duration"))
}
