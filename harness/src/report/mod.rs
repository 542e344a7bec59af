//! Reports: one or more run files normalized against the spec and price database
//! ([`crate::specs`], [`crate::normalize`]), in five formats (terminal table, Markdown, CSV,
//! JSON, self-contained HTML with SVG charts).
//!
//! [`build`] turns runs into a [`Report`] — a plain data model, serialized as-is for the JSON
//! format (`perfledger.report/1`, documented in `results/README.md`) — and each renderer only
//! lays that model out. Rules the model enforces (DESIGN.md):
//!
//! - Every row keeps its kind (`measured`, `peer`, `imported`, `projected`).
//! - Only `ok` rows carry a speed; rows with another status are listed with it, never ranked.
//!   Unverified rows (`verification.method` `none`) are shown but not ranked.
//! - Per workload (op, shape, input dtype), per device (a run's CPU, one of its GPUs, or an
//!   imported device) the best verified row is ranked, naming its kernel; devices are ordered by
//!   GFLOP per $ (priced first), then GFLOP/s. Projected rows are listed separately.
//! - No spec match → the spec columns are n/a; a software adapter is never normalized.

use crate::ceiling::{self, Location};
use crate::env::{InstanceInfo, PriceInfo};
use crate::normalize::{
    self, break_even_usd_per_hour, perf_per_dollar, Bound, Interval, PerfPerDollar, Projection,
    Roof,
};
use crate::runfile::{Device, MeasuredCeilings, Row, RowKind, RunFile, Shape, Status};
use crate::specs::matching::{self, DeviceMatch, SpecRef};
use crate::specs::{fmt_num, Database, Offer, SpecDType};
use perfledger_kernels::kernel::{Backend, Op};
use serde::Serialize;
use std::collections::BTreeMap;

pub mod charts;
pub mod csv;
pub mod html;
pub mod layout;
pub mod llm;
pub mod md;
pub mod table;

/// Schema string of the JSON report.
pub const REPORT_SCHEMA: &str = "perfledger.report/1";

/// The default projection targets (`--targets` adds with `+`, or replaces).
pub const DEFAULT_TARGETS: [&str; 9] = [
    "aws-trainium3",
    "aws-trainium2",
    "nvidia-h100-sxm",
    "nvidia-h200-sxm",
    "nvidia-b200",
    "amd-mi300x",
    "amd-mi355x",
    "google-tpu-v6e",
    "nvidia-l4",
];

/// The conventions every report states.
pub const FLOP_CONVENTION: &str = "FLOPs are useful FLOPs: matmul 2·M·N·K (per batch); \
     attention forward 4·D per unmasked (q, k) pair per head (causal counts only the unmasked \
     pairs; exp/softmax not counted). Minimal bytes: each input read once, each output written \
     once. AI = FLOPs / minimal bytes.";
pub const STATISTIC: &str = "GFLOP/s = useful FLOPs / median time per iteration; [lo, hi] is \
     the bootstrap 95% CI of the median, carried into every per-dollar figure.";
pub const PERF_PER_DOLLAR: &str = "USD per hour = instance price × share used (1 of 8 GPUs → \
     1/8; CPU runs: the whole instance, with a per-used-physical-core figure secondary). GFLOP \
     per $ = GFLOP/s × 3600 / USD per hour; $ per PFLOP = 10⁶ / GFLOP per $.";
pub const RANKING: &str = "Per workload (op, shape, input dtype) and per device, the best \
     verified ok row is ranked (by GFLOP per $ where priced, then GFLOP/s), naming its kernel and \
     kind. Measured, peer and imported rows are ranked together; projected rows are listed \
     separately and are never measurements. Rows that are not ok or not verified are listed, \
     never ranked.";
pub const PEAKS: &str = "Peaks are dense (no structured sparsity). Where published figures \
     conflict, the database keeps the range with its sources and computations use the upper \
     value (a ceiling stays an upper bound; a % of peak is not overstated).";

// ---------------------------------------------------------------------------------------------
// The model

/// A whole report (the JSON format serializes exactly this).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// The date prices are aged against (`--as-of`, default today).
    pub as_of: String,
    pub conventions: Conventions,
    pub runs: Vec<RunInfo>,
    /// Every row of every run, in run order.
    pub rows: Vec<RowReport>,
    pub workloads: Vec<WorkloadReport>,
    pub targets: Vec<TargetInfo>,
    pub efficiency: Option<f64>,
    pub llm: Vec<llm::LlmEstimate>,
    pub sweeps: Vec<Sweep>,
    pub sources: Vec<SourceRef>,
    pub database: DatabaseInfo,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Conventions {
    pub flops: &'static str,
    pub statistic: &'static str,
    pub perf_per_dollar: &'static str,
    pub ranking: &'static str,
    pub peaks: &'static str,
}

/// What a device was matched to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchInfo {
    pub id: String,
    pub name: String,
    pub how: String,
}

impl From<&DeviceMatch<'_>> for MatchInfo {
    fn from(m: &DeviceMatch<'_>) -> Self {
        MatchInfo {
            id: m.spec.id().to_string(),
            name: m.spec.name().to_string(),
            how: m.how.clone(),
        }
    }
}

/// A GPU adapter of a run and its match.
#[derive(Clone, Debug, Serialize)]
pub struct GpuMatchInfo {
    pub index: usize,
    pub name: String,
    pub software: bool,
    pub spec: Option<MatchInfo>,
    pub no_match: Option<String>,
}

/// The instance price a run is priced with, and where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct InstancePrice {
    pub usd_per_hour: f64,
    /// `--price (cli)`, or the offer id.
    pub source: String,
    pub offer: Option<String>,
    pub provider: Option<String>,
    pub pricing_model: Option<String>,
    pub region: Option<String>,
    pub status: Option<String>,
    pub as_of: Option<String>,
    pub age_days: Option<i64>,
    /// Older than the limit (or dated after `--as-of`).
    pub stale: bool,
    /// Units of the device in the instance (GPUs, or physical cores).
    pub units: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub index: usize,
    pub file: String,
    pub run_id: String,
    /// Short label used beside every row (`run 1 (vm, c7i.large)`).
    pub label: String,
    pub created: String,
    pub hostname: Option<String>,
    pub suite: String,
    pub complete: bool,
    /// `version @commit` (`, dirty` when built from a modified tree).
    pub harness: String,
    pub cpu_model: Option<String>,
    pub threads_used: usize,
    pub physical_cores: Option<u32>,
    pub vcpus: Option<u32>,
    pub instance: Option<InstanceInfo>,
    pub price: Option<InstancePrice>,
    pub cpu_spec: Option<MatchInfo>,
    pub cpu_no_match: Option<String>,
    pub gpus: Vec<GpuMatchInfo>,
    pub measured_ceilings: MeasuredCeilings,
}

