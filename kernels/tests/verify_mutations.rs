//! Mutation tests of matmul verification: kernels broken on purpose must FAIL, the real kernels
//! must PASS, for every CPU precision, with the full method and with the sampled one.
//!
//! Each mutant is a small naive loop, broken in one way: K off by one, B read in the other layout,
//! a stale tile (one MR×NR block left from a run on other inputs), an unwritten element left as
//! the NaN poison, and an unwritten tile or element left as 0 (as if the poisoning were missing).
//!
//! A mutant is only a test if the shape makes it detectable in principle, so each one is run
//! alongside the exact (f64) value of what it computes, `M`, and the scale of its own rounding,
//! `S' = |A'|·|B'|` of the terms it used. Its output `ĉ'` is within `bound·S'` of `M` (it is a
//! correctly rounded sum of those terms), hence every correct verifier must report at least
//!
//! ```text
//! lower_bound = max_ij (|M_ij − C_ij| − bound·S'_ij) / (S_ij + floor)
//! ```
//!
//! (`C`, `S` the true product and its scale). The tests assert `lower_bound > bound` — the shape
//! cannot hide the mutant — then `verdict == Fail`, and for the full method `error ≥ lower_bound`.
//! With verification disabled (always `Pass`) every mutant test fails.
//!
//! Why the shapes were chosen (K ≤ 96): the largest allowance is bf16 output,
//! `2·(2^-8 + 96·2^-24) ≈ 7.8e-3`. K off by one drops one term `a·b` with `max |a·b| ≈ 1` over
//! the matrix while `S ≈ K/4 ≤ 24`, a scaled error near 0.04, 5× the bound. At K ≈ 2000 the
//! dropped term (≤ 1/(K/4) ≈ 2e-3) would sit below the bf16 allowance and no bound of this form
//! could see it, which is why the tests stay at small K and the precondition is asserted.

use half::{bf16, f16};
use perfledger_kernels::cpu::matmul::{
    naive_matmul, packed_matmul, packed_matmul_bf16, tile, Blocking, Path, Workspace,
};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::reference::matmul_ref;
use perfledger_kernels::verify::{
    matmul_bound, matmul_scale_floor, verify_matmul, Verdict, Verification, VerifyOptions,
};
use perfledger_kernels::{DType, Element, MatmulProblem, Precision, Tensor};

/// The CPU precision paths: `input-f32-output`.
const PRECISIONS: [(DType, DType); 5] = [
    (DType::F32, DType::F32),
    (DType::F16, DType::F16),
    (DType::BF16, DType::BF16),
    (DType::F16, DType::F32),
    (DType::BF16, DType::F32),
];

fn precision((input, output): (DType, DType)) -> Precision {
    Precision {
        input,
        accum: DType::F32,
        output,
    }
}

/// Call `$f::<T, O>($args)` with the element types of a precision.
macro_rules! typed {
    ($prec:expr, $f:ident($($arg:expr),*)) => {
        match ($prec.input, $prec.output) {
            (DType::F32, DType::F32) => $f::<f32, f32>($($arg),*),
            (DType::F16, DType::F16) => $f::<f16, f16>($($arg),*),
            (DType::F16, DType::F32) => $f::<f16, f32>($($arg),*),
            (DType::BF16, DType::BF16) => $f::<bf16, bf16>($($arg),*),
            (DType::BF16, DType::F32) => $f::<bf16, f32>($($arg),*),
            (i, o) => unreachable!("no CPU path {i} -> {o}"),
        }
    };
}

/// Shapes of the mutants that fit any layout: dense, odd sizes with B transposed and padded
/// leading dimensions, and two padded batches.
fn shapes() -> Vec<MatmulProblem> {
    vec![
        MatmulProblem::new(64, 48, 96),
        MatmulProblem::new(127, 33, 65)
            .transposed_b()
            .with_leading_dims(68, 70, 40),
        MatmulProblem::new(37, 29, 50)
            .with_batch(2)
            .with_leading_dims(53, 31, 30),
    ]
}

