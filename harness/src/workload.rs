//! Suites as data (`perfledger.suite/1`): the embedded suites and user files, validated into
//! cases, and the plan (case × kernel × dtype rows) a run will execute.
//!
//! Every error names the file, the case and the field.

use perfledger_kernels::kernel::{Backend, Op};
use perfledger_kernels::{
    AttentionProblem, DType, Kernel, MatmulProblem, Precision, Problem, Registry,
};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

pub const SUITE_SCHEMA: &str = "perfledger.suite/1";

pub use crate::limits::{MAX_BUDGET_S, MAX_DIM, MAX_KV_LEN};
/// Largest accepted buffer, in bytes (per operand).
pub const MAX_BUFFER_BYTES: u64 = 16 << 30;
/// Baseline kernels (`naive`) run only on rows of at most this many FLOPs (2^26 ≈ 67 MFLOP: up to
/// 0.1 s per iteration for the naive matmul at 0.7–6 GFLOP/s on 2 cores, so 10 samples fit a
/// 1 s row budget).
pub const BASELINE_WORK_CAP_FLOPS: u64 = 1 << 26;

/// The embedded suites: name, description, JSON.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("quick", include_str!("suites/quick.json")),
    ("standard", include_str!("suites/standard.json")),
    ("llm", include_str!("suites/llm.json")),
    ("sweep", include_str!("suites/sweep.json")),
];

/// A suite file as written (unknown fields are errors).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    schema: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Default per-row budget in seconds (CLI `--case-budget` overrides).
    #[serde(default)]
    case_budget_s: Option<f64>,
    /// Default whole-run budget in seconds (CLI `--run-budget` overrides).
    #[serde(default)]
    run_budget_s: Option<f64>,
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    op: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    batch: Option<i64>,
    #[serde(default)]
    m: Option<i64>,
    #[serde(default)]
    n: Option<i64>,
    #[serde(default)]
    k: Option<i64>,
    #[serde(default)]
    trans_b: Option<bool>,
    #[serde(default)]
    q_heads: Option<i64>,
    #[serde(default)]
    kv_heads: Option<i64>,
    #[serde(default)]
    q_len: Option<i64>,
    #[serde(default)]
    kv_len: Option<i64>,
    #[serde(default)]
    head_dim: Option<i64>,
    #[serde(default)]
    causal: Option<bool>,
    #[serde(default)]
    scale: Option<f64>,
    dtypes: Vec<String>,
    backends: Vec<String>,
    #[serde(default)]
    kernels: Option<Vec<String>>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
}

/// A validated case.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub problem: Problem,
    pub dtypes: Vec<DType>,
    pub backends: Vec<Backend>,
    /// Kernel globs (`None` = all kernels).
    pub kernels: Option<Vec<String>>,
    /// Output dtype (`None` = the input dtype).
    pub output: Option<DType>,
    pub seed: Option<u64>,
}

/// A validated suite.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    /// `embedded:NAME` or the file path.
    pub source: String,
    pub case_budget_s: Option<f64>,
    pub run_budget_s: Option<f64>,
    pub cases: Vec<Case>,
}

/// A suite that could not be used: the file, the case and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: case {index} ({name}): field `{field}`: {message}")]
    Field {
        file: String,
        index: usize,
        name: String,
        field: &'static str,
        message: String,
    },
    #[error("unknown suite `{0}`: not an embedded suite (quick, standard, llm, sweep) nor an existing file")]
    Unknown(String),
}

