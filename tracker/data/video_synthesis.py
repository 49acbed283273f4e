"""Video clips synthesised from single annotated frames (static-image pre-training).

MaskTrack, RGMP and STM pre-train on videos made from still images; Lucid Data Dreaming
makes them from a video's first frame. Here any annotated frame of a training sequence
becomes a clip: its object is cut out, moved (a smooth drift, scale 0.85-1.15, a little
rotation) and deformed by a smooth random warp (a cheap stand-in for a thin-plate spline),
then pasted with a feathered alpha onto a background that moves by its own small affine:
another sequence's frame, or the object's own frame, each with its annotated object filled
in from the surroundings (push-pull blur fill). Objects cut from other sequences pass in
front of or behind the target as distractors; the target's mask excludes the pixels they
hide. A slowly varying brightness/contrast/gamma/colour jitter lights every frame.

Everything a clip needs is drawn from `numpy.random.SeedSequence([seed, clip, part])`, one
stream a part (sources, target motion, background motion, lighting, distractors), so
switching a part off leaves the others as they were; a frame is rendered on demand from
the clip's plan and its index alone, so frame(i) depends only on (seed, clip, i).

    synthesize_sequences(sources, count=300, config=SynthesisConfig(), seed=0)

returns lazily rendered `Sequence`s that mix with real ones in training
(`pixtrack train ... --synthesize N`); `pixtrack synthesize DATA OUT` writes a few to look at.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence as Seq
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tracker.data.sequence import Sequence

GENERATOR = "pixtrack-video-synthesis/1"
_SOURCES, _TARGET, _BACKGROUND, _LIGHTING, _DISTRACTORS = range(5)
"""Random stream of each part of a clip."""
_WARP_GRID = 4
"""Control points a side of the smooth deformation field."""
_WARP_SAMPLES = 24
"""Samples a side of the deformation field once interpolated."""


@dataclass(frozen=True)
class SynthesisConfig:
    """How clips are synthesised. Fractions are of the frame diagonal unless said otherwise."""

    frames: int = 40
    """Frames a clip: a local-model clip (16 after the first) needs 17, a global one (32) 33."""
    object_scale: float = 0.15
    """The object's scale swings within 1 -/+ this (0.85-1.15)."""
    object_rotation: float = 10.0
    """Largest rotation of the object, degrees."""
    object_drift: float = 0.25
    """Largest distance the object's centre travels over the clip."""
    object_warp: float = 0.05
    """Amplitude of the smooth deformation, a fraction of the object's size (0: rigid)."""
    background_rotation: float = 3.0
    """Largest rotation of the background, degrees."""
    background_scale: float = 0.05
    """The background's zoom swings by -/+ this around 1 + this (never below 1, so a shift or
    rotation shows little of the reflected border)."""
    background_shift: float = 0.03
    """Largest shift of the background, a fraction of the frame side."""
    other_background: float = 0.7
    """Probability that the background is another sequence's frame (else the object's own
    frame with the object filled in)."""
    lighting: float = 0.15
    """Amplitude of the slowly varying brightness, contrast and (a third of it) per-channel
    gain jitter (0: off)."""
    gamma: float = 0.2
    """A clip's gamma is drawn within exp(-/+ this), constant over the clip (0: off)."""
    feather: int = 2
    """Radius in pixels of the alpha feathering inside the object's outline (0: hard edges)."""
    distractors: int = 2
    """Most distractor objects a clip."""
    distractor_probability: float = 0.5
    """Probability of each distractor slot being used."""
    front_probability: float = 0.5
    """Probability that a distractor passes in front of the target (else behind it)."""
    min_object_pixels: int = 64
    """Annotated frames whose object is smaller are skipped when picking cut-outs."""
    fill_margin: int = 5
    """Pixels the annotated object is grown by before it is filled in (its outline's halo)."""
    cache_clips: int = 64
    """Clips whose cut-outs and backgrounds stay in memory, ~2-5 MB each at 854x480 (the rest
    are rebuilt on demand, ~0.1-0.4 s each: their source frames are decoded again)."""

    def __post_init__(self) -> None:
        ranges: dict[str, tuple[float, float]] = {
            "frames": (2, 10_000), "object_scale": (0, 0.5), "object_rotation": (0, 180), "object_drift": (0, 2),
            "object_warp": (0, 0.3), "background_rotation": (0, 30), "background_scale": (0, 0.3),
            "background_shift": (0, 0.3), "other_background": (0, 1), "lighting": (0, 0.5), "gamma": (0, 1),
            "feather": (0, 32), "distractors": (0, 8), "distractor_probability": (0, 1),
            "front_probability": (0, 1), "min_object_pixels": (1, 1 << 30), "fill_margin": (0, 64),
            "cache_clips": (1, 1 << 16),
        }
        whole = {"frames", "feather", "distractors", "min_object_pixels", "fill_margin", "cache_clips"}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    field.name in whole and not float(value).is_integer()):
                kind = "a whole number" if field.name in whole else "a number"
                raise ValueError(f"synthesis {field.name}={value!r} must be {kind}")
            low, high = ranges[field.name]
            if not low <= value <= high:
                raise ValueError(f"synthesis {field.name}={value} is outside [{low}, {high}]")


