//! Reductions of Pod slices: reduce to a root, allreduce and reduce-scatter (block).
//!
//! The order in which each algorithm combines contributions (which makes floating-point
//! results bit-identical on every rank) is documented in [`crate::op`].

use bytemuck::Pod;

use crate::allgather::allgather_blocks;
use crate::blocks::{bytes, bytes_mut, scratch, split_pair, Layout};
use crate::error::{check_len, check_root};
use crate::op::{fold, fold_hi, fold_lo, Op};
use crate::select::{
    self, AllgatherAlgorithm, AllreduceAlgorithm, ReduceAlgorithm, ReduceScatterAlgorithm,
};
use crate::tree::{Fold, Tree};
use crate::wire::{Ctx, Header, OpCode};
use crate::PointToPoint;

fn header<T>(op: OpCode, algo: u8, root: Option<usize>, n: usize) -> Header {
    Header::new(op, algo, std::mem::size_of::<T>(), root, n)
}

/// Reduces every rank's `acc` into `acc` at `root` (other ranks' `acc` is clobbered).
pub(crate) fn reduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    root: usize,
    acc: &mut [T],
    op: &O,
    alg: Option<ReduceAlgorithm>,
) -> Result<(), C::Error> {
    check_root(root, comm.size())?;
    let n = acc.len();
    let alg = alg.unwrap_or_else(|| select::reduce(n, std::mem::size_of_val(acc), comm.size()));
    let w = Ctx::new(comm, header::<T>(OpCode::Reduce, alg.code(), Some(root), n));
    match alg {
        ReduceAlgorithm::Binomial => binomial(&w, root, acc, op),
        ReduceAlgorithm::Rabenseifner => rabenseifner_reduce(&w, root, acc, op),
    }
}

/// Binomial-tree reduce of `acc` to `root` under the call `w`.
fn binomial<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    acc: &mut [T],
    op: &O,
) -> Result<(), C::Error> {
    let tree_root = if op.commutative() { root } else { 0 };
    let t = Tree::new(w.rank, tree_root, w.size);
    let children = t.children();
    if !children.is_empty() {
        let mut tmp = scratch::<T>(acc.len());
        for c in children {
            w.recv_into(t.abs(c), bytes_mut(&mut tmp))?;
            fold_hi(op, acc, &tmp);
        }
    }
    if let Some(parent) = t.parent() {
        w.send(t.abs(parent), &[bytes(acc)])?;
    }
    if tree_root != root {
        if w.rank == tree_root {
            w.send(root, &[bytes(acc)])?;
        } else if w.rank == root {
            w.recv_into(tree_root, bytes_mut(acc))?;
        }
    }
    Ok(())
}

/// Folds the ranks beyond the largest power of two in: even `r < 2*rem` sends `acc` to
/// `r + 1`, which combines. Returns this rank's new rank, `None` if it sits out.
fn fold_in<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    f: &Fold,
    acc: &mut [T],
    tmp: &mut [T],
    op: &O,
) -> Result<Option<usize>, C::Error> {
    let r = w.rank;
    if r < 2 * f.rem {
        if r % 2 == 0 {
            w.send(r + 1, &[bytes(acc)])?;
        } else {
            w.recv_into(r - 1, bytes_mut(tmp))?;
            fold_lo(op, tmp, acc);
        }
    }
    Ok(f.new_rank(r))
}

/// The inverse of [`fold_in`] for allreduce: the folded ranks receive the result.
fn fold_out<C: PointToPoint + ?Sized, T: Pod>(
    w: &Ctx<C>,
    f: &Fold,
    acc: &mut [T],
) -> Result<(), C::Error> {
    let r = w.rank;
    if r < 2 * f.rem {
        if r % 2 == 1 {
            w.send(r - 1, &[bytes(acc)])?;
        } else {
            w.recv_into(r + 1, bytes_mut(acc))?;
        }
    }
    Ok(())
}

/// The half of blocks `lo..hi` new rank `nr` keeps in halving round `m`, and the other.
fn halves(nr: usize, m: usize, lo: usize, hi: usize) -> ((usize, usize), (usize, usize)) {
    let mid = (lo + hi) / 2;
    if nr & m == 0 {
        ((lo, mid), (mid, hi))
    } else {
        ((mid, hi), (lo, mid))
    }
}

