//! The spec and price database: the embedded data is complete and consistent, user files are
//! validated with errors naming the file and field, and matching never guesses.

use perfledger::env::{GpuInfo, InstanceInfo};
use perfledger::specs::matching::{self, SpecRef};
use perfledger::specs::{
    parse_date, parse_prices, parse_specs, Database, Figure, LoadOptions, PricingModel, SpecDType,
    SpecError, EMBEDDED_PRICES, PRICES_JSON, SPECS_JSON,
};
use std::io::Write;
use std::path::PathBuf;

fn opts() -> LoadOptions {
    LoadOptions {
        as_of: parse_date("2026-11-26").unwrap(),
        max_price_age_days: 365,
    }
}

fn db() -> Database {
    Database::embedded(&opts()).expect("the embedded database is valid")
}

/// A minimal valid accelerator entry, as JSON text, with `patch` applied to its fields.
fn accel(patch: serde_json::Value) -> serde_json::Value {
    let mut a = serde_json::json!({
        "id": "test-chip",
        "vendor": "Test",
        "name": "Test Chip",
        "unit": "chip",
        "status": "confirmed",
        "peak_tflops": {"bf16": {"dense": 100}},
        "mem_bw_tbs": 1.0,
        "source": "a datasheet",
        "as_of": "2025-01-01"
    });
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            a.as_object_mut().unwrap().remove(k);
        } else {
            a[k] = v.clone();
        }
    }
    a
}

fn specs_doc(entries: Vec<serde_json::Value>) -> String {
    serde_json::json!({"schema": "perfledger.specs/1", "accelerators": entries}).to_string()
}

fn offer(patch: serde_json::Value) -> serde_json::Value {
    let mut o = serde_json::json!({
        "id": "my-negotiated-h100",
        "provider": "Example Cloud",
        "instance": "8x H100 node",
        "pricing_model": "reserved",
        "device": "h100-sxm",
        "device_count": 8,
        "usd_per_hour": 16.0,
        "status": "single_source",
        "source": "our contract",
        "as_of": "2026-10-01"
    });
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            o.as_object_mut().unwrap().remove(k);
        } else {
            o[k] = v.clone();
        }
    }
    o
}

fn prices_doc(entries: Vec<serde_json::Value>) -> String {
    serde_json::json!({"schema": "perfledger.prices/1", "offers": entries}).to_string()
}

fn specs_err(doc: &str) -> String {
    parse_specs(doc, "user-specs.json", true, &opts())
        .expect_err("refused")
        .to_string()
}

fn prices_err(doc: &str) -> String {
    let e = match parse_prices(doc, "user-prices.json", true, &opts()) {
        Err(e) => e,
        Ok(p) => {
            // Cross-references are checked on merging.
            let specs = parse_specs(SPECS_JSON, "embedded", false, &opts()).unwrap();
            Database::merge(
                vec![("embedded".into(), false, specs)],
                vec![("user-prices.json".into(), true, p)],
                opts(),
            )
            .expect_err("refused")
        }
    };
    e.to_string()
}

fn temp_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("file.json");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, p)
}

