//! Inclusive and exclusive prefix reductions ([`scan`], [`exscan`]) by recursive
//! doubling (MPICH's algorithm): in round `m` rank `r` exchanges the reduction of its
//! group of `m` ranks with rank `r ^ m`; contributions from the lower group are folded in
//! on the left, so non-commutative operations stay in rank order.

use bytemuck::Pod;

use crate::blocks::{bytes, bytes_mut, zeroed};
use crate::op::{fold_hi, fold_lo, Op};
use crate::wire::{Ctx, Header, OpCode};
use crate::PointToPoint;

/// Recursive-doubling prefix reduction of `mine`. Returns `(inclusive, exclusive)`:
/// when `want_inclusive`, `mine` becomes the inclusive prefix; the exclusive prefix is
/// returned (`None` on rank 0) when not.
fn prefix<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    mine: &mut [T],
    op: &O,
    want_inclusive: bool,
) -> Result<Option<Vec<T>>, C::Error> {
    let code = if want_inclusive {
        OpCode::Scan
    } else {
        OpCode::Exscan
    };
    let w = Ctx::new(
        comm,
        Header::new(code, 0, std::mem::size_of::<T>(), None, mine.len()),
    );
    let (r, p) = (w.rank, w.size);
    let mut group = mine.to_vec();
    let mut tmp = zeroed::<T>(mine.len());
    let mut below: Option<Vec<T>> = None;
    let mut m = 1;
    while m < p {
        let partner = r ^ m;
        if partner < p {
            w.sendrecv(partner, bytes(&group), partner, bytes_mut(&mut tmp))?;
            if partner < r {
                fold_lo(op, &tmp, &mut group);
                if want_inclusive {
                    fold_lo(op, &tmp, mine);
                } else if let Some(b) = below.as_mut() {
                    fold_lo(op, &tmp, b);
                } else {
                    below = Some(tmp.clone());
                }
            } else {
                fold_hi(op, &mut group, &tmp);
            }
        }
        m *= 2;
    }
    Ok(below)
}

/// Inclusive scan in place: `buf` becomes `x0 ∘ … ∘ x_rank`.
pub(crate) fn scan<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    buf: &mut [T],
    op: &O,
) -> Result<(), C::Error> {
    prefix(comm, buf, op, true).map(|_| ())
}

/// Exclusive scan: `x0 ∘ … ∘ x_(rank-1)`, `None` on rank 0.
pub(crate) fn exscan<C: PointToPoint + ?Sized, T: Pod, O: Op<T> + ?Sized>(
    comm: &C,
    send: &[T],
    op: &O,
) -> Result<Option<Vec<T>>, C::Error> {
    prefix(comm, &mut send.to_vec(), op, false)
}
