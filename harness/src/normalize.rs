//! Normalization arithmetic (DESIGN.md, "Normalization and perf per dollar"): arithmetic
//! intensity, the roofline, compute- or memory-bound labels, % of a peak, perf per dollar with
//! the timing CI carried through, projections for chips not run here and break-even prices.
//!
//! Everything here is a pure function of numbers and spec entries, so the unit tests pin it on
//! hand-computed values. Units: GFLOP/s, GB/s (10⁹ bytes/s), USD per hour, seconds.
//!
//! - `AI = flops / min_bytes` (useful FLOPs by the documented convention: matmul `2·M·N·K`,
//!   attention `4·D` per unmasked (q, k) pair per head).
//! - attainable = `min(peak, AI × bandwidth)`; memory-bound when the second term is smaller.
//! - `GFLOP/s per USD/h = GFLOP/s / usd_per_hour`; `GFLOP per $ = GFLOP/s × 3600 / usd_per_hour`;
//!   `$ per PFLOP = usd_per_hour / (GFLOP/s × 3600) × 10⁶`.
//! - break-even price per chip-hour = `projected GFLOP/s × 3600 / best GFLOP per $`.

use crate::specs::{fmt_num, Accelerator, PublishedCeiling, SpecDType};
use perfledger_kernels::kernel::Op;
use serde::{Serialize, Serializer};

/// A median with its 95% CI (`lo ≤ median ≤ hi` for estimates; `lo == hi == median` for exact).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn exact(v: f64) -> Interval {
        Interval {
            median: v,
            lo: v,
            hi: v,
        }
    }

    pub fn new(median: f64, ci: [f64; 2]) -> Interval {
        Interval {
            median,
            lo: ci[0].min(ci[1]),
            hi: ci[0].max(ci[1]),
        }
    }

    /// `k × self` for `k > 0`.
    pub fn scale(self, k: f64) -> Interval {
        Interval {
            median: self.median * k,
            lo: self.lo * k,
            hi: self.hi * k,
        }
    }

    /// `k / self` (the CI flips: the low end comes from the high end).
    pub fn recip_times(self, k: f64) -> Interval {
        Interval {
            median: k / self.median,
            lo: k / self.hi,
            hi: k / self.lo,
        }
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Interval", 2)?;
        st.serialize_field("median", &self.median)?;
        st.serialize_field("ci95", &[self.lo, self.hi])?;
        st.end()
    }
}

/// Which roof limits a workload on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Compute,
    Memory,
}

impl Bound {
    pub fn name(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Memory => "memory",
        }
    }
}

/// A device's roofs: peak GFLOP/s (for one dtype) and memory bandwidth GB/s.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Roof {
    pub peak_gflops: f64,
    pub bw_gbs: f64,
}

impl Roof {
    /// `min(peak, AI × bw)` and the roof that binds (ties count as compute-bound).
    pub fn attainable(&self, ai: f64) -> (f64, Bound) {
        let mem = ai * self.bw_gbs;
        if mem < self.peak_gflops {
            (mem, Bound::Memory)
        } else {
            (self.peak_gflops, Bound::Compute)
        }
    }

    /// The arithmetic intensity where the roofs meet (FLOP/byte).
    pub fn ridge(&self) -> f64 {
        self.peak_gflops / self.bw_gbs
    }
}

/// Arithmetic intensity, FLOP per byte.
pub fn intensity(flops: u64, min_bytes: u64) -> f64 {
    flops as f64 / min_bytes.max(1) as f64
}

/// `100 × value / of`.
pub fn pct(value: f64, of: f64) -> f64 {
    100.0 * value / of
}

/// The fastest a workload can run under a roof: `max(flops / peak, bytes / bw)`, seconds.
pub fn ceiling_seconds(flops: u64, min_bytes: u64, roof: &Roof) -> f64 {
    (flops as f64 / (roof.peak_gflops * 1e9)).max(min_bytes as f64 / (roof.bw_gbs * 1e9))
}

