//! Time the CPU GQA decode kernel on one shape (a development aid; claims come from
//! `perfledger run`).
//!
//! `cargo run --release -p perfledger-kernels --example dectime -- [kv_len] [dtype] [path] [q_heads] [kv_heads] [head_dim]`
//!
//! `path`: an ISA (`avx512f`, `avx2fma`, `portable`) or `avx512bf16` (the `vdpbf16ps` products,
//! bf16 only).
//!
//! `DECTIME_INTERLEAVE_AB=1` alternates the decode task's interleaved P·V off and on call by call
//! (`decode.avx512bf16`; each pair of adjacent calls sees the same memory state) and prints the
//! median ratio of the pairs' speeds, on/off; `DECTIME_INTERLEAVE_AB=same` runs both calls of a
//! pair with it off (the control: a ratio of 1 up to the host's noise).
//!
//! `DECTIME_READ_AB=S` alternates decode calls with a plain read of the same input set's K and V
//! (the pool's threads each read their share as `S` streams in lockstep, `S` even: half of them
//! over K, half over V) and prints decode's speed over the read's, median of the adjacent pairs:
//! the two share the host's memory state, which on a shared host moves within seconds, so this is
//! decode's share of what a pure reader of the same buffers got at the same time (a development
//! measure; the report's gate compares decode with the run's read probe).
//!
//! `DECTIME_READ_PREFETCH=1` has that read prefetch each stream as the read probe's
//! `seq2_prefetch_l2` pattern does (16 KiB ahead into L2, 4 KiB into L1).
//!
//! `DECTIME_ROTATIONS=a,b,…` times decode from rotations of `a`, `b`, … input sets (disjoint),
//! each in turn for 40 calls (the first 10 discarded), for 20 s, and prints each rotation's speed
//! over the last one's, round by round (a median of the rounds): whether a rotation of that
//! many sets still reads partly from cache, measured in the same memory state as the large one.
//!
//! `DECTIME_STREAMS=N` has each decode task read its split as N streams (1, 2, 4, 8 or 16;
//! unset: as the kernel chooses).
//!
//! `DECTIME_PREFETCH=l1,l2` prefetches `l1` rows ahead into L1 and `l2` into L2 (0: none;
//! divided among a task's streams; unset: as the kernel chooses).
//!
//! `DECTIME_SETS=N` cycles through N input sets (default: 520 MiB of K and V in all, so K and V
//! are read from memory, as the runner's rotation of 16 × L3 reads them on a 32 MiB L3);
//! `DECTIME_SETS=1` times data left in cache.

use perfledger_kernels::cpu::attention::{decode_run, DecodeKnobs, DecodePath, Mutation};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::{AttentionProblem, DType, Element, Tensor};
use std::time::Instant;

/// Large buffers (the tensors) on cache lines, as the runner allocates them
/// (`perfledger_kernels::alloc`).
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

/// `DECTIME_STREAMS=N`: the streams a decode task reads its split in (as chosen if unset).
fn knobs() -> DecodeKnobs {
    DecodeKnobs {
        interleave: None,
        streams: std::env::var("DECTIME_STREAMS")
            .ok()
            .map(|s| s.parse().expect("DECTIME_STREAMS is a number of streams")),
        prefetch_rows: std::env::var("DECTIME_PREFETCH").ok().map(|s| {
            let (l1, l2) = s
                .split_once(',')
                .expect("DECTIME_PREFETCH is `l1,l2` rows ahead");
            (l1.parse().unwrap(), l2.parse().unwrap())
        }),
    }
}

/// `DECTIME_INTERLEAVE_AB`: `Some(false)` pairs calls off/on, `Some(true)` off/off (`same`).
fn pairing() -> Option<bool> {
    std::env::var_os("DECTIME_INTERLEAVE_AB").map(|v| v == "same")
}

/// The read paired with decode: `DECTIME_READ_AB` streams per thread, prefetched as the read
/// probe's `seq2_prefetch_l2` pattern does with `DECTIME_READ_PREFETCH=1`.
#[derive(Clone, Copy)]
struct ReadPairing {
    streams: usize,
    prefetch: bool,
}

