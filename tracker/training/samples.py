"""Training clips for the local model (paper Sec. 3.3, steps 1-4).

A clip is T + 1 ROI images x_0..x_T and their ROI ground truth z_0..z_T from one sequence:

1. an initial frame where the object is visible and not tiny (x_0, z_0 initialise memory);
2. for clip frame k the square ROI of twice the object's longer side, clipped to
   [56, 672] px (`tracker.roi.roi_from_object_box`), centred by the object's mask at clip
   frame k - 5 (k < 5: the initial frame's; an empty mask there: the latest visible one
   before it), so the object is off-centre the way a lagging global model leaves it;
3. each ROI perturbed: side times U(0.9, 1.1) (after the clipping, the paper's order), centre
   shifted by U(-10, 10) px in x and in y, *pixels of the 224x224 ROI image* (the unit
   Sec. 3.4 measures drift in: the same relative error for small and large objects);
4. noisy-frame insertion: one clip frame k in 1..T (never the initial one) is replaced by
   an ROI around the object of another sequence at a random time; its ground truth is all
   zero. The model must learn to keep its memory and to ignore the intruder (Sec. 3.4).

Iterative optimisation step 5 trains on ROIs placed by the tracker instead of the ground
truth: `TrackedClip`s carry those boxes and replace steps 1-3; insertion still applies.

Every random draw of sample `index` in `epoch` comes from a generator seeded by
`(seed, epoch, index)`, so a clip does not depend on worker count, order or process.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tracker import roi

NO_INSERT = -1
"""`inserted` of a clip without a noisy frame."""


@dataclass(frozen=True)
class ClipConfig:
    """How local-model clips are drawn (defaults: the paper's Sec. 3.3)."""

    frames: int = 16
    """T: clip frames after the initial one (the paper does not give T for the local model)."""
    lag: int = 5
    """ROI of clip frame k is centred by the object mask at frame k - lag."""
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_shift: float = 10.0
    """Largest centre shift, in pixels of the 224x224 ROI image, in x and in y."""
    insert_noise: bool = True
    """Step 4: replace one frame a clip by another sequence's ROI with an all-zero target."""
    min_object_pixels: int = 64
    """An initial frame's object must cover at least this many pixels ("not tiny")."""

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"a clip needs at least 1 frame after the initial one, got frames={self.frames}")
        if self.lag < 0:
            raise ValueError(f"lag must be >= 0, got {self.lag}")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}")
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {self.max_shift}")


@dataclass(frozen=True)
class ObjectBoxes:
    """Per frame of one sequence: the object box (cx, cy, side) in pixels and its pixel count."""

    boxes: np.ndarray  # [N, 3] float32; side 0 where the mask is empty
    pixels: np.ndarray  # [N] int64

    @property
    def visible(self) -> np.ndarray:
        return self.pixels > 0


def object_boxes(sequence) -> ObjectBoxes:
    """Read every mask of `sequence` once and keep its object box (`tracker.roi.box_from_mask`)."""
    boxes, pixels = [], []
    for i in range(len(sequence)):
        mask = torch.from_numpy(np.ascontiguousarray(sequence.mask(i), dtype=bool))
        boxes.append(roi.box_from_mask(mask).numpy())
        pixels.append(int(mask.sum()))
    if not boxes:
        raise ValueError(f"sequence {sequence.name!r} has no frames")
    return ObjectBoxes(np.stack(boxes).astype(np.float32), np.asarray(pixels, dtype=np.int64))


@dataclass(frozen=True)
class TrackedClip:
    """ROIs placed by a tracker: frames start..start+T of sequence `sequence` (an index into
    the dataset's sequences) cropped at `boxes` `[T + 1, 3]` (pixels)."""

    sequence: int
    start: int
    boxes: np.ndarray


@dataclass(frozen=True)
class ClipPlan:
    """Everything random about one clip, drawn before any pixel is read."""

    sequence: int
    frames: np.ndarray  # [T + 1] frame indices in `sequence`
    boxes: np.ndarray  # [T + 1, 3] crop boxes in pixels of their source frame
    base_boxes: np.ndarray  # [T + 1, 3] the same before perturbation (tracked clips: equal)
    inserted: int = NO_INSERT  # clip position of the noisy frame, or NO_INSERT
    insert_sequence: int = -1
    insert_frame: int = -1
    insert_box: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.float32))


