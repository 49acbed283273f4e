"""The 1-stage tracker: Eq. 5 by hand, the all-zero map, ROI placement, checkpoints, end to end.

Most tests replace the frozen VGG16 (about a second a frame on two CPU cores) by a cheap
stand-in with its interface, or the local model by a scripted one with its API, so the
tracker's own logic is checked exactly; the real (randomly initialised) VGG16 runs in the
end-to-end test, marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.centroid import CentroidState, OneStageTracker, build, centroid_roi
from tracker import roi as geometry
from tracker.checkpoint import CheckpointError, save_checkpoint
from tracker.config import get_config
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel
from stand_ins import TinyBackbone, count_host_transfers

H, W = 120, 160


class ScriptedLocal(nn.Module):
    """LocalModel's API; its ROI map is `roi_map` [224, 224] whatever the image."""

    def __init__(self, roi_map: torch.Tensor) -> None:
        super().__init__()
        self.roi_map = roi_map
        self.images: list[torch.Tensor] = []

    def init_memory(self, image, mask):
        self.first = (image.clone(), mask.clone())
        return ((torch.zeros(1, 1),),)

    def step(self, image, state):
        self.images.append(image.clone())
        return self.roi_map.to(image.device)[None, None].clone(), ((state[0][0] + 1,),)


def frame_and_mask(top: int = 40, left: int = 50, size: int = 30) -> tuple[np.ndarray, np.ndarray]:
    frame = np.full((H, W, 3), 40, np.uint8)
    mask = np.zeros((H, W), bool)
    mask[top : top + size, left : left + size] = True
    frame[mask] = (200, 60, 60)
    return frame, mask


def lite_local(backbone: nn.Module | None = None) -> LocalModel:
    torch.manual_seed(0)
    return LocalModel(get_config("lite").local, backbone=backbone if backbone is not None else TinyBackbone())


# --- Eq. 5 -----------------------------------------------------------------------------------


def test_eq5_weighted_centroid_of_hand_made_maps():
    # Pixel (row i, column j) has its centre at (j + 0.5, i + 0.5).
    first = torch.zeros(5, 7)
    first[1, 2], first[3, 5] = 1.0, 3.0  # x: (2.5 + 3 * 5.5) / 4, y: (1.5 + 3 * 3.5) / 4
    second = torch.zeros(5, 7)
    second[4, 0] = 0.25  # one pixel: its centre, whatever its weight
    third = torch.ones(5, 7)  # uniform: the frame's centre
    previous = torch.tensor([[1.0, 1.0, 10.0], [2.0, 2.0, 20.0], [3.0, 3.0, 30.0]])
    box = centroid_roi(torch.stack((first, second, third)), previous)
    expected = torch.tensor([[4.75, 3.0, 10.0], [0.5, 4.5, 20.0], [3.5, 2.5, 30.0]])
    assert torch.allclose(box, expected, atol=1e-6)
    # A given side replaces the previous one; the centre does not depend on it.
    assert torch.allclose(centroid_roi(first, previous[0], side=56.0), torch.tensor([4.75, 3.0, 56.0]))


def test_eq5_matches_the_formula_on_a_random_map():
    generator = torch.Generator().manual_seed(1)
    prob = torch.rand(2, 37, 53, generator=generator, dtype=torch.float64) ** 4
    ys, xs = np.mgrid[0:37, 0:53] + 0.5
    box = centroid_roi(prob, torch.zeros(2, 3, dtype=torch.float64))
    for k in range(2):
        p = prob[k].numpy()
        assert box[k, 0].item() == pytest.approx((p * xs).sum() / p.sum(), abs=1e-9)
        assert box[k, 1].item() == pytest.approx((p * ys).sum() / p.sum(), abs=1e-9)


def test_eq5_on_an_all_zero_map_keeps_the_previous_centre():
    """Eq. 5 divides by zero there: the ROI stays where it was (and nothing is NaN)."""
    maps = torch.zeros(2, 5, 7)
    maps[1, 2, 3] = 1.0
    previous = torch.tensor([[10.0, -4.0, 56.0], [0.0, 0.0, 56.0]])
    box = centroid_roi(maps, previous, side=100.0)
    assert torch.equal(box, torch.tensor([[10.0, -4.0, 100.0], [3.5, 2.5, 100.0]]))