/// `DECTIME_READ_AB` and `DECTIME_READ_PREFETCH`.
fn read_pairing() -> Option<ReadPairing> {
    let s = std::env::var("DECTIME_READ_AB").ok()?;
    let prefetch = std::env::var_os("DECTIME_READ_PREFETCH").is_some_and(|v| v == "1");
    match s.parse::<usize>() {
        Ok(n) if n >= 2 && n % 2 == 0 => Some(ReadPairing {
            streams: n,
            prefetch,
        }),
        _ => {
            eprintln!("dectime: DECTIME_READ_AB takes an even number of streams per thread (2, 4, 8), got {s:?}");
            std::process::exit(2);
        }
    }
}

/// A checksum of `parts` read in lockstep, one 64-byte line of each per step (AVX-512 loads
/// where available, so the loads themselves do not limit the rate); with `prefetch`, each stream
/// prefetched as the read probe's `seq2_prefetch_l2` pattern does (the AVX-512 read only).
fn read_lockstep(parts: &[&[u8]], prefetch: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected.
        return unsafe { read_lockstep_avx512(parts, prefetch) };
    }
    // The portable read does not prefetch.
    let _ = prefetch;
    let n = parts.iter().map(|p| p.len()).min().unwrap_or(0) / 64;
    let mut acc = 0u64;
    for i in 0..n {
        for p in parts {
            for w in p[64 * i..64 * (i + 1)].chunks_exact(8) {
                acc = acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()));
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_lockstep_avx512(parts: &[&[u8]], prefetch: bool) -> u64 {
    use std::arch::x86_64::*;
    let n = parts.iter().map(|p| p.len()).min().unwrap_or(0) / 64;
    let mut acc = [_mm512_setzero_si512(); 8];
    for i in 0..n {
        for (k, p) in parts.iter().enumerate() {
            if prefetch {
                // The read probe's `seq2_prefetch_l2` distances: 16 KiB into L2, 4 KiB into L1.
                let at = p.as_ptr().wrapping_add(64 * i);
                _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(16384) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(4096) as *const i8);
            }
            let v = _mm512_loadu_si512(p.as_ptr().add(64 * i) as *const _);
            acc[k % 8] = _mm512_add_epi64(acc[k % 8], v);
        }
    }
    let t = acc[1..].iter().fold(acc[0], |t, a| _mm512_add_epi64(t, *a));
    _mm512_reduce_add_epi64(t) as u64
}

/// K and V read by the pool's threads, each its share of both as `streams` lockstep streams.
fn read_pass<T: Element>(k: &[T], v: &[T], read: ReadPairing) -> u64 {
    let ReadPairing { streams, prefetch } = read;
    use rayon::prelude::*;
    let (kb, vb): (&[u8], &[u8]) = (bytemuck::cast_slice(k), bytemuck::cast_slice(v));
    let th = rayon::current_num_threads();
    (0..th)
        .into_par_iter()
        .map(|t| {
            let mut parts = Vec::with_capacity(streams);
            for b in [kb, vb] {
                let (lo, hi) = (b.len() * t / th, b.len() * (t + 1) / th);
                let per = (hi - lo) / (streams / 2);
                parts.extend((0..streams / 2).map(|i| &b[lo + i * per..lo + (i + 1) * per]));
            }
            read_lockstep(&parts, prefetch)
        })
        .sum()
}

/// `v` sorted, ascending.
fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Paired samples (even, odd) after the first two: the pairs' `ratio(even, odd)` and the even and
/// the odd times, each sorted. Adjacent calls share the host's memory state, so the pairs' ratio
/// is the measure.
fn paired(v: &[f64], ratio: impl Fn(f64, f64) -> f64) -> [Vec<f64>; 3] {
    [
        sorted(v[2..].chunks_exact(2).map(|c| ratio(c[0], c[1])).collect()),
        sorted(v[2..].iter().step_by(2).copied().collect()),
        sorted(v[3..].iter().step_by(2).copied().collect()),
    ]
}

/// `n` input sets (Q, K, V) of `p`, each with its own seeds.
fn input_sets<T: Element>(p: &AttentionProblem, n: usize) -> Vec<[Tensor; 3]> {
    (0..n as u64)
        .map(|s| {
            [
                Tensor::random(T::DTYPE, p.q_len_elems(), 1 + 3 * s),
                Tensor::random(T::DTYPE, p.kv_len_elems(), 2 + 3 * s),
                Tensor::random(T::DTYPE, p.kv_len_elems(), 3 + 3 * s),
            ]
        })
        .collect()
}

/// An input set's Q, K and V as slices of `T`.
fn slices<T: Element>(set: &[Tensor; 3]) -> [&[T]; 3] {
    set.each_ref().map(|t| T::tensor_slice(t).unwrap())
}

