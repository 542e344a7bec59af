//! `perfledger compare BASE CAND` (or `--base FILE… --candidate FILE…`): the rows of two sides
//! compared for CI ([`crate::compare`]). Exit 0 no regression; 1 a regression or a newly incorrect
//! row; 2 bad usage or input (file and field named), or configurations that differ without
//! `--allow-config-diff`.

use super::report::{check_out, emit};
use super::{usage, CompareArgs, EXIT_USAGE};
use crate::compare::{self, sides, CompareOptions, NoiseFile, Side};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn cmd_compare(args: CompareArgs) -> Result<u8> {
    let (base, cand) = sides_of(&args)?;
    if !(args.threshold.is_finite() && (0.0..1.0).contains(&args.threshold)) {
        return Err(usage(format!(
            "--threshold: {} is not in [0, 1) (a share: 0.03 = 3%)",
            args.threshold
        )));
    }
    if let Some(out) = &args.out {
        check_out(out, args.force)?;
    }
    let noise = args.noise.as_deref().map(read_noise).transpose()?;
    let base = Side::new("base", sides::read_side(&base)?).map_err(|e| usage(e.to_string()))?;
    let cand =
        Side::new("candidate", sides::read_side(&cand)?).map_err(|e| usage(e.to_string()))?;
    let opts = CompareOptions {
        threshold: args.threshold,
        allow_config_diff: args.allow_config_diff,
        noise,
        paired: args.paired,
        ..CompareOptions::default()
    };
    let c = compare::compare(&base, &cand, &opts);
    let text = compare::format::render(&c, args.format);
    emit(&text, args.out.as_deref(), args.force)?;
    if c.exit_code == EXIT_USAGE {
        let d: Vec<String> = c
            .config_differences
            .iter()
            .map(|d| format!("{} ({} → {})", d.setting, d.base, d.candidate))
            .collect();
        eprintln!(
            "perfledger: the configurations differ ({}); rows were not compared (pass \
             --allow-config-diff to compare them)",
            d.join(", ")
        );
    }
    Ok(c.exit_code)
}

/// The files of each side: two positional files, or `--base` and `--candidate` lists.
fn sides_of(args: &CompareArgs) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut base = args.base.clone();
    let mut cand = args.candidate.clone();
    match args.files.as_slice() {
        [] => {}
        [b, c] if base.is_empty() && cand.is_empty() => {
            base.push(b.clone());
            cand.push(c.clone());
        }
        [_, _] => {
            return Err(usage(
                "give either BASE CAND or --base FILE… --candidate FILE…, not both",
            ))
        }
        other => {
            return Err(usage(format!(
                "compare takes two files, BASE and CAND (got {}); for several rounds per side use \
                 --base FILE… --candidate FILE…",
                other.len()
            )))
        }
    }
    if base.is_empty() || cand.is_empty() {
        return Err(usage(
            "nothing to compare: give BASE CAND, or --base FILE… and --candidate FILE…",
        ));
    }
    Ok((base, cand))
}

/// Noise floors from an A/A comparison's JSON (`perfledger.compare/1`): per row key, the
/// farthest its 95% CI reached from 1.
fn read_noise(path: &Path) -> Result<NoiseFile> {
    let name = path.display();
    let text = crate::input::read(path).map_err(|e| usage(format!("--noise {name}: {e}")))?;
    let doc: Value = serde_json::from_slice(&text)
        .map_err(|e| usage(format!("--noise {name}: not JSON: {e}")))?;
    if doc.get("schema").and_then(Value::as_str) != Some(compare::SCHEMA) {
        return Err(usage(format!(
            "--noise {name}: field `schema` is {}, expected \"{}\" (the JSON of `perfledger \
             compare --format json` on an A/A pair)",
            doc.get("schema")
                .map_or("missing".into(), |v| v.to_string()),
            compare::SCHEMA
        )));
    }
    let rows = doc
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(|| usage(format!("--noise {name}: field `rows` is not an array")))?;
    let mut floors = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let Some(key) = r.get("key").and_then(Value::as_str) else {
            return Err(usage(format!(
                "--noise {name}: field `rows[{i}].key` is not a string"
            )));
        };
        let Some(ci) = r.get("ci95").filter(|v| !v.is_null()) else {
            continue;
        };
        let bounds: Option<Vec<f64>> = ci
            .as_array()
            .filter(|a| a.len() == 2)
            .map(|a| a.iter().filter_map(Value::as_f64).collect());
        match bounds.as_deref() {
            Some([lo, hi]) if lo.is_finite() && hi.is_finite() && lo <= hi && *lo > 0.0 => {
                floors.insert(key.to_string(), (hi - 1.0).max(1.0 - lo).max(0.0));
            }
            _ => {
                return Err(usage(format!(
                    "--noise {name}: field `rows[{i}].ci95` is not [lo, hi] with 0 < lo ≤ hi"
                )))
            }
        }
    }
    Ok(NoiseFile {
        path: name.to_string(),
        floors,
    })
}
