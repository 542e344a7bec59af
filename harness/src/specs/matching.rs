//! Matching a run's device to a spec entry — by PCI vendor/device id, or by an exact model string
//! (an adapter name as the GPU API reports it, a `/proc/cpuinfo` model name) — and a run's
//! instance to an offer. No match is an answer ("n/a"), never a guess: there is no fuzzy or
//! substring matching anywhere here.

use super::{parse_hex_id, Accelerator, Cpu, Database, Offer};
use crate::env::{GpuInfo, InstanceInfo};

/// The spec entry a device was matched to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpecRef<'a> {
    Accelerator(&'a Accelerator),
    Cpu(&'a Cpu),
}

impl<'a> SpecRef<'a> {
    pub fn id(&self) -> &'a str {
        match self {
            SpecRef::Accelerator(a) => &a.id,
            SpecRef::Cpu(c) => &c.id,
        }
    }

    pub fn name(&self) -> &'a str {
        match self {
            SpecRef::Accelerator(a) => &a.name,
            SpecRef::Cpu(c) => &c.name,
        }
    }
}

/// A match and how it was made (`PCI 10de:2330`, `adapter name "NVIDIA L4"`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceMatch<'a> {
    pub spec: SpecRef<'a>,
    pub how: String,
}

/// Names compare exactly, up to surrounding/repeated whitespace and ASCII case.
pub fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(a).eq_ignore_ascii_case(&norm(b))
}

/// Whether an adapter name is a software rasterizer (a second guard next to the `software` flag
/// the GPU backend sets).
pub fn is_software_adapter_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "llvmpipe",
        "lavapipe",
        "swiftshader",
        "microsoft basic render",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// An accelerator by PCI vendor and device id.
pub fn by_pci(db: &Database, vendor_id: u32, device_id: u32) -> Option<DeviceMatch<'_>> {
    for a in &db.accelerators {
        for p in &a.identify.pci {
            if parse_hex_id(&p.vendor_id) == Some(vendor_id)
                && p.device_ids
                    .iter()
                    .any(|d| parse_hex_id(d) == Some(device_id))
            {
                return Some(DeviceMatch {
                    spec: SpecRef::Accelerator(a),
                    how: format!("PCI {vendor_id:04x}:{device_id:04x}"),
                });
            }
        }
    }
    None
}

/// An accelerator by exact adapter name (`NVIDIA H100 80GB HBM3`).
pub fn by_adapter_name<'a>(db: &'a Database, name: &str) -> Option<DeviceMatch<'a>> {
    db.accelerators.iter().find_map(|a| {
        a.identify
            .adapter_names
            .iter()
            .find(|n| same_name(n, name))
            .map(|n| DeviceMatch {
                spec: SpecRef::Accelerator(a),
                how: format!("adapter name {n:?}"),
            })
    })
}

/// A CPU by exact `/proc/cpuinfo` model name.
pub fn by_cpu_model<'a>(db: &'a Database, model: &str) -> Option<DeviceMatch<'a>> {
    db.cpus.iter().find_map(|c| {
        c.model_strings
            .iter()
            .find(|m| same_name(m, model))
            .map(|m| DeviceMatch {
                spec: SpecRef::Cpu(c),
                how: format!("CPU model {m:?}"),
            })
    })
}

/// A GPU adapter of a run: PCI ids first, then the exact adapter name. Software adapters are
/// never matched (`Err` says why).
pub fn gpu<'a>(db: &'a Database, g: &GpuInfo) -> Result<DeviceMatch<'a>, String> {
    if g.software || is_software_adapter_name(&g.name) {
        return Err(format!(
            "software adapter {:?}: never normalized against GPU specs",
            g.name
        ));
    }
    if let (Some(v), Some(d)) = (g.vendor_id, g.device_id) {
        if let Some(m) = by_pci(db, v, d) {
            return Ok(m);
        }
    }
    by_adapter_name(db, &g.name).ok_or_else(|| {
        format!(
            "no spec entry has PCI id {} or adapter name {:?}",
            match (g.vendor_id, g.device_id) {
                (Some(v), Some(d)) => format!("{v:04x}:{d:04x}"),
                _ => "(none reported)".into(),
            },
            g.name
        )
    })
}

/// The offer a run is priced with, and how it was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferMatch<'a> {
    pub offer: &'a Offer,
    /// `aws c7a.large us-east-1 spot` and what was assumed (`pricing model not stated:
    /// on-demand`, `region not stated: the only region priced`).
    pub how: String,
}

