//! Job policy: turns the command line into a launch, runs the event loop on the main
//! thread, and decides what happens — the fence (`Ready` from every rank, then `Peers`),
//! telling ranks about exited peers, ending the job (first failure, forwarded signal or
//! `--timeout`: signal the ranks, `SIGKILL` after `--grace`), the one-line report and
//! the exit code. When every rank has ended, whatever is left in the ranks' process
//! groups (background children of a script) is killed: nothing outlives the job.
//!
//! Signals: `SIGINT`, `SIGTERM` and `SIGHUP` sent to `pirun` are forwarded as they are
//! to every rank's process group, `SIGKILL` follows after the grace period, and `pirun`
//! exits with 128 + the signal. A second such signal kills the ranks at once. Since the
//! ranks have process groups of their own, a Ctrl-C on the terminal reaches only `pirun`
//! (the foreground group), which forwards it once; the ranks never see it twice.
//!
//! The loop is a plain `poll(2)` over the signalfd, pirun's stdin and the descriptors of
//! [`LocalHost`]; it sleeps in the kernel until something happens or the next deadline
//! (timeout, grace period) comes, so a blocked `pirun` uses no CPU. It runs on the main
//! thread, which lives for the whole job: `PR_SET_PDEATHSIG` fires when the thread that
//! spawned a rank exits, so ranks must never be spawned from a short-lived thread.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use pirun::contract::{ControlMsg, ExitKind, PeerInfo, Secret, SECRET_LEN};

use crate::alloc::Allocation;
use crate::cli::Cli;
use crate::error::{exit_code, LaunchError};
use crate::host::{HostEvent, HostLaunch, HostToken, LocalHost, OutputMode};
use crate::output::{report, Terminal};
use crate::poller::{Poller, READ};
use crate::signals::{self, Signals};

/// How long to keep reading output after every rank has ended and the leftovers of
/// their process groups were killed, in case something escaped the group and holds a pipe.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Runs the job the command line describes; returns pirun's exit code.
pub fn run(cli: &Cli) -> Result<i32, LaunchError> {
    let signals = Signals::install()
        .map_err(|e| LaunchError::system("cannot set up signal handling (signalfd)", e))?;
    let alloc = Allocation::local()
        .map_err(|e| LaunchError::system("cannot determine this host's name", e))?;
    let size = cli.ranks.unwrap_or(alloc.slots() as u32);
    let placements = alloc.map(size, cli.oversubscribe)?;
    let exports = cli.exports()?;
    if let Some(dir) = &cli.wdir {
        check_dir(dir)?;
    }
    let path_var = exports
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"));
    let (arg0, args) = cli.command.split_first().ok_or(LaunchError::NoRanks)?;
    let program = crate::program::resolve_program(arg0, cli.wdir.as_deref(), path_var.as_deref())?;
    let output = match &cli.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LaunchError::OutputDir {
                path: dir.clone(),
                source,
            })?;
            OutputMode::Files(dir.clone())
        }
        None => OutputMode::Forward,
    };
    let (secret, job_id) = job_identity()?;

    // One host today; with issue 4 each host's launch goes to its proxy.
    let here = &alloc.hosts[0];
    let launch = HostLaunch {
        host: here.name.clone(),
        cores: here.cores,
        bind_addr: here.bind_addr,
        size,
        job_id: job_id.clone(),
        secret,
        program,
        arg0: arg0.clone(),
        args: args.to_vec(),
        env: exports,
        wdir: cli.wdir.clone(),
        ranks: placements
            .iter()
            .filter(|p| p.host == 0)
            .map(|p| (p.rank, p.local_rank))
            .collect(),
        stdin_rank: Some(0),
        output,
    };
    let host = LocalHost::spawn(&launch)?;
    if cli.verbose {
        let pids: Vec<String> = host.pids().map(|(r, p)| format!("{r}:{p}")).collect();
        report(&format!(
            "job {job_id}: started {size} ranks of `{}` on host {} (rank:pid {})",
            launch.program.display(),
            host.name(),
            pids.join(" ")
        ));
    }
    let mut job = Job {
        verbose: cli.verbose,
        grace: cli.grace,
        timeout: cli.timeout,
        host_names: placements
            .iter()
            .map(|p| alloc.hosts[p.host].name.clone())
            .collect(),
        signals,
        host,
        sink: Terminal::new(cli.tag_output),
        ready: vec![None; size as usize],
        ready_count: 0,
        panics: vec![None; size as usize],
        ending: None,
        exit_code: 0,
        stdin_open: true,
        started: Instant::now(),
    };
    job.run()
}

/// A job being ended: when the ranks still running get `SIGKILL` (`None`: sent).
#[derive(Debug)]
struct Ending {
    kill_at: Option<Instant>,
}

/// Where a token from the poller points.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Stdin,
    Host(HostToken),
}

