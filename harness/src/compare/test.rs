//! The per-row test: ratio, bootstrap CI, noise floor, one-sided tests, Holm's correction, the
//! minimum detectable effect and the `noisy` mark.

use super::sides::{rows_by_key, RowKey, Side};
use super::{
    CompareOptions, ParamChange, Resampled, RowComparison, Verdict, FAMILY_ALPHA, MIN_ROUNDS,
    NOISY_READ_ALONGSIDE, NOISY_RUN_QUEUE_EXCESS, NOISY_STEAL_PCT, RESAMPLES,
};
use crate::runfile::{Row, Status};
use crate::stats::{
    bootstrap_median_ratios, bootstrap_medians, holm, quantile_of_sorted, Bootstrap, Sample,
};
use std::collections::BTreeMap;

/// Scale from the MAD to a normal-consistent σ.
const MAD_TO_SIGMA: f64 = crate::stats::MAD_TO_SIGMA;

/// A compared row before Holm's correction, with the base-against-base distribution kept for
/// the minimum detectable effect.
struct Pending {
    row: RowComparison,
    aa_sorted: Vec<f64>,
}

impl Pending {
    /// A row whose verdict is decided without a test (not comparable, newly incorrect, ...).
    fn decided(row: RowComparison) -> Pending {
        Pending {
            row,
            aa_sorted: Vec::new(),
        }
    }
}

