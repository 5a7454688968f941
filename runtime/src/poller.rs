//! A thin, safe wrapper over Linux `epoll` and an `eventfd` used to wake a sleeping poller.
//!
//! Several threads may call [`Poller::wait`] on one poller; level-triggered readiness is
//! used throughout, and whoever handles an event reads or writes until `EAGAIN`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Readiness reported for one registered descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The token it was registered with.
    pub token: u64,
    /// Writable.
    pub writable: bool,
}

/// An epoll instance plus a wake-up eventfd registered under [`Poller::WAKE_TOKEN`].
pub struct Poller {
    epoll: OwnedFd,
    wake: OwnedFd,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    /// Token under which the wake-up eventfd reports.
    pub const WAKE_TOKEN: u64 = u64::MAX;

    /// Creates the epoll instance and its wake-up eventfd.
    pub fn new() -> io::Result<Poller> {
        // SAFETY: plain syscalls; the returned descriptors are owned from here on.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let wake = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let p = Poller { epoll, wake };
        p.add(p.wake.as_raw_fd(), Self::WAKE_TOKEN, false)?;
        Ok(p)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, write: bool) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32
                | if write { libc::EPOLLOUT as u32 } else { 0 },
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Registers `fd` for readability (and writability if `write`).
    pub fn add(&self, fd: RawFd, token: u64, write: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, write)
    }

    /// Changes whether `fd` is also watched for writability.
    pub fn modify(&self, fd: RawFd, token: u64, write: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, write)
    }

    /// Stops watching `fd` (closing it also does that).
    pub fn remove(&self, fd: RawFd) {
        // SAFETY: a NULL event is allowed for EPOLL_CTL_DEL. Failure means it was not
        // registered, which is fine.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// Waits up to `timeout` (`None`: forever, zero: just look) and appends ready events.
    pub fn wait(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        const MAX: usize = 64;
        let mut raw = [libc::epoll_event { events: 0, u64: 0 }; MAX];
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
        };
        // SAFETY: `raw` has room for MAX events.
        let n =
            unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), raw.as_mut_ptr(), MAX as i32, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for ev in &raw[..n as usize] {
            let bits = ev.events as i32;
            events.push(Event {
                token: ev.u64,
                writable: bits & (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) != 0,
            });
        }
        Ok(())
    }

    /// Wakes a thread sleeping in [`Poller::wait`].
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64. EAGAIN (counter full) still leaves it
        // readable, which is all that matters.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears a pending wake-up.
    pub fn drain_wake(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN when not woken is fine.
        unsafe { libc::read(self.wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_readability_and_wakeups() {
        let p = Poller::new().unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        p.add(b.as_raw_fd(), 7, false).unwrap();
        let mut evs = Vec::new();
        p.wait(&mut evs, Some(Duration::ZERO)).unwrap();
        assert!(evs.is_empty());
        a.write_all(b"x").unwrap();
        p.wait(&mut evs, Some(Duration::from_secs(5))).unwrap();
        assert!(evs.iter().any(|e| e.token == 7));
        evs.clear();
        p.wake();
        p.wait(&mut evs, Some(Duration::from_secs(5))).unwrap();
        assert!(evs.iter().any(|e| e.token == Poller::WAKE_TOKEN));
        p.drain_wake();
    }
}
