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
//! Hosts: the policy sees every host of the job through the [`Host`] trait — the ranks
//! forked on this machine ([`LocalHost`]) and those a proxy runs on another one
//! ([`RemoteHost`](crate::remote::RemoteHost)) — and treats them alike: peer tables and
//! exit notices go to every host, signals too, stdin goes to the host of rank 0, and a
//! host whose connection is lost counts as all its ranks having been killed (their peers
//! are told, the job ends with [`exit_code::HOST_LOST`]). Before any rank starts
//! anywhere, every host checks the program (the launcher for this machine, each proxy
//! for its own) and the job fails naming the host if one cannot run it.
//!
//! The loop is a plain `poll(2)` over the signalfd, pirun's stdin and the descriptors of
//! the hosts; it sleeps in the kernel until something happens or the next deadline
//! (timeout, grace period, heartbeat) comes, so a blocked `pirun` uses no CPU. It runs on
//! the main thread, which lives for the whole job: `PR_SET_PDEATHSIG` fires when the
//! thread that spawned a rank exits, so ranks must never be spawned from a short-lived
//! thread.

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pirun::contract::{ControlMsg, ExitKind, PeerInfo, Secret, SECRET_LEN};

use crate::alloc::{Allocation, Placement};
use crate::cli::Cli;
use crate::error::{exit_code, LaunchError};
use crate::host::{Host, HostEvent, HostLaunch, HostToken, LocalHost, OutputMode};
use crate::output::{report, OutputSink, Terminal};
use crate::poller::{Poller, READ};
use crate::remote::{self, HostError};
use crate::signals::{self, Signals};
use crate::wire::{Bytes, JobSpec, WireOutput};

/// How long to keep reading output after every rank has ended and the leftovers of
/// their process groups were killed, in case something escaped the group and holds a pipe.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// The same with remote hosts: their proxies drain for [`DRAIN_LIMIT`] themselves.
const REMOTE_DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// Runs the job the command line describes; returns pirun's exit code.
pub fn run(cli: &Cli) -> Result<i32, LaunchError> {
    run_with_sink(cli, Box::new(Terminal::new(cli.tag_output)))
}

