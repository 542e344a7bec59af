//! Configurations of the GPU matmul kernels per adapter: the legal space of each kernel, the
//! documented per-adapter defaults, and the tune cache (`perfledger.tune/1`) that
//! `perfledger tune` writes and `run --tune-cache` reads.
//!
//! A kernel picks its configuration when it is asked about a problem ([`choose`]): an entry of
//! the installed cache for this adapter (PCI vendor id, device id, driver version), this kernel
//! id and the problem's [`ShapeClass`] if there is one, else [`default_config`]. The choice and
//! where it came from (`config_source`: `tuned` or `default`) go into the row's params.

use crate::gpu::context::{AdapterReport, GpuContext};
use crate::problem::MatmulProblem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The cache file's schema string.
pub const TUNE_SCHEMA: &str = "perfledger.tune/1";

/// Tile configuration of `tiled` (shaders/matmul.wgsl): a BM × BN block of C per workgroup,
/// BK-deep workgroup-memory tiles, TM × TN outputs per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TiledConfig {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
    /// Double-buffered tiles (`DOUBLE_BUF`): the next K slice staged while one is multiplied.
    pub double_buf: bool,
}

impl TiledConfig {
    /// Threads per workgroup: (BN / TN) × (BM / TM).
    pub fn threads(&self) -> u32 {
        (self.bn / self.tn) * (self.bm / self.tm)
    }

    /// Workgroup memory of the f32 tiles (both halves when double-buffered), bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        (self.bm + self.bn) * self.bk * 4 * if self.double_buf { 2 } else { 1 }
    }

    /// Why this configuration cannot run on an adapter with these limits (the shader header's
    /// ranges, then the adapter's), or `None`.
    pub fn illegal(&self, limits: &wgpu::Limits) -> Option<String> {
        let TiledConfig {
            bm, bn, bk, tm, tn, ..
        } = *self;
        if !(tm == 4 || tm == 8 || tm == 16) || !(tn == 4 || tn == 8 || tn == 16) {
            return Some(format!("tm={tm}, tn={tn}: each must be 4, 8 or 16"));
        }
        if !(16..=256).contains(&bm) || !(16..=256).contains(&bn) {
            return Some(format!("bm={bm}, bn={bn}: each must be in 16..=256"));
        }
        if bm % (4 * tm) != 0 || bn % (4 * tn) != 0 {
            return Some(format!("bm={bm}, bn={bn}: must be multiples of 4·tm, 4·tn"));
        }
        if !(4..=64).contains(&bk) {
            return Some(format!("bk={bk}: must be in 4..=64"));
        }
        let threads = self.threads();
        if (bm * bk) % threads != 0 || (bk * bn) % threads != 0 {
            return Some(format!(
                "{threads} threads do not divide the {bm}x{bk} and {bk}x{bn} tiles"
            ));
        }
        if threads > limits.max_compute_invocations_per_workgroup
            || bn / tn > limits.max_compute_workgroup_size_x
            || bm / tm > limits.max_compute_workgroup_size_y
        {
            return Some(format!(
                "{threads} threads ({}x{}) exceed the adapter's workgroup limits",
                bn / tn,
                bm / tm
            ));
        }
        if self.workgroup_bytes() > limits.max_compute_workgroup_storage_size {
            return Some(format!(
                "{} bytes of workgroup memory exceed the adapter's {}",
                self.workgroup_bytes(),
                limits.max_compute_workgroup_storage_size
            ));
        }
        None
    }
}

/// Blocks of the coop kernel per workgroup (shaders/coop.wgsl `BLK_ROWS` × `BLK_COLS`), each a
/// 2T × 2T block of C computed by one subgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoopBlocks {
    pub blk_rows: u32,
    pub blk_cols: u32,
}

impl CoopBlocks {
    pub fn slots(&self) -> u32 {
        self.blk_rows * self.blk_cols
    }

    /// Why these blocks cannot run with subgroups of `subgroup` invocations, or `None`.
    pub fn illegal(&self, subgroup: u32, limits: &wgpu::Limits) -> Option<String> {
        if !(1..=4).contains(&self.blk_rows) || !(1..=4).contains(&self.blk_cols) {
            return Some(format!(
                "blk_rows={}, blk_cols={}: each must be in 1..=4",
                self.blk_rows, self.blk_cols
            ));
        }
        let wg = self.slots() * subgroup.max(1);
        if wg > limits.max_compute_invocations_per_workgroup
            || wg > limits.max_compute_workgroup_size_x
        {
            return Some(format!(
                "{wg} invocations exceed the adapter's workgroup limits"
            ));
        }
        None
    }
}

/// How the coop GEMM gets its operand tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Staging {
    /// `coop`: every subgroup loads its tiles straight from storage (no workgroup memory).
    Direct,
    /// `coop_staged` as naga writes it: A/B K-slices staged in workgroup memory, double-buffered;
    /// its barriers lack MakeAvailable/MakeVisible, so it runs only where the staged self-check
    /// passes.
    Workgroup,
    /// `coop_staged` from naga's SPIR-V with the barriers' semantics patched, as a passthrough
    /// module (Vulkan with `PASSTHROUGH_SHADERS`); also behind the staged self-check.
    WorkgroupPatched,
}

impl Staging {
    pub const ALL: [Staging; 3] = [
        Staging::Direct,
        Staging::Workgroup,
        Staging::WorkgroupPatched,
    ];

    /// The number recorded in params (`staging`: 0, 1, 2).
    pub fn code(self) -> u32 {
        match self {
            Staging::Direct => 0,
            Staging::Workgroup => 1,
            Staging::WorkgroupPatched => 2,
        }
    }

