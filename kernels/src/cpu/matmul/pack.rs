//! Packing of A and B into contiguous micro-panels, converting f16/bf16 to f32 on the way: the
//! dtype boundary is crossed once per packed element, and the micro-kernels see only f32.
//!
//! Panels past the matrix edge are padded with zeros, so micro-kernels always run full tiles.
//!
//! The `vdpbf16ps` path packs bf16 without conversion, as k-pairs in u32 words ([`pack_pairs_rows`],
//! [`pack_b_pairs`]).

use crate::dtype::Element;

/// Convert `src` to f32 into `row` (length `src.len()`).
#[inline]
fn convert_row<T: Element>(src: &[T], row: &mut [f32]) {
    T::slice_to_f32(src, row);
}

/// Pack rows `0..mc` × columns `0..kc` of A (row-major, `lda`, starting at `a[0]`) into
/// `ceil(mc/MR)` micro-panels of `kc × MR` (k-major). `row` is scratch of length ≥ kc.
pub fn pack_a<T: Element>(
    a: &[T],
    lda: usize,
    mc: usize,
    kc: usize,
    mr: usize,
    dst: &mut [f32],
    row: &mut [f32],
) {
    let panels = mc.div_ceil(mr);
    for ip in 0..panels {
        let panel = &mut dst[ip * kc * mr..(ip + 1) * kc * mr];
        for r in 0..mr {
            let i = ip * mr + r;
            if i < mc {
                convert_row(&a[i * lda..i * lda + kc], &mut row[..kc]);
                for (p, &v) in row[..kc].iter().enumerate() {
                    panel[p * mr + r] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * mr + r] = 0.0;
                }
            }
        }
    }
}

/// Pack one B micro-panel: rows `0..kc` × columns `j0..j0+nr` of B stored `[k, n]` (row-major,
/// `ldb`, `b[0]` at the panel's first row), `nr_valid` of them inside the matrix.
pub fn pack_b_panel<T: Element>(
    b: &[T],
    ldb: usize,
    kc: usize,
    nr: usize,
    nr_valid: usize,
    dst: &mut [f32],
) {
    for p in 0..kc {
        let out = &mut dst[p * nr..(p + 1) * nr];
        convert_row(&b[p * ldb..p * ldb + nr_valid], &mut out[..nr_valid]);
        out[nr_valid..].iter_mut().for_each(|x| *x = 0.0);
    }
}

/// Pack one B micro-panel from B stored transposed `[n, k]` (`bt[0]` at the panel's first column
/// and first k): each of the `nr_valid` rows of `bt` is a column of the panel.
pub fn pack_bt_panel<T: Element>(
    bt: &[T],
    ldb: usize,
    kc: usize,
    nr: usize,
    nr_valid: usize,
    dst: &mut [f32],
    row: &mut [f32],
) {
    for j in 0..nr {
        if j < nr_valid {
            convert_row(&bt[j * ldb..j * ldb + kc], &mut row[..kc]);
            for (p, &v) in row[..kc].iter().enumerate() {
                dst[p * nr + j] = v;
            }
        } else {
            for p in 0..kc {
                dst[p * nr + j] = 0.0;
            }
        }
    }
}

/// Pack k-pairs of `width` rows of a row-major bf16 matrix (bits, leading dimension `ld`, `x[0]`
/// at the first row and first k) for the `vdpbf16ps` path: word `q·width + r` holds row `r`'s
/// elements `2q` (low half) and `2q + 1` (high half). Rows `rows_valid..width` and the high half
/// of the last pair of an odd `kc` are zero. No conversion: bf16 stays bf16.
///
/// A micro-panels use it with `width = MR`; B micro-panels from B stored transposed `[n, k]` with
/// `width = NR` (each row of `Bᵀ` is a column of the panel).
pub fn pack_pairs_rows(
    x: &[u16],
    ld: usize,
    rows_valid: usize,
    width: usize,
    kc: usize,
    dst: &mut [u32],
) {
    let kp = kc.div_ceil(2);
    for r in 0..width {
        if r < rows_valid {
            let row = &x[r * ld..r * ld + kc];
            let mut pairs = row.chunks_exact(2);
            for (q, pair) in (&mut pairs).enumerate() {
                dst[q * width + r] = u32::from(pair[0]) | (u32::from(pair[1]) << 16);
            }
            if let [last] = pairs.remainder() {
                dst[(kp - 1) * width + r] = u32::from(*last);
            }
        } else {
            for q in 0..kp {
                dst[q * width + r] = 0;
            }
        }
    }
}

/// Pack one B micro-panel for the `vdpbf16ps` path from B stored `[k, n]` (bits, `ldb`, `b[0]` at
/// the panel's first k and first column): word `q·nr + j` holds column `j`'s elements at k = 2q
/// (low half) and 2q + 1 (high half). Columns `nr_valid..nr` and the high half of the last pair
/// of an odd `kc` are zero.
pub fn pack_b_pairs(b: &[u16], ldb: usize, kc: usize, nr: usize, nr_valid: usize, dst: &mut [u32]) {
    for q in 0..kc.div_ceil(2) {
        let out = &mut dst[q * nr..(q + 1) * nr];
        let lo = &b[2 * q * ldb..2 * q * ldb + nr_valid];
        if 2 * q + 1 < kc {
            let hi = &b[(2 * q + 1) * ldb..(2 * q + 1) * ldb + nr_valid];
            for ((o, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
                *o = u32::from(l) | (u32::from(h) << 16);
            }
        } else {
            for (o, &l) in out.iter_mut().zip(lo) {
                *o = u32::from(l);
            }
        }
        out[nr_valid..].iter_mut().for_each(|x| *x = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_a_pads_and_interleaves() {
        // 3×2 matrix, MR = 2 → two panels, the second half padded.
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = vec![f32::NAN; 8];
        let mut row = vec![0.0; 2];
        pack_a(&a, 2, 3, 2, 2, &mut dst, &mut row);
        assert_eq!(dst, vec![1.0, 3.0, 2.0, 4.0, 5.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn pack_b_and_bt_agree() {
        // B [k=2, n=3]; Bᵀ [3, 2]
        let b = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0];
        let mut p1 = vec![f32::NAN; 8];
        let mut p2 = vec![f32::NAN; 8];
        let mut row = vec![0.0; 2];
        pack_b_panel(&b, 3, 2, 4, 3, &mut p1);
        pack_bt_panel(&bt, 2, 2, 4, 3, &mut p2, &mut row);
        assert_eq!(p1, vec![1.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0]);
        assert_eq!(p1, p2);
    }

    #[test]
    fn pair_packing_of_b_and_bt_agree_and_pad() {
        // B [k=3, n=3] (odd k: the second pair's high half is padding); Bᵀ [3, 3].
        let b: Vec<u16> = (1..=9).collect();
        let bt: Vec<u16> = vec![1, 4, 7, 2, 5, 8, 3, 6, 9];
        let mut p1 = vec![u32::MAX; 8];
        let mut p2 = vec![u32::MAX; 8];
        pack_b_pairs(&b, 3, 3, 4, 3, &mut p1);
        pack_pairs_rows(&bt, 3, 3, 4, 3, &mut p2);
        let w = |lo: u32, hi: u32| lo | (hi << 16);
        assert_eq!(p1, vec![w(1, 4), w(2, 5), w(3, 6), 0, 7, 8, 9, 0]);
        assert_eq!(p1, p2);
    }
}
