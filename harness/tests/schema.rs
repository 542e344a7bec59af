//! The JSON Schemas in `results/schema/` are the contract of the run file, the suite file and the
//! external rows: what the Rust types write must validate against them, and what they refuse the
//! schemas refuse too. Also: reading, writing and version checks of run files.

use perfledger::env::{CpuInfo, Environment, GpuInfo, HarnessInfo, InstanceInfo, PriceInfo};
use perfledger::runfile::{
    default_run_path, AttentionShape, Device, ExternalRow, Flops, GpuCeilings, KernelRef,
    MatmulShape, MeasuredCeilings, Provenance, ReadAlongside, Row, RowKind, RowNoise,
    RowVerification, RunConfig, RunFile, RunFileError, RunOptions, SchemaVersion, Shape, Status,
    StopReason, SuiteRef, Timing, TimingMethod, Verdict, VersionError, SCHEMA, VERSION,
};
use perfledger::stats::Sample;
use perfledger_kernels::dtype::{DType, SplitMix64};
use perfledger_kernels::kernel::{Backend, Op};
use perfledger_kernels::problem::Precision;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn schema_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results/schema")
        .join(name)
}

fn load_schema(name: &str) -> Value {
    let path = schema_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("schema compiles")
}

fn run_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| compile(&load_schema("run-1.9.schema.json")))
}

/// The `row` definition of the run schema as a schema of its own.
fn row_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let run = load_schema("run-1.9.schema.json");
        compile(&json!({
            "$schema": run["$schema"],
            "$defs": run["$defs"],
            "$ref": "#/$defs/row"
        }))
    })
}

fn external_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| compile(&load_schema("external-rows-1.schema.json")))
}

fn suite_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| compile(&load_schema("suite-1.schema.json")))
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[track_caller]
fn assert_valid(v: &jsonschema::Validator, instance: &Value) {
    let errs = errors(v, instance);
    assert!(
        errs.is_empty(),
        "schema errors:\n{}\nin {}",
        errs.join("\n"),
        serde_json::to_string_pretty(instance).unwrap()
    );
}

#[track_caller]
fn assert_invalid(v: &jsonschema::Validator, instance: &Value) {
    assert!(
        !v.is_valid(instance),
        "expected a schema error in {instance}"
    );
}

fn noisy_samples(n: usize, center: f64, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| center * (1.0 + 0.01 * rng.next_f64()))
        .collect()
}

fn cpu_device() -> Device {
    let mut d = Device::named("AMD EPYC 7R13 (2 threads)");
    d.extra.insert("threads".into(), json!(2));
    d
}

fn kernel(family: &str, variant: &str) -> KernelRef {
    let mut params = serde_json::Map::new();
    params.insert("mr".into(), json!(6));
    params.insert("nr".into(), json!(16));
    let mut k = KernelRef {
        family: family.into(),
        variant: variant.into(),
        unit: None,
        params,
    };
    k.unit = perfledger::runfile::legacy_unit(Some(Backend::Cpu), &k);
    k
}

fn measured_row(shape: Shape, precision: Precision, status: Status) -> Row {
    let mut row = Row::new(
        RowKind::Measured,
        shape,
        precision,
        cpu_device(),
        Status::Error,
    );
    let k = kernel("matmul.cpu.packed", "avx2fma");
    row.id = Some(format!("{}.{}.{}", k.family, k.variant, precision));
    row.kernel = Some(k);
    row.backend = Some(Backend::Cpu);
    row.status = status;
    row
}

