//! The launcher's side of a remote host: starting its proxy over the launch agent
//! (`ssh`), the [`Host`] implementation that relays the job's orders to it and its
//! events back, the preparation phase every host passes before any rank starts, and the
//! errors of multi-host jobs ([`HostError`]).
//!
//! A proxy is started as
//! `<agent> -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=2
//! -o ServerAliveCountMax=3 HOST <proxy-path> --proxy` (the `-o` options only when the
//! agent is ssh), in a process group of its own so that a Ctrl-C on the terminal reaches
//! `pirun` alone, which forwards it. The launcher writes its hello and the job at once,
//! without waiting for the proxy's hello, so a host is prepared after one round trip
//! plus the ssh handshake; all hosts connect in parallel.
//!
//! A host is lost when its proxy's stdout reaches end of file (or the agent exits)
//! without `Done`, or when it is silent for [`wire::SILENCE_LIMIT`]. ssh's
//! `ServerAliveInterval=2`/`ServerAliveCountMax=3` ends the connection about six seconds
//! after a link is cut; the agent's last stderr line ("Timeout, server not responding")
//! goes into the report.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use pirun::contract::{ExitKind, PeerInfo};
use sha2::{Digest, Sha256};

use crate::error::exit_code;
use crate::host::{FdKind, Host, HostEvent, HostToken};
use crate::output::{OutputSink, Stream};
use crate::poller::{Poller, READ, WRITE};
use crate::signals::{self, kill_group, Signals};
use crate::wire::{
    self, Bytes, FrameReader, FromProxy, Hello, HostFacts, JobSpec, OutQueue, PreloadSpec,
    ReadState, ToProxy, HEARTBEAT, PRELOAD_CHUNK, PROTOCOL, SILENCE_LIMIT,
};

/// How long a proxy may take to greet (ssh login included) before the host counts as
/// unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// After the proxy's stdout closed, how long to wait for the agent's exit status (and
/// its last words on stderr) before giving up on it.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// Bytes queued for a proxy above which stdin is not read and preload chunks wait.
const QUEUE_LIMIT: usize = 2 * PRELOAD_CHUNK;
/// Lines of the agent's stderr kept for error reports.
const STDERR_LINES: usize = 20;

/// Errors of multi-host jobs. Each names the host (and file or rank) concerned.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The program is built for another CPU than the host's.
    #[error(
        "{program} is {program_arch}, {host} is {host_arch}; build it for {host_arch} \
         (exit code 126)"
    )]
    WrongMachine {
        /// The program as typed.
        program: String,
        /// What it is built for.
        program_arch: String,
        /// The host.
        host: String,
        /// The host's machine.
        host_arch: String,
    },

    /// A proxy reported a problem (program missing there, spawn failure, …).
    #[error("host {host}: {message}")]
    OnHost {
        /// The host.
        host: String,
        /// The proxy's report.
        message: String,
        /// The exit code for it.
        code: i32,
    },

    /// The proxy could not be started or did not answer properly.
    #[error("host {host}: cannot start the pirun proxy: {detail}")]
    ProxyStart {
        /// The host.
        host: String,
        /// What was observed and what to do.
        detail: String,
    },

    /// `--iface` selects nothing usable on this host.
    #[error("--iface {spec} on this host: {reason}")]
    Iface {
        /// The option's value.
        spec: String,
        /// Why.
        reason: String,
    },

    /// The address ranks on a host would use cannot work across hosts.
    #[error("host {host}: {detail}; pass --iface NAME|CIDR to choose the network")]
    Address {
        /// The host.
        host: String,
        /// What is wrong.
        detail: String,
    },

    /// `--preload-binary` cannot read the program on the launcher's side.
    #[error("--preload-binary: cannot read `{}`: {source}", path.display())]
    PreloadRead {
        /// The program.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// `--launch-agent` / `PIRUN_LAUNCH_AGENT` or `--proxy-path` cannot be parsed.
    #[error("bad {option} `{spec}`: {reason}")]
    Agent {
        /// Which option.
        option: &'static str,
        /// Its value.
        spec: String,
        /// What is wrong.
        reason: String,
    },

    /// The launch agent itself could not be run.
    #[error(
        "cannot run the launch agent `{agent}` for host {host}: {source}; install an ssh \
         client or pass --launch-agent"
    )]
    AgentSpawn {
        /// The agent program.
        agent: String,
        /// The host.
        host: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl HostError {
    /// pirun's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            HostError::WrongMachine { .. } => exit_code::NOT_EXECUTABLE,
            HostError::OnHost { code, .. } => *code,
            HostError::Agent { .. } => exit_code::USAGE,
            HostError::ProxyStart { .. }
            | HostError::Iface { .. }
            | HostError::Address { .. }
            | HostError::PreloadRead { .. }
            | HostError::AgentSpawn { .. } => exit_code::LAUNCH_FAILED,
        }
    }
}

/// How proxies are started: the launch agent's words and the proxy's path.
#[derive(Debug, Clone)]
pub struct Agent {
    argv: Vec<String>,
    is_ssh: bool,
    proxy_path: String,
    proxy_default: bool,
}

impl Agent {
    /// `agent` is a command split like a shell would (`ssh -F /tmp/cfg -p 2222`);
    /// `proxy_path` the remote pirun (`None`: `pirun` on the remote PATH).
    pub fn new(agent: &str, proxy_path: Option<&str>) -> Result<Self, HostError> {
        let bad = |reason: String| HostError::Agent {
            option: "--launch-agent",
            spec: agent.to_string(),
            reason,
        };
        let argv = split_words(agent).map_err(|r| bad(r.to_string()))?;
        let Some(first) = argv.first() else {
            return Err(bad("it is empty".into()));
        };
        let is_ssh = Path::new(first).file_name() == Some(OsStr::new("ssh"));
        let (proxy_path, proxy_default) = match proxy_path {
            Some(p) if p.trim().is_empty() => {
                return Err(HostError::Agent {
                    option: "--proxy-path",
                    spec: p.to_string(),
                    reason: "it is empty".into(),
                })
            }
            Some(p) => (p.to_string(), false),
            None => ("pirun".to_string(), true),
        };
        Ok(Agent {
            argv,
            is_ssh,
            proxy_path,
            proxy_default,
        })
    }

