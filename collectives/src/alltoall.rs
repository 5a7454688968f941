//! All-to-all personalized exchange: pairwise exchange (any block sizes, so also
//! alltoallv) and Bruck's algorithm for small equal blocks.

use bytemuck::Pod;

use crate::WithCounts;

use crate::blocks::{bytes, bytes_mut, zeroed, Layout};
use crate::error::check_len;
use crate::scratch::Scratch;
use crate::select::{self, AlltoallAlgorithm};
use crate::wire::{Ctx, Header, OpCode};
use crate::{CollectiveError, PointToPoint};

/// Pairwise exchange: in step `s` send block `dst` to `dst` and receive block `src` from
/// `src` (`r ^ s` on powers of two, else `r + s` and `r - s`).
fn pairwise<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    send: &[u8],
    slay: &Layout,
    recv: &mut [u8],
    rlay: &Layout,
) -> Result<(), C::Error> {
    let (r, p) = (w.rank, w.size);
    recv[rlay.block(r)].copy_from_slice(&send[slay.block(r)]);
    for s in 1..p {
        let (dst, src) = if p.is_power_of_two() {
            (r ^ s, r ^ s)
        } else {
            ((r + s) % p, (r + p - s) % p)
        };
        w.sendrecv(dst, &send[slay.block(dst)], src, &mut recv[rlay.block(src)])?;
    }
    Ok(())
}

/// Bruck: rotate so block `i` is the one for rank `r + i`; in step `pof` send every block
/// whose index has bit `pof` set to `r + pof` and receive the same positions from
/// `r - pof`; finally block `i` of the result is rotated block `r - i`.
fn bruck<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    send: &[u8],
    recv: &mut [u8],
    blk: usize,
) -> Result<(), C::Error> {
    let (r, p) = (w.rank, w.size);
    let at = |i: usize| i * blk..(i + 1) * blk;
    let mut tmp = Scratch::<u8>::new(p * blk);
    for i in 0..p {
        tmp[at(i)].copy_from_slice(&send[at((r + i) % p)]);
    }
    // Room for the blocks of one step, going out and coming in.
    let mut io = Scratch::<u8>::new(2 * p.div_ceil(2) * blk);
    let mut pof = 1;
    while pof < p {
        let idx: Vec<usize> = (0..p).filter(|i| i & pof != 0).collect();
        let (packed, inc) = io.split_at_mut(idx.len() * blk);
        let inc = &mut inc[..idx.len() * blk];
        for (k, &i) in idx.iter().enumerate() {
            packed[k * blk..(k + 1) * blk].copy_from_slice(&tmp[at(i)]);
        }
        w.sendrecv((r + pof) % p, packed, (r + p - pof) % p, inc)?;
        for (k, &i) in idx.iter().enumerate() {
            tmp[at(i)].copy_from_slice(&inc[k * blk..(k + 1) * blk]);
        }
        pof *= 2;
    }
    for i in 0..p {
        recv[at(i)].copy_from_slice(&tmp[at((r + p - i) % p)]);
    }
    Ok(())
}

/// Alltoall of equal blocks: `send` and `recv` hold `p` blocks each.
pub(crate) fn alltoall_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    send: &[T],
    recv: &mut [T],
    alg: Option<AlltoallAlgorithm>,
) -> Result<(), C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    if send.len() % p != 0 {
        return Err(CollectiveError::arg(
            "alltoall",
            r,
            format!(
                "send buffer of {} elements is not a multiple of the {p} ranks",
                send.len()
            ),
        )
        .into());
    }
    check_len("alltoall", r, "the receive buffer", send.len(), recv.len())?;
    let elem = std::mem::size_of::<T>();
    let k = send.len() / p;
    let alg = alg.unwrap_or_else(|| select::alltoall_on(k * elem, p, select::Placement::of(comm)));
    let w = Ctx::new(
        comm,
        Header::new(OpCode::Alltoall, alg.code(), elem, None, k),
    );
    match alg {
        AlltoallAlgorithm::Pairwise => {
            let lay = Layout::uniform(k * elem, p);
            pairwise(&w, bytes(send), &lay, bytes_mut(recv), &lay)
        }
        AlltoallAlgorithm::Bruck => bruck(&w, bytes(send), bytes_mut(recv), k * elem),
    }
}

/// Alltoallv with known counts (pairwise exchange).
pub(crate) fn alltoallv_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    send: &[T],
    send_counts: &[usize],
    recv: &mut [T],
    recv_counts: &[usize],
) -> Result<(), C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    check_len("alltoallv", r, "the send counts", p, send_counts.len())?;
    check_len("alltoallv", r, "the receive counts", p, recv_counts.len())?;
    let slay = Layout::from_sizes(send_counts.iter().copied());
    let rlay = Layout::from_sizes(recv_counts.iter().copied());
    check_len(
        "alltoallv",
        r,
        "the send buffer (the sum of the send counts)",
        slay.total(),
        send.len(),
    )?;
    check_len(
        "alltoallv",
        r,
        "the receive buffer (the sum of the receive counts)",
        rlay.total(),
        recv.len(),
    )?;
    check_len(
        "alltoallv",
        r,
        "the count this rank sends itself",
        recv_counts[r],
        send_counts[r],
    )?;
    let elem = std::mem::size_of::<T>();
    let w = Ctx::new(
        comm,
        Header::new(
            OpCode::Alltoallv,
            AlltoallAlgorithm::Pairwise.code(),
            elem,
            None,
            0,
        ),
    );
    pairwise(
        &w,
        bytes(send),
        &slay.scaled(elem),
        bytes_mut(recv),
        &rlay.scaled(elem),
    )
}

/// Alltoallv that first exchanges the counts; returns the data received and its counts.
pub(crate) fn alltoallv<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    send: &[T],
    send_counts: &[usize],
) -> Result<WithCounts<T>, C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    check_len("alltoallv", r, "the send counts", p, send_counts.len())?;
    let mine: Vec<u64> = send_counts.iter().map(|&c| (c as u64).to_le()).collect();
    let mut theirs = vec![0u64; p];
    let lay = Layout::uniform(8, p);
    let w = Ctx::new(
        comm,
        Header::new(
            OpCode::AlltoallvCounts,
            AlltoallAlgorithm::Pairwise.code(),
            8,
            None,
            1,
        ),
    );
    pairwise(&w, bytes(&mine), &lay, bytes_mut(&mut theirs), &lay)?;
    let recv_counts = theirs
        .iter()
        .enumerate()
        .map(|(peer, &c)| {
            usize::try_from(u64::from_le(c))
                .map_err(|_| w.malformed(peer, "count does not fit in usize"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total = recv_counts
        .iter()
        .try_fold(0usize, |a, &c| a.checked_add(c));
    let total = total.ok_or_else(|| w.arg_error("the receive counts overflow"))?;
    let mut recv = zeroed(total);
    alltoallv_into(comm, send, send_counts, &mut recv, &recv_counts)?;
    Ok((recv, recv_counts))
}
