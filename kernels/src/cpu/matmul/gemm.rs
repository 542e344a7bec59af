//! The BLIS loop nest, generic over the micro-kernel.
//!
//! ```text
//! for jc in 0..n step NC            (B panel kc×NC lives in L3)
//!   for pc in 0..k step KC          (β = 0 on the first pc, then accumulate)
//!     pack B[pc.., jc..] → bpack     (shared; parallel over row chunks of B [k, n] or NR
//!                                     panels of Bᵀ; f16/bf16 → f32 here, or bf16 k-pairs
//!                                     unconverted for the vdpbf16ps and AMX paths)
//!     parallel for (ic block, jr range) tasks:
//!       pack A[ic.., pc..] → apack   (per-thread buffer in L2; f16/bf16 → f32 here; the AMX
//!                                     format reads whole panels of A in place instead)
//!       for jr in range               (B micro-panel kc×NR in L2, reused by every ir)
//!         for ir in 0..mc step MR     (A micro-panels from L2)
//!           micro-kernel (full tile, or a scratch tile at the edges unless C holds whole
//!                         tiles: a half-precision output's f32 buffer)
//! ```
//!
//! Tasks split M into MC blocks and, when that gives fewer than 2 tasks per thread, also split the
//! NR panels, so small M (LLM projections at 1–512 tokens) still uses every thread ([`TaskSplit`]).
//!
//! A B block small enough (a quarter of L2, with enough rows of A per thread: [`own_b_block`]) is
//! not packed in a shared pass: each thread packs all of it into its own buffer in its first task
//! of the block, and the tasks split M only (256³).
//!
//! A product wide in N (N ≥ M × threads) whose A, packed whole on every thread, fits one A block
//! or each thread's share of the B block's budget takes a one-pass variant ([`gemm_stream`]): no
//! shared B block, each task packs its own columns of B, k block by k block.
//!
//! The nest is written once, generic over the panel format ([`PanelFormat`]): f32 panels for the
//! f32 micro-kernels, bf16 k-pairs for the `vdpbf16ps` one, or bf16 tile panels for AMX.

#[cfg(target_arch = "x86_64")]
use super::micro::amx;
use super::micro::{Bf16Tile, MicroKernel, PairMicroKernel};
use super::pack::{pack_a, pack_b_pair_rows, pack_b_rows, pack_bt_panel, pack_pairs_rows};
use super::{Blocking, Finish};
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::Element;
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Rows of a B block packed per parallel task.
const B_ROWS_PER_TASK: usize = 16;

thread_local! {
    /// Per-thread packing buffers: (A block, conversion row). Grown on first use, then reused.
    static A_PACK: RefCell<(AlignedBuf, Vec<f32>)> = RefCell::new((AlignedBuf::default(), Vec::new()));
    /// The stream nest's per-thread state ([`gemm_stream`]).
    static STREAM: RefCell<StreamScratch> = RefCell::new(StreamScratch::default());
    /// A thread's own copy of a small B block ([`own_b_block`]) and the id of the block it holds
    /// (0: none).
    static B_OWN: RefCell<(AlignedBuf, u64)> = RefCell::new((AlignedBuf::default(), 0));
}

/// Ids of what a thread packs into its own buffers once and then reuses across the tasks it runs
/// (0: none): a [`gemm_stream`] call's A, a B block packed per thread ([`own_b_block`]). A
/// thread's buffer records the id it holds.
static PACK_IDS: AtomicU64 = AtomicU64::new(1);

/// A new id from [`PACK_IDS`].
fn next_pack_id() -> u64 {
    PACK_IDS.fetch_add(1, Ordering::Relaxed)
}

/// One thread's buffers for [`gemm_stream`]: all of A packed for call `a_call`, one chunk of B
/// micro-panels, and a conversion row.
#[derive(Default)]
struct StreamScratch {
    a_call: u64,
    a: AlignedBuf,
    b: AlignedBuf,
    row: Vec<f32>,
}

/// A panel format of the loop nest: how blocks of A and op(B) are packed into micro-panels and
/// which micro-kernel multiplies them. The nest ([`gemm`]) is written once over it:
///
/// - [`F32Panels`]: f32 panels, f16/bf16 widened while packing, an f32 [`MicroKernel`];
/// - [`PairPanels`]: bf16 k-pairs in u32 words, unconverted (half the bytes), a
///   [`PairMicroKernel`] (`vdpbf16ps`); a `kc` block of odd length pads its last pair with zero.
pub(crate) trait PanelFormat: Sync {
    /// The stored input element (`T`, or a bf16's bits for the pair format).
    type In: Copy + Sync;
    /// A packed word: an f32, or a u32 holding one k-pair.
    type Word: bytemuck::Pod + Send + Sync;
    const MR: usize;
    const NR: usize;
    /// Micro-kernel steps (packed words per row of a micro-panel) for `kc` values of k.
    fn steps(kc: usize) -> usize;
    /// Pack the `kc × nc` block of op(B) whose first element is `b[0]` (B `[k, n]`: row `pc`,
    /// column `jc`; Bᵀ `[n, k]`: row `jc`, column `pc`) into `ceil(nc/NR)` micro-panels of
    /// `steps(kc) × NR` words, panel `jp` at `jp·steps·NR`; columns past `nc` are zero. Parallel
    /// on the caller's pool. By default one micro-panel per task through
    /// [`PanelFormat::pack_b_seq`].
    fn pack_b(
        b: &[Self::In],
        ldb: usize,
        trans_b: bool,
        kc: usize,
        nc: usize,
        dst: &mut [Self::Word],
    ) where
        Self: Sized,
    {
        pack_b_by_panel::<Self>(b, ldb, trans_b, kc, nc, dst);
    }
    /// [`PanelFormat::pack_b`] on the calling thread (`row` is f32 scratch).
    fn pack_b_seq(
        b: &[Self::In],
        ldb: usize,
        trans_b: bool,
        kc: usize,
        nc: usize,
        dst: &mut [Self::Word],
        row: &mut Vec<f32>,
    );
    /// Pack rows `0..mc` × columns `0..kc` of A (`a[0]` the block's first element, row stride
    /// `lda`) into `ceil(mc/MR)` micro-panels of `steps(kc) × MR` words; rows past `mc` are zero.
    /// `row` is f32 scratch.
    fn pack_a(
        a: &[Self::In],
        lda: usize,
        mc: usize,
        kc: usize,
        dst: &mut [Self::Word],
        row: &mut Vec<f32>,
    );
    /// Prepare this thread for a run of [`PanelFormat::kernel`] calls (the AMX format loads its
    /// tile configuration); [`PanelFormat::leave`] ends the run. Nothing by default.
    ///
    /// # Safety
    /// The CPU has the format's ISA.
    unsafe fn enter() {}
    /// End the run that [`PanelFormat::enter`] began on this thread.
    ///
    /// # Safety
    /// As [`PanelFormat::enter`], which this thread called before.
    unsafe fn leave() {}
    /// The micro-kernel (the contract of [`MicroKernel`] on this format's words), called between
    /// [`PanelFormat::enter`] and [`PanelFormat::leave`] on the calling thread.
    ///
    /// # Safety
    /// As [`MicroKernel::kernel`]; the CPU has the format's ISA.
    unsafe fn kernel(
        steps: usize,
        a: *const Self::Word,
        b: *const Self::Word,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    );
    /// Whether the micro-kernel reads whole micro-panels of A in place for a k block of `kc`
    /// values ([`PanelFormat::kernel_a_rows`]), so that only a block's last, partial micro-panel
    /// is packed. No format does by default.
    fn a_in_place(_kc: usize) -> bool {
        false
    }
    /// [`PanelFormat::kernel`] with A's `MR` rows read in place (`a` the first row's first value,
    /// row stride `lda` values) instead of from a packed micro-panel; only called where
    /// [`PanelFormat::a_in_place`] holds.
    ///
    /// # Safety
    /// As [`PanelFormat::kernel`], with `a` addressing `MR` rows of the k block's values.
    unsafe fn kernel_a_rows(
        _steps: usize,
        _a: *const Self::In,
        _lda: usize,
        _b: *const Self::Word,
        _c: *mut f32,
        _rs_c: usize,
        _accumulate: bool,
    ) {
        unreachable!("a format that reads A in place overrides kernel_a_rows")
    }
    /// The longest k block of the one-pass nest ([`gemm_stream`]) given the blocking's `kc`:
    /// [`STREAM_KC_MAX`] at most by default.
    fn stream_kc(kc: usize) -> usize {
        kc.min(STREAM_KC_MAX)
    }
    /// Whether the micro-kernel can round its tile to bf16 and store it into a bf16 C
    /// ([`PanelFormat::kernel_bf16`]), so that the last k block writes the output and no
    /// rounding pass reads C back ([`Bf16Out`]). No format can by default.
    const BF16_OUT: bool = false;
    /// [`PairMicroKernel::kernel_bf16`] on this format's words; only called where
    /// [`PanelFormat::BF16_OUT`] holds, with a packed A micro-panel.
    ///
    /// # Safety
    /// As [`PairMicroKernel::kernel_bf16`]; the CPU has the format's ISA.
    unsafe fn kernel_bf16(
        _steps: usize,
        _a: *const Self::Word,
        _b: *const Self::Word,
        _c: *const f32,
        _rs_c: usize,
        _accumulate: bool,
        _out: Bf16Tile,
    ) {
        unreachable!("a format that stores bf16 overrides kernel_bf16")
    }
}

