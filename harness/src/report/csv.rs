//! The CSV format: one line per result row (`record` = `row`) and one per projection of a
//! workload onto a target (`record` = `projected`), every number unrounded, every column always
//! present (empty = n/a). The columns are the fields of [`Record`], in order, written by the
//! `csv` crate (RFC 4180 quoting); text cells that a spreadsheet would run as a formula (`=`,
//! `+`, `-`, `@` first) are prefixed with `'`.

use super::Report;
use crate::runfile::RowKind;
use serde::Serialize;

/// One CSV line. Field names are the header; `None` is an empty cell.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Record {
    pub record: &'static str,
    pub run: Option<usize>,
    pub run_file: String,
    pub kind: &'static str,
    pub status: String,
    pub rankable: bool,
    pub rank: Option<usize>,
    pub not_ranked_reason: String,
    pub workload: String,
    pub op: &'static str,
    pub shape: String,
    pub precision: String,
    pub dtype: &'static str,
    pub case: String,
    pub device: String,
    pub device_key: String,
    pub kernel: String,
    pub flops: Option<u64>,
    pub min_bytes: Option<u64>,
    pub intensity: Option<f64>,
    pub gflops_median: Option<f64>,
    pub gflops_ci_lo: Option<f64>,
    pub gflops_ci_hi: Option<f64>,
    pub median_s: Option<f64>,
    pub verification: String,
    pub spec_id: String,
    pub spec_how: String,
    pub spec_na: String,
    pub published_peak_gflops: Option<f64>,
    pub published_basis: String,
    pub published_bw_gbs: Option<f64>,
    pub published_attainable_gflops: Option<f64>,
    pub published_bound: &'static str,
    pub pct_published_peak: Option<f64>,
    pub pct_published_attainable: Option<f64>,
    pub measured_peak_gflops: Option<f64>,
    pub measured_bw_gbs: Option<f64>,
    pub measured_attainable_gflops: Option<f64>,
    pub measured_bound: &'static str,
    pub pct_measured_ceiling: Option<f64>,
    /// Set when the row is above its measured ceiling (the probe is not its ceiling).
    pub measured_probe_wrong: String,
    pub ceiling_gap: Option<f64>,
    pub usd_per_hour: Option<f64>,
    pub price_share: String,
    pub price_source: String,
    pub price_as_of: String,
    pub price_stale: Option<bool>,
    pub gflops_per_usd_hour: Option<f64>,
    pub gflop_per_usd: Option<f64>,
    pub gflop_per_usd_lo: Option<f64>,
    pub gflop_per_usd_hi: Option<f64>,
    pub usd_per_pflop: Option<f64>,
    pub usd_per_pflop_lo: Option<f64>,
    pub usd_per_pflop_hi: Option<f64>,
    pub per_core_usd_per_hour: Option<f64>,
    pub per_core_gflop_per_usd: Option<f64>,
    pub projected_ceiling_gflops: Option<f64>,
    pub projected_realistic_gflops: Option<f64>,
    pub projected_assumption: String,
    pub break_even_usd_per_chip_hour: Option<f64>,
    pub break_even_lo: Option<f64>,
    pub break_even_hi: Option<f64>,
    pub break_even_from: &'static str,
    /// Measured rows: the best peer of the workload's median time over this row's, its CI and
    /// the peer.
    pub vs_peer_ratio: Option<f64>,
    pub vs_peer_ci_lo: Option<f64>,
    pub vs_peer_ci_hi: Option<f64>,
    pub vs_peer: String,
    /// Memory-bound CPU rows: the read of their own inputs alongside their samples (1e9 bytes/s)
    /// and the row's share of it.
    pub read_alongside_gbs: Option<f64>,
    pub read_alongside_share: Option<f64>,
}

/// A text cell: one a spreadsheet would evaluate as a formula gets a leading `'`.
pub fn text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn opt_text(s: Option<&str>) -> String {
    s.map(text).unwrap_or_default()
}

