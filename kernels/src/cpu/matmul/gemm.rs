//! The BLIS loop nest, generic over the micro-kernel.
//!
//! ```text
//! for jc in 0..n step NC            (B panel kc×NC lives in L3)
//!   for pc in 0..k step KC          (β = 0 on the first pc, then accumulate)
//!     pack B[pc.., jc..] → bpack     (shared; parallel over NR panels; f16/bf16 → f32 here)
//!     parallel for (ic block, jr range) tasks:
//!       pack A[ic.., pc..] → apack   (per-thread buffer in L2; f16/bf16 → f32 here)
//!       for jr in range               (B micro-panel kc×NR in L1)
//!         for ir in 0..mc step MR     (A micro-panels from L2)
//!           micro-kernel (full tile, or a scratch tile at the edges)
//! ```
//!
//! Tasks split M into MC blocks and, when that gives fewer than 4 tasks per thread, also split the
//! NR panels, so small M (LLM projections at 1–512 tokens) still uses every thread.

use super::micro::MicroKernel;
use super::pack::{pack_a, pack_b_panel, pack_bt_panel};
use super::Blocking;
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::Element;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// Per-thread packing buffers: (A block, conversion row). Grown on first use, then reused.
    static A_PACK: RefCell<(AlignedBuf, Vec<f32>)> = RefCell::new((AlignedBuf::default(), Vec::new()));
}

/// One batch of `C (f32, ldc) = A · op(B)`. `a` and `b` start at this batch's first element.
/// `bpack` is the shared B-panel buffer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<K: MicroKernel, T: Element>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    trans_b: bool,
    c: &mut [f32],
    ldc: usize,
    blocking: &Blocking,
    bpack: &mut AlignedBuf,
) {
    let (mr, nr) = (K::MR, K::NR);
    let kc_max = blocking.kc.max(1);
    let nc_max = blocking.nc.div_ceil(nr).max(1) * nr;
    let mc = blocking.mc.div_ceil(mr).max(1) * mr;
    let threads = rayon::current_num_threads().max(1);
    let c_ptr = SendPtr(c.as_mut_ptr());

    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        let n_panels = nc.div_ceil(nr);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let accumulate = pc > 0;

            // Pack B (shared by all tasks of this (jc, pc)).
            let bp = bpack.get(n_panels * kc * nr);
            bp.par_chunks_mut(kc * nr)
                .enumerate()
                .for_each(|(jp, dst)| {
                    let j0 = jc + jp * nr;
                    let nr_valid = nr.min(n - j0);
                    if trans_b {
                        A_PACK.with(|cell| {
                            let row = &mut cell.borrow_mut().1;
                            if row.len() < kc {
                                row.resize(kc, 0.0);
                            }
                            pack_bt_panel(&b[j0 * ldb + pc..], ldb, kc, nr, nr_valid, dst, row);
                        });
                    } else {
                        pack_b_panel(&b[pc * ldb + j0..], ldb, kc, nr, nr_valid, dst);
                    }
                });
            let bp: &[f32] = bp;

            // Tasks: M split into blocks of whole micro-panels whose sizes differ by at most one
            // panel (a multiple of `threads` blocks), and, for small M, N split as well, so the
            // work-stealing pool ends with balanced threads.
            let m_panels = m.div_ceil(mr);
            let m_blocks = m.div_ceil(mc).div_ceil(threads) * threads;
            let m_blocks = m_blocks.min(m_panels);
            let n_split = (2 * threads).div_ceil(m_blocks).clamp(1, n_panels);
            let panels_per_split = n_panels.div_ceil(n_split);
            (0..m_blocks * n_split).into_par_iter().for_each(|task| {
                let (ib, js) = (task / n_split, task % n_split);
                let ic = ib * m_panels / m_blocks * mr;
                let ic_end = ((ib + 1) * m_panels / m_blocks * mr).min(m);
                let mc_cur = ic_end - ic;
                let jp0 = js * panels_per_split;
                let jp1 = (jp0 + panels_per_split).min(n_panels);
                if jp0 >= jp1 || mc_cur == 0 {
                    return;
                }
                A_PACK.with(|cell| {
                    let (abuf, row) = &mut *cell.borrow_mut();
                    if row.len() < kc {
                        row.resize(kc, 0.0);
                    }
                    let ap = abuf.get(mc_cur.div_ceil(mr) * kc * mr);
                    pack_a(&a[ic * lda + pc..], lda, mc_cur, kc, mr, ap, row);
                    // SAFETY: tasks write disjoint (rows ic.., columns of panels jp0..jp1) tiles.
                    unsafe {
                        macro_kernel::<K>(
                            kc,
                            mc_cur,
                            ap,
                            bp,
                            jp0,
                            jp1,
                            n - jc,
                            c_ptr.get().add(ic * ldc + jc),
                            ldc,
                            accumulate,
                        );
                    }
                });
            });
        }
    }
}

/// Run micro-kernels over panels `jp0..jp1` of B and all micro-panels of the packed A block.
/// `n_rem` is the number of valid columns from the start of the B panel buffer.
///
/// # Safety
/// `c` addresses the block's top-left element with row stride `ldc`; the caller owns the tiles.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel<K: MicroKernel>(
    kc: usize,
    mc: usize,
    ap: &[f32],
    bp: &[f32],
    jp0: usize,
    jp1: usize,
    n_rem: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let (mr, nr) = (K::MR, K::NR);
    // Scratch for edge tiles, large enough for any micro-kernel here (≤ 16×32).
    let mut tile = [0f32; 16 * 32];
    debug_assert!(mr * nr <= tile.len());
    for jp in jp0..jp1 {
        let b_panel = bp.as_ptr().add(jp * kc * nr);
        let nr_cur = nr.min(n_rem - jp * nr);
        for ip in 0..mc.div_ceil(mr) {
            let a_panel = ap.as_ptr().add(ip * kc * mr);
            let mr_cur = mr.min(mc - ip * mr);
            let c_tile = c.add(ip * mr * ldc + jp * nr);
            if mr_cur == mr && nr_cur == nr {
                K::kernel(kc, a_panel, b_panel, c_tile, ldc, accumulate);
            } else {
                if accumulate {
                    for i in 0..mr_cur {
                        for j in 0..nr_cur {
                            tile[i * nr + j] = *c_tile.add(i * ldc + j);
                        }
                    }
                }
                K::kernel(kc, a_panel, b_panel, tile.as_mut_ptr(), nr, accumulate);
                for i in 0..mr_cur {
                    for j in 0..nr_cur {
                        *c_tile.add(i * ldc + j) = tile[i * nr + j];
                    }
                }
            }
        }
    }
}
