//! Broadcast of raw bytes from a root: binomial tree, binomial scatter + allgather, and a
//! segmented pipeline along a chain; plus the variable-length binomial broadcast that
//! [`crate::Collectives::bcast_value`] uses.

use crate::allgather::allgather_blocks;
use crate::blocks::Layout;
use crate::select::{self, BcastAlgorithm};
use crate::tree::Tree;
use crate::wire::{Ctx, Header, OpCode};
use crate::PointToPoint;

/// Broadcasts `buf` (of elements `elem` bytes wide) from `root` with algorithm `alg`.
/// The caller has checked `root`.
pub(crate) fn bcast_bytes<C: PointToPoint + ?Sized>(
    comm: &C,
    root: usize,
    buf: &mut [u8],
    elem: usize,
    alg: BcastAlgorithm,
) -> Result<(), C::Error> {
    let hdr = Header::new(
        OpCode::Bcast,
        alg.code(),
        elem,
        Some(root),
        buf.len() / elem.max(1),
    );
    let w = Ctx::new(comm, hdr);
    if w.size == 1 {
        return Ok(());
    }
    match alg {
        BcastAlgorithm::Binomial => binomial(&w, root, buf),
        BcastAlgorithm::ScatterAllgather => scatter_allgather(&w, root, buf),
        BcastAlgorithm::Pipeline => pipeline(&w, root, buf, select::segment_size()),
    }
}

/// Binomial tree: receive from the parent, then send to the children, largest subtree first.
pub(crate) fn binomial<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    buf: &mut [u8],
) -> Result<(), C::Error> {
    let t = Tree::new(w.rank, root, w.size);
    if let Some(parent) = t.parent() {
        w.take_into(t.abs(parent), buf)?;
    }
    for c in t.children().into_iter().rev() {
        w.put(t.abs(c), &[buf])?;
    }
    Ok(())
}

/// Van de Geijn: the root's buffer is cut into one block per rank (relative to the root),
/// scattered down a binomial tree (each edge carries its subtree's contiguous blocks), then
/// allgathered.
fn scatter_allgather<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    buf: &mut [u8],
) -> Result<(), C::Error> {
    let p = w.size;
    let layout = Layout::even(buf.len(), p);
    let t = Tree::new(w.rank, root, p);
    if let Some(parent) = t.parent() {
        w.take_into(
            t.abs(parent),
            &mut buf[layout.span(t.v, t.subtree_end(t.v))],
        )?;
    }
    for c in t.children().into_iter().rev() {
        w.put(t.abs(c), &[&buf[layout.span(c, t.subtree_end(c))]])?;
    }
    let alg = select::allgather_auto(buf.len(), p, select::Placement::of(w.comm()));
    allgather_blocks(w, buf, &layout, root, alg)
}

/// A chain `root -> root+1 -> ...` carrying `segment`-byte pieces: each inner rank
/// forwards piece `i - 1` while it receives piece `i`.
fn pipeline<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    buf: &mut [u8],
    segment: usize,
) -> Result<(), C::Error> {
    let p = w.size;
    let v = (w.rank + p - root) % p;
    let (prev, next) = ((w.rank + p - 1) % p, (w.rank + 1) % p);
    let pieces = buf.len().div_ceil(segment).max(1);
    let seg = Layout::even(buf.len(), pieces);
    let (has_prev, has_next) = (v > 0, v + 1 < p);
    if !has_prev {
        for i in 0..pieces {
            w.send(next, &[&buf[seg.block(i)]])?;
        }
        return Ok(());
    }
    w.recv_into(prev, &mut buf[seg.block(0)])?;
    for i in 1..pieces {
        if has_next {
            let (out, inc) = crate::blocks::split_pair(buf, seg.block(i - 1), seg.block(i));
            w.sendrecv(next, out, prev, inc)?;
        } else {
            w.recv_into(prev, &mut buf[seg.block(i)])?;
        }
    }
    if has_next {
        w.send(next, &[&buf[seg.block(pieces - 1)]])?;
    }
    Ok(())
}

/// Broadcasts a byte string whose length only the root knows, down a binomial tree.
pub(crate) fn bcast_var<C: PointToPoint + ?Sized>(
    comm: &C,
    root: usize,
    data: Option<Vec<u8>>,
) -> Result<Vec<u8>, C::Error> {
    let w = Ctx::new(comm, Header::new(OpCode::BcastValue, 0, 1, Some(root), 0));
    let t = Tree::new(w.rank, root, w.size);
    let data = match t.parent() {
        Some(parent) => w.recv_vec(t.abs(parent))?.into_vec(),
        None => data.unwrap_or_default(),
    };
    for c in t.children().into_iter().rev() {
        w.send(t.abs(c), &[&data])?;
    }
    Ok(data)
}
