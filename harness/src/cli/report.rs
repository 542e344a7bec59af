//! `perfledger report` and `perfledger specs`: argument validation and output. Neither touches a
//! GPU or runs a probe, so both start instantly. Bad input (a run, spec or price file, a date, a
//! target) is a [`UsageError`] naming the file and field: exit 2, nothing written.

use super::{ReportArgs, SpecsAction, SpecsArgs, UsageError, EXIT_OK};
use crate::report::{build, html, parse_targets, Input, Options};
use crate::runfile::{write_atomic, RunFile};
use crate::specs::{self, fmt_num, Database, Entry, LoadOptions};
use anyhow::{Context, Result};
use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Output formats of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Plain text for a terminal.
    Table,
    /// GitHub-flavoured Markdown.
    Md,
    /// One line per row and per projection.
    Csv,
    /// The report model (`perfledger.report/1`, results/README.md).
    Json,
    /// One self-contained HTML file with SVG charts.
    Html,
}

/// Output formats of `specs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SpecsFormat {
    Table,
    Json,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn load_options(as_of: Option<&str>, max_age: i64) -> Result<LoadOptions> {
    let as_of = match as_of {
        Some(s) => specs::parse_date(s).map_err(|e| usage(format!("--as-of: {e}")))?,
        None => specs::today(),
    };
    if max_age < 0 {
        return Err(usage(format!(
            "--max-price-age-days: {max_age} is negative"
        )));
    }
    Ok(LoadOptions {
        as_of,
        max_price_age_days: max_age,
    })
}

fn load_db(
    spec_files: &[PathBuf],
    price_files: &[PathBuf],
    opts: &LoadOptions,
) -> Result<Database> {
    Database::load(spec_files, price_files, opts).map_err(|e| usage(e.to_string()))
}

/// Refuse an `--out` before any work (exists without `--force`, or a directory).
pub(crate) fn check_out(out: &Path, force: bool) -> Result<()> {
    if out.is_dir() {
        return Err(usage(format!("--out {}: is a directory", out.display())));
    }
    if out.exists() && !force {
        return Err(usage(format!(
            "--out {}: the file exists (use --force to overwrite)",
            out.display()
        )));
    }
    Ok(())
}

pub(crate) fn emit(text: &str, out: Option<&Path>, force: bool) -> Result<()> {
    match out {
        Some(p) => {
            write_atomic(p, text.as_bytes(), force)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            // On a terminal, strings from files cannot drive it; a pipe or a redirect gets the
            // bytes as rendered.
            let text = if std::io::IsTerminal::is_terminal(&stdout) {
                super::terminal_safe(text)
            } else {
                std::borrow::Cow::Borrowed(text)
            };
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout.write_all(text.as_bytes());
        }
    }
    Ok(())
}

/// `perfledger report RUN.json... [--format ...] [--out FILE] [--targets ...] [--specs FILE]
/// [--prices FILE] [--as-of DATE] [--efficiency E]`.
pub fn report(args: ReportArgs) -> Result<u8> {
    let opts = load_options(args.as_of.as_deref(), args.max_price_age_days)?;
    if let Some(e) = args.efficiency {
        if !(e.is_finite() && e > 0.0 && e <= 1.0) {
            return Err(usage(format!("--efficiency: {e} is not in (0, 1]")));
        }
    }
    if let Some(out) = &args.out {
        check_out(out, args.force)?;
    }
    let db = load_db(&args.specs, &args.prices, &opts)?;
    let targets = parse_targets(args.targets.as_deref().unwrap_or(&[]), &db).map_err(usage)?;
    let mut inputs = Vec::new();
    for p in &args.runs {
        let run = RunFile::read(p)?;
        inputs.push(Input {
            file: p.display().to_string(),
            run,
        });
    }
    let rep = build(
        &inputs,
        &db,
        &Options {
            targets,
            efficiency: args.efficiency,
        },
    );
    let text = match args.format {
        ReportFormat::Table => crate::report::table::render(&rep),
        ReportFormat::Md => crate::report::md::render(&rep),
        ReportFormat::Csv => crate::report::csv::render(&rep),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&rep).context("serializing the report")?;
            s.push('\n');
            s
        }
        ReportFormat::Html => html::render(&rep, &db),
    };
    emit(&text, args.out.as_deref(), args.force)?;
    if let Some(out) = &args.out {
        eprintln!(
            "report: {} ({:?}, {} rows, {} workloads{})",
            out.display(),
            args.format,
            rep.rows.len(),
            rep.workloads.len(),
            if args.format == ReportFormat::Html {
                format!(", {} SVG charts", html::chart_count(&text))
            } else {
                String::new()
            }
        );
    }
    Ok(EXIT_OK)
}

