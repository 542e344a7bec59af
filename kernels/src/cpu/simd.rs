//! The small SIMD vocabulary the attention kernels are written in, one implementation per ISA
//! path: AVX-512F (16 lanes), AVX2+FMA+F16C (8 lanes) and portable Rust (8 lanes in an array,
//! which the compiler vectorizes for the baseline target).
//!
//! Every method is `#[inline(always)]` and the generic kernels are too; each ISA has one
//! `#[target_feature]` entry point per task (attention's flash and decode tasks, matmul packing) into which the
//! whole task inlines, so the intrinsics are compiled with the ISA enabled (the pattern of `pulp`
//! and `gemm`). Nothing here is called outside such an entry point.
//!
//! [`Simd::exp2`] is `2^x` with Cody–Waite style range reduction (`x = n + f`, `n` the nearest
//! integer, `|f| ≤ 1/2`), a degree-6 polynomial for `2^f` (the Cephes `exp2f` minimax
//! coefficients) and `2^n` built in the exponent bits. Relative error ≤ 2.5e-7 on [-126, 0]
//! (tested against f64 below); arguments below −126.5 give exactly 0 (no denormals reach the
//! P·V products), NaN gives 0 as well (NaN-safe clamp), so a masked score (−∞) contributes 0.

#![allow(clippy::missing_safety_doc)]

use crate::dtype::{DType, Element};

/// Coefficients of `2^f ≈ 1 + f·(P5 + f·(P4 + … + f·P0))` on `|f| ≤ 1/2` (Cephes exp2f).
pub(crate) const EXP2_P: [f32; 6] = [
    1.535_336_2e-4,
    1.339_887_4e-3,
    9.618_437e-3,
    5.550_332_5e-2,
    2.402_264_8e-1,
    6.931_472e-1,
];

/// Coefficients of [`Simd::exp2_p`]'s `2^f ≈ C0 + f·(C1 + f·(C2 + f·C3))` on `|f| ≤ 1/2`: a
/// degree-3 fit of the relative error (Lawson iterations on a dense grid), worst relative error
/// 7.5e-5 in f32 Horner form — 26× below half an ulp of bf16 (2^-9), the rounding the P it
/// computes gets next.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
pub(crate) const EXP2_P3: [f32; 4] = [0.999_928_1, 0.693_261, 0.242_610_54, 0.055_171_322];

/// Arguments of [`Simd::exp2`] are clamped to `[EXP2_MIN, EXP2_MAX]`; `2^EXP2_MIN` is built with
/// a zero exponent field, i.e. exactly 0.
pub(crate) const EXP2_MIN: f32 = -127.0;
pub(crate) const EXP2_MAX: f32 = 127.0;

