//! The rank side of `pirun bench`: `pirun --bench-rank VERSION PLAN...` is the program
//! every rank of the benchmark job runs (pirun's own executable, so there is nothing
//! to build), measuring with [`pirun_benches::suite`] and, on rank 0, writing the
//! report lines ([`pirun_benches::line`]) on stdout for the launcher.

use std::ffi::OsString;
use std::io::Write;

use pirun_benches::plan::Plan;
use pirun_benches::suite;

/// The hidden first argument that makes `pirun` a benchmark rank.
pub const RANK_FLAG: &str = "--bench-rank";

/// This pirun's version: the launcher passes its own, so that a different pirun on a
/// remote host is reported instead of misreading the plan.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs one rank; `args` are the words after [`RANK_FLAG`]. Returns the exit code:
/// 0, 1 if measuring failed (a peer died, ...), 2 for a bad command line.
pub fn main(args: &[OsString]) -> i32 {
    let host = std::env::var(pirun::contract::ENV_HOST).unwrap_or_else(|_| "?".into());
    let fail = |code, what: String| {
        eprintln!("pirun bench: rank on host {host}: {what}");
        code
    };
    let words: Result<Vec<String>, _> = args.iter().map(|a| a.clone().into_string()).collect();
    let Ok(words) = words else {
        return fail(2, "an argument is not UTF-8".into());
    };
    let Some((version, plan)) = words.split_first() else {
        return fail(2, format!("{RANK_FLAG} needs the launcher's version"));
    };
    if version != VERSION {
        return fail(
            2,
            format!(
                "this pirun ({}) is version {VERSION}, the launcher's is {version}; \
                 install the same pirun on every host",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        );
    }
    let plan = match Plan::from_args(plan.iter().cloned()) {
        Ok(p) => p,
        Err(e) => return fail(2, e),
    };
    let world = match pirun::init() {
        Ok(w) => w,
        Err(e) => return fail(1, e.to_string()),
    };
    if world.size() < 2 {
        return fail(
            2,
            "needs at least 2 ranks (pirun bench -n 2 or more)".into(),
        );
    }
    let rank = world.rank();
    let mut out = std::io::stdout().lock();
    let run = suite::run(&world, &plan, |line| {
        // Each line is flushed at once: the launcher shows progress from them.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    });
    match run {
        Ok(_) => 0,
        Err(e) => fail(1, format!("rank {rank}: {e}")),
    }
}
