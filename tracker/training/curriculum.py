"""The dilation curriculum of the global model (paper Sec. 4 and Sec. 5.1 step 2).

Early in training the global model's input maps Z_{0:t-1} are dilated, which makes a small
object a large blob and the regression easier; the kernel shrinks on a schedule (the paper:
every ten thousand iterations) until it is 1, i.e. no dilation. Targets are never dilated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class DilationSchedule:
    """Kernel side `start`, shrunk by `step` every `every` iterations, never below `final`.

    Sides are odd (a centred kernel); an even side is rounded up. `start=1` disables the
    curriculum.
    """

    start: int = 21
    step: int = 4
    every: int = 10_000
    final: int = 1

    def __post_init__(self) -> None:
        if self.start < 1 or self.final < 1:
            raise ValueError(f"dilation kernel sides must be >= 1, got start={self.start}, final={self.final}")
        if self.step < 0 or self.every < 1:
            raise ValueError(f"dilation schedule needs step >= 0 and every >= 1, got step={self.step}, every={self.every}")

    def kernel(self, iteration: int) -> int:
        """The odd kernel side in force at `iteration` (0-based)."""
        side = max(self.final, self.start - self.step * (iteration // self.every))
        return side if side % 2 == 1 else side + 1


def dilate(maps: Tensor, kernel: int) -> Tensor:
    """Grey-level dilation (a max filter) of `[..., H, W]` maps by a `kernel` x `kernel` square."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"dilation kernel must be an odd side >= 1, got {kernel}")
    if kernel == 1:
        return maps
    shape = maps.shape
    flat = maps.reshape(-1, 1, shape[-2], shape[-1])
    return F.max_pool2d(flat, kernel_size=kernel, stride=1, padding=kernel // 2).reshape(shape)

