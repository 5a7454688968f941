//! One progress pass: take what epoll reports ready and act on it — accept and
//! authenticate connections, read frames and hand them to matching, write queued frames,
//! and follow the launcher's control messages.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::conn::{Conn, Incoming, PayloadRead, Phase, Target, Then, TxItem};
use crate::contract::{ControlMsg, ExitKind};
use crate::engine::{
    Engine, RdvRecv, State, CONN_TOKEN_BASE, CONTROL_TOKEN, HANDSHAKE_TIMEOUT, LISTENER_TOKEN,
    LOCAL_LISTENER_TOKEN,
};
use crate::frame::{Header, Kind, SHORT_LEN};
use crate::handshake::{Acceptor, HELLO_LEN, PROOF_LEN, REPLY_LEN};
use crate::matching::Unexpected;
use crate::poller::Poller;
use crate::request::{Outcome, Payload, RawStatus};
use crate::stream::Stream;

/// Frames handled per readiness event before other connections get a turn.
const FRAMES_PER_TURN: usize = 64;
/// Unauthenticated connections accepted at once; more are refused (connection floods).
pub(crate) const MAX_HANDSHAKING: usize = 256;
/// How long a connection to a rank the launcher reported as exited may stay open.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Why a connection is being dropped.
pub(crate) enum Drop {
    /// I/O error or EOF.
    Io(io::Error),
    /// The peer broke the protocol (after authenticating) or failed authentication.
    Protocol(String),
}

impl Engine {
    /// Handles everything that is ready now, without blocking.
    pub(crate) fn progress(&self, st: &mut State) {
        let mut evs = std::mem::take(&mut st.scratch);
        evs.clear();
        st.direct_passes = 0;
        if let Err(e) = self.poller.wait(&mut evs, Some(Duration::ZERO)) {
            st.log.warn(format_args!("epoll_wait failed: {e}"));
        }
        self.progress_with(st, &evs);
        st.scratch = evs;
    }

    /// A cheaper pass for a thread spinning on a message from one peer: reads connection
    /// `ci` directly (one `recv` instead of `epoll_wait` + `recv`), then does whatever
    /// else is due apart from looking at the other descriptors.
    pub(crate) fn progress_conn(&self, st: &mut State, ci: usize) {
        let ev = crate::poller::Event {
            token: CONN_TOKEN_BASE + ci as u64,
            writable: false,
        };
        self.progress_with(st, &[ev]);
    }

    /// Handles the events a sleeping `epoll_wait` just returned (saving the system call
    /// a fresh look would cost), then whatever else is due.
    pub(crate) fn progress_with(&self, st: &mut State, evs: &[crate::poller::Event]) {
        for ci in std::mem::take(&mut st.backlog) {
            self.conn_ready(st, ci, false);
        }
        let mut control = false;
        for ev in evs {
            match ev.token {
                LISTENER_TOKEN => self.accept_all(st, false),
                LOCAL_LISTENER_TOKEN => self.accept_all(st, true),
                // Last: a peer's exit notice must not overtake the messages it sent.
                CONTROL_TOKEN => control = true,
                Poller::WAKE_TOKEN => self.poller.drain_wake(),
                t => self.conn_ready(st, (t - CONN_TOKEN_BASE) as usize, ev.writable),
            }
        }
        if control {
            self.read_control(st);
        }
        if st.handshaking > 0 {
            self.expire_handshakes(st);
        }
        if st.exit_notices > 0 {
            self.expire_exit_notices(st);
        }
        self.flush_outbox(st);
        if st.changed {
            st.changed = false;
            if st.followers_waiting > 0 {
                self.followers.notify_all();
            }
            if st.leader_busy {
                self.poller.wake();
            }
        }
    }

    /// Sends the control frames (clear-to-send, rendezvous data) queued while a
    /// connection was being worked on.
    pub(crate) fn flush_outbox(&self, st: &mut State) {
        while !st.outbox.is_empty() {
            let batch = std::mem::take(&mut st.outbox);
            for (dest, item) in batch {
                if st.peers[dest as usize].fault.is_some() {
                    if let Some(req) = item.done {
                        let e = st.fault_of(dest).expect("peer has a fault");
                        st.reqs.complete(req, Err(e));
                    }
                    continue;
                }
                let conn = if item.is_payload() {
                    st.payload_conn_for(self, dest)
                } else {
                    st.conn_for(self, dest)
                };
                match conn {
                    Ok(ci) => {
                        st.send_now_or_queue(self, ci, item);
                    }
                    Err(e) => {
                        if let Some(req) = item.done {
                            st.reqs.complete(req, Err(e));
                        }
                    }
                }
            }
        }
    }

