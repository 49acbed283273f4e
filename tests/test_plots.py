"""evaluation.plots: every figure is written as PNG and PDF, is not blank, and says what
it should (AUC in the legend, a tracker's colour the same everywhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.metrics import PixelROC
from evaluation.plots import (
    framewise_iou_figure,
    overlay,
    plot_framewise_iou,
    plot_memory_cells,
    plot_overlays,
    plot_roc,
    plot_sequence_iou,
    roc_figure,
    top_channels,
    tracker_color,
)


DPI = 80  # the default 300 costs seconds a figure on a busy CPU; the drawing is the same


def _assert_written(paths):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    png, pdf = paths
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000
    image = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
    assert min(image.shape[:2]) > 150  # publication size at the tests' 80 dpi
    # Not blank: many distinct colours and real contrast.
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20
    return image


def _rocs():
    rng = np.random.default_rng(0)
    labels = rng.random(20000) < 0.3
    good, poor = PixelROC(1001), PixelROC(1001)
    good.update(torch.from_numpy(np.clip(0.3 + 0.4 * labels + 0.2 * rng.standard_normal(20000), 0, 1)), torch.from_numpy(labels))
    poor.update(torch.from_numpy(rng.random(20000)), torch.from_numpy(labels))
    return {"two-stage": good, "fcn": poor}


def test_roc_plot_has_the_auc_in_the_legend(tmp_path):
    rocs = _rocs()
    figure = roc_figure(rocs)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == [f"two-stage (AUC = {rocs['two-stage'].auc():.3f})", f"fcn (AUC = {rocs['fcn'].auc():.3f})"]
    assert rocs["two-stage"].auc() > 0.9 and abs(rocs["fcn"].auc() - 0.5) < 0.05
    # (fpr, tpr) pairs are accepted as well: a diagonal has AUC 0.5.
    figure = roc_figure({"chance": (np.array([0.0, 1.0]), np.array([0.0, 1.0]))})
    assert figure.axes[0].get_legend().get_texts()[0].get_text() == "chance (AUC = 0.500)"
    _assert_written(plot_roc(rocs, tmp_path / "roc", dpi=DPI))


def test_tracker_colours_are_consistent():
    figure = framewise_iou_figure({"fcn": np.linspace(1, 0.2, 32), "two-stage": np.linspace(1, 0.5, 32)})
    colours = {line.get_label(): line.get_color() for line in figure.axes[0].get_lines()}
    assert colours == {"fcn": tracker_color("fcn"), "two-stage": tracker_color("two-stage")}
    assert tracker_color("pixtrack") == tracker_color("two-stage") and tracker_color("pixtrack-fcn") == tracker_color("fcn")
    assert len({tracker_color(name) for name in ("two-stage", "1stage", "fcn", "static")}) == 4
    assert tracker_color("some-new-tracker") == tracker_color("some-new-tracker")


def test_iou_curves_are_written(tmp_path):
    curves = {"two-stage": np.linspace(0.9, 0.5, 32), "1stage": np.linspace(0.9, 0.3, 32)}
    _assert_written(plot_framewise_iou(curves, tmp_path / "framewise.png", threshold=0.4, dpi=DPI))
    per_sequence = {f"seq{i}": {name: values[: 20 + i] for name, values in curves.items()} for i in range(5)}
    _assert_written(plot_sequence_iou(per_sequence, tmp_path / "sequences", dpi=DPI))
    with pytest.raises(ValueError, match="1-D"):
        framewise_iou_figure({"x": np.zeros((2, 3))})


def test_overlay_blends_only_where_the_mask_is():
    frame = np.full((4, 5, 3), 100, dtype=np.uint8)
    mask = np.zeros((4, 5), dtype=bool)
    mask[1, 2] = True
    blended = overlay(frame, mask, color="#ff0000", alpha=0.5)
    assert blended[1, 2].tolist() == [178, 50, 50]
    assert (blended[~mask] == 100).all()
    with pytest.raises(ValueError, match="does not fit"):
        overlay(frame, np.zeros((3, 3)))


def test_overlay_grid_is_written(tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(6)]
    masks = [np.zeros((60, 80), dtype=bool) for _ in range(6)]
    for index, mask in enumerate(masks):
        mask[10 + index : 40 + index, 20:50] = True
    image = _assert_written(plot_overlays(frames, masks, tmp_path / "fig7", titles=[f"seq {i}" for i in range(6)],
                                          columns=3, ground_truth=masks, dpi=DPI))
    assert (image[..., 0] - image[..., 1] > 60).mean() > 0.01  # red overlays are visible


def test_memory_cells_show_the_strongest_channels(tmp_path):
    rng = np.random.default_rng(2)
    cells = rng.normal(0, 0.1, (6, 32, 7, 7)).astype(np.float32)
    strong = [3, 17, 30]
    cells[:, strong] *= 20
    assert set(top_channels(cells, 3)) == set(strong)
    assert top_channels(cells, 64).size == 32
    layers = {"ConvLSTM 1": cells, "ConvLSTM 2": rng.normal(0, 1, (6, 20, 7, 7))}
    frames = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(6)]
    _assert_written(plot_memory_cells(layers, tmp_path / "memory", frames=frames, steps=[0, 2, 5], dpi=DPI))
    with pytest.raises(ValueError, match="same T"):
        plot_memory_cells({"a": cells, "b": cells[:3]}, tmp_path / "bad")
    with pytest.raises(ValueError, match=r"\[T, C, h, w\]"):
        top_channels(cells[0])
