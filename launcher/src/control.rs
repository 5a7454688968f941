//! The launcher's end of one rank's control channel (see `pirun::contract`): a
//! non-blocking Unix socket with an incoming frame parser and an outgoing queue.
//!
//! Nothing here blocks: the event loop reads when the socket is readable and writes when
//! it is writable. A malformed frame is an error for this channel only; the caller closes
//! the channel and the rest of the job goes on.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use pirun::contract::ControlMsg;

/// One rank's control channel, launcher side.
#[derive(Debug)]
pub struct ControlChannel {
    sock: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// Writing failed (the rank shut its end): nothing more is sent, but what the rank
    /// wrote before is still read.
    write_failed: bool,
}

/// What a read from the channel found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadState {
    /// The channel is still open (more may come).
    Open,
    /// The rank closed its end (normal at exit).
    Closed,
}

impl ControlChannel {
    /// Wraps the launcher's end of a socketpair, switching it to non-blocking mode.
    pub fn new(sock: UnixStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        Ok(ControlChannel {
            sock,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            write_failed: false,
        })
    }

    /// Queues a message; [`ControlChannel::flush`] sends it.
    pub fn queue(&mut self, msg: &ControlMsg) {
        if self.write_failed {
            return;
        }
        self.outbuf.extend_from_slice(&msg.to_frame());
    }

    /// Whether queued bytes wait for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Writes as much of the queue as the socket takes now. A rank that does not read its
    /// channel (any program not linked with pirun) simply leaves the bytes queued. If the
    /// rank has shut its end, the queue is dropped and nothing more is sent (reading goes
    /// on: the rank's last messages may still be waiting).
    pub fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            match self.sock.write(&self.outbuf) {
                Ok(n) if n > 0 => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                _ => {
                    self.write_failed = true;
                    self.outbuf = Vec::new();
                }
            }
        }
    }

    /// Reads everything available now and appends the complete messages to `msgs`.
    /// An error (malformed or oversized frame, I/O error) means the channel must be closed.
    pub fn read(&mut self, msgs: &mut Vec<ControlMsg>) -> io::Result<ReadState> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.sock.read(&mut chunk) {
                // A rank that exits without reading what was sent to it resets the
                // connection: for us that is the same as a close.
                Ok(0) => return self.closed(),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return self.closed(),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    self.parse(msgs)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadState::Open),
                Err(e) => return Err(e),
            }
        }
    }

    /// The peer closed its end: fine between frames, an error inside one.
    fn closed(&self) -> io::Result<ReadState> {
        if self.inbuf.is_empty() {
            Ok(ReadState::Closed)
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("channel closed inside a frame ({} bytes)", self.inbuf.len()),
            ))
        }
    }

    /// Moves every complete frame of the input buffer into `msgs`.
    fn parse(&mut self, msgs: &mut Vec<ControlMsg>) -> io::Result<()> {
        let mut pos = 0;
        while self.inbuf.len() - pos >= 4 {
            let prefix = [
                self.inbuf[pos],
                self.inbuf[pos + 1],
                self.inbuf[pos + 2],
                self.inbuf[pos + 3],
            ];
            let len = ControlMsg::body_len(prefix)?;
            if self.inbuf.len() - pos - 4 < len {
                break;
            }
            msgs.push(ControlMsg::from_body(&self.inbuf[pos + 4..pos + 4 + len])?);
            pos += 4 + len;
        }
        self.inbuf.drain(..pos);
        Ok(())
    }
}

impl AsRawFd for ControlChannel {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pirun::contract::ExitKind;

    fn pair() -> (ControlChannel, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (ControlChannel::new(a).unwrap(), b)
    }

    #[test]
    fn reads_frames_split_anywhere() {
        let (mut chan, mut rank) = pair();
        let msg = ControlMsg::Ready {
            rank: 2,
            addr: "127.0.0.1:5000".parse().unwrap(),
        };
        let frame = [msg.to_frame(), msg.to_frame()].concat();
        let mut msgs = Vec::new();
        for byte in &frame {
            rank.write_all(std::slice::from_ref(byte)).unwrap();
            assert_eq!(chan.read(&mut msgs).unwrap(), ReadState::Open);
        }
        assert_eq!(msgs, [msg.clone(), msg]);
        drop(rank);
        assert_eq!(chan.read(&mut msgs).unwrap(), ReadState::Closed);
    }

    #[test]
    fn garbage_is_an_error_not_an_allocation() {
        let (mut chan, mut rank) = pair();
        rank.write_all(b"garbage").unwrap();
        let err = chan.read(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let (mut chan, mut rank) = pair();
        rank.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
        assert!(chan.read(&mut Vec::new()).is_err());
    }

    #[test]
    fn queued_messages_are_flushed() {
        let (mut chan, mut rank) = pair();
        let msg = ControlMsg::PeerExited {
            rank: 1,
            how: ExitKind::Code(0),
        };
        chan.queue(&msg);
        assert!(chan.wants_write());
        chan.flush();
        assert!(!chan.wants_write());
        assert_eq!(ControlMsg::read_from(&mut rank).unwrap(), Some(msg.clone()));
    }

    #[test]
    fn messages_sent_before_the_rank_left_are_read_after_a_failed_write() {
        let (mut chan, mut rank) = pair();
        let msg = ControlMsg::Panicked {
            rank: 0,
            message: "boom".into(),
            location: "a.rs:1:2".into(),
        };
        msg.write_to(&mut rank).unwrap();
        drop(rank);
        chan.queue(&ControlMsg::PeerExited {
            rank: 1,
            how: ExitKind::Code(0),
        });
        chan.flush();
        assert!(!chan.wants_write());
        let mut msgs = Vec::new();
        assert_eq!(chan.read(&mut msgs).unwrap(), ReadState::Closed);
        assert_eq!(msgs, [msg]);
    }
}
