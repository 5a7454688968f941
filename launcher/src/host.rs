//! Spawning and supervising the ranks of one host, and the [`Host`] abstraction through
//! which the job's policy sees every host of a job.
//!
//! [`Host`] is what [`crate::job`] drives: the ranks forked on this machine
//! ([`LocalHost`]) or those a proxy runs on another machine ([`crate::remote::RemoteHost`]).
//! Both report the same [`HostEvent`]s and take the same orders (peer table, exit
//! notices, signals, stdin), so the policy does not care where a rank runs.
//!
//! [`LocalHost`] starts each rank with the launch contract (environment, control
//! socketpair, `Welcome`), forwards its output line by line to an [`OutputSink`], feeds
//! stdin to the rank that owns it, turns control frames and exits into [`HostEvent`]s,
//! and signals ranks on request.
//! It decides nothing: the job policy (fence, ending the job, exit code) lives in
//! [`crate::job`]. The per-host proxy (`pirun --proxy`, [`crate::proxy`]) runs a
//! `LocalHost` on a remote machine and relays its events to the launcher.
//!
//! Process model: every rank is the leader of its own process group, so that a signal
//! sent to the rank also reaches the children of a shell-script rank, and so that a
//! Ctrl-C on the terminal reaches only `pirun`, which forwards it (see `job`). Each rank
//! has `PR_SET_PDEATHSIG = SIGKILL`, so it dies with `pirun` even if `pirun` is
//! SIGKILLed, and the [`Guard`] then kills what is left of the ranks' groups. Exited ranks are detected with `waitid(WNOWAIT)` and left as zombies until
//! the job ends: a zombie keeps its pid and process-group id reserved, so signalling a
//! rank's group can never hit an unrelated process that reused the number.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use pirun::contract::{self, ControlMsg, ExitKind, PeerInfo, Secret};

use crate::control::{ControlChannel, ReadState};
use crate::error::LaunchError;
use crate::guard::Guard;
use crate::output::{LineBuffer, OutputSink, Stream};
use crate::poller::{READ, WRITE};
use crate::signals::kill_group;

/// Where the ranks' stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputMode {
    /// Through pipes to the [`OutputSink`], line by line.
    Forward,
    /// Straight into `DIR/rank.N.out` and `DIR/rank.N.err` (the directory must exist).
    Files(PathBuf),
}

/// Everything needed to start the ranks of one host.
#[derive(Debug, Clone)]
pub struct HostLaunch {
    /// This host's name (`PIRUN_HOST`).
    pub host: String,
    /// Cores on this host (`PIRUN_HOST_CORES`).
    pub cores: usize,
    /// Address the ranks bind (`PIRUN_BIND_ADDR`).
    pub bind_addr: IpAddr,
    /// Ranks in the whole job (`PIRUN_SIZE`).
    pub size: u32,
    /// The job's identifier (`PIRUN_JOB_ID`).
    pub job_id: String,
    /// The job secret, sent in `Welcome`.
    pub secret: Secret,
    /// The program, resolved to a path (see [`crate::program::resolve_program`]).
    pub program: PathBuf,
    /// `argv[0]` for the ranks: the program as the user typed it.
    pub arg0: OsString,
    /// The program's arguments.
    pub args: Vec<OsString>,
    /// Extra environment (`-x`), set on top of the inherited one.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory of the ranks, if not the launcher's.
    pub wdir: Option<PathBuf>,
    /// `(rank, local rank)` of each rank to start here.
    pub ranks: Vec<(u32, u32)>,
    /// The rank whose stdin is fed from the launcher (the others get `/dev/null`).
    pub stdin_rank: Option<u32>,
    /// Where output goes.
    pub output: OutputMode,
}

