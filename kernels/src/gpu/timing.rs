//! Running and timing GPU work.
//!
//! One iteration is one compute pass (one or more dispatches). [`GpuRun::time`] records several passes per submission (up
//! to [`PASSES_PER_SUBMIT`]), each with pass timestamp writes (`Features::TIMESTAMP_QUERY`, the
//! portable form), and measures the wall clock around the same submit + wait. Device time per
//! iteration is the sum of the passes' own durations; the wall clock is the fallback (no
//! timestamps, or unusable ones) and the cross-check. On lavapipe the two agree within a few
//! percent (`results/gpu-lavapipe.md`).

use crate::gpu::context::GpuContext;
use crate::kernel::{DeviceTiming, KernelError};
use std::sync::Arc;
use std::time::Instant;

/// Most passes (iterations) recorded into one submission while timing.
pub const PASSES_PER_SUBMIT: u32 = 64;

/// One dispatch of an iteration.
pub struct Step {
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub bind: wgpu::BindGroup,
    pub grid: [u32; 3],
}

/// A kernel execution: one or more dispatches (in order, in one compute pass) per
/// [`run`](Self::run).
pub struct GpuRun {
    pub ctx: Arc<GpuContext>,
    pub steps: Vec<Step>,
    timer: Option<Timer>,
}

struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Timer {
    fn new(ctx: &GpuContext) -> Result<Timer, KernelError> {
        let n = 2 * PASSES_PER_SUBMIT;
        let bytes = n as u64 * wgpu::QUERY_SIZE as u64;
        ctx.scoped("timestamp queries", || Timer {
            queries: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: n,
            }),
            resolve: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamp resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            staging: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamp read-back"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        })
    }
}

impl GpuRun {
    /// Wrap a pipeline for running; creates the timestamp query set when the device has them.
    pub fn new(
        ctx: Arc<GpuContext>,
        pipeline: Arc<wgpu::ComputePipeline>,
        bind: wgpu::BindGroup,
        grid: [u32; 3],
    ) -> Result<GpuRun, KernelError> {
        ctx.check_grid(grid)?;
        let timer = if ctx.has_timestamps() {
            Some(Timer::new(&ctx)?)
        } else {
            None
        };
        Ok(GpuRun {
            ctx,
            steps: vec![Step {
                pipeline,
                bind,
                grid,
            }],
            timer,
        })
    }

    /// Add a dispatch after the existing ones (same pass, same iteration).
    pub fn then(
        mut self,
        pipeline: Arc<wgpu::ComputePipeline>,
        bind: wgpu::BindGroup,
        grid: [u32; 3],
    ) -> Result<GpuRun, KernelError> {
        self.ctx.check_grid(grid)?;
        self.steps.push(Step {
            pipeline,
            bind,
            grid,
        });
        Ok(self)
    }

    fn encode(&self, passes: u32, timed: bool) -> wgpu::CommandEncoder {
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        for i in 0..passes {
            let timestamp_writes = match (&self.timer, timed) {
                (Some(t), true) => Some(wgpu::ComputePassTimestampWrites {
                    query_set: &t.queries,
                    beginning_of_pass_write_index: Some(2 * i),
                    end_of_pass_write_index: Some(2 * i + 1),
                }),
                _ => None,
            };
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes,
            });
            for s in &self.steps {
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, &s.bind, &[]);
                pass.dispatch_workgroups(s.grid[0], s.grid[1], s.grid[2]);
            }
        }
        enc
    }

    /// One execution, synchronous.
    pub fn run(&self) -> Result<(), KernelError> {
        let idx = self.ctx.scoped("dispatch", || {
            let enc = self.encode(1, false);
            self.ctx.queue.submit([enc.finish()])
        })?;
        self.ctx.wait(Some(idx))
    }

    /// `iters` executions timed on the device (when it has timestamps) and by the wall clock.
    pub fn time(&self, iters: u64) -> Result<DeviceTiming, KernelError> {
        let iters = iters.max(1);
        let mut left = iters;
        let mut wall = 0.0;
        let mut device = Some(0.0);
        let period_ns = self.ctx.queue.get_timestamp_period() as f64;
        while left > 0 {
            let n = left.min(PASSES_PER_SUBMIT as u64) as u32;
            left -= n as u64;
            let t0 = Instant::now();
            let idx = self.ctx.scoped("timed dispatches", || {
                let mut enc = self.encode(n, true);
                if let Some(t) = &self.timer {
                    enc.resolve_query_set(&t.queries, 0..2 * n, &t.resolve, 0);
                    enc.copy_buffer_to_buffer(
                        &t.resolve,
                        0,
                        &t.staging,
                        0,
                        2 * n as u64 * wgpu::QUERY_SIZE as u64,
                    );
                }
                self.ctx.queue.submit([enc.finish()])
            })?;
            self.ctx.wait(Some(idx))?;
            wall += t0.elapsed().as_secs_f64();
            match &self.timer {
                Some(t) => {
                    let ticks = read_ticks(&self.ctx, &t.staging, 2 * n as usize)?;
                    device = match (device, pass_seconds(&ticks, period_ns)) {
                        (Some(d), Some(s)) => Some(d + s),
                        _ => None,
                    };
                }
                None => device = None,
            }
        }
        Ok(DeviceTiming {
            device_s: device.map(|d| d / iters as f64),
            wall_s: wall / iters as f64,
        })
    }
}

/// Sum of `end − begin` over pass pairs, in seconds; `None` when any pair is unusable (zero or
/// out of order: some drivers report 0 for unsupported timestamps).
pub fn pass_seconds(ticks: &[u64], period_ns: f64) -> Option<f64> {
    let mut total = 0u64;
    for pair in ticks.chunks_exact(2) {
        let (b, e) = (pair[0], pair[1]);
        if b == 0 || e <= b {
            return None;
        }
        total += e - b;
    }
    Some(total as f64 * period_ns * 1e-9)
}

fn read_ticks(ctx: &GpuContext, staging: &wgpu::Buffer, n: usize) -> Result<Vec<u64>, KernelError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let bytes = n as u64 * wgpu::QUERY_SIZE as u64;
    staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait(None)?;
    rx.recv()
        .map_err(|_| KernelError::Other("timestamps: the map callback never ran".into()))?
        .map_err(|e| KernelError::Other(format!("timestamps: mapping failed: {e}")))?;
    let ticks = {
        let view = staging
            .slice(0..bytes)
            .get_mapped_range()
            .map_err(|e| KernelError::Other(format!("timestamps: {e}")))?;
        view.chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect::<Vec<u64>>()
    };
    staging.unmap();
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_seconds_sums_pairs_and_rejects_garbage() {
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 1e-12 * b);
        assert!(close(pass_seconds(&[10, 20, 30, 45], 1.0), 25e-9));
        assert!(close(pass_seconds(&[10, 20], 2.0), 20e-9));
        assert_eq!(pass_seconds(&[0, 0], 1.0), None);
        assert_eq!(pass_seconds(&[20, 10], 1.0), None);
    }
}
