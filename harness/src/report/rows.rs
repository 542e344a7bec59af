//! One row of a run, normalized: where it ran and which spec entry matches, the published and
//! measured roofs, the price of the share used and perf per dollar.

use super::*;

/// Per-run matching context.
pub(crate) struct RunCtx<'a> {
    pub(crate) info: RunInfo,
    pub(crate) cpu: Option<DeviceMatch<'a>>,
    pub(crate) gpus: Vec<Result<DeviceMatch<'a>, String>>,
    pub(crate) offer: Option<&'a Offer>,
}

pub(crate) fn instance_price_from_offer(
    db: &Database,
    m: &OfferMatch<'_>,
) -> Option<InstancePrice> {
    let o = m.offer;
    let usd = o.point_price()?;
    let (age, stale) = db.price_age(o);
    Some(InstancePrice {
        usd_per_hour: usd,
        source: format!("offer {}", o.id),
        matched: Some(m.how.clone()),
        offer: Some(o.id.clone()),
        provider: Some(o.provider.clone()),
        pricing_model: Some(o.pricing_model.name().to_string()),
        region: o.region.clone(),
        status: Some(o.status.name().to_string()),
        as_of: Some(o.as_of.text.clone()),
        age_days: Some(age),
        stale,
        units: Some(o.device_count),
    })
}

pub(crate) fn instance_price_from_cli(db: &Database, p: &PriceInfo) -> InstancePrice {
    let (age, stale) = match p
        .as_of
        .as_deref()
        .and_then(|s| crate::specs::AsOf::parse(s).ok())
    {
        Some(a) => {
            let age = a.age_days(db.options.as_of);
            (Some(age), age > db.options.max_price_age_days || age < 0)
        }
        None => (None, false),
    };
    InstancePrice {
        usd_per_hour: p.usd_per_hour,
        source: format!(
            "--price ({})",
            match p.source.as_deref() {
                Some("env") => "PERFLEDGER_PRICE",
                Some("flag") | Some("cli") | None => "flag",
                Some(other) => other,
            }
        ),
        matched: Some("given at run time: wins over the price data".into()),
        offer: None,
        provider: None,
        pricing_model: None,
        region: None,
        status: None,
        as_of: p.as_of.clone(),
        age_days: age,
        stale,
        units: None,
    }
}

pub(crate) fn run_label(i: usize, run: &RunFile) -> String {
    let host = run
        .environment
        .hostname
        .as_deref()
        .unwrap_or("unknown host");
    match run
        .environment
        .instance
        .as_ref()
        .and_then(|x| x.instance_type.as_deref())
    {
        Some(t) => format!("run {} ({host}, {t})", i + 1),
        None => format!("run {} ({host})", i + 1),
    }
}

