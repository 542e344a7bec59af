//! OpenBLAS, loaded at run time through its C API (`libloading`), never linked: a machine without
//! it builds and runs perfledger, and the OpenBLAS rows are `unsupported`, saying what to install.
//!
//! Where the library comes from: `PERFLEDGER_OPENBLAS` (a path; then only that file is tried, and
//! a failure says why), else the system library by its usual names ([`SYSTEM_NAMES`]). Symbols are
//! looked up under the names the common builds export: plain (`cblas_sgemm`, distributions'
//! packages), with the ILP64 suffix (`cblas_sgemm64_`) and with the prefix of the `scipy-openblas`
//! wheels that numpy bundles (`scipy_cblas_sgemm64_`), so numpy's copy can be measured in-process
//! too (`PERFLEDGER_OPENBLAS=.venv/lib/python3*/site-packages/numpy.libs/libscipy_openblas64_*.so`).
//! The integer width of the dimensions follows the build's configuration string (`USE64BITINT`).
//!
//! Each row records the library's version and configuration (`openblas_get_config`), the core
//! type its dynamic dispatch chose (`openblas_get_corename`), its thread count (set to the run's
//! with `openblas_set_num_threads` before each row) and the file loaded. An old build may not
//! know a new CPU and fall back to an older core type (Debian 12's 0.3.21 predates some CPUs that
//! OpenBLAS 0.3.2x added): the core name says which kernels ran.
//!
//! Routines: `cblas_sgemm` (f32) and `cblas_sbgemm` (bf16 in, f32 accumulate and out; OpenBLAS
//! ≥ 0.3.10, with `vdpbf16ps` kernels on CPUs with AVX512_BF16 and a generic one elsewhere). Row
//! major, `C = 1·A·op(B) + 0·C`, op(B) = Bᵀ through `CblasTrans` for B stored `[n, k]`.

use super::{check_matmul, matmul_inputs, PeerLibrary, PeerMatmul};
use crate::dtype::Element;
use crate::dtype::{DType, Tensor};
use crate::isa::Isa;
use crate::kernel::{
    Backend, ComputeUnit, Kernel, KernelError, KernelIdentity, Op, Prepared, Problem, Support,
    Unsupported,
};
use crate::problem::{MatmulProblem, Precision};
use half::bf16;
use rayon::prelude::*;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::sync::{Arc, OnceLock};

/// The environment variable naming the OpenBLAS library file to load.
pub const ENV: &str = "PERFLEDGER_OPENBLAS";

/// File names tried in the loader's search path when [`ENV`] is not set.
pub const SYSTEM_NAMES: [&str; 4] = [
    "libopenblas.so.0",
    "libopenblas.so",
    "libopenblas.dylib",
    "libopenblas.dll",
];

/// What to do when no library loads (the `unsupported` reason of every OpenBLAS row).
pub const INSTALL_HINT: &str = "OpenBLAS not found: install it (Debian/Ubuntu: apt-get install \
     libopenblas0-pthread; Fedora: dnf install openblas; macOS: brew install openblas) or set \
     PERFLEDGER_OPENBLAS to the library file";

/// (prefix, suffix) of the exported names, in the order tried.
const NAMINGS: [(&str, &str); 4] = [("", ""), ("", "64_"), ("scipy_", "64_"), ("scipy_", "")];

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

type Sgemm32 = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    i32,
    i32,
    i32,
    f32,
    *const f32,
    i32,
    *const f32,
    i32,
    f32,
    *mut f32,
    i32,
);
type Sgemm64 = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    i64,
    i64,
    i64,
    f32,
    *const f32,
    i64,
    *const f32,
    i64,
    f32,
    *mut f32,
    i64,
);
type Sbgemm32 = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    i32,
    i32,
    i32,
    f32,
    *const u16,
    i32,
    *const u16,
    i32,
    f32,
    *mut f32,
    i32,
);
type Sbgemm64 = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    i64,
    i64,
    i64,
    f32,
    *const u16,
    i64,
    *const u16,
    i64,
    f32,
    *mut f32,
    i64,
);
type GetStr = unsafe extern "C" fn() -> *const c_char;
type SetThreads = unsafe extern "C" fn(c_int);
type GetThreads = unsafe extern "C" fn() -> c_int;

