//! GPU kernels verified on whatever adapter wgpu finds (lavapipe in CI; software adapters count):
//! every variant × dtype at small and odd shapes against float64 references, timing, error
//! handling, limits. One shared device; about 16 pipelines in all (llvmpipe compiles each on its
//! first dispatch, seconds cold).
//!
//! Without any adapter the tests print a notice and pass, unless `PERFLEDGER_REQUIRE_GPU=1` (set
//! by `.ci/run`), which turns "no adapter at all" into a failure.
#![cfg(feature = "gpu")]

mod common;

use perfledger_kernels::gpu::attention::GpuFlashAttention;
use perfledger_kernels::gpu::context::{self, GpuContext, GpuOptions};
use perfledger_kernels::gpu::decode::GpuDecodeAttention;
use perfledger_kernels::gpu::matmul::{self as gmm, GpuMatmul, Variant};
use perfledger_kernels::gpu::probe::{gpu_ceilings, GpuProbeOptions};
use perfledger_kernels::gpu::shaders::{CoopShape, Shader, Specialization};
use perfledger_kernels::verify::{verify_matmul, Verdict, VerifyOptions};
use perfledger_kernels::{
    AttentionProblem, DType, Kernel, MatmulProblem, Precision, Prepared, Problem, Registry,
    RegistryOptions, Support, Tensor,
};
use std::sync::{Arc, OnceLock};

/// The shared device, or `None` (with a notice) when there is no adapter and none is required.
fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Result<Arc<GpuContext>, perfledger_kernels::gpu::GpuError>> =
        OnceLock::new();
    let r = CTX.get_or_init(|| {
        context::configure(GpuOptions {
            allow_software: true,
            select: None,
        })?;
        context::global()
    });
    match r {
        Ok(c) => Some(c.clone()),
        Err(e) => {
            if std::env::var("PERFLEDGER_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("PERFLEDGER_REQUIRE_GPU=1 but no GPU adapter could be opened: {e}");
            }
            eprintln!("NOTICE: GPU tests skipped: {e} (install mesa-vulkan-drivers for lavapipe)");
            None
        }
    }
}

/// Whether the adapter can run decode's vector pass 1 (subgroups, unpack2x16float).
fn gpu_has_subgroups() -> bool {
    gpu().is_some_and(|c| {
        c.has(wgpu::Features::SUBGROUP)
            && c.adapter
                .get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32)
    })
}

fn inputs(p: &Problem, dtype: DType, seed: u64) -> Vec<Arc<Tensor>> {
    p.input_lens()
        .into_iter()
        .enumerate()
        .map(|(i, n)| Arc::new(Tensor::random(dtype, n, seed * 31 + i as u64)))
        .collect()
}

fn run_kernel(k: &dyn Kernel, p: &Problem, ins: &[Arc<Tensor>]) -> Tensor {
    let id = k.identity().id();
    assert_eq!(k.supports(p), Support::Yes, "{id} on {p}");
    let mut prep = k
        .prepare(p, ins)
        .unwrap_or_else(|e| panic!("{id} {p}: {e}"));
    prep.poison().unwrap();
    prep.run().unwrap_or_else(|e| panic!("{id} {p}: {e}"));
    prep.output().unwrap()
}

fn matmul_shapes() -> Vec<MatmulProblem> {
    vec![
        MatmulProblem::new(1, 1, 1),
        MatmulProblem::new(17, 17, 17),
        MatmulProblem::new(200, 300, 129),
        // Batched, B stored transposed, padded leading dimensions, odd n.
        MatmulProblem::new(33, 65, 40)
            .transposed_b()
            .with_batch(2)
            .with_leading_dims(41, 43, 67),
        // GEMV-like.
        MatmulProblem::new(1, 77, 130),
    ]
}

fn check_matmul(k: &GpuMatmul, shapes: &[MatmulProblem]) {
    let id = k.identity().id();
    for (s, p) in shapes.iter().enumerate() {
        let prob = Problem::Matmul(*p);
        let ins = inputs(&prob, k.precision.input, s as u64 + 1);
        let out = run_kernel(k, &prob, &ins);
        assert_matmul_verifies(&id, k, p, &ins, &out);
    }
}

