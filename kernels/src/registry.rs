//! Every kernel variant, listed once: identity, `supports()`, and a constructor (`prepare`).
//!
//! The harness iterates [`Registry::kernels`]; adding a kernel here adds it to `perfledger run`,
//! `perfledger list` and the registry-driven tests.

use crate::cpu::isa::Isa;
use crate::cpu::matmul::{Blocking, NaiveMatmul, PackedMatmul, BF16DOT_VARIANT};
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
}

/// Seconds per iteration from [`Prepared::time_device`]: the device's own clock (`None` when the
/// timestamps were unusable) and the host's wall clock around the same submissions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceTiming {
    pub device_s: Option<f64>,
    pub wall_s: f64,
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
    /// Whether this kernel is broken on purpose (feature `test-kernels`, [`crate::testing`]).
    fn is_test_kernel(&self) -> bool {
        false
    }
}

/// Options that choose among registered variants and override tunables.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Force the CPU ISA path (default: the best detected).
    pub isa: Option<Isa>,
    /// Override the cache blocking of the packed matmul (default: derived from detected caches).
    pub blocking: Option<Blocking>,
    /// Also register the kernels broken on purpose ([`crate::testing`]; only in builds with the
    /// `test-kernels` feature, ignored otherwise).
    pub test_kernels: bool,
}

/// The kernels of this build.
pub struct Registry {
    kernels: Vec<Box<dyn Kernel>>,
    isa_selected: Isa,
}

/// Precisions the CPU matmul kernels implement: same-type output and f32 output.
pub fn matmul_precisions() -> Vec<Precision> {
    let mut v = Vec::new();
    for d in DType::ALL {
        v.push(Precision::same(d));
        if d != DType::F32 {
            v.push(Precision::widening(d));
        }
    }
    v
}

impl Registry {
    /// Every kernel variant of this build. ISA-specific variants are listed for every ISA; those the
    /// CPU lacks answer `Support::No`, and only the selected ISA is marked as such.
    pub fn new(options: &RegistryOptions) -> Registry {
        let isa_selected = options.isa.unwrap_or_else(Isa::best);
        let blocking = options.blocking;
        let mut kernels: Vec<Box<dyn Kernel>> = Vec::new();
        for precision in matmul_precisions() {
            kernels.push(Box::new(NaiveMatmul::new(precision)));
            for isa in Isa::ALL {
                kernels.push(Box::new(PackedMatmul::new(isa, precision, blocking)));
            }
            if precision.input == DType::BF16 {
                kernels.push(Box::new(PackedMatmul::bf16dot(precision, blocking)));
            }
        }
        for precision in crate::cpu::attention::attention_precisions() {
            use crate::cpu::attention::CpuAttentionKernel;
            kernels.push(Box::new(CpuAttentionKernel::naive(precision)));
            for isa in Isa::ALL {
                kernels.push(Box::new(CpuAttentionKernel::flash(isa, precision)));
                kernels.push(Box::new(CpuAttentionKernel::decode(isa, precision)));
            }
        }
        #[cfg(feature = "gpu")]
        kernels.extend(crate::gpu::kernels());
        #[cfg(feature = "test-kernels")]
        if options.test_kernels {
            use crate::testing::{Fault, FaultyKernel};
            for fault in Fault::ALL {
                for d in DType::ALL {
                    kernels.push(Box::new(FaultyKernel::new(
                        Box::new(PackedMatmul::new(
                            isa_selected,
                            Precision::same(d),
                            blocking,
                        )),
                        fault,
                    )));
                }
                kernels.push(Box::new(FaultyKernel::new(
                    Box::new(crate::cpu::attention::CpuAttentionKernel::flash(
                        isa_selected,
                        Precision::same(DType::BF16),
                    )),
                    fault,
                )));
            }
        }
        Registry {
            kernels,
            isa_selected,
        }
    }

    pub fn kernels(&self) -> &[Box<dyn Kernel>] {
        &self.kernels
    }

    /// The ISA path chosen for this run (forced or detected).
    pub fn isa_selected(&self) -> Isa {
        self.isa_selected
    }

    /// Whether a kernel belongs to the selected ISA path (kernels without an ISA variant always
    /// do). The runner runs only these. `packed.avx512bf16` belongs to the AVX-512F path on CPUs
    /// with AVX512_BF16, beside `packed.avx512f`, so both are measured.
    pub fn is_selected(&self, kernel: &dyn Kernel) -> bool {
        let id = kernel.identity();
        if id.family == "matmul.cpu.packed" && id.variant == BF16DOT_VARIANT {
            return self.isa_selected == Isa::Avx512f && crate::cpu::isa::detected().avx512bf16;
        }
        match id.variant.parse::<Isa>() {
            Ok(isa) => isa == self.isa_selected,
            Err(_) => true,
        }
    }

    pub fn find(&self, id: &str) -> Option<&dyn Kernel> {
        self.kernels
            .iter()
            .find(|k| k.identity().id() == id)
            .map(|k| k.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique() {
        let reg = Registry::new(&RegistryOptions::default());
        let ids: Vec<String> = reg.kernels().iter().map(|k| k.identity().id()).collect();
        let set: HashSet<&String> = ids.iter().collect();
        assert_eq!(set.len(), ids.len(), "duplicate kernel ids: {ids:?}");
        assert!(ids.contains(&"matmul.cpu.packed.avx2fma.bf16-f32-bf16".to_string()));
        assert!(ids.contains(&"matmul.cpu.naive.scalar.f16-f32-f32".to_string()));
        let bf16dot: Vec<&String> = ids.iter().filter(|i| i.contains(".avx512bf16.")).collect();
        assert_eq!(
            bf16dot,
            [
                "matmul.cpu.packed.avx512bf16.bf16-f32-bf16",
                "matmul.cpu.packed.avx512bf16.bf16-f32-f32"
            ]
        );
    }

    #[test]
    fn bf16dot_is_selected_with_avx512f_only_where_the_cpu_has_it() {
        let has = crate::cpu::isa::detected().avx512bf16;
        for isa in Isa::ALL {
            let reg = Registry::new(&RegistryOptions {
                isa: Some(isa),
                ..RegistryOptions::default()
            });
            let k = reg
                .find("matmul.cpu.packed.avx512bf16.bf16-f32-bf16")
                .unwrap();
            assert_eq!(reg.is_selected(k), isa == Isa::Avx512f && has, "{isa}");
            let p = Problem::Matmul(MatmulProblem::new(4, 4, 4));
            match k.supports(&p) {
                Support::Yes => assert!(has),
                Support::No(why) => {
                    assert!(!has);
                    assert!(why.reason.contains("avx512bf16"), "{why}");
                }
            }
            // The f32 paths keep their selection.
            let f = reg.find("matmul.cpu.packed.avx512f.bf16-f32-bf16").unwrap();
            assert_eq!(reg.is_selected(f), isa == Isa::Avx512f);
        }
    }
}
