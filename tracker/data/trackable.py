"""What a sequence must hold before a tracker is started on it from its first frame.

Readers accept sequences that are fine as data (training clips may start anywhere, so an
empty first mask or a single frame is no error there). A tracker, though, is initialised
from frame 0's mask and scored on frames 1..: with an empty first mask there is nothing to
track (the two-stage model fails deep inside, the static tracker scores 0 silently), and a
one-frame sequence has nothing to score. Every entry point that tracks from frame 0 calls
`check_trackable` on what it loaded, before it builds a model or tracks anything, so the
error names the file and line at fault instead of a sequence tracked halfway.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tracker.data.errors import DatasetError
from tracker.data.sequence import Sequence


def _where(sequence: Sequence, index: int) -> tuple[Path, int | None]:
    origin = sequence.mask_origin(index)
    if origin is not None:
        return origin
    path = sequence.frame_path(index)
    return (path if path is not None else Path(sequence.name)), None


def _folder(sequence: Sequence) -> Path:
    """The sequence's folder: that of its groundtruth.txt, else that of its frames."""
    origin = sequence.mask_origin(0)
    if origin is not None and origin[1] is not None:
        return origin[0].parent
    path = sequence.frame_path(0)
    return path.parent if path is not None else Path(sequence.name)


def check_trackable(sequence: Sequence) -> Sequence:
    """`sequence` if it has at least 2 frames and a non-empty mask on frame 0; else a
    `DatasetError` naming the sequence's file (and line) at fault. Decodes frame 0's mask."""
    if len(sequence) < 2:
        raise DatasetError(
            _folder(sequence), f"sequence {sequence.name!r} has {len(sequence)} frame; tracking needs at least 2 "
            "(frame 0 to start from, frame 1.. to score)"
        )
    if not np.asarray(sequence.mask(0)).any():
        path, line = _where(sequence, 0)
        raise DatasetError(
            path, f"sequence {sequence.name!r}: the first frame's mask is empty; a tracker starts from it", line
        )
    return sequence


def check_all_trackable(sequences: Iterable[Sequence]) -> list[Sequence]:
    """`check_trackable` on each sequence, in order; the list, all checked, before any tracking."""
    return [check_trackable(sequence) for sequence in sequences]
