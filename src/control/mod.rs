//! Control plane: configuration (command line, TOML file), the counters every shard keeps,
//! the live-session registry, the control socket (`deskrelay info|list|stop`), and the
//! Prometheus endpoint.
//!
//! - [`registry`]: each shard's live sessions and their byte counters; session log lines.
//! - [`socket`]: the unix socket a running relay answers on (its own thread);
//!   [`report`] the JSON it answers with; [`client`] the commands that ask.
//! - [`metrics`]: `--metrics ADDR`, counters and [`histogram`]s in Prometheus text format.

pub mod cli;
pub mod client;
pub mod config;
pub mod config_file;
pub mod histogram;
pub mod metrics;
pub mod problems;
pub mod registry;
pub mod report;
pub mod socket;
pub mod stats;
pub mod watched_file;
