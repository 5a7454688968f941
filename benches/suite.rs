//! Runs a [`Plan`] on the ranks of a job: the rank side of `pirun bench`.
//!
//! Every rank calls [`run`]; rank 0 reports through a callback, as [`Line`]s: the
//! [`Setup`] first, then per measurement a [`Line::Begin`] and a [`Line::Result`] (or
//! [`Line::Failed`]), or a [`Line::Skipped`] alone, and [`Line::Done`] at the end.
//!
//! **Time.** The plan's time limit is shared out as the run goes, in the order of
//! [`Plan::schedule`] (smallest sizes first): each measurement gets an equal share of what
//! is left when it starts. Small sizes finish their iterations long before their share is
//! used, so what they leave goes to the large sizes after them. Each measurement returns
//! the time it took as the slowest rank saw it — the same number on every rank — so every
//! rank computes the same shares and the ranks never disagree about when to stop. A size
//! whose share is used up still runs its checked warm-up call and one timed call, so on a
//! slow network the run takes longer than the limit rather than giving no figure.
//!
//! **Memory.** A measurement whose buffers ([`crate::coll::buffer_bytes`]: a 16 MiB
//! alltoall on 16 ranks holds 512 MiB per rank) exceed what a rank may use — half the
//! free memory (`MemAvailable`) of the fullest host, shared among its ranks, the other
//! half left for the library's own copies — is skipped ([`Line::Skipped`]) rather than
//! pushing a small board into swap or the OOM killer.

use pirun::select::Placement;
use pirun::Communicator;

use crate::coll::{self, separator};
use crate::line::{Line, Measurement, Setup};
use crate::p2p;
use crate::plan::{Plan, Test};
use crate::sizes::format_size;

/// Shortest time share a measurement gets, seconds.
const MIN_SLOT: f64 = 0.01;

/// Runs every measurement of `plan`; collective (every rank calls it with the same plan).
/// `emit` is called on rank 0 only. Returns how many measurements failed their result
/// check. The job needs at least two ranks.
pub fn run(world: &Communicator, plan: &Plan, mut emit: impl FnMut(&Line)) -> pirun::Result<usize> {
    let rank = world.rank();
    let Some(partner) = p2p::partner(world) else {
        return Ok(0); // a single rank: nothing to measure (the launcher refuses this)
    };
    let setup = setup(world, plan, partner)?;
    let memory = setup.memory;
    if rank == 0 {
        emit(&Line::Setup(setup));
    }
    let cfg = plan.coll_config();
    let placement = Placement::of(world);
    let mut failed = 0;
    let mut left = plan.time_limit;
    let schedule = plan.schedule();
    for (i, &(test, size)) in schedule.iter().enumerate() {
        let slot = (left / (schedule.len() - i) as f64).max(MIN_SLOT);
        let need = match test {
            Test::PingPong => 2 * size,
            Test::Coll(op) => coll::buffer_bytes(op, size, world.size()),
        } as u64;
        if need > memory {
            if rank == 0 {
                let why = format!(
                    "needs {} of buffers per rank, more than the {} each rank may use \
                     (half the free memory of the fullest host)",
                    format_size(need as usize),
                    format_size(memory as usize)
                );
                emit(&Line::Skipped { test, size, why });
            }
            continue;
        }
        if rank == 0 {
            emit(&Line::Begin { test, size });
        }
        let (line, spent) = match test {
            Test::PingPong => {
                let (out, spent) = p2p::measure_within(world, &cfg, partner, size, slot)?;
                let line = out.map(|o| Measurement {
                    test,
                    size,
                    bytes: size,
                    ranks: 2,
                    iters: o.iters,
                    min_us: o.min_us,
                    median_us: o.median_us,
                    max_us: o.max_us,
                    algorithm: "-".into(),
                });
                (line, spent)
            }
            Test::Coll(op) => {
                let (out, spent) = coll::measure_within(world, &cfg, op, size, slot)?;
                let line = out.map(|r| Measurement {
                    test,
                    size,
                    bytes: coll::payload_bytes(op, size),
                    ranks: r.ranks,
                    iters: r.iters,
                    min_us: r.min_us,
                    median_us: r.median_us,
                    max_us: r.max_us,
                    algorithm: coll::algorithm(op, size, r.ranks, placement).into(),
                });
                (line, spent)
            }
        };
        left -= spent;
        failed += line.is_err() as usize;
        if rank == 0 {
            emit(&match line {
                Ok(m) => Line::Result(m),
                Err(what) => Line::Failed { test, size, what },
            });
        }
    }
    if rank == 0 {
        emit(&Line::Done);
    }
    Ok(failed)
}

/// The job as rank 0 reports it. Collective.
fn setup(world: &Communicator, plan: &Plan, partner: usize) -> pirun::Result<Setup> {
    let n = world.size();
    let mut hosts: Vec<&str> = (0..n).filter_map(|r| world.host_of(r)).collect();
    hosts.sort_unstable();
    hosts.dedup();
    // Whether any host has more ranks than cores: each rank knows its own host's.
    let env = |k| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let crowded = match (
        env(pirun::contract::ENV_LOCAL_SIZE),
        env(pirun::contract::ENV_HOST_CORES),
    ) {
        (Some(local), Some(cores)) => local > cores,
        _ => false,
    };
    let local = env(pirun::contract::ENV_LOCAL_SIZE).unwrap_or(1).max(1);
    let allowance = free_memory().map_or(f64::INFINITY, |free| (free / 2 / local as u64) as f64);
    // One exchange: any crowded host, and the smallest allowance (as the largest negation).
    let [oversubscribed, neg_allowance] = separator(world, [crowded as u8 as f64, -allowance])?;
    let name = |r| world.host_of(r).unwrap_or("?").to_string();
    Ok(Setup {
        ranks: n,
        hosts: hosts.len(),
        host0: name(0),
        partner,
        partner_host: name(partner),
        oversubscribed: oversubscribed != 0.0,
        segment: pirun::select::segment_size(),
        measurements: plan.measurements(),
        memory: if neg_allowance.is_finite() {
            -neg_allowance as u64
        } else {
            u64::MAX
        },
    })
}

/// `MemAvailable` of this host, bytes (`None` where `/proc/meminfo` does not say).
fn free_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
