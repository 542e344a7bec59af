//! The section of each workload: its ranking, its other rows, its projections.

use super::*;

/// One section per workload: the ranking, the other verified rows, the rows not ranked, the
/// projections and the perf-per-dollar chart.
pub(super) fn workloads(rep: &Report, b: &mut Vec<Block>) {
    for (wi, w) in rep.workloads.iter().enumerate() {
        b.push(Block::Heading(2, format!("Workload: {}", w.key)));
        b.push(Block::Para(format!(
            "{} useful FLOPs, {} minimal bytes, AI {} FLOP/byte. Ranked by {}.",
            si(w.flops as f64, "FLOP"),
            si(w.min_bytes as f64, "B"),
            num(w.intensity),
            w.ranked_by
        )));
        ranking(rep, w, b);
        other_rows(rep, w, b);
        projections(w, b);
        b.push(Block::Chart(Chart::PerfPerDollar(wi)));
    }
}

/// A workload's ranked devices.
pub(super) fn ranking(rep: &Report, w: &WorkloadReport, b: &mut Vec<Block>) {
    if w.ranking.is_empty() {
        b.push(Block::Para(
            "No verified ok row for this workload: nothing ranked.".into(),
        ));
    } else {
        b.push(for_terminal(
            table(
                &[
                    "#",
                    "device (run)",
                    "kind",
                    "best kernel",
                    "GFLOP/s [95% CI]",
                    "% published peak",
                    "% measured ceiling",
                    "bound",
                    "USD/h (share)",
                    "GFLOP per $ [95% CI]",
                    "$ per PFLOP",
                    "per used core: GFLOP per $ (secondary)",
                    "vs best peer [95% CI]",
                ],
                w.ranking
                    .iter()
                    .map(|rk| {
                        let r = &rep.rows[rk.row];
                        vec![
                            rk.rank.to_string(),
                            rk.device.clone(),
                            kind_label(r.kind),
                            r.kernel.clone(),
                            gflops(r),
                            opt(r.published.as_ref(), |p| pct(p.pct_of_peak)),
                            opt(r.measured.as_ref(), pct_measured),
                            r.measured
                                .as_ref()
                                .and_then(|m| m.bound)
                                .or(r.published.as_ref().and_then(|p| p.bound))
                                .map(|b| b.name().to_string())
                                .unwrap_or_else(|| "n/a".into()),
                            opt(r.price.as_ref(), |p| {
                                format!("{}/h ({})", usd(p.usd_per_hour), p.share)
                            }),
                            opt(r.price.as_ref(), |p| interval(&p.perf.gflop_per_usd)),
                            opt(r.price.as_ref(), |p| {
                                format!("${}", num(p.perf.usd_per_pflop.median))
                            }),
                            opt(r.per_core.as_ref(), |c| {
                                format!(
                                    "{} ({} of {} cores, {}/h)",
                                    num(c.perf.gflop_per_usd.median),
                                    c.cores_used,
                                    c.cores_total,
                                    usd(c.usd_per_hour)
                                )
                            }),
                            vs_peer(r),
                        ]
                    })
                    .collect(),
            ),
            &[
                "#",
                "device (run)",
                "best kernel",
                "GFLOP/s [95% CI]=GFLOP/s",
                "% published peak=% peak",
                "% measured ceiling=% ceiling",
                "bound",
                "GFLOP per $ [95% CI]=GFLOP per $",
            ],
            &[
                "kind",
                "USD/h (share)",
                "$ per PFLOP",
                "per used core: GFLOP per $ (secondary)",
                "vs best peer [95% CI]",
            ],
        ));
    }
}