/// f32 panels for the f32 micro-kernel `K`, inputs `T` widened while packing.
pub(crate) struct F32Panels<K, T>(std::marker::PhantomData<(K, T)>);

impl<K: MicroKernel, T: Element> PanelFormat for F32Panels<K, T> {
    type In = T;
    type Word = f32;
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn steps(kc: usize) -> usize {
        kc
    }

    fn pack_b(b: &[T], ldb: usize, trans_b: bool, kc: usize, nc: usize, dst: &mut [f32]) {
        let nr = K::NR;
        if trans_b {
            // Bᵀ panel by panel: each row of Bᵀ is a column of the panel.
            pack_b_by_panel::<Self>(b, ldb, true, kc, nc, dst);
        } else {
            // B [k, n] in chunks of whole rows (sequential reads).
            let out = SendPtr(dst.as_mut_ptr());
            assert!(dst.len() >= nc.div_ceil(nr) * kc * nr);
            (0..kc.div_ceil(B_ROWS_PER_TASK))
                .into_par_iter()
                .for_each(|t| {
                    let p0 = t * B_ROWS_PER_TASK;
                    let p1 = (p0 + B_ROWS_PER_TASK).min(kc);
                    // SAFETY: K::ISA is available; the buffer holds the block's panels (asserted)
                    // and tasks write disjoint row ranges of them.
                    unsafe { pack_b_rows(K::ISA, b, ldb, kc, nc, nr, p0, p1, out.get()) };
                });
        }
    }

    fn pack_b_seq(
        b: &[T],
        ldb: usize,
        trans_b: bool,
        kc: usize,
        nc: usize,
        dst: &mut [f32],
        row: &mut Vec<f32>,
    ) {
        let nr = K::NR;
        assert!(dst.len() >= nc.div_ceil(nr) * kc * nr);
        if trans_b {
            if row.len() < kc {
                row.resize(kc, 0.0);
            }
            for (jp, panel) in dst
                .chunks_exact_mut(kc * nr)
                .take(nc.div_ceil(nr))
                .enumerate()
            {
                let j0 = jp * nr;
                // SAFETY: K::ISA is available (the caller checked).
                unsafe {
                    pack_bt_panel(
                        K::ISA,
                        &b[j0 * ldb..],
                        ldb,
                        kc,
                        nr,
                        nr.min(nc - j0),
                        panel,
                        row,
                    )
                };
            }
        } else {
            // SAFETY: K::ISA is available; `dst` holds the block's panels (asserted).
            unsafe { pack_b_rows(K::ISA, b, ldb, kc, nc, nr, 0, kc, dst.as_mut_ptr()) };
        }
    }

    fn pack_a(a: &[T], lda: usize, mc: usize, kc: usize, dst: &mut [f32], row: &mut Vec<f32>) {
        if row.len() < kc {
            row.resize(kc, 0.0);
        }
        // SAFETY: K::ISA is available (the caller checked).
        unsafe { pack_a(K::ISA, a, lda, mc, kc, K::MR, dst, row) };
    }

    #[inline(always)]
    unsafe fn kernel(
        steps: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        K::kernel(steps, a, b, c, rs_c, accumulate)
    }
}

/// [`PanelFormat::pack_b`] one micro-panel per parallel task, through `P::pack_b_seq`.
fn pack_b_by_panel<P: PanelFormat>(
    b: &[P::In],
    ldb: usize,
    trans_b: bool,
    kc: usize,
    nc: usize,
    dst: &mut [P::Word],
) {
    let nr = P::NR;
    dst.par_chunks_mut(P::steps(kc) * nr)
        .take(nc.div_ceil(nr))
        .enumerate()
        .for_each(|(jp, panel)| {
            let j0 = jp * nr;
            let at = if trans_b { j0 * ldb } else { j0 };
            A_PACK.with(|cell| {
                let row = &mut cell.borrow_mut().1;
                P::pack_b_seq(&b[at..], ldb, trans_b, kc, nr.min(nc - j0), panel, row);
            });
        });
}

/// bf16 k-pair panels (u32 words, unconverted) for the `vdpbf16ps` micro-kernel `K`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
pub(crate) struct PairPanels<K>(std::marker::PhantomData<K>);

impl<K: PairMicroKernel> PanelFormat for PairPanels<K> {
    type In = u16;
    type Word = u32;
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn steps(kc: usize) -> usize {
        kc.div_ceil(2)
    }

    fn pack_b_seq(
        b: &[u16],
        ldb: usize,
        trans_b: bool,
        kc: usize,
        nc: usize,
        dst: &mut [u32],
        _row: &mut Vec<f32>,
    ) {
        pack_pair_panels(b, ldb, trans_b, kc, nc, K::NR, Self::steps(kc), dst);
    }

    fn pack_b(b: &[u16], ldb: usize, trans_b: bool, kc: usize, nc: usize, dst: &mut [u32]) {
        pack_pair_block::<Self>(b, ldb, trans_b, kc, nc, dst);
    }

