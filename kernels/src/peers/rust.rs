//! The Rust-ecosystem baselines: what a Rust user reaches for first.
//!
//! - `ndarray` (`matmul.cpu.ndarray.dot`, f32): `ndarray::linalg::general_mat_mul`, the call
//!   behind `Array2::dot` without the allocation of a fresh output, i.e. matrixmultiply's sgemm on
//!   strided views of perfledger's buffers. With the `matrixmultiply-threading` feature (enabled
//!   here) it runs on matrixmultiply's own thread pool: `MATMUL_NUM_THREADS` threads, default the
//!   physical cores, at most 4 (matrixmultiply 0.3's limit), fixed at the first call of the
//!   process; `perfledger run` sets `MATMUL_NUM_THREADS` to its `--threads` unless the variable
//!   is already set. ndarray has no half-precision GEMM (its `dot` on f16 is a scalar loop), so
//!   only f32 is registered.
//! - the `gemm` crate (`matmul.cpu.gemm.gemm`, f32 and f16), with its `x86-v4` feature so its
//!   AVX-512 kernels are used where the CPU has them, parallel over the run's rayon pool
//!   (`Parallelism::Rayon(threads)`). f16 is converted to f32 while packing and multiplied by the
//!   f32 micro-kernels.

use super::{check_matmul, matmul_inputs, PeerLibrary, PeerMatmul};
use crate::dtype::{DType, Tensor};
use crate::isa::Isa;
use crate::kernel::{
    Backend, ComputeUnit, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support,
};
use crate::problem::{MatmulProblem, Precision};
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use std::sync::Arc;

/// The peer kernels of this module.
pub fn kernels() -> Vec<Box<dyn Kernel>> {
    vec![
        Box::new(NdarrayMatmul),
        Box::new(GemmCrateMatmul { dtype: DType::F32 }),
        Box::new(GemmCrateMatmul { dtype: DType::F16 }),
    ]
}

/// The thread count matrixmultiply uses (its rule: `MATMUL_NUM_THREADS`, else the physical cores;
/// at most 4), as far as this process can tell: the variable, or `None` when it is unset.
pub fn matrixmultiply_threads() -> Option<usize> {
    std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map(|n| n.clamp(1, 4))
}

/// `A` of one batch as an `m × k` view (row stride `lda`).
fn a_view<'a, T>(p: &MatmulProblem, a: &'a [T]) -> ArrayView2<'a, T> {
    ArrayView2::from_shape(
        (p.m, p.k).strides((p.lda, 1)),
        &a[..(p.m - 1) * p.lda + p.k],
    )
    .expect("A fits its leading dimension (checked by the problem)")
}

/// `op(B)` of one batch as a `k × n` view: B `[k, n]` (row stride `ldb`), or Bᵀ of B `[n, k]`.
fn b_view<'a, T>(p: &MatmulProblem, b: &'a [T]) -> ArrayView2<'a, T> {
    if p.trans_b {
        ArrayView2::from_shape(
            (p.n, p.k).strides((p.ldb, 1)),
            &b[..(p.n - 1) * p.ldb + p.k],
        )
        .expect("B fits its leading dimension (checked by the problem)")
        .reversed_axes()
    } else {
        ArrayView2::from_shape(
            (p.k, p.n).strides((p.ldb, 1)),
            &b[..(p.k - 1) * p.ldb + p.n],
        )
        .expect("B fits its leading dimension (checked by the problem)")
    }
}

/// `ndarray::linalg::general_mat_mul` (matrixmultiply sgemm), f32.
pub struct NdarrayMatmul;

