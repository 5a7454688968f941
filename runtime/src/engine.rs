//! The engine: one per process, shared by every communicator. It owns the connections,
//! the matching queues and the outstanding operations, all behind one lock, and starts
//! the operations the communicators ask for.
//!
//! Whoever holds the lock makes progress for everyone (`progress.rs`); blocking calls
//! drive the sockets on the calling thread (`wait.rs`), and a background thread only
//! takes over while non-blocking operations are outstanding and no thread is waiting.

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::buf::RawParts;
use crate::config::Config;
use crate::conn::{Conn, Phase, Target, Then, TxBody, TxItem};
use crate::contract::{PeerInfo, Secret};
use crate::datatype::TypeInfo;
use crate::error::{Error, Result};
use crate::fault::Fault;
use crate::frame::{Header, Kind, FLAG_SERDE};
use crate::handshake::Connector;
use crate::matching::{Matcher, Posted, SinkSpec};
use crate::poller::Poller;
use crate::request::{Outcome, Payload, RawStatus, ReqId, Requests};
use crate::stream::Stream;
use crate::wait::SpinPolicy;

/// Epoll token of the listening socket.
pub(crate) const LISTENER_TOKEN: u64 = 0;
/// Epoll token of the control channel to the launcher.
pub(crate) const CONTROL_TOKEN: u64 = 1;
/// Epoll token of the local-channel listener (`stream.rs`).
pub(crate) const LOCAL_LISTENER_TOKEN: u64 = 2;
/// Epoll tokens of connections start here.
pub(crate) const CONN_TOKEN_BASE: u64 = 3;

/// How long an unfinished handshake may take before the connection is dropped.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued bytes on one connection above which a blocking send waits for the queue to drain.
const TX_BACKPRESSURE: usize = 16 << 20;

pub(crate) struct Peer {
    pub info: PeerInfo,
    /// Connection this rank sends to the peer on (one, so messages keep their order).
    pub send_conn: Option<usize>,
    /// For a peer reached over the local channel: the TCP connection this rank sends
    /// rendezvous payloads on ([`State::payload_conn_for`]).
    pub bulk_conn: Option<usize>,
    /// Connection the peer's frames other than payloads last arrived on: a thread
    /// spinning for a message from the peer reads it directly (see `wait.rs`). A hint
    /// only, checked before use.
    pub rx_conn: Option<usize>,
    /// The same for the peer's rendezvous payloads ([`State::direct_conn`]).
    pub rx_payload_conn: Option<usize>,
    pub fault: Option<Fault>,
    /// The launcher reported the peer's exit while a connection to it was still open:
    /// the connection is read to its end (the peer's last messages are in it) and the
    /// peer is declared gone at EOF, or at this deadline if the EOF never comes (its host
    /// dropped off the network).
    pub exit_notice: Option<(Instant, crate::contract::ExitKind)>,
}

impl Peer {
    /// Connection `ci` is gone: stop sending on it.
    pub fn forget_conn(&mut self, ci: usize) {
        if self.send_conn == Some(ci) {
            self.send_conn = None;
        }
        if self.bulk_conn == Some(ci) {
            self.bulk_conn = None;
        }
    }
}

/// A large send waiting for the receiver's clear-to-send.
pub(crate) struct RdvSend {
    pub dest: u32,
    pub hdr: Header,
    pub body: TxBody,
    pub req: ReqId,
}

/// A large receive matched to an announcement, waiting for its data.
pub(crate) struct RdvRecv {
    pub hdr: Header,
    /// Payload bytes that came in earlier data frames (a payload sent in pieces).
    pub filled: usize,
    pub target: Target,
    pub req: ReqId,
    pub error: Option<Error>,
}

/// The sockets a rank accepts peer connections on.
#[derive(Default)]
pub(crate) struct Listeners {
    /// TCP, for every peer.
    pub tcp: Option<TcpListener>,
    /// The local channel, for peers on this host (`stream.rs`).
    pub local: Option<UnixListener>,
}

