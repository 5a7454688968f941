//! The [`Collectives`] extension trait: the user-facing collective operations, in MPI's
//! (and rsmpi's) vocabulary, for every [`PointToPoint`] transport.

use bytemuck::Pod;

use crate::WithCounts;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{check_len, check_root, CollectiveError};
use crate::op::Op;
use crate::wire::OpCode;
use crate::{
    allgather, alltoall, barrier, bcast, gather, reduce, scan, scatter, select, value, PointToPoint,
};

/// Collective operations over a communicator, available on every [`PointToPoint`]
/// (`use pirun::prelude::*` in programs).
///
/// Every rank of the communicator must make the same sequence of collective calls, with
/// the same root and element type, and counts that agree; otherwise the operation fails
/// with a [`CollectiveError`](crate::CollectiveError) naming the ranks (or with the transport's length error).
/// Plain numeric data (`T: Pod`) travels as raw bytes; `*_value` methods take any serde
/// type. Methods without a suffix return new vectors; `_into` methods write into the
/// caller's buffers; `_in_place` methods use one buffer for input and output. Results that
/// only the root gets are `Option`s (`Some` on the root only). A root outside the
/// communicator is [`CollectiveError::InvalidRoot`](crate::CollectiveError::InvalidRoot).
///
/// The examples run ranks as threads with [`crate::local::run`].
pub trait Collectives: PointToPoint {
    /// Blocks until every rank has called `barrier` (`MPI_Barrier`; dissemination).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives};
    /// local::run(5, |comm| Ok(comm.barrier()?)).unwrap();
    /// ```
    fn barrier(&self) -> Result<(), Self::Error> {
        barrier::barrier(self)
    }

    /// Broadcasts the root's `buf` into every rank's `buf` (`MPI_Bcast`); all ranks pass
    /// buffers of the same length.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let mut buf = if comm.rank() == 1 { [7u32, 8] } else { [0, 0] };
    ///     comm.bcast(1, &mut buf)?;
    ///     Ok(buf)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![[7, 8]; 3]);
    /// ```
    fn bcast<T: Pod>(&self, root: usize, buf: &mut [T]) -> Result<(), Self::Error> {
        check_root(root, self.size())?;
        let alg = select::bcast_on(
            std::mem::size_of_val(buf),
            self.size(),
            select::Placement::of(self),
        );
        bcast::bcast_bytes(
            self,
            root,
            crate::blocks::bytes_mut(buf),
            std::mem::size_of::<T>(),
            alg,
        )
    }

    /// Broadcasts a serde value from the root, which passes `Some(value)` (other ranks'
    /// argument is ignored); returns it on every rank.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let mine = (comm.rank() == 0).then(|| String::from("hello"));
    ///     Ok(comm.bcast_value(0, mine)?)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec!["hello"; 3]);
    /// ```
    fn bcast_value<T: Serialize + DeserializeOwned>(
        &self,
        root: usize,
        value: Option<T>,
    ) -> Result<T, Self::Error> {
        value::bcast_value(self, root, value)
    }

    /// Gathers equal-length slices to the root, concatenated in rank order (`MPI_Gather`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| Ok(comm.gather(2, &[comm.rank() as u8; 2])?)).unwrap();
    /// assert_eq!(out[2], Some(vec![0, 0, 1, 1, 2, 2]));
    /// assert_eq!(out[0], None);
    /// ```
    fn gather<T: Pod>(&self, root: usize, send: &[T]) -> Result<Option<Vec<T>>, Self::Error> {
        gather::gather(self, root, send)
    }

    /// [`Collectives::gather`] into the root's `recv` (`size` times `send.len()`); other
    /// ranks pass `None`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut all = [0i64; 2];
    ///     let recv = (comm.rank() == 0).then_some(&mut all[..]);
    ///     comm.gather_into(0, &[comm.rank() as i64 - 5], recv)?;
    ///     Ok(all)
    /// })
    /// .unwrap();
    /// assert_eq!(out[0], [-5, -4]);
    /// ```
    fn gather_into<T: Pod>(
        &self,
        root: usize,
        send: &[T],
        recv: Option<&mut [T]>,
    ) -> Result<(), Self::Error> {
        gather::gather_into(self, root, send, recv, None)
    }

