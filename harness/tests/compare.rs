//! `perfledger compare`, `export` and `ingest-criterion` end to end, on run files derived from a
//! committed run (`results/quick-noise/run1.json`) with known changes: an A/A pair is quiet, a
//! slowed row is flagged and no other, rows that cannot be compared are never regressions, a newly
//! incorrect row fails, differing configurations are reported first, bad files exit 2 naming the
//! file; the JSON outputs validate against their schemas. No timing assertions (nothing is timed).

use perfledger::runfile::{IdleWorkers, RowKind, RunFile, RunOptions, Status, Verdict};
use perfledger::stats::Sample;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfledger"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> RunFile {
    RunFile::read(root().join("results/quick-noise/run1.json")).unwrap()
}

fn validator(name: &str) -> jsonschema::Validator {
    let path = root().join("results/schema").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(name: &str, doc: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}");
}

/// A deterministic jitter in [−amp, +amp] for (round, row, sample).
fn jitter(round: usize, row: usize, i: usize, amp: f64) -> f64 {
    let mut x = (round as u64 + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((row as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(i as u64 + 1);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    let u = (x % 1_000_001) as f64 / 1_000_000.0;
    (2.0 * u - 1.0) * amp
}

/// One round: every `ok` row's samples scaled by `factor(row index)` and a ±0.5% jitter, its
/// statistics recomputed.
fn round(run: &RunFile, round: usize, factor: &dyn Fn(usize) -> f64) -> RunFile {
    let mut r = run.clone();
    for (j, row) in r.results.iter_mut().enumerate() {
        if row.status != Status::Ok || row.samples_s.is_empty() {
            continue;
        }
        let f = factor(j) * (1.0 + jitter(round, j, 0, 0.005));
        let values: Vec<f64> = row
            .samples_s
            .iter()
            .enumerate()
            .map(|(i, s)| s * f * (1.0 + jitter(round, j, i + 1, 0.002)))
            .collect();
        let sample = Sample::new(values).unwrap();
        row.set_samples(&sample, &sample.summary());
        let msg = row.message.clone();
        row.set_status(Status::Ok, msg).unwrap();
    }
    r
}

fn write(dir: &Path, name: &str, run: &RunFile) -> PathBuf {
    let p = dir.join(name);
    run.write(&p, true).unwrap();
    p
}

/// `rounds` files per side; `cand` changes each candidate round.
fn sides(
    dir: &Path,
    rounds: usize,
    cand: &dyn Fn(usize) -> f64,
    edit: &dyn Fn(&mut RunFile),
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let t = template();
    let base: Vec<PathBuf> = (0..rounds)
        .map(|i| write(dir, &format!("base{i}.json"), &round(&t, i, &|_| 1.0)))
        .collect();
    let cand: Vec<PathBuf> = (0..rounds)
        .map(|i| {
            let mut r = round(&t, 100 + i, cand);
            edit(&mut r);
            write(dir, &format!("cand{i}.json"), &r)
        })
        .collect();
    (base, cand)
}

fn compare(base: &[PathBuf], cand: &[PathBuf], extra: &[&str]) -> (Output, Value) {
    let o = bin()
        .arg("compare")
        .arg("--base")
        .args(base)
        .arg("--candidate")
        .args(cand)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o, doc)
}

fn verdicts(doc: &Value) -> Vec<(String, String)> {
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The index of the first `ok` row of the template, and its key's kernel id.
fn first_ok() -> (usize, String) {
    let t = template();
    let (j, row) = t
        .results
        .iter()
        .enumerate()
        .find(|(_, r)| r.status == Status::Ok && r.kind == RowKind::Measured)
        .unwrap();
    (j, row.id.clone().unwrap())
}

#[test]
fn an_a_a_pair_flags_nothing_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    for paired in [false, true] {
        let (b, c) = sides(dir.path(), 5, &|_| 1.0, &|_| {});
        let extra: &[&str] = if paired { &["--paired"] } else { &[] };
        let (o, doc) = compare(&b, &c, extra);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_valid("compare-1.schema.json", &doc);
        assert_eq!(doc["counts"]["slower"], 0);
        assert_eq!(doc["counts"]["faster"], 0);
        assert!(doc["counts"]["no_change"].as_u64().unwrap() > 10);
        let how = if paired { "pairs" } else { "rounds" };
        for r in doc["rows"].as_array().unwrap() {
            if r["verdict"] == "no_change" {
                assert_eq!(r["resampled"], how, "{r}");
                assert!(r["mde"].as_f64().unwrap() >= 0.03, "{r}");
            }
        }
        assert_eq!(doc["method"]["paired"], paired);
    }
}

#[test]
fn a_slowed_row_is_flagged_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let (j, id) = first_ok();
    for paired in [false, true] {
        let (b, c) = sides(
            dir.path(),
            5,
            &|row| if row == j { 1.2 } else { 1.0 },
            &|_| {},
        );
        let extra: &[&str] = if paired { &["--paired"] } else { &[] };
        let (o, doc) = compare(&b, &c, extra);
        assert_eq!(o.status.code(), Some(1), "{doc}");
        let slower: Vec<_> = verdicts(&doc)
            .into_iter()
            .filter(|(_, v)| v == "slower")
            .collect();
        assert_eq!(slower.len(), 1, "{slower:?}");
        assert!(slower[0].0.contains(&id), "{slower:?}");
        let row = doc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["verdict"] == "slower")
            .unwrap();
        let ratio = row["ratio"].as_f64().unwrap();
        assert!((ratio - 1.2).abs() < 0.02, "{row}");
        assert!(row["holm_level"].as_f64().unwrap() <= 0.05);
    }
    // A faster row is reported, and does not fail the job.
    let (b, c) = sides(
        dir.path(),
        5,
        &|row| if row == j { 0.8 } else { 1.0 },
        &|_| {},
    );
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(0), "{doc}");
    assert_eq!(doc["counts"]["faster"], 1);
}

