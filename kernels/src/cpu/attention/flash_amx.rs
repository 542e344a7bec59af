//! The products of `flash.amx`: both GEMMs of the flash task on AMX tiles (`tdpbf16ps`), for bf16
//! inputs on CPUs with AMX-BF16 and a head_dim that is a multiple of 32 (one tile step). The task
//! itself — tiling, causal mask, online softmax in f32, output — is [`super::flash::task`].
//!
//! - `Sᵀ = K·Qᵀ`, a 16-key × 16-query f32 tile per (key group, query panel): the A tile is 16 K
//!   rows × 32 values of d read in place (row stride head_dim; a last partial group of keys is
//!   copied into a zero-padded block first, so no load reaches past the K tile), the B tile 16
//!   d-pairs × 16 queries of Q packed once per task as pairs (the `vdpbf16ps` path's Q panels with
//!   one vector of queries). Products of bf16 are exact in f32 and accumulate in f32, as on the
//!   other paths.
//! - `Oᵀ = α·Oᵀ + Vᵀ·Pᵀ`, O held transposed (d rows × the task's queries), a 16-column ×
//!   16-query f32 tile per (column block, query panel): columns of queries whose α are all
//!   exactly 1 are left as they are, the others scaled in place, then the tile is loaded; the A
//!   tile is V as 16 columns × 16 pairs of consecutive keys (packed once per call for whole K/V
//!   tiles), the B tile P rounded to bf16 (round to nearest even, as `flash.avx512bf16` and
//!   PyTorch do; the same error bound) as 16 key-pairs × 16 queries — the layout the softmax's
//!   Pᵀ is packed in, so P is never transposed. Keys are padded with zero pairs to whole tile
//!   steps of 32. The task's output is written from Oᵀ at its end ([`Products::write_out`]).
//!   Against the former `O = α·O + P·V` (P transposed 16 × 16 per K/V tile): BENCHMARKS.md
//!   "`flash.amx`: O transposed, conditional rescaling, P paired by the softmax in one pass".
//!
//! Both products run in squares of four tiles ([`square_of_tiles`]: two A tiles × two B tiles on
//! four accumulators, one tile load per `tdpbf16ps`); edges (a last odd key group or query panel)
//! take [`row_of_tiles`]. The tile configuration is loaded once per task ([`Products::enter`]).
//! Tasks take 96 queries ([`super::FlashTiles::amx`]). Measured against one A tile shared by
//! three B tiles, configured per product call: BENCHMARKS.md "`flash.amx`: squares of tiles, the
//! configuration once per task".

use super::flash::{write_rows, Products, Scratch};
use super::flash_bf16::{pack_vt_pairs, store_p_pairs, PairProducts};
use crate::cpu::matmul::micro::amx;
use crate::cpu::simd::Simd;
use crate::dtype::{DType, Element};
use half::bf16;
use std::arch::asm;
use std::arch::x86_64::*;

/// Rows and columns of a tile of C (f32), and k-pairs per tile step.
const T: usize = 16;

/// AMX products: S tiles of 16 keys × 16 queries, P·V tiles of 16 queries × 16 columns.
pub(crate) struct AmxProducts;

impl Products<bf16> for AmxProducts {
    const QW: usize = T;
    const MR: usize = T;
    const KR: usize = T;
    const P_PAIRS: bool = true;

    #[inline(always)]
    unsafe fn enter() {
        amx::configure();
    }

    #[inline(always)]
    unsafe fn leave() {
        amx::release();
    }

    #[inline(always)]
    unsafe fn store_p_pairs(p0: *const f32, p1: *const f32, dst: *mut u32) {
        store_p_pairs(p0, p1, dst)
    }