    pub fn from_code(c: u32) -> Option<Staging> {
        Staging::ALL.into_iter().find(|s| s.code() == c)
    }

    pub fn name(self) -> &'static str {
        match self {
            Staging::Direct => "direct",
            Staging::Workgroup => "staged",
            Staging::WorkgroupPatched => "staged+patched-spirv",
        }
    }
}

/// The tunable part of a GPU matmul kernel. Besides the tiles: `checks`, whether the module keeps
/// wgpu's runtime bounds checks (`false`: a trusted module, every access proven in range by the
/// host code that sizes buffers and dispatch, and by the shader's own edge tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulConfig {
    Tiled {
        tiles: TiledConfig,
        checks: bool,
    },
    Coop {
        blocks: CoopBlocks,
        checks: bool,
        staging: Staging,
    },
}

impl MatmulConfig {
    /// The configuration as run-file params (numbers; `checks` as 0/1).
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: u32| {
            m.insert(k.into(), v.into());
        };
        match *self {
            MatmulConfig::Tiled { tiles, checks } => {
                put("bm", tiles.bm);
                put("bn", tiles.bn);
                put("bk", tiles.bk);
                put("tm", tiles.tm);
                put("tn", tiles.tn);
                put("double_buf", tiles.double_buf as u32);
                put("runtime_checks", checks as u32);
            }
            MatmulConfig::Coop {
                blocks,
                checks,
                staging,
            } => {
                put("blk_rows", blocks.blk_rows);
                put("blk_cols", blocks.blk_cols);
                put("runtime_checks", checks as u32);
                put("staging", staging.code());
            }
        }
        m
    }

    /// Read back what [`params`](Self::params) wrote, for a kernel of the same kind as `like`.
    pub fn from_params(
        like: &MatmulConfig,
        p: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<MatmulConfig, String> {
        let get = |k: &str| param_u32(p, k);
        let checks = match get("runtime_checks")? {
            0 => false,
            1 => true,
            v => return Err(format!("`runtime_checks` is {v}, not 0 or 1")),
        };
        Ok(match like {
            MatmulConfig::Tiled { .. } => MatmulConfig::Tiled {
                tiles: TiledConfig {
                    bm: get("bm")?,
                    bn: get("bn")?,
                    bk: get("bk")?,
                    tm: get("tm")?,
                    tn: get("tn")?,
                    double_buf: match get("double_buf")? {
                        0 => false,
                        1 => true,
                        v => return Err(format!("`double_buf` is {v}, not 0 or 1")),
                    },
                },
                checks,
            },
            MatmulConfig::Coop { .. } => MatmulConfig::Coop {
                blocks: CoopBlocks {
                    blk_rows: get("blk_rows")?,
                    blk_cols: get("blk_cols")?,
                },
                checks,
                staging: {
                    let c = get("staging")?;
                    Staging::from_code(c)
                        .ok_or_else(|| format!("`staging` is {c}, not 0, 1 or 2"))?
                },
            },
        })
    }

    pub fn checks(&self) -> bool {
        match *self {
            MatmulConfig::Tiled { checks, .. } | MatmulConfig::Coop { checks, .. } => checks,
        }
    }

    /// Short text for progress lines: `tiled 64x64x16/8x8`.
    pub fn label(&self) -> String {
        let chk = if self.checks() { "" } else { " unchecked" };
        match self {
            MatmulConfig::Tiled { tiles: t, .. } => {
                let db = if t.double_buf { " double-buffered" } else { "" };
                format!("{}x{}x{}/{}x{}{db}{chk}", t.bm, t.bn, t.bk, t.tm, t.tn)
            }
            MatmulConfig::Coop {
                blocks: b, staging, ..
            } => {
                format!(
                    "{}x{} blocks {}{chk}",
                    b.blk_rows,
                    b.blk_cols,
                    staging.name()
                )
            }
        }
    }
}

/// Parameter `k` of a cache entry's params as a u32.
pub(crate) fn param_u32(
    p: &serde_json::Map<String, serde_json::Value>,
    k: &str,
) -> Result<u32, String> {
    p.get(k)
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("`{k}` missing or not a non-negative integer"))
}

/// `tiled` on a software adapter (lavapipe): 64×64×16 with 8×8 per thread, single-buffered, 1.3–1.4 GFLOP/s at
/// 512³ for every dtype with about 3 s of JIT per pipeline; 128×128 tiles were 2× faster there
/// but cost 8–11 s of JIT each (../shared/notes/WGPU30.md §3).
pub const TILED_SOFTWARE: TiledConfig = TiledConfig {
    bm: 64,
    bn: 64,
    bk: 16,
    tm: 8,
    tn: 8,
    double_buf: false,
};

/// `tiled` on a hardware GPU without a tuned entry: 128×128 blocks, 8×8 per thread (256
/// threads), 16-deep double-buffered tiles (32 KiB of workgroup memory) — the usual
/// register-blocked SIMT starting point for discrete GPUs; `perfledger tune` measures the
/// alternatives.
pub const TILED_HARDWARE: TiledConfig = TiledConfig {
    bm: 128,
    bn: 128,
    bk: 16,
    tm: 8,
    tn: 8,
    double_buf: true,
};

/// Coop blocks without a tuned entry: 2 × 2 subgroups, each a 2T × 2T block (64 × 64 of C per
/// workgroup at T = 16).
pub const COOP_DEFAULT: CoopBlocks = CoopBlocks {
    blk_rows: 2,
    blk_cols: 2,
};

