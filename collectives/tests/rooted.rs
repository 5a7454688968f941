//! Barrier, broadcast, gather(v), scatter(v) and the serde-value collectives against
//! sequential references, for every algorithm, sizes 1..=17, several lengths and seeds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use pirun_collectives::algorithms;
use pirun_collectives::select::{BcastAlgorithm, GatherAlgorithm, ScatterAlgorithm};
use pirun_collectives::{Collectives, PointToPoint};

#[test]
fn barrier_waits_for_everyone() {
    with_timeout(60, || {
        for p in SIZES {
            for seed in SEEDS {
                let arrived = AtomicUsize::new(0);
                let seen = run("barrier", p, seed, |c| {
                    let mut seen = vec![];
                    for round in 1..=3 {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        c.barrier()?;
                        seen.push(arrived.load(Ordering::SeqCst) >= round * p);
                        c.barrier()?;
                    }
                    Ok(seen)
                });
                assert!(
                    seen.iter().flatten().all(|&ok| ok),
                    "{p} ranks, seed {seed}"
                );
            }
        }
    });
}

#[test]
fn bcast_every_algorithm() {
    with_timeout(120, || {
        for &alg in BcastAlgorithm::ALL {
            matrix(|p, len, seed| {
                let root = root_for(p, seed);
                let out = run(alg.name(), p, seed, |c| {
                    let mut buf = if c.rank() == root {
                        data(root, len)
                    } else {
                        vec![0; len]
                    };
                    algorithms::bcast(c, root, &mut buf, alg)?;
                    Ok(buf)
                });
                assert!(
                    out.iter().all(|b| *b == data(root, len)),
                    "{alg:?} {p} ranks len {len}"
                );
            });
        }
    });
}

#[test]
fn bcast_large_every_algorithm() {
    with_timeout(120, || {
        for &alg in BcastAlgorithm::ALL {
            for p in [3, 8] {
                let out = run(alg.name(), p, 5, |c| {
                    let mut buf = if c.rank() == 1 {
                        data(1, BIG)
                    } else {
                        vec![0; BIG]
                    };
                    algorithms::bcast(c, 1, &mut buf, alg)?;
                    Ok(buf == data(1, BIG))
                });
                assert!(out.iter().all(|&ok| ok), "{alg:?} {p} ranks");
            }
        }
    });
}

#[test]
fn bcast_auto_and_value() {
    with_timeout(60, || {
        matrix(|p, len, seed| {
            let root = root_for(p, seed);
            let out = run("bcast", p, seed, |c| {
                let mut buf = if c.rank() == root {
                    data(root, len)
                } else {
                    vec![0; len]
                };
                c.bcast(root, &mut buf)?;
                let v = c.bcast_value(
                    root,
                    (c.rank() == root).then(|| (format!("len {len}"), buf.clone())),
                )?;
                Ok((buf, v))
            });
            for (buf, (s, v)) in out {
                assert_eq!(buf, data(root, len));
                assert_eq!((s, v), (format!("len {len}"), data(root, len)));
            }
        });
    });
}

#[test]
fn gatherv_gather_and_values() {
    with_timeout(60, || {
        matrix(|p, len, seed| {
            let root = root_for(p, seed);
            // Rank r contributes (len + r) % 5 elements for len > 0, so lengths differ.
            let count = |r: usize| {
                if len == 0 {
                    0
                } else {
                    (len + 3 * r) % (len + 2)
                }
            };
            let out = run("gather", p, seed, |c| {
                let r = c.rank();
                let v = c.gatherv_with_counts(root, &data(r, count(r)))?;
                let g = c.gather(root, &data(r, len))?;
                let mut into = vec![0; len * p];
                c.gather_into(root, &data(r, len), (r == root).then_some(&mut into[..]))?;
                let s = c.gather_value(root, &format!("{r}:{}", count(r)))?;
                let work: Vec<Vec<u64>> = (0..p).map(|a| data(a, count(a))).collect();
                let sv = c.scatter_value(root, (r == root).then_some(&work[..]))?;
                assert_eq!(sv, data(r, count(r)), "scatter_value {p} ranks len {len}");
                Ok((v, g, into, s))
            });
            for (r, (v, g, into, s)) in out.into_iter().enumerate() {
                if r != root {
                    assert!(v.is_none() && g.is_none() && s.is_none());
                    continue;
                }
                let counts: Vec<usize> = (0..p).map(count).collect();
                let all: Vec<u64> = (0..p).flat_map(|a| data(a, count(a))).collect();
                assert_eq!(
                    v,
                    Some((all, counts.clone())),
                    "gatherv {p} ranks len {len}"
                );
                let eq: Vec<u64> = (0..p).flat_map(|a| data(a, len)).collect();
                assert_eq!(g.as_ref(), Some(&eq));
                assert_eq!(into, eq);
                let strs: Vec<String> = (0..p).map(|a| format!("{a}:{}", count(a))).collect();
                assert_eq!(s, Some(strs));
            }
        });
    });
}

