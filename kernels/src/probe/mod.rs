//! The machine's own ceilings: FMA throughput per CPU compute unit (each ISA path's FMA and
//! AVX512_BF16 `vdpbf16ps`), the core clock, and memory bandwidth.
//!
//! These are the denominators of the "% of measured ceiling" (DESIGN.md, Normalization). They
//! are measured here, on this machine, with the thread count the kernels use, so they capture
//! what a spec sheet cannot: VM throttling, turbo under all-core load, memory channels actually
//! populated. A probe is a ceiling: no kernel should beat it, and the harness says so when one
//! does. `scripts/probe-check.sh` cross-checks them against hand-written C (inline-asm FMA loops,
//! an OpenMP triad) and commits the comparison to `results/probe-check.md`.
//!
//! - [`fma`]: the FMA loops and the clock-based sanity check;
//! - [`bandwidth`]: read bandwidth as the best of several access patterns, and STREAM triad.
//!
//! Threads are not pinned; the OS spreads them. `ProbeOptions::quick` shrinks every size so unit
//! tests run in milliseconds: its numbers are not measurements of anything.
//!
//! The GPU probes (FMA, copy and cooperative-matrix shaders) are in `crate::gpu::probe`.

pub mod bandwidth;
pub mod fma;

pub use bandwidth::{bandwidth, BandwidthProbe, ReadPattern};
pub use fma::{
    amx_throughput, bf16dot_throughput, flops_per_cycle, fma_throughput, measure_clock_ghz,
    unit_throughput, FmaProbe, FMA_PIPES_ASSUMED, RATIO_TOLERANCE,
};

use serde::{Deserialize, Serialize};
use std::sync::Barrier;
use std::time::Instant;

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

/// Everything the CPU probes measure, as recorded in a run's `measured_ceilings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuCeilings {
    pub threads: usize,
    /// One entry per ISA path this machine can run, best first.
    pub fma: Vec<FmaProbe>,
    /// The `vdpbf16ps` probe where the CPU has AVX512_BF16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16dot: Option<FmaProbe>,
    /// The `tdpbf16ps` probe where the CPU has AMX-BF16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amx: Option<FmaProbe>,
    pub bandwidth: BandwidthProbe,
}

impl CpuCeilings {
    /// Every FMA-type probe (the ISA paths, then `vdpbf16ps`, then `tdpbf16ps`) with its key in
    /// `measured_ceilings.cpu_fma_gflops`.
    pub fn fma_by_key(&self) -> impl Iterator<Item = (&'static str, &FmaProbe)> {
        self.fma
            .iter()
            .map(|f| (f.isa.name(), f))
            .chain(self.bf16dot.iter().map(|f| (crate::unit::BF16DOT_PROBE, f)))
            .chain(self.amx.iter().map(|f| (crate::unit::AMX_PROBE, f)))
    }
}

/// Runs every probe this machine supports.
pub fn cpu_ceilings(opts: &ProbeOptions) -> CpuCeilings {
    let fma = crate::isa::Isa::ALL
        .iter()
        .filter_map(|&isa| fma_throughput(isa, opts))
        .collect();
    CpuCeilings {
        threads: opts.resolved_threads(),
        fma,
        bf16dot: bf16dot_throughput(opts),
        amx: amx_throughput(opts),
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

/// Equal up to JSON's decimal round trip (serde_json without `float_roundtrip`).
#[cfg(test)]
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}
