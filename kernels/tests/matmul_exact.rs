//! Exact small-integer products for every registered CPU matmul kernel (each ISA path available
//! here, each precision), at shapes around the micro-kernel tile and the cache blocks.
//!
//! Entries are integers in [-2, 2] and K ≤ 32, so every partial sum is an integer of magnitude
//! ≤ 128: exact in f32, f16 (11-bit significand) and bf16 (8-bit significand). Any layout bug —
//! a wrong stride, a missed edge tile, a dropped K block — changes the result exactly.

use perfledger_kernels::cpu::matmul::{
    bf16dot_dot_m_max, packed_matmul, packed_matmul_bf16, tile, Blocking, Path, Workspace,
    AMX_DOT_M_MAX, AMX_ROWS_M_MAX, DOT_M_MAX, DOT_M_ONE_PASS,
};
use perfledger_kernels::dtype::SplitMix64;
use perfledger_kernels::isa::Isa;
use perfledger_kernels::{
    DType, MatmulProblem, Precision, Problem, Registry, RegistryOptions, Tensor,
};
use std::sync::Arc;

/// Integers in [-2, 2] (never all zero), as a tensor of `dtype`.
fn ints(dtype: DType, len: usize, seed: u64) -> (Tensor, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..len).map(|_| rng.below(5) as f32 - 2.0).collect();
    (
        Tensor::from_f32(dtype, &v),
        v.iter().map(|&x| x as f64).collect(),
    )
}

/// Exact product over the logical region; padding columns of C are not compared.
fn exact(p: &MatmulProblem, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![f64::NAN; p.c_len()];
    for bi in 0..p.batch {
        for i in 0..p.m {
            for j in 0..p.n {
                let mut s = 0.0;
                for q in 0..p.k {
                    let av = a[bi * p.a_stride() + i * p.lda + q];
                    let bv = if p.trans_b {
                        b[bi * p.b_stride() + j * p.ldb + q]
                    } else {
                        b[bi * p.b_stride() + q * p.ldb + j]
                    };
                    s += av * bv;
                }
                c[bi * p.c_stride() + i * p.ldc + j] = s;
            }
        }
    }
    c
}

/// C's `m × n` elements of every batch equal `want`; every other element of the buffer (the
/// padding past `n` in each row of a wider `ldc`) still holds the NaN written before the run.
fn check(p: &MatmulProblem, out: &Tensor, want: &[f64], what: &str) {
    let got = out.to_f64();
    for bi in 0..p.batch {
        for i in 0..p.m {
            for j in 0..p.n {
                let idx = bi * p.c_stride() + i * p.ldc + j;
                assert_eq!(
                    got[idx], want[idx],
                    "{what} {p}: C[{bi}][{i}][{j}] = {} , want {}",
                    got[idx], want[idx]
                );
            }
        }
    }
    for (idx, v) in got.iter().enumerate() {
        let (bi, r) = (idx / p.c_stride(), idx % p.c_stride());
        let (i, j) = (r / p.ldc, r % p.ldc);
        if bi >= p.batch || i >= p.m || j >= p.n {
            assert!(
                v.is_nan(),
                "{what} {p}: element {idx} outside C written ({v})"
            );
        }
    }
}

/// Shapes around the tile `mr × nr` of a path and the given blocking.
fn shapes(mr: usize, nr: usize) -> Vec<MatmulProblem> {
    let mut v = Vec::new();
    for &m in &[1, mr - 1, mr, mr + 1, 2 * mr + 3, 127] {
        for &n in &[1, nr - 1, nr, nr + 1, 127] {
            for &k in &[1, 17, 32] {
                v.push(MatmulProblem::new(m, n, k));
            }
        }
    }
    // Transposed B, leading dimensions larger than the rows, batches.
    v.push(MatmulProblem::new(37, 45, 29).transposed_b());
    v.push(MatmulProblem::new(1, 45, 29).transposed_b());
    v.push(MatmulProblem::new(1, 45, 29));
    v.push(MatmulProblem::new(37, 45, 29).with_leading_dims(31, 50, 47));
    v.push(
        MatmulProblem::new(37, 45, 29)
            .transposed_b()
            .with_leading_dims(33, 30, 46),
    );
    v.push(
        MatmulProblem::new(1, 45, 29)
            .transposed_b()
            .with_leading_dims(33, 30, 46),
    );
    v.push(MatmulProblem::new(13, 21, 32).with_batch(3));
    v.push(MatmulProblem::new(13, 21, 32).transposed_b().with_batch(2));
    v
}