    fn pack_a(a: &[u16], lda: usize, mc: usize, kc: usize, dst: &mut [u32], _row: &mut Vec<f32>) {
        let (mr, kp) = (K::MR, kc.div_ceil(2));
        for (ip, panel) in dst
            .chunks_exact_mut(kp * mr)
            .take(mc.div_ceil(mr))
            .enumerate()
        {
            let i0 = ip * mr;
            pack_pairs_rows(&a[i0 * lda..], lda, mr.min(mc - i0), mr, kc, panel);
        }
    }

    #[inline(always)]
    unsafe fn kernel(
        steps: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        K::kernel(steps, a, b, c, rs_c, accumulate)
    }

    /// Twice the blocking's kc, at most [`PAIR_STREAM_KC`].
    fn stream_kc(kc: usize) -> usize {
        (2 * kc).min(PAIR_STREAM_KC)
    }

    const BF16_OUT: bool = true;

    #[inline(always)]
    unsafe fn kernel_bf16(
        steps: usize,
        a: *const u32,
        b: *const u32,
        c: *const f32,
        rs_c: usize,
        accumulate: bool,
        out: Bf16Tile,
    ) {
        K::kernel_bf16(steps, a, b, c, rs_c, accumulate, out)
    }
}

/// [`PanelFormat::pack_b`] for the k-pair formats (`P::In` bf16 bits, `P::Word` a k-pair): B
/// `[k, n]` whose block is more than a quarter of L2 in parallel chunks of whole row pairs
/// across every micro-panel ([`pack_b_pair_rows`]: B read along its rows); a smaller block of B,
/// and Bᵀ, one micro-panel per task.
///
/// Packing a micro-panel reads one 64-byte run of each row of B, at B's row stride, which the
/// hardware prefetcher does not follow once the block leaves L2. One thread, the AVX-512
/// packers, B and its panels warm (`packtime`, Intel Xeon family 6 model 207, 2 MiB L2), by row
/// pairs against by panel: 256² 0.88–0.89, 512² 0.99, 768² 1.23–1.25, 1024² 1.51–1.54,
/// 256 × 4096 1.46–1.47, 2048 × 512 1.53–1.54 (BENCHMARKS.md "AMX: A's whole panels in place;
/// bf16 B pair packing").
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
fn pack_pair_block<P: PanelFormat<In = u16, Word = u32>>(
    b: &[u16],
    ldb: usize,
    trans_b: bool,
    kc: usize,
    nc: usize,
    dst: &mut [u32],
) {
    if trans_b || 4 * kc * nc * std::mem::size_of::<u16>() <= crate::cpu::cache::detected().l2 {
        return pack_b_by_panel::<P>(b, ldb, trans_b, kc, nc, dst);
    }
    let (nr, steps) = (P::NR, P::steps(kc));
    assert!(dst.len() >= nc.div_ceil(nr) * steps * nr);
    // A few tasks per thread (work stealing evens them out), each at least 8 pairs (16 rows).
    let tasks = (4 * rayon::current_num_threads().max(1)).min(steps.div_ceil(8));
    let out = SendPtr(dst.as_mut_ptr());
    (0..tasks).into_par_iter().for_each(|t| {
        let (q0, q1) = (t * steps / tasks, (t + 1) * steps / tasks);
        // SAFETY: `dst` holds the block's panels (asserted); tasks write disjoint pair ranges.
        unsafe { pack_b_pair_rows(b, ldb, kc, nc, nr, steps, (q0, q1), out.get()) };
    });
}

/// Pack the `kc × nc` block of op(B) into bf16 k-pair micro-panels of `nr` columns and `steps`
/// pairs each (`steps ≥ kc.div_ceil(2)`; pairs past k are zero): word `q·nr + j` of a panel holds
/// column `j`'s values at k = 2q and 2q + 1. The `vdpbf16ps` and AMX formats share it.
///
/// B `[k, n]` is packed row pair by row pair across all the block's panels
/// ([`pack_b_pair_rows`]), reading each row's run of the block's width, not panel by panel (one
/// 64-byte run per row at B's row stride): in the one-pass nest's chunks of four panels,
/// 127×8191×65 bf16 on the `vdpbf16ps` path 340–360 → 381 GFLOP/s (`mmtime`, B in cache as the
/// runner times this row, Zen 4, 2 threads, 3 alternated pairs; BENCHMARKS.md "Zen 4: B's row
/// pairs across the chunk"). The AMX format's chunks (eight panels) take the same packing; that
/// was not measured on an AMX host.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
pub(super) fn pack_pair_panels(
    b: &[u16],
    ldb: usize,
    trans_b: bool,
    kc: usize,
    nc: usize,
    nr: usize,
    steps: usize,
    dst: &mut [u32],
) {
    let kp = kc.div_ceil(2);
    if !trans_b {
        assert!(dst.len() >= nc.div_ceil(nr) * steps * nr);
        // SAFETY: `dst` holds the block's panels (asserted) and is this call's alone.
        unsafe { pack_b_pair_rows(b, ldb, kc, nc, nr, steps, (0, steps), dst.as_mut_ptr()) };
        return;
    }
    for (jp, panel) in dst
        .chunks_exact_mut(steps * nr)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let (j0, valid) = (jp * nr, nr.min(nc - jp * nr));
        pack_pairs_rows(&b[j0 * ldb..], ldb, valid, nr, kc, panel);
        panel[kp * nr..].fill(0);
    }
}

/// bf16 panels for the AMX micro-kernel ([`super::micro::amx`]): B as the pair panels of the
/// `vdpbf16ps` format with k padded to whole tile steps (32 values), A as row-major 32-row ×
/// 32-value chunks, the layout an A tile is loaded from.
#[cfg(target_arch = "x86_64")]
pub(crate) struct AmxPanels;

#[cfg(target_arch = "x86_64")]
impl PanelFormat for AmxPanels {
    type In = u16;
    type Word = u32;
    const MR: usize = amx::MR;
    const NR: usize = amx::NR;

    fn steps(kc: usize) -> usize {
        kc.div_ceil(amx::K_STEP) * amx::PAIRS_STEP
    }

    fn pack_b_seq(
        b: &[u16],
        ldb: usize,
        trans_b: bool,
        kc: usize,
        nc: usize,
        dst: &mut [u32],
        _row: &mut Vec<f32>,
    ) {
        pack_pair_panels(b, ldb, trans_b, kc, nc, amx::NR, Self::steps(kc), dst);
    }

    fn pack_b(b: &[u16], ldb: usize, trans_b: bool, kc: usize, nc: usize, dst: &mut [u32]) {
        pack_pair_block::<Self>(b, ldb, trans_b, kc, nc, dst);
    }

    fn pack_a(a: &[u16], lda: usize, mc: usize, kc: usize, dst: &mut [u32], _row: &mut Vec<f32>) {
        amx::pack_a(a, lda, mc, kc, dst);
    }

    unsafe fn enter() {
        amx::configure();
    }

    unsafe fn leave() {
        amx::release();
    }

    #[inline(always)]
    unsafe fn kernel(
        steps: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        amx::kernel(steps, a, b, c, rs_c, accumulate)
    }

    /// Whole tile steps: A's rows are loaded as tiles 32 values (64 bytes) at a time.
    fn a_in_place(kc: usize) -> bool {
        kc.is_multiple_of(amx::K_STEP)
    }

