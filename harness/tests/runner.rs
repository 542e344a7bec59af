//! The runner's verdicts through its public API: a kernel broken on purpose is `incorrect` and never
//! shows a speed (in the row, the run file or the summary table); an unsupported kernel is
//! `unsupported`, not a failure; a correct kernel is `ok` with ≥ 10 samples and a passing verdict.

use perfledger::cli::format_summary;
use perfledger::env::HarnessInfo;
use perfledger::runfile::{Device, RowKind, RunConfig, RunFile, Status, SuiteRef};
use perfledger::runner::{
    merge_turns, polling_workers, run_row, turn_goes_on, turn_order, IdleWorkers, Inputs,
    RunnerOptions,
};
use perfledger::workload::{PlannedRow, Suite};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::kernel::{Backend, PeerLibrary};
use perfledger_kernels::probe::bandwidth::buffer_patterns;
use perfledger_kernels::{
    Kernel, KernelError, KernelIdentity, Prepared, Problem, Registry, RegistryOptions, Support,
    Tensor,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Wraps a real kernel; `after_runs` runs later (counted over every prepared input set) its
/// output gets one element changed (0 = the first, verified run already fails; 2 = the first
/// passes and the timed ones fail).
struct Broken {
    inner: &'static dyn Kernel,
    after_runs: usize,
    unsupported: bool,
    runs: Arc<AtomicUsize>,
    /// Run as an in-process peer library with this caveat.
    caveat: Option<&'static str>,
    /// Run as an in-process peer library whose threads poll this long after a call.
    settle: Option<std::time::Duration>,
    /// Run on threads of its own, not the run's pool (`Kernel::on_run_pool` false).
    own_threads: bool,
    /// The most pool workers seen polling for work during a call (`runner::polling_workers`).
    polled: Arc<AtomicUsize>,
}

impl Broken {
    fn new(inner: &'static dyn Kernel, after_runs: usize, unsupported: bool) -> Broken {
        Broken {
            inner,
            after_runs,
            unsupported,
            runs: Arc::default(),
            caveat: None,
            settle: None,
            own_threads: false,
            polled: Arc::default(),
        }
    }
}

struct BrokenPrepared {
    inner: Box<dyn Prepared>,
    runs: Arc<AtomicUsize>,
    after_runs: usize,
    polled: Arc<AtomicUsize>,
}

impl Prepared for BrokenPrepared {
    fn run(&mut self) -> Result<(), KernelError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.polled.fetch_max(polling_workers(), Ordering::SeqCst);
        self.inner.run()
    }
    fn poison(&mut self) -> Result<(), KernelError> {
        self.inner.poison()
    }
    fn output(&mut self) -> Result<Tensor, KernelError> {
        let mut out = self.inner.output()?;
        if self.runs.load(Ordering::SeqCst) > self.after_runs {
            // A stale tile: one element keeps a value from "another run".
            if let Tensor::F32(v) = &mut out {
                v[5] += 1.0;
            }
        }
        Ok(out)
    }
}

impl Kernel for Broken {
    fn identity(&self) -> KernelIdentity {
        let mut id = self.inner.identity();
        id.family = "matmul.cpu.broken".into();
        id
    }
    fn supports(&self, p: &Problem) -> Support {
        if self.unsupported {
            Support::no("not on this machine (test)")
        } else {
            self.inner.supports(p)
        }
    }
    fn prepare(
        &self,
        p: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(BrokenPrepared {
            inner: self.inner.prepare(p, inputs)?,
            runs: Arc::clone(&self.runs),
            after_runs: self.after_runs,
            polled: Arc::clone(&self.polled),
        }))
    }
    fn on_run_pool(&self) -> bool {
        !self.own_threads
    }
    fn peer(&self) -> Option<PeerLibrary> {
        (self.caveat.is_some() || self.settle.is_some()).then(|| PeerLibrary {
            name: "test library",
            version: "1.0".into(),
            caveat: self.caveat.map(Into::into),
            settle: self.settle,
        })
    }
}

