//! Report arithmetic pinned on hand-computed values, ranking rules, projections, break-even
//! prices, the LLM estimate, and the HTML's structure (charts, no external loads, escaping).

use perfledger::env::{CpuInfo, Environment, GpuInfo, HarnessInfo, InstanceInfo, PriceInfo};
use perfledger::normalize::{self, Bound, Interval, Workload};
use perfledger::report::{self, html, Input, Options, Target};
use perfledger::runfile::{
    AttentionShape, Device, Flops, KernelRef, MatmulShape, MeasuredCeilings, Provenance, Row,
    RowKind, RowStats, RowVerification, RunConfig, RunFile, Shape, Status, SuiteRef, Verdict,
};
use perfledger::specs::{parse_date, Database, LoadOptions, SpecDType};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::kernel::{Backend, Op};
use perfledger_kernels::ComputeUnit;
use perfledger_kernels::{DType, Precision};
use std::collections::BTreeMap;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn db() -> Database {
    Database::embedded(&LoadOptions {
        as_of: parse_date("2026-11-26").unwrap(),
        max_price_age_days: 365,
    })
    .unwrap()
}

fn matmul(m: u64, n: u64, k: u64) -> Shape {
    Shape::Matmul(MatmulShape {
        batch: 1,
        m,
        n,
        k,
        trans_b: false,
    })
}

fn bf16() -> Precision {
    Precision::same(DType::BF16)
}

fn pass() -> RowVerification {
    RowVerification {
        method: "full".into(),
        samples: Some(64),
        error: Some(1e-4),
        bound: Some(1e-2),
        verdict: Some(Verdict::Pass),
        detail: None,
    }
}

/// An `ok` measured row whose median time is exactly `median_s` (CI ±1%).
fn row(shape: Shape, precision: Precision, median_s: f64, device: Device, backend: Backend) -> Row {
    let mut r = Row::new(RowKind::Measured, shape, precision, device, Status::Error);
    let family = match (shape.op(), backend) {
        (Op::Matmul, Backend::Cpu) => "matmul.cpu.packed",
        (Op::Matmul, Backend::Gpu) => "matmul.gpu.tiled",
        (Op::Attention, Backend::Cpu) => "attention.cpu.flash",
        (Op::Attention, Backend::Gpu) => "attention.gpu.flash",
    };
    let variant = if backend == Backend::Cpu {
        "avx2fma"
    } else {
        "wgsl"
    };
    r.kernel = Some(KernelRef {
        family: family.into(),
        variant: variant.into(),
        unit: Some(if backend == Backend::Cpu {
            ComputeUnit::CpuFma(Isa::Avx2fma)
        } else {
            ComputeUnit::GpuSimt
        }),
        params: Default::default(),
    });
    r.id = Some(format!("{family}.{variant}.{precision}"));
    r.backend = Some(backend);
    let work = shape.problem().unwrap().work(precision);
    r.flops = Some(Flops::exact(work.flops));
    r.min_bytes = Some(work.min_bytes);
    r.samples_s = vec![median_s; 12];
    r.stats = Some(RowStats {
        median_s,
        min_s: median_s,
        p10_s: median_s,
        p90_s: median_s,
        mad_s: 0.0,
        ci95_s: [median_s * 0.99, median_s * 1.01],
    });
    r.verification = Some(pass());
    r.set_status(Status::Ok, None).unwrap();
    r
}

fn cpu_device() -> Device {
    Device::named("Test CPU (2 threads)")
}

fn environment(price: Option<f64>, instance: Option<&str>) -> Environment {
    Environment {
        hostname: Some("testhost".into()),
        cpu: CpuInfo {
            model: Some("Test CPU".into()),
            physical_cores: Some(2),
            vcpus: Some(2),
            smt: Some(1),
            threads_used: 2,
            ..CpuInfo::default()
        },
        instance: instance.map(|t| InstanceInfo {
            provider: None,
            instance_type: Some(t.into()),
            region: None,
            pricing_model: None,
            detected_by: Some("cli".into()),
            ..Default::default()
        }),
        price: price.map(|p| PriceInfo {
            usd_per_hour: p,
            source: Some("cli".into()),
            as_of: Some("2026-11-01".into()),
        }),
        ..Environment::default()
    }
}

fn run(environment: Environment, rows: Vec<Row>) -> RunFile {
    let mut r = RunFile::new(
        HarnessInfo::default(),
        environment,
        SuiteRef {
            name: "test".into(),
            source: None,
        },
        RunConfig::default(),
    );
    r.complete = true;
    r.results = rows;
    r
}

fn input(run: RunFile) -> Input {
    Input {
        file: "test.json".into(),
        run,
    }
}

fn targets(ids: &[&str]) -> Options {
    Options {
        targets: ids
            .iter()
            .map(|c| Target {
                chip: c.to_string(),
                offer: None,
            })
            .collect(),
        efficiency: None,
    }
}

