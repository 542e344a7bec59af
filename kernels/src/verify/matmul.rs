//! Verification of kernel outputs against the float64 references of [`crate::reference`].
//!
//! The error is componentwise and scaled: `max_ij |C_ij − Cref_ij| / (|A|·|op(B)|)_ij`, compared
//! with the bound `c · (u_out + K · u_acc)` ([`matmul_bound`], constant [`MATMUL_BOUND_C`]). NaN
//! or ±inf anywhere in the checked output fails, whatever the bound. Only the logical `m × n` of
//! each batch is read: leading-dimension padding (`ldc > n`) is never checked.
//!
//! Up to [`VerifyOptions::full_cap_flops`] of `2·batch·m·n·k` (and [`FULL_MATMUL_MAX_BYTES`] of
//! f64 reference per batch) every element is checked (`method = "full"`), against the whole
//! product ([`MatmulOperands::product`]: ndarray's dgemm, or the reference loop up to 8 rows).
//! Above it, Freivalds' check with random vectors plus a random sample of whole rows checked
//! elementwise (`method = "freivalds+rows"`), after a scan of all of C for NaN/inf.
//!
//! What a check takes from the inputs alone — the product, or the vectors' products `A·(op(B)·x)`
//! and the sampled rows' references — does not depend on the output. [`verify_matmul_shared`]
//! (the runner's entry point) takes it from a cache keyed by the input tensors themselves
//! ([`crate::reference::shared_reference`]), so verifying the same inputs again costs only the
//! output's side: `C·x`, the rows compared, and for the full check every element compared.
//!
//! What the sampled method can and cannot see: Freivalds' row residual `|(C·x)_i − (A·(B·x))_i|`
//! is scaled by `(|A|·(|op(B)|·|x|))_i`, a sum over the whole row, so it only sees an error that is
//! large next to the bound times the whole row: a wrong layout (7–10× the bf16-output bound, more
//! elsewhere), and with f32 output (bound ~K·2^-23) nearly anything. With f16/bf16 output the
//! allowance is 100–700× larger, and K off by one, a single wrong element or a stale tile of a
//! large matrix can hide in the residual (measured in tests/verify_mutations.rs: K off by one at
//! bf16 output gives 0.26–0.99× the bound through Freivalds alone, 5–10× through a row). Those are
//! caught by the sampled rows, with probability about `1 − (1 − rows_hit / (batch·m))^sample_rows`.
//! The full method has no such gap, and it is cheap: 2048³ bf16 (17 GFLOP) verifies fully in
//! 0.69 s on 2 threads (the dgemm reference; the row loop took 2.6 s).

use crate::dtype::{DType, SplitMix64, Tensor};
use crate::problem::{MatmulProblem, Precision};
use crate::reference::{
    c_times, shared_matmul_product, shared_reference, widen_range, MatmulOperands, ReferenceKind,
};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Verdict, Verification, VerifyOptions, FULL_MATMUL_MAX_BYTES};

/// The constant `c` of the matmul bound `c · (u_out + K · u_acc)`: **2**.
///
/// For the stored inputs, with products and sums formed in the accumulation type in any order
/// (blocked, split over `kc` panels, FMA or not), Higham (Accuracy and Stability of Numerical
/// Algorithms, §3.5) gives `|s − AB| ≤ γ_K |A||B|` with `γ_K = K·u_acc / (1 − K·u_acc)`. (f16
/// and bf16 products are even exact in f32.) Rounding `s` once to the output type adds
/// `|ĉ − s| ≤ u_out |s| ≤ u_out (1 + γ_K) |A||B|`. So
/// `|ĉ − AB| ≤ (u_out (1 + γ_K) + γ_K) |A||B| ≤ 2 (u_out + K·u_acc) |A||B|`
/// whenever `K·u_acc ≤ 1/2` (then `γ_K ≤ 2K·u_acc` and `1 + γ_K ≤ 2`), i.e. `K ≤ 2^23` with f32
/// accumulation. A correct kernel can therefore never fail, and the bound is the worst case, not a
/// fudge factor. Measured on the naive and packed kernels (tests/verify_mutations.rs, K ≤ 96):
/// f16/bf16 output reaches 0.24 of the bound (the one output rounding, `u_out·|C|`, dominates),
/// f32 output 0.03 (random accumulation errors grow like √K, not K).
///
/// Gradual underflow is covered by flooring the scale (see [`matmul_scale_floor`]).
pub const MATMUL_BOUND_C: f64 = 2.0;

