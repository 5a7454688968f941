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
    /// A host was lost while the job ran (its link or ssh connection failed), as ssh
    /// itself reports a failed connection.
    pub const HOST_LOST: i32 = 255;
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

    /// More ranks than the slots of a multi-host allocation without `--oversubscribe`
    /// (one host: [`LaunchError::Oversubscribed`]).
    #[error(
        "{ranks} ranks requested but the allocation has only {slots} slots on {hosts} hosts; \
         pass --oversubscribe to run more ranks than slots, or use more hosts"
    )]
    TooFewSlots {
        /// Ranks requested.
        ranks: u32,
        /// Slots in the allocation.
        slots: usize,
        /// Hosts in the allocation.
        hosts: usize,
    },

    /// A host would get more ranks than its `max_slots`, which `--oversubscribe` does not
    /// lift.
    #[error(
        "{ranks} ranks do not fit: host {host} would get {wanted} of them but its max_slots \
         is {max_slots}, a limit --oversubscribe does not lift; use fewer ranks, or raise \
         max_slots for {host} in the hostfile"
    )]
    AboveMaxSlots {
        /// Ranks requested.
        ranks: u32,
        /// The host that is full.
        host: String,
        /// Ranks the mapping would put there.
        wanted: usize,
        /// Its limit.
        max_slots: usize,
    },

    /// `--npernode 0`.
    #[error("--npernode must be at least 1")]
    NpernodeZero,

    /// `-n` above `--npernode` × hosts.
    #[error(
        "-n {ranks} with --npernode {npernode} needs {} hosts but the allocation has {hosts}; \
         use fewer ranks, a larger --npernode, or more hosts",
        (*ranks as usize).div_ceil((*npernode).max(1) as usize)
    )]
    NpernodeTooFew {
        /// Ranks requested.
        ranks: u32,
        /// Ranks per host.
        npernode: u32,
        /// Hosts in the allocation.
        hosts: usize,
    },

    /// `--npernode` above a host's slots without `--oversubscribe`.
    #[error(
        "--npernode {npernode} puts {ranks} ranks on host {host}, which has {slots} slots; \
         pass --oversubscribe to run more ranks than slots there, or lower --npernode"
    )]
    NpernodeOversubscribed {
        /// Ranks per host requested.
        npernode: u32,
        /// Ranks the host would get.
        ranks: usize,
        /// The host.
        host: String,
        /// Its slots.
        slots: usize,
    },

    /// An allocation without hosts (never made by [`crate::alloc::Allocation::resolve`]).
    #[error("the allocation has no hosts; name some with --host or --hostfile")]
    NoHosts,

    /// Both `--host` and `--hostfile`.
    #[error("--host and --hostfile were both given; use one of them")]
    HostAndHostfile,

    /// A hostfile (or PBS node file) could not be read.
    #[error("cannot read {what} `{}`: {source}; check the path", path.display())]
    HostfileRead {
        /// What the file is: `hostfile`, `PBS node file (PBS_NODEFILE)`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A line of a hostfile (or PBS node file) is wrong; the message says what to do.
    #[error("{}:{line}: {message}", path.display())]
    Hostfile {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A hostfile (or PBS node file) without a single host.
    #[error(
        "{what} `{}` lists no hosts; add one line per host, such as `pi1 slots=4` or `pi1:4`",
        path.display()
    )]
    EmptyHostfile {
        /// What the file is: `hostfile`, `PBS node file (PBS_NODEFILE)`.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },

    /// A `--host` list that cannot be read; the reason says what to do.
    #[error("bad --host {spec:?}: {reason}")]
    BadHostList {
        /// The list as given.
        spec: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A batch system's variable (Slurm, LSF) that cannot be read.
    #[error(
        "cannot use the batch system's allocation: {var}={value:?}: {reason}; fix or unset \
         {var}, or choose hosts with --host or --hostfile"
    )]
    BatchEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A system call the launcher needs failed.
    #[error("{what}: {source}")]
    System {
        /// What the launcher was doing, naming the rank where there is one.
        what: String,
        /// The underlying error.
        source: io::Error,
    },

    /// A multi-host problem: a remote host or its proxy, the program's machine, the
    /// network address (see [`crate::remote::HostError`]).
    #[error(transparent)]
    Host(#[from] crate::remote::HostError),
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
            | LaunchError::BadExport { .. }
            | LaunchError::TooFewSlots { .. }
            | LaunchError::AboveMaxSlots { .. }
            | LaunchError::NpernodeZero
            | LaunchError::NpernodeTooFew { .. }
            | LaunchError::NpernodeOversubscribed { .. }
            | LaunchError::NoHosts
            | LaunchError::HostAndHostfile
            | LaunchError::Hostfile { .. }
            | LaunchError::EmptyHostfile { .. }
            | LaunchError::BadHostList { .. } => exit_code::USAGE,
            LaunchError::ProgramNotFound { .. } => exit_code::NOT_FOUND,
            LaunchError::NotExecutable { .. } => exit_code::NOT_EXECUTABLE,
            LaunchError::Spawn { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => exit_code::NOT_FOUND,
                io::ErrorKind::PermissionDenied => exit_code::NOT_EXECUTABLE,
                _ => exit_code::LAUNCH_FAILED,
            },
            LaunchError::WorkDir { .. }
            | LaunchError::OutputDir { .. }
            | LaunchError::HostfileRead { .. }
            | LaunchError::BatchEnv { .. }
            | LaunchError::System { .. } => exit_code::LAUNCH_FAILED,
            LaunchError::Host(e) => e.exit_code(),
        }
    }
}
