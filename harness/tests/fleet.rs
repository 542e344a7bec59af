//! The fleet path end to end on this machine: `scripts/fleet/task.sh` three times with three
//! instance identities, a committed peer fixture instead of the Python peers, the Trainium
//! fixture imported, prices from the SkyPilot catalog fixture, one report — whose prices,
//! GFLOP/s, GFLOP/$, ranking, kind labels and Trainium-3 break-even price are recomputed here
//! from the run files' own samples and the price file.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_perfledger")
}

/// One fleet node: `task.sh` with an identity in the environment; returns the run file.
fn task(out: &Path, ident: &[(&str, &str)]) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg("scripts/fleet/task.sh").current_dir(root());
    for (k, _) in std::env::vars() {
        if k.starts_with("PERFLEDGER_") || k.starts_with("SKYPILOT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PERFLEDGER_BIN", bin())
        .env(
            "PERFLEDGER_SUITE",
            "harness/tests/fixtures/fleet/suite.json",
        )
        .env("PERFLEDGER_RUN_ARGS", "--probes off --threads 1")
        .env(
            "PERFLEDGER_PEERS",
            "harness/tests/fixtures/fleet/peer-numpy.jsonl",
        )
        .env("PERFLEDGER_OUT_DIR", out);
    for (k, v) in ident {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "task.sh failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&o.stderr)
    );
    let path = PathBuf::from(stdout.lines().last().expect("task.sh prints the run file"));
    assert!(path.starts_with(out) && path.exists(), "{path:?}");
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let o = Command::new(bin())
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "perfledger {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[track_caller]
fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
        "{what}: {a} vs {b}"
    );
}

fn upper(fig: &Value) -> f64 {
    fig.as_f64()
        .unwrap_or_else(|| fig["max"].as_f64().expect("a value or a range"))
}

