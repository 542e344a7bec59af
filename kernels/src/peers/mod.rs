//! In-process reference libraries ("peers"), registered like any kernel and verified like every
//! row, so that a plain `perfledger run` carries its own references: the same inputs, the same
//! process, the same sitting. Rows of these kernels have kind `peer` ([`Kernel::peer`]).
//!
//! - [`openblas`]: OpenBLAS through its C API (`cblas_sgemm`; `cblas_sbgemm` where the build has
//!   it), loaded at run time from the system library or `PERFLEDGER_OPENBLAS`, so a machine without
//!   it builds and runs, and its rows are `unsupported` saying what to install;
//! - [`rust`]: the Rust-ecosystem baselines a Rust user reaches for first: `ndarray`'s
//!   `Array2::dot` (matrixmultiply's sgemm, with its threading) and the `gemm` crate (f32, f16).
//!
//! A peer computes `C = A · op(B)` on perfledger's row-major buffers through the library's own
//! stride arguments (B transposed included); nothing is copied or converted inside the timed call.

pub mod openblas;
pub mod rust;

use crate::dtype::{Element, Tensor};
pub use crate::kernel::PeerLibrary;
use crate::kernel::{Kernel, KernelError, KernelIdentity, Prepared, Problem, Support};
use crate::problem::MatmulProblem;
use std::sync::Arc;

/// Every peer kernel of this build.
pub fn kernels() -> Vec<Box<dyn Kernel>> {
    let mut v: Vec<Box<dyn Kernel>> = Vec::new();
    v.extend(openblas::kernels());
    v.extend(rust::kernels());
    v
}

/// The matmul problem of a peer, with the checks every peer makes: a matmul, valid, the inputs
/// of the kernel's input dtype and long enough.
pub(crate) fn matmul_inputs(
    id: &KernelIdentity,
    support: Support,
    problem: &Problem,
    inputs: &[Arc<Tensor>],
) -> Result<(MatmulProblem, Arc<Tensor>, Arc<Tensor>), KernelError> {
    if let Support::No(reason) = support {
        return Err(KernelError::Unsupported {
            kernel: id.id(),
            reason: reason.to_string(),
        });
    }
    let Problem::Matmul(p) = *problem else {
        return Err(KernelError::Unsupported {
            kernel: id.id(),
            reason: "not a matmul".into(),
        });
    };
    let [a, b] = inputs else {
        return Err(KernelError::Other(format!(
            "matmul takes 2 inputs (A, B), {} given",
            inputs.len()
        )));
    };
    for (index, t) in [a, b].into_iter().enumerate() {
        if t.dtype() != id.precision.input {
            return Err(KernelError::InputDType {
                kernel: id.id(),
                index,
                actual: t.dtype(),
                expected: id.precision.input,
            });
        }
    }
    p.check_buffers(a.len(), b.len(), p.c_len())?;
    Ok((p, a.clone(), b.clone()))
}

/// Whether a problem is a valid matmul (the common part of every peer's `supports`).
pub(crate) fn check_matmul(problem: &Problem) -> Support {
    match problem {
        Problem::Matmul(p) => match p.validate() {
            Ok(()) => Support::Yes,
            Err(e) => Support::no(e.to_string()),
        },
        _ => Support::no("not a matmul"),
    }
}

/// One batch of a peer's library call: `c = a · op(b)` with every slice at the batch's first
/// element.
pub(crate) type BatchCall<T, O> = Box<dyn Fn(&MatmulProblem, &[T], &[T], &mut [O]) + Send>;

/// A prepared peer matmul: the inputs (element type `T`), the output (`O`) and the library call.
pub(crate) struct PeerMatmul<T: Element, O: Element> {
    problem: MatmulProblem,
    a: Arc<Tensor>,
    b: Arc<Tensor>,
    c: Vec<O>,
    call: BatchCall<T, O>,
}

impl<T: Element, O: Element> PeerMatmul<T, O> {
    pub fn boxed(
        problem: MatmulProblem,
        a: Arc<Tensor>,
        b: Arc<Tensor>,
        call: BatchCall<T, O>,
    ) -> Box<dyn Prepared> {
        Box::new(PeerMatmul {
            c: vec![O::nan(); problem.c_len()],
            problem,
            a,
            b,
            call,
        })
    }
}

impl<T: Element, O: Element> Prepared for PeerMatmul<T, O> {
    fn run(&mut self) -> Result<(), KernelError> {
        let p = self.problem;
        let a = T::tensor_slice(&self.a).expect("dtype checked in prepare");
        let b = T::tensor_slice(&self.b).expect("dtype checked in prepare");
        for bi in 0..p.batch {
            (self.call)(
                &p,
                &a[bi * p.a_stride()..(bi + 1) * p.a_stride()],
                &b[bi * p.b_stride()..(bi + 1) * p.b_stride()],
                &mut self.c[bi * p.c_stride()..(bi + 1) * p.c_stride()],
            );
        }
        Ok(())
    }
    fn poison(&mut self) -> Result<(), KernelError> {
        self.c.iter_mut().for_each(|x| *x = O::nan());
        Ok(())
    }
    fn output(&mut self) -> Result<Tensor, KernelError> {
        Ok(O::into_tensor(self.c.clone()))
    }
}