# ---------------------------------------------------------------------------- cut-outs


@dataclass
class ObjectCut:
    """An annotated object cut out of its frame: premultiplied RGB and coverage, cropped."""

    rgba: torch.Tensor  # (1, 4 or 5, h, w) float32: RGB * coverage (0..255), coverage (0..1)[, feathered alpha]
    centre: tuple[float, float]  # (x, y) of the mask's centroid, crop pixels
    size: float  # the mask's bounding-box diagonal, pixels
    origin: str  # "sequence 'name', frame i"


def _where(name: str, index: int) -> str:
    return f"sequence {name!r}, frame {index}"


def _check_pair(frame: np.ndarray, mask: np.ndarray, name: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    frame, mask = np.asarray(frame), np.asarray(mask)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{_where(name, index)}: expected an HxWx3 uint8 frame, got shape {frame.shape} "
                         f"dtype {frame.dtype}")
    if mask.shape != frame.shape[:2]:
        raise ValueError(f"{_where(name, index)}: the mask is {'x'.join(map(str, mask.shape))} but the frame is "
                         f"{frame.shape[0]}x{frame.shape[1]}")
    return frame, mask.astype(bool, copy=False)


def cut_object(frame: np.ndarray, mask: np.ndarray, name: str, index: int, feather: int = 0) -> ObjectCut:
    """Cut the masked object out of `frame` (frame `index` of sequence `name`, for errors).

    The alpha is feathered over `feather` pixels inside the outline only (the mask times its
    box blur), so no object colour reaches a pixel outside the mask; computed once here, not
    per rendered frame."""
    frame, mask = _check_pair(frame, mask, name, index)
    if not mask.any():
        raise ValueError(f"{_where(name, index)}: the mask is empty; there is no object to cut out")
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    crop_mask = mask[y0:y1, x0:x1]
    coverage = torch.from_numpy(crop_mask.astype(np.float32))[None]
    rgb = torch.from_numpy(np.ascontiguousarray(frame[y0:y1, x0:x1], dtype=np.float32)).permute(2, 0, 1)
    channels = [rgb * coverage, coverage]
    if feather:
        channels.append(coverage * F.avg_pool2d(coverage[None], 2 * feather + 1, stride=1, padding=feather,
                                                count_include_pad=False)[0])
    ys, xs = np.nonzero(crop_mask)
    return ObjectCut(rgba=torch.cat(channels)[None].contiguous(),
                     centre=(float(xs.mean()), float(ys.mean())),
                     size=math.hypot(y1 - y0, x1 - x0), origin=_where(name, index))