    /// Gathers slices of any lengths to the root, concatenated in rank order
    /// (`MPI_Gatherv`, without anyone having to know the counts beforehand).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let mine: Vec<u64> = (0..comm.rank() as u64).collect();
    ///     Ok(comm.gatherv(0, &mine)?)
    /// })
    /// .unwrap();
    /// assert_eq!(out[0], Some(vec![0, 0, 1]));
    /// ```
    fn gatherv<T: Pod>(&self, root: usize, send: &[T]) -> Result<Option<Vec<T>>, Self::Error> {
        Ok(gather::gatherv(self, root, send)?.map(|(all, _)| all))
    }

    /// [`Collectives::gatherv`], also returning every rank's count on the root.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| Ok(comm.gatherv_with_counts(1, &vec![1u8; comm.rank()])?)).unwrap();
    /// assert_eq!(out[1], Some((vec![1, 1, 1], vec![0, 1, 2])));
    /// ```
    fn gatherv_with_counts<T: Pod>(
        &self,
        root: usize,
        send: &[T],
    ) -> Result<Option<WithCounts<T>>, Self::Error> {
        gather::gatherv(self, root, send)
    }

    /// Gathers a serde value from every rank to the root, in rank order.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| Ok(comm.gather_value(0, &format!("rank {}", comm.rank()))?)).unwrap();
    /// assert_eq!(out[0].as_ref().unwrap()[2], "rank 2");
    /// ```
    fn gather_value<T: Serialize + DeserializeOwned>(
        &self,
        root: usize,
        value: &T,
    ) -> Result<Option<Vec<T>>, Self::Error> {
        value::gather_value(self, root, value)
    }

    /// Scatters the root's serde values, one per rank in rank order (the root passes
    /// `size` of them, the others `None`); returns this rank's value. Values may differ in
    /// size, e.g. one work list per rank.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let work = vec![vec![1u64], vec![], vec![2, 3]];
    ///     Ok(comm.scatter_value(0, (comm.rank() == 0).then_some(&work[..]))?)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![1], vec![], vec![2, 3]]);
    /// ```
    fn scatter_value<T: Serialize + DeserializeOwned>(
        &self,
        root: usize,
        values: Option<&[T]>,
    ) -> Result<T, Self::Error> {
        value::scatter_value(self, root, values)
    }

    /// Scatters equal blocks of `count` elements of the root's `send` (`size * count`
    /// elements; other ranks pass `None`); returns this rank's block (`MPI_Scatter`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let data = [10u16, 11, 20, 21, 30, 31];
    ///     Ok(comm.scatter(0, (comm.rank() == 0).then_some(&data[..]), 2)?)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![10, 11], vec![20, 21], vec![30, 31]]);
    /// ```
    fn scatter<T: Pod>(
        &self,
        root: usize,
        send: Option<&[T]>,
        count: usize,
    ) -> Result<Vec<T>, Self::Error> {
        let mut recv = crate::blocks::zeroed(count);
        scatter::scatter_into(self, root, send, &mut recv, None)?;
        Ok(recv)
    }

    /// [`Collectives::scatter`] into `recv`, whose length is the block size.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut mine = [0f32];
    ///     comm.scatter_into(1, Some(&[0.5, 1.5][..]), &mut mine)?;
    ///     Ok(mine[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![0.5, 1.5]);
    /// ```
    fn scatter_into<T: Pod>(
        &self,
        root: usize,
        send: Option<&[T]>,
        recv: &mut [T],
    ) -> Result<(), Self::Error> {
        scatter::scatter_into(self, root, send, recv, None)
    }

    /// Scatters blocks of different sizes: the root passes its data and one count per
    /// rank (`MPI_Scatterv`); returns this rank's block, whose length it needn't know.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let data = [1u32, 2, 3];
    ///     Ok(comm.scatterv(0, Some((&data[..], &[0, 1, 2][..])))?)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![], vec![1], vec![2, 3]]);
    /// ```
    fn scatterv<T: Pod>(
        &self,
        root: usize,
        send: Option<(&[T], &[usize])>,
    ) -> Result<Vec<T>, Self::Error> {
        scatter::scatterv(self, root, send)
    }

