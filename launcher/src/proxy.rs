//! `pirun --proxy`: the per-host proxy of a multi-host job.
//!
//! The launcher starts one proxy on every remote host (`ssh HOST pirun --proxy`) and
//! talks to it over the proxy's stdin and stdout in the protocol of [`crate::wire`]. The
//! proxy decides nothing; it is a [`LocalHost`] (the same spawning and supervision code a
//! one-host job uses: launch contract, `PDEATHSIG`, process groups, the guard, line
//! buffering) with a relay in front:
//!
//! 1. it sends its hello and the host's facts, then waits for the job;
//! 2. it checks the program before anything starts — found, executable, built for this
//!    CPU (ELF header), or writes a preloaded copy into a fresh temporary directory and
//!    verifies its SHA-256 — chooses the address the ranks bind (`--iface`, else the
//!    address the launcher reached this host by, from `SSH_CONNECTION`), and answers
//!    `Prepared` or `Failed`;
//! 3. on `Start` it spawns its ranks and relays their control messages, output lines and
//!    exits, and the launcher's peer table, exit notices, signals and stdin;
//! 4. on `Finish` it kills what is left of the ranks' groups, drains their output,
//!    removes the temporary directory and says `Done`.
//!
//! If its stdin reaches end of file or fails (the launcher or ssh is gone), or the
//! launcher is silent for [`SILENCE_LIMIT`] (a cut link that sshd does not notice), or
//! the proxy is sent `SIGTERM`/`SIGINT`/`SIGHUP`, it kills its ranks at once and exits:
//! no orphans on any host.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pirun::contract::ControlMsg;
use sha2::{Digest, Sha256};

use crate::error::{exit_code, LaunchError};
use crate::host::{HostEvent, HostLaunch, HostToken, LocalHost, OutputMode};
use crate::output::{OutputSink, Stream};
use crate::poller::{Poller, READ, WRITE};
use crate::signals::{self, Signals};
use crate::wire::{
    self, Bytes, FrameReader, FromProxy, Hello, HostFacts, JobSpec, OutQueue, ReadState, ToProxy,
    WireOutput, HEARTBEAT, PROTOCOL, SILENCE_LIMIT,
};

/// Output queued for the launcher above which the ranks' pipes are no longer read.
const UPLINK_LIMIT: usize = 4 << 20;
/// How long to keep reading output after `Finish` (as the one-host launcher does).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// How long the last messages may take to reach the launcher before the proxy exits.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Runs the proxy on stdin/stdout; returns the process exit code.
pub fn main() -> i32 {
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pirun --proxy: cannot set up signal handling: {e}");
            return 1;
        }
    };
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        if let Err(e) = wire::set_nonblocking(fd) {
            eprintln!("pirun --proxy: cannot configure fd {fd}: {e}");
            return 1;
        }
    }
    let now = Instant::now();
    let mut proxy = Proxy {
        signals,
        input: FrameReader::new(false),
        uplink: OutQueue::default(),
        stage: Stage::Hello,
        spec: None,
        launch: None,
        host: None,
        tasks: None,
        preload: None,
        scratch_dir: None,
        last_heard: now,
        next_ping: now + HEARTBEAT,
        stdin_waiting: false,
        stdin_closed_sent: false,
        drain_until: None,
    };
    proxy.run()
}

/// Where the proxy is in the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the launcher's hello.
    Hello,
    /// Waiting for the job.
    Job,
    /// Receiving the preloaded program.
    Receiving,
    /// Program checked; waiting for `Start`.
    Prepared,
    /// Ranks started.
    Running,
    /// `Finish` received: draining output.
    Finishing,
}

/// A preloaded program being written.
struct Preload {
    file: File,
    path: PathBuf,
    remaining: u64,
    hasher: Sha256,
    expected: [u8; 32],
}

/// Why the proxy stops.
enum Exit {
    /// Cleanly, after `Done`.
    Done,
    /// With a `Failed` report to the launcher.
    Failed { message: String, code: i32 },
    /// The launcher is gone (or the proxy was told to die): kill, clean up, exit.
    Abandon(String),
}

