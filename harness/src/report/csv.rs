//! The CSV format: one line per result row (`record` = `row`) and one per projection of a
//! workload onto a target (`record` = `projected`), every number unrounded, every column always
//! present (empty = n/a). RFC 4180 quoting; text cells that a spreadsheet would run as a formula
//! (`=`, `+`, `@` first) are prefixed with `'`.

use super::Report;
use crate::runfile::RowKind;

/// The columns, in order.
pub const COLUMNS: [&str; 62] = [
    "record",
    "run",
    "run_file",
    "kind",
    "status",
    "rankable",
    "rank",
    "not_ranked_reason",
    "workload",
    "op",
    "shape",
    "precision",
    "dtype",
    "case",
    "device",
    "device_key",
    "kernel",
    "flops",
    "min_bytes",
    "intensity",
    "gflops_median",
    "gflops_ci_lo",
    "gflops_ci_hi",
    "median_s",
    "verification",
    "spec_id",
    "spec_how",
    "spec_na",
    "published_peak_gflops",
    "published_basis",
    "published_bw_gbs",
    "published_attainable_gflops",
    "published_bound",
    "pct_published_peak",
    "pct_published_attainable",
    "measured_peak_gflops",
    "measured_bw_gbs",
    "measured_attainable_gflops",
    "measured_bound",
    "pct_measured_ceiling",
    "ceiling_gap",
    "usd_per_hour",
    "price_share",
    "price_source",
    "price_as_of",
    "price_stale",
    "gflops_per_usd_hour",
    "gflop_per_usd",
    "gflop_per_usd_lo",
    "gflop_per_usd_hi",
    "usd_per_pflop",
    "usd_per_pflop_lo",
    "usd_per_pflop_hi",
    "per_core_usd_per_hour",
    "per_core_gflop_per_usd",
    "projected_ceiling_gflops",
    "projected_realistic_gflops",
    "projected_assumption",
    "break_even_usd_per_chip_hour",
    "break_even_lo",
    "break_even_hi",
    "break_even_from",
];

