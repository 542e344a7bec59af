//! The `perfledger` binary end to end: run files validate against the schema, bad input exits 2
//! with one line and nothing written, SIGINT leaves a valid partial run and exits 130, `--plan`
//! lists exactly what `run` does. No timing assertions.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_perfledger"));
    c.env_remove("PERFLEDGER_INSTANCE");
    c
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A tiny suite: two matmul cases, all dtypes, short budgets.
fn tiny_suite(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.json");
    std::fs::write(
        &p,
        r#"{"schema": "perfledger.suite/1", "name": "tiny", "case_budget_s": 0.2, "cases": [
            {"op": "matmul", "m": 33, "n": 47, "k": 65, "dtypes": ["f32", "bf16"], "backends": ["cpu"]},
            {"op": "matmul", "name": "gemv", "m": 1, "n": 300, "k": 257, "trans_b": true, "dtypes": ["f16"], "backends": ["cpu"]},
            {"op": "attention", "q_heads": 4, "kv_heads": 2, "q_len": 16, "kv_len": 16, "head_dim": 64, "dtypes": ["bf16"], "backends": ["cpu"]}
        ]}"#,
    )
    .unwrap();
    p
}

/// The `(case, kernel id)` of every row a `--plan` lists, in order.
fn planned_rows(plan_text: &str) -> Vec<(String, String)> {
    plan_text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0].parse::<usize>().is_ok())
                .then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

fn schema_validator() -> jsonschema::Validator {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/schema/run-1.9.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(root).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the run schema compiles")
}

fn assert_valid(path: &Path) -> Value {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = schema_validator();
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not validate: {errors:#?}",
        path.display()
    );
    // And the harness's own reader accepts it.
    perfledger::runfile::RunFile::read(path).unwrap();
    doc
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn one_line_usage_error(o: &Output) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
}

/// The in-process peers of a plain run: verified `peer` rows naming their library, and the
/// summary's ratio column. OpenBLAS is loaded at run time: where it is missing its rows are
/// `unsupported` saying what to install, unless `PERFLEDGER_REQUIRE_OPENBLAS=1` (set by CI,
/// which installs it) makes its absence a failure.
#[test]
fn a_plain_run_carries_verified_peer_rows_and_the_ratio_column() {
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    let out = dir.path().join("run.json");
    let o = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .args(["--threads", "2", "--probes", "off", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let doc = assert_valid(&out);
    let rows = doc["results"].as_array().unwrap();
    let by_id = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id && r["shape"]["m"] == 33)
            .unwrap_or_else(|| panic!("no row {id}"))
    };
    let required = std::env::var("PERFLEDGER_REQUIRE_OPENBLAS").as_deref() == Ok("1");
    let mut peers = vec![
        "matmul.cpu.ndarray.dot.f32-f32-f32",
        "matmul.cpu.gemm.gemm.f32-f32-f32",
    ];
    let openblas = by_id("matmul.cpu.openblas.sgemm.f32-f32-f32");
    assert_eq!(openblas["kind"], "peer");
    if openblas["status"] == "unsupported" {
        assert!(
            !required,
            "PERFLEDGER_REQUIRE_OPENBLAS=1 but: {}",
            openblas["message"]
        );
        assert!(
            openblas["message"]
                .as_str()
                .unwrap()
                .contains("apt-get install libopenblas0"),
            "{openblas}"
        );
        eprintln!("note: OpenBLAS not installed; its peer rows are unsupported here");
    } else {
        peers.push("matmul.cpu.openblas.sgemm.f32-f32-f32");
        let version = openblas["provenance"]["tool_version"].as_str().unwrap();
        assert!(
            version.contains("core ") && version.contains("threads"),
            "{version}"
        );
        // The same library loaded here, with the same environment: a core type below this
        // CPU's (an old build that does not know it) is the row's caveat and a summary note.
        use perfledger_kernels::peers::openblas::{library, Routine};
        let caveat = library().ok().and_then(|lib| lib.caveat(Routine::Sgemm));
        assert_eq!(
            openblas["provenance"]["config"]["caveat"].as_str(),
            caveat.as_deref(),
            "{openblas}"
        );
        assert_eq!(
            stdout.contains("note: matmul.cpu.openblas.sgemm.f32-f32-f32"),
            caveat.is_some(),
            "{stdout}"
        );
        if let Some(c) = caveat {
            eprintln!("note: {c}");
        }
    }
    for id in peers {
        let r = by_id(id);
        assert_eq!(r["kind"], "peer", "{r}");
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["verification"]["verdict"], "pass", "{r}");
        assert_eq!(r["provenance"]["source"], "in-process");
        assert!(r["samples_s"].as_array().unwrap().len() >= 10);
    }
    // The summary's ratio column: perfledger's f32 row against the best of those peers.
    assert!(stdout.contains("vs best peer"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| {
            l.contains("matmul.cpu.packed.") && l.contains(".f32-f32-f32") && l.contains("33x47x65")
        })
        .unwrap_or_else(|| panic!("no packed f32 row in {stdout}"));
    assert!(line.trim_end().ends_with('×'), "{line}");
    let peer_line = stdout
        .lines()
        .find(|l| l.contains("matmul.cpu.ndarray.dot"))
        .unwrap();
    assert!(peer_line.trim_end().ends_with("peer"), "{peer_line}");
}

