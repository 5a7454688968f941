//! Dividing a range of work among ranks.

use std::ops::RangeInclusive;

/// The block of `range` that `rank` of `size` ranks should take: contiguous blocks in rank
/// order whose lengths differ by at most one (the first `len % size` ranks get one more).
/// A rank with nothing to do gets an empty range.
///
/// ```
/// let parts: Vec<_> = (0..3).map(|r| pirun::partition(1..=10, r, 3)).collect();
/// assert_eq!(parts, [1..=4, 5..=7, 8..=10]);
/// assert!(pirun::partition(1..=2, 2, 3).is_empty());
/// ```
pub fn partition(range: RangeInclusive<u64>, rank: usize, size: usize) -> RangeInclusive<u64> {
    let (lo, hi) = range.into_inner();
    if hi < lo || size == 0 || rank >= size {
        return empty();
    }
    let len = (hi - lo) as u128 + 1;
    let (size, rank) = (size as u128, rank as u128);
    let base = len / size;
    let extra = len % size;
    let start = rank * base + rank.min(extra);
    let count = base + u128::from(rank < extra);
    if count == 0 {
        return empty();
    }
    let first = lo + start as u64;
    first..=first + (count - 1) as u64
}

/// An empty range of this type (`1..=0`).
fn empty() -> RangeInclusive<u64> {
    RangeInclusive::new(1, 0)
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn blocks_cover_the_range_exactly_once() {
        for size in 1..=9 {
            for (lo, hi) in [(0u64, 0u64), (2, 1000), (5, 7), (0, u64::MAX)] {
                let mut next = lo as u128;
                for r in 0..size {
                    let p = partition(lo..=hi, r, size);
                    if p.is_empty() {
                        continue;
                    }
                    assert_eq!(*p.start() as u128, next);
                    next = *p.end() as u128 + 1;
                }
                assert_eq!(next, hi as u128 + 1);
            }
        }
    }
}
