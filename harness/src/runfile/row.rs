//! One result row: its kind, status, device, kernel (with its compute unit), FLOPs, timing,
//! statistics, verification and provenance, and the invariants every row keeps
//! ([`Row::validate`]).

use super::*;

pub use crate::limits::{show_number, MAX_TIME_S};

/// Where a row's number comes from. Kinds are labelled everywhere and ranked separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// A perfledger kernel timed in this run.
    Measured,
    /// A vendor library timed on the same machine by a script, imported.
    Peer,
    /// Measured elsewhere (e.g. Trainium with the Neuron SDK), with provenance.
    Imported,
    /// Computed from published specs; never shown as a measurement.
    Projected,
}

impl RowKind {
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Measured => "measured",
            RowKind::Peer => "peer",
            RowKind::Imported => "imported",
            RowKind::Projected => "projected",
        }
    }
}

/// The outcome of a row. Only `ok` rows carry `gflops` and are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Verification failed: samples kept, speed never printed or ranked.
    Incorrect,
    /// The kernel does not support this problem here (a note, not a failure).
    Unsupported,
    /// The case errored (GPU validation error, device loss, ...).
    Error,
    /// Fewer than [`MIN_SAMPLES`] samples fit the budget.
    InsufficientSamples,
    /// The run budget ran out before this row.
    SkippedBudget,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Incorrect => "incorrect",
            Status::Unsupported => "unsupported",
            Status::Error => "error",
            Status::InsufficientSamples => "insufficient_samples",
            Status::SkippedBudget => "skipped_budget",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The device a row ran on, as a report labels it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// e.g. `AMD EPYC 7R13 (2 threads)`, `NVIDIA H100 80GB HBM3`, `Trainium2`.
    pub name: String,
    /// A software GPU adapter (llvmpipe/lavapipe, SwiftShader, WARP): never normalized.
    #[serde(default)]
    pub software: bool,
    /// Index into `environment.gpus` for GPU rows of this run.
    #[serde(default)]
    pub gpu_index: Option<usize>,
    /// Further facts (`threads`, `chips`, ...), kept as given.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Device {
    pub fn named(name: impl Into<String>) -> Device {
        Device {
            name: name.into(),
            ..Device::default()
        }
    }
}

/// A kernel's identity in a row (the `id` string is a separate row field).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRef {
    pub family: String,
    pub variant: String,
    /// The execution unit the kernel's inner loop runs on (1.2): which measured ceiling holds
    /// the row. Rows of older files get it from [`legacy_unit`] when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<ComputeUnit>,
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl From<&KernelIdentity> for KernelRef {
    fn from(k: &KernelIdentity) -> Self {
        KernelRef {
            family: k.family.clone(),
            variant: k.variant.clone(),
            unit: Some(k.unit),
            params: k.params.clone(),
        }
    }
}

/// The compute unit of a measured row of a file written before 1.2, when rows did not say:
/// what the kernels of those builds declared, inferred from the backend, family and variant they
/// wrote (the CPU ISA paths by name, `avx512bf16` the `vdpbf16ps` path, `scalar` the baselines;
/// on the GPU the `coop` family used cooperative matrices, every other shader the ALUs). Used only
/// when reading such files.
pub fn legacy_unit(backend: Option<Backend>, kernel: &KernelRef) -> Option<ComputeUnit> {
    match backend? {
        Backend::Cpu => match kernel.variant.as_str() {
            "scalar" => Some(ComputeUnit::CpuScalar),
            v if v == perfledger_kernels::unit::BF16DOT_PROBE => Some(ComputeUnit::CpuBf16Dot),
            v => v.parse().ok().map(ComputeUnit::CpuFma),
        },
        Backend::Gpu => Some(if kernel.family == "matmul.gpu.coop" {
            ComputeUnit::GpuCoop
        } else {
            ComputeUnit::GpuSimt
        }),
    }
}

/// FLOPs of one iteration. `useful` follows the documented convention (matmul `2·M·N·K`;
/// attention `4·D` per unmasked (q, k) pair per head); `executed` is what the kernel actually
/// computes (e.g. masked-out tiles of a causal kernel), ≥ `useful` for an honest kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flops {
    pub useful: u64,
    pub executed: u64,
}

impl Flops {
    /// `useful == executed`.
    pub fn exact(flops: u64) -> Flops {
        Flops {
            useful: flops,
            executed: flops,
        }
    }
}

