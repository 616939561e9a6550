//! Control plane: configuration (command line, TOML file), the counters every shard
//! keeps, and the Prometheus endpoint that shows them (`metrics`).

pub mod cli;
pub mod config;
pub mod config_file;
pub mod histogram;
pub mod metrics;
pub mod stats;
pub mod watched_file;