    #[inline(always)]
    unsafe fn kernel_a_rows(
        steps: usize,
        a: *const u16,
        lda: usize,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        amx::kernel_rows(steps, a, lda, b, c, rs_c, accumulate, false)
    }
}

/// The operands of one batch of `A · op(B)`: `a` and `b` start at the batch's first element.
#[derive(Clone, Copy)]
pub(crate) struct Operands<'a, In> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: &'a [In],
    pub lda: usize,
    pub b: &'a [In],
    pub ldb: usize,
    pub trans_b: bool,
}

impl<'a, In> Operands<'a, In> {
    /// `p`'s shape and layout with this batch's `a` and `b`.
    pub fn of(p: &super::MatmulProblem, a: &'a [In], b: &'a [In]) -> Self {
        Operands {
            m: p.m,
            n: p.n,
            k: p.k,
            a,
            lda: p.lda,
            b,
            ldb: p.ldb,
            trans_b: p.trans_b,
        }
    }
}

/// Whether [`gemm`] multiplies an `m × n × k` product in one pass ([`gemm_stream`]) on the
/// current pool: N wide enough that A packed on every thread is no more than B (M × threads ≤
/// N), and A, packed whole on every thread, within one A block (`mc × kc`) or each thread's share
/// of the B block (`kc × nc / threads` words).
fn one_pass<P: PanelFormat>(m: usize, n: usize, k: usize, blocking: &Blocking) -> bool {
    one_pass_tile(m, n, k, blocking, (P::MR, P::NR), P::steps)
}

/// [`one_pass`] for a format given by its tile `(MR, NR)` and words per k block (`steps`).
pub(crate) fn one_pass_tile(
    m: usize,
    n: usize,
    k: usize,
    blocking: &Blocking,
    (mr, nr): (usize, usize),
    steps: fn(usize) -> usize,
) -> bool {
    let (kc_max, nc_max, mc) = block_sizes(blocking, mr, nr);
    let threads = rayon::current_num_threads().max(1);
    // All of A packed, as `gemm_stream` packs it on every thread.
    let a_words = m.div_ceil(mr) * mr * k.div_ceil(kc_max) * steps(kc_max.min(k));
    k > 0 && m * threads <= n && a_words <= (mc * kc_max).max(kc_max * nc_max / threads)
}

/// The blocking's (kc, nc, mc) for an `mr × nr` tile: nc and mc rounded up to whole
/// micro-panels, each at least one.
fn block_sizes(blocking: &Blocking, mr: usize, nr: usize) -> (usize, usize, usize) {
    (
        blocking.kc.max(1),
        blocking.nc.div_ceil(nr).max(1) * nr,
        blocking.mc.div_ceil(mr).max(1) * mr,
    )
}

/// The f32 C of one batch: `c` at row stride `ldc`. With `whole_tiles`, C has room for whole
/// micro-kernel tiles past its `m × n` elements — rows up to M rounded up to the format's MR,
/// columns up to N rounded up to its NR, `ldc` at least that — which hold nothing of the
/// caller's (the internal buffer of a half-precision output), so edge tiles are stored in place.
pub(crate) struct COut<'a> {
    pub c: &'a mut [f32],
    pub ldc: usize,
    pub whole_tiles: bool,
    /// The caller's bf16 C, where the output is bf16 and C holds whole tiles: a format whose
    /// micro-kernel stores bf16 ([`PanelFormat::BF16_OUT`]) writes it in the last k block.
    pub bf16: Option<Bf16Out>,
}

/// A bf16 C (`d`, row stride `ld`) that a micro-kernel writes directly in the last k block: each
/// tile (plus the earlier k blocks' sums, read from the f32 C of whole tiles) rounded once in
/// registers and stored, with no [`Finish`] rounding pass reading C back. Where K is one k block
/// no f32 C is written at all.
///
/// The 127×8191×65 bf16 product (`vdpbf16ps` path, the one-pass nest) spent 11–12% of its time in
/// the rounding pass (`perf`, Zen 4, 2 threads); BENCHMARKS.md "Zen 4: the bf16 C stored by the
/// `vdpbf16ps` micro-kernel".
#[derive(Clone, Copy)]
pub(crate) struct Bf16Out {
    pub d: SendPtr<u16>,
    pub ld: usize,
}

/// One batch of `C (f32, ldc) = A · op(B)` in panel format `P`. `bpack` is the shared B-panel
/// buffer.
pub(crate) fn gemm<P: PanelFormat>(
    ops: Operands<'_, P::In>,
    out: COut<'_>,
    blocking: &Blocking,
    bpack: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    let COut {
        c,
        ldc,
        whole_tiles,
        bf16,
    } = out;
    if whole_tiles && ops.m > 0 && ops.n > 0 {
        // The edge tiles' stores below rely on it.
        let (rows, cols) = (ops.m.div_ceil(P::MR) * P::MR, ops.n.div_ceil(P::NR) * P::NR);
        assert!(
            ldc >= cols && c.len() >= (rows - 1) * ldc + cols,
            "C holds whole tiles"
        );
    }
    let Operands {
        m,
        n,
        k,
        a,
        lda,
        b,
        ldb,
        trans_b,
    } = ops;
    let (mr, nr) = (P::MR, P::NR);
    let (kc_max, nc_max, mc) = block_sizes(blocking, mr, nr);
    let threads = rayon::current_num_threads().max(1);
    // The bf16 C written by the micro-kernel in the last k block (the earlier blocks' sums read
    // back from whole f32 tiles).
    let bf16 = bf16.filter(|_| P::BF16_OUT && whole_tiles);
    if one_pass::<P>(m, n, k, blocking) {
        // No B block to share, so no packing pass over it (see `gemm_stream`).
        gemm_stream::<P>(ops, c, ldc, whole_tiles, kc_max, bf16, finish);
        return;
    }
    let c_ptr = SendPtr(c.as_mut_ptr());

    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        let n_panels = nc.div_ceil(nr);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let steps = P::steps(kc);
            let accumulate = pc > 0;
            let last = pc + kc == k;
            let direct = bf16.filter(|_| last);
            // A block's budget is `mc × kc_max` words: a shorter k block (K below kc, or the
            // last block) takes proportionally more rows, so a small-K product (127×8191×65)
            // packs all of A once and walks N with each B micro-panel reused from L1.
            let mc_k = (mc * kc_max / kc).div_ceil(mr).max(1) * mr;

            let b0 = if trans_b {
                jc * ldb + pc
            } else {
                pc * ldb + jc
            };
            let b_words = n_panels * steps * nr;
            let split = TaskSplit::new(m, mr, mc_k.min(m.div_ceil(mr) * mr), n_panels, threads);
            // A small B block is packed by each thread into its own buffer, inside the tasks;
            // otherwise once, shared by all tasks of this (jc, pc), in a parallel pass first.
            let own_b = own_b_block(
                b_words * std::mem::size_of::<P::Word>(),
                m,
                std::mem::size_of::<P::In>(),
                &split,
                threads,
            );
            let (split, shared, block_id) = if own_b {
                (split.whole_n(), None, next_pack_id())
            } else {
                let bp: &mut [P::Word] = bytemuck::cast_slice_mut(bpack.get(b_words));
                P::pack_b(&b[b0..], ldb, trans_b, kc, nc, bp);
                (split, Some(&*bp), 0)
            };

            (0..split.count()).into_par_iter().for_each(|task| {
                let Some((ic, mc_cur, jp0, jp1)) = split.task(task) else {
                    return;
                };
                A_PACK.with(|cell| {
                    B_OWN.with(|own| {
                        let (abuf, row) = &mut *cell.borrow_mut();
                        let (own_buf, held) = &mut *own.borrow_mut();
                        let bp: &[P::Word] = match shared {
                            Some(bp) => bp,
                            None => {
                                let bp: &mut [P::Word] =
                                    bytemuck::cast_slice_mut(own_buf.get(b_words));
                                if *held != block_id {
                                    P::pack_b_seq(&b[b0..], ldb, trans_b, kc, nc, bp, row);
                                    *held = block_id;
                                }
                                bp
                            }
                        };
                        let ap = prepare_a::<P>(&a[ic * lda + pc..], lda, mc_cur, kc, abuf, row);
                        // SAFETY: tasks write disjoint (rows ic.., columns of panels jp0..jp1) tiles;
                        // `ap` holds the block's rows `ic..ic + mc_cur` (`a` holds them); the caller
                        // checked that the CPU has the format's ISA; a bf16 C holds m × n at `ld`.
                        unsafe {
                            macro_kernel(
                                &tile::<P>(steps),
                                mc_cur,
                                ap,
                                bp,
                                jp0..jp1,
                                n - jc,
                                c_ptr.get().add(ic * ldc + jc),
                                ldc,
                                accumulate,
                                whole_tiles,
                                direct.map(|o| (o.d.get().add(ic * o.ld + jc), o.ld)),
                            );
                        }
                    })
                });
                if let (true, Some(f), None) = (last, finish, bf16) {
                    let c0 = jc + jp0 * nr;
                    f(ic, mc_cur, c0, (jc + jp1 * nr).min(n) - c0);
                }
            });
        }
    }
}

