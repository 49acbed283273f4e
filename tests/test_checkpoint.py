"""Checkpoints: round trips, half-precision storage, and refusals that say what is wrong."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tracker.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    default_checkpoint,
    load_checkpoint,
    load_weights,
    read_metadata,
    save_checkpoint,
)

CONFIG = {"name": "tiny", "local": {"width": 4, "channels": [4, 2]}, "global": {"width": 3}}


class _Net(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.norm = nn.BatchNorm2d(width)  # a buffer (running stats) and an int64 counter


def _models(seed: int = 0, width: int = 4) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    models = {"local": _Net(width), "global": _Net(3)}
    for model in models.values():
        model.norm.running_mean.uniform_(-1, 1)
        model.norm.num_batches_tracked.fill_(7)
    return models


def test_round_trip_is_exact_in_float32(tmp_path):
    models = _models()
    path = save_checkpoint(tmp_path / "c.safetensors", "two-stage", CONFIG, models, extra_metadata={"step": 1200, "note": "hi"})
    config, states, metadata = load_checkpoint(path, "two-stage", expected_config=CONFIG)
    assert config == CONFIG
    assert set(states) == {"local", "global"}
    for prefix, model in models.items():
        expected = model.state_dict()
        assert set(states[prefix]) == set(expected)
        for name, tensor in expected.items():
            assert states[prefix][name].dtype == tensor.dtype
            assert torch.equal(states[prefix][name], tensor), f"{prefix}.{name}"
    assert metadata["format_version"] == str(FORMAT_VERSION)
    assert metadata["kind"] == "two-stage" and metadata["dtype"] == "float32"
    assert json.loads(metadata["step"]) == 1200 and metadata["note"] == "hi"
    fresh = _models(seed=1)
    load_weights(fresh["local"], states["local"], path, "local")
    assert torch.equal(fresh["local"].conv.weight, models["local"].conv.weight)


def test_half_storage_is_smaller_and_loads_back_as_float32(tmp_path):
    models = _models(width=64)  # big enough for the weights, not the header, to dominate
    full = save_checkpoint(tmp_path / "full.safetensors", "two-stage", CONFIG, models)
    half = save_checkpoint(tmp_path / "half.safetensors", "two-stage", CONFIG, models, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    _, states, metadata = load_checkpoint(half, "two-stage")
    assert metadata["dtype"] == "float16"
    weight = states["local"]["conv.weight"]
    assert weight.dtype == torch.float32
    original = models["local"].conv.weight.detach()
    # float16 keeps 11 significant bits: relative error <= 2^-11.
    assert torch.allclose(weight, original, rtol=2**-11, atol=1e-7)
    assert not torch.equal(weight, original)  # it really was rounded
    assert states["local"]["norm.num_batches_tracked"].dtype == torch.int64


def test_half_storage_refuses_values_beyond_float16(tmp_path):
    models = _models()
    with torch.no_grad():
        models["global"].conv.bias[0] = 1e6
    with pytest.raises(ValueError, match=r"global\.conv\.bias holds 1e\+06, beyond float16"):
        save_checkpoint(tmp_path / "c.safetensors", "two-stage", CONFIG, models, half=True)


def test_another_kind_is_refused_naming_both(tmp_path):
    path = save_checkpoint(tmp_path / "fcn.safetensors", "fcn", CONFIG, {"fcn": _Net()})
    with pytest.raises(CheckpointError, match=r"fcn\.safetensors: expected a 'two-stage' checkpoint, found kind 'fcn'"):
        load_checkpoint(path, "two-stage")


def test_another_configuration_is_refused_naming_the_fields(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", "two-stage", CONFIG, _models())
    other = json.loads(json.dumps(CONFIG))
    other["local"]["channels"] = [8, 2]
    other["name"] = "paper"
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, "two-stage", expected_config=other)
    message = str(error.value)
    assert "another model configuration" in message
    assert "local.channels: expected [8, 2], found [4, 2]" in message
    assert "name: expected 'paper', found 'tiny'" in message


def test_another_format_version_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "old.safetensors"
    save_file({"local.w": torch.zeros(2), "global.w": torch.zeros(2)}, str(path),
              metadata={"format_version": "0", "kind": "two-stage", "config": "{}"})
    with pytest.raises(CheckpointError, match=rf"format version 0, this pixtrack reads version {FORMAT_VERSION}"):
        load_checkpoint(path, "two-stage")


def test_missing_models_and_foreign_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "half.safetensors"
    save_file({"local.w": torch.zeros(2)}, str(path),
              metadata={"format_version": str(FORMAT_VERSION), "kind": "two-stage", "config": "{}"})
    with pytest.raises(CheckpointError, match=r"missing \['global'\]"):
        load_checkpoint(path, "two-stage")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04 pickle, not safetensors")
    with pytest.raises(CheckpointError, match="junk.safetensors is not a safetensors checkpoint"):
        read_metadata(junk)
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        load_checkpoint(tmp_path / "absent.safetensors", "two-stage")


def test_weights_of_another_shape_are_refused_naming_the_model(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", "two-stage", CONFIG, _models())
    _, states, _ = load_checkpoint(path, "two-stage")
    with pytest.raises(CheckpointError, match=r"c\.safetensors: the 'local' weights do not fit the model"):
        load_weights(_Net(5), states["local"], path, "local")


def test_save_checks_kind_models_and_reserved_metadata(tmp_path):
    with pytest.raises(ValueError, match="unknown checkpoint kind 'nope'"):
        save_checkpoint(tmp_path / "c.safetensors", "nope", CONFIG, _models())
    with pytest.raises(ValueError, match=r"holds the models \['local', 'global'\], got \['local'\]"):
        save_checkpoint(tmp_path / "c.safetensors", "two-stage", CONFIG, {"local": _Net()})
    with pytest.raises(ValueError, match="reserved key 'kind'"):
        save_checkpoint(tmp_path / "c.safetensors", "two-stage", CONFIG, _models(), extra_metadata={"kind": "x"})
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_default_checkpoint_lives_in_the_repository():
    path = default_checkpoint("two-stage", "lite")
    assert path.name == "two-stage-lite.safetensors" and path.parent.name == "checkpoints"
