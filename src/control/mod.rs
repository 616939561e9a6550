//! Control plane: configuration, command line, and the counters every shard keeps.

pub mod cli;
pub mod config;
pub mod stats;
