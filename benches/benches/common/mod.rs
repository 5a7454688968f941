//! The Criterion settings every micro-benchmark here shares: a short warm-up, 10 000
//! bootstrap resamples, and a measurement long enough for the figures in `MICRO.md`.

use std::time::Duration;

use criterion::Criterion;

/// Criterion configured with `samples` samples over `measure_ms` milliseconds.
pub fn config(samples: usize, measure_ms: u64) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(measure_ms))
        .sample_size(samples)
        .nresamples(10_000)
}
