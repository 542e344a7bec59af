//! The `perfledger` command line: raw arguments are validated into a plan before any work; errors
//! print their whole chain; exit codes follow DESIGN.md (0 ok, 1 failed verification or error,
//! 2 bad usage or input, 130 interrupted).

use crate::env::{self, CollectOptions, StealMeter};
use crate::runfile::{
    Device, MeasuredCeilings, Row, RowKind, RunConfig, RunFile, Status, SuiteRef,
};
use crate::runner::{self, Inputs, Interrupt, RunnerOptions};
use crate::workload::{self, Filters, Plan, Suite};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use perfledger_kernels::cpu::isa::Isa;
use perfledger_kernels::cpu::matmul::Blocking;
use perfledger_kernels::probe::{self, ProbeOptions};
use perfledger_kernels::registry::Backend;
use perfledger_kernels::{DType, Problem, Registry, RegistryOptions, Support};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Interrupts received (Ctrl-C); the runner stops at the next iteration when it is non-zero.
pub static INTERRUPTS: Interrupt = AtomicUsize::new(0);

/// The run in progress, for the second Ctrl-C (write the partial file, exit at once).
static PARTIAL: Mutex<Option<(RunFile, PathBuf)>> = Mutex::new(None);

/// Exit codes (DESIGN.md).
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error that is the user's input (exit 2), as opposed to a failure while working (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Install the Ctrl-C handler (first thing in `main`): the first interrupt asks the runner to stop
/// at the next iteration; the second writes the partial run file and exits with 130.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let n = INTERRUPTS.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            eprintln!("\ninterrupted: stopping at the next iteration (Ctrl-C again to stop now)");
            return;
        }
        if let Ok(guard) = PARTIAL.lock() {
            if let Some((run, path)) = guard.as_ref() {
                let mut run = run.clone();
                run.complete = false;
                match run.write(path, true) {
                    Ok(()) => eprintln!("\npartial run written to {}", path.display()),
                    Err(e) => eprintln!("\ncould not write the partial run: {e}"),
                }
            }
        }
        std::process::exit(EXIT_INTERRUPTED as i32);
    });
}