struct Proxy {
    signals: Signals,
    input: FrameReader,
    uplink: OutQueue,
    stage: Stage,
    spec: Option<JobSpec>,
    launch: Option<HostLaunch>,
    host: Option<LocalHost>,
    /// A job array's tasks (instead of ranks), see [`crate::array`].
    tasks: Option<crate::array::TaskRunner>,
    preload: Option<Preload>,
    scratch_dir: Option<PathBuf>,
    last_heard: Instant,
    next_ping: Instant,
    stdin_waiting: bool,
    stdin_closed_sent: bool,
    drain_until: Option<Instant>,
}

/// The proxy's output sink: whole lines go to the launcher as `Output` messages.
struct Uplink<'a>(&'a mut OutQueue);

impl OutputSink for Uplink<'_> {
    fn write_lines(&mut self, rank: u32, stream: Stream, lines: &[u8]) {
        self.0.send(&FromProxy::Output {
            rank,
            stderr: stream == Stream::Stderr,
            lines: Bytes(lines.to_vec()),
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Launcher,
    Uplink,
    Host(HostToken),
    Task(crate::array::TaskToken),
}

impl Proxy {
    fn run(&mut self) -> i32 {
        self.uplink.send(&Hello::ours());
        self.uplink.send(&FromProxy::Facts(facts()));
        let exit = self.event_loop();
        self.end(exit)
    }

    fn event_loop(&mut self) -> Exit {
        let mut poller = Poller::default();
        let mut ready = Vec::new();
        let mut events = Vec::new();
        loop {
            let task_tick = self
                .tasks
                .as_mut()
                .and_then(|t| crate::array::proxy_turn(t, &mut self.uplink));
            if let Err(e) = self.uplink.flush(libc::STDOUT_FILENO) {
                return Exit::Abandon(format!("cannot write to the launcher: {e}"));
            }
            let now = Instant::now();
            if now >= self.next_ping {
                self.uplink.send(&FromProxy::Ping);
                self.next_ping = now + HEARTBEAT;
                continue;
            }
            if now.duration_since(self.last_heard) > SILENCE_LIMIT {
                return Exit::Abandon(format!(
                    "no word from the launcher for {} s",
                    SILENCE_LIMIT.as_secs()
                ));
            }
            if self.stage == Stage::Finishing {
                let drained = self.host.as_ref().is_none_or(|h| !h.output_open());
                if drained || self.drain_until.is_some_and(|t| now >= t) {
                    return Exit::Done;
                }
            }
            self.stdin_flow();

            poller.clear();
            poller.add(self.signals.as_raw_fd(), READ, Token::Signals);
            poller.add(libc::STDIN_FILENO, READ, Token::Launcher);
            if !self.uplink.is_empty() {
                poller.add(libc::STDOUT_FILENO, WRITE, Token::Uplink);
            }
            if let Some(host) = &mut self.host {
                host.set_output_paused(self.uplink.len() > UPLINK_LIMIT);
                host.interest(&mut |fd, ev, t| poller.add(fd, ev, Token::Host(t)));
            }
            if let Some(tasks) = &mut self.tasks {
                tasks.set_output_paused(self.uplink.len() > UPLINK_LIMIT);
                tasks.interest(&mut |fd, ev, t| poller.add(fd, ev, Token::Task(t)));
            }
            let deadline = [
                Some(self.next_ping),
                Some(self.last_heard + SILENCE_LIMIT),
                self.drain_until,
                task_tick,
            ]
            .into_iter()
            .flatten()
            .min()
            .map(|d| d.saturating_duration_since(now));
            if let Err(e) = poller.wait(deadline) {
                return Exit::Abandon(format!("poll failed: {e}"));
            }
            ready.clear();
            ready.extend(poller.ready());
            for &(token, revents) in &ready {
                let step = match token {
                    Token::Signals => self.on_signals(&mut events),
                    Token::Launcher => self.on_launcher(),
                    Token::Uplink => Ok(()),
                    Token::Host(t) => {
                        if let Some(host) = &mut self.host {
                            host.handle(t, revents, &mut Uplink(&mut self.uplink), &mut events);
                        }
                        Ok(())
                    }
                    Token::Task(t) => {
                        if let Some(tasks) = &mut self.tasks {
                            tasks.handle(t);
                        }
                        Ok(())
                    }
                };
                if let Err(exit) = step {
                    return exit;
                }
            }
            for event in events.drain(..) {
                relay(&mut self.uplink, event);
            }
        }
    }

    /// Tells the launcher when the stdin bytes it sent are written, or stdin is closed.
    fn stdin_flow(&mut self) {
        let Some(host) = &self.host else { return };
        if self.stdin_waiting && (host.wants_stdin() || !host.has_stdin()) {
            self.stdin_waiting = false;
            if host.has_stdin() {
                self.uplink.send(&FromProxy::StdinReady);
            }
        }
        let owns_stdin = self.spec.as_ref().is_some_and(|s| s.stdin_rank.is_some());
        if owns_stdin && !host.has_stdin() && !self.stdin_closed_sent {
            self.stdin_closed_sent = true;
            self.uplink.send(&FromProxy::StdinClosed);
        }
    }

    fn on_signals(&mut self, events: &mut Vec<HostEvent>) -> Result<(), Exit> {
        let received = self
            .signals
            .drain()
            .map_err(|e| Exit::Abandon(format!("cannot read the signalfd: {e}")))?;
        for sig in received {
            if sig == libc::SIGCHLD {
                if let Some(host) = &mut self.host {
                    host.reap(&mut Uplink(&mut self.uplink), events);
                }
                if let Some(tasks) = &mut self.tasks {
                    tasks.reap();
                }
            } else {
                let host = self.spec.as_ref().map_or("?", |s| s.host.as_str());
                return Err(Exit::Failed {
                    message: format!(
                        "the pirun proxy on {host} received {}; its ranks were killed",
                        signals::name(sig)
                    ),
                    code: exit_code::SIGNAL_BASE + sig,
                });
            }
        }
        Ok(())
    }

    fn on_launcher(&mut self) -> Result<(), Exit> {
        let before = self.input.total_read();
        let state = self
            .input
            .fill(libc::STDIN_FILENO)
            .map_err(|e| Exit::Abandon(format!("cannot read from the launcher: {e}")))?;
        if self.input.total_read() > before {
            self.last_heard = Instant::now();
        }
        loop {
            let body = match self.input.next_frame() {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => {
                    return Err(Exit::Failed {
                        message: format!("the pirun proxy got a malformed message: {e}"),
                        code: exit_code::LAUNCH_FAILED,
                    })
                }
            };
            self.last_heard = Instant::now();
            self.on_frame(&body)?;
        }
        if state == ReadState::Closed {
            return Err(Exit::Abandon("the launcher closed the connection".into()));
        }
        Ok(())
    }

    fn on_frame(&mut self, body: &[u8]) -> Result<(), Exit> {
        let malformed = |e: io::Error| Exit::Failed {
            message: format!("the pirun proxy got a malformed message: {e}"),
            code: exit_code::LAUNCH_FAILED,
        };
        if self.stage == Stage::Hello {
            let hello: Hello = wire::decode(body).map_err(malformed)?;
            if hello.protocol != PROTOCOL {
                return Err(Exit::Failed {
                    message: format!(
                        "pirun {} here speaks launcher protocol {PROTOCOL}, the launcher \
                         (pirun {}) speaks {}; install the same pirun version on every host",
                        env!("CARGO_PKG_VERSION"),
                        hello.version,
                        hello.protocol
                    ),
                    code: exit_code::LAUNCH_FAILED,
                });
            }
            self.stage = Stage::Job;
            return Ok(());
        }
        let msg: ToProxy = wire::decode(body).map_err(malformed)?;
        match (self.stage, msg) {
            (_, ToProxy::Ping) => {}
            (_, ToProxy::Finish) => self.finish(),
            (Stage::Job, ToProxy::Job(spec)) => self.on_job(*spec)?,
            (Stage::Receiving, ToProxy::PreloadChunk(chunk)) => self.on_chunk(&chunk.0)?,
            (Stage::Prepared, ToProxy::Start) => self.start()?,
            (Stage::Running | Stage::Finishing, msg) => self.on_running(msg),
            (stage, msg) => {
                return Err(Exit::Failed {
                    message: format!("the pirun proxy got {} while {stage:?}", describe(&msg)),
                    code: exit_code::LAUNCH_FAILED,
                })
            }
        }
        Ok(())
    }

    fn on_running(&mut self, msg: ToProxy) {
        if let Some(tasks) = &mut self.tasks {
            return crate::array::proxy_order(tasks, msg);
        }
        let Some(host) = &mut self.host else { return };
        match msg {
            ToProxy::Peers(peers) => host.send_all(&ControlMsg::Peers { peers }),
            ToProxy::PeerExited { rank, how } => {
                host.send_all(&ControlMsg::PeerExited { rank, how })
            }
            ToProxy::Signal(sig) => host.signal(sig),
            ToProxy::Stdin(data) => {
                host.feed_stdin(&data.0);
                self.stdin_waiting = true;
            }
            ToProxy::StdinEnd => host.end_stdin(),
            ToProxy::CloseControl(rank) => host.close_control(rank),
            other => eprintln!(
                "pirun --proxy: ignoring an unexpected {} from the launcher",
                describe(&other)
            ),
        }
    }

    fn on_job(&mut self, spec: JobSpec) -> Result<(), Exit> {
        let preload = spec.preload.clone();
        self.spec = Some(spec);
        let Some(pre) = preload else {
            return self.prepare(None);
        };
        let failed = |what: &str, e: io::Error| Exit::Failed {
            message: format!("--preload-binary: cannot {what}: {e}"),
            code: exit_code::LAUNCH_FAILED,
        };
        let dir = make_temp_dir().map_err(|e| failed("create a temporary directory", e))?;
        self.scratch_dir = Some(dir.clone());
        let name = Path::new(&pre.name)
            .file_name()
            .map_or_else(|| OsString::from("program"), OsStr::to_os_string);
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .map_err(|e| failed(&format!("create {}", path.display()), e))?;
        self.preload = Some(Preload {
            file,
            path,
            remaining: pre.len,
            hasher: Sha256::new(),
            expected: pre.sha256,
        });
        self.stage = Stage::Receiving;
        if pre.len == 0 {
            self.on_chunk(&[])?;
        }
        Ok(())
    }

    fn on_chunk(&mut self, chunk: &[u8]) -> Result<(), Exit> {
        let Some(p) = &mut self.preload else {
            return Ok(());
        };
        let failed = |message: String| Exit::Failed {
            message: format!("--preload-binary: {message}"),
            code: exit_code::LAUNCH_FAILED,
        };
        if chunk.len() as u64 > p.remaining {
            return Err(failed(format!(
                "received more bytes than announced for {}",
                p.path.display()
            )));
        }
        p.file
            .write_all(chunk)
            .map_err(|e| failed(format!("cannot write {}: {e}", p.path.display())))?;
        p.hasher.update(chunk);
        p.remaining -= chunk.len() as u64;
        if p.remaining > 0 {
            return Ok(());
        }
        let p = self.preload.take().expect("checked above");
        p.file
            .sync_all()
            .map_err(|e| failed(format!("cannot write {}: {e}", p.path.display())))?;
        drop(p.file);
        let got: [u8; 32] = p.hasher.finalize().into();
        if got != p.expected {
            return Err(failed(format!(
                "the copy of the program received in {} has SHA-256 {}, the launcher's has {}; \
                 it was damaged on the way",
                p.path.display(),
                hex(&got),
                hex(&p.expected)
            )));
        }
        std::fs::set_permissions(&p.path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| failed(format!("cannot chmod {}: {e}", p.path.display())))?;
        self.prepare(Some(p.path))
    }

    /// Checks the program and the working directory, chooses the bind address, and
    /// answers `Prepared` (or fails).
    fn prepare(&mut self, preloaded: Option<PathBuf>) -> Result<(), Exit> {
        let spec = self.spec.as_ref().expect("job received");
        let as_failure = |e: LaunchError| Exit::Failed {
            message: e.to_string(),
            code: e.exit_code(),
        };
        let wdir = match &spec.wdir {
            Some(d) if spec.wdir_explicit => {
                let d = PathBuf::from(d.to_os());
                crate::job::check_dir(&d).map_err(as_failure)?;
                Some(d)
            }
            Some(d) => Some(PathBuf::from(d.to_os())).filter(|d| d.is_dir()),
            None => None,
        };
        let env: Vec<(OsString, OsString)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.to_os(), v.to_os()))
            .collect();
        let path_var = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("PATH"));
        let arg0 = spec.program.to_os();
        let program = match preloaded {
            Some(path) => path,
            None => crate::program::resolve_program(&arg0, wdir.as_deref(), path_var.as_deref())
                .map_err(as_failure)?,
        };
        crate::program::check_machine(&program, &arg0.to_string_lossy(), &spec.host)
            .map_err(as_failure)?;
        let output = match &spec.output {
            WireOutput::Forward => OutputMode::Forward,
            WireOutput::Files(dir) => {
                let dir = PathBuf::from(dir.to_os());
                std::fs::create_dir_all(&dir).map_err(|source| {
                    as_failure(LaunchError::OutputDir {
                        path: dir.clone(),
                        source,
                    })
                })?;
                OutputMode::Files(dir)
            }
        };
        let bind_addr = match spec.array {
            Some(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), // tasks bind nothing
            None => bind_address(spec.iface.as_deref()).map_err(|message| Exit::Failed {
                message,
                code: exit_code::LAUNCH_FAILED,
            })?,
        };
        self.uplink.send(&FromProxy::Prepared {
            program: Bytes::os(program.as_os_str()),
            bind_addr,
        });
        self.launch = Some(HostLaunch {
            host: spec.host.clone(),
            cores: cores(),
            bind_addr,
            size: spec.size,
            job_id: spec.job_id.clone(),
            secret: spec.secret,
            program,
            arg0,
            args: spec.args.iter().map(Bytes::to_os).collect(),
            env,
            wdir,
            ranks: spec.ranks.clone(),
            stdin_rank: spec.stdin_rank,
            output,
        });
        self.stage = Stage::Prepared;
        Ok(())
    }

    fn start(&mut self) -> Result<(), Exit> {
        let launch = self.launch.take().expect("prepared");
        if let Some(array) = self.spec.as_ref().and_then(|s| s.array.as_ref()) {
            let tasks = crate::array::proxy_runner(&launch, array).map_err(|e| Exit::Failed {
                message: e.to_string(),
                code: e.exit_code(),
            })?;
            self.tasks = Some(tasks);
            self.uplink.send(&FromProxy::Started { pids: Vec::new() });
            self.stage = Stage::Running;
            return Ok(());
        }
        let host = LocalHost::spawn(&launch).map_err(|e| Exit::Failed {
            message: e.to_string(),
            code: e.exit_code(),
        })?;
        self.uplink.send(&FromProxy::Started {
            pids: host.pids().collect(),
        });
        self.host = Some(host);
        self.stage = Stage::Running;
        Ok(())
    }

    /// `Finish`: every rank of the job has ended. Kill what is left of the groups and let
    /// the output drain (the loop ends when it has, or after [`DRAIN_LIMIT`]).
    fn finish(&mut self) {
        if let Some(host) = &self.host {
            host.signal(libc::SIGKILL);
        }
        if let Some(tasks) = &mut self.tasks {
            tasks.signal(libc::SIGKILL);
        }
        self.stage = Stage::Finishing;
        self.drain_until = Some(Instant::now() + DRAIN_LIMIT);
    }

    /// Ends the proxy: tells the launcher (if it is there), kills and reaps the ranks,
    /// removes the temporary directory.
    fn end(&mut self, exit: Exit) -> i32 {
        self.tasks = None; // Drop kills and reaps what is left of a job array's tasks.
        let code = match exit {
            Exit::Done => {
                if let Some(host) = &mut self.host {
                    host.close_output(&mut Uplink(&mut self.uplink));
                    host.reap_all();
                }
                self.host = None;
                self.remove_scratch();
                self.uplink.send(&FromProxy::Done);
                0
            }
            Exit::Failed { message, code } => {
                self.host = None; // Drop kills and reaps the ranks.
                self.remove_scratch();
                self.uplink.send(&FromProxy::Failed { message, code });
                1
            }
            Exit::Abandon(reason) => {
                if let Some(host) = &self.host {
                    host.signal(libc::SIGKILL);
                }
                self.host = None;
                self.remove_scratch();
                self.uplink.clear();
                let _ = writeln!(
                    io::stderr(),
                    "pirun --proxy: {reason}; killed the ranks on this host"
                );
                1
            }
        };
        self.flush_blocking();
        code
    }

    /// Writes what is queued for the launcher, waiting up to [`FLUSH_LIMIT`].
    fn flush_blocking(&mut self) {
        let deadline = Instant::now() + FLUSH_LIMIT;
        let mut poller = Poller::default();
        while !self.uplink.is_empty() && Instant::now() < deadline {
            if self.uplink.flush(libc::STDOUT_FILENO).is_err() {
                return;
            }
            poller.clear();
            poller.add(libc::STDOUT_FILENO, WRITE, ());
            let _ = poller.wait(Some(deadline.saturating_duration_since(Instant::now())));
        }
    }

    fn remove_scratch(&mut self) {
        self.preload = None;
        if let Some(dir) = self.scratch_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.remove_scratch();
    }
}