fn registry() -> &'static Registry {
    static REG: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REG.get_or_init(|| Registry::new(&RegistryOptions::default()))
}

fn run_with(kernel: &dyn Kernel) -> perfledger::runfile::Row {
    run_with_opts(
        kernel,
        RunnerOptions {
            case_budget_s: 0.3,
            ..RunnerOptions::default()
        },
    )
}

fn run_with_opts(kernel: &dyn Kernel, opts: RunnerOptions) -> perfledger::runfile::Row {
    run_case(
        kernel,
        opts,
        r#"{"op": "matmul", "m": 24, "n": 40, "k": 32, "dtypes": ["f32"], "backends": ["cpu"]}"#,
    )
}

/// `kernel` on the one suite case `case` (JSON).
fn run_case(kernel: &dyn Kernel, opts: RunnerOptions, case: &str) -> perfledger::runfile::Row {
    let suite = Suite::parse(
        &format!(r#"{{"schema": "perfledger.suite/1", "name": "t", "cases": [{case}]}}"#),
        "t.json",
    )
    .unwrap();
    let case = &suite.cases[0];
    let planned = PlannedRow {
        case_index: 0,
        case,
        kernel,
        precision: kernel.identity().precision,
        backend: Backend::Cpu,
    };
    let interrupt = AtomicUsize::new(0);
    let mut first_runs = Vec::new();
    let outcome = run_row(
        &planned,
        &mut Inputs::default(),
        &Device::named("test cpu"),
        &opts,
        None,
        &interrupt,
        &mut |t| first_runs.push(t),
    );
    if outcome.row.status != Status::Unsupported {
        assert_eq!(first_runs.len(), 1, "told the first run's time once");
    }
    outcome.row.validate().unwrap();
    outcome.row
}

/// The naive f32 kernel on an `m × n × k` CPU product, with a 0.3 s row budget.
fn naive_f32_product(m: usize, n: usize, k: usize) -> perfledger::runfile::Row {
    run_case(
        naive_f32(),
        RunnerOptions {
            case_budget_s: 0.3,
            ..RunnerOptions::default()
        },
        &format!(
            r#"{{"op": "matmul", "m": {m}, "n": {n}, "k": {k}, "dtypes": ["f32"], "backends": ["cpu"]}}"#
        ),
    )
}

fn naive_f32() -> &'static dyn Kernel {
    registry()
        .find("matmul.cpu.naive.scalar.f32-f32-f32")
        .unwrap()
}

fn summary_of(row: perfledger::runfile::Row) -> String {
    let mut run = RunFile::new(
        HarnessInfo::default(),
        Default::default(),
        SuiteRef {
            name: "t".into(),
            source: None,
        },
        RunConfig::default(),
    );
    run.results.push(row);
    run.validate().unwrap();
    format_summary(&run)
}

#[test]
fn correct_kernel_is_ok_with_samples_and_a_pass() {
    let row = run_with(naive_f32());
    assert_eq!(row.status, Status::Ok, "{:?}", row.message);
    assert!(row.samples_s.len() >= 10);
    assert!(row.gflops.is_some());
    assert!(row.verification.as_ref().unwrap().passed());
}