    #[inline(always)]
    unsafe fn load_q(ws: &mut Scratch, q: *const bf16, d: usize, nq: usize, act: usize) {
        // Panels of 16 queries, `[d/2][16]` words each: pairs 16c..16c+16 are one B tile.
        <PairProducts<T, 1, T, 1> as Products<bf16>>::load_q(ws, q, d, nq, act)
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
        debug_assert!(
            d.is_multiple_of(2 * T),
            "supports() requires head_dim % 32 == 0"
        );
        let dp2 = d / 2;
        let steps = d / (2 * T);
        let qp = ws.qt.get(act * dp2).as_ptr() as *const u8;
        // The zero-padded copy of a last partial group of keys: 16 rows of d bf16.
        let kpad = ws.kf.get(T * d / 2).as_mut_ptr() as *mut u16;
        let k = k as *const u16;
        let panels = act / T;
        let bl = Operand {
            ptr: std::ptr::null(),
            ld: 64,
            step: 1024,
        };
        let qpanel = |p: usize| qp.add(p * dp2 * T * 4);
        // Pairs of whole key groups × pairs of query panels on four accumulators.
        let al = Operand {
            ptr: std::ptr::null(),
            ld: 2 * d,
            step: 64,
        };
        let mut kg = 0;
        while kg + 2 * T <= nk {
            let a = [k.add(kg * d) as *const u8, k.add((kg + T) * d) as *const u8];
            let mut p0 = 0;
            while p0 + 2 <= panels {
                square_of_tiles(
                    steps,
                    a,
                    al,
                    [qpanel(p0), qpanel(p0 + 1)],
                    bl,
                    st.add(kg * lds + p0 * T),
                    st.add((kg + T) * lds + p0 * T),
                    4 * lds,
                    false,
                );
                p0 += 2;
            }
            if p0 < panels {
                for (i, ai) in a.into_iter().enumerate() {
                    let c = st.add((kg + i * T) * lds + p0 * T);
                    row_of_tiles(
                        1,
                        steps,
                        Operand { ptr: ai, ..al },
                        [qpanel(p0); 3],
                        bl,
                        [c; 3],
                        4 * lds,
                        false,
                    );
                }
            }
            kg += 2 * T;
        }
        // The rest one key group at a time.
        while kg < nk {
            let rows = T.min(nk - kg);
            let kp = if rows == T {
                k.add(kg * d)
            } else {
                std::ptr::copy_nonoverlapping(k.add(kg * d), kpad, rows * d);
                std::ptr::write_bytes(kpad.add(rows * d), 0, (T - rows) * d);
                kpad as *const u16
            };
            let a = Operand {
                ptr: kp as *const u8,
                ..al
            };
            // Up to three query panels share each A tile.
            let mut p0 = 0;
            while p0 < panels {
                let n = 3.min(panels - p0);
                let c: [*mut f32; 3] =
                    std::array::from_fn(|i| st.add(kg * lds + (p0 + i.min(n - 1)) * T));
                let b: [*const u8; 3] = std::array::from_fn(|i| qpanel(p0 + i.min(n - 1)));
                row_of_tiles(n, steps, a, b, bl, c, 4 * lds, false);
                p0 += n;
            }
            kg += T;
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
        debug_assert!(dp == d && d.is_multiple_of(2 * T));
        let np = nk.div_ceil(2);
        // Pairs padded to whole tile steps; the padding pairs are zero in P and in V.
        let npp = np.div_ceil(T) * T;
        // Pᵀ as pairs of keys per query, `pp[jp·act + i]`, written by the softmax (P_PAIRS):
        // rows of 16 pairs are B tiles as they stand (16 pairs × 16 queries), so P needs no
        // transposing. The padding pairs are zeroed here.
        let pp = ws.pp.get(npp * act).as_mut_ptr() as *mut u32;
        std::ptr::write_bytes(pp.add(np * act), 0, (npp - np) * act);
        // Vᵀ as pairs, `vt[c·npp + jp]`: packed once per call for whole tiles (np = npp there),
        // else here.
        let vt = if pairs.is_null() || npp != np {
            let vt = ws.vf.get(npp * dp).as_mut_ptr() as *mut u32;
            pack_vt_pairs(v as *const u16, d, nk, npp, vt);
            vt as *const u32
        } else {
            pairs
        };
        // O is held transposed, `o[c·act + i]`.
        if !first {
            for qv in 0..act / T {
                let a = _mm512_loadu_ps(alpha.add(qv * T));
                // α = 1 where a query's max did not grow (most after the first tiles): columns
                // whose 16 queries all keep theirs are left as they are, what the product by 1
                // gives.
                if _mm512_cmpneq_ps_mask(a, _mm512_set1_ps(1.0)) == 0 {
                    continue;
                }
                for c in 0..dp {
                    let at = o.add(c * act + qv * T);
                    _mm512_storeu_ps(at, _mm512_mul_ps(_mm512_loadu_ps(at), a));
                }
            }
        }
        let panels = act / T;
        // Oᵀ tiles (column blocks cb, cb + 1; query panels ib, ib + 1) += Vᵀ tiles (cb, step) ·
        // Pᵀ tiles (step, ib): head_dim is a multiple of 32, so the column blocks pair up; a
        // last odd query panel takes one column block at a time.
        let bl = Operand {
            ptr: std::ptr::null(),
            ld: 4 * act,
            step: 4 * T * act,
        };
        let al = Operand {
            ptr: std::ptr::null(),
            ld: 4 * npp,
            step: 64,
        };
        let vblock = |cb: usize| vt.add(cb * T * npp) as *const u8;
        let ppanel = |ib: usize| pp.add(ib * T) as *const u8;
        for cb in (0..dp / T).step_by(2) {
            let mut ib = 0;
            while ib + 2 <= panels {
                square_of_tiles(
                    npp / T,
                    [vblock(cb), vblock(cb + 1)],
                    al,
                    [ppanel(ib), ppanel(ib + 1)],
                    bl,
                    o.add(cb * T * act + ib * T),
                    o.add((cb + 1) * T * act + ib * T),
                    4 * act,
                    !first,
                );
                ib += 2;
            }
            if ib < panels {
                for i in 0..2 {
                    let c = o.add((cb + i) * T * act + ib * T);
                    let a = Operand {
                        ptr: vblock(cb + i),
                        ..al
                    };
                    row_of_tiles(1, npp / T, a, [ppanel(ib); 3], bl, [c; 3], 4 * act, !first);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn write_out<S: Simd, O: Element>(
        ws: &mut Scratch,
        o: *mut f32,
        dp: usize,
        act: usize,
        nq: usize,
        lsum: *const f32,
        out: *mut O,
        d: usize,
    ) {
        debug_assert!(dp == d);
        if O::DTYPE == DType::BF16 {
            // Oᵀ (`o[c·act + i]`) scaled by 1/l per query (lane), 16 × 16 at a time, transposed
            // into 16 columns of 16 queries' rows, rounded and stored as bf16.
            let out = out as *mut u16;
            for ib in 0..act / T {
                let s = _mm512_div_ps(_mm512_set1_ps(1.0), _mm512_loadu_ps(lsum.add(ib * T)));
                let rows = T.min(nq.saturating_sub(ib * T));
                if rows == 0 {
                    break;
                }
                for cb in 0..dp / T {
                    // No closure here (its intrinsics would not get the ISA, [`super::flash`]).
                    let mut r = [_mm512_setzero_ps(); T];
                    for (cc, x) in r.iter_mut().enumerate() {
                        let at = o.add((cb * T + cc) * act + ib * T);
                        *x = _mm512_mul_ps(_mm512_loadu_ps(at), s);
                    }
                    let t = crate::cpu::matmul::pack::transpose16(r);
                    for (i, x) in t.iter().enumerate().take(rows) {
                        let dst = out.add((ib * T + i) * d + cb * T) as *mut __m256i;
                        _mm256_storeu_si256(dst, bf16_rne(*x));
                    }
                }
            }
            return;
        }
        // Other output types: O's rows gathered, then written as by the other products.
        let rows = ws.pa.get(act * dp).as_mut_ptr();
        for cb in 0..dp / T {
            for ib in 0..act / T {
                let mut r = [_mm512_setzero_ps(); T];
                for (cc, x) in r.iter_mut().enumerate() {
                    *x = _mm512_loadu_ps(o.add((cb * T + cc) * act + ib * T));
                }
                for (i, x) in crate::cpu::matmul::pack::transpose16(r).iter().enumerate() {
                    _mm512_storeu_ps(rows.add((ib * T + i) * dp + cb * T), *x);
                }
            }
        }
        write_rows::<S, O>(ws, rows, dp, nq, lsum, out, d)
    }
}

/// 16 f32 rounded to bf16 (round to nearest even; a NaN stays a NaN, quieted), as
/// [`crate::dtype::Element::slice_from_f32`] rounds for bf16: subnormals kept, not flushed.
#[inline(always)]
unsafe fn bf16_rne(x: __m512) -> __m256i {
    let x = _mm512_castps_si512(x);
    let hi = _mm512_srli_epi32::<16>(x);
    let lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(
        x,
        _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb),
    ));
    let nan = _mm512_cmpgt_epi32_mask(
        _mm512_and_si512(x, _mm512_set1_epi32(0x7FFF_FFFF)),
        _mm512_set1_epi32(0x7F80_0000),
    );
    let v = _mm512_mask_or_epi32(rounded, nan, hi, _mm512_set1_epi32(0x40));
    _mm512_cvtepi32_epi16(v)
}

/// A tile operand walked along k: `ptr` at the first tile step, row stride `ld` bytes, `step`
/// bytes from one tile step to the next.
#[derive(Clone, Copy)]
struct Operand {
    ptr: *const u8,
    ld: usize,
    step: usize,
}

/// `C_i (+)= A · B_i` for `i < n` (n in 1..=3) over `steps` tile steps: one A tile (tmm4) shared by
/// up to three B tiles (tmm5–tmm7) and accumulators (tmm0–tmm2), so the `tdpbf16ps` of one step
/// are independent and each A tile is loaded once. `b` holds the B tiles' first steps (row stride
/// and step of `bl`), `c` the C tiles (row stride `ldc` bytes; loaded when `load_c`, else zero).
/// Entries of `b` and `c` from `n` on are ignored.
///
/// # Safety
/// The tile configuration of [`amx::configure`] is loaded; every tile read or written is in
/// bounds.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn row_of_tiles(
    n: usize,
    steps: usize,
    a: Operand,
    b: [*const u8; 3],
    bl: Operand,
    c: [*mut f32; 3],
    ldc: usize,
    load_c: bool,
) {
    debug_assert!((1..=3).contains(&n) && steps > 0);
    // Unused accumulators of n < 3 point at C tile n − 1 (the callers repeat it): they are
    // loaded, never multiplied, and stored back unchanged before tile n − 1 is stored last.
    if load_c {
        asm!(
            "tileloadd tmm0, [{c0} + {ldc}*1]",
            "tileloadd tmm1, [{c1} + {ldc}*1]",
            "tileloadd tmm2, [{c2} + {ldc}*1]",
            c0 = in(reg) c[0], c1 = in(reg) c[1], c2 = in(reg) c[2], ldc = in(reg) ldc,
            options(nostack, readonly),
        );
    } else {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            options(nostack, nomem)
        );
    }
    match n {
        3 => asm!(
            "2:",
            "tileloadd tmm4, [{a} + {lda}*1]",
            "tileloadd tmm5, [{b0} + {ldb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm5",
            "tileloadd tmm6, [{b1} + {ldb}*1]",
            "tdpbf16ps tmm1, tmm4, tmm6",
            "tileloadd tmm7, [{b2} + {ldb}*1]",
            "tdpbf16ps tmm2, tmm4, tmm7",
            "add {a}, {astep}",
            "add {b0}, {bstep}",
            "add {b1}, {bstep}",
            "add {b2}, {bstep}",
            "dec {n}",
            "jnz 2b",
            a = inout(reg) a.ptr => _, lda = in(reg) a.ld, astep = in(reg) a.step,
            b0 = inout(reg) b[0] => _, b1 = inout(reg) b[1] => _, b2 = inout(reg) b[2] => _,
            ldb = in(reg) bl.ld, bstep = in(reg) bl.step,
            n = inout(reg) steps => _,
            options(nostack, readonly),
        ),
        2 => asm!(
            "2:",
            "tileloadd tmm4, [{a} + {lda}*1]",
            "tileloadd tmm5, [{b0} + {ldb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm5",
            "tileloadd tmm6, [{b1} + {ldb}*1]",
            "tdpbf16ps tmm1, tmm4, tmm6",
            "add {a}, {astep}",
            "add {b0}, {bstep}",
            "add {b1}, {bstep}",
            "dec {n}",
            "jnz 2b",
            a = inout(reg) a.ptr => _, lda = in(reg) a.ld, astep = in(reg) a.step,
            b0 = inout(reg) b[0] => _, b1 = inout(reg) b[1] => _,
            ldb = in(reg) bl.ld, bstep = in(reg) bl.step,
            n = inout(reg) steps => _,
            options(nostack, readonly),
        ),
        _ => asm!(
            "2:",
            "tileloadd tmm4, [{a} + {lda}*1]",
            "tileloadd tmm5, [{b0} + {ldb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm5",
            "add {a}, {astep}",
            "add {b0}, {bstep}",
            "dec {n}",
            "jnz 2b",
            a = inout(reg) a.ptr => _, lda = in(reg) a.ld, astep = in(reg) a.step,
            b0 = inout(reg) b[0] => _,
            ldb = in(reg) bl.ld, bstep = in(reg) bl.step,
            n = inout(reg) steps => _,
            options(nostack, readonly),
        ),
    }
    // Stored in reverse, so the tile that repeats tile n − 1 is overwritten by its real value.
    asm!(
        "tilestored [{c2} + {ldc}*1], tmm2",
        "tilestored [{c1} + {ldc}*1], tmm1",
        "tilestored [{c0} + {ldc}*1], tmm0",
        c0 = in(reg) c[0], c1 = in(reg) c[1], c2 = in(reg) c[2], ldc = in(reg) ldc,
        options(nostack),
    );
}

/// `C[i][j] (+)= A_i · B_j` for `i, j < 2` over `steps` tile steps: two A tiles (tmm4, tmm5) and
/// two B tiles (tmm6, tmm7) per step feed four accumulators (tmm0–tmm3: the 32 × 32 f32 tile of C
/// as the matmul's AMX kernel holds it, rows 0–15 at `c`, rows 16–31 at `c_low`, columns 16–31
/// 64 bytes on), so each step loads four tiles for four `tdpbf16ps` (against four for three in
/// [`row_of_tiles`]) and each accumulator's products are four apart. `a`/`b` hold the A/B tiles'
/// first steps (row stride and step of `al`/`bl`), C has row stride `ldc` bytes (loaded when
/// `load_c`, else zero).
///
/// # Safety
/// As [`row_of_tiles`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn square_of_tiles(
    steps: usize,
    a: [*const u8; 2],
    al: Operand,
    b: [*const u8; 2],
    bl: Operand,
    c: *mut f32,
    c_low: *mut f32,
    ldc: usize,
    load_c: bool,
) {
    debug_assert!(steps > 0);
    amx::start_c(c, c_low, ldc, load_c);
    asm!(
        "2:",
        "tileloadd tmm4, [{a0} + {lda}*1]",
        "tileloadd tmm6, [{b0} + {ldb}*1]",
        "tdpbf16ps tmm0, tmm4, tmm6",
        "tileloadd tmm7, [{b1} + {ldb}*1]",
        "tdpbf16ps tmm1, tmm4, tmm7",
        "tileloadd tmm5, [{a1} + {lda}*1]",
        "tdpbf16ps tmm2, tmm5, tmm6",
        "tdpbf16ps tmm3, tmm5, tmm7",
        "add {a0}, {astep}",
        "add {a1}, {astep}",
        "add {b0}, {bstep}",
        "add {b1}, {bstep}",
        "dec {n}",
        "jnz 2b",
        a0 = inout(reg) a[0] => _, a1 = inout(reg) a[1] => _,
        lda = in(reg) al.ld, astep = in(reg) al.step,
        b0 = inout(reg) b[0] => _, b1 = inout(reg) b[1] => _,
        ldb = in(reg) bl.ld, bstep = in(reg) bl.step,
        n = inout(reg) steps => _,
        options(nostack, readonly),
    );
    amx::store_c(c, c_low, ldc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    /// `bf16_rne` rounds as the bf16 output conversion every other path uses, ties, subnormals,
    /// infinities and NaN included.
    #[test]
    fn bf16_rne_matches_slice_from_f32() {
        if !crate::isa::Isa::Avx512f.available() {
            return;
        }
        #[target_feature(enable = "avx512f,avx512vl,avx512bw")]
        unsafe fn round(x: &[f32; 16]) -> [u16; 16] {
            let mut out = [0u16; 16];
            _mm256_storeu_si256(
                out.as_mut_ptr() as *mut __m256i,
                bf16_rne(_mm512_loadu_ps(x.as_ptr())),
            );
            out
        }
        let mut xs: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0,
            f32::from_bits(0x3F80_8000), // a tie, rounds to even (down)
            f32::from_bits(0x3F81_8000), // a tie, rounds to even (up)
            f32::from_bits(0x3F80_8001),
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0xFFC0_0001),
            f32::from_bits(0x7F80_0001), // a signalling NaN, quieted
            f32::from_bits(0x0000_8000), // subnormals
            f32::from_bits(0x0001_7FFF),
            f32::from_bits(0x807F_FFFF),
            f32::MIN_POSITIVE,
        ];
        let mut s = 0x1234_5678u32;
        xs.extend((0..4096).map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            f32::from_bits(s)
        }));
        for chunk in xs.chunks_exact(16) {
            let x: [f32; 16] = chunk.try_into().unwrap();
            let mut want = [bf16::ZERO; 16];
            <bf16 as Element>::slice_from_f32(&x, &mut want);
            let got = unsafe { round(&x) };
            for i in 0..16 {
                assert_eq!(got[i], want[i].to_bits(), "{:#010x}", x[i].to_bits());
            }
        }
    }
}
