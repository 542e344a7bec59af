//! perfledger-kernels: compute kernels (CPU: `cpu/`; GPU through wgpu: `gpu/`, feature `gpu`),
//! float64 references, error bounds, machine probes, and the registry, the one list of kernels.
//! No sampling policy and no file formats: those belong to the harness.

/// The binaries' global allocator: large blocks on cache lines, as frameworks give their kernels.
pub mod alloc;
pub mod cpu;
pub mod dtype;
/// GPU kernels via wgpu (feature `gpu`, on by default).
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod isa;
pub mod kernel;
/// In-process reference libraries (OpenBLAS loaded at run time, ndarray, the gemm crate).
pub mod peers;
pub mod problem;
pub mod registry;
/// Kernels broken on purpose (feature `test-kernels`).
#[cfg(feature = "test-kernels")]
pub mod testing;
pub mod unit;

pub use dtype::{DType, Element, Tensor};
pub use kernel::{
    Backend, DeviceTiming, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support,
    Unsupported,
};
pub use problem::{AttentionProblem, MatmulProblem, Precision, ProblemError, Work};
pub use registry::{Registry, RegistryOptions};
pub use unit::ComputeUnit;
pub mod probe;
pub mod reference;
pub mod verify;
