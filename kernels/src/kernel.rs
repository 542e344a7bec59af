//! The kernel contract: what a kernel is (its identity, including the compute unit it runs on),
//! what it can run (`supports`, with a typed reason when not), how it is prepared untimed and run
//! (`Prepared`), and its errors. The list of kernels is [`crate::registry`].

use crate::dtype::{DType, Tensor};
use crate::problem::{
    AttentionError, AttentionProblem, MatmulProblem, Precision, ProblemError, Work,
};
pub use crate::unit::ComputeUnit;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The operation a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Matmul,
    Attention,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Matmul => "matmul",
            Op::Attention => "attention",
        }
    }
}

/// Where a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel's identity (DESIGN.md): family, variant, precision and tuning parameters as separate
/// fields. [`id`](Self::id) joins the first three; comparisons match on it, and retuning `params`
/// is a change to measure, not a new kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelIdentity {
    pub op: Op,
    pub backend: Backend,
    /// e.g. `matmul.cpu.packed`
    pub family: String,
    /// ISA or shader variant, e.g. `avx2fma`, `wgsl`
    pub variant: String,
    pub precision: Precision,
    /// The execution unit the inner loop runs on: which measured ceiling holds the kernel.
    pub unit: ComputeUnit,
    /// Tuning parameters, e.g. `{"mr": 6, "nr": 16, "mc": 144, ...}`
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl KernelIdentity {
    /// `family.variant.input-accum-output`, e.g. `matmul.cpu.packed.avx2fma.bf16-f32-bf16`.
    pub fn id(&self) -> String {
        format!("{}.{}.{}", self.family, self.variant, self.precision)
    }

    /// The short name within the family (`packed`, `naive`), used by `--kernel` globs.
    pub fn short_name(&self) -> &str {
        self.family.rsplit('.').next().unwrap_or(&self.family)
    }
}

/// Whether a kernel can run a problem here. "Unsupported" is a typed outcome, not a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    Yes,
    No(Unsupported),
}

/// Why a kernel cannot run a problem here. `reason` is the same for every problem that fails the
/// same way (the run's output groups rows by it); `detail` holds this problem's specifics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub reason: String,
    pub detail: Option<String>,
}

impl Unsupported {
    /// A reason with this problem's specifics beside it.
    pub fn with_detail(reason: impl Into<String>, detail: impl Into<String>) -> Unsupported {
        Unsupported {
            reason: reason.into(),
            detail: Some(detail.into()),
        }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{} ({d})", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl From<String> for Unsupported {
    fn from(reason: String) -> Self {
        Unsupported {
            reason,
            detail: None,
        }
    }
}

impl From<&str> for Unsupported {
    fn from(reason: &str) -> Self {
        reason.to_string().into()
    }
}

impl Support {
    /// `Support::No` from a reason (a `String`, `&str` or [`Unsupported`]).
    pub fn no(reason: impl Into<Unsupported>) -> Support {
        Support::No(reason.into())
    }

    pub fn is_yes(&self) -> bool {
        matches!(self, Support::Yes)
    }
}

/// A problem of any op, as plain data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Problem {
    Matmul(MatmulProblem),
    Attention(AttentionProblem),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Matmul(p) => p.fmt(f),
            Problem::Attention(p) => p.fmt(f),
        }
    }
}

impl Problem {
    pub fn op(&self) -> Op {
        match self {
            Problem::Matmul(_) => Op::Matmul,
            Problem::Attention(_) => Op::Attention,
        }
    }

    pub fn work(&self, precision: Precision) -> Work {
        match self {
            Problem::Matmul(p) => p.work(precision),
            Problem::Attention(p) => p.work(precision),
        }
    }

    pub fn validate(&self) -> Result<(), KernelError> {
        match self {
            Problem::Matmul(p) => Ok(p.validate()?),
            Problem::Attention(p) => Ok(p.validate()?),
        }
    }

    /// Lengths of the input tensors, in the order kernels take them (matmul: A, B).
    pub fn input_lens(&self) -> Vec<usize> {
        match self {
            Problem::Matmul(p) => vec![p.a_len(), p.b_len()],
            Problem::Attention(p) => vec![p.q_len_elems(), p.kv_len_elems(), p.kv_len_elems()],
        }
    }

    /// Length of the output tensor.
    pub fn output_len(&self) -> usize {
        match self {
            Problem::Matmul(p) => p.c_len(),
            Problem::Attention(p) => p.q_len_elems(),
        }
    }
}

