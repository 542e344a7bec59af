//! Cloud instance identity and the price a run is normalized with.
//!
//! The instance is identified, never guessed (DESIGN.md, "Many machines"). Each field — type,
//! provider, region, pricing model — comes from the first source that has it: a flag
//! (`--instance`, `--provider`, `--region`, `--pricing-model`), then its `PERFLEDGER_*`
//! environment twin, then the variables SkyPilot sets inside a job (provider and region only,
//! from `SKYPILOT_CLUSTER_INFO`), then the DMI tables a cloud's hypervisor fills in (provider,
//! and the type on AWS Nitro). Where each field came from is recorded (`found_by`). SkyPilot's
//! task id, cluster and node rank are provenance only; nothing SkyPilot sets is read as a price.
//! The price is `--price`, else `PERFLEDGER_PRICE`, else none (the report then looks the offer up).

use super::{InstanceInfo, PriceInfo, SkyPilotInfo};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming the instance type.
pub const INSTANCE_ENV: &str = "PERFLEDGER_INSTANCE";
/// The environment twins of `--provider`, `--region`, `--pricing-model`, `--price`.
pub const PROVIDER_ENV: &str = "PERFLEDGER_PROVIDER";
pub const REGION_ENV: &str = "PERFLEDGER_REGION";
pub const PRICING_MODEL_ENV: &str = "PERFLEDGER_PRICING_MODEL";
pub const PRICE_ENV: &str = "PERFLEDGER_PRICE";

/// The SkyPilot variables read as provenance (set by SkyPilot in `setup` and `run`).
pub const SKYPILOT_VARS: [&str; 4] = [
    "SKYPILOT_TASK_ID",
    "SKYPILOT_CLUSTER_INFO",
    "SKYPILOT_NODE_RANK",
    "SKYPILOT_NUM_NODES",
];

/// The pricing models a run may state (the price file's vocabulary).
pub const PRICING_MODELS: [&str; 5] = [
    "on-demand",
    "spot",
    "reserved",
    "capacity-block",
    "marketplace",
];

/// Azure's fixed chassis asset tag; it tells an Azure VM from a local Hyper-V VM, whose
/// `sys_vendor` / `product_name` are the same ("Microsoft Corporation" / "Virtual Machine").
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// The DMI strings that identify a cloud (`/sys/class/dmi/id/*`, readable without root), and
/// Xen's hypervisor UUID (`/sys/hypervisor/uuid`), which starts with `ec2` on AWS Xen instances.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub chassis_asset_tag: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    pub hypervisor_uuid: Option<String>,
}

impl Dmi {
    /// Read this machine's DMI strings (all `None` where there is no DMI, e.g. in containers
    /// without `/sys/class/dmi` or on aarch64 without SMBIOS).
    pub fn read() -> Dmi {
        Dmi::read_from(Path::new("/"))
    }

