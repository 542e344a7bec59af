// coop.wgsl — cooperative-matrix matmul (f16 inputs, f32 accumulation). Entry point `coop`.
//
// Needs `Features::EXPERIMENTAL_COOPERATIVE_MATRIX` and `Features::SUBGROUP`; the prelude enables
// `f16` and `wgpu_cooperative_matrix` and defines T and the CoopA/CoopB/CoopC aliases from an
// adapter configuration M = N = K = T with ab_type f16 (kernels/src/gpu/matmul.rs picks it from
// `adapter.cooperative_matrix_properties()`). wgpu 30 has no bf16 cooperative type.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Prelude`) + common.wgsl + this file.
//
// Bindings (group 0; not named A/B/C, which are the cooperative roles):
//   0  MA array<f16>, storage, read           [batch][m, lda], lda a multiple of T
//   1  MB array<f16>, storage, read           [batch][k, ldb] or [n, ldb] (trans_b), ldb a multiple of T
//   2  MC array<OutWord>, storage, read_write [batch][m, ldc_out] (f16 or f32 output)
//   3  P  MatmulParams, uniform (the same struct as matmul.wgsl; Rust twin `MatmulParams`)
//
// Prelude (generated):
//   T                 cooperative tile edge, 8 or 16 (from the adapter's configuration)
//   CoopA/CoopB/CoopC coop_matTxT<f16, A>, coop_matTxT<f16, B>, coop_matTxT<CR, C> (CR f32 or f16)
//   BLK_ROWS, BLK_COLS  2T×2T blocks per workgroup (one per subgroup slot), 1..4 each
//   SLOTS             = BLK_ROWS · BLK_COLS
// Overrides: WG (workgroup size) = SLOTS × the adapter's minimum subgroup size (a multiple of it,
//   ≤ max_compute_invocations_per_workgroup). Any actual subgroup size works: subgroups loop over
//   the slots, `num_subgroups` read through workgroupUniformLoad so barriers and cooperative
//   operations stay in uniform control flow (naga requires it).
//
// Shapes: m, n, k multiples of T (the host refuses others: `unsupported`, never padded silently).
// Dispatch: (ceil(n / (2T·BLK_COLS)), ceil(m / (2T·BLK_ROWS)), batch).

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,
    ldb: u32,
    ldc_out: u32,
    trans_b: u32,
    batch: u32,
    a_stride: u32,
    b_stride: u32,
    c_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> MA: array<f16>;
@group(0) @binding(1) var<storage, read> MB: array<f16>;
@group(0) @binding(2) var<storage, read_write> MC: array<OutWord>;
@group(0) @binding(3) var<uniform> P: MatmulParams;

override WG: u32 = 128u;

// Each slot's 2T×2T accumulator block, row-major with stride 2T, for the converting store;
// region SLOTS takes the idle subgroups' results.
var<workgroup> stage: array<f32, (SLOTS + 1u) * 4u * T * T>;
var<workgroup> n_sg_shared: u32;

fn load_b(b0: u32, kk: u32, c: u32) -> CoopB {
    if (P.trans_b != 0u) {
        // B stored [n, k]: the K×T tile is column-major with stride ldb.
        return coopLoad<CoopB>(&MB[b0 + c * P.ldb + kk], P.ldb);
    }
    return coopLoadT<CoopB>(&MB[b0 + kk * P.ldb + c], P.ldb);
}

@compute @workgroup_size(WG, 1, 1)
fn coop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    if (li == 0u) {
        n_sg_shared = nsg;
    }
    let n_sg = max(workgroupUniformLoad(&n_sg_shared), 1u);
    let b = wg.z;
    let a0 = b * P.a_stride;
    let b0 = b * P.b_stride;
    let rounds = (SLOTS + n_sg - 1u) / n_sg;
    for (var round = 0u; round < rounds; round++) {
        let slot = round * n_sg + sg;
        let m_raw = (wg.y * BLK_ROWS + slot / BLK_COLS) * 2u * T;
        let n_raw = (wg.x * BLK_COLS + slot % BLK_COLS) * 2u * T;
        let live = slot < SLOTS && sg < SLOTS && m_raw < P.m && n_raw < P.n;
        // naga requires cooperative operations in workgroup-uniform control flow, so every
        // subgroup computes: idle ones on block (0, 0) into the spare stage region SLOTS.
        let m0 = select(0u, m_raw, live);
        let n0 = select(0u, n_raw, live);
        let st = min(sg, SLOTS) * 4u * T * T;
        // Second row/column tile, clamped to the first at the edge (computed, never stored).
        let m1 = select(m0, m0 + T, m0 + T < P.m);
        let n1 = select(n0, n0 + T, n0 + T < P.n);
        var c00: CoopC;
        var c01: CoopC;
        var c10: CoopC;
        var c11: CoopC;
        for (var k0 = 0u; k0 < P.k; k0 += T) {
            let x0 = coopLoadT<CoopA>(&MA[a0 + m0 * P.lda + k0], P.lda);
            let x1 = coopLoadT<CoopA>(&MA[a0 + m1 * P.lda + k0], P.lda);
            let y0 = load_b(b0, k0, n0);
            let y1 = load_b(b0, k0, n1);
            c00 = coopMultiplyAdd(x0, y0, c00);
            c01 = coopMultiplyAdd(x0, y1, c01);
            c10 = coopMultiplyAdd(x1, y0, c10);
            c11 = coopMultiplyAdd(x1, y1, c11);
        }
        coopStoreT(c00, &stage[st], 2u * T);
        coopStoreT(c01, &stage[st + T], 2u * T);
        coopStoreT(c10, &stage[st + 2u * T * T], 2u * T);
        coopStoreT(c11, &stage[st + 2u * T * T + T], 2u * T);
        workgroupBarrier();
        if (live) {
            for (var e = lane; e < 4u * T * T; e += sg_size) {
                let r = m0 + e / (2u * T);
                let c = n0 + e % (2u * T);
                if (r < P.m && c < P.n) {
                    MC[b * P.c_stride + r * P.ldc_out + c] = out_value(stage[st + e]);
                }
            }
        }
        workgroupBarrier();
    }
}
