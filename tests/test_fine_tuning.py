"""First-frame fine-tuning of the local model (`pixtrack-plus`): it learns the first frame,
leaves the tracker's model and frozen layers alone, is deterministic, and reaches every
option of the local model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracker import roi as geometry
from tracker.config import get_config
from tracker.fine_tuning import FROZEN_LOCAL_PREFIXES, FineTuning, fine_tune_local
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel
from tracker.training.losses import local_loss
from tracker.two_stage import TwoStageTracker, build_plus
from stand_ins import TinyBackbone

H, W = 160, 200


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright square on noise: something a head can learn in a few iterations."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 90, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=bool)
    mask[50:100, 70:130] = True
    frame[mask] = 220
    return frame, mask


def local_model(config: str = "lite") -> LocalModel:
    torch.manual_seed(0)
    return LocalModel(get_config(config).local, backbone=TinyBackbone())


def tensors(frame: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    mask_t = torch.from_numpy(mask)[None, None].float()
    roi = geometry.roi_from_object_box(geometry.box_from_mask(mask_t[:, 0]))
    return image, mask_t, roi


def first_step_loss(model: LocalModel, image, mask_t, roi) -> float:
    """Eq. 2 of one step on the first ROI from the memory of the first ROI."""
    roi_image, roi_mask = geometry.crop(image, roi), geometry.crop(mask_t, roi)
    with torch.no_grad():
        logits, _ = model.step_logits(roi_image, model.init_memory(roi_image, roi_mask))
    return local_loss(logits[:, None], roi_mask[:, None]).total.item()


def test_fine_tuning_learns_the_first_frame_and_leaves_the_model_and_frozen_layers_alone():
    model = local_model()
    offline = {name: value.clone() for name, value in model.state_dict().items()}
    image, mask_t, roi = tensors(*scene())
    tuned, losses = fine_tune_local(model, image, mask_t, roi, FineTuning(iterations=40, lr=1e-3, augmentations=3))

    assert losses.shape == (40,) and losses[-1] < 0.6 * losses[0]
    assert first_step_loss(tuned, image, mask_t, roi) < 0.6 * first_step_loss(model, image, mask_t, roi)
    for name, value in model.state_dict().items():
        assert torch.equal(value, offline[name]), f"fine-tuning changed the tracker's weight {name}"
    assert tuned.backbone is model.backbone  # shared, not copied
    tuned_state = tuned.state_dict()
    for name, value in offline.items():
        if name.startswith(FROZEN_LOCAL_PREFIXES):
            assert torch.equal(tuned_state[name], value), f"{name} is frozen but changed"
    changed = [name for name, value in offline.items() if not torch.equal(tuned_state[name], value)]
    assert any(n.startswith("fcnn.") for n in changed) and any(n.startswith("lstm.") for n in changed)
    assert any(n.startswith("decoder.") for n in changed)
    assert not any(p.requires_grad for p in tuned.parameters()) and not tuned.training


def test_clips_of_several_steps_train_the_memory_too():
    """steps > 1: perturbed clips through the ConvLSTM; the loss falls as with one step."""
    image, mask_t, roi = tensors(*scene())
    tuned, losses = fine_tune_local(local_model(), image, mask_t, roi,
                                    FineTuning(iterations=40, lr=1e-3, augmentations=2, steps=3))
    assert losses.shape == (40,) and losses[-1] < 0.6 * losses[0]
    with pytest.raises(ValueError, match="steps = 0"):
        FineTuning(steps=0)


def test_fine_tuning_is_deterministic_and_zero_iterations_change_nothing():
    image, mask_t, roi = tensors(*scene())
    tuning = FineTuning(iterations=3, augmentations=3, seed=4)
    first, losses_a = fine_tune_local(local_model(), image, mask_t, roi, tuning)
    second, losses_b = fine_tune_local(local_model(), image, mask_t, roi, tuning)
    assert torch.equal(losses_a, losses_b)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    model = local_model()
    untouched, losses = fine_tune_local(model, image, mask_t, roi, FineTuning(iterations=0))
    assert losses.numel() == 0
    for (name, a), b in zip(untouched.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("config", ["plus", "lite+match"])
@pytest.mark.parametrize("steps", [1, 3])
def test_fine_tuning_reaches_the_options_beyond_the_paper(config, steps):
    """The prior's conv and the matching conv start at zero; tuning must move them (their
    inputs, a deformed first mask and the first ROI's reference, are really fed)."""
    model = local_model(config)
    image, mask_t, roi = tensors(*scene())
    tuning = FineTuning(iterations=3, lr=1e-3, augmentations=3, steps=steps)
    tuned, losses = fine_tune_local(model, image, mask_t, roi, tuning)
    assert torch.isfinite(losses).all()
    option = "prior_fcnn" if config == "plus" else "match_fcnn"
    assert getattr(tuned, option).weight.abs().sum() > 0 and getattr(model, option).weight.abs().sum() == 0


def test_a_tuning_tracker_keeps_each_sequences_weights_in_its_state():
    """Sequence B tracked after A, and B tracked alone, give the same maps: nothing of A's
    fine-tuning is left in the tracker."""
    config = get_config("lite")
    torch.manual_seed(0)
    tracker = TwoStageTracker(LocalModel(config.local, backbone=TinyBackbone()), GlobalModel(config.global_),
                              device="cpu", tuning=FineTuning(iterations=3, lr=1e-3, augmentations=2))
    frame_a, mask_a = scene(1)
    frame_b, mask_b = scene(2)
    state_b = tracker.init(frame_b, mask_b)
    alone, _ = tracker.track(frame_b, state_b)
    tracker.init(frame_a, mask_a)
    after_a, _ = tracker.track(frame_b, tracker.init(frame_b, mask_b))
    np.testing.assert_array_equal(alone, after_a)
    assert state_b.tuned_local is not None and state_b.tuning_losses.shape == (3,)
    untuned = TwoStageTracker(tracker.local_model, tracker.global_model, device="cpu")
    plain, _ = untuned.track(frame_b, untuned.init(frame_b, mask_b))
    assert untuned.init(frame_b, mask_b).tuned_local is None
    assert not np.array_equal(plain, alone)  # the tuned copy, not the offline model, segmented


def test_pixtrack_plus_factory_tunes_by_default_and_zero_turns_it_off():
    tracker = build_plus(config="lite", backbone=TinyBackbone())
    assert tracker.tuning == FineTuning.plus()
    assert build_plus(config="lite", backbone=TinyBackbone(), tuning_iterations=0).tuning is None
    assert build_plus(config="lite", backbone=TinyBackbone(), tuning_iterations=7).tuning.iterations == 7


def test_the_settings_the_run_cache_keys_by_follow_the_fine_tuning():
    from evaluation.results_cache import settings_id
    from tracker.registry import build_tracker

    ids = {iterations: settings_id(build_plus(config="lite", backbone=TinyBackbone(),
                                              tuning_iterations=iterations).settings())
           for iterations in (None, 0, 7)}
    assert len(set(ids.values())) == 3  # default, none (pixtrack's), 7 iterations: three kinds of run
    # pixtrack-plus without fine-tuning is pixtrack: the same runs.
    assert ids[0] == settings_id(build_tracker("pixtrack", config="lite", backbone=TinyBackbone()).settings())
