//! GPU matmul (shaders/matmul.wgsl, shaders/coop.wgsl): `naive` (baseline), `tiled`
//! (workgroup-memory tiles, vec4 register blocking, f32 accumulation) for f32/f16/bf16, and `coop`
//! (cooperative matrices, f16 only, where the adapter reports a matching configuration).

use crate::dtype::{DType, Tensor};
use crate::gpu::context::{self, GpuContext};
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{CoopShape, Shader, Specialization};
use crate::gpu::timing::GpuRun;
use crate::gpu::tune::ConfigSource;
use crate::kernel::{
    Backend, DeviceTiming, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support,
};
use crate::problem::{MatmulProblem, Precision};
use crate::unit::ComputeUnit;
use std::sync::Arc;

/// Rust twin of `MatmulParams` in shaders/matmul.wgsl and shaders/coop.wgsl (12 × u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc_out: u32,
    pub trans_b: u32,
    pub batch: u32,
    pub a_stride: u32,
    pub b_stride: u32,
    pub c_stride: u32,
    /// coop.wgsl: element offset of the idle subgroups' scratch tile; unused elsewhere.
    pub aux: u32,
}

/// Rust twin of `ConvertParams` in shaders/convert.wgsl (4 × u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvertParams {
    pub n: u32,
    pub _pad: [u32; 3],
}

/// Workgroup size of the f32 → output conversion after the coop matmul.
pub const CONVERT_WG: u32 = 256;

/// The f32 → `output` rounding pass (f16 output of the coop matmul).
pub fn convert_spec(output: DType) -> Specialization {
    Specialization::new(Shader::Convert, "convert")
        .types(DType::F32, output)
        .override_("WG", CONVERT_WG)
}

/// `naive` workgroup: 16 × 16 threads, each one row × two columns.
pub const NAIVE_WG: (u32, u32) = (16, 16);

pub use crate::gpu::tune::{CoopBlocks, MatmulConfig, Staging, TiledConfig};

/// The GPU matmul variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Naive,
    Tiled,
    Coop,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Naive, Variant::Tiled, Variant::Coop];
    pub fn name(self) -> &'static str {
        match self {
            Variant::Naive => "naive",
            Variant::Tiled => "tiled",
            Variant::Coop => "coop",
        }
    }
}

/// (input, output) pairs of `naive` and `tiled`: same-type output for every dtype, and f32 output
/// for the half types (accumulation is always f32).
pub fn gpu_precisions() -> Vec<(DType, DType)> {
    let mut v = Vec::new();
    for d in DType::ALL {
        v.push((d, d));
        if d != DType::F32 {
            v.push((d, DType::F32));
        }
    }
    v
}

/// `naive` (the module declares the workgroup tiles of `tiled` too: the smallest legal ones).
pub fn naive_spec(input: DType, output: DType) -> Specialization {
    with_tile_consts(
        Specialization::new(Shader::Matmul, "naive").types(input, output),
        NAIVE_TILES,
    )
    .override_("WG_X", NAIVE_WG.0)
    .override_("WG_Y", NAIVE_WG.1)
}

/// The array-sizing tile constants `naive`'s module carries unused (it shares the file).
const NAIVE_TILES: TiledConfig = TiledConfig {
    bm: 16,
    bn: 16,
    bk: 4,
    tm: 4,
    tn: 4,
    double_buf: false,
};

fn with_tile_consts(s: Specialization, t: TiledConfig) -> Specialization {
    s.konst("BM", t.bm)
        .konst("BN", t.bn)
        .konst("BK", t.bk)
        .konst("TM", t.tm)
        .konst("TN", t.tn)
        .flag("DOUBLE_BUF", t.double_buf)
}

/// `tiled` with tiles `t`; `checks: false` builds a trusted module without wgpu's runtime
/// bounds checks.
pub fn tiled_spec(input: DType, output: DType, t: TiledConfig, checks: bool) -> Specialization {
    with_tile_consts(
        Specialization::new(Shader::Matmul, "tiled").types(input, output),
        t,
    )
    .override_("WG_X", t.bn / t.tn)
    .override_("WG_Y", t.bm / t.tm)
    .runtime_checks(checks)
}

/// Which cooperative load/store builtin reads/writes row-major memory, per role: `true` means the
/// `T` form (`coopLoadT`, `coopStoreT`). naga passes the `T` flag to each backend differently
/// (SPIR-V `RowMajorKHR` vs Metal's transpose flag), so the convention is measured on the device
/// ([`coop_convention`]) rather than assumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoopConvention {
    pub a_t: bool,
    pub b_t: bool,
    pub c_t: bool,
}

