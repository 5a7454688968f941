//! The launcher's side of a job array: setting up the hosts (the same allocation, program
//! checks and proxies as a job of ranks), then one `poll(2)` loop on the main thread that
//! hands out tasks, collects their output and exits, and decides retries, lost hosts and
//! the end of the run.
//!
//! Dispatch is dynamic: whenever a host has a free slot it gets the next task — first a
//! task waiting for a retry whose last attempt failed elsewhere (if another host is
//! alive, a retry never goes back to the host it failed on), then the next one of the
//! array. One task per slot: queueing a second one on each remote host, to hide the
//! round trip, made no measurable difference on the testbed (1850–1960 tasks/s either
//! way: the hosts' CPUs are the limit) and would let a slow board sit on work a free
//! one could do.
//!
//! Failures: a task that exits non-zero (or is killed, or cannot be started) is reported
//! in one line naming its index, host and code; with `--retries K` it is rerun up to K
//! times. A host whose proxy connection dies has its tasks rerun on the other hosts;
//! this is not counted against `--retries` (the task did not fail), and the summary
//! says how many were rerun so. The stdout of an attempt that ends in a rerun is dropped
//! unless it was already printed (it was the earliest unfinished task). Exit code: 0, or
//! 1 if a task failed for good, 128+S after signal S (the tasks get S, then SIGKILL after
//! `--grace`), 124 after `--timeout`, 255 if every host was lost.

