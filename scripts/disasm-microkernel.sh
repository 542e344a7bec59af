#!/usr/bin/env bash
# Disassemble the x86-64 matmul micro-kernels of the release build and check the hot loop:
# FMA (vfmadd*/vdpbf16ps) count, distinct accumulator registers, and stack traffic (spills) inside
# the loop.
# Writes results/microkernel-disasm.md. Usage: scripts/disasm-microkernel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p perfledger-kernels --example mmtime
BIN=target/release/examples/mmtime
OUT=results/microkernel-disasm.md
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
objdump -d --no-show-raw-insn -C "$BIN" > "$TMP/all.s"
{
echo "# Micro-kernel disassembly check"
echo
echo "Command: \`scripts/disasm-microkernel.sh\` ($(date -u +%F), $(rustc -V))."
echo "The hot loop is the largest backward-branch loop of the function; an accumulator is a register"
echo "written by an FMA (vfmadd*, or vdpbf16ps: 2 k steps each) in the loop; spills are memory"
echo "operands on %rsp/%rbp inside the loop."
for sym in avx512_12x32 avx2_6x16 avx512bf16_12x32; do
  awk -v s="<perfledger_kernels::cpu::matmul::micro::x86::$sym>:" 'index($0, s) {on=1} on && /^$/ {exit} on {print}' "$TMP/all.s" > "$TMP/$sym.s"
  echo
  echo "## $sym"
  echo
  python3 - "$TMP/$sym.s" <<'PY'
import re, sys
ins = [l.rstrip() for l in open(sys.argv[1]) if re.match(r"\s+[0-9a-f]+:", l)]
addr = lambda l: int(l.split(":")[0], 16)
best = []
for l in ins:
    m = re.search(r"\sj\w+\s+([0-9a-f]+)\s", l + " ")
    if m and int(m.group(1), 16) < addr(l):
        body = [x for x in ins if int(m.group(1), 16) <= addr(x) <= addr(l)]
        if len(body) > len(best):
            best = body
fma = [l for l in best if "vfmadd" in l or "vdpbf16ps" in l]
accs = sorted({l.split(",")[-1].strip() for l in fma})
spills = [l for l in best if re.search(r"%r[sb]p\)", l)]
print(f"- hot loop: {len(best)} instructions, {len(fma)} FMAs (vfmadd*/vdpbf16ps), {len(accs)} distinct accumulators "
      f"({', '.join(accs)}), {len(spills)} stack accesses")
print()
print("```")
for l in best:
    print(re.sub(r"^\s+", "", l))
print("```")
PY
done
} > "$OUT"
grep -E "^## |hot loop" "$OUT"
