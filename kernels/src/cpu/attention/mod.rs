//! CPU attention forward `O = softmax(scale · Q·Kᵀ + causal mask) · V` in f32/f16/bf16 with f32
//! accumulation, layout `[batch, heads, seq, head_dim]` ([`AttentionProblem`]):
//!
//! - `naive`: scores materialized in f32 per query row, the baseline (small shapes).
//! - `flash`: tiled online softmax, SIMD micro-kernels for `Q·Kᵀ` and `P·V`, rayon over batch ×
//!   heads × query blocks, fully masked causal tiles skipped ([`flash`] module doc);
//!   `flash.avx512bf16` the same task with both products on `vdpbf16ps` (bf16 inputs, CPUs with
//!   AVX512_BF16; P rounded to bf16 for P·V, [`flash_bf16`] module doc), and `flash.amx` with
//!   both on AMX tiles (`tdpbf16ps`; bf16 inputs, head_dim a multiple of 32, CPUs with AMX-BF16,
//!   [`flash_amx`] module doc).
//! - `decode`: `q_len = 1`, the KV sequence split across threads and the partial softmax results
//!   combined (flash-decoding, [`decode`] module doc); `decode.avx512bf16` the same task with
//!   both products on `vdpbf16ps` (bf16 inputs, CPUs with AVX512_BF16; P rounded to bf16 for
//!   P·V, [`decode_bf16`] module doc). `decode.avx512f` widens bf16 K/V rows of a head_dim that
//!   is a multiple of 32 by splitting each 64-byte load into its even and odd elements
//!   ([`decode_split`] module doc).
//!
//! GQA/MQA: query head `h` reads KV head `h / (q_heads / kv_heads)`; K/V are read in place,
//! never copied per head. On the f32 paths f16/bf16 are widened to f32 once per K/V tile (the
//! bf16 pair paths multiply them unconverted); the output is rounded once. A causal shape with `q_len > kv_len` (a query row with no key) is refused by
//! [`AttentionProblem::validate`] with a message.

mod decode;
#[cfg(target_arch = "x86_64")]
mod decode_bf16;
#[cfg(target_arch = "x86_64")]
mod decode_split;
mod flash;
#[cfg(target_arch = "x86_64")]
mod flash_amx;
#[cfg(target_arch = "x86_64")]
mod flash_bf16;
use flash::F32Products;
mod naive;

use crate::cpu::simd;
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::{DType, Element, Tensor};
use crate::isa::Isa;
use crate::kernel::{
    Backend, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support, Unsupported,
};
use crate::problem::{AttentionProblem, Precision, ProblemError};
use crate::unit::ComputeUnit;
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;

/// Deliberate bugs for the verification mutation tests (`tests/attention_mutations.rs`); the
/// registered kernels always use [`Mutation::None`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    None,
    /// The causal mask lets each query see one key too many.
    MaskOffByOne,
    /// Query head `h` reads KV head `h % kv_heads` (heads tiled instead of grouped); in decode,
    /// a group reads the next KV head's K/V.
    WrongKvHead,
    /// The accumulator O is not rescaled when the running max grows (l still is).
    NoRescale,
}

/// Tile parameters of the flash kernel on one ISA path: S tile `kr` keys × `qv` vectors of
/// queries, PV tile `mr` queries × `nv` vectors of head_dim, `bk` keys per K/V tile.
///
/// Chosen for the register files: AVX-512 uses 24 of 32 zmm for accumulators in both tiles
/// (8×3 and 6×4), AVX2 12 of 16 ymm (6×2 and 6×2, BLIS haswell style), portable 8 SSE2 pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashTiles {
    pub bq: usize,
    pub bk: usize,
    pub kr: usize,
    pub qv: usize,
    pub mr: usize,
    pub nv: usize,
    pub lanes: usize,
}

impl FlashTiles {
    /// The AMX products' tiles: S 16 keys × 16 queries, P·V 16 queries × 16 columns (one tile
    /// register each), tasks of 96 queries: each K/V tile a task reads then serves six query
    /// panels instead of three (when this was measured, each task also packed every tile's V as
    /// pairs itself). Measured against 48 on the Intel Xeon family 6 model 207 VM (h32/32 2048²
    /// and h8/8 4096² causal, d128 bf16, 2 threads, five alternated rounds;
    /// results/flash-amx-bq): 1.11–1.34× and 0.92–1.14×; 144 gave 0.97–1.37× and 0.89–1.35×
    /// (64 and 128 measured again with the products in squares of tiles: within 3% of 96).
    ///
    /// K/V tiles of 256 keys: eight tile steps of P·V per load and store of an O tile. With the
    /// products in squares of tiles, against 128 (same VM and shapes, `flashtime`, alternated,
    /// results/flash-amx-2x2/bk): 1.07–1.09× and 1.05–1.06×; 384 and 512 keys 1.02–1.08× and
    /// 1.01–1.06× (with one A tile shared by three B tiles, 256 had measured 1.00× against 128).
    pub fn amx() -> FlashTiles {
        FlashTiles {
            bq: 96,
            bk: 256,
            kr: 16,
            qv: 1,
            mr: 16,
            nv: 1,
            lanes: 16,
        }
    }

