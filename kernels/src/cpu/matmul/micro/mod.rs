//! Register-blocked micro-kernels, one per ISA, behind one contract (BLIS):
//!
//! `C[0..MR, 0..NR] = (accumulate ? C : 0) + Σ_p a[p·MR + i] · b[p·NR + j]`
//!
//! - `a` is a packed A micro-panel (`kc × MR`, k-major), `b` a packed B micro-panel (`kc × NR`).
//! - `c` has row stride `rs_c`; with `accumulate = false` C is never read (β = 0).
//! - The micro-kernel always computes a full `MR × NR` tile: the loop nest owns edge tiles (it
//!   passes a scratch tile and copies the valid part, or C holds whole tiles). The one
//!   exception is [`PairMicroKernel::kernel_bf16`], which stores a rounded tile into the
//!   caller's bf16 C and masks the rows and columns past its edge itself.

#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod portable;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// A micro-kernel: tile shape and the tile update.
pub trait MicroKernel: Sync {
    /// The ISA the kernel needs (the packing routines of the loop nest use the same one).
    const ISA: crate::isa::Isa;
    const MR: usize;
    const NR: usize;
    /// Name of the tile shape for kernel params and disassembly (`6x16`).
    const NAME: &'static str;

    /// # Safety
    /// `a` holds `kc·MR` and `b` `kc·NR` readable f32s; `c` addresses an `MR × NR` tile with row
    /// stride `rs_c`; the CPU supports the kernel's ISA.
    unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    );
}

/// A micro-kernel on bf16 k-pair panels (the `vdpbf16ps` path), same contract as [`MicroKernel`]
/// with two k steps per packed word:
///
/// `C[0..MR, 0..NR] = (accumulate ? C : 0) + Σ_q Σ_{h∈{0,1}} a[q·MR + i].h · b[q·NR + j].h`
///
/// - `a` is a packed A micro-panel of `kp` k-pairs: `MR` u32 words per pair, word `i` holding
///   row `i`'s bf16 at k = 2q (low half) and 2q+1 (high half);
/// - `b` a packed B micro-panel: `NR` u32 words per pair, word `j` holding column `j`'s two bf16;
/// - odd K and edges are zero-padded by the packing, so every pair is full.
pub trait PairMicroKernel: Sync {
    const MR: usize;
    const NR: usize;
    /// Name of the tile shape for kernel params and disassembly (`12x32`).
    const NAME: &'static str;

    /// # Safety
    /// `a` holds `kp·MR` and `b` `kp·NR` readable u32s; `c` addresses an `MR × NR` f32 tile with
    /// row stride `rs_c`; the CPU supports the kernel's ISA.
    unsafe fn kernel(
        kp: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    );

    /// The tile (added to the f32 tile at `c`, row stride `rs_c`, where `accumulate`: the
    /// earlier k blocks' sums) rounded to bf16 in registers and stored straight into a bf16 C:
    /// rows `0..rows` and columns `0..cols` of the tile at `out` ([`Bf16Tile`]), nothing else
    /// written. Rounding to nearest even, NaNs quieted, and a result below the
    /// smallest normal bf16 flushed to zero, as the `vdpbf16ps` accumulation itself flushes
    /// denormals.
    ///
    /// # Safety
    /// As [`PairMicroKernel::kernel`] (with `accumulate`, `c` readable for the whole `MR × NR`
    /// tile), and `out` addresses `rows ≤ MR` writable rows of `cols ≤ NR` u16s.
    unsafe fn kernel_bf16(
        kp: usize,
        a: *const u32,
        b: *const u32,
        c: *const f32,
        rs_c: usize,
        accumulate: bool,
        out: Bf16Tile,
    );
}

/// Where [`PairMicroKernel::kernel_bf16`] stores its rounded tile: rows `0..rows` and columns
/// `0..cols` of the tile at `d`, row stride `rs_d` elements.
#[derive(Clone, Copy, Debug)]
pub struct Bf16Tile {
    pub d: *mut u16,
    pub rs_d: usize,
    pub rows: usize,
    pub cols: usize,
}
