//! Every collective operation run as real processes under `pirun`, checked against a
//! sequential reference that each rank computes for itself (every rank's contribution is
//! a deterministic function of (rank, index)), plus the error cases: invalid roots,
//! scatterv counts that do not add up, a rank that dies in the middle of a collective,
//! and ranks that call different collectives.
//!
//! Each test is its own rank program (see `common::scenario`); most operations are batched
//! into one job per communicator size to keep the file fast. Every launch is bounded by
//! the harness's hard timeout, and the error scenarios also by an in-rank watchdog, so a
//! hang turns into a failure that says where it hung.

mod common;

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{assert_ok, scenario_with, stderr};
use pirun::op::{Max, Min, Sum, UserOp};
use pirun::select::{
    AllgatherAlgorithm, AllreduceAlgorithm, AlltoallAlgorithm, BcastAlgorithm, GatherAlgorithm,
    Placement, ReduceAlgorithm, ReduceScatterAlgorithm, ScatterAlgorithm,
};
use pirun::{CollectiveError, Collectives, Communicator, Error, PointToPoint};

// ---------------------------------------------------------------------------------------
// Deterministic contributions and sequential references
// ---------------------------------------------------------------------------------------

/// Payload sizes (elements) every operation runs with, on every size.
const COUNTS: [usize; 4] = [0, 1, 7, 4099];
/// 4 MiB of `u64`.
const BIG: usize = (4 << 20) / 8;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Element `i` of what rank `r` contributes to the operation salted `salt`.
fn val(salt: u64, r: usize, i: usize) -> u64 {
    mix((salt << 56) ^ ((r as u64) << 40) ^ i as u64)
}

fn vals(salt: u64, r: usize, n: usize) -> Vec<u64> {
    (0..n).map(|i| val(salt, r, i)).collect()
}

/// Element `i` of the block that rank `from` sends to rank `to`.
fn pair(salt: u64, from: usize, to: usize, i: usize) -> u64 {
    val(salt, from, (to << 24) | i)
}

/// An affine map `x -> a*x + b` (mod 2^64): composition is associative, not commutative.
type Aff = [u64; 2];

fn aff(salt: u64, r: usize, i: usize) -> Aff {
    [val(salt, r, i) | 1, val(salt ^ 0x55, r, i)]
}

fn affs(salt: u64, r: usize, n: usize) -> Vec<Aff> {
    (0..n).map(|i| aff(salt, r, i)).collect()
}

/// `a` then `b`.
fn compose(a: Aff, b: Aff) -> Aff {
    [
        a[0].wrapping_mul(b[0]),
        a[1].wrapping_mul(b[0]).wrapping_add(b[1]),
    ]
}

fn affop() -> UserOp<fn(Aff, Aff) -> Aff> {
    UserOp::non_commutative(compose as fn(Aff, Aff) -> Aff)
}

const ID: Aff = [1, 0];

/// A float of widely varying magnitude, so that the order of summation shows in the bits.
fn fval(salt: u64, r: usize, i: usize) -> f64 {
    let unit = (val(salt, r, i) >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    unit * [1.0, 1e-9, 1e9, 3.0][r % 4]
}

/// Element-wise fold of `f(q, i)` over ranks `qs`, in order.
fn fold<T: Copy>(
    n: usize,
    qs: std::ops::Range<usize>,
    init: T,
    f: impl Fn(usize, usize) -> T,
    op: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut acc = vec![init; n];
    for q in qs {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = op(*a, f(q, i));
        }
    }
    acc
}

fn wsum(n: usize, qs: std::ops::Range<usize>, f: impl Fn(usize, usize) -> u64) -> Vec<u64> {
    fold(n, qs, 0u64, f, u64::wrapping_add)
}

/// How many elements rank `r` contributes to the `v` operations for payload `n`: zero on
/// every third rank, different on the others.
fn vlen(r: usize, n: usize) -> usize {
    if n == 0 || r % 3 == 1 {
        0
    } else {
        n + r
    }
}

/// What rank `r` sends to rank `j` in an alltoallv with payload `n`.
fn a2a_count(r: usize, j: usize, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 3 * r + j) % (n + 2)
    }
}

/// Fails with the first difference, not a dump of megabytes.
#[track_caller]
fn check<T: PartialEq + Debug>(what: impl std::fmt::Display, got: &[T], want: &[T]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: got {} elements, want {}",
        got.len(),
        want.len()
    );
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at element {i} of {}: got {:?}, want {:?}",
            got.len(),
            got[i],
            want[i]
        );
    }
}

/// `Some` on the root, `None` elsewhere.
#[track_caller]
fn root_only<T>(
    what: impl std::fmt::Display,
    w: &Communicator,
    root: usize,
    x: Option<T>,
) -> Option<T> {
    assert_eq!(
        x.is_some(),
        w.rank() == root,
        "{what}: rank {} got Some on a non-root or None on the root {root}",
        w.rank()
    );
    x
}

// ---------------------------------------------------------------------------------------
// The operations, each checked against the reference
// ---------------------------------------------------------------------------------------

