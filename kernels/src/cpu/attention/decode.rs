//! Flash-decoding for `q_len = 1`: the KV sequence of each (batch, KV head) is split across
//! threads, each split computes a partial softmax result for the whole query group, and the
//! partials are combined afterwards.
//!
//! ```text
//! task (b, g, split s = keys ja..jb):                 (one task reads its K/V range once for all
//!   Qf ← the group's query rows in f32                  query heads of the group: GQA sharing)
//!   for each block of DBK keys (32 for decode.avx512bf16):
//!     Kf, Vf ← K, V rows in f32
//!     S[r][j] = Qf[r] · Kf[j]          (dot products, KD keys × GR queries, transpose-reduced)
//!     m', α, P, l as in flash;  O[r] = α_r·O[r] + Σ_j P[r][j]·Vf[j]
//!   partial[s] ← (m·c, l, O)
//! combine (b, h): M = max_s m_s·c;  w_s = 2^(m_s·c − M);  O = Σ_s w_s·O_s / Σ_s w_s·l_s
//! ```
//!
//! The two products are a [`Products`] implementation: [`F32Dots`] as drawn above (K and V
//! widened to f32), or `decode_bf16::PairDots` (`decode.avx512bf16`: bf16 pairs on `vdpbf16ps`).
//!
//! Decode is memory-bound (each K/V byte feeds `4·group` FLOPs at most), so the point is to keep
//! every core streaming K/V: a per-head loop would leave cores idle whenever heads < threads and
//! cannot balance otherwise. Splits are sized so there are ≥ 16 tasks per thread (≥ 256 keys
//! each). Tiles index accumulator arrays by constant loop indices (unrolled into registers).

#![allow(clippy::needless_range_loop)]

use super::flash::pv_tile_n;
use super::Mutation;
use crate::cpu::simd::{convert_row, exp2_scalar, load_elem, prefetch_l2, Simd};
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::{DType, Element};
use crate::problem::AttentionProblem;
use std::f32::consts::LOG2_E;

/// Keys per block inside a split, and rows of K and V prefetched ahead of the block being read.
/// Chosen by measurement on the Zen 5 VM (decode 1×32/8×8192×128 bf16, 2 threads, four 32 MiB
/// input sets rotated, best of 10 interleaved rounds): blocks of 16 keys with 24 rows ahead
/// reached 67 GB/s, 32/32 57.5, 64/64 51-56, 8/32 38, 16 without prefetch 57; under a competing
/// process the same order held (32, 25, 28 GB/s for 16/24, 32/32, 16/0). Small blocks interleave
/// the K and V streams finely, which keeps more misses in flight.
pub(crate) const DBK: usize = 16;
pub(crate) const PREFETCH_ROWS: usize = 24;

/// How a task prefetches its K and V rows: `l1` rows ahead of the block being read into L1
/// (`prefetcht0`; 0: none), `l2` rows ahead into L2 (`prefetcht1`; 0: none), and, with
/// `v_in_block`, the V rows of the block being scored into L1, each key's after its score tile
/// (no K prefetch).
///
/// When a task's share of K and V cannot stay in its core's L2 between calls (K + V past the
/// threads' L2s together), they come from L3 or memory, and the L2 prefetch keeps more lines in
/// flight than the L1 fill buffers allow: on the Xeon family 6 model 207 VM (decode
/// 1×32/8×8192×128, 2 threads, K + V from memory as the runner's rotation reads them, rounds
/// alternated), 16 rows into L1 with 64 into L2 read K + V at 1.09× the rate of 24 into L1 alone
/// in bf16 (11 rounds, 1.02–1.16) and 1.09× in f16 (5 rounds, 1.02–1.15); 16/48, 8/64, 16/96,
/// 24/64, 24/128 and 32/96 measured 0.95–1.07× in the same rounds. With K + V left in L3 the
/// same prefetch costs (0.91×), so it is chosen only for sizes that are not L2-resident.
///
/// On AMD family 25 ([`Prefetch::for_this_cpu`]) the f32 products (`decode.avx512f`) prefetch
/// only the block's V rows, while its scores are computed, so they have arrived for P·V; the
/// hardware prefetcher follows the K stream. The pair products (`decode.avx512bf16`), with less
/// arithmetic per byte, keep the rows-ahead prefetch. Zen 4 VM (family 25 model 17), 2 threads,
/// `perfledger run` of 1×32/8×8192×128 (K + V rotated as the runner does), median GB/s, the
/// two alternated on one binary (BENCHMARKS.md "Zen 4: decode prefetches the block's V"):
/// `decode.avx512f` bf16 24.0–29.1 → 31.0–33.6 and f16 23.4–29.9 → 29.7–30.4 (4 rounds);
/// `decode.avx512bf16` 32.7–39.9 with 16/64 against 25.0–30.6 with the block's V (6 rounds).
/// Zen 3 shares the family and was not measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefetch {
    pub l1: usize,
    pub l2: usize,
    pub v_in_block: bool,
    /// Parts of its split a task reads in lockstep, each a K and a V stream (paths with
    /// [`Products::STREAMS`], splits of whole blocks), each prefetched `l1 / streams` and
    /// `l2 / streams` rows ahead: [`Prefetch::STREAMS`] with the L2 prefetch, else 1. Each block
    /// takes `16 / streams` consecutive keys of every part, so each dot tile of four keys reads
    /// rows from four places, as the transposed GEMV reads eight rows at a time on Intel
    /// (`cpu::matmul::gemv`). Xeon family 6 model 207 VM, h32/8 kv 8192 d128, 2 threads, K + V
    /// rotated from memory as the runner does (`results/decode-streams/`): against a plain read of
    /// the same buffers call by call (`dectime`, `DECTIME_READ_AB=2`), bf16 0.83–0.86 with one
    /// stream, 0.92–0.96 with four, 0.95 with two, 0.79–0.81 with sixteen; f16 0.81–0.83 against
    /// 0.86–0.88 with four. In `perfledger run`, builds alternated in seven rounds, the share of
    /// the read alongside rose from a median of 0.647 to 0.741 in bf16 (higher in 7 of 7) and
    /// from 0.641 to 0.691 in f16 (5 of 7). Not measured on AMD (its f32 products prefetch the
    /// block's V instead, [`Prefetch::V_IN_BLOCK`]) or for the pair products.
    pub streams: usize,
}

