"""The online interface that every tracker shares (see docs/design.md and docs/interfaces.md).

Protocols, the TraX wrapper and every metric treat trackers alike through it:

    state = tracker.init(frame, mask)                   # HxWx3 uint8 frame, HxW bool mask
    prob, state = tracker.track(frame, state)           # HxW float32 probability map in [0, 1]
    prob, state = tracker.track(frame, state, roi=box)  # crop at a given (cx, cy, side) box

A tracker may also have `settings() -> dict`: what changes its maps besides its weights (the
smoothing of Algorithm 1, its first-frame fine-tuning, ...), JSON-able; the evaluation's run
cache keys runs by it, so a run made under other settings is never read back as this one's.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

Box = tuple[float, float, float]
"""A square ROI in pixels of the full frame: centre x, centre y, side."""


@runtime_checkable
class Tracker(Protocol):
    """A pixel-wise tracker; `state` is opaque to callers and owned by one sequence."""

    name: str

    def init(self, frame: np.ndarray, mask: np.ndarray) -> Any: ...

    def track(self, frame: np.ndarray, state: Any, roi: Box | None = None) -> tuple[np.ndarray, Any]: ...
