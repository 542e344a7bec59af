//! The products of `decode.avx512bf16`: both products of the decode task with `vdpbf16ps` on
//! bf16 pairs, for bf16 inputs on CPUs with AVX512_BF16 (the task itself, with its splits,
//! prefetch and online softmax in f32, is [`super::decode::task`]).
//!
//! - Scores `S = Q·Kᵀ`: the group's query rows (copied once per task, zero-padded) and each K
//!   row as stored, 16 bf16 (8 pairs along head_dim) per 256-bit product, `KD` = 4 keys × `GR`
//!   = 4 query rows per tile, reduced by two 8-way transpose-and-add trees ([`dots_pairs`]).
//!   Every product of two bf16 is exact in f32 and `vdpbf16ps` accumulates in f32: the scores
//!   carry the f32 path's error (only the order of the sums differs).
//! - `O = α·O + P·V`: P is rounded to bf16 (round to nearest even, `vcvtneps2bf16`) as pairs
//!   of consecutive keys; two V rows are interleaved into pairs of keys per column in registers
//!   (`vpunpcklwd`/`vpunpckhwd`), so V is not packed in memory. The interleave works within
//!   128-bit lanes: of each 32 columns, the low vector holds columns `8i + 0..4` and the high
//!   one `8i + 4..8` (i = 0..4). O is accumulated in that column order and put back in order
//!   once per task ([`Products::store_o`]). The error the rounding of P adds is the one stated
//!   for `flash.avx512bf16` (`super::flash_bf16`): at most `2⁻⁸` of the verification's scale
//!   `P·|V|`, a quarter of its floor for bf16 output.
//!
//! `vdpbf16ps` reads subnormal inputs (Q, K, V, P) as zero and flushes products and sums below
//! 2⁻¹²⁶ to zero: each output column may lose up to about `keys · 2⁻¹²⁶` in absolute terms,
//! within the bound except where a column's |V| is itself at most about 2⁻¹¹⁰ throughout.
//!
//! A head_dim that is not a multiple of 32 is copied, zero-padded, into scratch per block (K and
//! V rows then come from the scratch, not as stored).
//!
//! When K and V come from memory (`super::decode::interleave_for_this_cpu`), each block's P·V
//! is deferred and done one column chunk (`NV` vectors of 16 columns, all its keys) at a time
//! between the next block's score tiles, so K and V rows are read in turn rather than 4 KiB of
//! each in turn ([`block_pairs`]; the last block's in [`Products::finish`]).

#![allow(clippy::needless_range_loop)]

use super::decode::{reduce_scores, softmax, Deferred, Products, Scratch, State};
use crate::cpu::simd::{Avx2, Avx512};
use half::bf16;
use std::arch::x86_64::*;

/// Pair products with P·V tiles of `GR` query rows × `NV` (even) vectors of 16 columns, on
/// blocks of [`BK`] keys.
pub(crate) struct PairDots<const NV: usize>;

/// Keys per block of `decode.avx512bf16`: 32, twice the f32 products' [`super::decode::DBK`].
/// The softmax, the rounding of P and the setup of each P·V chunk (O loaded, scaled by α and
/// stored) come once per 32 keys instead of 16. Zen 4 (family 25 model 17), `dectime` pairing
/// the two call by call: from the L3 (`DECTIME_SETS=1`, kv 1024, one thread) 1.05x; from
/// memory (kv 8192 and 4096, one and two threads) 0.99-1.02x.
pub(crate) const BK: usize = 32;

/// f32 lanes per vector.
const L: usize = 16;
/// bf16 values per vector: head_dim is stepped (and padded) by this.
pub(crate) const W: usize = 32;
/// Keys × query rows per score tile.
pub(crate) const KD: usize = 4;
pub(crate) const GR: usize = 4;

// A block's row of scores is whole vectors of 16 f32: the softmax masks the keys past `nk` in
// the last vector holding a key to exactly 0, so the pair of an odd `nk`'s last key is weighted 0.
const _: () = assert!(BK.is_multiple_of(L));

impl<const NV: usize> Products<bf16> for PairDots<NV> {
    const GR: usize = GR;
    const DW: usize = W;
    const BK: usize = BK;

