//! Memory bandwidth: read bandwidth as the best of several access patterns, and STREAM triad.
//!
//! Three f64 arrays `a`, `b`, `c`, each `max(8 × L3, 256 MiB)` capped at 640 MiB (so under 2 GiB
//! in all, and at least 6× the L3 on every machine seen so far), with L3 from
//! [`crate::cpu::cache::detected`] (one L3 instance: on machines with many L3 slices the total
//! cache can approach one array). Each thread owns a fixed, page-aligned span of every array and
//! touches it first (in parallel, so pages land on the thread's NUMA node); the timed kernels use
//! the same spans.
//!
//! **read** is a ceiling, so it is the best of several read-only access patterns over the
//! thread's three spans (bytes = 3 × n × 8 for every pattern). A kernel that streams memory in a
//! way one pattern misses (a GEMV with one stream per thread and a software prefetch, say) would
//! otherwise beat the probe:
//!
//! | pattern | what each thread does |
//! |---|---|
//! | `seq1` | its spans of `a`, `b`, `c` one after the other: one sequential stream |
//! | `seq1_prefetch` | the same with `prefetcht0` [`PREFETCH_BYTES`] ahead (x86-64) |
//! | `seq1_nt` | the same with non-temporal loads (`vmovntdqa`, AVX2 or AVX-512) |
//! | `seq2`, `seq4`, `seq8` | each span split into 2, 4 or 8 parts read in lockstep |
//! | `seq2_prefetch_l2` | `seq2` with `prefetcht1` [`PREFETCH_L2_BYTES`] and `prefetcht0` [`PREFETCH_L1_BYTES`] ahead on both parts (x86-64): the two streams and prefetch of GQA decode, which reads K and V in turn |
//! | `seq3_abc` | `s += a[i] + b[i] + c[i]`: the three arrays together, as in the hand C of `scripts/probe/triad.c` |
//!
//! Every pattern sums into 32 independent f64 accumulators (vectorized for the best ISA), so no
//! add chain limits it. The patterns run interleaved, [`BW_REPS`] rounds of all of them, so each
//! sees the same minutes of a machine whose bandwidth moves; each keeps its best round, and the
//! read figure is the best pattern (all are recorded).
//!
//! **triad**: `a[i] = b[i] + s·c[i]` with ordinary (write-allocate) stores; bytes = 24 × n, the
//! STREAM convention (two arrays read, one written, the write-allocate read of `a` not counted,
//! so the bus moves 32 bytes per element). Best of [`BW_REPS`].
//!
//! Wall time from the earliest start to the latest end of a repetition; GB/s in units of 1e9
//! bytes per second.

use super::{Pool, ProbeOptions};
use crate::cpu::cache;
use crate::cpu::simd::{prefetch_l2, Portable, Simd};
use crate::cpu::SendPtr;
use crate::isa::Isa;
use serde::{Deserialize, Serialize};
use std::hint::black_box;

/// Rounds of every read pattern, and repetitions of triad (each keeps its best).
pub const BW_REPS: usize = 5;
/// Software prefetch distance of `seq1_prefetch` (the distance the GEMV uses).
pub const PREFETCH_BYTES: usize = 8192;
/// `seq2_prefetch_l2`'s distances into L2 and L1: decode's 64 and 16 rows of 256 bytes ahead
/// (`Prefetch::L2_ROWS`, `Prefetch::L1_WITH_L2` in `cpu::attention::decode`, bf16 head_dim 128).
pub const PREFETCH_L2_BYTES: usize = 16384;
pub const PREFETCH_L1_BYTES: usize = 4096;

const MIB: usize = 1 << 20;
/// Smallest array of the bandwidth probe (8× a 32 MiB L3).
const BW_MIN_ARRAY: usize = 256 * MIB;
/// Largest array (three of them stay under 2 GiB).
const BW_MAX_ARRAY: usize = 640 * MIB;
/// Array size in `quick` mode.
const BW_QUICK_ARRAY: usize = MIB;
/// Thread spans start on 4 KiB boundaries (512 f64): no shared pages or cache lines.
const SPAN_ALIGN: usize = 512;
/// f64 accumulators of every read loop (one 256-byte chunk per stream per step).
const W: usize = 32;

/// A read-only access pattern of the bandwidth probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadPattern {
    Seq1,
    Seq1Prefetch,
    Seq1Nt,
    Seq2,
    Seq3Abc,
    Seq4,
    Seq8,
    Seq2PrefetchL2,
}

