//! The runner: for every planned row, `check → prepare (untimed) → poison → verified run →
//! warm-up (capped) → samples (adaptive) → re-verify the last`, with per-row budgets.
//!
//! Policy (DESIGN.md "Timing and statistics"):
//! - a sample is a batch of `iters_per_sample` iterations lasting at least [`MIN_SAMPLE_S`];
//! - sampling stops when the bootstrap 95% CI half-width of the median is under the target
//!   (`ci_target`), when the row's budget is spent and the row has its [`MIN_SAMPLES`], when the
//!   run budget is spent, or at [`MAX_SAMPLES`]; the reason is recorded;
//! - the budget is a target: a row that has not reached [`MIN_SAMPLES`] goes on past it (as
//!   criterion does) up to its cap (`max_row_s`, default [`DEFAULT_CAP_FACTOR`] × the budget) and
//!   the run budget; only a row stopped by one of those with fewer samples is
//!   `insufficient_samples`. So a slow machine still gets a number for every row;
//! - the row records its budget, cap, the time sampling took and the whole row's time;
//! - memory-bound rows rotate input sets spanning [`ROTATE_FOOTPRINT_L3`] × L3 so samples do not
//!   measure a warm cache;
//! - the last sample's output is poisoned before and verified after: a kernel that fails either
//!   verification is `incorrect` and shows no speed;
//! - the row records the machine's noise while it sampled ([`RowNoise`]: steal time over warm-up
//!   and samples, the run queue read after every sample, outside the timed region);
//! - with `rounds` above 1 (`--rounds`), each call of [`run_row`] is one turn of the row, with
//!   its share of the budget, cap and samples; the caller runs a case's rows turn by turn
//!   ([`turn_order`]) and [`merge_turns`] makes each row of its turns.

use crate::env::cpu::{online_cpus, read_proc_stat, read_run_queue, steal_pct, CpuTimes};
pub use crate::runfile::IdleWorkers;
use crate::runfile::{
    Device, Flops, Provenance, ReadAlongside, Row, RowKind, RowNoise, RowVerification, Shape,
    Status, StopReason, Timing, TimingMethod,
};
use crate::stats::{Bootstrap, Sample, MIN_SAMPLES};
use crate::workload::PlannedRow;
use perfledger_kernels::isa::Isa;
use perfledger_kernels::probe::bandwidth::{self, ReadPattern};
use perfledger_kernels::verify::{self, VerifyOptions};
use perfledger_kernels::{Backend, DType, Prepared, Problem, Support, Tensor};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest sample: iterations are batched until a sample lasts this long.
pub const MIN_SAMPLE_S: f64 = 0.002;
/// Most samples per row.
pub const MAX_SAMPLES: usize = 500;
/// Most warm-up iterations, and the share of the row budget warm-up may use.
pub const MAX_WARMUP_ITERS: u64 = 50;
pub const WARMUP_BUDGET_SHARE: f64 = 0.25;
/// Rows with arithmetic intensity below this (FLOP/byte) count as memory-bound and rotate input
/// sets until the sets span [`ROTATE_FOOTPRINT_L3`] × L3 (CPU) or [`GPU_ROTATE_FOOTPRINT_L2`] ×
/// L2 (GPU), so a set is no longer cached when its turn comes again (with 8 sets at most, a 1 MiB
/// decode case rotated 8 MiB: in L3 on every machine, so it measured L3).
pub const MEMORY_BOUND_INTENSITY: f64 = 32.0;
/// A CPU row's rotation spans 16 × L3, about the read probe's footprint (three arrays of
/// `max(8 × L3, 256 MiB)`). Twice the L3 was not enough: on Zen 4 (family 25 model 17, 32 MiB
/// L3, an exclusive 1 MiB L2 per core) GQA decode h32/8 kv 8192 bf16 (33.5 MB of K + V a set)
/// read faster from small rotations than from large ones measured in turn (`DECTIME_ROTATIONS`,
/// two threads, 40 calls a turn, median of ≈ 105 rounds, in both orders): 2 sets 1.33x and 1.47x
/// the speed of 28 sets (896 MiB), 4 sets 1.06x and 1.16x, 8 sets 1.03x and 1.04x, 16 sets 1.003x
/// and 1.01x. The runner's 2-set rows read above the run's read probe in 12 of 30 runs
/// (`results/decode-zen4-session13/`).
pub const ROTATE_FOOTPRINT_L3: usize = 16;
/// A GPU row's rotation spans 2 × L2 (its sets are device buffers, at most
/// [`MAX_GPU_ROTATE_SETS`]).
pub const GPU_ROTATE_FOOTPRINT_L2: usize = 2;
pub const MAX_ROTATE_SETS: usize = 2048;
/// Most input sets of a GPU row (each a set of device buffers).
pub const MAX_GPU_ROTATE_SETS: usize = 8;
/// The default row cap, as a multiple of the row budget.
pub const DEFAULT_CAP_FACTOR: f64 = 10.0;

/// How the runner samples.
#[derive(Clone, Debug)]
pub struct RunnerOptions {
    /// The row budget (a target: see the module docs).
    pub case_budget_s: f64,
    /// The row cap; `None`: [`DEFAULT_CAP_FACTOR`] × the budget.
    pub max_row_s: Option<f64>,
    pub run_budget_s: Option<f64>,
    pub seed: u64,
    /// Relative CI half-width of the median at which sampling stops (0.02 = 2%).
    pub ci_target: f64,
    pub verify: VerifyOptions,
    /// What the pool's other workers do between a CPU row's calls.
    pub idle_workers: IdleWorkers,
    /// Turns in which each case's rows are measured (`--rounds`; 1: each row in one go). Every
    /// call of [`run_row`] is then one turn: it takes `1/rounds` of the row's budget, cap and
    /// most samples, and `ceil(MIN_SAMPLES / rounds)` samples suffice for it; [`merge_turns`]
    /// makes the row of its turns.
    pub rounds: u32,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            case_budget_s: 2.0,
            max_row_s: None,
            run_budget_s: None,
            seed: 42,
            ci_target: 0.02,
            verify: VerifyOptions::default(),
            idle_workers: IdleWorkers::Spin,
            rounds: 1,
        }
    }
}

impl RunnerOptions {
    /// The row cap in seconds (never below the budget).
    pub fn cap_s(&self) -> f64 {
        self.max_row_s
            .unwrap_or(DEFAULT_CAP_FACTOR * self.case_budget_s)
            .max(self.case_budget_s)
    }

    /// The turns as a divisor (never 0).
    fn turns(&self) -> u32 {
        self.rounds.max(1)
    }

