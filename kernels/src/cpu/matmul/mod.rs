//! CPU matmul: `naive` (the obviously correct baseline) and `packed` (BLIS-style, per-ISA
//! micro-kernels, f16/bf16 converted to f32 while packing, f32 accumulation, one rounding at the
//! end). On CPUs with AVX512_BF16, `packed.avx512bf16` keeps bf16 in the packed panels and
//! multiplies with `vdpbf16ps` (bf16 products exact in f32, f32 accumulation); on CPUs with
//! AMX-BF16, `packed.amx` multiplies 16 × 16 tiles with `tdpbf16ps` (the same arithmetic).

#[cfg(target_arch = "x86_64")]
mod amx_rows;
mod dots;
mod gemm;
mod gemv;
pub mod micro;
pub mod pack;

use crate::cpu::cache::{self, CacheSizes};
use crate::cpu::{AlignedBuf, SendPtr};
use crate::dtype::{DType, Element, Tensor};
use crate::isa::Isa;
use crate::kernel::{Backend, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support};
use crate::problem::{MatmulProblem, Precision, ProblemError};
use crate::unit::ComputeUnit;
pub use dots::{DOT_M_MAX, DOT_M_ONE_PASS};
use micro::MicroKernel;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Cache blocking of the packed matmul: `mc × kc` A blocks and `kc × nr` B micro-panels (L2),
/// `kc × nc` B panels (L3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocking {
    pub mc: usize,
    pub kc: usize,
    pub nc: usize,
}

impl Blocking {
    /// Derive blocking for a micro-kernel tile `mr × nr` on f32 panels from cache sizes
    /// ([`Blocking::l2_resident`] with 4 bytes per element and k step).
    pub fn from_caches(caches: &CacheSizes, mr: usize, nr: usize) -> Blocking {
        Blocking::l2_resident(caches, mr, nr, 4)
    }

    /// Blocking of the `vdpbf16ps` path (bf16 k-pair panels, 2 bytes per element and k step).
    pub fn bf16dot_from_caches(caches: &CacheSizes, mr: usize, nr: usize) -> Blocking {
        Blocking::l2_resident(caches, mr, nr, 2)
    }

    /// Blocking with the B micro-panel in L2 beside the A block, for panels of `bytes` bytes
    /// per element and k step. The micro-kernels load little per FLOP (12×32: 176 bytes per 24
    /// FMAs), so L2 feeds them; what pays is a long kc — fewer read-modify-write passes over C
    /// and fewer pack/compute barriers per K — and packing that is a small share of the work:
    /// - B micro-panel `kc·nr·bytes` ≤ L2/8, kc in [256, 2048], a multiple of 16;
    /// - A block `mc·kc·bytes` ≤ 3/8 of L2, mc a multiple of mr in [mr, 960];
    /// - B panel `kc·nc·bytes` ≤ a quarter of L3, nc a multiple of nr in [nr, 8192].
    ///
    /// Chosen by measurement (`results/matmul-blocking.md`, `results/matmul-bf16dot.md`): on the
    /// Zen 5 VM (1 MiB L2, 32 MiB L3) the 12×32 AVX-512 tile gets kc = 1024, mc = 96, nc = 2048
    /// (≈ 5–8% over the L1-sized kc = 384, mc = 168 at 2048³–4096³), the `vdpbf16ps` path
    /// kc = 2048, mc = 96, nc = 2048.
    pub fn l2_resident(caches: &CacheSizes, mr: usize, nr: usize, bytes: usize) -> Blocking {
        Blocking::l2_resident_to(caches, mr, nr, bytes, 2048)
    }

    /// [`Blocking::l2_resident`] with kc up to `kc_max` (instead of 2048).
    fn l2_resident_to(
        caches: &CacheSizes,
        mr: usize,
        nr: usize,
        bytes: usize,
        kc_max: usize,
    ) -> Blocking {
        let kc = (caches.l2 / (8 * nr * bytes)).clamp(256, kc_max) / 16 * 16;
        let mc = ((3 * caches.l2 / (8 * kc * bytes)).clamp(mr, 960) / mr).max(1) * mr;
        let nc = ((caches.l3 / (4 * kc * bytes)).clamp(nr, 8192) / nr).max(1) * nr;
        Blocking { mc, kc, nc }
    }

    /// The blocking for the `vdpbf16ps` path on this machine.
    pub fn for_bf16dot() -> Blocking {
        let (mr, nr) = Path::Bf16Dot.tile();
        Blocking::bf16dot_from_caches(&cache::detected(), mr, nr)
    }

    /// The blocking for the AMX path on this machine ([`Blocking::amx_from_caches`]).
    pub fn for_amx() -> Blocking {
        Blocking::amx_from_caches(&cache::detected())
    }

