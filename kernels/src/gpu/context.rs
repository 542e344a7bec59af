//! All wgpu setup in one place: instance, adapter enumeration and selection, the device (features
//! and limits), error scopes, device loss, buffers and read-back.
//!
//! Setup is lazy: nothing here runs until a command asks for a GPU ([`adapters`], [`global`]), so
//! `report`, `compare` and CPU-only runs never load a Vulkan driver.
//!
//! Selection (see `../shared/notes/WGPU30.md` for the measured facts): the primary native
//! backends only (Vulkan, Metal, DX12; not GL, whose llvmpipe adapter lacks f16). Hardware adapters
//! first (discrete, integrated, virtual, other); software adapters (llvmpipe/lavapipe,
//! SwiftShader, WARP) only when allowed, and then labelled `software`. `--gpu INDEX|NAME` picks one.

use crate::gpu::pipelines::PipelineCache;
use crate::gpu::GpuError;
use crate::kernel::KernelError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

/// How the GPU is chosen (set once per process by [`configure`], or passed to
/// [`GpuContext::create`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuOptions {
    /// Allow software adapters (llvmpipe/lavapipe, SwiftShader, WARP).
    pub allow_software: bool,
    /// A specific adapter (default: the best hardware adapter).
    pub select: Option<GpuSelect>,
}

/// `--gpu INDEX|NAME`: an index into the enumeration, or a case-insensitive substring of the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuSelect {
    Index(usize),
    Name(String),
}

impl FromStr for GpuSelect {
    type Err = GpuError;
    fn from_str(s: &str) -> Result<Self, GpuError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(GpuError::Options(
                "empty GPU selector (expected an adapter index or a name)".into(),
            ));
        }
        Ok(match s.parse::<usize>() {
            Ok(i) => GpuSelect::Index(i),
            Err(_) => GpuSelect::Name(s.to_string()),
        })
    }
}

/// One cooperative-matrix configuration the adapter reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoopConfig {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// Element type of A and B (`f16`, `f32`, `i32`, `u32`).
    pub ab: String,
    /// Element type of C and the result.
    pub cr: String,
    pub saturating: bool,
}

/// An adapter as enumerated: identity, software flag, features, limits, coop configurations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdapterReport {
    pub index: usize,
    pub name: String,
    pub vendor_id: u32,
    pub device_id: u32,
    /// `discrete`, `integrated`, `virtual`, `cpu`, `other`.
    pub device_type: String,
    pub software: bool,
    pub backend: String,
    pub driver: String,
    pub driver_info: String,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, serde_json::Value>,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    pub coop: Vec<CoopConfig>,
}

