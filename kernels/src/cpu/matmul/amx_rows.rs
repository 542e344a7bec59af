//! The AMX path for Bᵀ products with few rows of A (LLM projections at 2–64 tokens): B's rows
//! multiplied in place, no packing pass over B.
//!
//! `C = A · Bᵀ` is computed as `Cᵀ = B · Aᵀ`: 32 rows of B (row-major, k contiguous) are the A
//! operand of [`amx::kernel_rows`] exactly as stored, and A is packed once into the pair panels
//! of the AMX format's B operand (32 of A's rows per panel, each k-pair a word). Each 32 × 32
//! tile of Cᵀ is transposed into C. The loop nest instead packs all of B, a pass that reads and
//! writes the whole weight before the product reads it again; with M this small the product is
//! bound by reading B, so that pass was two of its three passes over B.

use super::micro::amx;
use super::Finish;
use crate::cpu::{AlignedBuf, SendPtr};
use rayon::prelude::*;
use std::cell::RefCell;

/// Values of k per block: a block's 32 rows of B (128 KiB at 2048) and each 32 rows of packed A
/// (the same) stay in L2 while every 32-row panel of A runs over them.
const KC: usize = 2048;

/// Groups of 32 rows of B that each panel of A runs over before the next panel, where A has more
/// than one: A is read once per group, B's rows of the group stay in L2. Against one group of 32
/// rows (`mmtime`, median of 4 alternated rounds, Intel Xeon family 6 model 207): 64×4096×14336
/// Bᵀ 1.13; with a single panel of A (16×6144×4096) 0.94 [0.76, 1.05], so one panel keeps groups
/// of one.
const GROUP: usize = 4;

thread_local! {
    /// The zero-padded copy of a last partial group of B's rows (32 × `KC` values).
    static EDGE: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
}

/// Whether [`gemm_bt_rows`] takes a Bᵀ product of this K: whole tile steps of k, as B's rows
/// are read in steps of 32 values in place.
pub(super) fn takes(k: usize) -> bool {
    k > 0 && k.is_multiple_of(amx::K_STEP)
}

/// `C (f32, ldc) = A · Bᵀ`, A `m × k` (bf16 bits, `lda`), B `n × k` (`ldb`), `k` a multiple of
/// 32 ([`takes`]). `apack` holds the packed A. `finish` is called once per finished range of C's
/// columns (all rows).
///
/// # Safety
/// The CPU has AMX-BF16 and this process may use tile data ([`crate::isa::detected`]); the
/// slices hold the operands as described.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_bt_rows(
    m: usize,
    n: usize,
    k: usize,
    a: &[u16],
    lda: usize,
    b: &[u16],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    apack: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    debug_assert!(takes(k));
    let (mr, nr) = (amx::MR, amx::NR);
    let m_panels = m.div_ceil(nr);
    // A as the kernel's B operand, k block by k block: block q (k from q·kc_first, kc values)
    // at word `q · block_words`, its panel of A's rows 32·ip.. at `ip · kc/2 · 32` in it.
    let kc_first = KC.min(k);
    let k_blocks = k.div_ceil(kc_first);
    let block_words = m_panels * (kc_first / 2) * nr;
    let ap: &mut [u32] = bytemuck::cast_slice_mut(apack.get(k_blocks * block_words));
    ap.par_chunks_mut(block_words)
        .enumerate()
        .for_each(|(q, dst)| {
            let pc = q * kc_first;
            let kc = kc_first.min(k - pc);
            super::gemm::pack_pair_panels(&a[pc..], lda, true, kc, m, nr, kc / 2, dst);
        });
    let ap: &[u32] = ap;

    let n_blocks = n.div_ceil(mr);
    let tasks = n_blocks.min(4 * rayon::current_num_threads().max(1));
    let c_ptr = SendPtr(c.as_mut_ptr());
    (0..tasks).into_par_iter().for_each(|task| {
        let (nb0, nb1) = (task * n_blocks / tasks, (task + 1) * n_blocks / tasks);
        // Cᵀ tiles of the current group of B's rows: 32 rows × one panel of A each, tile
        // (g, ip) for group member g and panel ip at `(g · m_panels + ip) · 32 · 32`.
        let mut ct = vec![0f32; GROUP * m_panels * mr * nr];
        EDGE.with(|edge| {
            let mut edge = edge.borrow_mut();
            amx::configure();
            let group = if m_panels > 1 { GROUP } else { 1 };
            for g0 in (nb0..nb1).step_by(group) {
                let g1 = (g0 + group).min(nb1);
                for q in 0..k_blocks {
                    let pc = q * kc_first;
                    let kc = kc_first.min(k - pc);
                    // Each member's 32 rows of B from column pc: in place, or the partial last
                    // group of N copied with zero rows below it.
                    let mut w = [(std::ptr::null::<u16>(), 0usize); GROUP];
                    for (nb, w) in (g0..g1).zip(&mut w) {
                        let (n0, rows) = (nb * mr, mr.min(n - nb * mr));
                        *w = if rows == mr {
                            (b.as_ptr().add(n0 * ldb + pc), ldb)
                        } else {
                            let e: &mut [u16] = bytemuck::cast_slice_mut(edge.get(mr * kc / 2));
                            for i in 0..mr {
                                let dst = &mut e[i * kc..(i + 1) * kc];
                                if i < rows {
                                    let src = (n0 + i) * ldb + pc;
                                    dst.copy_from_slice(&b[src..src + kc]);
                                } else {
                                    dst.fill(0);
                                }
                            }
                            (e.as_ptr(), kc)
                        };
                    }
                    // Each panel of A (from L3 for a large M) over every member's rows (in L2).
                    for ip in 0..m_panels {
                        let at = ap.as_ptr().add(q * block_words + ip * (kc / 2) * nr);
                        // At most 16 of A's rows in this panel: half the products.
                        let narrow = m - ip * nr <= nr / 2;
                        for (g, &(w, ldw)) in w[..g1 - g0].iter().enumerate() {
                            amx::kernel_rows(
                                kc / 2,
                                w,
                                ldw,
                                at,
                                ct.as_mut_ptr().add((g * m_panels + ip) * mr * nr),
                                nr,
                                q > 0,
                                narrow,
                            );
                        }
                    }
                }
                // Cᵀ[j][i] (row j of member g's rows of B, column i of panel ip) → C[i][n0 + j].
                for (g, nb) in (g0..g1).enumerate() {
                    let (n0, rows) = (nb * mr, mr.min(n - nb * mr));
                    for ip in 0..m_panels {
                        let t = &ct[(g * m_panels + ip) * mr * nr..][..mr * nr];
                        for i in 0..nr.min(m - ip * nr) {
                            let row = c_ptr.get().add((ip * nr + i) * ldc + n0);
                            for j in 0..rows {
                                *row.add(j) = t[j * nr + i];
                            }
                        }
                    }
                }
            }
            amx::release();
        });
        if let Some(f) = finish {
            let c0 = nb0 * mr;
            f(0, m, c0, (nb1 * mr).min(n) - c0);
        }
    });
}
