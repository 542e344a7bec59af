// matmul.wgsl — C[b] = A[b] · op(B[b]), row-major, f32 accumulation. Entry points `naive`, `tiled`.
//
// Source order: generated prelude (kernels/src/gpu/shaders.rs `Specialization::prelude`) + common.wgsl + this file.
//
// Bindings (group 0):
//   0  A  array<InWord>, storage, read        A[b] is [m, lda] (element index b·a_stride + r·lda + k)
//   1  B  array<InWord>, storage, read        B[b] is [k, ldb], or [n, ldb] when trans_b = 1
//   2  C  array<OutWord>, storage, read_write C[b] is [m, ldc_out]; for bf16 output ldc_out is even
//                                             (the host pads rows so each thread writes whole words)
//   3  P  MatmulParams, uniform
//
// Params (Rust twin: kernels/src/gpu/matmul.rs `MatmulParams`, 12 × u32, 48 bytes):
//   m, n, k, lda, ldb, ldc_out, trans_b (0|1), batch, a_stride, b_stride, c_stride, _pad
//   All element indices must fit u32 (the host refuses larger problems).
//
// Prelude (generated): InWord/IN_PER_WORD/in_value, OutWord/OUT_PER_WORD/out_value/out_pair (element
// type); for `tiled` the tile constants:
//   BM, BN   rows/cols of C per workgroup: multiples of 4·TM / 4·TN, 16..256
//   BK       k per workgroup-memory tile: 4..64, (BM·BK) and (BK·BN) multiples of the workgroup size
//   TM, TN   C elements per thread: multiples of 4, 4..16 (register blocking, vec4 accumulators)
//   DOUBLE_BUF  bool: two halves of the tiles, the next K slice staged while one is multiplied
//            (workgroup memory 2·(BM+BN)·BK·4 bytes instead of (BM+BN)·BK·4)
// Overrides (workgroup size):
//   naive: WG_X, WG_Y (1..1024, product ≤ max_compute_invocations_per_workgroup), default 16×16
//   tiled: WG_X = BN / TN, WG_Y = BM / TM (the host passes exactly these)
//
// Dispatch:
//   naive: (ceil(ceil(n/2) / WG_X), ceil(m / WG_Y), batch); one thread per pair of columns of a row
//   tiled: (ceil(n / BN), ceil(m / BM), batch)

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

@group(0) @binding(0) var<storage, read> A: array<InWord>;
@group(0) @binding(1) var<storage, read> B: array<InWord>;
@group(0) @binding(2) var<storage, read_write> C: array<OutWord>;
@group(0) @binding(3) var<uniform> P: MatmulParams;

fn ld_a(i: u32) -> f32 {
    return in_value(A[i / IN_PER_WORD], i);
}

fn ld_b(i: u32) -> f32 {
    return in_value(B[i / IN_PER_WORD], i);
}

// Store columns c (even) and c+1 of one row at element index `i` (= row·ldc_out + c, even).
// `both` is false for the last column of an odd n: with packed bf16 the pair's high half is row
// padding, otherwise it is not written.
fn st_pair(i: u32, lo: f32, hi: f32, both: bool) {
    if (OUT_PER_WORD == 2u) {
        C[i / 2u] = out_pair(lo, hi);
    } else {
        C[i] = out_value(lo);
        if (both) {
            C[i + 1u] = out_value(hi);
        }
    }
}

fn b_index(kk: u32, c: u32) -> u32 {
    return select(kk * P.ldb + c, c * P.ldb + kk, P.trans_b != 0u);
}

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;

// Baseline: one thread per (row, column pair), dot products straight from storage.
@compute @workgroup_size(WG_X, WG_Y, 1)
fn naive(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.y;
    let c = 2u * gid.x;
    let b = gid.z;
    if (r >= P.m || c >= P.n || b >= P.batch) {
        return;
    }
    let both = c + 1u < P.n;
    let c1 = select(c, c + 1u, both);
    let a0 = b * P.a_stride + r * P.lda;
    let b0 = b * P.b_stride;
    var s0 = 0.0;
    var s1 = 0.0;
    for (var kk = 0u; kk < P.k; kk++) {
        let a = ld_a(a0 + kk);
        s0 = fma(a, ld_b(b0 + b_index(kk, c)), s0);
        s1 = fma(a, ld_b(b0 + b_index(kk, c1)), s1);
    }
    st_pair(b * P.c_stride + r * P.ldc_out + c, s0, s1, both);
}

