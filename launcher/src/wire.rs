//! The launcher ↔ proxy protocol: what `pirun` and `pirun --proxy` on another host say to
//! each other over the proxy's stdin and stdout (usually an ssh channel).
//!
//! # Framing
//!
//! A frame is a little-endian `u32` body length followed by a postcard-encoded body of at
//! most [`MAX_FRAME`] bytes. The first frame in each direction is a [`Hello`] (magic bytes,
//! protocol number, pirun version); only after both sides agree on [`PROTOCOL`] are
//! [`ToProxy`] / [`FromProxy`] messages decoded. A login script that prints to stdout on
//! the remote host (a chatty `.bashrc`) puts bytes in front of the proxy's hello: the
//! reader skips anything before the magic (at most [`MAX_NOISE`] bytes) and keeps it for
//! the error report.
//!
//! # The exchange
//!
//! ```text
//! launcher                                   proxy (pirun --proxy on host H)
//!   Hello, Job [, PreloadChunk…]      ──▶
//!                                     ◀──    Hello, Facts (hostname, cores, arch, SSH_CONNECTION)
//!                                     ◀──    Prepared { bind_addr } | Failed { message, code }
//!   Start (once every host is prepared) ──▶
//!                                     ◀──    Started { pids } | Failed
//!   Peers, PeerExited, Signal, Stdin,   ──▶
//!   StdinEnd, CloseControl, Ping             Control, ControlBroken, Output, Exited,
//!                                     ◀──    StdinReady, StdinClosed, Ping
//!   Finish (every rank has ended)      ──▶
//!                                     ◀──    Done
//! ```
//! A job array (`pirun --array`, [`crate::array`]) has no ranks: its `Job` carries an
//! [`ArraySpec`](crate::array::ArraySpec), and after `Start` the launcher sends batches of
//! [`TaskOrder`](crate::array::TaskOrder)s (`Tasks`: start task N with these arguments,
//! pause or resume its stdout) and the proxy answers with batches of
//! [`TaskEvent`](crate::array::TaskEvent)s (`Tasks`: output, exited, could not start).
//! Both sides send `Ping` every [`HEARTBEAT`]; a side that hears nothing for
//! [`SILENCE_LIMIT`] treats the other as gone (the proxy kills its ranks, the launcher
//! reports the host lost). End of file on the proxy's stdin means the launcher is gone:
//! the proxy kills its ranks at once.
//!
//! The job secret travels inside [`JobSpec`], i.e. over the proxy's stdin, never on a
//! command line.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use pirun::contract::{ControlMsg, ExitKind, PeerInfo, Secret};
use serde::{Deserialize, Serialize};

/// First bytes of every [`Hello`] body.
pub const MAGIC: [u8; 8] = *b"PIRUNPX\x01";
/// Protocol number; both sides must speak the same.
pub const PROTOCOL: u32 = 2;
/// Largest frame body either side accepts (a longer prefix is an error, never an
/// allocation).
pub const MAX_FRAME: usize = 16 << 20;
/// Bytes of a preloaded binary per [`ToProxy::PreloadChunk`].
pub const PRELOAD_CHUNK: usize = 1 << 20;
/// Most bytes skipped before the proxy's hello (login-script noise) before giving up.
pub const MAX_NOISE: usize = 64 * 1024;
/// How often each side pings the other.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Silence after which the other side counts as gone.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// The greeting each side sends first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// The sender's [`PROTOCOL`].
    pub protocol: u32,
    /// The sender's pirun version, for error messages.
    pub version: String,
}

