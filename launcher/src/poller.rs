//! A minimal `poll(2)` wrapper: the interest list is rebuilt every turn of the event loop,
//! each descriptor tagged with a caller-chosen token.
//!
//! `pirun` watches a few descriptors per rank, so rebuilding the list is cheaper than
//! keeping an epoll set in sync, and it keeps the launcher a plain single-threaded loop
//! that sleeps in the kernel (no timers tick while it waits).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Readable (or hung up / error: the read will tell).
pub const READ: i16 = libc::POLLIN;
/// Writable.
pub const WRITE: i16 = libc::POLLOUT;

/// A `poll(2)` interest list with one token per descriptor.
#[derive(Debug)]
pub struct Poller<T> {
    fds: Vec<libc::pollfd>,
    tokens: Vec<T>,
}

impl<T: Copy> Default for Poller<T> {
    fn default() -> Self {
        Poller {
            fds: Vec::new(),
            tokens: Vec::new(),
        }
    }
}

impl<T: Copy> Poller<T> {
    /// Empties the interest list.
    pub fn clear(&mut self) {
        self.fds.clear();
        self.tokens.clear();
    }

    /// Watches `fd` for `events` ([`READ`], [`WRITE`] or both), reported as `token`.
    pub fn add(&mut self, fd: RawFd, events: i16, token: T) {
        self.fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        self.tokens.push(token);
    }

    /// Sleeps until a descriptor is ready or `timeout` passes (`None`: no limit).
    /// An interrupted wait returns normally with nothing ready.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let ms = match timeout {
            None => -1,
            // Round up so that a deadline is never polled for in a busy loop of 0 ms waits.
            Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        };
        for p in &mut self.fds {
            p.revents = 0;
        }
        // SAFETY: `fds` is a valid, initialised array of `fds.len()` pollfd structs.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(())
    }

    /// The descriptors found ready by the last [`Poller::wait`], with their `revents`.
    pub fn ready(&self) -> impl Iterator<Item = (T, i16)> + '_ {
        self.fds
            .iter()
            .zip(&self.tokens)
            .filter(|(p, _)| p.revents != 0)
            .map(|(p, t)| (*t, p.revents))
    }
}

/// Blocks until `fd` is writable (used when a blocking write meets `EAGAIN`).
pub fn wait_writable(fd: RawFd) {
    let mut p = libc::pollfd {
        fd,
        events: WRITE,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, -1) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_ready_descriptors_with_their_tokens() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut poller = Poller::default();
        poller.add(b.as_raw_fd(), READ, 7u8);
        poller.wait(Some(Duration::from_millis(1))).unwrap();
        assert_eq!(poller.ready().count(), 0);
        a.write_all(b"x").unwrap();
        poller.wait(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(poller.ready().collect::<Vec<_>>(), [(7, READ)]);
    }
}
