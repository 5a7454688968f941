//! The guard: a tiny process forked from `pirun` that kills the ranks' process groups if
//! `pirun` dies without cleaning up (SIGKILL, OOM killer, crash).
//!
//! `PR_SET_PDEATHSIG` already kills every rank process when `pirun` dies, but not the
//! children of a rank (the commands a shell-script rank runs). The guard covers those: it
//! reads the process-group ids of the ranks from a pipe; when the pipe reaches end of
//! file without the "job done" mark, `pirun` is gone, and the guard sends `SIGKILL` to
//! every group, then exits. At the end of a normal job `pirun` writes the mark *before*
//! it reaps the ranks (while their zombies still reserve the ids), so the guard never
//! signals a group id that could have been reused. The guard keeps none of `pirun`'s
//! descriptors, so it never holds a pipe that someone waits on.
//!
//! On a remote host the per-host proxy (`pirun --proxy`) runs its own guard, and kills
//! its ranks itself when its connection to the launcher closes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The "job done" mark: not a valid process-group id.
const DONE: i32 = 0;

/// Largest number of groups the guard keeps (pipe writes beyond it are ignored by it).
const MAX_GROUPS: usize = 1 << 16;

/// `pirun`'s handle on its guard process.
#[derive(Debug)]
pub struct Guard {
    pipe: Option<OwnedFd>,
    pid: libc::pid_t,
}

impl Guard {
    /// Forks the guard. Call from the (single-threaded) main thread before spawning ranks.
    pub fn start() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 returns.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and belong to nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Allocated before the fork: the child must not allocate, since another thread
        // (the heartbeat of a multi-host job) may hold the allocator's lock at the fork.
        let groups = Vec::with_capacity(MAX_GROUPS);
        // SAFETY: the child makes only async-signal-safe calls and touches only memory
        // allocated before the fork; it never returns from `guard_main`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(write);
            guard_main(read.as_raw_fd(), groups);
        }
        drop(read);
        Ok(Guard {
            pipe: Some(write),
            pid,
        })
    }

    /// Tells the guard about a rank's process group.
    pub fn watch(&self, pgid: libc::pid_t) {
        self.send(pgid);
    }

    /// Tells the guard to forget a group (an array task that ended: call before reaping
    /// its leader, whose zombie keeps the id reserved until then). Lets one guard watch
    /// any number of short-lived groups, a few at a time.
    pub fn unwatch(&self, pgid: libc::pid_t) {
        if pgid > 0 {
            self.send(-pgid);
        }
    }

    /// The job is over (every rank ended, its group signalled for the last time): the
    /// guard exits without killing anything, and is reaped.
    pub fn disarm(&mut self) {
        if self.pipe.is_none() {
            return;
        }
        self.send(DONE);
        self.pipe = None;
        let mut status = 0;
        // SAFETY: waiting for our own child.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
    }

    fn send(&self, value: i32) {
        if let Some(pipe) = &self.pipe {
            // A 4-byte write to a pipe is atomic. If the guard is gone (someone killed
            // it), the write fails with EPIPE, and there is nothing better to do.
            let _ = crate::output::write_all_fd(pipe.as_raw_fd(), &value.to_le_bytes());
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// The guard process: collect group ids until end of file, then act. Only
/// async-signal-safe calls, and no allocation (`groups` has room for [`MAX_GROUPS`]).
fn guard_main(pipe: RawFd, mut groups: Vec<i32>) -> ! {
    // SAFETY: plain system calls on descriptors this process owns; the process ends
    // with _exit and never returns into pirun's code.
    unsafe {
        // Keep nothing of pirun's: stdio to /dev/null, every other descriptor closed.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        // Best effort (Linux 5.9+): an inherited descriptor left open does no harm, as
        // the guard lives no longer than pirun.
        libc::syscall(libc::SYS_close_range, 3u32, (pipe - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, (pipe + 1) as u32, u32::MAX, 0u32);
        // Leave pirun's process group, so that a signal for pirun's job (Ctrl-C) does
        // not reach the guard; a SIGKILL of pirun then still finds the guard alive.
        libc::setpgid(0, 0);
        let mut buf = [0u8; 4];
        let mut got = 0;
        loop {
            let n = libc::read(pipe, buf[got..].as_mut_ptr().cast(), 4 - got);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
            if got < 4 {
                continue;
            }
            got = 0;
            match i32::from_le_bytes(buf) {
                DONE => libc::_exit(0),
                pgid if pgid > 0 && groups.len() < MAX_GROUPS => groups.push(pgid),
                gone if gone < 0 => {
                    // No allocation: swap_remove only moves elements within the vector.
                    if let Some(i) = groups.iter().position(|&g| g == gone.wrapping_neg()) {
                        groups.swap_remove(i);
                    }
                }
                _ => {}
            }
        }
        // pirun died without finishing the job.
        for pgid in groups {
            libc::kill(-pgid, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}
