//! Correctness of the CPU attention kernels — every one the registry lists that runs here (naive,
//! flash and decode on every ISA path this CPU has, at every precision) — verified against the
//! float64 reference with the bound of `verify_attention` (2× the naive same-precision error +
//! 4·u_out), plus exact structural tests. The tests iterate the registry, so a new attention
//! kernel is tested by them all; with the `test-kernels` feature the kernels broken on purpose
//! are registered too, and the same tests show each one caught.
//!
//! Coverage (the list): causal and not; GQA ratios 1, 4, 8; head_dim 64, 80, 100, 128
//! and 65 (not a multiple of any SIMD width); seq 1, 17, 1000; q_len < kv_len; logits of
//! magnitude 1e4 from f16/bf16 inputs; the causal shape with an empty row refused. Tests never
//! assert on time.

mod common;

use half::{bf16, f16};
use perfledger_kernels::cpu::attention::{decode_attention, flash_attention, naive_attention};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::verify::attention::verify_attention;
use perfledger_kernels::verify::{Verdict, VerifyOptions};
use perfledger_kernels::{
    AttentionProblem, Backend, DType, Kernel, Op, Precision, Problem, Registry, RegistryOptions,
    Support, Tensor,
};
use std::sync::Arc;

/// The registry the tests iterate: with the `test-kernels` feature, the broken kernels too.
fn registry() -> Registry {
    Registry::new(&RegistryOptions {
        test_kernels: true,
        ..RegistryOptions::default()
    })
}

/// A kernel broken on purpose, whose results the tests must reject.
fn broken(k: &dyn Kernel) -> bool {
    k.is_test_kernel() && k.identity().variant != "slow10"
}

/// The registry's CPU attention kernels of `dtype` (same-type output) that run `p` here.
fn kernels_for<'r>(reg: &'r Registry, p: &AttentionProblem, dtype: DType) -> Vec<&'r dyn Kernel> {
    let problem = Problem::Attention(*p);
    reg.kernels()
        .iter()
        .map(|k| k.as_ref())
        .filter(|k| {
            let id = k.identity();
            id.op == Op::Attention
                && id.backend == Backend::Cpu
                && id.precision == Precision::same(dtype)
                && k.supports(&problem).is_yes()
        })
        .collect()
}

/// Prepare, poison, run once and return the output; `Err` also when the kernel panics.
fn run(kernel: &dyn Kernel, p: &AttentionProblem, ins: &[Arc<Tensor>]) -> Result<Tensor, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut prep = kernel
            .prepare(&Problem::Attention(*p), ins)
            .map_err(|e| e.to_string())?;
        prep.poison().map_err(|e| e.to_string())?;
        prep.run().map_err(|e| e.to_string())?;
        prep.output().map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err("panicked".into()))
}

fn inputs(p: &AttentionProblem, dtype: DType, seed: u64) -> [Tensor; 3] {
    [
        Tensor::random(dtype, p.q_len_elems(), seed),
        Tensor::random(dtype, p.kv_len_elems(), seed + 1),
        Tensor::random(dtype, p.kv_len_elems(), seed + 2),
    ]
}