impl CoopConvention {
    /// Every convention, the one the SPIR-V semantics predict (all `T`) first.
    pub const ALL: [CoopConvention; 8] = {
        let mut v = [CoopConvention {
            a_t: true,
            b_t: true,
            c_t: true,
        }; 8];
        let mut i = 0;
        while i < 8 {
            v[i] = CoopConvention {
                a_t: i & 1 == 0,
                b_t: i & 2 == 0,
                c_t: i & 4 == 0,
            };
            i += 1;
        }
        v
    };
}

/// The coop matmul (f32 stores; f16 output adds [`convert_spec`]) for tile configuration `shape`
/// on an adapter whose smallest subgroup has `subgroup_min` invocations, with load/store
/// convention `conv`.
pub fn coop_spec(
    shape: CoopShape,
    subgroup_min: u32,
    conv: CoopConvention,
    blocks: CoopBlocks,
    checks: bool,
) -> Specialization {
    coop_spec_staged(shape, subgroup_min, conv, blocks, checks, Staging::Direct)
}

/// [`coop_spec`] with the tiles' path: `coop` (direct loads) or `coop_staged` (workgroup
/// memory), the latter optionally from patched SPIR-V.
pub fn coop_spec_staged(
    shape: CoopShape,
    subgroup_min: u32,
    conv: CoopConvention,
    blocks: CoopBlocks,
    checks: bool,
    staging: Staging,
) -> Specialization {
    let slots = blocks.slots();
    let entry = match staging {
        Staging::Direct => "coop",
        Staging::Workgroup | Staging::WorkgroupPatched => "coop_staged",
    };
    Specialization::new(Shader::Coop, entry)
        .types(DType::F16, DType::F32)
        .konst("BLK_ROWS", blocks.blk_rows)
        .konst("BLK_COLS", blocks.blk_cols)
        .konst("SLOTS", slots)
        .flag("A_LOAD_T", conv.a_t)
        .flag("B_LOAD_T", conv.b_t)
        .flag("C_STORE_T", conv.c_t)
        .coop(shape)
        .override_("WG", slots * subgroup_min.max(1))
        .runtime_checks(checks)
        .patched_spirv(staging == Staging::WorkgroupPatched)
}

fn subgroup_min(ctx: &GpuContext) -> u32 {
    match ctx.report.subgroup_min_size {
        0 => 32,
        s => s,
    }
}

/// Run the coop kernel with convention `conv` on a small non-commuting integer problem (exact in
/// f16 and f32), with B stored both ways; returns the number of wrong output elements.
pub fn coop_self_check(ctx: &Arc<GpuContext>, conv: CoopConvention) -> Result<usize, KernelError> {
    let shape =
        coop_shape(ctx).ok_or_else(|| KernelError::Other("no coop configuration".into()))?;
    let spec = coop_spec(
        shape,
        subgroup_min(ctx),
        conv,
        crate::gpu::tune::COOP_DEFAULT,
        true,
    );
    coop_check_spec(ctx, &spec, 1)
}

/// Run a coop specialization on small non-commuting integer problems (exact in f16 and f32),
/// with B stored both ways and `k_steps` × T deep (several K steps exercise the staged path's
/// double buffer); returns the number of wrong output elements.
fn coop_check_spec(
    ctx: &Arc<GpuContext>,
    spec: &Specialization,
    k_steps: usize,
) -> Result<usize, KernelError> {
    let shape = spec
        .coop
        .ok_or_else(|| KernelError::Other("not a coop specialization".into()))?;
    let t = shape.t as usize;
    let precision = Precision::widening(DType::F16);
    let kern = GpuMatmul::new(Variant::Coop, precision);
    let mut wrong = 0;
    for trans_b in [false, true] {
        // Two blocks across (n = 4T) so a swapped block order shows too; rows past the
        // workgroup's block (m = 3T) go through the edge path.
        let mut p = MatmulProblem::new(3 * t, 4 * t, 2 * t * k_steps);
        if trans_b {
            p = p.transposed_b();
        }
        let a: Vec<f32> = (0..p.a_len())
            .map(|i| ((i / p.lda * 7 + i % p.lda * 3) % 5) as f32 - 2.0)
            .collect();
        let b: Vec<f32> = (0..p.b_len())
            .map(|i| ((i / p.ldb * 5 + i % p.ldb * 2) % 7) as f32 - 3.0)
            .collect();
        let b_at = |kk: usize, c: usize| {
            if trans_b {
                b[c * p.ldb + kk]
            } else {
                b[kk * p.ldb + c]
            }
        };
        let ins = [
            Arc::new(Tensor::from_f32(DType::F16, &a)),
            Arc::new(Tensor::from_f32(DType::F16, &b)),
        ];
        let layout = Layout::new(&p, precision, spec);
        let mut prep = kern.prepare_spec(ctx.clone(), &p, &ins, spec, layout)?;
        prep.run()?;
        let out = prep.output()?.to_f64();
        for r in 0..p.m {
            for c in 0..p.n {
                let want: f32 = (0..p.k).map(|kk| a[r * p.lda + kk] * b_at(kk, c)).sum();
                if out[r * p.ldc + c] != want as f64 {
                    wrong += 1;
                }
            }
        }
    }
    Ok(wrong)
}

