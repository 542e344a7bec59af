//! The GPU for `run`: the row device GPU rows are labelled with, and the measured GPU ceilings,
//! in run-file types (the fingerprint of every adapter is [`crate::env::gpu`]).

use crate::runfile::{Device, GpuCeilings};

/// Open the selected GPU (if not yet) and describe it for GPU rows: the adapter's name, the
/// software flag, its index in `environment.gpus`. `Err`: why GPU rows will be unsupported.
#[cfg(feature = "gpu")]
pub fn row_device() -> Result<Device, String> {
    let ctx = perfledger_kernels::gpu::context::global().map_err(|e| e.to_string())?;
    let mut d = Device::named(ctx.report.name.clone());
    d.software = ctx.report.software;
    d.gpu_index = Some(ctx.report.index);
    d.extra
        .insert("backend".into(), ctx.report.backend.clone().into());
    Ok(d)
}

#[cfg(not(feature = "gpu"))]
pub fn row_device() -> Result<Device, String> {
    Err("this perfledger was built without the `gpu` feature".into())
}

/// Measure the selected GPU's ceilings (FMA, copy, cooperative matrices where present).
#[cfg(feature = "gpu")]
pub fn ceilings() -> Option<GpuCeilings> {
    use perfledger_kernels::gpu::{context, probe};
    let ctx = context::global().ok()?;
    let m = probe::gpu_ceilings(&ctx, &probe::GpuProbeOptions::full(ctx.report.software));
    for n in &m.notes {
        eprintln!("GPU probe: {n}");
    }
    Some(GpuCeilings {
        index: ctx.report.index,
        fma_gflops: m.fma_gflops,
        copy_gbs: m.copy_gbs,
        coop_gflops: m.coop_gflops,
    })
}

#[cfg(not(feature = "gpu"))]
pub fn ceilings() -> Option<GpuCeilings> {
    None
}
