//! The fused flash-style forward: tiled online softmax, one task per (batch, query head, block of
//! `bq` queries: [`BQ`], 96 on AMX), K/V tiles of `bk` keys streamed through it.
//!
//! ```text
//! task (b, h, i0..i0+bq):
//!   Qᵀ ← Q[b, h, i0.., :] in f32, transposed to [d][query] panels (once per task)
//!   m, l ← −∞, 0 (per query, f32);  O ← 0 (bq × D, f32)
//!   for each K/V tile j0..j0+bk with a visible key (causal: fully masked tiles are skipped)
//!     Kf, Vf ← K, V rows of KV head h / group, f16/bf16 → f32 once per tile (never copied per head)
//!     Sᵀ[j][i] = Σ_d Kf[j][d] · Qᵀ[d][i]           (micro-kernel KR keys × QV vectors of queries)
//!     causal: Sᵀ[j][i] = −∞ where j > kv_len − q_len + i (only tiles crossing the diagonal)
//!     m' = max(m, max_j Sᵀ[j][i]);  r' = m'·c if m'·c − r > 8 else r   (r: the reference, −∞ at first)
//!     α = 2^(r − r');  P = 2^(Sᵀ·c − r') ≤ 2^8;  l = α·l + Σ_j P
//!     O[i][:] = α_i · O[i][:] + Σ_j P[j][i] · Vf[j][:]   (micro-kernel MR queries × NV vectors of d)
//!   O[b, h, i, :] = O[i] / l[i], rounded once to the output type
//! ```
//!
//! The reference `r` moves only when the max outgrows it by more than 2^8 ([`RESCALE_LOG2`]), so
//! after the first tiles α is mostly exactly 1 and O is left as it is.
//!
//! `c = scale · log2(e)` is applied inside the exponent (`Sᵀ·c − r'`, one FMA), not folded into
//! Q: the common shift `r'` cancels between P and l, so its rounding does not matter, and the
//! per-element rounding is relative to the (small) difference — logits of magnitude 1e4 lose no
//! more than the f32 accumulation of `q·k` itself (the same as the naive kernel, which sums in the
//! same order). The reference is subtracted in f32 before any exponential, so nothing overflows.
//!
//! Both products are GEMMs of size bq × bk × D with the layouts the BLIS micro-kernels want: in
//! `Sᵀ = Kf·Qᵀ` the broadcast operand (Kf rows) is read in its natural row layout and the vector
//! operand (Qᵀ) is transposed once per task; in `O += P·Vf` the broadcast operand is `Sᵀ` itself
//! (queries contiguous per key, exactly a packed A panel) and the vector operand is Vf's rows. The
//! softmax runs down the columns of `Sᵀ`, so the row max and sum are vertical SIMD operations.

use super::Mutation;
use crate::cpu::simd::{convert_row, load_elem, Simd};
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::Element;
use crate::problem::AttentionProblem;
use std::f32::consts::LOG2_E;

/// Queries per task of the FMA and `vdpbf16ps` paths (the AMX path takes 96,
/// [`super::FlashTiles::amx`]). A multiple of every path's S panel width (48, 16, 8 queries) and
/// PV row count (6, 4), and their least common multiple on AVX2 (48), so a block is always whole
/// tiles.
pub(crate) const BQ: usize = 48;

/// Per-thread scratch, grown on first use and reused.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(super) qt: AlignedBuf,
    pub(super) kf: AlignedBuf,
    pub(super) vf: AlignedBuf,
    st: AlignedBuf,
    o: AlignedBuf,
    stats: AlignedBuf,
    pub(super) row: AlignedBuf,
    /// P as bf16 pairs of keys, for the products that take them (`flash_bf16`'s and
    /// `flash_amx`'s, [`Products::P_PAIRS`]), written by the softmax.
    pub(super) pp: AlignedBuf,
    /// The AMX products' O rows, gathered from their transposed O at a task's end for outputs
    /// other than bf16 ([`super::flash_amx`]; bf16 is written from Oᵀ directly).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
    pub(super) pa: AlignedBuf,
}