#[test]
fn memory_bound_cpu_rows_read_their_inputs_alongside_every_sample() {
    // A GEMV (1×64×64 f32: 0.5 FLOP a byte) rotates input sets, and after every sample its
    // inputs are read with each buffer pattern of the bandwidth probe.
    let row = naive_f32_product(1, 64, 64);
    assert_eq!(row.status, Status::Ok, "{:?}", row.message);
    let read = row
        .read_alongside
        .as_ref()
        .expect("a memory-bound CPU row reads its inputs alongside");
    assert_eq!(
        read.samples_gbs.len(),
        row.samples_s.len(),
        "one read per sample"
    );
    // The run queue is read after every sample, the last (verified) one included.
    assert_eq!(
        row.noise.as_ref().unwrap().readings,
        row.samples_s.len() as u64
    );
    let names: Vec<&str> = buffer_patterns(Isa::best())
        .into_iter()
        .map(|p| p.name())
        .collect();
    let mut got: Vec<&str> = read.patterns.keys().map(String::as_str).collect();
    let mut want = names;
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    // Each read's figure is its best pattern's: no pattern's median exceeds the best reads'
    // largest.
    let top = read.samples_gbs.iter().cloned().fold(0.0, f64::max);
    assert!(read.patterns.values().all(|&p| p <= top), "{read:?}");
    let mut sorted = read.samples_gbs.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(read.median_gbs >= sorted[0] && read.median_gbs <= top);
    let stats = row.stats.as_ref().unwrap();
    let row_gbs = row.min_bytes.unwrap() as f64 / stats.median_s / 1e9;
    let share = read.share.unwrap();
    assert!(
        (share - row_gbs / read.median_gbs).abs() <= 1e-9 * share,
        "{share} vs {row_gbs} / {}",
        read.median_gbs
    );
    let message = row.message.as_deref().unwrap_or_default();
    assert!(message.contains("read alongside"), "{message}");
    // A compute-bound row (200³: 33 FLOP a byte) rotates one set and reads nothing alongside.
    let square = naive_f32_product(200, 200, 200);
    assert_eq!(square.status, Status::Ok, "{:?}", square.message);
    assert!(square.read_alongside.is_none());
}

#[test]
fn kernel_failing_the_first_verification_is_incorrect_without_speed() {
    let broken = Broken::new(naive_f32(), 0, false);
    let row = run_with(&broken);
    assert_eq!(row.status, Status::Incorrect);
    assert!(row.gflops.is_none());
    assert!(
        row.samples_s.is_empty(),
        "no timing after a failed first verification"
    );
    let text = summary_of(row);
    let line = text
        .lines()
        .find(|l| l.contains("matmul.cpu.broken"))
        .unwrap();
    assert!(line.contains("incorrect"), "{line}");
    assert!(
        !line.contains("GFLOP") && !line.contains('['),
        "no speed shown: {line}"
    );
}

#[test]
fn kernel_failing_on_the_last_timed_iteration_keeps_samples_but_shows_no_speed() {
    let broken = Broken::new(naive_f32(), 2, false);
    let row = run_with(&broken);
    assert_eq!(row.status, Status::Incorrect);
    assert!(row.gflops.is_none());
    assert!(!row.samples_s.is_empty(), "the samples are kept");
    assert!(!row.verification.as_ref().unwrap().passed());
    let text = summary_of(row);
    let line = text
        .lines()
        .find(|l| l.contains("matmul.cpu.broken"))
        .unwrap();
    assert!(line.contains("incorrect") && !line.contains('['), "{line}");
}

#[test]
fn unsupported_is_a_typed_outcome_not_a_failure() {
    let k = Broken::new(naive_f32(), 0, true);
    let row = run_with(&k);
    assert_eq!(row.status, Status::Unsupported);
    assert!(row.message.unwrap().contains("not on this machine"));
    assert!(row.gflops.is_none());
}

/// A correct kernel whose every run also sleeps `sleep`: a slow machine in miniature.
struct Slow {
    inner: &'static dyn Kernel,
    sleep: std::time::Duration,
}

struct SlowPrepared {
    inner: Box<dyn Prepared>,
    sleep: std::time::Duration,
}

impl Prepared for SlowPrepared {
    fn run(&mut self) -> Result<(), KernelError> {
        std::thread::sleep(self.sleep);
        self.inner.run()
    }
    fn poison(&mut self) -> Result<(), KernelError> {
        self.inner.poison()
    }
    fn output(&mut self) -> Result<Tensor, KernelError> {
        self.inner.output()
    }
}