/// The tiles `tune` tries for `tiled` (before the adapter's limits filter them), the defaults
/// first, then the largest blocks and register tiles first. Each is a pipeline to compile,
/// seconds each on lavapipe. The order matters: the time cap usually ends a job long before its
/// space does (on the H200, 2026-12-04, 8-9 of about 120 per job), and the large tiles are the
/// hardware's candidates, the small ones lavapipe's (whose default comes first anyway).
pub fn tiled_space() -> Vec<TiledConfig> {
    let mut v = vec![TILED_SOFTWARE, TILED_HARDWARE];
    let mut rest = Vec::new();
    for (bm, bn) in [(32, 32), (64, 64), (64, 128), (128, 64), (128, 128)] {
        for (tm, tn) in [(4, 4), (8, 4), (4, 8), (8, 8)] {
            for bk in [8, 16, 32] {
                for double_buf in [false, true] {
                    let c = TiledConfig {
                        bm,
                        bn,
                        bk,
                        tm,
                        tn,
                        double_buf,
                    };
                    if !v.contains(&c) {
                        rest.push(c);
                    }
                }
            }
        }
    }
    // Larger blocks, then larger register tiles, double-buffered and deeper K first.
    rest.sort_by_key(|c| std::cmp::Reverse((c.bm * c.bn, c.tm * c.tn, c.double_buf, c.bk, c.bn)));
    v.extend(rest);
    v
}

/// The coop blocks `tune` tries: the default first, then more subgroups per workgroup first
/// (each block is tried with every staging mode before the next block; see
/// `GpuMatmul::config_space`).
pub fn coop_space() -> Vec<CoopBlocks> {
    let mut rest = Vec::new();
    for blk_rows in [1, 2, 4] {
        for blk_cols in [1, 2, 4] {
            let c = CoopBlocks { blk_rows, blk_cols };
            if c != COOP_DEFAULT {
                rest.push(c);
            }
        }
    }
    rest.sort_by_key(|c| std::cmp::Reverse((c.blk_rows * c.blk_cols, c.blk_cols)));
    let mut v = vec![COOP_DEFAULT];
    v.extend(rest);
    v
}

/// Every tile and block configuration of the space that is legal under the WGSL and wgpu
/// defaults' most generous adapter (for CPU-side naga validation of every configuration).
pub fn validation_limits() -> wgpu::Limits {
    wgpu::Limits {
        max_compute_invocations_per_workgroup: 1024,
        max_compute_workgroup_size_x: 1024,
        max_compute_workgroup_size_y: 1024,
        max_compute_workgroup_storage_size: 49152,
        ..wgpu::Limits::default()
    }
}

/// The size class of a matmul for the cache: by its FLOPs, `small` up to 2·512³, `medium` up to
/// 2·2048³, `large` above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeClass {
    Small,
    Medium,
    Large,
}

impl ShapeClass {
    pub const ALL: [ShapeClass; 3] = [ShapeClass::Small, ShapeClass::Medium, ShapeClass::Large];

    pub fn of(p: &MatmulProblem) -> ShapeClass {
        let flops = 2.0 * p.batch as f64 * p.m as f64 * p.n as f64 * p.k as f64;
        if flops <= 2.0 * 512f64.powi(3) {
            ShapeClass::Small
        } else if flops <= 2.0 * 2048f64.powi(3) {
            ShapeClass::Medium
        } else {
            ShapeClass::Large
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ShapeClass::Small => "small",
            ShapeClass::Medium => "medium",
            ShapeClass::Large => "large",
        }
    }

    /// The square edge `tune` times this class at: 512 / 2048 / 4096 on a hardware GPU; on a
    /// software adapter (a few GFLOP/s) only `small`, at 256 (`None`: not tuned there). At 128³
    /// lavapipe's choice for bf16 lost to the default at 512³ (2.5 vs 3.2 GFLOP/s): too small a
    /// shape to stand for its class.
    pub fn tune_edge(self, software: bool) -> Option<usize> {
        match (self, software) {
            (ShapeClass::Small, false) => Some(512),
            (ShapeClass::Medium, false) => Some(2048),
            (ShapeClass::Large, false) => Some(4096),
            (ShapeClass::Small, true) => Some(256),
            (ShapeClass::Medium | ShapeClass::Large, true) => None,
        }
    }
}

/// What identifies an adapter and driver in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterKey {
    /// The adapter's name (for people; not part of the match).
    pub name: String,
    /// PCI vendor id (0x10de NVIDIA, 0x1002 AMD, 0x8086 Intel; 0x10005 Mesa's software).
    pub vendor_id: u32,
    pub device_id: u32,
    /// The backend (`vulkan`, `metal`, `dx12`).
    pub backend: String,
    /// Driver name and version as wgpu reports them (`driver`, `driver_info`).
    pub driver: String,
    pub driver_version: String,
}

impl AdapterKey {
    pub fn of(r: &AdapterReport) -> AdapterKey {
        AdapterKey {
            name: r.name.clone(),
            vendor_id: r.vendor_id,
            device_id: r.device_id,
            backend: r.backend.to_lowercase(),
            driver: r.driver.clone(),
            driver_version: r.driver_info.clone(),
        }
    }

    /// Same device (vendor, device id, backend), whatever the driver.
    pub fn same_device(&self, o: &AdapterKey) -> bool {
        self.vendor_id == o.vendor_id && self.device_id == o.device_id && self.backend == o.backend
    }

    /// Same device and driver version.
    pub fn matches(&self, o: &AdapterKey) -> bool {
        self.same_device(o) && self.driver == o.driver && self.driver_version == o.driver_version
    }
}

