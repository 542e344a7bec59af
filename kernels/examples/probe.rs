//! Prints this machine's measured ceilings (`perfledger_kernels::probe`) as JSON.
//!
//! ```text
//! cargo run --release -p perfledger-kernels --example probe -- [--threads N] [--quick] [--only fma|bandwidth]
//! ```
//!
//! Used by `scripts/probe-check.sh`, which compares the figures with hand-written C.

use perfledger_kernels::cpu::cache;
use perfledger_kernels::isa::Isa;
use perfledger_kernels::probe::{self, ProbeOptions};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut opts = ProbeOptions::default();
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let v = args.next().ok_or("--threads needs a value")?;
                opts.threads = v
                    .parse()
                    .map_err(|_| format!("--threads: `{v}` is not a count"))?;
            }
            "--quick" => opts.quick = true,
            "--only" => {
                let v = args.next().ok_or("--only needs fma or bandwidth")?;
                if v != "fma" && v != "bandwidth" {
                    return Err(format!("--only: `{v}` is neither fma nor bandwidth"));
                }
                only = Some(v);
            }
            "-h" | "--help" => {
                println!("usage: probe [--threads N] [--quick] [--only fma|bandwidth]");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    let threads = opts.resolved_threads();
    let out = match only.as_deref() {
        Some("bandwidth") => serde_json::json!({
            "threads": threads,
            "quick": opts.quick,
            "bandwidth": probe::bandwidth(&opts),
        }),
        Some(_) => {
            let fma: Vec<_> = Isa::ALL
                .iter()
                .filter_map(|&isa| probe::fma_throughput(isa, &opts))
                .chain(probe::bf16dot_throughput(&opts))
                .collect();
            serde_json::json!({ "threads": threads, "quick": opts.quick, "fma": fma })
        }
        None => {
            let ceilings = probe::cpu_ceilings(&opts);
            let clock_1t = probe::measure_clock_ghz(&ProbeOptions {
                threads: 1,
                quick: opts.quick,
            });
            serde_json::json!({
                "threads": ceilings.threads,
                "quick": opts.quick,
                "caches": cache::detected(),
                "clock_ghz_1_thread": clock_1t,
                "ceilings": ceilings,
            })
        }
    };
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}