/// The load/store convention under which the coop kernel computes `A·B` on this device, found by
/// [`coop_self_check`] once per adapter (each candidate until one is exact); `Err` when none is.
pub fn coop_convention(ctx: &Arc<GpuContext>) -> Result<CoopConvention, String> {
    type Cache = Vec<(usize, Result<CoopConvention, String>)>;
    static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(Vec::new());
    let key = ctx.report.index;
    let mut cache = CACHE.lock().map_err(|_| "coop cache lock poisoned")?;
    if let Some((_, r)) = cache.iter().find(|(i, _)| *i == key) {
        return r.clone();
    }
    let mut tried = Vec::new();
    let mut result = None;
    for conv in CoopConvention::ALL {
        match coop_self_check(ctx, conv) {
            Ok(0) => {
                result = Some(conv);
                break;
            }
            Ok(w) => tried.push(format!("{conv:?}: {w} wrong")),
            Err(e) => tried.push(format!("{conv:?}: {e}")),
        }
    }
    let result = result.ok_or_else(|| {
        format!(
            "the cooperative-matrix self-check failed under every load/store convention ({})",
            tried.join("; ")
        )
    });
    cache.push((key, result.clone()));
    result
}

/// The staged-load self-check (`prepare` runs it once per adapter and staging mode before any
/// staged configuration is used): the staged coop GEMM on small integer problems, four K steps
/// deep, under the adapter's load/store convention. `Err` says how many elements were wrong (a
/// stale read through workgroup memory shows as wrong elements), and the configuration is then
/// unsupported on this adapter, never timed.
pub fn staged_check(ctx: &Arc<GpuContext>, staging: Staging) -> Result<(), String> {
    type Cache = Vec<((usize, Staging), Result<(), String>)>;
    static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(Vec::new());
    let key = (ctx.report.index, staging);
    let mut cache = CACHE
        .lock()
        .map_err(|_| "staged check cache lock poisoned")?;
    if let Some((_, r)) = cache.iter().find(|(k, _)| *k == key) {
        return r.clone();
    }
    let result = (|| {
        let shape = coop_shape(ctx).ok_or("no coop configuration")?;
        let conv = coop_convention(ctx)?;
        let spec = coop_spec_staged(
            shape,
            subgroup_min(ctx),
            conv,
            crate::gpu::tune::COOP_DEFAULT,
            true,
            staging,
        );
        match coop_check_spec(ctx, &spec, 4) {
            Ok(0) => Ok(()),
            Ok(w) => Err(format!(
                "the staged-load self-check ({}) got {w} wrong elements: workgroup memory \
                 read stale values on this adapter",
                staging.name()
            )),
            Err(e) => Err(format!(
                "the staged-load self-check ({}) could not run: {e}",
                staging.name()
            )),
        }
    })();
    cache.push((key, result.clone()));
    result
}

/// The adapter's cooperative configuration for f16 × f16 + f32 with square tiles of 8 or 16
/// (the shapes wgpu 30's `coop_mat8x8`/`coop_mat16x16` express), the larger preferred.
pub fn coop_shape(ctx: &GpuContext) -> Option<CoopShape> {
    ctx.report
        .coop
        .iter()
        .filter(|c| c.m == c.n && c.n == c.k && (c.m == 8 || c.m == 16))
        .filter(|c| c.ab == "f16" && c.cr == "f32")
        .map(|c| CoopShape {
            t: c.m,
            acc: DType::F32,
        })
        .max_by_key(|s| s.t)
}

