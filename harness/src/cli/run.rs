//! `perfledger run`: validate the arguments into a plan, print it with the range of time it can
//! take, measure the machine's ceilings, run every row with a progress display whose estimate is
//! refined as rows run ([`crate::eta`]), measure the ceilings again, write the run file and print
//! the summary ([`super::summary`]).

use super::summary::{format_summary, row_line};
use super::{parse_isa, usage, ProbeMode, RunArgs, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use super::{INTERRUPTS, PARTIAL};
use crate::env::{self, CollectOptions, StealMeter};
use crate::eta::{self, fmt_secs, Budgets, Eta, RowWork};
use crate::runfile::{
    Device, MeasuredCeilings, Row, RunConfig, RunFile, RunOptions, Status, SuiteRef,
};
use crate::runner::{self, Inputs, RunnerOptions, MIN_SAMPLE_S};
use crate::workload::{self, Filters, Plan, Suite};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use perfledger_kernels::cpu::matmul::BlockingOverride;
use perfledger_kernels::kernel::Backend;
use perfledger_kernels::probe::{self, ProbeOptions};
use perfledger_kernels::{ComputeUnit, DType, Registry, RegistryOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Validated options of `run`.
struct RunPlan {
    suite: Suite,
    registry: Registry,
    filters: Filters,
    runner: RunnerOptions,
    threads: usize,
    out: Option<PathBuf>,
}

/// The options the user set, as the run file records them (`config.options`): the flags as given,
/// defaults unset, so the same command line records the same options.
fn run_options(args: &RunArgs) -> RunOptions {
    RunOptions {
        threads: args.threads,
        pin: args.pin,
        idle_workers: args.idle_workers,
        rounds: (args.rounds > 1).then_some(args.rounds),
        isa: args
            .isa
            .map(|i| perfledger_kernels::isa::Isa::from(i).name().to_string()),
        blocking: args.blocking.clone(),
        backends: args
            .backend
            .iter()
            .flatten()
            .map(|&b| Backend::from(b))
            .collect(),
        dtypes: args
            .dtype
            .iter()
            .flatten()
            .map(|&d| DType::from(d))
            .collect(),
        kernels: args.kernel.clone().unwrap_or_default(),
        cases: args.case.clone().unwrap_or_default(),
        ci_target: args.ci_target,
        probes: match args.probes {
            ProbeMode::Full => "full",
            ProbeMode::Off => "off",
        }
        .to_string(),
        allow_software_gpu: args.allow_software_gpu,
        gpu: args.gpu.clone(),
        tune_cache: args.tune_cache.as_ref().map(|p| p.display().to_string()),
        allow_test_kernels: args.allow_test_kernels,
    }
}

fn validate_run(args: &RunArgs) -> Result<RunPlan> {
    let isa = parse_isa(args.isa)?;
    let blocking = args
        .blocking
        .as_deref()
        .map(|b| {
            b.parse::<BlockingOverride>()
                .map_err(|e| usage(format!("--blocking: {e}")))
        })
        .transpose()?;
    let suite = Suite::load(&args.suite)?;
    // GPU options only (no driver is loaded until a GPU row asks for the device).
    env::gpu::configure(args.allow_software_gpu, args.gpu.as_deref()).map_err(usage)?;
    load_tune_cache(args.tune_cache.as_deref())?;
    let dtypes = args
        .dtype
        .as_ref()
        .map(|v| v.iter().map(|&d| DType::from(d)).collect::<Vec<_>>());
    let backends = args
        .backend
        .as_ref()
        .map(|v| v.iter().map(|&b| Backend::from(b)).collect::<Vec<_>>());
    let positive = |name: &str, v: Option<f64>| -> Result<Option<f64>> {
        match v {
            Some(x) if !(x.is_finite() && x > 0.0) => {
                Err(usage(format!("{name}: {x} is not a positive number")))
            }
            Some(x) if x > crate::limits::MAX_BUDGET_S => Err(usage(format!(
                "{name}: {} s is absurdly long (limit {} s, a week)",
                crate::limits::show_number(x),
                crate::limits::MAX_BUDGET_S
            ))),
            other => Ok(other),
        }
    };
    let case_budget_s = positive("--case-budget", args.case_budget)?
        .or(suite.case_budget_s)
        .unwrap_or(2.0);
    let run_budget_s = positive("--run-budget", args.run_budget)?.or(suite.run_budget_s);
    let max_row_s = positive("--max-row-s", args.max_row_s)?;
    if let Some(cap) = max_row_s.filter(|&c| c < case_budget_s) {
        bail!(usage(format!(
            "--max-row-s: {cap} is below the row budget of {case_budget_s} s (the cap bounds how \
             far a row may run past its budget)"
        )));
    }
    positive("--price", args.price)?;
    if !(args.ci_target > 0.0 && args.ci_target < 1.0) {
        bail!(usage(format!(
            "--ci-target: {} is not in (0, 1)",
            args.ci_target
        )));
    }
    let threads = super::thread_count(args.threads)?;
    if let Some(out) = &args.out {
        check_out_path(out, args.force)?;
    }
    if args.allow_test_kernels && !cfg!(feature = "test-kernels") {
        bail!(usage(
            "--allow-test-kernels: this perfledger was built without the `test-kernels` feature \
             (cargo build --features test-kernels)"
        ));
    }
    let registry = Registry::new(&RegistryOptions {
        isa,
        blocking,
        test_kernels: args.allow_test_kernels,
    });
    let filters = Filters {
        dtypes,
        backends,
        kernels: args.kernel.clone(),
        cases: args.case.clone(),
    };
    let runner = RunnerOptions {
        case_budget_s,
        max_row_s,
        run_budget_s,
        seed: args.seed,
        ci_target: args.ci_target,
        idle_workers: args.idle_workers,
        rounds: args.rounds,
        ..RunnerOptions::default()
    };
    Ok(RunPlan {
        suite,
        registry,
        filters,
        runner,
        threads,
        out: args.out.clone(),
    })
}

/// The tune cache for the GPU kernels (`--tune-cache FILE`, `none`, or the default location when
/// a file is there): read, checked and installed for the kernels to consult. A bad file is the
/// user's input (exit 2, naming the file and the field).
#[cfg(feature = "gpu")]
fn load_tune_cache(arg: Option<&Path>) -> Result<()> {
    use perfledger_kernels::gpu::tune::{self, InstalledCache, TuneCache};
    tune::install(None);
    let path = match arg {
        Some(p) if p.as_os_str() == "none" => return Ok(()),
        Some(p) => p.to_path_buf(),
        None => match super::tune::default_cache_path().filter(|p| p.is_file()) {
            Some(p) => p,
            None => return Ok(()),
        },
    };
    let bytes = crate::input::read(&path)
        .map_err(|e| usage(format!("--tune-cache {}: {e}", path.display())))?;
    let cache =
        TuneCache::from_slice(&bytes, &path).map_err(|e| usage(format!("--tune-cache {e}")))?;
    let sha256 = crate::runfile::sha256_hex(&bytes);
    tune::install(Some(InstalledCache::new(path, sha256, cache)));
    Ok(())
}

#[cfg(not(feature = "gpu"))]
fn load_tune_cache(arg: Option<&Path>) -> Result<()> {
    match arg {
        Some(p) if p.as_os_str() != "none" => Err(usage(
            "--tune-cache: this perfledger was built without the `gpu` feature",
        )),
        _ => Ok(()),
    }
}

/// What the run file records of the tune cache (path, hash, what the GPU rows did with it).
#[cfg(feature = "gpu")]
fn tune_cache_ref() -> Option<crate::runfile::TuneCacheRef> {
    let c = perfledger_kernels::gpu::tune::installed()?;
    Some(crate::runfile::TuneCacheRef {
        path: c.path.display().to_string(),
        sha256: c.sha256.clone(),
        entries: c.cache.entries.len(),
        notes: c.notes(),
    })
}

#[cfg(not(feature = "gpu"))]
fn tune_cache_ref() -> Option<crate::runfile::TuneCacheRef> {
    None
}

/// Refuse an output path before any work: existing without --force, or not creatable.
fn check_out_path(out: &Path, force: bool) -> Result<()> {
    if out.exists() && !force {
        bail!(usage(format!(
            "--out {}: the file exists (use --force to overwrite)",
            out.display()
        )));
    }
    if out.is_dir() {
        bail!(usage(format!("--out {}: is a directory", out.display())));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The nearest existing ancestor must be a directory (not e.g. a regular file).
    let mut anc = parent;
    loop {
        if anc.exists() {
            if !anc.is_dir() {
                bail!(usage(format!(
                    "--out {}: {} is not a directory",
                    out.display(),
                    anc.display()
                )));
            }
            break;
        }
        match anc.parent() {
            Some(p) if !p.as_os_str().is_empty() => anc = p,
            _ => break,
        }
    }
    Ok(())
}

/// The rows' work for the time estimates. `probe_support`: ask GPU kernels too (once the
/// adapter is open).
fn row_works(plan: &Plan<'_>, probe_support: bool) -> Vec<RowWork> {
    plan.rows
        .iter()
        .map(|r| {
            let sets = runner::rotation_sets(&r.case.problem, r.precision, r.backend);
            RowWork::new(
                r.case_index,
                &r.case.problem,
                r.kernel,
                r.precision,
                sets,
                probe_support,
            )
        })
        .collect()
}

fn budgets(opts: &RunnerOptions) -> Budgets {
    Budgets {
        budget_s: opts.case_budget_s,
        cap_s: opts.cap_s(),
        run_budget_s: opts.run_budget_s,
        min_sample_s: MIN_SAMPLE_S,
        turns: opts.rounds.max(1),
    }
}

/// A row that is done (all its turns): told to the ETA, shown (an unsupported one with
/// `--verbose` only), kept in the run and in the partial run that Ctrl-C writes.
///
/// `turns_shown`: the row's turns the progress display already counted (`--rounds`).
fn finish_row(
    run: &mut RunFile,
    progress: &mut Progress,
    i: usize,
    row: Row,
    verbose: bool,
    turns_shown: u64,
) {
    progress.eta().finish(i, &row);
    if row.status != Status::Unsupported || verbose {
        progress.println(row_line(&row));
    }
    run.results.push(row);
    set_partial(run.results.clone());
    progress.row_done(turns_shown);
}

/// The rows a second Ctrl-C writes as the partial run.
fn set_partial(results: Vec<Row>) {
    if let Ok(mut g) = PARTIAL.lock() {
        if let Some((r, _)) = g.as_mut() {
            r.results = results;
        }
    }
}

fn print_plan(plan: &Plan<'_>, rp: &RunPlan) {
    let rows = plan.rows.len();
    let opts = &rp.runner;
    println!(
        "plan: suite {} ({}), {} cases, {} rows (case × kernel × dtype), {} threads (idle \
         workers {}), ISA {}{}",
        rp.suite.name,
        rp.suite.source,
        rp.suite.cases.len(),
        rows,
        rp.threads,
        opts.idle_workers.name(),
        rp.registry.isa_selected(),
        if opts.rounds > 1 {
            format!(
                "; each case's rows in {} turns, the order reversed every other turn",
                opts.rounds
            )
        } else {
            String::new()
        }
    );
    let works = row_works(plan, false);
    let (min, max) = eta::plan_range(&works, &budgets(opts), rp.threads);
    let cannot = works.iter().filter(|w| w.supported == Some(false)).count();
    println!(
        "ETA: {} to {} (row budget {} s, a target: a row goes on past it to its 10th sample, up \
         to its cap of {} s{}; probes included{}{})",
        fmt_secs(min),
        fmt_secs(max),
        opts.case_budget_s,
        opts.cap_s(),
        opts.run_budget_s
            .map(|r| format!("; run budget {}", fmt_secs(r)))
            .unwrap_or_default(),
        if cannot > 0 {
            format!("; {cannot} rows this machine cannot run count nothing")
        } else {
            String::new()
        },
        if opts.rounds > 1 {
            format!(
                "; each row's {} turns counted with a first run, warm-up and share of the \
                 minimum samples each, not their repeated preparation and verification",
                opts.rounds
            )
        } else {
            String::new()
        }
    );
    if plan.omitted_baseline > 0 {
        println!(
            "omitted: {} baseline rows above the work cap of {:.2} GFLOP",
            plan.omitted_baseline,
            workload::BASELINE_WORK_CAP_FLOPS as f64 / 1e9
        );
    }
    if !plan.no_kernel.is_empty() {
        println!(
            "no kernel in this build for {} case × dtype × backend combinations:",
            plan.no_kernel.len()
        );
        for s in &plan.no_kernel {
            println!("  - {s}");
        }
    }
}

/// Progress: a bar on a terminal (its ETA from [`Eta`]), else a line at every quarter of the
/// rows, so logs show the estimate too.
struct Progress {
    bar: ProgressBar,
    eta: Arc<Mutex<Eta>>,
    started: Instant,
    rows: usize,
    rows_done: usize,
    /// Turns of each row (`--rounds`; 1 in one go): the bar counts turns.
    turns: u64,
    /// Turns counted so far (rows in one go).
    units_done: u64,
    next_quarter: u64,
}

impl Progress {
    fn new(rows: usize, turns: u32, eta: Eta, started: Instant) -> Progress {
        let eta = Arc::new(Mutex::new(eta));
        let turns = u64::from(turns.max(1));
        let bar =
            ProgressBar::with_draw_target(Some(rows as u64 * turns), ProgressDrawTarget::stderr());
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let for_key = Arc::clone(&eta);
        bar.set_style(
            ProgressStyle::with_template(if turns > 1 {
                "{elapsed_precise} [{bar:30}] {pos}/{len} turns, ETA {perfledger_eta} {msg}"
            } else {
                "{elapsed_precise} [{bar:30}] {pos}/{len} rows, ETA {perfledger_eta} {msg}"
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "perfledger_eta",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let left = for_key.lock().map(|e| e.remaining_s()).unwrap_or(0.0);
                    let _ = w.write_str(&fmt_secs(left));
                },
            )
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        Progress {
            bar,
            eta,
            started,
            rows,
            rows_done: 0,
            turns,
            units_done: 0,
            next_quarter: 1,
        }
    }

    fn eta(&self) -> std::sync::MutexGuard<'_, Eta> {
        self.eta.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn println(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// One more turn of a row done (`--rounds`).
    fn turn_done(&mut self) {
        self.advance(1);
    }

    /// One more row done, `turns_shown` of its turns already counted: the turns it did not take
    /// (a row that ended early) count now.
    fn row_done(&mut self, turns_shown: u64) {
        self.rows_done += 1;
        self.advance(self.turns - turns_shown.min(self.turns));
    }

    /// The bar advances by `n` turns (rows in one go); without a bar, a line at each quarter.
    fn advance(&mut self, n: u64) {
        self.bar.inc(n);
        self.units_done += n;
        let total = self.rows as u64 * self.turns;
        if !self.bar.is_hidden() || total < 4 {
            return;
        }
        // The last quarter once every row is finished (a case's rows finish after its turns).
        while self.units_done * 4 >= self.next_quarter * total
            && (self.next_quarter < 4 || (self.next_quarter == 4 && self.rows_done == self.rows))
        {
            self.next_quarter += 1;
            let left = self.eta().remaining_s();
            let done = if self.turns > 1 {
                format!(
                    "{}/{total} turns, {}/{} rows",
                    self.units_done, self.rows_done, self.rows
                )
            } else {
                format!("{}/{} rows", self.rows_done, self.rows)
            };
            eprintln!(
                "progress: {done} ({:.0}%) after {:.1} s, ETA {} ({:.1} s)",
                100.0 * self.units_done as f64 / total as f64,
                self.started.elapsed().as_secs_f64(),
                fmt_secs(left),
                left
            );
            if std::env::var_os("PERFLEDGER_ETA_DEBUG").is_some() {
                for line in self.eta().largest_left(8) {
                    eprintln!("  eta: {line}");
                }
            }
        }
    }
}

/// The probes before the rows, and how long those to be repeated after the rows took.
fn measure_ceilings(
    mode: ProbeMode,
    threads: usize,
    after_units: &[ComputeUnit],
) -> (MeasuredCeilings, f64) {
    let opts = match mode {
        ProbeMode::Off => return (MeasuredCeilings::default(), 0.0),
        ProbeMode::Full => ProbeOptions {
            threads,
            quick: false,
        },
    };
    eprintln!(
        "measuring ceilings (FMA per compute unit, vdpbf16ps and tdpbf16ps where present, read \
         bandwidth over {} patterns, triad)...",
        probe::ReadPattern::ALL.len()
    );
    // Each probe timed, so the estimate knows what repeating some after the rows will take.
    let mut repeat_s = 0.0;
    let mut timed = |unit: Option<ComputeUnit>, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        if unit.is_none_or(|u| after_units.contains(&u)) {
            repeat_s += t.elapsed().as_secs_f64();
        }
    };
    let mut fma = Vec::new();
    for isa in perfledger_kernels::isa::Isa::ALL {
        timed(Some(ComputeUnit::CpuFma(isa)), &mut || {
            fma.extend(probe::fma_throughput(isa, &opts))
        });
    }
    let mut bf16dot = None;
    timed(Some(ComputeUnit::CpuBf16Dot), &mut || {
        bf16dot = probe::bf16dot_throughput(&opts)
    });
    let mut bandwidth = None;
    timed(None, &mut || bandwidth = Some(probe::bandwidth(&opts)));
    // AMX last: heavy tile work can lower the core clock for a while after it (Intel's AMX
    // license), which must not carry into the read probe.
    let mut amx = None;
    timed(Some(ComputeUnit::CpuAmxBf16), &mut || {
        amx = probe::amx_throughput(&opts)
    });
    let probes = probe::CpuCeilings {
        threads,
        fma,
        bf16dot,
        amx,
        bandwidth: bandwidth.expect("measured above"),
    };
    (MeasuredCeilings::from_cpu_probes(&probes), repeat_s)
}

/// The CPU compute units of the selected ISA path (measured again after the rows).
fn selected_units(registry: &Registry) -> Vec<ComputeUnit> {
    let isa = registry.isa_selected();
    let mut v = vec![ComputeUnit::CpuFma(isa)];
    for unit in [ComputeUnit::CpuBf16Dot, ComputeUnit::CpuAmxBf16] {
        if registry
            .kernels()
            .iter()
            .any(|k| registry.is_selected(k.as_ref()) && k.identity().unit == unit)
        {
            v.push(unit);
        }
    }
    v
}

pub(crate) fn cmd_run(args: RunArgs) -> Result<u8> {
    let started = Instant::now();
    let argv: Vec<String> = std::env::args().collect();
    let rp = validate_run(&args)?;
    // The ndarray peer runs on matrixmultiply's own thread pool, sized once from
    // MATMUL_NUM_THREADS at its first call: give it the run's thread count unless the user chose
    // one. No thread of this process reads the environment yet (the pools start below, and the
    // Ctrl-C thread only waits on its signal).
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", rp.threads.to_string());
    }
    let pool = {
        let mut b = rayon::ThreadPoolBuilder::new().num_threads(rp.threads);
        if args.pin {
            let cores = core_affinity::get_core_ids().unwrap_or_default();
            if cores.is_empty() {
                bail!(usage("--pin: the CPU list could not be read"));
            }
            b = b.start_handler(move |i| {
                core_affinity::set_for_current(cores[i % cores.len()]);
            });
        }
        b.build().context("creating the worker thread pool")?
    };
    let plan = Plan::new(&rp.suite, &rp.registry, &rp.filters);
    print_plan(&plan, &rp);
    if args.plan {
        println!("{:>4}  {:<36} {:<48} shape", "#", "case", "kernel");
        for (i, r) in plan.rows.iter().enumerate() {
            println!(
                "{:>4}  {:<36} {:<48} {}",
                i + 1,
                super::terminal_safe(&r.case.name),
                r.kernel.identity().id(),
                r.case.problem
            );
        }
        return Ok(EXIT_OK);
    }

    if plan.rows.iter().any(|r| r.backend == Backend::Cpu) {
        if let Some(note) = env::cpu::read_halt_poll_note(rp.threads) {
            eprintln!("note: {note}");
        }
    }
    let steal = StealMeter::start();
    let mut environment = env::collect(&CollectOptions {
        threads_used: rp.threads,
        pinned: args.pin,
        isa_selected: rp.registry.isa_selected().name().to_string(),
        identity: env::IdentityFlags {
            instance: args.instance.clone(),
            provider: args.provider.clone(),
            region: args.region.clone(),
            pricing_model: args.pricing_model.map(|m| m.name().to_string()),
            price: args.price,
        },
    })
    .map_err(|e| usage(e.to_string()))?;
    // GPU rows: open the selected adapter now (untimed), label their rows with it, fingerprint
    // every adapter. Runs without GPU rows never load a GPU driver.
    let has_gpu_rows = plan.rows.iter().any(|r| r.backend == Backend::Gpu);
    let gpu_device = if has_gpu_rows {
        if let Some(w) = env::gpu::invisible_gpu_warning() {
            eprintln!("{w}");
        }
        let d = match super::gpu::row_device() {
            Ok(d) => d,
            // An explicit --gpu that matches nothing is the user's input: exit 2.
            Err(e) if args.gpu.is_some() => bail!(usage(format!("--gpu: {e}"))),
            Err(e) => {
                let n = plan
                    .rows
                    .iter()
                    .filter(|r| r.backend == Backend::Gpu)
                    .count();
                eprintln!("GPU rows ({n}) will be unsupported: {e}");
                Device::named("GPU (unavailable)")
            }
        };
        environment.gpus = env::gpu::fingerprint();
        Some(d)
    } else {
        None
    };
    let device_name = format!(
        "{} ({} threads)",
        environment
            .cpu
            .model
            .clone()
            .unwrap_or_else(|| "unknown CPU".into()),
        rp.threads
    );
    let mut run = RunFile::new(
        env::harness_info(),
        environment.clone(),
        SuiteRef {
            name: rp.suite.name.clone(),
            source: Some(rp.suite.source.clone()),
        },
        RunConfig {
            seed: rp.runner.seed,
            case_budget_s: rp.runner.case_budget_s,
            max_row_s: Some(rp.runner.cap_s()),
            run_budget_s: rp.runner.run_budget_s,
            argv,
            options: Some(run_options(&args)),
            tune_cache: tune_cache_ref(),
        },
    );
    let out = rp.out.clone().unwrap_or_else(|| run.default_path());
    check_out_path(&out, args.force)?;

    // An in-process peer library whose threads poll for work after they start (OpenBLAS's
    // thread server starts them when the library loads, as the plan is made) would take a core
    // from the probes and the first rows: wait out that polling once, as after each of its rows
    // (its `settle`). On the Intel Xeon 6/207 VM (2 threads, `--probes off`) the first row of a
    // run with OpenBLAS's rows, 256³ f32 `packed.avx512f`, read 106–109 GFLOP/s against 183–190
    // without them, OpenBLAS's `blas_thread_server` 57% of the run's samples (`perf`), polling
    // from the library's load into the row (`results/idle-vcpu/README.md`).
    if let Some(wait) = plan
        .rows
        .iter()
        .filter_map(|r| r.kernel.peer()?.settle)
        .max()
    {
        std::thread::sleep(wait);
    }

    // Measured ceilings first (the machine's own roofs), then the rows.
    let after_units = selected_units(&rp.registry);
    let (ceilings, after_s) =
        pool.install(|| measure_ceilings(args.probes, rp.threads, &after_units));
    run.measured_ceilings = ceilings;
    if gpu_device.as_ref().is_some_and(|d| d.gpu_index.is_some()) && args.probes == ProbeMode::Full
    {
        eprintln!("measuring GPU ceilings (FMA, copy, cooperative matrices where present)...");
        run.measured_ceilings.gpu.extend(super::gpu::ceilings());
    }
    *PARTIAL.lock().unwrap_or_else(|e| e.into_inner()) = Some((run.clone(), out.clone()));

    let estimate = Eta::new(
        row_works(&plan, true),
        &run.measured_ceilings,
        budgets(&rp.runner),
        if args.probes == ProbeMode::Full {
            after_s
        } else {
            0.0
        },
    );
    let runnable = plan.rows.len()
        - row_works(&plan, true)
            .iter()
            .filter(|w| w.supported == Some(false))
            .count();
    eprintln!(
        "{} of {} rows can run here; estimate: {} more (from the measured ceilings; refined as \
         rows run){}",
        runnable,
        plan.rows.len(),
        fmt_secs(estimate.remaining_s()),
        if args.verbose {
            ""
        } else {
            "; rows that cannot run are grouped at the end (--verbose lists each)"
        }
    );

    let rows_started = Instant::now();
    let deadline = rp
        .runner
        .run_budget_s
        .map(|s| rows_started + Duration::from_secs_f64(s));
    let device = Device::named(device_name);
    let mut progress = Progress::new(plan.rows.len(), rp.runner.rounds, estimate, started);
    let mut inputs = Inputs::default();
    let mut interrupted = INTERRUPTS.load(Ordering::SeqCst) > 0;
    // The rows of one case run together: in one go, or with `--rounds N` in N turns, the order
    // reversed every other turn, and each row made of its turns once the case is done.
    let rounds = rp.runner.rounds.max(1);
    let mut start = 0;
    while start < plan.rows.len() && !interrupted {
        let case = plan.rows[start].case_index;
        let end = start
            + plan.rows[start..]
                .iter()
                .take_while(|r| r.case_index == case)
                .count();
        let group = &plan.rows[start..end];
        let mut turns: Vec<Vec<Row>> = vec![Vec::new(); group.len()];
        'turns: for turn in 0..rounds {
            let order = runner::turn_order(group.len(), turn);
            for (pos, &j) in order.iter().enumerate() {
                // In the last turn, the input sets of a dtype go once no row left needs them.
                if turn + 1 == rounds {
                    inputs.release_unless(case, |dtype| {
                        order[pos..]
                            .iter()
                            .any(|&k| group[k].precision.input == dtype)
                    });
                }
                // A row whose last turn was not timed (unsupported, incorrect, ...) is done.
                if turns[j].last().is_some_and(|r| !runner::turn_goes_on(r)) {
                    continue;
                }
                let (i, planned) = (start + j, &group[j]);
                if INTERRUPTS.load(Ordering::SeqCst) > 0 {
                    interrupted = true;
                    break 'turns;
                }
                progress.bar.set_message(format!(
                    "{} {}{}",
                    planned.case.name,
                    planned.kernel.identity().id(),
                    if rounds > 1 {
                        format!(" (turn {} of {rounds})", turn + 1)
                    } else {
                        String::new()
                    }
                ));
                let row_device = match (&gpu_device, planned.backend) {
                    (Some(g), Backend::Gpu) => g,
                    _ => &device,
                };
                progress.eta().start(i);
                let shared = Arc::clone(&progress.eta);
                let outcome = pool.install(|| {
                    runner::run_row(
                        planned,
                        &mut inputs,
                        row_device,
                        &rp.runner,
                        deadline,
                        &INTERRUPTS,
                        &mut |t| {
                            if let Ok(mut e) = shared.lock() {
                                e.first_run(i, t);
                            }
                        },
                    )
                });
                let (bytes, seconds) = inputs.take_generated();
                progress.eta().generated(i, bytes, seconds);
                turns[j].push(outcome.row);
                // In one go (no --rounds), each row is shown and kept as soon as it ends.
                if rounds == 1 {
                    let row = runner::merge_turns(std::mem::take(&mut turns[j]), &rp.runner);
                    finish_row(&mut run, &mut progress, i, row, args.verbose, 0);
                } else {
                    if runner::turn_goes_on(turns[j].last().expect("just pushed")) {
                        progress.eta().end_turn(i);
                    } else {
                        progress.eta().no_more_turns(i);
                    }
                    progress.turn_done();
                    // What a second Ctrl-C writes: the rows so far, this case's made of the
                    // turns they have.
                    set_partial(
                        run.results
                            .iter()
                            .cloned()
                            .chain(
                                turns
                                    .iter()
                                    .filter(|t| !t.is_empty())
                                    .map(|t| runner::merge_turns(t.clone(), &rp.runner)),
                            )
                            .collect(),
                    );
                }
                if outcome.interrupted || INTERRUPTS.load(Ordering::SeqCst) > 0 {
                    interrupted = true;
                    break 'turns;
                }
            }
        }
        // With --rounds, the case's rows once all its turns are done, in plan order (after an
        // interrupt, those that have a turn; in one go every row was kept as it ended).
        for (j, row_turns) in turns.into_iter().enumerate() {
            if !row_turns.is_empty() {
                // After an interrupt the turns not taken are not progress.
                let shown = if interrupted {
                    u64::from(rounds)
                } else {
                    row_turns.len() as u64
                };
                let row = runner::merge_turns(row_turns, &rp.runner);
                finish_row(&mut run, &mut progress, start + j, row, args.verbose, shown);
            }
        }
        start = end;
    }
    progress.bar.finish_and_clear();
    // FMA (selected ISA's units) and bandwidth again after the rows, so the pairs bracket them
    // (not after an interrupt).
    if args.probes == ProbeMode::Full && !interrupted && !run.results.is_empty() {
        eprintln!("measuring FMA and bandwidth again after the rows...");
        let opts = ProbeOptions {
            threads: rp.threads,
            quick: false,
        };
        pool.install(|| {
            // Bandwidth first, for the reason the probes before the rows end with AMX.
            let bw = probe::bandwidth(&opts);
            run.measured_ceilings.cpu_read_gbs_after = Some(bw.read_gbs);
            run.measured_ceilings.cpu_triad_gbs_after = Some(bw.triad_gbs);
            for &unit in &after_units {
                if let (Some(p), Some(key)) =
                    (probe::unit_throughput(unit, &opts), unit.cpu_probe_key())
                {
                    run.measured_ceilings
                        .cpu_fma_gflops_after
                        .insert(key.to_string(), p.gflops);
                }
            }
        });
    }
    environment.finish(&steal);
    run.environment = environment;
    run.config.tune_cache = tune_cache_ref();
    run.complete = !interrupted;
    // The final write honours --force: a file that appeared at --out during the run is kept
    // (never overwritten unforced), and the run goes beside it under its own id instead.
    let out = match run.write(&out, args.force) {
        Err(crate::runfile::RunFileError::Exists { .. }) => {
            let beside = out.with_extension(format!("{}.json", &run.run_id[..8]));
            eprintln!(
                "warning: {} appeared during the run and is kept; writing this run to {}",
                out.display(),
                beside.display()
            );
            run.write(&beside, false)
                .with_context(|| format!("writing {}", beside.display()))?;
            beside
        }
        other => {
            other.with_context(|| format!("writing {}", out.display()))?;
            out
        }
    };
    *PARTIAL.lock().unwrap_or_else(|e| e.into_inner()) = None;

    print!("{}", format_summary(&run));
    println!(
        "run file: {} ({} in all)",
        out.display(),
        fmt_secs(started.elapsed().as_secs_f64())
    );
    if interrupted {
        eprintln!("interrupted: partial run written (complete: false)");
        return Ok(EXIT_INTERRUPTED);
    }
    let failed = run
        .results
        .iter()
        .any(|r| matches!(r.status, Status::Incorrect | Status::Error));
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}