/// `perfledger specs [list|show ID]`.
pub fn specs(args: SpecsArgs) -> Result<u8> {
    let opts = load_options(args.as_of.as_deref(), args.max_price_age_days)?;
    let db = load_db(&args.specs, &args.prices, &opts)?;
    let text = match args.action.unwrap_or(SpecsAction::List) {
        SpecsAction::List => match args.format {
            SpecsFormat::Json => {
                let doc = serde_json::json!({
                    "schema": "perfledger.specs-list/1",
                    "as_of": opts.as_of.to_string(),
                    "accelerators": db.accelerators,
                    "cpus": db.cpus,
                    "offers": db.offers,
                    "aliases": db.aliases(),
                    "origins": db.origins,
                });
                serde_json::to_string_pretty(&doc)? + "\n"
            }
            SpecsFormat::Table => list_text(&db),
        },
        SpecsAction::Show { id } => {
            let entry = db.resolve(&id).ok_or_else(|| {
                usage(format!(
                    "specs show: {id:?} is not an id or alias (see `perfledger specs list`)"
                ))
            })?;
            show_text(&db, entry, args.format)?
        }
    };
    emit(&text, None, false)?;
    Ok(EXIT_OK)
}

fn list_text(db: &Database) -> String {
    use crate::report::layout::{for_terminal, Block, Table};
    let t = |headers: &[&str], rows: Vec<Vec<String>>| {
        let block = Block::Table(Table {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows,
            terminal: Default::default(),
        });
        // What the terminal shows of each table; the rest in numbered footnotes.
        let (show, notes): (&[&str], &[&str]) = match headers[1] {
            "aliases" if headers.contains(&"bf16") => (
                &[
                    "id", "name", "bf16", "fp16", "fp32", "BW TB/s", "status", "as of",
                ],
                &[
                    "aliases",
                    "fp8",
                    "tf32",
                    "memory",
                    "TDP W",
                    "measured ceiling",
                    "identify",
                    "source",
                ],
            ),
            "aliases" => (
                &[
                    "id",
                    "name",
                    "fp32 GFLOP/s/core=fp32/core",
                    "bf16 GFLOP/s/core=bf16/core",
                    "status",
                    "as of",
                ],
                &[
                    "aliases",
                    "fp16 GFLOP/s/core",
                    "clock GHz (basis)",
                    "model strings",
                    "source",
                ],
            ),
            "provider" => (
                &[
                    "id",
                    "USD/h",
                    "USD per device-hour=USD/device-h",
                    "status",
                    "age (days)=age d",
                ],
                &["device × count", "as of", "source"],
            ),
            _ => return block,
        };
        for_terminal(block, show, notes)
    };
    let peak = |a: &specs::Accelerator, d: specs::SpecDType| {
        a.peak_tflops
            .get(&d)
            .map(|p| p.dense.to_string())
            .unwrap_or_else(|| "—".into())
    };
    let mut b = vec![
        Block::Heading(1, "perfledger spec and price database".into()),
        Block::Para(format!(
            "{} accelerators, {} CPUs, {} offers. Peaks are dense TFLOP/s per chip (CPUs: \
             GFLOP/s per core); a–b is a range of conflicting published values. Prices are \
             archived snapshots: check `as of`. Ages count from {}.",
            db.accelerators.len(),
            db.cpus.len(),
            db.offers.len(),
            db.options.as_of
        )),
        Block::Heading(2, "Accelerators".into()),
        t(
            &[
                "id",
                "aliases",
                "name",
                "bf16",
                "fp16",
                "fp8",
                "tf32",
                "fp32",
                "memory",
                "BW TB/s",
                "TDP W",
                "measured ceiling",
                "identify",
                "status",
                "as of",
                "source",
            ],
            db.accelerators
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.aliases.join(", "),
                        a.name.clone(),
                        peak(a, specs::SpecDType::Bf16),
                        peak(a, specs::SpecDType::Fp16),
                        peak(a, specs::SpecDType::Fp8),
                        peak(a, specs::SpecDType::Tf32),
                        peak(a, specs::SpecDType::Fp32),
                        a.memory_gb
                            .as_ref()
                            .map(|m| format!("{m} {}", a.memory_unit.as_deref().unwrap_or("GB")))
                            .unwrap_or_else(|| "—".into()),
                        a.mem_bw_tbs
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or("—".into()),
                        a.tdp_w
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or("—".into()),
                        a.measured_ceilings
                            .iter()
                            .map(|c| format!("{} {}", c.dtype.name(), fmt_num(c.tflops)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        a.identify
                            .pci
                            .iter()
                            .flat_map(|p| {
                                p.device_ids
                                    .iter()
                                    .map(move |d| format!("{}:{}", &p.vendor_id[2..], &d[2..]))
                            })
                            .chain(a.identify.adapter_names.iter().map(|n| format!("{n:?}")))
                            .collect::<Vec<_>>()
                            .join(", "),
                        a.status.name().into(),
                        a.as_of.text.clone(),
                        a.source.clone(),
                    ]
                })
                .collect(),
        ),
        Block::Heading(2, "CPUs (per core)".into()),
        t(
            &[
                "id",
                "aliases",
                "name",
                "fp32 GFLOP/s/core",
                "bf16 GFLOP/s/core",
                "fp16 GFLOP/s/core",
                "clock GHz (basis)",
                "model strings",
                "status",
                "as of",
                "source",
            ],
            db.cpus
                .iter()
                .map(|c| {
                    let p = |d| {
                        c.peak_gflops_per_core
                            .get(&d)
                            .map(|p| {
                                format!(
                                    "{}{}",
                                    p.dense,
                                    if p.assumed { " (assumed rate)" } else { "" }
                                )
                            })
                            .unwrap_or_else(|| "— (no arithmetic)".into())
                    };
                    vec![
                        c.id.clone(),
                        c.aliases.join(", "),
                        c.name.clone(),
                        p(specs::SpecDType::Fp32),
                        p(specs::SpecDType::Bf16),
                        p(specs::SpecDType::Fp16),
                        format!(
                            "{} ({})",
                            c.clock_ghz.map(fmt_num).unwrap_or("—".into()),
                            c.clock_basis.as_deref().unwrap_or("")
                        ),
                        c.model_strings.join(", "),
                        c.status.name().into(),
                        c.as_of.text.clone(),
                        c.source.clone(),
                    ]
                })
                .collect(),
        ),
        Block::Heading(2, "Offers".into()),
        t(
            &[
                "id",
                "provider",
                "instance",
                "pricing model",
                "region",
                "device × count",
                "USD/h",
                "USD per device-hour",
                "status",
                "as of",
                "age (days)",
                "source",
            ],
            db.offers
                .iter()
                .map(|o| {
                    let (age, stale) = db.price_age(o);
                    vec![
                        o.id.clone(),
                        o.provider.clone(),
                        o.instance.clone(),
                        o.pricing_model.name().into(),
                        o.region.clone().unwrap_or_else(|| "—".into()),
                        format!("{} × {}", o.device_label(), o.device_count),
                        o.instance_price()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "no published price".into()),
                        o.device_price()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "—".into()),
                        o.status.name().into(),
                        o.as_of.text.clone(),
                        format!("{age}{}", if stale { " (STALE)" } else { "" }),
                        o.source.clone(),
                    ]
                })
                .collect(),
        ),
        Block::Heading(2, "Aliases".into()),
        t(
            &["alias", "id"],
            db.aliases()
                .iter()
                .map(|(a, id)| vec![a.clone(), id.clone()])
                .collect(),
        ),
    ];
    let files: Vec<String> = {
        let mut f: Vec<String> = db.origins.values().map(|o| o.file.clone()).collect();
        f.sort();
        f.dedup();
        f
    };
    b.push(Block::Para(format!("Files: {}", files.join("; "))));
    crate::report::table::render_blocks(&b)
}

