//! The machine's own ceilings: FMA throughput per ISA path, the core clock, and memory bandwidth.
//!
//! These are the denominators of the "% of measured peak" ceiling (DESIGN.md, Normalization). They
//! are measured here, on this machine, with the thread count the kernels use, so they capture
//! what a spec sheet cannot: VM throttling, turbo under all-core load, memory channels actually
//! populated. `scripts/probe-check.sh` cross-checks them against hand-written C (inline-asm FMA
//! loops, an OpenMP triad) and commits the comparison to `results/probe-check.md`.
//!
//! # Method
//!
//! ## FMA throughput ([`fma_throughput`])
//!
//! Each ISA path runs a loop written in `asm!`, so the compiler can neither merge the chains nor
//! drop them:
//!
//! | path | instruction | chains |
//! |---|---|---|
//! | `avx512f` | `vfmadd213ps zmm` (`a = a·m + c`, 16 lanes) | 12 |
//! | `avx2fma` | `vfmadd213ps ymm` (8 lanes) | 12 |
//! | `portable`, x86-64 | `mulps` then `addps` on xmm (SSE2, the baseline has no FMA) | 14 |
//! | `portable`, aarch64 | `fmla v.4s` (NEON) | 16 |
//!
//! Every chain is its own register (the `asm!` operands are distinct, so the register allocator
//! must give each its own register; the script checks the disassembly), and a loop iteration holds
//! [`UNROLL`] rounds of all chains followed by `dec`/`jnz`. A core with `P` FMA pipes of latency
//! `L` needs `P·L` independent chains to keep the pipes busy: 8 on Zen 3/4/5 and Skylake-X
//! (2 pipes × 4 cycles), so 12 leaves headroom. The SSE2 portable chain is a dependent `mul`+`add`
//! pair (latency 5–8 cycles) and uses all 14 remaining xmm registers; aarch64 has 32 vector
//! registers and cores with 4 pipes (Neoverse V1/V2) need 16.
//!
//! The multiplier `m` is just below 1 and the addend small, so the values converge to a fixed
//! point and stay normal (no denormal slow path). The chains' final values are summed into a
//! checksum that goes through [`std::hint::black_box`].
//!
//! The iteration count is calibrated once on one thread (doubling until a run lasts ≥ 10 ms, then
//! scaled to [`FMA_TARGET_SECS`]) and then fixed. The loop runs on `threads` threads of a dedicated
//! rayon pool at once (`broadcast`, started together by a barrier); a repetition's time is from
//! the earliest start to the latest end, and the result is the best of [`FMA_REPS`]
//! repetitions. FLOPs = threads × iterations × [`UNROLL`] × chains × lanes × 2 (an FMA, or a
//! mul+add pair, counts 2 FLOPs per lane).
//!
//! ## Clock and the sanity check ([`measure_clock_ghz`])
//!
//! A latency-bound chain of 16 dependent register–register `add`s per loop iteration (x86-64
//! `add r, r`; aarch64 `add x, x, x`) runs at exactly one add per cycle on every modern core: an
//! integer add has a latency of 1 cycle, and the loop's `dec`/`jnz` runs beside it. (A register
//! operand rather than an immediate, because Golden Cove can fold immediate adds at rename.) So
//! GHz = 16 × iterations / seconds / 1e9. It runs on the same number of threads as the FMA probe
//! (all-core turbo is lower than one-core turbo): mean over threads, best of [`CLOCK_REPS`]
//! repetitions of ~20 ms; [`fma_throughput`] measures it before and after its FMA runs and keeps
//! the better. It does not see a frequency drop that only wide vector code causes (Intel AVX-512
//! license levels): that shows up as a low ratio below.
//!
//! The expected throughput is `threads × flops_per_cycle(isa) × GHz` with
//! `flops_per_cycle = 2 pipes × lanes × 2` ([`FMA_PIPES_ASSUMED`] = 2 FMA pipes per core). This
//! holds for AVX2 on Intel since Haswell and AMD Zen 2–5, and for AVX-512 on Intel cores with two
//! 512-bit FMA units and on server Zen 5 (full width); Zen 4 runs a zmm FMA as two ymm halves and
//! reaches half. For the x86-64 portable path it assumes that a mul and an add each issue twice
//! per cycle, true on AMD Zen (2 FMUL + 2 FADD pipes); Intel cores before Golden Cove, where mul
//! and add share the two FMA pipes, reach half of it. Neoverse V1/V2 have 4 NEON pipes and reach
//! twice the aarch64 figure. A ratio off by more than [`RATIO_TOLERANCE`] sets
//! [`FmaProbe::flag`]; it is a prompt to look (other load, a vector-clock offset, a core that does
//! not fit the model), not an error.
//!
//! ## Memory bandwidth ([`bandwidth`])
//!
//! Three f64 arrays `a`, `b`, `c`, each `max(8 × L3, 256 MiB)` capped at 640 MiB (so under 2 GiB
//! in all), with L3 from [`crate::cpu::cache::detected`] (one L3 instance: on machines with many
//! L3 slices the total cache can approach one array). Each thread owns a fixed, page-aligned span
//! of every array and touches it first (in parallel, so pages land on the thread's NUMA node);
//! the timed kernels use the same spans.
//!
//! - **read**: `s += a[i] + b[i] + c[i]`, the three arrays streamed together (32 independent f64
//!   accumulators, vectorized for the best ISA); bytes = 3 × n × 8. Three concurrent streams,
//!   the same access pattern as the hand C in `scripts/probe/triad.c`.
//! - **triad**: `a[i] = b[i] + s·c[i]` with ordinary (write-allocate) stores; bytes = 24 × n, the
//!   STREAM convention (two arrays read, one written, the write-allocate read of `a` not counted,
//!   so the bus moves 32 bytes per element).
//!
//! Best of [`BW_REPS`] repetitions, wall time from the earliest start to the latest end, GB/s in
//! units of 1e9 bytes per second.
//!
//! Threads are not pinned; the OS spreads them. `ProbeOptions::quick` shrinks every size so unit
//! tests run in milliseconds: its numbers are not measurements of anything.

