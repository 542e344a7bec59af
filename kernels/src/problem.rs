//! Problems as plain data: what to compute, independent of how.

use crate::dtype::DType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The precision chain of a kernel: storage type of the inputs, the accumulator, and the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Precision {
    pub input: DType,
    pub accum: DType,
    pub output: DType,
}

impl Precision {
    /// Inputs and output in `dtype`, accumulation in f32 (the default path on every backend).
    pub fn same(dtype: DType) -> Self {
        Precision {
            input: dtype,
            accum: DType::F32,
            output: dtype,
        }
    }

    /// Inputs in `dtype`, f32 accumulation and f32 output.
    pub fn widening(dtype: DType) -> Self {
        Precision {
            input: dtype,
            accum: DType::F32,
            output: DType::F32,
        }
    }
}

impl fmt::Display for Precision {
    /// `input-accum-output`, the spelling used inside kernel ids (`bf16-f32-bf16`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.input, self.accum, self.output)
    }
}

/// The work a problem represents. `flops` follows the documented convention of each op
/// (matmul: `2·M·N·K` per batch); `min_bytes` counts each input read once and each output written
/// once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    pub flops: u64,
    pub min_bytes: u64,
}

impl Work {
    /// Arithmetic intensity in FLOP per byte.
    pub fn intensity(&self) -> f64 {
        self.flops as f64 / self.min_bytes.max(1) as f64
    }
}

/// A problem that cannot be run, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemError {
    #[error("`{field}` is zero: a matmul needs every dimension ≥ 1")]
    ZeroDim { field: &'static str },
    #[error("`{field}` = {value} is smaller than the row length {min}")]
    LeadingDim {
        field: &'static str,
        value: usize,
        min: usize,
    },
    #[error("the problem is too large: {what} overflows usize")]
    TooLarge { what: &'static str },
    #[error("buffer `{name}` has {actual} elements, the problem needs {needed}")]
    BufferSize {
        name: &'static str,
        actual: usize,
        needed: usize,
    },
}

/// `C[b] = A[b] · op(B[b])` for `b` in `0..batch`, all row-major.
///
/// - `A` is `[m, k]` with leading dimension `lda ≥ k`.
/// - `B` is `[k, n]` (`trans_b = false`, `ldb ≥ n`) or stored transposed as `[n, k]`
///   (`trans_b = true`, `ldb ≥ k`), the layout of LLM weights (`[out, in]`).
/// - `C` is `[m, n]` with `ldc ≥ n`.
///
/// Batches are stored back to back: batch `b` of A starts at `b · m · lda`, and likewise for B
/// (`k · ldb` or `n · ldb`) and C (`m · ldc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatmulProblem {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_b: bool,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
}

impl MatmulProblem {
    /// A dense (packed leading dimensions) single-batch problem with B stored `[k, n]`.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        MatmulProblem {
            batch: 1,
            m,
            n,
            k,
            trans_b: false,
            lda: k,
            ldb: n,
            ldc: n,
        }
    }

    /// The same shape with B stored transposed (`[n, k]`), leading dimensions dense.
    pub fn transposed_b(mut self) -> Self {
        self.trans_b = true;
        self.ldb = self.k;
        self
    }

    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    pub fn with_leading_dims(mut self, lda: usize, ldb: usize, ldc: usize) -> Self {
        self.lda = lda;
        self.ldb = ldb;
        self.ldc = ldc;
        self
    }

    /// Rows of B as stored.
    pub fn b_rows(&self) -> usize {
        if self.trans_b {
            self.n
        } else {
            self.k
        }
    }

    /// Elements per batch of each operand, as stored (including leading-dimension padding).
    pub fn a_stride(&self) -> usize {
        self.m * self.lda
    }
    pub fn b_stride(&self) -> usize {
        self.b_rows() * self.ldb
    }
    pub fn c_stride(&self) -> usize {
        self.m * self.ldc
    }

    /// Buffer lengths (elements) of A, B and C.
    pub fn a_len(&self) -> usize {
        self.batch * self.a_stride()
    }
    pub fn b_len(&self) -> usize {
        self.batch * self.b_stride()
    }
    pub fn c_len(&self) -> usize {
        self.batch * self.c_stride()
    }

    /// Check dimensions and leading dimensions. Every kernel calls this before touching memory.
    pub fn validate(&self) -> Result<(), ProblemError> {
        for (field, v) in [
            ("batch", self.batch),
            ("m", self.m),
            ("n", self.n),
            ("k", self.k),
        ] {
            if v == 0 {
                return Err(ProblemError::ZeroDim { field });
            }
        }
        let b_row = if self.trans_b { self.k } else { self.n };
        for (field, value, min) in [
            ("lda", self.lda, self.k),
            ("ldb", self.ldb, b_row),
            ("ldc", self.ldc, self.n),
        ] {
            if value < min {
                return Err(ProblemError::LeadingDim { field, value, min });
            }
        }
        let sizes = [
            self.batch
                .checked_mul(self.m)
                .and_then(|x| x.checked_mul(self.lda)),
            self.batch
                .checked_mul(self.b_rows())
                .and_then(|x| x.checked_mul(self.ldb)),
            self.batch
                .checked_mul(self.m)
                .and_then(|x| x.checked_mul(self.ldc)),
        ];
        if sizes.iter().any(Option::is_none) {
            return Err(ProblemError::TooLarge {
                what: "a buffer length",
            });
        }
        Ok(())
    }

    /// Check that buffers hold the problem (after [`validate`](Self::validate)).
    pub fn check_buffers(&self, a: usize, b: usize, c: usize) -> Result<(), ProblemError> {
        self.validate()?;
        for (name, actual, needed) in [
            ("A", a, self.a_len()),
            ("B", b, self.b_len()),
            ("C", c, self.c_len()),
        ] {
            if actual < needed {
                return Err(ProblemError::BufferSize {
                    name,
                    actual,
                    needed,
                });
            }
        }
        Ok(())
    }

    /// `2·M·N·K` per batch; minimal bytes: A and B read once, C written once (dense).
    pub fn work(&self, precision: Precision) -> Work {
        let (b, m, n, k) = (
            self.batch as u64,
            self.m as u64,
            self.n as u64,
            self.k as u64,
        );
        let inb = precision.input.size_bytes() as u64;
        let outb = precision.output.size_bytes() as u64;
        Work {
            flops: 2 * b * m * n * k,
            min_bytes: b * ((m * k + k * n) * inb + m * n * outb),
        }
    }
}

