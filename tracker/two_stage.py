"""The two-stage tracker online: Algorithm 1 of the paper behind the tracker interface.

    init:  object box from the first mask; ROI = that box doubled (clipped to [56, 672]);
           (`pixtrack-plus`: a copy of the local model fine-tuned on the first ROI first,
           `tracker.fine_tuning`)
           the local model's memory from the ROI image and mask (Sec. 3.2); theta_old = the
           object box as theta; the global model's state warmed up on the first mask.
    track: theta_t  = global model (previous full-frame map resized to 224x224, aspect W/H)
           theta_est = beta * theta_t + (1 - beta) * theta_old       (beta = 0.8)
           ROI = box(theta_est) doubled, clipped, centre kept in the frame
           map = paste(local model(crop(frame, ROI)), the same ROI)  (DESIGN.md: not theta_t)
           (a local model with a previous-map prior also reads crop(previous map, ROI); one
           with `align_state` first gets its memory moved from the last ROI into this one)

Choices where the paper is silent:
- Warm-up: the global model is trained with its loss counted only from frame 5 of each clip
  (it needs a burn-in). At `init` it is fed the first mask `warmup` times (default 5), as if
  the object had stood still for that long before the sequence started; `warmup=0` follows
  Algorithm 1 literally.
- The global model's input: Fig. 1 calls it a binary image. The previous probability map is
  binarised (prob >= `map_threshold`, 0.5, as `evaluation.metrics.binarize`) before it is
  resized; `map_threshold=None` feeds the
  probabilities themselves. Training must feed the same (tracker.roi.resize_map of 0/1 maps).
- theta_old <- theta_est after each step, with theta_est's box kept sane first: centre inside
  the frame, side within [28, 336] pixels (half the ROI's range). An object that leaves the
  frame is therefore waited for with a ROI on the border it left by, never lost to infinity.
- A ROI given from outside (Table 2 protocol) replaces the global model's ROI for cropping and
  pasting, as given (not clipped to [56, 672]); the global model still runs, so its state
  and theta stay current and the debug fields keep meaning the same thing (its cost is
  small next to the local model's).

Per `track`: one frame goes host -> device, one map device -> host; nothing else waits for
the device. The state keeps every tensor on the device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tracker import roi as geometry
from tracker.device import box_to_device, frame_to_device
from tracker.fine_tuning import FineTuning, fine_tune_local
from tracker.frames import as_rgb, check_frame_size, first_frame_on_device
from tracker.interface import Box
from tracker.local_model import align_state
from tracker.precision import check_precision, tracking_step

DEFAULT_CONFIG_NAME = "lite"
"""The configuration of the shipped checkpoint (checkpoints/two-stage-lite.safetensors)."""


@dataclass(frozen=True)
class TwoStageState:
    """Everything one sequence's tracking carries from frame to frame, on the device.

    Debug fields, for plots (ROIs drawn over frames, Fig. 3's memory cells): `roi` is the box
    that cropped (and pasted) the last frame, `theta` the global model's last raw output,
    `theta_est` the smoothed one, `local` the local model's (h, c) per ConvLSTM layer.
    """

    frame_size: tuple[int, int]
    """(H, W) of the first frame; every later frame must match."""
    frame_index: int
    """0 after `init`, t after the t-th `track`."""
    local: Any
    """The local model's LocalState: (h, c) of each ConvLSTM layer."""
    global_state: Any
    """The global model's recurrent state."""
    global_input: Tensor
    """[1, 1, 224, 224]: the previous map as the global model will read it next."""
    aspect: Tensor
    """[1]: W / H, fed to the global model's last layer."""
    theta: Tensor
    """[1, 3]: theta_t of the last step (after init: the last warm-up output)."""
    theta_est: Tensor
    """[1, 3]: the smoothed theta of the last step, = theta_old of the next."""
    roi: Tensor
    """[1, 3]: (cx, cy, side) in pixels of the ROI that cropped the last frame."""
    previous_map: Tensor | None = None
    """[1, 1, H, W]: the last full-frame map (after init: the first mask), kept only for a
    local model that reads it as a prior (`pixtrack-plus`)."""
    reference: Any = None
    """The first ROI as a first-frame-matching local model compares with it (`LocalModel.reference`)."""
    tuned_local: nn.Module | None = None
    """This sequence's copy of the local model fine-tuned on its first frame (`tracker.fine_tuning`),
    None without fine-tuning; the tracker's own model is never changed."""
    tuning_losses: Tensor | None = None
    """Eq. 2's loss at each fine-tuning iteration, before its update (on the device)."""

    def snapshot(self) -> dict[str, Any]:
        """CPU copies of the debug fields (a device sync: for plots, not for the tracking loop)."""
        memory = [tuple(t.detach().cpu() for t in pair) for pair in _memory_pairs(self.local)]
        return {
            "frame_index": self.frame_index,
            "roi": self.roi[0].cpu().tolist(),
            "theta": self.theta[0].cpu().tolist(),
            "theta_est": self.theta_est[0].cpu().tolist(),
            "memory": memory,
        }


def _memory_pairs(local_state: Any) -> list[tuple[Tensor, Tensor]]:
    """(h, c) per ConvLSTM layer from a LocalState, whatever its exact container."""
    layers = getattr(local_state, "layers", local_state)
    return [tuple(pair) for pair in layers]


class TwoStageTracker:
    """Algorithm 1 with a global and a local model; see the module docstring."""

    name = "two-stage"

    def __init__(
        self,
        local_model: nn.Module,
        global_model: nn.Module,
        device: str | torch.device | None = None,
        beta: float = 0.8,
        warmup: int = 5,
        map_threshold: float | None = 0.5,
        precision: str = "fp32",
        tuning: FineTuning | None = None,
    ) -> None:
        from tracker.device import resolve_device

        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta = {beta}: the smoothing weight of theta_t must lie in [0, 1]")
        if warmup < 0:
            raise ValueError(f"warmup = {warmup}: must be >= 0 steps")
        if map_threshold is not None and not 0.0 <= map_threshold <= 1.0:
            raise ValueError(f"map_threshold = {map_threshold}: must lie in [0, 1] (or be None)")
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.local_model = local_model.to(self.device).eval()
        self.global_model = global_model.to(self.device).eval()
        # Crop and global-input sizes follow the models' configurations (224 in `paper` and `lite`).
        self.roi_size = int(getattr(getattr(local_model, "config", None), "roi_size", geometry.ROI_SIZE))
        self.global_size = int(getattr(getattr(global_model, "config", None), "input_size", geometry.ROI_SIZE))
        local_config = getattr(local_model, "config", None)
        self.uses_prior = bool(getattr(local_config, "uses_prior", False))
        self.align_state = bool(getattr(local_config, "align_state", False))
        self.matches_first_frame = bool(getattr(local_config, "first_frame_matching", 0))
        self.beta = float(beta)
        self.warmup = int(warmup)
        self.map_threshold = map_threshold
        self.tuning = tuning
        """First-frame fine-tuning of the local model at `init` (`pixtrack-plus`); None: the paper's
        tracker, offline weights only."""

    def settings(self) -> dict[str, Any]:
        """What changes its maps besides the weights (the run cache keys runs by it)."""
        return {"beta": self.beta, "warmup": self.warmup, "map_threshold": self.map_threshold,
                "tuning": None if self.tuning is None else dataclasses.asdict(self.tuning)}

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device | None = None,
        backbone: nn.Module | None = None,
        **options: Any,
    ) -> TwoStageTracker:
        """Both models rebuilt from the configuration stored in `path`, weights loaded.

        `backbone`: a VGG16Pool4 to share (e.g. with a baseline in the same process); by
        default the one the stored configuration names, from the weights cache. `options` go
        to the constructor (beta, warmup, map_threshold, precision, tuning).
        """
        from tracker.checkpoint import load_checkpoint, load_weights
        from tracker.config import ModelConfig
        from tracker.global_model import GlobalModel
        from tracker.local_model import LocalModel

        config_dict, states, _ = load_checkpoint(path, "two-stage")
        config = ModelConfig.from_dict(config_dict)
        local_model = LocalModel(config.local, backbone=backbone)
        global_model = GlobalModel(config.global_)
        load_weights(local_model, states["local"], path, "local")
        load_weights(global_model, states["global"], path, "global")
        return cls(local_model, global_model, device=device, **options)

    # --- the interface ------------------------------------------------------------------

    @tracking_step
    def init(self, frame: np.ndarray, mask: np.ndarray) -> TwoStageState:
        """Start a sequence on its first frame and object mask (Algorithm 1, lines 1-2)."""
        frame_size, image, mask_t = first_frame_on_device(frame, mask, self.device)

        object_box = geometry.box_from_mask(mask_t[:, 0])  # [1, 3]
        roi = geometry.roi_from_object_box(object_box)
        roi_image, roi_mask = geometry.crop(image, roi, self.roi_size), geometry.crop(mask_t, roi, self.roi_size)
        tuned_local, tuning_losses = None, None
        if self.tuning is not None and self.tuning.iterations > 0:
            with torch.autocast(self.device.type, enabled=False):  # trained in fp32 whatever the precision
                tuned_local, tuning_losses = fine_tune_local(self.local_model, image, mask_t, roi, self.tuning)
        local_model = self.local_model if tuned_local is None else tuned_local
        reference = None
        if self.matches_first_frame:
            plain, masked = local_model.memory_features(roi_image, roi_mask)
            local_state = local_model.init_memory_from_features(plain, masked)
            reference = local_model.reference(plain, roi_mask)
        else:
            local_state = local_model.init_memory(roi_image, roi_mask)

        aspect = torch.full((1,), frame_size[1] / frame_size[0], device=self.device)
        global_input = geometry.resize_map(mask_t, self.global_size)
        global_state = self.global_model.initial_state(1, self.device)
        theta_old = geometry.box_to_theta(object_box, frame_size)
        theta = theta_old
        for _ in range(self.warmup):
            theta, global_state = self.global_model.step(global_input, aspect, global_state)
        return TwoStageState(
            frame_size=frame_size,
            frame_index=0,
            local=local_state,
            global_state=global_state,
            global_input=global_input,
            aspect=aspect,
            theta=theta,
            theta_est=theta_old,
            roi=roi,
            previous_map=mask_t.float() if self.uses_prior else None,
            reference=reference,
            tuned_local=tuned_local,
            tuning_losses=tuning_losses,
        )

    @tracking_step
    def track(self, frame: np.ndarray, state: TwoStageState, roi: Box | None = None) -> tuple[np.ndarray, TwoStageState]:
        """One frame -> its full-frame probability map, HxW float32 (Algorithm 1, lines 4-8)."""
        if not isinstance(state, TwoStageState):
            raise TypeError(f"state must come from TwoStageTracker.init, got {type(state).__name__}")
        frame = as_rgb(frame)
        check_frame_size(frame, state.frame_size)
        given = None if roi is None else box_to_device(roi, self.device)
        image = frame_to_device(frame, self.device)

        theta, global_state = self.global_model.step(state.global_input, state.aspect, state.global_state)
        theta_est = self.beta * theta + (1.0 - self.beta) * state.theta_est
        object_box = self._sane_object_box(geometry.theta_to_box(theta_est, state.frame_size), state.frame_size)
        theta_est = geometry.box_to_theta(object_box, state.frame_size)
        box = geometry.roi_from_object_box(object_box) if given is None else given

        prob_roi, local_state = self.segment_roi(geometry.crop(image, box, self.roi_size), box, state)
        prob = geometry.paste(prob_roi, box, state.frame_size)
        next_input = prob if self.map_threshold is None else (prob >= self.map_threshold).to(prob.dtype)
        new_state = dataclasses.replace(
            state,
            frame_index=state.frame_index + 1,
            local=local_state,
            global_state=global_state,
            global_input=geometry.resize_map(next_input, self.global_size),
            theta=theta,
            theta_est=theta_est,
            roi=box,
            previous_map=prob.float() if self.uses_prior else None,
        )
        return prob[0, 0].float().cpu().numpy(), new_state

    # --- helpers ------------------------------------------------------------------------

    def segment_roi(self, roi_image: Tensor, box: Tensor, state: TwoStageState) -> tuple[Tensor, Any]:
        """The local model on the ROI image cropped at `box`: (map [1, 1, S, S], its new state),
        with the options beyond the paper its configuration asks for (memory moved from the
        last ROI, the previous map cropped at `box`)."""
        memory = align_state(state.local, state.roi, box) if self.align_state else state.local
        # Only what the model reads is passed: wrappers of Table 1 models take (image, state).
        inputs: list[Any] = [roi_image, memory]
        if state.previous_map is not None or state.reference is not None:
            inputs.append(None if state.previous_map is None else geometry.crop(state.previous_map, box, self.roi_size))
        if state.reference is not None:
            inputs.append(state.reference)
        local_model = self.local_model if state.tuned_local is None else state.tuned_local
        return local_model.step(*inputs)

    @staticmethod
    def _sane_object_box(box: Tensor, frame_size: tuple[int, int]) -> Tensor:
        """Centre inside the frame, side within half the ROI range (see the module docstring)."""
        cx, cy, side = geometry.keep_in_frame(box, frame_size).unbind(-1)
        side = side.clamp(geometry.MIN_ROI_SIDE / geometry.ROI_SCALE, geometry.MAX_ROI_SIDE / geometry.ROI_SCALE)
        return torch.stack((cx, cy, side), dim=-1)