#[test]
fn h100_bf16_4096_cube_ceiling() {
    let db = db();
    let h100 = db.accelerator("h100-sxm").unwrap();
    let shape = matmul(4096, 4096, 4096);
    let work = shape.problem().unwrap().work(bf16());
    let n = 4096f64;
    assert_eq!(work.flops as f64, 2.0 * n * n * n);
    let p = normalize::project(
        h100,
        &Workload {
            op: Op::Matmul,
            flops: work.flops,
            min_bytes: work.min_bytes,
            dtype: SpecDType::Bf16,
        },
        None,
    )
    .unwrap();
    // AI = 2n³ / (3 n² · 2 bytes) = n/3 ≈ 1365 FLOP/B: far right of H100's ridge (989/3.35 ≈ 295).
    assert!(close(p.intensity, n / 3.0));
    assert_eq!(p.bound, Bound::Compute);
    // The ceiling time is 2·4096³ / 989e12 s.
    assert!(
        close(p.ceiling_s, 2.0 * n * n * n / 989e12),
        "{}",
        p.ceiling_s
    );
    assert!(close(p.ceiling_gflops, 989_000.0));
    // Realistic from the published measured ceiling (794.5 TFLOP/s), labelled with its source.
    assert!(close(p.realistic_gflops.unwrap(), 794_500.0));
    assert!(close(p.realistic_s.unwrap(), 2.0 * n * n * n / 794.5e12));
    assert!(p.assumption.contains("upper bound") && p.assumption.contains("794.5"));
    // --efficiency replaces it, and says so.
    let e = normalize::project(
        h100,
        &Workload {
            op: Op::Matmul,
            flops: work.flops,
            min_bytes: work.min_bytes,
            dtype: SpecDType::Bf16,
        },
        Some(0.7),
    )
    .unwrap();
    assert!(close(e.realistic_gflops.unwrap(), 0.7 * 989_000.0));
    assert!(e.assumption.contains("--efficiency"));
}

#[test]
fn memory_bound_projection() {
    let db = db();
    let h100 = db.accelerator("h100-sxm").unwrap();
    // GEMV 1×4096×4096 bf16: 2·4096² FLOP over (4096 + 4096² + 4096)·2 bytes: memory-bound.
    let flops = 2 * 4096 * 4096u64;
    let bytes = (4096 + 4096 * 4096 + 4096) * 2u64;
    let p = normalize::project(
        h100,
        &Workload {
            op: Op::Matmul,
            flops,
            min_bytes: bytes,
            dtype: SpecDType::Bf16,
        },
        None,
    )
    .unwrap();
    assert_eq!(p.bound, Bound::Memory);
    assert!(close(p.ceiling_s, bytes as f64 / 3.35e12));
    assert!(close(
        p.ceiling_gflops,
        flops as f64 / bytes as f64 * 3350.0
    ));
    // The published matmul ceiling never lifts a memory-bound workload above its memory roof.
    assert!(close(p.realistic_gflops.unwrap(), p.ceiling_gflops));
}

#[test]
fn perf_per_dollar_and_break_even_on_a_small_synthetic_set() {
    // Two CPU runs of the same 1024³ bf16 matmul: run A at $0.50/h takes 20 ms, run B at $2/h
    // takes 10 ms. 2·1024³ = 2147483648 FLOP.
    let shape = matmul(1024, 1024, 1024);
    let flops = 2.0 * 1024f64.powi(3);
    let a = run(
        environment(Some(0.5), None),
        vec![row(shape, bf16(), 0.020, cpu_device(), Backend::Cpu)],
    );
    let b = run(
        environment(Some(2.0), None),
        vec![row(shape, bf16(), 0.010, cpu_device(), Backend::Cpu)],
    );
    let rep = report::build(
        &[input(a), input(b)],
        &db(),
        &targets(&["trn3", "h100-sxm"]),
    );
    assert_eq!(
        rep.workloads.len(),
        1,
        "several runs → one ranking per workload"
    );
    let w = &rep.workloads[0];
    assert_eq!(w.ranked_by, "GFLOP per $");
    assert_eq!(w.ranking.len(), 2);
    // A: 107.37 GFLOP/s at $0.50/h → 107.37·3600/0.5 = 773,094 GFLOP per $.
    // B: 214.75 GFLOP/s at $2.00/h → 386,547 GFLOP per $. A ranks first.
    let ga = flops / 0.020 / 1e9;
    let gb = flops / 0.010 / 1e9;
    let first = &rep.rows[w.ranking[0].row];
    let second = &rep.rows[w.ranking[1].row];
    assert_eq!(first.run, 0);
    let pa = first.price.as_ref().unwrap();
    assert!(close(pa.usd_per_hour, 0.5));
    assert_eq!(pa.share, "whole instance");
    assert!(close(pa.perf.gflop_per_usd.median, ga * 3600.0 / 0.5));
    assert!(close(pa.perf.gflops_per_usd_hour.median, ga / 0.5));
    // $ per PFLOP = 10⁶ / GFLOP per $.
    assert!(close(
        pa.perf.usd_per_pflop.median,
        1e6 / (ga * 3600.0 / 0.5)
    ));
    // The timing CI (±1% in time) is carried into GFLOP per $.
    assert!(close(
        pa.perf.gflop_per_usd.lo,
        flops / (0.020 * 1.01) / 1e9 * 3600.0 / 0.5
    ));
    assert!(close(
        pa.perf.gflop_per_usd.hi,
        flops / (0.020 * 0.99) / 1e9 * 3600.0 / 0.5
    ));
    assert!(close(
        second.price.as_ref().unwrap().perf.gflop_per_usd.median,
        gb * 3600.0 / 2.0
    ));
    assert_eq!(w.best_perf_per_dollar, Some(w.ranking[0].row));
    // Per used physical core (secondary): 2 threads on 2 cores → the whole $0.50.
    let pc = first.per_core.as_ref().unwrap();
    assert_eq!((pc.cores_used, pc.cores_total), (2, 2));
    assert!(close(pc.usd_per_hour, 0.5));

    // Break-even for Trainium3 (no price): from the ceiling, the most it could cost.
    let trn3 = w
        .projections
        .iter()
        .find(|p| p.chip == "aws-trainium3")
        .unwrap();
    assert_eq!(trn3.kind, RowKind::Projected);
    assert!(trn3.price.is_none());
    let proj = trn3.projection.as_ref().unwrap();
    assert!(proj.realistic_gflops.is_none());
    let be = trn3.break_even.as_ref().unwrap();
    assert_eq!(be.from, "ceiling");
    assert!(be.wording.contains("the most") && be.wording.contains("still match"));
    assert_eq!(be.versus_row, w.ranking[0].row);
    let best = ga * 3600.0 / 0.5;
    assert!(close(
        be.usd_per_chip_hour.median,
        proj.ceiling_gflops * 3600.0 / best
    ));
    // 1024³ bf16 on Trainium3: AI = 1024/3 ≈ 341 FLOP/B; 341.3 × 4900 GB/s = 1,672,533 GFLOP/s
    // is above the 671,000 peak, so the ceiling is compute: 671,000 × 3600 / 773,094 = $3,124.6.
    assert_eq!(proj.bound, Bound::Compute);
    assert!(close(proj.ceiling_gflops, 671_000.0));
    assert!(
        (be.usd_per_chip_hour.median - 3124.6).abs() < 0.1,
        "{}",
        be.usd_per_chip_hour.median
    );
    // Its CI comes from the best row's CI (flipped).
    assert!(be.usd_per_chip_hour.lo < be.usd_per_chip_hour.median);
    assert!(be.usd_per_chip_hour.hi > be.usd_per_chip_hour.median);

    // H100 (priced at $6.88/GPU-h, p5.48xlarge) gets perf per dollar at its ceiling and at its
    // realistic figure, and a break-even from the realistic figure.
    let h = w
        .projections
        .iter()
        .find(|p| p.chip == "nvidia-h100-sxm")
        .unwrap();
    let price = h.price.as_ref().unwrap();
    assert!(close(price.usd_per_chip_hour, 6.88));
    let hp = h.projection.as_ref().unwrap();
    assert!(close(
        h.ceiling_perf.as_ref().unwrap().gflop_per_usd.median,
        hp.ceiling_gflops * 3600.0 / 6.88
    ));
    let hb = h.break_even.as_ref().unwrap();
    assert_eq!(hb.from, "realistic");
    assert!(close(
        hb.usd_per_chip_hour.median,
        hp.realistic_gflops.unwrap() * 3600.0 / best
    ));
}