#[derive(Parser, Debug)]
#[command(
    name = "perfledger",
    version,
    about = "Verified matmul and attention benchmarks, normalized against accelerator specs and cloud prices"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a suite: verify and time every (case × kernel × dtype) row, write a run file.
    Run(Box<RunArgs>),
    /// Print this machine's fingerprint (JSON).
    Env(EnvArgs),
    /// List every kernel of this build and whether it runs here (and why not).
    List(ListArgs),
    /// Add external rows (JSON lines from the reference scripts) to a run file.
    Import(ImportArgs),
    /// Normalize run files against specs and prices: rankings, projections, perf per dollar.
    Report(ReportArgs),
    /// Print the spec and price database with sources (`list`, `show ID`).
    Specs(SpecsArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProbeMode {
    /// Full probes (a few seconds): FMA per ISA, clock, read and triad bandwidth.
    Full,
    /// No probes: `measured_ceilings` stays empty and no row shows a % of ceiling.
    Off,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Embedded suite (quick, standard, llm, sweep) or a suite file.
    #[arg(long, default_value = "standard")]
    pub suite: String,
    /// Backends to run (comma-separated: cpu, gpu).
    #[arg(long, value_delimiter = ',')]
    pub backend: Option<Vec<String>>,
    /// Input dtypes to run (comma-separated: f32, f16, bf16).
    #[arg(long, value_delimiter = ',')]
    pub dtype: Option<Vec<String>>,
    /// Kernel glob(s), matched against the id, the family or the short name (`packed`).
    #[arg(long, value_delimiter = ',')]
    pub kernel: Option<Vec<String>>,
    /// Force the CPU ISA path (avx512f, avx2fma, portable); default: the best detected.
    #[arg(long)]
    pub isa: Option<String>,
    /// Override the packed matmul's cache blocking, e.g. `mc=96,kc=1024,nc=2048`.
    #[arg(long)]
    pub blocking: Option<String>,
    /// Worker threads (default: all online CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Pin worker threads to CPUs 0..threads.
    #[arg(long)]
    pub pin: bool,
    /// Time budget per row (case × kernel × dtype), seconds (default: the suite's, else 2).
    #[arg(long)]
    pub case_budget: Option<f64>,
    /// Time budget of the whole run, seconds (default: the suite's).
    #[arg(long)]
    pub run_budget: Option<f64>,
    /// Relative 95% CI half-width of the median at which sampling stops.
    #[arg(long, default_value_t = 0.02)]
    pub ci_target: f64,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (default: results/runs/<UTC>-<host>-<id8>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing --out.
    #[arg(long)]
    pub force: bool,
    /// Print the plan and exit.
    #[arg(long)]
    pub plan: bool,
    /// Cloud instance type (recorded; overrides detection).
    #[arg(long)]
    pub instance: Option<String>,
    /// Price of the instance in USD per hour (recorded for perf-per-dollar reports).
    #[arg(long)]
    pub price: Option<f64>,
    /// Allow software GPU adapters (llvmpipe/lavapipe); their rows are labelled software.
    #[arg(long)]
    pub allow_software_gpu: bool,
    /// GPU adapter for GPU rows: its index (as `perfledger env` lists them) or part of its name.
    #[arg(long, value_name = "INDEX|NAME")]
    pub gpu: Option<String>,
    /// Machine probes for measured ceilings.
    #[arg(long, value_enum, default_value_t = ProbeMode::Full)]
    pub probes: ProbeMode,
}

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    /// Also run the machine probes (FMA per ISA, bandwidth) and print them.
    #[arg(long)]
    pub probes: bool,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Force the CPU ISA path when judging what runs here.
    #[arg(long)]
    pub isa: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// JSON-lines file of external rows (kind peer|imported).
    pub file: PathBuf,
    /// Run file to add the rows to (rewritten atomically).
    #[arg(long)]
    pub into: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Run files (several machines: one ranking per workload).
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::report::cmd::ReportFormat::Table)]
    pub format: crate::report::cmd::ReportFormat,
    /// Write to FILE instead of stdout (atomically; an existing file needs --force).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing --out.
    #[arg(long)]
    pub force: bool,
    /// Projection targets, CHIP[@OFFER] (id or alias): `a,b` replaces the defaults, `+a` adds.
    #[arg(long, value_delimiter = ',', value_name = "CHIP[@OFFER],...")]
    pub targets: Option<Vec<String>>,
    /// Spec file(s) (perfledger.specs/1) adding or overriding entries.
    #[arg(long, value_name = "FILE")]
    pub specs: Vec<PathBuf>,
    /// Price file(s) (perfledger.prices/1): negotiated rates, marketplace quotes.
    #[arg(long, value_name = "FILE")]
    pub prices: Vec<PathBuf>,
    /// The report's date (YYYY-MM-DD, default today): price ages count from it.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Realistic projections at this share of the roofline ceiling, in (0, 1].
    #[arg(long)]
    pub efficiency: Option<f64>,
    /// Prices older than this many days (before --as-of) are flagged.
    #[arg(long, default_value_t = crate::specs::DEFAULT_MAX_PRICE_AGE_DAYS)]
    pub max_price_age_days: i64,
}

#[derive(Subcommand, Debug, Clone)]
pub enum SpecsAction {
    /// Every accelerator, CPU, offer and alias, with sources and dates (the default).
    List,
    /// One entry (id or alias) in full, with its offers.
    Show {
        /// Accelerator, CPU or offer id, or an alias (`trn3`, `h100-sxm`).
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct SpecsArgs {
    #[command(subcommand)]
    pub action: Option<SpecsAction>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = crate::report::cmd::SpecsFormat::Table)]
    pub format: crate::report::cmd::SpecsFormat,
    /// Spec file(s) adding or overriding entries.
    #[arg(long, global = true, value_name = "FILE")]
    pub specs: Vec<PathBuf>,
    /// Price file(s) adding or overriding offers.
    #[arg(long, global = true, value_name = "FILE")]
    pub prices: Vec<PathBuf>,
    /// The date ages count from (YYYY-MM-DD, default today).
    #[arg(long, global = true, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Prices older than this many days are flagged.
    #[arg(long, global = true, default_value_t = crate::specs::DEFAULT_MAX_PRICE_AGE_DAYS)]
    pub max_price_age_days: i64,
}

