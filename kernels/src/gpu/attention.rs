//! GPU flash attention forward (shaders/attention.wgsl): one workgroup per (query block, head,
//! batch), K/V tiles in workgroup memory, online softmax in f32, causal block skipping, GQA.
//! FLOPs and mask follow [`AttentionProblem`] (the CPU kernel's convention).

use crate::dtype::{DType, Tensor};
use crate::gpu::context::{self, GpuContext};
use crate::gpu::matmul::tensor_from_bytes;
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{Shader, Specialization};
use crate::gpu::timing::GpuRun;
use crate::gpu::tune::ConfigSource;
use crate::kernel::{
    Backend, DeviceTiming, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support,
};
use crate::problem::{AttentionProblem, Precision};
use crate::unit::ComputeUnit;
use std::sync::Arc;

/// Query rows per workgroup (= workgroup size; one thread per row).
pub const BQ: u32 = 32;
/// Keys per workgroup-memory tile.
pub const BKV: u32 = 16;
/// Largest head_dim: q and the output row live in registers (D floats each).
pub const MAX_HEAD_DIM: usize = 256;

/// Rust twin of `AttentionParams` in shaders/attention.wgsl (8 × 4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    pub batch: u32,
    pub q_heads: u32,
    pub kv_heads: u32,
    pub q_len: u32,
    pub kv_len: u32,
    pub causal: u32,
    pub ldo: u32,
    pub scale_log2e: f32,
}

impl AttentionParams {
    /// The uniform of problem `p` with output rows `ldo` elements apart.
    pub fn new(p: &AttentionProblem, ldo: usize) -> Self {
        AttentionParams {
            batch: p.batch as u32,
            q_heads: p.q_heads as u32,
            kv_heads: p.kv_heads as u32,
            q_len: p.q_len as u32,
            kv_len: p.kv_len as u32,
            causal: p.causal as u32,
            ldo: ldo as u32,
            scale_log2e: p.scale * std::f32::consts::LOG2_E,
        }
    }
}

pub fn flash_spec(input: DType, output: DType, head_dim: usize) -> Specialization {
    Specialization::new(Shader::Attention, "flash")
        .types(input, output)
        .konst("D", head_dim as u32)
        .konst("BQ", BQ)
        .konst("BKV", BKV)
        .override_("WG", BQ)
}

/// A register-tiled flash configuration (shaders/attention_tiled.wgsl): BQ query rows × BKV
/// keys per tile on an NROW × NCOL thread grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TiledFlash {
    pub bq: u32,
    pub bkv: u32,
    pub nrow: u32,
    pub ncol: u32,
}

/// The tiled configurations in order of preference; `flash` takes the first one the adapter's
/// limits allow at the problem's head_dim (larger tiles reuse each workgroup load more), and the
/// one-row-per-thread `flash` entry (shaders/attention.wgsl) runs where none fits.
pub const TILED_FLASH: [TiledFlash; 5] = [
    TiledFlash {
        bq: 32,
        bkv: 32,
        nrow: 8,
        ncol: 8,
    },
    TiledFlash {
        bq: 16,
        bkv: 32,
        nrow: 4,
        ncol: 16,
    },
    TiledFlash {
        bq: 16,
        bkv: 16,
        nrow: 4,
        ncol: 8,
    },
    TiledFlash {
        bq: 16,
        bkv: 8,
        nrow: 4,
        ncol: 8,
    },
    TiledFlash {
        bq: 8,
        bkv: 8,
        nrow: 2,
        ncol: 8,
    },
];

impl TiledFlash {
    pub fn wg(&self) -> u32 {
        self.nrow * self.ncol
    }

    /// Workgroup memory at `head_dim`, bytes (Qs, KVs, Ss, Cs, Ls of the shader).
    pub fn workgroup_bytes(&self, head_dim: usize) -> u64 {
        let ldq = head_dim as u64 + 1;
        let (bq, bkv) = (self.bq as u64, self.bkv as u64);
        (bq * ldq + bkv * ldq + bq * (bkv + 1) + 2 * bq) * 4
    }

