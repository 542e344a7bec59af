//! GPU attention decode (shaders/decode.wgsl): `q_len = 1` against a long KV cache, the KV
//! sequence split across workgroups (flash-decoding), every query head of a GQA group served by
//! one read of its KV head's chunk, the chunks' partial softmax results merged by a second pass.
//! Memory-bound by design: one workgroup per (chunk, KV head, batch), so the grid grows with the
//! KV length, not the head count. FLOPs and mask follow [`AttentionProblem`].

use crate::dtype::{DType, Tensor};
use crate::gpu::attention::{attention_support, check_qkv, out_ldo, PreparedAttention};
use crate::gpu::context::{self, GpuContext};
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{Shader, Specialization};
use crate::gpu::timing::GpuRun;
use crate::kernel::{Backend, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support};
use crate::problem::{AttentionProblem, Precision};
use crate::unit::ComputeUnit;
use std::sync::Arc;

use crate::gpu::tune::ConfigSource;
pub use crate::gpu::tune::{DecodeConfig, DECODE_DEFAULT};
/// The largest GQA group (query heads per KV head): a thread keeps GROUP partial sums.
pub const MAX_GROUP: usize = 16;
/// Largest head_dim.
pub const MAX_HEAD_DIM: usize = 256;

/// Rust twin of `DecodeParams` in shaders/decode.wgsl (8 × 4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DecodeParams {
    pub batch: u32,
    pub q_heads: u32,
    pub kv_heads: u32,
    pub kv_len: u32,
    pub chunk: u32,
    pub splits: u32,
    pub ldo: u32,
    pub scale_log2e: f32,
}

/// The broken-on-purpose variants the mutation tests run (`test-kernels` builds only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeMutant {
    None,
    /// Each group reads the next KV head's keys and values.
    WrongKvHead,
    /// The combine pass adds the chunks' sums without rescaling them to the common maximum.
    NoRescale,
}

impl DecodeMutant {
    fn code(self) -> u32 {
        match self {
            DecodeMutant::None => 0,
            DecodeMutant::WrongKvHead => 1,
            DecodeMutant::NoRescale => 2,
        }
    }
}

pub fn decode_spec(
    input: DType,
    output: DType,
    head_dim: usize,
    group: usize,
    entry: &'static str,
    mutant: DecodeMutant,
    cfg: DecodeConfig,
) -> Specialization {
    Specialization::new(Shader::Decode, entry)
        .types(input, output)
        .konst("D", head_dim as u32)
        .konst("GROUP", group as u32)
        .konst("CHUNK_MAX", cfg.chunk)
        .konst("MUTANT", mutant.code())
        .override_("WG", cfg.wg)
}

/// How `decode_split_vec` (shaders/decode_vec.wgsl) lays a problem over its lanes: 16-byte
/// vectors of VE elements, RV per row, TPK lanes per key in the score pass (VPT vectors each),
/// UNROLL keys in flight per lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VecShape {
    pub ve: u32,
    pub rv: u32,
    pub tpk: u32,
    pub vpt: u32,
    pub unroll: u32,
}

impl VecShape {
    /// The shape for `input` at `head_dim`, a GQA group of `group`, on an adapter whose
    /// subgroups are `sg_min..=sg_max` lanes, with `wg` invocations; or why the vector pass
    /// cannot run it (then `decode_split` does).
    pub fn new(
        input: DType,
        head_dim: usize,
        group: usize,
        sg_min: u32,
        sg_max: u32,
        wg: u32,
    ) -> Result<VecShape, String> {
        let ve = 16 / input.size_bytes() as u32;
        let d = head_dim as u32;
        if !d.is_multiple_of(ve) {
            return Err(format!(
                "head_dim {d} is not a multiple of {ve} (rows of whole 16-byte vectors)"
            ));
        }
        if sg_min == 0 || !sg_min.is_power_of_two() || !sg_max.is_power_of_two() {
            return Err(format!(
                "subgroup size {sg_min}..{sg_max} unknown or not a power of two"
            ));
        }
        if !wg.is_multiple_of(sg_max) {
            return Err(format!(
                "workgroup of {wg} is not a multiple of the subgroup size {sg_max}"
            ));
        }
        let rv = d / ve;
        if wg < rv {
            return Err(format!(
                "workgroup of {wg} is narrower than a row of {rv} vectors"
            ));
        }
        let tpk = rv.next_power_of_two().min(sg_min);
        Ok(VecShape {
            ve,
            rv,
            tpk,
            vpt: rv.div_ceil(tpk),
            unroll: (16 / group as u32).clamp(1, 4),
        })
    }