    /// Read the DMI strings under `root` (`root/sys/class/dmi/id/*`, `root/sys/hypervisor/uuid`):
    /// `/` on a machine, a fixture directory in tests. Missing or empty files are `None`; a file
    /// longer than 256 bytes is not a DMI string and is ignored.
    pub fn read_from(root: &Path) -> Dmi {
        let read = |rel: &str| {
            let p = root.join(rel);
            let meta = fs::metadata(&p).ok()?;
            if !meta.is_file() || meta.len() > 256 {
                return None;
            }
            fs::read_to_string(&p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let dmi = |f: &str| read(&format!("sys/class/dmi/id/{f}"));
        Dmi {
            sys_vendor: dmi("sys_vendor"),
            product_name: dmi("product_name"),
            chassis_asset_tag: dmi("chassis_asset_tag"),
            bios_vendor: dmi("bios_vendor"),
            bios_version: dmi("bios_version"),
            hypervisor_uuid: read("sys/hypervisor/uuid"),
        }
    }
}

/// Whether `s` has the shape of an EC2 instance type (`m7i.large`, `u-6tb1.metal`).
fn looks_like_ec2_type(s: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    matches!(s.split_once('.'), Some((family, size)) if ok(family) && ok(size))
}

/// Provider and (where DMI carries it) instance type; `None` when the tables match no known
/// cloud.
pub fn from_dmi(dmi: &Dmi) -> Option<(&'static str, Option<String>)> {
    fn t(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim)
    }
    let (vendor, product) = (t(&dmi.sys_vendor), t(&dmi.product_name));
    let aws_xen = || {
        t(&dmi.bios_version).is_some_and(|v| v.to_ascii_lowercase().contains("amazon"))
            || t(&dmi.hypervisor_uuid).is_some_and(|u| u.to_ascii_lowercase().starts_with("ec2"))
    };
    match (vendor, product) {
        // AWS Nitro: the product name is the instance type. Anything else there is not taken as
        // a type.
        (Some("Amazon EC2"), p) => Some((
            "aws",
            p.filter(|p| looks_like_ec2_type(p)).map(str::to_string),
        )),
        // AWS Xen (older families: c4, m4, t2, ...): the BIOS version names Amazon, the type is
        // not in DMI.
        (Some("Xen"), _) if aws_xen() => Some(("aws", None)),
        // GCP: the machine type is not in DMI (only in the metadata server).
        (_, Some("Google Compute Engine")) => Some(("gcp", None)),
        (Some("Microsoft Corporation"), Some("Virtual Machine"))
            if t(&dmi.chassis_asset_tag) == Some(AZURE_ASSET_TAG) =>
        {
            Some(("azure", None))
        }
        _ => None,
    }
}

/// SkyPilot's provenance variables, when the run is inside a SkyPilot job
/// (`SKYPILOT_TASK_ID` set). `SKYPILOT_CLUSTER_INFO` is a JSON object with `cluster_name`,
/// `cloud`, `region`, `zone`; a malformed one is kept as text in `cluster_info_error`.
pub fn skypilot(env: &BTreeMap<String, String>) -> Option<SkyPilotInfo> {
    let get = |k: &str| {
        env.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let task_id = get("SKYPILOT_TASK_ID");
    let info = get("SKYPILOT_CLUSTER_INFO");
    if task_id.is_none() && info.is_none() {
        return None;
    }
    let mut sky = SkyPilotInfo {
        task_id,
        node_rank: get("SKYPILOT_NODE_RANK").and_then(|v| v.parse().ok()),
        num_nodes: get("SKYPILOT_NUM_NODES").and_then(|v| v.parse().ok()),
        ..Default::default()
    };
    if let Some(text) = info {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(m)) => {
                let s = |k: &str| {
                    m.get(k)
                        .and_then(|v| v.as_str())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                };
                sky.cluster = s("cluster_name");
                sky.cloud = s("cloud");
                sky.region = s("region");
                sky.zone = s("zone");
            }
            _ => {
                sky.cluster_info_error =
                    Some("SKYPILOT_CLUSTER_INFO is not a JSON object".to_string())
            }
        }
    }
    Some(sky)
}

/// A SkyPilot cloud name as a provider id of the price data (`AWS` → `aws`, `Vast` → `vastai`).
pub fn provider_of_sky_cloud(cloud: &str) -> String {
    let c = cloud.trim().to_ascii_lowercase();
    match c.as_str() {
        "vast" => "vastai".to_string(),
        _ => c,
    }
}

/// The identity fields given by flags (already parsed; the pricing model checked by clap).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityFlags {
    pub instance: Option<String>,
    pub provider: Option<String>,
    pub region: Option<String>,
    pub pricing_model: Option<String>,
    /// USD per hour, finite and > 0.
    pub price: Option<f64>,
}

/// An identity value that cannot be used: the variable and why (a usage error, exit 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct IdentityError {
    pub var: String,
    pub reason: String,
}

/// A pricing model as the price data spells it (`On-Demand` → `on-demand`); `None` if unknown.
pub fn pricing_model_name(s: &str) -> Option<&'static str> {
    let s = s.trim().to_ascii_lowercase();
    PRICING_MODELS.iter().copied().find(|m| *m == s)
}