/// Whether an offer's region serves a run's: the same region (ASCII case-insensitive), or an
/// offer for no region in particular (`null` or `global`).
fn region_serves(offer: Option<&str>, run: &str) -> bool {
    match offer.map(str::trim) {
        None => true,
        Some(r) if r.eq_ignore_ascii_case("global") => true,
        Some(r) => r.eq_ignore_ascii_case(run.trim()),
    }
}

fn names(offers: &[&Offer], f: impl Fn(&Offer) -> String) -> String {
    let mut v: Vec<String> = offers.iter().map(|o| f(o)).collect();
    v.sort();
    v.dedup();
    v.join(", ")
}

/// Any offer of the run's instance type (and provider, where stated): what the instance holds
/// (its device and count), whatever its region or pricing model.
pub fn instance_device<'a>(db: &'a Database, inst: &InstanceInfo) -> Option<&'a Offer> {
    let ty = inst.instance_type.as_deref()?.trim();
    let provider = inst.provider.as_deref();
    db.offers
        .iter()
        .filter(|o| o.instance.eq_ignore_ascii_case(ty))
        .filter(|o| provider.is_none_or(|p| o.provider.eq_ignore_ascii_case(p)))
        .min_by_key(|o| o.status)
}

/// The offer that prices a run: by (provider, instance type, region, pricing model), each
/// where the run states it. A pricing model not stated is taken as on-demand (and said so); a
/// region not stated is fine only while the offers left do not differ by region. Among
/// several offers left, one from a user's price file, then the best data status. `Err` says why no offer matched — never a guess
/// between regions or pricing models.
pub fn instance<'a>(db: &'a Database, inst: &InstanceInfo) -> Result<OfferMatch<'a>, String> {
    let Some(ty) = inst.instance_type.as_deref().map(str::trim) else {
        return Err("no instance type (pass --instance to `run`)".into());
    };
    let mut notes = Vec::new();
    let mut left: Vec<&Offer> = db
        .offers
        .iter()
        .filter(|o| o.instance.eq_ignore_ascii_case(ty))
        .collect();
    if left.is_empty() {
        return Err(format!(
            "no offer for instance type {ty:?} in the price data"
        ));
    }
    if let Some(p) = inst.provider.as_deref() {
        let all = left.clone();
        left.retain(|o| o.provider.eq_ignore_ascii_case(p));
        if left.is_empty() {
            return Err(format!(
                "{ty:?} is priced for provider(s) {} only, the run's provider is {p:?}",
                names(&all, |o| o.provider.clone())
            ));
        }
    }
    let model = match inst.pricing_model.as_deref() {
        Some(m) => m.trim().to_ascii_lowercase(),
        None => {
            notes.push("pricing model not stated: on-demand".to_string());
            "on-demand".to_string()
        }
    };
    let all = left.clone();
    left.retain(|o| o.pricing_model.name() == model);
    if left.is_empty() {
        return Err(format!(
            "no {model} offer for {ty:?} (offers: {}){}",
            names(&all, |o| o.pricing_model.name().to_string()),
            if inst.pricing_model.is_none() {
                "; pass --pricing-model to `run`"
            } else {
                ""
            }
        ));
    }
    match inst.region.as_deref() {
        Some(r) => {
            let all = left.clone();
            left.retain(|o| region_serves(o.region.as_deref(), r));
            if left.is_empty() {
                return Err(format!(
                    "no {model} offer for {ty:?} in region {r:?} (priced in: {})",
                    names(&all, |o| o.region.clone().unwrap_or_else(|| "?".into()))
                ));
            }
            // An offer for the region itself beats a region-independent one.
            if left.iter().any(|o| {
                o.region
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(r))
            }) {
                left.retain(|o| {
                    o.region
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(r))
                });
            }
        }
        None => {
            let regions = names(&left, |o| o.region.clone().unwrap_or_else(|| "any".into()));
            let prices: Vec<Option<f64>> = left.iter().map(|o| o.point_price()).collect();
            let differ = prices.windows(2).any(|w| w[0] != w[1]);
            if regions.contains(", ") && differ {
                return Err(format!(
                    "{model} offers for {ty:?} in several regions at different prices                      ({regions}); pass --region to `run`"
                ));
            }
            notes.push(format!("region not stated: priced in {regions}"));
        }
    }
    // A user's price file (a negotiated rate, an imported catalog) before the embedded data.
    let offer = left
        .into_iter()
        .min_by_key(|o| (!db.origin(&o.id).is_some_and(|x| x.user), o.status))
        .expect("non-empty");
    let mut how = format!(
        "{} {} {} {}",
        offer.provider,
        offer.instance,
        offer.region.as_deref().unwrap_or("(any region)"),
        offer.pricing_model.name()
    );
    if !notes.is_empty() {
        how.push_str(&format!(" ({})", notes.join("; ")));
    }
    Ok(OfferMatch { offer, how })
}
