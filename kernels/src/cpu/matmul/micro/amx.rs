//! The AMX-BF16 micro-kernel (`tdpbf16ps`): a 32 × 32 f32 tile of C held in four 16 × 16 tile
//! registers, multiplied by two A tiles (16 rows × 32 k) and two B tiles (16 k-pairs × 16
//! columns) per 32 values of k.
//!
//! Panel layouts (u32 words, each a bf16 pair):
//! - A micro-panel: `steps / 16` chunks of 32 values of k, each chunk 32 rows × 16 words, row by
//!   row (a row's 32 bf16 of the chunk contiguous, as an A tile row is loaded);
//! - B micro-panel: the `vdpbf16ps` path's pair panels with NR = 32 (word `q·32 + j`: column `j`'s
//!   values at k = 2q and 2q + 1), k-pairs padded with zero to a multiple of 16. A B tile is 16
//!   consecutive pairs × 16 columns: the panel read at a 128-byte row stride.
//!
//! Tile registers: C in tmm0–tmm3 (rows 0–15 × columns 0–15, 0–15 × 16–31, 16–31 × 0–15,
//! 16–31 × 16–31), A in tmm4–tmm5, B in tmm6–tmm7. The caller loads the tile configuration
//! ([`configure`]) once before a run of [`kernel`] calls and releases the tiles ([`release`])
//! after it: loading the configuration and releasing the tiles on every call cost 6% of the
//! tile loop's rate at kc 2048, 14% at 512 and 43% at 128 on cache-resident panels (BENCHMARKS.md,
//! "AMX: B's rows in place …, the tile configuration once per macro-kernel").

use std::arch::asm;

/// Rows of the tile of C.
pub const MR: usize = 32;
/// Columns of the tile of C.
pub const NR: usize = 32;
/// The kernels' 16 `prefetcht0`s over the next step's 2 KiB of a packed operand, 128 bytes apart:
/// 2048 + 128·i bytes past the asm operand `{r}`.
#[rustfmt::skip]
macro_rules! prefetch_next_step {
    ($r:literal) => {
        concat!(
            "prefetcht0 [{", $r, "} + 2048]\n",
            "prefetcht0 [{", $r, "} + 2176]\n",
            "prefetcht0 [{", $r, "} + 2304]\n",
            "prefetcht0 [{", $r, "} + 2432]\n",
            "prefetcht0 [{", $r, "} + 2560]\n",
            "prefetcht0 [{", $r, "} + 2688]\n",
            "prefetcht0 [{", $r, "} + 2816]\n",
            "prefetcht0 [{", $r, "} + 2944]\n",
            "prefetcht0 [{", $r, "} + 3072]\n",
            "prefetcht0 [{", $r, "} + 3200]\n",
            "prefetcht0 [{", $r, "} + 3328]\n",
            "prefetcht0 [{", $r, "} + 3456]\n",
            "prefetcht0 [{", $r, "} + 3584]\n",
            "prefetcht0 [{", $r, "} + 3712]\n",
            "prefetcht0 [{", $r, "} + 3840]\n",
            "prefetcht0 [{", $r, "} + 3968]",
        )
    };
}

/// The step loop of [`kernel_rows`] over `chunks` steps: the next step's 2 KiB of the packed B
/// prefetched, then the step's tile loads and products (`$body`, with `{a}`/`{a1}` at rows 0 / 16
/// of A (row stride `{sa}` bytes), `{b}` at the step's B, `{s128}` its row stride).
macro_rules! rows_loop {
    ($a:expr, $lda:expr, $b:expr, $chunks:expr; $($body:literal),+ $(,)?) => {
        asm!(
            "2:",
            prefetch_next_step!("b"),
            $($body,)+
            "add {a}, 64",
            "add {a1}, 64",
            "add {b}, 2048",
            "dec {n}",
            "jnz 2b",
            a = inout(reg) $a => _,
            a1 = inout(reg) $a.add(16 * $lda) => _,
            b = inout(reg) $b => _,
            n = inout(reg) $chunks => _,
            sa = in(reg) $lda * 2,
            s128 = in(reg) 128usize,
            options(nostack, readonly),
        )
    };
}

