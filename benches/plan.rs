//! What one `pirun bench` run measures ([`Plan`]): which tests ([`Test`]: the ping-pong
//! and the collectives), which sizes, how many iterations and how much time, and how the
//! plan travels to the ranks as command-line words ([`Plan::to_args`],
//! [`Plan::from_args`]).

use crate::coll::{self, Op};
use crate::sizes::parse_sizes;

/// One benchmark: the ping-pong between two ranks or one collective operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Test {
    /// Ping-pong between rank 0 and a partner ([`crate::p2p`]).
    PingPong,
    /// A collective operation ([`crate::coll`]).
    Coll(Op),
}

impl Test {
    /// Every test, in the order they run.
    pub const ALL: [Test; 9] = [
        Test::PingPong,
        Test::Coll(Op::Barrier),
        Test::Coll(Op::Bcast),
        Test::Coll(Op::Reduce),
        Test::Coll(Op::Allreduce),
        Test::Coll(Op::Gather),
        Test::Coll(Op::Scatter),
        Test::Coll(Op::Allgather),
        Test::Coll(Op::Alltoall),
    ];

    /// The name on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Test::PingPong => "pingpong",
            Test::Coll(op) => op.name(),
        }
    }

    /// Parses [`Test::name`].
    pub fn from_name(s: &str) -> Option<Test> {
        Test::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Whether the test takes a message size (all but the barrier).
    pub fn sized(self) -> bool {
        self != Test::Coll(Op::Barrier)
    }

    /// The names of every test, comma-separated, for messages.
    pub fn names() -> String {
        Test::ALL.map(Test::name).join(", ")
    }
}

/// Default sizes: powers of 4 from 1 byte to 16 MiB.
pub fn default_sizes() -> Vec<usize> {
    (0..13).map(|k| 1usize << (2 * k)).collect()
}

/// Default time budget of a whole run, seconds.
pub const DEFAULT_TIME_LIMIT: f64 = 30.0;

/// Sizes the ping-pong adds when fewer than two are asked for: the Hockney fit needs two.
pub const FIT_SIZES: [usize; 2] = [8, 1 << 20];

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Tests in the order they run; the ping-pong always comes first (the model needs it).
    pub tests: Vec<Test>,
    /// Bytes per rank.
    pub sizes: Vec<usize>,
    /// Timed iterations for sizes up to 8 KiB (`None`: [`coll::DEFAULT_ITERS`]); larger
    /// sizes run proportionally fewer ([`coll::Config::iters_for`]).
    pub iters: Option<usize>,
    /// Seconds the whole run should take, shared out among the tests and sizes as they
    /// run ([`crate::suite`]); a size whose share is used up still runs its checked
    /// warm-up call and one timed call.
    pub time_limit: f64,
}

impl Plan {
    /// A plan for `tests` (empty: all of them) at `sizes` (empty: [`default_sizes`]).
    /// The ping-pong is added in front if missing: the model is fitted on it.
    pub fn new(tests: &[Test], sizes: &[usize], iters: Option<usize>, time_limit: f64) -> Plan {
        let mut all: Vec<Test> = Test::ALL
            .into_iter()
            .filter(|t| tests.is_empty() || tests.contains(t))
            .collect();
        if all.first() != Some(&Test::PingPong) {
            all.insert(0, Test::PingPong);
        }
        Plan {
            tests: all,
            sizes: if sizes.is_empty() {
                default_sizes()
            } else {
                sizes.to_vec()
            },
            iters,
            time_limit,
        }
    }

    /// The sizes `test` runs at: none for the barrier (reported as size 0); for the
    /// ping-pong the plan's sizes plus [`FIT_SIZES`] when fewer than two were asked for.
    pub fn sizes_of(&self, test: Test) -> Vec<usize> {
        match test {
            Test::Coll(Op::Barrier) => vec![0],
            Test::PingPong if self.sizes.len() < 2 => {
                let mut s = self.sizes.clone();
                s.extend(FIT_SIZES.iter().filter(|f| !self.sizes.contains(f)));
                s.sort_unstable();
                s
            }
            _ => self.sizes.clone(),
        }
    }

    /// The (test, size) measurements in the order they run: size by size, smallest first,
    /// every test at one size before the next (the barrier, which has no size, first).
    /// Small sizes rarely use their share of the time, so what they leave goes to the
    /// large sizes at the end, and a large size that overruns (a 16 MiB alltoall on a
    /// slow network) cannot starve another test's small sizes.
    pub fn schedule(&self) -> Vec<(Test, usize)> {
        let mut all: Vec<(Test, usize)> = self
            .tests
            .iter()
            .flat_map(|&t| self.sizes_of(t).into_iter().map(move |s| (t, s)))
            .collect();
        let order = |t: &Test| self.tests.iter().position(|x| x == t);
        all.sort_by_key(|(t, s)| (*s, order(t)));
        all
    }

