//! The LLM estimate for the `llm` suite — a **kernel-only estimate**, labelled so everywhere.
//!
//! Per model and phase, a transformer layer's time is the sum of its projection matmuls and its
//! attention, times the layer count:
//!
//! - prefill at batch 1 and prompt length T: `t_layer = t(qkv-tT) + t(o-tT) + t(gate_up-tT) +
//!   t(down-tT) + t(prefill-T)` (causal attention), `tokens/s = T / (L · t_layer)`;
//! - decode per token at batch 1 and context C: `t_layer = t(qkv-t1) + t(o-t1) + t(gate_up-t1) +
//!   t(down-t1) + t(decode-C)`, `tokens/s = 1 / (L · t_layer)`;
//! - `$ per million tokens = USD/h / 3600 · L · t_layer / tokens · 10⁶`.
//!
//! Left out (so the estimate is an upper bound on speed): embeddings, norms, RoPE, the SwiGLU
//! activation, residual adds, the LM head, sampling, KV-cache writes and any communication. The
//! CI is the sum of the parts' CI ends (conservative). Case names come from the rows' `case`
//! field (`llama3.1-8b-qkv-t2048`, `llama3.1-8b-prefill-2048`, `llama3.1-8b-decode-32768`).

use super::{interval, num, usd, RowReport, TargetInfo, WorkloadReport};
use crate::normalize::Interval;
use crate::runfile::RowKind;
use crate::specs::SpecDType;
use serde::Serialize;
use std::collections::BTreeMap;

/// A model's layer count and where it comes from.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ModelInfo {
    pub name: &'static str,
    pub layers: u32,
    pub source: &'static str,
}

/// The models of the `llm` suite (`harness/src/suites/llm.json`).
pub const MODELS: [ModelInfo; 4] = [
    ModelInfo {
        name: "llama3.1-8b",
        layers: 32,
        source: "meta-llama/Llama-3.1-8B config.json: num_hidden_layers 32",
    },
    ModelInfo {
        name: "llama3.1-70b",
        layers: 80,
        source: "meta-llama/Llama-3.1-70B config.json: num_hidden_layers 80",
    },
    ModelInfo {
        name: "qwen2.5-7b",
        layers: 28,
        source: "Qwen/Qwen2.5-7B config.json: num_hidden_layers 28",
    },
    ModelInfo {
        name: "phi3-mini",
        layers: 32,
        source: "microsoft/Phi-3-mini-4k-instruct config.json: num_hidden_layers 32",
    },
];

/// The label every estimate carries.
pub const LABEL: &str = "kernel-only estimate";

/// What is left out, printed with every estimate.
pub const EXCLUDES: &str = "excludes embeddings, norms, RoPE, activation, residual adds, LM \
     head, sampling, KV-cache writes and communication";

const PROJECTIONS: [&str; 4] = ["qkv", "o", "gate_up", "down"];

/// One part of a layer.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    pub case: String,
    /// The row the time came from (measured estimates).
    pub row: Option<usize>,
    pub kernel: String,
    pub seconds: Interval,
}

/// One estimate: a model, a phase, a device (or a projected chip).
#[derive(Clone, Debug, Serialize)]
pub struct LlmEstimate {
    /// Always `kernel-only estimate`.
    pub label: &'static str,
    pub model: String,
    pub layers: u32,
    pub layers_source: String,
    /// `prefill` or `decode`.
    pub phase: &'static str,
    pub batch: u64,
    /// Prefill: the prompt length T. Decode: the context C.
    pub length: u64,
    /// `measured`/`peer`/`imported` (of the rows used), or `projected`.
    pub kind: RowKind,
    pub device: String,
    pub dtype: SpecDType,
    pub parts: Vec<Part>,
    pub layer_s: Interval,
    pub total_s: Interval,
    pub tokens_per_s: Interval,
    pub usd_per_hour: Option<f64>,
    pub usd_per_million_tokens: Option<Interval>,
    /// The formula with the numbers, printed with the figure.
    pub formula: String,
    /// Projected estimates: `ceiling (upper bound)` or `realistic`.
    pub basis: Option<String>,
}

fn sum(parts: &[Part]) -> Interval {
    parts.iter().fold(Interval::exact(0.0), |a, p| Interval {
        median: a.median + p.seconds.median,
        lo: a.lo + p.seconds.lo,
        hi: a.hi + p.seconds.hi,
    })
}

