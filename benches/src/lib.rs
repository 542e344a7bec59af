//! Shared helpers of the criterion benches: benchmark ids derived from kernel identities and
//! shapes, seeded random inputs (never zeros), and [`prepare_verified`]: every bench verifies
//! its kernel once against the float64 reference — as `perfledger run` does — before timing it,
//! so `cargo bench` never times a broken kernel.

use perfledger_kernels::verify::{verify_problem, VerifyOptions};
use perfledger_kernels::{Kernel, KernelIdentity, Prepared, Problem, Registry, Tensor};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// The kernels broken on purpose join the benches only with this variable set to 1 (in builds
/// with the `test-kernels` feature): `PERFLEDGER_BENCH_TEST_KERNELS=1 cargo bench --features
/// test-kernels -- --test` must fail.
pub const TEST_KERNELS_ENV: &str = "PERFLEDGER_BENCH_TEST_KERNELS";

/// The registry the benches use: the default, plus the test kernels when asked
/// ([`TEST_KERNELS_ENV`]).
pub fn registry() -> Registry {
    Registry::new(&perfledger_kernels::RegistryOptions {
        test_kernels: std::env::var(TEST_KERNELS_ENV).is_ok_and(|v| v == "1"),
        ..Default::default()
    })
}

/// Prepare `kernel` on `inputs`, then poison its output, run it once and verify that run
/// against the float64 reference. `Err` (with the kernel, the shape and what failed) when
/// preparing or running fails, the kernel panics, or the verification fails: such a kernel is
/// never timed.
pub fn prepare_verified(
    kernel: &dyn Kernel,
    problem: &Problem,
    inputs: &[Arc<Tensor>],
) -> Result<Box<dyn Prepared>, String> {
    let id = kernel.identity();
    let what = format!("{} on {problem}", id.id());
    let checked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut p = kernel
            .prepare(problem, inputs)
            .map_err(|e| format!("prepare: {e}"))?;
        p.poison().map_err(|e| format!("poison: {e}"))?;
        p.run().map_err(|e| format!("run: {e}"))?;
        let out = p.output().map_err(|e| format!("output: {e}"))?;
        let v = verify_problem(
            problem,
            id.precision,
            inputs,
            &out,
            &VerifyOptions::default(),
        );
        match v.verdict {
            perfledger_kernels::verify::Verdict::Pass => Ok(p),
            perfledger_kernels::verify::Verdict::Fail => Err(format!(
                "verification failed ({}: error {:.3e} > bound {:.3e}{})",
                v.method,
                v.error,
                v.bound,
                v.detail.map(|d| format!("; {d}")).unwrap_or_default()
            )),
        }
    }));
    match checked {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(format!("{what}: {e}; not timed")),
        Err(_) => Err(format!("{what}: the kernel panicked; not timed")),
    }
}

/// [`prepare_verified`] for a bench: a kernel that fails verification stops `cargo bench` with
/// the reason (a bench of a broken kernel would be a lie).
pub fn prepare_or_stop(
    kernel: &dyn Kernel,
    problem: &Problem,
    inputs: &[Arc<Tensor>],
) -> Box<dyn Prepared> {
    prepare_verified(kernel, problem, inputs).unwrap_or_else(|e| panic!("{e}"))
}

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
