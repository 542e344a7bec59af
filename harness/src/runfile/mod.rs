//! Run files: one JSON document per run, schema `perfledger.run/1.9` (DESIGN.md "Result file",
//! `results/README.md`, `results/schema/run-1.9.schema.json`; 1.9 added the turns in which each
//! case's rows were measured (`config.options.rounds`, a row's `timing.turns`); 1.8 added what the pool's other
//! workers did between a CPU row's calls (`config.options.idle_workers`); 1.7 added the read of a memory-bound
//! CPU row's own inputs alongside its samples (`read_alongside`); 1.6 added the tune cache a run used
//! (`config.tune_cache`); 1.5 in-process peer rows; 1.4 added how each instance field was found (`environment.instance.found_by`) and the SkyPilot job of the run (`environment.instance.skypilot`); 1.3 added the options the run was
//! made with (`config.options`, what `compare` checks as configuration) and each measured row's
//! machine noise (`noise`: steal time and run queue while it sampled); 1.1 added the optional after-rows
//! probes of `measured_ceilings`; 1.2 the compute unit of every measured row's kernel
//! (`kernel.unit`), the `vdpbf16ps` probe and the read-bandwidth patterns, each row's budget,
//! cap and times (`timing.budget_s`, `max_row_s`, `sampling_s`, `row_s`), the `row_cap` stop reason
//! and `config.max_row_s`), and the JSON-lines format of external rows
//! (`results/schema/external-rows-1.schema.json`).
//!
//! Field names here are pinned: reports, exports and outside scripts read exactly these. A new
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
pub const SCHEMA: &str = "perfledger.run/1.9";
/// The version this build writes and reads (with older minors of the same major).
pub const VERSION: SchemaVersion = SchemaVersion::new(1, 9);
/// Where runs go by default (relative to the working directory; git-ignored).
pub const RUNS_DIR: &str = "results/runs";

mod ceilings;
mod error;
mod external;
mod files;
mod row;
mod shape;
mod version;

pub use ceilings::*;
pub use error::*;
pub use external::*;
pub use files::*;
pub use row::*;
pub use shape::*;
pub use version::*;

/// One run: fingerprint, configuration and result rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// `perfledger.run/1.3`. Files of older minors are read as the current version, and this field
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
    /// Benchmarks of other tools this run file carries without a FLOP count or a shape (1.3:
    /// criterion benches whose ids are not perfledger kernels, from `ingest-criterion`). Shown by
    /// reports, never ranked or normalized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign: Vec<ForeignBench>,
}

/// A benchmark of another tool: its own id and its times, nothing perfledger could check (1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignBench {
    /// The tool (`criterion`).
    pub tool: String,
    /// The tool's id of the benchmark (criterion's `full_id`).
    pub id: String,
    /// Seconds per iteration, in sample order.
    pub samples_s: Vec<f64>,
    pub stats: RowStats,
    /// Where it was read from.
    #[serde(default)]
    pub source: Option<String>,
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
    /// The options the user set (1.3; absent in older files): with the suite, the budgets, the
    /// seed and the build features, the run's configuration as `compare` checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<RunOptions>,
    /// The tune cache the GPU kernels' configurations came from (1.6; absent when none was
    /// used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune_cache: Option<TuneCacheRef>,
}

