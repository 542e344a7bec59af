//! Matching a run's device to a spec entry — by PCI vendor/device id, or by an exact model string
//! (an adapter name as the GPU API reports it, a `/proc/cpuinfo` model name) — and a run's
//! instance to an offer. No match is an answer ("n/a"), never a guess: there is no fuzzy or
//! substring matching anywhere here.

use super::{parse_hex_id, Accelerator, Cpu, Database, Offer, PricingModel};
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

/// The offer of an instance: exact instance type (ASCII case-insensitive), the provider and
/// pricing model where the run states them; among several, on-demand first, then the best
/// status. `None` when the type is unknown or not in the database.
pub fn instance<'a>(db: &'a Database, inst: &InstanceInfo) -> Option<&'a Offer> {
    let ty = inst.instance_type.as_deref()?.trim();
    let provider = inst.provider.as_deref();
    let model = inst.pricing_model.as_deref();
    db.offers
        .iter()
        .filter(|o| o.instance.eq_ignore_ascii_case(ty))
        .filter(|o| provider.is_none_or(|p| o.provider.eq_ignore_ascii_case(p)))
        .filter(|o| model.is_none_or(|m| o.pricing_model.name().eq_ignore_ascii_case(m)))
        .min_by_key(|o| (o.pricing_model != PricingModel::OnDemand, o.status))
}