    /// One turn's budget, seconds.
    fn turn_budget_s(&self) -> f64 {
        self.case_budget_s / f64::from(self.turns())
    }

    /// One turn's cap, seconds.
    fn turn_cap_s(&self) -> f64 {
        self.cap_s() / f64::from(self.turns())
    }

    /// The samples that complete one turn (all of [`MIN_SAMPLES`] in one turn).
    fn turn_min_samples(&self) -> usize {
        MIN_SAMPLES.div_ceil(self.turns() as usize)
    }

    /// The most samples of one turn.
    fn turn_max_samples(&self) -> usize {
        (MAX_SAMPLES / self.turns() as usize).max(2)
    }
}

/// The order of a case's rows (`0..rows`) in turn `turn` (from 0) of `--rounds`: as planned in
/// even turns, reversed in odd ones, so no row always runs first or last in its case.
pub fn turn_order(rows: usize, turn: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    if turn % 2 == 1 {
        order.reverse();
    }
    order
}

/// The mark of a turn's own status note (`measure`), which the merged row's replaces.
const TURN_NOTE: &str = "--rounds";

/// Whether a turn leaves the row more to measure: it was timed (`ok`, or samples short of its
/// minimum). After a turn that was not (unsupported, skipped, incorrect, an error, interrupted
/// before any sample) the row takes no more turns.
pub fn turn_goes_on(row: &Row) -> bool {
    matches!(row.status, Status::Ok | Status::InsufficientSamples) && !row.samples_s.is_empty()
}

/// The row of `turns` (one row's turns in order, from [`run_row`] with `opts.rounds` turns; an
/// interrupt may leave fewer):
/// - a turn that was `incorrect` or an `error` is the row (a kernel wrong once is wrong), as that
///   turn recorded it, its message naming the turn;
/// - otherwise every timed turn's samples in order make the row's samples and statistics;
///   `timing` sums warm-up iterations and times over them (`turns` says how many), with the
///   row's whole budget and cap, the wall-clock method if any turn used it, and the stop reason
///   `interrupted` if a turn was, else the last turn's; `noise` the turns' steal time weighted
///   by their sampling time, the median of their run-queue medians, the largest run queue;
///   `read_alongside` every turn's reads (each pattern's figure the median of the turns'); the
///   verification is the last turn's (the last timed iteration); the status `ok`, or
///   `insufficient_samples` below [`MIN_SAMPLES`] in all — also for a single turn, so a row
///   whose later turns an interrupt cut off is judged by the whole row's minimum;
/// - with no timed turn, the first turn (unsupported, skipped).
///
/// With `opts.rounds` 1 the one turn is returned as it is.
pub fn merge_turns(mut turns: Vec<Row>, opts: &RunnerOptions) -> Row {
    let n = turns.len();
    assert!(n >= 1, "a row has at least one turn");
    let planned = opts.turns();
    if planned == 1 && n == 1 {
        return turns.pop().expect("one turn");
    }
    if let Some(k) = turns
        .iter()
        .position(|r| matches!(r.status, Status::Incorrect | Status::Error))
    {
        let mut row = turns.swap_remove(k);
        let msg = format!(
            "turn {} of {planned}: {}",
            k + 1,
            row.message.take().unwrap_or_default()
        );
        row.message = Some(msg);
        return row;
    }
    if !turns.iter().any(turn_goes_on) {
        return turns.swap_remove(0);
    }
    let cut = turns.iter().any(|r| {
        r.timing
            .is_some_and(|t| t.stop_reason == StopReason::Interrupted)
            || (r.status == Status::InsufficientSamples && r.samples_s.is_empty())
    });
    let timed: Vec<Row> = turns.into_iter().filter(turn_goes_on).collect();
    let samples: Vec<f64> = timed
        .iter()
        .flat_map(|r| r.samples_s.iter().copied())
        .collect();
    let timings: Vec<Timing> = timed.iter().filter_map(|r| r.timing).collect();
    let (Some(first), Some(last)) = (timings.first().copied(), timings.last().copied()) else {
        // A timed turn always records its timing; without it the turns cannot be merged.
        let mut row = timed.into_iter().next_back().expect("a timed turn");
        let _ = row.set_status(Status::Error, Some("a timed turn has no timing".into()));
        return row;
    };
    let sum = |f: fn(&Timing) -> Option<f64>| timings.iter().filter_map(f).sum::<f64>();
    let turns_done = timed.len() as u32;
    let timing = Timing {
        method: if timings.iter().any(|t| t.method == TimingMethod::Wall) {
            TimingMethod::Wall
        } else {
            first.method
        },
        warmup_iters: timings.iter().map(|t| t.warmup_iters).sum(),
        iters_per_sample: first.iters_per_sample,
        stop_reason: if cut {
            StopReason::Interrupted
        } else {
            last.stop_reason
        },
        budget_s: Some(opts.case_budget_s),
        max_row_s: Some(opts.cap_s()),
        sampling_s: Some(sum(|t| t.sampling_s)),
        row_s: Some(sum(|t| t.row_s)),
        turns: Some(turns_done),
    };
    let noise = merge_noise(&timed);
    let alongside = merge_alongside(&timed);
    let mut row = timed.into_iter().next_back().expect("a timed turn");
    if let Err(e) = record(&mut row, &samples, timing) {
        row.samples_s.clear();
        row.stats = None;
        let _ = row.set_status(Status::Error, Some(format!("merging {n} turns: {e}")));
        return row;
    }
    row.noise = noise;
    row.read_alongside = alongside.map(|mut a| {
        a.share = read_share(&row, a.median_gbs);
        a
    });
    let turns_note = format!(
        "{turns_done} turn{} of {planned} (--rounds), the case's rows in alternating order{}",
        if turns_done == 1 { "" } else { "s" },
        if cut { "; interrupted" } else { "" }
    );
    let result = if samples.len() < MIN_SAMPLES {
        row.set_status(
            Status::InsufficientSamples,
            Some(format!(
                "{} samples in {turns_note}; {MIN_SAMPLES} are needed",
                samples.len()
            )),
        )
    } else {
        // The last turn's notes, less those of its own samples (its read alongside, its
        // budget), which the whole row's replace.
        let last_notes: Vec<String> = row
            .message
            .take()
            .map(|m| {
                m.split("; ")
                    .filter(|p| {
                        !p.is_empty()
                            && !p.contains("read alongside")
                            && !p.contains("past the")
                            && !p.contains(TURN_NOTE)
                            && !p.contains("are needed")
                    })
                    .map(|p| format!("last turn: {p}"))
                    .collect()
            })
            .unwrap_or_default();
        let read = row.read_alongside.as_ref().map(read_alongside_note);
        let msg = std::iter::once(turns_note)
            .chain(last_notes)
            .chain(read)
            .collect::<Vec<_>>()
            .join("; ");
        row.set_status(Status::Ok, Some(msg))
    };
    if let Err(e) = result {
        let _ = row.set_status(Status::Error, Some(format!("merging {n} turns: {e}")));
    }
    row
}

