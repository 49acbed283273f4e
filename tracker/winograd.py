"""Winograd F(2x2, 3x3) convolution for the small, wide 3x3 convolutions of the local model's head.

Why: on a CPU the head after the backbone (F-CNN, the two ConvLSTM layers: 3x3 'same'
convolutions of 512-1024 channels on a 14x14 map) costs about a third of the VGG16 floor
(issue 8). oneDNN runs them as direct convolutions, 9 multiply-adds per weight and output.
Winograd's minimal filtering (Lavin & Gray 2016) computes each 2x2 output tile from a 4x4
input tile with 16 products instead of 36: the convolution becomes 16 matrix products
[tiles, C_in] x [C_in, C_out], 2.25x fewer multiply-adds, done by the BLAS at full speed.
(That orientation, the few tiles as rows, runs the products 1.1-1.8x faster in MKL than
[C_out, C_in] x [C_in, tiles] on these shapes, 9.4 vs 17.0 ms for 768 -> 1024 channels at two
threads; a whole convolution 6-15% faster.)

    V = B^T d B       input tiles (4x4, stride 2), per channel
    U = G g G^T       filters, transformed once per weight version and cached
    M = U V           16 matrix products over channels
    Y = A^T M A       2x2 output tiles

The error is that of fp32 arithmetic (relative 1e-6; tests compare with F.conv2d). Used only
where it pays: inference (no autograd), CPU, stride 1, 3x3, 'same' padding, fp32 (no
autocast), wide layers (`MIN_CHANNEL_PRODUCT`) and small maps (`MAX_PIXELS`). Everything
else falls through to F.conv2d, so training, bf16 autocast and CUDA (where cuDNN picks
Winograd itself) are unchanged.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_PIXELS = 32 * 32
"""Largest H*W transformed; above it (the backbone's 224..28 maps) oneDNN's direct conv wins."""
MIN_CHANNEL_PRODUCT = 512 * 512
"""Smallest C_in * C_out transformed: below it the transforms cost more than the products save
(measured on a 2-core AMD EPYC: 128 -> 256 channels is 35% slower, 512 -> 512 8% faster)."""

ENV_SWITCH = "PIXTRACK_WINOGRAD"
"""Set to 0 to disable (A/B timing, or to rule it out when debugging)."""

# The filter transform G (Lavin & Gray's F(2x2, 3x3)); B^T and A^T, which hold only 0 and +-1,
# are written out as additions in `_input_transform_1d` and `_output_transform_1d`.
_G = torch.tensor([[1.0, 0.0, 0.0],
                   [0.5, 0.5, 0.5],
                   [0.5, -0.5, 0.5],
                   [0.0, 0.0, 1.0]], dtype=torch.float64)


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


def applies(x: Tensor, conv: nn.Conv2d) -> bool:
    """Whether `winograd_conv3x3` is used for this call (see the module docstring)."""
    return (
        enabled()
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")  # bf16 autocast: oneDNN's bf16 kernels are faster
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and x.dim() == 4
        and x.shape[-2] * x.shape[-1] <= MAX_PIXELS
        and conv.in_channels * conv.out_channels >= MIN_CHANNEL_PRODUCT
    )


class WinogradConv2d(nn.Conv2d):
    """An nn.Conv2d (same parameters, same state_dict) that runs by Winograd where it pays."""

    def forward(self, x: Tensor) -> Tensor:
        if applies(x, self):
            return winograd_conv3x3(x, self.weight, self.bias, transformed_filters(self))
        return super().forward(x)


CACHE_ATTRIBUTE = "_winograd_filters"
"""Where a Conv2d keeps its transformed filters: (weight data_ptr, weight version, U).

On the module, so the cache dies with it; the in-place version counter changes on every
optimiser step and load_state_dict, and the data pointer on `.to()`, either of which
invalidates the entry."""


def transformed_filters(conv: nn.Conv2d) -> Tensor:
    """U = G g G^T for every (out, in) filter of `conv`: [16, C_in, C_out], cached on it."""
    weight = conv.weight
    cached = getattr(conv, CACHE_ATTRIBUTE, None)
    if cached is not None and cached[0] == weight.data_ptr() and cached[1] == weight._version:
        return cached[2]
    u = filter_transform(weight)
    setattr(conv, CACHE_ATTRIBUTE, (weight.data_ptr(), weight._version, u))
    return u


def filter_transform(weight: Tensor) -> Tensor:
    """[C_out, C_in, 3, 3] -> U [16, C_in, C_out] (the right factor of the 16 products),
    computed in float64 so only fp32 rounds."""
    g = _G.to(weight.device)
    u = torch.einsum("ak,oikl,bl->abio", g, weight.detach().double(), g)
    return u.reshape(16, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def winograd_conv3x3(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     filters: Tensor | None = None) -> Tensor:
    """3x3, stride 1, padding 1 convolution of x [B, C_in, H, W] by Winograd F(2x2, 3x3).

    `filters`: `filter_transform(weight)` if already at hand (cached), else computed here.
    The input and output transforms are written out as additions (B and A hold only 0 and
    +-1), which is several times faster than general small matrix products.
    """
    if x.dim() != 4 or weight.shape[-2:] != (3, 3) or x.shape[1] != weight.shape[1]:
        raise ValueError(f"winograd_conv3x3: weight {tuple(weight.shape)} does not fit input {tuple(x.shape)}")
    batch, channels, height, width = x.shape
    tiles_h, tiles_w = (height + 1) // 2, (width + 1) // 2
    # [C, B, H, W] so that the tiles of one channel sit together in the product's columns.
    # Pad 1 on the top/left ('same'), and on the bottom/right up to 2 * tiles + 2.
    padded = F.pad(x.transpose(0, 1), (1, 2 * tiles_w + 1 - width, 1, 2 * tiles_h + 1 - height))
    rows = _input_transform_1d(padded, dim=2, tiles=tiles_h)  # [4, C, B, th, W + pad]
    v = _input_transform_1d(rows, dim=4, tiles=tiles_w)  # [4 (w), 4 (h), C, B, th, tw]
    v = v.transpose(0, 1).reshape(16, channels, batch * tiles_h * tiles_w)
    if filters is None:
        filters = filter_transform(weight)
    out_channels = weight.shape[0]
    # [tiles, C_in] x [C_in, C_out]: the transposed view of v costs no copy (BLAS flags).
    m = torch.bmm(v.transpose(1, 2), filters).view(4, 4, batch, tiles_h, tiles_w, out_channels)
    cols = _output_transform_1d(m, dim=1)  # [2 (w), 4 (h), B, th, tw, C_out]
    y = _output_transform_1d(cols, dim=1)  # [2 (h), 2 (w), B, th, tw, C_out]
    y = y.permute(2, 5, 3, 0, 4, 1).reshape(batch, out_channels, 2 * tiles_h, 2 * tiles_w)
    y = y[:, :, :height, :width]
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y.contiguous()


def _input_transform_1d(d: Tensor, dim: int, tiles: int) -> Tensor:
    """B^T applied along `dim` to every 4-long window of stride 2; the new axis of 4 goes first."""
    d0, d1, d2, d3 = (d.narrow(dim, k, 2 * tiles - 1)[(slice(None),) * dim + (slice(None, None, 2),)]
                      for k in range(4))
    return torch.stack((d0 - d2, d1 + d2, d2 - d1, d1 - d3))


def _output_transform_1d(m: Tensor, dim: int) -> Tensor:
    """A^T applied along `dim` (size 4); the new axis of 2 goes first."""
    m0, m1, m2, m3 = m.unbind(dim)
    return torch.stack((m0 + m1 + m2, m1 - m2 - m3))
