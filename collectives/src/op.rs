//! Reduction operations: the [`Op`] trait, MPI's built-in operations on plain numeric
//! types ([`Sum`], [`Prod`], [`Min`], [`Max`], logical and bitwise ops, [`MinLoc`]/[`MaxLoc`]
//! on [`Loc`] pairs) and user closures ([`UserOp`]).
//!
//! An operation combines two elements, `combine(a, b)`, where `a` always comes from lower
//! ranks than `b`. Operations must be associative; a non-commutative one
//! ([`Op::commutative`] is `false`) is always applied in rank order, so the result is
//! `x0 ∘ x1 ∘ … ∘ x(p-1)` on every algorithm.
//!
//! # Order of combination (and bit-identical floating point)
//!
//! Every algorithm combines in a fixed order that does not depend on timing, and every
//! element of an allreduce result is computed once and copied, or computed identically by
//! the ranks that share it, so floating-point results are bit-identical on every rank and
//! from run to run (they can differ between algorithms, and from a sequential loop).
//!
//! - **binomial** reduce: each rank combines its children's partial results in the order of
//!   the tree (`acc ∘ child` for children `v+1, v+2, v+4, …` relative to the root). For a
//!   non-commutative operation the tree is rooted at rank 0 (so relative order is rank
//!   order) and rank 0 forwards the result to the root.
//! - **linear** reduce (only when forced): the root folds the lower ranks in from the
//!   nearest down (`x_r ∘ acc`), then the higher ranks upwards (`acc ∘ x_r`): rank order.
//! - **recursive doubling** allreduce: first, when `p` is not a power of two, each even rank
//!   `r < 2*(p - pof2)` hands its vector to `r + 1`, which computes `x_r ∘ x_{r+1}`; then
//!   in round `m` partners exchange their partial results and both compute
//!   `lower ∘ higher` — the same operands in the same order, hence the same bits; finally
//!   the folded ranks receive the result.
//! - **rabenseifner** (reduce and allreduce): the same folding, then reduce-scatter by
//!   recursive halving (round `m`: keep half of the current range, combine
//!   `lower ∘ higher`) leaving each block reduced at exactly one rank; allreduce then
//!   allgathers the blocks by recursive doubling (copies), reduce sends them to the root.
//! - **ring** allreduce and reduce-scatter (commutative operations only): block `b` is
//!   combined along the ring `b+1, b+2, …, b` and finished at exactly one rank, then
//!   copied to the others by a ring allgather.
//! - **reduce_bcast** / **reduce_then_scatter**: a binomial reduce to rank 0, then copies.
//! - **scan** / **exscan** (recursive doubling): in round `m` rank `r` exchanges its group's
//!   reduction with `r ^ m` and folds a lower group in on the left (`lower ∘ mine`).
//!
//! Every order above is rank order for non-commutative operations, so the result is
//! `x0 ∘ x1 ∘ … ∘ x(p-1)` (except `ring`, which is never used for them).

use bytemuck::{Pod, Zeroable};

/// An associative element-wise reduction operation on `T`.
///
/// ```
/// use pirun_collectives::op::{Op, Sum, UserOp};
/// assert_eq!(Sum.combine(2u32, 3), 5);
/// let keep_first = UserOp::non_commutative(|a: u8, _b: u8| a);
/// assert!(!keep_first.commutative());
/// ```
pub trait Op<T>: Sync {
    /// `a ∘ b`, where `a` is the contribution of lower ranks.
    fn combine(&self, a: T, b: T) -> T;

    /// Whether `a ∘ b == b ∘ a`; algorithms may then combine in any (fixed) order.
    fn commutative(&self) -> bool;
}

impl<T, O: Op<T> + ?Sized> Op<T> for &O {
    fn combine(&self, a: T, b: T) -> T {
        (**self).combine(a, b)
    }
    fn commutative(&self) -> bool {
        (**self).commutative()
    }
}