    /// Why this configuration cannot run at `head_dim` under `limits`, or `None`.
    pub fn illegal(&self, head_dim: usize, limits: &wgpu::Limits) -> Option<String> {
        let bytes = self.workgroup_bytes(head_dim);
        if bytes > limits.max_compute_workgroup_storage_size as u64 {
            return Some(format!(
                "{bytes} bytes of workgroup memory, above max_compute_workgroup_storage_size ({})",
                limits.max_compute_workgroup_storage_size
            ));
        }
        if self.wg() > limits.max_compute_invocations_per_workgroup
            || self.wg() > limits.max_compute_workgroup_size_x
        {
            return Some(format!(
                "{} invocations exceed the adapter's limits",
                self.wg()
            ));
        }
        None
    }

    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("bq", self.bq),
            ("bkv", self.bkv),
            ("nrow", self.nrow),
            ("ncol", self.ncol),
        ] {
            m.insert(k.into(), v.into());
        }
        m
    }

    /// From a cache entry's params; shapes the shader cannot take are refused.
    pub fn from_params(p: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let get = |k: &str| crate::gpu::tune::param_u32(p, k);
        let c = TiledFlash {
            bq: get("bq")?,
            bkv: get("bkv")?,
            nrow: get("nrow")?,
            ncol: get("ncol")?,
        };
        let ok = c.nrow > 0
            && c.ncol > 0
            && c.bq.is_multiple_of(c.nrow)
            && c.bkv.is_multiple_of(c.ncol)
            && c.bq <= c.wg()
            && (1..=256).contains(&c.bq)
            && (1..=256).contains(&c.bkv);
        if ok {
            Ok(c)
        } else {
            Err(format!(
                "{c:?}: bq a multiple of nrow, bkv of ncol, bq ≤ nrow·ncol, both 1..=256"
            ))
        }
    }

    pub fn label(&self) -> String {
        format!(
            "{}x{} tiles, {}x{} threads",
            self.bq, self.bkv, self.nrow, self.ncol
        )
    }

    /// The first preferred configuration legal here.
    pub fn choose(head_dim: usize, limits: &wgpu::Limits) -> Option<TiledFlash> {
        TILED_FLASH
            .into_iter()
            .find(|c| c.illegal(head_dim, limits).is_none())
    }
}

/// Which flash entry runs: one query row per thread (shaders/attention.wgsl) or a register tiling
/// (shaders/attention_tiled.wgsl). What `tune` chooses between, and what a cache entry holds
/// (`tiled` 0 for the row entry; an entry without `tiled` is a tiling, as caches before the row
/// entry joined the space wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashConfig {
    Rows,
    Tiled(TiledFlash),
}

