//! How a thread waits: spin briefly on non-blocking progress, then sleep in epoll — and
//! the background thread that progresses non-blocking operations while the user computes.
//!
//! Latency is won here, and measurement on the 2-core development VM decided the policy
//! (`pingpong`, medians):
//! - waking a thread on the other core costs about 25 µs here, so a rank that sleeps in
//!   `epoll_wait` at once takes 23–32 µs per 8-byte hop when the two ranks run on
//!   different cores (3.5 µs when the scheduler happens to put them on one core);
//! - spinning for up to 200 µs before sleeping gives 3.5 µs (8 B), 14 µs (64 KiB) and
//!   100 µs (1 MiB) whatever the placement — as long as the spin yields the core now and
//!   then: a plain busy loop made two ranks pinned to one core take 104 µs per hop, since
//!   the spinner holds the core its peer needs until its budget runs out;
//! - with `-n 8` on 2 cores, a yielding 50 µs spin keeps 3.4 µs (the six idle ranks sleep).
//!
//! So a waiter first spins (yielding every eighth turn) for up to 200 µs, or 50 µs when the host's ranks
//! outnumber its cores (`PIRUN_SPIN_US` overrides both), then sleeps in epoll. The budget
//! adapts to what the waits look like: while the moving average of recent waits is longer
//! than the window, the spin shrinks to a sixteenth of it, so a rank waiting on a slow peer
//! does not burn its core; a rank blocked in a long receive uses well under 1 % of a core.
//!
//! At most one thread sleeps in `epoll_wait` (the leader); other waiting threads sleep on a
//! condition variable and are woken when a progress pass changes something. The
//! background thread only leads when no user thread is waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant};

use crate::engine::{Engine, State};

/// Longest uninterrupted sleep; bounds how late handshake deadlines are noticed.
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// The adaptive spin budget.
pub(crate) struct SpinPolicy {
    /// Longest spin.
    max_ns: u64,
    /// Moving average (weight 1/8) of how long recent waits lasted.
    avg_wait_ns: AtomicU64,
}

impl SpinPolicy {
    /// `local_ranks` ranks share `cores` cores on this host. `dedicated` is the longest spin
    /// when every rank has a core, `shared` when they do not; `PIRUN_SPIN_US` overrides both.
    pub fn new(
        local_ranks: usize,
        cores: usize,
        dedicated: Duration,
        shared: Duration,
    ) -> SpinPolicy {
        let max = std::env::var("PIRUN_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_micros)
            .unwrap_or(if local_ranks > cores {
                shared
            } else {
                dedicated
            });
        SpinPolicy {
            max_ns: max.as_nanos() as u64,
            avg_wait_ns: AtomicU64::new(0),
        }
    }

    /// The whole window while recent waits were short enough to be caught by it; a sixteenth
    /// of it while they were longer (a rank waiting on a slow peer should not burn its core).
    fn budget(&self) -> Duration {
        let avg = self.avg_wait_ns.load(Ordering::Relaxed);
        Duration::from_nanos(if avg <= self.max_ns {
            self.max_ns
        } else {
            self.max_ns / 16
        })
    }

    fn record(&self, waited: Duration) {
        let avg = self.avg_wait_ns.load(Ordering::Relaxed);
        let d = waited.as_nanos().min(u64::MAX as u128) as u64;
        self.avg_wait_ns
            .store(avg - avg / 8 + d / 8, Ordering::Relaxed);
    }

    /// Turn `turn` of the spin loop: every eighth turn yields the core, so a rank that
    /// shares it (oversubscribed, or placed there by the scheduler) gets to run within a few
    /// microseconds; the other turns only hint the CPU (a `sched_yield` per turn measured
    /// 0.1–0.15 µs slower per hop when each rank has its core).
    fn pause(&self, turn: u32) {
        if turn % 8 == 7 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

impl Engine {
    /// Progresses until `check` returns `Some`, and returns that.
    pub(crate) fn block_until<T>(&self, check: impl FnMut(&mut State) -> Option<T>) -> T {
        self.block_inner(None, check)
            .expect("waits without a deadline always end with a value")
    }

    /// Like [`Engine::block_until`], but gives up (returning `None`) at `deadline`.
    pub(crate) fn block_until_deadline<T>(
        &self,
        deadline: Instant,
        check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        self.block_inner(Some(deadline), check)
    }

    fn block_inner<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let start = Instant::now();
        let budget = self.spin.budget();
        let mut st = self.lock();
        st.user_waiters += 1;
        if st.leader_is_background {
            // Take the sockets back from the background thread.
            self.poller.wake();
        }
        // What the last sleep in epoll_wait returned, handled without asking again.
        let mut woke = Vec::new();
        let mut turns = 0u32;
        let result = loop {
            if woke.is_empty() {
                self.progress(&mut st);
            } else {
                self.progress_with(&mut st, &woke);
                woke.clear();
            }
            if let Some(r) = check(&mut st) {
                break Some(r);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break None;
            }
            if !st.backlog.is_empty() {
                continue; // staged frames to handle: no sleeping on an empty socket
            }
            if now.duration_since(start) < budget {
                drop(st);
                self.spin.pause(turns);
                turns = turns.wrapping_add(1);
                st = self.lock();
                continue;
            }
            let nap = deadline.map_or(MAX_SLEEP, |d| {
                d.saturating_duration_since(now).min(MAX_SLEEP)
            });
            if st.leader_busy {
                st.followers_waiting += 1;
                st = self
                    .followers
                    .wait_timeout(st, nap)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                st.followers_waiting -= 1;
            } else {
                st.leader_busy = true;
                drop(st);
                let _ = self.poller.wait(&mut woke, Some(nap));
                st = self.lock();
                st.leader_busy = false;
                if st.followers_waiting > 0 {
                    self.followers.notify_all();
                }
            }
        };
        st.user_waiters -= 1;
        let hand_over = st.user_waiters == 0 && st.has_background_work();
        drop(st);
        if hand_over {
            self.idle.notify_one();
        }
        self.spin.record(start.elapsed());
        result
    }

    /// Starts the background progress thread if it is not running yet.
    pub(crate) fn ensure_background_thread(&self) {
        let mut slot = self.bg_thread.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let weak = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name("pirun-progress".into())
            .stack_size(256 << 10)
            .spawn(move || background_loop(weak));
        // Without the thread, non-blocking operations still progress inside wait/test.
        *slot = spawned.ok();
    }

    /// Stops the background thread (at finalize).
    pub(crate) fn stop_background_thread(&self) {
        self.lock().shutdown = true;
        self.idle.notify_all();
        self.poller.wake();
        let handle = self
            .bg_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Progresses outstanding non-blocking operations while no user thread waits.
fn background_loop(engine: Weak<Engine>) {
    loop {
        let Some(eng) = engine.upgrade() else {
            return;
        };
        let mut st = eng.lock();
        if st.shutdown {
            return;
        }
        if !st.has_background_work() || st.user_waiters > 0 || st.leader_busy {
            let _unused = eng.idle.wait_timeout(st, MAX_SLEEP);
            continue;
        }
        eng.progress(&mut st);
        if !st.has_background_work() {
            continue;
        }
        st.leader_busy = true;
        st.leader_is_background = true;
        drop(st);
        // The events stay pending (level-triggered) for the progress pass that follows.
        let _ = eng.poller.wait(&mut Vec::new(), Some(MAX_SLEEP));
        let mut st = eng.lock();
        st.leader_busy = false;
        st.leader_is_background = false;
        if st.followers_waiting > 0 {
            eng.followers.notify_all();
        }
    }
}