    /// The agent's command line for `host` (for `-v` and tests).
    pub fn command_line(&self, host: &str) -> Vec<String> {
        let mut words = self.argv.clone();
        if self.is_ssh {
            for opt in [
                "BatchMode=yes",
                "ConnectTimeout=10",
                "ServerAliveInterval=2",
                "ServerAliveCountMax=3",
            ] {
                words.push("-o".into());
                words.push(opt.into());
            }
        }
        words.push(host.to_string());
        words.push(format!("{} --proxy", shell_quote(&self.proxy_path)));
        words
    }
}

/// Splits a command like a POSIX shell does for words: blanks separate, `'…'` and `"…"`
/// quote, a backslash escapes the next character (inside `"…"` only before `"`, `\`,
/// `$`, `` ` ``). No expansions.
pub fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("a backslash at the end"),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Quotes `s` for the remote shell unless it is made of harmless characters; `~` and
/// `$` stay unquoted so that `~/bin/pirun` and `$HOME/bin/pirun` work.
fn shell_quote(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%~${}".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The program's bytes for `--preload-binary`: read once on the launcher's side, sent to
/// every remote host in chunks.
#[derive(Debug, Clone)]
pub struct Preload {
    path: PathBuf,
    spec: PreloadSpec,
}

impl Preload {
    /// Reads and hashes `path`.
    pub fn read(path: &Path) -> Result<Self, HostError> {
        let fail = |source| HostError::PreloadRead {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(fail)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; PRELOAD_CHUNK];
        let mut len = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(e)),
            };
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        let name = path
            .file_name()
            .map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
        Ok(Preload {
            path: path.to_path_buf(),
            spec: PreloadSpec {
                name,
                len,
                sha256: hasher.finalize().into(),
            },
        })
    }

    /// What the proxies are told about it.
    pub fn spec(&self) -> PreloadSpec {
        self.spec.clone()
    }
}

/// Where a remote host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Proxy starting, checking the program.
    Connecting,
    /// Program checked; waiting for `Start`.
    Prepared,
    /// Ranks started (or being started).
    Running,
    /// `Finish` sent.
    Finishing,
    /// `Done` received.
    Done,
    /// The proxy reported a failure.
    Failed,
    /// The connection is gone.
    Lost,
}

/// One rank on the host, as the launcher knows it.
#[derive(Debug)]
struct RemoteRank {
    rank: u32,
    ended: bool,
}

/// The last lines of the agent's stderr.
#[derive(Debug, Default)]
struct ErrTail {
    partial: Vec<u8>,
    lines: VecDeque<String>,
}

impl ErrTail {
    fn push(&mut self, data: &[u8], mut each: impl FnMut(&str)) {
        self.partial.extend_from_slice(data);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            self.keep(&line, &mut each);
        }
        if self.partial.len() > 4096 {
            let line = std::mem::take(&mut self.partial);
            self.keep(&line, &mut each);
        }
    }

    fn finish(&mut self, mut each: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.keep(&line, &mut each);
        }
    }

    fn keep(&mut self, line: &[u8], each: &mut impl FnMut(&str)) {
        let text = String::from_utf8_lossy(line);
        let text: String = text.trim_end().chars().take(500).collect();
        if text.is_empty() {
            return;
        }
        each(&text);
        if self.lines.len() == STDERR_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(text);
    }

    fn last(&self) -> Option<&str> {
        self.lines.back().map(String::as_str)
    }

    fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
}

/// The launcher's writing end of one proxy's connection. It is shared between the event
/// loop and the heartbeat thread, which keeps pinging every proxy even while the loop is
/// blocked writing output to a terminal or a paused pager (`pirun … | less`): a proxy
/// that hears nothing for [`SILENCE_LIMIT`] kills its ranks.
#[derive(Debug, Default)]
struct Uplink {
    pipe: Option<File>,
    queue: OutQueue,
}

impl Uplink {
    fn send(&mut self, msg: &ToProxy) {
        if self.pipe.is_some() {
            self.queue.send(msg);
        }
    }

    /// Writes what the pipe takes now; on an error (the agent is gone) closes it.
    fn flush(&mut self) {
        if let Some(pipe) = &self.pipe {
            if self.queue.flush(pipe.as_raw_fd()).is_err() {
                self.close();
            }
        }
    }

    /// Closes the pipe: end of file for the proxy, which then cleans up and exits.
    fn close(&mut self) {
        self.pipe = None;
        self.queue.clear();
    }
}

/// Every live uplink, for the heartbeat thread.
static HEARTBEAT_LINKS: Mutex<Vec<Weak<Mutex<Uplink>>>> = Mutex::new(Vec::new());

/// Registers `link` with the heartbeat thread, starting the thread on first use. (The
/// guard process is forked later with this thread running; it is written to be
/// fork-safe.)
fn start_heartbeat(link: &Arc<Mutex<Uplink>>) {
    static THREAD: std::sync::Once = std::sync::Once::new();
    HEARTBEAT_LINKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(link));
    THREAD.call_once(|| {
        // Without the thread proxies would only miss pings while the loop is blocked;
        // a failure to start it is not worth failing the job for.
        let _ = std::thread::Builder::new()
            .name("pirun-heartbeat".into())
            .spawn(|| loop {
                std::thread::sleep(HEARTBEAT);
                let links: Vec<Arc<Mutex<Uplink>>> = {
                    let mut all = HEARTBEAT_LINKS.lock().unwrap_or_else(|e| e.into_inner());
                    all.retain(|w| w.strong_count() > 0);
                    all.iter().filter_map(Weak::upgrade).collect()
                };
                for link in links {
                    let mut up = link.lock().unwrap_or_else(|e| e.into_inner());
                    up.send(&ToProxy::Ping);
                    up.flush();
                }
            });
    });
}

