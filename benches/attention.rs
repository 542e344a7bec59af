//! criterion benches of the CPU attention kernels on the selected ISA path, throughput in useful
//! FLOPs (`4 · head_dim · unmasked pairs · heads` as criterion "elements"; softmax not counted).
//! `cargo bench -p perfledger-benches --bench attention`; `PERFLEDGER_BENCH_FULL=1` adds the
//! long prefill shapes (8 heads × 4096 causal, 32 heads × 2048).
//!
//! Shapes are those of `scripts/attention-side-by-side.sh` (the PyTorch SDPA comparison): prefill
//! at 1024 tokens (head_dim 64, and 128 causal) and decode at `q_len = 1` against an 8192-token
//! KV cache with GQA 32/8. Decode is memory-bound, so its bench rotates input sets spanning 4× the
//! L3 size: consecutive iterations never find K/V in cache.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use perfledger_benches::{bench_id, inputs, prepare_or_stop};
use perfledger_kernels::cpu::cache;
use perfledger_kernels::{AttentionProblem, Op, Problem};
use std::time::Duration;

/// Large buffers (the tensors) on cache lines, as the runner allocates them
/// (`perfledger_kernels::alloc`).
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

fn shapes() -> Vec<AttentionProblem> {
    let mut v = vec![
        AttentionProblem::new(1, 16, 16, 1024, 1024, 64),
        AttentionProblem::new(1, 16, 16, 1024, 1024, 128).causal(true),
        AttentionProblem::new(1, 32, 8, 1, 8192, 128),
    ];
    if std::env::var_os("PERFLEDGER_BENCH_FULL").is_some() {
        v.push(AttentionProblem::new(1, 8, 8, 4096, 4096, 128).causal(true));
        v.push(AttentionProblem::new(1, 32, 32, 2048, 2048, 128));
    }
    v
}

fn attention(c: &mut Criterion) {
    let reg = perfledger_benches::registry();
    let l3 = cache::detected().l3 as u64;
    for p in shapes() {
        let problem = Problem::Attention(p);
        // Same-dtype half precisions of the selected ISA; the naive baseline only on small work.
        let kernels: Vec<_> = reg
            .kernels()
            .iter()
            .filter(|k| {
                let id = k.identity();
                id.op == Op::Attention
                    && reg.is_selected(k.as_ref())
                    && id.precision.input != perfledger_kernels::DType::F32
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
            let work = p.work(id.precision);
            group.throughput(Throughput::Elements(work.flops));
            // Memory-bound rows rotate input sets covering 4× L3 (at most 8 sets).
            let sets = if work.intensity() < 32.0 {
                (4 * l3).div_ceil(work.min_bytes).clamp(1, 8) as usize
            } else {
                1
            };
            let mut preps: Vec<_> = (0..sets)
                .map(|s| {
                    // Every set verified once before timing.
                    let ins = inputs(&id, &problem, 42 + 10 * s as u64);
                    prepare_or_stop(kernel.as_ref(), &problem, &ins)
                })
                .collect();
            let mut i = 0;
            group.bench_function(
                BenchmarkId::from_parameter(bench_id(&id, &problem).1),
                |b| {
                    b.iter(|| {
                        preps[i % sets].run().expect("run");
                        i += 1;
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, attention);
criterion_main!(benches);
