//! One connection to a peer rank (TCP, or the local channel: `stream.rs`): its handshake
//! phase, its receive staging buffer and the payload being streamed into a receive, and its
//! queue of outgoing frames; and the socket options of its TCP sockets.
//!
//! A `Conn` only moves bytes; what a frame *means* is decided by the engine
//! (`progress.rs`), which takes the connection out of its table while it works on it.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::stream::Stream;

use crate::buf::{AlignedBuf, RawParts};
use crate::frame::{Header, HEADER_LEN};
use crate::handshake::{Acceptor, Arch, Connector};
use crate::request::ReqId;

/// Size of the receive staging buffer; reads of smaller messages land here in one call.
const STAGING: usize = 256 << 10;
/// Payload bytes still missing above which a read goes straight into the destination.
const DIRECT_READ_MIN: usize = 16 << 10;

/// Where a connection stands in the handshake.
pub(crate) enum Phase {
    /// We connect: the non-blocking connect is in progress.
    Connecting(Connector, u32),
    /// We connect: `Hello` is queued or sent, waiting for the `Reply`.
    AwaitReply(Connector, u32),
    /// We accepted: waiting for the connector's `Hello`.
    AwaitHello,
    /// We accepted and replied: waiting for the connector's `Proof`.
    AwaitProof(Acceptor),
    /// Authenticated; frames flow.
    Open,
}

/// The bytes of an outgoing frame's payload.
pub(crate) enum TxBody {
    None,
    /// Owned by the queue (eager copies, non-blocking sends).
    Owned(Box<dyn Payload>),
    /// Lent by a blocking send that waits until the request completes.
    Borrowed(RawParts),
}

// SAFETY: a Borrowed pointer is only read under the engine lock while its owner waits.
unsafe impl Send for TxBody {}

impl TxBody {
    /// Length of the payload.
    pub fn len(&self) -> usize {
        match self {
            TxBody::None => 0,
            TxBody::Owned(p) => p.bytes().len(),
            TxBody::Borrowed(parts) => parts.total(),
        }
    }

    /// Appends `take` bytes of the payload from byte `skip` on to `iov`, as far as it has
    /// room.
    fn push_iov<'a>(&'a self, mut skip: usize, mut take: usize, iov: &mut IovBuf<'a>) {
        let mut push = |s: &'a [u8]| {
            if skip >= s.len() {
                skip -= s.len();
            } else if take > 0 {
                let s = &s[skip..];
                let s = &s[..s.len().min(take)];
                iov.push(s);
                take -= s.len();
                skip = 0;
            }
        };
        match self {
            TxBody::None => {}
            TxBody::Owned(p) => push(p.bytes()),
            // SAFETY: the lender keeps the buffers alive and unmodified until completion.
            TxBody::Borrowed(parts) => unsafe { parts.slices() }.for_each(push),
        }
    }
}

/// Slices for one `writev`, on the stack (a heap vector per write showed in the profile of
/// the 8-byte round trip).
struct IovBuf<'a> {
    iov: [IoSlice<'a>; IovBuf::MAX],
    len: usize,
}

impl<'a> IovBuf<'a> {
    const MAX: usize = 32;

    fn new() -> Self {
        IovBuf {
            iov: [IoSlice::new(&[]); IovBuf::MAX],
            len: 0,
        }
    }

    /// Whether a frame of header plus [`RawParts::MAX`] slices still fits.
    fn has_room_for_a_frame(&self) -> bool {
        self.len + 1 + RawParts::MAX <= Self::MAX
    }

    fn push(&mut self, s: &'a [u8]) {
        if self.len < Self::MAX && !s.is_empty() {
            self.iov[self.len] = IoSlice::new(s);
            self.len += 1;
        }
    }

    fn slices(&self) -> &[IoSlice<'a>] {
        &self.iov[..self.len]
    }
}

/// An owned payload that a queued frame can send from.
pub(crate) trait Payload: Send {
    fn bytes(&self) -> &[u8];
}

impl<T: bytemuck::Pod + Send> Payload for Vec<T> {
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
}