#[test]
fn one_round_per_side_resamples_samples_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = sides(dir.path(), 1, &|_| 1.0, &|_| {});
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(0), "{doc}");
    let r = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["verdict"] == "no_change")
        .unwrap();
    assert_eq!(r["resampled"], "samples");
    let table = bin()
        .args(["compare"])
        .args([&b[0], &c[0]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("samples otherwise"), "{text}");
    assert!(text.contains("Holm"), "{text}");
}

#[test]
fn rows_that_cannot_be_compared_are_never_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = first_ok();
    // The candidate lacks one row and is 3× slower on everything else, on another CPU model.
    let (b, c) = sides(dir.path(), 3, &|_| 3.0, &|r| {
        r.results.remove(j);
        r.environment.cpu.model = Some("Another CPU".into());
    });
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(0), "{doc}");
    assert_eq!(doc["counts"]["slower"], 0);
    let reasons: Vec<&str> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "not_comparable")
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("hardware differs")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("only in base")),
        "{reasons:?}"
    );
}

#[test]
fn a_newly_incorrect_row_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (j, id) = first_ok();
    let (b, c) = sides(dir.path(), 3, &|_| 1.0, &|r| {
        let row = &mut r.results[j];
        if let Some(v) = row.verification.as_mut() {
            v.verdict = Some(Verdict::Fail);
        }
        row.set_status(Status::Incorrect, Some("broken on purpose".into()))
            .unwrap();
    });
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(1), "{doc}");
    assert_eq!(doc["counts"]["newly_incorrect"], 1);
    let bad: Vec<_> = verdicts(&doc)
        .into_iter()
        .filter(|(_, v)| v == "newly_incorrect")
        .collect();
    assert!(bad[0].0.contains(&id));
}

