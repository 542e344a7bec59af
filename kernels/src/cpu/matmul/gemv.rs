//! The M = 1 fast path (decode-time projections): memory-bound, so B is streamed once, widened in
//! registers, and never packed. Written once over the `cpu::simd` vocabulary, one entry point
//! per ISA.
//!
//! - B transposed (`[n, k]`, LLM weights): `c[j] = dot(a, Bᵀ[j, :])`, parallel over blocks of
//!   rows, in one of three stream layouts chosen per CPU kind ([`Streams::for_this_cpu`]):
//!   one row at a time (a single sequential stream per thread, prefetched [`PF_BYTES`] ahead:
//!   the better layout on the Zen 5 VM, where four rows per step — four streams — read ≈ 20%
//!   less per second; BENCHMARKS.md, "GEMV"); [`ROWS_TOGETHER`] adjacent rows at a time, one
//!   64-byte line of each per step, each prefetched [`NEAR_PF_BYTES`] ahead, on Intel (eight
//!   streams per thread: bf16/f16 6–18%, f32 0–11% more per second than one stream on the
//!   Intel Xeon 6/207 VM, BENCHMARKS.md "GEMV: eight rows at a time"); or, on AMD family 25,
//!   [`REGIONS`] rows far apart at a time ([`Streams::Regions`]: on the Zen 4 VM the eight
//!   adjacent rows without prefetch were 0.98–1.30× them with it, BENCHMARKS.md "GEMV: eight
//!   rows at a time on Zen 4", and four far-apart rows, in the runner, bf16 1.05–1.11× the
//!   eight (time ratios 0.900–0.955) and f16 ±3%, f32 measured only in `mmtime`; BENCHMARKS.md
//!   "Zen 4: GEMV rows from four regions").
//! - B transposed, bf16, on the `vdpbf16ps` path ([`transposed_bf16dot`], AMD family 25):
//!   the same regions layout, with one `vdpbf16ps` per 64-byte line of a row read straight from
//!   memory instead of two widenings and two FMAs (BENCHMARKS.md "Zen 4: the bf16 GEMV with
//!   `vdpbf16ps`").
//! - B `[k, n]`: K is split across tasks; each task streams its rows of B four at a time into its
//!   own f32 accumulator of length n (L2-resident), each stream prefetched [`PF_BYTES`] ahead, and
//!   the partial sums are added at the end.

use crate::cpu::simd::{load_elem, per_isa, Simd};
use crate::cpu::SendPtr;
use crate::dtype::Element;
use crate::isa::Isa;
use rayon::prelude::*;

/// Bytes prefetched ahead of each row stream.
const PF_BYTES: usize = 8192;

/// Rows of Bᵀ read together in the many-stream layout.
const ROWS_TOGETHER: usize = 8;
/// Bytes prefetched ahead of each of the [`ROWS_TOGETHER`] streams (eight lines).
const NEAR_PF_BYTES: usize = 512;

/// How the transposed GEMV streams Bᵀ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Streams {
    /// One row at a time, [`PF_BYTES`] ahead.
    One,
    /// [`ROWS_TOGETHER`] rows at a time, [`NEAR_PF_BYTES`] ahead (`prefetch`) or with no
    /// software prefetch.
    Many { prefetch: bool },
    /// [`REGIONS`] rows far apart at a time: Bᵀ cut into that many equal regions, one line of
    /// row `j` of each per step (rows `j`, `j + n/REGIONS`, …), no software prefetch; each
    /// thread's share of `j` makes as many separate streams. Products too short for regions of
    /// [`ROWS_PER_TASK`] rows take `Many` without prefetch.
    Regions,
}

/// Regions of [`Streams::Regions`].
const REGIONS: usize = 4;

