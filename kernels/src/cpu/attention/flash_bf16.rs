//! The products of `flash.avx512bf16`: both GEMMs of the flash task with `vdpbf16ps` on bf16
//! pairs, for bf16 inputs on CPUs with AVX512_BF16 (the task itself, with its tiling, causal mask
//! and online softmax in f32, is [`super::flash::task`]).
//!
//! - `Sᵀ = K·Qᵀ`: Q is packed once per task into pair panels (`[d/2][queries]` u32 words, word
//!   `(q, i)` = Q[i][2q] | Q[i][2q+1] << 16); each K row is read in place as pairs (head_dim even)
//!   and broadcast one pair at a time. Every product of two bf16 is exact in f32 and `vdpbf16ps`
//!   accumulates in f32: the scores carry the same error as the f32 path's (only the order of the
//!   sums differs).
//! - `O += P·V`: P is rounded to bf16 (round to nearest even, `vcvtneps2bf16`) and packed as pairs
//!   of consecutive keys per query; the tile's V rows are packed as pairs of consecutive keys per
//!   column. This is what PyTorch's and oneDNN's bf16 attention do. The error it adds: each
//!   `P[j][i]` changes by at most `u·P[j][i]` with bf16's unit roundoff `u = 2⁻⁸`, so `O[i]` by at
//!   most `2⁻⁸ · Σ_j P[j][i]·|V[j]| / l_i`, i.e. `2⁻⁸` of the verification's own scale `P|V|`
//!   (`crate::verify::attention`): a quarter of its floor `4·u_out = 2⁻⁶` for bf16 output. So
//!   the bound `2·naive + 4·u_out` still holds for a correct kernel, with the P rounding inside
//!   the floor; the tests show it on every shape of the covering set (tests/attention.rs). P
//!   itself comes from the shorter `Simd::exp2_p` (relative error ≤ 7.5e-5, against 2.5e-7 for
//!   `Simd::exp2`): P, and l = Σ P with it, move by at most 7.5e-5 relative before the rounding
//!   — under 2% of the rounding's `2⁻⁸` — so the output moves by at most about 1.5e-4 of the
//!   same scale and the bound holds as before (the real kernels' errors in the mutation tests
//!   are unchanged, 0.17–0.27 of the bound).
//!
//! Tiles as in the f32 path on AVX-512: S `KR` = 8 keys × `QV` = 3 vectors of 16 queries, P·V
//! `MR` = 6 queries × `NV` = 4 vectors of 16 columns, 24 accumulators each.

#![allow(clippy::needless_range_loop)]

use super::flash::{Products, Scratch};
use crate::cpu::matmul::pack::transpose16;
use half::bf16;
use std::arch::x86_64::*;

/// Pair products with S tile `KR` × `QV`·16 and P·V tile `MR` × `NV`·16.
pub(crate) struct PairProducts<const KR: usize, const QV: usize, const MR: usize, const NV: usize>;

const L: usize = 16;

/// 16 bf16 (a row's bits) widened to the low halves of 16 u32 words.
#[inline(always)]
unsafe fn lo_words(p: *const u16) -> __m512i {
    _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i))
}

