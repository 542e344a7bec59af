// decode.wgsl — attention decode (q_len = 1) with the KV sequence split across workgroups
// (flash-decoding). Entry points `decode_split` (pass 1: one workgroup per KV chunk of one KV
// head, every query head of its GQA group at once, so K and V are read once) and
// `decode_combine` (pass 2: the chunks' partial softmax results merged per query head).
// decode_vec.wgsl adds `decode_split_vec`, the same pass 1 with 16-byte loads and subgroup
// reductions (built as this file + that one, so it shares the bindings and params below).
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Layout [batch, heads, seq, head_dim], contiguous (kernels/src/problem.rs `AttentionProblem`),
// q_len = 1. GQA: query head h reads KV head h / GROUP. A single query row aligned to the end sees
// every key, causal or not. Softmax in f32 with exp2 (log2(e) folded into the scale), one rounding
// to the output type.
//
// Bindings (group 0):
//   0  Q     array<InWord>, storage, read          [batch, q_heads, 1, D]
//   1  K     array<InWord>, storage, read          [batch, kv_heads, kv_len, D]
//   2  V     array<InWord>, storage, read          [batch, kv_heads, kv_len, D]
//   3  PART  array<f32>, storage, read_write       per (batch, q head, split): D unnormalized
//                                                  output sums, then the chunk's max and sum
//                                                  (D + 2 floats each)
//   4  P     DecodeParams, uniform
//   5  O     array<OutWord>, storage, read_write   [batch, q_heads, 1, ldo] (pass 2 only; ldo = D,
//                                                  or D rounded up to even for packed bf16)
//
// Params (Rust twin: kernels/src/gpu/attention.rs `DecodeParams`, 8 × 4 bytes, 32 bytes):
//   batch, q_heads, kv_heads, kv_len, chunk (keys per split, ≤ CHUNK_MAX), splits, ldo: u32;
//   scale_log2e: f32 (= scale · log2(e)). All element indices must fit u32 (the host checks).
//
// Prelude (generated): element type helpers, and
//   D          head_dim, 1..256
//   GROUP      query heads per KV head (q_heads / kv_heads), 1..16: the partial outputs of a
//              thread's columns live in registers (GROUP floats)
//   CHUNK_MAX  keys per split at most, 16..1024; the scores take GROUP · CHUNK_MAX · 4 bytes of
//              workgroup memory, Q·scale GROUP · D · 4
//   MUTANT     0; test kernels only: 1 reads the wrong KV head for a group, 2 skips the rescale
//              when combining chunks
// Overrides: WG (workgroup size of both passes), 32..256, default 64.
//
// Dispatch: pass 1 (splits, kv_heads, batch); pass 2 (q_heads, batch, 1). splits =
// ceil(kv_len / chunk). Bytes: K and V once, Q, the partials twice, O.

struct DecodeParams {
    batch: u32,
    q_heads: u32,
    kv_heads: u32,
    kv_len: u32,
    chunk: u32,
    splits: u32,
    ldo: u32,
    scale_log2e: f32,
}

@group(0) @binding(0) var<storage, read> Q: array<InWord>;
@group(0) @binding(1) var<storage, read> K: array<InWord>;
@group(0) @binding(2) var<storage, read> V: array<InWord>;
@group(0) @binding(3) var<storage, read_write> PART: array<f32>;
@group(0) @binding(4) var<uniform> P: DecodeParams;
@group(0) @binding(5) var<storage, read_write> O: array<OutWord>;

override WG: u32 = 64u;

const NEG_BIG: f32 = -3.0e38;