/// Cooperative-matrix tile edges the coop kernel may use (what adapters report: 8 or 16).
pub const COOP_TILES: [u32; 2] = [8, 16];
/// Subgroup sizes the shaders are specialized for across adapters (lavapipe 8, NVIDIA 32, AMD 64).
pub const SUBGROUP_SIZES: [u32; 3] = [8, 32, 64];

/// A GPU matmul variant at one precision. Its configuration (tiles, blocks) is chosen per
/// adapter and problem ([`crate::gpu::tune::choose`]) unless set with [`with_config`](Self::with_config).
pub struct GpuMatmul {
    pub variant: Variant,
    pub precision: Precision,
    pub config: Option<MatmulConfig>,
}

impl GpuMatmul {
    pub fn new(variant: Variant, precision: Precision) -> Self {
        GpuMatmul {
            variant,
            precision,
            config: None,
        }
    }

    /// This kernel with a fixed configuration (what `tune` times); it must be of the kernel's
    /// kind (tiles for `tiled`, blocks for `coop`).
    pub fn with_config(mut self, c: MatmulConfig) -> Self {
        self.config = Some(c);
        self
    }

    /// A configuration of this kernel's kind (`None` for `naive`, which has none to tune).
    pub fn config_kind(&self) -> Option<MatmulConfig> {
        match self.variant {
            Variant::Naive => None,
            Variant::Tiled => Some(MatmulConfig::Tiled {
                tiles: crate::gpu::tune::TILED_SOFTWARE,
                checks: true,
            }),
            Variant::Coop => Some(MatmulConfig::Coop {
                blocks: crate::gpu::tune::COOP_DEFAULT,
                checks: true,
                staging: Staging::Direct,
            }),
        }
    }

    /// Every configuration `tune` may time for this kernel on an adapter with these limits and
    /// subgroup size (legal ones only), the default first; each with and without runtime checks
    /// for the default tiles only (the checks' cost is a property of the module, not the tiles).
    pub fn config_space(&self, limits: &wgpu::Limits, subgroup: u32) -> Vec<MatmulConfig> {
        let mut v = Vec::new();
        match self.variant {
            Variant::Naive => {}
            Variant::Tiled => {
                for (i, t) in crate::gpu::tune::tiled_space().into_iter().enumerate() {
                    if t.illegal(limits).is_none() {
                        v.push(MatmulConfig::Tiled {
                            tiles: t,
                            checks: true,
                        });
                        if i < 2 {
                            v.push(MatmulConfig::Tiled {
                                tiles: t,
                                checks: false,
                            });
                        }
                    }
                }
            }
            Variant::Coop => {
                // Every staging mode of a block before the next block, so the first few
                // configurations of a job answer the staging question (direct, staged, staged
                // from patched SPIR-V) side by side even when the time cap ends the job early.
                for (i, b) in crate::gpu::tune::coop_space().into_iter().enumerate() {
                    for staging in Staging::ALL {
                        if b.illegal(subgroup, limits).is_none() {
                            v.push(MatmulConfig::Coop {
                                blocks: b,
                                checks: true,
                                staging,
                            });
                            if i == 0 {
                                v.push(MatmulConfig::Coop {
                                    blocks: b,
                                    checks: false,
                                    staging,
                                });
                            }
                        }
                    }
                }
            }
        }
        v
    }

    /// Every registered GPU matmul.
    pub fn all() -> Vec<GpuMatmul> {
        let mut v = Vec::new();
        for (i, o) in gpu_precisions() {
            let p = Precision {
                input: i,
                accum: DType::F32,
                output: o,
            };
            v.push(GpuMatmul::new(Variant::Naive, p));
            v.push(GpuMatmul::new(Variant::Tiled, p));
            if i == DType::F16 {
                v.push(GpuMatmul::new(Variant::Coop, p));
            }
        }
        v
    }

