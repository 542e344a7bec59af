//! WGSL sources (embedded from `shaders/`) and the generated prelude that specializes them: element
//! type helpers, tile constants and, for cooperative-matrix shaders, the `coop_mat` aliases.
//!
//! A specialization is plain data ([`Specialization`]); its [`key`](Specialization::key) is what the
//! pipeline cache is keyed by (together with the shader and entry point), and
//! [`all_specializations`] lists every one the registry can build, so a CPU-only test validates each
//! with naga.

use crate::dtype::DType;
use crate::gpu::GpuError;
use std::fmt::Write as _;

/// A shader family: one file under `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shader {
    Matmul,
    Attention,
    /// attention_tiled.wgsl: register-tiled flash attention.
    AttentionTiled,
    Decode,
    /// decode.wgsl + decode_vec.wgsl (the subgroup pass 1 of the decode).
    DecodeVec,
    Coop,
    /// flash_coop.wgsl: flash attention on cooperative matrices.
    FlashCoop,
    Convert,
    Probe,
    ProbeCoop,
}

pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");

impl Shader {
    pub const ALL: [Shader; 10] = [
        Shader::Matmul,
        Shader::Attention,
        Shader::AttentionTiled,
        Shader::Decode,
        Shader::DecodeVec,
        Shader::Coop,
        Shader::FlashCoop,
        Shader::Convert,
        Shader::Probe,
        Shader::ProbeCoop,
    ];

    pub fn file(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::Attention => "attention.wgsl",
            Shader::AttentionTiled => "attention_tiled.wgsl",
            Shader::Decode => "decode.wgsl",
            Shader::DecodeVec => "decode_vec.wgsl",
            Shader::Coop => "coop.wgsl",
            Shader::FlashCoop => "flash_coop.wgsl",
            Shader::Convert => "convert.wgsl",
            Shader::Probe => "probe.wgsl",
            Shader::ProbeCoop => "probe_coop.wgsl",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Shader::Matmul => include_str!("../../../shaders/matmul.wgsl"),
            Shader::Attention => include_str!("../../../shaders/attention.wgsl"),
            Shader::AttentionTiled => include_str!("../../../shaders/attention_tiled.wgsl"),
            Shader::Decode => include_str!("../../../shaders/decode.wgsl"),
            Shader::DecodeVec => concat!(
                include_str!("../../../shaders/decode.wgsl"),
                "\n",
                include_str!("../../../shaders/decode_vec.wgsl")
            ),
            Shader::Coop => include_str!("../../../shaders/coop.wgsl"),
            Shader::FlashCoop => include_str!("../../../shaders/flash_coop.wgsl"),
            Shader::Convert => include_str!("../../../shaders/convert.wgsl"),
            Shader::Probe => include_str!("../../../shaders/probe.wgsl"),
            Shader::ProbeCoop => include_str!("../../../shaders/probe_coop.wgsl"),
        }
    }

    /// Whether the shader needs cooperative matrices (and subgroups).
    pub fn needs_coop(self) -> bool {
        matches!(self, Shader::Coop | Shader::FlashCoop | Shader::ProbeCoop)
    }
}

/// The cooperative-matrix configuration a coop shader is built for: square tiles of edge `t`
/// (8 or 16), f16 A/B, accumulator `acc` (F32 or F16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoopShape {
    pub t: u32,
    pub acc: DType,
}

