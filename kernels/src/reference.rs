//! Float64 references: obviously correct and slow.
//!
//! References are computed from the *stored* (rounded) inputs, never from the f32 values they were
//! rounded from: every storage dtype widens to f32 exactly ([`Element::to_f32`]), so the operands
//! are first widened to f32 copies and every product and sum is then formed in f64. The f64
//! rounding error (about `K · 2^-53 · |A|·|B|`) is 2^-29 of the tightest bound checked against
//! it (f32 accumulation), so the reference counts as exact.
//!
//! Besides the product itself each function returns the matching product of absolute values,
//! `|A|·|op(B)|`: the scale of the componentwise error bound in [`crate::verify`].

use crate::dtype::{Element, Tensor};
use crate::problem::MatmulProblem;
use crate::with_tensor;
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use rayon::prelude::*;
use std::any::Any;
use std::sync::{Arc, Mutex, Weak};

/// `len` elements of `t` starting at `start`, widened exactly to f32.
///
/// Panics if the range is out of bounds.
pub fn widen_range(t: &Tensor, start: usize, len: usize) -> Vec<f32> {
    with_tensor!(t, v => {
        let mut out = vec![0f32; len];
        Element::slice_to_f32(&v[start..start + len], &mut out);
        out
    })
}

/// One batch of a matmul's operands, A and B as stored (leading-dimension padding included),
/// widened exactly to f32: the operands of every reference product of that batch.
///
/// Widening once per batch keeps the inner loops free of dtype conversions and costs one f32 copy
/// of A and B (the f16/bf16 tensors themselves are half that).
pub struct MatmulOperands {
    p: MatmulProblem,
    a: Vec<f32>,
    b: Vec<f32>,
}

/// The most bytes of references [`shared_reference`] keeps (oldest dropped first): the products
/// of a 2048³ case (64 MiB) and a few smaller ones.
pub const PRODUCT_CACHE_BYTES: usize = 256 << 20;

/// Rows up to which [`MatmulOperands::product`] runs the reference loop instead of a dgemm on f64
/// copies of the operands (a GEMV's f64 copy of B alone is 8·n·k bytes).
pub const LOOP_PRODUCT_MAX_M: usize = 8;
/// Columns of a parallel task of the loop product.
const LOOP_PRODUCT_COLUMNS: usize = 256;

/// Drop every reference [`shared_reference`] keeps (the runner does when it moves to the next
/// case, whose inputs are new).
pub fn clear_product_cache() {
    REFERENCES.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Which reference of a matmul's inputs an entry of the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceKind {
    /// [`MatmulOperands::product`] of one batch.
    Full { batch: usize },
    /// What the sampled check takes from the inputs alone (its random vectors' products and
    /// its sampled rows), for a seed, a number of rows and of vectors.
    Sampled {
        seed: u64,
        rows: usize,
        vectors: usize,
    },
}

/// One entry of the reference cache: the problem, the kind, the inputs it was computed from, and
/// the reference.
///
/// The inputs are held as [`Weak`] references: they identify the tensors without keeping their
/// values alive, and while a `Weak` lives its allocation is not freed, so no other tensor can
/// take its address. A `Tensor` has no interior mutability, so a tensor behind an `Arc` keeps its
/// values for as long as it lives.
struct CachedReference {
    p: MatmulProblem,
    kind: ReferenceKind,
    a: Weak<Tensor>,
    b: Weak<Tensor>,
    value: Arc<dyn Any + Send + Sync>,
    bytes: usize,
}

impl CachedReference {
    /// Whether its inputs are still alive somewhere (else nothing can ask for it again).
    fn live(&self) -> bool {
        self.a.strong_count() > 0 && self.b.strong_count() > 0
    }
}

/// [`shared_reference`]'s entries, oldest first.
static REFERENCES: Mutex<Vec<CachedReference>> = Mutex::new(Vec::new());

