//! Kernels broken on purpose (cargo feature `test-kernels`, off by default): they wrap a real
//! kernel and add one fault, so tests, benches and the harness can show that a broken kernel is
//! caught — never timed as if correct, never ranked.
//!
//! | variant | fault |
//! |---|---|
//! | `wrong` | one output element off by 1 (a stale tile) |
//! | `nan` | one output element NaN |
//! | `panic` | `run` panics |
//! | `slow10` | correct, and every run 10% slower (spins for a tenth of the wrapped run's time) |
//!
//! They are registered only when [`crate::RegistryOptions::test_kernels`] is set (`perfledger
//! run --allow-test-kernels`); their family is `<op>.<backend>.test` and
//! [`crate::Kernel::is_test_kernel`] says so.

use crate::dtype::Tensor;
use crate::kernel::{Kernel, KernelError, KernelIdentity, Prepared, Problem, Support};
use std::sync::Arc;
use std::time::Instant;

/// The fault a test kernel adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Wrong,
    Nan,
    Panic,
    Slow10,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::Wrong, Fault::Nan, Fault::Panic, Fault::Slow10];

    /// The variant name (`wrong`, `nan`, `panic`, `slow10`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Wrong => "wrong",
            Fault::Nan => "nan",
            Fault::Panic => "panic",
            Fault::Slow10 => "slow10",
        }
    }

    /// Whether the kernel's results are still correct (only slower).
    pub fn is_correct(self) -> bool {
        self == Fault::Slow10
    }
}

/// A real kernel with one fault.
pub struct FaultyKernel {
    inner: Box<dyn Kernel>,
    fault: Fault,
}

impl FaultyKernel {
    pub fn new(inner: Box<dyn Kernel>, fault: Fault) -> FaultyKernel {
        FaultyKernel { inner, fault }
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }
}

impl Kernel for FaultyKernel {
    fn identity(&self) -> KernelIdentity {
        let mut id = self.inner.identity();
        id.params.insert(
            "wraps".into(),
            format!("{}.{}", id.family, id.variant).into(),
        );
        id.family = format!("{}.{}.test", id.op.name(), id.backend.name());
        id.variant = self.fault.name().into();
        id
    }

    fn supports(&self, problem: &Problem) -> Support {
        self.inner.supports(problem)
    }

    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(FaultyPrepared {
            inner: self.inner.prepare(problem, inputs)?,
            fault: self.fault,
        }))
    }

    fn is_test_kernel(&self) -> bool {
        true
    }
    fn on_run_pool(&self) -> bool {
        self.inner.on_run_pool()
    }
}

struct FaultyPrepared {
    inner: Box<dyn Prepared>,
    fault: Fault,
}

impl Prepared for FaultyPrepared {
    fn run(&mut self) -> Result<(), KernelError> {
        match self.fault {
            Fault::Panic => panic!("test kernel `panic`: a kernel that crashes"),
            Fault::Slow10 => {
                let t = Instant::now();
                self.inner.run()?;
                // Spin, not sleep: a sleep's wake-up latency would dwarf a tenth of a short run.
                let extra = t.elapsed() / 10;
                let spin = Instant::now();
                while spin.elapsed() < extra {
                    std::hint::spin_loop();
                }
                Ok(())
            }
            Fault::Wrong | Fault::Nan => self.inner.run(),
        }
    }

    fn poison(&mut self) -> Result<(), KernelError> {
        self.inner.poison()
    }

    fn output(&mut self) -> Result<Tensor, KernelError> {
        let mut out = self.inner.output()?;
        let bad = |v: f32| match self.fault {
            Fault::Wrong => v + 1.0,
            Fault::Nan => f32::NAN,
            _ => v,
        };
        if !self.fault.is_correct() && !out.is_empty() {
            let i = out.len() / 2;
            match &mut out {
                Tensor::F32(v) => v[i] = bad(v[i]),
                Tensor::F16(v) => v[i] = half::f16::from_f32(bad(v[i].to_f32())),
                Tensor::BF16(v) => v[i] = half::bf16::from_f32(bad(v[i].to_f32())),
            }
        }
        Ok(out)
    }
}
