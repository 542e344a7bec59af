//! The execution unit a kernel's inner loop runs on, declared by the kernel itself. It decides
//! which of the machine's measured ceilings holds the kernel's rows (the harness's `ceiling`
//! module), so that rule is a match on a type, never a test on an id string.

use crate::isa::Isa;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Where a kernel's arithmetic happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComputeUnit {
    /// CPU vector FMA of an ISA path (`vfmadd…ps` zmm/ymm, SSE2 `mulps`+`addps`, NEON `fmla`):
    /// held to that path's FMA probe.
    CpuFma(Isa),
    /// CPU AVX512_BF16 `vdpbf16ps` (two bf16 products per f32 lane): held to the `vdpbf16ps`
    /// probe.
    CpuBf16Dot,
    /// CPU AMX-BF16 `tdpbf16ps` (a 16 × 16 f32 tile += 16 × 32 bf16 · 32 × 16 bf16): held to the
    /// `tdpbf16ps` probe.
    CpuAmxBf16,
    /// Scalar baselines: held to the best CPU FMA probe (the machine's best).
    CpuScalar,
    /// GPU shader ALUs (f32 FMA): held to the GPU FMA probe.
    GpuSimt,
    /// GPU cooperative matrices (tensor cores): held to the cooperative-matrix probe.
    GpuCoop,
}

impl ComputeUnit {
    /// Every unit, for exhaustive tests.
    pub const ALL: [ComputeUnit; 8] = [
        ComputeUnit::CpuFma(Isa::Avx512f),
        ComputeUnit::CpuFma(Isa::Avx2fma),
        ComputeUnit::CpuFma(Isa::Portable),
        ComputeUnit::CpuBf16Dot,
        ComputeUnit::CpuAmxBf16,
        ComputeUnit::CpuScalar,
        ComputeUnit::GpuSimt,
        ComputeUnit::GpuCoop,
    ];

    /// The name written in run files (`kernel.unit`).
    pub fn name(self) -> &'static str {
        match self {
            ComputeUnit::CpuFma(Isa::Avx512f) => "cpu.fma.avx512f",
            ComputeUnit::CpuFma(Isa::Avx2fma) => "cpu.fma.avx2fma",
            ComputeUnit::CpuFma(Isa::Portable) => "cpu.fma.portable",
            ComputeUnit::CpuBf16Dot => "cpu.dpbf16.avx512bf16",
            ComputeUnit::CpuAmxBf16 => "cpu.amx.bf16",
            ComputeUnit::CpuScalar => "cpu.scalar",
            ComputeUnit::GpuSimt => "gpu.simt",
            ComputeUnit::GpuCoop => "gpu.coop",
        }
    }

    /// The key of this unit's CPU FMA probe in a run's `measured_ceilings.cpu_fma_gflops`
    /// (`avx512f`, `avx2fma`, `portable`, `avx512bf16`, `amx_bf16`); `None` for scalar code and
    /// GPU units.
    pub fn cpu_probe_key(self) -> Option<&'static str> {
        match self {
            ComputeUnit::CpuFma(isa) => Some(isa.name()),
            ComputeUnit::CpuBf16Dot => Some(BF16DOT_PROBE),
            ComputeUnit::CpuAmxBf16 => Some(AMX_PROBE),
            _ => None,
        }
    }

    pub fn is_gpu(self) -> bool {
        matches!(self, ComputeUnit::GpuSimt | ComputeUnit::GpuCoop)
    }
}

/// The probe key of the `vdpbf16ps` FMA probe.
pub const BF16DOT_PROBE: &str = "avx512bf16";

/// The probe key of the AMX `tdpbf16ps` probe.
pub const AMX_PROBE: &str = "amx_bf16";

/// Whether a CPU probe key measures bf16-only arithmetic (`vdpbf16ps`, `tdpbf16ps`): a ceiling
/// for bf16 inputs only.
pub fn is_bf16_probe(key: &str) -> bool {
    key == BF16DOT_PROBE || key == AMX_PROBE
}

impl fmt::Display for ComputeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compute unit `{name}` (expected one of {})", ComputeUnit::ALL.map(|u| u.name()).join(", "), name = .0)]
pub struct ParseUnitError(pub String);

impl FromStr for ComputeUnit {
    type Err = ParseUnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ComputeUnit::ALL
            .into_iter()
            .find(|u| u.name() == s)
            .ok_or_else(|| ParseUnitError(s.to_string()))
    }
}

impl Serialize for ComputeUnit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ComputeUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for u in ComputeUnit::ALL {
            assert!(seen.insert(u.name()));
            assert_eq!(u.name().parse::<ComputeUnit>().unwrap(), u);
            let j = serde_json::to_string(&u).unwrap();
            assert_eq!(serde_json::from_str::<ComputeUnit>(&j).unwrap(), u);
        }
        assert!("cpu.fma.avx9".parse::<ComputeUnit>().is_err());
    }
}