/// The nest for a product wide in N (M × threads ≤ N) whose A, packed whole, fits an A block or
/// each thread's share of the B block's L3 budget (`kc × nc / threads` words): 127×8191×65,
/// 512×4096×4096. The general nest packs each B block in a parallel pass first — a second
/// parallel region, and the packed block written to and read back from L3 by every A block —
/// which a product this short in M or K cannot amortise. Here A is packed once per thread, and
/// each task packs its own range of B's columns on its own thread, in chunks of at most
/// `4·steps(kc)·NR` words (kc the blocking's: half of L2 by its construction) per k block,
/// reading B's rows in runs of a chunk's width, which the hardware prefetcher follows when B
/// comes from memory. Each A micro-panel then runs over the whole chunk, so C is written `MR` rows
/// at a time in runs of the chunk's width; a K beyond one k block is accumulated block by block
/// into the chunk's columns of C while they are in L2.
///
/// Measured against the general nest (BENCHMARKS.md, "Small K in one pass"), inputs and outputs
/// cold as in the runner's rotated sets: 127×8191×65 f32 1.22×; 200×300×129 f32 0.78× — every
/// thread reading all of a cold A costs more than the B pass saved when N is not much wider than
/// M, hence M × threads ≤ N. Running every A micro-panel over each B micro-panel instead (the
/// general nest's order: C written as strips of M rows × 32 columns) was 0.90× at 127×8191×65.
/// With K in several blocks (BENCHMARKS.md "Wide N in one pass"): 512×4096×4096 Bᵀ f16 1.2×.
///
/// Each A micro-panel is read from L3 once per chunk (all of A does not fit L2 beside the chunk),
/// so the chunk's width sets how often: chunks of half of L2 against a quarter (`mmtime`, Intel
/// Xeon family 6 model 207, 2 threads, alternated, BENCHMARKS.md "AMX: B chunks of half of L2 in
/// the one-pass nest"): 512×4096×4096 Bᵀ bf16 on AMX (256 KiB micro-panels at kc 4096) 1.07 (6
/// rounds, one binary) and 1.05 [1.03, 1.09] (12 rounds, builds before/after), 512×14336×4096
/// 1.16 and 1.06; f32 and f16 at 512×4096×4096 1.02 and 1.08; 5 and 6 micro-panels (past half of
/// L2 with the A micro-panel beside them) 0.91 and 0.96 of 4.
///
/// The k blocks here are [`PanelFormat::stream_kc`] long whatever the blocking's kc — at most
/// [`STREAM_KC_MAX`] for the f32 and AMX formats, twice the blocking's kc up to
/// [`PAIR_STREAM_KC`] for the `vdpbf16ps` pairs —
/// and the chunk stays half of L2 (sized from the blocking's kc): the AMX path's kc of 4096
/// becomes k blocks of 2048 and chunks of eight 128 KiB micro-panels — each A micro-panel from
/// L3 serves eight calls instead of four, for one more pass over the chunk's C (M × 256 f32
/// columns, in L2) — and the pair path's kc of 2048 k blocks of 4096 with chunks of two.
fn gemm_stream<P: PanelFormat>(
    ops: Operands<'_, P::In>,
    c: &mut [f32],
    ldc: usize,
    whole_tiles: bool,
    kc_max: usize,
    bf16: Option<Bf16Out>,
    finish: Option<&Finish>,
) {
    let Operands {
        m,
        n,
        k,
        a,
        lda,
        b,
        ldb,
        trans_b,
    } = ops;
    let (mr, nr) = (P::MR, P::NR);
    // k blocks of `kc_first` = min(kc_max, STREAM_KC_MAX, k) (the last shorter): block `q`
    // starts at k = q·kc_first, its A micro-panels at word `q · m_panels · steps(kc_first) · MR`
    // of the packed A.
    let kc_first = P::stream_kc(kc_max).min(k);
    let k_blocks = k.div_ceil(kc_first);
    let m_panels = m.div_ceil(mr);
    let a_block_words = m_panels * P::steps(kc_first) * mr;
    let n_panels = n.div_ceil(nr);
    let chunk = (4 * P::steps(kc_max) / P::steps(kc_first)).max(1);
    // Several tasks per thread, so work stealing evens out a thread that falls behind.
    let tasks = n_panels.min(4 * rayon::current_num_threads().max(1));
    let call = next_pack_id();
    let c_ptr = SendPtr(c.as_mut_ptr());
    let a_words = k_blocks * a_block_words;
    (0..tasks).into_par_iter().for_each(|task| {
        let (jp0, jp1) = (task * n_panels / tasks, (task + 1) * n_panels / tasks);
        STREAM.with(|cell| {
            let s = &mut *cell.borrow_mut();
            if s.a_call != call {
                // Another call's A (or none): pack this call's. Marked invalid meanwhile, so a
                // panic while packing leaves no stale id behind.
                s.a_call = 0;
                let ap: &mut [P::Word] = bytemuck::cast_slice_mut(s.a.get(a_words));
                for (q, dst) in ap.chunks_exact_mut(a_block_words).enumerate() {
                    let pc = q * kc_first;
                    P::pack_a(&a[pc..], lda, m, kc_first.min(k - pc), dst, &mut s.row);
                }
                s.a_call = call;
            }
            let ap: &[P::Word] = bytemuck::cast_slice(s.a.get(a_words));
            let mut j = jp0;
            while j < jp1 {
                let panels = chunk.min(jp1 - j);
                let (j0, cols) = (j * nr, (panels * nr).min(n - j * nr));
                for (q, a_block) in ap.chunks_exact(a_block_words).enumerate() {
                    let pc = q * kc_first;
                    let direct = bf16.filter(|_| q + 1 == k_blocks);
                    let kc = kc_first.min(k - pc);
                    let steps = P::steps(kc);
                    let bp: &mut [P::Word] = bytemuck::cast_slice_mut(s.b.get(panels * steps * nr));
                    let at = if trans_b {
                        j0 * ldb + pc
                    } else {
                        pc * ldb + j0
                    };
                    P::pack_b_seq(&b[at..], ldb, trans_b, kc, cols, bp, &mut s.row);
                    // A micro-panel by A micro-panel, each over the whole chunk: C is written
                    // `MR` rows at a time, each row a run of `cols` (a few streams the prefetcher
                    // follows), not a strip of all M rows per B micro-panel (M short runs).
                    for ip in 0..m_panels {
                        let i0 = ip * mr;
                        // SAFETY: tasks write disjoint column ranges of C (panels jp0..jp1);
                        // `a_block` holds k block q's A micro-panels (`steps · MR` words each,
                        // one after another), so from panel `ip` on it holds that panel, and
                        // `bp` this chunk's; the caller checked the CPU has the format's ISA;
                        // a bf16 C holds m × n at `ld`.
                        unsafe {
                            macro_kernel(
                                &tile::<P>(steps),
                                mr.min(m - i0),
                                APanels::Packed(&a_block[ip * steps * mr..]),
                                bp,
                                0..panels,
                                cols,
                                c_ptr.get().add(i0 * ldc + j0),
                                ldc,
                                q > 0,
                                whole_tiles,
                                direct.map(|o| (o.d.get().add(i0 * o.ld + j0), o.ld)),
                            );
                        }
                    }
                }
                j += panels;
            }
        });
        if let (Some(f), None) = (finish, bf16) {
            let c0 = jp0 * nr;
            f(0, m, c0, (jp1 * nr).min(n) - c0);
        }
    });
}