use std::collections::{HashMap, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use pirun::contract::ExitKind;

use super::output::{
    window_limit, Finished, Mode, Screen, TaskFiles, Window, FLUSH_AT, HOLD_PER_TASK, HOLD_TOTAL,
};
use super::progress::{Progress, REFRESH};
use super::protocol::{ArraySpec, TaskEvent, TaskOrder, TaskStart};
use super::runner::{TaskContext, TaskRunner, TaskToken};
use super::source::{self, Input, Source};
use super::template::Template;
use super::ArrayError;
use crate::cli::Cli;
use crate::error::{exit_code, LaunchError};
use crate::host::{Host, HostEvent, HostToken};
use crate::output::{report, OutputSink, Stream};
use crate::poller::{Poller, READ};
use crate::remote::{self, RemoteHost};
use crate::signals::{self, Signals};
use crate::wire::{Bytes, JobSpec, WireOutput};

/// How long remote hosts get to say `Done` at the end.
const REMOTE_DRAIN_LIMIT: Duration = Duration::from_secs(3);
/// How often output is written while the progress display is shown (each write
/// redraws it).
const SCREEN_INTERVAL: Duration = Duration::from_millis(50);

/// Sets up the hosts and runs the array; returns pirun's exit code.
pub fn run(cli: &Cli) -> Result<i32, ArrayError> {
    let signals = Signals::install()
        .map_err(|e| LaunchError::system("cannot set up signal handling (signalfd)", e))?;
    let started = Instant::now();
    let (arg0, args) = cli.command.split_first().ok_or(LaunchError::NoRanks)?;
    if Template::has_placeholder(arg0.as_bytes()) {
        return Err(ArrayError::PlaceholderInProgram {
            program: arg0.to_string_lossy().into_owned(),
        });
    }
    let template = Template::new(args);
    let mut source = match (&cli.array, &cli.array_file) {
        (Some(spec), _) => Source::indices(spec),
        (None, Some(path)) => Source::file(path)?,
        (None, None) => return Err(LaunchError::NoRanks.into()),
    };
    // The first task now: an empty --array-file fails before any host is contacted.
    let first = source.next_input()?;

    let (alloc, placements) = crate::job::allocate(cli)?;
    let mut slots = vec![0usize; alloc.hosts.len()];
    for p in &placements {
        slots[p.host] += 1;
    }
    let used: Vec<usize> = (0..alloc.hosts.len()).filter(|&h| slots[h] > 0).collect();
    let (local, remote): (Vec<usize>, Vec<usize>) =
        used.iter().partition(|&&h| alloc.hosts[h].is_local());
    let exports = cli.exports()?;
    let (secret, job_id) = crate::job::job_identity()?;

    let local_program = crate::job::program_here(cli, arg0, &exports, &alloc, &local, &remote)?;
    let files = match &cli.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LaunchError::OutputDir {
                path: dir.clone(),
                source,
            })?;
            Some(TaskFiles::new(dir))
        }
        None => None,
    };
    let mode = match (&files, cli.unordered) {
        (Some(_), _) => Mode::Files,
        (None, true) => Mode::Unordered,
        (None, false) => Mode::Ordered,
    };

    // Every remote host's proxy starts now, in parallel, and checks the program.
    let mut remotes = Vec::new();
    if !remote.is_empty() {
        let spec = |i: usize, shared: &remote::Shared| {
            let h = remote[i];
            JobSpec {
                secret,
                job_id: job_id.clone(),
                host: alloc.hosts[h].name.clone(),
                size: 0,
                ranks: Vec::new(),
                program: Bytes::os(arg0),
                args: Vec::new(),
                env: shared.env.clone(),
                wdir: shared.wdir.clone(),
                wdir_explicit: shared.wdir_explicit,
                stdin_rank: None,
                output: WireOutput::Forward,
                iface: None,
                preload: shared.preload.clone(),
                array: Some(ArraySpec {
                    slots: slots[h] as u32,
                }),
            }
        };
        let program = local_program.as_deref();
        let names = remote.iter().map(|&h| alloc.hosts[h].name.as_str());
        match remote::start_all(cli, names, program, &exports, (&signals, started), spec)? {
            Ok(started) => remotes = started,
            Err(code) => return Ok(code),
        }
        for r in &mut remotes {
            r.start_ranks();
        }
    }

    let mut nodes = Vec::with_capacity(used.len());
    for &h in &local {
        let runner = TaskRunner::new(
            TaskContext {
                host: alloc.hosts[h].name.clone(),
                program: local_program.clone().expect("checked above"),
                arg0: arg0.clone(),
                env: exports.clone(),
                wdir: cli.wdir.clone(),
            },
            slots[h],
        )?;
        nodes.push(Node::new(
            &alloc.hosts[h].name,
            slots[h],
            Worker::Local(Box::new(runner)),
        ));
    }
    for (r, &h) in remotes.into_iter().zip(&remote) {
        nodes.push(Node::new(
            &alloc.hosts[h].name,
            slots[h],
            Worker::Remote(Box::new(r)),
        ));
    }
    let total_slots: usize = nodes.iter().map(|n| n.slots).sum();
    if cli.verbose {
        let list: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}:{}", n.name, n.slots))
            .collect();
        report(&format!(
            "array: {total_slots} task slots on {} host{} ({})",
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" },
            list.join(", ")
        ));
    }
    let total = source::count(cli.array.as_ref(), cli.array_file.as_deref());
    let progress = Progress::new(total);
    let now = Instant::now();
    let run = Run {
        nodes,
        source,
        lookahead: first,
        source_done: false,
        template,
        retries: cli.retries,
        files,
        mode,
        live: HashMap::new(),
        retry: VecDeque::new(),
        window: Window::default(),
        window_limit: window_limit(total_slots),
        next_seq: 0,
        held: 0,
        stats: Stats::default(),
        screen: Screen::new(cli.tag_output),
        progress,
        signals,
        ending: None,
        grace: cli.grace,
        timeout: cli.timeout,
        started,
        rr: 0,
        last_flush: now,
        last_refresh: now,
        total,
        host_events: Vec::new(),
        task_events: Vec::new(),
    };
    run.run()
}

/// Where a host's tasks run.
enum Worker {
    /// In this process (the launcher's host).
    Local(Box<TaskRunner>),
    /// Behind a proxy.
    Remote(Box<RemoteHost>),
}

/// One host of the array.
struct Node {
    name: String,
    worker: Worker,
    slots: usize,
    /// Tasks started there that have not ended.
    in_flight: usize,
    /// `false` once the host is lost.
    alive: bool,
    /// Orders for a remote host, sent in one batch per turn of the loop.
    orders: Vec<TaskOrder>,
}

impl Node {
    fn new(name: &str, slots: usize, worker: Worker) -> Self {
        Node {
            name: name.to_string(),
            worker,
            slots,
            in_flight: 0,
            alive: true,
            orders: Vec::new(),
        }
    }

    fn order(&mut self, order: TaskOrder) {
        match &mut self.worker {
            Worker::Local(r) => r.order(order),
            Worker::Remote(_) => self.orders.push(order),
        }
    }