/// Perf per dollar at a price (the share of the instance the row used).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PerfPerDollar {
    pub usd_per_hour: f64,
    pub gflops_per_usd_hour: Interval,
    pub gflop_per_usd: Interval,
    pub usd_per_pflop: Interval,
}

/// Perf per dollar from GFLOP/s (with its CI) and USD per hour.
pub fn perf_per_dollar(gflops: Interval, usd_per_hour: f64) -> PerfPerDollar {
    let gflop_per_usd = gflops.scale(3600.0 / usd_per_hour);
    PerfPerDollar {
        usd_per_hour,
        gflops_per_usd_hour: gflops.scale(1.0 / usd_per_hour),
        gflop_per_usd,
        // $ per PFLOP = 10⁶ GFLOP / (GFLOP per $).
        usd_per_pflop: gflop_per_usd.recip_times(1e6),
    }
}

/// The price of the share of an instance a row used: `instance × used / total` (1 of 8 GPUs →
/// 1/8).
pub fn price_share(instance_usd_per_hour: f64, used: f64, total: f64) -> f64 {
    instance_usd_per_hour * used / total
}

/// Physical cores a CPU run used: `ceil(threads / threads_per_core)`, at most the cores there are.
pub fn used_physical_cores(threads: usize, smt: Option<u32>, physical: Option<u32>) -> Option<u32> {
    let per_core = smt.unwrap_or(1).max(1) as usize;
    let used = threads.div_ceil(per_core) as u32;
    Some(match physical {
        Some(p) => used.min(p),
        None => used,
    })
}

/// The hourly price at which a device running at `gflops` matches `best` GFLOP per $ (its CI
/// flips: a higher best perf/$ gives a lower break-even price).
pub fn break_even_usd_per_hour(gflops: f64, best_gflop_per_usd: Interval) -> Interval {
    best_gflop_per_usd.recip_times(gflops * 3600.0)
}

/// What a projection is of: one workload in one dtype.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Workload {
    pub op: Op,
    pub flops: u64,
    pub min_bytes: u64,
    pub dtype: SpecDType,
}

/// Where a projection's realistic figure comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Realistic {
    /// A published measured ceiling of that chip (matmul, same dtype), still under its memory
    /// roof.
    PublishedCeiling {
        tflops: f64,
        source: String,
        as_of: String,
    },
    /// The user's `--efficiency`, applied to the roofline ceiling.
    UserEfficiency { efficiency: f64 },
}

/// A projection of one workload onto one chip. Never a measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Projection {
    pub chip: String,
    pub chip_name: String,
    pub dtype: SpecDType,
    /// Dense peak for the dtype, GFLOP/s (upper value where sources conflict).
    pub peak_gflops: f64,
    /// The peak or bandwidth is a range of published values (the upper one is used).
    pub from_range: bool,
    pub bw_gbs: f64,
    pub intensity: f64,
    pub bound: Bound,
    /// Roofline ceiling: an upper bound.
    pub ceiling_gflops: f64,
    pub ceiling_s: f64,
    pub realistic_gflops: Option<f64>,
    pub realistic_s: Option<f64>,
    pub realistic: Option<Realistic>,
    /// The assumption in words, printed with the figure.
    pub assumption: String,
}