#[test]
fn embedded_database_is_complete() {
    let db = db();
    assert!(db.accelerators.len() >= 25, "{}", db.accelerators.len());
    assert!(db.cpus.len() >= 14);
    assert!(db.offers.len() >= 60);
    let as_of = parse_date("2026-11-26").unwrap();
    for a in &db.accelerators {
        assert!(!a.source.trim().is_empty(), "{}", a.id);
        assert!(a.as_of.date <= as_of, "{} {}", a.id, a.as_of);
        assert!(a.as_of_note.is_some(), "{}: as_of_note", a.id);
        for (dt, p) in &a.peak_tflops {
            if let Some(s) = a.sparse_tflops.get(dt) {
                assert!(p.dense.upper() < *s, "{} {}", a.id, dt.name());
            }
        }
        for c in &a.measured_ceilings {
            assert!(c.tflops <= a.peak_tflops[&c.dtype].dense.upper());
            assert!(!c.source.is_empty());
        }
    }
    for c in &db.cpus {
        assert!(!c.source.trim().is_empty(), "{}", c.id);
        assert!(c.as_of.date <= as_of, "{}", c.id);
    }
    for o in &db.offers {
        assert!(!o.source.trim().is_empty(), "{}", o.id);
        assert!(o.as_of.date <= as_of, "{}", o.id);
        // One row per offer: no pricing model inside an instance name.
        assert!(!o.instance.contains("Capacity Block"), "{}", o.id);
        let d = o
            .device
            .as_deref()
            .expect("embedded offers name a spec device");
        assert!(
            db.accelerator(d).is_some() || db.cpu(d).is_some(),
            "{}",
            o.id
        );
    }
    // Ids are unique across the whole database.
    let mut ids: Vec<&str> = db
        .accelerators
        .iter()
        .map(|a| a.id.as_str())
        .chain(db.cpus.iter().map(|c| c.id.as_str()))
        .chain(db.offers.iter().map(|o| o.id.as_str()))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    // The capacity-block price is its own offer with its own id.
    let cb = db
        .offer("aws-p5.48xlarge-capacity-block-us-east-1")
        .unwrap();
    assert_eq!(cb.instance, "p5.48xlarge");
    assert_eq!(cb.pricing_model, PricingModel::CapacityBlock);
}

#[test]
fn alias_table() {
    let db = db();
    for (alias, id) in [
        ("trn3", "aws-trainium3"),
        ("TRN3", "aws-trainium3"),
        ("trainium-3", "aws-trainium3"),
        ("trn2", "aws-trainium2"),
        ("h100-sxm", "nvidia-h100-sxm"),
        ("h200", "nvidia-h200-sxm"),
        ("b200", "nvidia-b200"),
        ("mi300x", "amd-mi300x"),
        ("mi355x", "amd-mi355x"),
        ("tpu-v6e", "google-tpu-v6e"),
        ("l4", "nvidia-l4"),
        ("graviton3", "aws-graviton3"),
    ] {
        assert_eq!(
            db.resolve(alias).map(|e| e.id().to_string()).as_deref(),
            Some(id),
            "{alias}"
        );
    }
    assert!(db.resolve("h100-sxm6").is_none());
    assert_eq!(db.aliases()["trn3"], "aws-trainium3");
    assert_eq!(db.aliases()["h100-sxm"], "nvidia-h100-sxm");
}

#[test]
fn published_figures_used_in_tests_are_as_curated() {
    let db = db();
    let h100 = db.accelerator("h100-sxm").unwrap();
    assert_eq!(h100.peak_gflops(SpecDType::Bf16), Some(989_000.0));
    assert_eq!(h100.bw_gbs(), Some(3350.0));
    assert_eq!(
        h100.published_ceiling(SpecDType::Bf16).unwrap().tflops,
        794.5
    );
    let trn3 = db.accelerator("trn3").unwrap();
    assert_eq!(trn3.peak_gflops(SpecDType::Bf16), Some(671_000.0));
    // 2517 is Trainium3's sparse BF16 (= its dense MXFP8), never its dense BF16.
    assert_eq!(trn3.sparse_tflops[&SpecDType::Bf16], 2517.0);
    assert!(trn3.published_ceiling(SpecDType::Bf16).is_none());
    // Conflicting bandwidths kept as a range with both sources; the upper value is used.
    match trn3.mem_bw_tbs.as_ref().unwrap() {
        Figure::Range(r) => {
            assert_eq!((r.min, r.max), (4.7, 4.9));
            assert_eq!(r.sources.len(), 2);
        }
        other => panic!("expected a range, got {other:?}"),
    }
    assert_eq!(trn3.bw_gbs(), Some(4900.0));
}

