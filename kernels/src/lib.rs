//! perfledger-kernels: compute kernels (CPU now, GPU later), float64 references, error bounds and
//! machine probes. No sampling policy and no file formats: those belong to the harness.

pub mod cpu;
pub mod dtype;
pub mod problem;
pub mod registry;

pub use dtype::{DType, Element, Tensor};
pub use problem::{AttentionProblem, MatmulProblem, Precision, ProblemError, Work};
pub use registry::{
    Backend, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Registry, RegistryOptions,
    Support,
};
pub mod probe;
pub mod reference;
pub mod verify;