/// A row's `min_bytes` per median iteration, in 1e9 bytes/s, over the read alongside's
/// `median_gbs` (`ReadAlongside::share`); none without a median.
fn read_share(row: &Row, median_gbs: f64) -> Option<f64> {
    row.stats
        .as_ref()
        .zip(row.min_bytes)
        .filter(|(s, _)| s.median_s > 0.0 && median_gbs > 0.0)
        .map(|(s, bytes)| bytes as f64 / s.median_s / 1e9 / median_gbs)
}

/// The status note of a row's read alongside.
fn read_alongside_note(r: &ReadAlongside) -> String {
    format!(
        "its inputs read alongside at {:.1} GB/s (median of the samples' best pattern){}",
        r.median_gbs,
        r.share
            .map(|x| format!(", the row at {:.0}% of it", 100.0 * x))
            .unwrap_or_default()
    )
}

/// The turns' noise as one row's ([`merge_turns`]).
fn merge_noise(turns: &[Row]) -> Option<RowNoise> {
    let noises: Vec<(RowNoise, f64)> = turns
        .iter()
        .filter_map(|r| {
            let w = r.timing.as_ref().and_then(|t| t.sampling_s).unwrap_or(1.0);
            r.noise.map(|x| (x, w))
        })
        .collect();
    let first = noises.first()?.0;
    let steal: Vec<(f64, f64)> = noises
        .iter()
        .filter_map(|(x, w)| x.steal_pct.map(|s| (s, *w)))
        .collect();
    let weight: f64 = steal.iter().map(|(_, w)| w).sum();
    let queues: Vec<f64> = noises
        .iter()
        .filter_map(|(x, _)| x.run_queue_median)
        .collect();
    Some(RowNoise {
        steal_pct: (!steal.is_empty() && weight > 0.0)
            .then(|| steal.iter().map(|(s, w)| s * w).sum::<f64>() / weight),
        run_queue_median: Sample::new(queues).ok().map(|s| s.median()),
        run_queue_max: noises.iter().filter_map(|(x, _)| x.run_queue_max).max(),
        readings: noises.iter().map(|(x, _)| x.readings).sum(),
        online_cpus: first.online_cpus,
    })
}

/// The turns' reads alongside as one row's ([`merge_turns`]; `share` is set by the caller from
/// the merged median).
fn merge_alongside(turns: &[Row]) -> Option<ReadAlongside> {
    let reads: Vec<&ReadAlongside> = turns
        .iter()
        .filter_map(|r| r.read_alongside.as_ref())
        .collect();
    let samples_gbs: Vec<f64> = reads
        .iter()
        .flat_map(|r| r.samples_gbs.iter().copied())
        .collect();
    let median_gbs = Sample::from_slice(&samples_gbs).ok()?.median();
    let mut by_pattern: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for r in &reads {
        for (name, v) in &r.patterns {
            by_pattern.entry(name.clone()).or_default().push(*v);
        }
    }
    let patterns = by_pattern
        .into_iter()
        .filter_map(|(name, v)| Some((name, Sample::new(v).ok()?.median())))
        .collect();
    Some(ReadAlongside {
        samples_gbs,
        median_gbs,
        patterns,
        share: None,
    })
}

/// Ctrl-C state shared with the signal handler: the number of interrupts received.
pub type Interrupt = AtomicUsize;

/// The runner's input cache: inputs are generated once per (case, dtype, set) and shared by every
/// kernel of that case.
#[derive(Default)]
pub struct Inputs {
    cache: HashMap<(usize, DType, usize), Vec<Arc<Tensor>>>,
    /// Bytes generated and the seconds that took, since [`Inputs::take_generated`] last read
    /// them.
    generated: (f64, f64),
}

impl Inputs {
    fn get(
        &mut self,
        case: usize,
        problem: &Problem,
        dtype: DType,
        set: usize,
        seed: u64,
    ) -> Vec<Arc<Tensor>> {
        let generated = &mut self.generated;
        self.cache
            .entry((case, dtype, set))
            .or_insert_with(|| {
                let t = Instant::now();
                let set: Vec<Arc<Tensor>> = problem
                    .input_lens()
                    .into_iter()
                    .enumerate()
                    .map(|(i, len)| {
                        let s = seed
                            .wrapping_add((set as u64) << 32)
                            .wrapping_add(i as u64 * 0x9E37_79B9);
                        Arc::new(Tensor::random(dtype, len, s))
                    })
                    .collect();
                generated.0 += set
                    .iter()
                    .map(|x| (x.len() * x.dtype().size_bytes()) as f64)
                    .sum::<f64>();
                generated.1 += t.elapsed().as_secs_f64();
                set
            })
            .clone()
    }

    /// The input bytes generated and the seconds that took since the last call (the progress
    /// estimate learns the generation rate from them).
    pub fn take_generated(&mut self) -> (f64, f64) {
        std::mem::take(&mut self.generated)
    }

    /// Drop the input sets of `case` whose dtype no row still to run needs (`needed` says which
    /// it does): a row of another dtype then reuses their memory instead of adding to it. On a
    /// large-L3 machine a GEMV's rotation is gigabytes a dtype (1×4096×4096 on a 260 MiB L3: 130
    /// sets, 4.2 GB), and memory a VM has not touched before is slow to fault in.
    pub fn release_unless(&mut self, case: usize, needed: impl Fn(DType) -> bool) {
        self.cache.retain(|(c, d, _), _| *c != case || needed(*d));
    }

    /// Drop inputs of cases before `case` (cases run in order), and the verification products
    /// kept for them.
    fn retain_from(&mut self, case: usize) {
        let before = self.cache.len();
        self.cache.retain(|(c, _, _), _| *c >= case);
        if self.cache.len() < before {
            perfledger_kernels::reference::clear_product_cache();
        }
    }
}

/// Verify an output against the float64 reference of its op.
pub fn verify_output(
    problem: &Problem,
    precision: perfledger_kernels::Precision,
    inputs: &[Arc<Tensor>],
    output: &Tensor,
    opts: &VerifyOptions,
) -> RowVerification {
    RowVerification::from(verify::verify_problem(
        problem, precision, inputs, output, opts,
    ))
}

/// What happened to a row, for the progress display.
pub struct RowOutcome {
    pub row: Row,
    pub interrupted: bool,
}

