"""The metrics' throughput benchmark (evaluation.throughput): what it times and writes."""

from __future__ import annotations

import json

import pytest
import torch

from evaluation import throughput
from evaluation.metrics import PixelROC, frame_iou


def test_synthetic_maps_are_probabilities_with_an_object_of_about_a_tenth():
    prob, gt = throughput.synthetic_maps(4, 60, 80, torch.device("cpu"))
    assert prob.shape == gt.shape == (4, 60, 80) and gt.dtype == torch.bool
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    assert 0.05 < gt.float().mean() < 0.15
    # Informative scores: thresholding them finds the object far better than chance.
    assert frame_iou(prob >= 0.5, gt).mean() > 0.5


def test_benchmarks_process_the_pixels_they_claim():
    roc = PixelROC()
    calls = throughput.benchmarks(3, 16, (40, 30), torch.device("cpu"), roc=roc)
    pixels = {name.split(",")[0]: count for name, (_, count) in calls.items()}
    assert pixels["PixelROC.update"] == 3 * 16 * 16
    assert pixels["frame_iou"] == pixels["boundary_f"] == 3 * 40 * 30
    roc_call = next(call for name, (call, _) in calls.items() if name.startswith("PixelROC"))
    # The ROC's histogram grows by exactly one clip's pixels a call.
    roc_call()
    roc_call()
    assert roc.positives + roc.negatives == 2 * 3 * 16 * 16


def test_main_writes_the_table_and_json(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert throughput.main(["--device", "cpu", "--frames", "2", "--roi", "16", "--frame-size", "40x30",
                            "--repeats", "2", "--warmup", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [row["pixels"] for row in report["results"]] == [2 * 16 * 16] + [2 * 40 * 30] * 3
    for row in report["results"]:
        assert row["pixels_per_second"] == pytest.approx(row["pixels"] / (row["median_ms"] / 1000.0))
    assert "| PixelROC.update, 2 x 16x16 |" in capsys.readouterr().out


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="frames, roi and frame size"):
        throughput.run(torch.device("cpu"), frames=0)