fn scalar_name(t: wgpu::CooperativeScalarType) -> String {
    match t {
        wgpu::CooperativeScalarType::F32 => "f32".into(),
        wgpu::CooperativeScalarType::F16 => "f16".into(),
        wgpu::CooperativeScalarType::I32 => "i32".into(),
        wgpu::CooperativeScalarType::U32 => "u32".into(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The last-level cache of a GPU in bytes, for sizing the input sets memory-bound GPU rows
/// rotate, and where the figure comes from. wgpu reports no cache sizes, so: the vendors'
/// published L2 (or Infinity Cache) of the GPUs named here; a software adapter's is the host
/// CPU's L3 (it runs on the CPU); anything else gets 128 MiB, above every GPU in the table but
/// one, so an unknown GPU's rows rotate more rather than less.
pub fn last_level_cache_bytes(r: &AdapterReport) -> (u64, &'static str) {
    const MB: u64 = 1 << 20;
    if r.software {
        return (
            crate::cpu::cache::detected().l3 as u64,
            "software adapter: the host CPU's L3",
        );
    }
    let n = r.name.to_lowercase();
    // (name part, bytes, source): NVIDIA architecture whitepapers; AMD CDNA 3 whitepaper.
    let table: [(&str, u64, &'static str); 7] = [
        ("h100", 50 * MB, "NVIDIA H100: 50 MB L2 (Hopper whitepaper)"),
        (
            "h200",
            50 * MB,
            "NVIDIA H200: 50 MB L2 (Hopper; same die as H100)",
        ),
        ("a100", 40 * MB, "NVIDIA A100: 40 MB L2 (Ampere whitepaper)"),
        ("l40s", 96 * MB, "NVIDIA L40S: 96 MB L2 (Ada whitepaper)"),
        ("l4", 48 * MB, "NVIDIA L4: 48 MB L2 (Ada whitepaper)"),
        (
            "4090",
            72 * MB,
            "NVIDIA RTX 4090: 72 MB L2 (Ada whitepaper)",
        ),
        (
            "mi300",
            256 * MB,
            "AMD MI300: 256 MB Infinity Cache (CDNA 3 whitepaper)",
        ),
    ];
    for (part, bytes, src) in table {
        if n.contains(part) {
            return (bytes, src);
        }
    }
    (128 * MB, "unknown GPU: 128 MiB assumed")
}

/// Whether an adapter is a software rasterizer: CPU device type, or a known software name.
pub fn is_software(device_type: wgpu::DeviceType, name: &str) -> bool {
    let n = name.to_lowercase();
    device_type == wgpu::DeviceType::Cpu
        || [
            "llvmpipe",
            "lavapipe",
            "swiftshader",
            "microsoft basic render",
            "warp",
        ]
        .iter()
        .any(|s| n.contains(s))
}

fn limits_map(l: &wgpu::Limits) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: u64| {
        m.insert(k.to_string(), serde_json::Value::from(v));
    };
    put("max_buffer_size", l.max_buffer_size);
    put(
        "max_storage_buffer_binding_size",
        l.max_storage_buffer_binding_size,
    );
    put(
        "max_compute_workgroup_storage_size",
        l.max_compute_workgroup_storage_size as u64,
    );
    put(
        "max_compute_invocations_per_workgroup",
        l.max_compute_invocations_per_workgroup as u64,
    );
    put(
        "max_compute_workgroups_per_dimension",
        l.max_compute_workgroups_per_dimension as u64,
    );
    put(
        "max_storage_buffers_per_shader_stage",
        l.max_storage_buffers_per_shader_stage as u64,
    );
    m
}

fn report(index: usize, adapter: &wgpu::Adapter) -> AdapterReport {
    let info = adapter.get_info();
    let features = adapter.features();
    let coop = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        adapter
            .cooperative_matrix_properties()
            .into_iter()
            .map(|p| CoopConfig {
                m: p.m_size,
                n: p.n_size,
                k: p.k_size,
                ab: scalar_name(p.ab_type),
                cr: scalar_name(p.cr_type),
                saturating: p.saturating_accumulation,
            })
            .collect()
    } else {
        Vec::new()
    };
    AdapterReport {
        index,
        software: is_software(info.device_type, &info.name),
        name: info.name.clone(),
        vendor_id: info.vendor,
        device_id: info.device,
        device_type: match info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        }
        .into(),
        backend: info.backend.to_string(),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        features: features.iter_names().map(|(n, _)| n.to_string()).collect(),
        limits: limits_map(&adapter.limits()),
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        coop,
    }
}

struct Enumeration {
    adapters: Vec<(wgpu::Adapter, AdapterReport)>,
}

/// Mesa's Vulkan device-select layer (an implicit layer of `mesa-vulkan-drivers`) only reorders
/// devices to put the one driving a display first, and to find that display it connects to
/// Wayland and X11: without `XDG_RUNTIME_DIR` that prints `error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment.` twice on every headless machine. perfledger chooses its adapter
/// itself, so the layer is turned off (its documented switch, `NODEVICE_SELECT=1`) unless the
/// user set that variable. Call before other threads read the environment (`main` does, first
/// thing); the GPU setup calls it again, which then changes nothing.
pub fn quiet_device_select_layer() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// The process's instance and adapters, enumerated once (the first call loads the drivers).
fn enumeration() -> &'static Enumeration {
    static E: OnceLock<Enumeration> = OnceLock::new();
    E.get_or_init(|| {
        quiet_device_select_layer();
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        // WGPU_BACKEND etc. may override (e.g. WGPU_BACKEND=vulkan).
        let instance = wgpu::Instance::new(desc.with_env());
        let list = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        let adapters = list
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let r = report(i, &a);
                (a, r)
            })
            .collect();
        Enumeration { adapters }
    })
}

/// Every adapter of the primary backends, in enumeration order (the order `--gpu INDEX` uses).
pub fn adapters() -> Vec<AdapterReport> {
    enumeration()
        .adapters
        .iter()
        .map(|(_, r)| r.clone())
        .collect()
}

/// GPU device nodes present on this machine (`/dev/nvidia0`, `/dev/dri/renderD128`, ...).
pub fn gpu_device_nodes() -> Vec<String> {
    let mut nodes = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/dev") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with("nvidia") && n != "nvidia-caps" {
                nodes.push(format!("/dev/{n}"));
            }
        }
    }
    if std::path::Path::new("/dev/dri").exists() {
        nodes.push("/dev/dri".into());
    }
    nodes.sort();
    nodes
}

