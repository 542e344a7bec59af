//! Robust statistics of timing samples.
//!
//! A [`Sample`] is a non-empty list of seconds per iteration, each finite and ≥ 0, kept in the
//! order it was measured. Its [`Summary`] is what a result row reports:
//!
//! - **median** (primary); for an even count, the mean of the two middle values;
//! - **min**, **p10**, **p90**: percentiles by linear interpolation between closest ranks
//!   (Hyndman & Fan type 7, numpy's default): for `p` in [0, 1] and the sorted values `x[0..n]`,
//!   `h = (n − 1)·p`, `q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`;
//! - **MAD**: the *unscaled* median absolute deviation, `median(|xᵢ − median|)` (multiply by
//!   1.4826 for a normal-consistent σ estimate);
//! - **ci95**: a percentile-bootstrap 95% confidence interval of the median: `B` resamples of size
//!   `n` drawn with replacement by a seeded [`SplitMix64`], the 2.5th and 97.5th percentiles (same
//!   interpolation) of the resample medians. Deterministic given the seed;
//! - **outliers**: how many values lie strictly outside `median ± 3·(1.4826·MAD)`. Counted, never
//!   dropped.
//!
//! [`median_ratio`] gives the ratio of two samples' medians with a bootstrap CI (each side
//! resampled independently), for the side-by-side scripts (and the CI comparison of base and
//! candidate runs, issue 12, when it lands).

use perfledger_kernels::dtype::SplitMix64;
use serde::{Deserialize, Serialize};

/// The fewest samples a row may be ranked on; fewer makes it `insufficient_samples`.
pub const MIN_SAMPLES: usize = 10;

/// Bootstrap resamples used by default. 2000 keeps the Monte-Carlo error of the 2.5%/97.5%
/// percentiles small next to the interval itself, and costs O(B·n) with selection.
pub const DEFAULT_RESAMPLES: usize = 2000;

/// Default bootstrap seed (any fixed value: the point is that a summary is reproducible).
pub const DEFAULT_SEED: u64 = 0x005E_ED0F_BEEF_5EED;

/// Scale from the MAD to a normal-consistent standard deviation (1 / Φ⁻¹(3/4)).
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Values further than this many (normal-consistent) MADs from the median are counted as outliers.
pub const OUTLIER_MADS: f64 = 3.0;

/// Why a list of times is not a [`Sample`], or why a statistic cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("a sample needs at least one value, got none")]
    Empty,
    #[error("sample value {index} is {value}: times must be finite")]
    NotFinite { index: usize, value: f64 },
    #[error("sample value {index} is {value}: times cannot be negative")]
    Negative { index: usize, value: f64 },
    #[error("the denominator's median is 0 s: a ratio of medians is undefined")]
    ZeroMedian,
}

/// Seconds per iteration, non-empty, every value finite and ≥ 0, in measurement order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    values: Vec<f64>,
    sorted: Vec<f64>,
}

impl Sample {
    /// Check and wrap measured times (seconds per iteration).
    pub fn new(values: Vec<f64>) -> Result<Sample, StatsError> {
        if values.is_empty() {
            return Err(StatsError::Empty);
        }
        for (index, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(StatsError::NotFinite { index, value });
            }
            if value < 0.0 {
                return Err(StatsError::Negative { index, value });
            }
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        Ok(Sample { values, sorted })
    }

    /// Like [`new`](Self::new), from a slice.
    pub fn from_slice(values: &[f64]) -> Result<Sample, StatsError> {
        Sample::new(values.to_vec())
    }

