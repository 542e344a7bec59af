// attention.wgsl — flash attention forward: O = softmax(scale · Q·Kᵀ + mask) · V. Entry point `flash`.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Layout [batch, heads, seq, head_dim], contiguous (kernels/src/problem.rs `AttentionProblem`).
// GQA: query head h reads KV head h / group. Causal mask aligned to the end: query i sees keys
// 0 ..= kv_len − q_len + i. Online softmax in f32 (exp2 with log2(e) folded into the scale),
// accumulation in f32, one rounding to the output type.
//
// Bindings (group 0):
//   0  Q  array<InWord>, storage, read         [batch, q_heads, q_len, D]
//   1  K  array<InWord>, storage, read         [batch, kv_heads, kv_len, D]
//   2  V  array<InWord>, storage, read         [batch, kv_heads, kv_len, D]
//   3  O  array<OutWord>, storage, read_write  [batch, q_heads, q_len, ldo]; ldo = D, or D rounded
//                                              up to even for packed bf16 output (host unpads)
//   4  P  AttentionParams, uniform
//
// Params (Rust twin: kernels/src/gpu/attention.rs `AttentionParams`, 8 × 4 bytes, 32 bytes):
//   batch, q_heads, kv_heads, q_len, kv_len, causal (0|1), ldo: u32; scale_log2e: f32
//   (= scale · log2(e)). All element indices must fit u32 (the host refuses larger problems).
//
// Prelude (generated): element type helpers, and
//   D    head_dim, 1..256 (q and the output row live in registers: D floats each)
//   BQ   query rows per workgroup = workgroup size, 8..256 (one thread per query row)
//   BKV  keys per workgroup-memory tile, 4..64; K and V tiles take 2·BKV·D·4 bytes of workgroup
//        memory (≤ max_compute_workgroup_storage_size)
// Overrides: WG = BQ (the host passes exactly this).
//
// Dispatch: (ceil(q_len / BQ), q_heads, batch). With causal masking a workgroup stops at the last
// key its last query row sees (whole key tiles past it are skipped).

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

@group(0) @binding(0) var<storage, read> Q: array<InWord>;
@group(0) @binding(1) var<storage, read> K: array<InWord>;
@group(0) @binding(2) var<storage, read> V: array<InWord>;
@group(0) @binding(3) var<storage, read_write> O: array<OutWord>;
@group(0) @binding(4) var<uniform> P: AttentionParams;

override WG: u32 = 32u;

// A stand-in for −∞ that keeps exp2(x − m) exactly 0 and never produces NaN.
const NEG_BIG: f32 = -3.0e38;

var<workgroup> Ks: array<f32, BKV * D>;
var<workgroup> Vs: array<f32, BKV * D>;

fn ld_q(i: u32) -> f32 {
    return in_value(Q[i / IN_PER_WORD], i);
}
fn ld_k(i: u32) -> f32 {
    return in_value(K[i / IN_PER_WORD], i);
}
fn ld_v(i: u32) -> f32 {
    return in_value(V[i / IN_PER_WORD], i);
}

@compute @workgroup_size(WG, 1, 1)
fn flash(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.y;
    let b = wg.z;
    let q_first = wg.x * BQ;
    let i = q_first + li;
    let valid = i < P.q_len;
    let group = P.q_heads / P.kv_heads;
    let kv_base = (b * P.kv_heads + h / group) * P.kv_len * D;
    let row = (b * P.q_heads + h) * P.q_len + i;

    // Keys visible to this thread's row (exclusive end), and to the block's last row (uniform).
    let causal = P.causal != 0u;
    let shift = P.kv_len - select(0u, P.q_len, causal);
    let last_row = min(q_first + BQ, P.q_len) - 1u;
    let block_end = select(P.kv_len, shift + last_row + 1u, causal);
    let my_end = select(P.kv_len, shift + i + 1u, causal);

    var q: array<f32, D>;
    var o: array<f32, D>;
    if (valid) {
        for (var d = 0u; d < D; d++) {
            q[d] = ld_q(row * D + d) * P.scale_log2e;
        }
    }
    var m = NEG_BIG;
    var l = 0.0;

    for (var t0 = 0u; t0 < block_end; t0 += BKV) {
        for (var e = li; e < BKV * D; e += BQ) {
            let key = t0 + e / D;
            var kv = vec2<f32>(0.0);
            if (key < P.kv_len) {
                let g = kv_base + key * D + e % D;
                kv = vec2<f32>(ld_k(g), ld_v(g));
            }
            Ks[e] = kv.x;
            Vs[e] = kv.y;
        }
        workgroupBarrier();
        if (valid && t0 < my_end) {
            var s: array<f32, BKV>;
            var m_new = m;
            for (var j = 0u; j < BKV; j++) {
                var x = NEG_BIG;
                if (t0 + j < my_end) {
                    x = 0.0;
                    for (var d = 0u; d < D; d++) {
                        x = fma(q[d], Ks[j * D + d], x);
                    }
                    m_new = max(m_new, x);
                }
                s[j] = x;
            }
            let corr = exp2(m - m_new);
            l *= corr;
            for (var d = 0u; d < D; d++) {
                o[d] *= corr;
            }
            for (var j = 0u; j < BKV; j++) {
                let p = exp2(s[j] - m_new);
                l += p;
                for (var d = 0u; d < D; d++) {
                    o[d] = fma(p, Vs[j * D + d], o[d]);
                }
            }
            m = m_new;
        }
        workgroupBarrier();
    }

    if (valid) {
        let inv = 1.0 / l;
        let base = ((b * P.q_heads + h) * P.q_len + i) * P.ldo;
        for (var d = 0u; d < D; d += 2u) {
            let hi = select(0.0, o[min(d + 1u, D - 1u)] * inv, d + 1u < D);
            if (OUT_PER_WORD == 2u) {
                O[(base + d) / 2u] = out_pair(o[d] * inv, hi);
            } else {
                O[base + d] = out_value(o[d] * inv);
                if (d + 1u < D) {
                    O[base + d + 1u] = out_value(hi);
                }
            }
        }
    }
}