/// Run one planned row. Never panics: a panicking kernel gives an `error` row.
///
/// `on_first_run` is told the time of the first verified run (progress estimates use it).
pub fn run_row(
    planned: &PlannedRow<'_>,
    inputs: &mut Inputs,
    device: &Device,
    opts: &RunnerOptions,
    run_deadline: Option<Instant>,
    interrupt: &Interrupt,
    on_first_run: &mut dyn FnMut(f64),
) -> RowOutcome {
    let mut outcome = sample_row(
        planned,
        inputs,
        device,
        opts,
        run_deadline,
        interrupt,
        on_first_run,
    );
    // An in-process reference library: kind `peer`, with the library and what it chose here
    // (read after the row ran, so a thread count it was given is the one recorded), and what
    // its rows should say about that choice (`config.caveat`).
    if let Some(lib) = planned.kernel.peer() {
        outcome.row.kind = RowKind::Peer;
        let mut config = serde_json::Map::new();
        if let Some(c) = lib.caveat {
            config.insert(PEER_CAVEAT.into(), c.into());
        }
        // A library whose threads keep polling after its calls (OpenBLAS): wait them out, so
        // the next row does not share the CPUs with them — where the row called it at all.
        let called = !matches!(
            outcome.row.status,
            Status::Unsupported | Status::SkippedBudget
        );
        if let Some(settle) = lib.settle.filter(|d| called && !d.is_zero()) {
            std::thread::sleep(settle);
            config.insert(PEER_SETTLE.into(), settle.as_secs_f64().into());
        }
        outcome.row.provenance = Some(Provenance {
            tool: Some(lib.name.to_string()),
            tool_version: Some(lib.version),
            source: Some(IN_PROCESS.to_string()),
            config: (!config.is_empty()).then_some(serde_json::Value::Object(config)),
            ..Provenance::default()
        });
    }
    outcome
}

/// The `provenance.source` of a peer row timed in perfledger's own process.
pub const IN_PROCESS: &str = "in-process";

/// The key of `provenance.config` under which an in-process peer row says what makes the
/// library a weaker reference here than it can be (an OpenBLAS that does not recognise the CPU).
pub const PEER_CAVEAT: &str = "caveat";

/// The key of `provenance.config` under which an in-process peer row records how long the runner
/// waited after it for the library's threads to stop polling, in seconds
/// (`perfledger_kernels::kernel::PeerLibrary::settle`).
pub const PEER_SETTLE: &str = "settle_s";

fn sample_row(
    planned: &PlannedRow<'_>,
    inputs: &mut Inputs,
    device: &Device,
    opts: &RunnerOptions,
    run_deadline: Option<Instant>,
    interrupt: &Interrupt,
    on_first_run: &mut dyn FnMut(f64),
) -> RowOutcome {
    let row_start = Instant::now();
    let id = planned.kernel.identity();
    let problem = planned.case.problem;
    let mut row = Row::measured(&id, Shape::from(&problem), device.clone(), Status::Error);
    row.case = Some(planned.case.name.clone());
    let work = problem.work(planned.precision);
    row.flops = Some(Flops::exact(work.flops));
    row.min_bytes = Some(work.min_bytes);
    inputs.retain_from(planned.case_index);

    if let Support::No(why) = planned.kernel.supports(&problem) {
        let _ = row.set_status(Status::Unsupported, Some(why.to_string()));
        row.reason = Some(why.reason);
        return RowOutcome {
            row,
            interrupted: false,
        };
    }
    if let Some(why) = memory_shortfall(
        &problem,
        planned.precision,
        planned.backend,
        crate::env::os::memory_available_bytes(),
    ) {
        let _ = row.set_status(Status::Unsupported, Some(why.clone()));
        row.reason = Some(why);
        return RowOutcome {
            row,
            interrupted: false,
        };
    }
    if run_deadline.is_some_and(|d| Instant::now() >= d) {
        let _ = row.set_status(
            Status::SkippedBudget,
            Some("the run budget was spent before this row".into()),
        );
        return RowOutcome {
            row,
            interrupted: false,
        };
    }
    let seed = planned
        .case
        .seed
        .unwrap_or(opts.seed)
        .wrapping_add(planned.case_index as u64);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        measure(
            planned,
            &problem,
            inputs,
            &mut row,
            opts,
            seed,
            run_deadline,
            interrupt,
            on_first_run,
        )
    }));
    let interrupted = match result {
        Ok(Ok(interrupted)) => interrupted,
        Ok(Err(message)) => {
            row.samples_s.clear();
            row.stats = None;
            let _ = row.set_status(Status::Error, Some(message));
            false
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            row.samples_s.clear();
            row.stats = None;
            let _ = row.set_status(Status::Error, Some(format!("kernel panicked: {msg}")));
            false
        }
    };
    if let Some(t) = row.timing.as_mut() {
        t.row_s = Some(row_start.elapsed().as_secs_f64());
    }
    RowOutcome { row, interrupted }
}

/// Host memory a row allocates, in bytes: every input set it rotates, its output, and a float64
/// copy of the output for verification.
pub fn host_bytes(
    problem: &Problem,
    precision: perfledger_kernels::Precision,
    backend: Backend,
) -> u64 {
    let sets = rotation_sets(problem, precision, backend) as u64;
    let inputs: u64 = problem.input_lens().iter().map(|&n| n as u64).sum();
    let input_bytes = inputs * precision.input.size_bytes() as u64;
    let output_bytes = problem.output_len() as u64 * (precision.output.size_bytes() as u64 + 8);
    input_bytes * sets + output_bytes
}

/// Why a row would not fit in the memory available (at most 90% of `available`, the rest left to
/// everything else), or `None` (also when `available` is unknown). Checked before anything of the
/// row is allocated.
pub fn memory_shortfall(
    problem: &Problem,
    precision: perfledger_kernels::Precision,
    backend: Backend,
    available: Option<u64>,
) -> Option<String> {
    let available = available?;
    let need = host_bytes(problem, precision, backend);
    let budget = available / 10 * 9;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    (need > budget).then(|| {
        format!(
            "needs about {:.2} GiB of host memory (inputs × {} set(s), output, a float64 copy \
             to verify it), above 90% of the {:.2} GiB available (MemAvailable): refused before \
             allocating",
            gib(need),
            rotation_sets(problem, precision, backend),
            gib(available)
        )
    })
}