/// One CSV field.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn f(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// The CSV report.
pub fn render(rep: &Report) -> String {
    let mut out = String::new();
    out.push_str(&COLUMNS.join(","));
    out.push('\n');
    let rank_of = |row: usize| -> Option<usize> {
        rep.workloads
            .iter()
            .flat_map(|w| &w.ranking)
            .find(|r| r.row == row)
            .map(|r| r.rank)
    };
    for r in &rep.rows {
        let run = &rep.runs[r.run];
        let p = r.published.as_ref();
        let m = r.measured.as_ref();
        let pr = r.price.as_ref();
        let cells: Vec<String> = vec![
            "row".into(),
            (r.run + 1).to_string(),
            field(&run.file),
            r.kind.name().into(),
            r.status.to_string(),
            r.rankable.to_string(),
            rank_of(r.index).map(|x| x.to_string()).unwrap_or_default(),
            field(r.not_ranked.as_deref().unwrap_or("")),
            field(&r.workload),
            r.op.name().into(),
            field(&r.shape),
            r.precision.clone(),
            r.dtype.name().into(),
            field(r.case.as_deref().unwrap_or("")),
            field(&r.device),
            field(&r.device_key),
            field(&r.kernel),
            r.flops.to_string(),
            r.min_bytes.to_string(),
            f(Some(r.intensity)),
            f(r.gflops.map(|g| g.median)),
            f(r.gflops.map(|g| g.lo)),
            f(r.gflops.map(|g| g.hi)),
            f(r.median_s),
            field(&r.verification),
            field(r.spec.as_ref().map(|s| s.id.as_str()).unwrap_or("")),
            field(r.spec.as_ref().map(|s| s.how.as_str()).unwrap_or("")),
            field(r.spec_na.as_deref().unwrap_or("")),
            f(p.map(|x| x.peak_gflops)),
            field(p.map(|x| x.peak_basis.as_str()).unwrap_or("")),
            f(p.and_then(|x| x.bw_gbs)),
            f(p.and_then(|x| x.attainable_gflops)),
            p.and_then(|x| x.bound)
                .map(|b| b.name())
                .unwrap_or("")
                .into(),
            f(p.map(|x| x.pct_of_peak)),
            f(p.and_then(|x| x.pct_of_attainable)),
            f(m.map(|x| x.peak_gflops)),
            f(m.and_then(|x| x.bw_gbs)),
            f(m.and_then(|x| x.attainable_gflops)),
            m.and_then(|x| x.bound)
                .map(|b| b.name())
                .unwrap_or("")
                .into(),
            f(m.and_then(|x| x.pct_of_attainable)),
            f(r.ceiling_gap),
            f(pr.map(|x| x.usd_per_hour)),
            field(pr.map(|x| x.share.as_str()).unwrap_or("")),
            field(pr.map(|x| x.instance.source.as_str()).unwrap_or("")),
            field(pr.and_then(|x| x.instance.as_of.as_deref()).unwrap_or("")),
            pr.map(|x| x.instance.stale.to_string()).unwrap_or_default(),
            f(pr.map(|x| x.perf.gflops_per_usd_hour.median)),
            f(pr.map(|x| x.perf.gflop_per_usd.median)),
            f(pr.map(|x| x.perf.gflop_per_usd.lo)),
            f(pr.map(|x| x.perf.gflop_per_usd.hi)),
            f(pr.map(|x| x.perf.usd_per_pflop.median)),
            f(pr.map(|x| x.perf.usd_per_pflop.lo)),
            f(pr.map(|x| x.perf.usd_per_pflop.hi)),
            f(r.per_core.as_ref().map(|c| c.usd_per_hour)),
            f(r.per_core.as_ref().map(|c| c.perf.gflop_per_usd.median)),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ];
        debug_assert_eq!(cells.len(), COLUMNS.len());
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    for w in &rep.workloads {
        for p in &w.projections {
            let pj = p.projection.as_ref();
            let price = p.price.as_ref();
            let cp = p.ceiling_perf.as_ref();
            let be = p.break_even.as_ref();
            let mut cells: Vec<String> = vec![String::new(); COLUMNS.len()];
            let set = |cells: &mut Vec<String>, name: &str, v: String| {
                let i = COLUMNS
                    .iter()
                    .position(|c| *c == name)
                    .expect("a CSV column");
                cells[i] = v;
            };
            set(&mut cells, "record", "projected".into());
            set(&mut cells, "kind", RowKind::Projected.name().into());
            set(&mut cells, "rankable", "false".into());
            set(
                &mut cells,
                "not_ranked_reason",
                field(
                    &p.error
                        .clone()
                        .unwrap_or_else(|| "projected rows are listed separately".into()),
                ),
            );
            set(&mut cells, "workload", field(&w.key));
            set(&mut cells, "op", w.op.name().into());
            set(&mut cells, "shape", field(&w.shape));
            set(&mut cells, "dtype", w.dtype.name().into());
            set(&mut cells, "device", field(&p.chip_name));
            set(&mut cells, "spec_id", field(&p.chip));
            set(&mut cells, "flops", w.flops.to_string());
            set(&mut cells, "min_bytes", w.min_bytes.to_string());
            set(&mut cells, "intensity", f(Some(w.intensity)));
            set(
                &mut cells,
                "published_peak_gflops",
                f(pj.map(|x| x.peak_gflops)),
            );
            set(&mut cells, "published_bw_gbs", f(pj.map(|x| x.bw_gbs)));
            set(
                &mut cells,
                "published_bound",
                pj.map(|x| x.bound.name()).unwrap_or("").into(),
            );
            set(
                &mut cells,
                "projected_ceiling_gflops",
                f(pj.map(|x| x.ceiling_gflops)),
            );
            set(
                &mut cells,
                "projected_realistic_gflops",
                f(pj.and_then(|x| x.realistic_gflops)),
            );
            set(
                &mut cells,
                "projected_assumption",
                field(pj.map(|x| x.assumption.as_str()).unwrap_or("")),
            );
            set(
                &mut cells,
                "usd_per_hour",
                f(price.map(|x| x.usd_per_chip_hour)),
            );
            set(
                &mut cells,
                "price_share",
                field(if price.is_some() { "1 chip" } else { "" }),
            );
            set(
                &mut cells,
                "price_source",
                field(price.map(|x| x.offer.as_str()).unwrap_or("")),
            );
            set(
                &mut cells,
                "price_as_of",
                field(price.map(|x| x.as_of.as_str()).unwrap_or("")),
            );
            set(
                &mut cells,
                "price_stale",
                price.map(|x| x.stale.to_string()).unwrap_or_default(),
            );
            set(
                &mut cells,
                "gflops_per_usd_hour",
                f(cp.map(|x| x.gflops_per_usd_hour.median)),
            );
            set(
                &mut cells,
                "gflop_per_usd",
                f(cp.map(|x| x.gflop_per_usd.median)),
            );
            set(
                &mut cells,
                "usd_per_pflop",
                f(cp.map(|x| x.usd_per_pflop.median)),
            );
            set(
                &mut cells,
                "break_even_usd_per_chip_hour",
                f(be.map(|x| x.usd_per_chip_hour.median)),
            );
            set(
                &mut cells,
                "break_even_lo",
                f(be.map(|x| x.usd_per_chip_hour.lo)),
            );
            set(
                &mut cells,
                "break_even_hi",
                f(be.map(|x| x.usd_per_chip_hour.hi)),
            );
            set(
                &mut cells,
                "break_even_from",
                be.map(|x| x.from).unwrap_or("").into(),
            );
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    out
}
