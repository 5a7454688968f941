//! Runs the array tasks of one host: on the launcher's host in the launcher itself, on
//! every other host inside its proxy (`pirun --proxy`). It obeys [`TaskOrder`]s and
//! reports [`TaskEvent`]s; it decides nothing (which task runs where, retries and output
//! order are the launcher's business, in [`super::run`]).
//!
//! Processes start exactly as ranks do ([`crate::host::supervise`]): each task leads its
//! own process group, dies with its parent (`PR_SET_PDEATHSIG`), and the [`Guard`] kills
//! its group if the parent is SIGKILLed. Unlike a rank, a task is reaped as soon as its
//! process ends: whatever it left in its process group is killed first (while the zombie
//! still reserves the group id), the guard forgets the group, then the zombie goes. So
//! the guard and this runner hold state for running tasks only, whatever the array's
//! length.
//!
//! Output: stderr is cut into whole lines ([`OutPipe`]) and sent as it comes; stdout is
//! passed on as raw bytes (the launcher prints it byte for byte), collected per task and
//! sent with the task's exit, or earlier when [`OUT_CHUNK`] bytes have gathered or the
//! oldest has waited [`OUT_FLUSH`] (so a long task's output still streams).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pirun::contract::{self, ExitKind};

use super::protocol::{TaskEvent, TaskOrder, TaskStart};
use crate::error::LaunchError;
use crate::guard::Guard;
use crate::host::{nonblocking, peek_exit, read_pipe, supervise, wait_blocking, OutPipe};
use crate::poller::READ;
use crate::signals::kill_group;
use crate::wire::Bytes;

/// Environment variables that carry a task's index: pirun's own and those of LSF,
/// Slurm and PBS/TORQUE job arrays, so scripts written for a batch system run unchanged.
pub const INDEX_VARS: [&str; 4] = [
    "PIRUN_ARRAY_INDEX",
    "LSB_JOBINDEX",
    "SLURM_ARRAY_TASK_ID",
    "PBS_ARRAYID",
];

/// Stdout bytes of one task gathered before they are sent without waiting for its exit.
pub const OUT_CHUNK: usize = 64 * 1024;
/// How long gathered stdout may wait before it is sent anyway.
pub const OUT_FLUSH: Duration = Duration::from_millis(100);

/// What every task of the host shares: the program and its surroundings.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The host's name (`PIRUN_HOST`).
    pub host: String,
    /// The program, resolved to a path.
    pub program: PathBuf,
    /// `argv[0]`: the program as the user typed it.
    pub arg0: OsString,
    /// `-x` exports, on top of the inherited environment.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, if not the runner's.
    pub wdir: Option<PathBuf>,
}

/// Identifies one descriptor of a running task in the poll set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskToken {
    slot: usize,
    stderr: bool,
}

/// One running task.
#[derive(Debug)]
struct Task {
    seq: u64,
    pid: i32,
    stdout: Option<File>,
    stderr: Option<OutPipe>,
    /// Stdout not sent yet.
    out: Vec<u8>,
    /// When the oldest byte of `out` arrived.
    out_since: Option<Instant>,
    paused: bool,
}

/// The tasks of one host. How many run at once is the launcher's decision (one per
/// slot, and the earliest unfinished task of an ordered run even beyond that): every
/// `Start` starts a task at once.
#[derive(Debug)]
pub struct TaskRunner {
    ctx: TaskContext,
    /// Running tasks; a free entry is reused, so this grows to the most that ran at once.
    slots: Vec<Option<Task>>,
    /// Set once the run is being ended: nothing more starts.
    stopped: bool,
    guard: Guard,
    scratch: Vec<u8>,
    events: Vec<TaskEvent>,
    /// Pipes are not read while set (the proxy's uplink is backed up).
    output_paused: bool,
    parent: libc::pid_t,
}

impl TaskRunner {
    /// A runner with room for `slots` tasks. Starts the guard process.
    pub fn new(ctx: TaskContext, slots: usize) -> Result<Self, LaunchError> {
        let guard = Guard::start()
            .map_err(|e| LaunchError::system("cannot start the guard process (fork failed)", e))?;
        Ok(TaskRunner {
            ctx,
            slots: (0..slots.max(1)).map(|_| None).collect(),
            stopped: false,
            guard,
            scratch: vec![0; crate::host::READ_CHUNK],
            events: Vec::new(),
            output_paused: false,
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
        })
    }

