//! GPU kernel timing for `scripts/gpu-lavapipe.sh`: every GPU matmul variant at the given sizes
//! and dtypes, verified, then timed three ways per sample: pass timestamps and the wall clock
//! around the same submission (`Prepared::time_device`), and the wall clock around a plain
//! `run()` (submit + wait). Prints Markdown table rows.
//!
//! Usage: gpu_bench [--size N]... [--reps R] [--allow-software]

use perfledger_kernels::gpu::context::{self, GpuOptions};
use perfledger_kernels::gpu::matmul::{GpuMatmul, Variant};
use perfledger_kernels::verify::{verify_matmul, VerifyOptions};
use perfledger_kernels::{DType, Kernel, MatmulProblem, Precision, Problem, Support, Tensor};
use std::sync::Arc;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut sizes = Vec::new();
    let mut reps = 5usize;
    let mut allow_software = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => sizes.push(args.next().and_then(|s| s.parse().ok()).expect("--size N")),
            "--reps" => reps = args.next().and_then(|s| s.parse().ok()).expect("--reps R"),
            "--allow-software" => allow_software = true,
            other => panic!("unknown argument {other}"),
        }
    }
    if sizes.is_empty() {
        sizes.push(512usize);
    }
    context::configure(GpuOptions {
        allow_software,
        select: None,
    })
    .unwrap();
    let ctx = match context::global() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("no GPU: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "adapter: {} ({}, {}, driver {}; software: {})\n",
        ctx.report.name,
        ctx.report.backend,
        ctx.report.device_type,
        ctx.report.driver_info,
        ctx.report.software
    );
    println!(
        "| kernel | shape | GFLOP/s (timestamp) | median s: timestamp | wall, same submission | wall, run() | wall/timestamp | error/bound |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut speedups = Vec::new();
    for &n in &sizes {
        for d in DType::ALL {
            let mut naive_s = None;
            for v in [Variant::Naive, Variant::Tiled, Variant::Coop] {
                if v == Variant::Coop && d != DType::F16 {
                    continue;
                }
                let k = GpuMatmul::new(v, Precision::same(d));
                let p = MatmulProblem::new(n, n, n);
                let prob = Problem::Matmul(p);
                let id = k.identity().id();
                if let Support::No(why) = k.supports(&prob) {
                    println!("| {id} | {n}³ | unsupported: {why} | | | | | |");
                    continue;
                }
                let ins: Vec<Arc<Tensor>> = prob
                    .input_lens()
                    .into_iter()
                    .enumerate()
                    .map(|(i, len)| Arc::new(Tensor::random(d, len, 42 + i as u64)))
                    .collect();
                let mut prep = k.prepare(&prob, &ins).expect("prepare");
                prep.poison().unwrap();
                prep.run().unwrap(); // also pays llvmpipe's JIT, untimed
                let out = prep.output().unwrap();
                let ver = verify_matmul(
                    &p,
                    k.precision,
                    &ins[0],
                    &ins[1],
                    &out,
                    &VerifyOptions::default(),
                );
                let mut ts = Vec::new();
                let mut wall_same = Vec::new();
                let mut wall_run = Vec::new();
                for _ in 0..reps {
                    let t = prep.time_device(1).expect("device timer").unwrap();
                    if let Some(dev) = t.device_s {
                        ts.push(dev);
                    }
                    wall_same.push(t.wall_s);
                    let t0 = Instant::now();
                    prep.run().unwrap();
                    wall_run.push(t0.elapsed().as_secs_f64());
                }
                let flops = 2.0 * (n as f64).powi(3);
                let (ts_med, gf) = if ts.is_empty() {
                    ("n/a".to_string(), "n/a".to_string())
                } else {
                    let m = median(ts.clone());
                    (format!("{m:.4}"), format!("{:.2}", flops / m / 1e9))
                };
                if !ts.is_empty() {
                    let m = median(ts.clone());
                    match v {
                        Variant::Naive => naive_s = Some(m),
                        Variant::Tiled => {
                            if let Some(nv) = naive_s {
                                speedups.push(format!("{d} {n}³: tiled/naive {:.1}×", nv / m));
                            }
                        }
                        Variant::Coop => {}
                    }
                }
                let ratio = if ts.is_empty() {
                    "n/a".into()
                } else {
                    format!("{:.3}", median(wall_same.clone()) / median(ts))
                };
                println!(
                    "| {id} | {n}³ | {gf} | {ts_med} | {:.4} | {:.4} | {ratio} | {:.3} |",
                    median(wall_same),
                    median(wall_run),
                    ver.error / ver.bound
                );
            }
        }
    }
    println!("\n{}", speedups.join("; "));
    println!(
        "\npipelines compiled: {} (creation untimed; llvmpipe JITs on the first dispatch, also untimed)",
        ctx.pipelines.len()
    );
}
