//! The BLIS loop nest, generic over the micro-kernel.
//!
//! ```text
//! for jc in 0..n step NC            (B panel kc×NC lives in L3)
//!   for pc in 0..k step KC          (β = 0 on the first pc, then accumulate)
//!     pack B[pc.., jc..] → bpack     (shared; parallel over row chunks of B [k, n] or NR
//!                                     panels of Bᵀ; f16/bf16 → f32 here, or bf16 k-pairs
//!                                     unconverted for the vdpbf16ps path)
//!     parallel for (ic block, jr range) tasks:
//!       pack A[ic.., pc..] → apack   (per-thread buffer in L2; f16/bf16 → f32 here)
//!       for jr in range               (B micro-panel kc×NR in L2, reused by every ir)
//!         for ir in 0..mc step MR     (A micro-panels from L2)
//!           micro-kernel (full tile, or a scratch tile at the edges)
//! ```
//!
//! Tasks split M into MC blocks and, when that gives fewer than 2 tasks per thread, also split the
//! NR panels, so small M (LLM projections at 1–512 tokens) still uses every thread ([`TaskSplit`],
//! shared by [`gemm`] and [`gemm_bf16dot`]).

use super::micro::{MicroKernel, PairMicroKernel};
use super::pack::{pack_a, pack_b_pairs, pack_b_rows, pack_bt_panel, pack_pairs_rows};
use super::Blocking;
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::Element;
use rayon::prelude::*;
use std::cell::RefCell;

