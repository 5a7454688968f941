//! Shared test harness: a hard timeout around every test, the in-memory transport with
//! seeded delays and rendezvous for all but tiny messages, the size/length/seed matrix, and
//! deterministic data.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use pirun_collectives::local::{self, Config, LocalComm, LocalError};

/// Communicator sizes every operation is tested on.
pub const SIZES: std::ops::RangeInclusive<usize> = 1..=17;
/// Payload lengths (elements) every operation is tested with.
pub const LENS: [usize; 4] = [0, 1, 7, 4099];
/// Seeds of the delays.
pub const SEEDS: [u64; 3] = [11, 23, 37];
/// One large payload for a subset: 4 MiB of u64s.
pub const BIG: usize = 4 << 17;

/// Runs `f` in a thread and fails the test if it does not finish within `secs`.
pub fn with_timeout(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test did not finish within {secs} s (deadlock?)")
        }
    }
}

/// Transport settings for a seed: rendezvous above 64 bytes, 10 s per blocking wait.
pub fn config(seed: u64) -> Config {
    Config {
        rendezvous_threshold: 64,
        timeout: Duration::from_secs(10),
        seed: Some(seed),
    }
}

/// Runs `f` on `p` ranks with the delays of `seed`; panics with context on error.
pub fn run<R: Send>(
    what: &str,
    p: usize,
    seed: u64,
    f: impl Fn(&LocalComm) -> Result<R, LocalError> + Sync,
) -> Vec<R> {
    local::run_with(p, &config(seed), f)
        .unwrap_or_else(|e| panic!("{what}, {p} ranks, seed {seed}: {e}"))
}

/// Calls `f(p, len, seed)` for every size, length and seed.
pub fn matrix(mut f: impl FnMut(usize, usize, u64)) {
    for p in SIZES {
        for len in LENS {
            for seed in SEEDS {
                f(p, len, seed);
            }
        }
    }
}

/// Deterministic, rank- and index-dependent data.
pub fn val(rank: usize, i: usize) -> u64 {
    let mut z = (rank as u64) << 32 ^ i as u64;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 27)
}

/// `len` elements of rank `rank`'s data.
pub fn data(rank: usize, len: usize) -> Vec<u64> {
    (0..len).map(|i| val(rank, i)).collect()
}

/// A root that varies with the size and seed.
pub fn root_for(p: usize, seed: u64) -> usize {
    (seed as usize * 7 + p / 2) % p
}