    /// Every specialization this kernel may build, with the adapter-dependent values (coop tile
    /// edge, subgroup size, load/store convention) at every value they may take: what the
    /// CPU-only shader validation compiles.
    /// Every tile configuration of the tuning space that is legal under generous limits
    /// ([`crate::gpu::tune::validation_limits`]) is listed.
    pub fn specializations(&self) -> Vec<Specialization> {
        let (i, o) = (self.precision.input, self.precision.output);
        let lim = crate::gpu::tune::validation_limits();
        match self.variant {
            Variant::Naive => vec![naive_spec(i, o)],
            Variant::Tiled => self
                .config_space(&lim, 32)
                .into_iter()
                .filter_map(|c| match c {
                    MatmulConfig::Tiled { tiles, checks } => Some(tiled_spec(i, o, tiles, checks)),
                    MatmulConfig::Coop { .. } => None,
                })
                .collect(),
            Variant::Coop => {
                let mut v = Vec::new();
                for t in COOP_TILES {
                    for sg in SUBGROUP_SIZES {
                        for conv in CoopConvention::ALL {
                            v.push(coop_spec(
                                CoopShape { t, acc: DType::F32 },
                                sg,
                                conv,
                                crate::gpu::tune::COOP_DEFAULT,
                                true,
                            ));
                        }
                        // Every block configuration legal at this subgroup size, under the
                        // convention NVIDIA's Vulkan driver takes (all `T`).
                        for c in self.config_space(&lim, sg) {
                            if let MatmulConfig::Coop {
                                blocks,
                                checks,
                                staging,
                            } = c
                            {
                                v.push(coop_spec_staged(
                                    CoopShape { t, acc: DType::F32 },
                                    sg,
                                    CoopConvention::ALL[0],
                                    blocks,
                                    checks,
                                    staging,
                                ));
                            }
                        }
                    }
                }
                if o != DType::F32 {
                    v.push(convert_spec(o));
                }
                v
            }
        }
    }

    /// The configuration for `p` on `ctx` and where it came from: the fixed one, else the
    /// installed tune cache's entry, else the per-adapter default.
    fn config_for(
        &self,
        ctx: &GpuContext,
        p: &MatmulProblem,
    ) -> Option<(MatmulConfig, ConfigSource)> {
        let like = self.config_kind()?;
        Some(match self.config {
            Some(c) => (c, ConfigSource::Explicit),
            None => crate::gpu::tune::choose(&self.identity().id(), &like, p, ctx),
        })
    }

    fn spec(
        &self,
        ctx: &Arc<GpuContext>,
        p: &MatmulProblem,
    ) -> Result<(Specialization, Option<ConfigSource>), String> {
        let (i, o) = (self.precision.input, self.precision.output);
        let chosen = self.config_for(ctx, p);
        if let Some((c, _)) = &chosen {
            if let Some(why) = crate::gpu::tune::illegal_here(c, ctx) {
                return Err(format!("configuration {}: {why}", c.label()));
            }
        }
        let source = chosen.map(|(_, s)| s);
        let config = chosen.map(|(c, _)| c);
        let spec = match (self.variant, config) {
            (Variant::Tiled, Some(MatmulConfig::Tiled { tiles, checks })) => {
                tiled_spec(i, o, tiles, checks)
            }
            (
                Variant::Coop,
                Some(MatmulConfig::Coop {
                    blocks,
                    checks,
                    staging,
                }),
            ) => {
                let shape = coop_shape(ctx).ok_or_else(|| {
                    let have = if ctx.report.coop.is_empty() {
                        "none".to_string()
                    } else {
                        ctx.report
                            .coop
                            .iter()
                            .map(|c| format!("{}x{}x{} {}->{}", c.m, c.n, c.k, c.ab, c.cr))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    format!(
                        "{} reports no cooperative-matrix configuration 8x8x8 or 16x16x16 \
                         f16->f32 (it has: {have})",
                        ctx.report.name
                    )
                })?;
                let conv = coop_convention(ctx)?;
                if staging != Staging::Direct {
                    staged_check(ctx, staging)?;
                }
                coop_spec_staged(shape, subgroup_min(ctx), conv, blocks, checks, staging)
            }
            (Variant::Naive, _) => naive_spec(i, o),
            (v, c) => {
                return Err(format!(
                    "configuration {c:?} is not one of the {} kernel",
                    v.name()
                ))
            }
        };
        Ok((spec, source))
    }

    /// Everything that can be decided without allocating: context, features, shape limits.
    fn check(
        &self,
        ctx: &Arc<GpuContext>,
        p: &MatmulProblem,
    ) -> Result<(Specialization, Option<ConfigSource>, Layout), String> {
        p.validate().map_err(|e| e.to_string())?;
        let (spec, source) = self.spec(ctx, p)?;
        can_build(ctx, &spec).map_err(|e| e.to_string())?;
        if let Specialization {
            coop: Some(shape), ..
        } = &spec
        {
            let t = shape.t as usize;
            if !(p.m.is_multiple_of(t) && p.n.is_multiple_of(t) && p.k.is_multiple_of(t)) {
                return Err(format!(
                    "the cooperative-matrix path needs m, n, k multiples of {t} (got {}x{}x{})",
                    p.m, p.n, p.k
                ));
            }
            if !(p.lda.is_multiple_of(8) && p.ldb.is_multiple_of(8)) {
                return Err("the cooperative-matrix path needs lda, ldb multiples of 8".into());
            }
            let wg = spec.overrides[0].1 as u32;
            if wg > ctx.limits.max_compute_invocations_per_workgroup {
                return Err(format!(
                    "workgroup of {wg} invocations above max_compute_invocations_per_workgroup"
                ));
            }
        }
        let layout = Layout::new(p, self.precision, &spec);
        let in_b = self.precision.input.size_bytes() as u64;
        let out_b = self.precision.output.size_bytes() as u64;
        ctx.check_buffers(&[
            ("A", p.a_len() as u64, p.a_len() as u64 * in_b),
            ("B", p.b_len() as u64, p.b_len() as u64 * in_b),
            ("C", layout.out_len as u64, layout.out_len as u64 * out_b),
            (
                "C (f32 accumulators)",
                (layout.out_len + layout.scratch_len) as u64,
                (layout.out_len + layout.scratch_len) as u64 * 4,
            ),
        ])?;
        ctx.check_grid(layout.grid).map_err(|e| e.to_string())?;
        Ok((spec, source, layout))
    }
}

/// Output layout and dispatch grid of a prepared matmul.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Row stride of the output buffer (even for packed bf16 output).
    ldc_out: usize,
    out_len: usize,
    /// coop: elements after `out_len` in its f32 buffer for the idle subgroups' tile.
    scratch_len: usize,
    grid: [u32; 3],
}

