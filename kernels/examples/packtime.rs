//! Time the two packers of a bf16 B block `[k, n]` into k-pair micro-panels of 32 columns (a
//! development aid for the choice in the loop nest's `pack_pair_block`): micro-panel by
//! micro-panel (`pack_b_pairs`, one 64-byte run of each row per panel) against row pair by row
//! pair across all panels (`pack_b_pair_rows`), on one thread, alternated call by call.
//!
//! `cargo run --release -p perfledger-kernels --example packtime -- KC NC [LDB] [SETS]`
//!
//! `SETS` input blocks are cycled (one per call), so with enough of them B comes from memory.
//! Prints each packer's median rate (bytes of B read per second) and their time ratio.

use perfledger_kernels::cpu::matmul::pack::{pack_b_pair_rows, pack_b_pairs};
use std::time::Instant;

/// Large buffers on cache lines, as the runner allocates them.
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

/// Micro-panel width (the `vdpbf16ps` and AMX formats' NR).
const NR: usize = 32;
/// Calls of each packer.
const CALLS: usize = 61;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("arguments are non-negative integers"))
        .collect();
    let (Some(&kc), Some(&nc)) = (args.first(), args.get(1)) else {
        eprintln!("usage: packtime KC NC [LDB] [SETS]");
        std::process::exit(2);
    };
    let ldb = args.get(2).copied().unwrap_or(nc).max(nc);
    let sets = args.get(3).copied().unwrap_or(1).max(1);
    // The AMX format's pairs per micro-panel: k padded to whole 32-value tile steps.
    let steps = kc.div_ceil(32) * 16;
    let blocks: Vec<Vec<u16>> = (0..sets)
        .map(|s| (0..kc * ldb).map(|i| (i + s) as u16).collect())
        .collect();
    let mut dst = vec![0u32; nc.div_ceil(NR) * steps * NR];
    let (mut by_panel, mut by_rows) = (Vec::new(), Vec::new());
    for call in 0..CALLS {
        let b = &blocks[call % sets];
        let t = Instant::now();
        for (jp, panel) in dst.chunks_exact_mut(steps * NR).enumerate() {
            let j0 = jp * NR;
            pack_b_pairs(&b[j0..], ldb, kc, NR, NR.min(nc - j0), panel);
            panel[kc.div_ceil(2) * NR..].fill(0);
        }
        by_panel.push(t.elapsed().as_secs_f64());
        let b = &blocks[(call + 1) % sets];
        let t = Instant::now();
        // SAFETY: `dst` holds every panel's `steps` pairs; one thread writes them.
        unsafe { pack_b_pair_rows(b, ldb, kc, nc, NR, steps, (0, steps), dst.as_mut_ptr()) };
        by_rows.push(t.elapsed().as_secs_f64());
    }
    let (panel, rows) = (median(by_panel), median(by_rows));
    let gb = (kc * nc * 2) as f64 / 1e9;
    println!(
        "kc {kc} nc {nc} ldb {ldb} sets {sets}: by panel {:.1} GB/s, by row pairs {:.1} GB/s, \
         panel time / row-pair time {:.2}",
        gb / panel,
        gb / rows,
        panel / rows
    );
}