/// A row normalized against one set of roofs.
#[derive(Clone, Debug, Serialize)]
pub struct Normalized {
    /// Peak for the row's dtype, GFLOP/s (for the part of the device used).
    pub peak_gflops: f64,
    /// What the peak is (`bf16 dense, 2 cores × 118.4`).
    pub peak_basis: String,
    pub bw_gbs: Option<f64>,
    pub attainable_gflops: Option<f64>,
    pub bound: Option<Bound>,
    pub pct_of_peak: f64,
    /// `None` also when the row is above its measured ceiling (then `probe_wrong` says so).
    pub pct_of_attainable: Option<f64>,
    /// Measured ceilings only: the row runs above [`ceiling::ABOVE_CEILING`] of its probe, so the
    /// probe is not a ceiling for it (the warning, naming the row and the probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_wrong: Option<String>,
}

/// The price a row is charged, and its perf per dollar.
#[derive(Clone, Debug, Serialize)]
pub struct RowPrice {
    /// USD per hour of the share used.
    pub usd_per_hour: f64,
    /// `whole instance`, `1 of 8 GPUs`, ...
    pub share: String,
    pub instance: InstancePrice,
    pub perf: PerfPerDollar,
}

/// The secondary CPU figure: priced per used physical core.
#[derive(Clone, Debug, Serialize)]
pub struct PerCore {
    pub cores_used: u32,
    pub cores_total: u32,
    pub usd_per_hour: f64,
    pub perf: PerfPerDollar,
}

/// One row of a run, normalized.
#[derive(Clone, Debug, Serialize)]
pub struct RowReport {
    pub index: usize,
    pub run: usize,
    pub run_label: String,
    pub kind: RowKind,
    pub status: Status,
    pub rankable: bool,
    /// Why the row is not ranked (status, unverified, ...).
    pub not_ranked: Option<String>,
    pub device: String,
    /// The hardware the row ran on within its run (`cpu`, `gpu0`, or the imported device).
    pub device_key: String,
    pub software: bool,
    pub backend: Option<Backend>,
    /// The kernel id, or the tool for external rows.
    pub kernel: String,
    pub case: Option<String>,
    pub op: Op,
    pub shape: String,
    pub precision: String,
    pub dtype: SpecDType,
    pub workload: String,
    pub flops: u64,
    pub min_bytes: u64,
    pub intensity: f64,
    /// Only on `ok` rows.
    pub gflops: Option<Interval>,
    pub median_s: Option<f64>,
    pub time_ci95_s: Option<[f64; 2]>,
    pub verification: String,
    pub spec: Option<MatchInfo>,
    /// Why there are no spec columns.
    pub spec_na: Option<String>,
    pub published: Option<Normalized>,
    pub measured: Option<Normalized>,
    /// Measured peak / published peak (the gap between the two ceilings).
    pub ceiling_gap: Option<f64>,
    pub price: Option<RowPrice>,
    pub per_core: Option<PerCore>,
    pub provenance: Option<String>,
    pub message: Option<String>,
}

/// A ranked device of a workload.
#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub rank: usize,
    /// Index into `rows`.
    pub row: usize,
    /// The device, with its run (`AMD EPYC (2 threads) — run 1`).
    pub device: String,
}

/// A chip projection for one workload, with its price and break-even.
#[derive(Clone, Debug, Serialize)]
pub struct ProjectedRow {
    /// Always `projected`.
    pub kind: RowKind,
    pub chip: String,
    pub chip_name: String,
    pub projection: Option<Projection>,
    /// Why there is no projection (e.g. no published peak for the dtype).
    pub error: Option<String>,
    pub price: Option<TargetPrice>,
    pub ceiling_perf: Option<PerfPerDollar>,
    pub realistic_perf: Option<PerfPerDollar>,
    pub break_even: Option<BreakEven>,
}

/// The break-even price per chip-hour of a projection.
#[derive(Clone, Debug, Serialize)]
pub struct BreakEven {
    pub usd_per_chip_hour: Interval,
    /// `realistic` or `ceiling`.
    pub from: &'static str,
    /// The sentence printed with the figure.
    pub wording: String,
    /// The row whose perf per dollar it matches.
    pub versus_row: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    pub key: String,
    pub op: Op,
    pub shape: String,
    pub dtype: SpecDType,
    pub flops: u64,
    pub min_bytes: u64,
    pub intensity: f64,
    /// `GFLOP per $` when any ranked row is priced, else `GFLOP/s`.
    pub ranked_by: &'static str,
    pub ranking: Vec<Ranked>,
    /// Verified rows that were not their device's best.
    pub also_verified: Vec<usize>,
    pub not_ranked: Vec<usize>,
    /// The best GFLOP per $ among ranked rows.
    pub best_perf_per_dollar: Option<usize>,
    pub projections: Vec<ProjectedRow>,
}

