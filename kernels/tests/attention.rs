//! Correctness of the CPU attention kernels (naive, flash, decode) on every ISA path this CPU
//! has, at every precision, verified against the float64 reference with the bound of
//! `verify_attention` (2× the naive same-precision error + 4·u_out), plus exact structural tests.
//!
//! Coverage (the list): causal and not; GQA ratios 1, 4, 8; head_dim 64, 80, 100, 128
//! and 65 (not a multiple of any SIMD width); seq 1, 17, 1000; q_len < kv_len; logits of
//! magnitude 1e4 from f16/bf16 inputs; the causal shape with an empty row refused. Tests never
//! assert on time.

use half::{bf16, f16};
use perfledger_kernels::cpu::attention::{decode_attention, flash_attention, naive_attention};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::verify::attention::verify_attention;
use perfledger_kernels::verify::{Verdict, Verification, VerifyOptions};
use perfledger_kernels::{
    AttentionProblem, DType, Element, KernelError, Op, Precision, Problem, Registry,
    RegistryOptions, Support, Tensor,
};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Algo {
    Naive,
    Flash(Isa),
    Decode(Isa),
}

fn algos(p: &AttentionProblem) -> Vec<Algo> {
    let mut v = vec![Algo::Naive];
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        v.push(Algo::Flash(isa));
        if p.q_len == 1 {
            v.push(Algo::Decode(isa));
        }
    }
    v
}