    /// The values in measurement order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The values in ascending order.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false (a `Sample` cannot be empty); present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn into_values(self) -> Vec<f64> {
        self.values
    }

    pub fn min(&self) -> f64 {
        self.sorted[0]
    }

    pub fn max(&self) -> f64 {
        self.sorted[self.sorted.len() - 1]
    }

    pub fn median(&self) -> f64 {
        percentile_sorted(&self.sorted, 0.5)
    }

    /// The `p`-quantile (`p` in [0, 1], clamped) by linear interpolation (type 7).
    pub fn percentile(&self, p: f64) -> f64 {
        percentile_sorted(&self.sorted, p)
    }

    /// Unscaled median absolute deviation: `median(|xᵢ − median|)`.
    pub fn mad(&self) -> f64 {
        let med = self.median();
        let mut dev: Vec<f64> = self.sorted.iter().map(|x| (x - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        percentile_sorted(&dev, 0.5)
    }

    /// How many values lie strictly outside `median ± 3·1.4826·MAD`.
    pub fn outliers(&self) -> usize {
        let med = self.median();
        let limit = OUTLIER_MADS * MAD_TO_SIGMA * self.mad();
        self.values
            .iter()
            .filter(|&&x| (x - med).abs() > limit)
            .count()
    }

    /// Percentile-bootstrap 95% CI of the median.
    pub fn median_ci95(&self, opts: &Bootstrap) -> [f64; 2] {
        let medians = bootstrap_medians(self, opts);
        [
            percentile_sorted(&medians, 0.025),
            percentile_sorted(&medians, 0.975),
        ]
    }

    /// The summary with the default bootstrap ([`DEFAULT_RESAMPLES`], [`DEFAULT_SEED`]).
    pub fn summary(&self) -> Summary {
        self.summary_with(&Bootstrap::default())
    }

    /// The summary with a given bootstrap.
    pub fn summary_with(&self, opts: &Bootstrap) -> Summary {
        Summary {
            median_s: self.median(),
            min_s: self.min(),
            p10_s: self.percentile(0.10),
            p90_s: self.percentile(0.90),
            mad_s: self.mad(),
            ci95_s: self.median_ci95(opts),
            outliers: self.outliers(),
        }
    }
}

impl TryFrom<Vec<f64>> for Sample {
    type Error = StatsError;
    fn try_from(values: Vec<f64>) -> Result<Self, Self::Error> {
        Sample::new(values)
    }
}

/// Bootstrap settings: number of resamples and the seed of the resampling generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Resamples `B` (0 is treated as 1).
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            seed: DEFAULT_SEED,
        }
    }
}

impl Bootstrap {
    pub fn with_seed(seed: u64) -> Self {
        Bootstrap {
            seed,
            ..Bootstrap::default()
        }
    }
}

/// What a result row reports about a [`Sample`] (all times in seconds).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub median_s: f64,
    pub min_s: f64,
    /// 10th percentile (linear interpolation).
    pub p10_s: f64,
    /// 90th percentile (linear interpolation).
    pub p90_s: f64,
    /// Unscaled median absolute deviation.
    pub mad_s: f64,
    /// Percentile-bootstrap 95% CI of the median, `[lo, hi]`.
    pub ci95_s: [f64; 2],
    /// Values outside `median ± 3·1.4826·MAD` (counted, kept).
    pub outliers: usize,
}

impl Summary {
    /// The CI half-width relative to the median, `(hi − lo) / 2 / median`: the adaptive stop rule
    /// ends sampling once this is under its target. Infinite when the median is 0.
    pub fn ci_half_width_rel(&self) -> f64 {
        ci_half_width_rel(self.ci95_s, self.median_s)
    }
}

/// `(hi − lo) / 2 / center`, infinite when `center` is 0.
pub fn ci_half_width_rel(ci: [f64; 2], center: f64) -> f64 {
    if center == 0.0 {
        return f64::INFINITY;
    }
    (ci[1] - ci[0]) / 2.0 / center.abs()
}

/// A ratio of medians with its bootstrap 95% CI.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioEstimate {
    /// `median(numerator) / median(denominator)`.
    pub ratio: f64,
    pub ci95: [f64; 2],
}

