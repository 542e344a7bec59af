//! `perfledger export RUN --format bmf|gab-bigger|gab-smaller`: a run's verified `ok` rows for
//! benchmark trackers.
//!
//! - **`bmf`**, Bencher Metric Format: one JSON object keyed by benchmark name (`id/shape`), each
//!   with the measures `latency` (median nanoseconds per iteration, `lower_value`/`upper_value`
//!   the 95% CI of the median) and `throughput` (GFLOP/s of the useful FLOPs, CI inverted).
//! - **`gab-smaller`** / **`gab-bigger`**, github-action-benchmark's `customSmallerIsBetter` /
//!   `customBiggerIsBetter` JSON: one array of `{name, unit, value, range, extra}`, the latency
//!   in ns or the throughput in GFLOP/s, `range` the CI's half-width as `± x`, `extra` the device,
//!   samples and commit.
//!
//! Only rows a report may rank (`ok` and verified with a pass) are exported: a row that failed
//! verification, or has too few samples, has no number to track. The names are stable across
//! runs (kernel id, `/`, the shape as a problem prints it: `512x512x512`, `64x1024x512-bt`,
//! `b1-h8/2-q1-kv2048-d64-causal`), a repeated name gets ` #2`, ` #3`.

use crate::runfile::{Row, RunFile};
use clap::ValueEnum;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Bencher Metric Format (latency in ns, throughput in GFLOP/s).
    Bmf,
    /// github-action-benchmark `customBiggerIsBetter` (GFLOP/s).
    GabBigger,
    /// github-action-benchmark `customSmallerIsBetter` (ns per iteration).
    GabSmaller,
}

/// A row's stable benchmark name: `id/shape` (external rows: their label and shape).
pub fn bench_name(row: &Row) -> String {
    let shape = row
        .shape
        .problem()
        .map(|p| p.to_string())
        .unwrap_or_else(|_| row.shape.short().replace(' ', "-"));
    let id = row.id.clone().unwrap_or_else(|| {
        let tool = row
            .provenance
            .as_ref()
            .and_then(|p| p.tool.clone())
            .unwrap_or_else(|| row.kind.name().to_string());
        format!("{}.{tool}", row.op.name())
    });
    format!("{id}/{shape}")
}

/// The exported rows with their unique names, in run order (files in the order given).
fn named_rows(runs: &[RunFile]) -> Vec<(String, &RunFile, &Row)> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    runs.iter()
        .flat_map(|run| run.results.iter().map(move |r| (run, r)))
        .filter(|(_, r)| r.is_rankable() && r.stats.is_some() && r.gflops.is_some())
        .map(|(run, r)| {
            let base = bench_name(r);
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let name = if *n == 1 {
                base
            } else {
                format!("{base} #{n}")
            };
            (name, run, r)
        })
        .collect()
}

/// The export of runs in `format`, as pretty JSON with a trailing newline.
pub fn export(run: &[RunFile], format: ExportFormat) -> String {
    let value = match format {
        ExportFormat::Bmf => bmf(run),
        ExportFormat::GabBigger => gab(run, true),
        ExportFormat::GabSmaller => gab(run, false),
    };
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

/// How many rows an export holds (for the command's message).
pub fn exported_rows(run: &[RunFile]) -> usize {
    named_rows(run).len()
}

fn bmf(run: &[RunFile]) -> Value {
    let mut out = Map::new();
    for (name, _, r) in named_rows(run) {
        let (Some(s), Some(g)) = (r.stats, r.gflops) else {
            continue;
        };
        out.insert(
            name,
            json!({
                "latency": {
                    "value": s.median_s * 1e9,
                    "lower_value": s.ci95_s[0] * 1e9,
                    "upper_value": s.ci95_s[1] * 1e9,
                },
                "throughput": {
                    "value": g.median,
                    "lower_value": g.ci95[0],
                    "upper_value": g.ci95[1],
                },
            }),
        );
    }
    Value::Object(out)
}

fn gab(run: &[RunFile], bigger: bool) -> Value {
    let rows: Vec<Value> = named_rows(run)
        .into_iter()
        .filter_map(|(name, run, r)| {
            let commit = run.harness.git_commit.clone().unwrap_or_default();
            let (s, g) = (r.stats?, r.gflops?);
            let (unit, value, lo, hi) = if bigger {
                ("GFLOP/s", g.median, g.ci95[0], g.ci95[1])
            } else {
                ("ns", s.median_s * 1e9, s.ci95_s[0] * 1e9, s.ci95_s[1] * 1e9)
            };
            let half = (hi - lo).abs() / 2.0;
            Some(json!({
                "name": name,
                "unit": unit,
                "value": value,
                "range": format!("± {}", significant(half)),
                "extra": format!(
                    "{}; {} samples; 95% CI [{}, {}] {unit}; commit {}",
                    r.device.name,
                    r.samples_s.len(),
                    significant(lo),
                    significant(hi),
                    if commit.is_empty() { "unknown" } else { &commit }
                ),
            }))
        })
        .collect();
    Value::Array(rows)
}

/// Four significant digits, without exponent noise for everyday magnitudes.
fn significant(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}
