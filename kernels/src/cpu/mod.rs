//! CPU kernels: rayon for parallelism (the caller's pool), SIMD chosen at run time.

pub mod attention;
pub mod cache;
pub mod matmul;
pub(crate) mod simd;

/// The CPU kinds some choices are measured on (stream layouts, prefetch): read once from CPUID
/// leaves 0 (the vendor string) and 1 (the family).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read from CPUID on x86-64 only
pub(crate) enum CpuKind {
    Intel,
    /// AMD family 25 (Zen 3 and Zen 4; measured on Zen 4, family 25 model 17).
    AmdFamily25,
    Other,
}

/// This CPU's [`CpuKind`].
pub(crate) fn cpu_kind() -> CpuKind {
    static KIND: std::sync::OnceLock<CpuKind> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // CPUID leaves 0 and 1 are safe on every x86-64 CPU.
            let id = std::arch::x86_64::__cpuid(0);
            let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
                .iter()
                .flat_map(|r| r.to_le_bytes())
                .collect();
            let eax = std::arch::x86_64::__cpuid(1).eax;
            let base = (eax >> 8) & 0xf;
            let family = if base == 0xf {
                base + ((eax >> 20) & 0xff)
            } else {
                base
            };
            if vendor == b"GenuineIntel" {
                return CpuKind::Intel;
            }
            if vendor == b"AuthenticAMD" && family == 25 {
                return CpuKind::AmdFamily25;
            }
        }
        CpuKind::Other
    })
}

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
