"""Arithmetic precision of tracking: fp32, or bf16 / fp16 autocast where the device runs them fast.

Why: on CPUs with AVX512-BF16 (AMD Zen 4, Intel Sapphire Rapids) oneDNN runs bf16
convolutions about 1.8x faster than fp32, the backbone included; on CUDA, fp16 or bf16 use
the tensor cores. Autocast keeps the weights in fp32 and casts per operation (convolutions
and matrix products in the low precision, reductions and the LSTM's elementwise state
updates in fp32), so a checkpoint serves every precision. Whether a precision stays accurate
is measured, not assumed: `python -m evaluation.tables --precision bf16` beside fp32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
Method = TypeVar("Method", bound=Callable[..., Any])


def check_precision(precision: str, device: torch.device) -> str:
    """`precision` if `device` can run it, else a ValueError naming both."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision fp16 needs a CUDA device (got {device}); use bf16 on a CPU")
    return precision


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """The autocast region of `precision` on `device` (nothing for fp32)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def tracking_step(method: Method) -> Method:
    """A tracker's `init` / `track`: no autograd, and the autocast of the tracker's own
    `precision` on its `device` (both attributes of `self`)."""

    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad(), autocast(self.device, self.precision):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
