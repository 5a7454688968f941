//! An owned byte buffer allocated with a chosen alignment, so a received message can be
//! handed to the user as a `Vec<T>` without copying.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// A heap buffer of `len` bytes aligned to `align`.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    align: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes aligned to `align` (a power of two); `None` if the
    /// allocation fails, so a hostile or mistaken length is an error, not an abort.
    pub fn zeroed(len: usize, align: usize) -> Option<AlignedBuf> {
        let layout = Layout::from_size_align(len, align).ok()?;
        let ptr = if len == 0 {
            // A dangling, well-aligned pointer, as Vec uses for empty allocations.
            NonNull::new(align as *mut u8)?
        } else {
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?
        };
        Some(AlignedBuf { ptr, len, align })
    }

    /// Alignment that a Pod element of `elem_size` bytes most likely has: the largest
    /// power of two dividing it, at most 16 (1 for untyped data).
    pub fn guess_align(elem_size: u32) -> usize {
        if elem_size == 0 {
            1
        } else {
            (1usize << elem_size.trailing_zeros()).min(16)
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialized (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we have exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Turns the buffer into a `Vec<T>` without copying when its layout is exactly that of
    /// `[T; len / size_of::<T>()]`; otherwise copies. `None` if the length is not a
    /// multiple of the element size.
    pub fn into_vec<T: bytemuck::Pod>(self) -> Option<Vec<T>> {
        let size = std::mem::size_of::<T>();
        if size == 0 {
            return Some(Vec::new());
        }
        if self.len % size != 0 {
            return None;
        }
        let n = self.len / size;
        if self.align == std::mem::align_of::<T>() && self.len > 0 {
            let me = std::mem::ManuallyDrop::new(self);
            // SAFETY: the allocation was made with Layout { size: n * size_of::<T>(),
            // align: align_of::<T>() }, which is exactly Layout::array::<T>(n); the bytes
            // are initialized and every bit pattern is a valid T (Pod).
            return Some(unsafe { Vec::from_raw_parts(me.ptr.as_ptr().cast::<T>(), n, n) });
        }
        Some(bytemuck::pod_collect_to_vec(self.as_slice()))
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: allocated in `zeroed` with this very layout.
            unsafe {
                alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.len, self.align),
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_without_copy_when_aligned_and_with_copy_otherwise() {
        let mut b = AlignedBuf::zeroed(16, 8).unwrap();
        b.as_mut_slice()[..8].copy_from_slice(&1.5f64.to_le_bytes());
        let p = b.as_slice().as_ptr();
        let v: Vec<f64> = b.into_vec().unwrap();
        assert_eq!(v, vec![1.5, 0.0]);
        assert_eq!(v.as_ptr().cast::<u8>(), p);

        let b = AlignedBuf::zeroed(8, 1).unwrap();
        let v: Vec<u32> = b.into_vec().unwrap();
        assert_eq!(v, vec![0, 0]);
        assert!(AlignedBuf::zeroed(7, 4)
            .unwrap()
            .into_vec::<u32>()
            .is_none());
        assert_eq!(
            AlignedBuf::zeroed(0, 8).unwrap().into_vec::<u64>().unwrap(),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn guesses_alignment_from_element_size() {
        assert_eq!(AlignedBuf::guess_align(8), 8);
        assert_eq!(AlignedBuf::guess_align(12), 4);
        assert_eq!(AlignedBuf::guess_align(64), 16);
        assert_eq!(AlignedBuf::guess_align(0), 1);
    }
}

/// Up to [`RawParts::MAX`] borrowed byte slices that form one message, e.g. a collective's
/// header and its payload: written with one `writev`, or filled in order on receipt.
///
/// Holds raw pointers: whoever lends the slices must keep them alive, and not touch them,
/// until the operation using them has completed or been withdrawn (see `CancelOnDrop`).
#[derive(Clone, Copy)]
pub(crate) struct RawParts {
    ptr: [*mut u8; RawParts::MAX],
    len: [usize; RawParts::MAX],
    n: usize,
}

// SAFETY: see the type's contract; the pointers are only used under the engine lock.
unsafe impl Send for RawParts {}

impl RawParts {
    /// Most parts one message may have.
    pub const MAX: usize = 4;

    /// The parts of a message to send; `None` if there are more than [`RawParts::MAX`].
    pub fn from_slices(parts: &[&[u8]]) -> Option<RawParts> {
        Self::collect(parts.iter().map(|s| (s.as_ptr().cast_mut(), s.len())))
    }

    /// The parts of a buffer to receive into; `None` if there are more than
    /// [`RawParts::MAX`].
    pub fn from_mut_slices(parts: &mut [&mut [u8]]) -> Option<RawParts> {
        Self::collect(parts.iter_mut().map(|s| (s.as_mut_ptr(), s.len())))
    }

    /// Stores `(pointer, length)` pairs in place: no intermediate `Vec`, as this runs
    /// once per blocking send and receive.
    fn collect(parts: impl ExactSizeIterator<Item = (*mut u8, usize)>) -> Option<RawParts> {
        if parts.len() > Self::MAX {
            return None;
        }
        let mut p = RawParts {
            ptr: [std::ptr::null_mut(); Self::MAX],
            len: [0; Self::MAX],
            n: 0,
        };
        for (ptr, len) in parts {
            p.ptr[p.n] = ptr;
            p.len[p.n] = len;
            p.n += 1;
        }
        Some(p)
    }

    /// Total length in bytes.
    pub fn total(&self) -> usize {
        self.len[..self.n].iter().sum()
    }

    /// The parts as slices.
    ///
    /// # Safety
    /// The lender's contract (see the type) must hold.
    pub unsafe fn slices(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.n).map(|i| unsafe { std::slice::from_raw_parts(self.ptr[i], self.len[i]) })
    }

    /// The contiguous stretch starting `at` bytes into the message, up to the end of the
    /// part it falls in (empty at the end).
    ///
    /// # Safety
    /// The lender's contract must hold, the buffer must have been lent mutably, and no
    /// other reference to that stretch may be alive.
    #[allow(clippy::mut_from_ref)] // the bytes belong to the lender, not to `self`
    pub unsafe fn chunk_mut(&self, mut at: usize) -> &mut [u8] {
        for i in 0..self.n {
            if at < self.len[i] {
                return unsafe {
                    std::slice::from_raw_parts_mut(self.ptr[i].add(at), self.len[i] - at)
                };
            }
            at -= self.len[i];
        }
        &mut []
    }

    /// Copies `src` into the parts, in order (`src` must not be longer than `total`).
    ///
    /// # Safety
    /// As for [`RawParts::chunk_mut`].
    pub unsafe fn copy_in(&self, mut src: &[u8]) {
        let mut at = 0;
        while !src.is_empty() {
            let dst = unsafe { self.chunk_mut(at) };
            let n = dst.len().min(src.len());
            assert!(n > 0, "copy_in beyond the end of the parts");
            dst[..n].copy_from_slice(&src[..n]);
            src = &src[n..];
            at += n;
        }
    }
}
