use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
fn naive(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    for i in 0..n { for j in 0..n { let mut s = 0.0; for k in 0..n { s += a[i*n+k]*b[k*n+j]; } c[i*n+j] = s; } }
}
fn fix(c: &mut Criterion) {
    let n = 32;
    let a = vec![1.0f32; n*n]; let b = vec![0.5f32; n*n]; let mut out = vec![0.0f32; n*n];
    let mut g = c.benchmark_group("matmul/32x32x32");
    g.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements((2*n*n*n) as u64));
    g.bench_function(BenchmarkId::from_parameter("matmul.cpu.naive.scalar.f32-f32-f32"), |bch| bch.iter(|| naive(n, black_box(&a), black_box(&b), &mut out)));
    g.finish();
    let mut g = c.benchmark_group("fib");
    g.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_millis(300));
    g.bench_function("fib 20", |bch| bch.iter(|| { let (mut x, mut y) = (0u64, 1u64); for _ in 0..black_box(20) { let t = x + y; x = y; y = t; } x }));
    g.finish();
}
criterion_group!(benches, fix);
criterion_main!(benches);