impl Streams {
    /// The layout measured faster on this CPU kind: `Many` with the prefetch on Intel (Xeon
    /// family 6 model 207); `Regions` on AMD family 25 (Zen 4, family 25 model 17: `Many` with
    /// the prefetch 1.09–1.41× `One` at 1×4096×4096 and 1×14336×4096, bf16 and f16, without it
    /// 0.98–1.30× that, BENCHMARKS.md "GEMV: eight rows at a time on Zen 4"; `Regions` against
    /// `Many` without prefetch, runner time ratios 0.900–0.955 on bf16, 0.970–1.004 on f16, f32
    /// not measured in the runner,
    /// BENCHMARKS.md "Zen 4: GEMV rows from four regions"; Zen 3 shares the family and was not
    /// measured); `One` elsewhere (measured best on the Zen 5 VM, family 26, against an earlier
    /// four-row layout).
    pub(crate) fn for_this_cpu() -> Streams {
        match crate::cpu::cpu_kind() {
            crate::cpu::CpuKind::Intel => Streams::Many { prefetch: true },
            crate::cpu::CpuKind::AmdFamily25 => Streams::Regions,
            crate::cpu::CpuKind::Other => Streams::One,
        }
    }
}

/// Rows of Bᵀ per task (trans_b) — enough work per task to amortize scheduling.
const ROWS_PER_TASK: usize = 64;

per_isa! {
    /// `out[r] = a · Bᵀ[r, 0..k]` for the rows of `bt` (leading dimension `ldb`), in the stream
    /// layout `streams`.
    ///
    /// # Safety
    /// `isa` is available; `bt` holds `out.len()` rows of `k` elements at stride `ldb`.
    unsafe fn dot_rows(a: &[f32], bt: &[T], ldb: usize, out: &mut [f32], streams: Streams) => dot_rows_with
}

per_isa! {
    /// `out[j + r·per] = a · Bᵀ[j + r·per, 0..k]` for `j` in `js.0..js.1` and `r < REGIONS`: the
    /// [`Streams::Regions`] layout, one 64-byte line of each of the [`REGIONS`] rows per step.
    ///
    /// # Safety
    /// `isa` is available; `bt` holds rows `0..REGIONS·per` of `k` elements at stride `ldb`, and
    /// `out` those rows' outputs, of which the caller's thread alone writes these.
    unsafe fn dot_regions(a: &[f32], bt: &[T], ldb: usize, js: (usize, usize), per: usize, out: SendPtr<f32>) => dot_regions_with
}

#[inline(always)]
unsafe fn dot_regions_with<S: Simd, T: Element>(
    a: &[f32],
    bt: &[T],
    ldb: usize,
    (j0, j1): (usize, usize),
    per: usize,
    out: SendPtr<f32>,
) {
    for j in j0..j1 {
        let w: [*const T; REGIONS] = std::array::from_fn(|r| bt.as_ptr().add((j + r * per) * ldb));
        let sums = dot_group::<S, T, REGIONS, false>(a, w);
        for (r, s) in sums.into_iter().enumerate() {
            *out.get().add(j + r * per) = s;
        }
    }
}

#[inline(always)]
unsafe fn dot_rows_with<S: Simd, T: Element>(
    a: &[f32],
    bt: &[T],
    ldb: usize,
    out: &mut [f32],
    streams: Streams,
) {
    let done = match streams {
        Streams::Many { prefetch: true } => {
            dot_rows_together::<S, T, ROWS_TOGETHER, true>(a, bt, ldb, out)
        }
        Streams::Many { prefetch: false } => {
            dot_rows_together::<S, T, ROWS_TOGETHER, false>(a, bt, ldb, out)
        }
        Streams::One => 0,
        Streams::Regions => unreachable!("the regions layout goes through dot_regions"),
    };
    if done < out.len() {
        dot_rows_one::<S, T>(a, &bt[done * ldb..], ldb, &mut out[done..]);
    }
}

/// `out[r] = a · Bᵀ[r, 0..k]` for the first whole groups of `R` rows of `out`, `R` rows at a
/// time: per step one 64-byte line of each row (one accumulator per row), each row prefetched
/// [`NEAR_PF_BYTES`] ahead where `PF`. Returns the rows done (a multiple of `R`).
#[inline(always)]
unsafe fn dot_rows_together<S: Simd, T: Element, const R: usize, const PF: bool>(
    a: &[f32],
    bt: &[T],
    ldb: usize,
    out: &mut [f32],
) -> usize {
    let groups = out.len() / R;
    for g in 0..groups {
        let w: [*const T; R] = std::array::from_fn(|r| bt.as_ptr().add((g * R + r) * ldb));
        let sums = dot_group::<S, T, R, PF>(a, w);
        out[g * R..g * R + R].copy_from_slice(&sums);
    }
    groups * R
}