/// `median(num) / median(den)` with a percentile-bootstrap 95% CI: each sample is resampled
/// independently (`opts.resamples` times), the ratio of the resample medians taken, and the 2.5th
/// and 97.5th percentiles of those ratios reported. Comparing a candidate with a baseline, `num`
/// is the candidate and `den` the baseline, so a ratio of times above 1 means slower.
///
/// A resample whose denominator median is 0 contributes `+∞` (the CI then says so).
pub fn median_ratio(
    num: &Sample,
    den: &Sample,
    opts: &Bootstrap,
) -> Result<RatioEstimate, StatsError> {
    let den_median = den.median();
    if den_median == 0.0 {
        return Err(StatsError::ZeroMedian);
    }
    let ratios = bootstrap_median_ratios(num, den, opts);
    Ok(RatioEstimate {
        ratio: num.median() / den_median,
        ci95: [
            percentile_sorted(&ratios, 0.025),
            percentile_sorted(&ratios, 0.975),
        ],
    })
}

/// The bootstrap distribution of `median(num) / median(den)`, sorted: `opts.resamples` pairs of
/// resamples (each side drawn with replacement at its own size, independently, from one seeded
/// [`SplitMix64`]). A zero resampled denominator gives +∞. Deterministic given the seed.
pub fn bootstrap_median_ratios(num: &Sample, den: &Sample, opts: &Bootstrap) -> Vec<f64> {
    let mut rng = SplitMix64::new(opts.seed);
    let mut scratch = Vec::with_capacity(num.len().max(den.len()));
    let mut ratios: Vec<f64> = (0..opts.resamples.max(1))
        .map(|_| {
            let a = resample_median(&num.sorted, &mut rng, &mut scratch);
            let b = resample_median(&den.sorted, &mut rng, &mut scratch);
            if b == 0.0 {
                f64::INFINITY
            } else {
                a / b
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// The bootstrap distribution of a sample's median, sorted: `opts.resamples` resamples drawn with
/// replacement by a seeded [`SplitMix64`].
pub fn bootstrap_medians(sample: &Sample, opts: &Bootstrap) -> Vec<f64> {
    let mut rng = SplitMix64::new(opts.seed);
    let mut scratch = Vec::with_capacity(sample.len());
    let mut medians: Vec<f64> = (0..opts.resamples.max(1))
        .map(|_| resample_median(&sample.sorted, &mut rng, &mut scratch))
        .collect();
    medians.sort_by(f64::total_cmp);
    medians
}

/// The `p`-quantile (type 7, as [`Sample::percentile`]) of values already sorted ascending;
/// `None` for an empty slice.
pub fn quantile_of_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| percentile_sorted(sorted, p))
}

/// Holm's step-down correction: which of the hypotheses with these p-values are rejected at
/// family-wise error `alpha`. Sorted ascending, `p₍ᵢ₎` (i = 1..m) is rejected while
/// `p₍ᵢ₎ ≤ alpha / (m − i + 1)`; the first that is not stops the procedure (it and every larger
/// p-value are kept). Returns, per hypothesis in the given order, the level it was tested at
/// (`alpha / (m − i + 1)`, or `None` when an earlier one stopped the procedure) and whether it
/// was rejected.
pub fn holm(p_values: &[f64], alpha: f64) -> Vec<(Option<f64>, bool)> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut out = vec![(None, false); m];
    for (i, &h) in order.iter().enumerate() {
        let level = alpha / (m - i) as f64;
        let reject = p_values[h] <= level;
        out[h] = (Some(level), reject);
        if !reject {
            break;
        }
    }
    out
}

fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let frac = h - lo as f64;
    // Equal neighbours (or an exact rank) need no interpolation; this also keeps ±∞ from turning
    // into NaN (∞ − ∞, 0·∞).
    if frac == 0.0 || a == b {
        a
    } else {
        a + frac * (b - a)
    }
}