#[test]
fn a_config_difference_is_reported_first_and_compared_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = sides(dir.path(), 3, &|_| 2.0, &|r| {
        r.environment.cpu.threads_used = 1;
    });
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("threads_used (2 → 1)"), "{err}");
    assert_eq!(doc["rows_compared"], false);
    assert_eq!(doc["rows"].as_array().unwrap().len(), 0);
    assert_eq!(doc["config_differences"][0]["setting"], "threads_used");

    let (o, doc) = compare(&b, &c, &["--allow-config-diff"]);
    assert_eq!(o.status.code(), Some(1), "{doc}");
    assert_valid("compare-1.schema.json", &doc);
    assert!(doc["counts"]["slower"].as_u64().unwrap() > 10);
    // The table says the configuration differs before anything else.
    let t = bin()
        .arg("compare")
        .args([&b[0], &c[0]])
        .arg("--allow-config-diff")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&t.stdout);
    let first_rows = text.find("verdict").unwrap();
    assert!(
        text.find("configuration DIFFERS").unwrap() < first_rows,
        "{text}"
    );
}

#[test]
fn rounds_of_one_side_must_share_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let t = template();
    let a = write(dir.path(), "a.json", &t);
    let mut other = t.clone();
    other.config.seed += 1;
    let b = write(dir.path(), "b.json", &other);
    let o = bin()
        .arg("compare")
        .arg("--base")
        .args([&a, &b])
        .arg("--candidate")
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("base rounds differ in configuration") && err.contains("seed"),
        "{err}"
    );
}

