//! The simulated Pi cluster of `scripts/testbed` as a test fixture: four network
//! namespaces `pi1..pi4` (10.77.0.1-4) with their own sshd, hostname and private
//! `/opt/pirun-host`, on a bridge where this machine is 10.77.0.254.
//!
//! [`Testbed::start`] brings one up in a directory of its own, under a lock file shared by
//! every user of the testbed on this machine (the multi-host tests, the job-array tests,
//! `benches/compare/multihost`), waiting while another testbed is up, and first takes
//! down a testbed left behind by a run that was SIGKILLed. It goes down once, by
//! [`Testbed::down`] or on drop (also when a test panics).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{describe, run_with_timeout, stderr, stdout};

/// Serializes runs of this file on one machine (there is one bridge, one subnet).
pub const LOCK_FILE: &str = "/tmp/pirun-multihost-tests.lock";
/// `PID DIR` of the run whose testbed is up, so a later run can take down a leftover.
pub const OWNER_FILE: &str = "/tmp/pirun-multihost-tests.owner";
/// How long to wait for another testbed (another run, the testbed's self-test) to go.
pub const UP_PATIENCE: Duration = Duration::from_secs(600);

/// Why the tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (the testbed needs network namespaces and sshd)".into());
    }
    let ip = Command::new("ip").args(["netns", "list"]).output();
    if !ip.is_ok_and(|o| o.status.success()) {
        return Some("`ip netns` is not available".into());
    }
    None
}

/// The testbed this run brought up; taken down once, by [`Testbed::down`] or on drop.
pub struct Testbed {
    script: PathBuf,
    dir: PathBuf,
    /// `pi1 slots=2` … `pi4 slots=2`.
    pub hostfile: PathBuf,
    /// `ssh -F CONFIG`: the launch agent that reaches the hosts.
    pub agent: String,
    downed: AtomicBool,
    cut: Mutex<Vec<String>>,
    _lock: File,
}

impl Testbed {
    pub fn start() -> Result<Self, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed");
        if !script.exists() {
            return Err(format!("{} is missing", script.display()));
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .map_err(|e| format!("cannot open {LOCK_FILE}: {e}"))?;
        // SAFETY: flock on a descriptor we own; blocks until the other run is done.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("cannot lock {LOCK_FILE}"));
        }
        take_down_leftover(&script);
        let dir = PathBuf::from(format!("/tmp/pirun-mh-{}", std::process::id()));
        std::fs::write(
            OWNER_FILE,
            format!("{} {}\n", std::process::id(), dir.display()),
        )
        .map_err(|e| format!("cannot write {OWNER_FILE}: {e}"))?;
        let mut tb = Testbed {
            script,
            hostfile: PathBuf::from(format!("/tmp/pirun-mh-{}.hosts", std::process::id())),
            agent: String::new(),
            dir,
            downed: AtomicBool::new(false),
            cut: Mutex::new(Vec::new()),
            _lock: lock,
        };
        let t0 = Instant::now();
        let mut told = false;
        loop {
            let out = tb.run(&["up", "4"]);
            if out.status.success() {
                break;
            }
            let err = stderr(&out);
            let busy = err.contains("already exists") || err.contains("lock");
            if !busy || t0.elapsed() > UP_PATIENCE {
                tb.downed.store(true, Ordering::SeqCst);
                let _ = std::fs::remove_file(OWNER_FILE);
                return Err(format!("`testbed up 4` failed: {err}"));
            }
            if !told {
                eprintln!(
                    "multihost: another testbed is up ({}); waiting for it",
                    err.trim()
                );
                told = true;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        eprintln!(
            "multihost: testbed up in {:.1} s ({})",
            t0.elapsed().as_secs_f64(),
            tb.dir.display()
        );
        let hosts = tb.run(&["hostfile", "--slots", "2"]);
        let config = tb.run(&["ssh-config"]);
        if !hosts.status.success() || !config.status.success() {
            return Err(format!(
                "testbed queries failed: {}{}",
                stderr(&hosts),
                stderr(&config)
            ));
        }
        std::fs::write(&tb.hostfile, &hosts.stdout).map_err(|e| e.to_string())?;
        tb.agent = format!("ssh -F {}", stdout(&config).trim());
        Ok(tb)
    }

    /// Runs `testbed --dir DIR ARGS` (bounded, signals unblocked).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.script);
        cmd.arg("--dir").arg(&self.dir).args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        unblock_signals(&mut cmd);
        run_with_timeout(&mut cmd, 180)
    }

    /// The root-namespace path of `host`'s private `/opt/pirun-host`.
    pub fn hostdir(&self, host: &str) -> PathBuf {
        let out = self.run(&["hostdir", host]);
        assert!(out.status.success(), "{}", describe(&out));
        PathBuf::from(stdout(&out).trim())
    }

    pub fn cut(&self, host: &str) {
        self.cut.lock().unwrap().push(host.to_string());
        let out = self.run(&["cut", host]);
        assert!(out.status.success(), "{}", describe(&out));
    }

    /// Replugs every link a test cut.
    pub fn heal_all(&self) {
        let hosts = std::mem::take(&mut *self.cut.lock().unwrap());
        for host in hosts {
            let out = self.run(&["heal", &host]);
            if !out.status.success() {
                eprintln!("multihost: heal {host} failed: {}", describe(&out));
            }
        }
    }

    pub fn down(&self) {
        if self.downed.swap(true, Ordering::SeqCst) {
            return;
        }
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!("multihost: testbed down failed: {}", describe(&out));
        }
        let _ = std::fs::remove_file(&self.hostfile);
        let _ = std::fs::remove_file(OWNER_FILE);
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.down();
    }
}

/// Takes down the testbed of an earlier run that died without doing so.
pub fn take_down_leftover(script: &Path) {
    let Ok(owner) = std::fs::read_to_string(OWNER_FILE) else {
        return;
    };
    let mut words = owner.split_whitespace();
    let (Some(pid), Some(dir)) = (
        words.next().and_then(|p| p.parse::<i32>().ok()),
        words.next(),
    ) else {
        return;
    };
    if Path::new(&format!("/proc/{pid}")).exists() {
        return; // still running (cannot be: we hold the lock), leave it alone
    }
    eprintln!("multihost: taking down the testbed left behind by run {pid} ({dir})");
    let mut cmd = Command::new(script);
    cmd.args(["--dir", dir, "down"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    unblock_signals(&mut cmd);
    let _ = run_with_timeout(&mut cmd, 180);
    let _ = std::fs::remove_file(format!("{dir}.hosts"));
    let _ = std::fs::remove_file(OWNER_FILE);
}

/// Children must not inherit the signals blocked for the signal thread.
pub fn unblock_signals(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(empty.as_mut_ptr());
            libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());
            Ok(())
        });
    }
}