#[test]
fn p5_price_per_gpu_hour() {
    let db = db();
    let p5 = db.offer("aws-p5.48xlarge-on-demand-us-east-1").unwrap();
    assert_eq!(p5.point_price(), Some(55.04));
    assert_eq!(p5.device_count, 8);
    // $55.04 per hour for 8 GPUs = $6.88 per GPU-hour.
    let per_gpu = p5.device_price().unwrap().upper();
    assert!((per_gpu - 6.88).abs() < 1e-12, "{per_gpu}");
    // The default projection price of an H100 SXM is this confirmed on-demand offer.
    assert_eq!(
        db.reference_offer("nvidia-h100-sxm").map(|o| o.id.as_str()),
        Some("aws-p5.48xlarge-on-demand-us-east-1")
    );
    // Trainium3 has no published price.
    assert!(db.reference_offer("aws-trainium3").is_none());
    assert!(db
        .offers_for("aws-trainium3")
        .all(|o| o.instance_price().is_none()));
}

#[test]
fn refuses_entries_without_source_or_date() {
    let e = specs_err(&specs_doc(vec![accel(serde_json::json!({"source": null}))]));
    assert!(e.contains("user-specs.json") && e.contains("source"), "{e}");
    let e = specs_err(&specs_doc(vec![accel(serde_json::json!({"source": " "}))]));
    assert!(e.contains("accelerators[0].source"), "{e}");
    let e = specs_err(&specs_doc(vec![accel(serde_json::json!({"as_of": null}))]));
    assert!(e.contains("as_of"), "{e}");
    for bad in ["2025", "Dec 2025", "~2024-12", "2025-13-01", "2025-02-30"] {
        let e = specs_err(&specs_doc(vec![accel(serde_json::json!({"as_of": bad}))]));
        assert!(
            e.contains("accelerators[0].as_of") && e.contains("ISO"),
            "{bad}: {e}"
        );
    }
    let e = prices_err(&prices_doc(vec![offer(serde_json::json!({"source": "-"}))]));
    assert!(e.contains("offers[0].source"), "{e}");
    let e = prices_err(&prices_doc(vec![offer(serde_json::json!({"as_of": null}))]));
    assert!(e.contains("as_of"), "{e}");
}

#[test]
fn refuses_sparse_figures_used_as_dense() {
    // A peak has only a `dense` field: a sparse figure cannot be entered as one.
    let e = specs_err(&specs_doc(vec![accel(
        serde_json::json!({"peak_tflops": {"bf16": {"sparse": 2517}}}),
    )]));
    assert!(e.contains("peak_tflops") && e.contains("sparse"), "{e}");
    // A dense peak at or above the published sparse figure is the sparse figure.
    let e = specs_err(&specs_doc(vec![accel(serde_json::json!({
        "peak_tflops": {"bf16": {"dense": 2517}},
        "sparse_tflops": {"bf16": 2517}
    }))]));
    assert!(
        e.contains("accelerators[0].peak_tflops.bf16.dense")
            && e.contains("sparse figure used as dense"),
        "{e}"
    );
    // A measured ceiling above the dense peak is refused too.
    let e = specs_err(&specs_doc(vec![accel(serde_json::json!({
        "measured_ceilings": [{"kind": "max_achievable_matmul", "dtype": "bf16", "tflops": 150,
                               "source": "x", "as_of": "2025-01-01"}]
    }))]));
    assert!(e.contains("measured_ceilings[0].tflops"), "{e}");
}

