//! Gather to a root down a binomial tree: [`gatherv`] of contributions of any lengths
//! (the counts travel with the data, so nobody needs to know them beforehand) and
//! [`gather`] of equal-length contributions, which checks the lengths agree.
//!
//! Each edge of the tree carries one message: the counts of the sender's whole subtree
//! (little-endian `u64`s) followed by the subtree's data in rank order relative to the
//! root. The root rotates the relative order back to rank order.

use bytemuck::Pod;

use crate::WithCounts;

use crate::blocks::{bytes, scratch, Layout};
use crate::error::check_root;
use crate::tree::Tree;
use crate::wire::{decode_counts, encode_counts, Ctx, Header, OpCode};
use crate::{CollectiveError, PointToPoint};

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
    let mut counts = vec![mine.len()];
    let mut rest: Vec<u8> = Vec::new();
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
        rest.extend_from_slice(data);
    }
    if let Some(parent) = t.parent() {
        w.send(
            t.abs(parent),
            &[&encode_counts(&counts), bytes(mine), &rest],
        )?;
        return Ok(None);
    }
    // The root: `counts` and `mine ++ rest` are in rank order relative to the root.
    let rel = Layout::from_sizes(counts.iter().copied());
    let mut out: Vec<T> = scratch(rel.total());
    let out_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
    let abs_counts: Vec<usize> = (0..p).map(|a| counts[(a + p - root) % p]).collect();
    let abs = Layout::from_sizes(abs_counts.iter().copied());
    let own = mine.len() * elem;
    for a in 0..p {
        let v = (a + p - root) % p;
        let dst = &mut out_bytes[abs.block(a).start * elem..abs.block(a).end * elem];
        if v == 0 {
            dst.copy_from_slice(bytes(mine));
        } else {
            let r = rel.block(v);
            dst.copy_from_slice(&rest[r.start * elem - own..r.end * elem - own]);
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

/// Gathers equal-length contributions to `root`; the root checks that the lengths agree.
pub(crate) fn gather<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    mine: &[T],
) -> Result<Option<Vec<T>>, C::Error> {
    check_root(root, comm.size())?;
    let n = mine.len();
    let hdr = Header::new(OpCode::Gather, 0, std::mem::size_of::<T>(), Some(root), n);
    let Some((all, counts)) = gatherv_in(&Ctx::new(comm, hdr), root, mine)? else {
        return Ok(None);
    };
    if let Some(peer) = counts.iter().position(|&c| c != n) {
        return Err(CollectiveError::CountMismatch {
            call: "gather".into(),
            rank: root,
            peer,
            expected: n as u64,
            found: counts[peer] as u64,
        }
        .into());
    }
    Ok(Some(all))
}