/// A frame waiting to be written — or, for a rendezvous payload sent in pieces, the
/// frames of its pieces, one after the other.
pub(crate) struct TxItem {
    /// The header of the frame being written, in its first `hdr_len` bytes.
    pub hdr: [u8; HEADER_LEN],
    /// Length of that header on the wire (short or long form, see `frame`).
    hdr_len: u8,
    pub body: TxBody,
    /// Bytes of the current frame (header + its piece of the body) already written.
    pub off: usize,
    /// Request to complete once the whole frame is written.
    pub done: Option<ReqId>,
    /// A clear-to-send: it goes ahead of every frame not yet started, and between the
    /// pieces of a payload (it is matched to no receive, so order does not matter to it).
    urgent: bool,
    /// For a payload in pieces: the data header (its `len` rewritten per piece), the
    /// longest piece, and the body bytes sent in earlier pieces.
    pieces: Option<Box<Pieces>>,
}

/// How a rendezvous payload is cut into frames ([`TxItem::pieces`]).
struct Pieces {
    hdr: Header,
    max: usize,
    base: usize,
}

impl TxItem {
    /// A frame of `hdr` and `body`; `done` completes once it is written.
    pub fn new(hdr: Header, body: TxBody, done: Option<ReqId>) -> TxItem {
        let mut wire = [0u8; HEADER_LEN];
        let hdr_len = hdr.encode_wire(&mut wire) as u8;
        TxItem {
            hdr: wire,
            hdr_len,
            body,
            off: 0,
            done,
            urgent: false,
            pieces: None,
        }
    }

    /// A clear-to-send frame, which overtakes frames not yet started ([`Conn::queue`]).
    pub fn clear_to_send(hdr: Header) -> TxItem {
        TxItem {
            urgent: true,
            ..TxItem::new(hdr, TxBody::None, None)
        }
    }

    /// A rendezvous payload sent as data frames of at most `max` bytes each (one frame if
    /// `max` is 0), so that a clear-to-send queued meanwhile waits for one piece, not for
    /// the whole payload. The receiver appends each piece to what came before.
    pub fn pieces(hdr: Header, body: TxBody, done: Option<ReqId>, max: usize) -> TxItem {
        if max == 0 || body.len() <= max {
            return TxItem::new(hdr, body, done);
        }
        let mut first = hdr;
        first.len = max as u64;
        TxItem {
            pieces: Some(Box::new(Pieces { hdr, max, base: 0 })),
            ..TxItem::new(first, body, done)
        }
    }

    /// Whether this is (a piece of) a rendezvous payload.
    pub fn is_payload(&self) -> bool {
        self.hdr[1] == crate::frame::Kind::Data as u8
    }

    /// Body bytes sent in earlier pieces.
    fn base(&self) -> usize {
        self.pieces.as_ref().map_or(0, |p| p.base)
    }

    /// Length of the current frame's piece of the body.
    fn piece_len(&self) -> usize {
        match &self.pieces {
            None => self.body.len(),
            Some(p) => (self.body.len() - p.base).min(p.max),
        }
    }

    /// Length of the current frame's header.
    fn hdr_len(&self) -> usize {
        usize::from(self.hdr_len)
    }

    /// Length of the current frame.
    fn total(&self) -> usize {
        self.hdr_len() + self.piece_len()
    }

    /// Bytes still to write, headers of later pieces included.
    fn remaining(&self) -> usize {
        let Some(p) = &self.pieces else {
            return self.hdr_len() + self.body.len() - self.off;
        };
        let piece = self.piece_len();
        let later = self.body.len() - p.base - piece;
        // Later pieces are data frames, which always carry the long header.
        self.hdr_len() + piece - self.off + later + later.div_ceil(p.max) * HEADER_LEN
    }

    /// After the current frame is written: moves on to the next piece, if there is one.
    fn next_piece(&mut self) -> bool {
        let len = self.piece_len();
        let Some(p) = self.pieces.as_mut() else {
            return false;
        };
        p.base += len;
        if p.base == self.body.len() {
            return false;
        }
        let mut hdr = p.hdr;
        hdr.len = (self.body.len() - p.base).min(p.max) as u64;
        self.hdr_len = hdr.encode_wire(&mut self.hdr) as u8;
        self.off = 0;
        true
    }

    /// Copies a borrowed body so the lender may go; used when a blocking send must return
    /// before its frame has been fully written.
    pub fn into_owned(mut self) -> TxItem {
        if let TxBody::Borrowed(parts) = &self.body {
            // SAFETY: the lender is still waiting; this is the last use of its buffers.
            let copy: Vec<u8> = unsafe { parts.slices() }.flatten().copied().collect();
            self.body = TxBody::Owned(Box::new(copy));
        }
        self
    }
}