    /// The query rows as bf16, `dp` per row (zero-padded), in `ws.qf`'s storage.
    #[inline(always)]
    unsafe fn load_q(
        ws: &mut Scratch,
        q: *const bf16,
        rows: usize,
        d: usize,
        gp: usize,
        dp: usize,
    ) -> *const f32 {
        let qb = ws.qf.get(gp * dp / 2).as_mut_ptr() as *mut u16;
        for r in 0..gp {
            let dst = qb.add(r * dp);
            let real = if r < rows {
                std::ptr::copy_nonoverlapping(q.add(r * d) as *const u16, dst, d);
                d
            } else {
                0
            };
            std::ptr::write_bytes(dst.add(real), 0, dp - real);
        }
        qb as *const f32
    }

    #[inline(always)]
    unsafe fn block(
        st: &State,
        ws: &mut Scratch,
        c: f32,
        kb: *const bf16,
        vb: *const bf16,
        d: usize,
        nk: usize,
        first: bool,
        prefetch: impl FnMut(usize, usize),
    ) {
        let (kb, vb) = (kb as *const u16, vb as *const u16);
        if d.is_multiple_of(W) {
            block_pairs::<NV>(st, ws, c, kb, vb, d, nk, first, st.interleave, prefetch);
        } else {
            // K and V come from a scratch copy each block overwrites: no block can wait.
            let dp = st.dp;
            let kp = ws.kf.get(BK * dp / 2).as_mut_ptr() as *mut u16;
            let vp = ws.vf.get(BK * dp / 2).as_mut_ptr() as *mut u16;
            for (src, dst) in [(kb, kp), (vb, vp)] {
                for j in 0..nk {
                    std::ptr::copy_nonoverlapping(src.add(j * d), dst.add(j * dp), d);
                    std::ptr::write_bytes(dst.add(j * dp + d), 0, dp - d);
                }
            }
            block_pairs::<NV>(st, ws, c, kp, vp, dp, nk, first, false, prefetch);
        }
    }

    #[inline(always)]
    unsafe fn finish(st: &State, ws: &mut Scratch, d: usize) {
        if let Some(prev) = ws.deferred.take() {
            pv_block::<NV>(st, prev, 0, chunks::<NV>(st.dp), d);
        }
    }

    #[inline(always)]
    unsafe fn store_o(o: *const f32, dst: *mut f32, dp: usize) {
        debug_assert!(
            dp.is_multiple_of(W),
            "dp is rounded to whole vectors of pairs"
        );
        for ch in (0..dp).step_by(W) {
            for x in 0..W {
                *dst.add(ch + column(x)) = *o.add(ch + x);
            }
        }
    }
}

/// The column (within its 32) that O's accumulator position `x` holds: positions 0..16 are the
/// low interleave of each 128-bit lane, 16..32 the high one.
#[inline(always)]
pub(crate) const fn column(x: usize) -> usize {
    let (half, y) = (x / L, x % L);
    8 * (y / 4) + 4 * half + y % 4
}

/// Column chunks of a P·V with rows of `dp` columns: `NV` vectors of 16 columns each (the last
/// one 2 vectors when `dp` is not a multiple of `NV · 16`).
#[inline(always)]
const fn chunks<const NV: usize>(dp: usize) -> usize {
    (dp / L).div_ceil(NV)
}