/// A reference computed from a matmul's inputs alone, computed once per inputs: verifying the
/// same inputs again — every row of a case, the first and last run of a row, every turn of
/// `--rounds` — takes it from a small process-wide cache ([`PRODUCT_CACHE_BYTES`]) without
/// widening the operands again. `compute` returns the reference and its size in bytes.
///
/// Inputs are the same when they are the same `Arc` allocation (see [`CachedReference`]): a
/// tensor with equal values in another allocation gets its own reference, so a reference is never
/// reused for other inputs. Entries whose inputs have been dropped everywhere are dropped when the
/// next reference is added.
pub fn shared_reference<T: Any + Send + Sync>(
    p: &MatmulProblem,
    a: &Arc<Tensor>,
    b: &Arc<Tensor>,
    kind: ReferenceKind,
    compute: impl FnOnce() -> (T, usize),
) -> Arc<T> {
    let cache = || REFERENCES.lock().unwrap_or_else(|e| e.into_inner());
    let same = |e: &CachedReference| {
        e.p == *p
            && e.kind == kind
            && std::ptr::eq(e.a.as_ptr(), Arc::as_ptr(a))
            && std::ptr::eq(e.b.as_ptr(), Arc::as_ptr(b))
    };
    let hit = cache()
        .iter()
        .find(|e| same(e))
        .map(|e| Arc::clone(&e.value));
    if let Some(v) = hit.and_then(|v| v.downcast::<T>().ok()) {
        return v;
    }
    // Computed outside the lock (two threads may compute the same reference; both are right).
    let (value, bytes) = compute();
    let value = Arc::new(value);
    if bytes <= PRODUCT_CACHE_BYTES {
        let mut c = cache();
        c.retain(|e| e.live() && !same(e));
        c.push(CachedReference {
            p: *p,
            kind,
            a: Arc::downgrade(a),
            b: Arc::downgrade(b),
            value: Arc::clone(&value) as Arc<dyn Any + Send + Sync>,
            bytes,
        });
        // Oldest first out, until the entries fit.
        while c.iter().map(|e| e.bytes).sum::<usize>() > PRODUCT_CACHE_BYTES {
            c.remove(0);
        }
    }
    value
}

/// Batch `batch` of `A · op(B)` and `|A| · |op(B)|` ([`MatmulOperands::product`]), computed once
/// per inputs ([`shared_reference`]). Panics as [`MatmulOperands::new`] does.
pub fn shared_matmul_product(
    p: &MatmulProblem,
    a: &Arc<Tensor>,
    b: &Arc<Tensor>,
    batch: usize,
) -> Arc<(Vec<f64>, Vec<f64>)> {
    shared_reference(p, a, b, ReferenceKind::Full { batch }, || {
        let product = MatmulOperands::new(p, a, b, batch).product();
        let bytes = 8 * (product.0.len() + product.1.len());
        (product, bytes)
    })
}

impl MatmulOperands {
    /// Widen batch `batch` of `a` and `b`. Panics if the tensors are shorter than the problem
    /// needs (check with [`MatmulProblem::check_buffers`] first).
    pub fn new(p: &MatmulProblem, a: &Tensor, b: &Tensor, batch: usize) -> Self {
        assert!(batch < p.batch, "batch {batch} of {}", p.batch);
        MatmulOperands {
            p: *p,
            a: widen_range(a, batch * p.a_stride(), p.a_stride()),
            b: widen_range(b, batch * p.b_stride(), p.b_stride()),
        }
    }

    /// Row `i` of A (its `k` logical elements).
    fn a_row(&self, i: usize) -> &[f32] {
        &self.a[i * self.p.lda..i * self.p.lda + self.p.k]
    }

    /// Row `i` of `A · op(B)` and of `|A| · |op(B)|`, each of length `n`.
    pub fn row(&self, i: usize) -> (Vec<f64>, Vec<f64>) {
        let n = self.p.n;
        let mut out = vec![0f64; n];
        let mut abs = vec![0f64; n];
        self.row_part(i, 0, &mut out, &mut abs);
        (out, abs)
    }

