//! Communicators and the point-to-point API: `send`/`recv` and friends, in MPI's
//! vocabulary.
//!
//! Plain numeric slices (any [`bytemuck::Pod`]) travel as raw bytes, received into a
//! caller's buffer or a new `Vec`; any serde type travels postcard-encoded through the
//! `*_value` methods. Every message carries its element type's signature, so receiving as
//! the wrong type or into a buffer that is too small is an error, never garbage.

use std::sync::Arc;

use bytemuck::Pod;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::buf::{AlignedBuf, RawParts};
use crate::datatype::TypeInfo;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::matching::SinkSpec;
use crate::nonblocking::Request;
use crate::request::{Outcome, RawStatus, ReqId};

/// A message tag. Sends use tags `>= 0`.
pub type Tag = i32;

/// Which sender a receive accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Any rank of the communicator.
    Any,
    /// This rank only.
    Rank(usize),
}

/// Receive from any rank.
pub const ANY_SOURCE: Source = Source::Any;

impl From<usize> for Source {
    fn from(r: usize) -> Source {
        Source::Rank(r)
    }
}

/// Which tags a receive accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagFilter {
    /// Any tag.
    Any,
    /// This tag only.
    Tag(Tag),
}

/// Accept any tag.
pub const ANY_TAG: TagFilter = TagFilter::Any;

impl From<Tag> for TagFilter {
    fn from(t: Tag) -> TagFilter {
        TagFilter::Tag(t)
    }
}

/// What a receive or probe learned about its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    source: usize,
    tag: Tag,
    len: usize,
}

impl Status {
    /// Rank of the sender in the communicator.
    pub fn source(&self) -> usize {
        self.source
    }

    /// The message's tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// Length of the message in bytes.
    pub fn len_bytes(&self) -> usize {
        self.len
    }

    /// Number of `T` elements in the message (for `Pod` messages).
    pub fn count<T: Pod>(&self) -> usize {
        self.len / std::mem::size_of::<T>().max(1)
    }
}

/// Finalizes the process's pirun session when the last communicator is dropped.
struct Session {
    engine: Arc<Engine>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.engine.finalize();
        self.engine.stop_background_thread();
    }
}

struct Inner {
    engine: Arc<Engine>,
    /// Context id: user traffic uses `2 * ctx`, collectives `2 * ctx + 1`.
    ctx: u32,
    /// World rank of each rank of this communicator.
    ranks: Vec<u32>,
    /// This process's rank in the communicator.
    rank: usize,
    /// Whether the ranks run on more than one host (fixed at creation: the collectives
    /// ask on every call to pick an algorithm).
    spans_hosts: bool,
    _session: Arc<Session>,
}

/// Whether world ranks `ranks` run on more than one host of `engine`'s job.
fn spans_hosts(engine: &Engine, ranks: &[u32]) -> bool {
    let mut hosts = ranks.iter().map(|&w| engine.host(w));
    let first = hosts.next();
    hosts.any(|h| Some(h) != first)
}

/// A group of ranks that can talk to each other; the world communicator holds every rank
/// of the job. Cloning is cheap and yields a handle to the same communicator.
#[derive(Clone)]
pub struct Communicator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Communicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("context", &self.inner.ctx)
            .finish()
    }
}

impl Communicator {
    /// A communicator over `ranks` (world ranks, in communicator order) with context
    /// `ctx`, sharing this communicator's session.
    pub(crate) fn derive(&self, ctx: u32, ranks: Vec<u32>) -> Option<Communicator> {
        let me = self.inner.engine.rank;
        let rank = ranks.iter().position(|&w| w == me)?;
        Some(Communicator {
            inner: Arc::new(Inner {
                engine: self.inner.engine.clone(),
                ctx,
                spans_hosts: spans_hosts(&self.inner.engine, &ranks),
                ranks,
                rank,
                _session: self.inner._session.clone(),
            }),
        })
    }

