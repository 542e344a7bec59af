//! `perfledger run` on the GPU backend end to end (lavapipe in CI): software adapters only with
//! `--allow-software-gpu`, GPU rows labelled with the adapter, timestamp timing recorded with its
//! wall-clock cross-check, `environment.gpus` filled, `--gpu` selection. No timing assertions.
//!
//! Without any adapter the tests print a notice and pass, unless `PERFLEDGER_REQUIRE_GPU=1`.
#![cfg(feature = "gpu")]

use perfledger_kernels::gpu::context::{self, AdapterReport};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_perfledger"));
    c.env_remove("PERFLEDGER_INSTANCE");
    // Never a developer's own tune cache.
    c.env_remove("PERFLEDGER_TUNE_CACHE")
        .env("XDG_CACHE_HOME", "/nonexistent/perfledger-test-cache");
    c
}

/// The adapters, or `None` (with a notice) when there are none and none are required.
fn adapters() -> Option<Vec<AdapterReport>> {
    let a = context::adapters();
    if a.is_empty() {
        if std::env::var("PERFLEDGER_REQUIRE_GPU").as_deref() == Ok("1") {
            panic!("PERFLEDGER_REQUIRE_GPU=1 but wgpu finds no adapter");
        }
        eprintln!("NOTICE: GPU CLI tests skipped: no adapter (install mesa-vulkan-drivers)");
        return None;
    }
    Some(a)
}

fn suite(dir: &Path) -> PathBuf {
    let p = dir.join("gpu.json");
    std::fs::write(
        &p,
        r#"{"schema": "perfledger.suite/1", "name": "gpu-tiny", "case_budget_s": 0.3, "cases": [
            {"op": "matmul", "m": 33, "n": 47, "k": 65, "dtypes": ["f32", "bf16"], "backends": ["gpu"], "kernels": ["tiled", "naive"]}
        ]}"#,
    )
    .unwrap();
    p
}

fn run(args: &[&str]) -> (std::process::Output, Option<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let s = suite(dir.path());
    let o = bin()
        .args(["run", "--suite"])
        .arg(&s)
        .args(["--probes", "off", "--out"])
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    let doc = std::fs::read_to_string(&out)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (o, doc)
}

