//! The accelerator, CPU and price database (DESIGN.md, "Normalization and perf per dollar").
//!
//! Two JSON documents are compiled into the binary: `data/specs.json` (`perfledger.specs/1`:
//! accelerators per chip, CPUs per core) and `data/prices.json` (`perfledger.prices/1`: one row
//! per instance or marketplace offer). They were curated from the research notes in
//! `../shared/specs/`; `README.md` next to this file records every curation decision. User files
//! in the same formats (`--specs FILE`, `--prices FILE`) add entries or override entries with the
//! same id.
//!
//! Every entry carries a `source` and an ISO `as_of` date (`YYYY-MM-DD`, or `YYYY-MM` where only
//! the month is known) plus a free-text `as_of_note`. Peaks are **dense** only: a peak is written
//! `{"dense": ...}`, so a sparse figure cannot be entered as one, and where the sparse figure is
//! known too (`sparse_tflops`) the dense one must be below it. Conflicting published values are
//! kept as `{"min", "max", "sources"}` ([`Figure::Range`]); computations use the upper value
//! (a ceiling stays an upper bound, a % of peak is not overstated) and print the range.
//!
//! Loading validates everything and names the file and the JSON path of a bad field.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use time::Date;

pub mod matching;

/// The embedded spec document.
pub const SPECS_JSON: &str = include_str!("data/specs.json");
/// The embedded price document.
pub const PRICES_JSON: &str = include_str!("data/prices.json");
/// Schema string of spec documents.
pub const SPECS_SCHEMA: &str = "perfledger.specs/1";
/// Schema string of price documents.
pub const PRICES_SCHEMA: &str = "perfledger.prices/1";
/// How the embedded documents are named in errors and reports.
pub const EMBEDDED_SPECS: &str = "embedded specs (harness/src/specs/data/specs.json)";
pub const EMBEDDED_PRICES: &str = "embedded prices (harness/src/specs/data/prices.json)";
/// Prices older than this (counted from the report's `--as-of` date) are flagged.
pub const DEFAULT_MAX_PRICE_AGE_DAYS: i64 = 365;

// ---------------------------------------------------------------------------------------------
// Enums (unknown values are refused by serde, with the field's path)

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

/// How an offer is sold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

// ---------------------------------------------------------------------------------------------
// Figures and dates

/// A published number, or conflicting published numbers kept as a range with their sources.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Figure {
    Value(f64),
    Range(FigureRange),
}

/// Conflicting published values: never silently picked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureRange {
    pub min: f64,
    pub max: f64,
    pub sources: Vec<String>,
}

impl Figure {
    /// The value computations use: the upper end of a range.
    pub fn upper(&self) -> f64 {
        match self {
            Figure::Value(v) => *v,
            Figure::Range(r) => r.max,
        }
    }

    pub fn lower(&self) -> f64 {
        match self {
            Figure::Value(v) => *v,
            Figure::Range(r) => r.min,
        }
    }

    pub fn is_range(&self) -> bool {
        matches!(self, Figure::Range(_))
    }

    /// Multiply (a unit conversion): ranges keep their sources.
    pub fn scaled(&self, k: f64) -> Figure {
        match self {
            Figure::Value(v) => Figure::Value(v * k),
            Figure::Range(r) => Figure::Range(FigureRange {
                min: r.min * k,
                max: r.max * k,
                sources: r.sources.clone(),
            }),
        }
    }

    fn check(&self, field: &str, positive: bool) -> Result<(), FieldError> {
        let ok = |v: f64| v.is_finite() && (if positive { v > 0.0 } else { v >= 0.0 });
        match self {
            Figure::Value(v) if !ok(*v) => Err(FieldError::new(
                field,
                format!("{v} is not a finite number > 0"),
            )),
            Figure::Range(r) => {
                if !ok(r.min) || !ok(r.max) {
                    return Err(FieldError::new(
                        field,
                        format!("range [{}, {}] must be finite and > 0", r.min, r.max),
                    ));
                }
                if r.min > r.max {
                    return Err(FieldError::new(
                        field,
                        format!("range min {} is above max {}", r.min, r.max),
                    ));
                }
                if r.sources.is_empty() || r.sources.iter().any(|s| s.trim().is_empty()) {
                    return Err(FieldError::new(
                        format!("{field}.sources"),
                        "a range names the source of each value",
                    ));
                }
                Ok(())
            }
            Figure::Value(_) => Ok(()),
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Value(v) => write!(f, "{}", fmt_num(*v)),
            Figure::Range(r) => write!(f, "{}–{}", fmt_num(r.min), fmt_num(r.max)),
        }
    }
}

