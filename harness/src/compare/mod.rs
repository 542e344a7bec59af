//! `perfledger compare`: base against candidate run files, for CI performance tracking.
//!
//! - [`sides`]: the run files of each side (one per round), their configuration and the rows
//!   matched across them (op, shape, kernel id, hardware);
//! - [`test`]: per row, the ratio of candidate to base median time with a bootstrap 95% CI
//!   (rounds resampled with ≥ 3 rounds per side, samples otherwise), the noise floor, a one-sided
//!   test against the tolerance and Holm's correction across all rows;
//! - [`format`]: the `table`, `md` and `json` (`perfledger.compare/1`) outputs.
//!
//! The method, as the output states it, is in `results/README.md` ("Compare").

pub mod format;
pub mod sides;
pub mod test;

pub use format::CompareFormat;
pub use sides::{ConfigDifference, RowKey, Side};

use serde::Serialize;

/// The schema string of the JSON output.
pub const SCHEMA: &str = "perfledger.compare/1";
/// Default tolerance: a row is slower only if its ratio exceeds 1 + this (and its noise floor).
pub const DEFAULT_THRESHOLD: f64 = 0.03;
/// Family-wise error of the regression tests (Holm across all compared rows, both directions).
pub const FAMILY_ALPHA: f64 = 0.05;
/// Bootstrap resamples per row: the smallest p-value is 1 / (B + 1) ≈ 1e-4, so Holm's first
/// step (0.05 / (2 × rows)) can reject for suites of up to ~250 rows.
pub const RESAMPLES: usize = 10_000;
/// Rounds per side from which rounds, not samples, are resampled.
pub const MIN_ROUNDS: usize = 3;
/// A row whose samples saw more hypervisor steal than this (percent) is `noisy`.
pub const NOISY_STEAL_PCT: f64 = 2.0;
/// A row whose median run queue exceeded the online CPUs by more than this is `noisy` (tasks
/// were waiting for a CPU while it sampled).
pub const NOISY_RUN_QUEUE_EXCESS: f64 = 0.0;
/// A memory-bound row whose read alongside (`read_alongside.median_gbs`, the read of its own
/// inputs between its samples; the median over a side's rounds) differs between the sides by
/// more than this share of the lower is `noisy`: the memory it was measured against moved, on a
/// shared host by up to 2× within minutes, so a time that moved with it is not the code's.
pub const NOISY_READ_ALONGSIDE: f64 = 0.15;

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Relative tolerance (`--threshold`, default 3%).
    pub threshold: f64,
    /// Compare rows even when the configurations differ (`--allow-config-diff`).
    pub allow_config_diff: bool,
    /// Per-row noise floors from a recorded A/A comparison (`--noise FILE`).
    pub noise: Option<NoiseFile>,
    /// The rounds are paired (`--paired`): the i-th round of a row on the base side ran next to
    /// the i-th on the candidate side, so their ratio cancels what the machine did meanwhile.
    pub paired: bool,
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            threshold: DEFAULT_THRESHOLD,
            allow_config_diff: false,
            noise: None,
            paired: false,
            seed: crate::stats::DEFAULT_SEED,
        }
    }
}

/// Noise floors read from a `perfledger.compare/1` file of an A/A comparison: per row key, the
/// farthest its 95% CI reached from 1 (`max(hi − 1, 1 − lo)`).
#[derive(Clone, Debug, Default)]
pub struct NoiseFile {
    pub path: String,
    pub floors: std::collections::BTreeMap<String, f64>,
}

/// A row's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Slower beyond the tolerance, Holm-corrected (exit 1).
    Slower,
    /// Verification failed on the candidate only (exit 1).
    NewlyIncorrect,
    /// Faster beyond the tolerance, Holm-corrected.
    Faster,
    NoChange,
    /// On one side only, or of different kinds or statuses: never a regression.
    NotComparable,
    /// Unsupported on both sides.
    Unsupported,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::NewlyIncorrect => "newly incorrect",
            Verdict::Faster => "faster",
            Verdict::NoChange => "no change",
            Verdict::NotComparable => "not comparable",
            Verdict::Unsupported => "unsupported",
        }
    }

    /// Whether this verdict fails a CI job.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Slower | Verdict::NewlyIncorrect)
    }
}

/// How a row's ratio and CI were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resampled {
    /// Paired rounds (`--paired`, ≥ [`MIN_ROUNDS`] pairs): the per-pair ratios of round medians
    /// resampled; drift common to a pair cancels.
    Pairs,
    /// Per-round medians resampled (≥ [`MIN_ROUNDS`] rounds per side): drift between runs counts.
    Rounds,
    /// The samples of all rounds pooled and resampled (fewer rounds): drift between runs is not
    /// in the CI.
    Samples,
}

/// A kernel parameter that differs between the sides (chosen by the kernel: never config).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamChange {
    pub name: String,
    pub base: serde_json::Value,
    pub candidate: serde_json::Value,
}

