//! Building the report: every run's rows normalized, workloads ranked, projections and
//! break-even prices per target, the sources used, sweeps.

use super::*;

/// The sources a report used (spec and price entries), in first-use order.
#[derive(Default)]
pub(crate) struct SourceSet {
    list: Vec<SourceRef>,
}

impl SourceSet {
    pub(crate) fn push(&mut self, r: SourceRef) {
        if !self.list.iter().any(|x| x.id == r.id && x.what == r.what) {
            self.list.push(r);
        }
    }

    pub(crate) fn spec(&mut self, db: &Database, id: &str) {
        let file = db.origin(id).map(|o| o.file.clone()).unwrap_or_default();
        if let Some(a) = db.accelerator(id) {
            self.push(SourceRef {
                id: a.id.clone(),
                what: format!("spec: {}", a.name),
                source: a.source.clone(),
                as_of: a.as_of.text.clone(),
                as_of_note: a.as_of_note.clone(),
                status: a.status.name().into(),
                file: file.clone(),
            });
            for c in &a.measured_ceilings {
                self.push(SourceRef {
                    id: a.id.clone(),
                    what: format!(
                        "published measured {} matmul ceiling: {} TFLOP/s",
                        c.dtype.name(),
                        fmt_num(c.tflops)
                    ),
                    source: c.source.clone(),
                    as_of: c.as_of.text.clone(),
                    as_of_note: c.as_of_note.clone(),
                    status: a.status.name().into(),
                    file: file.clone(),
                });
            }
        } else if let Some(c) = db.cpu(id) {
            self.push(SourceRef {
                id: c.id.clone(),
                what: format!("spec: {}", c.name),
                source: c.source.clone(),
                as_of: c.as_of.text.clone(),
                as_of_note: c.as_of_note.clone(),
                status: c.status.name().into(),
                file,
            });
        }
    }

    pub(crate) fn offer(&mut self, db: &Database, id: &str) {
        if let Some(o) = db.offer(id) {
            self.push(SourceRef {
                id: o.id.clone(),
                what: format!(
                    "price: {} {} ({}, {}) {}",
                    o.provider,
                    o.instance,
                    o.pricing_model.name(),
                    o.region.as_deref().unwrap_or("region n/a"),
                    o.instance_price()
                        .map(|p| format!("${p}/h"))
                        .unwrap_or_else(|| "no price".into())
                ),
                source: o.source.clone(),
                as_of: o.as_of.text.clone(),
                as_of_note: o.as_of_note.clone(),
                status: o.status.name().into(),
                file: db.origin(id).map(|x| x.file.clone()).unwrap_or_default(),
            });
        }
    }
}

/// What in-process peer rows that were measured (`ok`) say about their library here
/// (`provenance.config.caveat`: an OpenBLAS that fell back to older kernels), one line per
/// distinct caveat naming its rows (`matmul.cpu.openblas.sgemm.f32-f32-f32 (3 rows): ...`).
pub fn peer_caveats(results: &[Row]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<String>, usize)> = Vec::new();
    for r in results.iter().filter(|r| r.status == Status::Ok) {
        let Some(caveat) = r
            .provenance
            .as_ref()
            .and_then(|p| p.config.as_ref())
            .and_then(|c| c.get(crate::runner::PEER_CAVEAT))
            .and_then(|c| c.as_str())
        else {
            continue;
        };
        let id = r.id.clone().unwrap_or_else(|| r.kind.name().to_string());
        match groups.iter_mut().find(|g| g.0 == caveat) {
            Some(g) => {
                g.2 += 1;
                if !g.1.contains(&id) {
                    g.1.push(id);
                }
            }
            None => groups.push((caveat, vec![id], 1)),
        }
    }
    groups
        .into_iter()
        .map(|(caveat, ids, n)| {
            let rows = if n == 1 {
                String::new()
            } else {
                format!(" ({n} rows)")
            };
            format!("{}{rows}: {caveat}", ids.join(", "))
        })
        .collect()
}