impl ReadPattern {
    pub const ALL: [ReadPattern; 8] = [
        ReadPattern::Seq1,
        ReadPattern::Seq1Prefetch,
        ReadPattern::Seq1Nt,
        ReadPattern::Seq2,
        ReadPattern::Seq3Abc,
        ReadPattern::Seq4,
        ReadPattern::Seq8,
        ReadPattern::Seq2PrefetchL2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadPattern::Seq1 => "seq1",
            ReadPattern::Seq1Prefetch => "seq1_prefetch",
            ReadPattern::Seq1Nt => "seq1_nt",
            ReadPattern::Seq2 => "seq2",
            ReadPattern::Seq3Abc => "seq3_abc",
            ReadPattern::Seq4 => "seq4",
            ReadPattern::Seq8 => "seq8",
            ReadPattern::Seq2PrefetchL2 => "seq2_prefetch_l2",
        }
    }

    /// Whether this machine can run the pattern with `isa` (non-temporal loads need AVX2).
    pub fn available(self, isa: Isa) -> bool {
        match self {
            ReadPattern::Seq1Nt => cfg!(target_arch = "x86_64") && isa != Isa::Portable,
            _ => true,
        }
    }
}

/// One read pattern's best figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatternBandwidth {
    pub pattern: ReadPattern,
    pub gbs: f64,
}

/// Memory bandwidth on `threads` threads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandwidthProbe {
    pub threads: usize,
    /// The best read pattern, 1e9 bytes/s (bytes = 3 × n × 8).
    pub read_gbs: f64,
    /// Which pattern gave `read_gbs`.
    pub read_pattern: ReadPattern,
    /// Every read pattern run, with its best round.
    pub read_patterns: Vec<PatternBandwidth>,
    /// `a[i] = b[i] + s·c[i]`, 1e9 bytes/s, STREAM counting (24 bytes per element).
    pub triad_gbs: f64,
    /// Bytes of each of the three arrays.
    pub bytes_per_array: usize,
    /// The L3 size the arrays were sized from (one instance).
    pub l3_bytes: usize,
    /// The ISA the loops were compiled for.
    pub isa: Isa,
    pub reps: usize,
}

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

/// `K` equally long parts read in lockstep, [`W`] elements of each per step, into `W`
/// accumulators, with `prefetch` called on every cache line of a step before it is read; the
/// parts' tails (beyond a whole step) are summed after.
#[inline(always)]
fn sum_lockstep<const K: usize>(parts: [&[f64]; K], prefetch: impl Fn(*const f64)) -> f64 {
    let n = parts.iter().map(|p| p.len()).min().unwrap_or(0);
    let steps = n / W;
    let mut acc = [0f64; W];
    for s in 0..steps {
        for p in &parts {
            for line in 0..W / 8 {
                prefetch(p.as_ptr().wrapping_add(s * W + line * 8));
            }
            let c: &[f64; W] = p[s * W..s * W + W].try_into().expect("a whole step");
            for j in 0..W {
                acc[j] += c[j];
            }
        }
    }
    let tails: f64 = parts
        .iter()
        .map(|p| p[steps * W..].iter().sum::<f64>())
        .sum();
    tails + acc.iter().sum::<f64>()
}

/// `p` split into `k` (1, 2, 4 or 8) parts read in lockstep, with `prefetch` on every line.
#[inline(always)]
fn sum_split(k: usize, p: &[f64], prefetch: impl Fn(*const f64)) -> f64 {
    if k == 1 {
        return sum_lockstep([p], prefetch);
    }
    let part = p.len() / k / W * W;
    let rest: f64 = p[part * k..].iter().sum();
    let at = |i: usize| &p[i * part..(i + 1) * part];
    rest + match k {
        2 => sum_lockstep([at(0), at(1)], prefetch),
        4 => sum_lockstep([at(0), at(1), at(2), at(3)], prefetch),
        _ => sum_lockstep(
            [at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7)],
            prefetch,
        ),
    }
}

/// No software prefetch.
#[inline(always)]
fn no_prefetch(_: *const f64) {}

/// `seq1_prefetch`'s: `prefetcht0` [`PREFETCH_BYTES`] ahead of the line at `at`. A prefetch is
/// a hint and never faults; the address is only computed (`wrapping_add`).
#[inline(always)]
fn prefetch_ahead(at: *const f64) {
    // SAFETY: a prefetch reads nothing architecturally, at any address.
    unsafe { Portable::prefetch(at.wrapping_add(PREFETCH_BYTES / 8) as *const u8) }
}

