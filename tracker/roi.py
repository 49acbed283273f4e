"""ROI geometry: square pixel boxes, the global model's theta, crops and pastes.

The conventions are those of docs/interfaces.md, in one place so that training, the online
trackers and the plots cannot disagree:

- Normalised coordinates: x in [-1, 1] across the frame width W, y in [-1, 1] across the
  height H, `align_corners=False`: pixel column i covers [i, i + 1] in pixel coordinates and
  has its centre at x = (2i + 1) / W - 1.
- A box is a float tensor `[..., 3]` = (cx, cy, side) in pixel coordinates: a square.
- `theta = (tx, ty, s)` with aspect `gamma = W / H` is the box x in [tx - s, tx + s],
  y in [ty - s * gamma, ty + s * gamma], i.e. centre ((tx + 1) W / 2, (ty + 1) H / 2) and
  side s * W pixels: a square in pixels on any frame.

Everything is batched torch, runs on the tensors' device and never reads a value back to
the host, so one tracking step costs no device synchronisation here. Frame sizes are
Python `(H, W)` tuples (known on the host from the frame's shape).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ROI_SIZE = 224
"""Side of the local model's input crop, in pixels (VGG16's input size)."""

MIN_ROI_SIDE = 56.0
MAX_ROI_SIDE = 672.0
"""The local ROI's side in frame pixels is clipped to this range (Sec. 3.3, item 2)."""

ROI_SCALE = 2.0
"""The local ROI is the object box this many times larger (Sec. 3.3, item 2)."""

FrameSize = tuple[int, int]
"""(H, W) of a frame, in pixels."""


def _check_frame_size(frame_size: FrameSize) -> tuple[int, int]:
    if len(frame_size) != 2 or int(frame_size[0]) < 1 or int(frame_size[1]) < 1:
        raise ValueError(f"frame_size must be (H, W) with H, W >= 1, got {tuple(frame_size)!r}")
    return int(frame_size[0]), int(frame_size[1])


def _check_last_dim(tensor: Tensor, what: str) -> None:
    if tensor.shape[-1] != 3:
        raise ValueError(f"{what} must have a last dimension of 3, got shape {tuple(tensor.shape)}")


def theta_to_box(theta: Tensor, frame_size: FrameSize) -> Tensor:
    """(tx, ty, s) -> (cx, cy, side) in pixels of a frame of `frame_size` (H, W)."""
    _check_last_dim(theta, "theta")
    height, width = _check_frame_size(frame_size)
    tx, ty, s = theta.unbind(-1)
    return torch.stack(((tx + 1) * (width / 2), (ty + 1) * (height / 2), s * width), dim=-1)


def box_to_theta(box: Tensor, frame_size: FrameSize) -> Tensor:
    """(cx, cy, side) in pixels -> (tx, ty, s); the inverse of `theta_to_box`."""
    _check_last_dim(box, "box")
    height, width = _check_frame_size(frame_size)
    cx, cy, side = box.unbind(-1)
    return torch.stack((cx * (2 / width) - 1, cy * (2 / height) - 1, side / width), dim=-1)


def box_from_mask(mask: Tensor) -> Tensor:
    """The object box of masks `[..., H, W]`: the square around each mask's bounding box.

    The bounding box covers whole pixels (a one-pixel mask at column i spans [i, i + 1]), so
    its side is the longer side of the bounding box, at least 1 for any non-empty mask. An
    empty mask gives side 0 at the frame centre; callers that cannot track nothing check for
    emptiness themselves, where the mask is still on the host.
    """
    if mask.dim() < 2:
        raise ValueError(f"mask must be [..., H, W], got shape {tuple(mask.shape)}")
    mask = mask != 0
    height, width = mask.shape[-2:]
    rows = torch.arange(height, device=mask.device)
    cols = torch.arange(width, device=mask.device)
    row_any = mask.any(dim=-1)  # [..., H]
    col_any = mask.any(dim=-2)  # [..., W]
    top = torch.where(row_any, rows, height).amin(dim=-1)
    bottom = torch.where(row_any, rows, -1).amax(dim=-1) + 1  # exclusive
    left = torch.where(col_any, cols, width).amin(dim=-1)
    right = torch.where(col_any, cols, -1).amax(dim=-1) + 1
    # Empty: top = H, bottom = 0 -> centre H / 2, negative extent -> side 0.
    side = torch.maximum(bottom - top, right - left).clamp_min(0)
    box = torch.stack(((left + right) / 2, (top + bottom) / 2, side.float()), dim=-1)
    return box.float()