/// The dimension type of the build's interface.
#[derive(Clone, Copy)]
enum Gemm<F32, F64> {
    Int32(F32),
    Int64(F64),
}

/// A loaded OpenBLAS: the library (kept alive for the process) and its entry points.
pub struct OpenBlas {
    _lib: libloading::Library,
    /// The file loaded (as given to the loader).
    pub path: String,
    /// `openblas_get_config()`, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64`.
    pub config: String,
    /// The exported names' prefix and suffix (`""`, `"64_"`; `"scipy_"`, `"64_"`).
    pub naming: (&'static str, &'static str),
    sgemm: Gemm<Sgemm32, Sgemm64>,
    sbgemm: Option<Gemm<Sbgemm32, Sbgemm64>>,
    corename: Option<GetStr>,
    set_threads: Option<SetThreads>,
    get_threads: Option<GetThreads>,
}

// SAFETY: the function pointers are plain C entry points; OpenBLAS's gemm and thread-count
// functions may be called from any thread (its own server serializes what needs it).
unsafe impl Send for OpenBlas {}
unsafe impl Sync for OpenBlas {}

/// The routines this module offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routine {
    /// `cblas_sgemm`: f32 in, out and accumulate.
    Sgemm,
    /// `cblas_sbgemm`: bf16 in, f32 accumulate and out.
    Sbgemm,
}

impl Routine {
    pub fn name(self) -> &'static str {
        match self {
            Routine::Sgemm => "sgemm",
            Routine::Sbgemm => "sbgemm",
        }
    }
}

/// The widest vector instructions an OpenBLAS core type's GEMM kernels use, for the x86-64 core
/// names of `openblas_get_corename` (OpenBLAS 0.3.x). Ordered: a core below the CPU's level runs
/// narrower kernels than the CPU could.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CoreLevel {
    /// SSE-era cores (`Prescott`, `Core2`, `Nehalem`, `Atom`, `Barcelona`, ...): 128-bit kernels.
    /// `Prescott` is also what a DYNAMIC_ARCH build falls back to on an Intel CPU it does not know.
    Sse,
    /// `Sandybridge`, `Bulldozer`, `Piledriver`, `Steamroller`: 256-bit AVX (FMA4/FMA3) kernels.
    Avx,
    /// `Haswell`, `Zen`, `Excavator`: AVX2 and FMA (`Excavator`'s kernels are its AVX ones, but
    /// it is only chosen on the AMD CPU of that name, which it then matches).
    Avx2,
    /// `SkylakeX`: AVX-512 kernels (its `sbgemm` has no `vdpbf16ps`).
    Avx512,
    /// `Cooperlake`, `SapphireRapids`: AVX-512 with `vdpbf16ps` bf16 kernels.
    Avx512Bf16,
}

impl CoreLevel {
    /// The level of a core name (case-insensitive); `None` for a name this module does not know.
    pub fn of(corename: &str) -> Option<CoreLevel> {
        Some(match corename.trim().to_ascii_lowercase().as_str() {
            "katmai" | "coppermine" | "northwood" | "prescott" | "banias" | "atom" | "core2"
            | "penryn" | "dunnington" | "nehalem" | "athlon" | "opteron" | "opteron_sse3"
            | "opteron(sse3)" | "barcelona" | "nano" | "bobcat" => CoreLevel::Sse,
            "sandybridge" | "bulldozer" | "piledriver" | "steamroller" => CoreLevel::Avx,
            "haswell" | "zen" | "excavator" => CoreLevel::Avx2,
            "skylakex" => CoreLevel::Avx512,
            "cooperlake" | "sapphirerapids" => CoreLevel::Avx512Bf16,
            _ => return None,
        })
    }

    fn kernels(self) -> &'static str {
        match self {
            CoreLevel::Sse => "SSE kernels",
            CoreLevel::Avx => "AVX kernels",
            CoreLevel::Avx2 => "AVX2 kernels",
            CoreLevel::Avx512 => "AVX-512 kernels without vdpbf16ps",
            CoreLevel::Avx512Bf16 => "AVX-512 kernels with vdpbf16ps",
        }
    }
}