/// One tuned configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneEntry {
    pub adapter: AdapterKey,
    /// Kernel id (`matmul.gpu.tiled.wgsl.f16-f32-f16`).
    pub kernel: String,
    pub shape_class: ShapeClass,
    /// The shape it was timed at (`[m, n, k]`, B as `[k, n]`).
    pub timed_shape: [usize; 3],
    /// The configuration (numbers, as in a run row's `kernel.params`).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Its speed at `timed_shape`, median of the timed calls.
    pub gflops: f64,
    /// The default configuration's speed in the same sitting, if it verified.
    pub default_gflops: Option<f64>,
    /// Configurations timed and verified / tried for this (kernel, class).
    pub verified: usize,
    pub tried: usize,
    /// When (RFC 3339).
    pub tuned_at: String,
}

/// A `perfledger.tune/1` file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneCache {
    pub schema: String,
    /// The perfledger version that last wrote it.
    pub perfledger: String,
    pub entries: Vec<TuneEntry>,
}

/// A bad tune cache: the file and what is wrong in it.
#[derive(Debug, thiserror::Error)]
pub enum TuneCacheError {
    // The file itself is read by the harness (harness/src/input.rs: regular files only, size
    // capped); this type covers its contents.
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

impl TuneCache {
    pub fn new() -> TuneCache {
        TuneCache {
            schema: TUNE_SCHEMA.into(),
            perfledger: String::new(),
            entries: Vec::new(),
        }
    }

    /// Parse a cache file's bytes; errors name the file and the field.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<TuneCache, TuneCacheError> {
        let invalid = |what: String| TuneCacheError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON ({e})")))?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(TUNE_SCHEMA) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "field `schema`: `{other}` is not `{TUNE_SCHEMA}` (written by another \
                     perfledger version: run `perfledger tune` again)"
                )))
            }
            None => return Err(invalid("field `schema`: missing or not a string".into())),
        }
        let cache: TuneCache = serde_json::from_value(value)
            .map_err(|e| invalid(format!("not a {TUNE_SCHEMA} file: {e}")))?;
        for (i, e) in cache.entries.iter().enumerate() {
            // At most 10⁹ GFLOP/s (an exaFLOP/s: no single adapter is within 1000× of it).
            if !(e.gflops.is_finite() && e.gflops > 0.0 && e.gflops <= 1e9) {
                return Err(invalid(format!(
                    "field `entries[{i}].gflops`: {} is not a positive number",
                    e.gflops
                )));
            }
            if let Some(j) = cache.entries[..i].iter().position(|o| {
                o.adapter.matches(&e.adapter)
                    && o.kernel == e.kernel
                    && o.shape_class == e.shape_class
            }) {
                return Err(invalid(format!(
                    "field `entries[{i}]`: a second entry for {} {} on {} {} {} (also entries[{j}])",
                    e.kernel,
                    e.shape_class.name(),
                    e.adapter.name,
                    e.adapter.driver,
                    e.adapter.driver_version
                )));
            }
            if e.verified == 0 || e.verified > e.tried {
                return Err(invalid(format!(
                    "field `entries[{i}].verified`: {} of {} tried (an entry is a verified \
                     configuration)",
                    e.verified, e.tried
                )));
            }
        }
        Ok(cache)
    }

    /// Add or replace the entry of (adapter with its driver, kernel, class).
    pub fn upsert(&mut self, e: TuneEntry) {
        self.entries.retain(|o| {
            !(o.adapter.matches(&e.adapter)
                && o.kernel == e.kernel
                && o.shape_class == e.shape_class)
        });
        self.entries.push(e);
        self.entries.sort_by(|a, b| {
            (
                a.adapter.vendor_id,
                a.adapter.device_id,
                &a.kernel,
                a.shape_class,
            )
                .cmp(&(
                    b.adapter.vendor_id,
                    b.adapter.device_id,
                    &b.kernel,
                    b.shape_class,
                ))
        });
    }
}

impl Default for TuneCache {
    fn default() -> Self {
        TuneCache::new()
    }
}

/// The cache `run` uses: its entries, where it came from and its SHA-256 (the run file records
/// both), and which entries were used or ignored.
pub struct InstalledCache {
    pub path: PathBuf,
    pub sha256: String,
    pub cache: TuneCache,
    uses: RwLock<BTreeMap<String, String>>,
}

impl InstalledCache {
    pub fn new(path: PathBuf, sha256: String, cache: TuneCache) -> InstalledCache {
        InstalledCache {
            path,
            sha256,
            cache,
            uses: RwLock::new(BTreeMap::new()),
        }
    }

    /// Notes of what the run did with the cache (`kernel class: used` / `ignored: ...`), one per
    /// (kernel, class) asked about.
    pub fn notes(&self) -> Vec<String> {
        self.uses
            .read()
            .map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect())
            .unwrap_or_default()
    }

    fn note(&self, key: String, what: String) {
        if let Ok(mut m) = self.uses.write() {
            m.entry(key).or_insert(what);
        }
    }
}

static INSTALLED: RwLock<Option<std::sync::Arc<InstalledCache>>> = RwLock::new(None);

/// Make `cache` the one kernels consult (`run --tune-cache`); `None` removes it.
pub fn install(cache: Option<InstalledCache>) {
    if let Ok(mut g) = INSTALLED.write() {
        *g = cache.map(std::sync::Arc::new);
    }
}

/// The installed cache, if any.
pub fn installed() -> Option<std::sync::Arc<InstalledCache>> {
    INSTALLED.read().ok().and_then(|g| g.clone())
}

