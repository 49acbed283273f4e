"""Previous-map priors for training a local model that reads one (`pixtrack-plus`).

At tracking time clip frame k's prior is the previous full-frame map cropped by ROI k. A
training clip holds each frame's ground truth in its own ROI (`placement` boxes, pixels), so
the prior of frame k is frame k - 1's ROI map moved into ROI k (`tracker.roi.reframe`: one
affine resampling, zeros outside ROI k - 1, as the pasted map is zero outside its ROI).

A model trained on exact previous masks learns to copy them and then drifts with its own
errors (MaskTrack's ablation: without deformation the model collapses). So the ground-truth
prior is deformed the way MaskTrack and Lucid Data Dreaming do it: a random similarity
(shift, scale, small rotation), a smooth random warp (a coarse displacement grid upsampled
bicubically, the cheap stand-in of a thin-plate spline), dilation or erosion, and now and
then no prior at all. `PriorConfig.own_rate` of the clips instead read the model's own
previous prediction (detached) from frame 2 on: training on its own outputs, as S2S did and
as Sec. 5.1 step 5 does for ROIs.

A noisy inserted frame (Sec. 3.3 step 4) keeps the placement its clip frame would have had
(the intruder is shown where the object was expected) and its ground truth is empty, so the
prior of the frame after it is empty too: the model must recover from its memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tracker.roi import roi_to_roi_theta


@dataclass(frozen=True)
class PriorConfig:
    """How ground-truth priors are deformed (units: the ROI's normalised half-width, 1 = 112 px)."""

    shift: float = 0.1
    """Largest centre shift, in x and in y."""
    scale: float = 0.08
    """Scale drawn from [1 - scale, 1 + scale]."""
    rotation: float = 5.0
    """Largest rotation in degrees."""
    warp: float = 0.04
    """Standard deviation of the smooth warp's control-point displacements."""
    warp_points: int = 4
    """Control points a side of the smooth warp."""
    max_dilation: int = 6
    """Largest dilation radius in ROI pixels (a radius drawn from [-max_erosion, max_dilation])."""
    max_erosion: int = 3
    drop_rate: float = 0.05
    """Share of frames whose prior is empty (the object lost in the previous frame)."""
    own_rate: float = 0.5
    """Share of clips whose priors, from frame 2 on, are the model's own previous maps."""

    def __post_init__(self) -> None:
        for name in ("shift", "scale", "rotation", "warp", "drop_rate", "own_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"prior.{name} = {getattr(self, name)}: must be >= 0")
        for name in ("drop_rate", "own_rate"):
            if getattr(self, name) > 1:
                raise ValueError(f"prior.{name} = {getattr(self, name)}: a share, must be <= 1")
        if self.scale >= 1:
            raise ValueError(f"prior.scale = {self.scale}: must be below 1")
        if self.warp_points < 2:
            raise ValueError(f"prior.warp_points = {self.warp_points}: needs at least 2")
        if self.max_dilation < 0 or self.max_erosion < 0:
            raise ValueError("prior.max_dilation and prior.max_erosion must be >= 0")


def _random_similarity(count: int, config: PriorConfig, generator: torch.Generator) -> Tensor:
    """[N, 3, 3] random similarities of the target ROI's normalised coordinates."""
    def uniform(low: float, high: float, *shape: int) -> Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    scale = uniform(1 - config.scale, 1 + config.scale, count)
    angle = uniform(-config.rotation, config.rotation, count) * (math.pi / 180)
    shift = uniform(-config.shift, config.shift, count, 2)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    matrix = torch.zeros(count, 3, 3)
    matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 0, 2] = cos, -sin, shift[:, 0]
    matrix[:, 1, 0], matrix[:, 1, 1], matrix[:, 1, 2] = sin, cos, shift[:, 1]
    matrix[:, 2, 2] = 1
    return matrix


def _dilate_or_erode(maps: Tensor, radius: int) -> Tensor:
    if radius == 0:
        return maps
    r = abs(radius)
    pooled = F.max_pool2d(maps if radius > 0 else -maps, 2 * r + 1, stride=1, padding=r)
    return pooled if radius > 0 else -pooled


def deformed_priors(masks: Tensor, placement: Tensor, config: PriorConfig,
                    generator: torch.Generator) -> Tensor:
    """Ground-truth priors of clip frames 1..T: frame k - 1's mask, deformed, in ROI k.

    masks `[B, T + 1, 1, S, S]` (each frame's ROI ground truth), placement `[B, T + 1, 3]`
    -> priors `[B, T, 1, S, S]` in [0, 1]. Deterministic for a generator state.
    """
    batch, steps = masks.shape[0], masks.shape[1] - 1
    size = masks.shape[-1]
    previous = masks[:, :-1].reshape(batch * steps, 1, size, size).float().cpu()
    source = placement[:, :-1].reshape(-1, 3).float().cpu()
    target = placement[:, 1:].reshape(-1, 3).float().cpu()
    count = previous.shape[0]
    move = torch.cat((roi_to_roi_theta(source, target), torch.tensor([[[0.0, 0.0, 1.0]]]).expand(count, 1, 3)), 1)
    theta = (move @ _random_similarity(count, config, generator))[:, :2]
    grid = F.affine_grid(theta, [count, 1, size, size], align_corners=False)
    if config.warp > 0:
        points = config.warp_points
        offsets = torch.randn(count, 2, points, points, generator=generator) * config.warp
        grid = grid + F.interpolate(offsets, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    priors = F.grid_sample(previous, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    radii = torch.randint(-config.max_erosion, config.max_dilation + 1, (count,), generator=generator)
    priors = torch.cat([_dilate_or_erode(priors[i:i + 1], int(radii[i])) for i in range(count)])
    keep = (torch.rand(count, generator=generator) >= config.drop_rate).to(priors.dtype)
    priors = (priors * keep[:, None, None, None]).clamp(0, 1)
    return priors.reshape(batch, steps, 1, size, size).to(masks.device)


def own_prediction_clips(batch: int, config: PriorConfig, generator: torch.Generator) -> Tensor:
    """[B] bool: which clips read their own previous predictions from frame 2 on."""
    return torch.rand(batch, generator=generator) < config.own_rate