/// Number of input sets to rotate for a row (1 unless memory-bound and small next to the
/// last-level cache).
///
/// CPU rows rotate sets spanning [`ROTATE_FOOTPRINT_L3`] × L3 (at most [`MAX_ROTATE_SETS`]); GPU
/// rows sets spanning [`GPU_ROTATE_FOOTPRINT_L2`] × the GPU's L2 ([`last_level_cache`]), device
/// buffers cycled one per sample of one call each, at most [`MAX_GPU_ROTATE_SETS`].
pub fn rotation_sets(
    problem: &Problem,
    precision: perfledger_kernels::Precision,
    backend: Backend,
) -> usize {
    let work = problem.work(precision);
    if work.intensity() >= MEMORY_BOUND_INTENSITY {
        return 1;
    }
    let (footprint, max) = match backend {
        Backend::Cpu => (ROTATE_FOOTPRINT_L3, MAX_ROTATE_SETS),
        Backend::Gpu => (GPU_ROTATE_FOOTPRINT_L2, MAX_GPU_ROTATE_SETS),
    };
    let target = footprint as u64 * last_level_cache(backend);
    (target.div_ceil(work.min_bytes.max(1)) as usize).clamp(1, max)
}

/// The cache a memory-bound row's input sets must outgrow: the CPU's L3, or the GPU's L2
/// ([`perfledger_kernels::gpu::context::last_level_cache_bytes`]: an H200's 50 MB, so one
/// 33.5 MB K+V set of a kv-8192 decode is never measured warm).
pub fn last_level_cache(backend: Backend) -> u64 {
    let l3 = perfledger_kernels::cpu::cache::detected().l3 as u64;
    match backend {
        Backend::Cpu => l3,
        #[cfg(feature = "gpu")]
        Backend::Gpu => perfledger_kernels::gpu::context::global_if_open()
            .map(|c| perfledger_kernels::gpu::context::last_level_cache_bytes(&c.report).0)
            .unwrap_or(l3),
        #[cfg(not(feature = "gpu"))]
        Backend::Gpu => l3,
    }
}

/// How a row's samples are timed: the kernel's device timer where it has one (GPU timestamp
/// queries), else the wall clock around `run`. Device-timed samples keep the wall/device ratio of
/// the same submissions for the cross-check recorded in the row's message.
#[derive(Default)]
struct Clock {
    device: bool,
    wall_fallbacks: usize,
    ratios: Vec<f64>,
}

impl Clock {
    fn method(&self) -> TimingMethod {
        if self.device && self.wall_fallbacks == 0 {
            TimingMethod::Timestamp
        } else {
            TimingMethod::Wall
        }
    }

    /// `timestamp vs wall clock: ...` for device-timed rows.
    fn cross_check(&self) -> Option<String> {
        if self.ratios.is_empty() {
            return None;
        }
        let mut r = self.ratios.clone();
        r.sort_by(|a, b| a.total_cmp(b));
        Some(format!(
            "timestamp vs wall clock: wall/device median {:.3} over {} samples (range {:.3}-{:.3}){}",
            r[r.len() / 2],
            r.len(),
            r[0],
            r[r.len() - 1],
            if self.wall_fallbacks > 0 {
                format!("; {} samples fell back to the wall clock", self.wall_fallbacks)
            } else {
                String::new()
            }
        ))
    }
}

fn time_once(p: &mut dyn Prepared, iters: u64, clock: &mut Clock) -> Result<f64, String> {
    if let Some(t) = p.time_device(iters) {
        let t = t.map_err(|e| e.to_string())?;
        return Ok(match t.device_s {
            Some(d) if d > 0.0 => {
                clock.device = true;
                clock.ratios.push(t.wall_s / d);
                d
            }
            _ => {
                clock.wall_fallbacks += 1;
                t.wall_s
            }
        });
    }
    let t = Instant::now();
    for _ in 0..iters {
        p.run().map_err(|e| e.to_string())?;
    }
    Ok(t.elapsed().as_secs_f64() / iters as f64)
}

/// `iters` iterations, iteration `i` on input set `(first + i) % sets`, wall clock: a sample of a
/// memory-bound CPU row that needs several iterations (each shorter than [`MIN_SAMPLE_S`]) never
/// re-reads the set it just left in cache.
fn time_rotating(prepared: &mut [PreparedSet], first: usize, iters: u64) -> Result<f64, String> {
    let sets = prepared.len();
    let t = Instant::now();
    for i in 0..iters as usize {
        prepared[(first + i) % sets]
            .0
            .run()
            .map_err(|e| e.to_string())?;
    }
    Ok(t.elapsed().as_secs_f64() / iters as f64)
}

/// What the machine did while one row sampled: `/proc/stat` at the start and end (steal), the
/// run queue after each sample (read between samples, never inside a timed region).
struct NoiseMeter {
    start: Option<CpuTimes>,
    run_queue: Vec<u32>,
}

impl NoiseMeter {
    fn start() -> NoiseMeter {
        NoiseMeter {
            start: read_proc_stat(),
            run_queue: Vec::new(),
        }
    }

    fn after_sample(&mut self) {
        if let Some(r) = read_run_queue() {
            self.run_queue.push(r);
        }
    }

    fn finish(self) -> RowNoise {
        let steal = self
            .start
            .zip(read_proc_stat())
            .and_then(|(a, b)| steal_pct(a, b));
        let queue = Sample::new(self.run_queue.iter().map(|&q| q as f64).collect()).ok();
        RowNoise {
            steal_pct: steal,
            run_queue_median: queue.as_ref().map(Sample::median),
            run_queue_max: self.run_queue.iter().max().copied(),
            readings: self.run_queue.len() as u64,
            online_cpus: online_cpus(),
        }
    }
}

/// A prepared kernel and the inputs it was prepared with (for verification).
type PreparedSet = (Box<dyn Prepared>, Vec<Arc<Tensor>>);

