//! `perfledger ingest-criterion [DIR] --out RUN.json`: criterion's output tree as a run file.
//!
//! criterion writes, per benchmark, `DIR/<group>/<function>/new/{benchmark,estimates,sample}.json`
//! (the same layout in criterion 0.5 and 0.7, the version this project's `benches/` use).
//! `benchmark.json` names the benchmark (`group_id`, `function_id`, `value_str`, `throughput`,
//! `full_id`); `sample.json` holds the measurement (`iters` and total `times` in ns per sample;
//! seconds per iteration are `times[i] / iters[i] / 1e9`). `estimates.json` is not needed (the
//! statistics are recomputed from the samples, as every row's are) but must parse when present.
//!
//! criterion's format is not perfledger's, so reading is lenient about what it does not need
//! (unknown fields are ignored) and strict about what it does: a `new/` directory without
//! `benchmark.json` or `sample.json`, or one that does not parse, is an error naming the file.
//!
//! Bench ids made by `benches/` (group `matmul/512x512x512` or `attention/b1-h8/2-q1-kv2048-d64`,
//! function the kernel id) map back to the registered kernel and the shape, so a `cargo bench`
//! result becomes a `measured` row that `compare` and `report` join with `run`'s rows. The benches
//! verify every kernel before timing it and stop on a failure (`benches/src/lib.rs`), so a result
//! under a kernel's id is of a kernel that passed; the row's verification says exactly that
//! (method `bench-before-timing`). Other ids become `foreign` entries of the run file: their
//! criterion id and statistics, no FLOP count, shown by reports and never ranked.

use crate::runfile::{
    Device, Flops, ForeignBench, Row, RowStats, RowVerification, Shape, Status, StopReason, Timing,
    TimingMethod, Verdict,
};
use crate::stats::Sample;
use perfledger_kernels::{AttentionProblem, MatmulProblem, Problem, Registry, RegistryOptions};
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};

/// The verification method of rows ingested from `benches/` (verified before timing).
pub const BENCH_VERIFICATION: &str = "bench-before-timing";

/// Why a criterion tree cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CriterionError {
    #[error("{path}: {cause}")]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("{path}: {cause}")]
    Parse {
        path: PathBuf,
        #[source]
        cause: serde_json::Error,
    },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{0}: no criterion results (no `new/benchmark.json` below it)")]
    Empty(PathBuf),
}

/// `benchmark.json`, the fields used (others ignored: criterion's own format).
#[derive(Debug, Deserialize)]
struct BenchmarkJson {
    group_id: String,
    #[serde(default)]
    function_id: Option<String>,
    #[serde(default)]
    value_str: Option<String>,
    #[serde(default)]
    full_id: Option<String>,
}

