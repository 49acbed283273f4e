"""Training sequences for the global model (paper Sec. 4): maps Z_0..Z_T at 224x224.

Every full-frame mask becomes the global model's view of it through
`tracker.roi.resize_map` (the function the tracker uses on its own maps), kept as uint8
(value * 255). A clip of T + 1 maps starting at a frame where the object is visible gives
the model its inputs Z_0..Z_{T-1} and the targets Z_1..Z_T (theta_t = tau(Z_{0:t-1}), Eq. 4);
the aspect ratio gamma = W / H of the sequence goes with it.

Iterative optimisation step 4 replaces the inputs after Z_0 by the maps the tracker itself
produced (`PredictedClip`: Z_0, Z^_1, .., Z^_{T-1}); the targets stay the ground truth.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tracker import roi

GLOBAL_FRAMES = 32
"""T of Sec. 4: the global model trains on sequences of 32 frames."""


@dataclass(frozen=True)
class MapSequence:
    """One sequence as the global model sees it: uint8 maps `[N, S, S]` and gamma = W / H."""

    name: str
    aspect: float
    maps: np.ndarray
    visible: np.ndarray  # [N] bool: the full-frame mask is not empty


def ground_truth_maps(sequence, size: int = roi.ROI_SIZE, chunk: int = 16) -> MapSequence:
    """Read every mask of `sequence` once and resize it as the tracker resizes its maps."""
    height, width = sequence.frame_size
    maps, visible = [], []
    for first in range(0, len(sequence), chunk):
        masks = [np.asarray(sequence.mask(i), dtype=bool) for i in range(first, min(first + chunk, len(sequence)))]
        visible.extend(bool(m.any()) for m in masks)
        batch = torch.from_numpy(np.stack(masks)).float()[:, None]
        maps.append((roi.resize_map(batch, size)[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy())
    if not maps:
        raise ValueError(f"sequence {sequence.name!r} has no frames")
    return MapSequence(sequence.name, width / height, np.concatenate(maps), np.asarray(visible))


@dataclass(frozen=True)
class PredictedClip:
    """The tracker's own global-model inputs for frames start..start+T of sequence `sequence`:
    `inputs` uint8 `[T + 1, S, S]` = Z_0 (ground truth), Z^_1, .., Z^_T."""

    sequence: int
    start: int
    inputs: np.ndarray


class GlobalClipDataset(Dataset):
    """Item -> {"inputs", "targets"} float32 `[T, 1, S, S]` in [0, 1] and "aspect" (a float).

    Ground-truth mode: item i is a random clip of sequence i mod the number of usable ones
    (a start frame with a visible object and T frames after it), drawn from
    `(seed, epoch, i)`. Predicted mode (`predicted` given): item i is predicted clip i.
    """

    def __init__(
        self,
        sequences: SequenceOf[MapSequence],
        frames: int = GLOBAL_FRAMES,
        *,
        seed: int = 0,
        clips_per_sequence: int = 1,
        predicted: SequenceOf[PredictedClip] | None = None,
    ) -> None:
        if frames < 2:
            raise ValueError(f"a global clip needs at least 2 frames after the first, got {frames}")
        if clips_per_sequence < 1:
            raise ValueError(f"clips_per_sequence must be >= 1, got {clips_per_sequence}")
        self.sequences, self.frames, self.seed, self.epoch = list(sequences), frames, int(seed), 0
        self.predicted = list(predicted) if predicted is not None else None
        if self.predicted is not None:
            for clip in self.predicted:
                if clip.inputs.shape[0] < frames:
                    raise ValueError(f"a predicted clip has {clip.inputs.shape[0]} maps, {frames} needed")
            if not self.predicted:
                raise ValueError("no predicted clips")
            self.length = len(self.predicted)
            return
        self.starts = [np.flatnonzero(s.visible[: max(len(s.maps) - frames, 0)]) for s in self.sequences]
        self.usable = [i for i, starts in enumerate(self.starts) if len(starts)]
        if not self.usable:
            raise ValueError(f"no sequence has {frames + 1} frames from a frame with a visible object "
                             "(shorten --global-frames?)")
        skipped = [s.name for s, starts in zip(self.sequences, self.starts) if not len(starts)]
        if skipped:
            warnings.warn(f"no global clip of {frames + 1} frames in: {', '.join(skipped)}", stacklevel=2)
        self.length = len(self.usable) * clips_per_sequence

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def clip(self, index: int) -> tuple[int, int]:
        """(sequence, start frame) of item `index` in the current epoch."""
        if not 0 <= index < self.length:
            raise IndexError(f"clip {index} out of range for {self.length} clips")
        if self.predicted is not None:
            return self.predicted[index].sequence, self.predicted[index].start
        sequence = self.usable[index % len(self.usable)]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return sequence, int(rng.choice(self.starts[sequence]))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sequence, start = self.clip(index)
        maps = self.sequences[sequence].maps
        targets = maps[start + 1 : start + self.frames + 1]
        if self.predicted is not None:
            inputs = self.predicted[index].inputs[: self.frames]
        else:
            inputs = maps[start : start + self.frames]
        as_float = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32) / 255.0)[:, None]  # noqa: E731
        return {
            "inputs": as_float(inputs),
            "targets": as_float(targets),
            "aspect": torch.tensor(self.sequences[sequence].aspect, dtype=torch.float32),
        }
