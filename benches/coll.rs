//! OSU-style latency of the collective operations, used by the `collbench` binary and by
//! `pirun bench` (through [`crate::suite`]).
//!
//! For each operation and size: `warmup` untimed calls, then `iters` timed calls in
//! batches of `batch` back-to-back calls (IMB style; `--batch 1` is OSU's one call per
//! sample). Every rank times its own batch; after each batch (outside the timed region) a
//! max-allreduce of `[this rank's time per call, time since the size started]` both
//! synchronises the ranks (like OSU's barrier between iterations) and gives every rank the
//! **slowest rank's** time per call, and the same elapsed time, so all ranks agree on when
//! the time limit ends the loop. The figures are the median, minimum and maximum of those
//! per-batch maxima. Batches (default: 20 per size) amortise the skew a separator leaves
//! between ranks: with one call per sample, an 8-byte broadcast or reduce whose non-root
//! ranks enter one message latency late (or early) measures as a bare send (~2 µs).
//!
//! That separator is a dissemination exchange written with point-to-point `sendrecv`
//! (round `k`: send to `rank + 2^k`, receive from `rank - 2^k`, keep the maximum), the same
//! in the C twin, not the library's own allreduce: every rank leaves it within about one
//! message latency of the others, and the skew it leaves between ranks (which flatters or
//! penalises rooted operations) does not depend on the library under test.
//!
//! The barrier takes no size: it is measured once per run and reported as `size=0`.
//!
//! The first warm-up call runs with the output buffers poisoned and every rank checks its
//! result (a Sum of f64 for the reductions, a byte pattern naming sender, block and offset
//! for the others); a wrong answer gives no figure. (It always runs, even with
//! `--warmup 0`; at 16 MiB on a slow network it saves a whole call over checking after
//! the timed loop.)
//!
//! Sizes are bytes per rank: the broadcast message, the reduction vector (`size / 8` f64,
//! at least one), each rank's block of gather/scatter/allgather, and each rank's block
//! **per destination** of alltoall (OSU's convention: a rank sends `n * size` bytes).
//! The root is rank 0.

use std::fmt;
use std::time::Instant;

use pirun::op::Sum;
use pirun::select::Placement;
use pirun::{Collectives, Communicator};

use crate::timing::{timed_loop, Plan};

/// A measured collective operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Barrier,
    Bcast,
    Reduce,
    Allreduce,
    Gather,
    Scatter,
    Allgather,
    Alltoall,
}

impl Op {
    /// Every operation, in the default order.
    pub const ALL: &'static [Op] = &[
        Op::Barrier,
        Op::Bcast,
        Op::Reduce,
        Op::Allreduce,
        Op::Gather,
        Op::Scatter,
        Op::Allgather,
        Op::Alltoall,
    ];

    /// The name used on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Op::Barrier => "barrier",
            Op::Bcast => "bcast",
            Op::Reduce => "reduce",
            Op::Allreduce => "allreduce",
            Op::Gather => "gather",
            Op::Scatter => "scatter",
            Op::Allgather => "allgather",
            Op::Alltoall => "alltoall",
        }
    }

    /// Parses [`Op::name`].
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|o| o.name() == s)
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    pub ops: Vec<Op>,
    /// Bytes per rank.
    pub sizes: Vec<usize>,
    /// Timed iterations for sizes up to 8 KiB; `None`: [`DEFAULT_ITERS`]. Larger sizes run
    /// proportionally fewer (see [`Config::iters_for`]).
    pub iters: Option<usize>,
    /// Untimed iterations per size; `None`: a tenth of the timed ones, at least 2. The
    /// first, checked call runs in any case.
    pub warmup: Option<usize>,
    /// Seconds per operation, shared equally among the sizes: a size stops warming up
    /// after half its share and stops timing after its share (at least `min_iters`
    /// timed iterations).
    pub time_limit: f64,
    /// Calls timed back to back between two separators; `None`: [`Config::batch_for`].
    pub batch: Option<usize>,
    /// Timed iterations a size runs even when its time share is used up (`collbench`:
    /// [`MIN_ITERS`]; `pirun bench`: 1, so the time limit holds on slow networks).
    pub min_iters: usize,
}

