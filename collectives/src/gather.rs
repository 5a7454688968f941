//! Gather to a root: [`gather_into`] of equal-length contributions, received in place,
//! linear or down a binomial tree, and [`gatherv`] of contributions of any lengths down a
//! binomial tree (the counts travel with the data, so nobody needs to know them
//! beforehand).
//!
//! In the linear gather every rank sends its block straight to the root, which receives
//! it in place. In the binomial trees each edge carries one message: the sender's whole
//! subtree's data in rank order relative to the root (a subtree is a contiguous range of
//! relative ranks, see [`crate::tree::Tree`]); for gatherv the subtree's counts
//! (little-endian `u64`s) come first. In a gather every count is the call's count, carried
//! and checked in the header, so every piece has a known place: the root receives each
//! child's subtree straight into its output (in two pieces when the subtree wraps past the
//! last rank), and an inner rank receives its children's subtrees into one scratch buffer
//! and sends its own block and that buffer as one message. Nothing is copied but the
//! root's own block.

use bytemuck::Pod;

use crate::WithCounts;

use crate::blocks::{bytes, bytes_mut, zeroed, Layout};
use crate::error::{check_len, check_root};
use crate::scratch::Scratch;
use crate::select::{self, GatherAlgorithm, Placement};
use crate::tree::Tree;
use crate::wire::{decode_counts, encode_counts, Body, Ctx, Header, OpCode};
use crate::PointToPoint;

/// Gather of equal blocks under the call `w`: every rank's `mine` (the same length
/// everywhere, which the headers check) lands in the root's `out` (`p` blocks in rank
/// order); `out` is ignored elsewhere.
fn gather_blocks<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    mine: &[u8],
    out: Option<&mut [u8]>,
    alg: GatherAlgorithm,
) -> Result<(), C::Error> {
    match alg {
        GatherAlgorithm::Binomial => binomial(w, root, mine, out),
        GatherAlgorithm::Linear => linear(w, root, mine, out),
    }
}

/// Every rank sends its block to the root, which receives each in place.
fn linear<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    mine: &[u8],
    out: Option<&mut [u8]>,
) -> Result<(), C::Error> {
    let blk = mine.len();
    match out {
        _ if w.rank != root => w.put(root, &[mine]),
        None => Err(w.arg_error("the root must pass a receive buffer")),
        Some(out) => {
            out[root * blk..(root + 1) * blk].copy_from_slice(mine);
            let mut blocks: Vec<(usize, &mut [u8])> = if blk == 0 {
                // Empty blocks still come as (header-only) messages.
                (0..w.size).map(|a| (a, &mut [][..])).collect()
            } else {
                out.chunks_mut(blk).enumerate().collect()
            };
            blocks.retain(|&(a, _)| a != root);
            w.take_all(&mut blocks)
        }
    }
}

/// Binomial tree: a rank receives its children's subtrees, then sends its own block and
/// theirs to its parent as one message.
fn binomial<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    mine: &[u8],
    out: Option<&mut [u8]>,
) -> Result<(), C::Error> {
    let (p, blk) = (w.size, mine.len());
    let t = Tree::new(w.rank, root, p);
    let children = t.children();
    match (t.parent(), out) {
        (None, Some(out)) => {
            out[root * blk..(root + 1) * blk].copy_from_slice(mine);
            for c in children {
                let (a, k) = (t.abs(c), t.subtree_end(c) - c);
                if a + k <= p {
                    w.take_into(a, &mut out[a * blk..(a + k) * blk])?;
                } else {
                    // The subtree wraps: ranks a..p, then 0..a+k-p.
                    let (front, back) = out.split_at_mut(a * blk);
                    w.take(a, &mut [back, &mut front[..(a + k - p) * blk]])?;
                }
            }
            Ok(())
        }
        (None, None) => Err(w.arg_error("the root must pass a receive buffer")),
        (Some(parent), _) if children.is_empty() => w.put(t.abs(parent), &[mine]),
        (Some(parent), _) => {
            // Relative ranks v+1 .. subtree_end(v), children's subtrees in order.
            let mut below = Scratch::<u8>::new((t.subtree_end(t.v) - t.v - 1) * blk);
            for c in children {
                let off = (c - t.v - 1) * blk;
                let len = (t.subtree_end(c) - c) * blk;
                w.take_into(t.abs(c), &mut below[off..off + len])?;
            }
            w.put(t.abs(parent), &[mine, &below])
        }
    }
}

