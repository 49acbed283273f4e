"""The 1-stage tracker (paper Sec. 5.3, Eq. 5) and the centroid ROI placement it shares with the FCN.

The 1-stage tracker is the two-stage tracker without the global model: the same local model,
memory initialised the same way from the first ROI (Sec. 3.2), but the ROI of frame t is
centred on the probability-weighted centroid of the full-frame map of frame t - 1 (Eq. 5),
with the side fixed at the first frame's ROI side (object box doubled, clipped to
[56, 672] px). The FCN baseline places its ROI the same way on its own maps, so the tracking
loop here, `CentroidTracker`, is written once over a `Segmenter` (what runs inside the ROI).

Choices where the paper is silent:
- Frame 1's ROI is Eq. 5 on frame 0's map, which is the given mask (its centroid, not the
  centre of its bounding box).
- A map that sums to zero has no centroid (Eq. 5 divides by zero): the ROI stays where it
  was, i.e. where the last frame was cropped. Decided on the device with `torch.where`, so a
  tracking step never waits for the device.
- A ROI given from outside (Table 2 protocol) crops and pastes that frame; the next ROI is
  Eq. 5 on the resulting map, still with the first frame's side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from tracker import roi as geometry
from tracker.device import box_to_device, frame_to_device
from tracker.frames import as_rgb, check_frame_size, first_frame_on_device
from tracker.interface import Box
from tracker.precision import check_precision, tracking_step
from tracker.two_stage import DEFAULT_CONFIG_NAME  # the 1-stage reads the two-stage checkpoint


def centroid_roi(prob: Tensor, previous: Tensor, side: Tensor | float | None = None) -> Tensor:
    """Eq. 5: the next ROI box `[..., 3]`, centred on the probability-weighted centroid of `prob`.

    `prob`: maps `[..., H, W]` (non-negative weights); `previous`: boxes `[..., 3]` (cx, cy,
    side) in pixels, where the last frame was cropped; `side`: the new side (default: the
    previous box's). Pixel (row i, column j) has its centre at (j + 0.5, i + 0.5), the
    convention of `tracker.roi`. Where a map sums to zero the centre stays `previous`'s.
    No host synchronisation: everything stays on `prob`'s device.
    """
    if prob.dim() < 2:
        raise ValueError(f"centroid_roi needs maps [..., H, W], got shape {tuple(prob.shape)}")
    if previous.shape[-1] != 3 or previous.shape[:-1] != prob.shape[:-2]:
        raise ValueError(
            f"previous boxes must be [..., 3] with ... = {tuple(prob.shape[:-2])} (one box per map), "
            f"got shape {tuple(previous.shape)}"
        )
    weights = prob.to(torch.float64 if prob.dtype == torch.float64 else torch.float32)
    height, width = weights.shape[-2:]
    columns = torch.arange(width, device=weights.device, dtype=weights.dtype) + 0.5
    rows = torch.arange(height, device=weights.device, dtype=weights.dtype) + 0.5
    total = weights.sum(dim=(-2, -1))
    moment_x = (weights.sum(dim=-2) * columns).sum(dim=-1)
    moment_y = (weights.sum(dim=-1) * rows).sum(dim=-1)
    found = total > 0
    safe_total = torch.where(found, total, torch.ones_like(total))
    previous = previous.to(weights.dtype)
    cx = torch.where(found, moment_x / safe_total, previous[..., 0])
    cy = torch.where(found, moment_y / safe_total, previous[..., 1])
    if side is None:
        new_side = previous[..., 2]
    else:
        new_side = torch.as_tensor(side, dtype=weights.dtype, device=weights.device).expand_as(cx)
    return torch.stack((cx, cy, new_side), dim=-1)


class Segmenter(Protocol):
    """What a centroid tracker runs inside the ROI: started on the first frame, then stepped.

    `start` gets the whole first frame `[1, 3, H, W]` (uint8 RGB), its mask `[1, 1, H, W]`
    and the first ROI `[1, 3]` (the FCN crops perturbed copies of it); `segment` gets ROI
    crops `[1, 3, 224, 224]` (float 0..255) and returns maps `[1, 1, 224, 224]` in [0, 1].
    The state it returns belongs to one sequence.
    """

    def start(self, frame: Tensor, mask: Tensor, roi: Tensor) -> Any: ...

    def segment(self, image: Tensor, state: Any) -> tuple[Tensor, Any]: ...


class LocalModelSegmenter:
    """The two-stage tracker's local model as a `Segmenter`: memory from the first ROI (Sec. 3.2)."""

    def __init__(self, local_model: nn.Module) -> None:
        self.model = local_model

    def start(self, frame: Tensor, mask: Tensor, roi: Tensor) -> Any:
        return self.model.init_memory(geometry.crop(frame, roi), geometry.crop(mask, roi))

    def segment(self, image: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.model.step(image, state)


@dataclass(frozen=True)
class CentroidState:
    """One sequence's tracking state, on the device (tensors `[1, ...]`)."""

    frame_size: tuple[int, int]
    """(H, W) of the first frame; every later frame must match."""
    frame_index: int
    """0 after `init`, t after the t-th `track`."""
    model: Any
    """The segmenter's per-sequence state (the local model's memory, the FCN's tuned weights)."""
    side: Tensor
    """[1]: the ROI side fixed at the first frame, in pixels."""
    roi: Tensor
    """[1, 3]: the box that cropped (and pasted) the last frame; after init, the first ROI."""
    next_roi: Tensor
    """[1, 3]: where the next frame is cropped unless a ROI is given (Eq. 5 on the last map)."""

    def snapshot(self) -> dict[str, Any]:
        """CPU copies of the ROIs (a device sync: for plots, not for the tracking loop)."""
        return {
            "frame_index": self.frame_index,
            "roi": self.roi[0].cpu().tolist(),
            "next_roi": self.next_roi[0].cpu().tolist(),
        }


class CentroidTracker:
    """Tracking with the ROI placed by Eq. 5 on the tracker's own previous map (Sec. 5.3)."""

    name = "centroid"

    def __init__(self, segmenter: Segmenter, device: str | torch.device | None = None,
                 precision: str = "fp32") -> None:
        from tracker.device import resolve_device

        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.segmenter = segmenter

    @tracking_step
    def init(self, frame: np.ndarray, mask: np.ndarray) -> CentroidState:
        """First frame and mask -> state: the first ROI, the segmenter started there, frame 1's ROI."""
        frame_size, image, mask_t = first_frame_on_device(frame, mask, self.device)
        roi = geometry.roi_from_object_box(geometry.box_from_mask(mask_t[:, 0]))  # [1, 3]
        model_state = self.segmenter.start(image, mask_t, roi)
        side = roi[:, 2]
        return CentroidState(
            frame_size=frame_size,
            frame_index=0,
            model=model_state,
            side=side,
            roi=roi,
            next_roi=centroid_roi(mask_t[:, 0], roi, side),
        )

    @tracking_step
    def track(self, frame: np.ndarray, state: CentroidState, roi: Box | None = None) -> tuple[np.ndarray, CentroidState]:
        """One frame -> its full-frame probability map HxW float32 in [0, 1], and the next state."""
        if not isinstance(state, CentroidState):
            raise TypeError(f"state must come from {type(self).__name__}.init, got {type(state).__name__}")
        frame = as_rgb(frame)
        check_frame_size(frame, state.frame_size)
        image = frame_to_device(frame, self.device)
        box = state.next_roi if roi is None else box_to_device(roi, self.device)
        prob_roi, model_state = self.segmenter.segment(geometry.crop(image, box), state.model)
        prob = geometry.paste(prob_roi, box, state.frame_size)
        new_state = dataclasses.replace(
            state,
            frame_index=state.frame_index + 1,
            model=model_state,
            roi=box,
            next_roi=centroid_roi(prob[:, 0], box, state.side),
        )
        return prob[0, 0].float().cpu().numpy(), new_state


class OneStageTracker(CentroidTracker):
    """The paper's "1-stage ConvLSTM": the two-stage tracker's local model, ROI by Eq. 5."""

    name = "1stage"

    def __init__(self, local_model: nn.Module, device: str | torch.device | None = None,
                 precision: str = "fp32") -> None:
        beyond = list(getattr(getattr(local_model, "config", None), "beyond_paper", []))  # stand-ins have none
        if beyond:
            # Eq. 5 places a fixed-size ROI from the last map alone: nothing here feeds a previous-map
            # prior or moves the memory between ROIs, so such a model would fail at its first step.
            raise ValueError(f"the 1-stage tracker runs the paper's local model; this one has options beyond "
                             f"it ({', '.join(beyond)}): track it with the two-stage tracker (pixtrack-plus)")
        super().__init__(LocalModelSegmenter(local_model), device, precision)
        self.local_model = local_model.to(self.device).eval()  # in place: the segmenter's model too

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None,
                        precision: str = "fp32", backbone: nn.Module | None = None) -> OneStageTracker:
        """The local model of a two-stage checkpoint (prefix `local.`); its global model is unused.
        `backbone`: a VGG16Pool4 to share instead of loading the configured one."""
        from tracker.checkpoint import load_checkpoint, load_weights
        from tracker.config import ModelConfig
        from tracker.local_model import LocalModel

        config_dict, states, _ = load_checkpoint(path, "two-stage")
        local_model = LocalModel(ModelConfig.from_dict(config_dict).local, backbone=backbone)
        load_weights(local_model, states["local"], path, "local")
        return cls(local_model, device=device, precision=precision)


def build(checkpoint: str | None = None, device: str | None = None, precision: str = "fp32",
          backbone: nn.Module | None = None, config: str | None = None) -> OneStageTracker:
    """Registry factory: the local model of the shipped two-stage checkpoint, or of `checkpoint`.

    Never falls back to untrained weights; an untrained local model only when asked, by
    `config` (a configuration name: timing, tests). `backbone` is shared instead of loaded.
    """
    from tracker.checkpoint import resolve_checkpoint

    if config is not None:
        from tracker.config import get_config
        from tracker.local_model import LocalModel

        if checkpoint is not None:
            raise ValueError("give a checkpoint or a configuration of untrained models, not both")
        return OneStageTracker(LocalModel(get_config(config).local, backbone=backbone), device, precision)

    path = resolve_checkpoint(
        checkpoint, "two-stage", DEFAULT_CONFIG_NAME,
        tracker="1-stage tracker (the two-stage tracker's local model)",
        train_command="pixtrack train iterative --data DIR --out DIR",
    )
    return OneStageTracker.from_checkpoint(path, device=device, precision=precision, backbone=backbone)