    /// Workgroup memory of the value pass's reduction, in floats.
    pub fn red(&self, head_dim: usize, wg: u32) -> u32 {
        (wg / self.rv) * head_dim as u32
    }
}

/// The specialization of `decode_split_vec`.
pub fn decode_vec_spec(
    input: DType,
    output: DType,
    head_dim: usize,
    group: usize,
    mutant: DecodeMutant,
    cfg: DecodeConfig,
    v: VecShape,
) -> Specialization {
    let kind = match input {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::BF16 => 2,
    };
    Specialization::new(Shader::DecodeVec, "decode_split_vec")
        .types(input, output)
        .konst("D", head_dim as u32)
        .konst("GROUP", group as u32)
        .konst("CHUNK_MAX", cfg.chunk)
        .konst("MUTANT", mutant.code())
        .konst("VE", v.ve)
        .konst("RV", v.rv)
        .konst("TPK", v.tpk)
        .konst("VPT", v.vpt)
        .konst("UNROLL", v.unroll)
        .konst("IN_KIND", kind)
        .konst("RED", v.red(head_dim, cfg.wg))
        .override_("WG", cfg.wg)
        .subgroups(true)
}

/// Split-KV decode at one precision (same-type output, f32 accumulation).
pub struct GpuDecodeAttention {
    pub precision: Precision,
    pub mutant: DecodeMutant,
    /// A fixed configuration (what `tune` times); `None`: the tune cache's, else the default.
    pub config: Option<DecodeConfig>,
    /// Run the scalar pass 1 (`decode_split`) even where the vector pass could (tests).
    pub scalar_only: bool,
}

impl GpuDecodeAttention {
    pub fn new(dtype: DType) -> Self {
        GpuDecodeAttention {
            precision: Precision::same(dtype),
            mutant: DecodeMutant::None,
            config: None,
            scalar_only: false,
        }
    }

    /// This kernel with a fixed configuration.
    pub fn with_config(mut self, c: DecodeConfig) -> Self {
        self.config = Some(c);
        self
    }

    /// This kernel with the scalar pass 1 wherever it runs (tests of the fallback path).
    pub fn scalar_only(mut self) -> Self {
        self.scalar_only = true;
        self
    }

    /// A broken variant for the mutation tests.
    pub fn mutant(dtype: DType, mutant: DecodeMutant) -> Self {
        GpuDecodeAttention {
            precision: Precision::same(dtype),
            mutant,
            config: None,
            scalar_only: false,
        }
    }

    pub fn all() -> Vec<GpuDecodeAttention> {
        DType::ALL
            .into_iter()
            .map(GpuDecodeAttention::new)
            .collect()
    }

    /// The specializations the shader validation compiles: head_dim at the edges and the common
    /// sizes, GQA groups 1, 4, 8 and the largest, both passes, at the default configuration;
    /// every legal configuration of the tuning space at head_dim 128, group 8.
    pub fn specializations(&self) -> Vec<Specialization> {
        let (i, o) = (self.precision.input, self.precision.output);
        let lim = crate::gpu::tune::validation_limits();
        let mut v = Vec::new();
        // The vector pass at every head_dim it takes, groups 1/4/8/16, subgroups of 8, 32, 64
        // lanes (lavapipe, NVIDIA, AMD wave64), the default configuration and the tuning space.
        for sg in [8, 32, 64] {
            for hd in [64, 80, 96, 128, 256] {
                for group in [1, 4, 8, MAX_GROUP] {
                    let cfg = DecodeConfig {
                        wg: DECODE_DEFAULT.wg.max(sg),
                        ..DECODE_DEFAULT
                    };
                    if let Ok(shape) = VecShape::new(i, hd, group, sg, sg, cfg.wg) {
                        v.push(decode_vec_spec(i, o, hd, group, self.mutant, cfg, shape));
                    }
                }
            }
        }
        for c in crate::gpu::tune::decode_space() {
            if c.illegal(8, 128, &lim).is_none() {
                if let Ok(shape) = VecShape::new(i, 128, 8, 32, 32, c.wg) {
                    v.push(decode_vec_spec(i, o, 128, 8, self.mutant, c, shape));
                }
            }
        }
        for entry in ["decode_split", "decode_combine"] {
            for hd in [1, 17, 64, 80, 96, 128, 256] {
                for group in [1, 4, 8, MAX_GROUP] {
                    v.push(decode_spec(
                        i,
                        o,
                        hd,
                        group,
                        entry,
                        self.mutant,
                        DECODE_DEFAULT,
                    ));
                }
            }
            for c in crate::gpu::tune::decode_space() {
                if c.illegal(8, 128, &lim).is_none() {
                    v.push(decode_spec(i, o, 128, 8, entry, self.mutant, c));
                }
            }
        }
        v
    }

