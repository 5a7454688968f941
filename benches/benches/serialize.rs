//! The serde path against the raw-`Pod` path: what turning values into payload bytes and
//! back costs the runtime, per message, before and after the socket.
//!
//! The runtime (`runtime/src/comm.rs`, private functions named here) does:
//! - `Communicator::send::<T: Pod>`: `bytemuck::cast_slice::<T, u8>` of the caller's slice,
//!   written to the socket as it is (no copy, no allocation) → bench `pod_cast`;
//! - `recv::<T>` reads into a buffer aligned for `T` and hands it over as the `Vec<T>`
//!   without a copy; `recv_into` casts the caller's `&mut [T]` to bytes. When the alignment
//!   guess is wrong `into_vec` copies once → bench `pod_copy` (one `to_vec` of the bytes:
//!   the worst case of the Pod path and the memory-speed reference);
//! - `send_value` / `recv_value`: `postcard::to_stdvec` (private `encode`) and
//!   `postcard::from_bytes` (private `decode`) of the value → benches `postcard_encode`,
//!   `postcard_decode`;
//! - every send and receive also computes the type signature, FNV-1a of
//!   `std::any::type_name::<T>()` (`pirun::type_signature`, the runtime's own function) →
//!   group `type_signature` (the name is hidden from the optimiser, so this is an upper
//!   bound: in the runtime the name is a constant and the hash may fold away).
//!
//! Payloads are 8 B … 1 MiB of `u64` (values spread over every magnitude, so postcard's
//! varints take 1–10 bytes), `f64` (fixed 8 bytes in postcard), and a 64-byte
//! `Particle` struct (`[f64; 3]` ×2, `f64`, `u64`). Throughput is the raw size of the
//! values (`n * size_of::<T>()`), the same for every path, so the GiB/s compare directly.
//!
//! Run: `cargo bench -p pirun-benches --bench serialize` (about 50 s);
//! one element type: `cargo bench -p pirun-benches --bench serialize -- f64/`;
//! one path: `... -- postcard_decode`.

mod common;

use std::hint::black_box;

use bytemuck::{Pod, Zeroable};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A plain struct of the kind a simulation sends: 64 bytes, no padding.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable, Serialize, Deserialize)]
#[repr(C)]
struct Particle {
    pos: [f64; 3],
    vel: [f64; 3],
    mass: f64,
    id: u64,
}

/// Payload sizes in bytes.
const SIZES: [(usize, &str); 4] = [
    (8, "8B"),
    (512, "512B"),
    (32 << 10, "32KiB"),
    (1 << 20, "1MiB"),
];

fn u64s(n: usize) -> Vec<u64> {
    (0..n as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 64))
        .collect()
}

fn f64s(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 0.1 - 7.0).collect()
}

fn particles(n: usize) -> Vec<Particle> {
    (0..n)
        .map(|i| {
            let x = i as f64;
            Particle {
                pos: [x, x * 0.5, -x],
                vel: [0.1, -0.2, x * 1e-3],
                mass: 1.0 + x,
                id: i as u64,
            }
        })
        .collect()
}

/// The four paths for one element type, at every size.
fn paths<T>(c: &mut Criterion, ty: &str, make: fn(usize) -> Vec<T>)
where
    T: Pod + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let mut g = c.benchmark_group(ty);
    for (bytes, label) in SIZES {
        let n = (bytes / std::mem::size_of::<T>()).max(1);
        let values = make(n);
        let raw = n * std::mem::size_of::<T>();
        g.throughput(Throughput::Bytes(raw as u64));

        let encoded = postcard::to_stdvec(&values).expect("postcard encodes a Vec");
        let decoded: Vec<T> = postcard::from_bytes(&encoded).expect("postcard round trip");
        assert_eq!(decoded, values);

        g.bench_function(BenchmarkId::new("postcard_encode", label), |b| {
            b.iter(|| postcard::to_stdvec(black_box(&values)).expect("encode"))
        });
        g.bench_function(BenchmarkId::new("postcard_decode", label), |b| {
            b.iter(|| postcard::from_bytes::<Vec<T>>(black_box(&encoded)).expect("decode"))
        });
        g.bench_function(BenchmarkId::new("pod_cast", label), |b| {
            b.iter(|| black_box(bytemuck::cast_slice::<T, u8>(black_box(&values))))
        });
        g.bench_function(BenchmarkId::new("pod_copy", label), |b| {
            b.iter(|| bytemuck::cast_slice::<T, u8>(black_box(&values)).to_vec())
        });
    }
    g.finish();
}

fn serde_vs_pod(c: &mut Criterion) {
    paths(c, "u64", u64s);
    paths(c, "f64", f64s);
    paths(c, "particle", particles);
}

fn type_signature(c: &mut Criterion) {
    let mut g = c.benchmark_group("type_signature");
    g.throughput(Throughput::Elements(1));
    for name in [
        std::any::type_name::<f64>(),
        std::any::type_name::<Particle>(),
    ] {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| pirun::type_signature(black_box(name)))
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::config(20, 500); targets = serde_vs_pod, type_signature }
criterion_main!(benches);