/// One row of each kind of outcome the report must handle.
fn realistic_run() -> RunFile {
    let harness = HarnessInfo {
        version: "0.1.0".into(),
        git_commit: Some("5edd379".into()),
        git_dirty: Some(false),
        rustc: Some("rustc 1.95.0".into()),
        profile: "release".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        features: vec![],
    };
    let mut caches = BTreeMap::new();
    caches.insert(
        "l2".to_string(),
        json!({"bytes": 524288, "source": "sysfs"}),
    );
    let mut limits = BTreeMap::new();
    limits.insert("max_buffer_size".to_string(), json!(268435456u64));
    let environment = Environment {
        os: Some("Debian GNU/Linux 12".into()),
        kernel: Some("6.1.0".into()),
        hostname: Some("ip-10-0-0-1.ec2.internal".into()),
        cpu: CpuInfo {
            model: Some("AMD EPYC 7R13 Processor".into()),
            vendor: Some("AuthenticAMD".into()),
            sockets: Some(1),
            physical_cores: Some(1),
            vcpus: Some(2),
            smt: Some(2),
            threads_used: 2,
            pinned: false,
            isa_detected: vec!["avx2fma".into(), "portable".into()],
            isa_selected: "avx2fma".into(),
            caches,
            mhz_before: Some(2650.0),
            mhz_after: Some(2645.5),
            load_avg: Some([0.5, 0.4, 0.3]),
            steal_pct: Some(0.1),
        },
        memory_bytes: Some(8 << 30),
        gpus: vec![GpuInfo {
            index: 0,
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            vendor_id: Some(0x10005),
            device_id: Some(0),
            device_type: Some("Cpu".into()),
            software: true,
            backend: Some("Vulkan".into()),
            driver: Some("llvmpipe".into()),
            driver_info: Some("Mesa 22.3.6".into()),
            features: vec!["SHADER_F16".into()],
            limits,
            used: false,
        }],
        instance: Some(InstanceInfo {
            provider: Some("aws".into()),
            instance_type: Some("c6a.large".into()),
            region: Some("us-east-1".into()),
            pricing_model: Some("on-demand".into()),
            detected_by: Some("dmi".into()),
            found_by: [
                ("type".to_string(), "dmi".to_string()),
                ("region".to_string(), "skypilot".to_string()),
            ]
            .into(),
            skypilot: Some(perfledger::env::SkyPilotInfo {
                task_id: Some("sky-1".into()),
                cluster: Some("c".into()),
                node_rank: Some(0),
                num_nodes: Some(1),
                cloud: Some("AWS".into()),
                region: Some("us-east-1".into()),
                zone: None,
                cluster_info_error: None,
            }),
        }),
        price: Some(PriceInfo {
            usd_per_hour: 0.0765,
            source: Some("embedded price table".into()),
            as_of: Some("2026-10-01".into()),
        }),
    };
    let mut run = RunFile::new(
        harness,
        environment,
        SuiteRef {
            name: "quick".into(),
            source: Some("builtin".into()),
        },
        RunConfig {
            seed: 42,
            case_budget_s: 2.0,
            max_row_s: Some(20.0),
            run_budget_s: None,
            argv: vec![
                "perfledger".into(),
                "run".into(),
                "--suite".into(),
                "quick".into(),
            ],
            options: Some(RunOptions {
                threads: Some(2),
                isa: Some("avx2fma".into()),
                ci_target: 0.02,
                probes: "full".into(),
                ..RunOptions::default()
            }),
            tune_cache: Some(perfledger::runfile::TuneCacheRef {
                path: "/home/u/.cache/perfledger/tune.json".into(),
                sha256: "ab".repeat(32),
                entries: 3,
                notes: vec!["matmul.gpu.tiled.wgsl.f32-f32-f32 small: tuned 32x32x16/4x4".into()],
            }),
        },
    );
    run.complete = true;
    run.measured_ceilings = MeasuredCeilings {
        cpu_fma_gflops: BTreeMap::from([("avx2fma".to_string(), 84.5), ("portable".into(), 10.2)]),
        cpu_read_gbs: Some(18.5),
        cpu_triad_gbs: Some(14.0),
        cpu_fma_gflops_after: BTreeMap::from([("avx2fma".to_string(), 83.0)]),
        cpu_read_gbs_after: Some(19.5),
        cpu_triad_gbs_after: Some(14.5),
        cpu_read_pattern: Some("seq1_prefetch".into()),
        cpu_read_patterns: BTreeMap::from([
            ("seq1".to_string(), 17.0),
            ("seq1_prefetch".to_string(), 18.5),
        ]),
        gpu: vec![GpuCeilings {
            index: 0,
            fma_gflops: Some(40.0),
            copy_gbs: None,
            coop_gflops: None,
        }],
    };

    let bf16 = Precision {
        input: DType::BF16,
        accum: DType::F32,
        output: DType::BF16,
    };
    let big = Shape::Matmul(MatmulShape {
        batch: 1,
        m: 2048,
        n: 2048,
        k: 2048,
        trans_b: false,
    });
    let timing = Timing {
        method: TimingMethod::Wall,
        warmup_iters: 3,
        iters_per_sample: 1,
        stop_reason: StopReason::CiTarget,
        budget_s: Some(2.0),
        max_row_s: Some(20.0),
        sampling_s: Some(1.4),
        row_s: Some(1.6),
        turns: None,
    };
    let passed = RowVerification {
        method: "freivalds+rows".into(),
        samples: Some(16),
        error: Some(1.1e-3),
        bound: Some(7.8e-3),
        verdict: Some(Verdict::Pass),
        detail: None,
    };

    // 1. ok, with gflops.
    let mut ok = measured_row(big, bf16, Status::Error);
    ok.flops = Some(Flops::exact(17_179_869_184));
    ok.min_bytes = Some(25_165_824);
    ok.timing = Some(timing);
    ok.noise = Some(RowNoise {
        steal_pct: Some(0.4),
        run_queue_median: Some(2.0),
        run_queue_max: Some(3),
        readings: 12,
        online_cpus: Some(2),
    });
    ok.read_alongside = Some(ReadAlongside {
        samples_gbs: vec![31.2, 33.0, 32.4],
        median_gbs: 32.4,
        patterns: BTreeMap::from([("seq1".to_string(), 31.0), ("seq2".to_string(), 32.1)]),
        share: Some(0.006),
    });
    let sample = Sample::new(noisy_samples(12, 0.1175, 1)).unwrap();
    ok.set_samples(&sample, &sample.summary());
    ok.verification = Some(passed.clone());
    ok.set_status(Status::Ok, None).unwrap();
    run.results.push(ok);

    // 2. incorrect: samples kept, no gflops.
    let small = Shape::Matmul(MatmulShape {
        batch: 2,
        m: 64,
        n: 48,
        k: 33,
        trans_b: true,
    });
    let mut bad = measured_row(small, bf16, Status::Error);
    bad.flops = Some(Flops::exact(2 * 2 * 64 * 48 * 33));
    bad.timing = Some(timing);
    let sample = Sample::new(noisy_samples(10, 1e-5, 2)).unwrap();
    bad.set_samples(&sample, &sample.summary());
    bad.verification = Some(RowVerification {
        method: "full".into(),
        samples: Some(128),
        error: None,
        bound: Some(7.8e-3),
        verdict: Some(Verdict::Fail),
        detail: Some("NaN at batch 0, row 3, col 7".into()),
    });
    bad.set_status(Status::Incorrect, Some("verification failed".into()))
        .unwrap();
    run.results.push(bad);

    // 3. unsupported: nothing measured.
    let f16 = Precision {
        input: DType::F16,
        accum: DType::F32,
        output: DType::F16,
    };
    let mut unsup = measured_row(big, f16, Status::Unsupported);
    unsup.kernel = Some(kernel("matmul.cpu.packed", "avx512f"));
    unsup.id = Some(format!("matmul.cpu.packed.avx512f.{f16}"));
    unsup.message = Some("this CPU lacks avx512f".into());
    run.results.push(unsup);

    // 4. attention, on the GPU, with too few samples.
    let att = Shape::Attention(AttentionShape {
        batch: 1,
        q_heads: 32,
        kv_heads: 8,
        q_len: 512,
        kv_len: 512,
        head_dim: 128,
        causal: true,
        scale: 1.0 / (128f64).sqrt(),
    });
    let mut arow = Row::new(
        RowKind::Measured,
        att,
        f16,
        Device::named("llvmpipe"),
        Status::Error,
    );
    arow.device.software = true;
    arow.device.gpu_index = Some(0);
    arow.backend = Some(Backend::Gpu);
    arow.kernel = Some(KernelRef {
        family: "attention.gpu.flash".into(),
        variant: "wgsl".into(),
        unit: Some(perfledger_kernels::ComputeUnit::GpuSimt),
        params: serde_json::Map::new(),
    });
    arow.id = Some(format!("attention.gpu.flash.wgsl.{f16}"));
    arow.flops = Some(Flops {
        useful: 4 * 128 * 32 * (512 * 513 / 2),
        executed: 4 * 128 * 32 * 512 * 512,
    });
    arow.timing = Some(Timing {
        method: TimingMethod::Timestamp,
        warmup_iters: 2,
        iters_per_sample: 1,
        stop_reason: StopReason::CaseBudget,
        budget_s: None,
        max_row_s: None,
        sampling_s: None,
        row_s: None,
        turns: None,
    });
    let sample = Sample::new(noisy_samples(4, 0.5, 3)).unwrap();
    arow.set_samples(&sample, &sample.summary());
    arow.verification = Some(passed);
    arow.set_status(
        Status::InsufficientSamples,
        Some("4 samples in the case budget".into()),
    )
    .unwrap();
    run.results.push(arow);

    // 5. a peer row (OpenBLAS via numpy, same machine).
    let peer = ExternalRow::parse_line(&peer_line().to_string()).unwrap();
    let row = peer.into_row().unwrap();
    run.results.push(row);

    run.validate().unwrap();
    run
}

