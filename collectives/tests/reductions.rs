//! Reduce, allreduce, reduce-scatter, scan and exscan against sequential references, for
//! every algorithm, sizes 1..=17, several lengths and seeds, with a commutative and a
//! non-commutative operation; floating-point allreduce must be bit-identical on all ranks.

mod common;

use common::*;
use pirun_collectives::algorithms;
use pirun_collectives::op::{Loc, MaxLoc, Op, Sum, UserOp};
use pirun_collectives::select::{AllreduceAlgorithm, ReduceAlgorithm, ReduceScatterAlgorithm};
use pirun_collectives::{Collectives, PointToPoint};

/// Composition of affine maps `x -> a*x + b` (mod 2^64): associative, not commutative.
fn affine() -> UserOp<impl Fn([u64; 2], [u64; 2]) -> [u64; 2] + Sync + Copy> {
    UserOp::non_commutative(|f: [u64; 2], g: [u64; 2]| {
        [
            f[0].wrapping_mul(g[0]),
            f[1].wrapping_mul(g[0]).wrapping_add(g[1]),
        ]
    })
}

fn affine_data(rank: usize, len: usize) -> Vec<[u64; 2]> {
    (0..len)
        .map(|i| [val(rank, i) | 1, val(rank + 100, i)])
        .collect()
}

/// Element-wise `x0 ∘ x1 ∘ … ∘ x(k-1)` of `data(0..k)`.
fn reference<T: Copy>(k: usize, data: impl Fn(usize) -> Vec<T>, op: &impl Op<T>) -> Vec<T> {
    (1..k).fold(data(0), |mut acc, r| {
        for (a, b) in acc.iter_mut().zip(data(r)) {
            *a = op.combine(*a, b);
        }
        acc
    })
}

#[test]
fn reduce_every_algorithm() {
    with_timeout(120, || {
        for &alg in ReduceAlgorithm::ALL {
            matrix(|p, len, seed| {
                let root = root_for(p, seed);
                let out = run(alg.name(), p, seed, |c| {
                    let mut s = data(c.rank(), len);
                    algorithms::reduce(c, root, &mut s, Sum, alg)?;
                    let mut a = affine_data(c.rank(), len);
                    algorithms::reduce(c, root, &mut a, affine(), alg)?;
                    // Separate buffers: the root's output starts poisoned, the input stays.
                    let input = affine_data(c.rank(), len);
                    let mut into = vec![[7, 7]; len];
                    let recv = (c.rank() == root).then_some(&mut into[..]);
                    algorithms::reduce_into(c, root, &input, recv, affine(), alg)?;
                    assert_eq!(input, affine_data(c.rank(), len));
                    Ok((s, a, into))
                });
                let (s, a, into) = &out[root];
                assert_eq!(a, into, "{alg:?} reduce_into {p} ranks len {len}");
                assert_eq!(
                    *s,
                    reference(p, |r| data(r, len), &Sum),
                    "{alg:?} sum {p} ranks len {len}"
                );
                assert_eq!(
                    *a,
                    reference(p, |r| affine_data(r, len), &affine()),
                    "{alg:?} affine {p} ranks len {len}"
                );
            });
        }
    });
}

