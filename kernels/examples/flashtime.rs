//! Time the CPU flash (prefill) attention kernel on one shape (a development aid; claims come from
//! `perfledger run`).
//!
//! `cargo run --release -p perfledger-kernels --example flashtime -- [path] [q_heads] [kv_heads] [q_len] [kv_len] [head_dim] [causal]`
//!
//! `path` is `amx`, `avx512bf16` or an ISA name (default `amx`); the inputs are bf16, the output
//! bf16, as the runner's `bf16-f32-bf16` rows. Defaults: h32/32 q2048 kv2048 d128, not causal.
//! `FLASHTIME_SECS` (default 3) sets how long it samples; the GFLOP/s of the median and of the best
//! call are printed, FLOPs counted as the runner counts them (4·head_dim per unmasked pair).

use half::bf16;
use perfledger_kernels::cpu::attention::{flash_path_mutant, FlashPath, Mutation};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::{AttentionProblem, DType, Tensor};
use std::time::{Duration, Instant};

/// Large buffers (the tensors) on cache lines, as the runner allocates them.
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let path = match args.first().map(String::as_str).unwrap_or("amx") {
        "amx" => FlashPath::Amx,
        "avx512bf16" => FlashPath::Bf16Dot,
        isa => FlashPath::Isa(isa.parse::<Isa>().expect("path: amx, avx512bf16 or an ISA")),
    };
    let (qh, kvh, ql, kl, d) = (
        num(1, 32),
        num(2, 32),
        num(3, 2048),
        num(4, 2048),
        num(5, 128),
    );
    let causal = args.get(6).is_some_and(|s| s == "causal" || s == "1");
    let p = AttentionProblem::new(1, qh, kvh, ql, kl, d).causal(causal);
    let secs: f64 = std::env::var("FLASHTIME_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let ins = [
        Tensor::random(DType::BF16, p.q_len_elems(), 1),
        Tensor::random(DType::BF16, p.kv_len_elems(), 2),
        Tensor::random(DType::BF16, p.kv_len_elems(), 3),
    ];
    let [q, k, v] = &ins;
    let (q, k, v): (&[bf16], &[bf16], &[bf16]) = (
        bytemuck::cast_slice(q.as_bytes()),
        bytemuck::cast_slice(k.as_bytes()),
        bytemuck::cast_slice(v.as_bytes()),
    );
    let mut out = vec![bf16::ZERO; p.q_len_elems()];
    // Timed on a worker of the pool, as the runner does.
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut t = pool.install(|| {
        let mut t = Vec::new();
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while t.len() < 5 || Instant::now() < end {
            let s = Instant::now();
            flash_path_mutant(path, &p, q, k, v, &mut out, Mutation::None).unwrap();
            t.push(s.elapsed().as_secs_f64());
        }
        t
    });
    t.remove(0);
    t.sort_by(f64::total_cmp);
    let flops = (4 * p.head_dim * p.batch * p.q_heads) as f64 * p.unmasked_pairs() as f64;
    println!(
        "flash {path} {p} threads={} samples={} median={:.3}ms {:.1} GFLOP/s best {:.1}",
        pool.current_num_threads(),
        t.len(),
        t[t.len() / 2] * 1e3,
        flops / t[t.len() / 2] / 1e9,
        flops / t[0] / 1e9
    );
}