impl Suite {
    /// An embedded suite by name, or a user file by path.
    pub fn load(name_or_path: &str) -> Result<Suite, SuiteError> {
        if let Some((name, json)) = EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
            return Suite::parse(json, &format!("embedded:{name}"));
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(SuiteError::Unknown(name_or_path.to_string()));
        }
        let text = crate::input::read_to_string(path).map_err(|source| SuiteError::Read {
            file: name_or_path.to_string(),
            source,
        })?;
        Suite::parse(&text, name_or_path)
    }

    /// Parse and validate a suite document; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Suite, SuiteError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: SuiteFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = if path.is_empty() || path == "." {
                inner.to_string()
            } else {
                format!("at `{path}`: {inner}")
            };
            SuiteError::Parse {
                file: file.to_string(),
                message,
            }
        })?;
        if raw.schema != SUITE_SCHEMA {
            return Err(SuiteError::Parse {
                file: file.to_string(),
                message: format!("field `schema`: `{}` is not `{SUITE_SCHEMA}`", raw.schema),
            });
        }
        for (field, v) in [
            ("case_budget_s", raw.case_budget_s),
            ("run_budget_s", raw.run_budget_s),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(SuiteError::Parse {
                        file: file.to_string(),
                        message: format!(
                            "field `{field}`: {v} is not a positive number of seconds"
                        ),
                    });
                }
                if v > MAX_BUDGET_S {
                    return Err(SuiteError::Parse {
                        file: file.to_string(),
                        message: format!(
                            "field `{field}`: {} s is absurdly long (limit {MAX_BUDGET_S} s, a week)",
                            crate::limits::show_number(v)
                        ),
                    });
                }
            }
        }
        if raw.cases.is_empty() {
            return Err(SuiteError::Parse {
                file: file.to_string(),
                message: "field `cases`: the suite has no cases".into(),
            });
        }
        let named: Vec<Option<String>> = raw.cases.iter().map(|c| c.name.clone()).collect();
        let cases = raw
            .cases
            .into_iter()
            .enumerate()
            .map(|(i, c)| validate_case(file, i, c))
            .collect::<Result<Vec<_>, _>>()?;
        // Duplicates: a case measuring what an earlier one measures (its rows would appear
        // twice), or a name given to two cases (names are how people and compare tell them apart).
        let works: Vec<String> = cases
            .iter()
            .map(|c| {
                format!(
                    "{:?}",
                    (
                        &c.problem,
                        &c.dtypes,
                        &c.backends,
                        &c.kernels,
                        &c.output,
                        &c.seed
                    )
                )
            })
            .collect();
        for (j, c) in cases.iter().enumerate() {
            for (i, earlier) in cases[..j].iter().enumerate() {
                let message = if works[j] == works[i] {
                    format!(
                        "field `cases[{j}]`: the same workload as cases[{i}] (`{}`)",
                        earlier.name
                    )
                } else if named[j].is_some() && named[j] == named[i] {
                    format!(
                        "field `cases[{j}].name`: duplicate name {:?} (also cases[{i}])",
                        c.name
                    )
                } else {
                    continue;
                };
                return Err(SuiteError::Parse {
                    file: file.to_string(),
                    message,
                });
            }
        }
        Ok(Suite {
            name: raw.name,
            description: raw.description,
            source: file.to_string(),
            case_budget_s: raw.case_budget_s,
            run_budget_s: raw.run_budget_s,
            cases,
        })
    }
}