    /// Blocking of the AMX path: the [`Blocking::l2_resident`] rule for bf16 panels (2 bytes per
    /// element and k) of its 32 × 32 tile, with kc up to 4096 — on a 2 MiB L2, kc 4096 and mc
    /// 96, so a K of 4096 loads and stores each tile of C once. Against kc 2048, mc 192
    /// (`mmtime`, Intel Xeon family 6 model 207, 2 threads, alternated, kc-4096/kc-2048 per
    /// round): 512×4096×4096 Bᵀ 1.01–1.10 (6 rounds), 512×14336×4096 Bᵀ 1.03–1.06 (4), 4096³
    /// 0.99–1.14 (4), 2048³ (one k block either way) 0.99–1.01 (6) (BENCHMARKS.md "AMX: A's
    /// whole panels in place; bf16 B pair packing").
    pub fn amx_from_caches(caches: &CacheSizes) -> Blocking {
        let (mr, nr) = Path::Amx.tile();
        Blocking::l2_resident_to(caches, mr, nr, 2, 4096)
    }

    /// The blocking for an ISA path on this machine.
    pub fn for_isa(isa: Isa) -> Blocking {
        let (mr, nr) = tile(isa);
        Blocking::from_caches(&cache::detected(), mr, nr)
    }
}

impl fmt::Display for Blocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mc={},kc={},nc={}", self.mc, self.kc, self.nc)
    }
}

/// Error for a malformed `mc=..,kc=..,nc=..` blocking string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid blocking `{0}`: expected `mc=N,kc=N,nc=N` with every N ≥ 1")]
pub struct ParseBlockingError(pub String);

impl FromStr for Blocking {
    type Err = ParseBlockingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let o: BlockingOverride = s.parse().map_err(|_| ParseBlockingError(s.to_string()))?;
        match (o.mc, o.kc, o.nc) {
            (Some(mc), Some(kc), Some(nc)) => Ok(Blocking { mc, kc, nc }),
            _ => Err(ParseBlockingError(s.to_string())),
        }
    }
}

/// Some or all of a [`Blocking`]'s sizes, set by the user (`--blocking kc=256`); each packed path
/// keeps its own cache-derived value for the others ([`BlockingOverride::apply`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockingOverride {
    pub mc: Option<usize>,
    pub kc: Option<usize>,
    pub nc: Option<usize>,
}

/// Error for a malformed blocking override.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid blocking `{0}`: expected one or more of `mc=N`, `kc=N`, `nc=N`, comma-separated, \
     each once, every N ≥ 1 (e.g. `kc=256` or `mc=96,kc=1024,nc=2048`)"
)]
pub struct ParseBlockingOverrideError(pub String);

impl BlockingOverride {
    /// `default` with the sizes this override sets.
    pub fn apply(&self, default: Blocking) -> Blocking {
        Blocking {
            mc: self.mc.unwrap_or(default.mc),
            kc: self.kc.unwrap_or(default.kc),
            nc: self.nc.unwrap_or(default.nc),
        }
    }
}

impl FromStr for BlockingOverride {
    type Err = ParseBlockingOverrideError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseBlockingOverrideError(s.to_string());
        let mut o = BlockingOverride::default();
        for part in s.split(',') {
            let (key, val) = part.split_once('=').ok_or_else(err)?;
            let v: usize = val.trim().parse().map_err(|_| err())?;
            let slot = match key.trim() {
                "mc" => &mut o.mc,
                "kc" => &mut o.kc,
                "nc" => &mut o.nc,
                _ => return Err(err()),
            };
            if v == 0 || slot.replace(v).is_some() {
                return Err(err());
            }
        }
        Ok(o)
    }
}

/// What the f32 paths call when a region of C is final (`rows` from `r0`, `cols` from `c0`): the
/// rounding to a half-precision output, done by the task that finished the region while it is in
/// that core's cache. Each region is finished once.
pub(crate) type Finish = dyn Fn(usize, usize, usize, usize) + Sync;

/// Micro-kernel tile `(MR, NR)` of an ISA path.
pub fn tile(isa: Isa) -> (usize, usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f => (micro::x86::Avx512_12x32::MR, micro::x86::Avx512_12x32::NR),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma => (micro::x86::Avx2_6x16::MR, micro::x86::Avx2_6x16::NR),
        _ => (
            micro::portable::Portable4x8::MR,
            micro::portable::Portable4x8::NR,
        ),
    }
}

/// A code path of the packed matmul: an [`Isa`] path (f32 micro-kernels, halves converted while
/// packing), the AVX512_BF16 path (bf16 k-pair panels, `vdpbf16ps`; bf16 inputs only), or the
/// AMX path (bf16 tile panels, `tdpbf16ps`; bf16 inputs only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Isa(Isa),
    Bf16Dot,
    Amx,
}

