//! The database's vocabulary (data status, pricing models, units, dtypes; unknown values are
//! refused with the field's path) and its entries: accelerators, CPUs, offers, the documents.

use super::*;

/// How well a figure is established (see `../shared/specs/SOURCES.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataStatus {
    /// Vendor document, a vendor datasheet reproduced verbatim, or two consistent sources.
    Confirmed,
    /// Core figures confirmed, some fields derived or conflicting.
    PartiallyConfirmed,
    /// One archived source.
    SingleSource,
    /// Secondary, derived, conflicting or missing.
    Unconfirmed,
}

impl DataStatus {
    pub fn name(self) -> &'static str {
        match self {
            DataStatus::Confirmed => "confirmed",
            DataStatus::PartiallyConfirmed => "partially_confirmed",
            DataStatus::SingleSource => "single_source",
            DataStatus::Unconfirmed => "unconfirmed",
        }
    }
}

/// How an offer is sold (also the values of `run --pricing-model`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum PricingModel {
    OnDemand,
    Spot,
    Reserved,
    CapacityBlock,
    Marketplace,
}

impl PricingModel {
    pub fn name(self) -> &'static str {
        match self {
            PricingModel::OnDemand => "on-demand",
            PricingModel::Spot => "spot",
            PricingModel::Reserved => "reserved",
            PricingModel::CapacityBlock => "capacity-block",
            PricingModel::Marketplace => "marketplace",
        }
    }
}

/// What one spec entry's figures are per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Chip,
    Core,
    Instance,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Chip => "chip",
            Unit::Core => "core",
            Unit::Instance => "instance",
        }
    }
}

/// The data types a peak is published for. `fp32` is non-tensor (vector) FP32 on GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecDType {
    Bf16,
    Fp16,
    Fp8,
    Tf32,
    Fp32,
}

impl SpecDType {
    pub const ALL: [SpecDType; 5] = [
        SpecDType::Bf16,
        SpecDType::Fp16,
        SpecDType::Fp8,
        SpecDType::Tf32,
        SpecDType::Fp32,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SpecDType::Bf16 => "bf16",
            SpecDType::Fp16 => "fp16",
            SpecDType::Fp8 => "fp8",
            SpecDType::Tf32 => "tf32",
            SpecDType::Fp32 => "fp32",
        }
    }

    /// The peak a row with this input dtype is normalized against (f32 rows: non-tensor FP32,
    /// never TF32, which is a lower precision).
    pub fn of(dtype: perfledger_kernels::DType) -> SpecDType {
        match dtype {
            perfledger_kernels::DType::F32 => SpecDType::Fp32,
            perfledger_kernels::DType::F16 => SpecDType::Fp16,
            perfledger_kernels::DType::BF16 => SpecDType::Bf16,
        }
    }
}

/// A dense peak for one dtype (`{"dense": 989, "accum": "f32"}`). There is no `sparse` field: a
/// sparse figure cannot be entered as a peak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peak {
    /// TFLOP/s for accelerators (per chip), GFLOP/s for CPUs (per core).
    pub dense: Figure,
    /// Accumulator the figure assumes (`f32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accum: Option<String>,
    /// FP8 format (`E4M3/E5M2`, `MXFP8`): FP8 is not one format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// CPUs: the instruction path and its FLOP/cycle formula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The rate is an assumption (e.g. instruction throughput not found in any source).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assumed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A published measured ceiling (e.g. maximum achievable matmul FLOP/s), a second denominator
/// and the basis of a "realistic" projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedCeiling {
    /// `max_achievable_matmul` (the only kind so far).
    pub kind: CeilingKind,
    pub dtype: SpecDType,
    pub tflops: f64,
    #[serde(default)]
    pub note: Option<String>,
    pub source: String,
    pub as_of: AsOf,
    #[serde(default)]
    pub as_of_note: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeilingKind {
    /// Best measured dense matmul throughput over many shapes (ml-engineering's MAMF).
    MaxAchievableMatmul,
}

/// The cores of a chip and how software counts them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoresPerChip {
    /// Physical cores per chip.
    pub count: u32,
    /// `NeuronCore-v3`.
    pub name: String,
    /// Logical cores: how many physical cores one logical core groups (the Logical NeuronCore
    /// setting, `NEURON_LOGICAL_NC_CONFIG`). Absent: software sees the physical cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical: Option<LogicalCores>,
    pub source: String,
}

/// A logical-core setting: the degrees allowed and the default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogicalCores {
    /// The setting's name (`NEURON_LOGICAL_NC_CONFIG`).
    pub setting: String,
    /// Physical cores per logical core that the setting allows (`[1, 2]`).
    pub degrees: Vec<u32>,
    pub default_degree: u32,
}

/// A PCI vendor id and the device ids that identify a chip (`"0x10de"`, `["0x2330"]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciIds {
    pub vendor_id: String,
    pub device_ids: Vec<String>,
}