/// The output of matmul kernel `k` on `p` passes verification (printing error / bound).
fn assert_matmul_verifies(
    id: &str,
    k: &GpuMatmul,
    p: &MatmulProblem,
    ins: &[Arc<Tensor>],
    out: &Tensor,
) {
    let v = verify_matmul(
        p,
        k.precision,
        &ins[0],
        &ins[1],
        out,
        &VerifyOptions::default(),
    );
    assert_eq!(
        v.verdict,
        Verdict::Pass,
        "{id} {p}: error {:e} > bound {:e}: {:?}",
        v.error,
        v.bound,
        v.detail
    );
    println!("{id} {p}: error/bound {:.3}", v.error / v.bound);
}

#[test]
fn matmul_every_variant_and_dtype_verifies() {
    let Some(_ctx) = gpu() else { return };
    let shapes = matmul_shapes();
    for d in DType::ALL {
        for v in [Variant::Naive, Variant::Tiled] {
            check_matmul(&GpuMatmul::new(v, Precision::same(d)), &shapes);
        }
    }
}

/// Tile configurations of the tuning space other than the default, covering every value of each
/// tile parameter (tm/tn 4 and 8, bk 8/16, rectangular blocks, single and double-buffered
/// tiles) and the trusted module without runtime checks: each verifies on the odd shapes (1, 17, 200×300×129, B transposed, batched,
/// padded) at f32 and at packed bf16 output (whole-word stores at the edges). Five pipelines per
/// dtype on lavapipe.
#[test]
fn tiled_tuning_configurations_verify_on_odd_shapes() {
    use perfledger_kernels::gpu::tune::{MatmulConfig, TiledConfig, TILED_SOFTWARE};
    let Some(ctx) = gpu() else { return };
    let shapes = [
        MatmulProblem::new(1, 1, 1),
        MatmulProblem::new(17, 17, 17),
        MatmulProblem::new(200, 300, 129),
        MatmulProblem::new(33, 65, 40)
            .transposed_b()
            .with_batch(2)
            .with_leading_dims(41, 43, 67),
    ];
    let t = |bm, bn, bk, tm, tn, double_buf| TiledConfig {
        bm,
        bn,
        bk,
        tm,
        tn,
        double_buf,
    };
    let configs = [
        (t(32, 32, 8, 4, 4, true), true),
        (t(64, 128, 16, 8, 4, false), true),
        (t(128, 64, 16, 4, 8, true), true),
        (TILED_SOFTWARE, false),
    ];
    for (tiles, checks) in configs {
        assert!(tiles.illegal(&ctx.limits).is_none(), "{tiles:?}");
        for d in [DType::F32, DType::BF16] {
            let k = GpuMatmul::new(Variant::Tiled, Precision::same(d))
                .with_config(MatmulConfig::Tiled { tiles, checks });
            check_matmul(&k, &shapes);
        }
    }
}

/// The patched-SPIR-V passthrough path (naga in-process → SPIR-V → barrier semantics patched →
/// `create_shader_module_passthrough` with a layout derived from the module's bindings) builds
/// and computes correctly on this adapter: `tiled` through it verifies like through WGSL. (The
/// patch itself changes only Vulkan-memory-model modules, i.e. the coop ones, which lavapipe
/// cannot run; `tiled` exercises everything else of the path.)
#[test]
fn patched_spirv_passthrough_pipelines_verify() {
    use perfledger_kernels::gpu::tune::TILED_SOFTWARE;
    let Some(ctx) = gpu() else { return };
    if !ctx
        .report
        .features
        .iter()
        .any(|f| f == "PASSTHROUGH_SHADERS")
    {
        println!(
            "{}: no PASSTHROUGH_SHADERS, path not tested",
            ctx.report.name
        );
        return;
    }
    for d in [DType::F32, DType::BF16] {
        let k = GpuMatmul::new(Variant::Tiled, Precision::same(d));
        let spec = gmm::tiled_spec(d, d, TILED_SOFTWARE, true).patched_spirv(true);
        for p in [
            MatmulProblem::new(17, 17, 17),
            MatmulProblem::new(200, 300, 129),
            MatmulProblem::new(33, 65, 40).transposed_b().with_batch(2),
        ] {
            let prob = Problem::Matmul(p);
            let ins = inputs(&prob, d, 5);
            let mut prep = k
                .prepare_with_spec(ctx.clone(), &p, &ins, &spec)
                .unwrap_or_else(|e| panic!("{d} {p}: {e}"));
            prep.poison().unwrap();
            prep.run().unwrap();
            let out = prep.output().unwrap();
            assert_matmul_verifies(&format!("patched {d}"), &k, &p, &ins, &out);
        }
    }
}