/// Where an incoming payload goes.
pub(crate) enum Target {
    /// A caller's buffer (blocking `recv_into`), valid until its request completes.
    User(RawParts),
    /// A buffer of exactly the payload's length.
    Owned(AlignedBuf),
    /// Read and dropped (a cancelled receive or one that failed its checks).
    Discard,
}

// SAFETY: see `TxBody`.
unsafe impl Send for Target {}

/// A payload being received.
pub(crate) struct Incoming {
    pub hdr: Header,
    /// Payload bytes received so far.
    pub filled: usize,
    /// Where the frame being read ends: `hdr.len`, or less for a piece of a rendezvous
    /// payload ([`TxItem::pieces`]), after which the rest waits for the next data frame.
    pub end: usize,
    pub target: Target,
    /// What to do once complete; decided by the engine.
    pub then: Then,
}

/// What completing an incoming payload does.
pub(crate) enum Then {
    /// Complete this request (with this error instead, if set).
    Complete(ReqId, Option<crate::Error>),
    /// Queue as an unexpected message, or match a receive posted meanwhile.
    Deliver,
}

/// Outcome of reading a payload.
pub(crate) enum PayloadRead {
    Done,
    WouldBlock,
}

/// A connection to (or from) a peer rank.
pub(crate) struct Conn {
    pub sock: Stream,
    /// Peer's rank once known (immediately for connections we open).
    pub peer: Option<u32>,
    pub phase: Phase,
    pub arch: Option<Arch>,
    /// When an unfinished handshake is given up.
    pub deadline: Option<Instant>,
    /// The peer said goodbye: its EOF is a normal end.
    pub goodbye: bool,
    stage: Vec<u8>,
    start: usize,
    end: usize,
    pub incoming: Option<Incoming>,
    /// Handshake bytes to write before anything else.
    hs_out: Vec<u8>,
    pub tx: VecDeque<TxItem>,
    /// Bytes queued in `tx`, for back-pressure.
    pub tx_bytes: usize,
    /// Whether epoll watches this socket for writability.
    pub write_interest: bool,
    /// The last read came back short: the socket is most likely empty, so the next read
    /// waits for epoll to say otherwise instead of costing a system call for `EAGAIN`.
    pub drained: bool,
    /// The connection counts in `State::handshaking`: its handshake is under way. Kept
    /// apart from `phase`, which a failed handshake step can leave at `Open`.
    pub counted: bool,
}