/// The price of a projection target.
#[derive(Clone, Debug, Serialize)]
pub struct TargetPrice {
    pub offer: String,
    pub provider: String,
    pub instance: String,
    pub pricing_model: String,
    pub region: Option<String>,
    pub status: String,
    pub usd_per_chip_hour: f64,
    pub as_of: String,
    pub age_days: i64,
    pub stale: bool,
    /// Chosen by `--targets CHIP@OFFER`, from a user price file, or by the default rule.
    pub chosen_by: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetInfo {
    pub chip: String,
    pub name: String,
    pub price: Option<TargetPrice>,
    /// Offers without a single price (ranges) or not chosen, for the reader.
    pub note: Option<String>,
}

/// `(x, GFLOP/s median, lo, hi)` of a scaling curve.
pub type SweepPoint = (u64, f64, f64, f64);

/// A scaling curve: one kernel on one device over a case family (`sweep-square-*`).
#[derive(Clone, Debug, Serialize)]
pub struct Sweep {
    pub family: String,
    pub device: String,
    pub kernel: String,
    pub precision: String,
    pub points: Vec<SweepPoint>,
}

/// A spec or price entry the report used, with its source and date.
#[derive(Clone, Debug, Serialize)]
pub struct SourceRef {
    pub id: String,
    pub what: String,
    pub source: String,
    pub as_of: String,
    pub as_of_note: Option<String>,
    pub status: String,
    pub file: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DatabaseInfo {
    pub accelerators: usize,
    pub cpus: usize,
    pub offers: usize,
    pub files: Vec<String>,
    pub max_price_age_days: i64,
}

// ---------------------------------------------------------------------------------------------
// Options and targets

/// One projection target: a chip, optionally priced with a named offer.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub chip: String,
    pub offer: Option<String>,
}

/// Parse `--targets`: `a,b` replaces the defaults, `+a,+b` (or a leading `+`) adds to them.
/// Each item is `CHIP[@OFFER]` (an id or alias; the offer must be one of that chip's priced
/// offers). Unknown names are errors naming the item.
pub fn parse_targets(values: &[String], db: &Database) -> Result<Vec<Target>, String> {
    let items: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let add = items.first().is_some_and(|s| s.starts_with('+'));
    let mut out: Vec<Target> = if add || items.is_empty() {
        DEFAULT_TARGETS
            .iter()
            .map(|c| Target {
                chip: c.to_string(),
                offer: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    for item in items {
        let item = item.trim_start_matches('+');
        let (chip, offer) = match item.split_once('@') {
            Some((c, o)) => (c, Some(o)),
            None => (item, None),
        };
        let a = db.accelerator(chip).ok_or_else(|| {
            format!("--targets: {chip:?} is not an accelerator id or alias (see `perfledger specs list`)")
        })?;
        let offer = match offer {
            Some(o) => {
                let off = db
                    .offer(o)
                    .ok_or_else(|| format!("--targets: {o:?} is not an offer id"))?;
                if off.device != a.id {
                    return Err(format!(
                        "--targets: offer {:?} is for {}, not {}",
                        off.id, off.device, a.id
                    ));
                }
                if off.point_price().is_none() {
                    return Err(format!(
                        "--targets: offer {:?} has no single published price",
                        off.id
                    ));
                }
                Some(off.id.clone())
            }
            None => None,
        };
        out.retain(|t| t.chip != a.id);
        out.push(Target {
            chip: a.id.clone(),
            offer,
        });
    }
    Ok(out)
}

/// What to build.
#[derive(Clone, Debug)]
pub struct Options {
    pub targets: Vec<Target>,
    /// `--efficiency` in (0, 1]: realistic projection = efficiency × ceiling.
    pub efficiency: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            targets: DEFAULT_TARGETS
                .iter()
                .map(|c| Target {
                    chip: c.to_string(),
                    offer: None,
                })
                .collect(),
            efficiency: None,
        }
    }
}

/// A run file and the name it was given on the command line.
#[derive(Clone, Debug)]
pub struct Input {
    pub file: String,
    pub run: RunFile,
}

// ---------------------------------------------------------------------------------------------
// Building

/// Per-run matching context.
struct RunCtx<'a> {
    info: RunInfo,
    cpu: Option<DeviceMatch<'a>>,
    gpus: Vec<Result<DeviceMatch<'a>, String>>,
    offer: Option<&'a Offer>,
}

fn instance_price_from_offer(db: &Database, o: &Offer) -> Option<InstancePrice> {
    let usd = o.point_price()?;
    let (age, stale) = db.price_age(o);
    Some(InstancePrice {
        usd_per_hour: usd,
        source: format!("offer {}", o.id),
        offer: Some(o.id.clone()),
        provider: Some(o.provider.clone()),
        pricing_model: Some(o.pricing_model.name().to_string()),
        region: o.region.clone(),
        status: Some(o.status.name().to_string()),
        as_of: Some(o.as_of.text.clone()),
        age_days: Some(age),
        stale,
        units: Some(o.device_count),
    })
}

fn instance_price_from_cli(db: &Database, p: &PriceInfo) -> InstancePrice {
    let (age, stale) = match p
        .as_of
        .as_deref()
        .and_then(|s| crate::specs::AsOf::parse(s).ok())
    {
        Some(a) => {
            let age = a.age_days(db.options.as_of);
            (Some(age), age > db.options.max_price_age_days || age < 0)
        }
        None => (None, false),
    };
    InstancePrice {
        usd_per_hour: p.usd_per_hour,
        source: format!("--price ({})", p.source.as_deref().unwrap_or("cli")),
        offer: None,
        provider: None,
        pricing_model: None,
        region: None,
        status: None,
        as_of: p.as_of.clone(),
        age_days: age,
        stale,
        units: None,
    }
}

fn run_label(i: usize, run: &RunFile) -> String {
    let host = run
        .environment
        .hostname
        .as_deref()
        .unwrap_or("unknown host");
    match run
        .environment
        .instance
        .as_ref()
        .and_then(|x| x.instance_type.as_deref())
    {
        Some(t) => format!("run {} ({host}, {t})", i + 1),
        None => format!("run {} ({host})", i + 1),
    }
}

fn run_ctx<'a>(db: &'a Database, i: usize, input: &Input) -> RunCtx<'a> {
    let run = &input.run;
    let env = &run.environment;
    let offer = env
        .instance
        .as_ref()
        .and_then(|inst| matching::instance(db, inst));
    let cpu = offer
        .and_then(|o| db.cpu(&o.device))
        .map(|c| DeviceMatch {
            spec: SpecRef::Cpu(c),
            how: format!(
                "instance {} → offer {}",
                offer.map(|o| o.instance.as_str()).unwrap_or(""),
                offer.map(|o| o.id.as_str()).unwrap_or("")
            ),
        })
        .or_else(|| {
            env.cpu
                .model
                .as_deref()
                .and_then(|m| matching::by_cpu_model(db, m))
        });
    let cpu_no_match = cpu.is_none().then(|| {
        format!(
            "no spec entry for CPU {:?}{}",
            env.cpu.model.as_deref().unwrap_or("unknown"),
            match env
                .instance
                .as_ref()
                .and_then(|x| x.instance_type.as_deref())
            {
                Some(t) => format!(" or instance {t:?}"),
                None => " (no instance type: pass --instance to `run`)".into(),
            }
        )
    });
    let gpus: Vec<Result<DeviceMatch<'a>, String>> =
        env.gpus.iter().map(|g| matching::gpu(db, g)).collect();
    let price = match (&env.price, offer) {
        (Some(p), _) => Some(instance_price_from_cli(db, p)),
        (None, Some(o)) => instance_price_from_offer(db, o),
        (None, None) => None,
    };
    let info = RunInfo {
        index: i,
        file: input.file.clone(),
        run_id: run.run_id.clone(),
        label: run_label(i, run),
        created: run
            .created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        hostname: env.hostname.clone(),
        suite: run.suite.name.clone(),
        complete: run.complete,
        harness: format!(
            "perfledger {}{}{}",
            run.harness.version,
            run.harness
                .git_commit
                .as_deref()
                .map(|c| format!(" @{}", &c[..c.len().min(10)]))
                .unwrap_or_default(),
            if run.harness.git_dirty == Some(true) {
                " (dirty tree)"
            } else {
                ""
            }
        ),
        cpu_model: env.cpu.model.clone(),
        threads_used: env.cpu.threads_used,
        physical_cores: env.cpu.physical_cores,
        vcpus: env.cpu.vcpus,
        instance: env.instance.clone(),
        price,
        cpu_spec: cpu.as_ref().map(MatchInfo::from),
        cpu_no_match,
        gpus: env
            .gpus
            .iter()
            .zip(&gpus)
            .map(|(g, m)| GpuMatchInfo {
                index: g.index,
                name: g.name.clone(),
                software: g.software,
                spec: m.as_ref().ok().map(MatchInfo::from),
                no_match: m.as_ref().err().cloned(),
            })
            .collect(),
        measured_ceilings: run.measured_ceilings.clone(),
    };
    RunCtx {
        info,
        cpu,
        gpus,
        offer,
    }
}

