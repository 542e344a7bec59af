//! GPU matmul (shaders/matmul.wgsl, shaders/coop.wgsl): `naive` (baseline), `tiled`
//! (workgroup-memory tiles, vec4 register blocking, f32 accumulation) for f32/f16/bf16, and `coop`
//! (cooperative matrices, f16 only, where the adapter reports a matching configuration).

use crate::dtype::{DType, Tensor};
use crate::gpu::context::{self, GpuContext};
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{CoopShape, Shader, Specialization};
use crate::gpu::timing::GpuRun;
use crate::problem::{MatmulProblem, Precision};
use crate::registry::{
    Backend, DeviceTiming, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support,
};
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
    pub _pad: u32,
}

/// Tile configuration of `tiled` (see the shader header for legal ranges). 64×64×16 with 8×8 per
/// thread: on lavapipe 1.3–1.4 GFLOP/s at 512³ for every dtype with about 3 s of cold JIT per
/// pipeline (/work/shared/notes/WGPU30.md §3; results/gpu-lavapipe.md); 128×128 tiles were 2×
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

/// The coop matmul for tile configuration `shape`, output `output` (f16 or f32), on an adapter
/// whose smallest subgroup has `subgroup_min` invocations.
pub fn coop_spec(shape: CoopShape, output: DType, subgroup_min: u32) -> Specialization {
    let slots = COOP_BLOCKS.0 * COOP_BLOCKS.1;
    Specialization::new(Shader::Coop, "coop")
        .types(DType::F16, output)
        .konst("BLK_ROWS", COOP_BLOCKS.0)
        .konst("BLK_COLS", COOP_BLOCKS.1)
        .konst("SLOTS", slots)
        .coop(shape)
        .override_("WG", slots * subgroup_min.max(1))
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

    fn spec(&self, ctx: &GpuContext) -> Result<Specialization, String> {
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
                let sg = match ctx.report.subgroup_min_size {
                    0 => 32,
                    s => s,
                };
                coop_spec(shape, o, sg)
            }
        })
    }

    /// Everything that can be decided without allocating: context, features, shape limits.
    fn check(
        &self,
        ctx: &GpuContext,
        p: &MatmulProblem,
    ) -> Result<(Specialization, Layout), String> {
        p.validate().map_err(|e| e.to_string())?;
        let spec = self.spec(ctx)?;
        can_build(ctx, &spec)?;
        if let Specialization {
            coop: Some(shape), ..
        } = &spec
        {
            let t = shape.t as usize;
            if p.m % t != 0 || p.n % t != 0 || p.k % t != 0 {
                return Err(format!(
                    "the cooperative-matrix path needs m, n, k multiples of {t} (got {}x{}x{})",
                    p.m, p.n, p.k
                ));
            }
            if p.lda % 8 != 0 || p.ldb % 8 != 0 {
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
        ] {
            if elems > u32::MAX as u64 {
                return Err(format!(
                    "{what} has {elems} elements; the shaders index with u32 (at most {})",
                    u32::MAX
                ));
            }
            ctx.check_buffer(what, bytes, true)?;
        }
        ctx.check_grid(layout.grid)?;
        Ok((spec, layout))
    }
}

/// Output layout and dispatch grid of a prepared matmul.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Row stride of the output buffer (even for packed bf16 output).
    ldc_out: usize,
    out_len: usize,
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
        Layout {
            ldc_out,
            out_len: p.batch * p.m * ldc_out,
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
            params,
        }
    }

    fn supports(&self, problem: &Problem) -> Support {
        let Problem::Matmul(p) = problem else {
            return Support::No("not a matmul".into());
        };
        let ctx = match context::global() {
            Ok(c) => c,
            Err(e) => return Support::No(e),
        };
        match self.check(&ctx, p) {
            Ok(_) => Support::Yes,
            Err(e) => Support::No(e),
        }
    }

    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let ctx = context::global().map_err(KernelError::Other)?;
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
                reason,
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
            _pad: 0,
        };
        let pipeline = ctx.pipeline(&spec)?;
        let a = ctx.storage_init("A", inputs[0].as_bytes())?;
        let b = ctx.storage_init("B", inputs[1].as_bytes())?;
        let poison = Tensor::nan(self.precision.output, layout.out_len);
        let c = ctx.storage_init("C", poison.as_bytes())?;
        let u = ctx.uniform("matmul params", bytemuck::bytes_of(&params))?;
        let bind = ctx.bind_group(&pipeline, &[&a, &b, &c, &u])?;
        let run = GpuRun::new(ctx, pipeline, bind, layout.grid)?;
        Ok(PreparedMatmul {
            run,
            problem: *p,
            output: self.precision.output,
            layout,
            c,
            _inputs: [a, b],
            _params: u,
        })
    }
}

/// A matmul ready on the device.
pub struct PreparedMatmul {
    run: GpuRun,
    problem: MatmulProblem,
    output: DType,
    layout: Layout,
    c: wgpu::Buffer,
    _inputs: [wgpu::Buffer; 2],
    _params: wgpu::Buffer,
}

impl Prepared for PreparedMatmul {
    fn run(&mut self) -> Result<(), KernelError> {
        self.run.run()
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