impl fmt::Display for MatmulProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.batch != 1 {
            write!(f, "{}x", self.batch)?;
        }
        write!(f, "{}x{}x{}", self.m, self.n, self.k)?;
        if self.trans_b {
            f.write_str("-bt")?;
        }
        Ok(())
    }
}

/// Attention forward `O = softmax(scale · Q·Kᵀ + mask) · V` per batch and query head.
///
/// Layout: `[batch, heads, seq, head_dim]`, contiguous: Q and O are `[batch, q_heads, q_len,
/// head_dim]`, K and V `[batch, kv_heads, kv_len, head_dim]`. GQA/MQA: query head `h` reads KV head
/// `h / (q_heads / kv_heads)`; K/V are shared by the group, never copied.
///
/// Causal mask with `q_len ≤ kv_len` is aligned to the end, as in KV-cache decoding: query `i`
/// sees keys `0..=kv_len − q_len + i`. A causal shape with `q_len > kv_len` would leave the first
/// queries without any key and is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionProblem {
    pub batch: usize,
    pub q_heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
    pub causal: bool,
    pub scale: f32,
}

/// An attention shape that cannot be run, with the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttentionError {
    #[error("`{field}` is zero: attention needs every dimension ≥ 1")]
    ZeroDim { field: &'static str },
    #[error("`q_heads` = {q_heads} is not a multiple of `kv_heads` = {kv_heads}")]
    Heads { q_heads: usize, kv_heads: usize },
    #[error(
        "causal attention with `q_len` = {q_len} > `kv_len` = {kv_len} leaves query rows without \
         any key (the mask is aligned to the end: query i sees keys up to kv_len − q_len + i)"
    )]
    CausalEmptyRow { q_len: usize, kv_len: usize },
    #[error("`scale` = {0} is not a finite positive number")]
    Scale(f32),
    #[error("the problem is too large: a buffer length overflows usize")]
    TooLarge,
}

impl AttentionProblem {
    /// Non-causal, scale `1/√head_dim`.
    pub fn new(
        batch: usize,
        q_heads: usize,
        kv_heads: usize,
        q_len: usize,
        kv_len: usize,
        head_dim: usize,
    ) -> Self {
        AttentionProblem {
            batch,
            q_heads,
            kv_heads,
            q_len,
            kv_len,
            head_dim,
            causal: false,
            scale: 1.0 / (head_dim as f32).sqrt(),
        }
    }

    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    pub fn validate(&self) -> Result<(), AttentionError> {
        for (field, v) in [
            ("batch", self.batch),
            ("q_heads", self.q_heads),
            ("kv_heads", self.kv_heads),
            ("q_len", self.q_len),
            ("kv_len", self.kv_len),
            ("head_dim", self.head_dim),
        ] {
            if v == 0 {
                return Err(AttentionError::ZeroDim { field });
            }
        }
        if !self.q_heads.is_multiple_of(self.kv_heads) {
            return Err(AttentionError::Heads {
                q_heads: self.q_heads,
                kv_heads: self.kv_heads,
            });
        }
        if self.causal && self.q_len > self.kv_len {
            return Err(AttentionError::CausalEmptyRow {
                q_len: self.q_len,
                kv_len: self.kv_len,
            });
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(AttentionError::Scale(self.scale));
        }
        let q = self
            .batch
            .checked_mul(self.q_heads)
            .and_then(|x| x.checked_mul(self.q_len));
        let kv = self
            .batch
            .checked_mul(self.kv_heads)
            .and_then(|x| x.checked_mul(self.kv_len));
        match (
            q.and_then(|x| x.checked_mul(self.head_dim)),
            kv.and_then(|x| x.checked_mul(self.head_dim)),
        ) {
            (Some(_), Some(_)) => Ok(()),
            _ => Err(AttentionError::TooLarge),
        }
    }

