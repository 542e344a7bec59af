//! GPU flash attention with cooperative matrices (shaders/flash_coop.wgsl): f16, S = Q·Kᵀ and
//! O += P·V on the tensor cores with f32 accumulation, the online softmax on the S tile in
//! workgroup memory. Cooperative matrices have no element access, so S, P and O go through
//! workgroup memory between the products — the round trip that read stale values on an H200
//! under naga's barriers. The module is built from patched SPIR-V where the adapter takes
//! passthrough modules ([`crate::gpu::spirv`]), and the kernel runs only after [`self_check`]
//! verified a small problem on the device (once per adapter and build); elsewhere it is
//! `unsupported`, never timed. bf16 has no cooperative type in wgpu: the SIMT kernels serve it.

use crate::dtype::{DType, Tensor};
use crate::gpu::attention::{
    attention_support, check_qkv, out_ldo, AttentionParams, PreparedAttention,
};
use crate::gpu::context::{self, GpuContext};
use crate::gpu::matmul::{coop_convention, coop_shape, CoopConvention, COOP_TILES};
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{CoopShape, Shader, Specialization};
use crate::gpu::timing::GpuRun;
use crate::kernel::{Backend, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support};
use crate::problem::{AttentionProblem, Precision};
use crate::unit::ComputeUnit;
use std::sync::Arc;

/// Largest head_dim (the O tile of a subgroup's rows lives in workgroup memory).
pub const MAX_HEAD_DIM: usize = 256;

/// A configuration: NSG subgroups per workgroup (T query rows each), BKV keys per tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopFlash {
    pub nsg: u32,
    pub bkv: u32,
}

/// The configurations in order of preference (more rows per workgroup share each K/V tile in
/// the caches; longer key tiles mean fewer barriers); the first whose workgroup memory fits runs.
pub const COOP_FLASH: [CoopFlash; 4] = [
    CoopFlash { nsg: 4, bkv: 32 },
    CoopFlash { nsg: 2, bkv: 64 },
    CoopFlash { nsg: 2, bkv: 32 },
    CoopFlash { nsg: 1, bkv: 32 },
];

impl CoopFlash {
    /// Padded row lengths of the S (f32), P (f16) and O (f32) tiles: 16 bytes of padding each, so
    /// every cooperative load and store starts on 16 bytes.
    fn strides(&self, head_dim: usize) -> (u32, u32, u32) {
        (self.bkv + 4, self.bkv + 8, head_dim as u32 + 4)
    }

    /// Workgroup memory at tile edge `t` and `head_dim`, bytes.
    pub fn workgroup_bytes(&self, t: u32, head_dim: usize) -> u64 {
        let (lds, ldp, ldo) = self.strides(head_dim);
        let rows = (self.nsg * t) as u64;
        rows * (lds as u64 * 4 + ldp as u64 * 2 + ldo as u64 * 4 + 12)
    }

    /// The first configuration whose workgroup memory and invocations fit here.
    pub fn choose(t: u32, sg: u32, head_dim: usize, limits: &wgpu::Limits) -> Option<CoopFlash> {
        COOP_FLASH.into_iter().find(|c| {
            c.bkv.is_multiple_of(t)
                && c.workgroup_bytes(t, head_dim)
                    <= limits.max_compute_workgroup_storage_size as u64
                && c.nsg * sg <= limits.max_compute_invocations_per_workgroup
                && c.nsg * sg <= limits.max_compute_workgroup_size_x
        })
    }
}

/// The specialization for tile configuration `shape`, convention `conv`, `head_dim`, a fixed
/// subgroup of `sg` lanes, built from patched SPIR-V when `patched`.
pub fn flash_coop_spec(
    shape: CoopShape,
    conv: CoopConvention,
    c: CoopFlash,
    head_dim: usize,
    sg: u32,
    patched: bool,
) -> Specialization {
    let (lds, ldp, ldo) = c.strides(head_dim);
    Specialization::new(Shader::FlashCoop, "flash_coop")
        .types(DType::F16, DType::F16)
        .konst("D", head_dim as u32)
        .konst("NSG", c.nsg)
        .konst("BKV", c.bkv)
        .konst("LDSS", lds)
        .konst("LDP", ldp)
        .konst("LDO", ldo)
        .flag("A_LOAD_T", conv.a_t)
        .flag("B_LOAD_T", conv.b_t)
        .flag("C_STORE_T", conv.c_t)
        .coop(shape)
        .override_("WG", c.nsg * sg)
        .patched_spirv(patched)
}