/// A short shape string (`512x512x512`, `64x1024x512 Bt`, `h8/2 q256 kv256 d64 causal`):
/// [`Shape::short`].
pub fn shape_string(shape: &Shape) -> String {
    shape.short()
}

/// Which hardware of its run a row ran on.
enum Hw<'a> {
    Cpu,
    Gpu(usize),
    /// An imported device, matched (or not) on its own.
    External(Option<DeviceMatch<'a>>, String),
}

fn extra_str<'a>(d: &'a Device, key: &str) -> Option<&'a str> {
    d.extra.get(key).and_then(|v| v.as_str())
}

fn extra_u32(d: &Device, key: &str) -> Option<u32> {
    d.extra.get(key).and_then(|v| {
        v.as_u64()
            .map(|x| x as u32)
            .or_else(|| v.as_str().and_then(crate::specs::parse_hex_id))
    })
}

/// Match an external device: an explicit `spec` id/alias in the device object, PCI ids
/// (`vendor_id`, `device_id`), or an exact adapter name / CPU model string / spec name.
fn match_external<'a>(db: &'a Database, d: &Device) -> Result<DeviceMatch<'a>, String> {
    if d.software || matching::is_software_adapter_name(&d.name) {
        return Err(format!(
            "software adapter {:?}: never normalized against GPU specs",
            d.name
        ));
    }
    if let Some(s) = extra_str(d, "spec") {
        return match db.resolve(s) {
            Some(crate::specs::Entry::Accelerator(a)) => Ok(DeviceMatch {
                spec: SpecRef::Accelerator(a),
                how: format!("device.spec {s:?}"),
            }),
            Some(crate::specs::Entry::Cpu(c)) => Ok(DeviceMatch {
                spec: SpecRef::Cpu(c),
                how: format!("device.spec {s:?}"),
            }),
            _ => Err(format!("device.spec {s:?} is not in the spec database")),
        };
    }
    if let (Some(v), Some(dev)) = (extra_u32(d, "vendor_id"), extra_u32(d, "device_id")) {
        if let Some(m) = matching::by_pci(db, v, dev) {
            return Ok(m);
        }
    }
    if let Some(m) = matching::by_adapter_name(db, &d.name) {
        return Ok(m);
    }
    if let Some(m) = matching::by_cpu_model(db, &d.name) {
        return Ok(m);
    }
    if let Some(a) = db
        .accelerators
        .iter()
        .find(|a| matching::same_name(&a.name, &d.name))
    {
        return Ok(DeviceMatch {
            spec: SpecRef::Accelerator(a),
            how: format!("spec name {:?}", a.name),
        });
    }
    Err(format!("no spec entry matches device {:?}", d.name))
}

/// Where a row ran ([`ceiling::locate`], the rule the run summary uses too), with an external
/// device's spec match.
fn hardware<'a>(db: &'a Database, run: &RunFile, row: &Row) -> Hw<'a> {
    match ceiling::locate(Some(db), run, row) {
        Location::Cpu => Hw::Cpu,
        Location::Gpu(i) => Hw::Gpu(i),
        Location::External => Hw::External(
            match row.kind {
                RowKind::Peer => matching::by_adapter_name(db, &row.device.name),
                _ => match_external(db, &row.device).ok(),
            },
            row.device.name.clone(),
        ),
    }
}