def _perturb(rng: np.random.Generator, boxes: np.ndarray, config: ClipConfig) -> np.ndarray:
    """Step 3: random scale of the side, then a shift of the centre in ROI-image pixels."""
    count = boxes.shape[0]
    side = boxes[:, 2] * rng.uniform(*config.scale_range, size=count)
    shift = rng.uniform(-config.max_shift, config.max_shift, size=(count, 2)) * (side / roi.ROI_SIZE)[:, None]
    return np.stack((boxes[:, 0] + shift[:, 0], boxes[:, 1] + shift[:, 1], side), axis=1).astype(np.float32)


def _roi_boxes(object_box: np.ndarray) -> np.ndarray:
    return roi.roi_from_object_box(torch.from_numpy(np.asarray(object_box, dtype=np.float32))).numpy()


def lagged_reference(visible: np.ndarray, start: int, frames: int, lag: int) -> np.ndarray:
    """Frame whose mask places clip frame k's ROI: start + max(0, k - lag), moved back to the
    latest visible frame not before `start` (which is visible)."""
    reference = np.empty(frames + 1, dtype=np.int64)
    for k in range(frames + 1):
        frame = start + max(0, k - lag)
        while frame > start and not visible[frame]:
            frame -= 1
        reference[k] = frame
    return reference


