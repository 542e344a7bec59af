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
use crate::specs::matching::{self, DeviceMatch, OfferMatch, SpecRef};
use crate::specs::{fmt_num, Database, Offer, SpecDType};
use crate::stats::{Bootstrap, Sample};
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

mod build;
pub mod format;
mod rows;
mod targets;

pub use build::*;
pub use format::*;
pub use rows::*;
pub use targets::*;

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
    /// Benchmarks of other tools carried by the runs (criterion ids from `ingest-criterion`):
    /// shown with their times, never ranked or normalized (no FLOP count, no shape).
    pub foreign: Vec<ForeignReport>,
}

/// A foreign benchmark as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ForeignReport {
    /// Index of the run (0-based, as `runs`).
    pub run: usize,
    pub tool: String,
    pub id: String,
    pub median_s: f64,
    pub ci95_s: [f64; 2],
    pub samples: usize,
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
    /// `--price (flag)`, `--price (PERFLEDGER_PRICE)`, or `offer ID`.
    pub source: String,
    /// How the offer was chosen (provider, instance, region, pricing model, and what was
    /// assumed), or that the price was given at run time.
    pub matched: Option<String>,
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
    /// Why no offer priced the run (`None` when priced).
    pub offer_no_match: Option<String>,
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
    /// Fixture data (`source: "fixture"`): the device name says so in every format.
    pub fixture: bool,
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
    /// Measured rows: the speed against the best verified peer row of the same workload on the
    /// same hardware in the same run.
    pub vs_peer: Option<PeerRatio>,
    /// Memory-bound CPU rows (run schema 1.7): the median read of the row's own inputs alongside
    /// its samples, 1e9 bytes/s, and the row's share of it (`ok` rows).
    pub read_alongside_gbs: Option<f64>,
    pub read_alongside_share: Option<f64>,
}

/// A measured row's ratio to the best peer of its workload in its run:
/// `peer median time / row median time` (> 1: faster than the peer), with a bootstrap 95% CI
/// from both rows' samples ([`crate::stats::median_ratio`]).
#[derive(Clone, Debug, Serialize)]
pub struct PeerRatio {
    /// Index into `rows` of the peer.
    pub peer_row: usize,
    /// The peer's kernel id, or its tool for imported peers.
    pub peer: String,
    pub ratio: f64,
    pub ci95: [f64; 2],
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