/// One block of `nk` keys, K/V rows `ld` bf16 apart at `kb`, `vb` (`st.dp` readable per row,
/// a multiple of 32): scores, softmax, P rounded to bf16, then `O = α·O + P·V`. With
/// `interleave`, this block's P·V is deferred instead (into `ws.deferred`), and the previous
/// block's, deferred there, is done one column chunk at a time, the chunks spread evenly over
/// this block's score tiles (all of them by its last): every O column gets the same products in
/// the same order, so the same result bit for bit.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block_pairs<const NV: usize>(
    st: &State,
    ws: &mut Scratch,
    c: f32,
    kb: *const u16,
    vb: *const u16,
    ld: usize,
    nk: usize,
    first: bool,
    interleave: bool,
    mut prefetch: impl FnMut(usize, usize),
) {
    let (gp, dp, bk) = (st.gp, st.dp, st.bk);
    let q = st.qf as *const u16;
    let prev = ws.deferred;
    let (prev_chunks, tiles) = (prev.map_or(0, |_| chunks::<NV>(dp)), nk.div_ceil(KD));
    let (mut done, mut tile) = (0, 0);
    // Scores; a last partial group of KD keys repeats the last row (its scores are masked).
    let mut jj = 0;
    while jj < nk {
        let krows: [*const u16; KD] =
            std::array::from_fn(|key| kb.add((jj + key).min(nk - 1) * ld));
        let mut r0 = 0;
        while r0 < gp {
            dots_pairs(
                dp / W,
                krows,
                q.add(r0 * dp),
                dp,
                st.sc.add(r0 * bk + jj),
                bk,
            );
            r0 += GR;
        }
        prefetch(jj, KD);
        jj += KD;
        tile += 1;
        let upto = (prev_chunks * tile).div_ceil(tiles);
        if let Some(prev) = prev.filter(|_| upto > done) {
            pv_block::<NV>(st, prev, done, upto, ld);
            done = upto;
        }
    }
    softmax::<Avx512>(st, c, nk);
    // P rounded to bf16: one row's bk values become bk / 2 words, keys 2jp | 2jp + 1 << 16.
    for r in 0..gp {
        for h in (0..bk).step_by(L) {
            let pb = _mm512_cvtneps_pbh(_mm512_loadu_ps(st.sc.add(r * bk + h)));
            _mm256_storeu_si256(
                st.pp.add((r * bk + h) / 2) as *mut __m256i,
                std::mem::transmute::<__m256bh, __m256i>(pb),
            );
        }
    }
    let this = Deferred {
        v: vb as usize,
        nk,
        first,
    };
    if interleave {
        ws.deferred = Some(this);
    } else {
        pv_block::<NV>(st, this, 0, chunks::<NV>(dp), ld);
    }
}

/// The column chunks `c0..c1` ([`chunks`]) of `blk`'s `O = α·O + P·V` over all its keys (P as
/// pair words in `st.pp`, V rows `ld` bf16 apart): α (or O = P·V in the task's first block) as
/// each chunk starts.
#[inline(always)]
unsafe fn pv_block<const NV: usize>(st: &State, blk: Deferred, c0: usize, c1: usize, ld: usize) {
    let (gp, dp, bk) = (st.gp, st.dp, st.bk);
    let vb = blk.v as *const u16;
    let nvp = dp / L;
    for chunk in c0..c1 {
        let dc = chunk * NV;
        let nv = NV.min(nvp - dc);
        let mut r0 = 0;
        while r0 < gp {
            let (pr, vc) = (st.pp.add(r0 * bk / 2), vb.add(dc * L));
            let (oc, al) = (st.o.add(r0 * dp + dc * L), st.alpha.add(r0));
            if nv == NV {
                pv_pairs::<NV>(blk.nk, pr, bk / 2, vc, ld, oc, dp, al, blk.first);
            } else {
                debug_assert_eq!(nv, 2, "dp is a multiple of 32 and NV even");
                pv_pairs::<2>(blk.nk, pr, bk / 2, vc, ld, oc, dp, al, blk.first);
            }
            r0 += GR;
        }
    }
}

