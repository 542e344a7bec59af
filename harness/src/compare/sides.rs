//! The two sides of a comparison: their run files (one per round), their configuration, and the
//! rows of each round keyed for matching.
//!
//! **Configuration** is what the user set: the suite, seed, row budget and cap, run budget, the
//! run's options (`config.options`, 1.3: threads as given, pinning, `--isa`, `--blocking`,
//! CI target, probes, GPU choice, test kernels; not the row filters, which select rows rather than
//! change how they run), the threads and ISA path the run used,
//! pinning, and the build's features. The git commit, perfledger version and the parameters a
//! kernel chose itself are never configuration: they are what a comparison measures.
//!
//! Rows are matched on op, shape, kernel id (family, variant, precision) and hardware: the CPU
//! model for CPU rows (not `device.name`, which includes the thread count), the PCI vendor and
//! device id for GPU rows, the device name for external rows. The same key twice in one file (a
//! suite that repeats a shape) is told apart by its occurrence.

use crate::runfile::{Row, RunFile};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One side: its rounds, in the order given, and their common configuration.
#[derive(Clone, Debug)]
pub struct Side {
    pub rounds: Vec<(PathBuf, RunFile)>,
    pub config: BTreeMap<String, String>,
}

/// Why a side cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    #[error("no run files given for the {0} side")]
    Empty(&'static str),
    #[error("{0}")]
    Mixed(String),
}

impl Side {
    /// A side from its rounds (run files already read); `name` is `base` or `candidate`.
    pub fn new(name: &'static str, rounds: Vec<(PathBuf, RunFile)>) -> Result<Side, SideError> {
        let Some((first_path, first)) = rounds.first() else {
            return Err(SideError::Empty(name));
        };
        let config = configuration(first);
        for (path, run) in &rounds[1..] {
            let other = configuration(run);
            if let Some(d) = config_differences(&config, &other).into_iter().next() {
                return Err(SideError::Mixed(format!(
                    "{name} rounds differ in configuration: {} has {} = {}, {} has {} (the \
                     rounds of one side must be the same job)",
                    first_path.display(),
                    d.setting,
                    d.base,
                    path.display(),
                    d.candidate
                )));
            }
        }
        Ok(Side { rounds, config })
    }

    pub fn summary(&self) -> super::SideSummary {
        let mut commits: Vec<String> = Vec::new();
        let mut versions: Vec<String> = Vec::new();
        for (_, run) in &self.rounds {
            let c = match (&run.harness.git_commit, run.harness.git_dirty) {
                (Some(c), Some(true)) => format!("{c} (dirty)"),
                (Some(c), _) => c.clone(),
                (None, _) => "unknown".to_string(),
            };
            if !commits.contains(&c) {
                commits.push(c);
            }
            if !versions.contains(&run.harness.version) {
                versions.push(run.harness.version.clone());
            }
        }
        super::SideSummary {
            files: self
                .rounds
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect(),
            git_commits: commits,
            versions,
            suite: self.config.get("suite").cloned().unwrap_or_default(),
        }
    }
}

/// Options that only select rows (`--backend`, `--dtype`, `--kernel`, `--case`): not
/// configuration. `scripts/ci-perf.sh` runs one row per process with them, so base and candidate
/// rounds of a row are adjacent in time.
pub const ROW_FILTERS: [&str; 4] = ["backends", "dtypes", "kernels", "cases"];

/// A setting whose value differs between two configurations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigDifference {
    pub setting: String,
    pub base: String,
    pub candidate: String,
}

/// A run's configuration, setting by setting (values as text; absent settings are not listed).
pub fn configuration(run: &RunFile) -> BTreeMap<String, String> {
    let mut c = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        c.insert(k.to_string(), v);
    };
    set("suite", run.suite.name.clone());
    set("seed", run.config.seed.to_string());
    set("case_budget_s", run.config.case_budget_s.to_string());
    if let Some(v) = run.config.max_row_s {
        set("max_row_s", v.to_string());
    }
    set(
        "run_budget_s",
        run.config
            .run_budget_s
            .map_or("unlimited".into(), |v| v.to_string()),
    );
    set("threads_used", run.environment.cpu.threads_used.to_string());
    set("pinned", run.environment.cpu.pinned.to_string());
    set("isa_selected", run.environment.cpu.isa_selected.clone());
    let mut features = run.harness.features.clone();
    features.sort();
    set("features", features.join(","));
    if let Some(o) = &run.config.options {
        // Every option by its JSON name, so a new option is compared without a change here;
        // the row filters select rows rather than change how they run (a row one side did not
        // run is listed `not comparable`), so they are not configuration.
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(o) {
            for (k, v) in map {
                if !ROW_FILTERS.contains(&k.as_str()) {
                    set(&format!("options.{k}"), v.to_string());
                }
            }
        }
        // `rounds` is written only above 1 (every file before 1.9 measured each row in one go),
        // so a run without it is one turn, not an unknown setting.
        set("options.rounds", o.rounds.unwrap_or(1).to_string());
    }
    c
}