fn show_text(db: &Database, entry: Entry<'_>, format: SpecsFormat) -> Result<String> {
    // Pretty-printed from the structs, so fields keep their documented order.
    let (value, pretty, offers) = match entry {
        Entry::Accelerator(a) => (
            serde_json::to_value(a)?,
            serde_json::to_string_pretty(a)?,
            db.offers_for(&a.id).collect::<Vec<_>>(),
        ),
        Entry::Cpu(c) => (
            serde_json::to_value(c)?,
            serde_json::to_string_pretty(c)?,
            db.offers_for(&c.id).collect::<Vec<_>>(),
        ),
        Entry::Offer(o) => (
            serde_json::to_value(o)?,
            serde_json::to_string_pretty(o)?,
            Vec::new(),
        ),
    };
    let origin = db.origin(entry.id()).cloned();
    if format == SpecsFormat::Json {
        let doc = serde_json::json!({
            "entry": value,
            "origin": origin,
            "offers": offers,
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let mut s = format!(
        "{} (from {})\n",
        entry.id(),
        origin.map(|o| o.file).unwrap_or_default()
    );
    s.push_str(&pretty);
    s.push('\n');
    if !offers.is_empty() {
        s.push_str("\noffers:\n");
        for o in offers {
            let (age, stale) = db.price_age(o);
            s.push_str(&format!(
                "  {}: {} {} ({}, {}), {} × {}, {}, {}, as of {} ({} days{}), source: {}\n",
                o.id,
                o.provider,
                o.instance,
                o.pricing_model.name(),
                o.region.as_deref().unwrap_or("—"),
                o.device_label(),
                o.device_count,
                o.instance_price()
                    .map(|p| format!("${p}/h"))
                    .unwrap_or_else(|| "no published price".into()),
                o.status.name(),
                o.as_of,
                age,
                if stale { ", STALE" } else { "" },
                o.source
            ));
        }
        if let Entry::Accelerator(a) = entry {
            if let Some(r) = db.reference_offer(&a.id) {
                s.push_str(&format!("reference price for projections: {}\n", r.id));
            }
        }
    }
    Ok(s)
}