/// How a row's samples were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingMethod {
    /// Wall clock around run + sync (CPU; GPU without timestamp queries).
    Wall,
    /// GPU timestamp queries.
    Timestamp,
}

/// Why sampling stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The CI half-width of the median fell under the target.
    CiTarget,
    /// The row's time budget ran out.
    CaseBudget,
    /// The run's time budget ran out.
    RunBudget,
    /// The sample cap was reached.
    MaxSamples,
    /// The row cap (`--max-row-s`) was reached before the minimum sample count (1.2).
    RowCap,
    /// Ctrl-C.
    Interrupted,
}

impl StopReason {
    /// The name written in run files (`ci_target`, ...).
    pub fn name(self) -> &'static str {
        match self {
            StopReason::CiTarget => "ci_target",
            StopReason::CaseBudget => "case_budget",
            StopReason::RunBudget => "run_budget",
            StopReason::MaxSamples => "max_samples",
            StopReason::RowCap => "row_cap",
            StopReason::Interrupted => "interrupted",
        }
    }
}

/// The sampling record of a measured row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub method: TimingMethod,
    pub warmup_iters: u64,
    /// Iterations per sample; `samples_s` are seconds per *iteration* (sample time / this).
    pub iters_per_sample: u64,
    pub stop_reason: StopReason,
    /// The row's budget (a target for warm-up and samples), seconds (1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_s: Option<f64>,
    /// The row's cap: the most warm-up and samples may take to reach the minimum sample count,
    /// seconds (1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_row_s: Option<f64>,
    /// What warm-up and samples took, seconds (what the budget and cap count) (1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_s: Option<f64>,
    /// The whole row: preparation, verification, warm-up, samples, seconds (1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_s: Option<f64>,
    /// The turns the row's samples came from (`--rounds` above 1; 1.9): `samples_s` holds every
    /// turn's samples in order; `warmup_iters`, `sampling_s` and `row_s` are sums over the
    /// turns, `budget_s` and `max_row_s` the row's whole budget and cap, `method` and
    /// `iters_per_sample` the first turn's, `stop_reason` the last turn's. Absent: one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
}

/// The row's statistics of `samples_s` (seconds; see [`crate::stats`] for the methods).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowStats {
    pub median_s: f64,
    pub min_s: f64,
    pub p10_s: f64,
    pub p90_s: f64,
    pub mad_s: f64,
    pub ci95_s: [f64; 2],
}

impl From<&Summary> for RowStats {
    fn from(s: &Summary) -> Self {
        RowStats {
            median_s: s.median_s,
            min_s: s.min_s,
            p10_s: s.p10_s,
            p90_s: s.p90_s,
            mad_s: s.mad_s,
            ci95_s: s.ci95_s,
        }
    }
}

/// Throughput of an `ok` row, GFLOP/s from the useful FLOPs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gflops {
    /// `useful / median_s / 1e9`.
    pub median: f64,
    /// `[useful / ci_hi_s, useful / ci_lo_s] / 1e9` (the time CI, inverted).
    pub ci95: [f64; 2],
}

impl Gflops {
    /// From the useful FLOPs of one iteration and the time statistics.
    pub fn from_stats(useful_flops: u64, stats: &RowStats) -> Gflops {
        let g = |t: f64| useful_flops as f64 / t / 1e9;
        Gflops {
            median: g(stats.median_s),
            ci95: [g(stats.ci95_s[1]), g(stats.ci95_s[0])],
        }
    }
}

