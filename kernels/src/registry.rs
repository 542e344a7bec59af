//! Every kernel variant, listed once. The harness iterates [`Registry::kernels`]; adding a kernel
//! here adds it to `perfledger run`, `perfledger list`, the benches and the registry-driven tests.
//! The contract each kernel implements is [`crate::kernel`].

use crate::cpu::matmul::{BlockingOverride, NaiveMatmul, PackedMatmul};
use crate::dtype::DType;
use crate::isa::Isa;
use crate::kernel::Kernel;
use crate::problem::Precision;

/// Options that choose among registered variants and override tunables.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Force the CPU ISA path (default: the best detected).
    pub isa: Option<Isa>,
    /// Override some or all of the packed matmul's cache blocking (the rest, and everything by
    /// default, derived from the detected caches per path).
    pub blocking: Option<BlockingOverride>,
    /// Also register the kernels broken on purpose ([`crate::testing`]; only in builds with the
    /// `test-kernels` feature, ignored otherwise).
    pub test_kernels: bool,
}

/// The kernels of this build.
pub struct Registry {
    kernels: Vec<Box<dyn Kernel>>,
    isa_selected: Isa,
}

/// Precisions the CPU matmul kernels implement: same-type output and f32 output.
pub fn matmul_precisions() -> Vec<Precision> {
    let mut v = Vec::new();
    for d in DType::ALL {
        v.push(Precision::same(d));
        if d != DType::F32 {
            v.push(Precision::widening(d));
        }
    }
    v
}

impl Registry {
    /// Every kernel variant of this build. ISA-specific variants are listed for every ISA; those the
    /// CPU lacks answer `Support::No`, and only the selected ISA is marked as such.
    pub fn new(options: &RegistryOptions) -> Registry {
        let isa_selected = options.isa.unwrap_or_else(Isa::best);
        let blocking = options.blocking;
        let mut kernels: Vec<Box<dyn Kernel>> = Vec::new();
        for precision in matmul_precisions() {
            kernels.push(Box::new(NaiveMatmul::new(precision)));
            for isa in Isa::ALL {
                kernels.push(Box::new(PackedMatmul::new(isa, precision, blocking)));
            }
            if precision.input == DType::BF16 {
                kernels.push(Box::new(PackedMatmul::bf16dot(precision, blocking)));
                kernels.push(Box::new(PackedMatmul::amx(precision, blocking)));
            }
        }
        for precision in crate::cpu::attention::attention_precisions() {
            use crate::cpu::attention::CpuAttentionKernel;
            kernels.push(Box::new(CpuAttentionKernel::naive(precision)));
            for isa in Isa::ALL {
                kernels.push(Box::new(CpuAttentionKernel::flash(isa, precision)));
                kernels.push(Box::new(CpuAttentionKernel::decode(isa, precision)));
            }
            if precision.input == DType::BF16 {
                kernels.push(Box::new(CpuAttentionKernel::flash_bf16dot(precision)));
                kernels.push(Box::new(CpuAttentionKernel::decode_bf16dot(precision)));
                kernels.push(Box::new(CpuAttentionKernel::flash_amx(precision)));
            }
        }
        kernels.extend(crate::peers::kernels());
        #[cfg(feature = "gpu")]
        kernels.extend(crate::gpu::kernels());
        #[cfg(feature = "test-kernels")]
        if options.test_kernels {
            use crate::testing::{Fault, FaultyKernel};
            for fault in Fault::ALL {
                for d in DType::ALL {
                    kernels.push(Box::new(FaultyKernel::new(
                        Box::new(PackedMatmul::new(
                            isa_selected,
                            Precision::same(d),
                            blocking,
                        )),
                        fault,
                    )));
                }
                kernels.push(Box::new(FaultyKernel::new(
                    Box::new(crate::cpu::attention::CpuAttentionKernel::flash(
                        isa_selected,
                        Precision::same(DType::BF16),
                    )),
                    fault,
                )));
            }
        }
        Registry {
            kernels,
            isa_selected,
        }
    }

    pub fn kernels(&self) -> &[Box<dyn Kernel>] {
        &self.kernels
    }

    /// The ISA path chosen for this run (forced or detected).
    pub fn isa_selected(&self) -> Isa {
        self.isa_selected
    }

    /// Whether a kernel belongs to the selected ISA path ([`Kernel::on_isa_path`]). The runner
    /// runs only these.
    pub fn is_selected(&self, kernel: &dyn Kernel) -> bool {
        kernel.on_isa_path(self.isa_selected)
    }

    pub fn find(&self, id: &str) -> Option<&dyn Kernel> {
        self.kernels
            .iter()
            .find(|k| k.identity().id() == id)
            .map(|k| k.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Problem, Support};
    use crate::problem::MatmulProblem;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique() {
        let reg = Registry::new(&RegistryOptions::default());
        let ids: Vec<String> = reg.kernels().iter().map(|k| k.identity().id()).collect();
        let set: HashSet<&String> = ids.iter().collect();
        assert_eq!(set.len(), ids.len(), "duplicate kernel ids: {ids:?}");
        assert!(ids.contains(&"matmul.cpu.packed.avx2fma.bf16-f32-bf16".to_string()));
        assert!(ids.contains(&"matmul.cpu.naive.scalar.f16-f32-f32".to_string()));
        let bf16dot: Vec<&String> = ids.iter().filter(|i| i.contains(".avx512bf16.")).collect();
        assert_eq!(
            bf16dot,
            [
                "matmul.cpu.packed.avx512bf16.bf16-f32-bf16",
                "matmul.cpu.packed.avx512bf16.bf16-f32-f32",
                "attention.cpu.flash.avx512bf16.bf16-f32-bf16",
                "attention.cpu.decode.avx512bf16.bf16-f32-bf16"
            ]
        );
        let amx: Vec<&String> = ids.iter().filter(|i| i.contains(".amx.")).collect();
        assert_eq!(
            amx,
            [
                "matmul.cpu.packed.amx.bf16-f32-bf16",
                "matmul.cpu.packed.amx.bf16-f32-f32",
                "attention.cpu.flash.amx.bf16-f32-bf16"
            ]
        );
    }

    #[test]
    fn bf16dot_is_selected_with_avx512f_only_where_the_cpu_has_it() {
        let has = crate::isa::detected().avx512bf16;
        for isa in Isa::ALL {
            let reg = Registry::new(&RegistryOptions {
                isa: Some(isa),
                ..RegistryOptions::default()
            });
            let k = reg
                .find("matmul.cpu.packed.avx512bf16.bf16-f32-bf16")
                .unwrap();
            assert_eq!(reg.is_selected(k), isa == Isa::Avx512f && has, "{isa}");
            let p = Problem::Matmul(MatmulProblem::new(4, 4, 4));
            match k.supports(&p) {
                Support::Yes => assert!(has),
                Support::No(why) => {
                    assert!(!has);
                    assert!(why.reason.contains("avx512bf16"), "{why}");
                }
            }
            // The f32 paths keep their selection.
            let f = reg.find("matmul.cpu.packed.avx512f.bf16-f32-bf16").unwrap();
            assert_eq!(reg.is_selected(f), isa == Isa::Avx512f);
        }
    }
}