/// The longest k block of [`gemm_stream`] (the general nest takes the blocking's kc). Measured
/// on 512×4096×4096 Bᵀ bf16 (AMX, Intel Xeon family 6 model 207, 2 threads, alternated on one
/// binary, BENCHMARKS.md "AMX: B chunks of half of L2 in the one-pass nest"): k blocks of 2048
/// with chunks of 8 micro-panels against 4096 with 4, 1.08 (6 rounds); against them, 1024 with
/// 16 0.98, 2048 with 6 or 10 1.04 and 0.95. Builds before/after: 512×4096×4096 Bᵀ 1.09 (8
/// rounds, 1.01–1.16), 512×14336×4096 Bᵀ 1.11 (6), 512×4096×4096 with B as stored 1.16 (6),
/// 256×4096×4096 Bᵀ 1.06 (4). The f32-panel paths' kc is at most 2048 already.
const STREAM_KC_MAX: usize = 2048;

/// The longest k block of [`gemm_stream`] for the `vdpbf16ps` pair panels, whose k blocks are
/// twice the blocking's kc: with the default kc of 2048, 4096, so a K of 4096 is one block — no
/// f32 C written and read back between blocks, the bf16 C stored by the micro-kernel — with
/// chunks of two 256 KiB micro-panels (the chunk stays half of L2: it is sized from the
/// blocking's kc). Zen 4 VM (AMD EPYC family 25 model 17), 2 threads, against k blocks
/// of 2048 with chunks of four (the rule above, measured on AMX): `perfledger run`, 4 alternated
/// rounds (`results/pair-stream-kc-zen4/`), 512×4096×4096 Bᵀ 0.99, 1.06, 1.03, 1.12 and
/// 512×14336×4096 Bᵀ 1.05–1.06; `mmtime` (warm), 512×4096×4096 Bᵀ best 414–424 → 430–437
/// GFLOP/s; chunks of four 256 KiB micro-panels (all of L2) in between, 426–430.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
const PAIR_STREAM_KC: usize = 4096;

/// The micro-kernel of a loop nest as data: tile shape, k steps per micro-panel (k for f32 panels,
/// k-pairs for bf16 pair panels), and the tile update on panels of words `W` — from a packed A
/// micro-panel, or from `MR` rows of A (elements `In`) read in place.
pub(super) struct Tile<W, In> {
    pub mr: usize,
    pub nr: usize,
    pub steps: usize,
    pub kernel: unsafe fn(usize, *const W, *const W, *mut f32, usize, bool),
    /// [`PanelFormat::kernel_a_rows`].
    pub kernel_a_rows: unsafe fn(usize, *const In, usize, *const W, *mut f32, usize, bool),
    /// [`PanelFormat::kernel_bf16`].
    pub kernel_bf16: unsafe fn(usize, *const W, *const W, *const f32, usize, bool, Bf16Tile),
    /// [`PanelFormat::enter`] and [`PanelFormat::leave`]: around each macro-kernel's calls.
    pub enter: unsafe fn(),
    pub leave: unsafe fn(),
}

/// Format `P`'s micro-kernel over `steps` words of k.
fn tile<P: PanelFormat>(steps: usize) -> Tile<P::Word, P::In> {
    Tile {
        mr: P::MR,
        nr: P::NR,
        steps,
        kernel: P::kernel,
        kernel_a_rows: P::kernel_a_rows,
        kernel_bf16: P::kernel_bf16,
        enter: P::enter,
        leave: P::leave,
    }
}

/// Where a macro-kernel's A micro-panels come from.
#[derive(Clone, Copy)]
pub(super) enum APanels<'a, W, In> {
    /// All packed, micro-panel `ip` at word `ip · steps · MR`.
    Packed(&'a [W]),
    /// Whole micro-panels read in place ([`PanelFormat::kernel_a_rows`]): row `i` of the block
    /// at `a + i·lda`; a last, partial micro-panel (`mc % MR` rows) packed in `tail`.
    InPlace {
        a: *const In,
        lda: usize,
        tail: &'a [W],
    },
}

/// Pack the A block (`mc` rows from `a[0]`, row stride `lda`, `kc` values of k) for a
/// macro-kernel into `buf`: whole micro-panels left in place where the format reads them there
/// ([`PanelFormat::a_in_place`]), so only a partial last micro-panel is packed; all of it
/// otherwise.
fn prepare_a<'a, P: PanelFormat>(
    a: &[P::In],
    lda: usize,
    mc: usize,
    kc: usize,
    buf: &'a mut AlignedBuf,
    row: &mut Vec<f32>,
) -> APanels<'a, P::Word, P::In> {
    let (mr, steps) = (P::MR, P::steps(kc));
    if P::a_in_place(kc) {
        let (whole, tail_rows) = (mc / mr, mc % mr);
        let tail: &mut [P::Word] = bytemuck::cast_slice_mut(buf.get(steps * mr));
        if tail_rows > 0 {
            P::pack_a(&a[whole * mr * lda..], lda, tail_rows, kc, tail, row);
        }
        APanels::InPlace {
            a: a.as_ptr(),
            lda,
            tail,
        }
    } else {
        let ap: &mut [P::Word] = bytemuck::cast_slice_mut(buf.get(mc.div_ceil(mr) * steps * mr));
        P::pack_a(a, lda, mc, kc, ap, row);
        APanels::Packed(ap)
    }
}

