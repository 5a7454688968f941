//! Block layouts and buffer helpers: a buffer cut into one contiguous block per rank
//! ([`Layout`]), disjoint borrows of two blocks of one buffer, and aligned vectors for
//! typed data received as bytes.

use std::ops::Range;

use bytemuck::Pod;

/// A buffer cut into consecutive blocks: block `i` is `offs[i]..offs[i + 1]`.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    offs: Vec<usize>,
}

impl Layout {
    /// Blocks of the given sizes, laid out in order.
    pub(crate) fn from_sizes(sizes: impl IntoIterator<Item = usize>) -> Self {
        let mut offs = vec![0];
        let mut end = 0;
        for s in sizes {
            end += s;
            offs.push(end);
        }
        Layout { offs }
    }

    /// `n` items cut into `k` blocks as evenly as possible, larger blocks first.
    pub(crate) fn even(n: usize, k: usize) -> Self {
        Layout::from_sizes((0..k).map(|i| n / k + usize::from(i < n % k)))
    }

    /// `k` blocks of `each` items.
    pub(crate) fn uniform(each: usize, k: usize) -> Self {
        Layout::from_sizes(std::iter::repeat_n(each, k))
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.offs.len() - 1
    }

    /// Total size.
    pub(crate) fn total(&self) -> usize {
        self.offs[self.len()]
    }

    /// Block `i`.
    pub(crate) fn block(&self, i: usize) -> Range<usize> {
        self.offs[i]..self.offs[i + 1]
    }

    /// Blocks `a..b` as one range.
    pub(crate) fn span(&self, a: usize, b: usize) -> Range<usize> {
        self.offs[a]..self.offs[b]
    }

    /// The same layout with every offset multiplied by `k` (items to bytes).
    pub(crate) fn scaled(&self, k: usize) -> Self {
        Layout {
            offs: self.offs.iter().map(|o| o * k).collect(),
        }
    }

    /// Block sizes.
    pub(crate) fn sizes(&self) -> Vec<usize> {
        self.offs.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// `(&buf[a], &mut buf[b])` for two ranges that do not overlap (empty ranges always qualify).
pub(crate) fn split_pair<T>(buf: &mut [T], a: Range<usize>, b: Range<usize>) -> (&[T], &mut [T]) {
    if a.is_empty() {
        (&[], &mut buf[b])
    } else if b.is_empty() {
        (&buf[a], &mut [])
    } else if a.end <= b.start {
        let (x, y) = buf.split_at_mut(b.start);
        (&x[a], &mut y[..b.end - b.start])
    } else {
        assert!(b.end <= a.start, "overlapping blocks {a:?} and {b:?}");
        let (x, y) = buf.split_at_mut(a.start);
        (&y[..a.end - a.start], &mut x[b])
    }
}

/// Bytes of a typed slice.
pub(crate) fn bytes<T: Pod>(s: &[T]) -> &[u8] {
    bytemuck::cast_slice(s)
}

/// Mutable bytes of a typed slice.
pub(crate) fn bytes_mut<T: Pod>(s: &mut [T]) -> &mut [u8] {
    bytemuck::cast_slice_mut(s)
}

/// Typed elements from bytes of any alignment (one copy).
pub(crate) fn from_bytes<T: Pod>(b: &[u8]) -> Vec<T> {
    bytemuck::pod_collect_to_vec(b)
}

/// A zeroed, properly aligned vector of `n` elements (for results handed to the caller;
/// [`crate::scratch::Scratch`] is for intermediate data).
pub(crate) fn zeroed<T: Pod>(n: usize) -> Vec<T> {
    bytemuck::zeroed_vec(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_layout_tiles_and_balances() {
        for n in [0, 1, 5, 17, 100] {
            for k in 1..9 {
                let l = Layout::even(n, k);
                assert_eq!(l.total(), n);
                let s = l.sizes();
                assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn split_pair_either_order() {
        let mut v: Vec<u32> = (0..10).collect();
        let (a, b) = split_pair(&mut v, 6..8, 1..3);
        assert_eq!(a, &[6, 7]);
        b.copy_from_slice(&[60, 70]);
        let (a, b) = split_pair(&mut v, 1..3, 8..10);
        assert_eq!(a, &[60, 70]);
        assert_eq!(b, &[8, 9]);
        let (a, b) = split_pair(&mut v, 4..4, 0..10);
        assert!(a.is_empty() && b.len() == 10);
    }
}
