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
//! - with `-n 8` on 2 cores, a yielding 50 µs spin keeps 3.4 µs (the six idle ranks sleep),
//!   and so does 200 µs (2.80 vs 2.86 µs, alternated);
//! - on a crowded host (4 or 8 ranks on 2 cores, bound in pairs or fours), a rank that
//!   waits for several senders in turn (a linear gather or reduce root) outlasted a 50 µs
//!   spin while its core-mate sent, and each of its later messages then paid for a wake-up.
//!   collbench, 4 alternated runs, 50 vs 200 µs: reduce 8 B on 8 ranks 8.9 vs 3.7 µs, 1 KiB
//!   12.2 vs 7.2; gather 8 B on 8 ranks 7.9 vs 4.4, 1 KiB on 4 ranks 4.75 vs 4.28; scatter
//!   64 KiB on 8 ranks 147 vs 132; allreduce, allgather, alltoall and barrier within ±4 %.
//!
//! So a waiter first spins for up to 200 µs (`PIRUN_SPIN_US`), then sleeps in epoll. The
//! budget adapts to what the waits look like: while the moving average of recent waits is
//! longer than the window, the spin shrinks to a sixteenth of it, so a rank waiting on a
//! slow peer does not burn its core; a rank blocked in a long receive uses well under 1 %
//! of a core (8 ranks on 2 cores blocked for 2 s: 0.01 s of CPU in all).
//!
//! What a spin turn costs is the latency's grain, so it is kept to one system call
//! (`benches/compare/experiments/README.md`, "Waiting"):
//! - a wait for a message from one rank (a receive naming its source, a large send waiting
//!   for clear-to-send) reads that rank's connection directly — one `recv` per turn, and
//!   one per message instead of `epoll_wait` + `recv`; after `FULL_PASS_EVERY` such
//!   passes in a row the next one asks epoll about everything (other peers, new
//!   connections, the launcher), so nothing starves while two ranks ping-pong;
//! - every eighth turn yields the core, and every turn while the last yield actually ran
//!   another thread: two ranks pinned to one core then hand it over at once (3.2 µs per
//!   8-byte hop; 4.9 µs when only every eighth turn yielded), and a rank with a core of its
//!   own does not pay a `sched_yield` per turn (3.4 µs per 1 KiB hop, 3.6 when it does).
//! - a rank with a core of its own leaves about a microsecond between turns
//!   (`PIRUN_SPIN_GAP_NS`, 1000; 0 when ranks outnumber cores). Back-to-back `recv`s on an
//!   empty socket take the socket's lock as often as the peer's `send` needs it to deliver
//!   into that socket, and the sender spun on it: in a stream of 8-byte broadcasts on two
//!   ranks, 11 % of the sender's time was `__pv_queued_spin_lock_slowpath`. Alternated
//!   runs, gap 0 vs 1000 ns: ping-pong one way 8 B 3.84 vs 2.96 µs, 1 KiB 4.00 vs 3.27;
//!   collbench on 2 ranks 4–9 % faster at 8 B and 1 KiB. With ranks sharing cores the gap
//!   made 4-rank allreduce and barrier 10–30 % slower when paused turns still yielded
//!   every eighth turn, and was within ±5 % either way once they yield every other turn
//!   (below), so there it stays 0. A readiness `poll` before each `recv`, which takes no socket lock,
//!   cost more than it saved (one more system call per message). Paused turns yield every
//!   other turn, not every eighth, so yields stay about 3 µs apart: on the 100 Mbit/s
//!   testbed four one-rank "hosts" share 2 cores without knowing it, and yielding every
//!   eighth paused turn made small symmetric collectives slower there (2 alternations, µs,
//!   no gap / every eighth / every other: allreduce 8 B 27.1, 27.1 / 30.2, 31.8 / 26.4,
//!   23.9; allgather 8 B 27.7, 30.1 / 32.3, 29.6 / 25.2, 25.7; alltoall 8 B 37.8, 43.0 /
//!   50.4, 46.9 / 40.3, 38.7).
//!
//! At most one thread sleeps in `epoll_wait` (the leader); other waiting threads sleep on a
//! condition variable and are woken when a progress pass changes something. The
//! background thread only leads when no user thread is waiting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant};

use crate::config::env_u64;
use crate::engine::{Engine, State};
use crate::request::ReqId;

