//! An in-memory transport: every rank is a thread of this process and messages travel
//! through shared mailboxes. It lets the collectives (and programs written against them)
//! run and be tested without sockets or processes.
//!
//! It behaves like a real transport in the ways that matter for correctness:
//! messages above [`Config::rendezvous_threshold`] use rendezvous semantics (the send
//! blocks until the receiver takes the message), so an algorithm that would deadlock over
//! TCP deadlocks here too; every wait is bounded by [`Config::timeout`] and reports what
//! it was waiting for; a rank that fails or panics makes every other rank's pending and
//! later operations fail at once (the failure model of the real runtime); and with
//! [`Config::seed`] set, sends and receives are delayed by seeded random amounts so that
//! messages from different ranks arrive in varying orders and races show up.
//!
//! ```
//! use pirun_collectives::{local, Collectives, PointToPoint};
//! use pirun_collectives::op::Sum;
//! let sums = local::run(4, |comm| Ok(comm.allreduce(&[comm.rank() as u64], Sum)?)).unwrap();
//! assert_eq!(sums, vec![vec![6]; 4]);
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{CollectiveError, PointToPoint, Tag};

/// How [`run_with`] sets up the in-memory transport.
#[derive(Clone, Debug)]
pub struct Config {
    /// Messages longer than this many bytes use rendezvous semantics.
    pub rendezvous_threshold: usize,
    /// Longest time any single operation may block before it fails with
    /// [`LocalError::Timeout`].
    pub timeout: Duration,
    /// Seed of the random delays; `None` for no delays.
    pub seed: Option<u64>,
}

impl Default for Config {
    /// 4 KiB rendezvous threshold, 30 s timeout, no delays.
    fn default() -> Self {
        Config {
            rendezvous_threshold: 4096,
            timeout: Duration::from_secs(30),
            seed: None,
        }
    }
}

/// An error of the in-memory transport, or of a collective run over it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A collective detected an error.
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    /// An operation blocked for longer than [`Config::timeout`] (a deadlock).
    #[error("rank {rank} waited more than {secs} s {waiting_for}")]
    Timeout {
        /// The rank that was waiting.
        rank: usize,
        /// What it was waiting for.
        waiting_for: String,
        /// The timeout, in seconds.
        secs: u64,
    },
    /// Another rank failed first, so this rank's operation was abandoned.
    #[error("rank {rank} gave up because another rank failed")]
    Aborted {
        /// The rank that gave up.
        rank: usize,
    },
    /// A message was addressed to a rank outside the communicator.
    #[error("rank {rank} addressed rank {peer}, but the communicator has {size} ranks")]
    InvalidRank {
        /// The calling rank.
        rank: usize,
        /// The rank addressed.
        peer: usize,
        /// The communicator's size.
        size: usize,
    },
    /// A rank's closure panicked.
    #[error("rank {rank} panicked: {message}")]
    Panicked {
        /// The rank that panicked.
        rank: usize,
        /// The panic message.
        message: String,
    },
}

struct Envelope {
    src: usize,
    tag: Tag,
    data: Vec<u8>,
    /// Set for rendezvous messages: the sender waits until the receiver flags it.
    taken: Option<Arc<Flag>>,
}

#[derive(Default)]
struct Flag {
    done: Mutex<bool>,
    cv: Condvar,
}

#[derive(Default)]
struct Mailbox {
    queue: Mutex<VecDeque<Envelope>>,
    cv: Condvar,
}

struct Shared {
    boxes: Vec<Mailbox>,
    aborted: AtomicBool,
    config: Config,
}

impl Shared {
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        for b in &self.boxes {
            let _guard = b.queue.lock().unwrap_or_else(|e| e.into_inner());
            b.cv.notify_all();
        }
    }
}

/// One rank's endpoint of the in-memory transport; implements [`PointToPoint`] (and so
/// [`crate::Collectives`]).
pub struct LocalComm {
    rank: usize,
    shared: Arc<Shared>,
    rng: Cell<u64>,
}

impl std::fmt::Debug for LocalComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalComm")
            .field("rank", &self.rank)
            .field("size", &self.shared.boxes.len())
            .finish()
    }
}

/// Runs `f` on `size` ranks, each in its own thread, with the default [`Config`].
///
/// Returns every rank's result in rank order, or the first error (an error that caused
/// other ranks to abort is preferred to their [`LocalError::Aborted`]).
///
/// # Panics
/// If `size` is 0.
pub fn run<R, F>(size: usize, f: F) -> Result<Vec<R>, LocalError>
where
    R: Send,
    F: Fn(&LocalComm) -> Result<R, LocalError> + Sync,
{
    run_with(size, &Config::default(), f)
}

