//! Micro-kernel throughput on cache-resident panels (a development aid for tuning).
//!
//! `cargo run --release -p perfledger-kernels --example ukbench -- [kc] [threads] [a_panels] [b_panels] [shared_c]`
//!
//! Each thread calls the AVX-512 12×32 micro-kernel over `a_panels` A micro-panels and `b_panels`
//! B micro-panels of depth `kc` (the macro-kernel's loop order: B outer, A inner), repeatedly, and
//! reports GFLOP/s — the ceiling the loop nest can reach before packing and barriers. With
//! `shared_c` = 1 every call updates the same C tile (no C traffic), to separate the cost of C
//! from that of streaming A and B. Defaults: kc 256, 1 thread, 1 panel each, shared_c 0.
//! `UKBENCH_KERNEL=amx` measures the AMX-BF16 32×32 tile kernel instead (kc a multiple of 32),
//! `UKBENCH_KERNEL=bf16dot` the AVX512_BF16 12×32 `vdpbf16ps` kernel (kc even: kc/2 k-pairs).
//! `UKBENCH_ORDER=a` runs A outer and B inner instead (the one-pass nest's order: each A
//! micro-panel over a chunk of B micro-panels). With the AMX kernel, `UKBENCH_RANDOM=1` fills the
//! panels with random bf16 (magnitudes in [1/8, 2), random signs) instead of zeros and small
//! integers, and `UKBENCH_AROWS=1` reads A in place (`amx::kernel_rows`) from row-major rows of
//! kc values, as the nest reads A.

#[cfg(target_arch = "x86_64")]
fn main() {
    use perfledger_kernels::cpu::matmul::micro::{x86::Avx512_12x32, MicroKernel};
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
    let amx = std::env::var("UKBENCH_KERNEL").is_ok_and(|k| k == "amx");
    let bf16dot = std::env::var("UKBENCH_KERNEL").is_ok_and(|k| k == "bf16dot");
    let run = move || {
        if amx {
            return amx_rate(kc, a_panels, b_panels, shared_c, reps);
        }
        if bf16dot {
            use perfledger_kernels::cpu::matmul::micro::{x86::Avx512Bf16_12x32, PairMicroKernel};
            let kp = kc / 2;
            // Pair words of small bf16 values (0.125 · (i % 7) in both halves: 0x3e00 steps).
            let word = |i: usize| {
                let h = half::bf16::from_f32(0.125 * (i % 7) as f32).to_bits() as u32;
                h | (h << 16)
            };
            let a: Vec<u32> = (0..a_panels * kp * mr).map(word).collect();
            let b: Vec<u32> = (0..b_panels * kp * nr).map(word).collect();
            let shape = (a_panels, b_panels, mr, nr, 2 * kp);
            return tile_rate(reps, shape, shared_c, |ip, jp, c, ldc| {
                // SAFETY: panels and tile are in bounds; main checked AVX512_BF16.
                unsafe {
                    Avx512Bf16_12x32::kernel(
                        kp,
                        a.as_ptr().add(ip * kp * mr),
                        b.as_ptr().add(jp * kp * nr),
                        c,
                        ldc,
                        true,
                    )
                }
            });
        }
        let a = aligned(a_panels * kc * mr, |i| (i % 7) as f32 * 0.01);
        let b = aligned(b_panels * kc * nr, |i| (i % 5) as f32 * 0.01);
        let shape = (a_panels, b_panels, mr, nr, kc);
        tile_rate(reps, shape, shared_c, |ip, jp, c, ldc| {
            // SAFETY: panels and tile are in bounds; main checked AVX-512F.
            unsafe {
                Avx512_12x32::kernel(
                    kc,
                    a.as_ptr().add(ip * kc * mr),
                    b.as_ptr().add(jp * kc * nr),
                    c,
                    ldc,
                    true,
                )
            }
        })
    };
    if amx && !perfledger_kernels::isa::detected().amx_bf16 {
        eprintln!("ukbench: this CPU (or this process) cannot use AMX-BF16 tiles");
        std::process::exit(2);
    }
    if bf16dot && !perfledger_kernels::isa::detected().avx512bf16 {
        eprintln!("ukbench: this CPU lacks AVX512_BF16 (the bf16dot kernel)");
        std::process::exit(2);
    }
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

/// GFLOP/s of the AMX 32×32 kernel over cache-resident panels, in the loop order of `main`.
#[cfg(target_arch = "x86_64")]
fn amx_rate(kc: usize, a_panels: usize, b_panels: usize, shared_c: bool, reps: usize) -> f64 {
    use perfledger_kernels::cpu::matmul::micro::amx;
    assert!(
        kc.is_multiple_of(amx::K_STEP),
        "the AMX kernel takes kc in steps of 32"
    );
    let (mr, nr, steps) = (amx::MR, amx::NR, kc / 2);
    // Small integers as bf16 bits (1.0 = 0x3f80, 0 = 0): exact products, no denormals.
    let random = std::env::var("UKBENCH_RANDOM").is_ok_and(|v| v == "1");
    // Random bf16 pairs: exponent fields 0x7c–0x7f (magnitudes in [1/8, 2)), random mantissas
    // and signs, from a SplitMix64-style hash of the word's index.
    let rnd = |i: usize| -> u32 {
        let h = |x: u64| {
            let mut z = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z ^= z >> 29;
            z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 32;
            z
        };
        let one = |x: u64| 0x3e00 | ((x & 0x1ff) as u32) | (((x >> 9) & 1) as u32) << 15;
        let z = h(i as u64);
        one(z) | one(z >> 16) << 16
    };
    let a = aligned(a_panels * steps * mr, |i| {
        if random {
            rnd(i)
        } else if i % 3 == 0 {
            0x3f80_3f80
        } else {
            0
        }
    });
    let b = aligned(b_panels * steps * nr, |i| {
        if random {
            rnd(i + (1 << 40))
        } else if i % 5 == 0 {
            0x3f80_0000
        } else {
            0
        }
    });
    // UKBENCH_AROWS=1: A read in place (kernel_rows) from a row-major block at row stride kc.
    let rows = std::env::var("UKBENCH_AROWS").is_ok_and(|v| v == "1");
    // SAFETY: main checked AMX-BF16 and the tile grant.
    unsafe { amx::configure() };
    let shape = (a_panels, b_panels, mr, nr, kc);
    let rate = tile_rate(reps, shape, shared_c, |ip, jp, c, ldc| {
        // SAFETY: panels and tile are in bounds; the configuration is loaded.
        unsafe {
            if rows {
                amx::kernel_rows(
                    steps,
                    (a.as_ptr() as *const u16).add(ip * mr * kc),
                    kc,
                    b.as_ptr().add(jp * steps * nr),
                    c,
                    ldc,
                    true,
                    false,
                )
            } else {
                amx::kernel(
                    steps,
                    a.as_ptr().add(ip * steps * mr),
                    b.as_ptr().add(jp * steps * nr),
                    c,
                    ldc,
                    true,
                )
            }
        }
    });
    // SAFETY: as configure above.
    unsafe { amx::release() };
    rate
}

/// `len` values `f(i)` starting on a 64-byte boundary, as the packed panels are (each 64-byte
/// vector and tile row on one cache line; a plain `Vec` of this size starts 16 bytes past one,
/// which made every such load a split load: the AMX kernel read 1.35–1.5× slower). The slice
/// borrows a leaked over-allocation.
#[cfg(target_arch = "x86_64")]
fn aligned<T: Copy + Default>(len: usize, f: impl Fn(usize) -> T) -> &'static mut [T] {
    let raw: &'static mut [T] = Vec::leak(vec![T::default(); len + 64]);
    let skip = raw.as_ptr().align_offset(64);
    let out = &mut raw[skip..skip + len];
    for (i, x) in out.iter_mut().enumerate() {
        *x = f(i);
    }
    out
}