/// The identity and price of a run from its sources: flags, then environment (`env` holds the
/// process environment: `PERFLEDGER_*` and `SKYPILOT_*`), then SkyPilot, then DMI.
/// `None` instance when no source says anything.
pub fn identify(
    flags: &IdentityFlags,
    env: &BTreeMap<String, String>,
    dmi: &Dmi,
    today: &str,
) -> Result<(Option<InstanceInfo>, Option<PriceInfo>), IdentityError> {
    let given = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let env_var = |k: &str| given(env.get(k).map(String::as_str));
    let sky = skypilot(env);
    let dmi_id = from_dmi(dmi);
    let mut found_by = BTreeMap::new();
    let mut pick = |field: &str, candidates: Vec<(Option<String>, &str)>| {
        candidates.into_iter().find_map(|(v, by)| {
            let v = v?;
            found_by.insert(field.to_string(), by.to_string());
            Some(v)
        })
    };
    let instance_type = pick(
        "type",
        vec![
            (given(flags.instance.as_deref()), "flag"),
            (env_var(INSTANCE_ENV), "env"),
            (dmi_id.as_ref().and_then(|d| d.1.clone()), "dmi"),
        ],
    );
    let provider = pick(
        "provider",
        vec![
            (given(flags.provider.as_deref()), "flag"),
            (env_var(PROVIDER_ENV), "env"),
            (
                sky.as_ref()
                    .and_then(|s| s.cloud.as_deref())
                    .map(provider_of_sky_cloud),
                "skypilot",
            ),
            (dmi_id.as_ref().map(|d| d.0.to_string()), "dmi"),
        ],
    );
    let region = pick(
        "region",
        vec![
            (given(flags.region.as_deref()), "flag"),
            (env_var(REGION_ENV), "env"),
            (sky.as_ref().and_then(|s| s.region.clone()), "skypilot"),
        ],
    );
    let model = |var: &str, v: Option<String>| {
        v.map(|v| {
            pricing_model_name(&v).ok_or_else(|| IdentityError {
                var: var.into(),
                reason: format!("{v:?} is not one of {}", PRICING_MODELS.join(", ")),
            })
        })
        .transpose()
    };
    let model_env = model(PRICING_MODEL_ENV, env_var(PRICING_MODEL_ENV))?;
    let model_flag = model("--pricing-model", given(flags.pricing_model.as_deref()))?;
    let pricing_model = pick(
        "pricing_model",
        vec![
            (model_flag.map(str::to_string), "flag"),
            (model_env.map(str::to_string), "env"),
        ],
    );
    let price_env = env_var(PRICE_ENV)
        .map(|v| match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(IdentityError {
                var: PRICE_ENV.into(),
                reason: format!("{v:?} is not a positive number of USD per hour"),
            }),
        })
        .transpose()?;
    let price = match (flags.price, price_env) {
        (Some(p), _) => Some((p, "flag")),
        (None, Some(p)) => Some((p, "env")),
        (None, None) => None,
    }
    .map(|(usd, by)| PriceInfo {
        usd_per_hour: usd,
        source: Some(by.to_string()),
        as_of: Some(today.to_string()),
    });
    let known = instance_type.is_some()
        || provider.is_some()
        || region.is_some()
        || pricing_model.is_some()
        || sky.is_some();
    let instance = known.then(|| InstanceInfo {
        detected_by: found_by.get("type").cloned(),
        provider,
        instance_type,
        region,
        pricing_model,
        found_by,
        skypilot: sky,
    });
    Ok((instance, price))
}

/// The process environment's identity variables (`PERFLEDGER_*` of this module and
/// `SKYPILOT_*`).
pub fn process_env() -> BTreeMap<String, String> {
    [
        INSTANCE_ENV,
        PROVIDER_ENV,
        REGION_ENV,
        PRICING_MODEL_ENV,
        PRICE_ENV,
    ]
    .into_iter()
    .chain(SKYPILOT_VARS)
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
    .collect()
}

