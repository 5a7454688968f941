//! The byte stream under a connection: TCP, or between two ranks on one host a Unix
//! stream socket (the local channel).
//!
//! A rank listens on both. Its Unix listener has a name in Linux's abstract namespace
//! (no file to create or clean up) derived from the job secret, the rank and its TCP port:
//! a peer that knows the job can work the name out from the address table alone, so the
//! launch contract did not change, and a process outside the job cannot guess it to take
//! it first. Whoever connects still runs the full handshake (`handshake.rs`).
//!
//! A rank dials a peer the launcher placed on the same host by that name first, and over
//! TCP if that fails (a peer in another network namespace under the same host name, or
//! `PIRUN_LOCAL_CHANNEL=tcp`). Rendezvous payloads to such a peer still go over TCP, on a
//! second connection (`State::payload_conn_for`).
//!
//! Why, measured with `benches/compare/experiments/streamcost.c` (one process streams
//! messages to another on the other core; 3 runs each): on loopback, TCP runs the
//! receiver's whole input path in the sender's system call, so a 1 KiB message cost its
//! sender 1.90–1.97 µs over TCP and 0.90–0.97 µs over a Unix socket. Bulk data is another
//! story: a Unix socket moves it in freshly allocated 32 KiB buffers, TCP through
//! buffers it reuses. 64 KiB messages took 8.9–9.2 µs against TCP's 8.5–8.7, and 1 MiB
//! ones 221–280 µs at the default send buffer against 98–115 (97–106 with
//! [`LOCAL_SNDBUF`]). In pirun, payloads over the Unix socket made 1 MiB collectives up to
//! 1.46× slower, and over TCP they are as fast as before.
//!
//! Names in the abstract namespace are listed in `/proc/net/unix` for anyone on the host to
//! see, as a TCP port is; like the port, the name is useless without the job secret the
//! handshake asks for, and it is bound before anyone can learn it.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::contract::Secret;

/// Send buffer asked for on a local-channel socket (the kernel caps it at
/// `net.core.wmem_max`). A Unix stream socket has no autotuning, and at the default
/// (~200 KiB) 1 MiB messages went at less than half TCP's rate. Payloads take TCP anyway;
/// this lets a burst of eager messages (up to 128 KiB each) fit in the kernel instead of
/// waiting in the connection's queue.
pub(crate) const LOCAL_SNDBUF: usize = 4 << 20;

/// A connected stream to a peer.
#[derive(Debug)]
pub(crate) enum Stream {
    /// TCP: to another host, or on this host as a fallback.
    Tcp(TcpStream),
    /// The local channel: a Unix stream socket to a rank on this host.
    Unix(UnixStream),
}

impl Stream {
    /// The pending socket error (`SO_ERROR`), as after a non-blocking connect.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    /// Where the other end is, for log messages.
    pub fn peer_text(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "an unknown address".into()),
            Stream::Unix(s) => match peer_cred(s) {
                Some(c) => format!("process {} on this host (local channel)", c.pid),
                None => "a process on this host (local channel)".into(),
            },
        }
    }

    /// For the local channel: the user the process at the other end runs as, if that is
    /// not this process's user. Every rank of a job runs as one user, so such a
    /// connection is refused before any handshake work.
    pub fn other_user(&self) -> Option<u32> {
        let Stream::Unix(s) = self else {
            return None;
        };
        // SAFETY: geteuid cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        peer_cred(s).map(|c| c.uid).filter(|&uid| uid != me)
    }

    /// Whether this is the local channel.
    pub fn is_local(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Makes reads and writes return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(true),
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// The TCP stream, if this is one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(_) => None,
        }
    }
}

/// The credentials of the process at the other end of a Unix socket (`SO_PEERCRED`), if
/// the kernel says.
fn peer_cred(s: &UnixStream) -> Option<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid socket, and an option buffer of the size the call is told.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some(cred)
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Stream {
        Stream::Unix(s)
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The abstract-namespace name (without its leading NUL) of the local-channel listener
/// of `rank`, whose TCP listener has port `port`, in the job with `secret`.
fn local_name(secret: &Secret, rank: u32, port: u16) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"pirun-local-channel");
    mac.update(&rank.to_le_bytes());
    mac.update(&port.to_le_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("pirun-{hex}")
}