fn run_exact<T: perfledger_kernels::Element, O: perfledger_kernels::Element>(
    isa: Isa,
    blocking: &Blocking,
    p: &MatmulProblem,
    seed: u64,
) {
    let (ta, a) = ints(T::DTYPE, p.a_len(), seed);
    let (tb, b) = ints(T::DTYPE, p.b_len(), seed + 1);
    let want = exact(p, &a, &b);
    let mut c = vec![O::nan(); p.c_len() + GUARD];
    let mut ws = Workspace::default();
    packed_matmul::<T, O>(
        isa,
        blocking,
        p,
        T::tensor_slice(&ta).unwrap(),
        T::tensor_slice(&tb).unwrap(),
        &mut c[..p.c_len()],
        &mut ws,
    )
    .unwrap();
    let what = format!("packed.{isa} {}-f32-{}", T::DTYPE, O::DTYPE);
    check(p, &O::into_tensor(guarded(c, p, &what)), &want, &what);
}

/// Elements allocated past C's end in the direct tests, which must still hold NaN afterwards:
/// a store past the last row is seen as a failure, not as heap damage.
const GUARD: usize = 64;

/// `c` without its [`GUARD`] elements, which are checked to be untouched.
fn guarded<O: perfledger_kernels::Element>(mut c: Vec<O>, p: &MatmulProblem, what: &str) -> Vec<O> {
    let len = p.c_len();
    assert!(
        c[len..].iter().all(|x| x.is_nan()),
        "{what} {p}: written past the end of C"
    );
    c.truncate(len);
    c
}

#[test]
fn packed_exact_small_integers_every_isa_and_precision() {
    use half::{bf16, f16};
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let (mr, nr) = tile(isa);
        // Tiny blocks so that K (≤ 32), M and N all cross several cache blocks.
        let small = Blocking {
            mc: 2 * mr,
            kc: 8,
            nc: 2 * nr,
        };
        let default = Blocking::for_isa(isa);
        for (s, p) in shapes(mr, nr).iter().enumerate() {
            for blocking in [&small, &default] {
                let seed = 1000 + s as u64;
                run_exact::<f32, f32>(isa, blocking, p, seed);
                run_exact::<f16, f16>(isa, blocking, p, seed);
                run_exact::<f16, f32>(isa, blocking, p, seed);
                run_exact::<bf16, bf16>(isa, blocking, p, seed);
                run_exact::<bf16, f32>(isa, blocking, p, seed);
            }
        }
    }
}

/// An N for `m` rows that runs in the single-pass nest (N ≥ M × threads) with more than 16
/// micro-panels of width `nr` per thread, so each of its 4 tasks per thread crosses a 4-panel
/// B chunk.
fn stream_wide(m: usize, nr: usize) -> usize {
    let threads = rayon::current_num_threads();
    m * threads + (16 * threads + 5) * nr + 3
}