pub(crate) fn run_ctx<'a>(db: &'a Database, i: usize, input: &Input) -> RunCtx<'a> {
    let run = &input.run;
    let env = &run.environment;
    let offer_match = env
        .instance
        .as_ref()
        .map(|inst| matching::instance(db, inst));
    // What the instance holds, whatever its region or pricing model.
    let offer = env
        .instance
        .as_ref()
        .and_then(|inst| matching::instance_device(db, inst));
    let cpu = offer
        .and_then(|o| o.device.as_deref().and_then(|d| db.cpu(d)))
        .map(|c| DeviceMatch {
            spec: SpecRef::Cpu(c),
            how: format!(
                "instance {} → offer {}",
                offer.map(|o| o.instance.as_str()).unwrap_or(""),
                offer.map(|o| o.id.as_str()).unwrap_or("")
            ),
        })
        .or_else(|| {
            env.cpu
                .model
                .as_deref()
                .and_then(|m| matching::by_cpu_model(db, m))
        });
    let cpu_no_match = cpu.is_none().then(|| {
        format!(
            "no spec entry for CPU {:?}{}",
            env.cpu.model.as_deref().unwrap_or("unknown"),
            match env
                .instance
                .as_ref()
                .and_then(|x| x.instance_type.as_deref())
            {
                Some(t) => format!(" or instance {t:?}"),
                None => " (no instance type: pass --instance to `run`)".into(),
            }
        )
    });
    let gpus: Vec<Result<DeviceMatch<'a>, String>> =
        env.gpus.iter().map(|g| matching::gpu(db, g)).collect();
    let (price, price_offer, offer_no_match) = match (&env.price, &offer_match) {
        (Some(p), _) => (Some(instance_price_from_cli(db, p)), None, None),
        (None, Some(Ok(m))) => match instance_price_from_offer(db, m) {
            Some(ip) => (Some(ip), Some(m.offer), None),
            None => (
                None,
                None,
                Some(format!(
                    "offer {} ({}) has no single price",
                    m.offer.id, m.how
                )),
            ),
        },
        (None, Some(Err(why))) => (None, None, Some(why.clone())),
        (None, None) => (None, None, Some("no instance identity".to_string())),
    };
    let info = RunInfo {
        index: i,
        file: input.file.clone(),
        run_id: run.run_id.clone(),
        label: run_label(i, run),
        created: run
            .created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        hostname: env.hostname.clone(),
        suite: run.suite.name.clone(),
        complete: run.complete,
        harness: format!(
            "perfledger {}{}{}",
            run.harness.version,
            run.harness
                .git_commit
                .as_deref()
                .map(|c| format!(" @{}", &c[..c.len().min(10)]))
                .unwrap_or_default(),
            if run.harness.git_dirty == Some(true) {
                " (dirty tree)"
            } else {
                ""
            }
        ),
        cpu_model: env.cpu.model.clone(),
        threads_used: env.cpu.threads_used,
        physical_cores: env.cpu.physical_cores,
        vcpus: env.cpu.vcpus,
        instance: env.instance.clone(),
        price,
        offer_no_match,
        cpu_spec: cpu.as_ref().map(MatchInfo::from),
        cpu_no_match,
        gpus: env
            .gpus
            .iter()
            .zip(&gpus)
            .map(|(g, m)| GpuMatchInfo {
                index: g.index,
                name: g.name.clone(),
                software: g.software,
                spec: m.as_ref().ok().map(MatchInfo::from),
                no_match: m.as_ref().err().cloned(),
            })
            .collect(),
        measured_ceilings: run.measured_ceilings.clone(),
    };
    RunCtx {
        info,
        cpu,
        gpus,
        offer: price_offer,
    }
}

/// A short shape string (`512x512x512`, `64x1024x512 Bt`, `h8/2 q256 kv256 d64 causal`):
/// [`Shape::short`].
pub fn shape_string(shape: &Shape) -> String {
    shape.short()
}

/// Which hardware of its run a row ran on.
pub(crate) enum Hw<'a> {
    Cpu,
    Gpu(usize),
    /// An imported device, matched (or not) on its own.
    External(Option<DeviceMatch<'a>>, String),
}

pub(crate) fn extra_str<'a>(d: &'a Device, key: &str) -> Option<&'a str> {
    d.extra.get(key).and_then(|v| v.as_str())
}

pub(crate) fn extra_u32(d: &Device, key: &str) -> Option<u32> {
    d.extra.get(key).and_then(|v| {
        v.as_u64()
            .map(|x| x as u32)
            .or_else(|| v.as_str().and_then(crate::specs::parse_hex_id))
    })
}

/// Match an external device: an explicit `spec` id/alias in the device object, PCI ids
/// (`vendor_id`, `device_id`), or an exact adapter name / CPU model string / spec name.
pub(crate) fn match_external<'a>(db: &'a Database, d: &Device) -> Result<DeviceMatch<'a>, String> {
    if d.software || matching::is_software_adapter_name(&d.name) {
        return Err(format!(
            "software adapter {:?}: never normalized against GPU specs",
            d.name
        ));
    }
    if let Some(s) = extra_str(d, "spec") {
        return match db.resolve(s) {
            Some(crate::specs::Entry::Accelerator(a)) => Ok(DeviceMatch {
                spec: SpecRef::Accelerator(a),
                how: format!("device.spec {s:?}"),
            }),
            Some(crate::specs::Entry::Cpu(c)) => Ok(DeviceMatch {
                spec: SpecRef::Cpu(c),
                how: format!("device.spec {s:?}"),
            }),
            _ => Err(format!("device.spec {s:?} is not in the spec database")),
        };
    }
    if let (Some(v), Some(dev)) = (extra_u32(d, "vendor_id"), extra_u32(d, "device_id")) {
        if let Some(m) = matching::by_pci(db, v, dev) {
            return Ok(m);
        }
    }
    if let Some(m) = matching::by_adapter_name(db, &d.name) {
        return Ok(m);
    }
    if let Some(m) = matching::by_cpu_model(db, &d.name) {
        return Ok(m);
    }
    if let Some(a) = db
        .accelerators
        .iter()
        .find(|a| matching::same_name(&a.name, &d.name))
    {
        return Ok(DeviceMatch {
            spec: SpecRef::Accelerator(a),
            how: format!("spec name {:?}", a.name),
        });
    }
    Err(format!("no spec entry matches device {:?}", d.name))
}