use crate::cpu::cache;
use crate::cpu::isa::Isa;
use crate::cpu::SendPtr;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

/// FMA pipes per core assumed by the expected-throughput model.
pub const FMA_PIPES_ASSUMED: f64 = 2.0;
/// Relative deviation of measured / expected beyond which a probe is flagged.
pub const RATIO_TOLERANCE: f64 = 0.15;
/// Rounds of all chains per loop iteration of the FMA probes.
pub const UNROLL: usize = 4;
/// Target duration of one FMA repetition.
pub const FMA_TARGET_SECS: f64 = 0.15;
/// Repetitions of the FMA probe (the best is kept).
pub const FMA_REPS: usize = 5;
/// Repetitions of each bandwidth kernel (the best is kept).
pub const BW_REPS: usize = 10;
/// Dependent adds per iteration of the clock loop.
pub const CLOCK_CHAIN: u64 = 16;
/// Target duration of one clock repetition: short, so that a process that takes a core for a
/// moment spoils few of them.
pub const CLOCK_TARGET_SECS: f64 = 0.02;
/// Repetitions of the clock measurement (the best is kept).
pub const CLOCK_REPS: usize = 10;

const MIB: usize = 1 << 20;
/// Smallest array of the bandwidth probe (8× a 32 MiB L3).
const BW_MIN_ARRAY: usize = 256 * MIB;
/// Largest array (three of them stay under 2 GiB).
const BW_MAX_ARRAY: usize = 640 * MIB;
/// Array size in `quick` mode.
const BW_QUICK_ARRAY: usize = MIB;
/// Thread spans start on 4 KiB boundaries (512 f64): no shared pages or cache lines.
const SPAN_ALIGN: usize = 512;

/// What the probes are run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Threads to run on; 0 means `rayon::current_num_threads()`.
    pub threads: usize,
    /// Tiny sizes and few repetitions (a few ms) for tests; the numbers mean nothing.
    pub quick: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            threads: rayon::current_num_threads(),
            quick: false,
        }
    }
}

impl ProbeOptions {
    /// Quick options (for tests) on `threads` threads.
    pub fn quick(threads: usize) -> Self {
        ProbeOptions {
            threads,
            quick: true,
        }
    }

    /// The thread count to run on.
    pub fn resolved_threads(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }
}

/// The FMA throughput of one ISA path on `threads` threads, with the clock-based sanity check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FmaProbe {
    pub isa: Isa,
    /// Threads that ran the loop.
    pub threads: usize,
    /// Best repetition, 1e9 FLOP/s, all threads together.
    pub gflops: f64,
    /// The instruction the loop is made of, e.g. `vfmadd213ps zmm`.
    pub instruction: String,
    /// Independent accumulator chains per thread.
    pub chains: usize,
    /// Loop iterations per thread per repetition (each [`UNROLL`] × `chains` instructions).
    pub iterations: u64,
    pub reps: usize,
    /// The model's FLOPs per cycle per core: [`FMA_PIPES_ASSUMED`] × lanes × 2.
    pub flops_per_cycle: f64,
    /// Per-core clock measured on the same number of threads right after; `None` where there is
    /// no calibrated clock loop for this architecture.
    pub measured_ghz: Option<f64>,
    /// `threads × flops_per_cycle × measured_ghz`.
    pub expected_gflops: Option<f64>,
    /// `gflops / expected_gflops`.
    pub ratio_to_expected: Option<f64>,
    /// Set when the ratio is off by more than [`RATIO_TOLERANCE`], with the reason to look for.
    pub flag: Option<String>,
}

/// Memory bandwidth on `threads` threads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandwidthProbe {
    pub threads: usize,
    /// Sum over all three arrays, 1e9 bytes/s (bytes = 3 × n × 8).
    pub read_gbs: f64,
    /// `a[i] = b[i] + s·c[i]`, 1e9 bytes/s, STREAM counting (24 bytes per element).
    pub triad_gbs: f64,
    /// Bytes of each of the three arrays.
    pub bytes_per_array: usize,
    /// The L3 size the arrays were sized from (one instance).
    pub l3_bytes: usize,
    /// The ISA the read and triad loops were compiled for.
    pub isa: Isa,
    pub reps: usize,
}