fn bits(f: &[f64]) -> Vec<u64> {
    f.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn allreduce_every_algorithm() {
    with_timeout(120, || {
        for &alg in AllreduceAlgorithm::ALL {
            matrix(|p, len, seed| {
                let out = run(alg.name(), p, seed, |c| {
                    let mut s = data(c.rank(), len);
                    algorithms::allreduce(c, &mut s, Sum, alg)?;
                    let mut a = affine_data(c.rank(), len);
                    algorithms::allreduce(c, &mut a, affine(), alg)?;
                    let mut f: Vec<f64> = (0..len)
                        .map(|i| 1.0 / (1.0 + (c.rank() * 31 + i) as f64))
                        .collect();
                    let input = f.clone();
                    algorithms::allreduce(c, &mut f, Sum, alg)?;
                    // Separate buffers give the very same bits, and leave the input alone.
                    let mut into = vec![f64::NAN; len];
                    algorithms::allreduce_into(c, &input, &mut into, Sum, alg)?;
                    assert_eq!(bits(&into), bits(&f), "{alg:?} allreduce_into");
                    let ainput = affine_data(c.rank(), len);
                    let mut ainto = vec![[7, 7]; len];
                    algorithms::allreduce_into(c, &ainput, &mut ainto, affine(), alg)?;
                    assert_eq!(ainto, a, "{alg:?} allreduce_into affine");
                    assert_eq!(ainput, affine_data(c.rank(), len));
                    Ok((s, a, f))
                });
                let sum = reference(p, |r| data(r, len), &Sum);
                let aff = reference(p, |r| affine_data(r, len), &affine());
                for (s, a, f) in &out {
                    assert_eq!(*s, sum, "{alg:?} sum {p} ranks len {len}");
                    assert_eq!(*a, aff, "{alg:?} affine {p} ranks len {len}");
                    assert_eq!(
                        bits(f),
                        bits(&out[0].2),
                        "{alg:?} float bits differ, {p} ranks len {len}"
                    );
                }
                let fref = reference(
                    p,
                    |r| {
                        (0..len)
                            .map(|i| 1.0 / (1.0 + (r * 31 + i) as f64))
                            .collect()
                    },
                    &Sum,
                );
                assert!(out[0]
                    .2
                    .iter()
                    .zip(&fref)
                    .all(|(x, y)| (x - y).abs() <= 1e-12 * y.abs()));
            });
        }
    });
}

#[test]
fn allreduce_large_and_auto() {
    with_timeout(120, || {
        for &alg in AllreduceAlgorithm::ALL {
            let p = 6;
            let out = run(alg.name(), p, 3, |c| {
                let mut s = data(c.rank(), BIG);
                algorithms::allreduce(c, &mut s, Sum, alg)?;
                Ok(s)
            });
            let sum = reference(p, |r| data(r, BIG), &Sum);
            assert!(out.iter().all(|s| *s == sum), "{alg:?}");
        }
        matrix(|p, len, seed| {
            let out = run("allreduce", p, seed, |c| {
                let r = c.rank();
                let locs: Vec<Loc<u64, u64>> = (0..len)
                    .map(|i| Loc::new(val(r, i) % 5, r as u64))
                    .collect();
                let m = c.allreduce(&locs, MaxLoc)?;
                let mut into = vec![0; len];
                c.allreduce_into(&data(r, len), &mut into, Sum)?;
                let mut inplace = data(r, len);
                c.allreduce_in_place(&mut inplace, Sum)?;
                let red = c.reduce(p - 1, &data(r, len), Sum)?;
                let mut rin = data(r, len);
                c.reduce_in_place(0, &mut rin, Sum)?;
                Ok((m, into, inplace, red, rin))
            });
            let sum = reference(p, |r| data(r, len), &Sum);
            let mref = reference(
                p,
                |r| {
                    (0..len)
                        .map(|i| Loc::new(val(r, i) % 5, r as u64))
                        .collect()
                },
                &MaxLoc,
            );
            for (r, (m, into, inplace, red, rin)) in out.into_iter().enumerate() {
                assert_eq!(m, mref);
                assert_eq!(into, sum);
                assert_eq!(inplace, sum);
                assert_eq!(red, (r == p - 1).then(|| sum.clone()));
                assert_eq!(
                    rin,
                    if r == 0 { sum.clone() } else { data(r, len) },
                    "reduce_in_place leaves non-roots alone"
                );
            }
        });
    });
}

#[test]
fn reduce_scatter_block_every_algorithm() {
    with_timeout(120, || {
        for &alg in ReduceScatterAlgorithm::ALL {
            matrix(|p, len, seed| {
                let k = len.min(300);
                let out = run(alg.name(), p, seed, |c| {
                    let mut s = data(c.rank(), k * p);
                    algorithms::reduce_scatter_block(c, &mut s, Sum, alg)?;
                    s.truncate(k);
                    let mut a = affine_data(c.rank(), k * p);
                    algorithms::reduce_scatter_block(c, &mut a, affine(), alg)?;
                    a.truncate(k);
                    let auto = c.reduce_scatter_block(&data(c.rank(), k * p), Sum)?;
                    Ok((s, a, auto))
                });
                let sum = reference(p, |r| data(r, k * p), &Sum);
                let aff = reference(p, |r| affine_data(r, k * p), &affine());
                for (r, (s, a, auto)) in out.into_iter().enumerate() {
                    assert_eq!(s, sum[r * k..(r + 1) * k], "{alg:?} {p} ranks k {k}");
                    assert_eq!(a, aff[r * k..(r + 1) * k], "{alg:?} affine {p} ranks k {k}");
                    assert_eq!(auto, s);
                }
            });
        }
    });
}

#[test]
fn reduce_scatter_with_counts() {
    with_timeout(120, || {
        matrix(|p, len, seed| {
            // Uneven blocks, some empty: rank r gets (r + seed) % 3 * len / 2 elements.
            let counts: Vec<usize> = (0..p).map(|r| (r + seed as usize) % 3 * len / 2).collect();
            let total: usize = counts.iter().sum();
            let out = run("reduce_scatter", p, seed, |c| {
                let s = c.reduce_scatter(&data(c.rank(), total), &counts, Sum)?;
                let mut a = vec![[7, 7]; counts[c.rank()]];
                c.reduce_scatter_into(&affine_data(c.rank(), total), &counts, &mut a, affine())?;
                Ok((s, a))
            });
            let sum = reference(p, |r| data(r, total), &Sum);
            let aff = reference(p, |r| affine_data(r, total), &affine());
            let mut at = 0;
            for (r, (s, a)) in out.into_iter().enumerate() {
                let block = at..at + counts[r];
                assert_eq!(s, sum[block.clone()], "{p} ranks counts {counts:?}");
                assert_eq!(a, aff[block], "affine {p} ranks counts {counts:?}");
                at += counts[r];
            }
        });
    });
}

#[test]
fn reduce_scatter_counts_that_do_not_fit_are_errors() {
    with_timeout(30, || {
        let out = run("reduce_scatter", 3, 1, |c| {
            let short = c.reduce_scatter(&[1u32, 2, 3], &[1, 1], Sum).unwrap_err();
            let sum = c
                .reduce_scatter(&[1u32, 2, 3], &[1, 1, 2], Sum)
                .unwrap_err();
            let mut wrong = [0u32; 2];
            let recv = c
                .reduce_scatter_into(&[1u32, 2, 3], &[1, 1, 1], &mut wrong, Sum)
                .unwrap_err();
            Ok([short, sum, recv].map(|e| e.to_string()))
        });
        for (r, [short, sum, recv]) in out.into_iter().enumerate() {
            assert!(
                short.contains("counts (one per rank) has 2 elements, expected 3"),
                "{short}"
            );
            assert!(
                sum.contains("the send buffer (the sum of counts) has 3 elements, expected 4"),
                "{sum}"
            );
            assert!(
                recv.contains(&format!("rank {r}")) && recv.contains("receive buffer"),
                "{recv}"
            );
        }
    });
}

#[test]
fn scan_and_exscan() {
    with_timeout(60, || {
        matrix(|p, len, seed| {
            let out = run("scan", p, seed, |c| {
                let r = c.rank();
                let s = c.scan(&data(r, len), Sum)?;
                let a = c.scan(&affine_data(r, len), affine())?;
                let e = c.exscan(&affine_data(r, len), affine())?;
                let mut ein = data(r, len);
                c.exscan_in_place(&mut ein, Sum)?;
                Ok((s, a, e, ein))
            });
            for (r, (s, a, e, ein)) in out.into_iter().enumerate() {
                assert_eq!(
                    s,
                    reference(r + 1, |q| data(q, len), &Sum),
                    "scan {p} ranks len {len} rank {r}"
                );
                assert_eq!(
                    a,
                    reference(r + 1, |q| affine_data(q, len), &affine()),
                    "scan affine rank {r}"
                );
                assert_eq!(
                    e,
                    (r > 0).then(|| reference(r, |q| affine_data(q, len), &affine())),
                    "exscan rank {r}"
                );
                let ex = if r == 0 {
                    data(0, len)
                } else {
                    reference(r, |q| data(q, len), &Sum)
                };
                assert_eq!(ein, ex);
            }
        });
    });
}