impl<const KR: usize, const QV: usize, const MR: usize, const NV: usize> Products<bf16>
    for PairProducts<KR, QV, MR, NV>
{
    const QW: usize = QV * L;
    const MR: usize = MR;
    const KR: usize = KR;
    const P_PAIRS: bool = true;

    #[inline(always)]
    unsafe fn store_p_pairs(p0: *const f32, p1: *const f32, dst: *mut u32) {
        store_p_pairs(p0, p1, dst)
    }

    #[inline(always)]
    unsafe fn load_q(ws: &mut Scratch, q: *const bf16, d: usize, nq: usize, act: usize) {
        let qw = QV * L;
        let dp2 = d.div_ceil(2);
        let qp: *mut u32 = ws.qt.get(act * dp2).as_mut_ptr() as *mut u32;
        let q = q as *const u16;
        for r in 0..act {
            let panel = qp.add((r / qw) * dp2 * qw + r % qw);
            for qq in 0..dp2 {
                let (lo, hi) = if r < nq {
                    let row = q.add(r * d);
                    let hi = if 2 * qq + 1 < d {
                        *row.add(2 * qq + 1)
                    } else {
                        0
                    };
                    (*row.add(2 * qq), hi)
                } else {
                    (0, 0)
                };
                *panel.add(qq * qw) = u32::from(lo) | (u32::from(hi) << 16);
            }
        }
    }

    #[inline(always)]
    unsafe fn scores(
        ws: &mut Scratch,
        k: *const bf16,
        d: usize,
        nk: usize,
        act: usize,
        st: *mut f32,
        lds: usize,
    ) {
        debug_assert!(d.is_multiple_of(2), "supports() requires an even head_dim");
        let qw = QV * L;
        let dp2 = d / 2;
        let qp = ws.qt.get(act * dp2).as_ptr() as *const u32;
        let k = k as *const u16;
        let mut kg = 0;
        while kg < nk {
            // A last partial group repeats the last key (its rows are never read).
            let rows: [*const u32; KR] =
                std::array::from_fn(|r| k.add((kg + r).min(nk - 1) * d) as *const u32);
            for pnl in 0..act / qw {
                let panel = qp.add(pnl * dp2 * qw);
                let mut acc = [[_mm512_setzero_ps(); QV]; KR];
                for qq in 0..dp2 {
                    let mut qv = [_mm512_setzero_si512(); QV];
                    for c in 0..QV {
                        qv[c] = _mm512_loadu_si512(panel.add(qq * qw + c * L) as *const _);
                    }
                    for r in 0..KR {
                        let kb: __m512bh = std::mem::transmute(_mm512_set1_epi32(
                            rows[r].add(qq).read_unaligned() as i32,
                        ));
                        for c in 0..QV {
                            acc[r][c] = _mm512_dpbf16_ps(
                                acc[r][c],
                                kb,
                                std::mem::transmute::<__m512i, __m512bh>(qv[c]),
                            );
                        }
                    }
                }
                for r in 0..KR {
                    for c in 0..QV {
                        _mm512_storeu_ps(st.add((kg + r) * lds + pnl * qw + c * L), acc[r][c]);
                    }
                }
            }
            kg += KR;
        }
    }

    #[inline(always)]
    unsafe fn values(
        ws: &mut Scratch,
        v: *const bf16,
        pairs: *const u32,
        d: usize,
        nk: usize,
        act: usize,
        _st: *const f32,
        _lds: usize,
        o: *mut f32,
        dp: usize,
        alpha: *const f32,
        first: bool,
    ) {
        let np = nk.div_ceil(2);
        // P as pairs, written by the softmax (P_PAIRS).
        let pp = ws.pp.get(np * act).as_mut_ptr() as *const u32;
        let vp = if pairs.is_null() {
            let vp = ws.vf.get(np * dp).as_mut_ptr() as *mut u32;
            pack_v_pairs(v as *const u16, d, nk, dp, vp);
            vp as *const u32
        } else {
            pairs
        };
        // O = α·O + P·V, column panels outer so a V panel stays in L1 across the row tiles.
        let nvp = dp / L;
        let mut dc = 0;
        while dc < nvp {
            let nv = NV.min(nvp - dc);
            let mut r0 = 0;
            while r0 < act {
                let (pr, vc) = (pp.add(r0), vp.add(dc * L));
                let (oc, al) = (o.add(r0 * dp + dc * L), alpha.add(r0));
                match nv {
                    1 => pv_pairs::<MR, 1>(np, pr, act, vc, dp, oc, dp, al, first),
                    2 if NV >= 2 => pv_pairs::<MR, 2>(np, pr, act, vc, dp, oc, dp, al, first),
                    3 if NV >= 3 => pv_pairs::<MR, 3>(np, pr, act, vc, dp, oc, dp, al, first),
                    _ => pv_pairs::<MR, NV>(np, pr, act, vc, dp, oc, dp, al, first),
                }
                r0 += MR;
            }
            dc += nv;
        }
    }
}