/// The state of a running job.
struct Job {
    verbose: bool,
    grace: Duration,
    timeout: Option<Duration>,
    host_names: Vec<String>,
    signals: Signals,
    host: LocalHost,
    sink: Terminal,
    ready: Vec<Option<SocketAddr>>,
    ready_count: usize,
    panics: Vec<Option<(String, String)>>,
    ending: Option<Ending>,
    exit_code: i32,
    stdin_open: bool,
    started: Instant,
}

impl Job {
    fn run(&mut self) -> Result<i32, LaunchError> {
        let mut poller = Poller::default();
        let mut events = Vec::new();
        let mut ready = Vec::new();
        let mut stdin_buf = vec![0u8; 64 * 1024];
        let mut drain_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.check_deadlines(now);
            if self.host.all_exited() {
                let until = *drain_until.get_or_insert_with(|| {
                    // Whatever the ranks left behind in their process groups goes now.
                    self.host.signal(libc::SIGKILL);
                    now + DRAIN_LIMIT
                });
                if !self.host.output_open() || now >= until {
                    break;
                }
            }

            poller.clear();
            poller.add(self.signals_fd(), READ, Token::Signals);
            if self.stdin_open && !self.host.has_stdin() {
                self.stdin_open = false;
            }
            if self.stdin_open && self.host.wants_stdin() {
                poller.add(libc::STDIN_FILENO, READ, Token::Stdin);
            }
            self.host
                .interest(|fd, ev, t| poller.add(fd, ev, Token::Host(t)));
            let wait = self
                .next_deadline(drain_until)
                .map(|d| d.saturating_duration_since(now));
            poller
                .wait(wait)
                .map_err(|e| LaunchError::system("poll failed", e))?;

            ready.clear();
            ready.extend(poller.ready());
            for &(token, revents) in &ready {
                match token {
                    Token::Signals => self.on_signals(&mut events)?,
                    Token::Stdin => self.on_stdin(&mut stdin_buf),
                    Token::Host(t) => self.host.handle(t, revents, &mut self.sink, &mut events),
                }
            }
            for event in events.drain(..) {
                self.on_host_event(event);
            }
        }
        self.host.close_output(&mut self.sink);
        self.host.reap_all();
        Ok(self.exit_code)
    }

    fn signals_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.signals.as_raw_fd()
    }

    /// The earliest moment the loop must wake up without any descriptor being ready.
    fn next_deadline(&self, drain_until: Option<Instant>) -> Option<Instant> {
        let timeout = match (&self.ending, self.timeout) {
            (None, Some(t)) => Some(self.started + t),
            _ => None,
        };
        let kill = self.ending.as_ref().and_then(|e| e.kill_at);
        [timeout, kill, drain_until].into_iter().flatten().min()
    }

    fn check_deadlines(&mut self, now: Instant) {
        if let (None, Some(t)) = (&self.ending, self.timeout) {
            if now >= self.started + t {
                report(&format!(
                    "job timed out after {t:?} (--timeout); ending the job (exit code {})",
                    exit_code::TIMEOUT
                ));
                self.end_job(exit_code::TIMEOUT, libc::SIGTERM);
            }
        }
        if let Some(ending) = &mut self.ending {
            if ending.kill_at.is_some_and(|at| now >= at) {
                ending.kill_at = None;
                if self.verbose {
                    report("grace period over; sending SIGKILL to the ranks still running");
                }
                self.host.signal(libc::SIGKILL);
            }
        }
    }

    /// Starts ending the job: `sig` to every rank now, `SIGKILL` after the grace period.
    /// The first cause decides the exit code.
    fn end_job(&mut self, code: i32, sig: i32) {
        if self.ending.is_some() {
            return;
        }
        self.exit_code = code;
        self.ending = Some(Ending {
            kill_at: Some(Instant::now() + self.grace),
        });
        if self.verbose {
            report(&format!("sending {} to every rank", signals::name(sig)));
        }
        self.host.signal(sig);
    }

    fn on_signals(&mut self, events: &mut Vec<HostEvent>) -> Result<(), LaunchError> {
        let received = self
            .signals
            .drain()
            .map_err(|e| LaunchError::system("cannot read the signalfd", e))?;
        for sig in received {
            if sig == libc::SIGCHLD {
                self.host.reap(&mut self.sink, events);
            } else if self.ending.is_none() {
                report(&format!(
                    "received {}; forwarding it to the ranks and ending the job",
                    signals::name(sig)
                ));
                self.end_job(exit_code::SIGNAL_BASE + sig, sig);
            } else {
                report(&format!(
                    "received {} again; killing the ranks now",
                    signals::name(sig)
                ));
                if let Some(e) = &mut self.ending {
                    e.kill_at = None;
                }
                self.host.signal(libc::SIGKILL);
            }
        }
        Ok(())
    }

    fn on_stdin(&mut self, buf: &mut [u8]) {
        // SAFETY: reading into a valid buffer. Readiness was reported by poll, so a
        // blocking stdin does not block here.
        let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            self.host.feed_stdin(&buf[..n as usize]);
            return;
        }
        if n < 0 {
            let kind = io::Error::last_os_error().kind();
            if matches!(kind, io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) {
                return;
            }
        }
        // End of file (or an unreadable stdin): rank 0 sees end of file too.
        self.stdin_open = false;
        self.host.end_stdin();
    }

    fn on_host_event(&mut self, event: HostEvent) {
        match event {
            HostEvent::Control { rank, msg } => self.on_control(rank, msg),
            HostEvent::ControlBroken { rank, reason } => report(&format!(
                "rank {rank} on host {} sent a malformed control message ({reason}); \
                 closed its control channel, the job goes on",
                self.host_name(rank)
            )),
            HostEvent::Exited { rank, pid, how } => self.on_exit(rank, pid, how),
        }
    }

    fn on_control(&mut self, rank: u32, msg: ControlMsg) {
        match msg {
            ControlMsg::Ready {
                rank: claimed,
                addr,
            } if claimed == rank => {
                let slot = &mut self.ready[rank as usize];
                if slot.is_none() {
                    self.ready_count += 1;
                }
                *slot = Some(addr);
                if self.ready_count == self.ready.len() {
                    self.complete_fence();
                }
            }
            ControlMsg::Panicked {
                message, location, ..
            } => self.panics[rank as usize] = Some((message, location)),
            other => {
                report(&format!(
                    "rank {rank} on host {} sent an unexpected control message ({}); \
                     closed its control channel, the job goes on",
                    self.host_name(rank),
                    describe(&other)
                ));
                self.host.close_control(rank);
            }
        }
    }

    /// Every rank is ready: hand each the table of all addresses.
    fn complete_fence(&mut self) {
        let peers: Vec<PeerInfo> = self
            .ready
            .iter()
            .zip(&self.host_names)
            .filter_map(|(addr, host)| {
                addr.map(|addr| PeerInfo {
                    addr,
                    host: host.clone(),
                })
            })
            .collect();
        let msg = ControlMsg::Peers { peers };
        let running: Vec<u32> = self.host.running().collect();
        for rank in running {
            self.host.send(rank, &msg);
        }
        if self.verbose {
            report("fence complete: every rank is ready; sent the peer table");
        }
    }

    fn on_exit(&mut self, rank: u32, pid: u32, how: ExitKind) {
        if self.verbose {
            report(&format!("rank {rank} (pid {pid}) ended: {how}"));
        }
        let notice = ControlMsg::PeerExited { rank, how };
        let running: Vec<u32> = self.host.running().collect();
        for other in running {
            self.host.send(other, &notice);
        }
        if how == ExitKind::Code(0) || self.ending.is_some() {
            return;
        }
        let (what, code) = match how {
            ExitKind::Code(c) => (format!("exited with code {c}"), c),
            ExitKind::Signal(s) => (
                format!("was killed by signal {s} ({})", signals::name(s)),
                exit_code::SIGNAL_BASE + s,
            ),
        };
        let panic = match &self.panics[rank as usize] {
            Some((message, location)) => format!(": panicked at {location}: {message}"),
            None => String::new(),
        };
        report(&format!(
            "rank {rank} (pid {pid} on host {}) {what}{panic}; ending the job",
            self.host_name(rank)
        ));
        self.end_job(code, libc::SIGTERM);
    }

    fn host_name(&self, rank: u32) -> &str {
        self.host_names
            .get(rank as usize)
            .map_or("?", String::as_str)
    }
}

/// A short name of a control message for error reports.
fn describe(msg: &ControlMsg) -> String {
    match msg {
        ControlMsg::Welcome { .. } => "Welcome".into(),
        ControlMsg::Ready { rank, .. } => format!("Ready claiming to be rank {rank}"),
        ControlMsg::Peers { .. } => "Peers".into(),
        ControlMsg::PeerExited { .. } => "PeerExited".into(),
        ControlMsg::Panicked { .. } => "Panicked".into(),
    }
}

/// A fresh job secret and job id (hex) from the OS's random source.
fn job_identity() -> Result<(Secret, String), LaunchError> {
    let mut bytes = [0u8; SECRET_LEN + 8];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        LaunchError::system(
            "cannot get random bytes for the job secret",
            io::Error::other(e.to_string()),
        )
    })?;
    let mut secret = [0u8; SECRET_LEN];
    secret.copy_from_slice(&bytes[..SECRET_LEN]);
    let id = bytes[SECRET_LEN..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((secret, id))
}

/// `--wdir` must be an existing directory.
fn check_dir(dir: &Path) -> Result<(), LaunchError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(LaunchError::WorkDir {
            path: dir.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        }),
        Err(source) => Err(LaunchError::WorkDir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