/// `seq2_prefetch_l2`'s: `prefetcht1` [`PREFETCH_L2_BYTES`], then `prefetcht0`
/// [`PREFETCH_L1_BYTES`], ahead of the line at `at`.
#[inline(always)]
fn prefetch_l2_and_l1(at: *const f64) {
    prefetch_l2(at.wrapping_add(PREFETCH_L2_BYTES / 8) as *const u8);
    // SAFETY: as in `prefetch_ahead`.
    unsafe { Portable::prefetch(at.wrapping_add(PREFETCH_L1_BYTES / 8) as *const u8) }
}

/// The three arrays together (`a[i] + b[i] + c[i]`), as in the hand C.
#[inline(always)]
fn sum3(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    sum_lockstep([a, b, c], no_prefetch)
}

/// One thread's read of its spans with `pattern` (a checksum of what it read). `seq3_abc` reads
/// three spans together and takes exactly three; every other pattern reads the spans one after
/// another, each split as the pattern says.
#[inline(always)]
fn read_body(pattern: ReadPattern, spans: &[&[f64]]) -> f64 {
    match pattern {
        ReadPattern::Seq3Abc => {
            let [a, b, c] = spans else {
                panic!("seq3_abc reads three spans, got {}", spans.len())
            };
            sum3(a, b, c)
        }
        ReadPattern::Seq1 => spans.iter().map(|p| sum_split(1, p, no_prefetch)).sum(),
        ReadPattern::Seq2 => spans.iter().map(|p| sum_split(2, p, no_prefetch)).sum(),
        ReadPattern::Seq4 => spans.iter().map(|p| sum_split(4, p, no_prefetch)).sum(),
        ReadPattern::Seq8 => spans.iter().map(|p| sum_split(8, p, no_prefetch)).sum(),
        ReadPattern::Seq1Prefetch => spans.iter().map(|p| sum_split(1, p, prefetch_ahead)).sum(),
        ReadPattern::Seq2PrefetchL2 => spans
            .iter()
            .map(|p| sum_split(2, p, prefetch_l2_and_l1))
            .sum(),
        // Non-temporal loads need intrinsics; dispatched in `read` (never reaches here).
        ReadPattern::Seq1Nt => spans.iter().map(|p| sum_split(1, p, no_prefetch)).sum(),
    }
}

#[inline(always)]
fn triad_body(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn read_avx512(pattern: ReadPattern, spans: &[&[f64]]) -> f64 {
        read_body(pattern, spans)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn read_avx2(pattern: ReadPattern, spans: &[&[f64]]) -> f64 {
        read_body(pattern, spans)
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn triad_avx512(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
        triad_body(a, b, c, s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn triad_avx2(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
        triad_body(a, b, c, s)
    }

    /// One stream of `vmovntdqa zmm` loads (64-byte aligned from the first whole line).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sum_nt_avx512(p: &[f64]) -> f64 {
        let head = p.as_ptr().align_offset(64).min(p.len());
        let body = (p.len() - head) / W * W;
        let mut acc = [_mm512_setzero_pd(); 4];
        let base = p.as_ptr().add(head);
        let mut i = 0;
        while i < body {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = _mm512_stream_load_si512(base.add(i + 8 * j) as *const __m512i);
                *a = _mm512_add_pd(*a, _mm512_castsi512_pd(v));
            }
            i += W;
        }
        let rest: f64 = p[..head].iter().chain(&p[head + body..]).sum();
        let s = _mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3]));
        rest + _mm512_reduce_add_pd(s)
    }

    /// One stream of `vmovntdqa ymm` loads (32-byte aligned from the first whole chunk).
    #[target_feature(enable = "avx2")]
    pub unsafe fn sum_nt_avx2(p: &[f64]) -> f64 {
        let head = p.as_ptr().align_offset(32).min(p.len());
        let body = (p.len() - head) / W * W;
        let mut acc = [_mm256_setzero_pd(); 8];
        let base = p.as_ptr().add(head);
        let mut i = 0;
        while i < body {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = _mm256_stream_load_si256(base.add(i + 4 * j) as *const __m256i);
                *a = _mm256_add_pd(*a, _mm256_castsi256_pd(v));
            }
            i += W;
        }
        let mut lanes = [0f64; 4];
        let mut s = _mm256_setzero_pd();
        for a in acc {
            s = _mm256_add_pd(s, a);
        }
        _mm256_storeu_pd(lanes.as_mut_ptr(), s);
        let rest: f64 = p[..head].iter().chain(&p[head + body..]).sum();
        rest + lanes.iter().sum::<f64>()
    }
}

