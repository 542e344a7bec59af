//! `perfledger prices import-sky-catalog`: a SkyPilot catalog file (`vms.csv`) as a price file
//! (`perfledger.prices/1`).
//!
//! Columns are found by header name (`InstanceType`, `AcceleratorName`, `AcceleratorCount`,
//! `vCPUs`, `MemoryGiB`, `Price`, `SpotPrice`, `Region`, `AvailabilityZone`, `Arch`; others,
//! e.g. `GPUInfo`, are ignored). `InstanceType`, `Region` and `Price` are required. One
//! on-demand and one spot offer per (instance, region): rows repeated per availability zone
//! collapse into one offer, and prices that differ between zones are kept as a range
//! (`{min, max, sources}`) naming the zones. Blank prices are skipped and counted. The catalog
//! carries no date, so the caller gives one (`--as-of`).
//!
//! Devices are mapped to spec ids by [`ACCELERATORS`] (accelerator name, by instance family where
//! the name alone is ambiguous) and, for instances without accelerators, by [`CPU_FAMILIES`]. A
//! name neither table maps is kept as the seller's (`device_name`) and reported.

use super::{AsOf, DataStatus, Figure, FigureRange, Offer, PricesDoc, PricingModel, PRICES_SCHEMA};
use std::collections::BTreeMap;
use std::path::Path;

/// SkyPilot accelerator names → spec ids: `(AcceleratorName, instance-type prefix ("" = any
/// family), spec id, why)`. The first row whose name and prefix match wins.
pub const ACCELERATORS: &[(&str, &str, &str, &str)] = &[
    ("H100", "p5.", "nvidia-h100-sxm", "AWS P5: H100 SXM5 80 GB"),
    ("H100", "a3-", "nvidia-h100-sxm", "GCP A3: H100 SXM 80 GB"),
    (
        "H100-MEGA",
        "a3-megagpu",
        "nvidia-h100-sxm",
        "GCP A3 Mega: H100 SXM 80 GB",
    ),
    (
        "H100",
        "Standard_ND96isr_H100_v5",
        "nvidia-h100-sxm",
        "Azure ND H100 v5: H100 SXM",
    ),
    (
        "H100",
        "gpu_8x_h100_sxm5",
        "nvidia-h100-sxm",
        "Lambda 8x H100 SXM5",
    ),
    (
        "H100",
        "gpu_1x_h100_sxm5",
        "nvidia-h100-sxm",
        "Lambda 1x H100 SXM5",
    ),
    (
        "H100",
        "gpu_1x_h100_pcie",
        "nvidia-h100-pcie",
        "Lambda 1x H100 PCIe",
    ),
    ("H200", "", "nvidia-h200-sxm", "H200 is an SXM part"),
    ("B200", "", "nvidia-b200", "B200 (HGX)"),
    (
        "A100",
        "p4d.",
        "nvidia-a100-sxm-40gb",
        "AWS P4d: A100 SXM4 40 GB",
    ),
    (
        "A100",
        "a2-highgpu",
        "nvidia-a100-sxm-40gb",
        "GCP A2 High: A100 40 GB",
    ),
    (
        "A100-80GB",
        "p4de.",
        "nvidia-a100-sxm-80gb",
        "AWS P4de: A100 SXM4 80 GB",
    ),
    (
        "A100-80GB",
        "a2-ultragpu",
        "nvidia-a100-sxm-80gb",
        "GCP A2 Ultra: A100 80 GB",
    ),
    ("L4", "", "nvidia-l4", "L4 (one part)"),
    ("L40S", "", "nvidia-l40s", "L40S (one part)"),
    ("A10G", "", "nvidia-a10g", "A10G (AWS G5)"),
    ("RTX4090", "", "nvidia-rtx-4090", "GeForce RTX 4090"),
    ("MI300X", "", "amd-mi300x", "Instinct MI300X"),
    ("Trainium", "trn1", "aws-trainium1", "AWS Trn1/Trn1n"),
    ("Trainium2", "trn2", "aws-trainium2", "AWS Trn2"),
    ("Inferentia2", "inf2", "aws-inferentia2", "AWS Inf2"),
];