#[test]
fn refuses_duplicate_ids_and_aliases() {
    let e = specs_err(&specs_doc(vec![
        accel(serde_json::json!({})),
        accel(serde_json::json!({})),
    ]));
    assert!(
        e.contains("accelerators[1].id") && e.contains("duplicate"),
        "{e}"
    );
    let e = prices_err(&prices_doc(vec![
        offer(serde_json::json!({})),
        offer(serde_json::json!({})),
    ]));
    assert!(e.contains("offers[1].id") && e.contains("duplicate"), "{e}");
    // An alias already naming another chip.
    let (_d, p) = temp_file(&specs_doc(vec![accel(
        serde_json::json!({"aliases": ["trn3"]}),
    )]));
    let e = Database::load(std::slice::from_ref(&p), &[], &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&p.display().to_string())
            && e.contains("aliases[0]")
            && e.contains("aws-trainium3"),
        "{e}"
    );
}

#[test]
fn refuses_unknown_enum_values() {
    for (patch, field) in [
        (
            serde_json::json!({"status": "kinda"}),
            "accelerators[0].status",
        ),
        (serde_json::json!({"unit": "rack"}), "accelerators[0].unit"),
        (
            serde_json::json!({"peak_tflops": {"int4": {"dense": 1}}}),
            "accelerators[0].peak_tflops",
        ),
        (serde_json::json!({"colour": "red"}), "accelerators[0]"),
    ] {
        let e = specs_err(&specs_doc(vec![accel(patch.clone())]));
        assert!(
            e.contains("user-specs.json") && e.contains(field),
            "{patch}: {e}"
        );
    }
    for (patch, field) in [
        (
            serde_json::json!({"pricing_model": "hourly"}),
            "offers[0].pricing_model",
        ),
        (serde_json::json!({"status": "rumour"}), "offers[0].status"),
    ] {
        let e = prices_err(&prices_doc(vec![offer(patch.clone())]));
        assert!(e.contains(field), "{patch}: {e}");
    }
    // Every pricing model of the enum is accepted.
    for m in [
        "on-demand",
        "spot",
        "reserved",
        "capacity-block",
        "marketplace",
    ] {
        parse_prices(
            &prices_doc(vec![offer(serde_json::json!({"pricing_model": m}))]),
            "p.json",
            true,
            &opts(),
        )
        .unwrap();
    }
}

#[test]
fn refuses_bad_prices_and_future_dates() {
    for bad in [
        serde_json::json!(0),
        serde_json::json!(-1.5),
        serde_json::json!("NaN"),
        serde_json::json!({"min": 2.0, "max": 1.0, "sources": ["a"]}),
        serde_json::json!({"min": 0.0, "max": 1.0, "sources": ["a"]}),
    ] {
        let e = prices_err(&prices_doc(vec![offer(
            serde_json::json!({"usd_per_hour": bad}),
        )]));
        assert!(e.contains("offers[0].usd_per_hour"), "{bad}: {e}");
    }
    // A number too large for f64 (JSON has no NaN or infinity literals).
    let doc = prices_doc(vec![offer(serde_json::json!({}))]).replace("16.0", "1e999");
    assert!(prices_err(&doc).contains("user-prices.json"));
    // Dates after the report's date are refused in user files.
    let e = prices_err(&prices_doc(vec![offer(
        serde_json::json!({"as_of": "2026-11-27"}),
    )]));
    assert!(e.contains("offers[0].as_of") && e.contains("future"), "{e}");
    // ... judged against --as-of, not the clock.
    let back = LoadOptions {
        as_of: parse_date("2026-09-30").unwrap(),
        max_price_age_days: 365,
    };
    let e = parse_prices(
        &prices_doc(vec![offer(serde_json::json!({}))]),
        "p.json",
        true,
        &back,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("future"), "{e}");
    // Unknown device.
    let e = prices_err(&prices_doc(vec![offer(
        serde_json::json!({"device": "h900"}),
    )]));
    assert!(e.contains("offers[0].device"), "{e}");
}