impl Prefetch {
    /// Rows into L1 alongside the L2 prefetch.
    const L1_WITH_L2: usize = 16;
    /// Rows into L2.
    const L2_ROWS: usize = 64;
    /// Streams a task reads with the L2 prefetch.
    const STREAMS: usize = 4;

    /// The block's V rows only (AMD family 25).
    pub const V_IN_BLOCK: Prefetch = Prefetch {
        l1: 0,
        l2: 0,
        v_in_block: true,
        streams: 1,
    };

    /// The prefetch of `p` with `elem_bytes`-byte elements on `threads` threads, given the L2
    /// size of one core, in rows ahead (measured on Intel).
    pub fn new(p: &AttentionProblem, elem_bytes: usize, threads: usize, l2: usize) -> Prefetch {
        let kv_bytes = 2 * p.kv_len_elems() * elem_bytes;
        let (l1, l2, streams) = if kv_bytes > l2 * threads.max(1) {
            (Self::L1_WITH_L2, Self::L2_ROWS, Self::STREAMS)
        } else {
            (PREFETCH_ROWS, 0, 1)
        };
        Prefetch {
            l1,
            l2,
            v_in_block: false,
            streams,
        }
    }

    /// The prefetch measured best on this CPU kind and path: [`Prefetch::V_IN_BLOCK`] for the
    /// f32 products (`pairs` false) on AMD family 25, [`Prefetch::new`] otherwise.
    pub fn for_this_cpu(
        p: &AttentionProblem,
        pairs: bool,
        elem_bytes: usize,
        threads: usize,
        l2: usize,
    ) -> Prefetch {
        match crate::cpu::cpu_kind() {
            crate::cpu::CpuKind::AmdFamily25 if !pairs => Self::V_IN_BLOCK,
            // The pair products read one stream (not measured in several).
            _ if pairs => Prefetch {
                streams: 1,
                ..Self::new(p, elem_bytes, threads, l2)
            },
            _ => Self::new(p, elem_bytes, threads, l2),
        }
    }
}

/// A block whose P is ready and whose `O = α·O + P·V` a path defers to interleave it with the
/// next block's scores ([`Products::finish`] does the last one).
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
pub(crate) struct Deferred {
    /// The block's first V row.
    pub v: usize,
    /// Its keys.
    pub nk: usize,
    /// Whether it is the task's first block (`O = P·V`).
    pub first: bool,
}

/// Whether the pair products (`decode.avx512bf16`) interleave each block's P·V with the next
/// block's scores, for elements of `elem_bytes` on `threads` threads with an L2 of `l2` bytes
/// per core: on AMD family 25 when K + V are past the threads' L2s together (the rule that takes
/// the L2 prefetch in [`Prefetch::new`]), so each call reads them from L3 or memory.
///
/// A block's scores read its K rows and its P·V its V rows: done in turn, each block reads 4 KiB
/// of K and then 4 KiB of V with the compute between. Deferred, the block's P·V is done one
/// column chunk (64 columns of all its keys) at a time between the next block's score tiles, so
/// K and V rows are read in turn. On the Zen 4 VM (family 25 model 17, 2 threads;
/// `DECTIME_INTERLEAVE_AB=1 dectime KV bf16 avx512bf16`, which alternates the two call by call
/// on K and V rotated from memory and pairs adjacent calls, so both see the same memory state)
/// the interleaved calls were faster by a median of 1.08–1.11× at kv 8192 (three runs of ~1000
/// pairs, faster in 85–93% of them), 1.15 at kv 4096, 1.09 at 2048, 1.08 at 1024, 1.15 on one
/// thread; the same calls paired with themselves: 1.006. An earlier order, the deferred P·V 8
/// keys at a time over all columns, gained 1.03–1.08 in the same runs' alternation. The task
/// then prefetches V rows a block behind K's, the same distance ahead of their use: paired call
/// by call against V at K's distance, 1.04–1.08× (lags of 8 and 32 rows: slower than 16).
///
/// Decode assumes K and V come from memory at every size past the L2s: a model's decode reads
/// each layer's K and V once per token, as the runner's rotation does. The case it gives up is
/// one small K/V re-read call after call from the L3 (`DECTIME_SETS=1`): there the interleave is
/// 0.98× at kv 2048 and 1.00 at kv 8192 (BENCHMARKS.md "Zen 4, tenth session: decode's deferred
/// P·V by column chunks, at every size past the L2s").
pub(crate) fn interleave_for_this_cpu(
    p: &AttentionProblem,
    pairs: bool,
    elem_bytes: usize,
    threads: usize,
    l2: usize,
) -> bool {
    let kv_bytes = 2 * p.kv_len_elems() * elem_bytes;
    pairs
        && kv_bytes > l2 * threads.max(1)
        && crate::cpu::cpu_kind() == crate::cpu::CpuKind::AmdFamily25
}

