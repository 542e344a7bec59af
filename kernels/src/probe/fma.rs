//! FMA throughput per CPU compute unit, and the clock that checks it.
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
//! | `avx512bf16` (AVX512_BF16) | `vdpbf16ps zmm` (16 lanes × 2 bf16 products) | 12 |
//! | `amx_bf16` (AMX-BF16) | `tdpbf16ps` (16 × 16 tile × 32 bf16 products) | 4 tiles |
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
//! mul+add pair, counts 2 FLOPs per lane; `vdpbf16ps` counts 32 product lanes, 64 FLOPs, the
//! convention of the bf16 matmul it bounds).
//!
//! The `vdpbf16ps` loop is the ceiling of the `packed.avx512bf16` matmul (the fastest bf16 path on
//! CPUs with AVX512_BF16): its multiplicands are bf16 pairs of 1e-3, so the f32 accumulators grow
//! by 2e-6 per instruction and stay normal. Its model is 2 pipes × 32 × 2 = 128 FLOP/cycle, true
//! where `vdpbf16ps zmm` issues on both 512-bit FMA pipes (Intel Sapphire Rapids and later, Zen 5);
//! Zen 4 executes zmm in two halves and reaches half, which the flag then shows.
//!
//! The `tdpbf16ps` loop ([`amx_throughput`]) is the ceiling of `packed.amx`: four accumulator
//! tiles (tmm0–tmm3) += two input tiles of bf16 1e-3 (8192 products, 16 384 FLOPs per
//! instruction). Its model is Intel's figure, one instruction per 16 cycles = 1024 FLOP/cycle
//! (Sapphire Rapids; assumed for Emerald Rapids, `shared/specs/CPU-INSTANCES.md`).
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

use super::{calibrate, time_one, Pool, ProbeOptions};
use crate::isa::Isa;
use crate::unit::ComputeUnit;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
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
/// Dependent adds per iteration of the clock loop.
pub const CLOCK_CHAIN: u64 = 16;
/// Target duration of one clock repetition: short, so that a process that takes a core for a
/// moment spoils few of them.
pub const CLOCK_TARGET_SECS: f64 = 0.02;
/// Repetitions of the clock measurement (the best is kept).
pub const CLOCK_REPS: usize = 10;

/// The FMA throughput of one compute unit on `threads` threads, with the clock-based sanity
/// check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FmaProbe {
    /// The ISA path the loop needs (`avx512f` for the `vdpbf16ps` loop too).
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

/// The model's FLOPs per cycle per core for an ISA path: 2 pipes × f32 lanes × 2.
pub fn flops_per_cycle(isa: Isa) -> f64 {
    FMA_PIPES_ASSUMED * isa.f32_lanes() as f64 * 2.0
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
    /// Products per instruction (f32 lanes; 32 for `vdpbf16ps zmm`, 8192 for `tdpbf16ps`).
    lanes: usize,
    /// The model's instructions per cycle per core: [`FMA_PIPES_ASSUMED`] for the vector loops,
    /// 1/16 for `tdpbf16ps`.
    per_cycle: f64,
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
            per_cycle: FMA_PIPES_ASSUMED,
            instruction: "vfmadd213ps zmm",
        },
        Isa::Avx2fma => FmaLoop {
            run: x86::fma_ymm,
            chains: x86::CHAINS_AVX,
            lanes: 8,
            per_cycle: FMA_PIPES_ASSUMED,
            instruction: "vfmadd213ps ymm",
        },
        Isa::Portable => FmaLoop {
            run: x86::mul_add_xmm,
            chains: x86::CHAINS_SSE,
            lanes: 4,
            per_cycle: FMA_PIPES_ASSUMED,
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
            per_cycle: FMA_PIPES_ASSUMED,
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
            per_cycle: FMA_PIPES_ASSUMED,
            instruction: "scalar f32 mul+add (compiler-generated)",
        }),
        _ => None,
    }
}

/// FMA throughput of one ISA path on `opts.threads` threads; `None` if this machine cannot run
/// the path.
pub fn fma_throughput(isa: Isa, opts: &ProbeOptions) -> Option<FmaProbe> {
    Some(run_probe(isa, &fma_loop(isa)?, opts))
}

/// `vdpbf16ps` throughput on `opts.threads` threads; `None` without AVX512_BF16.
pub fn bf16dot_throughput(opts: &ProbeOptions) -> Option<FmaProbe> {
    Some(run_probe(Isa::Avx512f, &bf16dot_loop()?, opts))
}

/// The probe of a CPU compute unit (`None` for scalar code, GPU units, and units this machine
/// lacks).
pub fn unit_throughput(unit: ComputeUnit, opts: &ProbeOptions) -> Option<FmaProbe> {
    match unit {
        ComputeUnit::CpuFma(isa) => fma_throughput(isa, opts),
        ComputeUnit::CpuBf16Dot => bf16dot_throughput(opts),
        ComputeUnit::CpuAmxBf16 => amx_throughput(opts),
        _ => None,
    }
}