#[test]
fn bad_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", &template());
    let text = std::fs::read_to_string(&good).unwrap();
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let not_json = dir.path().join("notjson.json");
    std::fs::write(&not_json, "hello").unwrap();
    let wrong_field = dir.path().join("field.json");
    std::fs::write(
        &wrong_field,
        text.replacen("\"complete\": true", "\"complete\": 3", 1),
    )
    .unwrap();
    let missing = dir.path().join("missing.json");
    for bad in [&truncated, &not_json, &wrong_field, &missing] {
        let o = bin().arg("compare").args([&good, bad]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", bad.display());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&bad.display().to_string()), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let o = bin().arg("compare").arg(&good).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = bin()
        .arg("compare")
        .args([&good, &good])
        .args(["--threshold", "-1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // An A/A noise file that is not a compare output.
    let o = bin()
        .arg("compare")
        .args([&good, &good])
        .arg("--noise")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("perfledger.compare/1"));
}

#[test]
fn a_noise_file_raises_the_tolerance_of_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = first_ok();
    let (b, c) = sides(
        dir.path(),
        5,
        &|row| if row == j { 1.2 } else { 1.0 },
        &|_| {},
    );
    let (_, mut aa) = compare(&b, &b, &[]);
    // Pretend the A/A run saw ±30% on every row.
    for r in aa["rows"].as_array_mut().unwrap() {
        if !r["ci95"].is_null() {
            r["ci95"] = serde_json::json!([0.7, 1.3]);
        }
    }
    let noise = dir.path().join("aa.json");
    std::fs::write(&noise, serde_json::to_string(&aa).unwrap()).unwrap();
    let (o, doc) = compare(&b, &c, &["--noise", noise.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{doc}");
    let row = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ratio"].as_f64().is_some_and(|x| x > 1.1))
        .unwrap();
    assert!(
        (row["tolerance"].as_f64().unwrap() - 0.3).abs() < 1e-9,
        "{row}"
    );
    assert_eq!(row["verdict"], "no_change");
}

/// Under CPU contention (the candidate's rows saw a run queue of 4 on 2 CPUs), a 1.5× slower
/// row is within what the scheduler alone can cause: no regression, the tolerance raised to the
/// contention floor (1.0) and the row marked noisy; a 3× slower row is still flagged.
#[test]
fn cpu_contention_raises_the_tolerance_to_what_it_can_explain() {
    let dir = tempfile::tempdir().unwrap();
    let (j, id) = first_ok();
    let loaded = |r: &mut RunFile| {
        for row in r.results.iter_mut() {
            row.noise = Some(perfledger::runfile::RowNoise {
                steal_pct: None,
                run_queue_median: Some(4.0),
                run_queue_max: Some(4),
                readings: 10,
                online_cpus: Some(2),
            });
        }
    };
    for (factor, want) in [(1.5, "no_change"), (3.0, "slower")] {
        let (b, c) = sides(
            dir.path(),
            5,
            &|row| if row == j { factor } else { 1.0 },
            &loaded,
        );
        let (o, doc) = compare(&b, &c, &[]);
        assert_valid("compare-1.schema.json", &doc);
        let row = doc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"].as_str() == Some(id.as_str()))
            .unwrap();
        assert_eq!(row["verdict"], want, "{row}");
        assert_eq!(row["noisy"], true, "{row}");
        assert_eq!(row["noise_floor_contention"].as_f64(), Some(1.0), "{row}");
        assert!(row["tolerance"].as_f64().unwrap() >= 1.0, "{row}");
        let slower = doc["counts"]["slower"].as_u64().unwrap();
        assert_eq!(slower, u64::from(want == "slower"), "{doc}");
        assert_eq!(o.status.code(), Some(i32::from(want == "slower")), "{doc}");
    }
}

#[test]
fn markdown_puts_regressions_first() {
    let dir = tempfile::tempdir().unwrap();
    let (j, id) = first_ok();
    let (b, c) = sides(
        dir.path(),
        3,
        &|row| if row == j { 1.5 } else { 1.0 },
        &|_| {},
    );
    let o = bin()
        .arg("compare")
        .arg("--base")
        .args(&b)
        .arg("--candidate")
        .args(&c)
        .args(["--format", "md"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let md = String::from_utf8_lossy(&o.stdout);
    let regressions = md.find("### Regressions").unwrap();
    let details = md.find("<details>").unwrap();
    assert!(regressions < details);
    assert!(md[regressions..details].contains(&id));
    assert!(md.contains("Holm"));
}

#[test]
fn exports_match_their_documented_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = template();
    let (j, _) = first_ok();
    // A failed row is not exported.
    if let Some(v) = t.results[j].verification.as_mut() {
        v.verdict = Some(Verdict::Fail);
    }
    t.results[j].set_status(Status::Incorrect, None).unwrap();
    let run = write(dir.path(), "run.json", &t);
    let ok = t.results.iter().filter(|r| r.is_rankable()).count();
    for (format, schema) in [
        ("bmf", "export-bmf.schema.json"),
        ("gab-bigger", "export-gab.schema.json"),
        ("gab-smaller", "export-gab.schema.json"),
    ] {
        let o = bin()
            .arg("export")
            .arg(&run)
            .args(["--format", format])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_valid(schema, &doc);
        let n = match &doc {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => unreachable!(),
        };
        assert_eq!(n, ok, "{format}");
        // The failed row's benchmark is not among them.
        let failed = perfledger::export::bench_name(&t.results[j]);
        let names: Vec<String> = match &doc {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .map(|e| e["name"].as_str().unwrap().into())
                .collect(),
            _ => unreachable!(),
        };
        assert!(!names.contains(&failed), "{failed} exported");
        assert!(names.iter().all(|n| !n.is_empty()));
        if format == "gab-bigger" {
            assert!(doc
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["unit"] == "GFLOP/s"));
        }
        if format == "gab-smaller" {
            assert!(doc.as_array().unwrap().iter().all(|e| e["unit"] == "ns"));
        }
        if format == "bmf" {
            for (_, b) in doc.as_object().unwrap() {
                let l = &b["latency"];
                assert!(l["lower_value"].as_f64() <= l["value"].as_f64());
                assert!(l["value"].as_f64() <= l["upper_value"].as_f64());
            }
        }
    }
}

fn fixture(version: &str) -> PathBuf {
    root().join(format!(
        "harness/tests/fixtures/criterion-{version}/criterion"
    ))
}

#[test]
fn criterion_trees_of_both_layouts_are_ingested() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["0.5", "0.7"] {
        let out = dir.path().join(format!("crit-{version}.json"));
        let o = bin()
            .arg("ingest-criterion")
            .arg(fixture(version))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_valid("run-1.9.schema.json", &doc);
        let rows = doc["results"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["id"], "matmul.cpu.naive.scalar.f32-f32-f32");
        assert_eq!(rows[0]["shape"]["m"], 32);
        assert_eq!(rows[0]["flops"]["useful"], 2 * 32 * 32 * 32);
        assert_eq!(rows[0]["status"], "ok");
        assert_eq!(rows[0]["verification"]["method"], "bench-before-timing");
        let foreign = doc["foreign"].as_array().unwrap();
        assert_eq!(foreign.len(), 1);
        assert_eq!(foreign[0]["id"], "fib/fib 20");
        // The ingested run joins compare and report.
        let o = bin().arg("compare").args([&out, &out]).output().unwrap();
        assert_eq!(o.status.code(), Some(0));
        let o = bin().arg("report").arg(&out).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("fib/fib 20"), "{text}");
    }
}

#[test]
fn malformed_criterion_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("criterion");
    let bench = "matmul_32x32x32/matmul.cpu.naive.scalar.f32-f32-f32/new";
    std::fs::create_dir_all(copy.join(bench)).unwrap();
    for f in ["benchmark.json", "estimates.json", "sample.json"] {
        std::fs::copy(fixture("0.7").join(bench).join(f), copy.join(bench).join(f)).unwrap();
    }
    let out = dir.path().join("out.json");
    let ingest = || {
        bin()
            .arg("ingest-criterion")
            .arg(&copy)
            .arg("--out")
            .arg(&out)
            .arg("--force")
            .output()
            .unwrap()
    };
    assert_eq!(ingest().status.code(), Some(0));
    // Unknown fields are criterion's business: ignored.
    let sample = copy.join(bench).join("sample.json");
    let text = std::fs::read_to_string(&sample).unwrap();
    std::fs::write(&sample, text.replacen('{', "{\"future_field\": 1, ", 1)).unwrap();
    assert_eq!(ingest().status.code(), Some(0));
    // What is needed must be there and well-formed.
    for bad in [
        text[..text.len() / 2].to_string(),
        text.replacen("\"times\"", "\"timez\"", 1),
        r#"{"iters": [1, 2], "times": [5.0]}"#.to_string(),
        r#"{"iters": [0], "times": [5.0]}"#.to_string(),
    ] {
        std::fs::write(&sample, bad).unwrap();
        let o = ingest();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("sample.json"), "{err}");
    }
    std::fs::remove_file(&sample).unwrap();
    let o = ingest();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sample.json"));
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = bin()
        .arg("ingest-criterion")
        .arg(&empty)
        .arg("--out")
        .arg(&out)
        .arg("--force")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no criterion results"));
}