impl Conn {
    pub fn new(sock: Stream, peer: Option<u32>, phase: Phase, deadline: Option<Instant>) -> Conn {
        Conn {
            sock,
            peer,
            phase,
            arch: None,
            deadline,
            goodbye: false,
            stage: Vec::new(),
            start: 0,
            end: 0,
            incoming: None,
            hs_out: Vec::new(),
            tx: VecDeque::new(),
            tx_bytes: 0,
            write_interest: false,
            drained: false,
            counted: false,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Bytes received but not consumed.
    pub fn staged(&self) -> &[u8] {
        &self.stage[self.start..self.end]
    }

    /// Consumes `n` staged bytes.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more into the staging buffer. `Ok(0)` means EOF; `WouldBlock` means nothing
    /// is available now.
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.stage.is_empty() {
            self.stage = vec![0u8; STAGING];
        }
        if self.end == self.stage.len() {
            self.stage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        loop {
            let room = self.stage.len() - self.end;
            match self.sock.read(&mut self.stage[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.drained = n < room;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Ensures at least `n` bytes are staged; `Ok(false)` if they are not there yet.
    /// EOF is an `UnexpectedEof` error.
    pub fn need(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.start < n {
            match self.fill() {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Moves payload bytes of the current incoming message into its target.
    pub fn read_payload(&mut self) -> io::Result<PayloadRead> {
        let Some(inc) = self.incoming.as_mut() else {
            return Ok(PayloadRead::Done);
        };
        let total = inc.end;
        loop {
            let missing = total - inc.filled;
            if missing == 0 {
                return Ok(PayloadRead::Done);
            }
            let staged = self.end - self.start;
            if staged > 0 {
                let n = staged.min(missing);
                let n = match target_slice(&mut inc.target, inc.filled, n) {
                    Some(dst) => {
                        let m = dst.len();
                        dst.copy_from_slice(&self.stage[self.start..self.start + m]);
                        m
                    }
                    None => n,
                };
                inc.filled += n;
                self.start += n;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                continue;
            }
            // Large stretches are read straight into the destination; the rest via staging.
            let dst = target_slice(&mut inc.target, inc.filled, missing)
                .filter(|d| d.len() >= DIRECT_READ_MIN);
            // While a payload streams in, keep reading until EAGAIN: more is usually on its
            // way, and going back to epoll after every short read costs a wake-up each.
            let direct = dst.is_some();
            let r = match dst {
                Some(dst) => self.sock.read(dst),
                None => {
                    if self.stage.is_empty() {
                        self.stage = vec![0u8; STAGING];
                    }
                    self.sock.read(&mut self.stage[..]).inspect(|&n| {
                        self.start = 0;
                        self.end = n;
                    })
                }
            };

            match r {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) if direct => inc.filled += n,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(PayloadRead::WouldBlock)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues handshake bytes (written before any frame).
    pub fn queue_handshake(&mut self, bytes: &[u8]) {
        self.hs_out.extend_from_slice(bytes);
    }

    /// Queues a frame: at the back, or for a clear-to-send ahead of every frame not yet
    /// started.
    pub fn queue(&mut self, item: TxItem) {
        self.tx_bytes += item.remaining();
        if item.urgent {
            let at = self.tx.iter().position(|i| i.off == 0 && !i.urgent);
            self.tx.insert(at.unwrap_or(self.tx.len()), item);
        } else {
            self.tx.push_back(item);
        }
    }

    /// Between two pieces of the payload at the front: moves every clear-to-send queued
    /// behind it to the front.
    fn promote_urgent(&mut self) {
        if !self.tx.iter().skip(1).any(|i| i.urgent) {
            return;
        }
        let (urgent, rest): (VecDeque<TxItem>, VecDeque<TxItem>) =
            self.tx.drain(..).partition(|i| i.urgent);
        self.tx = urgent;
        self.tx.extend(rest);
    }

    /// Whether anything waits to be written.
    pub fn wants_write(&self) -> bool {
        !self.hs_out.is_empty() || (self.is_open() && !self.tx.is_empty())
    }

    /// Writes as much as the socket takes; pushes requests whose frames are complete to
    /// `done`. Frames wait until the handshake is through.
    pub fn flush(&mut self, done: &mut Vec<ReqId>) -> io::Result<()> {
        while !self.hs_out.is_empty() {
            match self.sock.write(&self.hs_out) {
                Ok(n) => {
                    self.hs_out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if !self.is_open() {
            return Ok(());
        }
        while !self.tx.is_empty() {
            let mut iov = IovBuf::new();
            for item in self.tx.iter() {
                if !iov.has_room_for_a_frame() {
                    break;
                }
                let (base, len) = (item.base(), item.piece_len());
                if item.off < item.hdr_len() {
                    iov.push(&item.hdr[item.off..item.hdr_len()]);
                    item.body.push_iov(base, len, &mut iov);
                } else {
                    let done = item.off - item.hdr_len();
                    item.body.push_iov(base + done, len - done, &mut iov);
                }
                if item.pieces.is_some() {
                    // Its next piece, or a clear-to-send queued meanwhile, comes next.
                    break;
                }
            }
            let written = self.sock.write_vectored(iov.slices());
            let mut n = match written {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            self.tx_bytes -= n;
            while n > 0 {
                let item = self
                    .tx
                    .front_mut()
                    .expect("written bytes belong to queued frames");
                let left = item.total() - item.off;
                if n < left {
                    item.off += n;
                    break;
                }
                n -= left;
                if item.next_piece() {
                    debug_assert_eq!(n, 0, "a write ends at the end of a piece");
                    self.promote_urgent();
                    break;
                }
                let item = self.tx.pop_front().expect("checked above");
                done.extend(item.done);
            }
        }
        Ok(())
    }
}

/// Where bytes from offset `at` of the payload go — at most `n` of them, fewer at the end
/// of a part — or `None` to drop them.
fn target_slice(t: &mut Target, at: usize, n: usize) -> Option<&mut [u8]> {
    match t {
        // SAFETY: the engine checked the message fits before choosing this target, and the
        // lender keeps the buffer alive until the request completes.
        Target::User(parts) => {
            let chunk = unsafe { parts.chunk_mut(at) };
            let n = n.min(chunk.len());
            Some(&mut chunk[..n])
        }
        Target::Owned(b) => Some(&mut b.as_mut_slice()[at..at + n]),
        Target::Discard => None,
    }
}

/// Starts a non-blocking TCP connect with the data-path socket options.
pub(crate) fn connect_nonblocking(addr: SocketAddr, cfg: &Config) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    tune_socket(&s, cfg)?;
    s.set_nonblocking(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(s.into())
}

/// Socket options every data-path socket gets:
/// - no Nagle delay;
/// - Reno congestion control unless `PIRUN_TCP_CONGESTION` says otherwise: model-based
///   BBR, the default on some systems, keeps the window below a megabyte on a LAN and
///   halved 1 MiB loopback bandwidth here (see `benches/compare/experiments`); Reno is
///   always permitted to unprivileged processes. Best effort: an unknown name is ignored;
/// - socket buffers only if `PIRUN_SOCKBUF` asks (setting them disables autotuning, and
///   measured no gain);
/// - a dead-peer deadline: keepalive probes after 2 s of silence, and a connection whose
///   sent data stays unacknowledged for [`PEER_TIMEOUT`] is dropped, so a peer whose host
///   vanished from the network (a pulled cable sends no FIN) turns into an error within
///   seconds instead of a hang.
pub(crate) fn tune_socket(s: &socket2::Socket, cfg: &Config) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    if let Some(name) = &cfg.congestion {
        let _ = s.set_tcp_congestion(name.as_bytes());
    }
    if cfg.sockbuf > 0 {
        // Best effort: the kernel caps these at net.core.{w,r}mem_max.
        let _ = s.set_send_buffer_size(cfg.sockbuf);
        let _ = s.set_recv_buffer_size(cfg.sockbuf);
    }
    let probes = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(2))
        .with_interval(Duration::from_secs(1))
        .with_retries(PEER_TIMEOUT.as_secs() as u32 - 2);
    s.set_tcp_keepalive(&probes)?;
    s.set_tcp_user_timeout(Some(PEER_TIMEOUT))?;
    Ok(())
}

/// Keeps at most `bytes` of not yet sent data in the kernel's buffer of `sock`
/// (`TCP_NOTSENT_LOWAT`): the socket takes more only once the unsent part is below that.
///
/// For connections to other hosts. The kernel's send buffer grows to megabytes, and a
/// frame written behind them — a clear-to-send the peer waits for before it sends its own
/// payload — waits until they are on the wire (350 ms for 4 MiB at 100 Mbit/s), so a
/// two-way exchange ran at half the link's rate. On one host the limit would only cost
/// wake-ups.
pub(crate) fn limit_unsent(sock: &TcpStream, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket, and an option value of the size the call is told.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How long a peer may stay silent on a connection with unanswered traffic before it is
/// declared unreachable.
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(6);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Kind, Limits, SHORT_LEN};
    use std::net::TcpListener;

    /// An open connection whose frames can be read raw from the other end.
    fn pair() -> (Conn, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let out = TcpStream::connect(l.local_addr().expect("bound")).expect("connect");
        let (theirs, _) = l.accept().expect("accept");
        // A frame that never comes fails the test instead of hanging it.
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        out.set_nonblocking(true).expect("non-blocking");
        (Conn::new(out.into(), Some(1), Phase::Open, None), theirs)
    }

    /// Reads frames, with either header form, until `n` bytes of payload and `extra`
    /// payload-less frames came.
    fn frames(mut sock: TcpStream, n: usize, extra: usize) -> Vec<(Kind, u64, Vec<u8>)> {
        let limits = Limits {
            eager_max: 1 << 20,
            message_max: 1 << 30,
        };
        let (mut got, mut bare, mut out) = (0, 0, Vec::new());
        while got < n || bare < extra {
            let mut h = [0u8; HEADER_LEN];
            sock.read_exact(&mut h[..SHORT_LEN]).expect("a header");
            let len = Header::wire_len(&h).expect("a pirun header");
            sock.read_exact(&mut h[SHORT_LEN..len])
                .expect("the rest of a long header");
            let hdr = Header::decode_wire(&h[..len], &limits).expect("a valid header");
            let mut body = vec![0u8; hdr.len as usize];
            sock.read_exact(&mut body).expect("its payload");
            got += body.len();
            bare += usize::from(body.is_empty());
            out.push((hdr.kind, hdr.id, body));
        }
        out
    }

    #[test]
    fn eager_frames_go_with_the_short_header_and_are_counted_so() {
        let (mut c, theirs) = pair();
        let mut eager = Header::new(Kind::Eager);
        eager.elem_size = 8;
        eager.len = 16;
        let small = TxBody::Owned(Box::new(vec![1u8; 16]));
        c.queue(TxItem::new(eager, small, Some(1)));
        assert_eq!(c.tx_bytes, SHORT_LEN + 16);
        // An element type wider than 255 bytes keeps the long header.
        let mut wide = eager;
        wide.elem_size = 1024;
        wide.len = 1024;
        c.queue(TxItem::new(
            wide,
            TxBody::Owned(Box::new(vec![2u8; 1024])),
            Some(2),
        ));
        assert_eq!(c.tx_bytes, SHORT_LEN + 16 + HEADER_LEN + 1024);
        // Pretend the socket took 7 bytes of the first header: the rest goes from there.
        let start = c.tx[0].hdr;
        c.sock
            .write_all(&start[..7])
            .expect("write the start by hand");
        c.tx[0].off = 7;
        c.tx_bytes -= 7;
        let mut done = Vec::new();
        c.flush(&mut done).expect("loopback takes 1 KB");
        assert_eq!(done, vec![1, 2]);
        assert_eq!(c.tx_bytes, 0, "every byte queued was written");
        let got = frames(theirs, 16 + 1024, 0);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, &got[0].2[..]), (Kind::Eager, &[1u8; 16][..]));
        assert_eq!((got[1].0, got[1].2.len()), (Kind::Eager, 1024));
    }

    #[test]
    fn a_payload_in_pieces_lets_a_clear_to_send_through_between_two() {
        let (mut c, theirs) = pair();
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut data = Header::new(Kind::Data);
        data.id = 7;
        data.len = payload.len() as u64;
        let body = TxBody::Owned(Box::new(payload.clone()));
        c.queue(TxItem::pieces(data, body, Some(3), 4096));
        // Queued before a byte of the payload is written: it goes first.
        let mut cts = Header::new(Kind::Cts);
        cts.id = 9;
        let total_before = c.tx_bytes;
        c.queue(TxItem::clear_to_send(cts));
        assert_eq!(c.tx_bytes, total_before + HEADER_LEN);
        let mut done = Vec::new();
        c.flush(&mut done).expect("loopback takes 10 KB");
        assert_eq!(done, vec![3], "the send completes with its last piece");
        assert_eq!(c.tx_bytes, 0, "every byte queued was written");
        let got = frames(theirs, payload.len(), 1);
        let shape: Vec<(Kind, u64, usize)> =
            got.iter().map(|(k, id, b)| (*k, *id, b.len())).collect();
        assert_eq!(
            shape,
            vec![
                (Kind::Cts, 9, 0),
                (Kind::Data, 7, 4096),
                (Kind::Data, 7, 4096),
                (Kind::Data, 7, 1808),
            ],
            "a clear-to-send not yet started goes first; the pieces follow in order"
        );
        let joined: Vec<u8> = got.into_iter().flat_map(|(_, _, b)| b).collect();
        assert!(joined == payload, "the pieces join into the payload");
    }

    #[test]
    fn a_clear_to_send_queued_mid_piece_goes_out_before_the_next_piece() {
        let (mut c, theirs) = pair();
        let payload = vec![5u8; 9000];
        let mut data = Header::new(Kind::Data);
        data.id = 1;
        data.len = payload.len() as u64;
        c.queue(TxItem::pieces(
            data,
            TxBody::Owned(Box::new(payload)),
            None,
            4000,
        ));
        // Pretend the socket took the header and 100 bytes of the first piece.
        let mut first = [0u8; HEADER_LEN + 100];
        first[..HEADER_LEN].copy_from_slice(&c.tx[0].hdr);
        c.sock.write_all(&first).expect("write the start by hand");
        c.tx[0].off = HEADER_LEN + 100;
        c.tx_bytes -= HEADER_LEN + 100;
        let mut cts = Header::new(Kind::Cts);
        cts.id = 2;
        c.queue(TxItem::clear_to_send(cts));
        c.flush(&mut Vec::new()).expect("loopback takes 9 KB");
        let shape: Vec<(Kind, usize)> = frames(theirs, 9000, 1)
            .iter()
            .map(|(k, _, b)| (*k, b.len()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Kind::Data, 4000),
                (Kind::Cts, 0),
                (Kind::Data, 4000),
                (Kind::Data, 1000)
            ]
        );
    }
}
