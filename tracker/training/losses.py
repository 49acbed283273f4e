"""The two training losses: Eq. 2 (local segmentation) and Eq. 4 (global attention).

Normalisation (the paper's sums, made practical without changing their meaning):

- Eq. 2 is, per clip, `L + lambda * min(beta, mean_t V(z_hat_t))` with L the *sum* of pixel
  cross-entropies over the T frames and V the *sum* of absolute neighbour differences of one
  224x224 map. `reduction="sum"` returns exactly that (averaged over the clips of a batch).
  `reduction="mean"` (the default) divides the whole per-clip expression by the number of
  pixels in L (T*H*W): a constant factor, so the minimiser, beta's threshold (it still
  applies to the per-frame TV sum, as in the paper) and lambda's weight *relative to the
  cross-entropy* are exactly the paper's; only the gradient scale differs (O(1) per pixel
  instead of O(T*H*W)), which suits the usual Adam learning rates. Dividing only L by the
  pixel count would have multiplied lambda's effective weight by T*H*W.
- Eq. 4 has no published lambda or weight; it is used as a mean over the counted frames
  (t = i..T) and a mean over pixels of the weighted squared error, plus lambda times the
  (unsquared, as written) L2 norm of theta_t - theta_{t-1}.

The global box target: with object pixels weighted `object_weight` times the background,
the minimiser of the pixel term over (tx, ty, s) is close to the object's square box (the
square around its bounding box). Checked numerically (theta optimised alone): for 6:1 wide
and tall bars, weight 40 gives a box of 0.99-1.0 times the square box covering >= 99 % of
the object; weight 20 only 0.95-0.97 (the ends of the bar are traded for background), and
weight 5 covers 36-70 % of elongated objects; discs and L shapes are enclosed from weight 10
on. The tracker's ROI is that box doubled (docs/design.md), so the box must enclose, and a little
slack costs nothing.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

LOCAL_LAMBDA = 1e-4
"""lambda of Eq. 2 (paper Sec. 3.3)."""
LOCAL_BETA = 1000.0
"""beta of Eq. 2: the cap on the mean total variation (paper Sec. 3.3)."""
GLOBAL_LAMBDA = 0.1
"""lambda of Eq. 4 (not published): weight of ||theta_t - theta_{t-1}||_2."""
GLOBAL_OBJECT_WEIGHT = 40.0
"""Weight of object pixels in Eq. 4's L2 (background 1); see the module docstring."""
GLOBAL_FIRST_FRAME = 5
"""i of Eq. 4: the loss counts frames t = i..T (paper Sec. 4: i = 5 for T = 32)."""


class LossParts(NamedTuple):
    """A loss to minimise and its two terms, detached, for logging."""

    total: Tensor
    data: Tensor
    regulariser: Tensor


def total_variation(maps: Tensor) -> Tensor:
    """V of Eq. 2 for each map: `[..., H, W]` -> `[...]`, sum of |vertical| + |horizontal| steps."""
    if maps.dim() < 2:
        raise ValueError(f"total_variation needs maps [..., H, W], got shape {tuple(maps.shape)}")
    vertical = (maps[..., 1:, :] - maps[..., :-1, :]).abs().sum(dim=(-2, -1))
    horizontal = (maps[..., :, 1:] - maps[..., :, :-1]).abs().sum(dim=(-2, -1))
    return vertical + horizontal


def local_loss(
    logits: Tensor,
    target: Tensor,
    *,
    lam: float = LOCAL_LAMBDA,
    beta: float = LOCAL_BETA,
    reduction: Literal["mean", "sum"] = "mean",
) -> LossParts:
    """Eq. 2 for a batch of clips: `logits`, `target` `[B, T, 1, H, W]` (or `[B, T, H, W]`).

    `logits` are the local model's pre-sigmoid outputs for frames 1..T (the initial frame is
    not predicted); `target` holds the ROI ground truth in [0, 1] (all zero for an inserted
    noisy frame). Cross-entropy from logits (numerically safe at any logit); computed in
    float32 even under autocast. See the module docstring for `reduction`.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    if logits.dim() not in (4, 5):
        raise ValueError(f"local_loss needs [B, T, 1, H, W] or [B, T, H, W], got {tuple(logits.shape)}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    logits = logits.float()
    target = target.float()
    batch, frames = logits.shape[:2]
    cross_entropy = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    data = cross_entropy.reshape(batch, -1).sum(dim=1)  # L of Eq. 2, per clip
    tv = total_variation(torch.sigmoid(logits)).reshape(batch, frames, -1).sum(dim=2)
    regulariser = lam * torch.clamp(tv.mean(dim=1), max=beta)  # lambda * min(beta, mean_t V)
    if reduction == "mean":
        pixels = cross_entropy[0].numel()  # T * H * W
        data = data / pixels
        regulariser = regulariser / pixels
    data, regulariser = data.mean(), regulariser.mean()
    return LossParts(data + regulariser, data.detach(), regulariser.detach())


def weighted_l2(rendered: Tensor, target: Tensor, object_weight: float = GLOBAL_OBJECT_WEIGHT) -> Tensor:
    """Per-map mean of w * (rendered - target)^2, w = 1 + (object_weight - 1) * target.

    `rendered`, `target`: `[..., H, W]` (a soft target weighs its pixels proportionally);
    returns `[...]`.
    """
    if rendered.shape != target.shape:
        raise ValueError(f"rendered {tuple(rendered.shape)} and target {tuple(target.shape)} differ in shape")
    if object_weight <= 0:
        raise ValueError(f"object_weight must be positive, got {object_weight}")
    rendered, target = rendered.float(), target.float()
    weight = 1.0 + (object_weight - 1.0) * target
    return (weight * (rendered - target) ** 2).mean(dim=(-2, -1))


def global_loss(
    theta: Tensor,
    rendered: Tensor,
    target: Tensor,
    *,
    object_weight: float = GLOBAL_OBJECT_WEIGHT,
    lam: float = GLOBAL_LAMBDA,
    first_frame: int = GLOBAL_FIRST_FRAME,
) -> LossParts:
    """Eq. 4 for a batch of sequences.

    Position k of each array belongs to frame t = k + 1 of the clip (frame 0 has no
    prediction): `theta` `[B, T, 3]` = theta_1..theta_T, `rendered` = T(theta_t)(Z_A) and
    `target` = Z_t, both `[B, T, 1, S, S]` (or `[B, T, S, S]`). Frames t = first_frame..T
    count (the burn-in before is free); the smoothness term of frame t compares theta_t with
    theta_{t-1}, so first_frame >= 2.
    """
    if theta.dim() != 3 or theta.shape[-1] != 3:
        raise ValueError(f"theta must be [B, T, 3], got {tuple(theta.shape)}")
    frames = theta.shape[1]
    if rendered.shape[:2] != theta.shape[:2]:
        raise ValueError(f"rendered {tuple(rendered.shape)} does not match theta {tuple(theta.shape)}")
    if not 2 <= first_frame <= frames:
        raise ValueError(f"first_frame must be in [2, T={frames}], got {first_frame}")
    k = first_frame - 1
    pixel = weighted_l2(rendered[:, k:], target[:, k:], object_weight)
    pixel = pixel.reshape(pixel.shape[0], pixel.shape[1], -1).sum(dim=2)  # [B, counted frames]
    theta = theta.float()
    step = torch.linalg.vector_norm(theta[:, k:] - theta[:, k - 1 : -1], dim=-1)
    data, regulariser = pixel.mean(), lam * step.mean()
    return LossParts(data + regulariser, data.detach(), regulariser.detach())