/// Shapes of the single-pass nest (N ≥ M × threads, all of A packed within the A block budget):
/// K under the blocking's kc and K over several k blocks (the last one short, odd for the bf16
/// k-pairs; the `vdpbf16ps` path's k blocks are 64, twice the blocking's kc: 77 = 64 + 13, 65 =
/// 64 + 1, 70 = 64 + 6), N split into several tasks per thread (4 per thread), each task's
/// columns crossing more than one packed B chunk (`kc = 32` makes a chunk four micro-panels, two
/// on the `vdpbf16ps` path, and N holds more than 16 micro-panels per thread), edge tiles in M and
/// N, B transposed past the small-M dot path and between its two limits, padded leading
/// dimensions, batches.
fn stream_shapes(mr: usize, nr: usize) -> (Blocking, Vec<MatmulProblem>) {
    let wide = |m: usize| stream_wide(m, nr);
    let mt = DOT_M_MAX + 1;
    // An A block of 3 × mt rows at kc: mt rows of A over three k blocks.
    let blocking = Blocking {
        mc: (3 * mt).div_ceil(mr) * mr,
        kc: 32,
        nc: 2 * nr,
    };
    let shapes = vec![
        MatmulProblem::new(2 * mr - 1, wide(2 * mr - 1), 29),
        MatmulProblem::new(mr + 1, wide(mr + 1), 32),
        MatmulProblem::new(mr, wide(mr), 1),
        MatmulProblem::new(mt, wide(mt), 29).transposed_b(),
        MatmulProblem::new(2 * mr + 3, wide(2 * mr + 3), 17).with_leading_dims(
            19,
            wide(2 * mr + 3) + 7,
            wide(2 * mr + 3) + 3,
        ),
        MatmulProblem::new(mr + 1, wide(mr + 1), 31).with_batch(2),
        // K over k blocks of 32: 32 + 32 + 13, 32 + 32 + 1, 32 + 32, and padded, batched.
        MatmulProblem::new(2 * mr + 1, wide(2 * mr + 1), 77),
        MatmulProblem::new(mt, wide(mt), 65).transposed_b(),
        MatmulProblem::new(mr + 2, wide(mr + 2), 64).with_leading_dims(
            67,
            wide(mr + 2) + 5,
            wide(mr + 2) + 1,
        ),
        MatmulProblem::new(mr + 1, wide(mr + 1), 70).with_batch(2),
        // Bᵀ between the dot path's always-rows and its limit, wide: the one-pass nest.
        MatmulProblem::new(DOT_M_ONE_PASS + 5, wide(DOT_M_ONE_PASS + 5), 45).transposed_b(),
    ];
    (blocking, shapes)
}

/// The single-pass nest ([`stream_shapes`]), every ISA path and precision, twice in
/// a row on each shape (a thread's packed A is reused only within one call).
#[test]
fn stream_nest_exact_every_isa_and_precision() {
    use half::{bf16, f16};
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let (mr, nr) = tile(isa);
        let (blocking, shapes) = stream_shapes(mr, nr);
        for (s, p) in shapes.iter().enumerate() {
            for seed in [5000 + 2 * s as u64, 5100 + 2 * s as u64] {
                run_exact::<f32, f32>(isa, &blocking, p, seed);
                run_exact::<f16, f16>(isa, &blocking, p, seed);
                run_exact::<f16, f32>(isa, &blocking, p, seed);
                run_exact::<bf16, bf16>(isa, &blocking, p, seed);
                run_exact::<bf16, f32>(isa, &blocking, p, seed);
            }
        }
    }
    for path in BF16_PATHS.into_iter().filter(|p| p.available()) {
        let (mr, nr) = path.tile();
        let (blocking, shapes) = stream_shapes(mr, nr);
        for (s, p) in shapes.iter().enumerate() {
            for seed in [5200 + 2 * s as u64, 5300 + 2 * s as u64] {
                run_exact_bf16::<bf16>(path, &blocking, p, seed);
                run_exact_bf16::<f32>(path, &blocking, p, seed);
            }
        }
    }
}

/// The single-pass nest with a blocking kc past its longest k block (2048): K = 2085 in k blocks
/// of 2048 and 37 under kc = 4096 (the AMX path's kc; the `vdpbf16ps` path's k blocks, twice
/// the blocking's kc up to 4096, take it whole), chunks sized from the blocking's kc, on
/// every path and input precision, B as stored and transposed (past the small-M dot path). f32
/// outputs only: sums of magnitude up to 2·2·K are exact in f32, not in a half-precision output.
#[test]
fn stream_nest_exact_with_k_blocks_under_a_long_kc() {
    use half::{bf16, f16};
    let shapes = |mr: usize, nr: usize| {
        let wide = |m: usize| stream_wide(m, nr);
        let (m, mt) = (mr + 1, DOT_M_MAX + 1);
        let blocking = Blocking {
            mc: mt.div_ceil(mr) * mr,
            kc: 4096,
            nc: 2 * nr,
        };
        let ps = [
            MatmulProblem::new(m, wide(m), 2085),
            MatmulProblem::new(mt, wide(mt), 2085).transposed_b(),
        ];
        (blocking, ps)
    };
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let (mr, nr) = tile(isa);
        let (blocking, ps) = shapes(mr, nr);
        for (s, p) in ps.iter().enumerate() {
            run_exact::<f32, f32>(isa, &blocking, p, 5400 + s as u64);
            run_exact::<f16, f32>(isa, &blocking, p, 5410 + s as u64);
            run_exact::<bf16, f32>(isa, &blocking, p, 5420 + s as u64);
        }
    }
    for path in BF16_PATHS.into_iter().filter(|p| p.available()) {
        let (mr, nr) = path.tile();
        let (blocking, ps) = shapes(mr, nr);
        for (s, p) in ps.iter().enumerate() {
            run_exact_bf16::<f32>(path, &blocking, p, 5430 + s as u64);
        }
    }
}

