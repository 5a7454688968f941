//! Reductions of Pod slices: reduce to a root, allreduce and reduce-scatter (block).
//!
//! The order in which each algorithm combines contributions (which makes floating-point
//! results bit-identical on every rank) is documented in [`crate::op`].

use bytemuck::Pod;

use crate::allgather::allgather_blocks;
use crate::blocks::{bytes, bytes_mut, split_pair, Layout};
use crate::error::{check_len, check_root};
use crate::op::{fold, fold_hi, fold_lo, Op};
use crate::scratch::Scratch;
use crate::select::{
    self, AllgatherAlgorithm, AllreduceAlgorithm, Placement, ReduceAlgorithm,
    ReduceScatterAlgorithm,
};
use crate::tree::{Fold, Tree};
use crate::wire::{Ctx, Header, OpCode};
use crate::PointToPoint;

fn header<T>(op: OpCode, algo: u8, root: Option<usize>, n: usize) -> Header {
    Header::new(op, algo, std::mem::size_of::<T>(), root, n)
}

/// A reduction's buffers.
pub(crate) enum Bufs<'a, T> {
    /// One buffer holds this rank's input and receives the result (elsewhere than a
    /// reduce's root it is clobbered).
    InPlace(&'a mut [T]),
    /// The input, and where the result goes (`None` on the non-roots of a reduce). Nothing
    /// copies the input into the output first: the first vector received is folded with
    /// the input straight into the output (or into scratch space).
    Separate(&'a [T], Option<&'a mut [T]>),
}

impl<T> Bufs<'_, T> {
    fn len(&self) -> usize {
        match self {
            Bufs::InPlace(a) => a.len(),
            Bufs::Separate(s, _) => s.len(),
        }
    }
}

/// Reduces every rank's input to `root` (see [`Bufs`]). With separate buffers the root
/// must pass an output as long as its input; other ranks' outputs are ignored.
pub(crate) fn reduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    root: usize,
    bufs: Bufs<'_, T>,
    op: &O,
    alg: Option<ReduceAlgorithm>,
) -> Result<(), C::Error> {
    check_root(root, comm.size())?;
    let r = comm.rank();
    let bufs = match bufs {
        Bufs::Separate(send, Some(recv)) if r == root => {
            check_len("reduce", r, "the receive buffer", send.len(), recv.len())?;
            Bufs::Separate(send, Some(recv))
        }
        Bufs::Separate(_, None) if r == root => {
            return Err(crate::CollectiveError::arg(
                "reduce",
                r,
                "the root must pass a receive buffer",
            )
            .into())
        }
        Bufs::Separate(send, _) => Bufs::Separate(send, None),
        b => b,
    };
    let n = bufs.len();
    let alg = alg.unwrap_or_else(|| {
        select::reduce_on(
            n,
            n * std::mem::size_of::<T>(),
            comm.size(),
            Placement::of(comm),
        )
    });
    let w = Ctx::new(comm, header::<T>(OpCode::Reduce, alg.code(), Some(root), n));
    match alg {
        ReduceAlgorithm::Binomial => binomial(&w, root, bufs, op),
        ReduceAlgorithm::Rabenseifner => rabenseifner_reduce(&w, root, bufs, op),
        ReduceAlgorithm::Linear => linear(&w, root, bufs, op),
    }
}

