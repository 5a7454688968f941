//! The launch contract: what `pirun` (or its per-host proxy) hands a rank, and the
//! control protocol the two speak afterwards.
//!
//! Both sides of the contract live here, in the runtime crate, so that the launcher and
//! the ranks can never disagree about it. The launcher depends on this module; nothing
//! here depends on the launcher.
//!
//! # How a rank is started
//!
//! The launcher creates one Unix `socketpair` per rank before spawning it. Its own end
//! stays in the launcher; the rank's end is inherited across `exec` (close-on-exec
//! cleared in the child only) and its descriptor number is put in [`ENV_CONTROL_FD`].
//! No one else can connect to an inherited socketpair, so the control channel needs no
//! listening port and no handshake; the job secret travels over it and never appears on a
//! command line or in the environment. When the launcher dies, the rank's end reads EOF,
//! and the launcher also sets `PR_SET_PDEATHSIG` so that even a program that never reads
//! the channel dies with it.
//!
//! # The control protocol
//!
//! Frames on the control channel are a little-endian `u32` length followed by a
//! postcard-encoded [`ControlMsg`]. The exchange is:
//!
//! 1. launcher → rank: [`ControlMsg::Welcome`] (job secret), written right after spawn;
//! 2. rank → launcher: [`ControlMsg::Ready`] with the address the rank listens on;
//! 3. launcher → every rank, once all ranks are ready (the fence): [`ControlMsg::Peers`];
//! 4. afterwards, launcher → rank: [`ControlMsg::PeerExited`] whenever a rank ends, and
//!    rank → launcher: [`ControlMsg::Panicked`] from the rank's panic hook.
//!
//! Programs that are not linked with pirun (`pirun -n 4 hostname`) simply never read
//! their end; the launcher must not wait for their `Ready`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// This rank's index in the world communicator, `0..PIRUN_SIZE`.
pub const ENV_RANK: &str = "PIRUN_RANK";
/// Number of ranks in the job.
pub const ENV_SIZE: &str = "PIRUN_SIZE";
/// This rank's index among the ranks on the same host.
pub const ENV_LOCAL_RANK: &str = "PIRUN_LOCAL_RANK";
/// Number of ranks on this host.
pub const ENV_LOCAL_SIZE: &str = "PIRUN_LOCAL_SIZE";
/// Descriptor number of the rank's end of the control socketpair.
pub const ENV_CONTROL_FD: &str = "PIRUN_CONTROL_FD";
/// A random identifier of the job, in hex; informational (logs, temp-file names).
pub const ENV_JOB_ID: &str = "PIRUN_JOB_ID";
/// Name of the host the rank runs on, as the launcher calls it (for error messages).
pub const ENV_HOST: &str = "PIRUN_HOST";
/// Address (IP only) the rank should bind and advertise for peer connections.
pub const ENV_BIND_ADDR: &str = "PIRUN_BIND_ADDR";
/// Number of CPU cores the launcher saw on this host; with [`ENV_LOCAL_SIZE`] it tells
/// the runtime whether ranks oversubscribe the cores (then it must not spin).
pub const ENV_HOST_CORES: &str = "PIRUN_HOST_CORES";

/// Length in bytes of the per-job secret.
pub const SECRET_LEN: usize = 32;

/// Largest control frame either side accepts; a longer length prefix is a protocol
/// error, never an allocation.
pub const MAX_CONTROL_FRAME: usize = 16 << 20;

/// The per-job secret used to authenticate every peer connection.
pub type Secret = [u8; SECRET_LEN];

/// How a rank ended, as reported by the launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitKind {
    /// The process exited with this code.
    Code(i32),
    /// The process was killed by this signal.
    Signal(i32),
}

impl std::fmt::Display for ExitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitKind::Code(c) => write!(f, "exit code {c}"),
            ExitKind::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// Where a peer rank lives, as handed out in [`ControlMsg::Peers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Address the peer accepts connections on.
    pub addr: SocketAddr,
    /// Host name, for error messages.
    pub host: String,
}