#[test]
fn the_measured_efficiency_is_never_carried_to_another_chip() {
    let shape = matmul(512, 512, 512);
    let proj = |secs: f64| {
        let r = run(
            environment(Some(1.0), None),
            vec![row(shape, bf16(), secs, cpu_device(), Backend::Cpu)],
        );
        let rep = report::build(&[input(r)], &db(), &targets(&["h100-sxm", "trn3"]));
        rep.workloads[0]
            .projections
            .iter()
            .map(|p| {
                let x = p.projection.as_ref().unwrap();
                (x.ceiling_gflops, x.realistic_gflops)
            })
            .collect::<Vec<_>>()
    };
    // Twice as fast here changes nothing in the projections.
    assert_eq!(proj(0.010), proj(0.005));
}

#[test]
fn gpu_share_of_an_instance_and_pci_matching() {
    // One H100 of a p5.48xlarge (matched by PCI id), priced from the offer: 1 of 8 GPUs.
    let mut env = environment(None, Some("p5.48xlarge"));
    env.gpus = vec![GpuInfo {
        index: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        vendor_id: Some(0x10de),
        device_id: Some(0x2330),
        ..GpuInfo::default()
    }];
    let mut dev = Device::named("NVIDIA H100 80GB HBM3");
    dev.gpu_index = Some(0);
    let shape = matmul(4096, 4096, 4096);
    let n = 4096f64;
    // Timed at exactly half the published bf16 peak.
    let secs = 2.0 * n * n * n / (0.5 * 989e12);
    let r = run(env, vec![row(shape, bf16(), secs, dev, Backend::Gpu)]);
    let rep = report::build(&[input(r)], &db(), &targets(&[]));
    let x = &rep.rows[0];
    assert_eq!(x.spec.as_ref().unwrap().id, "nvidia-h100-sxm");
    assert_eq!(x.spec.as_ref().unwrap().how, "PCI 10de:2330");
    let p = x.published.as_ref().unwrap();
    assert!(close(p.pct_of_peak, 50.0));
    assert_eq!(p.bound, Some(Bound::Compute));
    let price = x.price.as_ref().unwrap();
    assert_eq!(price.share, "1 of 8 GPUs");
    assert!(close(price.usd_per_hour, 6.88));
    assert_eq!(
        price.instance.offer.as_deref(),
        Some("aws-p5.48xlarge-on-demand-us-east-1")
    );
    assert!(x.per_core.is_none());
}

#[test]
fn cpu_instance_whole_price_and_per_core_secondary() {
    // c7i.2xlarge: $0.357/h, 8 vCPUs = 4 physical cores (SMT 2). A run on 2 threads uses 1 core.
    let mut env = environment(None, Some("c7i.2xlarge"));
    env.cpu.model = Some("Intel(R) Xeon(R) Platinum 8488C".into());
    env.cpu.physical_cores = Some(4);
    env.cpu.vcpus = Some(8);
    env.cpu.smt = Some(2);
    env.cpu.threads_used = 2;
    let shape = matmul(512, 512, 512);
    let r = run(
        env,
        vec![row(
            shape,
            Precision::same(DType::F32),
            0.002,
            cpu_device(),
            Backend::Cpu,
        )],
    );
    let rep = report::build(&[input(r)], &db(), &targets(&[]));
    let x = &rep.rows[0];
    assert_eq!(x.spec.as_ref().unwrap().id, "intel-spr-8488c-aws");
    let price = x.price.as_ref().unwrap();
    assert_eq!(price.share, "whole instance");
    assert!(close(price.usd_per_hour, 0.357));
    let pc = x.per_core.as_ref().unwrap();
    assert_eq!((pc.cores_used, pc.cores_total), (1, 4));
    assert!(close(pc.usd_per_hour, 0.357 / 4.0));
    // % of published peak: f32 on 1 core × 204.8 GFLOP/s.
    let g = 2.0 * 512f64.powi(3) / 0.002 / 1e9;
    let p = x.published.as_ref().unwrap();
    assert!(close(p.peak_gflops, 204.8));
    assert!(close(p.pct_of_peak, 100.0 * g / 204.8));
    // CPU entries have no published bandwidth: no published bound, never a guess.
    assert!(p.attainable_gflops.is_none());
}