/// `c · (u_out + K · u_acc)`: the largest scaled error a correct matmul may show.
pub fn matmul_bound(precision: Precision, k: usize) -> f64 {
    MATMUL_BOUND_C * (precision.output.unit_roundoff() + k as f64 * precision.accum.unit_roundoff())
}

/// Smallest positive normal number of a dtype (bf16 shares f32's exponent range).
fn min_normal(dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::BF16 => f64::powi(2.0, -126),
        DType::F16 => f64::powi(2.0, -14),
    }
}

/// The floor added to every scale `(|A|·|op(B)|)_ij`: the smallest normal of the output type plus
/// that of the accumulator.
///
/// Below the normal range rounding is absolute, not relative: at most half a subnormal spacing
/// `η/2 = u · N_min`. Adding `N_min` to the scale turns those terms into `c·u·N_min ≥ η/2` of
/// allowance, so a correct f16-output kernel whose result lands among the subnormals cannot fail.
/// For f16 output the floor is 2^-14 (random inputs in [-1, 1] give scales near `K/4`, so it is
/// invisible); for f32/bf16 it is 2^-125. With a zero scale (a zero row of A or column of B) the
/// check still demands the exact zero up to one subnormal spacing.
pub fn matmul_scale_floor(precision: Precision) -> f64 {
    min_normal(precision.output) + min_normal(precision.accum)
}

/// `|out − reference| / scale`, with the scale guarded against zero (`f64::MIN_POSITIVE`, so a
/// zero scale demands an exact result), NaN mapped to `+inf` (a NaN reference can't be passed).
#[inline]
fn ratio(diff: f64, scale: f64) -> f64 {
    let scale = if scale >= f64::MIN_POSITIVE {
        scale
    } else {
        f64::MIN_POSITIVE
    };
    let e = diff.abs() / scale;
    if e.is_nan() {
        f64::INFINITY
    } else {
        e
    }
}

/// The largest componentwise scaled error `|out_i − reference_i| / scale_i` and its index (the
/// first, on ties; `None` for empty slices). A non-finite `out_i` gives `(f64::INFINITY, Some(i))`
/// at the first one; a zero scale is guarded (`f64::MIN_POSITIVE`), so it requires an exact match.
///
/// Generic over kernels: pass whatever scale the kernel's bound is stated for.
pub fn scaled_error(out: &[f64], reference: &[f64], scale: &[f64]) -> (f64, Option<usize>) {
    assert_eq!(out.len(), reference.len(), "out and reference lengths");
    assert_eq!(out.len(), scale.len(), "out and scale lengths");
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        return (f64::INFINITY, Some(i));
    }
    let mut worst = (0f64, None);
    for (i, ((&o, &r), &s)) in out.iter().zip(reference).zip(scale).enumerate() {
        let e = ratio(o - r, s);
        if worst.1.is_none() || e > worst.0 {
            worst = (e, Some(i));
        }
    }
    worst
}

/// The worst element seen so far: where, its values, and its scaled error.
#[derive(Clone, Debug)]
struct Worst {
    error: f64,
    what: Where,
}

#[derive(Clone, Debug)]
enum Where {
    /// Nothing checked yet.
    Nothing,
    /// A non-finite output.
    NonFinite {
        batch: usize,
        row: usize,
        col: usize,
        value: f64,
    },
    /// An element checked against the reference.
    Element {
        batch: usize,
        row: usize,
        col: usize,
        out: f64,
        reference: f64,
        scale: f64,
    },
    /// A row of Freivalds' check.
    Freivalds {
        vector: usize,
        batch: usize,
        row: usize,
        cx: f64,
        abx: f64,
        scale: f64,
    },
}

impl Worst {
    const NONE: Worst = Worst {
        error: 0.0,
        what: Where::Nothing,
    };

    /// The larger of two; on ties the left one (rayon's `reduce` keeps operand order, so the
    /// first location in row order wins).
    fn max(self, other: Worst) -> Worst {
        match (&self.what, &other.what) {
            (_, Where::Nothing) => self,
            (Where::Nothing, _) => other,
            _ if other.error > self.error => other,
            _ => self,
        }
    }