/// How a run's device is recognised as this chip.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identify {
    #[serde(default)]
    pub pci: Vec<PciIds>,
    /// Exact adapter names as the GPU API reports them (`NVIDIA H100 80GB HBM3`).
    #[serde(default)]
    pub adapter_names: Vec<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// One accelerator (per chip).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub vendor: String,
    pub name: String,
    #[serde(default)]
    pub variant: Option<String>,
    pub unit: Unit,
    pub status: DataStatus,
    /// The clock the peaks assume (peaks depend on clocks).
    #[serde(default)]
    pub clock_basis: Option<String>,
    /// Dense peak TFLOP/s per dtype.
    pub peak_tflops: BTreeMap<SpecDType, Peak>,
    /// Published sparse figures, for the check that no dense peak is one (informative only).
    #[serde(default)]
    pub sparse_tflops: BTreeMap<SpecDType, f64>,
    #[serde(default)]
    pub memory_gb: Option<Figure>,
    /// `GB` or `GiB`, as the vendor states it.
    #[serde(default)]
    pub memory_unit: Option<String>,
    #[serde(default)]
    pub memory_type: Option<String>,
    /// Memory bandwidth, TB/s (decimal).
    #[serde(default)]
    pub mem_bw_tbs: Option<Figure>,
    #[serde(default)]
    pub tdp_w: Option<Figure>,
    #[serde(default)]
    pub measured_ceilings: Vec<PublishedCeiling>,
    /// Compute cores per chip where a workload can hold part of a chip (8 NeuronCore-v3 on a
    /// Trainium2): rows on some of the cores are normalized against that share of the peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores_per_chip: Option<CoresPerChip>,
    #[serde(default)]
    pub identify: Identify,
    #[serde(default)]
    pub unconfirmed_fields: Vec<String>,
    pub source: String,
    pub as_of: AsOf,
    #[serde(default)]
    pub as_of_note: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// One CPU model (per core).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub vendor: String,
    pub name: String,
    #[serde(default)]
    pub microarchitecture: Option<String>,
    #[serde(default)]
    pub codename: Option<String>,
    #[serde(default)]
    pub arch: Option<String>,
    pub unit: Unit,
    pub status: DataStatus,
    #[serde(default)]
    pub smt: Option<bool>,
    #[serde(default)]
    pub clock_ghz: Option<f64>,
    #[serde(default)]
    pub clock_basis: Option<String>,
    /// Dense peak GFLOP/s per core per dtype (absent: no arithmetic for that dtype).
    pub peak_gflops_per_core: BTreeMap<SpecDType, Peak>,
    #[serde(default)]
    pub isa: Vec<String>,
    /// Exact `/proc/cpuinfo` model names that identify this CPU (only where unambiguous).
    #[serde(default)]
    pub model_strings: Vec<String>,
    #[serde(default)]
    pub unconfirmed_fields: Vec<String>,
    pub source: String,
    pub as_of: AsOf,
    #[serde(default)]
    pub as_of_note: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// One offer: an instance type (or a per-GPU marketplace listing) at one pricing model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    pub id: String,
    pub provider: String,
    /// The instance type or listing (`p5.48xlarge`), without the pricing model in it.
    pub instance: String,
    #[serde(default)]
    pub region: Option<String>,
    pub pricing_model: PricingModel,
    /// Accelerator or CPU id (or alias) of the devices in the offer; absent when the seller's
    /// device name matches no spec entry (then `device_name` keeps that name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The device as the seller names it (a SkyPilot catalog's `AcceleratorName`), where it
    /// was not mapped to a spec id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Units of `device` in the offer: chips, or physical cores for CPU instances.
    pub device_count: u32,
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub memory_gib: Option<f64>,
    /// Price of the whole offer, USD per hour (null: no published price).
    #[serde(default)]
    pub usd_per_hour: Option<Figure>,
    /// Price per device-hour, where that is how it is quoted (exclusive with `usd_per_hour`).
    #[serde(default)]
    pub usd_per_device_hour: Option<Figure>,
    pub status: DataStatus,
    pub source: String,
    pub as_of: AsOf,
    #[serde(default)]
    pub as_of_note: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl Offer {
    /// The device's spec id, else the seller's name marked unmatched (`A10 (no spec entry)`).
    pub fn device_label(&self) -> String {
        match (&self.device, &self.device_name) {
            (Some(d), _) => d.clone(),
            (None, Some(n)) => format!("{n} (no spec entry)"),
            (None, None) => "?".into(),
        }
    }

    /// The whole offer's price, USD per hour.
    pub fn instance_price(&self) -> Option<Figure> {
        match (&self.usd_per_hour, &self.usd_per_device_hour) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => Some(p.scaled(self.device_count as f64)),
            (None, None) => None,
        }
    }

    /// USD per device-hour (per chip, or per physical core for CPU instances).
    pub fn device_price(&self) -> Option<Figure> {
        match (&self.usd_per_hour, &self.usd_per_device_hour) {
            (_, Some(p)) => Some(p.clone()),
            (Some(p), None) => Some(p.scaled(1.0 / self.device_count as f64)),
            (None, None) => None,
        }
    }

    /// A single published price (no range), USD per hour for the whole offer.
    pub fn point_price(&self) -> Option<f64> {
        match self.instance_price()? {
            Figure::Value(v) => Some(v),
            Figure::Range(_) => None,
        }
    }
}

/// A spec document (`perfledger.specs/1`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecsDoc {
    pub schema: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub accelerators: Vec<Accelerator>,
    #[serde(default)]
    pub cpus: Vec<Cpu>,
}

/// A price document (`perfledger.prices/1`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesDoc {
    pub schema: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub offers: Vec<Offer>,
}