/// Passes one event of the local ranks to the launcher.
fn relay(uplink: &mut OutQueue, event: HostEvent) {
    let msg = match event {
        HostEvent::Control { rank, msg } => FromProxy::Control { rank, msg },
        HostEvent::ControlBroken { rank, reason } => FromProxy::ControlBroken { rank, reason },
        HostEvent::Exited { rank, pid, how } => FromProxy::Exited { rank, pid, how },
        HostEvent::Started { .. }
        | HostEvent::Failed { .. }
        | HostEvent::Lost { .. }
        | HostEvent::Tasks(_) => return,
    };
    uplink.send(&msg);
}

/// This host's facts for the launcher.
fn facts() -> HostFacts {
    let (ssh_client, ssh_server) = std::env::var("SSH_CONNECTION")
        .map(|v| wire::parse_ssh_connection(&v))
        .unwrap_or((None, None));
    HostFacts {
        hostname: crate::alloc::hostname().unwrap_or_else(|_| "?".into()),
        cores: cores() as u32,
        arch: crate::elf::host_machine(),
        ssh_client,
        ssh_server,
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The address this host's ranks bind: `--iface`, else the address the launcher reached
/// this host by (`SSH_CONNECTION`), else the first ordinary interface address.
fn bind_address(iface: Option<&str>) -> Result<IpAddr, String> {
    let addrs =
        crate::iface::addresses().map_err(|e| format!("cannot list this host's addresses: {e}"))?;
    if let Some(spec) = iface {
        return crate::iface::select(spec, &addrs).map_err(|e| format!("--iface {spec}: {e}"));
    }
    let (_, server) = std::env::var("SSH_CONNECTION")
        .map(|v| wire::parse_ssh_connection(&v))
        .unwrap_or((None, None));
    if let Some(addr) = server {
        if crate::iface::is_local(addr, &addrs) || !crate::iface::is_routable(addr) {
            return Ok(addr);
        }
    }
    crate::iface::fallback(&addrs).ok_or_else(|| {
        "cannot tell which address the ranks should use (no SSH_CONNECTION and no ordinary \
         interface address); pass --iface NAME|CIDR"
            .to_string()
    })
}

/// A fresh private directory under `$TMPDIR` (or `/tmp`).
fn make_temp_dir() -> io::Result<PathBuf> {
    let template = std::env::temp_dir().join("pirun-preload-XXXXXX");
    let mut bytes = template.as_os_str().as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: a writable NUL-terminated template ending in XXXXXX, as mkdtemp requires.
    let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(
        <OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short name of a launcher message for error reports.
fn describe(msg: &ToProxy) -> &'static str {
    match msg {
        ToProxy::Job(_) => "Job",
        ToProxy::PreloadChunk(_) => "PreloadChunk",
        ToProxy::Start => "Start",
        ToProxy::Peers(_) => "Peers",
        ToProxy::PeerExited { .. } => "PeerExited",
        ToProxy::Signal(_) => "Signal",
        ToProxy::Stdin(_) => "Stdin",
        ToProxy::StdinEnd => "StdinEnd",
        ToProxy::CloseControl(_) => "CloseControl",
        ToProxy::Ping => "Ping",
        ToProxy::Finish => "Finish",
        ToProxy::Tasks(_) => "Tasks",
    }
}