/// Instance families without accelerators → `(instance-type prefix, CPU spec id, vCPUs per
/// physical core)`: the families the embedded CPU entries describe (`specs.json`, "cpus").
pub const CPU_FAMILIES: &[(&str, &str, u32)] = &[
    ("c7a.", "amd-genoa-9r14-aws", 1),
    ("m7a.", "amd-genoa-9r14-aws", 1),
    ("r7a.", "amd-genoa-9r14-aws", 1),
    ("c7i.", "intel-spr-8488c-aws", 2),
    ("m7i.", "intel-spr-8488c-aws", 2),
    ("r7i.", "intel-spr-8488c-aws", 2),
    ("c6i.", "intel-icx-8375c-aws", 2),
    ("m6i.", "intel-icx-8375c-aws", 2),
    ("c6a.", "amd-milan-7r13-aws", 2),
    ("m6a.", "amd-milan-7r13-aws", 2),
    ("c7g.", "aws-graviton3", 1),
    ("m7g.", "aws-graviton3", 1),
    ("r7g.", "aws-graviton3", 1),
    ("c8g.", "aws-graviton4", 1),
    ("m8g.", "aws-graviton4", 1),
    ("r8g.", "aws-graviton4", 1),
    ("c3-", "intel-spr-8481c-gcp", 2),
    ("c3d-", "amd-genoa-9b14-gcp", 2),
    ("c4-", "intel-emr-8581c-gcp", 2),
    ("t2a-", "ampere-altra-q64-30-gcp", 1),
    ("n2d-", "amd-milan-7b13-gcp", 2),
];

/// SkyPilot's cloud directory names (`catalogs/vN/<cloud>/vms.csv`) that name a provider.
const CLOUD_DIRS: &[&str] = &[
    "aws",
    "gcp",
    "azure",
    "lambda",
    "runpod",
    "vast",
    "oci",
    "ibm",
    "nebius",
    "paperspace",
    "cudo",
    "fluidstack",
    "do",
    "hyperbolic",
];

/// What went wrong reading a catalog: the file, the line (1-based, header = 1) and the column.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("{file}: line {line}, column {column}: {reason}")]
    Cell {
        file: String,
        line: u64,
        column: String,
        reason: String,
    },
}

/// The import's result: the price document and what was left out or not mapped.
#[derive(Debug)]
pub struct Imported {
    pub doc: PricesDoc,
    pub rows_read: usize,
    pub blank_on_demand: usize,
    pub blank_spot: usize,
    /// Accelerator names (with an example instance) no table row maps.
    pub unmapped_accelerators: BTreeMap<String, String>,
    /// Instance families without accelerators that [`CPU_FAMILIES`] does not know.
    pub unmapped_cpu_instances: usize,
    /// Columns the file has that the import does not read.
    pub ignored_columns: Vec<String>,
}

/// Options of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The provider id (`aws`); `None`: the cloud directory the file is in.
    pub provider: Option<String>,
    /// The date the catalog was fetched (`YYYY-MM-DD`).
    pub as_of: String,
}

/// The spec id and note for an accelerator of an instance, if the table maps it.
pub fn map_accelerator(name: &str, instance: &str) -> Option<(&'static str, &'static str)> {
    ACCELERATORS
        .iter()
        .find(|(n, prefix, _, _)| n.eq_ignore_ascii_case(name) && instance.starts_with(prefix))
        .map(|(_, _, id, why)| (*id, *why))
}

/// The CPU spec id and vCPUs per core of an instance without accelerators.
pub fn map_cpu_family(instance: &str) -> Option<(&'static str, u32)> {
    CPU_FAMILIES
        .iter()
        .find(|(prefix, _, _)| instance.starts_with(prefix))
        .map(|(_, id, tpc)| (*id, *tpc))
}

/// The provider a catalog path names (`…/aws/vms.csv` → `aws`).
pub fn provider_of_path(path: &Path) -> Option<String> {
    let dir = path.parent()?.file_name()?.to_str()?.to_ascii_lowercase();
    CLOUD_DIRS
        .contains(&dir.as_str())
        .then(|| if dir == "vast" { "vastai".into() } else { dir })
}

struct Columns {
    instance: usize,
    region: usize,
    price: usize,
    spot: Option<usize>,
    zone: Option<usize>,
    acc_name: Option<usize>,
    acc_count: Option<usize>,
    vcpus: Option<usize>,
    memory: Option<usize>,
    arch: Option<usize>,
}

/// Prices of one (instance, region) over its zones.
#[derive(Default)]
struct Group {
    first_line: u64,
    on_demand: Vec<(String, f64)>,
    spot: Vec<(String, f64)>,
    acc_name: Option<String>,
    acc_count: Option<f64>,
    vcpus: Option<f64>,
    memory: Option<f64>,
    arch: Option<String>,
}

