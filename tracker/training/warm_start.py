"""Warm-starting a local model from the FCN baseline's offline head (`--local-init FILE`).

The FCN head (baselines/fcn.py) is the local model with the recurrence taken out: its first
two 3x3 convs have F-CNN's shapes and its four transposed convs are the local decoder. Copying
those gives a local model whose features and decoder already segment, leaving M-CNN and the
ConvLSTM to learn. Not in the paper (its local models train ~20k iterations on a GPU); measured
to matter at a CPU budget (docs/training.md). Read from the checkpoint file directly, so the
training code does not depend on the baselines package.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from tracker.checkpoint import CheckpointError, load_checkpoint

FCN_TO_LOCAL = {
    "head.0": "fcnn.0",  # pool4 -> F-CNN width, 3x3 (ReLU after both)
    "head.2": "fcnn.2",  # F-CNN width -> F-CNN width, 3x3 (FCN: ReLU; F-CNN: tanh)
    "head.8": "decoder.0",  # the four 5x5 stride-2 transposed convs, 14 -> 224
    "head.10": "decoder.2",
    "head.12": "decoder.4",
    "head.14": "decoder.6",
}
"""FCN head layer -> local model layer with the same shapes when both come from one `--config`."""


def warm_start_from_fcn(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Copy the FCN checkpoint's F-CNN-shaped convs and decoder into `model` (a LocalModel) in
    place; returns the local parameter names written. Shapes must match exactly."""
    _, states, _ = load_checkpoint(path, "fcn")
    source = states["fcn"]
    target = model.state_dict()
    written = []
    for fcn_layer, local_layer in FCN_TO_LOCAL.items():
        for suffix in ("weight", "bias"):
            src, dst = f"{fcn_layer}.{suffix}", f"{local_layer}.{suffix}"
            if src not in source:
                raise CheckpointError(f"{path}: no {src} in the FCN head; is it an FCN checkpoint of this project?")
            if tuple(source[src].shape) != tuple(target[dst].shape):
                raise CheckpointError(
                    f"{path}: the FCN's {src} is {tuple(source[src].shape)} but the local model's {dst} is "
                    f"{tuple(target[dst].shape)}: train the FCN with the same --config as the local model"
                )
            with torch.no_grad():
                target[dst].copy_(source[src].to(target[dst].dtype))
            written.append(dst)
    return written
