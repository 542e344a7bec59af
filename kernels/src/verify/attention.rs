//! Verification of attention outputs, in the style of the flash-attention tests: the error of
//! the kernel against a float64 reference may be at most **2×** the error of a naive computation
//! at the same precision, plus an absolute floor of **4·u_out**:
//!
//! ```text
//! error       = max over checked rows and d of |O − O_ref| / ((P·|V|)_d + floor)
//! naive_error = the same measure for the naive same-precision result of the same rows
//! bound       = 2 · naive_error + 4 · u_out
//! ```
//!
//! - `O_ref` is `softmax(scale · q·Kᵀ, masked) · V` in f64 from the *stored* (rounded) inputs
//!   (every dtype widens exactly to f32, then f64); `P` is its softmax, and `(P·|V|)_d =
//!   Σ_j p_j |V_jd|` is the attention analogue of matmul's `|A|·|B|` (O is a p-weighted average of
//!   V rows). `floor` is the smallest normal of the output type plus that of f32, as for matmul.
//! - The naive same-precision result follows the `naive` kernel's arithmetic, written out again
//!   here so a bug in the kernel cannot loosen its own bound: f32 dot products `q·k_j` summed in
//!   order, times `scale`, exact max, `exp` (libm), f32 sum, f32 `Σ_j p_j·V_j`, times `1/l`, one
//!   rounding to the output type. Its error is dominated by that final rounding (≤ u_out·|O|),
//!   so the bound is about `6·u_out` on random inputs and grows only where the naive computation
//!   itself loses accuracy (e.g. logits of magnitude 1e4, where the f32 error of `q·k` is
//!   amplified by the exponential): a kernel no worse than 2× naive passes.
//! - The floor `4·u_out` (2^-22 for f32, 2^-9 for f16, 2^-6 for bf16) covers a kernel whose own
//!   output rounding lands on the other side of a tie, and reorderings of the f32 sums that the
//!   naive computation happens to get luckier on.
//! - Up to [`VerifyOptions::attention_full_cap_flops`] of reference work (`4·D·unmasked pairs·heads`) every
//!   query row is checked (`method = "full"`); above it `4 × sample_rows` (64 by default) query
//!   rows drawn at random from the seed (`method = "rows"`), the naive result computed for those
//!   rows only, after a scan of the whole output for NaN/inf.
//!
//! What it can see (measured by `tests/attention_mutations.rs`): structural bugs — a wrong KV
//! head for a GQA group, a mask off by one where a row sees few keys, a missing rescale of the
//! accumulator when the running max moves — fail at every precision. With near-flat softmax over
//! thousands of keys (random inputs at 1/√D), one key more or less moves O by ~1/kv_len, below
//! the bf16/f16 floor: f32 sees it, bf16 cannot, and no bound of this form could.

use super::{Verdict, Verification, VerifyOptions};
use crate::dtype::{DType, SplitMix64, Tensor};
use crate::problem::{AttentionProblem, Precision};
use crate::reference::widen_range;
use rayon::prelude::*;
use std::collections::BTreeSet;

/// The factor on the naive error: **2** (flash-attention's convention).
pub const ATTENTION_NAIVE_FACTOR: f64 = 2.0;
/// The absolute floor in units of the output's unit roundoff: **4**.
pub const ATTENTION_FLOOR_UNITS: f64 = 4.0;

/// `2 · naive_error + 4 · u_out`.
pub fn attention_bound(precision: Precision, naive_error: f64) -> f64 {
    ATTENTION_NAIVE_FACTOR * naive_error + ATTENTION_FLOOR_UNITS * precision.output.unit_roundoff()
}

/// Smallest positive normal of a dtype (bf16 shares f32's exponent range).
fn min_normal(dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::BF16 => f64::powi(2.0, -126),
        DType::F16 => f64::powi(2.0, -14),
    }
}

/// The floor added to `(P·|V|)_d`: smallest normal of the output type plus that of f32.
pub fn attention_scale_floor(precision: Precision) -> f64 {
    min_normal(precision.output) + min_normal(DType::F32)
}

/// Reference work of a full check: `4 · head_dim · unmasked pairs · batch · q_heads`.
pub fn reference_flops(p: &AttentionProblem) -> u128 {
    4 * p.head_dim as u128 * p.unmasked_pairs() as u128 * (p.batch * p.q_heads) as u128
}