    /// [`Collectives::scatterv`] into `recv`, whose length must be this rank's count.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut mine = vec![0u8; comm.rank() + 1];
    ///     comm.scatterv_into(0, Some((&[5, 6, 7][..], &[1, 2][..])), &mut mine)?;
    ///     Ok(mine)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![5], vec![6, 7]]);
    /// ```
    fn scatterv_into<T: Pod>(
        &self,
        root: usize,
        send: Option<(&[T], &[usize])>,
        recv: &mut [T],
    ) -> Result<(), Self::Error> {
        scatter::scatterv_into(self, root, send, recv)
    }

    /// Gathers equal-length slices on every rank, in rank order (`MPI_Allgather`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| Ok(comm.allgather(&[comm.rank() as u32])?)).unwrap();
    /// assert_eq!(out, vec![vec![0, 1, 2]; 3]);
    /// ```
    fn allgather<T: Pod>(&self, send: &[T]) -> Result<Vec<T>, Self::Error> {
        let mut recv = crate::blocks::zeroed(send.len() * self.size());
        allgather::allgather_into(self, send, &mut recv, None)?;
        Ok(recv)
    }

    /// [`Collectives::allgather`] into `recv` (`size` times `send.len()`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut all = [0u8; 4];
    ///     comm.allgather_into(&[comm.rank() as u8; 2], &mut all)?;
    ///     Ok(all)
    /// })
    /// .unwrap();
    /// assert_eq!(out[1], [0, 0, 1, 1]);
    /// ```
    fn allgather_into<T: Pod>(&self, send: &[T], recv: &mut [T]) -> Result<(), Self::Error> {
        allgather::allgather_into(self, send, recv, None)
    }

    /// In-place allgather (`MPI_IN_PLACE`): `buf` holds `size` equal blocks and this
    /// rank's block `rank` is filled in; afterwards all are.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| {
    ///     let mut buf = [0u64; 3];
    ///     buf[comm.rank()] = 10 * comm.rank() as u64;
    ///     comm.allgather_in_place(&mut buf)?;
    ///     Ok(buf)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![[0, 10, 20]; 3]);
    /// ```
    fn allgather_in_place<T: Pod>(&self, buf: &mut [T]) -> Result<(), Self::Error> {
        allgather::allgather_in_place(self, buf, None)
    }

    /// Gathers slices of any lengths on every rank, in rank order (`MPI_Allgatherv`; the
    /// counts are exchanged first).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(3, |comm| Ok(comm.allgatherv(&vec![comm.rank() as u8; comm.rank()])?)).unwrap();
    /// assert_eq!(out, vec![vec![1, 2, 2]; 3]);
    /// ```
    fn allgatherv<T: Pod>(&self, send: &[T]) -> Result<Vec<T>, Self::Error> {
        Ok(allgather::allgatherv(self, OpCode::Allgatherv, send, None)?.0)
    }

    /// [`Collectives::allgatherv`], also returning every rank's count.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| Ok(comm.allgatherv_with_counts(&vec![9u8; 2 * comm.rank()])?)).unwrap();
    /// assert_eq!(out[0], (vec![9, 9], vec![0, 2]));
    /// ```
    fn allgatherv_with_counts<T: Pod>(&self, send: &[T]) -> Result<WithCounts<T>, Self::Error> {
        allgather::allgatherv(self, OpCode::Allgatherv, send, None)
    }