/// The per-adapter default of a kernel kind (`like` gives the kind).
pub fn default_config(like: &MatmulConfig, ctx: &GpuContext) -> MatmulConfig {
    match like {
        MatmulConfig::Tiled { .. } => MatmulConfig::Tiled {
            tiles: if ctx.report.software {
                TILED_SOFTWARE
            } else {
                TILED_HARDWARE
            },
            checks: true,
        },
        MatmulConfig::Coop { .. } => MatmulConfig::Coop {
            blocks: COOP_DEFAULT,
            checks: true,
            staging: Staging::Direct,
        },
    }
}

/// Where a configuration came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// An entry of the installed cache.
    Tuned,
    /// The per-adapter default ([`default_config`]).
    Default,
    /// Set explicitly (by `tune` while it times the space).
    Explicit,
}

impl ConfigSource {
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::Tuned => "tuned",
            ConfigSource::Default => "default",
            ConfigSource::Explicit => "explicit",
        }
    }
}

/// The configuration of kernel `kernel_id` (of the kind of `like`) for problem `p` on `ctx`: the
/// installed cache's entry for this adapter, driver, kernel and shape class if there is one and
/// it is legal here, else the default. An entry for another driver version is ignored (and the
/// cache's notes say so).
pub fn choose(
    kernel_id: &str,
    like: &MatmulConfig,
    p: &MatmulProblem,
    ctx: &GpuContext,
) -> (MatmulConfig, ConfigSource) {
    choose_with(
        kernel_id,
        ShapeClass::of(p),
        ctx,
        default_config(like, ctx),
        |params| MatmulConfig::from_params(like, params),
        |c| illegal_here(c, ctx),
        MatmulConfig::label,
    )
}

/// The lookup behind [`choose`] and [`choose_decode`]: the entry for (this adapter and driver,
/// kernel, class), parsed and checked, else `fallback`; what happened goes into the installed
/// cache's notes.
fn choose_with<C: Copy>(
    kernel_id: &str,
    class: ShapeClass,
    ctx: &GpuContext,
    fallback: C,
    parse: impl Fn(&serde_json::Map<String, serde_json::Value>) -> Result<C, String>,
    illegal: impl Fn(&C) -> Option<String>,
    label: impl Fn(&C) -> String,
) -> (C, ConfigSource) {
    let Some(inst) = installed() else {
        return (fallback, ConfigSource::Default);
    };
    let here = AdapterKey::of(&ctx.report);
    let note_key = format!("{kernel_id} {}", class.name());
    let mut other_driver = None;
    for e in &inst.cache.entries {
        if e.kernel != kernel_id || e.shape_class != class || !e.adapter.same_device(&here) {
            continue;
        }
        if !e.adapter.matches(&here) {
            other_driver = Some(format!("{} {}", e.adapter.driver, e.adapter.driver_version));
            continue;
        }
        let why = match parse(&e.params) {
            Ok(c) => match illegal(&c) {
                None => {
                    inst.note(note_key, format!("tuned {}", label(&c)));
                    return (c, ConfigSource::Tuned);
                }
                Some(why) => why,
            },
            Err(why) => format!("params: {why}"),
        };
        inst.note(note_key, format!("entry ignored ({why}); default used"));
        return (fallback, ConfigSource::Default);
    }
    let what = match other_driver {
        Some(d) => format!(
            "the cache's entry is for driver {d}, this adapter runs {} {}: ignored, default used",
            here.driver, here.driver_version
        ),
        None => "no entry for this adapter; default used".to_string(),
    };
    inst.note(note_key, what);
    (fallback, ConfigSource::Default)
}

/// Configuration of the split-KV decode kernel (shaders/decode.wgsl, decode_vec.wgsl): keys per
/// split (`chunk`, the shader's CHUNK_MAX), the workgroup size of both passes, and whether pass 1
/// is the vector pass (`decode_split_vec`, where the adapter and head_dim allow it) or the
/// scalar one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeConfig {
    pub chunk: u32,
    pub wg: u32,
    pub vec: bool,
}

/// Decode without a tuned entry: 256-key splits, 64-invocation workgroups, the vector pass.
pub const DECODE_DEFAULT: DecodeConfig = DecodeConfig {
    chunk: 256,
    wg: 64,
    vec: true,
};

impl DecodeConfig {
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("chunk".into(), self.chunk.into());
        m.insert("wg".into(), self.wg.into());
        m.insert("vec".into(), u32::from(self.vec).into());
        m
    }

    /// From a cache entry's params; `vec` absent (entries written before the vector pass, which
    /// timed the scalar one) reads as the scalar pass, what was measured.
    pub fn from_params(p: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let get = |k: &str| param_u32(p, k);
        let vec = match p.get("vec") {
            None => false,
            Some(_) => match get("vec")? {
                0 => false,
                1 => true,
                v => return Err(format!("`vec` is {v}, not 0 or 1")),
            },
        };
        Ok(DecodeConfig {
            chunk: get("chunk")?,
            wg: get("wg")?,
            vec,
        })
    }

    pub fn label(&self) -> String {
        format!(
            "{}-key splits, {} invocations, {} pass 1",
            self.chunk,
            self.wg,
            if self.vec { "vector" } else { "scalar" }
        )
    }

    /// Why this configuration cannot run a group of `group` query heads of `head_dim` on an
    /// adapter with these limits, or `None`.
    pub fn illegal(&self, group: usize, head_dim: usize, limits: &wgpu::Limits) -> Option<String> {
        if !(16..=1024).contains(&self.chunk) || !(32..=256).contains(&self.wg) {
            return Some(format!(
                "chunk {} / wg {}: chunk must be in 16..=1024, wg in 32..=256",
                self.chunk, self.wg
            ));
        }
        if self.wg > limits.max_compute_invocations_per_workgroup
            || self.wg > limits.max_compute_workgroup_size_x
        {
            return Some(format!(
                "{} invocations exceed the adapter's limits",
                self.wg
            ));
        }
        // Scores, scaled queries and maxima (decode.wgsl), plus the vector pass's reduction of
        // at most WG · 8 floats (decode_vec.wgsl), counted together whichever pass runs.
        let bytes = (group as u64 * (self.chunk as u64 + head_dim as u64)
            + group as u64
            + self.wg as u64 * 8)
            * 4;
        if bytes > limits.max_compute_workgroup_storage_size as u64 {
            return Some(format!(
                "scores, queries and the reduction need {bytes} bytes of workgroup memory, above \
                 the adapter's max_compute_workgroup_storage_size ({})",
                limits.max_compute_workgroup_storage_size
            ));
        }
        None
    }
}