#[test]
fn gpu_rows_run_verified_on_the_adapter_with_timestamps() {
    let Some(adapters) = adapters() else { return };
    let (o, doc) = run(&["--allow-software-gpu"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let doc = doc.expect("run file written");
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "tiled + naive × f32 + bf16");
    let gpus = doc["environment"]["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), adapters.len());
    let used: Vec<&Value> = gpus.iter().filter(|g| g["used"] == true).collect();
    assert_eq!(used.len(), 1);
    let used = used[0];
    for r in rows {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["backend"], "gpu");
        assert_eq!(r["device"]["name"], used["name"]);
        assert_eq!(r["device"]["software"], used["software"]);
        assert_eq!(r["device"]["gpu_index"], used["index"]);
        assert_eq!(r["verification"]["verdict"], "pass");
        let has_ts = used["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "TIMESTAMP_QUERY");
        if has_ts {
            assert_eq!(r["timing"]["method"], "timestamp", "{r}");
            let msg = r["message"].as_str().unwrap_or("");
            assert!(msg.contains("timestamp vs wall clock"), "{msg}");
        }
    }
}

#[test]
fn software_adapters_need_the_flag_and_bad_selectors_are_usage_errors() {
    let Some(adapters) = adapters() else { return };
    if adapters.iter().all(|a| a.software) {
        let (o, doc) = run(&[]);
        assert_eq!(o.status.code(), Some(0));
        let doc = doc.unwrap();
        for r in doc["results"].as_array().unwrap() {
            assert_eq!(r["status"], "unsupported", "{r}");
            assert!(r["message"]
                .as_str()
                .unwrap()
                .contains("--allow-software-gpu"));
        }
    }
    let (o, doc) = run(&["--allow-software-gpu", "--gpu", "99"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no GPU adapter 99"));
    assert!(doc.is_none(), "nothing written on bad input");
    // By name: the first adapter's name selects it.
    let name = adapters[0]
        .name
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (o, doc) = run(&["--allow-software-gpu", "--gpu", &name]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = doc.unwrap();
    assert!(doc["results"][0]["device"]["name"]
        .as_str()
        .unwrap()
        .contains(&name));
}

#[test]
fn env_lists_the_adapters() {
    let Some(adapters) = adapters() else { return };
    let o = bin().arg("env").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let gpus = doc["environment"]["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), adapters.len());
    assert_eq!(gpus[0]["name"], adapters[0].name.as_str());
    assert!(gpus[0]["limits"]["max_storage_buffer_binding_size"].is_u64());
}

/// `tune` on the adapter (lavapipe in CI: 20 s cap, the small class only) writes a
/// `perfledger.tune/1` cache valid against its schema; `run --tune-cache` then takes the entry's
/// configuration (row params, `config_source: tuned`, the file's SHA-256 in the run file); an
/// entry for another driver version is ignored and the run says so; a bad cache is refused
/// naming the file and the field.
#[test]
fn tune_writes_a_cache_that_run_uses() {
    let Some(_) = adapters() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tune.json");
    let kernel = "matmul.gpu.tiled.wgsl.f32-f32-f32";
    let tune = |cache: &Path, cap: &str| {
        bin()
            .args([
                "tune",
                "--allow-software-gpu",
                "--kernel",
                kernel,
                "--time-cap",
                cap,
            ])
            .arg("--tune-cache")
            .arg(cache)
            .output()
            .unwrap()
    };
    let o = tune(&cache, "12");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("time cap 12 s"), "{stderr}");
    assert!(stderr.contains("skipped by the cap"), "{stderr}");
    let bytes = std::fs::read(&cache).unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/schema/tune-1.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errs: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errs.is_empty(), "{errs:?}");
    let entries = doc["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    let small = entries
        .iter()
        .find(|e| e["kernel"] == kernel && e["shape_class"] == "small")
        .expect("an entry for the small class");
    assert!(small["verified"].as_u64().unwrap() >= 1);

    // A 128³ f32 tiled row (class small) takes the entry.
    let suite = dir.path().join("s.json");
    std::fs::write(
        &suite,
        r#"{"schema": "perfledger.suite/1", "name": "tuned", "case_budget_s": 0.2, "cases": [
            {"op": "matmul", "m": 128, "n": 128, "k": 128, "dtypes": ["f32"], "backends": ["gpu"], "kernels": ["tiled"]}
        ]}"#,
    )
    .unwrap();
    let run_with = |c: &Path, out: &str| {
        let out = dir.path().join(out);
        let o = bin()
            .args(["run", "--allow-software-gpu", "--probes", "off", "--suite"])
            .arg(&suite)
            .arg("--tune-cache")
            .arg(c)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let doc = std::fs::read_to_string(&out)
            .ok()
            .map(|t| serde_json::from_str::<Value>(&t).unwrap());
        (o, doc)
    };
    let run_ok = |c: &Path, out: &str| {
        let (o, run) = run_with(c, out);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "{err}");
        run.expect("run file written")
    };
    let run = run_ok(&cache, "run.json");
    let row = &run["results"][0];
    assert_eq!(row["status"], "ok", "{row}");
    let params = &row["kernel"]["params"];
    assert_eq!(params["config_source"], "tuned", "{params}");
    for (k, v) in small["params"].as_object().unwrap() {
        assert_eq!(&params[k], v, "param {k}: row {params} vs entry {small}");
    }
    let tc = &run["config"]["tune_cache"];
    assert_eq!(
        tc["sha256"],
        perfledger::runfile::sha256_hex(&bytes),
        "{tc}"
    );
    assert!(tc["notes"].to_string().contains("tuned"), "{tc}");
    assert_eq!(
        run["config"]["options"]["tune_cache"],
        cache.display().to_string()
    );

    // The same entry for another driver version: ignored, default used, and said.
    let mut other = doc.clone();
    for e in other["entries"].as_array_mut().unwrap() {
        e["adapter"]["driver_version"] = "some other version".into();
    }
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, serde_json::to_vec(&other).unwrap()).unwrap();
    let run = run_ok(&other_path, "run2.json");
    assert_eq!(
        run["results"][0]["kernel"]["params"]["config_source"],
        "default"
    );
    let notes = run["config"]["tune_cache"]["notes"].to_string();
    assert!(
        notes.contains("some other version") && notes.contains("ignored"),
        "{notes}"
    );

    // A bad cache: exit 2, naming the file and the field; nothing written.
    let mut bad = doc.clone();
    bad["entries"][0]["gflops"] = (-1.0).into();
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let (o, run) = run_with(&bad_path, "run3.json");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.json") && err.contains("entries[0].gflops"),
        "{err}"
    );
    assert!(run.is_none());
    // tune refuses to update an unreadable cache (it is left as it was).
    let o = tune(&bad_path, "1");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read(&bad_path).unwrap(),
        serde_json::to_vec(&bad).unwrap()
    );
}
