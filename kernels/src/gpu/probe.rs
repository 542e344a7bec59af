//! GPU ceilings measured on the device itself (shaders/probe.wgsl, shaders/probe_coop.wgsl): an
//! FMA-heavy kernel (f32 GFLOP/s), a copy kernel (GB/s, read + write) and, where the adapter has
//! cooperative matrices, a cooperative-matrix throughput kernel. They feed
//! `measured_ceilings.gpu` of a run file.
//!
//! Each probe grows its work until one dispatch lasts at least the target time, then takes the
//! median of several timed dispatches (device timestamps where available, else the wall clock).

use crate::dtype::DType;
use crate::gpu::context::GpuContext;
use crate::gpu::matmul::coop_shape;
use crate::gpu::pipelines::can_build;
use crate::gpu::shaders::{CoopShape, Shader, Specialization};
use crate::gpu::timing::GpuRun;
use crate::kernel::KernelError;
use serde::Serialize;
use std::sync::Arc;

/// Rust twin of `ProbeParams` in shaders/probe.wgsl and shaders/probe_coop.wgsl (4 × u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ProbeParams {
    pub n_vec4: u32,
    pub iters: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// Probe workgroup size.
pub const PROBE_WG: u32 = 256;

/// Every specialization the GPU probes may build (coop tile edges and accumulators at every value
/// adapters report).
pub fn specializations() -> Vec<Specialization> {
    let mut v = vec![fma_spec(), copy_spec()];
    for t in crate::gpu::matmul::COOP_TILES {
        for acc in [DType::F32, DType::F16] {
            v.push(coop_peak_spec(CoopShape { t, acc }, 32));
        }
    }
    v
}

pub fn fma_spec() -> Specialization {
    Specialization::new(Shader::Probe, "fma_probe").override_("WG", PROBE_WG)
}

pub fn copy_spec() -> Specialization {
    Specialization::new(Shader::Probe, "copy_probe").override_("WG", PROBE_WG)
}

pub fn coop_peak_spec(shape: CoopShape, subgroup_min: u32) -> Specialization {
    Specialization::new(Shader::ProbeCoop, "peak")
        .coop(shape)
        .override_("WG", 4 * subgroup_min.max(1))
}

/// How long the probes run.
#[derive(Clone, Copy, Debug)]
pub struct GpuProbeOptions {
    /// Shortest single dispatch, seconds.
    pub min_dispatch_s: f64,
    /// Timed dispatches (median taken).
    pub reps: u64,
    /// Bytes copied by the copy probe (capped by the device's limits).
    pub copy_bytes: u64,
    /// Seconds of back-to-back FMA dispatches before any probe is timed, so the GPU leaves its
    /// idle clocks (an H200 straight from idle measured 11–13 TFLOP/s f32 where a warm one gives
    /// 44; results/gpu-h200.md).
    pub clock_warmup_s: f64,
}

impl GpuProbeOptions {
    /// Full probes: ~20 ms dispatches, 7 reps, 256 MiB copies (64 MiB on software adapters).
    pub fn full(software: bool) -> Self {
        GpuProbeOptions {
            min_dispatch_s: 0.02,
            reps: 7,
            copy_bytes: if software { 64 << 20 } else { 256 << 20 },
            clock_warmup_s: if software { 0.0 } else { 1.0 },
        }
    }

    /// Quick probes for tests: tiny and few.
    pub fn quick() -> Self {
        GpuProbeOptions {
            min_dispatch_s: 0.002,
            reps: 3,
            copy_bytes: 1 << 20,
            clock_warmup_s: 0.0,
        }
    }
}

/// What the probes measured (`None`: not measurable here, with the reason in `notes`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuCeilingsMeasured {
    pub fma_gflops: Option<f64>,
    pub copy_gbs: Option<f64>,
    pub coop_gflops: Option<f64>,
    /// Timing method of the probes: `timestamp` or `wall`.
    pub method: String,
    pub notes: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Seconds per dispatch: median over `reps` (device time where available).
fn time_median(run: &GpuRun, reps: u64, method: &mut String) -> Result<f64, KernelError> {
    run.run()?; // warm-up (llvmpipe compiles here)
    let mut v = Vec::new();
    for _ in 0..reps.max(1) {
        let t = run.time(1)?;
        match t.device_s {
            Some(d) => {
                *method = "timestamp".into();
                v.push(d);
            }
            None => {
                *method = "wall".into();
                v.push(t.wall_s);
            }
        }
    }
    Ok(median(v))
}

/// Measure the ceilings of `ctx`'s device. A probe that fails leaves its field `None` with a note.
pub fn gpu_ceilings(ctx: &Arc<GpuContext>, opts: &GpuProbeOptions) -> GpuCeilingsMeasured {
    let mut out = GpuCeilingsMeasured {
        method: "wall".into(),
        ..Default::default()
    };
    match fma_probe(ctx, opts, &mut out.method) {
        Ok(g) => out.fma_gflops = Some(g),
        Err(e) => out.notes.push(format!("fma: {e}")),
    }
    match copy_probe(ctx, opts, &mut out.method) {
        Ok(g) => out.copy_gbs = Some(g),
        Err(e) => out.notes.push(format!("copy: {e}")),
    }
    match coop_shape(ctx) {
        Some(shape) => match coop_probe(ctx, shape, opts, &mut out.method) {
            Ok(g) => out.coop_gflops = Some(g),
            Err(e) => out.notes.push(format!("coop: {e}")),
        },
        None => out
            .notes
            .push("coop: no f16 cooperative-matrix configuration on this adapter".into()),
    }
    out
}