/// The M = 1 path on rows longer than its unrolled steps (64 f32 lanes per step with AVX-512)
/// plus tails, K not a multiple of the 4-row groups of the `[k, n]` layout, wide and narrow N,
/// and padded rows.
/// Outputs are f32, so sums of magnitude up to 2·2·K stay exact in any summation order.
#[test]
fn gemv_exact_long_rows_every_isa() {
    use half::{bf16, f16};
    let shapes = [
        MatmulProblem::new(1, 70, 203),
        MatmulProblem::new(1, 70, 203).transposed_b(),
        MatmulProblem::new(1, 131, 1030).transposed_b(),
        MatmulProblem::new(1, 131, 1030),
        MatmulProblem::new(1, 67, 301).with_leading_dims(303, 70, 67),
        MatmulProblem::new(1, 67, 301)
            .transposed_b()
            .with_leading_dims(303, 305, 67),
        // Wide B [k, n], and padded rows.
        MatmulProblem::new(1, 1030, 67),
        MatmulProblem::new(1, 777, 45).with_leading_dims(50, 800, 777),
    ];
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let blocking = Blocking::for_isa(isa);
        for (s, p) in shapes.iter().enumerate() {
            let seed = 5000 + s as u64;
            run_exact::<f32, f32>(isa, &blocking, p, seed);
            run_exact::<f16, f32>(isa, &blocking, p, seed);
            run_exact::<bf16, f32>(isa, &blocking, p, seed);
        }
    }
}

/// The small-M path for B transposed (`DOT_M_MAX` rows and fewer): M around its row tiles
/// (4 with AVX-512, 2 otherwise) and at the limit, N around its groups of Bᵀ rows (6 and 4), K
/// across its k blocks (256–2048 f32, 512–4096 bf16 with `vdpbf16ps`, by the caches: 1024 and
/// 2048 on a 48 KiB L1; `vdpbf16ps` on AMD family 25 by A and L2 alone: 4096 at these M, so
/// K = 4100 is two blocks) with tails, padded rows, a batch;
/// and M one above the limit (the loop nest; on the AMX path from `AMX_DOT_M_MAX + 1` rows, on
/// the `vdpbf16ps` path from `bf16dot_dot_m_max() + 1`, both sides of it tested). f32 output
/// keeps sums up to 2·2·K exact; half outputs at short K check the rounding epilogue.
#[test]
fn small_m_transposed_b_exact_every_isa() {
    use half::{bf16, f16};
    let mut shapes = Vec::new();
    let bf16dot_max = bf16dot_dot_m_max();
    let mut rows = vec![2, 3, 5, 17, AMX_DOT_M_MAX + 1, DOT_M_MAX, DOT_M_MAX + 1];
    if bf16dot_max != DOT_M_MAX {
        rows.extend([bf16dot_max, bf16dot_max + 1]);
    }
    for m in rows {
        for (n, k) in [(7, 31), (13, 2049), (25, 4100)] {
            shapes.push(MatmulProblem::new(m, n, k).transposed_b());
        }
    }
    shapes.push(
        MatmulProblem::new(9, 11, 2100)
            .transposed_b()
            .with_leading_dims(2103, 2105, 14),
    );
    shapes.push(MatmulProblem::new(6, 19, 300).transposed_b().with_batch(2));
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let blocking = Blocking::for_isa(isa);
        for (s, p) in shapes.iter().enumerate() {
            let seed = 7000 + s as u64;
            run_exact::<f32, f32>(isa, &blocking, p, seed);
            run_exact::<f16, f32>(isa, &blocking, p, seed);
            run_exact::<bf16, f32>(isa, &blocking, p, seed);
            if p.k <= 32 {
                run_exact::<f16, f16>(isa, &blocking, p, seed);
                run_exact::<bf16, bf16>(isa, &blocking, p, seed);
            }
        }
    }
    for path in BF16_PATHS.into_iter().filter(|p| p.available()) {
        let blocking = path.default_blocking();
        for (s, p) in shapes.iter().enumerate() {
            run_exact_bf16::<f32>(path, &blocking, p, 7000 + s as u64);
            if p.k <= 32 {
                run_exact_bf16::<bf16>(path, &blocking, p, 7000 + s as u64);
            }
        }
    }
}

