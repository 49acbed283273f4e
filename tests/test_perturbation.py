"""The perturbation check: the noise is what it says (one grey level, one fp32 ulp), a tracker
insensitive to it moves by 0, a knife-edge tracker by what a hand computation says, and
`pixtrack perturb` reports it per sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evaluation.perturbation import ULP, perturb_frame, perturbation_check, summary_markdown, ulp_noise
from tests.test_trackable import H, W, square_sequence
from tracker.cli import main
from tracker.data import InMemorySequence, write_vot_list, write_vot_sequence


def test_lsb_noise_moves_exactly_the_asked_values_by_one_level():
    frame = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    frame[0, 0] = (0, 255, 0)
    moved = perturb_frame(frame, 40, np.random.default_rng(1))
    difference = moved.astype(int) - frame.astype(int)
    assert np.count_nonzero(difference) == 40 and set(np.unique(difference)) <= {-1, 0, 1}
    assert moved.dtype == np.uint8 and np.array_equal(perturb_frame(frame, 40, np.random.default_rng(1)), moved)
    edge = perturb_frame(np.full((2, 2, 3), 255, np.uint8), 12, np.random.default_rng(2))
    assert (edge == 254).all()  # at the end of the range the value moves inwards


class RecordingConv(nn.Conv2d):
    """Keeps every input it computes on (after the pre-hooks)."""

    seen: list[torch.Tensor]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return super().forward(x)


class HoldsAModel:
    def __init__(self) -> None:
        self.model = nn.Sequential(RecordingConv(3, 2, 1), nn.Conv2d(2, 2, 1))
        self.model[0].seen = []


def test_ulp_noise_changes_the_image_convolutions_input_by_one_ulp_and_is_removed():
    tracker = HoldsAModel()
    x = torch.rand(1, 3, 8, 8) + 0.5
    with ulp_noise(tracker, seed=0) as hooked:
        assert hooked == 1  # the convolution on the image only
        tracker.model(x)
    tracker.model(x)
    noisy, plain = tracker.model[0].seen
    up, down = torch.nextafter(x, torch.tensor(2.0)), torch.nextafter(x, torch.tensor(0.0))
    assert torch.equal(plain, x)
    assert bool(((noisy == up) | (noisy == down)).all()) and 0.3 < float((noisy == up).float().mean()) < 0.7
    assert float(((noisy - x) / x).abs().max()) <= ULP


class KnifeEdge:
    """Answers the first mask where the frame's grey-level sum is even, nothing where odd:
    a tracker that a single grey level flips."""

    name = "knife-edge"

    def init(self, frame, mask):
        return mask

    def track(self, frame, state, roi=None):
        keep = int(frame.astype(np.int64).sum()) % 2 == 0
        return (state if keep else np.zeros_like(state)).astype(np.float32), state


def still_sequence(name: str, frames: int) -> InMemorySequence:
    """The square does not move: the first mask is right on every frame."""
    rng = np.random.default_rng(len(name))
    mask = np.zeros((H, W), bool)
    mask[5:15, 5:15] = True
    return InMemorySequence(name, [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(frames)],
                            [mask] * frames)


def test_a_knife_edge_tracker_moves_as_computed_by_hand():
    sequence = still_sequence("still", 9)
    even = np.array([int(sequence.frame(i).astype(np.int64).sum()) % 2 == 0 for i in range(1, 9)], float)
    # One grey level on one value flips every frame's parity: every IoU goes 1 <-> 0.
    (report,) = perturbation_check(KnifeEdge, [sequence], trials=2, pixels=1)
    assert report.base.mean == pytest.approx(even.mean())
    assert [run.mean for run in report.perturbed] == pytest.approx([1 - even.mean()] * 2)
    assert report.largest_shift == pytest.approx(abs(1 - 2 * even.mean()))
    assert report.first_divergence == 1


def test_a_tracker_blind_to_the_noise_does_not_move():
    from tracker.registry import build_tracker

    reports = perturbation_check(lambda: build_tracker("static", device="cpu"), [square_sequence("a", 5)], trials=2)
    assert reports[0].largest_shift == 0.0 and reports[0].first_divergence is None
    assert "| **mean** |" in summary_markdown(reports, "static")


def test_pixtrack_perturb_reports_every_sequence(tmp_path, capsys):
    root = tmp_path / "sequences"
    for sequence in (square_sequence("one", 4), square_sequence("two", 5)):
        write_vot_sequence(root, sequence)
    write_vot_list(root, ["one", "two"])
    out = tmp_path / "out"
    assert main(["perturb", "--tracker", "static", "--dataset", str(root), "--trials", "2", "--device", "cpu",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # static repeats the first mask: IoU (8 - k) / (8 + k) on frame k, whatever the noise.
    one = np.mean([(8 - k) / (8 + k) for k in (1, 2, 3)])
    assert f"| one | {one:.4f} | {one:.4f} | {one:.4f} | 0.0000 | – | 0 |" in printed
    assert "| two |" in printed and (out / "perturbation.csv").read_text().count("\n") == 1 + 2 * 3
    assert main(["perturb", "--tracker", "static", "--dataset", str(root), "--noise", "ulp", "--device", "cpu",
                 "--out", str(out)]) == 2
    assert "no convolution on the image" in capsys.readouterr().err


class BufferConv(nn.Module):
    """A convolution keeping its kernel as a buffer, as the frozen backbone does."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.ones(2, 3, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, padding=1)


class Segmenter:
    def __init__(self) -> None:
        self.backbone = nn.Sequential(BufferConv(), nn.Conv2d(2, 2, 3))


class HoldsAHelper:
    def __init__(self) -> None:
        self.segmenter = Segmenter()


def test_ulp_noise_finds_the_backbone_behind_a_helper_object():
    with ulp_noise(HoldsAHelper(), seed=0) as hooked:
        assert hooked == 1
