//! GPU kernels via wgpu: WGSL matmul (`naive`, `tiled`, `coop`), flash attention and split-KV
//! decode in
//! f32/f16/bf16, GPU ceilings, and everything they share.
//!
//! - [`context`]: all wgpu setup (adapter selection, device, error scopes, device loss, buffers);
//! - [`shaders`]: the WGSL sources, the generated prelude, naga validation;
//! - [`pipelines`]: the pipeline cache keyed by (shader, specialization);
//! - [`timing`]: timestamp queries with the wall clock as fallback and cross-check;
//! - [`matmul`], [`attention`], [`decode`], [`flash_coop`]: the kernels; [`probe`]: the ceilings;
//! - [`tune`]: configurations per adapter, the tune cache (`perfledger.tune/1`).
//!
//! Nothing here touches wgpu until a kernel is asked whether it runs ([`Kernel::supports`]) or
//! prepared, so CPU-only commands never load a GPU driver.

pub mod attention;
pub mod context;
pub mod decode;
pub mod error;
pub mod flash_coop;
pub use error::GpuError;
pub mod matmul;
pub mod pipelines;
pub mod probe;
pub mod shaders;
pub mod spirv;
pub mod timing;
pub mod tune;

pub use context::{configure, GpuContext, GpuOptions, GpuSelect};

use crate::kernel::Kernel;

/// Every GPU kernel of this build (the registry lists them after the CPU kernels).
pub fn kernels() -> Vec<Box<dyn Kernel>> {
    let mut v: Vec<Box<dyn Kernel>> = Vec::new();
    for k in matmul::GpuMatmul::all() {
        v.push(Box::new(k));
    }
    for k in attention::GpuFlashAttention::all() {
        v.push(Box::new(k));
    }
    for k in decode::GpuDecodeAttention::all() {
        v.push(Box::new(k));
    }
    v.push(Box::new(flash_coop::GpuCoopFlashAttention::default()));
    v
}