def build(checkpoint: str | None = None, device: str | None = None, precision: str = "fp32",
          backbone: nn.Module | None = None, config: str | None = None,
          tuning: FineTuning | None = None) -> TwoStageTracker:
    """Registry factory: the shipped checkpoint unless `checkpoint` names another file.

    Never falls back to untrained weights: a missing default checkpoint is an error saying
    how to make one. Untrained models only when asked, by `config` (a configuration name:
    timing, tests); `backbone` is shared instead of loading one (see tracker.registry).
    `tuning`: first-frame fine-tuning of the local model (`tracker.fine_tuning`); None: none,
    the paper's tracker.
    """
    if config is not None:
        from tracker.config import get_config
        from tracker.global_model import GlobalModel
        from tracker.local_model import LocalModel

        if checkpoint is not None:
            raise ValueError("give a checkpoint or a configuration of untrained models, not both")
        models = get_config(config)
        return TwoStageTracker(LocalModel(models.local, backbone=backbone), GlobalModel(models.global_),
                               device=device, precision=precision, tuning=tuning)
    from tracker.checkpoint import resolve_checkpoint

    path = resolve_checkpoint(
        checkpoint, "two-stage", DEFAULT_CONFIG_NAME,
        tracker="two-stage tracker", train_command="pixtrack train iterative --data DIR --out DIR",
    )
    return TwoStageTracker.from_checkpoint(path, device=device, backbone=backbone, precision=precision, tuning=tuning)


def build_plus(checkpoint: str | None = None, device: str | None = None, precision: str = "fp32",
               backbone: nn.Module | None = None, config: str | None = None,
               tuning_iterations: int | None = None) -> TwoStageTracker:
    """Registry factory of `pixtrack-plus`: `build` with first-frame fine-tuning at
    `FineTuning.plus()`; `tuning_iterations` replaces its count (0: no fine-tuning)."""
    tuning = FineTuning.plus()
    if tuning_iterations is not None:
        tuning = dataclasses.replace(tuning, iterations=tuning_iterations) if tuning_iterations > 0 else None
    return build(checkpoint, device, precision, backbone, config, tuning=tuning)
