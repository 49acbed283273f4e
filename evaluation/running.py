"""Running trackers for the evaluation protocols: which frames a tracker sees, which ROIs it
is given, the trackers themselves (`TrackerSpec`, built through `tracker.registry`) and the
cache of their runs. Scoring the runs is `evaluation.protocols`.

- Sequence lengths (Tables 2 and 3): column L averages the IoU of frames 1..L after the
  initial frame 0. A sequence of n >= L + 1 frames is cut to its first L + 1; a shorter
  one is stretched: step 0 is frame 0, step k = 1..L is frame 1 + floor((k - 1)(n - 1) / L)
  (docs/design.md's floor(k n / L) applied to the frames after the initial one, so that the
  initial frame, whose mask the tracker is given, is never scored, and every frame 1..n-1
  is). `resample_indices` gives these frame numbers.
- Table 2, protocol "gt-roi": the tracker crops where it is told. The ROI of step t is the
  ground-truth object box of step t - 5 (the square around the mask's bounding box, side
  doubled and clipped to [56, 672], as `tracker.roi` does in training), its centre
  smoothed by L_new = (1 - 0.8) L_old + 0.8 L_{t-5}. L_old starts at the initial ROI
  (from frame 0's mask), and steps t < 5 use step 0's box, so the ROI stays put for the
  first five steps. A step whose t - 5 mask is empty keeps the previous ROI.
- Table 3, protocol "tracking": the tracker places its own ROIs (Algorithm 1).
- Clips (Fig. 4): random 33-frame windows (the initial frame and 32 scored ones), seeded,
  each starting on a frame where the object is visible.
- k-fold cross-validation: a `TrackerSpec` maps each sequence to the checkpoint trained
  without it (`load_checkpoint_map` reads such a mapping from JSON).

Runs go through a `RunCache`, one file per (tracker, checkpoint, dataset, protocol,
sequence, frame indices), written as each sequence ends.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.metrics import PixelROC
from evaluation.results_cache import Run, RunCache, RunKey, checkpoint_id, quantise, settings_id
from tracker.interface import Tracker

GT_ROI = "gt-roi"
"""Table 2: ROIs from the ground truth five steps back."""
TRACKING = "tracking"
"""Table 3: full tracking, the tracker places its own ROIs."""
PROTOCOLS = (GT_ROI, TRACKING)

ROI_DELAY = 5
ROI_SMOOTHING = 0.8
CLIP_LENGTH = 32

SequenceLike = Any
"""`tracker.data.Sequence`: `.name`, `len()`, `.frame(i)`, `.mask(i)`, `.frame_size`."""


# ----------------------------------------------------------------------------- frames


def resample_indices(n: int, length: int) -> np.ndarray:
    """Source frame of steps 0..length for a sequence of `n` frames (see the module doc).

    n >= length + 1: frames 0..length. Shorter: 0, then 1 + floor((k - 1)(n - 1) / length)
    for k = 1..length, which repeats frames evenly and ends on or next to frame n - 1.
    """
    n, length = int(n), int(length)
    if length < 1:
        raise ValueError(f"sequence length must be at least 1, got {length}")
    if n < 2:
        raise ValueError(f"a sequence needs at least 2 frames (the initial one and one to track), got {n}")
    if n >= length + 1:
        return np.arange(length + 1, dtype=np.int64)
    steps = np.arange(length, dtype=np.int64)
    return np.concatenate(([0], 1 + steps * (n - 1) // length)).astype(np.int64)


def plan_runs(n: int, lengths: Iterable[int]) -> list[tuple[np.ndarray, list[int]]]:
    """The runs needed for every length, one run serving each length whose frames are a
    prefix of its own (a long sequence needs only its longest cut): [(indices, lengths)]."""
    plan: list[tuple[np.ndarray, list[int]]] = []
    for length in sorted({int(value) for value in lengths}, reverse=True):
        indices = resample_indices(n, length)
        for run_indices, served in plan:
            if run_indices.size >= indices.size and np.array_equal(run_indices[: indices.size], indices):
                served.append(length)
                break
        else:
            plan.append((indices, [length]))
    return plan


class FrameReader:
    """Reads a sequence's frames and masks, decoding a repeated index only once in a row
    (stretched sequences repeat frames)."""

    def __init__(self, sequence: SequenceLike):
        self.sequence = sequence
        self._frame: tuple[int, np.ndarray] | None = None
        self._mask: tuple[int, np.ndarray] | None = None

    def frame(self, index: int) -> np.ndarray:
        if self._frame is None or self._frame[0] != index:
            self._frame = (index, self.sequence.frame(int(index)))
        return self._frame[1]

    def mask(self, index: int) -> np.ndarray:
        if self._mask is None or self._mask[0] != index:
            self._mask = (index, np.asarray(self.sequence.mask(int(index)), dtype=bool))
        return self._mask[1]


# ----------------------------------------------------------------------------- Table 2 ROIs


def object_box(mask: np.ndarray) -> np.ndarray | None:
    """(cx, cy, side) of the square around a mask's bounding box; None for an empty mask."""
    from tracker.roi import box_from_mask

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    return box_from_mask(torch.from_numpy(mask)).double().numpy()