/// Returns Ok(interrupted) with the row filled, or Err(message) for an error row.
#[allow(clippy::too_many_arguments)]
fn measure(
    planned: &PlannedRow<'_>,
    problem: &Problem,
    inputs: &mut Inputs,
    row: &mut Row,
    opts: &RunnerOptions,
    seed: u64,
    run_deadline: Option<Instant>,
    interrupt: &Interrupt,
    on_first_run: &mut dyn FnMut(f64),
) -> Result<bool, String> {
    let precision = planned.precision;
    let kernel = planned.kernel;
    let sets = rotation_sets(problem, precision, planned.backend);
    let mut prepared: Vec<PreparedSet> = Vec::with_capacity(sets);
    for set in 0..sets {
        let ins = inputs.get(planned.case_index, problem, precision.input, set, seed);
        let p = kernel
            .prepare(problem, &ins)
            .map_err(|e| format!("prepare: {e}"))?;
        prepared.push((p, ins));
    }

    // What the kernel chose when prepared (decode splits, GPU specialization) goes in the row.
    if let Some(k) = row.kernel.as_mut() {
        for (name, v) in prepared[0].0.chosen_params() {
            k.params.insert(name, v);
        }
    }

    // Poisoned, verified first run (it also pays any cold-start cost, untimed).
    // With `--rounds`, this call is one turn: its share of the budget, cap and samples.
    let budget = Duration::from_secs_f64(opts.turn_budget_s());
    let cap = Duration::from_secs_f64(opts.turn_cap_s());
    let (min_samples, max_samples) = (opts.turn_min_samples(), opts.turn_max_samples());
    {
        let (p, ins) = &mut prepared[0];
        p.poison().map_err(|e| e.to_string())?;
        let first = Instant::now();
        p.run().map_err(|e| format!("run: {e}"))?;
        on_first_run(first.elapsed().as_secs_f64());
        let out = p.output().map_err(|e| e.to_string())?;
        let v = verify_output(problem, precision, ins, &out, &opts.verify);
        let passed = v.passed();
        row.verification = Some(v);
        if !passed {
            let _ = row.set_status(
                Status::Incorrect,
                Some("verification failed on the first run; no timing taken".into()),
            );
            return Ok(false);
        }
    }
    let interrupted = || interrupt.load(Ordering::SeqCst) > 0;

    // From here until the measurement returns the pool's other workers poll for work between
    // the calls (`IdleWorkers::Spin`), rather than sleeping until the next call wakes them.
    let _awake = (planned.backend == Backend::Cpu
        && kernel.on_run_pool()
        && opts.idle_workers == IdleWorkers::Spin)
        .then(KeepAwake::start);
    // Warm-up: until two consecutive iterations agree within 5%, capped in count and time.
    let warm_budget = budget.mul_f64(WARMUP_BUDGET_SHARE);
    let warm_start = Instant::now();
    let mut noise = NoiseMeter::start();
    let mut warmup_iters = 0u64;
    let mut clock = Clock::default();
    let mut last = f64::INFINITY;
    let mut t_iter;
    loop {
        let set = warmup_iters as usize % sets;
        t_iter = time_once(prepared[set].0.as_mut(), 1, &mut clock)?;
        warmup_iters += 1;
        let stable = (t_iter - last).abs() <= 0.05 * last.min(t_iter);
        last = t_iter;
        if (stable && warmup_iters >= 2)
            || warmup_iters >= MAX_WARMUP_ITERS
            || warm_start.elapsed() >= warm_budget
            || interrupted()
        {
            break;
        }
    }
    // The cross-check covers the samples, not warm-up.
    clock.ratios.clear();
    // A GPU row with several input sets times one call per sample on the device clock, cycling
    // the sets: the iterations of a batched sample would all read one set, warm in L2 after the
    // first (device timestamps time a single call exactly; without them, batches as usual).
    let gpu_rotating = sets > 1 && kernel.identity().backend == Backend::Gpu && clock.device;
    let iters_per_sample = if gpu_rotating {
        1
    } else {
        ((MIN_SAMPLE_S / t_iter.max(1e-9)).ceil() as u64).max(1)
    };
    // Memory-bound CPU rows with several input sets rotate them within each sample as well, and
    // read the next sets of the rotation after every sample (the read ceiling of the same
    // seconds), so every call and every read finds its set cold.
    let rotate = sets > 1 && kernel.identity().backend == Backend::Cpu;
    let mut alongside = rotate.then(AlongsideReader::new);
    let mut next_set = 0usize;

    // Samples.
    let mut samples: Vec<f64> = Vec::new();
    let boot = Bootstrap {
        resamples: 500,
        ..Bootstrap::with_seed(seed)
    };
    // Whether the minimum sample count kept the row going past its budget.
    let mut extended = false;
    let stop = loop {
        if interrupted() {
            break StopReason::Interrupted;
        }
        if rotate {
            samples.push(time_rotating(&mut prepared, next_set, iters_per_sample)?);
            next_set += iters_per_sample as usize;
        } else {
            let set = samples.len() % sets;
            samples.push(time_once(
                prepared[set].0.as_mut(),
                iters_per_sample,
                &mut clock,
            )?);
        }
        noise.after_sample();
        if let Some(a) = alongside.as_mut() {
            a.after_sample(&prepared, &mut next_set, iters_per_sample as usize);
        }
        let n = samples.len();
        if n >= MIN_SAMPLES && (n.is_multiple_of(5) || n == MIN_SAMPLES) {
            let s = Sample::from_slice(&samples).map_err(|e| e.to_string())?;
            let ci = s.median_ci95(&boot);
            if crate::stats::ci_half_width_rel(ci, s.median()) <= opts.ci_target {
                break StopReason::CiTarget;
            }
        }
        if n + 1 >= max_samples {
            break StopReason::MaxSamples;
        }
        // The budget and the cap cover warm-up and samples (not preparation or verification).
        // The budget is a target: a row goes on past it until it has its minimum (the last,
        // verified sample below counts), up to the cap.
        let spent = warm_start.elapsed();
        if spent >= budget && n + 1 >= min_samples {
            break StopReason::CaseBudget;
        }
        extended |= spent >= budget;
        if spent >= cap {
            break StopReason::RowCap;
        }
        if run_deadline.is_some_and(|d| Instant::now() >= d) {
            break StopReason::RunBudget;
        }
    };
    let was_interrupted = stop == StopReason::Interrupted;

    // The last sample: poisoned before, verified after.
    let mut verify_set = None;
    if !samples.is_empty() || !was_interrupted {
        // Rotating within the sample, the set of its last iteration is the one verified.
        let set = if rotate {
            (next_set + iters_per_sample as usize - 1) % sets
        } else {
            samples.len() % sets
        };
        prepared[set].0.poison().map_err(|e| e.to_string())?;
        samples.push(if rotate {
            time_rotating(&mut prepared, next_set, iters_per_sample)?
        } else {
            time_once(prepared[set].0.as_mut(), iters_per_sample, &mut clock)?
        });
        verify_set = Some(set);
        noise.after_sample();
        if let Some(a) = alongside.as_mut() {
            next_set += iters_per_sample as usize;
            a.after_sample(&prepared, &mut next_set, iters_per_sample as usize);
        }
    }
    row.noise = Some(noise.finish());
    let timing = Timing {
        method: clock.method(),
        warmup_iters,
        iters_per_sample,
        stop_reason: stop,
        budget_s: Some(opts.turn_budget_s()),
        max_row_s: Some(opts.turn_cap_s()),
        sampling_s: Some(warm_start.elapsed().as_secs_f64()),
        row_s: None,
        turns: None,
    };
    if let Some(set) = verify_set {
        let (p, ins) = &mut prepared[set];
        let out = p.output().map_err(|e| e.to_string())?;
        let v = verify_output(problem, precision, ins, &out, &opts.verify);
        let passed = v.passed();
        row.verification = Some(v);
        if !passed {
            record(row, &samples, timing)?;
            let _ = row.set_status(
                Status::Incorrect,
                Some("verification of the last timed iteration failed".into()),
            );
            return Ok(was_interrupted);
        }
    }
    if samples.is_empty() {
        let _ = row.set_status(
            Status::InsufficientSamples,
            Some("interrupted before any sample".into()),
        );
        return Ok(was_interrupted);
    }
    record(row, &samples, timing)?;
    let read_alongside = alongside.and_then(|a| a.finish(row));
    if samples.len() < min_samples {
        let per_sample = last * iters_per_sample as f64;
        let msg = match stop {
            StopReason::RowCap => format!(
                "{} samples of {per_sample:.3} s reached the row cap of {} s (--max-row-s); \
                 {min_samples} are needed",
                samples.len(),
                opts.turn_cap_s()
            ),
            StopReason::RunBudget => format!(
                "the run budget ran out after {} samples of {per_sample:.3} s; {min_samples} are \
                 needed",
                samples.len()
            ),
            _ => format!(
                "{} samples of {per_sample:.3} s; {min_samples} are needed ({})",
                samples.len(),
                stop.name()
            ),
        };
        let _ = row.set_status(Status::InsufficientSamples, Some(msg));
    } else {
        let rotated = (sets > 1).then(|| format!("{sets} input sets rotated (memory-bound)"));
        let read = read_alongside.as_ref().map(read_alongside_note);
        let past = extended.then(|| {
            format!(
                "{min_samples} samples took {:.1} s, past the {} s budget",
                timing.sampling_s.unwrap_or_default(),
                opts.turn_budget_s()
            )
        });
        let parts: Vec<String> = rotated
            .into_iter()
            .chain(read)
            .chain(past)
            .chain(clock.cross_check())
            .collect();
        // A turn of `--rounds` with its own minimum but fewer than the row's is a valid row of
        // its own (no speed shown) until `merge_turns` judges the row of all its turns.
        let (status, turn_note) = if samples.len() >= MIN_SAMPLES {
            (Status::Ok, None)
        } else {
            (
                Status::InsufficientSamples,
                Some(format!(
                    "{} samples complete this turn of {} ({TURN_NOTE}); the row's turns \
                     together need {MIN_SAMPLES}",
                    samples.len(),
                    opts.turns()
                )),
            )
        };
        let parts: Vec<String> = turn_note.into_iter().chain(parts).collect();
        let msg = (!parts.is_empty()).then(|| parts.join("; "));
        row.set_status(status, msg).map_err(|e| e.to_string())?;
    }
    row.read_alongside = read_alongside;
    Ok(was_interrupted)
}