def fill_object(frame: np.ndarray, mask: np.ndarray, margin: int) -> torch.Tensor:
    """`frame` with the masked region (grown by `margin` px) filled in from its surroundings:
    a push-pull blur fill, cheap and smooth. Returns (1, 3, H, W) float32."""
    image = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).permute(2, 0, 1)[None]
    hole = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    if margin:
        hole = F.max_pool2d(hole, 2 * margin + 1, stride=1, padding=margin)
    weight = 1 - hole
    if not weight.any():  # nothing to fill from: a flat grey
        return torch.full_like(image, 127.5)
    levels = [(image * weight, weight)]
    while min(levels[-1][1].shape[-2:]) > 2 and levels[-1][1].min() == 0:
        colour, weight = levels[-1]
        levels.append((F.avg_pool2d(colour, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    colour, weight = levels[-1]
    mean = colour.sum(dim=(2, 3), keepdim=True) / weight.sum()
    filled = torch.where(weight > 0, colour / weight.clamp_min(1e-6), mean)
    for colour, weight in reversed(levels[:-1]):  # pull: known colour, the rest from the coarser level
        filled = colour + (1 - weight) * F.interpolate(filled, size=weight.shape[-2:], mode="bilinear",
                                                       align_corners=False)
    return torch.where(hole > 0, filled, image)


# ---------------------------------------------------------------------------- motion


def _wave(rng: np.random.Generator, frames: int, amplitude: float) -> tuple[float, float, float]:
    """(amplitude, angular frequency, phase) of a slow sinusoid: at most ~one swing a clip."""
    period = frames * rng.uniform(1.0, 2.5)
    return rng.uniform(-amplitude, amplitude), 2 * math.pi / period, rng.uniform(0, 2 * math.pi)


def _at(wave: tuple[float, float, float], t: float) -> float:
    amplitude, omega, phase = wave
    return amplitude * math.sin(omega * t + phase)


@dataclass
class _Layer:
    """An object in a clip: its cut-out and how it moves."""

    cut: ObjectCut
    start: tuple[float, float]  # output centre at frame 0
    travel: tuple[float, float]  # centre displacement over the clip (smoothstep in time)
    base_scale: float
    scale: tuple[float, float, float]  # relative scale wave
    rotation: tuple[float, float, float]  # radians
    warp: tuple[torch.Tensor, torch.Tensor, float, float, float] | None
    """Deformation fields A, B (crop pixels; A cos + B sin), omega, phase, largest shift."""
    front: bool = False

    def pose(self, t: int, frames: int) -> tuple[float, float, float, float]:
        """(centre x, centre y, scale, angle) at frame t."""
        s = t / max(frames - 1, 1)
        ease = s * s * (3 - 2 * s)
        return (self.start[0] + ease * self.travel[0], self.start[1] + ease * self.travel[1],
                self.base_scale * (1 + _at(self.scale, t)), _at(self.rotation, t))


@dataclass
class _Clip:
    """Everything a clip's frames are rendered from."""

    size: tuple[int, int]  # (H, W)
    background: torch.Tensor  # (1, 3, H, W) uint8 (a quarter of float32's memory in the clip cache)
    background_motion: tuple[tuple[float, float, float], ...]  # zoom, angle, shift x, shift y waves
    layers: list[_Layer]  # drawn in order; the target is the one with front=False after the back ones
    target: int  # index of the target in layers
    lighting: tuple[tuple[float, float, float], ...] | None  # brightness, contrast, gain r/g/b waves
    metadata: dict[str, str]


_BASE_GRIDS: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()


def _base_grid(height: int, width: int) -> torch.Tensor:
    """(H*W, 3) homogeneous pixel coordinates (x, y, 1) of a frame, cached per size."""
    key = (height, width)
    if key not in _BASE_GRIDS:
        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                                indexing="ij")
        _BASE_GRIDS[key] = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)
        while len(_BASE_GRIDS) > 4:
            _BASE_GRIDS.popitem(last=False)
    return _BASE_GRIDS[key]


def _theta(matrix: np.ndarray, offset: np.ndarray, source: tuple[int, int], region: tuple[int, int, int, int]):
    """grid_sample's (1, 2, 3) affine for `q = matrix @ p + offset` (pixels) from output region
    (y0, x0, h, w) of a frame to a source image of size (H, W) (align_corners=True)."""
    y0, x0, h, w = region
    to_pixels = np.diag([(w - 1) / 2, (h - 1) / 2])  # output normalised -> region pixels
    shift = np.array([x0 + (w - 1) / 2, y0 + (h - 1) / 2])
    to_unit = np.diag([2 / max(source[1] - 1, 1), 2 / max(source[0] - 1, 1)])
    linear = to_unit @ matrix @ to_pixels
    constant = to_unit @ (matrix @ shift + offset) - 1
    return torch.from_numpy(np.concatenate([linear, constant[:, None]], axis=1)[None].astype(np.float32))


def _layer_grid(layer: _Layer, t: int, frames: int, height: int, width: int):
    """(y0, x0, grid (1, h, w, 2)): where the layer lands in frame t, and the cut-out point
    each pixel there shows (grid_sample's units); None off-frame."""
    cx, cy, scale, angle = layer.pose(t, frames)
    _, _, crop_h, crop_w = layer.cut.rgba.shape
    qx, qy = layer.cut.centre
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    margin = 1 + (layer.warp[4] * scale if layer.warp is not None else 0)
    corners = np.array([[0, 0], [crop_w - 1, 0], [0, crop_h - 1], [crop_w - 1, crop_h - 1]], dtype=float)
    corners -= (qx, qy)
    xs = cx + cos * corners[:, 0] - sin * corners[:, 1]
    ys = cy + sin * corners[:, 0] + cos * corners[:, 1]
    x0, x1 = max(int(math.floor(xs.min() - margin)), 0), min(int(math.ceil(xs.max() + margin)) + 1, width)
    y0, y1 = max(int(math.floor(ys.min() - margin)), 0), min(int(math.ceil(ys.max() + margin)) + 1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    h, w = y1 - y0, x1 - x0
    inverse = np.array([[cos, sin], [-sin, cos]]) / (scale * scale)  # output pixel -> crop pixel it shows
    theta = _theta(inverse, np.array([qx, qy]) - inverse @ np.array([cx, cy]), (crop_h, crop_w), (y0, x0, h, w))
    grid = F.affine_grid(theta, [1, 1, h, w], align_corners=True)
    if layer.warp is not None:
        field_a, field_b, omega, phase, _ = layer.warp
        field = field_a * math.cos(omega * t + phase) + field_b * math.sin(omega * t + phase)
        field = field * torch.tensor([2 / max(crop_w - 1, 1), 2 / max(crop_h - 1, 1)]).view(1, 2, 1, 1)
        shift = F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)
        grid = grid + shift.permute(0, 2, 3, 1)
    return y0, x0, grid


def _render_layer(layer: _Layer, t: int, frames: int, height: int, width: int):
    """(y0, x0, colour (3,h,w), alpha (h,w), hard (h,w) bool) of the layer in frame t, or None off-frame."""
    placed = _layer_grid(layer, t, frames, height, width)
    if placed is None:
        return None
    y0, x0, grid = placed
    sampled = F.grid_sample(layer.cut.rgba, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
    coverage = sampled[3]
    hard = coverage >= 0.5
    if not hard.any():
        return None
    colour = sampled[:3] / coverage.clamp_min(1e-6)
    alpha = sampled[4] * hard if len(sampled) > 4 else hard.float()  # nothing outside the mask either way
    return y0, x0, colour, alpha, hard


def _background_frame(clip: _Clip, t: int) -> torch.Tensor:
    """The clip's background under its affine at frame t, (3, H, W)."""
    height, width = clip.size
    zoom_wave, angle_wave, shift_x, shift_y = clip.background_motion
    zoom = 1.0 + abs(zoom_wave[0]) + _at(zoom_wave, t)  # never below 1: less border to reflect
    angle = _at(angle_wave, t)
    inverse = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]) / zoom
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    shift = np.array([_at(shift_x, t) * width, _at(shift_y, t) * height])
    theta = _theta(inverse, centre - inverse @ (centre + shift), (height, width), (0, 0, height, width))[0]
    # The same affine as F.affine_grid, from a cached base grid (half the time at 854x480).
    unit = torch.from_numpy(np.array([[2 / max(width - 1, 1), 0, -1], [0, 2 / max(height - 1, 1), -1], [0, 0, 1]],
                                     dtype=np.float32))
    grid = (_base_grid(height, width) @ (theta @ unit).T).view(1, height, width, 2)
    return F.grid_sample(clip.background.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=True)[0]