/// [`run`] with the ranks' output going to `sink` (`pirun bench` reads rank 0's report
/// lines out of it) instead of pirun's stdout and stderr.
pub fn run_with_sink(cli: &Cli, sink: Box<dyn OutputSink>) -> Result<i32, LaunchError> {
    let signals = Signals::install()
        .map_err(|e| LaunchError::system("cannot set up signal handling (signalfd)", e))?;
    let started = Instant::now();
    let (alloc, placements) = allocate(cli)?;
    let size = placements.len() as u32;
    let exports = cli.exports()?;
    let (arg0, args) = cli.command.split_first().ok_or(LaunchError::NoRanks)?;
    let (secret, job_id) = job_identity()?;

    // Which ranks go where; only hosts with ranks take part.
    let mut ranks_of: Vec<Vec<(u32, u32)>> = vec![Vec::new(); alloc.hosts.len()];
    let mut host_of_rank = vec![0usize; size as usize];
    for p in &placements {
        ranks_of[p.host].push((p.rank, p.local_rank));
        host_of_rank[p.rank as usize] = p.host;
    }
    let used: Vec<usize> = (0..alloc.hosts.len())
        .filter(|&h| !ranks_of[h].is_empty())
        .collect();
    let (local, remote): (Vec<usize>, Vec<usize>) =
        used.iter().partition(|&&h| alloc.hosts[h].is_local());
    let stdin_host = host_of_rank[0];

    // This machine checks the program first (and reads it for --preload-binary).
    let local_name = local.first().map(|&h| alloc.hosts[h].name.clone());
    let local_program = program_here(cli, arg0, &exports, &alloc, &local, &remote)?;
    let output = output_mode(cli, !local.is_empty())?;

    // The remote hosts: every proxy starts now, in parallel, and checks the program.
    let mut remotes = Vec::new();
    if !remote.is_empty() {
        let spec = |i: usize, shared: &remote::Shared| {
            let h = remote[i];
            JobSpec {
                secret,
                job_id: job_id.clone(),
                host: alloc.hosts[h].name.clone(),
                size,
                ranks: ranks_of[h].clone(),
                program: Bytes::os(arg0),
                args: args.iter().map(|a| Bytes::os(a)).collect(),
                env: shared.env.clone(),
                wdir: shared.wdir.clone(),
                wdir_explicit: shared.wdir_explicit,
                stdin_rank: (h == stdin_host).then_some(0),
                output: match &output {
                    OutputMode::Forward => WireOutput::Forward,
                    OutputMode::Files(dir) => {
                        WireOutput::Files(Bytes::os(absolute(dir).as_os_str()))
                    }
                },
                iface: cli.iface.clone(),
                preload: shared.preload.clone(),
                array: None,
            }
        };
        let program = local_program.as_deref();
        let names = remote.iter().map(|&h| alloc.hosts[h].name.as_str());
        match remote::start_all(cli, names, program, &exports, (&signals, started), spec)? {
            Ok(started) => remotes = started,
            Err(code) => return Ok(code),
        }
    }

    // Addresses: loopback while the job stays on this machine; across hosts, addresses
    // the other hosts can reach.
    let across = used.len() > 1 || !remote.is_empty();
    for (r, &h) in remotes.iter().zip(&remote) {
        let addr = r.bind_addr().expect("prepared");
        if across && !crate::iface::is_routable(addr) {
            return Err(HostError::Address {
                host: alloc.hosts[h].name.clone(),
                detail: format!(
                    "its ranks would advertise {addr}, which the other hosts cannot reach \
                     (pirun reached the host over that address)"
                ),
            }
            .into());
        }
        if cli.verbose {
            report(&format!(
                "host {}: program {} checked for {} rank{}, binding {addr}",
                alloc.hosts[h].name,
                r.program().unwrap_or("?"),
                ranks_of[h].len(),
                if ranks_of[h].len() == 1 { "" } else { "s" }
            ));
        }
    }
    let local_bind = if remote.is_empty() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else if local.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED) // unused: no ranks here
    } else {
        remote::local_bind_addr(
            cli.iface.as_deref(),
            &remotes,
            local_name.as_deref().unwrap_or("?"),
        )?
    };

    // Start: this machine's ranks, then every proxy's.
    let mut hosts: Vec<Box<dyn Host>> = Vec::with_capacity(used.len());
    let mut host_index = vec![usize::MAX; alloc.hosts.len()];
    for &h in &local {
        let launch = HostLaunch {
            host: alloc.hosts[h].name.clone(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bind_addr: local_bind,
            size,
            job_id: job_id.clone(),
            secret,
            program: local_program.clone().expect("checked above"),
            arg0: arg0.clone(),
            args: args.to_vec(),
            env: exports.clone(),
            wdir: cli.wdir.clone(),
            ranks: ranks_of[h].clone(),
            stdin_rank: (h == stdin_host).then_some(0),
            output: output.clone(),
        };
        let host = LocalHost::spawn(&launch)?;
        if cli.verbose {
            let pids: Vec<String> = host.pids().map(|(r, p)| format!("{r}:{p}")).collect();
            report(&format!(
                "job {job_id}: started {} of {size} ranks of `{}` on host {} (rank:pid {}), \
                 binding {local_bind}",
                launch.ranks.len(),
                launch.program.display(),
                host.name(),
                pids.join(" ")
            ));
        }
        host_index[h] = hosts.len();
        hosts.push(Box::new(host));
    }
    for (mut r, &h) in remotes.into_iter().zip(&remote) {
        r.start_ranks();
        host_index[h] = hosts.len();
        hosts.push(Box::new(r));
    }

    let mut job = Job {
        verbose: cli.verbose,
        grace: cli.grace,
        timeout: cli.timeout,
        host_names: placements
            .iter()
            .map(|p| alloc.hosts[p.host].name.clone())
            .collect(),
        rank_host: host_of_rank.iter().map(|&h| host_index[h]).collect(),
        drain_limit: if remote.is_empty() {
            DRAIN_LIMIT
        } else {
            REMOTE_DRAIN_LIMIT
        },
        stdin_host: host_index[stdin_host],
        signals,
        hosts,
        sink,
        ready: vec![None; size as usize],
        ready_count: 0,
        panics: vec![None; size as usize],
        ending: None,
        exit_code: 0,
        stdin_open: true,
        started,
    };
    job.run()
}

/// The allocation the command line asks for (reported with `-v`) and the placement of
/// the ranks, or of the task slots of an array, on it.
pub(crate) fn allocate(cli: &Cli) -> Result<(Allocation, Vec<Placement>), LaunchError> {
    let alloc = Allocation::resolve(cli.hostfile.as_deref(), cli.hosts.as_deref(), &|k| {
        std::env::var(k).ok()
    })?;
    if cli.verbose {
        report(&alloc.to_string());
    }
    let placements = alloc.map(cli.ranks, cli.map_by, cli.npernode, cli.oversubscribe)?;
    Ok((alloc, placements))
}

