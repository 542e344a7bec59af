//! Row shapes: matmul and attention, read strictly (a shape that mixes the two, or has neither,
//! is refused), validated, and turned back into problems.

use super::*;

/// A matmul shape: `C[b] = A[b]·op(B[b])`, `A` `m×k`, `C` `m×n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulShape {
    #[serde(default = "one")]
    pub batch: u64,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    #[serde(default)]
    pub trans_b: bool,
}

impl From<&MatmulProblem> for MatmulShape {
    fn from(p: &MatmulProblem) -> Self {
        MatmulShape {
            batch: p.batch as u64,
            m: p.m as u64,
            n: p.n as u64,
            k: p.k as u64,
            trans_b: p.trans_b,
        }
    }
}

impl From<&AttentionProblem> for AttentionShape {
    fn from(p: &AttentionProblem) -> Self {
        AttentionShape {
            batch: p.batch as u64,
            q_heads: p.q_heads as u64,
            kv_heads: p.kv_heads as u64,
            q_len: p.q_len as u64,
            kv_len: p.kv_len as u64,
            head_dim: p.head_dim as u64,
            causal: p.causal,
            scale: p.scale as f64,
        }
    }
}

impl From<&Problem> for Shape {
    fn from(p: &Problem) -> Self {
        match p {
            Problem::Matmul(p) => Shape::Matmul(p.into()),
            Problem::Attention(p) => Shape::Attention(p.into()),
        }
    }
}

/// An attention (forward) shape; `q_heads` is a multiple of `kv_heads` (GQA/MQA). A causal mask
/// is aligned to the end (query `i` sees keys up to `kv_len − q_len + i`), so causal needs
/// `q_len ≤ kv_len`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionShape {
    #[serde(default = "one")]
    pub batch: u64,
    pub q_heads: u64,
    pub kv_heads: u64,
    pub q_len: u64,
    pub kv_len: u64,
    pub head_dim: u64,
    #[serde(default)]
    pub causal: bool,
    /// Softmax scale (usually `1/√head_dim`).
    pub scale: f64,
}

pub(crate) fn one() -> u64 {
    1
}

pub(crate) const MATMUL_KEYS: [&str; 3] = ["m", "n", "k"];
pub(crate) const ATTENTION_KEYS: [&str; 5] = ["q_heads", "kv_heads", "q_len", "kv_len", "head_dim"];

/// A row's shape; which one is told by its fields (and must match the row's `op`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Shape {
    Matmul(MatmulShape),
    Attention(AttentionShape),
}

impl Shape {
    /// A short form (`512x512x512`, `64x1024x512 Bt`, `h8/2 q256 kv256 d64 causal`), as the
    /// summary and the report write shapes.
    pub fn short(&self) -> String {
        match self {
            Shape::Matmul(s) => format!(
                "{}{}x{}x{}{}",
                if s.batch > 1 {
                    format!("{}×", s.batch)
                } else {
                    String::new()
                },
                s.m,
                s.n,
                s.k,
                if s.trans_b { " Bt" } else { "" }
            ),
            Shape::Attention(s) => format!(
                "{}h{}/{} q{} kv{} d{}{}",
                if s.batch > 1 {
                    format!("b{} ", s.batch)
                } else {
                    String::new()
                },
                s.q_heads,
                s.kv_heads,
                s.q_len,
                s.kv_len,
                s.head_dim,
                if s.causal { " causal" } else { "" }
            ),
        }
    }

    pub fn op(&self) -> Op {
        match self {
            Shape::Matmul(_) => Op::Matmul,
            Shape::Attention(_) => Op::Attention,
        }
    }

