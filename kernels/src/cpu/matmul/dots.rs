//! The small-M path of the packed matmul, for B stored transposed (`[n, k]`: LLM weights at 2–64
//! tokens, and up to 256 where the loop nest would not run in one pass): `C[i, j] = A[i, :] ·
//! Bᵀ[j, :]` as dot products along k, without BLIS packing.
//!
//! Why: the loop nest packs B into NR-wide k-major panels, which for Bᵀ is a transpose of every
//! element of the weight matrix, and with few rows of A the packed panels are used only
//! `m / MR` times; at 16 × 6144 × 4096 that made the packed path run at 0.12–0.17× PyTorch
//! (results/cpu-side-by-side/baseline). Here each row of Bᵀ is already a k-contiguous vector:
//!
//! ```text
//! A' ← A, rows padded to a multiple of MR and k to the vector width (zeros), once per call
//! parallel over tasks = contiguous ranges of groups of NJ rows of Bᵀ:
//!   for each k block kb (A's block at most half of L2, a group's B' at most half of L1):
//!     for each group of NJ rows of Bᵀ:
//!       B' ← those rows, the k block only, copied (and widened) into L1 scratch, zero padded
//!            (a whole group of a whole-vector k block is read in place where nothing is
//!            widened: the vdpbf16ps kernel, and the f32 one on f32 inputs)
//!       for each block of MR rows of A':
//!         acc[MR][NJ] += A'[i, k..] · B'[j, k..]   (vector lanes along k)
//!         (the first half of the blocks also prefetch the next group's rows into L2)
//!         C[i, j] (+)= horizontal sums of acc
//! ```
//!
//! Two inner kernels: the f32 one (every ISA path, through the `cpu::simd` vocabulary; f16/bf16
//! widened while copying into scratch) and, for bf16 on CPUs with AVX512_BF16, a `vdpbf16ps` one
//! on the unconverted pairs (32 products per instruction, no widening at all). Both accumulate in
//! f32 lanes: the same bound as the loop nest (the products are exact in f32; only the sums'
//! order differs).

#![allow(clippy::needless_range_loop)]

use super::Finish;
use crate::cpu::simd::{convert_row, per_isa, prefetch_l2, Simd};
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::{DType, Element};
use crate::isa::Isa;
use rayon::prelude::*;
use std::cell::RefCell;

/// Most rows of A for which `packed` takes this path (B transposed only). Chosen by measurement
/// on the Intel Xeon (family 6 model 207) VM, 2 threads, bf16 and f32 `[m, 4096] · [4096, 4096]ᵀ`
/// (BENCHMARKS.md "Small M"): the dot path won at m = 128 (184 against 100 GFLOP/s) and 256
/// (143–170 against 115–143), the loop nest at 512 (160–175 against 104–118). Above
/// [`DOT_M_ONE_PASS`] rows the f32-panel paths take it only where the loop nest would not run in
/// one pass.
pub const DOT_M_MAX: usize = 256;

/// Rows of A up to which the f32-panel paths take this path whatever N and K; from there to
/// [`DOT_M_MAX`], the loop nest where it runs in one pass (N ≥ M × threads, A within its budget:
/// `gemm::one_pass`). Measured on the same VM, 2 threads, `[m, 4096] · [4096, 4096]ᵀ` bf16
/// (BENCHMARKS.md "Small M: the one-pass nest from 72 rows"): the one-pass nest against this path
/// at m = 32 0.89, 64 0.95, 72 (f16) 1.06, 80 1.02, 96 1.07, 128 1.09, 200 1.16, 256 1.19.
pub const DOT_M_ONE_PASS: usize = 64;

/// Most k elements per block (f32; twice as many bf16 pairs' halves: the same bytes).
const DOT_KB: usize = 2048;

