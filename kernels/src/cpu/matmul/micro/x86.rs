//! x86-64 micro-kernels with intrinsics.
//!
//! - `Avx2_6x16`: 12 ymm accumulators, 2 B loads and 6 broadcasts per k step (BLIS haswell 6x16).
//! - `Avx512_12x32`: 24 zmm accumulators, 2 B loads and 12 broadcasts per k step.
//! - `Avx512Bf16_12x32`: the same tile on bf16 k-pair panels with `vdpbf16ps` (2 k per instruction).
//!
//! Each accumulator is a separate dependency chain (12 or 24 ≥ FMA latency × FMA ports), so the
//! FMA units stay busy. The accumulators are arrays indexed by constants in fully unrolled loops,
//! which LLVM keeps in registers; `scripts/disasm-microkernel.sh` checks the generated code.

#![allow(clippy::needless_range_loop)]

use super::MicroKernel;
use crate::isa::Isa;
use std::arch::x86_64::*;

/// Prefetch the C tile (rows × `row_bytes`) so its first touch after the k loop does not stall.
#[inline(always)]
unsafe fn prefetch_c(c: *mut f32, rs_c: usize, rows: usize, row_bytes: usize) {
    for i in 0..rows {
        let p = c.add(i * rs_c) as *const i8;
        let mut off = 0;
        while off < row_bytes {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off));
            off += 64;
        }
    }
}

/// Write (or, with `accumulate`, add into) the `MR × 32` C tile from two zmm accumulators per
/// row. Inlined into `#[target_feature(enable = "avx512f")]` kernels only.
#[inline(always)]
unsafe fn store_tile_512<const MR: usize>(
    acc: &[[__m512; 2]; MR],
    c: *mut f32,
    rs_c: usize,
    accumulate: bool,
) {
    for (i, row) in acc.iter().enumerate() {
        let cp = c.add(i * rs_c);
        let (mut v0, mut v1) = (row[0], row[1]);
        if accumulate {
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cp));
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cp.add(16)));
        }
        _mm512_storeu_ps(cp, v0);
        _mm512_storeu_ps(cp.add(16), v1);
    }
}

#[allow(non_camel_case_types)]
pub struct Avx2_6x16;

impl MicroKernel for Avx2_6x16 {
    const ISA: Isa = Isa::Avx2fma;
    const MR: usize = 6;
    const NR: usize = 16;
    const NAME: &'static str = "6x16";

    #[inline]
    unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        avx2_6x16(kc, a, b, c, rs_c, accumulate)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_6x16(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    accumulate: bool,
) {
    const MR: usize = 6;
    prefetch_c(c, rs_c, MR, 64);
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let mut ap = a;
    let mut bp = b;
    // One k step: 2 B loads, 6 broadcasts, 12 FMAs into independent accumulators.
    macro_rules! step {
        () => {{
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for i in 0..MR {
                let ai = _mm256_broadcast_ss(&*ap.add(i));
                acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
            }
            ap = ap.add(MR);
            bp = bp.add(16);
        }};
    }
    for _ in 0..kc / 4 {
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR + 16) as *const i8);
        step!();
        step!();
        step!();
        step!();
    }
    for _ in 0..kc % 4 {
        step!();
    }
    for i in 0..MR {
        let cp = c.add(i * rs_c);
        let (mut v0, mut v1) = (acc[i][0], acc[i][1]);
        if accumulate {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cp));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cp.add(8)));
        }
        _mm256_storeu_ps(cp, v0);
        _mm256_storeu_ps(cp.add(8), v1);
    }
}

#[allow(non_camel_case_types)]
pub struct Avx512_12x32;

impl MicroKernel for Avx512_12x32 {
    const ISA: Isa = Isa::Avx512f;
    const MR: usize = 12;
    const NR: usize = 32;
    const NAME: &'static str = "12x32";

    #[inline]
    unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        avx512_12x32(kc, a, b, c, rs_c, accumulate)
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn avx512_12x32(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    accumulate: bool,
) {
    const MR: usize = 12;
    prefetch_c(c, rs_c, MR, 128);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let mut ap = a;
    let mut bp = b;
    // One k step: 2 B loads, 12 broadcasts, 24 FMAs into independent accumulators.
    macro_rules! step {
        () => {{
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ap.add(i));
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
            ap = ap.add(MR);
            bp = bp.add(32);
        }};
    }
    // Unrolled by 4 (fewer loop-carried pointer updates and branches per FMA), prefetching the
    // A micro-panel 8 steps ahead and the B micro-panel 16 steps ahead (2 KiB: at kc = 2048 its
    // 256 KiB stream from L2 for every A micro-panel). The B prefetch, in the runner: 2048³
    // +2–10%, 1024³ +1–4%, 256³ +2–4% (BENCHMARKS.md "Micro-kernel: prefetching B").
    for _ in 0..kc / 4 {
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR + 16) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR + 32) as *const i8);
        for l in 0..8 {
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(16 * 32 + 16 * l) as *const i8);
        }
        step!();
        step!();
        step!();
        step!();
    }
    for _ in 0..kc % 4 {
        step!();
    }
    store_tile_512(&acc, c, rs_c, accumulate);
}

