//! Scratch space for the algorithms' intermediate data (a subtree's blocks, a partner's
//! half of a vector), reused from call to call.
//!
//! A fresh megabyte buffer costs more than the bytes it holds: on the VM the benchmarks run
//! on, a 1 MiB gather spent 31 % of the root's time in page faults on newly mapped memory
//! (glibc maps large blocks afresh and returns them on free), and raising glibc's mmap and
//! trim thresholds alone took it from 1531 to 606 µs. So each thread keeps the [`SLOTS`]
//! largest scratch buffers it has used, each up to [`KEEP`] bytes, for the next call: once
//! warmed up, a collective takes its scratch space without a system call, a page fault or
//! a `memset` (an algorithm needs at most two at a time, e.g. a reduce's copy of the input
//! and the buffer it receives a child's vector into). Further buffers are allocated and
//! dropped as usual.
//!
//! The contents of a [`Scratch`] are unspecified on creation (left over from an earlier
//! call, or zero): every algorithm writes a region before it reads it.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::{Pod, Zeroable};

/// Largest buffer a thread keeps between calls, in bytes.
pub(crate) const KEEP: usize = 4 << 20;

/// How many buffers a thread keeps between calls.
pub(crate) const SLOTS: usize = 2;

/// The unit of storage: 16 bytes aligned to 16, so the buffer can be viewed as any element
/// type of alignment up to 16.
#[derive(Clone, Copy, Zeroable, Pod)]
#[repr(C, align(16))]
struct Word([u8; 16]);

thread_local! {
    /// This thread's spare buffers (fewer while lent out), each non-empty.
    static SPARE: RefCell<Vec<Vec<Word>>> = const { RefCell::new(Vec::new()) };
}

/// Takes the smallest spare buffer of at least `words` words, if any.
fn take(words: usize) -> Option<Vec<Word>> {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        let i = (0..s.len())
            .filter(|&i| s[i].len() >= words)
            .min_by_key(|&i| s[i].len())?;
        Some(s.swap_remove(i))
    })
}

/// Keeps `v` as a spare if there is a free slot or it is larger than the smallest spare,
/// and it is not too large.
fn give_back(v: Vec<Word>) {
    if v.is_empty() || v.len() * std::mem::size_of::<Word>() > KEEP {
        return;
    }
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SLOTS {
            s.push(v);
        } else if let Some(i) = (0..s.len()).min_by_key(|&i| s[i].len()) {
            if s[i].len() < v.len() {
                s[i] = v;
            }
        }
    });
}

/// A buffer of `len` elements of `T` that returns its storage to the thread's spare slot
/// when dropped (see [`give_back`]).
pub(crate) struct Scratch<T: Pod> {
    store: Store<T>,
    len: usize,
}

enum Store<T> {
    /// Pooled words.
    Words(Vec<Word>, PhantomData<T>),
    /// A plain vector, for element types the words cannot hold (zero-sized, or aligned
    /// above 16).
    Plain(Vec<T>),
}

impl<T: Pod> Scratch<T> {
    /// Scratch space for `len` elements.
    pub(crate) fn new(len: usize) -> Self {
        let (size, align) = (std::mem::size_of::<T>(), std::mem::align_of::<T>());
        if size == 0 || align > std::mem::align_of::<Word>() {
            return Scratch {
                store: Store::Plain(bytemuck::zeroed_vec(len)),
                len,
            };
        }
        let words = (len * size).div_ceil(std::mem::size_of::<Word>());
        // None fits: allocate afresh. A zeroed allocation this large comes from fresh
        // pages, so the zeroing costs nothing extra.
        let v = take(words).unwrap_or_else(|| bytemuck::zeroed_vec(words));
        Scratch {
            store: Store::Words(v, PhantomData),
            len,
        }
    }
}

impl<T: Pod> Drop for Scratch<T> {
    fn drop(&mut self) {
        if let Store::Words(v, _) = &mut self.store {
            give_back(std::mem::take(v));
        }
    }
}

impl<T: Pod> Deref for Scratch<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.store {
            Store::Words(v, _) => {
                let b: &[u8] = bytemuck::cast_slice(v);
                bytemuck::cast_slice(&b[..self.len * std::mem::size_of::<T>()])
            }
            Store::Plain(v) => v,
        }
    }
}

impl<T: Pod> DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.store {
            Store::Words(v, _) => {
                let b: &mut [u8] = bytemuck::cast_slice_mut(v);
                bytemuck::cast_slice_mut(&mut b[..self.len * std::mem::size_of::<T>()])
            }
            Store::Plain(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_reused_and_typed_views_have_the_right_length() {
        let (p, q) = {
            let mut a = Scratch::<u64>::new(1000);
            let b = Scratch::<u8>::new(64);
            assert_eq!((a.len(), b.len()), (1000, 64));
            a[999] = 7;
            (a.as_ptr() as usize, b.as_ptr() as usize)
        };
        // The smallest spare that fits is lent out.
        let b = Scratch::<u32>::new(10);
        assert_eq!(b.len(), 10);
        assert_eq!(b.as_ptr() as usize, q);
        let a = Scratch::<u16>::new(100);
        assert_eq!(a.as_ptr() as usize, p);
        // A third buffer while both are lent out is a separate allocation.
        let c = Scratch::<u8>::new(3);
        assert!(![p, q].contains(&(c.as_ptr() as usize)));
    }

    #[test]
    fn odd_element_types_and_oversized_buffers() {
        #[derive(Clone, Copy, Zeroable, Pod)]
        #[repr(C, align(32))]
        struct Wide([u8; 32]);
        let w = Scratch::<Wide>::new(3);
        assert_eq!(w.len(), 3);
        assert_eq!(w.as_ptr() as usize % 32, 0);
        let z = Scratch::<()>::new(5);
        assert_eq!(z.len(), 5);
        drop(Scratch::<u8>::new(KEEP + 1));
        let kept = SPARE.with(|s| s.borrow().iter().map(|v| v.len() * 16).max());
        assert!(kept.unwrap_or(0) <= KEEP);
    }
}