def roi_from_object_box(
    box: Tensor,
    scale: float = ROI_SCALE,
    min_side: float = MIN_ROI_SIDE,
    max_side: float = MAX_ROI_SIDE,
) -> Tensor:
    """The local ROI around an object box: same centre, side doubled, clipped to [56, 672]."""
    _check_last_dim(box, "box")
    cx, cy, side = box.unbind(-1)
    return torch.stack((cx, cy, (side * scale).clamp(min_side, max_side)), dim=-1)


def keep_in_frame(box: Tensor, frame_size: FrameSize) -> Tensor:
    """Clamp box centres into the frame, so a ROI always covers at least a quarter of itself
    inside the frame (an object that leaves the frame is waited for at the border)."""
    _check_last_dim(box, "box")
    height, width = _check_frame_size(frame_size)
    cx, cy, side = box.unbind(-1)
    return torch.stack((cx.clamp(0, width), cy.clamp(0, height), side), dim=-1)


def _sample_positions(box: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """Pixel coordinates of the centres of a `count` x `count` grid over each box: x, y `[B, count]`."""
    cx, cy, side = box.unbind(-1)  # [B]
    unit = (2 * torch.arange(count, device=box.device, dtype=box.dtype) + 1) / count - 1  # [count]
    offsets = unit[None, :] * (side[:, None] / 2)
    return cx[:, None] + offsets, cy[:, None] + offsets


def _taps(position: Tensor, size: int, mode: str, clamp: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Interpolation along one axis at continuous `position`s (pixel i covers [i, i + 1]).

    Returns two source indices and their weights (bilinear; nearest puts all weight on the
    first). Indices are always valid; a tap outside [0, size) gets weight 0 (zero padding),
    or with `clamp` reads the edge pixel instead (border padding). Same arithmetic as
    `grid_sample(align_corners=False)`.
    """
    if mode == "bilinear":
        index = position - 0.5  # pixel i's centre sits at i + 0.5
        low = index.floor()
        high_weight = index - low
        low_weight = 1 - high_weight
        high = low + 1
    elif mode == "nearest":
        low = position.floor()  # the pixel containing the position
        high = low
        low_weight = torch.ones_like(position)
        high_weight = torch.zeros_like(position)
    else:
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    if not clamp:
        low_weight = low_weight * ((low >= 0) & (low <= size - 1))
        high_weight = high_weight * ((high >= 0) & (high <= size - 1))
    return low.clamp(0, size - 1).long(), high.clamp(0, size - 1).long(), low_weight, high_weight


def _check_batch(images: Tensor, boxes: Tensor, what: str) -> None:
    if images.dim() != 4:
        raise ValueError(f"{what} must be [B, C, H, W], got shape {tuple(images.shape)}")
    if boxes.dim() != 2 or boxes.shape[-1] != 3 or boxes.shape[0] != images.shape[0]:
        raise ValueError(
            f"boxes must be [B, 3] with B = {images.shape[0]} (one box per {what[:-1]}), got shape {tuple(boxes.shape)}"
        )


def crop(images: Tensor, boxes: Tensor, size: int = ROI_SIZE, mode: str = "bilinear") -> Tensor:
    """Resample the square `boxes` `[B, 3]` of `images` `[B, C, H, W]` to `[B, C, size, size]`.

    Crop pixel j samples the frame at pixel coordinate cx + ((2j + 1) / size - 1) * side / 2
    (bilinear, or nearest for `mode="nearest"`); parts of a box outside the frame read zeros.
    This is `grid_sample(align_corners=False, padding_mode="zeros")`, computed by gathering
    only the 4 * size^2 pixels the samples touch: a 4K frame costs what a small one does, and
    uint8 frames are converted to float32 (0..255) after the gather, never whole.

    Masks are cropped the same way: bilinear turns a binary mask into per-pixel coverage in
    [0, 1], which keeps small objects' edges and suits the cross-entropy targets.
    """
    _check_batch(images, boxes, "images")
    dtype = images.dtype if images.is_floating_point() else torch.float32
    height, width = images.shape[-2:]
    x, y = _sample_positions(boxes.to(dtype), size)
    x0, x1, wx0, wx1 = _taps(x, width, mode, clamp=False)
    y0, y1, wy0, wy1 = _taps(y, height, mode, clamp=False)
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None]

    def corner(rows: Tensor, cols: Tensor) -> Tensor:
        # Advanced indices around a slice: the result is [B, size, size, C].
        return images[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).to(dtype)

    wx0, wx1 = wx0[:, None, None, :], wx1[:, None, None, :]
    top = corner(y0, x0) * wx0 + corner(y0, x1) * wx1
    if mode == "nearest":
        return top * wy0[:, None, :, None]
    bottom = corner(y1, x0) * wx0 + corner(y1, x1) * wx1
    return top * wy0[:, None, :, None] + bottom * wy1[:, None, :, None]


def paste(maps: Tensor, boxes: Tensor, frame_size: FrameSize, mode: str = "bilinear") -> Tensor:
    """Put ROI maps `[B, C, s, s]` back where `boxes` `[B, 3]` cropped them: `[B, C, H, W]`.

    The inverse of `crop` with the same box: each frame pixel whose centre lies inside the
    box reads the map at its position (bilinear, the map's edge values extended up to the
    box's edge); every pixel whose centre lies outside the box is exactly 0. Separable: the
    map is first interpolated to the frame's rows, then to its columns (no H x W x 2 grid).
    """
    _check_batch(maps, boxes, "maps")
    if maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"maps must be square [B, C, s, s], got shape {tuple(maps.shape)}")
    height, width = _check_frame_size(frame_size)
    if not maps.is_floating_point():
        maps = maps.float()
    batch, channels, size = maps.shape[0], maps.shape[1], maps.shape[-1]
    boxes = boxes.to(maps.dtype)
    cx, cy, side = boxes.unbind(-1)
    side = side.clamp_min(torch.finfo(maps.dtype).tiny)[:, None]
    columns = torch.arange(width, device=maps.device, dtype=maps.dtype) + 0.5
    rows = torch.arange(height, device=maps.device, dtype=maps.dtype) + 0.5
    # Frame pixel centres in the map's pixel coordinates (0..size across the box).
    u = (columns[None, :] - (cx[:, None] - side / 2)) * (size / side)  # [B, W]
    v = (rows[None, :] - (cy[:, None] - side / 2)) * (size / side)  # [B, H]
    x0, x1, wx0, wx1 = _taps(u, size, mode, clamp=True)
    y0, y1, wy0, wy1 = _taps(v, size, mode, clamp=True)
    inside_x = ((u >= 0) & (u <= size)).to(maps.dtype)
    inside_y = ((v >= 0) & (v <= size)).to(maps.dtype)

    def take_rows(index: Tensor) -> Tensor:
        return maps.gather(2, index[:, None, :, None].expand(batch, channels, height, size))

    by_rows = take_rows(y0) * (wy0 * inside_y)[:, None, :, None]
    if mode != "nearest":
        by_rows = by_rows + take_rows(y1) * (wy1 * inside_y)[:, None, :, None]

    def take_columns(index: Tensor) -> Tensor:
        return by_rows.gather(3, index[:, None, None, :].expand(batch, channels, height, width))

    pasted = take_columns(x0) * (wx0 * inside_x)[:, None, None, :]
    if mode != "nearest":
        pasted = pasted + take_columns(x1) * (wx1 * inside_x)[:, None, None, :]
    return pasted


def roi_to_roi_theta(source: Tensor, target: Tensor) -> Tensor:
    """Affine `[N, 2, 3]` taking target-ROI normalised coordinates to source-ROI ones.

    Boxes `[N, 3]` = (cx, cy, side) in pixels of one frame: target pixel u (normalised,
    align_corners=False) lies at cx_t + u side_t / 2, which is (cx_t - cx_s) / (side_s / 2)
    + u side_t / side_s in the source ROI.
    """
    ratio = target[:, 2] / source[:, 2]
    zero = torch.zeros_like(ratio)
    tx = (target[:, 0] - source[:, 0]) * 2 / source[:, 2]
    ty = (target[:, 1] - source[:, 1]) * 2 / source[:, 2]
    return torch.stack((torch.stack((ratio, zero, tx), -1), torch.stack((zero, ratio, ty), -1)), dim=1)


def reframe(maps: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """ROI maps `[N, C, s, s]` cropped at `source` boxes `[N, 3]`, resampled as if cropped at
    `target` (bilinear; zeros where `target` leaves `source`): a previous map or a recurrent
    state carried into the next ROI."""
    theta = roi_to_roi_theta(source.to(maps.dtype), target.to(maps.dtype))
    grid = F.affine_grid(theta, list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resize_map(maps: Tensor, size: int = ROI_SIZE) -> Tensor:
    """Full-frame maps `[B, C, H, W]` -> `[B, C, size, size]`: the global model's input.

    Bilinear with antialiasing: when shrinking, each output pixel averages the input over a
    triangle window (no aliasing of thin objects); when enlarging, plain bilinear. The
    frame's aspect ratio is lost here, which is why the global model is told W / H.
    Training and tracking must both resize through this function.
    """
    if maps.dim() != 4:
        raise ValueError(f"maps must be [B, C, H, W], got shape {tuple(maps.shape)}")
    if not maps.is_floating_point():
        maps = maps.float()
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