/// Everything the CPU probes measure, as recorded in a run's `measured_ceilings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuCeilings {
    pub threads: usize,
    /// One entry per ISA path this machine can run, best first.
    pub fma: Vec<FmaProbe>,
    pub bandwidth: BandwidthProbe,
}

/// The model's FLOPs per cycle per core for an ISA path: 2 pipes × f32 lanes × 2.
pub fn flops_per_cycle(isa: Isa) -> f64 {
    FMA_PIPES_ASSUMED * isa.f32_lanes() as f64 * 2.0
}

/// Runs every probe this machine supports.
pub fn cpu_ceilings(opts: &ProbeOptions) -> CpuCeilings {
    let fma = Isa::ALL
        .iter()
        .filter_map(|&isa| fma_throughput(isa, opts))
        .collect();
    CpuCeilings {
        threads: opts.resolved_threads(),
        fma,
        bandwidth: bandwidth(opts),
    }
}

// ---------------------------------------------------------------------------------------------
// Threads

/// The pool the probes run on: a dedicated one with exactly the requested threads, or the global
/// pool if one cannot be built (then the thread count is whatever that pool has).
enum Pool {
    Own(rayon::ThreadPool),
    Global,
}

impl Pool {
    fn new(threads: usize) -> Pool {
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => Pool::Own(pool),
            Err(_) => Pool::Global,
        }
    }

    fn threads(&self) -> usize {
        match self {
            Pool::Own(p) => p.current_num_threads(),
            Pool::Global => rayon::current_num_threads(),
        }
    }

    /// Runs `work(thread index, threads)` once on every thread, all released together by a
    /// barrier. Returns the wall time from the earliest start to the latest end, and the results.
    fn timed<R: Send>(&self, work: impl Fn(usize, usize) -> R + Sync) -> (f64, Vec<R>) {
        let n = self.threads();
        let barrier = Barrier::new(n);
        let body = |ctx: rayon::BroadcastContext<'_>| {
            barrier.wait();
            let start = Instant::now();
            let r = work(ctx.index(), ctx.num_threads());
            (start, Instant::now(), r)
        };
        let runs = match self {
            Pool::Own(p) => p.broadcast(body),
            Pool::Global => rayon::broadcast(body),
        };
        let start = runs.iter().map(|r| r.0).min();
        let end = runs.iter().map(|r| r.1).max();
        let secs = match (start, end) {
            (Some(s), Some(e)) => e.duration_since(s).as_secs_f64(),
            _ => 0.0,
        };
        (secs, runs.into_iter().map(|r| r.2).collect())
    }
}

/// Doubles `n` until `run(n)` lasts at least `min_secs`, then scales it to `target_secs`.
fn calibrate(run: impl Fn(u64) -> f64, start: u64, min_secs: f64, target_secs: f64) -> u64 {
    let mut n = start.max(1);
    loop {
        let t = run(n);
        if t >= min_secs || n >= 1 << 40 {
            return ((n as f64 * target_secs / t.max(1e-9)).ceil() as u64).max(1);
        }
        n *= 2;
    }
}

