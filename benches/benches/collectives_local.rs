//! The collective algorithms over the in-memory transport (`pirun_collectives::local`,
//! ranks as threads, messages through mutex-guarded mailboxes): allreduce (Sum of f64),
//! bcast, barrier, gather and alltoall for p = 2, 4, 8 ranks and a few sizes. No sockets,
//! so this is the cost of the algorithms, their copies and reductions, and the transport's
//! thread wake-ups (condition variables; unlike the runtime it never spins, so
//! small-message figures are not a lower bound for TCP's).
//!
//! Each criterion sample starts the p threads once (`local::run_with`), meets in a
//! barrier, then times `iters` back-to-back calls on every rank; the sample's time is the
//! slowest rank's. Thread start-up is outside the timed region. The transport runs with no
//! random delays and a 64 KiB rendezvous threshold, like the runtime's default eager
//! limit (`PIRUN_EAGER_LIMIT`). On a 2-core machine p = 4 and p = 8 oversubscribe the
//! cores, so their figures include the scheduler's wake-up latency.
//!
//! Sizes are bytes per rank, as in `collbench`: the broadcast message, the reduction
//! vector, each rank's gather block, each rank's alltoall block per destination.
//!
//! Run: `cargo bench -p pirun-benches --bench collectives_local` (about 60 s);
//! one operation: `cargo bench -p pirun-benches --bench collectives_local -- allreduce`;
//! one communicator size of it: `... -- 'allreduce/p4/'`.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pirun_collectives::local::{self, Config, LocalComm, LocalError};
use pirun_collectives::op::Sum;
use pirun_collectives::{Collectives, PointToPoint};

/// Communicator sizes.
const RANKS: [usize; 3] = [2, 4, 8];

fn transport() -> Config {
    Config {
        rendezvous_threshold: 64 << 10,
        timeout: Duration::from_secs(30),
        seed: None,
    }
}

/// Times `iters` calls of `op` on `p` ranks; returns the slowest rank's time.
///
/// `setup` runs once per rank before the clock starts and makes that rank's buffers.
fn timed<S>(
    p: usize,
    iters: u64,
    setup: impl Fn(&LocalComm) -> S + Sync,
    op: impl Fn(&LocalComm, &mut S) -> Result<(), LocalError> + Sync,
) -> Duration {
    let times = local::run_with(p, &transport(), |comm| {
        let mut state = setup(comm);
        comm.barrier()?;
        let start = Instant::now();
        for _ in 0..iters {
            op(comm, &mut state)?;
        }
        Ok(start.elapsed())
    })
    .unwrap_or_else(|e| panic!("{p} in-memory ranks failed: {e}"));
    times.into_iter().max().unwrap_or_default()
}

fn label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}

fn allreduce(c: &mut Criterion) {
    let mut g = c.benchmark_group("allreduce");
    for p in RANKS {
        for bytes in [8, 64 << 10, 1 << 20] {
            let n = bytes / 8;
            g.bench_function(BenchmarkId::new(format!("p{p}"), label(bytes)), |b| {
                b.iter_custom(|iters| {
                    timed(
                        p,
                        iters,
                        |comm| (vec![comm.rank() as f64 + 0.5; n], vec![0.0f64; n]),
                        |comm, (send, recv)| comm.allreduce_into(send, recv, Sum),
                    )
                })
            });
        }
    }
    g.finish();
}

fn bcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("bcast");
    for p in RANKS {
        for bytes in [8, 64 << 10, 1 << 20] {
            g.bench_function(BenchmarkId::new(format!("p{p}"), label(bytes)), |b| {
                b.iter_custom(|iters| {
                    timed(
                        p,
                        iters,
                        |_| vec![7u8; bytes],
                        |comm, buf| comm.bcast(0, buf),
                    )
                })
            });
        }
    }
    g.finish();
}

fn barrier(c: &mut Criterion) {
    let mut g = c.benchmark_group("barrier");
    for p in RANKS {
        g.bench_function(BenchmarkId::from_parameter(format!("p{p}")), |b| {
            b.iter_custom(|iters| timed(p, iters, |_| (), |comm, ()| comm.barrier()))
        });
    }
    g.finish();
}

fn gather(c: &mut Criterion) {
    let mut g = c.benchmark_group("gather");
    for p in RANKS {
        for bytes in [8, 64 << 10] {
            g.bench_function(BenchmarkId::new(format!("p{p}"), label(bytes)), |b| {
                b.iter_custom(|iters| {
                    timed(
                        p,
                        iters,
                        |comm| {
                            let recv = vec![0u8; if comm.rank() == 0 { bytes * p } else { 0 }];
                            (vec![comm.rank() as u8; bytes], recv)
                        },
                        |comm, (send, recv)| {
                            let recv = (comm.rank() == 0).then_some(recv.as_mut_slice());
                            comm.gather_into(0, send, recv)
                        },
                    )
                })
            });
        }
    }
    g.finish();
}

fn alltoall(c: &mut Criterion) {
    let mut g = c.benchmark_group("alltoall");
    for p in RANKS {
        for bytes in [8, 4 << 10] {
            g.bench_function(BenchmarkId::new(format!("p{p}"), label(bytes)), |b| {
                b.iter_custom(|iters| {
                    timed(
                        p,
                        iters,
                        |comm| (vec![comm.rank() as u8; bytes * p], vec![0u8; bytes * p]),
                        |comm, (send, recv)| comm.alltoall_into(send, recv),
                    )
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config(10, 1000);
    targets = allreduce, bcast, barrier, gather, alltoall
}
criterion_main!(benches);
