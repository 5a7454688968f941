//! `pirun bench`: an OSU-style benchmark of the cluster with nothing to build.
//!
//! ```text
//! pirun bench [-n N] [--host LIST | --hostfile FILE] [...] [TESTS...] [--sizes 1,8,1K,64K,1M,16M]
//!             [--iters N] [--time-limit SECS] [--csv FILE] [--svg FILE]
//! ```
//!
//! The launcher runs an ordinary job whose program is pirun itself with a hidden first
//! argument, `pirun --bench-rank VERSION PLAN...` ([`rank`]): the ranks measure the
//! ping-pong and the collectives ([`pirun_benches::suite`]) and rank 0 writes one report
//! line per event on its stdout. In bench mode the job's output sink ([`sink`]) takes
//! those lines out (rank 0 may be on another host: they come back like any output),
//! drives the progress display ([`progress`]) and collects the results; any other output
//! is forwarded as usual. When the job ends, the results, the Hockney fit of the
//! ping-pong and the α-β time of each algorithm ([`report`]) become the table on stdout
//! ([`table`]) and, if asked, a CSV ([`csv`]) and an SVG plot ([`svg`]), written here.
//!
//! Where `bench` may stand and how its words mix with the launcher's: [`args`].
//!
//! *Oversubscription is not implied:* `pirun bench -n 4` on two cores is refused like any
//! job, since such figures measure the scheduler more than the network; with
//! `--oversubscribe` the table says so in its header.

mod args;
mod csv;
mod progress;
pub mod rank;
mod report;
mod sink;
mod svg;
mod table;

use std::cell::RefCell;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{exit_code, LaunchError};
use crate::output::{report as say, write_all_fd};

use self::sink::{BenchSink, Collected};

/// Why `pirun bench` failed (a failing rank is reported by the job itself).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A launcher option that makes no sense for the benchmark.
    #[error("bench: {0}")]
    Usage(String),

    /// Fewer than two ranks.
    #[error(
        "bench needs at least 2 ranks, the allocation gives {0}; pass -n 2 or more \
         (with --oversubscribe on a single core)"
    )]
    TooFewRanks(usize),

    /// The hosts, the program, the allocation: as for any job.
    #[error(transparent)]
    Launch(#[from] LaunchError),

    /// pirun's own path is unknown (needed as the ranks' program).
    #[error("bench: cannot find pirun's own executable to run as the ranks: {0}")]
    OwnPath(io::Error),

    /// The job ended without rank 0 reporting the end.
    #[error(
        "bench: rank 0 stopped reporting after {done} of {total} measurements \
         (see its output above)"
    )]
    Incomplete {
        /// Measurements reported.
        done: usize,
        /// Measurements planned (0: not even the set-up line came).
        total: usize,
    },

    /// Report lines that do not parse.
    #[error(
        "bench: rank 0 sent {count} report line(s) this pirun does not understand, the \
         first: {first}; is the same pirun installed on every host?"
    )]
    Protocol {
        /// How many.
        count: usize,
        /// The first, with what is wrong with it.
        first: String,
    },

    /// Measurements whose result check failed.
    #[error("bench: {0} measurement(s) gave wrong results (listed after the table)")]
    WrongResults(usize),

    /// The CSV or SVG file cannot be written.
    #[error("bench: cannot write {what} `{}`: {reason}", path.display())]
    Write {
        /// `--csv` or `--svg`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl BenchError {
    /// pirun's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            BenchError::Usage(_) | BenchError::TooFewRanks(_) => exit_code::USAGE,
            BenchError::Launch(e) => e.exit_code(),
            _ => exit_code::LAUNCH_FAILED,
        }
    }
}

