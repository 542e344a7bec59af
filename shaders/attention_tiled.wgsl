// attention_tiled.wgsl — flash attention forward with register tiles: entry point `flash_tiled`.
// The same problem, mask, GQA mapping and numerics as attention.wgsl's `flash` (online softmax in
// f32 with exp2, log2(e) folded into the scale; f32 accumulation; one rounding to the output), but
// laid out like a SIMT GEMM instead of one thread per query row:
//   - a workgroup takes BQ query rows of one (batch, head); Q (scaled), each K tile and each V
//     tile go through workgroup memory as f32, rows padded by one float against bank conflicts;
//   - S = Q·Kᵀ for a BQ × BKV tile: thread (rr, ck) computes rows rr, rr + NROW, ... (TR of them)
//     × keys ck, ck + NCOL, ... (TK of them), head_dim deep: TR + TK workgroup loads per TR · TK
//     FMAs;
//   - the online softmax of a row on one thread (thread li < BQ owns row li's running max and
//     sum), while every thread stages the V tile into the buffer K used;
//   - O += P·V: thread (rr, cd) keeps TR rows × TD columns (cd, cd + NCOL, ...) of the output in
//     registers, rescaled once per tile;
//   - the normalized output goes back through workgroup memory so packed bf16 words are written
//     whole.
// Causal tiles past a block's last visible key are skipped; masked scores are NEG_BIG.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Layout [batch, heads, seq, head_dim], contiguous (kernels/src/problem.rs `AttentionProblem`).
//
// Bindings (group 0), as attention.wgsl:
//   0  Q  array<InWord>, storage, read         [batch, q_heads, q_len, D]
//   1  K  array<InWord>, storage, read         [batch, kv_heads, kv_len, D]
//   2  V  array<InWord>, storage, read         [batch, kv_heads, kv_len, D]
//   3  O  array<OutWord>, storage, read_write  [batch, q_heads, q_len, ldo]; ldo = D, or D rounded
//                                              up to even for packed bf16 output (host unpads)
//   4  P  AttentionParams, uniform
//
// Params (Rust twin: kernels/src/gpu/attention.rs `AttentionParams`, the same struct as
// attention.wgsl): batch, q_heads, kv_heads, q_len, kv_len, causal (0|1), ldo: u32; scale_log2e: f32.
//
// Prelude (generated; kernels/src/gpu/attention.rs `TiledFlash`):
//   D            head_dim, 1..256
//   BQ, BKV      query rows per workgroup, keys per tile (8..64 each)
//   NROW, NCOL   thread grid: WG = NROW · NCOL; BQ a multiple of NROW, BKV of NCOL, BQ ≤ WG
//   TR, TK, TD   BQ / NROW rows, BKV / NCOL keys, ceil(D / NCOL) output columns per thread
//   LDQ          D + 1 (padded row of Qs and KVs); LDS = BKV + 1 (padded row of Ss)
//   MUTANT       0; test kernels only: 1 lets each row see one key past its causal end, 2 reads
//                the next KV head for a GQA group, 3 skips rescaling O when a row's max grows
// Workgroup memory: (BQ · LDQ + BKV · LDQ + BQ · LDS + 2 · BQ) · 4 bytes (the host checks it
// against max_compute_workgroup_storage_size).
// Overrides: WG = NROW · NCOL (the host passes exactly this).
//
// Dispatch: (ceil(q_len / BQ), q_heads, batch).

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

override WG: u32 = 64u;

const NEG_BIG: f32 = -3.0e38;

