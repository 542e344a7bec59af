//! The table `perfledger run` ends with, and the line it prints as each row ends.
//!
//! Rows that ran are one table (kernel, shape, GFLOP/s with its CI or the status, % of the
//! measured ceiling with the bound), at most [`WIDTH`] columns wide; unsupported rows are counted
//! in one line per (backend, reason); rows above their ceiling get a warning naming the row and
//! the probe instead of a percentage ([`crate::ceiling`]); then the measured ceilings.

use crate::ceiling::{self, Share};
use crate::runfile::{Row, RunFile, Status};
use crate::specs::{Database, LoadOptions};
use comfy_table::{Cell, CellAlignment};
use std::fmt::Write;

/// Widest line of the summary table.
pub const WIDTH: usize = crate::report::table::WIDTH;

/// One row of the summary table, as data.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Index into `run.results`.
    pub index: usize,
    pub kernel: String,
    pub shape: String,
    /// `194.5 [192.7, 196.0]` for `ok` rows, else the status.
    pub speed: String,
    /// The row's share of its measured ceiling (`None`: n/a, or no speed).
    pub share: Option<Share>,
    pub verified: bool,
}

impl SummaryRow {
    /// `54% compute`, `above probe (see warnings)`, `n/a`, or `-` for rows without a speed.
    pub fn ceiling_text(&self) -> String {
        match &self.share {
            Some(s) => match s.pct {
                Some(p) => format!("{p:.0}% {}", s.bound.name()),
                None => format!("above probe ({})", s.bound.name()),
            },
            None if self.speed.contains('[') => "n/a".into(),
            None => "-".into(),
        }
    }
}

/// Unsupported rows with one reason on one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedGroup {
    pub backend: String,
    pub reason: String,
    pub rows: usize,
}

/// The spec database the summary locates peer rows with (the report uses the same rule).
fn database() -> Option<Database> {
    Database::embedded(&LoadOptions::default()).ok()
}

/// The table's rows: every row that is not `unsupported`, in run order.
pub fn summary_rows(run: &RunFile) -> Vec<SummaryRow> {
    let db = database();
    let shares = ceiling::shares(db.as_ref(), run);
    run.results
        .iter()
        .zip(shares)
        .enumerate()
        .filter(|(_, (r, _))| r.status != Status::Unsupported)
        .map(|(index, (row, share))| SummaryRow {
            index,
            kernel: row_name(row),
            shape: shape_str(row),
            speed: match (&row.gflops, row.status) {
                (Some(g), Status::Ok) => {
                    format!("{:.1} [{:.1}, {:.1}]", g.median, g.ci95[0], g.ci95[1])
                }
                _ => row.status.to_string(),
            },
            share,
            verified: row.verification.as_ref().is_some_and(|v| v.passed()),
        })
        .collect()
}

/// Unsupported rows grouped by (backend, reason), in order of first appearance.
pub fn unsupported_groups(run: &RunFile) -> Vec<UnsupportedGroup> {
    let mut groups: Vec<UnsupportedGroup> = Vec::new();
    for r in run
        .results
        .iter()
        .filter(|r| r.status == Status::Unsupported)
    {
        let backend = r
            .backend
            .map(|b| b.name().to_string())
            .unwrap_or_else(|| r.kind.name().to_string());
        let reason = r
            .reason
            .clone()
            .or_else(|| r.message.clone())
            .unwrap_or_else(|| "no reason given".into());
        match groups
            .iter_mut()
            .find(|g| g.backend == backend && g.reason == reason)
        {
            Some(g) => g.rows += 1,
            None => groups.push(UnsupportedGroup {
                backend,
                reason,
                rows: 1,
            }),
        }
    }
    groups
}

fn row_name(row: &Row) -> String {
    row.id
        .clone()
        .unwrap_or_else(|| format!("{} ({})", row.kind.name(), row.device.name))
}

/// The summary: the table, the unsupported groups, the warnings, the ceilings.
pub fn format_summary(run: &RunFile) -> String {
    let rows = summary_rows(run);
    let mut out = String::new();
    out.push('\n');
    if !rows.is_empty() {
        let mut t = crate::report::table::grid(WIDTH as u16);
        t.set_header(["kernel", "shape", "GFLOP/s [95% CI]", "% of ceiling"]);
        for r in &rows {
            let speed = if r.speed.contains('[') && !r.verified {
                format!("{} unverified", r.speed)
            } else {
                r.speed.clone()
            };
            t.add_row(vec![
                Cell::new(&r.kernel),
                Cell::new(&r.shape),
                Cell::new(speed).set_alignment(CellAlignment::Right),
                Cell::new(r.ceiling_text()).set_alignment(CellAlignment::Right),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    // Everything below the table wrapped to the table's width.
    let mut say = |text: String, first: &str, rest: &str| {
        out.push_str(&crate::report::table::wrap(&text, WIDTH, first, rest));
    };
    for g in unsupported_groups(run) {
        say(
            format!(
                "{} {} row{}: {}",
                g.rows,
                g.backend,
                if g.rows == 1 { "" } else { "s" },
                g.reason
            ),
            "unsupported: ",
            "    ",
        );
    }
    for w in rows
        .iter()
        .filter_map(|r| r.share.as_ref()?.probe_wrong.as_ref())
    {
        say(w.clone(), "warning: ", "    ");
    }
    let c = &run.measured_ceilings;
    if !c.cpu_fma_gflops.is_empty() {
        say(
            format!(
                "FMA {}; {}; triad {:.1} GB/s",
                c.fma_text().join(", "),
                c.read_text(),
                c.cpu_triad_gbs.unwrap_or(f64::NAN),
            ),
            "measured ceilings: ",
            "    ",
        );
    }
    for g in &c.gpu {
        let f = |v: Option<f64>, unit: &str| {
            v.map(|x| format!("{x:.1} {unit}"))
                .unwrap_or_else(|| "n/a".into())
        };
        say(
            format!(
                "GPU {} ceilings: FMA {} (f32); copy {}; cooperative matrix {}",
                g.index,
                f(g.fma_gflops, "GFLOP/s"),
                f(g.copy_gbs, "GB/s"),
                f(g.coop_gflops, "GFLOP/s")
            ),
            "measured ",
            "    ",
        );
    }
    say(
        "matmul 2·M·N·K, attention 4·head_dim·unmasked (q,k) pairs; GFLOP/s from the median \
         sample; % of the measured ceiling: the roofline of the row's probes"
            .to_string(),
        "FLOPs: ",
        "    ",
    );
    out
}

/// The line printed as a row ends (`ok`, `BAD` incorrect, `ERR` error, `--` otherwise).
pub fn row_line(row: &Row) -> String {
    let id = row.id.clone().unwrap_or_default();
    match (&row.gflops, row.status) {
        (Some(g), Status::Ok) => format!(
            "  ok  {:<44} {:<28} {:>8.1} GFLOP/s [{:.1}, {:.1}]",
            id,
            shape_str(row),
            g.median,
            g.ci95[0],
            g.ci95[1]
        ),
        _ => format!(
            "  {:<3} {:<44} {:<28} {}{}",
            match row.status {
                Status::Incorrect => "BAD",
                Status::Error => "ERR",
                _ => "--",
            },
            id,
            shape_str(row),
            row.status,
            row.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
    }
}

/// The row's shape as the summary writes it (the report's short form).
pub fn shape_str(row: &Row) -> String {
    row.shape.short()
}