/// One row of the comparison.
#[derive(Clone, Debug, Serialize)]
pub struct RowComparison {
    /// The match key as text (what `--noise` files are joined on).
    pub key: String,
    pub op: String,
    /// Kernel id (`family.variant.precision`), or the external row's label.
    pub id: String,
    pub shape: String,
    pub hardware: String,
    pub verdict: Verdict,
    /// Why a row is not compared, or what else a reader should know.
    pub reason: Option<String>,
    /// The samples saw CPU steal or a run queue above the thresholds (the verdict still stands).
    pub noisy: bool,
    pub noise_detail: Option<String>,
    /// Rounds with a verified `ok` row: base, candidate.
    pub rounds: [usize; 2],
    pub resampled: Option<Resampled>,
    pub base_median_s: Option<f64>,
    pub candidate_median_s: Option<f64>,
    /// Candidate median time / base median time (> 1: slower).
    pub ratio: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    /// The round-to-round spread: 2 × 1.4826 × MAD / median of the base's round medians (≥ 3
    /// base rounds), or of the paired ratios (`--paired`).
    pub noise_floor_rounds: Option<f64>,
    /// The floor from `--noise`.
    pub noise_floor_aa: Option<f64>,
    /// Under CPU contention (a round of either side whose median run queue exceeded its online
    /// CPUs): the largest run queue / CPUs of those rounds, minus 1 — the slowdown the scheduler
    /// alone can cause when more threads are runnable than there are CPUs.
    pub noise_floor_contention: Option<f64>,
    /// t = max(threshold, floors): the test is of "ratio ≤ 1 + t" (and "ratio ≥ 1/(1 + t)").
    pub tolerance: Option<f64>,
    pub p_slower: Option<f64>,
    pub p_faster: Option<f64>,
    /// The Holm level the row's smaller p-value was tested at (`None`: not reached).
    pub holm_level: Option<f64>,
    /// The smallest slowdown this row would flag at Holm's strictest level, from the base's own
    /// spread (a base-against-base bootstrap): `(1 + t) / q − 1`, q its α/(2m) quantile.
    pub mde: Option<f64>,
    /// Kernel parameters chosen differently on the two sides.
    pub params_changed: Vec<ParamChange>,
}

/// One side's description in the output.
#[derive(Clone, Debug, Serialize)]
pub struct SideSummary {
    pub files: Vec<String>,
    pub git_commits: Vec<String>,
    pub versions: Vec<String>,
    pub suite: String,
}

/// The method, stated.
#[derive(Clone, Debug, Serialize)]
pub struct Method {
    pub statistic: String,
    pub threshold: f64,
    pub alpha: f64,
    pub correction: String,
    pub hypotheses: usize,
    pub resamples: usize,
    pub seed: u64,
    pub min_rounds_for_round_resampling: usize,
    pub paired: bool,
    pub noise_file: Option<String>,
    pub noisy_steal_pct: f64,
    pub noisy_run_queue: String,
    /// [`NOISY_READ_ALONGSIDE`].
    pub noisy_read_alongside: f64,
}

/// Counts per verdict.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub slower: usize,
    pub faster: usize,
    pub no_change: usize,
    pub not_comparable: usize,
    pub newly_incorrect: usize,
    pub unsupported: usize,
    pub noisy: usize,
}

/// The whole comparison (`perfledger.compare/1`).
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub schema: String,
    pub base: SideSummary,
    pub candidate: SideSummary,
    /// Settings that differ between the sides' configurations.
    pub config_differences: Vec<ConfigDifference>,
    /// Rows were compared although the configurations differ.
    pub config_diff_allowed: bool,
    /// False when the configurations differ and `--allow-config-diff` was not given.
    pub rows_compared: bool,
    pub method: Method,
    pub counts: Counts,
    pub rows: Vec<RowComparison>,
    /// 0 no regression; 1 a regression or a newly incorrect row; 2 configurations differ
    /// (without `--allow-config-diff`).
    pub exit_code: u8,
}

/// Compare the rounds of two sides.
pub fn compare(base: &Side, candidate: &Side, opts: &CompareOptions) -> Comparison {
    let config_differences = sides::config_differences(&base.config, &candidate.config);
    let rows_compared = config_differences.is_empty() || opts.allow_config_diff;
    let rows = if rows_compared {
        test::compare_rows(base, candidate, opts)
    } else {
        Vec::new()
    };
    let mut counts = Counts::default();
    for r in &rows {
        match r.verdict {
            Verdict::Slower => counts.slower += 1,
            Verdict::Faster => counts.faster += 1,
            Verdict::NoChange => counts.no_change += 1,
            Verdict::NotComparable => counts.not_comparable += 1,
            Verdict::NewlyIncorrect => counts.newly_incorrect += 1,
            Verdict::Unsupported => counts.unsupported += 1,
        }
        counts.noisy += usize::from(r.noisy);
    }
    let tested = rows.iter().filter(|r| r.p_slower.is_some()).count();
    let exit_code = if !rows_compared {
        2
    } else if rows.iter().any(|r| r.verdict.fails()) {
        1
    } else {
        0
    };
    Comparison {
        schema: SCHEMA.to_string(),
        base: base.summary(),
        candidate: candidate.summary(),
        config_differences,
        config_diff_allowed: opts.allow_config_diff,
        rows_compared,
        method: Method {
            statistic:
                "ratio of candidate to base median time per iteration; percentile-bootstrap \
                        95% CI; one-sided bootstrap tests of ratio ≤ 1 + t (slower) and ratio ≥ \
                        1/(1 + t) (faster), t = max(threshold, noise floors: rounds, A/A, CPU \
                        contention = run queue / CPUs − 1), p = (1 + #resamples \
                        beyond) / (B + 1)"
                    .to_string(),
            threshold: opts.threshold,
            alpha: FAMILY_ALPHA,
            correction: format!(
                "Holm step-down across all {} hypotheses (two per compared row), family-wise \
                 error {FAMILY_ALPHA}",
                2 * tested
            ),
            hypotheses: 2 * tested,
            resamples: RESAMPLES,
            seed: opts.seed,
            min_rounds_for_round_resampling: MIN_ROUNDS,
            paired: opts.paired,
            noise_file: opts.noise.as_ref().map(|n| n.path.clone()),
            noisy_steal_pct: NOISY_STEAL_PCT,
            noisy_run_queue: "median run queue above the online CPUs".to_string(),
            noisy_read_alongside: NOISY_READ_ALONGSIDE,
        },
        counts,
        rows,
        exit_code,
    }
}