/// The k block for `rows` (padded) rows of A and groups of `nj` Bᵀ rows, `bytes` per element:
/// - A's block (`rows · kb · bytes`) at most half of L2, so it stays there while a task walks its
///   groups;
/// - where `b_in_l1`, a group's B block (`nj · kb · bytes`) at most half of L1, so the row tiles
///   of A walk it from L1 (at 48 KiB L1 and NJ = 6: 1024 f32; the earlier 2048 filled all of L1
///   and the group was read from L2: 64 × 4096 × 4096 Bᵀ bf16 ran 5–25% slower on the Intel Xeon
///   VM, BENCHMARKS.md "Small M: the k block in L1"); else the group is read from L2 and only A
///   bounds the block ([`bf16dot_b_in_l1`]);
///
/// at most `DOT_KB · 4 / bytes`, at least 256, a multiple of 64.
fn k_block(rows: usize, nj: usize, bytes: usize, b_in_l1: bool) -> usize {
    let c = crate::cpu::cache::detected();
    let a_fit = c.l2 / 2 / (rows.max(1) * bytes);
    let b_fit = if b_in_l1 {
        c.l1d / 2 / (nj * bytes)
    } else {
        usize::MAX
    };
    a_fit.min(b_fit).clamp(256, DOT_KB * 4 / bytes) / 64 * 64
}

/// Whether the `vdpbf16ps` dot path bounds its k block by L1 ([`k_block`]): not on AMD family 25.
/// There a group's Bᵀ rows, read in place from L2 through k blocks as long as A's L2 budget allows
/// (4096 at 64 rows), ran faster than blocks that fit half of the 32 KiB, 8-way L1 (1344):
/// fewer k blocks, so fewer per-tile horizontal sums (≈ 12% of the kernel's time in `perf` at
/// 1344). `mmtime`, Zen 4 (family 25 model 17), 2 threads, three alternated rounds: 64 × 4096 ×
/// 4096 Bᵀ 1.10–1.17, 64 × 4096 × 14336 0.99–1.09, 16 × 6144 × 4096 1.14–1.36 (BENCHMARKS.md
/// "Zen 4: the dot path's k block from L2").
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the vdpbf16ps path is x86-64 only
fn bf16dot_b_in_l1() -> bool {
    crate::cpu::cpu_kind() != crate::cpu::CpuKind::AmdFamily25
}

/// Groups of Bᵀ rows per task, at least: enough work to amortize a task.
const GROUPS_PER_TASK: usize = 8;

thread_local! {
    /// Per-thread B scratch (one group's k block).
    static B_SCRATCH: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
}

/// Row tile of A and group of Bᵀ rows per ISA path (accumulators MR·NJ, + MR + 1 live vectors).
fn tile(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512f => (4, 6),
        Isa::Avx2fma | Isa::Portable => (2, 4),
    }
}

/// Where the small-M path writes: `C (f32, ldc)`, `accumulate` adding into it.
#[derive(Clone, Copy)]
struct Out {
    c: SendPtr<f32>,
    ldc: usize,
}

/// The Bᵀ rows a task copies after the current group (the next group's rows of the same k block,
/// or the task's first group in the next k block), prefetched into L2 while the current group
/// computes. Without it a task's copy of each group waits on memory with no arithmetic in
/// flight whenever Bᵀ comes from DRAM (a weight matrix larger than L3, or a cold one): the
/// rotated (cold) 16 × 6144 × 4096 bf16 row ran ≈ 10% faster with it (BENCHMARKS.md, "Small M:
/// prefetching the next group").
///
/// The prefetches are spread evenly over the steps of the first half of the group's row tiles
/// ([`Next::spread`]), not issued by the first row tile alone: one tile's k loop issued a
/// 16 KiB group's lines in ≈ 1000 cycles, more than the outstanding misses the core keeps, and
/// the copy of the group then waited on memory (`memmove` 14–16% of 64 × 4096 × 14336 Bᵀ bf16
/// in `perf`; 12% with the prefetches spread over every row tile). Against the first tile alone
/// (runner, Zen 4, 2 threads, 6 alternated rounds, BENCHMARKS.md "Zen 4: the dot path's
/// prefetches spread"): 16 × 6144 × 4096 Bᵀ bf16 on the `vdpbf16ps` path 1.06–1.19 in every
/// round, the 64-token rows 0.95–1.04; spread over all the row tiles, the last ones' lines came
/// too late for the copy (64 × 4096 × 4096 0.85–1.19).
#[derive(Clone, Copy)]
struct Next {
    /// First element of the first row, as bytes.
    p: *const u8,
    /// Row stride in bytes.
    stride: usize,
    rows: usize,
    /// Bytes of each row to fetch.
    bytes: usize,
}