/// Compare every key of either side.
pub fn compare_rows(base: &Side, cand: &Side, opts: &CompareOptions) -> Vec<RowComparison> {
    let b = rows_by_key(base);
    let c = rows_by_key(cand);
    let c_map: BTreeMap<&RowKey, &Vec<(usize, &Row)>> = c.iter().map(|(k, v)| (k, v)).collect();
    let b_map: BTreeMap<&RowKey, &Vec<(usize, &Row)>> = b.iter().map(|(k, v)| (k, v)).collect();
    let hw_of = |side: &[(RowKey, Vec<(usize, &Row)>)], key: &RowKey| -> Option<String> {
        side.iter()
            .find(|(k, _)| k.without_hardware() == key.without_hardware())
            .map(|(k, _)| k.hardware.clone())
    };

    let mut pending: Vec<Pending> = Vec::new();
    let empty = Vec::new();
    let keys: Vec<&RowKey> = b
        .iter()
        .map(|(k, _)| k)
        .chain(c.iter().map(|(k, _)| k).filter(|k| !b_map.contains_key(k)))
        .collect();
    for (index, key) in keys.into_iter().enumerate() {
        let b_rows = b_map.get(key).copied().unwrap_or(&empty);
        let c_rows = c_map.get(key).copied().unwrap_or(&empty);
        let mut row = blank(key, b_rows.first().or(c_rows.first()).map(|(_, r)| *r));
        if b_rows.is_empty() || c_rows.is_empty() {
            let (here, other, other_rows) = if b_rows.is_empty() {
                ("candidate", "base", &b)
            } else {
                ("base", "candidate", &c)
            };
            row.verdict = Verdict::NotComparable;
            row.reason = Some(match hw_of(other_rows, key) {
                Some(hw) => format!(
                    "hardware differs: {here} ran on {}, {other} on {hw}",
                    key.hardware
                ),
                None => format!("only in {here}"),
            });
            pending.push(Pending::decided(row));
            continue;
        }
        let b_kind = b_rows[0].1.kind;
        let c_kind = c_rows[0].1.kind;
        if b_kind != c_kind {
            row.verdict = Verdict::NotComparable;
            row.reason = Some(format!(
                "kinds differ: base {}, candidate {}",
                b_kind.name(),
                c_kind.name()
            ));
            pending.push(Pending::decided(row));
            continue;
        }
        let is_incorrect = |rows: &[(usize, &Row)]| {
            rows.iter().any(|(_, r)| {
                r.status == Status::Incorrect
                    || r.verification
                        .as_ref()
                        .is_some_and(|v| v.verdict == Some(crate::runfile::Verdict::Fail))
            })
        };
        let b_ok: Vec<&Row> = b_rows
            .iter()
            .filter(|(_, r)| r.is_rankable())
            .map(|(_, r)| *r)
            .collect();
        let c_ok: Vec<&Row> = c_rows
            .iter()
            .filter(|(_, r)| r.is_rankable())
            .map(|(_, r)| *r)
            .collect();
        row.rounds = [b_ok.len(), c_ok.len()];
        row.params_changed = params_changed(b_rows, c_rows);
        if is_incorrect(c_rows) && !is_incorrect(b_rows) {
            row.verdict = Verdict::NewlyIncorrect;
            row.reason = Some(format!(
                "verification failed on the candidate ({}), passed on the base",
                statuses(c_rows)
            ));
            pending.push(Pending::decided(row));
            continue;
        }
        let all = |rows: &[(usize, &Row)], s: Status| rows.iter().all(|(_, r)| r.status == s);
        if all(b_rows, Status::Unsupported) && all(c_rows, Status::Unsupported) {
            row.verdict = Verdict::Unsupported;
            row.reason = c_rows[0].1.reason.clone().or(c_rows[0].1.message.clone());
            pending.push(Pending::decided(row));
            continue;
        }
        if b_ok.is_empty() || c_ok.is_empty() {
            row.verdict = Verdict::NotComparable;
            row.reason = Some(format!(
                "no verified ok round on {}: base {}; candidate {}",
                if b_ok.is_empty() && c_ok.is_empty() {
                    "either side"
                } else if b_ok.is_empty() {
                    "the base"
                } else {
                    "the candidate"
                },
                statuses(b_rows),
                statuses(c_rows)
            ));
            pending.push(Pending::decided(row));
            continue;
        }
        let skipped = (b_rows.len() - b_ok.len()) + (c_rows.len() - c_ok.len());
        if skipped > 0 {
            row.reason = Some(format!(
                "{skipped} round(s) without a verified ok row left out (base {}; candidate {})",
                statuses(b_rows),
                statuses(c_rows)
            ));
        }
        let (noisy, detail, contention) = noise((base, b_rows), (cand, c_rows));
        row.noisy = noisy;
        row.noise_detail = detail;
        row.noise_floor_contention = contention.map(|f| f - 1.0);
        let pairs: Vec<(&Row, &Row)> = b_rows
            .iter()
            .zip(c_rows.iter())
            .filter(|((_, b), (_, c))| b.is_rankable() && c.is_rankable())
            .map(|((_, b), (_, c))| (*b, *c))
            .collect();
        let measured = if opts.paired && pairs.len() >= MIN_ROUNDS {
            measure_pairs(&mut row, &pairs, key, opts, index as u64)
        } else {
            measure(&mut row, &b_ok, &c_ok, key, opts, index as u64)
        };
        match measured {
            Some(aa_sorted) => pending.push(Pending { row, aa_sorted }),
            None => {
                row.verdict = Verdict::NotComparable;
                row.reason = Some("no usable times (a median of 0 s)".into());
                pending.push(Pending::decided(row));
            }
        }
    }

    // Holm across both one-sided hypotheses of every tested row.
    let tested: Vec<usize> = (0..pending.len())
        .filter(|&i| pending[i].row.p_slower.is_some())
        .collect();
    let mut p_values = Vec::with_capacity(2 * tested.len());
    for &i in &tested {
        p_values.push(pending[i].row.p_slower.unwrap_or(1.0));
        p_values.push(pending[i].row.p_faster.unwrap_or(1.0));
    }
    let decisions = holm(&p_values, FAMILY_ALPHA);
    let strictest = FAMILY_ALPHA / p_values.len().max(1) as f64;
    for (j, &i) in tested.iter().enumerate() {
        let (slow_level, slower) = decisions[2 * j];
        let (fast_level, faster) = decisions[2 * j + 1];
        let r = &mut pending[i];
        let p_s = r.row.p_slower.unwrap_or(1.0);
        let p_f = r.row.p_faster.unwrap_or(1.0);
        r.row.holm_level = if p_s <= p_f { slow_level } else { fast_level };
        r.row.verdict = if slower {
            Verdict::Slower
        } else if faster {
            Verdict::Faster
        } else {
            Verdict::NoChange
        };
        let t = r.row.tolerance.unwrap_or(0.0);
        r.row.mde = quantile_of_sorted(&r.aa_sorted, strictest)
            .filter(|q| *q > 0.0 && q.is_finite())
            .map(|q| ((1.0 + t) / q - 1.0).max(t));
    }
    pending.into_iter().map(|p| p.row).collect()
}

/// A row with its identity and nothing decided.
fn blank(key: &RowKey, example: Option<&Row>) -> RowComparison {
    RowComparison {
        key: key.text(),
        op: key.op.clone(),
        id: key.id.clone(),
        shape: example.map(|r| r.shape.short()).unwrap_or_default(),
        hardware: key.hardware.clone(),
        verdict: Verdict::NotComparable,
        reason: None,
        noisy: false,
        noise_detail: None,
        rounds: [0, 0],
        resampled: None,
        base_median_s: None,
        candidate_median_s: None,
        ratio: None,
        ci95: None,
        noise_floor_rounds: None,
        noise_floor_aa: None,
        noise_floor_contention: None,
        tolerance: None,
        p_slower: None,
        p_faster: None,
        holm_level: None,
        mde: None,
        params_changed: Vec::new(),
    }
}