class LocalClipDataset(Dataset):
    """Sec. 3.3 clips as a map-style dataset, for `torch.utils.data.DataLoader` workers.

    Item `index` of the current epoch (`set_epoch`) is a dict of tensors:
    `images` uint8 `[T + 1, 3, 224, 224]` (RGB 0..255, the local model's input),
    `masks` float32 `[T + 1, 1, 224, 224]` (ROI ground truth as pixel coverage in [0, 1]),
    `boxes` float32 `[T + 1, 3]` (the crops), `placement` float32 `[T + 1, 3]` (the same,
    except that an inserted frame keeps the box its own frame would have had: where the
    tracker expected the object), `inserted` (clip position of the noisy frame, or -1),
    `sequence` and `start` (which frames). With `tracked` clips, item i is clip i mod their
    number; otherwise item i comes from sequence i mod the number of usable sequences.
    Workers are not persistent: `set_epoch` before iterating reaches them.
    """

    def __init__(
        self,
        sequences: SequenceOf,
        config: ClipConfig = ClipConfig(),
        *,
        seed: int = 0,
        clips_per_sequence: int = 1,
        tracked: SequenceOf[TrackedClip] | None = None,
        boxes: SequenceOf[ObjectBoxes] | None = None,
    ) -> None:
        if len(sequences) == 0:
            raise ValueError("no training sequences")
        if clips_per_sequence < 1:
            raise ValueError(f"clips_per_sequence must be >= 1, got {clips_per_sequence}")
        self.sequences = list(sequences)
        self.config = config
        self.seed = int(seed)
        self.epoch = 0
        self.boxes = list(boxes) if boxes is not None else [object_boxes(s) for s in self.sequences]
        if len(self.boxes) != len(self.sequences):
            raise ValueError(f"{len(self.boxes)} box tables for {len(self.sequences)} sequences")
        self.tracked = list(tracked) if tracked is not None else None
        self.starts = [self._initial_frames(i) for i in range(len(self.sequences))]
        if self.tracked is not None:
            if not self.tracked:
                raise ValueError("no tracked clips")
            for clip in self.tracked:
                if clip.boxes.shape != (config.frames + 1, 3):
                    raise ValueError(f"a tracked clip has boxes {clip.boxes.shape}, expected ({config.frames + 1}, 3)")
            self.length = len(self.tracked)
        else:
            self.usable = [i for i, starts in enumerate(self.starts) if len(starts)]
            skipped = [self.sequences[i].name for i, starts in enumerate(self.starts) if not len(starts)]
            if not self.usable:
                raise ValueError(
                    f"no sequence has {config.frames + 1} frames from a frame where the object covers >= "
                    f"{config.min_object_pixels} pixels (shorten --clip-frames?)"
                )
            if skipped:
                warnings.warn(f"no usable clip of {config.frames + 1} frames in: {', '.join(skipped)}", stacklevel=2)
            self.length = len(self.usable) * clips_per_sequence
        # Frames another sequence may lend for insertion: any with a visible object.
        self.donors = [np.flatnonzero(b.visible) for b in self.boxes]
        if config.insert_noise and sum(1 for d in self.donors if len(d)) < 2:
            raise ValueError(
                "noisy-frame insertion takes frames from another sequence: it needs at least two sequences "
                "with a visible object (or switch insertion off)"
            )

    def _initial_frames(self, index: int) -> np.ndarray:
        pixels = self.boxes[index].pixels
        last = len(pixels) - self.config.frames - 1
        if last < 0:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(pixels[: last + 1] >= self.config.min_object_pixels)

    def set_epoch(self, epoch: int) -> None:
        """Draw the clips of another epoch (different perturbations, frames and insertions)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def plan(self, index: int) -> ClipPlan:
        """The random choices of item `index` in the current epoch (no pixels read)."""
        if not 0 <= index < self.length:
            raise IndexError(f"clip {index} out of range for {self.length} clips")
        rng = np.random.default_rng((self.seed, self.epoch, index))
        config = self.config
        if self.tracked is not None:
            clip = self.tracked[index]
            sequence, start = clip.sequence, clip.start
            base = boxes = np.asarray(clip.boxes, dtype=np.float32)
        else:
            sequence = self.usable[index % len(self.usable)]
            start = int(rng.choice(self.starts[sequence]))
            table = self.boxes[sequence]
            reference = lagged_reference(table.visible, start, config.frames, config.lag)
            base = _roi_boxes(table.boxes[reference])
            boxes = _perturb(rng, base, config)
        frames = np.arange(start, start + config.frames + 1)
        if not config.insert_noise:
            return ClipPlan(sequence, frames, boxes, base)
        inserted = int(rng.integers(1, config.frames + 1))
        others = [i for i, donors in enumerate(self.donors) if i != sequence and len(donors)]
        other = int(others[rng.integers(len(others))])
        frame = int(rng.choice(self.donors[other]))
        insert_box = _perturb(rng, _roi_boxes(self.boxes[other].boxes[frame][None]), config)[0]
        return ClipPlan(sequence, frames, boxes, base, inserted, other, frame, insert_box)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        plan = self.plan(index)
        images, masks = [], []
        for k, (frame, box) in enumerate(zip(plan.frames, plan.boxes)):
            if k == plan.inserted:
                image, _ = crop_roi(self.sequences[plan.insert_sequence], plan.insert_frame, plan.insert_box)
                mask = torch.zeros(1, roi.ROI_SIZE, roi.ROI_SIZE)
            else:
                image, mask = crop_roi(self.sequences[plan.sequence], int(frame), box)
            images.append(image)
            masks.append(mask)
        boxes = plan.boxes.copy()
        if plan.inserted != NO_INSERT:
            boxes[plan.inserted] = plan.insert_box
        return {
            "images": torch.stack(images),
            "masks": torch.stack(masks),
            "boxes": torch.from_numpy(boxes),
            "placement": torch.from_numpy(plan.boxes.copy()),
            "inserted": torch.tensor(plan.inserted),
            "sequence": torch.tensor(plan.sequence),
            "start": torch.tensor(int(plan.frames[0])),
        }


def crop_roi(sequence, index: int, box: np.ndarray) -> tuple[Tensor, Tensor]:
    """Frame `index` of `sequence` and its mask cropped at `box` (pixels) by `tracker.roi.crop`:
    uint8 `[3, 224, 224]` and float32 coverage `[1, 224, 224]`.

    Only the window the bilinear samples can touch (the box plus 2 px, within the frame) is
    converted to float, which keeps large frames cheap; the result equals cropping the
    whole frame.
    """
    frame = np.asarray(sequence.frame(index))
    mask = np.asarray(sequence.mask(index), dtype=bool)
    cropped = _crop_planes([frame, mask[..., None]], box)
    image = cropped[:3].round().clamp(0, 255).to(torch.uint8)
    return image, cropped[3:].clamp(0, 1)


def crop_mask(sequence, index: int, box: np.ndarray) -> Tensor:
    """The mask of frame `index` cropped as `crop_roi` crops it, without reading the frame:
    float32 coverage `[1, 224, 224]` (for clips whose features come from a store)."""
    mask = np.asarray(sequence.mask(index), dtype=bool)
    return _crop_planes([mask[..., None]], box).clamp(0, 1)


def _crop_planes(planes: list[np.ndarray], box: np.ndarray) -> Tensor:
    """HxWxC arrays (stacked along C) cropped at `box` through the window its samples touch."""
    height, width = planes[0].shape[:2]
    cx, cy, side = (float(v) for v in box)
    x0 = min(max(int(np.floor(cx - side / 2)) - 2, 0), width - 1)
    y0 = min(max(int(np.floor(cy - side / 2)) - 2, 0), height - 1)
    x1 = max(min(int(np.ceil(cx + side / 2)) + 2, width), x0 + 1)
    y1 = max(min(int(np.ceil(cy + side / 2)) + 2, height), y0 + 1)
    window = torch.cat([torch.from_numpy(np.ascontiguousarray(plane[y0:y1, x0:x1])).float() for plane in planes], dim=2)
    shifted = torch.tensor([[cx - x0, cy - y0, side]], dtype=torch.float32)
    return roi.crop(window.permute(2, 0, 1)[None], shifted)[0]
