// coop.wgsl — cooperative-matrix matmul (f16 inputs, f32 accumulation). Entry points `coop`
// (tiles loaded straight from storage) and `coop_staged` (A/B K-slices double-buffered in
// workgroup memory; see its section at the end).
//
// Needs `Features::EXPERIMENTAL_COOPERATIVE_MATRIX` and `Features::SUBGROUP`; the prelude enables
// `f16` and `wgpu_cooperative_matrix` and defines T and the CoopA/CoopB/CoopC aliases from an
// adapter configuration M = N = K = T with ab_type f16, cr_type f32 (kernels/src/gpu/matmul.rs
// picks it from `adapter.cooperative_matrix_properties()`). wgpu 30 has no bf16 cooperative type.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Bindings (group 0; not named A/B/C, which are the cooperative roles):
//   0  MA   array<f16>, storage, read          [batch][m, lda], lda a multiple of 8
//   1  MB   array<f16>, storage, read          [batch][k, ldb] or [n, ldb] (trans_b), ldb a multiple of 8
//   2  MC   array<f32>, storage, read_write    [batch][m, ldc_out], then a 2T-row scratch tile at
//                                              element `aux` (idle subgroups store there). For f16
//                                              output this is a scratch buffer that convert.wgsl
//                                              rounds into the output in the same pass.
//   3  P    MatmulParams, uniform (the same struct as matmul.wgsl; Rust twin `MatmulParams`;
//           `aux` = element offset of the scratch tile)
//   4  ZERO array<f32>, storage, read          T·T zeros (the accumulators' initial value)
//
// Accumulators go straight from registers to storage with coopStore: no workgroup-memory staged
// epilogue (naga emits the Vulkan memory model for cooperative shaders but no
// MakeAvailable/MakeVisible semantics on barriers, so a staged epilogue read stale values on an
// H200; results/gpu-h200.md). `coop_staged` stages operands in workgroup memory behind a
// self-check on the device, built either from this WGSL or from naga's SPIR-V with the
// barriers patched (kernels/src/gpu/spirv.rs).
//
// Prelude (generated):
//   T                 cooperative tile edge, 8 or 16 (from the adapter's configuration)
//   CoopA/CoopB/CoopC coop_matTxT<f16, A>, coop_matTxT<f16, B>, coop_matTxT<f32, C>
//   BLK_ROWS, BLK_COLS  2T×2T blocks per workgroup (one per subgroup slot), 1..4 each
//   SLOTS             = BLK_ROWS · BLK_COLS
//   A_LOAD_T, B_LOAD_T, C_STORE_T  bool: whether the `T` builtin is the row-major one for that
//                     role on this backend (chosen by the host's self-check, see load_a below)
// Overrides: WG (workgroup size) = SLOTS × the adapter's minimum subgroup size (a multiple of it,
//   ≤ max_compute_invocations_per_workgroup). Any actual subgroup size works: subgroups loop over
//   the slots, `num_subgroups` read through workgroupUniformLoad so the cooperative operations
//   stay in uniform control flow (naga requires it).
//
// Shapes: m, n, k multiples of T (the host refuses others: `unsupported`, never padded silently).
// Dispatch (both entry points): (ceil(n / (2T·BLK_COLS)), ceil(m / (2T·BLK_ROWS)), batch).
// coop_staged needs exactly SLOTS subgroups (the host requires a fixed subgroup size) and uses
// 2·((2T·BLK_ROWS)·(T+8) + T·(2T·BLK_COLS+8))·2 bytes of workgroup memory.

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
    aux: u32,
}

@group(0) @binding(0) var<storage, read> MA: array<f16>;
@group(0) @binding(1) var<storage, read> MB: array<f16>;
@group(0) @binding(2) var<storage, read_write> MC: array<f32>;
@group(0) @binding(3) var<uniform> P: MatmulParams;
@group(0) @binding(4) var<storage, read> ZERO: array<f32>;

override WG: u32 = 128u;

var<workgroup> n_sg_shared: u32;

// Which builtin reads row-major memory for each role (A_LOAD_T, B_LOAD_T: `coopLoadT` if true,
// else `coopLoad`) and writes row-major memory (C_STORE_T) is a prelude constant: naga hands the
// `T` flag to each backend differently (Vulkan RowMajorKHR vs Metal's transpose flag), so the host
// picks the convention by a non-commuting self-check on the device (kernels/src/gpu/matmul.rs
// `coop_convention`) instead of trusting one.
fn load_a(i: u32) -> CoopA {
    if (A_LOAD_T) {
        return coopLoadT<CoopA>(&MA[i], P.lda);
    }
    return coopLoad<CoopA>(&MA[i], P.lda);
}