impl Kernel for Slow {
    fn identity(&self) -> KernelIdentity {
        let mut id = self.inner.identity();
        id.family = "matmul.cpu.slow".into();
        id
    }
    fn supports(&self, p: &Problem) -> Support {
        self.inner.supports(p)
    }
    fn prepare(
        &self,
        p: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(SlowPrepared {
            inner: self.inner.prepare(p, inputs)?,
            sleep: self.sleep,
        }))
    }
}

#[test]
fn a_row_whose_minimum_samples_overrun_the_budget_still_gets_a_number() {
    // 10 samples of ≥ 30 ms cannot fit a 0.1 s budget: the minimum extends the row past it.
    let slow = Slow {
        inner: naive_f32(),
        sleep: std::time::Duration::from_millis(30),
    };
    let row = run_with_opts(
        &slow,
        RunnerOptions {
            case_budget_s: 0.1,
            ..RunnerOptions::default()
        },
    );
    assert_eq!(row.status, Status::Ok, "{:?}", row.message);
    assert!(row.samples_s.len() >= 10);
    let t = row.timing.unwrap();
    assert_eq!(t.budget_s, Some(0.1));
    assert_eq!(t.max_row_s, Some(1.0), "default cap: 10 × the budget");
    assert!(t.sampling_s.unwrap() > 0.1, "{t:?}");
    assert!(t.row_s.unwrap() >= t.sampling_s.unwrap());
    assert!(
        row.message
            .as_deref()
            .unwrap_or("")
            .contains("past the 0.1 s budget"),
        "{:?}",
        row.message
    );
}

#[test]
fn only_the_row_cap_makes_a_row_insufficient() {
    // The cap (0.15 s) stops the row after at most 5 samples of ≥ 30 ms.
    let slow = Slow {
        inner: naive_f32(),
        sleep: std::time::Duration::from_millis(30),
    };
    let row = run_with_opts(
        &slow,
        RunnerOptions {
            case_budget_s: 0.1,
            max_row_s: Some(0.15),
            ..RunnerOptions::default()
        },
    );
    assert_eq!(row.status, Status::InsufficientSamples);
    assert!(row.gflops.is_none());
    assert!(row.samples_s.len() < 10);
    let t = row.timing.unwrap();
    assert_eq!(t.stop_reason, perfledger::runfile::StopReason::RowCap);
    let msg = row.message.unwrap();
    assert!(msg.contains("row cap of 0.15 s"), "{msg}");
    assert!(msg.contains("--max-row-s"), "{msg}");
}

/// What an in-process peer library says about its choices here (an OpenBLAS that fell back to old
/// kernels) is recorded with the row (`provenance.config.caveat`) and is a note under the summary
/// table while the row is measured; a peer row that fails verification gets no note.
#[test]
fn a_peer_caveat_is_recorded_and_a_note_in_the_summary() {
    const CAVEAT: &str = "fell back to its test kernels";
    let caveat_of = |row: &perfledger::runfile::Row| {
        row.provenance.as_ref().unwrap().config.as_ref().unwrap()["caveat"].clone()
    };
    let mut peer = Broken::new(naive_f32(), usize::MAX, false);
    peer.caveat = Some(CAVEAT);
    let row = run_with(&peer);
    assert_eq!((row.kind, row.status), (RowKind::Peer, Status::Ok));
    assert_eq!(caveat_of(&row), CAVEAT);
    let text = summary_of(row);
    assert!(
        text.lines()
            .any(|l| l.starts_with("note: matmul.cpu.broken.") && l.ends_with(CAVEAT)),
        "{text}"
    );

    let mut broken = Broken::new(naive_f32(), 0, false);
    broken.caveat = Some(CAVEAT);
    let row = run_with(&broken);
    assert_eq!((row.kind, row.status), (RowKind::Peer, Status::Incorrect));
    assert_eq!(caveat_of(&row), CAVEAT);
    assert!(!summary_of(row).contains("note:"));
}