/// Timed iterations for small sizes when `--iters` is not given.
pub const DEFAULT_ITERS: usize = 1000;
/// Timed iterations a size gets even when its time share has run out.
pub const MIN_ITERS: usize = 3;
/// Default `--time-limit`, seconds per operation.
pub const DEFAULT_TIME_LIMIT: f64 = 4.0;

impl Default for Config {
    fn default() -> Self {
        Config {
            ops: Op::ALL.to_vec(),
            sizes: vec![8, 1024, 65536, 1 << 20],
            iters: None,
            warmup: None,
            time_limit: DEFAULT_TIME_LIMIT,
            batch: None,
            min_iters: MIN_ITERS,
        }
    }
}

/// Usage text of [`Config::parse`]'s arguments.
pub const USAGE: &str = "[--ops barrier,bcast,reduce,allreduce,gather,scatter,allgather,alltoall] \
[--sizes 8,1024,65536,1048576] [--iters N] [--warmup W] [--time-limit SECS] [--batch B]";

impl Config {
    /// Parses the command-line arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut c = Config::default();
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--ops" => {
                    c.ops = value()?
                        .split(',')
                        .map(|s| Op::from_name(s.trim()).ok_or(format!("unknown op {s:?}")))
                        .collect::<Result<_, _>>()?
                }
                "--sizes" => {
                    c.sizes = value()?
                        .split(',')
                        .map(|s| s.trim().parse().map_err(|_| format!("bad size {s:?}")))
                        .collect::<Result<_, _>>()?
                }
                "--iters" => c.iters = Some(value()?.parse().map_err(|_| "bad --iters")?),
                "--warmup" => c.warmup = Some(value()?.parse().map_err(|_| "bad --warmup")?),
                "--time-limit" => {
                    c.time_limit = value()?.parse().map_err(|_| "bad --time-limit")?
                }
                "--batch" => c.batch = Some(value()?.parse().map_err(|_| "bad --batch")?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if c.iters == Some(0) || c.batch == Some(0) || c.time_limit.is_nan() || c.time_limit <= 0.0
        {
            return Err("--iters and --time-limit must be positive".into());
        }
        Ok(c)
    }

    /// Timed iterations for `size` bytes: `N` up to 8 KiB, then `N * 8 KiB / size`, but at
    /// least `max(N / 50, MIN_ITERS)` (N = 1000: 125 at 64 KiB, 20 at 1 MiB).
    pub fn iters_for(&self, size: usize) -> usize {
        let n = self.iters.unwrap_or(DEFAULT_ITERS);
        let scaled = n * 8192 / size.max(8192);
        scaled.max((n / 50).max(MIN_ITERS)).min(n)
    }

    /// Calls per timed batch: `--batch`, or a twentieth of the timed iterations (1000
    /// iterations: 20 batches of 50; 20 iterations: one call per batch). [`measure`]
    /// lowers it so that a batch of warm-up-speed calls takes at most a tenth of
    /// [`Config::slot_secs`].
    pub fn batch_for(&self, size: usize) -> usize {
        self.batch
            .unwrap_or(self.iters_for(size).div_ceil(20))
            .max(1)
    }

    /// Untimed iterations for `size` bytes.
    pub fn warmup_for(&self, size: usize) -> usize {
        self.warmup.unwrap_or((self.iters_for(size) / 10).max(2))
    }

    /// The timed loop of `size` bytes within `slot` seconds; `per_unit` calls make one
    /// reported unit (2 for a round trip reported one way).
    pub fn plan(&self, size: usize, slot: f64, per_unit: f64) -> Plan {
        Plan {
            warmup: self.warmup_for(size),
            iters: self.iters_for(size),
            batch: self.batch_for(size),
            min_iters: self.min_iters,
            slot,
            per_unit,
        }
    }

    /// Seconds one (operation, size) may take.
    pub fn slot_secs(&self) -> f64 {
        self.time_limit / self.sizes.len().max(1) as f64
    }
}

