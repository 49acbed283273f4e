"""Weights of one model (local or global) between training stages, as safetensors.

A two-stage checkpoint (`tracker.checkpoint`) needs both models; training produces them one
at a time. These files hold one model's `state_dict()` (the frozen backbone is never in it)
with its role and the full model configuration in the metadata, so a file is never loaded
into a model of another configuration or role without a clear error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

ROLES = ("local", "global")


def save_model_weights(path: str | os.PathLike, module: nn.Module, config, role: str) -> Path:
    """Write `module`'s weights; `config` is the `ModelConfig` it was built from."""
    from tracker.safetensors_io import save_canonical

    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_canonical(tensors, partial, {"role": role, "config": json.dumps(config.to_dict(), sort_keys=True)})
    os.replace(partial, path)
    return path


def load_model_weights(path: str | os.PathLike, module: nn.Module, config, role: str) -> nn.Module:
    """Load weights written by `save_model_weights` into `module`, checking role and configuration."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model weights at {path}")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("role") != role:
        raise ValueError(f"{path} holds {metadata.get('role') or 'unknown'} model weights, not {role}")
    if _stored_config(metadata.get("config")) != config:
        found = json.loads(metadata.get("config") or "{}").get("name", "?")
        raise ValueError(f"{path} was trained with model configuration {found!r}, not {config.name!r} "
                         "(or a different variant of it)")
    try:
        module.load_state_dict(load_file(str(path)))
    except RuntimeError as error:
        raise ValueError(f"{path}: the weights do not fit the {role} model: {error}") from error
    return module


def _stored_config(text: str | None):
    """The ModelConfig a weights file names (fields added since it was written take their
    defaults, i.e. off), or None where it names none that parses."""
    from tracker.config import ConfigError, ModelConfig

    try:
        return ModelConfig.from_dict(json.loads(text or ""))
    except (ValueError, ConfigError):
        return None
