"""The pool3 decoder skip (`LocalConfig.pool3_skip`, issue 17): pool3 folded into the
features, a zero-initialised conv into the decoder, and everything that carries features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracker.backbone import VGG16Pool4
from tracker.checkpoint import save_checkpoint
from tracker.config import get_config
from tracker.global_model import GlobalModel
from tracker.local_model import POOL4_CHANNELS, LocalModel, feature_channels
from tracker.training.local_trainer import LocalUnroll
from tracker.two_stage import TwoStageTracker
from stand_ins import TinyBackbone


def _pair(seed: int = 0) -> tuple[LocalModel, LocalModel]:
    """A lite model and a lite+pool3 model holding the same Table 1 weights."""
    torch.manual_seed(seed)
    lite = LocalModel(get_config("lite").local, backbone=TinyBackbone())
    skip = LocalModel(get_config("lite+pool3").local, backbone=TinyBackbone())
    missing, unexpected = skip.load_state_dict(lite.state_dict(), strict=False)
    assert sorted(missing) == ["pool3_decoder.bias", "pool3_decoder.weight"] and not unexpected
    return lite, skip


def test_only_the_pool3_configurations_have_the_skip():
    lite, skip = get_config("lite").local, get_config("lite+pool3").local
    assert not get_config("paper").local.pool3_skip and not lite.pool3_skip
    assert dataclasses.replace(skip, pool3_skip=False) == lite
    assert skip.beyond_paper == ["pool3_skip"]
    assert get_config("lite+all").local.beyond_paper == ["previous_map_prior", "align_state",
                                                         "first_frame_matching", "pool3_skip"]
    assert feature_channels(lite) == POOL4_CHANNELS and feature_channels(skip) == POOL4_CHANNELS + 4 * 256


def test_the_features_carry_pool3_folded_and_unfold_to_the_backbones_pool3():
    backbone = VGG16Pool4(None)
    model = LocalModel(get_config("lite+pool3").local, backbone=backbone)
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    pool3, pool4 = backbone.pool3_and_pool4(images)
    assert pool3.shape == (2, 256, 28, 28)
    torch.testing.assert_close(pool4, backbone(images), rtol=0, atol=0)
    features = model.features(images)
    assert features.shape == (2, 512 + 1024, 14, 14)
    torch.testing.assert_close(features[:, :512], pool4, rtol=0, atol=0)
    torch.testing.assert_close(F.pixel_shuffle(features[:, 512:], 2), pool3, rtol=0, atol=0)


def test_an_untrained_skip_adds_nothing_and_a_trained_one_reads_pool3():
    lite, skip = _pair()
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 224, 224, generator=generator) * 255
    mask = (torch.rand(1, 1, 224, 224, generator=generator) > 0.5).float()
    with torch.no_grad():
        expected, _ = lite.step(image, lite.init_memory(image, mask))
        same, _ = skip.step(image, skip.init_memory(image, mask))
        torch.testing.assert_close(same, expected)
        features = skip.features(image)
        state = skip.init_memory(image, mask)
        other = features.clone()
        other[:, 512:] = torch.rand(other[:, 512:].shape, generator=generator)  # pool3 only
        unchanged, _ = skip.step_from_features(other, state)
        torch.testing.assert_close(unchanged, same)
        torch.nn.init.normal_(skip.pool3_decoder.weight, std=0.1)
        base, _ = skip.step_from_features(features, state)
        moved, _ = skip.step_from_features(other, state)
    assert (moved - base).abs().max() > 1e-3


def test_a_skip_model_refuses_pool4_alone_and_trains_its_skip_through_the_unroll():
    _, skip = _pair()
    state = skip.zero_state(1)
    with pytest.raises(ValueError, match="pool4 and folded pool3 features"):
        skip.step_from_features(torch.zeros(1, 512, 14, 14), state)
    plain = torch.randn(2, 4, 512 + 1024, 14, 14)
    logits = LocalUnroll(skip)(plain, plain[:, 0])
    logits.mean().backward()
    assert skip.pool3_decoder.weight.grad.abs().sum() > 0


def test_a_skip_checkpoint_round_trips_and_tracks_alike(tmp_path):
    _, skip = _pair(seed=3)
    with torch.no_grad():
        torch.nn.init.normal_(skip.pool3_decoder.weight, std=0.1)
    config = get_config("lite+pool3")
    global_model = GlobalModel(config.global_)
    path = save_checkpoint(tmp_path / "pool3.safetensors", "two-stage", config, {"local": skip, "global": global_model})
    loaded = TwoStageTracker.from_checkpoint(path, device="cpu", backbone=TinyBackbone())
    assert loaded.local_model.config == config.local
    frame = np.random.default_rng(1).integers(0, 256, (100, 140, 3), dtype=np.uint8)
    mask = np.zeros((100, 140), dtype=bool)
    mask[30:70, 40:90] = True
    maps = []
    for tracker in (TwoStageTracker(skip, global_model, device="cpu"), loaded):
        state = tracker.init(frame, mask)
        for _ in range(2):
            prob, state = tracker.track(frame, state)
        maps.append(prob)
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)


def test_the_frame_store_refuses_a_skip_configuration(tmp_path):
    from tracker.training.hardware import Runtime
    from tracker.training.iterative import IterativeRun, IterativeSettings

    settings = IterativeSettings(config="lite+pool3")
    with pytest.raises(ValueError, match="keeps pool4 only"):
        IterativeRun(tmp_path, [], settings, Runtime.start("cpu"), feature_store=tmp_path / "store")
