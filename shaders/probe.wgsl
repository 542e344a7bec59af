// probe.wgsl — GPU ceilings: an FMA-heavy kernel and a copy kernel. Entry points `fma_probe`, `copy_probe`.
//
// Source order: generated prelude (only `common.wgsl` helpers; no element type) + this file.
//
// Bindings (group 0):
//   0  SRC  array<vec4<u32>>, storage, read        (copy only)
//   1  DST  array<vec4<u32>>, storage, read_write  copy: the destination; fma: one vec4 per thread
//                                                  (the sums, so the compiler keeps the FMAs)
//   2  P    ProbeParams, uniform
//
// Params (Rust twin: kernels/src/gpu/probe.rs `ProbeParams`, 4 × u32, 16 bytes):
//   n_vec4 (copy: vec4s to copy), iters (fma: loop trips), _pad0, _pad1
//
// Overrides: WG (workgroup size, 32..1024; default 256).
//
// Dispatch:
//   fma_probe:  (groups, 1, 1); FLOPs = groups · WG · iters · 8 chains · 4 lanes · 2
//   copy_probe: (min(ceil(n_vec4 / WG), 65535), 1, 1), grid-stride; bytes = 2 · 16 · n_vec4

struct ProbeParams {
    n_vec4: u32,
    iters: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> SRC: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> DST: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> P: ProbeParams;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn fma_probe(@builtin(global_invocation_id) gid: vec3<u32>) {
    // Eight independent chains of vec4 FMAs hide the FMA latency. Values stay bounded (|x| < 1).
    let seed = f32(gid.x & 1023u) * 1.0e-4;
    let m = vec4<f32>(0.999, 0.998, 0.997, 0.996);
    let a = vec4<f32>(1.0e-4);
    var x0 = vec4<f32>(seed);
    var x1 = x0 + 0.01;
    var x2 = x0 + 0.02;
    var x3 = x0 + 0.03;
    var x4 = x0 + 0.04;
    var x5 = x0 + 0.05;
    var x6 = x0 + 0.06;
    var x7 = x0 + 0.07;
    for (var i = 0u; i < P.iters; i++) {
        x0 = fma(x0, m, a);
        x1 = fma(x1, m, a);
        x2 = fma(x2, m, a);
        x3 = fma(x3, m, a);
        x4 = fma(x4, m, a);
        x5 = fma(x5, m, a);
        x6 = fma(x6, m, a);
        x7 = fma(x7, m, a);
    }
    let s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    DST[gid.x] = bitcast<vec4<u32>>(s);
}

@compute @workgroup_size(WG, 1, 1)
fn copy_probe(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * WG;
    for (var i = gid.x; i < P.n_vec4; i += stride) {
        DST[i] = SRC[i];
    }
}