    fn signal(&mut self, sig: i32) {
        if !self.alive {
            return;
        }
        match &mut self.worker {
            Worker::Local(r) => r.signal(sig),
            Worker::Remote(r) => Host::signal(&mut **r, sig),
        }
    }
}

/// A task that has been handed out and is not over: running, or waiting for a retry.
struct Live {
    index: u64,
    args: Vec<Bytes>,
    /// Where it runs (`None`: waiting to be started again).
    host: Option<usize>,
    /// Attempts that failed so far.
    failures: u32,
    /// The host of the last failed attempt.
    avoid: Option<usize>,
    /// Stdout held back (see [`super::output`]).
    held: Vec<u8>,
    paused: bool,
    mid_line: bool,
    /// `--output-dir`: this attempt has started its `.out` / `.err` file.
    files: [bool; 2],
}

#[derive(Debug, Default)]
struct Stats {
    done: u64,
    failed: u64,
    retried: u64,
    rerun: u64,
    stopped: u64,
}

/// The run is being ended.
struct Ending {
    code: i32,
    /// For the summary: `SIGINT`, `--timeout`, ….
    why: String,
    /// When the tasks still running get SIGKILL (`None`: sent).
    kill_at: Option<Instant>,
}

#[derive(Clone, Copy)]
enum Token {
    Signals,
    Local(usize, TaskToken),
    Remote(usize, HostToken),
}

/// Rank output never comes in a job array; a remote host's sink drops it.
struct Discard;

impl OutputSink for Discard {
    fn write_lines(&mut self, _rank: u32, _stream: Stream, _lines: &[u8]) {}
}

struct Run {
    nodes: Vec<Node>,
    source: Source,
    lookahead: Option<Input>,
    source_done: bool,
    template: Template,
    retries: u32,
    mode: Mode,
    files: Option<TaskFiles>,
    live: HashMap<u64, Live>,
    /// Tasks waiting to be started again, earliest first.
    retry: VecDeque<u64>,
    window: Window,
    window_limit: usize,
    next_seq: u64,
    /// Stdout bytes held (live tasks and the window).
    held: usize,
    stats: Stats,
    screen: Screen,
    progress: Progress,
    signals: Signals,
    ending: Option<Ending>,
    grace: Duration,
    timeout: Option<Duration>,
    started: Instant,
    /// Which host is offered tasks first in the next turn.
    rr: usize,
    last_flush: Instant,
    last_refresh: Instant,
    total: Option<u64>,
    host_events: Vec<HostEvent>,
    task_events: Vec<TaskEvent>,
}