/// One thread's read with `pattern`, vectorized for `isa` (the portable loop where the ISA is
/// not available).
fn read(isa: Isa, pattern: ReadPattern, spans: &[&[f64]]) -> f64 {
    match (isa, pattern) {
        // SAFETY (every arm): the ISA was checked available.
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512f, ReadPattern::Seq1Nt) if isa.available() => {
            spans.iter().map(|p| unsafe { x86::sum_nt_avx512(p) }).sum()
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2fma, ReadPattern::Seq1Nt) if isa.available() => {
            spans.iter().map(|p| unsafe { x86::sum_nt_avx2(p) }).sum()
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512f, _) if isa.available() => unsafe { x86::read_avx512(pattern, spans) },
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2fma, _) if isa.available() => unsafe { x86::read_avx2(pattern, spans) },
        _ => read_body(pattern, spans),
    }
}

/// The patterns of [`read_buffers`] on `isa`: every available one but `seq3_abc`, which reads
/// three arrays of one length together (a row's inputs differ in length: decode's Q, K and V).
pub fn buffer_patterns(isa: Isa) -> Vec<ReadPattern> {
    ReadPattern::ALL
        .into_iter()
        .filter(|p| p.available(isa) && *p != ReadPattern::Seq3Abc)
        .collect()
}

/// One read of `buffers` (other buffers than the probe's own: the runner reads a memory-bound
/// row's input sets alongside its samples) with `pattern` (one of [`buffer_patterns`]), on
/// every thread of the current rayon pool, each thread reading its span of every buffer (the
/// probe's [`span`]s, over the buffer's 8-byte words), timed as the probe times a round: from
/// the earliest start to the latest end. Returns the bytes read and the seconds. A buffer's bytes
/// before its first 8-byte aligned word and after its last whole one are not read (none of the
/// runner's cache-line aligned tensors of whole words).
pub fn read_buffers(isa: Isa, pattern: ReadPattern, buffers: &[&[u8]]) -> (u64, f64) {
    assert!(
        pattern != ReadPattern::Seq3Abc,
        "seq3_abc reads the probe's three arrays, not other buffers"
    );
    let words: Vec<&[f64]> = buffers
        .iter()
        .map(|b| bytemuck::pod_align_to::<u8, f64>(b).1)
        .collect();
    let bytes: u64 = words.iter().map(|w| 8 * w.len() as u64).sum();
    let (secs, sums) = Pool::Global.timed(|t, nt| {
        let spans: Vec<&[f64]> = words.iter().map(|w| &w[span(t, nt, w.len())]).collect();
        read(isa, pattern, &spans)
    });
    black_box(sums);
    (bytes, secs)
}

/// `a = b + s·c`, vectorized for `isa` (which must be available).
fn triad(isa: Isa, a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
    match isa {
        // SAFETY: checked available.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512f if isa.available() => unsafe { x86::triad_avx512(a, b, c, s) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2fma if isa.available() => unsafe { x86::triad_avx2(a, b, c, s) },
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

/// Read (best of the patterns) and triad bandwidth on `opts.threads` threads over arrays far
/// larger than L3.
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

    let patterns: Vec<ReadPattern> = ReadPattern::ALL
        .into_iter()
        .filter(|p| p.available(isa))
        .collect();
    let mut best_secs = vec![f64::INFINITY; patterns.len()];
    for _ in 0..reps {
        for (best, &pattern) in best_secs.iter_mut().zip(&patterns) {
            let (secs, sums) = pool.timed(|t, nt| {
                let r = span(t, nt, n);
                read(
                    isa,
                    pattern,
                    &[&*slice(0, &r), &*slice(1, &r), &*slice(2, &r)],
                )
            });
            black_box(sums);
            *best = best.min(secs);
        }
    }
    let gbs = |secs: f64| (3 * n * 8) as f64 / secs / 1e9;
    let read_patterns: Vec<PatternBandwidth> = patterns
        .iter()
        .zip(&best_secs)
        .map(|(&pattern, &s)| PatternBandwidth {
            pattern,
            gbs: gbs(s),
        })
        .collect();
    let best = read_patterns
        .iter()
        .max_by(|a, b| a.gbs.total_cmp(&b.gbs))
        .cloned()
        .expect("at least one pattern runs everywhere");

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
        read_gbs: best.gbs,
        read_pattern: best.pattern,
        read_patterns,
        triad_gbs: gbs(triad_secs),
        bytes_per_array: n * 8,
        l3_bytes: l3,
        isa,
        reps,
    }
}

#[cfg(test)]
mod tests {
    use super::super::close;
    use super::*;