    pub fn for_isa(isa: Isa) -> FlashTiles {
        let bq = flash::BQ;
        match isa {
            Isa::Avx512f => FlashTiles {
                bq,
                bk: 64,
                kr: 8,
                qv: 3,
                mr: 6,
                nv: 4,
                lanes: 16,
            },
            Isa::Avx2fma => FlashTiles {
                bq,
                bk: 48,
                kr: 6,
                qv: 2,
                mr: 6,
                nv: 2,
                lanes: 8,
            },
            Isa::Portable => FlashTiles {
                bq,
                bk: 48,
                kr: 4,
                qv: 1,
                mr: 4,
                nv: 1,
                lanes: 8,
            },
        }
    }
}

fn check(p: &AttentionProblem, lens: [usize; 4]) -> Result<(), KernelError> {
    p.validate()?;
    let want = [
        p.q_len_elems(),
        p.kv_len_elems(),
        p.kv_len_elems(),
        p.q_len_elems(),
    ];
    for ((name, actual), needed) in ["Q", "K", "V", "O"].into_iter().zip(lens).zip(want) {
        if actual < needed {
            return Err(ProblemError::BufferSize {
                name,
                actual,
                needed,
            }
            .into());
        }
    }
    Ok(())
}

/// The naive baseline (scores materialized in f32 per query row).
pub fn naive_attention<T: Element, O: Element>(
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
) -> Result<(), KernelError> {
    check(p, [q.len(), k.len(), v.len(), out.len()])?;
    naive::naive(p, q, k, v, &mut out[..p.q_len_elems()]);
    Ok(())
}

/// The fused flash forward on ISA path `isa` (which must be available), on the caller's rayon
/// pool.
pub fn flash_attention<T: Element, O: Element>(
    isa: Isa,
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
) -> Result<(), KernelError> {
    flash_attention_mutant(isa, p, q, k, v, out, Mutation::None)
}

thread_local! {
    static FLASH_WS: RefCell<flash::Scratch> = RefCell::new(flash::Scratch::default());
    /// V as pairs of keys for the flash pair paths, kept between calls ([`flash_path_mutant`]).
    static V_PAIRS: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    static DECODE_WS: RefCell<(decode::Scratch, Vec<f32>)> =
        RefCell::new((decode::Scratch::default(), Vec::new()));
}

/// The flash forward with both products on `vdpbf16ps` (`flash.avx512bf16`): bf16 inputs, an
/// even head_dim, a CPU with AVX512_BF16; on the caller's rayon pool.
pub fn flash_bf16dot_attention<T: Element, O: Element>(
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
) -> Result<(), KernelError> {
    flash_path_mutant(FlashPath::Bf16Dot, p, q, k, v, out, Mutation::None)
}

/// A code path of the flash kernel: an ISA path's f32 products, the `vdpbf16ps` pair products, or
/// the AMX tile products.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashPath {
    Isa(Isa),
    Bf16Dot,
    Amx,
}

impl std::fmt::Display for FlashPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlashPath::Isa(isa) => isa.fmt(f),
            FlashPath::Bf16Dot => f.write_str(BF16DOT),
            FlashPath::Amx => f.write_str(AMX),
        }
    }
}

impl FlashPath {
    /// Why this path cannot run `p` with inputs `dtype` here, if it cannot.
    fn refuse(self, p: &AttentionProblem, dtype: DType) -> Option<String> {
        match self {
            FlashPath::Isa(isa) => (!isa.available()).then(|| format!("this CPU lacks {isa}")),
            FlashPath::Bf16Dot if !crate::isa::detected().avx512bf16 => {
                Some(format!("this CPU lacks {BF16DOT}"))
            }
            FlashPath::Bf16Dot if dtype != DType::BF16 => {
                Some(format!("{BF16DOT} takes bf16 inputs, not {dtype}"))
            }
            FlashPath::Bf16Dot if !p.head_dim.is_multiple_of(2) => Some(format!(
                "{BF16DOT} multiplies pairs along head_dim: head_dim {} is odd",
                p.head_dim
            )),
            FlashPath::Bf16Dot => None,
            FlashPath::Amx if !crate::cpu::matmul::Path::Amx.available() => Some(format!(
                "this CPU lacks {AMX} (AMX-BF16 with tile data granted)"
            )),
            FlashPath::Amx if dtype != DType::BF16 => {
                Some(format!("{AMX} takes bf16 inputs, not {dtype}"))
            }
            FlashPath::Amx if !p.head_dim.is_multiple_of(32) => Some(format!(
                "{AMX} multiplies tiles of 32 values of head_dim: head_dim {} is not a multiple \
                 of 32",
                p.head_dim
            )),
            FlashPath::Amx => None,
        }
    }