    fn describe(&self) -> Option<String> {
        Some(match self.what {
            Where::Nothing => return None,
            Where::NonFinite {
                batch,
                row,
                col,
                value,
            } => {
                let what = if value.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("{value}")
                };
                format!("{what} at batch {batch}, row {row}, col {col}")
            }
            Where::Element {
                batch,
                row,
                col,
                out,
                reference,
                scale,
            } => format!(
                "worst at batch {batch}, row {row}, col {col}: output {out:e}, reference \
                 {reference:e}, |A|·|B| {scale:e}"
            ),
            Where::Freivalds {
                vector,
                batch,
                row,
                cx,
                abx,
                scale,
            } => format!(
                "Freivalds vector {vector}, batch {batch}, row {row}: C·x {cx:e}, A·(B·x) {abx:e}, \
                 |A|·(|B|·|x|) {scale:e}"
            ),
        })
    }
}

/// Check row `i` of batch `batch` of `c` elementwise against its reference row and the row of
/// `|A|·|op(B)|` (`scale`, floored here).
fn check_row(
    p: &MatmulProblem,
    c: &Tensor,
    floor: f64,
    batch: usize,
    i: usize,
    reference: &[f64],
    scale: &[f64],
) -> Worst {
    let out: Vec<f64> = widen_range(c, batch * p.c_stride() + i * p.ldc, p.n)
        .into_iter()
        .map(f64::from)
        .collect();
    let scale: Vec<f64> = scale.iter().map(|s| s + floor).collect();
    match scaled_error(&out, reference, &scale) {
        (_, None) => Worst::NONE,
        (error, Some(col)) if !out[col].is_finite() => Worst {
            error,
            what: Where::NonFinite {
                batch,
                row: i,
                col,
                value: out[col],
            },
        },
        (error, Some(col)) => Worst {
            error,
            what: Where::Element {
                batch,
                row: i,
                col,
                out: out[col],
                reference: reference[col],
                scale: scale[col],
            },
        },
    }
}

/// The first NaN/inf in the logical `m × n` of every batch of `c`, in row order.
fn first_non_finite(p: &MatmulProblem, c: &Tensor) -> Worst {
    (0..p.batch * p.m)
        .into_par_iter()
        .map(|r| {
            let (batch, row) = (r / p.m, r % p.m);
            let out = widen_range(c, batch * p.c_stride() + row * p.ldc, p.n);
            match out.iter().position(|x| !x.is_finite()) {
                Some(col) => Worst {
                    error: f64::INFINITY,
                    what: Where::NonFinite {
                        batch,
                        row,
                        col,
                        value: out[col] as f64,
                    },
                },
                None => Worst::NONE,
            }
        })
        .reduce(|| Worst::NONE, Worst::max)
}

/// `count` distinct indices of `0..total` (all of them when `count ≥ total`), sorted, uniformly
/// at random (Floyd's algorithm: `count` draws whatever `total` is).
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

/// A Freivalds vector: random signs, magnitudes uniform in [0.5, 1). Continuous values make an
/// exact cancellation of errors in a row a probability-zero event (with ±1 two opposite errors
/// cancel half the time); magnitudes ≥ 0.5 keep every column's weight in the residual.
fn freivalds_vector(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let mag = 0.5 + 0.5 * rng.next_f64();
            if rng.next_u64() & 1 == 0 {
                mag
            } else {
                -mag
            }
        })
        .collect()
}

/// Verify `c = a · op(b)` for problem `p` computed at `precision`.
///
/// Inputs whose dtypes don't match `precision`, or buffers shorter than the problem, fail with a
/// detail (they can't be verified, so they can't pass).
pub fn verify_matmul(
    p: &MatmulProblem,
    precision: Precision,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    opts: &VerifyOptions,
) -> Verification {
    verify_matmul_with(p, precision, a, b, c, opts, None)
}

/// [`verify_matmul`] for inputs held in `Arc`s (the runner's, shared by the rows of a case): what
/// the check takes from the inputs alone (the full reference of each batch, or the sampled
/// check's vector products and rows) is computed once for the same inputs
/// ([`shared_reference`]), however often they are verified.
pub fn verify_matmul_shared(
    p: &MatmulProblem,
    precision: Precision,
    a: &Arc<Tensor>,
    b: &Arc<Tensor>,
    c: &Tensor,
    opts: &VerifyOptions,
) -> Verification {
    verify_matmul_with(p, precision, a, b, c, opts, Some((a, b)))
}