#[test]
fn causal_attention_is_never_above_100_percent_of_peak() {
    // Causal prefill on an H100: useful FLOPs count only the unmasked pairs. A kernel that
    // computes the full (masked) square at the chip's peak rate shows about 50% of peak, never
    // 200%.
    let a = AttentionShape {
        batch: 1,
        q_heads: 32,
        kv_heads: 8,
        q_len: 2048,
        kv_len: 2048,
        head_dim: 128,
        causal: true,
        scale: 1.0 / 128f64.sqrt(),
    };
    let shape = Shape::Attention(a);
    let useful = shape.problem().unwrap().work(bf16()).flops as f64;
    let full = 4.0 * 128.0 * 2048.0 * 2048.0 * 32.0;
    assert!(close(useful, 4.0 * 128.0 * (2048.0 * 2049.0 / 2.0) * 32.0));
    let mut env = environment(None, None);
    env.gpus = vec![GpuInfo {
        index: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        vendor_id: Some(0x10de),
        device_id: Some(0x2330),
        ..GpuInfo::default()
    }];
    let mut dev = Device::named("NVIDIA H100 80GB HBM3");
    dev.gpu_index = Some(0);
    let secs = full / 989e12;
    let r = run(env, vec![row(shape, bf16(), secs, dev, Backend::Gpu)]);
    let rep = report::build(&[input(r)], &db(), &targets(&["h100-sxm"]));
    let p = rep.rows[0].published.as_ref().unwrap();
    assert!(p.pct_of_peak <= 100.0, "{}", p.pct_of_peak);
    assert!(close(p.pct_of_peak, 100.0 * useful / full));
    // The projection's ceiling is at most the peak too.
    let pr = rep.workloads[0].projections[0].projection.as_ref().unwrap();
    assert!(pr.ceiling_gflops <= 989_000.0);
    assert!(close(pr.ceiling_s * pr.ceiling_gflops * 1e9, useful));
}

#[test]
fn incorrect_rows_are_listed_never_ranked_never_show_a_speed() {
    let shape = matmul(256, 256, 256);
    let good = row(shape, bf16(), 0.001, cpu_device(), Backend::Cpu);
    // Faster, but it failed verification.
    let mut bad = row(shape, bf16(), 0.0001, cpu_device(), Backend::Cpu);
    bad.kernel.as_mut().unwrap().variant = "avx512f".into();
    bad.id = Some("matmul.cpu.packed.avx512f.bf16-f32-bf16".into());
    bad.verification.as_mut().unwrap().verdict = Some(Verdict::Fail);
    bad.set_status(Status::Incorrect, Some("error 3.2 above bound 0.01".into()))
        .unwrap();
    // An unverified peer row: shown, not ranked.
    let mut peer = row(shape, bf16(), 0.0005, cpu_device(), Backend::Cpu);
    peer.kind = RowKind::Peer;
    peer.kernel = None;
    peer.id = None;
    peer.backend = None;
    peer.verification = Some(RowVerification::none());
    peer.provenance = Some(Provenance {
        tool: Some("torch".into()),
        ..Provenance::default()
    });
    let r = run(environment(Some(1.0), None), vec![good, bad, peer]);
    let rep = report::build(&[input(r)], &db(), &targets(&["trn3"]));
    let w = &rep.workloads[0];
    assert_eq!(w.ranking.len(), 1);
    assert_eq!(
        rep.rows[w.ranking[0].row].kernel,
        "matmul.cpu.packed.avx2fma.bf16-f32-bf16"
    );
    assert_eq!(w.not_ranked, vec![1, 2]);
    let bad = &rep.rows[1];
    assert!(
        !bad.rankable && bad.gflops.is_none() && bad.price.is_none() && bad.published.is_none()
    );
    assert!(bad.not_ranked.as_deref().unwrap().starts_with("incorrect"));
    let peer = &rep.rows[2];
    assert!(!peer.rankable && peer.gflops.is_some());
    assert!(peer.not_ranked.as_deref().unwrap().contains("unverified"));
    // In every format the incorrect kernel's speed (2·256³ / 0.1 ms = 335.5 GFLOP/s) never
    // appears, and the break-even is against the verified row.
    let speed = "335.5";
    for text in [
        report::table::render(&rep),
        report::md::render(&rep),
        html::render(&rep, &db()),
    ] {
        assert!(!text.contains(speed), "incorrect speed printed");
        assert!(text.contains("incorrect"));
    }
    let csv = report::csv::render(&rep);
    let line = csv.lines().find(|l| l.contains("avx512f")).unwrap();
    assert!(line.contains(",incorrect,false,,"), "{line}");
    assert!(!line.contains("335.5"), "{line}");
    assert_eq!(w.projections[0].break_even.as_ref().unwrap().versus_row, 0);
}