/// A peer library whose threads poll after its calls (OpenBLAS) gets the runner's wait after its
/// row, recorded as `provenance.config.settle_s`; a row of a library without one records none.
#[test]
fn a_peer_settle_is_waited_and_recorded() {
    let config_of =
        |row: &perfledger::runfile::Row| row.provenance.as_ref().unwrap().config.clone();
    let mut peer = Broken::new(naive_f32(), usize::MAX, false);
    peer.settle = Some(std::time::Duration::from_millis(20));
    let started = std::time::Instant::now();
    let row = run_with(&peer);
    assert_eq!((row.kind, row.status), (RowKind::Peer, Status::Ok));
    assert_eq!(config_of(&row).unwrap()["settle_s"], 0.02);
    // `sleep` waits at least its duration: a lower bound, not a timing of the machine.
    assert!(started.elapsed() >= std::time::Duration::from_millis(20));

    let mut plain = Broken::new(naive_f32(), usize::MAX, false);
    plain.caveat = Some("a caveat");
    let row = run_with(&plain);
    assert!(config_of(&row).unwrap().get("settle_s").is_none());
}

/// With `--idle-workers spin` (the default) the pool's other workers poll for work while a row
/// that runs on the pool is measured, and stop before the row returns; with `sleep`, or for a
/// library with threads of its own (OpenBLAS, ndarray), none polls. The row runs in a pool of
/// three, as `run` runs its rows in its pool.
#[test]
fn idle_workers_poll_beside_pool_rows_only_and_stop_with_the_row() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let measure = |idle_workers: IdleWorkers, own_threads: bool| {
        let mut kernel = Broken::new(naive_f32(), usize::MAX, false);
        kernel.own_threads = own_threads;
        let opts = RunnerOptions {
            case_budget_s: 0.3,
            idle_workers,
            ..RunnerOptions::default()
        };
        let row = pool.install(|| run_with_opts(&kernel, opts));
        assert_eq!(row.status, Status::Ok);
        // The row has returned: nothing of it polls any more.
        assert_eq!(polling_workers(), 0);
        kernel.polled.load(Ordering::SeqCst)
    };
    // The two other workers enter the loop once they pick up its job; a call sees one or both.
    assert!(measure(IdleWorkers::Spin, false) >= 1);
    assert_eq!(measure(IdleWorkers::Sleep, false), 0);
    assert_eq!(measure(IdleWorkers::Spin, true), 0);
}

/// `--rounds`: each call of `run_row` is one turn with its share of the row's budget, cap and
/// samples; the turns make one row with every turn's samples, its statistics of all of them,
/// the whole budget, and its notes.
#[test]
fn turns_take_a_share_of_the_budget_and_make_one_row_of_all_their_samples() {
    let opts = RunnerOptions {
        case_budget_s: 0.3,
        rounds: 3,
        ..RunnerOptions::default()
    };
    let turns: Vec<_> = (0..3)
        .map(|_| run_with_opts(naive_f32(), opts.clone()))
        .collect();
    for t in &turns {
        assert!(turn_goes_on(t), "{:?} {:?}", t.status, t.message);
        let timing = t.timing.as_ref().unwrap();
        assert!(
            (timing.budget_s.unwrap() - 0.1).abs() < 1e-9,
            "a third of the budget"
        );
        assert!((timing.max_row_s.unwrap() - opts.cap_s() / 3.0).abs() < 1e-9);
        assert!(
            t.samples_s.len() >= 4,
            "ceil(10 / 3) samples complete a turn"
        );
        assert_eq!(timing.turns, None);
    }
    let all: Vec<f64> = turns.iter().flat_map(|t| t.samples_s.clone()).collect();
    let warmups: u64 = turns
        .iter()
        .map(|t| t.timing.as_ref().unwrap().warmup_iters)
        .sum();
    let row = merge_turns(turns, &opts);
    row.validate().unwrap();
    assert_eq!(row.status, Status::Ok);
    assert_eq!(row.samples_s, all, "every turn's samples, in order");
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let median = perfledger::stats::Sample::from_slice(&all)
        .unwrap()
        .median();
    assert_eq!(row.stats.as_ref().unwrap().median_s, median);
    assert_eq!(row.stats.as_ref().unwrap().min_s, sorted[0]);
    let timing = row.timing.as_ref().unwrap();
    assert_eq!(timing.turns, Some(3));
    assert_eq!(timing.warmup_iters, warmups);
    assert_eq!(timing.budget_s, Some(0.3), "the row's whole budget");
    assert!(row
        .message
        .as_deref()
        .unwrap()
        .starts_with("3 turns of 3 (--rounds)"));
    assert!(row.gflops.is_some());
    // One turn in one go is the row as it is.
    let one = run_with(naive_f32());
    assert_eq!(
        merge_turns(vec![one.clone()], &RunnerOptions::default()),
        one
    );
}