#[cfg(target_arch = "x86_64")]
fn bf16dot_loop() -> Option<FmaLoop> {
    crate::isa::detected().avx512bf16.then_some(FmaLoop {
        run: x86::dpbf16_zmm,
        chains: x86::CHAINS_AVX,
        lanes: 32,
        per_cycle: FMA_PIPES_ASSUMED,
        instruction: "vdpbf16ps zmm",
    })
}

/// `tdpbf16ps` throughput on `opts.threads` threads; `None` without AMX-BF16 (or without the
/// OS's grant of tile data).
pub fn amx_throughput(opts: &ProbeOptions) -> Option<FmaProbe> {
    Some(run_probe(Isa::Avx512f, &amx_loop()?, opts))
}

#[cfg(target_arch = "x86_64")]
fn amx_loop() -> Option<FmaLoop> {
    crate::isa::detected().amx_bf16.then_some(FmaLoop {
        run: x86::amx_tdpbf16,
        chains: x86::CHAINS_AMX,
        lanes: 16 * 16 * 32,
        per_cycle: 1.0 / 16.0,
        instruction: "tdpbf16ps",
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn amx_loop() -> Option<FmaLoop> {
    None
}

#[cfg(not(target_arch = "x86_64"))]
fn bf16dot_loop() -> Option<FmaLoop> {
    None
}

fn run_probe(isa: Isa, lp: &FmaLoop, opts: &ProbeOptions) -> FmaProbe {
    let pool = Pool::new(opts.resolved_threads());
    let threads = pool.threads();
    // SAFETY (all calls of `lp.run`): the loop constructors return a loop only where the CPU
    // has its instructions.
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
    let fpc = lp.per_cycle * lp.lanes as f64 * 2.0;
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
             FLOP/cycle x {:.2} GHz): other load, a vector-clock offset, or a core {}",
            expected_gflops.unwrap_or(f64::NAN),
            measured_ghz.unwrap_or(f64::NAN),
            if lp.per_cycle == FMA_PIPES_ASSUMED {
                format!("without {FMA_PIPES_ASSUMED} full-width FMA pipes")
            } else {
                format!("that does not issue one {} per {} cycles", lp.instruction, 1.0 / lp.per_cycle)
            }
        )
        });
    FmaProbe {
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
    }
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
    /// The 12-chain loop of instruction `$op` for a register class (`zmm_reg` / `ymm_reg`);
    /// `UNROLL` = 4 rounds.
    macro_rules! fma12_loop {
        ($op:literal, $cls:ident, $a:ident, $m:ident, $c:ident, $n:expr) => {
            asm!(
                "2:",
                fma12!($op),
                fma12!($op),
                fma12!($op),
                fma12!($op),
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
        fma12_loop!("vfmadd213ps", zmm_reg, a, m, c, iterations.max(1));
        let mut s = _mm512_setzero_ps();
        for v in a {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// bf16 `1e-3` (0x3A83), the multiplicand pairs of the `vdpbf16ps` loop.
    pub const BF16_MILLI: u16 = 0x3A83;

    /// AVX512_BF16: 12 zmm chains of `vdpbf16ps` (`a += m0·c0 + m1·c1` per f32 lane, the pairs
    /// bf16 1e-3, so each instruction adds about 2e-6 and the sums stay normal).
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512_BF16.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    pub unsafe fn dpbf16_zmm(iterations: u64) -> f32 {
        let mut a = [_mm512_setzero_ps(); CHAINS_AVX];
        for (k, r) in a.iter_mut().enumerate() {
            *r = _mm512_set1_ps(1.0 + k as f32 / 16.0);
        }
        let pair = (BF16_MILLI as u32) | ((BF16_MILLI as u32) << 16);
        let m = _mm512_castsi512_ps(_mm512_set1_epi32(pair as i32));
        let c = m;
        fma12_loop!("vdpbf16ps", zmm_reg, a, m, c, iterations.max(1));
        let mut s = _mm512_setzero_ps();
        for v in a {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// Accumulator tiles of the `tdpbf16ps` loop.
    pub const CHAINS_AMX: usize = 4;

    /// AMX-BF16: [`CHAINS_AMX`] accumulator tiles (tmm0–tmm3) `+=` tmm4 · tmm5, both 16 × 32
    /// bf16 1e-3, [`super::UNROLL`] rounds per iteration; each instruction adds 3.2e-5 to every
    /// element, so the sums stay normal. Returns the sum of the first tile.
    ///
    /// # Safety
    /// The CPU has AMX-TILE and AMX-BF16 and the process may use tile data
    /// ([`crate::isa::Features::amx_bf16`]).
    #[inline(never)]
    pub unsafe fn amx_tdpbf16(iterations: u64) -> f32 {
        #[repr(C, align(64))]
        struct Tile([u32; 256]);
        let pair = (BF16_MILLI as u32) | ((BF16_MILLI as u32) << 16);
        let input = Tile([pair; 256]);
        let mut out = [0f32; 256];
        crate::cpu::matmul::micro::amx::configure();
        asm!(
            "tileloadd tmm4, [{p} + {s}*1]",
            "tileloadd tmm5, [{p} + {s}*1]",
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tdpbf16ps tmm0, tmm4, tmm5", "tdpbf16ps tmm1, tmm4, tmm5",
            "tdpbf16ps tmm2, tmm4, tmm5", "tdpbf16ps tmm3, tmm4, tmm5",
            "tdpbf16ps tmm0, tmm4, tmm5", "tdpbf16ps tmm1, tmm4, tmm5",
            "tdpbf16ps tmm2, tmm4, tmm5", "tdpbf16ps tmm3, tmm4, tmm5",
            "tdpbf16ps tmm0, tmm4, tmm5", "tdpbf16ps tmm1, tmm4, tmm5",
            "tdpbf16ps tmm2, tmm4, tmm5", "tdpbf16ps tmm3, tmm4, tmm5",
            "tdpbf16ps tmm0, tmm4, tmm5", "tdpbf16ps tmm1, tmm4, tmm5",
            "tdpbf16ps tmm2, tmm4, tmm5", "tdpbf16ps tmm3, tmm4, tmm5",
            "dec {n}",
            "jnz 2b",
            "tilestored [{o} + {s}*1], tmm0",
            "tilerelease",
            p = in(reg) input.0.as_ptr(),
            o = in(reg) out.as_mut_ptr(),
            s = in(reg) 64usize,
            n = inout(reg) iterations.max(1) => _,
            options(nostack),
        );
        out.iter().sum()
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
        fma12_loop!("vfmadd213ps", ymm_reg, a, m, c, iterations.max(1));
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

#[cfg(test)]
mod tests {
    use super::super::close;
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
    fn probe_bf16dot_exists_exactly_with_avx512bf16() {
        let has = cfg!(target_arch = "x86_64") && crate::isa::detected().avx512bf16;
        let p = bf16dot_throughput(&ProbeOptions::quick(1));
        assert_eq!(p.is_some(), has);
        assert_eq!(
            unit_throughput(ComputeUnit::CpuBf16Dot, &ProbeOptions::quick(1)).is_some(),
            has
        );
        if let Some(p) = p {
            assert_eq!(p.instruction, "vdpbf16ps zmm");
            assert_eq!(p.flops_per_cycle, 128.0);
            assert!(p.gflops.is_finite() && p.gflops > 0.0, "{p:?}");
        }
        for u in [
            ComputeUnit::CpuScalar,
            ComputeUnit::GpuSimt,
            ComputeUnit::GpuCoop,
        ] {
            assert!(unit_throughput(u, &ProbeOptions::quick(1)).is_none(), "{u}");
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn probe_bf16dot_loop_computes_what_it_claims() {
        let Some(lp) = bf16dot_loop() else { return };
        // Each instruction adds m0·c0 + m1·c1 = 2·m² per f32 lane (m = bf16 1e-3). Many
        // iterations, so that a loop that skipped its work would miss by far more than rounding.
        let iters = 1000u64;
        // SAFETY: returned only with AVX512_BF16.
        let got = unsafe { (lp.run)(iters) } as f64;
        let m = half::bf16::from_bits(x86::BF16_MILLI).to_f64();
        let steps = (iters * UNROLL as u64) as f64;
        let want: f64 = (0..lp.chains)
            .map(|k| 1.0 + k as f64 / 16.0 + steps * 2.0 * m * m)
            .sum::<f64>()
            * 16.0;
        let base: f64 = (0..lp.chains).map(|k| 1.0 + k as f64 / 16.0).sum::<f64>() * 16.0;
        assert!(
            ((got - want) / (want - base)).abs() < 0.05,
            "{got} vs {want} (start {base})"
        );
    }

    #[test]
    fn probe_amx_exists_exactly_with_amx_bf16() {
        let has = cfg!(target_arch = "x86_64") && crate::isa::detected().amx_bf16;
        let p = amx_throughput(&ProbeOptions::quick(1));
        assert_eq!(p.is_some(), has);
        assert_eq!(
            unit_throughput(ComputeUnit::CpuAmxBf16, &ProbeOptions::quick(1)).is_some(),
            has
        );
        if let Some(p) = p {
            assert_eq!(p.instruction, "tdpbf16ps");
            assert_eq!(p.flops_per_cycle, 1024.0);
            assert!(p.gflops.is_finite() && p.gflops > 0.0, "{p:?}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn probe_amx_loop_computes_what_it_claims() {
        let Some(lp) = amx_loop() else { return };
        // Tile 0 gets UNROLL instructions per iteration, each adding 32 · m² to each of its 256
        // elements (m = bf16 1e-3).
        let iters = 1000u64;
        // SAFETY: returned only with AMX-BF16 and the tile-data grant.
        let got = unsafe { (lp.run)(iters) } as f64;
        let m = half::bf16::from_bits(x86::BF16_MILLI).to_f64();
        let want = 256.0 * (iters * UNROLL as u64) as f64 * 32.0 * m * m;
        assert!(((got - want) / want).abs() < 0.01, "{got} vs {want}");
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
    fn probe_model_flops_per_cycle() {
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
}