/// Everything that turns a shader file into one module: the element types of inputs and output,
/// array-sizing constants, the coop configuration, and the `override` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Specialization {
    pub shader: Shader,
    pub entry: &'static str,
    pub input: Option<DType>,
    pub output: Option<DType>,
    /// `const NAME: u32` lines of the prelude (tile sizes).
    pub consts: Vec<(&'static str, u32)>,
    /// `const NAME: bool` lines of the prelude (conventions, switches).
    pub flags: Vec<(&'static str, bool)>,
    pub coop: Option<CoopShape>,
    /// Pipeline-overridable constants (workgroup sizes).
    pub overrides: Vec<(&'static str, f64)>,
    /// wgpu's runtime checks (bounds checks, loop bounding) in the module; `false` builds a
    /// trusted module (`create_shader_module_trusted`), for shaders whose every access is in
    /// range by construction (the host sizes buffers and dispatch, the shader tests its edges).
    pub runtime_checks: bool,
    /// Build the module from SPIR-V that naga writes in-process, with every barrier's memory
    /// semantics given MakeAvailable/MakeVisible ([`crate::gpu::spirv`]), handed to the driver
    /// as a passthrough module (needs `Features::PASSTHROUGH_SHADERS`).
    pub patched_spirv: bool,
    /// The module uses subgroup operations (shuffles, reductions): needs `Features::SUBGROUP`.
    pub subgroups: bool,
}

impl Specialization {
    pub fn new(shader: Shader, entry: &'static str) -> Self {
        Specialization {
            shader,
            entry,
            input: None,
            output: None,
            consts: Vec::new(),
            flags: Vec::new(),
            coop: None,
            overrides: Vec::new(),
            runtime_checks: true,
            patched_spirv: false,
            subgroups: false,
        }
    }

    /// Mark the module as using subgroup operations.
    pub fn subgroups(mut self, on: bool) -> Self {
        self.subgroups = on;
        self
    }

    /// Whether the module needs `Features::SUBGROUP` (subgroup operations or cooperative
    /// matrices).
    pub fn needs_subgroup(&self) -> bool {
        self.subgroups || self.coop.is_some()
    }

    pub fn patched_spirv(mut self, on: bool) -> Self {
        self.patched_spirv = on;
        self
    }

    pub fn runtime_checks(mut self, on: bool) -> Self {
        self.runtime_checks = on;
        self
    }

    /// The value of prelude constant `name` (0 when absent).
    pub fn konst_value(&self, name: &str) -> u32 {
        self.consts
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    pub fn types(mut self, input: DType, output: DType) -> Self {
        self.input = Some(input);
        self.output = Some(output);
        self
    }

    pub fn konst(mut self, name: &'static str, v: u32) -> Self {
        self.consts.push((name, v));
        self
    }

    pub fn flag(mut self, name: &'static str, v: bool) -> Self {
        self.flags.push((name, v));
        self
    }

    pub fn coop(mut self, c: CoopShape) -> Self {
        self.coop = Some(c);
        self
    }

    pub fn override_(mut self, name: &'static str, v: u32) -> Self {
        self.overrides.push((name, v as f64));
        self
    }

    /// Every specialization value as run-file params (numbers): the `const`s and flags (0/1) of
    /// the prelude,
    /// the pipeline overrides, the cooperative-matrix tile.
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.consts {
            m.insert(k.to_lowercase(), (*v).into());
        }
        // Flags as 0/1: a row's configuration is numbers.
        for (k, v) in &self.flags {
            m.insert(k.to_lowercase(), (*v as u32).into());
        }
        for (k, v) in &self.overrides {
            m.insert(k.to_lowercase(), (*v).into());
        }
        if let Some(c) = self.coop {
            m.insert("coop_tile".into(), c.t.into());
            m.insert("coop_acc".into(), c.acc.name().into());
        }
        m.insert("runtime_checks".into(), (self.runtime_checks as u32).into());
        if self.patched_spirv {
            m.insert("patched_spirv".into(), 1.into());
        }
        m
    }

    /// The pipeline-cache key: shader file, entry point and every specialization value.
    pub fn key(&self) -> String {
        let mut s = format!("{}:{}", self.shader.file(), self.entry);
        if let (Some(i), Some(o)) = (self.input, self.output) {
            let _ = write!(s, ":{i}->{o}");
        }
        for (k, v) in &self.consts {
            let _ = write!(s, ":{k}={v}");
        }
        for (k, v) in &self.flags {
            let _ = write!(s, ":{k}={v}");
        }
        if let Some(c) = self.coop {
            let _ = write!(s, ":coop{}x{}:{}", c.t, c.t, c.acc);
        }
        for (k, v) in &self.overrides {
            let _ = write!(s, ":@{k}={v}");
        }
        if !self.runtime_checks {
            s.push_str(":unchecked");
        }
        if self.patched_spirv {
            s.push_str(":spv-patched");
        }
        s
    }

    /// Whether any part of the module uses f16 (then `enable f16;` and `Features::SHADER_F16`).
    pub fn needs_f16(&self) -> bool {
        self.input == Some(DType::F16) || self.output == Some(DType::F16) || self.coop.is_some()
    }

    /// The generated prelude (enables, element helpers, constants).
    pub fn prelude(&self) -> String {
        let mut p = String::from("// ---- generated prelude (kernels/src/gpu/shaders.rs) ----\n");
        if self.needs_f16() {
            p.push_str("enable f16;\n");
        }
        if self.coop.is_some() {
            p.push_str("enable wgpu_cooperative_matrix;\n");
        }
        if let Some(d) = self.input {
            let (word, per, body) = match d {
                DType::F32 => ("f32", 1, "return w;"),
                DType::F16 => ("f16", 1, "return f32(w);"),
                DType::BF16 => ("u32", 2, "return bf16_get(w, i);"),
            };
            let _ = writeln!(
                p,
                "alias InWord = {word};\nconst IN_PER_WORD: u32 = {per}u;"
            );
            let _ = writeln!(p, "fn in_value(w: InWord, i: u32) -> f32 {{ {body} }}");
        }
        if let Some(d) = self.output {
            let (word, per, one, two) = match d {
                DType::F32 => ("f32", 1, "return x;", "return lo;"),
                DType::F16 => ("f16", 1, "return f16(x);", "return f16(lo);"),
                DType::BF16 => (
                    "u32",
                    2,
                    "return bf16_bits(x);",
                    "return bf16_pack(lo, hi);",
                ),
            };
            let _ = writeln!(
                p,
                "alias OutWord = {word};\nconst OUT_PER_WORD: u32 = {per}u;"
            );
            let _ = writeln!(p, "fn out_value(x: f32) -> OutWord {{ {one} }}");
            let _ = writeln!(p, "fn out_pair(lo: f32, hi: f32) -> OutWord {{ {two} }}");
        }
        for (k, v) in &self.consts {
            let _ = writeln!(p, "const {k}: u32 = {v}u;");
        }
        for (k, v) in &self.flags {
            let _ = writeln!(p, "const {k}: bool = {v};");
        }
        if let Some(c) = self.coop {
            let acc = match c.acc {
                DType::F16 => "f16",
                _ => "f32",
            };
            let t = c.t;
            let _ = writeln!(p, "const T: u32 = {t}u;");
            let _ = writeln!(p, "alias CoopElemC = {acc};");
            let _ = writeln!(p, "alias CoopA = coop_mat{t}x{t}<f16, A>;");
            let _ = writeln!(p, "alias CoopB = coop_mat{t}x{t}<f16, B>;");
            let _ = writeln!(p, "alias CoopC = coop_mat{t}x{t}<{acc}, C>;");
        }
        p.push_str("// ---- end of prelude ----\n");
        p
    }

    /// The complete module source: prelude + common.wgsl + the shader file.
    pub fn source(&self) -> String {
        format!("{}\n{}\n{}", self.prelude(), COMMON, self.shader.source())
    }
}

/// The naga capabilities a specialization needs (for CPU-side validation).
#[cfg(feature = "gpu")]
pub fn naga_capabilities(spec: &Specialization) -> naga::valid::Capabilities {
    use naga::valid::Capabilities as C;
    let mut c = C::empty();
    if spec.needs_f16() {
        c |= C::SHADER_FLOAT16;
    }
    if spec.coop.is_some() {
        c |= C::COOPERATIVE_MATRIX | C::SUBGROUP | C::SUBGROUP_BARRIER;
    }
    if spec.subgroups {
        c |= C::SUBGROUP;
    }
    if spec.shader == Shader::DecodeVec {
        // unpack2x16float (wgpu grants it where the adapter has DownlevelFlags::SHADER_F16_IN_F32;
        // decode.rs checks before choosing the vector pass).
        c |= C::SHADER_FLOAT16_IN_FLOAT32;
    }
    c
}

/// Parse and validate a specialization with naga (no GPU needed), then resolve its `override`
/// values for its entry point and translate it to SPIR-V, as the Vulkan backend would: errors are
/// rendered with the source line.
#[cfg(feature = "gpu")]
pub fn validate_with_naga(spec: &Specialization) -> Result<(), GpuError> {
    validate_naga(spec).map_err(GpuError::Shader)
}

fn validate_naga(spec: &Specialization) -> Result<(), String> {
    let mut words = spirv_words(spec, &naga::back::spv::Options::default())?;
    if spec.patched_spirv && spec.coop.is_some() {
        // The patched path must find barriers to patch under the Vulkan memory model.
        let r = crate::gpu::spirv::patch_barrier_semantics(&mut words)
            .map_err(|e| format!("{}: patching SPIR-V: {e}", spec.key()))?;
        if !r.vulkan_memory_model || r.barriers == 0 {
            return Err(format!(
                "{}: patched SPIR-V changed nothing ({r:?})",
                spec.key()
            ));
        }
    }
    Ok(())
}

/// The specialization as SPIR-V, as naga writes it in-process (parsed, validated, overrides
/// resolved for its entry point): what the patched passthrough path hands to the driver.
#[cfg(feature = "gpu")]
pub fn spirv_words(
    spec: &Specialization,
    options: &naga::back::spv::Options,
) -> Result<Vec<u32>, String> {
    spirv_with_bindings(spec, options).map(|(words, _)| words)
}

/// Group 0's buffer bindings with their binding type (storage read-only, storage read-write,
/// uniform), in binding order: the explicit layout of a passthrough module.
pub type Bindings = Vec<(u32, wgpu::BufferBindingType)>;

/// [`spirv_words`] and the module's [`Bindings`], from one parse of the source.
#[cfg(feature = "gpu")]
pub fn spirv_with_bindings(
    spec: &Specialization,
    options: &naga::back::spv::Options,
) -> Result<(Vec<u32>, Bindings), String> {
    let src = spec.source();
    let key = spec.key();
    let module = naga::front::wgsl::parse_str(&src)
        .map_err(|e| format!("{key}: {}", e.emit_to_string(&src)))?;
    if !module.entry_points.iter().any(|e| e.name == spec.entry) {
        return Err(format!("{key}: no entry point `{}`", spec.entry));
    }
    for (name, _) in &spec.overrides {
        if !module
            .overrides
            .iter()
            .any(|(_, o)| o.name.as_deref() == Some(name))
        {
            return Err(format!("{key}: no override named `{name}`"));
        }
    }
    let mut v =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga_capabilities(spec));
    v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
    v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    let info = v
        .validate(&module)
        .map_err(|e| format!("{key}: {}", e.emit_to_string(&src)))?;
    let mut constants = naga::back::PipelineConstants::default();
    for (name, value) in &spec.overrides {
        constants.insert(name.to_string(), *value);
    }
    let entry = Some((naga::ShaderStage::Compute, spec.entry));
    let bindings = bindings(&module).map_err(|e| format!("{key}: {e}"))?;
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, entry, &constants)
            .map_err(|e| format!("{key}: overrides: {e}"))?;
    let pipeline = naga::back::spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: spec.entry.to_string(),
    };
    let words = naga::back::spv::write_vec(&module, &info, options, Some(&pipeline))
        .map_err(|e| format!("{key}: SPIR-V: {e}"))?;
    Ok((words, bindings))
}