impl Hello {
    /// This build's greeting.
    pub fn ours() -> Self {
        Hello {
            magic: MAGIC,
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Raw bytes, encoded as one postcard byte string (not a sequence of integers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Bytes {
    /// The bytes of an OS string.
    pub fn os(s: &OsStr) -> Self {
        Bytes(s.as_bytes().to_vec())
    }

    /// The bytes as an OS string.
    pub fn to_os(&self) -> OsString {
        OsString::from_vec(self.0.clone())
    }
}

/// A preloaded program: its bytes follow the job as [`ToProxy::PreloadChunk`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreloadSpec {
    /// File name to give it (the program's base name).
    pub name: String,
    /// Total length in bytes.
    pub len: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
}

/// Where the ranks' output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireOutput {
    /// Line by line back to the launcher ([`FromProxy::Output`]).
    Forward,
    /// Into `DIR/rank.N.{out,err}` on the proxy's host.
    Files(Bytes),
}

/// What one proxy is to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job secret (handed to each rank in `Welcome`).
    pub secret: Secret,
    /// The job id (`PIRUN_JOB_ID`).
    pub job_id: String,
    /// The host's name as the launcher calls it (`PIRUN_HOST`, error messages).
    pub host: String,
    /// Ranks in the whole job.
    pub size: u32,
    /// `(rank, local rank)` of the ranks to start on this host.
    pub ranks: Vec<(u32, u32)>,
    /// The program as typed (looked up on the proxy's host, unless preloaded).
    pub program: Bytes,
    /// Its arguments.
    pub args: Vec<Bytes>,
    /// `-x` exports, already resolved on the launcher's side.
    pub env: Vec<(Bytes, Bytes)>,
    /// Working directory: `--wdir`, or the launcher's own directory.
    pub wdir: Option<Bytes>,
    /// Whether `wdir` was given with `--wdir` (then it must exist on the host); the
    /// launcher's own directory is used only if it exists there.
    pub wdir_explicit: bool,
    /// The rank whose stdin comes from the launcher, if it runs on this host.
    pub stdin_rank: Option<u32>,
    /// Where output goes.
    pub output: WireOutput,
    /// `--iface`: the interface name or network whose address the ranks bind.
    pub iface: Option<String>,
    /// `--preload-binary`: the program's bytes follow.
    pub preload: Option<PreloadSpec>,
    /// A job array: no ranks; tasks come as [`ToProxy::Tasks`] after `Start`.
    pub array: Option<crate::array::ArraySpec>,
}

/// Messages from the launcher to a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToProxy {
    /// The job; the proxy checks the program and answers `Prepared` or `Failed`.
    Job(Box<JobSpec>),
    /// Next bytes of the preloaded program.
    PreloadChunk(Bytes),
    /// Every host is prepared: start the ranks.
    Start,
    /// The fence is complete: hand every local rank this table.
    Peers(Vec<PeerInfo>),
    /// A rank of the job (anywhere) has ended: tell the local ranks.
    PeerExited {
        /// The rank.
        rank: u32,
        /// How it ended.
        how: ExitKind,
    },
    /// Send this signal to every local rank's process group.
    Signal(i32),
    /// Bytes for the stdin of the rank that owns it.
    Stdin(Bytes),
    /// The launcher's stdin reached end of file.
    StdinEnd,
    /// Close this rank's control channel (it broke the protocol).
    CloseControl(u32),
    /// Heartbeat.
    Ping,
    /// Every rank has ended: kill what is left of their groups, drain output, clean up,
    /// answer `Done` and exit.
    Finish,
    /// A job array: start, pause or resume tasks.
    Tasks(Vec<crate::array::TaskOrder>),
}

/// What a proxy tells about its host right after its hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The host's own name (`gethostname`).
    pub hostname: String,
    /// Its cores.
    pub cores: u32,
    /// Its machine (`uname -m`, e.g. `aarch64`).
    pub arch: String,
    /// From `SSH_CONNECTION`: the address the launcher's side connected from.
    pub ssh_client: Option<IpAddr>,
    /// From `SSH_CONNECTION`: the address by which the launcher reached this host.
    pub ssh_server: Option<IpAddr>,
}

