//! Profiles: what each direction of a session sends, as a list of timed message streams.

use anyhow::{bail, Result};

use crate::cli::{Cli, ProfileKind};
use crate::wire::MAX_PAYLOAD;

/// One periodic stream of messages: `rate` per second, sizes uniform in `min..=max` bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamSpec {
    pub rate: f64,
    pub min: u32,
    pub max: u32,
}

/// What a session sends each way.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub kind: ProfileKind,
    /// Client to backend.
    pub up: Vec<StreamSpec>,
    /// Backend to client (empty for echo: the backend answers each upstream message).
    pub down: Vec<StreamSpec>,
    /// The backend writes every upstream message back.
    pub echo: bool,
    /// `--saturate`: senders write back to back until the end, stamping each message with
    /// the time it is written.
    pub saturate: bool,
}

impl Profile {
    pub fn from_cli(cli: &Cli) -> Result<Self> {
        let spec = |rate: f64, (min, max): (u32, u32)| StreamSpec { rate, min, max };
        let p = match cli.profile {
            ProfileKind::Desktop => {
                let mut down = vec![spec(cli.damage_rate, cli.damage_size)];
                if cli.frame_every > 0.0 {
                    down.push(spec(1.0 / cli.frame_every, cli.frame_size));
                }
                Self {
                    kind: cli.profile,
                    up: vec![spec(cli.input_rate, cli.input_size)],
                    down,
                    echo: false,
                    saturate: false,
                }
            }
            ProfileKind::Echo => {
                let size = cli.size.unwrap_or(64);
                Self {
                    kind: cli.profile,
                    up: vec![spec(cli.rate.unwrap_or(100.0), (size, size))],
                    down: vec![],
                    echo: true,
                    saturate: false,
                }
            }
            ProfileKind::Handshake => Self {
                kind: cli.profile,
                up: vec![],
                down: vec![],
                echo: false,
                saturate: false,
            },
            ProfileKind::Bulk => {
                let size = cli.size.unwrap_or(64 * 1024);
                // Saturating: the schedule only supplies sizes, at the most it may hold.
                let rate = if cli.saturate {
                    1e6
                } else {
                    cli.rate.unwrap_or(50.0)
                };
                let s = spec(rate, (size, size));
                Self {
                    kind: cli.profile,
                    up: vec![s],
                    down: vec![s],
                    echo: false,
                    saturate: cli.saturate,
                }
            }
        };
        if cli.saturate && cli.profile != ProfileKind::Bulk {
            bail!("--saturate is for --profile bulk");
        }
        for s in p.up.iter().chain(&p.down) {
            if !(s.rate > 0.0 && s.rate <= 1e6) {
                bail!(
                    "message rates must be between 0 and 1e6 per second, got {}",
                    s.rate
                );
            }
            if s.max > MAX_PAYLOAD {
                bail!(
                    "message sizes are limited to {MAX_PAYLOAD} bytes, got {}",
                    s.max
                );
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn desktop_has_damage_and_frames() {
        let cli = Cli::parse_from(["loadgen"]);
        let p = Profile::from_cli(&cli).unwrap();
        assert_eq!(p.up.len(), 1);
        assert_eq!(p.down.len(), 2);
        assert!(!p.echo);
    }

    #[test]
    fn saturate_is_bulk_only_and_takes_no_rate() {
        let cli = Cli::parse_from(["loadgen", "--profile", "bulk", "--saturate"]);
        assert!(Profile::from_cli(&cli).unwrap().saturate);
        let cli = Cli::parse_from(["loadgen", "--saturate"]);
        assert!(Profile::from_cli(&cli).is_err());
        assert!(Cli::try_parse_from(["loadgen", "--saturate", "--rate", "5"]).is_err());
    }

    #[test]
    fn oversized_messages_are_refused() {
        let cli = Cli::parse_from(["loadgen", "--profile", "bulk", "--size", "99999999"]);
        assert!(Profile::from_cli(&cli).is_err());
    }
}