#[test]
fn the_perf_workflow_parses_and_names_existing_commands() {
    use yaml_rust2::Yaml;
    let path = root().join(".github/workflows/perf.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("perf.yml is YAML");
    let doc = &docs[0];
    let Yaml::Hash(jobs) = &doc["jobs"] else {
        panic!("perf.yml has no jobs");
    };
    // Every step's shell script.
    let mut scripts = Vec::new();
    for (_, job) in jobs {
        assert!(!job["runs-on"].is_badvalue(), "a job without runs-on");
        for step in job["steps"].as_vec().expect("steps") {
            if let Some(run) = step["run"].as_str() {
                scripts.push(run.to_string());
            }
        }
    }
    let help = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let (mut named, mut ci_perf) = (0, false);
    for script in &scripts {
        let words: Vec<&str> = script.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w == "perfledger" {
                let cmd = words.get(i + 1).expect("a command after perfledger");
                assert!(
                    commands.contains(cmd),
                    "perf.yml runs `perfledger {cmd}`, which this build lacks ({commands:?})"
                );
                named += 1;
            }
            if w.starts_with("scripts/") {
                assert!(
                    root().join(w).exists(),
                    "perf.yml runs {w}, which does not exist"
                );
                ci_perf |= *w == "scripts/ci-perf.sh";
            }
        }
    }
    assert!(named >= 1, "perf.yml runs no perfledger command");
    assert!(ci_perf, "perf.yml does not run scripts/ci-perf.sh");
}