/// The cases of one estimate: (phase, length, [case names]).
fn plans(model: &str, cases: &BTreeMap<String, ()>) -> Vec<(&'static str, u64, Vec<String>)> {
    let mut out = Vec::new();
    let prefix = format!("{model}-");
    for case in cases.keys() {
        let Some(rest) = case.strip_prefix(&prefix) else {
            continue;
        };
        if let Some(t) = rest
            .strip_prefix("prefill-")
            .and_then(|t| t.parse::<u64>().ok())
        {
            let mut names: Vec<String> = PROJECTIONS
                .iter()
                .map(|p| format!("{model}-{p}-t{t}"))
                .collect();
            names.push(case.clone());
            out.push(("prefill", t, names));
        }
        if let Some(c) = rest
            .strip_prefix("decode-")
            .and_then(|c| c.parse::<u64>().ok())
        {
            let mut names: Vec<String> = PROJECTIONS
                .iter()
                .map(|p| format!("{model}-{p}-t1"))
                .collect();
            names.push(case.clone());
            out.push(("decode", c, names));
        }
    }
    out.sort_by_key(|(phase, len, _)| (*phase != "prefill", *len));
    out
}

#[allow(clippy::too_many_arguments)]
fn estimate(
    model: &ModelInfo,
    phase: &'static str,
    length: u64,
    kind: RowKind,
    device: String,
    dtype: SpecDType,
    parts: Vec<Part>,
    usd_per_hour: Option<f64>,
    basis: Option<String>,
) -> LlmEstimate {
    let layer_s = sum(&parts);
    let l = model.layers as f64;
    let total_s = layer_s.scale(l);
    let tokens = if phase == "prefill" {
        length as f64
    } else {
        1.0
    };
    let tokens_per_s = total_s.recip_times(tokens);
    let usd_per_million_tokens = usd_per_hour.map(|u| total_s.scale(u / 3600.0 / tokens * 1e6));
    let terms: Vec<String> = parts
        .iter()
        .map(|p| format!("{} {} s", p.case, num(p.seconds.median)))
        .collect();
    let formula = match phase {
        "prefill" => format!(
            "tokens/s = T / (L × t_layer) = {length} / ({} × {} s) with t_layer = {} (batch 1, \
             causal prefill at T = {length}; {EXCLUDES})",
            model.layers,
            num(layer_s.median),
            terms.join(" + ")
        ),
        _ => format!(
            "tokens/s = 1 / (L × t_layer) = 1 / ({} × {} s) with t_layer = {} (batch 1, one \
             token over a context of {length}; {EXCLUDES})",
            model.layers,
            num(layer_s.median),
            terms.join(" + ")
        ),
    } + &match usd_per_hour {
        Some(u) => format!(
            "; $ per 1M tokens = {}/h ÷ 3600 × {} s ÷ {} × 10⁶",
            usd(u),
            num(total_s.median),
            tokens
        ),
        None => String::new(),
    };
    LlmEstimate {
        label: LABEL,
        model: model.name.to_string(),
        layers: model.layers,
        layers_source: model.source.to_string(),
        phase,
        batch: 1,
        length,
        kind,
        device,
        dtype,
        parts,
        layer_s,
        total_s,
        tokens_per_s,
        usd_per_hour,
        usd_per_million_tokens,
        formula,
        basis,
    }
}

