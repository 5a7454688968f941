//! Rank arithmetic shared by the algorithms: binomial trees over ranks relative to a root,
//! and the folding of a non-power-of-two communicator onto its largest power of two that
//! recursive doubling/halving use.

/// A binomial tree over `size` ranks rooted at `root`, seen from one rank.
///
/// Ranks are renumbered relative to the root (`v = (rank - root) mod size`). The parent of
/// `v != 0` is `v` with its lowest set bit cleared; the children of `v` are `v + 2^k` for
/// every `2^k` below `v`'s lowest set bit (below `size` for the root). The subtree of `v`
/// is the contiguous range of relative ranks `v..subtree_end(v)`, which is what lets
/// gather and scatter move one contiguous block per tree edge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tree {
    size: usize,
    root: usize,
    /// This rank's relative rank.
    pub v: usize,
}

impl Tree {
    pub(crate) fn new(rank: usize, root: usize, size: usize) -> Self {
        Tree {
            size,
            root,
            v: (rank + size - root) % size,
        }
    }

    /// The absolute rank of relative rank `v`.
    pub(crate) fn abs(&self, v: usize) -> usize {
        (v + self.root) % self.size
    }

    fn span(&self, v: usize) -> usize {
        if v == 0 {
            self.size.next_power_of_two()
        } else {
            1 << v.trailing_zeros()
        }
    }

    /// This rank's parent (relative), `None` at the root.
    pub(crate) fn parent(&self) -> Option<usize> {
        (self.v != 0).then(|| self.v & (self.v - 1))
    }

    /// This rank's children (relative), smallest subtree first.
    pub(crate) fn children(&self) -> Vec<usize> {
        let span = self.span(self.v);
        std::iter::successors(Some(1usize), |m| m.checked_mul(2))
            .take_while(|&m| m < span)
            .map(|m| self.v + m)
            .take_while(|&c| c < self.size)
            .collect()
    }

    /// One past the last relative rank of `v`'s subtree.
    pub(crate) fn subtree_end(&self, v: usize) -> usize {
        (v + self.span(v)).min(self.size)
    }
}

/// The largest power of two not above `size`, and how to fold the remaining ranks onto it.
///
/// With `rem = size - pof2`, each even rank `r < 2*rem` hands its data to `r + 1` and sits
/// out; the other ranks get "new ranks" `0..pof2`, in the same order as their ranks, so a
/// new rank's contribution always covers a contiguous run of ranks (which keeps
/// non-commutative reductions in rank order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fold {
    pub pof2: usize,
    pub rem: usize,
}

impl Fold {
    pub(crate) fn new(size: usize) -> Self {
        let pof2 = if size.is_power_of_two() {
            size
        } else {
            size.next_power_of_two() / 2
        };
        Fold {
            pof2,
            rem: size - pof2,
        }
    }

    /// The new rank of `rank`, or `None` if it sits out.
    pub(crate) fn new_rank(&self, rank: usize) -> Option<usize> {
        if rank < 2 * self.rem {
            (rank % 2 == 1).then_some(rank / 2)
        } else {
            Some(rank - self.rem)
        }
    }

    /// The rank holding new rank `nr`.
    pub(crate) fn real(&self, nr: usize) -> usize {
        if nr < self.rem {
            2 * nr + 1
        } else {
            nr + self.rem
        }
    }

    /// The masks `1, 2, 4, ..` below `pof2`.
    pub(crate) fn masks(&self) -> impl DoubleEndedIterator<Item = usize> {
        (0..self.pof2.trailing_zeros()).map(|k| 1usize << k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tree_covers_every_rank_once() {
        for size in 1..=33 {
            for root in [0, size / 2, size - 1] {
                for rank in 0..size {
                    let t = Tree::new(rank, root, size);
                    assert_eq!(t.abs(t.v), rank);
                    match t.parent() {
                        None => assert_eq!(rank, root),
                        Some(p) => {
                            let pt = Tree::new(t.abs(p), root, size);
                            assert!(pt.children().contains(&t.v));
                        }
                    }
                    // The children's subtrees tile this subtree after this rank.
                    let mut next = t.v + 1;
                    for c in t.children() {
                        assert_eq!(c, next);
                        next = t.subtree_end(c);
                    }
                    assert_eq!(next, t.subtree_end(t.v));
                }
            }
        }
    }

    #[test]
    fn fold_maps_ranks_monotonically_onto_a_power_of_two() {
        for size in 1..=40 {
            let f = Fold::new(size);
            assert!(f.pof2.is_power_of_two() && f.pof2 <= size && 2 * f.pof2 > size);
            let news: Vec<_> = (0..size).filter_map(|r| f.new_rank(r)).collect();
            assert_eq!(news, (0..f.pof2).collect::<Vec<_>>());
            for nr in 0..f.pof2 {
                assert_eq!(f.new_rank(f.real(nr)), Some(nr));
            }
            assert_eq!(f.masks().count(), f.pof2.trailing_zeros() as usize);
        }
    }
}