/// Rows of a B block packed per parallel task.
const B_ROWS_PER_TASK: usize = 16;

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

            // Pack B (shared by all tasks of this (jc, pc)): Bᵀ panel by panel, B [k, n] in
            // chunks of whole rows (sequential reads).
            let bp = bpack.get(n_panels * kc * nr);
            if trans_b {
                bp.par_chunks_mut(kc * nr)
                    .enumerate()
                    .for_each(|(jp, dst)| {
                        let j0 = jc + jp * nr;
                        let nr_valid = nr.min(n - j0);
                        A_PACK.with(|cell| {
                            let row = &mut cell.borrow_mut().1;
                            if row.len() < kc {
                                row.resize(kc, 0.0);
                            }
                            // SAFETY: K::ISA is available (the caller checked).
                            unsafe {
                                pack_bt_panel(
                                    K::ISA,
                                    &b[j0 * ldb + pc..],
                                    ldb,
                                    kc,
                                    nr,
                                    nr_valid,
                                    dst,
                                    row,
                                )
                            };
                        });
                    });
            } else {
                let dst = SendPtr(bp.as_mut_ptr());
                (0..kc.div_ceil(B_ROWS_PER_TASK))
                    .into_par_iter()
                    .for_each(|t| {
                        let p0 = t * B_ROWS_PER_TASK;
                        let p1 = (p0 + B_ROWS_PER_TASK).min(kc);
                        // SAFETY: K::ISA is available; the buffer holds n_panels·kc·nr f32s and
                        // tasks write disjoint row ranges of it.
                        unsafe {
                            pack_b_rows(
                                K::ISA,
                                &b[pc * ldb + jc..],
                                ldb,
                                kc,
                                nc,
                                nr,
                                p0,
                                p1,
                                dst.get(),
                            )
                        };
                    });
            }
            let bp: &[f32] = bp;

            let split = TaskSplit::new(m, mr, mc, n_panels, threads);
            (0..split.count()).into_par_iter().for_each(|task| {
                let Some((ic, mc_cur, jp0, jp1)) = split.task(task) else {
                    return;
                };
                A_PACK.with(|cell| {
                    let (abuf, row) = &mut *cell.borrow_mut();
                    if row.len() < kc {
                        row.resize(kc, 0.0);
                    }
                    let ap = abuf.get(mc_cur.div_ceil(mr) * kc * mr);
                    // SAFETY: K::ISA is available (the caller checked).
                    unsafe { pack_a(K::ISA, &a[ic * lda + pc..], lda, mc_cur, kc, mr, ap, row) };
                    // SAFETY: tasks write disjoint (rows ic.., columns of panels jp0..jp1) tiles.
                    unsafe {
                        macro_kernel(
                            &Tile {
                                mr,
                                nr,
                                steps: kc,
                                kernel: K::kernel,
                            },
                            mc_cur,
                            ap,
                            bp,
                            jp0..jp1,
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

/// The same loop nest for the `vdpbf16ps` path: bf16 inputs (as bits) packed without conversion
/// into k-pair micro-panels (u32 words, half the bytes of f32 panels), `K` a [`PairMicroKernel`].
/// C is f32 as in [`gemm`]. A `kc` block of odd length pads its last pair with zero.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_bf16dot<K: PairMicroKernel>(
    m: usize,
    n: usize,
    k: usize,
    a: &[u16],
    lda: usize,
    b: &[u16],
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
            let kp = kc.div_ceil(2);
            let accumulate = pc > 0;

            let bp: &mut [u32] = bytemuck::cast_slice_mut(bpack.get(n_panels * kp * nr));
            bp.par_chunks_mut(kp * nr)
                .enumerate()
                .for_each(|(jp, dst)| {
                    let j0 = jc + jp * nr;
                    let nr_valid = nr.min(n - j0);
                    if trans_b {
                        pack_pairs_rows(&b[j0 * ldb + pc..], ldb, nr_valid, nr, kc, dst);
                    } else {
                        pack_b_pairs(&b[pc * ldb + j0..], ldb, kc, nr, nr_valid, dst);
                    }
                });
            let bp: &[u32] = bp;

            let split = TaskSplit::new(m, mr, mc, n_panels, threads);
            (0..split.count()).into_par_iter().for_each(|task| {
                let Some((ic, mc_cur, jp0, jp1)) = split.task(task) else {
                    return;
                };
                A_PACK.with(|cell| {
                    let abuf = &mut cell.borrow_mut().0;
                    let panels = mc_cur.div_ceil(mr);
                    let ap: &mut [u32] = bytemuck::cast_slice_mut(abuf.get(panels * kp * mr));
                    for (ip, dst) in ap.chunks_exact_mut(kp * mr).enumerate() {
                        let i0 = ic + ip * mr;
                        let rows = mr.min(ic + mc_cur - i0);
                        pack_pairs_rows(&a[i0 * lda + pc..], lda, rows, mr, kc, dst);
                    }
                    // SAFETY: tasks write disjoint (rows ic.., columns of panels jp0..jp1) tiles;
                    // the caller checked that the CPU has the kernel's ISA.
                    unsafe {
                        macro_kernel(
                            &Tile {
                                mr,
                                nr,
                                steps: kp,
                                kernel: K::kernel,
                            },
                            mc_cur,
                            ap,
                            bp,
                            jp0..jp1,
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

/// The micro-kernel of a loop nest as data: tile shape, k steps per micro-panel (k for f32 panels,
/// k-pairs for bf16 pair panels), and the tile update on panels of words `W`.
pub(super) struct Tile<W> {
    pub mr: usize,
    pub nr: usize,
    pub steps: usize,
    pub kernel: unsafe fn(usize, *const W, *const W, *mut f32, usize, bool),
}

/// How one (jc, pc) block is cut into parallel tasks: M into blocks of whole micro-panels whose
/// sizes differ by at most one panel (a multiple of `threads` blocks), and, when that gives fewer
/// than 2 tasks per thread (small M: LLM projections at 1–512 tokens), N as well, so the
/// work-stealing pool ends with balanced threads.
pub(super) struct TaskSplit {
    m: usize,
    mr: usize,
    m_panels: usize,
    m_blocks: usize,
    n_panels: usize,
    n_split: usize,
    panels_per_split: usize,
}

impl TaskSplit {
    pub(super) fn new(m: usize, mr: usize, mc: usize, n_panels: usize, threads: usize) -> Self {
        let m_panels = m.div_ceil(mr);
        let m_blocks = m.div_ceil(mc).div_ceil(threads) * threads;
        let m_blocks = m_blocks.min(m_panels);
        let n_split = (2 * threads).div_ceil(m_blocks).clamp(1, n_panels);
        TaskSplit {
            m,
            mr,
            m_panels,
            m_blocks,
            n_panels,
            n_split,
            panels_per_split: n_panels.div_ceil(n_split),
        }
    }

    pub(super) fn count(&self) -> usize {
        self.m_blocks * self.n_split
    }

    /// Task `task`'s first row, row count and B panel range `jp0..jp1`; `None` when it is empty.
    pub(super) fn task(&self, task: usize) -> Option<(usize, usize, usize, usize)> {
        let (ib, js) = (task / self.n_split, task % self.n_split);
        let ic = ib * self.m_panels / self.m_blocks * self.mr;
        let ic_end = ((ib + 1) * self.m_panels / self.m_blocks * self.mr).min(self.m);
        let jp0 = js * self.panels_per_split;
        let jp1 = (jp0 + self.panels_per_split).min(self.n_panels);
        (jp0 < jp1 && ic < ic_end).then_some((ic, ic_end - ic, jp0, jp1))
    }
}

/// Run micro-kernels over B panels `jp` and all micro-panels of the packed A block (`mc` rows).
/// `n_rem` is the number of valid columns from the start of the B panel buffer.
///
/// # Safety
/// `c` addresses the block's top-left element with row stride `ldc`; the caller owns the tiles;
/// `ap` and `bp` hold whole packed micro-panels; the CPU supports the tile's ISA.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn macro_kernel<W>(
    t: &Tile<W>,
    mc: usize,
    ap: &[W],
    bp: &[W],
    jp: std::ops::Range<usize>,
    n_rem: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let (mr, nr, steps) = (t.mr, t.nr, t.steps);
    // Scratch for edge tiles, large enough for any micro-kernel here (≤ 16×32).
    let mut tile = [0f32; 16 * 32];
    debug_assert!(mr * nr <= tile.len());
    debug_assert!(ap.len() >= mc.div_ceil(mr) * steps * mr && bp.len() >= jp.end * steps * nr);
    for jp in jp {
        let b_panel = bp.as_ptr().add(jp * steps * nr);
        let nr_cur = nr.min(n_rem - jp * nr);
        for ip in 0..mc.div_ceil(mr) {
            let a_panel = ap.as_ptr().add(ip * steps * mr);
            let mr_cur = mr.min(mc - ip * mr);
            let c_tile = c.add(ip * mr * ldc + jp * nr);
            if mr_cur == mr && nr_cur == nr {
                (t.kernel)(steps, a_panel, b_panel, c_tile, ldc, accumulate);
            } else {
                if accumulate {
                    for i in 0..mr_cur {
                        for j in 0..nr_cur {
                            tile[i * nr + j] = *c_tile.add(i * ldc + j);
                        }
                    }
                }
                (t.kernel)(steps, a_panel, b_panel, tile.as_mut_ptr(), nr, accumulate);
                for i in 0..mr_cur {
                    for j in 0..nr_cur {
                        *c_tile.add(i * ldc + j) = tile[i * nr + j];
                    }
                }
            }
        }
    }
}
