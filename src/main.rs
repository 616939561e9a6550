//! The `deskrelay` binary: parse the command line and run it (`control::cli::Cli::run`).

use clap::Parser;
use deskrelay::control::cli::Cli;

fn main() -> anyhow::Result<()> {
    Cli::parse().run()
}