/// One query row's f64 reference `O_ref` and scale `P·|V|` (each `head_dim` long), from the row
/// `q` and the KV head's `k`, `v` (`[kv_len, head_dim]`, widened), for query index `i`.
pub fn reference_row(
    p: &AttentionProblem,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    i: usize,
) -> (Vec<f64>, Vec<f64>) {
    let d = p.head_dim;
    let keys = p.keys_for_query(i);
    let s: Vec<f64> = (0..keys)
        .map(|j| {
            let dot: f64 = q
                .iter()
                .zip(&k[j * d..(j + 1) * d])
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            dot * p.scale as f64
        })
        .collect();
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    let mut out = vec![0f64; d];
    let mut den = vec![0f64; d];
    for (j, &ej) in e.iter().enumerate() {
        let pj = ej / sum;
        for ((o, dn), &x) in out
            .iter_mut()
            .zip(den.iter_mut())
            .zip(&v[j * d..(j + 1) * d])
        {
            *o += pj * x as f64;
            *dn += pj * (x as f64).abs();
        }
    }
    (out, den)
}

/// One query row computed naively at `precision` (f32 arithmetic, output rounded once), in f64.
pub fn naive_row(
    p: &AttentionProblem,
    precision: Precision,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    i: usize,
) -> Vec<f64> {
    let d = p.head_dim;
    let keys = p.keys_for_query(i);
    let mut s = vec![0f32; keys];
    for (j, sj) in s.iter_mut().enumerate() {
        let mut dot = 0f32;
        for (&a, &b) in q.iter().zip(&k[j * d..(j + 1) * d]) {
            dot += a * b;
        }
        *sj = dot * p.scale;
    }
    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut l = 0f32;
    for x in s.iter_mut() {
        *x = (*x - m).exp();
        l += *x;
    }
    let mut acc = vec![0f32; d];
    for (j, &pj) in s.iter().enumerate() {
        for (a, &x) in acc.iter_mut().zip(&v[j * d..(j + 1) * d]) {
            *a += pj * x;
        }
    }
    let inv = 1.0 / l;
    acc.iter_mut().for_each(|a| *a *= inv);
    Tensor::from_f32(precision.output, &acc).to_f64()
}

/// The worst element seen: where and what.
#[derive(Clone, Debug, Default)]
struct Worst {
    error: f64,
    naive_error: f64,
    /// (batch, head, query, d, output, reference, scale)
    at: Option<(usize, usize, usize, usize, f64, f64, f64)>,
}

impl Worst {
    fn max(self, o: Worst) -> Worst {
        let naive_error = self.naive_error.max(o.naive_error);
        let mut w = match (&self.at, &o.at) {
            (_, None) => self,
            (None, _) => o,
            _ if o.error > self.error => o,
            _ => self,
        };
        w.naive_error = naive_error;
        w
    }
}