def local_roi(box: np.ndarray) -> np.ndarray:
    """The local ROI around an object box: side doubled, clipped to [56, 672]."""
    from tracker.roi import roi_from_object_box

    return roi_from_object_box(torch.as_tensor(np.asarray(box, dtype=np.float64))).numpy()


def ground_truth_rois(
    boxes: Seq[np.ndarray | None], delay: int = ROI_DELAY, smoothing: float = ROI_SMOOTHING
) -> np.ndarray:
    """Table 2's ROIs `[T + 1, 3]` from the object boxes of steps 0..T (None = empty mask).

    Row 0 is the initial ROI (from step 0's box, which must exist). Row t: the local ROI of
    the box of step max(t - delay, 0), centre smoothed L_new = (1 - smoothing) L_old +
    smoothing L_{t-delay}, side taken as is; an empty box keeps the previous ROI.
    """
    if not boxes or boxes[0] is None:
        raise ValueError("the initial frame's mask is empty: there is no object to place a ROI on")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"ROI smoothing must lie in [0, 1], got {smoothing!r}")
    rois = np.empty((len(boxes), 3), dtype=np.float64)
    rois[0] = local_roi(boxes[0])
    for step in range(1, len(boxes)):
        source = boxes[max(step - delay, 0)]
        if source is None:
            rois[step] = rois[step - 1]
            continue
        target = local_roi(source)
        rois[step, :2] = (1.0 - smoothing) * rois[step - 1, :2] + smoothing * target[:2]
        rois[step, 2] = target[2]
    return rois


# ----------------------------------------------------------------------------- one run


def _check_prob(prob: Any, frame_size: tuple[int, int], where: str) -> np.ndarray:
    prob = prob.detach().cpu().numpy() if isinstance(prob, torch.Tensor) else np.asarray(prob)
    if prob.shape != tuple(frame_size):
        raise ValueError(f"{where}: the probability map is {prob.shape}, the frame is {tuple(frame_size)}")
    if not np.issubdtype(prob.dtype, np.floating):
        raise ValueError(f"{where}: the probability map must be float in [0, 1], got dtype {prob.dtype}")
    low, high = float(np.min(prob)), float(np.max(prob))
    if not (low >= -1e-6 and high <= 1 + 1e-6):  # also catches NaN
        raise ValueError(f"{where}: the probability map must lie in [0, 1], got values in [{low}, {high}]")
    return prob


