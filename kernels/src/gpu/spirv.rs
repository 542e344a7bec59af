//! SPIR-V made by naga in-process, patched, for `create_shader_module_passthrough`.
//!
//! naga 30 writes cooperative-matrix shaders under the Vulkan memory model (it has to: the
//! `SPV_KHR_cooperative_matrix` capability requires it), but its `OpControlBarrier` carries only
//! `AcquireRelease | WorkgroupMemory`. Under the Vulkan memory model that orders nothing for plain
//! (non-`NonPrivatePointer`) accesses: writes to workgroup memory before a barrier are only made
//! available, and made visible after it, with the `MakeAvailable` and `MakeVisible` semantics bits.
//! Without them a coop shader that stages tiles in workgroup memory may read stale values — what
//! the H200 showed (`results/gpu-h200.md`). [`patch_barrier_semantics`] adds both bits to every
//! barrier of a Vulkan-memory-model module: a new constant per distinct semantics value, so no
//! other use of the old constant (naga shares integer constants) changes.

/// `MakeAvailable` memory-semantics bit.
pub const MAKE_AVAILABLE: u32 = 0x2000;
/// `MakeVisible` memory-semantics bit.
pub const MAKE_VISIBLE: u32 = 0x4000;
const MAGIC: u32 = 0x0723_0203;
const OP_MEMORY_MODEL: u32 = 14;
const OP_CONSTANT: u32 = 43;
const OP_CONTROL_BARRIER: u32 = 224;
const OP_MEMORY_BARRIER: u32 = 225;
const MEMORY_MODEL_VULKAN: u32 = 3;
/// Semantics bits that name a storage class (a barrier with none of them orders no memory).
const STORAGE_CLASS_BITS: u32 = 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000;

/// What [`patch_barrier_semantics`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BarrierPatch {
    /// Whether the module uses the Vulkan memory model (otherwise nothing is patched: the bits
    /// are invalid under GLSL450).
    pub vulkan_memory_model: bool,
    /// Barriers whose semantics were changed.
    pub barriers: usize,
    /// Constants added (one per distinct semantics value).
    pub constants: usize,
}

/// Instructions of a module: (start index, opcode, word count), after the 5-word header.
fn instructions(words: &[u32]) -> Result<Vec<(usize, u32, usize)>, String> {
    if words.len() < 5 || words[0] != MAGIC {
        return Err("not a SPIR-V module (no magic number)".into());
    }
    let mut v = Vec::new();
    let mut i = 5;
    while i < words.len() {
        let count = (words[i] >> 16) as usize;
        let op = words[i] & 0xffff;
        if count == 0 || i + count > words.len() {
            return Err(format!("malformed instruction at word {i}"));
        }
        v.push((i, op, count));
        i += count;
    }
    Ok(v)
}

/// Add `MakeAvailable | MakeVisible` to the memory semantics of every `OpControlBarrier` and
/// `OpMemoryBarrier` that orders some storage class, in a module under the Vulkan memory model.
pub fn patch_barrier_semantics(words: &mut Vec<u32>) -> Result<BarrierPatch, String> {
    let insts = instructions(words)?;
    let mut report = BarrierPatch {
        vulkan_memory_model: insts.iter().any(|&(i, op, n)| {
            op == OP_MEMORY_MODEL && n >= 3 && words[i + 2] == MEMORY_MODEL_VULKAN
        }),
        ..BarrierPatch::default()
    };
    if !report.vulkan_memory_model {
        return Ok(report);
    }
    // Constants by id: (result type, value) of 32-bit OpConstants.
    let constants: Vec<(u32, u32, u32)> = insts
        .iter()
        .filter(|&&(_, op, n)| op == OP_CONSTANT && n == 4)
        .map(|&(i, _, _)| (words[i + 2], words[i + 1], words[i + 3]))
        .collect();
    let constant = |id: u32| {
        constants
            .iter()
            .find(|c| c.0 == id)
            .map(|&(_, ty, value)| (ty, value))
    };
    // Semantics operand of each barrier (its word index).
    let mut operands = Vec::new();
    for &(i, op, n) in &insts {
        match (op, n) {
            (OP_CONTROL_BARRIER, 4) => operands.push(i + 3),
            (OP_MEMORY_BARRIER, 3) => operands.push(i + 2),
            _ => {}
        }
    }
    let mut bound = words[3];
    // old semantics id -> (new id, result type, new value)
    let mut new_ids: Vec<(u32, u32, u32, u32)> = Vec::new();
    for &at in &operands {
        let id = words[at];
        let Some((ty, value)) = constant(id) else {
            return Err(format!(
                "barrier semantics %{id} is not a 32-bit OpConstant (specialization constant?)"
            ));
        };
        let patched = value | MAKE_AVAILABLE | MAKE_VISIBLE;
        if value & STORAGE_CLASS_BITS == 0 || patched == value {
            continue;
        }
        let new = match new_ids.iter().find(|e| e.0 == id) {
            Some(e) => e.1,
            None => {
                let n = bound;
                bound += 1;
                new_ids.push((id, n, ty, patched));
                n
            }
        };
        words[at] = new;
        report.barriers += 1;
    }
    if new_ids.is_empty() {
        return Ok(report);
    }
    // Each new constant right after the constant it replaces (types come before, so the result
    // type is declared; ids need not be in order).
    let mut out = Vec::with_capacity(words.len() + 4 * new_ids.len());
    out.extend_from_slice(&words[..5]);
    for &(i, op, n) in &insts {
        out.extend_from_slice(&words[i..i + n]);
        if op == OP_CONSTANT && n == 4 {
            for &(old, new, ty, value) in &new_ids {
                if words[i + 2] == old {
                    out.extend_from_slice(&[(4 << 16) | OP_CONSTANT, ty, new, value]);
                }
            }
        }
    }
    out[3] = bound;
    report.constants = new_ids.len();
    *words = out;
    Ok(report)
}