/// Binomial-tree reduce to `root` under the call `w`.
fn binomial<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    bufs: Bufs<'_, T>,
    op: &O,
) -> Result<(), C::Error> {
    let tree_root = if op.commutative() { root } else { 0 };
    let t = Tree::new(w.rank, tree_root, w.size);
    let children = t.children();
    let n = bufs.len();
    let mut own = None;
    // `input`: set while this rank's partial result is still its untouched input;
    // `acc`: where the partial result is built (none on a leaf without an output).
    let (mut input, mut acc) = match bufs {
        Bufs::InPlace(a) => (None, Some(a)),
        Bufs::Separate(s, Some(r)) => (Some(s), Some(r)),
        Bufs::Separate(s, None) if children.is_empty() => (Some(s), None),
        Bufs::Separate(s, None) => (Some(s), Some(&mut own.insert(Scratch::new(n))[..])),
    };
    if let Some(a) = acc.as_deref_mut() {
        let mut tmp: Option<Scratch<T>> = None;
        for c in children {
            match input.take() {
                Some(s) => {
                    // acc = mine ∘ child: the same operands in the same order as below.
                    w.take_into(t.abs(c), bytes_mut(a))?;
                    fold_lo(op, s, a);
                }
                None => {
                    let tmp = tmp.get_or_insert_with(|| Scratch::new(n));
                    w.take_into(t.abs(c), bytes_mut(tmp))?;
                    fold_hi(op, a, tmp);
                }
            }
        }
    }
    // This rank's partial result: its untouched input (a leaf) or the accumulator.
    let partial: &[T] = input.or(acc.as_deref()).unwrap_or_default();
    if let Some(parent) = t.parent() {
        w.put(t.abs(parent), &[bytes(partial)])?;
    }
    if tree_root != root {
        if w.rank == tree_root {
            w.put(root, &[bytes(partial)])?;
        } else if let (true, Some(a)) = (w.rank == root, acc) {
            w.take_into(tree_root, bytes_mut(a))?;
        }
    } else if let (true, Some(s), Some(a)) = (w.rank == root, input, acc) {
        a.copy_from_slice(s); // a single rank
    }
    Ok(())
}

/// Linear reduce: every rank sends its vector straight to the root, which folds them in
/// around its own: first the lower ranks from the nearest down (`x_r ∘ acc`), then the
/// higher ones upwards (`acc ∘ x_r`), which is rank order for any associative operation.
fn linear<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    bufs: Bufs<'_, T>,
    op: &O,
) -> Result<(), C::Error> {
    let n = bufs.len();
    let acc: &mut [T] = match bufs {
        Bufs::InPlace(a) if w.rank != root => return w.put(root, &[bytes(a)]),
        Bufs::Separate(s, _) if w.rank != root => return w.put(root, &[bytes(s)]),
        Bufs::InPlace(a) => a,
        Bufs::Separate(s, Some(r)) => {
            r.copy_from_slice(s);
            r
        }
        Bufs::Separate(_, None) => return Err(w.arg_error("the root must pass a receive buffer")),
    };
    let mut tmp = Scratch::<T>::new(n);
    for r in (0..root).rev() {
        w.take_into(r, bytes_mut(&mut tmp))?;
        fold_lo(op, &tmp, acc);
    }
    for r in root + 1..w.size {
        w.take_into(r, bytes_mut(&mut tmp))?;
        fold_hi(op, acc, &tmp);
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
            w.put(r + 1, &[bytes(acc)])?;
        } else {
            w.take_into(r - 1, bytes_mut(tmp))?;
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
            w.put(r - 1, &[bytes(acc)])?;
        } else {
            w.take_into(r + 1, bytes_mut(acc))?;
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
///
/// With `send`, the input is there and `acc` is only output: on a power of two the first
/// round receives the partner's half straight into `acc` and folds the input in, so the
/// input is never copied whole (otherwise it is copied into `acc` first).
fn halving<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    f: &Fold,
    blocks: &Layout,
    mut send: Option<&[T]>,
    acc: &mut [T],
    op: &O,
) -> Result<Option<usize>, C::Error> {
    if f.rem > 0 || f.pof2 == 1 {
        if let Some(s) = send.take() {
            acc.copy_from_slice(s);
        }
    }
    let mut tmp = Scratch::<T>::new(acc.len());
    let Some(nr) = fold_in(w, f, acc, &mut tmp, op)? else {
        return Ok(None);
    };
    let (mut lo, mut hi) = (0, f.pof2);
    for m in f.masks() {
        let partner = f.real(nr ^ m);
        let (keep, give) = halves(nr, m, lo, hi);
        let (keep_r, give_r) = (blocks.span(keep.0, keep.1), blocks.span(give.0, give.1));
        if let Some(s) = send.take() {
            let a = &mut acc[keep_r.clone()];
            w.sendrecv(partner, bytes(&s[give_r]), partner, bytes_mut(a))?;
            fold(op, a, &s[keep_r], nr & m == 0);
        } else {
            let t = &mut tmp[..keep_r.len()];
            w.sendrecv(partner, bytes(&acc[give_r]), partner, bytes_mut(t))?;
            fold(op, &mut acc[keep_r], t, nr & m != 0);
        }
        (lo, hi) = keep;
    }
    Ok(Some(nr))
}

fn rabenseifner_reduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    bufs: Bufs<'_, T>,
    op: &O,
) -> Result<(), C::Error> {
    let f = Fold::new(w.size);
    let n = bufs.len();
    let blocks = Layout::even(n, f.pof2);
    let mut own = None;
    let (send, acc) = match bufs {
        Bufs::InPlace(a) => (None, a),
        Bufs::Separate(s, Some(r)) => (Some(s), r),
        Bufs::Separate(s, None) => (Some(s), &mut own.insert(Scratch::new(n))[..]),
    };
    let nr = halving(w, &f, &blocks, send, acc, op)?;
    if w.rank == root {
        for other in (0..f.pof2).filter(|&o| Some(o) != nr) {
            let b = blocks.block(halving_block(other, &f));
            w.take_into(f.real(other), bytes_mut(&mut acc[b]))?;
        }
    } else if let Some(nr) = nr {
        w.put(root, &[bytes(&acc[blocks.block(halving_block(nr, &f))])])?;
    }
    Ok(())
}