/// Something that happened on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// A rank sent a control message.
    Control {
        /// The rank whose channel carried it.
        rank: u32,
        /// The message.
        msg: ControlMsg,
    },
    /// A rank's control channel broke (malformed frame or I/O error) and was closed.
    ControlBroken {
        /// The rank.
        rank: u32,
        /// What went wrong.
        reason: String,
    },
    /// A rank ended.
    Exited {
        /// The rank.
        rank: u32,
        /// Its process id.
        pid: u32,
        /// How it ended.
        how: ExitKind,
    },
    /// A remote host's ranks were started (for `-v`; local ranks are known at once).
    Started {
        /// `(rank, pid)` of each.
        pids: Vec<(u32, u32)>,
    },
    /// A remote host could not start its ranks (its proxy reported why and exited).
    Failed {
        /// What went wrong, naming the rank or file.
        message: String,
        /// pirun's exit code for it.
        code: i32,
    },
    /// The connection to a remote host is gone (link cut, ssh died, proxy silent): its
    /// ranks are out of reach and count as ended.
    Lost {
        /// What was observed.
        reason: String,
        /// The ranks that were still running there.
        ranks: Vec<u32>,
    },
    /// What a remote host's array tasks did (`pirun --array`, see [`crate::array`]).
    Tasks(Vec<crate::array::TaskEvent>),
}

/// One host of a job, as the job's policy drives it. Implemented by [`LocalHost`] (ranks
/// forked here) and [`crate::remote::RemoteHost`] (ranks run by a proxy elsewhere).
///
/// The event loop asks each host for the descriptors to watch ([`Host::interest`]),
/// hands readiness back ([`Host::handle`]) and collects [`HostEvent`]s; everything else
/// is an order from the policy.
pub trait Host {
    /// The host's name, as the job calls it.
    fn name(&self) -> &str;
    /// Calls `add` for every descriptor to watch now, with the events to watch for.
    fn interest(&self, add: &mut dyn FnMut(RawFd, i16, HostToken));
    /// Handles readiness of a descriptor registered through [`Host::interest`].
    fn handle(
        &mut self,
        token: HostToken,
        revents: i16,
        sink: &mut dyn OutputSink,
        events: &mut Vec<HostEvent>,
    );
    /// A child process ended (`SIGCHLD`): look for what ended.
    fn reap(&mut self, sink: &mut dyn OutputSink, events: &mut Vec<HostEvent>);
    /// Time-driven work (heartbeats); returns when it wants to be called again.
    fn tick(&mut self, now: Instant, events: &mut Vec<HostEvent>) -> Option<Instant>;
    /// Hands every running rank the peer table (the fence is complete).
    fn send_peers(&mut self, peers: &[PeerInfo]);
    /// Tells every running rank that `rank` has ended.
    fn send_peer_exited(&mut self, rank: u32, how: ExitKind);
    /// Closes `rank`'s control channel (after a protocol violation).
    fn close_control(&mut self, rank: u32);
    /// Whether every rank of this host has ended (or is out of reach).
    fn all_exited(&self) -> bool;
    /// Whether output may still arrive.
    fn output_open(&self) -> bool;
    /// Sends `sig` to every rank's process group.
    fn signal(&mut self, sig: i32);
    /// Whether the rank owning stdin can take more input now.
    fn wants_stdin(&self) -> bool;
    /// Whether the rank owning stdin (if it runs here) still has its stdin open.
    fn has_stdin(&self) -> bool;
    /// Bytes read from the launcher's stdin, for the rank owning it.
    fn feed_stdin(&mut self, data: &[u8]);
    /// The launcher's stdin reached end of file.
    fn end_stdin(&mut self);
    /// Every rank of the job has ended: kill what is left of this host's process groups
    /// and let the remaining output drain.
    fn finish(&mut self);
    /// Stops forwarding output (what is buffered is forwarded first).
    fn close_output(&mut self, sink: &mut dyn OutputSink);
    /// Collects what is left (zombies, the ssh process). Call once at the very end.
    fn reap_all(&mut self);
}

/// Identifies one descriptor of a host in the poll set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostToken {
    pub(crate) index: usize,
    pub(crate) kind: FdKind,
}

/// What a [`HostToken`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    Stdout,
    Stderr,
    Stdin,
    Control,
    /// A remote host: the proxy's stdin (our writes).
    ProxyIn,
    /// A remote host: the proxy's stdout (protocol frames).
    ProxyOut,
    /// A remote host: the launch agent's stderr (ssh diagnostics).
    ProxyErr,
}