/// What the sampled check takes from the inputs alone (computed in the order the check draws
/// its random numbers: the sampled rows, then each batch's vectors).
struct SampledReference {
    batches: Vec<SampledBatch>,
    /// Rows sampled in all.
    rows: u64,
}

/// One batch of a [`SampledReference`].
struct SampledBatch {
    vectors: Vec<VectorReference>,
    /// The batch's sampled rows: (row, reference, scale).
    rows: Vec<(usize, Vec<f64>, Vec<f64>)>,
}

/// One random vector `x` of Freivalds' check with `A·(op(B)·x)` and `|A|·(|op(B)|·|x|)`.
struct VectorReference {
    x: Vec<f64>,
    x_abs: f64,
    abx: Vec<f64>,
    abs_abx: Vec<f64>,
}

impl SampledReference {
    fn new(p: &MatmulProblem, a: &Tensor, b: &Tensor, opts: &VerifyOptions) -> Self {
        let mut rng = SplitMix64::new(opts.seed);
        let rows = sample_indices(p.batch * p.m, opts.sample_rows, &mut rng);
        let batches = (0..p.batch)
            .map(|batch| {
                let ops = MatmulOperands::new(p, a, b, batch);
                let vectors = (0..opts.freivalds_vectors)
                    .map(|_| {
                        let x = freivalds_vector(p.n, &mut rng);
                        let (y, ya) = ops.b_times(&x);
                        let (abx, abs_abx) = ops.a_times(&y, &ya);
                        VectorReference {
                            x_abs: x.iter().map(|v| v.abs()).sum(),
                            x,
                            abx,
                            abs_abx,
                        }
                    })
                    .collect();
                let lo = rows.partition_point(|&r| r < batch * p.m);
                let hi = rows.partition_point(|&r| r < (batch + 1) * p.m);
                let rows = rows[lo..hi]
                    .par_iter()
                    .map(|&r| {
                        let i = r - batch * p.m;
                        let (reference, scale) = ops.row(i);
                        (i, reference, scale)
                    })
                    .collect();
                SampledBatch { vectors, rows }
            })
            .collect();
        SampledReference {
            batches,
            rows: rows.len() as u64,
        }
    }

    fn bytes(&self) -> usize {
        let v: usize = self
            .batches
            .iter()
            .map(|b| {
                b.vectors
                    .iter()
                    .map(|v| v.x.len() + v.abx.len() + v.abs_abx.len())
                    .sum::<usize>()
                    + b.rows.iter().map(|r| r.1.len() + r.2.len()).sum::<usize>()
            })
            .sum();
        8 * v
    }
}

