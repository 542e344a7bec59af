//! Time the two float64 matmul references at a few sizes: the row loop ([`matmul_ref`], the
//! obviously correct one, parallel over rows) and the ndarray/matrixmultiply dgemm path of full
//! verification ([`MatmulOperands::product`]), so the full-verification cap can be set from a
//! measurement (`VerifyOptions::full_cap_flops`).
//!
//! `MATMUL_NUM_THREADS=2 cargo run --release --example reference_speed [N ...]`

use perfledger_kernels::reference::{matmul_ref, MatmulOperands};
use perfledger_kernels::{DType, MatmulProblem, Tensor};
use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![512, 1024, 2048]
    } else {
        sizes
    };
    println!("size      GFLOP(2n^3)  loop_s   dgemm_s  speedup");
    for n in sizes {
        let p = MatmulProblem::new(n, n, n);
        let a = Tensor::random(DType::BF16, p.a_len(), 1);
        let b = Tensor::random(DType::BF16, p.b_len(), 2);
        let gflop = 2.0 * (n as f64).powi(3) / 1e9;
        let t = Instant::now();
        let ops = MatmulOperands::new(&p, &a, &b, 0);
        let fast = ops.product();
        let dgemm_s = t.elapsed().as_secs_f64();
        let loop_s = if n <= 2048 {
            let t = Instant::now();
            let slow = matmul_ref(&p, &a, &b);
            let s = t.elapsed().as_secs_f64();
            assert_eq!(slow.0.len(), fast.0.len());
            s
        } else {
            f64::NAN
        };
        println!(
            "{n:>5}³  {gflop:>10.2}  {loop_s:>7.3}  {dgemm_s:>7.3}  {:>6.1}×",
            loop_s / dgemm_s
        );
    }
}