#[test]
fn rows_whose_read_alongside_moved_between_the_sides_are_noisy() {
    use perfledger::runfile::ReadAlongside;
    // Row j read its inputs alongside at 35 GB/s in every base round and 58 in every candidate
    // round (the host's memory moved): noisy, naming both. Row j + 1 read 35 and 37 (within
    // 15%): not noisy. Neither changed speed, so neither is flagged.
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = first_ok();
    let t = template();
    let along = |gbs: f64| ReadAlongside {
        samples_gbs: vec![gbs; 3],
        median_gbs: gbs,
        patterns: [("seq1".to_string(), gbs)].into_iter().collect(),
        share: Some(0.8),
    };
    let side = |name: &str, first: usize, moved: f64, steady: f64| -> Vec<PathBuf> {
        (0..3)
            .map(|i| {
                let mut r = round(&t, first + i, &|_| 1.0);
                r.results[j].read_alongside = Some(along(moved));
                r.results[j + 1].read_alongside = Some(along(steady));
                write(dir.path(), &format!("{name}{i}.json"), &r)
            })
            .collect()
    };
    let b = side("base", 0, 35.0, 35.0);
    let c = side("cand", 100, 58.0, 37.0);
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(0), "{doc}");
    let rows = doc["rows"].as_array().unwrap();
    let noisy: Vec<&Value> = rows.iter().filter(|r| r["noisy"] == true).collect();
    assert_eq!(noisy.len(), 1, "{noisy:?}");
    let detail = noisy[0]["noise_detail"].as_str().unwrap();
    assert!(
        detail.contains("35.0 GB/s (base)") && detail.contains("58.0 GB/s (candidate)"),
        "{detail}"
    );
    assert_eq!(doc["method"]["noisy_read_alongside"], 0.15);
    assert_valid("compare-1.schema.json", &doc);
}

#[test]
fn rows_that_saw_steal_or_a_long_run_queue_are_noisy_and_keep_their_verdict() {
    use perfledger::runfile::RowNoise;
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = first_ok();
    let quiet = RowNoise {
        steal_pct: Some(0.0),
        run_queue_median: Some(1.0),
        run_queue_max: Some(2),
        readings: 20,
        online_cpus: Some(2),
    };
    let (b, c) = sides(
        dir.path(),
        3,
        &|row| if row == j { 1.5 } else { 1.0 },
        &|r| {
            for (i, row) in r.results.iter_mut().enumerate() {
                row.noise = Some(quiet);
                if i == j {
                    row.noise = Some(RowNoise {
                        steal_pct: Some(7.5),
                        ..quiet
                    });
                }
                if i == j + 1 {
                    row.noise = Some(RowNoise {
                        run_queue_median: Some(3.0),
                        ..quiet
                    });
                }
            }
        },
    );
    let (o, doc) = compare(&b, &c, &[]);
    assert_eq!(o.status.code(), Some(1), "{doc}");
    let rows = doc["rows"].as_array().unwrap();
    let noisy: Vec<&Value> = rows.iter().filter(|r| r["noisy"] == true).collect();
    assert_eq!(noisy.len(), 2, "{noisy:?}");
    assert_eq!(noisy[0]["verdict"], "slower");
    assert!(noisy[0]["noise_detail"]
        .as_str()
        .unwrap()
        .contains("steal 7.5%"));
    assert!(noisy[1]["noise_detail"]
        .as_str()
        .unwrap()
        .contains("run queue 3 on 2 CPUs"));
    assert!(noisy[1]["noise_detail"]
        .as_str()
        .unwrap()
        .contains("cand0.json"));
    assert_eq!(doc["counts"]["noisy"], 2);
}

