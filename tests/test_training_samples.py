"""Local-model clips (Sec. 3.3): ROI placement and perturbation bounds, noisy-frame
insertion, determinism across workers, and the errors a bad training set gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tracker import roi
from tracker.training.samples import (
    NO_INSERT,
    ClipConfig,
    LocalClipDataset,
    TrackedClip,
    crop_roi,
    lagged_reference,
)


class MovingSquare:
    """A textured frame with a white square object moving right by `speed` px a frame."""

    def __init__(self, name, frames=30, size=(240, 320), side=40, speed=3, origin=(60, 100), empty=(), seed=0):
        self.name, self.frames, self.frame_size = name, frames, size
        self.side, self.speed, self.origin, self.empty = side, speed, origin, set(empty)
        self.texture = np.random.default_rng(seed).integers(0, 200, size=(*size, 3), dtype=np.uint8)

    def __len__(self):
        return self.frames

    def centre(self, i):
        return self.origin[0] + self.speed * i + self.side / 2, self.origin[1] + self.side / 2

    def frame(self, i):
        frame = self.texture.copy()
        x, y = self.origin[0] + self.speed * i, self.origin[1]
        frame[y : y + self.side, x : x + self.side] = 255
        return frame

    def mask(self, i):
        mask = np.zeros(self.frame_size, bool)
        if i not in self.empty:
            x, y = self.origin[0] + self.speed * i, self.origin[1]
            mask[y : y + self.side, x : x + self.side] = True
        return mask


def _centroid(mask: torch.Tensor) -> tuple[float, float]:
    """Coverage-weighted centre of a [1, S, S] map, in ROI pixel coordinates."""
    weights = mask[0].double()
    ys, xs = torch.meshgrid(torch.arange(weights.shape[0]) + 0.5, torch.arange(weights.shape[1]) + 0.5, indexing="ij")
    total = weights.sum()
    return float((weights * xs).sum() / total), float((weights * ys).sum() / total)


def test_objects_sit_where_the_lagged_mask_puts_them_within_the_perturbation():
    # Object side 40 -> ROI side 80 before perturbation. Clip frame k is
    # cropped around the object at k - 5, so in the ROI the object sits right of centre by
    # speed * min(k, 5) frame pixels, scaled by 224 / side, give or take the <= 10 ROI px
    # shift. (Speeds keep the whole object inside even the smallest, most shifted ROI.)
    sequences = [MovingSquare("a", speed=2, seed=1), MovingSquare("b", speed=1, seed=2)]
    config = ClipConfig(frames=8, insert_noise=False)
    data = LocalClipDataset(sequences, config, seed=3, clips_per_sequence=3)
    for index in range(len(data)):
        plan, clip = data.plan(index), data[index]
        sequence = sequences[plan.sequence]
        assert clip["inserted"].item() == NO_INSERT
        for k in range(config.frames + 1):
            cx, cy, side = clip["boxes"][k].tolist()
            assert 80 * 0.9 - 1e-3 <= side <= 80 * 1.1 + 1e-3
            scale = roi.ROI_SIZE / side
            # Place: the object's centre in the ROI image, by hand and as cropped.
            object_x, object_y = sequence.centre(plan.frames[k])
            lag_x = sequence.speed * min(k, config.lag) * scale
            expected_x = roi.ROI_SIZE / 2 + lag_x
            found_x, found_y = _centroid(clip["masks"][k])
            assert abs(found_x - ((object_x - cx) * scale + roi.ROI_SIZE / 2)) < 0.5
            assert abs(found_y - ((object_y - cy) * scale + roi.ROI_SIZE / 2)) < 0.5
            assert abs(found_x - expected_x) <= config.max_shift + 0.5
            assert abs(found_y - roi.ROI_SIZE / 2) <= config.max_shift + 0.5
            # Scale: the 40 px object covers (40 * 224 / side)^2 ROI pixels.
            assert clip["masks"][k].sum().item() == pytest.approx((40 * scale) ** 2, rel=0.02)


def test_perturbation_spans_its_range():
    sequences = [MovingSquare("a", seed=1), MovingSquare("b", seed=2)]
    data = LocalClipDataset(sequences, ClipConfig(frames=8, insert_noise=False), seed=0, clips_per_sequence=20)
    ratios, shifts = [], []
    for index in range(len(data)):
        plan = data.plan(index)
        ratios.append(plan.boxes[:, 2] / plan.base_boxes[:, 2])
        shifts.append((plan.boxes[:, :2] - plan.base_boxes[:, :2]) * (roi.ROI_SIZE / plan.boxes[:, 2:]))
    ratios, shifts = np.concatenate(ratios), np.concatenate(shifts)
    assert 0.9 <= ratios.min() < 0.92 and 1.08 < ratios.max() <= 1.1
    assert -10 <= shifts.min() < -9 and 9 < shifts.max() <= 10


def test_roi_side_is_clipped_before_the_perturbation():
    tiny = MovingSquare("tiny", side=6, seed=1)  # box 6 -> doubled 12 -> clipped to 56
    data = LocalClipDataset([tiny], ClipConfig(frames=4, insert_noise=False, min_object_pixels=1), seed=0)
    sides = data.plan(0).boxes[:, 2]
    assert np.all(sides >= 56 * 0.9 - 1e-4) and np.all(sides <= 56 * 1.1 + 1e-4)


def test_exactly_one_all_zero_inserted_frame_from_another_sequence():
    sequences = [MovingSquare("a", seed=1), MovingSquare("b", speed=2, seed=2), MovingSquare("c", speed=1, seed=3)]
    config = ClipConfig(frames=6)
    data = LocalClipDataset(sequences, config, seed=5, clips_per_sequence=4)
    positions = set()
    for index in range(len(data)):
        plan, clip = data.plan(index), data[index]
        empty = [k for k in range(config.frames + 1) if clip["masks"][k].max() == 0]
        assert empty == [clip["inserted"].item()] == [plan.inserted]
        assert 1 <= plan.inserted <= config.frames  # never the initial frame
        assert plan.insert_sequence != plan.sequence
        positions.add(plan.inserted)
        donor_image, donor_mask = crop_roi(sequences[plan.insert_sequence], plan.insert_frame, plan.insert_box)
        assert torch.equal(clip["images"][plan.inserted], donor_image)
        assert donor_mask.max() > 0.5  # the intruder is an object ROI; its label says "not ours"
    assert len(positions) > 2


def test_insertion_off_leaves_every_frame_its_object():
    sequences = [MovingSquare("a", seed=1), MovingSquare("b", speed=2, seed=2)]
    data = LocalClipDataset(sequences, ClipConfig(frames=6, insert_noise=False), seed=5, clips_per_sequence=3)
    for index in range(len(data)):
        clip = data[index]
        assert clip["inserted"].item() == NO_INSERT
        assert (clip["masks"].amax(dim=(1, 2, 3)) > 0.5).all()


def test_same_seed_same_clips_across_workers_and_epochs_differ():
    sequences = [MovingSquare("a", seed=1), MovingSquare("b", speed=2, seed=2)]
    config = ClipConfig(frames=3)
    first = LocalClipDataset(sequences, config, seed=7, clips_per_sequence=2)
    second = LocalClipDataset(sequences, config, seed=7, clips_per_sequence=2)
    direct = [first[i] for i in range(len(first))]
    loaded = list(DataLoader(second, batch_size=1, num_workers=2))
    for a, b in zip(direct, loaded):
        for key in a:
            assert torch.equal(a[key], b[key][0]), key
    first.set_epoch(1)
    assert not torch.equal(first[0]["boxes"], direct[0]["boxes"])
    other_seed = LocalClipDataset(sequences, config, seed=8, clips_per_sequence=2)
    assert not torch.equal(other_seed[0]["boxes"], direct[0]["boxes"])


def test_lagged_reference_skips_back_over_empty_masks():
    visible = np.ones(20, bool)
    visible[[7, 8]] = False
    # start 2, lag 5: clip frame k uses frame 2 + max(0, k - 5); frames 7 and 8 are empty,
    # so k = 10 (frame 7) and k = 11 (frame 8) fall back to frame 6.
    reference = lagged_reference(visible, start=2, frames=12, lag=5)
    assert reference.tolist() == [2, 2, 2, 2, 2, 2, 3, 4, 5, 6, 6, 6, 9]


def test_tracked_clips_use_their_boxes_unperturbed():
    sequences = [MovingSquare("a", seed=1), MovingSquare("b", seed=2)]
    boxes = np.array([[80.0 + 3 * k, 120.0, 100.0] for k in range(5)], dtype=np.float32)
    data = LocalClipDataset(sequences, ClipConfig(frames=4), seed=0, tracked=[TrackedClip(1, 3, boxes)])
    plan, clip = data.plan(0), data[0]
    assert plan.sequence == 1 and plan.frames.tolist() == [3, 4, 5, 6, 7]
    kept = [k for k in range(5) if k != plan.inserted]
    assert torch.equal(clip["boxes"][kept], torch.from_numpy(boxes[kept]))


def test_window_crop_equals_whole_frame_crop():
    sequence = MovingSquare("a", seed=1)
    for box in ([100.0, 120.0, 80.0], [5.0, 230.0, 150.0], [-50.0, 10.0, 90.0], [330.0, 120.0, 60.5]):
        image, mask = crop_roi(sequence, 4, np.array(box, np.float32))
        frame = torch.from_numpy(sequence.frame(4)).permute(2, 0, 1).float()[None]
        whole = roi.crop(frame, torch.tensor([box]))[0]
        # Equal up to float32 rounding of the normalised coordinates (a uint8 may round the
        # other way at .5).
        assert (image.float() - whole).abs().max() <= 0.5 + 0.02
        whole_mask = roi.crop(torch.from_numpy(sequence.mask(4)).float()[None, None], torch.tensor([box]))[0]
        assert torch.allclose(mask, whole_mask, atol=1e-4)


def test_bad_training_sets_are_refused_clearly():
    with pytest.raises(ValueError, match="at least two sequences"):
        LocalClipDataset([MovingSquare("a")], ClipConfig(frames=4))
    LocalClipDataset([MovingSquare("a")], ClipConfig(frames=4, insert_noise=False))  # fine without insertion
    with pytest.raises(ValueError, match="no sequence has 41 frames"):
        LocalClipDataset([MovingSquare("a"), MovingSquare("b")], ClipConfig(frames=40))
    with pytest.raises(ValueError, match="scale_range"):
        ClipConfig(scale_range=(1.1, 0.9))
