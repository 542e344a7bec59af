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
//! - `O = α·O + P·V`, a 16-query × 16-column f32 tile per (query panel, column block): O is scaled
//!   by α in place, then loaded into the tile; the A tile is P rounded to bf16 (round to nearest
//!   even, as `flash.avx512bf16` and PyTorch do; the same error bound) as 16 queries × 16 pairs
//!   of consecutive keys, the B tile V as 16 key-pairs × 16 columns (the `vdpbf16ps` path's V
//!   pairs). Keys are padded with zero pairs to whole tile steps of 32.

use super::flash::{Products, Scratch, BQ};
use super::flash_bf16::{pack_p_pairs, pack_v_pairs, PairProducts};
use crate::cpu::matmul::micro::amx;
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
        let qp = ws.qt.get(BQ * dp2).as_ptr() as *const u8;
        // The zero-padded copy of a last partial group of keys: 16 rows of d bf16.
        let kpad = ws.kf.get(T * d / 2).as_mut_ptr() as *mut u16;
        let k = k as *const u16;
        amx::configure();
        let mut kg = 0;
        while kg < nk {
            let rows = T.min(nk - kg);
            let kp = if rows == T {
                k.add(kg * d)
            } else {
                std::ptr::copy_nonoverlapping(k.add(kg * d), kpad, rows * d);
                std::ptr::write_bytes(kpad.add(rows * d), 0, (T - rows) * d);
                kpad as *const u16
            };
            for pnl in 0..act / T {
                asm!(
                    "tilezero tmm0",
                    "2:",
                    "tileloadd tmm4, [{k} + {ldk}*1]",
                    "tileloadd tmm5, [{q} + {s64}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm5",
                    "add {k}, 64",
                    "add {q}, 1024",
                    "dec {n}",
                    "jnz 2b",
                    "tilestored [{st} + {lds}*1], tmm0",
                    k = inout(reg) kp => _,
                    ldk = in(reg) 2 * d,
                    q = inout(reg) qp.add(pnl * dp2 * T * 4) => _,
                    s64 = in(reg) 64usize,
                    n = inout(reg) steps => _,
                    st = in(reg) st.add(kg * lds + pnl * T),
                    lds = in(reg) 4 * lds,
                    options(nostack),
                );
            }
            kg += T;
        }
        asm!("tilerelease", options(nostack, nomem));
    }

    #[inline(always)]
    unsafe fn values(
        ws: &mut Scratch,
        v: *const bf16,
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
        debug_assert!(dp == d && d.is_multiple_of(2 * T));
        let np = nk.div_ceil(2);
        // Pairs padded to whole tile steps; the padding pairs are zero in P and in V.
        let npp = np.div_ceil(T) * T;
        let pp = ws.pp.get(np * act).as_mut_ptr() as *mut u32;
        pack_p_pairs(st, lds, nk, act, pp);
        // P per query: pa[i·npp + jp], 16 × 16 blocks of pp transposed in registers.
        let pa = ws.pa.get(act * npp).as_mut_ptr() as *mut u32;
        for ib in 0..act / T {
            for jb in 0..npp / T {
                let mut r = [_mm512_setzero_ps(); T];
                for (jj, x) in r.iter_mut().enumerate() {
                    let jp = jb * T + jj;
                    if jp < np {
                        *x = _mm512_loadu_ps(pp.add(jp * act + ib * T) as *const f32);
                    }
                }
                let t = crate::cpu::matmul::pack::transpose16(r);
                for (i, x) in t.iter().enumerate() {
                    _mm512_storeu_ps(pa.add((ib * T + i) * npp + jb * T) as *mut f32, *x);
                }
            }
        }
        let vp = ws.vf.get(npp * dp).as_mut_ptr() as *mut u32;
        pack_v_pairs(v as *const u16, d, nk, dp, vp);
        std::ptr::write_bytes(vp.add(np * dp), 0, (npp - np) * dp);
        if !first {
            for i in 0..act {
                let a = _mm512_set1_ps(*alpha.add(i));
                let row = o.add(i * dp);
                for c in (0..dp).step_by(T) {
                    _mm512_storeu_ps(row.add(c), _mm512_mul_ps(_mm512_loadu_ps(row.add(c)), a));
                }
            }
        }
        amx::configure();
        for ib in 0..act / T {
            for cb in 0..dp / T {
                let oc = o.add(ib * T * dp + cb * T);
                if first {
                    asm!("tilezero tmm0", options(nostack, nomem));
                } else {
                    asm!(
                        "tileloadd tmm0, [{o} + {ldo}*1]",
                        o = in(reg) oc,
                        ldo = in(reg) 4 * dp,
                        options(nostack, readonly),
                    );
                }
                asm!(
                    "2:",
                    "tileloadd tmm4, [{p} + {ldp}*1]",
                    "tileloadd tmm5, [{v} + {ldv}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm5",
                    "add {p}, 64",
                    "add {v}, {vstep}",
                    "dec {n}",
                    "jnz 2b",
                    "tilestored [{o} + {ldo}*1], tmm0",
                    p = inout(reg) pa.add(ib * T * npp) => _,
                    ldp = in(reg) 4 * npp,
                    v = inout(reg) vp.add(cb * T) => _,
                    ldv = in(reg) 4 * dp,
                    vstep = in(reg) 4 * T * dp,
                    n = inout(reg) npp / T => _,
                    o = in(reg) oc,
                    ldo = in(reg) 4 * dp,
                    options(nostack),
                );
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}
