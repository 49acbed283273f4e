"""The paper's evaluation protocols scored: the per-frame IoUs of runs against the ground
truth, per sequence length (Tables 2 and 3: `evaluate_lengths`) and over random clips
(Fig. 4: `evaluate_clips`, with the pooled pixel ROC); `score_run` scores one run.

How the trackers are run for them (frames, Table 2's ROIs, the trackers, the run cache) is
`evaluation.running`, whose public names are importable from here too: this module is the
protocols' one interface for the tables, the ablations and the plots.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.metrics import DEFAULT_NUM_THRESHOLDS, PixelROC, binarize, frame_iou
from evaluation.results_cache import Run, RunCache, dequantise
from evaluation.running import (  # noqa: F401 (re-exported: the protocols' interface)
    CLIP_LENGTH,
    GT_ROI,
    PROTOCOLS,
    ROI_DELAY,
    ROI_SMOOTHING,
    TRACKING,
    Clip,
    FrameReader,
    SequenceLike,
    TrackerSpec,
    cached_run,
    check_sequences,
    ground_truth_rois,
    iterate_steps,
    load_checkpoint_map,
    local_roi,
    object_box,
    plan_runs,
    RunRequest,
    registered_tracker,
    resample_indices,
    run_key,
    run_tracker,
    sample_clips,
)

PAPER_LENGTHS = (20, 40, 80, 160)
PAPER_THRESHOLDS = (0.4, 0.7)


# ----------------------------------------------------------------------------- one run


def score_run(
    run: Run,
    sequence: SequenceLike,
    thresholds: Seq[float] = PAPER_THRESHOLDS,
    device: str | torch.device | None = None,
    batch: int = 16,
) -> np.ndarray:
    """Per-step IoU `[len(thresholds), T]` of a run's maps binarised at each threshold
    against the ground truth of the frames it tracked."""
    if tuple(sequence.frame_size) != run.frame_size:
        raise ValueError(
            f"sequence {sequence.name!r}: predictions are {run.frame_size[1]}x{run.frame_size[0]} but the "
            f"ground truth is {sequence.frame_size[1]}x{sequence.frame_size[0]}"
        )
    if int(run.indices.max()) >= len(sequence):
        raise ValueError(
            f"sequence {sequence.name!r} has {len(sequence)} frames, but the predictions cover frame "
            f"{int(run.indices.max())}"
        )
    device = torch.device(device or "cpu")
    reader = FrameReader(sequence)
    # binarize(q / 255, t) on the uint8 levels directly: the first level whose dequantised
    # value reaches t, found by the same float computation (identical masks, no float maps).
    levels = [_first_level(threshold) for threshold in thresholds]
    ious = np.empty((len(thresholds), run.steps), dtype=np.float64)
    for start in range(0, run.steps, batch):
        stop = min(start + batch, run.steps)
        probs = torch.from_numpy(run.probs[start:stop]).to(device)
        gt = torch.from_numpy(np.stack([reader.mask(run.indices[k + 1]) for k in range(start, stop)])).to(device)
        for row, level in enumerate(levels):
            predicted = probs >= level if level <= 255 else torch.zeros_like(probs, dtype=torch.bool)
            ious[row, start:stop] = frame_iou(predicted, gt).cpu().numpy()
    return ious


def _first_level(threshold: float) -> int:
    """The smallest uint8 level q with binarize(q / 255, threshold) true (256: none)."""
    values = torch.from_numpy(dequantise(np.arange(256, dtype=np.uint8)))
    hits = torch.nonzero(binarize(values, threshold))
    return int(hits[0]) if hits.numel() else 256


# ----------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class SequenceScores:
    """Per-step IoUs of one tracker on one sequence at one length: `ious[i, k]` at
    `thresholds[i]`, step k + 1."""

    tracker: str
    sequence: str
    protocol: str
    length: int
    thresholds: tuple[float, ...]
    ious: np.ndarray

    def mean(self) -> np.ndarray:
        """Mean IoU over steps 1..length, per threshold."""
        return self.ious.mean(axis=1)


def evaluate_lengths(
    specs: Seq[TrackerSpec],
    sequences: Seq[SequenceLike],
    protocol: str,
    lengths: Seq[int] = PAPER_LENGTHS,
    thresholds: Seq[float] = PAPER_THRESHOLDS,
    cache: RunCache | None = None,
    dataset: str = "dataset",
    device: str | torch.device | None = None,
    progress: bool = True,
    refresh: bool = False,
) -> list[SequenceScores]:
    """Every tracker on every sequence at every length under `protocol` (Table 2 or 3)."""
    check_sequences(sequences)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if not lengths or min(lengths) < 1:
        raise ValueError(f"sequence lengths must be positive, got {list(lengths)}")
    cache = cache or RunCache(None)
    thresholds = tuple(float(value) for value in thresholds)
    scores: list[SequenceScores] = []
    for spec in specs:
        bar = tqdm(sequences, desc=f"{spec.name} {protocol}", unit="seq", disable=not progress)
        for sequence in bar:
            bar.set_postfix_str(sequence.name)
            for indices, served in plan_runs(len(sequence), lengths):
                run = cached_run(spec, sequence, indices, protocol, cache, dataset,
                                 device=device, progress=progress, refresh=refresh)
                ious = score_run(run, sequence, thresholds, device)
                for length in served:
                    scores.append(SequenceScores(spec.name, sequence.name, protocol, length, thresholds, ious[:, :length]))
    return scores


def length_requests(specs: Seq[TrackerSpec], sequences: Seq[SequenceLike], protocol: str,
                    lengths: Seq[int] = PAPER_LENGTHS) -> list[RunRequest]:
    """The runs `evaluate_lengths` reads (the same `plan_runs`), for `evaluation.parallel`."""
    return [RunRequest(spec.name, sequence.name, protocol, tuple(int(i) for i in indices))
            for spec in specs for sequence in sequences for indices, _ in plan_runs(len(sequence), lengths)]


# ----------------------------------------------------------------------------- clips (Fig. 4)


@dataclass
class ClipResults:
    """One tracker over a set of clips: the pooled pixel ROC, and per-clip IoU curves
    `ious[c, i, k]` (clip c, threshold i, step k + 1)."""

    tracker: str
    roc: PixelROC
    thresholds: tuple[float, ...]
    ious: np.ndarray

    def framewise_iou(self) -> np.ndarray:
        """IoU(t) averaged over clips, `[len(thresholds), length]` (Fig. 4 right)."""
        return self.ious.mean(axis=0)


def evaluate_clips(
    specs: Seq[TrackerSpec],
    sequences: Seq[SequenceLike],
    clips: Seq[Clip],
    protocol: str = GT_ROI,
    thresholds: Seq[float] = PAPER_THRESHOLDS,
    cache: RunCache | None = None,
    dataset: str = "dataset",
    num_thresholds: int = DEFAULT_NUM_THRESHOLDS,
    spacing: str = "logit",
    device: str | torch.device | None = None,
    progress: bool = True,
    refresh: bool = False,
) -> dict[str, ClipResults]:
    """ROC and framewise IoU of every tracker over `clips` (Fig. 4). The default protocol
    gives ROIs from the ground truth, as the paper compares local models there."""
    check_sequences(sequences)
    if not clips:
        raise ValueError("no clips to evaluate")
    by_name = {sequence.name: sequence for sequence in sequences}
    missing = sorted({clip.sequence for clip in clips} - set(by_name))
    if missing:
        raise ValueError(f"clips refer to sequences not in the test set: {', '.join(missing)}")
    cache = cache or RunCache(None)
    thresholds = tuple(float(value) for value in thresholds)
    results: dict[str, ClipResults] = {}
    for spec in specs:
        roc = PixelROC(num_thresholds, spacing=spacing, device=device or "cpu")
        curves = []
        for clip in tqdm(clips, desc=f"{spec.name} clips", unit="clip", disable=not progress):
            sequence = by_name[clip.sequence]
            run = cached_run(spec, sequence, clip.indices, protocol, cache, dataset,
                             roc=roc, device=device, progress=False, refresh=refresh)
            curves.append(score_run(run, sequence, thresholds, device))
        results[spec.name] = ClipResults(spec.name, roc, thresholds, np.stack(curves))
    return results


def clip_requests(specs: Seq[TrackerSpec], clips: Seq[Clip], protocol: str = GT_ROI,
                  num_thresholds: int = DEFAULT_NUM_THRESHOLDS, spacing: str = "logit") -> list[RunRequest]:
    """The runs `evaluate_clips` reads, each with its pixel ROC, for `evaluation.parallel`."""
    return [RunRequest(spec.name, clip.sequence, protocol, tuple(int(i) for i in clip.indices), (num_thresholds, spacing))
            for spec in specs for clip in clips]