/// The block new rank `nr` holds after recursive halving over `pof2` blocks.
fn halving_block(nr: usize, f: &Fold) -> usize {
    f.masks()
        .fold((0, f.pof2), |(lo, hi), m| halves(nr, m, lo, hi).0)
        .0
}

/// Reduce-scatter by recursive halving among the new ranks of `f` over the blocks of
/// `blocks` (one per new rank). Returns the new rank (`None` if folded out); block
/// [`halving_block`] of `acc` then holds its full reduction.
fn halving<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    f: &Fold,
    blocks: &Layout,
    acc: &mut [T],
    op: &O,
) -> Result<Option<usize>, C::Error> {
    let mut tmp = scratch::<T>(acc.len());
    let Some(nr) = fold_in(w, f, acc, &mut tmp, op)? else {
        return Ok(None);
    };
    let (mut lo, mut hi) = (0, f.pof2);
    for m in f.masks() {
        let partner = f.real(nr ^ m);
        let (keep, give) = halves(nr, m, lo, hi);
        let keep_r = blocks.span(keep.0, keep.1);
        let t = &mut tmp[..keep_r.len()];
        w.sendrecv(
            partner,
            bytes(&acc[blocks.span(give.0, give.1)]),
            partner,
            bytes_mut(t),
        )?;
        fold(op, &mut acc[keep_r], t, nr & m != 0);
        (lo, hi) = keep;
    }
    Ok(Some(nr))
}

fn rabenseifner_reduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    acc: &mut [T],
    op: &O,
) -> Result<(), C::Error> {
    let f = Fold::new(w.size);
    let blocks = Layout::even(acc.len(), f.pof2);
    let nr = halving(w, &f, &blocks, acc, op)?;
    if w.rank == root {
        for other in (0..f.pof2).filter(|&o| Some(o) != nr) {
            let b = blocks.block(halving_block(other, &f));
            w.recv_into(f.real(other), bytes_mut(&mut acc[b]))?;
        }
    } else if let Some(nr) = nr {
        w.send(root, &[bytes(&acc[blocks.block(halving_block(nr, &f))])])?;
    }
    Ok(())
}

/// Allreduces every rank's `acc` into `acc`.
pub(crate) fn allreduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    acc: &mut [T],
    op: &O,
    alg: Option<AllreduceAlgorithm>,
) -> Result<(), C::Error> {
    let (n, p) = (acc.len(), comm.size());
    let alg = match alg {
        Some(a) => select::usable_allreduce(a, op.commutative()),
        None => select::allreduce(n, std::mem::size_of_val(acc), p, op.commutative()),
    };
    let w = Ctx::new(comm, header::<T>(OpCode::Allreduce, alg.code(), None, n));
    if p == 1 {
        return Ok(());
    }
    match alg {
        AllreduceAlgorithm::RecursiveDoubling => {
            let f = Fold::new(p);
            let mut tmp = scratch::<T>(n);
            if let Some(nr) = fold_in(&w, &f, acc, &mut tmp, op)? {
                for m in f.masks() {
                    let partner = f.real(nr ^ m);
                    w.sendrecv(partner, bytes(acc), partner, bytes_mut(&mut tmp))?;
                    fold(op, acc, &tmp, nr & m != 0);
                }
            }
            fold_out(&w, &f, acc)
        }
        AllreduceAlgorithm::Rabenseifner => {
            let f = Fold::new(p);
            let blocks = Layout::even(n, f.pof2);
            if let Some(nr) = halving(&w, &f, &blocks, acc, op)? {
                // Undo the halving: in reverse, swap our range for the partner's.
                let ranges: Vec<_> = f
                    .masks()
                    .scan((0, f.pof2), |range, m| {
                        let before = *range;
                        *range = halves(nr, m, range.0, range.1).0;
                        Some((m, before))
                    })
                    .collect();
                for &(m, (lo, hi)) in ranges.iter().rev() {
                    let partner = f.real(nr ^ m);
                    let (mine, theirs) = halves(nr, m, lo, hi);
                    let (o, i) = split_pair(
                        acc,
                        blocks.span(mine.0, mine.1),
                        blocks.span(theirs.0, theirs.1),
                    );
                    w.sendrecv(partner, bytes(o), partner, bytes_mut(i))?;
                }
            }
            fold_out(&w, &f, acc)
        }
        AllreduceAlgorithm::Ring => {
            let blocks = Layout::even(n, p);
            ring_reduce_scatter(&w, acc, &blocks, op)?;
            let elem = std::mem::size_of::<T>();
            allgather_blocks(
                &w,
                bytes_mut(acc),
                &blocks.scaled(elem),
                0,
                AllgatherAlgorithm::Ring,
            )
        }
        AllreduceAlgorithm::ReduceBcast => {
            binomial(&w, 0, acc, op)?;
            crate::bcast::binomial(&w, 0, bytes_mut(acc))
        }
    }
}