/// The loud warning for a machine whose GPU wgpu cannot see: device nodes exist, but no hardware
/// adapter was enumerated (a missing Vulkan loader or ICD, typically). `None` when all is well or
/// when the machine has no GPU device nodes.
pub fn hardware_warning(nodes: &[String], reports: &[AdapterReport]) -> Option<String> {
    if nodes.is_empty() || reports.iter().any(|r| !r.software) {
        return None;
    }
    let found = if reports.is_empty() {
        "no adapter at all".to_string()
    } else {
        let names: Vec<String> = reports
            .iter()
            .map(|r| format!("{} (software)", r.name))
            .collect();
        format!("only {}", names.join(", "))
    };
    let loader = [
        "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
        "/usr/lib64/libvulkan.so.1",
        "/usr/lib/libvulkan.so.1",
    ]
    .iter()
    .map(|p| p.to_string())
    .chain(
        std::env::var("LD_LIBRARY_PATH")
            .unwrap_or_default()
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/libvulkan.so.1")),
    )
    .any(|p| std::path::Path::new(&p).exists());
    let hint = if loader {
        "the Vulkan loader is installed, so the vendor's ICD is missing or could not create an \
         instance (e.g. /usr/share/vulkan/icd.d/nvidia_icd.json from the NVIDIA driver; headless \
         NVIDIA containers may need an ICD JSON naming libEGL_nvidia.so.0 instead of \
         libGLX_nvidia.so.0, as scripts/gpu-check.sh writes; VK_LOADER_DEBUG=error shows why)"
    } else {
        "the Vulkan loader (libvulkan.so.1, Debian/Ubuntu package libvulkan1) is missing, \
         and perhaps the vendor's ICD too"
    };
    Some(format!(
        "WARNING: GPU device nodes exist ({}) but wgpu found {found}: {hint}. \
         GPU rows will be `unsupported` until this is fixed.",
        nodes.join(", ")
    ))
}

