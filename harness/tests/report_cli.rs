//! `perfledger report` and `perfledger specs` end to end: every format renders, bad input exits
//! 2 naming the file and field and writes nothing, `--out` never clobbers without `--force`.

use perfledger::env::{CpuInfo, Environment, HarnessInfo, PriceInfo};
use perfledger::runfile::{
    Device, Flops, KernelRef, MatmulShape, Row, RowKind, RowStats, RowVerification, RunConfig,
    RunFile, Shape, Status, SuiteRef, Verdict,
};
use perfledger_kernels::kernel::Backend;
use perfledger_kernels::{DType, Precision};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfledger"))
}

fn ok_row(m: u64, median_s: f64) -> Row {
    let shape = Shape::Matmul(MatmulShape {
        batch: 1,
        m,
        n: m,
        k: m,
        trans_b: false,
    });
    let precision = Precision::same(DType::BF16);
    let mut r = Row::new(
        RowKind::Measured,
        shape,
        precision,
        Device::named("Test CPU (2 threads)"),
        Status::Error,
    );
    r.kernel = Some(KernelRef {
        family: "matmul.cpu.packed".into(),
        variant: "avx2fma".into(),
        unit: Some(perfledger_kernels::ComputeUnit::CpuFma(
            perfledger_kernels::isa::Isa::Avx2fma,
        )),
        params: Default::default(),
    });
    r.id = Some(format!("matmul.cpu.packed.avx2fma.{precision}"));
    r.backend = Some(Backend::Cpu);
    r.case = Some(format!("square-{m}"));
    let work = shape.problem().unwrap().work(precision);
    r.flops = Some(Flops::exact(work.flops));
    r.min_bytes = Some(work.min_bytes);
    r.samples_s = vec![median_s; 10];
    r.stats = Some(RowStats {
        median_s,
        min_s: median_s,
        p10_s: median_s,
        p90_s: median_s,
        mad_s: 0.0,
        ci95_s: [median_s, median_s],
    });
    r.verification = Some(RowVerification {
        method: "full".into(),
        samples: Some(64),
        error: Some(1e-4),
        bound: Some(1e-2),
        verdict: Some(Verdict::Pass),
        detail: None,
    });
    r.set_status(Status::Ok, None).unwrap();
    r
}