    /// Query heads per KV head.
    pub fn group(&self) -> usize {
        self.q_heads / self.kv_heads.max(1)
    }

    /// Number of keys query row `i` attends to (all of them unless causal).
    pub fn keys_for_query(&self, i: usize) -> usize {
        if self.causal {
            (self.kv_len - self.q_len + i + 1).min(self.kv_len)
        } else {
            self.kv_len
        }
    }

    /// Unmasked (query, key) pairs of one head.
    pub fn unmasked_pairs(&self) -> u64 {
        let (q, kv) = (self.q_len as u64, self.kv_len as u64);
        if self.causal {
            q * (kv - q) + q * (q + 1) / 2
        } else {
            q * kv
        }
    }

    pub fn q_len_elems(&self) -> usize {
        self.batch * self.q_heads * self.q_len * self.head_dim
    }
    pub fn kv_len_elems(&self) -> usize {
        self.batch * self.kv_heads * self.kv_len * self.head_dim
    }

    /// Useful FLOPs `4 · head_dim · unmasked pairs` per query head (Q·Kᵀ and P·V; softmax not
    /// counted); minimal bytes: Q, K, V read once, O written once.
    pub fn work(&self, precision: Precision) -> Work {
        let heads = (self.batch * self.q_heads) as u64;
        let inb = precision.input.size_bytes() as u64;
        let outb = precision.output.size_bytes() as u64;
        Work {
            flops: 4 * self.head_dim as u64 * self.unmasked_pairs() * heads,
            min_bytes: (self.q_len_elems() + 2 * self.kv_len_elems()) as u64 * inb
                + self.q_len_elems() as u64 * outb,
        }
    }
}

impl fmt::Display for AttentionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "b{}-h{}/{}-q{}-kv{}-d{}",
            self.batch, self.q_heads, self.kv_heads, self.q_len, self.kv_len, self.head_dim
        )?;
        if self.causal {
            f.write_str("-causal")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_work_counts_unmasked_pairs() {
        let p = AttentionProblem::new(1, 16, 16, 1024, 1024, 64);
        let w = p.work(Precision::same(DType::BF16));
        assert_eq!(w.flops, 4 * 64 * 1024 * 1024 * 16);
        let c = p.causal(true);
        // 1024·1025/2 pairs per head.
        assert_eq!(
            c.work(Precision::same(DType::BF16)).flops,
            4 * 64 * (1024 * 1025 / 2) * 16
        );
        // Decode-style: q_len 4 at the end of kv_len 10 → 7 + 8 + 9 + 10 keys.
        let d = AttentionProblem::new(1, 1, 1, 4, 10, 8).causal(true);
        assert_eq!(d.unmasked_pairs(), 34);
        assert_eq!(d.keys_for_query(0), 7);
        assert_eq!(d.keys_for_query(3), 10);
    }

    #[test]
    fn attention_shapes_are_validated() {
        assert!(matches!(
            AttentionProblem::new(1, 6, 4, 8, 8, 64).validate(),
            Err(AttentionError::Heads { .. })
        ));
        assert!(matches!(
            AttentionProblem::new(1, 4, 4, 9, 8, 64)
                .causal(true)
                .validate(),
            Err(AttentionError::CausalEmptyRow { .. })
        ));
        assert!(AttentionProblem::new(1, 4, 4, 9, 8, 64).validate().is_ok());
        assert!(matches!(
            AttentionProblem::new(1, 4, 0, 9, 8, 64).validate(),
            Err(AttentionError::ZeroDim { field: "kv_heads" })
        ));
    }

    #[test]
    fn work_of_square_bf16() {
        let p = MatmulProblem::new(2048, 2048, 2048);
        let w = p.work(Precision::same(DType::BF16));
        assert_eq!(w.flops, 17_179_869_184);
        assert_eq!(w.min_bytes, 25_165_824);
    }

    #[test]
    fn zero_dims_and_short_leading_dims_are_errors() {
        assert_eq!(
            MatmulProblem::new(0, 4, 4).validate(),
            Err(ProblemError::ZeroDim { field: "m" })
        );
        assert_eq!(
            MatmulProblem::new(4, 4, 0).validate(),
            Err(ProblemError::ZeroDim { field: "k" })
        );
        let p = MatmulProblem::new(4, 8, 4).with_leading_dims(4, 7, 8);
        assert!(matches!(
            p.validate(),
            Err(ProblemError::LeadingDim { field: "ldb", .. })
        ));
        let p = MatmulProblem::new(4, 8, 6).transposed_b();
        assert_eq!(p.ldb, 6);
        assert!(p.validate().is_ok());
        assert!(MatmulProblem::new(usize::MAX / 2, 4, 4).validate().is_err());
    }

    #[test]
    fn precision_spelling() {
        assert_eq!(Precision::same(DType::BF16).to_string(), "bf16-f32-bf16");
        assert_eq!(Precision::widening(DType::F16).to_string(), "f16-f32-f32");
    }
}