/// Values of k per tile product (one `tdpbf16ps` step): 16 k-pairs.
pub const K_STEP: usize = 32;
/// Panel words (k-pairs) per tile product.
pub const PAIRS_STEP: usize = K_STEP / 2;

/// The 64-byte tile configuration (palette 1): eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut t = 0;
    while t < 8 {
        colsb[t] = 64;
        rows[t] = 16;
        t += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

/// Load the tile configuration of this module (eight tiles of 16 rows × 64 bytes).
///
/// # Safety
/// As [`kernel`]: AMX is present and this process may use tile data.
pub unsafe fn configure() {
    asm!("ldtilecfg [{0}]", in(reg) &CONFIG, options(nostack, readonly));
}

/// Release the tiles (`tilerelease`): the tile state returns to its initial, unconfigured state.
///
/// # Safety
/// As [`configure`].
pub unsafe fn release() {
    asm!("tilerelease", options(nostack, nomem));
}

/// `C[0..32, 0..32] = (accumulate ? C : 0) + A · B` over `steps` k-pairs (a multiple of 16).
///
/// # Safety
/// The CPU has AMX-TILE and AMX-BF16 and this process may use tile data
/// ([`crate::isa::detected`]'s `amx_bf16`); this thread loaded the configuration of
/// [`configure`] and has not released it since; `a` holds `steps · 32` and `b` `steps · 32` readable
/// u32s in the layouts above; `c` addresses a 32 × 32 f32 tile with row stride `rs_c`.
#[inline(never)]
pub unsafe fn kernel(
    steps: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    rs_c: usize,
    accumulate: bool,
) {
    debug_assert!(steps.is_multiple_of(PAIRS_STEP));
    let chunks = steps / PAIRS_STEP;
    let ldc = rs_c * 4;
    let c_low = c.add(16 * rs_c);
    start_c(c, c_low, ldc, accumulate);
    if chunks > 0 {
        asm!(
            "2:",
            // The next chunk of A and of B into L1 (every other line; the adjacent-line
            // prefetcher brings the pair), so the tile loads below find this one there.
            prefetch_next_step!("a"),
            prefetch_next_step!("b"),
            "tileloadd tmm4, [{a} + {s64}*1]",
            "tileloadd tmm6, [{b} + {s128}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b} + {s128}*1 + 64]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a} + {s64}*1 + 1024]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 2048",
            "add {b}, 2048",
            "dec {n}",
            "jnz 2b",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            n = inout(reg) chunks => _,
            s64 = in(reg) 64usize,
            s128 = in(reg) 128usize,
            options(nostack, readonly),
        );
    }
    store_c(c, c_low, ldc);
}

/// [`kernel`] with the A operand read in place from 32 rows of a row-major bf16 matrix (row
/// stride `lda` values, `a` the first row's first value): the A tile of a step is 16 rows × the
/// step's 32 values, rows 0–15 and 16–31 of the block, so rows of Bᵀ are multiplied as stored,
/// with no packing pass. B (packed, in L2) is prefetched a step ahead as in [`kernel`]; the 32
/// rows of A are left to the hardware prefetcher: prefetching each row 512 bytes ahead
/// (`prefetcht0`, 32 a step) measured 0.72× of none at 16×6144×4096 Bᵀ, and `prefetcht1` at 1024
/// bytes 0.87× of that (BENCHMARKS.md "AMX: B's rows in place …").
///
/// With `narrow`, columns 16–31 of B are zero (at most 16 rows of the product's A): their two
/// products are skipped and C's columns 16–31 keep what they held (zero unless `accumulate`).
///
/// # Safety
/// As [`kernel`], with `a` addressing 32 rows of `steps · 2` readable values each at stride
/// `lda`.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn kernel_rows(
    steps: usize,
    a: *const u16,
    lda: usize,
    b: *const u32,
    c: *mut f32,
    rs_c: usize,
    accumulate: bool,
    narrow: bool,
) {
    debug_assert!(steps.is_multiple_of(PAIRS_STEP));
    let chunks = steps / PAIRS_STEP;
    let ldc = rs_c * 4;
    let c_low = c.add(16 * rs_c);
    start_c(c, c_low, ldc, accumulate);
    if chunks > 0 && narrow {
        rows_loop!(
            a, lda, b, chunks;
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm6, [{b} + {s128}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm5, [{a1} + {sa}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
        );
    } else if chunks > 0 {
        rows_loop!(
            a, lda, b, chunks;
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm6, [{b} + {s128}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b} + {s128}*1 + 64]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {sa}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
        );
    }
    store_c(c, c_low, ldc);
}

/// C in tmm0–tmm3 at the start of a kernel: loaded ([`load_c`]) to accumulate, else zero (also
/// the start of the flash AMX products' squares of tiles).
#[inline(always)]
pub(crate) unsafe fn start_c(c: *const f32, c_low: *const f32, ldc: usize, accumulate: bool) {
    if accumulate {
        load_c(c, c_low, ldc);
    } else {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
    }
}

/// Load the 32 × 32 f32 tile of C (rows `c`, rows 16– at `c_low`, row stride `ldc` bytes) into
/// tmm0–tmm3.
#[inline(always)]
unsafe fn load_c(c: *const f32, c_low: *const f32, ldc: usize) {
    asm!(
        "tileloadd tmm0, [{c} + {ldc}*1]",
        "tileloadd tmm1, [{c} + {ldc}*1 + 64]",
        "tileloadd tmm2, [{l} + {ldc}*1]",
        "tileloadd tmm3, [{l} + {ldc}*1 + 64]",
        c = in(reg) c,
        l = in(reg) c_low,
        ldc = in(reg) ldc,
        options(nostack, readonly),
    );
}

/// Store tmm0–tmm3 to the 32 × 32 f32 tile of C (as [`load_c`]).
#[inline(always)]
pub(crate) unsafe fn store_c(c: *mut f32, c_low: *mut f32, ldc: usize) {
    asm!(
        "tilestored [{c} + {ldc}*1], tmm0",
        "tilestored [{c} + {ldc}*1 + 64], tmm1",
        "tilestored [{l} + {ldc}*1], tmm2",
        "tilestored [{l} + {ldc}*1 + 64], tmm3",
        c = in(reg) c,
        l = in(reg) c_low,
        ldc = in(reg) ldc,
        options(nostack),
    );
}

/// Pack rows `0..mc` × k `0..kc` of row-major bf16 A (bits, `lda`, `a[0]` the block's first
/// element) into `ceil(mc/32)` micro-panels of the layout above, `kc.div_ceil(32) · 16 · 32`
/// words each; rows past `mc` and k past `kc` are zero.
pub fn pack_a(a: &[u16], lda: usize, mc: usize, kc: usize, dst: &mut [u32]) {
    let chunks = kc.div_ceil(K_STEP);
    let panel_words = chunks * PAIRS_STEP * MR;
    for (ip, panel) in dst
        .chunks_exact_mut(panel_words)
        .take(mc.div_ceil(MR))
        .enumerate()
    {
        let panel: &mut [u16] = bytemuck::cast_slice_mut(panel);
        let rows = MR.min(mc - ip * MR);
        for q in 0..chunks {
            let (k0, kl) = (q * K_STEP, K_STEP.min(kc - q * K_STEP));
            for i in 0..MR {
                let out = &mut panel[(q * MR + i) * K_STEP..(q * MR + i + 1) * K_STEP];
                if i < rows && kl == K_STEP {
                    // A whole chunk: one fixed-size 64-byte copy, inlined (no memmove call and
                    // no memset of an empty tail per row).
                    let src = (ip * MR + i) * lda + k0;
                    let row: &[u16; K_STEP] = a[src..src + K_STEP].try_into().expect("32 values");
                    let dst: &mut [u16; K_STEP] = out.try_into().expect("32 values");
                    *dst = *row;
                } else if i < rows {
                    let src = (ip * MR + i) * lda + k0;
                    out[..kl].copy_from_slice(&a[src..src + kl]);
                    out[kl..].fill(0);
                } else {
                    out.fill(0);
                }
            }
        }
    }
}