fn write_run(dir: &Path) -> PathBuf {
    let env = Environment {
        hostname: Some("cli-test".into()),
        cpu: CpuInfo {
            model: Some("Test CPU".into()),
            physical_cores: Some(2),
            vcpus: Some(2),
            smt: Some(1),
            threads_used: 2,
            ..CpuInfo::default()
        },
        price: Some(PriceInfo {
            usd_per_hour: 0.1,
            source: Some("cli".into()),
            as_of: Some("2026-11-20".into()),
        }),
        ..Environment::default()
    };
    let mut run = RunFile::new(
        HarnessInfo::default(),
        env,
        SuiteRef {
            name: "quick".into(),
            source: None,
        },
        RunConfig::default(),
    );
    run.complete = true;
    run.results = vec![ok_row(256, 0.0005), ok_row(512, 0.003)];
    let p = dir.join("run.json");
    run.write(&p, false).unwrap();
    p
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn renders_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let runf = write_run(dir.path());
    for format in ["table", "md", "csv", "json", "html"] {
        let o = run(bin().args(["report"]).arg(&runf).args([
            "--format",
            format,
            "--as-of",
            "2026-11-26",
        ]));
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        let s = stdout(&o);
        assert!(!s.is_empty(), "{format}");
        match format {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&s).unwrap();
                assert_eq!(v["schema"], "perfledger.report/1");
                assert_eq!(v["rows"].as_array().unwrap().len(), 2);
                assert_eq!(v["workloads"].as_array().unwrap().len(), 2);
                assert_eq!(v["as_of"], "2026-11-26");
            }
            "html" => {
                assert!(s.starts_with("<!DOCTYPE html>"));
                assert!(s.matches("<svg").count() >= 3);
            }
            "csv" => assert!(s.starts_with("record,run,run_file,kind")),
            _ => {
                assert!(s.contains("Trainium3 (projected)"), "{format}");
                assert!(s.contains("FLOP convention"), "{format}");
            }
        }
    }
    // --out writes the file atomically and refuses to clobber without --force.
    let out = dir.path().join("r.html");
    let o = run(bin()
        .arg("report")
        .arg(&runf)
        .args(["--format", "html", "--out"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("SVG charts"));
    let first = std::fs::read_to_string(&out).unwrap();
    let o = run(bin()
        .arg("report")
        .arg(&runf)
        .args(["--format", "md", "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exists"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), first);
    let o = run(bin()
        .arg("report")
        .arg(&runf)
        .args(["--format", "md", "--force", "--out"])
        .arg(&out));
    assert!(o.status.success());
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("# perfledger report"));
}

#[test]
fn targets_efficiency_and_user_prices() {
    let dir = tempfile::tempdir().unwrap();
    let runf = write_run(dir.path());
    let prices = dir.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"schema": "perfledger.prices/1", "offers": [{"id": "quote-trn3", "provider": "AWS",
        "instance": "trn3 capacity quote", "pricing_model": "capacity-block", "device": "trn3",
        "device_count": 1, "usd_per_hour": 4.5, "status": "single_source",
        "source": "our account team, email", "as_of": "2026-11-01"}]}"#,
    )
    .unwrap();
    let o = run(bin()
        .arg("report")
        .arg(&runf)
        .args([
            "--format",
            "json",
            "--targets",
            "trn3,h100-sxm",
            "--efficiency",
            "0.7",
        ])
        .arg("--prices")
        .arg(&prices)
        .args(["--as-of", "2026-11-26"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let t: Vec<&str> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["chip"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["aws-trainium3", "nvidia-h100-sxm"]);
    assert_eq!(v["targets"][0]["price"]["offer"], "quote-trn3");
    assert_eq!(v["targets"][0]["price"]["chosen_by"], "user price file");
    let p = &v["workloads"][0]["projections"][0];
    assert_eq!(p["projection"]["realistic"]["basis"], "user_efficiency");
    assert_eq!(p["break_even"]["from"], "realistic");
}

#[test]
fn bad_input_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let runf = write_run(dir.path());
    let bad_prices = dir.path().join("bad-prices.json");
    std::fs::write(
        &bad_prices,
        r#"{"schema": "perfledger.prices/1", "offers": [{"id": "x", "provider": "p",
        "instance": "i", "pricing_model": "on-demand", "device": "h100-sxm", "device_count": 1,
        "usd_per_hour": 0, "status": "confirmed", "source": "s", "as_of": "2026-01-01"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("never.html");
    for (args, needle) in [
        (
            vec!["--prices", bad_prices.to_str().unwrap()],
            "offers[0].usd_per_hour",
        ),
        (vec!["--as-of", "26/11/2026"], "--as-of"),
        (vec!["--targets", "h900"], "h900"),
        (vec!["--efficiency", "1.5"], "--efficiency"),
        (
            vec!["--specs", "/nonexistent/specs.json"],
            "/nonexistent/specs.json",
        ),
    ] {
        let o = run(bin()
            .arg("report")
            .arg(&runf)
            .args(&args)
            .args(["--format", "html", "--out"])
            .arg(&out));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        if needle == "offers[0].usd_per_hour" {
            assert!(stderr(&o).contains("bad-prices.json"));
        }
        assert!(!out.exists(), "nothing written");
    }
    // A run file that is not one.
    let notrun = dir.path().join("notrun.json");
    std::fs::write(&notrun, r#"{"schema": "something/1"}"#).unwrap();
    let o = run(bin().arg("report").arg(&notrun));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("notrun.json"));
    // No run file at all is a usage error.
    assert_eq!(run(bin().arg("report")).status.code(), Some(2));
}

#[test]
fn specs_list_and_show() {
    let o = run(bin().args(["specs", "list", "--as-of", "2026-11-26"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    for needle in [
        "aws-trainium3",
        "nvidia-h100-sxm",
        "aws-p5.48xlarge-capacity-block-us-east-1",
        "intel-spr-8488c-aws",
        "vantage",
        "Aliases",
    ] {
        assert!(s.contains(needle), "{needle}");
    }
    let o = run(bin().args(["specs", "show", "trn3"]));
    assert!(o.status.success());
    let s = stdout(&o);
    assert!(s.starts_with("aws-trainium3"));
    assert!(s.contains("\"source\"") && s.contains("\"as_of\": \"2025-12-02\""));
    let o = run(bin().args(["specs", "show", "h100-sxm", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["entry"]["id"], "nvidia-h100-sxm");
    assert!(v["offers"].as_array().unwrap().len() >= 5);
    let o = run(bin().args(["specs", "show", "h900"]));
    assert_eq!(o.status.code(), Some(2));
    let o = run(bin().args(["specs", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["aliases"]["trn3"], "aws-trainium3");
}