/// Everything behind the engine lock.
pub(crate) struct State {
    pub me: u32,
    pub size: u32,
    pub secret: Secret,
    pub cfg: Config,
    pub peers: Vec<Peer>,
    pub conns: Vec<Option<Box<Conn>>>,
    pub handshaking: usize,
    pub listener: Option<TcpListener>,
    /// Where ranks on this host connect (`stream.rs`).
    pub local_listener: Option<UnixListener>,
    pub control: Option<UnixStream>,
    pub control_rx: Vec<u8>,
    pub matcher: Matcher,
    pub reqs: Requests,
    pub next_rdv: u64,
    pub rdv_sends: HashMap<u64, RdvSend>,
    pub rdv_recvs: HashMap<(u32, u64), RdvRecv>,
    /// Set when the launcher went away: every operation fails with this.
    pub launcher_gone: Option<String>,
    /// Something finished during the last progress pass (waiters should look).
    pub changed: bool,
    /// A thread sleeps in epoll_wait.
    pub leader_busy: bool,
    /// Threads inside a blocking call (the background thread then stays out of the way).
    pub user_waiters: usize,
    /// Peers declared gone so far (lets group waits skip their check while all is well).
    pub faults: usize,
    /// Peers with a pending `exit_notice`.
    pub exit_notices: usize,
    /// Threads sleeping on `Engine::followers`.
    pub followers_waiting: usize,
    /// The leader is the background thread (a user thread that starts waiting wakes it).
    pub leader_is_background: bool,
    /// Finalize was called: the background thread ends.
    pub shutdown: bool,
    pub log: crate::log::RateLimited,
    /// Sends whose frames were fully written during the current pass.
    pub completed: Vec<ReqId>,
    /// Frames to send once the connection being worked on is back in its slot.
    pub outbox: Vec<(u32, TxItem)>,
    /// Reused buffer for epoll events.
    pub scratch: Vec<crate::poller::Event>,
    /// Connections that ran out of turns with frames still staged (see `progress.rs`).
    pub backlog: Vec<usize>,
    /// Passes that read one connection directly since epoll last looked at every
    /// descriptor (see `wait.rs`).
    pub direct_passes: u32,
}

/// The per-process progress engine.
pub(crate) struct Engine {
    pub state: Mutex<State>,
    pub poller: Poller,
    /// Followers (threads waiting while another one polls) sleep here.
    pub followers: Condvar,
    /// The background thread sleeps here when it has nothing to do.
    pub idle: Condvar,
    pub spin: SpinPolicy,
    pub rank: u32,
    pub size: u32,
    pub hosts: Vec<String>,
    /// The background progress thread, once started.
    pub bg_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// This engine, for starting the background thread from `&self`.
    pub me: std::sync::Weak<Engine>,
    /// Smallest communicator context id this process has not used (world is 0).
    pub next_ctx: std::sync::atomic::AtomicU32,
}