/// One (operation, size) result.
#[derive(Clone, Debug)]
pub struct Record {
    pub op: Op,
    pub size: usize,
    pub ranks: usize,
    /// Timed iterations actually run (fewer than asked when the time limit hit).
    pub iters: usize,
    pub median_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

impl fmt::Display for Record {
    /// `coll op=<op> size=<bytes per rank> n=<ranks> iters=<N> median_us=.. min_us=.. max_us=..`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coll op={} size={} n={} iters={} median_us={:.3} min_us={:.3} max_us={:.3}",
            self.op.name(),
            self.size,
            self.ranks,
            self.iters,
            self.median_us,
            self.min_us,
            self.max_us
        )
    }
}

/// The outcome of one (operation, size): figures, or the check that failed (the same on
/// every rank).
pub type Outcome = Result<Record, String>;

/// Byte `k` of block `j` sent by rank `r`.
fn pat(r: usize, j: usize, k: usize) -> u8 {
    (r.wrapping_mul(31) ^ j.wrapping_mul(7)).wrapping_add(k) as u8
}

/// f64 element `i` contributed by rank `r`: small integers, so the Sum is exact.
fn val(r: usize, i: usize) -> f64 {
    ((r + 1) * (i % 7 + 1)) as f64
}

/// Buffers of one (operation, size) on one rank.
struct Bufs {
    send: Vec<u8>,
    recv: Vec<u8>,
    fsend: Vec<f64>,
    frecv: Vec<f64>,
}

impl Bufs {
    fn new(op: Op, size: usize, rank: usize, n: usize) -> Bufs {
        let fill = |blocks: usize, r: usize| -> Vec<u8> {
            (0..blocks * size)
                .map(|x| pat(r, x / size, x % size))
                .collect()
        };
        let count = (size / 8).max(1);
        let mut b = Bufs {
            send: Vec::new(),
            recv: Vec::new(),
            fsend: Vec::new(),
            frecv: Vec::new(),
        };
        match op {
            Op::Barrier => {}
            Op::Bcast => {
                b.send = if rank == 0 { fill(1, 0) } else { vec![0; size] };
            }
            Op::Reduce | Op::Allreduce => {
                b.fsend = (0..count).map(|i| val(rank, i)).collect();
                b.frecv = vec![0.0; count];
            }
            Op::Gather => {
                b.send = fill(1, rank);
                b.recv = vec![0; if rank == 0 { n * size } else { 0 }];
            }
            Op::Scatter => {
                b.send = if rank == 0 { fill(n, 0) } else { Vec::new() };
                b.recv = vec![0; size];
            }
            Op::Allgather => {
                b.send = fill(1, rank);
                b.recv = vec![0; n * size];
            }
            Op::Alltoall => {
                b.send = fill(n, rank);
                b.recv = vec![0; n * size];
            }
        }
        b
    }

    /// One call of `op`.
    fn call(&mut self, world: &Communicator, op: Op) -> pirun::Result<()> {
        let root = world.rank() == 0;
        match op {
            Op::Barrier => world.barrier(),
            Op::Bcast => world.bcast(0, &mut self.send),
            Op::Reduce => {
                let recv = root.then_some(&mut self.frecv[..]);
                world.reduce_into(0, &self.fsend, recv, Sum)
            }
            Op::Allreduce => world.allreduce_into(&self.fsend, &mut self.frecv, Sum),
            Op::Gather => {
                let recv = root.then_some(&mut self.recv[..]);
                world.gather_into(0, &self.send, recv)
            }
            Op::Scatter => {
                let send = root.then_some(&self.send[..]);
                world.scatter_into(0, send, &mut self.recv)
            }
            Op::Allgather => world.allgather_into(&self.send, &mut self.recv),
            Op::Alltoall => world.alltoall_into(&self.send, &mut self.recv),
        }
    }

    /// Overwrites every output with a value no correct call leaves there.
    fn poison(&mut self, op: Op, rank: usize) {
        if op == Op::Bcast && rank != 0 {
            self.send.fill(0xEE);
        }
        self.recv.fill(0xEE);
        self.frecv.fill(f64::NAN);
    }

