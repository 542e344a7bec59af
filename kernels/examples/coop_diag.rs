//! Cooperative-matrix matmul diagnostics for an adapter that has cooperative matrices: identity
//! and index-valued operands show where each output element came from (layout, role or stride
//! mistakes show as permutations; missing synchronization as garbage), then random operands are
//! verified at a few shapes for both output types.
//!
//! Usage: coop_diag (needs a hardware adapter with an f16 cooperative-matrix configuration)

use perfledger_kernels::gpu::context;
use perfledger_kernels::gpu::matmul::{
    coop_convention, coop_self_check, coop_shape, CoopConvention, GpuMatmul, Variant,
};
use perfledger_kernels::verify::{verify_matmul, VerifyOptions};
use perfledger_kernels::{DType, MatmulProblem, Precision, Prepared, Problem, Tensor};
use std::sync::Arc;

fn run(k: &GpuMatmul, p: MatmulProblem, a: Vec<f32>, b: Vec<f32>) -> (Vec<f64>, Tensor, Tensor) {
    let ctx = context::global().expect("GPU");
    let at = Arc::new(Tensor::from_f32(DType::F16, &a));
    let bt = Arc::new(Tensor::from_f32(DType::F16, &b));
    let mut prep = k
        .prepare_on(ctx, &Problem::Matmul(p), &[at.clone(), bt.clone()])
        .expect("prepare");
    prep.poison().unwrap();
    prep.run().unwrap();
    let out = prep.output().unwrap();
    (out.to_f64(), (*at).clone(), (*bt).clone())
}

fn main() {
    let ctx = context::global().expect("GPU");
    let Some(shape) = coop_shape(&ctx) else {
        eprintln!(
            "{}: no f16 cooperative-matrix configuration",
            ctx.report.name
        );
        std::process::exit(1);
    };
    println!(
        "adapter {} coop T={} subgroup {}..{}",
        ctx.report.name, shape.t, ctx.report.subgroup_min_size, ctx.report.subgroup_max_size
    );
    for conv in CoopConvention::ALL {
        println!(
            "self-check {conv:?}: {:?} wrong elements",
            coop_self_check(&ctx, conv)
        );
    }
    println!("selected convention: {:?}", coop_convention(&ctx));
    let n = 2 * shape.t as usize; // one subgroup block
    for out in [DType::F16, DType::F32] {
        let k = GpuMatmul::new(
            Variant::Coop,
            Precision {
                input: DType::F16,
                accum: DType::F32,
                output: out,
            },
        );
        let p = MatmulProblem::new(n, n, n);
        let eye: Vec<f32> = (0..n * n)
            .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
            .collect();
        let idx: Vec<f32> = (0..n * n).map(|i| i as f32).collect();
        for (name, a, b) in [
            ("A=I, B=index: out should be B", eye.clone(), idx.clone()),
            ("A=index, B=I: out should be A", idx.clone(), eye.clone()),
        ] {
            let (o, _, _) = run(&k, p, a, b);
            let mut bad = Vec::new();
            for (i, v) in o.iter().enumerate() {
                if *v != i as f64 {
                    bad.push(format!(
                        "({},{})={} [= elem ({},{})]",
                        i / n,
                        i % n,
                        v,
                        (*v as i64).div_euclid(n as i64),
                        (*v as i64).rem_euclid(n as i64)
                    ));
                }
            }
            println!(
                "out {out} {name}: {} of {} wrong; first: {:?}",
                bad.len(),
                n * n,
                &bad[..bad.len().min(12)]
            );
        }
        for p in [
            MatmulProblem::new(n, n, n),
            MatmulProblem::new(64, 64, 64),
            MatmulProblem::new(128, 96, 80).transposed_b(),
        ] {
            let a = Tensor::random(DType::F16, p.a_len(), 1).to_f64();
            let b = Tensor::random(DType::F16, p.b_len(), 2).to_f64();
            let (_, at, bt) = run(
                &k,
                p,
                a.iter().map(|x| *x as f32).collect(),
                b.iter().map(|x| *x as f32).collect(),
            );
            let ctx = context::global().unwrap();
            let mut prep = k
                .prepare_on(
                    ctx,
                    &Problem::Matmul(p),
                    &[Arc::new(at.clone()), Arc::new(bt.clone())],
                )
                .unwrap();
            prep.poison().unwrap();
            prep.run().unwrap();
            let o = prep.output().unwrap();
            let v = verify_matmul(&p, k.precision, &at, &bt, &o, &VerifyOptions::default());
            println!(
                "out {out} random {p}: {:?} error/bound {:.3} {:?}",
                v.verdict,
                v.error / v.bound,
                v.detail
            );
        }
    }
}
