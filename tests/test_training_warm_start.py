"""Warm-starting local models from the FCN head (`--local-init`): the copied layers compute what
the FCN's computed, the rest keep their initialisation, a mismatched FCN is refused naming the
layer, and the iterative run applies it to the models it trains."""

from __future__ import annotations

import pytest
import torch

from baselines.fcn import FCN, FCNConfig, save_fcn
from tracker.checkpoint import CheckpointError
from tracker.cli import build_parser
from tracker.training.arguments import iterative_settings
from tracker.config import LocalConfig
from tracker.local_model import LocalModel
from tracker.training.hardware import Runtime
from tracker.training.iterative import IterativeRun, IterativeSettings
from tracker.training.warm_start import warm_start_from_fcn
from stand_ins import TinyBackbone

LOCAL = LocalConfig(fcnn_channels=16, mcnn_channels=8, lstm_channels=(8, 8), deconv_channels=(8, 8, 4, 1))


def fcn_checkpoint(path, local: LocalConfig = LOCAL, seed: int = 0):
    torch.manual_seed(seed)
    fcn = FCN(FCNConfig.from_local(local), backbone=TinyBackbone())
    return fcn, save_fcn(path, fcn)


def test_copied_layers_compute_what_the_fcn_computed_and_the_rest_is_untouched(tmp_path):
    fcn, path = fcn_checkpoint(tmp_path / "fcn.safetensors")
    torch.manual_seed(1)
    local = LocalModel(LOCAL, backbone=TinyBackbone())
    untouched = {k: v.clone() for k, v in local.state_dict().items() if k.startswith(("mcnn", "lstm"))}
    pool4, hidden = torch.randn(2, 512, 14, 14), torch.randn(2, 8, 14, 14)
    with torch.no_grad():
        assert not torch.allclose(local.decoder(hidden), fcn.head[8:](hidden))

        written = warm_start_from_fcn(local, path)

        assert len(written) == 12  # weight and bias of two F-CNN convs and four transposed convs
        # F-CNN's convs before their last activation (the FCN: ReLU, F-CNN: tanh) are the FCN's.
        torch.testing.assert_close(local.fcnn[:3](pool4), fcn.head[:3](pool4))
        torch.testing.assert_close(local.decoder(hidden), fcn.head[8:](hidden))
    for name, value in local.state_dict().items():
        if name in untouched:
            assert torch.equal(value, untouched[name]), name


def test_an_fcn_of_other_widths_is_refused_naming_the_layer(tmp_path):
    _, path = fcn_checkpoint(tmp_path / "wide.safetensors", LocalConfig(fcnn_channels=32, mcnn_channels=8,
                                                                        lstm_channels=(8, 8),
                                                                        deconv_channels=(8, 8, 4, 1)))
    local = LocalModel(LOCAL, backbone=TinyBackbone())
    with pytest.raises(CheckpointError, match=r"wide\.safetensors: the FCN's head\.0\.weight is \(32, 512, 3, 3\)"
                                              r".*fcnn\.0\.weight is \(16, 512, 3, 3\).*same --config"):
        warm_start_from_fcn(local, path)


def test_the_iterative_run_warm_starts_the_models_it_trains(tmp_path, monkeypatch):
    from tracker.config import ModelConfig

    config = ModelConfig(local=LOCAL, name="lite")
    monkeypatch.setattr("tracker.config.get_config", lambda name: config)
    fcn, path = fcn_checkpoint(tmp_path / "fcn.safetensors", seed=3)
    args = build_parser().parse_args(["train", "iterative", "--synthetic", "4", "--out", str(tmp_path / "run"),
                                      "--local-init", str(path)])
    settings = iterative_settings(args)
    assert settings.local_init == str(path) and settings.to_dict()["local_init"] == str(path)
    assert "local_init" not in IterativeSettings().to_dict()  # runs recorded before the option resume
    hidden = torch.randn(1, 8, 14, 14)
    for local_init, same in ((str(path), True), (None, False)):
        run = IterativeRun(tmp_path / "run", [], IterativeSettings(local_init=local_init),
                           Runtime.start("cpu"), backbone=TinyBackbone(), progress=False)
        with torch.no_grad():
            assert torch.allclose(run.initial_local_model().decoder(hidden), fcn.head[8:](hidden)) is same