impl Engine {
    /// Builds the engine around already bound listeners and the control channel.
    pub fn new(
        me: u32,
        secret: Secret,
        peers: Vec<PeerInfo>,
        listeners: Listeners,
        control: Option<UnixStream>,
        spin: SpinPolicy,
    ) -> Result<Arc<Engine>> {
        let Listeners {
            tcp: listener,
            local: local_listener,
        } = listeners;
        let io = |what: &str| {
            let what = what.to_string();
            move |source| Error::Io {
                rank: me as usize,
                what,
                source,
            }
        };
        let poller = Poller::new().map_err(io("create epoll instance"))?;
        let watch = |fd: BorrowedFd<'_>, token: u64, what: &str| {
            socket2::SockRef::from(&fd)
                .set_nonblocking(true)
                .map_err(io(&format!("set the {what} non-blocking")))?;
            poller
                .add(fd.as_raw_fd(), token, false)
                .map_err(io(&format!("watch the {what}")))
        };
        if let Some(l) = &listener {
            watch(l.as_fd(), LISTENER_TOKEN, "listener")?;
        }
        if let Some(l) = &local_listener {
            watch(l.as_fd(), LOCAL_LISTENER_TOKEN, "local-channel listener")?;
        }
        if let Some(c) = &control {
            watch(c.as_fd(), CONTROL_TOKEN, "control channel")?;
        }
        let size = peers.len() as u32;
        let hosts = peers.iter().map(|p| p.host.clone()).collect();
        let state = State {
            me,
            size,
            secret,
            cfg: Config::from_env(),
            peers: peers
                .into_iter()
                .map(|info| Peer {
                    info,
                    send_conn: None,
                    bulk_conn: None,
                    rx_conn: None,
                    rx_payload_conn: None,
                    fault: None,
                    exit_notice: None,
                })
                .collect(),
            conns: Vec::new(),
            handshaking: 0,
            listener,
            local_listener,
            control,
            control_rx: Vec::new(),
            matcher: Matcher::default(),
            reqs: Requests::default(),
            next_rdv: 0,
            rdv_sends: HashMap::new(),
            rdv_recvs: HashMap::new(),
            launcher_gone: None,
            changed: false,
            leader_busy: false,
            user_waiters: 0,
            faults: 0,
            exit_notices: 0,
            followers_waiting: 0,
            leader_is_background: false,
            shutdown: false,
            log: crate::log::RateLimited::new(me),
            completed: Vec::new(),
            outbox: Vec::new(),
            scratch: Vec::with_capacity(64),
            backlog: Vec::new(),
            direct_passes: 0,
        };
        Ok(Arc::new_cyclic(|weak| Engine {
            me: weak.clone(),
            state: Mutex::new(state),
            poller,
            followers: Condvar::new(),
            idle: Condvar::new(),
            spin,
            rank: me,
            size,
            hosts,
            bg_thread: Mutex::new(None),
            next_ctx: std::sync::atomic::AtomicU32::new(1),
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for error paths.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Host name of a world rank.
    pub fn host(&self, rank: u32) -> &str {
        self.hosts
            .get(rank as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Whether world rank `rank` runs on another host than this rank.
    pub fn elsewhere(&self, rank: u32) -> bool {
        self.host(rank) != self.host(self.rank)
    }

    /// Blocking send of `data` to world rank `dest`.
    pub fn send(&self, dest: u32, ctx: u32, tag: i32, ty: TypeInfo, data: &[u8]) -> Result<()> {
        let parts = RawParts::from_slices(&[data]).expect("one part fits");
        self.send_parts(dest, ctx, tag, ty, parts, None)
    }

    /// Blocking send of the concatenation of `parts` (borrowed for the duration of the
    /// call) to world rank `dest`, without copying them together. With a `group`, a large
    /// send gives up as soon as any member is gone (see [`Engine::wait_in`]).
    pub fn send_parts(
        &self,
        dest: u32,
        ctx: u32,
        tag: i32,
        ty: TypeInfo,
        parts: RawParts,
        group: Option<&[u32]>,
    ) -> Result<()> {
        match self.start_send(dest, ctx, tag, ty, parts)? {
            Some(req) => self.finish_send(req, group),
            None => Ok(()),
        }
    }

    /// Starts a send of the concatenation of `parts`, as [`Engine::send_parts`] but
    /// without waiting for a rendezvous: an eager message is with the kernel or the
    /// connection's queue (a copy) when this returns `None`; for a larger one the
    /// ready-to-send is out and the returned request ends when the payload has been
    /// written. Until then `parts` stay lent: the caller must end the request with
    /// [`Engine::finish_send`] or [`Engine::release_send`] before the slices go away.
    pub fn start_send(
        &self,
        dest: u32,
        ctx: u32,
        tag: i32,
        ty: TypeInfo,
        parts: RawParts,
    ) -> Result<Option<ReqId>> {
        let len = parts.total();
        let mut st = self.lock();
        st.check_usable(dest)?;
        let hdr = st.header(Kind::Eager, ctx, tag, ty, len)?;
        if dest == st.me {
            st.deliver_local(hdr, parts);
            return Ok(None);
        }
        if len <= st.cfg.eager_limit {
            let mut ci = st.conn_for(self, dest)?;
            if !st.conns[ci].as_deref().is_some_and(Conn::is_open) {
                // First contact: finish the handshake here, so the message is in the
                // kernel's hands when `send` returns even if this rank stops calling pirun.
                drop(st);
                ci = self.block_until(|st| {
                    if let Some(f) = st.fault_of(dest) {
                        return Some(Err(f));
                    }
                    let ci = st.peers[dest as usize].send_conn?;
                    st.conns[ci]
                        .as_deref()
                        .is_some_and(Conn::is_open)
                        .then_some(Ok(ci))
                })?;
                st = self.lock();
            }
            let item = TxItem::new(hdr, TxBody::Borrowed(parts), None);
            let queued = st.send_now_or_queue(self, ci, item);
            drop(st);
            if queued > 0 {
                // The kernel buffer is full: the rest goes out in the background.
                self.ensure_background_thread();
                self.idle.notify_one();
            }
            if queued > TX_BACKPRESSURE {
                self.block_until(|st| {
                    if let Some(f) = st.fault_of(dest) {
                        return Some(Err(f));
                    }
                    let c = st.conns.get(ci).and_then(Option::as_ref);
                    (c.is_none_or(|c| c.tx_bytes <= TX_BACKPRESSURE / 2)).then_some(Ok(()))
                })?;
            }
            return Ok(None);
        }
        // The send waits for `dest`'s clear-to-send, then for its data to drain into the
        // connection: a wait for `dest` reads the connection each comes on or goes out by
        // directly (`State::direct_conn`).
        let req = st.reqs.open_from(Some(dest));
        st.start_rendezvous(self, dest, hdr, TxBody::Borrowed(parts), req)?;
        Ok(Some(req))
    }

    /// Waits for a send [`Engine::start_send`] began by rendezvous; with a `group`, gives
    /// up as soon as any member is gone (see [`Engine::wait_in`]). The parts are no longer
    /// lent when this returns, whatever it returns.
    pub fn finish_send(&self, req: ReqId, group: Option<&[u32]>) -> Result<()> {
        let r = self.wait_in(req, group);
        if r.is_err() {
            self.release_send(req);
        }
        r.map(|_| ())
    }

    /// Gives up a send [`Engine::start_send`] began by rendezvous: whatever of it is still
    /// queued is copied, so its parts are no longer lent.
    pub fn release_send(&self, req: ReqId) {
        self.lock().release_borrowed_send(req);
    }

    /// Starts a non-blocking send of an owned payload; returns its request.
    pub fn isend(
        &self,
        dest: u32,
        ctx: u32,
        tag: i32,
        ty: TypeInfo,
        body: Box<dyn crate::conn::Payload>,
    ) -> Result<ReqId> {
        let mut st = self.lock();
        st.check_usable(dest)?;
        let len = body.bytes().len();
        let hdr = st.header(Kind::Eager, ctx, tag, ty, len)?;
        let req = st.reqs.open();
        if dest == st.me {
            st.deliver_local(
                hdr,
                RawParts::from_slices(&[body.bytes()]).expect("one part fits"),
            );
            st.reqs.complete(req, Ok(Outcome::Sent));
            return Ok(req);
        }
        let body = TxBody::Owned(body);
        if len <= st.cfg.eager_limit {
            let ci = st.conn_for(self, dest)?;
            let item = TxItem::new(hdr, body, Some(req));
            st.send_now_or_queue(self, ci, item);
        } else {
            st.start_rendezvous(self, dest, hdr, body, req)?;
        }
        st.reqs.set_background(req);
        drop(st);
        self.idle.notify_one();
        Ok(req)
    }

    /// Posts a receive; returns its request.
    pub fn post_recv(
        &self,
        ctx: u32,
        src: Option<u32>,
        tag: Option<i32>,
        ty: TypeInfo,
        sink: SinkSpec,
        background: bool,
    ) -> Result<ReqId> {
        let mut st = self.lock();
        if let Some(s) = src {
            st.check_rank(s)?;
        }
        if let Some(why) = &st.launcher_gone {
            return Err(Error::LauncherGone {
                rank: st.me as usize,
                detail: why.clone(),
            });
        }
        let req = st.reqs.open_from(src);
        let posted = Posted {
            req,
            src,
            tag,
            ty,
            sink,
        };
        match st.matcher.take_unexpected(ctx, src, tag) {
            Some(u) => st.match_unexpected(posted, u),
            None => {
                if let Some(s) = src {
                    if let Some(f) = st.fault_of(s) {
                        st.reqs.forget(req);
                        return Err(f);
                    }
                } else if let Some(e) = st.any_source_fault() {
                    st.reqs.forget(req);
                    return Err(e);
                }
                st.matcher.push_posted(ctx, posted)
            }
        }
        self.flush_outbox(&mut st);
        if background {
            st.reqs.set_background(req);
            drop(st);
            self.idle.notify_one();
        }
        Ok(req)
    }

    /// Waits for `req` and returns its outcome.
    pub fn wait(&self, req: ReqId) -> Result<Outcome> {
        self.block_on(req, |st| st.reqs.take(req))
    }

    /// Waits for `req`, one step of a collective over `group` (world ranks): as soon as any
    /// member has failed (crashed, killed, unreachable, or exited without finalizing), the
    /// step fails naming it — the whole collective is lost,
    /// even if this rank's own partner in the step is alive. The caller withdraws `req`.
    pub fn wait_in(&self, req: ReqId, group: Option<&[u32]>) -> Result<Outcome> {
        let Some(group) = group else {
            return self.wait(req);
        };
        self.block_on(req, |st| {
            if let Some(r) = st.reqs.take(req) {
                return Some(r);
            }
            if st.faults == 0 {
                return None;
            }
            // A member that finalized cleanly finished its part; only failures count.
            let failed = |m: u32| {
                st.peers[m as usize]
                    .fault
                    .as_ref()
                    .is_some_and(|f| !f.finished)
            };
            group
                .iter()
                .find(|&&m| failed(m))
                .and_then(|&m| st.fault_of(m))
                .map(Err)
        })
    }

    /// Makes progress once and returns the outcome of `req` if it has finished.
    pub fn test(&self, req: ReqId) -> Option<Result<Outcome>> {
        let mut st = self.lock();
        self.progress(&mut st);
        st.reqs.take(req)
    }

    /// Withdraws `req`: a posted receive is removed, a receive in flight drops its data,
    /// and the result is forgotten.
    pub fn cancel(&self, req: ReqId) {
        let mut st = self.lock();
        st.matcher.cancel(req);
        for r in st.rdv_recvs.values_mut() {
            if r.req == req {
                r.target = Target::Discard;
            }
        }
        for c in st.conns.iter_mut().flatten() {
            if let Some(inc) = c.incoming.as_mut() {
                if matches!(inc.then, Then::Complete(r, _) if r == req) {
                    inc.target = Target::Discard;
                }
            }
        }
        st.reqs.forget(req);
    }

    /// Looks for a matching message without receiving it; blocks if `block`.
    pub fn probe(
        &self,
        ctx: u32,
        src: Option<u32>,
        tag: Option<i32>,
        block: bool,
    ) -> Result<Option<RawStatus>> {
        let look = |st: &mut State| -> Option<Result<Option<RawStatus>>> {
            if let Some(u) = st.matcher.peek_unexpected(ctx, src, tag) {
                let hdr = u.hdr();
                return Some(Ok(Some(RawStatus {
                    src: u.src(),
                    tag: hdr.tag,
                    len: hdr.len as usize,
                })));
            }
            let fault = match src {
                Some(s) => st.fault_of(s),
                None => st.any_source_fault(),
            };
            fault.map(Err).or((!block).then_some(Ok(None)))
        };
        if let Some(s) = src {
            self.lock().check_rank(s)?;
        }
        if block {
            self.block_until(look)
        } else {
            let mut st = self.lock();
            self.progress(&mut st);
            look(&mut st).unwrap_or(Ok(None))
        }
    }

    /// Finishes pending handshakes that carry queued frames, says goodbye on every open
    /// connection and flushes what is queued — for at most two seconds in all.
    pub fn finalize(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let _ = self.block_until_deadline(deadline, |st| {
            let opening = st
                .conns
                .iter()
                .flatten()
                .any(|c| !c.is_open() && !c.tx.is_empty());
            (!opening).then_some(())
        });
        let mut st = self.lock();
        for c in st.conns.iter_mut().flatten().filter(|c| c.is_open()) {
            c.queue(TxItem::new(Header::new(Kind::Goodbye), TxBody::None, None));
        }
        for ci in 0..st.conns.len() {
            st.update_interest(self, ci);
        }
        drop(st);
        let _ = self.block_until_deadline(deadline, |st| {
            let pending = st
                .conns
                .iter()
                .flatten()
                .any(|c| c.is_open() && c.wants_write());
            (!pending).then_some(())
        });
        let mut st = self.lock();
        for ci in 0..st.conns.len() {
            if let Some(c) = st.conns[ci].take() {
                self.poller.remove(c.sock.as_raw_fd());
            }
        }
    }
}

impl State {
    /// Whether the background thread has something to move: pending non-blocking
    /// operations, or frames still queued on a connection.
    pub fn has_background_work(&self) -> bool {
        self.reqs.background() > 0 || self.conns.iter().flatten().any(|c| c.wants_write())
    }

    /// The open connection `rank`'s frames last arrived on, if any.
    pub fn rx_conn_of(&self, rank: u32) -> Option<usize> {
        self.open_conn_to(rank, self.peers.get(rank as usize)?.rx_conn?)
    }

    /// The connection a wait for `req`, which waits for frames from `rank`, reads
    /// directly. Once `req` waits for its rendezvous payload: for a receive, the one
    /// `rank`'s payloads last arrived on (else the one this rank sends its own on); for a
    /// send, the one its payload is queued on, so each turn writes more of it. Otherwise,
    /// and if that one is not open, the one `rank`'s other frames last arrived on.
    pub fn direct_conn(&self, req: Option<ReqId>, rank: u32) -> Option<usize> {
        let peer = self.peers.get(rank as usize)?;
        if peer.bulk_conn.is_none() && peer.rx_payload_conn.is_none() {
            // No payload has a connection of its own (the common case): skip the lookup.
            return self.rx_conn_of(rank);
        }
        let payload = match req.and_then(|r| self.reqs.awaits_payload(r)) {
            Some(Payload::In) => peer.rx_payload_conn.or(peer.bulk_conn),
            Some(Payload::Out) => peer.bulk_conn,
            None => None,
        };
        payload
            .and_then(|ci| self.open_conn_to(rank, ci))
            .or_else(|| self.rx_conn_of(rank))
    }

    /// Takes connection `ci` out of the table and the poller; returns it.
    pub fn remove_conn(&mut self, eng: &Engine, ci: usize) -> Option<Box<Conn>> {
        let c = self.conns.get_mut(ci)?.take()?;
        eng.poller.remove(c.sock.as_raw_fd());
        if c.counted {
            self.handshaking -= 1;
        }
        Some(c)
    }

    /// `ci`, if it is an open connection to `rank`.
    fn open_conn_to(&self, rank: u32, ci: usize) -> Option<usize> {
        self.conns
            .get(ci)?
            .as_ref()
            .filter(|c| c.peer == Some(rank) && c.is_open())
            .map(|_| ci)
    }

    /// Whether a connection other than `except` may still carry messages from `rank`:
    /// one known to be its, or an accepted one whose handshake has not said whose it is.
    pub fn may_reach(&self, rank: u32, except: Option<usize>) -> bool {
        self.conns.iter().enumerate().any(|(i, c)| {
            Some(i) != except
                && c.as_ref()
                    .is_some_and(|c| c.peer == Some(rank) || (c.peer.is_none() && !c.is_open()))
        })
    }

    pub fn io_err(&self, what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            rank: self.me as usize,
            what: what.into(),
            source,
        }
    }

    pub fn check_rank(&self, r: u32) -> Result<()> {
        if r >= self.size {
            return Err(Error::InvalidRank {
                rank: r as usize,
                size: self.size as usize,
            });
        }
        Ok(())
    }

    /// Checks that `dest` can be sent to.
    fn check_usable(&self, dest: u32) -> Result<()> {
        self.check_rank(dest)?;
        if let Some(why) = &self.launcher_gone {
            return Err(Error::LauncherGone {
                rank: self.me as usize,
                detail: why.clone(),
            });
        }
        match self.fault_of(dest) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn header(&self, kind: Kind, ctx: u32, tag: i32, ty: TypeInfo, len: usize) -> Result<Header> {
        if tag < 0 {
            return Err(Error::InvalidTag(tag));
        }
        if len as u64 > self.cfg.limits.message_max {
            return Err(Error::TooLarge {
                len: len as u64,
                limit: self.cfg.limits.message_max,
            });
        }
        Ok(Header {
            kind,
            flags: if ty.serde { FLAG_SERDE } else { 0 },
            ctx,
            tag,
            type_sig: ty.sig,
            elem_size: ty.elem_size,
            len: len as u64,
            id: 0,
        })
    }

    /// The connection to send to `dest` on, opening one if needed: over the local channel
    /// to a rank on this host if it can, else over TCP.
    pub fn conn_for(&mut self, eng: &Engine, dest: u32) -> Result<usize> {
        if let Some(ci) = self.peers[dest as usize].send_conn {
            return Ok(ci);
        }
        let local = self.cfg.local_channel && !eng.elsewhere(dest);
        let addr = self.peers[dest as usize].info.addr;
        let sock = self.open_stream(dest, local).map_err(|e| {
            let detail = format!("cannot connect to it at {addr}: {e}");
            self.fail_peer(eng, dest, false, detail.clone());
            Error::PeerFailed {
                rank: dest as usize,
                host: self.peers[dest as usize].info.host.clone(),
                detail,
            }
        })?;
        let ci = self.start_handshake(eng, dest, sock)?;
        self.peers[dest as usize].send_conn = Some(ci);
        Ok(ci)
    }

    /// The connection for a rendezvous payload to `dest`: the one [`State::conn_for`]
    /// gives, except that a rank reached over the local channel gets its payloads over a
    /// TCP connection of their own, opened the first time (if that cannot be opened, they
    /// take the local channel). Bulk data is faster over TCP (see `stream.rs`). A payload
    /// may take another connection than its announcement because its frames name the
    /// message they belong to, matching happened when the announcement arrived, and all
    /// pieces of one payload are one queued item on one connection.
    pub fn payload_conn_for(&mut self, eng: &Engine, dest: u32) -> Result<usize> {
        let ci = self.conn_for(eng, dest)?;
        if !self.conns[ci].as_deref().is_some_and(|c| c.sock.is_local()) {
            return Ok(ci);
        }
        if let Some(bi) = self.peers[dest as usize].bulk_conn {
            return Ok(bi);
        }
        let Ok(sock) = self.open_stream(dest, false) else {
            return Ok(ci);
        };
        let bi = self.start_handshake(eng, dest, sock)?;
        self.peers[dest as usize].bulk_conn = Some(bi);
        Ok(bi)
    }

    /// Starts connecting to `dest`: over the local channel if `local` and it answers
    /// there, else over TCP.
    fn open_stream(&self, dest: u32, local: bool) -> std::io::Result<Stream> {
        let addr = self.peers[dest as usize].info.addr;
        let unix = local
            .then(|| crate::stream::connect_local(&self.secret, dest, addr.port()).ok())
            .flatten();
        match unix {
            Some(s) => Ok(Stream::Unix(s)),
            None => crate::conn::connect_nonblocking(addr, &self.cfg).map(Stream::Tcp),
        }
    }

    /// Registers a connection just opened to `dest` and queues its handshake; returns
    /// its index.
    fn start_handshake(&mut self, eng: &Engine, dest: u32, sock: Stream) -> Result<usize> {
        let (connector, hello) = Connector::start(self.secret, self.me, self.size)
            .map_err(|e| self.io_err("make a nonce", e))?;
        let mut conn = Conn::new(
            sock,
            Some(dest),
            Phase::Connecting(connector, dest),
            Some(Instant::now() + HANDSHAKE_TIMEOUT),
        );
        conn.queue_handshake(&hello);
        conn.counted = true;
        let ci = self.add_conn(eng, conn)?;
        self.handshaking += 1;
        Ok(ci)
    }

    /// Registers a connection with the poller; returns its index.
    pub fn add_conn(&mut self, eng: &Engine, mut conn: Conn) -> Result<usize> {
        let ci = match self.conns.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        conn.write_interest = true;
        eng.poller
            .add(conn.sock.as_raw_fd(), CONN_TOKEN_BASE + ci as u64, true)
            .map_err(|e| self.io_err("watch a connection", e))?;
        self.conns[ci] = Some(Box::new(conn));
        Ok(ci)
    }

    /// Writes `item` right away if the connection is idle, else queues it (a borrowed body
    /// is copied, since a blocking eager send returns at once). Returns the bytes queued.
    pub(crate) fn send_now_or_queue(&mut self, eng: &Engine, ci: usize, item: TxItem) -> usize {
        let Some(mut c) = self.conns[ci].take() else {
            return 0;
        };
        c.queue(item);
        if c.is_open() && c.tx.len() == 1 {
            let mut done = std::mem::take(&mut self.completed);
            let r = c.flush(&mut done);
            self.completed = done;
            if let Err(e) = r {
                self.conns[ci] = Some(c);
                eng.drop_conn(self, ci, crate::progress::Drop::Io(e));
                self.finish_completed();
                return 0;
            }
        }
        if !c.tx.is_empty() {
            // What the socket did not take outlives this call: copy borrowed bodies.
            let own = c.tx.drain(..).map(TxItem::into_owned).collect();
            c.tx = own;
        }
        let queued = c.tx_bytes;
        self.conns[ci] = Some(c);
        self.update_interest(eng, ci);
        self.finish_completed();
        queued
    }

    /// Completes the sends whose frames were fully written.
    pub fn finish_completed(&mut self) {
        let done = std::mem::take(&mut self.completed);
        for &req in &done {
            self.reqs.complete(req, Ok(Outcome::Sent));
            self.changed = true;
        }
        self.completed = done;
        self.completed.clear();
    }

    /// Watches the connection for writability exactly when it has something to write.
    pub fn update_interest(&mut self, eng: &Engine, ci: usize) {
        if let Some(c) = self.conns[ci].as_mut() {
            let want = c.wants_write() || matches!(c.phase, Phase::Connecting(..));
            if want != c.write_interest {
                c.write_interest = want;
                let _ = eng
                    .poller
                    .modify(c.sock.as_raw_fd(), CONN_TOKEN_BASE + ci as u64, want);
            }
        }
    }

    /// Announces a large message and remembers its payload until clear-to-send.
    fn start_rendezvous(
        &mut self,
        eng: &Engine,
        dest: u32,
        hdr: Header,
        body: TxBody,
        req: ReqId,
    ) -> Result<()> {
        let ci = self.conn_for(eng, dest)?;
        self.next_rdv += 1;
        let id = self.next_rdv;
        let mut rts = hdr;
        rts.kind = Kind::Rts;
        rts.id = id;
        self.rdv_sends.insert(
            id,
            RdvSend {
                dest,
                hdr: rts,
                body,
                req,
            },
        );
        let item = TxItem::new(rts, TxBody::None, None);
        self.send_now_or_queue(eng, ci, item);
        Ok(())
    }

    /// After a failed blocking send: nothing may keep pointing into the caller's buffer.
    fn release_borrowed_send(&mut self, req: ReqId) {
        self.rdv_sends.retain(|_, s| s.req != req);
        for c in self.conns.iter_mut().flatten() {
            let items = std::mem::take(&mut c.tx);
            c.tx = items
                .into_iter()
                .map(|it| {
                    if it.done == Some(req) {
                        it.into_owned()
                    } else {
                        it
                    }
                })
                .collect();
        }
        self.reqs.forget(req);
    }
}
