"""Tracking under bf16 autocast: fp32 maps out, close to the fp32 tracker's; clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.centroid import OneStageTracker
from tracker.config import get_config
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel
from tracker.precision import autocast, check_precision
from tracker.two_stage import TwoStageTracker
from stand_ins import TinyBackbone

H, W = 72, 96


def _scene(x: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 120, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=bool)
    mask[24:44, x:x + 20] = True
    frame[mask] = (230, 60, 40)
    return frame, mask


def _models() -> tuple[LocalModel, GlobalModel]:
    config = get_config("lite")
    torch.manual_seed(0)
    return LocalModel(config.local, backbone=TinyBackbone()), GlobalModel(config.global_)


def _track(tracker, frames: int = 4) -> list[np.ndarray]:
    state = tracker.init(*_scene(20))
    maps = []
    for step in range(frames):
        prob, state = tracker.track(_scene(22 + 2 * step)[0], state)
        maps.append(prob)
    return maps


@pytest.mark.parametrize("kind", ["two-stage", "1stage"])
def test_bf16_maps_are_float32_and_close_to_fp32(kind) -> None:
    local, global_model = _models()

    def build(precision: str):
        if kind == "two-stage":
            return TwoStageTracker(local, global_model, device="cpu", precision=precision)
        return OneStageTracker(local, device="cpu", precision=precision)

    exact, low = _track(build("fp32")), _track(build("bf16"))
    for a, b in zip(exact, low):
        assert b.dtype == np.float32 and a.shape == b.shape
        assert np.abs(a - b).mean() < 0.02  # bf16 keeps 8 bits of mantissa: close, not equal
        assert not np.array_equal(a, b)  # the autocast did run


def test_autocast_region_is_bf16_only_inside() -> None:
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    with autocast(torch.device("cpu"), "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert conv(x).dtype == torch.float32
    assert conv(x).dtype == torch.float32


def test_precisions_a_device_cannot_run_are_refused() -> None:
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="'fp8'"):
        check_precision("fp8", torch.device("cpu"))
    local, global_model = _models()
    with pytest.raises(ValueError, match="fp16"):
        TwoStageTracker(local, global_model, device="cpu", precision="fp16")


def test_registry_refuses_a_precision_for_fp32_only_trackers() -> None:
    from tracker.registry import build_tracker

    with pytest.raises(ValueError, match="'pixtrack-fcn' runs in fp32 only"):
        build_tracker("pixtrack-fcn", precision="bf16")
    with pytest.raises(ValueError, match=r"'static' \(pixtrack-static\) runs in fp32 only"):
        build_tracker("static", precision="bf16")  # an old name, named as given
