"""The reference tracker "static": it answers the first frame's mask on every frame.

It is the floor every real tracker must beat, and a tracker whose answers are known
exactly, so the VOT integration and the evaluation protocols can be checked end to end
(results read back must equal the first mask) without a network or a checkpoint.
"""

from __future__ import annotations

import numpy as np

from tracker.frames import as_mask, as_rgb
from tracker.interface import Box


class StaticTracker:
    """Repeats the initial mask; the probability map is that mask as 0.0 / 1.0."""

    name = "static"

    def init(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        frame = as_rgb(frame)
        return as_mask(mask, frame.shape[:2]).astype(np.float32)

    def track(self, frame: np.ndarray, state: np.ndarray, roi: Box | None = None) -> tuple[np.ndarray, np.ndarray]:
        frame = as_rgb(frame)
        if frame.shape[:2] != state.shape:
            raise ValueError(f"frame is {frame.shape[0]}x{frame.shape[1]} but the first frame was {state.shape[0]}x{state.shape[1]}")
        return state.copy(), state


def build(checkpoint: str | None = None, device: str | None = None) -> StaticTracker:
    """Registry factory; the static tracker has no weights, so a checkpoint is an error."""
    if checkpoint is not None:
        raise ValueError(f"the static tracker has no weights; got checkpoint {checkpoint!r}")
    return StaticTracker()