impl FlashConfig {
    /// Why this entry cannot run at `head_dim` under `limits`, or `None`.
    pub fn illegal(&self, head_dim: usize, limits: &wgpu::Limits) -> Option<String> {
        match self {
            FlashConfig::Tiled(c) => c.illegal(head_dim, limits),
            FlashConfig::Rows => {
                let bytes = rows_workgroup_bytes(head_dim);
                (bytes > limits.max_compute_workgroup_storage_size as u64).then(|| {
                    format!(
                        "K/V tiles need {bytes} bytes of workgroup memory, above this GPU's \
                         max_compute_workgroup_storage_size ({})",
                        limits.max_compute_workgroup_storage_size
                    )
                })
            }
        }
    }

    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = match self {
            FlashConfig::Rows => serde_json::Map::new(),
            FlashConfig::Tiled(c) => c.params(),
        };
        m.insert(
            "tiled".into(),
            u32::from(matches!(self, FlashConfig::Tiled(_))).into(),
        );
        m
    }

    /// From a cache entry's params (see the type's documentation).
    pub fn from_params(p: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        match p.get("tiled") {
            None => TiledFlash::from_params(p).map(FlashConfig::Tiled),
            Some(_) => match crate::gpu::tune::param_u32(p, "tiled")? {
                0 => Ok(FlashConfig::Rows),
                1 => TiledFlash::from_params(p).map(FlashConfig::Tiled),
                t => Err(format!("tiled {t}: expected 0 or 1")),
            },
        }
    }

    pub fn label(&self) -> String {
        match self {
            FlashConfig::Rows => format!("one query row per thread ({BQ} rows, {BKV}-key tiles)"),
            FlashConfig::Tiled(c) => c.label(),
        }
    }

    /// The entry without a tuned one: on a software adapter the first legal tiling (the row
    /// entry's loops pass Mesa's 65535-iteration limit at moderate kv · head_dim), on a hardware
    /// GPU the row entry (on an H200 at h32/8 seq 4096 d128: 0.44 TFLOP/s against 0.16 for the
    /// best tiling tune found, results/gpu-h200.md), each falling back to the other where it
    /// cannot run.
    pub fn default_for(head_dim: usize, software: bool, limits: &wgpu::Limits) -> Option<Self> {
        let tiled = TiledFlash::choose(head_dim, limits).map(FlashConfig::Tiled);
        let rows = Some(FlashConfig::Rows).filter(|c| c.illegal(head_dim, limits).is_none());
        if software {
            tiled.or(rows)
        } else {
            rows.or(tiled)
        }
    }
}

/// Workgroup memory of the row entry at `head_dim`: K and V tiles of BKV keys in f32.
fn rows_workgroup_bytes(head_dim: usize) -> u64 {
    2 * BKV as u64 * head_dim as u64 * 4
}

/// The broken-on-purpose variants of the tiled entry the mutation tests run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashMutant {
    None,
    /// Each row sees one key past its causal end.
    MaskOffByOne,
    /// Each GQA group reads the next KV head.
    WrongKvHead,
    /// O is not rescaled when a row's running max grows.
    NoRescale,
}

impl FlashMutant {
    fn code(self) -> u32 {
        match self {
            FlashMutant::None => 0,
            FlashMutant::MaskOffByOne => 1,
            FlashMutant::WrongKvHead => 2,
            FlashMutant::NoRescale => 3,
        }
    }
}

pub fn flash_tiled_spec(
    input: DType,
    output: DType,
    head_dim: usize,
    c: TiledFlash,
    mutant: FlashMutant,
) -> Specialization {
    let d = head_dim as u32;
    Specialization::new(Shader::AttentionTiled, "flash_tiled")
        .types(input, output)
        .konst("D", d)
        .konst("BQ", c.bq)
        .konst("BKV", c.bkv)
        .konst("NROW", c.nrow)
        .konst("NCOL", c.ncol)
        .konst("TR", c.bq / c.nrow)
        .konst("TK", c.bkv / c.ncol)
        .konst("TD", d.div_ceil(c.ncol))
        .konst("LDQ", d + 1)
        .konst("LDS", c.bkv + 1)
        .konst("MUTANT", mutant.code())
        .override_("WG", c.wg())
}

/// Flash attention at one precision (same-type output, f32 accumulation).
pub struct GpuFlashAttention {
    pub precision: Precision,
    /// Run the one-row-per-thread `flash` entry wherever it fits (tests).
    pub rows_only: bool,
    /// Run the first legal tiling of [`TILED_FLASH`] wherever one fits (tests, mutants).
    pub tiled_only: bool,
    pub mutant: FlashMutant,
    /// A fixed entry (what `tune` times); `None`: the tune cache's, else
    /// [`FlashConfig::default_for`] the adapter.
    pub config: Option<FlashConfig>,
}

impl GpuFlashAttention {
    pub fn new(dtype: DType) -> Self {
        GpuFlashAttention {
            precision: Precision::same(dtype),
            rows_only: false,
            tiled_only: false,
            mutant: FlashMutant::None,
            config: None,
        }
    }

    /// This kernel with a fixed entry.
    pub fn with_config(mut self, c: FlashConfig) -> Self {
        self.config = Some(c);
        self
    }

