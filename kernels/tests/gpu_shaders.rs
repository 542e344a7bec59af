//! Every shader × specialization parsed, validated and translated to SPIR-V by naga on the CPU
//! (no GPU needed), with the capabilities it needs, cooperative matrices included.
#![cfg(feature = "gpu")]

use perfledger_kernels::gpu::shaders::{all_specializations, validate_with_naga, Shader};
use std::collections::BTreeSet;

#[test]
fn every_specialization_validates_with_naga() {
    let specs = all_specializations();
    let mut failures = Vec::new();
    for s in &specs {
        if let Err(e) = validate_with_naga(s) {
            failures.push(e.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} specializations failed:\n{}",
        failures.len(),
        specs.len(),
        failures.join("\n\n")
    );
    // Every shader file is covered, and keys are unique.
    let shaders: BTreeSet<Shader> = specs.iter().map(|s| s.shader).collect();
    assert_eq!(shaders.len(), Shader::ALL.len());
    let keys: BTreeSet<String> = specs.iter().map(|s| s.key()).collect();
    assert_eq!(keys.len(), specs.len(), "duplicate specialization keys");
    println!("{} specializations validated", specs.len());
}

#[test]
fn coop_shader_needs_its_capability() {
    // Without COOPERATIVE_MATRIX naga must refuse the coop shader: the capability gate is real.
    let spec = all_specializations()
        .into_iter()
        .find(|s| s.shader == Shader::Coop)
        .unwrap();
    let src = spec.source();
    let module = naga::front::wgsl::parse_str(&src).unwrap();
    let mut v = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::SUBGROUP,
    );
    v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
    v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    assert!(v.validate(&module).is_err());
    assert!(spec.prelude().contains("enable wgpu_cooperative_matrix;"));
}

#[test]
fn headers_document_bindings_params_and_dispatch() {
    for s in Shader::ALL {
        let head: String = s
            .source()
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for word in ["Bindings", "Dispatch"] {
            assert!(head.contains(word), "{}: header lacks {word}", s.file());
        }
        if s.source().contains("struct ") {
            assert!(
                head.contains("Rust twin"),
                "{}: header lacks the params twin",
                s.file()
            );
        }
    }
}