/// P of keys 2jp and 2jp + 1 for 16 queries (f32 at `p0` and `p1`) rounded to bf16 (round to
/// nearest even, `vcvtneps2bf16`) as pair words at `dst`: word `i` holds query `i`'s key 2jp in
/// its low half and key 2jp + 1 in its high half. The softmax writes P this way as it computes it
/// (`Products::P_PAIRS`), word `pp[jp·act + i]` for query `i`.
///
/// # Safety
/// AVX-512F/BW and AVX512_BF16 (inlined into such functions only); `p0`, `p1` hold 16 f32,
/// `dst` 16 words.
#[inline(always)]
pub(crate) unsafe fn store_p_pairs(p0: *const f32, p1: *const f32, dst: *mut u32) {
    // Both rounded by one `vcvtne2ps2bf16` (p0's 16 values in words 0..16, p1's in 16..32),
    // then interleaved by one word permutation: word 2i ← i, word 2i + 1 ← 16 + i.
    let both = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(
        _mm512_loadu_ps(p1),
        _mm512_loadu_ps(p0),
    ));
    let w = _mm512_permutexvar_epi16(PAIR_WORDS, both);
    _mm512_storeu_si512(dst as *mut _, w);
}

/// The word permutation of [`store_p_pairs`]: word 2i takes word i, word 2i + 1 word 16 + i.
const PAIR_WORDS: __m512i = unsafe {
    std::mem::transmute::<[u16; 32], __m512i>([
        0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12,
        28, 13, 29, 14, 30, 15, 31,
    ])
};

/// The tile's V rows (`nk` rows of `d` bf16 at `v`) as pairs of consecutive keys per column:
/// word `vp[jp·dp + c]` holds rows 2jp (low half) and 2jp + 1 (high half, zero past `nk`) of
/// column `c`, columns `d..dp` zero.
///
/// # Safety
/// AVX-512F/BW (inlined into such functions only); `v` holds `nk` rows of `d`, `vp`
/// `nk.div_ceil(2) · dp` words.
#[inline(always)]
pub(crate) unsafe fn pack_v_pairs(v: *const u16, d: usize, nk: usize, dp: usize, vp: *mut u32) {
    let np = nk.div_ceil(2);
    let full = d / L * L;
    for jp in 0..np {
        let (a, b) = (v.add(2 * jp * d), v.add((2 * jp + 1) * d));
        let second = 2 * jp + 1 < nk;
        let dst = vp.add(jp * dp);
        let mut c = 0;
        while c < full {
            let lo = lo_words(a.add(c));
            let w = if second {
                _mm512_or_si512(lo, _mm512_slli_epi32::<16>(lo_words(b.add(c))))
            } else {
                lo
            };
            _mm512_storeu_si512(dst.add(c) as *mut _, w);
            c += L;
        }
        for c in full..dp {
            let lo = if c < d { u32::from(*a.add(c)) } else { 0 };
            let hi = if c < d && second {
                u32::from(*b.add(c))
            } else {
                0
            };
            *dst.add(c) = lo | (hi << 16);
        }
    }
}

/// The tile's V rows as [`pack_v_pairs`]' pairs, transposed: word `vt[c·npp + jp]` holds rows
/// 2jp (low half) and 2jp + 1 (high half, zero past `nk`) of column `c`; pairs `nk.div_ceil(2)..
/// npp` are zero. Rows of 16 pairs are the A tiles of the AMX product `Oᵀ = Vᵀ·Pᵀ`. Built 16 × 16
/// words at a time (pairs of two rows' 16 values, then [`transpose16`], which moves each word as
/// a whole).
///
/// # Safety
/// AVX-512F/BW (inlined into such functions only); `d` a multiple of 16; `npp` a multiple of 16
/// and at least `nk.div_ceil(2)`; `v` holds `nk` rows of `d`, `vt` `d · npp` words.
#[inline(always)]
pub(crate) unsafe fn pack_vt_pairs(v: *const u16, d: usize, nk: usize, npp: usize, vt: *mut u32) {
    debug_assert!(d.is_multiple_of(L) && npp.is_multiple_of(L) && 2 * npp >= nk);
    for jb in 0..npp / L {
        for cb in 0..d / L {
            let mut r = [_mm512_setzero_ps(); L];
            for (jj, x) in r.iter_mut().enumerate() {
                let k0 = 2 * (jb * L + jj);
                if k0 < nk {
                    let lo = lo_words(v.add(k0 * d + cb * L));
                    let w = if k0 + 1 < nk {
                        _mm512_or_si512(
                            lo,
                            _mm512_slli_epi32::<16>(lo_words(v.add((k0 + 1) * d + cb * L))),
                        )
                    } else {
                        lo
                    };
                    *x = _mm512_castsi512_ps(w);
                }
            }
            for (cc, x) in transpose16(r).iter().enumerate() {
                _mm512_storeu_ps(vt.add((cb * L + cc) * npp + jb * L) as *mut f32, *x);
            }
        }
    }
}