/// Build the report. `inputs` are already read and validated run files.
pub fn build(inputs: &[Input], db: &Database, opts: &Options) -> Report {
    let mut sources = SourceSet::default();
    let mut notes = Vec::new();
    let ctxs: Vec<RunCtx<'_>> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| run_ctx(db, i, input))
        .collect();
    let mut rows = Vec::new();
    for (ctx, input) in ctxs.iter().zip(inputs) {
        if let Some(o) = ctx.offer {
            sources.offer(db, &o.id);
        }
        if let Some(p) = &ctx.info.price {
            if p.stale {
                notes.push(format!(
                    "{}: the price ({}, as of {}) is older than {} days before {} (or dated after it)",
                    ctx.info.label,
                    p.source,
                    p.as_of.as_deref().unwrap_or("?"),
                    db.options.max_price_age_days,
                    db.options.as_of
                ));
            }
        } else {
            notes.push(format!(
                "{}: no price (no --price at run time, and no offer: {}): per-dollar columns \
                 are n/a",
                ctx.info.label,
                ctx.info.offer_no_match.as_deref().unwrap_or("unknown")
            ));
        }
        if !input.run.complete {
            notes.push(format!(
                "{}: an interrupted run (complete: false)",
                ctx.info.label
            ));
        }
        let fixtures = input
            .run
            .results
            .iter()
            .filter(|r| rows::is_fixture(r))
            .count();
        if fixtures > 0 {
            notes.push(format!(
                "{}: {fixtures} row(s) are FIXTURE data (source \"fixture\"): test data for the \
                 import path, not measurements",
                ctx.info.label
            ));
        }
        for note in peer_caveats(&input.run.results) {
            notes.push(format!("{}: {note}", ctx.info.label));
        }
        for row in &input.run.results {
            let i = rows.len();
            let r = row_report(db, ctx, &input.run, row, i, &mut sources);
            if let Some(w) = r.measured.as_ref().and_then(|m| m.probe_wrong.as_ref()) {
                notes.push(format!("{}: row {i}: {w}", ctx.info.label));
            }
            rows.push(r);
        }
    }

    peer_ratios(inputs, &mut rows);

    // Targets and their prices.
    let targets: Vec<TargetInfo> = opts.targets.iter().map(|t| target_info(db, t)).collect();
    for t in &targets {
        sources.spec(db, &t.chip);
        if let Some(p) = &t.price {
            sources.offer(db, &p.offer);
            if p.stale {
                notes.push(format!(
                    "target {}: price {} as of {} is older than {} days",
                    t.chip, p.offer, p.as_of, db.options.max_price_age_days
                ));
            }
        }
    }

    // Workloads in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in &rows {
        if !by_key.contains_key(&r.workload) {
            order.push(r.workload.clone());
        }
        by_key.entry(r.workload.clone()).or_default().push(r.index);
    }
    let mut workloads = Vec::new();
    for key in order {
        let idx = &by_key[&key];
        let first = &rows[idx[0]];
        // Best rankable row per (run, device).
        let mut best: BTreeMap<(usize, String), usize> = BTreeMap::new();
        for &i in idx {
            let r = &rows[i];
            if !r.rankable {
                continue;
            }
            let k = (r.run, r.device_key.clone());
            let better = match best.get(&k) {
                Some(&j) => {
                    r.gflops.map(|g| g.median).unwrap_or(0.0)
                        > rows[j].gflops.map(|g| g.median).unwrap_or(0.0)
                }
                None => true,
            };
            if better {
                best.insert(k, i);
            }
        }
        let mut ranked: Vec<usize> = best.values().copied().collect();
        let gpd = |i: usize| rows[i].price.as_ref().map(|p| p.perf.gflop_per_usd.median);
        let gfl = |i: usize| rows[i].gflops.map(|g| g.median).unwrap_or(0.0);
        ranked.sort_by(|&a, &b| match (gpd(a), gpd(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => gfl(b).total_cmp(&gfl(a)),
        });
        let any_priced = ranked.iter().any(|&i| gpd(i).is_some());
        let best_ppd = ranked.iter().copied().find(|&i| gpd(i).is_some());
        let ranking = ranked
            .iter()
            .enumerate()
            .map(|(n, &i)| Ranked {
                rank: n + 1,
                row: i,
                device: format!("{} — {}", rows[i].device, rows[i].run_label),
            })
            .collect();
        let also_verified = idx
            .iter()
            .copied()
            .filter(|i| rows[*i].rankable && !ranked.contains(i))
            .collect();
        let not_ranked = idx.iter().copied().filter(|i| !rows[*i].rankable).collect();

        // Projections for each target.
        let w = normalize::Workload {
            op: first.op,
            flops: first.flops,
            min_bytes: first.min_bytes,
            dtype: first.dtype,
        };
        let projections = targets
            .iter()
            .map(|t| projected_row(db, t, &w, opts.efficiency, best_ppd, &rows))
            .collect();
        workloads.push(WorkloadReport {
            key,
            op: first.op,
            shape: first.shape.clone(),
            dtype: first.dtype,
            flops: first.flops,
            min_bytes: first.min_bytes,
            intensity: first.intensity,
            ranked_by: if any_priced { "GFLOP per $" } else { "GFLOP/s" },
            ranking,
            also_verified,
            not_ranked,
            best_perf_per_dollar: best_ppd,
            projections,
        });
    }

    let llm = llm::estimates(
        &rows,
        &workloads,
        &ctxs.iter().map(|c| c.info.clone()).collect::<Vec<_>>(),
        &targets,
    );
    let sweeps = sweeps(&rows);
    let mut files: Vec<String> = db.origins.values().map(|o| o.file.clone()).collect();
    files.sort();
    files.dedup();
    let foreign = inputs
        .iter()
        .enumerate()
        .flat_map(|(run, input)| {
            input.run.foreign.iter().map(move |f| super::ForeignReport {
                run,
                tool: f.tool.clone(),
                id: f.id.clone(),
                median_s: f.stats.median_s,
                ci95_s: f.stats.ci95_s,
                samples: f.samples_s.len(),
            })
        })
        .collect();
    Report {
        foreign,
        schema: REPORT_SCHEMA,
        as_of: db.options.as_of.to_string(),
        conventions: Conventions {
            flops: FLOP_CONVENTION,
            statistic: STATISTIC,
            perf_per_dollar: PERF_PER_DOLLAR,
            ranking: RANKING,
            peaks: PEAKS,
        },
        runs: ctxs.into_iter().map(|c| c.info).collect(),
        rows,
        workloads,
        targets,
        efficiency: opts.efficiency,
        llm,
        sweeps,
        sources: sources.list,
        database: DatabaseInfo {
            accelerators: db.accelerators.len(),
            cpus: db.cpus.len(),
            offers: db.offers.len(),
            files,
            max_price_age_days: db.options.max_price_age_days,
        },
        notes,
    }
}

