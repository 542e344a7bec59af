//! [`CacheLineAligned`]: the global allocator of perfledger's binaries, which starts every
//! allocation of at least [`MIN_SIZE`] bytes on a 64-byte boundary.
//!
//! The runner's input and output tensors are plain `Vec`s, and glibc's `malloc` places a large
//! block 16 bytes past a cache line (its chunk header), so every 64-byte vector load and every
//! AMX tile row read in place from a tensor was split across two cache lines. On Intel Xeon
//! family 6 model 207 that made the AMX tile kernel 1.35–2.4× slower on the same data (`ukbench`)
//! and the AMX in-place Bᵀ path 1.26–1.61× slower on a 16×1024×1024 product in cache (`mmtime`;
//! BENCHMARKS.md "Input tensors on cache lines"). Frameworks hand their kernels cache-line-aligned buffers
//! (PyTorch's CPU allocator aligns to 64 bytes), so the runner measures under the same condition.
//! Kernels stay correct at any alignment: the library's tests run on the default allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size on are 64-byte aligned (smaller ones keep their own alignment).
pub const MIN_SIZE: usize = 4096;

/// The alignment of large allocations: one cache line (and one AVX-512 vector, one tile row).
pub const ALIGN: usize = 64;

/// [`System`], with allocations of at least [`MIN_SIZE`] bytes aligned to [`ALIGN`].
///
/// Install it in a binary with `#[global_allocator] static A: CacheLineAligned = CacheLineAligned;`.
pub struct CacheLineAligned;

/// The layout a request is served with: a function of the request alone, so `dealloc` and
/// `realloc` see the layout the block was allocated with.
fn served(l: Layout) -> Layout {
    if l.size() >= MIN_SIZE && l.align() < ALIGN {
        Layout::from_size_align(l.size(), ALIGN).unwrap_or(l)
    } else {
        l
    }
}

// SAFETY: every call is forwarded to `System` with the layout `served` gives for the request, the
// same for a block's allocation and its release; `realloc` moves a block whose served alignment
// changes by allocating, copying the smaller size and releasing, as `GlobalAlloc::realloc`'s
// contract allows.
unsafe impl GlobalAlloc for CacheLineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(served(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(served(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, served(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let (old, new) = (served(layout), served(new_layout));
        if old.align() == new.align() {
            return System.realloc(ptr, old, new_size);
        }
        let moved = System.alloc(new);
        if !moved.is_null() {
            std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
            System.dealloc(ptr, old);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_start_on_a_cache_line_and_keep_their_contents() {
        let a = CacheLineAligned;
        for size in [MIN_SIZE, 1 << 20, 3 << 20] {
            let l = Layout::from_size_align(size, 4).unwrap();
            // SAFETY: non-zero sizes; every block is released with the layout it was made with.
            unsafe {
                let p = a.alloc(l);
                assert!(
                    !p.is_null() && (p as usize).is_multiple_of(ALIGN),
                    "{size}: {p:?}"
                );
                p.write_bytes(7, size);
                // Grow (stays large), shrink below MIN_SIZE (alignment may drop), grow again.
                let q = a.realloc(p, l, 2 * size);
                assert!((q as usize).is_multiple_of(ALIGN));
                assert!((0..size).all(|i| *q.add(i) == 7));
                let l2 = Layout::from_size_align(2 * size, 4).unwrap();
                let r = a.realloc(q, l2, 100);
                assert!((0..100).all(|i| *r.add(i) == 7));
                let l3 = Layout::from_size_align(100, 4).unwrap();
                let s = a.realloc(r, l3, size);
                assert!((s as usize).is_multiple_of(ALIGN));
                assert!((0..100).all(|i| *s.add(i) == 7));
                a.dealloc(s, l);
                let z = a.alloc_zeroed(l);
                assert!((z as usize).is_multiple_of(ALIGN) && (0..size).all(|i| *z.add(i) == 0));
                a.dealloc(z, l);
            }
        }
        // Small blocks keep the default allocator's placement and alignment.
        let small = Layout::from_size_align(64, 8).unwrap();
        assert_eq!(served(small), small);
        let aligned = Layout::from_size_align(1 << 20, 4096).unwrap();
        assert_eq!(served(aligned), aligned);
    }
}