    fn tiles(self) -> FlashTiles {
        match self {
            FlashPath::Isa(isa) => FlashTiles::for_isa(isa),
            // The same tiles as the AVX-512 f32 products.
            FlashPath::Bf16Dot => FlashTiles::for_isa(Isa::Avx512f),
            FlashPath::Amx => FlashTiles::amx(),
        }
    }
}

/// The variant name of the AMX paths.
const AMX: &str = crate::cpu::matmul::AMX_VARIANT;

/// The variant name of the `vdpbf16ps` paths.
const BF16DOT: &str = crate::unit::BF16DOT_PROBE;

/// [`flash_attention`] with a deliberate bug (tests of the verifier only).
#[doc(hidden)]
pub fn flash_attention_mutant<T: Element, O: Element>(
    isa: Isa,
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
    mutation: Mutation,
) -> Result<(), KernelError> {
    flash_path_mutant(FlashPath::Isa(isa), p, q, k, v, out, mutation)
}

/// The flash forward on `path`, with a deliberate bug when `mutation` says so.
#[doc(hidden)]
pub fn flash_path_mutant<T: Element, O: Element>(
    path: FlashPath,
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
    mutation: Mutation,
) -> Result<(), KernelError> {
    check(p, [q.len(), k.len(), v.len(), out.len()])?;
    if let Some(reason) = path.refuse(p, T::DTYPE) {
        return Err(KernelError::Unsupported {
            kernel: "attention.cpu.flash".into(),
            reason,
        });
    }
    let tiles = path.tiles();
    // The pair products read V as pairs of keys: packed here once per call for every whole tile
    // (each KV head's tiles are read by all its query blocks), partial tiles per task.
    let dp = p.head_dim.div_ceil(tiles.lanes) * tiles.lanes;
    let v_pairs_len = p.kv_len / tiles.bk * tiles.bk / 2;
    let pairs_len = if matches!(path, FlashPath::Amx | FlashPath::Bf16Dot) {
        p.batch * p.kv_heads * v_pairs_len * dp
    } else {
        0
    };
    // The pairs' buffer is the calling thread's, kept between calls: a fresh one per call
    // (V's size, e.g. 16 MiB) costs its page faults or its zeroing every call. Every word the
    // kernel reads is written by the packing first. A nested call on the same thread (busy
    // buffer) takes a buffer of its own.
    V_PAIRS.with(|cell| {
        let (mut held, mut own);
        let buf: &mut AlignedBuf = match cell.try_borrow_mut() {
            Ok(b) => {
                held = b;
                &mut held
            }
            Err(_) => {
                own = AlignedBuf::default();
                &mut own
            }
        };
        let v_pairs: &mut [u32] = if pairs_len == 0 {
            &mut []
        } else {
            bytemuck::cast_slice_mut(buf.get(pairs_len))
        };
        #[cfg(target_arch = "x86_64")]
        if !v_pairs.is_empty() {
            // SAFETY: the path was checked (AVX512_BF16 or AMX, which implies it; bf16 inputs).
            unsafe {
                flash_bf16::pack_v_tiles(
                    bytemuck::cast_slice(v),
                    p.batch * p.kv_heads,
                    p.kv_len,
                    p.head_dim,
                    dp,
                    tiles.bk,
                    // The AMX products read V's pairs transposed (A tiles of `Oᵀ = Vᵀ·Pᵀ`).
                    matches!(path, FlashPath::Amx),
                    v_pairs,
                )
            };
        }
        let cx = flash::Ctx {
            p: *p,
            q,
            k,
            v,
            out: SendPtr(out.as_mut_ptr()),
            bq: tiles.bq,
            bk: tiles.bk,
            v_pairs: SendPtr(if v_pairs.is_empty() {
                std::ptr::null_mut()
            } else {
                v_pairs.as_mut_ptr()
            }),
            v_pairs_len,
            mutation,
        };
        let nqb = p.q_len.div_ceil(tiles.bq);
        let tasks = p.batch * p.q_heads * nqb;
        (0..tasks).into_par_iter().for_each(|t| {
            // Within a head, later query blocks first: under a causal mask they are the longest.
            let (bh, qb) = (t / nqb, nqb - 1 - t % nqb);
            FLASH_WS.with(|ws| {
                let ws = &mut *ws.borrow_mut();
                // SAFETY: the path was checked; buffers validated; tasks write disjoint row
                // blocks.
                unsafe { flash_task(path, &cx, ws, bh, qb) }
            })
        });
    });
    Ok(())
}