impl Path {
    /// The registry variant name (`avx512f`, ..., `avx512bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Path::Isa(isa) => isa.name(),
            Path::Bf16Dot => BF16DOT_VARIANT,
            Path::Amx => AMX_VARIANT,
        }
    }

    /// Whether this machine can execute the path.
    pub fn available(self) -> bool {
        match self {
            Path::Isa(isa) => isa.available(),
            Path::Bf16Dot => cfg!(target_arch = "x86_64") && crate::isa::detected().avx512bf16,
            // The path's GEMV and small-M rows run on AVX-512F (and `vdpbf16ps`, present on
            // every CPU with AMX-BF16).
            Path::Amx => {
                cfg!(target_arch = "x86_64")
                    && crate::isa::detected().amx_bf16
                    && crate::isa::detected().avx512bf16
            }
        }
    }

    /// Whether the path takes bf16 inputs only (its panels hold bf16 unconverted).
    pub fn bf16_only(self) -> bool {
        matches!(self, Path::Bf16Dot | Path::Amx)
    }

    /// Micro-kernel tile `(MR, NR)`.
    pub fn tile(self) -> (usize, usize) {
        match self {
            Path::Isa(isa) => tile(isa),
            #[cfg(target_arch = "x86_64")]
            Path::Bf16Dot => {
                use micro::PairMicroKernel;
                type K = micro::x86::Avx512Bf16_12x32;
                (K::MR, K::NR)
            }
            #[cfg(not(target_arch = "x86_64"))]
            Path::Bf16Dot => (12, 32),
            Path::Amx => (32, 32),
        }
    }

    /// The path's blocking on this machine (derived from the detected caches).
    pub fn default_blocking(self) -> Blocking {
        match self {
            Path::Isa(isa) => Blocking::for_isa(isa),
            Path::Bf16Dot => Blocking::for_bf16dot(),
            Path::Amx => Blocking::for_amx(),
        }
    }
}

/// Registry variant of the AVX512_BF16 path (`matmul.cpu.packed.avx512bf16.*`).
pub const BF16DOT_VARIANT: &str = "avx512bf16";

/// Registry variant of the AMX-BF16 path (`matmul.cpu.packed.amx.*`).
pub const AMX_VARIANT: &str = "amx";

/// Reusable scratch of the packed matmul: the shared B panel, the f32 C accumulator (when the
/// output is not f32) and the f32 copy of a GEMV row.
#[derive(Default)]
pub struct Workspace {
    bpack: AlignedBuf,
    cbuf: AlignedBuf,
    arow: Vec<f32>,
    /// A, widened and padded, of the small-M path (`dots`).
    adot: AlignedBuf,
}

/// `C = A · op(B)` with the packed kernels: inputs `T`, f32 accumulation, output `O` rounded once.
///
/// `isa` must be available on this CPU ([`Isa::available`]); a missing ISA is refused, not
/// emulated.
pub fn packed_matmul<T: Element, O: Element>(
    isa: Isa,
    blocking: &Blocking,
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    c: &mut [O],
    ws: &mut Workspace,
) -> Result<(), KernelError> {
    packed_path(Path::Isa(isa), blocking, p, a, b, c, ws)
}

/// `C = A · op(B)` for bf16 inputs on a bf16-only path ([`Path::Bf16Dot`]: `vdpbf16ps`;
/// [`Path::Amx`]: `tdpbf16ps`), bf16 packed without conversion, f32 accumulation, output `O`
/// rounded once. M = 1 takes the AVX-512F GEMV. Refused where the CPU lacks the path, and for
/// an f32-panel path.
pub fn packed_matmul_bf16<O: Element>(
    path: Path,
    blocking: &Blocking,
    p: &MatmulProblem,
    a: &[half::bf16],
    b: &[half::bf16],
    c: &mut [O],
    ws: &mut Workspace,
) -> Result<(), KernelError> {
    if !path.bf16_only() {
        return Err(KernelError::Unsupported {
            kernel: format!("matmul.cpu.packed.{}", path.name()),
            reason: "not a bf16-only path (use packed_matmul)".into(),
        });
    }
    packed_path(path, blocking, p, a, b, c, ws)
}