/// [`verify_matmul`], with what the check takes from the inputs alone shared through the cache
/// when `shared` holds the inputs' `Arc`s (taken only once the inputs' dtypes and lengths have
/// been checked).
fn verify_matmul_with(
    p: &MatmulProblem,
    precision: Precision,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    opts: &VerifyOptions,
    shared: Option<(&Arc<Tensor>, &Arc<Tensor>)>,
) -> Verification {
    let bound = matmul_bound(precision, p.k);
    let flops = 2 * p.batch as u128 * p.m as u128 * p.n as u128 * p.k as u128;
    let ref_bytes = 8 * (p.m * p.k + p.k * p.n + 2 * p.m * p.n) as u128;
    let full = flops <= opts.full_cap_flops as u128 && ref_bytes <= FULL_MATMUL_MAX_BYTES as u128;
    let method = if full { "full" } else { "freivalds+rows" };
    let finish = |samples: u64, worst: Worst| {
        let verdict = if worst.error <= bound {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        Verification {
            method: method.to_string(),
            samples,
            error: worst.error,
            bound,
            detail: if verdict == Verdict::Fail {
                worst.describe()
            } else {
                None
            },
            verdict,
        }
    };
    let refuse = |why: String| Verification {
        method: method.to_string(),
        samples: 0,
        error: f64::INFINITY,
        bound,
        verdict: Verdict::Fail,
        detail: Some(why),
    };

    for (name, t, want) in [
        ("A", a, precision.input),
        ("B", b, precision.input),
        ("C", c, precision.output),
    ] {
        if t.dtype() != want {
            return refuse(format!(
                "{name} is {}, precision {precision} needs {want}",
                t.dtype()
            ));
        }
    }
    if let Err(e) = p.check_buffers(a.len(), b.len(), c.len()) {
        return refuse(format!("cannot verify: {e}"));
    }
    let floor = matmul_scale_floor(precision);

    if full {
        let mut worst = Worst::NONE;
        for batch in 0..p.batch {
            // The product of these inputs, computed once for every output verified against it.
            let product = match shared {
                Some((a, b)) => shared_matmul_product(p, a, b, batch),
                None => Arc::new(MatmulOperands::new(p, a, b, batch).product()),
            };
            let (reference, scale) = (&product.0, &product.1);
            let w = reference
                .par_chunks(p.n)
                .zip(scale.par_chunks(p.n))
                .enumerate()
                .map(|(i, (r, s))| check_row(p, c, floor, batch, i, r, s))
                .reduce(|| Worst::NONE, Worst::max);
            worst = worst.max(w);
        }
        return finish((p.batch * p.m) as u64, worst);
    }

    // Sampled: NaN/inf anywhere fails outright (the scan is O(m·n), cheap next to the rest).
    let nan = first_non_finite(p, c);
    if !matches!(nan.what, Where::Nothing) {
        return finish(0, nan);
    }
    let sampled = match shared {
        Some((a, b)) => {
            let kind = ReferenceKind::Sampled {
                seed: opts.seed,
                rows: opts.sample_rows,
                vectors: opts.freivalds_vectors,
            };
            shared_reference(p, a, b, kind, || {
                let r = SampledReference::new(p, a, b, opts);
                let bytes = r.bytes();
                (r, bytes)
            })
        }
        None => Arc::new(SampledReference::new(p, a, b, opts)),
    };
    let mut worst = Worst::NONE;
    for (batch, sb) in sampled.batches.iter().enumerate() {
        for (vector, v) in sb.vectors.iter().enumerate() {
            let cx = c_times(p, c, batch, &v.x);
            for (row, ((&cx, &abx), &abs_abx)) in cx.iter().zip(&v.abx).zip(&v.abs_abx).enumerate()
            {
                // Σ_j (S_ij + floor)|x_j| bounds the row residual of a correct kernel.
                let scale = abs_abx + floor * v.x_abs;
                let w = Worst {
                    error: ratio(cx - abx, scale),
                    what: Where::Freivalds {
                        vector,
                        batch,
                        row,
                        cx,
                        abx,
                        scale,
                    },
                };
                worst = worst.max(w);
            }
        }
        let w = sb
            .rows
            .par_iter()
            .map(|(i, reference, scale)| check_row(p, c, floor, batch, *i, reference, scale))
            .reduce(|| Worst::NONE, Worst::max);
        worst = worst.max(w);
    }
    finish(sampled.rows, worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::matmul::naive_matmul;
    use crate::dtype::Element;
    use half::{bf16, f16};

    fn prec(input: DType, output: DType) -> Precision {
        Precision {
            input,
            accum: DType::F32,
            output,
        }
    }

    /// `C` of the naive kernel (f32 accumulation) for typed inputs and output.
    fn naive<T: Element, O: Element>(p: &MatmulProblem, a: &Tensor, b: &Tensor) -> Tensor {
        let mut c = vec![O::nan(); p.c_len()];
        let (a, b) = (T::tensor_slice(a).unwrap(), T::tensor_slice(b).unwrap());
        naive_matmul::<T, O>(p, a, b, &mut c).unwrap();
        O::into_tensor(c)
    }

    fn set(c: &mut Tensor, i: usize, v: f32) {
        match c {
            Tensor::F32(x) => x[i] = v,
            Tensor::F16(x) => x[i] = f16::from_f32(v),
            Tensor::BF16(x) => x[i] = bf16::from_f32(v),
        }
    }

    fn sampled() -> VerifyOptions {
        VerifyOptions {
            full_cap_flops: 0,
            ..VerifyOptions::default()
        }
    }

    #[test]
    fn bound_arithmetic() {
        let u24 = f64::powi(2.0, -24);
        assert_eq!(
            matmul_bound(Precision::same(DType::F32), 96),
            2.0 * 97.0 * u24
        );
        assert_eq!(
            matmul_bound(Precision::same(DType::BF16), 1024),
            2.0 * (f64::powi(2.0, -8) + 1024.0 * u24)
        );
        assert_eq!(
            matmul_bound(Precision::same(DType::F16), 2048),
            2.0 * (f64::powi(2.0, -11) + 2048.0 * u24)
        );
        assert_eq!(matmul_bound(Precision::widening(DType::F16), 1), 4.0 * u24);
        assert_eq!(
            matmul_scale_floor(Precision::same(DType::F16)),
            2f64.powi(-14) + 2f64.powi(-126)
        );
    }

    #[test]
    fn scaled_error_cases() {
        assert_eq!(scaled_error(&[], &[], &[]), (0.0, None));
        assert_eq!(
            scaled_error(&[1.0, 2.5, 3.0], &[1.0, 2.0, 2.0], &[1.0, 1.0, 4.0]),
            (0.5, Some(1))
        );
        // A zero scale demands an exact result.
        assert_eq!(scaled_error(&[0.0], &[0.0], &[0.0]), (0.0, Some(0)));
        assert!(scaled_error(&[1e-300], &[0.0], &[0.0]).0 > 1e7);
        // Non-finite outputs and references never pass.
        assert_eq!(
            scaled_error(&[1.0, f64::NAN], &[1.0, 1.0], &[1.0; 2]),
            (f64::INFINITY, Some(1))
        );
        assert_eq!(
            scaled_error(&[f64::NEG_INFINITY], &[1.0], &[1.0]),
            (f64::INFINITY, Some(0))
        );
        assert_eq!(scaled_error(&[1.0], &[f64::NAN], &[1.0]).0, f64::INFINITY);
        assert_eq!(scaled_error(&[1.0], &[1.0], &[f64::NAN]).0, 0.0);
    }

    #[test]
    fn exact_small_integers_pass_with_zero_error() {
        let p = MatmulProblem::new(5, 6, 7).with_leading_dims(9, 8, 10);
        let ints = |len: usize, s: usize| -> Vec<f32> {
            (0..len).map(|i| ((i * 7 + s) % 9) as f32 - 4.0).collect()
        };
        for (input, output) in [(DType::F32, DType::F32), (DType::BF16, DType::BF16)] {
            let a = Tensor::from_f32(input, &ints(p.a_len(), 1));
            let b = Tensor::from_f32(input, &ints(p.b_len(), 2));
            let c = match input {
                DType::F32 => naive::<f32, f32>(&p, &a, &b),
                _ => naive::<bf16, bf16>(&p, &a, &b),
            };
            for opts in [VerifyOptions::default(), sampled()] {
                let v = verify_matmul(&p, prec(input, output), &a, &b, &c, &opts);
                assert_eq!(v.verdict, Verdict::Pass, "{v:?}");
                // Elementwise checks are exact; Freivalds' two f64 products associate
                // differently (error ~1e-17, far below any bound).
                if v.method == "full" {
                    assert_eq!(v.error, 0.0);
                } else {
                    assert!(v.error < 1e-14, "{v:?}");
                }
                assert_eq!(v.detail, None);
            }
        }
    }

    #[test]
    fn zero_rows_need_exact_zeros() {
        // Row 2 of A is zero: its outputs must be exactly zero (scale = floor only).
        let p = MatmulProblem::new(4, 5, 6);
        let mut av: Vec<f32> = (0..p.a_len()).map(|i| (i % 5) as f32 - 2.0).collect();
        av[12..18].iter_mut().for_each(|x| *x = 0.0);
        for dtype in DType::ALL {
            let prec = Precision::same(dtype);
            let a = Tensor::from_f32(dtype, &av);
            let b = Tensor::random(dtype, p.b_len(), 3);
            let mut c = match dtype {
                DType::F32 => naive::<f32, f32>(&p, &a, &b),
                DType::F16 => naive::<f16, f16>(&p, &a, &b),
                DType::BF16 => naive::<bf16, bf16>(&p, &a, &b),
            };
            let v = verify_matmul(&p, prec, &a, &b, &c, &VerifyOptions::default());
            assert_eq!(v.verdict, Verdict::Pass, "{dtype}: {v:?}");
            set(&mut c, 2 * p.ldc + 3, 1e-3);
            let v = verify_matmul(&p, prec, &a, &b, &c, &VerifyOptions::default());
            assert_eq!(v.verdict, Verdict::Fail, "{dtype}: {v:?}");
            assert!(v.detail.unwrap().contains("batch 0, row 2, col 3"));
        }
    }

    #[test]
    fn nan_and_inf_fail_and_padding_is_ignored() {
        let p = MatmulProblem::new(23, 17, 40)
            .transposed_b()
            .with_leading_dims(41, 43, 20);
        let prec = Precision::same(DType::F16);
        let a = Tensor::random(DType::F16, p.a_len(), 1);
        let b = Tensor::random(DType::F16, p.b_len(), 2);
        // naive leaves the padding columns as the NaN poison: they are not checked.
        let good = naive::<f16, f16>(&p, &a, &b);
        assert!(good.get_f64(17).is_nan());
        for opts in [VerifyOptions::default(), sampled()] {
            let v = verify_matmul(&p, prec, &a, &b, &good, &opts);
            assert_eq!(v.verdict, Verdict::Pass, "{v:?}");
            assert!(v.error > 0.0 && v.error < v.bound, "{v:?}");
            for (val, name) in [
                (f32::NAN, "NaN"),
                (f32::INFINITY, "inf"),
                (f32::NEG_INFINITY, "-inf"),
            ] {
                let mut c = good.clone();
                set(&mut c, 3 * p.ldc + 7, val);
                let v = verify_matmul(&p, prec, &a, &b, &c, &opts);
                assert_eq!(v.verdict, Verdict::Fail, "{v:?}");
                assert_eq!(v.error, f64::INFINITY);
                assert_eq!(
                    v.detail.as_deref(),
                    Some(&*format!("{name} at batch 0, row 3, col 7"))
                );
            }
        }
    }

    #[test]
    fn sampled_path_on_a_medium_shape() {
        let p = MatmulProblem::new(150, 70, 90)
            .with_batch(2)
            .with_leading_dims(91, 72, 75);
        let prec = Precision::widening(DType::BF16);
        let a = Tensor::random(DType::BF16, p.a_len(), 11);
        let b = Tensor::random(DType::BF16, p.b_len(), 12);
        let good = naive::<bf16, f32>(&p, &a, &b);
        let opts = VerifyOptions {
            full_cap_flops: 1_000_000,
            ..VerifyOptions::default()
        };
        let v = verify_matmul(&p, prec, &a, &b, &good, &opts);
        assert_eq!(v.method, "freivalds+rows");
        assert_eq!(v.samples, 16);
        assert_eq!(v.verdict, Verdict::Pass, "{v:?}");
        assert!(v.error > 0.0);
        // Same seed, same verdict and error; the full method agrees on the verdict.
        assert_eq!(verify_matmul(&p, prec, &a, &b, &good, &opts), v);
        let full = verify_matmul(&p, prec, &a, &b, &good, &VerifyOptions::default());
        assert_eq!((full.method.as_str(), full.samples), ("full", 300));
        assert_eq!(full.verdict, Verdict::Pass);
        // One element of the second batch off by 1 (|C| ~ 3, |A|·|B| ~ 22): Freivalds' residual
        // ≥ 0.5 against a row scale ~ 1200 is ~40× the f32-output bound (1.1e-5).
        let mut bad = good.clone();
        let at = p.c_stride() + 77 * p.ldc + 5;
        let wrong = (good.get_f64(at) + 1.0) as f32;
        set(&mut bad, at, wrong);
        let v = verify_matmul(&p, prec, &a, &b, &bad, &opts);
        assert_eq!(v.verdict, Verdict::Fail, "{v:?}");
        assert!(v.detail.unwrap().contains("batch 1, row 77"));
    }

    /// The runner's entry point: with the reference taken from the cache after the first call,
    /// every output is still checked — a good one passes, one wrong element fails — with the
    /// same verdicts and errors as [`verify_matmul`], full and sampled, in both layouts and
    /// across batches.
    #[test]
    fn shared_reference_checks_every_output() {
        for trans_b in [false, true] {
            let mut p = MatmulProblem::new(5, 40, 33).with_batch(2);
            if trans_b {
                p = p.transposed_b();
            }
            let prec = Precision::same(DType::F16);
            let a = Arc::new(Tensor::random(DType::F16, p.a_len(), 21));
            let b = Arc::new(Tensor::random(DType::F16, p.b_len(), 22));
            let good = naive::<f16, f16>(&p, &a, &b);
            let mut bad = good.clone();
            let at = p.c_stride() + 3 * p.ldc + 9;
            set(&mut bad, at, (good.get_f64(at) + 0.5) as f32);
            for (opts, method) in [
                (VerifyOptions::default(), "full"),
                (sampled(), "freivalds+rows"),
            ] {
                for _ in 0..2 {
                    for (c, verdict) in [(&good, Verdict::Pass), (&bad, Verdict::Fail)] {
                        let v = verify_matmul_shared(&p, prec, &a, &b, c, &opts);
                        assert_eq!((v.method.as_str(), v.verdict), (method, verdict), "{v:?}");
                        assert_eq!(v, verify_matmul(&p, prec, &a, &b, c, &opts));
                    }
                }
            }
        }
    }

    /// The sampled check's input side draws its random numbers in the order the check always
    /// has (the sampled rows, then each batch's vectors in turn), so a seed keeps its rows,
    /// vectors and verdicts; its products are Freivalds' of the reference module.
    #[test]
    fn sampled_reference_keeps_the_draw_order() {
        let p = MatmulProblem::new(30, 21, 17).transposed_b().with_batch(2);
        let a = Tensor::random(DType::BF16, p.a_len(), 31);
        let b = Tensor::random(DType::BF16, p.b_len(), 32);
        let c = Tensor::random(DType::F32, p.c_len(), 33);
        let opts = VerifyOptions {
            sample_rows: 5,
            freivalds_vectors: 3,
            ..sampled()
        };
        let got = SampledReference::new(&p, &a, &b, &opts);
        let mut rng = SplitMix64::new(opts.seed);
        let rows = sample_indices(p.batch * p.m, opts.sample_rows, &mut rng);
        assert_eq!(got.rows, 5);
        let mut got_rows = Vec::new();
        for (batch, sb) in got.batches.iter().enumerate() {
            let ops = MatmulOperands::new(&p, &a, &b, batch);
            assert_eq!(sb.vectors.len(), 3);
            for v in &sb.vectors {
                let x = freivalds_vector(p.n, &mut rng);
                let f = crate::reference::freivalds_products(&p, &ops, &c, batch, &x);
                assert_eq!((&v.x, &v.abx, &v.abs_abx), (&x, &f.abx, &f.abs_abx));
                assert_eq!(v.x_abs, x.iter().map(|v| v.abs()).sum::<f64>());
            }
            for (i, reference, scale) in &sb.rows {
                assert_eq!((reference, scale), (&ops.row(*i).0, &ops.row(*i).1));
                got_rows.push(batch * p.m + i);
            }
        }
        assert_eq!(got_rows, rows);
    }

    #[test]
    fn unverifiable_inputs_fail() {
        let p = MatmulProblem::new(4, 4, 4);
        let a = Tensor::random(DType::F16, 16, 1);
        let c = Tensor::random(DType::F16, 16, 2);
        let v = verify_matmul(
            &p,
            Precision::same(DType::BF16),
            &a,
            &a,
            &c,
            &Default::default(),
        );
        assert_eq!((v.verdict, v.error), (Verdict::Fail, f64::INFINITY));
        let short = Tensor::random(DType::F16, 15, 1);
        let v = verify_matmul(
            &p,
            Precision::same(DType::F16),
            &a,
            &short,
            &c,
            &Default::default(),
        );
        assert_eq!(v.verdict, Verdict::Fail);
        assert!(v.detail.unwrap().contains("buffer `B`"));
    }

    #[test]
    fn sample_indices_are_distinct_sorted_and_seeded() {
        let mut rng = SplitMix64::new(5);
        let s = sample_indices(1000, 16, &mut rng);
        assert_eq!(s.len(), 16);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s[15] < 1000);
        assert_eq!(s, sample_indices(1000, 16, &mut SplitMix64::new(5)));
        assert_eq!(sample_indices(5, 16, &mut rng), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn serializes_lowercase_and_skips_empty_detail() {
        let v = Verification {
            method: "full".into(),
            samples: 3,
            error: 0.25,
            bound: 1.0,
            verdict: Verdict::Pass,
            detail: None,
        };
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(
            s,
            r#"{"method":"full","samples":3,"error":0.25,"bound":1.0,"verdict":"pass"}"#
        );
        assert_eq!(serde_json::from_str::<Verification>(&s).unwrap(), v);
    }
}