/// An interrupt can leave a row of `--rounds 4` with its first turn only: a turn's few samples
/// (`ceil(10 / 4)` complete it) are judged by the whole row's minimum, so the row is
/// `insufficient_samples`, shows no speed, and the run file's invariants hold.
#[test]
fn a_row_cut_to_one_turn_is_judged_by_the_whole_rows_minimum() {
    let opts = RunnerOptions {
        case_budget_s: 0.01,
        rounds: 4,
        ..RunnerOptions::default()
    };
    let turn = run_with_opts(naive_f32(), opts.clone());
    // A turn short of the row's minimum is a valid row of its own, with no speed shown.
    assert_eq!(
        turn.status,
        Status::InsufficientSamples,
        "{:?}",
        turn.message
    );
    assert!(turn.gflops.is_none());
    assert!(turn_goes_on(&turn), "a timed turn");
    assert!(
        turn.samples_s.len() < 10,
        "{} samples",
        turn.samples_s.len()
    );
    let row = merge_turns(vec![turn], &opts);
    row.validate().unwrap();
    assert_eq!(row.status, Status::InsufficientSamples, "{:?}", row.message);
    assert!(row.gflops.is_none());
    assert_eq!(row.timing.as_ref().unwrap().turns, Some(1));
    assert!(
        row.message.as_deref().unwrap().contains("1 turn of 4"),
        "{:?}",
        row.message
    );
}

/// A kernel wrong in any turn is wrong: the row is that turn's, `incorrect`, with no speed,
/// and says which turn.
#[test]
fn a_turn_that_fails_verification_makes_the_row_incorrect() {
    let opts = RunnerOptions {
        case_budget_s: 0.2,
        rounds: 2,
        ..RunnerOptions::default()
    };
    let good = run_with_opts(&Broken::new(naive_f32(), usize::MAX, false), opts.clone());
    assert_eq!(good.status, Status::Ok);
    // Wrong on its last timed iteration (2), or on its first run (0: no timing taken in that
    // turn, and none made up for it).
    for after_runs in [2, 0] {
        let bad = run_with_opts(&Broken::new(naive_f32(), after_runs, false), opts.clone());
        assert_eq!(bad.status, Status::Incorrect);
        let row = merge_turns(vec![good.clone(), bad], &opts);
        row.validate().unwrap();
        assert_eq!(row.status, Status::Incorrect);
        assert!(row.gflops.is_none());
        assert!(
            row.message.as_deref().unwrap().starts_with("turn 2 of 2: "),
            "{:?}",
            row.message
        );
        if after_runs == 0 {
            assert!(row.timing.is_none() && row.samples_s.is_empty());
        }
    }
}

/// Turns alternate the case's rows' order, so no row always runs first or last.
#[test]
fn turns_reverse_the_order_every_other_turn() {
    assert_eq!(turn_order(3, 0), vec![0, 1, 2]);
    assert_eq!(turn_order(3, 1), vec![2, 1, 0]);
    assert_eq!(turn_order(3, 2), vec![0, 1, 2]);
    assert_eq!(turn_order(0, 1), Vec::<usize>::new());
}
