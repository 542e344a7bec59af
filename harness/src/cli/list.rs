//! `perfledger list`: every kernel of this build and whether it runs here (and why not).

use super::{parse_isa, ListArgs, EXIT_OK};
use anyhow::Result;
use perfledger_kernels::{Problem, Registry, RegistryOptions, Support};

pub(crate) fn cmd_list(args: ListArgs) -> Result<u8> {
    let isa = parse_isa(args.isa)?;
    let reg = Registry::new(&RegistryOptions {
        isa,
        ..RegistryOptions::default()
    });
    println!(
        "{:<48} {:<6} {:<10} why not / params",
        "kernel", "backend", "runs here"
    );
    let samples = [
        Problem::Matmul(perfledger_kernels::MatmulProblem::new(64, 64, 64)),
        Problem::Attention(perfledger_kernels::AttentionProblem::new(
            1, 2, 2, 16, 16, 64,
        )),
    ];
    for k in reg.kernels() {
        let id = k.identity();
        let sample = samples
            .iter()
            .find(|p| p.op() == id.op)
            .expect("a sample per op");
        let (runs, why) = match k.supports(sample) {
            Support::No(r) => ("no", r.to_string()),
            Support::Yes if !reg.is_selected(k.as_ref()) => (
                "no",
                format!(
                    "not the selected ISA ({}; use --isa {})",
                    reg.isa_selected(),
                    id.variant
                ),
            ),
            // A reference library: what it is and what it chose here, and its caveat if any.
            Support::Yes => match k.peer() {
                Some(lib) => (
                    "yes",
                    format!(
                        "peer: {} {}{}",
                        lib.name,
                        lib.version,
                        lib.caveat.map(|c| format!(" — {c}")).unwrap_or_default()
                    ),
                ),
                None => (
                    "yes",
                    serde_json::Value::Object(id.params.clone()).to_string(),
                ),
            },
        };
        println!("{:<48} {:<6} {:<10} {}", id.id(), id.backend, runs, why);
    }
    Ok(EXIT_OK)
}