// Workgroup-memory tiles: As is [BK][BM], Bs is [BK][BN], both f32 (converted once while staging),
// read as vec4. Each thread accumulates a TM × TN block in vec4 registers. With DOUBLE_BUF the
// tiles are doubled: the next K slice is staged into one half while the other is multiplied (one
// barrier per K step instead of two).
const BUFS: u32 = select(1u, 2u, DOUBLE_BUF);
const AS_SIZE: u32 = BK * BM / 4u;
const BS_SIZE: u32 = BK * BN / 4u;
var<workgroup> As: array<vec4<f32>, BUFS * AS_SIZE>;
var<workgroup> Bs: array<vec4<f32>, BUFS * BS_SIZE>;

fn set_as(buf: u32, kk: u32, r: u32, v: f32) {
    let e = kk * BM + r;
    As[buf * AS_SIZE + e / 4u][e % 4u] = v;
}

fn set_bs(buf: u32, kk: u32, c: u32, v: f32) {
    let e = kk * BN + c;
    Bs[buf * BS_SIZE + e / 4u][e % 4u] = v;
}

// Stage the K slice at k0 of this workgroup's A rows and B columns into tile half `buf`.
fn stage_tiles(buf: u32, k0: u32, row0: u32, col0: u32, a0: u32, b0: u32, li: u32) {
    let threads = WG_X * WG_Y;
    let trans_b = P.trans_b != 0u;
    // Stage A (consecutive threads walk k: contiguous in memory).
    for (var e = li; e < BM * BK; e += threads) {
        let r = e / BK;
        let kk = e % BK;
        var v = 0.0;
        if (row0 + r < P.m && k0 + kk < P.k) {
            v = ld_a(a0 + (row0 + r) * P.lda + k0 + kk);
        }
        set_as(buf, kk, r, v);
    }
    // Stage B, walking whichever index is contiguous in memory.
    for (var e = li; e < BK * BN; e += threads) {
        var kk = e / BN;
        var c = e % BN;
        if (trans_b) {
            kk = e % BK;
            c = e / BK;
        }
        var v = 0.0;
        if (k0 + kk < P.k && col0 + c < P.n) {
            v = ld_b(b0 + b_index(k0 + kk, col0 + c));
        }
        set_bs(buf, kk, c, v);
    }
}

// acc += the product of tile half `buf` for this thread's TM × TN block.
fn multiply_tiles(buf: u32, lid: vec3<u32>, acc: ptr<function, array<vec4<f32>, TM * TN / 4u>>) {
    for (var kk = 0u; kk < BK; kk++) {
        var av: array<vec4<f32>, TM / 4u>;
        var bv: array<vec4<f32>, TN / 4u>;
        for (var i = 0u; i < TM / 4u; i++) {
            av[i] = As[buf * AS_SIZE + (kk * BM + lid.y * TM) / 4u + i];
        }
        for (var j = 0u; j < TN / 4u; j++) {
            bv[j] = Bs[buf * BS_SIZE + (kk * BN + lid.x * TN) / 4u + j];
        }
        for (var i = 0u; i < TM; i++) {
            let a = vec4<f32>(av[i / 4u][i % 4u]);
            for (var j = 0u; j < TN / 4u; j++) {
                (*acc)[i * (TN / 4u) + j] = fma(a, bv[j], (*acc)[i * (TN / 4u) + j]);
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let b = wg.z;
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    let a0 = b * P.a_stride;
    let b0 = b * P.b_stride;

    var acc: array<vec4<f32>, TM * TN / 4u>;
    if (DOUBLE_BUF) {
        stage_tiles(0u, 0u, row0, col0, a0, b0, li);
        workgroupBarrier();
        var buf = 0u;
        for (var k0 = 0u; k0 < P.k; k0 += BK) {
            // The other half was last read before the previous barrier: free to overwrite.
            if (k0 + BK < P.k) {
                stage_tiles(1u - buf, k0 + BK, row0, col0, a0, b0, li);
            }
            multiply_tiles(buf, lid, &acc);
            workgroupBarrier();
            buf = 1u - buf;
        }
    } else {
        for (var k0 = 0u; k0 < P.k; k0 += BK) {
            stage_tiles(0u, k0, row0, col0, a0, b0, li);
            workgroupBarrier();
            multiply_tiles(0u, lid, &acc);
            workgroupBarrier();
        }
    }

    for (var i = 0u; i < TM; i++) {
        let r = row0 + lid.y * TM + i;
        if (r >= P.m) {
            break;
        }
        for (var j = 0u; j < TN / 4u; j++) {
            let c = col0 + lid.x * TN + 4u * j;
            let v = acc[i * (TN / 4u) + j];
            let base = b * P.c_stride + r * P.ldc_out + c;
            if (c < P.n) {
                st_pair(base, v.x, v.y, c + 1u < P.n);
            }
            if (c + 2u < P.n) {
                st_pair(base + 2u, v.z, v.w, c + 3u < P.n);
            }
        }
    }
}