/// `count` distinct indices of `0..total` (all when `count ≥ total`), sorted (Floyd's algorithm).
fn sample_indices(total: usize, count: usize, rng: &mut SplitMix64) -> Vec<usize> {
    if count >= total {
        return (0..total).collect();
    }
    let mut chosen = BTreeSet::new();
    for j in total - count..total {
        let t = rng.below(j as u64 + 1) as usize;
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// Verify `out` = attention(`q`, `k`, `v`) for problem `p` computed at `precision`.
///
/// Inputs of the wrong dtype or length fail with a detail (unverifiable, so not a pass).
pub fn verify_attention(
    p: &AttentionProblem,
    precision: Precision,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    out: &Tensor,
    opts: &VerifyOptions,
) -> Verification {
    let full = reference_flops(p) <= opts.attention_full_cap_flops as u128;
    let method = if full { "full" } else { "rows" };
    let u_floor = ATTENTION_FLOOR_UNITS * precision.output.unit_roundoff();
    let refuse = |why: String| Verification {
        method: method.to_string(),
        samples: 0,
        error: f64::INFINITY,
        bound: u_floor,
        verdict: Verdict::Fail,
        detail: Some(why),
    };
    if let Err(e) = p.validate() {
        return refuse(format!("cannot verify: {e}"));
    }
    let (ql, kvl) = (p.q_len_elems(), p.kv_len_elems());
    for (name, t, dtype, len) in [
        ("Q", q, precision.input, ql),
        ("K", k, precision.input, kvl),
        ("V", v, precision.input, kvl),
        ("O", out, precision.output, ql),
    ] {
        if t.dtype() != dtype {
            return refuse(format!(
                "{name} is {}, precision {precision} needs {dtype}",
                t.dtype()
            ));
        }
        if t.len() < len {
            return refuse(format!(
                "cannot verify: buffer `{name}` has {} elements, the problem needs {len}",
                t.len()
            ));
        }
    }
    let d = p.head_dim;
    let total_rows = p.batch * p.q_heads * p.q_len;

    // NaN/inf anywhere fails outright (O(output), cheap next to the rest).
    let bad = (0..total_rows)
        .into_par_iter()
        .find_first(|&r| widen_range(out, r * d, d).iter().any(|x| !x.is_finite()));
    if let Some(r) = bad {
        let o = widen_range(out, r * d, d);
        let col = o.iter().position(|x| !x.is_finite()).unwrap_or(0);
        let (bh, i) = (r / p.q_len, r % p.q_len);
        return Verification {
            method: method.to_string(),
            samples: 0,
            error: f64::INFINITY,
            bound: u_floor,
            verdict: Verdict::Fail,
            detail: Some(format!(
                "{} at batch {}, head {}, query {i}, d {col}",
                o[col],
                bh / p.q_heads,
                bh % p.q_heads
            )),
        };
    }

    let rows = if full {
        (0..total_rows).collect()
    } else {
        let mut rng = SplitMix64::new(opts.seed);
        sample_indices(total_rows, 4 * opts.sample_rows.max(1), &mut rng)
    };
    let floor = attention_scale_floor(precision);
    let group = p.group();
    // Rows are sorted, so rows of one (batch, KV head) are contiguous: widen K/V once for them.
    let kv_of = |r: usize| {
        let bh = r / p.q_len;
        (bh / p.q_heads) * p.kv_heads + (bh % p.q_heads) / group
    };
    let mut worst = Worst::default();
    let mut start = 0;
    while start < rows.len() {
        let bg = kv_of(rows[start]);
        let end = start
            + rows[start..]
                .iter()
                .take_while(|&&r| kv_of(r) == bg)
                .count();
        let kh = widen_range(k, bg * p.kv_len * d, p.kv_len * d);
        let vh = widen_range(v, bg * p.kv_len * d, p.kv_len * d);
        let w = rows[start..end]
            .par_iter()
            .map(|&r| {
                let (bh, i) = (r / p.q_len, r % p.q_len);
                let qrow = widen_range(q, r * d, d);
                let (reference, den) = reference_row(p, &qrow, &kh, &vh, i);
                let naive = naive_row(p, precision, &qrow, &kh, &vh, i);
                let o = widen_range(out, r * d, d);
                let mut w = Worst::default();
                for dd in 0..d {
                    let scale = den[dd] + floor;
                    let e = (o[dd] as f64 - reference[dd]).abs() / scale;
                    let en = (naive[dd] - reference[dd]).abs() / scale;
                    w.naive_error = w.naive_error.max(en);
                    if w.at.is_none() || e > w.error {
                        w.error = e;
                        w.at = Some((
                            bh / p.q_heads,
                            bh % p.q_heads,
                            i,
                            dd,
                            o[dd] as f64,
                            reference[dd],
                            den[dd],
                        ));
                    }
                }
                w
            })
            .reduce(Worst::default, Worst::max);
        worst = worst.max(w);
        start = end;
    }
    let bound = attention_bound(precision, worst.naive_error);
    let verdict = if worst.error <= bound {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let detail = (verdict == Verdict::Fail).then(|| match worst.at {
        Some((b, h, i, dd, o, r, s)) => format!(
            "worst at batch {b}, head {h}, query {i}, d {dd}: output {o:e}, reference {r:e}, \
             P·|V| {s:e}; naive same-precision error {:e}",
            worst.naive_error
        ),
        None => "nothing checked".to_string(),
    });
    Verification {
        method: method.to_string(),
        samples: rows.len() as u64,
        error: worst.error,
        bound,
        verdict,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_arithmetic_and_floors() {
        let bf = Precision::same(DType::BF16);
        assert_eq!(attention_bound(bf, 0.0), 4.0 * f64::powi(2.0, -8));
        assert_eq!(
            attention_bound(Precision::same(DType::F32), 0.25),
            0.5 + 4.0 * f64::powi(2.0, -24)
        );
        assert!(attention_scale_floor(Precision::same(DType::F16)) >= f64::powi(2.0, -14));
    }

    #[test]
    fn reference_of_a_tiny_causal_case() {
        // One head, q_len 2 at the end of kv_len 3, d 1: query 0 sees keys 0..=1, query 1 all.
        let p = AttentionProblem::new(1, 1, 1, 2, 3, 1).causal(true);
        let k = [0.0f32, 0.0, 5.0];
        let v = [1.0f32, 3.0, -2.0];
        let (o, den) = reference_row(&p, &[1.0], &k, &v, 0);
        assert!((o[0] - 2.0).abs() < 1e-15 && (den[0] - 2.0).abs() < 1e-15);
        let (o, _) = reference_row(&p, &[1.0], &k, &v, 1);
        let e = (5.0f64).exp();
        assert!((o[0] - (1.0 + 3.0 - 2.0 * e) / (2.0 + e)).abs() < 1e-14);
        let n = naive_row(&p, Precision::same(DType::F32), &[1.0], &k, &v, 1);
        assert!((n[0] - o[0]).abs() < 1e-6);
    }

    #[test]
    fn sample_indices_are_distinct_and_seeded() {
        let s = sample_indices(1000, 64, &mut SplitMix64::new(3));
        assert_eq!(s.len(), 64);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, sample_indices(1000, 64, &mut SplitMix64::new(3)));
    }
}
