//! Errors that stop `pirun` before or while it starts a job, and the exit codes it uses.
//!
//! Once every rank runs, problems are no longer errors of this type: a failing rank ends
//! the job through the policy in [`crate::job`], which reports it in one line and exits
//! with the rank's code. Every variant here says what happened, names the rank, host or
//! file concerned, and says what to do about it.

use std::io;
use std::path::PathBuf;

/// Exit codes of `pirun` itself (a rank's own exit code is passed through otherwise).
pub mod exit_code {
    /// `pirun` could not start the job (system call failed, output directory unusable, …).
    pub const LAUNCH_FAILED: i32 = 1;
    /// The command line is wrong (also: more ranks than cores without `--oversubscribe`).
    pub const USAGE: i32 = 2;
    /// The job ran longer than `--timeout` (as `timeout(1)` does).
    pub const TIMEOUT: i32 = 124;
    /// The program exists but cannot be executed (as a shell does).
    pub const NOT_EXECUTABLE: i32 = 126;
    /// The program was not found (as a shell does).
    pub const NOT_FOUND: i32 = 127;
    /// Added to a signal number: a rank killed by signal `s`, or `pirun` ended by a
    /// forwarded signal `s`, exits with `128 + s`.
    pub const SIGNAL_BASE: i32 = 128;
}

/// Why `pirun` could not start (or had to abandon) a job.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `-n 0`.
    #[error("-n must be at least 1")]
    NoRanks,

    /// More ranks than cores without `--oversubscribe`.
    #[error(
        "{ranks} ranks requested but host {host} has only {cores} cores; \
         pass --oversubscribe to run more ranks than cores (each rank then gets less than a core)"
    )]
    Oversubscribed {
        /// Ranks requested.
        ranks: u32,
        /// Cores available.
        cores: usize,
        /// The host that is short of cores.
        host: String,
    },

    /// A `-x` argument that is not `VAR` or `VAR=VALUE`.
    #[error("bad -x argument `{spec}`: {reason}; use -x VAR (pass pirun's value) or -x VAR=VALUE")]
    BadExport {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The program could not be found.
    #[error("cannot find program `{program}` {where_}; check its name and PATH (exit code 127)")]
    ProgramNotFound {
        /// The program as given on the command line.
        program: String,
        /// Where it was looked for, e.g. `in PATH` or `at /abs/path`.
        where_: String,
    },

    /// The program exists but cannot be executed.
    #[error("program `{}` cannot be executed: {reason}; check its permissions (exit code 126)", path.display())]
    NotExecutable {
        /// The file that was found.
        path: PathBuf,
        /// Why it cannot be executed.
        reason: String,
    },

    /// `--wdir` is not a usable directory.
    #[error("working directory `{}` (--wdir) is not usable: {source}", path.display())]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// `--output-dir` or one of its files could not be created.
    #[error("cannot create `{}` (--output-dir): {source}; choose a writable directory", path.display())]
    OutputDir {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// Starting one rank failed (the ranks already started are ended).
    #[error("cannot start rank {rank} (`{}`) on host {host}: {source}", program.display())]
    Spawn {
        /// The rank that could not be started.
        rank: u32,
        /// The program.
        program: PathBuf,
        /// The host.
        host: String,
        /// The underlying error.
        source: io::Error,
    },

    /// A system call the launcher needs failed.
    #[error("{what}: {source}")]
    System {
        /// What the launcher was doing, naming the rank where there is one.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl LaunchError {
    /// Wraps an I/O error with a description of what the launcher was doing.
    pub fn system(what: impl Into<String>, source: io::Error) -> Self {
        LaunchError::System {
            what: what.into(),
            source,
        }
    }

    /// The exit code `pirun` ends with for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::NoRanks
            | LaunchError::Oversubscribed { .. }
            | LaunchError::BadExport { .. } => exit_code::USAGE,
            LaunchError::ProgramNotFound { .. } => exit_code::NOT_FOUND,
            LaunchError::NotExecutable { .. } => exit_code::NOT_EXECUTABLE,
            LaunchError::Spawn { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => exit_code::NOT_FOUND,
                io::ErrorKind::PermissionDenied => exit_code::NOT_EXECUTABLE,
                _ => exit_code::LAUNCH_FAILED,
            },
            LaunchError::WorkDir { .. }
            | LaunchError::OutputDir { .. }
            | LaunchError::System { .. } => exit_code::LAUNCH_FAILED,
        }
    }
}