/// A workload's other verified rows, and the rows not ranked (no speed unless ok).
pub(super) fn other_rows(rep: &Report, w: &WorkloadReport, b: &mut Vec<Block>) {
    if !w.also_verified.is_empty() {
        b.push(Block::Para(
            "Also verified (not their device's best):".into(),
        ));
        b.push(table(
            &[
                "device (run)",
                "kind",
                "kernel",
                "GFLOP/s [95% CI]",
                "vs best peer [95% CI]",
            ],
            w.also_verified
                .iter()
                .map(|&i| {
                    let r = &rep.rows[i];
                    vec![
                        format!("{} — {}", r.device, r.run_label),
                        kind_label(r.kind),
                        r.kernel.clone(),
                        gflops(r),
                        vs_peer(r),
                    ]
                })
                .collect(),
        ));
    }
    if !w.not_ranked.is_empty() {
        b.push(Block::Para(
            "Not ranked (listed, never ranked; rows that are not ok show no speed):".into(),
        ));
        b.push(for_terminal(
            table(
                &["device (run)", "kind", "kernel", "status", "GFLOP/s", "why"],
                w.not_ranked
                    .iter()
                    .map(|&i| {
                        let r = &rep.rows[i];
                        vec![
                            format!("{} — {}", r.device, r.run_label),
                            kind_label(r.kind),
                            r.kernel.clone(),
                            r.status.to_string(),
                            if r.status == Status::Ok {
                                format!("{} (unverified)", gflops(r))
                            } else {
                                "—".into()
                            },
                            r.not_ranked.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            ),
            &["device (run)", "kernel", "status", "GFLOP/s"],
            &["why"],
        ));
    }
}

/// A workload's projections onto the targets, with their assumptions and break-even prices.
pub(super) fn projections(w: &WorkloadReport, b: &mut Vec<Block>) {
    let rows: Vec<Vec<String>> = w
        .projections
        .iter()
        .map(|p| match &p.projection {
            None => vec![
                format!("{} (projected)", p.chip_name),
                "projected".into(),
                format!("n/a: {}", p.error.clone().unwrap_or_default()),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
            Some(pr) => vec![
                format!("{} (projected)", p.chip_name),
                "projected".into(),
                format!("≤ {}", num(pr.ceiling_gflops)),
                pr.bound.name().to_string(),
                opt(pr.realistic_gflops, num),
                opt(p.price.as_ref(), |x| {
                    format!("{} ({}, {})", usd(x.usd_per_chip_hour), x.offer, x.status)
                }),
                opt(p.ceiling_perf.as_ref(), |x| {
                    format!("≤ {}", num(x.gflop_per_usd.median))
                }),
                opt(p.realistic_perf.as_ref(), |x| num(x.gflop_per_usd.median)),
                opt(p.break_even.as_ref(), |x| {
                    format!(
                        "{}{} ({})",
                        if x.from == "ceiling" { "≤ " } else { "" },
                        interval(&x.usd_per_chip_hour),
                        x.from
                    )
                }),
            ],
        })
        .collect();
    if !rows.is_empty() {
        b.push(Block::Para(
            "Projected (kind: projected — computed from published specs, never measured):".into(),
        ));
        b.push(for_terminal(
            table(
                &[
                    "chip",
                    "kind",
                    "ceiling GFLOP/s (upper bound)",
                    "bound",
                    "realistic GFLOP/s",
                    "price per chip-hour (offer, status)",
                    "GFLOP per $ at ceiling",
                    "GFLOP per $ realistic",
                    "break-even $ per chip-hour",
                ],
                rows,
            ),
            &[
                "chip",
                "ceiling GFLOP/s (upper bound)=ceiling GFLOP/s",
                "bound",
                "realistic GFLOP/s=realistic",
                "GFLOP per $ at ceiling=GFLOP/$ ceiling",
                "GFLOP per $ realistic=GFLOP/$ realistic",
                "break-even $ per chip-hour=break-even $/chip-h",
            ],
            &["price per chip-hour (offer, status)"],
        ));
        let mut assumptions: Vec<String> = w
            .projections
            .iter()
            .filter_map(|p| {
                p.projection
                    .as_ref()
                    .map(|pr| format!("projected · {}: {}", p.chip_name, pr.assumption))
            })
            .collect();
        assumptions.extend(w.projections.iter().filter_map(|p| {
            p.break_even.as_ref().map(|be| {
                format!(
                    "break-even · {}: {} per chip-hour is {}",
                    p.chip_name,
                    interval(&be.usd_per_chip_hour),
                    be.wording
                )
            })
        }));
        b.push(Block::List(assumptions));
    }
}