    /// Columns `j0..j0 + out.len()` of row `i` of `A · op(B)` into `out` and of `|A| · |op(B)|`
    /// into `abs` (both zeroed by the caller): the obviously correct loop.
    fn row_part(&self, i: usize, j0: usize, out: &mut [f64], abs: &mut [f64]) {
        let (k, ldb) = (self.p.k, self.p.ldb);
        let a = self.a_row(i);
        if self.p.trans_b {
            // op(B)[q, j] = B[j, q]: row j of the stored B is column j of op(B).
            for (j, (o, s)) in (j0..).zip(out.iter_mut().zip(abs.iter_mut())) {
                let bj = &self.b[j * ldb..j * ldb + k];
                for (&aq, &bq) in a.iter().zip(bj) {
                    let (aq, bq) = (aq as f64, bq as f64);
                    *o += aq * bq;
                    *s += aq.abs() * bq.abs();
                }
            }
        } else {
            for (q, &aq) in a.iter().enumerate() {
                let aq = aq as f64;
                let bq = &self.b[q * ldb + j0..q * ldb + j0 + out.len()];
                for ((o, s), &bqj) in out.iter_mut().zip(abs.iter_mut()).zip(bq) {
                    let bqj = bqj as f64;
                    *o += aq * bqj;
                    *s += aq.abs() * bqj.abs();
                }
            }
        }
    }

    /// The whole batch: `A · op(B)` and `|A| · |op(B)|`, dense `m × n` row-major: the
    /// full-reference path of verification. The operands are the exactly widened inputs in f64,
    /// so every product is exact and only the f64 sums round (in another order than
    /// [`row`](Self::row) for m > [`LOOP_PRODUCT_MAX_M`], to about `K · 2^-53 · |A|·|B|` all
    /// the same).
    ///
    /// Up to [`LOOP_PRODUCT_MAX_M`] rows (GEMV and few-token shapes) it is [`row`](Self::row)'s
    /// loop, parallel over column blocks, reading B where it is; above, ndarray's
    /// `general_mat_mul` (matrixmultiply's dgemm, parallel on its thread pool) on f64 copies of
    /// the operands, cross-checked against the loop in the tests.
    pub fn product(&self) -> (Vec<f64>, Vec<f64>) {
        let p = &self.p;
        let (m, n, k) = (p.m, p.n, p.k);
        if m <= LOOP_PRODUCT_MAX_M {
            let mut out = vec![0f64; m * n];
            let mut abs = vec![0f64; m * n];
            for (i, (o, s)) in out.chunks_mut(n).zip(abs.chunks_mut(n)).enumerate() {
                o.par_chunks_mut(LOOP_PRODUCT_COLUMNS)
                    .zip(s.par_chunks_mut(LOOP_PRODUCT_COLUMNS))
                    .enumerate()
                    .for_each(|(c, (o, s))| self.row_part(i, c * LOOP_PRODUCT_COLUMNS, o, s));
            }
            return (out, abs);
        }
        let mut a = Array2::from_shape_fn((m, k), |(i, q)| f64::from(self.a[i * p.lda + q]));
        // op(B) as a `[k, n]` view: B filled in its stored order (row by row), then transposed
        // as a view where B is stored `[n, k]`.
        let mut b = if p.trans_b {
            Array2::from_shape_fn((n, k), |(j, q)| f64::from(self.b[j * p.ldb + q])).reversed_axes()
        } else {
            Array2::from_shape_fn((k, n), |(q, j)| f64::from(self.b[q * p.ldb + j]))
        };
        let mut c = Array2::<f64>::zeros((m, n));
        general_mat_mul(1.0, &a, &b, 0.0, &mut c);
        a.mapv_inplace(f64::abs);
        b.mapv_inplace(f64::abs);
        let mut s = Array2::<f64>::zeros((m, n));
        general_mat_mul(1.0, &a, &b, 0.0, &mut s);
        (c.into_raw_vec_and_offset().0, s.into_raw_vec_and_offset().0)
    }

    /// `op(B) · x` and `|op(B)| · |x|` (length `k`) for `x` of length `n`.
    pub fn b_times(&self, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (n, k, ldb) = (self.p.n, self.p.k, self.p.ldb);
        assert_eq!(x.len(), n, "x has length n");
        if self.p.trans_b {
            // op(B) · x = Σ_j x_j · (row j of the stored B): accumulate row by row, split over
            // chunks of q so that each task walks B rows contiguously.
            const CHUNK: usize = 256;
            let mut y = vec![0f64; k];
            let mut ya = vec![0f64; k];
            y.par_chunks_mut(CHUNK)
                .zip(ya.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(ci, (yc, yac))| {
                    let q0 = ci * CHUNK;
                    for (j, &xj) in x.iter().enumerate() {
                        let bj = &self.b[j * ldb + q0..j * ldb + q0 + yc.len()];
                        for ((yq, yaq), &bjq) in yc.iter_mut().zip(yac.iter_mut()).zip(bj) {
                            let bjq = bjq as f64;
                            *yq += bjq * xj;
                            *yaq += bjq.abs() * xj.abs();
                        }
                    }
                });
            (y, ya)
        } else {
            (0..k)
                .into_par_iter()
                .map(|q| {
                    let bq = &self.b[q * ldb..q * ldb + n];
                    bq.iter().zip(x).fold((0f64, 0f64), |(s, sa), (&bqj, &xj)| {
                        let bqj = bqj as f64;
                        (s + bqj * xj, sa + bqj.abs() * xj.abs())
                    })
                })
                .unzip()
        }
    }