/// `S[r][key] = Q[r] · K[key]` for `r < GR`, `key < KD` over `nc` steps of 32 bf16 (query rows
/// `ldq` apart at `q`, K rows at `krows`), into `sc` (rows `lds` apart).
///
/// The products are 256-bit (16 bf16, 8 pairs, a step): each (key, row) sums into 8 lanes, so
/// the 16 sums are two 8-way transpose-and-add trees on 256-bit vectors instead of one 16-way
/// tree on 512-bit ones, a level shorter. On Zen 4, which runs a 512-bit instruction as two
/// 256-bit halves, the products cost the same and the trees about half (42 256-bit operations
/// for the 16 sums against 45 512-bit ones). Zen 4 (family 25 model 17), `dectime` pairing the
/// two call by call: in cache (kv 1024) 1.014-1.019x on one and two threads; from memory
/// (kv 8192, two threads) 1.002-1.016x (7 runs).
#[inline(always)]
unsafe fn dots_pairs(
    nc: usize,
    krows: [*const u16; KD],
    q: *const u16,
    ldq: usize,
    sc: *mut f32,
    lds: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); GR]; KD];
    for ch in 0..2 * nc {
        let mut qv = [_mm256_setzero_si256(); GR];
        for r in 0..GR {
            qv[r] = _mm256_loadu_si256(q.add(r * ldq + ch * W / 2) as *const _);
        }
        for key in 0..KD {
            let kv: __m256bh =
                std::mem::transmute(_mm256_loadu_si256(krows[key].add(ch * W / 2) as *const _));
            for r in 0..GR {
                acc[key][r] = _mm256_dpbf16_ps(
                    acc[key][r],
                    kv,
                    std::mem::transmute::<__m256i, __m256bh>(qv[r]),
                );
            }
        }
    }
    reduce_scores::<Avx2, KD, GR>(&acc, sc, lds);
}

