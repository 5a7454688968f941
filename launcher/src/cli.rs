//! The `pirun` command line: option definitions (clap), the `-np` spelling, and parsing of
//! `-x` exports and durations. Nothing here starts processes or looks at the host.
//!
//! Multi-host options: `--hostfile`/`--host` (the allocation), `--map-by`/`--npernode`
//! (the mapping), `--launch-agent`/`--proxy-path` (how proxies are started; also
//! `PIRUN_LAUNCH_AGENT`/`PIRUN_PROXY_PATH`), `--preload-binary`, `--iface`. The hidden
//! `--proxy` runs `pirun` as the per-host proxy ([`crate::proxy`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::alloc::MapBy;
use crate::error::LaunchError;

/// Environment variable naming the launch agent when `--launch-agent` is not given.
pub const ENV_LAUNCH_AGENT: &str = "PIRUN_LAUNCH_AGENT";
/// Environment variable naming the remote pirun when `--proxy-path` is not given.
pub const ENV_PROXY_PATH: &str = "PIRUN_PROXY_PATH";

const AFTER_HELP: &str = "\
Every rank gets PIRUN_RANK, PIRUN_SIZE, PIRUN_LOCAL_RANK, PIRUN_LOCAL_SIZE, PIRUN_HOST,
PIRUN_HOST_CORES, PIRUN_JOB_ID, PIRUN_BIND_ADDR and PIRUN_CONTROL_FD in its environment.
Each rank runs in its own process group; signals pirun sends reach the rank's children too.

Exit status:
  0        every rank exited with 0
  N        the first rank that failed exited with N (128+S if it was killed by signal S)
  128+S    pirun received signal S (SIGINT, SIGTERM, SIGHUP), forwarded it and ended the job
  124      the job ran longer than --timeout
  126/127  the program is not executable (or built for another CPU) / was not found
  255      a host was lost while the job ran (link cut, ssh connection gone)
  1        pirun could not start the job;  2  bad command line

Hosts: --hostfile FILE or --host pi1:2,pi2:2, else a batch system's allocation (Slurm,
PBS/TORQUE, LSF), else this host. Remote hosts are reached with `ssh HOST pirun --proxy`
(see --launch-agent, --proxy-path); every host must have the program at the same path,
or pass --preload-binary.";

