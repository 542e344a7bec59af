//! The f32 products of `decode.avx512f` for bf16 inputs whose head_dim is a multiple of 32:
//! each 64-byte load of a K or V row (32 bf16) is widened to f32 by two integer operations, a
//! shift (the even elements) and a mask (the odd ones), instead of two zero-extensions and two
//! shifts. Half the widening operations, on the ports the FMAs use.
//!
//! The even and odd elements of each 32-element chunk land in separate vectors, so the query
//! rows are stored in that order too (per chunk: the 16 even dimensions, then the 16 odd ones)
//! and the scores are the same sums in another order. O is accumulated in the same order and
//! put back in head_dim order once per task ([`Products::store_o`]). Every product and sum is
//! the f32 path's (`decode::F32Dots`): bf16 widens to f32 exactly either way.
//!
//! Why: on the Xeon family 6 model 207 VM (2 threads; 2026-12-07) decode with K and V in L2
//! (`DECTIME_SETS=1 dectime 512 bf16 avx512f`, one thread) read 18.6 GB/s, ≈ 76 cycles a key at
//! the FMA probe's clock, where its 64 FMAs need 32; `perf` put the widening (`vpmovzxwd` +
//! `vpslld`, 32 of the ≈ 100 vector operations a key) among the hottest instructions.
//! Measured on that VM, the two alternated: in L2 (one thread) 18.3–18.4 → 20.4–20.5 GB/s;
//! from memory in `perfledger run` (decode h32/8 kv 8192 bf16, 2 threads, three rounds)
//! 14.9–18.8 → 21.8–22.5 GB/s, 55–64% → 68–69% of the read of its inputs alongside
//! (`results/decode-split-xeon207/`).

#![allow(clippy::needless_range_loop)]

use super::decode::{reduce_scores, softmax, Products, Scratch, State, DBK};
use crate::cpu::simd::Avx512;
use half::bf16;
use std::arch::x86_64::*;

/// bf16 values per load: head_dim must be a multiple of it ([`applies`]).
pub(crate) const W: usize = 32;
/// f32 lanes per vector.
const L: usize = 16;
/// Keys × query rows per score tile (the f32 products' tile).
const KD: usize = 4;
const GR: usize = 4;

/// Whether the split products take a head_dim of `d`.
pub(crate) fn applies(d: usize) -> bool {
    d > 0 && d.is_multiple_of(W)
}

/// Split-word products with P·V tiles of `GR` rows × `NV` chunks of 32 columns.
pub(crate) struct SplitDots<const NV: usize>;

/// The even (`.0`) and odd (`.1`) elements of the 32 bf16 at `p`, widened to f32.
#[inline(always)]
unsafe fn widen(p: *const bf16) -> (__m512, __m512) {
    let x = _mm512_loadu_si512(p as *const _);
    let even = _mm512_slli_epi32::<16>(x);
    let odd = _mm512_and_si512(x, _mm512_set1_epi32(0xffff_0000u32 as i32));
    (_mm512_castsi512_ps(even), _mm512_castsi512_ps(odd))
}

impl<const NV: usize> Products<bf16> for SplitDots<NV> {
    const GR: usize = GR;
    const DW: usize = W;
    const STREAMS: bool = true;

    /// The query rows as f32, each 32-element chunk as its even then its odd elements.
    #[inline(always)]
    unsafe fn load_q(
        ws: &mut Scratch,
        q: *const bf16,
        rows: usize,
        d: usize,
        gp: usize,
        dp: usize,
    ) -> *const f32 {
        debug_assert_eq!(d, dp);
        let qf = ws.qf.get(gp * dp).as_mut_ptr();
        for r in 0..gp {
            let dst = qf.add(r * dp);
            if r < rows {
                for c in (0..d).step_by(W) {
                    for i in 0..L {
                        *dst.add(c + i) = (*q.add(r * d + c + 2 * i)).to_f32();
                        *dst.add(c + L + i) = (*q.add(r * d + c + 2 * i + 1)).to_f32();
                    }
                }
            } else {
                std::ptr::write_bytes(dst, 0, dp);
            }
        }
        qf
    }