fn abstract_addr(name: &str) -> io::Result<socket2::SockAddr> {
    socket2::SockAddr::unix(format!("\0{name}"))
}

/// Binds and listens on the local-channel name of `rank` (TCP port `port`).
pub(crate) fn bind_local(secret: &Secret, rank: u32, port: u16) -> io::Result<UnixListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    s.bind(&abstract_addr(&local_name(secret, rank, port))?)?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Starts a non-blocking connect to the local-channel listener of `rank` (TCP port
/// `port`). A Unix connect completes or fails at once; a listener whose backlog is full
/// is an error too (`WouldBlock`), so the caller falls back to TCP rather than wait.
pub(crate) fn connect_local(secret: &Secret, rank: u32, port: u16) -> io::Result<UnixStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    s.set_nonblocking(true)?;
    s.connect(&abstract_addr(&local_name(secret, rank, port))?)?;
    tune_local(&s);
    Ok(s.into())
}

/// Socket options of a local-channel socket, best effort: the send buffer.
pub(crate) fn tune_local(s: &socket2::Socket) {
    let _ = s.set_send_buffer_size(LOCAL_SNDBUF);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::tests::{start, within};
    use std::time::Duration;

    #[test]
    fn names_differ_by_secret_rank_and_port_and_hide_the_secret() {
        let a = local_name(&[1; 32], 0, 4000);
        assert_eq!(
            a,
            local_name(&[1; 32], 0, 4000),
            "a peer works out the same name"
        );
        assert_ne!(a, local_name(&[2; 32], 0, 4000));
        assert_ne!(a, local_name(&[1; 32], 1, 4000));
        assert_ne!(a, local_name(&[1; 32], 0, 4001));
        assert!(a.starts_with("pirun-") && a.len() == 6 + 24, "{a}");
        assert!(
            !a.contains("0101"),
            "the name must not show the secret: {a}"
        );
    }

    #[test]
    fn a_local_connection_carries_bytes_both_ways() {
        let secret = [9; 32];
        let port = std::process::id() as u16; // any number: names only need to be unique
        let l = bind_local(&secret, 3, port).expect("bind the local channel");
        let mut out = Stream::from(connect_local(&secret, 3, port).expect("connect"));
        let (mut inn, _) = l.accept().expect("accept");
        out.write_all(b"ping").expect("write");
        let mut got = [0u8; 4];
        inn.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"ping");
        inn.write_all(b"pong").expect("write back");
        let mut back = [0u8; 4];
        // The connecting end is non-blocking: wait for the reply with a bounded poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut n = 0;
        while n < 4 {
            match out.read(&mut back[n..]) {
                Ok(0) => panic!("closed early"),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "no reply in 5 s");
                    std::thread::yield_now();
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(&back, b"pong");
        assert!(out.take_error().expect("SO_ERROR").is_none());
        assert!(out.tcp().is_none() && out.is_local());
        assert_eq!(out.other_user(), None, "our own process");
        let pid = std::process::id();
        assert_eq!(
            out.peer_text(),
            format!("process {pid} on this host (local channel)")
        );
    }

    /// How `from` reaches `to` after a rendezvous-sized message went both ways: whether
    /// its connection is the local channel, and whether the payload took TCP.
    fn exchange_and_report(
        engines: &[std::sync::Arc<crate::engine::Engine>],
        from: usize,
        to: usize,
    ) -> (bool, bool) {
        use crate::datatype::TypeInfo;
        use crate::wait::tests::{bounded, recv};
        let (a, b) = (engines[from].clone(), engines[to].clone());
        let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let expect = payload.clone();
        let echo = std::thread::spawn(move || {
            let got = recv(&b, from as u32, 5);
            b.send(from as u32, 0, 6, TypeInfo::BYTES, &got)
                .expect("echo");
            b.send(from as u32, 0, 7, TypeInfo::BYTES, b"after")
                .expect("small after");
        });
        let (back, after, kinds) = bounded(20, move || {
            a.send(to as u32, 0, 5, TypeInfo::BYTES, &payload)
                .expect("send");
            let back = recv(&a, to as u32, 6);
            let after = recv(&a, to as u32, 7);
            let st = a.lock();
            let kind = |ci: Option<usize>| {
                ci.and_then(|ci| st.conns[ci].as_ref())
                    .map(|c| c.sock.is_local())
            };
            let peer = &st.peers[to];
            let local = kind(peer.send_conn).expect("a connection to the peer");
            let payload_tcp = kind(peer.bulk_conn) == Some(false);
            (back, after, (local, payload_tcp))
        });
        echo.join().expect("echo thread");
        assert_eq!(
            back, expect,
            "a rendezvous-sized message survives the round trip"
        );
        assert_eq!(after, b"after", "a small message after a payload");
        kinds
    }

    #[test]
    fn ranks_on_one_host_use_the_local_channel_and_tcp_for_payloads() {
        if std::env::var("PIRUN_LOCAL_CHANNEL").is_ok() {
            return; // an override decides
        }
        let engines = crate::wait::tests::world_with_local(2, Duration::ZERO, |_| true);
        assert_eq!(exchange_and_report(&engines, 0, 1), (true, true));
        // The other way round, payloads share that TCP connection.
        assert_eq!(exchange_and_report(&engines, 1, 0), (true, true));
        let tcp_conns = |e: &crate::engine::Engine| {
            let st = e.lock();
            st.conns
                .iter()
                .flatten()
                .filter(|c| c.sock.tcp().is_some())
                .count()
        };
        assert_eq!((tcp_conns(&engines[0]), tcp_conns(&engines[1])), (1, 1));
    }

    #[test]
    fn a_rank_without_a_local_listener_is_reached_over_tcp() {
        let engines = crate::wait::tests::world_with_local(3, Duration::ZERO, |r| r != 2);
        assert_eq!(exchange_and_report(&engines, 0, 2), (false, false));
        assert_eq!(exchange_and_report(&engines, 1, 2), (false, false));
    }

    #[test]
    fn garbage_on_the_local_channel_is_dropped_and_the_rank_goes_on() {
        if std::env::var("PIRUN_LOCAL_CHANNEL").is_ok() {
            return;
        }
        let engines = crate::wait::tests::world_with_local(2, Duration::ZERO, |_| true);
        let port = engines[1].lock().peers[1].info.addr.port();
        let name = format!("\0{}", local_name(&[7; 32], 1, port));
        let addr = socket2::SockAddr::unix(name).expect("an abstract name");
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
            .expect("a socket");
        s.connect(&addr).expect("the rank listens there");
        let mut stranger = UnixStream::from(s);
        stranger
            .write_all(&[0xAB; crate::handshake::HELLO_LEN])
            .expect("write garbage");
        stranger
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // The rank reads the garbage as part of its next pass, and closes the connection.
        let e1 = engines[1].clone();
        let poke = std::thread::spawn(move || {
            for _ in 0..200 {
                e1.progress(&mut e1.lock());
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut buf = [0u8; 64];
        let n = loop {
            match stranger.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("the rank kept a garbage connection open: {e}"),
            }
        };
        assert_eq!(n, 0, "nothing is answered to a stranger");
        poke.join().expect("poke thread");
        // A failed handshake gives its slot back (it used to keep it: 256 strangers
        // would have locked every later peer out).
        assert_eq!(engines[1].lock().handshaking, 0);
        assert_eq!(exchange_and_report(&engines, 0, 1), (true, true));
    }

    #[test]
    fn a_process_of_another_user_is_refused_before_the_handshake() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 || std::env::var("PIRUN_LOCAL_CHANNEL").is_ok() {
            eprintln!("skipped: acting as another user needs root");
            return;
        }
        let engines = crate::wait::tests::world_with_local(2, Duration::ZERO, |_| true);
        let port = engines[1].lock().peers[1].info.addr.port();
        let addr = abstract_addr(&local_name(&[7; 32], 1, port)).expect("an abstract name");
        // SAFETY: the child makes only raw system calls and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: plain system calls on values prepared before the fork.
            unsafe {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    libc::_exit(2);
                }
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if fd < 0 || libc::connect(fd, addr.as_ptr().cast(), addr.len()) != 0 {
                    libc::_exit(3);
                }
                // Says nothing and waits: only a refusal closes this before the 10 s
                // handshake deadline.
                let mut b = 0u8;
                let n = libc::read(fd, (&mut b as *mut u8).cast(), 1);
                libc::_exit(if n == 0 { 0 } else { 4 });
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let status = loop {
            engines[1].progress(&mut engines[1].lock());
            let mut status = 0;
            // SAFETY: waiting for our own child, without blocking.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let status = status.expect("the rank closed the connection within 5 s");
        assert!(libc::WIFEXITED(status), "child status {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the rank closed the connection"
        );
        assert_eq!(engines[1].lock().handshaking, 0, "no handshake was started");
    }

    #[test]
    fn a_peer_gone_in_the_middle_of_a_payload_fails_the_receive() {
        use crate::datatype::TypeInfo;
        use crate::matching::SinkSpec;
        if std::env::var("PIRUN_LOCAL_CHANNEL").is_ok() {
            return;
        }
        let engines = crate::wait::tests::world_with_local(2, Duration::ZERO, |_| true);
        // Both connections exist: the local channel, and TCP for payloads.
        assert_eq!(exchange_and_report(&engines, 1, 0), (true, true));
        let (a, b) = (engines[0].clone(), engines[1].clone());
        let sink = SinkSpec::Owned { align: 1 };
        let req = a
            .post_recv(0, Some(1), Some(9), TypeInfo::BYTES, sink, false)
            .expect("post a receive");
        b.isend(0, 0, 9, TypeInfo::BYTES, Box::new(vec![1u8; 64 << 20]))
            .expect("start a 64 MiB send");
        let began = std::time::Instant::now();
        loop {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "the payload never started"
            );
            b.progress(&mut b.lock());
            let mut st = a.lock();
            a.progress(&mut st);
            if st.conns.iter().flatten().any(|c| c.incoming.is_some()) {
                break;
            }
        }
        // Rank 1 vanishes: every socket of it closes at once, as when a process dies.
        {
            let mut st = b.lock();
            st.conns.iter_mut().for_each(|c| drop(c.take()));
            st.local_listener = None;
            st.listener = None;
        }
        let got = within(10, start(move || a.wait(req).map(|_| ())));
        let err = got
            .expect("the receive ended within 10 s")
            .expect_err("its sender is gone");
        assert!(err.to_string().contains("rank 1"), "{err}");
    }

    #[test]
    fn a_payload_connection_that_cannot_open_is_an_error_on_both_sides_not_a_hang() {
        use crate::datatype::TypeInfo;
        use crate::matching::SinkSpec;
        if std::env::var("PIRUN_LOCAL_CHANNEL").is_ok() {
            return;
        }
        let engines = crate::wait::tests::world_with_local(2, Duration::ZERO, |_| true);
        let (a, b) = (engines[0].clone(), engines[1].clone());
        let b1 = b.clone();
        let first = std::thread::spawn(move || crate::wait::tests::recv(&b1, 0, 1));
        a.send(1, 0, 1, TypeInfo::BYTES, b"hi")
            .expect("first contact");
        assert_eq!(first.join().expect("receiver"), b"hi");
        // A stranger holds every handshake slot of rank 1, so it turns away the TCP
        // connection rank 0 opens for its first payload.
        let port = b.lock().peers[1].info.addr.port();
        let addr = abstract_addr(&local_name(&[7; 32], 1, port)).expect("an abstract name");
        let hold: Vec<socket2::Socket> = (0..crate::progress::MAX_HANDSHAKING)
            .map(|_| {
                let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
                    .expect("a socket");
                s.connect(&addr).expect("connect");
                s
            })
            .collect();
        b.progress(&mut b.lock());
        let sink = SinkSpec::Owned { align: 1 };
        let req = b
            .post_recv(0, Some(0), Some(9), TypeInfo::BYTES, sink, false)
            .expect("post a receive");
        let a1 = a.clone();
        let sent = start(move || a1.send(1, 0, 9, TypeInfo::BYTES, &vec![3u8; 1 << 20]));
        let b1 = b.clone();
        let got = start(move || b1.wait(req).map(|_| ()));
        let sent = within(8, sent).expect("the send ended within 8 s");
        let got = within(8, got).expect("the receive ended within 8 s");
        drop(hold);
        assert!(
            sent.is_err() && got.is_err(),
            "send {sent:?}, receive {got:?}"
        );
        let st = a.lock();
        let opening = st.conns.iter().flatten().filter(|c| !c.is_open()).count();
        assert_eq!(
            st.handshaking, opening,
            "the handshake count matches the connections"
        );
    }

    #[test]
    fn connecting_to_a_name_nobody_holds_fails_at_once() {
        let e = connect_local(&[5; 32], 1, 1).expect_err("nobody listens there");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    }
}