pub(crate) fn projected_row(
    db: &Database,
    t: &TargetInfo,
    w: &normalize::Workload,
    efficiency: Option<f64>,
    best: Option<usize>,
    rows: &[RowReport],
) -> ProjectedRow {
    let chip = db.accelerator(&t.chip).expect("resolved target");
    let proj = normalize::project(chip, w, efficiency);
    let mut out = ProjectedRow {
        kind: RowKind::Projected,
        chip: chip.id.clone(),
        chip_name: chip.name.clone(),
        projection: None,
        error: None,
        price: t.price.clone(),
        ceiling_perf: None,
        realistic_perf: None,
        break_even: None,
    };
    let p = match proj {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    if let Some(price) = &t.price {
        out.ceiling_perf = Some(perf_per_dollar(
            Interval::exact(p.ceiling_gflops),
            price.usd_per_chip_hour,
        ));
        out.realistic_perf = p
            .realistic_gflops
            .map(|g| perf_per_dollar(Interval::exact(g), price.usd_per_chip_hour));
    }
    if let Some(b) = best {
        if let Some(rp) = &rows[b].price {
            let (g, from, wording) = match p.realistic_gflops {
                Some(g) => (
                    g,
                    "realistic",
                    format!(
                        "from the realistic figure: the price per chip-hour at which it would \
                         match the best measured, peer or imported perf per dollar for this workload ({} — {})",
                        rows[b].kernel, rows[b].run_label
                    ),
                ),
                None => (
                    p.ceiling_gflops,
                    "ceiling",
                    format!(
                        "from the roofline ceiling: the most it could cost per chip-hour and \
                         still match the best measured, peer or imported perf per dollar for this workload ({} — {})",
                        rows[b].kernel, rows[b].run_label
                    ),
                ),
            };
            out.break_even = Some(BreakEven {
                usd_per_chip_hour: break_even_usd_per_hour(g, rp.perf.gflop_per_usd),
                from,
                wording,
                versus_row: b,
            });
        }
    }
    out.projection = Some(p);
    out
}

/// Case families with a numeric suffix and at least three sizes become scaling curves.
pub(crate) fn sweeps(rows: &[RowReport]) -> Vec<Sweep> {
    // (family, device, kernel, precision) → points.
    type Key = (String, String, String, String);
    let mut groups: BTreeMap<Key, Vec<SweepPoint>> = BTreeMap::new();
    for r in rows {
        let (Some(case), Some(g)) = (&r.case, r.gflops) else {
            continue;
        };
        if !r.rankable {
            continue;
        }
        let Some((family, x)) = case.rsplit_once('-') else {
            continue;
        };
        let x = x.trim_start_matches('t');
        let Ok(x) = x.parse::<u64>() else { continue };
        groups
            .entry((
                family.to_string(),
                format!("{} — {}", r.device, r.run_label),
                r.kernel.clone(),
                r.precision.clone(),
            ))
            .or_default()
            .push((x, g.median, g.lo, g.hi));
    }
    groups
        .into_iter()
        .filter_map(|((family, device, kernel, precision), mut points)| {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            (points.len() >= 3).then_some(Sweep {
                family,
                device,
                kernel,
                precision,
                points,
            })
        })
        .collect()
}

/// Each measured `ok` row's ratio to the fastest verified peer row of its workload on the same
/// hardware (`device_key`) in the same run ([`RowReport::vs_peer`]). In-process peers and peers
/// imported into the run both count: they ran on the same machine.
pub(crate) fn peer_ratios(inputs: &[Input], rows: &mut [RowReport]) {
    let raw: Vec<&Row> = inputs.iter().flat_map(|i| i.run.results.iter()).collect();
    debug_assert_eq!(raw.len(), rows.len());
    let speed = |r: &RowReport| r.gflops.map(|g| g.median).unwrap_or(0.0);
    let mut best: BTreeMap<(usize, String, String), usize> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.kind == RowKind::Peer && r.rankable)
    {
        let key = (r.run, r.workload.clone(), r.device_key.clone());
        if best.get(&key).is_none_or(|&j| speed(r) > speed(&rows[j])) {
            best.insert(key, r.index);
        }
    }
    for i in 0..rows.len() {
        let r = &rows[i];
        if r.kind != RowKind::Measured || !r.rankable {
            continue;
        }
        let Some(&j) = best.get(&(r.run, r.workload.clone(), r.device_key.clone())) else {
            continue;
        };
        let (Ok(mine), Ok(theirs)) = (
            Sample::from_slice(&raw[i].samples_s),
            Sample::from_slice(&raw[j].samples_s),
        ) else {
            continue;
        };
        if let Ok(est) = crate::stats::median_ratio(&theirs, &mine, &Bootstrap::default()) {
            rows[i].vs_peer = Some(PeerRatio {
                peer_row: j,
                peer: rows[j].kernel.clone(),
                ratio: est.ratio,
                ci95: est.ci95,
            });
        }
    }
}