fn validate_case(file: &str, index: usize, c: CaseFile) -> Result<Case, SuiteError> {
    let name_for_errors = c.name.clone().unwrap_or_else(|| "unnamed".into());
    let err = |field: &'static str, message: String| SuiteError::Field {
        file: file.to_string(),
        index,
        name: name_for_errors.clone(),
        field,
        message,
    };
    let dim = |field: &'static str, v: Option<i64>, max: i64| -> Result<usize, SuiteError> {
        match v {
            None => Err(err(field, "missing (required for this op)".into())),
            Some(v) if v <= 0 => Err(err(field, format!("{v} is not a dimension ≥ 1"))),
            Some(v) if v > max => Err(err(field, format!("{v} is absurdly large (limit {max})"))),
            Some(v) => Ok(v as usize),
        }
    };
    let forbid = |field: &'static str, present: bool, op: &str| -> Result<(), SuiteError> {
        if present {
            Err(err(field, format!("not a field of a `{op}` case")))
        } else {
            Ok(())
        }
    };
    let batch = match c.batch {
        None => 1,
        Some(_) => dim("batch", c.batch, MAX_DIM)?,
    };
    let problem = match c.op.as_str() {
        "matmul" => {
            for (f, p) in [
                ("q_heads", c.q_heads.is_some()),
                ("kv_heads", c.kv_heads.is_some()),
                ("q_len", c.q_len.is_some()),
                ("kv_len", c.kv_len.is_some()),
                ("head_dim", c.head_dim.is_some()),
                ("causal", c.causal.is_some()),
                ("scale", c.scale.is_some()),
            ] {
                forbid(f, p, "matmul")?;
            }
            let (m, n, k) = (
                dim("m", c.m, MAX_DIM)?,
                dim("n", c.n, MAX_DIM)?,
                dim("k", c.k, MAX_DIM)?,
            );
            let mut p = MatmulProblem::new(m, n, k).with_batch(batch);
            if c.trans_b.unwrap_or(false) {
                p = p.transposed_b();
            }
            for (field, elems) in [("m", p.a_len()), ("n", p.b_len()), ("m", p.c_len())] {
                if elems as u64 * 4 > MAX_BUFFER_BYTES {
                    return Err(err(
                        field,
                        format!("a buffer of {elems} elements exceeds 16 GiB"),
                    ));
                }
            }
            Problem::Matmul(p)
        }
        "attention" => {
            for (f, p) in [
                ("m", c.m.is_some()),
                ("n", c.n.is_some()),
                ("k", c.k.is_some()),
                ("trans_b", c.trans_b.is_some()),
            ] {
                forbid(f, p, "attention")?;
            }
            let q_heads = dim("q_heads", c.q_heads, MAX_DIM)?;
            let kv_heads = dim("kv_heads", c.kv_heads, MAX_DIM)?;
            let q_len = dim("q_len", c.q_len, MAX_KV_LEN)?;
            let kv_len = dim("kv_len", c.kv_len, MAX_KV_LEN)?;
            let head_dim = dim("head_dim", c.head_dim, 1024)?;
            if !q_heads.is_multiple_of(kv_heads) {
                return Err(err(
                    "kv_heads",
                    format!("q_heads = {q_heads} is not a multiple of kv_heads = {kv_heads}"),
                ));
            }
            let causal = c.causal.unwrap_or(false);
            if causal && q_len > kv_len {
                return Err(err(
                    "q_len",
                    format!(
                        "causal with q_len = {q_len} > kv_len = {kv_len} leaves query rows without any key \
                         (the mask is aligned to the end)"
                    ),
                ));
            }
            let mut p = AttentionProblem::new(batch, q_heads, kv_heads, q_len, kv_len, head_dim)
                .causal(causal);
            if let Some(s) = c.scale {
                if !(s.is_finite() && s > 0.0) {
                    return Err(err("scale", format!("{s} is not a finite positive number")));
                }
                p.scale = s as f32;
            }
            for elems in [p.q_len_elems(), p.kv_len_elems()] {
                if elems as u64 * 4 > MAX_BUFFER_BYTES {
                    return Err(err(
                        "q_len",
                        format!("a buffer of {elems} elements exceeds 16 GiB"),
                    ));
                }
            }
            Problem::Attention(p)
        }
        other => {
            return Err(err(
                "op",
                format!("`{other}` is not an op (matmul, attention)"),
            ))
        }
    };
    if c.dtypes.is_empty() {
        return Err(err("dtypes", "empty list".into()));
    }
    let dtypes = c
        .dtypes
        .iter()
        .map(|d| d.parse::<DType>().map_err(|e| err("dtypes", e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if c.backends.is_empty() {
        return Err(err("backends", "empty list".into()));
    }
    let backends = c
        .backends
        .iter()
        .map(|b| parse_backend(b).map_err(|m| err("backends", m)))
        .collect::<Result<Vec<_>, _>>()?;
    let output = c
        .output
        .as_deref()
        .map(|o| o.parse::<DType>().map_err(|e| err("output", e.to_string())))
        .transpose()?;
    if let Some(k) = &c.kernels {
        if k.is_empty() || k.iter().any(|g| g.trim().is_empty()) {
            return Err(err("kernels", "empty kernel pattern".into()));
        }
    }
    let name = c
        .name
        .unwrap_or_else(|| format!("{}-{}", problem.op().name(), problem));
    Ok(Case {
        name,
        problem,
        dtypes,
        backends,
        kernels: c.kernels,
        output,
        seed: c.seed,
    })
}

pub fn parse_backend(s: &str) -> Result<Backend, String> {
    match s {
        "cpu" => Ok(Backend::Cpu),
        "gpu" => Ok(Backend::Gpu),
        other => Err(format!("`{other}` is not a backend (cpu, gpu)")),
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// A kernel matches a pattern by its full id, its family, or its short name (`packed`).
pub fn kernel_matches(pattern: &str, kernel: &dyn Kernel) -> bool {
    let id = kernel.identity();
    glob_match(pattern, &id.id())
        || glob_match(pattern, &id.family)
        || glob_match(pattern, id.short_name())
}

/// CLI filters intersected with each case's lists.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub dtypes: Option<Vec<DType>>,
    pub backends: Option<Vec<Backend>>,
    pub kernels: Option<Vec<String>>,
    /// Case-name globs (`--case`).
    pub cases: Option<Vec<String>>,
}

/// One row of the plan: a case × kernel × dtype.
pub struct PlannedRow<'a> {
    pub case_index: usize,
    pub case: &'a Case,
    pub kernel: &'a dyn Kernel,
    pub precision: Precision,
    pub backend: Backend,
}

/// The plan: rows to run, and what was left out and why (counted, printed with the plan).
pub struct Plan<'a> {
    pub rows: Vec<PlannedRow<'a>>,
    /// Baseline rows above [`BASELINE_WORK_CAP_FLOPS`].
    pub omitted_baseline: usize,
    /// Cases × dtypes × backends for which no kernel of this build exists.
    pub no_kernel: Vec<String>,
}

impl<'a> Plan<'a> {
    pub fn new(suite: &'a Suite, registry: &'a Registry, filters: &Filters) -> Plan<'a> {
        let mut rows = Vec::new();
        let mut omitted_baseline = 0;
        let mut no_kernel = Vec::new();
        for (case_index, case) in suite.cases.iter().enumerate() {
            if filters
                .cases
                .as_ref()
                .is_some_and(|g| !g.iter().any(|p| glob_match(p, &case.name)))
            {
                continue;
            }
            let op: Op = case.problem.op();
            for &dtype in &case.dtypes {
                if filters.dtypes.as_ref().is_some_and(|d| !d.contains(&dtype)) {
                    continue;
                }
                let precision = Precision {
                    input: dtype,
                    accum: DType::F32,
                    output: case.output.unwrap_or(dtype),
                };
                for &backend in &case.backends {
                    if filters
                        .backends
                        .as_ref()
                        .is_some_and(|b| !b.contains(&backend))
                    {
                        continue;
                    }
                    let mut found = false;
                    for kernel in registry.kernels() {
                        let id = kernel.identity();
                        if id.op != op
                            || id.backend != backend
                            || id.precision != precision
                            || !registry.is_selected(kernel.as_ref())
                        {
                            continue;
                        }
                        if case
                            .kernels
                            .as_ref()
                            .is_some_and(|g| !g.iter().any(|p| kernel_matches(p, kernel.as_ref())))
                            || filters.kernels.as_ref().is_some_and(|g| {
                                !g.iter().any(|p| kernel_matches(p, kernel.as_ref()))
                            })
                        {
                            continue;
                        }
                        found = true;
                        if kernel.is_baseline()
                            && case.problem.work(precision).flops > BASELINE_WORK_CAP_FLOPS
                        {
                            omitted_baseline += 1;
                            continue;
                        }
                        rows.push(PlannedRow {
                            case_index,
                            case,
                            kernel: kernel.as_ref(),
                            precision,
                            backend,
                        });
                    }
                    if !found {
                        no_kernel.push(format!("{} {} {}", case.name, precision, backend));
                    }
                }
            }
        }
        Plan {
            rows,
            omitted_baseline,
            no_kernel,
        }
    }
}