/// A read end of a child's stdout or stderr, cut into whole lines (ranks' output, array
/// tasks' stderr).
#[derive(Debug)]
pub(crate) struct OutPipe {
    file: File,
    lines: LineBuffer,
}

impl OutPipe {
    /// Wraps the read end of a pipe, switching it to non-blocking mode.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Self> {
        Ok(OutPipe {
            file: nonblocking(fd)?,
            lines: LineBuffer::default(),
        })
    }

    /// The descriptor to poll.
    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Reads one chunk, or (`drain`) until the pipe is empty for now, and calls `emit` with
    /// every run of whole lines. Returns `false` at end of file (or on an error), after
    /// emitting the last partial line completed with a newline.
    pub(crate) fn read(
        &mut self,
        scratch: &mut [u8],
        drain: bool,
        mut emit: impl FnMut(&[u8]),
    ) -> bool {
        let lines = &mut self.lines;
        let open = read_pipe(&mut self.file, scratch, drain, |data| {
            lines.push(data, &mut emit)
        });
        if !open {
            self.lines.finish(emit);
        }
        open
    }

    /// Gives up on the pipe: emits a last partial line (completed with a newline).
    pub(crate) fn close(mut self, emit: impl FnMut(&[u8])) {
        self.lines.finish(emit);
    }
}