/// Runs every collective with payload `n` (roots vary with `k`) and checks the results.
fn every_op(w: &Communicator, n: usize, k: usize) -> pirun::Result<()> {
    let (p, r) = (w.size(), w.rank());
    let root = (3 * k + 1) % p;
    let at = |what: &str| format!("rank {r}/{p}, n={n}, root={root}: {what}");
    let salt = 16 * k as u64;

    w.barrier()?;

    // bcast: u64, u8 of an odd length, in place.
    let mut buf = if r == root {
        vals(salt, root, n)
    } else {
        vec![0; n]
    };
    w.bcast(root, &mut buf)?;
    check(at("bcast u64"), &buf, &vals(salt, root, n));
    let mut bytes: Vec<u8> = if r == root {
        (0..3 * n + 1).map(|i| (i * 7 + root) as u8).collect()
    } else {
        vec![0; 3 * n + 1]
    };
    w.bcast(root, &mut bytes)?;
    check(
        at("bcast u8"),
        &bytes,
        &(0..3 * n + 1)
            .map(|i| (i * 7 + root) as u8)
            .collect::<Vec<_>>(),
    );

    // reduce: wrapping Sum, Max, Min on i64, a non-commutative op in rank order.
    let mine = vals(salt + 1, r, n);
    let sum = wsum(n, 0..p, |q, i| val(salt + 1, q, i));
    if let Some(got) = root_only("reduce", w, root, w.reduce(root, &mine, Sum)?) {
        check(at("reduce Sum"), &got, &sum);
    }
    let max = fold(n, 0..p, 0, |q, i| val(salt + 1, q, i), u64::max);
    if let Some(got) = root_only("reduce", w, root, w.reduce(root, &mine, Max)?) {
        check(at("reduce Max"), &got, &max);
    }
    let signed: Vec<i64> = mine.iter().map(|&x| x as i64).collect();
    let min = fold(
        n,
        0..p,
        i64::MAX,
        |q, i| val(salt + 1, q, i) as i64,
        i64::min,
    );
    if let Some(got) = root_only("reduce", w, root, w.reduce(root, &signed, Min)?) {
        check(at("reduce Min i64"), &got, &min);
    }
    let my_aff = affs(salt + 2, r, n);
    let chain = fold(n, 0..p, ID, |q, i| aff(salt + 2, q, i), compose);
    if let Some(got) = root_only("reduce", w, root, w.reduce(root, &my_aff, affop())?) {
        check(at("reduce non-commutative UserOp"), &got, &chain);
    }
    let mut into = vec![0u64; n];
    w.reduce_into(root, &mine, (r == root).then_some(&mut into[..]), Sum)?;
    if r == root {
        check(at("reduce_into Sum"), &into, &sum);
    }
    let mut inplace = mine.clone();
    w.reduce_in_place(root, &mut inplace, Sum)?;
    check(
        at("reduce_in_place Sum"),
        &inplace,
        if r == root { &sum } else { &mine },
    );

    // allreduce: Sum, Max, non-commutative, in place, into, f64 bit-identical.
    check(at("allreduce Sum"), &w.allreduce(&mine, Sum)?, &sum);
    check(at("allreduce Max"), &w.allreduce(&mine, Max)?, &max);
    check(
        at("allreduce non-commutative UserOp"),
        &w.allreduce(&my_aff, affop())?,
        &chain,
    );
    let mut inplace = mine.clone();
    w.allreduce_in_place(&mut inplace, Sum)?;
    check(at("allreduce_in_place Sum"), &inplace, &sum);
    let mut into = vec![0i64; n];
    w.allreduce_into(&signed, &mut into, Min)?;
    check(at("allreduce_into Min"), &into, &min);
    allreduce_f64(w, n, salt + 3)?;

    // gather, gather_into, gatherv (with counts).
    let all: Vec<u64> = (0..p).flat_map(|q| vals(salt + 1, q, n)).collect();
    if let Some(got) = root_only("gather", w, root, w.gather(root, &mine)?) {
        check(at("gather"), &got, &all);
    }
    let mut into = vec![0u64; n * p];
    w.gather_into(root, &mine, (r == root).then_some(&mut into[..]))?;
    if r == root {
        check(at("gather_into"), &into, &all);
    }
    let vmine = vals(salt + 4, r, vlen(r, n));
    let vall: Vec<u64> = (0..p).flat_map(|q| vals(salt + 4, q, vlen(q, n))).collect();
    let vcounts: Vec<usize> = (0..p).map(|q| vlen(q, n)).collect();
    if let Some(got) = root_only("gatherv", w, root, w.gatherv(root, &vmine)?) {
        check(at("gatherv"), &got, &vall);
    }
    if let Some((got, counts)) = root_only("gatherv", w, root, w.gatherv_with_counts(root, &vmine)?)
    {
        check(at("gatherv_with_counts data"), &got, &vall);
        check(at("gatherv_with_counts counts"), &counts, &vcounts);
    }

    // scatter, scatter_into, scatterv, scatterv_into.
    let data: Vec<u64> = (0..p).flat_map(|q| vals(salt + 5, q, n)).collect();
    let got = w.scatter(root, (r == root).then_some(&data[..]), n)?;
    check(at("scatter"), &got, &vals(salt + 5, r, n));
    let mut into = vec![0u64; n];
    w.scatter_into(root, (r == root).then_some(&data[..]), &mut into)?;
    check(at("scatter_into"), &into, &vals(salt + 5, r, n));
    let got = w.scatterv(root, (r == root).then_some((&vall[..], &vcounts[..])))?;
    check(at("scatterv"), &got, &vmine);
    let mut into = vec![0u64; vlen(r, n)];
    w.scatterv_into(
        root,
        (r == root).then_some((&vall[..], &vcounts[..])),
        &mut into,
    )?;
    check(at("scatterv_into"), &into, &vmine);

    // allgather (new, into, in place), allgatherv (new, with counts, into).
    check(at("allgather"), &w.allgather(&mine)?, &all);
    let mut into = vec![0u64; n * p];
    w.allgather_into(&mine, &mut into)?;
    check(at("allgather_into"), &into, &all);
    let mut inplace = vec![0u64; n * p];
    inplace[r * n..(r + 1) * n].copy_from_slice(&mine);
    w.allgather_in_place(&mut inplace)?;
    check(at("allgather_in_place"), &inplace, &all);
    check(at("allgatherv"), &w.allgatherv(&vmine)?, &vall);
    let (got, counts) = w.allgatherv_with_counts(&vmine)?;
    check(at("allgatherv_with_counts data"), &got, &vall);
    check(at("allgatherv_with_counts counts"), &counts, &vcounts);
    let mut into = vec![0u64; vall.len()];
    w.allgatherv_into(&vmine, &mut into, &vcounts)?;
    check(at("allgatherv_into"), &into, &vall);

    // alltoall (new, into), alltoallv (new, into).
    let send: Vec<u64> = (0..p)
        .flat_map(|j| (0..n).map(move |i| pair(salt + 6, r, j, i)))
        .collect();
    let want: Vec<u64> = (0..p)
        .flat_map(|q| (0..n).map(move |i| pair(salt + 6, q, r, i)))
        .collect();
    check(at("alltoall"), &w.alltoall(&send)?, &want);
    let mut into = vec![0u64; n * p];
    w.alltoall_into(&send, &mut into)?;
    check(at("alltoall_into"), &into, &want);
    let scounts: Vec<usize> = (0..p).map(|j| a2a_count(r, j, n)).collect();
    let rcounts: Vec<usize> = (0..p).map(|q| a2a_count(q, r, n)).collect();
    let send: Vec<u64> = (0..p)
        .flat_map(|j| (0..a2a_count(r, j, n)).map(move |i| pair(salt + 7, r, j, i)))
        .collect();
    let want: Vec<u64> = (0..p)
        .flat_map(|q| (0..a2a_count(q, r, n)).map(move |i| pair(salt + 7, q, r, i)))
        .collect();
    let (got, counts) = w.alltoallv(&send, &scounts)?;
    check(at("alltoallv data"), &got, &want);
    check(at("alltoallv counts"), &counts, &rcounts);
    let mut into = vec![0u64; want.len()];
    w.alltoallv_into(&send, &scounts, &mut into, &rcounts)?;
    check(at("alltoallv_into"), &into, &want);

    // scan and exscan: Sum and the non-commutative op, new and in place.
    let prefix = |upto: usize| wsum(n, 0..upto, |q, i| val(salt + 1, q, i));
    let aprefix = |upto: usize| fold(n, 0..upto, ID, |q, i| aff(salt + 2, q, i), compose);
    check(at("scan Sum"), &w.scan(&mine, Sum)?, &prefix(r + 1));
    check(
        at("scan non-commutative UserOp"),
        &w.scan(&my_aff, affop())?,
        &aprefix(r + 1),
    );
    let mut inplace = mine.clone();
    w.scan_in_place(&mut inplace, Sum)?;
    check(at("scan_in_place Sum"), &inplace, &prefix(r + 1));
    let ex = w.exscan(&mine, Sum)?;
    assert_eq!(
        ex.is_some(),
        r > 0,
        "{}",
        at("exscan Some only on ranks > 0")
    );
    if let Some(ex) = ex {
        check(at("exscan Sum"), &ex, &prefix(r));
    }
    if let Some(ex) = w.exscan(&my_aff, affop())? {
        check(at("exscan non-commutative UserOp"), &ex, &aprefix(r));
    }
    let mut inplace = mine.clone();
    w.exscan_in_place(&mut inplace, Sum)?;
    check(
        at("exscan_in_place Sum"),
        &inplace,
        &if r == 0 { mine.clone() } else { prefix(r) },
    );

    // reduce_scatter_block: Sum (commutative), the non-commutative op, into, in place.
    let send: Vec<u64> = (0..p)
        .flat_map(|j| (0..n).map(move |i| pair(salt + 8, r, j, i)))
        .collect();
    let want = wsum(n, 0..p, |q, i| pair(salt + 8, q, r, i));
    check(
        at("reduce_scatter_block Sum"),
        &w.reduce_scatter_block(&send, Sum)?,
        &want,
    );
    let mut into = vec![0u64; n];
    w.reduce_scatter_block_into(&send, &mut into, Sum)?;
    check(at("reduce_scatter_block_into Sum"), &into, &want);
    let mut inplace = send.clone();
    w.reduce_scatter_block_in_place(&mut inplace, Sum)?;
    check(
        at("reduce_scatter_block_in_place Sum"),
        &inplace[..n],
        &want,
    );
    let asend: Vec<Aff> = (0..p)
        .flat_map(|j| (0..n).map(move |i| aff(salt + 9, r, (j << 24) | i)))
        .collect();
    let awant = fold(n, 0..p, ID, |q, i| aff(salt + 9, q, (r << 24) | i), compose);
    check(
        at("reduce_scatter_block non-commutative UserOp"),
        &w.reduce_scatter_block(&asend, affop())?,
        &awant,
    );

    // reduce_scatter with uneven counts (some empty): Sum and the non-commutative op.
    let counts: Vec<usize> = (0..p).map(|q| vlen(q, n)).collect();
    let total: usize = counts.iter().sum();
    let start: usize = counts[..r].iter().sum();
    let send = vals(salt + 10, r, total);
    let want = wsum(counts[r], 0..p, |q, i| val(salt + 10, q, start + i));
    check(
        at("reduce_scatter Sum"),
        &w.reduce_scatter(&send, &counts, Sum)?,
        &want,
    );
    let mut into = vec![ID; counts[r]];
    w.reduce_scatter_into(&affs(salt + 11, r, total), &counts, &mut into, affop())?;
    let awant = fold(
        counts[r],
        0..p,
        ID,
        |q, i| aff(salt + 11, q, start + i),
        compose,
    );
    check(
        at("reduce_scatter_into non-commutative UserOp"),
        &into,
        &awant,
    );
    Ok(())
}

