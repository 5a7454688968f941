//! The timed loop every measurement shares: the rest of the warm-up, then batches of
//! back-to-back calls, each followed (outside the timed region) by an exchange that gives
//! every taking part rank the slowest one's time per call and one clock for the time limit.
//!
//! [`crate::coll`] runs it with the dissemination separator over all ranks,
//! [`crate::p2p`] with a swap between the two ends of the ping-pong.

use std::time::Instant;

/// How long and how often to measure one size.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed calls, including the first (checked) one the caller already made.
    pub warmup: usize,
    /// Timed calls wanted.
    pub iters: usize,
    /// Calls per batch before the limit of a tenth of `slot` per batch.
    pub batch: usize,
    /// Timed calls made even when the time share has run out.
    pub min_iters: usize,
    /// Seconds this size may take: warm-up stops after half, timing after all of it.
    pub slot: f64,
    /// Calls per measured unit: 1, or 2 for a round trip reported one way.
    pub per_unit: f64,
}

/// What a timed loop measured: per unit, the slowest rank's, in µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timed {
    /// Timed calls made.
    pub iters: usize,
    pub median_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    /// Seconds since `start`, the slowest rank's (the same on every rank).
    pub spent: f64,
}

/// Runs the warm-up calls after the first and the timed batches.
///
/// `fastest` and `spent` come from the first (checked) call, already synchronised;
/// `call` makes one call; `sync` returns the element-wise maximum over the ranks taking
/// part of `[seconds per unit, seconds since start]`, so every rank leaves the loop after
/// the same batch.
pub fn timed_loop(
    plan: &Plan,
    start: Instant,
    mut fastest: f64,
    mut spent: f64,
    mut call: impl FnMut() -> pirun::Result<()>,
    mut sync: impl FnMut([f64; 2]) -> pirun::Result<[f64; 2]>,
) -> pirun::Result<Timed> {
    for _ in 1..plan.warmup {
        if spent > plan.slot / 2.0 {
            break; // the same decision on every rank: the maximum is the same everywhere
        }
        let t = Instant::now();
        call()?;
        let max = sync([t.elapsed().as_secs_f64(), start.elapsed().as_secs_f64()])?;
        fastest = fastest.min(max[0]);
        spent = max[1];
    }
    // A batch takes at most a tenth of the time share (when calls collapse to ms).
    let mut batch = plan.batch.max(1);
    if fastest > 0.0 {
        batch = batch.min((plan.slot / 10.0 / fastest) as usize).max(1);
    }
    let mut times = Vec::with_capacity(plan.iters.div_ceil(batch));
    let mut done = 0;
    while done < plan.iters {
        let k = batch.min(plan.iters - done);
        let t = Instant::now();
        for _ in 0..k {
            call()?;
        }
        let per_unit = t.elapsed().as_secs_f64() / k as f64 / plan.per_unit;
        let max = sync([per_unit, start.elapsed().as_secs_f64()])?;
        times.push(max[0] * 1e6);
        done += k;
        spent = max[1];
        if spent > plan.slot && done >= plan.min_iters.min(plan.iters) {
            break;
        }
    }
    let (min_us, max_us) = times.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    Ok(Timed {
        iters: done,
        median_us: median(&mut times),
        min_us,
        max_us,
        spent,
    })
}

/// Median (mean of the two middle values for an even count, like the C twins); sorts
/// `v`; 0 for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn loop_counts_calls_and_reports_the_synced_maximum() {
        let plan = Plan {
            warmup: 3,
            iters: 10,
            batch: 4,
            min_iters: 3,
            slot: 100.0,
            per_unit: 2.0,
        };
        let mut calls = 0;
        // The "other rank" always reports 1 ms per unit: that is the maximum.
        let t = timed_loop(
            &plan,
            Instant::now(),
            1e-3,
            0.0,
            || {
                calls += 1;
                Ok(())
            },
            |v| Ok([v[0].max(1e-3), v[1]]),
        )
        .unwrap();
        assert_eq!(
            calls,
            2 + 10,
            "two more warm-up calls, then every timed one"
        );
        assert_eq!(t.iters, 10);
        assert_eq!((t.min_us, t.median_us, t.max_us), (1000.0, 1000.0, 1000.0));
    }

    #[test]
    fn an_exhausted_slot_stops_after_the_minimum() {
        let plan = Plan {
            warmup: 5,
            iters: 100,
            batch: 1,
            min_iters: 3,
            slot: 1.0,
            per_unit: 1.0,
        };
        let mut calls = 0;
        // A clock that says the slot is long gone.
        let t = timed_loop(
            &plan,
            Instant::now(),
            0.5,
            5.0,
            || {
                calls += 1;
                Ok(())
            },
            |v| Ok([v[0], 5.0]),
        )
        .unwrap();
        assert_eq!((calls, t.iters, t.spent), (3, 3, 5.0));
    }
}