    /// The configuration for `p` on `ctx` and where it came from.
    fn config_for(&self, ctx: &GpuContext, p: &AttentionProblem) -> (DecodeConfig, ConfigSource) {
        match self.config {
            Some(c) => (c, ConfigSource::Explicit),
            None => crate::gpu::tune::choose_decode(
                &self.identity().id(),
                p,
                self.precision.input.size_bytes(),
                ctx,
            ),
        }
    }

    fn ldo(&self, p: &AttentionProblem) -> usize {
        out_ldo(self.precision.output, p.head_dim)
    }

    /// Keys per split and the number of splits for a KV length, splits of at most `chunk` keys.
    pub fn splits(kv_len: usize, chunk: u32) -> (u32, u32) {
        let chunk = (kv_len as u32).clamp(1, chunk);
        (chunk, (kv_len as u32).div_ceil(chunk))
    }

    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        ctx: &GpuContext,
        p: &AttentionProblem,
    ) -> Result<([Specialization; 2], DecodeConfig, ConfigSource), String> {
        p.validate().map_err(|e| e.to_string())?;
        if p.q_len != 1 {
            return Err(format!(
                "the decode kernel takes q_len = 1 (got {}; the flash kernel takes the rest)",
                p.q_len
            ));
        }
        if p.head_dim > MAX_HEAD_DIM {
            return Err(format!("head_dim {} above {MAX_HEAD_DIM}", p.head_dim));
        }
        let group = p.q_heads / p.kv_heads;
        if group > MAX_GROUP {
            return Err(format!(
                "GQA group of {group} query heads per KV head, above {MAX_GROUP}"
            ));
        }
        let (i, o) = (self.precision.input, self.precision.output);
        let (cfg, source) = self.config_for(ctx, p);
        if let Some(why) = cfg.illegal(group, p.head_dim, &ctx.limits) {
            return Err(format!("configuration {}: {why}", cfg.label()));
        }
        let split = match self.vec_shape(ctx, p, cfg) {
            Ok(shape) => decode_vec_spec(i, o, p.head_dim, group, self.mutant, cfg, shape),
            Err(_) => decode_spec(i, o, p.head_dim, group, "decode_split", self.mutant, cfg),
        };
        let specs = [
            split,
            decode_spec(i, o, p.head_dim, group, "decode_combine", self.mutant, cfg),
        ];
        for s in &specs {
            can_build(ctx, s).map_err(|e| e.to_string())?;
        }
        let (_, splits) = Self::splits(p.kv_len, cfg.chunk);
        let in_b = self.precision.input.size_bytes() as u64;
        let part = (p.batch * p.q_heads) as u64 * splits as u64 * (p.head_dim as u64 + 2);
        let out_len = (p.batch * p.q_heads * self.ldo(p)) as u64;
        ctx.check_buffers(&[
            ("Q", p.q_len_elems() as u64, p.q_len_elems() as u64 * in_b),
            ("K", p.kv_len_elems() as u64, p.kv_len_elems() as u64 * in_b),
            ("partials", part, part * 4),
            (
                "O",
                out_len,
                out_len * self.precision.output.size_bytes() as u64,
            ),
        ])?;
        for g in [self.grid_split(p, cfg), self.grid_combine(p)] {
            ctx.check_grid(g).map_err(|e| e.to_string())?;
        }
        Ok((specs, cfg, source))
    }

    /// The vector pass's shape here, or why `decode_split` runs instead (no subgroups on the
    /// adapter, a head_dim that is not whole 16-byte vectors, a workgroup the subgroups do not
    /// tile, a configuration that asks for the scalar pass, or `scalar_only`).
    fn vec_shape(
        &self,
        ctx: &GpuContext,
        p: &AttentionProblem,
        cfg: DecodeConfig,
    ) -> Result<VecShape, String> {
        if self.scalar_only || !cfg.vec {
            return Err("scalar pass asked for".into());
        }
        if !ctx.has(wgpu::Features::SUBGROUP) {
            return Err(format!("{} has no SUBGROUP", ctx.report.name));
        }
        if !ctx
            .adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32)
        {
            return Err(format!(
                "{} lacks SHADER_F16_IN_F32 (unpack2x16float)",
                ctx.report.name
            ));
        }
        VecShape::new(
            self.precision.input,
            p.head_dim,
            p.q_heads / p.kv_heads,
            ctx.report.subgroup_min_size,
            ctx.report.subgroup_max_size,
            cfg.wg,
        )
    }

    fn grid_split(&self, p: &AttentionProblem, cfg: DecodeConfig) -> [u32; 3] {
        [
            Self::splits(p.kv_len, cfg.chunk).1,
            p.kv_heads as u32,
            p.batch as u32,
        ]
    }

    fn grid_combine(&self, p: &AttentionProblem) -> [u32; 3] {
        [p.q_heads as u32, p.batch as u32, 1]
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
        let ([split_spec, combine_spec], cfg, source) =
            self.check(&ctx, p)
                .map_err(|reason| KernelError::Unsupported {
                    kernel: id.clone(),
                    reason,
                })?;
        check_qkv(&id, self.precision.input, p, inputs)?;
        let ldo = self.ldo(p);
        let out_len = p.batch * p.q_heads * ldo;
        let (chunk, splits) = Self::splits(p.kv_len, cfg.chunk);
        let params = DecodeParams {
            batch: p.batch as u32,
            q_heads: p.q_heads as u32,
            kv_heads: p.kv_heads as u32,
            kv_len: p.kv_len as u32,
            chunk,
            splits,
            ldo: ldo as u32,
            scale_log2e: p.scale * std::f32::consts::LOG2_E,
        };
        let split = ctx.pipeline(&split_spec)?;
        let combine = ctx.pipeline(&combine_spec)?;
        let q = ctx.storage_init("Q", inputs[0].as_bytes())?;
        let k = ctx.storage_init("K", inputs[1].as_bytes())?;
        let v = ctx.storage_init("V", inputs[2].as_bytes())?;
        let part_len = p.batch * p.q_heads * splits as usize * (p.head_dim + 2);
        let part = ctx.storage_init("partials", Tensor::nan(DType::F32, part_len).as_bytes())?;
        let o = ctx.storage_init("O", Tensor::nan(self.precision.output, out_len).as_bytes())?;
        let u = ctx.uniform("decode params", bytemuck::bytes_of(&params))?;
        let (kb, vb) = match split_spec.shader {
            Shader::DecodeVec => (6, 7),
            _ => (1, 2),
        };
        let bind1 =
            ctx.bind_group_at(&split, &[(0, &q), (kb, &k), (vb, &v), (3, &part), (4, &u)])?;
        let bind2 = ctx.bind_group_at(&combine, &[(3, &part), (4, &u), (5, &o)])?;
        let run = GpuRun::new(ctx, split, bind1, self.grid_split(p, cfg))?.then(
            combine,
            bind2,
            self.grid_combine(p),
        )?;
        let mut chosen = split_spec.params();
        chosen.insert("kv_splits".into(), splits.into());
        chosen.insert("keys_per_split".into(), chunk.into());
        chosen.remove("mutant");
        chosen.remove("in_kind");
        chosen.remove("red");
        // Which pass 1 ran: 1 the 16-byte vector pass with subgroup reductions, 0 the scalar one.
        chosen.insert(
            "vec".into(),
            u32::from(split_spec.shader == Shader::DecodeVec).into(),
        );
        chosen.insert("config_source".into(), source.name().into());
        Ok(PreparedAttention {
            chosen,
            run,
            problem: *p,
            output: self.precision.output,
            ldo,
            out_len,
            o,
            _buffers: vec![q, k, v, part, u],
        })
    }
}

impl Kernel for GpuDecodeAttention {
    fn identity(&self) -> KernelIdentity {
        // The configuration depends on the adapter and the KV length: the row's params get it
        // when prepared (`chunk_max`, `wg`, `kv_splits`, `config_source`).
        let params = self.config.map(|c| c.params()).unwrap_or_default();
        let family = match self.mutant {
            DecodeMutant::None => "attention.gpu.decode",
            DecodeMutant::WrongKvHead => "attention.gpu.decode-mutant-kvhead",
            DecodeMutant::NoRescale => "attention.gpu.decode-mutant-rescale",
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
        // A prefill shape is refused before the GPU is opened.
        if let Problem::Attention(p) = problem {
            if p.q_len != 1 && p.validate().is_ok() {
                return Support::no(format!(
                    "the decode kernel takes q_len = 1 (got {})",
                    p.q_len
                ));
            }
        }
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