/// `acc[i] = acc[i] ∘ hi[i]`: `hi` comes from higher ranks than `acc`.
///
/// This is the element-wise kernel every reduction runs on received data (public so that
/// benchmarks and programs reducing local arrays use the very same loop, like
/// `MPI_Reduce_local`). Only the first `min(acc.len(), hi.len())` elements are combined;
/// the collectives always pass slices of equal length.
///
/// ```
/// use pirun_collectives::op::{fold_hi, Sum};
/// let mut acc = [1.0f64, 2.0];
/// fold_hi(&Sum, &mut acc, &[10.0, 20.0]);
/// assert_eq!(acc, [11.0, 22.0]);
/// ```
pub fn fold_hi<T: Copy, O: Op<T> + ?Sized>(op: &O, acc: &mut [T], hi: &[T]) {
    for (a, &b) in acc.iter_mut().zip(hi) {
        *a = op.combine(*a, b);
    }
}

/// `acc[i] = lo[i] ∘ acc[i]`: `lo` comes from lower ranks than `acc` (the operand order
/// of `MPI_Reduce_local(lo, acc)`). As [`fold_hi`], with the operands the other way round.
///
/// ```
/// use pirun_collectives::op::{fold_lo, UserOp};
/// let keep_first = UserOp::non_commutative(|a: u8, _b: u8| a);
/// let mut acc = [1u8, 2];
/// fold_lo(&keep_first, &[7, 8], &mut acc);
/// assert_eq!(acc, [7, 8]);
/// ```
pub fn fold_lo<T: Copy, O: Op<T> + ?Sized>(op: &O, lo: &[T], acc: &mut [T]) {
    for (a, &l) in acc.iter_mut().zip(lo) {
        *a = op.combine(l, *a);
    }
}

/// `acc = other ∘ acc` if `other_is_lower`, else `acc = acc ∘ other`.
pub(crate) fn fold<T: Copy, O: Op<T> + ?Sized>(
    op: &O,
    acc: &mut [T],
    other: &[T],
    other_is_lower: bool,
) {
    if other_is_lower {
        fold_lo(op, other, acc)
    } else {
        fold_hi(op, acc, other)
    }
}

/// Plain numeric element types the arithmetic and logical operations apply to.
///
/// Integer sums and products wrap on overflow (as MPI implementations do in practice)
/// instead of panicking in debug builds.
pub trait Arith: Pod {
    /// `a + b`.
    fn add(a: Self, b: Self) -> Self;
    /// `a * b`.
    fn mul(a: Self, b: Self) -> Self;
    /// The smaller of `a` and `b` (`a` if equal or unordered).
    fn min(a: Self, b: Self) -> Self;
    /// The larger of `a` and `b` (`a` if equal or unordered).
    fn max(a: Self, b: Self) -> Self;
    /// Whether `a` counts as true in a logical operation (non-zero).
    fn truth(a: Self) -> bool;
    /// 1 for true, 0 for false.
    fn from_truth(t: bool) -> Self;
}

/// Integer element types the bitwise operations apply to.
pub trait Bits: Pod {
    /// `a & b`.
    fn and(a: Self, b: Self) -> Self;
    /// `a | b`.
    fn or(a: Self, b: Self) -> Self;
    /// `a ^ b`.
    fn xor(a: Self, b: Self) -> Self;
}

macro_rules! int_types {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            fn add(a: Self, b: Self) -> Self { a.wrapping_add(b) }
            fn mul(a: Self, b: Self) -> Self { a.wrapping_mul(b) }
            fn min(a: Self, b: Self) -> Self { if b < a { b } else { a } }
            fn max(a: Self, b: Self) -> Self { if b > a { b } else { a } }
            fn truth(a: Self) -> bool { a != 0 }
            fn from_truth(t: bool) -> Self { t as $t }
        }
        impl Bits for $t {
            fn and(a: Self, b: Self) -> Self { a & b }
            fn or(a: Self, b: Self) -> Self { a | b }
            fn xor(a: Self, b: Self) -> Self { a ^ b }
        }
    )*};
}
int_types!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

macro_rules! float_types {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            fn add(a: Self, b: Self) -> Self { a + b }
            fn mul(a: Self, b: Self) -> Self { a * b }
            fn min(a: Self, b: Self) -> Self { if b < a { b } else { a } }
            fn max(a: Self, b: Self) -> Self { if b > a { b } else { a } }
            fn truth(a: Self) -> bool { a != 0.0 }
            fn from_truth(t: bool) -> Self { if t { 1.0 } else { 0.0 } }
        }
    )*};
}
float_types!(f32, f64);