#[test]
fn software_adapters_are_never_normalized_against_gpu_specs() {
    let mut env = environment(Some(3.0), None);
    env.gpus = vec![GpuInfo {
        index: 0,
        name: "llvmpipe (LLVM 15.0.7, 256 bits)".into(),
        vendor_id: Some(0x10005),
        device_id: Some(0),
        software: true,
        ..GpuInfo::default()
    }];
    let mut dev = Device::named("llvmpipe (LLVM 15.0.7, 256 bits)");
    dev.gpu_index = Some(0);
    dev.software = true;
    let r = run(
        env,
        vec![row(matmul(256, 256, 256), bf16(), 0.01, dev, Backend::Gpu)],
    );
    let rep = report::build(&[input(r)], &db(), &targets(&[]));
    let x = &rep.rows[0];
    assert!(x.spec.is_none() && x.published.is_none() && x.ceiling_gap.is_none());
    assert!(x.spec_na.as_deref().unwrap().contains("software adapter"));
    assert!(rep.runs[0].gpus[0]
        .no_match
        .as_deref()
        .unwrap()
        .contains("software"));
    // Even a software adapter claiming an H100's ids and name is not matched.
    let mut env = environment(None, None);
    env.gpus = vec![GpuInfo {
        index: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        vendor_id: Some(0x10de),
        device_id: Some(0x2330),
        software: true,
        ..GpuInfo::default()
    }];
    let mut dev = Device::named("NVIDIA H100 80GB HBM3");
    dev.gpu_index = Some(0);
    let r = run(
        env,
        vec![row(matmul(256, 256, 256), bf16(), 0.01, dev, Backend::Gpu)],
    );
    let rep = report::build(&[input(r)], &db(), &targets(&[]));
    assert!(rep.rows[0].published.is_none());
}

#[test]
fn no_match_means_na_never_a_guess() {
    let r = run(
        environment(None, None),
        vec![row(
            matmul(256, 256, 256),
            bf16(),
            0.001,
            cpu_device(),
            Backend::Cpu,
        )],
    );
    let rep = report::build(&[input(r)], &db(), &targets(&[]));
    let x = &rep.rows[0];
    assert!(x.spec.is_none() && x.published.is_none() && x.price.is_none());
    assert!(x.spec_na.as_deref().unwrap().contains("no spec entry"));
    let text = report::table::render(&rep);
    assert!(text.contains("n/a"));
}

#[test]
fn trainium3_is_projected_with_assumption_and_break_even() {
    let r = run(
        environment(Some(0.10264), None),
        vec![row(
            matmul(512, 512, 512),
            bf16(),
            0.003,
            cpu_device(),
            Backend::Cpu,
        )],
    );
    let rep = report::build(&[input(r)], &db(), &report::Options::default());
    // The default targets, in order.
    let chips: Vec<&str> = rep.targets.iter().map(|t| t.chip.as_str()).collect();
    assert_eq!(chips, report::DEFAULT_TARGETS.to_vec());
    let t3 = rep
        .targets
        .iter()
        .find(|t| t.chip == "aws-trainium3")
        .unwrap();
    assert!(t3.price.is_none());
    assert!(t3.note.as_deref().unwrap().contains("break-even"));
    let p = rep.workloads[0]
        .projections
        .iter()
        .find(|p| p.chip == "aws-trainium3")
        .unwrap();
    assert_eq!(p.kind, RowKind::Projected);
    let pr = p.projection.as_ref().unwrap();
    assert!(pr.assumption.contains("upper bound") && pr.assumption.contains("671"));
    // Conflicting bandwidths: the assumption says the upper value was used.
    assert!(pr.assumption.contains("4.7–4.9") && pr.from_range);
    let be = p.break_even.as_ref().unwrap();
    assert!(be.usd_per_chip_hour.median > 0.0);
    // Every format shows it as projected, with its assumption and the break-even.
    let text = report::table::render(&rep);
    // The terminal may wrap the chip cell: "(projected)" on its line or the next.
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .windows(2)
            .any(|w| w[0].trim_start().starts_with("Trainium3")
                && (w[0].contains("(projected)") || w[1].trim_start().starts_with("(projected)"))),
        "{text}"
    );
    assert!(text.contains("projected · Trainium3: roofline ceiling, an upper bound"));
    assert!(text.contains("break-even · Trainium3"));
    let md = report::md::render(&rep);
    assert!(md.contains("Trainium3 (projected)") && md.contains("break-even"));
    let csv = report::csv::render(&rep);
    assert!(csv.lines().any(|l| l.starts_with("projected,")
        && l.contains("aws-trainium3")
        && l.contains("ceiling")));
    let json: serde_json::Value = serde_json::to_value(&rep).unwrap();
    let jp = json["workloads"][0]["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["chip"] == "aws-trainium3")
        .unwrap();
    assert_eq!(jp["kind"], "projected");
    assert_eq!(jp["break_even"]["from"], "ceiling");
    assert!(jp["price"].is_null());
}

#[test]
fn target_syntax() {
    let db = db();
    let t = report::parse_targets(&[], &db).unwrap();
    assert_eq!(t.len(), report::DEFAULT_TARGETS.len());
    let t = report::parse_targets(
        &["trn3,h100-sxm@aws-p5.48xlarge-capacity-block-us-east-1".into()],
        &db,
    )
    .unwrap();
    assert_eq!(
        t,
        vec![
            Target {
                chip: "aws-trainium3".into(),
                offer: None
            },
            Target {
                chip: "nvidia-h100-sxm".into(),
                offer: Some("aws-p5.48xlarge-capacity-block-us-east-1".into())
            }
        ]
    );
    let t = report::parse_targets(&["+a100,+gaudi3".into()], &db).unwrap();
    assert_eq!(t.len(), report::DEFAULT_TARGETS.len() + 2);
    for bad in [
        "h900",
        "trn3@aws-p5.48xlarge-on-demand-us-east-1",
        "h100-sxm@vastai-h100-80gb-marketplace",
        "h100-sxm@nope",
    ] {
        assert!(report::parse_targets(&[bad.into()], &db).is_err(), "{bad}");
    }
    // A named offer prices the projection.
    let r = run(
        environment(Some(1.0), None),
        vec![row(
            matmul(512, 512, 512),
            bf16(),
            0.003,
            cpu_device(),
            Backend::Cpu,
        )],
    );
    let opts = Options {
        targets: report::parse_targets(
            &["h100-sxm@aws-p5.48xlarge-capacity-block-us-east-1".into()],
            &db,
        )
        .unwrap(),
        efficiency: None,
    };
    let rep = report::build(&[input(r)], &db, &opts);
    let p = rep.targets[0].price.as_ref().unwrap();
    assert!(close(p.usd_per_chip_hour, 39.33 / 8.0));
    assert_eq!(p.chosen_by, "--targets CHIP@OFFER");
    // Dated 2024-12: older than 365 days before 2026-11-26, so flagged.
    assert!(p.stale);
    assert!(rep.notes.iter().any(|n| n.contains("older than")));
}