    /// Carries out one order.
    pub fn order(&mut self, order: TaskOrder) {
        match order {
            TaskOrder::Start(start) if self.stopped => {
                self.events.push(TaskEvent::Cancelled { seq: start.seq });
            }
            TaskOrder::Start(start) => {
                let slot = match self.slots.iter().position(Option::is_none) {
                    Some(slot) => slot,
                    None => {
                        self.slots.push(None);
                        self.slots.len() - 1
                    }
                };
                self.start(slot, start);
            }
            TaskOrder::Pause(seq) => self.set_paused(seq, true),
            TaskOrder::Resume(seq) => self.set_paused(seq, false),
        }
    }

    /// Tasks running now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing runs.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// While `paused`, no pipe is read (the tasks block once their pipes are full).
    pub fn set_output_paused(&mut self, paused: bool) {
        self.output_paused = paused;
    }

    /// Moves the events gathered so far to `out`.
    pub fn drain_events(&mut self, out: &mut Vec<TaskEvent>) {
        out.append(&mut self.events);
    }

    /// Whether events are waiting to be drained.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Calls `add` for every descriptor to watch now.
    pub fn interest(&self, add: &mut dyn FnMut(RawFd, i16, TaskToken)) {
        if self.output_paused {
            return;
        }
        for (slot, t) in self.slots.iter().enumerate() {
            let Some(t) = t else { continue };
            if let (Some(f), false) = (&t.stdout, t.paused) {
                add(
                    f.as_raw_fd(),
                    READ,
                    TaskToken {
                        slot,
                        stderr: false,
                    },
                );
            }
            if let Some(p) = &t.stderr {
                add(p.as_raw_fd(), READ, TaskToken { slot, stderr: true });
            }
        }
    }

    /// Reads what a descriptor registered through [`TaskRunner::interest`] has.
    pub fn handle(&mut self, token: TaskToken) {
        let TaskRunner {
            slots,
            scratch,
            events,
            ..
        } = self;
        let Some(Some(t)) = slots.get_mut(token.slot) else {
            return;
        };
        if token.stderr {
            read_stderr(t, scratch, false, events);
        } else {
            read_stdout(t, scratch, false, events);
        }
    }

    /// Looks for tasks whose process has ended (call on `SIGCHLD`) and reports them.
    pub fn reap(&mut self) {
        for slot in 0..self.slots.len() {
            let Some(t) = &self.slots[slot] else { continue };
            if let Some(how) = peek_exit(t.pid) {
                self.end_task(slot, how);
            }
        }
    }

    /// Sends stdout that has waited [`OUT_FLUSH`]; returns when to be called again.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for t in self.slots.iter_mut().flatten() {
            let Some(since) = t.out_since else { continue };
            if now >= since + OUT_FLUSH {
                self.events.push(TaskEvent::Output {
                    seq: t.seq,
                    stderr: false,
                    data: Bytes(std::mem::take(&mut t.out)),
                });
                t.out_since = None;
            } else {
                let due = since + OUT_FLUSH;
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    /// The run is being ended: nothing starts any more (a later `Start` is answered
    /// with `Cancelled`), and `sig` goes to every running task's process group.
    pub fn signal(&mut self, sig: i32) {
        self.stopped = true;
        for t in self.slots.iter().flatten() {
            kill_group(t.pid, t.pid, sig);
        }
    }

    fn set_paused(&mut self, seq: u64, paused: bool) {
        if let Some(t) = self.slots.iter_mut().flatten().find(|t| t.seq == seq) {
            t.paused = paused;
        }
    }

    /// Spawns one task into a free slot (or reports why it could not be).
    fn start(&mut self, slot: usize, start: TaskStart) {
        let c = &self.ctx;
        let mut cmd = Command::new(&c.program);
        cmd.arg0(&c.arg0)
            .args(start.args.iter().map(|a| std::ffi::OsStr::from_bytes(&a.0)))
            .envs(c.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let index = start.index.to_string();
        for var in INDEX_VARS {
            cmd.env(var, &index);
        }
        cmd.env(contract::ENV_HOST, &c.host);
        if let Some(dir) = &c.wdir {
            cmd.current_dir(dir);
        }
        supervise(&mut cmd, None, self.parent);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.events.push(TaskEvent::Failed {
                    seq: start.seq,
                    message: format!("cannot start `{}`: {e}", c.program.display()),
                });
                return;
            }
        };
        let pid = child.id() as i32;
        self.guard.watch(pid);
        let pipes = (|| -> std::io::Result<(File, OutPipe)> {
            let out = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
            let err = child.stderr.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
            Ok((nonblocking(out.into())?, OutPipe::new(err.into())?))
        })();
        match pipes {
            Ok((stdout, stderr)) => {
                self.slots[slot] = Some(Task {
                    seq: start.seq,
                    pid,
                    stdout: Some(stdout),
                    stderr: Some(stderr),
                    out: Vec::new(),
                    out_since: None,
                    paused: false,
                });
            }
            Err(e) => {
                kill_group(pid, pid, libc::SIGKILL);
                self.guard.unwatch(pid);
                wait_blocking(pid);
                self.events.push(TaskEvent::Failed {
                    seq: start.seq,
                    message: format!("cannot set up the pipes of a task: {e}"),
                });
            }
        }
    }

