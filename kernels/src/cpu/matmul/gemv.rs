//! The M = 1 fast path (decode-time projections): memory-bound, so B is streamed once, converted
//! in registers, and never packed.
//!
//! - B transposed (`[n, k]`, LLM weights): `c[j] = dot(a, Bᵀ[j, :])`, contiguous rows, four rows
//!   per step (four independent streams, `a` loaded once per four rows), parallel over row blocks.
//! - B `[k, n]`: K is split across tasks; each task streams whole rows of B (contiguous) four at a
//!   time into its own f32 accumulator of length n (L2-resident), and the partial sums are added
//!   at the end. Streaming whole rows keeps the hardware prefetchers on one sequential stream per
//!   task.

use crate::cpu::isa::Isa;
use crate::dtype::Element;
use rayon::prelude::*;

/// Rows of Bᵀ per task (trans_b) — enough work per task to amortize scheduling.
const ROWS_PER_TASK: usize = 64;

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
        // bf16 on x86: `a` deinterleaved once per call (even then odd elements of each 16-block),
        // so 16 bf16 of a row become two f32 vectors with one shift and one mask — no shuffles.
        #[cfg(target_arch = "x86_64")]
        let a_perm: Option<Vec<f32>> = (T::DTYPE == crate::dtype::DType::BF16
            && isa != Isa::Portable)
            .then(|| x86::deinterleave16(a));
        #[cfg(not(target_arch = "x86_64"))]
        let a_perm: Option<Vec<f32>> = None;
        c[..n]
            .par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(t, out)| {
                let j0 = t * ROWS_PER_TASK;
                let mut r = 0;
                while r + 4 <= out.len() {
                    let row = |i: usize| &b[(j0 + r + i) * ldb..(j0 + r + i) * ldb + k];
                    let rows = [row(0), row(1), row(2), row(3)];
                    let d = match &a_perm {
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: a_perm exists only for bf16 on a non-portable (AVX2+) path.
                        Some(ap) => unsafe {
                            x86::dot4_bf16_deint(ap, a, rows.map(|r| bytemuck::cast_slice(r)))
                        },
                        _ => dot4(isa, a, rows),
                    };
                    out[r..r + 4].copy_from_slice(&d);
                    r += 4;
                }
                for (i, cj) in out.iter_mut().enumerate().skip(r) {
                    let j = j0 + i;
                    *cj = dot(isa, a, &b[j * ldb..j * ldb + k]);
                }
            });
    } else {
        // K chunks: a few per thread, each at least 64 rows.
        let threads = rayon::current_num_threads().max(1);
        let chunks = (2 * threads).min(k.div_ceil(64)).max(1);
        let rows = k.div_ceil(chunks);
        let partials: Vec<Vec<f32>> = (0..chunks)
            .into_par_iter()
            .map(|ci| {
                let mut acc = vec![0f32; n];
                let (p0, p1) = (ci * rows, ((ci + 1) * rows).min(k));
                let mut p = p0;
                while p + 4 <= p1 {
                    let row = |i: usize| &b[(p + i) * ldb..(p + i) * ldb + n];
                    let alpha = [a[p], a[p + 1], a[p + 2], a[p + 3]];
                    axpy4(isa, alpha, [row(0), row(1), row(2), row(3)], &mut acc);
                    p += 4;
                }
                while p < p1 {
                    axpy(isa, a[p], &b[p * ldb..p * ldb + n], &mut acc);
                    p += 1;
                }
                acc
            })
            .collect();
        c[..n]
            .par_chunks_mut(4096)
            .enumerate()
            .for_each(|(t, out)| {
                let j0 = t * 4096;
                out.iter_mut().for_each(|x| *x = 0.0);
                for part in &partials {
                    let len = out.len();
                    for (o, v) in out.iter_mut().zip(&part[j0..j0 + len]) {
                        *o += v;
                    }
                }
            });
    }
}

fn dot4<T: Element>(isa: Isa, a: &[f32], w: [&[T]; 4]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        // SAFETY: non-portable ISAs are only selected when AVX2 + FMA + F16C were detected.
        return unsafe { x86::dot4(a, w) };
    }
    [
        dot(isa, a, w[0]),
        dot(isa, a, w[1]),
        dot(isa, a, w[2]),
        dot(isa, a, w[3]),
    ]
}