def test_eq5_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="one box per map"):
        centroid_roi(torch.zeros(2, 5, 7), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W\]"):
        centroid_roi(torch.zeros(5), torch.zeros(3))


# --- the tracker's ROI ---------------------------------------------------------------------


def test_init_crops_the_doubled_object_box_and_aims_frame_one_at_the_mask_centroid():
    local = ScriptedLocal(torch.zeros(224, 224))
    tracker = OneStageTracker(local, device="cpu")
    frame, mask = frame_and_mask(top=40, left=50, size=30)
    mask[40, 79] = False  # the centroid moves off the bounding box's centre
    state = tracker.init(frame, mask)
    assert torch.allclose(state.roi, torch.tensor([[65.0, 55.0, 60.0]]))  # 30 px box doubled
    assert state.side.item() == 60.0
    expected = centroid_roi(torch.from_numpy(mask).float(), torch.zeros(3))
    assert torch.allclose(state.next_roi[0, :2], expected[:2]) and state.next_roi[0, 0].item() < 65.0
    image, roi_mask = local.first
    assert torch.allclose(image, geometry.crop(torch.from_numpy(frame).permute(2, 0, 1)[None].float(), state.roi))
    assert roi_mask.shape == (1, 1, 224, 224) and roi_mask.max().item() == 1.0


def test_the_roi_follows_the_centroid_of_the_previous_map_with_a_fixed_side():
    # The local model always sees the object in the right half of its ROI: the ROI must move
    # right by a quarter of its side each frame, keeping the first frame's side.
    right_half = torch.zeros(224, 224)
    right_half[:, 112:] = 1.0
    tracker = OneStageTracker(ScriptedLocal(right_half), device="cpu")
    frame, mask = frame_and_mask(top=40, left=20, size=30)
    state = tracker.init(frame, mask)
    centre = state.next_roi[0, 0].item()
    for _ in range(3):
        cropped_at = state.next_roi.clone()
        prob, state = tracker.track(frame, state)
        assert torch.equal(state.roi, cropped_at)
        assert state.next_roi[0, 0].item() == pytest.approx(centre + 15.0, abs=1e-3)
        assert state.next_roi[0, 1].item() == pytest.approx(55.0, abs=1e-3)
        assert state.next_roi[0, 2].item() == 60.0
        # Eq. 5 on the map the caller got.
        again = centroid_roi(torch.from_numpy(prob), state.roi[0], 60.0)
        assert torch.allclose(state.next_roi[0], again, atol=1e-3)
        centre += 15.0


def test_an_all_zero_map_leaves_the_roi_where_it_was():
    tracker = OneStageTracker(ScriptedLocal(torch.zeros(224, 224)), device="cpu")
    frame, mask = frame_and_mask()
    state = tracker.init(frame, mask)
    first = state.next_roi.clone()
    for _ in range(3):
        prob, state = tracker.track(frame, state)
        assert not prob.any()
        assert torch.equal(state.roi, first) and torch.equal(state.next_roi, first)


def test_a_given_roi_crops_and_pastes_there_and_the_side_stays_the_first_frames():
    ones = torch.ones(224, 224)
    tracker = OneStageTracker(ScriptedLocal(ones), device="cpu")
    frame, mask = frame_and_mask()
    state = tracker.init(frame, mask)
    prob, state = tracker.track(frame, state, roi=(100.0, 70.0, 40.0))
    assert torch.equal(state.roi, torch.tensor([[100.0, 70.0, 40.0]]))
    rows, cols = np.nonzero(prob)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (50, 89, 80, 119)
    assert torch.allclose(state.next_roi, torch.tensor([[100.0, 70.0, 60.0]]), atol=1e-3)
    with pytest.raises(ValueError, match="side > 0"):
        tracker.track(frame, state, roi=(10.0, 10.0, 0.0))