macro_rules! builtin_ops {
    ($($(#[$doc:meta])* $name:ident: $bound:ident => |$a:ident, $b:ident| $body:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl<T: $bound> Op<T> for $name {
            #[inline]
            fn combine(&self, $a: T, $b: T) -> T { $body }
            fn commutative(&self) -> bool { true }
        }
    )*};
}

builtin_ops! {
    /// Sum (`MPI_SUM`); integers wrap.
    Sum: Arith => |a, b| T::add(a, b);
    /// Product (`MPI_PROD`); integers wrap.
    Prod: Arith => |a, b| T::mul(a, b);
    /// Minimum (`MPI_MIN`).
    Min: Arith => |a, b| T::min(a, b);
    /// Maximum (`MPI_MAX`).
    Max: Arith => |a, b| T::max(a, b);
    /// Logical and (`MPI_LAND`): 1 if both are non-zero, else 0.
    LogicalAnd: Arith => |a, b| T::from_truth(T::truth(a) && T::truth(b));
    /// Logical or (`MPI_LOR`): 1 if either is non-zero, else 0.
    LogicalOr: Arith => |a, b| T::from_truth(T::truth(a) || T::truth(b));
    /// Logical exclusive or (`MPI_LXOR`): 1 if exactly one is non-zero, else 0.
    LogicalXor: Arith => |a, b| T::from_truth(T::truth(a) != T::truth(b));
    /// Bitwise and (`MPI_BAND`).
    BitAnd: Bits => |a, b| T::and(a, b);
    /// Bitwise or (`MPI_BOR`).
    BitOr: Bits => |a, b| T::or(a, b);
    /// Bitwise exclusive or (`MPI_BXOR`).
    BitXor: Bits => |a, b| T::xor(a, b);
}

/// A value paired with an index, for [`MinLoc`] and [`MaxLoc`] (MPI's `MPI_DOUBLE_INT`
/// and friends).
///
/// It is `Pod` for the pairs whose two fields have the same size (so there is no padding):
/// `(f32|i32|u32, i32|u32)` and `(f64|i64|u64, i64|u64)`.
///
/// ```
/// use pirun_collectives::op::{Loc, MinLoc, Op};
/// let a = Loc::new(2.5f64, 3u64);
/// let b = Loc::new(1.0f64, 7u64);
/// assert_eq!(MinLoc.combine(a, b), b);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Loc<V, I> {
    /// The value compared.
    pub value: V,
    /// Where it came from (e.g. a rank or an array index).
    pub index: I,
}

impl<V, I> Loc<V, I> {
    /// A value with its index.
    pub fn new(value: V, index: I) -> Self {
        Loc { value, index }
    }
}

/// Value/index type pairs that make a padding-free [`Loc`].
pub trait LocPair: sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! loc_pairs {
    ($(($v:ty, $i:ty)),*) => {$(
        impl sealed::Sealed for ($v, $i) {}
        impl LocPair for ($v, $i) {}
    )*};
}
loc_pairs!(
    (f32, i32),
    (f32, u32),
    (i32, i32),
    (i32, u32),
    (u32, i32),
    (u32, u32),
    (f64, i64),
    (f64, u64),
    (i64, i64),
    (i64, u64),
    (u64, i64),
    (u64, u64)
);

// SAFETY: `Loc` is `repr(C)` with two `Pod` fields of equal size (enforced by `LocPair`),
// so it has no padding and every bit pattern is valid.
unsafe impl<V: Pod, I: Pod> Zeroable for Loc<V, I> where (V, I): LocPair {}
// SAFETY: as above.
unsafe impl<V: Pod, I: Pod> Pod for Loc<V, I> where (V, I): LocPair {}

/// Minimum value and its index (`MPI_MINLOC`); on equal values, the smaller index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinLoc;

/// Maximum value and its index (`MPI_MAXLOC`); on equal values, the smaller index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaxLoc;

impl<V: Pod + PartialOrd, I: Pod + Ord> Op<Loc<V, I>> for MinLoc
where
    (V, I): LocPair,
{
    fn combine(&self, a: Loc<V, I>, b: Loc<V, I>) -> Loc<V, I> {
        pick_loc(a, b, |x, y| x < y)
    }
    fn commutative(&self) -> bool {
        true
    }
}