/// Per-thread scratch.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The block waiting for its P·V, if any.
    pub deferred: Option<Deferred>,
    pub qf: AlignedBuf,
    pub kf: AlignedBuf,
    pub vf: AlignedBuf,
    sc: AlignedBuf,
    o: AlignedBuf,
    pp: AlignedBuf,
    stats: AlignedBuf,
}

/// How the KV sequence is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Splits {
    pub n: usize,
    /// Keys per split (a multiple of [`DBK`]), the last one shorter.
    pub len: usize,
}

impl Splits {
    /// At least `16 · threads` tasks over `batch · kv_heads` sequences, splits of ≥ 256 keys.
    pub fn new(p: &AttentionProblem, threads: usize) -> Splits {
        let seqs = (p.batch * p.kv_heads).max(1);
        let want = (16 * threads).div_ceil(seqs).max(1);
        let most = p.kv_len.div_ceil(256).max(1);
        let n = want.min(most);
        let len = p.kv_len.div_ceil(n).div_ceil(DBK) * DBK;
        Splits {
            n: p.kv_len.div_ceil(len),
            len,
        }
    }
}

/// Everything a task reads and where its partial result goes.
pub(crate) struct Ctx<'a, T> {
    pub p: AttentionProblem,
    pub q: &'a [T],
    pub k: &'a [T],
    pub v: &'a [T],
    pub splits: Splits,
    /// Query rows per group, rounded up to the dot kernel's GR.
    pub gp: usize,
    /// `[task][gp][2 + dp]`: `m·c`, `l`, then the unnormalized O row.
    pub part: SendPtr<f32>,
    pub dp: usize,
    pub prefetch: Prefetch,
    /// Whether the path interleaves a block's P·V with the next block's scores (`decode_bf16`;
    /// [`interleave_for_this_cpu`]).
    pub interleave: bool,
    /// A deliberate bug (the verification tests' mutants); `Mutation::None` when registered.
    pub mutation: Mutation,
}

impl<T> Ctx<'_, T> {
    pub fn part_stride(&self) -> usize {
        self.gp * (2 + self.dp)
    }
}

impl<T: Element> Ctx<'_, T> {
    /// The same context with its buffers typed as bf16, for the bf16-only products (`T` is
    /// bf16: the caller checked the dtype).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the bf16 products are x86-64's
    pub fn as_bf16(&self) -> Ctx<'_, half::bf16> {
        debug_assert_eq!(T::DTYPE, DType::BF16);
        Ctx {
            p: self.p,
            q: bytemuck::cast_slice(self.q),
            k: bytemuck::cast_slice(self.k),
            v: bytemuck::cast_slice(self.v),
            splits: self.splits,
            gp: self.gp,
            part: self.part,
            dp: self.dp,
            prefetch: self.prefetch,
            interleave: self.interleave,
            mutation: self.mutation,
        }
    }
}

/// `S[r][jj + key] = Qf[r] · K[key]` for `r < GR`, `key < KD` (K rows at `krows`, element type
/// `E`): KD·GR = LANES accumulators reduced together by one transpose-and-add tree.
#[inline(always)]
unsafe fn dots<S: Simd, E: Element, const KD: usize, const GR: usize>(
    nvp: usize,
    krows: [*const E; KD],
    qf: *const f32,
    ldq: usize,
    sc: *mut f32,
    lds: usize,
) {
    let l = S::LANES;
    debug_assert_eq!(KD * GR, l);
    let mut acc = [[S::zero(); GR]; KD];
    for c in 0..nvp {
        let mut qv = [S::zero(); GR];
        for (r, q) in qv.iter_mut().enumerate() {
            *q = S::load(qf.add(r * ldq + c * l));
        }
        // One K vector live at a time: with AVX-512F alone (no VL) the 256-bit half loads can
        // only use the low 16 registers, and four of them at once made LLVM spill accumulators.
        for key in 0..KD {
            let kv = load_elem::<S, E>(krows[key].add(c * l));
            for r in 0..GR {
                acc[key][r] = S::fma(kv, qv[r], acc[key][r]);
            }
        }
    }
    reduce_scores::<S, KD, GR>(&acc, sc, lds);
}

/// The scores of a dot tile, `S[r][key]` = the sum of `acc[key][r]`'s lanes, into `sc` (rows
/// `lds` apart): the `KD·GR` sums (a multiple of `LANES`, at most 16) by a transpose-and-add
/// tree per `LANES` of them.
#[inline(always)]
pub(crate) unsafe fn reduce_scores<S: Simd, const KD: usize, const GR: usize>(
    acc: &[[S::V; GR]; KD],
    sc: *mut f32,
    lds: usize,
) {
    debug_assert!(KD * GR <= 16 && (KD * GR).is_multiple_of(S::LANES));
    // Lane r·KD + key (of the vectors of sums in turn) holds S[r][key].
    let mut flat = [S::zero(); 16];
    for r in 0..GR {
        for key in 0..KD {
            flat[r * KD + key] = acc[key][r];
        }
    }
    let mut tmp = [0f32; 16];
    for i in (0..KD * GR).step_by(S::LANES) {
        S::store(
            tmp.as_mut_ptr().add(i),
            S::hsum_lanes(&flat[i..i + S::LANES]),
        );
    }
    for r in 0..GR {
        std::ptr::copy_nonoverlapping(tmp.as_ptr().add(r * KD), sc.add(r * lds), KD);
    }
}