/// Pick an adapter per the options; returns its enumeration index.
pub fn select(reports: &[AdapterReport], opts: &GpuOptions) -> Result<usize, GpuError> {
    let listing = || {
        if reports.is_empty() {
            "none".to_string()
        } else {
            reports
                .iter()
                .map(|r| {
                    format!(
                        "{}: {}{}",
                        r.index,
                        r.name,
                        if r.software { " (software)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let allowed = |r: &AdapterReport| -> Result<usize, GpuError> {
        if r.software && !opts.allow_software {
            Err(GpuError::NoDevice(format!(
                "GPU adapter {} ({}) is a software adapter; pass --allow-software-gpu to use it",
                r.index, r.name
            )))
        } else {
            Ok(r.index)
        }
    };
    match &opts.select {
        Some(GpuSelect::Index(i)) => match reports.get(*i) {
            Some(r) => allowed(r),
            None => Err(GpuError::Options(format!(
                "no GPU adapter {i} (adapters: {})",
                listing()
            ))),
        },
        Some(GpuSelect::Name(n)) => {
            let needle = n.to_lowercase();
            match reports
                .iter()
                .find(|r| r.name.to_lowercase().contains(&needle))
            {
                Some(r) => allowed(r),
                None => Err(GpuError::Options(format!(
                    "no GPU adapter named like `{n}` (adapters: {})",
                    listing()
                ))),
            }
        }
        None => {
            let rank = |t: &str| match t {
                "discrete" => 0,
                "integrated" => 1,
                "virtual" => 2,
                "other" => 3,
                _ => 4,
            };
            let best_hw = reports
                .iter()
                .filter(|r| !r.software)
                .min_by_key(|r| (rank(&r.device_type), r.index));
            if let Some(r) = best_hw {
                return Ok(r.index);
            }
            match reports.iter().find(|r| r.software) {
                Some(r) if opts.allow_software => Ok(r.index),
                Some(r) => Err(GpuError::NoDevice(format!(
                    "no hardware GPU adapter; only the software adapter {} (pass --allow-software-gpu to use it)",
                    r.name
                ))),
                None => Err(GpuError::NoDevice(
                    "no GPU adapter (wgpu found none on Vulkan/Metal/DX12)".into(),
                )),
            }
        }
    }
}

/// The features perfledger asks for when the adapter has them.
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
        | wgpu::Features::SUBGROUP
        | wgpu::Features::SUBGROUP_BARRIER
        | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
        // SPIR-V built in-process and patched (kernels/src/gpu/spirv.rs): the staged coop GEMM
        // with barriers that carry MakeAvailable/MakeVisible.
        | wgpu::Features::PASSTHROUGH_SHADERS
}

/// An open device on the selected adapter, shared by every GPU kernel of the process.
pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    /// Set by the device-lost callback: every later operation fails with this message.
    lost: Arc<Mutex<Option<String>>>,
    pub pipelines: PipelineCache,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.report.name)
            .finish_non_exhaustive()
    }
}

fn gpu_err(msg: impl Into<String>) -> KernelError {
    KernelError::Other(msg.into())
}

impl GpuContext {
    /// Open a device on the adapter the options select (features and limits raised to the
    /// adapter's). Tests use this directly; the CLI goes through [`configure`] + [`global`].
    pub fn create(opts: &GpuOptions) -> Result<GpuContext, GpuError> {
        let e = enumeration();
        let reports: Vec<AdapterReport> = e.adapters.iter().map(|(_, r)| r.clone()).collect();
        let index = select(&reports, opts)?;
        let (adapter, report) = &e.adapters[index];
        let features = adapter.features() & wanted_features();
        let experimental = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: the only experimental feature requested is cooperative matrices, used only
            // by shaders built for a configuration the adapter reports.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("perfledger"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::NoDevice(format!("opening a device on {}: {e}", report.name)))?;
        let lost = Arc::new(Mutex::new(None));
        let l2 = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut g) = l2.lock() {
                *g = Some(format!("GPU device lost ({reason:?}): {msg}"));
            }
        });
        // Errors outside an error scope must not abort the process: log them (every kernel
        // operation runs inside a scope, so this only sees stray errors).
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("perfledger: uncaptured GPU error: {e}");
        }));
        Ok(GpuContext {
            adapter: adapter.clone(),
            device,
            queue,
            report: report.clone(),
            features,
            limits,
            lost,
            pipelines: PipelineCache::default(),
        })
    }

    pub fn has(&self, f: wgpu::Features) -> bool {
        self.features.contains(f)
    }

    /// Timestamp queries on pass boundaries (the portable form).
    pub fn has_timestamps(&self) -> bool {
        self.has(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Fails once the device was lost.
    pub fn alive(&self) -> Result<(), KernelError> {
        match self.lost.lock().ok().and_then(|g| g.clone()) {
            Some(msg) => Err(gpu_err(msg)),
            None => Ok(()),
        }
    }

    /// Run `f` inside validation, out-of-memory and internal error scopes: a GPU error becomes
    /// this call's error (naming `what`) instead of the process's.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, KernelError> {
        self.alive()?;
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
            pollster::block_on(internal.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(gpu_err(format!("{what}: GPU error: {e}")));
        }
        self.alive()?;
        Ok(out)
    }

    /// Wait for a submission (or everything, with `None`).
    pub fn wait(&self, idx: Option<wgpu::SubmissionIndex>) -> Result<(), KernelError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: idx,
                timeout: None,
            })
            .map_err(|e| match self.alive() {
                // A lost device explains the failed wait better than the wait's own error.
                Err(lost) => lost,
                Ok(()) => gpu_err(format!("waiting for the GPU: {e}")),
            })?;
        self.alive()
    }

    /// Check each `(name, elements, bytes)` buffer a kernel needs: its element count must fit the
    /// shaders' u32 indices and its size the device's limits ([`check_buffer`](Self::check_buffer)).
    pub fn check_buffers(&self, buffers: &[(&str, u64, u64)]) -> Result<(), String> {
        for &(what, elems, bytes) in buffers {
            if elems > u32::MAX as u64 {
                return Err(format!(
                    "{what} has {elems} elements; the shaders index with u32 (at most {})",
                    u32::MAX
                ));
            }
            self.check_buffer(what, bytes, true)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Refuse a buffer the device cannot hold or bind, naming the limit (before allocating).
    pub fn check_buffer(&self, what: &str, bytes: u64, binding: bool) -> Result<(), GpuError> {
        if bytes > self.limits.max_buffer_size {
            return Err(GpuError::Unsupported(format!(
                "{what} needs {bytes} bytes, above this GPU's max_buffer_size ({})",
                self.limits.max_buffer_size
            )));
        }
        if binding && bytes > self.limits.max_storage_buffer_binding_size {
            return Err(GpuError::Unsupported(format!(
                "{what} needs {bytes} bytes, above this GPU's max_storage_buffer_binding_size ({})",
                self.limits.max_storage_buffer_binding_size
            )));
        }
        Ok(())
    }

    /// Refuse a dispatch grid above `max_compute_workgroups_per_dimension`.
    pub fn check_grid(&self, grid: [u32; 3]) -> Result<(), GpuError> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        for (axis, g) in ["x", "y", "z"].iter().zip(grid) {
            if g > max {
                return Err(GpuError::Unsupported(format!(
                    "dispatch needs {g} workgroups along {axis}, above this GPU's \
                     max_compute_workgroups_per_dimension ({max})"
                )));
            }
        }
        Ok(())
    }

    /// A storage buffer holding `bytes` (padded to 4 bytes), readable and copyable.
    pub fn storage_init(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, KernelError> {
        let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
        self.check_buffer(label, size, true)
            .map_err(|e| gpu_err(e.to_string()))?;
        self.scoped(label, || {
            let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            });
            {
                let mut view = buf
                    .slice(..)
                    .get_mapped_range_mut()
                    .expect("mapped at creation");
                view.slice(..bytes.len()).copy_from_slice(bytes);
            }
            buf.unmap();
            buf
        })
    }

    /// A uniform buffer with `bytes`.
    pub fn uniform(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, KernelError> {
        self.scoped(label, || {
            let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (bytes.len() as u64).div_ceil(16) * 16,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: true,
            });
            {
                let mut view = buf
                    .slice(..)
                    .get_mapped_range_mut()
                    .expect("mapped at creation");
                view.slice(..bytes.len()).copy_from_slice(bytes);
            }
            buf.unmap();
            buf
        })
    }

    /// Overwrite a buffer's first bytes (queued; ordered before later submissions).
    pub fn write(&self, buf: &wgpu::Buffer, bytes: &[u8]) -> Result<(), KernelError> {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().div_ceil(4) * 4, 0);
        self.scoped("write buffer", || self.queue.write_buffer(buf, 0, &padded))
    }

    /// Copy a buffer's first `size` bytes back to the host.
    pub fn read(&self, buf: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, KernelError> {
        let padded = size.div_ceil(4) * 4;
        let staging = self.scoped("read-back buffer", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("read-back"),
                size: padded,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            enc.copy_buffer_to_buffer(buf, 0, &staging, 0, padded);
            let idx = self.queue.submit([enc.finish()]);
            (staging, idx)
        })?;
        let (staging, idx) = staging;
        self.wait(Some(idx))?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(None)?;
        rx.recv()
            .map_err(|_| gpu_err("read-back: the map callback never ran"))?
            .map_err(|e| gpu_err(format!("read-back: mapping failed: {e}")))?;
        let bytes = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| gpu_err(format!("read-back: {e}")))?;
            view[..size as usize].to_vec()
        };
        staging.unmap();
        Ok(bytes)
    }

    /// A bind group of `(binding, buffer)` pairs in the pipeline's group 0 (auto layout: an
    /// entry point binds only what it uses, so two entry points of one module may bind
    /// different subsets).
    pub fn bind_group_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> Result<wgpu::BindGroup, KernelError> {
        self.scoped("bind group", || {
            let layout = pipeline.get_bind_group_layout(0);
            let entries: Vec<wgpu::BindGroupEntry> = buffers
                .iter()
                .map(|&(binding, b)| wgpu::BindGroupEntry {
                    binding,
                    resource: b.as_entire_binding(),
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &entries,
            })
        })
    }

    /// A bind group of `buffers` at bindings 0.. of the pipeline's group 0 (auto layout).
    pub fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup, KernelError> {
        let at: Vec<(u32, &wgpu::Buffer)> = buffers
            .iter()
            .enumerate()
            .map(|(i, &b)| (i as u32, b))
            .collect();
        self.bind_group_at(pipeline, &at)
    }
}