#[test]
fn matmul_widening_output_verifies() {
    let Some(_ctx) = gpu() else { return };
    let shapes = [
        MatmulProblem::new(17, 31, 45),
        MatmulProblem::new(200, 300, 129),
    ];
    for d in [DType::F16, DType::BF16] {
        check_matmul(
            &GpuMatmul::new(Variant::Tiled, Precision::widening(d)),
            &shapes,
        );
    }
}

#[test]
fn tiled_matmul_at_tile_multiples_and_k_remainders() {
    let Some(_ctx) = gpu() else { return };
    // Exactly one tile, several tiles with a K remainder, trans_b with an odd K.
    let shapes = [
        MatmulProblem::new(64, 64, 16),
        MatmulProblem::new(128, 192, 100),
        MatmulProblem::new(65, 66, 33).transposed_b(),
    ];
    check_matmul(
        &GpuMatmul::new(Variant::Tiled, Precision::same(DType::F32)),
        &shapes,
    );
}

/// Float64 attention reference from the stored inputs: O[b, h, i, :] and max_j |V| per row.
fn attention_ref(p: &AttentionProblem, q: &Tensor, k: &Tensor, v: &Tensor) -> Vec<f64> {
    let (q, k, v) = (q.to_f64(), k.to_f64(), v.to_f64());
    let d = p.head_dim;
    let mut out = vec![0.0; p.q_len_elems()];
    for b in 0..p.batch {
        for h in 0..p.q_heads {
            let kvh = h / p.group();
            for i in 0..p.q_len {
                let qr = &q[((b * p.q_heads + h) * p.q_len + i) * d..][..d];
                let n = p.keys_for_query(i);
                let base = (b * p.kv_heads + kvh) * p.kv_len * d;
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        let kr = &k[base + j * d..][..d];
                        qr.iter().zip(kr).map(|(a, b)| a * b).sum::<f64>() * p.scale as f64
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let l: f64 = w.iter().sum();
                let o = &mut out[((b * p.q_heads + h) * p.q_len + i) * d..][..d];
                for (j, wj) in w.iter().enumerate() {
                    for (od, vd) in o.iter_mut().zip(&v[base + j * d..][..d]) {
                        *od += wj / l * vd;
                    }
                }
            }
        }
    }
    out
}

#[test]
fn flash_attention_every_dtype_causal_gqa_verifies() {
    let Some(_ctx) = gpu() else { return };
    let shapes = [
        // GQA, causal, q shorter than kv (end-aligned mask), q not a multiple of the block.
        AttentionProblem::new(1, 4, 2, 17, 33, 64).causal(true),
        // Batched, MHA, non-causal, q spans two query blocks.
        AttentionProblem::new(2, 2, 2, 40, 40, 64),
        // Decode-style: one query row, MQA.
        AttentionProblem::new(1, 4, 1, 1, 50, 64).causal(true),
        // Square causal: the first row sees one key.
        AttentionProblem::new(1, 2, 2, 35, 35, 64).causal(true),
    ];
    // The adapter's default entry, and each of the two entries forced.
    for (d, k) in DType::ALL.into_iter().flat_map(|d| {
        [
            (d, GpuFlashAttention::new(d)),
            (d, GpuFlashAttention::new(d).rows_only()),
            (d, GpuFlashAttention::new(d).tiled_only()),
        ]
    }) {
        let mut all = shapes.to_vec();
        if d == DType::BF16 {
            // Odd head_dim: packed bf16 output rows are padded and unpadded.
            all.push(AttentionProblem::new(1, 3, 3, 9, 20, 17).causal(true));
        }
        for (s, p) in all.iter().enumerate() {
            let prob = Problem::Attention(*p);
            let ins = inputs(&prob, d, 100 + s as u64);
            let out = run_kernel(&k, &prob, &ins).to_f64();
            let reference = attention_ref(p, &ins[0], &ins[1], &ins[2]);
            // |O| ≤ max|V| ≤ 1; f32 accumulation over kv_len keys and head_dim products, one
            // rounding to the output type.
            let u32_ = DType::F32.unit_roundoff();
            let bound = 4.0 * (d.unit_roundoff() + (p.kv_len + p.head_dim) as f64 * u32_);
            let mut worst = 0f64;
            for (i, (o, r)) in out.iter().zip(&reference).enumerate() {
                assert!(o.is_finite(), "{} {p}: non-finite output at {i}", d);
                worst = worst.max((o - r).abs());
            }
            assert!(
                worst <= bound,
                "{d} {p}: max error {worst:e} > bound {bound:e}"
            );
            println!("attention {d} {p}: max error {worst:.2e} (bound {bound:.2e})");
        }
    }
}

