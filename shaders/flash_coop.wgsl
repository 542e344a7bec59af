// flash_coop.wgsl — flash attention forward with cooperative matrices (tensor cores): entry point
// `flash_coop`. f16 Q, K, V and output; S = Q·Kᵀ and O += P·V as cooperative-matrix products with
// f32 accumulation; the online softmax in f32 on the S tile in workgroup memory.
//
// Needs `Features::EXPERIMENTAL_COOPERATIVE_MATRIX` and `Features::SUBGROUP`, a T×T×T f16×f16→f32
// configuration (kernels/src/gpu/matmul.rs `coop_shape`), one fixed subgroup size, and the
// load/store convention found by the coop GEMM's self-check (`coop_convention`). Cooperative
// matrices have no element access, so S, P and O pass through workgroup memory between the
// products and the softmax: exactly the round trip that read stale values on an H200 under naga's
// barriers (no MakeAvailable/MakeVisible). The host builds this shader from patched SPIR-V where
// the adapter takes passthrough modules (kernels/src/gpu/spirv.rs) and runs it only after its
// own self-check (kernels/src/gpu/flash_coop.rs `self_check`) verified a small problem on the
// device; elsewhere the kernel is `unsupported`, never timed.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Layout [batch, heads, seq, head_dim], contiguous (kernels/src/problem.rs `AttentionProblem`);
// q_len, kv_len and head_dim multiples of T (the host refuses others: the SIMT kernels take them).
// GQA: query head h reads KV head h / group. Causal mask aligned to the end.
//
// Bindings (group 0; not named A/B/C, which are the cooperative roles):
//   0  Q     array<f16>, storage, read         [batch, q_heads, q_len, D]
//   1  K     array<f16>, storage, read         [batch, kv_heads, kv_len, D]
//   2  V     array<f16>, storage, read         [batch, kv_heads, kv_len, D]
//   3  O     array<f16>, storage, read_write   [batch, q_heads, q_len, D]
//   4  P     AttentionParams, uniform
//   5  ZERO  array<f32>, storage, read         T·T zeros (the accumulators' initial value)
//
// Params (Rust twin: kernels/src/gpu/attention.rs `AttentionParams`, the same struct as
// attention.wgsl): batch, q_heads, kv_heads, q_len, kv_len, causal (0|1), ldo: u32; scale_log2e: f32.
//
// Prelude (generated; kernels/src/gpu/flash_coop.rs `CoopFlash`):
//   T, CoopA, CoopB, CoopC   the cooperative configuration (f16 A/B, f32 C)
//   A_LOAD_T, B_LOAD_T, C_STORE_T  the adapter's load/store convention (coop.wgsl's meaning;
//                   C loads from workgroup memory use C_STORE_T's form)
//   D       head_dim, a multiple of T, ≤ 256
//   NSG     subgroups per workgroup: each owns T query rows (BQ = NSG · T rows per workgroup)
//   BKV     keys per tile, a multiple of T (KB = BKV / T cooperative tiles)
//   LDSS, LDP, LDO  padded row lengths of the S (f32), P (f16) and O (f32) tiles
// Overrides: WG = NSG × the adapter's (fixed) subgroup size.
// Workgroup memory: NSG · T · (LDSS · 4 + LDP · 2 + LDO · 4 + 12) bytes.
//
// Dispatch: (q_len / BQ rounded up, q_heads, batch). Subgroups whose rows lie past q_len compute
// on the block's first rows and store nothing (cooperative operations must stay in
// workgroup-uniform control flow).

struct AttentionParams {
    batch: u32,
    q_heads: u32,
    kv_heads: u32,
    q_len: u32,
    kv_len: u32,
    causal: u32,
    ldo: u32,
    scale_log2e: f32,
}