/// The statuses of a key's rounds (`ok ×4, insufficient_samples ×1`).
fn statuses(rows: &[(usize, &Row)]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, r) in rows {
        *counts.entry(r.status.name()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The times of one round: its samples, or its median when an external row has none.
fn times(row: &Row) -> Vec<f64> {
    if !row.samples_s.is_empty() {
        row.samples_s.clone()
    } else {
        row.stats.map(|s| vec![s.median_s]).unwrap_or_default()
    }
}

fn round_median(row: &Row) -> Option<f64> {
    row.stats
        .map(|s| s.median_s)
        .or_else(|| Sample::new(times(row)).ok().map(|s| s.median()))
}

/// Ratio, CI, floors, tolerance and p-values; returns the base-against-base distribution (for
/// the minimum detectable effect), or `None` when the times cannot be compared.
fn measure(
    row: &mut RowComparison,
    b_ok: &[&Row],
    c_ok: &[&Row],
    key: &RowKey,
    opts: &CompareOptions,
    index: u64,
) -> Option<Vec<f64>> {
    let rounds = b_ok.len() >= MIN_ROUNDS && c_ok.len() >= MIN_ROUNDS;
    let collect = |rows: &[&Row]| -> Option<Sample> {
        let v: Vec<f64> = if rounds {
            rows.iter().filter_map(|r| round_median(r)).collect()
        } else {
            rows.iter().flat_map(|r| times(r)).collect()
        };
        Sample::new(v).ok()
    };
    let b = collect(b_ok)?;
    let c = collect(c_ok)?;
    if b.median() <= 0.0 {
        return None;
    }
    let boot = Bootstrap {
        resamples: RESAMPLES,
        seed: opts.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    let ratios = bootstrap_median_ratios(&c, &b, &boot);
    let ratio = c.median() / b.median();
    row.resampled = Some(if rounds {
        Resampled::Rounds
    } else {
        Resampled::Samples
    });
    row.base_median_s = Some(b.median());
    row.candidate_median_s = Some(c.median());
    row.ratio = Some(ratio);
    row.ci95 = Some([
        quantile_of_sorted(&ratios, 0.025)?,
        quantile_of_sorted(&ratios, 0.975)?,
    ]);
    if b_ok.len() >= MIN_ROUNDS {
        let medians: Vec<f64> = b_ok.iter().filter_map(|r| round_median(r)).collect();
        if let Ok(s) = Sample::new(medians) {
            if s.median() > 0.0 {
                row.noise_floor_rounds = Some(2.0 * MAD_TO_SIGMA * s.mad() / s.median());
            }
        }
    }
    finish_tests(row, &ratios, key, opts);
    // The base against itself (two independent resamples): how far a ratio moves by chance.
    let aa = Bootstrap {
        resamples: RESAMPLES,
        seed: boot.seed ^ 0xA5A5_A5A5_A5A5_A5A5,
    };
    Some(bootstrap_median_ratios(&b, &b, &aa))
}

/// [`measure`] for paired rounds: the ratio is the median of the per-pair ratios of round
/// medians, resampled by pair; the floor is their spread; the minimum detectable effect comes
/// from the same ratios centred on 1.
fn measure_pairs(
    row: &mut RowComparison,
    pairs: &[(&Row, &Row)],
    key: &RowKey,
    opts: &CompareOptions,
    index: u64,
) -> Option<Vec<f64>> {
    let mut ratios = Vec::with_capacity(pairs.len());
    let (mut b_med, mut c_med) = (Vec::new(), Vec::new());
    for (b, c) in pairs {
        let (b, c) = (round_median(b)?, round_median(c)?);
        if b <= 0.0 {
            return None;
        }
        ratios.push(c / b);
        b_med.push(b);
        c_med.push(c);
    }
    let r = Sample::new(ratios).ok()?;
    let boot = Bootstrap {
        resamples: RESAMPLES,
        seed: opts.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    let dist = bootstrap_medians(&r, &boot);
    let ratio = r.median();
    row.resampled = Some(Resampled::Pairs);
    row.base_median_s = Sample::new(b_med).ok().map(|s| s.median());
    row.candidate_median_s = Sample::new(c_med).ok().map(|s| s.median());
    row.ratio = Some(ratio);
    row.ci95 = Some([
        quantile_of_sorted(&dist, 0.025)?,
        quantile_of_sorted(&dist, 0.975)?,
    ]);
    if ratio > 0.0 {
        row.noise_floor_rounds = Some(2.0 * MAD_TO_SIGMA * r.mad() / ratio);
    }
    finish_tests(row, &dist, key, opts);
    // The same pairs centred on 1: how far the median of the ratios moves by chance.
    let centred = Sample::new(r.values().iter().map(|x| x / ratio).collect()).ok()?;
    let aa = Bootstrap {
        resamples: RESAMPLES,
        seed: boot.seed ^ 0xA5A5_A5A5_A5A5_A5A5,
    };
    Some(bootstrap_medians(&centred, &aa))
}

/// The A/A floor, the tolerance and both p-values from a row's bootstrap distribution.
fn finish_tests(row: &mut RowComparison, dist: &[f64], key: &RowKey, opts: &CompareOptions) {
    row.noise_floor_aa = opts
        .noise
        .as_ref()
        .and_then(|n| n.floors.get(&key.text()).copied());
    let t = [
        row.noise_floor_rounds,
        row.noise_floor_aa,
        row.noise_floor_contention,
    ]
    .into_iter()
    .flatten()
    .fold(opts.threshold, f64::max);
    row.tolerance = Some(t);
    let n = dist.len() as f64;
    let slower_null = dist.iter().filter(|&&r| r <= 1.0 + t).count() as f64;
    let faster_null = dist.iter().filter(|&&r| r >= 1.0 / (1.0 + t)).count() as f64;
    row.p_slower = Some((1.0 + slower_null) / (n + 1.0));
    row.p_faster = Some((1.0 + faster_null) / (n + 1.0));
}

/// Whether any round of either side saw steal or a run queue above the thresholds; the note names
/// the side, the round (the row's n-th occurrence) and its file; and the largest oversubscription
/// (run queue / CPUs, when above 1) of those rounds.
fn noise(
    b: (&Side, &[(usize, &Row)]),
    c: (&Side, &[(usize, &Row)]),
) -> (bool, Option<String>, Option<f64>) {
    let mut notes = Vec::new();
    let mut contention: Option<f64> = None;
    for (name, (side, rows)) in [("base", b), ("candidate", c)] {
        for (round, (file, r)) in rows.iter().enumerate() {
            let Some(n) = r.noise else { continue };
            let file = side
                .rounds
                .get(*file)
                .and_then(|(p, _)| p.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let at = format!("{name} round {} ({file})", round + 1);
            if let Some(s) = n.steal_pct.filter(|s| *s > NOISY_STEAL_PCT) {
                notes.push(format!("{at}: steal {s:.1}%"));
            }
            if let (Some(q), Some(cpus)) = (n.run_queue_median, n.online_cpus) {
                if q > cpus as f64 + NOISY_RUN_QUEUE_EXCESS {
                    notes.push(format!("{at}: run queue {q} on {cpus} CPUs"));
                    if cpus > 0 {
                        let f = q / cpus as f64;
                        contention = Some(contention.map_or(f, |c| c.max(f)));
                    }
                }
            }
        }
    }
    // Memory-bound rows: the read of their own inputs alongside, median over each side's rounds.
    let read = |rows: &[(usize, &Row)]| {
        let v: Vec<f64> = rows
            .iter()
            .filter_map(|(_, r)| r.read_alongside.as_ref().map(|a| a.median_gbs))
            .collect();
        Sample::from_slice(&v).ok().map(|s| s.median())
    };
    if let (Some(rb), Some(rc)) = (read(b.1), read(c.1)) {
        if rb.max(rc) > (1.0 + NOISY_READ_ALONGSIDE) * rb.min(rc) {
            notes.push(format!(
                "its inputs read alongside at {rb:.1} GB/s (base) and {rc:.1} GB/s (candidate), \
                 medians of the rounds: the memory moved"
            ));
        }
    }
    if notes.is_empty() {
        (false, None, None)
    } else {
        (true, Some(notes.join("; ")), contention)
    }
}

/// Kernel parameters whose values differ between the sides' first rows.
fn params_changed(b: &[(usize, &Row)], c: &[(usize, &Row)]) -> Vec<ParamChange> {
    let params = |rows: &[(usize, &Row)]| {
        rows.first()
            .and_then(|(_, r)| r.kernel.as_ref())
            .map(|k| k.params.clone())
            .unwrap_or_default()
    };
    let (pb, pc) = (params(b), params(c));
    let mut names: Vec<&String> = pb.keys().chain(pc.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let vb = pb.get(name).cloned().unwrap_or(serde_json::Value::Null);
            let vc = pc.get(name).cloned().unwrap_or(serde_json::Value::Null);
            (vb != vc).then(|| ParamChange {
                name: name.clone(),
                base: vb,
                candidate: vc,
            })
        })
        .collect()
}