def _lighting(waves: tuple[tuple[float, float, float], ...], t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame t's per-channel gain and offset on 0..255 values: brightness, contrast, colour balance."""
    brightness, contrast = 1 + _at(waves[0], t), 1 + _at(waves[1], t)
    gains = np.array([brightness * contrast * (1 + _at(wave, t)) for wave in waves[2:]])
    offsets = np.array([brightness * (1 + _at(wave, t)) * 127.5 * (1 - contrast) for wave in waves[2:]])
    return (torch.from_numpy(gains.astype(np.float32)).view(3, 1, 1),
            torch.from_numpy(offsets.astype(np.float32)).view(3, 1, 1))


def _apply_gamma(values: torch.Tensor, gamma: float) -> torch.Tensor:
    """0..255 values under a gamma curve (a clip's gamma is constant: applied once to its images)."""
    return values.clamp(0, 255).div(255).pow(gamma).mul(255)


def _layer_support(layer: _Layer, t: int, frames: int, height: int, width: int):
    """(y0, x0, hard (h,w) bool) of the layer in frame t, as `_render_layer` gives it, from
    the coverage channel alone; None off-frame."""
    placed = _layer_grid(layer, t, frames, height, width)
    if placed is None:
        return None
    y0, x0, grid = placed
    coverage = F.grid_sample(layer.cut.rgba[:, 3:4], grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True)[0, 0]
    return y0, x0, coverage >= 0.5


def render_mask(clip: _Clip, t: int, frames: int) -> np.ndarray:
    """The target mask of frame t alone, HxW bool (equal to `render`'s, several times cheaper:
    training reads every mask up front to find the object's boxes)."""
    height, width = clip.size
    mask = np.zeros((height, width), dtype=bool)
    for layer in clip.layers[clip.target :]:
        placed = _layer_support(layer, t, frames, height, width)
        if placed is None:
            continue
        y0, x0, hard = placed
        h, w = hard.shape
        if layer is clip.layers[clip.target]:
            mask[y0 : y0 + h, x0 : x0 + w] = hard.numpy()
        else:
            mask[y0 : y0 + h, x0 : x0 + w] &= ~hard.numpy()
    return mask


def render(clip: _Clip, t: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t of a clip and its target mask: HxWx3 uint8, HxW bool."""
    height, width = clip.size
    canvas = _background_frame(clip, t)
    mask = torch.zeros((height, width), dtype=torch.bool)
    for number, layer in enumerate(clip.layers):
        drawn = _render_layer(layer, t, frames, height, width)
        if drawn is None:
            continue
        y0, x0, colour, alpha, hard = drawn
        h, w = alpha.shape
        region = canvas[:, y0 : y0 + h, x0 : x0 + w]
        region += alpha * (colour - region)
        if number == clip.target:
            mask[y0 : y0 + h, x0 : x0 + w] = hard
        elif number > clip.target:  # in front: hides the target's pixels it covers
            mask[y0 : y0 + h, x0 : x0 + w] &= ~hard
    if clip.lighting is not None:
        gains, offsets = _lighting(clip.lighting, t)
        canvas.mul_(gains).add_(offsets)
    frame = canvas.permute(1, 2, 0).add(0.5).clamp_(0, 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(frame), mask.numpy()


# ---------------------------------------------------------------------------- clips


class VideoSynthesizer:
    """Plans and renders clips from the annotated frames of `sources` (real sequences)."""

    def __init__(self, sources: Seq[Sequence], config: SynthesisConfig | None = None, seed: int = 0) -> None:
        if not sources:
            raise ValueError("video synthesis needs at least one source sequence")
        self.sources = list(sources)
        self.config = config or SynthesisConfig()
        self.seed = int(seed)
        if self.seed < 0:
            raise ValueError(f"the synthesis seed must be 0 or more, got {seed}")
        self._clips: OrderedDict[int, _Clip] = OrderedDict()

    def _streams(self, index: int) -> list[np.random.Generator]:
        return [np.random.default_rng(np.random.SeedSequence([self.seed, index, part])) for part in range(5)]

    def name(self, index: int) -> str:
        return f"synthesized-s{self.seed}-{index:05d}"

    def frame_size(self, index: int) -> tuple[int, int]:
        """(H, W) of clip `index`: its target's sequence's (the plan's first draw), without planning it."""
        return self.sources[int(self._streams(index)[_SOURCES].integers(len(self.sources)))].frame_size

    def _pick(self, rng: np.random.Generator, exclude: int | None) -> tuple[int, int, np.ndarray, np.ndarray]:
        """(sequence, frame, frame array, mask) of an annotated frame with a usable object,
        preferring a sequence other than `exclude`."""
        choices = [i for i in range(len(self.sources)) if i != exclude] or [exclude]
        number = int(choices[rng.integers(len(choices))])
        sequence = self.sources[number]
        start = int(rng.integers(len(sequence)))
        for step in range(len(sequence)):  # occluded (empty) or tiny objects: the next frame
            index = (start + step) % len(sequence)
            mask = np.asarray(sequence.mask(index))
            if mask.sum() >= self.config.min_object_pixels:
                frame, mask = _check_pair(sequence.frame(index), mask, sequence.name, index)
                return number, index, frame, mask
        raise ValueError(f"sequence {sequence.name!r}: no frame's mask has {self.config.min_object_pixels} "
                         "or more object pixels; nothing to cut out")

    def _warp(self, rng: np.random.Generator, cut: ObjectCut, frames: int) -> tuple | None:
        if self.config.object_warp == 0:
            return None
        amplitude = self.config.object_warp * cut.size
        # Random shifts at a few control points, made smooth (C1) by bicubic interpolation once
        # here, so that rendering samples them bilinearly: a cheap stand-in for a thin-plate spline.
        field_a, field_b = (F.interpolate(torch.from_numpy(rng.uniform(-amplitude, amplitude, (1, 2, _WARP_GRID,
                                                                                               _WARP_GRID))
                                                           .astype(np.float32)),
                                          size=(_WARP_SAMPLES, _WARP_SAMPLES), mode="bicubic", align_corners=True)
                            for _ in range(2))
        reach = float((field_a.abs() + field_b.abs()).max())
        return field_a, field_b, 2 * math.pi / (frames * rng.uniform(1.0, 2.5)), rng.uniform(0, 2 * math.pi), reach

    def _plan(self, index: int) -> _Clip:
        config, frames = self.config, self.config.frames
        stream = self._streams(index)
        rng = stream[_SOURCES]
        number, frame_index, frame, mask = self._pick(rng, None)
        target_name = self.sources[number].name
        height, width = frame.shape[:2]
        if len(self.sources) > 1 and rng.random() < config.other_background:
            other, other_index, background, background_mask = self._pick(rng, number)
            background_from = _where(self.sources[other].name, other_index)
        else:
            background, background_mask, background_from = frame, mask, _where(target_name, frame_index)
        plate = fill_object(background, background_mask, config.fill_margin)
        if plate.shape[-2:] != (height, width):
            plate = F.interpolate(plate, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        cut = cut_object(frame, mask, target_name, frame_index, config.feather)
        diagonal = math.hypot(height, width)

        rng = stream[_TARGET]
        ys, xs = np.nonzero(mask)
        start = (float(np.clip(xs.mean() + rng.normal(0, 0.05) * width, 0.1 * width, 0.9 * width)),
                 float(np.clip(ys.mean() + rng.normal(0, 0.05) * height, 0.1 * height, 0.9 * height)))
        distance, heading = config.object_drift * diagonal * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        end = (float(np.clip(start[0] + distance * math.cos(heading), 0.1 * width, 0.9 * width)),
               float(np.clip(start[1] + distance * math.sin(heading), 0.1 * height, 0.9 * height)))
        target = _Layer(cut, start, (end[0] - start[0], end[1] - start[1]), 1.0,
                        _wave(rng, frames, config.object_scale), _wave(rng, frames, math.radians(config.object_rotation)),
                        self._warp(rng, cut, frames))

        rng = stream[_BACKGROUND]
        background_motion = (_wave(rng, frames, config.background_scale),
                             _wave(rng, frames, math.radians(config.background_rotation)),
                             _wave(rng, frames, config.background_shift), _wave(rng, frames, config.background_shift))

        rng = stream[_LIGHTING]
        lighting = None
        if config.lighting:
            lighting = (_wave(rng, frames, config.lighting), _wave(rng, frames, config.lighting),
                        *(_wave(rng, frames, config.lighting / 3) for _ in range(3)))
        gamma = math.exp(rng.uniform(-config.gamma, config.gamma)) if config.gamma else 1.0

        rng = stream[_DISTRACTORS]
        behind, front, distractor_from = [], [], []
        for _ in range(config.distractors):
            if rng.random() >= config.distractor_probability:
                continue
            other, other_index, other_frame, other_mask = self._pick(rng, number)
            other_cut = cut_object(other_frame, other_mask, self.sources[other].name, other_index, config.feather)
            scale = float(np.clip(cut.size * rng.uniform(0.5, 1.2) / other_cut.size, 0.2, 3.0))
            middle = rng.uniform(0.3, 0.7) * (frames - 1)
            cx, cy, _, _ = target.pose(int(round(middle)), frames)
            cx, cy = cx + rng.uniform(-0.4, 0.4) * cut.size, cy + rng.uniform(-0.4, 0.4) * cut.size
            path = rng.uniform(1.0, 2.0) * (cut.size + other_cut.size * scale) / 2
            heading = rng.uniform(0, 2 * math.pi)
            travel = (path * math.cos(heading), path * math.sin(heading))
            # Started so that it is at (cx, cy), near the target, at frame `middle`.
            s = middle / max(frames - 1, 1)
            ease = s * s * (3 - 2 * s)
            layer = _Layer(other_cut, (cx - ease * travel[0], cy - ease * travel[1]), travel, scale,
                           _wave(rng, frames, config.object_scale / 2),
                           _wave(rng, frames, math.radians(config.object_rotation)),
                           self._warp(rng, other_cut, frames), front=bool(rng.random() < config.front_probability))
            (front if layer.front else behind).append(layer)
            distractor_from.append(f"{'front' if layer.front else 'behind'}: {other_cut.origin}")

        layers = [*behind, target, *front]
        if gamma != 1.0:  # premultiplied colour under gamma: coverage is 0 or 1 in a cut-out
            plate = _apply_gamma(plate, gamma)
            for layer in layers:
                layer.cut.rgba[:, :3] = _apply_gamma(layer.cut.rgba[:, :3], gamma)
        plate = plate.add(0.5).clamp_(0, 255).to(torch.uint8)
        metadata = {"generator": GENERATOR, "seed": str(self.seed), "clip": str(index),
                    "target": cut.origin, "background": background_from,
                    "distractors": "; ".join(distractor_from), "gamma": f"{gamma:.3f}"}
        return _Clip((height, width), plate, background_motion, layers, len(behind),
                     lighting, metadata)

    def clip(self, index: int) -> _Clip:
        """Clip `index`'s plan (kept in a small cache; rebuilt identically when evicted)."""
        if index in self._clips:
            self._clips.move_to_end(index)
            return self._clips[index]
        clip = self._plan(index)
        self._clips[index] = clip
        while len(self._clips) > self.config.cache_clips:
            self._clips.popitem(last=False)
        return clip

    def render(self, index: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame t of clip `index` and its mask."""
        return render(self.clip(index), t, self.config.frames)

    def render_mask(self, index: int, t: int) -> np.ndarray:
        """The mask of frame t of clip `index`, without rendering the frame."""
        return render_mask(self.clip(index), t, self.config.frames)

    def __getstate__(self) -> dict[str, Any]:  # a worker process plans the clips it renders
        return {**self.__dict__, "_clips": OrderedDict()}

    def sequence(self, index: int) -> SynthesizedSequence:
        return SynthesizedSequence(self, index)


class SynthesizedSequence(Sequence):
    """One synthesised clip as a `Sequence`: frames rendered when asked for (the last one kept,
    so frame(i) then mask(i) renders once; a mask alone costs a fraction of a frame)."""

    def __init__(self, synthesizer: VideoSynthesizer, index: int) -> None:
        self._synthesizer = synthesizer
        self._index = int(index)
        self._last: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
        self._size = synthesizer.frame_size(self._index)  # planned (frames read) on first render
        super().__init__(synthesizer.name(self._index),
                         metadata={"generator": GENERATOR, "seed": str(synthesizer.seed), "clip": str(self._index)})

    def __len__(self) -> int:
        return self._synthesizer.config.frames

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    def _planned(self) -> None:
        self.metadata.update(self._synthesizer.clip(self._index).metadata)  # where its parts came from

    def _frame(self, index: int) -> np.ndarray:
        if self._last is None or self._last[0] != index:
            self._last = (index, self._synthesizer.render(self._index, index))
            self._planned()
        return self._last[1][0]

    def _mask(self, index: int) -> np.ndarray:
        if self._last is not None and self._last[0] == index:
            return self._last[1][1]
        mask = self._synthesizer.render_mask(self._index, index)
        self._planned()
        return mask

    def __getstate__(self) -> dict[str, Any]:  # a worker process renders its own frames
        return {**self.__dict__, "_last": None}


def synthesize_sequences(sources: Seq[Sequence], count: int, config: SynthesisConfig | None = None,
                         seed: int = 0) -> list[Sequence]:
    """`count` synthesised clips made from `sources`' annotated frames, rendered lazily."""
    if count < 0:
        raise ValueError(f"cannot synthesise {count} clips")
    if count == 0:
        return []
    synthesizer = VideoSynthesizer(sources, config, seed)
    return [synthesizer.sequence(index) for index in range(count)]
