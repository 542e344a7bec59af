//! The fingerprint of a run: build, CPU, memory, GPU adapters, OS, cloud instance and price.
//! Field names are pinned by the run-file schema (`perfledger.run/1.0`, DESIGN.md).
//!
//! Every field that could not be read is `None` (printed as n/a), never a guess.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the perfledger binary was built (from the build script).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HarnessInfo {
    pub version: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub rustc: Option<String>,
    pub profile: String,
    pub target: String,
    pub features: Vec<String>,
}

/// The machine a run executed on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub hostname: Option<String>,
    pub cpu: CpuInfo,
    pub memory_bytes: Option<u64>,
    pub gpus: Vec<GpuInfo>,
    pub instance: Option<InstanceInfo>,
    pub price: Option<PriceInfo>,
}

/// CPU identity and what perturbs CPU numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub sockets: Option<u32>,
    pub physical_cores: Option<u32>,
    pub vcpus: Option<u32>,
    /// Hardware threads per physical core (1 = no SMT siblings in use).
    pub smt: Option<u32>,
    pub threads_used: usize,
    pub pinned: bool,
    pub isa_detected: Vec<String>,
    pub isa_selected: String,
    /// Cache sizes in bytes by level name (`l1d`, `l2`, `l3`) and where they came from.
    pub caches: BTreeMap<String, serde_json::Value>,
    pub mhz_before: Option<f64>,
    pub mhz_after: Option<f64>,
    /// 1, 5 and 15 minute load averages.
    pub load_avg: Option<[f64; 3]>,
    /// Share of CPU time stolen by the hypervisor during the run, in percent (`/proc/stat`).
    pub steal_pct: Option<f64>,
}

/// A GPU adapter as the GPU backend reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: usize,
    pub name: String,
    pub vendor_id: Option<u32>,
    pub device_id: Option<u32>,
    pub device_type: Option<String>,
    /// Software rasterizers (llvmpipe/lavapipe, SwiftShader, WARP): never normalized against GPU
    /// specs.
    pub software: bool,
    pub backend: Option<String>,
    pub driver: Option<String>,
    pub driver_info: Option<String>,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, serde_json::Value>,
    pub used: bool,
}

/// The cloud instance, when known.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub provider: Option<String>,
    #[serde(rename = "type")]
    pub instance_type: Option<String>,
    pub region: Option<String>,
    pub pricing_model: Option<String>,
    /// `dmi`, `cli`, `env`: how the instance was identified (never guessed).
    pub detected_by: Option<String>,
}

/// The hourly price the run is normalized with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceInfo {
    pub usd_per_hour: f64,
    pub source: Option<String>,
    pub as_of: Option<String>,
}
