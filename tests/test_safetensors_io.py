"""Checkpoints come out byte for byte alike for the same weights, in whatever process they are saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tracker.safetensors_io import canonicalise_header, save_canonical

ROOT = Path(__file__).resolve().parents[1]

_SAVE_IN_A_NEW_PROCESS = """
import sys, torch
from torch import nn
from tracker.checkpoint import save_checkpoint
torch.manual_seed(0)
models = {"local": nn.Conv2d(3, 4, 3), "global": nn.Conv2d(3, 2, 3)}
config = {"name": "tiny", "local": {"width": 4}, "global": {"width": 2}}
extra = {"trained_on": ["bear", "boat"], "iterations": 7, "recipe": "lite", "seed": "0"}
save_checkpoint(sys.argv[1], "two-stage", config, models, extra_metadata=extra, half=True)
"""


def test_the_same_checkpoint_saved_in_three_processes_is_the_same_file(tmp_path):
    # safetensors' own writer orders the header differently in every process.
    paths = [tmp_path / f"run-{i}.safetensors" for i in range(3)]
    for path in paths:
        subprocess.run([sys.executable, "-c", _SAVE_IN_A_NEW_PROCESS, str(path)], cwd=ROOT, check=True)
    first = paths[0].read_bytes()
    assert all(path.read_bytes() == first for path in paths[1:])


def _shuffled_header_copy(source: Path, target: Path, order: list[str]) -> None:
    """`source` with its header's keys in `order` (and its metadata reversed), as the Rust writer might lay it out."""
    raw = source.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    header["__metadata__"] = dict(reversed(list(header["__metadata__"].items())))
    shuffled = {key: header[key] for key in order}
    text = json.dumps(shuffled).encode()  # spaces after separators: another length too
    text += b" " * (-len(text) % 8)
    target.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length:])


@pytest.mark.parametrize("padding", ["", "x", "xyz", "abcdefg"])
def test_canonicalising_keeps_every_tensor_and_value_and_fixes_the_bytes(tmp_path, padding):
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = {"b.weight": torch.arange(6, dtype=torch.float16).reshape(2, 3),
               "a.bias": torch.tensor([1.5, -2.0]), "c.count": torch.tensor([7], dtype=torch.int64)}
    metadata = {"zeta": "1", "alpha": "two" + padding, "kind": "fcn"}
    canonical = save_canonical(tensors, tmp_path / "canonical.safetensors", metadata)
    shuffled = tmp_path / "shuffled.safetensors"
    _shuffled_header_copy(canonical, shuffled, ["c.count", "__metadata__", "a.bias", "b.weight"])
    assert shuffled.read_bytes() != canonical.read_bytes()

    canonicalise_header(shuffled)
    assert shuffled.read_bytes() == canonical.read_bytes()
    loaded = load_file(str(shuffled))
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    with safe_open(str(shuffled), framework="pt") as handle:
        assert handle.metadata() == metadata


def test_a_file_that_is_not_safetensors_is_named_in_the_error(tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_bytes((20).to_bytes(8, "little") + b"this is not json....")
    with pytest.raises(ValueError, match="notes.safetensors"):
        canonicalise_header(bad)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(ValueError, match="short.safetensors"):
        canonicalise_header(short)