/// The per-task state a block updates.
pub(crate) struct State {
    /// Query rows (padded to `gp`) and their padded width (a multiple of the path's `DW`).
    pub gp: usize,
    pub dp: usize,
    /// The query rows in the path's layout ([`Products::load_q`]).
    pub qf: *const f32,
    /// Keys per block ([`Products::BK`]): the row stride of `sc` (and twice `pp`'s).
    pub bk: usize,
    /// Scores, then P: `[gp][bk]` f32.
    pub sc: *mut f32,
    /// The O accumulator: `[gp][dp]` f32, in the path's column order ([`Products::store_o`]).
    pub o: *mut f32,
    /// P rounded to bf16 pairs for the pair paths: `[gp][bk / 2]` words.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
    pub pp: *mut u32,
    m: *mut f32,
    mc: *mut f32,
    /// The running sum of each row's P as [`LSUM_LANES`] lane sums (`[gp][LSUM_LANES]`; an ISA
    /// with fewer lanes uses the first ones).
    lsum: *mut f32,
    pub alpha: *mut f32,
    /// The `NoRescale` mutant: α = 1 for O (l is still rescaled).
    no_rescale: bool,
    /// [`Ctx::interleave`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 paths only
    pub interleave: bool,
    /// Where position `i` of a block of [`DBK`] keys reads its K and V rows: elements from the
    /// block's base (`i · head_dim` in one stream; [`Prefetch::streams`]).
    pub key_off: [usize; DBK],
    /// Streams the block's positions come from (`key_off`): position `i` is in stream `i %
    /// streams`, the positions of one stream are consecutive rows.
    pub streams: usize,
}

/// Lanes of a row's running sum in [`State`]: the widest vector's.
const LSUM_LANES: usize = 16;

impl State {
    /// Row `r`'s running sum of P: its lane sums added.
    ///
    /// # Safety
    /// The ISA of `S` is available; `r < gp`.
    #[inline(always)]
    unsafe fn row_sum<S: Simd>(&self, r: usize) -> f32 {
        debug_assert!(S::LANES <= LSUM_LANES);
        S::hsum(S::load(self.lsum.add(r * LSUM_LANES)))
    }
}

/// The products of a decode path: how the group's query rows are held, one block's scores and
/// `O = α·O + P·V` (the online softmax between them is [`softmax`]), and where each O column
/// is kept. The task ([`task`]) owns the splits, the prefetch and the partial results.
///
/// - [`F32Dots`]: K and V widened to f32 (in registers, or into padded scratch), f32 FMA;
/// - `decode_bf16::PairDots`: bf16 kept as pairs for `vdpbf16ps` (bf16 inputs on CPUs with
///   AVX512_BF16), P rounded to bf16 for the P·V product.
///
/// # Safety (every method)
/// The ISA the implementation is compiled for is available (the methods are inlined into a
/// `#[target_feature]` entry); `dp` (and `st.dp`) is `head_dim` rounded up to a multiple of
/// [`Products::DW`], `gp` (`st.gp`) the group rounded up to a multiple of [`Products::GR`], and
/// the scratch pointers in `st` come from `ws` sized for them by [`task`].
pub(crate) trait Products<T: Element> {
    /// Query rows per tile: `gp` is `group` rounded up to it.
    const GR: usize;
    /// Elements of head_dim per step: `dp` is `head_dim` rounded up to it.
    const DW: usize;

    /// The `rows` query rows of the group (`d` elements at `q`, rows `d` apart) into `ws`, `gp`
    /// rows of `dp` in the path's layout (padding zero); returns where they are. `q` holds
    /// `rows · d` readable elements.
    unsafe fn load_q(
        ws: &mut Scratch,
        q: *const T,
        rows: usize,
        d: usize,
        gp: usize,
        dp: usize,
    ) -> *const f32;

    /// Keys per block: [`DBK`] unless the path sets another multiple of 16.
    const BK: usize = DBK;

    /// Whether [`Products::block`] reads its rows where [`State::key_off`] says (so a task may
    /// walk its split as [`Prefetch::streams`] streams); otherwise the rows are consecutive.
    const STREAMS: bool = false;

    /// One block of `1 ≤ nk ≤ Self::BK` keys whose K/V rows (`d` elements) are at `kb`, `vb`
    /// plus [`State::key_off`] where [`Products::STREAMS`], else `d` apart (`nk` readable rows
    /// each): scores into `st.sc`, [`softmax`], `O = α·O + P·V`
    /// (`O = P·V` when `first`; otherwise `st.o` holds this split's O). `prefetch(key, n)` is
    /// called for keys `key..key + n` of the block (each key once), spread between the score
    /// tiles.
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(
        st: &State,
        ws: &mut Scratch,
        c: f32,
        kb: *const T,
        vb: *const T,
        d: usize,
        nk: usize,
        first: bool,
        prefetch: impl FnMut(usize, usize),
    );

    /// The products a path deferred past the task's last block ([`Deferred`]), before O is
    /// read; `d` as in [`Products::block`]. Nothing by default.
    unsafe fn finish(_st: &State, _ws: &mut Scratch, _d: usize) {}

    /// One O row (`dp` f32 at `o`, the path's column order) into `dst` in head_dim order (`dp`
    /// writable f32).
    unsafe fn store_o(o: *const f32, dst: *mut f32, dp: usize);
}

/// The f32 products on the vocabulary `S`: scores by `KD` keys × `GR` query rows per dot tile,
/// P·V by `GR` rows × `NV` vectors.
pub(crate) struct F32Dots<S, const KD: usize, const GR: usize, const NV: usize>(
    std::marker::PhantomData<S>,
);

