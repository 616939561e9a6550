//! Command line of `loadgen` (clap derive; every flag documented in `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Drives simulated remote-desktop sessions through deskrelay (a child process of this build,
/// by default) or any relay on loopback, on a fixed, open-loop schedule; verifies every byte
/// and reports HDR latency histograms per direction.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Number of sessions (one client connection plus one backend connection each).
    #[arg(long, default_value_t = 100)]
    pub sessions: u32,
    /// Sessions opened per second during ramp-up (a connect storm is a choice: raise it).
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// Seconds of traffic once the ramp-up has finished.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Traffic pattern of every session.
    #[arg(long, value_enum, default_value_t = ProfileKind::Desktop)]
    pub profile: ProfileKind,
    /// How a session is set up on the wire, and how its messages are framed.
    #[arg(long, value_enum, default_value_t = Protocol::Raw)]
    pub protocol: Protocol,
    /// handshake profile: stop after this many handshakes in all (the run also stops at
    /// --duration).
    #[arg(long)]
    pub max_handshakes: Option<u64>,
    /// xpra with --target: the multifile (user|password|uid|gid|tcp://BACKEND/||) the relay
    /// authenticates user0..userN-1 with. An existing file is read for the passwords; a
    /// missing one is written (mode 0600, pointing at --backend-listen) and loadgen exits,
    /// so the relay can be started with it before the run.
    #[arg(long, requires = "target")]
    pub xpra_users: Option<PathBuf>,
    /// ws with --target: the token file (`token: host:port` lines, websockify's TokenFile
    /// format and deskrelay's --tokens) with a token per session. An existing file is read
    /// for the tokens; a missing one is written (mode 0600, every token leading to
    /// --backend-listen) and loadgen exits, so the relay can be started with it before the
    /// run. Without it the clients upgrade `GET /` (a relay with one fixed target).
    #[arg(long, requires = "target")]
    pub ws_tokens: Option<PathBuf>,
    /// Internal (tests): xpra clients answer the challenge with a wrong password.
    #[arg(long, hide = true)]
    pub xpra_wrong_password: bool,
    /// Load-generator executors (glommio, unpinned); default: the number of CPUs.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Shards of the relay loadgen starts; default: the relay's own (every CPU).
    #[arg(long)]
    pub relay_shards: Option<usize>,
    /// Data path of the relay loadgen starts (copy, splice, auto).
    #[arg(long, default_value = "auto")]
    pub relay_data_path: String,
    /// Run against an already running relay at HOST:PORT (loopback only) instead of starting
    /// one (a child process of this build).
    #[arg(long, conflicts_with = "direct")]
    pub target: Option<SocketAddr>,
    /// With --target: the relay's process id, so its CPU time and memory (the process and
    /// its children) are measured and reported.
    #[arg(long, requires = "target")]
    pub relay_pid: Option<u32>,
    /// Where the simulated backends listen (loopback only); default 127.0.0.1:0. Fix it when
    /// `--target` is a relay that forwards to it.
    #[arg(long)]
    pub backend_listen: Option<SocketAddr>,
    /// Connect clients straight to the backends: the no-relay baseline.
    #[arg(long)]
    pub direct: bool,
    /// Seconds allowed for one connect.
    #[arg(long, default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Name of this run in reports and plots (default: the target's kind).
    #[arg(long)]
    pub label: Option<String>,
    /// Write the report as JSON to this file too (schema in loadgen/README.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write HdrHistogram percentile distributions (`*.hgrm`) into this directory.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Plot latency by percentile (log scale, one line per direction) into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,

    /// desktop: input events per second and session, upstream.
    #[arg(long, default_value_t = 60.0)]
    pub input_rate: f64,
    /// desktop: input event size range in bytes, MIN-MAX.
    #[arg(long, default_value = "32-64", value_parser = parse_range)]
    pub input_size: (u32, u32),
    /// desktop: damage updates per second and session, downstream.
    #[arg(long, default_value_t = 30.0)]
    pub damage_rate: f64,
    /// desktop: damage update size range in bytes, MIN-MAX.
    #[arg(long, default_value = "1024-4096", value_parser = parse_range)]
    pub damage_size: (u32, u32),
    /// desktop: seconds between large frames of one session (0: none).
    #[arg(long, default_value_t = 5.0)]
    pub frame_every: f64,
    /// desktop: large frame size range in bytes, MIN-MAX.
    #[arg(long, default_value = "65536-1048576", value_parser = parse_range)]
    pub frame_size: (u32, u32),
    /// echo and bulk: message size in bytes (echo default 64, bulk default 65536).
    #[arg(long)]
    pub size: Option<u32>,
    /// echo and bulk: messages per second and session (echo default 100, bulk default 50).
    #[arg(long)]
    pub rate: Option<f64>,
    /// bulk: no schedule; each sender writes its messages back to back until --duration
    /// ends, so throughput is what the path carries (latency then measures queueing behind
    /// the sender, from the time each message is written, not an open-loop schedule).
    #[arg(long, conflicts_with = "rate")]
    pub saturate: bool,
}

/// Other things loadgen does besides a run.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Plot several runs' `--json` reports into one latency-by-percentile SVG.
    Plot {
        /// The SVG file to write.
        #[arg(long)]
        out: PathBuf,
        /// Which direction to plot.
        #[arg(long, default_value = "downstream")]
        direction: String,
        /// Reports written by `loadgen --json`.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
    },
    /// Internal: run a deskrelay in this process (how loadgen starts its relay as a child
    /// process of the same build). Takes `deskrelay`'s own arguments.
    #[command(hide = true)]
    Relay {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Traffic pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileKind {
    /// Small input events up (~60 Hz), damage updates down (~30 Hz) plus occasional large
    /// frames.
    Desktop,
    /// Fixed-size messages up on a schedule; the backend echoes each one, so the downstream
    /// latency is the round trip.
    Echo,
    /// Sustained streams of large messages both ways.
    Bulk,
    /// No traffic: every session connects, completes the protocol's handshake, closes, and
    /// starts over until --duration (or --max-handshakes); measures handshakes per second.
    Handshake,
}

/// Session set-up on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Plain TCP: the first message names the session.
    Raw,
    /// xpra: hello (user<N>), challenge-response authentication through the relay, the
    /// server's hello; then every message travels inside xpra frames (loadgen/README.md).
    Xpra,
    /// WebSocket to a gateway that bridges it to TCP by token: HTTP upgrade to
    /// `/?token=<the session's>`, then the raw protocol inside binary frames (masked
    /// upstream); the backends speak raw TCP (loadgen/README.md).
    Ws,
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.trim().parse().map_err(|e| format!("{s}: {e}"))?;
    let b: u32 = b.trim().parse().map_err(|e| format!("{s}: {e}"))?;
    if a > b {
        return Err(format!("{s}: minimum above maximum"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("32-64"), Ok((32, 64)));
        assert_eq!(parse_range("100"), Ok((100, 100)));
        assert!(parse_range("9-1").is_err());
        assert!(parse_range("x").is_err());
    }

    #[test]
    fn defaults_parse() {
        let cli = Cli::parse_from(["loadgen", "--sessions", "1000"]);
        assert_eq!(cli.sessions, 1000);
        assert_eq!(cli.profile, ProfileKind::Desktop);
    }
}