fn llm_rows() -> Vec<Row> {
    // phi3-mini decode at a 2048 context: four projections at 1 token and the decode attention.
    let mm = |n: u64, k: u64| {
        Shape::Matmul(MatmulShape {
            batch: 1,
            m: 1,
            n,
            k,
            trans_b: true,
        })
    };
    let att = Shape::Attention(AttentionShape {
        batch: 1,
        q_heads: 32,
        kv_heads: 32,
        q_len: 1,
        kv_len: 2048,
        head_dim: 96,
        causal: false,
        scale: 1.0 / 96f64.sqrt(),
    });
    let parts = [
        ("phi3-mini-qkv-t1", mm(9216, 3072), 0.001),
        ("phi3-mini-o-t1", mm(3072, 3072), 0.0004),
        ("phi3-mini-gate_up-t1", mm(16384, 3072), 0.002),
        ("phi3-mini-down-t1", mm(3072, 8192), 0.001),
        ("phi3-mini-decode-2048", att, 0.0006),
    ];
    parts
        .iter()
        .map(|(case, shape, secs)| {
            let backend = Backend::Cpu;
            let mut r = row(*shape, bf16(), *secs, cpu_device(), backend);
            r.case = Some(case.to_string());
            r
        })
        .collect()
}

#[test]
fn llm_kernel_only_estimate() {
    let r = run(environment(Some(0.36), None), llm_rows());
    let rep = report::build(&[input(r)], &db(), &targets(&["h100-sxm"]));
    let e = rep
        .llm
        .iter()
        .find(|e| e.kind == RowKind::Measured)
        .expect("a measured estimate");
    assert_eq!(e.label, "kernel-only estimate");
    assert_eq!(
        (e.model.as_str(), e.layers, e.phase, e.length),
        ("phi3-mini", 32, "decode", 2048)
    );
    // t_layer = 1 + 0.4 + 2 + 1 + 0.6 ms = 5 ms; × 32 layers = 160 ms per token → 6.25 tokens/s.
    assert!(close(e.layer_s.median, 0.005));
    assert!(close(e.total_s.median, 0.16));
    assert!(close(e.tokens_per_s.median, 6.25));
    // $ per 1M tokens = 0.36/3600 × 0.16 × 10⁶ = $16.
    assert!(close(e.usd_per_million_tokens.unwrap().median, 16.0));
    assert!(e.formula.contains("tokens/s = 1 / (L × t_layer)") && e.formula.contains("excludes"));
    // The same cases projected onto the target, labelled as such.
    let p = rep
        .llm
        .iter()
        .find(|e| e.kind == RowKind::Projected)
        .expect("a projected estimate");
    assert!(p.basis.as_deref().unwrap().contains("upper bound"));
    assert!(p.tokens_per_s.median > e.tokens_per_s.median);
    let text = report::table::render(&rep);
    assert!(text.contains("kernel-only estimate"));
}

fn html_of(rep: &report::Report) -> String {
    html::render(rep, &db())
}

/// A run whose host, CPU model and device carry `evil`: a verified bf16 row named `case` and a
/// failed one whose message is `message`.
fn hostile_rows(evil: &str, dev: Device, case: String, message: String) -> (Environment, Row, Row) {
    let mut env = environment(Some(0.5), None);
    env.hostname = Some(evil.into());
    env.cpu.model = Some(evil.into());
    let mut r1 = row(
        matmul(512, 512, 512),
        bf16(),
        0.003,
        dev.clone(),
        Backend::Cpu,
    );
    r1.case = Some(case);
    let mut bad = row(matmul(256, 256, 256), bf16(), 0.001, dev, Backend::Cpu);
    bad.verification.as_mut().unwrap().verdict = Some(Verdict::Fail);
    bad.set_status(Status::Incorrect, Some(message)).unwrap();
    (env, r1, bad)
}

