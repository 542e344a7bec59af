//! The GPU side of the fingerprint and of a run: adapter options from the CLI, `environment.gpus`,
//! the device label of GPU rows, GPU ceilings, and the loud warning for a GPU wgpu cannot see.
//!
//! Everything that touches wgpu runs only when called: `run` calls it only when its plan has GPU
//! rows, `env` always (it prints the adapters). Without the `gpu` feature these are stubs.

use super::GpuInfo;

/// Set the process's GPU options (`--allow-software-gpu`, `--gpu INDEX|NAME`). Touches no driver.
#[cfg(feature = "gpu")]
pub fn configure(allow_software: bool, select: Option<&str>) -> Result<(), String> {
    use perfledger_kernels::gpu::context::{self, GpuOptions, GpuSelect};
    let select = select
        .map(|s| s.parse::<GpuSelect>().map_err(|e| format!("--gpu: {e}")))
        .transpose()?;
    context::configure(GpuOptions {
        allow_software,
        select,
    })
    .map_err(|e| e.to_string())
}

#[cfg(not(feature = "gpu"))]
pub fn configure(_allow_software: bool, select: Option<&str>) -> Result<(), String> {
    match select {
        Some(_) => Err("--gpu: this perfledger was built without the `gpu` feature".into()),
        None => Ok(()),
    }
}

/// The adapters as fingerprint entries; `used` marks the one GPU rows ran on (if opened).
#[cfg(feature = "gpu")]
pub fn fingerprint() -> Vec<GpuInfo> {
    use perfledger_kernels::gpu::context;
    let used = context::global_if_open().map(|c| c.report.index);
    context::adapters()
        .into_iter()
        .map(|r| GpuInfo {
            index: r.index,
            name: r.name,
            vendor_id: Some(r.vendor_id),
            device_id: Some(r.device_id),
            device_type: Some(r.device_type),
            software: r.software,
            backend: Some(r.backend),
            driver: Some(r.driver).filter(|s| !s.is_empty()),
            driver_info: Some(r.driver_info).filter(|s| !s.is_empty()),
            features: r.features,
            limits: {
                let mut l = r.limits;
                l.insert(
                    "subgroup_min_size".into(),
                    serde_json::Value::from(r.subgroup_min_size),
                );
                l.insert(
                    "subgroup_max_size".into(),
                    serde_json::Value::from(r.subgroup_max_size),
                );
                l.insert(
                    "cooperative_matrix".into(),
                    serde_json::to_value(&r.coop).unwrap_or_default(),
                );
                l
            },
            used: used == Some(r.index),
        })
        .collect()
}

#[cfg(not(feature = "gpu"))]
pub fn fingerprint() -> Vec<GpuInfo> {
    Vec::new()
}

/// The loud warning when GPU device nodes exist but wgpu sees no hardware adapter.
#[cfg(feature = "gpu")]
pub fn invisible_gpu_warning() -> Option<String> {
    use perfledger_kernels::gpu::context;
    context::hardware_warning(&context::gpu_device_nodes(), &context::adapters())
}

#[cfg(not(feature = "gpu"))]
pub fn invisible_gpu_warning() -> Option<String> {
    let nodes = std::path::Path::new("/dev/dri").exists()
        || std::fs::read_dir("/dev")
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("nvidia"))
            })
            .unwrap_or(false);
    nodes.then(|| {
        "WARNING: GPU device nodes exist but this perfledger was built without the `gpu` feature"
            .to_string()
    })
}