/// Run every registered kernel on the problem at every precision, verify fully, collect
/// failures: a correct kernel must pass, a broken test kernel must be caught (fail or error).
fn check_all(
    p: &AttentionProblem,
    dtypes: &[DType],
    seed: u64,
    make: impl Fn(DType) -> [Tensor; 3],
    report: &mut Vec<String>,
) {
    let reg = registry();
    for &dtype in dtypes {
        let ins: Vec<Arc<Tensor>> = make(dtype).into_iter().map(Arc::new).collect();
        let prec = Precision::same(dtype);
        let kernels = kernels_for(&reg, p, dtype);
        assert!(!kernels.is_empty(), "no kernel runs {p} {dtype}");
        for k in kernels {
            let id = k.identity().id();
            let ver = run(k, p, &ins).map(|out| {
                verify_attention(
                    p,
                    prec,
                    &ins[0],
                    &ins[1],
                    &ins[2],
                    &out,
                    &VerifyOptions {
                        seed,
                        ..Default::default()
                    },
                )
            });
            let line = match &ver {
                Ok(v) => format!(
                    "{id} {p}: {} error {:.3e} bound {:.3e} ({:.2} of bound) {:?}",
                    v.method,
                    v.error,
                    v.bound,
                    v.error / v.bound,
                    v.detail
                ),
                Err(e) => format!("{id} {p}: {e}"),
            };
            println!("{line}");
            let passed = ver
                .as_ref()
                .is_ok_and(|v| v.verdict == Verdict::Pass && v.method == "full");
            if passed == broken(k) {
                report.push(if broken(k) {
                    format!("broken kernel not caught: {line}")
                } else {
                    line
                });
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
        // decode through the widened-scratch path (head_dim not a multiple of any vector
        // width) over several key blocks and a partial last one, GQA 3 (padded query rows)
        AttentionProblem::new(1, 6, 2, 1, 75, 72),
        // decode read in place (head_dim 96: whole vectors on every path, a 64 + 32 column
        // split on the pair path) with an odd last block (45 keys: 16 + 16 + 13), GQA 3
        AttentionProblem::new(1, 6, 2, 1, 45, 96),
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
    [
        common::large_magnitude(dtype, p.q_len_elems(), seed),
        common::large_magnitude(dtype, p.kv_len_elems(), seed + 1),
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
    let ins = [Arc::new(q), Arc::new(k), Arc::new(vt)];
    let reg = registry();
    for kernel in kernels_for(&reg, &p, DType::F32) {
        let name = kernel.identity().id();
        let out = match run(kernel, &p, &ins) {
            Ok(out) => out.to_f64(),
            Err(e) => {
                assert!(broken(kernel), "{name}: {e}");
                continue;
            }
        };
        let mut exact = true;
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
                        exact &= (got - mean).abs() < 1e-5;
                        assert!(
                            (got - mean).abs() < 1e-5 || broken(kernel),
                            "{name} b{b} h{h} i{i} d{dd}: {got} vs {mean}"
                        );
                    }
                }
            }
        }
        assert!(
            exact != broken(kernel),
            "{name}: a broken kernel gave the exact means"
        );
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

/// Every registered CPU attention kernel that can run here ran at least once above: the shapes
/// of these tests reach every kernel (a prefill and a decode shape at each precision).
#[test]
fn every_supported_kernel_is_reached() {
    let reg = registry();
    let mut unreached = Vec::new();
    for k in reg.kernels().iter().map(|k| k.as_ref()) {
        let id = k.identity();
        if id.op != Op::Attention || id.backend != Backend::Cpu {
            continue;
        }
        let dtype = id.precision.input;
        if id.precision != Precision::same(dtype) {
            continue;
        }
        // The shapes `small_shapes_every_path_and_precision` uses include both of these.
        let shapes = [
            AttentionProblem::new(1, 8, 2, 1, 300, 128).causal(true),
            AttentionProblem::new(1, 2, 2, 17, 17, 64).causal(true),
        ];
        let supported = shapes
            .iter()
            .any(|p| k.supports(&Problem::Attention(*p)).is_yes());
        let listed = shapes.iter().any(|p| {
            kernels_for(&reg, p, dtype)
                .iter()
                .any(|x| x.identity().id() == id.id())
        });
        if supported && !listed {
            unreached.push(id.id());
        }
        // And every kernel of this CPU's ISA paths is supported by one of the shapes.
        if k.on_isa_path(perfledger_kernels::isa::Isa::best()) && !supported {
            unreached.push(format!("{} supports none of the shapes", id.id()));
        }
    }
    assert!(unreached.is_empty(), "{unreached:?}");
    assert!(reg
        .find("attention.cpu.naive.scalar.bf16-f32-bf16")
        .unwrap()
        .is_baseline());
    assert!(!reg
        .find("attention.cpu.flash.portable.bf16-f32-bf16")
        .unwrap()
        .is_baseline());
}

/// With the `test-kernels` feature, the broken attention kernel is among those the tests ran
/// (and `check_all` required it to be caught).
#[cfg(feature = "test-kernels")]
#[test]
fn test_kernels_are_picked_up() {
    let reg = registry();
    let p = AttentionProblem::new(1, 2, 2, 17, 17, 64).causal(true);
    let names: Vec<String> = kernels_for(&reg, &p, DType::BF16)
        .iter()
        .filter(|k| k.is_test_kernel())
        .map(|k| k.identity().variant)
        .collect();
    assert_eq!(names, ["wrong", "nan", "panic", "slow10"]);
    let mut report = Vec::new();
    check_all(&p, &[DType::BF16], 1, |dt| inputs(&p, dt, 2), &mut report);
    assert_clean(report);
}

/// `flash.amx` writes a bf16 output straight from its transposed O, other output types from O's
/// gathered rows: both give the same values, the bf16 one rounded once (round to nearest even).
#[test]
fn amx_bf16_output_is_the_rounded_f32_output() {
    use perfledger_kernels::cpu::attention::{flash_path_mutant, FlashPath, Mutation};
    if !perfledger_kernels::cpu::matmul::Path::Amx.available() {
        return;
    }
    // Partial query panels and K/V tiles, causal and not.
    for p in [
        AttentionProblem::new(1, 4, 2, 100, 300, 64),
        AttentionProblem::new(2, 2, 2, 37, 37, 128).causal(true),
    ] {
        let ins = inputs(&p, DType::BF16, 11);
        let [q, k, v] = [0, 1, 2].map(|i| match &ins[i] {
            Tensor::BF16(x) => x.clone(),
            _ => unreachable!("bf16 inputs"),
        });
        let mut out_bf16 = vec![bf16::ZERO; p.q_len_elems()];
        let mut out_f32 = vec![0f32; p.q_len_elems()];
        flash_path_mutant(
            FlashPath::Amx,
            &p,
            &q,
            &k,
            &v,
            &mut out_bf16,
            Mutation::None,
        )
        .unwrap();
        flash_path_mutant(FlashPath::Amx, &p, &q, &k, &v, &mut out_f32, Mutation::None).unwrap();
        for (i, (b, f)) in out_bf16.iter().zip(&out_f32).enumerate() {
            assert_eq!(b.to_bits(), bf16::from_f32(*f).to_bits(), "{p} element {i}");
        }
    }
}
