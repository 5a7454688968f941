//! The results of a `pirun bench` run put together: each measurement with its bandwidth
//! and the α-β model's view of it (the time of the algorithm that ran, and of the best
//! one), ready for the table, the CSV and the plot.

use pirun::select::Placement;
use pirun_benches::coll::Op;
use pirun_benches::line::{Measurement, Setup};
use pirun_benches::model::{self, Call, FitError, Hockney};
use pirun_benches::plan::Test;

use super::sink::Collected;

/// One measurement and what the model says about it.
#[derive(Clone, Debug)]
pub struct Row {
    pub m: Measurement,
    /// MB/s (10^6 bytes/s) for the tests where one message's bytes over the time means
    /// something: the ping-pong's one-way bandwidth; bytes per rank over the time for
    /// bcast, reduce and allreduce (NCCL's "algorithm bandwidth").
    pub mbps: Option<f64>,
    /// The model's time of the algorithm that ran, µs.
    pub model_us: Option<f64>,
    /// The algorithm the model finds fastest and its time, µs.
    pub best: Option<(&'static str, f64)>,
}

impl Row {
    /// Measured median over the model's time (1.0: at the physical limit).
    pub fn ratio(&self) -> Option<f64> {
        self.model_us
            .filter(|&t| t > 0.0)
            .map(|t| self.m.median_us / t)
    }

    /// The best algorithm when it is not the one that ran and the model says it is at
    /// least 1 % faster.
    pub fn better(&self) -> Option<(&'static str, f64)> {
        let (alg, t) = self.best?;
        let ran = self.model_us?;
        (alg != self.m.algorithm && t < 0.99 * ran).then_some((alg, t))
    }
}

/// Everything a run produced.
#[derive(Debug)]
pub struct Report {
    pub setup: Option<Setup>,
    /// The Hockney fit of the ping-pong.
    pub model: Result<Hockney, FitError>,
    pub rows: Vec<Row>,
    /// Measurements without figures, and why.
    pub failures: Vec<(Test, usize, String)>,
    /// Measurements left out, and why.
    pub skipped: Vec<(Test, usize, String)>,
}

/// Puts together what rank 0 reported.
pub fn build(c: &Collected) -> Report {
    let points: Vec<(usize, f64)> = c
        .results
        .iter()
        .filter(|m| m.test == Test::PingPong)
        // The fastest batch of each size: noise (a loaded machine, another job on the
        // network) only ever adds time, and the model is the link at its best.
        .map(|m| (m.bytes, m.min_us))
        .collect();
    let model = Hockney::fit(&points);
    let segment = c.setup.as_ref().map_or(0, |s| s.segment);
    // The ranks chose their algorithms for this placement ([`Placement::of`]).
    let placement = match c.setup.as_ref().map_or(1, |s| s.hosts) {
        1 => Placement::OneHost,
        _ => Placement::Hosts,
    };
    // Rank 0 measures size by size; the table goes test by test.
    let order = |t: &Test, size: &usize| (Test::ALL.iter().position(|x| x == t), *size);
    let mut results: Vec<&Measurement> = c.results.iter().collect();
    results.sort_by_key(|m| order(&m.test, &m.size));
    let sorted = |v: &[(Test, usize, String)]| {
        let mut v = v.to_vec();
        v.sort_by_key(|(t, s, _)| order(t, s));
        v
    };
    let rows = results
        .into_iter()
        .map(|m| {
            let mbps = match m.test {
                Test::PingPong | Test::Coll(Op::Bcast | Op::Reduce | Op::Allreduce) => {
                    (m.median_us > 0.0).then(|| m.bytes as f64 / m.median_us)
                }
                _ => None,
            };
            let call = Call {
                test: m.test,
                ranks: m.ranks,
                bytes: m.bytes,
                segment,
                placement,
            };
            let (model_us, best) = match &model {
                Ok(h) => (
                    model::predict(h, &call, &m.algorithm),
                    model::best(h, &call),
                ),
                Err(_) => (None, None),
            };
            Row {
                m: m.clone(),
                mbps,
                model_us,
                best,
            }
        })
        .collect();
    Report {
        setup: c.setup.clone(),
        model,
        rows,
        failures: sorted(&c.failures),
        skipped: sorted(&c.skipped),
    }
}
