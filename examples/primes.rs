//! The headline example: the primes in a range, found by trial division on every rank
//! and gathered, sorted, on rank 0.
//!
//! ```text
//! pirun -n 8 target/release/examples/primes [LO] HI [--count] [--split cost|block] [--verbose]
//! ```
//! The range is cut into contiguous blocks of equal estimated cost (testing a large
//! number costs more than a small one), so the blocks gathered in rank order are already
//! sorted. `--count` prints only how many primes there are (a sum reduction);
//! `--verbose` reports each rank's share and compute time on stderr.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use pirun::prelude::*;
use pirun_examples::{boundaries, is_prime, Split};

struct Args {
    lo: u64,
    hi: u64,
    count: bool,
    split: Split,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut nums = Vec::new();
    let mut a = Args {
        lo: 1,
        hi: 0,
        count: false,
        split: Split::Cost,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--count" => a.count = true,
            "--verbose" => a.verbose = true,
            "--split" => {
                a.split = match it.next().as_deref() {
                    Some("cost") => Split::Cost,
                    Some("block") => Split::Block,
                    other => return Err(format!("--split takes cost or block, not {other:?}")),
                }
            }
            n => nums.push(
                n.parse::<u64>()
                    .map_err(|_| format!("not a number: {n:?}"))?,
            ),
        }
    }
    match nums[..] {
        [hi] => a.hi = hi,
        [lo, hi] => (a.lo, a.hi) = (lo, hi),
        _ => return Err("usage: primes [LO] HI [--count] [--split cost|block] [--verbose]".into()),
    }
    Ok(a)
}

fn main() -> pirun::Result<ExitCode> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("primes: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let world = pirun::init()?;
    let (rank, size) = (world.rank(), world.size());

    // Rank 0 decides the split and broadcasts it, so every rank agrees exactly.
    let mut bounds = if rank == 0 {
        boundaries(args.lo, args.hi, size, args.split)
    } else {
        vec![0; size + 1]
    };
    world.bcast(0, &mut bounds)?;
    let (start, end) = (bounds[rank], bounds[rank + 1]);

    let t = Instant::now();
    let mine: Vec<u64> = (start..end).filter(|&n| is_prime(n)).collect();
    if args.verbose {
        eprintln!(
            "primes: rank {rank} tested {start}..{end} ({} numbers) in {:.3} s, found {}",
            end - start,
            t.elapsed().as_secs_f64(),
            mine.len()
        );
    }

    if args.count {
        if let Some(total) = world.reduce(0, &[mine.len() as u64], Sum)? {
            println!("{}", total[0]);
        }
    } else if let Some(all) = world.gatherv(0, &mine)? {
        // Blocks are contiguous and gathered in rank order: already ascending.
        debug_assert!(all.windows(2).all(|w| w[0] < w[1]));
        let mut out = BufWriter::new(std::io::stdout().lock());
        for p in all {
            if writeln!(out, "{p}").is_err() {
                break; // stdout closed (e.g. piped into head): nothing more to do
            }
        }
        let _ = out.flush();
    }
    Ok(ExitCode::SUCCESS)
}
