//! Shared helpers of the criterion benches: benchmark ids derived from kernel identities and
//! shapes, and seeded random inputs (never zeros).

use perfledger_kernels::{KernelIdentity, Problem, Tensor};
use std::sync::Arc;

/// Criterion group/function names from the kernel identity: group = `op/shape`, function = id.
pub fn bench_id(kernel: &KernelIdentity, problem: &Problem) -> (String, String) {
    let shape = problem.to_string();
    (format!("{}/{}", kernel.op.name(), shape), kernel.id())
}

/// Seeded random inputs for a problem in the kernel's input dtype.
pub fn inputs(kernel: &KernelIdentity, problem: &Problem, seed: u64) -> Vec<Arc<Tensor>> {
    problem
        .input_lens()
        .into_iter()
        .enumerate()
        .map(|(i, len)| Arc::new(Tensor::random(kernel.precision.input, len, seed + i as u64)))
        .collect()
}
