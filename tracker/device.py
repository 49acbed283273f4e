"""Where tensors live: the `--device` argument, and the host -> device transfers every tracker makes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """`None`/"auto" -> CUDA where present, else CPU; anything else is checked, not trusted."""
    if isinstance(spec, torch.device):
        return spec
    if spec is None or spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise ValueError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but torch sees no CUDA device on this machine")
    return device


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """torch.from_numpy without its warning about read-only arrays (decoded images often are):
    the tensor is only read, copied to the device or to float, never written."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """To the device; on CUDA through pinned memory with `non_blocking`, so the host never waits."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def frame_to_device(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 -> a [1, 3, H, W] uint8 view on the device.

    uint8 crosses the bus (a quarter of float32) and stays uint8: `roi.crop` converts only the
    pixels it samples, so a 4K frame is never converted whole, and the map's download stays
    the step's only sync.
    """
    return _upload(from_numpy(frame), device).permute(2, 0, 1)[None]


def box_to_device(roi: Sequence[float], device: torch.device) -> torch.Tensor:
    """A ROI given from outside (Table 2 protocol), checked, as a [1, 3] tensor on the device."""
    try:
        values = tuple(float(v) for v in roi)
    except (TypeError, ValueError) as error:
        raise ValueError(f"roi must be a square box (cx, cy, side) of numbers, got {roi!r}") from error
    if len(values) != 3 or not values[2] > 0 or not all(np.isfinite(values)):
        raise ValueError(f"roi must be a square box (cx, cy, side) with side > 0, got {roi!r}")
    return _upload(torch.tensor([values], dtype=torch.float32), device)