    /// `A · y` and `|A| · y_abs` (length `m`) for `y`, `y_abs` of length `k`.
    pub fn a_times(&self, y: &[f64], y_abs: &[f64]) -> (Vec<f64>, Vec<f64>) {
        assert_eq!(y.len(), self.p.k, "y has length k");
        assert_eq!(y_abs.len(), self.p.k, "y_abs has length k");
        (0..self.p.m)
            .into_par_iter()
            .map(|i| {
                self.a_row(i).iter().zip(y).zip(y_abs).fold(
                    (0f64, 0f64),
                    |(s, sa), ((&aq, &yq), &yaq)| {
                        let aq = aq as f64;
                        (s + aq * yq, sa + aq.abs() * yaq)
                    },
                )
            })
            .unzip()
    }
}

/// Row `i` of batch `batch` of `A · op(B)` and of `|A| · |op(B)|`, each of length `n`.
///
/// Widens the whole batch of A and B for one row: for many rows, build [`MatmulOperands`] once.
pub fn matmul_ref_row(
    p: &MatmulProblem,
    a: &Tensor,
    b: &Tensor,
    batch: usize,
    i: usize,
) -> (Vec<f64>, Vec<f64>) {
    assert!(i < p.m, "row {i} of {}", p.m);
    MatmulOperands::new(p, a, b, batch).row(i)
}

/// The whole `A · op(B)` and `|A| · |op(B)|`, dense `[batch, m, n]` (no leading-dimension
/// padding), parallel over rows.
pub fn matmul_ref(p: &MatmulProblem, a: &Tensor, b: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let (m, n) = (p.m, p.n);
    let mut out = vec![0f64; p.batch * m * n];
    let mut abs = vec![0f64; p.batch * m * n];
    for batch in 0..p.batch {
        let ops = MatmulOperands::new(p, a, b, batch);
        let range = batch * m * n..(batch + 1) * m * n;
        out[range.clone()]
            .par_chunks_mut(n)
            .zip(abs[range].par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, (o, s))| {
                let (ro, rs) = ops.row(i);
                o.copy_from_slice(&ro);
                s.copy_from_slice(&rs);
            });
    }
    (out, abs)
}

/// `C · x` (length `m`) for batch `batch` of the output `c` (logical `n` columns of each row,
/// leading dimension `ldc`) and `x` of length `n`. Non-finite outputs propagate.
pub fn c_times(p: &MatmulProblem, c: &Tensor, batch: usize, x: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), p.n, "x has length n");
    (0..p.m)
        .into_par_iter()
        .map(|i| {
            let row = widen_range(c, batch * p.c_stride() + i * p.ldc, p.n);
            row.iter().zip(x).map(|(&cij, &xj)| cij as f64 * xj).sum()
        })
        .collect()
}

/// The three products of Freivalds' check for one batch and one vector `x` (length `n`), all in
/// f64 and each of length `m`.
#[derive(Clone, Debug, PartialEq)]
pub struct FreivaldsProducts {
    /// `C · x`.
    pub cx: Vec<f64>,
    /// `A · (op(B) · x)`.
    pub abx: Vec<f64>,
    /// `|A| · (|op(B)| · |x|)`: the scale of the row's error bound.
    pub abs_abx: Vec<f64>,
}