fn time_one(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// Clock

/// Per-core clock in GHz from a latency-bound chain of dependent integer adds (one per cycle),
/// run on `opts.threads` threads at once (mean over threads, best of a few repetitions). `None`
/// on architectures without a calibrated loop (anything but x86-64 and aarch64).
pub fn measure_clock_ghz(opts: &ProbeOptions) -> Option<f64> {
    measure_clock_on(&Pool::new(opts.resolved_threads()), opts.quick)
}

fn measure_clock_on(pool: &Pool, quick: bool) -> Option<f64> {
    let chain = clock_chain()?;
    let (iters, reps) = if quick {
        (1 << 14, 2)
    } else {
        let iters = calibrate(
            |n| time_one(|| _ = black_box(chain(n))),
            1 << 16,
            0.005,
            CLOCK_TARGET_SECS,
        );
        (iters, CLOCK_REPS)
    };
    let mut best: f64 = 0.0;
    for _ in 0..reps {
        let (_, per_thread) = pool.timed(|_, _| {
            let t = Instant::now();
            black_box(chain(iters));
            (CLOCK_CHAIN * iters) as f64 / t.elapsed().as_secs_f64() / 1e9
        });
        let mean = per_thread.iter().sum::<f64>() / per_thread.len().max(1) as f64;
        best = best.max(mean);
    }
    (best.is_finite() && best > 0.0).then_some(best)
}

#[cfg(target_arch = "x86_64")]
fn clock_chain() -> Option<fn(u64) -> u64> {
    Some(x86::add_chain)
}

#[cfg(target_arch = "aarch64")]
fn clock_chain() -> Option<fn(u64) -> u64> {
    Some(arm::add_chain)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn clock_chain() -> Option<fn(u64) -> u64> {
    None
}

// ---------------------------------------------------------------------------------------------
// FMA throughput

/// One FMA loop: runs `iterations` loop iterations and returns a checksum of the chains.
struct FmaLoop {
    run: unsafe fn(u64) -> f32,
    chains: usize,
    lanes: usize,
    instruction: &'static str,
}

impl FmaLoop {
    fn flops_per_iteration(&self) -> f64 {
        (UNROLL * self.chains * self.lanes * 2) as f64
    }
}

#[cfg(target_arch = "x86_64")]
fn fma_loop(isa: Isa) -> Option<FmaLoop> {
    if !isa.available() {
        return None;
    }
    Some(match isa {
        Isa::Avx512f => FmaLoop {
            run: x86::fma_zmm,
            chains: x86::CHAINS_AVX,
            lanes: 16,
            instruction: "vfmadd213ps zmm",
        },
        Isa::Avx2fma => FmaLoop {
            run: x86::fma_ymm,
            chains: x86::CHAINS_AVX,
            lanes: 8,
            instruction: "vfmadd213ps ymm",
        },
        Isa::Portable => FmaLoop {
            run: x86::mul_add_xmm,
            chains: x86::CHAINS_SSE,
            lanes: 4,
            instruction: "mulps+addps xmm",
        },
    })
}

#[cfg(target_arch = "aarch64")]
fn fma_loop(isa: Isa) -> Option<FmaLoop> {
    match isa {
        Isa::Portable => Some(FmaLoop {
            run: arm::fma_neon,
            chains: arm::CHAINS,
            lanes: 4,
            instruction: "fmla v.4s",
        }),
        _ => None,
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn fma_loop(isa: Isa) -> Option<FmaLoop> {
    match isa {
        Isa::Portable => Some(FmaLoop {
            run: generic::mul_add,
            chains: generic::CHAINS,
            lanes: 1,
            instruction: "scalar f32 mul+add (compiler-generated)",
        }),
        _ => None,
    }
}

/// FMA throughput of one ISA path on `opts.threads` threads; `None` if this machine cannot run
/// the path.
pub fn fma_throughput(isa: Isa, opts: &ProbeOptions) -> Option<FmaProbe> {
    let lp = fma_loop(isa)?;
    let pool = Pool::new(opts.resolved_threads());
    let threads = pool.threads();
    // SAFETY (all calls of `lp.run`): `fma_loop` returned this loop only if `isa.available()`.
    let (iterations, reps) = if opts.quick {
        (1 << 10, 2)
    } else {
        let run = |n| time_one(|| _ = black_box(unsafe { (lp.run)(n) }));
        (calibrate(run, 1 << 12, 0.01, FMA_TARGET_SECS), FMA_REPS)
    };
    let flops = threads as f64 * iterations as f64 * lp.flops_per_iteration();
    let ghz_before = measure_clock_on(&pool, opts.quick);
    let mut best_secs = f64::INFINITY;
    for _ in 0..reps {
        let (secs, sums) = pool.timed(|_, _| unsafe { (lp.run)(iterations) });
        black_box(sums);
        best_secs = best_secs.min(secs);
    }
    let gflops = flops / best_secs / 1e9;
    let fpc = flops_per_cycle(isa);
    // The clock before and after the FMA runs, the better of the two: a short disturbance spoils
    // one window, rarely both.
    let measured_ghz = match (ghz_before, measure_clock_on(&pool, opts.quick)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let expected_gflops = measured_ghz.map(|ghz| threads as f64 * fpc * ghz);
    let ratio_to_expected = expected_gflops.map(|e| gflops / e);
    let flag = ratio_to_expected
        .filter(|r| (r - 1.0).abs() > RATIO_TOLERANCE)
        .map(|r| {
            format!(
            "measured {gflops:.1} GFLOP/s is {r:.2}x the model's {:.1} ({threads} threads x {fpc} \
             FLOP/cycle x {:.2} GHz): other load, a vector-clock offset, or a core without \
             {FMA_PIPES_ASSUMED} full-width FMA pipes",
            expected_gflops.unwrap_or(f64::NAN),
            measured_ghz.unwrap_or(f64::NAN),
        )
        });
    Some(FmaProbe {
        isa,
        threads,
        gflops,
        instruction: lp.instruction.to_string(),
        chains: lp.chains,
        iterations,
        reps,
        flops_per_cycle: fpc,
        measured_ghz,
        expected_gflops,
        ratio_to_expected,
        flag,
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The x86-64 loops. Intel syntax; every accumulator is a distinct `inout` operand.
    use std::arch::asm;
    use std::arch::x86_64::*;

    pub const CHAINS_AVX: usize = 12;
    pub const CHAINS_SSE: usize = 14;
    /// `a = a·M + C` converges to C / (1 − M) = 1.0 and stays a normal number.
    const M: f32 = 0.999_999;
    const C: f32 = 1e-6;

    /// One round: `$op {aK}, {m}, {c}` for every named accumulator.
    macro_rules! fma_round {
        ($op:literal: $($a:literal)*) => { concat!($($op, " {", $a, "}, {m}, {c}\n",)*) };
    }
    /// One round of SSE2 `a = a·m; a = a + c` for every named accumulator.
    macro_rules! mul_add_round {
        ($($a:literal)*) => { concat!($("mulps {", $a, "}, {m}\n", "addps {", $a, "}, {c}\n",)*) };
    }
    macro_rules! fma12 {
        ($op:literal) => {
            fma_round!($op: "a0" "a1" "a2" "a3" "a4" "a5" "a6" "a7" "a8" "a9" "a10" "a11")
        };
    }
    macro_rules! mul_add14 {
        () => {
            mul_add_round!("a0" "a1" "a2" "a3" "a4" "a5" "a6" "a7" "a8" "a9" "a10" "a11" "a12" "a13")
        };
    }
    /// The 12-chain loop for a register class (`zmm_reg` / `ymm_reg`); `UNROLL` = 4 rounds.
    macro_rules! fma12_loop {
        ($cls:ident, $a:ident, $m:ident, $c:ident, $n:expr) => {
            asm!(
                "2:",
                fma12!("vfmadd213ps"),
                fma12!("vfmadd213ps"),
                fma12!("vfmadd213ps"),
                fma12!("vfmadd213ps"),
                "dec {n}",
                "jnz 2b",
                n = inout(reg) $n => _,
                a0 = inout($cls) $a[0],
                a1 = inout($cls) $a[1],
                a2 = inout($cls) $a[2],
                a3 = inout($cls) $a[3],
                a4 = inout($cls) $a[4],
                a5 = inout($cls) $a[5],
                a6 = inout($cls) $a[6],
                a7 = inout($cls) $a[7],
                a8 = inout($cls) $a[8],
                a9 = inout($cls) $a[9],
                a10 = inout($cls) $a[10],
                a11 = inout($cls) $a[11],
                m = in($cls) $m,
                c = in($cls) $c,
                options(nomem, nostack),
            )
        };
    }

    /// AVX-512F: 12 zmm chains of `vfmadd213ps`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    pub unsafe fn fma_zmm(iterations: u64) -> f32 {
        let mut a = [_mm512_setzero_ps(); CHAINS_AVX];
        for (k, r) in a.iter_mut().enumerate() {
            *r = _mm512_set1_ps(1.0 + k as f32 / 16.0);
        }
        let (m, c) = (_mm512_set1_ps(M), _mm512_set1_ps(C));
        fma12_loop!(zmm_reg, a, m, c, iterations.max(1));
        let mut s = _mm512_setzero_ps();
        for v in a {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// AVX2+FMA: 12 ymm chains of `vfmadd213ps`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub unsafe fn fma_ymm(iterations: u64) -> f32 {
        let mut a = [_mm256_setzero_ps(); CHAINS_AVX];
        for (k, r) in a.iter_mut().enumerate() {
            *r = _mm256_set1_ps(1.0 + k as f32 / 16.0);
        }
        let (m, c) = (_mm256_set1_ps(M), _mm256_set1_ps(C));
        fma12_loop!(ymm_reg, a, m, c, iterations.max(1));
        let mut lanes = [0f32; 8];
        let mut s = _mm256_setzero_ps();
        for v in a {
            s = _mm256_add_ps(s, v);
        }
        _mm256_storeu_ps(lanes.as_mut_ptr(), s);
        lanes.iter().sum()
    }

    /// SSE2 (the x86-64 baseline, no FMA): 14 xmm chains of `mulps` + `addps`.
    ///
    /// # Safety
    /// None beyond x86-64 itself (SSE2 is baseline); `unsafe` for a uniform signature.
    #[inline(never)]
    pub unsafe fn mul_add_xmm(iterations: u64) -> f32 {
        let mut a = [_mm_setzero_ps(); CHAINS_SSE];
        for (k, r) in a.iter_mut().enumerate() {
            *r = _mm_set1_ps(1.0 + k as f32 / 16.0);
        }
        let (m, c) = (_mm_set1_ps(M), _mm_set1_ps(C));
        asm!(
            "2:",
            mul_add14!(),
            mul_add14!(),
            mul_add14!(),
            mul_add14!(),
            "dec {n}",
            "jnz 2b",
            n = inout(reg) iterations.max(1) => _,
            a0 = inout(xmm_reg) a[0],
            a1 = inout(xmm_reg) a[1],
            a2 = inout(xmm_reg) a[2],
            a3 = inout(xmm_reg) a[3],
            a4 = inout(xmm_reg) a[4],
            a5 = inout(xmm_reg) a[5],
            a6 = inout(xmm_reg) a[6],
            a7 = inout(xmm_reg) a[7],
            a8 = inout(xmm_reg) a[8],
            a9 = inout(xmm_reg) a[9],
            a10 = inout(xmm_reg) a[10],
            a11 = inout(xmm_reg) a[11],
            a12 = inout(xmm_reg) a[12],
            a13 = inout(xmm_reg) a[13],
            m = in(xmm_reg) m,
            c = in(xmm_reg) c,
            options(nomem, nostack),
        );
        let mut lanes = [0f32; 4];
        let mut s = _mm_setzero_ps();
        for v in a {
            s = _mm_add_ps(s, v);
        }
        _mm_storeu_ps(lanes.as_mut_ptr(), s);
        lanes.iter().sum()
    }

    /// 16 dependent `add r, r` per iteration: 16 cycles per iteration at 1-cycle add latency.
    #[inline(never)]
    pub fn add_chain(iterations: u64) -> u64 {
        let mut x: u64 = 0;
        // SAFETY: register arithmetic only; the counter is at least 1 so the loop ends.
        unsafe {
            asm!(
                "2:",
                "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                "dec {n}",
                "jnz 2b",
                n = inout(reg) iterations.max(1) => _,
                x = inout(reg) x,
                y = in(reg) 1u64,
                options(nomem, nostack),
            );
        }
        x
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    //! The aarch64 loops (NEON is baseline). Every accumulator is a distinct `inout` operand.
    use std::arch::aarch64::*;
    use std::arch::asm;

    pub const CHAINS: usize = 16;
    /// `a += M·M`: a tiny addend, so the values grow to ~10 and stop (stay normal).
    const M: f32 = 1e-3;

    macro_rules! fmla_round {
        ($($a:literal)*) => { concat!($("fmla {", $a, ":v}.4s, {m:v}.4s, {c:v}.4s\n",)*) };
    }
    macro_rules! fmla16 {
        () => {
            fmla_round!("a0" "a1" "a2" "a3" "a4" "a5" "a6" "a7"
                        "a8" "a9" "a10" "a11" "a12" "a13" "a14" "a15")
        };
    }

    /// NEON: 16 chains of `fmla v.4s`.
    ///
    /// # Safety
    /// None beyond aarch64 itself (NEON is baseline); `unsafe` for a uniform signature.
    #[inline(never)]
    pub unsafe fn fma_neon(iterations: u64) -> f32 {
        let mut a = [vdupq_n_f32(0.0); CHAINS];
        for (k, r) in a.iter_mut().enumerate() {
            *r = vdupq_n_f32(1.0 + k as f32 / 16.0);
        }
        let (m, c) = (vdupq_n_f32(M), vdupq_n_f32(M));
        asm!(
            "2:",
            fmla16!(),
            fmla16!(),
            fmla16!(),
            fmla16!(),
            "subs {n}, {n}, #1",
            "b.ne 2b",
            n = inout(reg) iterations.max(1) => _,
            a0 = inout(vreg) a[0],
            a1 = inout(vreg) a[1],
            a2 = inout(vreg) a[2],
            a3 = inout(vreg) a[3],
            a4 = inout(vreg) a[4],
            a5 = inout(vreg) a[5],
            a6 = inout(vreg) a[6],
            a7 = inout(vreg) a[7],
            a8 = inout(vreg) a[8],
            a9 = inout(vreg) a[9],
            a10 = inout(vreg) a[10],
            a11 = inout(vreg) a[11],
            a12 = inout(vreg) a[12],
            a13 = inout(vreg) a[13],
            a14 = inout(vreg) a[14],
            a15 = inout(vreg) a[15],
            m = in(vreg) m,
            c = in(vreg) c,
            options(nomem, nostack),
        );
        let mut s = vdupq_n_f32(0.0);
        for v in a {
            s = vaddq_f32(s, v);
        }
        vaddvq_f32(s)
    }

    /// 16 dependent `add x, x, y` per iteration: 16 cycles per iteration.
    #[inline(never)]
    pub fn add_chain(iterations: u64) -> u64 {
        let mut x: u64 = 0;
        // SAFETY: register arithmetic only; the counter is at least 1 so the loop ends.
        unsafe {
            asm!(
                "2:",
                "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}",
                "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}",
                "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}",
                "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}", "add {x}, {x}, {y}",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                n = inout(reg) iterations.max(1) => _,
                x = inout(reg) x,
                y = in(reg) 1u64,
                options(nomem, nostack),
            );
        }
        x
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod generic {
    //! Other architectures: compiler-generated code, not checked against the model.
    use std::hint::black_box;

    pub const CHAINS: usize = 16;

    /// 16 scalar chains of `a = a·m + c` (distinct start values, so they cannot be merged).
    pub unsafe fn mul_add(iterations: u64) -> f32 {
        let (m, c) = (black_box(0.999_999f32), black_box(1e-6f32));
        let mut a: [f32; CHAINS] = std::array::from_fn(|k| 1.0 + k as f32 / 16.0);
        for _ in 0..iterations * super::UNROLL as u64 {
            for v in a.iter_mut() {
                *v = *v * m + c;
            }
        }
        a.iter().sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Memory bandwidth

/// A page-aligned f64 buffer, allocated untouched (pages are touched first by the threads that
/// will use them).
struct PageBuf {
    ptr: *mut f64,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: a plain owned allocation; access is coordinated by the callers (disjoint spans).
unsafe impl Send for PageBuf {}
unsafe impl Sync for PageBuf {}

impl PageBuf {
    fn new(len: usize) -> Option<PageBuf> {
        let layout = std::alloc::Layout::from_size_align(len.max(1) * 8, 4096).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) } as *mut f64;
        (!ptr.is_null()).then_some(PageBuf { ptr, len, layout })
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr as *mut u8, self.layout) }
    }
}

/// Thread `t` of `threads`'s span of an `n`-element array, on [`SPAN_ALIGN`] boundaries.
fn span(t: usize, threads: usize, n: usize) -> std::ops::Range<usize> {
    let blocks = n.div_ceil(SPAN_ALIGN);
    let lo = (blocks * t / threads * SPAN_ALIGN).min(n);
    let hi = (blocks * (t + 1) / threads * SPAN_ALIGN).min(n);
    lo..hi
}

/// The value of element `i` of array `k` (0 = a, 1 = b, 2 = c) after first touch: not constant,
/// so nothing can be folded, and never denormal.
fn init_value(k: usize, i: usize) -> f64 {
    match k {
        0 => 0.0,
        1 => 1.0 + (i % 7) as f64 * 0.25,
        _ => 2.0 - (i % 5) as f64 * 0.125,
    }
}

/// Sum of `a[i] + b[i] + c[i]`: the three arrays are streamed together (as in the hand C), with
/// 32 independent accumulators (the compiler keeps them in vector registers).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn sum3_body(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    const K: usize = 32;
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [0f64; K];
    let mut blocks = a
        .chunks_exact(K)
        .zip(b.chunks_exact(K))
        .zip(c.chunks_exact(K));
    for ((a, b), c) in &mut blocks {
        for j in 0..K {
            acc[j] += a[j] + b[j] + c[j];
        }
    }
    let tail = n / K * K;
    let rest: f64 = (tail..n).map(|i| a[i] + b[i] + c[i]).sum();
    rest + acc.iter().sum::<f64>()
}

#[inline(always)]
fn triad_body(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum3_avx512(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    sum3_body(a, b, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sum3_avx2(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    sum3_body(a, b, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn triad_avx512(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    triad_body(a, b, c, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn triad_avx2(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    triad_body(a, b, c, s)
}

/// Sum of `a[i] + b[i] + c[i]`, vectorized for `isa` (falls back to the portable loop when the
/// ISA is not available).
fn read_sum(isa: Isa, a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    match isa {
        // SAFETY: checked available.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f if isa.available() => unsafe { sum3_avx512(a, b, c) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma if isa.available() => unsafe { sum3_avx2(a, b, c) },
        _ => sum3_body(a, b, c),
    }
}

/// `a = b + s·c`, vectorized for `isa` (which must be available).
fn triad(isa: Isa, a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    match isa {
        // SAFETY: checked available.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f if isa.available() => unsafe { triad_avx512(a, b, c, s) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma if isa.available() => unsafe { triad_avx2(a, b, c, s) },
        _ => triad_body(a, b, c, s),
    }
}

/// The array size for an L3 of `l3` bytes: `max(8 × L3, 256 MiB)`, at most 640 MiB, whole MiB.
fn array_bytes(l3: usize, quick: bool) -> usize {
    if quick {
        return BW_QUICK_ARRAY;
    }
    (8 * l3).clamp(BW_MIN_ARRAY, BW_MAX_ARRAY).div_ceil(MIB) * MIB
}

/// Read-only and triad bandwidth on `opts.threads` threads over arrays far larger than L3.
pub fn bandwidth(opts: &ProbeOptions) -> BandwidthProbe {
    let pool = Pool::new(opts.resolved_threads());
    let threads = pool.threads();
    let isa = Isa::best();
    let l3 = cache::detected().l3;
    let reps = if opts.quick { 2 } else { BW_REPS };
    // Allocation of the three arrays; halve on failure (recorded in `bytes_per_array`).
    let mut bytes = array_bytes(l3, opts.quick);
    let buf = loop {
        if let Some(b) = PageBuf::new(3 * bytes / 8) {
            break b;
        }
        bytes = (bytes / 2).max(MIB);
    };
    let n = buf.len / 3;
    let base = SendPtr(buf.ptr);

    // First touch, in parallel, by the thread that owns each span.
    pool.timed(|t, nt| {
        let r = span(t, nt, n);
        for k in 0..3 {
            // SAFETY: spans of distinct threads are disjoint and within the allocation.
            let arr = unsafe { base.get().add(k * n) };
            for i in r.clone() {
                unsafe { arr.add(i).write(init_value(k, i)) };
            }
        }
    });

    // SAFETY (below): every element was initialized above; each thread reads or writes only its
    // own spans, so no two threads alias a written element.
    let slice = |k: usize, r: &std::ops::Range<usize>| unsafe {
        std::slice::from_raw_parts_mut(base.get().add(k * n + r.start), r.len())
    };

    let mut read_secs = f64::INFINITY;
    for _ in 0..reps {
        let (secs, sums) = pool.timed(|t, nt| {
            let r = span(t, nt, n);
            read_sum(isa, slice(0, &r), slice(1, &r), slice(2, &r))
        });
        black_box(sums);
        read_secs = read_secs.min(secs);
    }

    let s = black_box(3.0);
    let mut triad_secs = f64::INFINITY;
    for _ in 0..reps {
        let (secs, _) = pool.timed(|t, nt| {
            let r = span(t, nt, n);
            triad(isa, slice(0, &r), slice(1, &r), slice(2, &r), s);
        });
        triad_secs = triad_secs.min(secs);
    }
    // SAFETY: all writers have finished.
    black_box(unsafe { *buf.ptr.add(n / 2) });

    BandwidthProbe {
        threads,
        read_gbs: (3 * n * 8) as f64 / read_secs / 1e9,
        triad_gbs: (3 * n * 8) as f64 / triad_secs / 1e9,
        bytes_per_array: n * 8,
        l3_bytes: l3,
        isa,
        reps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_fma_is_some_exactly_when_the_isa_is_available() {
        let opts = ProbeOptions::quick(2);
        for isa in Isa::ALL {
            let p = fma_throughput(isa, &opts);
            assert_eq!(p.is_some(), isa.available(), "{isa}");
            let Some(p) = p else { continue };
            assert!(isa.available());
            assert_eq!(p.isa, isa);
            assert_eq!(p.threads, 2);
            assert!(p.gflops.is_finite() && p.gflops > 0.0, "{p:?}");
            assert!(p.chains >= 10);
            assert_eq!(p.flops_per_cycle, flops_per_cycle(isa));
            if let (Some(ghz), Some(e), Some(r)) =
                (p.measured_ghz, p.expected_gflops, p.ratio_to_expected)
            {
                assert!(ghz.is_finite() && ghz > 0.0);
                assert!((e - 2.0 * p.flops_per_cycle * ghz).abs() <= 1e-9 * e);
                assert!((r - p.gflops / e).abs() <= 1e-9 * r);
                assert_eq!(p.flag.is_some(), (r - 1.0).abs() > RATIO_TOLERANCE);
            }
        }
    }

    #[test]
    fn probe_fma_loops_compute_what_they_claim() {
        // One iteration of `a = a·M + C` from 1 + k/16, UNROLL × per iteration: the checksum
        // tells that every chain ran (and that none was dropped or merged).
        for isa in Isa::ALL {
            let Some(lp) = fma_loop(isa) else { continue };
            // SAFETY: `fma_loop` only returns available loops.
            let got = unsafe { (lp.run)(3) };
            let steps = 3 * UNROLL;
            let mut want = 0f64;
            for k in 0..lp.chains {
                let mut v = 1.0f32 + k as f32 / 16.0;
                for _ in 0..steps {
                    v = if cfg!(target_arch = "aarch64") {
                        v + 1e-3 * 1e-3
                    } else {
                        v * 0.999_999 + 1e-6
                    };
                }
                want += v as f64;
            }
            want *= lp.lanes as f64;
            assert!(
                (got as f64 - want).abs() <= 1e-4 * want,
                "{isa}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn probe_clock_is_positive() {
        let ghz = measure_clock_ghz(&ProbeOptions::quick(1));
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            let ghz = ghz.expect("a clock loop exists on this architecture");
            assert!(ghz.is_finite() && ghz > 0.0);
        }
    }

    #[test]
    fn probe_bandwidth_is_finite_and_positive() {
        let b = bandwidth(&ProbeOptions::quick(2));
        assert_eq!(b.threads, 2);
        assert!(b.read_gbs.is_finite() && b.read_gbs > 0.0, "{b:?}");
        assert!(b.triad_gbs.is_finite() && b.triad_gbs > 0.0, "{b:?}");
        assert_eq!(b.bytes_per_array, BW_QUICK_ARRAY);
        let json = serde_json::to_string(&b).unwrap();
        let back: BandwidthProbe = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (back.bytes_per_array, back.isa, back.threads),
            (b.bytes_per_array, b.isa, b.threads)
        );
        assert!(close(back.read_gbs, b.read_gbs) && close(back.triad_gbs, b.triad_gbs));
    }

    #[test]
    fn probe_bandwidth_kernels_are_correct_on_every_isa() {
        let n = 1000; // not a multiple of the 32-wide chunks
        let b: Vec<f64> = (0..n).map(|i| init_value(1, i)).collect();
        let c: Vec<f64> = (0..n).map(|i| init_value(2, i)).collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            let want: f64 = (0..n).map(|i| 2.0 * b[i] + c[i]).sum();
            assert!(
                (read_sum(isa, &b, &b, &c) - want).abs() <= 1e-12 * want,
                "{isa}"
            );
            let mut a = vec![f64::NAN; n];
            triad(isa, &mut a, &b, &c, 3.0);
            for i in 0..n {
                assert_eq!(a[i], b[i] + 3.0 * c[i], "{isa} at {i}");
            }
        }
    }

    #[test]
    fn probe_sizes_and_spans() {
        assert_eq!(array_bytes(32 * MIB, false), 256 * MIB);
        assert_eq!(array_bytes(48 * MIB, false), 384 * MIB);
        assert_eq!(array_bytes(256 * MIB, false), 640 * MIB);
        assert_eq!(array_bytes(4 * MIB, false), 256 * MIB);
        for (n, threads) in [(1, 1), (1000, 3), (1 << 20, 7), (100, 16)] {
            let mut next = 0;
            for t in 0..threads {
                let r = span(t, threads, n);
                assert_eq!(r.start, next);
                assert!(r.start.is_multiple_of(SPAN_ALIGN) || r.start == n);
                next = r.end;
            }
            assert_eq!(next, n);
        }
        assert_eq!(flops_per_cycle(Isa::Avx512f), 64.0);
        assert_eq!(flops_per_cycle(Isa::Avx2fma), 32.0);
        assert_eq!(flops_per_cycle(Isa::Portable), 16.0);
    }

    #[test]
    fn probe_results_round_trip_through_json() {
        let p = fma_throughput(Isa::Portable, &ProbeOptions::quick(1)).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: FmaProbe = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (back.isa, back.chains, back.iterations, &back.flag),
            (p.isa, p.chains, p.iterations, &p.flag)
        );
        assert!(close(back.gflops, p.gflops));
        assert!(json.contains("\"isa\":\"portable\""));
    }

    /// Equal up to JSON's decimal round trip (serde_json without `float_roundtrip`).
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }
}