/// A number without trailing zeros (`989`, `494.5`, `0.8048`).
pub fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl<'de> Deserialize<'de> for Figure {
    /// A number, or `{"min", "max", "sources"}` (anything else names what was expected).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_f64()
                .map(Figure::Value)
                .ok_or_else(|| D::Error::custom("number out of range")),
            v @ Value::Object(_) => serde_json::from_value::<FigureRange>(v)
                .map(Figure::Range)
                .map_err(|e| D::Error::custom(format!("range: {e}"))),
            other => Err(D::Error::custom(format!(
                "expected a number or {{\"min\", \"max\", \"sources\"}}, found {other}"
            ))),
        }
    }
}

/// An ISO date, `YYYY-MM-DD` or (month precision) `YYYY-MM`, taken as its first day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOf {
    pub text: String,
    pub date: Date,
}

impl AsOf {
    pub fn parse(s: &str) -> Result<AsOf, String> {
        let bad = || format!("{s:?} is not an ISO date (YYYY-MM-DD or YYYY-MM)");
        let parts: Vec<&str> = s.split('-').collect();
        let num = |p: &str, len: usize| -> Result<u32, String> {
            if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (y, m, d) = match parts.as_slice() {
            [y, m, d] => (num(y, 4)?, num(m, 2)?, num(d, 2)?),
            [y, m] => (num(y, 4)?, num(m, 2)?, 1),
            _ => return Err(bad()),
        };
        let month = time::Month::try_from(m as u8).map_err(|_| bad())?;
        let date = Date::from_calendar_date(y as i32, month, d as u8).map_err(|_| bad())?;
        Ok(AsOf {
            text: s.to_string(),
            date,
        })
    }

    /// Whole days from this date to `today` (negative: in the future).
    pub fn age_days(&self, today: Date) -> i64 {
        (today - self.date).whole_days()
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for AsOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for AsOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AsOf::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Today's date (UTC).
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// Parse a `--as-of` value (`YYYY-MM-DD`).
pub fn parse_date(s: &str) -> Result<Date, String> {
    let a = AsOf::parse(s)?;
    if a.text.len() != 10 {
        return Err(format!("{s:?}: give a full date, YYYY-MM-DD"));
    }
    Ok(a.date)
}

// ---------------------------------------------------------------------------------------------
// Entries

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
    /// Accelerator or CPU id (or alias) of the devices in the offer.
    pub device: String,
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

// ---------------------------------------------------------------------------------------------
// Errors

/// A field of an entry that does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn within(self, prefix: &str) -> Self {
        FieldError {
            field: if self.field.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", self.field)
            },
            reason: self.reason,
        }
    }
}

/// Loading a spec or price document failed; names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {file}: {cause}")]
    Read { file: String, cause: std::io::Error },
    #[error("{file}: not valid JSON: {cause}")]
    Syntax {
        file: String,
        cause: serde_json::Error,
    },
    #[error("{file}: field `{field}`: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
}

impl SpecError {
    fn field(file: &str, e: FieldError) -> SpecError {
        SpecError::Field {
            file: file.to_string(),
            field: e.field,
            reason: e.reason,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation of single entries

fn check_id(field: &str, id: &str) -> Result<(), FieldError> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
        });
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{id:?} is not an id (lowercase letters, digits, '-', '.', '_')"),
        ))
    }
}

fn check_source(source: &str) -> Result<(), FieldError> {
    let s = source.trim();
    if s.is_empty() || s == "-" {
        return Err(FieldError::new(
            "source",
            "missing: every entry names its source",
        ));
    }
    Ok(())
}

