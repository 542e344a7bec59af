//! criterion benches of the CPU matmul kernels on the selected ISA path, throughput in FLOPs
//! (`2·M·N·K` as criterion "elements"). `cargo bench -p perfledger-benches --bench matmul`;
//! `PERFLEDGER_BENCH_FULL=1` adds 4096³.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use perfledger_benches::{bench_id, inputs, prepare_or_stop};
use perfledger_kernels::{MatmulProblem, Problem};
use std::time::Duration;

/// Large buffers (the tensors) on cache lines, as the runner allocates them
/// (`perfledger_kernels::alloc`).
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

fn shapes() -> Vec<MatmulProblem> {
    let mut v = vec![
        MatmulProblem::new(512, 512, 512),
        MatmulProblem::new(2048, 2048, 2048),
        // LLM projections: weights stored [out, in].
        MatmulProblem::new(512, 4096, 4096).transposed_b(),
        MatmulProblem::new(1, 14336, 4096).transposed_b(),
        MatmulProblem::new(1, 14336, 4096),
    ];
    if std::env::var_os("PERFLEDGER_BENCH_FULL").is_some() {
        v.push(MatmulProblem::new(4096, 4096, 4096));
    }
    v
}

fn matmul(c: &mut Criterion) {
    let reg = perfledger_benches::registry();
    for p in shapes() {
        let problem = Problem::Matmul(p);
        // Same-dtype outputs of the selected ISA; the naive baseline only on small shapes.
        let kernels: Vec<_> = reg
            .kernels()
            .iter()
            .filter(|k| {
                let id = k.identity();
                reg.is_selected(k.as_ref())
                    && id.precision.input == id.precision.output
                    && k.supports(&problem).is_yes()
                    && !(k.is_baseline() && p.work(id.precision).flops > 1 << 28)
            })
            .collect();
        let Some(first) = kernels.first() else {
            continue;
        };
        let mut group = c.benchmark_group(bench_id(&first.identity(), &problem).0);
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3));
        for kernel in kernels {
            let id = kernel.identity();
            group.throughput(Throughput::Elements(p.work(id.precision).flops));
            // Verified once before timing (a kernel that fails stops the bench).
            let mut prep = prepare_or_stop(kernel.as_ref(), &problem, &inputs(&id, &problem, 42));
            group.bench_function(
                BenchmarkId::from_parameter(bench_id(&id, &problem).1),
                |b| b.iter(|| prep.run().expect("run")),
            );
        }
        group.finish();
    }
}

criterion_group!(benches, matmul);
criterion_main!(benches);