fn peer_line() -> Value {
    json!({
        "kind": "peer", "op": "matmul",
        "shape": {"batch": 1, "m": 2048, "n": 2048, "k": 2048, "trans_b": false},
        "precision": {"input": "f32", "accum": "f32", "output": "f32"},
        "device": {"name": "AMD EPYC 7R13 (2 threads)", "threads": 2},
        "samples_s": noisy_samples(12, 0.2, 9),
        "verification": {"method": "rows", "samples": 8, "error": 2e-7, "bound": 1e-5, "verdict": "pass"},
        "tool": "numpy", "tool_version": "2.1.3 (OpenBLAS 0.3.28)",
        "date": "2026-11-20", "source": "scripts/reference/numpy_matmul.py"
    })
}

/// The row of DESIGN.md "Result file", with the compute unit 1.2 added (`kernel.unit`).
const DESIGN_ROW: &str = r#"
{"kind": "measured", "op": "matmul", "backend": "cpu",
 "device": {"name": "AMD EPYC (2 threads)", "software": false, "gpu_index": null},
 "kernel": {"family": "matmul.cpu.packed", "variant": "avx2fma", "unit": "cpu.fma.avx2fma",
            "params": {"mr": 6, "nr": 16}},
 "id": "matmul.cpu.packed.avx2fma.bf16-f32-bf16",
 "precision": {"input": "bf16", "accum": "f32", "output": "bf16"},
 "shape": {"batch": 1, "m": 2048, "n": 2048, "k": 2048, "trans_b": false},
 "flops": {"useful": 17179869184, "executed": 17179869184}, "min_bytes": 25165824,
 "timing": {"method": "wall", "warmup_iters": 3, "iters_per_sample": 1, "stop_reason": "ci_target"},
 "samples_s": [0.118, 0.117], "outliers": 0,
 "stats": {"median_s": 0.1175, "min_s": 0.117, "p10_s": 0.117, "p90_s": 0.118, "mad_s": 0.0005,
           "ci95_s": [0.117, 0.118]},
 "gflops": {"median": 146.2, "ci95": [145.6, 146.8]},
 "verification": {"method": "freivalds+rows", "samples": 16, "error": 1.1e-3, "bound": 7.8e-3,
                  "verdict": "pass"},
 "status": "ok", "message": null, "provenance": null, "power_w": null}
"#;

