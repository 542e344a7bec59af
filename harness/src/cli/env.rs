//! `perfledger env`: the machine fingerprint as JSON (and the probes with `--probes`).

use super::{EnvArgs, EXIT_OK};
use crate::env::{self, CollectOptions};
use anyhow::Result;
use perfledger_kernels::isa::Isa;
use perfledger_kernels::probe::{self, ProbeOptions};

pub(crate) fn cmd_env(args: EnvArgs) -> Result<u8> {
    let threads = super::thread_count(args.threads)?;
    let mut environment = env::collect(&CollectOptions {
        threads_used: threads,
        pinned: false,
        isa_selected: Isa::best().name().into(),
        identity: Default::default(),
    })
    .map_err(|e| super::usage(e.to_string()))?;
    environment.gpus = env::gpu::fingerprint();
    if let Some(w) = env::gpu::invisible_gpu_warning() {
        eprintln!("{w}");
    }
    let mut doc = serde_json::json!({
        "harness": env::harness_info(),
        "environment": environment,
    });
    if args.probes {
        let c = probe::cpu_ceilings(&ProbeOptions {
            threads,
            quick: false,
        });
        doc["probes"] = serde_json::to_value(c)?;
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(EXIT_OK)
}