/// The AMX path's in-place Bᵀ product (B's rows as the tiles' A operand, A packed as the B
/// operand; `AMX_ROWS_M_MAX` rows and fewer, K in whole tile steps of 32): M in one and two
/// 32-row panels with a partial one (at most 16 rows in a panel take the narrow kernel: M = 16,
/// 33, 48 at its edge), N with a partial last group of 32 rows (copied), K in one
/// and several 2048-value blocks with a shorter last, wider leading dimensions, a batch, and a
/// bf16 output where K = 32 keeps the sums exact in bf16.
#[test]
fn amx_rows_exact_small_integers() {
    use half::bf16;
    if !Path::Amx.available() {
        eprintln!("skipped: this CPU lacks amx");
        return;
    }
    let mut shapes = Vec::new();
    for m in [2, 7, 16, 17, 32, 33, 48, AMX_ROWS_M_MAX] {
        for (n, k) in [(31, 32), (64, 2080), (70, 4160)] {
            shapes.push(MatmulProblem::new(m, n, k).transposed_b());
        }
    }
    shapes.push(
        MatmulProblem::new(9, 45, 2048)
            .transposed_b()
            .with_leading_dims(2051, 2056, 50),
    );
    shapes.push(MatmulProblem::new(5, 33, 96).transposed_b().with_batch(2));
    let blocking = Path::Amx.default_blocking();
    for (s, p) in shapes.iter().enumerate() {
        run_exact_bf16::<f32>(Path::Amx, &blocking, p, 9000 + s as u64);
        if p.k <= 32 {
            run_exact_bf16::<bf16>(Path::Amx, &blocking, p, 9000 + s as u64);
        }
    }
}

/// The AMX nest with A's whole 32-row micro-panels read in place (k blocks of whole tile steps):
/// k blocks of 32 and 64 with a short last block (packed: 100 = 3 × 32 + 4), M in several A blocks
/// with a partial last micro-panel (packed), M below one micro-panel (all packed), N with edge
/// tiles, B as stored and transposed (past the in-place Bᵀ product's rows), row strides that are
/// not whole tile rows, a batch; f32 output (sums up to 2·2·K exact) and bf16 at K = 32.
#[test]
fn amx_nest_a_in_place_exact_small_integers() {
    use half::bf16;
    if !Path::Amx.available() {
        eprintln!("skipped: this CPU lacks amx");
        return;
    }
    let m_bt = AMX_ROWS_M_MAX + 33;
    let probs = [
        MatmulProblem::new(97, 70, 96),
        MatmulProblem::new(130, 33, 100),
        MatmulProblem::new(20, 35, 64),
        MatmulProblem::new(64, 64, 32),
        MatmulProblem::new(m_bt, 40, 128).transposed_b(),
        MatmulProblem::new(70, 50, 96).with_leading_dims(101, 53, 55),
        MatmulProblem::new(m_bt, 37, 160)
            .transposed_b()
            .with_leading_dims(163, 165, 40),
        MatmulProblem::new(40, 35, 64).with_batch(2),
    ];
    let blockings = [
        Blocking {
            mc: 64,
            kc: 32,
            nc: 64,
        },
        Blocking {
            mc: 96,
            kc: 64,
            nc: 32,
        },
        Path::Amx.default_blocking(),
    ];
    for (s, p) in probs.iter().enumerate() {
        for blocking in &blockings {
            run_exact_bf16::<f32>(Path::Amx, blocking, p, 9500 + s as u64);
            if p.k <= 32 {
                run_exact_bf16::<bf16>(Path::Amx, blocking, p, 9500 + s as u64);
            }
        }
    }
}

/// The bf16-only paths on a B block of more than a quarter of L2 (≥ 600 KiB here; L2 up to 2.4
/// MiB): B `[k, n]` packed by row pairs across the micro-panels. M above N (the nest, not its
/// one-pass variant, at any thread count), odd K (the last pair's padding) and whole tile steps
/// (AMX's A in place), a partial last micro-panel of N.
#[test]
fn bf16_paths_row_packed_b_exact() {
    for path in BF16_PATHS.into_iter().filter(|p| p.available()) {
        let blocking = path.default_blocking();
        for (s, k) in [513, 512].into_iter().enumerate() {
            let p = MatmulProblem::new(640, 600, k);
            run_exact_bf16::<f32>(path, &blocking, &p, 9800 + s as u64);
        }
    }
}

