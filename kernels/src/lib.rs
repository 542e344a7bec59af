//! perfledger-kernels: compute kernels (CPU now, GPU later), float64 references, error bounds and
//! machine probes. No sampling policy and no file formats: those belong to the harness.

pub mod cpu;
pub mod dtype;
/// GPU kernels via wgpu (feature `gpu`, on by default).
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod problem;
pub mod registry;
pub mod unit;

pub use dtype::{DType, Element, Tensor};
pub use problem::{AttentionProblem, MatmulProblem, Precision, ProblemError, Work};
pub use registry::{
    Backend, DeviceTiming, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Registry,
    RegistryOptions, Support, Unsupported,
};
pub use unit::ComputeUnit;
pub mod probe;
pub mod reference;
pub mod verify;
pub mod verify_attention;