fn flash_verdict(
    k: &GpuFlashAttention,
    p: &AttentionProblem,
    ins: &[Arc<Tensor>],
) -> perfledger_kernels::verify::Verification {
    use perfledger_kernels::gpu::attention::FlashConfig;
    // Which entry must have run: the forced one, else the adapter's default (no tune cache in
    // tests): a tiling on a software adapter, the row entry on a GPU.
    let tiled = if k.rows_only {
        Some(false)
    } else if k.tiled_only {
        Some(true)
    } else {
        gpu()
            .and_then(|ctx| FlashConfig::default_for(p.head_dim, ctx.report.software, &ctx.limits))
            .map(|c| matches!(c, FlashConfig::Tiled(_)))
    };
    attention_verdict(k, p, ins, tiled.map(|t| ("tiled", t)))
}

/// Prepare, check which entry ran (`param` is 1 when `expect`, if given), run from a poisoned
/// output, and verify as every attention row.
fn attention_verdict(
    k: &dyn Kernel,
    p: &AttentionProblem,
    ins: &[Arc<Tensor>],
    entry: Option<(&str, bool)>,
) -> perfledger_kernels::verify::Verification {
    let prob = Problem::Attention(*p);
    let id = k.identity().id();
    assert_eq!(k.supports(&prob), Support::Yes, "{id} on {p}");
    let mut prep = k
        .prepare(&prob, ins)
        .unwrap_or_else(|e| panic!("{id} {p}: {e}"));
    if let Some((param, expect)) = entry {
        assert_eq!(
            prep.chosen_params().get(param).and_then(|v| v.as_u64()),
            Some(u64::from(expect)),
            "{id} {p}: {param}"
        );
    }
    prep.poison().unwrap();
    prep.run().unwrap_or_else(|e| panic!("{id} {p}: {e}"));
    let out = prep.output().unwrap();
    perfledger_kernels::verify::verify_problem(
        &prob,
        k.identity().precision,
        ins,
        &out,
        &VerifyOptions::default(),
    )
}

/// The register-tiled flash entry on a covering set (not the cross product: lavapipe runs at a
/// few GFLOP/s): causal and not, GQA 1/4/8 (and 2), head_dim 64/80/128/256, seq 1/17/300,
/// q_len < kv_len (end-aligned mask), batched, logits of magnitude 1e4. Verified as every
/// attention row: float64 reference from the rounded inputs, bound 2 × naive + 4·u_out.
#[test]
fn flash_tiled_verifies_on_a_covering_set() {
    let Some(_ctx) = gpu() else { return };
    let shapes = [
        AttentionProblem::new(1, 4, 4, 17, 17, 64).causal(true),
        AttentionProblem::new(1, 8, 2, 1, 300, 80),
        AttentionProblem::new(1, 8, 1, 300, 300, 128).causal(true),
        AttentionProblem::new(1, 4, 2, 40, 300, 256).causal(true),
        AttentionProblem::new(2, 4, 4, 17, 33, 64),
    ];
    for d in DType::ALL {
        let k = GpuFlashAttention::new(d).tiled_only();
        for (s, p) in shapes.iter().enumerate() {
            let ins = inputs(&Problem::Attention(*p), d, 500 + s as u64);
            let v = flash_verdict(&k, p, &ins);
            assert_eq!(v.verdict, Verdict::Pass, "{d} {p}: {v:?}");
            println!("flash tiled {d} {p}: error/bound {:.3}", v.error / v.bound);
        }
        if d != DType::F32 {
            let p = AttentionProblem::new(1, 8, 2, 33, 65, 64).causal(true);
            let ins = vec![
                hostile(d, p.q_len_elems(), 1),
                hostile(d, p.kv_len_elems(), 2),
                Arc::new(Tensor::random(d, p.kv_len_elems(), 3)),
            ];
            let v = flash_verdict(&k, &p, &ins);
            assert_eq!(v.verdict, Verdict::Pass, "{d} {p} large logits: {v:?}");
        }
    }
}

