//! The report as a document of headings, paragraphs, lists and tables — laid out once here and
//! rendered as terminal text ([`super::table`]), Markdown ([`super::md`]) and HTML
//! ([`super::html`], which also draws the charts at the [`Block::Chart`] places).

use super::{interval, num, opt, pct, usd, Report, RowReport, WorkloadReport};

mod sections;
mod workload;

use crate::runfile::{RowKind, Status};
use crate::specs::fmt_num;
use sections::*;
use workload::*;

/// A chart the HTML renderer draws at this place (text formats skip it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    Roofline,
    /// Perf-per-dollar bars of workload `i`.
    PerfPerDollar(usize),
    Scaling,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// How the terminal shows it (Markdown and HTML show every column).
    pub terminal: Terminal,
}

/// The terminal's view of a table: the columns it shows, and the columns whose cells become
/// numbered footnotes under the table (long provenance: sources, offers, reasons). Columns in
/// neither are left out of the terminal view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Terminal {
    /// Indices of the columns shown, each with a shorter header where it has one; empty: every
    /// column not in `footnotes`.
    pub show: Vec<(usize, Option<String>)>,
    pub footnotes: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    Table(Table),
    Chart(Chart),
}

pub(super) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Block {
    Block::Table(Table {
        headers: headers.iter().map(|s| s.to_string()).collect(),
        rows,
        terminal: Terminal::default(),
    })
}

/// A table the terminal shows in part: `show` and `footnotes` name columns by header; a shown
/// column may get a shorter terminal header as `header=short`.
pub(crate) fn for_terminal(block: Block, show: &[&str], footnotes: &[&str]) -> Block {
    let Block::Table(mut t) = block else {
        return block;
    };
    let index = |name: &str| -> usize {
        t.headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", t.headers))
    };
    t.terminal = Terminal {
        show: show
            .iter()
            .map(|n| match n.split_once('=') {
                Some((name, short)) => (index(name), Some(short.to_string())),
                None => (index(n), None),
            })
            .collect(),
        footnotes: footnotes.iter().map(|n| index(n)).collect(),
    };
    Block::Table(t)
}

pub(super) fn si(v: f64, unit: &str) -> String {
    let (d, p) = if v >= 1e12 {
        (1e12, "T")
    } else if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    format!("{} {p}{unit}", num(v / d))
}

use super::format::{gflops_cell as gflops, pct_measured};

/// A measured row's ratio to the best peer of its workload in its run, with the CI and the peer:
/// `1.04× [1.01, 1.07] vs matmul.cpu.openblas.sgemm.f32-f32-f32`; `—` without one.
pub(super) fn vs_peer(r: &RowReport) -> String {
    match &r.vs_peer {
        Some(v) => format!(
            "{} [{:.2}, {:.2}] vs {}",
            super::format::peer_ratio_cell(v),
            v.ci95[0],
            v.ci95[1],
            v.peer
        ),
        None => "—".into(),
    }
}

pub(super) fn kind_label(k: RowKind) -> String {
    k.name().to_string()
}

/// The document of a report: its sections in order.
pub fn document(rep: &Report) -> Vec<Block> {
    let mut b = Vec::new();
    for section in [
        title,
        summary,
        conventions,
        runs,
        targets,
        workloads,
        llm,
        scaling,
        all_rows,
        foreign,
        sources,
    ] {
        section(rep, &mut b);
    }
    b
}
