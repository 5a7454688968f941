//! Scatter from a root: [`scatter_into`] of equal blocks, linear (the root sends each rank
//! its block directly) or down a binomial tree ([`binomial`]: each tree edge carries the
//! contiguous blocks of the child's subtree), and a linear [`scatterv`] for blocks of any
//! sizes (as MPICH does).

use bytemuck::Pod;

use crate::blocks::{bytes, bytes_mut, from_bytes, Layout};
use crate::error::{check_len, check_root};
use crate::scratch::Scratch;
use crate::select::{self, Placement, ScatterAlgorithm};
use crate::tree::Tree;
use crate::wire::{Ctx, Header, OpCode};
use crate::{CollectiveError, PointToPoint};

/// The root's data, checked to be there and to hold `len` bytes (every block).
fn root_data<'a, C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    send: Option<&'a [u8]>,
    len: usize,
) -> Result<&'a [u8], C::Error> {
    let send = send.ok_or_else(|| w.arg_error("the root must pass the data to scatter"))?;
    check_len(w.call(), w.rank, "the send buffer", len, send.len())?;
    Ok(send)
}

/// Binomial scatter under the call `w`: the root's `send` holds `p` blocks of
/// `recv.len()` bytes in rank order; every rank receives its block into `recv`.
///
/// Nothing is copied but the root's own block: the root sends each child's subtree's
/// blocks straight from `send` (in two pieces when the subtree wraps past the last rank),
/// and an inner rank receives its own block into `recv` and its children's into scratch
/// space in one message.
pub(crate) fn binomial<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    send: Option<&[u8]>,
    recv: &mut [u8],
) -> Result<(), C::Error> {
    let (p, blk) = (w.size, recv.len());
    let t = Tree::new(w.rank, root, p);
    let children = t.children();
    match t.parent() {
        None => {
            let send = root_data(w, send, blk * p)?;
            for &c in children.iter().rev() {
                let (a, k) = (t.abs(c), t.subtree_end(c) - c);
                if a + k <= p {
                    w.put(a, &[&send[a * blk..(a + k) * blk]])?;
                } else {
                    w.put(a, &[&send[a * blk..], &send[..(a + k - p) * blk]])?;
                }
            }
            recv.copy_from_slice(&send[root * blk..(root + 1) * blk]);
            Ok(())
        }
        Some(parent) if children.is_empty() => w.take_into(t.abs(parent), recv),
        Some(parent) => {
            // Relative ranks v+1 .. subtree_end(v), children's subtrees in order.
            let mut below = Scratch::<u8>::new((t.subtree_end(t.v) - t.v - 1) * blk);
            w.take(t.abs(parent), &mut [recv, &mut below])?;
            for &c in children.iter().rev() {
                let off = (c - t.v - 1) * blk;
                let len = (t.subtree_end(c) - c) * blk;
                w.put(t.abs(c), &[&below[off..off + len]])?;
            }
            Ok(())
        }
    }
}

/// Linear scatter under the call `w`: the root sends every rank its block of `send`
/// (`p` blocks of `recv.len()` bytes in rank order) directly.
fn linear<C: PointToPoint + ?Sized>(
    w: &Ctx<C>,
    root: usize,
    send: Option<&[u8]>,
    recv: &mut [u8],
) -> Result<(), C::Error> {
    let (p, blk) = (w.size, recv.len());
    if w.rank != root {
        return w.take_into(root, recv);
    }
    let send = root_data(w, send, blk * p)?;
    // Farthest first, so the ranks next to the root (which runs first when oversubscribed)
    // are not served before the others have been started.
    let dests = (1..p).rev().map(|d| (root + d) % p);
    w.put_each(dests, |a| &send[a * blk..(a + 1) * blk])?;
    recv.copy_from_slice(&send[root * blk..(root + 1) * blk]);
    Ok(())
}

/// Scatters equal blocks of the root's `send` into every rank's `recv`.
pub(crate) fn scatter_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    send: Option<&[T]>,
    recv: &mut [T],
    alg: Option<ScatterAlgorithm>,
) -> Result<(), C::Error> {
    check_root(root, comm.size())?;
    let elem = std::mem::size_of::<T>();
    let (n, p) = (recv.len(), comm.size());
    let alg = alg.unwrap_or_else(|| select::scatter_on(n * elem, p, Placement::of(comm)));
    let w = Ctx::new(
        comm,
        Header::new(OpCode::Scatter, alg.code(), elem, Some(root), n),
    );
    let send = if comm.rank() == root {
        send.map(bytes)
    } else {
        None
    };
    match alg {
        ScatterAlgorithm::Binomial => binomial(&w, root, send, bytes_mut(recv)),
        ScatterAlgorithm::Linear => linear(&w, root, send, bytes_mut(recv)),
    }
}

/// Where this rank's block comes from in a scatterv.
enum Dest<'a, T> {
    /// Into this buffer, whose length must match.
    Into(&'a mut [T]),
    /// Into a new vector of whatever length the root sends.
    New,
}

fn scatterv_impl<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    send: Option<(&[T], &[usize])>,
    dest: Dest<T>,
) -> Result<Option<Vec<T>>, C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    check_root(root, p)?;
    let elem = std::mem::size_of::<T>();
    let w = Ctx::new(comm, Header::new(OpCode::Scatterv, 0, elem, Some(root), 0));
    if r != root {
        return match dest {
            Dest::Into(buf) => w.recv_into(root, bytes_mut(buf)).map(|()| None),
            Dest::New => Ok(Some(from_bytes(&w.recv_vec(root)?))),
        };
    }
    let (data, counts) =
        send.ok_or_else(|| w.arg_error("the root must pass the data and counts to scatter"))?;
    check_len("scatterv", r, "the counts", p, counts.len())?;
    let layout = Layout::from_sizes(counts.iter().copied());
    if layout.total() != data.len() {
        return Err(CollectiveError::arg(
            "scatterv",
            r,
            format!(
                "the counts add up to {} but the data has {} elements",
                layout.total(),
                data.len()
            ),
        )
        .into());
    }
    let own = &data[layout.block(root)];
    if let Dest::Into(buf) = &dest {
        // Checked before anything is sent, so a failed call leaves no stray messages.
        check_len("scatterv", r, "the receive buffer", own.len(), buf.len())?;
    }
    for a in (0..p).filter(|&a| a != root) {
        w.send(a, &[bytes(&data[layout.block(a)])])?;
    }
    match dest {
        Dest::Into(buf) => {
            buf.copy_from_slice(own);
            Ok(None)
        }
        Dest::New => Ok(Some(own.to_vec())),
    }
}

/// Scatters blocks of sizes `counts` of the root's data; returns this rank's block.
pub(crate) fn scatterv<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    send: Option<(&[T], &[usize])>,
) -> Result<Vec<T>, C::Error> {
    Ok(scatterv_impl(comm, root, send, Dest::New)?.unwrap_or_default())
}

/// Scatters blocks of sizes `counts` of the root's data into every rank's `recv`.
pub(crate) fn scatterv_into<C: PointToPoint + ?Sized, T: Pod>(
    comm: &C,
    root: usize,
    send: Option<(&[T], &[usize])>,
    recv: &mut [T],
) -> Result<(), C::Error> {
    scatterv_impl(comm, root, send, Dest::Into(recv)).map(|_| ())
}