/// While spinning for a message from one rank, a thread reads that rank's connection
/// directly, but after this many such passes in a row (counted across waits) the next pass
/// asks epoll about every descriptor: other peers, new connections, the launcher's notices.
const FULL_PASS_EVERY: u32 = 8;

/// Pause between spin turns of a rank that has a core of its own (`PIRUN_SPIN_GAP_NS`).
const SPIN_GAP: Duration = Duration::from_micros(1);

/// A `sched_yield` that took longer than this ran another thread meanwhile.
const SWITCHED_YIELD: Duration = Duration::from_micros(2);

/// Longest uninterrupted sleep; bounds how late handshake deadlines are noticed.
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// The adaptive spin budget.
pub(crate) struct SpinPolicy {
    /// Longest spin.
    max_ns: u64,
    /// Moving average (weight 1/8) of how long recent waits lasted.
    avg_wait_ns: AtomicU64,
    /// The last `sched_yield` handed the core to another thread: this rank shares its core
    /// (with its peer, most likely), so the spin yields on every turn.
    shared_core: AtomicBool,
    /// This host runs more ranks of the job than it has cores.
    oversubscribed: bool,
    /// Busy pause between turns that do not yield; 0 for a bare spin-loop hint.
    gap_ns: u64,
}

impl SpinPolicy {
    /// `local_ranks` ranks share `cores` cores on this host; `max` is the longest spin
    /// (`PIRUN_SPIN_US` overrides it). Turns are [`SPIN_GAP`] apart when every rank has a
    /// core (`PIRUN_SPIN_GAP_NS` overrides it).
    pub fn new(local_ranks: usize, cores: usize, max: Duration) -> SpinPolicy {
        let max = env_u64("PIRUN_SPIN_US")
            .map(Duration::from_micros)
            .unwrap_or(max);
        SpinPolicy {
            max_ns: max.as_nanos() as u64,
            avg_wait_ns: AtomicU64::new(0),
            shared_core: AtomicBool::new(false),
            oversubscribed: local_ranks > cores,
            gap_ns: env_u64("PIRUN_SPIN_GAP_NS").unwrap_or(if local_ranks > cores {
                0
            } else {
                SPIN_GAP.as_nanos() as u64
            }),
        }
    }

    /// Whether this host runs more ranks of the job than it has cores (the collectives
    /// then pick algorithms that keep few ranks busy at once).
    pub fn oversubscribed(&self) -> bool {
        self.oversubscribed
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

    /// How many turns apart the spin yields while the core is not known to be shared:
    /// yields stay about 3 µs apart, every eighth bare turn or every other paused one.
    fn yield_every(&self) -> u32 {
        if self.gap_ns == 0 {
            8
        } else {
            2
        }
    }

    /// Turn `turn` of the spin loop: every eighth turn yields the core (every other
    /// turn when turns are a gap apart) — every turn while the last yield showed that
    /// another thread wanted it — so a rank that shares it (oversubscribed, or placed there
    /// by the scheduler) gets to run within a turn or a few; the other turns pause for the
    /// gap without a system call.
    fn pause(&self, turn: u32) {
        let every = self.yield_every();
        if self.shared_core.load(Ordering::Relaxed) || turn % every == every - 1 {
            // Time the yield alone (not the unlock before it, which may wake a waiter):
            // an empty yield costs well under a microsecond; one that ran another thread
            // costs two context switches and that thread's work.
            let t = Instant::now();
            std::thread::yield_now();
            self.shared_core
                .store(t.elapsed() > SWITCHED_YIELD, Ordering::Relaxed);
        } else if self.gap_ns == 0 {
            std::hint::spin_loop();
        } else {
            let t = Instant::now();
            while t.elapsed().as_nanos() < u128::from(self.gap_ns) {
                std::hint::spin_loop();
            }
        }
    }
}

impl Engine {
    /// Progresses until `check` returns `Some`, and returns that.
    pub(crate) fn block_until<T>(&self, check: impl FnMut(&mut State) -> Option<T>) -> T {
        self.block_inner(None, None, check)
            .expect("waits without a deadline always end with a value")
    }

