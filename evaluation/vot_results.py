"""Masks that `vot evaluate` stored in a workspace, scored like the tables' own runs.

The toolkit writes `results/<tracker>/<experiment>/<seq>/<seq>_001.bin` (binary; `.txt`
with VOT_RESULTS_BINARY=0): one region a frame, frame 0 the initialisation marker. They
are read with the toolkit's own reader (`vot.region.io.read_trajectory`) and rasterised
like the ground truth (`tracker.data.regions.region_to_mask`).

VOT runs are full tracking on the sequence as it is (Table 3's protocol) and give binary
masks, so every threshold gives the same IoU. For a sequence shorter than a column's
L + 1 frames, the column averages the per-frame IoUs over `resample_indices` (frames
weighted as the stretched run would weigh them), but the tracker saw the frames once, at
their own pace: comparable with tables of stretched runs only for long sequences.
"""

from __future__ import annotations

import os
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.metrics import frame_iou
from evaluation.protocols import PAPER_LENGTHS, PAPER_THRESHOLDS, TRACKING, SequenceScores, resample_indices

DEFAULT_EXPERIMENT = "unsupervised"


def results_folder(workspace: str | os.PathLike) -> Path:
    folder = Path(workspace) / "results"
    if not folder.is_dir():
        raise FileNotFoundError(f"workspace {str(workspace)!r} has no results folder ({folder}); run `vot evaluate` first")
    return folder


def workspace_trackers(workspace: str | os.PathLike, experiment: str = DEFAULT_EXPERIMENT) -> list[str]:
    """Trackers with a results folder for `experiment`, sorted."""
    folder = results_folder(workspace)
    return sorted(path.name for path in folder.iterdir() if (path / experiment).is_dir())


def workspace_sequences_folder(workspace: str | os.PathLike) -> Path:
    """The sequences folder that the workspace's config.yaml names (default `sequences`)."""
    workspace = Path(workspace)
    name = "sequences"
    config = workspace / "config.yaml"
    if config.is_file():
        import yaml

        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        name = str(data.get("sequences", name))
    return workspace / name


def result_file(workspace: str | os.PathLike, tracker: str, experiment: str, sequence: str) -> Path:
    """The first-run results file of `tracker` on `sequence` (binary or text)."""
    folder = results_folder(workspace) / tracker / experiment / sequence
    for suffix in (".bin", ".txt"):
        path = folder / f"{sequence}_001{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no results of tracker {tracker!r} on sequence {sequence!r} in experiment {experiment!r}: "
        f"expected {folder / (sequence + '_001.bin')} (did `vot evaluate` finish this sequence?)"
    )


def read_result_masks(path: str | os.PathLike, frame_size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame's mask `HxW` bool of a results file, frame 0 (initialisation) included
    as an empty mask."""
    from vot.region.io import read_trajectory

    from tracker.data.regions import region_to_mask

    try:
        regions = read_trajectory(str(path))
    except Exception as error:  # the toolkit raises struct.error, IOError, ValueError...
        raise ValueError(f"cannot read VOT results {str(path)!r}: {error}") from None
    return [region_to_mask(region, frame_size) for region in regions]


def workspace_scores(
    workspace: str | os.PathLike,
    sequences: Seq[Any],
    trackers: Seq[str] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    lengths: Seq[int] = PAPER_LENGTHS,
    thresholds: Seq[float] = PAPER_THRESHOLDS,
) -> list[SequenceScores]:
    """Table 3 scores of the masks `vot evaluate` stored, per tracker and sequence."""
    if len(sequences) == 0:
        raise ValueError("the test set is empty: no sequences to evaluate")
    available = workspace_trackers(workspace, experiment)
    trackers = list(trackers) if trackers else available
    missing = [name for name in trackers if name not in available]
    if missing:
        raise FileNotFoundError(
            f"workspace {str(workspace)!r} holds no {experiment!r} results of {', '.join(missing)}; "
            f"it has: {', '.join(available) or 'none'}"
        )
    if not trackers:
        raise FileNotFoundError(f"workspace {str(workspace)!r} holds no {experiment!r} results at all")
    thresholds = tuple(float(value) for value in thresholds)
    scores: list[SequenceScores] = []
    for tracker in trackers:
        for sequence in sequences:
            path = result_file(workspace, tracker, experiment, sequence.name)
            predicted = read_result_masks(path, tuple(sequence.frame_size))
            if len(predicted) != len(sequence):
                raise ValueError(f"{path}: {len(predicted)} frames of results for the {len(sequence)} frames of {sequence.name!r}")
            per_frame = np.full(len(sequence), np.nan)  # frame 0 is the initialisation
            for start in range(1, len(sequence), 32):
                frames = range(start, min(start + 32, len(sequence)))
                truth = np.stack([np.asarray(sequence.mask(index), dtype=bool) for index in frames])
                per_frame[start : frames.stop] = frame_iou(np.stack(predicted[start : frames.stop]), truth).numpy()
            for length in lengths:
                steps = resample_indices(len(sequence), length)[1:]
                ious = np.repeat(per_frame[steps][None, :], len(thresholds), axis=0)
                scores.append(SequenceScores(tracker, sequence.name, TRACKING, int(length), thresholds, ious))
    return scores