    /// Whether this rank's outputs are right after a call.
    fn check(&self, op: Op, size: usize, rank: usize, n: usize) -> bool {
        let blocks_ok = |buf: &[u8], from: &dyn Fn(usize) -> (usize, usize)| {
            buf.chunks(size.max(1)).enumerate().all(|(b, chunk)| {
                let (r, j) = from(b);
                chunk.iter().enumerate().all(|(k, &x)| x == pat(r, j, k))
            })
        };
        let sum_ok = |v: &[f64]| {
            let ranks = (n * (n + 1) / 2) as f64;
            v.iter()
                .enumerate()
                .all(|(i, &x)| x == ranks * (i % 7 + 1) as f64)
        };
        match op {
            Op::Barrier => true,
            Op::Bcast => blocks_ok(&self.send, &|_| (0, 0)),
            Op::Reduce => rank != 0 || sum_ok(&self.frecv),
            Op::Allreduce => sum_ok(&self.frecv),
            Op::Gather => {
                rank != 0 || (self.recv.len() == n * size && blocks_ok(&self.recv, &|b| (b, 0)))
            }
            Op::Scatter => blocks_ok(&self.recv, &|_| (0, rank)),
            Op::Allgather => blocks_ok(&self.recv, &|b| (b, 0)),
            Op::Alltoall => blocks_ok(&self.recv, &|b| (b, rank)),
        }
    }
}

/// Tag of the separator's messages.
const SEP_TAG: pirun::Tag = 0x5e9;

/// Element-wise maximum of `v` over all ranks, on every rank: a dissemination exchange
/// over point-to-point messages (`ceil(log2 n)` rounds; the maximum is idempotent, so
/// hearing from a rank twice does no harm).
pub fn separator<const N: usize>(world: &Communicator, mut v: [f64; N]) -> pirun::Result<[f64; N]> {
    let (rank, n) = (world.rank(), world.size());
    let mut dist = 1;
    while dist < n {
        let mut got = [0.0f64; N];
        world.sendrecv_into(
            (rank + dist) % n,
            SEP_TAG,
            &v,
            (rank + n - dist) % n,
            SEP_TAG,
            &mut got,
        )?;
        for (x, y) in v.iter_mut().zip(got) {
            *x = x.max(y);
        }
        dist *= 2;
    }
    Ok(v)
}

/// Measures `op` at `size` bytes per rank within [`Config::slot_secs`]; collective: every
/// rank calls it with the same arguments.
pub fn measure(world: &Communicator, cfg: &Config, op: Op, size: usize) -> pirun::Result<Outcome> {
    Ok(measure_within(world, cfg, op, size, cfg.slot_secs())?.0)
}

/// [`measure`] with an explicit time share of `slot` seconds. Also returns the seconds
/// the measurement took (the slowest rank's, so the same value on every rank: callers
/// may share out a time budget with it and still agree).
pub fn measure_within(
    world: &Communicator,
    cfg: &Config,
    op: Op,
    size: usize,
    slot: f64,
) -> pirun::Result<(Outcome, f64)> {
    let (rank, n) = (world.rank(), world.size());
    let mut b = Bufs::new(op, size, rank, n);
    separator(world, [0.0; 2])?;
    let start = Instant::now();
    // The first warm-up call is the check: outputs poisoned before, verified after.
    b.poison(op, rank);
    let t = Instant::now();
    b.call(world, op)?;
    let first = t.elapsed().as_secs_f64();
    let bad = if b.check(op, size, rank, n) {
        0.0
    } else {
        (rank + 1) as f64
    };
    let [worst, fastest, spent] = separator(world, [bad, first, start.elapsed().as_secs_f64()])?;
    if worst != 0.0 {
        let what = format!("wrong result on rank {}", worst as usize - 1);
        return Ok((Err(what), spent));
    }
    // The rest of the warm-up and the timed batches, each closed by the separator.
    let t = timed_loop(
        &cfg.plan(size, slot, 1.0),
        start,
        fastest,
        spent,
        || b.call(world, op),
        |v| separator(world, v),
    )?;
    let record = Record {
        op,
        size,
        ranks: n,
        iters: t.iters,
        median_us: t.median_us,
        min_us: t.min_us,
        max_us: t.max_us,
    };
    Ok((Ok(record), t.spent))
}

