// probe_coop.wgsl — cooperative-matrix throughput ceiling (f16 × f16 + CR). Entry point `peak`.
//
// Needs `Features::EXPERIMENTAL_COOPERATIVE_MATRIX` and `Features::SUBGROUP`; the prelude enables
// `f16` and `wgpu_cooperative_matrix` and defines T and CoopA/CoopB/CoopC (see coop.wgsl).
//
// Bindings (group 0):
//   0  SRC    array<f16>, storage, read          T·T values, loaded as the A and B operands
//   1  OUT    array<f32>, storage, read_write    4·T·T: the four accumulators (kept live)
//   2  COUNT  array<atomic<u32>>, read_write     [0]: subgroups that ran (FLOPs are counted from it)
//   3  P      ProbeParams, uniform (`iters` = multiply-add rounds)
//
// Params (Rust twin: kernels/src/gpu/probe.rs `ProbeParams`, 4 × u32): n_vec4 (unused), iters, pads
//
// Overrides: WG (workgroup size, a multiple of the subgroup size; default 128).
//
// Dispatch: (groups, 1, 1); FLOPs = COUNT[0] · iters · 4 · 2·T³.

struct ProbeParams {
    n_vec4: u32,
    iters: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> SRC: array<f16>;
@group(0) @binding(1) var<storage, read_write> OUT: array<CoopElemC>;
@group(0) @binding(2) var<storage, read_write> COUNT: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> P: ProbeParams;

override WG: u32 = 128u;

@compute @workgroup_size(WG, 1, 1)
fn peak(@builtin(subgroup_invocation_id) lane: u32) {
    let a = coopLoadT<CoopA>(&SRC[0], T);
    let b = coopLoadT<CoopB>(&SRC[0], T);
    var c0: CoopC;
    var c1: CoopC;
    var c2: CoopC;
    var c3: CoopC;
    for (var i = 0u; i < P.iters; i++) {
        c0 = coopMultiplyAdd(a, b, c0);
        c1 = coopMultiplyAdd(a, b, c1);
        c2 = coopMultiplyAdd(a, b, c2);
        c3 = coopMultiplyAdd(a, b, c3);
    }
    coopStoreT(c0, &OUT[0], T);
    coopStoreT(c1, &OUT[T * T], T);
    coopStoreT(c2, &OUT[2u * T * T], T);
    coopStoreT(c3, &OUT[3u * T * T], T);
    if (lane == 0u) {
        atomicAdd(&COUNT[0], 1u);
    }
}
