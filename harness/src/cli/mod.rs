//! The `perfledger` command line: raw arguments are validated into a plan before any work; errors
//! print their whole chain; exit codes follow DESIGN.md (0 ok, 1 failed verification or error,
//! 2 bad usage or input, 130 interrupted).
//!
//! One module per command: [`run`], [`summary`] (the table `run` ends with), [`env`], [`list`],
//! [`import`], [`report`] (`report` and `specs`). This module holds the arguments, the exit codes
//! and the Ctrl-C handler.

pub mod compare;
pub mod env;
pub mod export;
pub mod gpu;
pub mod import;
pub mod list;
pub mod prices;
pub mod report;
pub mod run;
pub mod summary;
pub mod tune;

pub use summary::format_summary;

use crate::runfile::RunFile;
use crate::runner::Interrupt;
use crate::workload;
use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Interrupts received (Ctrl-C); the runner stops at the next iteration when it is non-zero.
pub static INTERRUPTS: Interrupt = AtomicUsize::new(0);

/// The run in progress, for the second Ctrl-C (write the partial file, exit at once).
pub(crate) static PARTIAL: Mutex<Option<(RunFile, PathBuf)>> = Mutex::new(None);

/// Exit codes (DESIGN.md).
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error that is the user's input (exit 2), as opposed to a failure while working (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
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
    /// Compare base and candidate runs for CI: per-row ratios with bootstrap CIs, Holm-corrected
    /// regression tests; exit 1 on a regression or a newly incorrect row.
    Compare(CompareArgs),
    /// Export a run's verified rows for benchmark trackers (Bencher BMF, github-action-benchmark).
    Export(ExportArgs),
    /// Read criterion's output tree (target/criterion) into a run file.
    IngestCriterion(IngestCriterionArgs),
    /// Price files from maintained sources (`import-sky-catalog`).
    Prices(PricesArgs),
    /// Time every legal configuration of the tunable GPU kernels (matmul tiled and coop, attention
    /// flash and decode) on this adapter and keep the fastest verified one per (adapter, driver, kernel,
    /// shape class) in the tune cache.
    Tune(tune::TuneArgs),
}

#[derive(clap::Args, Debug)]
pub struct PricesArgs {
    #[command(subcommand)]
    pub command: PricesCommand,
}