    #[inline(always)]
    unsafe fn block(
        st: &State,
        _ws: &mut Scratch,
        c: f32,
        kb: *const bf16,
        vb: *const bf16,
        d: usize,
        nk: usize,
        first: bool,
        mut prefetch: impl FnMut(usize, usize),
    ) {
        let (gp, dp) = (st.gp, st.dp);
        debug_assert_eq!(d, dp);
        let chunks = dp / W;
        // Scores; a last partial group of KD keys repeats the last row (its scores are masked).
        let mut jj = 0;
        while jj < nk {
            let krows: [*const bf16; KD] =
                std::array::from_fn(|key| kb.add(st.key_off[(jj + key).min(nk - 1)]));
            let mut r0 = 0;
            while r0 < gp {
                let qf = st.qf.add(r0 * dp);
                let mut acc = [[_mm512_setzero_ps(); GR]; KD];
                for ch in 0..chunks {
                    let mut qe = [_mm512_setzero_ps(); GR];
                    let mut qo = [_mm512_setzero_ps(); GR];
                    for r in 0..GR {
                        qe[r] = _mm512_loadu_ps(qf.add(r * dp + ch * W));
                        qo[r] = _mm512_loadu_ps(qf.add(r * dp + ch * W + L));
                    }
                    for key in 0..KD {
                        let (ke, ko) = widen(krows[key].add(ch * W));
                        for r in 0..GR {
                            acc[key][r] = _mm512_fmadd_ps(ke, qe[r], acc[key][r]);
                            acc[key][r] = _mm512_fmadd_ps(ko, qo[r], acc[key][r]);
                        }
                    }
                }
                reduce_scores::<Avx512, KD, GR>(&acc, st.sc.add(r0 * DBK + jj), DBK);
                r0 += GR;
            }
            prefetch(jj, KD);
            jj += KD;
        }
        softmax::<Avx512>(st, c, nk);
        // O = α·O + P·V, NV chunks of 32 columns at a time.
        let mut ch = 0;
        while ch < chunks {
            let nv = NV.min(chunks - ch);
            let mut r0 = 0;
            while r0 < gp {
                let (p, o) = (st.sc.add(r0 * DBK), st.o.add(r0 * dp + ch * W));
                let (v, alpha) = (vb.add(ch * W), st.alpha.add(r0));
                match nv {
                    1 => pv::<1>(nk, p, v, &st.key_off, o, dp, alpha, first),
                    _ => pv::<NV>(nk, p, v, &st.key_off, o, dp, alpha, first),
                }
                r0 += GR;
            }
            ch += nv;
        }
    }

    /// Each 32-column chunk from (even, odd) back to head_dim order.
    #[inline(always)]
    unsafe fn store_o(o: *const f32, dst: *mut f32, dp: usize) {
        for c in (0..dp).step_by(W) {
            for i in 0..L {
                *dst.add(c + 2 * i) = *o.add(c + i);
                *dst.add(c + 2 * i + 1) = *o.add(c + L + i);
            }
        }
    }
}

/// `O[r][chunks] = α_r·O[r] + Σ_{j<nk} P[r][j] · V[j]` for `r < GR` and `N` chunks of 32
/// columns (each as its even then its odd columns), P at `p` (rows [`DBK`] apart), V row `j` at
/// `v + key_off[j]`, O rows `ldo` apart. `first`: O is not read.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pv<const N: usize>(
    nk: usize,
    p: *const f32,
    v: *const bf16,
    key_off: &[usize; DBK],
    o: *mut f32,
    ldo: usize,
    alpha: *const f32,
    first: bool,
) {
    let mut acc = [[[_mm512_setzero_ps(); 2]; N]; GR];
    if !first {
        for r in 0..GR {
            let al = _mm512_set1_ps(*alpha.add(r));
            for c in 0..N {
                for h in 0..2 {
                    let x = _mm512_loadu_ps(o.add(r * ldo + c * W + h * L));
                    acc[r][c][h] = _mm512_mul_ps(x, al);
                }
            }
        }
    }
    for j in 0..nk {
        let mut vv = [[_mm512_setzero_ps(); 2]; N];
        for c in 0..N {
            let (e, od) = widen(v.add(key_off[j] + c * W));
            vv[c] = [e, od];
        }
        for r in 0..GR {
            let b = _mm512_set1_ps(*p.add(r * DBK + j));
            for c in 0..N {
                acc[r][c][0] = _mm512_fmadd_ps(b, vv[c][0], acc[r][c][0]);
                acc[r][c][1] = _mm512_fmadd_ps(b, vv[c][1], acc[r][c][1]);
            }
        }
    }
    for r in 0..GR {
        for c in 0..N {
            for h in 0..2 {
                _mm512_storeu_ps(o.add(r * ldo + c * W + h * L), acc[r][c][h]);
            }
        }
    }
}