/// `pirun -n N [options] PROGRAM [ARGS...]`: start N copies of PROGRAM as the ranks of
/// one job.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pirun",
    version,
    about = "Start a program as the ranks of a message-passing job",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Number of ranks (default: one per core). `-np` is accepted too.
    #[arg(short = 'n', long = "np", value_name = "N")]
    pub ranks: Option<u32>,

    /// Allow more ranks than cores.
    #[arg(long)]
    pub oversubscribe: bool,

    /// When each rank binds itself to a core (at pirun::init): `auto` when its host runs
    /// more ranks than it has cores (contiguous blocks of ranks per core), `core` always,
    /// `none` never. Sets PIRUN_BIND for the ranks.
    #[arg(long, value_name = "WHEN", value_parser = ["auto", "core", "none"])]
    pub bind_to: Option<String>,

    /// Prefix every line of output with `[RANK] `.
    #[arg(long)]
    pub tag_output: bool,

    /// Write each rank's output to DIR/rank.N.out and DIR/rank.N.err instead.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// End the job after SECS seconds (exit status 124).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,

    /// Export an environment variable to the ranks: `VAR` passes pirun's value,
    /// `VAR=VALUE` sets it. Repeatable.
    #[arg(short = 'x', value_name = "VAR[=VALUE]")]
    pub export: Vec<OsString>,

    /// Working directory of the ranks (a relative PROGRAM path is taken from there).
    #[arg(long, value_name = "DIR")]
    pub wdir: Option<PathBuf>,

    /// Seconds between SIGTERM and SIGKILL when the job is ended.
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = parse_secs)]
    pub grace: Duration,

    /// Report what pirun does (spawns, fence, exits, signals) on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Run on the hosts of FILE (Open MPI or MPICH hostfile: `pi1 slots=4`, `pi2:4`).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,

    /// Run on these hosts: `pi1:4,pi2:4` (`HOST[:SLOTS]`, comma-separated).
    #[arg(long = "host", value_name = "LIST")]
    pub hosts: Option<String>,

    /// Spread ranks by slot (fill each host in turn) or by node (round-robin).
    #[arg(long, value_name = "slot|node", default_value = "slot")]
    pub map_by: MapBy,

    /// Put K ranks on every host.
    #[arg(long, value_name = "K")]
    pub npernode: Option<u32>,

    /// Command that runs a command on another host [default: ssh; env PIRUN_LAUNCH_AGENT].
    /// Split like a shell would: `--launch-agent 'ssh -F /tmp/cfg -p 2222'`.
    #[arg(long, value_name = "CMD")]
    pub launch_agent: Option<String>,

    /// The pirun to run on remote hosts [default: `pirun` on their PATH; env
    /// PIRUN_PROXY_PATH].
    #[arg(long, value_name = "PATH")]
    pub proxy_path: Option<String>,

    /// Send the program to every remote host (into a temporary directory, checked by
    /// SHA-256, removed at the end) instead of expecting it there.
    #[arg(long)]
    pub preload_binary: bool,

    /// Network the ranks use across hosts: an interface name (`eth0`) or a network
    /// (`10.77.0.0/24`) [default: the network ssh uses].
    #[arg(long, value_name = "NAME|CIDR")]
    pub iface: Option<String>,

    /// Job array: run the command once per index of SPEC (`2-1000`, `1-99:2`,
    /// `1,5,7-9`); `{}` in its arguments is the index.
    ///
    /// The index is also in PIRUN_ARRAY_INDEX, LSB_JOBINDEX, SLURM_ARRAY_TASK_ID and
    /// PBS_ARRAYID. Tasks go to free slots on every host (--hostfile, --host, else this
    /// host; -n SLOTS: how many run at once). Stdout is printed in index order, exactly
    /// as a sequential loop prints it; stderr as it comes, each line prefixed `[INDEX] `;
    /// a failed task is reported with its index, host and code. Exit status: 0, 1 if a
    /// task failed (after --retries), 128+S on signal S, 124 on --timeout, 255 if every
    /// host was lost. --output-dir DIR writes DIR/task.N.out and .err instead.
    #[arg(
        long,
        value_name = "SPEC",
        help_heading = "Job arrays",
        group = "array_mode"
    )]
    pub array: Option<crate::array::IndexSpec>,

    /// Job array: one task per line of FILE; `{}` is the whole line, `{1}`, `{2}`, … its
    /// fields.
    ///
    /// Fields are separated by whitespace; a field that does not exist is empty. Blank
    /// lines are skipped. PIRUN_ARRAY_INDEX (and the batch systems' names) is the line
    /// number, counting from 1. Otherwise as --array.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Job arrays",
        group = "array_mode"
    )]
    pub array_file: Option<PathBuf>,

    /// Job array: print each task's stdout when it ends instead of in index order.
    #[arg(long, help_heading = "Job arrays", requires = "array_mode")]
    pub unordered: bool,

    /// Job array: rerun a failed task up to K more times, on another host if there is one.
    #[arg(
        long,
        value_name = "K",
        default_value_t = 0,
        help_heading = "Job arrays",
        requires = "array_mode"
    )]
    pub retries: u32,

    /// Run as the per-host proxy of a multi-host job (started by pirun over ssh).
    #[arg(long, hide = true)]
    pub proxy: bool,

    /// The program to run, then its arguments.
    #[arg(
        value_name = "PROGRAM",
        required_unless_present = "proxy",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 1..
    )]
    pub command: Vec<OsString>,
}

/// Options that take their value as the next argument; [`normalize_args`] must skip
/// those values to find where PROGRAM starts.
pub(crate) const VALUE_OPTIONS: &[&str] = &[
    "-n",
    "--np",
    "--bind-to",
    "-x",
    "--output-dir",
    "--timeout",
    "--wdir",
    "--grace",
    "--hostfile",
    "--host",
    "--map-by",
    "--npernode",
    "--launch-agent",
    "--proxy-path",
    "--iface",
    "--array",
    "--array-file",
    "--retries",
];

impl Cli {
    /// Parses `std::env::args_os()`, printing usage and exiting on error (status 2).
    pub fn from_env() -> Self {
        Cli::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses the given arguments (the first is the program name).
    pub fn try_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        Cli::try_parse_from(normalize_args(args.into_iter().map(Into::into)))
    }

    /// Whether this is a job array (`--array` or `--array-file`).
    pub fn is_array(&self) -> bool {
        self.array.is_some() || self.array_file.is_some()
    }

    /// The launch agent: `--launch-agent`, else `PIRUN_LAUNCH_AGENT`, else `ssh`.
    pub fn launch_agent(&self) -> String {
        self.launch_agent
            .clone()
            .or_else(|| std::env::var(ENV_LAUNCH_AGENT).ok())
            .unwrap_or_else(|| "ssh".to_string())
    }

    /// The remote pirun: `--proxy-path`, else `PIRUN_PROXY_PATH`, else `None` (`pirun`
    /// on the remote PATH).
    pub fn proxy_path(&self) -> Option<String> {
        self.proxy_path
            .clone()
            .or_else(|| std::env::var(ENV_PROXY_PATH).ok())
    }