/// This machine's identity and price: [`identify`] over the flags, the process environment and
/// this machine's DMI.
pub fn detect(
    flags: &IdentityFlags,
) -> Result<(Option<InstanceInfo>, Option<PriceInfo>), IdentityError> {
    identify(flags, &process_env(), &Dmi::read(), &today_utc())
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub fn utc_date(unix_secs: u64) -> String {
    // Howard Hinnant's `civil_from_days`, for days since 1970-01-01.
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_date(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Dmi {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/env/fixtures/dmi");
        let d = Dmi::read_from(&root.join(name));
        assert!(d.sys_vendor.is_some(), "fixture {name} has no sys_vendor");
        d
    }

    fn sky_env() -> BTreeMap<String, String> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/env/fixtures/skypilot.env");
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn no_env() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn ident(flags: &IdentityFlags, env: &BTreeMap<String, String>, dmi: &Dmi) -> InstanceInfo {
        identify(flags, env, dmi, "2026-12-01").unwrap().0.unwrap()
    }

    #[test]
    fn dmi_fixtures_of_each_cloud() {
        type Want<'a> = Option<(&'a str, Option<&'a str>)>;
        let cases: [(&str, Want); 7] = [
            ("aws-nitro", Some(("aws", Some("c7a.large")))),
            ("aws-xen", Some(("aws", None))),
            ("gcp", Some(("gcp", None))),
            ("azure", Some(("azure", None))),
            ("hyperv-local", None),
            ("xen-other", None),
            ("none", None),
        ];
        for (name, want) in cases {
            let got = from_dmi(&fixture(name));
            let got = got.as_ref().map(|(p, t)| (*p, t.as_deref()));
            assert_eq!(got, want, "fixture {name}");
        }
        // A root without DMI at all (containers).
        assert_eq!(
            from_dmi(&Dmi::read_from(Path::new("/nonexistent-root"))),
            None
        );
    }

    #[test]
    fn ec2_type_shape_is_checked() {
        let odd = Dmi {
            sys_vendor: Some("Amazon EC2".into()),
            product_name: Some("Not Specified".into()),
            ..Default::default()
        };
        assert_eq!(from_dmi(&odd), Some(("aws", None)));
        let metal = Dmi {
            sys_vendor: Some("Amazon EC2".into()),
            product_name: Some("u-6tb1.metal".into()),
            ..Default::default()
        };
        assert_eq!(from_dmi(&metal), Some(("aws", Some("u-6tb1.metal".into()))));
    }

    #[test]
    fn every_field_records_its_source() {
        let nitro = fixture("aws-nitro");
        let i = ident(&IdentityFlags::default(), &no_env(), &nitro);
        assert_eq!(i.instance_type.as_deref(), Some("c7a.large"));
        assert_eq!(i.provider.as_deref(), Some("aws"));
        assert_eq!(i.found_by["type"], "dmi");
        assert_eq!(i.found_by["provider"], "dmi");
        assert_eq!((i.region, i.pricing_model, i.skypilot), (None, None, None));

        // Flags win over the environment, which wins over DMI, field by field.
        let env: BTreeMap<String, String> = [
            (INSTANCE_ENV, "m7i.xlarge"),
            (REGION_ENV, "eu-west-1"),
            (PRICING_MODEL_ENV, "Spot"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let flags = IdentityFlags {
            instance: Some("m7i.2xlarge".into()),
            ..Default::default()
        };
        let i = ident(&flags, &env, &nitro);
        assert_eq!(i.instance_type.as_deref(), Some("m7i.2xlarge"));
        assert_eq!(i.found_by["type"], "flag");
        assert_eq!(i.detected_by.as_deref(), Some("flag"));
        assert_eq!(i.region.as_deref(), Some("eu-west-1"));
        assert_eq!(i.found_by["region"], "env");
        assert_eq!(i.pricing_model.as_deref(), Some("spot"));
        assert_eq!(i.found_by["pricing_model"], "env");
        assert_eq!(i.found_by["provider"], "dmi");
    }

    #[test]
    fn skypilot_is_provenance_and_region_never_price() {
        let env = sky_env();
        let (inst, price) = identify(
            &IdentityFlags::default(),
            &env,
            &fixture("none"),
            "2026-12-01",
        )
        .unwrap();
        let i = inst.unwrap();
        let s = i.skypilot.as_ref().unwrap();
        assert_eq!(s.cluster.as_deref(), Some("perfledger-c7a-large"));
        assert_eq!(s.node_rank, Some(0));
        assert_eq!(s.num_nodes, Some(1));
        assert_eq!(s.zone.as_deref(), Some("us-east-1a"));
        assert!(s.task_id.as_deref().unwrap().starts_with("sky-2026-12-01"));
        assert_eq!(i.provider.as_deref(), Some("aws"));
        assert_eq!(i.found_by["provider"], "skypilot");
        assert_eq!(i.region.as_deref(), Some("us-east-1"));
        assert_eq!(i.found_by["region"], "skypilot");
        // SkyPilot does not say the type or the pricing model; nothing there is a price.
        assert_eq!((i.instance_type, i.pricing_model), (None, None));
        assert_eq!(price, None);

        // The user's env twins override SkyPilot's region.
        let mut env = sky_env();
        env.insert(REGION_ENV.into(), "us-west-2".into());
        env.insert(INSTANCE_ENV.into(), "c7a.large".into());
        let i = ident(&IdentityFlags::default(), &env, &fixture("aws-nitro"));
        assert_eq!(i.region.as_deref(), Some("us-west-2"));
        assert_eq!(i.found_by["region"], "env");
        assert_eq!(i.found_by["type"], "env");

        let mut bad = sky_env();
        bad.insert("SKYPILOT_CLUSTER_INFO".into(), "{not json".into());
        let i = ident(&IdentityFlags::default(), &bad, &Dmi::default());
        let s = i.skypilot.unwrap();
        assert!(s.cluster_info_error.is_some());
        assert_eq!((s.region, i.region), (None, None));
    }

    #[test]
    fn no_source_no_instance() {
        let (i, p) = identify(
            &IdentityFlags::default(),
            &no_env(),
            &fixture("none"),
            "2026-12-01",
        )
        .unwrap();
        assert_eq!((i, p), (None, None));
        let blank = IdentityFlags {
            instance: Some("  ".into()),
            ..Default::default()
        };
        let (i, _) = identify(&blank, &no_env(), &Dmi::default(), "2026-12-01").unwrap();
        assert_eq!(i, None);
    }

    #[test]
    fn price_from_flag_or_env_is_dated_and_checked() {
        let env: BTreeMap<String, String> = [(PRICE_ENV.to_string(), "0.0864".to_string())].into();
        let (_, p) = identify(
            &IdentityFlags::default(),
            &env,
            &Dmi::default(),
            "2025-06-01",
        )
        .unwrap();
        let p = p.unwrap();
        assert_eq!(p.usd_per_hour, 0.0864);
        assert_eq!(p.source.as_deref(), Some("env"));
        assert_eq!(p.as_of.as_deref(), Some("2025-06-01"));
        let flags = IdentityFlags {
            price: Some(0.5),
            ..Default::default()
        };
        let (_, p) = identify(&flags, &env, &Dmi::default(), "2025-06-01").unwrap();
        assert_eq!(p.unwrap().source.as_deref(), Some("flag"));
        for bad in ["-1", "0", "nan", "inf", "cheap"] {
            let env: BTreeMap<String, String> = [(PRICE_ENV.to_string(), bad.to_string())].into();
            let e = identify(
                &IdentityFlags::default(),
                &env,
                &Dmi::default(),
                "2025-06-01",
            )
            .unwrap_err();
            assert_eq!(e.var, PRICE_ENV, "{bad}");
        }
        let env: BTreeMap<String, String> =
            [(PRICING_MODEL_ENV.to_string(), "hourly".to_string())].into();
        let e = identify(
            &IdentityFlags::default(),
            &env,
            &Dmi::default(),
            "2025-06-01",
        )
        .unwrap_err();
        assert!(e.to_string().contains("PERFLEDGER_PRICING_MODEL"), "{e}");
        assert!(e.to_string().contains("capacity-block"), "{e}");
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_709_251_199), "2024-02-29");
        assert_eq!(utc_date(1_735_689_600), "2025-01-01");
        let today = today_utc();
        assert_eq!(today.len(), 10);
        assert!(today.as_str() > "2024-01-01");
    }
}