#[test]
fn three_identities_and_trainium_fixture_make_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let sky: Vec<(String, String)> =
        std::fs::read_to_string(root().join("harness/src/env/fixtures/skypilot.env"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("SKYPILOT_"))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
    let r1 = task(
        &out,
        &[
            ("PERFLEDGER_INSTANCE", "c7a.large"),
            ("PERFLEDGER_PROVIDER", "aws"),
            ("PERFLEDGER_REGION", "us-east-1"),
            ("PERFLEDGER_PRICING_MODEL", "on-demand"),
        ],
    );
    // A spot node inside a SkyPilot job: region from the user's env twin, SkyPilot's job as
    // provenance.
    let mut spot = vec![
        ("PERFLEDGER_INSTANCE", "c7a.large"),
        ("PERFLEDGER_REGION", "eu-west-1"),
        ("PERFLEDGER_PRICING_MODEL", "spot"),
    ];
    spot.extend(sky.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let r2 = task(&out, &spot);
    let r3 = task(
        &out,
        &[
            ("PERFLEDGER_INSTANCE", "m7i.large"),
            ("PERFLEDGER_PROVIDER", "aws"),
            ("PERFLEDGER_REGION", "us-east-1"),
            ("PERFLEDGER_PRICING_MODEL", "marketplace"),
            ("PERFLEDGER_PRICE", "0.09"),
        ],
    );
    let trn = root().join("harness/tests/fixtures/trainium/neuron-fixture.jsonl");
    run_ok(&[
        "import",
        trn.to_str().unwrap(),
        "--into",
        r1.to_str().unwrap(),
    ]);
    let prices = dir.path().join("prices.json");
    run_ok(&[
        "prices",
        "import-sky-catalog",
        "harness/tests/fixtures/sky-catalog/aws/vms.csv",
        "--as-of",
        "2026-12-01",
        "--out",
        prices.to_str().unwrap(),
    ]);
    let report = dir.path().join("report.json");
    let runs = [r1.clone(), r2.clone(), r3.clone()];
    let mut args: Vec<&str> = vec!["report"];
    args.extend(runs.iter().map(|p| p.to_str().unwrap()));
    args.extend([
        "--prices",
        prices.to_str().unwrap(),
        "--as-of",
        "2026-12-02",
        "--format",
        "json",
        "--out",
        report.to_str().unwrap(),
    ]);
    run_ok(&args);
    let md = dir.path().join("report.md");
    let n = args.len();
    args[n - 3] = "md";
    args[n - 1] = md.to_str().unwrap();
    run_ok(&args);

    let rep = json(&report);
    let files: Vec<Value> = runs.iter().map(|p| json(p)).collect();
    let price_doc = json(&prices);
    let offer_price = |id: &str| {
        let o = price_doc["offers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("offer {id}"));
        o["usd_per_hour"].as_f64().expect("a single price")
    };

    // Identity as recorded.
    let inst = |i: usize| &files[i]["environment"]["instance"];
    assert_eq!(inst(0)["found_by"]["region"], "env");
    assert_eq!(inst(1)["provider"], "aws");
    assert_eq!(inst(1)["found_by"]["provider"], "skypilot");
    assert_eq!(inst(1)["skypilot"]["cluster"], "perfledger-c7a-large");
    assert!(files[1]["environment"]["price"].is_null());
    assert_eq!(files[2]["environment"]["price"]["source"], "env");

    // Each run's price: the offer for its (provider, instance, region, pricing model), or the
    // price it was given.
    let want_price = [
        offer_price("aws-c7a.large-on-demand-us-east-1"),
        offer_price("aws-c7a.large-spot-eu-west-1"),
        0.09,
    ];
    for (i, want) in want_price.iter().enumerate() {
        let p = &rep["runs"][i]["price"];
        close(p["usd_per_hour"].as_f64().unwrap(), *want, "run price");
    }
    assert_eq!(
        rep["runs"][0]["price"]["offer"],
        "aws-c7a.large-on-demand-us-east-1"
    );
    assert_eq!(rep["runs"][1]["price"]["region"], "eu-west-1");
    assert_eq!(
        rep["runs"][2]["price"]["source"],
        "--price (PERFLEDGER_PRICE)"
    );

    // Every row: kind, GFLOP/s from its own samples, GFLOP per $ from the run's price.
    let rows = rep["rows"].as_array().unwrap();
    let mut k = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for (ri, f) in files.iter().enumerate() {
        for src in f["results"].as_array().unwrap() {
            let row = &rows[k];
            k += 1;
            assert_eq!(row["run"], ri);
            assert_eq!(row["kind"], src["kind"]);
            kinds.insert(src["kind"].as_str().unwrap().to_string());
            let samples: Vec<f64> = src["samples_s"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let gflops = row["flops"].as_f64().unwrap() / median(&samples) / 1e9;
            close(row["gflops"]["median"].as_f64().unwrap(), gflops, "GFLOP/s");
            let fixture = src["provenance"]["source"] == "fixture";
            assert_eq!(row["fixture"], fixture);
            if fixture {
                assert_eq!(src["kind"], "imported");
                assert!(row["device"].as_str().unwrap().contains("FIXTURE"));
                assert_eq!(
                    row["rankable"], false,
                    "unverified fixture rows are not ranked"
                );
                continue;
            }
            let per_usd = row["price"]["perf"]["gflop_per_usd"]["median"]
                .as_f64()
                .unwrap();
            close(per_usd, gflops * 3600.0 / want_price[ri], "GFLOP per $");
        }
    }
    assert_eq!(k, rows.len());
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    assert_eq!(kinds, ["imported", "measured", "peer"]);

    // The ranking of the measured workload: per run (device), its best row by GFLOP per $,
    // the runs in descending order.
    let w = rep["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["key"] == "matmul 256x256x256 fp32")
        .expect("the suite's workload");
    let per_usd = |i: usize| {
        rows[i]["price"]["perf"]["gflop_per_usd"]["median"]
            .as_f64()
            .unwrap()
    };
    let mut best: Vec<(usize, f64)> = (0..3)
        .map(|run| {
            (0..rows.len())
                .filter(|&i| {
                    rows[i]["run"] == run
                        && rows[i]["rankable"] == true
                        && rows[i]["workload"] == w["key"]
                })
                .map(|i| (i, per_usd(i)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap()
        })
        .collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ranked: Vec<usize> = w["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(ranked, best.iter().map(|b| b.0).collect::<Vec<_>>());

    // Trainium-3's break-even price: its roofline ceiling (from the spec data) at the best
    // measured perf per dollar.
    let specs: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("harness/src/specs/data/specs.json")).unwrap(),
    )
    .unwrap();
    let trn3 = specs["accelerators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "aws-trainium3")
        .unwrap();
    let ai = w["flops"].as_f64().unwrap() / w["min_bytes"].as_f64().unwrap();
    let ceiling = (upper(&trn3["peak_tflops"]["fp32"]["dense"]) * 1e3)
        .min(ai * upper(&trn3["mem_bw_tbs"]) * 1e3);
    let p = w["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["chip"] == "aws-trainium3")
        .unwrap();
    close(
        p["break_even"]["usd_per_chip_hour"]["median"]
            .as_f64()
            .unwrap(),
        ceiling * 3600.0 / best[0].1,
        "Trainium-3 break-even $ per chip-hour",
    );

    // Per-NeuronCore rows are normalized against the cores they held, not the chip.
    let cores = &trn3["cores_per_chip"];
    let fixture_mm = rows
        .iter()
        .find(|r| r["fixture"] == true && r["op"] == "matmul")
        .unwrap();
    let physical = 2.0; // 1 logical NeuronCore at LNC 2 (the fixture's device)
    close(
        fixture_mm["published"]["peak_gflops"].as_f64().unwrap(),
        upper(&trn3["peak_tflops"]["bf16"]["dense"]) * 1e3 * physical
            / cores["count"].as_f64().unwrap(),
        "per-core peak",
    );

    // The Markdown report labels fixture rows and says how each run was priced.
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("[FIXTURE: test data]"),
        "fixture rows labelled"
    );
    assert!(text.contains("FIXTURE data"), "the fixture note");
    assert!(
        text.contains("aws c7a.large eu-west-1 spot"),
        "the matched offer"
    );
    assert!(text.contains("--price (PERFLEDGER_PRICE)"));
    assert!(text.contains("SkyPilot cluster perfledger-c7a-large node 0"));
}
