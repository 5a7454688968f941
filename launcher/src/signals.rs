//! Signals `pirun` receives, as readable events on a `signalfd`, and signal names for
//! messages.
//!
//! `pirun` is single-threaded: [`Signals::install`] blocks `SIGCHLD` and the signals it
//! forwards (`SIGINT`, `SIGTERM`, `SIGHUP`) on the main thread and reads them from a
//! `signalfd` in the poll loop, so there are no asynchronous handlers at all. A signal
//! that was *ignored* when `pirun` started (`nohup`, a background job of a
//! non-interactive shell) stays ignored. The blocked mask would survive `exec`, so the
//! ranks clear it before they start (see `host`).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Signals that `pirun` forwards to the ranks before ending the job.
pub const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The launcher's signal inbox: a non-blocking `signalfd`.
#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks `SIGCHLD` and the forwarded signals (those not ignored at startup) and opens a
    /// `signalfd` for them. Call on the main thread before any child is spawned.
    pub fn install() -> io::Result<Self> {
        // SAFETY: plain libc calls on locally owned, initialised sigset/sigaction values.
        unsafe {
            // A SIGCHLD inherited as SIG_IGN would make the kernel reap our ranks for us.
            if libc::signal(libc::SIGCHLD, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            libc::sigaddset(&mut set, libc::SIGCHLD);
            for sig in FORWARDED {
                if !is_ignored(sig)? {
                    libc::sigaddset(&mut set, sig);
                }
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Reads every pending signal, in arrival order (a signal pending twice counts once).
    pub fn drain(&self) -> io::Result<Vec<i32>> {
        let mut out = Vec::new();
        loop {
            let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading at most `size` bytes into a buffer of that size.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => return Ok(out),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            }
            if n as usize != size {
                return Ok(out);
            }
            // SAFETY: the kernel filled the whole struct.
            let info = unsafe { info.assume_init() };
            out.push(info.ssi_signo as i32);
        }
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Whether `sig`'s disposition is currently `SIG_IGN`.
fn is_ignored(sig: i32) -> io::Result<bool> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: querying (null new action) into a properly sized out-parameter.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction succeeded and filled `old`.
    Ok(unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN)
}

/// Sends `sig` to the process group `pgid` and, if the group is gone, to `pid` itself.
/// Errors (the process is already gone) are ignored: this is best effort by design.
pub fn kill_group(pgid: i32, pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        if libc::kill(-pgid, sig) != 0 {
            libc::kill(pid, sig);
        }
    }
}

/// The conventional name of a signal (`SIGTERM`), or `signal N` for others.
pub fn name(sig: i32) -> String {
    let known = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(libc::SIGKILL), "SIGKILL");
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(77), "signal 77");
    }
}