var<workgroup> Qs: array<f32, GROUP * D>;
var<workgroup> S: array<f32, GROUP * CHUNK_MAX>;
var<workgroup> M: array<f32, GROUP>;

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
fn decode_split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let split = wg.x;
    let kvh = wg.y;
    let b = wg.z;
    var kv_head = kvh;
    if (MUTANT == 1u) {
        kv_head = (kvh + 1u) % P.kv_heads;
    }
    let start = split * P.chunk;
    let n = min(P.chunk, P.kv_len - start);
    let kv_base = (b * P.kv_heads + kv_head) * P.kv_len * D;
    let h0 = kvh * GROUP;

    // The group's query rows, scaled, in workgroup memory.
    for (var e = li; e < GROUP * D; e += WG) {
        let g = e / D;
        Qs[e] = ld_q((b * P.q_heads + h0 + g) * D + e % D) * P.scale_log2e;
    }
    workgroupBarrier();

    // Scores: each thread takes keys li, li + WG, ...; each key row is read once for the group.
    for (var j = li; j < n; j += WG) {
        let row = kv_base + (start + j) * D;
        var s: array<f32, GROUP>;
        for (var d = 0u; d < D; d++) {
            let k = ld_k(row + d);
            for (var g = 0u; g < GROUP; g++) {
                s[g] = fma(Qs[g * D + d], k, s[g]);
            }
        }
        for (var g = 0u; g < GROUP; g++) {
            S[g * CHUNK_MAX + j] = s[g];
        }
    }
    workgroupBarrier();

    // Max and sum per query head (one thread per head), scores turned into exp2(s − max).
    if (li < GROUP) {
        var m = NEG_BIG;
        for (var j = 0u; j < n; j++) {
            m = max(m, S[li * CHUNK_MAX + j]);
        }
        var l = 0.0;
        for (var j = 0u; j < n; j++) {
            let p = exp2(S[li * CHUNK_MAX + j] - m);
            S[li * CHUNK_MAX + j] = p;
            l += p;
        }
        M[li] = m;
        let base = ((b * P.q_heads + h0 + li) * P.splits + split) * (D + 2u);
        PART[base + D] = m;
        PART[base + D + 1u] = l;
    }
    workgroupBarrier();

    // Unnormalized output sums: threads over columns, V rows read once for the group.
    for (var d = li; d < D; d += WG) {
        var acc: array<f32, GROUP>;
        for (var j = 0u; j < n; j++) {
            let v = ld_v(kv_base + (start + j) * D + d);
            for (var g = 0u; g < GROUP; g++) {
                acc[g] = fma(S[g * CHUNK_MAX + j], v, acc[g]);
            }
        }
        for (var g = 0u; g < GROUP; g++) {
            PART[((b * P.q_heads + h0 + g) * P.splits + split) * (D + 2u) + d] = acc[g];
        }
    }
}

@compute @workgroup_size(WG, 1, 1)
fn decode_combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    let b = wg.y;
    let base = (b * P.q_heads + h) * P.splits * (D + 2u);
    var m = NEG_BIG;
    for (var s = 0u; s < P.splits; s++) {
        m = max(m, PART[base + s * (D + 2u) + D]);
    }
    var l = 0.0;
    for (var s = 0u; s < P.splits; s++) {
        var w = exp2(PART[base + s * (D + 2u) + D] - m);
        if (MUTANT == 2u) {
            w = 1.0;
        }
        l = fma(PART[base + s * (D + 2u) + D + 1u], w, l);
    }
    let inv = 1.0 / l;
    let out = (b * P.q_heads + h) * P.ldo;
    // Columns in pairs (whole words for packed bf16 output).
    for (var d = 2u * li; d < D; d += 2u * WG) {
        var lo = 0.0;
        var hi = 0.0;
        for (var s = 0u; s < P.splits; s++) {
            let e = base + s * (D + 2u);
            var w = exp2(PART[e + D] - m);
            if (MUTANT == 2u) {
                w = 1.0;
            }
            lo = fma(PART[e + d], w, lo);
            if (d + 1u < D) {
                hi = fma(PART[e + d + 1u], w, hi);
            }
        }
        if (OUT_PER_WORD == 2u) {
            O[(out + d) / 2u] = out_pair(lo * inv, hi * inv);
        } else {
            O[out + d] = out_value(lo * inv);
            if (d + 1u < D) {
                O[out + d + 1u] = out_value(hi * inv);
            }
        }
    }
}