/// Whether every thread packs the B block (`bytes` packed) into its own buffer inside the tasks,
/// instead of one packing pass shared by all: where the block fits a quarter of one core's L2
/// and `split` has an M block for every thread (each task then runs over all of N).
///
/// A shared block is written by every thread and read by every thread, so each call's packing
/// writes lines the other cores' L2s hold from the previous call, and the pass is a parallel
/// region of its own before the tasks'. At 256³ f32 on Zen 4 (2 threads, `perf`), the shared
/// pass took 13% of the time and 2% with one thread; each thread packing its own copy of all of
/// B, 5%. `mmtime`, rounds alternated (BENCHMARKS.md "Zen 4: a small B block packed per
/// thread").
fn own_b_block(bytes: usize, m: usize, in_bytes: usize, split: &TaskSplit, threads: usize) -> bool {
    threads > 1
        && split.m_blocks >= threads
        && bytes <= crate::cpu::cache::detected().l2 / OWN_B_L2_SHARE
        && 2 * m >= OWN_B_FLOPS_PER_BYTE * threads * in_bytes
}

/// [`own_b_block`]'s bound: a B block of at most this fraction of one core's L2.
const OWN_B_L2_SHARE: usize = 4;

/// [`own_b_block`]'s bound on the FLOPs a thread does per byte of B (`2·M / (threads · size of
/// B's element)`, a thread's share of the rows of A times the two FLOPs each row does with
/// every element of B) below which every thread reading all of B costs more than the shared
/// pass: where B comes from memory, each thread reads all of it instead of a share. Zen 4, 2
/// threads: 200×300×129 f32 with inputs from memory (50 FLOPs per byte) read 0.81–1.04× the
/// shared pass's rate with a per-thread block in six rounds, and in twenty more 0.79–1.67×
/// (neither side ahead beyond the host's swings), so it keeps the shared pass; 256³ f32 (64) and
/// the half-precision products from 128 rows (≥ 64) gained.
const OWN_B_FLOPS_PER_BYTE: usize = 64;

/// How one (jc, pc) block is cut into parallel tasks: M into blocks of whole micro-panels whose
/// sizes differ by at most one panel (a multiple of `threads` blocks), and, when that gives fewer
/// than 2 tasks per thread (small M: LLM projections at 1–512 tokens), N as well, so the
/// work-stealing pool ends with balanced threads.
///
/// M is cut first, into up to 2 blocks per thread of at least [`MIN_BLOCK_PANELS`] micro-panels
/// each, even where one A block would hold all of M: each task packs its own A block, so a task
/// that splits N instead packs the same rows of A again. At 256³ f32, 2 threads, 4 tasks of 2
/// A halves × 2 N halves (A packed twice) against 4 A quarters: 228–230 against 239–243 GFLOP/s
/// (`mmtime`, BENCHMARKS.md "Task split: M before N").
pub(super) struct TaskSplit {
    m: usize,
    mr: usize,
    m_panels: usize,
    m_blocks: usize,
    n_panels: usize,
    n_split: usize,
    panels_per_split: usize,
}

/// The fewest A micro-panels of an M block that [`TaskSplit`] makes to spare an N split (4 × 12
/// rows for the AVX-512 tile: at 256³, 3-panel blocks measured below 4- and 6-panel ones).
const MIN_BLOCK_PANELS: usize = 4;