#[test]
fn html_is_self_contained_with_charts_and_escapes_everything() {
    let evil = r#"<script>alert(1)</script>"><img src="http://evil.example/x.png"> @import url(http://evil.example/a.css)"#;
    let mut dev = Device::named(evil);
    dev.extra.insert("note".into(), serde_json::json!(evil));
    let (env, r1, bad) = hostile_rows(evil, dev, format!("{evil}-1"), evil.into());
    // A sweep family (3 sizes) for the scaling chart.
    let mut sweep = Vec::new();
    for n in [64u64, 128, 256] {
        let mut r = row(
            matmul(n, n, n),
            Precision::same(DType::F32),
            1e-4,
            cpu_device(),
            Backend::Cpu,
        );
        r.case = Some(format!("sweep-square-{n}"));
        sweep.push(r);
    }
    let mut rows = vec![r1, bad];
    rows.extend(sweep);
    let mut run1 = run(env, rows);
    run1.measured_ceilings = MeasuredCeilings {
        cpu_fma_gflops: BTreeMap::from([("avx2fma".to_string(), 120.0)]),
        cpu_read_gbs: Some(20.0),
        cpu_triad_gbs: Some(18.0),
        gpu: vec![],
        ..Default::default()
    };
    let rep = report::build(&[input(run1)], &db(), &report::Options::default());
    let html = html_of(&rep);

    // Charts: 1 roofline + a perf-per-dollar chart per workload with anything priced (all 5
    // workloads: each has priced projections) + 1 scaling chart.
    assert_eq!(rep.workloads.len(), 5);
    let priced = rep
        .workloads
        .iter()
        .filter(|w| report::charts::perf_per_dollar(&rep, w).is_some())
        .count();
    assert_eq!(priced, 5);
    assert_eq!(html::chart_count(&html), 1 + priced + 1);
    assert_eq!(html.matches("<figure class=\"chart\">").count(), 7);
    assert!(html.contains("xmlns=\"http://www.w3.org/2000/svg\""));

    // No external loads.
    let lower = html.to_ascii_lowercase();
    for bad in [
        "src=\"http",
        "src='http",
        "src=http",
        "href=\"http",
        "href='http",
        "href=http",
        "url(http",
        "url(",
        "@import",
        "<script",
        "<img",
        "<link",
        "<iframe",
        "<object",
        "<embed",
        "srcset",
        "javascript:",
    ] {
        assert!(!lower.contains(bad), "found {bad:?}");
    }
    // Injected strings are escaped (they appear, inert).
    assert!(
        html.contains("&lt;script&gt;alert&#40;1&#41;")
            || html.contains("&lt;script&gt;alert&#40;1)")
    );
    assert!(html.contains("&quot;&gt;&lt;img src=&quot;http://evil.example/x.png&quot;&gt;"));
    assert!(html.contains("&#64;import url&#40;http://evil.example/a.css)"));
    // Every report states the conventions, the statistic, the sources and each row's kind.
    assert!(html.contains("FLOP convention"));
    assert!(html.contains("bootstrap 95% CI of the median"));
    assert!(html.contains("Sources &#40;specs and prices used, with dates)"));
    assert!(html.contains("aws-p5.48xlarge-on-demand-us-east-1"));
    assert!(html.contains("class=\"kind-measured\"") && html.contains("class=\"kind-projected\""));
    // Self-contained: one document, inline style, no script.
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<html").count(), 1);
    assert!(html.contains("<style>"));
}

#[test]
fn every_format_states_conventions_sources_and_kinds() {
    let r = run(
        environment(Some(1.0), None),
        vec![row(
            matmul(512, 512, 512),
            bf16(),
            0.003,
            cpu_device(),
            Backend::Cpu,
        )],
    );
    let rep = report::build(&[input(r)], &db(), &report::Options::default());
    for text in [report::table::render(&rep), report::md::render(&rep)] {
        assert!(text.contains("FLOP convention"));
        assert!(text.contains("Statistic"));
        assert!(text.contains("measured"));
        assert!(text.contains("projected"));
        assert!(text.contains("as of"));
        assert!(text.contains("vantage"), "price sources are printed");
    }
    let json: serde_json::Value = serde_json::to_value(&rep).unwrap();
    assert_eq!(json["schema"], "perfledger.report/1");
    assert!(json["conventions"]["flops"]
        .as_str()
        .unwrap()
        .contains("2·M·N·K"));
    assert_eq!(json["rows"][0]["kind"], "measured");
    assert!(json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["as_of"].is_string()));
    let csv = report::csv::render(&rep);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header, report::csv::columns());
    assert_eq!(header.len(), 69);
    // Every line has every column, read back by a CSV reader (quoted fields included).
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    let mut lines = 0;
    for rec in reader.records() {
        assert_eq!(rec.unwrap().len(), header.len());
        lines += 1;
    }
    assert_eq!(lines, csv.lines().count() - 1);
}

/// An in-process peer row of the same workload as `row(...)`: kind `peer`, an OpenBLAS kernel.
fn peer_row(shape: Shape, precision: Precision, samples: Vec<f64>) -> Row {
    let mut r = row(shape, precision, samples[0], cpu_device(), Backend::Cpu);
    r.kind = RowKind::Peer;
    let k = r.kernel.as_mut().unwrap();
    k.family = "matmul.cpu.openblas".into();
    k.variant = "sgemm".into();
    r.id = Some(format!("matmul.cpu.openblas.sgemm.{precision}"));
    r.samples_s = samples;
    r.provenance = Some(perfledger::runfile::Provenance {
        tool: Some("OpenBLAS".into()),
        source: Some("in-process".into()),
        ..Default::default()
    });
    r.validate().unwrap();
    r
}

#[test]
fn measured_rows_carry_their_ratio_to_the_best_peer_of_the_workload() {
    let shape = matmul(512, 512, 512);
    let mut mine = row(shape, bf16(), 0.003, cpu_device(), Backend::Cpu);
    mine.samples_s = (0..12).map(|i| 0.003 + 1e-6 * i as f64).collect();
    let rows = vec![
        mine,
        // The faster peer (4.0 ms) counts, not the slower one (6.0 ms).
        peer_row(
            shape,
            bf16(),
            (0..12).map(|i| 0.004 + 1e-6 * i as f64).collect(),
        ),
        peer_row(shape, bf16(), vec![0.006; 12]),
        // Another workload's peer never counts.
        peer_row(matmul(256, 256, 256), bf16(), vec![0.0001; 12]),
    ];
    let rep = report::build(
        &[input(run(environment(None, None), rows))],
        &db(),
        &report::Options::default(),
    );
    let v = rep.rows[0]
        .vs_peer
        .as_ref()
        .expect("a ratio to the best peer");
    assert_eq!(v.peer_row, 1);
    assert_eq!(v.peer, "matmul.cpu.openblas.sgemm.bf16-f32-bf16");
    let want = (0.004 + 5.5e-6) / (0.003 + 5.5e-6);
    assert!(close(v.ratio, want), "{} vs {want}", v.ratio);
    assert!(v.ci95[0] <= v.ratio && v.ratio <= v.ci95[1]);
    // Peers have no ratio of their own.
    assert!(rep.rows[1..].iter().all(|r| r.vs_peer.is_none()));
    // Every format shows it.
    let cell = format!("{:.2}×", want);
    assert!(report::table::render(&rep).contains(&cell));
    assert!(report::md::render(&rep).contains(&cell));
    let csv = report::csv::render(&rep);
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "vs_peer_ratio").unwrap();
    let first = reader.records().next().unwrap().unwrap();
    assert!(close(first[col].parse::<f64>().unwrap(), want));
}

