//! The `deskrelay` binary: parse the command line and run it (`control::cli::Cli::run`).

use deskrelay::control::cli::Cli;

fn main() -> anyhow::Result<()> {
    Cli::from_env().run()
}
