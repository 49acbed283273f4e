"""The synthetic benchmark: textured, deforming targets in scenes built to be hard.

`generate_sequence` renders one sequence for a scenario; `generate_benchmark` writes a small
benchmark whose first six sequences cover every challenge the paper calls hard:

    name            size       challenges
    synth00-deform   640x360   non-rigid deformation, camera pan, illumination change
    synth01-occlude  320x240   partial + full occlusion (empty ground truth), distractors
    synth02-fast    1280x720   fast motion, a sudden jump, motion blur
    synth03-small    360x640   small target (~1.2% of the frame), distractors, camera pan (portrait)
    synth04-depth    640x480   scale change (motion in depth), deformation, illumination
    synth05-mixed    854x480   a bit of everything

Further sequences draw random scenarios and sizes. Targets and background share one colour
palette and differ in pattern, so no colour threshold separates them; distractors carry the
target's own texture. Everything is drawn from `numpy.random.default_rng(seed)` in a fixed
order, so a seed gives identical frames, masks and files.

Each sequence records per-frame tags (VOT's `*.tag` files in the VOT layout, `tags/<name>.json`
in the DAVIS layout), measured on what was rendered, and the list of those present as the
`challenges` metadata key. Tag names follow VOT where it has one (camera_motion, illum_change,
motion_change, occlusion, size_change), plus deformation, fast_motion, jump, full_occlusion,
distractors, motion_blur and small_target.

Default benchmark: 6 sequences x 48 frames (288 frames): three trackers at ~0.3 s/frame on a
CPU evaluate it in about four and a half minutes; the tables' longer columns resample.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracker.data import texture
from tracker.data.errors import DatasetError
from tracker.data.sequence import InMemorySequence

DEFAULT_SEQUENCES = 6
DEFAULT_FRAMES = 48
MIN_BENCHMARK_FRAMES = 8
GENERATOR = "pixtrack-synth/1"
NOISE_MARGIN = 32
WOBBLE = 0.4  # relative swing of the deformation amplitudes over time

SIZES = ((320, 240), (640, 480), (640, 360), (854, 480), (1280, 720), (360, 640), (480, 640))
"""(width, height) choices for random sequences: 4:3, 16:9 and portrait, 320x240 to 1280x720."""

BENCHMARK = (
    ("deform", (640, 360), dict(deformation=0.3, camera_pan=0.006, illumination=0.45)),
    ("occlude", (320, 240), dict(occlusion=True, distractors=2, deformation=0.1, speed=0.025)),
    ("fast", (1280, 720), dict(speed=0.05, jumps=1, motion_blur=0.5)),
    ("small", (360, 640), dict(target_size=0.012, distractors=3, camera_pan=0.008)),
    ("depth", (640, 480), dict(scale_change=0.7, deformation=0.2, illumination=0.3)),
    (
        "mixed",
        (854, 480),
        dict(
            deformation=0.2, scale_change=0.4, occlusion=True, distractors=1,
            camera_pan=0.006, motion_blur=0.6, speed=0.02, jumps=1,
        ),
    ),
)


@dataclass(frozen=True)
class Scenario:
    """What a sequence exercises. Fractions are of the frame (size, diagonal or width)."""

    deformation: float = 0.0  # non-rigid outline change, 0 (rigid) .. 0.5
    scale_change: float = 0.0  # motion in depth: scale varies in [exp(-a), exp(a)], 0 .. 1.2
    speed: float = 0.01  # typical centre speed, fraction of the diagonal per frame, 0 .. 0.15
    jumps: int = 0  # sudden relocations of the target
    camera_pan: float = 0.0  # pan speed, fraction of the frame width per frame, 0 .. 0.05
    occlusion: bool = False  # the target passes behind a pillar: partial, then full occlusion
    distractors: int = 0  # look-alike objects with the target's texture, 0 .. 8
    illumination: float = 0.0  # depth of a global brightness dip, 0 .. 0.8
    motion_blur: float = 0.0  # exposure as a fraction of a frame's motion, 0 .. 1.5
    target_size: float = 0.06  # target area / frame area at scale 1, 0.002 .. 0.3
    noise: float = 3.0  # sensor noise, standard deviation in grey levels, 0 .. 20

    def check(self, frames: int) -> None:
        """Raise ValueError naming the first out-of-range field."""
        ranges = {
            "deformation": (0, 0.5), "scale_change": (0, 1.2), "speed": (0, 0.15), "jumps": (0, 10),
            "camera_pan": (0, 0.05), "distractors": (0, 8), "illumination": (0, 0.8),
            "motion_blur": (0, 1.5), "target_size": (0.002, 0.3), "noise": (0, 20),
        }
        for name in ("jumps", "distractors"):
            if not isinstance(getattr(self, name), (int, np.integer)) or isinstance(getattr(self, name), bool):
                raise ValueError(f"scenario {name}={getattr(self, name)!r} must be a whole number")
        if not isinstance(self.occlusion, (bool, np.bool_)):
            raise ValueError(f"scenario occlusion={self.occlusion!r} must be True or False")
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"scenario {name}={value} is outside [{low}, {high}]")
        if (self.occlusion or self.jumps) and frames < MIN_BENCHMARK_FRAMES:
            raise ValueError(f"occlusion and jumps need at least {MIN_BENCHMARK_FRAMES} frames, got {frames}")


def make_scenario(**scenario: object) -> Scenario:
    """A `Scenario` from keyword arguments; an unknown key is a ValueError listing the known ones."""
    known = {field.name for field in fields(Scenario)}
    unknown = sorted(set(scenario) - known)
    if unknown:
        raise ValueError(f"unknown scenario key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return Scenario(**scenario)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- objects


@dataclass
class _Blob:
    """A textured star-shaped object: r(theta) = radius * scale * (1 + sum a_k cos(k theta + phi_k))."""

    radius: float
    aspect: float
    amplitudes: np.ndarray
    phases: np.ndarray
    rates: np.ndarray  # phase change per frame (0 = rigid)
    spin: float  # rotation per frame
    angle: float
    texture: np.ndarray
    texel: float  # texture pixels per object pixel at scale 1
    offset: tuple[float, float]

    def extent(self, scale: float) -> float:
        """Upper bound of the distance from the centre to the outline, in pixels."""
        wobble = 1 + WOBBLE if self.rates.any() else 1
        swing = 1 + wobble * float(np.abs(self.amplitudes).sum())
        return self.radius * scale * swing * max(self.aspect, 1 / self.aspect)


def _make_blob(
    rng: np.random.Generator, radius: float, deformation: float, palette: np.ndarray,
    texture_map: np.ndarray | None, max_scale: float,
) -> _Blob:
    harmonics = 3
    static = rng.uniform(0.04, 0.12, harmonics) / np.arange(1, harmonics + 1) ** 0.5
    dynamic = deformation * rng.uniform(0.5, 1.0, harmonics) / np.arange(1, harmonics + 1) ** 0.5
    amplitudes = static + dynamic
    amplitudes *= min(1.0, 0.6 / ((1 + WOBBLE) * amplitudes.sum()))  # keep r(theta) >= 0.4
    amplitudes = amplitudes.astype(np.float32)
    rates = (rng.uniform(0.12, 0.3, harmonics) * rng.choice([-1, 1], harmonics) * (deformation > 0)).astype(np.float32)
    size = int(np.clip(2.2 * radius * max_scale * (1 + amplitudes.sum()), 48, 1024))
    if texture_map is None:
        texture_map = texture.object_texture(rng, size, palette)
    texel = texture_map.shape[0] / (2.2 * radius * (1 + amplitudes.sum()))
    return _Blob(
        radius=radius,
        aspect=float(rng.uniform(0.75, 1.35)),
        amplitudes=amplitudes,
        phases=rng.uniform(0, 2 * np.pi, harmonics).astype(np.float32),
        rates=rates,
        spin=float(rng.normal(0, 0.02)),
        angle=float(rng.uniform(0, 2 * np.pi)),
        texture=texture_map,
        texel=float(texel),
        offset=(float(rng.uniform(0, texture_map.shape[0])), float(rng.uniform(0, texture_map.shape[1]))),
    )


@dataclass
class _Render:
    """An object rendered into a frame window: rows y0.., columns x0.."""

    y0: int
    x0: int
    coverage: np.ndarray  # float32 in [0, 1], anti-aliased and motion-blurred
    colour: np.ndarray  # float32 premultiplied by coverage
    sharp: np.ndarray  # bool: inside the outline at mid-exposure (the ground truth)

    def composite(self, canvas: np.ndarray) -> None:
        h, w = self.coverage.shape
        window = canvas[self.y0 : self.y0 + h, self.x0 : self.x0 + w]
        window *= (1 - self.coverage)[..., None]
        window += self.colour


def _shift_mean(array: np.ndarray, offsets: list[tuple[int, int]], pad: int) -> np.ndarray:
    """Mean of `array` shifted by each (dy, dx), zero outside: a motion-blur box filter."""
    h, w = array.shape[:2]
    padded = np.zeros((h + 2 * pad, w + 2 * pad) + array.shape[2:], dtype=np.float32)
    padded[pad : pad + h, pad : pad + w] = array
    total = np.zeros_like(array)
    for dy, dx in offsets:
        total += padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]
    return total / np.float32(len(offsets))


def _outline_coefficients(blob: _Blob, t: int, moving: bool) -> list[tuple[float, float]]:
    """(a, b) per harmonic k = 2, 3, 4 with r(theta) = 1 + sum a cos(k theta) + b sin(k theta)."""
    coefficients = []
    for k in range(len(blob.amplitudes)):
        phase, amplitude = float(blob.phases[k]), float(blob.amplitudes[k])
        if moving:
            rate = float(blob.rates[k])
            amplitude *= 1 + WOBBLE * math.sin(0.7 * rate * t + 2 * phase)
            phase += rate * t
        # cos(k theta + phase) = cos(k theta) cos(phase) - sin(k theta) sin(phase)
        coefficients.append((amplitude * math.cos(phase), -amplitude * math.sin(phase)))
    return coefficients


def _outline(cos1: np.ndarray, sin1: np.ndarray, coefficient_sets: list[list[tuple[float, float]]]) -> list[np.ndarray]:
    """r(theta) for each coefficient set, with cos/sin of k*theta by recurrence (no per-pixel trigonometry)."""
    outlines = [np.ones_like(cos1) for _ in coefficient_sets]
    cos_k, sin_k = cos1, sin1
    for k in range(len(coefficient_sets[0])):
        cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1  # harmonics 2, 3, 4
        for outline, coefficients in zip(outlines, coefficient_sets):
            a, b = coefficients[k]
            outline += np.float32(a) * cos_k + np.float32(b) * sin_k
    return outlines


_ANGLES = np.linspace(0, 2 * np.pi, 256, endpoint=False)


def _render(
    blob: _Blob, t: int, cx: float, cy: float, scale: float, blur: tuple[float, float], height: int, width: int
) -> _Render | None:
    moving = bool(blob.rates.any())
    now = _outline_coefficients(blob, t, moving)
    angle = blob.angle + blob.spin * t
    cos, sin = math.cos(angle), math.sin(angle)
    # Bounding box from the outline sampled at 256 angles (+2 px), widened by the blur.
    (radii,) = _outline(np.cos(_ANGLES), np.sin(_ANGLES), [now])
    radii = radii * blob.radius * scale
    along = radii * np.cos(_ANGLES) * blob.aspect
    across = radii * np.sin(_ANGLES) / blob.aspect
    outline_x = cx + along * cos - across * sin
    outline_y = cy + along * sin + across * cos
    length = math.hypot(*blur)
    pad = int(math.ceil(length / 2)) + 3
    x0, x1 = max(int(outline_x.min()) - pad, 0), min(int(outline_x.max()) + pad + 1, width)
    y0, y1 = max(int(outline_y.min()) - pad, 0), min(int(outline_y.max()) + pad + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    dx = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    u = (dx * np.float32(cos) + dy * np.float32(sin)) / np.float32(blob.aspect)
    v = (dy * np.float32(cos) - dx * np.float32(sin)) * np.float32(blob.aspect)
    rho = np.sqrt(u * u + v * v) + np.float32(1e-6)
    sets = [now, _outline_coefficients(blob, t, False)] if moving else [now]
    outlines = _outline(u / rho, v / rho, sets)
    distance = np.float32(blob.radius * scale) * outlines[0] - rho
    sharp = distance > 0
    coverage = np.clip(distance + np.float32(0.5), 0, 1)
    # Texture moves, rotates, scales and deforms with the outline.
    stretch = np.float32(blob.texel / scale)
    if moving:
        stretch = stretch * outlines[1] / outlines[0]
    size_y, size_x = blob.texture.shape[:2]
    ty = (v * stretch + np.float32(blob.offset[0])).astype(np.int64) % size_y
    tx = (u * stretch + np.float32(blob.offset[1])).astype(np.int64) % size_x
    colour = blob.texture[ty, tx] * coverage[..., None]
    if length >= 1:
        samples = int(min(max(math.ceil(length), 2), 12))
        offsets = [
            (int(round(blur[1] * f)), int(round(blur[0] * f))) for f in np.linspace(-0.5, 0.5, samples)
        ]
        coverage = _shift_mean(coverage, offsets, pad)
        colour = _shift_mean(colour, offsets, pad)
    return _Render(y0, x0, coverage, colour, sharp)


# ---------------------------------------------------------------------------- motion


def _walk(
    rng: np.random.Generator, frames: int, width: int, height: int, margin: tuple[float, float],
    speed: float, jumps: set[int], drift: bool,
) -> np.ndarray:
    """Centre positions [frames, 2] (x, y): a bounded random walk with momentum and optional jumps."""
    low = np.array([min(margin[0], width / 2 - 1), min(margin[1], height / 2 - 1)])
    high = np.array([width, height]) - low
    position = rng.uniform(low, high)
    heading = rng.uniform(0, 2 * np.pi)
    if drift:  # start near one side, head across: the target sweeps the frame once
        side = rng.integers(2)
        position[0] = low[0] + (high[0] - low[0]) * (0.1 if side == 0 else 0.9)
        heading = rng.normal(0 if side == 0 else np.pi, 0.3)
    path = np.empty((frames, 2))
    for t in range(frames):
        if t in jumps:
            candidates = rng.uniform(low, high, size=(16, 2))
            position = candidates[np.argmax(np.linalg.norm(candidates - position, axis=1))]
        elif t:
            heading += rng.normal(0, 0.08 if drift else 0.3)
            step = speed * rng.uniform(0.7, 1.3)
            position = position + step * np.array([math.cos(heading), math.sin(heading)])
            for axis in range(2):  # bounce off the margins
                edge = min(max(position[axis], low[axis]), high[axis])
                if edge != position[axis]:
                    position[axis] = min(max(2 * edge - position[axis], low[axis]), high[axis])
                    heading = math.pi - heading if axis == 0 else -heading
        path[t] = position
    return path


def _camera_path(
    rng: np.random.Generator, frames: int, width: int, height: int, pan: float
) -> tuple[np.ndarray, np.ndarray]:
    """Integer camera offsets (x, y) into the world texture: a steady pan with a slight bob."""
    times = np.arange(frames)
    pan_px = pan * width
    direction = rng.choice([-1, 1])
    cam_x = np.round(pan_px * times).astype(int)
    if direction < 0:
        cam_x = cam_x[-1] - cam_x
    bob = round(0.03 * height) if pan > 0 else 0
    cam_y = np.round(bob * (1 - np.cos(2 * np.pi * times / frames)) / 2).astype(int)
    return cam_x, cam_y


def _world_columns(
    target: _Blob, path: np.ndarray, scale: np.ndarray, cam_x: np.ndarray, t: int, height: int, width: int
) -> tuple[int, int] | None:
    """First and last world column the target's outline covers in frame t (None: off-frame)."""
    render = _render(target, t, path[t, 0], path[t, 1], scale[t], (0.0, 0.0), height, width)
    if render is None or not render.sharp.any():
        return None
    columns = np.flatnonzero(render.sharp.any(axis=0)) + render.x0 + cam_x[t]
    return int(columns[0]), int(columns[-1])


