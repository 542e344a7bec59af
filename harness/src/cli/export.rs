//! `perfledger export RUN --format bmf|gab-bigger|gab-smaller` and
//! `perfledger ingest-criterion [DIR] --out RUN.json`: the run file's rows out to benchmark
//! trackers ([`crate::export`]), criterion's results in ([`crate::criterion`]).

use super::report::{check_out, emit};
use super::{usage, ExportArgs, IngestCriterionArgs, EXIT_OK};
use crate::criterion;
use crate::env::{self, CollectOptions};
use crate::export;
use crate::runfile::{Device, RunConfig, RunFile, SuiteRef};
use anyhow::{Context, Result};

pub fn cmd_export(args: ExportArgs) -> Result<u8> {
    if let Some(out) = &args.out {
        check_out(out, args.force)?;
    }
    let runs = args
        .runs
        .iter()
        .map(RunFile::read)
        .collect::<Result<Vec<_>, _>>()?;
    let text = export::export(&runs, args.format);
    emit(&text, args.out.as_deref(), args.force)?;
    let n = export::exported_rows(&runs);
    let skipped = runs.iter().map(|r| r.results.len()).sum::<usize>() - n;
    eprintln!(
        "exported {n} verified ok row(s) of {} run file(s){}",
        runs.len(),
        if skipped > 0 {
            format!(" ({skipped} other rows have no number to track: not ok or not verified)")
        } else {
            String::new()
        }
    );
    Ok(EXIT_OK)
}

pub fn cmd_ingest_criterion(args: IngestCriterionArgs) -> Result<u8> {
    check_out(&args.out, args.force)?;
    let dir = args.dir.clone();
    let benches = criterion::read_tree(&dir).map_err(|e| usage(e.to_string()))?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let isa = perfledger_kernels::isa::Isa::best().name().to_string();
    let environment = env::collect(&CollectOptions {
        threads_used: threads,
        pinned: false,
        isa_selected: isa,
        identity: Default::default(),
    })
    .map_err(|e| usage(e.to_string()))?;
    let device = Device::named(format!(
        "{} ({threads} threads)",
        environment
            .cpu
            .model
            .clone()
            .unwrap_or_else(|| "unknown CPU".into())
    ));
    let ingested = criterion::to_rows(&benches, &device).map_err(|e| usage(e.to_string()))?;
    let mut run = RunFile::new(
        env::harness_info(),
        environment,
        SuiteRef {
            name: "criterion".into(),
            source: Some(dir.display().to_string()),
        },
        RunConfig {
            seed: 0,
            case_budget_s: 0.0,
            max_row_s: None,
            run_budget_s: None,
            argv: std::env::args().collect(),
            options: None,
            tune_cache: None,
        },
    );
    run.complete = true;
    let (rows, foreign) = (ingested.rows.len(), ingested.foreign.len());
    run.results = ingested.rows;
    run.foreign = ingested.foreign;
    run.write(&args.out, args.force)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: {} criterion benchmark(s) from {}: {rows} perfledger kernel row(s), {foreign} \
         foreign (criterion id only, never ranked)",
        args.out.display(),
        benches.len(),
        dir.display()
    );
    Ok(EXIT_OK)
}