static OPTIONS: Mutex<Option<GpuOptions>> = Mutex::new(None);
static GLOBAL: OnceLock<Result<Arc<GpuContext>, GpuError>> = OnceLock::new();

/// Set how the process's GPU is chosen. Must come before the first [`global`]; a later call with
/// different options is an error (the device is already open).
pub fn configure(opts: GpuOptions) -> Result<(), GpuError> {
    let mut g = OPTIONS
        .lock()
        .map_err(|_| GpuError::Options("GPU options lock poisoned".into()))?;
    if GLOBAL.get().is_some() && g.clone().unwrap_or_default() != opts {
        return Err(GpuError::Options(
            "the GPU device is already open with other options".into(),
        ));
    }
    *g = Some(opts);
    Ok(())
}

/// The options [`global`] uses (default: hardware only, the best adapter).
pub fn options() -> GpuOptions {
    OPTIONS
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default()
}

/// The process's GPU context, opened on first use with the [`configure`]d options. The error (no
/// adapter, software adapter not allowed, device creation failed) is kept and returned to every
/// caller, so each GPU kernel reports it as `unsupported`.
pub fn global() -> Result<Arc<GpuContext>, GpuError> {
    GLOBAL
        .get_or_init(|| GpuContext::create(&options()).map(Arc::new))
        .clone()
}