/// `a · row` for each of the `R` rows at `w` (`a.len()` elements each), one 64-byte line of
/// each row per step (one accumulator per row), each row prefetched [`NEAR_PF_BYTES`] ahead
/// where `PF`.
#[inline(always)]
unsafe fn dot_group<S: Simd, T: Element, const R: usize, const PF: bool>(
    a: &[f32],
    w: [*const T; R],
) -> [f32; R] {
    let k = a.len();
    let l = S::LANES;
    // Vectors per 64-byte line of a row (1–4); lines smaller than a vector take one vector.
    let vpl = (64 / std::mem::size_of::<T>() / l).max(1);
    let step = vpl * l;
    let ap = a.as_ptr();
    {
        let mut acc = [S::zero(); R];
        let mut i = 0;
        while i + step <= k {
            if PF {
                for row in w {
                    S::prefetch((row.add(i) as *const u8).wrapping_add(NEAR_PF_BYTES));
                }
            }
            for v in 0..vpl {
                let x = S::load(ap.add(i + v * l));
                for r in 0..R {
                    acc[r] = S::fma(x, load_elem::<S, T>(w[r].add(i + v * l)), acc[r]);
                }
            }
            i += step;
        }
        while i + l <= k {
            let x = S::load(ap.add(i));
            for r in 0..R {
                acc[r] = S::fma(x, load_elem::<S, T>(w[r].add(i)), acc[r]);
            }
            i += l;
        }
        let mut sums = [0f32; R];
        for (s, (row, acc)) in sums.iter_mut().zip(w.iter().zip(acc)) {
            let mut sum = S::hsum(acc);
            for (j, &x) in a.iter().enumerate().skip(i) {
                sum += x * (*row.add(j)).to_f32();
            }
            *s = sum;
        }
        sums
    }
}

/// `out[r] = a · Bᵀ[r, 0..k]`, one row at a time, so each thread reads one sequential stream
/// (consecutive rows are adjacent), with a software prefetch [`PF_BYTES`] ahead; four
/// accumulators per row.
#[inline(always)]
unsafe fn dot_rows_one<S: Simd, T: Element>(a: &[f32], bt: &[T], ldb: usize, out: &mut [f32]) {
    let k = a.len();
    let l = S::LANES;
    let step = 4 * l;
    let step_bytes = step * std::mem::size_of::<T>();
    let ap = a.as_ptr();
    for (r, o) in out.iter_mut().enumerate() {
        let row = &bt[r * ldb..r * ldb + k];
        let w = row.as_ptr();
        let mut acc = [S::zero(); 4];
        let mut i = 0;
        while i + step <= k {
            let pf = (w.add(i) as *const u8).wrapping_add(PF_BYTES);
            for line in (0..step_bytes).step_by(64) {
                S::prefetch(pf.wrapping_add(line));
            }
            for (u, acc) in acc.iter_mut().enumerate() {
                let x = S::load(ap.add(i + u * l));
                *acc = S::fma(x, load_elem::<S, T>(w.add(i + u * l)), *acc);
            }
            i += step;
        }
        while i + l <= k {
            acc[0] = S::fma(S::load(ap.add(i)), load_elem::<S, T>(w.add(i)), acc[0]);
            i += l;
        }
        let mut sum = S::hsum(S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3])));
        for j in i..k {
            sum += a[j] * row[j].to_f32();
        }
        *o = sum;
    }
}

per_isa! {
    /// `acc[0..n] += Σ_p alpha[p] · B[p, 0..n]` over the rows of `b` (leading dimension `ldb`,
    /// `alpha.len()` rows), four rows per pass over `acc` (which stays in L2), each of the four
    /// row streams prefetched [`PF_BYTES`] ahead.
    ///
    /// # Safety
    /// `isa` is available; `b` holds `alpha.len()` rows of `acc.len()` elements at stride `ldb`.
    unsafe fn axpy_rows(alpha: &[f32], b: &[T], ldb: usize, acc: &mut [f32]) => axpy_rows_with
}

