//! How much memory bandwidth two read streams keep when compute is interleaved with the reads
//! (a development aid for the decode kernel; claims come from `perfledger run`).
//!
//! `cargo run --release -p perfledger-kernels --example streamcurve -- [fmas] [order] [threads]`
//!
//! Each thread reads 512 KiB spans of two 600 MiB arrays, K and V (as one decode task reads its
//! keys' K and V rows), in 256-byte rows with `prefetcht0` of both rows 24 rows ahead (the
//! decode kernel's prefetch), and after every row it reads runs `fmas` independent FMAs (16
//! chains, so throughput-bound: `fmas / 2` cycles on two FMA ports) that depend on the row.
//! `order`:
//! - `blocks`: 16 rows of K, then the same 16 rows of V (the decode kernel's 4 KiB blocks);
//! - `rows`: a row of K, then the same row of V.
//!
//! Prints the median and best of 8 passes, GB/s of K + V. x86-64 with AVX-512F only.

#[cfg(target_arch = "x86_64")]
mod curve {
    use std::arch::x86_64::*;

    const ROW: usize = 256;
    const BLOCK_ROWS: usize = 16;
    const PREFETCH: usize = 24 * ROW;

    /// The sum of one 256-byte row.
    #[target_feature(enable = "avx512f")]
    unsafe fn row_sum(p: *const u8) -> __m512 {
        let mut a = _mm512_loadu_ps(p as *const f32);
        for line in 1..ROW / 64 {
            a = _mm512_add_ps(a, _mm512_loadu_ps(p.add(64 * line) as *const f32));
        }
        a
    }

    /// `fmas` FMAs in 16 independent chains, all depending on `x`.
    #[target_feature(enable = "avx512f")]
    unsafe fn work(chains: &mut [__m512; 16], x: __m512, fmas: usize) {
        let m = _mm512_set1_ps(0.999);
        for _ in 0..fmas / 16 {
            for c in chains.iter_mut() {
                *c = _mm512_fmadd_ps(*c, m, x);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn prefetch(p: *const u8) {
        for line in 0..ROW / 64 {
            _mm_prefetch::<_MM_HINT_T0>(p.add(64 * line) as *const i8);
        }
    }

    /// One span of `len` bytes of K and of V.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn span(k: *const u8, v: *const u8, len: usize, fmas: usize, rows: bool) -> f32 {
        let mut chains = [_mm512_set1_ps(1.0); 16];
        let mut acc = _mm512_setzero_ps();
        let block = BLOCK_ROWS * ROW;
        let mut off = 0;
        while off < len {
            for r in (0..block).step_by(ROW) {
                let at = off + r;
                if at + PREFETCH < len {
                    prefetch(k.add(at + PREFETCH));
                    prefetch(v.add(at + PREFETCH));
                }
                acc = _mm512_add_ps(acc, row_sum(k.add(at)));
                work(&mut chains, acc, fmas);
                if rows {
                    acc = _mm512_add_ps(acc, row_sum(v.add(at)));
                    work(&mut chains, acc, fmas);
                }
            }
            if !rows {
                for r in (0..block).step_by(ROW) {
                    acc = _mm512_add_ps(acc, row_sum(v.add(off + r)));
                    work(&mut chains, acc, fmas);
                }
            }
            off += block;
        }
        for c in chains {
            acc = _mm512_add_ps(acc, c);
        }
        _mm512_reduce_add_ps(acc)
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::time::Instant;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fmas: usize = args
        .first()
        .map_or(0, |s| s.parse().expect("fmas: a number"));
    let rows = match args.get(1).map(String::as_str) {
        None | Some("blocks") => false,
        Some("rows") => true,
        Some(o) => panic!("order: `blocks` or `rows`, not {o}"),
    };
    let threads: usize = args
        .get(2)
        .map_or(2, |s| s.parse().expect("threads: a number"));
    assert!(
        std::arch::is_x86_feature_detected!("avx512f"),
        "streamcurve needs AVX-512F"
    );
    const SPAN: usize = 512 << 10;
    const TOTAL: usize = 600 << 20;
    let (k, v) = (vec![1u8; TOTAL], vec![1u8; TOTAL]);
    let tasks = TOTAL / SPAN;
    let mut gbs = Vec::new();
    for _ in 0..8 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for th in 0..threads {
                let (k, v) = (&k, &v);
                s.spawn(move || {
                    let mut x = 0f32;
                    for task in (th..tasks).step_by(threads) {
                        let (kp, vp) = (k[task * SPAN..].as_ptr(), v[task * SPAN..].as_ptr());
                        // SAFETY: AVX-512F checked above; both spans lie within the arrays.
                        x += unsafe { curve::span(kp, vp, SPAN, fmas, rows) };
                    }
                    std::hint::black_box(x);
                });
            }
        });
        gbs.push(2.0 * TOTAL as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    gbs.sort_by(f64::total_cmp);
    println!(
        "fmas/row={fmas} order={} threads={threads}: median {:.1} best {:.1} GB/s (K+V)",
        if rows { "rows" } else { "blocks" },
        gbs[gbs.len() / 2],
        gbs[gbs.len() - 1]
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("streamcurve is x86-64 only");
    std::process::exit(2);
}
