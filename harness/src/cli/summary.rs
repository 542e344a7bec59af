//! The table `perfledger run` ends with, and the line it prints as each row ends.
//!
//! Rows that ran are one table (kernel, shape, GFLOP/s with its CI or the status, % of the
//! measured ceiling with the bound), at most [`WIDTH`] columns wide; unsupported rows are counted
//! in one line per (backend, reason); rows above their ceiling get a warning naming the row and
//! the probe instead of a percentage; then the measured ceilings.
//!
//! The table is a view of the report model (`report::build` of the one run, no projections):
//! its GFLOP/s and % of ceiling cells are the report's own fields through the report's own cell
//! formatters (`report::format`), so the run summary and every report format print one number.

use crate::normalize::Bound;
use crate::report::format::{gflops_cell, pct_measured, peer_ratio_cell};
use crate::report::{self, Input, Options, RowReport};
use crate::runfile::{Row, RowKind, RunFile, Status};
use crate::specs::{Database, LoadOptions};
use comfy_table::{Cell, CellAlignment};
use std::fmt::Write;

/// Widest line of the summary table.
pub const WIDTH: usize = crate::report::table::WIDTH;

/// One row of the summary table: a view of the report's row.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Index into `run.results` (and the report's rows).
    pub index: usize,
    pub kernel: String,
    pub shape: String,
    /// `194.5 [192.7, 196.0]` for `ok` rows, else the status.
    pub speed: String,
    /// The report's % of the measured ceiling (`None`: n/a, above its probe, or no speed).
    pub pct: Option<f64>,
    pub bound: Option<Bound>,
    /// The warning when the row is above its ceiling.
    pub probe_wrong: Option<String>,
    /// The report's cell: `54%`, `above probe (see notes)`, `n/a`, or `-` without a speed.
    pub ceiling: String,
    pub verified: bool,
    /// The report's ratio to the best peer of the workload (`1.04×`), `peer` on peer rows, else
    /// empty.
    pub vs_peer: String,
}

impl SummaryRow {
    /// `54% compute`, `above probe (see notes) compute`, `n/a`, or `-` for rows without a speed.
    pub fn ceiling_text(&self) -> String {
        match self.bound {
            Some(b) if self.ceiling != "n/a" => format!("{} {}", self.ceiling, b.name()),
            _ => self.ceiling.clone(),
        }
    }

    fn from_report(r: &RowReport, row: &Row) -> SummaryRow {
        let m = r.measured.as_ref();
        SummaryRow {
            index: r.index,
            kernel: row_name(row),
            shape: r.shape.clone(),
            speed: match (&r.gflops, r.status) {
                (Some(_), Status::Ok) => gflops_cell(r),
                _ => r.status.to_string(),
            },
            pct: m.and_then(|m| m.pct_of_attainable),
            bound: m.and_then(|m| m.bound),
            probe_wrong: m.and_then(|m| m.probe_wrong.clone()),
            ceiling: match m {
                Some(m) => pct_measured(m),
                None if r.gflops.is_some() => "n/a".into(),
                None => "-".into(),
            },
            verified: row.verification.as_ref().is_some_and(|v| v.passed()),
            vs_peer: match (&r.vs_peer, r.kind) {
                (Some(v), _) => peer_ratio_cell(v),
                (None, RowKind::Peer) => "peer".into(),
                (None, _) => String::new(),
            },
        }
    }
}

/// The spec database the report model is built with: today's embedded database (a machine whose
/// clock is before the database's dates gets it judged at the run's own date).
fn database(run: &RunFile) -> Option<Database> {
    Database::embedded(&LoadOptions::default())
        .or_else(|_| {
            Database::embedded(&LoadOptions {
                as_of: run.created.date(),
                ..LoadOptions::default()
            })
        })
        .ok()
}

/// The table's rows: every row that is not `unsupported`, in run order.
pub fn summary_rows(run: &RunFile) -> Vec<SummaryRow> {
    let Some(db) = database(run) else {
        return Vec::new();
    };
    let rep = report::build(
        &[Input {
            file: String::new(),
            run: run.clone(),
        }],
        &db,
        &Options {
            targets: Vec::new(),
            efficiency: None,
        },
    );
    rep.rows
        .iter()
        .zip(&run.results)
        .filter(|(_, row)| row.status != Status::Unsupported)
        .map(|(r, row)| SummaryRow::from_report(r, row))
        .collect()
}

/// Unsupported rows with one reason on one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedGroup {
    pub backend: String,
    pub reason: String,
    pub rows: usize,
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
        let header = crate::report::table::SUMMARY_HEADER.map(String::from);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let speed = if r.speed.contains('[') && !r.verified {
                    format!("{} unverified", r.speed)
                } else {
                    r.speed.clone()
                };
                vec![
                    r.kernel.clone(),
                    r.shape.clone(),
                    speed,
                    r.ceiling_text(),
                    r.vs_peer.clone(),
                ]
            })
            .collect();
        // Kernel ids whole (they are what `--kernel` takes); a long shape wraps at its spaces.
        let mut t = crate::report::table::grid(WIDTH as u16);
        crate::report::table::set_header_fitted(&mut t, &header, &cells, None);
        for c in cells {
            t.add_row(c.into_iter().enumerate().map(|(k, text)| {
                let cell = Cell::new(text);
                if k >= 2 {
                    cell.set_alignment(CellAlignment::Right)
                } else {
                    cell
                }
            }));
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
    for note in report::peer_caveats(&run.results) {
        say(note, "note: ", "    ");
    }
    for w in rows.iter().filter_map(|r| r.probe_wrong.as_ref()) {
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
         sample; % of the measured ceiling: the roofline of the row's probes; vs best peer: the \
         fastest verified peer row of the same workload's median time over this row's (> 1: \
         faster than every peer)"
            .to_string(),
        "FLOPs: ",
        "    ",
    );
    super::terminal_safe(&out).into_owned()
}

/// The line printed as a row ends (`ok`, `BAD` incorrect, `ERR` error, `--` otherwise).
pub fn row_line(row: &Row) -> String {
    let id = row.id.clone().unwrap_or_default();
    let line = match (&row.gflops, row.status) {
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
    };
    super::terminal_safe(&line).into_owned()
}

/// The row's shape as the summary writes it (the report's short form).
pub fn shape_str(row: &Row) -> String {
    row.shape.short()
}