#[test]
fn user_files_add_and_override_and_old_prices_are_flagged() {
    let (_d1, specs) = temp_file(&specs_doc(vec![accel(serde_json::json!({
        "id": "nvidia-h100-sxm",
        "name": "H100 SXM (our clocks)",
        "peak_tflops": {"bf16": {"dense": 900}}
    }))]));
    let (_d2, prices) = temp_file(&prices_doc(vec![
        offer(serde_json::json!({})),
        offer(serde_json::json!({
            "id": "vastai-h100-quote", "provider": "Vast.ai", "instance": "H100 SXM host 4411",
            "pricing_model": "marketplace", "device_count": 1, "usd_per_hour": 1.79,
            "as_of": "2025-06-01", "source": "vast.ai console quote"
        })),
    ]));
    let o = opts();
    let db = Database::load(
        std::slice::from_ref(&specs),
        std::slice::from_ref(&prices),
        &o,
    )
    .unwrap();
    let h100 = db.accelerator("h100-sxm").unwrap();
    assert_eq!(h100.name, "H100 SXM (our clocks)");
    assert_eq!(h100.peak_gflops(SpecDType::Bf16), Some(900_000.0));
    assert!(db.origin("nvidia-h100-sxm").unwrap().user);
    let mine = db.offer("my-negotiated-h100").unwrap();
    assert_eq!(mine.device.as_deref(), Some("nvidia-h100-sxm"));
    // A user price is the projection price of its chip (first in file order).
    assert_eq!(
        db.reference_offer("nvidia-h100-sxm").map(|o| o.id.as_str()),
        Some("my-negotiated-h100")
    );
    // Age counts from --as-of: 2025-06-01 → 2026-11-26 is 543 days, past 365.
    let quote = db.offer("vastai-h100-quote").unwrap();
    assert_eq!(db.price_age(quote), (543, true));
    assert_eq!(db.price_age(mine), (56, false));
    // A later --as-of or a tighter limit changes only the flag.
    let strict = LoadOptions {
        as_of: parse_date("2026-11-26").unwrap(),
        max_price_age_days: 30,
    };
    let db = Database::load(&[], &[prices], &strict).unwrap();
    assert_eq!(
        db.price_age(db.offer("my-negotiated-h100").unwrap()),
        (56, true)
    );
    // Embedded entries stay as they are.
    assert_eq!(
        db.origin("aws-p5.48xlarge-on-demand-us-east-1")
            .unwrap()
            .file,
        EMBEDDED_PRICES
    );
}

#[test]
fn errors_name_the_file_and_field() {
    let (_d, p) = temp_file(&prices_doc(vec![offer(
        serde_json::json!({"usd_per_hour": -3}),
    )]));
    let e = Database::load(&[], std::slice::from_ref(&p), &opts()).unwrap_err();
    match &e {
        SpecError::Field { file, field, .. } => {
            assert_eq!(file, &p.display().to_string());
            assert_eq!(field, "offers[0].usd_per_hour");
        }
        other => panic!("{other:?}"),
    }
    let (_d, p) = temp_file("{ not json");
    let e = Database::load(std::slice::from_ref(&p), &[], &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&p.display().to_string()) && e.contains("JSON"),
        "{e}"
    );
    let (_d, p) = temp_file(r#"{"schema": "perfledger.prices/1", "offers": []}"#);
    let e = Database::load(&[p], &[], &opts()).unwrap_err().to_string();
    assert!(
        e.contains("schema") && e.contains("perfledger.specs/1"),
        "{e}"
    );
    // The embedded documents pass the same checks.
    parse_specs(SPECS_JSON, "embedded", false, &opts()).unwrap();
    parse_prices(PRICES_JSON, "embedded", false, &opts()).unwrap();
}

fn gpu(name: &str, vendor: Option<u32>, device: Option<u32>, software: bool) -> GpuInfo {
    GpuInfo {
        index: 0,
        name: name.into(),
        vendor_id: vendor,
        device_id: device,
        software,
        ..GpuInfo::default()
    }
}

