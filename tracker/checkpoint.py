"""Checkpoints: every model of a tracker in one safetensors file, with what is needed to
refuse a file that does not fit.

Layout: tensors under one prefix a model (`local.`, `global.`, `fcn.`), and string metadata
`format_version`, `kind` (`two-stage`, `fcn`), `config` (the `ModelConfig.to_dict()` JSON),
`dtype` (the storage dtype of floating tensors) plus free-form extras (training step, data,
...). safetensors stores raw tensors only: loading a checkpoint never runs pickled code.
Weights may be stored as float16 to keep shipped files small; they load back as float32.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

FORMAT_VERSION = 1
"""Bumped whenever the layout above changes; older or newer files are refused, not guessed."""

KIND_PREFIXES: dict[str, tuple[str, ...]] = {"two-stage": ("local", "global"), "fcn": ("fcn",)}
"""The models each kind of checkpoint must hold."""

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
"""Where shipped checkpoints live (the repository's checkpoints/)."""

_RESERVED = ("format_version", "kind", "config", "dtype")
_FLOAT16_MAX = float(torch.finfo(torch.float16).max)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used as asked; the message names the file and why."""


def default_checkpoint(kind: str, config_name: str) -> Path:
    """The shipped checkpoint of a tracker kind and configuration: checkpoints/KIND-CONFIG.safetensors."""
    return CHECKPOINT_DIR / f"{kind}-{config_name}.safetensors"


def resolve_checkpoint(checkpoint: str | Path | None, kind: str, config_name: str, *, tracker: str, train_command: str) -> Path:
    """`checkpoint`, or the shipped default of `kind`: the one rule every registry factory follows.

    A missing file is an error that says how to make one; never a silent fall-back to untrained
    weights (tests build trackers from fresh models through their constructors instead).
    """
    if checkpoint is None:
        path = default_checkpoint(kind, config_name)
        if not path.is_file():
            raise FileNotFoundError(
                f"the {tracker} has no trained weights yet: {path} does not exist. Train them with "
                f"`{train_command}`, or pass an existing {kind} checkpoint "
                "with --checkpoint PATH"
            )
        return path
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"no {kind} checkpoint at {path} (from --checkpoint)")
    return path


def _config_dict(config: Any) -> dict:
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a ModelConfig or a dict, got {type(config).__name__}")
    return json.loads(json.dumps(dict(config)))  # normalised: what a load will read back


def _state_dict(module: nn.Module | Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    return module.state_dict() if isinstance(module, nn.Module) else module


def save_checkpoint(
    path: str | os.PathLike,
    kind: str,
    config: Any,
    modules: Mapping[str, nn.Module | Mapping[str, Tensor]],
    extra_metadata: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write the `state_dict()` of each model under its prefix; `half` stores floats as float16.

    `config` is a `ModelConfig` (or its `to_dict()`); `extra_metadata` values that are not
    strings are stored as JSON. The file is written beside its final name and renamed, so an
    interrupted save never leaves a truncated checkpoint behind.
    """
    from tracker.safetensors_io import save_canonical

    path = Path(path)
    if kind not in KIND_PREFIXES:
        raise ValueError(f"unknown checkpoint kind {kind!r}; known kinds: {', '.join(KIND_PREFIXES)}")
    if set(modules) != set(KIND_PREFIXES[kind]):
        raise ValueError(
            f"a {kind!r} checkpoint holds the models {list(KIND_PREFIXES[kind])}, got {sorted(modules)}"
        )
    tensors: dict[str, Tensor] = {}
    for prefix, module in modules.items():
        for name, tensor in _state_dict(module).items():
            tensor = tensor.detach().to("cpu")
            if half and tensor.dtype == torch.float32:
                largest = tensor.abs().max().item() if tensor.numel() else 0.0
                if largest > _FLOAT16_MAX:
                    raise ValueError(f"{prefix}.{name} holds {largest:g}, beyond float16's range: save with half=False")
                tensor = tensor.half()
            # clone(): safetensors refuses tensors that share storage (tied or viewed weights).
            tensors[f"{prefix}.{name}"] = tensor.contiguous().clone()
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": json.dumps(_config_dict(config), sort_keys=True),
        "dtype": "float16" if half else "float32",
    }
    for key, value in (extra_metadata or {}).items():
        if key in _RESERVED:
            raise ValueError(f"extra metadata may not set the reserved key {key!r}")
        metadata[str(key)] = value if isinstance(value, str) else json.dumps(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    save_canonical(tensors, partial, metadata)
    os.replace(partial, path)
    return path


def _differences(expected: Any, found: Any, where: str = "") -> list[str]:
    """Paths at which two JSON values differ, with both values."""
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        lines = []
        for key in sorted(set(expected) | set(found), key=str):
            here = f"{where}.{key}" if where else str(key)
            if key not in found:
                lines.append(f"{here}: expected {expected[key]!r}, missing in the file")
            elif key not in expected:
                lines.append(f"{here}: not expected, found {found[key]!r}")
            else:
                lines.extend(_differences(expected[key], found[key], here))
        return lines
    return [] if expected == found else [f"{where or 'config'}: expected {expected!r}, found {found!r}"]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a checkpoint, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as error:  # safetensors raises its own error types for foreign files
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({error})") from error


def load_checkpoint(
    path: str | os.PathLike,
    expected_kind: str,
    expected_config: Any | None = None,
) -> tuple[dict, dict[str, dict[str, Tensor]], dict[str, str]]:
    """Read a checkpoint -> (config dict, {prefix: state_dict} on the CPU in float32, metadata).

    Refused with a `CheckpointError` naming the file, the expected and the found value: a
    file of another format version, another kind, without the models its kind needs, or,
    where `expected_config` is given, of another configuration.
    """
    from safetensors.torch import load_file

    path = Path(path)
    metadata = read_metadata(path)
    found_version = metadata.get("format_version")
    if found_version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: checkpoint format version {found_version or 'missing'}, this pixtrack reads version {FORMAT_VERSION}"
        )
    found_kind = metadata.get("kind")
    if found_kind != expected_kind:
        raise CheckpointError(f"{path}: expected a {expected_kind!r} checkpoint, found kind {found_kind!r}")
    try:
        config = json.loads(metadata["config"])
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the metadata holds no readable model configuration ({error})") from error
    if expected_config is not None:
        differences = _differences(_config_dict(expected_config), config)
        if differences:
            raise CheckpointError(f"{path}: checkpoint of another model configuration: " + "; ".join(differences))

    states: dict[str, dict[str, Tensor]] = {}
    for name, tensor in load_file(str(path), device="cpu").items():
        prefix, dot, rest = name.partition(".")
        if not dot:
            raise CheckpointError(f"{path}: tensor {name!r} has no model prefix (local., global., fcn.)")
        if tensor.dtype == torch.float16 and metadata.get("dtype") == "float16":
            tensor = tensor.float()
        states.setdefault(prefix, {})[rest] = tensor
    needed = KIND_PREFIXES.get(expected_kind, ())
    missing = [prefix for prefix in needed if prefix not in states]
    if missing:
        raise CheckpointError(
            f"{path}: a {expected_kind!r} checkpoint needs the models {list(needed)}, "
            f"found {sorted(states)} (missing {missing})"
        )
    return config, states, metadata


def load_weights(module: nn.Module, state: Mapping[str, Tensor], path: str | os.PathLike, prefix: str) -> None:
    """`module.load_state_dict(state)` with a message naming the file and model on mismatch."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: the {prefix!r} weights do not fit the model: {error}") from error
