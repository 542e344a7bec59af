//! Time one packed matmul shape (a development aid for tuning; claims come from `perfledger run`).
//!
//! `cargo run --release -p perfledger-kernels --example mmtime -- M N K [dtype] [path] [blocking] [bt]`
//!
//! `blocking`: any of `mc=N,kc=N,nc=N` (the others the path's own), or `-` for the path's own.
//!
//! `path`: an ISA (`avx512f`, `avx2fma`, `portable`), `avx512bf16` (bf16 only: `vdpbf16ps`) or
//! `amx` (bf16 only: `tdpbf16ps`).
//!
//! `MMTIME_SETS=N` cycles through N input sets, one per call, as the runner does for memory-bound
//! rows (inputs read from memory, not from the cache the previous call warmed), each with its
//! own output. Calls are timed on a worker of a rayon pool (`RAYON_NUM_THREADS` threads), as the
//! runner times them. `MMTIME_DUMP=1` also prints every call's time (µs, in call order) to
//! stderr.

use perfledger_kernels::cpu::matmul::{
    packed_matmul, packed_matmul_bf16, Blocking, BlockingOverride, Path, Workspace,
};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::{DType, Element, MatmulProblem, Tensor};
use std::time::Instant;

/// Large buffers (the tensors) on cache lines, as the runner allocates them
/// (`perfledger_kernels::alloc`).
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

fn time<T: Element>(path: Path, blk: &Blocking, p: &MatmulProblem) -> Vec<f64> {
    let sets: usize = std::env::var("MMTIME_SETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let inputs: Vec<(Tensor, Tensor)> = (0..sets as u64)
        .map(|s| {
            (
                Tensor::random(T::DTYPE, p.a_len(), 1 + 2 * s),
                Tensor::random(T::DTYPE, p.b_len(), 2 + 2 * s),
            )
        })
        .collect();
    // One output per set, as the runner's prepared sets each own theirs (C written cold).
    let mut outs: Vec<Vec<T>> = (0..sets).map(|_| vec![T::default(); p.c_len()]).collect();
    let mut ws = Workspace::default();
    let mut v = Vec::new();
    let t_end = Instant::now() + std::time::Duration::from_secs_f64(3.0);
    while v.len() < 5 || (Instant::now() < t_end && v.len() < 200.max(2 * sets)) {
        let (a, b) = &inputs[v.len() % sets];
        let (a, b) = (T::tensor_slice(a).unwrap(), T::tensor_slice(b).unwrap());
        let c = &mut outs[v.len() % sets];
        let t = Instant::now();
        match path {
            Path::Isa(isa) => packed_matmul::<T, T>(isa, blk, p, a, b, c, &mut ws).unwrap(),
            _ => {
                let (a, b): (&[half::bf16], &[half::bf16]) =
                    (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
                let c: &mut [half::bf16] = bytemuck::cast_slice_mut(c);
                packed_matmul_bf16(path, blk, p, a, b, c, &mut ws).unwrap()
            }
        }
        v.push(t.elapsed().as_secs_f64());
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (m, n, k) = (num(0, 2048), num(1, 2048), num(2, 2048));
    let dtype: DType = args
        .get(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(DType::BF16);
    let path = match args.get(4).map(String::as_str) {
        Some("avx512bf16") => {
            assert_eq!(dtype, DType::BF16, "avx512bf16 takes bf16 inputs");
            Path::Bf16Dot
        }
        Some("amx") => {
            assert_eq!(dtype, DType::BF16, "amx takes bf16 inputs");
            Path::Amx
        }
        Some(s) => Path::Isa(s.parse::<Isa>().unwrap()),
        None => Path::Isa(Isa::best()),
    };
    // Any of mc, kc, nc (`kc=512`); the sizes not given keep the path's cache-derived value.
    let blk = args
        .get(5)
        .filter(|s| *s != "-")
        .map(|s| s.parse::<BlockingOverride>().unwrap())
        .unwrap_or_default()
        .apply(path.default_blocking());
    let mut p = MatmulProblem::new(m, n, k);
    if args.get(6).map(String::as_str) == Some("bt") {
        p = p.transposed_b();
    }
    // Timed on a worker of the pool, as the runner does: from the main thread every call would
    // also pay for waking a worker (≈ 15% of a 256³ call in `perf`, on this VM's wake-ups).
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let v = pool.install(|| match dtype {
        DType::F32 => time::<f32>(path, &blk, &p),
        DType::F16 => time::<half::f16>(path, &blk, &p),
        DType::BF16 => time::<half::bf16>(path, &blk, &p),
    });
    if std::env::var_os("MMTIME_DUMP").is_some() {
        // Every call's time in µs, in call order (to tell a uniformly slow process from one
        // whose calls are bimodal).
        let us: Vec<String> = v.iter().map(|t| format!("{:.0}", t * 1e6)).collect();
        eprintln!("{}", us.join(" "));
    }
    let mut s = v[1..].to_vec();
    s.sort_by(f64::total_cmp);
    let med = s[s.len() / 2];
    let w = p.work(perfledger_kernels::Precision::same(dtype));
    println!(
        "{p} {dtype} {} {blk} threads={} samples={} median={:.4}s {:.1} GFLOP/s {:.2} GB/s(min bytes) best={:.1}",
        path.name(),
        pool.current_num_threads(),
        s.len(),
        med,
        w.flops as f64 / med / 1e9,
        w.min_bytes as f64 / med / 1e9,
        w.flops as f64 / s[0] / 1e9
    );
}