fn check_peaks(
    peaks: &BTreeMap<SpecDType, Peak>,
    sparse: &BTreeMap<SpecDType, f64>,
    field: &str,
) -> Result<(), FieldError> {
    for (dt, p) in peaks {
        let f = format!("{field}.{}.dense", dt.name());
        p.dense.check(&f, true)?;
        if let Some(&s) = sparse.get(dt) {
            if p.dense.upper() >= s {
                return Err(FieldError::new(
                    f,
                    format!(
                        "{} is not below the published sparse figure {} for {}: a sparse \
                         figure used as dense",
                        p.dense,
                        fmt_num(s),
                        dt.name()
                    ),
                ));
            }
        }
    }
    for (dt, s) in sparse {
        if !(s.is_finite() && *s > 0.0) {
            return Err(FieldError::new(
                format!("sparse_tflops.{}", dt.name()),
                format!("{s} is not a finite number > 0"),
            ));
        }
    }
    Ok(())
}

fn check_pci(p: &PciIds, i: usize) -> Result<(), FieldError> {
    let hex = |s: &str| {
        s.strip_prefix("0x")
            .is_some_and(|h| h.len() == 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !hex(&p.vendor_id) {
        return Err(FieldError::new(
            format!("identify.pci[{i}].vendor_id"),
            format!("{:?} is not a 16-bit hex id (0x10de)", p.vendor_id),
        ));
    }
    for (j, d) in p.device_ids.iter().enumerate() {
        if !hex(d) {
            return Err(FieldError::new(
                format!("identify.pci[{i}].device_ids[{j}]"),
                format!("{d:?} is not a 16-bit hex id (0x2330)"),
            ));
        }
    }
    Ok(())
}

/// Parse `0x10de`.
pub fn parse_hex_id(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl Accelerator {
    /// The entry's own invariants (ids, source, dense peaks, figures, ceilings, PCI ids).
    pub fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        for (i, a) in self.aliases.iter().enumerate() {
            check_id(&format!("aliases[{i}]"), a)?;
        }
        check_source(&self.source)?;
        if self.unit == Unit::Core {
            return Err(FieldError::new(
                "unit",
                "accelerators are per chip or per instance (CPUs go under `cpus`)",
            ));
        }
        check_peaks(&self.peak_tflops, &self.sparse_tflops, "peak_tflops")?;
        for (name, f) in [
            ("memory_gb", &self.memory_gb),
            ("mem_bw_tbs", &self.mem_bw_tbs),
            ("tdp_w", &self.tdp_w),
        ] {
            if let Some(f) = f {
                f.check(name, true)?;
            }
        }
        for (i, c) in self.measured_ceilings.iter().enumerate() {
            let field = format!("measured_ceilings[{i}]");
            check_source(&c.source).map_err(|e| e.within(&field))?;
            if !(c.tflops.is_finite() && c.tflops > 0.0) {
                return Err(FieldError::new(
                    format!("{field}.tflops"),
                    format!("{} is not a finite number > 0", c.tflops),
                ));
            }
            match self.peak_tflops.get(&c.dtype) {
                Some(p) if c.tflops <= p.dense.upper() => {}
                Some(p) => {
                    return Err(FieldError::new(
                        format!("{field}.tflops"),
                        format!(
                            "{} is above the dense {} peak {}",
                            fmt_num(c.tflops),
                            c.dtype.name(),
                            p.dense
                        ),
                    ))
                }
                None => {
                    return Err(FieldError::new(
                        format!("{field}.dtype"),
                        format!("no {} peak to measure against", c.dtype.name()),
                    ))
                }
            }
        }
        for (i, p) in self.identify.pci.iter().enumerate() {
            check_pci(p, i)?;
        }
        Ok(())
    }

    /// Dense peak GFLOP/s for a dtype (upper value of a range).
    pub fn peak_gflops(&self, dt: SpecDType) -> Option<f64> {
        self.peak_tflops.get(&dt).map(|p| p.dense.upper() * 1e3)
    }

    /// Memory bandwidth, GB/s (upper value of a range).
    pub fn bw_gbs(&self) -> Option<f64> {
        self.mem_bw_tbs.as_ref().map(|f| f.upper() * 1e3)
    }

    /// The published measured matmul ceiling for a dtype, GFLOP/s.
    pub fn published_ceiling(&self, dt: SpecDType) -> Option<&PublishedCeiling> {
        self.measured_ceilings
            .iter()
            .find(|c| c.dtype == dt && c.kind == CeilingKind::MaxAchievableMatmul)
    }
}

impl Cpu {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        for (i, a) in self.aliases.iter().enumerate() {
            check_id(&format!("aliases[{i}]"), a)?;
        }
        check_source(&self.source)?;
        if self.unit != Unit::Core {
            return Err(FieldError::new("unit", "CPU peaks are per core"));
        }
        check_peaks(
            &self.peak_gflops_per_core,
            &BTreeMap::new(),
            "peak_gflops_per_core",
        )?;
        if let Some(c) = self.clock_ghz {
            if !(c.is_finite() && c > 0.0) {
                return Err(FieldError::new(
                    "clock_ghz",
                    format!("{c} is not a finite number > 0"),
                ));
            }
        }
        Ok(())
    }

    /// Dense peak GFLOP/s per core for a dtype.
    pub fn peak_gflops_per_core(&self, dt: SpecDType) -> Option<f64> {
        self.peak_gflops_per_core.get(&dt).map(|p| p.dense.upper())
    }
}

impl Offer {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        check_source(&self.source)?;
        if self.instance.trim().is_empty() {
            return Err(FieldError::new("instance", "is empty"));
        }
        let lower = self.instance.to_ascii_lowercase();
        for word in ["capacity block", "on-demand", "spot", "reserved"] {
            if lower.contains(word) {
                return Err(FieldError::new(
                    "instance",
                    format!(
                        "{:?} carries a pricing model in its name: use `pricing_model` and an \
                         offer of its own",
                        self.instance
                    ),
                ));
            }
        }
        if self.device_count == 0 {
            return Err(FieldError::new("device_count", "must be at least 1"));
        }
        if self.usd_per_hour.is_some() && self.usd_per_device_hour.is_some() {
            return Err(FieldError::new(
                "usd_per_device_hour",
                "give either usd_per_hour (whole offer) or usd_per_device_hour, not both",
            ));
        }
        if let Some(p) = &self.usd_per_hour {
            p.check("usd_per_hour", true)?;
        }
        if let Some(p) = &self.usd_per_device_hour {
            p.check("usd_per_device_hour", true)?;
        }
        if let Some(v) = self.vcpus {
            if v < self.device_count && v > 0 {
                // CPU instances: device_count is physical cores, never more than vCPUs.
                return Err(FieldError::new(
                    "vcpus",
                    format!("{v} vCPUs but {} physical cores", self.device_count),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The database

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `embedded specs (...)` or the user file's path.
    pub file: String,
    /// From a user file (`--specs`, `--prices`)?
    pub user: bool,
}

/// What a name resolves to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Entry<'a> {
    Accelerator(&'a Accelerator),
    Cpu(&'a Cpu),
    Offer(&'a Offer),
}

impl Entry<'_> {
    pub fn id(&self) -> &str {
        match self {
            Entry::Accelerator(a) => &a.id,
            Entry::Cpu(c) => &c.id,
            Entry::Offer(o) => &o.id,
        }
    }
}

/// Options of loading (dates are judged against `as_of`, so tests are deterministic).
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The report's date (`--as-of`, default today).
    pub as_of: Date,
    /// Prices older than this many days are flagged.
    pub max_price_age_days: i64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            as_of: today(),
            max_price_age_days: DEFAULT_MAX_PRICE_AGE_DAYS,
        }
    }
}

/// The merged, validated database.
#[derive(Clone, Debug)]
pub struct Database {
    pub accelerators: Vec<Accelerator>,
    pub cpus: Vec<Cpu>,
    pub offers: Vec<Offer>,
    /// Lowercased alias → id.
    aliases: BTreeMap<String, String>,
    /// id → origin.
    pub origins: BTreeMap<String, Origin>,
    /// id → JSON path of the entry in its file (`offers[3]`), for cross-reference errors.
    paths: BTreeMap<String, String>,
    pub options: LoadOptions,
}

fn parse_doc<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    schema: &str,
) -> Result<T, SpecError> {
    let value: Value = serde_json::from_str(text).map_err(|cause| SpecError::Syntax {
        file: file.to_string(),
        cause,
    })?;
    match value.get("schema") {
        Some(Value::String(s)) if s == schema => {}
        other => {
            return Err(SpecError::Field {
                file: file.to_string(),
                field: "schema".into(),
                reason: format!(
                    "is {}, expected \"{schema}\"",
                    other.map(|v| v.to_string()).unwrap_or("missing".into())
                ),
            })
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        SpecError::Field {
            file: file.to_string(),
            field: if field == "." { String::new() } else { field },
            reason: e.into_inner().to_string(),
        }
    })
}

/// Parse and check a spec document on its own (no cross-references).
pub fn parse_specs(
    text: &str,
    file: &str,
    user: bool,
    opts: &LoadOptions,
) -> Result<SpecsDoc, SpecError> {
    let doc: SpecsDoc = parse_doc(text, file, SPECS_SCHEMA)?;
    let mut seen = BTreeSet::new();
    for (i, a) in doc.accelerators.iter().enumerate() {
        let at = format!("accelerators[{i}]");
        a.validate()
            .map_err(|e| SpecError::field(file, e.within(&at)))?;
        check_date(&a.as_of, user, opts).map_err(|e| SpecError::field(file, e.within(&at)))?;
        if !seen.insert(a.id.clone()) {
            return Err(SpecError::field(
                file,
                FieldError::new(format!("{at}.id"), format!("duplicate id {:?}", a.id)),
            ));
        }
    }
    for (i, c) in doc.cpus.iter().enumerate() {
        let at = format!("cpus[{i}]");
        c.validate()
            .map_err(|e| SpecError::field(file, e.within(&at)))?;
        check_date(&c.as_of, user, opts).map_err(|e| SpecError::field(file, e.within(&at)))?;
        if !seen.insert(c.id.clone()) {
            return Err(SpecError::field(
                file,
                FieldError::new(format!("{at}.id"), format!("duplicate id {:?}", c.id)),
            ));
        }
    }
    Ok(doc)
}

/// Parse and check a price document on its own (device ids are checked on merging).
pub fn parse_prices(
    text: &str,
    file: &str,
    user: bool,
    opts: &LoadOptions,
) -> Result<PricesDoc, SpecError> {
    let doc: PricesDoc = parse_doc(text, file, PRICES_SCHEMA)?;
    let mut seen = BTreeSet::new();
    for (i, o) in doc.offers.iter().enumerate() {
        let at = format!("offers[{i}]");
        o.validate()
            .map_err(|e| SpecError::field(file, e.within(&at)))?;
        check_date(&o.as_of, user, opts).map_err(|e| SpecError::field(file, e.within(&at)))?;
        if !seen.insert(o.id.clone()) {
            return Err(SpecError::field(
                file,
                FieldError::new(format!("{at}.id"), format!("duplicate id {:?}", o.id)),
            ));
        }
    }
    Ok(doc)
}

/// A user file's date may not lie after the report's date. (Embedded entries newer than a
/// back-dated `--as-of` are shown, flagged in the age column.)
fn check_date(as_of: &AsOf, user: bool, opts: &LoadOptions) -> Result<(), FieldError> {
    if user && as_of.date > opts.as_of {
        return Err(FieldError::new(
            "as_of",
            format!(
                "{} is in the future (the report's date is {})",
                as_of.text, opts.as_of
            ),
        ));
    }
    Ok(())
}

impl Database {
    /// The embedded database alone, judged at `opts.as_of`.
    pub fn embedded(opts: &LoadOptions) -> Result<Database, SpecError> {
        Database::load(&[], &[], opts)
    }

    /// The embedded documents, then user spec files, then user price files (later entries with
    /// an existing id replace it). Every error names its file and field.
    pub fn load(
        spec_files: &[PathBuf],
        price_files: &[PathBuf],
        opts: &LoadOptions,
    ) -> Result<Database, SpecError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|cause| SpecError::Read {
                file: p.display().to_string(),
                cause,
            })
        };
        let mut specs = vec![(EMBEDDED_SPECS.to_string(), false, SPECS_JSON.to_string())];
        for p in spec_files {
            specs.push((p.display().to_string(), true, read(p)?));
        }
        let mut prices = vec![(EMBEDDED_PRICES.to_string(), false, PRICES_JSON.to_string())];
        for p in price_files {
            prices.push((p.display().to_string(), true, read(p)?));
        }
        let specs: Vec<(String, bool, SpecsDoc)> = specs
            .into_iter()
            .map(|(f, user, t)| parse_specs(&t, &f, user, opts).map(|d| (f, user, d)))
            .collect::<Result<_, _>>()?;
        let prices: Vec<(String, bool, PricesDoc)> = prices
            .into_iter()
            .map(|(f, user, t)| parse_prices(&t, &f, user, opts).map(|d| (f, user, d)))
            .collect::<Result<_, _>>()?;
        Database::merge(specs, prices, opts.clone())
    }

    /// Record where entry `id` (at field `path` of `file`) came from; refuse it when the other
    /// kind of entry (`other`) already uses the id (`taken`).
    fn note_entry(
        &mut self,
        file: &str,
        user: bool,
        id: &str,
        path: String,
        taken: bool,
        other: &str,
    ) -> Result<(), SpecError> {
        if taken {
            return Err(SpecError::field(
                file,
                FieldError::new(
                    format!("{path}.id"),
                    format!("{id:?} is already {other} id"),
                ),
            ));
        }
        self.origins.insert(
            id.to_string(),
            Origin {
                file: file.to_string(),
                user,
            },
        );
        self.paths.insert(id.to_string(), path);
        Ok(())
    }

    /// Merge parsed documents (in order; a later id replaces an earlier one) and check the
    /// cross-references: unique ids and aliases across everything, offer devices that exist.
    pub fn merge(
        specs: Vec<(String, bool, SpecsDoc)>,
        prices: Vec<(String, bool, PricesDoc)>,
        options: LoadOptions,
    ) -> Result<Database, SpecError> {
        let mut db = Database {
            accelerators: Vec::new(),
            cpus: Vec::new(),
            offers: Vec::new(),
            aliases: BTreeMap::new(),
            origins: BTreeMap::new(),
            paths: BTreeMap::new(),
            options,
        };
        for (file, user, doc) in specs {
            for (i, a) in doc.accelerators.into_iter().enumerate() {
                let taken = db.cpus.iter().any(|c| c.id == a.id);
                db.note_entry(
                    &file,
                    user,
                    &a.id,
                    format!("accelerators[{i}]"),
                    taken,
                    "a CPU",
                )?;
                upsert(&mut db.accelerators, a, |e| &e.id, |e| &mut e.aliases);
            }
            for (i, c) in doc.cpus.into_iter().enumerate() {
                let taken = db.accelerators.iter().any(|a| a.id == c.id);
                db.note_entry(
                    &file,
                    user,
                    &c.id,
                    format!("cpus[{i}]"),
                    taken,
                    "an accelerator",
                )?;
                upsert(&mut db.cpus, c, |e| &e.id, |e| &mut e.aliases);
            }
        }
        for (file, user, doc) in prices {
            for (i, o) in doc.offers.into_iter().enumerate() {
                if db.accelerators.iter().any(|a| a.id == o.id)
                    || db.cpus.iter().any(|c| c.id == o.id)
                {
                    return Err(SpecError::field(
                        &file,
                        FieldError::new(
                            format!("offers[{i}].id"),
                            format!("{:?} is already a spec id", o.id),
                        ),
                    ));
                }
                db.origins.insert(
                    o.id.clone(),
                    Origin {
                        file: file.clone(),
                        user,
                    },
                );
                db.paths.insert(o.id.clone(), format!("offers[{i}]"));
                match db.offers.iter_mut().find(|x| x.id == o.id) {
                    Some(x) => *x = o,
                    None => db.offers.push(o),
                }
            }
        }
        db.build_aliases()?;
        // Offers point at devices that exist; their ids resolve through aliases.
        let mut resolved = Vec::new();
        for o in &db.offers {
            let id = match db.resolve(&o.device) {
                Some(Entry::Accelerator(a)) => a.id.clone(),
                Some(Entry::Cpu(c)) => c.id.clone(),
                _ => {
                    return Err(SpecError::Field {
                        file: db.origins[&o.id].file.clone(),
                        field: format!("{}.device", db.paths[&o.id]),
                        reason: format!("{:?} is not an accelerator or CPU id or alias", o.device),
                    })
                }
            };
            resolved.push(id);
        }
        for (o, id) in db.offers.iter_mut().zip(resolved) {
            o.device = id;
        }
        Ok(db)
    }

    fn build_aliases(&mut self) -> Result<(), SpecError> {
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        for id in self
            .accelerators
            .iter()
            .map(|a| &a.id)
            .chain(self.cpus.iter().map(|c| &c.id))
            .chain(self.offers.iter().map(|o| &o.id))
        {
            ids.insert(id.to_ascii_lowercase(), id.clone());
        }
        let mut aliases = BTreeMap::new();
        let entries: Vec<(String, Vec<String>)> = self
            .accelerators
            .iter()
            .map(|a| (a.id.clone(), a.aliases.clone()))
            .chain(self.cpus.iter().map(|c| (c.id.clone(), c.aliases.clone())))
            .collect();
        for (id, list) in entries {
            for (i, alias) in list.iter().enumerate() {
                let key = alias.to_ascii_lowercase();
                let clash = ids
                    .get(&key)
                    .filter(|other| **other != id)
                    .cloned()
                    .or_else(|| {
                        aliases
                            .get(&key)
                            .filter(|other: &&String| **other != id)
                            .cloned()
                    });
                if let Some(other) = clash {
                    return Err(SpecError::Field {
                        file: self.origins[&id].file.clone(),
                        field: format!("{}.aliases[{i}]", self.paths[&id]),
                        reason: format!("alias {alias:?} already names {other:?}"),
                    });
                }
                aliases.insert(key, id.clone());
            }
        }
        self.aliases = aliases;
        Ok(())
    }

    /// Resolve an id or alias (case-insensitive).
    pub fn resolve(&self, name: &str) -> Option<Entry<'_>> {
        let key = name.trim().to_ascii_lowercase();
        let id = self.aliases.get(&key).cloned().unwrap_or(key);
        if let Some(a) = self
            .accelerators
            .iter()
            .find(|a| a.id.eq_ignore_ascii_case(&id))
        {
            return Some(Entry::Accelerator(a));
        }
        if let Some(c) = self.cpus.iter().find(|c| c.id.eq_ignore_ascii_case(&id)) {
            return Some(Entry::Cpu(c));
        }
        self.offers
            .iter()
            .find(|o| o.id.eq_ignore_ascii_case(&id))
            .map(Entry::Offer)
    }

    /// The alias table: alias → id.
    pub fn aliases(&self) -> &BTreeMap<String, String> {
        &self.aliases
    }

    pub fn accelerator(&self, name: &str) -> Option<&Accelerator> {
        match self.resolve(name)? {
            Entry::Accelerator(a) => Some(a),
            _ => None,
        }
    }

    pub fn cpu(&self, name: &str) -> Option<&Cpu> {
        match self.resolve(name)? {
            Entry::Cpu(c) => Some(c),
            _ => None,
        }
    }

    pub fn offer(&self, id: &str) -> Option<&Offer> {
        match self.resolve(id)? {
            Entry::Offer(o) => Some(o),
            _ => None,
        }
    }

    /// Offers of a device (by resolved id).
    pub fn offers_for<'a>(&'a self, device_id: &'a str) -> impl Iterator<Item = &'a Offer> + 'a {
        self.offers.iter().filter(move |o| o.device == device_id)
    }

    /// The price a projection for a chip uses when none is named (`--targets CHIP@OFFER`): an
    /// offer from a user price file first (file order), else the embedded offer with a single
    /// price ranked by status (confirmed first), then on-demand before other models, then the
    /// lowest price per chip-hour. Price ranges are never picked.
    pub fn reference_offer<'a>(&'a self, device_id: &'a str) -> Option<&'a Offer> {
        let priced = || {
            self.offers_for(device_id)
                .filter(|o| o.point_price().is_some())
        };
        if let Some(o) = priced().find(|o| self.origins.get(&o.id).is_some_and(|x| x.user)) {
            return Some(o);
        }
        priced().min_by(|a, b| {
            let key = |o: &Offer| {
                (
                    o.status,
                    o.pricing_model != PricingModel::OnDemand,
                    o.device_price().map(|p| p.upper()).unwrap_or(f64::INFINITY),
                )
            };
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0)
                .then(ka.1.cmp(&kb.1))
                .then(ka.2.total_cmp(&kb.2))
        })
    }

    /// Days since the offer's date, counted from `--as-of`, and whether that is past the limit.
    pub fn price_age(&self, o: &Offer) -> (i64, bool) {
        let age = o.as_of.age_days(self.options.as_of);
        (age, age > self.options.max_price_age_days || age < 0)
    }

    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.get(id)
    }
}

