"""Procedural textures for the synthetic benchmark, numpy only, vectorised.

Backgrounds are fractal value noise coloured through a random palette; targets use other
patterns (stripes, spots, checks, marble) coloured with the same palette, so target and
background share their colours and only appearance tells them apart.
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("stripes", "spots", "checks", "marble")


def _smooth_axis(length: int, cell: float, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid index and smoothstep weight of each pixel along one axis."""
    position = np.arange(length, dtype=np.float32) / np.float32(cell)
    index = np.minimum(position.astype(np.int64), cells - 2)
    fraction = position - index
    return index, fraction * fraction * (3 - 2 * fraction)


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field in [0, 1], features about `cell` pixels across (separable interpolation)."""
    rows = int(height / cell) + 2
    columns = int(width / cell) + 2
    grid = rng.random((rows, columns), dtype=np.float32)
    y_index, y_weight = _smooth_axis(height, cell, rows)
    x_index, x_weight = _smooth_axis(width, cell, columns)
    by_row = grid[y_index] * (1 - y_weight)[:, None] + grid[y_index + 1] * y_weight[:, None]
    return by_row[:, x_index] * (1 - x_weight) + by_row[:, x_index + 1] * x_weight


def fractal_noise(
    rng: np.random.Generator, height: int, width: int, cell: float, octaves: int = 4
) -> np.ndarray:
    """Sum of value-noise octaves (each half the cell, half the weight), rescaled to [0, 1]."""
    total = np.zeros((height, width), dtype=np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        weight = 0.5**octave
        total += np.float32(weight) * value_noise(rng, height, width, max(cell / 2**octave, 1.5))
        weight_sum += weight
    total /= np.float32(weight_sum)
    low, high = np.percentile(total[:: max(1, height // 64), :: max(1, width // 64)], [1, 99])
    return np.clip((total - low) / max(high - low, 1e-6), 0, 1)


def random_palette(rng: np.random.Generator, colours: int = 5) -> np.ndarray:
    """`colours` RGB colours (float32, 0..255) spread in hue, mid saturation and brightness."""
    hues = (rng.random() + np.arange(colours) / colours + rng.normal(0, 0.04, colours)) % 1.0
    saturation = rng.uniform(0.35, 0.8, colours)
    value = rng.uniform(0.35, 0.95, colours)
    # HSV -> RGB, vectorised over the palette.
    sector = np.floor(hues * 6).astype(int) % 6
    f = hues * 6 - np.floor(hues * 6)
    p, q, t = value * (1 - saturation), value * (1 - f * saturation), value * (1 - (1 - f) * saturation)
    table = np.stack([(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)])
    rgb = table[sector, :, np.arange(colours)]
    return (rgb * 255).astype(np.float32)


def colourize(values: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to colours by linear interpolation along the palette: HxW -> HxWx3."""
    scaled = values * np.float32(len(palette) - 1)
    index = np.minimum(scaled.astype(np.int64), len(palette) - 2)
    fraction = (scaled - index)[..., None]
    return palette[index] * (1 - fraction) + palette[index + 1] * fraction


def background(rng: np.random.Generator, height: int, width: int, palette: np.ndarray) -> np.ndarray:
    """A textured scene: large colour regions, modulated by finer brightness detail."""
    scale = max(height, width)
    base = colourize(fractal_noise(rng, height, width, cell=scale / rng.uniform(4, 9)), palette)
    detail = fractal_noise(rng, height, width, cell=rng.uniform(6, 16), octaves=3)
    base *= (np.float32(0.7) + np.float32(0.6) * detail)[..., None]
    return base


def pattern(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """A size x size pattern in [0, 1] of the given kind (see `PATTERNS`)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = np.float32(rng.uniform(0.08, 0.2) * size)
    angle = rng.uniform(0, np.pi)
    along = x * np.float32(np.cos(angle)) + y * np.float32(np.sin(angle))
    across = -x * np.float32(np.sin(angle)) + y * np.float32(np.cos(angle))
    warp = fractal_noise(rng, size, size, cell=size / 3, octaves=2) - np.float32(0.5)
    if kind == "stripes":
        field = 0.5 + 0.5 * np.sin(2 * np.pi * along / period + 3 * warp)
    elif kind == "spots":
        field = np.clip((fractal_noise(rng, size, size, cell=period, octaves=2) - 0.5) * 5 + 0.5, 0, 1)
    elif kind == "checks":
        field = 0.5 + 0.5 * np.tanh(4 * np.sin(2 * np.pi * along / period) * np.sin(2 * np.pi * across / period))
    elif kind == "marble":
        field = 0.5 + 0.5 * np.sin(2 * np.pi * (along / period + 2.5 * warp))
    else:
        raise ValueError(f"unknown pattern {kind!r}; known: {', '.join(PATTERNS)}")
    return field.astype(np.float32)


def object_texture(rng: np.random.Generator, size: int, palette: np.ndarray) -> np.ndarray:
    """A target's texture: a pattern in colours drawn from the scene palette, with fine detail."""
    kind = PATTERNS[rng.integers(len(PATTERNS))]
    # Three neighbours in the palette: their blends occur in the background too.
    start = int(rng.integers(len(palette) - 2))
    colours = palette[start : start + 3][:: rng.choice([-1, 1])]
    # Pattern values kept off the extremes, brightness detail as in the background: every
    # colour of the target also occurs around it.
    texture = colourize(np.float32(0.1) + np.float32(0.8) * pattern(rng, size, kind), colours)
    detail = fractal_noise(rng, size, size, cell=rng.uniform(3, 8), octaves=2)
    texture *= (np.float32(0.7) + np.float32(0.6) * detail)[..., None]
    return texture
