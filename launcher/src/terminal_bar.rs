//! A progress bar on stderr that exists only when stderr is a terminal: the part that job
//! arrays' and `pirun bench`'s displays share (creation, clearing it around other output,
//! removing it). Each display decides what the bar says.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar drawn on stderr at most ten times a second, or nothing when stderr is not a
/// terminal (a log file gets no control characters).
#[derive(Debug)]
pub struct TerminalBar(Option<ProgressBar>);

impl TerminalBar {
    /// A bar of `len` steps (`None`: unknown, a spinner) drawn with `template` (indicatif's
    /// syntax), showing `message` until told otherwise.
    pub fn new(len: Option<u64>, template: &str, message: &'static str) -> TerminalBar {
        TerminalBar(std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr_with_hz(10));
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(message);
            bar
        }))
    }

    /// The bar, if it is shown.
    pub fn get(&self) -> Option<&ProgressBar> {
        self.0.as_ref()
    }

    /// Runs `f` (which writes to the terminal) with the bar cleared, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar for good.
    pub fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
