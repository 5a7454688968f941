//! Where a job array's output goes on the launcher's side: pirun's own stdout and stderr
//! ([`Screen`]), the ordering window that puts stdout in index order ([`Window`]), and
//! `--output-dir` files ([`TaskFiles`]).
//!
//! Output comes back from every host over the proxies' connections; nothing relies on a
//! shared filesystem. Stdout is passed on byte for byte (so an ordered run prints exactly
//! what the sequential loop prints); stderr lines get an `[INDEX] ` prefix. What the
//! loop gathers in one turn is written at the end of that turn, in one write per stream.
//!
//! # Memory
//!
//! Ordered (the default): the earliest unfinished task's stdout is printed as it comes;
//! every other task's stdout is held until all earlier tasks have finished. Holding is
//! bounded three ways: a task that has more than [`HOLD_PER_TASK`] held is paused (its
//! host stops reading its stdout pipe, so it blocks once the pipe is full) until it
//! becomes the earliest; no task more than [`window_limit`] places after the earliest
//! unfinished one is started; and no new task starts while more than [`HOLD_TOTAL`]
//! bytes are held. Unordered, a task's stdout is held until it ends, or printed up to
//! its last newline once [`HOLD_PER_TASK`] has gathered. With `--output-dir` nothing is
//! held. Nothing is kept about tasks that have finished and been printed.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::progress::Progress;
use super::ArrayError;
use crate::output::write_all_fd;

/// Stdout held for one task before it is paused (ordered) or printed early (unordered).
pub const HOLD_PER_TASK: usize = 1 << 20;
/// Stdout held in all before no new task starts (ordered).
pub const HOLD_TOTAL: usize = 64 << 20;
/// Gathered output above which the screen is written at once, even while the progress
/// display limits how often it is redrawn.
pub const FLUSH_AT: usize = 256 * 1024;

/// How far past the earliest unfinished task new tasks may start (ordered).
pub fn window_limit(slots: usize) -> usize {
    (64 * slots).max(4096)
}

/// How a job array's output is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stdout in index order (the default).
    Ordered,
    /// Each task's stdout when it ends (`--unordered`).
    Unordered,
    /// `DIR/task.N.out` and `.err` (`--output-dir`, see [`TaskFiles`]).
    Files,
}

/// pirun's stdout and stderr, gathered during one turn of the event loop.
#[derive(Debug, Default)]
pub struct Screen {
    out: Vec<u8>,
    err: Vec<u8>,
    /// `--tag-output`: prefix stdout lines with `[INDEX] ` too.
    tag: bool,
    out_broken: bool,
    err_broken: bool,
}

impl Screen {
    /// A screen; with `tag`, stdout lines get the `[INDEX] ` prefix as well.
    pub fn new(tag: bool) -> Self {
        Screen {
            tag,
            ..Screen::default()
        }
    }

    /// A task's stdout bytes. `mid_line` tracks whether its printed stdout ends inside a
    /// line (for the prefix of `--tag-output`).
    pub fn stdout(&mut self, index: u64, mid_line: &mut bool, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if !self.tag {
            self.out.extend_from_slice(data);
            return;
        }
        for piece in data.split_inclusive(|&b| b == b'\n') {
            if !*mid_line {
                self.out.extend_from_slice(format!("[{index}] ").as_bytes());
            }
            self.out.extend_from_slice(piece);
            *mid_line = piece.last() != Some(&b'\n');
        }
    }

    /// A task's stdout is complete: with `--tag-output`, a last line without a newline
    /// gets one (so that the next task's prefix starts a line).
    pub fn end_stdout(&mut self, mid_line: &mut bool) {
        if self.tag && *mid_line {
            self.out.push(b'\n');
        }
        *mid_line = false;
    }

    /// Whole stderr lines of a task, each prefixed with `[INDEX] `.
    pub fn stderr(&mut self, index: u64, lines: &[u8]) {
        let prefix = format!("[{index}] ");
        for line in lines.split_inclusive(|&b| b == b'\n') {
            self.err.extend_from_slice(prefix.as_bytes());
            self.err.extend_from_slice(line);
        }
    }

    /// One line of pirun's own (`pirun: ...`) on stderr.
    pub fn report(&mut self, msg: &str) {
        self.err.extend_from_slice(b"pirun: ");
        self.err.extend_from_slice(msg.as_bytes());
        self.err.push(b'\n');
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.out.len() + self.err.len()
    }

    /// Whether writing to stdout failed (the reader went away: `pirun ... | head`).
    pub fn stdout_broken(&self) -> bool {
        self.out_broken
    }

    /// Writes what was gathered (with the progress display cleared meanwhile).
    pub fn flush(&mut self, progress: &Progress) {
        if self.out.is_empty() && self.err.is_empty() {
            return;
        }
        let Screen {
            out,
            err,
            out_broken,
            err_broken,
            ..
        } = self;
        progress.suspend(|| {
            for (fd, buf, broken) in [
                (libc::STDOUT_FILENO, &mut *out, &mut *out_broken),
                (libc::STDERR_FILENO, &mut *err, &mut *err_broken),
            ] {
                if !*broken && !buf.is_empty() && write_all_fd(fd, buf).is_err() {
                    *broken = true;
                }
            }
        });
        for buf in [&mut self.out, &mut self.err] {
            buf.clear();
            if buf.capacity() > 4 * FLUSH_AT {
                *buf = Vec::new();
            }
        }
    }
}

