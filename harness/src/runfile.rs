//! Run files: one JSON document per run, schema `perfledger.run/1.2` (DESIGN.md "Result file",
//! `results/README.md`, `results/schema/run-1.2.schema.json`; 1.1 added the optional after-rows
//! probes of `measured_ceilings`; 1.2 the compute unit of every measured row's kernel
//! (`kernel.unit`), the `vdpbf16ps` probe and the read-bandwidth patterns, each row's budget,
//! cap and times (`timing.budget_s`, `max_row_s`, `sampling_s`, `row_s`), the `row_cap` stop reason
//! and `config.max_row_s`), and the JSON-lines format of external rows
//! (`results/schema/external-rows-1.schema.json`).
//!
//! Field names here are pinned: reports, `compare` and outside scripts read exactly these. A new
//! minor version may only add fields; readers accept older minors of their major and refuse other
//! majors, naming the file and the version found.
//!
//! Reading checks the `schema` string before anything else, then deserializes with the JSON path
//! of any bad field (`results[3].status`), then checks each row's invariants ([`Row::validate`]).
//! Writing is atomic (a temporary file in the same directory, fsync, rename) and never replaces an
//! existing file unless forced.

use crate::env::{Environment, HarnessInfo, InstanceInfo};
use crate::stats::{Sample, Summary, MIN_SAMPLES};
use perfledger_kernels::dtype::SplitMix64;
use perfledger_kernels::kernel::{Backend, KernelIdentity, Op, Problem};
use perfledger_kernels::problem::{AttentionProblem, MatmulProblem, Precision};
use perfledger_kernels::ComputeUnit;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use time::{OffsetDateTime, UtcOffset};

/// The name part of the run-file schema string.
pub const SCHEMA_NAME: &str = "perfledger.run";
/// The schema string this build writes.
pub const SCHEMA: &str = "perfledger.run/1.2";
/// The version this build writes and reads (with older minors of the same major).
pub const VERSION: SchemaVersion = SchemaVersion::new(1, 2);
/// Where runs go by default (relative to the working directory; git-ignored).
pub const RUNS_DIR: &str = "results/runs";

// ---------------------------------------------------------------------------------------------
// Versions

/// `major.minor` of a schema string such as `perfledger.run/1.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVersion {
    pub major: u32,
    pub minor: u32,
}

impl SchemaVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        SchemaVersion { major, minor }
    }

    /// Parse `"{name}/{major}.{minor}"`; `None` when the name differs or the version is malformed.
    pub fn parse(name: &str, schema: &str) -> Option<SchemaVersion> {
        let rest = schema.strip_prefix(name)?.strip_prefix('/')?;
        let (major, minor) = rest.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(SchemaVersion::new(major.parse().ok()?, minor.parse().ok()?))
    }

    /// Whether a reader of version `self` can read a file of version `found`: the same major and a
    /// minor no newer than the reader's (minors only add fields, so an older file lacks nothing the
    /// reader requires; a newer one may carry fields this reader does not know).
    pub fn can_read(self, found: SchemaVersion) -> Result<(), VersionError> {
        if found.major != self.major {
            Err(VersionError::OtherMajor {
                found,
                reader: self,
            })
        } else if found.minor > self.minor {
            Err(VersionError::NewerMinor {
                found,
                reader: self,
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a reader refuses a file's schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "schema version {found} has a different major version; this perfledger reads {reader} \
         and older {}.x files",
        reader.major
    )]
    OtherMajor {
        found: SchemaVersion,
        reader: SchemaVersion,
    },
    #[error(
        "schema version {found} is newer than this perfledger ({reader}); upgrade perfledger to \
         read it"
    )]
    NewerMinor {
        found: SchemaVersion,
        reader: SchemaVersion,
    },
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An invariant of a row or a run that does not hold, with the JSON path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", field_prefix(field))]
pub struct RowError {
    /// e.g. `gflops`, `samples_s[3]`; prefixed with `results[i].` by [`RunFile::validate`].
    pub field: String,
    pub reason: String,
}

impl RowError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RowError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn within(self, prefix: &str) -> Self {
        RowError {
            field: format!("{prefix}.{}", self.field),
            reason: self.reason,
        }
    }
}