/// Reads from a non-blocking pipe: one chunk, or (`drain`) until it would block, calling
/// `on_data` with each chunk read. Returns `false` at end of file or on an error.
pub(crate) fn read_pipe(
    file: &mut File,
    scratch: &mut [u8],
    drain: bool,
    mut on_data: impl FnMut(&[u8]),
) -> bool {
    loop {
        match file.read(scratch) {
            Ok(0) => return false,
            Ok(n) => {
                on_data(&scratch[..n]);
                if !drain {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// The write end of a rank's stdin.
#[derive(Debug)]
struct InPipe {
    file: File,
    pending: Vec<u8>,
    close_when_flushed: bool,
}

/// One rank process and its descriptors.
#[derive(Debug)]
struct RankProc {
    rank: u32,
    pid: i32,
    control: Option<ControlChannel>,
    stdout: Option<OutPipe>,
    stderr: Option<OutPipe>,
    stdin: Option<InPipe>,
    exit: Option<ExitKind>,
    reaped: bool,
}

/// The ranks of one host, started and supervised.
#[derive(Debug)]
pub struct LocalHost {
    name: String,
    ranks: Vec<RankProc>,
    scratch: Vec<u8>,
    guard: Guard,
    /// Output pipes are not watched while set (the proxy's uplink is backed up).
    output_paused: bool,
}

/// Bytes read from a pipe per turn of the event loop.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

impl LocalHost {
    /// Starts every rank of `launch`. If one cannot be started, those already started are
    /// killed and the error names the rank.
    pub fn spawn(launch: &HostLaunch) -> Result<Self, LaunchError> {
        let guard = Guard::start()
            .map_err(|e| LaunchError::system("cannot start the guard process (fork failed)", e))?;
        let mut host = LocalHost {
            name: launch.host.clone(),
            ranks: Vec::with_capacity(launch.ranks.len()),
            scratch: vec![0; READ_CHUNK],
            guard,
            output_paused: false,
        };
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let local_size = launch.ranks.len().to_string();
        for &(rank, local_rank) in &launch.ranks {
            // On error `host` is dropped, which kills and reaps the ranks started so far.
            let proc = spawn_rank(launch, rank, local_rank, &local_size, parent)?;
            host.guard.watch(proc.pid);
            host.ranks.push(proc);
        }
        Ok(host)
    }

    /// This host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `(rank, pid)` of every rank started here.
    pub fn pids(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.ranks.iter().map(|r| (r.rank, r.pid as u32))
    }

    /// While `paused`, output pipes are not watched (the ranks block once a pipe is
    /// full): the proxy uses this when its link to the launcher is backed up.
    pub fn set_output_paused(&mut self, paused: bool) {
        self.output_paused = paused;
    }

    /// Calls `add` for every descriptor to watch now, with the events to watch for.
    pub fn interest(&self, add: &mut dyn FnMut(RawFd, i16, HostToken)) {
        for (index, r) in self.ranks.iter().enumerate() {
            let token = |kind| HostToken { index, kind };
            if !self.output_paused {
                if let Some(p) = &r.stdout {
                    add(p.file.as_raw_fd(), READ, token(FdKind::Stdout));
                }
                if let Some(p) = &r.stderr {
                    add(p.file.as_raw_fd(), READ, token(FdKind::Stderr));
                }
            }
            if let Some(p) = &r.stdin {
                if !p.pending.is_empty() {
                    add(p.file.as_raw_fd(), WRITE, token(FdKind::Stdin));
                }
            }
            if let Some(c) = &r.control {
                let events = if c.wants_write() { READ | WRITE } else { READ };
                add(c.as_raw_fd(), events, token(FdKind::Control));
            }
        }
    }

    /// Handles readiness of a descriptor registered through [`LocalHost::interest`].
    pub fn handle(
        &mut self,
        token: HostToken,
        revents: i16,
        sink: &mut dyn OutputSink,
        events: &mut Vec<HostEvent>,
    ) {
        match token.kind {
            FdKind::Stdout => self.read_output(token.index, Stream::Stdout, false, sink),
            FdKind::Stderr => self.read_output(token.index, Stream::Stderr, false, sink),
            FdKind::Stdin => self.flush_stdin(token.index),
            FdKind::Control => {
                if revents & WRITE != 0 {
                    self.flush_control(token.index);
                }
                if revents & !WRITE != 0 {
                    self.read_control(token.index, events);
                }
            }
            FdKind::ProxyIn | FdKind::ProxyOut | FdKind::ProxyErr => {}
        }
    }

    /// Looks for ranks that have ended (call on `SIGCHLD`). For each, reads what is left
    /// of its control channel and output first, so that a rank's last words (its panic
    /// report, its last lines) come before its [`HostEvent::Exited`].
    pub fn reap(&mut self, sink: &mut dyn OutputSink, events: &mut Vec<HostEvent>) {
        for index in 0..self.ranks.len() {
            let r = &self.ranks[index];
            if r.exit.is_some() {
                continue;
            }
            let Some(how) = peek_exit(r.pid) else {
                continue;
            };
            self.read_control(index, events);
            self.read_output(index, Stream::Stdout, true, sink);
            self.read_output(index, Stream::Stderr, true, sink);
            let r = &mut self.ranks[index];
            r.control = None;
            r.stdin = None;
            r.exit = Some(how);
            events.push(HostEvent::Exited {
                rank: r.rank,
                pid: r.pid as u32,
                how,
            });
        }
    }

    /// Queues `msg` on the control channel of every running rank.
    pub fn send_all(&mut self, msg: &ControlMsg) {
        for index in 0..self.ranks.len() {
            if self.ranks[index].exit.is_none() {
                if let Some(c) = &mut self.ranks[index].control {
                    c.queue(msg);
                    self.flush_control(index);
                }
            }
        }
    }

    /// Closes `rank`'s control channel (after a protocol violation).
    pub fn close_control(&mut self, rank: u32) {
        if let Some(index) = self.index_of(rank) {
            self.ranks[index].control = None;
        }
    }

    /// Whether every rank has ended.
    pub fn all_exited(&self) -> bool {
        self.ranks.iter().all(|r| r.exit.is_some())
    }

    /// Whether some output pipe is still open (a rank or one of its children may write).
    pub fn output_open(&self) -> bool {
        self.ranks
            .iter()
            .any(|r| r.stdout.is_some() || r.stderr.is_some())
    }

    /// Sends `sig` to the process group of every rank not yet reaped: the running ones and
    /// whatever children ended ones left behind.
    pub fn signal(&self, sig: i32) {
        for r in self.ranks.iter().filter(|r| !r.reaped) {
            kill_group(r.pid, r.pid, sig);
        }
    }

    /// Whether the rank owning stdin can take more input now.
    pub fn wants_stdin(&self) -> bool {
        self.ranks.iter().any(|r| {
            r.stdin
                .as_ref()
                .is_some_and(|p| p.pending.is_empty() && !p.close_when_flushed)
        })
    }

    /// Whether some rank still has an open stdin pipe.
    pub fn has_stdin(&self) -> bool {
        self.ranks.iter().any(|r| r.stdin.is_some())
    }

    /// Passes bytes read from the launcher's stdin to the rank owning stdin.
    pub fn feed_stdin(&mut self, data: &[u8]) {
        if let Some(index) = self.ranks.iter().position(|r| r.stdin.is_some()) {
            if let Some(p) = &mut self.ranks[index].stdin {
                p.pending.extend_from_slice(data);
            }
            self.flush_stdin(index);
        }
    }

    /// The launcher's stdin reached end of file: close the rank's stdin once the bytes
    /// still queued are written.
    pub fn end_stdin(&mut self) {
        if let Some(index) = self.ranks.iter().position(|r| r.stdin.is_some()) {
            if let Some(p) = &mut self.ranks[index].stdin {
                p.close_when_flushed = true;
            }
            self.flush_stdin(index);
        }
    }

    /// Stops forwarding output: forwards what is buffered (partial lines completed) and
    /// closes the pipes. Used when the job is over but something still holds a pipe.
    pub fn close_output(&mut self, sink: &mut dyn OutputSink) {
        for r in &mut self.ranks {
            for (pipe, stream) in [
                (&mut r.stdout, Stream::Stdout),
                (&mut r.stderr, Stream::Stderr),
            ] {
                if let Some(mut p) = pipe.take() {
                    p.lines.finish(|l| sink.write_lines(r.rank, stream, l));
                }
            }
        }
    }

    /// Collects the exit status of every ended rank (frees the zombies). Call once every
    /// rank has ended and its process group was signalled for the last time.
    pub fn reap_all(&mut self) {
        // The guard must stop watching before the group ids are released.
        self.guard.disarm();
        for r in &mut self.ranks {
            if r.exit.is_some() && !r.reaped {
                wait_blocking(r.pid);
                r.reaped = true;
            }
        }
    }

    fn index_of(&self, rank: u32) -> Option<usize> {
        self.ranks.iter().position(|r| r.rank == rank)
    }

    /// Reads from one output pipe: one chunk, or (`drain`) until it is empty for now.
    fn read_output(
        &mut self,
        index: usize,
        stream: Stream,
        drain: bool,
        sink: &mut dyn OutputSink,
    ) {
        let LocalHost { ranks, scratch, .. } = self;
        let r = &mut ranks[index];
        let slot = match stream {
            Stream::Stdout => &mut r.stdout,
            Stream::Stderr => &mut r.stderr,
        };
        let Some(pipe) = slot else { return };
        let rank = r.rank;
        if !pipe.read(scratch, drain, |l| sink.write_lines(rank, stream, l)) {
            *slot = None;
        }
    }

    fn read_control(&mut self, index: usize, events: &mut Vec<HostEvent>) {
        let r = &mut self.ranks[index];
        let Some(channel) = &mut r.control else {
            return;
        };
        let mut msgs = Vec::new();
        let result = channel.read(&mut msgs);
        let rank = r.rank;
        events.extend(msgs.into_iter().map(|msg| HostEvent::Control { rank, msg }));
        match result {
            Ok(ReadState::Open) => {}
            Ok(ReadState::Closed) => r.control = None,
            Err(e) => {
                r.control = None;
                events.push(HostEvent::ControlBroken {
                    rank,
                    reason: e.to_string(),
                });
            }
        }
    }

    fn flush_control(&mut self, index: usize) {
        if let Some(c) = &mut self.ranks[index].control {
            c.flush();
        }
    }

    fn flush_stdin(&mut self, index: usize) {
        let r = &mut self.ranks[index];
        let Some(p) = &mut r.stdin else { return };
        while !p.pending.is_empty() {
            match p.file.write(&p.pending) {
                Ok(n) => {
                    p.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The rank closed its stdin: what it did not read is discarded.
                    r.stdin = None;
                    return;
                }
            }
        }
        if p.close_when_flushed {
            r.stdin = None;
        }
    }
}

impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }
    fn interest(&self, add: &mut dyn FnMut(RawFd, i16, HostToken)) {
        LocalHost::interest(self, add);
    }
    fn handle(
        &mut self,
        token: HostToken,
        revents: i16,
        sink: &mut dyn OutputSink,
        events: &mut Vec<HostEvent>,
    ) {
        LocalHost::handle(self, token, revents, sink, events);
    }
    fn reap(&mut self, sink: &mut dyn OutputSink, events: &mut Vec<HostEvent>) {
        LocalHost::reap(self, sink, events);
    }
    fn tick(&mut self, _now: Instant, _events: &mut Vec<HostEvent>) -> Option<Instant> {
        None
    }
    fn send_peers(&mut self, peers: &[PeerInfo]) {
        self.send_all(&ControlMsg::Peers {
            peers: peers.to_vec(),
        });
    }
    fn send_peer_exited(&mut self, rank: u32, how: ExitKind) {
        self.send_all(&ControlMsg::PeerExited { rank, how });
    }
    fn close_control(&mut self, rank: u32) {
        LocalHost::close_control(self, rank);
    }
    fn all_exited(&self) -> bool {
        LocalHost::all_exited(self)
    }
    fn output_open(&self) -> bool {
        LocalHost::output_open(self)
    }
    fn signal(&mut self, sig: i32) {
        LocalHost::signal(self, sig);
    }
    fn wants_stdin(&self) -> bool {
        LocalHost::wants_stdin(self)
    }
    fn has_stdin(&self) -> bool {
        LocalHost::has_stdin(self)
    }
    fn feed_stdin(&mut self, data: &[u8]) {
        LocalHost::feed_stdin(self, data);
    }
    fn end_stdin(&mut self) {
        LocalHost::end_stdin(self);
    }
    fn finish(&mut self) {
        // Whatever the ranks left behind in their process groups goes now.
        LocalHost::signal(self, libc::SIGKILL);
    }
    fn close_output(&mut self, sink: &mut dyn OutputSink) {
        LocalHost::close_output(self, sink);
    }
    fn reap_all(&mut self) {
        LocalHost::reap_all(self);
    }
}

impl Drop for LocalHost {
    /// Safety net for early returns and panics: no rank outlives its `LocalHost`.
    fn drop(&mut self) {
        for r in self.ranks.iter().filter(|r| !r.reaped) {
            kill_group(r.pid, r.pid, libc::SIGKILL);
        }
        self.guard.disarm();
        for r in self.ranks.iter_mut().filter(|r| !r.reaped) {
            wait_blocking(r.pid);
            r.reaped = true;
        }
    }
}

/// Starts one rank.
fn spawn_rank(
    launch: &HostLaunch,
    rank: u32,
    local_rank: u32,
    local_size: &str,
    parent: libc::pid_t,
) -> Result<RankProc, LaunchError> {
    let (ours, theirs) = control_socketpair().map_err(|e| {
        LaunchError::system(
            format!("cannot create the control socketpair of rank {rank}"),
            e,
        )
    })?;
    let child_fd = theirs.as_raw_fd();

    let mut cmd = Command::new(&launch.program);
    cmd.arg0(&launch.arg0)
        .args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env(contract::ENV_RANK, rank.to_string())
        .env(contract::ENV_SIZE, launch.size.to_string())
        .env(contract::ENV_LOCAL_RANK, local_rank.to_string())
        .env(contract::ENV_LOCAL_SIZE, local_size)
        .env(contract::ENV_HOST, &launch.host)
        .env(contract::ENV_HOST_CORES, launch.cores.to_string())
        .env(contract::ENV_JOB_ID, &launch.job_id)
        .env(contract::ENV_BIND_ADDR, launch.bind_addr.to_string())
        .env(contract::ENV_CONTROL_FD, child_fd.to_string());
    if let Some(dir) = &launch.wdir {
        cmd.current_dir(dir);
    }
    let feeds_stdin = launch.stdin_rank == Some(rank);
    cmd.stdin(if feeds_stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    match &launch.output {
        OutputMode::Forward => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        OutputMode::Files(dir) => {
            cmd.stdout(output_file(dir, rank, "out")?)
                .stderr(output_file(dir, rank, "err")?);
        }
    }
    supervise(&mut cmd, Some(child_fd), parent);
    let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        rank,
        program: launch.program.clone(),
        host: launch.host.clone(),
        source,
    })?;
    drop(theirs);

    let mut proc = RankProc {
        rank,
        pid: child.id() as i32,
        control: None,
        stdout: None,
        stderr: None,
        stdin: None,
        exit: None,
        reaped: false,
    };
    if let Err(e) = attach(&mut proc, &mut child, ours, launch.secret) {
        kill_group(proc.pid, proc.pid, libc::SIGKILL);
        wait_blocking(proc.pid);
        return Err(LaunchError::system(
            format!("cannot set up the pipes and control channel of rank {rank}"),
            e,
        ));
    }
    Ok(proc)
}

/// Takes the launcher's ends of a freshly spawned rank's pipes and control socket, makes
/// them non-blocking, and sends `Welcome`.
fn attach(
    proc: &mut RankProc,
    child: &mut std::process::Child,
    control: OwnedFd,
    secret: Secret,
) -> io::Result<()> {
    if let Some(s) = child.stdout.take() {
        proc.stdout = Some(OutPipe::new(s.into())?);
    }
    if let Some(s) = child.stderr.take() {
        proc.stderr = Some(OutPipe::new(s.into())?);
    }
    if let Some(s) = child.stdin.take() {
        proc.stdin = Some(InPipe {
            file: nonblocking(s.into())?,
            pending: Vec::new(),
            close_when_flushed: false,
        });
    }
    let mut channel = ControlChannel::new(UnixStream::from(control))?;
    channel.queue(&ControlMsg::Welcome { secret });
    channel.flush();
    proc.control = Some(channel);
    Ok(())
}

/// Makes `cmd` start the way every child of pirun starts (ranks and array tasks): as the
/// leader of its own process group, with the signals pirun blocks unblocked, dying with
/// `parent` (`PR_SET_PDEATHSIG`), and with `keep_fd` (a rank's control socket) surviving
/// `exec`. `parent` is `getpid()` of the process that spawns it.
pub(crate) fn supervise(cmd: &mut Command, keep_fd: Option<RawFd>, parent: libc::pid_t) {
    cmd.process_group(0);
    // SAFETY: the closure only makes async-signal-safe calls (sigprocmask, prctl,
    // getppid, fcntl, _exit) and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || child_setup(keep_fd, parent));
    }
}

/// Runs in the child between `fork` and `exec`: unblock the signals the launcher reads
/// through its signalfd (the mask survives `exec`), die with the launcher, and let the
/// control socket (only that descriptor) survive `exec`.
fn child_setup(control_fd: Option<RawFd>, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: async-signal-safe system calls only, on a descriptor this process owns.
    unsafe {
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        if libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        // The launcher may have died before prctl took effect: then nobody would kill us.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        if let Some(fd) = control_fd {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// A connected pair of Unix stream sockets, both close-on-exec: `(launcher's, rank's)`.
fn control_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair returns.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Switches a descriptor to non-blocking mode.
pub(crate) fn nonblocking(fd: OwnedFd) -> io::Result<File> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(File::from(fd))
}

/// Creates `DIR/rank.N.EXT` for a rank's output.
fn output_file(dir: &Path, rank: u32, ext: &str) -> Result<File, LaunchError> {
    let path = dir.join(format!("rank.{rank}.{ext}"));
    File::create(&path).map_err(|source| LaunchError::OutputDir { path, source })
}

/// How `pid` ended, if it has; the zombie is left in place (`WNOWAIT`).
pub(crate) fn peek_exit(pid: i32) -> Option<ExitKind> {
    loop {
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer; pid is our own child.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        // SAFETY: waitid succeeded; the fields read are set for SIGCHLD-type infos.
        let (child, status) = unsafe { (info.si_pid(), info.si_status()) };
        if child == 0 {
            return None;
        }
        return match info.si_code {
            libc::CLD_EXITED => Some(ExitKind::Code(status)),
            libc::CLD_KILLED | libc::CLD_DUMPED => Some(ExitKind::Signal(status)),
            _ => None,
        };
    }
}

/// Reaps `pid`, waiting for it if needed.
pub(crate) fn wait_blocking(pid: i32) {
    let mut status = 0;
    // SAFETY: valid out-pointer; pid is our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}
