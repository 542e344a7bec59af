//! Packing of A and B into contiguous micro-panels, converting f16/bf16 to f32 on the way: the
//! dtype boundary is crossed once per packed element, and the micro-kernels see only f32.
//!
//! Panels past the matrix edge are padded with zeros, so micro-kernels always run full tiles.
//!
//! The `vdpbf16ps` path packs bf16 without conversion, as k-pairs in u32 words ([`pack_pairs_rows`]
//! for Bᵀ and A, [`pack_b_pair_rows`] for B `[k, n]`; [`pack_b_pairs`], one panel at a time, is
//! kept for `examples/packtime`'s comparison and the tests).

use crate::cpu::simd::{self, load_elem, per_isa, Simd};
use crate::dtype::Element;

per_isa! {
    /// Pack rows `0..mc` × columns `0..kc` of A (row-major, `lda`, starting at `a[0]`) into
    /// `ceil(mc/MR)` micro-panels of `kc × MR` (k-major). `row` is scratch of length ≥ kc.
    ///
    /// # Safety
    /// `isa` is available on this CPU.
    pub unsafe fn pack_a(
        a: &[T],
        lda: usize,
        mc: usize,
        kc: usize,
        mr: usize,
        dst: &mut [f32],
        row: &mut [f32],
    ) => pack_a_with
}

#[inline(always)]
unsafe fn pack_a_with<S: Simd, T: Element>(
    a: &[T],
    lda: usize,
    mc: usize,
    kc: usize,
    mr: usize,
    dst: &mut [f32],
    row: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if S::LANES == 16 && mr == x86::MR {
        // SAFETY: a 16-lane path is the AVX-512 one (with VL/BW), available per the contract.
        return x86::pack_a_12::<T>(a, lda, mc, kc, dst);
    }
    let row = &mut row[..kc];
    for (ip, panel) in dst
        .chunks_exact_mut(kc * mr)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        for r in 0..mr {
            let i = ip * mr + r;
            if i < mc {
                let src = &a[i * lda..i * lda + kc];
                simd::convert_row::<S, T>(src.as_ptr(), row.as_mut_ptr(), kc, kc);
                for (out, &v) in panel.chunks_exact_mut(mr).zip(row.iter()) {
                    out[r] = v;
                }
            } else {
                for out in panel.chunks_exact_mut(mr) {
                    out[r] = 0.0;
                }
            }
        }
    }
}