/// One ISA's vector type and operations. All methods are `unsafe`: the caller guarantees the
/// ISA is available and pointers address `LANES` readable (writable) elements.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    const LANES: usize;
    /// Whether the decode dot kernel may widen f16 K rows in registers. On AVX-512 too since its
    /// entry points are compiled with VL/BW: LLVM then has zmm16-31 and the loops over K and V
    /// rows keep their accumulators in registers with no spill (checked in the disassembly of
    /// decode_avx512); without VL it spilled (results/attention-disasm.md) and f16 rows went
    /// through f32 scratch.
    const F16_IN_REGISTERS: bool = true;
    type V: Copy;

    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a · b + c`, fused.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum; a NaN in `a` yields `b`.
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// `2^x` lane-wise (see the module doc).
    unsafe fn exp2(x: Self::V) -> Self::V;
    /// `2^x` for P that is rounded to bf16 next (the flash pair products): relative error ≤ 1e-4
    /// (a degree-3 polynomial, [`EXP2_P3`], where an ISA has its own), 0 for arguments ≤ −127
    /// and NaN as [`Simd::exp2`]; arguments above 127 may give +∞ (no upper clamp). By default
    /// [`Simd::exp2`]. The AVX-512 override takes the fraction by `vreduceps` (AVX512DQ): its
    /// callers are compiled with AVX512DQ (the pair products' paths, which require AVX512_BF16,
    /// and with it DQ: [`crate::isa::Features::avx512bf16`]).
    #[inline(always)]
    unsafe fn exp2_p(x: Self::V) -> Self::V {
        Self::exp2(x)
    }
    unsafe fn hsum(v: Self::V) -> f32;
    unsafe fn hmax(v: Self::V) -> f32;
    /// `LANES` bf16 (raw bits) widened exactly to f32.
    unsafe fn load_bf16(p: *const u16) -> Self::V;
    /// `LANES` f16 (raw bits) widened exactly to f32.
    unsafe fn load_f16(p: *const u16) -> Self::V;
    /// Lanes with index `< thr` set to −∞ (the causal mask of one key row of `Sᵀ`).
    unsafe fn mask_below(v: Self::V, thr: i64) -> Self::V;
    /// `LANES` vectors in, one out: lane `i` is the horizontal sum of `v[i]` (a transpose-and-add
    /// tree, ~3 instructions per sum instead of ~8 for separate reductions).
    unsafe fn hsum_lanes(v: &[Self::V]) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise `if a > b { x } else { y }` (ordered: a NaN in `a` or `b` yields `y`).
    unsafe fn select_gt(a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// Whether some lane of `a` is greater than the same lane of `b` (ordered: a NaN lane is
    /// not).
    unsafe fn any_gt(a: Self::V, b: Self::V) -> bool;
    /// Hint that the cache line at `p` will be read soon (never faults; no-op where unavailable).
    unsafe fn prefetch(p: *const u8);
}

/// Expose `$imp::<S, T>` (generic over the SIMD vocabulary) as `unsafe fn $name<T>(isa, …)`: one
/// `#[target_feature]` entry point per ISA, so the whole body inlines with that ISA's
/// instructions. The ISA must be available on this CPU (the callers' safety contract).
macro_rules! per_isa {
    ($(#[$doc:meta])* $vis:vis unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $imp:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name<T: $crate::dtype::Element>(isa: $crate::isa::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma,f16c")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512<T: $crate::dtype::Element>($($arg: $ty),*) {
                $imp::<$crate::cpu::simd::Avx512, T>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<T: $crate::dtype::Element>($($arg: $ty),*) {
                $imp::<$crate::cpu::simd::Avx2, T>($($arg),*)
            }
            debug_assert!(isa.available(), "{} code on a CPU without it", isa.name());
            match isa {
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx512f => avx512::<T>($($arg),*),
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx2fma => avx2::<T>($($arg),*),
                _ => $imp::<$crate::cpu::simd::Portable, T>($($arg),*),
            }
        }
    };
}
pub(crate) use per_isa;

/// `LANES` elements of `T` at `p`, widened to f32.
#[inline(always)]
pub(crate) unsafe fn load_elem<S: Simd, T: Element>(p: *const T) -> S::V {
    match T::DTYPE {
        DType::F32 => S::load(p as *const f32),
        DType::F16 => S::load_f16(p as *const u16),
        DType::BF16 => S::load_bf16(p as *const u16),
    }
}