#[test]
fn matching_by_pci_id_or_exact_name_never_a_guess() {
    let db = db();
    let id = |m: matching::DeviceMatch<'_>| m.spec.id().to_string();
    // wgpu reports an H100 SXM as "NVIDIA H100 80GB HBM3", vendor 0x10de, device 0x2330.
    let m = matching::gpu(
        &db,
        &gpu("NVIDIA H100 80GB HBM3", Some(0x10de), Some(0x2330), false),
    )
    .unwrap();
    assert_eq!(id(m.clone()), "nvidia-h100-sxm");
    assert_eq!(m.how, "PCI 10de:2330");
    // The PCI id decides even when the name is unusual.
    assert_eq!(
        id(matching::gpu(&db, &gpu("GH100", Some(0x10de), Some(0x2335), false)).unwrap()),
        "nvidia-h200-sxm"
    );
    // Without ids: the exact adapter name.
    assert_eq!(
        id(matching::gpu(&db, &gpu("NVIDIA H100 80GB HBM3", None, None, false)).unwrap()),
        "nvidia-h100-sxm"
    );
    assert_eq!(
        id(matching::gpu(&db, &gpu("NVIDIA L4", None, None, false)).unwrap()),
        "nvidia-l4"
    );
    // Near misses are not matched: no substring or fuzzy matching.
    for name in [
        "NVIDIA H100",
        "H100",
        "NVIDIA H100 80GB",
        "NVIDIA GeForce RTX 4080",
    ] {
        assert!(
            matching::gpu(&db, &gpu(name, None, None, false)).is_err(),
            "{name}"
        );
    }
    assert!(matching::gpu(&db, &gpu("Mystery", Some(0x10de), Some(0xffff), false)).is_err());
    // Software adapters are never matched, whatever they claim.
    for g in [
        gpu(
            "llvmpipe (LLVM 15.0.7, 256 bits)",
            Some(0x10005),
            Some(0),
            true,
        ),
        gpu("NVIDIA H100 80GB HBM3", Some(0x10de), Some(0x2330), true),
        gpu("SwiftShader Device (Subzero)", None, None, false),
    ] {
        let e = matching::gpu(&db, &g).unwrap_err();
        assert!(e.contains("software adapter"), "{e}");
    }
    // Trainium by the Neuron PCI ids.
    assert_eq!(
        matching::by_pci(&db, 0x1d0f, 0x7564)
            .map(|m| m.spec.id().to_string())
            .as_deref(),
        Some("aws-trainium3")
    );
    // CPUs by exact /proc/cpuinfo model name only.
    let c = matching::by_cpu_model(&db, "Intel(R) Xeon(R) Platinum 8488C").unwrap();
    assert!(matches!(c.spec, SpecRef::Cpu(c) if c.id == "intel-spr-8488c-aws"));
    assert!(matching::by_cpu_model(&db, "AMD EPYC").is_none());
    assert!(matching::by_cpu_model(&db, "Intel(R) Xeon(R) Platinum 8488").is_none());
}