#[test]
fn committed_comparisons_validate_against_the_schema() {
    let dir = root().join("results/ci-perf");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(doc["schema"], "perfledger.compare/1", "{}", path.display());
            assert_valid("compare-1.schema.json", &doc);
            n += 1;
        }
    }
    assert!(n >= 10, "results/ci-perf holds {n} comparisons");
}

/// A run made before `--idle-workers` (a 1.7 file: `config.options` without `idle_workers`; its
/// pool's workers slept between calls) reads as `sleep`, and against a run whose workers spun
/// the configuration differs.
#[test]
fn a_run_before_idle_workers_reads_as_sleep_and_differs_from_spin() {
    let dir = tempfile::tempdir().unwrap();
    let t = template();
    let with = |mut r: RunFile, idle_workers: IdleWorkers| {
        r.config.options = Some(RunOptions {
            idle_workers,
            ..RunOptions::default()
        });
        r
    };
    let base: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = write(
                dir.path(),
                &format!("base{i}.json"),
                &with(round(&t, i, &|_| 1.0), IdleWorkers::Spin),
            );
            let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            v["schema"] = "perfledger.run/1.7".into();
            v["config"]["options"]
                .as_object_mut()
                .unwrap()
                .remove("idle_workers");
            std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
            let back = RunFile::read(&p).unwrap();
            assert_eq!(
                back.config.options.unwrap().idle_workers,
                IdleWorkers::Sleep
            );
            p
        })
        .collect();
    let cand: Vec<PathBuf> = (0..3)
        .map(|i| {
            write(
                dir.path(),
                &format!("cand{i}.json"),
                &with(round(&t, 100 + i, &|_| 1.0), IdleWorkers::Spin),
            )
        })
        .collect();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&cand[0]).unwrap()).unwrap();
    assert_eq!(written["config"]["options"]["idle_workers"], "spin");
    let (o, doc) = compare(&base, &cand, &[]);
    assert_eq!(o.status.code(), Some(2), "{doc}");
    assert_eq!(
        doc["config_differences"][0]["setting"],
        "options.idle_workers"
    );
    assert_eq!(
        doc["config_differences"].as_array().unwrap().len(),
        1,
        "{doc}"
    );
}

/// `rounds` is written only above 1, so a run in one go (any file before 1.9) reads as one
/// turn: against a `--rounds 4` run, compare lists `options.rounds` as a configuration
/// difference, and two runs in one go have none.
#[test]
fn runs_in_turns_differ_from_runs_in_one_go() {
    let dir = tempfile::tempdir().unwrap();
    let t = template();
    let with = |mut r: RunFile, rounds: Option<u32>| {
        r.config.options = Some(RunOptions {
            rounds,
            ..RunOptions::default()
        });
        r
    };
    let side = |name: &str, seed: usize, rounds: Option<u32>| -> Vec<PathBuf> {
        (0..3)
            .map(|i| {
                write(
                    dir.path(),
                    &format!("{name}{i}.json"),
                    &with(round(&t, seed + i, &|_| 1.0), rounds),
                )
            })
            .collect()
    };
    let one_go = side("base", 0, None);
    let turns = side("cand", 100, Some(4));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&one_go[0]).unwrap()).unwrap();
    assert!(written["config"]["options"].get("rounds").is_none());
    let (o, doc) = compare(&one_go, &turns, &[]);
    assert_eq!(o.status.code(), Some(2), "{doc}");
    let diffs = doc["config_differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{doc}");
    assert_eq!(diffs[0]["setting"], "options.rounds");
    assert_eq!(diffs[0]["base"], "1");
    assert_eq!(diffs[0]["candidate"], "4");
    let again = side("again", 200, None);
    let (o, doc) = compare(&one_go, &again, &[]);
    assert!(
        doc["config_differences"].as_array().unwrap().is_empty(),
        "{doc}"
    );
    assert_ne!(o.status.code(), Some(2), "{doc}");
}