    /// A broken tiled variant for the mutation tests.
    pub fn mutant(dtype: DType, mutant: FlashMutant) -> Self {
        GpuFlashAttention {
            mutant,
            tiled_only: true,
            ..GpuFlashAttention::new(dtype)
        }
    }

    /// This kernel with the one-row-per-thread entry wherever it runs (tests of that entry).
    pub fn rows_only(mut self) -> Self {
        self.rows_only = true;
        self
    }

    /// This kernel with the first legal tiling wherever one fits (tests of the tiled entry).
    pub fn tiled_only(mut self) -> Self {
        self.tiled_only = true;
        self
    }

    pub fn all() -> Vec<GpuFlashAttention> {
        DType::ALL.into_iter().map(GpuFlashAttention::new).collect()
    }

    /// The specializations the shader validation compiles: head_dim is a compile-time constant,
    /// checked at the edges (1, 17: not a multiple of anything) and the common sizes.
    pub fn specializations(&self) -> Vec<Specialization> {
        let (i, o) = (self.precision.input, self.precision.output);
        let mut v: Vec<Specialization> = [1, 17, 64, 128, 256]
            .into_iter()
            .map(|hd| flash_spec(i, o, hd))
            .collect();
        // Every tiled configuration of the tuning space at the edges and the head dims.
        for hd in [1, 17, 64, 80, 96, 128, 256] {
            for c in crate::gpu::tune::flash_space() {
                if let FlashConfig::Tiled(c) = c {
                    v.push(flash_tiled_spec(i, o, hd, c, self.mutant));
                }
            }
        }
        v
    }