/// The ranks a proxy on another machine runs, seen through its connection.
#[derive(Debug)]
pub struct RemoteHost {
    name: String,
    agent: Agent,
    verbose: bool,
    child: Option<Child>,
    pgid: i32,
    status: Option<ExitStatus>,
    /// Our writing end, shared with the heartbeat thread.
    up: Arc<Mutex<Uplink>>,
    from_proxy: Option<File>,
    errors: Option<File>,
    reader: FrameReader,
    err_tail: ErrTail,
    phase: Phase,
    greeted: bool,
    facts: Option<HostFacts>,
    prepared: Option<(String, IpAddr)>,
    failure: Option<HostError>,
    /// Why the connection is considered gone, when we decided it (silence, bad data).
    gone_why: Option<String>,
    ranks: Vec<RemoteRank>,
    stdin_owner: bool,
    stdin_open: bool,
    stdin_in_flight: bool,
    preload: Option<(File, u64, PathBuf)>,
    started: Instant,
    last_heard: Instant,
    eof_at: Option<Instant>,
}

impl RemoteHost {
    /// Starts the proxy of `host` and sends it the job (and the preloaded program).
    pub fn start(
        host: &str,
        agent: &Agent,
        job: &JobSpec,
        preload: Option<&Preload>,
        verbose: bool,
    ) -> Result<Self, HostError> {
        let words = agent.command_line(host);
        if verbose {
            crate::output::report(&format!("host {host}: starting `{}`", words.join(" ")));
        }
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: only async-signal-safe calls: the agent must not inherit the signals
        // pirun blocks for its signalfd (ssh relies on SIGINT, SIGTERM, SIGCHLD).
        unsafe {
            cmd.pre_exec(|| {
                let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                libc::sigemptyset(empty.as_mut_ptr());
                if libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| HostError::AgentSpawn {
            agent: words[0].clone(),
            host: host.to_string(),
            source,
        })?;
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            unreachable!("all three pipes were requested");
        };
        let to_proxy = File::from(std::os::fd::OwnedFd::from(stdin));
        let from_proxy = File::from(std::os::fd::OwnedFd::from(stdout));
        let errors = File::from(std::os::fd::OwnedFd::from(stderr));
        let now = Instant::now();
        let pgid = child.id() as i32;
        let mut remote = RemoteHost {
            name: host.to_string(),
            agent: agent.clone(),
            verbose,
            child: Some(child),
            pgid,
            status: None,
            up: Arc::new(Mutex::new(Uplink::default())),
            from_proxy: None,
            errors: None,
            reader: FrameReader::new(true),
            err_tail: ErrTail::default(),
            phase: Phase::Connecting,
            greeted: false,
            facts: None,
            prepared: None,
            failure: None,
            gone_why: None,
            ranks: job
                .ranks
                .iter()
                .map(|&(rank, _)| RemoteRank { rank, ended: false })
                .collect(),
            stdin_owner: job.stdin_rank.is_some(),
            stdin_open: job.stdin_rank.is_some(),
            stdin_in_flight: false,
            preload: None,
            started: now,
            last_heard: now,
            eof_at: None,
        };
        for f in [&to_proxy, &from_proxy, &errors] {
            wire::set_nonblocking(f.as_raw_fd()).map_err(|source| HostError::AgentSpawn {
                agent: words[0].clone(),
                host: host.to_string(),
                source,
            })?;
        }
        remote.uplink().pipe = Some(to_proxy);
        remote.from_proxy = Some(from_proxy);
        remote.errors = Some(errors);
        if let Some(p) = preload {
            let file = File::open(&p.path).map_err(|source| HostError::PreloadRead {
                path: p.path.clone(),
                source,
            })?;
            remote.preload = Some((file, p.spec.len, p.path.clone()));
        }
        remote.uplink().queue.send(&Hello::ours());
        remote
            .uplink()
            .queue
            .send(&ToProxy::Job(Box::new(job.clone())));
        remote.flush();
        start_heartbeat(&remote.up);
        Ok(remote)
    }

    /// The proxy checked the program and is waiting for `Start`.
    pub fn is_prepared(&self) -> bool {
        self.phase == Phase::Prepared
    }

    /// Why the host cannot run the job, if it cannot (taken once).
    pub fn take_failure(&mut self) -> Option<HostError> {
        self.failure.take()
    }

    /// Whether the host has failed (its error may have been taken already).
    pub fn has_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed | Phase::Lost)
    }

    /// The host's facts, once its proxy has greeted.
    pub fn facts(&self) -> Option<&HostFacts> {
        self.facts.as_ref()
    }

    /// The address the host's ranks will bind (once prepared).
    pub fn bind_addr(&self) -> Option<IpAddr> {
        self.prepared.as_ref().map(|(_, a)| *a)
    }

    /// The program as the proxy resolved it (once prepared).
    pub fn program(&self) -> Option<&str> {
        self.prepared.as_ref().map(|(p, _)| p.as_str())
    }

    /// Every host is prepared: start the ranks.
    pub fn start_ranks(&mut self) {
        if self.phase == Phase::Prepared {
            self.uplink().send(&ToProxy::Start);
            self.phase = Phase::Running;
            self.flush();
        }
    }

    /// A job array: sends a batch of task orders (see [`crate::array`]).
    pub fn send_tasks(&mut self, orders: Vec<crate::array::TaskOrder>) {
        self.send(&ToProxy::Tasks(orders));
    }

    /// Gives up on the host before its ranks start (another host failed): closes the
    /// connection, which makes the proxy clean up and exit.
    pub fn abort(&mut self) {
        self.uplink().close();
    }

    /// The shared writing end (never poisoned: nothing panics while holding it).
    fn uplink(&self) -> std::sync::MutexGuard<'_, Uplink> {
        self.up.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&mut self, msg: &ToProxy) {
        if self.active() {
            self.uplink().send(msg);
            self.flush();
        }
    }

    /// Whether orders can still reach the proxy.
    fn active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Prepared | Phase::Running | Phase::Finishing
        ) && self.uplink().pipe.is_some()
    }

    /// Queues the next preload chunks while the queue is short, and writes what the
    /// pipe takes.
    fn flush(&mut self) {
        loop {
            self.pump_preload();
            let mut up = self.uplink();
            up.flush();
            if up.pipe.is_none() {
                // The agent is gone (its stdout will tell the rest) or we closed it.
                drop(up);
                self.preload = None;
                return;
            }
            if self.preload.is_none() || up.queue.len() >= QUEUE_LIMIT {
                return;
            }
        }
    }

    fn pump_preload(&mut self) {
        while self.uplink().queue.len() < QUEUE_LIMIT {
            let Some((file, remaining, path)) = &mut self.preload else {
                return;
            };
            if *remaining == 0 {
                self.preload = None;
                return;
            }
            let take = (*remaining).min(PRELOAD_CHUNK as u64) as usize;
            let mut chunk = vec![0u8; take];
            if let Err(e) = file.read_exact(&mut chunk) {
                self.failure = Some(HostError::PreloadRead {
                    path: path.clone(),
                    source: e,
                });
                self.phase = Phase::Failed;
                self.preload = None;
                self.abort();
                return;
            }
            *remaining -= take as u64;
            self.uplink().send(&ToProxy::PreloadChunk(Bytes(chunk)));
        }
    }

    fn read_stderr(&mut self) {
        let Some(f) = &mut self.errors else { return };
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => {
                    self.errors = None;
                    break;
                }
                Ok(n) => {
                    let (verbose, name) = (self.verbose, &self.name);
                    self.err_tail.push(&buf[..n], |line| {
                        if verbose {
                            crate::output::report(&format!("host {name}: {line}"));
                        }
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.errors = None;
                    break;
                }
            }
        }
        let (verbose, name) = (self.verbose, &self.name);
        self.err_tail.finish(|line| {
            if verbose {
                crate::output::report(&format!("host {name}: {line}"));
            }
        });
    }

    /// Reads the proxy's frames; handles each.
    fn read_proxy(&mut self, sink: &mut dyn OutputSink, events: &mut Vec<HostEvent>) {
        let Some(f) = &self.from_proxy else { return };
        let before = self.reader.total_read();
        let state = self.reader.fill(f.as_raw_fd());
        if self.reader.total_read() > before {
            self.last_heard = Instant::now();
        }
        loop {
            match self.reader.next_frame() {
                Ok(Some(body)) => {
                    self.last_heard = Instant::now();
                    if let Err(why) = self.on_frame(&body, sink, events) {
                        self.protocol_failure(why, events);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let why = if self.greeted {
                        format!("its proxy sent a malformed message: {e}")
                    } else {
                        format!(
                            "its output does not start with the pirun greeting (does a login \
                             script print to stdout?): {e}"
                        )
                    };
                    self.protocol_failure(why, events);
                    return;
                }
            }
        }
        if !matches!(state, Ok(ReadState::Open)) {
            self.from_proxy = None;
            self.eof_at.get_or_insert_with(Instant::now);
            self.check_gone(events);
        }
    }

    /// The proxy broke the protocol: stop talking to it and end it.
    fn protocol_failure(&mut self, why: String, events: &mut Vec<HostEvent>) {
        self.gone_why.get_or_insert(why);
        self.from_proxy = None;
        self.kill_agent();
        self.eof_at.get_or_insert_with(Instant::now);
        self.check_gone(events);
    }

    fn on_frame(
        &mut self,
        body: &[u8],
        sink: &mut dyn OutputSink,
        events: &mut Vec<HostEvent>,
    ) -> Result<(), String> {
        if !self.greeted {
            let hello: Hello =
                wire::decode(body).map_err(|e| format!("its greeting is malformed: {e}"))?;
            if hello.protocol != PROTOCOL {
                return Err(format!(
                    "pirun there is version {} (launcher protocol {}), this pirun is {} \
                     (protocol {PROTOCOL}); install the same pirun version on every host",
                    hello.version,
                    hello.protocol,
                    env!("CARGO_PKG_VERSION")
                ));
            }
            self.greeted = true;
            if self.verbose && !self.reader.noise().is_empty() {
                crate::output::report(&format!(
                    "host {}: skipped {} bytes a login script printed before the proxy \
                     started",
                    self.name,
                    self.reader.noise().len()
                ));
            }
            return Ok(());
        }
        let msg: FromProxy =
            wire::decode(body).map_err(|e| format!("its proxy sent a malformed message: {e}"))?;
        match msg {
            FromProxy::Facts(f) => {
                if self.verbose {
                    crate::output::report(&format!(
                        "host {}: proxy up on {} ({}, {} cores)",
                        self.name, f.hostname, f.arch, f.cores
                    ));
                }
                self.facts = Some(f);
            }
            FromProxy::Prepared { program, bind_addr } if self.phase == Phase::Connecting => {
                self.prepared = Some((program.to_os().to_string_lossy().into_owned(), bind_addr));
                self.phase = Phase::Prepared;
            }
            FromProxy::Failed { message, code } => {
                if matches!(self.phase, Phase::Connecting | Phase::Prepared) {
                    self.failure = Some(HostError::OnHost {
                        host: self.name.clone(),
                        message,
                        code,
                    });
                } else {
                    for r in &mut self.ranks {
                        r.ended = true;
                    }
                    events.push(HostEvent::Failed { message, code });
                }
                self.phase = Phase::Failed;
            }
            FromProxy::Started { pids } => {
                events.push(HostEvent::Started { pids });
            }
            FromProxy::Control { rank, msg } => {
                self.check_rank(rank)?;
                events.push(HostEvent::Control { rank, msg });
            }
            FromProxy::ControlBroken { rank, reason } => {
                self.check_rank(rank)?;
                events.push(HostEvent::ControlBroken { rank, reason });
            }
            FromProxy::Output {
                rank,
                stderr,
                lines,
            } => {
                self.check_rank(rank)?;
                let stream = if stderr {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                sink.write_lines(rank, stream, &lines.0);
            }
            FromProxy::Exited { rank, pid, how } => {
                self.check_rank(rank)?;
                if let Some(r) = self.ranks.iter_mut().find(|r| r.rank == rank && !r.ended) {
                    r.ended = true;
                    events.push(HostEvent::Exited { rank, pid, how });
                }
            }
            FromProxy::StdinReady => self.stdin_in_flight = false,
            FromProxy::StdinClosed => self.stdin_open = false,
            FromProxy::Ping => {}
            FromProxy::Tasks(tasks) => events.push(HostEvent::Tasks(tasks)),
            FromProxy::Done => self.phase = Phase::Done,
            FromProxy::Prepared { .. } => {
                return Err("its proxy sent Prepared twice".into());
            }
        }
        Ok(())
    }

    fn check_rank(&self, rank: u32) -> Result<(), String> {
        if self.ranks.iter().any(|r| r.rank == rank) {
            Ok(())
        } else {
            Err(format!(
                "its proxy sent a message about rank {rank}, which does not run there"
            ))
        }
    }

    /// Called when the proxy's stdout closed or the agent exited: once both happened
    /// (or the agent takes too long to exit), the host is done, failed or lost.
    fn check_gone(&mut self, events: &mut Vec<HostEvent>) {
        self.try_reap_agent();
        let Some(eof_at) = self.eof_at else { return };
        if self.child.is_some() && eof_at.elapsed() < EXIT_WAIT {
            return; // wait for the exit status and the last stderr lines
        }
        if self.child.is_some() {
            self.kill_agent();
        }
        self.read_stderr();
        self.uplink().close();
        self.preload = None;
        match self.phase {
            Phase::Done | Phase::Failed | Phase::Lost => {}
            Phase::Connecting | Phase::Prepared => {
                self.failure = Some(self.start_failure());
                self.phase = Phase::Failed;
            }
            Phase::Running | Phase::Finishing => {
                let ranks: Vec<u32> = self
                    .ranks
                    .iter_mut()
                    .filter(|r| !r.ended)
                    .map(|r| {
                        r.ended = true;
                        r.rank
                    })
                    .collect();
                let reason = self.lost_reason();
                self.phase = Phase::Lost;
                events.push(HostEvent::Lost { reason, ranks });
            }
        }
    }

    /// Collects the agent's exit status if it has ended.
    fn try_reap_agent(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                self.status = Some(status);
                self.child = None;
                // Its pipes are closed now: what is left in them can be read to the end.
                self.eof_at.get_or_insert_with(Instant::now);
            }
        }
    }

    fn kill_agent(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(self.pgid, self.pgid, libc::SIGKILL);
            if let Ok(status) = child.wait() {
                self.status = Some(status);
            }
        }
    }

    /// Why the proxy could not be started, from the agent's exit status and stderr.
    fn start_failure(&self) -> HostError {
        let name = &self.name;
        let code = self.status.and_then(|s| s.code());
        let last = self.err_tail.last().unwrap_or("").to_string();
        let with_last = |what: &str| {
            if last.is_empty() {
                what.to_string()
            } else {
                format!("{what} ({last})")
            }
        };
        let proxy = &self.agent.proxy_path;
        let detail = if let Some(why) = &self.gone_why {
            why.clone()
        } else if self.greeted {
            with_last("the pirun proxy ended before answering")
        } else if code == Some(127)
            || self.err_tail.contains("command not found")
            || (self.err_tail.contains(proxy.as_str())
                && self.err_tail.contains("No such file or directory"))
        {
            if self.agent.proxy_default {
                format!("'{proxy}' is not on its PATH; install pirun there or pass --proxy-path")
            } else {
                format!(
                    "'{proxy}' was not found there; install pirun there or correct --proxy-path"
                )
            }
        } else if code == Some(126) {
            format!(
                "'{proxy}' cannot be executed there{}; check its permissions and that it is \
                 built for {name}'s CPU, or pass --proxy-path",
                if last.is_empty() {
                    String::new()
                } else {
                    format!(" ({last})")
                }
            )
        } else if self.agent.is_ssh && code == Some(255) {
            let t = &self.err_tail;
            if t.contains("Permission denied") || t.contains("Too many authentication failures") {
                with_last(&format!(
                    "ssh could not log in to {name}; pirun runs ssh with BatchMode=yes, so the \
                     login must work without a password prompt: set up key-based login \
                     (ssh-copy-id {name})"
                ))
            } else if t.contains("Could not resolve hostname") {
                with_last("ssh cannot resolve the host name; check it in the hostfile")
            } else if t.contains("Host key verification failed") {
                with_last(&format!(
                    "ssh does not trust {name}'s host key; connect once with `ssh {name}` to \
                     check and accept it"
                ))
            } else if [
                "Connection refused",
                "timed out",
                "No route to host",
                "Network is unreachable",
                "Connection closed",
                "Connection reset",
            ]
            .iter()
            .any(|s| t.contains(s))
            {
                with_last("cannot connect over ssh")
            } else {
                with_last("ssh failed (exit code 255)")
            }
        } else {
            let status = match (code, self.status) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("{s}"),
                (None, None) => "no exit status".into(),
            };
            with_last(&format!(
                "the launch agent `{}` ended ({status}) before the proxy answered",
                self.agent.argv[0]
            ))
        };
        HostError::ProxyStart {
            host: name.clone(),
            detail,
        }
    }

    /// What to say about a host lost while its ranks ran.
    fn lost_reason(&self) -> String {
        if let Some(why) = &self.gone_why {
            return why.clone();
        }
        let agent = Path::new(&self.agent.argv[0]).file_name().map_or_else(
            || self.agent.argv[0].clone(),
            |n| n.to_string_lossy().into_owned(),
        );
        match (self.err_tail.last(), self.status.and_then(|s| s.code())) {
            (Some(line), _) => format!("{agent}: {line}"),
            (None, Some(255)) if self.agent.is_ssh => {
                "ssh lost the connection: exit code 255".into()
            }
            (None, Some(c)) => format!("{agent} exited with code {c}"),
            (None, None) => match self.status {
                Some(s) => format!("{agent} ended: {s}"),
                None => "its connection closed".into(),
            },
        }
    }
}