fn load_b(b0: u32, kk: u32, c: u32) -> CoopB {
    // B stored [n, k] (trans_b): the K×T tile is column-major with stride ldb, so the other form.
    let trans = P.trans_b != 0u;
    let i = select(b0 + kk * P.ldb + c, b0 + c * P.ldb + kk, trans);
    if (B_LOAD_T != trans) {
        return coopLoadT<CoopB>(&MB[i], P.ldb);
    }
    return coopLoad<CoopB>(&MB[i], P.ldb);
}

// `stride` is a parameter, not `P.ldc_out` read here: naga 30's front end pushes the store
// statement without emitting a uniform load made for it, and the SPIR-V writer then panics
// ("Expression is not cached").
fn store_c(c: CoopC, i: u32, stride: u32) {
    if (C_STORE_T) {
        coopStoreT(c, &MC[i], stride);
    } else {
        coopStore(c, &MC[i], stride);
    }
}

@compute @workgroup_size(WG, 1, 1)
fn coop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
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
        // subgroup computes: idle ones on block (0, 0), storing into the scratch tile.
        let m0 = select(0u, m_raw, live);
        let n0 = select(0u, n_raw, live);
        // Second row/column tile, clamped to the first at the edge (its store goes to scratch).
        let has_m1 = m0 + T < P.m;
        let has_n1 = n0 + T < P.n;
        let m1 = select(m0, m0 + T, has_m1);
        let n1 = select(n0, n0 + T, has_n1);
        // Zero accumulators loaded from a zero buffer (not a null constant, which drivers may
        // not honour for cooperative types).
        var c00 = coopLoadT<CoopC>(&ZERO[0], T);
        var c01 = c00;
        var c10 = c00;
        var c11 = c00;
        for (var k0 = 0u; k0 < P.k; k0 += T) {
            let x0 = load_a(a0 + m0 * P.lda + k0);
            let x1 = load_a(a0 + m1 * P.lda + k0);
            let y0 = load_b(b0, k0, n0);
            let y1 = load_b(b0, k0, n1);
            c00 = coopMultiplyAdd(x0, y0, c00);
            c01 = coopMultiplyAdd(x0, y1, c01);
            c10 = coopMultiplyAdd(x1, y0, c10);
            c11 = coopMultiplyAdd(x1, y1, c11);
        }
        let c0 = b * P.c_stride;
        let scratch = P.aux;
        store_c(c00, select(scratch, c0 + m0 * P.ldc_out + n0, live), P.ldc_out);
        store_c(c01, select(scratch, c0 + m0 * P.ldc_out + n1, live && has_n1), P.ldc_out);
        store_c(c10, select(scratch, c0 + m1 * P.ldc_out + n0, live && has_m1), P.ldc_out);
        store_c(c11, select(scratch, c0 + m1 * P.ldc_out + n1, live && has_m1 && has_n1), P.ldc_out);
    }
}

// ---- coop_staged: A and B K-slices staged in workgroup memory, double-buffered ----------------
//
// Each workgroup stages the (2T·BLK_ROWS) × T slice of A and the T × (2T·BLK_COLS) slice of B
// for the next K step into the other half of SA/SB while its subgroups multiply the current one
// (one barrier per K step). Rows are padded by 8 halves (16 bytes) against bank conflicts; the
// coop loads read row-major from workgroup memory with the same convention flags as from
// storage. Needs one subgroup per block (the host requires a fixed subgroup size and WG = SLOTS ×
// that size); rows or columns of a block past m or n are staged as zeros and their tiles stored
// to the scratch tile. Under naga 30 the barrier lacks MakeAvailable/MakeVisible (see the
// header): the host runs it only where its staged self-check passes, and builds a variant whose
// SPIR-V barriers are patched (kernels/src/gpu/spirv.rs) where the adapter takes passthrough
// modules.

const SA_ROWS: u32 = 2u * T * BLK_ROWS;
const SB_COLS: u32 = 2u * T * BLK_COLS;
const SA_LD: u32 = T + 8u;
const SB_LD: u32 = SB_COLS + 8u;
const SA_SIZE: u32 = SA_ROWS * SA_LD;
const SB_SIZE: u32 = T * SB_LD;

