// common.wgsl — helpers shared by every kernel family (appended after the generated prelude).
//
// Bindings: none. Params: none. Tunables: none. Dispatch: n/a.
//
// bf16 has no WGSL type: buffers of bf16 are `array<u32>`, two elements per word, element `i` in
// word `i >> 1`, the even element in the low half (the little-endian layout of `[half::bf16]`, so the
// host uploads `bytemuck::cast_slice(&[bf16])` unchanged). Values are widened by shifting into the
// high half and `bitcast<f32>` (exact), accumulated in f32, and rounded to nearest even on pack.

// Element `i` of the packed pair `w` (only the parity of `i` is used).
fn bf16_get(w: u32, i: u32) -> f32 {
    return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
}

// f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
fn bf16_bits(x: f32) -> u32 {
    let u = bitcast<u32>(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return ((u >> 16u) | 0x40u) & 0xffffu;
    }
    return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

// Two bf16 values packed into one word: `lo` is the even element.
fn bf16_pack(lo: f32, hi: f32) -> u32 {
    return bf16_bits(lo) | (bf16_bits(hi) << 16u);
}