/// [`run`] with a given [`Config`].
///
/// # Panics
/// If `size` is 0.
pub fn run_with<R, F>(size: usize, config: &Config, f: F) -> Result<Vec<R>, LocalError>
where
    R: Send,
    F: Fn(&LocalComm) -> Result<R, LocalError> + Sync,
{
    assert!(size > 0, "a communicator needs at least one rank");
    let shared = Arc::new(Shared {
        boxes: (0..size).map(|_| Mailbox::default()).collect(),
        aborted: AtomicBool::new(false),
        config: config.clone(),
    });
    let results: Vec<Result<R, LocalError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let comm = LocalComm {
                    rank,
                    shared: shared.clone(),
                    rng: Cell::new(
                        config
                            .seed
                            .map_or(0, |seed| mix(seed ^ mix(rank as u64 + 1))),
                    ),
                };
                let f = &f;
                s.spawn(move || {
                    let out = catch_unwind(AssertUnwindSafe(|| f(&comm))).unwrap_or_else(|p| {
                        let message = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(non-string panic)".into());
                        Err(LocalError::Panicked { rank, message })
                    });
                    if out.is_err() {
                        comm.shared.abort();
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("rank thread panicked outside catch_unwind"))
            .collect()
    });
    let first_real = results
        .iter()
        .position(|r| matches!(r, Err(e) if !matches!(e, LocalError::Aborted { .. })));
    let first_any = results.iter().position(|r| r.is_err());
    if let Some(i) = first_real.or(first_any) {
        let mut results = results;
        return Err(results.swap_remove(i).err().unwrap());
    }
    Ok(results.into_iter().map(|r| r.ok().unwrap()).collect())
}

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl LocalComm {
    /// A random delay, if delays are on: usually none, sometimes a yield, rarely a short
    /// sleep.
    fn jitter(&self) {
        if self.shared.config.seed.is_none() {
            return;
        }
        let x = mix(self.rng.get());
        self.rng.set(x);
        match x % 16 {
            0..=3 => std::thread::yield_now(),
            4 if x % 64 == 4 => std::thread::sleep(Duration::from_micros(20 + (x >> 58))),
            _ => {}
        }
    }

    fn check_peer(&self, peer: usize) -> Result<(), LocalError> {
        let size = self.shared.boxes.len();
        if peer < size {
            Ok(())
        } else {
            Err(LocalError::InvalidRank {
                rank: self.rank,
                peer,
                size,
            })
        }
    }

    /// Waits on `cv` until `ready` returns something, the job aborts or the timeout passes.
    fn wait<'g, S, T>(
        &self,
        mut guard: MutexGuard<'g, S>,
        cv: &Condvar,
        waiting_for: impl Fn() -> String,
        mut ready: impl FnMut(&mut S) -> Option<T>,
    ) -> Result<T, LocalError> {
        let deadline = Instant::now() + self.shared.config.timeout;
        loop {
            if let Some(t) = ready(&mut guard) {
                return Ok(t);
            }
            if self.shared.aborted.load(Ordering::SeqCst) {
                return Err(LocalError::Aborted { rank: self.rank });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LocalError::Timeout {
                    rank: self.rank,
                    waiting_for: waiting_for(),
                    secs: self.shared.config.timeout.as_secs(),
                });
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            guard = cv
                .wait_timeout(guard, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Queues a message for `dest`; returns the rendezvous flag to wait on, if any.
    fn post(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<Option<Arc<Flag>>, LocalError> {
        self.check_peer(dest)?;
        if self.shared.aborted.load(Ordering::SeqCst) {
            return Err(LocalError::Aborted { rank: self.rank });
        }
        self.jitter();
        let taken = (data.len() > self.shared.config.rendezvous_threshold)
            .then(|| Arc::new(Flag::default()));
        let mailbox = &self.shared.boxes[dest];
        mailbox
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Envelope {
                src: self.rank,
                tag,
                data: data.to_vec(),
                taken: taken.clone(),
            });
        mailbox.cv.notify_all();
        Ok(taken)
    }

    fn await_taken(&self, dest: usize, flag: Option<Arc<Flag>>) -> Result<(), LocalError> {
        let Some(flag) = flag else { return Ok(()) };
        let guard = flag.done.lock().unwrap_or_else(|e| e.into_inner());
        self.wait(
            guard,
            &flag.cv,
            || format!("for rank {dest} to receive a rendezvous message"),
            |done| done.then_some(()),
        )
    }

    fn take(&self, src: usize, tag: Tag) -> Result<Vec<u8>, LocalError> {
        self.check_peer(src)?;
        self.jitter();
        let mailbox = &self.shared.boxes[self.rank];
        let guard = mailbox.queue.lock().unwrap_or_else(|e| e.into_inner());
        let env = self.wait(
            guard,
            &mailbox.cv,
            || format!("for a message from rank {src} with tag {tag}"),
            |q| {
                let i = q.iter().position(|e| e.src == src && e.tag == tag)?;
                q.remove(i)
            },
        )?;
        if let Some(flag) = env.taken {
            *flag.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
            flag.cv.notify_all();
        }
        Ok(env.data)
    }

    fn take_exact(&self, src: usize, tag: Tag, buf: &mut [u8]) -> Result<(), LocalError> {
        let data = self.take(src, tag)?;
        if data.len() != buf.len() {
            return Err(CollectiveError::LengthMismatch {
                rank: self.rank,
                peer: src,
                expected: buf.len(),
                found: data.len(),
            }
            .into());
        }
        buf.copy_from_slice(&data);
        Ok(())
    }
}

impl PointToPoint for LocalComm {
    type Error = LocalError;

    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.boxes.len()
    }

    /// Every rank is a thread of this process.
    fn spans_hosts(&self) -> bool {
        false
    }

    fn send_bytes(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<(), LocalError> {
        let flag = self.post(dest, tag, data)?;
        self.await_taken(dest, flag)
    }

    fn recv_bytes_into(&self, src: usize, tag: Tag, buf: &mut [u8]) -> Result<(), LocalError> {
        self.take_exact(src, tag, buf)
    }

    fn recv_bytes(&self, src: usize, tag: Tag) -> Result<Vec<u8>, LocalError> {
        self.take(src, tag)
    }

    fn sendrecv_bytes_into(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[u8],
        src: usize,
        recv_tag: Tag,
        buf: &mut [u8],
    ) -> Result<(), LocalError> {
        let flag = self.post(dest, send_tag, data)?;
        self.take_exact(src, recv_tag, buf)?;
        self.await_taken(dest, flag)
    }

    fn exchange(
        &self,
        sends: &[(usize, Tag, &[&[u8]])],
        recvs: &mut [(usize, Tag, &mut [&mut [u8]])],
    ) -> Result<(), LocalError> {
        let flags = sends
            .iter()
            .map(|&(dest, tag, parts)| Ok((dest, self.post(dest, tag, &parts.concat())?)))
            .collect::<Result<Vec<_>, LocalError>>()?;
        for (src, tag, parts) in recvs.iter_mut() {
            let mut buf = vec![0u8; parts.iter().map(|p| p.len()).sum()];
            self.take_exact(*src, *tag, &mut buf)?;
            crate::p2p::scatter_into(&buf, parts);
        }
        for (dest, flag) in flags {
            self.await_taken(dest, flag)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Config {
        Config {
            rendezvous_threshold: 8,
            timeout: Duration::from_millis(300),
            seed: Some(1),
        }
    }

    #[test]
    fn ordered_per_sender_and_tag() {
        let out = run_with(2, &quick(), |c| {
            if c.rank() == 0 {
                for i in 0..20u8 {
                    c.send_bytes(1, i32::from(i % 2), &[i])?;
                }
                Ok(vec![])
            } else {
                let odd: Vec<u8> = (0..10)
                    .map(|_| c.recv_bytes(0, 1).map(|v| v[0]))
                    .collect::<Result<_, _>>()?;
                let even: Vec<u8> = (0..10)
                    .map(|_| c.recv_bytes(0, 0).map(|v| v[0]))
                    .collect::<Result<_, _>>()?;
                Ok([even, odd].concat())
            }
        })
        .unwrap();
        let expect: Vec<u8> = (0..20).step_by(2).chain((1..20).step_by(2)).collect();
        assert_eq!(out[1], expect);
    }

    #[test]
    fn rendezvous_sends_deadlock_and_time_out() {
        let err = run_with(2, &quick(), |c| {
            let peer = 1 - c.rank();
            c.send_bytes(peer, 0, &[0; 64])?;
            c.recv_bytes(peer, 0)
        })
        .unwrap_err();
        assert!(matches!(err, LocalError::Timeout { .. }), "{err}");
        assert!(
            err.to_string().contains("to receive a rendezvous message"),
            "{err}"
        );
    }

    #[test]
    fn sendrecv_exchanges_large_messages() {
        let out = run_with(2, &quick(), |c| {
            let peer = 1 - c.rank();
            let mut buf = [0u8; 64];
            c.sendrecv_bytes_into(peer, 0, &[c.rank() as u8 + 1; 64], peer, 0, &mut buf)?;
            Ok(buf[63])
        })
        .unwrap();
        assert_eq!(out, vec![2, 1]);
    }

    #[test]
    fn a_failing_rank_aborts_the_others_and_its_error_wins() {
        let err = run_with(3, &quick(), |c| {
            if c.rank() == 2 {
                return Err(CollectiveError::InvalidRoot { root: 9, size: 3 }.into());
            }
            c.recv_bytes(2, 0)
        })
        .unwrap_err();
        assert_eq!(
            err,
            LocalError::Collective(CollectiveError::InvalidRoot { root: 9, size: 3 })
        );
    }

    #[test]
    fn length_mismatch_and_bad_rank_are_errors() {
        let err = run_with(2, &quick(), |c| {
            if c.rank() == 0 {
                c.send_bytes(1, 0, &[1, 2, 3])
            } else {
                c.recv_bytes_into(0, 0, &mut [0; 2])
            }
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a message of 2 bytes from rank 0 but received 3"),
            "{err}"
        );
        let err = run(1, |c| c.send_bytes(5, 0, &[])).unwrap_err();
        assert_eq!(
            err,
            LocalError::InvalidRank {
                rank: 0,
                peer: 5,
                size: 1
            }
        );
        let err = run(1, |_| -> Result<(), LocalError> { panic!("boom") }).unwrap_err();
        assert_eq!(
            err,
            LocalError::Panicked {
                rank: 0,
                message: "boom".into()
            }
        );
    }
}
