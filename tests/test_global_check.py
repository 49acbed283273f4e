"""The global model's placement check: a model that ignores its input is caught, one that
follows it passes, and the distances are those computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from tracker.config import get_config
from tracker.global_model import GlobalModel
from tracker.training.global_check import FOLLOWS_INPUT_RATIO, PlacementCheck, check_placement
from tracker.training.global_samples import GlobalClipDataset, MapSequence

S = 224


def _moving_square_maps(frames: int, start: int, step: int, name: str) -> MapSequence:
    """A 40-pixel square moving `step` pixels a frame to the right and down."""
    maps = np.zeros((frames, S, S), dtype=np.uint8)
    for t in range(frames):
        x = y = start + step * t
        maps[t, y:y + 40, x:x + 40] = 255
    return MapSequence(name, 1.0, maps, np.ones(frames, dtype=bool))


def _dataset() -> GlobalClipDataset:
    sequences = [_moving_square_maps(24, 10, 7, "down-right"), _moving_square_maps(24, 20, 5, "slower")]
    return GlobalClipDataset(sequences, frames=12, seed=0, clips_per_sequence=2)


class CentroidFollower(nn.Module):
    """A global model that puts its box on the centre of the map it is fed (one frame late)."""

    def initial_state(self, batch: int, device=None):
        return ()

    def step(self, prev_map, aspect, state):
        ys, xs = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
        mass = prev_map[:, 0].sum(dim=(1, 2))
        cx = ((prev_map[:, 0] * (xs + 0.5)).sum(dim=(1, 2)) / mass) * (2.0 / S) - 1.0
        cy = ((prev_map[:, 0] * (ys + 0.5)).sum(dim=(1, 2)) / mass) * (2.0 / S) - 1.0
        return torch.stack((cx, cy, torch.full_like(cx, 0.2)), dim=1), state


def test_a_fresh_global_model_does_not_follow_its_input() -> None:
    torch.manual_seed(0)
    model = GlobalModel(get_config("lite").global_)  # starts as one centred box, by design
    result = check_placement(model, _dataset(), warmup=2, first_frame=3)
    assert result.ratio > FOLLOWS_INPUT_RATIO and not result.follows_input
    assert "does NOT follow its input" in result.describe()
    assert model.training  # the check leaves the mode as it found it


def test_a_model_that_tracks_the_map_follows_its_input() -> None:
    result = check_placement(CentroidFollower(), _dataset(), warmup=2, first_frame=3)
    # One frame late: off by exactly one step, (7, 7) px in one sequence and (5, 5) in the
    # other, two clips each; a fixed centre is off by the spread of a square crossing 50-80 px.
    assert result.model_error == pytest.approx((np.hypot(7, 7) + np.hypot(5, 5)) / 2 / S, rel=1e-5)
    assert result.ratio < 0.4 and result.follows_input


def test_errors_by_hand_and_the_json_record(tmp_path) -> None:
    # One clip, a square that does not move: any model placing the box on it scores 0, and
    # the mean centre is the square's own, so the fixed error is 0 too.
    still = MapSequence("still", 2.0, np.repeat(_moving_square_maps(1, 100, 0, "x").maps, 8, axis=0),
                        np.ones(8, dtype=bool))
    result = check_placement(CentroidFollower(), GlobalClipDataset([still], frames=4), warmup=1, first_frame=2)
    assert result.model_error == pytest.approx(0.0, abs=1e-6) and result.fixed_error == pytest.approx(0.0, abs=1e-6)
    assert result.frames == 3  # frames 2..4 of one clip
    # The verdict and its JSON record follow from the two errors.
    check = PlacementCheck(model_error=0.1, fixed_error=0.4, frames=10)
    assert check.ratio == pytest.approx(0.25) and check.follows_input
    record = json.loads(check.write(tmp_path / "p.json").read_text())
    assert record["follows_input"] is True and record["ratio"] == pytest.approx(0.25)


def test_no_visible_object_is_a_clear_error() -> None:
    empty = MapSequence("empty", 1.0, np.zeros((8, S, S), dtype=np.uint8), np.r_[True, np.zeros(7, dtype=bool)])
    with pytest.raises(ValueError, match="no frame with a visible object"):
        check_placement(CentroidFollower(), GlobalClipDataset([empty], frames=4), warmup=1, first_frame=2)