/// Flash attention on cooperative matrices, f16 in and out, f32 accumulation.
pub struct GpuCoopFlashAttention {
    pub precision: Precision,
}

impl Default for GpuCoopFlashAttention {
    fn default() -> Self {
        GpuCoopFlashAttention {
            precision: Precision::same(DType::F16),
        }
    }
}

impl GpuCoopFlashAttention {
    /// The specializations the CPU-side naga validation compiles: both tile edges, subgroups of
    /// 32 and 64 lanes, every convention at head_dim 64, and every configuration at the issue's
    /// head dims under the convention NVIDIA's driver takes (all `T`), plain and patched.
    pub fn specializations(&self) -> Vec<Specialization> {
        let lim = crate::gpu::tune::validation_limits();
        let mut v = Vec::new();
        for t in COOP_TILES {
            let shape = CoopShape { t, acc: DType::F32 };
            for sg in [32, 64] {
                for conv in CoopConvention::ALL {
                    v.push(flash_coop_spec(shape, conv, COOP_FLASH[0], 64, sg, false));
                }
                for hd in [64usize, 80, 96, 128, 256] {
                    if !hd.is_multiple_of(t as usize) {
                        continue;
                    }
                    for c in COOP_FLASH {
                        if c.workgroup_bytes(t, hd) <= lim.max_compute_workgroup_storage_size as u64
                        {
                            for patched in [false, true] {
                                v.push(flash_coop_spec(
                                    shape,
                                    CoopConvention::ALL[0],
                                    c,
                                    hd,
                                    sg,
                                    patched,
                                ));
                            }
                        }
                    }
                }
            }
        }
        v
    }

    /// Everything but the device self-check: the specialization for `p` here, or why not.
    fn plan(&self, ctx: &Arc<GpuContext>, p: &AttentionProblem) -> Result<Specialization, String> {
        p.validate().map_err(|e| e.to_string())?;
        let shape = coop_shape(ctx).ok_or_else(|| {
            format!(
                "{} reports no cooperative-matrix configuration 8x8x8 or 16x16x16 f16->f32",
                ctx.report.name
            )
        })?;
        let t = shape.t as usize;
        if !p.head_dim.is_multiple_of(t) || p.head_dim > MAX_HEAD_DIM {
            return Err(format!(
                "head_dim {} is not a multiple of the cooperative tile {t} up to {MAX_HEAD_DIM}",
                p.head_dim
            ));
        }
        if !p.q_len.is_multiple_of(t) || !p.kv_len.is_multiple_of(t) {
            return Err(format!(
                "q_len {} and kv_len {} must be multiples of the cooperative tile {t} (the SIMT \
                 flash kernel takes any length)",
                p.q_len, p.kv_len
            ));
        }
        let (lo, hi) = (ctx.report.subgroup_min_size, ctx.report.subgroup_max_size);
        if lo != hi || lo < shape.t {
            return Err(format!(
                "needs one fixed subgroup size of at least {t} lanes (this adapter: {lo}..{hi})"
            ));
        }
        let conv = coop_convention(ctx)?;
        let c = CoopFlash::choose(shape.t, lo, p.head_dim, &ctx.limits).ok_or_else(|| {
            format!(
                "no configuration fits max_compute_workgroup_storage_size ({}) at head_dim {}",
                ctx.limits.max_compute_workgroup_storage_size, p.head_dim
            )
        })?;
        let patched = ctx.has(wgpu::Features::PASSTHROUGH_SHADERS);
        let spec = flash_coop_spec(shape, conv, c, p.head_dim, lo, patched);
        can_build(ctx, &spec).map_err(|e| e.to_string())?;
        let in_b = 2u64;
        let out_len = (p.batch * p.q_heads * p.q_len * p.head_dim) as u64;
        ctx.check_buffers(&[
            ("Q", p.q_len_elems() as u64, p.q_len_elems() as u64 * in_b),
            ("K", p.kv_len_elems() as u64, p.kv_len_elems() as u64 * in_b),
            ("O", out_len, out_len * in_b),
        ])?;
        ctx.check_grid(Self::grid(p, &spec))
            .map_err(|e| e.to_string())?;
        Ok(spec)
    }