/// Gathers equal-length contributions into the root's `recv` (`size` times `send`'s
/// length); other ranks' `recv` is ignored. A root whose `recv` is missing or of the wrong
/// length still takes part (into scratch space) before it reports the error, so the other
/// ranks are not left blocked in their sends.
pub(crate) fn gather_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    send: &[T],
    recv: Option<&mut [T]>,
    alg: Option<GatherAlgorithm>,
) -> Result<(), C::Error> {
    check_root(root, comm.size())?;
    let (r, p, n) = (comm.rank(), comm.size(), send.len());
    let elem = std::mem::size_of::<T>();
    let alg = alg.unwrap_or_else(|| select::gather_on(n * elem, p, Placement::of(comm)));
    let hdr = Header::new(OpCode::Gather, alg.code(), elem, Some(root), n);
    let w = Ctx::new(comm, hdr);
    if r != root {
        return gather_blocks(&w, root, bytes(send), None, alg);
    }
    let err: C::Error = match recv {
        None => w.arg_error("the root must pass a receive buffer"),
        Some(b) => match check_len("gather", r, "the receive buffer", n * p, b.len()) {
            Ok(()) => return gather_blocks(&w, root, bytes(send), Some(bytes_mut(b)), alg),
            Err(e) => e.into(),
        },
    };
    let mut sink = Scratch::<T>::new(n * p);
    gather_blocks(&w, root, bytes(send), Some(bytes_mut(&mut sink)), alg)?;
    Err(err)
}

/// Gathers equal-length contributions to `root`; on the root, everyone's in rank order.
pub(crate) fn gather<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    mine: &[T],
) -> Result<Option<Vec<T>>, C::Error> {
    check_root(root, comm.size())?;
    if comm.rank() != root {
        gather_into(comm, root, mine, None, None)?;
        return Ok(None);
    }
    let mut out = zeroed::<T>(mine.len() * comm.size());
    gather_into(comm, root, mine, Some(&mut out), None)?;
    Ok(Some(out))
}

/// Binomial gatherv under the call `w`. On the root: everyone's data in rank order and
/// the counts (in elements); elsewhere `None`.
pub(crate) fn gatherv_in<C: PointToPoint + ?Sized, T: Pod>(
    w: &Ctx<C>,
    root: usize,
    mine: &[T],
) -> Result<Option<WithCounts<T>>, C::Error> {
    let p = w.size;
    let elem = std::mem::size_of::<T>().max(1);
    let t = Tree::new(w.rank, root, p);
    // Relative rank order: this rank, then each child's subtree.
    let mut counts = vec![mine.len()];
    let mut parts: Vec<(Body, usize)> = Vec::new(); // (message, where its data starts)
    for c in t.children() {
        let src = t.abs(c);
        let msg = w.recv_vec(src)?;
        let k = t.subtree_end(c) - c;
        let (cs, data) = decode_counts(&msg, k)
            .ok_or_else(|| w.malformed(src, format!("too short for the counts of {k} ranks")))?;
        let total = cs
            .iter()
            .try_fold(0usize, |a, &c| a.checked_add(c.checked_mul(elem)?));
        if total != Some(data.len()) {
            return Err(w.malformed(
                src,
                format!(
                    "its counts do not add up to its {} bytes of data",
                    data.len()
                ),
            ));
        }
        counts.extend(cs);
        let start = msg.len() - data.len();
        parts.push((msg, start));
    }
    if let Some(parent) = t.parent() {
        let head = encode_counts(&counts);
        let mut out: Vec<&[u8]> = vec![&head, bytes(mine)];
        out.extend(parts.iter().map(|(m, s)| &m[*s..]));
        w.send(t.abs(parent), &out)?;
        return Ok(None);
    }
    // The root: `counts` and the data are in rank order relative to the root.
    let abs_counts: Vec<usize> = (0..p).map(|a| counts[(a + p - root) % p]).collect();
    let abs = Layout::from_sizes(abs_counts.iter().copied());
    let mut out: Vec<T> = zeroed(abs.total());
    let out_bytes = bytes_mut(&mut out);
    let mut place = |v: usize, data: &[u8]| {
        let b = abs.block((v + root) % p);
        out_bytes[b.start * elem..b.end * elem].copy_from_slice(data);
    };
    place(0, bytes(mine));
    for (c, (msg, start)) in t.children().into_iter().zip(&parts) {
        let mut data = &msg[*start..];
        for (v, &count) in counts.iter().enumerate().take(t.subtree_end(c)).skip(c) {
            let (one, rest) = data.split_at(count * elem);
            place(v, one);
            data = rest;
        }
    }
    Ok(Some((out, abs_counts)))
}

/// Gathers contributions of any lengths to `root`, concatenated in rank order.
pub(crate) fn gatherv<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    mine: &[T],
) -> Result<Option<WithCounts<T>>, C::Error> {
    check_root(root, comm.size())?;
    let hdr = Header::new(OpCode::Gatherv, 0, std::mem::size_of::<T>(), Some(root), 0);
    gatherv_in(&Ctx::new(comm, hdr), root, mine)
}