impl<S: Simd, T: Element, const KD: usize, const GR: usize, const NV: usize> Products<T>
    for F32Dots<S, KD, GR, NV>
{
    const GR: usize = GR;
    const DW: usize = S::LANES;
    const STREAMS: bool = true;

    #[inline(always)]
    unsafe fn load_q(
        ws: &mut Scratch,
        q: *const T,
        rows: usize,
        d: usize,
        gp: usize,
        dp: usize,
    ) -> *const f32 {
        let qf = ws.qf.get(gp * dp).as_mut_ptr();
        for r in 0..gp {
            if r < rows {
                convert_row::<S, T>(q.add(r * d), qf.add(r * dp), d, dp);
            } else {
                std::ptr::write_bytes(qf.add(r * dp), 0, dp);
            }
        }
        qf
    }

    /// K/V rows are read in place (widened in registers) when `head_dim` is a multiple of the
    /// vector width (and, for f16, where [`Simd::F16_IN_REGISTERS`]), else widened into
    /// zero-padded f32 scratch first.
    #[inline(always)]
    unsafe fn block(
        st: &State,
        ws: &mut Scratch,
        c: f32,
        kb: *const T,
        vb: *const T,
        d: usize,
        nk: usize,
        first: bool,
        prefetch: impl FnMut(usize, usize),
    ) {
        let in_place =
            d.is_multiple_of(S::LANES) && (T::DTYPE != DType::F16 || S::F16_IN_REGISTERS);
        if in_place {
            let rows = Rows {
                off: &st.key_off,
                streams: st.streams,
                ld: d,
            };
            block::<S, T, KD, GR, NV>(st, c, kb, vb, rows, nk, first, prefetch);
        } else {
            let dp = st.dp;
            let kf = ws.kf.get(DBK * dp).as_mut_ptr();
            let vf = ws.vf.get(DBK * dp).as_mut_ptr();
            for jj in 0..nk {
                convert_row::<S, T>(kb.add(st.key_off[jj]), kf.add(jj * dp), d, dp);
                convert_row::<S, T>(vb.add(st.key_off[jj]), vf.add(jj * dp), d, dp);
            }
            let off = std::array::from_fn(|i| i * dp);
            let rows = Rows {
                off: &off,
                streams: 1,
                ld: dp,
            };
            block::<S, f32, KD, GR, NV>(st, c, kf, vf, rows, nk, first, prefetch);
        }
    }

    #[inline(always)]
    unsafe fn store_o(o: *const f32, dst: *mut f32, dp: usize) {
        std::ptr::copy_nonoverlapping(o, dst, dp);
    }
}

/// Where a block's K/V rows are: position `i` at `off[i]` elements from the block's base; the
/// positions of stream `s` (`i % streams == s`) are consecutive rows `ld` apart.
#[derive(Clone, Copy)]
struct Rows<'a> {
    off: &'a [usize; DBK],
    streams: usize,
    ld: usize,
}

/// α = 1 for the P·V tiles of a block's streams after its first (`GR` rows of it).
static ONES: [f32; DBK] = [1.0; DBK];

/// One block of `nk` keys whose K/V rows (element type `E`, at least `dp` readable elements per
/// row) are at `kb`, `vb` plus `rows`: scores, online softmax, `O = α·O + P·V` (one P·V tile per
/// stream, P taken `rows.streams` apart). `prefetch(key, KD)` is called once per dot tile (for
/// its keys), spread between the tiles.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block<S: Simd, E: Element, const KD: usize, const GR: usize, const NV: usize>(
    st: &State,
    c: f32,
    kb: *const E,
    vb: *const E,
    rows: Rows<'_>,
    nk: usize,
    first: bool,
    mut prefetch: impl FnMut(usize, usize),
) {
    const { assert!(GR <= DBK, "ONES holds DBK rows of α") };
    let (gp, dp) = (st.gp, st.dp);
    let l = S::LANES;
    let nvp = dp / l;
    // Scores; a last partial group of KD keys repeats the last row (its scores are masked).
    let mut jj = 0;
    while jj < nk {
        let krows: [*const E; KD] =
            std::array::from_fn(|key| kb.add(rows.off[(jj + key).min(nk - 1)]));
        let mut r0 = 0;
        while r0 < gp {
            dots::<S, E, KD, GR>(
                nvp,
                krows,
                st.qf.add(r0 * dp),
                dp,
                st.sc.add(r0 * DBK + jj),
                DBK,
            );
            r0 += GR;
        }
        prefetch(jj, KD);
        jj += KD;
    }
    softmax::<S>(st, c, nk);
    // O = α·O + P·V.
    let mut dc = 0;
    while dc < nvp {
        let nv = NV.min(nvp - dc);
        let mut r0 = 0;
        while r0 < gp {
            // Stream s: the block's positions s, s + streams, … (whole blocks only, so each
            // stream has nk / streams of them); O rescaled by the first stream's tile only.
            debug_assert!(rows.streams == 1 || nk == DBK);
            for s in 0..rows.streams {
                let (alpha, first) = if s == 0 {
                    (st.alpha.add(r0) as *const f32, first)
                } else {
                    (ONES.as_ptr(), false)
                };
                pv_tile_n::<S, E, GR, NV>(
                    nv,
                    nk / rows.streams,
                    st.sc.add(r0 * DBK + s),
                    DBK,
                    rows.streams,
                    vb.add(rows.off[s] + dc * l),
                    rows.ld,
                    st.o.add(r0 * dp + dc * l),
                    dp,
                    alpha,
                    first,
                );
            }
            r0 += GR;
        }
        dc += nv;
    }
}