/// Reading or writing a run file (or an external-rows file) failed. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
    #[error("{} already exists; refusing to overwrite it (use --force)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: not valid JSON: {cause}", path.display())]
    Syntax {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error(
        "{}: not a perfledger run file: `schema` is {}, expected \"{SCHEMA_NAME}/{}.x\"",
        path.display(),
        found.as_deref().unwrap_or("missing"),
        VERSION.major
    )]
    NotRunFile {
        path: PathBuf,
        found: Option<String>,
    },
    #[error("{}: `schema` is \"{found}\": {error}", path.display())]
    Version {
        path: PathBuf,
        found: String,
        error: VersionError,
    },
    #[error("{}: {}{cause}", path.display(), field_prefix(field))]
    Field {
        path: PathBuf,
        field: String,
        cause: serde_json::Error,
    },
    #[error("{}: {error}", path.display())]
    Invalid { path: PathBuf, error: RowError },
    #[error("{}:{line}: {}{reason}", path.display(), field_prefix(field))]
    Line {
        path: PathBuf,
        line: usize,
        field: String,
        reason: String,
    },
}

impl RunFileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            RunFileError::Read { path, .. }
            | RunFileError::Write { path, .. }
            | RunFileError::Exists { path }
            | RunFileError::Syntax { path, .. }
            | RunFileError::NotRunFile { path, .. }
            | RunFileError::Version { path, .. }
            | RunFileError::Field { path, .. }
            | RunFileError::Invalid { path, .. }
            | RunFileError::Line { path, .. } => path,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The document

/// One run: fingerprint, configuration and result rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// `perfledger.run/1.2`. Files of older minors are read as the current version, and this field
    /// is set to [`SCHEMA`] on reading (the value in memory is always of the current version).
    pub schema: String,
    /// Random 128-bit id, 32 lowercase hex digits ([`new_run_id`]).
    pub run_id: String,
    /// When the run started (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// False while running and when interrupted (a partial run).
    pub complete: bool,
    pub harness: HarnessInfo,
    pub environment: Environment,
    #[serde(default)]
    pub measured_ceilings: MeasuredCeilings,
    pub suite: SuiteRef,
    pub config: RunConfig,
    #[serde(default)]
    pub results: Vec<Row>,
}

/// The machine's own ceilings from perfledger's probes (`None`/empty where not measured).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredCeilings {
    /// FMA throughput in GFLOP/s by ISA path name (`avx2fma`, `avx512`, `portable`, ...).
    #[serde(default)]
    pub cpu_fma_gflops: BTreeMap<String, f64>,
    /// Read bandwidth in GB/s (10⁹ bytes per second).
    #[serde(default)]
    pub cpu_read_gbs: Option<f64>,
    /// STREAM-triad bandwidth in GB/s.
    #[serde(default)]
    pub cpu_triad_gbs: Option<f64>,
    /// FMA throughput of the run's selected ISA path measured again after the last row (a shared
    /// VM's speed moves from minute to minute; the pair brackets the rows). Empty when not
    /// measured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_fma_gflops_after: BTreeMap<String, f64>,
    /// Read bandwidth measured again after the last row. `None` when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_read_gbs_after: Option<f64>,
    /// Triad bandwidth measured again after the last row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_triad_gbs_after: Option<f64>,
    /// The read pattern that gave `cpu_read_gbs` (1.2; `cpu_read_gbs` is the best of several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_read_pattern: Option<String>,
    /// Every read pattern's figure, GB/s, by pattern name (1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_read_patterns: BTreeMap<String, f64>,
    #[serde(default)]
    pub gpu: Vec<GpuCeilings>,
}