/// Parse arguments and run; returns the process exit code. Errors print their whole chain.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = if e.downcast_ref::<UsageError>().is_some()
                || e.downcast_ref::<workload::SuiteError>().is_some()
                || e.downcast_ref::<crate::runfile::RunFileError>().is_some()
            {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            };
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("perfledger: error: {}", chain.join(": "));
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => cmd_run(*args),
        Command::Env(args) => cmd_env(args),
        Command::List(args) => cmd_list(args),
        Command::Import(args) => cmd_import(args),
        Command::Report(args) => crate::report::cmd::report(args),
        Command::Specs(args) => crate::report::cmd::specs(args),
    }
}

fn parse_isa(isa: Option<&str>) -> Result<Option<Isa>> {
    let Some(s) = isa else { return Ok(None) };
    let isa: Isa = s
        .parse()
        .map_err(|e: perfledger_kernels::cpu::isa::ParseIsaError| usage(format!("--isa: {e}")))?;
    if !isa.available() {
        bail!(usage(format!(
            "--isa {isa}: this CPU lacks {isa} (detected: {})",
            perfledger_kernels::cpu::isa::detected().names.join(", ")
        )));
    }
    Ok(Some(isa))
}

/// Validated options of `run`.
struct RunPlan {
    suite: Suite,
    registry: Registry,
    filters: Filters,
    runner: RunnerOptions,
    threads: usize,
    out: Option<PathBuf>,
}