/// The online softmax of one block: the scores of `nk` keys in each of the `gp` rows of `st.sc`
/// become P in place (keys `nk..` of the row's last vector holding a key masked to exactly 0;
/// vectors past it, in a short last block, are left as they were and no product reads them),
/// and the running max,
/// sum and this block's rescale factor α of each row are updated.
///
/// The running max changes only in a block with a score above it (in a long sequence, a few
/// of the first blocks): otherwise α is exactly 1 (`exp2(0)`) and the row's horizontal max and
/// scalar `exp2` are skipped, with the same result. The running sum is kept as one vector per
/// row (lane sums, added across lanes once per task by [`State::row_sum`]), so no block sums its
/// P across lanes either: on the Zen 4 VM the horizontal max, sum and scalar `exp2` were 15–20%
/// of `decode.avx512bf16`'s time with K and V in cache (`perf`).
#[inline(always)]
pub(crate) unsafe fn softmax<S: Simd>(st: &State, c: f32, nk: usize) {
    let l = S::LANES;
    let nkv = nk.div_ceil(l);
    let cs = S::splat(c);
    for r in 0..st.gp {
        let row = st.sc.add(r * st.bk);
        for j in nk..nkv * l {
            *row.add(j) = f32::NEG_INFINITY;
        }
        let m_old = S::splat(*st.m.add(r));
        let mut mx = m_old;
        for cv in 0..nkv {
            mx = S::max(S::load(row.add(cv * l)), mx);
        }
        let al = if S::any_gt(mx, m_old) {
            let mt = S::hmax(mx);
            let mcn = mt * c;
            let al = exp2_scalar(*st.mc.add(r) - mcn);
            *st.m.add(r) = mt;
            *st.mc.add(r) = mcn;
            al
        } else {
            1.0
        };
        let neg = S::splat(-*st.mc.add(r));
        let mut ls = S::zero();
        for cv in 0..nkv {
            let pv = S::exp2(S::fma(S::load(row.add(cv * l)), cs, neg));
            S::store(row.add(cv * l), pv);
            ls = S::add(ls, pv);
        }
        let lv = st.lsum.add(r * LSUM_LANES);
        let sum = if al == 1.0 {
            S::add(S::load(lv), ls)
        } else {
            S::fma(S::load(lv), S::splat(al), ls)
        };
        S::store(lv, sum);
        *st.alpha.add(r) = if st.no_rescale { 1.0 } else { al };
    }
}

/// The `bytes` from `p`, line by line, into L2 (`prefetcht1`) or L1 (the vocabulary's prefetch).
/// A prefetch reads nothing architecturally, at any address.
#[inline(always)]
unsafe fn prefetch_lines<S: Simd>(p: *const u8, bytes: usize, into_l2: bool) {
    // An inner function, not a closure: a closure is not inlined into `target_feature` code.
    #[inline(always)]
    unsafe fn one<S: Simd>(p: *const u8, into_l2: bool) {
        if into_l2 {
            prefetch_l2(p);
        } else {
            S::prefetch(p);
        }
    }
    // Four lines per step (a row of 128 bf16 or f16 in one): the loop's own instructions share
    // the ports with the products.
    let mut off = 0;
    while off + 256 <= bytes {
        one::<S>(p.add(off), into_l2);
        one::<S>(p.add(off + 64), into_l2);
        one::<S>(p.add(off + 128), into_l2);
        one::<S>(p.add(off + 192), into_l2);
        off += 256;
    }
    while off < bytes {
        one::<S>(p.add(off), into_l2);
        off += 64;
    }
}