impl Next {
    /// The rows a task copies after group `g` of its groups `g0..g1` in the k block at `k0`.
    #[allow(clippy::too_many_arguments)]
    fn after<T>(
        bt: &[T],
        ldb: usize,
        n: usize,
        k: usize,
        nj: usize,
        kb: usize,
        (g, g0, g1): (usize, usize, usize),
        k0: usize,
    ) -> Option<Next> {
        let (g, k0) = if g + 1 < g1 {
            (g + 1, k0)
        } else if k0 + kb < k {
            (g0, k0 + kb)
        } else {
            return None;
        };
        let j0 = g * nj;
        let size = std::mem::size_of::<T>();
        Some(Next {
            p: bt[j0 * ldb + k0..].as_ptr() as *const u8,
            stride: ldb * size,
            rows: nj.min(n - j0),
            bytes: kb.min(k - k0) * size,
        })
    }

    /// The prefetches of a group of `tiles` row tiles of `steps` k steps each: every line once,
    /// spread evenly over the steps of the first half of the tiles ([`Fetch::step`]; the later
    /// tiles fetch none).
    fn spread(self, tiles: usize, steps: usize) -> Fetch {
        let fetching = tiles.div_ceil(2);
        Fetch {
            next: self,
            fetching,
            lines: self.rows * self.bytes.div_ceil(64),
            steps: (fetching * steps).max(1),
            due: 0,
            line: 0,
            r: 0,
        }
    }
}

/// The cursor of [`Next::spread`]: per step, the lines due so far (`lines` per `steps`, counted
/// without division: the per-step bookkeeping had two divisions, ≈ 7% of the `vdpbf16ps` dot
/// kernel's samples in `perf`), in order: the same 64-byte line of every row, then the next
/// line.
#[derive(Clone, Copy)]
struct Fetch {
    next: Next,
    /// Row tiles that fetch (the first half).
    fetching: usize,
    lines: usize,
    steps: usize,
    /// Lines due, times `steps` (a Bresenham counter).
    due: usize,
    /// The next line's byte offset in its row, and its row.
    line: usize,
    r: usize,
}

impl Fetch {
    /// Whether row tile `tile` fetches.
    #[inline(always)]
    fn fetches(&self, tile: usize) -> bool {
        tile < self.fetching
    }

    /// One k step of a fetching tile: prefetch the lines now due into L2.
    #[inline(always)]
    fn step(&mut self) {
        self.step_with(prefetch_l2);
    }

    /// [`Fetch::step`] with `fetch` for the prefetch.
    #[inline(always)]
    fn step_with(&mut self, mut fetch: impl FnMut(*const u8)) {
        self.due += self.lines;
        while self.due >= self.steps {
            self.due -= self.steps;
            if self.line >= self.next.bytes {
                return;
            }
            fetch(
                self.next
                    .p
                    .wrapping_add(self.r * self.next.stride + self.line),
            );
            self.r += 1;
            if self.r == self.next.rows {
                self.r = 0;
                self.line += 64;
            }
        }
    }
}

