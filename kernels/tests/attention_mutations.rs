//! Mutation tests of attention verification: the real flash kernel, and on `q_len = 1` shapes the
//! decode kernel, with one deliberate bug must FAIL `verify_attention` at every precision (f32,
//! f16, bf16) and on every path, the unmutated kernel must PASS on the same inputs, and a
//! NaN-poisoned (unwritten) output fails.
//!
//! The mutants live in the kernel itself (`Mutation`, a hidden knob the registered kernels never
//! set), so they are the bugs a flash kernel actually gets wrong:
//!
//! - mask off by one: each query sees one key past the causal horizon;
//! - wrong KV head for a GQA group: query head `h` reads KV head `h % kv_heads` (heads tiled, not
//!   grouped; decode: a group reads the next KV head's K/V);
//! - missing rescale: the accumulator O is not multiplied by `2^((m − m')·c)` when the running max
//!   grows (the sum l still is).
//!
//! Detectability. The error is scaled by `P·|V|` and the bf16 allowance is ≥ 4·2^-8 ≈ 0.016, so
//! a mutant must move O by a few percent of that scale. With near-flat softmax over many keys
//! (random inputs at scale 1/√D), one extra key or a 5% mis-weighting of early tiles moves O by
//! less than that and no bound of this form can see it at bf16; it can at f32 (allowance ~1e-6).
//! So the shapes below give the mutants something to bite on: causal rows with few keys (query
//! 0 of a square causal shape sees one key, the mutant two), GQA ratio 4 (three of four heads
//! read the wrong K/V), and, for the rescale, `scale = 2` on head_dim 64 (logits with standard
//! deviation ≈ 5, so the running max moves by several units across the 64-key tiles). Each case
//! also asserts the mutant's output actually differs from the real kernel's, so a mutant that
//! is a no-op on its shape is a test failure, not a silent pass.

use half::{bf16, f16};
use perfledger_kernels::cpu::attention::{
    decode_path_mutant, flash_path_mutant, DecodePath, FlashPath, Mutation,
};
use perfledger_kernels::isa::Isa;
use perfledger_kernels::verify::attention::verify_attention;
use perfledger_kernels::verify::{Verdict, VerifyOptions};
use perfledger_kernels::{AttentionProblem, DType, Element, Precision, Tensor};

/// A kernel under test: a flash path or a decode path.
#[derive(Clone, Copy, Debug)]
enum Path {
    Flash(FlashPath),
    Decode(DecodePath),
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Flash(path) => write!(f, "flash.{path}"),
            Path::Decode(path) => write!(f, "decode.{path}"),
        }
    }
}

fn typed<T: Element>(path: Path, p: &AttentionProblem, ins: &[Tensor; 3], m: Mutation) -> Tensor {
    let [q, k, v] = ins.each_ref().map(|t| T::tensor_slice(t).unwrap());
    let mut out = vec![T::nan(); p.q_len_elems()];
    match path {
        Path::Flash(path) => flash_path_mutant(path, p, q, k, v, &mut out, m).unwrap(),
        Path::Decode(path) => decode_path_mutant(path, p, q, k, v, &mut out, m).unwrap(),
    }
    T::into_tensor(out)
}

fn run(path: Path, p: &AttentionProblem, ins: &[Tensor; 3], m: Mutation) -> Tensor {
    match ins[0].dtype() {
        DType::F32 => typed::<f32>(path, p, ins, m),
        DType::F16 => typed::<f16>(path, p, ins, m),
        DType::BF16 => typed::<bf16>(path, p, ins, m),
    }
}