    /// Accepts every pending connection on the TCP listener, or with `local` on the
    /// local-channel one, and starts its handshake.
    fn accept_all(&self, st: &mut State, local: bool) {
        loop {
            let accepted = if local {
                let Some(listener) = st.local_listener.as_ref() else {
                    return;
                };
                listener.accept().map(|(s, _)| Stream::Unix(s))
            } else {
                let Some(listener) = st.listener.as_ref() else {
                    return;
                };
                listener.accept().map(|(s, _)| Stream::Tcp(s))
            };
            match accepted {
                Ok(sock) => {
                    // Where it comes from costs a system call: asked only for a warning.
                    if let Some(uid) = sock.other_user() {
                        st.log.warn(format_args!(
                            "refused a connection from {}: it runs as user {uid}, not as this job's user",
                            sock.peer_text()
                        ));
                        continue;
                    }
                    if st.handshaking >= MAX_HANDSHAKING {
                        st.log.warn(format_args!(
                            "refused a connection from {}: {MAX_HANDSHAKING} handshakes already in progress",
                            sock.peer_text()
                        ));
                        continue;
                    }
                    let setup = sock.set_nonblocking().and_then(|()| match &sock {
                        Stream::Tcp(s) => {
                            crate::conn::tune_socket(&socket2::SockRef::from(s), &st.cfg)
                        }
                        Stream::Unix(s) => {
                            crate::stream::tune_local(&socket2::SockRef::from(s));
                            Ok(())
                        }
                    });
                    if let Err(e) = setup {
                        st.log.warn(format_args!(
                            "dropped a connection from {}: {e}",
                            sock.peer_text()
                        ));
                        continue;
                    }
                    let mut conn = Conn::new(
                        sock,
                        None,
                        Phase::AwaitHello,
                        Some(Instant::now() + HANDSHAKE_TIMEOUT),
                    );
                    conn.counted = true;
                    if st.add_conn(self, conn).is_ok() {
                        st.handshaking += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: say so, and try again on the next pass.
                    st.log.warn(format_args!("accept failed: {e}"));
                    return;
                }
            }
        }
    }

    fn read_control(&self, st: &mut State) {
        let Some(ctl) = st.control.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        let gone = loop {
            match io::Read::read(ctl, &mut buf) {
                Ok(0) => break Some("its control connection closed".to_string()),
                Ok(n) => st.control_rx.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(format!("reading the control connection failed: {e}")),
            }
        };
        loop {
            if st.control_rx.len() < 4 {
                break;
            }
            let prefix = [
                st.control_rx[0],
                st.control_rx[1],
                st.control_rx[2],
                st.control_rx[3],
            ];
            let len = match ControlMsg::body_len(prefix) {
                Ok(l) => l,
                Err(e) => {
                    self.launcher_lost(st, e.to_string());
                    return;
                }
            };
            if st.control_rx.len() < 4 + len {
                break;
            }
            let msg = ControlMsg::from_body(&st.control_rx[4..4 + len]);
            st.control_rx.drain(..4 + len);
            match msg {
                Ok(ControlMsg::PeerExited { rank, how }) if rank != st.me && rank < st.size => {
                    if st.may_reach(rank, None) {
                        st.peers[rank as usize].exit_notice =
                            Some((Instant::now() + EXIT_GRACE, how));
                        st.exit_notices += 1;
                    } else {
                        st.fail_peer(self, rank, how == ExitKind::Code(0), how_text(how));
                    }
                }
                Ok(_) => {}
                Err(e) => st.log.warn(format_args!("ignored a control message: {e}")),
            }
        }
        if let Some(why) = gone {
            self.launcher_lost(st, why);
        }
    }

    /// The launcher is gone: every pending operation fails, and so will every new one.
    fn launcher_lost(&self, st: &mut State, why: String) {
        if let Some(c) = st.control.take() {
            self.poller.remove(c.as_raw_fd());
        }
        st.launcher_gone = Some(why);
        for req in st.reqs.pending() {
            let e = st.fault_of(st.me).expect("launcher_gone is set");
            st.reqs.complete(req, Err(e));
        }
        st.changed = true;
    }

    fn expire_handshakes(&self, st: &mut State) {
        let now = Instant::now();
        for ci in 0..st.conns.len() {
            let expired = st.conns[ci]
                .as_ref()
                .is_some_and(|c| c.deadline.is_some_and(|d| d <= now));
            if expired {
                self.drop_conn(
                    st,
                    ci,
                    Drop::Protocol(format!(
                        "handshake not finished within {HANDSHAKE_TIMEOUT:?}"
                    )),
                );
            }
        }
    }

    fn expire_exit_notices(&self, st: &mut State) {
        let now = Instant::now();
        for rank in 0..st.size {
            let peer = &mut st.peers[rank as usize];
            if let Some((deadline, how)) = peer.exit_notice {
                if deadline <= now || peer.fault.is_some() {
                    peer.exit_notice = None;
                    st.exit_notices -= 1;
                    st.fail_peer(self, rank, how == ExitKind::Code(0), how_text(how));
                }
            }
        }
    }

    fn conn_ready(&self, st: &mut State, ci: usize, writable: bool) {
        let Some(mut c) = st.conns.get_mut(ci).and_then(Option::take) else {
            return;
        };
        c.drained = false;
        let r = self.drive(st, ci, &mut c, writable);
        st.conns[ci] = Some(c);
        match r {
            Ok(()) => st.update_interest(self, ci),
            Err(d) => self.drop_conn(st, ci, d),
        }
        st.finish_completed();
    }

    /// Moves bytes on one connection in both directions.
    fn drive(&self, st: &mut State, ci: usize, c: &mut Conn, writable: bool) -> Result<(), Drop> {
        if let Phase::Connecting(..) = c.phase {
            if !writable {
                return Ok(());
            }
            if let Some(e) = c.sock.take_error().map_err(Drop::Io)? {
                return Err(Drop::Io(e));
            }
            let Phase::Connecting(conn, rank) = std::mem::replace(&mut c.phase, Phase::Open) else {
                unreachable!("checked above")
            };
            c.phase = Phase::AwaitReply(conn, rank);
        }
        let mut done = std::mem::take(&mut st.completed);
        let r = c.flush(&mut done);
        st.completed = done;
        r.map_err(Drop::Io)?;
        self.read_frames(st, ci, c)?;
        let mut done = std::mem::take(&mut st.completed);
        let r = c.flush(&mut done);
        st.completed = done;
        r.map_err(Drop::Io)
    }

    /// Reads handshake messages and frames until the socket has no more.
    fn read_frames(&self, st: &mut State, ci: usize, c: &mut Conn) -> Result<(), Drop> {
        for _ in 0..FRAMES_PER_TURN {
            if c.incoming.is_some() {
                match c.read_payload().map_err(Drop::Io)? {
                    PayloadRead::Done => {
                        let inc = c.incoming.take().expect("checked above");
                        self.finish_incoming(
                            st,
                            c.peer.expect("open connections know their peer"),
                            inc,
                        );
                        continue;
                    }
                    PayloadRead::WouldBlock => return Ok(()),
                }
            }
            if c.is_open() {
                // Checked first: moving the handshake state in and out of `phase` for
                // every frame showed in the profile of the 8-byte round trip.
                // A header is SHORT_LEN or HEADER_LEN bytes; its first two say which.
                if !c.need(SHORT_LEN).map_err(Drop::Io)? {
                    return Ok(());
                }
                let malformed = |e| Drop::Protocol(format!("malformed frame: {e}"));
                let n = Header::wire_len(c.staged()).map_err(malformed)?;
                if !c.need(n).map_err(Drop::Io)? {
                    return Ok(());
                }
                let hdr =
                    Header::decode_wire(&c.staged()[..n], &st.cfg.limits).map_err(malformed)?;
                c.consume(n);
                let src = c.peer.expect("open connections know their peer");
                // Payloads may take a connection of their own (`State::direct_conn`).
                let peer = &mut st.peers[src as usize];
                if hdr.kind == Kind::Data {
                    peer.rx_payload_conn = Some(ci);
                } else {
                    peer.rx_conn = Some(ci);
                }
                self.on_frame(st, c, src, hdr)?;
                continue;
            }
            let phase = std::mem::replace(&mut c.phase, Phase::Open);
            match phase {
                Phase::Open => unreachable!("handled above"),
                Phase::Connecting(..) => {
                    c.phase = phase;
                    return Ok(());
                }
                Phase::AwaitReply(connector, rank) => {
                    if !c.need(REPLY_LEN).map_err(Drop::Io)? {
                        c.phase = Phase::AwaitReply(connector, rank);
                        return Ok(());
                    }
                    let reply: [u8; REPLY_LEN] =
                        c.staged()[..REPLY_LEN].try_into().expect("length checked");
                    c.consume(REPLY_LEN);
                    let (theirs, proof) = connector
                        .finish(&reply, rank)
                        .map_err(|e| Drop::Protocol(e.to_string()))?;
                    c.queue_handshake(&proof);
                    c.arch = Some(theirs.arch);
                    self.opened(st, ci, c);
                }
                Phase::AwaitHello => {
                    if !c.need(HELLO_LEN).map_err(Drop::Io)? {
                        c.phase = Phase::AwaitHello;
                        return Ok(());
                    }
                    let hello: [u8; HELLO_LEN] =
                        c.staged()[..HELLO_LEN].try_into().expect("length checked");
                    c.consume(HELLO_LEN);
                    let (acceptor, reply) = Acceptor::answer(st.secret, st.me, st.size, &hello)
                        .map_err(|e| Drop::Protocol(e.to_string()))?;
                    c.queue_handshake(&reply);
                    c.phase = Phase::AwaitProof(acceptor);
                }
                Phase::AwaitProof(acceptor) => {
                    if !c.need(PROOF_LEN).map_err(Drop::Io)? {
                        c.phase = Phase::AwaitProof(acceptor);
                        return Ok(());
                    }
                    let proof: [u8; PROOF_LEN] =
                        c.staged()[..PROOF_LEN].try_into().expect("length checked");
                    c.consume(PROOF_LEN);
                    let theirs = acceptor
                        .finish(&proof)
                        .map_err(|e| Drop::Protocol(e.to_string()))?;
                    c.peer = Some(theirs.rank);
                    c.arch = Some(theirs.arch);
                    self.opened(st, ci, c);
                    if st.peers[theirs.rank as usize].fault.is_some() {
                        return Err(Drop::Protocol("the rank was already declared gone".into()));
                    }
                    let send_ci = *st.peers[theirs.rank as usize].send_conn.get_or_insert(ci);
                    if !c.sock.is_local()
                        && st.conns[send_ci]
                            .as_deref()
                            .is_some_and(|s| s.sock.is_local())
                    {
                        // A rank on this host opened this for its payloads: ours go here too.
                        st.peers[theirs.rank as usize].bulk_conn.get_or_insert(ci);
                    }
                }
            }
        }
        // Out of turns with bytes possibly still staged: epoll will not report them again
        // (they left the socket already), so the connection goes on the backlog that the
        // next progress pass serves first.
        if !st.backlog.contains(&ci) {
            st.backlog.push(ci);
        }
        Ok(())
    }

    /// A handshake finished.
    fn opened(&self, st: &mut State, ci: usize, c: &mut Conn) {
        if let Some(p) = c.peer {
            st.peers[p as usize].rx_conn.get_or_insert(ci);
            if let Some(tcp) = c.sock.tcp().filter(|_| self.elsewhere(p)) {
                if st.cfg.unsent_limit > 0 {
                    // Best effort: without it a clear-to-send may wait behind megabytes.
                    let _ = crate::conn::limit_unsent(tcp, st.cfg.unsent_limit);
                }
            }
        }
        c.phase = Phase::Open;
        c.deadline = None;
        if std::mem::take(&mut c.counted) {
            st.handshaking -= 1;
        }
    }

    /// Acts on one decoded frame from `src`.
    fn on_frame(&self, st: &mut State, c: &mut Conn, src: u32, hdr: Header) -> Result<(), Drop> {
        match hdr.kind {
            Kind::Eager => {
                let inc = st.begin_incoming(src, hdr);
                if hdr.len == 0 {
                    self.finish_incoming(st, src, inc);
                } else {
                    c.incoming = Some(inc);
                }
            }
            Kind::Rts => match st.matcher.take_posted(hdr.ctx, src, hdr.tag) {
                Some(p) => st.accept_rendezvous(p, src, hdr),
                None => st
                    .matcher
                    .push_unexpected(hdr.ctx, Unexpected::Rts { src, hdr }),
            },
            Kind::Cts => {
                let send = st
                    .rdv_sends
                    .remove(&hdr.id)
                    .filter(|s| s.dest == src)
                    .ok_or_else(|| {
                        Drop::Protocol(format!("clear-to-send for unknown message {}", hdr.id))
                    })?;
                st.reqs.set_payload(send.req, Payload::Out);
                let mut data = send.hdr;
                data.kind = Kind::Data;
                let piece = if self.elsewhere(src) {
                    st.cfg.data_piece
                } else {
                    st.cfg.data_piece_local
                };
                st.outbox
                    .push((src, TxItem::pieces(data, send.body, Some(send.req), piece)));
            }
            Kind::Data => {
                let r = st.rdv_recvs.remove(&(src, hdr.id)).ok_or_else(|| {
                    Drop::Protocol(format!("data for unknown message {}", hdr.id))
                })?;
                // The payload may come in pieces, each appended to the ones before.
                let left = r.hdr.len - r.filled as u64;
                if hdr.len > left || (hdr.len == 0 && left > 0) {
                    return Err(Drop::Protocol(format!(
                        "data of {} bytes for a message announced as {} bytes, {} of them \
                         still to come",
                        hdr.len, r.hdr.len, left
                    )));
                }
                let inc = Incoming {
                    hdr: r.hdr,
                    filled: r.filled,
                    end: r.filled + hdr.len as usize,
                    target: r.target,
                    then: Then::Complete(r.req, r.error),
                };
                if hdr.len == 0 {
                    self.finish_incoming(st, src, inc);
                } else {
                    c.incoming = Some(inc);
                }
            }
            Kind::Goodbye => c.goodbye = true,
        }
        st.changed = true;
        Ok(())
    }

    /// A payload is complete: finish its receive or queue it as unexpected. A piece of
    /// a rendezvous payload that is not its last goes back to wait for the next one.
    fn finish_incoming(&self, st: &mut State, src: u32, inc: Incoming) {
        let hdr = inc.hdr;
        if inc.end < hdr.len as usize {
            let Then::Complete(req, error) = inc.then else {
                unreachable!("only rendezvous payloads come in pieces");
            };
            st.rdv_recvs.insert(
                (src, hdr.id),
                RdvRecv {
                    hdr,
                    filled: inc.end,
                    target: inc.target,
                    req,
                    error,
                },
            );
            return;
        }
        let status = RawStatus {
            src,
            tag: hdr.tag,
            len: hdr.len as usize,
        };
        match inc.then {
            Then::Complete(req, Some(e)) => st.reqs.complete(req, Err(e)),
            Then::Complete(req, None) => {
                let data = match inc.target {
                    Target::Owned(b) => Some(b),
                    Target::User { .. } | Target::Discard => None,
                };
                st.reqs
                    .complete(req, Ok(Outcome::Received { status, data }));
            }
            Then::Deliver => {
                let Target::Owned(data) = inc.target else {
                    return;
                };
                match st.matcher.take_posted(hdr.ctx, src, hdr.tag) {
                    Some(p) => st.fill_posted(p, src, hdr, data),
                    None => st
                        .matcher
                        .push_unexpected(hdr.ctx, Unexpected::Eager { src, hdr, data }),
                }
            }
        }
        st.changed = true;
    }

    /// Closes a connection. For an authenticated peer (or one we dialled) that ends the
    /// peer; for a stranger it is logged (rate-limited) and nothing else happens.
    pub(crate) fn drop_conn(&self, st: &mut State, ci: usize, why: Drop) {
        let why = self.read_to_end_after_broken_pipe(st, ci, why);
        let Some(c) = st.conns[ci].as_ref() else {
            return;
        };
        let (peer, goodbye) = (c.peer, c.goodbye);
        let from = c.sock.peer_text();
        let why_text = match &why {
            Drop::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                "connection closed".to_string()
            }
            Drop::Io(e) => e.to_string(),
            Drop::Protocol(s) => s.clone(),
        };
        match peer {
            // A connection knows its peer once it is open, or from the start if we
            // dialled it; one that does not is a stranger's.
            Some(rank) => {
                if st.may_reach(rank, Some(ci)) && self.ends_quietly(st, ci, rank, &why) {
                    // Another connection to the rank remains (both dialled at once, or a
                    // local channel and its payload connection), and this one took
                    // nothing with it: the peer's fate is decided when the last one ends.
                    let c = st.remove_conn(self, ci).expect("checked above");
                    for req in c.tx.iter().filter_map(|it| it.done) {
                        let e = crate::error::Error::PeerFailed {
                            rank: rank as usize,
                            host: st.peers[rank as usize].info.host.clone(),
                            detail: format!("connection lost before a message was sent ({why_text})"),
                        };
                        st.reqs.complete(req, Err(e));
                    }
                    st.peers[rank as usize].forget_conn(ci);
                    return;
                }
                let notice = st.peers[rank as usize].exit_notice.take();
                if notice.is_some() {
                    st.exit_notices -= 1;
                }
                let (finished, detail) = match (why, notice) {
                    (Drop::Io(_), Some((_, how))) if goodbye => (true, how_text(how)),
                    (Drop::Io(_), Some((_, how))) => (false, format!("{} without finalizing", how_text(how))),
                    (Drop::Io(_), None) if goodbye => (true, "finalized".to_string()),
                    (Drop::Io(e), None) if e.kind() == io::ErrorKind::TimedOut => (
                        false,
                        format!(
                            "stopped answering for {} s: its host or the network is down",
                            crate::conn::PEER_TIMEOUT.as_secs()
                        ),
                    ),
                    (Drop::Io(_), None) => (false, format!("lost the connection ({why_text}); did it crash?")),
                    (Drop::Protocol(_), _) => (false, format!("protocol error, connection dropped: {why_text}")),
                };
                // Closes every connection to the rank and fails what waits on them.
                st.fail_peer(self, rank, finished, detail);
            }
            _ => st.log.warn(format_args!(
                "dropped a connection from {from} that did not complete the pirun handshake: {why_text}"
            )),
        }
        st.remove_conn(self, ci);
    }

