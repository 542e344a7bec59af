// decode_vec.wgsl — pass 1 of the split-KV attention decode (decode.wgsl) with 16-byte coalesced
// loads and subgroup reductions: entry point `decode_split_vec`. Needs `Features::SUBGROUP`.
//
// Source order: generated prelude + common.wgsl + decode.wgsl + this file (kernels/src/gpu/shaders.rs
// `Shader::DecodeVec`): the params struct, Q, PART, the scores S, NEG_BIG and ld_q are
// decode.wgsl's; its `decode_combine` merges this pass's partials (same PART layout).
//
// Bindings (group 0), decode.wgsl's 0 (Q), 3 (PART), 4 (P) and:
//   6  K4    array<vec4<u32>>, storage, read       the K buffer as 16-byte vectors [batch, kv_heads,
//                                                  kv_len, D / VE] (instead of binding 1)
//   7  V4    array<vec4<u32>>, storage, read       the V buffer likewise (instead of binding 2)
//
// Params: `DecodeParams`, decode.wgsl's (Rust twin: kernels/src/gpu/decode.rs `DecodeParams`).
//
// Prelude (generated; kernels/src/gpu/decode.rs `VecShape`), besides decode.wgsl's D, GROUP,
// CHUNK_MAX, MUTANT:
//   VE         elements per 16-byte vector: 8 (f16, bf16) or 4 (f32); D a multiple of VE
//   RV         vectors per row, D / VE
//   TPK        threads per key in the score pass: a power of two ≤ the adapter's minimum subgroup
//              size, the smallest ≥ RV where the subgroup allows (lanes past RV load a valid
//              vector and multiply it by zero)
//   VPT        vectors per lane per key, ceil(RV / TPK)
//   UNROLL     keys per lane whose loads are issued before any is used, 1..4 (16 / GROUP)
//   IN_KIND    0 f32, 1 f16, 2 bf16 (how a 16-byte vector unpacks)
//   RED        (WG / RV) · D floats of workgroup memory for the value pass's reduction
// Overrides: WG, 32..256, a multiple of the adapter's largest subgroup size and ≥ RV.
//
// Dispatch: (splits, kv_heads, batch), as decode_split. Bytes: K and V once (16-byte loads), Q
// once per lane slice, the partials once.

// ---- decode_split_vec: pass 1 with 16-byte loads and subgroup reductions --------------------
//
// `decode_split` gives each thread a whole K row (a warp's 32 lanes touch 32 rows per load, 2
// bytes each) and runs the softmax on GROUP threads; on an H200 it read K and V at 4-5% of the
// copy probe (results/gpu-h200.md). Here:
//   scores  TPK lanes of one subgroup share a key: lane p of the group reads vectors p, p + TPK,
//           ... of the row (consecutive lanes, consecutive 16 bytes: one coalesced 256-byte row at
//           head_dim 128 in 2-byte types), multiplies them with its slice of the GROUP query rows
//           (in registers), and the partial dots are summed across the TPK lanes with
//           subgroupShuffleXor. Each thread loads UNROLL keys before using any of them.
//   softmax one subgroup per query head: max and sum with subgroupMax / subgroupAdd.
//   values  thread li takes vector column li % RV of the keys li / RV, li / RV + WG / RV, ...,
//           UNROLL rows loaded before use; the WG / RV partial rows are summed through
//           workgroup memory (RED floats), one query head at a time.
// Same partial results in PART as decode_split; decode_combine merges either.

@group(0) @binding(6) var<storage, read> K4: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> V4: array<vec4<u32>>;

var<workgroup> Red: array<f32, RED>;

// The VE elements of one 16-byte vector, widened to f32 (exact for every input type).
fn unpack_vec(w: vec4<u32>) -> array<f32, VE> {
    var r: array<f32, VE>;
    for (var i = 0u; i < 4u; i++) {
        if (IN_KIND == 0u) {
            r[i] = bitcast<f32>(w[i]);
        } else if (IN_KIND == 2u) {
            r[2u * i] = bitcast<f32>(w[i] << 16u);
            r[2u * i + 1u] = bitcast<f32>(w[i] & 0xffff0000u);
        } else {
            let h = unpack2x16float(w[i]);
            r[2u * i] = h.x;
            r[2u * i + 1u] = h.y;
        }
    }
    return r;
}

