//! Collective algorithms (barrier, bcast, reduce, gather, ...) written against the
//! [`PointToPoint`] trait, with no sockets or processes in them.
//!
//! - [`Collectives`] is the user-facing API, implemented for every [`PointToPoint`].
//! - [`op`] holds the reduction operations; [`select`] the algorithm choices and the
//!   environment variables that override them; [`local`] an in-memory transport that runs
//!   ranks as threads (for tests, examples and benchmarks).
//! - [`algorithms`] runs one operation with a given algorithm (for benchmarks and tests).
//!
//! ```
//! use pirun_collectives::prelude::*;
//! use pirun_collectives::local;
//! let out = local::run(4, |world| {
//!     let mine: Vec<u64> = (0..world.rank() as u64).collect();
//!     let total = world.allreduce(&[mine.len() as u64], Sum)?;
//!     Ok((world.gatherv(0, &mine)?, total[0]))
//! })
//! .unwrap();
//! assert_eq!(out[0], (Some(vec![0, 0, 1, 0, 1, 2]), 6));
//! ```

#![warn(missing_docs)]

mod allgather;
mod alltoall;
mod api;
mod barrier;
mod bcast;
mod blocks;
mod error;
mod gather;
pub mod local;
pub mod op;
mod p2p;
mod reduce;
mod scan;
mod scatter;
mod scratch;
pub mod select;
mod tree;
mod value;
mod wire;

pub use api::Collectives;
pub use error::CollectiveError;
pub use p2p::{scatter_into as scatter_parts, PointToPoint, Tag};

/// Data gathered from every rank, in rank order, with the count each rank contributed.
pub type WithCounts<T> = (Vec<T>, Vec<usize>);

/// The traits and reduction operations a program needs: `use pirun_collectives::prelude::*`.
pub mod prelude {
    pub use crate::op::{
        BitAnd, BitOr, BitXor, Loc, LogicalAnd, LogicalOr, LogicalXor, Max, MaxLoc, Min, MinLoc,
        Op, Prod, Sum, UserOp,
    };
    pub use crate::{Collectives, PointToPoint};
}

/// Each operation with an explicitly chosen algorithm, bypassing [`select`] (and its
/// environment variables). Arguments are as for the [`Collectives`] method of the same
/// name.
pub mod algorithms {
    use bytemuck::Pod;

    use crate::op::Op;
    use crate::select::{
        AllgatherAlgorithm, AllreduceAlgorithm, AlltoallAlgorithm, BcastAlgorithm, GatherAlgorithm,
        ReduceAlgorithm, ReduceScatterAlgorithm, ScatterAlgorithm,
    };
    use crate::PointToPoint;

    /// [`crate::Collectives::bcast`] with algorithm `alg`.
    pub fn bcast<C: PointToPoint + ?Sized, T: Pod>(
        comm: &C,
        root: usize,
        buf: &mut [T],
        alg: BcastAlgorithm,
    ) -> Result<(), C::Error> {
        crate::error::check_root(root, comm.size())?;
        crate::bcast::bcast_bytes(
            comm,
            root,
            crate::blocks::bytes_mut(buf),
            std::mem::size_of::<T>(),
            alg,
        )
    }

    /// [`crate::Collectives::gather_into`] with algorithm `alg`.
    pub fn gather_into<C: PointToPoint + ?Sized, T: Pod>(
        comm: &C,
        root: usize,
        send: &[T],
        recv: Option<&mut [T]>,
        alg: GatherAlgorithm,
    ) -> Result<(), C::Error> {
        crate::gather::gather_into(comm, root, send, recv, Some(alg))
    }

    /// [`crate::Collectives::scatter_into`] with algorithm `alg`.
    pub fn scatter_into<C: PointToPoint + ?Sized, T: Pod>(
        comm: &C,
        root: usize,
        send: Option<&[T]>,
        recv: &mut [T],
        alg: ScatterAlgorithm,
    ) -> Result<(), C::Error> {
        crate::scatter::scatter_into(comm, root, send, recv, Some(alg))
    }