fn packed_path<T: Element, O: Element>(
    path: Path,
    blocking: &Blocking,
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    c: &mut [O],
    ws: &mut Workspace,
) -> Result<(), KernelError> {
    p.check_buffers(a.len(), b.len(), c.len())?;
    if !path.available() {
        return Err(KernelError::Unsupported {
            kernel: format!("matmul.cpu.packed.{}", path.name()),
            reason: format!("this CPU lacks {}", path.name()),
        });
    }
    if path.bf16_only() && T::DTYPE != DType::BF16 {
        return Err(KernelError::Unsupported {
            kernel: format!("matmul.cpu.packed.{}", path.name()),
            reason: format!("{} inputs (the path takes bf16 only)", T::DTYPE),
        });
    }
    let direct = O::DTYPE == DType::F32;
    for bi in 0..p.batch {
        let ab = &a[bi * p.a_stride()..(bi + 1) * p.a_stride()];
        let bb = &b[bi * p.b_stride()..(bi + 1) * p.b_stride()];
        let cb = &mut c[bi * p.c_stride()..(bi + 1) * p.c_stride()];
        // f32 output: accumulate in place. Otherwise in an f32 buffer, rounded once.
        if direct {
            let cf: &mut [f32] = bytemuck::cast_slice_mut(cb);
            compute(
                path,
                blocking,
                p,
                ab,
                bb,
                gemm::COut {
                    c: cf,
                    ldc: p.ldc,
                    whole_tiles: false,
                    bf16: None,
                },
                &mut ws.bpack,
                &mut ws.arow,
                &mut ws.adot,
                None,
            );
        } else {
            // Whole tiles of the path's micro-kernel (M and N rounded up to them, row stride
            // `ldf`), so the loop nest stores its edge tiles in place rather than through a
            // scratch tile and a copy per row; only rows 0..m, columns 0..n are rounded.
            let (mr, nr) = path.tile();
            let ldf = p.n.div_ceil(nr) * nr;
            let cf = ws.cbuf.get(p.m.div_ceil(mr) * mr * ldf);
            // Each region of C is rounded by the task that finished it, while it is in that
            // core's cache (not in a pass over all of C afterwards).
            let (src, dst, n, ldc) = (
                SendPtr(cf.as_mut_ptr()),
                SendPtr(cb.as_mut_ptr()),
                ldf,
                p.ldc,
            );
            // A bf16 C the `vdpbf16ps` micro-kernel can store into directly (gemm::Bf16Out).
            let bf16 = (O::DTYPE == DType::BF16).then(|| gemm::Bf16Out {
                d: SendPtr(dst.get() as *mut u16),
                ld: ldc,
            });
            let round = move |r0: usize, rows: usize, c0: usize, cols: usize| {
                for i in r0..r0 + rows {
                    // SAFETY: regions are within m × n and each is finished by one task, once,
                    // after its last write to the f32 buffer.
                    unsafe {
                        let s = std::slice::from_raw_parts(src.get().add(i * n + c0), cols);
                        let d = std::slice::from_raw_parts_mut(dst.get().add(i * ldc + c0), cols);
                        O::slice_from_f32(s, d);
                    }
                }
            };
            compute(
                path,
                blocking,
                p,
                ab,
                bb,
                gemm::COut {
                    c: cf,
                    ldc: ldf,
                    whole_tiles: true,
                    bf16,
                },
                &mut ws.bpack,
                &mut ws.arow,
                &mut ws.adot,
                Some(&round),
            );
        }
    }
    Ok(())
}

/// One batch into an f32 C (`out`; whole tiles past M × N matter to the loop nest only): the
/// GEMV path for M = 1 (on the `vdpbf16ps` path, its Bᵀ products with `vdpbf16ps` where
/// [`gemv::takes_bf16dot`]), the AMX path's in-place Bᵀ product where [`takes_amx_rows`], the small-M
/// dot path where [`takes_dots`], the loop nest otherwise.
#[allow(clippy::too_many_arguments)]
fn compute<T: Element>(
    path: Path,
    blocking: &Blocking,
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    out: gemm::COut<'_>,
    bpack: &mut AlignedBuf,
    arow: &mut Vec<f32>,
    adot: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    let (c, ldc) = (&mut *out.c, out.ldc);
    let isa = match path {
        Path::Isa(isa) => isa,
        Path::Bf16Dot | Path::Amx => Isa::Avx512f,
    };
    if p.m == 1 {
        if path == Path::Bf16Dot && p.trans_b && gemv::takes_bf16dot() {
            // `T` is bf16 on this path (checked by the caller), passed on as its bits; the
            // path exists on x86-64 only.
            debug_assert_eq!(T::DTYPE, crate::dtype::DType::BF16);
            #[cfg(target_arch = "x86_64")]
            gemv::transposed_bf16dot(
                bytemuck::cast_slice(&a[..p.k]),
                bytemuck::cast_slice(b),
                p.ldb,
                &mut c[..p.n],
            );
        } else {
            arow.resize(p.k, 0.0);
            T::slice_to_f32(&a[..p.k], arow);
            gemv::gemv(isa, arow, b, p.ldb, p.trans_b, p.n, c);
        }
        if let Some(f) = finish {
            f(0, 1, 0, p.n);
        }
    } else if takes_amx_rows(path, p) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the path is available (checked by the caller): AMX-BF16 and the tile grant;
        // `T` is bf16 (checked by the caller), passed on as its bits.
        unsafe {
            amx_rows::gemm_bt_rows(
                p.m,
                p.n,
                p.k,
                bytemuck::cast_slice(a),
                p.lda,
                bytemuck::cast_slice(b),
                p.ldb,
                c,
                ldc,
                bpack,
                finish,
            );
        }
    } else if takes_dots(path, blocking, p) {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Bf16Dot => dots::dots_bf16dot(
                p.m,
                p.n,
                p.k,
                bytemuck::cast_slice(a),
                p.lda,
                bytemuck::cast_slice(b),
                p.ldb,
                c,
                ldc,
                adot,
                finish,
            ),
            _ => dots::dots(isa, p.m, p.n, p.k, a, p.lda, b, p.ldb, c, ldc, adot, finish),
        }
    } else if path.bf16_only() {
        run_gemm_bf16(path, blocking, p, a, b, out, bpack, finish);
    } else {
        run_gemm::<T>(isa, blocking, p, a, b, out, bpack, finish);
    }
}