/// Without OpenBLAS (a path that does not exist) its rows say what to install; the run goes on.
#[test]
fn a_missing_openblas_is_unsupported_with_what_to_install() {
    let dir = tmpdir();
    let o = bin()
        .env(
            "PERFLEDGER_OPENBLAS",
            dir.path().join("no-such-libopenblas.so"),
        )
        .args(["list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("matmul.cpu.openblas."))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in lines {
        assert!(l.contains(" no "), "{l}");
        assert!(
            l.contains("OpenBLAS not found: install it") && l.contains("no-such-libopenblas.so"),
            "{l}"
        );
    }
}

#[test]
fn run_writes_a_schema_valid_file_and_plan_matches() {
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    let out = dir.path().join("run.json");
    let plan = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .args(["--plan", "--threads", "2"])
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    let planned = planned_rows(&plan_text);
    assert!(!planned.is_empty(), "{plan_text}");
    assert!(!out.exists(), "--plan writes nothing");

    let o = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .args(["--threads", "2", "--probes", "off", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = assert_valid(&out);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["schema"], "perfledger.run/1.9");
    // What the user set is recorded as given (defaults unset).
    assert_eq!(doc["config"]["options"]["threads"], 2);
    assert_eq!(doc["config"]["options"]["probes"], "off");
    assert_eq!(doc["config"]["options"]["isa"], serde_json::Value::Null);
    let rows = doc["results"].as_array().unwrap();
    let ran: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // Same kernels in the same order as the plan.
    assert_eq!(
        ran,
        planned.iter().map(|p| p.1.as_str()).collect::<Vec<_>>()
    );
    for r in rows {
        // perfledger's kernels are `measured`; the in-process reference libraries are `peer`
        // rows naming the library, timed and verified the same way.
        let family = r["kernel"]["family"].as_str().unwrap();
        let peer = [
            "matmul.cpu.openblas",
            "matmul.cpu.ndarray",
            "matmul.cpu.gemm",
        ]
        .contains(&family);
        if peer {
            assert_eq!(r["kind"], "peer", "{r}");
            assert_eq!(r["provenance"]["source"], "in-process", "{r}");
            assert!(r["provenance"]["tool"]
                .as_str()
                .is_some_and(|t| !t.is_empty()));
        } else {
            assert_eq!(r["kind"], "measured", "{r}");
        }
        if r["status"] == "ok" {
            assert!(r["gflops"]["median"].as_f64().unwrap() > 0.0);
            assert_eq!(r["verification"]["verdict"], "pass");
            assert!(r["samples_s"].as_array().unwrap().len() >= 10);
            // Every sampled row says what the machine did meanwhile.
            let noise = &r["noise"];
            assert!(noise["readings"].as_u64().unwrap() >= 10, "{noise}");
            assert!(
                noise["run_queue_median"].as_f64().unwrap() >= 1.0,
                "{noise}"
            );
        } else {
            assert!(r.get("gflops").is_none_or(|g| g.is_null()), "{r}");
        }
    }
    // The fingerprint is there.
    assert!(doc["environment"]["cpu"]["vcpus"].as_u64().unwrap() >= 1);
    assert_eq!(doc["environment"]["cpu"]["threads_used"], 2);
    assert!(doc["harness"]["rustc"].as_str().is_some());
}

#[test]
fn bad_suite_file_is_refused_with_file_case_and_field() {
    let dir = tmpdir();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"schema": "perfledger.suite/1", "name": "bad", "cases": [
            {"op": "matmul", "m": 8, "n": 8, "k": 8, "dtypes": ["f32"], "backends": ["cpu"]},
            {"op": "matmul", "name": "zero", "m": 0, "n": 8, "k": 8, "dtypes": ["f32"], "backends": ["cpu"]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("never.json");
    let o = bin()
        .args(["run", "--suite"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    one_line_usage_error(&o);
    let e = stderr(&o);
    assert!(
        e.contains("bad.json") && e.contains("case 1") && e.contains("`m`"),
        "{e}"
    );
    assert!(!out.exists());
    // Unknown fields too.
    std::fs::write(&bad, r#"{"schema": "perfledger.suite/1", "name": "bad", "cases": [{"op": "matmul", "m": 8, "n": 8, "k": 8, "dtype": ["f32"], "backends": ["cpu"]}]}"#).unwrap();
    let o = bin()
        .args(["run", "--suite"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    one_line_usage_error(&o);
    assert!(stderr(&o).contains("dtype"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn unwritable_and_existing_out_are_refused_before_work() {
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    let file = dir.path().join("regular");
    std::fs::write(&file, "keep me").unwrap();
    // A path under a regular file cannot be created, even by root.
    let o = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .arg("--out")
        .arg(file.join("x.json"))
        .output()
        .unwrap();
    one_line_usage_error(&o);
    assert!(stderr(&o).contains("regular"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // An existing file is not overwritten without --force.
    let o = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    one_line_usage_error(&o);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // Bad flag values.
    for args in [
        vec!["--threads", "0"],
        vec!["--dtype", "fp8"],
        vec!["--case-budget=-1"],
        vec!["--price", "nan"],
        vec!["--isa", "sse9"],
        vec!["--blocking", "mc=0,kc=1,nc=1"],
        vec!["--blocking", "kc=256,kc=128"],
        vec!["--blocking", "ks=256"],
    ] {
        let o = bin()
            .args(["run", "--suite"])
            .arg(&suite)
            .args(&args)
            .arg("--plan")
            .output()
            .unwrap();
        one_line_usage_error(&o);
    }
}

/// `--blocking` may set one size: the packed rows use it (K = 65 in k blocks of 16, verified) and
/// keep each path's cache-derived values for the others, recorded with `blocking_source`.
#[test]
fn a_partial_blocking_override_keeps_the_other_sizes() {
    use perfledger_kernels::cpu::matmul::{Blocking, Path};
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    let out = dir.path().join("run.json");
    let o = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .args([
            "--kernel",
            "packed",
            "--dtype",
            "f32",
            "--blocking",
            "kc=16",
        ])
        .args([
            "--threads",
            "2",
            "--probes",
            "off",
            "--case-budget",
            "0.1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = assert_valid(&out);
    let row = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["shape"]["m"] == 33 && r["kind"] == "measured")
        .unwrap_or_else(|| panic!("no packed f32 row: {doc}"));
    assert_eq!(row["status"], "ok", "{row}");
    let params = &row["kernel"]["params"];
    let isa = row["kernel"]["variant"].as_str().unwrap().parse().unwrap();
    let default: Blocking = Path::Isa(isa).default_blocking();
    assert_eq!(params["kc"], 16, "{params}");
    assert_eq!(
        (params["mc"].as_u64(), params["nc"].as_u64()),
        (Some(default.mc as u64), Some(default.nc as u64)),
        "{params}"
    );
    assert_eq!(params["blocking_source"], "override", "{params}");
}

#[test]
fn sigint_writes_a_valid_partial_run_and_exits_130() {
    let dir = tmpdir();
    let suite = dir.path().join("long.json");
    std::fs::write(
        &suite,
        r#"{"schema": "perfledger.suite/1", "name": "long", "case_budget_s": 30, "cases": [
            {"op": "matmul", "m": 64, "n": 64, "k": 64, "dtypes": ["f32"], "backends": ["cpu"], "kernels": ["packed"]},
            {"op": "matmul", "m": 96, "n": 64, "k": 64, "dtypes": ["f32", "bf16", "f16"], "backends": ["cpu"], "kernels": ["packed"]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("partial.json");
    let mut child = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .args(["--probes", "off", "--ci-target", "0.000001", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let doc = assert_valid(&out);
    assert_eq!(doc["complete"], false);
    // Fewer rows than planned: the run stopped at the interrupt.
    let plan = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .arg("--plan")
        .output()
        .unwrap();
    let planned = String::from_utf8_lossy(&plan.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|f| f.parse::<usize>().is_ok())
        })
        .count();
    assert!(planned >= 2);
    assert!(
        doc["results"].as_array().unwrap().len() < planned,
        "stopped early"
    );
}

#[test]
fn list_and_env_work() {
    let o = bin().arg("list").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("matmul.cpu.packed.portable.bf16-f32-bf16"));
    assert!(text.contains("matmul.cpu.naive.scalar.f32-f32-f32"));
    // The in-process peers name their library and what it chose here.
    let line = text
        .lines()
        .find(|l| l.starts_with("matmul.cpu.gemm.gemm.f32-f32-f32 "))
        .unwrap_or_else(|| panic!("no gemm crate row: {text}"));
    assert!(
        line.contains(" yes ") && line.contains("peer: gemm 0.19"),
        "{line}"
    );
    let o = bin().arg("env").output().unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["environment"]["cpu"]["isa_detected"].is_array());
    // `--threads` as `run` takes it (a sitting's probes between its rounds use its count).
    let o = bin().args(["env", "--threads", "1"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["environment"]["cpu"]["threads_used"], 1);
    one_line_usage_error(&bin().args(["env", "--threads", "0"]).output().unwrap());
}

#[test]
fn import_adds_peer_rows_with_flops_from_the_shape() {
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    let run = dir.path().join("run.json");
    let o = bin()
        .args(["run", "--suite"])
        .arg(&suite)
        .args([
            "--kernel", "packed", "--dtype", "f32", "--probes", "off", "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = dir.path().join("peer.jsonl");
    let line = r#"{"kind": "peer", "op": "matmul", "shape": {"batch": 1, "m": 33, "n": 47, "k": 65, "trans_b": false}, "precision": {"input": "f32", "accum": "f32", "output": "f32"}, "device": {"name": "cpu (2 threads)"}, "instance": null, "samples_s": [0.001, 0.0011, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001], "verification": {"method": "rows", "samples": 4, "error": 1e-7, "bound": 1e-5, "verdict": "pass"}, "tool": "numpy", "tool_version": "2.0", "date": "2026-11-26T12:00:00Z", "source": "scripts/reference/numpy_matmul.py"}"#;
    std::fs::write(&rows, format!("{line}\n")).unwrap();
    let o = bin()
        .arg("import")
        .arg(&rows)
        .arg("--into")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = assert_valid(&run);
    let peer = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "peer")
        .expect("peer row");
    assert_eq!(peer["flops"]["useful"], 2 * 33 * 47 * 65);
    // A malformed line is refused with its line number, and the run file is untouched.
    let before = std::fs::read_to_string(&run).unwrap();
    std::fs::write(&rows, format!("{line}\n{{\"kind\": \"peer\"}}\n")).unwrap();
    let o = bin()
        .arg("import")
        .arg(&rows)
        .arg("--into")
        .arg(&run)
        .output()
        .unwrap();
    one_line_usage_error(&o);
    let e = stderr(&o);
    assert!(e.contains("peer.jsonl:2") || e.contains("line 2"), "{e}");
    assert_eq!(std::fs::read_to_string(&run).unwrap(), before);
}

/// A reader that has gone (`perfledger run --plan | head -1`) ends the binary quietly: killed by
/// SIGPIPE as any Unix filter is, with no panic on stderr.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    // The pipe's read end is closed before the binary starts, so its first write finds no
    // reader (EPIPE and SIGPIPE) whatever the timing.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = bin()
        .args(["run", "--plan", "--suite"])
        .arg(&suite)
        .stdout(writer)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "status {:?}, stderr: {err}",
        o.status
    );
}

/// `--rounds 2`: the plan says so, every row of the run is made of two turns (the run file
/// valid, the option recorded, the rows in plan order), and a count outside 1..=100 is a usage
/// error.
#[test]
fn rounds_measure_each_case_in_turns_and_record_them() {
    let dir = tmpdir();
    let suite = tiny_suite(dir.path());
    let out = dir.path().join("run.json");
    let args = [
        "--rounds",
        "2",
        "--threads",
        "2",
        "--kernel",
        "naive,packed",
        "--suite",
    ];
    let plan = bin()
        .args(["run", "--plan"])
        .args(args)
        .arg(&suite)
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(plan_text.contains("in 2 turns"), "{plan_text}");
    let o = bin()
        .args(["run", "--probes", "off"])
        .args(args)
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = assert_valid(&out);
    assert_eq!(doc["config"]["options"]["rounds"], 2);
    let rows = doc["results"].as_array().unwrap();
    // The rows in plan order, whatever order the turns ran them in.
    let planned: Vec<String> = planned_rows(&plan_text).into_iter().map(|p| p.1).collect();
    let ran: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!planned.is_empty());
    assert_eq!(ran, planned);
    assert!(rows.len() >= 3, "{}", rows.len());
    let mut ok = 0;
    for r in rows.iter().filter(|r| r["status"] == "ok") {
        ok += 1;
        assert_eq!(r["timing"]["turns"], 2, "{r}");
        assert_eq!(r["verification"]["verdict"], "pass");
        assert!(r["samples_s"].as_array().unwrap().len() >= 10, "{r}");
        assert!(
            r["message"].as_str().unwrap().starts_with("2 turns of 2"),
            "{r}"
        );
    }
    assert!(ok >= 3, "{rows:?}");
    for bad in ["0", "101", "two"] {
        let o = bin()
            .args(["run", "--plan", "--rounds", bad, "--suite"])
            .arg(&suite)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "--rounds {bad}: {}", stderr(&o));
    }
}
