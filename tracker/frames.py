"""Checked conversion of the frames and masks callers hand to a tracker.

Frames arrive from image readers, the VOT toolkit and user code in several layouts; every
tracker passes them through `as_rgb` / `as_mask` so that a wrong array fails at the door
with a message naming its shape and dtype, not deep inside a network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def _describe(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)}, dtype {array.dtype}"


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """A frame as HxWx3 uint8 RGB: grayscale HxW or HxWx1 is replicated, RGBA loses alpha.

    Only uint8 is accepted: other dtypes have no agreed value range (0..1? 0..65535?), and a
    silent guess would feed the backbone garbage.
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (HxW, HxWx1, HxWx3 or HxWx4), got {_describe(frame)}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif not (frame.ndim == 3 and frame.shape[2] == 3):
        raise ValueError(f"frame must be HxW, HxWx1, HxWx3 or HxWx4, got {_describe(frame)}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame is empty: {_describe(frame)}")
    return np.ascontiguousarray(frame)


def as_mask(mask: np.ndarray, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """An object mask as HxW bool, checked against `frame_size` (H, W) where given.

    Accepted: bool; integers (nonzero = object, e.g. 0/255 PNGs); floats holding only 0 and
    1. Soft float masks are refused rather than thresholded at a guessed level.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise ValueError(f"mask must be HxW (or HxWx1), got {_describe(mask)}")
    if mask.dtype == np.bool_:
        result = mask
    elif np.issubdtype(mask.dtype, np.integer):
        result = mask != 0
    elif np.issubdtype(mask.dtype, np.floating):
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(
                f"float mask must hold only 0 and 1 ({_describe(mask)}, values in "
                f"[{np.nanmin(mask) if mask.size else 0}, {np.nanmax(mask) if mask.size else 0}]); "
                "threshold a probability map before using it as a mask"
            )
        result = mask == 1
    else:
        raise ValueError(f"mask must be bool, integer or 0/1 float, got {_describe(mask)}")
    if frame_size is not None and tuple(result.shape) != tuple(frame_size):
        raise ValueError(f"mask is {result.shape[0]}x{result.shape[1]} but the frame is {frame_size[0]}x{frame_size[1]}")
    return np.ascontiguousarray(result)


def check_frame_size(frame: np.ndarray, frame_size: tuple[int, int]) -> None:
    """One tracker state follows one video: a frame of another size is refused, naming both."""
    if frame.shape[:2] != tuple(frame_size):
        raise ValueError(
            f"frame is {frame.shape[0]}x{frame.shape[1]} but the sequence started at "
            f"{frame_size[0]}x{frame_size[1]}: one tracker state follows one video"
        )


def first_frame_on_device(frame: np.ndarray, mask: np.ndarray, device: torch.device) -> tuple[tuple[int, int], torch.Tensor, torch.Tensor]:
    """A tracker's `init` input, checked and uploaded: (frame_size, [1, 3, H, W] uint8 image,
    [1, 1, H, W] float mask). An empty mask is refused: there is nothing to track."""
    from tracker.device import frame_to_device, from_numpy

    frame = as_rgb(frame)
    frame_size = (frame.shape[0], frame.shape[1])
    mask = as_mask(mask, frame_size)
    if not mask.any():
        raise ValueError("nothing to track: the first mask is empty")
    mask_t = from_numpy(mask).to(device)[None, None].float()
    return frame_size, frame_to_device(frame, device), mask_t