/// `O = α·O + P·V` over the keys of a block of `nk`, for `GR` query rows × `NV` vectors (or
/// `O = P·V` when `first`): P as pair words (rows `ldp` words apart at `pp`), V rows `ld` apart at
/// `v` (the tile's first column), O rows `ldo` apart at `o` in the interleaved column order. An
/// odd `nk` pairs its last key with itself, weighted by the masked key's P of exactly 0.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pv_pairs<const NV: usize>(
    nk: usize,
    pp: *const u32,
    ldp: usize,
    v: *const u16,
    ld: usize,
    o: *mut f32,
    ldo: usize,
    alpha: *const f32,
    first: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; GR];
    if !first {
        for r in 0..GR {
            let al = *alpha.add(r);
            let a = _mm512_set1_ps(al);
            for cv in 0..NV {
                let prev = _mm512_loadu_ps(o.add(r * ldo + cv * L));
                acc[r][cv] = if al == 1.0 {
                    prev
                } else {
                    _mm512_mul_ps(a, prev)
                };
            }
        }
    }
    for jp in 0..nk.div_ceil(2) {
        let (ra, rb) = (v.add(2 * jp * ld), v.add((2 * jp + 1).min(nk - 1) * ld));
        let mut vv = [_mm512_setzero_si512(); NV];
        for ch in 0..NV / 2 {
            let a = _mm512_loadu_si512(ra.add(ch * W) as *const _);
            let b = _mm512_loadu_si512(rb.add(ch * W) as *const _);
            vv[2 * ch] = _mm512_unpacklo_epi16(a, b);
            vv[2 * ch + 1] = _mm512_unpackhi_epi16(a, b);
        }
        for r in 0..GR {
            let pw: __m512bh = std::mem::transmute(_mm512_set1_epi32(*pp.add(r * ldp + jp) as i32));
            for cv in 0..NV {
                acc[r][cv] = _mm512_dpbf16_ps(
                    acc[r][cv],
                    std::mem::transmute::<__m512i, __m512bh>(vv[cv]),
                    pw,
                );
            }
        }
    }
    for r in 0..GR {
        for cv in 0..NV {
            _mm512_storeu_ps(o.add(r * ldo + cv * L), acc[r][cv]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::attention::{decode_run, DecodeKnobs, DecodePath, Mutation};
    use crate::dtype::{DType, Element, Tensor};
    use crate::problem::AttentionProblem;

    /// The interleaved P·V (each block's P·V between the next block's score tiles) adds the same
    /// products to O in the same order as the blocks in turn: the outputs are bit for bit the
    /// same, at KV lengths with a short last block, an odd last block, splits of one block and
    /// of several, group sizes that pad to a tile, and head_dims that take the interleave (a
    /// multiple of 32: one column chunk at 32 and 64, two at 96 (the second of 2 vectors) and
    /// 128, four at 256) or fall back (48). The blocks in turn are the path the verification tests
    /// check against the reference.
    #[test]
    fn interleaved_pv_is_the_blocks_in_turn() {
        if !(std::arch::is_x86_feature_detected!("avx512bf16")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        {
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (qh, kvh, kv, d) in [
            (8, 2, 1000, 128),
            (32, 8, 333, 64),
            (6, 2, 17, 128),
            (4, 1, 4099, 32),
            (5, 1, 70, 128),
            (4, 4, 301, 48),
            (8, 2, 150, 96),
            (4, 1, 77, 256),
        ] {
            let p = AttentionProblem::new(1, qh, kvh, 1, kv, d);
            let q = Tensor::random(DType::BF16, p.q_len_elems(), 1);
            let k = Tensor::random(DType::BF16, p.kv_len_elems(), 2);
            let v = Tensor::random(DType::BF16, p.kv_len_elems(), 3);
            let (q, k, v) = (
                bf16::tensor_slice(&q).unwrap(),
                bf16::tensor_slice(&k).unwrap(),
                bf16::tensor_slice(&v).unwrap(),
            );
            // Scores that grow along the sequence, so blocks after the first rescale O (α < 1).
            let k: Vec<bf16> = k
                .iter()
                .enumerate()
                .map(|(i, x)| bf16::from_f32(x.to_f32() * (1.0 + (i / d % kv) as f32 / 64.0)))
                .collect();
            let out = |interleave: bool| {
                let mut o = vec![0f32; p.q_len_elems()];
                pool.install(|| {
                    decode_run::<bf16, f32>(
                        DecodePath::Bf16Dot,
                        &p,
                        q,
                        &k,
                        v,
                        &mut o,
                        Mutation::None,
                        DecodeKnobs {
                            interleave: Some(interleave),
                            ..DecodeKnobs::default()
                        },
                    )
                })
                .unwrap();
                o
            };
            let (a, b) = (out(false), out(true));
            assert!(a.iter().all(|x| x.is_finite()), "{p:?}");
            let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "interleaved P·V differs from the blocks in turn: {p:?}"
            );
        }
    }

    /// The interleaved column order is a permutation of each 32 columns, the one
    /// `vpunpcklwd`/`vpunpckhwd` produce.
    #[test]
    fn column_order_is_the_interleave() {
        let mut seen = [false; W];
        for x in 0..W {
            assert!(!seen[column(x)], "column {} twice", column(x));
            seen[column(x)] = true;
        }
        // Low interleave: lane i holds words 8i..8i+4 of each source; high: 8i+4..8i+8.
        assert_eq!(
            (0..8).map(column).collect::<Vec<_>>(),
            [0, 1, 2, 3, 8, 9, 10, 11]
        );
        assert_eq!((16..20).map(column).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert_eq!(column(31), 31);
    }

    /// `column` against the instructions themselves: word `x` of the O order holds column
    /// `column(x)` of two interleaved rows.
    #[test]
    fn column_order_matches_the_unpack_instructions() {
        if !std::arch::is_x86_feature_detected!("avx512bw") {
            return;
        }
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn interleave(a: &[u16; W], b: &[u16; W]) -> [u32; W] {
            let (va, vb) = (
                _mm512_loadu_si512(a.as_ptr() as *const _),
                _mm512_loadu_si512(b.as_ptr() as *const _),
            );
            let mut out = [0u32; W];
            _mm512_storeu_si512(out.as_mut_ptr() as *mut _, _mm512_unpacklo_epi16(va, vb));
            _mm512_storeu_si512(
                out.as_mut_ptr().add(L) as *mut _,
                _mm512_unpackhi_epi16(va, vb),
            );
            out
        }
        let a: [u16; W] = std::array::from_fn(|c| c as u16);
        let b: [u16; W] = std::array::from_fn(|c| 100 + c as u16);
        // SAFETY: AVX-512F/BW checked above (AVX512BW implies AVX512F on every CPU with it).
        let words = unsafe { interleave(&a, &b) };
        for (x, w) in words.iter().enumerate() {
            let col = column(x) as u32;
            assert_eq!(*w, col | ((100 + col) << 16), "word {x}");
        }
    }
}
