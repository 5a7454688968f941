//! Barrier by dissemination (Hensgen, Finkel & Manber): in round `k` every rank signals
//! rank `r + 2^k` and waits for rank `r - 2^k`, so after `ceil(log2 p)` rounds every rank
//! has (transitively) heard from every other, for any `p`.

use crate::wire::{Ctx, Header, OpCode};
use crate::PointToPoint;

/// Blocks until every rank of `comm` has entered the barrier.
pub(crate) fn barrier<C: PointToPoint + ?Sized>(comm: &C) -> Result<(), C::Error> {
    let w = Ctx::new(comm, Header::new(OpCode::Barrier, 0, 0, None, 0));
    let (r, p) = (w.rank, w.size);
    let mut dist = 1;
    while dist < p {
        w.sendrecv((r + dist) % p, &[], (r + p - dist) % p, &mut [])?;
        dist *= 2;
    }
    Ok(())
}