/// bf16 × bf16 → f32 with AVX512_BF16: 24 zmm accumulators, per k-pair 2 B loads (16 columns ×
/// 2 k each), 12 32-bit broadcasts of A pairs and 24 `vdpbf16ps` (2 k steps each). The products
/// of bf16 are exact in f32; each instruction adds them into the accumulator with RNE rounding
/// (denormal inputs and results flushed to zero), so the f32 accumulation bound still holds.
#[allow(non_camel_case_types)]
pub struct Avx512Bf16_12x32;

impl super::PairMicroKernel for Avx512Bf16_12x32 {
    const MR: usize = 12;
    const NR: usize = 32;
    const NAME: &'static str = "12x32";

    #[inline]
    unsafe fn kernel(
        kp: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        avx512bf16_12x32(kp, a, b, c, rs_c, accumulate)
    }

    #[inline]
    unsafe fn kernel_bf16(
        kp: usize,
        a: *const u32,
        b: *const u32,
        c: *const f32,
        rs_c: usize,
        accumulate: bool,
        out: super::Bf16Tile,
    ) {
        avx512bf16_12x32_to_bf16(kp, a, b, c, rs_c, accumulate, out)
    }
}

/// The first `R ≤ 12` rows of the 12 × 32 `vdpbf16ps` tile's accumulators over `kp` k-pairs
/// (see [`Avx512Bf16_12x32`]; the A micro-panel's other rows are not read into a product): the
/// whole tile, or that of an edge micro-panel with at most `R` real rows. Inlined into kernels
/// compiled with AVX-512F and AVX512_BF16 only.
#[inline(always)]
unsafe fn bf16dot_rows_acc<const R: usize>(
    kp: usize,
    a: *const u32,
    b: *const u32,
) -> [[__m512; 2]; R] {
    const MR: usize = 12;
    const { assert!(R <= MR) };
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let mut ap = a;
    let mut bp = b;
    // One k-pair: 2 B loads, 12 broadcasts, 24 dot products into independent accumulators.
    macro_rules! step {
        () => {{
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_ps(bp as *const f32));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_ps(bp.add(16) as *const f32));
            for i in 0..R {
                let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(i) as i32));
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
            }
            ap = ap.add(MR);
            bp = bp.add(32);
        }};
    }
    // Unrolled by 4 pairs, prefetching the A micro-panel (48 bytes per pair, from L2) ahead.
    for _ in 0..kp / 4 {
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR + 16) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(8 * MR + 32) as *const i8);
        step!();
        step!();
        step!();
        step!();
    }
    for _ in 0..kp % 4 {
        step!();
    }
    acc
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn avx512bf16_12x32(
    kp: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    rs_c: usize,
    accumulate: bool,
) {
    prefetch_c(c, rs_c, 12, 128);
    let acc = bf16dot_rows_acc::<12>(kp, a, b);
    store_tile_512(&acc, c, rs_c, accumulate);
}

/// [`Avx512Bf16_12x32`]'s tile (plus the f32 tile at `c` where `accumulate`) rounded to bf16
/// (`vcvtne2ps2bf16`: each row's 32 columns in one vector) and stored into rows `0..rows`,
/// columns `0..cols` of a bf16 C (masked where the tile passes C's edge).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn avx512bf16_12x32_to_bf16(
    kp: usize,
    a: *const u32,
    b: *const u32,
    c: *const f32,
    rs_c: usize,
    accumulate: bool,
    out: super::Bf16Tile,
) {
    debug_assert!(out.rows <= 12 && out.cols <= 32);
    for i in 0..out.rows {
        _mm_prefetch::<_MM_HINT_T0>(out.d.add(i * out.rs_d) as *const i8);
    }
    // An edge micro-panel (M's last rows) multiplies only the rows it has, in steps of four.
    match out.rows {
        0..=4 => store_bf16::<4>(bf16dot_rows_acc::<4>(kp, a, b), c, rs_c, accumulate, out),
        5..=8 => store_bf16::<8>(bf16dot_rows_acc::<8>(kp, a, b), c, rs_c, accumulate, out),
        _ => store_bf16::<12>(bf16dot_rows_acc::<12>(kp, a, b), c, rs_c, accumulate, out),
    }
}