/// `c (f32, ldc) = a · bᵀ` for `m ≤` [`DOT_M_MAX`] rows, B stored `[n, k]` (`ldb`), through the
/// f32 dot kernel of `isa` (which must be available).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dots<T: Element>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    bt: &[T],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    abuf: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    let (mr, nj) = tile(isa);
    let l = isa.f32_lanes().max(8);
    let kp = k.div_ceil(l) * l;
    let mp = m.div_ceil(mr) * mr;
    let kb = k_block(mp, nj, 4, true);
    // A', widened and zero padded.
    let ap = abuf.get(mp * kp);
    ap.par_chunks_mut(kp).enumerate().for_each(|(i, row)| {
        if i < m {
            T::slice_to_f32(&a[i * lda..i * lda + k], &mut row[..k]);
            row[k..].iter_mut().for_each(|x| *x = 0.0);
        } else {
            row.iter_mut().for_each(|x| *x = 0.0);
        }
    });
    let ap: &[f32] = ap;
    let out = Out {
        c: SendPtr(c.as_mut_ptr()),
        ldc,
    };
    let groups = n.div_ceil(nj);
    let threads = rayon::current_num_threads().max(1);
    let per_task = groups
        .div_ceil(4 * threads)
        .max(GROUPS_PER_TASK.min(groups));
    (0..groups.div_ceil(per_task))
        .into_par_iter()
        .for_each(|t| {
            let g0 = t * per_task;
            let g1 = (g0 + per_task).min(groups);
            B_SCRATCH.with(|cell| {
                let bs = &mut *cell.borrow_mut();
                for k0 in (0..k).step_by(kb) {
                    let kw = kb.min(k - k0);
                    let kwp = kw.div_ceil(l) * l;
                    let bs = bs.get(nj * kwp);
                    for g in g0..g1 {
                        let j0 = g * nj;
                        let cols = nj.min(n - j0);
                        // SAFETY: `isa` is available (the caller's contract); A' holds mp rows of
                        // kp, the scratch nj rows of kwp, Bᵀ rows j0..j0+cols from k0 on; this
                        // task alone writes C's columns j0..j0+cols.
                        unsafe {
                            group_f32::<T>(
                                isa,
                                ap,
                                kp,
                                k0,
                                kw,
                                &bt[j0 * ldb + k0..],
                                ldb,
                                bs,
                                m,
                                j0,
                                cols,
                                out.c.get(),
                                out.ldc,
                                k0 > 0,
                                Next::after(bt, ldb, n, k, nj, kb, (g, g0, g1), k0),
                            )
                        };
                    }
                }
            });
            if let Some(f) = finish {
                let c0 = g0 * nj;
                f(0, m, c0, (g1 * nj).min(n) - c0);
            }
        });
}