    /// Like [`Engine::block_until`] for a wait that ends with request `req`: while
    /// spinning for a receive from one rank, the connection from that rank is read
    /// directly on most turns.
    pub(crate) fn block_on<T>(&self, req: ReqId, check: impl FnMut(&mut State) -> Option<T>) -> T {
        self.block_inner(None, Some(req), check)
            .expect("waits without a deadline always end with a value")
    }

    /// Like [`Engine::block_until`], but gives up (returning `None`) at `deadline`.
    pub(crate) fn block_until_deadline<T>(
        &self,
        deadline: Instant,
        check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        self.block_inner(Some(deadline), None, check)
    }

    fn block_inner<T>(
        &self,
        deadline: Option<Instant>,
        req: Option<ReqId>,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        // Read the clock only once the first pass has not finished the wait: most waits of
        // a ping-pong take a few passes, and the clock costs ~30 ns a read here.
        let mut start = None;
        let budget = self.spin.budget();
        let mut st = self.lock();
        let from = req.and_then(|r| st.reqs.source(r));
        st.user_waiters += 1;
        if st.leader_is_background {
            // Take the sockets back from the background thread.
            self.poller.wake();
        }
        // What the last sleep in epoll_wait returned, handled without asking again.
        let mut woke = Vec::new();
        let mut turns = 0u32;
        let result = loop {
            let direct = match from {
                Some(p) if woke.is_empty() && st.direct_passes < FULL_PASS_EVERY => {
                    st.direct_conn(req, p)
                }
                _ => None,
            };
            if let Some(ci) = direct {
                st.direct_passes += 1;
                self.progress_conn(&mut st, ci);
            } else if woke.is_empty() {
                self.progress(&mut st);
            } else {
                st.direct_passes = 0;
                self.progress_with(&mut st, &woke);
                woke.clear();
            }
            if let Some(r) = check(&mut st) {
                break Some(r);
            }
            let now = Instant::now();
            let start = *start.get_or_insert(now);
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
        self.spin
            .record(start.map_or(Duration::ZERO, |t: Instant| t.elapsed()));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicBool;
    use std::sync::{mpsc, Arc};

    use crate::contract::PeerInfo;
    use crate::datatype::TypeInfo;
    use crate::engine::Listeners;
    use crate::matching::SinkSpec;
    use crate::request::Outcome;

    /// `n` engines of one job in this process, joined over loopback (no launcher), whose
    /// waits spin for up to `spin` before sleeping.
    pub(crate) fn world(n: usize, spin: Duration) -> Vec<Arc<Engine>> {
        world_with_local(n, spin, |_| true)
    }

    /// [`world`], where the ranks for which `local` says so listen on the local channel
    /// too (they all count as on one host).
    pub(crate) fn world_with_local(
        n: usize,
        spin: Duration,
        local: impl Fn(usize) -> bool,
    ) -> Vec<Arc<Engine>> {
        let listeners: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
            .collect();
        let peers: Vec<PeerInfo> = listeners
            .iter()
            .map(|l| PeerInfo {
                addr: l.local_addr().expect("bound"),
                host: "localhost".into(),
            })
            .collect();
        listeners
            .into_iter()
            .enumerate()
            .map(|(rank, l)| {
                let spin = SpinPolicy::new(n, n, spin);
                let port = l.local_addr().expect("bound").port();
                let listeners = Listeners {
                    local: local(rank).then(|| {
                        crate::stream::bind_local(&[7; 32], rank as u32, port)
                            .expect("bind the local channel")
                    }),
                    tcp: Some(l),
                };
                Engine::new(rank as u32, [7; 32], peers.clone(), listeners, None, spin)
                    .expect("engine")
            })
            .collect()
    }

    /// Blocking receive of a byte message from `src` with `tag`.
    pub(crate) fn recv(e: &Engine, src: u32, tag: i32) -> Vec<u8> {
        let sink = SinkSpec::Owned { align: 1 };
        let req = e
            .post_recv(0, Some(src), Some(tag), TypeInfo::BYTES, sink, false)
            .expect("post a receive");
        match e.wait(req).expect("receive") {
            Outcome::Received { data: Some(d), .. } => d.as_slice().to_vec(),
            _ => panic!("a receive into a new buffer yields the buffer"),
        }
    }

    /// Runs `f` on its own thread, failing the test if it takes longer than `secs`.
    pub(crate) fn bounded<T: Send + 'static>(
        secs: u64,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        within(secs, start(f)).expect("finished in time")
    }

    /// Starts `f` on a thread of its own; the receiver gets its result.
    pub(crate) fn start<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx
    }