    fn ldo(&self, p: &AttentionProblem) -> usize {
        out_ldo(self.precision.output, p.head_dim)
    }

    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        ctx: &GpuContext,
        p: &AttentionProblem,
    ) -> Result<(Specialization, Option<ConfigSource>), String> {
        p.validate().map_err(|e| e.to_string())?;
        if p.head_dim > MAX_HEAD_DIM {
            return Err(format!(
                "head_dim {} above {MAX_HEAD_DIM} (the flash kernel keeps a row in registers)",
                p.head_dim
            ));
        }
        let (i, o) = (self.precision.input, self.precision.output);
        let chosen = if self.rows_only {
            (FlashConfig::Rows, None)
        } else if self.tiled_only {
            let c = TiledFlash::choose(p.head_dim, &ctx.limits)
                .ok_or("no tiling of the tiled entry fits this adapter's limits")?;
            (FlashConfig::Tiled(c), Some(ConfigSource::Explicit))
        } else if let Some(c) = self.config {
            (c, Some(ConfigSource::Explicit))
        } else {
            let (c, source) = crate::gpu::tune::choose_flash(&self.identity().id(), p, ctx)
                .ok_or("neither flash entry fits this adapter's workgroup memory")?;
            (c, Some(source))
        };
        let (config, source) = chosen;
        if let Some(why) = config.illegal(p.head_dim, &ctx.limits) {
            return Err(format!("configuration {}: {why}", config.label()));
        }
        let spec = match config {
            FlashConfig::Tiled(c) => flash_tiled_spec(i, o, p.head_dim, c, self.mutant),
            FlashConfig::Rows => flash_spec(i, o, p.head_dim),
        };
        can_build(ctx, &spec).map_err(|e| e.to_string())?;
        let in_b = self.precision.input.size_bytes() as u64;
        let out_len = (p.batch * p.q_heads * p.q_len * self.ldo(p)) as u64;
        ctx.check_buffers(&[
            ("Q", p.q_len_elems() as u64, p.q_len_elems() as u64 * in_b),
            ("K", p.kv_len_elems() as u64, p.kv_len_elems() as u64 * in_b),
            (
                "O",
                out_len,
                out_len * self.precision.output.size_bytes() as u64,
            ),
        ])?;
        ctx.check_grid(Self::grid(p, &spec))
            .map_err(|e| e.to_string())?;
        Ok((spec, source))
    }

    fn grid(p: &AttentionProblem, spec: &Specialization) -> [u32; 3] {
        let bq = spec.konst_value("BQ").max(1) as usize;
        [
            p.q_len.div_ceil(bq).min(u32::MAX as usize) as u32,
            p.q_heads.min(u32::MAX as usize) as u32,
            p.batch.min(u32::MAX as usize) as u32,
        ]
    }

    /// Prepare on a given context (tests); the registry path uses the global one.
    pub fn prepare_on(
        &self,
        ctx: Arc<GpuContext>,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<PreparedAttention, KernelError> {
        let id = self.identity().id();
        let Problem::Attention(p) = problem else {
            return Err(KernelError::Other(format!(
                "{id}: not an attention problem"
            )));
        };
        let (spec, source) = self
            .check(&ctx, p)
            .map_err(|reason| KernelError::Unsupported {
                kernel: id.clone(),
                reason: reason.to_string(),
            })?;
        check_qkv(&id, self.precision.input, p, inputs)?;
        let ldo = self.ldo(p);
        let out_len = p.batch * p.q_heads * p.q_len * ldo;
        let params = AttentionParams::new(p, ldo);
        let pipeline = ctx.pipeline(&spec)?;
        let q = ctx.storage_init("Q", inputs[0].as_bytes())?;
        let k = ctx.storage_init("K", inputs[1].as_bytes())?;
        let v = ctx.storage_init("V", inputs[2].as_bytes())?;
        let o = ctx.storage_init("O", Tensor::nan(self.precision.output, out_len).as_bytes())?;
        let u = ctx.uniform("attention params", bytemuck::bytes_of(&params))?;
        let bind = ctx.bind_group(&pipeline, &[&q, &k, &v, &o, &u])?;
        let run = GpuRun::new(ctx, pipeline, bind, Self::grid(p, &spec))?;
        let mut chosen = spec.params();
        // Which entry ran: 1 the register-tiled one, 0 one query row per thread.
        chosen.insert(
            "tiled".into(),
            u32::from(spec.shader == Shader::AttentionTiled).into(),
        );
        for k in ["ldq", "lds", "mutant"] {
            chosen.remove(k);
        }
        if let Some(source) = source {
            chosen.insert("config_source".into(), source.name().into());
        }
        Ok(PreparedAttention {
            chosen,
            run,
            problem: *p,
            output: self.precision.output,
            ldo,
            out_len,
            o,
            _buffers: vec![q, k, v, u],
        })
    }
}

impl Kernel for GpuFlashAttention {
    fn identity(&self) -> KernelIdentity {
        // The tiles depend on the adapter and head_dim: the row's params get them when prepared
        // (`bq`, `bkv`, `nrow`, `ncol`, `tiled`).
        let params = serde_json::Map::new();
        let family = match self.mutant {
            FlashMutant::None => "attention.gpu.flash",
            FlashMutant::MaskOffByOne => "attention.gpu.flash-mutant-mask",
            FlashMutant::WrongKvHead => "attention.gpu.flash-mutant-kvhead",
            FlashMutant::NoRescale => "attention.gpu.flash-mutant-rescale",
        };
        KernelIdentity {
            op: Op::Attention,
            backend: Backend::Gpu,
            family: family.into(),
            variant: "wgsl".into(),
            precision: self.precision,
            unit: ComputeUnit::GpuSimt,
            params,
        }
    }

