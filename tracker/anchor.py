"""T(theta)(Z_A): the anchor square moved and scaled by theta, rendered differentiably (Eq. 4).

The paper applies a spatial transformer to a fixed all-ones anchor. Sampling an all-ones image
with `affine_grid` + `grid_sample` gives a box whose edges are one anchor-pixel ramps; here the
same box is rendered analytically, as the exact fraction of each pixel's window that the box
covers. That is the anti-aliased version of the same picture: the rendered area equals the
box's area, and every theta component gets a gradient through the edge pixels. A `softness`
above 1 widens the window (a box-blurred box) so that the gradient reaches further.

Convention (docs/interfaces.md): on a map that stands for the whole W x H frame, normalised
x, y in [-1, 1] (align_corners=False), the box covers x in [tx - s, tx + s] and
y in [ty - s*gamma, ty + s*gamma], gamma = W / H: a square of side s*W pixels in the frame.
"""

from __future__ import annotations

import torch
from torch import Tensor


def anchor_box(theta: Tensor, aspect: Tensor | float) -> Tensor:
    """theta [B, 3] -> box edges [B, 4] = (x0, x1, y0, y1) in normalised frame coordinates."""
    tx, ty, s = theta.unbind(dim=1)
    gamma = _aspect(aspect, theta)
    return torch.stack((tx - s, tx + s, ty - s * gamma, ty + s * gamma), dim=1)


def render_anchor(theta: Tensor, aspect: Tensor | float, size: int | tuple[int, int] = 224,
                  softness: float = 1.0) -> Tensor:
    """The transformed anchor T(theta)(Z_A) as a [B, 1, H, W] map in [0, 1].

    `size`: 224 (the global model's map) or (H, W), e.g. a frame's own size. `softness`: the
    width in pixels of the window each pixel averages the box over (1 = exact pixel coverage).
    """
    if theta.dim() != 2 or theta.shape[1] != 3:
        raise ValueError(f"render_anchor: theta must be [B, 3] = (tx, ty, s), got {tuple(theta.shape)}")
    if softness <= 0:
        raise ValueError(f"render_anchor: softness = {softness} must be > 0 (pixels)")
    height, width = (size, size) if isinstance(size, int) else size
    x0, x1, y0, y1 = anchor_box(theta, aspect).unbind(dim=1)
    profile_x = _coverage(x0, x1, width, softness, theta)   # [B, W]
    profile_y = _coverage(y0, y1, height, softness, theta)  # [B, H]
    return (profile_y[:, :, None] * profile_x[:, None, :]).unsqueeze(1)


def _coverage(lo: Tensor, hi: Tensor, pixels: int, softness: float, like: Tensor) -> Tensor:
    """Fraction of each pixel's window [c - w/2, c + w/2] inside [lo, hi]; c = pixel centres.

    min(c + w/2, hi) - max(c - w/2, lo) = min(w, c + w/2 - lo, hi - c + w/2, hi - lo), written so
    that windows wholly inside are exactly 1 and wholly outside exactly 0 (no rounding residue).
    """
    centres = (2 * torch.arange(pixels, device=like.device, dtype=like.dtype) + 1) / pixels - 1
    window = 2 * softness / pixels  # softness pixels of 2 / pixels normalised units each
    lo, hi = lo[:, None], hi[:, None]
    inside = torch.minimum(torch.minimum((centres - lo) / window + 0.5, (hi - centres) / window + 0.5),
                           (hi - lo) / window)
    return inside.clamp(0.0, 1.0)


def _aspect(aspect: Tensor | float, theta: Tensor) -> Tensor:
    batch = theta.shape[0]
    if isinstance(aspect, Tensor):
        if aspect.shape not in ((batch,), ()):
            raise ValueError(f"aspect must be [B] = [{batch}] (W / H), got {tuple(aspect.shape)}")
        return aspect.to(theta.dtype).expand(batch)
    return torch.full((batch,), float(aspect), dtype=theta.dtype, device=theta.device)