/// Ring reduce-scatter: afterwards block `r` of `acc` holds the reduction of everyone's
/// block `r` (commutative operations only). In step `s`, rank `r` passes block
/// `r - s - 1` on to `r + 1` and folds block `r - s - 2` from `r - 1` into its own.
fn ring_reduce_scatter<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    acc: &mut [T],
    blocks: &Layout,
    op: &O,
) -> Result<(), C::Error> {
    let (r, p) = (w.rank, w.size);
    let largest = blocks.sizes().into_iter().max().unwrap_or(0);
    let mut tmp = scratch::<T>(largest);
    for s in 0..p.saturating_sub(1) {
        let out = blocks.block((r + 2 * p - s - 1) % p);
        let inc = blocks.block((r + 2 * p - s - 2) % p);
        let t = &mut tmp[..inc.len()];
        w.sendrecv((r + 1) % p, bytes(&acc[out]), (r + p - 1) % p, bytes_mut(t))?;
        fold_lo(op, t, &mut acc[inc]);
    }
    Ok(())
}

/// Reduce-scatter with equal blocks: `buf` holds `p` blocks of `buf.len() / p` elements;
/// afterwards its first block holds the reduction of every rank's block `rank` (the rest
/// is clobbered).
pub(crate) fn reduce_scatter_block<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    buf: &mut [T],
    op: &O,
    alg: Option<ReduceScatterAlgorithm>,
) -> Result<(), C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    if buf.len() % p != 0 {
        return Err(crate::CollectiveError::arg(
            "reduce_scatter_block",
            r,
            format!(
                "buffer of {} elements is not a multiple of the {p} ranks",
                buf.len()
            ),
        )
        .into());
    }
    let k = buf.len() / p;
    let alg = match alg {
        Some(a) => select::usable_reduce_scatter(a, op.commutative()),
        None => select::reduce_scatter(std::mem::size_of_val(buf), op.commutative()),
    };
    let w = Ctx::new(
        comm,
        header::<T>(OpCode::ReduceScatterBlock, alg.code(), None, k),
    );
    match alg {
        ReduceScatterAlgorithm::Ring => {
            ring_reduce_scatter(&w, buf, &Layout::uniform(k, p), op)?;
            buf.copy_within(r * k..(r + 1) * k, 0);
            Ok(())
        }
        ReduceScatterAlgorithm::ReduceThenScatter => {
            binomial(&w, 0, buf, op)?;
            let mut mine = scratch::<T>(k);
            let send = (r == 0).then_some(bytes(buf));
            crate::scatter::binomial(&w, 0, send, bytes_mut(&mut mine))?;
            buf[..k].copy_from_slice(&mine);
            Ok(())
        }
    }
}

/// `reduce` with separate send and (root-only) receive buffers.
pub(crate) fn reduce_into<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    root: usize,
    send: &[T],
    recv: Option<&mut [T]>,
    op: &O,
) -> Result<(), C::Error> {
    check_root(root, comm.size())?;
    let r = comm.rank();
    match recv {
        Some(recv) if r == root => {
            check_len("reduce", r, "the receive buffer", send.len(), recv.len())?;
            recv.copy_from_slice(send);
            reduce(comm, root, recv, op, None)
        }
        None if r == root => {
            Err(
                crate::CollectiveError::arg("reduce", r, "the root must pass a receive buffer")
                    .into(),
            )
        }
        _ => reduce(comm, root, &mut send.to_vec(), op, None),
    }
}