impl Layout {
    fn new(p: &MatmulProblem, precision: Precision, spec: &Specialization) -> Self {
        let ldc_out = if precision.output == DType::BF16 {
            p.n.div_ceil(2) * 2
        } else {
            p.ldc
        };
        let div = |a: usize, b: u32| a.div_ceil(b as usize).min(u32::MAX as usize) as u32;
        let grid = match (spec.entry, spec.coop) {
            (_, Some(c)) => [
                div(p.n, 2 * c.t * spec.konst_value("BLK_COLS")),
                div(p.m, 2 * c.t * spec.konst_value("BLK_ROWS")),
                p.batch as u32,
            ],
            ("tiled", None) => [
                div(p.n, spec.konst_value("BN")),
                div(p.m, spec.konst_value("BM")),
                p.batch as u32,
            ],
            _ => [
                div(p.n.div_ceil(2), NAIVE_WG.0),
                div(p.m, NAIVE_WG.1),
                p.batch as u32,
            ],
        };
        let scratch_len = match spec.coop {
            Some(c) => c.t as usize * ldc_out + c.t as usize,
            None => 0,
        };
        Layout {
            ldc_out,
            out_len: p.batch * p.m * ldc_out,
            scratch_len,
            grid,
        }
    }
}

impl Kernel for GpuMatmul {
    fn identity(&self) -> KernelIdentity {
        let mut params = serde_json::Map::new();
        let mut put = |k: &str, v: u32| {
            params.insert(k.into(), serde_json::Value::from(v));
        };
        match self.variant {
            Variant::Naive => {
                put("wg_x", NAIVE_WG.0);
                put("wg_y", NAIVE_WG.1);
            }
            // The configuration depends on the adapter and the problem: the row's params get
            // it when the kernel is prepared (`chosen_params`), with `config_source`.
            Variant::Tiled | Variant::Coop => {
                if let Some(c) = self.config {
                    params.extend(c.params());
                }
            }
        }
        KernelIdentity {
            op: Op::Matmul,
            backend: Backend::Gpu,
            family: format!("matmul.gpu.{}", self.variant.name()),
            variant: "wgsl".into(),
            precision: self.precision,
            unit: match self.variant {
                Variant::Coop => ComputeUnit::GpuCoop,
                Variant::Naive | Variant::Tiled => ComputeUnit::GpuSimt,
            },
            params,
        }
    }