    /// A write that failed because the peer closed its end (`EPIPE`, which a Unix socket
    /// reports at once where TCP takes a round trip) leaves what the peer sent before
    /// unread: its last messages and its goodbye. Reads them first, so they are delivered
    /// and the peer's end is judged by them. Returns why the connection ends: the end of
    /// its stream if that was reached, else `why`.
    fn read_to_end_after_broken_pipe(&self, st: &mut State, ci: usize, why: Drop) -> Drop {
        let broken = matches!(&why, Drop::Io(e) if e.kind() == io::ErrorKind::BrokenPipe);
        if !broken || !st.conns[ci].as_deref().is_some_and(Conn::is_open) {
            return why;
        }
        let mut c = st.conns[ci].take().expect("checked above");
        c.drained = false;
        // Bounded: a closed peer's stream ends; 64 turns of 64 frames is plenty for the
        // frames it could have sent before closing.
        let mut end = None;
        for _ in 0..64 {
            if let Err(d) = self.read_frames(st, ci, &mut c) {
                end = Some(d);
                break;
            }
        }
        st.conns[ci] = Some(c);
        end.unwrap_or(why)
    }

    /// Whether connection `ci` to `rank`, ending for `why`, may go without failing the
    /// rank while another connection to it remains. It may after the rank's goodbye (it
    /// finished; its other connections end by themselves once read), and after an error
    /// that lost nothing: no message half read from it, no frames of ours queued on it,
    /// and no large message under way with the rank, whose payload it may have carried.
    /// Anything else fails the rank at once, so that no operation waits for bytes that
    /// are gone.
    fn ends_quietly(&self, st: &State, ci: usize, rank: u32, why: &Drop) -> bool {
        let Some(c) = st.conns[ci].as_deref() else {
            return false;
        };
        if !matches!(why, Drop::Io(_)) || c.incoming.is_some() {
            return false;
        }
        let rdv_pending = st.rdv_recvs.keys().any(|&(src, _)| src == rank)
            || st.rdv_sends.values().any(|s| s.dest == rank);
        c.goodbye || (c.tx.is_empty() && !rdv_pending)
    }
}

/// A peer's exit in words.
fn how_text(how: ExitKind) -> String {
    match how {
        ExitKind::Code(0) => "exited (code 0)".into(),
        ExitKind::Code(c) => format!("exited with code {c}"),
        ExitKind::Signal(s) => format!("was killed by signal {s}"),
    }
}