/// The published roofs of a matched device for a dtype and the part of it a row used.
fn published_roof(
    m: &DeviceMatch<'_>,
    dtype: SpecDType,
    cores_used: Option<u32>,
) -> Option<(f64, Option<f64>, String)> {
    match m.spec {
        SpecRef::Accelerator(a) => {
            let peak = a.peak_gflops(dtype)?;
            Some((
                peak,
                a.bw_gbs(),
                format!(
                    "{} {} dense {} TFLOP/s",
                    a.name,
                    dtype.name(),
                    a.peak_tflops[&dtype].dense
                ),
            ))
        }
        SpecRef::Cpu(c) => {
            let cores = cores_used?;
            let (per_core, basis) = match c.peak_gflops_per_core(dtype) {
                Some(p) => (p, format!("{} dense", dtype.name())),
                None => (
                    c.peak_gflops_per_core(SpecDType::Fp32)?,
                    format!(
                        "no {} arithmetic: inputs converted, fp32 peak",
                        dtype.name()
                    ),
                ),
            };
            Some((
                per_core * cores as f64,
                None,
                format!(
                    "{} {basis}, {cores} cores × {} GFLOP/s",
                    c.name,
                    fmt_num(per_core)
                ),
            ))
        }
    }
}

fn normalized(gflops: f64, ai: f64, peak: f64, bw: Option<f64>, basis: String) -> Normalized {
    let (attainable, bound) = match bw {
        Some(bw) => {
            let (a, b) = Roof {
                peak_gflops: peak,
                bw_gbs: bw,
            }
            .attainable(ai);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    Normalized {
        peak_gflops: peak,
        peak_basis: basis,
        bw_gbs: bw,
        attainable_gflops: attainable,
        bound,
        pct_of_peak: normalize::pct(gflops, peak),
        pct_of_attainable: attainable.map(|a| normalize::pct(gflops, a)),
        probe_wrong: None,
    }
}

fn verification_str(row: &Row) -> String {
    match &row.verification {
        None => "none".into(),
        Some(v) if v.is_none_method() => "unverified".into(),
        Some(v) => format!(
            "{} {}",
            v.method,
            match v.verdict {
                Some(crate::runfile::Verdict::Pass) => "pass",
                Some(crate::runfile::Verdict::Fail) => "FAIL",
                None => "?",
            }
        ),
    }
}

fn not_ranked_reason(row: &Row) -> Option<String> {
    if row.status != Status::Ok {
        return Some(match &row.message {
            Some(m) => format!("{}: {m}", row.status),
            None => row.status.to_string(),
        });
    }
    if row.kind == RowKind::Projected {
        return Some("projected rows are listed separately".into());
    }
    match &row.verification {
        Some(v) if v.passed() => None,
        Some(v) if v.is_none_method() => Some("unverified (verification method none)".into()),
        _ => Some("not verified".into()),
    }
}

/// Workload key: op, shape, input dtype.
fn workload_key(op: Op, shape: &str, dtype: SpecDType) -> String {
    format!("{} {} {}", op.name(), shape, dtype.name())
}

#[allow(clippy::too_many_arguments)]
fn row_report<'a>(
    db: &'a Database,
    ctx: &RunCtx<'a>,
    run: &RunFile,
    row: &Row,
    index: usize,
    sources: &mut SourceSet,
) -> RowReport {
    let env = &run.environment;
    let hw = hardware(db, run, row);
    let dtype = SpecDType::of(row.precision.input);
    let shape = shape_string(&row.shape);
    // FLOPs and bytes from the shape by the documented conventions (never from the file's claim).
    let work = row
        .shape
        .problem()
        .ok()
        .map(|p| p.work(row.precision))
        .map(|w| (w.flops, w.min_bytes))
        .or_else(|| Some((row.flops?.useful, row.min_bytes?)))
        .unwrap_or((0, 0));
    let ai = normalize::intensity(work.0, work.1);
    let rankable = row.is_rankable() && row.kind != RowKind::Projected;
    let ok = row.status == Status::Ok;
    let gflops = if ok {
        row.gflops.map(|g| Interval::new(g.median, g.ci95))
    } else {
        None
    };
    let (device_key, spec): (String, Result<DeviceMatch<'a>, String>) = match &hw {
        Hw::Cpu => (
            "cpu".into(),
            ctx.cpu
                .clone()
                .ok_or_else(|| ctx.info.cpu_no_match.clone().unwrap_or_default()),
        ),
        Hw::Gpu(i) => (
            format!("gpu{i}"),
            if row.device.software {
                Err(format!(
                    "software adapter {:?}: never normalized against GPU specs",
                    row.device.name
                ))
            } else {
                ctx.gpus
                    .get(*i)
                    .cloned()
                    .unwrap_or_else(|| Err(format!("GPU {i} is not in the run's environment")))
            },
        ),
        Hw::External(m, name) => (
            format!("external:{name}"),
            match m {
                Some(m) => Ok(m.clone()),
                None => match_external(db, &row.device),
            },
        ),
    };
    if let Ok(m) = &spec {
        sources.spec(db, m.spec.id());
    }
    let cores_used = match hw {
        Hw::Cpu => normalize::used_physical_cores(
            env.cpu.threads_used.max(1),
            env.cpu.smt,
            ctx.offer
                .filter(|o| db.cpu(&o.device).is_some())
                .map(|o| o.device_count)
                .or(env.cpu.physical_cores),
        ),
        _ => extra_u32(&row.device, "chips").or(Some(1)),
    };
    let mut published = None;
    let mut measured = None;
    let mut ceiling_gap = None;
    let mut price = None;
    let mut per_core = None;
    if let Some(g) = gflops {
        if let Ok(m) = &spec {
            if let Some((peak, bw, basis)) = published_roof(m, dtype, cores_used) {
                published = Some(normalized(g.median, ai, peak, bw, basis));
            }
        }
        let location = match hw {
            Hw::Cpu => Location::Cpu,
            Hw::Gpu(i) => Location::Gpu(i),
            Hw::External(..) => Location::External,
        };
        if let Some(share) = ceiling::share(row, location, &run.measured_ceilings) {
            let r = share.roof.roof;
            let mut m = normalized(
                g.median,
                ai,
                r.peak_gflops,
                Some(r.bw_gbs),
                share.roof.basis(),
            );
            m.pct_of_attainable = share.pct;
            m.probe_wrong = share.probe_wrong;
            measured = Some(m);
        }
        if let (Some(p), Some(m)) = (&published, &measured) {
            ceiling_gap = Some(m.peak_gflops / p.peak_gflops);
        }
        // Price: the run's instance (CPU: whole; GPU: one of N), or the imported row's instance.
        let inst_price = match &hw {
            Hw::External(..) => row
                .provenance
                .as_ref()
                .and_then(|p| p.instance.as_ref())
                .and_then(|i| matching::instance(db, i))
                .and_then(|o| instance_price_from_offer(db, o)),
            _ => ctx.info.price.clone(),
        };
        if let Some(ip) = inst_price {
            if let Some(o) = &ip.offer {
                sources.offer(db, o);
            }
            let (used, total, share) = match &hw {
                Hw::Cpu => (1.0, 1.0, "whole instance".to_string()),
                Hw::Gpu(_) => {
                    let n = ip
                        .units
                        .filter(|_| {
                            ctx.offer
                                .is_some_and(|o| db.accelerator(&o.device).is_some())
                        })
                        .unwrap_or_else(|| {
                            env.gpus.iter().filter(|g| !g.software).count().max(1) as u32
                        });
                    (1.0, n as f64, format!("1 of {n} GPUs"))
                }
                Hw::External(..) => {
                    let used = cores_used.unwrap_or(1);
                    let n = ip.units.unwrap_or(1).max(used);
                    (
                        used as f64,
                        n as f64,
                        format!("{used} of {n} chips of the instance"),
                    )
                }
            };
            let usd = normalize::price_share(ip.usd_per_hour, used, total);
            if let Hw::Cpu = hw {
                // The instance's physical cores: the CPU offer's count, else the machine's.
                let total_cores = ctx
                    .offer
                    .filter(|o| db.cpu(&o.device).is_some() && ip.offer.is_some())
                    .map(|o| o.device_count)
                    .or(env.cpu.physical_cores);
                if let (Some(used), Some(total)) = (cores_used, total_cores) {
                    let usd_core =
                        normalize::price_share(ip.usd_per_hour, used as f64, total as f64);
                    per_core = Some(PerCore {
                        cores_used: used,
                        cores_total: total,
                        usd_per_hour: usd_core,
                        perf: perf_per_dollar(g, usd_core),
                    });
                }
            }
            price = Some(RowPrice {
                usd_per_hour: usd,
                share,
                instance: ip,
                perf: perf_per_dollar(g, usd),
            });
        }
    }
    let kernel = match (&row.id, &row.provenance) {
        (Some(id), _) => id.clone(),
        (None, Some(p)) => format!(
            "{}{}",
            p.tool.as_deref().unwrap_or("external"),
            p.tool_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        ),
        (None, None) => row.kind.name().to_string(),
    };
    let provenance = row.provenance.as_ref().map(|p| {
        [
            p.tool.as_deref().map(|t| format!("tool {t}")),
            p.date.as_deref().map(|d| format!("date {d}")),
            p.source.as_deref().map(|s| format!("source {s}")),
            p.instance
                .as_ref()
                .and_then(|i| i.instance_type.as_deref())
                .map(|t| format!("instance {t}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    });
    RowReport {
        index,
        run: ctx.info.index,
        run_label: ctx.info.label.clone(),
        kind: row.kind,
        status: row.status,
        rankable,
        not_ranked: if rankable {
            None
        } else {
            not_ranked_reason(row)
        },
        device: row.device.name.clone(),
        device_key,
        software: row.device.software,
        backend: row.backend,
        kernel,
        case: row.case.clone(),
        op: row.op,
        workload: workload_key(row.op, &shape, dtype),
        shape,
        precision: row.precision.to_string(),
        dtype,
        flops: work.0,
        min_bytes: work.1,
        intensity: ai,
        gflops,
        median_s: if ok {
            row.stats.as_ref().map(|s| s.median_s)
        } else {
            None
        },
        time_ci95_s: if ok {
            row.stats.as_ref().map(|s| s.ci95_s)
        } else {
            None
        },
        verification: verification_str(row),
        spec: spec.as_ref().ok().map(MatchInfo::from),
        spec_na: spec.err(),
        published,
        measured,
        ceiling_gap,
        price,
        per_core,
        provenance,
        message: row.message.clone(),
    }
}

/// The sources a report used (spec and price entries), in first-use order.
#[derive(Default)]
struct SourceSet {
    list: Vec<SourceRef>,
}

impl SourceSet {
    fn push(&mut self, r: SourceRef) {
        if !self.list.iter().any(|x| x.id == r.id && x.what == r.what) {
            self.list.push(r);
        }
    }

    fn spec(&mut self, db: &Database, id: &str) {
        let file = db.origin(id).map(|o| o.file.clone()).unwrap_or_default();
        if let Some(a) = db.accelerator(id) {
            self.push(SourceRef {
                id: a.id.clone(),
                what: format!("spec: {}", a.name),
                source: a.source.clone(),
                as_of: a.as_of.text.clone(),
                as_of_note: a.as_of_note.clone(),
                status: a.status.name().into(),
                file: file.clone(),
            });
            for c in &a.measured_ceilings {
                self.push(SourceRef {
                    id: a.id.clone(),
                    what: format!(
                        "published measured {} matmul ceiling: {} TFLOP/s",
                        c.dtype.name(),
                        fmt_num(c.tflops)
                    ),
                    source: c.source.clone(),
                    as_of: c.as_of.text.clone(),
                    as_of_note: c.as_of_note.clone(),
                    status: a.status.name().into(),
                    file: file.clone(),
                });
            }
        } else if let Some(c) = db.cpu(id) {
            self.push(SourceRef {
                id: c.id.clone(),
                what: format!("spec: {}", c.name),
                source: c.source.clone(),
                as_of: c.as_of.text.clone(),
                as_of_note: c.as_of_note.clone(),
                status: c.status.name().into(),
                file,
            });
        }
    }

    fn offer(&mut self, db: &Database, id: &str) {
        if let Some(o) = db.offer(id) {
            self.push(SourceRef {
                id: o.id.clone(),
                what: format!(
                    "price: {} {} ({}, {}) {}",
                    o.provider,
                    o.instance,
                    o.pricing_model.name(),
                    o.region.as_deref().unwrap_or("region n/a"),
                    o.instance_price()
                        .map(|p| format!("${p}/h"))
                        .unwrap_or_else(|| "no price".into())
                ),
                source: o.source.clone(),
                as_of: o.as_of.text.clone(),
                as_of_note: o.as_of_note.clone(),
                status: o.status.name().into(),
                file: db.origin(id).map(|x| x.file.clone()).unwrap_or_default(),
            });
        }
    }
}

fn target_info(db: &Database, t: &Target) -> TargetInfo {
    let a = db.accelerator(&t.chip).expect("targets are resolved ids");
    let user_offer = db
        .offers_for(&a.id)
        .find(|o| o.point_price().is_some() && db.origin(&o.id).is_some_and(|x| x.user));
    let (offer, chosen_by) = match &t.offer {
        Some(o) => (db.offer(o), "--targets CHIP@OFFER"),
        None => match user_offer {
            Some(o) => (Some(o), "user price file"),
            None => (
                db.reference_offer(&a.id),
                "default rule (best status, on-demand first, lowest $/chip-h)",
            ),
        },
    };
    let price = offer.and_then(|o| {
        let per_chip = o.point_price()? / o.device_count as f64;
        let (age, stale) = db.price_age(o);
        Some(TargetPrice {
            offer: o.id.clone(),
            provider: o.provider.clone(),
            instance: o.instance.clone(),
            pricing_model: o.pricing_model.name().into(),
            region: o.region.clone(),
            status: o.status.name().into(),
            usd_per_chip_hour: per_chip,
            as_of: o.as_of.text.clone(),
            age_days: age,
            stale,
            chosen_by,
        })
    });
    let ranges: Vec<String> = db
        .offers_for(&a.id)
        .filter(|o| o.point_price().is_none())
        .filter_map(|o| {
            o.device_price()
                .map(|p| format!("{} ${p}/chip-h (range, not used)", o.id))
        })
        .collect();
    let note = match (&price, ranges.is_empty()) {
        (None, true) => Some("no published price: break-even prices are given instead".into()),
        (None, false) => Some(format!(
            "no single published price (break-even given); ranges: {}",
            ranges.join("; ")
        )),
        (Some(_), false) => Some(format!("also published as ranges: {}", ranges.join("; "))),
        (Some(_), true) => None,
    };
    TargetInfo {
        chip: a.id.clone(),
        name: a.name.clone(),
        price,
        note,
    }
}

/// Build the report. `inputs` are already read and validated run files.
pub fn build(inputs: &[Input], db: &Database, opts: &Options) -> Report {
    let mut sources = SourceSet::default();
    let mut notes = Vec::new();
    let ctxs: Vec<RunCtx<'_>> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| run_ctx(db, i, input))
        .collect();
    let mut rows = Vec::new();
    for (ctx, input) in ctxs.iter().zip(inputs) {
        if let Some(o) = ctx.offer {
            sources.offer(db, &o.id);
        }
        if let Some(p) = &ctx.info.price {
            if p.stale {
                notes.push(format!(
                    "{}: the price ({}, as of {}) is older than {} days before {} (or dated after it)",
                    ctx.info.label,
                    p.source,
                    p.as_of.as_deref().unwrap_or("?"),
                    db.options.max_price_age_days,
                    db.options.as_of
                ));
            }
        } else {
            notes.push(format!(
                "{}: no price (no --price at run time and no offer for its instance type): \
                 per-dollar columns are n/a",
                ctx.info.label
            ));
        }
        if !input.run.complete {
            notes.push(format!(
                "{}: an interrupted run (complete: false)",
                ctx.info.label
            ));
        }
        for row in &input.run.results {
            let i = rows.len();
            let r = row_report(db, ctx, &input.run, row, i, &mut sources);
            if let Some(w) = r.measured.as_ref().and_then(|m| m.probe_wrong.as_ref()) {
                notes.push(format!("{}: row {i}: {w}", ctx.info.label));
            }
            rows.push(r);
        }
    }

    // Targets and their prices.
    let targets: Vec<TargetInfo> = opts.targets.iter().map(|t| target_info(db, t)).collect();
    for t in &targets {
        sources.spec(db, &t.chip);
        if let Some(p) = &t.price {
            sources.offer(db, &p.offer);
            if p.stale {
                notes.push(format!(
                    "target {}: price {} as of {} is older than {} days",
                    t.chip, p.offer, p.as_of, db.options.max_price_age_days
                ));
            }
        }
    }

    // Workloads in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in &rows {
        if !by_key.contains_key(&r.workload) {
            order.push(r.workload.clone());
        }
        by_key.entry(r.workload.clone()).or_default().push(r.index);
    }
    let mut workloads = Vec::new();
    for key in order {
        let idx = &by_key[&key];
        let first = &rows[idx[0]];
        // Best rankable row per (run, device).
        let mut best: BTreeMap<(usize, String), usize> = BTreeMap::new();
        for &i in idx {
            let r = &rows[i];
            if !r.rankable {
                continue;
            }
            let k = (r.run, r.device_key.clone());
            let better = match best.get(&k) {
                Some(&j) => {
                    r.gflops.map(|g| g.median).unwrap_or(0.0)
                        > rows[j].gflops.map(|g| g.median).unwrap_or(0.0)
                }
                None => true,
            };
            if better {
                best.insert(k, i);
            }
        }
        let mut ranked: Vec<usize> = best.values().copied().collect();
        let gpd = |i: usize| rows[i].price.as_ref().map(|p| p.perf.gflop_per_usd.median);
        let gfl = |i: usize| rows[i].gflops.map(|g| g.median).unwrap_or(0.0);
        ranked.sort_by(|&a, &b| match (gpd(a), gpd(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => gfl(b).total_cmp(&gfl(a)),
        });
        let any_priced = ranked.iter().any(|&i| gpd(i).is_some());
        let best_ppd = ranked.iter().copied().find(|&i| gpd(i).is_some());
        let ranking = ranked
            .iter()
            .enumerate()
            .map(|(n, &i)| Ranked {
                rank: n + 1,
                row: i,
                device: format!("{} — {}", rows[i].device, rows[i].run_label),
            })
            .collect();
        let also_verified = idx
            .iter()
            .copied()
            .filter(|i| rows[*i].rankable && !ranked.contains(i))
            .collect();
        let not_ranked = idx.iter().copied().filter(|i| !rows[*i].rankable).collect();

        // Projections for each target.
        let w = normalize::Workload {
            op: first.op,
            flops: first.flops,
            min_bytes: first.min_bytes,
            dtype: first.dtype,
        };
        let projections = targets
            .iter()
            .map(|t| projected_row(db, t, &w, opts.efficiency, best_ppd, &rows))
            .collect();
        workloads.push(WorkloadReport {
            key,
            op: first.op,
            shape: first.shape.clone(),
            dtype: first.dtype,
            flops: first.flops,
            min_bytes: first.min_bytes,
            intensity: first.intensity,
            ranked_by: if any_priced { "GFLOP per $" } else { "GFLOP/s" },
            ranking,
            also_verified,
            not_ranked,
            best_perf_per_dollar: best_ppd,
            projections,
        });
    }

    let llm = llm::estimates(
        &rows,
        &workloads,
        &ctxs.iter().map(|c| c.info.clone()).collect::<Vec<_>>(),
        &targets,
    );
    let sweeps = sweeps(&rows);
    let mut files: Vec<String> = db.origins.values().map(|o| o.file.clone()).collect();
    files.sort();
    files.dedup();
    Report {
        schema: REPORT_SCHEMA,
        as_of: db.options.as_of.to_string(),
        conventions: Conventions {
            flops: FLOP_CONVENTION,
            statistic: STATISTIC,
            perf_per_dollar: PERF_PER_DOLLAR,
            ranking: RANKING,
            peaks: PEAKS,
        },
        runs: ctxs.into_iter().map(|c| c.info).collect(),
        rows,
        workloads,
        targets,
        efficiency: opts.efficiency,
        llm,
        sweeps,
        sources: sources.list,
        database: DatabaseInfo {
            accelerators: db.accelerators.len(),
            cpus: db.cpus.len(),
            offers: db.offers.len(),
            files,
            max_price_age_days: db.options.max_price_age_days,
        },
        notes,
    }
}

fn projected_row(
    db: &Database,
    t: &TargetInfo,
    w: &normalize::Workload,
    efficiency: Option<f64>,
    best: Option<usize>,
    rows: &[RowReport],
) -> ProjectedRow {
    let chip = db.accelerator(&t.chip).expect("resolved target");
    let proj = normalize::project(chip, w, efficiency);
    let mut out = ProjectedRow {
        kind: RowKind::Projected,
        chip: chip.id.clone(),
        chip_name: chip.name.clone(),
        projection: None,
        error: None,
        price: t.price.clone(),
        ceiling_perf: None,
        realistic_perf: None,
        break_even: None,
    };
    let p = match proj {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    if let Some(price) = &t.price {
        out.ceiling_perf = Some(perf_per_dollar(
            Interval::exact(p.ceiling_gflops),
            price.usd_per_chip_hour,
        ));
        out.realistic_perf = p
            .realistic_gflops
            .map(|g| perf_per_dollar(Interval::exact(g), price.usd_per_chip_hour));
    }
    if let Some(b) = best {
        if let Some(rp) = &rows[b].price {
            let (g, from, wording) = match p.realistic_gflops {
                Some(g) => (
                    g,
                    "realistic",
                    format!(
                        "from the realistic figure: the price per chip-hour at which it would \
                         match the best measured, peer or imported perf per dollar for this workload ({} — {})",
                        rows[b].kernel, rows[b].run_label
                    ),
                ),
                None => (
                    p.ceiling_gflops,
                    "ceiling",
                    format!(
                        "from the roofline ceiling: the most it could cost per chip-hour and \
                         still match the best measured, peer or imported perf per dollar for this workload ({} — {})",
                        rows[b].kernel, rows[b].run_label
                    ),
                ),
            };
            out.break_even = Some(BreakEven {
                usd_per_chip_hour: break_even_usd_per_hour(g, rp.perf.gflop_per_usd),
                from,
                wording,
                versus_row: b,
            });
        }
    }
    out.projection = Some(p);
    out
}

/// Case families with a numeric suffix and at least three sizes become scaling curves.
fn sweeps(rows: &[RowReport]) -> Vec<Sweep> {
    // (family, device, kernel, precision) → points.
    type Key = (String, String, String, String);
    let mut groups: BTreeMap<Key, Vec<SweepPoint>> = BTreeMap::new();
    for r in rows {
        let (Some(case), Some(g)) = (&r.case, r.gflops) else {
            continue;
        };
        if !r.rankable {
            continue;
        }
        let Some((family, x)) = case.rsplit_once('-') else {
            continue;
        };
        let x = x.trim_start_matches('t');
        let Ok(x) = x.parse::<u64>() else { continue };
        groups
            .entry((
                family.to_string(),
                format!("{} — {}", r.device, r.run_label),
                r.kernel.clone(),
                r.precision.clone(),
            ))
            .or_default()
            .push((x, g.median, g.lo, g.hi));
    }
    groups
        .into_iter()
        .filter_map(|((family, device, kernel, precision), mut points)| {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            (points.len() >= 3).then_some(Sweep {
                family,
                device,
                kernel,
                precision,
                points,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers shared by the renderers

/// `123.4`, `12.35`, `1.235`, `0.1235`; `285,867` from 10⁴; `2.062e9` from 10⁹.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 1e9 {
        format!("{v:.3e}")
    } else if a >= 1e4 {
        let digits = format!("{:.0}", a);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if v < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.3e}")
    }
}

/// `median [lo, hi]`.
pub fn interval(i: &Interval) -> String {
    if i.lo == i.hi {
        num(i.median)
    } else {
        format!("{} [{}, {}]", num(i.median), num(i.lo), num(i.hi))
    }
}

/// `n/a` for `None`.
pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "n/a".into())
}

/// A percentage.
pub fn pct(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

/// `$1.23/h` etc.
pub fn usd(v: f64) -> String {
    if v >= 100.0 {
        format!("${v:.0}")
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.4}")
    }
}