/// What a row of `routine` says when OpenBLAS's core type (`corename`) runs narrower kernels
/// than this CPU (`cpu`) offers for that routine. An old build that does not recognise a newer
/// CPU falls back to an older core (Debian 12's 0.3.21 chooses `Prescott` on Intel Xeon family 6
/// model 207, where its `sgemm` then runs at a fifth of its own `SkylakeX` kernels' speed), and
/// every ratio against such a row flatters the other side. `None` when the core matches the CPU,
/// when the name is not known here, or on a CPU without AVX2.
///
/// `dynamic_arch`: whether the build can be told its core (`OPENBLAS_CORETYPE`), from its
/// configuration string.
pub fn core_caveat(
    routine: Routine,
    version: &str,
    corename: &str,
    dynamic_arch: bool,
    cpu: &crate::isa::Features,
) -> Option<String> {
    let core = CoreLevel::of(corename)?;
    let (want, cpu_has, coretype) = if routine == Routine::Sbgemm && cpu.avx512bf16 {
        (CoreLevel::Avx512Bf16, "AVX512_BF16", "Cooperlake")
    } else if cpu.avx512f {
        (CoreLevel::Avx512, "AVX-512F", "SkylakeX")
    } else if cpu.avx2fma {
        (CoreLevel::Avx2, "AVX2 and FMA", "Haswell")
    } else {
        return None;
    };
    if core >= want {
        return None;
    }
    let fix = if dynamic_arch {
        format!(
            "set OPENBLAS_CORETYPE={coretype} (the build is DYNAMIC_ARCH) or {ENV} to a newer \
             OpenBLAS (numpy's bundled copy is one)"
        )
    } else {
        format!("set {ENV} to an OpenBLAS built for this CPU (numpy's bundled copy is one)")
    };
    Some(format!(
        "OpenBLAS {version} chose core {corename} ({}) on a CPU with {cpu_has}: the build does \
         not recognise this CPU, so the row measures its fallback kernels and a ratio against it \
         flatters the other side; {fix}",
        core.kernels()
    ))
}

/// Why OpenBLAS did not load: every attempt, for the row's detail.
#[derive(Clone, Debug)]
pub struct LoadError {
    pub tried: Vec<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{INSTALL_HINT} (tried: {})", self.tried.join("; "))
    }
}

/// The process's OpenBLAS, loaded on first use (from [`ENV`] or the system).
pub fn library() -> Result<&'static OpenBlas, &'static LoadError> {
    static LIB: OnceLock<Result<OpenBlas, LoadError>> = OnceLock::new();
    LIB.get_or_init(|| match std::env::var_os(ENV) {
        Some(path) if !path.is_empty() => {
            let path = path.to_string_lossy().into_owned();
            OpenBlas::load(&path).map_err(|e| LoadError {
                tried: vec![format!("{ENV}={path}: {e}")],
            })
        }
        _ => {
            let mut tried = Vec::new();
            for name in SYSTEM_NAMES {
                match OpenBlas::load(name) {
                    Ok(lib) => return Ok(lib),
                    Err(e) => tried.push(format!("{name}: {e}")),
                }
            }
            Err(LoadError { tried })
        }
    })
    .as_ref()
}

impl OpenBlas {
    /// Load the library file `path` and resolve its entry points.
    pub fn load(path: &str) -> Result<OpenBlas, String> {
        // SAFETY: loading a shared library runs its initializers; OpenBLAS's only start its
        // thread server. This is the documented way to use the library without linking it.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
        let naming = NAMINGS
            .into_iter()
            .find(|(pre, suf)| sym::<Sgemm32>(&lib, pre, "cblas_sgemm", suf).is_some())
            .ok_or_else(|| {
                "no cblas_sgemm (under any known naming): not an OpenBLAS/CBLAS library".to_string()
            })?;
        let (pre, suf) = naming;
        let get_config = sym::<GetStr>(&lib, pre, "openblas_get_config", suf)
            .ok_or("no openblas_get_config: not OpenBLAS")?;
        // SAFETY: returns a pointer to a static NUL-terminated string.
        let config = unsafe { c_string(get_config()) };
        let int64 = config.contains("USE64BITINT");
        let sgemm = if int64 {
            Gemm::Int64(sym::<Sgemm64>(&lib, pre, "cblas_sgemm", suf).expect("resolved above"))
        } else {
            Gemm::Int32(sym::<Sgemm32>(&lib, pre, "cblas_sgemm", suf).expect("resolved above"))
        };
        let sbgemm = if int64 {
            sym::<Sbgemm64>(&lib, pre, "cblas_sbgemm", suf).map(Gemm::Int64)
        } else {
            sym::<Sbgemm32>(&lib, pre, "cblas_sbgemm", suf).map(Gemm::Int32)
        };
        Ok(OpenBlas {
            corename: sym::<GetStr>(&lib, pre, "openblas_get_corename", suf),
            set_threads: sym::<SetThreads>(&lib, pre, "openblas_set_num_threads", suf),
            get_threads: sym::<GetThreads>(&lib, pre, "openblas_get_num_threads", suf),
            sgemm,
            sbgemm,
            naming,
            config,
            path: path.to_string(),
            _lib: lib,
        })
    }