    /// [`Collectives::allgatherv`] with the counts known on every rank (one phase):
    /// `recv` has their sum, and `send.len() == counts[rank]`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut all = [0i8; 3];
    ///     let mine = if comm.rank() == 0 { &[1i8][..] } else { &[2, 3][..] };
    ///     comm.allgatherv_into(mine, &mut all, &[1, 2])?;
    ///     Ok(all)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![[1, 2, 3]; 2]);
    /// ```
    fn allgatherv_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        counts: &[usize],
    ) -> Result<(), Self::Error> {
        allgather::allgatherv_into(self, OpCode::Allgatherv, send, recv, counts, None)
    }

    /// Gathers a serde value from every rank on every rank, in rank order.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| Ok(comm.allgather_value(&vec![comm.rank(); comm.rank()])?)).unwrap();
    /// assert_eq!(out[0], vec![vec![], vec![1]]);
    /// ```
    fn allgather_value<T: Serialize + DeserializeOwned>(
        &self,
        value: &T,
    ) -> Result<Vec<T>, Self::Error> {
        value::allgather_value(self, value)
    }

    /// All-to-all exchange of equal blocks (`MPI_Alltoall`): block `j` of `send` goes to
    /// rank `j`; block `i` of the result came from rank `i`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let r = comm.rank() as u32;
    ///     Ok(comm.alltoall(&[10 * r, 10 * r + 1])?)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![0, 10], vec![1, 11]]);
    /// ```
    fn alltoall<T: Pod>(&self, send: &[T]) -> Result<Vec<T>, Self::Error> {
        let mut recv = crate::blocks::zeroed(send.len());
        alltoall::alltoall_into(self, send, &mut recv, None)?;
        Ok(recv)
    }

    /// [`Collectives::alltoall`] into `recv` (same length as `send`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut recv = [0u8; 2];
    ///     comm.alltoall_into(&[comm.rank() as u8; 2], &mut recv)?;
    ///     Ok(recv)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![[0, 1]; 2]);
    /// ```
    fn alltoall_into<T: Pod>(&self, send: &[T], recv: &mut [T]) -> Result<(), Self::Error> {
        alltoall::alltoall_into(self, send, recv, None)
    }

    /// All-to-all exchange of blocks of different sizes (`MPI_Alltoallv`): `send_counts[j]`
    /// elements go to rank `j`. Returns the received data (in rank order) and the counts
    /// received from each rank (exchanged first).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     // rank r sends r+1 copies of r to each rank
    ///     let r = comm.rank();
    ///     Ok(comm.alltoallv(&vec![r as u8; 2 * (r + 1)], &[r + 1, r + 1])?)
    /// })
    /// .unwrap();
    /// assert_eq!(out[0], (vec![0, 1, 1], vec![1, 2]));
    /// ```
    fn alltoallv<T: Pod>(
        &self,
        send: &[T],
        send_counts: &[usize],
    ) -> Result<WithCounts<T>, Self::Error> {
        alltoall::alltoallv(self, send, send_counts)
    }

    /// [`Collectives::alltoallv`] with the receive counts known: `recv` holds
    /// `recv_counts[i]` elements from each rank `i`, in rank order.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// let out = local::run(2, |comm| {
    ///     let mut recv = [0u8; 2];
    ///     comm.alltoallv_into(&[comm.rank() as u8; 2], &[1, 1], &mut recv, &[1, 1])?;
    ///     Ok(recv)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![[0, 1]; 2]);
    /// ```
    fn alltoallv_into<T: Pod>(
        &self,
        send: &[T],
        send_counts: &[usize],
        recv: &mut [T],
        recv_counts: &[usize],
    ) -> Result<(), Self::Error> {
        alltoall::alltoallv_into(self, send, send_counts, recv, recv_counts)
    }

    /// Reduces every rank's `send` element-wise with `op` to the root (`MPI_Reduce`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Max;
    /// let out = local::run(4, |comm| Ok(comm.reduce(0, &[comm.rank() as i32, -(comm.rank() as i32)], Max)?)).unwrap();
    /// assert_eq!(out[0], Some(vec![3, 0]));
    /// assert_eq!(out[1], None);
    /// ```
    fn reduce<T: Pod, O: Op<T>>(
        &self,
        root: usize,
        send: &[T],
        op: O,
    ) -> Result<Option<Vec<T>>, Self::Error> {
        if self.rank() != root {
            reduce::reduce(self, root, reduce::Bufs::Separate(send, None), &op, None)?;
            return Ok(None);
        }
        let mut out = crate::blocks::zeroed(send.len());
        reduce::reduce(
            self,
            root,
            reduce::Bufs::Separate(send, Some(&mut out)),
            &op,
            None,
        )?;
        Ok(Some(out))
    }

    /// [`Collectives::reduce`] into the root's `recv` (same length as `send`); other ranks
    /// pass `None`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// let out = local::run(3, |comm| {
    ///     let mut total = [0.0f64];
    ///     let recv = (comm.rank() == 2).then_some(&mut total[..]);
    ///     comm.reduce_into(2, &[0.5], recv, Sum)?;
    ///     Ok(total[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out[2], 1.5);
    /// ```
    fn reduce_into<T: Pod, O: Op<T>>(
        &self,
        root: usize,
        send: &[T],
        recv: Option<&mut [T]>,
        op: O,
    ) -> Result<(), Self::Error> {
        reduce::reduce(self, root, reduce::Bufs::Separate(send, recv), &op, None)
    }

    /// In-place reduce (`MPI_IN_PLACE` at the root): every rank's `buf` is its input; the
    /// root's `buf` receives the result, other ranks' `buf` is left unchanged.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Prod;
    /// let out = local::run(3, |comm| {
    ///     let mut buf = [comm.rank() as u64 + 1];
    ///     comm.reduce_in_place(0, &mut buf, Prod)?;
    ///     Ok(buf[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![6, 2, 3]);
    /// ```
    fn reduce_in_place<T: Pod, O: Op<T>>(
        &self,
        root: usize,
        buf: &mut [T],
        op: O,
    ) -> Result<(), Self::Error> {
        let bufs = if self.rank() == root {
            reduce::Bufs::InPlace(buf)
        } else {
            reduce::Bufs::Separate(buf, None)
        };
        reduce::reduce(self, root, bufs, &op, None)
    }

    /// Reduces every rank's `send` element-wise with `op`; every rank gets the result
    /// (`MPI_Allreduce`), bit-identical on all ranks even for floating point.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::{Loc, MinLoc};
    /// // Which rank has the smallest value?
    /// let out = local::run(4, |comm| {
    ///     let v = [5.0, 2.0, 9.0, 2.0][comm.rank()];
    ///     Ok(comm.allreduce(&[Loc::new(v, comm.rank() as u64)], MinLoc)?)
    /// })
    /// .unwrap();
    /// assert!(out.iter().all(|r| r[0] == Loc::new(2.0, 1)));
    /// ```
    fn allreduce<T: Pod, O: Op<T>>(&self, send: &[T], op: O) -> Result<Vec<T>, Self::Error> {
        let mut out = crate::blocks::zeroed(send.len());
        reduce::allreduce(self, Some(send), &mut out, &op, None)?;
        Ok(out)
    }

    /// [`Collectives::allreduce`] into `recv` (same length as `send`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::BitOr;
    /// let out = local::run(3, |comm| {
    ///     let mut all = [0u8];
    ///     comm.allreduce_into(&[1 << comm.rank()], &mut all, BitOr)?;
    ///     Ok(all[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![0b111; 3]);
    /// ```
    fn allreduce_into<T: Pod, O: Op<T>>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: O,
    ) -> Result<(), Self::Error> {
        check_len(
            "allreduce",
            self.rank(),
            "the receive buffer",
            send.len(),
            recv.len(),
        )?;
        reduce::allreduce(self, Some(send), recv, &op, None)
    }

    /// In-place allreduce (`MPI_IN_PLACE`): `buf` is the input and receives the result.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::LogicalAnd;
    /// let out = local::run(3, |comm| {
    ///     let mut ok = [u8::from(comm.rank() != 1)];
    ///     comm.allreduce_in_place(&mut ok, LogicalAnd)?;
    ///     Ok(ok[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![0; 3]);
    /// ```
    fn allreduce_in_place<T: Pod, O: Op<T>>(
        &self,
        buf: &mut [T],
        op: O,
    ) -> Result<(), Self::Error> {
        reduce::allreduce(self, None, buf, &op, None)
    }

    /// Reduces `send` (`size` equal blocks) element-wise and gives each rank `i` the
    /// reduced block `i` (`MPI_Reduce_scatter_block`).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// let out = local::run(2, |comm| Ok(comm.reduce_scatter_block(&[1u32, 2, 3, 4], Sum)?)).unwrap();
    /// assert_eq!(out, vec![vec![2, 4], vec![6, 8]]);
    /// ```
    fn reduce_scatter_block<T: Pod, O: Op<T>>(
        &self,
        send: &[T],
        op: O,
    ) -> Result<Vec<T>, Self::Error> {
        let mut buf = send.to_vec();
        reduce::reduce_scatter_block(self, &mut buf, &op, None)?;
        buf.truncate(send.len() / self.size());
        Ok(buf)
    }

    /// [`Collectives::reduce_scatter_block`] into `recv` (one block).
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Min;
    /// let out = local::run(2, |comm| {
    ///     let mut mine = [0i16];
    ///     comm.reduce_scatter_block_into(&[comm.rank() as i16, -1], &mut mine, Min)?;
    ///     Ok(mine[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![0, -1]);
    /// ```
    fn reduce_scatter_block_into<T: Pod, O: Op<T>>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: O,
    ) -> Result<(), Self::Error> {
        check_len(
            "reduce_scatter_block",
            self.rank(),
            "the send buffer",
            recv.len() * self.size(),
            send.len(),
        )?;
        let mut buf = send.to_vec();
        reduce::reduce_scatter_block(self, &mut buf, &op, None)?;
        recv.copy_from_slice(&buf[..recv.len()]);
        Ok(())
    }

    /// In-place reduce-scatter (`MPI_IN_PLACE`): `buf` holds the `size` blocks; afterwards
    /// its first block holds this rank's reduced block and the rest is unspecified.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// let out = local::run(2, |comm| {
    ///     let mut buf = [1u8, 2];
    ///     comm.reduce_scatter_block_in_place(&mut buf, Sum)?;
    ///     Ok(buf[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![2, 4]);
    /// ```
    fn reduce_scatter_block_in_place<T: Pod, O: Op<T>>(
        &self,
        buf: &mut [T],
        op: O,
    ) -> Result<(), Self::Error> {
        reduce::reduce_scatter_block(self, buf, &op, None)
    }

    /// Reduces `send` element-wise and gives rank `i` its block of `counts[i]` elements,
    /// the blocks following each other in rank order (`MPI_Reduce_scatter`: blocks of
    /// different sizes; [`Collectives::reduce_scatter_block`] is faster for equal ones).
    /// Every rank passes the same `counts`, one per rank, adding up to `send.len()`.
    /// A reduce to rank 0 followed by a scatterv: the combination order is the reduce's
    /// (rank order for a non-commutative operation), and the block sizes need not divide
    /// evenly.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// let out = local::run(2, |comm| Ok(comm.reduce_scatter(&[1u32, 2, 3], &[1, 2], Sum)?)).unwrap();
    /// assert_eq!(out, vec![vec![2], vec![4, 6]]);
    /// ```
    fn reduce_scatter<T: Pod, O: Op<T>>(
        &self,
        send: &[T],
        counts: &[usize],
        op: O,
    ) -> Result<Vec<T>, Self::Error> {
        check_counts(self.rank(), self.size(), send.len(), counts)?;
        let reduced = self.reduce(0, send, op)?;
        let mine = self.scatterv(0, reduced.as_deref().map(|r| (r, counts)))?;
        // Counts that differ between ranks show here: rank 0's decided the blocks.
        check_len(
            "reduce_scatter",
            self.rank(),
            "the block rank 0 sent (counts differ between ranks?)",
            counts[self.rank()],
            mine.len(),
        )?;
        Ok(mine)
    }

    /// [`Collectives::reduce_scatter`] into `recv`, whose length must be
    /// `counts[rank]`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Max;
    /// let out = local::run(3, |comm| {
    ///     let mut mine = vec![0u8; [2, 0, 1][comm.rank()]];
    ///     comm.reduce_scatter_into(&[comm.rank() as u8; 3], &[2, 0, 1], &mut mine, Max)?;
    ///     Ok(mine)
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![2, 2], vec![], vec![2]]);
    /// ```
    fn reduce_scatter_into<T: Pod, O: Op<T>>(
        &self,
        send: &[T],
        counts: &[usize],
        recv: &mut [T],
        op: O,
    ) -> Result<(), Self::Error> {
        check_counts(self.rank(), self.size(), send.len(), counts)?;
        check_len(
            "reduce_scatter",
            self.rank(),
            "the receive buffer",
            counts[self.rank()],
            recv.len(),
        )?;
        let reduced = self.reduce(0, send, op)?;
        self.scatterv_into(0, reduced.as_deref().map(|r| (r, counts)), recv)
    }

    /// Inclusive prefix reduction (`MPI_Scan`): rank `r` gets `x0 ∘ x1 ∘ … ∘ xr`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// let out = local::run(4, |comm| Ok(comm.scan(&[1u32], Sum)?)).unwrap();
    /// assert_eq!(out, vec![vec![1], vec![2], vec![3], vec![4]]);
    /// ```
    fn scan<T: Pod, O: Op<T>>(&self, send: &[T], op: O) -> Result<Vec<T>, Self::Error> {
        let mut buf = send.to_vec();
        scan::scan(self, &mut buf, &op)?;
        Ok(buf)
    }

    /// In-place [`Collectives::scan`].
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Max;
    /// let out = local::run(3, |comm| {
    ///     let mut buf = [[5u8, 1, 3][comm.rank()]];
    ///     comm.scan_in_place(&mut buf, Max)?;
    ///     Ok(buf[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![5, 5, 5]);
    /// ```
    fn scan_in_place<T: Pod, O: Op<T>>(&self, buf: &mut [T], op: O) -> Result<(), Self::Error> {
        scan::scan(self, buf, &op)
    }

    /// Exclusive prefix reduction (`MPI_Exscan`): rank `r > 0` gets
    /// `Some(x0 ∘ … ∘ x(r-1))`, rank 0 gets `None`.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// // Where each rank's items start in a global numbering:
    /// let out = local::run(3, |comm| Ok(comm.exscan(&[10u64 + comm.rank() as u64], Sum)?)).unwrap();
    /// assert_eq!(out, vec![None, Some(vec![10]), Some(vec![21])]);
    /// ```
    fn exscan<T: Pod, O: Op<T>>(&self, send: &[T], op: O) -> Result<Option<Vec<T>>, Self::Error> {
        scan::exscan(self, send, &op)
    }

    /// In-place [`Collectives::exscan`]: rank 0's `buf` is left unchanged.
    ///
    /// ```
    /// use pirun_collectives::{local, Collectives, PointToPoint};
    /// use pirun_collectives::op::Sum;
    /// let out = local::run(3, |comm| {
    ///     let mut buf = [1i32];
    ///     comm.exscan_in_place(&mut buf, Sum)?;
    ///     Ok(buf[0])
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![1, 1, 2]);
    /// ```
    fn exscan_in_place<T: Pod, O: Op<T>>(&self, buf: &mut [T], op: O) -> Result<(), Self::Error> {
        if let Some(prefix) = scan::exscan(self, buf, &op)? {
            buf.copy_from_slice(&prefix);
        }
        Ok(())
    }
}

impl<C: PointToPoint + ?Sized> Collectives for C {}

/// The counts of a variable-count reduce-scatter: one per rank, adding up to the send
/// buffer's length.
fn check_counts(
    rank: usize,
    size: usize,
    send_len: usize,
    counts: &[usize],
) -> Result<(), CollectiveError> {
    check_len(
        "reduce_scatter",
        rank,
        "counts (one per rank)",
        size,
        counts.len(),
    )?;
    let total = counts.iter().try_fold(0usize, |a, &c| a.checked_add(c));
    match total {
        Some(total) => check_len(
            "reduce_scatter",
            rank,
            "the send buffer (the sum of counts)",
            total,
            send_len,
        ),
        None => Err(CollectiveError::arg(
            "reduce_scatter",
            rank,
            "the counts add up to more than memory can hold".to_string(),
        )),
    }
}