/// Whether `p` (M ≥ 2) takes the small-M dot path: B transposed and M ≤ [`DOT_M_MAX`], above
/// [`DOT_M_ONE_PASS`] rows only where the f32-panel nest would not run in one pass; on the AMX
/// path M ≤ [`AMX_DOT_M_MAX`]; on the `vdpbf16ps` path M ≤ [`bf16dot_dot_m_max`].
fn takes_dots(path: Path, blocking: &Blocking, p: &MatmulProblem) -> bool {
    p.trans_b
        && match path {
            Path::Amx => p.m <= AMX_DOT_M_MAX,
            Path::Bf16Dot => p.m <= bf16dot_dot_m_max(),
            _ => p.m <= DOT_M_MAX && (p.m <= DOT_M_ONE_PASS || !nest_one_pass(path, blocking, p)),
        }
}

/// The most rows of a Bᵀ product the `vdpbf16ps` path gives to its dot path on AMD family 25;
/// from one more, the pair-format loop nest. `mmtime`, Zen 4 (family 25 model 17), 2 threads,
/// `[m, 4096] · [4096, 4096]ᵀ` bf16, B in cache, two alternated rounds, the nest against the dot
/// path (after "Zen 4: the dot path's k block from L2"): m = 64 0.84–0.85, 96 0.98–1.01, 128
/// 1.02–1.03, 160 1.01–1.12, 192 1.15–1.18, 256 1.14–1.21 (BENCHMARKS.md "Zen 4: the `vdpbf16ps`
/// dot path to 128 rows").
pub const BF16DOT_DOT_M_MAX_AMD25: usize = 128;

/// The most rows of a Bᵀ product the `vdpbf16ps` path gives to its dot path:
/// [`BF16DOT_DOT_M_MAX_AMD25`] on AMD family 25, else [`DOT_M_MAX`] (not measured elsewhere).
pub fn bf16dot_dot_m_max() -> usize {
    if crate::cpu::cpu_kind() == crate::cpu::CpuKind::AmdFamily25 {
        BF16DOT_DOT_M_MAX_AMD25
    } else {
        DOT_M_MAX
    }
}

/// Whether `p` (M ≥ 2) takes the AMX path's in-place Bᵀ product ([`amx_rows`]): B transposed,
/// M ≤ [`AMX_ROWS_M_MAX`], K in whole tile steps (other K keep the dot path and the nest).
fn takes_amx_rows(path: Path, p: &MatmulProblem) -> bool {
    #[cfg(target_arch = "x86_64")]
    return path == Path::Amx && p.trans_b && p.m <= AMX_ROWS_M_MAX && amx_rows::takes(p.k);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (path, p);
        false
    }
}

/// The most rows of A of a Bᵀ product that the AMX path multiplies with B's rows in place
/// ([`amx_rows`]). Against the AMX nest (`mmtime`, 2 threads, Intel Xeon family 6 model 207,
/// median of 3–4 alternated rounds): M = 8/16/32 on 6144×4096 1.31/1.27/1.41, M = 64 1.02
/// (6144×4096) and 1.06 (4096×14336), M = 128 on 4096×4096 0.82, 512 0.68; against the f32 dot
/// path at M = 2/4/6 on 6144×4096: 1.06/1.03/1.48 (BENCHMARKS.md "AMX: B's rows in place").
pub const AMX_ROWS_M_MAX: usize = 64;

/// The most rows of a Bᵀ product the AMX path gives to the dot path where K is not whole tile
/// steps (else [`takes_amx_rows`]) — the f32-panel one
/// (AVX-512F FMA), which on the AMX CPUs measured beats the `vdpbf16ps` one (vdpbf16ps issues at
/// half the FMA rate there: 16×6144×4096 Bᵀ 110 against 74–81 GFLOP/s). The AMX nest (after the
/// transposing Bᵀ pair packing) against the f32 dot path at M = 4/6/8/12/16 on 6144×4096 Bᵀ,
/// and 24/32/48 on 4096×4096, Intel Xeon family 6 model 207, 2 threads, two rounds each:
/// 0.68–0.84/0.92–0.97/1.08–1.20/1.20–1.38/1.53–1.89/2.05–2.74/2.04–2.18/1.75–2.98
/// (BENCHMARKS.md "AMX").
pub const AMX_DOT_M_MAX: usize = 7;

