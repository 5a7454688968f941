//! `pirun --array`: job arrays without a batch system, a queue or a shared filesystem.
//!
//! ```text
//! pirun --array 2-1000 [--hostfile hosts | --host ... | -n SLOTS] -- python3 check_prime.py {}
//! pirun --array-file inputs.txt -- ./convert {1} out/{2}.png
//! ```
//! runs the command once per index (or line), `{}` and `{N}` replaced ([`template`]), the
//! index in the environment ([`runner::INDEX_VARS`]), on every slot of every host at once.
//!
//! # How it works
//!
//! The hosts are the same as a multi-host job's ([`crate::alloc`]: `--hostfile`,
//! `--host`, a batch allocation, else this host; `-n` is the number of tasks running at
//! once, spread like ranks). The launcher's own host runs its tasks in the launcher's
//! process; every other host gets one proxy over ssh ([`crate::remote::RemoteHost`],
//! `pirun --proxy`), which checks the program exactly as for a job of ranks and then runs
//! tasks on order. Never one ssh per task: a task costs one [`TaskOrder::Start`] down and
//! one [`TaskEvent::Exited`] (with its stdout) up, both batched per turn of the loops
//! ([`protocol`]).
//!
//! Both sides use one [`TaskRunner`] ([`runner`]), built on the process code of ranks
//! ([`crate::host`]: process groups, `PDEATHSIG`, the guard, line splitting). The policy
//! is the launcher's ([`run`]): it hands the next task to whichever host has a free slot
//! (so a slow board gets fewer tasks), reruns failed tasks (`--retries`, preferring
//! another host) and those of a lost host (not counted as retries), stops everything on
//! SIGINT/SIGTERM/SIGHUP or `--timeout`, and puts the output in order ([`output`]). A progress line is shown while stderr is a terminal
//! ([`progress`]); a summary line ends every run.
//!
//! Memory stays flat however long the array is: tasks are read lazily from the spec or
//! the file ([`source`]), and only tasks that run, wait for a retry, or wait in the
//! ordering window (bounded, see [`output`]) have any state.

mod output;
mod progress;
mod protocol;
mod proxy_side;
mod run;
mod runner;
mod source;
mod spec;
mod template;

use std::io;
use std::path::PathBuf;

pub use protocol::{ArraySpec, TaskEvent, TaskOrder};
pub use proxy_side::{proxy_order, proxy_runner, proxy_turn};
pub use runner::{TaskRunner, TaskToken};
pub use spec::IndexSpec;

use crate::cli::Cli;
use crate::error::{exit_code, LaunchError};
use crate::remote::HostError;

/// Why a job array could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ArrayError {
    /// `--array-file` cannot be read.
    #[error("cannot read --array-file `{}`: {source}; check the path", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// `--array-file` has a line too long to be a task.
    #[error(
        "--array-file `{}`: line {line} is longer than {} bytes; one line is one task's \
         arguments",
        path.display(),
        source::MAX_LINE
    )]
    LongLine {
        /// The file.
        path: PathBuf,
        /// The line's number.
        line: u64,
    },

    /// `--array-file` has no task in it.
    #[error("--array-file `{}` has no tasks: it is empty or every line is blank", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// The program name contains `{}` or `{N}`.
    #[error(
        "the program `{program}` contains a placeholder; {{}} and {{N}} are replaced in the \
         arguments only (to pick the program per task, run it through a shell: \
         -- sh -c '{{}}')"
    )]
    PlaceholderInProgram {
        /// The program as given.
        program: String,
    },

    /// An `--output-dir` file cannot be written.
    #[error("cannot write `{}` (--output-dir): {source}", path.display())]
    OutputFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The hosts, the program, the command line: as for a job of ranks.
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

impl From<HostError> for ArrayError {
    fn from(e: HostError) -> Self {
        ArrayError::Launch(e.into())
    }
}

impl ArrayError {
    /// pirun's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ArrayError::Launch(e) => e.exit_code(),
            ArrayError::PlaceholderInProgram { .. } => exit_code::USAGE,
            ArrayError::ReadFile { .. }
            | ArrayError::LongLine { .. }
            | ArrayError::EmptyFile { .. }
            | ArrayError::OutputFile { .. } => exit_code::LAUNCH_FAILED,
        }
    }
}

/// Runs the job array the command line describes; returns pirun's exit code (an error
/// is reported on stderr first).
pub fn main(cli: &Cli) -> i32 {
    match run::run(cli) {
        Ok(code) => code,
        Err(e) => {
            crate::output::report(&e.to_string());
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_from_args(std::iter::once("pirun").chain(args.iter().copied()))
    }

    #[test]
    fn array_options_are_parsed() {
        let cli = parse(&[
            "--array", "2-1000:2", "-n", "4", "--", "python3", "x.py", "{}",
        ])
        .unwrap();
        assert!(cli.is_array());
        assert_eq!(cli.array.as_ref().unwrap().count(), 500);
        assert_eq!(cli.ranks, Some(4));
        assert_eq!(cli.command, ["python3", "x.py", "{}"]);
        assert_eq!(cli.retries, 0);
        assert!(!cli.unordered);
        let cli = parse(&[
            "--array-file",
            "in.txt",
            "--unordered",
            "--retries",
            "2",
            "echo",
            "{1}",
            "--retries",
        ])
        .unwrap();
        assert_eq!(
            cli.array_file.as_deref(),
            Some(std::path::Path::new("in.txt"))
        );
        assert!(cli.unordered && cli.retries == 2);
        assert_eq!(
            cli.command,
            ["echo", "{1}", "--retries"],
            "the program's own"
        );
        assert!(!parse(&["true"]).unwrap().is_array());
    }

    #[test]
    fn array_options_misused_are_usage_errors() {
        for bad in [
            &["--array", "1", "--array-file", "f", "true"][..],
            &["--unordered", "true"],
            &["--retries", "1", "true"],
            &["--array", "3-1", "true"],
            &["--array", "1", "--retries", "-1", "true"],
        ] {
            let e = parse(bad).map(|_| ()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }
}
