//! Code shared by the example programs: the primality test and the work split of the
//! `primes` example.

use std::ops::RangeInclusive;

/// Whether `n` is prime, by trial division: 2, 3, then every 6k ± 1 up to √n — the
/// classic `check_prime` loop.
///
/// ```
/// assert!(pirun_examples::is_prime(997));
/// assert!(!pirun_examples::is_prime(1));
/// assert_eq!((1..=1000).filter(|&n| pirun_examples::is_prime(n)).count(), 168);
/// ```
pub fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 || n % 3 == 0 {
        return false;
    }
    let mut d = 5u64;
    while d <= n / d {
        if n % d == 0 || n % (d + 2) == 0 {
            return false;
        }
        d += 6;
    }
    true
}

/// How a range of candidates is divided among ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Blocks of equal length (cheap early blocks, expensive late ones).
    Block,
    /// Contiguous blocks of equal estimated cost.
    Cost,
}

/// Estimated cost of testing the numbers around `x`: a prime costs about √x/3 trial
/// divisions and one number in ln x is prime; a composite usually stops at a small
/// factor, a couple of divisions.
fn cost_density(x: f64) -> f64 {
    let x = x.max(3.0);
    x.sqrt() / (3.0 * x.ln()) + 2.0
}

/// Boundaries `b[0] = lo < b[1] <= ... <= b[size] = hi + 1`: rank `r` takes
/// `b[r]..b[r + 1]`. Computed on one rank and broadcast, so every rank agrees even when
/// their floating point differs (mixed CPUs).
///
/// ```
/// use pirun_examples::{boundaries, Split};
/// assert_eq!(boundaries(1, 10, 3, Split::Block), [1, 5, 8, 11]);
/// let b = boundaries(2, 1_000_000, 2, Split::Cost);
/// assert!(b[1] > 500_001, "the cheap low half needs more numbers: {b:?}");
/// ```
pub fn boundaries(lo: u64, hi: u64, size: usize, split: Split) -> Vec<u64> {
    let end = hi.saturating_add(1).max(lo);
    let mut b = Vec::with_capacity(size + 1);
    match split {
        Split::Block => b.extend((0..size).map(|r| {
            let block = pirun::partition(lo..=hi, r, size);
            if block.is_empty() {
                end // an empty share: nothing of the range is left for this rank
            } else {
                *block.start()
            }
        })),
        Split::Cost => {
            // Cumulative cost over STEPS equal sub-intervals (midpoint rule), then invert.
            const STEPS: usize = 1 << 14;
            let width = (end - lo) as f64 / STEPS as f64;
            let mut cum = Vec::with_capacity(STEPS + 1);
            cum.push(0.0);
            for i in 0..STEPS {
                let mid = lo as f64 + (i as f64 + 0.5) * width;
                cum.push(cum[i] + cost_density(mid) * width);
            }
            let total = cum[STEPS];
            let mut i = 0;
            for r in 0..size {
                let target = total * r as f64 / size as f64;
                while i < STEPS && cum[i + 1] < target {
                    i += 1;
                }
                let frac = if cum[i + 1] > cum[i] {
                    (target - cum[i]) / (cum[i + 1] - cum[i])
                } else {
                    0.0
                };
                let x = lo as f64 + (i as f64 + frac) * width;
                b.push((x.round() as u64).clamp(lo, end));
            }
            b[0] = lo;
        }
    }
    b.push(end);
    for k in 1..b.len() {
        b[k] = b[k].max(b[k - 1]);
    }
    b
}

/// The primes among `range`, ascending.
pub fn primes_in(range: RangeInclusive<u64>) -> Vec<u64> {
    range.filter(|&n| is_prime(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_prime_counts() {
        assert_eq!(primes_in(2..=1000).len(), 168);
        assert_eq!(primes_in(1..=100_000).len(), 9592);
        assert!(is_prime(1_000_000_007));
        assert!(!is_prime(1_000_000_007 * 3));
    }

    #[test]
    fn boundaries_tile_the_range() {
        for split in [Split::Block, Split::Cost] {
            for size in 1..=9 {
                for (lo, hi) in [(2u64, 1000u64), (5, 7), (10, 9), (1, 30_000_000)] {
                    let b = boundaries(lo, hi, size, split);
                    assert_eq!(b.len(), size + 1);
                    assert_eq!(b[0], lo);
                    assert_eq!(*b.last().unwrap(), hi.saturating_add(1).max(lo));
                    assert!(b.windows(2).all(|w| w[0] <= w[1]), "{split:?} {b:?}");
                }
            }
        }
    }
}
