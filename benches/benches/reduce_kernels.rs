//! The element-wise reduction kernels every reduction runs on received data
//! (`pirun_collectives::op::fold_hi` / `fold_lo`, i.e. `acc[i] = acc[i] ∘ hi[i]`), with the
//! built-in operations and a user closure, on vectors of 1 KiB … 16 MiB, against two
//! baselines measured in the same run on the same sizes:
//!
//! - `baseline_copy_f64`: `acc.copy_from_slice(hi)` (memcpy: reads one vector, writes one);
//! - `baseline_add_f64`: a naive `for (a, h) in acc.iter_mut().zip(hi) { *a += *h }`, the
//!   same memory traffic as a reduction kernel (reads two vectors, writes one).
//!
//! A kernel "runs at memory speed" when it is as fast as `baseline_add_f64` at the sizes
//! that do not fit in the caches (the 16 MiB vectors; on the 2-core VM this was written
//! on, L2 is 2 MiB per core, the L3 is shared with the host and large).
//!
//! Throughput is the size of one vector (`acc`), the same for every kernel, so criterion's
//! GiB/s compare directly; the memory traffic is 3× that for the kernels and
//! `baseline_add_f64`, 2× for `baseline_copy_f64`.
//!
//! Run: `cargo bench -p pirun-benches --bench reduce_kernels` (about 60 s);
//! one kernel: `cargo bench -p pirun-benches --bench reduce_kernels -- sum_f64`;
//! the kernel and its baselines: `... -- 'sum_f64|baseline'`; all sums: `... -- sum`.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pirun_collectives::op::{
    fold_hi, fold_lo, BitXor, Loc, LogicalAnd, Max, Min, MinLoc, Prod, Sum, UserOp,
};

/// Vector sizes in bytes.
const SIZES: [(usize, &str); 4] = [
    (1 << 10, "1KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
    (16 << 20, "16MiB"),
];

/// Benchmarks `kernel(acc, hi)` at every size, with vectors made by `make(len, seed)`.
fn kernel<T: Copy>(
    c: &mut Criterion,
    name: &str,
    make: fn(usize, u64) -> Vec<T>,
    kernel: impl Fn(&mut [T], &[T]),
) {
    let mut g = c.benchmark_group(name);
    for (bytes, label) in SIZES {
        let n = bytes / std::mem::size_of::<T>();
        let mut acc = make(n, 1);
        let hi = make(n, 2);
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| kernel(black_box(&mut acc), black_box(&hi)))
        });
    }
    g.finish();
}

/// Values in [0, 1): sums grow slowly and stay far from overflow and subnormals.
fn f64s(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| (mix(i ^ seed) >> 11) as f64 / (1u64 << 53) as f64)
        .collect()
}

/// Exactly 1.0, so that repeated products neither overflow nor become subnormal.
fn ones(n: usize, _seed: u64) -> Vec<f64> {
    vec![1.0; n]
}

fn i32s(n: usize, seed: u64) -> Vec<i32> {
    (0..n as u64).map(|i| mix(i ^ seed) as i32).collect()
}

fn u64s(n: usize, seed: u64) -> Vec<u64> {
    (0..n as u64).map(|i| mix(i ^ seed)).collect()
}

fn locs(n: usize, seed: u64) -> Vec<Loc<f64, u64>> {
    f64s(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, v)| Loc::new(v, i as u64 ^ seed))
        .collect()
}

/// SplitMix64 finaliser (deterministic data).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn baselines(c: &mut Criterion) {
    kernel(c, "baseline_copy_f64", f64s, |acc, hi| {
        acc.copy_from_slice(hi)
    });
    kernel(c, "baseline_add_f64", f64s, |acc, hi| {
        for (a, h) in acc.iter_mut().zip(hi) {
            *a += *h;
        }
    });
}

fn sums(c: &mut Criterion) {
    kernel(c, "sum_f64", f64s, |acc, hi| fold_hi(&Sum, acc, hi));
    kernel(c, "sum_f64_lo", f64s, |acc, lo| fold_lo(&Sum, lo, acc));
    kernel(c, "sum_i32", i32s, |acc, hi| fold_hi(&Sum, acc, hi));
    kernel(c, "sum_u64", u64s, |acc, hi| fold_hi(&Sum, acc, hi));
    let add = UserOp::commutative(|a: f64, b: f64| a + b);
    kernel(c, "user_sum_f64", f64s, move |acc, hi| {
        fold_hi(&add, acc, hi)
    });
}

fn others(c: &mut Criterion) {
    kernel(c, "prod_f64", ones, |acc, hi| fold_hi(&Prod, acc, hi));
    kernel(c, "min_f64", f64s, |acc, hi| fold_hi(&Min, acc, hi));
    kernel(c, "max_f64", f64s, |acc, hi| fold_hi(&Max, acc, hi));
    kernel(c, "minloc_f64_u64", locs, |acc, hi| {
        fold_hi(&MinLoc, acc, hi)
    });
    kernel(c, "bxor_u64", u64s, |acc, hi| fold_hi(&BitXor, acc, hi));
    kernel(c, "land_i32", i32s, |acc, hi| fold_hi(&LogicalAnd, acc, hi));
}

criterion_group! { name = benches; config = common::config(20, 600); targets = baselines, sums, others }
criterion_main!(benches);
