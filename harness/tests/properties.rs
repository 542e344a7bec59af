//! Property tests (proptest) of every parser of untrusted input and of the statistics: arbitrary
//! bytes, and valid documents with a field replaced by a hostile value, never panic (they parse
//! or are refused); arbitrary samples never panic; the bootstrap CI of the median contains the
//! median; the median ratio is antisymmetric. Each test prints how many cases it ran.

use perfledger::runfile::{ExternalRow, RunFile};
use perfledger::specs::{parse_prices, parse_specs, LoadOptions};
use perfledger::stats::{median_ratio, Bootstrap, Sample};
use perfledger::workload::Suite;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const CASES: u32 = 256;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Run `check` over `strategy`, counting cases; fails with proptest's minimal counterexample.
fn check<S: Strategy>(
    name: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let n = AtomicUsize::new(0);
    runner()
        .run(&strategy, |v| {
            n.fetch_add(1, Ordering::Relaxed);
            check(v)
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("{name}: {} cases", n.load(Ordering::Relaxed));
}

/// A valid run file (a real one, committed) as JSON.
fn good_run() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/gpu-h200-tune/run.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Hostile JSON values for a field.
fn hostile_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::json!(null)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(-1e308)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!("")),
        Just(serde_json::json!("\u{1b}[2J\u{202e}")),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        any::<f64>().prop_map(|x| serde_json::json!(x)),
        ".*".prop_map(|s: String| serde_json::json!(s)),
    ]
}

/// Every (path, value) leaf of a JSON document, as JSON pointers.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                )
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate().take(3) {
                pointers(x, format!("{at}/{i}"), out)
            }
        }
        _ => out.push(at),
    }
}

#[test]
fn parsers_never_panic_on_arbitrary_bytes() {
    let origin = Path::new("fuzz.json");
    check(
        "run file, arbitrary bytes",
        proptest::collection::vec(any::<u8>(), 0..512),
        |b| {
            let _ = RunFile::from_slice(&b, origin);
            Ok(())
        },
    );
    check("suite, arbitrary text", ".{0,400}", |t: String| {
        let _ = Suite::parse(&t, "fuzz.json");
        Ok(())
    });
    check("external row, arbitrary text", ".{0,400}", |t: String| {
        let _ = ExternalRow::parse_line(&t);
        Ok(())
    });
    let opts = LoadOptions::default();
    check("spec file, arbitrary text", ".{0,400}", |t: String| {
        let _ = parse_specs(&t, "fuzz.json", true, &opts);
        Ok(())
    });
    check("price file, arbitrary text", ".{0,400}", |t: String| {
        let _ = parse_prices(&t, "fuzz.json", true, &opts);
        Ok(())
    });
    #[cfg(feature = "gpu")]
    check(
        "tune cache, arbitrary bytes",
        proptest::collection::vec(any::<u8>(), 0..512),
        |b| {
            let _ = perfledger_kernels::gpu::tune::TuneCache::from_slice(&b, origin);
            Ok(())
        },
    );
}

#[test]
fn a_run_file_with_any_field_made_hostile_parses_or_is_refused_never_panics() {
    let good = good_run();
    let mut leaves = Vec::new();
    pointers(&good, String::new(), &mut leaves);
    assert!(leaves.len() > 100, "{} leaves", leaves.len());
    let origin = Path::new("hostile-run.json");
    check(
        "run file, one field hostile",
        (0..leaves.len(), hostile_value()),
        |(i, v)| {
            let mut doc = good.clone();
            *doc.pointer_mut(&leaves[i]).unwrap() = v;
            let bytes = serde_json::to_vec(&doc).unwrap();
            if let Err(e) = RunFile::from_slice(&bytes, origin) {
                // A refusal names the file.
                prop_assert!(e.to_string().contains("hostile-run.json"), "{e}");
            }
            Ok(())
        },
    );
}

fn positive_sample() -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(1e-9f64..1e3, 1..40)
}

#[test]
fn statistics_hold_on_arbitrary_samples() {
    check(
        "samples with any f64",
        proptest::collection::vec(any::<f64>(), 0..40),
        |v| {
            if let Ok(s) = Sample::new(v) {
                let _ = s.summary_with(&Bootstrap::with_seed(1));
            }
            Ok(())
        },
    );
    check(
        "the CI of the median contains the median",
        positive_sample(),
        |v| {
            let s = Sample::new(v).unwrap();
            let [lo, hi] = s.median_ci95(&Bootstrap::with_seed(7));
            let m = s.median();
            prop_assert!(lo <= m && m <= hi, "median {m} outside [{lo}, {hi}]");
            prop_assert!(s.min() <= lo && hi <= s.max());
            Ok(())
        },
    );
    check(
        "the median ratio is antisymmetric",
        (positive_sample(), positive_sample()),
        |(a, b)| {
            let (a, b) = (Sample::new(a).unwrap(), Sample::new(b).unwrap());
            let opts = Bootstrap::with_seed(3);
            let ab = median_ratio(&a, &b, &opts).unwrap();
            let ba = median_ratio(&b, &a, &opts).unwrap();
            prop_assert!((ab.ratio * ba.ratio - 1.0).abs() < 1e-12);
            // Each CI contains its point estimate.
            prop_assert!(ab.ci95[0] <= ab.ratio && ab.ratio <= ab.ci95[1]);
            prop_assert!(ba.ci95[0] <= ba.ratio && ba.ratio <= ba.ci95[1]);
            Ok(())
        },
    );
}