// Q (scaled) and, at the end, the normalized output rows.
var<workgroup> Qs: array<f32, BQ * LDQ>;
// The K tile, then the V tile of the same keys.
var<workgroup> KVs: array<f32, BKV * LDQ>;
// Scores, then probabilities, of the tile.
var<workgroup> Ss: array<f32, BQ * LDS>;
// Per row: the tile's rescale factor, and at the end 1 / sum.
var<workgroup> Cs: array<f32, BQ>;
var<workgroup> Ls: array<f32, BQ>;

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
fn flash_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.y;
    let b = wg.z;
    let q_first = wg.x * BQ;
    let group = P.q_heads / P.kv_heads;
    var kv_head = h / group;
    if (MUTANT == 2u) {
        kv_head = (kv_head + 1u) % P.kv_heads;
    }
    let kv_base = (b * P.kv_heads + kv_head) * P.kv_len * D;
    let q_base = ((b * P.q_heads + h) * P.q_len + q_first) * D;
    let rows = min(BQ, P.q_len - q_first);

    let causal = P.causal != 0u;
    let shift = P.kv_len - select(0u, P.q_len, causal);
    let block_end = select(P.kv_len, shift + q_first + rows, causal);

    // Q rows of the block, scaled (rows past q_len as zeros).
    for (var e = li; e < BQ * D; e += WG) {
        let r = e / D;
        let d = e % D;
        var x = 0.0;
        if (r < rows) {
            x = ld_q(q_base + e) * P.scale_log2e;
        }
        Qs[r * LDQ + d] = x;
    }

    let rr = li / NCOL;
    let cc = li % NCOL;
    // Row state, on thread li for row li.
    var m = NEG_BIG;
    var l = 0.0;
    var o: array<f32, TR * TD>;

    for (var t0 = 0u; t0 < block_end; t0 += BKV) {
        // K tile (keys past kv_len as zeros; they are masked below).
        for (var e = li; e < BKV * D; e += WG) {
            let j = e / D;
            var x = 0.0;
            if (t0 + j < P.kv_len) {
                x = ld_k(kv_base + t0 * D + e);
            }
            KVs[j * LDQ + e % D] = x;
        }
        workgroupBarrier();

        // S tile: TR × TK per thread.
        var s: array<f32, TR * TK>;
        for (var d = 0u; d < D; d++) {
            var qv: array<f32, TR>;
            for (var i = 0u; i < TR; i++) {
                qv[i] = Qs[(rr + i * NROW) * LDQ + d];
            }
            for (var k = 0u; k < TK; k++) {
                let kv = KVs[(cc + k * NCOL) * LDQ + d];
                for (var i = 0u; i < TR; i++) {
                    s[i * TK + k] = fma(qv[i], kv, s[i * TK + k]);
                }
            }
        }
        for (var i = 0u; i < TR; i++) {
            let r = rr + i * NROW;
            // Row r sees keys [0, shift + q_first + r] under the causal mask, and < kv_len.
            let row_end = select(
                P.kv_len,
                min(shift + q_first + r + 1u + select(0u, 1u, MUTANT == 1u), P.kv_len),
                causal
            );
            for (var k = 0u; k < TK; k++) {
                let j = cc + k * NCOL;
                Ss[r * LDS + j] = select(NEG_BIG, s[i * TK + k], t0 + j < row_end);
            }
        }
        workgroupBarrier();

        // V tile into the buffer K used, while thread li < BQ turns row li's scores into
        // probabilities and updates its running max and sum.
        for (var e = li; e < BKV * D; e += WG) {
            let j = e / D;
            var x = 0.0;
            if (t0 + j < P.kv_len) {
                x = ld_v(kv_base + t0 * D + e);
            }
            KVs[j * LDQ + e % D] = x;
        }
        if (li < BQ) {
            var m_new = m;
            for (var j = 0u; j < BKV; j++) {
                m_new = max(m_new, Ss[li * LDS + j]);
            }
            var sum = 0.0;
            for (var j = 0u; j < BKV; j++) {
                let p = exp2(Ss[li * LDS + j] - m_new);
                Ss[li * LDS + j] = p;
                sum += p;
            }
            let corr = exp2(m - m_new);
            l = l * corr + sum;
            m = m_new;
            Cs[li] = select(corr, 1.0, MUTANT == 3u);
        }
        workgroupBarrier();

        // O = O · corr + P · V: TR rows × TD columns per thread.
        for (var i = 0u; i < TR; i++) {
            let c = Cs[rr + i * NROW];
            for (var t = 0u; t < TD; t++) {
                o[i * TD + t] *= c;
            }
        }
        for (var j = 0u; j < BKV; j++) {
            var pv: array<f32, TR>;
            for (var i = 0u; i < TR; i++) {
                pv[i] = Ss[(rr + i * NROW) * LDS + j];
            }
            for (var t = 0u; t < TD; t++) {
                let d = min(cc + t * NCOL, D - 1u);
                let v = KVs[j * LDQ + d];
                for (var i = 0u; i < TR; i++) {
                    o[i * TD + t] = fma(pv[i], v, o[i * TD + t]);
                }
            }
        }
        workgroupBarrier();
    }

    // Normalized rows through workgroup memory (Qs is free), then whole output words.
    if (li < BQ) {
        Ls[li] = select(0.0, 1.0 / l, l > 0.0);
    }
    workgroupBarrier();
    for (var i = 0u; i < TR; i++) {
        let r = rr + i * NROW;
        let inv = Ls[r];
        for (var t = 0u; t < TD; t++) {
            let d = cc + t * NCOL;
            if (d < D) {
                Qs[r * LDQ + d] = o[i * TD + t] * inv;
            }
        }
    }
    workgroupBarrier();
    let out0 = (b * P.q_heads + h) * P.q_len + q_first;
    let half_d = (D + 1u) / 2u;
    for (var e = li; e < rows * half_d; e += WG) {
        let r = e / half_d;
        let d = 2u * (e % half_d);
        let lo = Qs[r * LDQ + d];
        let hi = select(0.0, Qs[r * LDQ + min(d + 1u, D - 1u)], d + 1u < D);
        let base = (out0 + r) * P.ldo;
        if (OUT_PER_WORD == 2u) {
            O[(base + d) / 2u] = out_pair(lo, hi);
        } else {
            O[base + d] = out_value(lo);
            if (d + 1u < D) {
                O[base + d + 1u] = out_value(hi);
            }
        }
    }
}