#[test]
fn instance_matching() {
    let db = db();
    let inst = |t: &str, provider: Option<&str>| InstanceInfo {
        provider: provider.map(str::to_string),
        instance_type: Some(t.into()),
        detected_by: Some("flag".into()),
        ..Default::default()
    };
    let m = matching::instance(&db, &inst("c7i.2xlarge", Some("aws"))).unwrap();
    let o = m.offer;
    assert_eq!(o.id, "aws-c7i.2xlarge-on-demand-us-east-1");
    assert_eq!((o.device_count, o.vcpus), (4, Some(8)));
    assert!(
        m.how.contains("pricing model not stated: on-demand"),
        "{}",
        m.how
    );
    // Several offers of one type: on-demand when the run states no pricing model.
    let o = matching::instance(&db, &inst("p5.48xlarge", None))
        .unwrap()
        .offer;
    assert_eq!(o.pricing_model, PricingModel::OnDemand);
    // A stated pricing model selects its offer.
    let mut cb = inst("p5.48xlarge", Some("AWS"));
    cb.pricing_model = Some("capacity-block".into());
    assert_eq!(
        matching::instance(&db, &cb).unwrap().offer.id,
        "aws-p5.48xlarge-capacity-block-us-east-1"
    );
    // A stated model the data lacks is no match, and says which models there are.
    let mut spot = inst("c7i.2xlarge", None);
    spot.pricing_model = Some("spot".into());
    let e = matching::instance(&db, &spot).unwrap_err();
    assert!(
        e.contains("no spot offer") && e.contains("on-demand"),
        "{e}"
    );
    // Unknown types and the wrong provider match nothing, and say why.
    let e = matching::instance(&db, &inst("c99.large", None)).unwrap_err();
    assert!(e.contains("c99.large"), "{e}");
    let e = matching::instance(&db, &inst("c7i.2xlarge", Some("gcp"))).unwrap_err();
    assert!(e.to_lowercase().contains("aws") && e.contains("gcp"), "{e}");
    // The device of an instance does not depend on region or pricing model.
    let mut far = inst("c7a.large", None);
    far.region = Some("ap-south-1".into());
    assert!(matching::instance(&db, &far).is_err());
    assert_eq!(
        matching::instance_device(&db, &far).and_then(|o| o.device.as_deref()),
        Some("amd-genoa-9r14-aws")
    );
}

#[test]
fn offers_are_matched_by_region() {
    let region_offer = |id: &str, region: Option<&str>, model: &str, usd: f64| {
        offer(serde_json::json!({
            "id": id, "provider": "aws", "instance": "c7a.large", "region": region,
            "pricing_model": model, "device": "amd-genoa-9r14-aws", "device_count": 2,
            "usd_per_hour": usd, "as_of": "2026-11-01", "source": "test catalog"
        }))
    };
    let (_d, prices) = temp_file(&prices_doc(vec![
        region_offer("east-od", Some("us-east-1"), "on-demand", 0.10264),
        region_offer("west-od", Some("eu-west-1"), "on-demand", 0.1198),
        region_offer("east-spot", Some("us-east-1"), "spot", 0.041),
        region_offer("any-mkt", None, "marketplace", 0.09),
    ]));
    let db = Database::load(&[], std::slice::from_ref(&prices), &opts()).unwrap();
    let run = |region: Option<&str>, model: Option<&str>| InstanceInfo {
        provider: Some("aws".into()),
        instance_type: Some("c7a.large".into()),
        region: region.map(str::to_string),
        pricing_model: model.map(str::to_string),
        ..Default::default()
    };
    let id = |i: InstanceInfo| matching::instance(&db, &i).map(|m| m.offer.id.clone());
    assert_eq!(id(run(Some("us-east-1"), None)).unwrap(), "east-od");
    assert_eq!(
        id(run(Some("eu-west-1"), Some("on-demand"))).unwrap(),
        "west-od"
    );
    assert_eq!(
        id(run(Some("US-EAST-1"), Some("spot"))).unwrap(),
        "east-spot"
    );
    // Several regions at different prices and no region stated: no guess.
    let e = id(run(None, None)).unwrap_err();
    assert!(
        e.contains("pass --region") && e.contains("eu-west-1"),
        "{e}"
    );
    // A region the data has no offer in names the regions it has.
    let e = id(run(Some("ap-south-1"), Some("spot"))).unwrap_err();
    assert!(e.contains("ap-south-1") && e.contains("us-east-1"), "{e}");
    // Offers for no region in particular serve every region.
    assert_eq!(
        id(run(Some("ap-south-1"), Some("marketplace"))).unwrap(),
        "any-mkt"
    );
    // One region priced: a run without a region gets it, and the match says so.
    let m = matching::instance(&db, &run(None, Some("spot"))).unwrap();
    assert_eq!(m.offer.id, "east-spot");
    assert!(m.how.contains("region not stated"), "{}", m.how);
}
