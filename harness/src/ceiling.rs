//! Which of the machine's measured ceilings holds a row, and the row's share of it: the one rule,
//! used by the run summary, the report and every export.
//!
//! The rule is a match on typed fields of the row — where it ran ([`locate`]), its kernel's
//! compute unit (`kernel.unit`) and its input precision — never on id strings:
//!
//! | where | unit | compute roof | memory roof |
//! |---|---|---|---|
//! | CPU | `cpu.fma.<isa>` | that ISA path's FMA probe | read bandwidth |
//! | CPU | `cpu.dpbf16.avx512bf16` | the `vdpbf16ps` probe | read bandwidth |
//! | CPU | `cpu.amx.bf16` | the `tdpbf16ps` probe | read bandwidth |
//! | CPU | `cpu.scalar`, or none (a peer library) | the best CPU probe for the input dtype (`vdpbf16ps` and `tdpbf16ps` count for bf16 only) | read bandwidth |
//! | GPU *i* | `gpu.simt` | GPU *i* FMA probe | GPU *i* copy |
//! | GPU *i* | `gpu.coop` | GPU *i* cooperative-matrix probe | GPU *i* copy |
//! | GPU *i* | none (a peer library) | f32: FMA probe; f16/bf16: cooperative-matrix probe, else FMA | GPU *i* copy |
//! | imported, projected | — | none: not measured by this run | — |
//!
//! Each probe figure is the higher of the probes before and after the rows where both exist
//! (`MeasuredCeilings`). The attainable rate is the roofline `min(peak, AI × bandwidth)`; a row's
//! share of it is printed only up to [`ABOVE_CEILING`]: beyond that the probe is wrong for this
//! row (it is not a ceiling), and the run and the report say so, naming the row and the probe,
//! instead of printing a percentage.

use crate::normalize::{self, Bound, Roof};
use crate::runfile::{MeasuredCeilings, Row, RowKind, RunFile, Status};
use crate::specs::{matching, Database};
use perfledger_kernels::kernel::Backend;
use perfledger_kernels::{ComputeUnit, DType};
use serde::Serialize;

/// Above this share of its ceiling (1.05 = 105%) a row's ceiling is not a ceiling: no
/// percentage is printed, a warning is.
pub const ABOVE_CEILING: f64 = 1.05;

/// Which hardware of its run a row ran on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Cpu,
    Gpu(usize),
    /// Measured elsewhere (imported) or computed (projected): no probe of this run applies.
    External,
}

/// Where a row ran. Imported and projected rows are external; measured rows and peers ran on
/// this run's machine: their GPU when they name one (index, GPU backend, or a peer whose device
/// is one of the run's adapters), else the CPU. A peer named like a GPU adapter of the spec
/// database in a run that recorded no GPU ran on hardware this run did not probe: external
/// (`db`: the spec database that names adapters; `None` skips that test).
pub fn locate(db: Option<&Database>, run: &RunFile, row: &Row) -> Location {
    match row.kind {
        RowKind::Imported | RowKind::Projected => Location::External,
        RowKind::Measured | RowKind::Peer => {
            if let Some(i) = row.device.gpu_index {
                return Location::Gpu(i);
            }
            if row.backend == Some(Backend::Gpu) {
                return Location::Gpu(0);
            }
            if row.kind == RowKind::Peer {
                if let Some(g) = run
                    .environment
                    .gpus
                    .iter()
                    .find(|g| matching::same_name(&g.name, &row.device.name))
                {
                    return Location::Gpu(g.index);
                }
                if run.environment.gpus.is_empty()
                    && db
                        .is_some_and(|db| matching::by_adapter_name(db, &row.device.name).is_some())
                {
                    return Location::External;
                }
            }
            Location::Cpu
        }
    }
}

/// The measured roofs that hold a row, with the probes named.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuredRoof {
    pub roof: Roof,
    /// The compute probe, e.g. `FMA avx512f probe`, `vdpbf16ps probe`, `GPU 0 cooperative-matrix
    /// probe`.
    pub peak_probe: String,
    /// The bandwidth probe, e.g. `read-bandwidth probe (best of 8 patterns)`, `GPU 0 copy probe`.
    pub bw_probe: String,
}

impl MeasuredRoof {
    /// `measured FMA avx512f probe and read-bandwidth probe` (the report's basis column).
    pub fn basis(&self) -> String {
        format!("measured {} and {}", self.peak_probe, self.bw_probe)
    }
}