    /// The version from the configuration string (`0.3.21`), or the whole string.
    pub fn version(&self) -> &str {
        self.config
            .strip_prefix("OpenBLAS ")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or(&self.config)
    }

    /// The core type OpenBLAS's dispatch selected on this CPU (`SkylakeX`, `Haswell`, ...).
    pub fn corename(&self) -> Option<String> {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        self.corename.map(|f| unsafe { c_string(f()) })
    }

    /// Set the library's thread count (the run's), where the build lets it be set.
    pub fn set_threads(&self, n: usize) {
        if let Some(f) = self.set_threads {
            // SAFETY: plain C call with an int.
            unsafe { f(n.min(c_int::MAX as usize) as c_int) };
        }
    }

    /// The library's thread count.
    pub fn threads(&self) -> Option<usize> {
        // SAFETY: plain C call.
        self.get_threads
            .map(|f| unsafe { f() })
            .and_then(|n| usize::try_from(n).ok())
    }

    /// Whether the build exports `cblas_sbgemm`.
    pub fn has_sbgemm(&self) -> bool {
        self.sbgemm.is_some()
    }

    /// What a row of `routine` says about the core type this library chose ([`core_caveat`]).
    pub fn caveat(&self, routine: Routine) -> Option<String> {
        core_caveat(
            routine,
            self.version(),
            &self.corename()?,
            self.config.contains("DYNAMIC_ARCH"),
            crate::isa::detected(),
        )
    }

    /// What a row records: version, core type (and `OPENBLAS_CORETYPE` where set, as it
    /// overrides the library's own choice), threads, file.
    pub fn describe(&self) -> String {
        // Present at all, even empty, the variable changes what the library picks.
        let forced = std::env::var_os("OPENBLAS_CORETYPE")
            .map(|v| format!(" under OPENBLAS_CORETYPE={:?}", v.to_string_lossy()))
            .unwrap_or_default();
        format!(
            "{} (core {}{forced}, {} threads, {}; config: {})",
            self.version(),
            self.corename().as_deref().unwrap_or("unknown"),
            self.threads()
                .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
            self.path,
            self.config.trim()
        )
    }

    /// Whether the dimensions fit the interface's integer type.
    fn fits(&self, p: &MatmulProblem) -> bool {
        let max = match self.sgemm {
            Gemm::Int32(_) => i32::MAX as usize,
            Gemm::Int64(_) => i64::MAX as usize,
        };
        [p.m, p.n, p.k, p.lda, p.ldb, p.ldc]
            .into_iter()
            .all(|d| d <= max)
    }

    /// `c = a · op(b)` in f32 (one batch, row-major, perfledger's leading dimensions).
    fn sgemm(&self, p: &MatmulProblem, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(a.len() >= p.a_stride() && b.len() >= p.b_stride() && c.len() >= p.c_stride());
        let tb = if p.trans_b { TRANS } else { NO_TRANS };
        // SAFETY: the buffers hold the batch's operands at these leading dimensions (asserted),
        // the dimensions fit the integer type (checked in `supports`).
        unsafe {
            match self.sgemm {
                Gemm::Int32(f) => f(
                    ROW_MAJOR,
                    NO_TRANS,
                    tb,
                    p.m as i32,
                    p.n as i32,
                    p.k as i32,
                    1.0,
                    a.as_ptr(),
                    p.lda as i32,
                    b.as_ptr(),
                    p.ldb as i32,
                    0.0,
                    c.as_mut_ptr(),
                    p.ldc as i32,
                ),
                Gemm::Int64(f) => f(
                    ROW_MAJOR,
                    NO_TRANS,
                    tb,
                    p.m as i64,
                    p.n as i64,
                    p.k as i64,
                    1.0,
                    a.as_ptr(),
                    p.lda as i64,
                    b.as_ptr(),
                    p.ldb as i64,
                    0.0,
                    c.as_mut_ptr(),
                    p.ldc as i64,
                ),
            }
        }
    }