/// Everything a task reads: the problem, the inputs and where the output goes.
pub(crate) struct Ctx<'a, T, O> {
    pub p: AttentionProblem,
    pub q: &'a [T],
    pub k: &'a [T],
    pub v: &'a [T],
    pub out: SendPtr<O>,
    /// Queries per task (a multiple of the products' QW and MR and of the vector width).
    pub bq: usize,
    /// Keys per K/V tile (a multiple of the S micro-kernel's KR).
    pub bk: usize,
    /// V of every whole K/V tile as pairs of keys, `[batch·kv_heads][v_pairs_len][dp]` words
    /// (`flash_bf16::pack_v_pairs`' layout), packed once per call for the pair products; null
    /// where the path packs per tile.
    pub v_pairs: SendPtr<u32>,
    /// Pairs per KV sequence in `v_pairs`.
    pub v_pairs_len: usize,
    pub mutation: Mutation,
}

/// `Sᵀ[r][0..QV·L] = Σ_{dd<d} kf[r·ldk + dd] · qt[dd·QV·L ..]` for `r < KR`: KR×QV accumulators,
/// one broadcast per key row and QV vector loads per step of `dd`.
#[inline(always)]
unsafe fn s_tile<S: Simd, const KR: usize, const QV: usize>(
    d: usize,
    kf: *const f32,
    ldk: usize,
    qt: *const f32,
    st: *mut f32,
    lds: usize,
) {
    let l = S::LANES;
    let qw = QV * l;
    let mut acc = [[S::zero(); QV]; KR];
    let mut qp = qt;
    for dd in 0..d {
        let mut qv = [S::zero(); QV];
        for (c, q) in qv.iter_mut().enumerate() {
            *q = S::load(qp.add(c * l));
        }
        for (r, a) in acc.iter_mut().enumerate() {
            let b = S::splat(*kf.add(r * ldk + dd));
            for c in 0..QV {
                a[c] = S::fma(b, qv[c], a[c]);
            }
        }
        qp = qp.add(qw);
    }
    for (r, a) in acc.iter().enumerate() {
        for (c, v) in a.iter().enumerate() {
            S::store(st.add(r * lds + c * l), *v);
        }
    }
}

/// `O[r][0..NV·L] = α_r·O[r][..] + Σ_{j<nk} P(r, j) · vf[j·ldv ..]` for `r < MR`, with `P(r, j)`
/// at `p[r·prs + j·pjs]` and V rows of element type `E` (f32 scratch, or the stored rows when the
/// decode kernel reads them in place). `first`: O is not read (β = 0). MR×NV accumulators, NV
/// vector loads and MR broadcasts per key.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn pv_tile<S: Simd, E: Element, const MR: usize, const NV: usize>(
    nk: usize,
    p: *const f32,
    prs: usize,
    pjs: usize,
    vf: *const E,
    ldv: usize,
    o: *mut f32,
    ldo: usize,
    alpha: *const f32,
    first: bool,
) {
    let l = S::LANES;
    let mut acc = [[S::zero(); NV]; MR];
    if !first {
        for (r, a) in acc.iter_mut().enumerate() {
            let al = S::splat(*alpha.add(r));
            for (c, v) in a.iter_mut().enumerate() {
                *v = S::mul(S::load(o.add(r * ldo + c * l)), al);
            }
        }
    }
    let mut vp = vf;
    let mut pp = p;
    for _ in 0..nk {
        let mut vv = [S::zero(); NV];
        for (c, v) in vv.iter_mut().enumerate() {
            *v = load_elem::<S, E>(vp.add(c * l));
        }
        for (r, a) in acc.iter_mut().enumerate() {
            let b = S::splat(*pp.add(r * prs));
            for c in 0..NV {
                a[c] = S::fma(b, vv[c], a[c]);
            }
        }
        vp = vp.add(ldv);
        pp = pp.add(pjs);
    }
    for (r, a) in acc.iter().enumerate() {
        for (c, v) in a.iter().enumerate() {
            S::store(o.add(r * ldo + c * l), *v);
        }
    }
}

/// `pv_tile` for `nv ≤ NVMAX` column vectors, dispatched to a constant width.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn pv_tile_n<S: Simd, E: Element, const MR: usize, const NVMAX: usize>(
    nv: usize,
    nk: usize,
    p: *const f32,
    prs: usize,
    pjs: usize,
    vf: *const E,
    ldv: usize,
    o: *mut f32,
    ldo: usize,
    alpha: *const f32,
    first: bool,
) {
    debug_assert!(nv >= 1 && nv <= NVMAX && NVMAX <= 4);
    match nv {
        1 => pv_tile::<S, E, MR, 1>(nk, p, prs, pjs, vf, ldv, o, ldo, alpha, first),
        2 if NVMAX >= 2 => pv_tile::<S, E, MR, 2>(nk, p, prs, pjs, vf, ldv, o, ldo, alpha, first),
        3 if NVMAX >= 3 => pv_tile::<S, E, MR, 3>(nk, p, prs, pjs, vf, ldv, o, ldo, alpha, first),
        _ => pv_tile::<S, E, MR, NVMAX>(nk, p, prs, pjs, vf, ldv, o, ldo, alpha, first),
    }
}