    /// The `-x` exports resolved to name/value pairs. `-x VAR` takes pirun's own value;
    /// if pirun has none, the variable is skipped with a warning on stderr.
    pub fn exports(&self) -> Result<Vec<(OsString, OsString)>, LaunchError> {
        let mut out = Vec::with_capacity(self.export.len() + 1);
        if let Some(when) = &self.bind_to {
            out.push(("PIRUN_BIND".into(), when.into()));
        }
        for spec in &self.export {
            match parse_export(spec)? {
                (name, Some(value)) => out.push((name, value)),
                (name, None) => match std::env::var_os(&name) {
                    Some(value) => out.push((name, value)),
                    None => eprintln!(
                        "pirun: warning: -x {}: not set in pirun's environment, not exported",
                        name.to_string_lossy()
                    ),
                },
            }
        }
        Ok(out)
    }
}

/// Rewrites MPI's `-np N` to `-n N` in pirun's own options (never in PROGRAM's
/// arguments), since clap's short options are single characters.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut iter = args.into_iter();
    out.extend(iter.next()); // pirun's own name
    let mut program_started = false;
    let mut skip_value = false;
    for arg in iter {
        if program_started {
            out.push(arg);
            continue;
        }
        if skip_value {
            skip_value = false;
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            program_started = true;
            out.push(arg);
            continue;
        };
        if s == "--" {
            program_started = true;
            out.push(arg);
        } else if s == "-np" {
            out.push("-n".into());
            skip_value = true;
        } else if let Some(value) = s.strip_prefix("-np=") {
            out.push("-n".into());
            out.push(value.into());
        } else if VALUE_OPTIONS.contains(&s) {
            skip_value = true;
            out.push(arg);
        } else {
            program_started = !s.starts_with('-') || s == "-";
            out.push(arg);
        }
    }
    out
}

/// The word that turns `pirun` into the benchmark tool when it stands where PROGRAM
/// would ([`crate::bench`]); a program of that name is run as `./bench` or by its path.
pub const BENCH_WORD: &str = "bench";

/// Where `bench` stands in `args` (the first is pirun's name) if it is the first word
/// that is neither an option nor an option's value, before any `--`: `pirun bench ...`
/// and `pirun -n 4 bench ...` are the benchmark, `pirun -- bench` runs a program.
pub fn bench_position(args: &[OsString]) -> Option<usize> {
    let mut skip_value = false;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let s = arg.to_str()?;
        if s == "--" || s == "-" {
            return None;
        }
        if s.starts_with('-') {
            skip_value = s == "-np" || VALUE_OPTIONS.contains(&s);
            continue;
        }
        return (s == BENCH_WORD).then_some(i);
    }
    None
}

/// Splits a `-x` argument into a name and an optional value.
fn parse_export(spec: &OsString) -> Result<(OsString, Option<OsString>), LaunchError> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = spec.as_bytes();
    let bad = |reason| LaunchError::BadExport {
        spec: spec.to_string_lossy().into_owned(),
        reason,
    };
    let (name, value) = match bytes.iter().position(|&b| b == b'=') {
        Some(eq) => (&bytes[..eq], Some(&bytes[eq + 1..])),
        None => (bytes, None),
    };
    if name.is_empty() {
        return Err(bad("the variable name is empty"));
    }
    if name.contains(&0) || value.is_some_and(|v| v.contains(&0)) {
        return Err(bad("it contains a NUL byte"));
    }
    Ok((
        OsString::from_vec(name.to_vec()),
        value.map(|v| OsString::from_vec(v.to_vec())),
    ))
}

