//! Which data path a direction uses, and when it changes: pure decisions, no I/O.
//!
//! `auto` starts every direction on copy. A run of `bulk_streak` reads of at least
//! `bulk_read` bytes means the source is streaming, so the direction leases a pipe and
//! splices. The same number of short splices in a row, or no bytes for `idle_release`,
//! means the burst is over: the pipe goes back to the pool and the direction copies again.
//! The hysteresis keeps an interactive session from bouncing between paths on every frame.

use std::time::Duration;

/// `--data-path`: how bulk bytes move between a session's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataPathMode {
    /// Pooled user-space buffers only.
    Copy,
    /// Splice through a pipe from the first byte (copy only when no pipe can be had).
    Splice,
    /// Copy for interactive traffic, splice for sustained bulk, decided per direction.
    Auto,
}

impl std::fmt::Display for DataPathMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataPathMode::Copy => "copy",
            DataPathMode::Splice => "splice",
            DataPathMode::Auto => "auto",
        })
    }
}

/// Thresholds of the auto path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTuning {
    /// A read (or splice) at least this large counts as bulk.
    pub bulk_read: usize,
    /// Consecutive bulk reads before moving to splice; consecutive short splices before
    /// moving back.
    pub bulk_streak: u32,
    /// A spliced direction with no bytes for this long gives its pipe back.
    pub idle_release: Duration,
}

impl Default for AutoTuning {
    fn default() -> Self {
        Self {
            bulk_read: 64 * 1024,
            bulk_streak: 4,
            idle_release: Duration::from_millis(250),
        }
    }
}

/// The path a direction is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Copy,
    Splice,
}

/// What the direction should do after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Stay,
    UseSplice,
    UseCopy,
}

/// One direction's policy state.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: DataPathMode,
    tuning: AutoTuning,
    streak: u32,
}

impl Policy {
    pub fn new(mode: DataPathMode, tuning: AutoTuning) -> Self {
        Self {
            mode,
            tuning,
            streak: 0,
        }
    }

    /// The path a new direction starts on.
    pub fn initial(&self) -> Path {
        match self.mode {
            DataPathMode::Splice => Path::Splice,
            DataPathMode::Copy | DataPathMode::Auto => Path::Copy,
        }
    }

    /// The idle time after which a spliced direction gives its pipe back (auto only).
    pub fn idle_release(&self) -> Option<Duration> {
        (self.mode == DataPathMode::Auto).then_some(self.tuning.idle_release)
    }

    /// A copy read of `n` bytes (n > 0) happened.
    pub fn after_copy_read(&mut self, n: usize) -> Decision {
        match self.mode {
            DataPathMode::Auto => self.count(n >= self.tuning.bulk_read, Decision::UseSplice),
            // Forced splice that had to copy (no pipe): try again after a streak of reads.
            DataPathMode::Splice => self.count(true, Decision::UseSplice),
            DataPathMode::Copy => Decision::Stay,
        }
    }

    /// A splice moved `n` bytes (n > 0) from the source into the pipe.
    pub fn after_splice(&mut self, n: usize) -> Decision {
        match self.mode {
            DataPathMode::Auto => self.count(n < self.tuning.bulk_read, Decision::UseCopy),
            DataPathMode::Splice | DataPathMode::Copy => Decision::Stay,
        }
    }

    /// The spliced source stayed silent for `idle_release`.
    pub fn after_splice_idle(&mut self) -> Decision {
        self.streak = 0;
        match self.mode {
            DataPathMode::Auto => Decision::UseCopy,
            DataPathMode::Splice | DataPathMode::Copy => Decision::Stay,
        }
    }

    /// The path just changed (or a wanted pipe was not available): start counting afresh.
    pub fn reset(&mut self) {
        self.streak = 0;
    }

    fn count(&mut self, hit: bool, decision: Decision) -> Decision {
        if !hit {
            self.streak = 0;
            return Decision::Stay;
        }
        self.streak += 1;
        if self.streak >= self.tuning.bulk_streak {
            self.streak = 0;
            decision
        } else {
            Decision::Stay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> Policy {
        Policy::new(DataPathMode::Auto, AutoTuning::default())
    }

    #[test]
    fn auto_starts_on_copy_and_splice_mode_on_splice() {
        assert_eq!(auto().initial(), Path::Copy);
        assert_eq!(
            Policy::new(DataPathMode::Splice, AutoTuning::default()).initial(),
            Path::Splice
        );
        assert_eq!(
            Policy::new(DataPathMode::Copy, AutoTuning::default()).initial(),
            Path::Copy
        );
    }

    #[test]
    fn interactive_reads_stay_on_copy() {
        let mut p = auto();
        for _ in 0..1000 {
            assert_eq!(p.after_copy_read(64), Decision::Stay);
        }
    }

    #[test]
    fn a_streak_of_bulk_reads_moves_to_splice() {
        let mut p = auto();
        let bulk = AutoTuning::default().bulk_read;
        for _ in 1..AutoTuning::default().bulk_streak {
            assert_eq!(p.after_copy_read(bulk), Decision::Stay);
        }
        assert_eq!(p.after_copy_read(bulk), Decision::UseSplice);
    }

    #[test]
    fn one_small_read_breaks_the_streak() {
        let mut p = auto();
        let t = AutoTuning::default();
        for _ in 0..10 {
            for _ in 1..t.bulk_streak {
                assert_eq!(p.after_copy_read(t.bulk_read), Decision::Stay);
            }
            assert_eq!(p.after_copy_read(100), Decision::Stay);
        }
    }

    #[test]
    fn short_splices_or_silence_move_back_to_copy() {
        let t = AutoTuning::default();
        let mut p = auto();
        for _ in 1..t.bulk_streak {
            assert_eq!(p.after_splice(10), Decision::Stay);
        }
        assert_eq!(p.after_splice(10), Decision::UseCopy);

        let mut p = auto();
        assert_eq!(p.after_splice(t.bulk_read), Decision::Stay);
        assert_eq!(p.after_splice_idle(), Decision::UseCopy);
        assert_eq!(p.idle_release(), Some(t.idle_release));
    }

    #[test]
    fn forced_modes_never_switch_on_their_own() {
        let t = AutoTuning::default();
        let mut copy = Policy::new(DataPathMode::Copy, t);
        let mut splice = Policy::new(DataPathMode::Splice, t);
        for _ in 0..100 {
            assert_eq!(copy.after_copy_read(t.bulk_read * 4), Decision::Stay);
            assert_eq!(splice.after_splice(1), Decision::Stay);
        }
        assert_eq!(splice.after_splice_idle(), Decision::Stay);
        assert_eq!(splice.idle_release(), None);
    }

    #[test]
    fn forced_splice_without_a_pipe_retries_after_a_streak() {
        let t = AutoTuning::default();
        let mut p = Policy::new(DataPathMode::Splice, t);
        for _ in 1..t.bulk_streak {
            assert_eq!(p.after_copy_read(1), Decision::Stay);
        }
        assert_eq!(p.after_copy_read(1), Decision::UseSplice);
    }
}