    /// A task's process ended: kill what it left in its group, read the rest of its
    /// output, reap it, report it.
    fn end_task(&mut self, slot: usize, how: ExitKind) {
        let Some(mut t) = self.slots[slot].take() else {
            return;
        };
        // The zombie leader keeps the group id reserved, so this cannot hit a stranger.
        kill_group(t.pid, t.pid, libc::SIGKILL);
        // What the process wrote before it ended is all in the pipes now.
        read_stdout(&mut t, &mut self.scratch, true, &mut self.events);
        read_stderr(&mut t, &mut self.scratch, true, &mut self.events);
        if let Some(p) = t.stderr.take() {
            let seq = t.seq;
            let events = &mut self.events;
            p.close(|l| events.push(stderr_event(seq, l)));
        }
        self.guard.unwatch(t.pid);
        wait_blocking(t.pid);
        self.events.push(TaskEvent::Exited {
            seq: t.seq,
            how,
            out: Bytes(t.out),
        });
    }
}

impl Drop for TaskRunner {
    /// No task outlives its runner.
    fn drop(&mut self) {
        for t in self.slots.iter().flatten() {
            kill_group(t.pid, t.pid, libc::SIGKILL);
        }
        self.guard.disarm();
        for t in self.slots.iter_mut().filter_map(Option::take) {
            wait_blocking(t.pid);
        }
    }
}

fn stderr_event(seq: u64, lines: &[u8]) -> TaskEvent {
    TaskEvent::Output {
        seq,
        stderr: true,
        data: Bytes(lines.to_vec()),
    }
}

fn read_stderr(t: &mut Task, scratch: &mut [u8], drain: bool, events: &mut Vec<TaskEvent>) {
    let Some(p) = &mut t.stderr else { return };
    let seq = t.seq;
    if !p.read(scratch, drain, |l| events.push(stderr_event(seq, l))) {
        t.stderr = None;
    }
}