/// Every path that runs `p` at `dtype` here: each available ISA path of flash (and of decode
/// where `q_len = 1`), the `vdpbf16ps` products for bf16 (flash: even head_dim) on CPUs with
/// AVX512_BF16, and the AMX products for bf16 (head_dim a multiple of 32) on CPUs with AMX-BF16.
fn paths(p: &AttentionProblem, dtype: DType) -> Vec<Path> {
    let isas = Isa::ALL.into_iter().filter(|i| i.available());
    let mut v: Vec<Path> = isas
        .clone()
        .map(|i| Path::Flash(FlashPath::Isa(i)))
        .collect();
    if p.q_len == 1 {
        v.extend(isas.map(|i| Path::Decode(DecodePath::Isa(i))));
        if dtype == DType::BF16 && perfledger_kernels::isa::detected().avx512bf16 {
            v.push(Path::Decode(DecodePath::Bf16Dot));
        }
    }
    if dtype == DType::BF16
        && p.head_dim.is_multiple_of(2)
        && perfledger_kernels::isa::detected().avx512bf16
    {
        v.push(Path::Flash(FlashPath::Bf16Dot));
    }
    if dtype == DType::BF16
        && p.head_dim.is_multiple_of(32)
        && perfledger_kernels::cpu::matmul::Path::Amx.available()
    {
        v.push(Path::Flash(FlashPath::Amx));
    }
    v
}

fn cases(mutation: Mutation) -> Vec<AttentionProblem> {
    match mutation {
        Mutation::MaskOffByOne => vec![
            AttentionProblem::new(1, 2, 2, 17, 17, 64).causal(true),
            // q_len < kv_len: the end-aligned horizon, and a tile boundary inside the block
            AttentionProblem::new(2, 4, 1, 40, 100, 80).causal(true),
        ],
        Mutation::WrongKvHead => vec![
            AttentionProblem::new(1, 8, 2, 17, 33, 64),
            AttentionProblem::new(1, 8, 2, 5, 40, 65).causal(true),
            // Decode: q_len 1, GQA 4, several splits per KV sequence.
            AttentionProblem::new(1, 8, 2, 1, 600, 64),
        ],
        Mutation::NoRescale => vec![
            AttentionProblem::new(1, 2, 2, 50, 300, 64).with_scale(2.0),
            // 288 keys: more than one K/V tile on every path (AMX tiles hold 256 keys).
            AttentionProblem::new(1, 4, 4, 288, 288, 128)
                .causal(true)
                .with_scale(1.5),
            // Decode: q_len 1, splits of 16-key blocks whose running max grows; the scale makes
            // it grow past the flash softmax's reference by more than its rescaling threshold
            // (2^8) after the first K/V tile on every path, AMX's 256 keys included.
            AttentionProblem::new(1, 4, 1, 1, 600, 64).with_scale(8.0),
        ],
        Mutation::None => vec![],
    }
}

trait WithScale {
    fn with_scale(self, s: f32) -> Self;
}

impl WithScale for AttentionProblem {
    fn with_scale(mut self, s: f32) -> Self {
        self.scale = s;
        self
    }
}