    fn grid(p: &AttentionProblem, spec: &Specialization) -> [u32; 3] {
        let bq = (spec.konst_value("NSG") * spec.coop.map_or(16, |c| c.t)).max(1) as usize;
        [
            p.q_len.div_ceil(bq).min(u32::MAX as usize) as u32,
            p.q_heads.min(u32::MAX as usize) as u32,
            p.batch.min(u32::MAX as usize) as u32,
        ]
    }

    fn check(&self, ctx: &Arc<GpuContext>, p: &AttentionProblem) -> Result<Specialization, String> {
        let spec = self.plan(ctx, p)?;
        self_check(ctx, spec.patched_spirv)?;
        Ok(spec)
    }

    /// Prepare a planned specialization (no self-check: [`self_check`] calls this too).
    fn prepare_spec(
        &self,
        ctx: Arc<GpuContext>,
        p: &AttentionProblem,
        inputs: &[Arc<Tensor>],
        spec: &Specialization,
    ) -> Result<PreparedAttention, KernelError> {
        let id = self.identity().id();
        check_qkv(&id, self.precision.input, p, inputs)?;
        let ldo = out_ldo(self.precision.output, p.head_dim);
        let out_len = p.batch * p.q_heads * p.q_len * ldo;
        let params = AttentionParams::new(p, ldo);
        let t = spec.coop.map_or(16, |c| c.t) as usize;
        let pipeline = ctx.pipeline(spec)?;
        let q = ctx.storage_init("Q", inputs[0].as_bytes())?;
        let k = ctx.storage_init("K", inputs[1].as_bytes())?;
        let v = ctx.storage_init("V", inputs[2].as_bytes())?;
        let o = ctx.storage_init("O", Tensor::nan(self.precision.output, out_len).as_bytes())?;
        let u = ctx.uniform("attention params", bytemuck::bytes_of(&params))?;
        let zero = ctx.storage_init("coop zeros", &vec![0u8; t * t * 4])?;
        let bind = ctx.bind_group(&pipeline, &[&q, &k, &v, &o, &u, &zero])?;
        let run = GpuRun::new(ctx, pipeline, bind, Self::grid(p, spec))?;
        let mut chosen = spec.params();
        for key in ["ldss", "ldp", "ldo"] {
            chosen.remove(key);
        }
        Ok(PreparedAttention {
            chosen,
            run,
            problem: *p,
            output: self.precision.output,
            ldo,
            out_len,
            o,
            _buffers: vec![q, k, v, u, zero],
        })
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
        let spec = self
            .check(&ctx, p)
            .map_err(|reason| KernelError::Unsupported {
                kernel: id.clone(),
                reason,
            })?;
        self.prepare_spec(ctx, p, inputs, &spec)
    }
}

/// The device self-check `prepare` runs once per adapter and build (patched or not) before the
/// kernel is used: a causal GQA problem several key tiles long (b1, h4/2, q 64, kv 96, head_dim
/// 32), random f16 inputs, verified like every attention row. `Err` names the error and the
/// bound; the kernel is then unsupported on this adapter.
pub fn self_check(ctx: &Arc<GpuContext>, patched: bool) -> Result<(), String> {
    type Cache = Vec<((usize, bool), Result<(), String>)>;
    static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(Vec::new());
    let key = (ctx.report.index, patched);
    let mut cache = CACHE
        .lock()
        .map_err(|_| "coop flash self-check cache lock poisoned")?;
    if let Some((_, r)) = cache.iter().find(|(k, _)| *k == key) {
        return r.clone();
    }
    let result = (|| {
        let k = GpuCoopFlashAttention::default();
        let p = AttentionProblem::new(1, 4, 2, 64, 96, 32).causal(true);
        let spec = k.plan(ctx, &p)?;
        let prob = Problem::Attention(p);
        let ins: Vec<Arc<Tensor>> = prob
            .input_lens()
            .into_iter()
            .enumerate()
            .map(|(i, n)| Arc::new(Tensor::random(DType::F16, n, 0x5eed + i as u64)))
            .collect();
        let mut prep = k
            .prepare_spec(ctx.clone(), &p, &ins, &spec)
            .map_err(|e| e.to_string())?;
        prep.poison().map_err(|e| e.to_string())?;
        prep.run().map_err(|e| e.to_string())?;
        let out = prep.output().map_err(|e| e.to_string())?;
        let v = crate::verify::verify_problem(
            &prob,
            k.precision,
            &ins,
            &out,
            &crate::verify::VerifyOptions::default(),
        );
        if v.verdict == crate::verify::Verdict::Pass {
            Ok(())
        } else {
            Err(format!(
                "the cooperative-matrix flash self-check ({} SPIR-V, {p}) failed verification: \
                 error {:.2e} > bound {:.2e}: workgroup memory between the cooperative products \
                 is not coherent on this adapter",
                if patched { "patched" } else { "naga's" },
                v.error,
                v.bound
            ))
        }
    })();
    cache.push((key, result.clone()));
    result
}

