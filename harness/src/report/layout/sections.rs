//! The report's sections other than the workloads: title, summary, conventions, runs, targets,
//! the LLM estimate, scaling, all rows, notes and sources.

use super::*;

/// The title and the line of what the report covers.
pub(super) fn title(rep: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(1, "perfledger report".into()));
    b.push(Block::Para(format!(
        "As of {} · {} run file(s) · {} workloads · spec database: {} accelerators, {} CPUs, {} \
         offers ({}); prices older than {} days are flagged.",
        rep.as_of,
        rep.runs.len(),
        rep.workloads.len(),
        rep.database.accelerators,
        rep.database.cpus,
        rep.database.offers,
        rep.database.files.join("; "),
        rep.database.max_price_age_days
    )));
}

/// Per workload: the top device and the break-even prices of unpriced targets.
pub(super) fn summary(rep: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Summary".into()));
    b.push(Block::Para(
        "Per workload: the top-ranked device (measured, peer or imported; never projected) and \
         the break-even price per chip-hour of each projection target without a single \
         published price (≤: from the roofline ceiling, the most it could cost and still match)."
            .into(),
    ));
    b.push(for_terminal(
        table(
            &[
                "workload",
                "#1 device (kind, kernel)",
                "GFLOP/s [95% CI]",
                "GFLOP per $ [95% CI]",
                "unpriced targets: break-even $ per chip-hour",
            ],
            rep.workloads
                .iter()
                .map(|w| {
                    let top = w.ranking.first().map(|r| &rep.rows[r.row]);
                    vec![
                        w.key.clone(),
                        top.map(|r| {
                            format!(
                                "{} — {} ({}, {})",
                                r.device,
                                r.run_label,
                                r.kind.name(),
                                r.kernel
                            )
                        })
                        .unwrap_or_else(|| "nothing verified".into()),
                        top.map(gflops).unwrap_or_else(|| "—".into()),
                        opt(top.and_then(|r| r.price.as_ref()), |p| {
                            interval(&p.perf.gflop_per_usd)
                        }),
                        w.projections
                            .iter()
                            .filter(|p| p.price.is_none())
                            .filter_map(|p| {
                                p.break_even.as_ref().map(|be| {
                                    format!(
                                        "{} {}{}",
                                        p.chip_name,
                                        if be.from == "ceiling" { "≤ " } else { "" },
                                        usd(be.usd_per_chip_hour.median)
                                    )
                                })
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    ]
                })
                .collect(),
        ),
        &[
            "workload",
            "#1 device (kind, kernel)",
            "GFLOP/s [95% CI]=GFLOP/s",
            "GFLOP per $ [95% CI]=GFLOP per $",
            "unpriced targets: break-even $ per chip-hour=unpriced targets: break-even $/chip-h",
        ],
        &[],
    ));
}

/// The conventions every figure follows.
pub(super) fn conventions(rep: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Conventions".into()));
    b.push(Block::List(vec![
        format!("FLOP convention: {}", rep.conventions.flops),
        format!("Statistic: {}", rep.conventions.statistic),
        format!("Perf per dollar: {}", rep.conventions.perf_per_dollar),
        format!("Ranking: {}", rep.conventions.ranking),
        format!("Peaks: {}", rep.conventions.peaks),
        "Row kinds: measured = a perfledger kernel timed in that run; peer = a vendor library \
         timed on the same machine by a script; imported = measured elsewhere, with provenance; \
         projected = computed from published specs (never a measurement)."
            .into(),
    ]));
}

/// The runs: machine, build, price, and what each run measured of its machine.
pub(super) fn runs(rep: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Runs".into()));
    b.push(for_terminal(
        table(
            &[
                "run",
                "file",
                "created",
                "suite",
                "build",
                "CPU (threads used)",
                "instance",
                "CPU spec match",
                "price (USD/h, source, as of)",
                "complete",
            ],
            rep.runs
                .iter()
                .map(|r| {
                    vec![
                        r.label.clone(),
                        r.file.clone(),
                        r.created.clone(),
                        r.suite.clone(),
                        r.harness.clone(),
                        format!(
                            "{} ({} threads{})",
                            r.cpu_model.as_deref().unwrap_or("unknown"),
                            r.threads_used,
                            r.physical_cores
                                .map(|c| format!(", {c} physical cores"))
                                .unwrap_or_default()
                        ),
                        opt(r.instance.as_ref(), instance_cell),
                        match (&r.cpu_spec, &r.cpu_no_match) {
                            (Some(m), _) => format!("{} ({})", m.id, m.how),
                            (None, Some(why)) => format!("n/a: {why}"),
                            _ => "n/a".into(),
                        },
                        match (&r.price, &r.offer_no_match) {
                            (Some(p), _) => format!(
                                "{}/h, {}{}{}{}",
                                usd(p.usd_per_hour),
                                p.source,
                                p.matched
                                    .as_deref()
                                    .map(|m| format!(" ({m})"))
                                    .unwrap_or_default(),
                                p.as_of
                                    .as_deref()
                                    .map(|a| format!(", as of {a}"))
                                    .unwrap_or_default(),
                                if p.stale { " (STALE)" } else { "" }
                            ),
                            (None, Some(why)) => format!("n/a: {why}"),
                            (None, None) => "n/a".into(),
                        },
                        if r.complete {
                            "yes"
                        } else {
                            "no (interrupted)"
                        }
                        .into(),
                    ]
                })
                .collect(),
        ),
        &["run", "created", "suite", "CPU (threads used)", "complete"],
        &[
            "file",
            "build",
            "instance",
            "CPU spec match",
            "price (USD/h, source, as of)",
        ],
    ));
    let mut facts = Vec::new();
    for r in &rep.runs {
        let c = &r.measured_ceilings;
        if !c.cpu_fma_gflops.is_empty() {
            let fma = c.fma_text();
            facts.push(format!(
                "{}: measured ceilings (perfledger probes): FMA {}; {}; triad {} GB/s",
                r.label,
                fma.join(", "),
                c.read_text(),
                opt(c.cpu_triad_gbs, num)
            ));
        } else {
            facts.push(format!(
                "{}: no measured ceilings (probes off): no % of measured ceiling",
                r.label
            ));
        }
        for g in &r.gpus {
            facts.push(format!(
                "{}: GPU {} {:?}{}: {}",
                r.label,
                g.index,
                g.name,
                if g.software {
                    " (software adapter)"
                } else {
                    ""
                },
                match (&g.spec, &g.no_match) {
                    (Some(m), _) => format!("matched {} ({})", m.id, m.how),
                    (None, Some(w)) => format!("n/a: {w}"),
                    _ => "n/a".into(),
                }
            ));
        }
    }
    b.push(Block::List(facts));
}

/// The projection targets and their prices.
pub(super) fn targets(rep: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Projection targets".into()));
    b.push(Block::Para(format!(
        "Projected rows are computed from published specs, never measured. The roofline ceiling \
         is an upper bound. A realistic figure is given only where the chip has a published \
         measured ceiling (matmul, same dtype) or --efficiency is set{}; the efficiency of a \
         measured device is never carried to another chip.",
        rep.efficiency
            .map(|e| format!(
                " (here: --efficiency {} applies to every target)",
                fmt_num(e)
            ))
            .unwrap_or_default()
    )));
    b.push(for_terminal(
        table(
            &[
                "chip",
                "name",
                "price per chip-hour",
                "offer (provider, model, region, status, as of)",
                "chosen by",
                "note",
            ],
            rep.targets
                .iter()
                .map(|t| {
                    vec![
                        t.chip.clone(),
                        t.name.clone(),
                        opt(t.price.as_ref(), |p| usd(p.usd_per_chip_hour)),
                        opt(t.price.as_ref(), |p| {
                            format!(
                                "{} ({} {}, {}, {}, {}, as of {}{})",
                                p.offer,
                                p.provider,
                                p.instance,
                                p.pricing_model,
                                p.region.as_deref().unwrap_or("region n/a"),
                                p.status,
                                p.as_of,
                                if p.stale { ", STALE" } else { "" }
                            )
                        }),
                        opt(t.price.as_ref(), |p| p.chosen_by.to_string()),
                        t.note.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        &["chip", "name", "price per chip-hour", "chosen by"],
        &["offer (provider, model, region, status, as of)", "note"],
    ));
    b.push(Block::Chart(Chart::Roofline));
}

/// The LLM estimate (kernel-only).
pub(super) fn llm(rep: &Report, b: &mut Vec<Block>) {
    if !rep.llm.is_empty() {
        b.push(Block::Heading(
            2,
            "LLM estimate (kernel-only estimate)".into(),
        ));
        b.push(Block::Para(format!(
            "Layer time = its projection matmuls + attention, × layer count; {}. Every figure \
             here is a kernel-only estimate.",
            crate::report::llm::EXCLUDES
        )));
        b.push(for_terminal(
            table(
                &[
                    "model (layers)",
                    "phase",
                    "T or context",
                    "dtype",
                    "device",
                    "kind",
                    "layer time (s)",
                    "tokens/s [95% CI]",
                    "$ per 1M tokens",
                    "label",
                ],
                rep.llm
                    .iter()
                    .map(|e| {
                        vec![
                            format!("{} ({})", e.model, e.layers),
                            e.phase.to_string(),
                            e.length.to_string(),
                            e.dtype.name().to_string(),
                            e.device.clone(),
                            match &e.basis {
                                Some(basis) => format!("projected: {basis}"),
                                None => e.kind.name().to_string(),
                            },
                            num(e.layer_s.median),
                            interval(&e.tokens_per_s),
                            opt(e.usd_per_million_tokens.as_ref(), |u| {
                                format!("${}", interval(u))
                            }),
                            e.label.to_string(),
                        ]
                    })
                    .collect(),
            ),
            &[
                "model (layers)",
                "phase",
                "T or context",
                "dtype",
                "device",
                "tokens/s [95% CI]",
                "$ per 1M tokens",
            ],
            &["kind", "label"],
        ));
        let mut formulas: Vec<String> = rep
            .llm
            .iter()
            .filter(|e| e.kind != RowKind::Projected)
            .map(|e| {
                format!(
                    "{} {} {} on {}: {}",
                    e.model, e.phase, e.length, e.device, e.formula
                )
            })
            .collect();
        formulas.extend(
            rep.llm
                .iter()
                .filter(|e| e.kind == RowKind::Projected)
                .take(4)
                .map(|e| {
                    format!(
                        "{} {} {} on {} (projected): {}",
                        e.model, e.phase, e.length, e.device, e.formula
                    )
                }),
        );
        let mut sources: Vec<String> = rep
            .llm
            .iter()
            .map(|e| format!("{}: {}", e.model, e.layers_source))
            .collect();
        sources.sort();
        sources.dedup();
        formulas.extend(sources.into_iter().map(|s| format!("layer count · {s}")));
        b.push(Block::List(formulas));
    }
}

/// Scaling curves of sweep runs.
pub(super) fn scaling(rep: &Report, b: &mut Vec<Block>) {
    if !rep.sweeps.is_empty() {
        b.push(Block::Heading(2, "Scaling (sweep runs)".into()));
        b.push(Block::Chart(Chart::Scaling));
        b.push(table(
            &["family", "device", "kernel", "points (size: GFLOP/s)"],
            rep.sweeps
                .iter()
                .map(|s| {
                    vec![
                        s.family.clone(),
                        s.device.clone(),
                        s.kernel.clone(),
                        s.points
                            .iter()
                            .map(|p| format!("{}: {}", p.0, num(p.1)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect(),
        ));
    }
}

/// Every row of every run.
/// A time per iteration with a unit that keeps 3–4 significant digits.
fn time_cell(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.2} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.2} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

/// Benchmarks of other tools (criterion ids that are not perfledger kernels): their times only.
pub(super) fn foreign(rep: &Report, b: &mut Vec<Block>) {
    if rep.foreign.is_empty() {
        return;
    }
    b.push(Block::Heading(2, "Other benchmarks (not ranked)".into()));
    b.push(Block::Para(
        "Benchmarks of other tools the run files carry (criterion ids that are not perfledger \
         kernels, from `ingest-criterion`): no FLOP count and no shape, so neither ranked nor \
         normalized. Median time per iteration with its 95% CI."
            .into(),
    ));
    b.push(table(
        &["run", "tool", "benchmark", "median", "95% CI", "samples"],
        rep.foreign
            .iter()
            .map(|f| {
                vec![
                    (f.run + 1).to_string(),
                    f.tool.clone(),
                    f.id.clone(),
                    time_cell(f.median_s),
                    format!("[{}, {}]", time_cell(f.ci95_s[0]), time_cell(f.ci95_s[1])),
                    f.samples.to_string(),
                ]
            })
            .collect(),
    ));
}

pub(super) fn all_rows(rep: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "All rows".into()));
    b.push(for_terminal(
        table(
            &[
                "#",
                "run",
                "kind",
                "device",
                "kernel",
                "case",
                "shape",
                "precision",
                "status",
                "verification",
                "GFLOP/s [95% CI]",
                "spec match",
                "published peak (basis)",
                "% peak",
                "% measured ceiling",
                "measured / published peak",
            ],
            rep.rows
                .iter()
                .map(|r| {
                    vec![
                        r.index.to_string(),
                        (r.run + 1).to_string(),
                        kind_label(r.kind),
                        r.device.clone(),
                        r.kernel.clone(),
                        r.case.clone().unwrap_or_default(),
                        r.shape.clone(),
                        r.precision.clone(),
                        r.status.to_string(),
                        r.verification.clone(),
                        gflops(r),
                        match (&r.spec, &r.spec_na) {
                            (Some(m), _) => format!("{} ({})", m.id, m.how),
                            (None, Some(w)) => format!("n/a: {w}"),
                            _ => "n/a".into(),
                        },
                        opt(r.published.as_ref(), |p| {
                            format!("{} GFLOP/s ({})", num(p.peak_gflops), p.peak_basis)
                        }),
                        opt(r.published.as_ref(), |p| pct(p.pct_of_peak)),
                        opt(r.measured.as_ref(), pct_measured),
                        opt(r.ceiling_gap, |g| format!("{:.2}", g)),
                    ]
                })
                .collect(),
        ),
        &[
            "#",
            "run",
            "kernel",
            "shape",
            "status",
            "GFLOP/s [95% CI]=GFLOP/s",
            "% peak",
            "% measured ceiling=% ceiling",
        ],
        &["spec match", "published peak (basis)"],
    ));
}

/// The notes, and the sources of every spec and price used.
pub(super) fn sources(rep: &Report, b: &mut Vec<Block>) {
    if !rep.notes.is_empty() {
        b.push(Block::Heading(2, "Notes".into()));
        b.push(Block::List(rep.notes.clone()));
    }
    b.push(Block::Heading(
        2,
        "Sources (specs and prices used, with dates)".into(),
    ));
    b.push(for_terminal(
        table(
            &["id", "what", "source", "as of", "status", "file"],
            rep.sources
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.what.clone(),
                        s.source.clone(),
                        match &s.as_of_note {
                            Some(n) => format!("{} ({n})", s.as_of),
                            None => s.as_of.clone(),
                        },
                        s.status.clone(),
                        s.file.clone(),
                    ]
                })
                .collect(),
        ),
        &["id", "what", "as of", "status"],
        &["source", "file"],
    ));
}

/// A run's instance: type, provider, region, pricing model, each with the source it was found
/// by (`c7a.large [flag] · aws [dmi] · us-east-1 [skypilot] · spot [env]`), and the SkyPilot
/// cluster and node rank where the run was part of a SkyPilot job.
fn instance_cell(i: &crate::env::InstanceInfo) -> String {
    let field = |name: &str, v: Option<&str>| {
        let by = i
            .found_by
            .get(name)
            .map(String::as_str)
            .or(if name == "type" {
                i.detected_by.as_deref()
            } else {
                None
            });
        match (v, by) {
            (Some(v), Some(by)) => format!("{v} [{by}]"),
            (Some(v), None) => v.to_string(),
            (None, _) => format!("{name} n/a"),
        }
    };
    let mut s = [
        field("type", i.instance_type.as_deref()),
        field("provider", i.provider.as_deref()),
        field("region", i.region.as_deref()),
        field("pricing_model", i.pricing_model.as_deref()),
    ]
    .join(" · ");
    if let Some(sky) = &i.skypilot {
        s.push_str(&format!(
            " · SkyPilot cluster {} node {}",
            sky.cluster.as_deref().unwrap_or("?"),
            sky.node_rank
                .map(|r| r.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    s
}