    /// Every dimension ≥ 1; attention: `q_heads` a multiple of `kv_heads`, `scale` finite and > 0.
    pub fn validate(&self) -> Result<(), RowError> {
        let dims: Vec<(&str, u64)> = match self {
            Shape::Matmul(s) => vec![("batch", s.batch), ("m", s.m), ("n", s.n), ("k", s.k)],
            Shape::Attention(s) => vec![
                ("batch", s.batch),
                ("q_heads", s.q_heads),
                ("kv_heads", s.kv_heads),
                ("q_len", s.q_len),
                ("kv_len", s.kv_len),
                ("head_dim", s.head_dim),
            ],
        };
        for (name, v) in dims {
            if v == 0 {
                return Err(RowError::new(format!("shape.{name}"), "must be at least 1"));
            }
            // The suites' limits (a larger dimension is a typo or a hostile file, and its FLOPs
            // would overflow the arithmetic of reports).
            let max = if name == "kv_len" {
                crate::limits::MAX_KV_LEN
            } else {
                crate::limits::MAX_DIM
            } as u64;
            if v > max {
                return Err(RowError::new(
                    format!("shape.{name}"),
                    format!("{v} is absurdly large (limit {max})"),
                ));
            }
        }
        if let Shape::Attention(s) = self {
            if s.q_heads % s.kv_heads != 0 {
                return Err(RowError::new(
                    "shape.kv_heads",
                    format!(
                        "q_heads = {} is not a multiple of kv_heads = {}",
                        s.q_heads, s.kv_heads
                    ),
                ));
            }
            if !(s.scale.is_finite() && s.scale > 0.0) {
                return Err(RowError::new(
                    "shape.scale",
                    format!("{} is not finite and > 0", s.scale),
                ));
            }
            if s.causal && s.q_len > s.kv_len {
                return Err(RowError::new(
                    "shape.q_len",
                    format!(
                        "causal with q_len = {} > kv_len = {} leaves query rows without keys",
                        s.q_len, s.kv_len
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The problem this shape describes (dense leading dimensions), validated by the kernels'
    /// rules. Its [`Problem::work`] gives the FLOPs and minimal bytes by the documented
    /// conventions.
    pub fn problem(&self) -> Result<Problem, RowError> {
        self.validate()?;
        let dim = |name: &str, v: u64| {
            usize::try_from(v).map_err(|_| RowError::new(format!("shape.{name}"), "too large"))
        };
        let problem = match self {
            Shape::Matmul(s) => {
                let p = MatmulProblem::new(dim("m", s.m)?, dim("n", s.n)?, dim("k", s.k)?)
                    .with_batch(dim("batch", s.batch)?);
                Problem::Matmul(if s.trans_b { p.transposed_b() } else { p })
            }
            Shape::Attention(s) => {
                let mut p = AttentionProblem::new(
                    dim("batch", s.batch)?,
                    dim("q_heads", s.q_heads)?,
                    dim("kv_heads", s.kv_heads)?,
                    dim("q_len", s.q_len)?,
                    dim("kv_len", s.kv_len)?,
                    dim("head_dim", s.head_dim)?,
                )
                .causal(s.causal);
                p.scale = s.scale as f32;
                Problem::Attention(p)
            }
        };
        problem
            .validate()
            .map_err(|e| RowError::new("shape", e.to_string()))?;
        Ok(problem)
    }
}

impl From<MatmulShape> for Shape {
    fn from(s: MatmulShape) -> Self {
        Shape::Matmul(s)
    }
}

impl From<AttentionShape> for Shape {
    fn from(s: AttentionShape) -> Self {
        Shape::Attention(s)
    }
}

impl<'de> Deserialize<'de> for Shape {
    /// Decided by the fields present (so an error names the missing or unknown field, not "no
    /// variant matched").
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let is_matmul = MATMUL_KEYS.iter().any(|k| map.contains_key(*k));
        let is_attention = ATTENTION_KEYS.iter().any(|k| map.contains_key(*k));
        match (is_matmul, is_attention) {
            (true, false) => serde_json::from_value(Value::Object(map))
                .map(Shape::Matmul)
                .map_err(|e| D::Error::custom(format!("matmul shape: {e}"))),
            (false, true) => serde_json::from_value(Value::Object(map))
                .map(Shape::Attention)
                .map_err(|e| D::Error::custom(format!("attention shape: {e}"))),
            (true, true) => Err(D::Error::custom(
                "shape mixes matmul fields (m, n, k) with attention fields (q_heads, kv_heads, \
                 q_len, kv_len, head_dim)",
            )),
            (false, false) => Err(D::Error::custom(
                "shape has neither matmul fields (m, n, k) nor attention fields (q_heads, \
                 kv_heads, q_len, kv_len, head_dim)",
            )),
        }
    }
}
