//! GPU matmul (shaders/matmul.wgsl, shaders/coop.wgsl): `naive` (baseline), `tiled`
//! (workgroup-memory tiles, vec4 register blocking, f32 accumulation) for f32/f16/bf16, and `coop`
//! (cooperative matrices, f16 only, where the adapter reports a matching configuration).

use crate::dtype::{DType, Tensor};
use crate::gpu::context::{self, GpuContext};
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{CoopShape, Shader, Specialization};
use crate::gpu::timing::GpuRun;
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

/// Tile configuration of `tiled` (see the shader header for legal ranges). 64×64×16 with 8×8 per
/// thread: on lavapipe 1.3–1.4 GFLOP/s at 512³ for every dtype with about 3 s of cold JIT per
/// pipeline (../shared/notes/WGPU30.md §3; results/gpu-lavapipe.md); 128×128 tiles were 2×
/// faster there but cost 8–11 s of JIT each.
pub const TILED: TiledConfig = TiledConfig {
    bm: 64,
    bn: 64,
    bk: 16,
    tm: 8,
    tn: 8,
};

/// `naive` workgroup: 16 × 16 threads, each one row × two columns.
pub const NAIVE_WG: (u32, u32) = (16, 16);

/// Cooperative blocks per workgroup (BLK_ROWS × BLK_COLS), each a 2T × 2T block of one subgroup.
pub const COOP_BLOCKS: (u32, u32) = (2, 2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TiledConfig {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

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

pub fn naive_spec(input: DType, output: DType) -> Specialization {
    with_tile_consts(Specialization::new(Shader::Matmul, "naive").types(input, output))
        .override_("WG_X", NAIVE_WG.0)
        .override_("WG_Y", NAIVE_WG.1)
}

fn with_tile_consts(s: Specialization) -> Specialization {
    s.konst("BM", TILED.bm)
        .konst("BN", TILED.bn)
        .konst("BK", TILED.bk)
        .konst("TM", TILED.tm)
        .konst("TN", TILED.tn)
}

pub fn tiled_spec(input: DType, output: DType) -> Specialization {
    with_tile_consts(Specialization::new(Shader::Matmul, "tiled").types(input, output))
        .override_("WG_X", TILED.bn / TILED.tn)
        .override_("WG_Y", TILED.bm / TILED.tm)
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
pub fn coop_spec(shape: CoopShape, subgroup_min: u32, conv: CoopConvention) -> Specialization {
    let slots = COOP_BLOCKS.0 * COOP_BLOCKS.1;
    Specialization::new(Shader::Coop, "coop")
        .types(DType::F16, DType::F32)
        .konst("BLK_ROWS", COOP_BLOCKS.0)
        .konst("BLK_COLS", COOP_BLOCKS.1)
        .konst("SLOTS", slots)
        .flag("A_LOAD_T", conv.a_t)
        .flag("B_LOAD_T", conv.b_t)
        .flag("C_STORE_T", conv.c_t)
        .coop(shape)
        .override_("WG", slots * subgroup_min.max(1))
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
    let t = shape.t as usize;
    let precision = Precision::widening(DType::F16);
    let spec = coop_spec(shape, subgroup_min(ctx), conv);
    let kern = GpuMatmul::new(Variant::Coop, precision);
    let mut wrong = 0;
    for trans_b in [false, true] {
        // Two blocks across (n = 4T) so a swapped block order shows too.
        let mut p = MatmulProblem::new(2 * t, 4 * t, 2 * t);
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
        let layout = Layout::new(&p, precision, Variant::Coop, &spec);
        let mut prep = kern.prepare_spec(ctx.clone(), &p, &ins, &spec, layout)?;
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

/// A GPU matmul variant at one precision.
pub struct GpuMatmul {
    pub variant: Variant,
    pub precision: Precision,
}

impl GpuMatmul {
    pub fn new(variant: Variant, precision: Precision) -> Self {
        GpuMatmul { variant, precision }
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
    pub fn specializations(&self) -> Vec<Specialization> {
        let (i, o) = (self.precision.input, self.precision.output);
        match self.variant {
            Variant::Naive => vec![naive_spec(i, o)],
            Variant::Tiled => vec![tiled_spec(i, o)],
            Variant::Coop => {
                let mut v = Vec::new();
                for t in COOP_TILES {
                    for sg in SUBGROUP_SIZES {
                        for conv in CoopConvention::ALL {
                            v.push(coop_spec(CoopShape { t, acc: DType::F32 }, sg, conv));
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

    fn spec(&self, ctx: &Arc<GpuContext>) -> Result<Specialization, String> {
        let (i, o) = (self.precision.input, self.precision.output);
        Ok(match self.variant {
            Variant::Naive => naive_spec(i, o),
            Variant::Tiled => tiled_spec(i, o),
            Variant::Coop => {
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
                coop_spec(shape, subgroup_min(ctx), coop_convention(ctx)?)
            }
        })
    }

    /// Everything that can be decided without allocating: context, features, shape limits.
    fn check(
        &self,
        ctx: &Arc<GpuContext>,
        p: &MatmulProblem,
    ) -> Result<(Specialization, Layout), String> {
        p.validate().map_err(|e| e.to_string())?;
        let spec = self.spec(ctx)?;
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
        let layout = Layout::new(p, self.precision, self.variant, &spec);
        let in_b = self.precision.input.size_bytes() as u64;
        let out_b = self.precision.output.size_bytes() as u64;
        for (what, elems, bytes) in [
            ("A", p.a_len() as u64, p.a_len() as u64 * in_b),
            ("B", p.b_len() as u64, p.b_len() as u64 * in_b),
            ("C", layout.out_len as u64, layout.out_len as u64 * out_b),
            (
                "C (f32 accumulators)",
                (layout.out_len + layout.scratch_len) as u64,
                (layout.out_len + layout.scratch_len) as u64 * 4,
            ),
        ] {
            if elems > u32::MAX as u64 {
                return Err(format!(
                    "{what} has {elems} elements; the shaders index with u32 (at most {})",
                    u32::MAX
                ));
            }
            ctx.check_buffer(what, bytes, true)
                .map_err(|e| e.to_string())?;
        }
        ctx.check_grid(layout.grid).map_err(|e| e.to_string())?;
        Ok((spec, layout))
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
    fn new(
        p: &MatmulProblem,
        precision: Precision,
        variant: Variant,
        spec: &Specialization,
    ) -> Self {
        let ldc_out = if precision.output == DType::BF16 {
            p.n.div_ceil(2) * 2
        } else {
            p.ldc
        };
        let div = |a: usize, b: u32| a.div_ceil(b as usize).min(u32::MAX as usize) as u32;
        let grid = match variant {
            Variant::Naive => [
                div(p.n.div_ceil(2), NAIVE_WG.0),
                div(p.m, NAIVE_WG.1),
                p.batch as u32,
            ],
            Variant::Tiled => [div(p.n, TILED.bn), div(p.m, TILED.bm), p.batch as u32],
            Variant::Coop => {
                let t = spec.coop.map(|c| c.t).unwrap_or(16);
                [
                    div(p.n, 2 * t * COOP_BLOCKS.1),
                    div(p.m, 2 * t * COOP_BLOCKS.0),
                    p.batch as u32,
                ]
            }
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
            Variant::Tiled => {
                put("bm", TILED.bm);
                put("bn", TILED.bn);
                put("bk", TILED.bk);
                put("tm", TILED.tm);
                put("tn", TILED.tn);
            }
            Variant::Coop => {
                put("blk_rows", COOP_BLOCKS.0);
                put("blk_cols", COOP_BLOCKS.1);
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
        let (spec, layout) = self
            .check(&ctx, p)
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
        self.prepare_spec(ctx, p, inputs, &spec, layout)
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
