"""The previous-map prior of `pixtrack-plus`: the model option, its training priors, the tracker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracker import roi as geometry
from tracker.checkpoint import save_checkpoint
from tracker.config import ConfigError, LocalConfig, ModelConfig, get_config
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel, align_state
from tracker.training.local_trainer import LocalUnroll
from tracker.training.prior_maps import PriorConfig, deformed_priors
from tracker.two_stage import TwoStageTracker
from stand_ins import TinyBackbone

NO_DEFORMATION = PriorConfig(shift=0, scale=0, rotation=0, warp=0, max_dilation=0, max_erosion=0,
                             drop_rate=0, own_rate=0)


def _mask(height: int, width: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    y0, y1, x0, x1 = box
    mask[..., y0:y1, x0:x1] = 1
    return mask


def _recording(module, method: str, position: int) -> list:
    """Wrap `module.method` so that each call keeps its positional argument `position`."""
    seen = []
    original = getattr(module, method)

    def wrapper(*args):
        seen.append(args[position])
        return original(*args)

    setattr(module, method, wrapper)
    return seen


def _models(config_name: str, seed: int = 0) -> tuple[LocalModel, GlobalModel]:
    config = get_config(config_name)
    torch.manual_seed(seed)
    return LocalModel(config.local, backbone=TinyBackbone()), GlobalModel(config.global_)


def test_paper_and_lite_have_no_prior_and_plus_has_it():
    assert get_config("paper").local.previous_map_prior == "none"
    assert get_config("lite").local.previous_map_prior == "none"
    plus = get_config("plus")
    assert plus.local.previous_map_prior == "pool4+decoder"
    assert dataclasses.replace(plus.local, previous_map_prior="none") == get_config("lite").local
    assert plus.global_ == get_config("lite").global_
    lite_names = set(LocalModel(get_config("lite").local, backbone=TinyBackbone()).state_dict())
    plus_names = set(LocalModel(plus.local, backbone=TinyBackbone()).state_dict())
    assert plus_names - lite_names == {"prior_fcnn.weight", "prior_fcnn.bias",
                                       "prior_decoder.weight", "prior_decoder.bias"}
    with pytest.raises(ConfigError, match="previous_map_prior"):
        LocalConfig(previous_map_prior="mask")


def test_untrained_prior_layers_add_nothing_and_trained_ones_read_the_prior():
    lite, _ = _models("lite")
    plus = LocalModel(get_config("plus").local, backbone=TinyBackbone())
    plus.load_state_dict(lite.state_dict(), strict=False)
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 224, 224, generator=generator) * 255
    mask = (torch.rand(1, 1, 224, 224, generator=generator) > 0.5).float()
    prior = torch.rand(1, 1, 224, 224, generator=generator)
    with torch.no_grad():
        reference, _ = lite.step(image, lite.init_memory(image, mask))
        same, _ = plus.step(image, plus.init_memory(image, mask), prior)
        torch.testing.assert_close(same, reference)
        torch.nn.init.normal_(plus.prior_fcnn.weight)
        torch.nn.init.normal_(plus.prior_decoder.weight)
        with_prior, _ = plus.step(image, plus.init_memory(image, mask), prior)
        without, _ = plus.step(image, plus.init_memory(image, mask), torch.zeros_like(prior))
    assert (with_prior - without).abs().max() > 1e-3


def test_a_prior_is_required_exactly_where_the_configuration_reads_one():
    lite, _ = _models("lite")
    plus = LocalModel(get_config("plus").local, backbone=TinyBackbone())
    image = torch.zeros(1, 3, 224, 224)
    mask = torch.ones(1, 1, 224, 224)
    with pytest.raises(ValueError, match="reads the previous map"):
        plus.step(image, plus.init_memory(image, mask))
    with pytest.raises(ValueError, match="no previous-map prior"):
        lite.step(image, lite.init_memory(image, mask), torch.zeros(1, 1, 224, 224))
    with pytest.raises(ValueError, match="prior must be"):
        plus.step(image, plus.init_memory(image, mask), torch.zeros(1, 1, 56, 56))


def test_moving_a_cropped_mask_into_another_roi_equals_cropping_it_there():
    full = _mask(240, 320, (60, 150, 100, 190))
    source = torch.tensor([[140.0, 110.0, 200.0]])
    target = torch.tensor([[160.0, 100.0, 160.0]])  # inside the source ROI: nothing falls outside
    moved = geometry.reframe(geometry.crop(full, source), source, target)
    direct = geometry.crop(full, target)
    # Two bilinear resamplings instead of one: equal away from the edge, softer on it.
    torch.testing.assert_close(moved, direct, atol=0.15, rtol=0)
    assert (moved - direct).abs().mean() < 2e-3
    assert ((moved >= 0.5) != (direct >= 0.5)).float().mean() < 2e-3
    # Outside the source ROI the moved map is empty, as a pasted map is outside its ROI.
    far = torch.tensor([[300.0, 110.0, 200.0]])
    assert geometry.reframe(geometry.crop(full, source), source, far)[..., :, 150:].abs().max() == 0


def test_deformed_priors_without_deformation_are_the_previous_masks_moved():
    masks = torch.stack([geometry.crop(_mask(120, 160, (20 + 5 * k, 70 + 5 * k, 30, 90)),
                                       torch.tensor([[60.0, 50.0 + 4 * k, 100.0]]))[0] for k in range(4)])[None]
    placement = torch.tensor([[[60.0, 50.0 + 4 * k, 100.0] for k in range(4)]])
    priors = deformed_priors(masks, placement, NO_DEFORMATION, torch.Generator().manual_seed(0))
    assert priors.shape == (1, 3, 1, 224, 224)
    for k in range(1, 4):
        torch.testing.assert_close(priors[0, k - 1:k], geometry.reframe(masks[0, k - 1:k], placement[0, k - 1:k],
                                                                 placement[0, k:k + 1]))


def test_deformed_priors_are_deterministic_for_a_seed_and_differ_across_seeds():
    masks = torch.zeros(2, 5, 1, 224, 224)
    masks[..., 60:160, 70:150] = 1
    placement = torch.tensor([[100.0, 100.0, 150.0]]).expand(2, 5, 3)
    first = deformed_priors(masks, placement, PriorConfig(), torch.Generator().manual_seed(3))
    again = deformed_priors(masks, placement, PriorConfig(), torch.Generator().manual_seed(3))
    other = deformed_priors(masks, placement, PriorConfig(), torch.Generator().manual_seed(4))
    torch.testing.assert_close(first, again)
    assert (first - other).abs().max() > 0.5
    assert 0 <= float(first.min()) and float(first.max()) <= 1
    # Deformed, yet still mostly on the object: shift <= 10% of the ROI, scale <= 8%.
    kept = (first * masks[:, :-1]).sum() / first.sum().clamp_min(1)
    assert kept > 0.6


def test_own_prediction_priors_are_the_previous_outputs_moved():
    """With every clip on its own predictions, frame k reads sigmoid(logits[k - 1]) moved into ROI k."""
    plus = LocalModel(get_config("plus").local, backbone=TinyBackbone())
    seen = _recording(plus, "step_from_features_logits", 2)
    generator = torch.Generator().manual_seed(0)
    plain = torch.randn(1, 4, 512, 14, 14, generator=generator)
    priors = torch.rand(1, 3, 1, 224, 224, generator=generator)
    placement = torch.tensor([[[100.0, 100.0, 150.0], [104.0, 98.0, 150.0], [108.0, 96.0, 160.0],
                               [112.0, 94.0, 160.0]]])
    with torch.no_grad():
        logits = LocalUnroll(plus)(plain, plain[:, 0], priors, placement, torch.tensor([True]))
    torch.testing.assert_close(seen[0], priors[:, 0])
    for k in (2, 3):
        expected = geometry.reframe(torch.sigmoid(logits[:, k - 2]), placement[:, k - 1], placement[:, k])
        torch.testing.assert_close(seen[k - 1], expected)


def test_the_tracker_feeds_the_previous_map_cropped_by_the_current_roi():
    local, global_ = _models("plus")
    tracker = TwoStageTracker(local, global_, device="cpu")
    priors = _recording(local, "step", 2)
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), dtype=bool)
    mask[40:80, 50:100] = True
    state = tracker.init(frame, mask)
    prob, state = tracker.track(frame, state)
    first_box = state.roi
    torch.testing.assert_close(priors[0], geometry.crop(torch.from_numpy(mask)[None, None].float(), first_box))
    _, state = tracker.track(frame, state)
    torch.testing.assert_close(priors[1], geometry.crop(torch.from_numpy(prob)[None, None], state.roi))
    assert tracker.uses_prior and state.previous_map is not None
    lite_tracker = TwoStageTracker(*_models("lite"), device="cpu")
    assert lite_tracker.init(frame, mask).previous_map is None


def test_a_plus_checkpoint_round_trips_with_its_option(tmp_path):
    local, global_ = _models("plus")
    with torch.no_grad():
        torch.nn.init.normal_(local.prior_fcnn.weight, std=0.1)
        torch.nn.init.normal_(local.prior_decoder.weight, std=0.1)
    path = tmp_path / "two-stage-plus.safetensors"
    save_checkpoint(path, "two-stage", get_config("plus"), {"local": local, "global": global_})
    loaded = TwoStageTracker.from_checkpoint(path, device="cpu", backbone=TinyBackbone())
    assert loaded.local_model.config == get_config("plus").local
    assert ModelConfig.from_dict(get_config("plus").to_dict()) == get_config("plus")
    frame = np.random.default_rng(1).integers(0, 256, (100, 140, 3), dtype=np.uint8)
    mask = np.zeros((100, 140), dtype=bool)
    mask[30:70, 40:90] = True
    reference = TwoStageTracker(local, global_, device="cpu")
    maps = []
    for tracker in (reference, loaded):
        state = tracker.init(frame, mask)
        prob, state = tracker.track(frame, state)
        prob, state = tracker.track(frame, state)
        maps.append(prob)
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)


def test_prior_config_refuses_bad_values():
    with pytest.raises(ValueError, match="own_rate"):
        PriorConfig(own_rate=1.5)
    with pytest.raises(ValueError, match="scale"):
        PriorConfig(scale=1.0)


def test_an_aligned_state_of_a_shifted_roi_is_the_shifted_state():
    """A ROI moved right by two cells and down by one: every cell of (h, c) moves with the image."""
    side = 14 * 10.0  # 10 px a pool4 cell
    source = torch.tensor([[100.0, 100.0, side]])
    target = torch.tensor([[120.0, 110.0, side]])
    h = torch.zeros(1, 3, 14, 14)
    h[0, :, 6, 7] = torch.tensor([1.0, -2.0, 0.5])
    h[0, 1, 9, 4] = 3.0
    c = -h
    ((h2, c2),) = align_state(((h, c),), source, target)
    expected = torch.zeros_like(h)
    expected[..., :13, :12] = h[..., 1:, 2:]  # cell (y, x) of the target ROI is cell (y + 1, x + 2) before
    torch.testing.assert_close(h2, expected)
    torch.testing.assert_close(c2, -expected)
    # The same ROI changes nothing.
    ((h3, _),) = align_state(((h, c),), source, source)
    torch.testing.assert_close(h3, h)


def test_the_tracker_and_training_align_the_state_where_the_configuration_says():
    config = dataclasses.replace(get_config("lite").local, align_state=True)
    assert config.beyond_paper == ["align_state"] and get_config("lite").local.beyond_paper == []
    torch.manual_seed(0)
    local = LocalModel(config, backbone=TinyBackbone())
    seen = _recording(local, "step_from_features_logits", 1)
    plain = torch.randn(1, 3, 512, 14, 14, generator=torch.Generator().manual_seed(0))
    placement = torch.tensor([[[100.0, 100.0, 150.0], [110.0, 96.0, 150.0], [118.0, 90.0, 170.0]]])
    with torch.no_grad():
        LocalUnroll(local)(plain, plain[:, 0], placement=placement)
        initial = local.init_memory_from_features(plain[:, 0], plain[:, 0])
    expected = align_state(initial, placement[:, 0], placement[:, 1])
    for (h, c), (h_ref, c_ref) in zip(seen[0], expected):
        torch.testing.assert_close(h, h_ref)
        torch.testing.assert_close(c, c_ref)
    tracker = TwoStageTracker(local, GlobalModel(get_config("lite").global_), device="cpu")
    assert tracker.align_state and not tracker.uses_prior
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), dtype=bool)
    mask[40:80, 50:100] = True
    state = tracker.init(frame, mask)
    calls = _recording(local, "step", 1)
    _, after = tracker.track(frame, state)
    for (h, _), (h_ref, _) in zip(calls[0], align_state(state.local, state.roi, after.roi)):
        torch.testing.assert_close(h, h_ref)


# --- first-frame matching (LocalConfig.first_frame_matching) ---------------------------------


def test_matching_the_first_frame_with_itself_is_high_on_the_object_and_low_off_it():
    config = get_config("lite+match")
    model = LocalModel(config.local, backbone=TinyBackbone())
    torch.manual_seed(0)
    side = config.local.feature_size
    # Object cells share one feature direction, background cells another (plus noise).
    plain = torch.randn(1, 512, side, side) * 0.1
    mask = torch.zeros(1, 1, 224, 224)
    mask[..., 64:160, 48:176] = 1.0
    cells = F.adaptive_avg_pool2d(mask, side)[0, 0] >= 0.5
    plain[0, :, cells] += torch.linspace(-1, 1, 512)[:, None]
    plain[0, :, ~cells] += torch.linspace(1, -1, 512).roll(100)[:, None]
    channels = model.matching(plain, model.reference(plain, mask))
    assert channels.shape == (1, 2, side, side)
    on_object, on_background = channels[0, 0], channels[0, 1]
    assert on_object[cells].min() > 0.9 and on_object[~cells].max() < 0.5
    assert on_background[~cells].min() > 0.9 and on_background[cells].max() < 0.5


def test_top_k_means_count_only_the_cells_asked_for():
    from tracker.local_model import _top_k_mean

    similarity = torch.tensor([[[0.9, 0.8, 0.1, -0.5]]])
    assert _top_k_mean(similarity, torch.tensor([[True, True, False, False]]), 3).item() == pytest.approx(0.85)
    assert _top_k_mean(similarity, torch.tensor([[False, False, True, True]]), 1).item() == pytest.approx(0.1)
    assert _top_k_mean(similarity, torch.tensor([[False, False, False, False]]), 2).item() == 0.0


def test_a_matching_model_computes_what_lite_does_until_trained_and_needs_its_reference():
    lite, match = get_config("lite"), get_config("lite+match")
    torch.manual_seed(1)
    plain_model = LocalModel(lite.local, backbone=TinyBackbone())
    matching_model = LocalModel(match.local, backbone=TinyBackbone())
    matching_model.load_state_dict(plain_model.state_dict(), strict=False)
    assert matching_model.match_fcnn.weight.abs().sum() == 0  # zero-initialised
    pool4 = torch.randn(2, 512, 14, 14)
    masks = torch.zeros(2, 1, 224, 224)
    masks[..., 80:150, 70:160] = 1
    state = plain_model.init_memory_from_features(pool4, pool4)
    expected, _ = plain_model.step_from_features(pool4, state)
    got, _ = matching_model.step_from_features(pool4, state, reference=matching_model.reference(pool4, masks))
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="pass reference"):
        matching_model.step_from_features(pool4, state)
    with pytest.raises(ValueError, match="does no first-frame matching"):
        plain_model.step_from_features(pool4, state, reference=matching_model.reference(pool4, masks))


def test_a_matching_model_trains_through_the_unroll_and_tracks_with_its_first_frame(tmp_path):
    from tracker.training.local_trainer import clip_geometry

    config = get_config("lite+match")
    torch.manual_seed(2)
    model = LocalModel(config.local, backbone=TinyBackbone())
    plain = torch.randn(2, 4, 512, 14, 14)
    masks = torch.zeros(2, 4, 1, 224, 224)
    masks[..., 60:170, 50:180] = 1
    extra = clip_geometry(model, {}, masks, PriorConfig(), torch.Generator().manual_seed(0))
    assert set(extra) == {"reference_mask"}  # no placement needed for matching alone
    logits = LocalUnroll(model)(plain, plain[:, 0], **extra)
    logits.mean().backward()
    assert model.match_fcnn.weight.grad.abs().sum() > 0  # the matching channels reach the loss
    path = save_checkpoint(tmp_path / "match.safetensors", "two-stage", config,
                           {"local": model, "global": GlobalModel(config.global_)})
    tracker = TwoStageTracker.from_checkpoint(path, device="cpu", backbone=TinyBackbone())
    frame = np.zeros((120, 160, 3), np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[40:70, 50:90] = True
    state = tracker.init(frame, mask)
    assert state.reference is not None and state.reference[0].shape == (1, 512, 196)
    prob, state = tracker.track(frame, state)
    assert prob.shape == (120, 160) and np.isfinite(prob).all() and state.reference is not None