    /// [`crate::Collectives::reduce_in_place`] with algorithm `alg`, except that other
    /// ranks' `buf` is clobbered.
    pub fn reduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T>>(
        comm: &C,
        root: usize,
        buf: &mut [T],
        op: O,
        alg: ReduceAlgorithm,
    ) -> Result<(), C::Error> {
        crate::reduce::reduce(
            comm,
            root,
            crate::reduce::Bufs::InPlace(buf),
            &op,
            Some(alg),
        )
    }

    /// [`crate::Collectives::reduce_into`] with algorithm `alg`.
    pub fn reduce_into<C: PointToPoint + ?Sized, T: Pod, O: Op<T>>(
        comm: &C,
        root: usize,
        send: &[T],
        recv: Option<&mut [T]>,
        op: O,
        alg: ReduceAlgorithm,
    ) -> Result<(), C::Error> {
        let bufs = crate::reduce::Bufs::Separate(send, recv);
        crate::reduce::reduce(comm, root, bufs, &op, Some(alg))
    }

    /// [`crate::Collectives::allreduce_in_place`] with algorithm `alg` (or its stand-in,
    /// see [`crate::select`]).
    pub fn allreduce<C: PointToPoint + ?Sized, T: Pod, O: Op<T>>(
        comm: &C,
        buf: &mut [T],
        op: O,
        alg: AllreduceAlgorithm,
    ) -> Result<(), C::Error> {
        crate::reduce::allreduce(comm, None, buf, &op, Some(alg))
    }

    /// [`crate::Collectives::allreduce_into`] with algorithm `alg` (or its stand-in).
    pub fn allreduce_into<C: PointToPoint + ?Sized, T: Pod, O: Op<T>>(
        comm: &C,
        send: &[T],
        recv: &mut [T],
        op: O,
        alg: AllreduceAlgorithm,
    ) -> Result<(), C::Error> {
        crate::error::check_len(
            "allreduce",
            comm.rank(),
            "the receive buffer",
            send.len(),
            recv.len(),
        )?;
        crate::reduce::allreduce(comm, Some(send), recv, &op, Some(alg))
    }

    /// [`crate::Collectives::reduce_scatter_block_in_place`] with algorithm `alg`.
    pub fn reduce_scatter_block<C: PointToPoint + ?Sized, T: Pod, O: Op<T>>(
        comm: &C,
        buf: &mut [T],
        op: O,
        alg: ReduceScatterAlgorithm,
    ) -> Result<(), C::Error> {
        crate::reduce::reduce_scatter_block(comm, buf, &op, Some(alg))
    }

    /// [`crate::Collectives::allgather_into`] with algorithm `alg`.
    pub fn allgather_into<C: PointToPoint + ?Sized, T: Pod>(
        comm: &C,
        send: &[T],
        recv: &mut [T],
        alg: AllgatherAlgorithm,
    ) -> Result<(), C::Error> {
        crate::allgather::allgather_into(comm, send, recv, Some(alg))
    }

    /// [`crate::Collectives::allgatherv_with_counts`] with algorithm `alg` (both phases).
    pub fn allgatherv<C: PointToPoint + ?Sized, T: Pod>(
        comm: &C,
        send: &[T],
        alg: AllgatherAlgorithm,
    ) -> Result<crate::WithCounts<T>, C::Error> {
        crate::allgather::allgatherv(comm, crate::wire::OpCode::Allgatherv, send, Some(alg))
    }

    /// [`crate::Collectives::alltoall_into`] with algorithm `alg`.
    pub fn alltoall_into<C: PointToPoint + ?Sized, T: Pod>(
        comm: &C,
        send: &[T],
        recv: &mut [T],
        alg: AlltoallAlgorithm,
    ) -> Result<(), C::Error> {
        crate::alltoall::alltoall_into(comm, send, recv, Some(alg))
    }
}