def run_tracker(
    tracker: Tracker,
    sequence: SequenceLike,
    indices: np.ndarray,
    protocol: str,
    *,
    delay: int = ROI_DELAY,
    smoothing: float = ROI_SMOOTHING,
    roc: PixelROC | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    tracker_name: str | None = None,
    on_step: Callable[[int, np.ndarray, Any], None] | None = None,
) -> Run:
    """Track `sequence` at frames `indices` (step 0 = init) under `protocol`; where `roc` is
    given, the float maps of steps 1..T are added to it against the ground truth; `on_step`
    sees each step's number, float map and the tracker's state after it (for diagnoses that
    read the state, e.g. the ROI it cropped)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    indices = np.asarray(indices, dtype=np.int64)
    name = tracker_name or getattr(tracker, "name", type(tracker).__name__)
    reader = FrameReader(sequence)
    initial_mask = reader.mask(indices[0])
    if not initial_mask.any():
        raise ValueError(
            f"sequence {sequence.name!r}: the initial frame {int(indices[0])} has an empty mask; nothing to track"
        )
    rois = None
    if protocol == GT_ROI:
        rois = ground_truth_rois([object_box(reader.mask(index)) for index in indices], delay, smoothing)
    frame_size = tuple(sequence.frame_size)
    probs = np.empty((indices.size - 1, *frame_size), dtype=np.uint8)
    state = tracker.init(reader.frame(indices[0]), initial_mask)
    steps = tqdm(range(1, indices.size), desc=f"{name} {sequence.name}", unit="frame", leave=False, disable=not progress)
    for step in steps:
        frame = reader.frame(indices[step])
        roi = None if rois is None else tuple(float(value) for value in rois[step])
        prob, state = tracker.track(frame, state, roi=roi)
        where = f"tracker {name!r}, sequence {sequence.name!r}, step {step} (frame {int(indices[step])})"
        prob = _check_prob(prob, frame_size, where)
        probs[step - 1] = quantise(prob)
        if on_step is not None:
            on_step(step, prob, state)
        if roc is not None:
            roc.update(torch.from_numpy(np.ascontiguousarray(prob, dtype=np.float32)).to(device or "cpu"),
                       torch.from_numpy(reader.mask(indices[step])).to(device or "cpu"))
    return Run(
        sequence=sequence.name,
        protocol=protocol,
        indices=indices,
        probs=probs,
        rois=rois,
        roc_counts=None if roc is None else roc.counts.cpu().numpy(),
        roc_spacing=None if roc is None else roc.spacing,
    )


# ----------------------------------------------------------------------------- trackers


@dataclass
class TrackerSpec:
    """A tracker as the evaluation sees it: a row name, a factory `checkpoint -> tracker`,
    and its checkpoint: one for every sequence, or per sequence (k-fold cross-validation:
    each sequence tracked by the checkpoint trained without it)."""

    name: str
    factory: Callable[[str | None], Tracker]
    checkpoints: str | None | Mapping[str, str | None] = None
    _built: "OrderedDict[str | None, Tracker]" = field(default_factory=OrderedDict, init=False, repr=False)
    _settings_ids: dict[str | None, str] = field(default_factory=dict, init=False, repr=False)

    def checkpoint_for(self, sequence: str) -> str | None:
        if isinstance(self.checkpoints, Mapping):
            if sequence not in self.checkpoints:
                raise ValueError(
                    f"tracker {self.name!r}: the checkpoint map has no entry for sequence {sequence!r} "
                    f"(it lists {len(self.checkpoints)} sequences)"
                )
            return self.checkpoints[sequence]
        return self.checkpoints

    def checkpoint_id_for(self, sequence: str) -> str:
        return checkpoint_id(self.checkpoint_for(sequence))

    def settings_id_for(self, sequence: str) -> str:
        """The settings of the tracker that runs `sequence` (`settings()`, where it has one), as
        the run cache names them: changing a tracker's settings never reads stale runs. Once a
        checkpoint: keying the runs of a k-fold map, sequence after sequence, would otherwise
        rebuild a tracker each time its fold's model left the two kept."""
        checkpoint = self.checkpoint_for(sequence)
        if checkpoint not in self._settings_ids:
            settings = getattr(self.tracker_for(sequence), "settings", None)
            self._settings_ids[checkpoint] = settings_id(settings() if callable(settings) else None)
        return self._settings_ids[checkpoint]

    def tracker_for(self, sequence: str) -> Tracker:
        """The tracker for `sequence`, built on first use; two builds are kept (folds come
        sequence after sequence, and a model of each fold would not fit in memory)."""
        checkpoint = self.checkpoint_for(sequence)
        if checkpoint not in self._built:
            self._built[checkpoint] = self.factory(checkpoint)
            while len(self._built) > 2:
                self._built.popitem(last=False)
        self._built.move_to_end(checkpoint)
        return self._built[checkpoint]

    def __getstate__(self) -> dict[str, Any]:
        """What a worker process needs (`evaluation.parallel`): the built trackers stay here."""
        state = dict(self.__dict__)
        state["_built"] = OrderedDict()
        return state