@compute @workgroup_size(WG, 1, 1)
fn decode_split_vec(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sgs: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
) {
    let split = wg.x;
    let kvh = wg.y;
    let b = wg.z;
    var kv_head = kvh;
    if (MUTANT == 1u) {
        kv_head = (kvh + 1u) % P.kv_heads;
    }
    let start = split * P.chunk;
    let n = min(P.chunk, P.kv_len - start);
    // Vector index of the chunk's first row (D is a multiple of VE, so every row starts on a
    // vector).
    let row0 = ((b * P.kv_heads + kv_head) * P.kv_len + start) * RV;
    let h0 = kvh * GROUP;

    // This lane's slice of the group's query rows, scaled, in registers; zero past the row.
    let part = lane % TPK;
    var q: array<f32, GROUP * VPT * VE>;
    for (var t = 0u; t < VPT; t++) {
        let c = part + t * TPK;
        for (var e = 0u; e < VE; e++) {
            let d = min(c * VE + e, D - 1u);
            for (var g = 0u; g < GROUP; g++) {
                let x = ld_q((b * P.q_heads + h0 + g) * D + d) * P.scale_log2e;
                q[(t * VE + e) * GROUP + g] = select(0.0, x, c < RV);
            }
        }
    }

    // Scores.
    let kps = max(sgs / TPK, 1u);
    let kg = sg * kps + lane / TPK;
    let nkg = nsg * kps;
    for (var base = 0u; base < n; base += nkg * UNROLL) {
        var kv: array<vec4<u32>, UNROLL * VPT>;
        for (var u = 0u; u < UNROLL; u++) {
            let j = min(base + u * nkg + kg, n - 1u);
            for (var t = 0u; t < VPT; t++) {
                kv[u * VPT + t] = K4[row0 + j * RV + min(part + t * TPK, RV - 1u)];
            }
        }
        var s: array<f32, GROUP * UNROLL>;
        for (var u = 0u; u < UNROLL; u++) {
            for (var t = 0u; t < VPT; t++) {
                let x = unpack_vec(kv[u * VPT + t]);
                for (var e = 0u; e < VE; e++) {
                    for (var g = 0u; g < GROUP; g++) {
                        s[u * GROUP + g] = fma(q[(t * VE + e) * GROUP + g], x[e], s[u * GROUP + g]);
                    }
                }
            }
        }
        for (var off = TPK / 2u; off > 0u; off = off / 2u) {
            for (var i = 0u; i < GROUP * UNROLL; i++) {
                s[i] += subgroupShuffleXor(s[i], off);
            }
        }
        if (part == 0u) {
            for (var u = 0u; u < UNROLL; u++) {
                let j = base + u * nkg + kg;
                if (j < n) {
                    for (var g = 0u; g < GROUP; g++) {
                        S[g * CHUNK_MAX + j] = s[u * GROUP + g];
                    }
                }
            }
        }
    }
    workgroupBarrier();

    // Max and sum per query head, one subgroup per head; scores turned into exp2(s − max).
    for (var g = sg; g < GROUP; g += nsg) {
        var m = NEG_BIG;
        for (var j = lane; j < n; j += sgs) {
            m = max(m, S[g * CHUNK_MAX + j]);
        }
        m = subgroupMax(m);
        var l = 0.0;
        for (var j = lane; j < n; j += sgs) {
            let p = exp2(S[g * CHUNK_MAX + j] - m);
            S[g * CHUNK_MAX + j] = p;
            l += p;
        }
        l = subgroupAdd(l);
        if (lane == 0u) {
            let base = ((b * P.q_heads + h0 + g) * P.splits + split) * (D + 2u);
            PART[base + D] = m;
            PART[base + D + 1u] = l;
        }
    }
    workgroupBarrier();

    // Unnormalized output sums.
    let lanes = WG / RV;
    let c = li % RV;
    let kl = li / RV;
    var acc: array<f32, GROUP * VE>;
    if (kl < lanes) {
        for (var j0 = kl; j0 < n; j0 += lanes * UNROLL) {
            var vv: array<vec4<u32>, UNROLL>;
            for (var u = 0u; u < UNROLL; u++) {
                vv[u] = V4[row0 + min(j0 + u * lanes, n - 1u) * RV + c];
            }
            for (var u = 0u; u < UNROLL; u++) {
                let j = j0 + u * lanes;
                let x = unpack_vec(vv[u]);
                for (var g = 0u; g < GROUP; g++) {
                    let p = select(0.0, S[g * CHUNK_MAX + min(j, n - 1u)], j < n);
                    for (var e = 0u; e < VE; e++) {
                        acc[g * VE + e] = fma(p, x[e], acc[g * VE + e]);
                    }
                }
            }
        }
    }
    for (var g = 0u; g < GROUP; g++) {
        if (kl < lanes) {
            for (var e = 0u; e < VE; e++) {
                Red[kl * D + c * VE + e] = acc[g * VE + e];
            }
        }
        workgroupBarrier();
        for (var o = li; o < D; o += WG) {
            var sum = 0.0;
            for (var r = 0u; r < lanes; r++) {
                sum += Red[r * D + o];
            }
            PART[((b * P.q_heads + h0 + g) * P.splits + split) * (D + 2u) + o] = sum;
        }
        workgroupBarrier();
    }
}
