//! The outputs of `compare`: `table` (terminal), `md` (a CI job summary: regressions first, then
//! improvements, then the rest collapsed) and `json` (`perfledger.compare/1`). Each states the
//! method: statistic, threshold, correction, resampling and the noise thresholds.

use super::{Comparison, Resampled, RowComparison, Verdict};
use crate::report::md::cell as md_cell;
use crate::report::table::grid;
use clap::ValueEnum;
use comfy_table::{Cell, ColumnConstraint};

/// Output formats of `compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Plain text for a terminal.
    Table,
    /// GitHub-flavoured Markdown for a CI job summary.
    Md,
    /// `perfledger.compare/1` (results/README.md, results/schema/compare-1.schema.json).
    Json,
}

/// Render a comparison.
pub fn render(c: &Comparison, format: CompareFormat) -> String {
    match format {
        CompareFormat::Table => table(c),
        CompareFormat::Md => markdown(c),
        CompareFormat::Json => {
            let mut s = serde_json::to_string_pretty(c).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

fn ratio_cell(r: &RowComparison) -> String {
    match (r.ratio, r.ci95) {
        (Some(x), Some([lo, hi])) => format!("{x:.3} [{lo:.3}, {hi:.3}]"),
        _ => "—".into(),
    }
}

fn share(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The smaller one-sided p-value and the Holm level it was tested at (`—` where an earlier
/// hypothesis stopped the procedure).
fn p_cell(r: &RowComparison, terse: bool) -> String {
    match (r.p_slower, r.p_faster) {
        (Some(s), Some(f)) => {
            let p = s.min(f);
            match (r.holm_level, terse) {
                (Some(l), false) => format!("{p:.1e} (level {l:.1e})"),
                (Some(l), true) => format!("{p:.0e}/{l:.0e}"),
                (None, false) => format!("{p:.1e} (not reached)"),
                (None, true) => format!("{p:.0e}/—"),
            }
        }
        _ => "—".into(),
    }
}

fn rounds_cell(r: &RowComparison) -> String {
    let how = match r.resampled {
        Some(Resampled::Pairs) => " pairs",
        Some(Resampled::Rounds) => " rounds",
        Some(Resampled::Samples) => " samples",
        None => "",
    };
    format!("{}/{}{how}", r.rounds[0], r.rounds[1])
}

/// What a reader should know beside the numbers: why not compared, noise, changed parameters.
fn note(r: &RowComparison) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(reason) = &r.reason {
        parts.push(reason.clone());
    }
    if r.noisy {
        parts.push(format!(
            "noisy: {}",
            r.noise_detail
                .as_deref()
                .unwrap_or("steal, run queue or memory")
        ));
    }
    if !r.params_changed.is_empty() {
        let p: Vec<String> = r
            .params_changed
            .iter()
            .map(|p| format!("{} {} → {}", p.name, p.base, p.candidate))
            .collect();
        parts.push(format!("kernel chose {}", p.join(", ")));
    }
    parts.join("; ")
}

/// The header lines every format starts with: sides, configuration, method.
fn header_lines(c: &Comparison) -> Vec<String> {
    let side = |name: &str, s: &super::SideSummary| {
        format!(
            "{name}: {} run file(s) of suite {}, commit {}, perfledger {}",
            s.files.len(),
            s.suite,
            s.git_commits.join(", "),
            s.versions.join(", ")
        )
    };
    let mut lines = vec![side("base", &c.base), side("candidate", &c.candidate)];
    if c.config_differences.is_empty() {
        lines.push("configuration: identical".into());
    } else {
        let d: Vec<String> = c
            .config_differences
            .iter()
            .map(|d| format!("{}: {} → {}", d.setting, d.base, d.candidate))
            .collect();
        lines.push(format!(
            "configuration DIFFERS ({}): {}",
            if c.config_diff_allowed {
                "compared anyway, --allow-config-diff"
            } else {
                "rows not compared; pass --allow-config-diff to compare them"
            },
            d.join("; ")
        ));
    }
    let m = &c.method;
    lines.push(format!(
        "method: {}; threshold {:.1}%; {}; {} bootstrap resamples (seed {:#x}); {} with ≥ {} \
         rounds per side, samples otherwise{}; noisy: steal above {}% or {}, or a memory-bound \
         row's read alongside {:.0}% apart between the sides",
        m.statistic,
        m.threshold * 100.0,
        m.correction,
        m.resamples,
        m.seed,
        if m.paired {
            "paired rounds (--paired): per-pair ratios resampled"
        } else {
            "rounds resampled"
        },
        m.min_rounds_for_round_resampling,
        m.noise_file
            .as_ref()
            .map(|f| format!("; A/A noise floors from {f}"))
            .unwrap_or_default(),
        m.noisy_steal_pct,
        m.noisy_run_queue,
        100.0 * m.noisy_read_alongside
    ));
    let k = &c.counts;
    lines.push(format!(
        "verdicts: {} slower, {} newly incorrect, {} faster, {} no change, {} not comparable, {} \
         unsupported ({} noisy) → exit {}",
        k.slower,
        k.newly_incorrect,
        k.faster,
        k.no_change,
        k.not_comparable,
        k.unsupported,
        k.noisy,
        c.exit_code
    ));
    lines
}

/// Rows in the order the outputs show them: failures, improvements, the rest.
fn ordered(c: &Comparison) -> Vec<&RowComparison> {
    let mut rows: Vec<&RowComparison> = c.rows.iter().collect();
    rows.sort_by_key(|r| match r.verdict {
        Verdict::NewlyIncorrect => 0,
        Verdict::Slower => 1,
        Verdict::Faster => 2,
        Verdict::NoChange => 3,
        Verdict::NotComparable => 4,
        Verdict::Unsupported => 5,
    });
    rows
}

const COLUMNS: [&str; 9] = [
    "verdict",
    "kernel",
    "shape",
    "ratio [95% CI]",
    "t",
    "p/Holm level",
    "MDE",
    "rounds",
    "note",
];

/// One row's cells; `terse` for the terminal (kernel ids without `op.backend.`).
fn cells(r: &RowComparison, terse: bool) -> [String; 9] {
    [
        r.verdict.name().to_string(),
        if terse {
            crate::report::table::short_kernel(&r.id)
        } else {
            r.id.clone()
        },
        r.shape.clone(),
        ratio_cell(r),
        share(r.tolerance),
        p_cell(r, terse),
        share(r.mde),
        if terse {
            rounds_short(r)
        } else {
            rounds_cell(r)
        },
        note(r),
    ]
}

/// The terminal's columns: the numbers a reader scans; each row's note becomes a numbered
/// footnote under the table (identical notes share a number), the p-values are in `md`/`json`.
const TERMINAL_COLUMNS: [&str; 8] = [
    "verdict",
    "kernel",
    "shape",
    "ratio [95% CI]",
    "t",
    "MDE",
    "rounds",
    "note",
];

fn table(c: &Comparison) -> String {
    const WIDTH: usize = crate::report::table::WIDTH;
    let mut out = String::new();
    for l in header_lines(c) {
        out.push_str(&crate::report::table::wrap(&l, WIDTH, "", "  "));
    }
    if !c.rows_compared {
        return out;
    }
    // Unsupported rows are counted in the header, not listed one by one.
    let rows: Vec<&RowComparison> = ordered(c)
        .into_iter()
        .filter(|r| r.verdict != Verdict::Unsupported)
        .collect();
    let mut notes: Vec<String> = Vec::new();
    let mut t = grid(WIDTH as u16);
    t.set_header(TERMINAL_COLUMNS.iter().map(|h| Cell::new(*h)));
    for r in rows {
        let text = note(r);
        let mark = if text.is_empty() {
            String::new()
        } else {
            let n = match notes.iter().position(|n| *n == text) {
                Some(i) => i + 1,
                None => {
                    notes.push(text);
                    notes.len()
                }
            };
            format!("[{n}]")
        };
        let [verdict, kernel, shape, ratio, tol, _p, mde, rounds, _note] = cells(r, true);
        t.add_row(
            [verdict, kernel, shape, ratio, tol, mde, rounds, mark]
                .into_iter()
                .map(Cell::new),
        );
    }
    // The numbers never wrap; kernel ids and shapes wrap in what is left.
    for column in [0, 3, 4, 5, 6, 7] {
        if let Some(c) = t.column_mut(column) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    out.push('\n');
    out.push_str(&t.to_string());
    out.push('\n');
    for (i, n) in notes.iter().enumerate() {
        let first = format!("[{}] ", i + 1);
        let rest = " ".repeat(first.chars().count());
        out.push_str(&crate::report::table::wrap(n, WIDTH, &first, &rest));
    }
    out.push('\n');
    out.push_str(&crate::report::table::wrap(
        "ratio = candidate / base median time (> 1: slower); t = max(threshold, noise floors; \
         under CPU contention run queue / CPUs − 1); \
         MDE = the smallest slowdown the row would flag at Holm's strictest level, from the \
         base's own spread; rounds = verified rounds base/candidate. p-values and Holm levels: \
         --format md or json.",
        WIDTH,
        "",
        "",
    ));
    out
}

fn rounds_short(r: &RowComparison) -> String {
    format!("{}/{}", r.rounds[0], r.rounds[1])
}

fn md_table(rows: &[&RowComparison], out: &mut String) {
    out.push_str(&format!("| {} |\n", COLUMNS.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len())));
    for r in rows {
        let c: Vec<String> = cells(r, false).iter().map(|s| md_cell(s)).collect();
        out.push_str(&format!("| {} |\n", c.join(" | ")));
    }
}

fn markdown(c: &Comparison) -> String {
    let mut out = String::from("## perfledger compare\n\n");
    let k = &c.counts;
    let headline = if c.exit_code == 2 {
        "**configurations differ: nothing compared**".to_string()
    } else if k.slower + k.newly_incorrect > 0 {
        format!(
            "**{} slower, {} newly incorrect** (fails the job)",
            k.slower, k.newly_incorrect
        )
    } else {
        "**no regression**".to_string()
    };
    out.push_str(&format!("{headline}\n\n"));
    for l in header_lines(c) {
        out.push_str(&format!("- {}\n", md_cell(&l)));
    }
    out.push('\n');
    if !c.rows_compared {
        return out;
    }
    let rows = ordered(c);
    let failing: Vec<&RowComparison> = rows.iter().copied().filter(|r| r.verdict.fails()).collect();
    let faster: Vec<&RowComparison> = rows
        .iter()
        .copied()
        .filter(|r| r.verdict == Verdict::Faster)
        .collect();
    let rest: Vec<&RowComparison> = rows
        .iter()
        .copied()
        .filter(|r| !r.verdict.fails() && r.verdict != Verdict::Faster)
        .collect();
    if !failing.is_empty() {
        out.push_str("### Regressions\n\n");
        md_table(&failing, &mut out);
        out.push('\n');
    }
    if !faster.is_empty() {
        out.push_str("### Improvements\n\n");
        md_table(&faster, &mut out);
        out.push('\n');
    }
    if !rest.is_empty() {
        out.push_str(&format!(
            "<details><summary>{} other rows (no change, not comparable, unsupported)</summary>\n\n",
            rest.len()
        ));
        md_table(&rest, &mut out);
        out.push_str("\n</details>\n");
    }
    out
}
