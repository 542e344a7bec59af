//! `perfledger prices import-sky-catalog` on the committed catalog fixture: prices, regions, the
//! on-demand/spot split, zones collapsed into ranges, skipped rows, device mapping, and errors
//! that name the file, line and column.

use perfledger::specs::sky_catalog::{import, map_accelerator, ImportOptions};
use perfledger::specs::{Figure, PricingModel};
use std::path::Path;
use std::process::Command;

const FIXTURE: &str = "harness/tests/fixtures/sky-catalog/aws/vms.csv";

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn opts() -> ImportOptions {
    ImportOptions {
        provider: None,
        as_of: "2026-12-01".into(),
    }
}

#[test]
fn fixture_catalog_becomes_offers() {
    let text = std::fs::read_to_string(root().join(FIXTURE)).unwrap();
    let imp = import(&text, FIXTURE, &opts()).unwrap();
    assert_eq!(imp.rows_read, 13);
    // c7a.xlarge has neither price; eu-west-1a c7a.large, p5.48xlarge have no spot price.
    assert_eq!((imp.blank_on_demand, imp.blank_spot), (1, 3));
    let offer = |id: &str| {
        imp.doc
            .offers
            .iter()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    // One on-demand and one spot offer per (instance, region), the provider from the path.
    let east = offer("aws-c7a.large-on-demand-us-east-1");
    assert_eq!(east.provider, "aws");
    assert_eq!(east.region.as_deref(), Some("us-east-1"));
    assert_eq!(east.pricing_model, PricingModel::OnDemand);
    assert_eq!(east.usd_per_hour, Some(Figure::Value(0.10264)));
    assert_eq!(east.device.as_deref(), Some("amd-genoa-9r14-aws"));
    assert_eq!((east.device_count, east.vcpus), (2, Some(2)));
    assert_eq!(east.as_of.text, "2026-12-01");
    // Three zones at three spot prices: a range naming each zone.
    match &offer("aws-c7a.large-spot-us-east-1").usd_per_hour {
        Some(Figure::Range(r)) => {
            assert_eq!((r.min, r.max), (0.0398, 0.0455));
            assert_eq!(r.sources.len(), 3);
            assert!(r.sources.iter().any(|s| s.contains("us-east-1c")));
        }
        other => panic!("{other:?}"),
    }
    // Two zones agreeing: a value. One zone blank: the other's price.
    assert_eq!(
        offer("aws-m7i.large-spot-us-east-1").usd_per_hour,
        Some(Figure::Value(0.0386))
    );
    assert_eq!(
        offer("aws-c7a.large-spot-eu-west-1").usd_per_hour,
        Some(Figure::Value(0.0503))
    );
    assert_eq!(
        offer("aws-c7a.large-on-demand-eu-west-1").usd_per_hour,
        Some(Figure::Value(0.1198))
    );
    // Intel with SMT: 2 vCPUs are one physical core.
    assert_eq!(offer("aws-m7i.large-on-demand-us-east-1").device_count, 1);
    // No spot price anywhere: no spot offer.
    assert!(!imp
        .doc
        .offers
        .iter()
        .any(|o| o.id == "aws-p5.48xlarge-spot-us-east-1"));
    assert!(!imp.doc.offers.iter().any(|o| o.instance == "c7a.xlarge"));
    // Accelerators through the table; unknown ones kept as the seller's name.
    let p5 = offer("aws-p5.48xlarge-on-demand-us-east-1");
    assert_eq!(
        (p5.device.as_deref(), p5.device_count),
        (Some("nvidia-h100-sxm"), 8)
    );
    assert_eq!(
        offer("aws-g6.xlarge-on-demand-us-east-1").device.as_deref(),
        Some("nvidia-l4")
    );
    let t4 = offer("aws-g4dn.xlarge-on-demand-us-east-1");
    assert_eq!(
        (t4.device.as_deref(), t4.device_name.as_deref()),
        (None, Some("T4"))
    );
    assert_eq!(imp.unmapped_accelerators.keys().collect::<Vec<_>>(), ["T4"]);
    assert_eq!(imp.unmapped_cpu_instances, 1); // x2gd.medium
    assert_eq!(imp.ignored_columns, ["GPUInfo", "Generation"]);
    assert_eq!(imp.doc.offers.len(), 15);
    // H100 is SXM on p5, and not guessed on a family the table does not know.
    assert_eq!(
        map_accelerator("H100", "p5.4xlarge").map(|m| m.0),
        Some("nvidia-h100-sxm")
    );
    assert_eq!(
        map_accelerator("H100", "gpu_1x_h100_pcie").map(|m| m.0),
        Some("nvidia-h100-pcie")
    );
    assert_eq!(map_accelerator("H100", "some-other-family"), None);
}

#[test]
fn columns_by_name_and_errors_name_line_and_column() {
    // Columns in another order, without the optional ones.
    let csv = "Region,Price,InstanceType\nus-east-1,0.5,c7a.large\n";
    let imp = import(
        csv,
        "x.csv",
        &ImportOptions {
            provider: Some("aws".into()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(imp.doc.offers.len(), 1);
    assert_eq!(imp.blank_spot, 1);
    let err = |csv: &str| {
        import(csv, "cat/aws/vms.csv", &opts())
            .unwrap_err()
            .to_string()
    };
    let e = err("InstanceType,Region\nc7a.large,us-east-1\n");
    assert!(
        e.contains("cat/aws/vms.csv") && e.contains("\"Price\""),
        "{e}"
    );
    let e = err("InstanceType,Price,Region\nc7a.large,cheap,us-east-1\n");
    assert!(
        e.contains("line 2") && e.contains("Price") && e.contains("cheap"),
        "{e}"
    );
    let e = err("InstanceType,Price,Region\nc7a.large,-1,us-east-1\n");
    assert!(e.contains("line 2"), "{e}");
    let e = err("InstanceType,Price,Region\nc7a.large,0.1\n");
    assert!(e.contains("line 2"), "{e}");
    let e = err("InstanceType,Price,Region\n");
    assert!(e.contains("no data rows"), "{e}");
    let e = import("InstanceType,Price,Region\nc,1,r\n", "vms.csv", &opts()).unwrap_err();
    assert!(e.to_string().contains("--provider"), "{e}");
    let e = import(
        "InstanceType,Price,Region\nc,1,r\n",
        "aws/vms.csv",
        &ImportOptions {
            provider: None,
            as_of: "yesterday".into(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--as-of"), "{e}");
}

#[test]
fn cli_writes_a_price_file_the_report_reads_and_refuses_to_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prices.json");
    let bin = env!("CARGO_BIN_EXE_perfledger");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "prices",
            "import-sky-catalog",
            FIXTURE,
            "--as-of",
            "2026-12-01",
            "--out",
        ];
        a.push(out.to_str().unwrap());
        a.extend(extra);
        Command::new(bin)
            .args(&a)
            .current_dir(root())
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("13 rows → 15 offers"), "{msg}");
    assert!(
        msg.contains("1 blank on-demand prices, 3 blank spot prices"),
        "{msg}"
    );
    assert!(msg.contains("T4"), "{msg}");
    let before = std::fs::read(&out).unwrap();
    let o = run(&[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing --out is not replaced"
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let o = Command::new(bin)
        .args([
            "specs",
            "--prices",
            out.to_str().unwrap(),
            "--as-of",
            "2026-12-02",
            "list",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("aws-c7a.large-spot-eu-west-1"));
}
