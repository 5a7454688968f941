//! The α-β (Hockney) model of the network: fitted on the ping-pong, then used to predict
//! what each collective algorithm should take, so `pirun bench` can show how close the
//! cluster comes to its physical limit and whether another algorithm would do better.
//!
//! **The fit.** A message of `m` bytes takes `t(m) = α + β·m` one way ([`Hockney`]).
//! `pirun bench` fits the fastest batch of each ping-pong size (noise only ever adds
//! time: the model is the link at its best).
//! α and β are the two asymptotes of the ping-pong curve, so each is taken from its own
//! end of it: β is the median of the slopes between consecutive sizes among the largest
//! ones (those of at least 1/64 of the largest size, at least two sizes), α the median of
//! `t − β·m` over the sizes the latency dominates (`β·m ≤ t/2`; all sizes if none is).
//! A fit of the whole curve at once — least squares, even in relative error — was tried
//! first and is wrong on real links: the curve bends in between (the eager/rendezvous
//! switch; a token-bucket shaper lets a few KiB through at line rate, so 4–64 KiB
//! messages beat the sustained rate), and the bend tilts the line. On the simulated
//! 100 Mbit/s cluster it gave 1/β = 20.5 MB/s for a link that sustains 12 MB/s, and every
//! large collective looked 1.7× slower than its bound. The medians also keep one disturbed
//! size (a 16 MiB transfer that lost the CPU on a loaded machine) from moving β.
//! A negative α is clamped to 0; a non-positive β means no cost per byte (β = 0).
//!
//! **The predictions** follow Thakur, Rabenseifner & Gropp, *Optimization of Collective
//! Communication Operations in MPICH* (2005), with the computation term γ left out (the
//! reductions' adds are far cheaper than moving the bytes on a network), for `p` ranks,
//! `L = ⌈log₂ p⌉`, `p'` the largest power of two ≤ `p`, and `m` the bytes per rank of the
//! call ([`crate::coll::payload_bytes`]):
//!
//! | operation | algorithm | time |
//! |---|---|---|
//! | ping-pong | | `α + mβ` (one way) |
//! | barrier | dissemination | `Lα` |
//! | bcast | binomial | `L(α + mβ)` |
//! | bcast | scatter_allgather | `Lα + (p−1)/p·mβ` + the allgather of `m/p`-byte blocks |
//! | bcast | pipeline (segments of `s` bytes, `k = ⌈m/s⌉`) | `(p − 2 + k)(α + m/k·β)` |
//! | reduce | binomial | `L(α + mβ)` |
//! | reduce | linear (every vector straight to the root) | `(p−1)(α + mβ)` |
//! | reduce | rabenseifner | `log₂p'·α + (p'−1)/p'·mβ` (halving) `+ (p'−1)(α + m/p'·β)` (blocks to the root) |
//! | allreduce | recursive_doubling | `log₂p'(α + mβ)` |
//! | allreduce | rabenseifner | `2log₂p'·α + 2(p'−1)/p'·mβ` |
//! | allreduce | ring | `2(p−1)α + 2(p−1)/p·mβ` |
//! | allreduce | reduce_bcast | `2L(α + mβ)` |
//! | gather, scatter | binomial | `Lα + (p−1)mβ` |
//! | gather, scatter | linear | `(p−1)(α + mβ)` |
//! | allgather | recursive_doubling, bruck | `Lα + (p−1)mβ` |
//! | allgather | ring | `(p−1)(α + mβ)` |
//! | alltoall | pairwise | `(p−1)(α + mβ)` |
//! | alltoall | bruck | `Lα + Σₖ bₖ·mβ`, `bₖ` = blocks with bit `k` set (about `p/2`) |
//!
//! On a non-power of two, the algorithms that fold the ranks down to `p'` (recursive
//! doubling and Rabenseifner's reduce and allreduce) add `α + mβ` for the fold and, for
//! allreduce, `α + mβ` for sending the result back.
//!
//! The model assumes every rank has a full-duplex link of its own; ranks sharing a host
//! share its link (and its memory bus), so on such jobs a measured/model ratio above 1 is
//! expected.

use std::fmt;