/// Parses a positive number of seconds (fractions allowed).
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is not a duration between 0 and 1e9 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_from_args(std::iter::once("pirun").chain(args.iter().copied()))
            .expect("valid command line")
    }

    #[test]
    fn np_is_an_alias_of_n_but_only_before_the_program() {
        let cli = parse(&["-np", "4", "prog", "-np", "2"]);
        assert_eq!(cli.ranks, Some(4));
        assert_eq!(cli.command, ["prog", "-np", "2"]);
        assert_eq!(parse(&["-np=3", "prog"]).ranks, Some(3));
        assert_eq!(parse(&["--np", "5", "prog"]).ranks, Some(5));
    }

    #[test]
    fn program_arguments_that_look_like_options_go_to_the_program() {
        let cli = parse(&["-n", "2", "-x", "A=1", "sh", "-c", "echo -v --timeout"]);
        assert_eq!(cli.ranks, Some(2));
        assert!(!cli.verbose);
        assert_eq!(cli.command, ["sh", "-c", "echo -v --timeout"]);
    }

    #[test]
    fn all_options_are_parsed() {
        let cli = parse(&[
            "--oversubscribe",
            "--tag-output",
            "--output-dir",
            "out",
            "--timeout",
            "1.5",
            "-x",
            "A=b=c",
            "-x",
            "HOME",
            "--wdir",
            "/tmp",
            "--grace",
            "0.25",
            "--bind-to",
            "none",
            "-v",
            "prog",
        ]);
        assert!(cli.oversubscribe && cli.tag_output && cli.verbose);
        assert_eq!(cli.bind_to.as_deref(), Some("none"));
        let exported = cli.exports().expect("exports resolve");
        assert_eq!(exported[0], ("PIRUN_BIND".into(), "none".into()));
        assert_eq!(cli.output_dir, Some(PathBuf::from("out")));
        assert_eq!(cli.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(cli.grace, Duration::from_millis(250));
        assert_eq!(cli.wdir, Some(PathBuf::from("/tmp")));
        assert_eq!(cli.export, ["A=b=c", "HOME"]);
        assert_eq!(
            parse_export(&"A=b=c".into()).unwrap(),
            ("A".into(), Some("b=c".into()))
        );
        assert_eq!(parse_export(&"HOME".into()).unwrap(), ("HOME".into(), None));
        assert!(parse_export(&"=x".into()).is_err());
    }

    #[test]
    fn multi_host_options_are_parsed() {
        let cli = parse(&[
            "--hostfile",
            "hosts",
            "--map-by",
            "node",
            "--npernode",
            "2",
            "--launch-agent",
            "ssh -F /tmp/cfg",
            "--proxy-path",
            "/opt/pirun",
            "--preload-binary",
            "--iface",
            "10.77.0.0/24",
            "./primes",
            "--host",
        ]);
        assert_eq!(cli.hostfile, Some(PathBuf::from("hosts")));
        assert_eq!(cli.map_by, MapBy::Node);
        assert_eq!(cli.npernode, Some(2));
        assert_eq!(cli.launch_agent(), "ssh -F /tmp/cfg");
        assert_eq!(cli.proxy_path().as_deref(), Some("/opt/pirun"));
        assert!(cli.preload_binary && !cli.proxy);
        assert_eq!(cli.iface.as_deref(), Some("10.77.0.0/24"));
        assert_eq!(cli.command, ["./primes", "--host"]);
        assert_eq!(
            parse(&["--host", "pi1:2,pi2", "p"]).hosts.as_deref(),
            Some("pi1:2,pi2")
        );
        assert_eq!(parse(&["p"]).map_by, MapBy::Slot);
        assert!(Cli::try_from_args(["pirun", "--map-by", "core", "p"]).is_err());
        let proxy = Cli::try_from_args(["pirun", "--proxy"]).expect("--proxy needs no program");
        assert!(proxy.proxy && proxy.command.is_empty());
    }

    #[test]
    fn defaults_and_errors() {
        let cli = parse(&["prog"]);
        assert_eq!(cli.ranks, None);
        assert_eq!(cli.grace, Duration::from_secs(3));
        assert!(
            Cli::try_from_args(["pirun"]).is_err(),
            "PROGRAM is required"
        );
        assert!(Cli::try_from_args(["pirun", "--timeout", "soon", "p"]).is_err());
        assert!(Cli::try_from_args(["pirun", "--grace", "-1", "p"]).is_err());
    }

    #[test]
    fn bench_is_found_only_where_the_program_would_be() {
        let at = |a: &[&str]| {
            let args: Vec<OsString> = std::iter::once("pirun")
                .chain(a.iter().copied())
                .map(OsString::from)
                .collect();
            bench_position(&args)
        };
        assert_eq!(at(&["bench"]), Some(1));
        assert_eq!(at(&["bench", "-n", "4", "allreduce"]), Some(1));
        assert_eq!(at(&["-n", "4", "--oversubscribe", "bench"]), Some(4));
        assert_eq!(at(&["-np", "2", "bench"]), Some(3));
        assert_eq!(
            at(&["--host", "bench", "./prog"]),
            None,
            "a host named bench"
        );
        assert_eq!(at(&["-x", "A=1", "./bench"]), None);
        assert_eq!(at(&["--", "bench"]), None);
        assert_eq!(at(&["prog", "bench"]), None);
        assert_eq!(at(&[]), None);
    }

    #[test]
    fn value_options_list_matches_the_clap_definition() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            if arg.is_positional() || !arg.get_action().takes_values() {
                continue;
            }
            if let Some(short) = arg.get_short() {
                assert!(
                    VALUE_OPTIONS.contains(&format!("-{short}").as_str()),
                    "-{short}"
                );
            }
            if let Some(long) = arg.get_long() {
                assert!(
                    VALUE_OPTIONS.contains(&format!("--{long}").as_str()),
                    "--{long}"
                );
            }
        }
    }
}
