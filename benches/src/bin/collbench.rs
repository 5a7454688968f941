//! Latency of the collective operations, OSU style (see `pirun_benches::coll`).
//!
//! ```text
//! collbench [--ops barrier,bcast,reduce,allreduce,gather,scatter,allgather,alltoall]
//!           [--sizes 8,1024,65536,1048576] [--iters N] [--warmup W] [--time-limit SECS]
//! ```
//! Rank 0 prints, per operation and size,
//! `coll op=<op> size=<bytes per rank> n=<ranks> iters=<N> median_us=<..> min_us=<..> max_us=<..>`
//! (the slowest rank's time per iteration; median, min and max over the iterations), or
//! `coll_error op=<op> size=<bytes> n=<ranks> <what>` when the result was wrong (then the
//! exit status is 1). The C twin `benches/compare/c/collbench.c` prints the same lines.

use std::io::Write;

use pirun_benches::coll::{self, Config};

fn main() -> pirun::Result<()> {
    let cfg = match Config::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("collbench: {e}\nusage: collbench {}", coll::USAGE);
            std::process::exit(2);
        }
    };
    let world = pirun::init()?;
    let (rank, n) = (world.rank(), world.size());
    let failed = coll::run(&world, &cfg, |op, size, out| {
        if rank != 0 {
            return;
        }
        match out {
            Ok(rec) => println!("{rec}"),
            Err(what) => println!("coll_error op={} size={size} n={n} {what}", op.name()),
        }
        let _ = std::io::stdout().flush();
    })?;
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