use pirun::select::{
    bcast_allgather_on, AllgatherAlgorithm, AllreduceAlgorithm, AlltoallAlgorithm, BcastAlgorithm,
    GatherAlgorithm, Placement, ReduceAlgorithm, ScatterAlgorithm, BARRIER_ALGORITHM,
};

use crate::coll::Op;
use crate::plan::Test;

/// Latency and inverse bandwidth of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hockney {
    /// α: the time of an empty message, µs.
    pub alpha_us: f64,
    /// β: the time per byte, µs (0 when the data showed no cost per byte).
    pub beta_us_per_byte: f64,
}

/// Why no model could be fitted.
#[derive(Clone, Debug, PartialEq)]
pub enum FitError {
    /// Fewer than two distinct sizes with a positive time.
    TooFewSizes(usize),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooFewSizes(n) => write!(
                f,
                "the α-β fit needs ping-pong times at two sizes or more, got {n}"
            ),
        }
    }
}

impl std::error::Error for FitError {}

impl Hockney {
    /// Fits `t = α + β·m` to `(bytes, one-way µs)` points: β from the largest sizes, α
    /// from the latency-bound ones (see the module documentation). Points with a
    /// non-positive or non-finite time are ignored; repeated sizes count once, at the
    /// median of their times.
    pub fn fit(points: &[(usize, f64)]) -> Result<Hockney, FitError> {
        let mut pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|(_, t)| t.is_finite() && *t > 0.0)
            .map(|&(m, t)| (m as f64, t))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut curve: Vec<(f64, f64)> = Vec::new();
        for group in pts.chunk_by(|a, b| a.0 == b.0) {
            let mut times: Vec<f64> = group.iter().map(|p| p.1).collect();
            curve.push((group[0].0, median(&mut times)));
        }
        if curve.len() < 2 {
            return Err(FitError::TooFewSizes(curve.len()));
        }
        let largest = curve[curve.len() - 1].0;
        let first_large = curve
            .iter()
            .position(|p| p.0 >= largest / 64.0)
            .unwrap_or(0)
            .min(curve.len() - 2);
        let mut slopes: Vec<f64> = curve[first_large..]
            .windows(2)
            .map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0))
            .collect();
        let beta = median(&mut slopes);
        let beta = if beta.is_finite() && beta > 0.0 {
            beta
        } else {
            0.0
        };
        let residual = |&(m, t): &(f64, f64)| t - beta * m;
        let mut latency: Vec<f64> = curve
            .iter()
            .filter(|&&(m, t)| beta * m <= t / 2.0)
            .map(residual)
            .collect();
        if latency.is_empty() {
            latency = curve.iter().map(residual).collect();
        }
        Ok(Hockney {
            alpha_us: median(&mut latency).max(0.0),
            beta_us_per_byte: beta,
        })
    }

    /// One message of `bytes` bytes, µs.
    pub fn time_us(&self, bytes: f64) -> f64 {
        self.alpha_us + self.beta_us_per_byte * bytes
    }

    /// 1/β in MB/s (10^6 bytes per second; bytes per µs); `None` if β is 0.
    pub fn bandwidth_mbps(&self) -> Option<f64> {
        (self.beta_us_per_byte > 0.0).then(|| 1.0 / self.beta_us_per_byte)
    }
}

/// The median of `v` (sorts it; the mean of the middle two for an even count; NaN if
/// empty).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// `⌈log₂ p⌉`.
fn ceil_log2(p: usize) -> f64 {
    (usize::BITS - p.saturating_sub(1).leading_zeros()) as f64
}

/// The largest power of two ≤ `p` (`p ≥ 1`).
fn pof2(p: usize) -> usize {
    1 << (usize::BITS - 1 - p.max(1).leading_zeros())
}

/// The allgather of `block` bytes per rank with `alg` on `p` ranks.
fn allgather(h: &Hockney, alg: AllgatherAlgorithm, p: usize, block: f64) -> f64 {
    let (a, b, pf) = (h.alpha_us, h.beta_us_per_byte, p as f64);
    match alg {
        AllgatherAlgorithm::RecursiveDoubling | AllgatherAlgorithm::Bruck => {
            ceil_log2(p) * a + (pf - 1.0) * block * b
        }
        AllgatherAlgorithm::Ring => (pf - 1.0) * (a + block * b),
    }
}

