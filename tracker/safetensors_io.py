"""Safetensors files written byte for byte alike for the same tensors and metadata.

safetensors (the Rust writer) lays its JSON header out in hash-map order, which changes from
process to process: the same model saved twice gave two different files (found by the run
cache, `evaluation.results_cache.checkpoint_id`). The tensor data is laid out
deterministically; only the header's key order moves. `save_canonical` writes through
`safetensors.torch.save_file` and then rewrites the header with its keys sorted, so a shipped
or cached checkpoint can be compared with `cmp` and hashed as plain bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from torch import Tensor

_HEADER_ALIGNMENT = 8  # safetensors pads its header with spaces to a multiple of 8 bytes


def save_canonical(tensors: Mapping[str, Tensor], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write `tensors` to `path` (not atomically: callers write a temporary name and rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    save_file(dict(tensors), str(path), metadata=dict(metadata) if metadata is not None else None)
    canonicalise_header(path)
    return path


def canonical_header_bytes(header: dict) -> bytes:
    """The header as safetensors reads it: compact JSON, keys sorted, space-padded to 8 bytes."""
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return text + b" " * (-len(text) % _HEADER_ALIGNMENT)


def canonicalise_header(path: str | os.PathLike) -> None:
    """Rewrite a safetensors file's header with sorted keys, in place; the data is untouched
    (its offsets are relative to the end of the header, whatever the header's length)."""
    path = Path(path)
    with open(path, "rb") as handle:
        size = handle.read(8)
        if len(size) < 8:
            raise ValueError(f"{path} is not a safetensors file: {len(size)} bytes")
        length = int.from_bytes(size, "little")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a safetensors file: unreadable header ({error})") from None
        data = handle.read()
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    new_header = canonical_header_bytes(header)
    with open(path, "wb") as handle:
        handle.write(len(new_header).to_bytes(8, "little"))
        handle.write(new_header)
        handle.write(data)