    fn supports(&self, problem: &Problem) -> Support {
        let Problem::Matmul(p) = problem else {
            return Support::no("not a matmul");
        };
        // The problem's own faults come first (and need no GPU).
        if let Err(e) = p.validate() {
            return Support::no(e.to_string());
        }
        let ctx = match context::global() {
            Ok(c) => c,
            Err(e) => return Support::no(e),
        };
        match self.check(&ctx, p) {
            Ok(_) => Support::Yes,
            Err(e) => Support::no(e),
        }
    }

    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let ctx = context::global()?;
        self.prepare_on(ctx, problem, inputs)
            .map(|p| Box::new(p) as Box<dyn Prepared>)
    }

    fn is_baseline(&self) -> bool {
        self.variant == Variant::Naive
    }
}

impl GpuMatmul {
    /// Prepare on a given context (tests, probes); the registry path uses the global one.
    pub fn prepare_on(
        &self,
        ctx: Arc<GpuContext>,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<PreparedMatmul, KernelError> {
        let id = self.identity().id();
        let Problem::Matmul(p) = problem else {
            return Err(KernelError::Other(format!("{id}: not a matmul")));
        };
        let (spec, source, layout) =
            self.check(&ctx, p)
                .map_err(|reason| KernelError::Unsupported {
                    kernel: id.clone(),
                    reason: reason.to_string(),
                })?;
        if inputs.len() != 2 {
            return Err(KernelError::Other(format!("{id}: expects 2 inputs (A, B)")));
        }
        for (index, t) in inputs.iter().enumerate() {
            if t.dtype() != self.precision.input {
                return Err(KernelError::InputDType {
                    kernel: id.clone(),
                    index,
                    actual: t.dtype(),
                    expected: self.precision.input,
                });
            }
        }
        p.check_buffers(inputs[0].len(), inputs[1].len(), p.c_len())?;
        let mut prepared = self.prepare_spec(ctx, p, inputs, &spec, layout)?;
        if self.variant == Variant::Naive {
            // Its module carries tile constants it does not use.
            for k in ["bm", "bn", "bk", "tm", "tn", "double_buf"] {
                prepared.chosen.remove(k);
            }
        }
        if let Some(s) = source {
            prepared
                .chosen
                .insert("config_source".into(), s.name().into());
        }
        Ok(prepared)
    }

    /// Prepare with a given specialization of this kernel's shader (tests and diagnostics: e.g.
    /// `tiled` built through the patched-SPIR-V passthrough path on any Vulkan adapter). The
    /// problem and inputs are checked as in [`prepare_on`](Self::prepare_on).
    pub fn prepare_with_spec(
        &self,
        ctx: Arc<GpuContext>,
        p: &MatmulProblem,
        inputs: &[Arc<Tensor>],
        spec: &Specialization,
    ) -> Result<PreparedMatmul, KernelError> {
        p.validate()?;
        if inputs.len() != 2 || inputs.iter().any(|t| t.dtype() != self.precision.input) {
            return Err(KernelError::Other(
                "expects 2 inputs (A, B) of the kernel's input type".into(),
            ));
        }
        p.check_buffers(inputs[0].len(), inputs[1].len(), p.c_len())?;
        let layout = Layout::new(p, self.precision, spec);
        self.prepare_spec(ctx, p, inputs, spec, layout)
    }

    /// Allocate, upload and bind for an already checked specialization.
    fn prepare_spec(
        &self,
        ctx: Arc<GpuContext>,
        p: &MatmulProblem,
        inputs: &[Arc<Tensor>],
        spec: &Specialization,
        layout: Layout,
    ) -> Result<PreparedMatmul, KernelError> {
        let params = MatmulParams {
            m: p.m as u32,
            n: p.n as u32,
            k: p.k as u32,
            lda: p.lda as u32,
            ldb: p.ldb as u32,
            ldc_out: layout.ldc_out as u32,
            trans_b: p.trans_b as u32,
            batch: p.batch as u32,
            a_stride: p.a_stride() as u32,
            b_stride: p.b_stride() as u32,
            c_stride: (p.m * layout.ldc_out) as u32,
            aux: layout.out_len as u32,
        };
        let pipeline = ctx.pipeline(spec)?;
        let a = ctx.storage_init("A", inputs[0].as_bytes())?;
        let b = ctx.storage_init("B", inputs[1].as_bytes())?;
        let u = ctx.uniform("matmul params", bytemuck::bytes_of(&params))?;
        let mut keep = vec![a, b, u];
        let Some(shape) = spec.coop else {
            let poison = Tensor::nan(self.precision.output, layout.out_len);
            let c = ctx.storage_init("C", poison.as_bytes())?;
            let bind = ctx.bind_group(&pipeline, &[&keep[0], &keep[1], &c, &keep[2]])?;
            let run = GpuRun::new(ctx, pipeline, bind, layout.grid)?;
            return Ok(PreparedMatmul {
                chosen: spec.params(),
                run,
                problem: *p,
                output: self.precision.output,
                layout,
                c,
                _buffers: keep,
            });
        };
        // coop: f32 accumulators (+ scratch tile), stored straight from the cooperative matrices;
        // f16 output rounds them in a second dispatch of the same pass.
        let acc = ctx.storage_init(
            "C (f32 accumulators)",
            Tensor::nan(DType::F32, layout.out_len + layout.scratch_len).as_bytes(),
        )?;
        let zero = ctx.storage_init("coop zeros", &vec![0u8; (shape.t * shape.t * 4) as usize])?;
        let bind = ctx.bind_group(&pipeline, &[&keep[0], &keep[1], &acc, &keep[2], &zero])?;
        let run = GpuRun::new(ctx.clone(), pipeline, bind, layout.grid)?;
        keep.push(zero);
        if self.precision.output == DType::F32 {
            return Ok(PreparedMatmul {
                chosen: spec.params(),
                run,
                problem: *p,
                output: DType::F32,
                layout,
                c: acc,
                _buffers: keep,
            });
        }
        let conv = ctx.pipeline(&convert_spec(self.precision.output))?;
        let c = ctx.storage_init(
            "C",
            Tensor::nan(self.precision.output, layout.out_len).as_bytes(),
        )?;
        let cp = ConvertParams {
            n: layout.out_len as u32,
            _pad: [0; 3],
        };
        let cu = ctx.uniform("convert params", bytemuck::bytes_of(&cp))?;
        let cbind = ctx.bind_group(&conv, &[&acc, &c, &cu])?;
        let groups = (layout.out_len as u32).div_ceil(CONVERT_WG).clamp(1, 65535);
        let run = run.then(conv, cbind, [groups, 1, 1])?;
        keep.extend([acc, cu]);
        Ok(PreparedMatmul {
            chosen: spec.params(),
            run,
            problem: *p,
            output: self.precision.output,
            layout,
            c,
            _buffers: keep,
        })
    }
}

/// A matmul ready on the device.
pub struct PreparedMatmul {
    /// The specialization's values (recorded as the row's chosen params).
    chosen: serde_json::Map<String, serde_json::Value>,
    run: GpuRun,
    problem: MatmulProblem,
    output: DType,
    layout: Layout,
    c: wgpu::Buffer,
    _buffers: Vec<wgpu::Buffer>,
}

impl Prepared for PreparedMatmul {
    fn run(&mut self) -> Result<(), KernelError> {
        self.run.run()
    }
    fn chosen_params(&self) -> serde_json::Map<String, serde_json::Value> {
        self.chosen.clone()
    }