/// The bf16-only paths: `vdpbf16ps` pair panels and AMX tile panels.
const BF16_PATHS: [Path; 2] = [Path::Bf16Dot, Path::Amx];

fn run_exact_bf16<O: perfledger_kernels::Element>(
    path: Path,
    blocking: &Blocking,
    p: &MatmulProblem,
    seed: u64,
) {
    use half::bf16;
    use perfledger_kernels::Element;
    let (ta, a) = ints(DType::BF16, p.a_len(), seed);
    let (tb, b) = ints(DType::BF16, p.b_len(), seed + 1);
    let want = exact(p, &a, &b);
    let mut c = vec![O::nan(); p.c_len() + GUARD];
    let mut ws = Workspace::default();
    packed_matmul_bf16::<O>(
        path,
        blocking,
        p,
        bf16::tensor_slice(&ta).unwrap(),
        bf16::tensor_slice(&tb).unwrap(),
        &mut c[..p.c_len()],
        &mut ws,
    )
    .unwrap();
    let what = format!("packed.{} bf16-f32-{} {blocking}", path.name(), O::DTYPE);
    check(p, &O::into_tensor(guarded(c, p, &what)), &want, &what);
}

/// The bf16-only paths (`vdpbf16ps` k-pair panels, AMX tile panels): odd K and odd kc blocks
/// exercise the zero-padded half of the last pair, K and kc off a multiple of 32 the padded tail
/// of AMX's last tile step; the tiny blockings make K cross several kc blocks.
#[test]
fn packed_bf16_paths_exact_small_integers() {
    for path in BF16_PATHS {
        if path.available() {
            bf16_path_exact_small_integers(path);
        } else {
            eprintln!("skipped: this CPU lacks {}", path.name());
        }
    }
}

fn bf16_path_exact_small_integers(path: Path) {
    let (mr, nr) = path.tile();
    let mut probs = shapes(mr, nr);
    for &k in &[2, 3, 15, 31, 33, 95] {
        probs.push(MatmulProblem::new(mr + 1, nr + 1, k));
        probs.push(MatmulProblem::new(2 * mr - 1, 2 * nr + 5, k).transposed_b());
    }
    // Every count of rows in the last micro-panel (the bf16 store multiplies only the rows an
    // edge panel has, in steps of four), with bf16 output from the micro-kernel.
    for edge in 1..=mr {
        probs.push(MatmulProblem::new(mr + edge, nr + 3, 37));
    }
    probs.push(MatmulProblem::new(29, 70, 31).with_leading_dims(33, 75, 71));
    probs.push(
        MatmulProblem::new(29, 70, 31)
            .transposed_b()
            .with_leading_dims(32, 35, 73)
            .with_batch(2),
    );
    let blockings = [
        Blocking {
            mc: 2 * mr,
            kc: 8,
            nc: 2 * nr,
        },
        Blocking {
            mc: mr,
            kc: 7,
            nc: nr,
        },
        Blocking {
            mc: mr,
            kc: 40,
            nc: 3 * nr,
        },
        path.default_blocking(),
    ];
    for (s, p) in probs.iter().enumerate() {
        for blocking in &blockings {
            let seed = 3000 + s as u64;
            run_exact_bf16::<half::bf16>(path, blocking, p, seed);
            run_exact_bf16::<f32>(path, blocking, p, seed);
        }
    }
}

/// Shapes whose B block every thread packs into its own buffer (the loop nest's `own_b_block`:
/// a block of at most a quarter of L2, and M ≥ 32 · threads · the size of B's element — 256 f32
/// rows or 128 half rows on 2 threads), one row under that bound (the shared packing pass), and
/// above it with an edge micro-panel, a transposed B, padded rows and a batch.
fn own_b_shapes(threads: usize, elem_bytes: usize) -> Vec<MatmulProblem> {
    let m = 32 * threads * elem_bytes;
    vec![
        MatmulProblem::new(m - 1, 70, 75),
        MatmulProblem::new(m, 70, 75),
        MatmulProblem::new(m + 1, 70, 75).transposed_b(),
        MatmulProblem::new(m + 5, 70, 75).with_leading_dims(80, 75, 72),
        MatmulProblem::new(m + 5, 45, 29)
            .transposed_b()
            .with_leading_dims(31, 33, 47),
        MatmulProblem::new(m, 33, 20).with_batch(2),
    ]
}

