//! The `pirun bench` command line: which words are the benchmark's (tests, `--sizes`,
//! `--iters`, `--time-limit`, `--csv`, `--svg`) and which are the launcher's (`-n`,
//! `--host`, `--hostfile`, `--oversubscribe`, `-x`, ...), in any order after `bench`;
//! the benchmark's are parsed here, the launcher's by [`Cli`] as for any job.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use pirun_benches::plan::{self, Plan, Test};
use pirun_benches::sizes;

use crate::cli::{Cli, VALUE_OPTIONS};

const AFTER_HELP: &str = "\
Every pirun option that places ranks works here too: -n N, --host LIST, --hostfile FILE,
--map-by, --npernode, --oversubscribe, -x VAR[=VALUE] (e.g. -x PIRUN_ALLREDUCE_ALGORITHM=ring),
--timeout, --launch-agent, --proxy-path, --preload-binary, --iface, -v.
With several hosts the ping-pong runs between rank 0 and the first rank on another host
(use --map-by node to spread the ranks). Remote hosts run the pirun found at this pirun's
path (or --proxy-path), like any program.

For each test and size: the slowest rank's time per call, min/median/max over the timed
iterations after a warm-up. The ping-pong gives the link's latency α and bandwidth 1/β
(Hockney fit); each collective is shown beside the α-β time of the algorithm that ran
(and of the best one, where another would be faster).

To run a program of your own named `bench`, write ./bench or its path.";

/// `pirun bench [OPTIONS] [TESTS...]`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pirun bench",
    about = "Measure point-to-point and collective performance across the ranks (OSU style)",
    after_help = AFTER_HELP
)]
pub struct BenchCli {
    /// Tests to run: pingpong, barrier, bcast, reduce, allreduce, gather, scatter,
    /// allgather, alltoall [default: all; the ping-pong always runs, the model needs it].
    #[arg(value_name = "TEST", value_parser = parse_test)]
    pub tests: Vec<Test>,

    /// Bytes per rank, comma-separated, K/M/G suffixes (binary) [default: 1,4,16,...,16M,
    /// powers of 4].
    #[arg(long, value_name = "LIST", value_parser = parse_sizes)]
    pub sizes: Option<Sizes>,

    /// Timed iterations for sizes up to 8 KiB; larger sizes run proportionally fewer
    /// (at least a fiftieth) [default: 1000].
    #[arg(long, value_name = "N", allow_hyphen_values = true,
          value_parser = |s: &str| plan::parse_count(s, "--iters"))]
    pub iters: Option<usize>,

    /// Seconds the whole run should take, shared out among tests and sizes; each size
    /// still runs at least 3 timed iterations.
    #[arg(long, value_name = "SECS", default_value_t = plan::DEFAULT_TIME_LIMIT,
          allow_hyphen_values = true, value_parser = plan::parse_secs)]
    pub time_limit: f64,

    /// Also write the results to FILE as CSV (on this host).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Also plot latency against size (log-log, one line per test) into FILE as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// The list of `--sizes` (a newtype: clap would take a bare `Vec` for repeated values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes(pub Vec<usize>);

fn parse_sizes(s: &str) -> Result<Sizes, String> {
    sizes::parse_sizes(s).map(Sizes)
}

fn parse_test(s: &str) -> Result<Test, String> {
    Test::from_name(s).ok_or(format!(
        "unknown test `{s}`; the tests are {}",
        Test::names()
    ))
}

/// Options of [`BenchCli`] that take a value.
const BENCH_VALUE_OPTIONS: &[&str] = &["--sizes", "--iters", "--time-limit", "--csv", "--svg"];

/// A parsed `pirun bench` command line.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// The benchmark's own options.
    pub bench: BenchCli,
    /// The launcher's options, with no program yet ([`Cli::command`] is empty).
    pub cli: Cli,
}

impl BenchArgs {
    /// What the ranks are to measure.
    pub fn plan(&self) -> Plan {
        let sizes = self.bench.sizes.as_ref().map_or(&[][..], |s| &s.0[..]);
        Plan::new(
            &self.bench.tests,
            sizes,
            self.bench.iters,
            self.bench.time_limit,
        )
    }
}