/// The median of one resample (with replacement) of ascending `sorted`. Indices into the sorted
/// values are drawn and the middle one(s) selected, so the cost is O(n) per resample.
fn resample_median(sorted: &[f64], rng: &mut SplitMix64, scratch: &mut Vec<usize>) -> f64 {
    let n = sorted.len();
    scratch.clear();
    scratch.extend((0..n).map(|_| rng.below(n as u64) as usize));
    let mid = n / 2;
    let (left, &mut upper, _) = scratch.select_nth_unstable(mid);
    if n % 2 == 1 {
        sorted[upper]
    } else {
        // The lower middle is the largest index left of `mid`.
        let lower = left.iter().copied().max().unwrap_or(upper);
        (sorted[lower] + sorted[upper]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::from_slice(v).unwrap()
    }

    #[test]
    fn empty_nan_inf_negative_are_rejected() {
        assert_eq!(Sample::new(vec![]), Err(StatsError::Empty));
        assert!(matches!(
            Sample::new(vec![1.0, f64::NAN]),
            Err(StatsError::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            Sample::new(vec![f64::INFINITY]),
            Err(StatsError::NotFinite { index: 0, .. })
        ));
        assert!(matches!(
            Sample::new(vec![1.0, 2.0, -0.5]),
            Err(StatsError::Negative { index: 2, .. })
        ));
        let msg = Sample::new(vec![f64::NAN]).unwrap_err().to_string();
        assert!(msg.contains("finite"), "{msg}");
        assert!(Sample::new(vec![0.0]).is_ok());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(s(&[3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(s(&[4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert_eq!(s(&[7.0]).median(), 7.0);
        // Measurement order is kept; sorted order is separate.
        let x = s(&[3.0, 1.0, 2.0]);
        assert_eq!(x.values(), &[3.0, 1.0, 2.0]);
        assert_eq!(x.sorted(), &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn percentiles_interpolate_linearly() {
        // 1..=10: h = 9p. p10: h = 0.9 → 1 + 0.9·1 = 1.9; p90: h = 8.1 → 9.1.
        let x = s(&[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        assert!((x.percentile(0.10) - 1.9).abs() < 1e-12);
        assert!((x.percentile(0.90) - 9.1).abs() < 1e-12);
        assert_eq!(x.percentile(0.0), 1.0);
        assert_eq!(x.percentile(1.0), 10.0);
        assert_eq!(x.percentile(0.5), 5.5);
        // Five values: p10 → h = 0.4 → 1 + 0.4·(2 − 1) = 1.4.
        assert!((s(&[1.0, 2.0, 3.0, 4.0, 100.0]).percentile(0.10) - 1.4).abs() < 1e-12);
    }

    #[test]
    fn mad_is_unscaled() {
        // median 3; |dev| = 2,1,0,1,97 → sorted 0,1,1,2,97 → MAD 1.
        let x = s(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!(x.mad(), 1.0);
        // median 2.5; |dev| = 1.5, 0.5, 0.5, 1.5 → MAD 1.0.
        assert_eq!(s(&[1.0, 2.0, 3.0, 4.0]).mad(), 1.0);
        assert_eq!(s(&[5.0, 5.0, 5.0]).mad(), 0.0);
    }

    #[test]
    fn outliers_are_counted_not_dropped() {
        // median 3, MAD 1: limit 3·1.4826 = 4.4478 → only 100 is outside.
        let x = s(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        let sum = x.summary();
        assert_eq!(sum.outliers, 1);
        assert_eq!(x.len(), 5);
        assert_eq!(sum.min_s, 1.0);
        assert_eq!(sum.median_s, 3.0);
        assert_eq!(sum.mad_s, 1.0);
        // Deviations of at most 2 against a limit of 4.45: none.
        assert_eq!(s(&[1.0, 2.0, 3.0, 4.0, 5.0]).outliers(), 0);
    }

    #[test]
    fn ci_contains_the_median_and_is_deterministic() {
        let mut rng = SplitMix64::new(11);
        let v: Vec<f64> = (0..50).map(|_| 0.1 + 0.01 * rng.next_f64()).collect();
        let x = Sample::new(v).unwrap();
        let a = x.summary_with(&Bootstrap::with_seed(1));
        let b = x.summary_with(&Bootstrap::with_seed(1));
        assert_eq!(a, b);
        assert!(
            a.ci95_s[0] <= a.median_s && a.median_s <= a.ci95_s[1],
            "{a:?}"
        );
        assert!(a.ci95_s[0] >= x.min() && a.ci95_s[1] <= x.max());
        assert!(a.ci95_s[0] < a.ci95_s[1]);
        assert!(a.ci_half_width_rel() > 0.0 && a.ci_half_width_rel() < 0.05);
        // A constant sample has a zero-width CI.
        let c = s(&[2.0; 12]).summary();
        assert_eq!(c.ci95_s, [2.0, 2.0]);
        assert_eq!(c.ci_half_width_rel(), 0.0);
        assert_eq!(s(&[0.0, 0.0]).summary().ci_half_width_rel(), f64::INFINITY);
    }

    #[test]
    fn ci_narrows_with_more_samples() {
        let draw = |n: usize| {
            let mut rng = SplitMix64::new(5);
            Sample::new((0..n).map(|_| 1.0 + rng.next_f64()).collect()).unwrap()
        };
        let small = draw(20).summary().ci_half_width_rel();
        let large = draw(2000).summary().ci_half_width_rel();
        assert!(large < small / 3.0, "small {small}, large {large}");
    }

    #[test]
    fn ratio_of_medians() {
        let mut rng = SplitMix64::new(3);
        let base: Vec<f64> = (0..40).map(|_| 1.0 + 0.02 * rng.next_f64()).collect();
        let slow: Vec<f64> = base.iter().map(|x| 1.5 * x).collect();
        let (b, c) = (Sample::new(base).unwrap(), Sample::new(slow).unwrap());
        let r = median_ratio(&c, &b, &Bootstrap::default()).unwrap();
        assert!((r.ratio - 1.5).abs() < 1e-12);
        assert!(r.ci95[0] <= r.ratio && r.ratio <= r.ci95[1], "{r:?}");
        assert!(r.ci95[0] > 1.4 && r.ci95[1] < 1.6, "{r:?}");
        assert_eq!(r, median_ratio(&c, &b, &Bootstrap::default()).unwrap());
        let aa = median_ratio(&b, &b, &Bootstrap::default()).unwrap();
        assert!(aa.ci95[0] < 1.0 && aa.ci95[1] > 1.0, "{aa:?}");
        assert_eq!(
            median_ratio(&b, &s(&[0.0, 0.0, 1.0]), &Bootstrap::default()),
            Err(StatsError::ZeroMedian)
        );
    }

    #[test]
    fn holm_steps_down_and_stops_at_the_first_kept_hypothesis() {
        // m = 4 at α = 0.05: levels 0.0125, 0.0167, 0.025, 0.05 in p order.
        let p = [0.03, 0.001, 0.012, 0.04];
        let d = holm(&p, 0.05);
        assert_eq!(d[1], (Some(0.0125), true));
        assert_eq!(d[2], (Some(0.05 / 3.0), true));
        // 0.03 > 0.025: kept, and the procedure stops (0.04 is never tested).
        assert_eq!(d[0], (Some(0.025), false));
        assert_eq!(d[3], (None, false));
        assert!(holm(&[], 0.05).is_empty());
        // Bonferroni would keep 0.015 (> 0.0125); Holm rejects it at the second step.
        let d = holm(&[0.001, 0.015, 0.2, 0.9], 0.05);
        assert!(d[0].1 && d[1].1 && !d[2].1 && !d[3].1);
    }

    #[test]
    fn bootstrap_medians_are_sorted_and_inside_the_sample() {
        let x = s(&[1.0, 2.0, 3.0, 4.0, 10.0]);
        let m = bootstrap_medians(&x, &Bootstrap::default());
        assert_eq!(m.len(), DEFAULT_RESAMPLES);
        assert!(m.windows(2).all(|w| w[0] <= w[1]));
        assert!(m[0] >= 1.0 && m[m.len() - 1] <= 10.0);
        let q = quantile_of_sorted(&m, 0.5).unwrap();
        assert!((2.0..=4.0).contains(&q), "{q}");
        assert_eq!(quantile_of_sorted(&[], 0.5), None);
        // Same seed, same distribution.
        assert_eq!(m, bootstrap_medians(&x, &Bootstrap::default()));
    }
}
