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
        let key = spec.key();
        let src = spec.source();
        let constants: Vec<(&str, f64)> = spec.overrides.iter().map(|(k, v)| (*k, *v)).collect();
        self.scoped(&format!("creating pipeline {key}"), || {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&key),
                    source: wgpu::ShaderSource::Wgsl(src.as_str().into()),
                });
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