/// Least common multiple (tile-size arithmetic).
pub(crate) const fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        let t = x % y;
        x = y;
        y = t;
    }
    a / x * b
}

/// The two products of a task, as one implementation: how the query block, each K tile and
/// each V tile are brought into the micro-kernels' layout, and the micro-kernels. The task
/// ([`task`]) owns everything else (tiling, the causal mask, the online softmax, the output).
///
/// - [`F32Products`]: f16/bf16 widened to f32 (Qᵀ panels, K and V rows), f32 FMA micro-kernels;
/// - `flash_bf16::PairProducts`: bf16 kept as pairs for `vdpbf16ps` (bf16 inputs on CPUs with
///   AVX512_BF16), P rounded to bf16 for the P·V product.
pub(crate) trait Products<T: Element> {
    /// Queries per S panel (the vector width of the S micro-kernel).
    const QW: usize;
    /// Whether [`Products::values`] reads P as bf16 pairs of consecutive keys in
    /// `Scratch::pp` (word `pp[jp·act + i]`: keys 2jp and 2jp + 1 of query `i`), which the
    /// softmax then writes as it computes P ([`Products::store_p_pairs`]) instead of P in f32
    /// into `Sᵀ`: no second pass over P to round and pair it.
    const P_PAIRS: bool = false;
    /// Query rows per P·V tile.
    const MR: usize;
    /// Keys per S tile.
    const KR: usize;

    /// Called on the task's thread before its first product, and [`Products::leave`] after its
    /// last: the AMX products load their tile configuration once per task here, not per
    /// product call.
    #[inline(always)]
    unsafe fn enter() {}
    /// See [`Products::enter`].
    #[inline(always)]
    unsafe fn leave() {}
    /// The block's queries (`nq` rows of `d` at `q`, lanes up to `act` zero), once per task.
    unsafe fn load_q(ws: &mut Scratch, q: *const T, d: usize, nq: usize, act: usize);
    /// `Sᵀ[j][i] = K[j] · Q[i]` for `j < nk` (K rows at `k`, stride `d`), `i < act`, into `st`
    /// (row stride `lds`). Rows `nk..` of a last partial group of KR may be written, never read.
    unsafe fn scores(
        ws: &mut Scratch,
        k: *const T,
        d: usize,
        nk: usize,
        act: usize,
        st: *mut f32,
        lds: usize,
    );
    /// `O[i] = α_i·O[i] + Σ_{j<nk} P[j][i] · V[j]` for `i < act` (`first`: O is not read), P at
    /// `st` (row stride `lds`; with [`Products::P_PAIRS`], the pairs the softmax wrote to
    /// `Scratch::pp` instead), V rows at `v` (stride `d`), O at `o` (`act · dp` values: rows of
    /// `dp`, or the products' own layout, which [`Products::write_out`] writes out from). `pairs`:
    /// the same V rows already as pairs of keys (`flash_bf16::pack_v_tiles`' layout for these
    /// products, `nk` even), or null; the pair products use them instead of packing V themselves.
    #[allow(clippy::too_many_arguments)]
    unsafe fn values(
        ws: &mut Scratch,
        v: *const T,
        pairs: *const u32,
        d: usize,
        nk: usize,
        act: usize,
        st: *const f32,
        lds: usize,
        o: *mut f32,
        dp: usize,
        alpha: *const f32,
        first: bool,
    );
    /// With [`Products::P_PAIRS`]: P of keys 2jp and 2jp + 1 for `LANES` = 16 queries (f32 at
    /// `p0` and `p1`) as pair words at `dst`.
    #[inline(always)]
    unsafe fn store_p_pairs(_p0: *const f32, _p1: *const f32, _dst: *mut u32) {
        unreachable!("only products with P_PAIRS take P as pairs")
    }
    /// The task's output after its last [`Products::values`]: `O[i] / l[i]` for queries
    /// `i < nq` (`l` at `lsum`), rounded once to `O`, at `out` (row stride `d`). By default from
    /// O's rows (`o`, row `i` at `i · dp`, [`write_rows`]); products that hold O in another layout
    /// write it from theirs.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn write_out<S: Simd, O: Element>(
        ws: &mut Scratch,
        o: *mut f32,
        dp: usize,
        _act: usize,
        nq: usize,
        lsum: *const f32,
        out: *mut O,
        d: usize,
    ) {
        write_rows::<S, O>(ws, o, dp, nq, lsum, out, d)
    }
}