@group(0) @binding(0) var<storage, read> Q: array<f16>;
@group(0) @binding(1) var<storage, read> K: array<f16>;
@group(0) @binding(2) var<storage, read> V: array<f16>;
@group(0) @binding(3) var<storage, read_write> O: array<f16>;
@group(0) @binding(4) var<uniform> P: AttentionParams;
@group(0) @binding(5) var<storage, read> ZERO: array<f32>;

override WG: u32 = 64u;

const NEG_BIG: f32 = -3.0e38;
const BQ: u32 = NSG * T;
const KB: u32 = BKV / T;

var<workgroup> Ss: array<f32, BQ * LDSS>;
var<workgroup> Ps: array<f16, BQ * LDP>;
var<workgroup> Os: array<f32, BQ * LDO>;
var<workgroup> Ms: array<f32, BQ>;
var<workgroup> Ls: array<f32, BQ>;
var<workgroup> Cs: array<f32, BQ>;

fn load_a_q(i: u32) -> CoopA {
    if (A_LOAD_T) {
        return coopLoadT<CoopA>(&Q[i], D);
    }
    return coopLoad<CoopA>(&Q[i], D);
}

// Kᵀ as the B operand: the D×T tile of Kᵀ at (d0, key0) is column-major in K (stride D), so the
// form that reads column-major memory (coop.wgsl's load_b with trans_b).
fn load_b_kt(i: u32) -> CoopB {
    if (B_LOAD_T) {
        return coopLoad<CoopB>(&K[i], D);
    }
    return coopLoadT<CoopB>(&K[i], D);
}

fn load_b_v(i: u32) -> CoopB {
    if (B_LOAD_T) {
        return coopLoadT<CoopB>(&V[i], D);
    }
    return coopLoad<CoopB>(&V[i], D);
}

fn load_a_p(i: u32) -> CoopA {
    if (A_LOAD_T) {
        return coopLoadT<CoopA>(&Ps[i], LDP);
    }
    return coopLoad<CoopA>(&Ps[i], LDP);
}

fn load_c_o(i: u32) -> CoopC {
    if (C_STORE_T) {
        return coopLoadT<CoopC>(&Os[i], LDO);
    }
    return coopLoad<CoopC>(&Os[i], LDO);
}

// Strides are parameters (see coop.wgsl's store_c: naga 30's SPIR-V writer).
fn store_s(c: CoopC, i: u32, stride: u32) {
    if (C_STORE_T) {
        coopStoreT(c, &Ss[i], stride);
    } else {
        coopStore(c, &Ss[i], stride);
    }
}

fn store_o(c: CoopC, i: u32, stride: u32) {
    if (C_STORE_T) {
        coopStoreT(c, &Os[i], stride);
    } else {
        coopStore(c, &Os[i], stride);
    }
}

