//! Helpers shared by the fuzz targets.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A global allocator that remembers the largest single allocation (or reallocation)
/// since the last [`PeakAlloc::reset`], so a target can assert that no input made the
/// code under test allocate from an unchecked length.
pub struct PeakAlloc;

static PEAK: AtomicUsize = AtomicUsize::new(0);

impl PeakAlloc {
    /// Forgets the largest allocation seen so far.
    pub fn reset() {
        PEAK.store(0, Ordering::Relaxed);
    }

    /// Size in bytes of the largest single allocation since the last reset.
    pub fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        PEAK.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

/// Copies `data[at..at + N]` into an array, padding with zeros past the end of `data`.
pub fn take<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if at < data.len() {
        let n = (data.len() - at).min(N);
        out[..n].copy_from_slice(&data[at..at + n]);
    }
    out
}

/// The length limit `Header::decode` must have applied to a frame of `kind`: the
/// configured one, capped at `EAGER_HARD_MAX` for eager frames and at what this host can
/// address for the others.
pub fn limit_for(kind: pirun::frame::Kind, limits: &pirun::frame::Limits) -> u64 {
    use pirun::frame::{Kind, EAGER_HARD_MAX};
    match kind {
        Kind::Eager => limits.eager_max.min(EAGER_HARD_MAX),
        Kind::Rts | Kind::Data => limits.message_max.min(usize::MAX as u64),
        Kind::Cts | Kind::Goodbye => 0,
    }
}