impl Kernel for GpuCoopFlashAttention {
    fn identity(&self) -> KernelIdentity {
        // Tiles and the build depend on the adapter: the row's params get them when prepared.
        KernelIdentity {
            op: Op::Attention,
            backend: Backend::Gpu,
            family: "attention.gpu.flash-coop".into(),
            variant: "wgsl".into(),
            precision: self.precision,
            unit: ComputeUnit::GpuCoop,
            params: serde_json::Map::new(),
        }
    }

    fn supports(&self, problem: &Problem) -> Support {
        // The coop convention and self-check take the shared context itself.
        attention_support(problem, |_, p| {
            let ctx = context::global().map_err(|e| e.to_string())?;
            self.check(&ctx, p).map(|_| ())
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders::spirv_words;
    use crate::gpu::spirv::{
        barrier_semantics, patch_barrier_semantics, MAKE_AVAILABLE, MAKE_VISIBLE,
    };

    #[test]
    fn configurations_fit_the_limits_they_are_chosen_for() {
        let h200 = wgpu::Limits {
            max_compute_workgroup_storage_size: 49152,
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroup_size_x: 1024,
            ..wgpu::Limits::default()
        };
        // head_dim 128 at T = 16 on 32 lanes: four subgroups (64 rows) with 32-key tiles.
        let c = CoopFlash::choose(16, 32, 128, &h200).unwrap();
        assert_eq!(c, COOP_FLASH[0]);
        assert!(c.workgroup_bytes(16, 128) <= 49152);
        // head_dim 256 needs a smaller block; every head_dim of the issue has one.
        for hd in [64, 80, 96, 128, 256] {
            let c = CoopFlash::choose(16, 32, hd, &h200).expect("a configuration");
            assert!(c.workgroup_bytes(16, hd) <= 49152, "{hd}: {c:?}");
        }
        assert_ne!(CoopFlash::choose(16, 32, 256, &h200), Some(COOP_FLASH[0]));
        let tiny = wgpu::Limits {
            max_compute_workgroup_storage_size: 4096,
            ..h200
        };
        assert_eq!(CoopFlash::choose(16, 32, 128, &tiny), None);
    }

    #[test]
    fn every_barrier_of_the_module_gains_make_available_and_visible() {
        // S, P and O go through workgroup memory between the cooperative products: the patched
        // build must give every barrier both semantics bits.
        let spec = flash_coop_spec(
            CoopShape {
                t: 16,
                acc: DType::F32,
            },
            CoopConvention::ALL[0],
            COOP_FLASH[0],
            128,
            32,
            true,
        );
        let mut words = spirv_words(&spec, &naga::back::spv::Options::default()).unwrap();
        let before = barrier_semantics(&words).unwrap();
        assert!(before.len() >= 5, "{before:x?}");
        let report = patch_barrier_semantics(&mut words).unwrap();
        assert!(report.vulkan_memory_model);
        assert_eq!(report.barriers, before.len());
        const BOTH: u32 = MAKE_AVAILABLE | MAKE_VISIBLE;
        assert!(barrier_semantics(&words)
            .unwrap()
            .iter()
            .all(|s| s & BOTH == BOTH));
    }
}