/// Mutation tests of the tiled flash entry: a row seeing one key past its causal end, a GQA
/// group reading the wrong KV head, O not rescaled when a row's max grows — each fails
/// verification (causal, two KV heads, several key tiles, so each mutant changes the result).
#[test]
fn flash_tiled_mutants_fail_verification() {
    use perfledger_kernels::gpu::attention::FlashMutant;
    let Some(_ctx) = gpu() else { return };
    let p = AttentionProblem::new(1, 4, 2, 40, 100, 64).causal(true);
    for d in [DType::F32, DType::BF16] {
        let ins = inputs(&Problem::Attention(p), d, 91);
        assert_eq!(
            flash_verdict(&GpuFlashAttention::new(d).tiled_only(), &p, &ins).verdict,
            Verdict::Pass
        );
        for m in [
            FlashMutant::MaskOffByOne,
            FlashMutant::WrongKvHead,
            FlashMutant::NoRescale,
        ] {
            let v = flash_verdict(&GpuFlashAttention::mutant(d, m), &p, &ins);
            assert_eq!(v.verdict, Verdict::Fail, "{m:?} {d}: {v:?}");
        }
    }
}

/// The cooperative-matrix flash kernel: on an adapter without cooperative matrices (lavapipe) it
/// is unsupported, saying why, and cannot be prepared; on one with them, where its device
/// self-check passes, it verifies on a covering set at multiples of the tile (causal and not,
/// GQA 1/2/4/8, head_dim 64/80/128/256, q_len < kv_len), and shapes off the tile are refused
/// (the SIMT kernel takes them). Where the self-check fails, the reason is printed and the
/// kernel stays unsupported: a failure to fix on that adapter, never a timed row.
#[test]
fn coop_flash_is_gated_by_the_adapter_and_its_self_check() {
    use perfledger_kernels::gpu::flash_coop::GpuCoopFlashAttention;
    let Some(ctx) = gpu() else { return };
    let k = GpuCoopFlashAttention::default();
    let p = AttentionProblem::new(1, 4, 2, 64, 96, 64).causal(true);
    let prob = Problem::Attention(p);
    let ins = inputs(&prob, DType::F16, 3);
    let Some(shape) = gmm::coop_shape(&ctx) else {
        let Support::No(why) = k.supports(&prob) else {
            panic!("coop flash must be unsupported on {}", ctx.report.name)
        };
        assert!(why.reason.contains("cooperative-matrix"), "{why}");
        assert!(k.prepare(&prob, &ins).is_err());
        return;
    };
    let t = shape.t as usize;
    match k.supports(&prob) {
        Support::No(why) => {
            println!("coop flash unsupported on {}: {why}", ctx.report.name);
            assert!(
                why.reason.contains("self-check") || why.reason.contains("subgroup"),
                "{why}"
            );
        }
        Support::Yes => {
            for p in [
                p,
                AttentionProblem::new(1, 8, 1, 2 * t, 8 * t, 128),
                AttentionProblem::new(2, 4, 4, 4 * t, 4 * t, 80).causal(true),
                AttentionProblem::new(1, 8, 2, 2 * t, 6 * t, 256).causal(true),
            ] {
                let ins = inputs(&Problem::Attention(p), DType::F16, 600);
                let v = attention_verdict(&k, &p, &ins, None);
                assert_eq!(v.verdict, Verdict::Pass, "coop flash {p}: {v:?}");
                println!("coop flash {p}: error/bound {:.3}", v.error / v.bound);
            }
            let off = Problem::Attention(AttentionProblem::new(1, 4, 4, t + 1, 2 * t, 64));
            assert!(matches!(k.supports(&off), Support::No(_)));
        }
    }
}

#[test]
fn device_timing_reports_timestamps_and_wall_clock() {
    let Some(ctx) = gpu() else { return };
    let k = GpuMatmul::new(Variant::Tiled, Precision::same(DType::F32));
    let prob = Problem::Matmul(MatmulProblem::new(64, 64, 64));
    let ins = inputs(&prob, DType::F32, 7);
    let mut prep = k.prepare(&prob, &ins).unwrap();
    prep.run().unwrap();
    let t = prep
        .time_device(3)
        .expect("GPU kernels time on the device")
        .unwrap();
    assert!(t.wall_s.is_finite() && t.wall_s > 0.0);
    if ctx.has_timestamps() {
        let d = t.device_s.expect("timestamps present on this adapter");
        assert!(d.is_finite() && d > 0.0);
    }
    // The timed iterations produced a correct result too.
    let out = prep.output().unwrap();
    let Problem::Matmul(p) = prob else {
        unreachable!()
    };
    let v = verify_matmul(
        &p,
        k.precision,
        &ins[0],
        &ins[1],
        &out,
        &VerifyOptions::default(),
    );
    assert_eq!(v.verdict, Verdict::Pass);
}