#[inline(always)]
unsafe fn axpy_rows_with<S: Simd, T: Element>(alpha: &[f32], b: &[T], ldb: usize, acc: &mut [f32]) {
    let row = |p: usize| b.as_ptr().add(p * ldb);
    let mut quads = alpha.chunks_exact(4);
    let mut p = 0;
    for q in &mut quads {
        let rows = [row(p), row(p + 1), row(p + 2), row(p + 3)];
        axpy_group::<S, T, 4>([q[0], q[1], q[2], q[3]], rows, acc);
        p += 4;
    }
    for &al in quads.remainder() {
        axpy_group::<S, T, 1>([al], [row(p)], acc);
        p += 1;
    }
}

/// `acc += Σ_r alpha[r] · rows[r][0..acc.len()]`, one pass over `acc`, each row stream
/// prefetched [`PF_BYTES`] ahead.
#[inline(always)]
unsafe fn axpy_group<S: Simd, T: Element, const R: usize>(
    alpha: [f32; R],
    rows: [*const T; R],
    acc: &mut [f32],
) {
    let n = acc.len();
    let l = S::LANES;
    let lane_bytes = l * std::mem::size_of::<T>();
    let av = alpha.map(|x| S::splat(x));
    let cp = acc.as_mut_ptr();
    let mut i = 0;
    while i + l <= n {
        // One prefetch per 64-byte line of each stream.
        if (i * std::mem::size_of::<T>()) % 64 < lane_bytes {
            for r in rows {
                S::prefetch((r.add(i) as *const u8).wrapping_add(PF_BYTES));
            }
        }
        let mut v = S::load(cp.add(i));
        for r in 0..R {
            v = S::fma(av[r], load_elem::<S, T>(rows[r].add(i)), v);
        }
        S::store(cp.add(i), v);
        i += l;
    }
    for (j, c) in acc.iter_mut().enumerate().skip(i) {
        for r in 0..R {
            *c = alpha[r].mul_add((*rows[r].add(j)).to_f32(), *c);
        }
    }
}