/// The program as found on this machine, checked, when anything runs here (the `local`
/// hosts) or it is to be preloaded onto the `remote` ones; `None` otherwise.
pub(crate) fn program_here(
    cli: &Cli,
    arg0: &OsString,
    exports: &[(OsString, OsString)],
    alloc: &Allocation,
    local: &[usize],
    remote: &[usize],
) -> Result<Option<PathBuf>, LaunchError> {
    let preloading = cli.preload_binary && !remote.is_empty();
    if local.is_empty() && !preloading {
        return Ok(None);
    }
    let here = local
        .first()
        .map(|&h| alloc.hosts[h].name.clone())
        .map_or_else(crate::alloc::hostname, Ok)
        .map_err(|e| LaunchError::system("cannot determine this host's name", e))?;
    check_local_program(cli, arg0, exports, &here, !local.is_empty()).map(Some)
}

/// Resolves the program on this machine and checks it can run here (found,
/// executable, built for this CPU). `--wdir` must exist if ranks run here.
fn check_local_program(
    cli: &Cli,
    arg0: &OsString,
    exports: &[(OsString, OsString)],
    here: &str,
    ranks_here: bool,
) -> Result<PathBuf, LaunchError> {
    if let (Some(dir), true) = (&cli.wdir, ranks_here) {
        check_dir(dir)?;
    }
    let path_var = exports
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"));
    let wdir = cli.wdir.as_deref().filter(|_| ranks_here);
    let program = crate::program::resolve_program(arg0, wdir, path_var.as_deref())?;
    crate::program::check_machine(&program, &arg0.to_string_lossy(), here)?;
    Ok(program)
}

/// `--output-dir` (created here if ranks run here; each proxy creates it on its host).
fn output_mode(cli: &Cli, ranks_here: bool) -> Result<OutputMode, LaunchError> {
    Ok(match &cli.output_dir {
        Some(dir) => {
            if ranks_here {
                std::fs::create_dir_all(dir).map_err(|source| LaunchError::OutputDir {
                    path: dir.clone(),
                    source,
                })?;
            }
            OutputMode::Files(dir.clone())
        }
        None => OutputMode::Forward,
    })
}

/// `path` made absolute against pirun's working directory (remote hosts have their own).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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
    Host(usize, HostToken),
}

/// The state of a running job.
struct Job {
    verbose: bool,
    grace: Duration,
    timeout: Option<Duration>,
    /// Host name of each rank.
    host_names: Vec<String>,
    /// Index into `hosts` of each rank's host.
    rank_host: Vec<usize>,
    drain_limit: Duration,
    /// Index into `hosts` of rank 0's host, which gets pirun's stdin.
    stdin_host: usize,
    signals: Signals,
    hosts: Vec<Box<dyn Host>>,
    sink: Box<dyn OutputSink>,
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
            let tick = self.check_deadlines(now, &mut events);
            self.on_events(&mut events);
            if self.hosts.iter().all(|h| h.all_exited()) {
                let until = *drain_until.get_or_insert_with(|| {
                    // Whatever the ranks left behind in their process groups goes now.
                    for h in &mut self.hosts {
                        h.finish();
                    }
                    now + self.drain_limit
                });
                if self.hosts.iter().all(|h| !h.output_open()) || now >= until {
                    break;
                }
            }