/// One task: split `s` of flat KV sequence `bg = b·kv_heads + g`, with the products `P` (the
/// vocabulary `S` issues the prefetches).
///
/// # Safety
/// The ISA of `S` and of `P` is available; `cx` describes validated buffers with `q_len = 1`,
/// `cx.gp` and `cx.dp` rounded to `P::GR` and `P::DW`; no other task writes this task's partial.
#[inline(always)]
pub(crate) unsafe fn task<S: Simd, T: Element, P: Products<T>>(
    cx: &Ctx<'_, T>,
    ws: &mut Scratch,
    t: usize,
) {
    let p = &cx.p;
    let (d, dp, gp) = (p.head_dim, cx.dp, cx.gp);
    debug_assert!(gp.is_multiple_of(P::GR) && dp.is_multiple_of(P::DW));
    let group = p.group();
    let (bg, s) = (t / cx.splits.n, t % cx.splits.n);
    let ja = s * cx.splits.len;
    let jb = p.kv_len.min(ja + cx.splits.len);
    let c = p.scale * LOG2_E;

    // Query rows of the group's heads (q_len = 1: row index = flat head); padding rows zero.
    let b = bg / p.kv_heads;
    let g = bg % p.kv_heads;
    let q_group = cx.q.as_ptr().add((b * p.q_heads + g * group) * d);
    let qf = P::load_q(ws, q_group, group, d, gp, dp);
    ws.deferred = None;
    let bk = P::BK;
    let sc = ws.sc.get(gp * bk).as_mut_ptr();
    let o = ws.o.get(gp * dp).as_mut_ptr();
    let pp = ws.pp.get(gp * bk / 2).as_mut_ptr() as *mut u32;
    let stats = ws.stats.get((3 + LSUM_LANES) * gp).as_mut_ptr();
    // In streams (`Prefetch::streams`), where the path takes them and the split is whole
    // blocks: stream `r` is the split's `r`-th part, and position `i` of a block reads key `i / R`
    // of the block's step in stream `i % R`.
    let split_keys = jb - ja;
    let streams = cx.prefetch.streams.max(1);
    let streams = if streams > 1
        && P::STREAMS
        && !cx.interleave
        && bk == DBK
        && DBK.is_multiple_of(streams)
        && streams.is_power_of_two()
        && split_keys.is_multiple_of(DBK)
    {
        streams
    } else {
        1
    };
    let part_keys = split_keys / streams;
    let st = State {
        gp,
        dp,
        bk,
        qf,
        sc,
        o,
        pp,
        m: stats,
        mc: stats.add(gp),
        alpha: stats.add(2 * gp),
        lsum: stats.add(3 * gp),
        no_rescale: cx.mutation == Mutation::NoRescale,
        interleave: cx.interleave,
        key_off: std::array::from_fn(|i| ((i % streams) * part_keys + i / streams) * d),
        streams,
    };
    for r in 0..gp {
        *st.m.add(r) = f32::NEG_INFINITY;
        *st.mc.add(r) = f32::NEG_INFINITY;
        std::ptr::write_bytes(st.lsum.add(r * LSUM_LANES), 0, LSUM_LANES);
    }
    // The `WrongKvHead` mutant: the group reads the next KV head's K/V.
    let kv_seq = match cx.mutation {
        Mutation::WrongKvHead => b * p.kv_heads + (g + 1) % p.kv_heads,
        _ => bg,
    };
    let kv_off = kv_seq * p.kv_len * d;
    let (k_base, v_base) = (cx.k.as_ptr().add(kv_off), cx.v.as_ptr().add(kv_off));

    // Decode streams K/V from DRAM: the rows `prefetch.l1` (and `prefetch.l2`) ahead, or the
    // block's V rows, are prefetched between the dot tiles (spread over the compute, so they do
    // not pile up behind the miss buffers). A path that defers each block's P·V to the next
    // block ([`Ctx::interleave`]) reads V rows a block after the K rows of the same keys, so its
    // V rows are prefetched [`DBK`] rows later: all the V rows of a block are first read as the
    // next block starts (each deferred column chunk covers all its keys), so with blocks of 32
    // keys they are still [`DBK`] or more rows ahead of their first use. Zen 4, paired call by
    // call from memory: a lag of 16 against none 1.04-1.08x at blocks of 16; at blocks of 32,
    // a lag of 32 is 0.98x a lag of 16.
    //
    // The prefetch runs on past the split's end into the next split of the same sequence (to
    // its end, `kv_len`): the tasks of a thread are consecutive (rayon hands each thread a
    // contiguous range of them) and consecutive tasks are consecutive splits, so the next task
    // starts with its first rows already on the way instead of `l2` rows without a prefetch.
    // Zen 4, paired call by call from memory (kv 8192, 2 threads): 1.012-1.035x (7 runs, a
    // control 1.003-1.016).
    let row_bytes = d * std::mem::size_of::<T>();
    let seq_end = p.kv_len;
    let Prefetch {
        l1, l2, v_in_block, ..
    } = cx.prefetch;
    let v_lag = if cx.interleave { DBK } else { 0 };
    let mut first = true;
    if streams > 1 {
        // Each stream prefetched its share of the distances ahead of its own rows, so the
        // lines in flight are as many as in one stream.
        let (l1, l2) = (l1 / streams, l2 / streams);
        let step = DBK / streams;
        debug_assert!(streams.is_power_of_two());
        let log2_streams = streams.trailing_zeros();
        let mut jl = 0;
        while jl < part_keys {
            let (kb, vb) = (k_base.add((ja + jl) * d), v_base.add((ja + jl) * d));
            // The rows of positions `key..key + n` of the block, `l2` (`l1`) ahead in their
            // streams. A part's last rows prefetch the next part's first ones, already read
            // (and the last part's run on into the next split, as one stream does): keeping
            // each part's prefetch inside it, with the first rows of parts 1.. prefetched at
            // the task's start instead, was no faster (f16 0.98×, `results/decode-streams/`).
            let prefetch = |key: usize, n: usize| {
                for i in key..key + n {
                    // `streams` divides DBK: a power of two, so no division here.
                    let row = ja + (i & (streams - 1)) * part_keys + jl + (i >> log2_streams);
                    for (ahead, into_l2) in [(l2, true), (l1, false)] {
                        if ahead == 0 || row + ahead >= seq_end {
                            continue;
                        }
                        for base in [k_base, v_base] {
                            let p = base.add((row + ahead) * d) as *const u8;
                            prefetch_lines::<S>(p, row_bytes, into_l2);
                        }
                    }
                }
            };
            P::block(&st, ws, c, kb, vb, d, DBK, first, prefetch);
            first = false;
            jl += step;
        }
    }
    let mut j0 = if streams > 1 { jb } else { ja };
    while j0 < jb {
        let nk = bk.min(jb - j0);
        // Rows `key..key + n` of the block (and those ahead of them) as a few runs of whole
        // lines: the rows of a run are contiguous, so each run is one pointer and a count.
        let prefetch = |key: usize, n: usize| {
            let j = j0 + key;
            // Rows `row..row + n` of `base` that the sequence has, line by line, into L2 or L1.
            let run = |base: *const T, row: usize, into_l2: bool| {
                if row < seq_end {
                    let p = base.add(row * d) as *const u8;
                    prefetch_lines::<S>(p, n.min(seq_end - row) * row_bytes, into_l2);
                }
            };
            if v_in_block {
                run(v_base, j, false);
            }
            // K rows `l2` (`l1`) ahead and V rows `v_lag` behind those.
            if l2 > 0 {
                run(k_base, j + l2, true);
                run(v_base, (j + l2).saturating_sub(v_lag), true);
            }
            if l1 > 0 {
                run(k_base, j + l1, false);
                run(v_base, (j + l1).saturating_sub(v_lag), false);
            }
        };
        let (kb, vb) = (k_base.add(j0 * d), v_base.add(j0 * d));
        P::block(&st, ws, c, kb, vb, d, nk, first, prefetch);
        first = false;
        j0 += nk;
    }

    P::finish(&st, ws, d);
    let part = cx.part.get().add(t * cx.part_stride());
    for r in 0..group {
        let dst = part.add(r * (2 + dp));
        *dst = *st.mc.add(r);
        *dst.add(1) = st.row_sum::<S>(r);
        P::store_o(o.add(r * dp), dst.add(2), dp);
    }
}