#[derive(Subcommand, Debug)]
pub enum PricesCommand {
    /// Convert a SkyPilot catalog file (vms.csv) into a price file for `report --prices`: one
    /// on-demand and one spot offer per (instance, region), zone prices collapsed into ranges.
    ImportSkyCatalog(ImportSkyCatalogArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportSkyCatalogArgs {
    /// The catalog file (`~/.sky/catalogs/<version>/<cloud>/vms.csv`).
    #[arg(value_name = "VMS.csv")]
    pub csv: PathBuf,
    /// The date the catalog was fetched (YYYY-MM-DD): the catalog carries none.
    #[arg(long, value_name = "DATE")]
    pub as_of: String,
    /// The price file to write (perfledger.prices/1).
    #[arg(long, value_name = "PRICES.json")]
    pub out: PathBuf,
    /// Provider id of the offers (default: the catalog's cloud directory, `…/aws/vms.csv`).
    #[arg(long, value_name = "ID")]
    pub provider: Option<String>,
    /// Overwrite an existing --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Run files (their rows together: e.g. the one-row files of a `scripts/ci-perf.sh` round).
    #[arg(value_name = "RUN.json", required = true)]
    pub runs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: crate::export::ExportFormat,
    /// Write to FILE instead of stdout (atomically; an existing file needs --force).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct IngestCriterionArgs {
    /// criterion's output directory.
    #[arg(value_name = "DIR", default_value = "target/criterion")]
    pub dir: PathBuf,
    /// The run file to write.
    #[arg(long, value_name = "RUN.json")]
    pub out: PathBuf,
    /// Overwrite an existing --out.
    #[arg(long)]
    pub force: bool,
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
    /// Backends to run (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub backend: Option<Vec<BackendArg>>,
    /// Input dtypes to run (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub dtype: Option<Vec<DTypeArg>>,
    /// Kernel glob(s), matched against the id, the family or the short name (`packed`).
    #[arg(long, value_delimiter = ',')]
    pub kernel: Option<Vec<String>>,
    /// Case-name glob(s): run only these cases of the suite (`--plan` lists them).
    #[arg(long, value_delimiter = ',')]
    pub case: Option<Vec<String>>,
    /// Force the CPU ISA path; default: the best detected.
    #[arg(long, value_enum)]
    pub isa: Option<IsaArg>,
    /// Override the packed matmul's cache blocking: any of `mc`, `kc`, `nc`, e.g. `kc=256` or
    /// `mc=96,kc=1024,nc=2048` (a size not given keeps each path's cache-derived value).
    #[arg(long)]
    pub blocking: Option<String>,
    /// Worker threads (default: all online CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Pin worker threads to CPUs 0..threads.
    #[arg(long)]
    pub pin: bool,
    /// What the other workers of the run's pool do between the calls of a CPU row that runs on
    /// the pool (perfledger's kernels, the gemm crate), while it is measured (a woken worker can
    /// start late, on a VM much later).
    #[arg(long, value_enum, default_value = "spin")]
    pub idle_workers: crate::runfile::IdleWorkers,
    /// Measure each case's rows in N turns, the order reversed every other turn (A B C, C B A,
    /// A B C, ...), each turn with 1/N of the row budget and cap; a row's samples are those of
    /// all its turns. On a host whose speed moves from minute to minute, the rows of a case
    /// (perfledger's kernels and the in-process peers) then share its fast and slow spells, so
    /// their ratios (the summary's ratio to the best peer) do not depend on which row met which.
    /// Each turn prepares and verifies the row again.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Time budget per row (case × kernel × dtype), seconds (default: the suite's, else 2): a
    /// target; a row goes on past it until it has 10 samples, up to --max-row-s.
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
    /// Cloud instance type (recorded; overrides `PERFLEDGER_INSTANCE` and DMI detection).
    #[arg(long, value_name = "TYPE")]
    pub instance: Option<String>,
    /// Cloud provider as the price data names it (`aws`, `gcp`, `azure`, `lambda`, ...;
    /// overrides `PERFLEDGER_PROVIDER`, SkyPilot's cloud and DMI).
    #[arg(long, value_name = "ID")]
    pub provider: Option<String>,
    /// Region the instance runs in (`us-east-1`; overrides `PERFLEDGER_REGION` and SkyPilot's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// How the instance is paid for (overrides `PERFLEDGER_PRICING_MODEL`); the report looks the
    /// price up by provider, instance, region and pricing model.
    #[arg(long, value_enum)]
    pub pricing_model: Option<crate::specs::PricingModel>,
    /// Price of the instance in USD per hour (overrides `PERFLEDGER_PRICE`; wins over any offer
    /// in the price data, and is labelled so).
    #[arg(long, value_name = "USD_PER_HOUR")]
    pub price: Option<f64>,
    /// Allow software GPU adapters (llvmpipe/lavapipe); their rows are labelled software.
    #[arg(long)]
    pub allow_software_gpu: bool,
    /// GPU adapter for GPU rows: its index (as `perfledger env` lists them) or part of its name.
    #[arg(long, value_name = "INDEX|NAME")]
    pub gpu: Option<String>,
    /// Tune cache (`perfledger tune`) for the GPU kernels' configurations (default: the user
    /// cache's perfledger/tune.json or $PERFLEDGER_TUNE_CACHE, when it exists); entries for
    /// another driver version are ignored. `none`: per-adapter defaults only.
    #[arg(long, value_name = "FILE")]
    pub tune_cache: Option<PathBuf>,
    /// Machine probes for measured ceilings.
    #[arg(long, value_enum, default_value_t = ProbeMode::Full)]
    pub probes: ProbeMode,
    /// The most one row may take (warm-up and samples, seconds) to reach its minimum of 10
    /// samples when they do not fit its budget (default: 10 × the row budget).
    #[arg(long, value_name = "S")]
    pub max_row_s: Option<f64>,
    /// Also run the kernels broken on purpose (builds with the `test-kernels` feature only; their
    /// rows are `incorrect`, `error` or slower, by design).
    #[arg(long)]
    pub allow_test_kernels: bool,
    /// Print every row as it ends, unsupported ones too (default: unsupported rows are counted
    /// and grouped by reason at the end; every row's detail is in the run file).
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    /// Also run the machine probes (FMA per ISA, bandwidth) and print them.
    #[arg(long)]
    pub probes: bool,
    /// Threads of the probes and of the fingerprint's `threads_used` (default: all online CPUs),
    /// e.g. a sitting's `--threads`, so its probes between rounds match its runs.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `--threads` checked against the CPUs this process may use (default: all of them).
pub(crate) fn thread_count(arg: Option<usize>) -> Result<usize> {
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match arg {
        Some(0) => anyhow::bail!(usage("--threads: 0 is not a thread count")),
        Some(t) if t > online => anyhow::bail!(usage(format!(
            "--threads {t}: {online} CPUs are available to this process (more threads than CPUs \
             would measure the scheduler, not the kernels)"
        ))),
        Some(t) => Ok(t),
        None => Ok(online),
    }
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Force the CPU ISA path when judging what runs here.
    #[arg(long, value_enum)]
    pub isa: Option<IsaArg>,
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
    #[arg(long, value_enum, default_value_t = report::ReportFormat::Table)]
    pub format: report::ReportFormat,
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

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// BASE.json CAND.json (one round each); or use --base and --candidate.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Base run files, one per round.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub base: Vec<PathBuf>,
    /// Candidate run files, one per round.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub candidate: Vec<PathBuf>,
    /// Tolerance: a row is slower only if its ratio exceeds 1 + this and its noise floor.
    #[arg(long, default_value_t = crate::compare::DEFAULT_THRESHOLD)]
    pub threshold: f64,
    /// Compare rows even when the sides' configurations differ (the difference is reported).
    #[arg(long)]
    pub allow_config_diff: bool,
    /// The rounds are paired: the i-th base round of a row ran next to the i-th candidate round
    /// (as `scripts/ci-perf.sh` runs them); the ratio is the median of per-pair ratios.
    #[arg(long)]
    pub paired: bool,
    /// A/A comparison (`compare --format json` of two runs of the same build): its CIs are per-row
    /// noise floors.
    #[arg(long, value_name = "FILE")]
    pub noise: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::compare::CompareFormat::Table)]
    pub format: crate::compare::CompareFormat,
    /// Write to FILE instead of stdout (atomically; an existing file needs --force).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing --out.
    #[arg(long)]
    pub force: bool,
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
    #[arg(long, global = true, value_enum, default_value_t = report::SpecsFormat::Table)]
    pub format: report::SpecsFormat,
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
        // Help and version go out as clap writes them; a usage error as one line (what was
        // wrong, and the values that would do), like every other bad input.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(EXIT_OK);
        }
        Err(e) => {
            let text = e.render().to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            eprintln!("perfledger: {}", parts.join(" "));
            return ExitCode::from(EXIT_USAGE);
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
            eprintln!("perfledger: error: {}", terminal_safe(&chain.join(": ")));
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => run::cmd_run(*args),
        Command::Env(args) => env::cmd_env(args),
        Command::List(args) => list::cmd_list(args),
        Command::Import(args) => import::cmd_import(args),
        Command::Report(args) => report::report(args),
        Command::Specs(args) => report::specs(args),
        Command::Compare(args) => compare::cmd_compare(args),
        Command::Export(args) => export::cmd_export(args),
        Command::IngestCriterion(args) => export::cmd_ingest_criterion(args),
        Command::Prices(args) => prices::cmd_prices(args),
        Command::Tune(args) => tune::cmd_tune(args),
    }
}

