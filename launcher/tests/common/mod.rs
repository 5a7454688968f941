//! Shared harness for tests that start `pirun`: every process a test starts is bounded by
//! a hard deadline and killed (by PID) when the test ends, passes or fails.
//!
//! - [`pirun`] builds a `Command` for the binary under test, tagged with a unique marker
//!   in its environment that the ranks inherit.
//! - [`Running`] owns a started `pirun`, collects its output on background threads and,
//!   when dropped, SIGKILLs `pirun` and every process still carrying the marker (the
//!   ranks and their children) — found through `/proc`, so only processes this test
//!   started are ever touched.
//! - [`run_with_timeout`] runs a command to completion or fails the test.

#![allow(dead_code)] // each test crate uses a different part of the harness

pub mod testbed;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable whose value marks the processes one test started.
pub const MARKER_VAR: &str = "PIRUN_TEST_MARKER";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `pirun` command: stdin `/dev/null`, stdout/stderr captured, and a fresh marker in
/// the environment. `RUST_BACKTRACE` is cleared so error output is stable.
pub fn pirun() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pirun"));
    cmd.env(MARKER_VAR, unique("mark"))
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A started process with its output being collected.
pub struct Running {
    child: Option<Child>,
    marker: Option<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Starts `cmd` (its stdout and stderr must be piped, as [`pirun`] sets them).
    pub fn start(cmd: &mut Command) -> Self {
        let marker = cmd
            .get_envs()
            .find(|(k, _)| *k == MARKER_VAR)
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()));
        let mut child = cmd.spawn().expect("cannot start the command under test");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, Arc::clone(&stdout)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, Arc::clone(&stderr)));
        }
        Running {
            child: Some(child),
            marker,
            stdout,
            stderr,
            readers,
        }
    }

    /// The process id of the started command.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Takes the child's stdin (if it was piped).
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    /// Sends `sig` to the started command.
    pub fn signal(&self, sig: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own, not yet reaped child.
            unsafe { libc::kill(child.id() as i32, sig) };
        }
    }

    /// Output collected so far, for failure messages.
    pub fn output_so_far(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&self.stdout.lock().unwrap()),
            String::from_utf8_lossy(&self.stderr.lock().unwrap())
        )
    }

    /// Waits for the command to end within `secs` seconds and returns its output; on
    /// expiry kills everything it started and fails the test.
    pub fn wait(mut self, secs: u64) -> Output {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            let child = self.child.as_mut().expect("not yet waited for");
            match child.try_wait().expect("try_wait failed") {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    let so_far = self.output_so_far();
                    self.kill_all();
                    panic!("hung: still running after {secs} s; killed it\n{so_far}");
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        self.child = None;
        self.finish(status, deadline)
    }

    /// Waits until the readers saw end of file (bounded by `deadline`, plus a second).
    fn finish(&mut self, status: ExitStatus, deadline: Instant) -> Output {
        let limit = deadline.max(Instant::now()) + Duration::from_secs(1);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
        Output {
            status,
            stdout: std::mem::take(&mut *self.stdout.lock().unwrap()),
            stderr: std::mem::take(&mut *self.stderr.lock().unwrap()),
        }
    }

    /// SIGKILLs the command (if not reaped yet) and every process carrying its marker.
    fn kill_all(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(marker) = &self.marker {
            for pid in pids_with_marker(marker) {
                // SAFETY: kill(2); the pid carries this test's marker.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn collect(mut src: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Runs `cmd` to completion within `secs` seconds (else kills everything and fails).
pub fn run_with_timeout(cmd: &mut Command, secs: u64) -> Output {
    Running::start(cmd).wait(secs)
}

/// Processes whose environment contains `MARKER_VAR=marker`.
pub fn pids_with_marker(marker: &str) -> Vec<i32> {
    let needle = format!("{MARKER_VAR}={marker}\0");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether `pid` is gone (no such process, or a zombie nobody reaped yet).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits up to `secs` seconds for every pid to be gone; returns those still alive.
pub fn wait_gone(pids: &[i32], secs: u64) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|&p| !gone(p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `secs` seconds for `count` files named `prefix*` in `dir`, then returns
/// their contents parsed as pids (fewer if the deadline passed).
pub fn wait_for_pid_files(dir: &Path, prefix: &str, count: usize, secs: u64) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let pids: Vec<i32> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter_map(|s| s.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if pids.len() >= count || Instant::now() >= deadline {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(unique("pirun-test"));
        std::fs::create_dir_all(&path).expect("cannot create a temp dir");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sorted stdout lines.
pub fn sorted_lines(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = stdout(out).lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Both streams, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// Names the test whose rank side a process runs (set by [`scenario`]).
pub const SCENARIO: &str = "PIRUN_TEST_SCENARIO";

/// A multi-process test whose rank program is the test itself.
///
/// Run normally, this launches `pirun -n N <this test binary> <name> --exact` with
/// [`SCENARIO`] set to `name` and returns pirun's output (bounded by a 90 s deadline,
/// everything cleaned up). Started that way by pirun, the same call runs `body` as one
/// rank and exits the process: 0 on success, 1 on error, 101 on panic. `name` must be
/// the calling test's name.
pub fn scenario(
    name: &str,
    n: usize,
    body: fn(&pirun::Communicator) -> pirun::Result<()>,
) -> Output {
    scenario_with(name, n, &[], body)
}

/// [`scenario`] with `extra` arguments for `pirun` placed before the program (for
/// example `["-x", "PIRUN_ALLREDUCE_ALGORITHM=ring"]`).
pub fn scenario_with(
    name: &str,
    n: usize,
    extra: &[&str],
    body: fn(&pirun::Communicator) -> pirun::Result<()>,
) -> Output {
    if std::env::var(SCENARIO).as_deref() == Ok(name) {
        let world = pirun::init().expect("pirun::init failed");
        let r = body(&world);
        let rank = world.rank();
        drop(world);
        match r {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("rank {rank} failed: {e}");
                std::process::exit(1)
            }
        }
    }
    let exe = std::env::current_exe().expect("test binary path");
    Running::start(
        pirun()
            .args(["-n", &n.to_string(), "--oversubscribe", "--grace", "2"])
            .args(extra)
            .arg(exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(SCENARIO, name),
    )
    .wait(90)
}

/// Fails the test with the job's output unless it succeeded.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "job failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