/// A task that finished while an earlier one had not: its stdout, waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its index (for `--tag-output`).
    pub index: u64,
    /// Its stdout, not printed yet.
    pub out: Vec<u8>,
    /// Its printed stdout ends inside a line.
    pub mid_line: bool,
}

/// The tasks from the earliest unfinished one on, in order: `None` while a task runs (or
/// waits for a retry), its output once it has finished.
#[derive(Debug, Default)]
pub struct Window {
    head: u64,
    slots: VecDeque<Option<Finished>>,
}

impl Window {
    /// The sequence number of the earliest task not printed yet (or of the next task).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Tasks in the window.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Task `head + len` has started.
    pub fn push(&mut self) -> u64 {
        self.slots.push_back(None);
        self.head + self.slots.len() as u64 - 1
    }

    /// Task `seq` has finished with this much stdout still to print.
    pub fn finish(&mut self, seq: u64, done: Finished) {
        if let Some(slot) = seq
            .checked_sub(self.head)
            .and_then(|i| self.slots.get_mut(i as usize))
        {
            *slot = Some(done);
        }
    }

    /// The earliest task, if it has finished: it leaves the window.
    pub fn pop_finished(&mut self) -> Option<Finished> {
        if !matches!(self.slots.front(), Some(Some(_))) {
            return None;
        }
        self.head += 1;
        self.slots.pop_front().flatten()
    }

    /// Empties the window at the end of a stopped run: the finished tasks' output in
    /// order (those that never finished are skipped).
    pub fn drain_finished(&mut self) -> Vec<Finished> {
        self.head += self.slots.len() as u64;
        self.slots.drain(..).flatten().collect()
    }
}

/// `--output-dir DIR`: `DIR/task.N.out` and `DIR/task.N.err` per task, on the launcher's
/// host. Each attempt of a task starts its files afresh; both exist once a task is over.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    dir: PathBuf,
}

impl TaskFiles {
    /// Files in `dir` (which must exist).
    pub fn new(dir: &Path) -> Self {
        TaskFiles {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, index: u64, stderr: bool) -> PathBuf {
        self.dir.join(format!(
            "task.{index}.{}",
            if stderr { "err" } else { "out" }
        ))
    }

    /// Appends `data` to a task's file; `started` says whether this attempt already
    /// created it (if not, it is created empty first).
    pub fn write(
        &self,
        index: u64,
        stderr: bool,
        started: &mut bool,
        data: &[u8],
    ) -> Result<(), ArrayError> {
        let path = self.path(index, stderr);
        let file = if *started {
            OpenOptions::new().append(true).open(&path)
        } else {
            File::create(&path)
        };
        *started = true;
        file.and_then(|mut f| f.write_all(data))
            .map_err(|source| ArrayError::OutputFile { path, source })
    }

    /// The task is over: creates whichever of its two files this attempt did not write.
    pub fn complete(&self, index: u64, started: [bool; 2]) -> Result<(), ArrayError> {
        for (stderr, done) in [(false, started[0]), (true, started[1])] {
            if !done {
                let path = self.path(index, stderr);
                File::create(&path).map_err(|source| ArrayError::OutputFile { path, source })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_releases_in_order() {
        let mut w = Window::default();
        for expect in 0..4 {
            assert_eq!(w.push(), expect);
        }
        let done = |i: u64| Finished {
            index: i,
            out: format!("{i}\n").into_bytes(),
            mid_line: false,
        };
        w.finish(2, done(2));
        w.finish(1, done(1));
        assert_eq!(w.pop_finished(), None, "task 0 runs");
        w.finish(0, done(0));
        let got: Vec<u64> = std::iter::from_fn(|| w.pop_finished().map(|f| f.index)).collect();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!((w.head(), w.len()), (3, 1));
        w.finish(99, done(99)); // outside: ignored
        assert_eq!(w.push(), 4);
        w.finish(4, done(4));
        assert_eq!(w.drain_finished(), [done(4)]);
        assert_eq!((w.head(), w.len()), (5, 0));
    }

    #[test]
    fn tags_and_prefixes() {
        let mut s = Screen::new(true);
        let mut mid = false;
        s.stdout(7, &mut mid, b"a\nb");
        s.stdout(7, &mut mid, b"c\n");
        s.stdout(7, &mut mid, b"d");
        s.end_stdout(&mut mid);
        assert_eq!(s.out, b"[7] a\n[7] bc\n[7] d\n");
        s.stderr(3, b"x\ny\n");
        s.report("hello");
        assert_eq!(s.err, b"[3] x\n[3] y\npirun: hello\n");
        let mut plain = Screen::new(false);
        plain.stdout(1, &mut mid, b"no newline");
        plain.end_stdout(&mut mid);
        assert_eq!(plain.out, b"no newline", "byte for byte");
    }

    #[test]
    fn files_per_attempt() {
        let dir = std::env::temp_dir().join(format!("pirun-taskfiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = TaskFiles::new(&dir);
        let mut started = false;
        f.write(5, false, &mut started, b"first ").unwrap();
        f.write(5, false, &mut started, b"attempt\n").unwrap();
        assert_eq!(
            std::fs::read(dir.join("task.5.out")).unwrap(),
            b"first attempt\n"
        );
        let mut again = false;
        f.write(5, false, &mut again, b"second\n").unwrap();
        f.complete(5, [true, false]).unwrap();
        assert_eq!(std::fs::read(dir.join("task.5.out")).unwrap(), b"second\n");
        assert_eq!(std::fs::read(dir.join("task.5.err")).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