    /// How many (test, size) measurements the plan makes.
    pub fn measurements(&self) -> usize {
        self.tests.iter().map(|&t| self.sizes_of(t).len()).sum()
    }

    /// The iteration settings of the collectives module for this plan.
    pub fn coll_config(&self) -> coll::Config {
        coll::Config {
            ops: self
                .tests
                .iter()
                .filter_map(|t| match t {
                    Test::Coll(op) => Some(*op),
                    Test::PingPong => None,
                })
                .collect(),
            sizes: self.sizes.clone(),
            iters: self.iters,
            warmup: None,
            time_limit: self.time_limit,
            batch: None,
            // The time limit wins over the iteration floor: one timed call is enough when
            // a 16 MiB alltoall takes seconds on a 100 Mbit/s network.
            min_iters: 1,
        }
    }

    /// The plan as command-line words, read back by [`Plan::from_args`].
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--tests".to_string(),
            self.tests
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(","),
            "--sizes".into(),
            self.sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            "--time-limit".into(),
            format!("{}", self.time_limit),
        ];
        if let Some(n) = self.iters {
            a.extend(["--iters".into(), n.to_string()]);
        }
        a
    }

    /// Parses the words of [`Plan::to_args`].
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Plan, String> {
        let (mut tests, mut sizes, mut iters, mut time_limit) =
            (Vec::new(), Vec::new(), None, DEFAULT_TIME_LIMIT);
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--tests" => {
                    tests = value
                        .split(',')
                        .map(|s| Test::from_name(s).ok_or(format!("unknown test {s:?}")))
                        .collect::<Result<_, _>>()?
                }
                "--sizes" => sizes = parse_sizes(&value)?,
                "--iters" => iters = Some(parse_count(&value, "--iters")?),
                "--time-limit" => time_limit = parse_secs(&value)?,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Plan::new(&tests, &sizes, iters, time_limit))
    }
}

/// A positive whole number for option `what`.
pub fn parse_count(s: &str, what: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("bad {what} {s:?}: expected a whole number above 0")),
    }
}

/// A positive number of seconds (fractions allowed) for `--time-limit`.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1e6 => Ok(x),
        _ => Err(format!(
            "bad --time-limit {s:?}: expected a number of seconds above 0"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pingpong_always_runs_first() {
        let p = Plan::new(
            &[Test::Coll(Op::Allreduce), Test::PingPong],
            &[64],
            None,
            5.0,
        );
        assert_eq!(p.tests, [Test::PingPong, Test::Coll(Op::Allreduce)]);
        let p = Plan::new(&[Test::Coll(Op::Bcast)], &[], None, 5.0);
        assert_eq!(p.tests, [Test::PingPong, Test::Coll(Op::Bcast)]);
        assert_eq!(p.sizes, default_sizes());
        assert_eq!(Plan::new(&[], &[1], None, 1.0).tests.len(), Test::ALL.len());
    }

    #[test]
    fn sizes_per_test() {
        let p = Plan::new(&[], &[64], None, 5.0);
        assert_eq!(p.sizes_of(Test::PingPong), [8, 64, 1 << 20]);
        assert_eq!(p.sizes_of(Test::Coll(Op::Barrier)), [0]);
        assert_eq!(p.sizes_of(Test::Coll(Op::Gather)), [64]);
        assert_eq!(p.measurements(), 3 + 1 + 7);
        let order = p.schedule();
        assert_eq!(order.len(), p.measurements());
        assert_eq!(order[0], (Test::Coll(Op::Barrier), 0));
        assert_eq!(order[1], (Test::PingPong, 8));
        assert_eq!(order[2], (Test::PingPong, 64));
        assert_eq!(order[3], (Test::Coll(Op::Bcast), 64));
        assert_eq!(order[9], (Test::Coll(Op::Alltoall), 64));
        assert_eq!(order[10], (Test::PingPong, 1 << 20));
        let d = default_sizes();
        assert_eq!((d[0], d[12], d.len()), (1, 16 << 20, 13));
    }

    #[test]
    fn the_plan_survives_the_command_line() {
        let p = Plan::new(
            &[Test::Coll(Op::Alltoall)],
            &[1, 1024, 3 << 20],
            Some(77),
            12.5,
        );
        assert_eq!(Plan::from_args(p.to_args()), Ok(p));
        let p = Plan::new(&[], &[], None, DEFAULT_TIME_LIMIT);
        assert_eq!(Plan::from_args(p.to_args()), Ok(p));
    }

    #[test]
    fn bad_words_are_refused() {
        let args = |a: &[&str]| Plan::from_args(a.iter().map(|s| s.to_string()));
        assert!(args(&["--tests", "allreduce,nope"])
            .unwrap_err()
            .contains("nope"));
        assert!(args(&["--iters", "0"]).unwrap_err().contains("--iters"));
        assert!(args(&["--time-limit", "-1"]).is_err());
        assert!(args(&["--sizes"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--frobnicate", "1"]).is_err());
    }
}