/// Where a row ran ([`ceiling::locate`], the rule the run summary uses too), with an external
/// device's spec match.
pub(crate) fn hardware<'a>(db: &'a Database, run: &RunFile, row: &Row) -> Hw<'a> {
    match ceiling::locate(Some(db), run, row) {
        Location::Cpu => Hw::Cpu,
        Location::Gpu(i) => Hw::Gpu(i),
        Location::External => Hw::External(
            match row.kind {
                RowKind::Peer => matching::by_adapter_name(db, &row.device.name),
                _ => match_external(db, &row.device).ok(),
            },
            row.device.name.clone(),
        ),
    }
}

/// The published roofs of a matched device for a dtype and the part of it a row used.
pub(crate) fn published_roof(
    m: &DeviceMatch<'_>,
    dtype: SpecDType,
    cores_used: Option<u32>,
) -> Option<(f64, Option<f64>, String)> {
    match m.spec {
        SpecRef::Accelerator(a) => {
            let peak = a.peak_gflops(dtype)?;
            Some((
                peak,
                a.bw_gbs(),
                format!(
                    "{} {} dense {} TFLOP/s",
                    a.name,
                    dtype.name(),
                    a.peak_tflops[&dtype].dense
                ),
            ))
        }
        SpecRef::Cpu(c) => {
            let cores = cores_used?;
            let (per_core, basis) = match c.peak_gflops_per_core(dtype) {
                Some(p) => (p, format!("{} dense", dtype.name())),
                None => (
                    c.peak_gflops_per_core(SpecDType::Fp32)?,
                    format!(
                        "no {} arithmetic: inputs converted, fp32 peak",
                        dtype.name()
                    ),
                ),
            };
            Some((
                per_core * cores as f64,
                None,
                format!(
                    "{} {basis}, {cores} cores × {} GFLOP/s",
                    c.name,
                    fmt_num(per_core)
                ),
            ))
        }
    }
}