fn typed<T: Element>(
    algo: Algo,
    p: &AttentionProblem,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<Tensor, KernelError> {
    let (q, k, v) = (
        T::tensor_slice(q).unwrap(),
        T::tensor_slice(k).unwrap(),
        T::tensor_slice(v).unwrap(),
    );
    let mut out = vec![T::nan(); p.q_len_elems()];
    match algo {
        Algo::Naive => naive_attention(p, q, k, v, &mut out)?,
        Algo::Flash(isa) => flash_attention(isa, p, q, k, v, &mut out)?,
        Algo::Decode(isa) => decode_attention(isa, p, q, k, v, &mut out)?,
    }
    Ok(T::into_tensor(out))
}

fn run(
    algo: Algo,
    p: &AttentionProblem,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<Tensor, KernelError> {
    match q.dtype() {
        DType::F32 => typed::<f32>(algo, p, q, k, v),
        DType::F16 => typed::<f16>(algo, p, q, k, v),
        DType::BF16 => typed::<bf16>(algo, p, q, k, v),
    }
}

fn inputs(p: &AttentionProblem, dtype: DType, seed: u64) -> [Tensor; 3] {
    [
        Tensor::random(dtype, p.q_len_elems(), seed),
        Tensor::random(dtype, p.kv_len_elems(), seed + 1),
        Tensor::random(dtype, p.kv_len_elems(), seed + 2),
    ]
}

/// Run every algorithm on the problem at every precision, verify fully, collect failures.
fn check_all(
    p: &AttentionProblem,
    dtypes: &[DType],
    seed: u64,
    make: impl Fn(DType) -> [Tensor; 3],
    report: &mut Vec<String>,
) {
    for &dtype in dtypes {
        let [q, k, v] = make(dtype);
        let prec = Precision::same(dtype);
        for algo in algos(p) {
            let out =
                run(algo, p, &q, &k, &v).unwrap_or_else(|e| panic!("{algo:?} {p} {dtype}: {e}"));
            let ver = verify_attention(
                p,
                prec,
                &q,
                &k,
                &v,
                &out,
                &VerifyOptions {
                    seed,
                    ..Default::default()
                },
            );
            let line = format!(
                "{algo:?} {p} {dtype}: {} error {:.3e} bound {:.3e} ({:.2} of bound) {:?}",
                ver.method,
                ver.error,
                ver.bound,
                ver.error / ver.bound,
                ver.detail
            );
            println!("{line}");
            if ver.verdict != Verdict::Pass || ver.method != "full" {
                report.push(line);
            }
        }
    }
}

fn assert_clean(report: Vec<String>) {
    assert!(report.is_empty(), "failures:\n{}", report.join("\n"));
}

const ALL: [DType; 3] = [DType::BF16, DType::F16, DType::F32];

#[test]
fn small_shapes_every_path_and_precision() {
    let shapes = [
        // seq 17, causal, MHA, head_dim 64
        AttentionProblem::new(1, 2, 2, 17, 17, 64).causal(true),
        // GQA 4, q_len < kv_len (end-aligned mask), head_dim 80, batch 2
        AttentionProblem::new(2, 8, 2, 17, 33, 80).causal(true),
        // GQA 8, seq 1 (q_len = kv_len = 1), head_dim 65
        AttentionProblem::new(1, 8, 1, 1, 1, 65),
        // decode shape: q_len 1 against a longer cache, GQA 4, head_dim 128, causal (sees all)
        AttentionProblem::new(1, 8, 2, 1, 300, 128).causal(true),
        // non-causal, head_dim 100, q_len < kv_len, several tiles and query blocks
        AttentionProblem::new(1, 3, 3, 70, 150, 100),
        // causal, GQA 8, head_dim 128, query blocks × KV tiles crossing the diagonal
        AttentionProblem::new(1, 8, 1, 100, 130, 128).causal(true),
        // head_dim 65 with a causal mask and query blocks not multiples of anything
        AttentionProblem::new(1, 2, 2, 53, 53, 65).causal(true),
    ];
    let mut report = Vec::new();
    for (n, p) in shapes.iter().enumerate() {
        check_all(
            p,
            &ALL,
            10 + n as u64,
            |dt| inputs(p, dt, 100 * n as u64),
            &mut report,
        );
    }
    assert_clean(report);
}

#[test]
fn seq_1000_causal_and_not() {
    let shapes = [
        AttentionProblem::new(1, 8, 1, 1000, 1000, 64).causal(true),
        AttentionProblem::new(1, 4, 4, 1000, 1000, 128),
        AttentionProblem::new(1, 32, 8, 1, 1000, 128),
    ];
    let mut report = Vec::new();
    for (n, p) in shapes.iter().enumerate() {
        check_all(
            p,
            &[DType::BF16, DType::F32],
            20 + n as u64,
            |dt| inputs(p, dt, 7 + n as u64),
            &mut report,
        );
    }
    assert_clean(report);
}

/// Inputs whose logits reach magnitude ~1e4 (exp of them overflows f32 by far): Q and K uniform
/// in ±[60, 120], representable in f16 and bf16. Without the max subtracted in f32 the kernels
/// would produce inf/NaN.
fn hostile(p: &AttentionProblem, dtype: DType, seed: u64) -> [Tensor; 3] {
    let big = |len: usize, s: u64| {
        let mut rng = perfledger_kernels::dtype::SplitMix64::new(s);
        let v: Vec<f32> = (0..len)
            .map(|_| {
                let m = 60.0 + 60.0 * rng.next_f32();
                if rng.next_u64() & 1 == 0 {
                    m
                } else {
                    -m
                }
            })
            .collect();
        Tensor::from_f32(dtype, &v)
    };
    [
        big(p.q_len_elems(), seed),
        big(p.kv_len_elems(), seed + 1),
        Tensor::random(dtype, p.kv_len_elems(), seed + 2),
    ]
}

#[test]
fn large_magnitude_logits_do_not_overflow() {
    let shapes = [
        AttentionProblem::new(1, 4, 1, 40, 200, 64).causal(true),
        AttentionProblem::new(1, 4, 4, 1, 500, 128),
        AttentionProblem::new(1, 2, 2, 30, 30, 65),
    ];
    let mut report = Vec::new();
    for (n, p) in shapes.iter().enumerate() {
        // The logits really are of magnitude 1e4.
        let [q, k, _] = hostile(p, DType::F16, 5);
        let (q, k) = (q.to_f64(), k.to_f64());
        let d = p.head_dim;
        let s0: f64 = (0..d).map(|i| q[i] * k[i]).sum::<f64>() * p.scale as f64;
        let top = (0..p.kv_len.min(50))
            .map(|j| ((0..d).map(|i| q[i] * k[j * d + i]).sum::<f64>() * p.scale as f64).abs())
            .fold(s0.abs(), f64::max);
        assert!(top > 5e3, "logits reach only {top}");
        check_all(
            p,
            &[DType::F16, DType::BF16],
            30 + n as u64,
            |dt| hostile(p, dt, 5),
            &mut report,
        );
    }
    assert_clean(report);
}

/// Q = 0 makes every visible key equally likely: O_i is exactly the mean of the visible V rows,
/// which pins the mask alignment (end-aligned) and the GQA head mapping without any tolerance
/// games (V holds small integers; means of ≤ 64 of them are exact in f32 up to the final
/// division, checked to 1e-6).
#[test]
fn uniform_attention_is_the_mean_of_visible_rows() {
    let p = AttentionProblem::new(2, 4, 2, 5, 40, 16).causal(true);
    let (group, d) = (p.group(), p.head_dim);
    let v: Vec<f32> = (0..p.kv_len_elems())
        .map(|i| ((i * 7919) % 13) as f32 - 6.0)
        .collect();
    let q = Tensor::from_f32(DType::F32, &vec![0.0; p.q_len_elems()]);
    let k = Tensor::random(DType::F32, p.kv_len_elems(), 3);
    let vt = Tensor::from_f32(DType::F32, &v);
    for algo in algos(&p) {
        let out = run(algo, &p, &q, &k, &vt).unwrap().to_f64();
        for b in 0..p.batch {
            for h in 0..p.q_heads {
                let g = h / group;
                for i in 0..p.q_len {
                    let keys = p.kv_len - p.q_len + i + 1;
                    for dd in 0..d {
                        let base = (b * p.kv_heads + g) * p.kv_len * d;
                        let mean: f64 = (0..keys).map(|j| v[base + j * d + dd] as f64).sum::<f64>()
                            / keys as f64;
                        let got = out[((b * p.q_heads + h) * p.q_len + i) * d + dd];
                        assert!(
                            (got - mean).abs() < 1e-5,
                            "{algo:?} b{b} h{h} i{i} d{dd}: {got} vs {mean}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn causal_shape_with_an_empty_row_is_refused() {
    let p = AttentionProblem::new(1, 2, 2, 9, 8, 64).causal(true);
    let q = vec![bf16::ONE; 2 * 9 * 64];
    let kv = vec![bf16::ONE; 2 * 8 * 64];
    let mut out = vec![bf16::ZERO; q.len()];
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let e = flash_attention(isa, &p, &q, &kv, &kv, &mut out).unwrap_err();
        assert!(e.to_string().contains("without any key"), "{e}");
    }
    let e = naive_attention(&p, &q, &kv, &kv, &mut out).unwrap_err();
    assert!(e.to_string().contains("kv_len − q_len + i"), "{e}");
    let reg = Registry::new(&RegistryOptions::default());
    for k in reg
        .kernels()
        .iter()
        .filter(|k| k.identity().op == Op::Attention)
    {
        match k.supports(&Problem::Attention(p)) {
            Support::No(why) => assert!(why.reason.contains("without any key"), "{why}"),
            Support::Yes => panic!(
                "{} accepted a causal shape with an empty row",
                k.identity().id()
            ),
        }
    }
}

#[test]
fn decode_refuses_prefill_and_short_buffers_are_errors() {
    let p = AttentionProblem::new(1, 2, 2, 4, 8, 16);
    let x = vec![f16::ONE; 2 * 8 * 16];
    let mut out = vec![f16::ZERO; 2 * 4 * 16];
    let e = decode_attention(Isa::Portable, &p, &x, &x, &x, &mut out).unwrap_err();
    assert!(e.to_string().contains("q_len = 1"), "{e}");
    let e = flash_attention(Isa::Portable, &p, &x, &x[..100], &x, &mut out).unwrap_err();
    assert!(e.to_string().contains("buffer `K`"), "{e}");
}

/// Every registered attention kernel that runs here, through prepare → poison → run → output,
/// verified: adding a kernel to the registry adds it to this test.
#[test]
fn registry_kernels_verify() {
    let reg = Registry::new(&RegistryOptions::default());
    let problems = [
        AttentionProblem::new(1, 4, 2, 1, 200, 80).causal(true),
        AttentionProblem::new(2, 4, 1, 33, 50, 64).causal(true),
    ];
    let mut ran = 0;
    let mut report = Vec::new();
    for (n, p) in problems.iter().enumerate() {
        let problem = Problem::Attention(*p);
        for kernel in reg
            .kernels()
            .iter()
            .filter(|k| k.identity().op == Op::Attention)
        {
            let id = kernel.identity();
            if !kernel.supports(&problem).is_yes() {
                continue;
            }
            let ins: Vec<Arc<Tensor>> = inputs(p, id.precision.input, 40 + n as u64)
                .into_iter()
                .map(Arc::new)
                .collect();
            let mut prep = kernel.prepare(&problem, &ins).unwrap();
            prep.poison().unwrap();
            prep.run().unwrap();
            let out = prep.output().unwrap();
            let v: Verification = verify_attention(
                p,
                id.precision,
                &ins[0],
                &ins[1],
                &ins[2],
                &out,
                &VerifyOptions::default(),
            );
            if v.verdict != Verdict::Pass {
                report.push(format!("{} {p}: {v:?}", id.id()));
            }
            ran += 1;
        }
    }
    assert_clean(report);
    // naive + flash per ISA on both; decode per ISA on the first; 3 precisions.
    let isas = Isa::ALL.iter().filter(|i| i.available()).count();
    assert_eq!(ran, 3 * (2 + 2 * isas + isas));
    for isa in Isa::ALL {
        for d in ["bf16", "f16", "f32"] {
            for fam in ["flash", "decode"] {
                let id = format!("attention.cpu.{fam}.{isa}.{d}-f32-{d}");
                assert!(reg.find(&id).is_some(), "{id} not registered");
            }
        }
    }
    assert!(reg
        .find("attention.cpu.naive.scalar.bf16-f32-bf16")
        .unwrap()
        .is_baseline());
    assert!(!reg
        .find("attention.cpu.flash.portable.bf16-f32-bf16")
        .unwrap()
        .is_baseline());
}
