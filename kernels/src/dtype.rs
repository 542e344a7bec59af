//! Element types: a runtime [`DType`] at the edges, the [`Element`] trait inside generic code.
//!
//! CPUs without native half-precision arithmetic compute f16/bf16 in f32: values cross the dtype
//! boundary once (while packing), are accumulated in f32 and rounded once when the output is stored.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The storage types perfledger benchmarks. Spelled `f32`, `f16`, `bf16` everywhere (CLI, files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    BF16,
}

impl DType {
    pub const ALL: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Unit roundoff `u = 2^-p` for round-to-nearest with a `p`-bit significand
    /// (f32: p = 24, f16: p = 11, bf16: p = 8).
    pub fn unit_roundoff(self) -> f64 {
        match self {
            DType::F32 => f64::powi(2.0, -24),
            DType::F16 => f64::powi(2.0, -11),
            DType::BF16 => f64::powi(2.0, -8),
        }
    }

    /// Largest finite value.
    pub fn max_finite(self) -> f64 {
        match self {
            DType::F32 => f32::MAX as f64,
            DType::F16 => f16::MAX.to_f64(),
            DType::BF16 => bf16::MAX.to_f64(),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown dtype spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype `{0}` (expected one of f32, f16, bf16)")]
pub struct ParseDTypeError(pub String);

impl FromStr for DType {
    type Err = ParseDTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(DType::F32),
            "f16" => Ok(DType::F16),
            "bf16" => Ok(DType::BF16),
            other => Err(ParseDTypeError(other.to_string())),
        }
    }
}

/// A storage element. Conversions round to nearest even; `to_f32` is exact for all three types.
pub trait Element:
    Copy + Send + Sync + Default + PartialEq + fmt::Debug + bytemuck::Pod + 'static
{
    const DTYPE: DType;
    fn to_f32(self) -> f32;
    fn from_f32(x: f32) -> Self;
    #[inline]
    fn to_f64(self) -> f64 {
        self.to_f32() as f64
    }
    /// Round an f64 to this type (through f32 for the half types; the double rounding cannot
    /// change the result for values that came from an f32 computation and is documented).
    fn from_f64(x: f64) -> Self;
    fn nan() -> Self;
    fn is_nan(self) -> bool;
    /// Convert a slice to f32 (vectorized for the half types where the hardware allows).
    fn slice_to_f32(src: &[Self], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_f32();
        }
    }
    /// The typed contents of a [`Tensor`] of this dtype (`None` for another dtype).
    fn tensor_slice(t: &Tensor) -> Option<&[Self]>;
    /// Wrap a vector into a [`Tensor`].
    fn into_tensor(v: Vec<Self>) -> Tensor;
    /// Round a slice of f32 into this type.
    fn slice_from_f32(src: &[f32], dst: &mut [Self]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = Self::from_f32(*s);
        }
    }
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn tensor_slice(t: &Tensor) -> Option<&[Self]> {
        match t {
            Tensor::F32(v) => Some(v),
            _ => None,
        }
    }
    fn into_tensor(v: Vec<Self>) -> Tensor {
        Tensor::F32(v)
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn nan() -> Self {
        f32::NAN
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn slice_to_f32(src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn slice_from_f32(src: &[f32], dst: &mut [Self]) {
        dst.copy_from_slice(src);
    }
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    fn tensor_slice(t: &Tensor) -> Option<&[Self]> {
        match t {
            Tensor::F16(v) => Some(v),
            _ => None,
        }
    }
    fn into_tensor(v: Vec<Self>) -> Tensor {
        Tensor::F16(v)
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        f16::from_f64(x)
    }
    fn nan() -> Self {
        f16::NAN
    }
    fn is_nan(self) -> bool {
        f16::is_nan(self)
    }
    fn slice_to_f32(src: &[Self], dst: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        src.convert_to_f32_slice(dst);
    }
    /// 16 lanes a step with AVX-512 (`vcvtps2ph`, round to nearest even — the instruction half's
    /// F16C path issues 8 lanes at a time, through a call per 8 elements: with it the rounding
    /// of a 127 × 8191 f16 output was a fifth of the matmul's time); half's conversion elsewhere.
    /// Bit-identical to `f16::from_f32` (test `f16_slice_rounding_*`).
    fn slice_from_f32(src: &[f32], dst: &mut [Self]) {
        assert_eq!(
            src.len(),
            dst.len(),
            "f16 rounding: slices differ in length"
        );
        #[cfg(target_arch = "x86_64")]
        {
            use crate::isa::Isa;
            if Isa::Avx512f.available() {
                // SAFETY: the CPU has AVX-512 F/VL/BW (what `Isa::Avx512f` requires); the
                // lengths are equal (asserted).
                return unsafe { f16_round_avx512(src, dst) };
            }
        }
        use half::slice::HalfFloatSliceExt;
        dst.convert_from_f32_slice(src);
    }
}

/// f32 → f16 with `vcvtps2ph` on 16 lanes, the tail masked.
///
/// # Safety
/// AVX-512 F/VL/BW are available; `src` and `dst` have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw")]
unsafe fn f16_round_avx512(src: &[f32], dst: &mut [f16]) {
    use std::arch::x86_64::*;
    const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let n = src.len();
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr() as *mut i16);
    let mut i = 0;
    while i + 16 <= n {
        let h = _mm512_cvtps_ph::<RNE>(_mm512_loadu_ps(s.add(i)));
        _mm256_storeu_si256(d.add(i) as *mut __m256i, h);
        i += 16;
    }
    if i < n {
        let mask: u16 = (1u16 << (n - i)) - 1;
        let h = _mm512_cvtps_ph::<RNE>(_mm512_maskz_loadu_ps(mask, s.add(i)));
        _mm256_mask_storeu_epi16(d.add(i), mask, h);
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    fn tensor_slice(t: &Tensor) -> Option<&[Self]> {
        match t {
            Tensor::BF16(v) => Some(v),
            _ => None,
        }
    }
    fn into_tensor(v: Vec<Self>) -> Tensor {
        Tensor::BF16(v)
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        // bf16 is the high half of an f32: a shift, which the compiler vectorizes.
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        bf16::from_f32(x)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        bf16::from_f64(x)
    }
    /// Round to nearest even without branches, so the loop vectorizes (`bf16::from_f32` branches
    /// per element: the rounding of a 127 × 8191 bf16 output was 25% of the matmul's time).
    /// Bit-identical to `bf16::from_f32`, NaN payloads included (test `bf16_slice_rounding_*`).
    /// Compiled for the widest ISA the CPU has (16 lanes with AVX-512: the baseline SSE2 loop,
    /// 8 per iteration, still took a quarter of that matmul's time).
    fn slice_from_f32(src: &[f32], dst: &mut [Self]) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::isa::Isa;
            if Isa::Avx512f.available() {
                // SAFETY: the CPU has AVX-512 F/VL/BW (what `Isa::Avx512f` requires).
                return unsafe { bf16_round_avx512(src, dst) };
            }
            if Isa::Avx2fma.available() {
                // SAFETY: the CPU has AVX2.
                return unsafe { bf16_round_avx2(src, dst) };
            }
        }
        bf16_round(src, dst)
    }
    fn nan() -> Self {
        bf16::NAN
    }
    fn is_nan(self) -> bool {
        bf16::is_nan(self)
    }
}