var<workgroup> SA: array<f16, 2u * SA_SIZE>;
var<workgroup> SB: array<f16, 2u * SB_SIZE>;

fn stage(buf: u32, k0: u32, m_blk: u32, n_blk: u32, li: u32, a0: u32, b0: u32) {
    for (var e = li; e < SA_ROWS * T; e += WG) {
        let r = e / T;
        let kk = e % T;
        var v = f16(0.0);
        if (m_blk + r < P.m) {
            v = MA[a0 + (m_blk + r) * P.lda + k0 + kk];
        }
        SA[buf * SA_SIZE + r * SA_LD + kk] = v;
    }
    let trans = P.trans_b != 0u;
    for (var e = li; e < T * SB_COLS; e += WG) {
        // Walk whichever index is contiguous in memory.
        let kk = select(e / SB_COLS, e % T, trans);
        let c = select(e % SB_COLS, e / T, trans);
        var v = f16(0.0);
        if (n_blk + c < P.n) {
            v = MB[select(b0 + (k0 + kk) * P.ldb + n_blk + c, b0 + (n_blk + c) * P.ldb + k0 + kk, trans)];
        }
        SB[buf * SB_SIZE + kk * SB_LD + c] = v;
    }
}

fn load_sa(i: u32) -> CoopA {
    if (A_LOAD_T) {
        return coopLoadT<CoopA>(&SA[i], SA_LD);
    }
    return coopLoad<CoopA>(&SA[i], SA_LD);
}

fn load_sb(i: u32) -> CoopB {
    if (B_LOAD_T) {
        return coopLoadT<CoopB>(&SB[i], SB_LD);
    }
    return coopLoad<CoopB>(&SB[i], SB_LD);
}

@compute @workgroup_size(WG, 1, 1)
fn coop_staged(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_id) sg: u32,
) {
    let b = wg.z;
    let a0 = b * P.a_stride;
    let b0 = b * P.b_stride;
    let m_blk = wg.y * SA_ROWS;
    let n_blk = wg.x * SB_COLS;
    // One block per subgroup (the host guarantees SLOTS subgroups); clamp for safety.
    let slot = min(sg, SLOTS - 1u);
    let lr = (slot / BLK_COLS) * 2u * T;
    let lc = (slot % BLK_COLS) * 2u * T;
    var c00 = coopLoadT<CoopC>(&ZERO[0], T);
    var c01 = c00;
    var c10 = c00;
    var c11 = c00;
    stage(0u, 0u, m_blk, n_blk, li, a0, b0);
    workgroupBarrier();
    var buf = 0u;
    for (var k0 = 0u; k0 < P.k; k0 += T) {
        if (k0 + T < P.k) {
            stage(1u - buf, k0 + T, m_blk, n_blk, li, a0, b0);
        }
        let x0 = load_sa(buf * SA_SIZE + lr * SA_LD);
        let x1 = load_sa(buf * SA_SIZE + (lr + T) * SA_LD);
        let y0 = load_sb(buf * SB_SIZE + lc);
        let y1 = load_sb(buf * SB_SIZE + lc + T);
        c00 = coopMultiplyAdd(x0, y0, c00);
        c01 = coopMultiplyAdd(x0, y1, c01);
        c10 = coopMultiplyAdd(x1, y0, c10);
        c11 = coopMultiplyAdd(x1, y1, c11);
        workgroupBarrier();
        buf = 1u - buf;
    }
    let m0 = m_blk + lr;
    let n0 = n_blk + lc;
    let live = sg < SLOTS && m0 < P.m && n0 < P.n;
    let has_m1 = m0 + T < P.m;
    let has_n1 = n0 + T < P.n;
    let c0 = b * P.c_stride;
    let scratch = P.aux;
    store_c(c00, select(scratch, c0 + m0 * P.ldc_out + n0, live), P.ldc_out);
    store_c(c01, select(scratch, c0 + m0 * P.ldc_out + n0 + T, live && has_n1), P.ldc_out);
    store_c(c10, select(scratch, c0 + (m0 + T) * P.ldc_out + n0, live && has_m1), P.ldc_out);
    store_c(c11, select(scratch, c0 + (m0 + T) * P.ldc_out + n0 + T, live && has_m1 && has_n1), P.ldc_out);
}