per_isa! {
    /// One group of Bᵀ rows (`cols` rows of `bt`, leading dimension `ldb`, from the block's
    /// first k), widened into the scratch `bs` (rows of `kwp`, zero padded; f32 rows of a whole
    /// group and a whole-vector k block are read in place), against all row tiles of A':
    /// `C[i, j0 + r] (+)= A'[i, k0..k0+kwp] · B'[r, ..]` for `i < m`, `r < cols`.
    ///
    /// # Safety
    /// `isa` is available; A' holds `ceil(m/MR)·MR` rows of `kp`; `bs` holds NJ rows of
    /// `kwp = ceil(kw / lanes) · lanes`; C's rows `0..m` × columns `j0..j0 + cols` are writable.
    /// `next` (rows to prefetch) may point anywhere: prefetches never fault.
    unsafe fn group_f32(
        ap: &[f32],
        kp: usize,
        k0: usize,
        kw: usize,
        bt: &[T],
        ldb: usize,
        bs: &mut [f32],
        m: usize,
        j0: usize,
        cols: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        next: Option<Next>,
    ) => group_f32_with
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn group_f32_with<S: Simd, T: Element>(
    ap: &[f32],
    kp: usize,
    k0: usize,
    kw: usize,
    bt: &[T],
    ldb: usize,
    bs: &mut [f32],
    m: usize,
    j0: usize,
    cols: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    next: Option<Next>,
) {
    let kwp = kw.div_ceil(S::LANES) * S::LANES;
    let nj = match S::LANES {
        16 => 6,
        _ => 4,
    };
    // f32 rows of a whole group and a whole-vector k block are read in place; others are
    // widened (or copied, zero padded) into the scratch first.
    let (bp, ldbs) = if T::DTYPE == DType::F32 && kw == kwp && cols == nj {
        (bt.as_ptr() as *const f32, ldb)
    } else {
        for (r, dst) in bs.chunks_exact_mut(kwp).enumerate() {
            if r < cols {
                convert_row::<S, T>(bt.as_ptr().add(r * ldb), dst.as_mut_ptr(), kw, kwp);
            } else {
                dst.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        (bs.as_ptr(), kwp)
    };
    let b = (bp, ldbs);
    // The tiles of `tile`.
    match S::LANES {
        16 => group_tile::<S, 4, 6>(ap, kp, k0, kwp, b, m, j0, cols, c, ldc, accumulate, next),
        _ => group_tile::<S, 2, 4>(ap, kp, k0, kwp, b, m, j0, cols, c, ldc, accumulate, next),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn group_tile<S: Simd, const MR: usize, const NJ: usize>(
    ap: &[f32],
    kp: usize,
    k0: usize,
    kwp: usize,
    (bp, ldbs): (*const f32, usize),
    m: usize,
    j0: usize,
    cols: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    next: Option<Next>,
) {
    let l = S::LANES;
    debug_assert!(kwp.is_multiple_of(l));
    // The next group's prefetches spread over the row tiles' steps ([`Next::spread`]).
    let mut fetch = next.map(|nx| nx.spread(m.div_ceil(MR), kwp / l));
    for i0 in (0..m).step_by(MR) {
        let arow = ap.as_ptr().add(i0 * kp + k0);
        let mut acc = [[S::zero(); NJ]; MR];
        let mut tile_fetch = fetch.as_mut().filter(|f| f.fetches(i0 / MR));
        let mut q = 0;
        while q < kwp {
            if let Some(f) = tile_fetch.as_mut() {
                f.step();
            }
            let mut av = [S::zero(); MR];
            for (r, v) in av.iter_mut().enumerate() {
                *v = S::load(arow.add(r * kp + q));
            }
            for j in 0..NJ {
                let bv = S::load(bp.add(j * ldbs + q));
                for r in 0..MR {
                    acc[r][j] = S::fma(av[r], bv, acc[r][j]);
                }
            }
            q += l;
        }
        // Sums with constant bounds first, so the accumulators stay registers (a dynamic bound
        // on `acc` made LLVM keep it in memory and spill inside the k loop).
        let mut sums = [[0f32; NJ]; MR];
        for r in 0..MR {
            for j in 0..NJ {
                sums[r][j] = S::hsum(acc[r][j]);
            }
        }
        store_sums(&sums, m - i0, cols, c.add(i0 * ldc + j0), ldc, accumulate);
    }
}

/// `C[r][j] (+)= sums[r][j]` for the `rows × cols` valid part of a tile at `c` (row stride `ldc`).
#[inline(always)]
unsafe fn store_sums<const MR: usize, const NJ: usize>(
    sums: &[[f32; NJ]; MR],
    rows: usize,
    cols: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    for (r, row) in sums.iter().enumerate().take(rows) {
        let crow = c.add(r * ldc);
        for (j, &s) in row.iter().enumerate().take(cols) {
            *crow.add(j) = if accumulate { *crow.add(j) + s } else { s };
        }
    }
}

/// `c (f32, ldc) = a · bᵀ` with `vdpbf16ps` on the bf16 bits of A and Bᵀ (the small-M twin of
/// the `packed.avx512bf16` loop nest): A' and each group's B' keep bf16 (zero padded to 32 k),
/// products exact in f32, f32 accumulation. The CPU must have AVX512_BF16.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn dots_bf16dot(
    m: usize,
    n: usize,
    k: usize,
    a: &[u16],
    lda: usize,
    bt: &[u16],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    abuf: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    const MR: usize = 4;
    const NJ: usize = 6;
    const L: usize = 32;
    let kp = k.div_ceil(L) * L;
    let mp = m.div_ceil(MR) * MR;
    let kb = k_block(mp, NJ, 2, bf16dot_b_in_l1());
    let ap: &mut [u16] = &mut bytemuck::cast_slice_mut(abuf.get((mp * kp).div_ceil(2)))[..mp * kp];
    ap.par_chunks_mut(kp).enumerate().for_each(|(i, row)| {
        if i < m {
            row[..k].copy_from_slice(&a[i * lda..i * lda + k]);
            row[k..].iter_mut().for_each(|x| *x = 0);
        } else {
            row.iter_mut().for_each(|x| *x = 0);
        }
    });
    let ap: &[u16] = ap;
    let out = Out {
        c: SendPtr(c.as_mut_ptr()),
        ldc,
    };
    let groups = n.div_ceil(NJ);
    let threads = rayon::current_num_threads().max(1);
    let per_task = groups
        .div_ceil(4 * threads)
        .max(GROUPS_PER_TASK.min(groups));
    (0..groups.div_ceil(per_task))
        .into_par_iter()
        .for_each(|t| {
            let g0 = t * per_task;
            let g1 = (g0 + per_task).min(groups);
            B_SCRATCH.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                // bf16 blocks twice as long as the f32 ones: the same bytes.
                for k0 in (0..k).step_by(kb) {
                    let kw = kb.min(k - k0);
                    let kwp = kw.div_ceil(L) * L;
                    let bs: &mut [u16] =
                        &mut bytemuck::cast_slice_mut(buf.get((NJ * kwp).div_ceil(2)))[..NJ * kwp];
                    for g in g0..g1 {
                        let j0 = g * NJ;
                        // A whole group of rows whose k block is whole vectors is read in place;
                        // a partial one is copied, zero-padded, into the scratch.
                        let (bp, ldbs) = if kw == kwp && j0 + NJ <= n {
                            (bt[j0 * ldb + k0..].as_ptr(), ldb)
                        } else {
                            for (r, dst) in bs.chunks_exact_mut(kwp).enumerate() {
                                let j = j0 + r;
                                if j < n {
                                    dst[..kw].copy_from_slice(&bt[j * ldb + k0..j * ldb + k0 + kw]);
                                    dst[kw..].iter_mut().for_each(|x| *x = 0);
                                } else {
                                    dst.iter_mut().for_each(|x| *x = 0);
                                }
                            }
                            (bs.as_ptr(), kwp)
                        };
                        let cols = NJ.min(n - j0);
                        // SAFETY: the caller checked AVX512_BF16; buffers as sized above; this task
                        // alone writes C's columns j0..j0+cols.
                        unsafe {
                            x86::group_bf16dot::<MR, NJ>(
                                ap,
                                kp,
                                k0,
                                kwp,
                                bp,
                                ldbs,
                                m,
                                j0,
                                cols,
                                out.c.get(),
                                out.ldc,
                                k0 > 0,
                                Next::after(bt, ldb, n, k, NJ, kb, (g, g0, g1), k0),
                            )
                        };
                    }
                }
            });
            if let Some(f) = finish {
                let c0 = g0 * NJ;
                f(0, m, c0, (g1 * NJ).min(n) - c0);
            }
        });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Next;
    use crate::cpu::simd::{Avx512, Simd};
    use std::arch::x86_64::*;

    /// All row tiles of A' (bf16) against one group of B' rows, `vdpbf16ps` along k.
    ///
    /// # Safety
    /// AVX-512F/VL/BW and AVX512_BF16 are available (`Features::avx512bf16` requires them
    /// all); A' holds `ceil(m/MR)·MR` rows of `kp` bf16; B' at `bp` holds `NJ` readable rows of
    /// `kwp` bf16 (a multiple of 32), `ldbs` apart; C's rows `0..m` × columns `j0..j0 + cols`
    /// are writable. `next`
    /// (rows to prefetch) may point anywhere: prefetches never fault.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn group_bf16dot<const MR: usize, const NJ: usize>(
        ap: &[u16],
        kp: usize,
        k0: usize,
        kwp: usize,
        bp: *const u16,
        ldbs: usize,
        m: usize,
        j0: usize,
        cols: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        next: Option<Next>,
    ) {
        const { assert!(MR * NJ <= 32, "two reduction trees of 16") };
        debug_assert!(kwp.is_multiple_of(32));
        // The next group's prefetches spread over the row tiles' steps ([`Next::spread`]).
        let mut fetch = next.map(|nx| nx.spread(m.div_ceil(MR), kwp / 32));
        for i0 in (0..m).step_by(MR) {
            let arow = ap.as_ptr().add(i0 * kp + k0);
            let mut acc = [[_mm512_setzero_ps(); NJ]; MR];
            let mut tile_fetch = fetch.as_mut().filter(|f| f.fetches(i0 / MR));
            let mut q = 0;
            while q < kwp {
                if let Some(f) = tile_fetch.as_mut() {
                    f.step();
                }
                let mut av = [_mm512_setzero_si512(); MR];
                for r in 0..MR {
                    av[r] = _mm512_loadu_si512(arow.add(r * kp + q) as *const _);
                }
                for j in 0..NJ {
                    let bv: __m512bh =
                        std::mem::transmute(_mm512_loadu_si512(bp.add(j * ldbs + q) as *const _));
                    for r in 0..MR {
                        let a: __m512bh = std::mem::transmute(av[r]);
                        acc[r][j] = _mm512_dpbf16_ps(acc[r][j], a, bv);
                    }
                }
                q += 32;
            }
            // The MR·NJ horizontal sums by two transposing reduction trees (16 vectors into
            // one each) instead of one `_mm512_reduce_add_ps` per accumulator: ≈ 90 instead of
            // ≈ 190 instructions per tile and k block.
            let mut flat = [_mm512_setzero_ps(); 32];
            for r in 0..MR {
                for j in 0..NJ {
                    flat[r * NJ + j] = acc[r][j];
                }
            }
            let mut lanes = [0f32; 32];
            _mm512_storeu_ps(lanes.as_mut_ptr(), Avx512::hsum_lanes(&flat[..16]));
            if MR * NJ > 16 {
                _mm512_storeu_ps(lanes.as_mut_ptr().add(16), Avx512::hsum_lanes(&flat[16..]));
            }
            let mut sums = [[0f32; NJ]; MR];
            for r in 0..MR {
                sums[r].copy_from_slice(&lanes[r * NJ..r * NJ + NJ]);
            }
            super::store_sums(&sums, m - i0, cols, c.add(i0 * ldc + j0), ldc, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Next;

    /// The spread prefetch visits every 64-byte line of every row once, in the first half of the
    /// row tiles only, and none past the rows' bytes; at most one line more than due per step.
    #[test]
    fn spread_fetches_every_line_once_in_the_first_half_of_the_tiles() {
        let base = 1usize << 20;
        for (rows, bytes, tiles, steps) in [
            (6, 8192, 16, 128),
            (6, 2688, 16, 42),
            (4, 100, 3, 5),
            (6, 65536, 2, 16),
            (1, 64, 1, 1),
            (5, 8192, 1, 1),
        ] {
            let stride = bytes + 4096 + 64;
            let next = Next {
                p: base as *const u8,
                stride,
                rows,
                bytes,
            };
            let mut f = next.spread(tiles, steps);
            let mut seen = Vec::new();
            for tile in 0..tiles {
                let before = seen.len();
                if f.fetches(tile) {
                    for step in 0..steps {
                        f.step_with(|p| seen.push(p as usize - base));
                        let done = tile * steps + step + 1;
                        let due =
                            (rows * bytes.div_ceil(64) * done).div_ceil(tiles.div_ceil(2) * steps);
                        assert!(seen.len() <= due, "{rows}x{bytes}: ahead of the spread");
                    }
                } else {
                    assert!(tile >= tiles.div_ceil(2));
                }
                assert!(tile < tiles.div_ceil(2) || seen.len() == before);
            }
            let mut want: Vec<usize> = (0..bytes.div_ceil(64))
                .flat_map(|l| (0..rows).map(move |r| r * stride + l * 64))
                .collect();
            assert_eq!(seen, want, "{rows} rows of {bytes} bytes, in order");
            want.sort_unstable();
            want.dedup();
            assert_eq!(want.len(), rows * bytes.div_ceil(64));
        }
    }
}