#[test]
fn gather_and_scatter_every_algorithm() {
    with_timeout(120, || {
        for (&g, &s) in GatherAlgorithm::ALL.iter().zip(ScatterAlgorithm::ALL) {
            matrix(|p, len, seed| {
                let root = root_for(p, seed);
                let all: Vec<u64> = (0..p).flat_map(|a| data(a, len)).collect();
                let out = run(g.name(), p, seed, |c| {
                    let r = c.rank();
                    let mut gathered = vec![7; len * p];
                    let recv = (r == root).then_some(&mut gathered[..]);
                    algorithms::gather_into(c, root, &data(r, len), recv, g)?;
                    let mut mine = vec![7; len];
                    let send = (r == root).then_some(&all[..]);
                    algorithms::scatter_into(c, root, send, &mut mine, s)?;
                    Ok((gathered, mine))
                });
                assert_eq!(out[root].0, all, "{g:?} gather {p} ranks len {len}");
                for (r, (_, mine)) in out.into_iter().enumerate() {
                    assert_eq!(mine, data(r, len), "{s:?} scatter {p} ranks len {len}");
                }
            });
        }
    });
}

#[test]
fn large_gather_and_scatter_every_algorithm() {
    with_timeout(120, || {
        for (&g, &s) in GatherAlgorithm::ALL.iter().zip(ScatterAlgorithm::ALL) {
            for p in [3, 8] {
                let n = BIG / p;
                let all: Vec<u64> = (0..p).flat_map(|a| data(a, n)).collect();
                let out = run(g.name(), p, 5, |c| {
                    let r = c.rank();
                    let mut gathered = vec![0; n * p];
                    let recv = (r == 1).then_some(&mut gathered[..]);
                    algorithms::gather_into(c, 1, &data(r, n), recv, g)?;
                    let mut mine = vec![0; n];
                    algorithms::scatter_into(c, 1, (r == 1).then_some(&all[..]), &mut mine, s)?;
                    Ok((r != 1 || gathered == all) && mine == data(r, n))
                });
                assert!(out.iter().all(|&ok| ok), "{g:?} / {s:?} {p} ranks");
            }
        }
    });
}

#[test]
fn scatter_and_scatterv() {
    with_timeout(60, || {
        matrix(|p, len, seed| {
            let root = root_for(p, seed);
            let all: Vec<u64> = (0..p).flat_map(|a| data(a, len)).collect();
            let counts: Vec<usize> = (0..p).map(|a| (len + a) % (len + 1)).collect();
            let vall: Vec<u64> = (0..p).flat_map(|a| data(a, counts[a])).collect();
            let out = run("scatter", p, seed, |c| {
                let r = c.rank();
                let is_root = r == root;
                let s = c.scatter(root, is_root.then_some(&all[..]), len)?;
                let v = c.scatterv(root, is_root.then_some((&vall[..], &counts[..])))?;
                let mut into = vec![0; counts[r]];
                c.scatterv_into(root, is_root.then_some((&vall[..], &counts[..])), &mut into)?;
                Ok((s, v, into))
            });
            for (r, (s, v, into)) in out.into_iter().enumerate() {
                assert_eq!(s, data(r, len), "scatter {p} ranks len {len} rank {r}");
                assert_eq!(
                    v,
                    data(r, counts[r]),
                    "scatterv {p} ranks len {len} rank {r}"
                );
                assert_eq!(into, v);
            }
        });
    });
}