/// The verdict of a row's verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// The evidence of a row's verification. External rows may be unverified: `{"method": "none"}`,
/// then without verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowVerification {
    /// `full`, `freivalds+rows`, `rows`, ..., or `none`.
    pub method: String,
    /// Rows (or elements, as the method states) checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// The largest scaled error observed (absent when the output held NaN/inf: see `detail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<f64>,
    /// The bound the error was compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl RowVerification {
    /// The method name of an unverified row.
    pub const NONE: &'static str = "none";

    /// `{"method": "none"}`.
    pub fn none() -> RowVerification {
        RowVerification {
            method: Self::NONE.to_string(),
            samples: None,
            error: None,
            bound: None,
            verdict: None,
            detail: None,
        }
    }

    pub fn is_none_method(&self) -> bool {
        self.method == Self::NONE
    }

    pub fn passed(&self) -> bool {
        self.verdict == Some(Verdict::Pass)
    }

    pub(crate) fn validate(&self) -> Result<(), RowError> {
        if self.method.is_empty() {
            return Err(RowError::new(
                "verification.method",
                "is empty (use \"none\")",
            ));
        }
        if self.is_none_method() && self.verdict.is_some() {
            return Err(RowError::new(
                "verification.verdict",
                "an unverified row (method \"none\") has no verdict",
            ));
        }
        if !self.is_none_method() && self.verdict.is_none() {
            return Err(RowError::new(
                "verification.verdict",
                format!("method \"{}\" needs a verdict (pass or fail)", self.method),
            ));
        }
        for (name, v) in [("error", self.error), ("bound", self.bound)] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(RowError::new(
                        format!("verification.{name}"),
                        format!("{v} is not finite and ≥ 0"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl From<perfledger_kernels::verify::Verdict> for Verdict {
    fn from(v: perfledger_kernels::verify::Verdict) -> Self {
        match v {
            perfledger_kernels::verify::Verdict::Pass => Verdict::Pass,
            perfledger_kernels::verify::Verdict::Fail => Verdict::Fail,
        }
    }
}

impl From<perfledger_kernels::verify::Verification> for RowVerification {
    /// A non-finite error (NaN/inf in the output) becomes `null`: JSON has no NaN, and the verdict
    /// (fail) and `detail` say what happened.
    fn from(v: perfledger_kernels::verify::Verification) -> Self {
        let finite = |x: f64| x.is_finite().then_some(x);
        RowVerification {
            method: v.method,
            samples: Some(v.samples),
            error: finite(v.error),
            bound: finite(v.bound),
            verdict: Some(v.verdict.into()),
            detail: v.detail,
        }
    }
}

/// Where an external row came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The tool or library that produced the number (`numpy`, `torch`, `neuron-sdk`, ...).
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub tool_version: Option<String>,
    /// When it was measured (RFC 3339 date or date-time).
    #[serde(default)]
    pub date: Option<String>,
    /// Where the number comes from: a script, a URL, a document.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub instance: Option<InstanceInfo>,
    /// How the producing script timed (free-form: method, clock, warm-up, iterations, stop reason).
    #[serde(default)]
    pub timing: Option<Value>,
    /// The producing script's configuration (free-form: seeds, threads, environment, argv).
    #[serde(default)]
    pub config: Option<Value>,
}

/// One result row (case × kernel × dtype, or an external measurement or projection).
///
/// Every field is written (absent values as `null`); on reading, the optional ones may be missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub kind: RowKind,
    pub op: Op,
    /// `cpu` or `gpu` for measured rows; may be null for external rows (e.g. Trainium).
    #[serde(default)]
    pub backend: Option<Backend>,
    pub device: Device,
    /// Null for external and projected rows.
    #[serde(default)]
    pub kernel: Option<KernelRef>,
    /// `family.variant.input-accum-output`; null for external and projected rows.
    #[serde(default)]
    pub id: Option<String>,
    pub precision: Precision,
    pub shape: Shape,
    #[serde(default)]
    pub flops: Option<Flops>,
    #[serde(default)]
    pub min_bytes: Option<u64>,
    #[serde(default)]
    pub timing: Option<Timing>,
    /// Seconds per iteration, in measurement order (kept for every row that has them).
    #[serde(default)]
    pub samples_s: Vec<f64>,
    #[serde(default)]
    pub outliers: usize,
    #[serde(default)]
    pub stats: Option<RowStats>,
    /// Present exactly when `status` is `ok`.
    #[serde(default)]
    pub gflops: Option<Gflops>,
    #[serde(default)]
    pub verification: Option<RowVerification>,
    pub status: Status,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub provenance: Option<Provenance>,
    /// Reserved: always null in 1.0 ([`Row::validate`] refuses a value).
    #[serde(default)]
    pub power_w: Option<f64>,
    /// The suite case the row ran (`llama3.1-8b-qkv-t512`); absent for external rows. Reports
    /// use it to assemble per-model estimates (the LLM suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// An `unsupported` row's reason without this problem's specifics (1.2): the run's output
    /// groups rows by it; `message` has the whole text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The machine while the row sampled (1.3; measured rows with samples): what `compare`
    /// marks a row `noisy` by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<RowNoise>,
    /// The read ceiling in the same seconds as the row's samples (1.7; memory-bound CPU rows
    /// that rotate input sets): what reading the row's own input sets got between its samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_alongside: Option<ReadAlongside>,
}

/// A read of a memory-bound row's own input sets alongside its samples (1.7). After every sample
/// the runner reads the next input sets of the row's rotation, as many as the sample ran, once
/// with each read pattern of the bandwidth probe that takes buffers of any length (all but
/// `seq3_abc`), each pattern on sets of its own (so each reads from memory, as the row does), on
/// the row's threads. The run's read probe is measured before and after all rows, minutes away
/// from a row on a host whose bandwidth moves; this is the ceiling of the row's own seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadAlongside {
    /// After each sample, the best pattern's 1e9 bytes/s (bytes of the row's inputs read), in
    /// measurement order: one per sample.
    pub samples_gbs: Vec<f64>,
    /// Their median.
    pub median_gbs: f64,
    /// Each pattern's median over the samples, by name.
    pub patterns: BTreeMap<String, f64>,
    /// The row's `min_bytes` per median iteration, in 1e9 bytes/s, over `median_gbs`; null
    /// when the row has no median.
    pub share: Option<f64>,
}

/// The machine while one row took its warm-up and samples (1.3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowNoise {
    /// CPU time stolen by the hypervisor over warm-up and samples, percent of all CPU time
    /// (`/proc/stat`); null where the counters are not available.
    pub steal_pct: Option<f64>,
    /// Runnable tasks (`/proc/loadavg`'s running count, this process's threads included) read
    /// after each sample: their median and maximum.
    pub run_queue_median: Option<f64>,
    pub run_queue_max: Option<u32>,
    /// How many run-queue readings were taken.
    pub readings: u64,
    /// Online CPUs when the row ran (what a run queue is compared with).
    pub online_cpus: Option<u32>,
}