/// V of every whole `bk`-key tile of every KV sequence as pairs ([`pack_v_pairs`]' layout, row
/// stride `dp`; with `transposed`, [`pack_vt_pairs`]' with `npp = bk / 2`), into `out` (`seqs ·
/// (kv_len / bk) · bk / 2 · dp` words, a tile's pairs at word `tile · bk / 2 · dp` of its
/// sequence's), on the caller's rayon pool: one pass over V per call instead of one per query
/// block.
///
/// # Safety
/// AVX-512F/BW and AVX512_BF16; `v` holds `seqs · kv_len` rows of `d`; `bk` even (with
/// `transposed`, a multiple of 32, and `d == dp` a multiple of 16).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn pack_v_tiles(
    v: &[bf16],
    seqs: usize,
    kv_len: usize,
    d: usize,
    dp: usize,
    bk: usize,
    transposed: bool,
    out: &mut [u32],
) {
    use rayon::prelude::*;
    let tiles = kv_len / bk;
    debug_assert!(bk.is_multiple_of(2) && out.len() >= seqs * tiles * bk / 2 * dp);
    let v = crate::cpu::SendPtr(v.as_ptr() as *mut u16);
    out.par_chunks_mut(bk / 2 * dp)
        .take(seqs * tiles)
        .enumerate()
        .for_each(|(t, dst)| {
            let (s, tile) = (t / tiles, t % tiles);
            let src = v.get().add((s * kv_len + tile * bk) * d) as *const u16;
            // SAFETY: as the function's; each chunk is one tile's pairs.
            unsafe {
                if transposed {
                    pack_vt_pairs_avx512(src, d, bk, dst.as_mut_ptr())
                } else {
                    pack_v_pairs_avx512(src, d, bk, dp, dst.as_mut_ptr())
                }
            }
        });
}

#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma,f16c")]
unsafe fn pack_v_pairs_avx512(v: *const u16, d: usize, nk: usize, dp: usize, vp: *mut u32) {
    pack_v_pairs(v, d, nk, dp, vp)
}

#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma,f16c")]
unsafe fn pack_vt_pairs_avx512(v: *const u16, d: usize, nk: usize, vt: *mut u32) {
    pack_vt_pairs(v, d, nk, nk / 2, vt)
}

/// `O[r][0..NV·16] = α_r·O[r][..] + Σ_{jp<np} pair(P)[jp][r] · pair(V)[jp][..]` for `r < MR`
/// (`first`: O is not read): MR×NV accumulators, NV loads and MR broadcasts per key pair.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pv_pairs<const MR: usize, const NV: usize>(
    np: usize,
    pp: *const u32,
    ldp: usize,
    vp: *const u32,
    ldv: usize,
    o: *mut f32,
    ldo: usize,
    alpha: *const f32,
    first: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if !first {
        for r in 0..MR {
            let al = _mm512_set1_ps(*alpha.add(r));
            for c in 0..NV {
                acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o.add(r * ldo + c * L)), al);
            }
        }
    }
    for jp in 0..np {
        let mut vv = [_mm512_setzero_si512(); NV];
        for c in 0..NV {
            vv[c] = _mm512_loadu_si512(vp.add(jp * ldv + c * L) as *const _);
        }
        for r in 0..MR {
            let b: __m512bh = std::mem::transmute(_mm512_set1_epi32(*pp.add(jp * ldp + r) as i32));
            for c in 0..NV {
                acc[r][c] = _mm512_dpbf16_ps(
                    acc[r][c],
                    b,
                    std::mem::transmute::<__m512i, __m512bh>(vv[c]),
                );
            }
        }
    }
    for r in 0..MR {
        for c in 0..NV {
            _mm512_storeu_ps(o.add(r * ldo + c * L), acc[r][c]);
        }
    }
}