impl Host for RemoteHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn interest(&self, add: &mut dyn FnMut(RawFd, i16, HostToken)) {
        let token = |kind| HostToken { index: 0, kind };
        {
            let up = self.uplink();
            if let (Some(f), false) = (&up.pipe, up.queue.is_empty()) {
                add(f.as_raw_fd(), WRITE, token(FdKind::ProxyIn));
            }
        }
        if let Some(f) = &self.from_proxy {
            add(f.as_raw_fd(), READ, token(FdKind::ProxyOut));
        }
        if let Some(f) = &self.errors {
            add(f.as_raw_fd(), READ, token(FdKind::ProxyErr));
        }
    }

    fn handle(
        &mut self,
        token: HostToken,
        _revents: i16,
        sink: &mut dyn OutputSink,
        events: &mut Vec<HostEvent>,
    ) {
        match token.kind {
            FdKind::ProxyIn => self.flush(),
            FdKind::ProxyOut => self.read_proxy(sink, events),
            FdKind::ProxyErr => self.read_stderr(),
            _ => {}
        }
    }

    fn reap(&mut self, sink: &mut dyn OutputSink, events: &mut Vec<HostEvent>) {
        if self.child.is_none() {
            return;
        }
        self.try_reap_agent();
        if self.child.is_none() {
            // The agent ended: what it wrote before is still in the pipes.
            self.read_proxy(sink, events);
            self.read_stderr();
            self.check_gone(events);
        }
    }

    fn tick(&mut self, now: Instant, events: &mut Vec<HostEvent>) -> Option<Instant> {
        if let Some(eof_at) = self.eof_at {
            self.check_gone(events);
            return (self.child.is_some()).then_some(eof_at + EXIT_WAIT);
        }
        if !self.active() {
            return None;
        }
        let limit = if self.greeted {
            self.last_heard + SILENCE_LIMIT
        } else {
            self.started + CONNECT_LIMIT
        };
        if now >= limit {
            // Messages may be waiting unread (the event loop was busy, e.g. writing to a
            // slow terminal): read them first, judge afterwards.
            if self
                .from_proxy
                .as_ref()
                .is_some_and(|f| readable(f.as_raw_fd()))
            {
                return Some(now);
            }
            self.gone_why = Some(if self.greeted {
                format!("no word from its proxy for {} s", SILENCE_LIMIT.as_secs())
            } else {
                format!(
                    "no answer from its proxy within {} s",
                    CONNECT_LIMIT.as_secs()
                )
            });
            self.from_proxy = None;
            self.kill_agent();
            self.eof_at = Some(now);
            self.check_gone(events);
            return None;
        }
        Some(limit)
    }

    fn send_peers(&mut self, peers: &[PeerInfo]) {
        if self.ranks.iter().any(|r| !r.ended) {
            self.send(&ToProxy::Peers(peers.to_vec()));
        }
    }

    fn send_peer_exited(&mut self, rank: u32, how: ExitKind) {
        if self.ranks.iter().any(|r| !r.ended) {
            self.send(&ToProxy::PeerExited { rank, how });
        }
    }

    fn close_control(&mut self, rank: u32) {
        self.send(&ToProxy::CloseControl(rank));
    }

    fn all_exited(&self) -> bool {
        self.ranks.iter().all(|r| r.ended)
    }

    fn output_open(&self) -> bool {
        !matches!(self.phase, Phase::Done | Phase::Failed | Phase::Lost)
    }

    fn signal(&mut self, sig: i32) {
        if matches!(self.phase, Phase::Running | Phase::Finishing) {
            if self.verbose {
                crate::output::report(&format!(
                    "host {}: sending {}",
                    self.name,
                    signals::name(sig)
                ));
            }
            self.send(&ToProxy::Signal(sig));
        }
    }

    fn wants_stdin(&self) -> bool {
        self.stdin_owner
            && self.stdin_open
            && !self.stdin_in_flight
            && self.phase == Phase::Running
            && self.uplink().queue.len() < QUEUE_LIMIT
    }

    fn has_stdin(&self) -> bool {
        self.stdin_owner && self.stdin_open && self.active()
    }

    fn feed_stdin(&mut self, data: &[u8]) {
        if self.has_stdin() {
            self.stdin_in_flight = true;
            self.send(&ToProxy::Stdin(Bytes(data.to_vec())));
        }
    }

    fn end_stdin(&mut self) {
        if self.has_stdin() {
            self.send(&ToProxy::StdinEnd);
        }
        self.stdin_open = false;
    }

    fn finish(&mut self) {
        if self.phase == Phase::Running {
            self.send(&ToProxy::Finish);
            self.phase = Phase::Finishing;
        }
    }

    fn close_output(&mut self, _sink: &mut dyn OutputSink) {}

    fn reap_all(&mut self) {
        // End of file on its stdin ends a proxy that is still there.
        self.uplink().close();
        let deadline = Instant::now() + EXIT_WAIT;
        while self.child.is_some() && Instant::now() < deadline {
            self.try_reap_agent();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill_agent();
    }
}

