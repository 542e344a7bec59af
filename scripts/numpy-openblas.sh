# Sourced by the side-by-side scripts: the in-process OpenBLAS is PERFLEDGER_OPENBLAS if set, else
# numpy's (OpenBLAS 0.3.3x, which knows recent CPUs) from the Python in $PY, else the system
# library that perfledger finds itself (Debian 12's 0.3.21 runs its Prescott kernels on CPUs newer
# than it: the row's provenance names the core type it chose).
if [ -z "${PERFLEDGER_OPENBLAS:-}" ] && "$PY" -c 'import numpy' 2>/dev/null; then
  NUMPY_OPENBLAS=$("$PY" -c 'import glob, os, numpy
d = os.path.dirname(os.path.dirname(numpy.__file__))
print((sorted(glob.glob(os.path.join(d, "numpy.libs", "libscipy_openblas*.so"))) + [""])[0])' 2>/dev/null || true)
  [ -z "$NUMPY_OPENBLAS" ] || export PERFLEDGER_OPENBLAS=$NUMPY_OPENBLAS
fi