/// The records of a report: every row, then every projection.
pub fn records(rep: &Report) -> Vec<Record> {
    let rank_of = |row: usize| -> Option<usize> {
        rep.workloads
            .iter()
            .flat_map(|w| &w.ranking)
            .find(|r| r.row == row)
            .map(|r| r.rank)
    };
    let mut out = Vec::new();
    for r in &rep.rows {
        let run = &rep.runs[r.run];
        let p = r.published.as_ref();
        let m = r.measured.as_ref();
        let pr = r.price.as_ref();
        out.push(Record {
            record: "row",
            run: Some(r.run + 1),
            run_file: text(&run.file),
            kind: r.kind.name(),
            status: r.status.to_string(),
            rankable: r.rankable,
            rank: rank_of(r.index),
            not_ranked_reason: opt_text(r.not_ranked.as_deref()),
            workload: text(&r.workload),
            op: r.op.name(),
            shape: text(&r.shape),
            precision: r.precision.clone(),
            dtype: r.dtype.name(),
            case: opt_text(r.case.as_deref()),
            device: text(&r.device),
            device_key: text(&r.device_key),
            kernel: text(&r.kernel),
            flops: Some(r.flops),
            min_bytes: Some(r.min_bytes),
            intensity: Some(r.intensity),
            gflops_median: r.gflops.map(|g| g.median),
            gflops_ci_lo: r.gflops.map(|g| g.lo),
            gflops_ci_hi: r.gflops.map(|g| g.hi),
            median_s: r.median_s,
            verification: text(&r.verification),
            spec_id: opt_text(r.spec.as_ref().map(|s| s.id.as_str())),
            spec_how: opt_text(r.spec.as_ref().map(|s| s.how.as_str())),
            spec_na: opt_text(r.spec_na.as_deref()),
            published_peak_gflops: p.map(|x| x.peak_gflops),
            published_basis: opt_text(p.map(|x| x.peak_basis.as_str())),
            published_bw_gbs: p.and_then(|x| x.bw_gbs),
            published_attainable_gflops: p.and_then(|x| x.attainable_gflops),
            published_bound: p.and_then(|x| x.bound).map(|b| b.name()).unwrap_or(""),
            pct_published_peak: p.map(|x| x.pct_of_peak),
            pct_published_attainable: p.and_then(|x| x.pct_of_attainable),
            measured_peak_gflops: m.map(|x| x.peak_gflops),
            measured_bw_gbs: m.and_then(|x| x.bw_gbs),
            measured_attainable_gflops: m.and_then(|x| x.attainable_gflops),
            measured_bound: m.and_then(|x| x.bound).map(|b| b.name()).unwrap_or(""),
            pct_measured_ceiling: m.and_then(|x| x.pct_of_attainable),
            measured_probe_wrong: opt_text(m.and_then(|x| x.probe_wrong.as_deref())),
            ceiling_gap: r.ceiling_gap,
            usd_per_hour: pr.map(|x| x.usd_per_hour),
            price_share: opt_text(pr.map(|x| x.share.as_str())),
            price_source: opt_text(pr.map(|x| x.instance.source.as_str())),
            price_as_of: opt_text(pr.and_then(|x| x.instance.as_of.as_deref())),
            price_stale: pr.map(|x| x.instance.stale),
            gflops_per_usd_hour: pr.map(|x| x.perf.gflops_per_usd_hour.median),
            gflop_per_usd: pr.map(|x| x.perf.gflop_per_usd.median),
            gflop_per_usd_lo: pr.map(|x| x.perf.gflop_per_usd.lo),
            gflop_per_usd_hi: pr.map(|x| x.perf.gflop_per_usd.hi),
            usd_per_pflop: pr.map(|x| x.perf.usd_per_pflop.median),
            usd_per_pflop_lo: pr.map(|x| x.perf.usd_per_pflop.lo),
            usd_per_pflop_hi: pr.map(|x| x.perf.usd_per_pflop.hi),
            per_core_usd_per_hour: r.per_core.as_ref().map(|c| c.usd_per_hour),
            per_core_gflop_per_usd: r.per_core.as_ref().map(|c| c.perf.gflop_per_usd.median),
            vs_peer_ratio: r.vs_peer.as_ref().map(|v| v.ratio),
            vs_peer_ci_lo: r.vs_peer.as_ref().map(|v| v.ci95[0]),
            vs_peer_ci_hi: r.vs_peer.as_ref().map(|v| v.ci95[1]),
            vs_peer: opt_text(r.vs_peer.as_ref().map(|v| v.peer.as_str())),
            read_alongside_gbs: r.read_alongside_gbs,
            read_alongside_share: r.read_alongside_share,
            ..Record::default()
        });
    }
    for w in &rep.workloads {
        for p in &w.projections {
            let pj = p.projection.as_ref();
            let price = p.price.as_ref();
            let cp = p.ceiling_perf.as_ref();
            let be = p.break_even.as_ref();
            out.push(Record {
                record: "projected",
                kind: RowKind::Projected.name(),
                rankable: false,
                not_ranked_reason: text(
                    &p.error
                        .clone()
                        .unwrap_or_else(|| "projected rows are listed separately".into()),
                ),
                workload: text(&w.key),
                op: w.op.name(),
                shape: text(&w.shape),
                dtype: w.dtype.name(),
                device: text(&p.chip_name),
                spec_id: text(&p.chip),
                flops: Some(w.flops),
                min_bytes: Some(w.min_bytes),
                intensity: Some(w.intensity),
                published_peak_gflops: pj.map(|x| x.peak_gflops),
                published_bw_gbs: pj.map(|x| x.bw_gbs),
                published_bound: pj.map(|x| x.bound.name()).unwrap_or(""),
                projected_ceiling_gflops: pj.map(|x| x.ceiling_gflops),
                projected_realistic_gflops: pj.and_then(|x| x.realistic_gflops),
                projected_assumption: opt_text(pj.map(|x| x.assumption.as_str())),
                usd_per_hour: price.map(|x| x.usd_per_chip_hour),
                price_share: if price.is_some() {
                    "1 chip".into()
                } else {
                    String::new()
                },
                price_source: opt_text(price.map(|x| x.offer.as_str())),
                price_as_of: opt_text(price.map(|x| x.as_of.as_str())),
                price_stale: price.map(|x| x.stale),
                gflops_per_usd_hour: cp.map(|x| x.gflops_per_usd_hour.median),
                gflop_per_usd: cp.map(|x| x.gflop_per_usd.median),
                usd_per_pflop: cp.map(|x| x.usd_per_pflop.median),
                break_even_usd_per_chip_hour: be.map(|x| x.usd_per_chip_hour.median),
                break_even_lo: be.map(|x| x.usd_per_chip_hour.lo),
                break_even_hi: be.map(|x| x.usd_per_chip_hour.hi),
                break_even_from: be.map(|x| x.from).unwrap_or(""),
                ..Record::default()
            });
        }
    }
    out
}

/// The CSV report.
pub fn render(rep: &Report) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let records = records(rep);
    if records.is_empty() {
        return format!("{}\n", render_header());
    }
    for r in records {
        w.serialize(r).expect("writing CSV to memory cannot fail");
    }
    String::from_utf8(w.into_inner().expect("flushing to memory cannot fail"))
        .expect("the records are UTF-8")
}

/// The header: [`Record`]'s field names, in order.
pub fn columns() -> Vec<String> {
    render_header().split(',').map(|s| s.to_string()).collect()
}

fn render_header() -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(Record::default()).expect("in-memory write");
    let text = String::from_utf8(w.into_inner().expect("in-memory")).expect("UTF-8");
    text.lines().next().unwrap_or_default().to_string()
}