/// Read a catalog (`text` is the file's content, `file` its name as given).
pub fn import(text: &str, file: &str, opts: &ImportOptions) -> Result<Imported, CatalogError> {
    let ferr = |reason: String| CatalogError::File {
        file: file.to_string(),
        reason,
    };
    let provider = opts
        .provider
        .clone()
        .or_else(|| provider_of_path(Path::new(file)))
        .ok_or_else(|| {
            ferr(
                "the provider is not named by the file's directory (…/aws/vms.csv): pass \
                 --provider"
                    .into(),
            )
        })?;
    let as_of = AsOf::parse(&opts.as_of).map_err(|e| ferr(format!("--as-of: {e}")))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ferr(format!("header line: {e}")))?
        .clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].trim().is_empty()) {
        return Err(ferr("empty file: no header line".into()));
    }
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            ferr(format!(
                "no {name:?} column (header: {})",
                headers.iter().collect::<Vec<_>>().join(",")
            ))
        })
    };
    let cols = Columns {
        instance: need("InstanceType")?,
        region: need("Region")?,
        price: need("Price")?,
        spot: find("SpotPrice"),
        zone: find("AvailabilityZone"),
        acc_name: find("AcceleratorName"),
        acc_count: find("AcceleratorCount"),
        vcpus: find("vCPUs"),
        memory: find("MemoryGiB"),
        arch: find("Arch"),
    };
    const KNOWN: [&str; 10] = [
        "InstanceType",
        "AcceleratorName",
        "AcceleratorCount",
        "vCPUs",
        "MemoryGiB",
        "Price",
        "SpotPrice",
        "Region",
        "AvailabilityZone",
        "Arch",
    ];
    let ignored_columns = headers
        .iter()
        .filter(|h| !KNOWN.contains(&h.trim()))
        .map(str::to_string)
        .collect();
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let (mut rows_read, mut blank_on_demand, mut blank_spot) = (0, 0, 0);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            CatalogError::Cell {
                file: file.to_string(),
                line,
                column: "-".into(),
                reason: e.to_string(),
            }
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let cell = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
        let opt_cell = |i: Option<usize>| i.map(cell).filter(|s| !s.is_empty());
        let cerr = |column: &str, reason: String| CatalogError::Cell {
            file: file.to_string(),
            line,
            column: column.to_string(),
            reason,
        };
        let number = |column: &str, s: Option<&str>, positive: bool| -> Result<Option<f64>, _> {
            let Some(s) = s else { return Ok(None) };
            match s.parse::<f64>() {
                Ok(v)
                    if v.is_finite()
                        && (v > 0.0 || (!positive && v >= 0.0))
                        && v <= super::figure::MAX_FIGURE =>
                {
                    Ok(Some(v))
                }
                _ => Err(cerr(
                    column,
                    format!(
                        "{s:?} is not a {} number",
                        if positive { "positive" } else { "non-negative" }
                    ),
                )),
            }
        };
        let instance = cell(cols.instance);
        let region = cell(cols.region);
        if instance.is_empty() {
            return Err(cerr("InstanceType", "empty".into()));
        }
        if region.is_empty() {
            return Err(cerr("Region", "empty".into()));
        }
        rows_read += 1;
        let zone = opt_cell(cols.zone).unwrap_or(region).to_string();
        let g = groups
            .entry((instance.to_string(), region.to_string()))
            .or_insert_with(|| Group {
                first_line: line,
                ..Default::default()
            });
        match number("Price", opt_cell(Some(cols.price)), true)? {
            Some(p) => g.on_demand.push((zone.clone(), p)),
            None => blank_on_demand += 1,
        }
        match number("SpotPrice", opt_cell(cols.spot), true)? {
            Some(p) => g.spot.push((zone.clone(), p)),
            None => blank_spot += 1,
        }
        g.acc_name = g
            .acc_name
            .take()
            .or(opt_cell(cols.acc_name).map(str::to_string));
        g.acc_count = g
            .acc_count
            .or(number("AcceleratorCount", opt_cell(cols.acc_count), false)?);
        g.vcpus = g.vcpus.or(number("vCPUs", opt_cell(cols.vcpus), true)?);
        g.memory = g
            .memory
            .or(number("MemoryGiB", opt_cell(cols.memory), true)?);
        g.arch = g.arch.take().or(opt_cell(cols.arch).map(str::to_string));
    }
    if rows_read == 0 {
        return Err(ferr("no data rows after the header".into()));
    }
    let base = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let source = format!("SkyPilot catalog {base} ({file})");
    let mut unmapped_accelerators = BTreeMap::new();
    let mut unmapped_cpu_instances = 0;
    let mut offers = Vec::new();
    for ((instance, region), g) in &groups {
        let vcpus = g.vcpus.map(|v| v.round().max(1.0) as u32);
        let mut notes = Vec::new();
        let (device, device_name, count) = match g.acc_name.as_deref() {
            Some(name) => {
                let count = g.acc_count.filter(|c| c.fract() == 0.0 && *c >= 1.0);
                if count.is_none() {
                    notes.push(format!(
                        "AcceleratorCount {:?}: not a whole number of devices",
                        g.acc_count
                    ));
                }
                match map_accelerator(name, instance) {
                    Some((id, why)) => {
                        notes.push(format!("{name} → {id}: {why}"));
                        (Some(id.to_string()), None, count.unwrap_or(1.0) as u32)
                    }
                    None => {
                        unmapped_accelerators
                            .entry(name.to_string())
                            .or_insert_with(|| instance.clone());
                        notes.push(format!(
                            "accelerator {name:?} on {instance} is not in the mapping table"
                        ));
                        (None, Some(name.to_string()), count.unwrap_or(1.0) as u32)
                    }
                }
            }
            None => match map_cpu_family(instance) {
                Some((id, tpc)) => {
                    let cores = vcpus.map(|v| (v / tpc).max(1)).unwrap_or(1);
                    notes.push(format!("{id}, {tpc} vCPU(s) per physical core"));
                    (Some(id.to_string()), None, cores)
                }
                None => {
                    unmapped_cpu_instances += 1;
                    notes.push(
                        "CPU family not in the mapping table: device_count is the vCPU count"
                            .into(),
                    );
                    (None, Some(format!("CPU of {instance}")), vcpus.unwrap_or(1))
                }
            },
        };
        if let Some(a) = &g.arch {
            notes.push(format!("Arch {a}"));
        }
        notes.push(format!("catalog line {}", g.first_line));
        for (model, prices) in [
            (PricingModel::OnDemand, &g.on_demand),
            (PricingModel::Spot, &g.spot),
        ] {
            let Some(price) = zone_figure(prices, &source) else {
                continue;
            };
            offers.push(Offer {
                id: format!("{provider}-{instance}-{}-{region}", model.name()),
                provider: provider.clone(),
                instance: instance.clone(),
                region: Some(region.clone()),
                pricing_model: model,
                device: device.clone(),
                device_name: device_name.clone(),
                device_count: count.max(1),
                vcpus: vcpus.filter(|&v| v >= count.max(1)),
                memory_gib: g.memory,
                usd_per_hour: Some(price),
                usd_per_device_hour: None,
                status: DataStatus::SingleSource,
                source: source.clone(),
                as_of: as_of.clone(),
                as_of_note: Some(
                    "the catalog carries no date: the date given to import-sky-catalog".into(),
                ),
                notes: Some(notes.join("; ")),
            });
        }
    }
    for o in &offers {
        o.validate()
            .map_err(|e| ferr(format!("offer {}: {}: {}", o.id, e.field, e.reason)))?;
    }
    Ok(Imported {
        doc: PricesDoc {
            schema: PRICES_SCHEMA.to_string(),
            description: Some(format!(
                "Imported from {file} by `perfledger prices import-sky-catalog` (as of {}): one \
                 on-demand and one spot offer per (instance, region); spot prices that differ \
                 between availability zones are ranges over the zones",
                opts.as_of
            )),
            offers,
        },
        rows_read,
        blank_on_demand,
        blank_spot,
        unmapped_accelerators,
        unmapped_cpu_instances,
        ignored_columns,
    })
}

/// One price over the zones: the value where all agree, else `{min, max}` naming each zone.
fn zone_figure(prices: &[(String, f64)], source: &str) -> Option<Figure> {
    let min = prices.iter().map(|p| p.1).reduce(f64::min)?;
    let max = prices.iter().map(|p| p.1).reduce(f64::max)?;
    if min == max {
        return Some(Figure::Value(min));
    }
    Some(Figure::Range(FigureRange {
        min,
        max,
        sources: prices
            .iter()
            .map(|(z, p)| format!("{source}, zone {z}: {p}"))
            .collect(),
    }))
}