/// One call the model is asked about.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Call {
    pub test: Test,
    /// Ranks taking part (2 for the ping-pong).
    pub ranks: usize,
    /// Bytes per rank the call moves ([`crate::coll::payload_bytes`]).
    pub bytes: usize,
    /// The pipelined broadcast's segment size, bytes.
    pub segment: usize,
    /// Where the ranks run (the scatter-allgather broadcast's allgather depends on it).
    pub placement: Placement,
}

/// The model's time, µs, of `call` run with `algorithm` (a name from [`pirun::select`]);
/// `None` for an algorithm the model does not know.
pub fn predict(h: &Hockney, call: &Call, algorithm: &str) -> Option<f64> {
    let (a, b) = (h.alpha_us, h.beta_us_per_byte);
    let (p, m) = (call.ranks, call.bytes);
    let (pf, mf, l) = (p.max(1) as f64, m as f64, ceil_log2(p));
    let p2 = pof2(p);
    let (p2f, lp2) = (p2 as f64, p2.trailing_zeros() as f64);
    // The fold of a non-power of two down to p' ranks: one whole message.
    let fold = if p2 == p { 0.0 } else { a + mf * b };
    let op = match call.test {
        Test::PingPong => return Some(h.time_us(mf)),
        Test::Coll(op) => op,
    };
    if p < 2 {
        return Some(0.0);
    }
    Some(match op {
        Op::Barrier => {
            (algorithm == BARRIER_ALGORITHM).then_some(())?;
            l * a
        }
        Op::Bcast => match BcastAlgorithm::from_name(algorithm)? {
            BcastAlgorithm::Binomial => l * (a + mf * b),
            BcastAlgorithm::ScatterAllgather => {
                let scatter = l * a + (pf - 1.0) / pf * mf * b;
                let phase = bcast_allgather_on(m, p, call.placement);
                scatter + allgather(h, phase, p, mf / pf)
            }
            BcastAlgorithm::Pipeline => {
                let k = m.div_ceil(call.segment.max(1)).max(1) as f64;
                (pf - 2.0 + k) * (a + mf / k * b)
            }
        },
        Op::Reduce => match ReduceAlgorithm::from_name(algorithm)? {
            ReduceAlgorithm::Binomial => l * (a + mf * b),
            ReduceAlgorithm::Rabenseifner => {
                let halving = lp2 * a + (p2f - 1.0) / p2f * mf * b;
                let to_root = (p2f - 1.0) * (a + mf / p2f * b);
                fold + halving + to_root
            }
            ReduceAlgorithm::Linear => (pf - 1.0) * (a + mf * b),
        },
        Op::Allreduce => match AllreduceAlgorithm::from_name(algorithm)? {
            AllreduceAlgorithm::RecursiveDoubling => 2.0 * fold + lp2 * (a + mf * b),
            AllreduceAlgorithm::Rabenseifner => {
                2.0 * fold + 2.0 * lp2 * a + 2.0 * (p2f - 1.0) / p2f * mf * b
            }
            AllreduceAlgorithm::Ring => 2.0 * (pf - 1.0) * a + 2.0 * (pf - 1.0) / pf * mf * b,
            AllreduceAlgorithm::ReduceBcast => 2.0 * l * (a + mf * b),
        },
        // Either way the root's link carries the other ranks' blocks; a tree needs
        // `L` start-ups, going straight `p − 1`.
        Op::Gather => match GatherAlgorithm::from_name(algorithm)? {
            GatherAlgorithm::Binomial => l * a + (pf - 1.0) * mf * b,
            GatherAlgorithm::Linear => (pf - 1.0) * (a + mf * b),
        },
        Op::Scatter => match ScatterAlgorithm::from_name(algorithm)? {
            ScatterAlgorithm::Binomial => l * a + (pf - 1.0) * mf * b,
            ScatterAlgorithm::Linear => (pf - 1.0) * (a + mf * b),
        },
        Op::Allgather => allgather(h, AllgatherAlgorithm::from_name(algorithm)?, p, mf),
        Op::Alltoall => match AlltoallAlgorithm::from_name(algorithm)? {
            AlltoallAlgorithm::Pairwise => (pf - 1.0) * (a + mf * b),
            AlltoallAlgorithm::Bruck => {
                let blocks: usize = (0..ceil_log2(p) as u32)
                    .map(|k| (0..p).filter(|j| j >> k & 1 == 1).count())
                    .sum();
                l * a + blocks as f64 * mf * b
            }
        },
    })
}

