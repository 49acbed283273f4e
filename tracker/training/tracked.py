"""Clips tracked by the online two-stage tracker (Algorithm 1), for iterative optimisation
steps 3 and 5 (paper Sec. 5.1).

Step 3 needs the maps the tracker feeds its own global model (Z_0, Z^_1, .., Z^_T: the
previous map binarised and resized, exactly `TwoStageState.global_input`); step 5 needs the
ROIs the tracker cropped (`TwoStageState.roi`). Both come from running
`tracker.two_stage.TwoStageTracker` itself over clips, never from a second implementation,
so training sees what tracking will do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracker.training.global_samples import PredictedClip
from tracker.training.samples import TrackedClip


@dataclass(frozen=True)
class TrackedRun:
    """One tracked clip: frames start..start+T of sequence `name`.

    `rois` float32 `[T + 1, 3]`: the crop box of each frame (frame 0: the initial ROI);
    `inputs` uint8 `[T + 1, S, S]`: the global model's input after each frame, value * 255.
    """

    name: str
    start: int
    rois: np.ndarray
    inputs: np.ndarray

    def predicted_clip(self, sequence: int) -> PredictedClip:
        return PredictedClip(sequence, self.start, self.inputs)

    def tracked_clip(self, sequence: int) -> TrackedClip:
        return TrackedClip(sequence, self.start, self.rois)


def choose_starts(pixels: SequenceOf[np.ndarray], frames: int, clips_per_sequence: int, seed: int,
                  min_pixels: int = 1) -> list[tuple[int, int]]:
    """(sequence index, start frame) pairs: up to `clips_per_sequence` distinct starts a
    sequence where the object covers >= `min_pixels` and `frames` frames follow."""
    rng = np.random.default_rng((seed, 0x7AC))
    starts = []
    for index, counts in enumerate(pixels):
        eligible = np.flatnonzero(counts[: max(len(counts) - frames, 0)] >= min_pixels)
        if not len(eligible):
            eligible = np.flatnonzero(counts[: max(len(counts) - frames, 0)] > 0)
        if not len(eligible):
            continue
        chosen = rng.choice(eligible, size=min(clips_per_sequence, len(eligible)), replace=False)
        starts.extend((index, int(s)) for s in sorted(chosen))
    return starts


def track_clips(tracker, sequences: SequenceOf, starts: SequenceOf[tuple[int, int]], frames: int, *,
                progress: bool = True, description: str = "tracking") -> list[TrackedRun]:
    """Run `tracker` (a `TwoStageTracker`) from each start's ground-truth mask over `frames` frames."""
    runs = []
    for index, start in tqdm(starts, desc=description, unit="clip", disable=not progress, leave=False):
        sequence = sequences[index]
        state = tracker.init(sequence.frame(start), sequence.mask(start))
        rois, inputs = [state.roi], [state.global_input]
        for t in range(start + 1, start + frames + 1):
            _, state = tracker.track(sequence.frame(t), state)
            rois.append(state.roi)
            inputs.append(state.global_input)
        rois = np.concatenate([r.float().cpu().numpy() for r in rois]).astype(np.float32)
        maps = np.concatenate([(m[:, 0].float() * 255).round().clamp(0, 255).byte().cpu().numpy() for m in inputs])
        runs.append(TrackedRun(sequence.name, start, rois, maps))
    return runs


def save_runs(path: str | os.PathLike, runs: SequenceOf[TrackedRun]) -> Path:
    """All runs in one .npz (written beside its name, then renamed: never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp.npz")
    np.savez(
        partial,
        names=np.array([r.name for r in runs]),
        starts=np.array([r.start for r in runs], dtype=np.int64),
        rois=np.stack([r.rois for r in runs]) if runs else np.zeros((0, 0, 3), np.float32),
        inputs=np.stack([r.inputs for r in runs]) if runs else np.zeros((0, 0, 0, 0), np.uint8),
    )
    os.replace(partial, path)
    return path


def load_runs(path: str | os.PathLike) -> list[TrackedRun]:
    with np.load(Path(path)) as data:
        return [TrackedRun(str(n), int(s), r, m) for n, s, r, m in
                zip(data["names"], data["starts"], data["rois"], data["inputs"])]
