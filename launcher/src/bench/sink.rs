//! Where the benchmark job's output goes: rank 0's report lines
//! ([`pirun_benches::line`]) are taken out of its stdout and collected ([`Collected`]),
//! updating the progress display; every other line is forwarded as in any job.

use std::cell::RefCell;
use std::rc::Rc;

use pirun_benches::line::{Line, Measurement, Setup};
use pirun_benches::plan::Test;

use super::progress::Progress;
use crate::output::{OutputSink, Stream, Terminal};

/// What rank 0 reported so far.
#[derive(Debug)]
pub struct Collected {
    pub setup: Option<Setup>,
    pub results: Vec<Measurement>,
    /// Measurements without figures (the result check failed), and why.
    pub failures: Vec<(Test, usize, String)>,
    /// Measurements left out (too much memory), and why.
    pub skipped: Vec<(Test, usize, String)>,
    /// Whether rank 0 said it had finished.
    pub done: bool,
    /// Report lines that could not be parsed (a different pirun on rank 0's host).
    pub bad_lines: Vec<String>,
    pub progress: Progress,
}

impl Collected {
    /// Nothing reported yet.
    pub fn new(progress: Progress) -> Self {
        Collected {
            setup: None,
            results: Vec::new(),
            failures: Vec::new(),
            skipped: Vec::new(),
            done: false,
            bad_lines: Vec::new(),
            progress,
        }
    }

    /// Measurements finished, with or without figures, or skipped.
    pub fn finished(&self) -> usize {
        self.results.len() + self.failures.len() + self.skipped.len()
    }

    fn take(&mut self, line: Line) {
        match line {
            Line::Setup(s) => {
                self.progress.set_total(s.measurements);
                self.setup = Some(s);
            }
            Line::Begin { test, size } => self.progress.begin(test, size),
            Line::Result(m) => {
                self.progress.finished(m.test, m.size, Ok(&m));
                self.results.push(m);
            }
            Line::Failed { test, size, what } => {
                self.progress.finished(test, size, Err(&what));
                self.failures.push((test, size, what));
            }
            Line::Skipped { test, size, why } => {
                self.progress.finished(test, size, Err(&why));
                self.skipped.push((test, size, why));
            }
            Line::Done => self.done = true,
        }
    }
}

/// The job's output sink in bench mode.
pub struct BenchSink {
    out: Terminal,
    state: Rc<RefCell<Collected>>,
    /// Rank 0's other stdout lines of one write.
    other: Vec<u8>,
}

impl BenchSink {
    /// A sink forwarding to pirun's stdout/stderr (tagged with `[RANK] ` if `tag`) and
    /// collecting into `state`.
    pub fn new(tag: bool, state: Rc<RefCell<Collected>>) -> Self {
        BenchSink {
            out: Terminal::new(tag),
            state,
            other: Vec::new(),
        }
    }
}

impl OutputSink for BenchSink {
    fn write_lines(&mut self, rank: u32, stream: Stream, lines: &[u8]) {
        let mut state = self.state.borrow_mut();
        if rank != 0 || stream != Stream::Stdout {
            state
                .progress
                .suspend(|| self.out.write_lines(rank, stream, lines));
            return;
        }
        self.other.clear();
        for line in lines.split_inclusive(|&b| b == b'\n') {
            match std::str::from_utf8(line).ok().and_then(Line::parse) {
                None => self.other.extend_from_slice(line),
                Some(Ok(l)) => state.take(l),
                Some(Err(e)) => state
                    .bad_lines
                    .push(format!("{e}: {}", String::from_utf8_lossy(line).trim_end())),
            }
        }
        if !self.other.is_empty() {
            let (out, other) = (&mut self.out, &self.other);
            state
                .progress
                .suspend(|| out.write_lines(rank, stream, other));
        }
    }
}
