//! CPU kernels: rayon for parallelism (the caller's pool), SIMD chosen at run time.

pub mod attention;
pub mod cache;
pub mod matmul;
pub(crate) mod simd;

/// A raw pointer that may cross threads. Each user guarantees that concurrent tasks write
/// disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the `Send` wrapper, not the raw field).
    #[inline(always)]
    pub fn get(self) -> *mut T {
        self.0
    }
}

/// A 64-byte-aligned, growable f32 buffer (packing panels, scratch), reused across calls.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    chunks: Vec<Chunk>,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([f32; 16]);

impl AlignedBuf {
    /// A slice of at least `len` f32s; contents are unspecified.
    pub fn get(&mut self, len: usize) -> &mut [f32] {
        let chunks = len.div_ceil(16);
        if self.chunks.len() < chunks {
            self.chunks.resize(chunks, Chunk([0.0; 16]));
        }
        // SAFETY: Chunk is repr(C) [f32; 16] with no padding; the slice covers owned memory.
        unsafe { std::slice::from_raw_parts_mut(self.chunks.as_mut_ptr() as *mut f32, len) }
    }
}