#[test]
fn validation_errors_fail_alone_and_the_device_survives() {
    let Some(ctx) = gpu() else { return };
    // An override the shader does not declare: a validation error caught by the error scope.
    let bad = Specialization::new(Shader::Probe, "copy_probe").override_("NO_SUCH_OVERRIDE", 1);
    let e = ctx
        .build_pipeline(&bad)
        .expect_err("invalid pipeline must fail");
    assert!(e.to_string().contains("creating pipeline"), "{e}");
    // The device still works afterwards.
    check_matmul(
        &GpuMatmul::new(Variant::Naive, Precision::same(DType::F32)),
        &[MatmulProblem::new(3, 5, 7)],
    );
}

#[test]
fn cooperative_matrix_path_is_gated_by_the_adapter() {
    let Some(ctx) = gpu() else { return };
    let k = GpuMatmul::new(Variant::Coop, Precision::same(DType::F16));
    let prob = Problem::Matmul(MatmulProblem::new(64, 64, 64));
    match gmm::coop_shape(&ctx) {
        None => {
            // lavapipe: no cooperative matrices. The kernel says why, and the host code gets as
            // far as pipeline creation, which the device refuses inside an error scope.
            let Support::No(why) = k.supports(&prob) else {
                panic!("coop must be unsupported on {}", ctx.report.name)
            };
            assert!(why.reason.contains("cooperative"), "{why}");
            let spec = gmm::coop_spec(
                CoopShape {
                    t: 16,
                    acc: DType::F32,
                },
                ctx.report.subgroup_min_size.max(1),
                gmm::CoopConvention::ALL[0],
                perfledger_kernels::gpu::tune::COOP_DEFAULT,
                true,
            );
            let e = ctx
                .build_pipeline(&spec)
                .expect_err("no coop on this device");
            println!("coop pipeline refused as expected: {e}");
            assert!(k.prepare(&prob, &inputs(&prob, DType::F16, 1)).is_err());
        }
        Some(shape) => {
            // A real cooperative-matrix adapter: the self-check finds the load/store convention,
            // then verify at multiples of the tile, both output types, B stored both ways.
            let conv = gmm::coop_convention(&ctx);
            println!("{}: coop {shape:?}, convention {conv:?}", ctx.report.name);
            assert!(conv.is_ok(), "{conv:?}");
            let t = shape.t as usize;
            check_matmul(
                &GpuMatmul::new(Variant::Coop, Precision::widening(DType::F16)),
                &[MatmulProblem::new(8 * t, 4 * t, 6 * t).with_batch(2)],
            );
            check_matmul(
                &k,
                &[
                    MatmulProblem::new(4 * t, 4 * t, 4 * t),
                    MatmulProblem::new(2 * t, 6 * t, 3 * t).transposed_b(),
                ],
            );
            assert!(matches!(
                k.supports(&Problem::Matmul(MatmulProblem::new(17, 17, 17))),
                Support::No(_)
            ));
        }
    }
}

#[test]
fn oversized_problems_are_refused_before_allocation_naming_the_limit() {
    let Some(ctx) = gpu() else { return };
    let limit = ctx.limits.max_storage_buffer_binding_size;
    // A with limit/4 + 1 f32 elements... as k = that many, m = 1: one binding over the limit.
    let k = (limit / 4 + 16) as usize;
    let p = Problem::Matmul(MatmulProblem::new(1, 1, k));
    let kern = GpuMatmul::new(Variant::Naive, Precision::same(DType::F32));
    match kern.supports(&p) {
        Support::No(why) => assert!(
            why.reason.contains("max_storage_buffer_binding_size")
                || why.reason.contains("max_buffer_size")
                || why.reason.contains("u32"),
            "{why}"
        ),
        Support::Yes => panic!("a {limit}-byte binding limit must refuse {k} f32 elements"),
    }
    let att = GpuFlashAttention::new(DType::F16);
    let big_d = Problem::Attention(AttentionProblem::new(1, 1, 1, 4, 4, 512));
    assert!(matches!(att.supports(&big_d), Support::No(_)));
}

