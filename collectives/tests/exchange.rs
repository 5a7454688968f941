//! Allgather(v) and alltoall(v) against sequential references, for every algorithm,
//! sizes 1..=17, several lengths and seeds.

mod common;

use common::*;
use pirun_collectives::algorithms;
use pirun_collectives::select::{AllgatherAlgorithm, AlltoallAlgorithm};
use pirun_collectives::{Collectives, PointToPoint};

/// A count that differs between ranks (and is 0 for some).
fn count(len: usize, r: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 5 * r) % (len + 3)
    }
}

#[test]
fn allgather_every_algorithm() {
    with_timeout(120, || {
        for &alg in AllgatherAlgorithm::ALL {
            matrix(|p, len, seed| {
                let out = run(alg.name(), p, seed, |c| {
                    let r = c.rank();
                    let mut all = vec![0; len * p];
                    algorithms::allgather_into(c, &data(r, len), &mut all, alg)?;
                    let v = algorithms::allgatherv(c, &data(r, count(len, r)), alg)?;
                    Ok((all, v))
                });
                let eq: Vec<u64> = (0..p).flat_map(|a| data(a, len)).collect();
                let counts: Vec<usize> = (0..p).map(|a| count(len, a)).collect();
                let var: Vec<u64> = (0..p).flat_map(|a| data(a, counts[a])).collect();
                for (all, v) in out {
                    assert_eq!(all, eq, "{alg:?} {p} ranks len {len}");
                    assert_eq!(
                        v,
                        (var.clone(), counts.clone()),
                        "{alg:?} v {p} ranks len {len}"
                    );
                }
            });
        }
    });
}

#[test]
fn allgather_large_every_algorithm() {
    with_timeout(120, || {
        for &alg in AllgatherAlgorithm::ALL {
            for p in [4, 5] {
                let n = BIG / p;
                let out = run(alg.name(), p, 9, |c| {
                    let mut all = vec![0; n * p];
                    algorithms::allgather_into(c, &data(c.rank(), n), &mut all, alg)?;
                    Ok(all)
                });
                let eq: Vec<u64> = (0..p).flat_map(|a| data(a, n)).collect();
                assert!(out.iter().all(|a| *a == eq), "{alg:?} {p} ranks");
            }
        }
    });
}

#[test]
fn allgather_auto_variants() {
    with_timeout(60, || {
        matrix(|p, len, seed| {
            let counts: Vec<usize> = (0..p).map(|a| count(len, a)).collect();
            let out = run("allgather", p, seed, |c| {
                let r = c.rank();
                let all = c.allgather(&data(r, len))?;
                let mut inplace = vec![0; len * p];
                inplace[r * len..(r + 1) * len].copy_from_slice(&data(r, len));
                c.allgather_in_place(&mut inplace)?;
                let v = c.allgatherv(&data(r, counts[r]))?;
                let mut vin = vec![0; counts.iter().sum()];
                c.allgatherv_into(&data(r, counts[r]), &mut vin, &counts)?;
                let vals = c.allgather_value(&(r, format!("{len}")))?;
                Ok((all, inplace, v, vin, vals))
            });
            let eq: Vec<u64> = (0..p).flat_map(|a| data(a, len)).collect();
            let var: Vec<u64> = (0..p).flat_map(|a| data(a, counts[a])).collect();
            let vals: Vec<(usize, String)> = (0..p).map(|a| (a, format!("{len}"))).collect();
            for (all, inplace, v, vin, vs) in out {
                assert_eq!(all, eq);
                assert_eq!(inplace, eq);
                assert_eq!(v, var);
                assert_eq!(vin, var);
                assert_eq!(vs, vals);
            }
        });
    });
}

/// Element `j` of the block rank `from` sends to rank `to`.
fn cell(from: usize, to: usize, j: usize) -> u64 {
    val(from * 1000 + to, j)
}

#[test]
fn alltoall_every_algorithm() {
    with_timeout(120, || {
        for &alg in AlltoallAlgorithm::ALL {
            matrix(|p, len, seed| {
                let k = len.min(200);
                let out = run(alg.name(), p, seed, |c| {
                    let r = c.rank();
                    let send: Vec<u64> = (0..p)
                        .flat_map(|to| (0..k).map(move |j| cell(r, to, j)))
                        .collect();
                    let mut recv = vec![0; k * p];
                    algorithms::alltoall_into(c, &send, &mut recv, alg)?;
                    Ok(recv)
                });
                for (r, recv) in out.into_iter().enumerate() {
                    let exp: Vec<u64> = (0..p)
                        .flat_map(|from| (0..k).map(move |j| cell(from, r, j)))
                        .collect();
                    assert_eq!(recv, exp, "{alg:?} {p} ranks k {k} rank {r}");
                }
            });
        }
    });
}

#[test]
fn alltoallv_and_auto() {
    with_timeout(60, || {
        matrix(|p, len, seed| {
            let k = len.min(200);
            let cnt = |from: usize, to: usize| {
                if k == 0 {
                    0
                } else {
                    (from + 2 * to + k) % (k + 2)
                }
            };
            let out = run("alltoallv", p, seed, |c| {
                let r = c.rank();
                let send_counts: Vec<usize> = (0..p).map(|to| cnt(r, to)).collect();
                let send: Vec<u64> = (0..p)
                    .flat_map(|to| (0..cnt(r, to)).map(move |j| cell(r, to, j)))
                    .collect();
                let v = c.alltoallv(&send, &send_counts)?;
                let recv_counts: Vec<usize> = (0..p).map(|from| cnt(from, r)).collect();
                let mut vin = vec![0; recv_counts.iter().sum()];
                c.alltoallv_into(&send, &send_counts, &mut vin, &recv_counts)?;
                let eq: Vec<u64> = (0..p)
                    .flat_map(|to| (0..k).map(move |j| cell(r, to, j)))
                    .collect();
                let a = c.alltoall(&eq)?;
                Ok((v, vin, a))
            });
            for (r, (v, vin, a)) in out.into_iter().enumerate() {
                let counts: Vec<usize> = (0..p).map(|from| cnt(from, r)).collect();
                let exp: Vec<u64> = (0..p)
                    .flat_map(|from| (0..cnt(from, r)).map(move |j| cell(from, r, j)))
                    .collect();
                assert_eq!(
                    v,
                    (exp.clone(), counts),
                    "alltoallv {p} ranks k {k} rank {r}"
                );
                assert_eq!(vin, exp);
                let eq: Vec<u64> = (0..p)
                    .flat_map(|from| (0..k).map(move |j| cell(from, r, j)))
                    .collect();
                assert_eq!(a, eq);
            }
        });
    });
}
