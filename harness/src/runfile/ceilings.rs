//! The machine's measured ceilings as a run records them (`measured_ceilings`): the CPU probes
//! before and after the rows, the GPU probes.

use super::*;

/// The machine's own ceilings from perfledger's probes (`None`/empty where not measured).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredCeilings {
    /// FMA throughput in GFLOP/s by ISA path name (`avx2fma`, `avx512`, `portable`, ...).
    #[serde(default)]
    pub cpu_fma_gflops: BTreeMap<String, f64>,
    /// Read bandwidth in GB/s (10⁹ bytes per second).
    #[serde(default)]
    pub cpu_read_gbs: Option<f64>,
    /// STREAM-triad bandwidth in GB/s.
    #[serde(default)]
    pub cpu_triad_gbs: Option<f64>,
    /// FMA throughput of the run's selected ISA path measured again after the last row (a shared
    /// VM's speed moves from minute to minute; the pair brackets the rows). Empty when not
    /// measured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_fma_gflops_after: BTreeMap<String, f64>,
    /// Read bandwidth measured again after the last row. `None` when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_read_gbs_after: Option<f64>,
    /// Triad bandwidth measured again after the last row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_triad_gbs_after: Option<f64>,
    /// The read pattern that gave `cpu_read_gbs` (1.2; `cpu_read_gbs` is the best of several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_read_pattern: Option<String>,
    /// Every read pattern's figure, GB/s, by pattern name (1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_read_patterns: BTreeMap<String, f64>,
    #[serde(default)]
    pub gpu: Vec<GpuCeilings>,
}

/// The higher of two optional probe figures (either alone when the other is missing).
pub(crate) fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl MeasuredCeilings {
    /// The CPU probes' figures as a run records them: every FMA-type probe by its key (the ISA
    /// paths and `avx512bf16`), the best read pattern with every pattern's figure, and triad.
    pub fn from_cpu_probes(c: &perfledger_kernels::probe::CpuCeilings) -> MeasuredCeilings {
        let bw = &c.bandwidth;
        MeasuredCeilings {
            cpu_fma_gflops: c
                .fma_by_key()
                .map(|(k, f)| (k.to_string(), f.gflops))
                .collect(),
            cpu_read_gbs: Some(bw.read_gbs),
            cpu_triad_gbs: Some(bw.triad_gbs),
            cpu_read_pattern: Some(bw.read_pattern.name().to_string()),
            cpu_read_patterns: bw
                .read_patterns
                .iter()
                .map(|p| (p.pattern.name().to_string(), p.gbs))
                .collect(),
            ..MeasuredCeilings::default()
        }
    }

    /// The FMA ceiling of ISA path `isa`: the higher of the probes before and after the rows
    /// (conservative, as for bandwidth).
    pub fn fma_ceiling(&self, isa: &str) -> Option<f64> {
        higher(
            self.cpu_fma_gflops.get(isa).copied(),
            self.cpu_fma_gflops_after.get(isa).copied(),
        )
    }

    /// The before-rows FMA figures as `isa N GFLOP/s` (with the after-rows figure where there is
    /// one: `isa N GFLOP/s (M after the rows)`).
    pub fn fma_text(&self) -> Vec<String> {
        self.cpu_fma_gflops
            .iter()
            .map(|(k, v)| match self.cpu_fma_gflops_after.get(k) {
                Some(after) => format!("{k} {v:.0} GFLOP/s ({after:.0} after the rows)"),
                None => format!("{k} {v:.0} GFLOP/s"),
            })
            .collect()
    }

    /// The read-bandwidth ceiling rows are held to: the higher of the probes before and after
    /// the rows (the conservative choice: a memory-bound row's % of ceiling is never inflated by a
    /// probe that happened to fall in a slow window).
    pub fn read_ceiling_gbs(&self) -> Option<f64> {
        higher(self.cpu_read_gbs, self.cpu_read_gbs_after)
    }

    /// `read X GB/s` or `read X GB/s before, Y after the rows`.
    pub fn read_text(&self) -> String {
        match (self.cpu_read_gbs, self.cpu_read_gbs_after) {
            (Some(a), Some(b)) => format!("read {a:.1} GB/s before, {b:.1} after the rows"),
            (Some(a), None) => format!("read {a:.1} GB/s"),
            (None, Some(b)) => format!("read {b:.1} GB/s after the rows"),
            (None, None) => "read n/a".to_string(),
        }
    }
}

/// One GPU adapter's measured ceilings (`index` matches `environment.gpus[].index`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuCeilings {
    pub index: usize,
    /// FMA-heavy shader, GFLOP/s (f32).
    #[serde(default)]
    pub fma_gflops: Option<f64>,
    /// Copy shader, GB/s.
    #[serde(default)]
    pub copy_gbs: Option<f64>,
    /// Cooperative-matrix shader, GFLOP/s, where the adapter has cooperative matrices.
    #[serde(default)]
    pub coop_gflops: Option<f64>,
}