def test_track_reads_nothing_back_but_the_map(monkeypatch):
    """Per step one frame goes to the device and one map comes back: Eq. 5 and its zero-sum
    guard (torch.where, never a Python branch on a value) wait for nothing on a GPU."""
    tracker = OneStageTracker(lite_local(), device="cpu")
    frame, mask = frame_and_mask()
    state = tracker.init(frame, mask)
    calls = count_host_transfers(monkeypatch)
    for _ in range(2):
        _, state = tracker.track(frame, state)
    assert calls == {"from_numpy": 2, "cpu": 2, "numpy": 2}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_step_synchronises_once():
    """On CUDA, torch's sync debug mode flags every synchronising call: one a step (the map)."""
    import warnings

    tracker = OneStageTracker(lite_local(), device="cuda")
    frame, mask = frame_and_mask()
    state = tracker.init(frame, mask)
    assert state.next_roi.device.type == "cuda"
    _, state = tracker.track(frame, state)  # first-use allocations
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prob, state = tracker.track(frame, state)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]
    assert np.isfinite(prob).all()


def test_bad_input_is_refused():
    tracker = OneStageTracker(ScriptedLocal(torch.zeros(224, 224)), device="cpu")
    frame, mask = frame_and_mask()
    with pytest.raises(ValueError, match="empty"):
        tracker.init(frame, np.zeros_like(mask))
    state = tracker.init(frame, mask)
    with pytest.raises(ValueError, match="one tracker state follows one video"):
        tracker.track(np.zeros((H + 1, W, 3), np.uint8), state)
    with pytest.raises(TypeError, match="init"):
        tracker.track(frame, {"not": "a state"})


# --- weights ---------------------------------------------------------------------------------


def test_the_factory_never_builds_untrained_weights(tmp_path):
    from tracker.checkpoint import default_checkpoint

    if not default_checkpoint("two-stage", "lite").is_file():
        with pytest.raises(FileNotFoundError, match="--checkpoint"):
            build()
    with pytest.raises(FileNotFoundError, match="no two-stage checkpoint"):
        build(checkpoint=str(tmp_path / "missing.safetensors"))
    fcn_file = save_checkpoint(tmp_path / "fcn.safetensors", "fcn", {"name": "x"}, {"fcn": nn.Linear(2, 2)})
    with pytest.raises(CheckpointError, match="expected a 'two-stage' checkpoint"):
        build(checkpoint=str(fcn_file))


def test_loads_the_local_model_of_a_two_stage_checkpoint(tmp_path, monkeypatch):
    config = get_config("lite")
    torch.manual_seed(3)
    local = LocalModel(config.local, backbone=TinyBackbone())
    path = save_checkpoint(tmp_path / "two.safetensors", "two-stage", config,
                           {"local": local, "global": GlobalModel(config.global_)})
    # The checkpoint's backbone is "hed"; a stand-in keeps this test from reading VGG16 files.
    monkeypatch.setattr("tracker.local_model.VGG16Pool4", lambda weights: TinyBackbone())
    tracker = build(checkpoint=str(path), device="cpu")
    assert isinstance(tracker, OneStageTracker) and tracker.name == "1stage"
    loaded = tracker.local_model.state_dict()
    for name, value in local.state_dict().items():
        assert torch.equal(loaded[name], value), name


@pytest.mark.parametrize("config_name", ["plus", "lite+align"])
def test_a_local_model_beyond_the_paper_is_refused_at_build_not_at_its_first_frame(tmp_path, monkeypatch, config_name):
    config = get_config(config_name)
    path = save_checkpoint(tmp_path / "plus.safetensors", "two-stage", config,
                           {"local": LocalModel(config.local, backbone=TinyBackbone()),
                            "global": GlobalModel(config.global_)})
    monkeypatch.setattr("tracker.local_model.VGG16Pool4", lambda weights: TinyBackbone())
    option = "previous_map_prior" if config_name == "plus" else "align_state"
    with pytest.raises(ValueError, match=f"options beyond it \\({option}\\).*pixtrack-plus"):
        build(checkpoint=str(path), device="cpu")


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_on_a_synthetic_sequence_with_a_fresh_lite_model():
    from tracker.backbone import VGG16Pool4
    from tracker.data.synth import generate_sequence

    sequence = generate_sequence(7, 4, 128, 96, speed=0.03)
    tracker = OneStageTracker(lite_local(VGG16Pool4(None)), device="cpu")
    state = tracker.init(sequence.frame(0), sequence.mask(0))
    for index in range(1, len(sequence)):
        prob, state = tracker.track(sequence.frame(index), state)
        assert prob.shape == (96, 128) and prob.dtype == np.float32
        assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0
        assert prob.max() > 0.0  # the ROI's map, pasted
    assert isinstance(state, CentroidState) and state.frame_index == len(sequence) - 1