/// Messages from a proxy to the launcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromProxy {
    /// The host's facts (sent right after the hello).
    Facts(HostFacts),
    /// The program is there and runnable; the ranks will bind `bind_addr`.
    Prepared {
        /// The program as resolved on this host.
        program: Bytes,
        /// The address the ranks will bind and advertise.
        bind_addr: IpAddr,
    },
    /// The proxy cannot do what was asked; it cleans up and exits. `message` names the
    /// file or rank concerned; `code` is pirun's exit code for it.
    Failed {
        /// What went wrong.
        message: String,
        /// Exit code (127 not found, 126 not executable, 1 otherwise).
        code: i32,
    },
    /// Every local rank runs: `(rank, pid)`.
    Started {
        /// The ranks and their process ids.
        pids: Vec<(u32, u32)>,
    },
    /// A rank sent a control message (`Ready`, `Panicked`).
    Control {
        /// The rank.
        rank: u32,
        /// The message.
        msg: ControlMsg,
    },
    /// A rank's control channel broke and was closed.
    ControlBroken {
        /// The rank.
        rank: u32,
        /// Why.
        reason: String,
    },
    /// Whole lines of a rank's output.
    Output {
        /// The rank.
        rank: u32,
        /// `true` for stderr.
        stderr: bool,
        /// One or more lines, each ending with `\n`.
        lines: Bytes,
    },
    /// A rank ended.
    Exited {
        /// The rank.
        rank: u32,
        /// Its process id.
        pid: u32,
        /// How.
        how: ExitKind,
    },
    /// The stdin bytes sent so far are written: send more.
    StdinReady,
    /// The rank owning stdin closed it (or ended): send no more.
    StdinClosed,
    /// Heartbeat.
    Ping,
    /// Finished cleanly (answer to `Finish`).
    Done,
    /// A job array: what tasks did (output, exits).
    Tasks(Vec<crate::array::TaskEvent>),
}

/// Encodes `msg` as one frame (length prefix included).
pub fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain types into a Vec cannot fail.
    let mut out =
        postcard::to_extend(msg, vec![0u8; 4]).expect("protocol messages always serialize");
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// Decodes a frame body.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> io::Result<T> {
    postcard::from_bytes(body).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed protocol message: {e}"),
        )
    })
}

/// What a [`FrameReader`] read found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadState {
    /// More may come.
    Open,
    /// End of file.
    Closed,
}

/// Cuts a byte stream read from a non-blocking descriptor into frame bodies.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    /// Whether the peer's hello has been found (noise skipping ends there).
    synced: bool,
    /// Bytes skipped before the hello (kept up to a limit, for error reports).
    noise: Vec<u8>,
    /// Skip noise before the hello (the launcher's side: login scripts may print).
    skip_noise: bool,
    /// Bytes read so far: any progress, even inside a large frame, is a sign of life.
    total: u64,
}

impl FrameReader {
    /// A reader that expects the stream to start with a hello frame; with `skip_noise`,
    /// bytes before it (up to [`MAX_NOISE`]) are skipped.
    pub fn new(skip_noise: bool) -> Self {
        FrameReader {
            skip_noise,
            ..FrameReader::default()
        }
    }

    /// Reads what `fd` has now (until it would block) into the buffer.
    pub fn fill(&mut self, fd: RawFd) -> io::Result<ReadState> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a valid local buffer.
            let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n > 0 {
                self.buf.extend_from_slice(&chunk[..n as usize]);
                self.total += n as u64;
                if (n as usize) < chunk.len() {
                    return Ok(ReadState::Open);
                }
                continue;
            }
            if n == 0 {
                return Ok(ReadState::Closed);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => return Ok(ReadState::Open),
                _ => return Err(err),
            }
        }
    }

    /// Bytes read so far.
    pub fn total_read(&self) -> u64 {
        self.total
    }

    /// Bytes skipped before the hello, as text (for error reports).
    pub fn noise(&self) -> String {
        String::from_utf8_lossy(&self.noise).into_owned()
    }

    /// The next complete frame body, if one is buffered. An error means the stream is
    /// unusable (oversized frame, no hello within [`MAX_NOISE`] bytes).
    pub fn next_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        if !self.synced && !self.sync()? {
            return Ok(None);
        }
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("protocol frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
            ));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let body = avail[4..4 + len].to_vec();
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(body))
    }

    /// Finds the hello's magic; everything before its frame is noise.
    fn sync(&mut self) -> io::Result<bool> {
        let avail = &self.buf[self.start..];
        let found = avail
            .windows(MAGIC.len())
            .position(|w| w == MAGIC)
            .filter(|&p| p >= 4);
        match found {
            Some(p) if p == 4 || self.skip_noise => {
                let skip = p - 4;
                self.noise.extend_from_slice(&avail[..skip]);
                self.start += skip;
                self.synced = true;
                Ok(true)
            }
            Some(_) => Err(self.no_hello()),
            None if !self.skip_noise && avail.len() >= 4 + MAGIC.len() => Err(self.no_hello()),
            None if avail.len() > MAX_NOISE => Err(self.no_hello()),
            None => Ok(false),
        }
    }

    fn no_hello(&self) -> io::Error {
        let shown: String = String::from_utf8_lossy(&self.buf[self.start..])
            .chars()
            .take(200)
            .collect();
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the stream does not start with the pirun greeting; it starts with {shown:?}"),
        )
    }
}