fn validate_run(args: &RunArgs) -> Result<RunPlan> {
    let isa = parse_isa(args.isa.as_deref())?;
    let blocking = args
        .blocking
        .as_deref()
        .map(|b| {
            b.parse::<Blocking>()
                .map_err(|e| usage(format!("--blocking: {e}")))
        })
        .transpose()?;
    let suite = Suite::load(&args.suite)?;
    // GPU options only (no driver is loaded until a GPU row asks for the device).
    env::gpu::configure(args.allow_software_gpu, args.gpu.as_deref()).map_err(usage)?;
    let dtypes = args
        .dtype
        .as_ref()
        .map(|v| {
            v.iter()
                .map(|d| {
                    d.parse::<DType>()
                        .map_err(|e| usage(format!("--dtype: {e}")))
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let backends = args
        .backend
        .as_ref()
        .map(|v| {
            v.iter()
                .map(|b| workload::parse_backend(b).map_err(|e| usage(format!("--backend: {e}"))))
                .collect::<Result<Vec<Backend>>>()
        })
        .transpose()?;
    let positive = |name: &str, v: Option<f64>| -> Result<Option<f64>> {
        match v {
            Some(x) if !(x.is_finite() && x > 0.0) => {
                Err(usage(format!("{name}: {x} is not a positive number")))
            }
            other => Ok(other),
        }
    };
    let case_budget_s = positive("--case-budget", args.case_budget)?
        .or(suite.case_budget_s)
        .unwrap_or(2.0);
    let run_budget_s = positive("--run-budget", args.run_budget)?.or(suite.run_budget_s);
    positive("--price", args.price)?;
    if !(args.ci_target > 0.0 && args.ci_target < 1.0) {
        bail!(usage(format!(
            "--ci-target: {} is not in (0, 1)",
            args.ci_target
        )));
    }
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = match args.threads {
        Some(0) => bail!(usage("--threads: 0 is not a thread count")),
        Some(t) => t,
        None => online,
    };
    if let Some(out) = &args.out {
        check_out_path(out, args.force)?;
    }
    let registry = Registry::new(&RegistryOptions { isa, blocking });
    let filters = Filters {
        dtypes,
        backends,
        kernels: args.kernel.clone(),
    };
    let runner = RunnerOptions {
        case_budget_s,
        run_budget_s,
        seed: args.seed,
        ci_target: args.ci_target,
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

fn print_plan(plan: &Plan<'_>, suite: &Suite, opts: &RunnerOptions, threads: usize, isa: Isa) {
    let rows = plan.rows.len();
    let timing_s = rows as f64 * opts.case_budget_s;
    println!(
        "plan: suite {} ({}), {} cases, {} rows (case × kernel × dtype), {} threads, ISA {}",
        suite.name,
        suite.source,
        suite.cases.len(),
        rows,
        threads,
        isa
    );
    let eta = match opts.run_budget_s {
        Some(r) if r < timing_s => format!("at most {} (run budget)", fmt_secs(r)),
        _ => format!(
            "at most {} of timing (budget {} s per row) plus preparation and verification",
            fmt_secs(timing_s),
            opts.case_budget_s
        ),
    };
    println!("ETA: {eta}");
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

fn fmt_secs(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

fn cmd_run(args: RunArgs) -> Result<u8> {
    let argv: Vec<String> = std::env::args().collect();
    let rp = validate_run(&args)?;
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
    print_plan(
        &plan,
        &rp.suite,
        &rp.runner,
        rp.threads,
        rp.registry.isa_selected(),
    );
    if args.plan {
        println!("{:>4}  {:<36} {:<48} shape", "#", "case", "kernel");
        for (i, r) in plan.rows.iter().enumerate() {
            println!(
                "{:>4}  {:<36} {:<48} {}",
                i + 1,
                r.case.name,
                r.kernel.identity().id(),
                r.case.problem
            );
        }
        return Ok(EXIT_OK);
    }

    let steal = StealMeter::start();
    let mut environment = env::collect(&CollectOptions {
        threads_used: rp.threads,
        pinned: args.pin,
        isa_selected: rp.registry.isa_selected().name().to_string(),
        instance: args.instance.clone(),
        price: args.price,
    });
    // GPU rows: open the selected adapter now (untimed), label their rows with it, fingerprint
    // every adapter. Runs without GPU rows never load a GPU driver.
    let has_gpu_rows = plan.rows.iter().any(|r| r.backend == Backend::Gpu);
    let gpu_device = if has_gpu_rows {
        if let Some(w) = env::gpu::invisible_gpu_warning() {
            eprintln!("{w}");
        }
        let d = match env::gpu::row_device() {
            Ok(d) => d,
            // An explicit --gpu that matches nothing is the user's input: exit 2.
            Err(e) if args.gpu.is_some() => bail!(usage(format!("--gpu: {e}"))),
            Err(e) => {
                eprintln!("GPU rows will be unsupported: {e}");
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
            run_budget_s: rp.runner.run_budget_s,
            argv,
        },
    );
    let out = rp.out.clone().unwrap_or_else(|| run.default_path());
    check_out_path(&out, args.force)?;

    // Measured ceilings first (the machine's own roofs), then the rows.
    run.measured_ceilings = pool.install(|| measure_ceilings(args.probes, rp.threads));
    if gpu_device.as_ref().is_some_and(|d| d.gpu_index.is_some()) && args.probes == ProbeMode::Full
    {
        eprintln!("measuring GPU ceilings (FMA, copy, cooperative matrices where present)...");
        run.measured_ceilings.gpu.extend(env::gpu::ceilings());
    }
    *PARTIAL.lock().unwrap() = Some((run.clone(), out.clone()));

    let started = Instant::now();
    let deadline = rp
        .runner
        .run_budget_s
        .map(|s| started + Duration::from_secs_f64(s));
    let device = Device::named(device_name);
    let pb = progress_bar(plan.rows.len() as u64);
    let mut inputs = Inputs::default();
    let mut interrupted = INTERRUPTS.load(Ordering::SeqCst) > 0;
    for planned in &plan.rows {
        if interrupted {
            break;
        }
        pb.set_message(format!(
            "{} {}",
            planned.case.name,
            planned.kernel.identity().id()
        ));
        let row_device = match (&gpu_device, planned.backend) {
            (Some(g), Backend::Gpu) => g,
            _ => &device,
        };
        let outcome = pool.install(|| {
            runner::run_row(
                planned,
                &mut inputs,
                row_device,
                &rp.runner,
                deadline,
                &INTERRUPTS,
            )
        });
        interrupted = outcome.interrupted || INTERRUPTS.load(Ordering::SeqCst) > 0;
        let line = row_line(&outcome.row);
        if pb.is_hidden() {
            eprintln!("{line}");
        } else {
            pb.println(line);
        }
        run.results.push(outcome.row);
        if let Ok(mut g) = PARTIAL.lock() {
            if let Some((r, _)) = g.as_mut() {
                r.results = run.results.clone();
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    // FMA (selected ISA) and bandwidth again after the rows, so the pairs bracket them (not
    // after an interrupt).
    if args.probes == ProbeMode::Full && !interrupted && !run.results.is_empty() {
        eprintln!("measuring FMA and bandwidth again after the rows...");
        let opts = ProbeOptions {
            threads: rp.threads,
            quick: false,
        };
        let isa = rp.registry.isa_selected();
        let (fma, bw) =
            pool.install(|| (probe::fma_throughput(isa, &opts), probe::bandwidth(&opts)));
        if let Some(f) = fma {
            run.measured_ceilings
                .cpu_fma_gflops_after
                .insert(isa.name().to_string(), f.gflops);
        }
        run.measured_ceilings.cpu_read_gbs_after = Some(bw.read_gbs);
        run.measured_ceilings.cpu_triad_gbs_after = Some(bw.triad_gbs);
    }
    environment.finish(&steal);
    run.environment = environment;
    run.complete = !interrupted;
    run.write(&out, true)
        .with_context(|| format!("writing {}", out.display()))?;
    *PARTIAL.lock().unwrap() = None;

    print!("{}", format_summary(&run));
    println!("run file: {}", out.display());
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

fn progress_bar(len: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} rows, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb
}

fn measure_ceilings(mode: ProbeMode, threads: usize) -> MeasuredCeilings {
    let opts = match mode {
        ProbeMode::Off => return MeasuredCeilings::default(),
        ProbeMode::Full => ProbeOptions {
            threads,
            quick: false,
        },
    };
    eprintln!("measuring ceilings ({mode:?} probes: FMA per ISA, read and triad bandwidth)...");
    let c = probe::cpu_ceilings(&opts);
    MeasuredCeilings {
        cpu_fma_gflops: c
            .fma
            .iter()
            .map(|f| (f.isa.name().to_string(), f.gflops))
            .collect(),
        cpu_read_gbs: Some(c.bandwidth.read_gbs),
        cpu_triad_gbs: Some(c.bandwidth.triad_gbs),
        gpu: Vec::new(),
        ..Default::default()
    }
}

/// The attainable rate on this machine for a row (roofline on the measured ceilings), and
/// whether the row is compute- or memory-bound there.
pub fn attainable(row: &Row, ceilings: &MeasuredCeilings) -> Option<(f64, &'static str)> {
    let flops = row.flops?.useful as f64;
    let bytes = row.min_bytes? as f64;
    if row.backend == Some(Backend::Gpu) {
        // The row's own GPU's ceilings: cooperative-matrix rows against the coop probe, the
        // others against the f32 FMA probe; no measured ceiling → n/a.
        let g = ceilings
            .gpu
            .iter()
            .find(|g| Some(g.index) == row.device.gpu_index)?;
        let coop = row
            .kernel
            .as_ref()
            .is_some_and(|k| k.family.ends_with(".coop"));
        let peak = if coop { g.coop_gflops? } else { g.fma_gflops? };
        let mem = flops / bytes * g.copy_gbs?;
        return Some(if mem < peak {
            (mem, "memory")
        } else {
            (peak, "compute")
        });
    }
    let variant = row
        .kernel
        .as_ref()
        .map(|k| k.variant.as_str())
        .unwrap_or("");
    // The ceiling of the kernel's own ISA path; a scalar baseline is held to the machine's best.
    // A path without a probe of its own (e.g. avx512bf16's vdpbf16ps) has no ceiling: n/a.
    let peak = match ceilings.fma_ceiling(variant) {
        Some(p) => p,
        None if variant == "scalar" => {
            ceilings.cpu_fma_gflops.values().copied().reduce(f64::max)?
        }
        None => return None,
    };
    let bw = ceilings.read_ceiling_gbs()?;
    let mem = flops / bytes * bw;
    Some(if mem < peak {
        (mem, "memory")
    } else {
        (peak, "compute")
    })
}

fn row_line(row: &Row) -> String {
    let id = row.id.clone().unwrap_or_default();
    match (&row.gflops, row.status) {
        (Some(g), Status::Ok) => format!(
            "  ok  {:<46} {:<28} {:>8.1} GFLOP/s [{:.1}, {:.1}]",
            id,
            shape_str(row),
            g.median,
            g.ci95[0],
            g.ci95[1]
        ),
        _ => format!(
            "  {:<3} {:<46} {:<28} {}{}",
            match row.status {
                Status::Incorrect => "BAD",
                Status::Error => "ERR",
                _ => "--",
            },
            id,
            shape_str(row),
            row.status,
            row.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
    }
}

fn shape_str(row: &Row) -> String {
    serde_json::to_value(row.shape)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            let get = |k: &str| o.get(k).map(|v| v.to_string()).unwrap_or_default();
            if o.contains_key("m") {
                format!(
                    "{}x{}x{}{}",
                    get("m"),
                    get("n"),
                    get("k"),
                    if o.get("trans_b").and_then(|v| v.as_bool()) == Some(true) {
                        " Bt"
                    } else {
                        ""
                    }
                )
            } else {
                format!(
                    "h{}/{} q{} kv{} d{}{}",
                    get("q_heads"),
                    get("kv_heads"),
                    get("q_len"),
                    get("kv_len"),
                    get("head_dim"),
                    if o.get("causal").and_then(|v| v.as_bool()) == Some(true) {
                        " causal"
                    } else {
                        ""
                    }
                )
            }
        })
        .unwrap_or_default()
}

/// The summary table: kernel, shape, precision, GFLOP/s with CI, % of measured ceiling, verdict.
/// `incorrect` rows show no speed.
pub fn format_summary(run: &RunFile) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<46} {:<26} {:>13} {:>19} {:>9} {:<8} verdict",
        "kernel", "shape", "precision", "GFLOP/s [95% CI]", "%ceiling", "bound"
    );
    for row in &run.results {
        let kernel = row
            .id
            .clone()
            .unwrap_or_else(|| format!("{} ({})", row.kind.name(), row.device.name));
        let (speed, pct, bound) = match (&row.gflops, row.status) {
            (Some(g), Status::Ok) => {
                let (pct, bound) = match attainable(row, &run.measured_ceilings) {
                    // Above the measured ceiling means the probe missed this unit's peak (e.g.
                    // tensor cores): no percentage above 100 is ever shown.
                    Some((a, b)) if g.median <= a => (format!("{:.0}%", 100.0 * g.median / a), b),
                    Some((_, b)) => ("n/a".into(), b),
                    None => ("n/a".into(), "n/a"),
                };
                (
                    format!("{:.1} [{:.1},{:.1}]", g.median, g.ci95[0], g.ci95[1]),
                    pct,
                    bound,
                )
            }
            _ => ("-".into(), "-".into(), "-"),
        };
        let verdict = match row.status {
            Status::Ok => row
                .verification
                .as_ref()
                .map(|v| {
                    if v.passed() {
                        "pass".to_string()
                    } else {
                        "unverified".to_string()
                    }
                })
                .unwrap_or_else(|| "unverified".into()),
            s => s.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<46} {:<26} {:>13} {:>19} {:>9} {:<8} {}",
            kernel,
            shape_str(row),
            row.precision.to_string(),
            speed,
            pct,
            bound,
            verdict
        );
    }
    if !run.measured_ceilings.cpu_fma_gflops.is_empty() {
        let fma = run.measured_ceilings.fma_text();
        let _ = writeln!(
            out,
            "measured ceilings: FMA {}; {}; triad {:.1} GB/s",
            fma.join(", "),
            run.measured_ceilings.read_text(),
            run.measured_ceilings.cpu_triad_gbs.unwrap_or(f64::NAN),
        );
        let _ = writeln!(
            out,
            "FLOPs: matmul 2·M·N·K, attention 4·head_dim·unmasked (q,k) pairs; GFLOP/s from the median sample"
        );
    }
    for g in &run.measured_ceilings.gpu {
        let f = |v: Option<f64>, unit: &str| {
            v.map(|x| format!("{x:.1} {unit}"))
                .unwrap_or_else(|| "n/a".into())
        };
        let _ = writeln!(
            out,
            "measured GPU {} ceilings: FMA {} (f32); copy {}; cooperative matrix {}",
            g.index,
            f(g.fma_gflops, "GFLOP/s"),
            f(g.copy_gbs, "GB/s"),
            f(g.coop_gflops, "GFLOP/s")
        );
    }
    out
}

fn cmd_env(args: EnvArgs) -> Result<u8> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut environment = env::collect(&CollectOptions {
        threads_used: threads,
        pinned: false,
        isa_selected: Isa::best().name().into(),
        instance: None,
        price: None,
    });
    environment.gpus = env::gpu::fingerprint();
    if let Some(w) = env::gpu::invisible_gpu_warning() {
        eprintln!("{w}");
    }
    let mut doc = serde_json::json!({
        "harness": env::harness_info(),
        "environment": environment,
    });
    if args.probes {
        let c = probe::cpu_ceilings(&ProbeOptions {
            threads,
            quick: false,
        });
        doc["probes"] = serde_json::to_value(c)?;
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(EXIT_OK)
}

fn cmd_list(args: ListArgs) -> Result<u8> {
    let isa = parse_isa(args.isa.as_deref())?;
    let reg = Registry::new(&RegistryOptions {
        isa,
        blocking: None,
    });
    println!(
        "{:<48} {:<6} {:<10} why not / params",
        "kernel", "backend", "runs here"
    );
    let samples = [
        Problem::Matmul(perfledger_kernels::MatmulProblem::new(64, 64, 64)),
        Problem::Attention(perfledger_kernels::AttentionProblem::new(
            1, 2, 2, 16, 16, 64,
        )),
    ];
    for k in reg.kernels() {
        let id = k.identity();
        let sample = samples
            .iter()
            .find(|p| p.op() == id.op)
            .expect("a sample per op");
        let (runs, why) = match k.supports(sample) {
            Support::No(r) => ("no", r),
            Support::Yes if !reg.is_selected(k.as_ref()) => (
                "no",
                format!(
                    "not the selected ISA ({}; use --isa {})",
                    reg.isa_selected(),
                    id.variant
                ),
            ),
            Support::Yes => (
                "yes",
                serde_json::Value::Object(id.params.clone()).to_string(),
            ),
        };
        println!("{:<48} {:<6} {:<10} {}", id.id(), id.backend, runs, why);
    }
    Ok(EXIT_OK)
}

fn cmd_import(args: ImportArgs) -> Result<u8> {
    let mut run = RunFile::read(&args.into)?;
    let rows = crate::runfile::ExternalRow::read_lines(&args.file)?;
    let mut added = 0;
    for (i, ext) in rows.into_iter().enumerate() {
        let row = ext
            .into_row()
            .map_err(|e| usage(format!("{}: line {}: {e}", args.file.display(), i + 1)))?;
        debug_assert!(matches!(row.kind, RowKind::Peer | RowKind::Imported));
        run.results.push(row);
        added += 1;
    }
    run.write(&args.into, true)?;
    println!(
        "imported {added} rows from {} into {}",
        args.file.display(),
        args.into.display()
    );
    Ok(EXIT_OK)
}