/// GFLOP/s of `call(ip, jp, c_tile, ldc)`, one `mr × nr × kc` tile product, over every B panel
/// `jp` (outer) and A panel `ip` (inner; the other way round with `UKBENCH_ORDER=a`), `reps`
/// times; `c_tile` is the pair's tile of a C of `a_panels·mr × b_panels·nr` (row stride `ldc`),
/// or its first tile for every pair with `shared_c`.
#[cfg(target_arch = "x86_64")]
fn tile_rate(
    reps: usize,
    (a_panels, b_panels, mr, nr, kc): (usize, usize, usize, usize, usize),
    shared_c: bool,
    mut call: impl FnMut(usize, usize, *mut f32, usize),
) -> f64 {
    let c = aligned(a_panels * mr * b_panels * nr, |_| 0f32);
    let ldc = b_panels * nr;
    let a_outer = std::env::var("UKBENCH_ORDER").is_ok_and(|o| o == "a");
    let (outer, inner) = if a_outer {
        (a_panels, b_panels)
    } else {
        (b_panels, a_panels)
    };
    let t = std::time::Instant::now();
    for _ in 0..reps {
        for o in 0..outer {
            for i in 0..inner {
                let (ip, jp) = if a_outer { (o, i) } else { (i, o) };
                let at = if shared_c { 0 } else { ip * mr * ldc + jp * nr };
                call(ip, jp, c.as_mut_ptr().wrapping_add(at), ldc);
            }
        }
    }
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(&c);
    (reps * a_panels * b_panels * 2 * mr * nr * kc) as f64 / s / 1e9
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {}
