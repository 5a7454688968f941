//! Cost of the 40-byte frame header (`pirun::frame`): `Header::encode` and the validating
//! `Header::decode`, on headers it accepts and on each kind it rejects (bad magic, reserved
//! bits, negative tag, an eager length above the limit). Every message pays one encode on
//! the sender and one decode on the receiver, rendezvous messages three of each.
//!
//! Figures are per header (criterion's `elem/s` is headers per second). The single-header
//! benches include the cost of `black_box` around one call; `encode/stream` and
//! `decode/stream` encode into / decode from 1024 different valid headers laid out back
//! to back, as a send queue or receive buffer holds them, so the branch predictor does not
//! see the same header every time: those are the per-header costs to quote.
//!
//! Run: `cargo bench -p pirun-benches --bench frame` (about 15 s);
//! one group: `cargo bench -p pirun-benches --bench frame -- decode`.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pirun::frame::{Header, Kind, Limits, EAGER_HARD_MAX, FLAG_SERDE, HEADER_LEN};

/// A typical eager header: a serde value of 4 KiB on context 3, tag 42.
fn eager() -> Header {
    let mut h = Header::new(Kind::Eager);
    h.flags = FLAG_SERDE;
    h.ctx = 3;
    h.tag = 42;
    h.type_sig = 0x9e37_79b9;
    h.elem_size = 8;
    h.len = 4096;
    h
}

/// A ready-to-send header announcing 64 MiB.
fn rts() -> Header {
    let mut h = eager();
    h.kind = Kind::Rts;
    h.flags = 0;
    h.len = 64 << 20;
    h.id = 0x0123_4567_89ab_cdef;
    h
}

/// 1024 valid headers of every kind, with varied fields.
fn stream() -> Vec<[u8; HEADER_LEN]> {
    let kinds = [Kind::Eager, Kind::Rts, Kind::Cts, Kind::Data, Kind::Goodbye];
    (0..1024u32)
        .map(|i| {
            let kind = kinds[(i.wrapping_mul(2_654_435_761) >> 29) as usize % kinds.len()];
            let mut h = Header::new(kind);
            h.ctx = i % 7;
            h.tag = (i * 31 % 1000) as i32;
            h.type_sig = i.wrapping_mul(0x0100_0193);
            h.elem_size = [0, 1, 4, 8][i as usize % 4];
            h.len = match kind {
                Kind::Eager => u64::from(i) * 61 % EAGER_HARD_MAX,
                Kind::Rts | Kind::Data => u64::from(i) << 16,
                Kind::Cts | Kind::Goodbye => 0,
            };
            h.id = if kind == Kind::Eager { 0 } else { u64::from(i) };
            h.encode()
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    for (name, h) in [("eager", eager()), ("rts", rts())] {
        g.bench_function(name, |b| b.iter(|| black_box(black_box(h).encode())));
    }

    let limits = Limits::default();
    let headers: Vec<Header> = stream()
        .iter()
        .map(|b| Header::decode(b, &limits).expect("stream() makes valid headers"))
        .collect();
    let mut out = vec![[0u8; HEADER_LEN]; headers.len()];
    g.throughput(Throughput::Elements(headers.len() as u64));
    g.bench_function("stream", |b| {
        b.iter(|| {
            for (o, h) in out.iter_mut().zip(black_box(&headers)) {
                *o = h.encode();
            }
            black_box(&mut out);
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));

    let accepted = [("eager", eager().encode()), ("rts", rts().encode())];
    for (name, bytes) in accepted {
        assert!(
            Header::decode(&bytes, &limits).is_ok(),
            "{name} must decode"
        );
        g.bench_function(name, |b| {
            b.iter(|| black_box(Header::decode(black_box(&bytes), &limits)))
        });
    }

    let good = eager().encode();
    let mut bad_magic = good;
    bad_magic[0] = 0x47;
    let mut reserved = good;
    reserved[21] = 1;
    let mut negative_tag = good;
    negative_tag[8..12].copy_from_slice(&(-5i32).to_le_bytes());
    let mut too_long = good;
    too_long[24..32].copy_from_slice(&(EAGER_HARD_MAX + 1).to_le_bytes());
    let rejected = [
        ("rejected_bad_magic", bad_magic),
        ("rejected_reserved", reserved),
        ("rejected_negative_tag", negative_tag),
        ("rejected_too_long", too_long),
    ];
    for (name, bytes) in rejected {
        assert!(Header::decode(&bytes, &limits).is_err(), "{name} must fail");
        g.bench_function(name, |b| {
            b.iter(|| black_box(Header::decode(black_box(&bytes), &limits)))
        });
    }

    let headers = stream();
    assert!(headers.iter().all(|b| Header::decode(b, &limits).is_ok()));
    g.throughput(Throughput::Elements(headers.len() as u64));
    g.bench_function("stream", |b| {
        b.iter(|| {
            let mut total = 0u64;
            for bytes in black_box(&headers) {
                if let Ok(h) = Header::decode(bytes, &limits) {
                    total = total.wrapping_add(h.len);
                }
            }
            black_box(total)
        })
    });
    g.finish();
}

criterion_group! { name = benches; config = common::config(20, 1000); targets = encode, decode }
criterion_main!(benches);