#[test]
fn memory_bound_rows_carry_their_read_alongside_into_every_format_with_columns() {
    // A GEMV row with the read of its inputs alongside: the report row and the CSV carry the
    // read's median and the row's share of it; a row without one has empty cells.
    let mut gemv = row(
        matmul(1, 4096, 4096),
        bf16(),
        0.001,
        cpu_device(),
        Backend::Cpu,
    );
    gemv.read_alongside = Some(perfledger::runfile::ReadAlongside {
        samples_gbs: vec![33.0, 34.0, 35.0],
        median_gbs: 34.0,
        patterns: [("seq1".to_string(), 33.5)].into_iter().collect(),
        share: Some(0.92),
    });
    gemv.validate().unwrap();
    let square = row(
        matmul(512, 512, 512),
        bf16(),
        0.003,
        cpu_device(),
        Backend::Cpu,
    );
    let rep = report::build(
        &[input(run(environment(None, None), vec![gemv, square]))],
        &db(),
        &report::Options::default(),
    );
    assert_eq!(rep.rows[0].read_alongside_gbs, Some(34.0));
    assert_eq!(rep.rows[0].read_alongside_share, Some(0.92));
    assert_eq!(rep.rows[1].read_alongside_gbs, None);
    let csv = report::csv::render(&rep);
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (gbs, share) = (at("read_alongside_gbs"), at("read_alongside_share"));
    let records: Vec<_> = reader.records().map(|r| r.unwrap()).collect();
    assert!(close(records[0][gbs].parse::<f64>().unwrap(), 34.0));
    assert!(close(records[0][share].parse::<f64>().unwrap(), 0.92));
    assert_eq!((&records[1][gbs], &records[1][share]), ("", ""));
}

#[test]
fn interval_helpers() {
    let g = Interval::new(10.0, [12.0, 8.0]);
    assert_eq!((g.lo, g.hi), (8.0, 12.0));
    let be = normalize::break_even_usd_per_hour(1000.0, Interval::new(3.6e6, [3.0e6, 4.0e6]));
    assert!(close(be.median, 1.0));
    assert!(close(be.lo, 1000.0 * 3600.0 / 4.0e6));
    assert!(close(be.hi, 1000.0 * 3600.0 / 3.0e6));
    assert!(close(normalize::price_share(55.04, 1.0, 8.0), 6.88));
}

/// Markdown and CSV against hostile strings in every field a report prints from a file (host,
/// CPU, device, case name, an error message): Markdown tables keep their columns (`|` escaped,
/// line breaks flattened) and no raw HTML (`<script>`, `<img onerror>`) survives; CSV keeps one
/// record per row with every record as wide as the header (RFC 4180 quoting), and a cell that a
/// spreadsheet would evaluate (`=`, `+`, `-`, `@` first) starts with `'`.
#[test]
fn markdown_and_csv_render_hostile_strings_inert() {
    let evil =
        "=HYPERLINK(\"http://evil.example\")|`x`\n<img src=x onerror=alert(1)><script>y</script>";
    let (env, r1, bad) = hostile_rows(evil, Device::named(evil), evil.into(), format!("@{evil}"));
    let rep = report::build(
        &[input(run(env, vec![r1, bad]))],
        &db(),
        &report::Options::default(),
    );

    let md = report::md::render(&rep);
    let lower = md.to_ascii_lowercase();
    for raw in ["<script", "<img"] {
        assert!(!lower.contains(raw), "raw {raw:?} in the Markdown");
    }
    // Every line of a table has as many unescaped `|` as the table's header line.
    let pipes = |l: &str| {
        let b = l.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
            .count()
    };
    let mut tables = 0;
    let mut width = None;
    for l in md.lines() {
        if l.starts_with('|') {
            match width {
                None => {
                    width = Some(pipes(l));
                    tables += 1;
                }
                Some(w) => assert_eq!(pipes(l), w, "a table row with a different width: {l}"),
            }
        } else {
            width = None;
        }
    }
    assert!(tables >= 1, "{md}");
    assert!(
        md.contains("HYPERLINK"),
        "the hostile string is shown, inert"
    );

    let text = report::csv::render(&rep);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header_len = reader.headers().unwrap().len();
    let mut records = 0;
    let mut hostile_cells = 0;
    for rec in reader.records() {
        let rec = rec.unwrap();
        assert_eq!(rec.len(), header_len, "a record of another width: {rec:?}");
        records += 1;
        for field in rec.iter() {
            if field.contains("HYPERLINK") {
                hostile_cells += 1;
                assert!(
                    !field.starts_with(['=', '+', '-', '@']),
                    "a formula cell: {field:?}"
                );
            }
        }
    }
    assert!(records >= 2, "{text}");
    assert!(
        hostile_cells >= 3,
        "{hostile_cells} hostile cells in {text}"
    );
}