/// Whether the f32-panel loop nest of `path` would run `p` in one pass ([`gemm::one_pass_tile`] for
/// the path's tile and f32 panels: one word per k); false for the `vdpbf16ps` and AMX paths,
/// whose dot paths have their own row limits ([`takes_dots`]).
fn nest_one_pass(path: Path, blocking: &Blocking, p: &MatmulProblem) -> bool {
    match path {
        Path::Bf16Dot | Path::Amx => false,
        Path::Isa(isa) => gemm::one_pass_tile(p.m, p.n, p.k, blocking, tile(isa), |kc| kc),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_gemm<T: Element>(
    isa: Isa,
    blocking: &Blocking,
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    out: gemm::COut<'_>,
    bpack: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    use gemm::F32Panels;
    let ops = gemm::Operands::of(p, a, b);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f => {
            gemm::gemm::<F32Panels<micro::x86::Avx512_12x32, T>>(ops, out, blocking, bpack, finish)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma => {
            gemm::gemm::<F32Panels<micro::x86::Avx2_6x16, T>>(ops, out, blocking, bpack, finish)
        }
        _ => gemm::gemm::<F32Panels<micro::portable::Portable4x8, T>>(
            ops, out, blocking, bpack, finish,
        ),
    }
}

/// The loop nest of a bf16-only path (`vdpbf16ps` pair panels or AMX tile panels); `T` is bf16
/// (checked by the caller), passed on as its bits.
#[allow(clippy::too_many_arguments)]
fn run_gemm_bf16<T: Element>(
    path: Path,
    blocking: &Blocking,
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    out: gemm::COut<'_>,
    bpack: &mut AlignedBuf,
    finish: Option<&Finish>,
) {
    debug_assert_eq!(T::DTYPE, DType::BF16);
    let ops = gemm::Operands::<u16>::of(p, bytemuck::cast_slice(a), bytemuck::cast_slice(b));
    #[cfg(target_arch = "x86_64")]
    match path {
        Path::Amx => gemm::gemm::<gemm::AmxPanels>(ops, out, blocking, bpack, finish),
        _ => gemm::gemm::<gemm::PairPanels<micro::x86::Avx512Bf16_12x32>>(
            ops, out, blocking, bpack, finish,
        ),
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (path, blocking, ops, out, bpack, finish);
        unreachable!("the bf16-only paths are never available off x86-64");
    }
}

/// The baseline: one f32 dot product per output element, parallel over rows, rounded once.
pub fn naive_matmul<T: Element, O: Element>(
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    c: &mut [O],
) -> Result<(), ProblemError> {
    p.check_buffers(a.len(), b.len(), c.len())?;
    for bi in 0..p.batch {
        let ab = &a[bi * p.a_stride()..];
        let bb = &b[bi * p.b_stride()..];
        let cb = &mut c[bi * p.c_stride()..(bi + 1) * p.c_stride()];
        cb.par_chunks_mut(p.ldc).enumerate().for_each(|(i, crow)| {
            for (j, cij) in crow[..p.n].iter_mut().enumerate() {
                let mut acc = 0f32;
                for q in 0..p.k {
                    let bv = if p.trans_b {
                        bb[j * p.ldb + q]
                    } else {
                        bb[q * p.ldb + j]
                    };
                    acc += ab[i * p.lda + q].to_f32() * bv.to_f32();
                }
                *cij = O::from_f32(acc);
            }
        });
    }
    Ok(())
}

/// How a registered CPU matmul computes.
#[derive(Clone, Copy, Debug)]
enum Algo {
    Naive,
    Packed { path: Path, blocking: Blocking },
}

/// Registry entry of the naive matmul.
pub struct NaiveMatmul {
    precision: Precision,
}

impl NaiveMatmul {
    pub fn new(precision: Precision) -> Self {
        NaiveMatmul { precision }
    }
}

/// Registry entry of the packed matmul for one path and precision.
pub struct PackedMatmul {
    path: Path,
    precision: Precision,
    blocking: Blocking,
    blocking_source: &'static str,
}

impl PackedMatmul {
    /// `blocking = None` derives it from the detected caches.
    pub fn new(isa: Isa, precision: Precision, blocking: Option<BlockingOverride>) -> Self {
        Self::with_path(Path::Isa(isa), precision, blocking)
    }

    /// The AVX512_BF16 path (register it for bf16 input precisions only).
    pub fn bf16dot(precision: Precision, blocking: Option<BlockingOverride>) -> Self {
        Self::with_path(Path::Bf16Dot, precision, blocking)
    }

    /// The AMX-BF16 path (register it for bf16 input precisions only).
    pub fn amx(precision: Precision, blocking: Option<BlockingOverride>) -> Self {
        Self::with_path(Path::Amx, precision, blocking)
    }

    fn with_path(path: Path, precision: Precision, blocking: Option<BlockingOverride>) -> Self {
        let (blocking, blocking_source) = match blocking {
            Some(o) => (o.apply(path.default_blocking()), "override"),
            None => (path.default_blocking(), cache::detected().source),
        };
        PackedMatmul {
            path,
            precision,
            blocking,
            blocking_source,
        }
    }
}

fn check_matmul(precision: Precision, problem: &Problem) -> Support {
    let Problem::Matmul(p) = problem else {
        return Support::no("not a matmul");
    };
    if let Err(e) = p.validate() {
        return Support::no(e.to_string());
    }
    if precision.accum != DType::F32 {
        return Support::no("CPU kernels accumulate in f32 only");
    }
    Support::Yes
}

impl Kernel for NaiveMatmul {
    fn identity(&self) -> KernelIdentity {
        KernelIdentity {
            op: Op::Matmul,
            backend: Backend::Cpu,
            family: "matmul.cpu.naive".into(),
            variant: "scalar".into(),
            precision: self.precision,
            unit: ComputeUnit::CpuScalar,
            params: serde_json::Map::new(),
        }
    }
    fn supports(&self, problem: &Problem) -> Support {
        check_matmul(self.precision, problem)
    }
    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        prepare_cpu(&self.identity(), Algo::Naive, problem, inputs)
    }
    fn is_baseline(&self) -> bool {
        true
    }
}

impl Kernel for PackedMatmul {
    fn identity(&self) -> KernelIdentity {
        let (mr, nr) = self.path.tile();
        let mut params = serde_json::Map::new();
        for (k, v) in [
            ("mr", mr),
            ("nr", nr),
            ("mc", self.blocking.mc),
            ("kc", self.blocking.kc),
            ("nc", self.blocking.nc),
        ] {
            params.insert(k.into(), v.into());
        }
        params.insert("blocking_source".into(), self.blocking_source.into());
        KernelIdentity {
            op: Op::Matmul,
            backend: Backend::Cpu,
            family: "matmul.cpu.packed".into(),
            variant: self.path.name().into(),
            precision: self.precision,
            unit: match self.path {
                Path::Isa(isa) => ComputeUnit::CpuFma(isa),
                Path::Bf16Dot => ComputeUnit::CpuBf16Dot,
                Path::Amx => ComputeUnit::CpuAmxBf16,
            },
            params,
        }
    }
    /// `packed.avx512bf16` and `packed.amx` belong to the AVX-512F path on CPUs with
    /// AVX512_BF16 and AMX-BF16, beside `packed.avx512f`, so all are measured.
    fn on_isa_path(&self, selected: Isa) -> bool {
        match self.path {
            Path::Isa(isa) => isa == selected,
            Path::Bf16Dot | Path::Amx => selected == Isa::Avx512f && self.path.available(),
        }
    }
    fn supports(&self, problem: &Problem) -> Support {
        if !self.path.available() {
            return Support::no(format!("this CPU lacks {}", self.path.name()));
        }
        if self.path.bf16_only() && self.precision.input != DType::BF16 {
            return Support::no(format!(
                "{} takes bf16 inputs, not {}",
                self.path.name(),
                self.precision.input
            ));
        }
        check_matmul(self.precision, problem)
    }
    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        if let Support::No(reason) = self.supports(problem) {
            return Err(KernelError::Unsupported {
                kernel: self.identity().id(),
                reason: reason.to_string(),
            });
        }
        let algo = Algo::Packed {
            path: self.path,
            blocking: self.blocking,
        };
        prepare_cpu(&self.identity(), algo, problem, inputs)
    }
}

