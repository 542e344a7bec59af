//! The fingerprint of a run: build, CPU, memory, GPU adapters, OS, cloud instance and price.
//! Field names are pinned by the run-file schema (`perfledger.run/1.1`, DESIGN.md).
//!
//! Every field that could not be read is `None` (printed as n/a), never a guess.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod build;
pub mod cpu;
pub mod gpu;
pub mod instance;
pub mod os;

pub use build::harness_info;
pub use cpu::StealMeter;
pub use instance::IdentityFlags;

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
    /// How the type was identified: `flag`, `env`, `dmi` (`cli` in files before 1.4; never
    /// guessed).
    pub detected_by: Option<String>,
    /// How each field was found (1.4): `type`, `provider`, `region`, `pricing_model` →
    /// `flag`, `env`, `skypilot` or `dmi`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub found_by: BTreeMap<String, String>,
    /// The SkyPilot job the run was part of (1.4), as provenance; never a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skypilot: Option<SkyPilotInfo>,
}

/// What SkyPilot says about the job a run was part of (`SKYPILOT_TASK_ID`,
/// `SKYPILOT_CLUSTER_INFO`, `SKYPILOT_NODE_RANK`, `SKYPILOT_NUM_NODES`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SkyPilotInfo {
    pub task_id: Option<String>,
    pub cluster: Option<String>,
    pub node_rank: Option<u32>,
    pub num_nodes: Option<u32>,
    /// SkyPilot's cloud name (`AWS`, `GCP`, `Kubernetes`).
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_info_error: Option<String>,
}

/// The hourly price the run is normalized with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceInfo {
    pub usd_per_hour: f64,
    pub source: Option<String>,
    pub as_of: Option<String>,
}

/// What the caller knows about a run that the machine cannot say: how it uses the CPU, and the
/// instance type and price the user gave (`--instance`, `--price`, already validated).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectOptions {
    pub threads_used: usize,
    pub pinned: bool,
    pub isa_selected: String,
    /// The identity the user gave (`--instance`, `--provider`, `--region`, `--pricing-model`,
    /// `--price`).
    pub identity: instance::IdentityFlags,
}

/// Fingerprint this machine at the start of a run. GPUs are filled in by the GPU backend;
/// `cpu.mhz_after` and `cpu.steal_pct` by [`Environment::finish`]. An identity variable that
/// cannot be used (`PERFLEDGER_PRICE=cheap`) is an error naming it.
pub fn collect(opts: &CollectOptions) -> Result<Environment, instance::IdentityError> {
    let (instance, price) = instance::detect(&opts.identity)?;
    Ok(Environment {
        os: os::os_name(),
        kernel: os::kernel(),
        hostname: os::hostname(),
        cpu: cpu::collect(opts.threads_used, opts.pinned, &opts.isa_selected),
        memory_bytes: os::memory_bytes(),
        gpus: Vec::new(),
        instance,
        price,
    })
}

impl Environment {
    /// At the end of a run: the CPU frequency then, and the steal time since `steal` started.
    pub fn finish(&mut self, steal: &StealMeter) {
        cpu::finish(&mut self.cpu, steal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_on_this_machine() {
        let steal = StealMeter::start();
        let opts = CollectOptions {
            threads_used: 1,
            pinned: false,
            isa_selected: "portable".into(),
            identity: instance::IdentityFlags {
                price: Some(0.5),
                ..Default::default()
            },
        };
        let mut env = collect(&opts).unwrap();
        env.finish(&steal);
        println!("{}", serde_json::to_string_pretty(&env).unwrap());
        println!("{}", serde_json::to_string_pretty(&harness_info()).unwrap());

        assert!(env.cpu.model.as_deref().is_some_and(|m| !m.is_empty()));
        assert!(env.cpu.vcpus.is_some_and(|v| v >= 1));
        assert!(!env.cpu.isa_detected.is_empty());
        assert_eq!(env.cpu.threads_used, 1);
        assert_eq!(env.cpu.isa_selected, "portable");
        assert!(env.cpu.caches.contains_key("l1d") && env.cpu.caches.contains_key("source"));
        assert!(env.gpus.is_empty());
        let price = env.price.as_ref().unwrap();
        assert_eq!(
            (price.usd_per_hour, price.source.as_deref()),
            (0.5, Some("flag"))
        );
        if let Some(p) = env.cpu.steal_pct {
            assert!((0.0..=100.0).contains(&p));
        }
        // The run-file field names survive a round trip.
        let json = serde_json::to_value(&env).unwrap();
        assert!(json["cpu"].get("mhz_before").is_some());
        let back: Environment = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn cli_instance_reaches_the_fingerprint() {
        let opts = CollectOptions {
            identity: instance::IdentityFlags {
                instance: Some("m7i.large".into()),
                region: Some("us-east-1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let env = collect(&opts).unwrap();
        let i = env.instance.unwrap();
        assert_eq!(i.instance_type.as_deref(), Some("m7i.large"));
        assert_eq!(i.detected_by.as_deref(), Some("flag"));
        assert_eq!(i.found_by["region"], "flag");
    }
}