/// Prefetch the cache line at `p` into L2 (not L1: for data needed after the current working
/// set, which an L1 prefetch would evict). Any address: a prefetch never faults.
#[inline(always)]
pub(crate) fn prefetch_l2(p: *const u8) {
    // SAFETY: prefetching is a hint; it reads nothing architecturally and never faults.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Row `src[0..d]` widened into `dst[0..dp]`, zero-padded past `d`.
#[inline(always)]
pub(crate) unsafe fn convert_row<S: Simd, T: Element>(
    src: *const T,
    dst: *mut f32,
    d: usize,
    dp: usize,
) {
    let l = S::LANES;
    let full = d / l * l;
    let mut c = 0;
    while c < full {
        S::store(dst.add(c), load_elem::<S, T>(src.add(c)));
        c += l;
    }
    for i in full..d {
        *dst.add(i) = (*src.add(i)).to_f32();
    }
    for i in d..dp {
        *dst.add(i) = 0.0;
    }
}

/// The scalar twin of [`Simd::exp2`] (same clamp, rounding, polynomial and exponent
/// construction; each ISA writes the vector version out with its own instructions). Used for the
/// few scalar exponentials: decode's per-row α and the split weights when combining partials.
#[inline(always)]
pub(crate) fn exp2_scalar(x: f32) -> f32 {
    // NaN-safe clamp: comparisons with NaN are false, so NaN becomes EXP2_MIN.
    let x = if x > EXP2_MIN { x } else { EXP2_MIN };
    let x = if x < EXP2_MAX { x } else { EXP2_MAX };
    // Round to nearest (ties to even) with the 1.5·2^23 trick: exact for |x| < 2^22, and
    // vectorizes on SSE2, which has no rounding instruction.
    const MAGIC: f32 = 12_582_912.0;
    let n = (x + MAGIC) - MAGIC;
    let f = x - n;
    let mut p = EXP2_P[0];
    for &c in &EXP2_P[1..] {
        p = p.mul_add(f, c);
    }
    p = p.mul_add(f, 1.0);
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// Portable: 8 lanes in an array. Plain loops the compiler vectorizes (two SSE2 registers per
/// vector on x86-64, two NEON registers on aarch64).
#[derive(Clone, Copy)]
pub(crate) struct Portable;

pub(crate) type P8 = [f32; 8];

impl Simd for Portable {
    const LANES: usize = 8;
    type V = P8;

    #[inline(always)]
    unsafe fn zero() -> P8 {
        [0.0; 8]
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> P8 {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> P8 {
        std::ptr::read_unaligned(p as *const P8)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: P8) {
        std::ptr::write_unaligned(p as *mut P8, v)
    }
    #[inline(always)]
    unsafe fn fma(a: P8, b: P8, c: P8) -> P8 {
        // a·b + c unfused: `mul_add` without hardware FMA is a libm call per lane.
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn add(a: P8, b: P8) -> P8 {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn mul(a: P8, b: P8) -> P8 {
        std::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    unsafe fn max(a: P8, b: P8) -> P8 {
        std::array::from_fn(|i| if a[i] > b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    unsafe fn exp2(x: P8) -> P8 {
        const MAGIC: f32 = 12_582_912.0;
        let x: P8 = std::array::from_fn(|i| {
            let v = if x[i] > EXP2_MIN { x[i] } else { EXP2_MIN };
            if v < EXP2_MAX {
                v
            } else {
                EXP2_MAX
            }
        });
        let n: P8 = std::array::from_fn(|i| (x[i] + MAGIC) - MAGIC);
        let f: P8 = std::array::from_fn(|i| x[i] - n[i]);
        let mut p = [EXP2_P[0]; 8];
        for &c in &EXP2_P[1..] {
            p = std::array::from_fn(|i| p[i] * f[i] + c);
        }
        p = std::array::from_fn(|i| p[i] * f[i] + 1.0);
        std::array::from_fn(|i| p[i] * f32::from_bits(((n[i] as i32 + 127) as u32) << 23))
    }
    #[inline(always)]
    unsafe fn hsum(v: P8) -> f32 {
        ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
    }
    #[inline(always)]
    unsafe fn hmax(v: P8) -> f32 {
        v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> P8 {
        let raw = std::ptr::read_unaligned(p as *const [u16; 8]);
        std::array::from_fn(|i| f32::from_bits((raw[i] as u32) << 16))
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> P8 {
        let raw = std::ptr::read_unaligned(p as *const [u16; 8]);
        std::array::from_fn(|i| half::f16::from_bits(raw[i]).to_f32())
    }
    #[inline(always)]
    unsafe fn mask_below(v: P8, thr: i64) -> P8 {
        std::array::from_fn(|i| {
            if (i as i64) < thr {
                f32::NEG_INFINITY
            } else {
                v[i]
            }
        })
    }
    #[inline(always)]
    unsafe fn hsum_lanes(v: &[P8]) -> P8 {
        std::array::from_fn(|i| Self::hsum(v[i]))
    }
    #[inline(always)]
    unsafe fn sub(a: P8, b: P8) -> P8 {
        std::array::from_fn(|i| a[i] - b[i])
    }
    #[inline(always)]
    unsafe fn select_gt(a: P8, b: P8, x: P8, y: P8) -> P8 {
        std::array::from_fn(|i| if a[i] > b[i] { x[i] } else { y[i] })
    }
    #[inline(always)]
    unsafe fn any_gt(a: P8, b: P8) -> bool {
        a.iter().zip(&b).any(|(x, y)| x > y)
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        #[cfg(target_arch = "x86_64")]
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Simd, EXP2_MAX, EXP2_MIN, EXP2_P, EXP2_P3};
    use std::arch::x86_64::*;

    /// AVX2 + FMA + F16C, 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2;

    impl Simd for Avx2 {
        const LANES: usize = 8;
        type V = __m256;

        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn max(a: __m256, b: __m256) -> __m256 {
            // maxps returns the second operand when either is NaN.
            _mm256_max_ps(a, b)
        }
        #[inline(always)]
        unsafe fn exp2(x: __m256) -> __m256 {
            let x = _mm256_max_ps(x, _mm256_set1_ps(EXP2_MIN));
            let x = _mm256_min_ps(x, _mm256_set1_ps(EXP2_MAX));
            let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
            let f = _mm256_sub_ps(x, n);
            let mut p = _mm256_set1_ps(EXP2_P[0]);
            for &c in &EXP2_P[1..] {
                p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c));
            }
            p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0));
            let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
                _mm256_cvtps_epi32(n),
                _mm256_set1_epi32(127),
            ));
            _mm256_mul_ps(p, _mm256_castsi256_ps(e))
        }
        #[inline(always)]
        unsafe fn hsum(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
        #[inline(always)]
        unsafe fn hmax(v: __m256) -> f32 {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_max_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> __m256 {
            let h = _mm_loadu_si128(p as *const __m128i);
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const u16) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
        }
        #[inline(always)]
        unsafe fn mask_below(v: __m256, thr: i64) -> __m256 {
            let t = thr.clamp(-1, 8) as f32;
            let iota = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
            let m = _mm256_cmp_ps::<_CMP_LT_OQ>(iota, _mm256_set1_ps(t));
            _mm256_blendv_ps(v, _mm256_set1_ps(f32::NEG_INFINITY), m)
        }
        #[inline(always)]
        unsafe fn hsum_lanes(v: &[__m256]) -> __m256 {
            // Input position 2m + h lands in output lane 4h + m (a 2×4 transpose): feed the
            // vector wanted in lane 4h + m at position 2m + h.
            let a = |i: usize| v[(i % 2) * 4 + i / 2];
            // 128-bit halves: t = [x.lo + x.hi | y.lo + y.hi].
            let t = |x: __m256, y: __m256| {
                _mm256_add_ps(
                    _mm256_permute2f128_ps::<0x20>(x, y),
                    _mm256_permute2f128_ps::<0x31>(x, y),
                )
            };
            let t0 = t(a(0), a(1));
            let t1 = t(a(2), a(3));
            let t2 = t(a(4), a(5));
            let t3 = t(a(6), a(7));
            let u = |x: __m256, y: __m256| {
                _mm256_add_ps(
                    _mm256_shuffle_ps::<0b10_00_10_00>(x, y),
                    _mm256_shuffle_ps::<0b11_01_11_01>(x, y),
                )
            };
            u(u(t0, t1), u(t2, t3))
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            _mm256_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn select_gt(a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
            _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GT_OQ>(a, b))
        }
        #[inline(always)]
        unsafe fn any_gt(a: __m256, b: __m256) -> bool {
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(a, b)) != 0
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const u8) {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
        }
    }

    /// AVX-512F, 16 lanes (conversions with AVX-512F only: no BW/VL/BF16 needed).
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;

        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn max(a: __m512, b: __m512) -> __m512 {
            _mm512_max_ps(a, b)
        }
        #[inline(always)]
        unsafe fn exp2(x: __m512) -> __m512 {
            let x = _mm512_max_ps(x, _mm512_set1_ps(EXP2_MIN));
            let x = _mm512_min_ps(x, _mm512_set1_ps(EXP2_MAX));
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
            let f = _mm512_sub_ps(x, n);
            let mut p = _mm512_set1_ps(EXP2_P[0]);
            for &c in &EXP2_P[1..] {
                p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c));
            }
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0));
            // p·2^n by `vscalefps` (one instruction for the exponent field's four), zero where
            // n = EXP2_MIN as the other paths' zero exponent field gives.
            let live = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(n, _mm512_set1_ps(EXP2_MIN));
            _mm512_maskz_scalef_ps(live, p, n)
        }
        #[inline(always)]
        unsafe fn exp2_p(x: __m512) -> __m512 {
            // As exp2, with the degree-3 polynomial and no clamps (`vscalefps` gives +∞ above);
            // the fraction by one `vreduceps` (x − round(x), exact), where `vrndscaleps` and a
            // subtraction took one µop more. No lower clamp either: the mask zeroes every lane
            // whose n is ≤ EXP2_MIN or NaN (x NaN gives n NaN, x = −∞ gives n −∞ or NaN), so
            // the masked lanes are never computed.
            let f = _mm512_reduce_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
            let n = _mm512_sub_ps(x, f);
            let mut p = _mm512_set1_ps(EXP2_P3[3]);
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(EXP2_P3[2]));
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(EXP2_P3[1]));
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(EXP2_P3[0]));
            let live = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(n, _mm512_set1_ps(EXP2_MIN));
            _mm512_maskz_scalef_ps(live, p, n)
        }
        #[inline(always)]
        unsafe fn hsum(v: __m512) -> f32 {
            _mm512_reduce_add_ps(v)
        }
        #[inline(always)]
        unsafe fn hmax(v: __m512) -> f32 {
            _mm512_reduce_max_ps(v)
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> __m512 {
            let h = _mm256_loadu_si256(p as *const __m256i);
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const u16) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
        }
        #[inline(always)]
        unsafe fn mask_below(v: __m512, thr: i64) -> __m512 {
            let t = thr.clamp(0, 16) as u32;
            let m = ((1u64 << t) - 1) as u16;
            _mm512_mask_mov_ps(v, m, _mm512_set1_ps(f32::NEG_INFINITY))
        }
        #[inline(always)]
        unsafe fn hsum_lanes(v: &[__m512]) -> __m512 {
            // Inner functions, not closures: a closure is not inlined into `target_feature`
            // code and its intrinsics become calls.
            // 256-bit halves: [x.lo + x.hi | y.lo + y.hi].
            #[inline(always)]
            unsafe fn t(x: __m512, y: __m512) -> __m512 {
                _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0b01_00_01_00>(x, y),
                    _mm512_shuffle_f32x4::<0b11_10_11_10>(x, y),
                )
            }
            // 128-bit quarters: [x.q0 + x.q1, x.q2 + x.q3, y.q0 + y.q1, y.q2 + y.q3].
            #[inline(always)]
            unsafe fn q(x: __m512, y: __m512) -> __m512 {
                _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
                    _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
                )
            }
            // Within 128-bit lanes: [x0 + x1, x2 + x3, y0 + y1, y2 + y3].
            #[inline(always)]
            unsafe fn u(x: __m512, y: __m512) -> __m512 {
                _mm512_add_ps(
                    _mm512_shuffle_ps::<0b10_00_10_00>(x, y),
                    _mm512_shuffle_ps::<0b11_01_11_01>(x, y),
                )
            }
            // Input position 4m + k lands in output lane 4k + m (a 4×4 transpose, its own
            // inverse): feed the vector wanted in lane 4k + m at position 4m + k.
            let mut h = [_mm512_setzero_ps(); 8];
            for (i, h) in h.iter_mut().enumerate() {
                let (x, y) = (2 * i, 2 * i + 1);
                *h = t(v[(x % 4) * 4 + x / 4], v[(y % 4) * 4 + y / 4]);
            }
            let q0 = q(h[0], h[1]);
            let q1 = q(h[2], h[3]);
            let q2 = q(h[4], h[5]);
            let q3 = q(h[6], h[7]);
            u(u(q0, q1), u(q2, q3))
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            _mm512_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn select_gt(a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b), y, x)
        }
        #[inline(always)]
        unsafe fn any_gt(a: __m512, b: __m512) -> bool {
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) != 0
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const u8) {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))]
    use crate::isa::Isa;

    /// The worst relative error of `f` against f64 `2^x` on a dense grid of [-126, 0.5].
    fn worst_rel(f: impl Fn(&[f32]) -> Vec<f32>) -> f64 {
        let xs: Vec<f32> = (0..=2_000_000)
            .map(|i| -126.0 + 126.5 * i as f32 / 2_000_000.0)
            .collect();
        let ys = f(&xs);
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let want = (x as f64).exp2();
                ((y as f64 - want) / want).abs()
            })
            .fold(0.0, f64::max)
    }

    unsafe fn apply<S: Simd>(xs: &[f32]) -> Vec<f32> {
        let l = S::LANES;
        let mut out = vec![0f32; xs.len() / l * l];
        for (i, o) in out.chunks_exact_mut(l).enumerate() {
            S::store(o.as_mut_ptr(), S::exp2(S::load(xs[i * l..].as_ptr())));
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn apply512(xs: &[f32]) -> Vec<f32> {
        apply::<Avx512>(xs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn apply256(xs: &[f32]) -> Vec<f32> {
        apply::<Avx2>(xs)
    }

    #[test]
    fn exp2_relative_error_is_below_2_5e_7() {
        let scalar = worst_rel(|xs| xs.iter().map(|&x| exp2_scalar(x)).collect());
        assert!(scalar < 2.5e-7, "scalar exp2 rel error {scalar:e}");
        let portable = worst_rel(|xs| unsafe { apply::<Portable>(xs) });
        assert!(portable < 2.5e-7, "portable exp2 rel error {portable:e}");
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx2fma.available() {
                let e = worst_rel(|xs| unsafe { apply256(xs) });
                assert!(e < 2.5e-7, "avx2 exp2 rel error {e:e}");
            }
            if Isa::Avx512f.available() {
                let e = worst_rel(|xs| unsafe { apply512(xs) });
                assert!(e < 2.5e-7, "avx512 exp2 rel error {e:e}");
            }
        }
    }

    /// [`Simd::exp2_p`] on AVX-512 (the only ISA with its own): relative error below 1e-4 on
    /// [-126, 0.5] and up to P's bound 2^8, 0 for masked, NaN and ≤ −127 arguments, exact powers
    /// of two not required.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn exp2_p_relative_error_is_below_1e_4() {
        #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
        unsafe fn apply_p(xs: &[f32]) -> Vec<f32> {
            let l = Avx512::LANES;
            let mut out = vec![0f32; xs.len() / l * l];
            for (i, o) in out.chunks_exact_mut(l).enumerate() {
                Avx512::store(
                    o.as_mut_ptr(),
                    Avx512::exp2_p(Avx512::load(xs[i * l..].as_ptr())),
                );
            }
            out
        }
        if !Isa::Avx512f.available() || !std::arch::is_x86_feature_detected!("avx512dq") {
            return;
        }
        let e = worst_rel(|xs| unsafe { apply_p(xs) });
        assert!(e < 1e-4, "avx512 exp2_p rel error {e:e}");
        let xs: Vec<f32> = (0..=16_000).map(|i| i as f32 / 2000.0).collect();
        let ys = unsafe { apply_p(&xs) };
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = (x as f64).exp2();
            assert!(((y as f64 - want) / want).abs() < 1e-4, "exp2_p({x}) = {y}");
        }
        let zero = [
            f32::NEG_INFINITY,
            f32::NAN,
            -127.0,
            -126.6,
            -1e30,
            -1e30,
            -1e30,
            -1e30,
        ];
        assert_eq!(unsafe { apply_p(&[zero, zero].concat()) }, vec![0.0; 16]);
    }

    #[test]
    fn exp2_of_masked_and_nan_is_zero() {
        for x in [f32::NEG_INFINITY, f32::NAN, -127.0, -126.6, -1e30] {
            assert_eq!(exp2_scalar(x), 0.0, "exp2({x})");
        }
        let xs = [
            f32::NEG_INFINITY,
            f32::NAN,
            -127.0,
            -126.6,
            -1e30,
            0.0,
            -1.0,
            1.0,
        ];
        let out = unsafe { apply::<Portable>(&xs) };
        assert_eq!(&out[..5], &[0.0; 5]);
        assert_eq!(&out[5..], &[1.0, 0.5, 2.0]);
        #[cfg(target_arch = "x86_64")]
        if Isa::Avx2fma.available() {
            assert_eq!(unsafe { apply256(&xs) }, out);
        }
        #[cfg(target_arch = "x86_64")]
        if Isa::Avx512f.available() {
            // One whole vector: the cases twice.
            let twice = |v: &[f32]| [v, v].concat();
            assert_eq!(unsafe { apply512(&twice(&xs)) }, twice(&out));
        }
    }
}
