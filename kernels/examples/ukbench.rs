//! Micro-kernel throughput on cache-resident panels (a development aid for tuning).
//!
//! `cargo run --release -p perfledger-kernels --example ukbench -- [kc] [threads] [a_panels] [b_panels] [shared_c]`
//!
//! Each thread calls the AVX-512 12×32 micro-kernel over `a_panels` A micro-panels and `b_panels`
//! B micro-panels of depth `kc` (the macro-kernel's loop order: B outer, A inner), repeatedly, and
//! reports GFLOP/s — the ceiling the loop nest can reach before packing and barriers. With
//! `shared_c` = 1 every call updates the same C tile (no C traffic), to separate the cost of C
//! from that of streaming A and B. Defaults: kc 256, 1 thread, 1 panel each, shared_c 0.

#[cfg(target_arch = "x86_64")]
fn main() {
    use perfledger_kernels::cpu::matmul::micro::{x86::Avx512_12x32, MicroKernel};
    use std::time::Instant;
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("arguments are non-negative integers"))
        .collect();
    let kc = args.first().copied().unwrap_or(256);
    let threads = args.get(1).copied().unwrap_or(1);
    let a_panels = args.get(2).copied().unwrap_or(1);
    let b_panels = args.get(3).copied().unwrap_or(1);
    let shared_c = args.get(4).copied().unwrap_or(0) == 1;
    let (mr, nr) = (Avx512_12x32::MR, Avx512_12x32::NR);
    let reps = (2_000_000_000usize / (2 * mr * nr * kc * a_panels * b_panels)).max(1);
    let run = move || {
        let a: Vec<f32> = (0..a_panels * kc * mr)
            .map(|i| (i % 7) as f32 * 0.01)
            .collect();
        let b: Vec<f32> = (0..b_panels * kc * nr)
            .map(|i| (i % 5) as f32 * 0.01)
            .collect();
        let mut c = vec![0f32; a_panels * mr * b_panels * nr];
        let ldc = b_panels * nr;
        let t = Instant::now();
        for _ in 0..reps {
            for jp in 0..b_panels {
                for ip in 0..a_panels {
                    // SAFETY: panels and tile are in bounds; the caller checked AVX-512F.
                    unsafe {
                        Avx512_12x32::kernel(
                            kc,
                            a.as_ptr().add(ip * kc * mr),
                            b.as_ptr().add(jp * kc * nr),
                            if shared_c {
                                c.as_mut_ptr()
                            } else {
                                c.as_mut_ptr().add(ip * mr * ldc + jp * nr)
                            },
                            ldc,
                            true,
                        )
                    }
                }
            }
        }
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(&c);
        (reps * a_panels * b_panels * 2 * mr * nr * kc) as f64 / s / 1e9
    };
    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("ukbench: this CPU lacks AVX-512F (the micro-kernel measured here)");
        std::process::exit(2);
    }
    let hs: Vec<_> = (0..threads).map(|_| std::thread::spawn(run)).collect();
    let g: Vec<f64> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    println!(
        "kc={kc} threads={threads} a_panels={a_panels} b_panels={b_panels}: {:.1} GFLOP/s total {:?}",
        g.iter().sum::<f64>(),
        g
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {}