    /// `c = a · op(b)`, bf16 (bits) in, f32 out.
    fn sbgemm(&self, p: &MatmulProblem, a: &[u16], b: &[u16], c: &mut [f32]) {
        assert!(a.len() >= p.a_stride() && b.len() >= p.b_stride() && c.len() >= p.c_stride());
        let tb = if p.trans_b { TRANS } else { NO_TRANS };
        // SAFETY: as in `sgemm`; the routine exists (checked in `supports`).
        unsafe {
            match self.sbgemm.expect("sbgemm checked in supports") {
                Gemm::Int32(f) => f(
                    ROW_MAJOR,
                    NO_TRANS,
                    tb,
                    p.m as i32,
                    p.n as i32,
                    p.k as i32,
                    1.0,
                    a.as_ptr(),
                    p.lda as i32,
                    b.as_ptr(),
                    p.ldb as i32,
                    0.0,
                    c.as_mut_ptr(),
                    p.ldc as i32,
                ),
                Gemm::Int64(f) => f(
                    ROW_MAJOR,
                    NO_TRANS,
                    tb,
                    p.m as i64,
                    p.n as i64,
                    p.k as i64,
                    1.0,
                    a.as_ptr(),
                    p.lda as i64,
                    b.as_ptr(),
                    p.ldb as i64,
                    0.0,
                    c.as_mut_ptr(),
                    p.ldc as i64,
                ),
            }
        }
    }
}

/// The entry point `{pre}{name}{suf}` of `lib`, if exported.
fn sym<F: Copy>(lib: &libloading::Library, pre: &str, name: &str, suf: &str) -> Option<F> {
    let full = format!("{pre}{name}{suf}\0");
    // SAFETY: the caller names the C signature `F` of the entry point; the pointer is used only
    // while `lib` is alive (both live in the same `OpenBlas`, which is never dropped once loaded).
    unsafe { lib.get::<F>(full.as_bytes()).ok().map(|s| *s) }
}

/// A C string from a library, lossily as UTF-8 (empty for NULL).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// The OpenBLAS peer kernel of one routine and precision.
pub struct OpenBlasMatmul {
    routine: Routine,
    precision: Precision,
}

/// The OpenBLAS peer kernels: `sgemm` (f32), `sbgemm` with f32 output (the routine's own) and
/// with bf16 output (the f32 result rounded to bf16 in a pass after the call, inside the timed
/// run, as a bf16 model's next layer would need it).
pub fn kernels() -> Vec<Box<dyn Kernel>> {
    [
        (Routine::Sgemm, Precision::same(DType::F32)),
        (Routine::Sbgemm, Precision::widening(DType::BF16)),
        (Routine::Sbgemm, Precision::same(DType::BF16)),
    ]
    .into_iter()
    .map(|(routine, precision)| Box::new(OpenBlasMatmul { routine, precision }) as Box<dyn Kernel>)
    .collect()
}

impl Kernel for OpenBlasMatmul {
    fn identity(&self) -> KernelIdentity {
        let bf16dot = self.routine == Routine::Sbgemm && crate::isa::detected().avx512bf16;
        KernelIdentity {
            op: Op::Matmul,
            backend: Backend::Cpu,
            family: "matmul.cpu.openblas".into(),
            variant: self.routine.name().into(),
            precision: self.precision,
            // The library chooses its own kernels; the ceiling is the best this CPU has for them.
            unit: if bf16dot {
                ComputeUnit::CpuBf16Dot
            } else {
                ComputeUnit::CpuFma(Isa::best())
            },
            params: serde_json::Map::new(),
        }
    }

    fn supports(&self, problem: &Problem) -> Support {
        if let Support::No(why) = check_matmul(problem) {
            return Support::No(why);
        }
        let lib = match library() {
            Ok(lib) => lib,
            Err(e) => {
                return Support::No(Unsupported::with_detail(
                    INSTALL_HINT,
                    format!("tried: {}", e.tried.join("; ")),
                ))
            }
        };
        if self.routine == Routine::Sbgemm && !lib.has_sbgemm() {
            return Support::No(Unsupported::with_detail(
                "this OpenBLAS has no cblas_sbgemm (OpenBLAS ≥ 0.3.10 built with bf16 support)",
                lib.describe(),
            ));
        }
        match problem {
            Problem::Matmul(p) if !lib.fits(p) => {
                Support::no("dimensions beyond the OpenBLAS build's 32-bit integers")
            }
            _ => Support::Yes,
        }
    }