/// The decode configurations `tune` tries: the default, the default with the scalar pass 1,
/// then every split length and workgroup size with the vector pass, then with the scalar one.
pub fn decode_space() -> Vec<DecodeConfig> {
    // The defaults, then what won on an H200 at kv 8192 and 32768 (128-key splits, 128
    // invocations, scalar pass 1: results/gpu-h200.md) and its vector twin, so that a capped
    // tune session (3 configurations per job at 39 jobs in 90 s) reaches them.
    let mut v = vec![
        DECODE_DEFAULT,
        DecodeConfig {
            vec: false,
            ..DECODE_DEFAULT
        },
        DecodeConfig {
            chunk: 128,
            wg: 128,
            vec: false,
        },
        DecodeConfig {
            chunk: 128,
            wg: 128,
            vec: true,
        },
    ];
    for vec in [true, false] {
        for chunk in [64, 128, 256, 512, 1024] {
            for wg in [32, 64, 128, 256] {
                let c = DecodeConfig { chunk, wg, vec };
                if !v.contains(&c) {
                    v.push(c);
                }
            }
        }
    }
    v
}

/// The size class of a decode problem for the cache: by the K and V bytes it reads (the work
/// that bounds it), `small` up to 16 MiB, `medium` up to 64 MiB, `large` above.
pub fn decode_class(p: &crate::problem::AttentionProblem, elem_bytes: usize) -> ShapeClass {
    let bytes = 2.0 * p.kv_len_elems() as f64 * elem_bytes as f64;
    if bytes <= 16.0 * 1048576.0 {
        ShapeClass::Small
    } else if bytes <= 64.0 * 1048576.0 {
        ShapeClass::Medium
    } else {
        ShapeClass::Large
    }
}

/// The decode shape `tune` times for a class (batch 1, h32/8, head_dim 128): kv 2048 / 8192 /
/// 32768 (8, 34, 134 MB of bf16 K+V) on a hardware GPU; kv 2048 for `small` only on a software
/// adapter.
pub fn decode_tune_kv(class: ShapeClass, software: bool) -> Option<usize> {
    match (class, software) {
        (ShapeClass::Small, _) => Some(2048),
        (ShapeClass::Medium, false) => Some(8192),
        (ShapeClass::Large, false) => Some(32768),
        (_, true) => None,
    }
}

/// The decode configuration for `p` on `ctx` (as [`choose`] for matmul).
pub fn choose_decode(
    kernel_id: &str,
    p: &crate::problem::AttentionProblem,
    elem_bytes: usize,
    ctx: &GpuContext,
) -> (DecodeConfig, ConfigSource) {
    let group = p.q_heads / p.kv_heads.max(1);
    choose_with(
        kernel_id,
        decode_class(p, elem_bytes),
        ctx,
        DECODE_DEFAULT,
        DecodeConfig::from_params,
        |c| c.illegal(group, p.head_dim, &ctx.limits),
        DecodeConfig::label,
    )
}