/// A message on the control channel between the launcher and one rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlMsg {
    /// launcher → rank, first message: the job secret.
    Welcome {
        /// Secret every peer connection is authenticated with.
        secret: Secret,
    },
    /// rank → launcher: the rank has bound its listener at `addr`.
    Ready {
        /// The rank sending this.
        rank: u32,
        /// Address peers should connect to.
        addr: SocketAddr,
    },
    /// launcher → rank: every rank's address, indexed by rank (the fence is complete).
    Peers {
        /// One entry per rank of the world.
        peers: Vec<PeerInfo>,
    },
    /// launcher → rank: a rank of the job has ended.
    PeerExited {
        /// Which rank.
        rank: u32,
        /// How it ended.
        how: ExitKind,
    },
    /// rank → launcher: the rank is panicking; sent by the runtime's panic hook so that
    /// `pirun` can name the panic in its final report.
    Panicked {
        /// The rank sending this.
        rank: u32,
        /// The panic payload, rendered.
        message: String,
        /// `file:line:column` of the panic.
        location: String,
    },
}

impl ControlMsg {
    /// Encodes the message as one frame (length prefix included).
    ///
    /// ```
    /// use pirun::contract::ControlMsg;
    /// let frame = ControlMsg::Welcome { secret: [7; 32] }.to_frame();
    /// let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    /// assert_eq!(len, frame.len() - 4);
    /// assert_eq!(ControlMsg::from_body(&frame[4..]).unwrap(), ControlMsg::Welcome { secret: [7; 32] });
    /// ```
    pub fn to_frame(&self) -> Vec<u8> {
        let mut frame = vec![0u8; 4];
        // Serializing a plain enum into a Vec cannot fail.
        let body = postcard::to_stdvec(self).expect("control messages always serialize");
        frame[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    /// Decodes a frame body (without its length prefix).
    pub fn from_body(body: &[u8]) -> io::Result<Self> {
        postcard::from_bytes(body).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed control message: {e}"),
            )
        })
    }

    /// Parses the length prefix of a control frame, refusing lengths above
    /// [`MAX_CONTROL_FRAME`].
    pub fn body_len(prefix: [u8; 4]) -> io::Result<usize> {
        let len = u32::from_le_bytes(prefix) as usize;
        if len > MAX_CONTROL_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("control frame of {len} bytes exceeds the {MAX_CONTROL_FRAME}-byte limit"),
            ));
        }
        Ok(len)
    }

    /// Writes one frame to a blocking writer.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.to_frame())
    }

    /// Reads one frame from a blocking reader. Returns `Ok(None)` on a clean EOF before
    /// the first byte of a frame.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Self>> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match r.read(&mut prefix[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut body = vec![0u8; Self::body_len(prefix)?];
        r.read_exact(&mut body)?;
        Self::from_body(&body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_a_stream() {
        let msgs = vec![
            ControlMsg::Welcome { secret: [1; 32] },
            ControlMsg::Ready {
                rank: 3,
                addr: "127.0.0.1:4000".parse().unwrap(),
            },
            ControlMsg::Peers {
                peers: vec![PeerInfo {
                    addr: "[::1]:1".parse().unwrap(),
                    host: "pi1".into(),
                }],
            },
            ControlMsg::PeerExited {
                rank: 1,
                how: ExitKind::Signal(9),
            },
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            m.write_to(&mut buf).unwrap();
        }
        let mut r = &buf[..];
        for m in &msgs {
            assert_eq!(&ControlMsg::read_from(&mut r).unwrap().unwrap(), m);
        }
        assert!(ControlMsg::read_from(&mut r).unwrap().is_none());
    }

    #[test]
    fn oversized_length_prefix_is_refused() {
        let prefix = ((MAX_CONTROL_FRAME + 1) as u32).to_le_bytes();
        assert!(ControlMsg::body_len(prefix).is_err());
        let mut r = &prefix[..];
        assert!(ControlMsg::read_from(&mut r).is_err());
    }
}
