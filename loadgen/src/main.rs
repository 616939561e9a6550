//! loadgen: drives simulated remote-desktop sessions through deskrelay (or a peer relay) on an
//! open-loop schedule, verifies every byte, and reports HdrHistogram latency per direction.
//!
//! The path of a run, and the module that owns each step:
//! - [`cli`], [`profile`]: what to run; [`schedule`]: when each message is due;
//! - [`run`]: the run itself; [`relay_child`]: the deskrelay it starts (a child process of
//!   this build); [`worker`]: the glommio executors, each with client sessions
//!   ([`session`]) and simulated backends ([`backend`]) sending and verifying ([`flow`]) the
//!   framed messages of [`wire`] / [`decode`] after the set-up of [`protocol`] (for xpra:
//!   the handshake of [`xpra`], the frames of [`xframe`]; for ws: [`ws`]);
//! - [`metrics`], [`report`], [`hgrm`], [`plot`], [`progress`]: what comes out;
//!   [`sys`]: what /proc says.

mod backend;
mod cli;
mod decode;
mod flow;
mod hgrm;
mod metrics;
mod net;
mod plot;
mod profile;
mod progress;
mod protocol;
mod relay_child;
mod report;
mod run;
mod schedule;
mod session;
mod sys;
mod wire;
mod worker;
mod ws;
mod xframe;
mod xpra;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Cli, Command};
use report::Point;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => run_and_report(&cli),
        Some(Command::Plot {
            out,
            direction,
            reports,
        }) => plot_reports(out, direction, reports),
        Some(Command::Relay { args }) => run_relay(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A run: prints the report, writes the files asked for; exit 1 unless it was clean.
fn run_and_report(cli: &Cli) -> Result<ExitCode> {
    if let Some((path, kind)) = run::write_missing_secrets(cli)? {
        let (what, how) = if kind == "users" {
            (
                "user0..user",
                format!("deskrelay proxy --auth multifile:{}", path.display()),
            )
        } else {
            (
                "tokens of sessions 0..",
                format!(
                    "deskrelay proxy --tokens {0}` or `websockify --token-plugin TokenFile \
                     --token-source {0} 127.0.0.1:PORT",
                    path.display()
                ),
            )
        };
        eprintln!(
            "loadgen: wrote {} ({what}{}, mode 0600); start the relay with it, e.g. `{how}`, \
             then run loadgen again",
            path.display(),
            cli.sessions - 1,
        );
        return Ok(ExitCode::SUCCESS);
    }
    let report = run::run(cli)?;
    print!("{}", report.text());
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = &cli.hgrm {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, d) in [
            ("upstream", &report.upstream),
            ("downstream", &report.downstream),
        ] {
            let path = dir.join(format!("{}-{name}.hgrm", report.config.label));
            std::fs::write(&path, hgrm::render(&d.histogram))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if let Some(path) = &cli.plot {
        let series = [
            ("upstream", &report.upstream),
            ("downstream", &report.downstream),
        ]
        .map(|(name, d)| plot::Series {
            label: format!("{} {name}", report.config.label),
            points: d.distribution.clone(),
        });
        let title = format!(
            "loadgen {} profile, {} sessions: latency by percentile",
            report.config.profile, report.config.sessions
        );
        plot::draw(path, &title, &series)?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `loadgen plot`: one line per report, for the direction asked.
fn plot_reports(out: &Path, direction: &str, reports: &[std::path::PathBuf]) -> Result<ExitCode> {
    let mut series = Vec::new();
    let mut title = String::new();
    for path in reports {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a loadgen JSON report", path.display()))?;
        let points: Vec<Point> = serde_json::from_value(v[direction]["distribution"].clone())
            .with_context(|| format!("{} has no {direction} distribution", path.display()))?;
        let label = v["config"]["label"].as_str().unwrap_or("?").to_string();
        if title.is_empty() {
            title = format!(
                "{direction} latency by percentile: {} profile, {} sessions",
                v["config"]["profile"].as_str().unwrap_or("?"),
                v["config"]["sessions"]
            );
        }
        series.push(plot::Series { label, points });
    }
    plot::draw(out, &title, &series)?;
    eprintln!("loadgen: wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// `loadgen relay -- proxy ...`: the relay child, exactly `deskrelay proxy ...`.
fn run_relay(args: &[String]) -> Result<ExitCode> {
    let args = std::iter::once("deskrelay".to_string()).chain(args.iter().cloned());
    deskrelay::control::cli::Cli::try_parse_from_args(args)?.run()?;
    Ok(ExitCode::SUCCESS)
}
