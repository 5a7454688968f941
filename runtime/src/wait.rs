//! How a thread waits: spin briefly on non-blocking progress, then sleep in epoll — and
//! the background thread that progresses non-blocking operations while the user computes.
//!
//! Latency is won here. The design started from the common wisdom (MPICH, Open MPI) that
//! polling the sockets for a while before sleeping beats a wake-up. Measured on the 2-core
//! development machine, it does not: an 8-byte one-way trip takes 3.7–3.9 µs when the
//! waiter sleeps in `epoll_wait` at once, 4.2 µs with a 10 µs spin and 4.5 µs with 30 µs,
//! and spinning halves 1 MiB bandwidth (the spinning `epoll_wait(0)` calls contend for the
//! very socket locks the incoming data needs). So the default spin budget is zero. Boards
//! whose cores wake slowly from idle can set `PIRUN_SPIN_US`; the budget then adapts — it
//! doubles after a wait that ended while spinning and halves after one that had to sleep,
//! between 1/16 of the maximum and the maximum — and is forced to zero whenever ranks
//! outnumber the cores of their host (with `-n 8` on 2 cores a spinning rank steals the
//! core its peer needs).
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
    max_ns: u64,
    cur_ns: AtomicU64,
}

impl SpinPolicy {
    /// `local_ranks` ranks share `cores` cores on this host; `max` is the longest spin
    /// (`PIRUN_SPIN_US` overrides it).
    pub fn new(local_ranks: usize, cores: usize, max: Duration) -> SpinPolicy {
        let max = std::env::var("PIRUN_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_micros)
            .unwrap_or(max);
        let max_ns = if local_ranks > cores {
            0
        } else {
            max.as_nanos() as u64
        };
        SpinPolicy {
            max_ns,
            cur_ns: AtomicU64::new(max_ns),
        }
    }

    fn budget(&self) -> Duration {
        Duration::from_nanos(self.cur_ns.load(Ordering::Relaxed))
    }

    fn record(&self, caught_while_spinning: bool) {
        let cur = self.cur_ns.load(Ordering::Relaxed);
        let next = if caught_while_spinning {
            (cur * 2).clamp(self.max_ns / 16, self.max_ns)
        } else {
            (cur / 2).max(self.max_ns / 16)
        };
        self.cur_ns.store(next, Ordering::Relaxed);
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
        let mut slept = false;
        let result = loop {
            self.progress(&mut st);
            if let Some(r) = check(&mut st) {
                break Some(r);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break None;
            }
            if now.duration_since(start) < budget {
                drop(st);
                std::hint::spin_loop();
                st = self.lock();
                continue;
            }
            slept = true;
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
                self.poller.sleep(nap);
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
        if budget > Duration::ZERO {
            self.spin.record(!slept);
        }
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
        eng.poller.sleep(MAX_SLEEP);
        let mut st = eng.lock();
        st.leader_busy = false;
        st.leader_is_background = false;
        if st.followers_waiting > 0 {
            eng.followers.notify_all();
        }
    }
}
