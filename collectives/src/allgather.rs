//! Allgather: every rank ends with every rank's block. [`allgather_blocks`] runs ring,
//! recursive doubling or Bruck over any block layout (blocks may differ in size), and is
//! shared by allgather, allgatherv, the scatter-allgather broadcast and the ring allreduce.

use bytemuck::Pod;

use crate::WithCounts;

use crate::blocks::{bytes_mut, split_pair, Layout};
use crate::error::check_len;
use crate::scratch::Scratch;
use crate::select::{self, AllgatherAlgorithm, Placement};
use crate::wire::{Ctx, Header, OpCode};
use crate::PointToPoint;

/// Completes `buf` on every rank: block `i` of `layout` (bytes) belongs to rank
/// `(i + rot) mod p`, which has it in place on entry.
pub(crate) fn allgather_blocks<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    buf: &mut [u8],
    layout: &Layout,
    rot: usize,
    alg: AllgatherAlgorithm,
) -> Result<(), C::Error> {
    let p = w.size;
    if p == 1 {
        return Ok(());
    }
    let v = (w.rank + p - rot) % p;
    let abs = |x: usize| (x + rot) % p;
    match select::usable_allgather(alg, p) {
        AllgatherAlgorithm::Ring => {
            // Step s: pass on the block received in step s - 1 (first: our own).
            for s in 0..p - 1 {
                let out = (v + p - s) % p;
                let inc = (v + 2 * p - s - 1) % p;
                let (o, i) = split_pair(buf, layout.block(out), layout.block(inc));
                w.sendrecv(abs(v + 1), o, abs(v + p - 1), i)?;
            }
        }
        AllgatherAlgorithm::RecursiveDoubling => {
            // Step m: exchange the m blocks gathered so far with the partner's m blocks.
            let mut m = 1;
            while m < p {
                let (mine, theirs) = (v & !(m - 1), (v ^ m) & !(m - 1));
                let (o, i) = split_pair(
                    buf,
                    layout.span(mine, mine + m),
                    layout.span(theirs, theirs + m),
                );
                w.sendrecv(abs(v ^ m), o, abs(v ^ m), i)?;
                m *= 2;
            }
        }
        AllgatherAlgorithm::Bruck => {
            // Work in a buffer rotated so that our block comes first; in step `pof` send
            // the first min(pof, p - pof) blocks to v - pof, receive as many from v + pof.
            let sizes = layout.sizes();
            let rotl = Layout::from_sizes((0..p).map(|i| sizes[(v + i) % p]));
            let mut tmp = Scratch::<u8>::new(layout.total());
            tmp[rotl.block(0)].copy_from_slice(&buf[layout.block(v)]);
            let mut pof = 1;
            while pof < p {
                let cnt = pof.min(p - pof);
                let (o, i) = split_pair(&mut tmp, rotl.span(0, cnt), rotl.span(pof, pof + cnt));
                w.sendrecv(abs(v + p - pof), o, abs(v + pof), i)?;
                pof *= 2;
            }
            for i in 1..p {
                buf[layout.block((v + i) % p)].copy_from_slice(&tmp[rotl.block(i)]);
            }
        }
    }
    Ok(())
}

/// Allgather of equal blocks in place: `buf` holds `p` blocks and this rank's is in place.
pub(crate) fn allgather_in_place<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    buf: &mut [T],
    alg: Option<AllgatherAlgorithm>,
) -> Result<(), C::Error> {
    let p = comm.size();
    if buf.len() % p != 0 {
        return Err(crate::CollectiveError::arg(
            "allgather",
            comm.rank(),
            format!(
                "buffer of {} elements is not a multiple of the {p} ranks",
                buf.len()
            ),
        )
        .into());
    }
    let n = buf.len() / p;
    let elem = std::mem::size_of::<T>();
    let bytes = n * elem * p;
    let alg = alg.unwrap_or_else(|| select::allgather_on(bytes, p, Placement::of(comm)));
    let w = Ctx::new(
        comm,
        Header::new(OpCode::Allgather, alg.code(), elem, None, n),
    );
    allgather_blocks(&w, bytes_mut(buf), &Layout::uniform(n * elem, p), 0, alg)
}

/// Allgather of equal blocks into `recv` (`p` times `send`'s length).
pub(crate) fn allgather_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    send: &[T],
    recv: &mut [T],
    alg: Option<AllgatherAlgorithm>,
) -> Result<(), C::Error> {
    let (r, n) = (comm.rank(), send.len());
    check_len(
        "allgather",
        r,
        "the receive buffer",
        n * comm.size(),
        recv.len(),
    )?;
    recv[r * n..(r + 1) * n].copy_from_slice(send);
    allgather_in_place(comm, recv, alg)
}

/// Allgatherv with known counts into `recv` under the call described by `op`.
pub(crate) fn allgatherv_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    op: OpCode,
    send: &[T],
    recv: &mut [T],
    counts: &[usize],
    alg: Option<AllgatherAlgorithm>,
) -> Result<(), C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    let call = op.name();
    check_len(call, r, "the counts", p, counts.len())?;
    check_len(
        call,
        r,
        "the send buffer (this rank's count)",
        counts[r],
        send.len(),
    )?;
    let layout = Layout::from_sizes(counts.iter().copied());
    check_len(
        call,
        r,
        "the receive buffer (the sum of the counts)",
        layout.total(),
        recv.len(),
    )?;
    recv[layout.block(r)].copy_from_slice(send);
    let elem = std::mem::size_of::<T>();
    let alg =
        alg.unwrap_or_else(|| select::allgather_on(layout.total() * elem, p, Placement::of(comm)));
    let w = Ctx::new(
        comm,
        Header::new(op, alg.code(), elem, None, layout.total()),
    );
    allgather_blocks(&w, bytes_mut(recv), &layout.scaled(elem), 0, alg)
}

/// Allgathers every rank's count (as little-endian `u64`s).
pub(crate) fn allgather_counts<C: PointToPoint + ?Sized>(
    comm: &C,
    mine: usize,
    alg: Option<AllgatherAlgorithm>,
) -> Result<Vec<usize>, C::Error> {
    let p = comm.size();
    let mut counts = vec![0u64; p];
    counts[comm.rank()] = (mine as u64).to_le();
    let alg = alg.unwrap_or_else(|| select::allgather_on(8 * p, p, Placement::of(comm)));
    let w = Ctx::new(
        comm,
        Header::new(OpCode::AllgathervCounts, alg.code(), 8, None, 1),
    );
    allgather_blocks(&w, bytes_mut(&mut counts), &Layout::uniform(8, p), 0, alg)?;
    counts
        .iter()
        .enumerate()
        .map(|(peer, &c)| {
            usize::try_from(u64::from_le(c)).map_err(|_| {
                w.malformed(
                    peer,
                    format!("count {} does not fit in usize", u64::from_le(c)),
                )
            })
        })
        .collect()
}

/// Allgatherv with counts discovered first; returns the data and the counts.
pub(crate) fn allgatherv<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    op: OpCode,
    send: &[T],
    alg: Option<AllgatherAlgorithm>,
) -> Result<WithCounts<T>, C::Error> {
    let counts = allgather_counts(comm, send.len(), alg)?;
    let total = counts.iter().try_fold(0usize, |a, &c| a.checked_add(c));
    let total = total
        .ok_or_else(|| crate::CollectiveError::arg(op.name(), comm.rank(), "counts overflow"))?;
    let mut recv = crate::blocks::zeroed(total);
    allgatherv_into(comm, op, send, &mut recv, &counts, alg)?;
    Ok((recv, counts))
}