impl TaskSplit {
    pub(super) fn new(m: usize, mr: usize, mc: usize, n_panels: usize, threads: usize) -> Self {
        let m_panels = m.div_ceil(mr);
        let m_blocks = m.div_ceil(mc).div_ceil(threads) * threads;
        // Up to 2 blocks per thread of ≥ MIN_BLOCK_PANELS panels, a multiple of `threads`.
        let by_rows = (m_panels / MIN_BLOCK_PANELS).min(2 * threads) / threads * threads;
        let m_blocks = m_blocks.max(by_rows).min(m_panels);
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

    /// The same M blocks, each over all of N (no N split).
    fn whole_n(self) -> Self {
        TaskSplit {
            n_split: 1,
            panels_per_split: self.n_panels,
            ..self
        }
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

/// Run micro-kernels over B panels `jp` and all micro-panels of the A block (`mc` rows, packed
/// or in place: [`APanels`]). `n_rem` is the number of valid columns from the start of the B
/// panel buffer. With `whole_tiles` ([`COut`]) edge tiles are stored in place like whole ones.
/// With `bf16_out` (a bf16 C at the block's top-left and its row stride: [`Bf16Out`]), every
/// tile, edges included, is rounded and stored there by the micro-kernel instead (with
/// `accumulate`, added to the f32 tile of `c`, which then holds whole tiles), and `c` is not
/// written; only with packed A micro-panels.
///
/// # Safety
/// `c` addresses the block's top-left element with row stride `ldc` (with `whole_tiles`, whole
/// tiles past the block's edges: rows up to `mc` rounded up to MR, columns up to NR past the last
/// panel's first); the caller owns the tiles; with `bf16_out`, its pointer addresses the
/// block's top-left element of a bf16 C whose `mc` rows of `n_rem` columns at its row stride are
/// the caller's to write, `a` is packed, and with `accumulate` `c` holds whole tiles;
/// `a` holds the block's micro-panels (packed whole, or rows `0..mc` of `steps` words' values
/// in place and a packed partial last one) and `bp` whole packed micro-panels; the CPU supports
/// the tile's ISA.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn macro_kernel<W, In>(
    t: &Tile<W, In>,
    mc: usize,
    a: APanels<'_, W, In>,
    bp: &[W],
    jp: std::ops::Range<usize>,
    n_rem: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    whole_tiles: bool,
    bf16_out: Option<(*mut u16, usize)>,
) {
    let (mr, nr, steps) = (t.mr, t.nr, t.steps);
    // Scratch for edge tiles, large enough for any micro-kernel here (≤ 32×32).
    let mut tile = [0f32; 32 * 32];
    debug_assert!(mr * nr <= tile.len());
    debug_assert!(bp.len() >= jp.end * steps * nr);
    match a {
        APanels::Packed(ap) => debug_assert!(ap.len() >= mc.div_ceil(mr) * steps * mr),
        APanels::InPlace { tail, .. } => debug_assert!(tail.len() >= steps * mr),
    }
    // The tile update of A micro-panel `ip` and B micro-panel `b` into `c` (row stride `rs_c`).
    let update = |ip: usize, b: *const W, c: *mut f32, rs_c: usize| match a {
        APanels::Packed(ap) => {
            (t.kernel)(
                steps,
                ap.as_ptr().add(ip * steps * mr),
                b,
                c,
                rs_c,
                accumulate,
            );
        }
        APanels::InPlace { a, lda, .. } if (ip + 1) * mr <= mc => {
            (t.kernel_a_rows)(steps, a.add(ip * mr * lda), lda, b, c, rs_c, accumulate);
        }
        APanels::InPlace { tail, .. } => {
            (t.kernel)(steps, tail.as_ptr(), b, c, rs_c, accumulate);
        }
    };
    (t.enter)();
    for jp in jp {
        let b_panel = bp.as_ptr().add(jp * steps * nr);
        let nr_cur = nr.min(n_rem - jp * nr);
        for ip in 0..mc.div_ceil(mr) {
            let mr_cur = mr.min(mc - ip * mr);
            if let Some((d, ld)) = bf16_out {
                let APanels::Packed(ap) = a else {
                    unreachable!("a bf16 C is written from packed A micro-panels only")
                };
                debug_assert!(whole_tiles || !accumulate);
                (t.kernel_bf16)(
                    steps,
                    ap.as_ptr().add(ip * steps * mr),
                    b_panel,
                    c.add(ip * mr * ldc + jp * nr),
                    ldc,
                    accumulate,
                    Bf16Tile {
                        d: d.add(ip * mr * ld + jp * nr),
                        rs_d: ld,
                        rows: mr_cur,
                        cols: nr_cur,
                    },
                );
                continue;
            }
            let c_tile = c.add(ip * mr * ldc + jp * nr);
            if whole_tiles || (mr_cur == mr && nr_cur == nr) {
                update(ip, b_panel, c_tile, ldc);
            } else {
                // Row by row as whole runs (memcpy), not element by element: the AMX path's
                // 32-row tiles make every fourth tile of a 127-row C an edge tile.
                if accumulate {
                    for i in 0..mr_cur {
                        let row = tile.as_mut_ptr().add(i * nr);
                        std::ptr::copy_nonoverlapping(c_tile.add(i * ldc), row, nr_cur);
                    }
                }
                update(ip, b_panel, tile.as_mut_ptr(), nr);
                for i in 0..mr_cur {
                    std::ptr::copy_nonoverlapping(
                        tile.as_ptr().add(i * nr),
                        c_tile.add(i * ldc),
                        nr_cur,
                    );
                }
            }
        }
    }
    (t.leave)();
}

#[cfg(test)]
mod tests {
    use super::TaskSplit;

    /// The AMX format leaves whole 32-row micro-panels of A in place for k blocks of whole tile
    /// steps and packs only the partial last one (as `pack_a` packs those rows); other k blocks
    /// and the f32 formats are packed whole.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn amx_a_in_place_for_whole_tile_steps() {
        use super::{prepare_a, APanels, AmxPanels, PanelFormat};
        use crate::cpu::AlignedBuf;
        let (lda, mc) = (70, 70);
        let a: Vec<u16> = (0..mc * lda).map(|i| i as u16).collect();
        let (mut buf, mut row) = (AlignedBuf::default(), Vec::new());
        for kc in [32, 64] {
            match prepare_a::<AmxPanels>(&a, lda, mc, kc, &mut buf, &mut row) {
                APanels::InPlace {
                    a: at,
                    lda: l,
                    tail,
                } => {
                    assert_eq!((at, l), (a.as_ptr(), lda), "kc {kc}");
                    let mut want = vec![0u32; AmxPanels::steps(kc) * AmxPanels::MR];
                    AmxPanels::pack_a(&a[64 * lda..], lda, mc - 64, kc, &mut want, &mut row);
                    assert_eq!(&tail[..want.len()], &want[..], "kc {kc}: the packed tail");
                }
                APanels::Packed(_) => panic!("kc {kc}: whole tile steps are read in place"),
            }
        }
        for kc in [31, 33] {
            let packed = prepare_a::<AmxPanels>(&a, lda, mc, kc, &mut buf, &mut row);
            assert!(matches!(packed, APanels::Packed(_)), "kc {kc} is packed");
        }
        let af: Vec<f32> = a.iter().map(|&x| f32::from(x)).collect();
        type F32 = super::F32Panels<crate::cpu::matmul::micro::portable::Portable4x8, f32>;
        let packed = prepare_a::<F32>(&af, lda, mc, 32, &mut buf, &mut row);
        assert!(
            matches!(packed, APanels::Packed(_)),
            "f32 panels are packed"
        );
    }

    /// Every (row, B panel) of the block belongs to exactly one task, rows start on micro-panel
    /// boundaries, and the split keeps to its promises: a multiple of `threads` M blocks unless there
    /// is one per micro-panel, at least 2 tasks per thread where the M blocks' B panels allow it, and N
    /// split only where M gives fewer than 2 blocks per thread.
    #[test]
    fn task_split_covers_each_tile_once() {
        for threads in [1, 2, 3, 16] {
            for mr in [1, 12] {
                for m in [1, 11, 12, 13, 64, 180, 181, 200, 256, 512, 1000] {
                    for mc in [12, 96, 768] {
                        for n_panels in [1, 3, 8, 128] {
                            let s = TaskSplit::new(m, mr, mc, n_panels, threads);
                            let mut seen = vec![0u8; m * n_panels];
                            let mut m_blocks = std::collections::BTreeSet::new();
                            for t in 0..s.count() {
                                let Some((ic, rows, jp0, jp1)) = s.task(t) else {
                                    continue;
                                };
                                assert_eq!(ic % mr, 0, "m {m} mr {mr} task {t}");
                                m_blocks.insert(ic);
                                for i in ic..ic + rows {
                                    for jp in jp0..jp1 {
                                        seen[i * n_panels + jp] += 1;
                                    }
                                }
                            }
                            let ctx = format!("m {m} mr {mr} mc {mc} n {n_panels} t {threads}");
                            assert!(seen.iter().all(|&c| c == 1), "{ctx}");
                            let panels = m.div_ceil(mr);
                            let blocks = m_blocks.len();
                            assert!(blocks % threads == 0 || blocks == panels, "{ctx}");
                            if s.n_split > 1 {
                                assert!(m_blocks.len() < 2 * threads, "{ctx}");
                            }
                            let pieces = m_blocks.len() * n_panels;
                            assert!(s.count() >= (2 * threads).min(pieces), "{ctx}");
                        }
                    }
                }
            }
        }
    }

    /// The per-thread B block ([`super::own_b_block`]): taken at the M bound and not one row
    /// under it (256 f32 rows, 128 half rows on 2 threads), for a block of a quarter of L2 and
    /// not one word more, never on one thread; its split keeps the M blocks, each over all of N.
    #[test]
    fn own_b_block_bounds_and_split() {
        use super::{own_b_block, OWN_B_L2_SHARE};
        let quarter = crate::cpu::cache::detected().l2 / OWN_B_L2_SHARE;
        let split = |m: usize, threads: usize| TaskSplit::new(m, 12, 96, 8, threads);
        for (in_bytes, m) in [(4, 256), (2, 128)] {
            assert!(own_b_block(quarter, m, in_bytes, &split(m, 2), 2), "{m}");
            assert!(
                !own_b_block(quarter, m - 1, in_bytes, &split(m - 1, 2), 2),
                "{m}"
            );
            assert!(
                !own_b_block(quarter + 4, m, in_bytes, &split(m, 2), 2),
                "{m}"
            );
            assert!(!own_b_block(quarter, m, in_bytes, &split(m, 1), 1), "{m}");
            assert!(
                own_b_block(quarter, 3 * m / 2, in_bytes, &split(3 * m / 2, 3), 3),
                "{m}"
            );
        }
        let s = split(256, 2);
        let w = split(256, 2).whole_n();
        assert_eq!(w.count(), s.m_blocks);
        let mut rows = 0;
        for t in 0..w.count() {
            let (ic, mc, jp0, jp1) = w.task(t).unwrap();
            assert_eq!((ic, jp0, jp1), (rows, 0, 8));
            rows += mc;
        }
        assert_eq!(rows, 256);
    }
}
