//! The progress display of a job array: one line on stderr — tasks finished (of how
//! many), running, failed, the rate and the time left — drawn with `indicatif` when
//! stderr is a terminal, and nothing at all otherwise (a log file gets the summary line
//! only). No thread: the run's event loop updates it, and `indicatif` redraws at most
//! ten times a second. Whatever pirun writes while it is shown goes through
//! [`Progress::suspend`], so output lines and the display never mix.

use std::time::{Duration, Instant};

use crate::terminal_bar::TerminalBar;

/// How often the display is refreshed when nothing else happens (elapsed time, ETA).
pub const REFRESH: Duration = Duration::from_secs(1);

/// The display (absent when stderr is not a terminal).
#[derive(Debug)]
pub struct Progress {
    bar: TerminalBar,
    /// Finished, running, failed, rate: what the display shows now.
    shown: (u64, usize, u64, u64),
    started: Instant,
}

impl Progress {
    /// A display for `total` tasks (`None`: unknown), shown only if stderr is a terminal.
    pub fn new(total: Option<u64>) -> Self {
        let bar = match total {
            Some(n) => TerminalBar::new(
                Some(n),
                "{elapsed_precise} [{bar:30}] {pos}/{len} done, {msg}, ETA {eta}",
                "0 running, 0 failed",
            ),
            None => TerminalBar::new(
                None,
                "{elapsed_precise} {spinner} {pos} done, {msg}",
                "0 running, 0 failed",
            ),
        };
        Progress {
            bar,
            shown: (0, 0, 0, 0),
            started: Instant::now(),
        }
    }

    /// Whether the display is on the terminal.
    pub fn visible(&self) -> bool {
        self.bar.get().is_some()
    }

    /// New figures: tasks finished (done or failed for good), running, failed.
    pub fn update(&mut self, finished: u64, running: usize, failed: u64) {
        let Some(bar) = self.bar.get() else { return };
        if self.shown.0 != finished {
            bar.set_position(finished);
        }
        // The average rate since the start: steadier than indicatif's recent-steps one.
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.5 {
            (finished as f64 / secs).round() as u64
        } else {
            0
        };
        if (self.shown.1, self.shown.2, self.shown.3) != (running, failed, rate) {
            bar.set_message(format!(
                "{running} running, {failed} failed, {rate} tasks/s"
            ));
        }
        self.shown = (finished, running, failed, rate);
    }

    /// Redraws (elapsed time and ETA move on even when no task ends).
    pub fn tick(&self) {
        if let Some(bar) = self.bar.get() {
            bar.tick();
        }
    }

    /// Runs `f` (which writes to the terminal) with the display cleared, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the display for good (before the summary line).
    pub fn finish(&mut self) {
        self.bar.finish();
    }
}