impl Kernel for NdarrayMatmul {
    fn identity(&self) -> KernelIdentity {
        KernelIdentity {
            op: Op::Matmul,
            backend: Backend::Cpu,
            family: "matmul.cpu.ndarray".into(),
            variant: "dot".into(),
            precision: Precision::same(DType::F32),
            // matrixmultiply selects AVX/FMA kernels at run time (it has no AVX-512 sgemm).
            unit: ComputeUnit::CpuFma(if Isa::Avx2fma.available() {
                Isa::Avx2fma
            } else {
                Isa::Portable
            }),
            params: serde_json::Map::new(),
        }
    }
    fn supports(&self, problem: &Problem) -> Support {
        check_matmul(problem)
    }
    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let id = self.identity();
        let (p, a, b) = matmul_inputs(&id, self.supports(problem), problem, inputs)?;
        Ok(PeerMatmul::<f32, f32>::boxed(
            p,
            a,
            b,
            Box::new(|p, a, b, c| {
                let len = (p.m - 1) * p.ldc + p.n;
                let mut cv =
                    ArrayViewMut2::from_shape((p.m, p.n).strides((p.ldc, 1)), &mut c[..len])
                        .expect("C fits its leading dimension (checked by the problem)");
                ndarray::linalg::general_mat_mul(1.0, &a_view(p, a), &b_view(p, b), 0.0, &mut cv);
            }),
        ))
    }
    /// matrixmultiply's own thread pool, not the run's.
    fn on_run_pool(&self) -> bool {
        false
    }
    fn peer(&self) -> Option<PeerLibrary> {
        Some(PeerLibrary {
            name: "ndarray",
            version: format!(
                "0.17 (matrixmultiply 0.3 sgemm, threading: {})",
                match matrixmultiply_threads() {
                    Some(n) => format!("{n} threads (MATMUL_NUM_THREADS)"),
                    None => "physical cores, at most 4 (MATMUL_NUM_THREADS unset)".into(),
                }
            ),
            caveat: None,
            settle: None,
        })
    }
}

/// The `gemm` crate, f32 or f16.
pub struct GemmCrateMatmul {
    dtype: DType,
}

impl Kernel for GemmCrateMatmul {
    fn identity(&self) -> KernelIdentity {
        KernelIdentity {
            op: Op::Matmul,
            backend: Backend::Cpu,
            family: "matmul.cpu.gemm".into(),
            variant: "gemm".into(),
            precision: match self.dtype {
                DType::F16 => Precision {
                    input: DType::F16,
                    accum: DType::F32,
                    output: DType::F16,
                },
                d => Precision::same(d),
            },
            unit: ComputeUnit::CpuFma(Isa::best()),
            params: serde_json::Map::new(),
        }
    }
    fn supports(&self, problem: &Problem) -> Support {
        check_matmul(problem)
    }
    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let id = self.identity();
        let (p, a, b) = matmul_inputs(&id, self.supports(problem), problem, inputs)?;
        let threads = rayon::current_num_threads();
        Ok(match self.dtype {
            DType::F16 => PeerMatmul::<half::f16, half::f16>::boxed(
                p,
                a,
                b,
                Box::new(move |p, a, b, c| {
                    gemm_call(p, a, b, c, threads, half::f16::ZERO, half::f16::ONE)
                }),
            ),
            _ => PeerMatmul::<f32, f32>::boxed(
                p,
                a,
                b,
                Box::new(move |p, a, b, c| gemm_call(p, a, b, c, threads, 0.0, 1.0)),
            ),
        })
    }
    fn peer(&self) -> Option<PeerLibrary> {
        Some(PeerLibrary {
            name: "gemm",
            version: format!(
                "0.19 (x86-v4 kernels allowed, Parallelism::Rayon({}))",
                rayon::current_num_threads()
            ),
            caveat: None,
            settle: None,
        })
    }
}

/// `c = a · op(b)` through `gemm::gemm` (its convention: `dst = alpha·dst + beta·lhs·rhs`).
fn gemm_call<T: 'static + Copy>(
    p: &MatmulProblem,
    a: &[T],
    b: &[T],
    c: &mut [T],
    threads: usize,
    zero: T,
    one: T,
) {
    assert!(a.len() >= p.a_stride() && b.len() >= p.b_stride() && c.len() >= p.c_stride());
    let (rhs_cs, rhs_rs) = if p.trans_b {
        (p.ldb as isize, 1)
    } else {
        (1, p.ldb as isize)
    };
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every access is within the batch's buffers at these strides (asserted above), the
    // output does not alias the inputs, and `T` is f32 or gemm's f16 (half::f16).
    unsafe {
        gemm::gemm(
            p.m,
            p.n,
            p.k,
            c.as_mut_ptr(),
            1,
            p.ldc as isize,
            false,
            a.as_ptr(),
            1,
            p.lda as isize,
            b.as_ptr(),
            rhs_cs,
            rhs_rs,
            zero,
            one,
            false,
            false,
            false,
            par,
        )
    }
}