/// `sample.json`.
#[derive(Debug, Deserialize)]
struct SampleJson {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// One benchmark read from the tree.
#[derive(Debug, Clone)]
pub struct CriterionBench {
    /// `group/function/value` as criterion prints it.
    pub full_id: String,
    pub group_id: String,
    /// The function id or the parameter (`BenchmarkId::from_parameter` sets only `value_str`).
    pub function: Option<String>,
    /// Seconds per iteration, in sample order.
    pub samples_s: Vec<f64>,
    /// The `new/` directory.
    pub dir: PathBuf,
}

/// Every `new/` benchmark below `root`, sorted by directory.
pub fn read_tree(root: &Path) -> Result<Vec<CriterionBench>, CriterionError> {
    let meta = fs::metadata(root).map_err(|cause| CriterionError::Read {
        path: root.to_path_buf(),
        cause,
    })?;
    if !meta.is_dir() {
        return Err(CriterionError::Invalid {
            path: root.to_path_buf(),
            what: "is not a directory (criterion's output tree, e.g. target/criterion)".into(),
        });
    }
    let mut dirs = Vec::new();
    find_new_dirs(root, &mut dirs, 0)?;
    dirs.sort();
    let benches = dirs
        .into_iter()
        .map(|d| read_bench(&d))
        .collect::<Result<Vec<_>, _>>()?;
    if benches.is_empty() {
        return Err(CriterionError::Empty(root.to_path_buf()));
    }
    Ok(benches)
}

/// Directories named `new` (criterion's latest measurement) holding a `benchmark.json`; `report`
/// trees and `base`/`change` directories are skipped. Symlinks are not followed.
fn find_new_dirs(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), CriterionError> {
    const MAX_DEPTH: usize = 16;
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let entries = fs::read_dir(dir).map_err(|cause| CriterionError::Read {
        path: dir.to_path_buf(),
        cause,
    })?;
    for e in entries {
        let e = e.map_err(|cause| CriterionError::Read {
            path: dir.to_path_buf(),
            cause,
        })?;
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let path = e.path();
        let name = e.file_name();
        if name == "new" {
            out.push(path);
        } else if name != "report" && name != "base" && name != "change" {
            find_new_dirs(&path, out, depth + 1)?;
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CriterionError> {
    let bytes = crate::input::read(path).map_err(|cause| CriterionError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    serde_json::from_slice(&bytes).map_err(|cause| CriterionError::Parse {
        path: path.to_path_buf(),
        cause,
    })
}

fn read_bench(dir: &Path) -> Result<CriterionBench, CriterionError> {
    let b: BenchmarkJson = read_json(&dir.join("benchmark.json"))?;
    let sample_path = dir.join("sample.json");
    let s: SampleJson = read_json(&sample_path)?;
    let estimates = dir.join("estimates.json");
    if estimates.exists() {
        let _: serde_json::Value = read_json(&estimates)?;
    }
    let invalid = |what: String| CriterionError::Invalid {
        path: sample_path.clone(),
        what,
    };
    if s.iters.len() != s.times.len() {
        return Err(invalid(format!(
            "`iters` has {} values and `times` {}",
            s.iters.len(),
            s.times.len()
        )));
    }
    if s.iters.is_empty() {
        return Err(invalid("no samples".into()));
    }
    let mut samples_s = Vec::with_capacity(s.iters.len());
    for (i, (&n, &t)) in s.iters.iter().zip(&s.times).enumerate() {
        if !(n.is_finite() && n >= 1.0) {
            return Err(invalid(format!("`iters[{i}]` is {n}, not a count ≥ 1")));
        }
        if !(t.is_finite() && t > 0.0) {
            return Err(invalid(format!(
                "`times[{i}]` is {}, not a time > 0 ns",
                crate::limits::show_number(t)
            )));
        }
        let per_iter = t / n / 1e9;
        if per_iter > crate::limits::MAX_TIME_S {
            return Err(invalid(format!(
                "`times[{i}]` / `iters[{i}]` is {} s per iteration, above {:e} s",
                crate::limits::show_number(per_iter),
                crate::limits::MAX_TIME_S
            )));
        }
        samples_s.push(per_iter);
    }
    let function = b.function_id.clone().or(b.value_str.clone());
    let full_id = b.full_id.clone().unwrap_or_else(|| match &function {
        Some(f) => format!("{}/{f}", b.group_id),
        None => b.group_id.clone(),
    });
    Ok(CriterionBench {
        full_id,
        group_id: b.group_id,
        function,
        samples_s,
        dir: dir.to_path_buf(),
    })
}

/// The problem a `benches/` group names (`matmul/[Bx]MxNxK[-bt]`,
/// `attention/bB-hQ/KV-qQ-kvK-dD[-causal]`), or `None` for any other group.
pub fn parse_group(group: &str) -> Option<Problem> {
    if let Some(rest) = group.strip_prefix("matmul/") {
        let (dims, trans_b) = match rest.strip_suffix("-bt") {
            Some(d) => (d, true),
            None => (rest, false),
        };
        let v: Vec<usize> = dims
            .split('x')
            .map(|d| d.parse().ok().filter(|&x| x > 0))
            .collect::<Option<_>>()?;
        let (batch, m, n, k) = match v.as_slice() {
            [m, n, k] => (1, *m, *n, *k),
            [b, m, n, k] => (*b, *m, *n, *k),
            _ => return None,
        };
        let mut p = MatmulProblem::new(m, n, k).with_batch(batch);
        if trans_b {
            p = p.transposed_b();
        }
        return Some(Problem::Matmul(p));
    }
    let rest = group.strip_prefix("attention/")?;
    let (rest, causal) = match rest.strip_suffix("-causal") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let [b, h, q, kv, d] = parts.as_slice() else {
        return None;
    };
    let num = |s: &str, prefix: &str| -> Option<usize> {
        s.strip_prefix(prefix)?.parse().ok().filter(|&x| x > 0)
    };
    let (qh, kvh) = h.strip_prefix('h')?.split_once('/')?;
    let (qh, kvh): (usize, usize) = (qh.parse().ok()?, kvh.parse().ok()?);
    if qh == 0 || kvh == 0 || qh % kvh != 0 {
        return None;
    }
    let p = AttentionProblem::new(
        num(b, "b")?,
        qh,
        kvh,
        num(q, "q")?,
        num(kv, "kv")?,
        num(d, "d")?,
    )
    .causal(causal);
    if causal && p.q_len > p.kv_len {
        return None;
    }
    Some(Problem::Attention(p))
}

/// What an ingest produced.
pub struct Ingested {
    pub rows: Vec<Row>,
    pub foreign: Vec<ForeignBench>,
}

/// Rows for the benches of `benches/` (kernel id and shape known), foreign entries for the rest.
/// `device` labels the rows (this machine).
pub fn to_rows(benches: &[CriterionBench], device: &Device) -> Result<Ingested, CriterionError> {
    let registry = Registry::new(&RegistryOptions::default());
    let mut rows = Vec::new();
    let mut foreign = Vec::new();
    for b in benches {
        let sample = Sample::from_slice(&b.samples_s).map_err(|e| CriterionError::Invalid {
            path: b.dir.join("sample.json"),
            what: e.to_string(),
        })?;
        let summary = sample.summary();
        let kernel = b
            .function
            .as_deref()
            .and_then(|f| registry.kernels().iter().find(|k| k.identity().id() == f));
        let problem = parse_group(&b.group_id);
        match (kernel, problem) {
            (Some(k), Some(problem)) if k.identity().op == problem.op() => {
                let id = k.identity();
                let work = problem.work(id.precision);
                let mut row = Row::measured(&id, Shape::from(&problem), device.clone(), Status::Ok);
                row.flops = Some(Flops {
                    useful: work.flops,
                    executed: work.flops,
                });
                row.min_bytes = Some(work.min_bytes);
                row.set_samples(&sample, &summary);
                row.timing = Some(Timing {
                    method: TimingMethod::Wall,
                    warmup_iters: 0,
                    iters_per_sample: 1,
                    stop_reason: StopReason::CaseBudget,
                    budget_s: None,
                    max_row_s: None,
                    sampling_s: None,
                    row_s: None,
                    turns: None,
                });
                row.verification = Some(RowVerification {
                    method: BENCH_VERIFICATION.to_string(),
                    samples: None,
                    error: None,
                    bound: None,
                    verdict: Some(Verdict::Pass),
                    detail: Some(format!(
                        "criterion bench {}: benches/ verify the kernel before timing it and \
                         stop on a failure",
                        b.full_id
                    )),
                });
                let status = if sample.len() >= crate::stats::MIN_SAMPLES {
                    Status::Ok
                } else {
                    Status::InsufficientSamples
                };
                let msg = format!(
                    "criterion ({}); samples are criterion's (per-iteration means of each \
                     sample's iterations)",
                    b.dir.display()
                );
                row.set_status(status, Some(msg))
                    .map_err(|e| CriterionError::Invalid {
                        path: b.dir.clone(),
                        what: e.to_string(),
                    })?;
                rows.push(row);
            }
            _ => foreign.push(ForeignBench {
                tool: "criterion".into(),
                id: b.full_id.clone(),
                samples_s: b.samples_s.clone(),
                stats: RowStats::from(&summary),
                source: Some(b.dir.display().to_string()),
            }),
        }
    }
    Ok(Ingested { rows, foreign })
}