/// Add `entry` to `list`, or replace the entry with the same id. An override keeps the replaced
/// entry's aliases unless it lists its own.
fn upsert<T>(
    list: &mut Vec<T>,
    mut entry: T,
    id: fn(&T) -> &str,
    aliases: fn(&mut T) -> &mut Vec<String>,
) {
    match list.iter_mut().find(|x| id(x) == id(&entry)) {
        Some(x) => {
            if aliases(&mut entry).is_empty() {
                *aliases(&mut entry) = std::mem::take(aliases(x));
            }
            *x = entry;
        }
        None => list.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions {
            as_of: parse_date("2026-11-26").unwrap(),
            max_price_age_days: 365,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            AsOf::parse("2026-01-21").unwrap().date.to_string(),
            "2026-01-21"
        );
        assert_eq!(
            AsOf::parse("2024-12").unwrap().date.to_string(),
            "2024-12-01"
        );
        for bad in [
            "2024",
            "2024-13",
            "2024-02-30",
            "24-01-01",
            "~2024-12",
            "2024-1-1",
            "",
        ] {
            assert!(AsOf::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_date("2024-12").is_err());
        let a = AsOf::parse("2026-01-21").unwrap();
        assert_eq!(a.age_days(parse_date("2026-01-31").unwrap()), 10);
    }

    #[test]
    fn figure_forms() {
        let f: Figure = serde_json::from_str("4.9").unwrap();
        assert_eq!(f.upper(), 4.9);
        let r: Figure =
            serde_json::from_str(r#"{"min": 4.7, "max": 4.9, "sources": ["a", "b"]}"#).unwrap();
        assert_eq!((r.lower(), r.upper()), (4.7, 4.9));
        assert_eq!(r.to_string(), "4.7–4.9");
        assert!(serde_json::from_str::<Figure>(r#""4.9""#).is_err());
        assert!(serde_json::from_str::<Figure>(r#"{"min": 1, "max": 2}"#).is_err());
        assert_eq!(fmt_num(989.0), "989");
        assert_eq!(fmt_num(0.8048), "0.8048");
    }

    #[test]
    fn embedded_loads() {
        let db = Database::embedded(&opts()).unwrap();
        assert!(db.accelerators.len() >= 20);
        assert!(db.cpus.len() >= 10);
        assert!(db.offers.len() >= 40);
        assert_eq!(db.accelerator("TRN3").unwrap().id, "aws-trainium3");
        assert_eq!(db.accelerator("h100-sxm").unwrap().id, "nvidia-h100-sxm");
    }
}
