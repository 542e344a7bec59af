//! The M = 1 fast path (decode-time projections): memory-bound, so B is streamed once, converted
//! in registers, and never packed.
//!
//! - B transposed (`[n, k]`, LLM weights): `c[j] = dot(a, Bᵀ[j, :])`, contiguous rows, parallel
//!   over blocks of rows.
//! - B `[k, n]`: `c[j0..j1] += a[p] · B[p, j0..j1]` row by row, parallel over column blocks (each
//!   task streams its block of every row; the f32 accumulator block stays in L1/L2).

use crate::cpu::isa::Isa;
use crate::dtype::Element;
use rayon::prelude::*;

/// Rows of Bᵀ per task (trans_b) — enough work per task to amortize scheduling.
const ROWS_PER_TASK: usize = 64;
/// Columns per task for B `[k, n]` (f32 accumulators: 4 KiB).
const COLS_PER_TASK: usize = 1024;

/// `c[0..n] = a[0..k] · op(B)` in f32. `a` is already converted to f32.
pub(crate) fn gemv<T: Element>(
    isa: Isa,
    a: &[f32],
    b: &[T],
    ldb: usize,
    trans_b: bool,
    n: usize,
    c: &mut [f32],
) {
    let k = a.len();
    if trans_b {
        c[..n]
            .par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(t, out)| {
                for (r, cj) in out.iter_mut().enumerate() {
                    let j = t * ROWS_PER_TASK + r;
                    *cj = dot(isa, a, &b[j * ldb..j * ldb + k]);
                }
            });
    } else {
        c[..n]
            .par_chunks_mut(COLS_PER_TASK)
            .enumerate()
            .for_each(|(t, out)| {
                let j0 = t * COLS_PER_TASK;
                let w = out.len();
                out.iter_mut().for_each(|x| *x = 0.0);
                for (p, &ap) in a.iter().enumerate() {
                    axpy(isa, ap, &b[p * ldb + j0..p * ldb + j0 + w], out);
                }
            });
    }
}

fn dot<T: Element>(isa: Isa, a: &[f32], w: &[T]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        // SAFETY: non-portable ISAs are only selected when AVX2 + FMA + F16C were detected.
        return unsafe { x86::dot(a, w) };
    }
    let _ = isa;
    portable_dot(a, w)
}

fn axpy<T: Element>(isa: Isa, alpha: f32, x: &[T], acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        // SAFETY: as in `dot`.
        return unsafe { x86::axpy(alpha, x, acc) };
    }
    let _ = isa;
    portable_axpy(alpha, x, acc)
}

/// Plain-Rust dot: convert a chunk to f32, then 8 independent partial sums (vectorizable).
fn portable_dot<T: Element>(a: &[f32], w: &[T]) -> f32 {
    const CH: usize = 256;
    let mut buf = [0f32; CH];
    let mut acc = [0f32; 8];
    for (ac, wc) in a.chunks(CH).zip(w.chunks(CH)) {
        let wf = &mut buf[..wc.len()];
        T::slice_to_f32(wc, wf);
        let mut ai = ac.chunks_exact(8);
        let mut wi = wf.chunks_exact(8);
        for (x, y) in (&mut ai).zip(&mut wi) {
            for l in 0..8 {
                acc[l] = x[l].mul_add(y[l], acc[l]);
            }
        }
        for (x, y) in ai.remainder().iter().zip(wi.remainder()) {
            acc[0] = x.mul_add(*y, acc[0]);
        }
    }
    acc.iter().sum()
}

fn portable_axpy<T: Element>(alpha: f32, x: &[T], acc: &mut [f32]) {
    const CH: usize = 256;
    let mut buf = [0f32; CH];
    for (xc, oc) in x.chunks(CH).zip(acc.chunks_mut(CH)) {
        let xf = &mut buf[..xc.len()];
        T::slice_to_f32(xc, xf);
        for (o, v) in oc.iter_mut().zip(xf.iter()) {
            *o = alpha.mul_add(*v, *o);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::dtype::{DType, Element};
    use half::{bf16, f16};
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8_f32(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8_f16(p: *const f16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8_bf16(p: *const bf16) -> __m256 {
        let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32(w, 16))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    macro_rules! kernels {
        ($t:ty, $load:ident, $dot:ident, $axpy:ident) => {
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $dot(a: &[f32], w: &[$t]) -> f32 {
                let k = a.len().min(w.len());
                let (ap, wp) = (a.as_ptr(), w.as_ptr());
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i + 32 <= k {
                    for u in 0..4 {
                        let x = _mm256_loadu_ps(ap.add(i + 8 * u));
                        acc[u] = _mm256_fmadd_ps(x, $load(wp.add(i + 8 * u)), acc[u]);
                    }
                    i += 32;
                }
                while i + 8 <= k {
                    acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(ap.add(i)), $load(wp.add(i)), acc[0]);
                    i += 8;
                }
                let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                let mut s = hsum(v);
                while i < k {
                    s += a[i] * w[i].to_f32();
                    i += 1;
                }
                s
            }

            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $axpy(alpha: f32, x: &[$t], acc: &mut [f32]) {
                let n = x.len().min(acc.len());
                let (xp, cp) = (x.as_ptr(), acc.as_mut_ptr());
                let av = _mm256_set1_ps(alpha);
                let mut i = 0;
                while i + 8 <= n {
                    let v = _mm256_fmadd_ps(av, $load(xp.add(i)), _mm256_loadu_ps(cp.add(i)));
                    _mm256_storeu_ps(cp.add(i), v);
                    i += 8;
                }
                while i < n {
                    acc[i] = alpha.mul_add(x[i].to_f32(), acc[i]);
                    i += 1;
                }
            }
        };
    }
    kernels!(f32, load8_f32, dot_f32, axpy_f32);
    kernels!(f16, load8_f16, dot_f16, axpy_f16);
    kernels!(bf16, load8_bf16, dot_bf16, axpy_bf16);

    /// # Safety
    /// The CPU supports AVX2, FMA and F16C.
    pub(super) unsafe fn dot<T: Element>(a: &[f32], w: &[T]) -> f32 {
        match T::DTYPE {
            DType::F32 => dot_f32(a, bytemuck::cast_slice(w)),
            DType::F16 => dot_f16(a, bytemuck::cast_slice(w)),
            DType::BF16 => dot_bf16(a, bytemuck::cast_slice(w)),
        }
    }

    /// # Safety
    /// The CPU supports AVX2, FMA and F16C.
    pub(super) unsafe fn axpy<T: Element>(alpha: f32, x: &[T], acc: &mut [f32]) {
        match T::DTYPE {
            DType::F32 => axpy_f32(alpha, bytemuck::cast_slice(x), acc),
            DType::F16 => axpy_f16(alpha, bytemuck::cast_slice(x), acc),
            DType::BF16 => axpy_bf16(alpha, bytemuck::cast_slice(x), acc),
        }
    }
}