impl Run {
    fn run(mut self) -> Result<i32, ArrayError> {
        let mut poller = Poller::default();
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            let wake = self.check_deadlines(now)?;
            // A local start can fail at once (and be retried at once): until quiet.
            loop {
                self.dispatch()?;
                if !self.local_events() {
                    break;
                }
                self.collect_local()?;
            }
            self.send_orders();
            self.show(now, false);
            // Ending the run (stdout closed) cancels what waits on this host.
            self.collect_local()?;
            if self.is_over() {
                break;
            }
            poller.clear();
            {
                use std::os::fd::AsRawFd;
                poller.add(self.signals.as_raw_fd(), READ, Token::Signals);
            }
            for (i, node) in self.nodes.iter().enumerate() {
                if !node.alive {
                    continue;
                }
                match &node.worker {
                    Worker::Local(r) => {
                        r.interest(&mut |fd, ev, t| poller.add(fd, ev, Token::Local(i, t)))
                    }
                    Worker::Remote(r) => {
                        r.interest(&mut |fd, ev, t| poller.add(fd, ev, Token::Remote(i, t)))
                    }
                }
            }
            poller
                .wait(wake.map(|d| d.saturating_duration_since(now)))
                .map_err(|e| LaunchError::system("poll failed", e))?;
            ready.clear();
            ready.extend(poller.ready());
            for &(token, revents) in &ready {
                match token {
                    Token::Signals => self.on_signals()?,
                    Token::Local(i, t) => {
                        if let Worker::Local(r) = &mut self.nodes[i].worker {
                            r.handle(t);
                        }
                    }
                    Token::Remote(i, t) => {
                        if let Worker::Remote(r) = &mut self.nodes[i].worker {
                            r.handle(t, revents, &mut Discard, &mut self.host_events);
                        }
                        self.on_host_events(i)?;
                    }
                }
            }
            self.collect_local()?;
        }
        self.finish()
    }

    // ----- time -----------------------------------------------------------------------

    /// `--timeout`, the grace period, the hosts' timers; returns the next wake-up.
    fn check_deadlines(&mut self, now: Instant) -> Result<Option<Instant>, ArrayError> {
        let mut next: Vec<Option<Instant>> = Vec::new();
        if let (None, Some(t)) = (&self.ending, self.timeout) {
            if now >= self.started + t {
                self.begin_end(
                    exit_code::TIMEOUT,
                    libc::SIGTERM,
                    "--timeout",
                    Some(format!(
                        "the array ran longer than {t:?} (--timeout); stopping the tasks \
                         (exit code {})",
                        exit_code::TIMEOUT
                    )),
                );
            } else {
                next.push(Some(self.started + t));
            }
        }
        if let Some(kill_at) = self.ending.as_ref().and_then(|e| e.kill_at) {
            if now >= kill_at {
                if let Some(e) = &mut self.ending {
                    e.kill_at = None;
                }
                for n in &mut self.nodes {
                    n.signal(libc::SIGKILL);
                }
            } else {
                next.push(Some(kill_at));
            }
        }
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                continue;
            }
            match &mut self.nodes[i].worker {
                Worker::Local(r) => next.push(r.tick(now)),
                Worker::Remote(r) => next.push(r.tick(now, &mut self.host_events)),
            }
            self.on_host_events(i)?;
        }
        self.collect_local()?;
        if self.progress.visible() {
            next.push(Some(self.last_refresh + REFRESH));
            if self.screen.pending() > 0 {
                next.push(Some(self.last_flush + SCREEN_INTERVAL));
            }
        }
        Ok(next.into_iter().flatten().min())
    }

    /// Writes the output gathered (rate-limited while the progress display is shown)
    /// and updates the display.
    fn show(&mut self, now: Instant, force: bool) {
        let running = self.nodes.iter().map(|n| n.in_flight).sum();
        self.progress.update(
            self.stats.done + self.stats.failed,
            running,
            self.stats.failed,
        );
        if !self.progress.visible()
            || force
            || self.screen.pending() >= FLUSH_AT
            || now >= self.last_flush + SCREEN_INTERVAL
        {
            self.screen.flush(&self.progress);
            self.last_flush = now;
        }
        if self.progress.visible() && now >= self.last_refresh + REFRESH {
            self.progress.tick();
            self.last_refresh = now;
        }
        if self.screen.stdout_broken() {
            // Nobody reads the output any more (`pirun --array ... | head`): stop, as a
            // shell loop would on SIGPIPE.
            self.begin_end(
                exit_code::SIGNAL_BASE + libc::SIGPIPE,
                libc::SIGTERM,
                "stdout closed",
                None,
            );
        }
    }

    fn is_over(&self) -> bool {
        if self.ending.is_some() {
            return self.nodes.iter().all(|n| !n.alive || n.in_flight == 0);
        }
        self.source_done && self.live.is_empty()
    }

    // ----- handing out tasks ----------------------------------------------------------

    fn dispatch(&mut self) -> Result<(), ArrayError> {
        if self.ending.is_some() || self.nodes.is_empty() {
            return Ok(());
        }
        let n = self.nodes.len();
        for k in 0..n {
            let h = (self.rr + k) % n;
            while self.nodes[h].alive && self.nodes[h].in_flight < self.nodes[h].slots {
                let Some(seq) = self.next_task(h)? else {
                    break;
                };
                self.start(h, seq);
            }
        }
        self.rr = (self.rr + 1) % n;
        self.start_head();
        Ok(())
    }

    /// Ordered output: the earliest unfinished task always runs. If it waits for a
    /// retry while every slot is taken (by tasks that may be paused, waiting for it),
    /// it starts anyway, one over the capacity of the least busy host.
    fn start_head(&mut self) {
        if self.mode != Mode::Ordered {
            return;
        }
        let head = self.window.head();
        let Some(avoid) = self
            .live
            .get(&head)
            .filter(|l| l.host.is_none())
            .map(|l| l.avoid)
        else {
            return;
        };
        let best = (0..self.nodes.len())
            .filter(|&h| self.nodes[h].alive)
            .min_by_key(|&h| (Some(h) == avoid, self.nodes[h].in_flight));
        if let Some(h) = best {
            self.retry.retain(|&s| s != head);
            self.start(h, head);
        }
    }

    /// The next task for host `h`: a retry that may go there, else a new one.
    fn next_task(&mut self, h: usize) -> Result<Option<u64>, ArrayError> {
        let others = self
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| i != h && n.alive);
        let live = &self.live;
        if let Some(pos) = self
            .retry
            .iter()
            .position(|s| !others || live.get(s).is_none_or(|l| l.avoid != Some(h)))
        {
            return Ok(self.retry.remove(pos));
        }
        if self.source_done {
            return Ok(None);
        }
        if self.mode == Mode::Ordered
            && (self.window.len() >= self.window_limit || self.held >= HOLD_TOTAL)
        {
            return Ok(None);
        }
        let input = match self.lookahead.take() {
            Some(input) => input,
            None => match self.source.next_input()? {
                Some(input) => input,
                None => {
                    self.source_done = true;
                    return Ok(None);
                }
            },
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.mode == Mode::Ordered {
            self.window.push();
        }
        self.live.insert(
            seq,
            Live {
                index: input.index,
                args: self.template.expand(&input.text),
                host: None,
                failures: 0,
                avoid: None,
                held: Vec::new(),
                paused: false,
                mid_line: false,
                files: [false; 2],
            },
        );
        Ok(Some(seq))
    }

    fn start(&mut self, h: usize, seq: u64) {
        let Some(live) = self.live.get_mut(&seq) else {
            return;
        };
        live.host = Some(h);
        live.files = [false; 2];
        live.paused = false;
        let order = TaskOrder::Start(TaskStart {
            seq,
            index: live.index,
            args: live.args.clone(),
        });
        let node = &mut self.nodes[h];
        node.in_flight += 1;
        node.order(order);
    }

    /// Sends each remote host the orders gathered for it, in one message.
    fn send_orders(&mut self) {
        for node in &mut self.nodes {
            if let (Worker::Remote(r), false) = (&mut node.worker, node.orders.is_empty()) {
                r.send_tasks(std::mem::take(&mut node.orders));
            }
        }
    }

    // ----- events ---------------------------------------------------------------------

    /// Whether this host's runner has events waiting.
    fn local_events(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(&n.worker, Worker::Local(r) if r.has_events()))
    }

    fn collect_local(&mut self) -> Result<(), ArrayError> {
        for i in 0..self.nodes.len() {
            if let Worker::Local(r) = &mut self.nodes[i].worker {
                if !r.has_events() {
                    continue;
                }
                r.drain_events(&mut self.task_events);
                for ev in std::mem::take(&mut self.task_events) {
                    self.on_task_event(i, ev)?;
                }
            }
        }
        Ok(())
    }

    fn on_host_events(&mut self, h: usize) -> Result<(), ArrayError> {
        for ev in std::mem::take(&mut self.host_events) {
            match ev {
                HostEvent::Tasks(events) => {
                    for e in events {
                        self.on_task_event(h, e)?;
                    }
                }
                HostEvent::Lost { reason, .. } => self.on_lost(h, &reason),
                HostEvent::Failed { message, .. } => self.on_lost(h, &message),
                _ => {}
            }
        }
        Ok(())
    }

    fn on_signals(&mut self) -> Result<(), ArrayError> {
        let received = self
            .signals
            .drain()
            .map_err(|e| LaunchError::system("cannot read the signalfd", e))?;
        for sig in received {
            if sig == libc::SIGCHLD {
                for i in 0..self.nodes.len() {
                    match &mut self.nodes[i].worker {
                        Worker::Local(r) => r.reap(),
                        Worker::Remote(r) => r.reap(&mut Discard, &mut self.host_events),
                    }
                    self.on_host_events(i)?;
                }
                self.collect_local()?;
            } else if self.ending.is_none() {
                let name = signals::name(sig);
                self.begin_end(
                    exit_code::SIGNAL_BASE + sig,
                    sig,
                    &name,
                    Some(format!("received {name}; stopping the tasks on every host")),
                );
            } else {
                self.screen.report(&format!(
                    "received {} again; killing the tasks now",
                    signals::name(sig)
                ));
                if let Some(e) = &mut self.ending {
                    e.kill_at = None;
                }
                for n in &mut self.nodes {
                    n.signal(libc::SIGKILL);
                }
            }
        }
        Ok(())
    }

    fn on_task_event(&mut self, h: usize, ev: TaskEvent) -> Result<(), ArrayError> {
        let seq = ev.seq();
        if self.live.get(&seq).is_none_or(|l| l.host != Some(h)) {
            return Ok(()); // an attempt that no longer counts
        }
        match ev {
            TaskEvent::Output {
                stderr: true, data, ..
            } => self.on_stderr(seq, &data.0),
            TaskEvent::Output { data, .. } => self.on_stdout(h, seq, data.0),
            TaskEvent::Exited { how, out, .. } => {
                // The last stdout of an attempt that will be retried is not printed.
                let retried = how != ExitKind::Code(0)
                    && self.ending.is_none()
                    && self
                        .live
                        .get(&seq)
                        .is_some_and(|l| l.failures < self.retries);
                if !retried {
                    self.on_stdout(h, seq, out.0);
                }
                self.on_end(h, seq, Ok(how));
            }
            TaskEvent::Failed { message, .. } => self.on_end(h, seq, Err(message)),
            TaskEvent::Cancelled { .. } => {
                let node = &mut self.nodes[h];
                node.in_flight = node.in_flight.saturating_sub(1);
                if self.ending.is_some() {
                    self.drop_live(seq);
                } else if let Some(l) = self.live.get_mut(&seq) {
                    l.host = None;
                    self.retry.push_front(seq);
                }
            }
        }
        Ok(())
    }

    fn on_stderr(&mut self, seq: u64, data: &[u8]) {
        let Some(live) = self.live.get_mut(&seq) else {
            return;
        };
        let result = match &self.files {
            Some(files) => files.write(live.index, true, &mut live.files[1], data),
            None => {
                self.screen.stderr(live.index, data);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.output_failed(e);
        }
    }

    fn on_stdout(&mut self, h: usize, seq: u64, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let head = self.window.head();
        let Some(live) = self.live.get_mut(&seq) else {
            return;
        };
        match self.mode {
            Mode::Files => {
                let files = self.files.as_ref().expect("files mode");
                if let Err(e) = files.write(live.index, false, &mut live.files[0], &data) {
                    self.output_failed(e);
                }
            }
            Mode::Ordered if seq == head => {
                self.screen.stdout(live.index, &mut live.mid_line, &data);
            }
            Mode::Ordered => {
                self.held += data.len();
                if live.held.is_empty() {
                    live.held = data;
                } else {
                    live.held.extend_from_slice(&data);
                }
                if live.held.len() > HOLD_PER_TASK && !live.paused {
                    live.paused = true;
                    self.nodes[h].order(TaskOrder::Pause(seq));
                }
            }
            Mode::Unordered => {
                self.held += data.len();
                live.held.extend_from_slice(&data);
                if live.held.len() > HOLD_PER_TASK {
                    // Print what is there up to its last newline, so lines stay whole.
                    let cut = live
                        .held
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(live.held.len(), |p| p + 1);
                    let rest = live.held.split_off(cut);
                    let out = std::mem::replace(&mut live.held, rest);
                    self.held -= out.len();
                    self.screen.stdout(live.index, &mut live.mid_line, &out);
                }
            }
        }
    }

    /// A task's attempt ended: done, failed for good, or to be retried.
    fn on_end(&mut self, h: usize, seq: u64, result: Result<ExitKind, String>) {
        let node = &mut self.nodes[h];
        node.in_flight = node.in_flight.saturating_sub(1);
        let Some(live) = self.live.get_mut(&seq) else {
            return;
        };
        if matches!(result, Ok(ExitKind::Code(0))) {
            self.stats.done += 1;
            return self.finalize(seq);
        }
        if self.ending.is_some() {
            self.stats.stopped += 1;
            return self.finalize(seq);
        }
        let what = match &result {
            Ok(ExitKind::Code(c)) => format!("exited with code {c}"),
            Ok(ExitKind::Signal(s)) => {
                format!("was killed by signal {s} ({})", signals::name(*s))
            }
            Err(message) => format!("could not be started: {message}"),
        };
        let host = &self.nodes[h].name;
        let attempts = self.retries + 1;
        if live.failures < self.retries {
            live.failures += 1;
            self.stats.retried += 1;
            self.screen.report(&format!(
                "task {} on {host} {what}; retrying (attempt {} of {attempts})",
                live.index,
                live.failures + 1
            ));
            self.held -= live.held.len();
            live.held = Vec::new();
            live.paused = false;
            live.host = None;
            live.avoid = Some(h);
            self.retry.push_back(seq);
            return;
        }
        self.stats.failed += 1;
        let tail = if self.retries > 0 {
            format!(" (attempt {attempts} of {attempts}); giving up")
        } else {
            String::new()
        };
        self.screen
            .report(&format!("task {} on {host} {what}{tail}", live.index));
        self.finalize(seq);
    }

    /// A task is over for good: its output goes where it belongs.
    fn finalize(&mut self, seq: u64) {
        let Some(mut live) = self.live.remove(&seq) else {
            return;
        };
        match self.mode {
            Mode::Files => {
                let files = self.files.as_ref().expect("files mode");
                if let Err(e) = files.complete(live.index, live.files) {
                    self.output_failed(e);
                }
            }
            Mode::Unordered => {
                self.held -= live.held.len();
                self.screen
                    .stdout(live.index, &mut live.mid_line, &live.held);
                self.screen.end_stdout(&mut live.mid_line);
            }
            Mode::Ordered => {
                if seq == self.window.head() {
                    self.held -= live.held.len();
                    self.screen
                        .stdout(live.index, &mut live.mid_line, &live.held);
                    self.screen.end_stdout(&mut live.mid_line);
                    live.held = Vec::new();
                }
                self.window.finish(
                    seq,
                    Finished {
                        index: live.index,
                        out: live.held,
                        mid_line: live.mid_line,
                    },
                );
                self.advance();
            }
        }
    }

    /// Prints the finished tasks at the front of the window; the earliest unfinished
    /// task's held stdout is printed now and it streams from here on.
    fn advance(&mut self) {
        while let Some(mut f) = self.window.pop_finished() {
            self.held -= f.out.len();
            self.screen.stdout(f.index, &mut f.mid_line, &f.out);
            self.screen.end_stdout(&mut f.mid_line);
        }
        let head = self.window.head();
        if let Some(live) = self.live.get_mut(&head) {
            if !live.held.is_empty() {
                let out = std::mem::take(&mut live.held);
                self.held -= out.len();
                self.screen.stdout(live.index, &mut live.mid_line, &out);
            }
            if live.paused {
                live.paused = false;
                if let Some(h) = live.host {
                    self.nodes[h].order(TaskOrder::Resume(head));
                }
            }
        }
    }

    /// Forgets a task that will not run (the run is ending).
    fn drop_live(&mut self, seq: u64) {
        if let Some(live) = self.live.remove(&seq) {
            self.held -= live.held.len();
        }
    }

    /// Host `h` is out of reach: its tasks run elsewhere.
    fn on_lost(&mut self, h: usize, reason: &str) {
        let node = &mut self.nodes[h];
        if !node.alive {
            return;
        }
        node.alive = false;
        node.in_flight = 0;
        node.orders.clear();
        let name = node.name.clone();
        let mut seqs: Vec<u64> = self
            .live
            .iter()
            .filter(|(_, l)| l.host == Some(h))
            .map(|(&s, _)| s)
            .collect();
        seqs.sort_unstable();
        if self.ending.is_some() {
            self.stats.stopped += seqs.len() as u64;
            for seq in seqs {
                self.drop_live(seq);
            }
            return;
        }
        for &seq in &seqs {
            if let Some(l) = self.live.get_mut(&seq) {
                self.held -= l.held.len();
                l.held = Vec::new();
                l.paused = false;
                l.host = None;
            }
        }
        let n = seqs.len();
        if self.nodes.iter().any(|n| n.alive) {
            self.stats.rerun += n as u64;
            for seq in seqs.into_iter().rev() {
                self.retry.push_front(seq);
            }
            self.screen.report(&format!(
                "lost host {name} ({reason}); {} on the other hosts",
                match n {
                    0 => "its tasks had ended; going on".to_string(),
                    1 => "rerunning its 1 task".to_string(),
                    n => format!("rerunning its {n} tasks"),
                }
            ));
        } else {
            self.stats.stopped += n as u64;
            self.begin_end(
                exit_code::HOST_LOST,
                libc::SIGTERM,
                "every host lost",
                Some(format!(
                    "lost host {name} ({reason}); no host is left to run the tasks"
                )),
            );
        }
    }

    /// An `--output-dir` file cannot be written: the run stops.
    fn output_failed(&mut self, e: ArrayError) {
        if self.ending.is_none() {
            self.screen.report(&e.to_string());
            self.begin_end(
                exit_code::LAUNCH_FAILED,
                libc::SIGTERM,
                "output error",
                None,
            );
        }
    }

    /// Starts ending the run: no new task, `sig` to the running ones, SIGKILL after the
    /// grace period. The first cause decides the exit code.
    fn begin_end(&mut self, code: i32, sig: i32, why: &str, message: Option<String>) {
        if self.ending.is_some() {
            return;
        }
        if let Some(m) = message {
            self.screen.report(&m);
        }
        self.ending = Some(Ending {
            code,
            why: why.to_string(),
            kill_at: Some(Instant::now() + self.grace),
        });
        for n in &mut self.nodes {
            n.signal(sig);
        }
        for seq in std::mem::take(&mut self.retry) {
            self.drop_live(seq);
        }
    }

    // ----- the end --------------------------------------------------------------------

    fn finish(mut self) -> Result<i32, ArrayError> {
        // A stopped run: what finished is printed, in order.
        for mut f in self.window.drain_finished() {
            self.screen.stdout(f.index, &mut f.mid_line, &f.out);
            self.screen.end_stdout(&mut f.mid_line);
        }
        self.show(Instant::now(), true);
        self.finish_remotes();
        for node in &mut self.nodes {
            if let Worker::Remote(r) = &mut node.worker {
                r.reap_all();
            }
        }
        self.nodes.clear(); // the local runner's Drop reaps what is left there
        self.progress.finish();
        let s = &self.stats;
        let secs = self.started.elapsed().as_secs_f64();
        let mut line = format!(
            "{} done, {} failed, {} retried",
            s.done, s.failed, s.retried
        );
        if s.rerun > 0 {
            line.push_str(&format!(", {} rerun after a lost host", s.rerun));
        }
        let head = match &self.ending {
            None => "array".to_string(),
            Some(e) => {
                line.push_str(&format!(", {} stopped", s.stopped));
                if let Some(total) = self.total {
                    let not_run = total.saturating_sub(s.done + s.failed + s.stopped);
                    line.push_str(&format!(", {not_run} not run"));
                }
                format!("array stopped ({})", e.why)
            }
        };
        let rate = (s.done + s.failed) as f64 / secs.max(1e-9);
        self.screen.report(&format!(
            "{head}: {line} in {secs:.2} s ({rate:.0} tasks/s)"
        ));
        self.screen.flush(&self.progress);
        Ok(match &self.ending {
            Some(e) => e.code,
            None if self.stats.failed > 0 => exit_code::LAUNCH_FAILED,
            None => 0,
        })
    }

    /// Tells every remote host the run is over and waits (bounded) for their `Done`.
    fn finish_remotes(&mut self) {
        for node in &mut self.nodes {
            if let (Worker::Remote(r), true) = (&mut node.worker, node.alive) {
                Host::finish(&mut **r);
            }
        }
        let until = Instant::now() + REMOTE_DRAIN_LIMIT;
        let mut poller = Poller::default();
        let mut events = Vec::new();
        loop {
            let now = Instant::now();
            let open = self.nodes.iter().any(|n| match &n.worker {
                Worker::Remote(r) => n.alive && r.output_open(),
                Worker::Local(_) => false,
            });
            if !open || now >= until {
                return;
            }
            poller.clear();
            for (i, node) in self.nodes.iter().enumerate() {
                if let (Worker::Remote(r), true) = (&node.worker, node.alive) {
                    r.interest(&mut |fd, ev, t| poller.add(fd, ev, (i, t)));
                }
            }
            if poller.wait(Some(until - now)).is_err() {
                return;
            }
            let ready: Vec<_> = poller.ready().collect();
            for ((i, t), revents) in ready {
                if let Worker::Remote(r) = &mut self.nodes[i].worker {
                    r.handle(t, revents, &mut Discard, &mut events);
                    let _ = r.tick(Instant::now(), &mut events);
                }
            }
            events.clear();
            let _ = self.signals.drain();
        }
    }
}