/// Parses `args` (pirun's whole command line) with `bench` at index `at`. Errors are
/// clap's (usage, exit status 2; `--help` prints the help and exits 0).
pub fn parse(args: &[OsString], at: usize) -> Result<BenchArgs, clap::Error> {
    let (launcher, bench) = split(&args[at + 1..]);
    let bench =
        BenchCli::try_parse_from(std::iter::once(OsString::from("pirun bench")).chain(bench))?;
    let words = args[..at]
        .iter()
        .cloned()
        .chain(launcher)
        .chain([OsString::from("PROGRAM")]);
    let mut cli = Cli::try_from_args(words)?;
    if let Some(first) = cli.command.first().filter(|&w| w != "PROGRAM") {
        // An option clap does not know starts PROGRAM in a job's command line.
        return Err(BenchCli::command().error(
            ErrorKind::UnknownArgument,
            format!(
                "unknown option `{}`: not an option of pirun bench nor of the launcher",
                first.to_string_lossy()
            ),
        ));
    }
    cli.command.clear();
    Ok(BenchArgs { bench, cli })
}

/// Sorts the words after `bench` into the launcher's options (with their values) and the
/// benchmark's words.
fn split(words: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let (mut launcher, mut bench) = (Vec::new(), Vec::new());
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let s = w.to_str().unwrap_or("");
        let name = s.split_once('=').map_or(s, |(n, _)| n);
        let is_bench = !s.starts_with('-')
            || BENCH_VALUE_OPTIONS.contains(&name)
            || matches!(s, "-h" | "--help");
        let to = if is_bench { &mut bench } else { &mut launcher };
        to.push(w.clone());
        let takes_value = !s.contains('=')
            && (BENCH_VALUE_OPTIONS.contains(&s) || s == "-np" || VALUE_OPTIONS.contains(&s));
        if takes_value {
            to.extend(it.next().cloned());
        }
    }
    (launcher, bench)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pirun_benches::coll::Op;

    fn args(a: &[&str]) -> Vec<OsString> {
        std::iter::once("pirun")
            .chain(a.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn parse_ok(a: &[&str]) -> BenchArgs {
        let v = args(a);
        let at = crate::cli::bench_position(&v).expect("a bench command line");
        parse(&v, at).unwrap_or_else(|e| panic!("{a:?}: {e}"))
    }

    #[test]
    fn launcher_and_bench_words_mix_in_any_order() {
        let b = parse_ok(&[
            "-v",
            "bench",
            "allreduce",
            "-n",
            "4",
            "--sizes",
            "1,8,1K",
            "--oversubscribe",
            "bcast",
            "-x",
            "PIRUN_BCAST_ALGORITHM=pipeline",
            "--csv=out.csv",
            "--iters",
            "50",
            "--time-limit",
            "2.5",
        ]);
        assert_eq!(
            b.bench.tests,
            [Test::Coll(Op::Allreduce), Test::Coll(Op::Bcast)]
        );
        assert_eq!(b.bench.sizes, Some(Sizes(vec![1, 8, 1024])));
        assert_eq!(b.bench.iters, Some(50));
        assert_eq!(b.bench.time_limit, 2.5);
        assert_eq!(b.bench.csv, Some(PathBuf::from("out.csv")));
        assert_eq!(b.cli.ranks, Some(4));
        assert!(b.cli.oversubscribe && b.cli.verbose);
        assert_eq!(b.cli.export, ["PIRUN_BCAST_ALGORITHM=pipeline"]);
        assert!(b.cli.command.is_empty());
        let plan = b.plan();
        assert_eq!(plan.tests[0], Test::PingPong);
        assert_eq!(plan.sizes, [1, 8, 1024]);
    }

    #[test]
    fn defaults() {
        let b = parse_ok(&["bench"]);
        assert!(b.bench.tests.is_empty() && b.bench.sizes.is_none());
        assert_eq!(b.bench.time_limit, plan::DEFAULT_TIME_LIMIT);
        assert_eq!(b.plan().tests.len(), Test::ALL.len());
        assert_eq!(b.cli.ranks, None);
    }

    #[test]
    fn bad_words_are_usage_errors() {
        for bad in [
            &["bench", "allreduse"][..],
            &["bench", "--sizes", "1,2X"],
            &["bench", "--sizes", "0"],
            &["bench", "--iters", "0"],
            &["bench", "--time-limit", "soon"],
            &["bench", "--frobnicate"],
            &["bench", "-n", "many"],
        ] {
            let v = args(bad);
            let e = parse(&v, 1).expect_err(&format!("{bad:?}"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let v = args(&["bench", "allreduse"]);
        let msg = parse(&v, 1).unwrap_err().to_string();
        assert!(
            msg.contains("unknown test `allreduse`") && msg.contains("alltoall"),
            "{msg}"
        );
    }
}
