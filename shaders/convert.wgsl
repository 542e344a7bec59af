// convert.wgsl — f32 → the output element type, elementwise. Entry point `convert`.
//
// The epilogue of the cooperative-matrix matmul (coop.wgsl), whose f32 accumulators can only be
// stored as f32: the host records this dispatch right after the matmul's in the same compute pass
// (one iteration = both), so timings include the rounding.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Bindings (group 0):
//   0  SRC  array<f32>, storage, read          n elements
//   1  DST  array<OutWord>, storage, read_write n elements (OUT_PER_WORD = 1: f32 or f16 output)
//   2  P    ConvertParams, uniform
//
// Params (Rust twin: kernels/src/gpu/matmul.rs `ConvertParams`, 4 × u32, 16 bytes): n, _pad0..2
//
// Overrides: WG (workgroup size, 32..1024; default 256).
//
// Dispatch: (min(ceil(n / WG), 65535), 1, 1), grid-stride.

struct ConvertParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> SRC: array<f32>;
@group(0) @binding(1) var<storage, read_write> DST: array<OutWord>;
@group(0) @binding(2) var<uniform> P: ConvertParams;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn convert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * WG;
    for (var i = gid.x; i < P.n; i += stride) {
        DST[i] = out_value(SRC[i]);
    }
}