fn fma_probe(
    ctx: &Arc<GpuContext>,
    opts: &GpuProbeOptions,
    method: &mut String,
) -> Result<f64, KernelError> {
    let pipeline = ctx.pipeline(&fma_spec())?;
    let groups: u32 = 1024;
    let threads = groups as u64 * PROBE_WG as u64;
    let dst = ctx.storage_init("fma out", &vec![0u8; threads as usize * 16])?;
    let mut params = ProbeParams {
        iters: 64,
        ..Default::default()
    };
    let u = ctx.uniform("probe params", bytemuck::bytes_of(&params))?;
    // Bindings 0 (SRC) is unused by `fma`: the auto layout has only 1 and 2.
    let bind = ctx.scoped("bind group", || {
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: dst.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: u.as_entire_binding(),
                },
            ],
        })
    })?;
    let run = GpuRun::new(ctx.clone(), pipeline, bind, [groups, 1, 1])?;
    let warm = std::time::Instant::now();
    loop {
        let t = time_median(&run, 1, method)?;
        if warm.elapsed().as_secs_f64() < opts.clock_warmup_s {
            // Still warming the clocks: grow to the target, then keep dispatching.
            if t >= opts.min_dispatch_s {
                continue;
            }
        }
        if t >= opts.min_dispatch_s || params.iters >= 1 << 24 {
            break;
        }
        let grow = (opts.min_dispatch_s / t.max(1e-7)).clamp(2.0, 64.0);
        params.iters = ((params.iters as f64 * grow) as u32).min(1 << 24);
        ctx.write(&u, bytemuck::bytes_of(&params))?;
    }
    let t = time_median(&run, opts.reps, method)?;
    let flops = threads as f64 * params.iters as f64 * 8.0 * 4.0 * 2.0;
    Ok(flops / t / 1e9)
}

fn copy_probe(
    ctx: &Arc<GpuContext>,
    opts: &GpuProbeOptions,
    method: &mut String,
) -> Result<f64, KernelError> {
    let limit = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size);
    let bytes = opts.copy_bytes.min(limit) / 16 * 16;
    let n_vec4 = (bytes / 16).min(u32::MAX as u64) as u32;
    let pipeline = ctx.pipeline(&copy_spec())?;
    let src = ctx.storage_init("copy src", &vec![1u8; bytes as usize])?;
    let dst = ctx.storage_init("copy dst", &vec![0u8; bytes as usize])?;
    let params = ProbeParams {
        n_vec4,
        ..Default::default()
    };
    let u = ctx.uniform("probe params", bytemuck::bytes_of(&params))?;
    let bind = ctx.bind_group(&pipeline, &[&src, &dst, &u])?;
    let groups = (n_vec4.div_ceil(PROBE_WG)).clamp(1, 65535);
    let run = GpuRun::new(ctx.clone(), pipeline, bind, [groups, 1, 1])?;
    let t = time_median(&run, opts.reps, method)?;
    Ok(2.0 * bytes as f64 / t / 1e9)
}

fn coop_probe(
    ctx: &Arc<GpuContext>,
    shape: CoopShape,
    opts: &GpuProbeOptions,
    method: &mut String,
) -> Result<f64, KernelError> {
    let sg = match ctx.report.subgroup_min_size {
        0 => 32,
        s => s,
    };
    let spec = coop_peak_spec(shape, sg);
    can_build(ctx, &spec)?;
    let pipeline = ctx.pipeline(&spec)?;
    let t = shape.t as usize;
    let src: Vec<half::f16> = (0..t * t)
        .map(|i| half::f16::from_f32(((i % 7) as f32 - 3.0) * 0.01))
        .collect();
    let acc_bytes = if shape.acc == DType::F16 { 2 } else { 4 };
    let src = ctx.storage_init("coop src", bytemuck::cast_slice(&src))?;
    let out = ctx.storage_init("coop out", &vec![0u8; 4 * t * t * acc_bytes])?;
    let count = ctx.storage_init("coop count", &[0u8; 4])?;
    let mut params = ProbeParams {
        iters: 256,
        ..Default::default()
    };
    let u = ctx.uniform("probe params", bytemuck::bytes_of(&params))?;
    let bind = ctx.bind_group(&pipeline, &[&src, &out, &count, &u])?;
    let groups = 4096;
    let run = GpuRun::new(ctx.clone(), pipeline, bind, [groups, 1, 1])?;
    run.run()?;
    let subgroups = u32::from_le_bytes(
        ctx.read(&count, 4)?
            .try_into()
            .map_err(|_| KernelError::Other("coop count read-back".into()))?,
    ) as f64;
    if subgroups == 0.0 {
        return Err(KernelError::Other("no subgroup ran".into()));
    }
    loop {
        let s = time_median(&run, 1, method)?;
        if s >= opts.min_dispatch_s || params.iters >= 1 << 22 {
            break;
        }
        let grow = (opts.min_dispatch_s / s.max(1e-7)).clamp(2.0, 64.0);
        params.iters = ((params.iters as f64 * grow) as u32).min(1 << 22);
        ctx.write(&u, bytemuck::bytes_of(&params))?;
    }
    let s = time_median(&run, opts.reps, method)?;
    let flops = subgroups * params.iters as f64 * 4.0 * 2.0 * (t * t * t) as f64;
    Ok(flops / s / 1e9)
}
