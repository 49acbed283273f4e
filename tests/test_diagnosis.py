"""evaluation.diagnosis: 1 - IoU split into leak, miss inside the ROI and object outside the
ROI, checked by hand on small masks; the ROI read from the tracker's state; the command's
files on a generated dataset."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from evaluation.diagnosis import decompose, diagnose_sequence, main, roi_region
from evaluation.metrics import frame_iou
from tracker.data.sequence import InMemorySequence


def test_the_parts_are_counted_by_hand_and_add_up_to_one_minus_iou():
    truth = np.zeros((10, 20), dtype=bool)
    truth[2:6, 2:12] = True                      # 40 object pixels, columns 2..11
    prob = np.zeros((10, 20), dtype=np.float32)
    prob[2:6, 5:10] = 0.9                        # 20 hits
    prob[7:9, 5:10] = 0.5                        # 10 pixels beyond the object
    prob[0, 0] = 0.3                             # below the threshold
    roi = (7.0, 5.0, 10.0)                       # columns 2..11, rows 0..9: the whole object inside
    e = decompose(prob, truth, roi, threshold=0.4)
    union = 50                                   # 40 object + 10 beyond it
    assert e.iou == pytest.approx(20 / union) == pytest.approx(float(frame_iou(prob >= 0.4, truth)))
    assert (e.leak, e.miss, e.outside) == (pytest.approx(10 / union), pytest.approx(20 / union), 0.0)
    # The ROI 5 pixels to the right (columns 7..16), the map pasted into it: object columns
    # 2..6 lie outside (20 px); inside, columns 7..9 hit (12 px) and 7..11 are object (20 px);
    # 6 map pixels beyond the object remain; union 40 + 6.
    moved = decompose(prob * roi_region((12.0, 5.0, 10.0), truth.shape), truth, (12.0, 5.0, 10.0))
    assert moved.iou == pytest.approx(12 / 46)
    assert (moved.leak, moved.miss, moved.outside) == (pytest.approx(6 / 46), pytest.approx(8 / 46),
                                                       pytest.approx(20 / 46))


def test_placement_is_what_no_map_inside_the_roi_can_reach():
    truth = np.zeros((8, 8), dtype=bool)
    truth[:, :4] = True                          # left half
    roi = (8.0, 4.0, 8.0)                        # columns 4..11, rows 0..7: the right half
    prob = roi_region(roi, truth.shape).astype(np.float32)  # the whole ROI said to be object
    e = decompose(prob, truth, roi)
    assert e.iou == 0.0 and e.outside == pytest.approx(0.5) and e.leak == pytest.approx(0.5) and e.miss == 0.0
    # Centre error in ROI sides: the object box is centred at (2, 4), 6 px away; its ROI side
    # would be 2 x 8 = 16, clipped up to the 56-pixel minimum.
    assert e.centre_error == pytest.approx(6 / 8.0)
    assert e.scale_ratio == pytest.approx(8.0 / 56.0)


def test_empty_map_of_an_absent_object_is_perfect_and_has_no_roi_errors():
    e = decompose(np.zeros((5, 5)), np.zeros((5, 5), dtype=bool), (2.5, 2.5, 5.0))
    assert (e.iou, e.leak, e.miss, e.outside) == (1.0, 0.0, 0.0, 0.0)
    assert math.isnan(e.centre_error) and math.isnan(e.scale_ratio)


@dataclass
class _State:
    roi: torch.Tensor


class _FixedRoiTracker:
    """Says 'object' over a fixed ROI's pixels, and keeps that ROI in its state."""

    name = "fixed"

    def __init__(self, roi):
        self.roi = roi

    def init(self, frame, mask):
        return _State(torch.tensor([self.roi], dtype=torch.float64))

    def track(self, frame, state, roi=None):
        return roi_region(self.roi, frame.shape[:2]).astype(np.float32), state


def _sequence():
    frames = [np.zeros((32, 48, 3), dtype=np.uint8) for _ in range(6)]
    masks = []
    for t in range(6):
        mask = np.zeros((32, 48), dtype=bool)
        mask[10:20, 4 + 4 * t:14 + 4 * t] = True  # moves right 4 px a frame
        masks.append(mask)
    return InMemorySequence("moving", frames, masks)


def test_a_sequence_reads_the_roi_from_the_trackers_state_each_step():
    sequence = _sequence()
    roi = (9.0, 15.0, 10.0)                          # covers the object's first position only
    errors = diagnose_sequence(_FixedRoiTracker(roi), sequence, length=5)
    assert len(errors) == 5
    for step, e in enumerate(errors, start=1):
        expected = decompose(roi_region(roi, (32, 48)).astype(np.float32), sequence.mask(step), roi)
        assert e == expected
    outside = [e.outside for e in errors]
    assert outside == sorted(outside) and outside[0] > 0  # the object walks out of the fixed ROI


def test_the_command_writes_frames_summary_and_figures(tmp_path, capsys):
    from tracker.data import write_vot_list, write_vot_sequence
    from tracker.data.synth import generate_sequence

    data = tmp_path / "sequences"
    sequence = generate_sequence(7, 12, 96, 72, name="walk", speed=0.02)
    write_vot_sequence(data, sequence)
    write_vot_list(data, ["walk"])
    out = tmp_path / "diagnosis"
    assert main(["--dataset", str(data), "--trackers", "pixtrack-static", "--length", "8", "--out", str(out)]) == 0
    with (out / "frames.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 8 and {r["protocol"] for r in rows} == {"tracking", "gt-roi"}
    for row in rows:
        parts = float(row["leak"]) + float(row["miss"]) + float(row["outside"])
        assert parts == pytest.approx(1 - float(row["iou"]), abs=1e-4)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| pixtrack-static | tracking | all |" in summary
    for protocol in ("tracking", "gt-roi"):
        assert (out / f"pixtrack-static-{protocol}.png").stat().st_size > 0
    assert "summary.md" in capsys.readouterr().out
