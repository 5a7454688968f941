//! What `pirun bench` shows on stderr while it runs: a progress bar (measurements done of
//! how many, the one running, elapsed time) drawn with `indicatif` when stderr is a
//! terminal, otherwise one plain line per finished measurement. Output the ranks print
//! meanwhile goes through [`Progress::suspend`], so it never mixes with the bar. No
//! thread of its own: the bar is redrawn when rank 0 reports (at least once per
//! measurement).

use pirun_benches::line::Measurement;
use pirun_benches::plan::Test;
use pirun_benches::sizes::format_size;

use crate::output::report;
use crate::terminal_bar::TerminalBar;

/// The display.
#[derive(Debug)]
pub struct Progress {
    /// The bar, when stderr is a terminal.
    bar: TerminalBar,
    /// Measurements finished and expected.
    done: u64,
    total: u64,
}

/// `test` at `size` for people: `allreduce 64 KiB`, `barrier`.
pub fn label(test: Test, size: usize) -> String {
    if test.sized() {
        format!("{} {}", test.name(), format_size(size))
    } else {
        test.name().to_string()
    }
}

impl Progress {
    /// A display for `total` measurements, drawn as a bar only if stderr is a terminal.
    pub fn new(total: usize) -> Self {
        let bar = TerminalBar::new(
            Some(total as u64),
            "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
            "starting the ranks",
        );
        Progress {
            bar,
            done: 0,
            total: total as u64,
        }
    }

    /// The number of measurements as rank 0 counts them.
    pub fn set_total(&mut self, total: usize) {
        self.total = total as u64;
        if let Some(bar) = self.bar.get() {
            bar.set_length(self.total);
        }
    }

    /// A measurement starts.
    pub fn begin(&self, test: Test, size: usize) {
        if let Some(bar) = self.bar.get() {
            bar.set_message(label(test, size));
        }
    }

    /// A measurement ended with figures (`Ok`) or without (`Err`: why).
    pub fn finished(&mut self, test: Test, size: usize, result: Result<&Measurement, &str>) {
        self.done += 1;
        match self.bar.get() {
            Some(bar) => bar.set_position(self.done),
            None => report(&format!(
                "bench: [{}/{}] {}: {}",
                self.done,
                self.total,
                label(test, size),
                match result {
                    Ok(m) => format!("median {:.2} µs", m.median_us),
                    Err(why) => why.to_string(),
                }
            )),
        }
    }

    /// Runs `f` (which writes to the terminal) with the bar cleared, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar for good (before the table is printed).
    pub fn finish(&mut self) {
        self.bar.finish();
    }
}