/// f32 → bf16, round to nearest even, NaNs quieted with their payload kept: bit-identical to
/// `bf16::from_f32`, without its branches, so the loop vectorizes.
#[inline(always)]
fn bf16_round(src: &[f32], dst: &mut [bf16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        let x = s.to_bits();
        let rounded = x.wrapping_add(0x7FFF + ((x >> 16) & 1)) >> 16;
        let quiet_nan = (x >> 16) | 0x0040;
        let v = if x & 0x7FFF_FFFF > 0x7F80_0000 {
            quiet_nan
        } else {
            rounded
        };
        *d = bf16::from_bits(v as u16);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw")]
unsafe fn bf16_round_avx512(src: &[f32], dst: &mut [bf16]) {
    bf16_round(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bf16_round_avx2(src: &[f32], dst: &mut [bf16]) {
    bf16_round(src, dst)
}

/// A tensor whose dtype is known only at run time: the boundary between the harness (which reads
/// dtypes from suite files) and generic kernel code.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

/// Calls `$body` with `$v` bound to the typed vector of a [`Tensor`] (one match per call).
#[macro_export]
macro_rules! with_tensor {
    ($t:expr, $v:ident => $body:expr) => {
        match $t {
            $crate::dtype::Tensor::F32($v) => $body,
            $crate::dtype::Tensor::F16($v) => $body,
            $crate::dtype::Tensor::BF16($v) => $body,
        }
    };
}

impl Tensor {
    /// A tensor of `len` NaNs (the poison written into outputs before each verified run).
    pub fn nan(dtype: DType, len: usize) -> Tensor {
        match dtype {
            DType::F32 => Tensor::F32(vec![f32::NAN; len]),
            DType::F16 => Tensor::F16(vec![f16::NAN; len]),
            DType::BF16 => Tensor::BF16(vec![bf16::NAN; len]),
        }
    }

    /// Round f32 values into a tensor of `dtype`.
    pub fn from_f32(dtype: DType, v: &[f32]) -> Tensor {
        fn conv<T: Element>(v: &[f32]) -> Vec<T> {
            let mut out = vec![T::default(); v.len()];
            T::slice_from_f32(v, &mut out);
            out
        }
        match dtype {
            DType::F32 => Tensor::F32(v.to_vec()),
            DType::F16 => Tensor::F16(conv(v)),
            DType::BF16 => Tensor::BF16(conv(v)),
        }
    }

    /// Uniform random values in `[-1, 1)` from a seeded generator, rounded to `dtype`. Never zeros
    /// or constants: those run faster and hide bugs.
    ///
    /// Element `i` is the `i`-th value of one [`SplitMix64`] stream from `seed` (a counter-based
    /// generator: its state after `i` steps is `seed + i·γ`), so the tensor is generated in
    /// parallel chunks, each computing its elements from their own states ([`uniform_from`],
    /// which vectorizes), with the same values as one sequential pass
    /// (`random_matches_the_sequential_stream`). The pages are first touched by the threads that
    /// fill them: a memory-bound row's rotation generates gigabytes on a large-L3 machine, and a
    /// zeroed allocation faulted every page in on one thread first (on the Xeon 6/207 VM, 130
    /// sets of 1×4096×4096 f16, 4.2 GB, spent ≈ 11 s in the runner, a third of it in that
    /// memset).
    pub fn random(dtype: DType, len: usize, seed: u64) -> Tensor {
        fn fill<T: Element>(len: usize, seed: u64) -> Vec<T> {
            use rayon::prelude::*;
            let mut out: Vec<T> = Vec::with_capacity(len);
            out.spare_capacity_mut()[..len]
                .par_chunks_mut(RANDOM_CHUNK)
                .enumerate()
                .for_each_init(
                    || vec![0f32; RANDOM_CHUNK],
                    |buf, (c, dst)| {
                        let buf = &mut buf[..dst.len()];
                        uniform_from(seed, (c * RANDOM_CHUNK) as u64, buf);
                        for d in dst.iter_mut() {
                            d.write(T::default());
                        }
                        // SAFETY: every element of `dst` was written just above.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut T, dst.len())
                        };
                        T::slice_from_f32(buf, dst);
                    },
                );
            // SAFETY: the chunks cover the first `len` elements, each written above.
            unsafe { out.set_len(len) };
            out
        }
        match dtype {
            DType::F32 => Tensor::F32(fill(len, seed)),
            DType::F16 => Tensor::F16(fill(len, seed)),
            DType::BF16 => Tensor::BF16(fill(len, seed)),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F16(_) => DType::F16,
            Tensor::BF16(_) => DType::BF16,
        }
    }

    pub fn len(&self) -> usize {
        with_tensor!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored (rounded) values, exactly, in f64.
    pub fn to_f64(&self) -> Vec<f64> {
        with_tensor!(self, v => v.iter().map(|x| x.to_f64()).collect())
    }

    /// Element `i` in f64.
    pub fn get_f64(&self, i: usize) -> f64 {
        with_tensor!(self, v => v[i].to_f64())
    }

    /// Overwrite every element with NaN.
    pub fn poison(&mut self) {
        with_tensor!(self, v => v.iter_mut().for_each(|x| *x = Element::nan()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        with_tensor!(self, v => bytemuck::cast_slice(v))
    }
}

/// SplitMix64: a tiny, well-mixed, seedable generator for benchmark inputs and sampling
/// (reproducible from the recorded seed; not for cryptography).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

/// Elements of [`Tensor::random`] per parallel chunk.
const RANDOM_CHUNK: usize = 1 << 16;

/// SplitMix64's increment (γ).
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function of a state.
#[inline(always)]
fn splitmix_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `out[i]` = `2·u − 1` for the uniform `u` ([`SplitMix64::next_f32`]) of value number
/// `steps + i` of the stream from `seed`: each element from its own state, so the loop has no
/// carried dependency and vectorizes (with AVX-512 DQ, 64-bit multiplies in vectors; ≈ 2× the
/// scalar generator on the Xeon 6/207 VM).
fn uniform_from(seed: u64, steps: u64, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has AVX-512 F and DQ (checked).
            return unsafe { uniform_avx512dq(seed, steps, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked).
            return unsafe { uniform_avx2(seed, steps, out) };
        }
    }
    uniform_body(seed, steps, out)
}

#[inline(always)]
fn uniform_body(seed: u64, steps: u64, out: &mut [f32]) {
    let base = seed.wrapping_add(steps.wrapping_mul(SPLITMIX_GAMMA));
    for (i, x) in out.iter_mut().enumerate() {
        let z = base.wrapping_add((i as u64 + 1).wrapping_mul(SPLITMIX_GAMMA));
        // 24 bits: exact as an i32, then as an f32.
        let bits = (splitmix_mix(z) >> 40) as i32;
        *x = bits as f32 * (1.0 / (1u32 << 24) as f32) * 2.0 - 1.0;
    }
}

/// # Safety
/// AVX-512 F and DQ are available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn uniform_avx512dq(seed: u64, steps: u64, out: &mut [f32]) {
    uniform_body(seed, steps, out)
}

/// # Safety
/// AVX2 is available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn uniform_avx2(seed: u64, steps: u64, out: &mut [f32]) {
    uniform_body(seed, steps, out)
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The generator from `seed` after `steps` values: the next value is the stream's value
    /// number `steps` (from 0).
    pub fn at(seed: u64, steps: u64) -> Self {
        SplitMix64(seed.wrapping_add(steps.wrapping_mul(SPLITMIX_GAMMA)))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(SPLITMIX_GAMMA);
        splitmix_mix(self.0)
    }
    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }
    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform integer in `[0, n)` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel chunks of `Tensor::random` give the values of one sequential stream, in
    /// every dtype, across chunk edges and for lengths that are not a multiple of a chunk.
    #[test]
    fn random_matches_the_sequential_stream() {
        for len in [
            0,
            1,
            7,
            RANDOM_CHUNK - 1,
            RANDOM_CHUNK,
            2 * RANDOM_CHUNK + 13,
        ] {
            for seed in [0u64, 42, u64::MAX - 5] {
                let mut rng = SplitMix64::new(seed);
                let v: Vec<f32> = (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
                for dtype in [DType::F32, DType::F16, DType::BF16] {
                    let want = Tensor::from_f32(dtype, &v);
                    let got = Tensor::random(dtype, len, seed);
                    assert_eq!(
                        got.as_bytes(),
                        want.as_bytes(),
                        "{dtype} len {len} seed {seed}"
                    );
                }
            }
        }
        let mut a = SplitMix64::new(9);
        for _ in 0..1000 {
            a.next_u64();
        }
        assert_eq!(a.next_u64(), SplitMix64::at(9, 1000).next_u64());
    }

    /// Every build of the generation loop (portable, and the AVX2 and AVX-512 DQ ones this CPU
    /// has) gives the sequential stream's values from any starting step.
    #[test]
    fn uniform_paths_match_the_stream() {
        for (seed, steps, len) in [
            (0u64, 0u64, 1usize),
            (42, 5, 37),
            (u64::MAX - 5, 1 << 40, 1000),
        ] {
            let mut rng = SplitMix64::at(seed, steps);
            let want: Vec<f32> = (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
            let mut got = vec![0f32; len];
            uniform_body(seed, steps, &mut got);
            assert_eq!(got, want, "portable, seed {seed} steps {steps}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    got.fill(0.0);
                    // SAFETY: AVX2 is available (checked).
                    unsafe { uniform_avx2(seed, steps, &mut got) };
                    assert_eq!(got, want, "avx2, seed {seed} steps {steps}");
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    got.fill(0.0);
                    // SAFETY: AVX-512 F and DQ are available (checked).
                    unsafe { uniform_avx512dq(seed, steps, &mut got) };
                    assert_eq!(got, want, "avx512dq, seed {seed} steps {steps}");
                }
            }
        }
    }

    /// The branch-free bf16 rounding (`slice_from_f32` on this CPU's widest ISA, and the baseline
    /// loop) against `bf16::from_f32` on every bf16
    /// value with the low half at each rounding case (zero, below, at and above the tie, all ones)
    /// for both parities, plus a stride through all 2^32 patterns: infinities, NaNs (payload
    /// kept, quieted), overflow to infinity, subnormals, signed zeros.
    #[test]
    fn bf16_slice_rounding_matches_half_bit_for_bit() {
        let mut bits: Vec<u32> = (0..=u16::MAX as u32)
            .flat_map(|h| [0u32, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF].map(move |l| (h << 16) | l))
            .collect();
        bits.extend((0..=u32::MAX).step_by(65_537));
        let src: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        // The dispatching entry (the widest ISA here) and the baseline loop.
        let mut dst = vec![bf16::ZERO; src.len()];
        let mut base = vec![bf16::ZERO; src.len()];
        bf16::slice_from_f32(&src, &mut dst);
        bf16_round(&src, &mut base);
        for ((s, d), b) in src.iter().zip(&dst).zip(&base) {
            let want = bf16::from_f32(*s).to_bits();
            assert_eq!(d.to_bits(), want, "f32 bits {:#010x}", s.to_bits());
            assert_eq!(
                b.to_bits(),
                want,
                "baseline, f32 bits {:#010x}",
                s.to_bits()
            );
        }
        // Every length up to 96 (each tail of the vectorized loop, from an offset that is not a
        // multiple of 32 elements either); nothing past the length written.
        for len in 0..=96 {
            let s = &src[7..7 + len];
            let mut d = vec![bf16::from_bits(0x1234); len + 1];
            bf16::slice_from_f32(s, &mut d[..len]);
            for (j, x) in s.iter().enumerate() {
                assert_eq!(
                    d[j].to_bits(),
                    bf16::from_f32(*x).to_bits(),
                    "len {len}, {j}"
                );
            }
            assert_eq!(d[len].to_bits(), 0x1234, "len {len}: written past the end");
        }
    }

    /// f16 rounding (`slice_from_f32`, the widest ISA here) against `f16::from_f32` on a stride
    /// through all 2^32 f32 patterns plus, for every exponent of the f16 range and around it,
    /// mantissas at each rounding case (below, at and above the tie, both parities), overflow
    /// past 65504, subnormal results, infinities and NaN payloads; lengths that leave every tail
    /// length of the 16-lane loop.
    #[test]
    fn f16_slice_rounding_matches_half_bit_for_bit() {
        let mut bits: Vec<u32> = (0..=u32::MAX).step_by(65_537).collect();
        for sign in [0u32, 0x8000_0000] {
            for exp in 90u32..=150 {
                for mant in [0u32, 1, 0xFFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7F_FFFF] {
                    bits.push(sign | (exp << 23) | mant);
                }
            }
            for special in [
                0x7F80_0000u32,
                0x7F80_0001,
                0x7FC0_0000,
                0x7FBF_FFFF,
                0x7FFF_E000,
            ] {
                bits.push(sign | special);
            }
            // 65504 (the largest f16), the tie to 65536, and just below it.
            bits.extend([0x477F_E000u32, 0x477F_F000, 0x477F_EFFF].map(|b| sign | b));
        }
        for len in (bits.len() - 17)..=bits.len() {
            let src: Vec<f32> = bits[..len].iter().map(|&b| f32::from_bits(b)).collect();
            let mut dst = vec![f16::ZERO; len];
            f16::slice_from_f32(&src, &mut dst);
            for (s, d) in src.iter().zip(&dst) {
                let want = f16::from_f32(*s).to_bits();
                assert_eq!(
                    d.to_bits(),
                    want,
                    "len {len}, f32 bits {:#010x}",
                    s.to_bits()
                );
            }
        }
    }

    #[test]
    fn unit_roundoff_matches_epsilon() {
        assert_eq!(DType::F32.unit_roundoff(), f32::EPSILON as f64 / 2.0);
        assert_eq!(DType::F16.unit_roundoff(), f16::EPSILON.to_f64() / 2.0);
        assert_eq!(DType::BF16.unit_roundoff(), bf16::EPSILON.to_f64() / 2.0);
    }

    #[test]
    fn conversions_round_trip_and_round_to_nearest() {
        for x in [0.0f32, 1.0, -2.5, 0.333_333, 65504.0] {
            assert_eq!(
                f16::from_f32(x).to_f32(),
                <f16 as Element>::from_f32(x).to_f32()
            );
            assert_eq!(
                <bf16 as Element>::to_f32(bf16::from_f32(x)),
                bf16::from_f32(x).to_f32()
            );
        }
        // 1 + 2^-8 is a bf16 tie between 1 and 1 + 2^-7: rounds to even (1).
        assert_eq!(<bf16 as Element>::from_f32(1.0 + 1.0 / 256.0).to_f32(), 1.0);
    }

    #[test]
    fn dtype_parses_its_own_names() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert!("fp16".parse::<DType>().is_err());
    }

    #[test]
    fn random_tensors_are_not_constant_and_are_seeded() {
        let a = Tensor::random(DType::BF16, 1000, 7);
        let b = Tensor::random(DType::BF16, 1000, 7);
        let c = Tensor::random(DType::BF16, 1000, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v = a.to_f64();
        assert!(v.iter().any(|&x| x != v[0]));
        // Rounding to bf16 can carry values just below 1 up to 1.
        assert!(v.iter().all(|&x| (-1.0..=1.0).contains(&x)));
    }

    #[test]
    fn poison_writes_nan() {
        let mut t = Tensor::random(DType::F16, 10, 1);
        t.poison();
        assert!(t.to_f64().iter().all(|x| x.is_nan()));
    }
}