impl Row {
    /// A row with the given identity and status and nothing measured yet.
    pub fn new(
        kind: RowKind,
        shape: Shape,
        precision: Precision,
        device: Device,
        status: Status,
    ) -> Row {
        Row {
            kind,
            op: shape.op(),
            backend: None,
            device,
            kernel: None,
            id: None,
            precision,
            shape,
            flops: None,
            min_bytes: None,
            timing: None,
            samples_s: Vec::new(),
            outliers: 0,
            stats: None,
            gflops: None,
            verification: None,
            status,
            message: None,
            provenance: None,
            power_w: None,
            case: None,
            reason: None,
            noise: None,
            read_alongside: None,
        }
    }

    /// A `measured` row of a registered kernel: op, backend, kernel, id and precision from its
    /// identity.
    pub fn measured(
        identity: &KernelIdentity,
        shape: Shape,
        device: Device,
        status: Status,
    ) -> Row {
        let mut row = Row::new(RowKind::Measured, shape, identity.precision, device, status);
        row.op = identity.op;
        row.backend = Some(identity.backend);
        row.kernel = Some(KernelRef::from(identity));
        row.id = Some(identity.id());
        row
    }

    /// Record samples and their summary (`samples_s`, `outliers`, `stats`).
    pub fn set_samples(&mut self, sample: &Sample, summary: &Summary) {
        self.samples_s = sample.values().to_vec();
        self.outliers = summary.outliers;
        self.stats = Some(RowStats::from(summary));
    }

    /// Set the status; `gflops` is computed (from `flops.useful` and `stats`) for `ok` and cleared
    /// otherwise. Fails, changing nothing, when an `ok` row lacks flops or stats.
    pub fn set_status(&mut self, status: Status, message: Option<String>) -> Result<(), RowError> {
        let gflops = if status == Status::Ok {
            let flops = self
                .flops
                .ok_or_else(|| RowError::new("flops", "an `ok` row needs flops for its GFLOP/s"))?;
            let stats = self
                .stats
                .as_ref()
                .ok_or_else(|| RowError::new("stats", "an `ok` row needs stats for its GFLOP/s"))?;
            Some(Gflops::from_stats(flops.useful, stats))
        } else {
            None
        };
        self.status = status;
        self.message = message;
        self.gflops = gflops;
        Ok(())
    }