/// The algorithms pirun could run for `call` (what the `PIRUN_<OP>_ALGORITHM` overrides
/// can force and that would really run).
pub fn candidates(call: &Call) -> Vec<&'static str> {
    fn names<A: Copy>(all: &[A], name: fn(A) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|&a| name(a)).collect()
    }
    let Test::Coll(op) = call.test else {
        return vec!["-"];
    };
    match op {
        Op::Barrier => vec![BARRIER_ALGORITHM],
        Op::Gather => names(GatherAlgorithm::ALL, GatherAlgorithm::name),
        Op::Scatter => names(ScatterAlgorithm::ALL, ScatterAlgorithm::name),
        Op::Bcast => names(BcastAlgorithm::ALL, BcastAlgorithm::name),
        Op::Reduce => names(ReduceAlgorithm::ALL, ReduceAlgorithm::name),
        Op::Allreduce => names(AllreduceAlgorithm::ALL, AllreduceAlgorithm::name),
        Op::Allgather => AllgatherAlgorithm::ALL
            .iter()
            // Recursive doubling on a non-power of two runs Bruck.
            .filter(|&&a| {
                call.ranks.is_power_of_two() || a != AllgatherAlgorithm::RecursiveDoubling
            })
            .map(|a| a.name())
            .collect(),
        Op::Alltoall => names(AlltoallAlgorithm::ALL, AlltoallAlgorithm::name),
    }
}

