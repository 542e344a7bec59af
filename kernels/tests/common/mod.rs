//! Helpers shared by the integration tests (each test file that uses them declares `mod common;`).

use perfledger_kernels::{DType, Tensor};

/// Values uniform in ±[60, 120], representable in f16 and bf16: as Q and K, logits of magnitude
/// ~1e4 at head_dim 64 (exp of them overflows f32 by far), so a kernel that does not subtract
/// the running max in f32 produces inf/NaN.
pub fn large_magnitude(dtype: DType, len: usize, seed: u64) -> Tensor {
    let mut rng = perfledger_kernels::dtype::SplitMix64::new(seed);
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
}