/// Freivalds' products for batch `batch` of `ops` (built for the same batch) and output `c`.
/// `O(m·n + n·k + m·k)` work instead of the `O(m·n·k)` of a full reference.
pub fn freivalds_products(
    p: &MatmulProblem,
    ops: &MatmulOperands,
    c: &Tensor,
    batch: usize,
    x: &[f64],
) -> FreivaldsProducts {
    let (y, ya) = ops.b_times(x);
    let (abx, abs_abx) = ops.a_times(&y, &ya);
    FreivaldsProducts {
        cx: c_times(p, c, batch, x),
        abx,
        abs_abx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    fn ints(dtype: DType, v: &[i32]) -> Tensor {
        Tensor::from_f32(dtype, &v.iter().map(|&x| x as f32).collect::<Vec<_>>())
    }

    #[test]
    fn small_integer_product_with_padding_and_both_layouts() {
        // A = [[1, -2, 3], [4, 5, -6]] with lda = 4 (pad 99); B = [[1, 2], [3, 4], [5, -6]].
        let a = ints(DType::BF16, &[1, -2, 3, 99, 4, 5, -6, 99]);
        let b = ints(DType::BF16, &[1, 2, 3, 4, 5, -6]);
        let p = MatmulProblem::new(2, 2, 3).with_leading_dims(4, 2, 2);
        let (c, s) = matmul_ref(&p, &a, &b);
        assert_eq!(c, vec![10.0, -24.0, -11.0, 64.0]);
        assert_eq!(s, vec![22.0, 28.0, 49.0, 64.0]);
        // The same B stored transposed ([n, k], ldb = 5 with padding).
        let bt = ints(DType::BF16, &[1, 3, 5, 77, 77, 2, 4, -6, 77, 77]);
        let pt = MatmulProblem::new(2, 2, 3)
            .transposed_b()
            .with_leading_dims(4, 5, 2);
        assert_eq!(matmul_ref(&pt, &a, &bt), (c.clone(), s.clone()));
        assert_eq!(
            matmul_ref_row(&pt, &a, &bt, 0, 1),
            (c[2..].to_vec(), s[2..].to_vec())
        );
    }

    #[test]
    fn product_agrees_with_the_row_loop() {
        // Shapes around matrixmultiply's blocking edges and the loop product's limits (rows up
        // to LOOP_PRODUCT_MAX_M, column blocks of 256), both layouts, padded leading dimensions;
        // f16 inputs so the operands are not small integers (the sums round).
        for (m, n, k) in [
            (1, 1, 1),
            (1, 600, 300),
            (7, 13, 300),
            (8, 513, 70),
            (9, 257, 65),
            (65, 33, 257),
            (130, 70, 1025),
        ] {
            for trans_b in [false, true] {
                let mut p = MatmulProblem::new(m, n, k);
                if trans_b {
                    p = p.transposed_b();
                }
                p = p.with_leading_dims(p.lda + 3, p.ldb + 1, p.ldc);
                let a = Tensor::random(DType::F16, p.a_len(), 3);
                let b = Tensor::random(DType::F16, p.b_len(), 4);
                let ops = MatmulOperands::new(&p, &a, &b, 0);
                let (c, s) = ops.product();
                for i in 0..m {
                    let (rc, rs) = ops.row(i);
                    for j in 0..n {
                        // Both are f64 sums of the same exact products: they differ by at most
                        // 2·K·2^-53 of |A|·|B| (each within K·2^-53 of the exact sum).
                        let tol = 2.0 * k as f64 * f64::EPSILON / 2.0 * rs[j];
                        assert!(
                            (c[i * n + j] - rc[j]).abs() <= tol,
                            "{m}x{n}x{k} bt={trans_b} ({i},{j}): {} vs {}",
                            c[i * n + j],
                            rc[j]
                        );
                        assert!((s[i * n + j] - rs[j]).abs() <= tol);
                    }
                }
            }
        }
    }

    /// The shared product is the product, taken from the cache for the same inputs (the same
    /// `Arc`s, batch and problem) and computed again for anything else: inputs with equal values
    /// in other allocations, another batch, another problem. An entry whose inputs are gone
    /// everywhere is dropped when the next product is added.
    #[test]
    fn a_shared_product_is_reused_for_the_same_inputs_only() {
        let p = MatmulProblem::new(33, 17, 65).with_batch(2);
        let a = Arc::new(Tensor::random(DType::F16, p.a_len(), 11));
        let b = Arc::new(Tensor::random(DType::F16, p.b_len(), 12));
        let first = shared_matmul_product(&p, &a, &b, 0);
        assert_eq!(*first, MatmulOperands::new(&p, &a, &b, 0).product());
        let again = shared_matmul_product(&p, &Arc::clone(&a), &b, 0);
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same inputs reuse the product"
        );
        // Equal values in another allocation: computed again (equal, not shared).
        let b_copy = Arc::new((*b).clone());
        let copy = shared_matmul_product(&p, &a, &b_copy, 0);
        assert!(!Arc::ptr_eq(&first, &copy));
        assert_eq!(*copy, *first);
        // One element of B changed: that product.
        let mut bv: Vec<f32> = b.to_f64().iter().map(|&x| x as f32).collect();
        bv[5] += 1.0;
        let b2 = Arc::new(Tensor::from_f32(DType::F16, &bv));
        let other = shared_matmul_product(&p, &a, &b2, 0);
        assert_eq!(*other, MatmulOperands::new(&p, &a, &b2, 0).product());
        assert_ne!(other.0, first.0);
        // The other batch, and the same tensors read as another problem.
        let second = shared_matmul_product(&p, &a, &b, 1);
        assert_eq!(*second, MatmulOperands::new(&p, &a, &b, 1).product());
        assert_ne!(second.0, first.0);
        let pt = MatmulProblem::new(33, 65, 17).transposed_b();
        let t = shared_matmul_product(&pt, &a, &b, 0);
        assert_eq!(*t, MatmulOperands::new(&pt, &a, &b, 0).product());
        // Inputs dropped everywhere: their entries go when the next product is added.
        let live = |x: &Arc<Tensor>| {
            let c = REFERENCES.lock().unwrap_or_else(|e| e.into_inner());
            c.iter()
                .filter(|e| std::ptr::eq(e.b.as_ptr(), Arc::as_ptr(x)))
                .count()
        };
        assert_eq!(live(&b2), 1);
        let b2_ptr = Arc::as_ptr(&b2);
        drop(b2);
        let q = MatmulProblem::new(3, 4, 5);
        let (qa, qb) = (
            Arc::new(Tensor::random(DType::F32, q.a_len(), 1)),
            Arc::new(Tensor::random(DType::F32, q.b_len(), 2)),
        );
        let _ = shared_matmul_product(&q, &qa, &qb, 0);
        let c = REFERENCES.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!c.iter().any(|e| std::ptr::eq(e.b.as_ptr(), b2_ptr)));
    }

    #[test]
    fn freivalds_products_agree_with_the_full_reference() {
        for trans_b in [false, true] {
            let mut p = MatmulProblem::new(9, 7, 300).with_batch(2);
            if trans_b {
                p = p.transposed_b();
            }
            p = p.with_leading_dims(p.lda + 1, p.ldb + 2, p.ldc + 3);
            let a = Tensor::random(DType::F16, p.a_len(), 1);
            let b = Tensor::random(DType::F16, p.b_len(), 2);
            let (cref, sref) = matmul_ref(&p, &a, &b);
            // C = the reference itself, stored with ldc padding.
            let mut c = vec![f32::NAN; p.c_len()];
            for (r, row) in cref.chunks(p.n).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    c[r * p.ldc + j] = v as f32;
                }
            }
            let c = Tensor::F32(c);
            let x: Vec<f64> = (0..p.n)
                .map(|j| if j % 2 == 0 { 0.5 } else { -1.0 })
                .collect();
            for batch in 0..p.batch {
                let ops = MatmulOperands::new(&p, &a, &b, batch);
                let f = freivalds_products(&p, &ops, &c, batch, &x);
                for i in 0..p.m {
                    let r = (batch * p.m + i) * p.n;
                    let want: f64 = (0..p.n).map(|j| cref[r + j] * x[j]).sum();
                    let want_abs: f64 = (0..p.n).map(|j| sref[r + j] * x[j].abs()).sum();
                    assert!((f.abx[i] - want).abs() <= 1e-12 * want_abs);
                    assert!((f.abs_abx[i] - want_abs).abs() <= 1e-12 * want_abs);
                    assert!((f.cx[i] - want).abs() <= 1e-6 * want_abs);
                }
            }
        }
    }
}