/// `O[i] / l[i]` for `i < nq` from O's rows (row `i` at `o + i · dp`), rounded once to `O`, at
/// `out` (row stride `d`).
///
/// # Safety
/// The ISA of `S` is available; `o` holds `nq` rows of `dp ≥ d` (a multiple of the vector width),
/// `out` `nq` rows of `d`.
#[inline(always)]
pub(super) unsafe fn write_rows<S: Simd, O: Element>(
    ws: &mut Scratch,
    o: *const f32,
    dp: usize,
    nq: usize,
    lsum: *const f32,
    out: *mut O,
    d: usize,
) {
    let l = S::LANES;
    let row = ws.row.get(dp).as_mut_ptr();
    for r in 0..nq {
        let inv = S::splat(1.0 / *lsum.add(r));
        let orow = o.add(r * dp);
        let mut cc = 0;
        while cc < dp {
            S::store(row.add(cc), S::mul(S::load(orow.add(cc)), inv));
            cc += l;
        }
        let dst = std::slice::from_raw_parts_mut(out.add(r * d), d);
        O::slice_from_f32(std::slice::from_raw_parts(row, d), dst);
    }
}

/// The f32 products: f16/bf16 widened once per tile, the FMA micro-kernels [`s_tile`] (`KR`
/// keys × `QV` vectors of queries) and [`pv_tile`] (`MR` queries × up to `NV` vectors of d).
pub(crate) struct F32Products<S, const KR: usize, const QV: usize, const MR: usize, const NV: usize>(
    std::marker::PhantomData<S>,
);

impl<S: Simd, T: Element, const KR: usize, const QV: usize, const MR: usize, const NV: usize>
    Products<T> for F32Products<S, KR, QV, MR, NV>
{
    const QW: usize = QV * S::LANES;
    const MR: usize = MR;
    const KR: usize = KR;

    #[inline(always)]
    unsafe fn load_q(ws: &mut Scratch, q: *const T, d: usize, nq: usize, act: usize) {
        let l = S::LANES;
        let qw = QV * l;
        let dp = d.div_ceil(l) * l;
        let qt = ws.qt.get(act * d).as_mut_ptr();
        let row = ws.row.get(dp).as_mut_ptr();
        // Qᵀ panels [act/qw][d][qw]; query lanes past nq are zero.
        for r in 0..act {
            if r < nq {
                convert_row::<S, T>(q.add(r * d), row, d, dp);
            } else {
                std::ptr::write_bytes(row, 0, dp);
            }
            let panel = qt.add((r / qw) * d * qw + r % qw);
            for dd in 0..d {
                *panel.add(dd * qw) = *row.add(dd);
            }
        }
    }

    #[inline(always)]
    unsafe fn scores(
        ws: &mut Scratch,
        k: *const T,
        d: usize,
        nk: usize,
        act: usize,
        st: *mut f32,
        lds: usize,
    ) {
        let l = S::LANES;
        let qw = QV * l;
        let dp = d.div_ceil(l) * l;
        let kf = ws.kf.get(nk.div_ceil(KR) * KR * dp).as_mut_ptr();
        let qt = ws.qt.get(act * d).as_ptr();
        for jj in 0..nk {
            convert_row::<S, T>(k.add(jj * d), kf.add(jj * dp), d, dp);
        }
        // Sᵀ = Kf · Qᵀ (rows past nk are computed from stale Kf rows and never read).
        let mut kg = 0;
        while kg < nk {
            for pnl in 0..act / qw {
                s_tile::<S, KR, QV>(
                    d,
                    kf.add(kg * dp),
                    dp,
                    qt.add(pnl * d * qw),
                    st.add(kg * lds + pnl * qw),
                    lds,
                );
            }
            kg += KR;
        }
    }

    #[inline(always)]
    unsafe fn values(
        ws: &mut Scratch,
        v: *const T,
        _pairs: *const u32,
        d: usize,
        nk: usize,
        act: usize,
        st: *const f32,
        lds: usize,
        o: *mut f32,
        dp: usize,
        alpha: *const f32,
        first: bool,
    ) {
        let l = S::LANES;
        // Vf converted only now, so the S phase has L1 to itself (Qᵀ + Kf).
        let vf = ws.vf.get(nk * dp).as_mut_ptr();
        for jj in 0..nk {
            convert_row::<S, T>(v.add(jj * d), vf.add(jj * dp), d, dp);
        }
        // O = α·O + P·Vf, column panels outer so a Vf panel stays in L1 across the row tiles.
        let nvp = dp / l;
        let mut dc = 0;
        while dc < nvp {
            let nv = NV.min(nvp - dc);
            let mut r0 = 0;
            while r0 < act {
                pv_tile_n::<S, f32, MR, NV>(
                    nv,
                    nk,
                    st.add(r0),
                    1,
                    lds,
                    vf.add(dc * l),
                    dp,
                    o.add(r0 * dp + dc * l),
                    dp,
                    alpha.add(r0),
                    first,
                );
                r0 += MR;
            }
            dc += nv;
        }
    }
}