@dataclass(frozen=True)
class RegisteredFactory:
    """`checkpoint -> tracker` of a registered tracker: a value, not a closure, so that a
    `TrackerSpec` of it can be sent to worker processes."""

    name: str
    device: str | None = None
    precision: str = "fp32"
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self, path: str | None) -> Tracker:
        from tracker.registry import build_tracker

        return build_tracker(self.name, checkpoint=path, device=self.device, precision=self.precision,
                             **dict(self.options))


def registered_tracker(name: str, checkpoint: str | None | Mapping[str, str | None] = None,
                       device: str | None = None, label: str | None = None,
                       precision: str = "fp32", **options: Any) -> TrackerSpec:
    """A `TrackerSpec` for a tracker of `tracker.registry` (`name` or one of its aliases,
    which labels the rows and keys the cached runs as given); outside fp32 its default label
    is `name@precision`, which also keeps its cached runs apart from the fp32 ones. `options`
    go to the tracker's factory (`tracker.registry.STANDARD_OPTIONS`)."""
    from tracker.registry import entry

    if precision != "fp32" and precision in entry(name).precisions:
        label = label or f"{name}@{precision}"
    else:
        precision = "fp32"  # the other trackers run in fp32 whatever is asked of the rest
    factory = RegisteredFactory(name, device, precision, tuple(sorted(options.items())))
    return TrackerSpec(label or name, factory, checkpoint)


def load_checkpoint_map(path: str | os.PathLike) -> dict[str, str]:
    """sequence -> checkpoint from a JSON file, for k-fold evaluation. Either
    `{"<sequence>": "<checkpoint>", ...}` or `{"folds": [{"test": [names], "checkpoint":
    "<path>"}, ...]}`; relative checkpoint paths are relative to the JSON file's folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint map {str(path)!r} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"checkpoint map {str(path)!r} is not valid JSON: {error}") from None

    def resolve(value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"checkpoint map {str(path)!r}: {where} must be a checkpoint path, got {value!r}")
        return str(value if os.path.isabs(value) else (path.parent / value))

    mapping: dict[str, str] = {}
    if isinstance(data, dict) and "folds" in data:
        for number, fold in enumerate(data["folds"]):
            if not isinstance(fold, dict) or not isinstance(fold.get("test"), list):
                raise ValueError(f"checkpoint map {str(path)!r}: fold {number} needs a 'test' list and a 'checkpoint'")
            checkpoint = resolve(fold.get("checkpoint"), f"fold {number}'s checkpoint")
            for sequence in fold["test"]:
                if sequence in mapping:
                    raise ValueError(f"checkpoint map {str(path)!r}: sequence {sequence!r} is in two test folds")
                mapping[str(sequence)] = checkpoint
    elif isinstance(data, dict):
        mapping = {str(sequence): resolve(value, f"sequence {sequence!r}") for sequence, value in data.items()}
    else:
        raise ValueError(f"checkpoint map {str(path)!r} must be a JSON object")
    if not mapping:
        raise ValueError(f"checkpoint map {str(path)!r} maps no sequence")
    return mapping


# ----------------------------------------------------------------------------- the runs


def check_sequences(sequences: Seq[SequenceLike]) -> None:
    if len(sequences) == 0:
        raise ValueError("the test set is empty: no sequences to evaluate")
    names = [sequence.name for sequence in sequences]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"sequence names must be unique; repeated: {', '.join(duplicates)}")


def _protocol_key(protocol: str, options: Mapping[str, Any]) -> str:
    """The protocol's name in the cache, with the options that change its runs."""
    if protocol != GT_ROI:
        return protocol
    delay = int(options.get("delay", ROI_DELAY))
    smoothing = float(options.get("smoothing", ROI_SMOOTHING))
    return f"{protocol}-delay{delay}-beta{smoothing:g}"


def run_key(spec: TrackerSpec, sequence: str, protocol: str, dataset: str,
            protocol_options: Mapping[str, Any] | None = None) -> RunKey:
    """Where the run of `spec` on `sequence` under `protocol` is cached (`cached_run`)."""
    return RunKey(spec.name, spec.checkpoint_id_for(sequence), dataset, _protocol_key(protocol, protocol_options or {}),
                  sequence, spec.settings_id_for(sequence))