#[test]
fn registry_lists_gpu_kernels_with_ids() {
    let reg = Registry::new(&RegistryOptions::default());
    let ids: Vec<String> = reg
        .kernels()
        .iter()
        .filter(|k| k.identity().backend == perfledger_kernels::Backend::Gpu)
        .map(|k| k.identity().id())
        .collect();
    for want in [
        "matmul.gpu.tiled.wgsl.f16-f32-f16",
        "matmul.gpu.naive.wgsl.bf16-f32-bf16",
        "matmul.gpu.tiled.wgsl.bf16-f32-f32",
        "matmul.gpu.coop.wgsl.f16-f32-f16",
        "attention.gpu.flash.wgsl.f32-f32-f32",
    ] {
        assert!(ids.iter().any(|i| i == want), "missing {want}: {ids:?}");
    }
}

#[test]
fn probes_measure_fma_and_copy() {
    let Some(ctx) = gpu() else { return };
    let c = gpu_ceilings(&ctx, &GpuProbeOptions::quick());
    println!("{c:?}");
    assert!(
        c.fma_gflops.is_some_and(|g| g.is_finite() && g > 0.0),
        "{c:?}"
    );
    assert!(
        c.copy_gbs.is_some_and(|g| g.is_finite() && g > 0.0),
        "{c:?}"
    );
    if gmm::coop_shape(&ctx).is_none() {
        assert!(c.coop_gflops.is_none());
    }
}

#[test]
fn device_loss_fails_the_case_not_the_process() {
    let Some(shared) = gpu() else { return };
    // A separate device on the same adapter, destroyed under a prepared kernel.
    let ctx = Arc::new(
        GpuContext::create(&GpuOptions {
            allow_software: true,
            select: Some(context::GpuSelect::Index(shared.report.index)),
        })
        .expect("second device"),
    );
    let k = GpuMatmul::new(Variant::Naive, Precision::same(DType::F32));
    let prob = Problem::Matmul(MatmulProblem::new(3, 5, 7));
    let ins = inputs(&prob, DType::F32, 3);
    let mut prep = k.prepare_on(ctx.clone(), &prob, &ins).unwrap();
    prep.run().unwrap();
    ctx.device.destroy();
    let r = prep.run().and_then(|_| prep.output().map(|_| ()));
    assert!(r.is_err(), "a run on a destroyed device must fail");
    println!("after destroy: {}", r.unwrap_err());
    // The shared device is untouched.
    check_matmul(&k, &[MatmulProblem::new(3, 5, 7)]);
}

/// Uniform ±[60, 120] values (f16/bf16-representable): logits of magnitude ~1e4 with head_dim 64.
fn hostile(dtype: DType, len: usize, seed: u64) -> Arc<Tensor> {
    Arc::new(common::large_magnitude(dtype, len, seed))
}

fn decode_verdict(
    k: &GpuDecodeAttention,
    p: &AttentionProblem,
    ins: &[Arc<Tensor>],
) -> perfledger_kernels::verify::Verification {
    // Which pass 1 ran: the 16-byte vector pass wherever the adapter has subgroups and the rows
    // are whole vectors, else (or when asked) the scalar one.
    let whole_vectors = p
        .head_dim
        .is_multiple_of(16 / k.precision.input.size_bytes());
    let want_vec =
        !k.scalar_only && k.config.is_none_or(|c| c.vec) && whole_vectors && gpu_has_subgroups();
    attention_verdict(k, p, ins, Some(("vec", want_vec)))
}

