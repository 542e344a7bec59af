//! `perfledger tune`: time every legal configuration of each tunable GPU kernel (matmul `tiled`
//! and `coop`, attention `decode`) on a few shapes, keep the fastest verified one per (adapter,
//! driver version, kernel, shape class), and write them to the tune cache (`perfledger.tune/1`)
//! that `run --tune-cache` reads.

use super::{usage, DTypeArg};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// The most a tuning session may take on a hardware GPU, seconds.
pub const CAP_HARDWARE_S: f64 = 90.0;
/// The most a tuning session may take on a software adapter (seconds of JIT per pipeline).
pub const CAP_SOFTWARE_S: f64 = 20.0;

/// The default tune cache: `$PERFLEDGER_TUNE_CACHE`, else `perfledger/tune.json` under the user
/// cache directory (`dirs::cache_dir`: `$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows). `None` when there is none.
pub fn default_cache_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PERFLEDGER_TUNE_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    dirs::cache_dir().map(|d| d.join("perfledger").join("tune.json"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TuneBackend {
    Gpu,
}

#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// What to tune (the GPU kernels with configurations: matmul `tiled` and `coop`, attention
    /// `decode`).
    #[arg(long, value_enum, default_value_t = TuneBackend::Gpu)]
    pub backend: TuneBackend,
    /// GPU adapter: its index (as `perfledger env` lists them) or part of its name.
    #[arg(long, value_name = "INDEX|NAME")]
    pub gpu: Option<String>,
    /// The cache to update (default: $PERFLEDGER_TUNE_CACHE, else perfledger/tune.json under
    /// the user cache directory). Entries of other adapters, drivers, kernels and classes are
    /// kept.
    #[arg(long, value_name = "FILE")]
    pub tune_cache: Option<PathBuf>,
    /// Allow software adapters (llvmpipe/lavapipe).
    #[arg(long)]
    pub allow_software_gpu: bool,
    /// Time cap in seconds (at most, and by default, 90 on a hardware GPU, 20 on a software
    /// adapter); what does not fit is reported as skipped.
    #[arg(long, value_name = "S")]
    pub time_cap: Option<f64>,
    /// Kernel glob(s) (`tiled`, `matmul.gpu.coop.*`, `decode`).
    #[arg(long, value_delimiter = ',')]
    pub kernel: Option<Vec<String>>,
    /// Input dtypes (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub dtype: Option<Vec<DTypeArg>>,
}

#[cfg(not(feature = "gpu"))]
pub fn cmd_tune(_args: TuneArgs) -> Result<u8> {
    bail!(usage(
        "tune: this perfledger was built without the `gpu` feature"
    ))
}

#[cfg(feature = "gpu")]
pub fn cmd_tune(args: TuneArgs) -> Result<u8> {
    use super::{EXIT_FAILED, EXIT_OK};
    use perfledger_kernels::gpu::context;
    use perfledger_kernels::gpu::tune::TuneCache;
    let TuneBackend::Gpu = args.backend;
    if let Some(c) = args.time_cap {
        if !(c.is_finite() && c > 0.0) {
            bail!(usage(format!("--time-cap: {c} is not a positive number")));
        }
    }
    let path = match &args.tune_cache {
        Some(p) => p.clone(),
        None => default_cache_path().ok_or_else(|| {
            usage("tune: no user cache directory (HOME unset): pass --tune-cache FILE")
        })?,
    };
    if path.is_dir() {
        bail!(usage(format!(
            "--tune-cache {}: is a directory",
            path.display()
        )));
    }
    // An existing cache must be readable: it is updated, never replaced by a partial one.
    let mut cache = if path.exists() {
        let keep = "the cache is left as it is; move it away or pass another --tune-cache";
        let bytes = crate::input::read(&path)
            .map_err(|e| usage(format!("{}: {e} ({keep})", path.display())))?;
        TuneCache::from_slice(&bytes, &path).map_err(|e| usage(format!("{e} ({keep})")))?
    } else {
        TuneCache::new()
    };
    crate::env::gpu::configure(args.allow_software_gpu, args.gpu.as_deref()).map_err(usage)?;
    let ctx = match context::global() {
        Ok(c) => c,
        Err(e) if args.gpu.is_some() => bail!(usage(format!("--gpu: {e}"))),
        Err(e) => bail!("tune: no GPU to tune: {e}"),
    };
    let hard_cap = if ctx.report.software {
        CAP_SOFTWARE_S
    } else {
        CAP_HARDWARE_S
    };
    let cap = args.time_cap.unwrap_or(hard_cap).min(hard_cap);
    eprintln!(
        "tuning the GPU kernels on {} ({}, {} {}), time cap {cap:.0} s{}",
        ctx.report.name,
        ctx.report.backend,
        ctx.report.driver,
        ctx.report.driver_info,
        if args.time_cap.is_some_and(|c| c > hard_cap) {
            format!(" (--time-cap lowered to the {hard_cap:.0} s maximum)")
        } else {
            String::new()
        }
    );
    let dtypes: Option<Vec<perfledger_kernels::DType>> = args
        .dtype
        .as_ref()
        .map(|v| v.iter().map(|&d| d.into()).collect());
    let outcome = session::tune(&ctx, cap, args.kernel.as_deref(), dtypes.as_deref());
    for line in &outcome.report {
        eprintln!("{line}");
    }
    let n = outcome.entries.len();
    for e in outcome.entries {
        cache.upsert(e);
    }
    cache.perfledger = env!("CARGO_PKG_VERSION").to_string();
    if n == 0 {
        eprintln!(
            "no configuration verified: {} left as it was",
            path.display()
        );
        return Ok(EXIT_FAILED);
    }
    let bytes = serde_json::to_vec_pretty(&cache)?;
    crate::runfile::write_atomic(&path, &bytes, true)?;
    eprintln!(
        "wrote {n} entries to {} ({} in all); `perfledger run --tune-cache {}` uses them",
        path.display(),
        cache.entries.len(),
        path.display()
    );
    Ok(EXIT_OK)
}

#[cfg(feature = "gpu")]
pub mod session {
    //! The timing loop of `tune`, separate from the command's file handling.

    use perfledger_kernels::gpu::attention::{FlashConfig, GpuFlashAttention};
    use perfledger_kernels::gpu::context::GpuContext;
    use perfledger_kernels::gpu::decode::{DecodeConfig, GpuDecodeAttention};
    use perfledger_kernels::gpu::matmul::{GpuMatmul, MatmulConfig, Variant};
    use perfledger_kernels::gpu::tune::{self, AdapterKey, ShapeClass, TuneEntry};
    use perfledger_kernels::verify::{verify_problem, Verdict, VerifyOptions};
    use perfledger_kernels::{
        AttentionProblem, DType, Kernel, MatmulProblem, Precision, Problem, Support, Tensor,
    };
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// What a tuning session found, and what it says about it (one line each).
    pub struct Outcome {
        pub entries: Vec<TuneEntry>,
        pub report: Vec<String>,
    }

    /// A configuration of one of the tunable kernels.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Config {
        Matmul(MatmulConfig),
        Decode(DecodeConfig),
        Flash(FlashConfig),
    }

    impl Config {
        fn label(&self) -> String {
            match self {
                Config::Matmul(c) => c.label(),
                Config::Decode(c) => c.label(),
                Config::Flash(c) => c.label(),
            }
        }
        fn params(&self) -> serde_json::Map<String, serde_json::Value> {
            match self {
                Config::Matmul(c) => c.params(),
                Config::Decode(c) => c.params(),
                Config::Flash(c) => c.params(),
            }
        }
    }

    /// Which kernel a job tunes.
    #[derive(Clone, Copy)]
    enum Target {
        Matmul(Variant, Precision),
        Decode(DType),
        Flash(DType),
    }

    impl Target {
        fn kernel(&self, c: Option<Config>) -> Box<dyn Kernel> {
            match (*self, c) {
                (Target::Matmul(v, p), Some(Config::Matmul(c))) => {
                    Box::new(GpuMatmul::new(v, p).with_config(c))
                }
                (Target::Matmul(v, p), _) => Box::new(GpuMatmul::new(v, p)),
                (Target::Decode(d), Some(Config::Decode(c))) => {
                    Box::new(GpuDecodeAttention::new(d).with_config(c))
                }
                (Target::Decode(d), _) => Box::new(GpuDecodeAttention::new(d)),
                (Target::Flash(d), Some(Config::Flash(c))) => {
                    Box::new(GpuFlashAttention::new(d).with_config(c))
                }
                (Target::Flash(d), _) => Box::new(GpuFlashAttention::new(d)),
            }
        }
    }

    /// One (kernel, shape class) to tune: its configurations and what was measured so far.
    struct Job {
        target: Target,
        id: String,
        class: ShapeClass,
        problem: Problem,
        timed_shape: [usize; 3],
        space: Vec<Config>,
        next: usize,
        inputs: Option<Vec<Arc<Tensor>>>,
        results: Vec<(Config, Result<f64, String>)>,
    }

    /// Time and verify one configuration; its GFLOP/s.
    fn measure(job: &mut Job, c: Config, deadline: Instant) -> Result<f64, String> {
        let k = job.target.kernel(Some(c));
        let prob = job.problem;
        if let Support::No(why) = k.supports(&prob) {
            return Err(format!("unsupported: {why}"));
        }
        let precision = k.identity().precision;
        let ins = job
            .inputs
            .get_or_insert_with(|| {
                prob.input_lens()
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| Arc::new(Tensor::random(precision.input, n, 0x7u64 + i as u64)))
                    .collect()
            })
            .clone();
        let mut prep = k.prepare(&prob, &ins).map_err(|e| e.to_string())?;
        prep.poison().map_err(|e| e.to_string())?;
        prep.run().map_err(|e| e.to_string())?;
        let out = prep.output().map_err(|e| e.to_string())?;
        let v = verify_problem(&prob, precision, &ins, &out, &VerifyOptions::default());
        if v.verdict != Verdict::Pass {
            return Err(format!(
                "failed verification (error {:.2e} > bound {:.2e}{})",
                v.error,
                v.bound,
                v.detail.map(|d| format!(": {d}")).unwrap_or_default()
            ));
        }
        // One warm call, then 3 timings of `iters` calls each (about 20 ms apiece); the median.
        let once = time_calls(prep.as_mut(), 1)?;
        let iters = ((0.02 / once.max(1e-7)) as u64).clamp(1, 1000);
        let mut t = Vec::new();
        for _ in 0..3 {
            if Instant::now() > deadline && !t.is_empty() {
                break;
            }
            t.push(time_calls(prep.as_mut(), iters)?);
        }
        t.sort_by(f64::total_cmp);
        let med = t[t.len() / 2];
        Ok(prob.work(precision).flops as f64 / med / 1e9)
    }

    fn time_calls(prep: &mut dyn perfledger_kernels::Prepared, iters: u64) -> Result<f64, String> {
        match prep.time_device(iters) {
            Some(Ok(t)) => Ok(t.device_s.unwrap_or(t.wall_s)),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("no device timing".into()),
        }
    }

    /// Every (kernel, shape class) job of this adapter, after the filters; what is not tuned goes
    /// into `report`.
    fn jobs(
        ctx: &Arc<GpuContext>,
        kernel_globs: Option<&[String]>,
        dtypes: Option<&[DType]>,
        report: &mut Vec<String>,
    ) -> Vec<Job> {
        let sg = match ctx.report.subgroup_min_size {
            0 => 32,
            s => s,
        };
        let software = ctx.report.software;
        let mut targets: Vec<Target> = GpuMatmul::all()
            .into_iter()
            .filter(|k| k.variant != Variant::Naive)
            .map(|k| Target::Matmul(k.variant, k.precision))
            .collect();
        targets.extend(DType::ALL.into_iter().map(Target::Decode));
        targets.extend(DType::ALL.into_iter().map(Target::Flash));
        let mut v = Vec::new();
        for target in targets {
            let k = target.kernel(None);
            let id = k.identity().id();
            if let Some(g) = kernel_globs {
                if !g
                    .iter()
                    .any(|p| crate::workload::kernel_matches(p, k.as_ref()))
                {
                    continue;
                }
            }
            if dtypes.is_some_and(|d| !d.contains(&k.identity().precision.input)) {
                continue;
            }
            for class in ShapeClass::ALL {
                let (problem, timed_shape, space) = match target {
                    Target::Matmul(variant, precision) => {
                        let Some(e) = class.tune_edge(software) else {
                            report.push(format!(
                                "{id} {}: not tuned on a software adapter (the default is used)",
                                class.name()
                            ));
                            continue;
                        };
                        let m = GpuMatmul::new(variant, precision);
                        let space = m
                            .config_space(&ctx.limits, sg)
                            .into_iter()
                            .map(Config::Matmul)
                            .collect::<Vec<_>>();
                        (
                            Problem::Matmul(MatmulProblem::new(e, e, e)),
                            [e, e, e],
                            space,
                        )
                    }
                    Target::Decode(_) => {
                        let Some(kv) = tune::decode_tune_kv(class, software) else {
                            report.push(format!(
                                "{id} {}: not tuned on a software adapter (the default is used)",
                                class.name()
                            ));
                            continue;
                        };
                        let p = AttentionProblem::new(1, 32, 8, 1, kv, 128).causal(true);
                        let space = tune::decode_space()
                            .into_iter()
                            .filter(|c| c.illegal(4, 128, &ctx.limits).is_none())
                            .map(Config::Decode)
                            .collect::<Vec<_>>();
                        (Problem::Attention(p), [1, kv, 128], space)
                    }
                    Target::Flash(_) => {
                        let Some(seq) = tune::flash_tune_seq(class, software) else {
                            report.push(format!(
                                "{id} {}: not tuned on a software adapter (the default is used)",
                                class.name()
                            ));
                            continue;
                        };
                        let p = AttentionProblem::new(1, 32, 8, seq, seq, 128).causal(true);
                        let mut space = tune::flash_space()
                            .into_iter()
                            .filter(|c| c.illegal(128, &ctx.limits).is_none())
                            .collect::<Vec<_>>();
                        // The adapter's default first (the row entry on hardware, a tiling on
                        // software): the baseline the others are reported against.
                        if let Some(d) =
                            FlashConfig::default_for(128, ctx.report.software, &ctx.limits)
                        {
                            space.retain(|c| *c != d);
                            space.insert(0, d);
                        }
                        let space = space.into_iter().map(Config::Flash).collect::<Vec<_>>();
                        (Problem::Attention(p), [seq, seq, 128], space)
                    }
                };
                // Whether the kernel runs here at all (coop needs cooperative matrices).
                if let Support::No(why) = k.supports(&problem) {
                    report.push(format!("{id} {}: not tuned: {why}", class.name()));
                    continue;
                }
                v.push(Job {
                    target,
                    id: id.clone(),
                    class,
                    problem,
                    timed_shape,
                    space,
                    next: 0,
                    inputs: None,
                    results: Vec::new(),
                });
            }
        }
        v
    }

    /// Tune within `cap_s` seconds: first every kernel's default configuration (so each (kernel,
    /// class) has a verified baseline before any alternative), then the rest of each space in
    /// turn across jobs, until the cap.
    pub fn tune(
        ctx: &Arc<GpuContext>,
        cap_s: f64,
        kernel_globs: Option<&[String]>,
        dtypes: Option<&[DType]>,
    ) -> Outcome {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(cap_s);
        let mut report = Vec::new();
        let mut jobs = jobs(ctx, kernel_globs, dtypes, &mut report);
        let total: usize = jobs.iter().map(|j| j.space.len()).sum();
        eprintln!(
            "{} kernel × shape-class jobs, {total} configurations in all",
            jobs.len()
        );
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        // Round-robin over the jobs, one configuration each per round.
        loop {
            let mut progressed = false;
            for job in jobs.iter_mut() {
                if Instant::now() >= deadline {
                    break;
                }
                let Some(&c) = job.space.get(job.next) else {
                    continue;
                };
                job.next += 1;
                progressed = true;
                bar.set_message(format!("{} {} {}", job.id, job.class.name(), c.label()));
                let r = measure(job, c, deadline);
                if let Err(e) = &r {
                    bar.println(format!(
                        "{} {} {}: {e}",
                        job.id,
                        job.class.name(),
                        c.label()
                    ));
                }
                job.results.push((c, r));
                bar.inc(1);
            }
            if !progressed || Instant::now() >= deadline {
                break;
            }
        }
        bar.finish_and_clear();
        let elapsed = start.elapsed().as_secs_f64();
        let adapter = AdapterKey::of(&ctx.report);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut entries = Vec::new();
        let mut skipped = 0;
        for job in &jobs {
            skipped += job.space.len() - job.next;
            let verified: Vec<(Config, f64)> = job
                .results
                .iter()
                .filter_map(|(c, r)| r.as_ref().ok().map(|g| (*c, *g)))
                .collect();
            let default = job
                .results
                .first()
                .filter(|(c, _)| Some(*c) == job.space.first().copied())
                .and_then(|(_, r)| r.as_ref().ok().copied());
            let Some(&(best, gflops)) = verified.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
                report.push(format!(
                    "{} {}: no configuration verified ({} tried): no entry",
                    job.id,
                    job.class.name(),
                    job.results.len()
                ));
                continue;
            };
            report.push(format!(
                "{} {} ({}): {} at {gflops:.2} GFLOP/s{}; {}/{} verified, {} not tried",
                job.id,
                job.class.name(),
                job.problem,
                best.label(),
                default
                    .map(|d| format!(" (default {d:.2}, {:.2}x)", gflops / d))
                    .unwrap_or_default(),
                verified.len(),
                job.results.len(),
                job.space.len() - job.next,
            ));
            // Every configuration tried, in order, with its rate: the losers' figures are what
            // answers "which staging / which tiling" questions.
            let tried: Vec<String> = job
                .results
                .iter()
                .map(|(c, r)| match r {
                    Ok(g) => format!("{} {g:.2}", c.label()),
                    Err(e) => {
                        let short: String = e.chars().take(60).collect();
                        format!("{} failed ({short})", c.label())
                    }
                })
                .collect();
            report.push(format!("    tried (GFLOP/s): {}", tried.join("; ")));
            entries.push(TuneEntry {
                adapter: adapter.clone(),
                kernel: job.id.clone(),
                shape_class: job.class,
                timed_shape: job.timed_shape,
                params: best.params(),
                gflops,
                default_gflops: default,
                verified: verified.len(),
                tried: job.results.len(),
                tuned_at: now.clone(),
            });
        }
        report.push(format!(
            "{:.1} s of the {cap_s:.0} s cap; {skipped} of {total} configurations skipped by the cap",
            elapsed
        ));
        Outcome { entries, report }
    }
}