/// The memory semantics values of every barrier in a module, in order (for tests and logs).
pub fn barrier_semantics(words: &[u32]) -> Result<Vec<u32>, String> {
    let insts = instructions(words)?;
    let mut v = Vec::new();
    for &(i, op, n) in &insts {
        let at = match (op, n) {
            (OP_CONTROL_BARRIER, 4) => i + 3,
            (OP_MEMORY_BARRIER, 3) => i + 2,
            _ => continue,
        };
        let id = words[at];
        let value = insts.iter().find_map(|&(j, o, m)| {
            (o == OP_CONSTANT && m == 4 && words[j + 2] == id).then_some(words[j + 3])
        });
        v.push(value.ok_or_else(|| format!("semantics %{id} is not a constant"))?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::gpu::matmul::{coop_spec, tiled_spec, CoopConvention};
    use crate::gpu::shaders::{spirv_words, CoopShape};
    use crate::gpu::tune::{COOP_DEFAULT, TILED_SOFTWARE};

    fn spirv(spec: &crate::gpu::shaders::Specialization) -> Vec<u32> {
        spirv_words(spec, &naga::back::spv::Options::default()).unwrap()
    }

    #[test]
    fn coop_barriers_gain_make_available_and_visible() {
        // The coop shader's workgroupUniformLoad is a barrier pair; naga writes it under the
        // Vulkan memory model without MakeAvailable/MakeVisible.
        let spec = coop_spec(
            CoopShape {
                t: 16,
                acc: DType::F32,
            },
            32,
            CoopConvention::ALL[0],
            COOP_DEFAULT,
            true,
        );
        let mut words = spirv(&spec);
        let before = barrier_semantics(&words).unwrap();
        assert!(!before.is_empty());
        assert!(
            before
                .iter()
                .all(|s| s & (MAKE_AVAILABLE | MAKE_VISIBLE) == 0),
            "{before:x?}"
        );
        let len = words.len();
        let report = patch_barrier_semantics(&mut words).unwrap();
        assert!(report.vulkan_memory_model);
        assert_eq!(report.barriers, before.len());
        let after = barrier_semantics(&words).unwrap();
        assert_eq!(after.len(), before.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(*a, b | MAKE_AVAILABLE | MAKE_VISIBLE);
        }
        assert_eq!(words.len(), len + 4 * report.constants);
        // Idempotent: a second pass changes nothing.
        let again = patch_barrier_semantics(&mut words).unwrap();
        assert_eq!(again.barriers, 0);
    }

    #[test]
    fn glsl450_modules_are_left_alone() {
        let spec = tiled_spec(DType::F32, DType::F32, TILED_SOFTWARE, true);
        let mut words = spirv(&spec);
        let copy = words.clone();
        let r = patch_barrier_semantics(&mut words).unwrap();
        assert!(!r.vulkan_memory_model);
        assert_eq!(r.barriers, 0);
        assert_eq!(words, copy);
        assert!(!barrier_semantics(&words).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(patch_barrier_semantics(&mut vec![1, 2, 3]).is_err());
        let mut w = vec![MAGIC, 0x10000, 0, 10, 0, 0x0005_0001];
        assert!(patch_barrier_semantics(&mut w)
            .unwrap_err()
            .contains("malformed"));
    }
}