@compute @workgroup_size(WG, 1, 1)
fn flash_coop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(subgroup_id) sg_raw: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sgs: u32,
) {
    // The host guarantees NSG subgroups; clamp for safety.
    let sg = min(sg_raw, NSG - 1u);
    let h = wg.y;
    let b = wg.z;
    let group = P.q_heads / P.kv_heads;
    let kv_base = (b * P.kv_heads + h / group) * P.kv_len * D;
    let blk = wg.x * BQ;
    let q_raw = blk + sg * T;
    let live = q_raw < P.q_len;
    // A subgroup past q_len computes on the block's first rows (in range) and stores nothing.
    let q0 = select(blk, q_raw, live);
    let q_base = ((b * P.q_heads + h) * P.q_len + q0) * D;

    let causal = P.causal != 0u;
    let shift = P.kv_len - select(0u, P.q_len, causal);
    let block_end = select(P.kv_len, min(shift + min(blk + BQ, P.q_len), P.kv_len), causal);

    let r0 = sg * T;
    for (var e = lane; e < T * D; e += sgs) {
        Os[(r0 + e / D) * LDO + e % D] = 0.0;
    }
    if (lane < T) {
        Ms[r0 + lane] = NEG_BIG;
        Ls[r0 + lane] = 0.0;
    }
    // Lanes per row in the softmax, and this lane's row and column phase.
    let lpr = max(sgs / T, 1u);
    let r = min(lane / lpr, T - 1u);
    let part = lane % lpr;
    let row_live = lane / lpr < T;
    let row_end = select(P.kv_len, min(shift + q0 + r + 1u, P.kv_len), causal);
    workgroupBarrier();

    for (var t0 = 0u; t0 < block_end; t0 += BKV) {
        // S = Q·Kᵀ, KB tiles of T keys; tiles past kv_len load the last tile (masked below).
        for (var kb = 0u; kb < KB; kb++) {
            let key0 = min(t0 + kb * T, P.kv_len - T);
            var acc = coopLoadT<CoopC>(&ZERO[0], T);
            for (var d0 = 0u; d0 < D; d0 += T) {
                let a = load_a_q(q_base + d0);
                let kt = load_b_kt(kv_base + key0 * D + d0);
                acc = coopMultiplyAdd(a, kt, acc);
            }
            store_s(acc, r0 * LDSS + kb * T, LDSS);
        }
        workgroupBarrier();

        // Online softmax of row r on lpr lanes: masked scores out, P = exp2(s·scale − max) as f16.
        var mx = NEG_BIG;
        for (var c = part; c < BKV; c += lpr) {
            let key = t0 + c;
            if (key < row_end) {
                mx = max(mx, Ss[(r0 + r) * LDSS + c] * P.scale_log2e);
            }
        }
        for (var off = 1u; off < lpr; off *= 2u) {
            mx = max(mx, subgroupShuffleXor(mx, off));
        }
        let m_old = Ms[r0 + r];
        let m_new = max(m_old, mx);
        var sum = 0.0;
        for (var c = part; c < BKV; c += lpr) {
            let key = t0 + c;
            var p = 0.0;
            if (key < row_end) {
                p = exp2(Ss[(r0 + r) * LDSS + c] * P.scale_log2e - m_new);
            }
            let ph = f16(p);
            Ps[(r0 + r) * LDP + c] = ph;
            // The sum of what P·V multiplies: the rounded probabilities.
            sum += f32(ph);
        }
        for (var off = 1u; off < lpr; off *= 2u) {
            sum += subgroupShuffleXor(sum, off);
        }
        workgroupBarrier();
        if (part == 0u && row_live) {
            let corr = exp2(m_old - m_new);
            Ms[r0 + r] = m_new;
            Ls[r0 + r] = Ls[r0 + r] * corr + sum;
            Cs[r0 + r] = corr;
        }
        workgroupBarrier();

        // O rows rescaled by their factor, then O += P·V.
        for (var e = lane; e < T * D; e += sgs) {
            let i = (r0 + e / D) * LDO + e % D;
            Os[i] = Os[i] * Cs[r0 + e / D];
        }
        workgroupBarrier();
        for (var d0 = 0u; d0 < D; d0 += T) {
            var o = load_c_o(r0 * LDO + d0);
            for (var kb = 0u; kb < KB; kb++) {
                let key0 = min(t0 + kb * T, P.kv_len - T);
                let pa = load_a_p(r0 * LDP + kb * T);
                let vb = load_b_v(kv_base + key0 * D + d0);
                o = coopMultiplyAdd(pa, vb, o);
            }
            store_o(o, r0 * LDO + d0, LDO);
        }
        workgroupBarrier();
    }

    // O / sum, rounded to f16.
    if (live) {
        let out0 = ((b * P.q_heads + h) * P.q_len + q0) * P.ldo;
        for (var e = lane; e < T * D; e += sgs) {
            let rr = e / D;
            let l = Ls[r0 + rr];
            let inv = select(0.0, 1.0 / l, l > 0.0);
            O[out0 + rr * P.ldo + e % D] = f16(Os[(r0 + rr) * LDO + e % D] * inv);
        }
    }
}