    /// Whether perfledger's runner timed this row (a measured row, or an in-process peer: both
    /// name a registered kernel), so the runner's invariants hold for it.
    pub fn timed_here(&self) -> bool {
        self.kind == RowKind::Measured || (self.kind == RowKind::Peer && self.kernel.is_some())
    }

    /// Whether a report may rank this row: `ok` and verified with a pass.
    pub fn is_rankable(&self) -> bool {
        self.status == Status::Ok && self.verification.as_ref().is_some_and(|v| v.passed())
    }

    /// The row's invariants:
    /// - `shape` matches `op`, every dimension ≥ 1;
    /// - `gflops` present exactly when `status` is `ok`, finite, CI ordered;
    /// - `samples_s` finite and ≥ 0; `outliers` ≤ their count; `stats` only with samples;
    /// - `measured` rows name their kernel, backend and an `id` equal to
    ///   `family.variant.input-accum-output`; `ok` measured rows have ≥ [`MIN_SAMPLES`] samples
    ///   and a passing verification;
    /// - `ok` rows other than `projected` have stats; no `ok` row has a failed verification, and
    ///   every `incorrect` row has one.
    pub fn validate(&self) -> Result<(), RowError> {
        self.validate_shape()?;
        self.validate_samples()?;
        self.validate_gflops()?;
        self.validate_kernel()?;
        self.validate_verdict()?;
        self.validate_read_alongside()?;
        if self.timing.and_then(|t| t.turns) == Some(0) {
            return Err(RowError::new(
                "timing.turns",
                "is 0: a row has at least one turn",
            ));
        }
        if self.power_w.is_some() {
            return Err(RowError::new("power_w", "reserved: null in schema 1.0"));
        }
        Ok(())
    }

    /// A read alongside has a speed per read, all of them, its median and its patterns'
    /// positive and finite.
    fn validate_read_alongside(&self) -> Result<(), RowError> {
        let Some(r) = &self.read_alongside else {
            return Ok(());
        };
        let good = |x: f64| x.is_finite() && x > 0.0;
        if r.samples_gbs.is_empty() {
            return Err(RowError::new("read_alongside.samples_gbs", "empty"));
        }
        if let Some(x) = r.samples_gbs.iter().find(|x| !good(**x)) {
            return Err(RowError::new(
                "read_alongside.samples_gbs",
                format!("{x} is not a positive speed"),
            ));
        }
        if !good(r.median_gbs) {
            return Err(RowError::new(
                "read_alongside.median_gbs",
                format!("{} is not a positive speed", r.median_gbs),
            ));
        }
        if let Some((name, x)) = r.patterns.iter().find(|(_, x)| !good(**x)) {
            return Err(RowError::new(
                "read_alongside.patterns",
                format!("{name}: {x} is not a positive speed"),
            ));
        }
        if let Some(x) = r.share.filter(|x| !good(*x)) {
            return Err(RowError::new(
                "read_alongside.share",
                format!("{x} is not a positive share"),
            ));
        }
        Ok(())
    }

    /// `shape` matches `op`, every dimension ≥ 1.
    fn validate_shape(&self) -> Result<(), RowError> {
        if self.shape.op() != self.op {
            return Err(RowError::new(
                "shape",
                format!(
                    "a {} shape in a {} row",
                    self.shape.op().name(),
                    self.op.name()
                ),
            ));
        }
        self.shape.validate()?;
        Ok(())
    }

    /// Samples are times; outliers among them; statistics only with samples, finite, ordered.
    fn validate_samples(&self) -> Result<(), RowError> {
        for (i, &t) in self.samples_s.iter().enumerate() {
            if !(t.is_finite() && t > 0.0 && t <= MAX_TIME_S) {
                return Err(RowError::new(
                    format!("samples_s[{i}]"),
                    format!(
                        "{} is not a time (a sample is > 0 and at most {MAX_TIME_S:e} s)",
                        show_number(t)
                    ),
                ));
            }
        }
        if self.outliers > self.samples_s.len() {
            return Err(RowError::new(
                "outliers",
                format!(
                    "{} outliers among {} samples",
                    self.outliers,
                    self.samples_s.len()
                ),
            ));
        }
        if let Some(stats) = &self.stats {
            if self.samples_s.is_empty() {
                return Err(RowError::new("stats", "statistics without samples"));
            }
            let all = [
                stats.median_s,
                stats.min_s,
                stats.p10_s,
                stats.p90_s,
                stats.mad_s,
            ];
            if !all
                .iter()
                .chain(&stats.ci95_s)
                .all(|v| v.is_finite() && *v >= 0.0 && *v <= MAX_TIME_S)
            {
                return Err(RowError::new(
                    "stats",
                    format!("every statistic must be finite, ≥ 0 and at most {MAX_TIME_S:e} s"),
                ));
            }
            if stats.median_s <= 0.0 {
                return Err(RowError::new(
                    "stats.median_s",
                    "0 with samples present: a median time is > 0",
                ));
            }
            if stats.ci95_s[0] > stats.ci95_s[1] {
                return Err(RowError::new(
                    "stats.ci95_s",
                    "lower bound above upper bound",
                ));
            }
        }
        Ok(())
    }

