//! Verification of kernel outputs against the float64 references of [`crate::reference`]: the
//! verdict and its evidence, the options, and the entry point for any problem. The measures and
//! bounds per op: [`matmul`] (componentwise, scaled by |A|·|B|, Freivalds above a size cap) and
//! [`attention`] (twice the naive kernel's error at the same precision, sampled query rows above
//! a cap).

pub mod attention;
pub mod matmul;

pub use matmul::{
    matmul_bound, matmul_scale_floor, scaled_error, verify_matmul, verify_matmul_shared,
    MATMUL_BOUND_C,
};

use crate::dtype::Tensor;
use crate::problem::Precision;
use serde::{Deserialize, Serialize};

/// The outcome of a verification. NaN never passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// The evidence of one verification, stored in the result row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// `"full"` (every element of every batch) or `"freivalds+rows"`.
    pub method: String,
    /// Rows checked elementwise (full: `batch · m`).
    pub samples: u64,
    /// The largest scaled error observed (`f64::INFINITY` for a NaN/inf output).
    pub error: f64,
    /// The bound `error` was compared with ([`matmul_bound`]).
    pub bound: f64,
    pub verdict: Verdict,
    /// Where it failed: `"NaN at batch 0, row 3, col 7"`, or the worst element and its values.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// The most memory the full matmul reference of one batch may take: `A`, `op(B)` (each also as
/// absolute values, in place) and the two `m × n` products in f64. Above it the sampled method
/// is used whatever the FLOPs (a 65536 × 65536 × 2 product is cheap to compute, not to hold).
pub const FULL_MATMUL_MAX_BYTES: u64 = 1 << 30;

/// How much verification work to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Matmul: check every element up to this many FLOPs of reference work (`2·batch·m·n·k`),
    /// while the f64 operands and products of a batch fit [`FULL_MATMUL_MAX_BYTES`]; sample above
    /// it. Default 1.8e10: the ndarray dgemm reference verifies 2048³ fully in 0.69 s on 2
    /// threads of the Intel Xeon (family 6 model 207) VM, about what the row loop took at its
    /// old cap of 4e9 (1024³ 0.31 s, 2048³ 2.6 s): `cargo run --release --example
    /// reference_speed`, BENCHMARKS.md "Verification".
    pub full_cap_flops: u64,
    /// Attention: every query row checked up to this many FLOPs of reference work
    /// (`4·D·unmasked pairs·heads`, the naive loop); sample above it. Default 4e9.
    pub attention_full_cap_flops: u64,
    /// Whole rows checked elementwise by the sampled method. Default 16.
    pub sample_rows: usize,
    /// Random vectors of Freivalds' check. Default 2.
    pub freivalds_vectors: usize,
    /// Seed of the random vectors and row sample (record it with the result).
    pub seed: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            full_cap_flops: 18_000_000_000,
            attention_full_cap_flops: 4_000_000_000,
            sample_rows: 16,
            freivalds_vectors: 2,
            seed: 0x7E57_5EED,
        }
    }
}

/// Verify an output against the float64 reference of its op (matmul: [`verify_matmul`], its
/// reference computed once per inputs ([`verify_matmul_shared`]);
/// attention: [`crate::verify::attention::verify_attention`]). `inputs` in the order the kernels
/// take them.
pub fn verify_problem(
    problem: &crate::kernel::Problem,
    precision: Precision,
    inputs: &[std::sync::Arc<Tensor>],
    output: &Tensor,
    opts: &VerifyOptions,
) -> Verification {
    use crate::kernel::Problem;
    match problem {
        Problem::Matmul(p) => {
            verify_matmul_shared(p, precision, &inputs[0], &inputs[1], output, opts)
        }
        Problem::Attention(p) => crate::verify::attention::verify_attention(
            p, precision, &inputs[0], &inputs[1], &inputs[2], output, opts,
        ),
    }
}
