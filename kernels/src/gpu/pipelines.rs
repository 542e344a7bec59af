//! The pipeline cache, keyed by (shader, specialization): every specialization is compiled once
//! per device, and compilation is never inside a timed region (kernels fetch their pipeline while
//! preparing). llvmpipe compiles on the first dispatch instead, which the runner's verified first
//! run and warm-up absorb.

use crate::gpu::context::GpuContext;
use crate::gpu::shaders::Specialization;
use crate::gpu::GpuError;
use crate::kernel::KernelError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct PipelineCache {
    map: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
}

impl PipelineCache {
    /// Pipelines created so far (tests keep this near 20: each costs seconds of JIT on llvmpipe).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys created so far, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .map
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }
}

/// Whether the device can build this specialization at all (features), with the reason if not.
pub fn can_build(ctx: &GpuContext, spec: &Specialization) -> Result<(), GpuError> {
    can_build_here(ctx, spec).map_err(GpuError::Unsupported)
}

fn can_build_here(ctx: &GpuContext, spec: &Specialization) -> Result<(), String> {
    if spec.needs_f16() && !ctx.has(wgpu::Features::SHADER_F16) {
        return Err(format!(
            "{} has no SHADER_F16 (f16 in shaders)",
            ctx.report.name
        ));
    }
    if spec.subgroups && !ctx.has(wgpu::Features::SUBGROUP) {
        return Err(format!(
            "{} has no SUBGROUP (subgroup operations)",
            ctx.report.name
        ));
    }
    if spec.coop.is_some() {
        for (f, name) in [
            (
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
                "EXPERIMENTAL_COOPERATIVE_MATRIX",
            ),
            (wgpu::Features::SUBGROUP, "SUBGROUP"),
        ] {
            if !ctx.has(f) {
                return Err(format!("{} has no {name}", ctx.report.name));
            }
        }
    }
    Ok(())
}

impl GpuContext {
    /// The pipeline of a specialization, created (inside error scopes) on first request.
    pub fn pipeline(
        &self,
        spec: &Specialization,
    ) -> Result<Arc<wgpu::ComputePipeline>, KernelError> {
        let key = spec.key();
        let mut map = self
            .pipelines
            .map
            .lock()
            .map_err(|_| KernelError::Other("pipeline cache lock poisoned".into()))?;
        if let Some(p) = map.get(&key) {
            return Ok(p.clone());
        }
        self.build_pipeline(spec).map(|p| {
            let p = Arc::new(p);
            map.insert(key, p.clone());
            p
        })
    }

    /// Create a pipeline without caching it. Validation errors (a shader this device rejects)
    /// come back as the error, naming the specialization.
    pub fn build_pipeline(
        &self,
        spec: &Specialization,
    ) -> Result<wgpu::ComputePipeline, KernelError> {
        self.alive()?;
        if spec.patched_spirv {
            return self.build_patched(spec);
        }
        let key = spec.key();
        let src = spec.source();
        let constants: Vec<(&str, f64)> = spec.overrides.iter().map(|(k, v)| (*k, *v)).collect();
        self.scoped(&format!("creating pipeline {key}"), || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(&key),
                source: wgpu::ShaderSource::Wgsl(src.as_str().into()),
            };
            let module = if spec.runtime_checks {
                self.device.create_shader_module(desc)
            } else {
                // SAFETY: only specializations whose every storage and workgroup access is in
                // range by construction ask for this (tiled, coop: the host checks every buffer
                // against the problem's extents before dispatch, the shaders test m, n, k at
                // the edges, and every loop is bounded by uniform values).
                unsafe {
                    self.device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            };
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&key),
                    layout: None,
                    module: &module,
                    entry_point: Some(spec.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        // Every shader writes workgroup memory before reading it.
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })
    }
}

impl GpuContext {
    /// A pipeline from SPIR-V written by naga in-process with its barriers patched
    /// ([`crate::gpu::spirv::patch_barrier_semantics`]), created as a passthrough module with an
    /// explicit layout derived from the module's bindings (a passthrough module has no
    /// reflection). Overrides are resolved by naga before writing, so none are passed here.
    fn build_patched(&self, spec: &Specialization) -> Result<wgpu::ComputePipeline, KernelError> {
        let key = spec.key();
        if !self.has(wgpu::Features::PASSTHROUGH_SHADERS) {
            return Err(GpuError::Unsupported(format!(
                "{} has no PASSTHROUGH_SHADERS (patched SPIR-V modules)",
                self.report.name
            ))
            .into());
        }
        if !self.report.backend.eq_ignore_ascii_case("vulkan") {
            return Err(GpuError::Unsupported(format!(
                "patched SPIR-V needs the Vulkan backend ({} runs {})",
                self.report.name, self.report.backend
            ))
            .into());
        }
        // naga's defaults: no bounds-check code (every access is in range by construction, as
        // for the trusted modules), no workgroup zeroing (the shaders write before they read).
        let options = naga::back::spv::Options {
            bounds_check_policies: naga::proc::BoundsCheckPolicies::default(),
            zero_initialize_workgroup_memory:
                naga::back::spv::ZeroInitializeWorkgroupMemoryMode::None,
            ..Default::default()
        };
        let (mut words, entries) = crate::gpu::shaders::spirv_with_bindings(spec, &options)
            .map_err(|e| KernelError::Other(format!("{key}: {e}")))?;
        crate::gpu::spirv::patch_barrier_semantics(&mut words)
            .map_err(|e| KernelError::Other(format!("{key}: patching SPIR-V: {e}")))?;
        let wg = spec
            .overrides
            .iter()
            .find(|(k, _)| *k == "WG" || *k == "WG_X")
            .map(|(_, v)| *v as u32)
            .unwrap_or(1);
        self.scoped(&format!("creating patched pipeline {key}"), || {
            let layout_entries: Vec<wgpu::BindGroupLayoutEntry> = entries
                .iter()
                .map(|&(binding, ty)| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let bgl = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&key),
                    entries: &layout_entries,
                });
            let layout = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(&key),
                    bind_group_layouts: &[Some(&bgl)],
                    immediate_size: 0,
                });
            let entry_points = [wgpu::PassthroughShaderEntryPoint {
                name: spec.entry.into(),
                workgroup_size: (wg, 1, 1),
            }];
            // SAFETY: the SPIR-V is naga's own output for a module naga validated, changed only
            // in barrier memory semantics (bits the Vulkan memory model defines for barriers),
            // and the layout is derived from the same module's bindings.
            let module = unsafe {
                self.device.create_shader_module_passthrough(
                    wgpu::ShaderModuleDescriptorPassthrough {
                        label: Some(&key),
                        entry_points: std::borrow::Cow::Borrowed(&entry_points),
                        spirv: Some(std::borrow::Cow::Borrowed(&words)),
                        ..Default::default()
                    },
                )
            };
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&key),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some(spec.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &[],
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })
    }
}