/// Why a kernel could not be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Problem(#[from] ProblemError),
    #[error(transparent)]
    Attention(#[from] AttentionError),
    #[error("kernel {kernel} does not support this problem: {reason}")]
    Unsupported { kernel: String, reason: String },
    #[error("input {index} has dtype {actual}, kernel {kernel} expects {expected}")]
    InputDType {
        kernel: String,
        index: usize,
        actual: DType,
        expected: DType,
    },
    #[error("{0}")]
    Other(String),
}

/// A kernel ready to run: inputs in place, output and scratch allocated. Creating it is untimed.
pub trait Prepared: Send {
    /// One complete execution, synchronous: when it returns, the output is final.
    fn run(&mut self) -> Result<(), KernelError>;
    /// Overwrite the output with NaN (before each verified run).
    fn poison(&mut self) -> Result<(), KernelError>;
    /// A copy of the output.
    fn output(&mut self) -> Result<Tensor, KernelError>;
    /// Kernels with a device timer (GPU timestamp queries): run `iters` iterations and return
    /// seconds per iteration on the device, with the wall clock around submit + wait beside it
    /// for the cross-check. `None`: no device timer; the runner times [`run`](Self::run) with the
    /// wall clock.
    fn time_device(&mut self, _iters: u64) -> Option<Result<DeviceTiming, KernelError>> {
        None
    }
    /// Parameters the kernel chose when it was prepared, for this problem on this machine (the
    /// decode kernel's KV splits, a GPU kernel's specialization constants: the coop tile per
    /// adapter, the subgroup size), as numbers and flags. The harness records them in the row's
    /// `kernel.params` beside the identity's.
    fn chosen_params(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// Seconds per iteration from [`Prepared::time_device`]: the device's own clock (`None` when the
/// timestamps were unusable) and the host's wall clock around the same submissions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceTiming {
    pub device_s: Option<f64>,
    pub wall_s: f64,
}

/// A reference library run in-process (`crate::peers`): what a `peer` row records as its tool
/// and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerLibrary {
    /// `OpenBLAS`, `ndarray`, `gemm`.
    pub name: &'static str,
    /// The library's version and what it chose on this machine, e.g. `0.3.21 (core SkylakeX,
    /// 2 threads, /usr/lib/x86_64-linux-gnu/libopenblas.so.0)`.
    pub version: String,
    /// What the row should say about the library's choices on this machine, when they make it a
    /// weaker reference than the library can be (an old OpenBLAS that does not recognise the
    /// CPU); the runner records it as the row's `provenance.config.caveat`.
    pub caveat: Option<String>,
    /// How long the library's own threads may keep polling for work after its last call
    /// (OpenBLAS's thread server): the runner waits this long after the library's row, so the
    /// row after it does not share the CPUs with them, and records the wait as the row's
    /// `provenance.config.settle_s`; `run` also waits it once before its probes and first row
    /// (the threads start polling when the library loads). `None` for libraries whose threads
    /// sleep when idle, or that did not load.
    pub settle: Option<std::time::Duration>,
}

/// A registered kernel variant.
pub trait Kernel: Send + Sync {
    fn identity(&self) -> KernelIdentity;
    /// Whether this machine and this problem are within the kernel's reach.
    fn supports(&self, problem: &Problem) -> Support;
    /// Allocate and set up (untimed). `inputs` must have the kernel's input dtype.
    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError>;
    /// Whether this is a baseline kept to small shapes (the harness applies its work cap).
    fn is_baseline(&self) -> bool {
        false
    }
    /// Whether this kernel is broken on purpose (feature `test-kernels`, `crate::testing`).
    fn is_test_kernel(&self) -> bool {
        false
    }
    /// Whether this kernel belongs to the CPU ISA path `selected` (a run times only those, so
    /// `--isa` measures one path). Kernels not tied to a path — GPU kernels, scalar baselines —
    /// always do.
    fn on_isa_path(&self, _selected: crate::isa::Isa) -> bool {
        true
    }
    /// A reference library run in-process (`crate::peers`): its rows are of kind `peer` and
    /// record the library's name and version. `None` for perfledger's own kernels.
    fn peer(&self) -> Option<PeerLibrary> {
        None
    }
    /// Whether the kernel's parallel work runs on the caller's rayon pool (perfledger's CPU
    /// kernels, the `gemm` crate), so the runner may keep that pool's other workers polling for
    /// work between the kernel's calls. `false` for libraries with threads of their own
    /// (OpenBLAS, ndarray's matrixmultiply): a pool worker polling beside them would take a CPU
    /// from them.
    fn on_run_pool(&self) -> bool {
        true
    }
}