/// The CPU probe key of a unit held to "the best probe for the input dtype": `vdpbf16ps` and
/// `tdpbf16ps` count for bf16 inputs only.
fn best_cpu_probe(c: &MeasuredCeilings, input: DType) -> Option<(String, f64)> {
    c.cpu_fma_gflops
        .keys()
        .filter(|k| input == DType::BF16 || !perfledger_kernels::unit::is_bf16_probe(k))
        .filter_map(|k| Some((k.clone(), c.fma_ceiling(k)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn probe_name(key: &str) -> String {
    if key == perfledger_kernels::unit::BF16DOT_PROBE {
        "vdpbf16ps probe".into()
    } else if key == perfledger_kernels::unit::AMX_PROBE {
        "tdpbf16ps probe".into()
    } else {
        format!("FMA {key} probe")
    }
}

/// The measured roofs of a row at `location`, or why there are none.
pub fn measured_roof(
    row: &Row,
    location: Location,
    c: &MeasuredCeilings,
) -> Result<MeasuredRoof, String> {
    let unit = row.kernel.as_ref().and_then(|k| k.unit);
    match location {
        Location::External => Err("measured elsewhere: no probe of this run applies".into()),
        Location::Cpu => {
            let (key, peak) = match unit {
                Some(
                    u
                    @ (ComputeUnit::CpuFma(_) | ComputeUnit::CpuBf16Dot | ComputeUnit::CpuAmxBf16),
                ) => {
                    let key = u.cpu_probe_key().expect("a CPU FMA unit has a probe key");
                    let peak = c
                        .fma_ceiling(key)
                        .ok_or_else(|| format!("no {} in this run (unit {u})", probe_name(key)))?;
                    (key.to_string(), peak)
                }
                Some(ComputeUnit::CpuScalar) | None => best_cpu_probe(c, row.precision.input)
                    .ok_or_else(|| "no CPU FMA probe in this run (probes off)".to_string())?,
                Some(u) => return Err(format!("unit {u} on the CPU")),
            };
            let bw = c
                .read_ceiling_gbs()
                .ok_or_else(|| "no read-bandwidth probe in this run".to_string())?;
            Ok(MeasuredRoof {
                roof: Roof {
                    peak_gflops: peak,
                    bw_gbs: bw,
                },
                peak_probe: probe_name(&key),
                bw_probe: match c.cpu_read_patterns.len() {
                    0 | 1 => "read-bandwidth probe".into(),
                    n => format!("read-bandwidth probe (best of {n} patterns)"),
                },
            })
        }
        Location::Gpu(i) => {
            let g = c
                .gpu
                .iter()
                .find(|g| g.index == i)
                .ok_or_else(|| format!("no probe of GPU {i} in this run"))?;
            let coop = |g: &crate::runfile::GpuCeilings| {
                g.coop_gflops
                    .map(|v| (v, format!("GPU {i} cooperative-matrix probe")))
            };
            let fma = |g: &crate::runfile::GpuCeilings| {
                g.fma_gflops.map(|v| (v, format!("GPU {i} FMA probe")))
            };
            let (peak, name) = match unit {
                Some(ComputeUnit::GpuCoop) => coop(g).ok_or_else(|| {
                    format!("GPU {i} has no cooperative-matrix probe in this run")
                })?,
                Some(ComputeUnit::GpuSimt) => {
                    fma(g).ok_or_else(|| format!("GPU {i} has no FMA probe in this run"))?
                }
                None if row.precision.input == DType::F32 => {
                    fma(g).ok_or_else(|| format!("GPU {i} has no FMA probe in this run"))?
                }
                None => coop(g)
                    .or_else(|| fma(g))
                    .ok_or_else(|| format!("GPU {i} has no compute probe in this run"))?,
                Some(u) => return Err(format!("unit {u} on a GPU")),
            };
            let bw = g
                .copy_gbs
                .ok_or_else(|| format!("GPU {i} has no copy probe in this run"))?;
            Ok(MeasuredRoof {
                roof: Roof {
                    peak_gflops: peak,
                    bw_gbs: bw,
                },
                peak_probe: name,
                bw_probe: format!("GPU {i} copy probe"),
            })
        }
    }
}

/// An `ok` row against its measured roofs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Share {
    pub roof: MeasuredRoof,
    /// `min(peak, AI × bw)`, GFLOP/s.
    pub attainable_gflops: f64,
    pub bound: Bound,
    /// `100 × GFLOP/s / attainable`; `None` when above [`ABOVE_CEILING`].
    pub pct: Option<f64>,
    /// Set when the row is above [`ABOVE_CEILING`] of its ceiling: the warning, naming the row
    /// and the probe.
    pub probe_wrong: Option<String>,
}

/// The row's share of its measured ceiling (`None` when the row has no speed, or no measured
/// roof applies: [`measured_roof`] says why).
pub fn share(row: &Row, location: Location, c: &MeasuredCeilings) -> Option<Share> {
    if row.status != Status::Ok {
        return None;
    }
    let g = row.gflops?.median;
    let roof = measured_roof(row, location, c).ok()?;
    let work = row
        .shape
        .problem()
        .ok()
        .map(|p| p.work(row.precision))
        .map(|w| (w.flops, w.min_bytes))
        .or_else(|| Some((row.flops?.useful, row.min_bytes?)))?;
    let ai = normalize::intensity(work.0, work.1);
    let (attainable, bound) = roof.roof.attainable(ai);
    let ratio = g / attainable;
    let probe_wrong = (ratio > ABOVE_CEILING).then(|| {
        let (probe, figure) = match bound {
            Bound::Compute => (
                &roof.peak_probe,
                format!("{:.1} GFLOP/s", roof.roof.peak_gflops),
            ),
            Bound::Memory => (&roof.bw_probe, format!("{:.1} GB/s", roof.roof.bw_gbs)),
        };
        format!(
            "{} {} runs at {:.0}% of the {probe} ({figure}, attainable {:.1} GFLOP/s at AI \
             {:.2}): the probe is not a ceiling for this row; no % is shown",
            row.id
                .clone()
                .unwrap_or_else(|| format!("{} ({})", row.kind.name(), row.device.name)),
            row.shape.short(),
            100.0 * ratio,
            attainable,
            ai
        )
    });
    Some(Share {
        attainable_gflops: attainable,
        bound,
        pct: probe_wrong.is_none().then_some(100.0 * ratio),
        probe_wrong,
        roof,
    })
}
