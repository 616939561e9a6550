//! Control plane: configuration (command line, TOML file), and the counters every shard
//! keeps.

pub mod cli;
pub mod config;
pub mod config_file;
pub mod stats;
pub mod watched_file;