/// Allreduces every rank's input into `acc`: the input is `send` if given (as long as
/// `acc`, which the caller checks), else `acc` itself.
pub(crate) fn allreduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    send: Option<&[T]>,
    acc: &mut [T],
    op: &O,
    alg: Option<AllreduceAlgorithm>,
) -> Result<(), C::Error> {
    let (n, p) = (acc.len(), comm.size());
    let alg = match alg {
        Some(a) => select::usable_allreduce(a, op.commutative()),
        None => select::allreduce_on(
            n,
            std::mem::size_of_val(acc),
            p,
            op.commutative(),
            Placement::of(comm),
        ),
    };
    let w = Ctx::new(comm, header::<T>(OpCode::Allreduce, alg.code(), None, n));
    let mut send = send;
    if p == 1 || (alg == AllreduceAlgorithm::Ring) {
        if let Some(s) = send.take() {
            acc.copy_from_slice(s);
        }
    }
    if p == 1 {
        return Ok(());
    }
    match alg {
        AllreduceAlgorithm::RecursiveDoubling => {
            let f = Fold::new(p);
            if f.rem > 0 {
                if let Some(s) = send.take() {
                    acc.copy_from_slice(s);
                }
            }
            let mut tmp = Scratch::<T>::new(n);
            if let Some(nr) = fold_in(&w, &f, acc, &mut tmp, op)? {
                for m in f.masks() {
                    let partner = f.real(nr ^ m);
                    if let Some(s) = send.take() {
                        // First round, input still in `send`: the same operands in the
                        // same order, with the partner's vector received into `acc`.
                        w.sendrecv(partner, bytes(s), partner, bytes_mut(acc))?;
                        fold(op, acc, s, nr & m == 0);
                    } else {
                        w.sendrecv(partner, bytes(acc), partner, bytes_mut(&mut tmp))?;
                        fold(op, acc, &tmp, nr & m != 0);
                    }
                }
            }
            fold_out(&w, &f, acc)
        }
        AllreduceAlgorithm::Rabenseifner => {
            let f = Fold::new(p);
            let blocks = Layout::even(n, f.pof2);
            if let Some(nr) = halving(&w, &f, &blocks, send, acc, op)? {
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
            let bufs = match send {
                Some(s) => Bufs::Separate(s, Some(&mut *acc)),
                None => Bufs::InPlace(&mut *acc),
            };
            binomial(&w, 0, bufs, op)?;
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
    let mut tmp = Scratch::<T>::new(largest);
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
            binomial(&w, 0, Bufs::InPlace(&mut *buf), op)?;
            let mut mine = Scratch::<T>::new(k);
            let send = (r == 0).then_some(bytes(buf));
            crate::scatter::binomial(&w, 0, send, bytes_mut(&mut mine))?;
            buf[..k].copy_from_slice(&mine);
            Ok(())
        }
    }
}
