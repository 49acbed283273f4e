"""Cheap stand-ins shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyBackbone(nn.Module):
    """VGG16Pool4's interface at a fraction of the cost: [B, 3, h, w] 0..255 -> [B, 512, h/16, w/16].

    Tests of tracking logic use it so that they do not pay VGG16's ~0.3 s a frame; the real
    backbone has tests of its own (test_backbone.py) and a few slow end-to-end ones.
    """

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(512, 3, 1, 1, generator=generator), persistent=False)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = images / 255.0
        if mask is not None:
            x = x * mask
        return torch.tanh(F.conv2d(F.avg_pool2d(x, 16), self.weight))