/// The split-KV decode kernel on a covering set (not the cross product; lavapipe runs at a few
/// GFLOP/s): GQA groups 1, 4, 8; head_dim 64, 80, 128, 256 (and 17 for packed bf16 rows); kv_len
/// 1, 17, 300 and 700 (one split, one partial split, several splits with a short last one);
/// causal and not (one query row sees every key either way); batched; logits of magnitude 1e4.
/// Verified as every attention row: float64 reference from the rounded inputs, bound 2 × naive +
/// 4·u_out.
#[test]
fn decode_split_kv_verifies_on_a_covering_set() {
    let Some(_ctx) = gpu() else { return };
    let shapes = [
        AttentionProblem::new(1, 4, 4, 1, 1, 64),
        AttentionProblem::new(1, 8, 2, 1, 17, 80).causal(true),
        AttentionProblem::new(2, 8, 1, 1, 300, 128),
        AttentionProblem::new(1, 32, 4, 1, 700, 128).causal(true),
        AttentionProblem::new(1, 4, 1, 1, 300, 256),
    ];
    for d in DType::ALL {
        let k = GpuDecodeAttention::new(d);
        let mut all = shapes.to_vec();
        if d == DType::BF16 {
            all.push(AttentionProblem::new(1, 6, 3, 1, 45, 17));
        }
        for (s, p) in all.iter().enumerate() {
            let prob = Problem::Attention(*p);
            let ins = inputs(&prob, d, 300 + s as u64);
            let v = decode_verdict(&k, p, &ins);
            assert_eq!(v.verdict, Verdict::Pass, "{d} {p}: {v:?}");
            println!("decode {d} {p}: error/bound {:.3}", v.error / v.bound);
        }
        if d != DType::F32 {
            let p = AttentionProblem::new(1, 8, 2, 1, 600, 64);
            let ins = vec![
                hostile(d, p.q_len_elems(), 1),
                hostile(d, p.kv_len_elems(), 2),
                Arc::new(Tensor::random(d, p.kv_len_elems(), 3)),
            ];
            let v = decode_verdict(&k, &p, &ins);
            assert_eq!(v.verdict, Verdict::Pass, "{d} {p} large logits: {v:?}");
        }
    }
    // The scalar pass 1 (adapters without subgroups, rows that are not whole 16-byte vectors) on
    // the same covering shapes where the vector pass ran above.
    for d in DType::ALL {
        let k = GpuDecodeAttention::new(d).scalar_only();
        for (s, p) in shapes.iter().enumerate() {
            let ins = inputs(&Problem::Attention(*p), d, 300 + s as u64);
            let v = decode_verdict(&k, p, &ins);
            assert_eq!(v.verdict, Verdict::Pass, "scalar {d} {p}: {v:?}");
        }
    }
    // Other configurations of the tuning space: shorter and longer splits, other workgroup sizes.
    use perfledger_kernels::gpu::decode::DecodeConfig;
    for (chunk, wg) in [(64, 32), (128, 256), (1024, 128)] {
        let k = GpuDecodeAttention::new(DType::BF16).with_config(DecodeConfig {
            chunk,
            wg,
            vec: true,
        });
        for p in [
            AttentionProblem::new(1, 8, 2, 1, 700, 64),
            AttentionProblem::new(1, 4, 4, 1, 17, 80),
        ] {
            let ins = inputs(&Problem::Attention(p), DType::BF16, 9);
            let v = decode_verdict(&k, &p, &ins);
            assert_eq!(v.verdict, Verdict::Pass, "chunk {chunk} wg {wg} {p}: {v:?}");
        }
    }
    // Not a decode shape: unsupported, saying why.
    let k = GpuDecodeAttention::new(DType::F16);
    let Support::No(why) = k.supports(&Problem::Attention(AttentionProblem::new(
        1, 4, 4, 2, 8, 64,
    ))) else {
        panic!("q_len 2 must be unsupported")
    };
    assert!(why.reason.contains("q_len = 1"), "{why}");
}

/// Mutation tests: a decode kernel that reads the wrong KV head for a GQA group, or combines the
/// splits without rescaling them to the common maximum, fails verification (several splits, two
/// KV heads, so each mutant changes the result).
#[test]
fn decode_mutants_fail_verification() {
    use perfledger_kernels::gpu::decode::DecodeMutant;
    let Some(_ctx) = gpu() else { return };
    let p = AttentionProblem::new(1, 8, 2, 1, 700, 64);
    for d in [DType::F32, DType::BF16] {
        let prob = Problem::Attention(p);
        let ins = inputs(&prob, d, 77);
        // Both passes 1: the vector one (where it runs) and the scalar one.
        for scalar in [false, true] {
            let with = |k: GpuDecodeAttention| if scalar { k.scalar_only() } else { k };
            assert_eq!(
                decode_verdict(&with(GpuDecodeAttention::new(d)), &p, &ins).verdict,
                Verdict::Pass
            );
            for m in [DecodeMutant::WrongKvHead, DecodeMutant::NoRescale] {
                let v = decode_verdict(&with(GpuDecodeAttention::mutant(d, m)), &p, &ins);
                assert_eq!(v.verdict, Verdict::Fail, "{m:?} {d} scalar {scalar}: {v:?}");
            }
        }
    }
}
