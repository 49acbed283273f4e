"""The FCN baseline: first-frame fine-tuning (it learns, it never leaks), ROI by Eq. 5, checkpoints,
offline training, end to end.

The frozen VGG16 is replaced by a cheap stand-in with its interface except in the tests
marked slow, which run the real (randomly initialised) VGG16.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.centroid import centroid_roi
from baselines.fcn import (
    FCN,
    FCNConfig,
    FCNTracker,
    FineTuning,
    TunedHead,
    build,
    fcn_config,
    fine_tune,
    load_fcn,
    perturbed_rois,
    save_fcn,
)
from tracker import roi as geometry
from tracker.checkpoint import CheckpointError, read_metadata, save_checkpoint
from tracker.config import ConfigError, get_config
from tracker.training.losses import local_loss
from stand_ins import TinyBackbone

H, W = 120, 160


TINY = FCNConfig(conv_channels=(16, 16), deconv_channels=(8, 8, 4, 1), name="tiny")
"""A narrower head than `lite` for the tests of the tracker's logic (the head's cost is in its
224x224 decoder layers, seconds a fine-tuning on two busy CPU cores)."""


def lite_fcn(backbone: nn.Module | None = None, seed: int = 0, config: FCNConfig | None = None) -> FCN:
    torch.manual_seed(seed)
    return FCN(config or fcn_config("lite"), backbone=backbone if backbone is not None else TinyBackbone())


def tiny_fcn(seed: int = 0) -> FCN:
    return lite_fcn(seed=seed, config=TINY)


def moving_square(colour: tuple[int, int, int], step: int, frames: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    sequence = []
    for t in range(frames):
        frame = rng.integers(0, 80, (H, W, 3)).astype(np.uint8)
        mask = np.zeros((H, W), bool)
        mask[40:70, 40 + step * t : 70 + step * t] = True
        frame[mask] = colour
        sequence.append((frame, mask))
    return sequence


def run(tracker: FCNTracker, sequence) -> tuple[list[np.ndarray], TunedHead]:
    state = tracker.init(*sequence[0])
    maps = []
    for frame, _ in sequence[1:]:
        prob, state = tracker.track(frame, state)
        maps.append(prob)
    return maps, state.model


def head_state(model: FCN) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- configuration ---------------------------------------------------------------------------


def test_the_head_mirrors_the_local_model_without_recurrence():
    local = get_config("paper").local
    config = fcn_config("paper")
    assert config.conv_channels == (local.fcnn_channels, local.fcnn_channels, *local.lstm_channels)
    assert config.deconv_channels == local.deconv_channels == (128, 64, 32, 1)
    assert FCNConfig.from_dict(config.to_dict()) == config
    model = lite_fcn()
    assert not any(isinstance(m, (nn.LSTM, nn.RNNBase)) for m in model.modules())
    assert set(model.state_dict()) == {f"head.{k}" for k in model.head.state_dict()}  # no backbone saved
    with pytest.raises(ConfigError, match="unknown keys"):
        FCNConfig.from_dict({"name": "x", "fcn": {"colour": 1}})
    with pytest.raises(ConfigError, match="deconv_channels"):
        FCNConfig(deconv_channels=(8, 1))


# --- fine-tuning -----------------------------------------------------------------------------


def test_perturbed_rois_stay_within_the_sec_3_3_bounds():
    roi = torch.tensor([[80.0, 60.0, 112.0]])
    tuning = FineTuning(augmentations=64, seed=5)
    boxes = perturbed_rois(roi, tuning)
    assert boxes.shape == (64, 3) and torch.equal(boxes[0], roi[0])
    ratio = boxes[1:, 2] / 112.0
    assert ratio.min() >= 0.9 and ratio.max() <= 1.1 and ratio.std() > 0.03
    shift_in_roi_pixels = (boxes[1:, :2] - roi[:, :2]) * (224.0 / boxes[1:, 2:])
    assert shift_in_roi_pixels.abs().max() <= 10.0 + 1e-4 and shift_in_roi_pixels.abs().max() > 5.0
    assert torch.equal(perturbed_rois(roi, tuning), boxes)  # the seed fixes them


@pytest.mark.slow
def test_fine_tuning_lowers_the_first_frames_loss_and_leaves_the_model_alone():
    model = lite_fcn()
    offline = head_state(model)
    frame, mask = moving_square((220, 40, 40), 0)[0]
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    mask_t = torch.from_numpy(mask)[None, None].float()
    roi = geometry.roi_from_object_box(geometry.box_from_mask(mask_t[:, 0]))
    tuning = FineTuning(augmentations=2)  # lr 1e-4, 20 iterations: the defaults
    weights, losses = fine_tune(model, image, mask_t, roi, tuning)
    assert losses.shape == (20,) and losses[-1] < losses[0]

    # The loss on the first frame's own ROI, with and without the tuned weights.
    roi_image, roi_mask = geometry.crop(image, roi), geometry.crop(mask_t, roi)
    with torch.no_grad():
        before = local_loss(model(roi_image)[:, None], roi_mask[:, None]).total.item()
        after = local_loss(model(roi_image, weights)[:, None], roi_mask[:, None]).total.item()
    assert after < 0.99 * before, (before, after)
    for name, value in model.state_dict().items():
        assert torch.equal(value, offline[name]), f"fine-tuning changed the offline weight {name}"


def test_zero_iterations_keep_the_offline_weights():
    model = tiny_fcn()
    frame, mask = moving_square((220, 40, 40), 0)[0]
    tracker = FCNTracker(model, device="cpu", tuning=FineTuning(iterations=0, augmentations=1))
    state = tracker.init(frame, mask)
    assert state.model.losses.numel() == 0
    for name, value in model.head.named_parameters():
        assert torch.equal(state.model.weights[name], value)


def test_fine_tuning_never_leaks_from_one_sequence_to_the_next():
    """Tracking B after A gives exactly the maps of B alone; and A's tuning did change A's maps."""
    tuning = FineTuning(iterations=5, augmentations=2, lr=1e-3)
    a = moving_square((220, 40, 40), 3, seed=1)
    b = moving_square((40, 40, 220), -2, seed=2)
    model = tiny_fcn()
    offline = head_state(model)
    tracker = FCNTracker(model, device="cpu", tuning=tuning)
    maps_a, tuned_a = run(tracker, a)
    maps_b_after_a, tuned_b = run(tracker, b)
    maps_b_alone, _ = run(FCNTracker(tiny_fcn(), device="cpu", tuning=tuning), b)
    for after, alone in zip(maps_b_after_a, maps_b_alone):
        np.testing.assert_array_equal(after, alone)
    for name, value in model.state_dict().items():
        assert torch.equal(value, offline[name])
    # The test could fail: the two sequences' tuned heads differ, and differ from the offline one.
    name = "head.0.weight"
    assert not torch.equal(tuned_a.weights["0.weight"], tuned_b.weights["0.weight"])
    assert not torch.equal(tuned_a.weights["0.weight"], offline[name])


def test_the_roi_follows_eq5_on_the_fcns_own_maps_and_a_given_roi_is_used():
    tracker = FCNTracker(tiny_fcn(), device="cpu", tuning=FineTuning(iterations=2, augmentations=1))
    sequence = moving_square((220, 40, 40), 3)
    state = tracker.init(*sequence[0])
    assert torch.allclose(state.roi, torch.tensor([[55.0, 55.0, 60.0]]))
    first_side = state.side.item()
    for frame, _ in sequence[1:3]:
        cropped_at = state.next_roi.clone()
        prob, state = tracker.track(frame, state)
        assert torch.equal(state.roi, cropped_at)
        expected = centroid_roi(torch.from_numpy(prob), state.roi[0], first_side)
        assert torch.allclose(state.next_roi[0], expected, atol=1e-3)
    prob, state = tracker.track(sequence[3][0], state, roi=(100.0, 60.0, 40.0))
    assert torch.equal(state.roi, torch.tensor([[100.0, 60.0, 40.0]]))
    assert not prob[:, :80].any() and not prob[:, 120:].any()  # nothing outside the given ROI
    assert state.next_roi[0, 2].item() == first_side


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_fine_tunes_and_tracks_on_cuda_and_agrees_with_the_cpu():
    tuning = FineTuning(iterations=5, augmentations=2, lr=1e-3)
    sequence = moving_square((220, 40, 40), 3)
    maps_cpu, _ = run(FCNTracker(tiny_fcn(), device="cpu", tuning=tuning), sequence)
    maps_cuda, tuned = run(FCNTracker(tiny_fcn(), device="cuda", tuning=tuning), sequence)
    assert tuned.weights["0.weight"].device.type == "cuda"
    for cpu, cuda in zip(maps_cpu, maps_cuda):
        np.testing.assert_allclose(cuda, cpu, atol=2e-2)  # cuDNN convolutions may run in TF32


def test_bad_fine_tuning_settings_are_refused():
    with pytest.raises(ValueError, match="lr"):
        FineTuning(lr=0.0)
    with pytest.raises(ValueError, match="augmentations"):
        FineTuning(augmentations=0)
    with pytest.raises(ValueError, match="scale_range"):
        FineTuning(scale_range=(1.1, 1.2))
    with pytest.raises(ValueError, match="iterations"):
        FineTuning(iterations=-1)


# --- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_round_trip_and_refusals(tmp_path, monkeypatch):
    model = lite_fcn(seed=4)
    path = save_fcn(tmp_path / "fcn.safetensors", model, extra_metadata={"note": "test"})
    assert read_metadata(path)["kind"] == "fcn"
    loaded = load_fcn(path, backbone=TinyBackbone())
    assert loaded.config == model.config
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name

    # The factory: the file's configuration, a stand-in for its VGG16 (no weight files read here).
    monkeypatch.setattr("baselines.fcn.VGG16Pool4", lambda weights: TinyBackbone())
    tracker = build(checkpoint=str(path), device="cpu")
    assert isinstance(tracker, FCNTracker) and tracker.name == "fcn"
    assert torch.equal(tracker.model.state_dict()["head.0.weight"], model.state_dict()["head.0.weight"])

    with pytest.raises(FileNotFoundError, match="no fcn checkpoint"):
        build(checkpoint=str(tmp_path / "missing.safetensors"))
    two_stage = save_checkpoint(tmp_path / "two.safetensors", "two-stage", get_config("lite"),
                                {"local": nn.Linear(1, 1), "global": nn.Linear(1, 1)})
    with pytest.raises(CheckpointError, match="expected a 'fcn' checkpoint"):
        build(checkpoint=str(two_stage))
    from tracker.checkpoint import default_checkpoint

    if not default_checkpoint("fcn", "lite").is_file():
        with pytest.raises(FileNotFoundError, match="--checkpoint"):
            build()


# --- offline training ------------------------------------------------------------------------


@pytest.mark.slow
def test_offline_training_writes_a_checkpoint_that_fits_its_data_better(tmp_path):
    from tracker.data.sequence import InMemorySequence
    from tracker.training.loop import LoopConfig
    from tracker.training.samples import ClipConfig

    from baselines.fcn_training import FCNTrainingConfig, train_fcn_checkpoint

    sequences = [
        InMemorySequence(name, *zip(*[(f, m) for f, m in moving_square(colour, step, frames=5, seed=i)]))
        for i, (name, colour, step) in enumerate((("red", (220, 40, 40), 3), ("blue", (40, 40, 220), -2)))
    ]
    settings = FCNTrainingConfig(
        fcn=TINY, clip=ClipConfig(frames=2), clips_per_sequence=2,
        loop=LoopConfig(iterations=15, lr=3e-3, log_every=5, save_every=1000), batch_size=4,
    )
    path = train_fcn_checkpoint(sequences, tmp_path / "fcn.safetensors", settings, device="cpu",
                                work_dir=tmp_path / "work", backbone=TinyBackbone(), progress=False)
    meta = read_metadata(path)
    assert meta["kind"] == "fcn" and meta["trained_on"] == '["red", "blue"]'
    assert (tmp_path / "work" / "fcn_loss.csv").is_file()
    trained = load_fcn(path, backbone=TinyBackbone())
    fresh = tiny_fcn()  # the same seed as the training run's initialisation

    frame, mask = sequences[0].frame(2), sequences[0].mask(2)
    mask_t = torch.from_numpy(mask)[None, None].float()
    roi = geometry.roi_from_object_box(geometry.box_from_mask(mask_t[:, 0]))
    image = geometry.crop(torch.from_numpy(frame).permute(2, 0, 1)[None].float(), roi)
    target = geometry.crop(mask_t, roi)
    with torch.no_grad():
        losses = [local_loss(m(image)[:, None], target[:, None]).total.item() for m in (fresh, trained)]
    assert losses[1] < 0.9 * losses[0], losses


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_on_a_synthetic_sequence_with_a_fresh_lite_model():
    from tracker.backbone import VGG16Pool4
    from tracker.data.synth import generate_sequence

    sequence = generate_sequence(3, 4, 128, 96, speed=0.03)
    tracker = FCNTracker(lite_fcn(VGG16Pool4(None)), device="cpu", tuning=FineTuning(iterations=3, augmentations=2))
    state = tracker.init(sequence.frame(0), sequence.mask(0))
    assert torch.isfinite(state.model.losses).all()
    for index in range(1, len(sequence)):
        prob, state = tracker.track(sequence.frame(index), state)
        assert prob.shape == (96, 128) and prob.dtype == np.float32
        assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0
        assert prob.max() > 0.0
