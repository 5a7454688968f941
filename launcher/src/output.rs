//! Line forwarding of the ranks' output.
//!
//! Each rank's stdout and stderr arrive on pipes in arbitrary chunks. A [`LineBuffer`] per
//! pipe cuts them into whole lines; an [`OutputSink`] receives only whole lines, so lines
//! of different ranks are never mixed. [`Terminal`] is the sink of a one-host job (pirun's
//! own stdout/stderr, optionally tagged `[RANK] `); the per-host proxy of a multi-host job
//! will implement [`OutputSink`] by sending the lines to the launcher instead.
//!
//! A line longer than [`MAX_LINE`] is cut there (the piece gets a newline), and a final
//! line without a newline is completed with one at end of file: everything a sink sees
//! ends with `\n`, which is what keeps lines whole in the merged output.

use std::io;
use std::os::fd::RawFd;

use crate::poller::wait_writable;

/// Longest line kept whole; longer ones are forwarded in pieces of this size.
pub const MAX_LINE: usize = 256 * 1024;

/// Which of a rank's output streams some bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The rank's stdout.
    Stdout,
    /// The rank's stderr.
    Stderr,
}

/// Where whole lines of output go.
pub trait OutputSink {
    /// Forwards `lines`: one or more complete lines of `rank`'s `stream`, each ending
    /// with `\n`.
    fn write_lines(&mut self, rank: u32, stream: Stream, lines: &[u8]);
}

/// Collects the bytes of one stream until they form whole lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Adds bytes read from the stream; calls `emit` with every run of whole lines.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        if self.pending.is_empty() {
            // Fast path: no partial line waiting, forward straight from the read buffer.
            if let Some(last_nl) = data.iter().rposition(|&b| b == b'\n') {
                emit(&data[..=last_nl]);
                data = &data[last_nl + 1..];
            }
            self.keep(data, &mut emit);
            return;
        }
        match data.iter().rposition(|&b| b == b'\n') {
            Some(last_nl) => {
                self.pending.extend_from_slice(&data[..=last_nl]);
                emit(&self.pending);
                self.pending.clear();
                self.keep(&data[last_nl + 1..], &mut emit);
            }
            None => self.keep(data, &mut emit),
        }
    }

    /// End of file: forwards a final partial line, completed with a newline.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            emit(&self.pending);
            self.pending = Vec::new();
        }
    }

    /// Keeps a partial line, cutting it into [`MAX_LINE`] pieces if it grows too long.
    fn keep(&mut self, mut partial: &[u8], emit: &mut impl FnMut(&[u8])) {
        while self.pending.len() + partial.len() > MAX_LINE {
            let take = MAX_LINE - self.pending.len();
            self.pending.extend_from_slice(&partial[..take]);
            self.pending.push(b'\n');
            emit(&self.pending);
            self.pending.clear();
            partial = &partial[take..];
        }
        self.pending.extend_from_slice(partial);
        if self.pending.is_empty() && self.pending.capacity() > 64 * 1024 {
            // Give back the memory of one huge line.
            self.pending = Vec::new();
        }
    }
}

/// The sink of a one-host job: `pirun`'s own stdout and stderr.
#[derive(Debug, Default)]
pub struct Terminal {
    tag: bool,
    broken: [bool; 2],
    scratch: Vec<u8>,
}

impl Terminal {
    /// A sink writing to fd 1 and 2, prefixing each line with `[RANK] ` if `tag`.
    pub fn new(tag: bool) -> Self {
        Terminal {
            tag,
            ..Terminal::default()
        }
    }
}

impl OutputSink for Terminal {
    fn write_lines(&mut self, rank: u32, stream: Stream, lines: &[u8]) {
        let (fd, idx) = match stream {
            Stream::Stdout => (libc::STDOUT_FILENO, 0),
            Stream::Stderr => (libc::STDERR_FILENO, 1),
        };
        if self.broken[idx] {
            return;
        }
        let result = if self.tag {
            self.scratch.clear();
            let prefix = format!("[{rank}] ");
            for line in lines.split_inclusive(|&b| b == b'\n') {
                self.scratch.extend_from_slice(prefix.as_bytes());
                self.scratch.extend_from_slice(line);
            }
            let r = write_all_fd(fd, &self.scratch);
            if self.scratch.capacity() > 64 * 1024 {
                self.scratch = Vec::new();
            }
            r
        } else {
            write_all_fd(fd, lines)
        };
        if result.is_err() {
            // The reader went away (`pirun … | head`): drop this stream's output from now
            // on; the ranks are not disturbed.
            self.broken[idx] = true;
        }
    }
}

/// Writes all of `buf` to `fd`, waiting when the descriptor is non-blocking and full.
pub fn write_all_fd(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    wait_writable(fd);
                    continue;
                }
                _ => return Err(err),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Writes one message line of `pirun` itself to its stderr in a single write.
pub fn report(msg: &str) {
    let mut line = String::with_capacity(msg.len() + 8);
    line.push_str("pirun: ");
    line.push_str(msg);
    line.push('\n');
    // Nothing sensible is left to do if stderr itself is gone.
    let _ = write_all_fd(libc::STDERR_FILENO, line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut buf = LineBuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            buf.push(c, |l| out.push(l.to_vec()));
        }
        buf.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn emits_only_whole_lines() {
        let out = run(&[b"ab", b"c\nde", b"f\ng\nh", b"\n"]);
        assert_eq!(out, [&b"abc\n"[..], b"def\ng\n", b"h\n"]);
    }

    #[test]
    fn completes_a_final_partial_line() {
        assert_eq!(run(&[b"x\nno newline"]), [&b"x\n"[..], b"no newline\n"]);
        assert!(run(&[b""]).is_empty());
    }

    #[test]
    fn cuts_overlong_lines() {
        let big = vec![b'a'; MAX_LINE + 10];
        let out = run(&[&big[..5], &big[5..], b"\n"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE + 1);
        assert_eq!(out[1].len(), 11);
        assert!(out.iter().all(|l| l.ends_with(b"\n")));
    }
}