/// The higher of two optional probe figures (either alone when the other is missing).
fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl MeasuredCeilings {
    /// The CPU probes' figures as a run records them: every FMA-type probe by its key (the ISA
    /// paths and `avx512bf16`), the best read pattern with every pattern's figure, and triad.
    pub fn from_cpu_probes(c: &perfledger_kernels::probe::CpuCeilings) -> MeasuredCeilings {
        let bw = &c.bandwidth;
        MeasuredCeilings {
            cpu_fma_gflops: c
                .fma_by_key()
                .map(|(k, f)| (k.to_string(), f.gflops))
                .collect(),
            cpu_read_gbs: Some(bw.read_gbs),
            cpu_triad_gbs: Some(bw.triad_gbs),
            cpu_read_pattern: Some(bw.read_pattern.name().to_string()),
            cpu_read_patterns: bw
                .read_patterns
                .iter()
                .map(|p| (p.pattern.name().to_string(), p.gbs))
                .collect(),
            ..MeasuredCeilings::default()
        }
    }

    /// The FMA ceiling of ISA path `isa`: the higher of the probes before and after the rows
    /// (conservative, as for bandwidth).
    pub fn fma_ceiling(&self, isa: &str) -> Option<f64> {
        higher(
            self.cpu_fma_gflops.get(isa).copied(),
            self.cpu_fma_gflops_after.get(isa).copied(),
        )
    }

    /// The before-rows FMA figures as `isa N GFLOP/s` (with the after-rows figure where there is
    /// one: `isa N GFLOP/s (M after the rows)`).
    pub fn fma_text(&self) -> Vec<String> {
        self.cpu_fma_gflops
            .iter()
            .map(|(k, v)| match self.cpu_fma_gflops_after.get(k) {
                Some(after) => format!("{k} {v:.0} GFLOP/s ({after:.0} after the rows)"),
                None => format!("{k} {v:.0} GFLOP/s"),
            })
            .collect()
    }

    /// The read-bandwidth ceiling rows are held to: the higher of the probes before and after
    /// the rows (the conservative choice: a memory-bound row's % of ceiling is never inflated by a
    /// probe that happened to fall in a slow window).
    pub fn read_ceiling_gbs(&self) -> Option<f64> {
        higher(self.cpu_read_gbs, self.cpu_read_gbs_after)
    }

    /// `read X GB/s` or `read X GB/s before, Y after the rows`.
    pub fn read_text(&self) -> String {
        match (self.cpu_read_gbs, self.cpu_read_gbs_after) {
            (Some(a), Some(b)) => format!("read {a:.1} GB/s before, {b:.1} after the rows"),
            (Some(a), None) => format!("read {a:.1} GB/s"),
            (None, Some(b)) => format!("read {b:.1} GB/s after the rows"),
            (None, None) => "read n/a".to_string(),
        }
    }
}

/// One GPU adapter's measured ceilings (`index` matches `environment.gpus[].index`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuCeilings {
    pub index: usize,
    /// FMA-heavy shader, GFLOP/s (f32).
    #[serde(default)]
    pub fma_gflops: Option<f64>,
    /// Copy shader, GB/s.
    #[serde(default)]
    pub copy_gbs: Option<f64>,
    /// Cooperative-matrix shader, GFLOP/s, where the adapter has cooperative matrices.
    #[serde(default)]
    pub coop_gflops: Option<f64>,
}

/// Which suite ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRef {
    /// `quick`, `standard`, ..., or the `name` of a suite file.
    pub name: String,
    /// `builtin`, or the path of the suite file.
    #[serde(default)]
    pub source: Option<String>,
}

/// The configuration a run was made with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of the random inputs (cases may override it; their rows then say so in the suite).
    pub seed: u64,
    /// Time budget of one row (case × kernel × dtype), seconds: a target; a row that has not
    /// reached the minimum sample count goes on past it, up to `max_row_s`.
    pub case_budget_s: f64,
    /// The most one row may take (warm-up and samples) to reach the minimum sample count
    /// (1.2; absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_row_s: Option<f64>,
    /// Time budget of the whole run, seconds (`None`: unlimited).
    #[serde(default)]
    pub run_budget_s: Option<f64>,
    /// The command line, as given.
    #[serde(default)]
    pub argv: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Rows

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

/// A matmul shape: `C[b] = A[b]·op(B[b])`, `A` `m×k`, `C` `m×n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulShape {
    #[serde(default = "one")]
    pub batch: u64,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    #[serde(default)]
    pub trans_b: bool,
}

impl From<&MatmulProblem> for MatmulShape {
    fn from(p: &MatmulProblem) -> Self {
        MatmulShape {
            batch: p.batch as u64,
            m: p.m as u64,
            n: p.n as u64,
            k: p.k as u64,
            trans_b: p.trans_b,
        }
    }
}

impl From<&AttentionProblem> for AttentionShape {
    fn from(p: &AttentionProblem) -> Self {
        AttentionShape {
            batch: p.batch as u64,
            q_heads: p.q_heads as u64,
            kv_heads: p.kv_heads as u64,
            q_len: p.q_len as u64,
            kv_len: p.kv_len as u64,
            head_dim: p.head_dim as u64,
            causal: p.causal,
            scale: p.scale as f64,
        }
    }
}

impl From<&Problem> for Shape {
    fn from(p: &Problem) -> Self {
        match p {
            Problem::Matmul(p) => Shape::Matmul(p.into()),
            Problem::Attention(p) => Shape::Attention(p.into()),
        }
    }
}

/// An attention (forward) shape; `q_heads` is a multiple of `kv_heads` (GQA/MQA). A causal mask
/// is aligned to the end (query `i` sees keys up to `kv_len − q_len + i`), so causal needs
/// `q_len ≤ kv_len`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionShape {
    #[serde(default = "one")]
    pub batch: u64,
    pub q_heads: u64,
    pub kv_heads: u64,
    pub q_len: u64,
    pub kv_len: u64,
    pub head_dim: u64,
    #[serde(default)]
    pub causal: bool,
    /// Softmax scale (usually `1/√head_dim`).
    pub scale: f64,
}