/// Rows `0..out.rows ≤ R` of an `R × 32` tile `acc` (plus the f32 tile at `c` where
/// `accumulate`) rounded to bf16 and stored as [`avx512bf16_12x32_to_bf16`] states.
#[inline(always)]
unsafe fn store_bf16<const R: usize>(
    mut acc: [[__m512; 2]; R],
    c: *const f32,
    rs_c: usize,
    accumulate: bool,
    out: super::Bf16Tile,
) {
    let super::Bf16Tile {
        d,
        rs_d,
        rows,
        cols,
    } = out;
    debug_assert!(rows <= R);
    if accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            let cp = c.add(i * rs_c);
            row[0] = _mm512_add_ps(row[0], _mm512_loadu_ps(cp));
            row[1] = _mm512_add_ps(row[1], _mm512_loadu_ps(cp.add(16)));
        }
    }
    let mask: u32 = if cols >= 32 { !0 } else { (1u32 << cols) - 1 };
    // Every row stored under a mask (none for rows past `rows`: a masked store neither writes
    // nor faults there), so the loop has a fixed trip count and the accumulators stay in
    // registers (with an early exit LLVM kept them on the stack).
    for (i, row) in acc.iter().enumerate() {
        let m = if i < rows { mask } else { 0 };
        // Columns 0..16 from the first accumulator (the low half), 16..32 from the second.
        let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(row[1], row[0]));
        _mm512_mask_storeu_epi16(d.wrapping_add(i * rs_d) as *mut i16, m, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::matmul::micro::PairMicroKernel;
    use half::bf16;

    /// `kernel_bf16`'s rounding and edge masks: with no k-pairs and `accumulate`, the stored
    /// tile is the given f32 C (plus the zero accumulators) rounded, which must equal
    /// `bf16::from_f32` bit for bit — ties to even, NaNs quieted with their payload, infinities,
    /// overflow — except an f32 subnormal, which the instruction flushes to a zero of its sign.
    /// Every f32 value with each rounding case of its low half, plus a stride through all 2^32
    /// patterns, in whole and edge tiles; nothing past the tile's rows and columns written.
    #[test]
    fn bf16_store_rounds_like_half_and_masks_the_edges() {
        if !crate::isa::detected().avx512bf16 {
            eprintln!("skipped: this CPU lacks AVX512_BF16");
            return;
        }
        let mut bits: Vec<u32> = (0..=u16::MAX as u32)
            .flat_map(|h| [0u32, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF].map(move |l| (h << 16) | l))
            .collect();
        bits.extend((0..=u32::MAX).step_by(65_537));
        let (a, b) = ([0u32; 12], [0u32; 32]);
        const LD: usize = 40;
        const UNTOUCHED: u16 = 0xABCD;
        for (t, chunk) in bits.chunks(12 * 32).enumerate() {
            let (rows, cols) = if t % 3 == 0 {
                (12, 32)
            } else {
                (1 + t % 12, 1 + (t * 7) % 32)
            };
            let mut c = [0f32; 12 * 32];
            for (x, &w) in c.iter_mut().zip(chunk) {
                *x = f32::from_bits(w);
            }
            let mut d = vec![UNTOUCHED; 13 * LD];
            // SAFETY: the CPU has AVX512_BF16 (checked; with it AVX-512 F/BW); no k-pairs are
            // read; C is a whole 12 × 32 tile at stride 32; d holds 13 rows of LD ≥ 32.
            unsafe {
                Avx512Bf16_12x32::kernel_bf16(
                    0,
                    a.as_ptr(),
                    b.as_ptr(),
                    c.as_ptr(),
                    32,
                    true,
                    crate::cpu::matmul::micro::Bf16Tile {
                        d: d.as_mut_ptr(),
                        rs_d: LD,
                        rows,
                        cols,
                    },
                )
            };
            for i in 0..13 {
                for j in 0..LD {
                    let got = d[i * LD + j];
                    if i < rows && j < cols {
                        let y = 0.0f32 + c[i * 32 + j];
                        let want = if y.is_subnormal() {
                            ((y.to_bits() >> 16) & 0x8000) as u16
                        } else {
                            bf16::from_f32(y).to_bits()
                        };
                        assert_eq!(
                            got,
                            want,
                            "f32 bits {:#010x} ({rows}x{cols} tile)",
                            y.to_bits()
                        );
                    } else {
                        assert_eq!(got, UNTOUCHED, "({i}, {j}) written, tile {rows}x{cols}");
                    }
                }
            }
        }
    }
}