fn check(mutation: Mutation) {
    let mut report = Vec::new();
    let mut checked = 0;
    for (n, p) in cases(mutation).iter().enumerate() {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let ins = [
                Tensor::random(dtype, p.q_len_elems(), 300 + n as u64),
                Tensor::random(dtype, p.kv_len_elems(), 301 + n as u64),
                Tensor::random(dtype, p.kv_len_elems(), 302 + n as u64),
            ];
            let prec = Precision::same(dtype);
            for isa in paths(p, dtype) {
                let good = run(isa, p, &ins, Mutation::None);
                let bad = run(isa, p, &ins, mutation);
                let opts = VerifyOptions::default();
                let vg = verify_attention(p, prec, &ins[0], &ins[1], &ins[2], &good, &opts);
                let vb = verify_attention(p, prec, &ins[0], &ins[1], &ins[2], &bad, &opts);
                println!(
                    "{mutation:?} {isa} {p} {dtype}: real {:.2} of bound, mutant {:.1}× bound",
                    vg.error / vg.bound,
                    vb.error / vb.bound
                );
                if good == bad {
                    report.push(format!(
                        "{mutation:?} {isa} {p} {dtype}: mutant is a no-op here"
                    ));
                }
                if vg.verdict != Verdict::Pass {
                    report.push(format!("{isa} {p} {dtype}: the real kernel failed: {vg:?}"));
                }
                if vb.verdict != Verdict::Fail {
                    report.push(format!(
                        "{mutation:?} {isa} {p} {dtype}: NOT detected: {vb:?}"
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn mask_off_by_one_fails() {
    check(Mutation::MaskOffByOne);
}

#[test]
fn wrong_kv_head_for_a_gqa_group_fails() {
    check(Mutation::WrongKvHead);
}

#[test]
fn missing_rescale_fails() {
    check(Mutation::NoRescale);
}

#[test]
fn unwritten_output_fails() {
    let p = AttentionProblem::new(1, 2, 1, 9, 20, 64).causal(true);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let ins = [
            Tensor::random(dtype, p.q_len_elems(), 1),
            Tensor::random(dtype, p.kv_len_elems(), 2),
            Tensor::random(dtype, p.kv_len_elems(), 3),
        ];
        let mut out = run(
            Path::Flash(FlashPath::Isa(Isa::Portable)),
            &p,
            &ins,
            Mutation::None,
        );
        // One element left as the NaN poison.
        let mut v = out
            .to_f64()
            .into_iter()
            .map(|x| x as f32)
            .collect::<Vec<_>>();
        v[5 * 64 + 7] = f32::NAN;
        out = Tensor::from_f32(dtype, &v);
        let ver = verify_attention(
            &p,
            Precision::same(dtype),
            &ins[0],
            &ins[1],
            &ins[2],
            &out,
            &VerifyOptions::default(),
        );
        assert_eq!(ver.verdict, Verdict::Fail, "{ver:?}");
        assert_eq!(
            ver.detail.as_deref(),
            Some("NaN at batch 0, head 0, query 5, d 7")
        );
        // The sampled method scans the whole output for NaN first.
        let sampled = VerifyOptions {
            attention_full_cap_flops: 0,
            ..Default::default()
        };
        let ver = verify_attention(
            &p,
            Precision::same(dtype),
            &ins[0],
            &ins[1],
            &ins[2],
            &out,
            &sampled,
        );
        assert_eq!((ver.verdict, ver.method.as_str()), (Verdict::Fail, "rows"));
    }
}

/// The sampled method (query rows at random, naive computed for the same rows) agrees with the
/// full method on a real kernel and still catches a structural mutant.
#[test]
fn sampled_rows_pass_the_real_kernel_and_catch_a_mutant() {
    let p = AttentionProblem::new(2, 8, 2, 200, 200, 64).causal(true);
    let dtype = DType::BF16;
    let ins = [
        Tensor::random(dtype, p.q_len_elems(), 11),
        Tensor::random(dtype, p.kv_len_elems(), 12),
        Tensor::random(dtype, p.kv_len_elems(), 13),
    ];
    let isa = Path::Flash(FlashPath::Isa(Isa::best()));
    let sampled = VerifyOptions {
        attention_full_cap_flops: 0,
        ..Default::default()
    };
    let prec = Precision::same(dtype);
    let good = run(isa, &p, &ins, Mutation::None);
    let v = verify_attention(&p, prec, &ins[0], &ins[1], &ins[2], &good, &sampled);
    assert_eq!(
        (v.verdict, v.method.as_str(), v.samples),
        (Verdict::Pass, "rows", 64),
        "{v:?}"
    );
    assert_eq!(
        verify_attention(&p, prec, &ins[0], &ins[1], &ins[2], &good, &sampled),
        v
    );
    let bad = run(isa, &p, &ins, Mutation::WrongKvHead);
    let v = verify_attention(&p, prec, &ins[0], &ins[1], &ins[2], &bad, &sampled);
    assert_eq!(v.verdict, Verdict::Fail, "{v:?}");
}

/// A decode task walks its split as several streams (`DecodeKnobs::streams`) on the memory-bound
/// shapes; the tests' shapes are small, so the streams are forced here. Every decode path and
/// precision, 1 to 16 streams: the output verifies, the GQA-head and rescale mutants still fail,
/// and on the f32 products (every path but `avx512bf16`) more than one stream changes the
/// summation order, seen in an f32 output at every input precision (the streams are really
/// taken). Splits of 256 keys (whole blocks) and, at kv 1000, a last split that is not
/// whole blocks and reads one stream.
#[test]
fn decode_in_streams_verifies_and_mutants_fail() {
    use perfledger_kernels::cpu::attention::{decode_run, DecodeKnobs};
    /// Decode of `ins` (inputs `T`) in `streams` streams, the output as `O`.
    fn decode_out<T: Element, O: Element>(
        path: DecodePath,
        p: &AttentionProblem,
        ins: &[Tensor; 3],
        m: Mutation,
        streams: usize,
    ) -> Vec<O> {
        let [q, k, v] = ins.each_ref().map(|t| T::tensor_slice(t).unwrap());
        let mut out = vec![O::nan(); p.q_len_elems()];
        let knobs = DecodeKnobs {
            streams: Some(streams),
            ..DecodeKnobs::default()
        };
        decode_run(path, p, q, k, v, &mut out, m, knobs).unwrap();
        out
    }
    /// The output at the inputs' precision, as the kernel's rows give it.
    fn run_streams(
        path: DecodePath,
        p: &AttentionProblem,
        ins: &[Tensor; 3],
        m: Mutation,
        s: usize,
    ) -> Tensor {
        match ins[0].dtype() {
            DType::F32 => Tensor::F32(decode_out::<f32, f32>(path, p, ins, m, s)),
            DType::F16 => Tensor::F16(decode_out::<f16, f16>(path, p, ins, m, s)),
            DType::BF16 => Tensor::BF16(decode_out::<bf16, bf16>(path, p, ins, m, s)),
        }
    }
    /// The output in f32 (no rounding to the input's precision to hide the order of the sums).
    fn run_wide(path: DecodePath, p: &AttentionProblem, ins: &[Tensor; 3], s: usize) -> Vec<f32> {
        let m = Mutation::None;
        match ins[0].dtype() {
            DType::F32 => decode_out::<f32, f32>(path, p, ins, m, s),
            DType::F16 => decode_out::<f16, f32>(path, p, ins, m, s),
            DType::BF16 => decode_out::<bf16, f32>(path, p, ins, m, s),
        }
    }
    // Two threads whatever the machine, so the splits are the same everywhere.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let shapes = [
        AttentionProblem::new(1, 8, 2, 1, 1024, 128),
        AttentionProblem::new(1, 8, 2, 1, 1000, 64).with_scale(8.0),
    ];
    let mut report = Vec::new();
    let mut checked = 0;
    for (n, p) in shapes.iter().enumerate() {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let ins = [
                Tensor::random(dtype, p.q_len_elems(), 400 + n as u64),
                Tensor::random(dtype, p.kv_len_elems(), 401 + n as u64),
                Tensor::random(dtype, p.kv_len_elems(), 402 + n as u64),
            ];
            let prec = Precision::same(dtype);
            let opts = VerifyOptions::default();
            for path in paths(p, dtype) {
                let Path::Decode(path) = path else { continue };
                let one = pool.install(|| run_wide(path, p, &ins, 1));
                for streams in [1, 2, 4, 8, 16] {
                    let out = pool.install(|| run_streams(path, p, &ins, Mutation::None, streams));
                    let v = verify_attention(p, prec, &ins[0], &ins[1], &ins[2], &out, &opts);
                    if v.verdict != Verdict::Pass {
                        report.push(format!("{path} {p} {dtype} {streams} streams: {v:?}"));
                    }
                    let f32_products = matches!(path, DecodePath::Isa(_));
                    if f32_products
                        && streams > 1
                        && pool.install(|| run_wide(path, p, &ins, streams)) == one
                    {
                        report.push(format!(
                            "{path} {p} {dtype} {streams} streams: the same sums as one stream"
                        ));
                    }
                    for m in [Mutation::WrongKvHead, Mutation::NoRescale] {
                        // The rescale mutant needs the large-scale shape to bite.
                        if m == Mutation::NoRescale && n == 0 {
                            continue;
                        }
                        let bad = pool.install(|| run_streams(path, p, &ins, m, streams));
                        let vb = verify_attention(p, prec, &ins[0], &ins[1], &ins[2], &bad, &opts);
                        if vb.verdict != Verdict::Fail {
                            report.push(format!(
                                "{m:?} {path} {p} {dtype} {streams} streams: NOT detected: {vb:?}"
                            ));
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
    assert!(report.is_empty(), "{}", report.join("\n"));
}