/// Shapes with `n = k`, so that B read in the other layout still fits its buffer.
fn square_shapes() -> Vec<MatmulProblem> {
    vec![
        MatmulProblem::new(64, 96, 96),
        MatmulProblem::new(33, 65, 65)
            .transposed_b()
            .with_leading_dims(68, 70, 72),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutant {
    /// Sums over `k − 1` terms.
    KOffByOne,
    /// Reads B in the other layout (`[k, n]` as `[n, k]` or back).
    BTransposed,
    /// One MR×NR tile left from a previous run on other inputs.
    StaleTile,
    /// One element never written: still the NaN poison.
    UnwrittenNan,
    /// One MR×NR tile never written, the output not poisoned: zeros.
    UnwrittenZeroTile,
    /// One element never written, the output not poisoned: a zero.
    UnwrittenZeroElement,
}

impl Mutant {
    const ALL: [Mutant; 6] = [
        Mutant::KOffByOne,
        Mutant::BTransposed,
        Mutant::StaleTile,
        Mutant::UnwrittenNan,
        Mutant::UnwrittenZeroTile,
        Mutant::UnwrittenZeroElement,
    ];

    /// Errors in a single tile or element: the sampled method sees them only in sampled rows
    /// (or when large enough for Freivalds' whole-row residual).
    fn is_local(self) -> bool {
        matches!(
            self,
            Mutant::StaleTile | Mutant::UnwrittenZeroTile | Mutant::UnwrittenZeroElement
        )
    }
}

/// A block of one batch: rows `r0..r1`, columns `c0..c1`.
#[derive(Clone, Copy, Debug)]
struct Region {
    batch: usize,
    rows: (usize, usize),
    cols: (usize, usize),
}

impl Region {
    fn contains(&self, batch: usize, i: usize, j: usize) -> bool {
        batch == self.batch
            && (self.rows.0..self.rows.1).contains(&i)
            && (self.cols.0..self.cols.1).contains(&j)
    }
}

/// Inputs of one case: the operands and the "previous run" operands a stale tile comes from.
struct Case {
    p: MatmulProblem,
    prec: Precision,
    a: Tensor,
    b: Tensor,
    a_old: Tensor,
    b_old: Tensor,
    /// The true product and `|A|·|op(B)|`, dense `[batch, m, n]`.
    cref: Vec<f64>,
    sref: Vec<f64>,
}

impl Case {
    fn new(p: MatmulProblem, prec: Precision, seed: u64) -> Case {
        let a = Tensor::random(prec.input, p.a_len(), seed);
        let b = Tensor::random(prec.input, p.b_len(), seed + 1);
        let (cref, sref) = matmul_ref(&p, &a, &b);
        Case {
            a_old: Tensor::random(prec.input, p.a_len(), seed + 2),
            b_old: Tensor::random(prec.input, p.b_len(), seed + 3),
            p,
            prec,
            a,
            b,
            cref,
            sref,
        }
    }

    /// An MR×NR tile (the best ISA's micro-kernel) near the middle of the last batch.
    fn tile_region(&self) -> Region {
        let (mr, nr) = tile(Isa::best());
        let (m, n) = (self.p.m, self.p.n);
        let r0 = (m / 2 / mr * mr).min(m.saturating_sub(mr));
        let c0 = (n / 2 / nr * nr).min(n.saturating_sub(nr));
        Region {
            batch: self.p.batch - 1,
            rows: (r0, (r0 + mr).min(m)),
            cols: (c0, (c0 + nr).min(n)),
        }
    }

    /// One element of the middle row of the last batch: the middle one, or for a zero left
    /// unwritten the one with the largest `|C|/S` (a zero where the true value is below the
    /// resolution would be a correct output, not a bug).
    fn element_region(&self, largest: bool) -> Region {
        let (batch, i) = (self.p.batch - 1, self.p.m / 2);
        let row = (batch * self.p.m + i) * self.p.n;
        let j = if largest {
            (0..self.p.n)
                .max_by(|&x, &y| {
                    let r = |j: usize| self.cref[row + j].abs() / self.sref[row + j];
                    r(x).total_cmp(&r(y))
                })
                .unwrap()
        } else {
            self.p.n / 2
        };
        Region {
            batch,
            rows: (i, i + 1),
            cols: (j, j + 1),
        }
    }

    fn region(&self, mutant: Mutant) -> Region {
        match mutant {
            Mutant::StaleTile | Mutant::UnwrittenZeroTile => self.tile_region(),
            Mutant::UnwrittenNan => self.element_region(false),
            Mutant::UnwrittenZeroElement => self.element_region(true),
            // The whole output.
            Mutant::KOffByOne | Mutant::BTransposed => Region {
                batch: 0,
                rows: (0, 0),
                cols: (0, 0),
            },
        }
    }
}

/// What a mutant wrote, and the exact value `M` and scale `S'` of what it computed (dense).
struct MutantRun {
    c: Tensor,
    exact: Vec<f64>,
    exact_scale: Vec<f64>,
}

/// Run a mutant: the naive loop (f32 accumulation in order, one rounding to `O`), broken.
fn run_mutant<T: Element, O: Element>(case: &Case, mutant: Mutant, region: Region) -> MutantRun {
    let p = &case.p;
    let typed = |t: &Tensor| T::tensor_slice(t).unwrap().to_vec();
    let (a, b, a_old, b_old) = (
        typed(&case.a),
        typed(&case.b),
        typed(&case.a_old),
        typed(&case.b_old),
    );
    let init = match mutant {
        Mutant::UnwrittenZeroTile | Mutant::UnwrittenZeroElement => O::from_f32(0.0),
        _ => O::nan(),
    };
    let mut c = vec![init; p.c_len()];
    let mut exact = vec![0f64; p.batch * p.m * p.n];
    let mut exact_scale = vec![0f64; p.batch * p.m * p.n];
    for bi in 0..p.batch {
        for i in 0..p.m {
            for j in 0..p.n {
                let inside = region.contains(bi, i, j);
                let (terms, swap_b, old, write) = match mutant {
                    Mutant::KOffByOne => (p.k - 1, false, false, true),
                    Mutant::BTransposed => (p.k, true, false, true),
                    Mutant::StaleTile => (p.k, false, inside, true),
                    Mutant::UnwrittenNan
                    | Mutant::UnwrittenZeroTile
                    | Mutant::UnwrittenZeroElement => (p.k, false, false, !inside),
                };
                let e = (bi * p.m + i) * p.n + j;
                if !write {
                    exact[e] = init.to_f64();
                    continue;
                }
                let (a, b) = if old { (&a_old, &b_old) } else { (&a, &b) };
                let trans = p.trans_b != swap_b;
                let (mut acc, mut acc64, mut abs64) = (0f32, 0f64, 0f64);
                for q in 0..terms {
                    let av = a[bi * p.a_stride() + i * p.lda + q].to_f32();
                    let bv = if trans {
                        b[bi * p.b_stride() + j * p.ldb + q]
                    } else {
                        b[bi * p.b_stride() + q * p.ldb + j]
                    }
                    .to_f32();
                    acc += av * bv;
                    acc64 += av as f64 * bv as f64;
                    abs64 += (av as f64 * bv as f64).abs();
                }
                c[bi * p.c_stride() + i * p.ldc + j] = O::from_f32(acc);
                exact[e] = acc64;
                exact_scale[e] = abs64;
            }
        }
    }
    MutantRun {
        c: O::into_tensor(c),
        exact,
        exact_scale,
    }
}

/// The smallest error a correct verifier can report for this mutant (see the module doc).
fn lower_bound(case: &Case, run: &MutantRun) -> f64 {
    let bound = matmul_bound(case.prec, case.p.k);
    let floor = matmul_scale_floor(case.prec);
    let mut lb = 0f64;
    for e in 0..run.exact.len() {
        let d = (run.exact[e] - case.cref[e]).abs();
        let v = if d.is_nan() {
            f64::INFINITY
        } else {
            (d - bound * run.exact_scale[e]) / (case.sref[e] + floor)
        };
        lb = lb.max(v);
    }
    lb
}

fn sampled(sample_rows: usize) -> VerifyOptions {
    VerifyOptions {
        full_cap_flops: 0,
        sample_rows,
        ..VerifyOptions::default()
    }
}

fn line(what: &str, case: &Case, method: &str, v: &Verification, extra: &str) -> String {
    format!(
        "{what:<24} {:<14} {:<12} {method:<24} error {:>9.3e}  bound {:.3e}  ratio {:>9.2}{extra}",
        case.prec.to_string(),
        case.p.to_string(),
        v.error,
        v.bound,
        v.error / v.bound
    )
}

/// Run one mutant on one case through the full method, the sampled method and Freivalds alone.
fn check_mutant(case: &Case, mutant: Mutant, report: &mut Vec<String>) {
    let region = case.region(mutant);
    let run = typed!(case.prec, run_mutant(case, mutant, region));
    let (p, prec) = (&case.p, case.prec);
    let bound = matmul_bound(prec, p.k);
    let lb = lower_bound(case, &run);
    let name = format!("{mutant:?}");
    assert!(
        lb > bound,
        "{name} {prec} {p}: the shape hides the mutant (lower bound {lb:e} ≤ bound {bound:e})"
    );

    let full = verify_matmul(p, prec, &case.a, &case.b, &run.c, &VerifyOptions::default());
    report.push(line(
        &name,
        case,
        "full",
        &full,
        &format!("  (lower bound {lb:.3e})"),
    ));
    assert_eq!(full.method, "full");
    assert_eq!(
        full.verdict,
        Verdict::Fail,
        "{name} {prec} {p} passed: {full:?}"
    );
    assert!(
        full.error >= lb * (1.0 - 1e-9),
        "{name} {prec} {p}: {full:?} below {lb:e}"
    );
    assert!(full.detail.is_some());

    // Sampled. A local mutant is guaranteed to meet a sampled row only if fewer rows than its
    // height are left out (pigeonhole); with the default 16 rows it would be met with probability
    // ≈ 1 − (1 − height/rows)^16, which is the method's documented limit.
    let rows = p.batch * p.m;
    let sample_rows = if mutant.is_local() {
        rows - (region.rows.1 - region.rows.0) + 1
    } else {
        16
    };
    let v = verify_matmul(p, prec, &case.a, &case.b, &run.c, &sampled(sample_rows));
    report.push(line(
        &name,
        case,
        &format!("freivalds+{sample_rows}rows"),
        &v,
        "",
    ));
    assert_eq!(v.method, "freivalds+rows");
    // A NaN/inf output fails at the scan, before any row is checked.
    let checked = if mutant == Mutant::UnwrittenNan {
        0
    } else {
        sample_rows.min(rows)
    };
    assert_eq!(v.samples, checked as u64);
    assert_eq!(
        v.verdict,
        Verdict::Fail,
        "{name} {prec} {p} passed sampled: {v:?}"
    );

    // Freivalds alone: recorded for the report, and asserted where its whole-row residual dwarfs
    // the bound. A NaN is caught by the scan. With f32 output the bound is 2^-23·(K+1) ≤ 1.2e-5,
    // while each mutant shifts some row of C·x by about |ΔC| ~ √K/3 ≈ 3 (|x_j| ≥ 0.5) against a
    // row scale Σ_j (|A|·|B|)_ij·|x_j| ≈ 0.19·n·K ≲ 1700: residuals ~1e-3, measured ≥ 135× the
    // bound. With f16/bf16 output the allowance is 100–700× larger and K off by one or a single
    // zero element can hide in the whole-row residual (measured down to 0.26× at bf16 output):
    // there only the sampled rows see them.
    let f = verify_matmul(p, prec, &case.a, &case.b, &run.c, &sampled(0));
    report.push(line(&name, case, "freivalds only", &f, ""));
    assert_eq!(f.samples, 0);
    let must_catch = mutant == Mutant::UnwrittenNan || prec.output == DType::F32;
    if must_catch {
        assert_eq!(
            f.verdict,
            Verdict::Fail,
            "{name} {prec} {p} passed Freivalds: {f:?}"
        );
    }
}

fn run_mutants(mutants: &[Mutant], shapes: &[MatmulProblem]) {
    let mut report = Vec::new();
    for (s, &p) in shapes.iter().enumerate() {
        for (pi, &pr) in PRECISIONS.iter().enumerate() {
            let case = Case::new(
                p,
                precision(pr),
                1000 + 10 * (s * PRECISIONS.len() + pi) as u64,
            );
            for &mutant in mutants {
                check_mutant(&case, mutant, &mut report);
            }
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn k_off_by_one_fails() {
    run_mutants(&[Mutant::KOffByOne], &shapes());
}

#[test]
fn b_in_the_other_layout_fails() {
    run_mutants(&[Mutant::BTransposed], &square_shapes());
}

#[test]
fn stale_tile_fails() {
    run_mutants(&[Mutant::StaleTile], &shapes());
}

#[test]
fn unwritten_outputs_fail() {
    run_mutants(
        &[
            Mutant::UnwrittenNan,
            Mutant::UnwrittenZeroTile,
            Mutant::UnwrittenZeroElement,
        ],
        &shapes(),
    );
}

#[test]
fn all_mutants_are_distinct_from_the_kernel() {
    // Guard against a mutant that silently stopped mutating: each one's output must differ from
    // the naive kernel's somewhere in the logical region.
    let case = Case::new(
        MatmulProblem::new(64, 96, 96),
        precision((DType::F32, DType::F32)),
        7,
    );
    let good = naive::<f32, f32>(&case);
    for mutant in Mutant::ALL {
        let run = run_mutant::<f32, f32>(&case, mutant, case.region(mutant));
        let (Tensor::F32(x), Tensor::F32(y)) = (&run.c, &good) else {
            unreachable!()
        };
        assert!(
            x.iter().zip(y).any(|(u, v)| u.to_bits() != v.to_bits()),
            "{mutant:?}"
        );
    }
}

fn naive<T: Element, O: Element>(case: &Case) -> Tensor {
    let p = &case.p;
    let mut c = vec![O::nan(); p.c_len()];
    let (a, b) = (
        T::tensor_slice(&case.a).unwrap(),
        T::tensor_slice(&case.b).unwrap(),
    );
    naive_matmul::<T, O>(p, a, b, &mut c).unwrap();
    O::into_tensor(c)
}

fn packed<T: Element, O: Element>(case: &Case, isa: Isa, blocking: &Blocking) -> Tensor {
    let p = &case.p;
    let mut c = vec![O::nan(); p.c_len()];
    let (a, b) = (
        T::tensor_slice(&case.a).unwrap(),
        T::tensor_slice(&case.b).unwrap(),
    );
    packed_matmul::<T, O>(isa, blocking, p, a, b, &mut c, &mut Workspace::default()).unwrap();
    O::into_tensor(c)
}

fn packed_bf16<O: Element>(case: &Case, path: Path, blocking: &Blocking) -> Tensor {
    let p = &case.p;
    let mut c = vec![O::nan(); p.c_len()];
    let (a, b) = (
        bf16::tensor_slice(&case.a).unwrap(),
        bf16::tensor_slice(&case.b).unwrap(),
    );
    packed_matmul_bf16::<O>(path, blocking, p, a, b, &mut c, &mut Workspace::default()).unwrap();
    O::into_tensor(c)
}

#[test]
fn real_kernels_pass() {
    // The output buffers start as NaN, so padding columns (ldc > n) stay NaN: passing also shows
    // that only the logical m×n is read.
    let mut report = Vec::new();
    let mut all = shapes();
    all.extend(square_shapes());
    all.push(MatmulProblem::new(1, 40, 70).transposed_b()); // the GEMV path
    for (s, &p) in all.iter().enumerate() {
        for (pi, &pr) in PRECISIONS.iter().enumerate() {
            let case = Case::new(
                p,
                precision(pr),
                5000 + 10 * (s * PRECISIONS.len() + pi) as u64,
            );
            let mut outputs = vec![("naive".to_string(), typed!(case.prec, naive(&case)))];
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                let (mr, nr) = tile(isa);
                // The machine's blocking, and a tiny one that splits K, M and N into many blocks.
                let small = Blocking {
                    mc: 2 * mr,
                    kc: 16,
                    nc: 2 * nr,
                };
                for (bname, blocking) in [("default", Blocking::for_isa(isa)), ("small", small)] {
                    let c = typed!(case.prec, packed(&case, isa, &blocking));
                    outputs.push((format!("packed.{isa}.{bname}"), c));
                }
            }
            for path in [Path::Bf16Dot, Path::Amx] {
                if case.prec.input != DType::BF16 || !path.available() {
                    continue;
                }
                let (mr, nr) = path.tile();
                let small = Blocking {
                    mc: 2 * mr,
                    kc: 16,
                    nc: 2 * nr,
                };
                for (bname, blocking) in [("default", path.default_blocking()), ("small", small)] {
                    let c = match case.prec.output {
                        DType::BF16 => packed_bf16::<bf16>(&case, path, &blocking),
                        _ => packed_bf16::<f32>(&case, path, &blocking),
                    };
                    outputs.push((format!("packed.{}.{bname}", path.name()), c));
                }
            }
            for (name, c) in &outputs {
                for (method, opts) in [("full", VerifyOptions::default()), ("sampled", sampled(16))]
                {
                    let v = verify_matmul(&case.p, case.prec, &case.a, &case.b, c, &opts);
                    report.push(line(name, &case, method, &v, ""));
                    assert_eq!(
                        v.verdict,
                        Verdict::Pass,
                        "{name} {} {}: {v:?}",
                        case.prec,
                        case.p
                    );
                    assert!(v.error.is_finite() && v.error >= 0.0);
                }
            }
        }
    }
    println!("{}", report.join("\n"));
}
