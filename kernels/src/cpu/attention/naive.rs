//! The baseline: one query row at a time, scores materialized in f32, an exact-max softmax with
//! the standard `exp`, then `P·V`; f32 throughout, one rounding at the output. Obviously correct,
//! slow, and kept to small shapes by the harness (`is_baseline`). Products and sums are separate
//! f32 operations (no FMA: the baseline target has none, and `mul_add` would be a libm call).

use crate::dtype::Element;
use crate::problem::AttentionProblem;
use rayon::prelude::*;

/// `out` (`[batch, q_heads, q_len, head_dim]`) from validated buffers.
pub(crate) fn naive<T: Element, O: Element>(
    p: &AttentionProblem,
    q: &[T],
    k: &[T],
    v: &[T],
    out: &mut [O],
) {
    let d = p.head_dim;
    let group = p.group();
    out.par_chunks_mut(d).enumerate().for_each_init(
        || (vec![0f32; d], vec![0f32; p.kv_len], vec![0f32; d]),
        |(qrow, scores, acc), (row, o)| {
            let (bh, i) = (row / p.q_len, row % p.q_len);
            let (b, h) = (bh / p.q_heads, bh % p.q_heads);
            let g = h / group;
            let kv = (b * p.kv_heads + g) * p.kv_len * d;
            T::slice_to_f32(&q[row * d..(row + 1) * d], qrow);
            let keys = p.keys_for_query(i);
            for (j, s) in scores[..keys].iter_mut().enumerate() {
                let kr = &k[kv + j * d..kv + (j + 1) * d];
                let mut dot = 0f32;
                for (&a, &bv) in qrow.iter().zip(kr) {
                    dot += a * bv.to_f32();
                }
                *s = dot * p.scale;
            }
            let m = scores[..keys]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for s in scores[..keys].iter_mut() {
                *s = (*s - m).exp();
                sum += *s;
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (j, &pj) in scores[..keys].iter().enumerate() {
                let vr = &v[kv + j * d..kv + (j + 1) * d];
                for (a, &x) in acc.iter_mut().zip(vr) {
                    *a += pj * x.to_f32();
                }
            }
            let inv = 1.0 / sum;
            for (dst, &a) in o.iter_mut().zip(acc.iter()) {
                *dst = O::from_f32(a * inv);
            }
        },
    );
}