impl<V: Pod + PartialOrd, I: Pod + Ord> Op<Loc<V, I>> for MaxLoc
where
    (V, I): LocPair,
{
    fn combine(&self, a: Loc<V, I>, b: Loc<V, I>) -> Loc<V, I> {
        pick_loc(a, b, |x, y| x > y)
    }
    fn commutative(&self) -> bool {
        true
    }
}

fn pick_loc<V: PartialOrd, I: Ord>(
    a: Loc<V, I>,
    b: Loc<V, I>,
    better: impl Fn(&V, &V) -> bool,
) -> Loc<V, I> {
    if better(&b.value, &a.value) || (b.value == a.value && b.index < a.index) {
        b
    } else {
        a
    }
}

/// A user-defined operation from a closure, declared commutative or not.
///
/// ```
/// use pirun_collectives::{local, Collectives, PointToPoint};
/// use pirun_collectives::op::UserOp;
/// // Composition of affine maps x -> m*x + c, as (m, c) pairs: associative, not commutative.
/// let compose = UserOp::non_commutative(|f: [u64; 2], g: [u64; 2]| {
///     [f[0].wrapping_mul(g[0]), f[1].wrapping_mul(g[0]).wrapping_add(g[1])]
/// });
/// let out = local::run(3, |comm| {
///     let mine = [comm.rank() as u64 + 2, 1];
///     Ok(comm.allreduce(&[mine], &compose)?)
/// })
/// .unwrap();
/// // ((x*2 + 1)*3 + 1)*4 + 1 = 24x + 17
/// assert!(out.iter().all(|r| r == &[[24, 17]]));
/// ```
#[derive(Clone, Copy)]
pub struct UserOp<F> {
    f: F,
    commutative: bool,
}

impl<F> UserOp<F> {
    /// An associative and commutative operation.
    pub fn commutative(f: F) -> Self {
        UserOp {
            f,
            commutative: true,
        }
    }

    /// An associative operation that must be applied in rank order.
    pub fn non_commutative(f: F) -> Self {
        UserOp {
            f,
            commutative: false,
        }
    }
}

impl<T, F: Fn(T, T) -> T + Sync> Op<T> for UserOp<F> {
    fn combine(&self, a: T, b: T) -> T {
        (self.f)(a, b)
    }
    fn commutative(&self) -> bool {
        self.commutative
    }
}

impl<F> std::fmt::Debug for UserOp<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserOp")
            .field("commutative", &self.commutative)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins() {
        assert_eq!(Sum.combine(u8::MAX, 2), 1);
        assert_eq!(Prod.combine(3i64, -4), -12);
        assert_eq!(Min.combine(3.5f64, -1.0), -1.0);
        assert_eq!(Max.combine(3u16, 9), 9);
        assert_eq!(LogicalAnd.combine(5i32, 0), 0);
        assert_eq!(LogicalOr.combine(0.0f32, 2.0), 1.0);
        assert_eq!(LogicalXor.combine(3u8, 4), 0);
        assert_eq!(BitAnd.combine(0b1100u8, 0b1010), 0b1000);
        assert_eq!(BitOr.combine(0b1100u8, 0b1010), 0b1110);
        assert_eq!(BitXor.combine(0b1100u8, 0b1010), 0b0110);
        let (a, b, c) = (Loc::new(2i32, 5u32), Loc::new(2, 1), Loc::new(7, 9));
        assert_eq!(MinLoc.combine(a, b), b);
        assert_eq!(MaxLoc.combine(a, c), c);
        assert_eq!(MaxLoc.combine(a, b), b);
        assert_eq!(bytemuck::bytes_of(&Loc::new(1.0f64, 2u64)).len(), 16);
    }

    #[test]
    fn fold_order() {
        let cat = UserOp::non_commutative(|a: u32, b: u32| a * 10 + b);
        let mut acc = [2];
        fold_lo(&cat, &[1], &mut acc);
        fold_hi(&cat, &mut acc, &[3]);
        assert_eq!(acc, [123]);
    }
}