struct CpuMatmul<T: Element, O: Element> {
    problem: MatmulProblem,
    algo: Algo,
    a: Arc<Tensor>,
    b: Arc<Tensor>,
    c: Vec<O>,
    _t: std::marker::PhantomData<T>,
}

thread_local! {
    /// The scratch of every prepared packed matmul run on this thread (packed B, the f32 C of a
    /// half output, the small-M path's A'). Scratch belongs to the thread, as a BLAS library's
    /// buffers do, not to a prepared instance: the runner prepares one instance per rotated
    /// input set of a memory-bound row, and one workspace each made every call pack into cold
    /// memory, a cost a library reusing its buffers does not pay (200 × 300 × 129 f32: 32–54
    /// GFLOP/s in runs against 75–80 for the same rotated inputs through one workspace).
    static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::default());
}

fn prepare_cpu(
    id: &KernelIdentity,
    algo: Algo,
    problem: &Problem,
    inputs: &[Arc<Tensor>],
) -> Result<Box<dyn Prepared>, KernelError> {
    if let Support::No(reason) = check_matmul(id.precision, problem) {
        return Err(KernelError::Unsupported {
            kernel: id.id(),
            reason: reason.to_string(),
        });
    }
    let Problem::Matmul(p) = *problem else {
        return Err(KernelError::Unsupported {
            kernel: id.id(),
            reason: "not a matmul".into(),
        });
    };
    let [a, b] = inputs else {
        return Err(KernelError::Other(format!(
            "matmul takes 2 inputs (A, B), {} given",
            inputs.len()
        )));
    };
    for (index, t) in [a, b].into_iter().enumerate() {
        if t.dtype() != id.precision.input {
            return Err(KernelError::InputDType {
                kernel: id.id(),
                index,
                actual: t.dtype(),
                expected: id.precision.input,
            });
        }
    }
    p.check_buffers(a.len(), b.len(), p.c_len())?;
    fn make<T: Element, O: Element>(
        p: MatmulProblem,
        algo: Algo,
        a: &Arc<Tensor>,
        b: &Arc<Tensor>,
    ) -> Box<dyn Prepared> {
        Box::new(CpuMatmul::<T, O> {
            problem: p,
            algo,
            a: a.clone(),
            b: b.clone(),
            c: vec![O::nan(); p.c_len()],
            _t: std::marker::PhantomData,
        })
    }
    use half::{bf16, f16};
    Ok(match (id.precision.input, id.precision.output) {
        (DType::F32, DType::F32) => make::<f32, f32>(p, algo, a, b),
        (DType::F16, DType::F16) => make::<f16, f16>(p, algo, a, b),
        (DType::F16, DType::F32) => make::<f16, f32>(p, algo, a, b),
        (DType::BF16, DType::BF16) => make::<bf16, bf16>(p, algo, a, b),
        (DType::BF16, DType::F32) => make::<bf16, f32>(p, algo, a, b),
        (i, o) => {
            return Err(KernelError::Unsupported {
                kernel: id.id(),
                reason: format!("no CPU path from {i} inputs to {o} output"),
            })
        }
    })
}

