//! Start-up: read the launch contract, authenticate to the launcher's control channel,
//! publish this rank's address, and wait for everyone else's (the fence).
//!
//! Started without `pirun`, a program is a singleton: rank 0 of 1, no sockets at all.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::comm::Communicator;
use crate::contract::{self, ControlMsg, PeerInfo};
use crate::engine::{Engine, Listeners};
use crate::error::{Error, Result};
use crate::wait::SpinPolicy;

/// Longest spin before sleeping (see `wait.rs`).
const SPIN: Duration = Duration::from_micros(200);

/// Starts pirun in this process and returns the world communicator.
///
/// Under `pirun`, this connects the process to its peers; started any other way, the
/// process is a singleton world of one rank. Call it once; dropping the last
/// communicator finalizes (says goodbye to the peers).
///
/// ```
/// let world = pirun::init()?;
/// println!("rank {} of {}", world.rank(), world.size());
/// # Ok::<(), pirun::Error>(())
/// ```
pub fn init() -> Result<Communicator> {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_err() {
        return Err(Error::Launch(
            "pirun::init() was called twice in one process".into(),
        ));
    }
    let Some(rank) = env_opt(contract::ENV_RANK)? else {
        return singleton();
    };
    let size: usize = env_req(contract::ENV_SIZE)?;
    let fd: RawFd = env_req(contract::ENV_CONTROL_FD)?;
    if rank >= size {
        return Err(Error::Launch(format!(
            "{}={rank} is not below {}={size}",
            contract::ENV_RANK,
            contract::ENV_SIZE
        )));
    }
    let local_size: usize = env_opt(contract::ENV_LOCAL_SIZE)?.unwrap_or(1);
    let local_rank: usize = env_opt(contract::ENV_LOCAL_RANK)?.unwrap_or(0);
    crate::binding::bind_self(crate::binding::Bind::from_env(), local_rank, local_size);
    let cores: usize = env_opt(contract::ENV_HOST_CORES)?.unwrap_or_else(available_cores);
    let bind_ip: IpAddr =
        env_opt(contract::ENV_BIND_ADDR)?.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let io = |what: &'static str| {
        move |source: io::Error| Error::Io {
            rank,
            what: what.into(),
            source,
        }
    };

    let mut control = control_channel(fd, rank)?;
    control
        .set_read_timeout(Some(init_timeout()))
        .map_err(io("configure the control channel"))?;
    let secret =
        match ControlMsg::read_from(&mut control).map_err(io("read the launcher's welcome"))? {
            Some(ControlMsg::Welcome { secret }) => secret,
            other => {
                return Err(Error::Launch(format!(
                    "expected the launcher's welcome on fd {fd}, got {other:?}"
                )))
            }
        };

    let listener =
        bind_listener(SocketAddr::new(bind_ip, 0)).map_err(io("bind the peer listener"))?;
    let addr = listener
        .local_addr()
        .map_err(io("read the listener address"))?;
    // Best effort: without it, ranks on this host reach this one over TCP.
    let local = match crate::config::local_channel_on()
        .then(|| crate::stream::bind_local(&secret, rank as u32, addr.port()))
    {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            eprintln!("pirun: rank {rank}: no local channel ({e}); ranks on this host use TCP");
            None
        }
        None => None,
    };
    ControlMsg::Ready {
        rank: rank as u32,
        addr,
    }
    .write_to(&mut control)
    .map_err(io("report readiness to the launcher"))?;
    let peers = await_peers(&mut control, rank, size)?;
    control
        .set_read_timeout(None)
        .map_err(io("configure the control channel"))?;
    install_panic_reporter(rank as u32, &control);

    let spin = SpinPolicy::new(local_size, cores, SPIN);
    let engine = Engine::new(
        rank as u32,
        secret,
        peers,
        Listeners {
            tcp: Some(listener),
            local,
        },
        Some(control),
        spin,
    )?;
    Ok(Communicator::world(engine))
}

/// A world of one: no launcher, no sockets.
fn singleton() -> Result<Communicator> {
    let host = hostname();
    let peers = vec![PeerInfo {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        host,
    }];
    let spin = SpinPolicy::new(1, available_cores(), SPIN);
    let engine = Engine::new(
        0,
        [0; contract::SECRET_LEN],
        peers,
        Listeners::default(),
        None,
        spin,
    )?;
    Ok(Communicator::world(engine))
}

/// Waits for the launcher's address table, failing if a rank ends first.
fn await_peers(control: &mut UnixStream, rank: usize, size: usize) -> Result<Vec<PeerInfo>> {
    loop {
        let msg = ControlMsg::read_from(control).map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                Error::Launch(format!(
                    "rank {rank}: not every rank reported ready within {:?} (PIRUN_INIT_TIMEOUT); \
                     does every rank call pirun::init()?",
                    init_timeout()
                ))
            } else {
                Error::LauncherGone {
                    rank,
                    detail: format!("waiting for the peer table: {e}"),
                }
            }
        })?;
        match msg {
            Some(ControlMsg::Peers { peers }) if peers.len() == size => return Ok(peers),
            Some(ControlMsg::Peers { peers }) => {
                return Err(Error::Launch(format!(
                    "the launcher sent {} peer addresses for a world of {size}",
                    peers.len()
                )))
            }
            Some(ControlMsg::PeerExited { rank: r, how }) => {
                return Err(Error::PeerFailed {
                    rank: r as usize,
                    host: "?".into(),
                    detail: format!("ended ({how}) before every rank had started"),
                })
            }
            Some(_) => {}
            None => {
                return Err(Error::LauncherGone {
                    rank,
                    detail: "the control channel closed during start-up".into(),
                })
            }
        }
    }
}

/// Takes ownership of the inherited control socket, checking it really is one.
fn control_channel(fd: RawFd, rank: usize) -> Result<UnixStream> {
    // SAFETY: fstat only writes into `st`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if fd < 0
        || unsafe { libc::fstat(fd, &mut st) } != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFSOCK
    {
        return Err(Error::Launch(format!(
            "{}={fd} is not an open socket in rank {rank}",
            contract::ENV_CONTROL_FD
        )));
    }
    // Children of this rank must not inherit the channel.
    // SAFETY: plain fcntl on a descriptor we checked is open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the launcher created this descriptor for us alone; we take ownership once
    // (init refuses to run twice).
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

fn init_timeout() -> Duration {
    Duration::from_secs(
        std::env::var("PIRUN_INIT_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(120),
    )
}

/// Sends the panic message and location to the launcher, which names them in its final
/// report; the default hook still prints the panic on stderr.
fn install_panic_reporter(rank: u32, control: &UnixStream) {
    let Ok(channel) = control.try_clone() else {
        return;
    };
    let channel = Arc::new(std::sync::Mutex::new(channel));
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let frame = ControlMsg::Panicked {
            rank,
            message,
            location,
        }
        .to_frame();
        if let Ok(mut c) = channel.lock() {
            write_all_retrying(&mut c, &frame);
        }
    }));
}

/// Writes a small frame on a possibly non-blocking socket, retrying briefly.
fn write_all_retrying(c: &mut UnixStream, mut buf: &[u8]) {
    for _ in 0..1000 {
        match c.write(buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if buf.is_empty() {
            return;
        }
    }
}

fn env_opt<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::Launch(format!("{name}={v:?} is not valid"))),
    }
}

fn env_req<T: std::str::FromStr>(name: &str) -> Result<T> {
    env_opt(name)?.ok_or_else(|| Error::Launch(format!("{name} is not set")))
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// This machine's host name.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