/// An f64 allreduce: close to the sequential sum, and bit-identical on every rank
/// (checked by allgathering the bits).
fn allreduce_f64(w: &Communicator, n: usize, salt: u64) -> pirun::Result<()> {
    let (p, r) = (w.size(), w.rank());
    let mine: Vec<f64> = (0..n).map(|i| fval(salt, r, i)).collect();
    let got = w.allreduce(&mine, Sum)?;
    assert_eq!(got.len(), n);
    for (i, &g) in got.iter().enumerate() {
        let (exact, mag) = (0..p).fold((0.0, 0.0), |(s, m), q| {
            let x = fval(salt, q, i);
            (s + x, m + x.abs())
        });
        assert!(
            (g - exact).abs() <= 1e-12 * mag,
            "rank {r}/{p}, n={n}: allreduce f64 element {i} is {g}, sequential sum {exact}"
        );
    }
    let bits: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
    let everyone = w.allgather(&bits)?;
    for q in 0..p {
        check(
            format!("rank {r}/{p}, n={n}: allreduce f64 bits of rank {q} vs rank {r}"),
            &everyone[q * n..(q + 1) * n],
            &bits,
        );
    }
    Ok(())
}

/// The 4 MiB cases: bcast, reduce, allreduce, allgather, alltoall (and gatherv, scatter,
/// reduce_scatter_block, which cost little more).
fn big_ops(w: &Communicator) -> pirun::Result<()> {
    let (p, r) = (w.size(), w.rank());
    let at = |what: &str| format!("rank {r}/{p}, 4 MiB: {what}");
    let n = BIG;
    let salt = 200;

    let root = 1 % p;
    let mut buf = if r == root {
        vals(salt, root, n)
    } else {
        vec![0; n]
    };
    w.bcast(root, &mut buf)?;
    check(at("bcast"), &buf, &vals(salt, root, n));
    drop(buf);

    let mine = vals(salt + 1, r, n);
    let sum = wsum(n, 0..p, |q, i| val(salt + 1, q, i));
    if let Some(got) = root_only("reduce", w, p - 1, w.reduce(p - 1, &mine, Sum)?) {
        check(at("reduce Sum"), &got, &sum);
    }
    check(at("allreduce Sum"), &w.allreduce(&mine, Sum)?, &sum);
    drop(sum);
    let my_aff = affs(salt + 2, r, n / 2);
    let chain = fold(n / 2, 0..p, ID, |q, i| aff(salt + 2, q, i), compose);
    check(
        at("allreduce non-commutative UserOp"),
        &w.allreduce(&my_aff, affop())?,
        &chain,
    );
    if let Some(got) = root_only("reduce", w, 0, w.reduce(0, &my_aff, affop())?) {
        check(at("reduce non-commutative UserOp"), &got, &chain);
    }
    drop((my_aff, chain));
    allreduce_f64(w, n, salt + 3)?;

    // Allgather: 4 MiB from every rank.
    let all: Vec<u64> = (0..p).flat_map(|q| vals(salt + 1, q, n)).collect();
    check(at("allgather"), &w.allgather(&mine)?, &all);
    if let Some(got) = root_only("gatherv", w, 0, w.gatherv(0, &mine)?) {
        check(at("gatherv"), &got, &all);
    }
    let got = w.scatter(root, (r == root).then_some(&all[..]), n)?;
    check(at("scatter"), &got, &mine);
    drop(all);

    // Alltoall and reduce_scatter_block: 4 MiB sent by every rank in all.
    let blk = n / p;
    let send: Vec<u64> = (0..p)
        .flat_map(|j| (0..blk).map(move |i| pair(salt + 6, r, j, i)))
        .collect();
    let want: Vec<u64> = (0..p)
        .flat_map(|q| (0..blk).map(move |i| pair(salt + 6, q, r, i)))
        .collect();
    check(at("alltoall"), &w.alltoall(&send)?, &want);
    let want = wsum(blk, 0..p, |q, i| pair(salt + 6, q, r, i));
    check(
        at("reduce_scatter_block Sum"),
        &w.reduce_scatter_block(&send, Sum)?,
        &want,
    );
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
enum Mode {
    Fast,
    Careful { retries: u32 },
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
struct Config {
    name: String,
    limit: u64,
    ratios: Vec<f64>,
    mode: Option<Mode>,
    tags: Vec<(String, i32)>,
}

fn config(root: usize) -> Config {
    Config {
        name: format!("config from rank {root} — ünïcode"),
        limit: u64::MAX - root as u64,
        ratios: vec![0.5, -1e300, f64::MIN_POSITIVE],
        mode: Some(Mode::Careful { retries: 3 }),
        tags: vec![("a".into(), -1), (String::new(), i32::MAX)],
    }
}

/// Plain trial division.
fn is_prime(k: u64) -> bool {
    k >= 2 && (2..).take_while(|d| d * d <= k).all(|d| k % d != 0)
}

/// bcast_value, gather_value, scatter_value, allgather_value, and the primes program's
/// gatherv.
fn value_ops(w: &Communicator) -> pirun::Result<()> {
    let (p, r) = (w.size(), w.rank());
    let root = p - 1;
    // Non-roots pass a different value, which must be ignored.
    let arg = if r == root { config(root) } else { config(99) };
    let got: Config = w.bcast_value(root, Some(arg))?;
    assert_eq!(got, config(root), "rank {r}/{p}: bcast_value");
    let got: Config = w.bcast_value(0, (r == 0).then(|| config(0)))?;
    assert_eq!(got, config(0), "rank {r}/{p}: bcast_value with None");

    let mine = (r, "x".repeat(r * 100), vec![r as i16; r]);
    if let Some(all) = root_only("gather_value", w, root, w.gather_value(root, &mine)?) {
        let want: Vec<_> = (0..p)
            .map(|q| (q, "x".repeat(q * 100), vec![q as i16; q]))
            .collect();
        assert_eq!(all, want, "rank {r}/{p}: gather_value");
    }
    let work: Vec<_> = (0..p).map(|q| (q, "y".repeat(q * 50))).collect();
    let got = w.scatter_value(root, (r == root).then_some(&work[..]))?;
    assert_eq!(got, (r, "y".repeat(r * 50)), "rank {r}/{p}: scatter_value");
    let all = w.allgather_value(&Some(r).filter(|r| r % 2 == 0))?;
    let want: Vec<_> = (0..p).map(|q| Some(q).filter(|q| q % 2 == 0)).collect();
    assert_eq!(all, want, "rank {r}/{p}: allgather_value");

    // The primes case: Vec<u64> of different lengths per rank (some possibly empty).
    let limit = 20_000;
    let range = pirun::partition(2..=limit, r, p);
    let mine: Vec<u64> = range.filter(|&k| is_prime(k)).collect();
    if let Some(all) = root_only("gatherv primes", w, 0, w.gatherv(0, &mine)?) {
        let want: Vec<u64> = (2..=limit).filter(|&k| is_prime(k)).collect();
        check(format!("rank 0/{p}: gatherv primes"), &all, &want);
    }
    Ok(())
}

/// The whole suite, on whatever size the job has.
fn every_collective(w: &Communicator) -> pirun::Result<()> {
    placement_follows_the_launch_contract(w);
    let t = Instant::now();
    for (k, &n) in COUNTS.iter().enumerate() {
        every_op(w, n, k)?;
    }
    value_ops(w)?;
    if w.size() == 2 || w.size() == 5 {
        big_ops(w)?;
    }
    w.barrier()?;
    if w.rank() == 0 {
        eprintln!("size {}: all collectives ok in {:?}", w.size(), t.elapsed());
    }
    Ok(())
}

/// The selection's view of a job on this host: one host, crowded when the launcher put
/// more ranks here than it saw cores.
fn placement_follows_the_launch_contract(w: &Communicator) {
    let env = |v: &str| -> usize { std::env::var(v).unwrap().parse().unwrap() };
    let crowded = env("PIRUN_LOCAL_SIZE") > env("PIRUN_HOST_CORES");
    assert!(!w.spans_hosts());
    assert_eq!(w.oversubscribed(), crowded);
    let want = if crowded {
        Placement::Crowded
    } else {
        Placement::OneHost
    };
    assert_eq!(Placement::of(w), want);
}

/// pirun's own bound on every job of this file, so a hang is reported by pirun (with the
/// ranks' output) before the harness's 90 s deadline. A forced-algorithm job of 8 ranks
/// takes ~5 s on 2 idle cores; 40 s was exceeded once at load 11, hence 75.
const JOB_TIMEOUT: &[&str] = &["--timeout", "75"];

fn run_suite(name: &str, n: usize) {
    let out = scenario_with(name, n, JOB_TIMEOUT, every_collective);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!("size {n}: all collectives ok")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_collective_on_1_rank() {
    run_suite("every_collective_on_1_rank", 1);
}

#[test]
fn every_collective_on_2_ranks_with_4_mib() {
    run_suite("every_collective_on_2_ranks_with_4_mib", 2);
}

#[test]
fn every_collective_on_3_ranks() {
    run_suite("every_collective_on_3_ranks", 3);
}

#[test]
fn every_collective_on_5_ranks_with_4_mib() {
    run_suite("every_collective_on_5_ranks_with_4_mib", 5);
}

#[test]
fn every_collective_on_8_ranks() {
    run_suite("every_collective_on_8_ranks", 8);
}

// ---------------------------------------------------------------------------------------
// Every algorithm override of `select`, as real jobs
// ---------------------------------------------------------------------------------------

/// Each combination forces one algorithm of every operation; the four together use every
/// algorithm at least once (and `pipeline` with a segment size that is not a multiple of
/// the element size).
fn combo(k: usize) -> Vec<String> {
    let bcast = ["binomial", "scatter_allgather", "pipeline"][k % 3];
    let mut env = vec![
        format!("{}={bcast}", BcastAlgorithm::ENV),
        format!(
            "{}={}",
            ReduceAlgorithm::ENV,
            ["binomial", "rabenseifner", "linear"][k % 3]
        ),
        format!(
            "{}={}",
            AllreduceAlgorithm::ENV,
            ["recursive_doubling", "rabenseifner", "ring", "reduce_bcast"][k]
        ),
        format!(
            "{}={}",
            AllgatherAlgorithm::ENV,
            ["recursive_doubling", "bruck", "ring"][k % 3]
        ),
        format!(
            "{}={}",
            AlltoallAlgorithm::ENV,
            ["pairwise", "bruck"][k % 2]
        ),
        format!(
            "{}={}",
            ReduceScatterAlgorithm::ENV,
            ["ring", "reduce_then_scatter"][k % 2]
        ),
        format!("{}={}", GatherAlgorithm::ENV, ["binomial", "linear"][k % 2]),
        format!(
            "{}={}",
            ScatterAlgorithm::ENV,
            ["linear", "binomial"][k % 2]
        ),
    ];
    if bcast == "pipeline" {
        // Not below 16k: see pipeline_bcast_with_many_small_segments.
        env.push("PIRUN_SEGMENT_SIZE=20000".into());
    }
    env
}

#[test]
fn the_combinations_cover_every_algorithm() {
    let all: Vec<String> = (0..4).flat_map(combo).collect();
    let covered = |env: &str, names: Vec<&str>| {
        for name in names {
            assert!(
                all.contains(&format!("{env}={name}")),
                "{env}={name} is never forced"
            );
        }
    };
    macro_rules! every_algorithm_of {
        ($($alg:ident),*) => {
            $(covered($alg::ENV, $alg::ALL.iter().map(|a| a.name()).collect());)*
        };
    }
    every_algorithm_of!(
        BcastAlgorithm,
        ReduceAlgorithm,
        AllreduceAlgorithm,
        AllgatherAlgorithm,
        AlltoallAlgorithm,
        ReduceScatterAlgorithm,
        GatherAlgorithm,
        ScatterAlgorithm
    );
}

/// The rank side of an override job: the overrides arrived and are in force, then the
/// affected operations (and the rest) run correctly, including a payload above every
/// cut-over.
fn with_forced_algorithms(w: &Communicator) -> pirun::Result<()> {
    let forced = |var: &str| std::env::var(var).unwrap_or_else(|_| panic!("{var} not passed on"));
    let p = w.size();
    assert_eq!(
        pirun::select::bcast(1 << 20, p),
        BcastAlgorithm::from_name(&forced(BcastAlgorithm::ENV)).unwrap()
    );
    assert_eq!(
        pirun::select::reduce(1 << 17, 1 << 20, p),
        ReduceAlgorithm::from_name(&forced(ReduceAlgorithm::ENV)).unwrap()
    );
    assert_eq!(
        pirun::select::allreduce(1 << 17, 1 << 20, p, true),
        AllreduceAlgorithm::from_name(&forced(AllreduceAlgorithm::ENV)).unwrap()
    );
    let ag = AllgatherAlgorithm::from_name(&forced(AllgatherAlgorithm::ENV)).unwrap();
    if ag != AllgatherAlgorithm::RecursiveDoubling || p.is_power_of_two() {
        assert_eq!(pirun::select::allgather(1 << 20, p), ag);
    }
    assert_eq!(
        pirun::select::alltoall(1 << 20, p),
        AlltoallAlgorithm::from_name(&forced(AlltoallAlgorithm::ENV)).unwrap()
    );
    assert_eq!(
        pirun::select::reduce_scatter(1 << 20, true),
        ReduceScatterAlgorithm::from_name(&forced(ReduceScatterAlgorithm::ENV)).unwrap()
    );
    let here = Placement::of(w);
    assert_eq!(
        pirun::select::gather_on(1 << 20, p, here),
        GatherAlgorithm::from_name(&forced(GatherAlgorithm::ENV)).unwrap()
    );
    assert_eq!(
        pirun::select::scatter_on(1 << 20, p, here),
        ScatterAlgorithm::from_name(&forced(ScatterAlgorithm::ENV)).unwrap()
    );
    assert_eq!(
        pirun::select::reduce_on(1 << 17, 1 << 20, p, here),
        ReduceAlgorithm::from_name(&forced(ReduceAlgorithm::ENV)).unwrap()
    );
    if let Ok(seg) = std::env::var("PIRUN_SEGMENT_SIZE") {
        assert_eq!(pirun::select::segment_size().to_string(), seg);
    }
    let t = Instant::now();
    for (k, &n) in COUNTS.iter().chain(&[70_000]).enumerate() {
        every_op(w, n, k)?;
    }
    w.barrier()?;
    if w.rank() == 0 {
        eprintln!("forced algorithms ok on {p} ranks in {:?}", t.elapsed());
    }
    Ok(())
}

fn run_forced(name: &str, n: usize, k: usize) {
    let env = combo(k);
    let mut args: Vec<&str> = JOB_TIMEOUT.to_vec();
    for e in &env {
        args.extend(["-x", e.as_str()]);
    }
    let out = scenario_with(name, n, &args, with_forced_algorithms);
    let ctx = format!("with {}", env.join(" "));
    assert!(
        out.status.success(),
        "job failed {ctx}\n{}",
        common::describe(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("forced algorithms ok"), "{ctx}\n{err}");
    assert!(
        !err.contains("ignoring PIRUN_"),
        "an override was rejected {ctx}\n{err}"
    );
}

/// One test per (combination, size): each is its own pirun job, named after its test.
macro_rules! forced_tests {
    ($($name:ident: $ranks:expr, $combination:expr;)*) => {
        $(
            #[test]
            fn $name() {
                run_forced(stringify!($name), $ranks, $combination);
            }
        )*
    };
}

forced_tests! {
    forced_algorithms_0_on_5_ranks: 5, 0;
    forced_algorithms_0_on_8_ranks: 8, 0;
    forced_algorithms_1_on_5_ranks: 5, 1;
    forced_algorithms_1_on_8_ranks: 8, 1;
    forced_algorithms_2_on_5_ranks: 5, 2;
    forced_algorithms_2_on_8_ranks: 8, 2;
    forced_algorithms_3_on_5_ranks: 5, 3;
    forced_algorithms_3_on_8_ranks: 8, 3;
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Ends the rank with a line saying what it was blocked in if it is still running after
/// `secs` seconds, so that a hang fails the test quickly and says where.
fn watchdog(w: &Communicator, secs: f64, what: &'static str) {
    let r = w.rank();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(secs));
        eprintln!("HANG: rank {r} still blocked in {what} after {secs} s");
        std::process::exit(3);
    });
}

#[track_caller]
fn expect_invalid_root<T: Debug>(what: &str, r: pirun::Result<T>, root: usize, size: usize) {
    match r {
        Err(Error::Collective(CollectiveError::InvalidRoot { root: got, size: s }))
            if got == root && s == size => {}
        other => panic!("{what} with root {root}: expected InvalidRoot, got {other:?}"),
    }
}

#[test]
fn a_root_out_of_range_is_invalid_root_on_every_rank() {
    let out = scenario_with(
        "a_root_out_of_range_is_invalid_root_on_every_rank",
        3,
        JOB_TIMEOUT,
        |w| {
            watchdog(w, 20.0, "the invalid-root calls");
            let (p, r) = (w.size(), w.rank());
            for root in [p, p + 1, usize::MAX] {
                let data = [1u64, 2, 3];
                let mut buf = [0u64; 3];
                expect_invalid_root("bcast", w.bcast(root, &mut buf), root, p);
                expect_invalid_root("bcast_value", w.bcast_value(root, Some(5u8)), root, p);
                expect_invalid_root("reduce", w.reduce(root, &data, Sum), root, p);
                expect_invalid_root(
                    "reduce_into",
                    w.reduce_into(root, &data, Some(&mut buf[..]), Sum),
                    root,
                    p,
                );
                expect_invalid_root(
                    "reduce_in_place",
                    w.reduce_in_place(root, &mut buf, Sum),
                    root,
                    p,
                );
                expect_invalid_root("gather", w.gather(root, &data), root, p);
                let mut all = [0u64; 9];
                expect_invalid_root(
                    "gather_into",
                    w.gather_into(root, &data, Some(&mut all[..])),
                    root,
                    p,
                );
                expect_invalid_root("gatherv", w.gatherv(root, &data), root, p);
                expect_invalid_root(
                    "gatherv_with_counts",
                    w.gatherv_with_counts(root, &data),
                    root,
                    p,
                );
                expect_invalid_root(
                    "gather_value",
                    w.gather_value(root, &String::from("x")),
                    root,
                    p,
                );
                expect_invalid_root("scatter", w.scatter(root, Some(&all[..]), 3), root, p);
                expect_invalid_root(
                    "scatter_into",
                    w.scatter_into(root, Some(&all[..]), &mut buf),
                    root,
                    p,
                );
                expect_invalid_root(
                    "scatterv",
                    w.scatterv(root, Some((&all[..], &[3, 3, 3][..]))),
                    root,
                    p,
                );
                expect_invalid_root(
                    "scatterv_into",
                    w.scatterv_into(root, Some((&all[..], &[3, 3, 3][..])), &mut buf),
                    root,
                    p,
                );
            }
            // Nothing was sent by the failed calls: the next collectives work.
            w.barrier()?;
            let sum = w.allreduce(&[r as u64 + 1], Sum)?;
            assert_eq!(sum, [6]);
            let mut b = [r as u32; 2];
            w.bcast(2, &mut b)?;
            assert_eq!(b, [2, 2]);
            eprintln!("rank {r}: every invalid root rejected");
            Ok(())
        },
    );
    assert_ok(&out);
    let err = stderr(&out);
    for r in 0..3 {
        assert!(
            err.contains(&format!("rank {r}: every invalid root rejected")),
            "{err}"
        );
    }
}

#[test]
fn scatterv_counts_that_do_not_add_up_are_a_clear_error_and_send_nothing() {
    let out = scenario_with(
        "scatterv_counts_that_do_not_add_up_are_a_clear_error_and_send_nothing",
        3,
        JOB_TIMEOUT,
        |w| {
            watchdog(w, 20.0, "scatterv");
            let r = w.rank();
            let data = [10u32, 11, 12, 13, 14];
            if r == 1 {
                // The root: counts adding up to 3 for 5 elements, then too few counts,
                // then right.
                let e = w
                    .scatterv(1, Some((&data[..], &[1, 1, 1][..])))
                    .expect_err("counts adding up to 3 for 5 elements");
                let text = e.to_string();
                assert!(
                    matches!(
                        e,
                        Error::Collective(CollectiveError::InvalidArgument {
                            call: "scatterv",
                            rank: 1,
                            ..
                        })
                    ) && text.contains("add up to 3")
                        && text.contains("5 elements"),
                    "unclear error: {text}"
                );
                eprintln!("rank 1 saw: {text}");
                let e = w
                    .scatterv(1, Some((&data[..], &[2, 3][..])))
                    .expect_err("two counts for three ranks");
                let text = e.to_string();
                assert!(
                    text.contains("scatterv") && text.contains("counts"),
                    "unclear error: {text}"
                );
                eprintln!("rank 1 saw: {text}");
            }
            // The failed calls sent nothing: the non-roots receive the corrected call.
            // (A non-root's part in a failed call cannot fail by itself: it waits for the
            // root's message, as in MPI.)
            let got = w.scatterv(1, (r == 1).then_some((&data[..], &[1, 2, 2][..])))?;
            let want: &[u32] = [&data[..1], &data[1..3], &data[3..]][r];
            assert_eq!(got, want, "rank {r}");
            w.barrier()?;
            eprintln!("rank {r}: scatterv ok after the errors");
            Ok(())
        },
    );
    assert_ok(&out);
    let err = stderr(&out);
    for r in 0..3 {
        assert!(err.contains(&format!("rank {r}: scatterv ok")), "{err}");
    }
}

#[test]
fn scatterv_into_with_a_wrong_root_buffer_fails_before_sending_anything() {
    let out = scenario_with(
        "scatterv_into_with_a_wrong_root_buffer_fails_before_sending_anything",
        3,
        JOB_TIMEOUT,
        |w| {
            watchdog(w, 20.0, "scatterv");
            let r = w.rank();
            let data = [10u32, 11, 12, 13, 14];
            if r == 1 {
                // The root's own block has 2 elements; its buffer has room for 1.
                let mut small = [0u32; 1];
                let e = w
                    .scatterv_into(1, Some((&data[..], &[1, 2, 2][..])), &mut small)
                    .expect_err("the root's own receive buffer is too small");
                eprintln!("rank 1 saw: {e}");
                assert!(e.to_string().contains("receive buffer"), "{e}");
            }
            // Like any failed argument check on the root, it must not have sent the
            // other ranks their blocks: they receive the corrected call's data, and the
            // barrier after it sees no stray message.
            let fixed = [20u32, 21, 22, 23, 24];
            let got = w.scatterv(1, (r == 1).then_some((&fixed[..], &[1, 2, 2][..])))?;
            let want: &[u32] = [&fixed[..1], &fixed[1..3], &fixed[3..]][r];
            assert_eq!(got, want, "rank {r} received the failed call's block");
            w.barrier()?;
            eprintln!("rank {r}: scatterv ok after the error");
            Ok(())
        },
    );
    assert_ok(&out);
}

/// The pipelined broadcast with many segments per message, every root in turn.
#[test]
fn pipeline_bcast_with_many_small_segments() {
    let out = scenario_with(
        "pipeline_bcast_with_many_small_segments",
        3,
        &[
            "--timeout",
            "15",
            "-x",
            "PIRUN_BCAST_ALGORITHM=pipeline",
            "-x",
            "PIRUN_SEGMENT_SIZE=4096",
        ],
        |w| {
            let (p, r) = (w.size(), w.rank());
            for n in [4099, 70_000] {
                for root in 0..p {
                    let mut buf = if r == root {
                        vals(7, root, n)
                    } else {
                        vec![0; n]
                    };
                    w.bcast(root, &mut buf)?;
                    check(
                        format!("rank {r} n={n} root={root}"),
                        &buf,
                        &vals(7, root, n),
                    );
                    eprintln!("rank {r}: pipeline bcast of {n} from root {root} ok");
                }
            }
            Ok(())
        },
    );
    assert_ok(&out);
}

/// When the dying rank goes, relative to the synchronized start.
const DEATH_AFTER: Duration = Duration::from_millis(300);
/// Iterations completed by the survivors (for the report).
static ITERS: AtomicUsize = AtomicUsize::new(0);

/// The rank side of the dying-rank tests: every rank loops over collectives; rank `dead`
/// leaves `DEATH_AFTER` into the loop (from another thread, so it really is in the middle
/// of a collective) by `how`. Each survivor reports the error it got and how long after
/// the death, and must see it name the dead rank within a second.
fn die_mid_collective(w: &Communicator, dead: usize, kill: bool) -> pirun::Result<()> {
    let (p, r) = (w.size(), w.rank());
    if kill {
        // Survive pirun's SIGTERM long enough to report (SIGKILL follows the grace).
        // SAFETY: ignoring a signal is always sound.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    w.barrier()?;
    let start = Instant::now();
    if r == dead {
        std::thread::spawn(move || {
            std::thread::sleep(DEATH_AFTER);
            if kill {
                // SAFETY: the rank ends itself the hard way, as an OOM kill would.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            std::process::exit(0); // without finalizing
        });
    } else {
        watchdog(
            w,
            (DEATH_AFTER + Duration::from_millis(1500)).as_secs_f64(),
            "the collective loop",
        );
    }
    let payload = vec![r as u64; 4099];
    let mut i = 0usize;
    let (err, op, call_time) = loop {
        let t = Instant::now();
        let (res, op) = match i % 4 {
            0 => (w.allreduce(&payload, Sum).map(drop), "allreduce"),
            1 => (w.barrier(), "barrier"),
            2 => (w.allgather(&payload[..100]).map(drop), "allgather"),
            _ => (w.alltoall(&payload[..5 * p]).map(drop), "alltoall"),
        };
        if let Err(e) = res {
            break (e, op, t.elapsed());
        }
        i += 1;
        ITERS.store(i, Ordering::Relaxed);
    };
    let since_death = start.elapsed().saturating_sub(DEATH_AFTER);
    let text = err.to_string();
    eprintln!(
        "rank {r} saw after {} ms (call took {} ms, {op} #{i}): {text}",
        since_death.as_millis(),
        call_time.as_millis()
    );
    // Stay around (without calling pirun) so that other survivors' errors are about the
    // dead rank, not about this one leaving.
    std::thread::sleep((DEATH_AFTER + Duration::from_millis(1300)).saturating_sub(start.elapsed()));
    if kill {
        std::process::exit(0);
    }
    Ok(())
}

fn check_dying(out: &std::process::Output, p: usize, dead: usize) {
    let err = stderr(out);
    assert!(!err.contains("HANG"), "a survivor hung:\n{err}");
    // (survivor, ms after the death, error text)
    let seen: Vec<(usize, u64, &str)> = (0..p)
        .filter(|&r| r != dead)
        .map(|r| {
            let prefix = format!("rank {r} saw after ");
            let line = err
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("rank {r} reported nothing:\n{err}"));
            let ms = line[prefix.len()..]
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("cannot parse {line}"));
            (r, ms, line.split_once("): ").map_or("", |(_, m)| m))
        })
        .collect();
    let names_it = |m: &str| m.starts_with(&format!("rank {dead} on host "));
    assert!(
        seen.iter().any(|&(_, ms, m)| ms < 1000 && names_it(m)),
        "no survivor saw rank {dead} go within a second:\n{err}"
    );
    for &(r, ms, m) in &seen {
        assert!(
            ms < 1000 && names_it(m),
            "rank {r} did not get an error naming rank {dead} within a second (it got \
             {m:?} after {ms} ms; survivors stay 1.3 s after their own error, so an error \
             naming a survivor means this rank was waiting on one):\n{err}"
        );
    }
}

#[test]
fn a_rank_that_exits_mid_collective_is_an_error_naming_it_on_every_rank() {
    let out = scenario_with(
        "a_rank_that_exits_mid_collective_is_an_error_naming_it_on_every_rank",
        5,
        JOB_TIMEOUT,
        |w| die_mid_collective(w, 2, false),
    );
    check_dying(&out, 5, 2);
}

#[test]
fn a_rank_that_is_killed_mid_collective_is_an_error_naming_it_on_every_rank() {
    let out = scenario_with(
        "a_rank_that_is_killed_mid_collective_is_an_error_naming_it_on_every_rank",
        4,
        JOB_TIMEOUT,
        |w| die_mid_collective(w, 1, true),
    );
    check_dying(&out, 4, 1);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
}

/// Rank 0 calls bcast while rank 1 calls reduce (both root 0) with `n` elements, then both
/// call barrier. Nothing may hang; the mismatch must surface as an error.
fn mismatched(w: &Communicator, n: usize) -> pirun::Result<()> {
    let r = w.rank();
    watchdog(
        w,
        5.0,
        if r == 0 {
            "bcast (mismatched)"
        } else {
            "reduce (mismatched)"
        },
    );
    let mut buf = vec![7u64; n];
    let first = if r == 0 {
        w.bcast(0, &mut buf)
    } else {
        w.reduce(0, &buf, Sum).map(drop)
    };
    eprintln!("rank {r} first call: {first:?}");
    if r == 0 && std::env::var_os("MISMATCH_LATE_ROOT").is_some() {
        // Let rank 1 find the mismatch and leave first.
        std::thread::sleep(Duration::from_millis(300));
    }
    let second = if first.is_ok() {
        Some(w.barrier())
    } else {
        None
    };
    if let Some(s) = &second {
        eprintln!("rank {r} barrier after it: {s:?}");
    }
    let e = match (first, second) {
        (Err(e), _) | (Ok(()), Some(Err(e))) => e,
        _ => panic!("rank {r}: the mismatch went unnoticed"),
    };
    eprintln!("rank {r} saw: {e}");
    Ok(())
}

fn check_mismatch(out: &std::process::Output) {
    let err = stderr(out);
    assert!(!err.contains("HANG"), "mismatched calls hung:\n{err}");
    assert_ok(out);
    for r in 0..2 {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("rank {r} saw: ")))
            .unwrap_or_else(|| panic!("rank {r} saw no error:\n{err}"));
        // The error names the other's call (a Mismatch) or at least the peer whose
        // message did not fit (the transport's length error, which the Collectives
        // contract allows).
        let (other, peer) = (["reduce", "bcast"][r], 1 - r);
        assert!(
            (line.contains(&format!("received a message of {other}"))
                && line.contains(&format!("from rank {peer}")))
                || line.contains(&format!("bytes from rank {peer} (tag")),
            "rank {r}'s error names neither {other} nor rank {peer}: {line}\n{err}"
        );
    }
}

#[test]
fn bcast_against_reduce_is_an_error_not_a_hang() {
    let out = scenario_with(
        "bcast_against_reduce_is_an_error_not_a_hang",
        2,
        JOB_TIMEOUT,
        |w| mismatched(w, 4),
    );
    check_mismatch(&out);
}

#[test]
fn a_mismatch_is_named_even_when_the_peer_already_left() {
    // Rank 1 meets rank 0's bcast in its barrier, reports the mismatch and exits; only
    // then does rank 0 start its barrier, whose send to rank 1 fails. Rank 0 must still
    // name the mismatch (rank 1's reduce message is already there), not just the exit.
    let out = scenario_with(
        "a_mismatch_is_named_even_when_the_peer_already_left",
        2,
        &["--timeout", "75", "-x", "MISMATCH_LATE_ROOT=1"],
        |w| mismatched(w, 4),
    );
    check_mismatch(&out);
}

#[test]
fn bcast_against_reduce_of_4_mib_is_an_error_not_a_hang() {
    let out = scenario_with(
        "bcast_against_reduce_of_4_mib_is_an_error_not_a_hang",
        2,
        JOB_TIMEOUT,
        |w| mismatched(w, BIG),
    );
    check_mismatch(&out);
}
