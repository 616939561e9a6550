//! The `deskrelay` binary: parse the command line, set up logging, run the library.

use std::io::IsTerminal;

use clap::Parser;
use deskrelay::control::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Proxy(args) => deskrelay::run_proxy(args.into_config()?),
    }
}