/// Project a workload onto a chip from its published figures. `efficiency` (the user's
/// `--efficiency`, in (0, 1]) gives the realistic figure as a share of the ceiling; otherwise a
/// published measured matmul ceiling of that chip does, for matmul in the same dtype. The
/// efficiency of any measured device is never an input here.
pub fn project(
    chip: &Accelerator,
    w: &Workload,
    efficiency: Option<f64>,
) -> Result<Projection, String> {
    let peak = chip
        .peak_tflops
        .get(&w.dtype)
        .ok_or_else(|| format!("{} publishes no dense {} peak", chip.name, w.dtype.name()))?;
    let bw = chip
        .mem_bw_tbs
        .as_ref()
        .ok_or_else(|| format!("{} publishes no memory bandwidth", chip.name))?;
    let roof = Roof {
        peak_gflops: peak.dense.upper() * 1e3,
        bw_gbs: bw.upper() * 1e3,
    };
    let ai = intensity(w.flops, w.min_bytes);
    let (ceiling, bound) = roof.attainable(ai);
    let ceiling_s = ceiling_seconds(w.flops, w.min_bytes, &roof);
    let range_note = if peak.dense.is_range() || bw.is_range() {
        " (upper values of conflicting published figures)"
    } else {
        ""
    };
    let mut assumption = format!(
        "roofline ceiling, an upper bound: min({} TFLOP/s dense {}, AI {:.1} FLOP/B × {} TB/s){}",
        peak.dense,
        w.dtype.name(),
        ai,
        bw,
        range_note
    );
    let published: Option<&PublishedCeiling> = match w.op {
        Op::Matmul => chip.published_ceiling(w.dtype),
        _ => None,
    };
    let (realistic_gflops, realistic) = match (efficiency, published) {
        (Some(e), _) => {
            assumption.push_str(&format!(
                "; realistic = {} × ceiling (--efficiency, the user's assumption)",
                fmt_num(e)
            ));
            (
                Some(e * ceiling),
                Some(Realistic::UserEfficiency { efficiency: e }),
            )
        }
        (None, Some(c)) => {
            let r = (c.tflops * 1e3).min(ai * roof.bw_gbs);
            assumption.push_str(&format!(
                "; realistic = min(published measured matmul ceiling {} TFLOP/s [{}, {}], \
                 AI × bandwidth)",
                fmt_num(c.tflops),
                c.source,
                c.as_of
            ));
            (
                Some(r),
                Some(Realistic::PublishedCeiling {
                    tflops: c.tflops,
                    source: c.source.clone(),
                    as_of: c.as_of.text.clone(),
                }),
            )
        }
        (None, None) => (None, None),
    };
    Ok(Projection {
        chip: chip.id.clone(),
        chip_name: chip.name.clone(),
        dtype: w.dtype,
        peak_gflops: roof.peak_gflops,
        from_range: peak.dense.is_range() || bw.is_range(),
        bw_gbs: roof.bw_gbs,
        intensity: ai,
        bound,
        ceiling_gflops: ceiling,
        ceiling_s,
        realistic_gflops,
        realistic_s: realistic_gflops.map(|g| w.flops as f64 / (g * 1e9)),
        realistic,
        assumption,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn interval_arithmetic() {
        let g = Interval::new(100.0, [90.0, 110.0]);
        let p = perf_per_dollar(g, 2.0);
        assert!(close(p.gflops_per_usd_hour.median, 50.0));
        assert!(close(p.gflop_per_usd.median, 180_000.0));
        assert!(close(p.gflop_per_usd.lo, 162_000.0));
        assert!(close(p.gflop_per_usd.hi, 198_000.0));
        // $ per PFLOP = 1e6 / 180000 = 5.555...; the CI flips.
        assert!(close(p.usd_per_pflop.median, 1e6 / 180_000.0));
        assert!(close(p.usd_per_pflop.lo, 1e6 / 198_000.0));
        assert!(close(p.usd_per_pflop.hi, 1e6 / 162_000.0));
    }

    #[test]
    fn roofline_labels() {
        let roof = Roof {
            peak_gflops: 100.0,
            bw_gbs: 10.0,
        };
        assert_eq!(roof.attainable(1.0), (10.0, Bound::Memory));
        assert_eq!(roof.attainable(10.0), (100.0, Bound::Compute));
        assert_eq!(roof.attainable(50.0), (100.0, Bound::Compute));
        assert!(close(roof.ridge(), 10.0));
    }

    #[test]
    fn cores_used() {
        assert_eq!(used_physical_cores(8, Some(2), Some(4)), Some(4));
        assert_eq!(used_physical_cores(3, Some(2), Some(4)), Some(2));
        assert_eq!(used_physical_cores(2, Some(1), Some(2)), Some(2));
        assert_eq!(used_physical_cores(16, Some(1), Some(2)), Some(2));
    }
}