fn one() -> u64 {
    1
}

const MATMUL_KEYS: [&str; 3] = ["m", "n", "k"];
const ATTENTION_KEYS: [&str; 5] = ["q_heads", "kv_heads", "q_len", "kv_len", "head_dim"];

/// A row's shape; which one is told by its fields (and must match the row's `op`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Shape {
    Matmul(MatmulShape),
    Attention(AttentionShape),
}

impl Shape {
    /// A short form (`512x512x512`, `64x1024x512 Bt`, `h8/2 q256 kv256 d64 causal`), as the
    /// summary and the report write shapes.
    pub fn short(&self) -> String {
        match self {
            Shape::Matmul(s) => format!(
                "{}{}x{}x{}{}",
                if s.batch > 1 {
                    format!("{}×", s.batch)
                } else {
                    String::new()
                },
                s.m,
                s.n,
                s.k,
                if s.trans_b { " Bt" } else { "" }
            ),
            Shape::Attention(s) => format!(
                "{}h{}/{} q{} kv{} d{}{}",
                if s.batch > 1 {
                    format!("b{} ", s.batch)
                } else {
                    String::new()
                },
                s.q_heads,
                s.kv_heads,
                s.q_len,
                s.kv_len,
                s.head_dim,
                if s.causal { " causal" } else { "" }
            ),
        }
    }

    pub fn op(&self) -> Op {
        match self {
            Shape::Matmul(_) => Op::Matmul,
            Shape::Attention(_) => Op::Attention,
        }
    }

