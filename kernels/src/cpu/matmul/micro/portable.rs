//! The portable micro-kernel: plain Rust over fixed-size arrays, which the compiler vectorizes for
//! the baseline target (SSE2 on x86-64, NEON on aarch64). 4×8 keeps the accumulators in 8
//! 128-bit registers, below the 16 that SSE2 has.

use super::MicroKernel;

pub struct Portable4x8;

impl MicroKernel for Portable4x8 {
    const ISA: crate::isa::Isa = crate::isa::Isa::Portable;
    const MR: usize = 4;
    const NR: usize = 8;
    const NAME: &'static str = "4x8";

    #[inline]
    unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        accumulate: bool,
    ) {
        const MR: usize = Portable4x8::MR;
        const NR: usize = Portable4x8::NR;
        let a = std::slice::from_raw_parts(a, kc * MR);
        let b = std::slice::from_raw_parts(b, kc * NR);
        let mut acc = [[0f32; NR]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for i in 0..MR {
                for j in 0..NR {
                    // Unfused: without hardware FMA in the baseline target, `mul_add` is a libm call.
                    acc[i][j] += ap[i] * bp[j];
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let crow = std::slice::from_raw_parts_mut(c.add(i * rs_c), NR);
            if accumulate {
                for (cv, v) in crow.iter_mut().zip(row) {
                    *cv += v;
                }
            } else {
                crow.copy_from_slice(row);
            }
        }
    }
}