/// Small B blocks packed by every thread into its own buffer, inside its tasks ([`own_b_shapes`]),
/// on pools of 2 and 3 threads: one block (each path's blocking) and several k and N blocks
/// (small blockings: a new block each, which every thread packs again, later k blocks
/// accumulated), every ISA path and precision and the bf16-only paths. K ≤ 75 keeps sums up to
/// 300 exact in f32 and f16 outputs; bf16 outputs only at K ≤ 32 (sums up to 128).
#[test]
fn own_b_block_exact_every_path() {
    use half::{bf16, f16};
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                let (mr, nr) = tile(isa);
                let small = Blocking {
                    mc: 2 * mr,
                    kc: 32,
                    nc: 2 * nr,
                };
                for blocking in [&Blocking::for_isa(isa), &small] {
                    for (s, p) in own_b_shapes(threads, 4).iter().enumerate() {
                        run_exact::<f32, f32>(isa, blocking, p, 9000 + s as u64);
                    }
                    for (s, p) in own_b_shapes(threads, 2).iter().enumerate() {
                        let seed = 9100 + s as u64;
                        run_exact::<f16, f32>(isa, blocking, p, seed);
                        run_exact::<f16, f16>(isa, blocking, p, seed);
                        run_exact::<bf16, f32>(isa, blocking, p, seed);
                        if p.k <= 32 {
                            run_exact::<bf16, bf16>(isa, blocking, p, seed);
                        }
                    }
                }
            }
            for path in BF16_PATHS.into_iter().filter(|p| p.available()) {
                let (mr, nr) = path.tile();
                let small = Blocking {
                    mc: 2 * mr,
                    kc: 8,
                    nc: 2 * nr,
                };
                for blocking in [&path.default_blocking(), &small] {
                    for (s, p) in own_b_shapes(threads, 2).iter().enumerate() {
                        let seed = 9200 + s as u64;
                        run_exact_bf16::<f32>(path, blocking, p, seed);
                        if p.k <= 32 {
                            run_exact_bf16::<bf16>(path, blocking, p, seed);
                        }
                    }
                }
            }
        });
    }
}

/// Every registered kernel, through the registry interface (prepare → poison → run → output).
#[test]
fn registry_kernels_exact_small_integers() {
    let reg = Registry::new(&RegistryOptions::default());
    let probs = [
        MatmulProblem::new(19, 35, 32),
        MatmulProblem::new(1, 64, 32).transposed_b(),
        MatmulProblem::new(7, 9, 5).with_batch(2),
    ];
    let mut ran = 0;
    for kernel in reg.kernels() {
        let id = kernel.identity();
        for p in &probs {
            let problem = Problem::Matmul(*p);
            if !kernel.supports(&problem).is_yes() {
                continue;
            }
            let (ta, a) = ints(id.precision.input, p.a_len(), 5);
            let (tb, b) = ints(id.precision.input, p.b_len(), 6);
            let want = exact(p, &a, &b);
            let mut prep = kernel
                .prepare(&problem, &[Arc::new(ta), Arc::new(tb)])
                .unwrap();
            prep.poison().unwrap();
            prep.run().unwrap();
            let out = prep.output().unwrap();
            assert_eq!(out.dtype(), id.precision.output, "{}", id.id());
            check(p, &out, &want, &id.id());
            ran += 1;
        }
    }
    assert!(ran >= 3 * 10, "too few kernels ran: {ran}");
}

