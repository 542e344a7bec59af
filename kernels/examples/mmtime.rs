//! Time one packed matmul shape (a development aid for tuning; claims come from `perfledger run`).
//!
//! `cargo run --release -p perfledger-kernels --example mmtime -- M N K [dtype] [isa] [blocking] [bt]`

use perfledger_kernels::cpu::isa::Isa;
use perfledger_kernels::cpu::matmul::{packed_matmul, Blocking, Workspace};
use perfledger_kernels::{DType, Element, MatmulProblem, Tensor};
use std::time::Instant;

fn time<T: Element>(isa: Isa, blk: &Blocking, p: &MatmulProblem) -> Vec<f64> {
    let a = Tensor::random(T::DTYPE, p.a_len(), 1);
    let b = Tensor::random(T::DTYPE, p.b_len(), 2);
    let (a, b) = (T::tensor_slice(&a).unwrap(), T::tensor_slice(&b).unwrap());
    let mut c = vec![T::default(); p.c_len()];
    let mut ws = Workspace::default();
    let mut v = Vec::new();
    let t_end = Instant::now() + std::time::Duration::from_secs_f64(3.0);
    while v.len() < 5 || (Instant::now() < t_end && v.len() < 200) {
        let t = Instant::now();
        packed_matmul::<T, T>(isa, blk, p, a, b, &mut c, &mut ws).unwrap();
        v.push(t.elapsed().as_secs_f64());
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (m, n, k) = (num(0, 2048), num(1, 2048), num(2, 2048));
    let dtype: DType = args
        .get(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(DType::BF16);
    let isa: Isa = args
        .get(4)
        .map(|s| s.parse().unwrap())
        .unwrap_or_else(Isa::best);
    let blk = args
        .get(5)
        .filter(|s| *s != "-")
        .map(|s| s.parse().unwrap())
        .unwrap_or_else(|| Blocking::for_isa(isa));
    let mut p = MatmulProblem::new(m, n, k);
    if args.get(6).map(String::as_str) == Some("bt") {
        p = p.transposed_b();
    }
    let v = match dtype {
        DType::F32 => time::<f32>(isa, &blk, &p),
        DType::F16 => time::<half::f16>(isa, &blk, &p),
        DType::BF16 => time::<half::bf16>(isa, &blk, &p),
    };
    let mut s = v[1..].to_vec();
    s.sort_by(f64::total_cmp);
    let med = s[s.len() / 2];
    let w = p.work(perfledger_kernels::Precision::same(dtype));
    println!(
        "{p} {dtype} {isa} {blk} threads={} samples={} median={:.4}s {:.1} GFLOP/s {:.2} GB/s(min bytes) best={:.1}",
        rayon::current_num_threads(),
        s.len(),
        med,
        w.flops as f64 / med / 1e9,
        w.min_bytes as f64 / med / 1e9,
        w.flops as f64 / s[0] / 1e9
    );
}