/// Bytes of buffers the busiest rank (the root, for rooted operations) holds for one call
/// of `op` at `size` bytes per rank on `n` ranks: what it sends and what it receives.
pub fn buffer_bytes(op: Op, size: usize, n: usize) -> usize {
    match op {
        Op::Barrier => 0,
        Op::Bcast => size,
        Op::Reduce | Op::Allreduce => 2 * payload_bytes(op, size),
        Op::Gather | Op::Scatter | Op::Allgather => size.saturating_mul(n + 1),
        Op::Alltoall => size.saturating_mul(2 * n),
    }
}

/// Bytes each rank contributes to one call of `op` at `size`: the message of bcast, the
/// reduction vector (whole `f64`s, at least one), each rank's block of gather, scatter and
/// allgather, the block per destination of alltoall; 0 for the barrier.
pub fn payload_bytes(op: Op, size: usize) -> usize {
    match op {
        Op::Barrier => 0,
        Op::Reduce | Op::Allreduce => 8 * (size / 8).max(1),
        _ => size,
    }
}

/// The name of the algorithm pirun runs for one call of `op` at `size` bytes per rank on
/// `n` ranks placed as `placement` says, as [`pirun::select`] chooses it in this process
/// (so the `PIRUN_<OP>_ALGORITHM` overrides in its environment count). It mirrors the
/// arguments each collective passes to its `select::*_on` function.
pub fn algorithm(op: Op, size: usize, n: usize, placement: Placement) -> &'static str {
    use pirun::select;
    let bytes = payload_bytes(op, size);
    match op {
        Op::Barrier => select::BARRIER_ALGORITHM,
        Op::Bcast => select::bcast_on(bytes, n, placement).name(),
        // The Sum of f64 the benchmark reduces is commutative.
        Op::Reduce => select::reduce_on(bytes / 8, bytes, n, placement).name(),
        Op::Allreduce => select::allreduce_on(bytes / 8, bytes, n, true, placement).name(),
        Op::Gather => select::gather_on(bytes, n, placement).name(),
        Op::Scatter => select::scatter_on(bytes, n, placement).name(),
        Op::Allgather => select::allgather_on(bytes * n, n, placement).name(),
        Op::Alltoall => select::alltoall_on(bytes, n, placement).name(),
    }
}

/// Measures every (operation, size) of `cfg` in order, handing each outcome to `report`
/// (on every rank). Returns how many checks failed.
pub fn run(
    world: &Communicator,
    cfg: &Config,
    mut report: impl FnMut(Op, usize, &Outcome),
) -> pirun::Result<usize> {
    let mut failed = 0;
    for &op in &cfg.ops {
        let sizes = if op == Op::Barrier {
            &[0][..]
        } else {
            &cfg.sizes[..]
        };
        for &size in sizes {
            let out = measure(world, cfg, op, size)?;
            failed += out.is_err() as usize;
            report(op, size, &out);
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_and_buffer_sizes() {
        assert_eq!(payload_bytes(Op::Reduce, 1), 8, "at least one f64");
        assert_eq!(payload_bytes(Op::Allreduce, 1023), 1016, "whole f64s");
        assert_eq!(payload_bytes(Op::Barrier, 64), 0);
        assert_eq!(payload_bytes(Op::Alltoall, 64), 64);
        // A 16 MiB alltoall on 16 ranks: 256 MiB out and 256 MiB in per rank.
        assert_eq!(buffer_bytes(Op::Alltoall, 16 << 20, 16), 512 << 20);
        assert_eq!(buffer_bytes(Op::Gather, 1 << 20, 4), 5 << 20, "the root's");
        assert_eq!(buffer_bytes(Op::Allreduce, 1 << 20, 4), 2 << 20);
        assert_eq!(buffer_bytes(Op::Alltoall, usize::MAX / 2, 4), usize::MAX);
    }
}