/// One column vector of the softmax: `P = 2^(Sᵀ·c − r)` for keys `0..nk` of the column at `col`
/// (row stride `bq`), written back into the column in f32, or with [`Products::P_PAIRS`] as bf16
/// pairs at `pp_col` (pair `jp` at `pp_col + jp·act`, Sᵀ left as it is). Returns `Σ P` and the
/// maximum of the column's values and `mx`.
///
/// # Safety
/// As [`task`]: the column holds `nk` rows; `pp_col` (with `P_PAIRS`) `nk.div_ceil(2)` rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn exp_column<S: Simd, T: Element, P: Products<T>>(
    col: *mut f32,
    bq: usize,
    nk: usize,
    csplat: S::V,
    r: S::V,
    mx: S::V,
    pp_col: *mut u32,
    act: usize,
) -> (S::V, S::V) {
    let l = S::LANES;
    // P of keys jj and jj + 1 (`p1` zero past the last key) as pairs, through a stack copy the
    // compiler keeps in registers.
    let mut two = [0f32; 32];
    let neg = S::sub(S::zero(), r);
    let (mut s0, mut s1, mut m0, mut m1) = (S::zero(), S::zero(), mx, mx);
    let mut jj = 0;
    while jj + 1 < nk {
        let (x0, x1) = (S::load(col.add(jj * bq)), S::load(col.add((jj + 1) * bq)));
        m0 = S::max(x0, m0);
        m1 = S::max(x1, m1);
        let (p0, p1) = if P::P_PAIRS {
            // P is rounded to bf16 next: the shorter polynomial (relative error ≤ 1e-4).
            (
                S::exp2_p(S::fma(x0, csplat, neg)),
                S::exp2_p(S::fma(x1, csplat, neg)),
            )
        } else {
            (
                S::exp2(S::fma(x0, csplat, neg)),
                S::exp2(S::fma(x1, csplat, neg)),
            )
        };
        if P::P_PAIRS {
            S::store(two.as_mut_ptr(), p0);
            S::store(two.as_mut_ptr().add(l), p1);
            P::store_p_pairs(two.as_ptr(), two.as_ptr().add(l), pp_col.add(jj / 2 * act));
        } else {
            S::store(col.add(jj * bq), p0);
            S::store(col.add((jj + 1) * bq), p1);
        }
        s0 = S::add(s0, p0);
        s1 = S::add(s1, p1);
        jj += 2;
    }
    if jj < nk {
        let x0 = S::load(col.add(jj * bq));
        m0 = S::max(x0, m0);
        let p0 = if P::P_PAIRS {
            S::exp2_p(S::fma(x0, csplat, neg))
        } else {
            S::exp2(S::fma(x0, csplat, neg))
        };
        if P::P_PAIRS {
            S::store(two.as_mut_ptr(), p0);
            S::store(two.as_mut_ptr().add(l), S::zero());
            P::store_p_pairs(two.as_ptr(), two.as_ptr().add(l), pp_col.add(jj / 2 * act));
        } else {
            S::store(col.add(jj * bq), p0);
        }
        s0 = S::add(s0, p0);
    }
    (S::add(s0, s1), S::max(m0, m1))
}

