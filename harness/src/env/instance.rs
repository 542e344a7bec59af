//! Cloud instance identity and the price a run is normalized with.
//!
//! The instance is identified, never guessed (DESIGN.md, "Many machines"): `--instance` wins, then
//! `PERFLEDGER_INSTANCE`, then the DMI tables a cloud's hypervisor fills in. A machine whose DMI
//! matches no known cloud has no instance (`None`).

use super::{InstanceInfo, PriceInfo};
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming the instance type.
pub const INSTANCE_ENV: &str = "PERFLEDGER_INSTANCE";

/// Azure's fixed chassis asset tag; it tells an Azure VM from a local Hyper-V VM, whose
/// `sys_vendor` / `product_name` are the same ("Microsoft Corporation" / "Virtual Machine").
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// The DMI strings that identify a cloud (`/sys/class/dmi/id/*`, readable without root).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub chassis_asset_tag: Option<String>,
}

impl Dmi {
    /// Read this machine's DMI strings (all `None` where there is no DMI, e.g. in containers
    /// without `/sys/class/dmi` or on aarch64 without SMBIOS).
    pub fn read() -> Dmi {
        let read = |f: &str| {
            fs::read_to_string(format!("/sys/class/dmi/id/{f}"))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        Dmi {
            sys_vendor: read("sys_vendor"),
            product_name: read("product_name"),
            chassis_asset_tag: read("chassis_asset_tag"),
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

/// The instance as the DMI tables identify it; `None` when they match no known cloud.
pub fn from_dmi(dmi: &Dmi) -> Option<InstanceInfo> {
    let vendor = dmi.sys_vendor.as_deref().map(str::trim);
    let product = dmi.product_name.as_deref().map(str::trim);
    let (provider, instance_type) = match (vendor, product) {
        // AWS Nitro: the product name is the instance type. Anything else there is not taken as
        // a type.
        (Some("Amazon EC2"), p) => (
            "aws",
            p.filter(|p| looks_like_ec2_type(p)).map(str::to_string),
        ),
        // GCP: the machine type is not in DMI (only in the metadata server).
        (_, Some("Google Compute Engine")) => ("gcp", None),
        (Some("Microsoft Corporation"), Some("Virtual Machine"))
            if dmi.chassis_asset_tag.as_deref().map(str::trim) == Some(AZURE_ASSET_TAG) =>
        {
            ("azure", None)
        }
        _ => return None,
    };
    Some(InstanceInfo {
        provider: Some(provider.to_string()),
        instance_type,
        region: None,
        pricing_model: None,
        detected_by: Some("dmi".to_string()),
    })
}

/// Combine the sources: CLI type, then environment type, then DMI. A type given by the user keeps
/// the provider DMI identified (a fact about the machine), if any.
pub fn identify(cli: Option<&str>, env: Option<&str>, dmi: &Dmi) -> Option<InstanceInfo> {
    let from_dmi = from_dmi(dmi);
    let given = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (instance_type, by) = match (given(cli), given(env)) {
        (Some(t), _) => (t, "cli"),
        (None, Some(t)) => (t, "env"),
        (None, None) => return from_dmi,
    };
    Some(InstanceInfo {
        provider: from_dmi.and_then(|i| i.provider),
        instance_type: Some(instance_type),
        region: None,
        pricing_model: None,
        detected_by: Some(by.to_string()),
    })
}

/// This machine's instance: `cli` (`--instance TYPE`), else `PERFLEDGER_INSTANCE`, else DMI.
pub fn detect(cli: Option<&str>) -> Option<InstanceInfo> {
    let env = std::env::var(INSTANCE_ENV).ok();
    identify(cli, env.as_deref(), &Dmi::read())
}

/// The price given with `--price USD_PER_HOUR` (validated by the caller), dated `as_of`.
pub fn price_from_cli(usd_per_hour: Option<f64>, as_of: &str) -> Option<PriceInfo> {
    Some(PriceInfo {
        usd_per_hour: usd_per_hour?,
        source: Some("cli".to_string()),
        as_of: Some(as_of.to_string()),
    })
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

    fn dmi(vendor: &str, product: &str, tag: &str) -> Dmi {
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        Dmi {
            sys_vendor: s(vendor),
            product_name: s(product),
            chassis_asset_tag: s(tag),
        }
    }

    #[test]
    fn aws_nitro_type_from_dmi() {
        let i = from_dmi(&dmi("Amazon EC2", "c7g.xlarge", "Amazon EC2")).unwrap();
        assert_eq!(i.provider.as_deref(), Some("aws"));
        assert_eq!(i.instance_type.as_deref(), Some("c7g.xlarge"));
        assert_eq!(i.detected_by.as_deref(), Some("dmi"));
        let metal = from_dmi(&dmi("Amazon EC2", "u-6tb1.metal", "")).unwrap();
        assert_eq!(metal.instance_type.as_deref(), Some("u-6tb1.metal"));
        // The vendor is AWS but the product is not a type: provider known, type not invented.
        let odd = from_dmi(&dmi("Amazon EC2", "Not Specified", "")).unwrap();
        assert_eq!(odd.provider.as_deref(), Some("aws"));
        assert_eq!(odd.instance_type, None);
    }

    #[test]
    fn gcp_and_azure_have_no_type_in_dmi() {
        let g = from_dmi(&dmi("Google", "Google Compute Engine", "")).unwrap();
        assert_eq!(
            (g.provider.as_deref(), g.instance_type),
            (Some("gcp"), None)
        );
        let a = from_dmi(&dmi(
            "Microsoft Corporation",
            "Virtual Machine",
            AZURE_ASSET_TAG,
        ))
        .unwrap();
        assert_eq!(
            (a.provider.as_deref(), a.instance_type),
            (Some("azure"), None)
        );
        // Local Hyper-V has the same vendor/product but not Azure's asset tag.
        assert_eq!(
            from_dmi(&dmi("Microsoft Corporation", "Virtual Machine", "None")),
            None
        );
    }

    #[test]
    fn unknown_or_missing_dmi_is_not_guessed() {
        assert_eq!(from_dmi(&Dmi::default()), None);
        assert_eq!(
            from_dmi(&dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)", "")),
            None
        );
        // Xen-era EC2 instances say only "Xen" / "HVM domU".
        assert_eq!(from_dmi(&dmi("Xen", "HVM domU", "")), None);
        assert_eq!(
            identify(None, None, &dmi("Dell Inc.", "PowerEdge R750", "")),
            None
        );
        assert_eq!(identify(Some("  "), Some(""), &Dmi::default()), None);
    }

    #[test]
    fn cli_wins_then_env_then_dmi() {
        let aws = dmi("Amazon EC2", "m7i.large", "");
        let by = |i: Option<InstanceInfo>| {
            let i = i.unwrap();
            (i.instance_type.unwrap(), i.detected_by.unwrap(), i.provider)
        };
        assert_eq!(
            by(identify(Some("m7i.2xlarge"), Some("x"), &aws)),
            ("m7i.2xlarge".into(), "cli".into(), Some("aws".into()))
        );
        assert_eq!(
            by(identify(None, Some("m7i.xlarge"), &aws)),
            ("m7i.xlarge".into(), "env".into(), Some("aws".into()))
        );
        assert_eq!(
            by(identify(None, None, &aws)),
            ("m7i.large".into(), "dmi".into(), Some("aws".into()))
        );
        // No DMI: the user's type, provider unknown.
        assert_eq!(
            by(identify(None, Some("vast-4090"), &Dmi::default())),
            ("vast-4090".into(), "env".into(), None)
        );
    }

    #[test]
    fn cli_price_is_dated() {
        let p = price_from_cli(Some(0.0864), "2025-06-01").unwrap();
        assert_eq!(p.usd_per_hour, 0.0864);
        assert_eq!(p.source.as_deref(), Some("cli"));
        assert_eq!(p.as_of.as_deref(), Some("2025-06-01"));
        assert_eq!(price_from_cli(None, "2025-06-01"), None);
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