@dataclass(frozen=True)
class RunRequest:
    """One run an evaluation needs, by name: the unit that `evaluation.parallel` spreads over
    worker processes and shards. `roc`: (thresholds, spacing) of the pixel ROC the run keeps
    (Fig. 4's clips), None for the tables' runs."""

    tracker: str
    sequence: str
    protocol: str
    indices: tuple[int, ...]
    roc: tuple[int, str] | None = None

    @property
    def label(self) -> str:
        first, last = self.indices[0], self.indices[-1]
        return f"{self.tracker} on {self.sequence} ({self.protocol}, frames {first}..{last}, {len(self.indices) - 1} steps)"


def cached_run(
    spec: TrackerSpec,
    sequence: SequenceLike,
    indices: np.ndarray,
    protocol: str,
    cache: RunCache,
    dataset: str,
    *,
    roc: PixelROC | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    refresh: bool = False,
    **protocol_options: Any,
) -> Run:
    """The run of `spec` on `sequence` at `indices`: from the cache, else tracked and stored.
    With `roc`, the run's ROC histogram is merged into it (tracking again where the cached
    run has none)."""
    key = run_key(spec, sequence.name, protocol, dataset, protocol_options)
    run = None if refresh else cache.load(key, indices, with_roc=roc is not None)
    if run is not None and roc is not None and run.roc_spacing != roc.spacing:
        run = None
    if run is None:
        fresh = None if roc is None else PixelROC(roc.num_thresholds, roc.spacing, device=device or "cpu")
        run = run_tracker(
            spec.tracker_for(sequence.name), sequence, indices, protocol,
            roc=fresh, device=device, progress=progress, tracker_name=spec.name, **protocol_options,
        )
        cache.save(key, run)
    if roc is not None:
        stored = PixelROC.from_counts(run.roc_counts, spacing=run.roc_spacing)
        if stored.num_thresholds != roc.num_thresholds:
            raise ValueError(f"cached ROC of {sequence.name!r} has {stored.num_thresholds} thresholds, not {roc.num_thresholds}")
        roc.merge(stored)
    return run


# ----------------------------------------------------------------------------- clips (Fig. 4)


@dataclass(frozen=True)
class Clip:
    sequence: str
    indices: np.ndarray


def sample_clips(
    sequences: Seq[SequenceLike], count: int, length: int = CLIP_LENGTH, seed: int = 0
) -> list[Clip]:
    """`count` clips of the initial frame and `length` more, uniform over all (sequence,
    start) windows, seeded. A window starting on an empty mask moves to the next frame with
    the object in view; a sequence shorter than a window is stretched (`resample_indices`)."""
    check_sequences(sequences)
    if count < 1 or length < 1:
        raise ValueError(f"need at least one clip of at least one frame, got {count} clips of {length}")
    rng = np.random.default_rng(seed)
    windows = np.array([max(len(sequence) - length, 1) for sequence in sequences], dtype=np.int64)
    picks = rng.choice(int(windows.sum()), size=count, replace=True)
    offsets = np.concatenate(([0], np.cumsum(windows)))
    clips = []
    for pick in picks:
        which = int(np.searchsorted(offsets, pick, side="right") - 1)
        sequence = sequences[which]
        n = len(sequence)
        if n < length + 1:
            indices = resample_indices(n, length)
            if not np.asarray(sequence.mask(0)).any():
                raise ValueError(f"sequence {sequence.name!r} is shorter than a clip and starts on an empty mask")
        else:
            start = _visible_start(sequence, int(pick - offsets[which]), n - length - 1)
            indices = np.arange(start, start + length + 1, dtype=np.int64)
        clips.append(Clip(sequence.name, indices))
    return clips


def _visible_start(sequence: SequenceLike, start: int, last_start: int) -> int:
    for candidate in list(range(start, last_start + 1)) + list(range(start - 1, -1, -1)):
        if np.asarray(sequence.mask(candidate)).any():
            return candidate
    raise ValueError(f"sequence {sequence.name!r}: no frame where a clip could start has the object in view")


def iterate_steps(run: Run) -> Iterator[tuple[int, int, np.ndarray]]:
    """(step, source frame, float map) for steps 1..T of a run: for plots."""
    for step in range(1, run.steps + 1):
        yield step, int(run.indices[step]), run.prob(step)
