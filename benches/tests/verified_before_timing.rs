//! The benches verify each kernel before timing it: [`prepare_verified`] refuses every kernel
//! broken on purpose (feature `test-kernels`) that computes a wrong result, a NaN or panics, and
//! accepts the correct ones — the slowed test kernel and every real kernel of the benches'
//! registry on a small shape of its op.

#![cfg(feature = "test-kernels")]

use perfledger_benches::{inputs, prepare_verified};
use perfledger_kernels::{
    AttentionProblem, MatmulProblem, Op, Problem, Registry, RegistryOptions, Support,
};

fn problem(op: Op) -> Problem {
    match op {
        Op::Matmul => Problem::Matmul(MatmulProblem::new(33, 40, 27)),
        Op::Attention => Problem::Attention(AttentionProblem::new(1, 4, 2, 17, 17, 64)),
    }
}

#[test]
fn broken_kernels_are_refused_and_correct_ones_prepared() {
    let reg = Registry::new(&RegistryOptions {
        test_kernels: true,
        ..RegistryOptions::default()
    });
    let mut refused = Vec::new();
    let mut accepted = 0;
    for k in reg.kernels() {
        let id = k.identity();
        let p = problem(id.op);
        if !reg.is_selected(k.as_ref()) || !matches!(k.supports(&p), Support::Yes) {
            continue;
        }
        let result = prepare_verified(k.as_ref(), &p, &inputs(&id, &p, 7));
        let broken = k.is_test_kernel() && id.variant != "slow10";
        match result {
            Ok(_) => {
                assert!(!broken, "{} was accepted", id.id());
                accepted += 1;
            }
            Err(why) => {
                assert!(broken, "{} was refused: {why}", id.id());
                assert!(why.contains(&id.id()) && why.contains("not timed"), "{why}");
                refused.push(id.variant.clone());
            }
        }
    }
    // Every fault that breaks results was caught, for matmul (3 dtypes) and attention.
    for fault in ["wrong", "nan", "panic"] {
        assert_eq!(
            refused.iter().filter(|v| v.as_str() == fault).count(),
            4,
            "{fault}: {refused:?}"
        );
    }
    assert!(accepted > 10, "{accepted}");
}
