"""95% bootstrap intervals over sequences for the mean scores the tables print.

Why: a benchmark mean over a handful of sequences moves with every sequence that goes
better or worse, and a closed-loop tracker can go better or worse on a sequence from
rounding alone (docs/reproducibility.md). The interval says how much the mean would move
if the benchmark had been another draw of as many sequences like these: a difference between
two trackers well inside it is no ranking.

Percentile bootstrap of the mean: `resamples` draws of n sequences with replacement, the
interval the central `level` of their means. Seeded (the same seed for every cell), so a
table is reproducible byte for byte; with the same number of sequences every row uses the
same draws, i.e. the rows' intervals are paired.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 10_000
SEED = 0
MIN_SEQUENCES = 5
"""Below this many sequences the tables print no interval unless asked (`--ci`): with four
or fewer the bootstrap has too few distinct resamples to mean much."""


def bootstrap_interval(
    values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """(low, high) of the percentile bootstrap interval of the mean of `values` (one a sequence)."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"bootstrap_interval: need a non-empty list of per-sequence values, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("bootstrap_interval: the per-sequence values hold NaN or infinity")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_interval: level {level} must lie in (0, 1)")
    if resamples < 1:
        raise ValueError(f"bootstrap_interval: resamples {resamples} must be at least 1")
    draws = np.random.default_rng(seed).integers(0, data.size, size=(resamples, data.size))
    means = data[draws].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def wants_interval(ci: bool | None, sequences: int) -> bool:
    """`--ci` given (True/False) wins; by default (None) intervals from MIN_SEQUENCES sequences on."""
    return sequences >= MIN_SEQUENCES if ci is None else bool(ci)


def format_interval(low: float | None, high: float | None, digits: int = 3) -> str:
    """How every table prints an interval: `[0.412, 0.468]`; empty where there is none."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f"[{low:.{digits}f}, {high:.{digits}f}]"