    fn prepare(
        &self,
        problem: &Problem,
        inputs: &[Arc<Tensor>],
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let id = self.identity();
        let (p, a, b) = matmul_inputs(&id, self.supports(problem), problem, inputs)?;
        let lib = library().map_err(|e| KernelError::Other(e.to_string()))?;
        lib.set_threads(rayon::current_num_threads());
        Ok(match (self.routine, self.precision.output) {
            (Routine::Sgemm, _) => PeerMatmul::<f32, f32>::boxed(
                p,
                a,
                b,
                Box::new(move |p, a, b, c| lib.sgemm(p, a, b, c)),
            ),
            (Routine::Sbgemm, DType::F32) => PeerMatmul::<bf16, f32>::boxed(
                p,
                a,
                b,
                Box::new(move |p, a, b, c| {
                    lib.sbgemm(p, bytemuck::cast_slice(a), bytemuck::cast_slice(b), c)
                }),
            ),
            (Routine::Sbgemm, _) => {
                // f32 result (dense, ldc = n), then rounded into C.
                let scratch = RefCell::new(vec![0f32; p.m * p.n]);
                let dense = p.with_leading_dims(p.lda, p.ldb, p.n);
                PeerMatmul::<bf16, bf16>::boxed(
                    p,
                    a,
                    b,
                    Box::new(move |p, a, b, c| {
                        let mut f = scratch.borrow_mut();
                        lib.sbgemm(
                            &dense,
                            bytemuck::cast_slice(a),
                            bytemuck::cast_slice(b),
                            &mut f,
                        );
                        c.par_chunks_mut(p.ldc)
                            .zip(f.par_chunks(p.n))
                            .for_each(|(dst, src)| bf16::slice_from_f32(src, &mut dst[..p.n]));
                    }),
                )
            }
        })
    }

    /// OpenBLAS's own threads (its thread server), not the run's pool.
    fn on_run_pool(&self) -> bool {
        false
    }
    fn peer(&self) -> Option<PeerLibrary> {
        Some(PeerLibrary {
            name: "OpenBLAS",
            version: match library() {
                Ok(lib) => lib.describe(),
                Err(_) => "not loaded".into(),
            },
            caveat: library().ok().and_then(|lib| lib.caveat(self.routine)),
            // Its threads exist (and poll) only once the library has loaded.
            settle: library().is_ok().then(thread_settle),
        })
    }
}

/// How long OpenBLAS's worker threads may poll for work after a call: its thread server keeps
/// them polling (yielding) for 2^N TSC cycles before they sleep, N from `OPENBLAS_THREAD_TIMEOUT`
/// (clamped to 4–30; default 28: ≈ 0.1 s at 2.6 GHz). Taken at a TSC of 1 GHz, so the wait covers
/// any machine's. On a 2-vCPU machine, rows timed in that window read lower: ndarray's
/// 200×300×129 row read 74 GFLOP/s after OpenBLAS's rows and 102–105 without them (Zen 4,
/// BENCHMARKS.md "Zen 4, fourth session: the sitting").
fn thread_settle() -> std::time::Duration {
    thread_settle_for(std::env::var("OPENBLAS_THREAD_TIMEOUT").ok().as_deref())
}