impl Drop for RemoteHost {
    /// Safety net for early returns: the agent (and with it the connection, whose end
    /// makes the proxy kill its ranks) never outlives its `RemoteHost`.
    fn drop(&mut self) {
        self.uplink().close();
        self.kill_agent();
    }
}

/// Whether `fd` has data (or end of file) to read right now.
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: READ,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// What every remote host's [`JobSpec`] of one job shares, worked out once.
pub struct Shared {
    /// `-x` exports, resolved on the launcher's side.
    pub env: Vec<(Bytes, Bytes)>,
    /// `--wdir` (absolute), or the launcher's own directory.
    pub wdir: Option<Bytes>,
    /// Whether the directory came from `--wdir`.
    pub wdir_explicit: bool,
    /// `--preload-binary`: what the proxies are told of the program's bytes.
    pub preload: Option<PreloadSpec>,
}

/// Starts a proxy on each of `hosts`, all at once, each with the job `spec` builds for it
/// (from its index in `hosts` and what all share), and waits until every one has checked
/// the program ([`prepare_all`]). `Ok(Err(code))`: a signal or `--timeout` (counted from
/// `started`) ended the job meanwhile. `local_program` is the program as found here, read
/// for `--preload-binary`.
pub fn start_all<'a>(
    cli: &crate::cli::Cli,
    hosts: impl Iterator<Item = &'a str>,
    local_program: Option<&Path>,
    exports: &[(OsString, OsString)],
    (signals, started): (&Signals, Instant),
    spec: impl Fn(usize, &Shared) -> JobSpec,
) -> Result<Result<Vec<RemoteHost>, i32>, crate::error::LaunchError> {
    let agent = Agent::new(&cli.launch_agent(), cli.proxy_path().as_deref())?;
    let preload = match (local_program, cli.preload_binary) {
        (Some(path), true) => Some(Preload::read(path)?),
        _ => None,
    };
    let shared = Shared {
        env: wire_env(exports),
        wdir: match &cli.wdir {
            Some(d) => Some(crate::job::absolute(d)),
            None => std::env::current_dir().ok(),
        }
        .map(|d| Bytes::os(d.as_os_str())),
        wdir_explicit: cli.wdir.is_some(),
        preload: preload.as_ref().map(Preload::spec),
    };
    let mut remotes = Vec::new();
    for (i, host) in hosts.enumerate() {
        remotes.push(RemoteHost::start(
            host,
            &agent,
            &spec(i, &shared),
            preload.as_ref(),
            cli.verbose,
        )?);
    }
    let deadline = cli.timeout.map(|t| started + t);
    Ok(match prepare_all(&mut remotes, signals, deadline)? {
        Some(code) => Err(code),
        None => Ok(remotes),
    })
}