def _place_pillar(
    target: _Blob, path: np.ndarray, scale: np.ndarray, cam_x: np.ndarray, start: int, span: int,
    height: int, width: int,
) -> tuple[tuple[int, int] | None, np.ndarray]:
    """World columns [left, right) of a pillar hiding the target's whole outline (+2 px) in
    frames start..start+span-1, so the ground truth is empty there, and the path to use.

    The target in the first frame must stay clear of the pillar: where the walk would put it
    behind the pillar's place, the walk is bent sideways (a linear ramp in, the same ramp out)
    until the two are apart.
    """
    window = range(start, min(start + span, len(path)))
    first_frame = _world_columns(target, path, scale, cam_x, 0, height, width)
    for attempt in range(2):
        extents = [_world_columns(target, path, scale, cam_x, t, height, width) for t in window]
        if any(extent is None for extent in extents):
            return None, path
        left = min(extent[0] for extent in extents) - 2
        right = max(extent[1] for extent in extents) + 3
        if first_frame is None or first_frame[1] < left - 1 or first_frame[0] >= right:
            return (left, right), path
        if attempt:
            return None, path
        # Bend: shift the window's positions left or right of the first frame's target.
        shifts = [first_frame[0] - 4 - right, first_frame[1] + 4 - left]
        inside = [d for d in shifts if all(0 <= path[t, 0] + d < width for t in window)]
        if not inside:
            return None, path
        shift = min(inside, key=abs)
        ramp = np.zeros(len(path))
        ramp[1 : start + 1] = np.linspace(0, 1, start + 1)[1:]
        ramp[window.start : window.stop] = 1
        after = min(start, len(path) - window.stop)
        ramp[window.stop : window.stop + after] = np.linspace(1, 0, after + 2)[1:-1]
        path = path.copy()
        path[:, 0] += shift * ramp
    return None, path