/// `DECTIME_ROTATIONS`: the numbers of input sets of the rotations compared.
fn rotations_arg() -> Option<Vec<usize>> {
    let s = std::env::var("DECTIME_ROTATIONS").ok()?;
    match s
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(v) if v.len() >= 2 && v.iter().all(|&n| n >= 1) => Some(v),
        _ => {
            eprintln!(
                "dectime: DECTIME_ROTATIONS takes two or more set counts, e.g. 2,8,16; got {s:?}"
            );
            std::process::exit(2);
        }
    }
}

/// Calls of one rotation's turn, and how many of them are discarded first (they still read the
/// previous rotation's sets out of the caches, or its tail out of the prefetchers).
const TURN_CALLS: usize = 40;
const TURN_WARM: usize = 10;

/// Decode from rotations of `counts` input sets (disjoint sets), each in turn for [`TURN_CALLS`]
/// calls, for 20 s: per rotation, its median K+V GB/s over the rounds and the median ratio of
/// its speed to the last rotation's in the same round (each turn's median call).
fn rotations<T: Element>(path: DecodePath, p: &AttentionProblem, counts: &[usize]) {
    let inputs = input_sets::<T>(p, counts.iter().sum());
    let bytes = (2 * p.kv_len_elems() * std::mem::size_of::<T>()) as f64;
    let mut out = vec![T::default(); p.q_len_elems()];
    let mut gbs: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let knobs = knobs();
    let t_end = Instant::now() + std::time::Duration::from_secs(20);
    while Instant::now() < t_end {
        let mut first = 0;
        for (g, &n) in counts.iter().enumerate() {
            let mut ts = Vec::with_capacity(TURN_CALLS);
            for i in 0..TURN_CALLS {
                let [q, k, v] = slices::<T>(&inputs[first + i % n]);
                let t = Instant::now();
                decode_run::<T, T>(path, p, q, k, v, &mut out, Mutation::None, knobs).unwrap();
                ts.push(t.elapsed().as_secs_f64());
            }
            let ts = sorted(ts[TURN_WARM..].to_vec());
            gbs[g].push(bytes / ts[ts.len() / 2] / 1e9);
            first += n;
        }
    }
    let last = counts.len() - 1;
    let rounds = gbs[last].len();
    for (g, n) in counts.iter().enumerate() {
        let r = sorted(gbs[g].iter().zip(&gbs[last]).map(|(a, b)| a / b).collect());
        let s = sorted(gbs[g].clone());
        println!(
            "{n} sets ({} MiB): {:.1} GB/s (median of {rounds} turns); speed over {} sets' in the same round: median {:.3} [{:.3}, {:.3}]",
            (*n as f64 * bytes / (1u64 << 20) as f64).round(),
            s[s.len() / 2],
            counts[last],
            r[r.len() / 2],
            r[r.len() / 4],
            r[3 * r.len() / 4],
        );
    }
}

