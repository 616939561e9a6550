//! What a run shows while it goes: an indicatif bar on a TTY, a plain line every few seconds
//! otherwise; and, at the same pace, the relay's memory, whose peak the report gives.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::Sent;
use crate::net::now_ns;
use crate::sys;
use crate::worker::Plan;

/// How often the relay's memory is sampled and the bar redrawn.
const TICK: Duration = Duration::from_millis(100);
/// Plain lines (no TTY) come this often.
const PLAIN_EVERY: u64 = 20;

/// The running progress thread.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
}

impl Progress {
    /// Starts showing progress toward `plan.end_ns`; samples `relay_pid`'s process tree.
    pub fn start(plan: Arc<Plan>, relay_pid: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("loadgen-progress".into())
            .spawn(move || show(&plan, relay_pid, &flag))
            .expect("cannot start the progress thread");
        Self { stop, handle }
    }

    /// Stops the display; returns the highest relay RSS sampled (bytes; 0 if none).
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

fn show(plan: &Plan, relay_pid: Option<u32>, stop: &AtomicBool) -> u64 {
    let total_ms = (plan.end_ns.saturating_sub(plan.start_ns) / 1_000_000).max(1);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total_ms);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let mut peak = 0;
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(u) = relay_pid.and_then(sys::tree_usage) {
            peak = peak.max(u.rss_bytes);
        }
        let s = &plan.sent;
        let elapsed_ms = now_ns().saturating_sub(plan.start_ns) / 1_000_000;
        let msg = if plan.profile.kind == crate::cli::ProfileKind::Handshake {
            format!(
                "{} handshakes started, {} sessions done",
                Sent::get(&s.handshakes),
                Sent::get(&s.clients_done),
            )
        } else {
            format!(
                "{} sessions open, {} done; sent up {} msgs, down {} msgs",
                Sent::get(&s.backends_open),
                Sent::get(&s.clients_done),
                Sent::get(&s.up_messages),
                Sent::get(&s.down_messages),
            )
        };
        match &bar {
            Some(bar) => {
                bar.set_position(elapsed_ms.min(total_ms));
                bar.set_message(msg);
            }
            None if tick % PLAIN_EVERY == PLAIN_EVERY - 1 => {
                eprintln!(
                    "loadgen: {:.1}/{:.1} s, {msg}",
                    elapsed_ms as f64 / 1e3,
                    total_ms as f64 / 1e3
                );
            }
            None => {}
        }
        tick += 1;
        std::thread::sleep(TICK);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    peak
}