impl<T: Element, O: Element> Prepared for CpuMatmul<T, O> {
    fn run(&mut self) -> Result<(), KernelError> {
        let a = T::tensor_slice(&self.a).expect("dtype checked in prepare");
        let b = T::tensor_slice(&self.b).expect("dtype checked in prepare");
        match self.algo {
            Algo::Naive => naive_matmul(&self.problem, a, b, &mut self.c)?,
            Algo::Packed { path, blocking } => WORKSPACE.with(|ws| {
                let mut run = |ws: &mut Workspace| {
                    packed_path(path, &blocking, &self.problem, a, b, &mut self.c, ws)
                };
                // A run that work-stealing nests inside another on this thread (two prepared
                // matmuls in parallel on one pool) takes its own scratch.
                match ws.try_borrow_mut() {
                    Ok(mut ws) => run(&mut ws),
                    Err(_) => run(&mut Workspace::default()),
                }
            })?,
        }
        Ok(())
    }
    fn poison(&mut self) -> Result<(), KernelError> {
        self.c.iter_mut().for_each(|x| *x = O::nan());
        Ok(())
    }
    fn output(&mut self) -> Result<Tensor, KernelError> {
        Ok(O::into_tensor(self.c.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_override_sets_only_what_it_names() {
        let d = Blocking {
            mc: 96,
            kc: 2048,
            nc: 8192,
        };
        let o: BlockingOverride = "kc=256".parse().unwrap();
        assert_eq!(
            o.apply(d),
            Blocking {
                mc: 96,
                kc: 256,
                nc: 8192
            }
        );
        let o: BlockingOverride = " nc = 64 ,mc=48".parse().unwrap();
        assert_eq!((o.mc, o.kc, o.nc), (Some(48), None, Some(64)));
        let full: BlockingOverride = "mc=1,kc=2,nc=3".parse().unwrap();
        assert_eq!(full.apply(d), "mc=1,kc=2,nc=3".parse::<Blocking>().unwrap());
        for bad in [
            "",
            "kc",
            "kc=0",
            "kc=-1",
            "kc=2,kc=3",
            "xc=4",
            "kc=1,",
            "kc=1;nc=2",
        ] {
            let e = bad.parse::<BlockingOverride>().unwrap_err().to_string();
            assert!(
                e.contains(&format!("`{bad}`")) && e.contains("kc=256"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn blocking_parses_and_derives() {
        let b: Blocking = "mc=144,kc=256,nc=4080".parse().unwrap();
        assert_eq!(
            b,
            Blocking {
                mc: 144,
                kc: 256,
                nc: 4080
            }
        );
        assert!("mc=0,kc=1,nc=1".parse::<Blocking>().is_err());
        assert!("mc=1,kc=1".parse::<Blocking>().is_err());
        assert!("mc=1,kc=1,nc=1,xx=3".parse::<Blocking>().is_err());
        let caches = CacheSizes {
            l1d: 32 << 10,
            l2: 512 << 10,
            l3: 32 << 20,
            source: "test",
        };
        let d = Blocking::from_caches(&caches, 6, 16);
        assert_eq!(d.kc, 1024);
        assert_eq!(d.mc % 6, 0);
        assert_eq!(d.nc % 16, 0);
        assert_eq!(d.to_string().parse::<Blocking>().unwrap(), d);
        let zen5 = CacheSizes {
            l1d: 48 << 10,
            l2: 1 << 20,
            l3: 32 << 20,
            source: "test",
        };
        assert_eq!(
            Blocking::from_caches(&zen5, 12, 32),
            Blocking {
                mc: 96,
                kc: 1024,
                nc: 2048
            }
        );
        assert_eq!(
            Blocking::bf16dot_from_caches(&zen5, 12, 32),
            Blocking {
                mc: 96,
                kc: 2048,
                nc: 2048
            }
        );
        // The AMX path: kc to 4096 on a 2 MiB L2 (Xeon 6/207), 2048 on a 1 MiB one.
        let xeon = CacheSizes {
            l1d: 48 << 10,
            l2: 2 << 20,
            l3: 300 << 20,
            source: "test",
        };
        assert_eq!(
            Blocking::amx_from_caches(&xeon),
            Blocking {
                mc: 96,
                kc: 4096,
                nc: 8192
            }
        );
        assert_eq!(Blocking::amx_from_caches(&zen5).kc, 2048);
        assert_eq!(Blocking::bf16dot_from_caches(&xeon, 12, 32).kc, 2048);
    }
}