per_isa! {
    /// Pack rows `p0..p1` of the `kc × nc` block of B stored `[k, n]` (row-major, `ldb`, `b[0]` at
    /// the block's first row and column) into the block's `ceil(nc/NR)` micro-panels at `dst`
    /// (panel `jp` at `jp·kc·nr`, its row `p` at `p·nr`); columns past `nc` are zero. Reading
    /// whole rows keeps B's reads sequential; tasks packing disjoint row ranges may run
    /// concurrently.
    ///
    /// # Safety
    /// `isa` is available; `dst` addresses `ceil(nc/nr)·kc·nr` writable f32s and no other thread
    /// writes rows `p0..p1` of them.
    pub unsafe fn pack_b_rows(
        b: &[T],
        ldb: usize,
        kc: usize,
        nc: usize,
        nr: usize,
        p0: usize,
        p1: usize,
        dst: *mut f32,
    ) => pack_b_rows_with
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b_rows_with<S: Simd, T: Element>(
    b: &[T],
    ldb: usize,
    kc: usize,
    nc: usize,
    nr: usize,
    p0: usize,
    p1: usize,
    dst: *mut f32,
) {
    assert!(p0 <= p1 && p1 <= kc && (p0 == p1 || b.len() >= (p1 - 1) * ldb + nc));
    // The tile widths of the micro-kernels as constants: the body inlines into each arm, so each
    // panel row's copy becomes a few vector moves (with a run-time width LLVM turns it into a
    // `memcpy` call per row).
    match nr {
        32 => pack_b_rows_body::<S, T>(b, ldb, kc, nc, 32, p0, p1, dst),
        16 => pack_b_rows_body::<S, T>(b, ldb, kc, nc, 16, p0, p1, dst),
        8 => pack_b_rows_body::<S, T>(b, ldb, kc, nc, 8, p0, p1, dst),
        _ => pack_b_rows_body::<S, T>(b, ldb, kc, nc, nr, p0, p1, dst),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b_rows_body<S: Simd, T: Element>(
    b: &[T],
    ldb: usize,
    kc: usize,
    nc: usize,
    nr: usize,
    p0: usize,
    p1: usize,
    dst: *mut f32,
) {
    let l = S::LANES;
    let full = nc / nr;
    for p in p0..p1 {
        let src = b.as_ptr().add(p * ldb);
        for jp in 0..full {
            let (s, d) = (src.add(jp * nr), dst.add(jp * kc * nr + p * nr));
            if nr.is_multiple_of(l) {
                for c in (0..nr).step_by(l) {
                    S::store(d.add(c), load_elem::<S, T>(s.add(c)));
                }
            } else {
                for c in 0..nr {
                    *d.add(c) = (*s.add(c)).to_f32();
                }
            }
        }
        if full * nr < nc {
            pack_b_edge(
                src.add(full * nr),
                dst.add(full * kc * nr + p * nr),
                nr,
                nc - full * nr,
            );
        }
    }
}

/// One row of the edge panel: `valid` elements, zeros up to `nr`.
#[inline(always)]
unsafe fn pack_b_edge<T: Element>(s: *const T, d: *mut f32, nr: usize, valid: usize) {
    for c in 0..nr {
        *d.add(c) = if c < valid { (*s.add(c)).to_f32() } else { 0.0 };
    }
}

per_isa! {
    /// Pack one B micro-panel from B stored transposed `[n, k]` (`bt[0]` at the panel's first
    /// column and first k): each of the `nr_valid` rows of `bt` is a column of the panel.
    /// `row` is scratch of length ≥ kc.
    ///
    /// # Safety
    /// `isa` is available on this CPU.
    pub unsafe fn pack_bt_panel(
        bt: &[T],
        ldb: usize,
        kc: usize,
        nr: usize,
        nr_valid: usize,
        dst: &mut [f32],
        row: &mut [f32],
    ) => pack_bt_panel_with
}

#[inline(always)]
unsafe fn pack_bt_panel_with<S: Simd, T: Element>(
    bt: &[T],
    ldb: usize,
    kc: usize,
    nr: usize,
    nr_valid: usize,
    dst: &mut [f32],
    row: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if S::LANES == 16 && nr == x86::NR {
        // SAFETY: a 16-lane path is the AVX-512 one (with VL/BW), available per the contract.
        return x86::pack_bt_32::<T>(bt, ldb, kc, nr_valid, dst);
    }
    // In chunks of BT_PACK_K values of k: the scatter of one chunk (BT_PACK_K rows of the panel,
    // nr·4 bytes each: 8 KiB at nr = 32) stays in L1 while all nr columns are written into it.
    // Column by column over the whole kc, each column's stores would touch every line of the
    // kc·nr·4-byte panel (256 KiB at kc = 2048) once per column, from L2.
    let dst = &mut dst[..kc * nr];
    let mut k0 = 0;
    while k0 < kc {
        let kl = BT_PACK_K.min(kc - k0);
        let rows = &mut dst[k0 * nr..(k0 + kl) * nr];
        for j in 0..nr {
            if j < nr_valid {
                let src = &bt[j * ldb + k0..j * ldb + k0 + kl];
                simd::convert_row::<S, T>(src.as_ptr(), row.as_mut_ptr(), kl, kl);
                for (out, &v) in rows.chunks_exact_mut(nr).zip(&row[..kl]) {
                    out[j] = v;
                }
            } else {
                for out in rows.chunks_exact_mut(nr) {
                    out[j] = 0.0;
                }
            }
        }
        k0 += kl;
    }
}

/// Values of k per chunk of [`pack_bt_panel`].
const BT_PACK_K: usize = 64;

/// Pack k-pairs of `width` rows of a row-major bf16 matrix (bits, leading dimension `ld`, `x[0]`
/// at the first row and first k) for the `vdpbf16ps` path: word `q·width + r` holds row `r`'s
/// elements `2q` (low half) and `2q + 1` (high half). Rows `rows_valid..width` and the high half
/// of the last pair of an odd `kc` are zero. No conversion: bf16 stays bf16.
///
/// A micro-panels use it with `width = MR`; B micro-panels from B stored transposed `[n, k]` with
/// `width = NR` (each row of `Bᵀ` is a column of the panel).
pub fn pack_pairs_rows(
    x: &[u16],
    ld: usize,
    rows_valid: usize,
    width: usize,
    kc: usize,
    dst: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if (1..=x86::NR).contains(&width) && crate::isa::Isa::Avx512f.available() {
        // SAFETY: AVX-512 F/VL/BW are available (checked).
        return unsafe { x86::pack_pairs_rows_transposed(x, ld, rows_valid, width, kc, dst) };
    }
    pack_pairs_rows_scalar(x, ld, rows_valid, width, kc, dst);
}

/// [`pack_pairs_rows`] one word at a time (any width).
fn pack_pairs_rows_scalar(
    x: &[u16],
    ld: usize,
    rows_valid: usize,
    width: usize,
    kc: usize,
    dst: &mut [u32],
) {
    let kp = kc.div_ceil(2);
    // In chunks of BT_PACK_K / 2 pairs, as `pack_bt_panel`: one chunk's rows of the panel stay
    // in L1 while every row of x is scattered into them.
    let mut q0 = 0;
    while q0 < kp {
        let ql = (BT_PACK_K / 2).min(kp - q0);
        for r in 0..width {
            let out = |q: usize| (q0 + q) * width + r;
            if r < rows_valid {
                let start = r * ld + 2 * q0;
                let row = &x[start..start + (2 * ql).min(kc - 2 * q0)];
                let mut pairs = row.chunks_exact(2);
                for (q, pair) in (&mut pairs).enumerate() {
                    dst[out(q)] = u32::from(pair[0]) | (u32::from(pair[1]) << 16);
                }
                if let [last] = pairs.remainder() {
                    dst[out(ql - 1)] = u32::from(*last);
                }
            } else {
                for q in 0..ql {
                    dst[out(q)] = 0;
                }
            }
        }
        q0 += ql;
    }
}

/// Pack one B micro-panel for the `vdpbf16ps` path from B stored `[k, n]` (bits, `ldb`, `b[0]` at
/// the panel's first k and first column): word `q·nr + j` holds column `j`'s elements at k = 2q
/// (low half) and 2q + 1 (high half). Columns `nr_valid..nr` and the high half of the last pair
/// of an odd `kc` are zero.
pub fn pack_b_pairs(b: &[u16], ldb: usize, kc: usize, nr: usize, nr_valid: usize, dst: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if nr == x86::NR && crate::isa::Isa::Avx512f.available() {
        // SAFETY: AVX-512 F/VL/BW are available (checked).
        return unsafe { x86::pack_b_pairs_32(b, ldb, kc, nr_valid, dst) };
    }
    pack_b_pairs_scalar(b, ldb, kc, nr, nr_valid, dst);
}

/// Pairs `q0..q1` of every k-pair micro-panel of a `kc × nc` block of B stored `[k, n]` (bits,
/// `ldb`, `b[0]` at the block's first k and column): panel `jp` (columns `jp·nr..`) at word
/// `jp·steps·nr` of `dst`, its pair `q` at word `q·nr` of the panel, in [`pack_b_pairs`]'s
/// layout; pairs at and past `kc.div_ceil(2)` (up to `steps`) and columns past `nc` are zero.
/// Row pair by row pair across all panels, so B is read along its rows (a stream the hardware
/// prefetcher follows), where packing panel by panel reads one 64-byte run per row at B's row
/// stride: there the loads were 85% of `pack_b_pairs`'s time and the packing 9.5% of a 1024³ bf16
/// matmul on the AMX path (`perf`).
///
/// # Safety
/// `dst` is valid for writes of `nc.div_ceil(nr) · steps · nr` words, and no other thread writes
/// pairs `q0..q1` of its panels meanwhile; `q1 ≤ steps`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn pack_b_pair_rows(
    b: &[u16],
    ldb: usize,
    kc: usize,
    nc: usize,
    nr: usize,
    steps: usize,
    (q0, q1): (usize, usize),
    dst: *mut u32,
) {
    debug_assert!(q0 <= q1 && q1 <= steps);
    #[cfg(target_arch = "x86_64")]
    if nr == x86::NR && crate::isa::Isa::Avx512f.available() {
        // SAFETY: AVX-512 F/VL/BW are available (checked); the caller's contract.
        return x86::pack_b_pair_rows_32(b, ldb, kc, nc, steps, (q0, q1), dst);
    }
    let kp = kc.div_ceil(2);
    for q in q0..q1 {
        for jp in 0..nc.div_ceil(nr) {
            let (j0, valid) = (jp * nr, nr.min(nc - jp * nr));
            // SAFETY: word `jp·steps·nr + q·nr` and the panel's `nr` words from it are in `dst`
            // and this task's (the caller's contract).
            let out = std::slice::from_raw_parts_mut(dst.add((jp * steps + q) * nr), nr);
            if q < kp {
                pack_b_pairs_scalar(
                    &b[2 * q * ldb + j0..],
                    ldb,
                    (kc - 2 * q).min(2),
                    nr,
                    valid,
                    out,
                );
            } else {
                out.fill(0);
            }
        }
    }
}

/// [`pack_b_pairs`] by slices of a row (any `nr`).
fn pack_b_pairs_scalar(
    b: &[u16],
    ldb: usize,
    kc: usize,
    nr: usize,
    nr_valid: usize,
    dst: &mut [u32],
) {
    for q in 0..kc.div_ceil(2) {
        let out = &mut dst[q * nr..(q + 1) * nr];
        let lo = &b[2 * q * ldb..2 * q * ldb + nr_valid];
        if 2 * q + 1 < kc {
            let hi = &b[(2 * q + 1) * ldb..(2 * q + 1) * ldb + nr_valid];
            for ((o, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
                *o = u32::from(l) | (u32::from(h) << 16);
            }
        } else {
            for (o, &l) in out.iter_mut().zip(lo) {
                *o = u32::from(l);
            }
        }
        out[nr_valid..].iter_mut().for_each(|x| *x = 0);
    }
}

/// The AVX-512 packing of A for the 12-row micro-kernel: 16 k of 12 rows loaded as 12 vectors
/// (widened in registers), transposed in registers (16×16, rows 12–15 zero) and written as 16
/// k-steps of 12 values, so each panel is written once, in order. The generic loop writes one
/// scalar per element at a 48-byte stride, twelve passes over the panel: 22% of a 256³ f16
/// matmul's time at 2 threads (`perf record`), more than the B packing and the rounding together.
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::transpose16;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::cpu::simd::{load_elem, Avx512};
    use crate::dtype::Element;
    use std::arch::x86_64::*;

    /// Rows per panel this packing is written for (the AVX-512 micro-kernel's MR).
    pub(super) const MR: usize = 12;

    /// `pack_a` for MR = 12 (same contract and layout).
    ///
    /// # Safety
    /// AVX-512 F/VL/BW are available; `a` holds rows `0..mc` of `kc` at stride `lda`; `dst` holds
    /// `ceil(mc/12)` panels of `kc × 12`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    pub(super) unsafe fn pack_a_12<T: Element>(
        a: &[T],
        lda: usize,
        mc: usize,
        kc: usize,
        dst: &mut [f32],
    ) {
        for (ip, panel) in dst
            .chunks_exact_mut(kc * MR)
            .take(mc.div_ceil(MR))
            .enumerate()
        {
            let rows = MR.min(mc - ip * MR);
            let base = a.as_ptr().add(ip * MR * lda);
            transpose_rows::<T>(base, lda, rows, kc, panel.as_mut_ptr(), MR, MR);
        }
    }

    /// Columns per B micro-panel this packing is written for (the AVX-512 micro-kernel's NR).
    pub(super) const NR: usize = 32;

    /// `pack_bt_panel` for NR = 32 (same contract and layout), by the same in-register transpose
    /// as [`pack_a_12`]: for each half of the panel, 16 rows of Bᵀ × 16 k loaded (widened),
    /// transposed, and stored as 16 k-steps of 16 columns — whole vectors, where the generic loop
    /// scatters one scalar per element (12% of a 512×4096×4096 Bᵀ f16 matmul, `perf`).
    ///
    /// # Safety
    /// AVX-512 F/VL/BW are available; `bt` holds rows `0..nr_valid` of `kc` at stride `ldb`;
    /// `dst` holds `kc × 32`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    pub(super) unsafe fn pack_bt_32<T: Element>(
        bt: &[T],
        ldb: usize,
        kc: usize,
        nr_valid: usize,
        dst: &mut [f32],
    ) {
        assert!(nr_valid <= NR && dst.len() >= kc * NR);
        assert!(nr_valid == 0 || bt.len() >= (nr_valid - 1) * ldb + kc);
        let (base, out) = (bt.as_ptr(), dst.as_mut_ptr());
        for j0 in [0, 16] {
            let rows = nr_valid.saturating_sub(j0).min(16);
            transpose_rows::<T>(base.add(j0 * ldb), ldb, rows, kc, out.add(j0), NR, 16);
        }
    }

    /// The two `vpermt2w` index vectors interleaving two rows of 32 bf16 into 32 k-pair words:
    /// word i of the first holds element i of the first operand (low half) and of the second
    /// (high half), the second vector the same for elements 16–31.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    unsafe fn pair_interleave() -> (__m512i, __m512i) {
        let interleave = |half: i16| {
            let mut idx = [0i16; 32];
            for (w, v) in idx.iter_mut().enumerate() {
                let col = half * 16 + (w / 2) as i16;
                *v = if w % 2 == 0 { col } else { 32 + col };
            }
            // SAFETY: 64 readable bytes.
            unsafe { _mm512_loadu_si512(idx.as_ptr() as *const _) }
        };
        (interleave(0), interleave(1))
    }

    /// One pair of B's rows (`lo`, and `hi` unless `None`: the zero high half of an odd k), `mask`
    /// of their 32 columns, interleaved into the 32 words at `out`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    #[inline]
    unsafe fn pack_pair_32(
        lo: *const u16,
        hi: Option<*const u16>,
        mask: __mmask32,
        (lo_idx, hi_idx): (__m512i, __m512i),
        out: *mut u32,
    ) {
        let l = _mm512_maskz_loadu_epi16(mask, lo as *const i16);
        let h = match hi {
            Some(hi) => _mm512_maskz_loadu_epi16(mask, hi as *const i16),
            None => _mm512_setzero_si512(),
        };
        _mm512_storeu_si512(out as *mut _, _mm512_permutex2var_epi16(l, lo_idx, h));
        _mm512_storeu_si512(
            out.add(16) as *mut _,
            _mm512_permutex2var_epi16(l, hi_idx, h),
        );
    }

    /// The mask of the first `valid` (≤ 32) of 32 columns.
    fn column_mask(valid: usize) -> __mmask32 {
        if valid >= NR {
            !0
        } else {
            (1u32 << valid) - 1
        }
    }

    /// `pack_b_pairs` for nr = 32 (same contract and layout): each pair of B's rows as two
    /// 64-byte loads (masked to `nr_valid` columns, the rest zero) interleaved into the pair's 32
    /// words by two `vpermt2w` and stored as two vectors, where the generic loop (compiled for
    /// SSE2) moves 4 values per load.
    ///
    /// # Safety
    /// AVX-512 F/VL/BW are available.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    pub(super) unsafe fn pack_b_pairs_32(
        b: &[u16],
        ldb: usize,
        kc: usize,
        nr_valid: usize,
        dst: &mut [u32],
    ) {
        let kp = kc.div_ceil(2);
        assert!(nr_valid <= NR && dst.len() >= kp * NR);
        assert!(nr_valid == 0 || kc == 0 || b.len() >= (kc - 1) * ldb + nr_valid);
        let (idx, mask) = (pair_interleave(), column_mask(nr_valid));
        let (src, out) = (b.as_ptr(), dst.as_mut_ptr());
        for q in 0..kp {
            let hi = (2 * q + 1 < kc).then(|| src.add((2 * q + 1) * ldb));
            pack_pair_32(src.add(2 * q * ldb), hi, mask, idx, out.add(q * NR));
        }
    }

    /// `pack_b_pair_rows` for nr = 32 (same contract and layout), each pair of rows by
    /// [`pack_pair_32`] panel after panel.
    ///
    /// # Safety
    /// AVX-512 F/VL/BW are available; the contract of `pack_b_pair_rows`.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    pub(super) unsafe fn pack_b_pair_rows_32(
        b: &[u16],
        ldb: usize,
        kc: usize,
        nc: usize,
        steps: usize,
        (q0, q1): (usize, usize),
        dst: *mut u32,
    ) {
        let kp = kc.div_ceil(2);
        assert!(kc == 0 || nc == 0 || b.len() >= (kc - 1) * ldb + nc);
        let idx = pair_interleave();
        let src = b.as_ptr();
        for q in q0..q1 {
            for jp in 0..nc.div_ceil(NR) {
                let j0 = jp * NR;
                let out = dst.add((jp * steps + q) * NR);
                if q < kp {
                    let hi = (2 * q + 1 < kc).then(|| src.add((2 * q + 1) * ldb + j0));
                    let lo = src.add(2 * q * ldb + j0);
                    pack_pair_32(lo, hi, column_mask(nc - j0), idx, out);
                } else {
                    _mm512_storeu_si512(out as *mut _, _mm512_setzero_si512());
                    _mm512_storeu_si512(out.add(16) as *mut _, _mm512_setzero_si512());
                }
            }
        }
    }

    /// `pack_pairs_rows` for a width of 1 to 32 (same contract and layout): for each group of
    /// up to 16 rows of the panel, 16 rows × 16 k-pairs (one 64-byte load per row: 32 bf16)
    /// transposed in registers by [`transpose16`] — each pair moved as one 32-bit word, shuffles
    /// only, so the bits are untouched — and stored as 16 pairs of the group's columns (masked
    /// where the group is narrower than 16: the 12-row A micro-panels of the `vdpbf16ps` path);
    /// the pairs past the last whole group of 16 by the scalar loop. The scalar loop alone was 20%
    /// of a 512×4096×4096 Bᵀ bf16 matmul on the AMX path and 60% at 64 rows, and, packing the
    /// 12-row A panels, 5% of a 512³ bf16 matmul on the `vdpbf16ps` path (`perf`).
    ///
    /// # Safety
    /// AVX-512 F/VL/BW are available.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
    pub(super) unsafe fn pack_pairs_rows_transposed(
        x: &[u16],
        ld: usize,
        rows_valid: usize,
        width: usize,
        kc: usize,
        dst: &mut [u32],
    ) {
        let kp = kc.div_ceil(2);
        assert!((1..=NR).contains(&width) && rows_valid <= width && dst.len() >= kp * width);
        assert!(rows_valid == 0 || x.len() >= (rows_valid - 1) * ld + kc);
        let groups = kc / 32;
        let (src, out) = (x.as_ptr(), dst.as_mut_ptr());
        for j0 in (0..width).step_by(16) {
            let rows = rows_valid.saturating_sub(j0).min(16);
            let lanes = ((1u32 << (width - j0).min(16)) - 1) as __mmask16;
            for g in 0..groups {
                let mut r = [_mm512_setzero_ps(); 16];
                for (i, v) in r.iter_mut().enumerate().take(rows) {
                    *v = _mm512_loadu_ps(src.add((j0 + i) * ld + 32 * g) as *const f32);
                }
                for (j, v) in transpose16(r).iter().enumerate() {
                    let at = out.add((16 * g + j) * width + j0) as *mut f32;
                    _mm512_mask_storeu_ps(at, lanes, *v);
                }
            }
        }
        let q0 = 16 * groups;
        if q0 < kp {
            let tail = if rows_valid == 0 {
                &[][..]
            } else {
                &x[2 * q0..]
            };
            super::pack_pairs_rows_scalar(
                tail,
                ld,
                rows_valid,
                width,
                kc - 2 * q0,
                &mut dst[q0 * width..],
            );
        }
    }

    /// Rows `0..rows` (≤ 16) of `kc` values from `base` (row stride `ld`), widened to f32 and
    /// written k-major: k step `q` as `width` (≤ 16) lanes at `out + q·stride`, lane `i` from row
    /// `i`, zero past `rows`. 16 k at a time through [`transpose16`], the tail of k by scalars.
    ///
    /// # Safety
    /// AVX-512 F/VL/BW are available (inlined into such functions only); the rows and the
    /// `kc` steps of `out` are in bounds.
    #[inline(always)]
    unsafe fn transpose_rows<T: Element>(
        base: *const T,
        ld: usize,
        rows: usize,
        kc: usize,
        out: *mut f32,
        stride: usize,
        width: usize,
    ) {
        let mask = ((1u32 << width) - 1) as __mmask16;
        let full = kc / 16 * 16;
        let mut q = 0;
        while q < full {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, v) in r.iter_mut().enumerate().take(rows) {
                *v = load_elem::<Avx512, T>(base.add(i * ld + q));
            }
            let t = transpose16(r);
            for (j, v) in t.iter().enumerate() {
                _mm512_mask_storeu_ps(out.add((q + j) * stride), mask, *v);
            }
            q += 16;
        }
        for q in full..kc {
            for i in 0..width {
                *out.add(q * stride + i) = if i < rows {
                    (*base.add(i * ld + q)).to_f32()
                } else {
                    0.0
                };
            }
        }
    }

    /// 16×16 transpose: `out[j]` lane `i` = `r[i]` lane `j`.
    ///
    /// # Safety
    /// AVX-512F is available (inlined into such functions only).
    #[inline(always)]
    pub(crate) unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
        // a: pairs of rows interleaved within 128-bit lanes.
        let mut a = [_mm512_setzero_ps(); 16];
        for p in 0..8 {
            a[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
            a[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
        }
        // b[4g + s]: rows 4g..4g+4 at k = 4L + s in 128-bit lane L.
        let mut b = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            let (lo, hi) = (a[4 * g], a[4 * g + 1]);
            let (lo2, hi2) = (a[4 * g + 2], a[4 * g + 3]);
            b[4 * g] = _mm512_shuffle_ps::<0x44>(lo, lo2);
            b[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(lo, lo2);
            b[4 * g + 2] = _mm512_shuffle_ps::<0x44>(hi, hi2);
            b[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(hi, hi2);
        }
        // out[4L + s] = [b[s].L, b[4+s].L, b[8+s].L, b[12+s].L].
        let mut out = [_mm512_setzero_ps(); 16];
        for s in 0..4 {
            let c_even = _mm512_shuffle_f32x4::<0x88>(b[s], b[4 + s]);
            let c_odd = _mm512_shuffle_f32x4::<0xDD>(b[s], b[4 + s]);
            let e_even = _mm512_shuffle_f32x4::<0x88>(b[8 + s], b[12 + s]);
            let e_odd = _mm512_shuffle_f32x4::<0xDD>(b[8 + s], b[12 + s]);
            out[s] = _mm512_shuffle_f32x4::<0x88>(c_even, e_even);
            out[8 + s] = _mm512_shuffle_f32x4::<0xDD>(c_even, e_even);
            out[4 + s] = _mm512_shuffle_f32x4::<0x88>(c_odd, e_odd);
            out[12 + s] = _mm512_shuffle_f32x4::<0xDD>(c_odd, e_odd);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;

    /// Every panel element against the definition (`panel ip`, step q, lane i = A[12·ip + i, q]
    /// or zero past mc), for MR = 12 — the AVX-512 transposing packer on AVX-512 machines, the
    /// generic loop elsewhere — across the 16-k chunk edges, partial panels and a padded `lda`,
    /// in each input dtype.
    #[test]
    fn pack_a_12_matches_definition() {
        use half::{bf16, f16};
        fn check<T: Element>(isa: Isa) {
            for mc in [1usize, 11, 12, 13, 25] {
                for kc in [1usize, 15, 16, 17, 40] {
                    let lda = kc + 3;
                    let a: Vec<T> = (0..mc * lda)
                        .map(|x| T::from_f32(((x * 7 % 61) as f32) - 30.0))
                        .collect();
                    let panels = mc.div_ceil(12);
                    let mut dst = vec![f32::NAN; panels * kc * 12];
                    let mut row = vec![0.0; kc];
                    unsafe { pack_a(isa, &a, lda, mc, kc, 12, &mut dst, &mut row) };
                    for ip in 0..panels {
                        for q in 0..kc {
                            for i in 0..12 {
                                let r = ip * 12 + i;
                                let want = if r < mc { a[r * lda + q].to_f32() } else { 0.0 };
                                let got = dst[ip * kc * 12 + q * 12 + i];
                                assert_eq!(
                                    got.to_bits(),
                                    want.to_bits(),
                                    "{isa:?} {:?} mc {mc} kc {kc} panel {ip} k {q} row {i}",
                                    T::DTYPE
                                );
                            }
                        }
                    }
                }
            }
        }
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            check::<f32>(isa);
            check::<f16>(isa);
            check::<bf16>(isa);
        }
    }

    #[test]
    fn pack_a_pads_and_interleaves() {
        // 3×2 matrix, MR = 2 → two panels, the second half padded.
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = vec![f32::NAN; 8];
        let mut row = vec![0.0; 2];
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            dst.fill(f32::NAN);
            unsafe { pack_a(isa, &a, 2, 3, 2, 2, &mut dst, &mut row) };
            assert_eq!(dst, vec![1.0, 3.0, 2.0, 4.0, 5.0, 0.0, 6.0, 0.0], "{isa:?}");
        }
    }

    #[test]
    fn pack_b_and_bt_agree() {
        // B [k=2, n=3]; Bᵀ [3, 2]
        let b = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0];
        let mut p1 = vec![f32::NAN; 8];
        let mut p2 = vec![f32::NAN; 8];
        let mut row = vec![0.0; 2];
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            p1.fill(f32::NAN);
            p2.fill(f32::NAN);
            unsafe {
                pack_b_rows(isa, &b, 3, 2, 3, 4, 0, 1, p1.as_mut_ptr());
                pack_b_rows(isa, &b, 3, 2, 3, 4, 1, 2, p1.as_mut_ptr());
                pack_bt_panel(isa, &bt, 2, 2, 4, 3, &mut p2, &mut row);
            }
            assert_eq!(p1, vec![1.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0], "{isa:?}");
            assert_eq!(p1, p2, "{isa:?}");
        }
    }

    #[test]
    fn pair_packing_of_b_and_bt_agree_and_pad() {
        // B [k=3, n=3] (odd k: the second pair's high half is padding); Bᵀ [3, 3].
        let b: Vec<u16> = (1..=9).collect();
        let bt: Vec<u16> = vec![1, 4, 7, 2, 5, 8, 3, 6, 9];
        let mut p1 = vec![u32::MAX; 8];
        let mut p2 = vec![u32::MAX; 8];
        pack_b_pairs(&b, 3, 3, 4, 3, &mut p1);
        pack_pairs_rows(&bt, 3, 3, 4, 3, &mut p2);
        let w = |lo: u32, hi: u32| lo | (hi << 16);
        assert_eq!(p1, vec![w(1, 4), w(2, 5), w(3, 6), 0, 7, 8, 9, 0]);
        assert_eq!(p1, p2);
    }

    /// The k-pair packer of B `[k, n]` against the definition — the sliced loop at any width and,
    /// at nr = 32 on AVX-512, the interleaving one — at even and odd k, padded columns in either
    /// half of the panel, a padded `ldb`: word (q, j) holds column j's k = 2q (low half) and
    /// 2q + 1 (high half), zero past `nr_valid` and past k.
    #[test]
    fn pair_packing_of_b_matches_the_definition() {
        for (nr, ldb) in [(32, 37), (32, 32), (12, 15)] {
            for nr_valid in [0, 1, 12, 15, 16, 17, 31, 32] {
                if nr_valid > nr {
                    continue;
                }
                for kc in [1usize, 2, 3, 16, 33, 64] {
                    let b: Vec<u16> = (0..kc * ldb).map(|i| (i % 65521) as u16 + 1).collect();
                    let kp = kc.div_ceil(2);
                    let want = |q: usize, j: usize| {
                        let at = |k: usize| {
                            if j < nr_valid && k < kc {
                                u32::from(b[k * ldb + j])
                            } else {
                                0
                            }
                        };
                        at(2 * q) | (at(2 * q + 1) << 16)
                    };
                    let mut dst = vec![u32::MAX; kp * nr];
                    pack_b_pairs(&b, ldb, kc, nr, nr_valid, &mut dst);
                    let mut scalar = vec![u32::MAX; kp * nr];
                    super::pack_b_pairs_scalar(&b, ldb, kc, nr, nr_valid, &mut scalar);
                    for q in 0..kp {
                        for j in 0..nr {
                            let ctx =
                                format!("nr {nr} ldb {ldb} valid {nr_valid} kc {kc} q {q} j {j}");
                            assert_eq!(dst[q * nr + j], want(q, j), "{ctx}");
                            assert_eq!(scalar[q * nr + j], want(q, j), "scalar {ctx}");
                        }
                    }
                }
            }
        }
    }

    /// The row-pair packer of a whole B block against the definition — the sliced loop at any
    /// width and, at nr = 32 on AVX-512, the interleaving one — in pair ranges that split the
    /// block (as parallel tasks do), at odd k, with padding pairs up to `steps` (zero), a partial
    /// last panel and a padded `ldb`.
    #[test]
    fn pair_row_packing_of_a_block_matches_the_definition() {
        for (nr, nc, ldb) in [
            (32usize, 70usize, 75),
            (32, 64, 64),
            (32, 5, 9),
            (12, 30, 31),
        ] {
            for (kc, steps) in [(1usize, 16usize), (33, 17), (64, 32), (65, 48)] {
                let b: Vec<u16> = (0..kc * ldb).map(|i| (i % 65521) as u16 + 1).collect();
                let panels = nc.div_ceil(nr);
                let want = |jp: usize, q: usize, j: usize| {
                    let col = jp * nr + j;
                    let at = |k: usize| {
                        if col < nc && k < kc {
                            u32::from(b[k * ldb + col])
                        } else {
                            0
                        }
                    };
                    at(2 * q) | (at(2 * q + 1) << 16)
                };
                let mut dst = vec![u32::MAX; panels * steps * nr];
                for (q0, q1) in [(0, 3), (3, steps / 2), (steps / 2, steps)] {
                    unsafe {
                        pack_b_pair_rows(&b, ldb, kc, nc, nr, steps, (q0, q1), dst.as_mut_ptr())
                    };
                }
                for jp in 0..panels {
                    for q in 0..steps {
                        for j in 0..nr {
                            assert_eq!(
                                dst[(jp * steps + q) * nr + j],
                                want(jp, q, j),
                                "nr {nr} nc {nc} ldb {ldb} kc {kc} steps {steps} panel {jp} q {q} j {j}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The k-pair packer against the definition and the scalar loop against it — the
    /// transposing one on AVX-512 (masked stores below 16 or 32 columns) — at k around its 32-value groups (odd k: the last pair's
    /// high half is zero), padded rows in either half, a padded `ld`: word (q, r) holds row r's
    /// k = 2q (low half) and 2q + 1 (high half), zero past `rows_valid`.
    #[test]
    fn pair_packing_of_rows_matches_the_definition() {
        for (width, ld) in [(32, 97), (32, 64), (12, 40), (12, 97), (20, 97), (7, 70)] {
            for rows_valid in [0, 1, 5, 7, 12, 16, 17, 20, 31, 32] {
                if rows_valid > width {
                    continue;
                }
                for kc in [1usize, 2, 31, 32, 33, 63, 64, 65] {
                    if kc > ld {
                        continue;
                    }
                    let x: Vec<u16> = (0..width * ld).map(|i| (i % 65521) as u16 + 1).collect();
                    let kp = kc.div_ceil(2);
                    let mut dst = vec![u32::MAX; kp * width];
                    pack_pairs_rows(&x, ld, rows_valid, width, kc, &mut dst);
                    let mut scalar = vec![u32::MAX; kp * width];
                    pack_pairs_rows_scalar(&x, ld, rows_valid, width, kc, &mut scalar);
                    assert_eq!(
                        dst, scalar,
                        "width {width} ld {ld} rows {rows_valid} kc {kc}"
                    );
                    for q in 0..kp {
                        for r in 0..width {
                            let at = |k: usize| {
                                if r < rows_valid && k < kc {
                                    u32::from(x[r * ld + k])
                                } else {
                                    0
                                }
                            };
                            let want = at(2 * q) | (at(2 * q + 1) << 16);
                            assert_eq!(
                                dst[q * width + r],
                                want,
                                "width {width} ld {ld} rows {rows_valid} kc {kc} q {q} r {r}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The Bᵀ packers against the definition — the chunked generic loop and, at NR = 32 on
    /// AVX-512, the transposing one — at k lengths around the chunk (64) and the 16-k transpose
    /// blocks, with padded columns (in either half of the panel), in each input dtype: element
    /// (k, j) of the panel is Bᵀ[j][k] widened, 0 past nr_valid.
    #[test]
    fn chunked_bt_packing_matches_the_definition_across_chunk_edges() {
        use half::{bf16, f16};
        fn check<T: Element>(nr: usize, nr_valid: usize, ldb: usize, kc: usize) {
            let bt: Vec<T> = (0..nr * ldb)
                .map(|i| T::from_f32((i % 1999) as f32 - 999.0))
                .collect();
            let mut row = vec![0.0f32; kc];
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                let mut dst = vec![f32::NAN; kc * nr];
                unsafe { pack_bt_panel(isa, &bt, ldb, kc, nr, nr_valid, &mut dst, &mut row) };
                for k in 0..kc {
                    for j in 0..nr {
                        let want = if j < nr_valid {
                            bt[j * ldb + k].to_f32()
                        } else {
                            0.0
                        };
                        assert_eq!(
                            dst[k * nr + j].to_bits(),
                            want.to_bits(),
                            "{isa:?} {:?} nr {nr} valid {nr_valid} kc {kc} k {k} j {j}",
                            T::DTYPE
                        );
                    }
                }
            }
        }
        for kc in [1, 2, 15, 16, 17, 33, 63, 64, 65, 127, 128, 129, 300] {
            for (nr, nr_valid) in [
                (32, 1),
                (32, 15),
                (32, 16),
                (32, 17),
                (32, 29),
                (32, 32),
                (16, 11),
            ] {
                check::<f32>(nr, nr_valid, 301, kc);
                check::<f16>(nr, nr_valid, 301, kc);
                check::<bf16>(nr, nr_valid, 301, kc);
            }
        }
        let (nr, nr_valid, ldb) = (32, 29, 301);
        let bt_u16: Vec<u16> = (0..nr * ldb).map(|i| (i % 65521) as u16).collect();
        for kc in [1usize, 2, 63, 64, 65, 127, 128, 129, 300] {
            let kp = kc.div_ceil(2);
            let mut pairs = vec![u32::MAX; kp * nr];
            pack_pairs_rows(&bt_u16, ldb, nr_valid, nr, kc, &mut pairs);
            for q in 0..kp {
                for r in 0..nr {
                    let at = |k: usize| {
                        if r < nr_valid && k < kc {
                            u32::from(bt_u16[r * ldb + k])
                        } else {
                            0
                        }
                    };
                    let want = at(2 * q) | (at(2 * q + 1) << 16);
                    assert_eq!(pairs[q * nr + r], want, "kc {kc} pair {q} row {r}");
                }
            }
        }
    }
}