/// The register-tiled flash configurations `tune` tries: the preference list (whose first legal
/// member is the default) then larger and other-shaped blocks.
pub fn flash_space() -> Vec<crate::gpu::attention::FlashConfig> {
    use crate::gpu::attention::{FlashConfig, TiledFlash, TILED_FLASH};
    // The row entry first: the hardware default, and on an H200 faster than every tiling
    // (results/gpu-h200.md, 2026-12-04 second run).
    let mut v = vec![FlashConfig::Rows];
    v.extend(TILED_FLASH.map(FlashConfig::Tiled));
    for (bq, bkv, nrow, ncol) in [
        (64, 32, 16, 8),
        (32, 64, 8, 8),
        (64, 64, 16, 8),
        (32, 32, 8, 4),
        (32, 16, 8, 4),
        (32, 32, 4, 8),
    ] {
        let c = FlashConfig::Tiled(TiledFlash {
            bq,
            bkv,
            nrow,
            ncol,
        });
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// The size class of a prefill attention problem for the cache, by its FLOPs (the CPU kernels'
/// convention): `small` up to 4 GFLOP (h32 d128 causal seq 512 is 2.2), `medium` up to 60
/// (seq 2048 is 34), `large` above (seq 4096 is 137).
pub fn flash_class(p: &crate::problem::AttentionProblem) -> ShapeClass {
    let flops = p
        .work(crate::problem::Precision::same(crate::DType::F32))
        .flops as f64;
    if flops <= 4e9 {
        ShapeClass::Small
    } else if flops <= 6e10 {
        ShapeClass::Medium
    } else {
        ShapeClass::Large
    }
}

/// The prefill shape `tune` times for a class (batch 1, h32/8, head_dim 128, causal): seq 512 /
/// 2048 / 4096 on a hardware GPU; seq 128 for `small` only on a software adapter.
pub fn flash_tune_seq(class: ShapeClass, software: bool) -> Option<usize> {
    match (class, software) {
        (ShapeClass::Small, true) => Some(128),
        (ShapeClass::Small, false) => Some(512),
        (ShapeClass::Medium, false) => Some(2048),
        (ShapeClass::Large, false) => Some(4096),
        (_, true) => None,
    }
}

/// The flash entry for `p` on `ctx` (as [`choose`] for matmul): the tune cache's, else
/// [`FlashConfig::default_for`](crate::gpu::attention::FlashConfig::default_for) the adapter;
/// `None` when neither entry fits here.
pub fn choose_flash(
    kernel_id: &str,
    p: &crate::problem::AttentionProblem,
    ctx: &GpuContext,
) -> Option<(crate::gpu::attention::FlashConfig, ConfigSource)> {
    use crate::gpu::attention::FlashConfig;
    let fallback = FlashConfig::default_for(p.head_dim, ctx.report.software, &ctx.limits)?;
    Some(choose_with(
        kernel_id,
        flash_class(p),
        ctx,
        fallback,
        FlashConfig::from_params,
        |c| c.illegal(p.head_dim, &ctx.limits),
        FlashConfig::label,
    ))
}

/// Why `c` cannot run on `ctx`, or `None`.
pub fn illegal_here(c: &MatmulConfig, ctx: &GpuContext) -> Option<String> {
    match c {
        MatmulConfig::Tiled { tiles, .. } => tiles.illegal(&ctx.limits),
        MatmulConfig::Coop {
            blocks, staging, ..
        } => {
            let sg = match ctx.report.subgroup_min_size {
                0 => 32,
                s => s,
            };
            if *staging != Staging::Direct
                && ctx.report.subgroup_min_size != ctx.report.subgroup_max_size
            {
                return Some(format!(
                    "staged coop needs one fixed subgroup size (this adapter: {}..{})",
                    ctx.report.subgroup_min_size, ctx.report.subgroup_max_size
                ));
            }
            blocks.illegal(sg, &ctx.limits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_configurations_of_a_job_cover_the_options_a_capped_job_must_reach() {
        use crate::gpu::matmul::{GpuMatmul, Variant};
        use crate::{DType, Precision};
        let lim = validation_limits();
        let p = Precision {
            input: DType::F16,
            accum: DType::F32,
            output: DType::F16,
        };
        // Coop: the default block under all three staging modes (checked and unchecked) first.
        let coop = GpuMatmul::new(Variant::Coop, p).config_space(&lim, 32);
        let first: Vec<_> = coop[..6]
            .iter()
            .map(|c| match c {
                MatmulConfig::Coop {
                    blocks, staging, ..
                } => (*blocks, *staging),
                MatmulConfig::Tiled { .. } => panic!("tiled configuration in coop's space"),
            })
            .collect();
        assert!(first.iter().all(|(b, _)| *b == COOP_DEFAULT), "{first:?}");
        for s in Staging::ALL {
            assert!(first.iter().any(|(_, x)| *x == s), "{s:?} not in {first:?}");
        }
        // Tiled: after the defaults, no block smaller than a later one.
        let tiles = tiled_space();
        let areas: Vec<u32> = tiles[2..].iter().map(|c| c.bm * c.bn).collect();
        assert!(areas.windows(2).all(|w| w[0] >= w[1]), "{areas:?}");
        assert_eq!(
            (tiles[2].bm, tiles[2].bn, tiles[2].tm, tiles[2].tn),
            (128, 128, 8, 8)
        );
    }

    #[test]
    fn space_has_defaults_first_and_legal_members() {
        let s = tiled_space();
        assert_eq!(s[0], TILED_SOFTWARE);
        assert_eq!(s[1], TILED_HARDWARE);
        let lim = validation_limits();
        assert!(TILED_SOFTWARE.illegal(&lim).is_none());
        assert!(TILED_HARDWARE.illegal(&lim).is_none());
        // The hardware default fits 32 KiB (lavapipe's and NVIDIA's limits allow it).
        assert_eq!(TILED_HARDWARE.workgroup_bytes(), 32768);
        let legal = s.iter().filter(|c| c.illegal(&lim).is_none()).count();
        assert!(legal >= 20, "only {legal} legal tiled configurations");
        // wgpu's default limits (256 invocations, 16 KiB) reject some of them, for the reason.
        let small = wgpu::Limits::default();
        let big = TiledConfig {
            bm: 128,
            bn: 128,
            bk: 32,
            tm: 8,
            tn: 8,
            double_buf: false,
        };
        assert!(big.illegal(&small).unwrap().contains("workgroup memory"));
        let many = TiledConfig {
            bm: 128,
            bn: 128,
            bk: 16,
            tm: 4,
            tn: 4,
            double_buf: false,
        };
        assert!(many.illegal(&small).unwrap().contains("threads"));
        assert_eq!(coop_space()[0], COOP_DEFAULT);
        assert!(CoopBlocks {
            blk_rows: 4,
            blk_cols: 4
        }
        .illegal(64, &small)
        .is_some());
    }

    #[test]
    fn params_round_trip() {
        for c in [
            MatmulConfig::Tiled {
                tiles: TILED_HARDWARE,
                checks: false,
            },
            MatmulConfig::Coop {
                blocks: CoopBlocks {
                    blk_rows: 4,
                    blk_cols: 1,
                },
                checks: true,
                staging: Staging::WorkgroupPatched,
            },
        ] {
            assert_eq!(MatmulConfig::from_params(&c, &c.params()).unwrap(), c);
        }
        let mut p = MatmulConfig::Tiled {
            tiles: TILED_SOFTWARE,
            checks: true,
        }
        .params();
        p.insert("bk".into(), "16".into());
        let like = MatmulConfig::Tiled {
            tiles: TILED_SOFTWARE,
            checks: true,
        };
        assert!(MatmulConfig::from_params(&like, &p)
            .unwrap_err()
            .contains("`bk`"));
    }

    #[test]
    fn shape_classes() {
        assert_eq!(
            ShapeClass::of(&MatmulProblem::new(512, 512, 512)),
            ShapeClass::Small
        );
        assert_eq!(
            ShapeClass::of(&MatmulProblem::new(1024, 1024, 1024)),
            ShapeClass::Medium
        );
        assert_eq!(
            ShapeClass::of(&MatmulProblem::new(4096, 4096, 4096)),
            ShapeClass::Large
        );
        for c in ShapeClass::ALL {
            if let Some(e) = c.tune_edge(false) {
                assert_eq!(ShapeClass::of(&MatmulProblem::new(e, e, e)), c);
            }
            if let Some(e) = c.tune_edge(true) {
                assert_eq!(ShapeClass::of(&MatmulProblem::new(e, e, e)), c);
            }
        }
    }

    #[test]
    fn decode_configurations() {
        let lim = validation_limits();
        assert_eq!(decode_space()[0], DECODE_DEFAULT);
        assert!(DECODE_DEFAULT.illegal(16, 256, &lim).is_none());
        let c = DecodeConfig {
            chunk: 1024,
            wg: 128,
            vec: true,
        };
        assert_eq!(DecodeConfig::from_params(&c.params()).unwrap(), c);
        // An entry from before the vector pass timed the scalar one.
        let mut old = c.params();
        old.remove("vec");
        assert!(!DecodeConfig::from_params(&old).unwrap().vec);
        old.insert("vec".into(), 2.into());
        assert!(DecodeConfig::from_params(&old).unwrap_err().contains("vec"));
        // 16 heads × (1024 + 256) floats: 80 KiB, above 48 KiB.
        assert!(c
            .illegal(16, 256, &lim)
            .unwrap()
            .contains("workgroup memory"));
        for class in ShapeClass::ALL {
            if let Some(kv) = decode_tune_kv(class, false) {
                let p = crate::problem::AttentionProblem::new(1, 32, 8, 1, kv, 128);
                assert_eq!(decode_class(&p, 2), class);
            }
        }
    }

    #[test]
    fn flash_configurations() {
        use crate::gpu::attention::{FlashConfig, TiledFlash, TILED_FLASH};
        let lim = validation_limits();
        let s = flash_space();
        assert_eq!(s[0], FlashConfig::Rows);
        assert_eq!(
            &s[1..=TILED_FLASH.len()],
            &TILED_FLASH.map(FlashConfig::Tiled)[..]
        );
        for c in &s {
            assert_eq!(FlashConfig::from_params(&c.params()).unwrap(), *c);
            if let FlashConfig::Tiled(c) = c {
                assert_eq!(TiledFlash::from_params(&c.params()).unwrap(), *c);
                assert!(
                    c.bq.is_multiple_of(c.nrow) && c.bkv.is_multiple_of(c.ncol) && c.bq <= c.wg()
                );
            }
        }
        assert!(s.iter().any(|c| c.illegal(128, &lim).is_none()));
        // A cache entry written before the row entry joined the space (no `tiled`) is a tiling.
        assert_eq!(
            FlashConfig::from_params(&TILED_FLASH[1].params()).unwrap(),
            FlashConfig::Tiled(TILED_FLASH[1])
        );
        let mut two = FlashConfig::Rows.params();
        two.insert("tiled".into(), 2.into());
        assert!(FlashConfig::from_params(&two)
            .unwrap_err()
            .contains("0 or 1"));
        // Defaults: the row entry on hardware, a tiling on software; each falls back to the other.
        assert_eq!(
            FlashConfig::default_for(128, false, &lim),
            Some(FlashConfig::Rows)
        );
        assert_eq!(
            FlashConfig::default_for(128, true, &lim),
            Some(FlashConfig::Tiled(TILED_FLASH[0]))
        );
        let tight = wgpu::Limits {
            max_compute_workgroup_storage_size: 8192,
            ..lim.clone()
        };
        // 2 · 16 keys · 128 · 4 bytes = 16 KiB: the row entry does not fit, a small tiling does.
        assert!(matches!(
            FlashConfig::default_for(128, false, &tight),
            Some(FlashConfig::Tiled(_)) | None
        ));
        assert_ne!(
            FlashConfig::default_for(128, false, &tight),
            Some(FlashConfig::Rows)
        );
        let mut bad = TILED_FLASH[0].params();
        bad.insert("nrow".into(), 3.into());
        assert!(TiledFlash::from_params(&bad)
            .unwrap_err()
            .contains("multiple"));
        for class in ShapeClass::ALL {
            for software in [false, true] {
                if let Some(seq) = flash_tune_seq(class, software) {
                    let p =
                        crate::problem::AttentionProblem::new(1, 32, 8, seq, seq, 128).causal(true);
                    assert_eq!(flash_class(&p), class, "seq {seq}");
                }
            }
        }
    }

    #[test]
    fn bad_cache_files_name_the_field() {
        let p = Path::new("t.json");
        let e = TuneCache::from_slice(b"{", p).unwrap_err().to_string();
        assert!(e.starts_with("t.json: not JSON"), "{e}");
        let e = TuneCache::from_slice(br#"{"schema":"perfledger.tune/9"}"#, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `schema`"), "{e}");
        let e = TuneCache::from_slice(
            br#"{"schema":"perfledger.tune/1","perfledger":"x","entries":[{"adapter":{}}]}"#,
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("entries[0]") || e.contains("missing field"),
            "{e}"
        );
    }
}