pub(crate) fn normalized(
    gflops: f64,
    ai: f64,
    peak: f64,
    bw: Option<f64>,
    basis: String,
) -> Normalized {
    let (attainable, bound) = match bw {
        Some(bw) => {
            let (a, b) = Roof {
                peak_gflops: peak,
                bw_gbs: bw,
            }
            .attainable(ai);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    Normalized {
        peak_gflops: peak,
        peak_basis: basis,
        bw_gbs: bw,
        attainable_gflops: attainable,
        bound,
        pct_of_peak: normalize::pct(gflops, peak),
        pct_of_attainable: attainable.map(|a| normalize::pct(gflops, a)),
        probe_wrong: None,
    }
}

pub(crate) fn verification_str(row: &Row) -> String {
    match &row.verification {
        None => "none".into(),
        Some(v) if v.is_none_method() => "unverified".into(),
        Some(v) => format!(
            "{} {}",
            v.method,
            match v.verdict {
                Some(crate::runfile::Verdict::Pass) => "pass",
                Some(crate::runfile::Verdict::Fail) => "FAIL",
                None => "?",
            }
        ),
    }
}

pub(crate) fn not_ranked_reason(row: &Row) -> Option<String> {
    if row.status != Status::Ok {
        return Some(match &row.message {
            Some(m) => format!("{}: {m}", row.status),
            None => row.status.to_string(),
        });
    }
    if row.kind == RowKind::Projected {
        return Some("projected rows are listed separately".into());
    }
    match &row.verification {
        Some(v) if v.passed() => None,
        Some(v) if v.is_none_method() => Some("unverified (verification method none)".into()),
        _ => Some("not verified".into()),
    }
}

/// Workload key: op, shape, input dtype.
pub(crate) fn workload_key(op: Op, shape: &str, dtype: SpecDType) -> String {
    format!("{} {} {}", op.name(), shape, dtype.name())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn row_report<'a>(
    db: &'a Database,
    ctx: &RunCtx<'a>,
    run: &RunFile,
    row: &Row,
    index: usize,
    sources: &mut SourceSet,
) -> RowReport {
    let env = &run.environment;
    let hw = hardware(db, run, row);
    let dtype = SpecDType::of(row.precision.input);
    let shape = shape_string(&row.shape);
    // FLOPs and bytes from the shape by the documented conventions (never from the file's claim).
    let work = row
        .shape
        .problem()
        .ok()
        .map(|p| p.work(row.precision))
        .map(|w| (w.flops, w.min_bytes))
        .or_else(|| Some((row.flops?.useful, row.min_bytes?)))
        .unwrap_or((0, 0));
    let ai = normalize::intensity(work.0, work.1);
    let rankable = row.is_rankable() && row.kind != RowKind::Projected;
    let ok = row.status == Status::Ok;
    let gflops = if ok {
        row.gflops.map(|g| Interval::new(g.median, g.ci95))
    } else {
        None
    };
    let (device_key, spec): (String, Result<DeviceMatch<'a>, String>) = match &hw {
        Hw::Cpu => (
            "cpu".into(),
            ctx.cpu
                .clone()
                .ok_or_else(|| ctx.info.cpu_no_match.clone().unwrap_or_default()),
        ),
        Hw::Gpu(i) => (
            format!("gpu{i}"),
            if row.device.software {
                Err(format!(
                    "software adapter {:?}: never normalized against GPU specs",
                    row.device.name
                ))
            } else {
                ctx.gpus
                    .get(*i)
                    .cloned()
                    .unwrap_or_else(|| Err(format!("GPU {i} is not in the run's environment")))
            },
        ),
        Hw::External(m, name) => (
            format!("external:{name}"),
            match m {
                Some(m) => Ok(m.clone()),
                None => match_external(db, &row.device),
            },
        ),
    };
    if let Ok(m) = &spec {
        sources.spec(db, m.spec.id());
    }
    let cores_used = match hw {
        Hw::Cpu => normalize::used_physical_cores(
            env.cpu.threads_used.max(1),
            env.cpu.smt,
            ctx.offer
                .filter(|o| o.device.as_deref().and_then(|d| db.cpu(d)).is_some())
                .map(|o| o.device_count)
                .or(env.cpu.physical_cores),
        ),
        _ => extra_u32(&row.device, "chips").or(Some(1)),
    };
    // An external row on some cores of one chip (`logical_neuron_cores`, `lnc`): the share of
    // the chip it held, against which its peak and price are taken.
    let core_share = match (&hw, &spec, extra_u32(&row.device, "logical_neuron_cores")) {
        (Hw::External(..), Ok(m), Some(logical)) => match m.spec {
            SpecRef::Accelerator(a) => Some(a.core_share(logical, extra_u32(&row.device, "lnc"))),
            SpecRef::Cpu(_) => None,
        },
        _ => None,
    };
    let mut published = None;
    let mut measured = None;
    let mut ceiling_gap = None;
    let mut price = None;
    let mut per_core = None;
    if let Some(g) = gflops {
        if let Ok(m) = &spec {
            match (published_roof(m, dtype, cores_used), &core_share) {
                (Some((peak, bw, basis)), None) => {
                    published = Some(normalized(g.median, ai, peak, bw, basis));
                }
                (Some((peak, bw, basis)), Some(Ok((share, what)))) => {
                    published = Some(normalized(
                        g.median,
                        ai,
                        peak * share,
                        bw.map(|b| b * share),
                        format!("{basis} × {what}"),
                    ));
                }
                // The cores cannot be counted: no per-chip peak stands in for a per-core one.
                (_, Some(Err(_))) | (None, _) => {}
            }
        }
        let location = match hw {
            Hw::Cpu => Location::Cpu,
            Hw::Gpu(i) => Location::Gpu(i),
            Hw::External(..) => Location::External,
        };
        if let Some(share) = ceiling::share(row, location, &run.measured_ceilings) {
            let r = share.roof.roof;
            let mut m = normalized(
                g.median,
                ai,
                r.peak_gflops,
                Some(r.bw_gbs),
                share.roof.basis(),
            );
            m.pct_of_attainable = share.pct;
            m.probe_wrong = share.probe_wrong;
            measured = Some(m);
        }
        if let (Some(p), Some(m)) = (&published, &measured) {
            ceiling_gap = Some(m.peak_gflops / p.peak_gflops);
        }
        // Price: the run's instance (CPU: whole; GPU: one of N), or the imported row's instance.
        let inst_price = match &hw {
            Hw::External(..) => row
                .provenance
                .as_ref()
                .and_then(|p| p.instance.as_ref())
                .and_then(|i| matching::instance(db, i).ok())
                .and_then(|m| instance_price_from_offer(db, &m)),
            _ => ctx.info.price.clone(),
        };
        if let Some(ip) = inst_price {
            if let Some(o) = &ip.offer {
                sources.offer(db, o);
            }
            let (used, total, share) = match &hw {
                Hw::Cpu => (1.0, 1.0, "whole instance".to_string()),
                Hw::Gpu(_) => {
                    let n = ip
                        .units
                        .filter(|_| {
                            ctx.offer.is_some_and(|o| {
                                o.device
                                    .as_deref()
                                    .and_then(|d| db.accelerator(d))
                                    .is_some()
                            })
                        })
                        .unwrap_or_else(|| {
                            env.gpus.iter().filter(|g| !g.software).count().max(1) as u32
                        });
                    (1.0, n as f64, format!("1 of {n} GPUs"))
                }
                Hw::External(..) => {
                    let used = cores_used.unwrap_or(1);
                    let n = ip.units.unwrap_or(1).max(used);
                    match &core_share {
                        Some(Ok((share, what))) => (
                            *share,
                            n as f64,
                            format!("{what}, of {n} chips of the instance"),
                        ),
                        _ => (
                            used as f64,
                            n as f64,
                            format!("{used} of {n} chips of the instance"),
                        ),
                    }
                }
            };
            let usd = normalize::price_share(ip.usd_per_hour, used, total);
            if let Hw::Cpu = hw {
                // The instance's physical cores: the CPU offer's count, else the machine's.
                let total_cores = ctx
                    .offer
                    .filter(|o| {
                        o.device.as_deref().and_then(|d| db.cpu(d)).is_some() && ip.offer.is_some()
                    })
                    .map(|o| o.device_count)
                    .or(env.cpu.physical_cores);
                if let (Some(used), Some(total)) = (cores_used, total_cores) {
                    let usd_core =
                        normalize::price_share(ip.usd_per_hour, used as f64, total as f64);
                    per_core = Some(PerCore {
                        cores_used: used,
                        cores_total: total,
                        usd_per_hour: usd_core,
                        perf: perf_per_dollar(g, usd_core),
                    });
                }
            }
            price = Some(RowPrice {
                usd_per_hour: usd,
                share,
                instance: ip,
                perf: perf_per_dollar(g, usd),
            });
        }
    }
    let kernel = match (&row.id, &row.provenance) {
        (Some(id), _) => id.clone(),
        (None, Some(p)) => format!(
            "{}{}",
            p.tool.as_deref().unwrap_or("external"),
            p.tool_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        ),
        (None, None) => row.kind.name().to_string(),
    };
    let provenance = row.provenance.as_ref().map(|p| {
        [
            p.tool.as_deref().map(|t| format!("tool {t}")),
            p.date.as_deref().map(|d| format!("date {d}")),
            p.source.as_deref().map(|s| format!("source {s}")),
            p.instance
                .as_ref()
                .and_then(|i| i.instance_type.as_deref())
                .map(|t| format!("instance {t}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    });
    let fixture = is_fixture(row);
    RowReport {
        index,
        run: ctx.info.index,
        run_label: ctx.info.label.clone(),
        kind: row.kind,
        status: row.status,
        rankable,
        not_ranked: if rankable {
            None
        } else {
            not_ranked_reason(row)
        },
        device: if fixture {
            format!("{} [FIXTURE: test data]", row.device.name)
        } else {
            row.device.name.clone()
        },
        fixture,
        device_key,
        software: row.device.software,
        backend: row.backend,
        kernel,
        case: row.case.clone(),
        op: row.op,
        workload: workload_key(row.op, &shape, dtype),
        shape,
        precision: row.precision.to_string(),
        dtype,
        flops: work.0,
        min_bytes: work.1,
        intensity: ai,
        gflops,
        median_s: if ok {
            row.stats.as_ref().map(|s| s.median_s)
        } else {
            None
        },
        time_ci95_s: if ok {
            row.stats.as_ref().map(|s| s.ci95_s)
        } else {
            None
        },
        verification: verification_str(row),
        spec: spec.as_ref().ok().map(MatchInfo::from),
        spec_na: spec.err(),
        published,
        measured,
        ceiling_gap,
        price,
        per_core,
        provenance,
        message: row.message.clone(),
        vs_peer: None,
        read_alongside_gbs: row.read_alongside.as_ref().map(|r| r.median_gbs),
        read_alongside_share: row
            .read_alongside
            .as_ref()
            .and_then(|r| r.share)
            .filter(|_| ok),
    }
}

/// Whether a row is fixture data (`source: "fixture"`, as `scripts/trainium/measure_neuron.py
/// --dry-run` writes): labelled so wherever the row is shown.
pub(crate) fn is_fixture(row: &Row) -> bool {
    row.provenance
        .as_ref()
        .and_then(|p| p.source.as_deref())
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("fixture"))
}