    /// `gflops` exactly on `ok` rows, finite, its CI ordered.
    fn validate_gflops(&self) -> Result<(), RowError> {
        match (self.status, &self.gflops) {
            (Status::Ok, None) => {
                return Err(RowError::new("gflops", "an `ok` row must carry gflops"));
            }
            (status, Some(_)) if status != Status::Ok => {
                return Err(RowError::new(
                    "gflops",
                    format!("only `ok` rows carry gflops; this row is `{status}`"),
                ));
            }
            (_, Some(g)) => {
                if !(g.median.is_finite() && g.ci95.iter().all(|v| v.is_finite())) {
                    return Err(RowError::new("gflops", "must be finite"));
                }
                if g.ci95[0] > g.ci95[1] {
                    return Err(RowError::new(
                        "gflops.ci95",
                        "lower bound above upper bound",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A measured row names its kernel, backend, compute unit (on that backend) and an id equal
    /// to `family.variant.precision`.
    fn validate_kernel(&self) -> Result<(), RowError> {
        if self.kind == RowKind::Measured && self.kernel.is_none() {
            return Err(RowError::new("kernel", "a measured row names its kernel"));
        }
        // Measured rows and in-process peers (1.5): a registered kernel.
        if let Some(kernel) = &self.kernel {
            if self.backend.is_none() {
                return Err(RowError::new(
                    "backend",
                    "a row with a kernel names its backend",
                ));
            }
            match kernel.unit {
                None => {
                    return Err(RowError::new(
                        "kernel.unit",
                        "a measured row names its kernel's compute unit",
                    ))
                }
                Some(u) if u.is_gpu() != (self.backend == Some(Backend::Gpu)) => {
                    return Err(RowError::new(
                        "kernel.unit",
                        format!("{u} does not run on backend {:?}", self.backend),
                    ))
                }
                Some(_) => {}
            }
            let expected = format!("{}.{}.{}", kernel.family, kernel.variant, self.precision);
            if self.id.as_deref() != Some(expected.as_str()) {
                return Err(RowError::new(
                    "id",
                    format!(
                        "is {:?}, expected \"{expected}\" (family.variant.precision)",
                        self.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The verification is well formed, and agrees with the status: no `ok` row failed, an `ok`
    /// measured row passed with ≥ [`MIN_SAMPLES`] samples, an `incorrect` row carries its failure.
    fn validate_verdict(&self) -> Result<(), RowError> {
        if let Some(v) = &self.verification {
            v.validate()?;
        }
        let verdict = self.verification.as_ref().and_then(|v| v.verdict);
        match self.status {
            Status::Ok => {
                if verdict == Some(Verdict::Fail) {
                    return Err(RowError::new(
                        "status",
                        "verification failed, so the row is `incorrect`, not `ok`",
                    ));
                }
                if self.kind != RowKind::Projected && self.stats.is_none() {
                    return Err(RowError::new("stats", "an `ok` row needs statistics"));
                }
                if self.timed_here() {
                    if self.samples_s.len() < MIN_SAMPLES {
                        return Err(RowError::new(
                            "samples_s",
                            format!(
                                "{} samples: an `ok` measured row has at least {MIN_SAMPLES} \
                                 (else `insufficient_samples`)",
                                self.samples_s.len()
                            ),
                        ));
                    }
                    if verdict != Some(Verdict::Pass) {
                        return Err(RowError::new(
                            "verification",
                            "an `ok` measured row has a passing verification",
                        ));
                    }
                }
            }
            Status::Incorrect if verdict != Some(Verdict::Fail) => {
                return Err(RowError::new(
                    "verification",
                    "an `incorrect` row carries its failed verification",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}