unsafe fn flash_task<T: Element, O: Element>(
    path: FlashPath,
    cx: &flash::Ctx<'_, T, O>,
    ws: &mut flash::Scratch,
    bh: usize,
    qb: usize,
) {
    // The bf16-only paths: T is bf16 (checked by `refuse`), the same buffers typed as such.
    #[cfg(target_arch = "x86_64")]
    let bf16_cx = || flash::Ctx {
        p: cx.p,
        q: bytemuck::cast_slice::<T, half::bf16>(cx.q),
        k: bytemuck::cast_slice(cx.k),
        v: bytemuck::cast_slice(cx.v),
        out: cx.out,
        bq: cx.bq,
        bk: cx.bk,
        v_pairs: cx.v_pairs,
        v_pairs_len: cx.v_pairs_len,
        mutation: cx.mutation,
    };
    let isa = match path {
        #[cfg(target_arch = "x86_64")]
        FlashPath::Bf16Dot => return flash_avx512bf16(&bf16_cx(), ws, bh, qb),
        #[cfg(target_arch = "x86_64")]
        FlashPath::Amx => return flash_amx(&bf16_cx(), ws, bh, qb),
        #[cfg(not(target_arch = "x86_64"))]
        FlashPath::Bf16Dot | FlashPath::Amx => {
            unreachable!("refused: no AVX512_BF16 or AMX off x86-64")
        }
        FlashPath::Isa(isa) => isa,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f => flash_avx512(cx, ws, bh, qb),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma => flash_avx2(cx, ws, bh, qb),
        _ => flash::task::<simd::Portable, T, O, F32Products<simd::Portable, 4, 1, 4, 1>>(
            cx, ws, bh, qb,
        ),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma,f16c")]
unsafe fn flash_avx512<T: Element, O: Element>(
    cx: &flash::Ctx<'_, T, O>,
    ws: &mut flash::Scratch,
    bh: usize,
    qb: usize,
) {
    flash::task::<simd::Avx512, T, O, F32Products<simd::Avx512, 8, 3, 6, 4>>(cx, ws, bh, qb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma,f16c")]
unsafe fn flash_avx512bf16<O: Element>(
    cx: &flash::Ctx<'_, half::bf16, O>,
    ws: &mut flash::Scratch,
    bh: usize,
    qb: usize,
) {
    flash::task::<simd::Avx512, half::bf16, O, flash_bf16::PairProducts<8, 3, 6, 4>>(cx, ws, bh, qb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma,f16c")]
unsafe fn flash_amx<O: Element>(
    cx: &flash::Ctx<'_, half::bf16, O>,
    ws: &mut flash::Scratch,
    bh: usize,
    qb: usize,
) {
    flash::task::<simd::Avx512, half::bf16, O, flash_amx::AmxProducts>(cx, ws, bh, qb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn flash_avx2<T: Element, O: Element>(
    cx: &flash::Ctx<'_, T, O>,
    ws: &mut flash::Scratch,
    bh: usize,
    qb: usize,
) {
    flash::task::<simd::Avx2, T, O, F32Products<simd::Avx2, 6, 2, 6, 2>>(cx, ws, bh, qb)
}

/// Flash-decoding for `q_len = 1` on ISA path `isa` (which must be available), on the caller's
/// rayon pool. Other `q_len` are refused (use [`flash_attention`]).
pub fn decode_attention<T: Element, O: Element>(
    isa: Isa,
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
) -> Result<(), KernelError> {
    decode_path_mutant(DecodePath::Isa(isa), p, q, k, v, out, Mutation::None)
}

/// Flash-decoding with both products on `vdpbf16ps` (`decode.avx512bf16`): bf16 inputs, a CPU
/// with AVX512_BF16, `q_len = 1`; on the caller's rayon pool.
pub fn decode_bf16dot_attention<T: Element, O: Element>(
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
) -> Result<(), KernelError> {
    decode_path_mutant(DecodePath::Bf16Dot, p, q, k, v, out, Mutation::None)
}

/// A code path of the decode kernel: an ISA path's f32 products, or the `vdpbf16ps` pair
/// products.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodePath {
    Isa(Isa),
    Bf16Dot,
}

impl std::fmt::Display for DecodePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodePath::Isa(isa) => isa.fmt(f),
            DecodePath::Bf16Dot => f.write_str(BF16DOT),
        }
    }
}

impl DecodePath {
    /// Why this path cannot run `p` with inputs `dtype` here, if it cannot.
    fn refuse(self, p: &AttentionProblem, dtype: DType) -> Option<String> {
        match self {
            DecodePath::Isa(isa) if !isa.available() => Some(format!("this CPU lacks {isa}")),
            DecodePath::Bf16Dot if !crate::isa::detected().avx512bf16 => {
                Some(format!("this CPU lacks {BF16DOT}"))
            }
            DecodePath::Bf16Dot if dtype != DType::BF16 => {
                Some(format!("{BF16DOT} takes bf16 inputs, not {dtype}"))
            }
            _ if p.q_len != 1 => Some(format!(
                "decode handles q_len = 1, not {} (prefill shapes: use flash)",
                p.q_len
            )),
            _ => None,
        }
    }

    /// (head_dim step, query rows per tile): `dp` and `gp` are rounded up to them.
    fn tiles(self) -> (usize, usize) {
        match self {
            DecodePath::Isa(Isa::Avx512f) => (16, 4),
            DecodePath::Isa(Isa::Avx2fma | Isa::Portable) => (8, 4),
            #[cfg(target_arch = "x86_64")]
            DecodePath::Bf16Dot => (decode_bf16::W, decode_bf16::GR),
            #[cfg(not(target_arch = "x86_64"))]
            DecodePath::Bf16Dot => (32, 4),
        }
    }
}

/// The decode kernel on `path`, with a deliberate bug when `mutation` says so (tests of the
/// verifier only): `WrongKvHead` reads the next KV head's K/V for a group, `NoRescale` leaves O
/// unscaled when a split's running max grows; `MaskOffByOne` does nothing (a single query sees
/// every key).
#[doc(hidden)]
pub fn decode_path_mutant<T: Element, O: Element>(
    path: DecodePath,
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
    mutation: Mutation,
) -> Result<(), KernelError> {
    decode_run(path, p, q, k, v, out, mutation, DecodeKnobs::default())
}

/// Choices of the decode kernel forced for tests and `examples/dectime`'s paired timing; `None`:
/// as chosen for the problem here.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeKnobs {
    /// The interleaved P·V on or off.
    pub interleave: Option<bool>,
    /// Streams a task reads its split in (1 to 16, dividing 16; a path without streams, or a
    /// split that is not whole blocks, reads one).
    pub streams: Option<usize>,
    /// Rows prefetched ahead into L1 and into L2 (0: none), before a task with several streams
    /// divides them among its streams.
    pub prefetch_rows: Option<(usize, usize)>,
}

/// [`decode_path_mutant`], with the choices `knobs` forces.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn decode_run<T: Element, O: Element>(
    path: DecodePath,
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
    mutation: Mutation,
    knobs: DecodeKnobs,
) -> Result<(), KernelError> {
    check(p, [q.len(), k.len(), v.len(), out.len()])?;
    if let Some(s) = knobs.streams {
        assert!(
            (1..=decode::DBK).contains(&s) && decode::DBK.is_multiple_of(s),
            "decode streams divide {}: got {s}",
            decode::DBK
        );
    }
    if let Some(reason) = path.refuse(p, T::DTYPE) {
        return Err(KernelError::Unsupported {
            kernel: format!("attention.cpu.decode.{path}"),
            reason,
        });
    }
    let (dw, gr) = path.tiles();
    let dp = p.head_dim.div_ceil(dw) * dw;
    let gp = p.group().div_ceil(gr) * gr;
    let threads = rayon::current_num_threads();
    let splits = decode::Splits::new(p, threads);
    let tasks = p.batch * p.kv_heads * splits.n;
    let mut part = vec![0f32; tasks * gp * (2 + dp)];
    let cx = decode::Ctx {
        p: *p,
        q,
        k,
        v,
        splits,
        gp,
        part: SendPtr(part.as_mut_ptr()),
        dp,
        prefetch: {
            let pf = decode_prefetch(p, path, T::DTYPE, threads);
            let (l1, l2) = knobs.prefetch_rows.unwrap_or((pf.l1, pf.l2));
            decode::Prefetch {
                streams: knobs.streams.unwrap_or(pf.streams),
                l1,
                l2,
                ..pf
            }
        },
        interleave: knobs
            .interleave
            .unwrap_or_else(|| decode_interleave(p, path, T::DTYPE, threads)),
        mutation,
    };
    (0..tasks).into_par_iter().for_each(|t| {
        DECODE_WS.with(|ws| {
            let ws = &mut ws.borrow_mut().0;
            // SAFETY: the path was checked; buffers validated; tasks write disjoint partials.
            unsafe { decode_task(path, &cx, ws, t) }
        })
    });
    out[..p.q_len_elems()]
        .par_chunks_mut(p.head_dim)
        .enumerate()
        .for_each(|(bh, o)| {
            DECODE_WS.with(|ws| decode::combine(&cx, bh, o, &mut ws.borrow_mut().1))
        });
    drop(part);
    Ok(())
}

/// The decode prefetch of `p` on `path` and `threads` threads here (this CPU's kind and L2).
fn decode_prefetch(
    p: &AttentionProblem,
    path: DecodePath,
    dtype: DType,
    threads: usize,
) -> decode::Prefetch {
    let l2 = crate::cpu::cache::detected().l2;
    let pairs = path == DecodePath::Bf16Dot;
    decode::Prefetch::for_this_cpu(p, pairs, dtype.size_bytes(), threads, l2)
}

/// Whether decode on `path` interleaves each block's P·V with the next block's scores here, on
/// `threads` threads.
fn decode_interleave(p: &AttentionProblem, path: DecodePath, dtype: DType, threads: usize) -> bool {
    let l2 = crate::cpu::cache::detected().l2;
    let pairs = path == DecodePath::Bf16Dot;
    decode::interleave_for_this_cpu(p, pairs, dtype.size_bytes(), threads, l2)
}

unsafe fn decode_task<T: Element>(
    path: DecodePath,
    cx: &decode::Ctx<'_, T>,
    ws: &mut decode::Scratch,
    t: usize,
) {
    let isa = match path {
        // T is bf16 (checked by `refuse`): the same buffers typed as such.
        #[cfg(target_arch = "x86_64")]
        DecodePath::Bf16Dot => return decode_avx512bf16(&cx.as_bf16(), ws, t),
        #[cfg(not(target_arch = "x86_64"))]
        DecodePath::Bf16Dot => unreachable!("refused: no AVX512_BF16 off x86-64"),
        DecodePath::Isa(isa) => isa,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f => decode_avx512(cx, ws, t),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma => decode_avx2(cx, ws, t),
        _ => decode::task::<simd::Portable, T, decode::F32Dots<simd::Portable, 2, 4, 1>>(cx, ws, t),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma,f16c")]
unsafe fn decode_avx512<T: Element>(cx: &decode::Ctx<'_, T>, ws: &mut decode::Scratch, t: usize) {
    // bf16 with head_dim a multiple of 32: the split-word widening (`decode_split`).
    if T::DTYPE == DType::BF16 && decode_split::applies(cx.p.head_dim) {
        let cx = cx.as_bf16();
        return decode::task::<simd::Avx512, half::bf16, decode_split::SplitDots<2>>(&cx, ws, t);
    }
    decode::task::<simd::Avx512, T, decode::F32Dots<simd::Avx512, 4, 4, 4>>(cx, ws, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma,f16c")]
unsafe fn decode_avx512bf16(cx: &decode::Ctx<'_, half::bf16>, ws: &mut decode::Scratch, t: usize) {
    decode::task::<simd::Avx512, half::bf16, decode_bf16::PairDots<4>>(cx, ws, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode_avx2<T: Element>(cx: &decode::Ctx<'_, T>, ws: &mut decode::Scratch, t: usize) {
    decode::task::<simd::Avx2, T, decode::F32Dots<simd::Avx2, 2, 4, 2>>(cx, ws, t)
}

/// Precisions of the CPU attention kernels: same-type output, f32 accumulation.
pub fn attention_precisions() -> Vec<Precision> {
    DType::ALL.into_iter().map(Precision::same).collect()
}

/// Which algorithm a registered kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algo {
    Naive,
    Flash(Isa),
    /// `flash` with the `vdpbf16ps` pair products (AVX512_BF16).
    FlashBf16Dot,
    /// `flash` with the AMX tile products (AMX-BF16).
    FlashAmx,
    Decode(Isa),
    /// `decode` with the `vdpbf16ps` pair products (AVX512_BF16).
    DecodeBf16Dot,
}

impl Algo {
    fn family(self) -> &'static str {
        match self {
            Algo::Naive => "attention.cpu.naive",
            Algo::Flash(_) | Algo::FlashBf16Dot | Algo::FlashAmx => "attention.cpu.flash",
            Algo::Decode(_) | Algo::DecodeBf16Dot => "attention.cpu.decode",
        }
    }
}

/// A registered CPU attention kernel: one algorithm, ISA path and precision.
pub struct CpuAttentionKernel {
    algo: Algo,
    precision: Precision,
}

impl CpuAttentionKernel {
    pub fn naive(precision: Precision) -> Self {
        CpuAttentionKernel {
            algo: Algo::Naive,
            precision,
        }
    }
    pub fn flash(isa: Isa, precision: Precision) -> Self {
        CpuAttentionKernel {
            algo: Algo::Flash(isa),
            precision,
        }
    }
    /// `flash.avx512bf16` (register it for bf16 precisions only).
    pub fn flash_bf16dot(precision: Precision) -> Self {
        CpuAttentionKernel {
            algo: Algo::FlashBf16Dot,
            precision,
        }
    }
    /// `flash.amx`: both products on AMX tiles (register it for bf16 only).
    pub fn flash_amx(precision: Precision) -> Self {
        CpuAttentionKernel {
            algo: Algo::FlashAmx,
            precision,
        }
    }
    pub fn decode(isa: Isa, precision: Precision) -> Self {
        CpuAttentionKernel {
            algo: Algo::Decode(isa),
            precision,
        }
    }
    /// `decode.avx512bf16` (register it for bf16 precisions only).
    pub fn decode_bf16dot(precision: Precision) -> Self {
        CpuAttentionKernel {
            algo: Algo::DecodeBf16Dot,
            precision,
        }
    }
}

impl CpuAttentionKernel {
    /// The decode path this kernel runs, if it is a decode kernel.
    fn decode_path(&self) -> Option<DecodePath> {
        match self.algo {
            Algo::Decode(isa) => Some(DecodePath::Isa(isa)),
            Algo::DecodeBf16Dot => Some(DecodePath::Bf16Dot),
            _ => None,
        }
    }
}

impl Kernel for CpuAttentionKernel {
    fn identity(&self) -> KernelIdentity {
        let mut params = serde_json::Map::new();
        let variant = match self.algo {
            Algo::Naive => "scalar".to_string(),
            Algo::Flash(_) | Algo::FlashBf16Dot | Algo::FlashAmx => {
                let (t, name) = match self.algo {
                    Algo::Flash(isa) => (FlashTiles::for_isa(isa), isa.name()),
                    Algo::FlashAmx => (FlashPath::Amx.tiles(), AMX),
                    _ => (FlashPath::Bf16Dot.tiles(), BF16DOT),
                };
                params.insert("bq".into(), t.bq.into());
                params.insert("bk".into(), t.bk.into());
                // Micro-tiles as numbers: S = K·Qᵀ in kr × (qv·lanes), P·V in mr × (nv·lanes).
                params.insert("s_tile_rows".into(), t.kr.into());
                params.insert("s_tile_cols".into(), (t.qv * t.lanes).into());
                params.insert("pv_tile_rows".into(), t.mr.into());
                params.insert("pv_tile_cols".into(), (t.nv * t.lanes).into());
                name.to_string()
            }
            Algo::Decode(_) | Algo::DecodeBf16Dot => {
                let path = self.decode_path().expect("a decode algorithm");
                let block = match path {
                    #[cfg(target_arch = "x86_64")]
                    DecodePath::Bf16Dot => decode_bf16::BK,
                    _ => decode::DBK,
                };
                params.insert("block".into(), block.into());
                // Dot tiles of `dot_keys` keys × `dot_rows` query rows fill one vector of f32.
                let (keys, rows) = match path {
                    #[cfg(target_arch = "x86_64")]
                    DecodePath::Bf16Dot => (decode_bf16::KD, decode_bf16::GR),
                    _ => {
                        let (lanes, gr) = path.tiles();
                        (lanes / gr, gr)
                    }
                };
                params.insert("dot_keys".into(), keys.into());
                params.insert("dot_rows".into(), rows.into());
                // The KV splits and the prefetch are chosen per problem and thread count when
                // prepared: `kv_splits`, `keys_per_split`, `prefetch_l1_rows`,
                // `prefetch_l2_rows`, `prefetch_v_in_block` and `interleave_pv` in the row
                // (Prepared::chosen_params).
                path.to_string()
            }
        };
        KernelIdentity {
            op: Op::Attention,
            backend: Backend::Cpu,
            family: self.algo.family().into(),
            variant,
            precision: self.precision,
            unit: match self.algo {
                Algo::Naive => ComputeUnit::CpuScalar,
                Algo::Flash(isa) | Algo::Decode(isa) => ComputeUnit::CpuFma(isa),
                Algo::FlashBf16Dot | Algo::DecodeBf16Dot => ComputeUnit::CpuBf16Dot,
                Algo::FlashAmx => ComputeUnit::CpuAmxBf16,
            },
            params,
        }
    }

    /// `flash.avx512bf16` and `decode.avx512bf16` belong to the AVX-512F path on CPUs with
    /// AVX512_BF16, beside `flash.avx512f` and `decode.avx512f`, so both are measured.
    fn on_isa_path(&self, selected: Isa) -> bool {
        match self.algo {
            Algo::Naive => true,
            Algo::Flash(isa) | Algo::Decode(isa) => isa == selected,
            Algo::FlashBf16Dot | Algo::DecodeBf16Dot => {
                selected == Isa::Avx512f && crate::isa::detected().avx512bf16
            }
            Algo::FlashAmx => selected == Isa::Avx512f && crate::cpu::matmul::Path::Amx.available(),
        }
    }

    fn supports(&self, problem: &Problem) -> Support {
        let Problem::Attention(p) = problem else {
            return Support::no("not an attention problem");
        };
        if let Err(e) = p.validate() {
            return Support::no(e.to_string());
        }
        if self.precision.accum != DType::F32 || self.precision.input != self.precision.output {
            return Support::no("CPU attention: same-type output, f32 accumulation");
        }
        match self.algo {
            Algo::Naive => Support::Yes,
            Algo::Flash(isa) | Algo::Decode(isa) if !isa.available() => {
                Support::no(format!("this CPU lacks {isa}"))
            }
            Algo::FlashBf16Dot => match FlashPath::Bf16Dot.refuse(p, self.precision.input) {
                Some(why) => Support::no(why),
                None => Support::Yes,
            },
            Algo::FlashAmx => match FlashPath::Amx.refuse(p, self.precision.input) {
                Some(why) => Support::no(why),
                None => Support::Yes,
            },
            Algo::Decode(_) | Algo::DecodeBf16Dot if p.q_len != 1 => {
                Support::no(Unsupported::with_detail(
                    "decode handles q_len = 1 only (prefill shapes: use flash)",
                    format!("q_len {}", p.q_len),
                ))
            }
            Algo::DecodeBf16Dot => match DecodePath::Bf16Dot.refuse(p, self.precision.input) {
                Some(why) => Support::no(why),
                None => Support::Yes,
            },
            _ => Support::Yes,
        }
    }

    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let id = self.identity();
        if let Support::No(reason) = self.supports(problem) {
            return Err(KernelError::Unsupported {
                kernel: id.id(),
                reason: reason.to_string(),
            });
        }
        let Problem::Attention(p) = *problem else {
            unreachable!("supports() accepted only attention");
        };
        let [q, k, v] = inputs else {
            return Err(KernelError::Other(format!(
                "attention takes 3 inputs (Q, K, V), {} given",
                inputs.len()
            )));
        };
        for (index, t) in [q, k, v].into_iter().enumerate() {
            if t.dtype() != self.precision.input {
                return Err(KernelError::InputDType {
                    kernel: id.id(),
                    index,
                    actual: t.dtype(),
                    expected: self.precision.input,
                });
            }
        }
        check(&p, [q.len(), k.len(), v.len(), p.q_len_elems()])?;
        // What decode chooses for this problem on the calling pool's threads.
        let mut chosen = serde_json::Map::new();
        if let Some(path) = self.decode_path() {
            let threads = rayon::current_num_threads();
            let s = decode::Splits::new(&p, threads);
            chosen.insert("kv_splits".into(), s.n.into());
            chosen.insert("keys_per_split".into(), s.len.into());
            chosen.insert("tasks".into(), (p.batch * p.kv_heads * s.n).into());
            let pf = decode_prefetch(&p, path, self.precision.input, threads);
            chosen.insert("prefetch_l1_rows".into(), pf.l1.into());
            chosen.insert("prefetch_l2_rows".into(), pf.l2.into());
            chosen.insert("prefetch_v_in_block".into(), pf.v_in_block.into());
            chosen.insert("kv_streams".into(), pf.streams.into());
            let il = decode_interleave(&p, path, self.precision.input, threads);
            chosen.insert("interleave_pv".into(), il.into());
        }
        fn make<T: Element>(
            p: AttentionProblem,
            algo: Algo,
            qkv: [&Arc<Tensor>; 3],
            chosen: serde_json::Map<String, serde_json::Value>,
        ) -> Box<dyn Prepared> {
            Box::new(CpuAttention::<T> {
                problem: p,
                algo,
                chosen,
                q: qkv[0].clone(),
                k: qkv[1].clone(),
                v: qkv[2].clone(),
                out: vec![T::nan(); p.q_len_elems()],
            })
        }
        use half::{bf16, f16};
        Ok(match self.precision.input {
            DType::F32 => make::<f32>(p, self.algo, [q, k, v], chosen),
            DType::F16 => make::<f16>(p, self.algo, [q, k, v], chosen),
            DType::BF16 => make::<bf16>(p, self.algo, [q, k, v], chosen),
        })
    }

    fn is_baseline(&self) -> bool {
        self.algo == Algo::Naive
    }
}

/// A prepared CPU attention: inputs shared with the runner, output owned (same type as inputs).
struct CpuAttention<T: Element> {
    problem: AttentionProblem,
    algo: Algo,
    chosen: serde_json::Map<String, serde_json::Value>,
    q: Arc<Tensor>,
    k: Arc<Tensor>,
    v: Arc<Tensor>,
    out: Vec<T>,
}

impl<T: Element> Prepared for CpuAttention<T> {
    fn run(&mut self) -> Result<(), KernelError> {
        let q = T::tensor_slice(&self.q).expect("dtype checked in prepare");
        let k = T::tensor_slice(&self.k).expect("dtype checked in prepare");
        let v = T::tensor_slice(&self.v).expect("dtype checked in prepare");
        let p = &self.problem;
        match self.algo {
            Algo::Naive => naive_attention(p, q, k, v, &mut self.out),
            Algo::Flash(isa) => flash_attention(isa, p, q, k, v, &mut self.out),
            Algo::FlashBf16Dot => flash_bf16dot_attention(p, q, k, v, &mut self.out),
            Algo::FlashAmx => {
                flash_path_mutant(FlashPath::Amx, p, q, k, v, &mut self.out, Mutation::None)
            }
            Algo::Decode(isa) => decode_attention(isa, p, q, k, v, &mut self.out),
            Algo::DecodeBf16Dot => decode_bf16dot_attention(p, q, k, v, &mut self.out),
        }
    }
    fn chosen_params(&self) -> serde_json::Map<String, serde_json::Value> {
        self.chosen.clone()
    }
    fn poison(&mut self) -> Result<(), KernelError> {
        self.out.iter_mut().for_each(|x| *x = T::nan());
        Ok(())
    }
    fn output(&mut self) -> Result<Tensor, KernelError> {
        Ok(T::into_tensor(self.out.clone()))
    }
}