/// How far (log2) the scaled running max of a query may grow past the reference its P are taken
/// against before the reference moves and O is rescaled: P = 2^(s·c − ref) ≤ 2^RESCALE_LOG2, so
/// P and O grow by at most 256× between rescalings — far from f32's range, with the same relative
/// rounding — while most K/V tiles after the first leave the reference, and so O, as they are
/// (α exactly 1, which the AMX products skip): a conditional rescaling, as FlashAttention-4
/// rescales only past a threshold.
const RESCALE_LOG2: f32 = 8.0;

/// One task: query block `qb` of flat head `bh = b·q_heads + h`, with the products `P` and the
/// softmax on the SIMD vocabulary `S`.
///
/// # Safety
/// The ISA of `S` (and of `P`) is available; `cx` describes validated buffers; no other task
/// writes this task's output rows.
#[inline(always)]
pub(crate) unsafe fn task<S: Simd, T: Element, O: Element, P: Products<T>>(
    cx: &Ctx<'_, T, O>,
    ws: &mut Scratch,
    bh: usize,
    qb: usize,
) {
    let p = &cx.p;
    let l = S::LANES;
    let (qw, mr) = (P::QW, P::MR);
    let bq = cx.bq;
    let bk = cx.bk;
    debug_assert!(
        bq.is_multiple_of(qw)
            && bq.is_multiple_of(mr)
            && bq.is_multiple_of(l)
            && bk.is_multiple_of(P::KR)
    );
    let (d, q_len, kv_len) = (p.head_dim, p.q_len, p.kv_len);
    let dp = d.div_ceil(l) * l;
    let (b, h) = (bh / p.q_heads, bh % p.q_heads);
    let g = match cx.mutation {
        Mutation::WrongKvHead => h % p.kv_heads,
        _ => h / p.group(),
    };
    let i0 = qb * bq;
    let nq = bq.min(q_len - i0);
    // Lanes computed: whole S panels and PV row tiles covering the valid queries.
    let act = (nq.div_ceil(lcm(qw, mr)) * lcm(qw, mr)).min(bq);
    let q_base = cx.q.as_ptr().add((bh * q_len + i0) * d);
    let kv_off = (b * p.kv_heads + g) * kv_len * d;
    let k_base = cx.k.as_ptr().add(kv_off);
    let v_base = cx.v.as_ptr().add(kv_off);
    let c = p.scale * LOG2_E;

    // The task's own buffers (the products keep theirs in `ws` too), as raw pointers: the
    // products borrow `ws` between uses. Sᵀ has room for a last partial group of KR keys.
    let st = ws.st.get((bk + P::KR) * bq).as_mut_ptr();
    let o = ws.o.get(bq * dp).as_mut_ptr();
    let stats = ws.stats.get(4 * bq).as_mut_ptr();
    let (m, mc, lsum, alpha) = (stats, stats.add(bq), stats.add(2 * bq), stats.add(3 * bq));

    P::enter();
    P::load_q(ws, q_base, d, nq, act);
    for i in 0..act {
        *m.add(i) = f32::NEG_INFINITY;
        *mc.add(i) = f32::NEG_INFINITY;
        *lsum.add(i) = 0.0;
    }

    // Causal: query i sees keys 0..=off + i. Past kv_end no valid query of the block sees a key.
    let off = (kv_len - q_len) as i64;
    let slack = i64::from(cx.mutation == Mutation::MaskOffByOne);
    let kv_end = if p.causal {
        kv_len.min((off + (i0 + nq) as i64 + slack) as usize)
    } else {
        kv_len
    };
    let csplat = S::splat(c);
    let rescale_log2 = S::splat(RESCALE_LOG2);
    // P as pairs of keys for the products that take them: up to bk/2 pairs, rounded up to
    // whole tile steps of 16, of up to bq queries (the products' own `get` of it is no larger,
    // so the buffer is not moved).
    let pp = if P::P_PAIRS {
        debug_assert!(l == 16);
        ws.pp
            .get(bk.div_ceil(2).div_ceil(16) * 16 * bq)
            .as_mut_ptr() as *mut u32
    } else {
        std::ptr::null_mut()
    };
    let mut first = true;
    let mut j0 = 0;
    while j0 < kv_end {
        let nk = bk.min(kv_end - j0);
        P::scores(ws, k_base.add(j0 * d), d, nk, act, st, bq);
        // Causal mask, only on tiles that cross the diagonal: key j0+jj is hidden from lanes
        // i < j0 + jj − off − i0.
        if p.causal && (j0 + nk) as i64 - 1 > off + i0 as i64 + slack {
            for jj in 0..nk {
                let thr = (j0 + jj) as i64 - off - i0 as i64 - slack;
                let mut cv = 0;
                while cv * l < act && thr - (cv * l) as i64 > 0 {
                    let ptr = st.add(jj * bq + cv * l);
                    S::store(ptr, S::mask_below(S::load(ptr), thr - (cv * l) as i64));
                    cv += 1;
                }
            }
        }
        // Online softmax down the columns of Sᵀ, one vector of queries at a time.
        for cv in 0..act / l {
            let col = st.add(cv * l);
            let m_old = S::load(m.add(cv * l));
            let mc_old = S::load(mc.add(cv * l));
            let pp_col = if P::P_PAIRS {
                pp.add(cv * l)
            } else {
                std::ptr::null_mut()
            };
            // No closures here: a closure is not compiled with the ISA of the function it is in,
            // so unless it is inlined its intrinsics become calls (measured 16× slower).
            //
            // The reference moves only when the scaled max grew by more than RESCALE_LOG2
            // (always on the first tile, where it is −∞): elsewhere it stays, α = 2^0 = 1
            // exactly and O is not rescaled, and P ≤ 2^RESCALE_LOG2.
            let (mx, mcn, sum) = if P::P_PAIRS && !first {
                // One pass against the current reference, the max taken alongside (P goes to
                // the pairs, so Sᵀ is still there to read again); a second pass only where the
                // max outgrew the reference, which after the first tiles is rare. The same
                // values as the two passes below.
                let (sum, mx) =
                    exp_column::<S, T, P>(col, bq, nk, csplat, mc_old, m_old, pp_col, act);
                let top = S::mul(mx, csplat);
                let mcn = S::select_gt(S::sub(top, mc_old), rescale_log2, top, mc_old);
                let moved = S::select_gt(S::sub(mcn, mc_old), S::zero(), S::splat(1.0), S::zero());
                if S::hsum(moved) > 0.0 {
                    let (sum, _) = exp_column::<S, T, P>(col, bq, nk, csplat, mcn, mx, pp_col, act);
                    (mx, mcn, sum)
                } else {
                    (mx, mc_old, sum)
                }
            } else {
                // The max first, then P against the reference it gives.
                let mut mx0 = m_old;
                let mut mx1 = mx0;
                let mut jj = 0;
                while jj + 1 < nk {
                    mx0 = S::max(S::load(col.add(jj * bq)), mx0);
                    mx1 = S::max(S::load(col.add((jj + 1) * bq)), mx1);
                    jj += 2;
                }
                if jj < nk {
                    mx0 = S::max(S::load(col.add(jj * bq)), mx0);
                }
                let mx = S::max(mx0, mx1);
                let top = S::mul(mx, csplat);
                let mcn = S::select_gt(S::sub(top, mc_old), rescale_log2, top, mc_old);
                let (sum, _) = exp_column::<S, T, P>(col, bq, nk, csplat, mcn, mx, pp_col, act);
                (mx, mcn, sum)
            };
            // α = 2^(r − r'); the first tile gives 2^(−∞) = 0.
            let al = S::exp2(S::sub(mc_old, mcn));
            let ls = S::fma(S::load(lsum.add(cv * l)), al, sum);
            S::store(lsum.add(cv * l), ls);
            S::store(m.add(cv * l), mx);
            S::store(mc.add(cv * l), mcn);
            let al = if cx.mutation == Mutation::NoRescale {
                S::splat(1.0)
            } else {
                al
            };
            S::store(alpha.add(cv * l), al);
        }
        // Whole tiles read V as pairs where the call packed them once per KV head.
        let pairs = if nk == bk && !cx.v_pairs.get().is_null() {
            cx.v_pairs
                .get()
                .add(((b * p.kv_heads + g) * cx.v_pairs_len + j0 / 2) * dp)
                as *const u32
        } else {
            std::ptr::null()
        };
        P::values(
            ws,
            v_base.add(j0 * d),
            pairs,
            d,
            nk,
            act,
            st,
            bq,
            o,
            dp,
            alpha,
            first,
        );
        first = false;
        j0 += nk;
    }

    // O / l, rounded once.
    P::leave();
    let out = cx.out.get().add((bh * q_len + i0) * d);
    P::write_out::<S, O>(ws, o, dp, act, nq, lsum, out, d);
}