/// All estimates the rows allow: per (run, device, dtype) from the fastest verified row of each
/// case, and per projection target from its projected times.
pub fn estimates(
    rows: &[RowReport],
    workloads: &[WorkloadReport],
    _runs: &[super::RunInfo],
    targets: &[TargetInfo],
) -> Vec<LlmEstimate> {
    let mut out = Vec::new();
    // Every case name seen, and its workload (any status: projections only need the shape).
    let mut case_workload: BTreeMap<String, (String, SpecDType)> = BTreeMap::new();
    for r in rows {
        if let Some(c) = &r.case {
            case_workload
                .entry(format!("{c}\u{0}{}", r.dtype.name()))
                .or_insert((r.workload.clone(), r.dtype));
        }
    }
    // Measured: (run, device, dtype) → case → fastest verified row.
    let mut groups: BTreeMap<(usize, String, SpecDType), BTreeMap<String, usize>> = BTreeMap::new();
    for r in rows {
        let (Some(c), true, Some(_)) = (&r.case, r.rankable, r.median_s) else {
            continue;
        };
        let g = groups
            .entry((r.run, r.device_key.clone(), r.dtype))
            .or_default();
        match g.get(c) {
            Some(&j) if rows[j].median_s <= r.median_s => {}
            _ => {
                g.insert(c.clone(), r.index);
            }
        }
    }
    for ((_, _, dtype), cases) in &groups {
        let names: BTreeMap<String, ()> = cases.keys().map(|k| (k.clone(), ())).collect();
        for model in &MODELS {
            for (phase, length, needed) in plans(model.name, &names) {
                let Some(idx): Option<Vec<usize>> =
                    needed.iter().map(|c| cases.get(c).copied()).collect()
                else {
                    continue;
                };
                let parts: Vec<Part> = needed
                    .iter()
                    .zip(&idx)
                    .map(|(c, &i)| {
                        let r = &rows[i];
                        let m = r.median_s.unwrap_or(f64::NAN);
                        let ci = r.time_ci95_s.unwrap_or([m, m]);
                        Part {
                            case: c.clone(),
                            row: Some(i),
                            kernel: r.kernel.clone(),
                            seconds: Interval::new(m, ci),
                        }
                    })
                    .collect();
                let first = &rows[idx[0]];
                let kinds: Vec<RowKind> = idx.iter().map(|&i| rows[i].kind).collect();
                let kind = if kinds.iter().all(|k| *k == RowKind::Measured) {
                    RowKind::Measured
                } else if kinds.contains(&RowKind::Imported) {
                    RowKind::Imported
                } else {
                    RowKind::Peer
                };
                out.push(estimate(
                    model,
                    phase,
                    length,
                    kind,
                    format!("{} — {}", first.device, first.run_label),
                    *dtype,
                    parts,
                    first.price.as_ref().map(|p| p.usd_per_hour),
                    None,
                ));
            }
        }
    }
    // Projected: per target, from the workloads' projections.
    let dtypes: Vec<SpecDType> = {
        let mut d: Vec<SpecDType> = case_workload.values().map(|v| v.1).collect();
        d.sort();
        d.dedup();
        d
    };
    for dtype in dtypes {
        let names: BTreeMap<String, ()> = case_workload
            .iter()
            .filter(|(_, v)| v.1 == dtype)
            .map(|(k, _)| (k.split('\u{0}').next().unwrap_or("").to_string(), ()))
            .collect();
        for model in &MODELS {
            for (phase, length, needed) in plans(model.name, &names) {
                if !needed.iter().all(|c| names.contains_key(c)) {
                    continue;
                }
                for t in targets {
                    let projs: Option<Vec<(String, f64, Option<f64>)>> = needed
                        .iter()
                        .map(|c| {
                            let (wk, _) = &case_workload[&format!("{c}\u{0}{}", dtype.name())];
                            let w = workloads.iter().find(|w| &w.key == wk)?;
                            let p = w
                                .projections
                                .iter()
                                .find(|p| p.chip == t.chip)?
                                .projection
                                .as_ref()?;
                            Some((c.clone(), p.ceiling_s, p.realistic_s))
                        })
                        .collect();
                    let Some(projs) = projs else { continue };
                    let realistic = projs.iter().all(|p| p.2.is_some());
                    let parts = projs
                        .iter()
                        .map(|(c, ceil, real)| Part {
                            case: c.clone(),
                            row: None,
                            kernel: "projected".into(),
                            seconds: Interval::exact(if realistic {
                                real.unwrap_or(*ceil)
                            } else {
                                *ceil
                            }),
                        })
                        .collect();
                    out.push(estimate(
                        model,
                        phase,
                        length,
                        RowKind::Projected,
                        t.name.clone(),
                        dtype,
                        parts,
                        t.price.as_ref().map(|p| p.usd_per_chip_hour),
                        Some(if realistic {
                            "realistic (every part has a realistic projection)".into()
                        } else {
                            "roofline ceiling: an upper bound on tokens/s".into()
                        }),
                    ));
                }
            }
        }
    }
    out
}

/// `tokens/s [CI]` for display.
pub fn tokens_per_s(e: &LlmEstimate) -> String {
    interval(&e.tokens_per_s)
}
