"""Pin MKL's code path, the one CPU arithmetic choice that differs by vendor and costs nothing.

Why: MKL (torch's BLAS on x86, used by the linear layers and the convolutions oneDNN leaves
to im2col + GEMM) picks its kernels by CPU: AVX-512 ones on recent Intel, others on AMD and
older Intel. Different kernels sum in another order, the last bits differ, and a closed-loop
tracker turns that into another trajectory (docs/reproducibility.md: on this project's Intel
Xeon, MKL's AVX2 branch against its native one moves the 1-stage tracker's IoU on a
synthetic sequence by 0.006). `MKL_CBWR=AVX2` (MKL's conditional numerical reproducibility)
fixes the branch to AVX2 on every x86 CPU that has it, at no measurable cost here (within
the 10% noise of this shared machine). What stays machine-dependent (oneDNN's kernels, whose
AVX2 pin costs 1.5x; thread counts) is measured there instead of removed.

A value already in the environment is kept (`MKL_CBWR=AUTO` restores MKL's own choice). The
variable must be set before MKL's first call: entry points call `pin_blas_branch()` first.
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping

ENV = "MKL_CBWR"
BRANCH = "AVX2"


def _has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False  # no MKL there
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return any(line.startswith("flags") and " avx2" in line for line in handle)
    except OSError:
        return False


def pin_blas_branch(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set MKL_CBWR=AVX2 in `environ` (default: this process's) where it is unset and the CPU
    has AVX2; returns the value in effect (None: unset, MKL chooses)."""
    environ = os.environ if environ is None else environ
    if ENV not in environ and _has_avx2():
        environ[ENV] = BRANCH
    return environ.get(ENV)