fn axpy4<T: Element>(isa: Isa, alpha: [f32; 4], x: [&[T]; 4], acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        // SAFETY: as in `dot4`.
        return unsafe { x86::axpy4(alpha, x, acc) };
    }
    for (al, xr) in alpha.into_iter().zip(x) {
        axpy(isa, al, xr, acc);
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

/// Plain-Rust dot: convert a chunk to f32, then 8 independent partial sums (vectorizable; unfused
/// multiply-add, since `mul_add` without hardware FMA in the baseline target is a libm call).
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
                acc[l] += x[l] * y[l];
            }
        }
        for (x, y) in ai.remainder().iter().zip(wi.remainder()) {
            acc[0] += x * y;
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
            *o += alpha * v;
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

    /// Elements prefetched ahead on each row stream of `dot4` (1 KiB of bf16).
    const PF_AHEAD: usize = 512;

    /// Four rows at a time: four independent streams; `a` is loaded once per four rows.
    macro_rules! kernels4 {
        ($t:ty, $load:ident, $dot:ident, $dot4:ident, $axpy4:ident) => {
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $dot4(a: &[f32], w: [&[$t]; 4]) -> [f32; 4] {
                let k = a.len();
                let ap = a.as_ptr();
                let wp = [w[0].as_ptr(), w[1].as_ptr(), w[2].as_ptr(), w[3].as_ptr()];
                let mut acc = [[_mm256_setzero_ps(); 2]; 4];
                let mut i = 0;
                while i + 16 <= k {
                    let x0 = _mm256_loadu_ps(ap.add(i));
                    let x1 = _mm256_loadu_ps(ap.add(i + 8));
                    // Software prefetch PF_AHEAD elements ahead on each of the four streams.
                    for r in 0..4 {
                        _mm_prefetch::<_MM_HINT_T0>(wp[r].wrapping_add(i + PF_AHEAD) as *const i8);
                    }
                    for r in 0..4 {
                        acc[r][0] = _mm256_fmadd_ps(x0, $load(wp[r].add(i)), acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(x1, $load(wp[r].add(i + 8)), acc[r][1]);
                    }
                    i += 16;
                }
                let mut out = [0f32; 4];
                for r in 0..4 {
                    out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
                    if i < k {
                        out[r] += $dot(&a[i..], &w[r][i..k]);
                    }
                }
                out
            }

            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $axpy4(alpha: [f32; 4], x: [&[$t]; 4], acc: &mut [f32]) {
                let n = acc.len();
                let xp = [x[0].as_ptr(), x[1].as_ptr(), x[2].as_ptr(), x[3].as_ptr()];
                let av = [
                    _mm256_set1_ps(alpha[0]),
                    _mm256_set1_ps(alpha[1]),
                    _mm256_set1_ps(alpha[2]),
                    _mm256_set1_ps(alpha[3]),
                ];
                let cp = acc.as_mut_ptr();
                let mut i = 0;
                while i + 8 <= n {
                    let mut v = _mm256_loadu_ps(cp.add(i));
                    for r in 0..4 {
                        v = _mm256_fmadd_ps(av[r], $load(xp[r].add(i)), v);
                    }
                    _mm256_storeu_ps(cp.add(i), v);
                    i += 8;
                }
                while i < n {
                    for r in 0..4 {
                        acc[i] = alpha[r].mul_add(x[r][i].to_f32(), acc[i]);
                    }
                    i += 1;
                }
            }
        };
    }
    kernels4!(f32, load8_f32, dot_f32, dot4_f32, axpy4_f32);
    kernels4!(f16, load8_f16, dot_f16, dot4_f16, axpy4_f16);
    kernels4!(bf16, load8_bf16, dot_bf16, dot4_bf16, axpy4_bf16);

    /// `a` with each block of 16 reordered as its 8 even then its 8 odd elements (the tail, past
    /// the last full block, is left in order and handled by the scalar tail).
    pub(super) fn deinterleave16(a: &[f32]) -> Vec<f32> {
        let mut out = a.to_vec();
        for (blk, src) in out.chunks_exact_mut(16).zip(a.chunks_exact(16)) {
            for j in 0..8 {
                blk[j] = src[2 * j];
                blk[8 + j] = src[2 * j + 1];
            }
        }
        out
    }

    /// Four bf16 rows against a deinterleaved `a_perm`: a 32-byte load of 16 bf16 holds the even
    /// elements in the low halves of its 32-bit lanes and the odd ones in the high halves, so a
    /// shift and a mask give both as f32.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot4_bf16_deint(a_perm: &[f32], a: &[f32], w: [&[bf16]; 4]) -> [f32; 4] {
        let k = a.len();
        let ap = a_perm.as_ptr();
        let wp = [w[0].as_ptr(), w[1].as_ptr(), w[2].as_ptr(), w[3].as_ptr()];
        let hi = _mm256_set1_epi32(0xFFFF_0000u32 as i32);
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        let mut i = 0;
        while i + 16 <= k {
            let xe = _mm256_loadu_ps(ap.add(i));
            let xo = _mm256_loadu_ps(ap.add(i + 8));
            for r in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(wp[r].wrapping_add(i + PF_AHEAD) as *const i8);
                let v = _mm256_loadu_si256(wp[r].add(i) as *const __m256i);
                let even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
                let odd = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
                acc[r][0] = _mm256_fmadd_ps(xe, even, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(xo, odd, acc[r][1]);
            }
            i += 16;
        }
        let mut out = [0f32; 4];
        for r in 0..4 {
            out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
            for j in i..k {
                out[r] += a[j] * w[r][j].to_f32();
            }
        }
        out
    }

    /// # Safety
    /// The CPU supports AVX2, FMA and F16C.
    pub(super) unsafe fn dot4<T: Element>(a: &[f32], w: [&[T]; 4]) -> [f32; 4] {
        match T::DTYPE {
            DType::F32 => dot4_f32(a, w.map(|x| bytemuck::cast_slice(x))),
            DType::F16 => dot4_f16(a, w.map(|x| bytemuck::cast_slice(x))),
            DType::BF16 => dot4_bf16(a, w.map(|x| bytemuck::cast_slice(x))),
        }
    }

    /// # Safety
    /// The CPU supports AVX2, FMA and F16C.
    pub(super) unsafe fn axpy4<T: Element>(alpha: [f32; 4], x: [&[T]; 4], acc: &mut [f32]) {
        match T::DTYPE {
            DType::F32 => axpy4_f32(alpha, x.map(|x| bytemuck::cast_slice(x)), acc),
            DType::F16 => axpy4_f16(alpha, x.map(|x| bytemuck::cast_slice(x)), acc),
            DType::BF16 => axpy4_bf16(alpha, x.map(|x| bytemuck::cast_slice(x)), acc),
        }
    }

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