/// The module's group-0 buffer bindings.
#[cfg(feature = "gpu")]
fn bindings(module: &naga::Module) -> Result<Bindings, String> {
    let mut v = Vec::new();
    for (_, g) in module.global_variables.iter() {
        let Some(b) = &g.binding else { continue };
        if b.group != 0 {
            return Err(format!(
                "binding in group {} (only group 0 is used)",
                b.group
            ));
        }
        let ty = match g.space {
            naga::AddressSpace::Storage { access } => wgpu::BufferBindingType::Storage {
                read_only: !access.contains(naga::StorageAccess::STORE),
            },
            naga::AddressSpace::Uniform => wgpu::BufferBindingType::Uniform,
            other => return Err(format!("binding {} in address space {other:?}", b.binding)),
        };
        v.push((b.binding, ty));
    }
    v.sort_by_key(|e| e.0);
    Ok(v)
}

/// Every specialization the registered GPU kernels and the probes can build (each kernel lists
/// its own, with the adapter-dependent values at every value they may take).
pub fn all_specializations() -> Vec<Specialization> {
    let mut v: Vec<Specialization> = crate::gpu::matmul::GpuMatmul::all()
        .iter()
        .flat_map(|k| k.specializations())
        .chain(
            crate::gpu::attention::GpuFlashAttention::all()
                .iter()
                .flat_map(|k| k.specializations()),
        )
        .chain(crate::gpu::flash_coop::GpuCoopFlashAttention::default().specializations())
        .chain(
            crate::gpu::decode::GpuDecodeAttention::all()
                .iter()
                .flat_map(|k| k.specializations()),
        )
        .collect();
    v.extend(crate::gpu::probe::specializations());
    // Kernels that share a shader build the same specializations (the coop kernel at both
    // outputs): each once.
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|s| seen.insert(s.key()));
    v
}