/// Combine the partials of flat query head `bh` into its output row `out` (`d` elements).
pub(crate) fn combine<T, O: Element>(
    cx: &Ctx<'_, T>,
    bh: usize,
    out: &mut [O],
    acc: &mut Vec<f32>,
) {
    let p = &cx.p;
    let group = p.group();
    let (b, h) = (bh / p.q_heads, bh % p.q_heads);
    let (g, r) = (h / group, h % group);
    let bg = b * p.kv_heads + g;
    let stride = cx.part_stride();
    // SAFETY: the partials were written by the tasks (which finished) and are only read here.
    let part = |s: usize| unsafe {
        std::slice::from_raw_parts(
            cx.part
                .get()
                .add((bg * cx.splits.n + s) * stride + r * (2 + cx.dp)),
            2 + cx.dp,
        )
    };
    let top = (0..cx.splits.n)
        .map(|s| part(s)[0])
        .fold(f32::NEG_INFINITY, f32::max);
    acc.clear();
    acc.resize(p.head_dim, 0.0);
    let mut lsum = 0f32;
    for s in 0..cx.splits.n {
        let ps = part(s);
        let w = exp2_scalar(ps[0] - top);
        lsum += w * ps[1];
        for (a, &x) in acc.iter_mut().zip(&ps[2..]) {
            *a += w * x;
        }
    }
    let inv = 1.0 / lsum;
    acc.iter_mut().for_each(|a| *a *= inv);
    O::slice_from_f32(acc, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// 2 · 8 heads · 8192 keys · 128 · 2 bytes = 32 MiB of K + V.
    fn big() -> AttentionProblem {
        AttentionProblem::new(1, 32, 8, 1, 8192, 128)
    }

    /// K + V past the threads' L2s together get the L2 prefetch; sizes that fit keep the
    /// L1-only prefetch.
    #[test]
    fn prefetch_into_l2_only_past_the_threads_l2s() {
        let big = big();
        let streaming = Prefetch::new(&big, 2, 2, 2 * MIB);
        assert_eq!(
            streaming,
            Prefetch {
                l1: 16,
                l2: 64,
                v_in_block: false,
                streams: 4,
            }
        );
        assert_eq!(
            Prefetch::new(&big, 2, 16, 2 * MIB).l2,
            0,
            "32 MiB in 16 × 2 MiB"
        );
        // 2 · 2 heads · 256 keys · 128 · 4 bytes = 512 KiB: L2-resident on one thread.
        let small = AttentionProblem::new(1, 8, 2, 1, 256, 128);
        assert_eq!(
            Prefetch::new(&small, 4, 1, MIB),
            Prefetch {
                l1: PREFETCH_ROWS,
                l2: 0,
                v_in_block: false,
                streams: 1,
            }
        );
        // Exactly the L2s' size still fits; one byte-row more does not.
        assert_eq!(Prefetch::new(&small, 4, 1, MIB / 2).l2, 0);
        assert_eq!(Prefetch::new(&small, 4, 1, MIB / 2 - 1).l2, 64);
    }

    /// The pair products read K and V in turn on AMD family 25 at every size past the threads'
    /// L2s (the same rule as the L2 prefetch), never on other kinds or for the f32 products.
    #[test]
    fn interleave_past_the_threads_l2s_on_amd_family_25() {
        let big = big();
        let small = AttentionProblem::new(1, 8, 2, 1, 256, 128);
        let amd = crate::cpu::cpu_kind() == crate::cpu::CpuKind::AmdFamily25;
        assert_eq!(interleave_for_this_cpu(&big, true, 2, 2, 2 * MIB), amd);
        assert!(!interleave_for_this_cpu(&big, false, 2, 2, 2 * MIB));
        // 512 KiB of K + V: L2-resident on one thread of 1 MiB, past one of 512 KiB − 1.
        assert!(!interleave_for_this_cpu(&small, true, 4, 1, MIB));
        assert!(!interleave_for_this_cpu(&small, true, 4, 1, MIB / 2));
        assert_eq!(
            interleave_for_this_cpu(&small, true, 4, 1, MIB / 2 - 1),
            amd
        );
        // K + V of the 32 MiB gate shape is past two 2 MiB L2s whatever the L3.
        assert_eq!(interleave_for_this_cpu(&big, true, 2, 16, MIB), amd);
    }

    /// The pair products take the rows-ahead rule on every CPU kind; the f32 products the
    /// block's V on AMD family 25 only.
    #[test]
    fn prefetch_by_cpu_kind_and_path() {
        let big = big();
        let rows_ahead = Prefetch::new(&big, 2, 2, 2 * MIB);
        assert_eq!(
            Prefetch::for_this_cpu(&big, true, 2, 2, 2 * MIB),
            Prefetch {
                streams: 1,
                ..rows_ahead
            }
        );
        let f32_products = Prefetch::for_this_cpu(&big, false, 2, 2, 2 * MIB);
        if crate::cpu::cpu_kind() == crate::cpu::CpuKind::AmdFamily25 {
            assert_eq!(f32_products, Prefetch::V_IN_BLOCK);
        } else {
            assert_eq!(f32_products, rows_ahead);
        }
    }
}