#[test]
fn zero_sized_dimensions_are_errors_not_panics() {
    let reg = Registry::new(&RegistryOptions::default());
    let matmuls = reg.kernels().iter().filter(|k| {
        let id = k.identity();
        id.op == perfledger_kernels::Op::Matmul && id.backend == perfledger_kernels::Backend::Cpu
    });
    for kernel in matmuls {
        // A kernel that cannot run here (AMX on a CPU without it) may refuse every problem with
        // that reason first; it must still refuse, without panicking.
        let here = kernel
            .supports(&Problem::Matmul(MatmulProblem::new(4, 4, 4)))
            .is_yes();
        for p in [
            MatmulProblem::new(0, 4, 4),
            MatmulProblem::new(4, 0, 4),
            MatmulProblem::new(4, 4, 0),
        ] {
            let problem = Problem::Matmul(p);
            assert!(!kernel.supports(&problem).is_yes());
            let prec = kernel.identity().precision;
            let inputs = [
                Arc::new(Tensor::random(prec.input, 16, 1)),
                Arc::new(Tensor::random(prec.input, 16, 2)),
            ];
            let err = kernel
                .prepare(&problem, &inputs)
                .err()
                .expect("zero dim must be refused");
            if here {
                assert!(err.to_string().contains("is zero"), "{err}");
            } else {
                // The reason it cannot run here (no AMX, an OpenBLAS without sbgemm) or the zero.
                assert!(err.to_string().contains("does not support"), "{err}");
            }
        }
    }
    let mut ws = Workspace::default();
    let mut c = vec![0f32; 4];
    let e = packed_matmul::<f32, f32>(
        Isa::Portable,
        &Blocking::for_isa(Isa::Portable),
        &MatmulProblem::new(2, 2, 0),
        &[],
        &[],
        &mut c,
        &mut ws,
    );
    assert!(e.is_err());
}

#[test]
fn wrong_input_dtype_and_short_buffers_are_refused() {
    let reg = Registry::new(&RegistryOptions::default());
    let k = reg
        .find("matmul.cpu.packed.portable.bf16-f32-bf16")
        .unwrap();
    let p = Problem::Matmul(MatmulProblem::new(4, 4, 4));
    let f32in = [
        Arc::new(Tensor::random(DType::F32, 16, 1)),
        Arc::new(Tensor::random(DType::F32, 16, 2)),
    ];
    assert!(k.prepare(&p, &f32in).is_err());
    let short = [
        Arc::new(Tensor::random(DType::BF16, 15, 1)),
        Arc::new(Tensor::random(DType::BF16, 16, 2)),
    ];
    let e = k.prepare(&p, &short).err().unwrap();
    assert!(e.to_string().contains("buffer `A`"), "{e}");
    let _ = Precision::same(DType::BF16);
}

/// Prepared packed matmuls share their thread's scratch (packed B, the f32 C of a half output,
/// the small-M A', a B block packed per thread): many instances on different inputs, run one
/// after another and concurrently on one pool (where work-stealing can nest one run inside
/// another on a thread), each exact against its own inputs — no instance sees another's packed
/// data. 400 rows pass the per-thread B block's M bound on 3 threads (384 f32 rows).
#[test]
fn prepared_packed_instances_share_thread_scratch_exactly() {
    use rayon::prelude::*;
    let reg = Registry::new(&RegistryOptions::default());
    let probs = [
        MatmulProblem::new(37, 45, 29),
        MatmulProblem::new(9, 70, 40).transposed_b(),
        MatmulProblem::new(1, 33, 20).transposed_b(),
        MatmulProblem::new(400, 45, 29),
    ];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let mut ran = 0;
    for kernel in reg.kernels() {
        let id = kernel.identity();
        if !id.id().starts_with("matmul.cpu.packed.") {
            continue;
        }
        for p in &probs {
            let problem = Problem::Matmul(*p);
            if !kernel.supports(&problem).is_yes() {
                continue;
            }
            let mut sets: Vec<_> = (0..6u64)
                .map(|s| {
                    let (ta, a) = ints(id.precision.input, p.a_len(), 100 + 2 * s);
                    let (tb, b) = ints(id.precision.input, p.b_len(), 101 + 2 * s);
                    let prep = kernel
                        .prepare(&problem, &[Arc::new(ta), Arc::new(tb)])
                        .unwrap();
                    (prep, exact(p, &a, &b))
                })
                .collect();
            // One after another on one thread, twice round.
            for _ in 0..2 {
                for (prep, want) in sets.iter_mut() {
                    prep.poison().unwrap();
                    prep.run().unwrap();
                    check(p, &prep.output().unwrap(), want, &id.id());
                }
            }
            // Concurrently on one pool.
            pool.install(|| {
                sets.par_iter_mut().for_each(|(prep, want)| {
                    prep.poison().unwrap();
                    prep.run().unwrap();
                    check(p, &prep.output().unwrap(), want, &id.id());
                })
            });
            ran += 1;
        }
    }
    assert!(ran >= 3 * 3, "too few packed kernels ran: {ran}");
}