/// Waits until every host is prepared (or one cannot be). On a signal or `--timeout`
/// meanwhile, reports it and returns `Ok(Some(exit code))`. Failures of all hosts are
/// reported, in host order; the last is returned.
pub fn prepare_all(
    remotes: &mut [RemoteHost],
    signals: &Signals,
    deadline: Option<Instant>,
) -> Result<Option<i32>, crate::error::LaunchError> {
    #[derive(Clone, Copy)]
    enum Token {
        Signals,
        Host(usize, HostToken),
    }
    let mut poller = Poller::default();
    let mut events = Vec::new();
    let mut quiet = crate::output::Terminal::new(false);
    let mut ready = Vec::new();
    loop {
        let now = Instant::now();
        let mut next: Option<Instant> = deadline;
        for r in remotes.iter_mut() {
            if let Some(t) = r.tick(now, &mut events) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let settled = remotes.iter().all(|r| r.is_prepared() || r.has_failed());
        if settled {
            let mut failures: Vec<HostError> = remotes
                .iter_mut()
                .filter_map(RemoteHost::take_failure)
                .collect();
            let Some(last) = failures.pop() else {
                return Ok(None);
            };
            // In host order: all but the last here, the last as pirun's final line.
            for earlier in failures {
                crate::output::report(&earlier.to_string());
            }
            for r in remotes.iter_mut() {
                r.abort();
            }
            return Err(last.into());
        }
        if deadline.is_some_and(|d| now >= d) {
            crate::output::report(&format!(
                "job timed out while starting the proxies (--timeout); waiting for {}",
                remotes
                    .iter()
                    .filter(|r| !r.is_prepared() && !r.has_failed())
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(Some(exit_code::TIMEOUT));
        }
        poller.clear();
        poller.add(signals.as_raw_fd(), READ, Token::Signals);
        for (i, r) in remotes.iter().enumerate() {
            r.interest(&mut |fd, ev, t| poller.add(fd, ev, Token::Host(i, t)));
        }
        poller
            .wait(next.map(|d| d.saturating_duration_since(now)))
            .map_err(|e| crate::error::LaunchError::system("poll failed", e))?;
        ready.clear();
        ready.extend(poller.ready());
        for &(token, revents) in &ready {
            match token {
                Token::Signals => {
                    let received = signals.drain().map_err(|e| {
                        crate::error::LaunchError::system("cannot read the signalfd", e)
                    })?;
                    for sig in received {
                        if sig == libc::SIGCHLD {
                            for r in remotes.iter_mut() {
                                r.reap(&mut quiet, &mut events);
                            }
                        } else {
                            crate::output::report(&format!(
                                "received {} while starting the proxies; stopping",
                                signals::name(sig)
                            ));
                            return Ok(Some(exit_code::SIGNAL_BASE + sig));
                        }
                    }
                }
                Token::Host(i, t) => remotes[i].handle(t, revents, &mut quiet, &mut events),
            }
        }
        events.clear();
    }
}

/// The address this host's ranks bind when other hosts take part: `--iface`, else the
/// address the proxies saw the launcher connect from (the most common one, if they
/// differ), which must be one of this host's.
pub fn local_bind_addr(
    iface: Option<&str>,
    remotes: &[RemoteHost],
    this_host: &str,
) -> Result<IpAddr, HostError> {
    let addrs = crate::iface::addresses().map_err(|e| HostError::Address {
        host: this_host.to_string(),
        detail: format!("cannot list this host's addresses: {e}"),
    })?;
    if let Some(spec) = iface {
        return crate::iface::select(spec, &addrs).map_err(|reason| HostError::Iface {
            spec: spec.to_string(),
            reason,
        });
    }
    let mut seen: Vec<(IpAddr, usize)> = Vec::new();
    for r in remotes {
        if let Some(addr) = r.facts().and_then(|f| f.ssh_client) {
            match seen.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, n)) => *n += 1,
                None => seen.push((addr, 1)),
            }
        }
    }
    seen.sort_by_key(|s| std::cmp::Reverse(s.1));
    if let Some(&(addr, _)) = seen
        .iter()
        .find(|(a, _)| crate::iface::is_routable(*a) && crate::iface::is_local(*a, &addrs))
    {
        return Ok(addr);
    }
    match seen.first() {
        Some((addr, _)) => Err(HostError::Address {
            host: this_host.to_string(),
            detail: format!(
                "the other hosts see pirun connect from {addr}, which is not an address of \
                 this host (NAT or a jump host?), so they could not reach its ranks"
            ),
        }),
        None => crate::iface::fallback(&addrs).ok_or_else(|| HostError::Address {
            host: this_host.to_string(),
            detail: "no proxy reported SSH_CONNECTION and this host has no ordinary \
                     interface address"
                .into(),
        }),
    }
}