/// The tune cache a run used (`perfledger.tune/1`, written by `perfledger tune`) (1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneCacheRef {
    /// Where it was read from.
    pub path: String,
    /// SHA-256 of the file's bytes (lowercase hex).
    pub sha256: String,
    /// Entries in it (for every adapter).
    pub entries: usize,
    /// Per (kernel, shape class) asked about: `tuned <configuration>`, or why the default was
    /// used (no entry for this adapter; an entry for another driver version, ignored).
    pub notes: Vec<String>,
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the user chose for a run, beyond the suite, seed and budgets (1.3). Defaults are
/// recorded as unset (`threads: null` = all online CPUs), so two runs with the same command line
/// on the same machine record the same options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    /// `--threads` as given.
    pub threads: Option<usize>,
    /// `--pin`.
    pub pin: bool,
    /// `--idle-workers` (1.8); [`IdleWorkers::Sleep`] when a file lacks it (before 1.8 the
    /// pool's workers slept between calls), so `compare` sees the difference.
    #[serde(default)]
    pub idle_workers: IdleWorkers,
    /// `--rounds` above 1 (1.9): each case's rows were measured in this many turns, the order
    /// reversed every other turn. Absent: one turn (every file before 1.9, and `--rounds 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
    /// `--isa` as given.
    pub isa: Option<String>,
    /// `--blocking` as given.
    pub blocking: Option<String>,
    /// `--backend` (empty: every backend).
    pub backends: Vec<Backend>,
    /// `--dtype` (empty: every dtype).
    pub dtypes: Vec<perfledger_kernels::DType>,
    /// `--kernel` globs (empty: every kernel).
    pub kernels: Vec<String>,
    /// `--case` globs (empty: every case).
    #[serde(default)]
    pub cases: Vec<String>,
    /// `--ci-target`.
    pub ci_target: f64,
    /// `--probes` (`full` or `off`).
    pub probes: String,
    /// `--allow-software-gpu`.
    pub allow_software_gpu: bool,
    /// `--gpu` as given.
    pub gpu: Option<String>,
    /// `--tune-cache` as given (1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune_cache: Option<String>,
    /// `--allow-test-kernels`.
    pub allow_test_kernels: bool,
}

/// What the other workers of a run's pool do between the calls of a CPU row that runs on the
/// pool, while the row is measured (`--idle-workers`; the runner's `KeepAwake`). The same
/// lowercase names on the command line and in the run file. The type's default, `Sleep`, is
/// what a file without the field did (runs before 1.8 let the workers sleep); `run`'s own
/// default is `Spin`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IdleWorkers {
    /// Every worker but the one running the row polls the pool for work (running what it
    /// finds) from the row's verified first run until its measurement ends, as OpenBLAS's
    /// threads poll between calls: a kernel's calls start on workers already running.
    Spin,
    /// rayon's own behaviour: a worker that finds no work sleeps after a short spin, and the
    /// next call wakes it.
    #[default]
    Sleep,
}

impl IdleWorkers {
    /// The name in the run file and on the command line (the plan line prints it).
    pub fn name(self) -> &'static str {
        match self {
            IdleWorkers::Spin => "spin",
            IdleWorkers::Sleep => "sleep",
        }
    }
}

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
            foreign: Vec::new(),
        }
    }

    /// Read and check a run file (version, fields, row invariants). Every error names the file.
    pub fn read(path: impl AsRef<Path>) -> Result<RunFile, RunFileError> {
        let path = path.as_ref();
        let bytes = crate::input::read(path).map_err(|cause| RunFileError::Read {
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
        if let Some(r) = self.config.options.as_ref().and_then(|o| o.rounds) {
            if r < 2 {
                return Err(RowError::new(
                    "config.options.rounds",
                    format!("is {r}: written only above 1 (absent: one turn)"),
                ));
            }
        }
        for (i, row) in self.results.iter().enumerate() {
            row.validate()
                .map_err(|e| e.within(&format!("results[{i}]")))?;
        }
        for (i, f) in self.foreign.iter().enumerate() {
            if f.id.trim().is_empty() {
                return Err(RowError::new(format!("foreign[{i}].id"), "is empty"));
            }
            if f.samples_s.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
                return Err(RowError::new(
                    format!("foreign[{i}].samples_s"),
                    "holds a value that is not finite and ≥ 0",
                ));
            }
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
pub(crate) fn check_schema(
    schema: Option<&Value>,
    origin: &Path,
) -> Result<SchemaVersion, RunFileError> {
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
pub(crate) fn field_name(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." {
        String::new()
    } else {
        s
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