#[test]
fn realistic_run_validates_against_the_schema() {
    let run = realistic_run();
    let value: Value = serde_json::from_str(&run.to_json().unwrap()).unwrap();
    assert_valid(run_validator(), &value);
    assert_eq!(value["schema"], SCHEMA);
    // Pinned names on the wire.
    let row = &value["results"][0];
    for key in [
        "kind",
        "op",
        "backend",
        "device",
        "kernel",
        "id",
        "precision",
        "shape",
        "flops",
        "min_bytes",
        "timing",
        "samples_s",
        "outliers",
        "stats",
        "gflops",
        "verification",
        "status",
        "message",
        "provenance",
        "power_w",
    ] {
        assert!(row.get(key).is_some(), "row lacks `{key}`");
    }
    assert_eq!(row["device"]["threads"], 2);
    assert!(value["results"][1]["gflops"].is_null());
    assert_eq!(value["results"][4]["kind"], "peer");
    assert_eq!(value["results"][4]["provenance"]["tool"], "numpy");
}

/// Every compute unit the kernels can declare is one the schema accepts (a unit added to the
/// types without the schema makes every run on a machine that has it invalid), and a made-up
/// one is refused.
#[test]
fn the_schema_accepts_every_compute_unit() {
    let run = realistic_run();
    let value: Value = serde_json::from_str(&run.to_json().unwrap()).unwrap();
    let at = value["results"]
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r["kernel"]["unit"].is_string())
        .expect("a row with a unit");
    for unit in perfledger_kernels::ComputeUnit::ALL {
        let mut v = value.clone();
        v["results"][at]["kernel"]["unit"] = json!(unit.name());
        assert_valid(run_validator(), &v);
    }
    let mut v = value;
    v["results"][at]["kernel"]["unit"] = json!("cpu.fma.avx9");
    assert_invalid(run_validator(), &v);
}

#[test]
fn the_schema_refuses_what_the_types_refuse() {
    let run = realistic_run();
    let value: Value = serde_json::from_str(&run.to_json().unwrap()).unwrap();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "gflops on an incorrect row",
            Box::new(|v| v["results"][1]["gflops"] = json!({"median": 1.0, "ci95": [0.9, 1.1]})),
        ),
        (
            "ok row without gflops",
            Box::new(|v| v["results"][0]["gflops"] = Value::Null),
        ),
        (
            "unknown status",
            Box::new(|v| v["results"][0]["status"] = json!("fine")),
        ),
        (
            "unknown kind",
            Box::new(|v| v["results"][0]["kind"] = json!("simulated")),
        ),
        (
            "unknown dtype",
            Box::new(|v| v["results"][0]["precision"]["input"] = json!("fp16")),
        ),
        (
            "attention shape on a matmul row",
            Box::new(|v| v["results"][0]["shape"] = v["results"][3]["shape"].clone()),
        ),
        (
            "zero dimension",
            Box::new(|v| v["results"][0]["shape"]["k"] = json!(0)),
        ),
        (
            "unknown row field",
            Box::new(|v| v["results"][0]["speed"] = json!(1)),
        ),
        (
            "a read alongside without reads",
            Box::new(|v| v["results"][0]["read_alongside"]["samples_gbs"] = json!([])),
        ),
        (
            "a read alongside at a negative speed",
            Box::new(|v| v["results"][0]["read_alongside"]["median_gbs"] = json!(-1.0)),
        ),
        (
            "a read alongside with an unknown field",
            Box::new(|v| v["results"][0]["read_alongside"]["best"] = json!(1.0)),
        ),
        (
            "unknown top-level field",
            Box::new(|v| v["extra"] = json!(1)),
        ),
        (
            "other major",
            Box::new(|v| v["schema"] = json!("perfledger.run/2.0")),
        ),
        (
            "created not RFC 3339",
            Box::new(|v| v["created"] = json!("yesterday")),
        ),
        (
            "measured row without kernel",
            Box::new(|v| v["results"][0]["kernel"] = Value::Null),
        ),
        (
            "negative sample",
            Box::new(|v| v["results"][0]["samples_s"][0] = json!(-1.0)),
        ),
        (
            "verdict missing",
            Box::new(|v| {
                v["results"][0]["verification"]
                    .as_object_mut()
                    .unwrap()
                    .remove("verdict");
            }),
        ),
        (
            "power_w set",
            Box::new(|v| v["results"][0]["power_w"] = json!(250.0)),
        ),
    ];
    for (what, mutate) in mutations {
        let mut bad = value.clone();
        mutate(&mut bad);
        assert!(!run_validator().is_valid(&bad), "schema accepted: {what}");
        let origin = Path::new("mutated.json");
        let bytes = serde_json::to_vec(&bad).unwrap();
        assert!(
            RunFile::from_slice(&bytes, origin).is_err(),
            "reader accepted: {what}"
        );
    }
}

#[test]
fn design_example_row_matches_schema_and_types() {
    let value: Value = serde_json::from_str(DESIGN_ROW).unwrap();
    assert_valid(row_validator(), &value);
    // Field names and enums match the Rust types, and they write it back identically.
    let row: Row = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(row.kind, RowKind::Measured);
    assert_eq!(row.op, Op::Matmul);
    assert_eq!(serde_json::to_value(&row).unwrap(), value);
    // The example is abbreviated to two samples; the full invariants want ten for `ok`.
    let e = row.validate().unwrap_err();
    assert_eq!(e.field, "samples_s");
}