# ---------------------------------------------------------------------------- sequences


def generate_sequence(
    seed: int, frames: int, width: int, height: int, *, name: str | None = None, **scenario: object
) -> InMemorySequence:
    """Render one synthetic sequence; keyword arguments are `Scenario` fields.

    Ground truth is the target's visible part: empty while it is fully behind the occluder.
    """
    spec = make_scenario(**scenario)
    if frames < 2:
        raise ValueError(f"a sequence needs at least 2 frames, got {frames}")
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"frame size {width}x{height} is outside 16..4096")
    spec.check(frames)
    rng = np.random.default_rng(seed)
    diagonal = math.hypot(width, height)
    times = np.arange(frames)

    cam_x, cam_y = _camera_path(rng, frames, width, height, spec.camera_pan)
    palette = texture.random_palette(rng)
    world = texture.background(rng, height + int(cam_y.max()) + 1, width + int(cam_x.max()) + 1, palette)
    gradient_angle = rng.uniform(0, 2 * np.pi)
    lighting = (
        np.float32(0.12) * (np.cos(gradient_angle) * (np.arange(width, dtype=np.float32) / width - 0.5))[None, :]
        + np.float32(0.12) * (np.sin(gradient_angle) * (np.arange(height, dtype=np.float32) / height - 0.5))[:, None]
        + np.float32(1)
    )

    # Scale (motion in depth) and the target.
    period, phase = frames * rng.uniform(0.8, 1.3), rng.uniform(0, 2 * np.pi)
    scale = np.exp(spec.scale_change * np.sin(2 * np.pi * times / period + phase))
    radius = math.sqrt(spec.target_size * width * height / math.pi)
    target = _make_blob(rng, radius, spec.deformation, palette, None, float(scale.max()))
    margin = target.extent(1.0) * 0.9

    # Occlusion window candidates and jumps (kept apart so the occluder stays narrow).
    span = max(2, frames // 20)
    first, last = int(0.35 * frames), max(int(0.75 * frames) - span, int(0.35 * frames))
    starts = list(range(first, last + 1)) if spec.occlusion else []
    allowed = [t for t in range(2, frames - 1) if not starts or not (first - 3 <= t <= last + span + 3)]
    count = min(spec.jumps, len(allowed))
    jumps = set(rng.choice(allowed, size=count, replace=False).tolist()) if count else set()
    path = _walk(rng, frames, width, height, (margin, margin), spec.speed * diagonal, jumps, spec.occlusion)
    pillar = None
    for start in sorted(starts, key=lambda s: (abs(s - (first + last) // 2), s)):  # middle first
        pillar, path = _place_pillar(target, path, scale, cam_x, start, span, height, width)
        if pillar is not None:
            break
    if pillar is not None:
        left, right = pillar
        pillar_texture = texture.colourize(
            texture.fractal_noise(rng, world.shape[0], right - left, cell=24, octaves=3), palette[::-1]
        )
        shade = np.float32(0.6) + np.float32(0.4) * np.sin(np.pi * (np.arange(right - left) + 0.5) / (right - left))
        pillar_texture *= shade[None, :, None]

    distractors = []  # look-alikes: the target's texture, their own shape and walk
    for _ in range(spec.distractors):
        blob = _make_blob(rng, radius * rng.uniform(0.75, 1.1), spec.deformation, palette, target.texture, scale.max())
        speed = spec.speed * diagonal * rng.uniform(0.5, 1.2)
        distractors.append((blob, _walk(rng, frames, width, height, (margin, margin), speed, set(), False)))

    # Illumination: a smooth global dip (and recovery) around a random frame.
    gain = np.ones(frames)
    if spec.illumination > 0:
        centre, half = rng.uniform(0.3, 0.7) * frames, max(3.0, frames / 4)
        near = np.abs(times - centre) < half
        gain[near] -= spec.illumination * 0.5 * (1 + np.cos(np.pi * (times[near] - centre) / half))

    noise = rng.standard_normal((height + NOISE_MARGIN, width + NOISE_MARGIN, 3), dtype=np.float32)
    noise *= np.float32(spec.noise)
    noise += np.float32(0.5)

    frames_out, masks_out = [], []
    tags = {name: np.zeros(frames, dtype=bool) for name in (
        "camera_motion", "illum_change", "motion_change", "occlusion", "size_change", "deformation",
        "fast_motion", "jump", "full_occlusion", "distractors", "motion_blur", "small_target")}
    for t in range(frames):
        canvas = world[cam_y[t] : cam_y[t] + height, cam_x[t] : cam_x[t] + width].copy()
        any_distractor = False
        for blob, walk in distractors:
            render = _render(blob, t, walk[t, 0], walk[t, 1], scale[t] * 0.95, (0.0, 0.0), height, width)
            if render is not None and render.sharp.any():
                render.composite(canvas)
                any_distractor = True
        motion = path[t] - path[t - 1] if t else np.zeros(2)
        blur = (0.0, 0.0) if t in jumps else tuple(np.clip(motion * spec.motion_blur, -40, 40))
        render = _render(target, t, path[t, 0], path[t, 1], scale[t], blur, height, width)
        mask = np.zeros((height, width), dtype=bool)
        if render is not None:
            render.composite(canvas)
            h, w = render.sharp.shape
            mask[render.y0 : render.y0 + h, render.x0 : render.x0 + w] = render.sharp
        unoccluded = int(mask.sum())
        if pillar is not None:
            sx0, sx1 = max(pillar[0] - cam_x[t], 0), min(pillar[1] - cam_x[t], width)
            if sx1 > sx0:
                tx0 = sx0 + cam_x[t] - pillar[0]
                canvas[:, sx0:sx1] = pillar_texture[cam_y[t] : cam_y[t] + height, tx0 : tx0 + sx1 - sx0]
                mask[:, sx0:sx1] = False
        visible = int(mask.sum())
        canvas *= (lighting * np.float32(gain[t]))[..., None]
        # Sensor noise: a random crop of one noise field (+0.5, so truncation rounds).
        noise_y, noise_x = rng.integers(0, NOISE_MARGIN, size=2)
        canvas += noise[noise_y : noise_y + height, noise_x : noise_x + width]
        np.clip(canvas, 0, 255, out=canvas)
        frames_out.append(canvas.astype(np.uint8))
        masks_out.append(mask)

        size = 2 * target.radius * scale[t]
        tags["camera_motion"][t] = t > 0 and (cam_x[t] != cam_x[t - 1] or cam_y[t] != cam_y[t - 1])
        tags["illum_change"][t] = t > 0 and abs(gain[t] - gain[t - 1]) > 0.005
        tags["size_change"][t] = t > 0 and abs(scale[t] / scale[t - 1] - 1) > 0.01
        tags["deformation"][t] = spec.deformation > 0
        tags["jump"][t] = t in jumps
        tags["fast_motion"][t] = t > 0 and t not in jumps and float(np.hypot(*motion)) > 0.25 * size
        tags["motion_change"][t] = tags["jump"][t] or tags["fast_motion"][t]
        tags["occlusion"][t] = unoccluded > 0 and visible < 0.97 * unoccluded
        tags["full_occlusion"][t] = unoccluded > 0 and visible == 0
        tags["distractors"][t] = any_distractor
        tags["motion_blur"][t] = math.hypot(*blur) >= 3
        tags["small_target"][t] = 0 < unoccluded < 0.03 * width * height
    challenges = sorted(tag for tag, flags in tags.items() if flags.any())
    metadata = {
        "generator": GENERATOR,
        "seed": str(seed),
        "challenges": ",".join(challenges),
        "scenario": json.dumps(asdict(spec), sort_keys=True, separators=(",", ":")),
    }
    return InMemorySequence(name or f"synth-{seed}", frames_out, masks_out, tags=tags, metadata=metadata)


# ---------------------------------------------------------------------------- benchmark


def benchmark_plan(sequences: int, seed: int) -> list[tuple[str, tuple[int, int], dict, int]]:
    """(name, (width, height), scenario, sequence seed) for each sequence of a benchmark."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    plan = []
    for index in range(sequences):
        if index < len(BENCHMARK):
            label, size, scenario = BENCHMARK[index]
        else:
            label, size = "random", SIZES[rng.integers(len(SIZES))]
            on = rng.random(8) < 0.4
            on[rng.choice(8, size=2, replace=False)] = True  # at least two challenges
            scenario = {
                "deformation": round(float(rng.uniform(0.1, 0.35)), 3) if on[0] else 0.0,
                "scale_change": round(float(rng.uniform(0.2, 0.8)), 3) if on[1] else 0.0,
                "speed": round(float(rng.uniform(0.03, 0.06)), 3) if on[2] else 0.01,
                "jumps": 1 if on[3] else 0,
                "camera_pan": round(float(rng.uniform(0.003, 0.01)), 4) if on[4] else 0.0,
                "occlusion": bool(on[5]),
                "distractors": int(rng.integers(1, 4)) if on[6] else 0,
                "illumination": round(float(rng.uniform(0.2, 0.5)), 3) if on[7] else 0.0,
                "motion_blur": 0.7 if on[2] else 0.0,
                "target_size": round(float(rng.choice([0.012, 0.03, 0.06, 0.1])), 3),
            }
        sequence_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        plan.append((f"synth{index:02d}-{label}", size, dict(scenario), sequence_seed))
    return plan


def generate_benchmark(
    dst: str | Path,
    sequences: int = DEFAULT_SEQUENCES,
    frames: int = DEFAULT_FRAMES,
    seed: int = 0,
    layout: str = "vot",
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> list[str]:
    """Write a synthetic benchmark into `dst` (VOT sequences folder, or a DAVIS root); returns
    the sequence names. Existing sequences are an error unless `overwrite`; checked first.
    VOT: the names are added to list.txt; DAVIS: they make up `ImageSets/2017/val.txt`."""
    from tracker.data.davis import write_davis_list, write_davis_sequence
    from tracker.data.vot import extend_vot_list, write_vot_sequence

    if layout not in ("vot", "davis"):
        raise ValueError(f"layout must be 'vot' or 'davis', got {layout!r}")
    if sequences < 1:
        raise ValueError(f"need at least 1 sequence, got {sequences}")
    if frames < MIN_BENCHMARK_FRAMES:
        raise ValueError(f"need at least {MIN_BENCHMARK_FRAMES} frames a sequence, got {frames}")
    dst = Path(dst)
    plan = benchmark_plan(sequences, seed)
    for name, _, _, _ in plan:
        existing = dst / name if layout == "vot" else dst / "JPEGImages" / "480p" / name
        if existing.exists() and not overwrite:
            raise DatasetError(existing, "already exists (overwrite it explicitly, e.g. --force)")
    dst.mkdir(parents=True, exist_ok=True)
    for name, (width, height), scenario, sequence_seed in tqdm(plan, desc="synth", unit="seq", disable=not progress):
        sequence = generate_sequence(sequence_seed, frames, width, height, name=name, **scenario)
        if layout == "vot":
            write_vot_sequence(dst, sequence, overwrite=overwrite)
        else:
            write_davis_sequence(dst, sequence, overwrite=overwrite)
    names = [name for name, _, _, _ in plan]
    if layout == "vot":
        extend_vot_list(dst, names)
    else:
        write_davis_list(dst, names)
    return names