    fn supports(&self, problem: &Problem) -> Support {
        attention_support(problem, |ctx, p| self.check(ctx, p).map(|_| ()))
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
}

/// Whether a GPU attention kernel runs `problem`: the problem's own faults first (they need no
/// GPU), then the device, then the kernel's `check`.
pub(crate) fn attention_support(
    problem: &Problem,
    check: impl Fn(&GpuContext, &AttentionProblem) -> Result<(), String>,
) -> Support {
    let Problem::Attention(p) = problem else {
        return Support::no("not an attention problem");
    };
    if let Err(e) = p.validate() {
        return Support::no(e.to_string());
    }
    let ctx = match context::global() {
        Ok(c) => c,
        Err(e) => return Support::no(e),
    };
    match check(&ctx, p) {
        Ok(()) => Support::Yes,
        Err(e) => Support::no(e),
    }
}

/// Attention ready on the device (flash and decode): its passes, its output buffer (rows of
/// `ldo`), the buffers it keeps alive.
pub struct PreparedAttention {
    /// The specialization's values (recorded as the row's chosen params).
    pub(crate) chosen: serde_json::Map<String, serde_json::Value>,
    pub(crate) run: GpuRun,
    pub(crate) problem: AttentionProblem,
    pub(crate) output: DType,
    pub(crate) ldo: usize,
    pub(crate) out_len: usize,
    pub(crate) o: wgpu::Buffer,
    pub(crate) _buffers: Vec<wgpu::Buffer>,
}

impl Prepared for PreparedAttention {
    fn run(&mut self) -> Result<(), KernelError> {
        self.run.run()
    }

    fn chosen_params(&self) -> serde_json::Map<String, serde_json::Value> {
        self.chosen.clone()
    }

    fn poison(&mut self) -> Result<(), KernelError> {
        let nan = Tensor::nan(self.output, self.out_len);
        self.run.ctx.write(&self.o, nan.as_bytes())
    }

    fn output(&mut self) -> Result<Tensor, KernelError> {
        read_rows(
            &self.run.ctx,
            &self.o,
            self.output,
            self.out_len,
            self.ldo,
            self.problem.head_dim,
        )
    }

    fn time_device(&mut self, iters: u64) -> Option<Result<DeviceTiming, KernelError>> {
        Some(self.run.time(iters))
    }
}

/// Check an attention kernel's inputs: Q, K, V of the kernel's input type and long enough.
pub(crate) fn check_qkv(
    id: &str,
    input: DType,
    p: &AttentionProblem,
    inputs: &[Arc<Tensor>],
) -> Result<(), KernelError> {
    let want = [p.q_len_elems(), p.kv_len_elems(), p.kv_len_elems()];
    if inputs.len() != 3 {
        return Err(KernelError::Other(format!(
            "{id}: expects 3 inputs (Q, K, V)"
        )));
    }
    for (index, (t, &len)) in inputs.iter().zip(&want).enumerate() {
        if t.dtype() != input {
            return Err(KernelError::InputDType {
                kernel: id.to_string(),
                index,
                actual: t.dtype(),
                expected: input,
            });
        }
        if t.len() < len {
            return Err(KernelError::Other(format!(
                "{id}: input {index} has {} elements, the problem needs {len}",
                t.len()
            )));
        }
    }
    Ok(())
}

/// Read an attention output of `out_len` elements in rows of `ldo` (padded for packed bf16),
/// unpadded to rows of `head_dim`.
pub(crate) fn read_rows(
    ctx: &GpuContext,
    o: &wgpu::Buffer,
    output: DType,
    out_len: usize,
    ldo: usize,
    head_dim: usize,
) -> Result<Tensor, KernelError> {
    let size = output.size_bytes();
    let bytes = ctx.read(o, (out_len * size) as u64)?;
    if ldo == head_dim {
        return Ok(tensor_from_bytes(output, &bytes));
    }
    let rows = out_len / ldo;
    let mut out = vec![0u8; rows * head_dim * size];
    for r in 0..rows {
        out[r * head_dim * size..(r + 1) * head_dim * size]
            .copy_from_slice(&bytes[r * ldo * size..(r * ldo + head_dim) * size]);
    }
    Ok(tensor_from_bytes(output, &out))
}

/// Row stride of an attention output: head_dim, rounded up to even for packed bf16.
pub(crate) fn out_ldo(output: DType, head_dim: usize) -> usize {
    if output == DType::BF16 {
        head_dim.div_ceil(2) * 2
    } else {
        head_dim
    }
}