/// Runs `pirun bench` (`args`: pirun's command line, `bench` at index `at`); returns the
/// exit code. Bad arguments print clap's usage message and exit 2.
pub fn main(args: &[OsString], at: usize) -> i32 {
    let parsed = args::parse(args, at).unwrap_or_else(|e| e.exit());
    match run(parsed) {
        Ok(code) => code,
        Err(errors) => {
            for e in &errors {
                say(&e.to_string());
            }
            errors
                .first()
                .map_or(exit_code::LAUNCH_FAILED, BenchError::exit_code)
        }
    }
}

/// The job, then the report. `Ok(code)` when the job itself failed (it said why).
fn run(a: args::BenchArgs) -> Result<i32, Vec<BenchError>> {
    let plan = a.plan();
    let args::BenchArgs { bench, mut cli } = a;
    if cli.is_array() {
        return Err(vec![BenchError::Usage(
            "--array and --array-file do not go with bench".into(),
        )]);
    }
    if cli.output_dir.is_some() {
        return Err(vec![BenchError::Usage(
            "--output-dir does not go with bench (rank 0 reports through its output)".into(),
        )]);
    }
    let program = program(&cli).map_err(|e| vec![e])?;
    cli.command = [program, rank::RANK_FLAG.into(), rank::VERSION.into()]
        .into_iter()
        .chain(plan.to_args().into_iter().map(OsString::from))
        .collect();

    let state = Rc::new(RefCell::new(Collected::new(progress::Progress::new(
        plan.measurements(),
    ))));
    let sink = BenchSink::new(cli.tag_output, Rc::clone(&state));
    let job = crate::job::run_with_sink(&cli, Box::new(sink));
    let mut c = state.borrow_mut();
    c.progress.finish();
    let code = job.map_err(|e| vec![e.into()])?;

    let report = report::build(&c);
    let mut errors = Vec::new();
    if !report.rows.is_empty() || !report.failures.is_empty() || !report.skipped.is_empty() {
        let _ = write_all_fd(libc::STDOUT_FILENO, table::render(&report).as_bytes());
        if let Some(path) = &bench.csv {
            if let Err(reason) = write(path, &csv::render(&report)) {
                errors.push(BenchError::Write {
                    what: "--csv",
                    path: path.clone(),
                    reason,
                });
            }
        }
        if let Some(path) = &bench.svg {
            if let Err(reason) = svg::render(&report).and_then(|s| write(path, &s)) {
                errors.push(BenchError::Write {
                    what: "--svg",
                    path: path.clone(),
                    reason,
                });
            }
        }
    }
    if code != 0 {
        for e in &errors {
            say(&e.to_string());
        }
        say(&format!(
            "bench: stopped after {} of {} measurements",
            c.finished(),
            plan.measurements()
        ));
        return Ok(code);
    }
    if let Some(first) = c.bad_lines.first() {
        errors.insert(
            0,
            BenchError::Protocol {
                count: c.bad_lines.len(),
                first: first.clone(),
            },
        );
    }
    if !c.done {
        errors.insert(
            0,
            BenchError::Incomplete {
                done: c.finished(),
                total: c.setup.as_ref().map_or(0, |s| s.measurements),
            },
        );
    }
    if !c.failures.is_empty() {
        errors.push(BenchError::WrongResults(c.failures.len()));
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(errors)
    }
}

/// The ranks' program: this pirun, or `--proxy-path` (`PIRUN_PROXY_PATH`) when some
/// ranks run on other hosts, which start that pirun as their proxy already. Also checks
/// there are at least two ranks.
fn program(cli: &crate::cli::Cli) -> Result<OsString, BenchError> {
    let (alloc, placements) = crate::job::allocate(cli)?;
    if placements.len() < 2 {
        return Err(BenchError::TooFewRanks(placements.len()));
    }
    let remote = placements.iter().any(|p| !alloc.hosts[p.host].is_local());
    match cli.proxy_path() {
        Some(path) if remote => Ok(path.into()),
        _ => std::env::current_exe()
            .map(PathBuf::into_os_string)
            .map_err(BenchError::OwnPath),
    }
}

/// Writes `text` to `path`, replacing it.
fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| e.to_string())
}