/// The read alongside a memory-bound CPU row ([`ReadAlongside`]): after each sample, every
/// pattern of [`bandwidth::buffer_patterns`] reads the next input sets of the row's rotation,
/// as many as the sample ran, each pattern sets of its own.
struct AlongsideReader {
    isa: Isa,
    patterns: Vec<ReadPattern>,
    /// Per pattern, its 1e9 bytes/s after each sample.
    per_pattern: Vec<Vec<f64>>,
    /// After each sample, the best pattern's.
    best: Vec<f64>,
}

impl AlongsideReader {
    fn new() -> AlongsideReader {
        let isa = Isa::best();
        let patterns = bandwidth::buffer_patterns(isa);
        AlongsideReader {
            isa,
            per_pattern: vec![Vec::new(); patterns.len()],
            patterns,
            best: Vec::new(),
        }
    }

    /// Reads sets `*next_set..` of the rotation, `count` per pattern, and moves `next_set` past
    /// them (the row's next sample goes on from there).
    fn after_sample(&mut self, prepared: &[PreparedSet], next_set: &mut usize, count: usize) {
        let sets = prepared.len();
        let mut best = 0f64;
        for (k, &pattern) in self.patterns.iter().enumerate() {
            let buffers: Vec<&[u8]> = (0..count)
                .flat_map(|i| prepared[(*next_set + i) % sets].1.iter())
                .map(|t| t.as_bytes())
                .collect();
            *next_set += count;
            let (bytes, secs) = bandwidth::read_buffers(self.isa, pattern, &buffers);
            let gbs = bytes as f64 / secs.max(1e-12) / 1e9;
            self.per_pattern[k].push(gbs);
            best = best.max(gbs);
        }
        self.best.push(best);
    }

    /// The row's [`ReadAlongside`] (its share from the row's median), or `None` before any read.
    fn finish(self, row: &Row) -> Option<ReadAlongside> {
        let median = |v: &[f64]| Sample::from_slice(v).ok().map(|s| s.median());
        let median_gbs = median(&self.best)?;
        let patterns = self
            .patterns
            .iter()
            .zip(&self.per_pattern)
            .filter_map(|(p, v)| Some((p.name().to_string(), median(v)?)))
            .collect();
        let share = read_share(row, median_gbs);
        Some(ReadAlongside {
            samples_gbs: self.best,
            median_gbs,
            patterns,
            share,
        })
    }
}

fn record(row: &mut Row, samples: &[f64], timing: Timing) -> Result<(), String> {
    let sample = Sample::from_slice(samples).map_err(|e| e.to_string())?;
    let summary = sample.summary();
    row.set_samples(&sample, &summary);
    row.timing = Some(timing);
    Ok(())
}

/// Pool workers in [`KeepAwake`]'s polling loop now, in every pool of the process.
static POLLING: AtomicUsize = AtomicUsize::new(0);

/// How many pool workers poll for work between a row's calls now ([`IdleWorkers::Spin`]), in
/// every pool of the process: what a kernel's call sees beside it.
pub fn polling_workers() -> usize {
    POLLING.load(Ordering::SeqCst)
}

/// The pool's other workers polling for work ([`IdleWorkers::Spin`]) until dropped. Started on
/// a worker of the pool (the runner's rows run in `pool.install`); each other worker runs one
/// broadcast job that calls [`rayon::yield_now`] (which runs a pending job of the pool, stolen
/// if need be) until the flag is set, so the row's parallel work still runs on every worker.
/// Outside a pool, or in a pool of one, it polls nothing.
///
/// Why: rayon's idle workers sleep, and on a VM whose guest halts an idle vCPU at once the
/// host can take that vCPU away; the next call's split then waits for it, and a small product
/// runs at one thread's rate. Measured: `results/idle-workers/README.md`.
pub(crate) struct KeepAwake {
    stop: Arc<AtomicBool>,
    /// The other workers' jobs not yet finished.
    pending: Arc<AtomicUsize>,
}