    /// What a thread [`start`]ed returned, or `None` if it did not within `secs`.
    pub(crate) fn within<T>(secs: u64, rx: mpsc::Receiver<T>) -> Option<T> {
        rx.recv_timeout(Duration::from_secs(secs)).ok()
    }

    #[test]
    fn only_a_rank_with_a_core_of_its_own_pauses_between_turns() {
        if std::env::var_os("PIRUN_SPIN_GAP_NS").is_some() {
            return; // the override applies to both
        }
        let own = SpinPolicy::new(2, 2, Duration::from_micros(200));
        let crowded = SpinPolicy::new(8, 2, Duration::from_micros(200));
        assert!(!own.oversubscribed() && crowded.oversubscribed());
        assert_eq!(own.gap_ns, SPIN_GAP.as_nanos() as u64);
        assert_eq!(own.yield_every(), 2);
        assert_eq!(crowded.gap_ns, 0);
        assert_eq!(crowded.yield_every(), 8);
    }

    #[test]
    fn a_rank_spinning_on_one_peer_still_answers_a_new_one() {
        // Ranks 0 and 1 ping-pong, so rank 0 mostly reads rank 1's connection directly;
        // rank 2 then dials rank 0 for the first time, which needs rank 0 to accept it and
        // answer the handshake while the ping-pong goes on. The spin is long enough that
        // rank 0 never sleeps in epoll meanwhile: only its periodic full pass can see rank 2.
        bounded(60, || {
            let w = world(3, Duration::from_secs(30));
            let stop = Arc::new(AtomicBool::new(false));
            let e1 = w[1].clone();
            let partner = std::thread::spawn(move || loop {
                let m = recv(&e1, 0, 1);
                if m == b"stop" {
                    return;
                }
                e1.send(0, 0, 1, TypeInfo::BYTES, &m).expect("send back");
            });
            let (e2, stop2) = (w[2].clone(), stop.clone());
            let newcomer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                e2.send(0, 0, 2, TypeInfo::BYTES, b"hello from 2")
                    .expect("send to a busy rank");
                stop2.store(true, Ordering::SeqCst);
            });
            let give_up = Instant::now() + Duration::from_secs(20);
            let mut rounds = 0u64;
            while !stop.load(Ordering::SeqCst) {
                assert!(
                    Instant::now() < give_up,
                    "rank 2's first send did not finish while rank 0 ping-ponged"
                );
                let ping = rounds.to_le_bytes();
                w[0].send(1, 0, 1, TypeInfo::BYTES, &ping).expect("ping");
                assert_eq!(recv(&w[0], 1, 1), ping);
                rounds += 1;
            }
            w[0].send(1, 0, 1, TypeInfo::BYTES, b"stop").expect("stop");
            assert_eq!(recv(&w[0], 2, 2), b"hello from 2");
            partner.join().expect("partner");
            newcomer.join().expect("newcomer");
            assert!(rounds > 0);
        });
    }

    #[test]
    fn large_messages_and_small_ones_interleave_with_direct_reads() {
        // Rendezvous sends wait for the receiver's clear-to-send on the connection they
        // read directly; eager ones overtake nothing.
        bounded(60, || {
            let w = world(2, Duration::from_micros(200));
            let e1 = w[1].clone();
            let echo = std::thread::spawn(move || {
                for i in 0..20u32 {
                    let big = recv(&e1, 0, 3);
                    let small = recv(&e1, 0, 4);
                    assert_eq!(big.len(), (1 << 20) + i as usize);
                    assert_eq!(small, i.to_le_bytes());
                    e1.send(0, 0, 3, TypeInfo::BYTES, &big).expect("echo big");
                }
            });
            for i in 0..20u32 {
                let big: Vec<u8> = (0..(1 << 20) + i as usize)
                    .map(|k| (k * 7 + i as usize) as u8)
                    .collect();
                w[0].send(1, 0, 3, TypeInfo::BYTES, &big).expect("big");
                w[0].send(1, 0, 4, TypeInfo::BYTES, &i.to_le_bytes())
                    .expect("small");
                assert!(recv(&w[0], 1, 3) == big, "round {i}: the echo differs");
            }
            echo.join().expect("echo");
        });
    }
}