impl fmt::Display for PlannedRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {}  {}",
            self.case.name,
            self.kernel.identity().id(),
            self.case.problem
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfledger_kernels::RegistryOptions;

    #[test]
    fn embedded_suites_parse() {
        for (name, _) in EMBEDDED {
            let s = Suite::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&s.name, name);
            assert!(!s.cases.is_empty());
        }
    }

    fn one_case(case: &str) -> Result<Suite, SuiteError> {
        Suite::parse(
            &format!(r#"{{"schema": "perfledger.suite/1", "name": "t", "cases": [{case}]}}"#),
            "t.json",
        )
    }

    #[test]
    fn defaults_apply() {
        let s = one_case(
            r#"{"op": "matmul", "m": 4, "n": 5, "k": 6, "dtypes": ["bf16"], "backends": ["cpu"]}"#,
        )
        .unwrap();
        let c = &s.cases[0];
        let Problem::Matmul(p) = c.problem else {
            panic!()
        };
        assert_eq!((p.batch, p.trans_b), (1, false));
        assert_eq!(c.output, None);
        assert_eq!(c.name, "matmul-4x5x6");
        let s = one_case(r#"{"op": "attention", "q_heads": 4, "kv_heads": 2, "q_len": 8, "kv_len": 8, "head_dim": 64, "dtypes": ["f16"], "backends": ["cpu"]}"#).unwrap();
        let Problem::Attention(a) = s.cases[0].problem else {
            panic!()
        };
        assert!(!a.causal);
        assert_eq!(a.scale, 0.125);
        assert_eq!(a.batch, 1);
    }

    #[test]
    fn bad_cases_name_file_case_and_field() {
        let cases = [
            (
                r#"{"op": "matmul", "m": 0, "n": 5, "k": 6, "dtypes": ["bf16"], "backends": ["cpu"]}"#,
                "`m`",
            ),
            (
                r#"{"op": "matmul", "m": -3, "n": 5, "k": 6, "dtypes": ["bf16"], "backends": ["cpu"]}"#,
                "`m`",
            ),
            (
                r#"{"op": "matmul", "m": 4, "n": 99999999999, "k": 6, "dtypes": ["bf16"], "backends": ["cpu"]}"#,
                "absurd",
            ),
            (
                r#"{"op": "matmul", "m": 4, "n": 5, "k": 6, "dtypes": ["fp16"], "backends": ["cpu"]}"#,
                "`dtypes`",
            ),
            (
                r#"{"op": "matmul", "m": 4, "n": 5, "k": 6, "dtypes": ["f16"], "backends": ["tpu"]}"#,
                "`backends`",
            ),
            (
                r#"{"op": "matmul", "m": 4, "n": 5, "k": 6, "dtypes": ["f16"], "backends": ["cpu"], "mm": 3}"#,
                "mm",
            ),
            (
                r#"{"op": "attention", "q_heads": 6, "kv_heads": 4, "q_len": 8, "kv_len": 8, "head_dim": 64, "dtypes": ["f16"], "backends": ["cpu"]}"#,
                "`kv_heads`",
            ),
            (
                r#"{"op": "attention", "q_heads": 4, "kv_heads": 4, "q_len": 9, "kv_len": 8, "head_dim": 64, "causal": true, "dtypes": ["f16"], "backends": ["cpu"]}"#,
                "without any key",
            ),
            (
                r#"{"op": "matmul", "m": 4, "n": 5, "dtypes": ["f16"], "backends": ["cpu"]}"#,
                "`k`: missing",
            ),
            (
                r#"{"op": "conv", "dtypes": ["f16"], "backends": ["cpu"]}"#,
                "`op`",
            ),
        ];
        for (case, want) in cases {
            let e = one_case(case).expect_err(case).to_string();
            assert!(e.starts_with("t.json"), "{e}");
            assert!(e.contains(want), "{e} should mention {want}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let e = Suite::parse(
            r#"{"schema": "perfledger.suite/2", "name": "x", "cases": []}"#,
            "x.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("schema"), "{e}");
        let e = Suite::parse(
            r#"{"schema": "perfledger.suite/1", "name": "x", "cases": [], "extra": 1}"#,
            "x.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("packed", "packed"));
        assert!(glob_match(
            "matmul.cpu.*",
            "matmul.cpu.packed.avx2fma.bf16-f32-bf16"
        ));
        assert!(glob_match(
            "*bf16*",
            "matmul.cpu.packed.avx2fma.bf16-f32-bf16"
        ));
        assert!(!glob_match("naive", "packed"));
        assert!(glob_match("p?cked", "packed"));
    }

    #[test]
    fn plan_filters_and_caps_baselines() {
        let reg = Registry::new(&RegistryOptions::default());
        let s = one_case(r#"{"op": "matmul", "m": 2048, "n": 2048, "k": 2048, "dtypes": ["bf16", "f32"], "backends": ["cpu"]}"#).unwrap();
        let plan = Plan::new(&s, &reg, &Filters::default());
        // naive is above the cap: only the packed kernel of the selected ISA, per dtype, and for
        // bf16 on AVX-512F CPUs with AVX512_BF16 the vdpbf16ps kernel beside it, and with
        // AMX-BF16 the AMX kernel too.
        // The in-process peers of the dtype run beside them (unsupported ones are rows too).
        let avx512 = reg.isa_selected() == perfledger_kernels::isa::Isa::Avx512f;
        let bf16dot = avx512 && perfledger_kernels::isa::detected().avx512bf16;
        let amx = avx512 && perfledger_kernels::cpu::matmul::Path::Amx.available();
        let peers = |d: DType| {
            reg.kernels()
                .iter()
                .filter(|k| k.peer().is_some() && k.identity().precision.input == d)
                .count()
        };
        let planned_peers = |d: DType| {
            reg.kernels()
                .iter()
                .filter(|k| k.peer().is_some() && k.identity().precision == Precision::same(d))
                .count()
        };
        assert_eq!(peers(DType::F32), 3, "OpenBLAS sgemm, ndarray, gemm");
        assert_eq!(
            peers(DType::BF16),
            2,
            "OpenBLAS sbgemm, f32 and bf16 output"
        );
        assert_eq!(
            plan.rows.len(),
            2 + usize::from(bf16dot)
                + usize::from(amx)
                + planned_peers(DType::F32)
                + planned_peers(DType::BF16)
        );
        assert!(plan.rows.iter().all(|r| {
            r.kernel.peer().is_some() || r.kernel.identity().family == "matmul.cpu.packed"
        }));
        assert_eq!(plan.omitted_baseline, 2);
        let only_f32 = Filters {
            dtypes: Some(vec![DType::F32]),
            ..Default::default()
        };
        assert_eq!(
            Plan::new(&s, &reg, &only_f32).rows.len(),
            1 + planned_peers(DType::F32)
        );
        let naive = Filters {
            kernels: Some(vec!["naive".into()]),
            ..Default::default()
        };
        assert_eq!(Plan::new(&s, &reg, &naive).rows.len(), 0);
        let name = s.cases[0].name.clone();
        let this_case = Filters {
            cases: Some(vec![format!("{}*", &name[..name.len() - 1])]),
            ..Default::default()
        };
        assert_eq!(Plan::new(&s, &reg, &this_case).rows.len(), plan.rows.len());
        let other_case = Filters {
            cases: Some(vec!["no-such-case".into()]),
            ..Default::default()
        };
        assert_eq!(Plan::new(&s, &reg, &other_case).rows.len(), 0);
    }
}