fn read_stdout(t: &mut Task, scratch: &mut [u8], drain: bool, events: &mut Vec<TaskEvent>) {
    let Some(f) = &mut t.stdout else { return };
    let (out, since, seq) = (&mut t.out, &mut t.out_since, t.seq);
    let open = read_pipe(f, scratch, drain, |data| {
        if out.is_empty() {
            *since = Some(Instant::now());
        }
        out.extend_from_slice(data);
        if out.len() >= OUT_CHUNK {
            events.push(TaskEvent::Output {
                seq,
                stderr: false,
                data: Bytes(std::mem::take(out)),
            });
            *since = None;
        }
    });
    if !open {
        t.stdout = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(slots: usize) -> TaskRunner {
        TaskRunner::new(
            TaskContext {
                host: "here".into(),
                program: "/bin/sh".into(),
                arg0: "sh".into(),
                env: vec![("ARRAY_TEST".into(), "x".into())],
                wdir: None,
            },
            slots,
        )
        .unwrap()
    }

    fn start(seq: u64, index: u64, script: &str) -> TaskOrder {
        TaskOrder::Start(TaskStart {
            seq,
            index,
            args: vec![Bytes(b"-c".to_vec()), Bytes(script.as_bytes().to_vec())],
        })
    }

    /// Runs until `n` tasks have exited (polling, since the test has no signalfd).
    fn run_until(r: &mut TaskRunner, n: usize) -> Vec<TaskEvent> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut all = Vec::new();
        let mut poller = crate::poller::Poller::default();
        while all
            .iter()
            .filter(|e| matches!(e, TaskEvent::Exited { .. } | TaskEvent::Failed { .. }))
            .count()
            < n
        {
            assert!(Instant::now() < deadline, "tasks did not end: {all:?}");
            poller.clear();
            r.interest(&mut |fd, ev, t| poller.add(fd, ev, t));
            poller.wait(Some(Duration::from_millis(5))).unwrap();
            let ready: Vec<_> = poller.ready().collect();
            for (t, _) in ready {
                r.handle(t);
            }
            r.reap();
            r.tick(Instant::now());
            r.drain_events(&mut all);
        }
        all
    }

    fn stdout_of(events: &[TaskEvent], want: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            match e {
                TaskEvent::Output {
                    seq,
                    stderr: false,
                    data,
                }
                | TaskEvent::Exited { seq, out: data, .. }
                    if *seq == want =>
                {
                    out.extend_from_slice(&data.0)
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn tasks_run_with_their_index_and_report_output_and_exit() {
        let mut r = runner(2);
        r.order(start(
            0,
            17,
            "printf '%s %s %s %s %s %s' $PIRUN_ARRAY_INDEX $LSB_JOBINDEX $SLURM_ARRAY_TASK_ID \
             $PBS_ARRAYID $PIRUN_HOST $ARRAY_TEST; echo oops >&2; exit 3",
        ));
        r.order(start(1, 18, "echo two"));
        r.order(start(2, 19, "echo three"));
        assert_eq!(r.running(), 3, "the launcher decides how many run");
        let events = run_until(&mut r, 3);
        assert_eq!(
            stdout_of(&events, 0),
            b"17 17 17 17 here x",
            "byte for byte"
        );
        assert_eq!(stdout_of(&events, 1), b"two\n");
        assert_eq!(stdout_of(&events, 2), b"three\n");
        assert!(events.contains(&TaskEvent::Output {
            seq: 0,
            stderr: true,
            data: Bytes(b"oops\n".to_vec())
        }));
        assert!(events.iter().any(|e| matches!(
            e,
            TaskEvent::Exited {
                seq: 0,
                how: ExitKind::Code(3),
                ..
            }
        )));
        assert!(r.is_idle());
    }

    #[test]
    fn leftovers_are_killed_and_nothing_starts_after_a_signal() {
        let dir = std::env::temp_dir().join(format!("pirun-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("bg");
        let mut r = runner(1);
        r.order(start(
            0,
            1,
            &format!("sleep 30 & echo $! > {}; echo done", pidfile.display()),
        ));
        let events = run_until(&mut r, 1);
        assert_eq!(stdout_of(&events, 0), b"done\n");
        let bg: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: kill with signal 0 only checks whether the process exists.
        while unsafe { libc::kill(bg, 0) } == 0 {
            assert!(Instant::now() < deadline, "the background child survived");
            std::thread::sleep(Duration::from_millis(10));
        }

        r.order(start(1, 2, "sleep 30"));
        r.signal(libc::SIGTERM);
        let events = run_until(&mut r, 1);
        assert!(events.iter().any(|e| matches!(
            e,
            TaskEvent::Exited {
                seq: 1,
                how: ExitKind::Signal(libc::SIGTERM),
                ..
            }
        )));
        r.order(start(3, 4, "echo late"));
        let mut events = Vec::new();
        r.drain_events(&mut events);
        assert_eq!(events, [TaskEvent::Cancelled { seq: 3 }]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_program_is_reported() {
        let mut r = TaskRunner::new(
            TaskContext {
                host: "here".into(),
                program: "/nonexistent/prog".into(),
                arg0: "prog".into(),
                env: vec![],
                wdir: None,
            },
            1,
        )
        .unwrap();
        r.order(start(0, 1, ""));
        let mut events = Vec::new();
        r.drain_events(&mut events);
        assert!(
            matches!(&events[..], [TaskEvent::Failed { seq: 0, message }] if message.contains("/nonexistent/prog")),
            "{events:?}"
        );
    }
}