/// The candidate with the lowest predicted time and that time (the first of equals, in
/// [`candidates`] order).
pub fn best(h: &Hockney, call: &Call) -> Option<(&'static str, f64)> {
    candidates(call)
        .into_iter()
        .filter_map(|alg| Some((alg, predict(h, call, alg)?)))
        .fold(None, |best: Option<(&str, f64)>, (alg, t)| match best {
            Some((_, bt)) if bt <= t => best,
            _ => Some((alg, t)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Hockney = Hockney {
        alpha_us: 50.0,
        beta_us_per_byte: 0.08, // 12.5 MB/s: 100 Mbit/s
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Powers of 4 from 1 byte to 16 MiB, as `pirun bench` measures by default.
    fn sizes() -> Vec<usize> {
        (0..13).map(|k| 1usize << (2 * k)).collect()
    }

    #[test]
    fn the_fit_recovers_alpha_and_beta() {
        let exact: Vec<(usize, f64)> = sizes().iter().map(|&m| (m, H.time_us(m as f64))).collect();
        let h = Hockney::fit(&exact).unwrap();
        assert!(close(h.alpha_us, H.alpha_us), "{h:?}");
        assert!(close(h.beta_us_per_byte, H.beta_us_per_byte), "{h:?}");
        assert!(close(h.bandwidth_mbps().unwrap(), 12.5));
        // Two sizes: the line through them.
        let h = Hockney::fit(&[(8, H.time_us(8.0)), (1 << 20, H.time_us(1048576.0))]).unwrap();
        assert!(close(h.alpha_us, H.alpha_us) && close(h.beta_us_per_byte, H.beta_us_per_byte));
    }

    #[test]
    fn the_asymptotes_decide_not_the_bend_in_between() {
        // A token-bucket shaper: 4 KiB to 64 KiB go through at twice the sustained rate.
        let shaped: Vec<(usize, f64)> = sizes()
            .iter()
            .map(|&m| {
                let burst = (4096..=65536).contains(&m);
                let t = H.time_us(m as f64);
                (
                    m,
                    if burst {
                        H.alpha_us + (t - H.alpha_us) / 2.0
                    } else {
                        t
                    },
                )
            })
            .collect();
        let h = Hockney::fit(&shaped).unwrap();
        assert!(close(h.beta_us_per_byte, H.beta_us_per_byte), "{h:?}");
        assert!(close(h.alpha_us, H.alpha_us), "{h:?}");
        // ±3 % noise everywhere: both within a few percent.
        let noisy: Vec<(usize, f64)> = sizes()
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, H.time_us(m as f64) * [1.03, 0.97, 1.0][i % 3]))
            .collect();
        let h = Hockney::fit(&noisy).unwrap();
        assert!((h.alpha_us / H.alpha_us - 1.0).abs() < 0.04, "{h:?}");
        assert!(
            (h.beta_us_per_byte / H.beta_us_per_byte - 1.0).abs() < 0.05,
            "{h:?}"
        );
    }

    #[test]
    fn one_disturbed_size_does_not_move_the_fit() {
        // Loopback: 5 µs, 6 GB/s; the 16 MiB transfer lost the CPU and took 10 times longer.
        let fast = Hockney {
            alpha_us: 5.0,
            beta_us_per_byte: 1.0 / 6000.0,
        };
        let pts: Vec<(usize, f64)> = sizes()
            .iter()
            .map(|&m| {
                let t = fast.time_us(m as f64);
                (m, if m == 16 << 20 { 10.0 * t } else { t })
            })
            .collect();
        let h = Hockney::fit(&pts).unwrap();
        assert!(close(h.alpha_us, 5.0), "{h:?}");
        assert!(close(h.bandwidth_mbps().unwrap(), 6000.0), "{h:?}");
    }

    #[test]
    fn degenerate_data_gives_sane_models() {
        assert_eq!(
            Hockney::fit(&[(8, 3.0), (8, 3.1)]),
            Err(FitError::TooFewSizes(1))
        );
        assert_eq!(Hockney::fit(&[]), Err(FitError::TooFewSizes(0)));
        // Flat times: all latency, no bandwidth term.
        let h = Hockney::fit(&[(1, 5.0), (1000, 5.0)]).unwrap();
        assert!(close(h.alpha_us, 5.0) && h.beta_us_per_byte == 0.0);
        assert_eq!(h.bandwidth_mbps(), None);
        // Falling times would give a negative β: none, and α is their median.
        let h = Hockney::fit(&[(1, 6.0), (1000, 5.0)]).unwrap();
        assert!(h.beta_us_per_byte == 0.0 && close(h.alpha_us, 5.5), "{h:?}");
        // Pure bandwidth with a negative intercept: α clamped to 0.
        let h = Hockney::fit(&[(1000, 1.0), (2000, 2.5), (4000, 5.0)]).unwrap();
        assert!(h.alpha_us == 0.0 && h.beta_us_per_byte > 0.0, "{h:?}");
        // Repeated sizes count once, at their median.
        let h = Hockney::fit(&[(1, 5.0), (1, 5.0), (1, 500.0), (101, 6.0)]).unwrap();
        assert!(close(h.beta_us_per_byte, 0.01), "{h:?}");
    }

    #[test]
    fn log2_helpers() {
        let l: Vec<f64> = (1..=9).map(ceil_log2).collect();
        assert_eq!(l, [0.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0]);
        let p: Vec<usize> = (1..=9).map(pof2).collect();
        assert_eq!(p, [1, 2, 2, 4, 4, 4, 4, 8, 8]);
    }

    fn call(test: Test, p: usize, m: usize) -> Call {
        Call {
            test,
            ranks: p,
            bytes: m,
            segment: 32768,
            placement: Placement::Hosts,
        }
    }

    fn t(op: Op, alg: &str, p: usize, m: usize) -> f64 {
        predict(&H, &call(Test::Coll(op), p, m), alg).unwrap()
    }

    #[test]
    fn predictions_follow_thakur_rabenseifner_gropp() {
        let (a, b) = (H.alpha_us, H.beta_us_per_byte);
        let m = 1 << 20;
        let mf = m as f64;
        assert!(close(
            predict(&H, &call(Test::PingPong, 2, m), "-").unwrap(),
            a + mf * b
        ));
        assert!(close(t(Op::Barrier, "dissemination", 5, 0), 3.0 * a));
        assert!(close(t(Op::Bcast, "binomial", 8, m), 3.0 * (a + mf * b)));
        assert!(close(
            t(Op::Allreduce, "ring", 4, m),
            6.0 * a + 2.0 * 3.0 / 4.0 * mf * b
        ));
        assert!(close(
            t(Op::Allreduce, "rabenseifner", 4, m),
            4.0 * a + 1.5 * mf * b
        ));
        assert!(close(
            t(Op::Allreduce, "recursive_doubling", 6, m),
            2.0 * (a + mf * b) + 2.0 * (a + mf * b)
        ));
        assert!(close(
            t(Op::Gather, "binomial", 4, m),
            2.0 * a + 3.0 * mf * b
        ));
        assert!(close(t(Op::Alltoall, "pairwise", 4, m), 3.0 * (a + mf * b)));
        // Bruck on 4 ranks: 2 steps of 2 blocks.
        assert!(close(
            t(Op::Alltoall, "bruck", 4, m),
            2.0 * a + 4.0 * mf * b
        ));
        // Bruck on 5: steps of 2, 2 and 1 blocks (indices with bit k set in 0..5).
        assert!(close(
            t(Op::Alltoall, "bruck", 5, m),
            3.0 * a + 5.0 * mf * b
        ));
        assert!(close(t(Op::Allgather, "ring", 4, m), 3.0 * (a + mf * b)));
        // Pipeline: 32 segments of 32 KiB through 4 ranks: 34 steps.
        assert!(close(
            t(Op::Bcast, "pipeline", 4, m),
            34.0 * (a + mf / 32.0 * b)
        ));
        assert_eq!(
            predict(&H, &call(Test::Coll(Op::Bcast), 4, m), "nope"),
            None
        );
        assert_eq!(
            predict(&H, &call(Test::Coll(Op::Gather), 4, m), "ring"),
            None
        );
        assert_eq!(t(Op::Bcast, "binomial", 1, m), 0.0);
    }

    #[test]
    fn predictions_are_sane() {
        for test in crate::plan::Test::ALL {
            for p in [2, 3, 4, 7, 8, 16] {
                for m in [1, 1024, 1 << 20] {
                    for alg in candidates(&call(test, p, m)) {
                        let x = predict(&H, &call(test, p, m), alg).unwrap();
                        assert!(x.is_finite() && x > 0.0, "{test:?} {alg} {p} {m}");
                        let y = predict(&H, &call(test, p, 2 * m), alg).unwrap();
                        let barrier = test == Test::Coll(Op::Barrier);
                        assert!(
                            y > x || barrier,
                            "more bytes must cost more: {test:?} {alg}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_best_algorithm_is_the_classic_one() {
        // Short messages: latency-bound algorithms; long ones: bandwidth-optimal ones.
        let best_of = |op, p, m| best(&H, &call(Test::Coll(op), p, m)).unwrap().0;
        assert_eq!(best_of(Op::Allreduce, 8, 8), "recursive_doubling");
        assert_eq!(best_of(Op::Allreduce, 8, 16 << 20), "rabenseifner");
        assert_eq!(best_of(Op::Allreduce, 6, 16 << 20), "ring");
        assert_eq!(best_of(Op::Bcast, 8, 8), "binomial");
        assert_eq!(best_of(Op::Bcast, 8, 64 << 10), "scatter_allgather");
        // Segments of 32 KiB: the chain's start-up is small against 16 MiB.
        assert_eq!(best_of(Op::Bcast, 8, 16 << 20), "pipeline");
        assert_eq!(best_of(Op::Alltoall, 8, 1 << 20), "pairwise");
        assert_eq!(best_of(Op::Alltoall, 64, 1), "bruck");
        let ag6 = call(Test::Coll(Op::Allgather), 6, 1);
        assert_eq!(candidates(&ag6), ["bruck", "ring"]);
        let (alg, t) = best(&H, &call(Test::Coll(Op::Gather), 4, 1)).unwrap();
        assert_eq!(alg, "binomial");
        assert!(close(t, 2.0 * H.alpha_us + 3.0 * H.beta_us_per_byte));
    }
}