/// [`thread_settle`] for a value of `OPENBLAS_THREAD_TIMEOUT` (unset or unreadable: 28).
fn thread_settle_for(timeout: Option<&str>) -> std::time::Duration {
    let n = timeout
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(28, |n| n.clamp(4, 30));
    std::time::Duration::from_secs_f64((1u64 << n) as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::{core_caveat, thread_settle_for, CoreLevel, Routine};
    use crate::isa::Features;

    /// The wait after an OpenBLAS row: 2^N ns for the library's N (default 28), N clamped as the
    /// library clamps it.
    #[test]
    fn thread_settle_follows_the_library_timeout() {
        let ns = |v: Option<&str>| thread_settle_for(v).as_nanos();
        assert_eq!(ns(None), 1 << 28);
        assert_eq!(ns(Some("not a number")), 1 << 28);
        assert_eq!(ns(Some(" 20 ")), 1 << 20);
        assert_eq!(ns(Some("1")), 1 << 4);
        assert_eq!(ns(Some("40")), 1 << 30);
    }

    fn cpu(avx2fma: bool, avx512f: bool, avx512bf16: bool) -> Features {
        Features {
            avx2fma,
            avx512f,
            avx512bf16,
            amx_bf16: false,
            f16c: avx2fma,
            names: Vec::new(),
        }
    }

    #[test]
    fn core_names_have_their_kernels_level() {
        assert_eq!(CoreLevel::of("Prescott"), Some(CoreLevel::Sse));
        assert_eq!(CoreLevel::of("Sandybridge"), Some(CoreLevel::Avx));
        assert_eq!(CoreLevel::of("haswell"), Some(CoreLevel::Avx2));
        assert_eq!(CoreLevel::of("Zen"), Some(CoreLevel::Avx2));
        assert_eq!(CoreLevel::of("SkylakeX"), Some(CoreLevel::Avx512));
        assert_eq!(CoreLevel::of("Cooperlake"), Some(CoreLevel::Avx512Bf16));
        assert_eq!(CoreLevel::of("SapphireRapids"), Some(CoreLevel::Avx512Bf16));
        assert_eq!(CoreLevel::of("Neoverse V2"), None);
        assert!(CoreLevel::Sse < CoreLevel::Avx2 && CoreLevel::Avx512 < CoreLevel::Avx512Bf16);
    }

    /// Debian 12's OpenBLAS on Intel Xeon 6/207 (AVX-512, AVX512_BF16): `Prescott`.
    #[test]
    fn a_core_below_the_cpu_gets_a_caveat_naming_the_fix() {
        let spr = cpu(true, true, true);
        let c = core_caveat(Routine::Sgemm, "0.3.21", "Prescott", true, &spr).unwrap();
        assert!(
            c.contains("0.3.21") && c.contains("core Prescott (SSE kernels)"),
            "{c}"
        );
        assert!(
            c.contains("AVX-512F") && c.contains("OPENBLAS_CORETYPE=SkylakeX"),
            "{c}"
        );
        // Not DYNAMIC_ARCH: the core cannot be chosen, only another library.
        let c = core_caveat(Routine::Sgemm, "0.3.21", "Haswell", false, &spr).unwrap();
        assert!(
            !c.contains("OPENBLAS_CORETYPE") && c.contains("PERFLEDGER_OPENBLAS"),
            "{c}"
        );
        // sbgemm without vdpbf16ps kernels on a CPU that has them.
        let c = core_caveat(Routine::Sbgemm, "0.3.21", "SkylakeX", true, &spr).unwrap();
        assert!(
            c.contains("AVX512_BF16") && c.contains("=Cooperlake"),
            "{c}"
        );
        // AVX2 machine, SSE core.
        let zen3 = cpu(true, false, false);
        let c = core_caveat(Routine::Sgemm, "0.3.21", "Nehalem", true, &zen3).unwrap();
        assert!(c.contains("=Haswell"), "{c}");
    }

    #[test]
    fn a_core_that_matches_the_cpu_gets_none() {
        let spr = cpu(true, true, true);
        let zen3 = cpu(true, false, false);
        let none = |r, core, f: &Features| core_caveat(r, "0.3.31", core, true, f);
        assert_eq!(none(Routine::Sgemm, "SkylakeX", &spr), None);
        assert_eq!(none(Routine::Sgemm, "Cooperlake", &spr), None);
        assert_eq!(none(Routine::Sbgemm, "Cooperlake", &spr), None);
        assert_eq!(
            none(Routine::Sbgemm, "SkylakeX", &cpu(true, true, false)),
            None
        );
        assert_eq!(none(Routine::Sgemm, "Haswell", &zen3), None);
        assert_eq!(none(Routine::Sgemm, "Zen", &zen3), None);
        // Unknown names, and CPUs below AVX2, are not judged.
        assert_eq!(none(Routine::Sgemm, "Unknown", &spr), None);
        assert_eq!(
            none(Routine::Sgemm, "Prescott", &cpu(false, false, false)),
            None
        );
    }
}