fn time<T: Element>(
    path: DecodePath,
    p: &AttentionProblem,
    ab: Option<bool>,
    read: Option<ReadPairing>,
) -> Vec<f64> {
    let kv_bytes = 2 * p.kv_len_elems() * std::mem::size_of::<T>();
    let sets: usize = std::env::var("DECTIME_SETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (520usize << 20).div_ceil(kv_bytes))
        .max(1);
    let inputs = input_sets::<T>(p, sets);
    let mut out = vec![T::default(); p.q_len_elems()];
    let mut v = Vec::new();
    let knobs = knobs();
    let t_end = Instant::now() + std::time::Duration::from_secs_f64(3.0);
    while v.len() < 5 || (Instant::now() < t_end && v.len() < 2000.max(2 * sets)) {
        let [q, k, vv] = slices::<T>(&inputs[v.len() % sets]);
        let t = Instant::now();
        // Paired (`ab`): even samples with the interleaved P·V off, odd ones on (`same`: off).
        let interleave = ab.map(|same| !same && v.len() % 2 == 1);
        match read {
            // Paired with a read (`read`): odd samples read the set's K and V instead.
            Some(r) if v.len() % 2 == 1 => {
                std::hint::black_box(read_pass(k, vv, r));
            }
            _ => decode_run::<T, T>(
                path,
                p,
                q,
                k,
                vv,
                &mut out,
                Mutation::None,
                DecodeKnobs {
                    interleave,
                    ..knobs
                },
            )
            .unwrap(),
        }
        v.push(t.elapsed().as_secs_f64());
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let kv_len = num(0, 8192);
    let dtype: DType = args
        .get(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(DType::BF16);
    let path = match args.get(2).map(String::as_str) {
        Some("avx512bf16") => DecodePath::Bf16Dot,
        Some(s) => DecodePath::Isa(s.parse::<Isa>().unwrap()),
        None => DecodePath::Isa(Isa::best()),
    };
    let ab = pairing();
    let read = read_pairing();
    if ab.is_some() && read.is_some() {
        eprintln!(
            "dectime: DECTIME_INTERLEAVE_AB and DECTIME_READ_AB pair calls differently; set one"
        );
        std::process::exit(2);
    }
    if ab.is_some() && path != DecodePath::Bf16Dot {
        eprintln!("dectime: DECTIME_INTERLEAVE_AB pairs the avx512bf16 path only (its P·V order); got {path}");
        std::process::exit(2);
    }
    let (qh, kvh, d) = (num(3, 32), num(4, 8), num(5, 128));
    let p = AttentionProblem::new(1, qh, kvh, 1, kv_len, d);
    // Timed on a worker of the pool, as the runner does (no wake-up of the calling thread).
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    if let Some(counts) = rotations_arg() {
        if ab.is_some() || read.is_some() {
            eprintln!("dectime: DECTIME_ROTATIONS compares rotations on its own; unset DECTIME_INTERLEAVE_AB and DECTIME_READ_AB");
            std::process::exit(2);
        }
        println!(
            "decode h{qh}/{kvh} kv{kv_len} d{d} {dtype} {path} threads={}, rotations in turn ({TURN_CALLS} calls a turn, the first {TURN_WARM} discarded):",
            pool.current_num_threads()
        );
        pool.install(|| match dtype {
            DType::F32 => rotations::<f32>(path, &p, &counts),
            DType::F16 => rotations::<half::f16>(path, &p, &counts),
            DType::BF16 => rotations::<half::bf16>(path, &p, &counts),
        });
        return;
    }
    let v = pool.install(|| match dtype {
        DType::F32 => time::<f32>(path, &p, ab, read),
        DType::F16 => time::<half::f16>(path, &p, ab, read),
        DType::BF16 => time::<half::bf16>(path, &p, ab, read),
    });
    let bytes = (2 * p.kv_len_elems() * dtype.size_bytes()) as f64;
    if let Some(ReadPairing { streams, prefetch }) = read {
        let prefetched = if prefetch { ", prefetched" } else { "" };
        // Pairs (decode, read): decode's speed over the read's.
        let [r, dec, rd] = paired(&v, |decode, read| read / decode);
        let n = r.len();
        println!(
            "decode h{qh}/{kvh} kv{kv_len} d{d} {dtype} {path} threads={} against a read of the same K and V \
             ({streams} streams a thread{prefetched}), {n} call pairs: decode/read speed median {:.3} [{:.3}, {:.3}]; \
             decode {:.1} GB/s, read {:.1} GB/s (medians)",
            pool.current_num_threads(),
            r[n / 2],
            r[n / 4],
            r[3 * n / 4],
            bytes / dec[dec.len() / 2] / 1e9,
            bytes / rd[rd.len() / 2] / 1e9
        );
        return;
    }
    if ab.is_some() {
        // Pairs (off, on): the speed on over off.
        let [r, off, on] = paired(&v, |off, on| off / on);
        let n = r.len();
        println!(
            "decode h{qh}/{kvh} kv{kv_len} d{d} {dtype} {path} interleaved P·V on/off, {n} call pairs: \
             speed ratio median {:.3} [{:.3}, {:.3}], above 1 in {}; off {:.1} GB/s, on {:.1} GB/s (medians)",
            r[n / 2],
            r[n / 4],
            r[3 * n / 4],
            r.iter().filter(|x| **x > 1.0).count(),
            bytes / off[off.len() / 2] / 1e9,
            bytes / on[on.len() / 2] / 1e9
        );
        return;
    }
    let s = sorted(v[1..].to_vec());
    let med = s[s.len() / 2];
    println!(
        "decode h{qh}/{kvh} kv{kv_len} d{d} {dtype} {path} threads={} samples={} median={:.3}ms K+V {:.1} GB/s best={:.1}",
        pool.current_num_threads(),
        s.len(),
        med * 1e3,
        bytes / med / 1e9,
        bytes / s[0] / 1e9
    );
}