    pub(crate) fn world(engine: Arc<Engine>) -> Communicator {
        let size = engine.size;
        let rank = engine.rank as usize;
        let session = Arc::new(Session {
            engine: engine.clone(),
        });
        let ranks: Vec<u32> = (0..size).collect();
        Communicator {
            inner: Arc::new(Inner {
                spans_hosts: spans_hosts(&engine, &ranks),
                engine,
                ctx: 0,
                ranks,
                rank,
                _session: session,
            }),
        }
    }

    /// This process's rank in the communicator, `0..size()`.
    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    /// Number of ranks in the communicator.
    pub fn size(&self) -> usize {
        self.inner.ranks.len()
    }

    /// Name of the host a rank of this communicator runs on.
    pub fn host_of(&self, rank: usize) -> Option<&str> {
        let w = *self.inner.ranks.get(rank)?;
        Some(self.inner.engine.host(w))
    }

    /// The address this rank accepts peer connections on (`None` in a singleton). Meant
    /// for diagnostics and for tests that poke at a rank's port.
    #[doc(hidden)]
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        let st = self.inner.engine.lock();
        st.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Whether this communicator's ranks run on more than one host.
    pub(crate) fn spans_hosts(&self) -> bool {
        self.inner.spans_hosts
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    pub(crate) fn user_ctx(&self) -> u32 {
        self.inner.ctx * 2
    }

    pub(crate) fn coll_ctx(&self) -> u32 {
        self.inner.ctx * 2 + 1
    }

    /// World rank of communicator rank `r`.
    pub(crate) fn world_rank(&self, r: usize) -> Result<u32> {
        self.inner.ranks.get(r).copied().ok_or(Error::InvalidRank {
            rank: r,
            size: self.size(),
        })
    }

    fn source(&self, s: Source) -> Result<Option<u32>> {
        match s {
            Source::Any => Ok(None),
            Source::Rank(r) => self.world_rank(r).map(Some),
        }
    }

    /// Translates an engine status (world ranks) into this communicator's ranks.
    pub(crate) fn status(&self, raw: RawStatus) -> Status {
        let source = if self.inner.ctx == 0 {
            raw.src as usize
        } else {
            self.inner
                .ranks
                .iter()
                .position(|&w| w == raw.src)
                .unwrap_or(usize::MAX)
        };
        Status {
            source,
            tag: raw.tag,
            len: raw.len,
        }
    }

    /// Sends a slice of numbers (any `Pod` type) to `dest`; returns once `data` may be
    /// reused. Small messages are buffered; large ones wait until the receiver is ready.
    ///
    /// ```
    /// let world = pirun::init()?;
    /// // In a world of one, a rank can send to itself.
    /// world.send(0, 7, &[1.0f64, 2.0, 3.0])?;
    /// let (v, status) = world.recv::<f64>(0, 7)?;
    /// assert_eq!(v, [1.0, 2.0, 3.0]);
    /// assert_eq!((status.source(), status.tag(), status.count::<f64>()), (0, 7, 3));
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn send<T: Pod>(&self, dest: usize, tag: Tag, data: &[T]) -> Result<()> {
        let d = self.world_rank(dest)?;
        self.inner.engine.send(
            d,
            self.user_ctx(),
            tag,
            TypeInfo::pod::<T>(),
            bytemuck::cast_slice(data),
        )
    }

    /// Sends any serde value (postcard-encoded) to `dest`.
    pub fn send_value<T: Serialize + ?Sized>(
        &self,
        dest: usize,
        tag: Tag,
        value: &T,
    ) -> Result<()> {
        let d = self.world_rank(dest)?;
        let bytes = encode(value)?;
        self.inner
            .engine
            .send(d, self.user_ctx(), tag, TypeInfo::serde::<T>(), &bytes)
    }

    /// Receives a slice of numbers into a new `Vec`.
    pub fn recv<T: Pod>(
        &self,
        src: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<(Vec<T>, Status)> {
        let (buf, status) = self.recv_owned(
            src.into(),
            tag.into(),
            TypeInfo::pod::<T>(),
            std::mem::align_of::<T>(),
        )?;
        Ok((into_vec(buf, &status)?, status))
    }

    /// Receives a slice of numbers into `buf`, which must be large enough; the status
    /// tells how many elements arrived.
    ///
    /// ```
    /// let world = pirun::init()?;
    /// world.send(0, 1, &[5u32, 6])?;
    /// let mut buf = [0u32; 4];
    /// let st = world.recv_into(0, 1, &mut buf)?;
    /// assert_eq!(&buf[..st.count::<u32>()], &[5, 6]);
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn recv_into<T: Pod>(
        &self,
        src: impl Into<Source>,
        tag: impl Into<TagFilter>,
        buf: &mut [T],
    ) -> Result<Status> {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
        self.recv_user(src.into(), tag.into(), TypeInfo::pod::<T>(), bytes)
    }

    /// Receives a serde value.
    pub fn recv_value<T: DeserializeOwned>(
        &self,
        src: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<(T, Status)> {
        let (buf, status) = self.recv_owned(src.into(), tag.into(), TypeInfo::serde::<T>(), 1)?;
        Ok((decode(buf.as_slice())?, status))
    }

    /// Starts sending `data` and returns at once; the request completes when the data has
    /// been handed to the network (or to a receive on this rank).
    pub fn isend<T: Pod + Send>(&self, dest: usize, tag: Tag, data: Vec<T>) -> Result<Request<()>> {
        let d = self.world_rank(dest)?;
        let id = self.inner.engine.isend(
            d,
            self.user_ctx(),
            tag,
            TypeInfo::pod::<T>(),
            Box::new(data),
        )?;
        Ok(self.request(id, |_, _| Ok(())))
    }

    /// Starts sending a serde value and returns at once.
    pub fn isend_value<T: Serialize + ?Sized>(
        &self,
        dest: usize,
        tag: Tag,
        value: &T,
    ) -> Result<Request<()>> {
        let d = self.world_rank(dest)?;
        let bytes = encode(value)?;
        let id = self.inner.engine.isend(
            d,
            self.user_ctx(),
            tag,
            TypeInfo::serde::<T>(),
            Box::new(bytes),
        )?;
        Ok(self.request(id, |_, _| Ok(())))
    }

    /// Starts receiving a slice of numbers; the request yields the data and its status.
    ///
    /// ```
    /// let world = pirun::init()?;
    /// let r = world.irecv::<u64>(0, 3)?;
    /// world.send(0, 3, &[42u64])?;
    /// let (v, _status) = r.wait()?;
    /// assert_eq!(v, [42]);
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn irecv<T: Pod>(
        &self,
        src: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<Request<(Vec<T>, Status)>> {
        let id = self.post_owned(
            src.into(),
            tag.into(),
            TypeInfo::pod::<T>(),
            std::mem::align_of::<T>(),
            true,
        )?;
        Ok(self.request(id, |comm, out| {
            let (buf, status) = comm.received(out)?;
            Ok((into_vec(buf, &status)?, status))
        }))
    }

    /// Starts receiving a serde value.
    pub fn irecv_value<T: DeserializeOwned>(
        &self,
        src: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<Request<(T, Status)>> {
        let id = self.post_owned(src.into(), tag.into(), TypeInfo::serde::<T>(), 1, true)?;
        Ok(self.request(id, |comm, out| {
            let (buf, status) = comm.received(out)?;
            Ok((decode(buf.as_slice())?, status))
        }))
    }

    /// Sends `data` to `dest` and receives from `src` at the same time, without the
    /// deadlock two blocking sends towards each other could cause.
    ///
    /// ```
    /// let world = pirun::init()?;
    /// let (v, _) = world.sendrecv::<u8, u8>(0, 0, b"hi", 0, 0)?;
    /// assert_eq!(v, b"hi");
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn sendrecv<S: Pod, R: Pod>(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[S],
        src: impl Into<Source>,
        recv_tag: impl Into<TagFilter>,
    ) -> Result<(Vec<R>, Status)> {
        let id = self.post_owned(
            src.into(),
            recv_tag.into(),
            TypeInfo::pod::<R>(),
            std::mem::align_of::<R>(),
            false,
        )?;
        let guard = CancelOnDrop(self.engine(), Some(id));
        self.send(dest, send_tag, data)?;
        let out = self.inner.engine.wait(guard.disarm());
        let (buf, status) = self.received(out)?;
        Ok((into_vec(buf, &status)?, status))
    }

    /// Like [`Communicator::sendrecv`], receiving into `buf`.
    pub fn sendrecv_into<S: Pod, R: Pod>(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[S],
        src: impl Into<Source>,
        recv_tag: impl Into<TagFilter>,
        buf: &mut [R],
    ) -> Result<Status> {
        self.sendrecv_raw(
            dest,
            send_tag,
            TypeInfo::pod::<S>(),
            bytemuck::cast_slice(data),
            src.into(),
            recv_tag.into(),
            TypeInfo::pod::<R>(),
            bytemuck::cast_slice_mut(buf),
        )
    }

    /// Waits until a message matching `src` and `tag` can be received, and describes it
    /// without receiving it.
    pub fn probe(&self, src: impl Into<Source>, tag: impl Into<TagFilter>) -> Result<Status> {
        let s = self.source(src.into())?;
        let raw = self
            .inner
            .engine
            .probe(self.user_ctx(), s, tag_filter(tag.into()), true)?
            .expect("a blocking probe returns a status");
        Ok(self.status(raw))
    }

    /// Describes a matching message if one has arrived; never blocks.
    pub fn iprobe(
        &self,
        src: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<Option<Status>> {
        let s = self.source(src.into())?;
        let raw = self
            .inner
            .engine
            .probe(self.user_ctx(), s, tag_filter(tag.into()), false)?;
        Ok(raw.map(|r| self.status(r)))
    }

    /// Ends the whole job: prints `message` and exits this process with `code`, which
    /// makes `pirun` end every other rank.
    pub fn abort(&self, code: i32, message: &str) -> ! {
        eprintln!("pirun: rank {} aborts the job: {message}", self.rank());
        std::process::exit(code)
    }

    // ---- building blocks shared with the collectives ----

    /// Wraps a non-blocking operation, starting the background progress thread that
    /// moves it along while the caller computes.
    pub(crate) fn request<T>(
        &self,
        id: ReqId,
        finish: fn(&Communicator, Result<Outcome>) -> Result<T>,
    ) -> Request<T> {
        self.inner.engine.ensure_background_thread();
        Request::new(self.clone(), id, finish)
    }

    /// Posts a receive into a new buffer.
    fn post_owned(
        &self,
        src: Source,
        tag: TagFilter,
        ty: TypeInfo,
        align: usize,
        background: bool,
    ) -> Result<ReqId> {
        let s = self.source(src)?;
        self.inner.engine.post_recv(
            self.user_ctx(),
            s,
            tag_filter(tag),
            ty,
            SinkSpec::Owned { align },
            background,
        )
    }

    fn recv_owned(
        &self,
        src: Source,
        tag: TagFilter,
        ty: TypeInfo,
        align: usize,
    ) -> Result<(AlignedBuf, Status)> {
        let id = self.post_owned(src, tag, ty, align, false)?;
        let out = self.inner.engine.wait(id);
        self.received(out)
    }

    /// Unpacks a finished receive.
    pub(crate) fn received(&self, out: Result<Outcome>) -> Result<(AlignedBuf, Status)> {
        match out? {
            Outcome::Received { status, data } => Ok((
                data.unwrap_or_else(|| {
                    AlignedBuf::zeroed(0, 1).expect("empty buffers allocate nothing")
                }),
                self.status(status),
            )),
            Outcome::Sent => unreachable!("a receive completes as Received"),
        }
    }

    /// Blocking receive on the given context into a caller's buffer, given as up to
    /// [`RawParts::MAX`] parts filled in order.
    pub(crate) fn recv_user_on(
        &self,
        ctx: u32,
        src: Source,
        tag: TagFilter,
        ty: TypeInfo,
        buf: &mut [&mut [u8]],
    ) -> Result<Status> {
        let s = self.source(src)?;
        let engine = &self.inner.engine;
        let id = engine.post_recv(
            ctx,
            s,
            tag_filter(tag),
            ty,
            SinkSpec::User(lend_mut(buf)),
            false,
        )?;
        // Until the receive is finished or withdrawn, `buf` stays lent: the guard
        // withdraws it on every early return.
        let guard = CancelOnDrop(engine, Some(id));
        let out = engine.wait_in(id, self.group_for(ctx));
        self.lent_receive_done(guard, out)
    }

    /// The members a wait on `ctx` fails with: the whole communicator for collective
    /// traffic (a collective is lost when any member is), nobody for user messages.
    pub(crate) fn group_for(&self, ctx: u32) -> Option<&[u32]> {
        (ctx == self.coll_ctx()).then_some(&self.inner.ranks[..])
    }

    fn recv_user(
        &self,
        src: Source,
        tag: TagFilter,
        ty: TypeInfo,
        buf: &mut [u8],
    ) -> Result<Status> {
        self.recv_user_on(self.user_ctx(), src, tag, ty, &mut [buf])
    }

    /// Exchange on the user context with typed buffers.
    #[allow(clippy::too_many_arguments)]
    fn sendrecv_raw(
        &self,
        dest: usize,
        send_tag: Tag,
        send_ty: TypeInfo,
        data: &[u8],
        src: Source,
        recv_tag: TagFilter,
        recv_ty: TypeInfo,
        buf: &mut [u8],
    ) -> Result<Status> {
        self.sendrecv_on(
            self.user_ctx(),
            dest,
            send_tag,
            send_ty,
            &[data],
            src,
            recv_tag,
            recv_ty,
            &mut [buf],
        )
    }

    /// Posts the receive into `recv`, sends `send`, then waits for the receive; both
    /// buffers are given as up to [`RawParts::MAX`] parts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sendrecv_on(
        &self,
        ctx: u32,
        dest: usize,
        send_tag: Tag,
        send_ty: TypeInfo,
        send: &[&[u8]],
        src: Source,
        recv_tag: TagFilter,
        recv_ty: TypeInfo,
        recv: &mut [&mut [u8]],
    ) -> Result<Status> {
        let s = self.source(src)?;
        let d = self.world_rank(dest)?;
        let engine = &self.inner.engine;
        let id = engine.post_recv(
            ctx,
            s,
            tag_filter(recv_tag),
            recv_ty,
            SinkSpec::User(lend_mut(recv)),
            false,
        )?;
        let guard = CancelOnDrop(engine, Some(id));
        let group = self.group_for(ctx);
        if let Err(e) = engine.send_parts(d, ctx, send_tag, send_ty, lend(send), group) {
            return Err(earlier_receive_error(engine, [id], e));
        }
        let out = engine.wait_in(id, group);
        self.lent_receive_done(guard, out)
    }

    /// Posts every receive of `recvs`, starts every send of `sends`, then waits for all of
    /// them, so that no rendezvous waits for another's clear-to-send (the root of a linear
    /// scatter or gather). Every part of both lists is at most [`RawParts::MAX`] slices;
    /// returns the statuses of the receives in order. On an error nothing stays lent:
    /// receives still pending are withdrawn and sends still queued copied.
    pub(crate) fn exchange_on(
        &self,
        ctx: u32,
        ty: TypeInfo,
        sends: &[(usize, Tag, &[&[u8]])],
        recvs: &mut [(usize, Tag, &mut [&mut [u8]])],
    ) -> Result<Vec<Status>> {
        let engine = &self.inner.engine;
        let group = self.group_for(ctx);
        let mut posted = Vec::with_capacity(recvs.len());
        for (src, tag, parts) in recvs.iter_mut() {
            let s = self.world_rank(*src)?;
            let id = engine.post_recv(
                ctx,
                Some(s),
                Some(*tag),
                ty,
                SinkSpec::User(lend_mut(parts)),
                false,
            )?;
            posted.push(CancelOnDrop(engine, Some(id)));
        }
        let mut started = ReleaseOnDrop(engine, Vec::with_capacity(sends.len()));
        let mut send_all = || -> Result<()> {
            for &(dest, tag, parts) in sends {
                let d = self.world_rank(dest)?;
                if let Some(req) = engine.start_send(d, ctx, tag, ty, lend(parts))? {
                    started.1.push(req);
                }
            }
            while let Some(req) = started.1.pop() {
                engine.finish_send(req, group)?;
            }
            Ok(())
        };
        if let Err(e) = send_all() {
            let ids = posted.iter().filter_map(|g| g.1);
            return Err(earlier_receive_error(engine, ids, e));
        }
        let mut statuses = Vec::with_capacity(posted.len());
        for guard in posted {
            let id = guard.1.expect("armed guards hold a request");
            let out = engine.wait_in(id, group);
            statuses.push(self.lent_receive_done(guard, out)?);
        }
        Ok(statuses)
    }

    /// The status of a finished receive into a lent buffer; on error the guard withdraws
    /// whatever is left of it.
    fn lent_receive_done(&self, guard: CancelOnDrop<'_>, out: Result<Outcome>) -> Result<Status> {
        if out.is_ok() {
            guard.disarm();
        }
        match out? {
            Outcome::Received { status, .. } => Ok(self.status(status)),
            Outcome::Sent => unreachable!("a receive completes as Received"),
        }
    }
}

/// A send of a call failed with `e`. A receive of the same call (`recvs`) that has already
/// ended with an error about what its peer sent before (a message of another call, say,
/// from a rank that then left) explains more, so that error is returned instead.
fn earlier_receive_error(
    engine: &Engine,
    recvs: impl IntoIterator<Item = ReqId>,
    e: Error,
) -> Error {
    recvs
        .into_iter()
        .find_map(|id| engine.test(id).and_then(Result::err))
        .unwrap_or(e)
}

/// Lends slices to the engine; callers pass at most [`RawParts::MAX`].
pub(crate) fn lend(parts: &[&[u8]]) -> RawParts {
    RawParts::from_slices(parts).expect("callers pass at most RawParts::MAX parts")
}

/// Lends mutable slices to the engine; callers pass at most [`RawParts::MAX`].
fn lend_mut(parts: &mut [&mut [u8]]) -> RawParts {
    RawParts::from_mut_slices(parts).expect("callers pass at most RawParts::MAX parts")
}

/// Withdraws a posted receive unless disarmed, so no buffer stays lent after an early
/// return.
struct CancelOnDrop<'a>(&'a Arc<Engine>, Option<ReqId>);

impl CancelOnDrop<'_> {
    fn disarm(mut self) -> ReqId {
        self.1.take().expect("armed guards hold a request")
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.1 {
            self.0.cancel(id);
        }
    }
}

/// Gives up, unless emptied, the sends [`Engine::start_send`] began by rendezvous, so no
/// slice stays lent after an early return.
struct ReleaseOnDrop<'a>(&'a Arc<Engine>, Vec<ReqId>);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        for &req in &self.1 {
            self.0.release_send(req);
        }
    }
}

fn tag_filter(t: TagFilter) -> Option<Tag> {
    match t {
        TagFilter::Any => None,
        TagFilter::Tag(t) => Some(t),
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|source| Error::Serde {
        action: "encode",
        ty: std::any::type_name::<T>(),
        source,
    })
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|source| Error::Serde {
        action: "decode",
        ty: std::any::type_name::<T>(),
        source,
    })
}

fn into_vec<T: Pod>(buf: AlignedBuf, status: &Status) -> Result<Vec<T>> {
    let len = buf.len();
    buf.into_vec().ok_or(Error::TypeMismatch {
        source_rank: status.source(),
        tag: status.tag(),
        expected: std::any::type_name::<T>(),
        detail: format!(
            " ({len} bytes is not a whole number of {}-byte elements)",
            std::mem::size_of::<T>()
        ),
    })
}