/// The `-x` environment as wire bytes.
pub fn wire_env(env: &[(OsString, OsString)]) -> Vec<(Bytes, Bytes)> {
    env.iter()
        .map(|(k, v)| (Bytes::os(k), Bytes::os(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_commands_are_split_like_a_shell_does() {
        assert_eq!(
            split_words(r#"ssh -F /tmp/my\ cfg -p 2222 -o "ProxyCommand=nc %h 22" 'a b'"#).unwrap(),
            [
                "ssh",
                "-F",
                "/tmp/my cfg",
                "-p",
                "2222",
                "-o",
                "ProxyCommand=nc %h 22",
                "a b"
            ]
        );
        assert_eq!(split_words("  rsh  ").unwrap(), ["rsh"]);
        assert_eq!(split_words(r#"x "a\"b\n""#).unwrap(), ["x", "a\"b\\n"]);
        assert!(split_words("ssh 'open").is_err());
        assert!(split_words("ssh \"open").is_err());
        assert_eq!(split_words("''").unwrap(), [""]);
    }

    #[test]
    fn ssh_gets_its_options_other_agents_do_not() {
        let ssh = Agent::new("ssh -F /tmp/cfg", None).unwrap();
        let words = ssh.command_line("pi3");
        assert_eq!(&words[..3], ["ssh", "-F", "/tmp/cfg"]);
        assert!(words.contains(&"BatchMode=yes".to_string()));
        assert!(words.contains(&"ServerAliveInterval=2".to_string()));
        assert!(words.contains(&"ServerAliveCountMax=3".to_string()));
        assert_eq!(&words[words.len() - 2..], ["pi3", "pirun --proxy"]);

        let rsh = Agent::new("/usr/bin/rsh", Some("/opt/pirun dir/pirun")).unwrap();
        assert_eq!(
            rsh.command_line("pi1"),
            ["/usr/bin/rsh", "pi1", "'/opt/pirun dir/pirun' --proxy"]
        );
        let home = Agent::new("ssh", Some("~/bin/pirun")).unwrap();
        assert_eq!(
            home.command_line("h").last().unwrap(),
            "~/bin/pirun --proxy"
        );
        assert!(Agent::new("  ", None).is_err());
        assert!(Agent::new("ssh", Some("")).is_err());
        assert_eq!(Agent::new("ssh 'x", None).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let mut t = ErrTail::default();
        let mut seen = Vec::new();
        for i in 0..30 {
            t.push(format!("line {i}\n").as_bytes(), |l| {
                seen.push(l.to_string())
            });
        }
        t.push(b"partial", |_| {});
        t.finish(|l| seen.push(l.to_string()));
        assert_eq!(seen.len(), 31);
        assert_eq!(t.lines.len(), STDERR_LINES);
        assert_eq!(t.last(), Some("partial"));
        assert!(t.contains("line 29") && !t.contains("line 5\n"));
    }

    #[test]
    fn preload_hashes_the_file() {
        let path = std::env::temp_dir().join(format!("pirun-preload-test-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let p = Preload::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(p.spec().len, 3);
        assert_eq!(
            p.spec().sha256[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256 of `abc`"
        );
        let missing = Preload::read(Path::new("/nonexistent/x")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/x"), "{missing}");
    }
}