impl KeepAwake {
    /// Starts the polling and returns once every other worker is in it. A worker must enter
    /// the loop with nothing of the row's on its stack: one that picked up its job while
    /// waiting on a join inside a call it had stolen would poll until [`Drop`], which runs only
    /// after that call, and never return. No call has started before this returns.
    pub(crate) fn start() -> KeepAwake {
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicUsize::new(0));
        if let Some(me) = rayon::current_thread_index() {
            let others = rayon::current_num_threads() - 1;
            pending.store(others, Ordering::SeqCst);
            let entered = Arc::new(AtomicUsize::new(0));
            let (s, p, e) = (
                Arc::clone(&stop),
                Arc::clone(&pending),
                Arc::clone(&entered),
            );
            // The job on this worker returns at once: this worker runs the row.
            rayon::spawn_broadcast(move |ctx| {
                if ctx.index() == me {
                    return;
                }
                // Counted out however the loop ends, so `Drop` never waits on a job gone.
                let _left = Left(&p);
                POLLING.fetch_add(1, Ordering::SeqCst);
                e.fetch_add(1, Ordering::Release);
                while !s.load(Ordering::Acquire) {
                    poll_once();
                }
            });
            while entered.load(Ordering::Acquire) < others {
                poll_once();
            }
        }
        KeepAwake { stop, pending }
    }
}

/// Runs one pending job of the current pool if there is one, else one spin-loop hint.
fn poll_once() {
    if rayon::yield_now() != Some(rayon::Yield::Executed) {
        std::hint::spin_loop();
    }
}

/// A polling job leaving: [`POLLING`] and its [`KeepAwake`]'s pending count go down.
struct Left<'a>(&'a AtomicUsize);

impl Drop for Left<'_> {
    fn drop(&mut self) {
        POLLING.fetch_sub(1, Ordering::SeqCst);
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl Drop for KeepAwake {
    /// Stops the polling and waits until every other worker's job has finished, so nothing
    /// polls into the next row (a peer library's own threads need those CPUs). By then the
    /// row's calls are done, so a polling worker only finishes what it is running.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        while self.pending.load(Ordering::Acquire) > 0 {
            poll_once();
        }
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use perfledger_kernels::{AttentionProblem, DType, MatmulProblem, Precision};

    /// A memory-bound CPU row rotates just enough sets to span `ROTATE_FOOTPRINT_L3` × L3 (GQA
    /// decode, 33.5 MB of K + V a set); a compute-bound one (a square product) rotates one.
    #[test]
    fn memory_bound_rows_rotate_sixteen_times_the_l3() {
        let bf16 = Precision::same(DType::BF16);
        let decode = Problem::Attention(AttentionProblem::new(1, 32, 8, 1, 8192, 128));
        let bytes = decode.work(bf16).min_bytes;
        let target = ROTATE_FOOTPRINT_L3 as u64 * last_level_cache(Backend::Cpu);
        let sets = rotation_sets(&decode, bf16, Backend::Cpu) as u64;
        // No L3 reported (some VMs): nothing to outgrow, one set.
        let spans = if target == 0 {
            sets == 1
        } else {
            sets * bytes >= target && (sets - 1) * bytes < target
        };
        assert!(spans, "{sets} sets of {bytes} bytes against {target}");
        let square = Problem::Matmul(MatmulProblem::new(512, 512, 512));
        assert_eq!(rotation_sets(&square, bf16, Backend::Cpu), 1);
    }

    #[test]
    fn rows_that_would_not_fit_are_refused_naming_the_limit() {
        let f32p = Precision::same(DType::F32);
        // 16384³ f32: three 1 GiB operands and a float64 copy of C: about 5 GiB.
        let big = Problem::Matmul(MatmulProblem::new(16384, 16384, 16384));
        let need = host_bytes(&big, f32p, Backend::Cpu);
        assert_eq!(need, (2 << 30) + (1u64 << 30) * 3);
        let why = memory_shortfall(&big, f32p, Backend::Cpu, Some(4 << 30)).unwrap();
        assert!(
            why.contains("MemAvailable") && why.contains("4.00 GiB"),
            "{why}"
        );
        assert_eq!(
            memory_shortfall(&big, f32p, Backend::Cpu, Some(8 << 30)),
            None
        );
        // Unknown availability (no /proc/meminfo): no refusal on a guess.
        assert_eq!(memory_shortfall(&big, f32p, Backend::Cpu, None), None);
        let small = Problem::Matmul(MatmulProblem::new(64, 64, 64));
        assert_eq!(
            memory_shortfall(&small, f32p, Backend::Cpu, Some(1 << 30)),
            None
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfledger_kernels::MatmulProblem;

    /// `release_unless` drops the sets of one case whose dtype is not needed, and nothing of
    /// another case; a set asked for again after its release is generated again, equal.
    #[test]
    fn inputs_of_a_dtype_no_row_needs_are_released() {
        let p = Problem::Matmul(MatmulProblem::new(2, 3, 4));
        let mut inputs = Inputs::default();
        let bf16 = inputs.get(0, &p, DType::BF16, 0, 7);
        inputs.get(0, &p, DType::BF16, 1, 7);
        inputs.get(0, &p, DType::F16, 0, 7);
        inputs.get(1, &p, DType::BF16, 0, 7);
        inputs.release_unless(0, |d| d == DType::F16);
        let mut held: Vec<_> = inputs.cache.keys().copied().collect();
        held.sort_by_key(|&(c, d, s)| (c, d.name(), s));
        assert_eq!(held, vec![(0, DType::F16, 0), (1, DType::BF16, 0)]);
        let again = inputs.get(0, &p, DType::BF16, 0, 7);
        assert!(!Arc::ptr_eq(&again[0], &bf16[0]));
        assert_eq!(again[0].as_bytes(), bf16[0].as_bytes());
        assert_eq!(again[1].as_bytes(), bf16[1].as_bytes());
    }

    /// The bytes generated since the last count, and time for them; a set taken from the cache
    /// counts nothing.
    #[test]
    fn inputs_count_what_they_generate() {
        let p = Problem::Matmul(MatmulProblem::new(2, 3, 4));
        let mut inputs = Inputs::default();
        inputs.get(0, &p, DType::BF16, 0, 7);
        inputs.get(0, &p, DType::F32, 0, 7);
        let (bytes, seconds) = inputs.take_generated();
        // A (2×4) and B (4×3) in bf16, then in f32.
        assert_eq!(bytes, (20 * 2 + 20 * 4) as f64);
        assert!(seconds > 0.0);
        inputs.get(0, &p, DType::BF16, 0, 7);
        assert_eq!(inputs.take_generated(), (0.0, 0.0));
    }
}