/// The global context if it has been opened (never opens it).
pub fn global_if_open() -> Option<Arc<GpuContext>> {
    GLOBAL.get().and_then(|r| r.as_ref().ok().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(index: usize, name: &str, ty: &str, software: bool) -> AdapterReport {
        AdapterReport {
            index,
            name: name.into(),
            vendor_id: 0,
            device_id: 0,
            device_type: ty.into(),
            software,
            backend: "vulkan".into(),
            driver: String::new(),
            driver_info: String::new(),
            features: vec![],
            limits: BTreeMap::new(),
            subgroup_min_size: 32,
            subgroup_max_size: 32,
            coop: vec![],
        }
    }

    #[test]
    fn selection_prefers_hardware_and_gates_software() {
        let sw = rep(0, "llvmpipe (LLVM 15.0.6, 256 bits)", "cpu", true);
        let igpu = rep(1, "Intel(R) UHD", "integrated", false);
        let dgpu = rep(2, "NVIDIA H100 80GB HBM3", "discrete", false);
        let all = vec![sw.clone(), igpu.clone(), dgpu.clone()];
        let d = GpuOptions::default();
        assert_eq!(select(&all, &d), Ok(2));
        assert_eq!(select(&[sw.clone(), igpu.clone()], &d), Ok(1));
        let only_sw = vec![sw.clone()];
        let e = select(&only_sw, &d).unwrap_err();
        assert!(matches!(e, GpuError::NoDevice(_)), "{e:?}");
        assert!(e.to_string().contains("--allow-software-gpu"));
        let allow = GpuOptions {
            allow_software: true,
            select: None,
        };
        assert_eq!(select(&only_sw, &allow), Ok(0));
        let e = select(&[], &allow).unwrap_err();
        assert!(matches!(e, GpuError::NoDevice(_)) && e.to_string().contains("no GPU adapter"));
        let by_name = GpuOptions {
            allow_software: false,
            select: Some("h100".parse().unwrap()),
        };
        assert_eq!(select(&all, &by_name), Ok(2));
        let by_index = GpuOptions {
            allow_software: false,
            select: Some("0".parse().unwrap()),
        };
        assert!(select(&all, &by_index)
            .unwrap_err()
            .to_string()
            .contains("software"));
        let missing = GpuOptions {
            allow_software: true,
            select: Some("7".parse().unwrap()),
        };
        let e = select(&all, &missing).unwrap_err();
        assert!(
            matches!(e, GpuError::Options(_)),
            "a bad --gpu is the user's: {e:?}"
        );
        assert!(e.to_string().contains("no GPU adapter 7"));
        assert!(matches!("".parse::<GpuSelect>(), Err(GpuError::Options(_))));
    }

    #[test]
    fn warning_only_when_nodes_exist_without_hardware_adapter() {
        let sw = rep(0, "llvmpipe", "cpu", true);
        let hw = rep(1, "NVIDIA H100", "discrete", false);
        let nodes = vec!["/dev/nvidia0".to_string()];
        assert!(hardware_warning(&[], std::slice::from_ref(&sw)).is_none());
        assert!(hardware_warning(&nodes, &[sw.clone(), hw]).is_none());
        let w = hardware_warning(&nodes, &[sw]).unwrap();
        assert!(w.contains("WARNING") && w.contains("/dev/nvidia0") && w.contains("llvmpipe"));
        assert!(hardware_warning(&nodes, &[])
            .unwrap()
            .contains("no adapter at all"));
    }

    #[test]
    fn software_names() {
        assert!(is_software(wgpu::DeviceType::Cpu, "whatever"));
        assert!(is_software(
            wgpu::DeviceType::Other,
            "SwiftShader Device (Subzero)"
        ));
        assert!(!is_software(wgpu::DeviceType::DiscreteGpu, "NVIDIA H100"));
    }
}