/// `--isa`, checked against this CPU.
pub(crate) fn parse_isa(isa: Option<IsaArg>) -> Result<Option<perfledger_kernels::isa::Isa>> {
    let Some(isa) = isa.map(perfledger_kernels::isa::Isa::from) else {
        return Ok(None);
    };
    if !isa.available() {
        anyhow::bail!(usage(format!(
            "--isa {isa}: this CPU lacks {isa} (detected: {})",
            perfledger_kernels::isa::detected().names.join(", ")
        )));
    }
    Ok(Some(isa))
}

/// `--dtype` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DTypeArg {
    F32,
    F16,
    Bf16,
}

impl From<DTypeArg> for perfledger_kernels::DType {
    fn from(d: DTypeArg) -> Self {
        match d {
            DTypeArg::F32 => perfledger_kernels::DType::F32,
            DTypeArg::F16 => perfledger_kernels::DType::F16,
            DTypeArg::Bf16 => perfledger_kernels::DType::BF16,
        }
    }
}

/// `--backend` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Cpu,
    Gpu,
}

impl From<BackendArg> for perfledger_kernels::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Cpu => perfledger_kernels::Backend::Cpu,
            BackendArg::Gpu => perfledger_kernels::Backend::Gpu,
        }
    }
}

/// `--isa` values: the CPU ISA paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IsaArg {
    Avx512f,
    Avx2fma,
    Portable,
}

impl From<IsaArg> for perfledger_kernels::isa::Isa {
    fn from(i: IsaArg) -> Self {
        use perfledger_kernels::isa::Isa;
        match i {
            IsaArg::Avx512f => Isa::Avx512f,
            IsaArg::Avx2fma => Isa::Avx2fma,
            IsaArg::Portable => Isa::Portable,
        }
    }
}

/// Text from files made safe for a terminal: control characters (ESC and the rest of C0 and C1,
/// except newline and tab), bidirectional overrides and isolates, and zero-width characters are
/// written as `\u{..}` escapes, so a string in a run, suite or spec file can neither drive the
/// terminal nor disguise itself.
pub(crate) fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    fn hostile(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    }
    if !s.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hostile(c) {
            o.extend(c.escape_unicode());
        } else {
            o.push(c);
        }
    }
    std::borrow::Cow::Owned(o)
}

#[cfg(test)]
mod terminal_tests {
    use super::terminal_safe;

    #[test]
    fn escapes_bidi_and_zero_width_characters_are_made_visible() {
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(terminal_safe("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(
            terminal_safe("a\u{202e}b\u{200b}c\r"),
            "a\\u{202e}b\\u{200b}c\\u{d}"
        );
        assert_eq!(terminal_safe("\u{9b}2J"), "\\u{9b}2J");
    }
}