/// The settings present in either configuration whose values differ (a setting one side does not
/// record, e.g. `options` of a 1.2 file, is not a difference).
pub fn config_differences(
    base: &BTreeMap<String, String>,
    candidate: &BTreeMap<String, String>,
) -> Vec<ConfigDifference> {
    base.iter()
        .filter_map(|(k, b)| {
            let c = candidate.get(k)?;
            (b != c).then(|| ConfigDifference {
                setting: k.clone(),
                base: b.clone(),
                candidate: c.clone(),
            })
        })
        .collect()
}

/// The match key of a row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub op: String,
    /// The shape's JSON (exact, scale included).
    pub shape: String,
    /// Kernel id, or `kind:tool/device` for external rows without one.
    pub id: String,
    pub hardware: String,
    /// 0 for the first row of this key in its file, 1 for the second, ...
    pub occurrence: usize,
}

impl RowKey {
    /// The key as one line (`--noise` files join on it).
    pub fn text(&self) -> String {
        let mut s = format!("{} {} {} @ {}", self.op, self.id, self.shape, self.hardware);
        if self.occurrence > 0 {
            s.push_str(&format!(" #{}", self.occurrence + 1));
        }
        s
    }

    /// The key without the hardware (to say "hardware differs" for rows that match otherwise).
    pub fn without_hardware(&self) -> (String, String, String, usize) {
        (
            self.op.clone(),
            self.shape.clone(),
            self.id.clone(),
            self.occurrence,
        )
    }
}

/// The hardware a row ran on, as rows are matched by it.
pub fn hardware(run: &RunFile, row: &Row) -> String {
    use perfledger_kernels::kernel::Backend;
    match (row.kind, row.backend) {
        (crate::runfile::RowKind::Measured | crate::runfile::RowKind::Peer, Some(Backend::Cpu)) => {
            format!(
                "cpu {}",
                run.environment.cpu.model.as_deref().unwrap_or("unknown")
            )
        }
        (_, Some(Backend::Gpu)) => {
            let gpu = row
                .device
                .gpu_index
                .and_then(|i| run.environment.gpus.iter().find(|g| g.index == i));
            match gpu {
                Some(g) => match (g.vendor_id, g.device_id) {
                    (Some(v), Some(d)) => format!("gpu {v:04x}:{d:04x}"),
                    _ => format!("gpu {}", g.name),
                },
                None => format!("gpu {}", row.device.name),
            }
        }
        _ => format!("device {}", row.device.name),
    }
}

/// A row's key within its file (`seen` counts keys already met in this file).
pub fn row_key(
    run: &RunFile,
    row: &Row,
    seen: &mut BTreeMap<(String, String, String, String), usize>,
) -> RowKey {
    let id = row.id.clone().unwrap_or_else(|| {
        let tool = row
            .provenance
            .as_ref()
            .and_then(|p| p.tool.clone())
            .unwrap_or_else(|| "unknown".into());
        format!(
            "{}:{tool}.{}-{}-{}",
            row.kind.name(),
            row.precision.input.name(),
            row.precision.accum.name(),
            row.precision.output.name()
        )
    });
    let shape = serde_json::to_string(&row.shape).unwrap_or_default();
    let hw = hardware(run, row);
    let base = (
        row.op.name().to_string(),
        shape.clone(),
        id.clone(),
        hw.clone(),
    );
    let n = seen.entry(base).or_insert(0);
    let occurrence = *n;
    *n += 1;
    RowKey {
        op: row.op.name().to_string(),
        shape,
        id,
        hardware: hw,
        occurrence,
    }
}

/// Every round's rows by key: `key → [(round index, row)]`, keys in first-seen order.
pub fn rows_by_key(side: &Side) -> Vec<(RowKey, Vec<(usize, &Row)>)> {
    let mut order: Vec<RowKey> = Vec::new();
    let mut map: BTreeMap<RowKey, Vec<(usize, &Row)>> = BTreeMap::new();
    for (i, (_, run)) in side.rounds.iter().enumerate() {
        let mut seen = BTreeMap::new();
        for row in &run.results {
            let key = row_key(run, row, &mut seen);
            let entry = map.entry(key.clone()).or_default();
            if entry.is_empty() {
                order.push(key);
            }
            entry.push((i, row));
        }
    }
    order
        .into_iter()
        .map(|k| {
            let v = map.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// Read the run files of one side (each error names its file).
pub fn read_side(
    paths: &[PathBuf],
) -> Result<Vec<(PathBuf, RunFile)>, crate::runfile::RunFileError> {
    paths
        .iter()
        .map(|p| Ok((p.clone(), RunFile::read(Path::new(p))?)))
        .collect()
}