    #[test]
    fn probe_bandwidth_is_finite_and_positive() {
        let b = bandwidth(&ProbeOptions::quick(2));
        assert_eq!(b.threads, 2);
        assert!(b.read_gbs.is_finite() && b.read_gbs > 0.0, "{b:?}");
        assert!(b.triad_gbs.is_finite() && b.triad_gbs > 0.0, "{b:?}");
        assert_eq!(b.bytes_per_array, BW_QUICK_ARRAY);
        // The read figure is the best pattern, and every available pattern ran.
        let best = b.read_patterns.iter().map(|p| p.gbs).fold(0.0, f64::max);
        assert_eq!(b.read_gbs, best);
        assert_eq!(
            b.read_patterns
                .iter()
                .find(|p| p.pattern == b.read_pattern)
                .map(|p| p.gbs),
            Some(best)
        );
        let ran: Vec<ReadPattern> = b.read_patterns.iter().map(|p| p.pattern).collect();
        let want: Vec<ReadPattern> = ReadPattern::ALL
            .into_iter()
            .filter(|p| p.available(b.isa))
            .collect();
        assert_eq!(ran, want);
        let json = serde_json::to_string(&b).unwrap();
        let back: BandwidthProbe = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (
                back.bytes_per_array,
                back.isa,
                back.threads,
                back.read_pattern
            ),
            (b.bytes_per_array, b.isa, b.threads, b.read_pattern)
        );
        assert!(close(back.read_gbs, b.read_gbs) && close(back.triad_gbs, b.triad_gbs));
    }

    #[test]
    fn probe_read_patterns_read_every_element_once_on_every_isa() {
        // Lengths that are not multiples of the 32-wide steps or of the split parts, and a start
        // off the 64-byte line (the non-temporal loops' head).
        for n in [0usize, 1, 31, 1000, 4099] {
            let backing: Vec<f64> = (0..3 * n + 1).map(|i| init_value(1 + i % 2, i)).collect();
            let (a, rest) = backing[1..].split_at(n);
            let (b, c) = rest.split_at(n);
            let want: f64 = a.iter().chain(b).chain(c).sum();
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                for p in ReadPattern::ALL.into_iter().filter(|p| p.available(isa)) {
                    let got = read(isa, p, &[a, b, c]);
                    assert!(
                        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{isa} {} n={n}: {got} vs {want}",
                        p.name()
                    );
                }
            }
        }
    }

    #[test]
    fn buffer_reads_cover_every_word_of_every_buffer_once() {
        // Buffers of unequal lengths (none a multiple of the steps or parts), one off the
        // 8-byte boundary (its head byte and its tail are not words), read on two threads: every
        // thread's spans together are every word once, so the bytes are all the words'.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a: Vec<f64> = (0..4099).map(|i| init_value(1, i)).collect();
        let b: Vec<f64> = (0..37).map(|i| init_value(2, i)).collect();
        let c: Vec<f64> = (0..1000).map(|i| init_value(1, i)).collect();
        let a8: &[u8] = bytemuck::cast_slice(&a);
        let c8: &[u8] = &bytemuck::cast_slice::<f64, u8>(&c)[1..];
        let buffers = [a8, bytemuck::cast_slice(&b), c8];
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            let patterns = buffer_patterns(isa);
            assert!(!patterns.contains(&ReadPattern::Seq3Abc));
            assert!(patterns.contains(&ReadPattern::Seq2PrefetchL2));
            for p in patterns {
                let (bytes, secs) = pool.install(|| read_buffers(isa, p, &buffers));
                assert_eq!(bytes, 8 * (4099 + 37 + 999), "{isa} {}", p.name());
                assert!(secs > 0.0 && secs.is_finite(), "{isa} {}: {secs}", p.name());
            }
            // Each thread's spans of a buffer tile it: the checksum is the whole buffers'.
            let words = |x: &[u8]| bytemuck::pod_align_to::<u8, f64>(x).1.to_vec();
            let want: f64 = buffers.iter().flat_map(|x| words(x)).sum();
            let got: f64 = (0..2)
                .map(|t| {
                    let spans: Vec<Vec<f64>> = buffers
                        .iter()
                        .map(|x| {
                            let w = words(x);
                            w[span(t, 2, w.len())].to_vec()
                        })
                        .collect();
                    let refs: Vec<&[f64]> = spans.iter().map(Vec::as_slice).collect();
                    read(isa, ReadPattern::Seq2PrefetchL2, &refs)
                })
                .sum();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs(),
                "{isa}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn probe_triad_is_correct_on_every_isa() {
        let n = 1000; // not a multiple of the vector width
        let b: Vec<f64> = (0..n).map(|i| init_value(1, i)).collect();
        let c: Vec<f64> = (0..n).map(|i| init_value(2, i)).collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
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
    }
}