    /// Every dimension ≥ 1; attention: `q_heads` a multiple of `kv_heads`, `scale` finite and > 0.
    pub fn validate(&self) -> Result<(), RowError> {
        let dims: Vec<(&str, u64)> = match self {
            Shape::Matmul(s) => vec![("batch", s.batch), ("m", s.m), ("n", s.n), ("k", s.k)],
            Shape::Attention(s) => vec![
                ("batch", s.batch),
                ("q_heads", s.q_heads),
                ("kv_heads", s.kv_heads),
                ("q_len", s.q_len),
                ("kv_len", s.kv_len),
                ("head_dim", s.head_dim),
            ],
        };
        for (name, v) in dims {
            if v == 0 {
                return Err(RowError::new(format!("shape.{name}"), "must be at least 1"));
            }
        }
        if let Shape::Attention(s) = self {
            if s.q_heads % s.kv_heads != 0 {
                return Err(RowError::new(
                    "shape.kv_heads",
                    format!(
                        "q_heads = {} is not a multiple of kv_heads = {}",
                        s.q_heads, s.kv_heads
                    ),
                ));
            }
            if !(s.scale.is_finite() && s.scale > 0.0) {
                return Err(RowError::new(
                    "shape.scale",
                    format!("{} is not finite and > 0", s.scale),
                ));
            }
            if s.causal && s.q_len > s.kv_len {
                return Err(RowError::new(
                    "shape.q_len",
                    format!(
                        "causal with q_len = {} > kv_len = {} leaves query rows without keys",
                        s.q_len, s.kv_len
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The problem this shape describes (dense leading dimensions), validated by the kernels'
    /// rules. Its [`Problem::work`] gives the FLOPs and minimal bytes by the documented
    /// conventions.
    pub fn problem(&self) -> Result<Problem, RowError> {
        self.validate()?;
        let dim = |name: &str, v: u64| {
            usize::try_from(v).map_err(|_| RowError::new(format!("shape.{name}"), "too large"))
        };
        let problem = match self {
            Shape::Matmul(s) => {
                let p = MatmulProblem::new(dim("m", s.m)?, dim("n", s.n)?, dim("k", s.k)?)
                    .with_batch(dim("batch", s.batch)?);
                Problem::Matmul(if s.trans_b { p.transposed_b() } else { p })
            }
            Shape::Attention(s) => {
                let mut p = AttentionProblem::new(
                    dim("batch", s.batch)?,
                    dim("q_heads", s.q_heads)?,
                    dim("kv_heads", s.kv_heads)?,
                    dim("q_len", s.q_len)?,
                    dim("kv_len", s.kv_len)?,
                    dim("head_dim", s.head_dim)?,
                )
                .causal(s.causal);
                p.scale = s.scale as f32;
                Problem::Attention(p)
            }
        };
        problem
            .validate()
            .map_err(|e| RowError::new("shape", e.to_string()))?;
        Ok(problem)
    }
}

impl From<MatmulShape> for Shape {
    fn from(s: MatmulShape) -> Self {
        Shape::Matmul(s)
    }
}

impl From<AttentionShape> for Shape {
    fn from(s: AttentionShape) -> Self {
        Shape::Attention(s)
    }
}

impl<'de> Deserialize<'de> for Shape {
    /// Decided by the fields present (so an error names the missing or unknown field, not "no
    /// variant matched").
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let is_matmul = MATMUL_KEYS.iter().any(|k| map.contains_key(*k));
        let is_attention = ATTENTION_KEYS.iter().any(|k| map.contains_key(*k));
        match (is_matmul, is_attention) {
            (true, false) => serde_json::from_value(Value::Object(map))
                .map(Shape::Matmul)
                .map_err(|e| D::Error::custom(format!("matmul shape: {e}"))),
            (false, true) => serde_json::from_value(Value::Object(map))
                .map(Shape::Attention)
                .map_err(|e| D::Error::custom(format!("attention shape: {e}"))),
            (true, true) => Err(D::Error::custom(
                "shape mixes matmul fields (m, n, k) with attention fields (q_heads, kv_heads, \
                 q_len, kv_len, head_dim)",
            )),
            (false, false) => Err(D::Error::custom(
                "shape has neither matmul fields (m, n, k) nor attention fields (q_heads, \
                 kv_heads, q_len, kv_len, head_dim)",
            )),
        }
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

    fn validate(&self) -> Result<(), RowError> {
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
        for (i, &t) in self.samples_s.iter().enumerate() {
            if !(t.is_finite() && t >= 0.0) {
                return Err(RowError::new(
                    format!("samples_s[{i}]"),
                    format!("{t} is not a time"),
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
                .all(|v| v.is_finite() && *v >= 0.0)
            {
                return Err(RowError::new(
                    "stats",
                    "every statistic must be finite and ≥ 0",
                ));
            }
            if stats.ci95_s[0] > stats.ci95_s[1] {
                return Err(RowError::new(
                    "stats.ci95_s",
                    "lower bound above upper bound",
                ));
            }
        }
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
        if self.kind == RowKind::Measured {
            let kernel = self
                .kernel
                .as_ref()
                .ok_or_else(|| RowError::new("kernel", "a measured row names its kernel"))?;
            if self.backend.is_none() {
                return Err(RowError::new("backend", "a measured row names its backend"));
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
                if self.kind == RowKind::Measured {
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
        if self.power_w.is_some() {
            return Err(RowError::new("power_w", "reserved: null in schema 1.0"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing

impl RunFile {
    /// A new, incomplete run created now, with a fresh id and no rows.
    pub fn new(
        harness: HarnessInfo,
        environment: Environment,
        suite: SuiteRef,
        config: RunConfig,
    ) -> RunFile {
        RunFile {
            schema: SCHEMA.to_string(),
            run_id: new_run_id(),
            created: OffsetDateTime::now_utc(),
            complete: false,
            harness,
            environment,
            measured_ceilings: MeasuredCeilings::default(),
            suite,
            config,
            results: Vec::new(),
        }
    }

    /// Read and check a run file (version, fields, row invariants). Every error names the file.
    pub fn read(path: impl AsRef<Path>) -> Result<RunFile, RunFileError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|cause| RunFileError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        RunFile::from_slice(&bytes, path)
    }

    /// Parse a run file's bytes; `origin` is the name errors give.
    pub fn from_slice(bytes: &[u8], origin: &Path) -> Result<RunFile, RunFileError> {
        let path = || origin.to_path_buf();
        // The version first, so an old or foreign file is refused for what it is rather than for
        // a field it lacks.
        let value: Value = serde_json::from_slice(bytes).map_err(|cause| RunFileError::Syntax {
            path: path(),
            cause,
        })?;
        let version = check_schema(value.get("schema"), origin)?;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut run: RunFile =
            serde_path_to_error::deserialize(&mut de).map_err(|e| RunFileError::Field {
                path: path(),
                field: field_name(e.path()),
                cause: e.into_inner(),
            })?;
        if version < SchemaVersion::new(1, 2) {
            for row in &mut run.results {
                let backend = row.backend;
                if let Some(k) = row.kernel.as_mut() {
                    if k.unit.is_none() {
                        k.unit = legacy_unit(backend, k);
                    }
                }
            }
        }
        run.validate().map_err(|error| RunFileError::Invalid {
            path: path(),
            error,
        })?;
        run.schema = SCHEMA.to_string();
        Ok(run)
    }

    /// The run's invariants: a run id, and [`Row::validate`] for every row (fields prefixed
    /// `results[i].`).
    pub fn validate(&self) -> Result<(), RowError> {
        if self.run_id.trim().is_empty() {
            return Err(RowError::new("run_id", "is empty"));
        }
        for (i, row) in self.results.iter().enumerate() {
            row.validate()
                .map_err(|e| e.within(&format!("results[{i}]")))?;
        }
        Ok(())
    }

    /// Pretty JSON with a trailing newline, `schema` set to [`SCHEMA`].
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut s = if self.schema == SCHEMA {
            serde_json::to_string_pretty(self)?
        } else {
            let mut current = self.clone();
            current.schema = SCHEMA.to_string();
            serde_json::to_string_pretty(&current)?
        };
        s.push('\n');
        Ok(s)
    }

    /// Write atomically: validate, write a temporary file in the target directory, fsync, then
    /// move it into place. An existing file is replaced only when `force` is set; otherwise it is
    /// left untouched and [`RunFileError::Exists`] returned. Parent directories are created.
    pub fn write(&self, path: impl AsRef<Path>, force: bool) -> Result<(), RunFileError> {
        let path = path.as_ref();
        self.validate().map_err(|error| RunFileError::Invalid {
            path: path.to_path_buf(),
            error,
        })?;
        let json = self.to_json().map_err(|e| RunFileError::Write {
            path: path.to_path_buf(),
            cause: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        write_atomic(path, json.as_bytes(), force)
    }

    /// [`default_run_path`] of this run (host from `environment.hostname`).
    pub fn default_path(&self) -> PathBuf {
        let host = self.environment.hostname.as_deref().unwrap_or("unknown");
        default_run_path(self.created, host, &self.run_id)
    }
}

/// Check a document's `schema` value against [`VERSION`].
fn check_schema(schema: Option<&Value>, origin: &Path) -> Result<SchemaVersion, RunFileError> {
    let found = match schema {
        Some(Value::String(s)) => s,
        other => {
            return Err(RunFileError::NotRunFile {
                path: origin.to_path_buf(),
                found: other.map(|v| v.to_string()),
            })
        }
    };
    let version =
        SchemaVersion::parse(SCHEMA_NAME, found).ok_or_else(|| RunFileError::NotRunFile {
            path: origin.to_path_buf(),
            found: Some(format!("\"{found}\"")),
        })?;
    VERSION
        .can_read(version)
        .map_err(|error| RunFileError::Version {
            path: origin.to_path_buf(),
            found: found.clone(),
            error,
        })?;
    Ok(version)
}

/// The JSON path of a serde error, empty at the top level.
fn field_name(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory (fsynced, then moved
/// into place, then the directory fsynced). Without `force`, an existing `path` is never replaced,
/// even by a file that appears meanwhile (the move is a hard link, which fails if the name exists).
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<(), RunFileError> {
    let werr = |cause: io::Error| RunFileError::Write {
        path: path.to_path_buf(),
        cause,
    };
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(RunFileError::Exists {
            path: path.to_path_buf(),
        });
    }
    let name = path.file_name().ok_or_else(|| {
        werr(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not name a file",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        &new_run_id()[..8]
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(werr)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let published = written.and_then(|()| publish(&tmp, path, force));
    match published {
        Ok(()) => {
            // Make the rename durable; not every platform lets a directory be opened and synced.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(cause) => {
            let _ = fs::remove_file(&tmp);
            if cause.kind() == io::ErrorKind::AlreadyExists {
                Err(RunFileError::Exists {
                    path: path.to_path_buf(),
                })
            } else {
                Err(werr(cause))
            }
        }
    }
}

/// Move `tmp` to `path`: a rename when replacing is allowed, else a hard link (which refuses an
/// existing name atomically) and removal of `tmp`, falling back to check-then-rename on file
/// systems without hard links.
fn publish(tmp: &Path, path: &Path, force: bool) -> io::Result<()> {
    if force {
        return fs::rename(tmp, path);
    }
    match fs::hard_link(tmp, path) {
        Ok(()) => {
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(tmp, path)
        }
    }
}

/// `results/runs/<UTC yyyymmddThhmmssZ>-<host>-<id8>.json`, the host reduced to `[A-Za-z0-9-]`
/// (other characters become `-`, at most 63 kept) and `id8` the first 8 characters of the run id.
pub fn default_run_path(created: OffsetDateTime, hostname: &str, run_id: &str) -> PathBuf {
    let t = created.to_offset(UtcOffset::UTC);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let clean = |s: &str, max: usize| -> String {
        let c: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(max)
            .collect();
        let c = c.trim_matches('-').to_string();
        if c.is_empty() {
            "unknown".to_string()
        } else {
            c
        }
    };
    let host = clean(hostname, 63);
    let id8 = clean(run_id, 8);
    Path::new(RUNS_DIR).join(format!("{stamp}-{host}-{id8}.json"))
}

/// A fresh random 128-bit run id, 32 lowercase hex digits. Mixes the clock, the process id, a
/// per-process counter and the standard library's randomly keyed hasher (seeded from the OS), so
/// ids from concurrent runs on many machines do not collide.
pub fn new_run_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(count);
        h.write_usize(i);
        *w = SplitMix64::new(h.finish()).next_u64();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

// ---------------------------------------------------------------------------------------------
// External rows

/// The kinds an external row may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalKind {
    Peer,
    Imported,
}

impl From<ExternalKind> for RowKind {
    fn from(k: ExternalKind) -> Self {
        match k {
            ExternalKind::Peer => RowKind::Peer,
            ExternalKind::Imported => RowKind::Imported,
        }
    }
}

/// One line of an external-rows file (`perfledger import FILE --into RUN`): a peer library timed
/// on this machine, or a measurement imported from elsewhere. No FLOP field: perfledger computes
/// FLOPs from the shape. Unknown fields are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalRow {
    pub kind: ExternalKind,
    pub op: Op,
    pub shape: Shape,
    pub precision: Precision,
    pub device: Device,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceInfo>,
    /// Seconds per iteration.
    pub samples_s: Vec<f64>,
    /// Computed by the producing script against a float64 reference, or `{"method": "none"}`.
    pub verification: RowVerification,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
    /// When measured (RFC 3339 date or date-time); required for `imported` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Where the number comes from; required for `imported` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Extra provenance: how the script timed (a JSON object, kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Value>,
    /// Extra provenance: the script's configuration (a JSON object, kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

impl ExternalRow {
    /// Parse one JSON line (errors carry the field path).
    pub fn parse_line(line: &str) -> Result<ExternalRow, RowError> {
        let mut de = serde_json::Deserializer::from_str(line);
        let row: ExternalRow = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| RowError::new(field_name(e.path()), e.into_inner().to_string()))?;
        de.end().map_err(|e| RowError::new("", e.to_string()))?;
        row.validate()?;
        Ok(row)
    }

    /// Read a JSON-lines file (blank lines skipped). Errors name the file, line and field.
    pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<ExternalRow>, RunFileError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|cause| RunFileError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = ExternalRow::parse_line(line).map_err(|e| RunFileError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                field: e.field,
                reason: e.reason,
            })?;
            rows.push(row);
        }
        Ok(rows)
    }

    /// Shape matches op, dimensions ≥ 1, at least one sample, all finite and ≥ 0, verification
    /// consistent, `imported` rows say `date` and `source`.
    pub fn validate(&self) -> Result<(), RowError> {
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
        if self.samples_s.is_empty() {
            return Err(RowError::new("samples_s", "at least one sample is needed"));
        }
        Sample::from_slice(&self.samples_s)
            .map_err(|e| RowError::new("samples_s", e.to_string()))?;
        self.verification.validate()?;
        if self.tool.trim().is_empty() {
            return Err(RowError::new("tool", "is empty"));
        }
        for (name, v) in [("timing", &self.timing), ("config", &self.config)] {
            if v.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(RowError::new(name, "must be a JSON object"));
            }
        }
        if self.kind == ExternalKind::Imported {
            for (name, v) in [("date", &self.date), ("source", &self.source)] {
                if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    return Err(RowError::new(
                        name,
                        "an `imported` row states its date and source",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The result row: FLOPs and minimal bytes computed from the shape by the documented
    /// conventions ([`Problem::work`]; `executed` is not known for an outside library and is set
    /// to `useful`), statistics of the samples (default bootstrap), provenance from
    /// tool/tool_version/date/source/instance/timing/config. Status: `incorrect` when the
    /// verification failed, `insufficient_samples` under [`MIN_SAMPLES`], else `ok` (an unverified
    /// `ok` row is shown but not ranked: [`Row::is_rankable`]).
    pub fn into_row(self) -> Result<Row, RowError> {
        self.validate()?;
        let work = self.shape.problem()?.work(self.precision);
        let sample = Sample::new(self.samples_s.clone())
            .map_err(|e| RowError::new("samples_s", e.to_string()))?;
        let summary = sample.summary();
        let mut row = Row::new(
            self.kind.into(),
            self.shape,
            self.precision,
            self.device,
            Status::Error,
        );
        row.flops = Some(Flops::exact(work.flops));
        row.min_bytes = Some(work.min_bytes);
        row.set_samples(&sample, &summary);
        row.provenance = Some(Provenance {
            tool: Some(self.tool),
            tool_version: self.tool_version,
            date: self.date,
            source: self.source,
            instance: self.instance,
            timing: self.timing,
            config: self.config,
        });
        let failed = self.verification.verdict == Some(Verdict::Fail);
        row.verification = Some(self.verification);
        if failed {
            row.set_status(
                Status::Incorrect,
                Some("verification failed (external)".into()),
            )?;
        } else if sample.len() < MIN_SAMPLES {
            let msg = format!("{} samples, fewer than {MIN_SAMPLES}", sample.len());
            row.set_status(Status::InsufficientSamples, Some(msg))?;
        } else {
            row.set_status(Status::Ok, None)?;
        }
        row.validate()?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn ceilings_are_the_higher_of_the_bracketing_probes() {
        let mut c = MeasuredCeilings::default();
        assert_eq!(c.read_ceiling_gbs(), None);
        assert_eq!(c.read_text(), "read n/a");
        c.cpu_read_gbs = Some(47.8);
        assert_eq!(c.read_ceiling_gbs(), Some(47.8));
        c.cpu_read_gbs_after = Some(70.1);
        assert_eq!(c.read_ceiling_gbs(), Some(70.1));
        assert_eq!(c.read_text(), "read 47.8 GB/s before, 70.1 after the rows");
        c.cpu_read_gbs = Some(80.0);
        assert_eq!(c.read_ceiling_gbs(), Some(80.0));
        c.cpu_fma_gflops.insert("avx512f".into(), 520.0);
        assert_eq!(c.fma_ceiling("avx512f"), Some(520.0));
        assert_eq!(c.fma_text(), ["avx512f 520 GFLOP/s"]);
        c.cpu_fma_gflops_after.insert("avx512f".into(), 531.0);
        assert_eq!(c.fma_ceiling("avx512f"), Some(531.0));
        assert_eq!(c.fma_ceiling("avx2fma"), None);
        assert_eq!(c.fma_text(), ["avx512f 520 GFLOP/s (531 after the rows)"]);
        // Older run files without the second probes still parse.
        let old: MeasuredCeilings =
            serde_json::from_str(r#"{"cpu_fma_gflops": {}, "cpu_read_gbs": 40.0}"#).unwrap();
        assert_eq!(old.read_ceiling_gbs(), Some(40.0));
    }
    use super::*;

    #[test]
    fn version_parse() {
        assert_eq!(SchemaVersion::parse(SCHEMA_NAME, SCHEMA), Some(VERSION));
        assert_eq!(
            SchemaVersion::parse(SCHEMA_NAME, "perfledger.run/12.34"),
            Some(SchemaVersion::new(12, 34))
        );
        for bad in [
            "perfledger.run/1",
            "perfledger.run/1.",
            "perfledger.run/a.b",
            "perfledger.suite/1.0",
            "perfledger.run/+1.0",
            "perfledger.run/1.0.0",
        ] {
            assert_eq!(SchemaVersion::parse(SCHEMA_NAME, bad), None, "{bad}");
        }
    }

    #[test]
    fn run_path_is_utc_sanitized_and_short() {
        let t = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01T00:00:00Z
        let t = t.to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
        let p = default_run_path(
            t,
            "ip-10-0-0-1.ec2.internal",
            "0123456789abcdef0123456789abcdef",
        );
        assert_eq!(
            p,
            Path::new("results/runs/20260101T000000Z-ip-10-0-0-1-ec2-internal-01234567.json")
        );
        let p = default_run_path(t, "", "ab");
        assert_eq!(
            p,
            Path::new("results/runs/20260101T000000Z-unknown-ab.json")
        );
    }

    #[test]
    fn run_ids_are_128_bit_hex_and_distinct() {
        let a = new_run_id();
        let b = new_run_id();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = serde_json::from_str::<Shape>(r#"{"m": 2, "n": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `k`"), "{e}");
        let e = serde_json::from_str::<Shape>(r#"{"m": 2, "n": 3, "k": 4, "q": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `q`"), "{e}");
        let e = serde_json::from_str::<Shape>(r#"{"x": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither"), "{e}");
        let s: Shape = serde_json::from_str(r#"{"m": 2, "n": 3, "k": 4}"#).unwrap();
        assert_eq!(
            s,
            Shape::Matmul(MatmulShape {
                batch: 1,
                m: 2,
                n: 3,
                k: 4,
                trans_b: false
            })
        );
    }
}