/// Frames waiting to be written to a non-blocking descriptor.
#[derive(Debug, Default)]
pub struct OutQueue {
    frames: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written.
    offset: usize,
    bytes: usize,
}

impl OutQueue {
    /// Queues one encoded frame.
    pub fn push(&mut self, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Queues a message.
    pub fn send<T: Serialize>(&mut self, msg: &T) {
        self.push(frame(msg));
    }

    /// Bytes still queued.
    pub fn len(&self) -> usize {
        self.bytes - self.offset
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes as much as `fd` takes now. An error (other than would-block) means the
    /// other side is gone.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<()> {
        while let Some(front) = self.frames.front() {
            let rest = &front[self.offset..];
            // SAFETY: writing from a valid slice.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(()),
                    _ => return Err(err),
                }
            }
            self.offset += n as usize;
            if self.offset == front.len() {
                self.bytes -= front.len();
                self.offset = 0;
                self.frames.pop_front();
            }
        }
        Ok(())
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.offset = 0;
        self.bytes = 0;
    }
}

/// Switches a descriptor to non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The two addresses of `SSH_CONNECTION` (`client_ip client_port server_ip server_port`).
pub fn parse_ssh_connection(value: &str) -> (Option<IpAddr>, Option<IpAddr>) {
    let mut fields = value.split_whitespace();
    let client = fields.next().and_then(|s| s.parse().ok());
    let server = fields.nth(1).and_then(|s| s.parse().ok());
    (client, server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn spec() -> JobSpec {
        JobSpec {
            secret: [9; 32],
            job_id: "00ff".into(),
            host: "pi3".into(),
            size: 8,
            ranks: vec![(4, 0), (5, 1)],
            program: Bytes(b"./primes".to_vec()),
            args: vec![Bytes(b"2".to_vec()), Bytes(vec![0xff, b'x'])],
            env: vec![(Bytes(b"A".to_vec()), Bytes(b"b=c".to_vec()))],
            wdir: Some(Bytes(b"/tmp".to_vec())),
            wdir_explicit: false,
            stdin_rank: None,
            output: WireOutput::Forward,
            iface: Some("10.77.0.0/24".into()),
            preload: Some(PreloadSpec {
                name: "primes".into(),
                len: 3,
                sha256: [1; 32],
            }),
            array: Some(crate::array::ArraySpec { slots: 2 }),
        }
    }

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn messages_round_trip_split_anywhere() {
        let (mut w, r) = pair();
        let msgs = vec![
            ToProxy::Job(Box::new(spec())),
            ToProxy::PreloadChunk(Bytes(vec![0, 1, 2])),
            ToProxy::Peers(vec![PeerInfo {
                addr: "10.77.0.3:4000".parse().unwrap(),
                host: "pi3".into(),
            }]),
            ToProxy::PeerExited {
                rank: 3,
                how: ExitKind::Signal(9),
            },
            ToProxy::Finish,
        ];
        let mut bytes = frame(&Hello::ours());
        for m in &msgs {
            bytes.extend(frame(m));
        }
        let mut reader = FrameReader::new(false);
        let mut got = Vec::new();
        for b in &bytes {
            w.write_all(std::slice::from_ref(b)).unwrap();
            assert_eq!(reader.fill(r.as_raw_fd()).unwrap(), ReadState::Open);
            while let Some(body) = reader.next_frame().unwrap() {
                got.push(body);
            }
        }
        assert_eq!(decode::<Hello>(&got[0]).unwrap(), Hello::ours());
        let decoded: Vec<ToProxy> = got[1..].iter().map(|b| decode(b).unwrap()).collect();
        assert_eq!(decoded, msgs);
        drop(w);
        assert_eq!(reader.fill(r.as_raw_fd()).unwrap(), ReadState::Closed);
    }

    #[test]
    fn noise_before_the_hello_is_skipped_only_where_allowed() {
        let (mut w, r) = pair();
        let mut bytes = b"Welcome to pi3!\n".to_vec();
        bytes.extend(frame(&Hello::ours()));
        bytes.extend(frame(&FromProxy::Done));
        w.write_all(&bytes).unwrap();
        let mut reader = FrameReader::new(true);
        reader.fill(r.as_raw_fd()).unwrap();
        let hello = reader.next_frame().unwrap().unwrap();
        assert_eq!(decode::<Hello>(&hello).unwrap().protocol, PROTOCOL);
        assert_eq!(reader.noise(), "Welcome to pi3!\n");
        let done = reader.next_frame().unwrap().unwrap();
        assert_eq!(decode::<FromProxy>(&done).unwrap(), FromProxy::Done);

        let (mut w, r) = pair();
        w.write_all(&bytes).unwrap();
        let mut strict = FrameReader::new(false);
        strict.fill(r.as_raw_fd()).unwrap();
        assert!(strict.next_frame().is_err());
    }

    #[test]
    fn garbage_and_oversized_frames_are_errors_not_allocations() {
        let (mut w, r) = pair();
        w.write_all(&[0u8; MAX_NOISE + 16]).unwrap();
        let mut reader = FrameReader::new(true);
        reader.fill(r.as_raw_fd()).unwrap();
        assert!(reader.next_frame().is_err());

        let (mut w, r) = pair();
        let mut bytes = frame(&Hello::ours());
        bytes.extend(((MAX_FRAME + 1) as u32).to_le_bytes());
        w.write_all(&bytes).unwrap();
        let mut reader = FrameReader::new(false);
        reader.fill(r.as_raw_fd()).unwrap();
        assert!(reader.next_frame().unwrap().is_some());
        assert!(reader.next_frame().is_err());
        assert!(decode::<ToProxy>(&[200, 1, 2]).is_err());
    }

    #[test]
    fn out_queue_writes_what_the_socket_takes() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = OutQueue::default();
        let big = vec![7u8; 4 << 20];
        q.send(&ToProxy::PreloadChunk(Bytes(big.clone())));
        q.send(&ToProxy::Ping);
        let total = q.len();
        q.flush(a.as_raw_fd()).unwrap();
        assert!(!q.is_empty(), "a 4 MiB frame does not fit a socket buffer");
        let reader = std::thread::spawn(move || {
            let mut all = vec![0u8; total];
            std::io::Read::read_exact(&mut b, &mut all).unwrap();
            all
        });
        while !q.is_empty() {
            crate::poller::wait_writable(a.as_raw_fd());
            q.flush(a.as_raw_fd()).unwrap();
        }
        let all = reader.join().unwrap();
        let len = u32::from_le_bytes(all[..4].try_into().unwrap()) as usize;
        assert_eq!(
            decode::<ToProxy>(&all[4..4 + len]).unwrap(),
            ToProxy::PreloadChunk(Bytes(big))
        );
    }

    #[test]
    fn ssh_connection_is_parsed() {
        let (c, s) = parse_ssh_connection("10.77.0.254 51234 10.77.0.3 22");
        assert_eq!(c, Some("10.77.0.254".parse().unwrap()));
        assert_eq!(s, Some("10.77.0.3".parse().unwrap()));
        assert_eq!(parse_ssh_connection(""), (None, None));
    }
}