            poller.clear();
            poller.add(self.signals_fd(), READ, Token::Signals);
            let stdin_host = &self.hosts[self.stdin_host];
            if self.stdin_open && !stdin_host.has_stdin() {
                self.stdin_open = false;
            }
            if self.stdin_open && stdin_host.wants_stdin() {
                poller.add(libc::STDIN_FILENO, READ, Token::Stdin);
            }
            for (i, h) in self.hosts.iter().enumerate() {
                h.interest(&mut |fd, ev, t| poller.add(fd, ev, Token::Host(i, t)));
            }
            let wait = [self.next_deadline(drain_until), tick]
                .into_iter()
                .flatten()
                .min()
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
                    Token::Host(i, t) => {
                        let mut host_events = Vec::new();
                        self.hosts[i].handle(t, revents, &mut *self.sink, &mut host_events);
                        events.extend(host_events.into_iter().map(|e| (i, e)));
                    }
                }
            }
            self.on_events(&mut events);
        }
        for h in &mut self.hosts {
            h.close_output(&mut *self.sink);
        }
        for h in &mut self.hosts {
            h.reap_all();
        }
        Ok(self.exit_code)
    }

    fn on_events(&mut self, events: &mut Vec<(usize, HostEvent)>) {
        // Handling an event may produce more (a lost host's ranks): loop until quiet.
        while !events.is_empty() {
            for (host, event) in std::mem::take(events) {
                self.on_host_event(host, event);
            }
        }
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

    /// Timeout, grace period and the hosts' own timers; returns the hosts' next wake-up.
    fn check_deadlines(
        &mut self,
        now: Instant,
        events: &mut Vec<(usize, HostEvent)>,
    ) -> Option<Instant> {
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
                self.signal_all(libc::SIGKILL);
            }
        }
        let mut next: Option<Instant> = None;
        for (i, h) in self.hosts.iter_mut().enumerate() {
            let mut host_events = Vec::new();
            if let Some(t) = h.tick(now, &mut host_events) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            events.extend(host_events.into_iter().map(|e| (i, e)));
        }
        next
    }

    fn signal_all(&mut self, sig: i32) {
        for h in &mut self.hosts {
            h.signal(sig);
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
        self.signal_all(sig);
    }

    fn on_signals(&mut self, events: &mut Vec<(usize, HostEvent)>) -> Result<(), LaunchError> {
        let received = self
            .signals
            .drain()
            .map_err(|e| LaunchError::system("cannot read the signalfd", e))?;
        for sig in received {
            if sig == libc::SIGCHLD {
                for (i, h) in self.hosts.iter_mut().enumerate() {
                    let mut host_events = Vec::new();
                    h.reap(&mut *self.sink, &mut host_events);
                    events.extend(host_events.into_iter().map(|e| (i, e)));
                }
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
                self.signal_all(libc::SIGKILL);
            }
        }
        Ok(())
    }

    fn on_stdin(&mut self, buf: &mut [u8]) {
        // SAFETY: reading into a valid buffer. Readiness was reported by poll, so a
        // blocking stdin does not block here.
        let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
        let host = &mut self.hosts[self.stdin_host];
        if n > 0 {
            host.feed_stdin(&buf[..n as usize]);
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
        host.end_stdin();
    }

    fn on_host_event(&mut self, host: usize, event: HostEvent) {
        match event {
            HostEvent::Control { rank, msg } => self.on_control(rank, msg),
            HostEvent::ControlBroken { rank, reason } => report(&format!(
                "rank {rank} on host {} sent a malformed control message ({reason}); \
                 closed its control channel, the job goes on",
                self.host_name(rank)
            )),
            HostEvent::Exited { rank, pid, how } => self.on_exit(rank, pid, how),
            HostEvent::Started { pids } => {
                if self.verbose {
                    let pids: Vec<String> = pids.iter().map(|(r, p)| format!("{r}:{p}")).collect();
                    report(&format!(
                        "started ranks on host {} (rank:pid {})",
                        self.hosts[host].name(),
                        pids.join(" ")
                    ));
                }
            }
            HostEvent::Failed { message, code } => {
                if self.ending.is_none() {
                    report(&format!(
                        "host {}: {message}; ending the job",
                        self.hosts[host].name()
                    ));
                    self.end_job(code, libc::SIGTERM);
                } else if self.verbose {
                    report(&format!("host {}: {message}", self.hosts[host].name()));
                }
            }
            HostEvent::Lost { reason, ranks } => self.on_lost(host, &reason, &ranks),
            HostEvent::Tasks(_) => {} // job arrays only (crate::array)
        }
    }

    /// A host is out of reach: its ranks count as killed. Their peers are told (so that
    /// a rank waiting for one of them fails instead of hanging) and the job ends.
    fn on_lost(&mut self, host: usize, reason: &str, ranks: &[u32]) {
        let name = self.hosts[host].name().to_string();
        for &rank in ranks {
            for h in &mut self.hosts {
                h.send_peer_exited(rank, ExitKind::Signal(libc::SIGKILL));
            }
        }
        if ranks.is_empty() {
            if self.verbose {
                report(&format!(
                    "lost host {name} ({reason}) after its ranks ended"
                ));
            }
            return;
        }
        if self.ending.is_none() {
            let list: Vec<String> = ranks.iter().map(u32::to_string).collect();
            report(&format!(
                "lost host {name} ({reason}); its rank{} {} cannot be reached; ending the job",
                if ranks.len() == 1 { "" } else { "s" },
                list.join(", ")
            ));
            self.end_job(exit_code::HOST_LOST, libc::SIGTERM);
        } else if self.verbose {
            report(&format!("lost host {name} ({reason})"));
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
                let host = self.rank_host[rank as usize];
                self.hosts[host].close_control(rank);
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
        for h in &mut self.hosts {
            h.send_peers(&peers);
        }
        if self.verbose {
            report(&format!(
                "fence complete after {:.3} s: every rank is ready; sent the peer table",
                self.started.elapsed().as_secs_f64()
            ));
        }
    }

    fn on_exit(&mut self, rank: u32, pid: u32, how: ExitKind) {
        if self.verbose {
            report(&format!(
                "rank {rank} (pid {pid} on host {}) ended: {how}",
                self.host_name(rank)
            ));
        }
        for h in &mut self.hosts {
            h.send_peer_exited(rank, how);
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
pub(crate) fn job_identity() -> Result<(Secret, String), LaunchError> {
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
pub(crate) fn check_dir(dir: &Path) -> Result<(), LaunchError> {
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
