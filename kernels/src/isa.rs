//! Instruction-set detection, done once per process, and the ISA paths the CPU kernels can take.
//!
//! No `target-cpu=native`: one binary runs on any x86-64 or aarch64 instance and picks its path at
//! run time. The selected path can be forced (`--isa`), e.g. to measure the portable fallback.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A code path of the CPU kernels, from the most to the least specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isa {
    /// x86-64 AVX-512F (+ AVX2/FMA/F16C for conversions): 512-bit FMA.
    Avx512f,
    /// x86-64 AVX2 + FMA (+ F16C for f16 conversion): 256-bit FMA.
    Avx2fma,
    /// Plain Rust that the compiler vectorizes for the baseline target (SSE2 on x86-64, NEON on
    /// aarch64).
    Portable,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Avx512f, Isa::Avx2fma, Isa::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512f => "avx512f",
            Isa::Avx2fma => "avx2fma",
            Isa::Portable => "portable",
        }
    }

    /// Whether this machine can execute the path.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2fma => detected().avx2fma,
            Isa::Avx512f => detected().avx512f,
        }
    }

    /// f32 lanes per vector register (for FLOP/cycle arithmetic).
    pub fn f32_lanes(self) -> usize {
        match self {
            Isa::Avx512f => 16,
            Isa::Avx2fma => 8,
            Isa::Portable => 4,
        }
    }

    /// The best path this machine supports.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(Isa::Portable)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ISA `{0}` (expected one of avx512f, avx2fma, portable)")]
pub struct ParseIsaError(pub String);

impl FromStr for Isa {
    type Err = ParseIsaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| ParseIsaError(s.to_string()))
    }
}

/// CPU features relevant to the kernels, detected once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub avx2fma: bool,
    pub avx512f: bool,
    /// AVX512_BF16 (`vdpbf16ps`, on top of AVX-512F): the bf16 dot-product matmul path.
    #[serde(default)]
    pub avx512bf16: bool,
    /// AMX-TILE and AMX-BF16 (`tdpbf16ps`), with the OS's tile-data state enabled and, on Linux,
    /// this process granted its use (`arch_prctl(ARCH_REQ_XCOMP_PERM)`): the AMX matmul path.
    #[serde(default)]
    pub amx_bf16: bool,
    pub f16c: bool,
    /// Every feature flag detected, by name (recorded in run fingerprints).
    pub names: Vec<String>,
}

/// The features of this CPU (detected on first call, then cached).
pub fn detected() -> &'static Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    FEATURES.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    let mut names = Vec::new();
    macro_rules! probe {
        ($($f:tt),*) => {$(
            if std::arch::is_x86_feature_detected!($f) { names.push($f.to_string()); }
        )*};
    }
    probe!(
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512dq",
        "avx512bf16"
    );
    let amx = amx::cpu_has_amx_bf16();
    if amx {
        names.extend(["amx-tile".to_string(), "amx-bf16".to_string()]);
    }
    let has = |f: &str| names.iter().any(|n| n == f);
    let avx2fma = has("avx2") && has("fma") && has("f16c");
    Features {
        avx2fma,
        // The AVX-512 path also uses AVX512VL/BW (every AVX-512 x86 since Skylake-X and Zen 4):
        // with VL, 256-bit and 128-bit operations reach registers 16–31 too, so a kernel mixing
        // them with zmm code keeps 32 registers (without it LLVM confined the dot path's 24
        // accumulators to zmm0-15 and spilled). Xeon Phi (F without VL) takes the AVX2 path.
        avx512f: avx2fma && has("avx512f") && has("avx512vl") && has("avx512bw"),
        // The bf16 paths also use AVX512DQ (`vreduceps` in the pair products' softmax), present
        // on every CPU with AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4 and later).
        avx512bf16: avx2fma
            && has("avx512f")
            && has("avx512vl")
            && has("avx512bw")
            && has("avx512dq")
            && has("avx512bf16"),
        // Tile data is requested only where the CPU has the instructions.
        amx_bf16: amx && amx::tile_data_usable(),
        f16c: has("f16c"),
        names,
    }
}

/// AMX detection: CPUID for the instructions (std's `is_x86_feature_detected!` does not name
/// them on stable Rust), XCR0 for the OS's tile state, and the Linux permission request.
#[cfg(target_arch = "x86_64")]
mod amx {
    use std::arch::x86_64::{__cpuid, __cpuid_count};

    /// CPUID.(EAX=7, ECX=0):EDX bit 22 (AMX-BF16) and bit 24 (AMX-TILE).
    pub(super) fn cpu_has_amx_bf16() -> bool {
        // Leaf 7 is read only where leaf 0 lists it.
        let max_leaf = __cpuid(0).eax;
        if max_leaf < 7 {
            return false;
        }
        let edx = __cpuid_count(7, 0).edx;
        edx & (1 << 22) != 0 && edx & (1 << 24) != 0
    }

    /// Whether this process may execute tile instructions: XCR0 enables XTILECFG and XTILEDATA
    /// (bits 17, 18), and on Linux the kernel grants the process the tile data state (without the
    /// grant the first tile instruction faults).
    pub(super) fn tile_data_usable() -> bool {
        let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
        if !osxsave {
            return false;
        }
        let (lo, _hi): (u32, u32);
        // SAFETY: OSXSAVE is set, so XGETBV is enabled; XCR0 is register 0.
        unsafe {
            std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") _hi,
                options(nomem, nostack, preserves_flags));
        }
        if lo & (0b11 << 17) != 0b11 << 17 {
            return false;
        }
        request_tile_data()
    }

    #[cfg(target_os = "linux")]
    fn request_tile_data() -> bool {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with ARCH_REQ_XCOMP_PERM takes a feature number and changes no
        // memory; the grant is process-wide and idempotent.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }

    /// Elsewhere the request is not known to this crate: the path is left off.
    #[cfg(not(target_os = "linux"))]
    fn request_tile_data() -> bool {
        false
    }
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Features {
    let mut names = vec!["neon".to_string()];
    if std::arch::is_aarch64_feature_detected!("fp16") {
        names.push("fp16".to_string());
    }
    Features {
        avx2fma: false,
        avx512f: false,
        avx512bf16: false,
        amx_bf16: false,
        f16c: false,
        names,
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Features {
    Features {
        avx2fma: false,
        avx512f: false,
        avx512bf16: false,
        amx_bf16: false,
        f16c: false,
        names: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_portable_is_always_available() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
        }
        assert!(Isa::Portable.available());
        assert!(Isa::best().available());
        assert!("sse9".parse::<Isa>().is_err());
    }
}