#[test]
fn round_trip_write_read() {
    let run = realistic_run();
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("nested/runs")
        .join(default_run_path(run.created, "h", &run.run_id));
    run.write(&path, false).unwrap();
    let back = RunFile::read(&path).unwrap();
    assert_eq!(back, run);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn write_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    std::fs::write(&path, "original").unwrap();
    let run = realistic_run();
    let err = run.write(&path, false).unwrap_err();
    assert!(matches!(err, RunFileError::Exists { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "original");
    run.write(&path, true).unwrap();
    assert_eq!(RunFile::read(&path).unwrap(), run);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let target = file.join("x.json");
    let err = realistic_run().write(&target, false).unwrap_err();
    assert!(matches!(err, RunFileError::Write { .. }), "{err}");
    assert!(
        err.to_string().contains(&target.display().to_string()),
        "{err}"
    );
    assert_eq!(err.path(), target);
}

#[test]
fn other_major_is_refused_naming_file_and_version() {
    let mut value: Value = serde_json::from_str(&realistic_run().to_json().unwrap()).unwrap();
    value["schema"] = json!("perfledger.run/2.0");
    // A 2.0 file may have dropped fields: the version is what the message must be about.
    value.as_object_mut().unwrap().remove("config");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.json");
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    let err = RunFile::read(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RunFileError::Version { .. }), "{msg}");
    assert!(msg.contains("perfledger.run/2.0"), "{msg}");
    assert!(msg.contains("future.json"), "{msg}");
    assert!(msg.contains("major"), "{msg}");

    value["schema"] = json!("perfledger.suite/1");
    let err = RunFile::from_slice(&serde_json::to_vec(&value).unwrap(), &path).unwrap_err();
    assert!(matches!(err, RunFileError::NotRunFile { .. }), "{err}");
    let err = RunFile::from_slice(b"[1, 2", &path).unwrap_err();
    assert!(matches!(err, RunFileError::Syntax { .. }), "{err}");
    let err = RunFile::from_slice(b"{}", &path).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn version_compatibility() {
    assert_eq!(
        SchemaVersion::parse("perfledger.run", SCHEMA),
        Some(VERSION)
    );
    // A hypothetical 1.2 reader: reads 1.0 .. 1.2, refuses 1.3 and other majors.
    let reader = SchemaVersion::new(1, 2);
    for minor in 0..=2 {
        assert_eq!(reader.can_read(SchemaVersion::new(1, minor)), Ok(()));
    }
    assert!(matches!(
        reader.can_read(SchemaVersion::new(1, 3)),
        Err(VersionError::NewerMinor { .. })
    ));
    assert!(matches!(
        reader.can_read(SchemaVersion::new(2, 0)),
        Err(VersionError::OtherMajor { .. })
    ));
    assert!(matches!(
        reader.can_read(SchemaVersion::new(0, 9)),
        Err(VersionError::OtherMajor { .. })
    ));
    // This build reads its own version.
    assert_eq!(VERSION.can_read(VERSION), Ok(()));
    let bytes = realistic_run().to_json().unwrap();
    assert!(RunFile::from_slice(bytes.as_bytes(), Path::new("x.json")).is_ok());
}

#[test]
fn bad_field_errors_name_the_path() {
    let mut value: Value = serde_json::from_str(&realistic_run().to_json().unwrap()).unwrap();
    value["results"][2]["status"] = json!("fine");
    let text = serde_json::to_string_pretty(&value).unwrap();
    let err = RunFile::from_slice(text.as_bytes(), Path::new("runs/a.json")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("runs/a.json"), "{msg}");
    assert!(msg.contains("results[2].status"), "{msg}");
    assert!(msg.contains("line"), "{msg}");

    let mut value: Value = serde_json::from_str(&realistic_run().to_json().unwrap()).unwrap();
    value["results"][1]["gflops"] = json!({"median": 1.0, "ci95": [0.9, 1.1]});
    let err =
        RunFile::from_slice(&serde_json::to_vec(&value).unwrap(), Path::new("b.json")).unwrap_err();
    assert!(err.to_string().contains("results[1].gflops"), "{err}");
}

#[test]
fn validate_enforces_gflops_only_on_ok_rows() {
    let run = realistic_run();
    let mut incorrect = run.results[1].clone();
    incorrect.gflops = run.results[0].gflops;
    let e = incorrect.validate().unwrap_err();
    assert_eq!(e.field, "gflops");
    assert!(e.reason.contains("incorrect"), "{e}");

    let mut ok = run.results[0].clone();
    ok.gflops = None;
    assert_eq!(ok.validate().unwrap_err().field, "gflops");

    // set_status computes and clears gflops.
    let mut row = run.results[0].clone();
    row.set_status(Status::SkippedBudget, None).unwrap();
    assert!(row.gflops.is_none());
    row.set_status(Status::Ok, None).unwrap();
    let g = row.gflops.unwrap();
    assert!(g.ci95[0] <= g.median && g.median <= g.ci95[1], "{g:?}");

    // An ok row whose verification failed is refused.
    let mut lying = run.results[0].clone();
    lying.verification.as_mut().unwrap().verdict = Some(Verdict::Fail);
    assert!(lying.validate().is_err());
    // An id that does not join family, variant and precision is refused.
    let mut wrong_id = run.results[0].clone();
    wrong_id.id = Some("matmul.cpu.packed.avx2fma.f32-f32-f32".into());
    assert_eq!(wrong_id.validate().unwrap_err().field, "id");
    // A row whose shape is of another op is refused.
    let mut mixed = run.results[0].clone();
    mixed.op = Op::Attention;
    assert_eq!(mixed.validate().unwrap_err().field, "shape");
}

#[test]
fn external_rows_schema_and_parser_agree() {
    let good = peer_line();
    assert_valid(external_validator(), &good);
    assert!(ExternalRow::parse_line(&good.to_string()).is_ok());

    let imported = json!({
        "kind": "imported", "op": "attention",
        "shape": {"q_heads": 16, "kv_heads": 16, "q_len": 2048, "kv_len": 2048, "head_dim": 128,
                  "causal": true, "scale": 0.08838834764831845},
        "precision": {"input": "bf16", "accum": "f32", "output": "bf16"},
        "device": {"name": "Trainium2", "chips": 1},
        "instance": {"provider": "aws", "type": "trn2.48xlarge"},
        "samples_s": noisy_samples(10, 0.002, 4),
        "verification": {"method": "none"},
        "tool": "neuronx-cc", "tool_version": "2.20", "date": "2026-10-02",
        "source": "https://example.invalid/trn2-attention-run"
    });
    assert_valid(external_validator(), &imported);
    let row = ExternalRow::parse_line(&imported.to_string()).unwrap();
    let row = row.into_row().unwrap();
    assert_eq!(row.kind, RowKind::Imported);
    assert_eq!(row.status, Status::Ok);
    assert!(!row.is_rankable(), "an unverified row is shown, not ranked");
    assert_eq!(
        row.provenance
            .as_ref()
            .unwrap()
            .instance
            .as_ref()
            .unwrap()
            .instance_type
            .as_deref(),
        Some("trn2.48xlarge")
    );
    assert_valid(row_validator(), &serde_json::to_value(&row).unwrap());
    assert_eq!(row.backend, None);

    let bad_lines: Vec<(&str, Value)> = vec![
        ("unknown field", {
            let mut v = good.clone();
            v["gflops"] = json!(1.0);
            v
        }),
        ("a FLOP field", {
            let mut v = good.clone();
            v["flops"] = json!(1);
            v
        }),
        ("measured kind", {
            let mut v = good.clone();
            v["kind"] = json!("measured");
            v
        }),
        ("no samples", {
            let mut v = good.clone();
            v["samples_s"] = json!([]);
            v
        }),
        ("no tool", {
            let mut v = good.clone();
            v.as_object_mut().unwrap().remove("tool");
            v
        }),
        ("verdict on method none", {
            let mut v = good.clone();
            v["verification"] = json!({"method": "none", "verdict": "pass"});
            v
        }),
        ("imported without source", {
            let mut v = imported.clone();
            v.as_object_mut().unwrap().remove("source");
            v
        }),
        ("zero dimension", {
            let mut v = good.clone();
            v["shape"]["m"] = json!(0);
            v
        }),
        ("attention shape without scale", {
            let mut v = imported.clone();
            v["shape"].as_object_mut().unwrap().remove("scale");
            v
        }),
    ];
    for (what, line) in bad_lines {
        assert_invalid(external_validator(), &line);
        assert!(
            ExternalRow::parse_line(&line.to_string()).is_err(),
            "parser accepted: {what}"
        );
    }

    // read_lines names the file, the line and the field.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.jsonl");
    let mut broken = good.clone();
    broken["precision"]["input"] = json!("fp16");
    std::fs::write(&path, format!("{good}\n\n{broken}\n")).unwrap();
    let err = ExternalRow::read_lines(&path).unwrap_err().to_string();
    assert!(err.contains("peers.jsonl:3"), "{err}");
    assert!(err.contains("precision.input"), "{err}");
    std::fs::write(&path, format!("{good}\n{imported}\n")).unwrap();
    assert_eq!(ExternalRow::read_lines(&path).unwrap().len(), 2);
}

#[test]
fn external_row_statuses() {
    let mut few = peer_line();
    few["samples_s"] = json!([0.2, 0.21, 0.19]);
    let row = ExternalRow::parse_line(&few.to_string())
        .unwrap()
        .into_row()
        .unwrap();
    assert_eq!(row.status, Status::InsufficientSamples);
    assert!(row.gflops.is_none());
    let mut failed = peer_line();
    failed["verification"]["verdict"] = json!("fail");
    let row = ExternalRow::parse_line(&failed.to_string())
        .unwrap()
        .into_row()
        .unwrap();
    assert_eq!(row.status, Status::Incorrect);
    assert!(row.gflops.is_none());
    let ok = ExternalRow::parse_line(&peer_line().to_string())
        .unwrap()
        .into_row()
        .unwrap();
    assert_eq!(ok.status, Status::Ok);
    assert!(ok.is_rankable());
    // 2048³ matmul: 2·M·N·K useful FLOPs; f32 A, B read once and C written once.
    assert_eq!(ok.flops, Some(Flops::exact(17_179_869_184)));
    assert_eq!(ok.min_bytes, Some(3 * 2048 * 2048 * 4));
    let expected = Provenance {
        tool: Some("numpy".into()),
        tool_version: Some("2.1.3 (OpenBLAS 0.3.28)".into()),
        date: Some("2026-11-20".into()),
        source: Some("scripts/reference/numpy_matmul.py".into()),
        ..Provenance::default()
    };
    assert_eq!(ok.provenance, Some(expected));
}

#[test]
fn suite_schema() {
    let suite = json!({
        "schema": "perfledger.suite/1",
        "name": "llm-small",
        "cases": [
            {"op": "matmul", "m": 4096, "n": 4096, "k": 4096, "dtypes": ["bf16", "f16"], "backends": ["cpu", "gpu"]},
            {"op": "matmul", "name": "qkv-proj", "batch": 4, "m": 512, "n": 12288, "k": 4096,
             "trans_b": true, "dtypes": ["bf16"], "backends": ["cpu"], "kernels": ["packed"],
             "output": "f32", "seed": 7},
            {"op": "attention", "q_heads": 32, "kv_heads": 8, "q_len": 2048, "kv_len": 2048,
             "head_dim": 128, "causal": true, "dtypes": ["f16"], "backends": ["gpu"]},
            {"op": "attention", "batch": 2, "q_heads": 8, "kv_heads": 8, "q_len": 1, "kv_len": 4096,
             "head_dim": 64, "scale": 0.125, "dtypes": ["bf16"], "backends": ["cpu"]}
        ]
    });
    assert_valid(suite_validator(), &suite);
    // The suite parser (workload.rs) and the schema agree on every case below.
    let parses = |s: &Value| perfledger::workload::Suite::parse(&s.to_string(), "t.json");
    if let Err(e) = parses(&suite) {
        panic!("the parser refuses a suite the schema accepts: {e}");
    }
    let with = |i: usize, key: &str, v: Value| {
        let mut s = suite.clone();
        s["cases"][i][key] = v;
        s
    };
    let without = |i: usize, key: &str| {
        let mut s = suite.clone();
        s["cases"][i].as_object_mut().unwrap().remove(key);
        s
    };
    let top = |key: &str, v: Value| {
        let mut s = suite.clone();
        s[key] = v;
        s
    };
    let bad = vec![
        ("unknown case field", with(0, "tile", json!(64))),
        ("zero dimension", with(0, "m", json!(0))),
        ("negative dimension", with(2, "head_dim", json!(-1))),
        ("attention field on matmul", with(0, "causal", json!(true))),
        (
            "matmul field on attention",
            with(2, "trans_b", json!(false)),
        ),
        ("missing k", without(0, "k")),
        ("missing dtypes", without(0, "dtypes")),
        ("missing kv_len", without(2, "kv_len")),
        ("empty dtypes", with(0, "dtypes", json!([]))),
        ("unknown dtype", with(0, "dtypes", json!(["fp8"]))),
        ("unknown backend", with(0, "backends", json!(["tpu"]))),
        ("unknown op", with(0, "op", json!("conv"))),
        ("zero scale", with(3, "scale", json!(0))),
        ("fractional dimension", with(0, "n", json!(1.5))),
        ("absurd dimension", with(0, "n", json!(1u64 << 40))),
        ("unknown top-level field", top("owner", json!("x"))),
        ("other version", top("schema", json!("perfledger.suite/2"))),
        ("no cases", top("cases", json!([]))),
        ("zero budget", top("case_budget_s", json!(0))),
    ];
    for (what, s) in bad {
        assert!(
            !suite_validator().is_valid(&s),
            "suite schema accepted: {what}"
        );
        assert!(parses(&s).is_err(), "suite parser accepted: {what}");
    }
    let good = top("description", json!("documented"));
    assert_valid(suite_validator(), &good);
    assert!(parses(&good).is_ok());
}

#[test]
fn default_path_uses_utc_host_and_id() {
    let run = realistic_run();
    let p = run.default_path();
    let name = p.file_name().unwrap().to_str().unwrap().to_string();
    assert!(p.starts_with("results/runs"), "{}", p.display());
    assert!(name.contains("-ip-10-0-0-1-ec2-internal-"), "{name}");
    assert!(
        name.ends_with(&format!("{}.json", &run.run_id[..8])),
        "{name}"
    );
    assert_eq!(name.find('T'), Some(8), "{name}");
}

#[test]
fn this_machines_fingerprint_validates() {
    // What `env::collect` and the build script really produce on this machine, not a hand-made
    // fingerprint: keeps the env types and the schema in step.
    let opts = perfledger::env::CollectOptions {
        threads_used: 1,
        isa_selected: "portable".into(),
        identity: perfledger::env::IdentityFlags {
            price: Some(0.5),
            ..Default::default()
        },
        ..Default::default()
    };
    let env = perfledger::env::collect(&opts).unwrap();
    let mut run = RunFile::new(
        perfledger::env::harness_info(),
        env,
        SuiteRef {
            name: "quick".into(),
            source: Some("builtin".into()),
        },
        RunConfig {
            seed: 1,
            case_budget_s: 1.0,
            max_row_s: None,
            run_budget_s: Some(60.0),
            argv: vec![],
            options: None,
            tune_cache: None,
        },
    );
    run.results = realistic_run().results;
    let value: Value = serde_json::from_str(&run.to_json().unwrap()).unwrap();
    assert_valid(run_validator(), &value);
}

#[test]
fn embedded_suites_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/suites");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let errs = errors(suite_validator(), &value);
            assert!(errs.is_empty(), "{}:\n{}", path.display(), errs.join("\n"));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no suites in {}", dir.display());
}

/// A line as `scripts/reference/*.py` write it by default: with the extra provenance fields
/// `timing` and `config`, and a NaN error written as null with a failed verdict.
#[test]
fn reference_script_rows_import() {
    let line = json!({
        "kind": "peer", "op": "attention",
        "shape": {"batch": 1, "q_heads": 8, "kv_heads": 2, "q_len": 128, "kv_len": 256,
                  "head_dim": 64, "causal": true, "scale": 0.125},
        "precision": {"input": "bf16", "accum": "f32", "output": "bf16"},
        "device": {"name": "AMD EPYC 7R13 (2 threads)", "threads": 2, "software": false},
        "instance": null,
        "samples_s": noisy_samples(11, 0.003, 5),
        "verification": {"method": "rows", "samples": 8, "error": null, "bound": 0.0156,
                         "verdict": "fail"},
        "tool": "torch", "tool_version": "2.9.0+cpu",
        "date": "2026-11-26T12:00:00Z", "source": "scripts/reference/torch_attention.py",
        "timing": {"method": "wall", "clock": "time.perf_counter", "warmup_iters": 5,
                   "iters_per_sample": 3, "samples": 11, "sampled_s": 0.1, "stop_reason": "min_time"},
        "config": {"seed": 0, "input_seed": 123, "threads": 2, "argv": ["--quick"]}
    });
    assert_valid(external_validator(), &line);
    let ext = ExternalRow::parse_line(&line.to_string()).unwrap();
    let row = ext.into_row().unwrap();
    assert_eq!(row.status, Status::Incorrect);
    assert_eq!(row.verification.as_ref().unwrap().error, None);
    let prov = row.provenance.as_ref().unwrap();
    assert_eq!(prov.timing.as_ref().unwrap()["iters_per_sample"], 3);
    assert_eq!(prov.config.as_ref().unwrap()["input_seed"], 123);
    // FLOPs come from the shape: end-aligned causal mask, 4·D per unmasked pair per query head.
    // Query i sees keys 0..=kv_len−q_len+i: Σ_{i<128} (129 + i) = 128·129 + 127·128/2.
    let pairs: u64 = (0..128u64).map(|i| 256 - 128 + i + 1).sum();
    assert_eq!(row.flops.unwrap().useful, 4 * 64 * pairs * 8);
    assert_valid(row_validator(), &serde_json::to_value(&row).unwrap());

    let mut not_object = line.clone();
    not_object["timing"] = json!("wall");
    assert_invalid(external_validator(), &not_object);
    assert!(ExternalRow::parse_line(&not_object.to_string()).is_err());
    let mut causal_empty_rows = line.clone();
    causal_empty_rows["shape"]["q_len"] = json!(512);
    assert!(ExternalRow::parse_line(&causal_empty_rows.to_string()).is_err());
}

#[test]
fn kernel_verification_converts() {
    use perfledger_kernels::verify::{Verdict as KVerdict, Verification};
    let nan = Verification {
        method: "full".into(),
        samples: 64,
        error: f64::INFINITY,
        bound: 7.8e-3,
        verdict: KVerdict::Fail,
        detail: Some("NaN at batch 0, row 3, col 7".into()),
    };
    let v = RowVerification::from(nan);
    assert_eq!(v.error, None);
    assert_eq!(v.verdict, Some(Verdict::Fail));
    assert_eq!(v.samples, Some(64));
    let json = serde_json::to_value(&v).unwrap();
    assert!(json.get("error").is_none());
    assert_eq!(json["detail"], "NaN at batch 0, row 3, col 7");
}

/// Every run file committed under `results/` (outside `schema/` and the ignored `runs/`), of any
/// minor, validates against the schema of its own version and is read by this build; older files
/// are read as the current version (their rows' compute units inferred).
#[test]
fn committed_run_files_of_every_minor_are_read() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "schema" && name != "runs" {
                    walk(&path, out);
                }
            } else if name.ends_with(".json") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let v10 = compile(&load_schema("run-1.0.schema.json"));
    let v11 = compile(&load_schema("run-1.1.schema.json"));
    let v12 = compile(&load_schema("run-1.2.schema.json"));
    let v13 = compile(&load_schema("run-1.3.schema.json"));
    let v14 = compile(&load_schema("run-1.4.schema.json"));
    let v15 = compile(&load_schema("run-1.5.schema.json"));
    let v16 = compile(&load_schema("run-1.6.schema.json"));
    let v17 = compile(&load_schema("run-1.7.schema.json"));
    let v18 = compile(&load_schema("run-1.8.schema.json"));
    let mut seen = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(schema) = value["schema"].as_str() else {
            continue;
        };
        if !schema.starts_with("perfledger.run/") {
            continue;
        }
        let validator = match schema {
            "perfledger.run/1.0" => &v10,
            "perfledger.run/1.1" => &v11,
            "perfledger.run/1.2" => &v12,
            "perfledger.run/1.3" => &v13,
            "perfledger.run/1.4" => &v14,
            "perfledger.run/1.5" => &v15,
            "perfledger.run/1.6" => &v16,
            "perfledger.run/1.7" => &v17,
            "perfledger.run/1.8" => &v18,
            "perfledger.run/1.9" => run_validator(),
            other => panic!("{}: unexpected schema {other}", path.display()),
        };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        let run = RunFile::from_slice(text.as_bytes(), &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(run.schema, SCHEMA, "{}", path.display());
        for row in run.results.iter().filter(|r| r.kind == RowKind::Measured) {
            assert!(
                row.kernel.as_ref().and_then(|k| k.unit).is_some(),
                "{}: {:?} has no compute unit",
                path.display(),
                row.id
            );
        }
        *seen.entry(schema.to_string()).or_insert(0) += 1;
    }
    assert!(seen.contains_key("perfledger.run/1.0"), "{seen:?}");
    assert!(seen.contains_key("perfledger.run/1.1"), "{seen:?}");
}