    fn poison(&mut self) -> Result<(), KernelError> {
        let nan = Tensor::nan(self.output, self.layout.out_len);
        self.run.ctx.write(&self.c, nan.as_bytes())
    }

    fn output(&mut self) -> Result<Tensor, KernelError> {
        let size = self.output.size_bytes();
        let bytes = self
            .run
            .ctx
            .read(&self.c, (self.layout.out_len * size) as u64)?;
        let p = &self.problem;
        if self.layout.ldc_out == p.ldc {
            return Ok(tensor_from_bytes(self.output, &bytes));
        }
        // Unpad rows (packed bf16 output) into the problem's ldc layout.
        let mut out = vec![0u8; p.c_len() * size];
        for r in 0..p.batch * p.m {
            let src = r * self.layout.ldc_out * size;
            let dst = r * p.ldc * size;
            out[dst..dst + p.n * size].copy_from_slice(&bytes[src..src + p.n * size]);
        }
        Ok(tensor_from_bytes(self.output, &out))
    }

    fn time_device(&mut self, iters: u64) -> Option<Result<DeviceTiming, KernelError>> {
        Some(self.run.time(iters))
    }
}

/// A tensor of `dtype` from little-endian bytes.
pub fn tensor_from_bytes(dtype: DType, bytes: &[u8]) -> Tensor {
    match dtype {
        DType::F32 => Tensor::F32(bytemuck::pod_collect_to_vec(bytes)),
        DType::F16 => Tensor::F16(bytemuck::pod_collect_to_vec(bytes)),
        DType::BF16 => Tensor::BF16(bytemuck::pod_collect_to_vec(bytes)),
    }
}