/// The tasks of a transposed GEMV over `n` rows, which write disjoint outputs. With `regions`
/// and `n / REGIONS ≥ ROWS_PER_TASK`: Bᵀ cut into [`REGIONS`] regions of `per = n / REGIONS`
/// rows, each task `regions_task(j0, j1, per)` taking rows `j + r·per` for `j` in `j0..j1` and
/// every `r` (a few rows of each region), and the last `n % REGIONS` rows one
/// `rows_task(done, n, true)`. Otherwise tasks of [`ROWS_PER_TASK`] adjacent rows,
/// `rows_task(j0, j1, false)`. The flag says whether a rows task is the regions' remainder.
fn row_tasks(
    n: usize,
    regions: bool,
    regions_task: impl Fn(usize, usize, usize) + Sync,
    rows_task: impl Fn(usize, usize, bool) + Sync,
) {
    let per = n / REGIONS;
    if regions && per >= ROWS_PER_TASK {
        let rows = ROWS_PER_TASK / REGIONS;
        (0..per.div_ceil(rows)).into_par_iter().for_each(|t| {
            regions_task(t * rows, ((t + 1) * rows).min(per), per);
        });
        let done = per * REGIONS;
        if done < n {
            rows_task(done, n, true);
        }
        return;
    }
    (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .for_each(|t| rows_task(t * ROWS_PER_TASK, ((t + 1) * ROWS_PER_TASK).min(n), false));
}

/// `c[j] = a · Bᵀ[j, :]` for every `j` of `c`, in the stream layout `streams`; `isa` is
/// available and `b` holds `c.len()` rows of `a.len()` elements at stride `ldb`.
fn transposed<T: Element>(
    isa: Isa,
    a: &[f32],
    b: &[T],
    ldb: usize,
    c: &mut [f32],
    streams: Streams,
) {
    let n = c.len();
    let out = SendPtr(c.as_mut_ptr());
    row_tasks(
        n,
        streams == Streams::Regions,
        // SAFETY: the caller checked the ISA; rows below REGIONS·per ≤ n are within b, and
        // task t alone writes outputs j + r·per for its j.
        |j0, j1, per| unsafe { dot_regions(isa, a, b, ldb, (j0, j1), per, out) },
        |j0, j1, rest| {
            // The regions' remainder one row at a time; regions too short to stream: eight
            // adjacent rows at a time instead.
            let streams = match streams {
                Streams::Regions if rest => Streams::One,
                Streams::Regions => Streams::Many { prefetch: false },
                s => s,
            };
            // SAFETY: the caller checked the ISA; rows j0..j1 are within b, and this task alone
            // writes their outputs.
            unsafe {
                let out = std::slice::from_raw_parts_mut(out.get().add(j0), j1 - j0);
                dot_rows(isa, a, &b[j0 * ldb..], ldb, out, streams);
            }
        },
    );
}

/// Whether the M = 1 Bᵀ product of bf16 inputs on the `vdpbf16ps` path takes
/// [`transposed_bf16dot`] rather than the widening GEMV: where its layout, [`Streams::Regions`],
/// is this CPU kind's (AMD family 25, where it was measured: BENCHMARKS.md "Zen 4: the bf16
/// GEMV with `vdpbf16ps`"). Elsewhere the widening GEMV keeps the layout measured there.
pub(crate) fn takes_bf16dot() -> bool {
    Streams::for_this_cpu() == Streams::Regions
}

/// `c[j] = a · Bᵀ[j, :]` for bf16 `a` and Bᵀ (as bits; `b` holds `c.len()` rows of `a.len()`
/// values at stride `ldb`) with `vdpbf16ps`: one 64-byte line (32 values) of a row per
/// instruction, read straight from memory, products exact in f32 and summed in f32, in the
/// [`Streams::Regions`] layout (the regions' remainder and products too short for regions eight
/// adjacent rows at a time). `vdpbf16ps` reads subnormal inputs as zero and flushes subnormal
/// sums, as on the rest of the `vdpbf16ps` path. Panics without AVX512_BF16.
#[cfg(target_arch = "x86_64")]
pub(crate) fn transposed_bf16dot(a: &[u16], b: &[u16], ldb: usize, c: &mut [f32]) {
    assert!(
        crate::isa::detected().avx512bf16,
        "the vdpbf16ps GEMV needs AVX512_BF16"
    );
    let n = c.len();
    assert!(
        n == 0 || b.len() >= (n - 1) * ldb + a.len(),
        "Bᵀ holds n rows of k"
    );
    let out = SendPtr(c.as_mut_ptr());
    row_tasks(
        n,
        true,
        // SAFETY: AVX512_BF16 is available (asserted above); rows below REGIONS·per ≤ n are
        // within b (asserted above), and this task alone writes outputs j + r·per for its j.
        |j0, j1, per| unsafe { bf16dot::regions(a, b.as_ptr(), ldb, (j0, j1), per, out) },
        // SAFETY: as above; rows j0..j1 are within b, and this task alone writes their outputs.
        |j0, j1, _| unsafe { bf16dot::rows(a, b.as_ptr(), ldb, (j0, j1), out) },
    );
}

/// The `vdpbf16ps` kernels of [`transposed_bf16dot`].
#[cfg(target_arch = "x86_64")]
mod bf16dot {
    use super::{REGIONS, ROWS_TOGETHER};
    use crate::cpu::SendPtr;
    use std::arch::x86_64::*;

    /// `out[j + r·per] = a · Bᵀ[j + r·per]` for `j` in `j0..j1` and `r < REGIONS`, one line of
    /// each of the [`REGIONS`] rows per step.
    ///
    /// # Safety
    /// AVX512_BF16 is available; `bt` holds rows `0..REGIONS·per` of `a.len()` values at stride
    /// `ldb`, and the caller's thread alone writes these outputs.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512bf16")]
    pub(super) unsafe fn regions(
        a: &[u16],
        bt: *const u16,
        ldb: usize,
        (j0, j1): (usize, usize),
        per: usize,
        out: SendPtr<f32>,
    ) {
        for j in j0..j1 {
            let w: [*const u16; REGIONS] = std::array::from_fn(|r| bt.add((j + r * per) * ldb));
            for (r, s) in group(a, w).into_iter().enumerate() {
                *out.get().add(j + r * per) = s;
            }
        }
    }

    /// `out[j] = a · Bᵀ[j]` for `j` in `j0..j1`, [`ROWS_TOGETHER`] adjacent rows at a time (one
    /// line of each per step), the rest one at a time.
    ///
    /// # Safety
    /// AVX512_BF16 is available; `bt` holds rows `j0..j1` of `a.len()` values at stride `ldb`,
    /// and the caller's thread alone writes these outputs.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512bf16")]
    pub(super) unsafe fn rows(
        a: &[u16],
        bt: *const u16,
        ldb: usize,
        (j0, j1): (usize, usize),
        out: SendPtr<f32>,
    ) {
        let mut j = j0;
        while j + ROWS_TOGETHER <= j1 {
            let w: [*const u16; ROWS_TOGETHER] = std::array::from_fn(|r| bt.add((j + r) * ldb));
            let sums = group(a, w);
            std::ptr::copy_nonoverlapping(sums.as_ptr(), out.get().add(j), ROWS_TOGETHER);
            j += ROWS_TOGETHER;
        }
        for j in j..j1 {
            *out.get().add(j) = group(a, [bt.add(j * ldb)])[0];
        }
    }

    /// `a · row` for each of the `R` rows at `w` (`a.len()` values each): per step one line of
    /// `a` against one line of each row, one accumulator per row; the last partial line under a
    /// mask (zeros beyond `k` add nothing).
    #[inline(always)]
    unsafe fn group<const R: usize>(a: &[u16], w: [*const u16; R]) -> [f32; R] {
        let k = a.len();
        let ap = a.as_ptr();
        let mut acc = [_mm512_setzero_ps(); R];
        let mut i = 0;
        while i + 32 <= k {
            let av: __m512bh = std::mem::transmute(_mm512_loadu_si512(ap.add(i) as *const _));
            for r in 0..R {
                let bv: __m512bh = std::mem::transmute(_mm512_loadu_si512(w[r].add(i) as *const _));
                acc[r] = _mm512_dpbf16_ps(acc[r], av, bv);
            }
            i += 32;
        }
        if i < k {
            let m: __mmask32 = (1u32 << (k - i)) - 1;
            let av: __m512bh =
                std::mem::transmute(_mm512_maskz_loadu_epi16(m, ap.add(i) as *const _));
            for r in 0..R {
                let bv: __m512bh =
                    std::mem::transmute(_mm512_maskz_loadu_epi16(m, w[r].add(i) as *const _));
                acc[r] = _mm512_dpbf16_ps(acc[r], av, bv);
            }
        }
        acc.map(|v| _mm512_reduce_add_ps(v))
    }
}

/// `c[0..n] = a[0..k] · op(B)` in f32. `a` is already converted to f32; `isa` is available.
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
        transposed(isa, a, b, ldb, &mut c[..n], Streams::for_this_cpu());
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
                if p0 < p1 {
                    // SAFETY: the caller checked the ISA; rows p0..p1 are within b.
                    unsafe { axpy_rows(isa, &a[p0..p1], &b[p0 * ldb..], ldb, &mut acc) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use half::{bf16, f16};

    /// The per-row kernels of the one-row and eight-row layouts ([`Streams::Regions`] has its
    /// own, covered by `transposed_gemv_every_stream_layout_isa_and_dtype`), on every ISA path
    /// here: row counts around the groups of [`ROWS_TOGETHER`], k around a line, a
    /// vector and a step (with tails), padded rows. Small integers, so every order of the sums
    /// is exact and the results equal the definition's.
    fn check<T: Element>(from: fn(f32) -> T) {
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            for streams in [
                Streams::One,
                Streams::Many { prefetch: true },
                Streams::Many { prefetch: false },
            ] {
                for (rows, k, ldb) in [(19, 1030, 1030), (8, 7, 9), (17, 301, 305), (3, 64, 64)] {
                    let a: Vec<f32> = (0..k).map(|i| ((i * 7 + 3) % 5) as f32 - 2.0).collect();
                    let bt: Vec<T> = (0..rows * ldb)
                        .map(|i| from(((i * 11 + 1) % 7) as f32 - 3.0))
                        .collect();
                    let mut out = vec![f32::NAN; rows];
                    // SAFETY: the ISA is available; bt holds `rows` rows of k at stride ldb.
                    unsafe { dot_rows(isa, &a, &bt, ldb, &mut out, streams) };
                    for (r, &o) in out.iter().enumerate() {
                        let want: f32 = (0..k).map(|j| a[j] * bt[r * ldb + j].to_f32()).sum();
                        assert_eq!(
                            o,
                            want,
                            "{isa} {streams:?} {} rows {rows} k {k} ldb {ldb}: row {r}",
                            T::DTYPE
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_rows_both_stream_layouts_every_isa_and_dtype() {
        check::<f32>(|x| x);
        check::<f16>(f16::from_f32);
        check::<bf16>(bf16::from_f32);
    }

    /// The whole transposed GEMV in every stream layout, on every ISA path here: row counts
    /// around the smallest product that [`Streams::Regions`] cuts into regions (below it the
    /// eight-row layout), with every remainder of the regions; small integers, so the sums are
    /// exact.
    fn check_layouts<T: Element>(from: fn(f32) -> T) {
        let (k, ldb) = (70, 75);
        let a: Vec<f32> = (0..k).map(|i| ((i * 7 + 3) % 5) as f32 - 2.0).collect();
        let smallest = REGIONS * ROWS_PER_TASK;
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            for streams in [
                Streams::One,
                Streams::Many { prefetch: true },
                Streams::Many { prefetch: false },
                Streams::Regions,
            ] {
                for n in [1, smallest - 1, smallest, smallest + 1, smallest + 3, 1000] {
                    let bt: Vec<T> = (0..n * ldb)
                        .map(|i| from(((i * 11 + 1) % 7) as f32 - 3.0))
                        .collect();
                    let mut c = vec![f32::NAN; n];
                    transposed(isa, &a, &bt, ldb, &mut c, streams);
                    for (j, &o) in c.iter().enumerate() {
                        let want: f32 = (0..k).map(|q| a[q] * bt[j * ldb + q].to_f32()).sum();
                        assert_eq!(o, want, "{isa} {streams:?} {} n {n}: row {j}", T::DTYPE);
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_gemv_every_stream_layout_isa_and_dtype() {
        check_layouts::<f32>(|x| x);
        check_layouts::<f16>(f16::from_f32);
        check_layouts::<bf16>(bf16::from_f32);
    }

    /// The `vdpbf16ps` GEMV against exact sums: k around whole lines (the masked last line),
    /// row counts around the smallest product cut into regions, every regions' remainder, a
    /// row stride past k, and a mutated input that must change exactly its row's output.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transposed_bf16dot_exact_sums() {
        if !crate::isa::detected().avx512bf16 {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        let smallest = REGIONS * ROWS_PER_TASK;
        for k in [1, 31, 32, 33, 70, 100] {
            let ldb = k + 5;
            let a: Vec<bf16> = (0..k)
                .map(|i| bf16::from_f32(((i * 7 + 3) % 5) as f32 - 2.0))
                .collect();
            let ab: &[u16] = bytemuck::cast_slice(&a);
            for n in [
                1,
                9,
                smallest - 1,
                smallest,
                smallest + 1,
                smallest + 3,
                1000,
            ] {
                let mut bt: Vec<bf16> = (0..n * ldb)
                    .map(|i| bf16::from_f32(((i * 11 + 1) % 7) as f32 - 3.0))
                    .collect();
                let want = |bt: &[bf16], j: usize| -> f32 {
                    (0..k)
                        .map(|q| a[q].to_f32() * bt[j * ldb + q].to_f32())
                        .sum()
                };
                let mut c = vec![f32::NAN; n];
                transposed_bf16dot(ab, bytemuck::cast_slice(&bt), ldb, &mut c);
                for (j, &o) in c.iter().enumerate() {
                    assert_eq!(o, want(&bt, j), "k {k} n {n}: row {j}");
                }
                // The last value of the last row (read under the mask when k is not whole
                // lines) changed by 2·a: only that row's output moves, by 2·a².
                let (j, q) = (n - 1, k - 1);
                bt[j * ldb + q] = bf16::from_f32(bt[j * ldb + q].to_f32() + 2.0 * a[q].to_f32());
                let mut c2 = vec![f32::NAN; n];
                transposed_bf16dot(ab, bytemuck::cast_slice(&bt), ldb, &mut c2);
                for (r, (&o, &o2)) in c.iter().zip(&c2).enumerate() {
                    let moved = if r == j {
                        2.0 * a[q].to_f32().powi(2)
                    } else {
                        0.0
                    };
                    assert_eq!(o2 - o, moved, "k {k} n {n}: row {r} after the mutation");
                }
            }
        }
    }
}
