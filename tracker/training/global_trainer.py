"""Training the global attention model with Eq. 4 (paper Sec. 4, Sec. 5.1 steps 2 and 4).

What the model is trained to output: theta_t whose box (the anchor square moved and scaled,
`tracker.anchor.render_anchor`) encloses the object of frame t, i.e. the object's square box
(see `tracker.training.losses` for why the weighted L2 leads there). The tracker doubles that
box into the local ROI, as the local model's training clips do (Sec. 3.3).

Warm-up: `TwoStageTracker.init` feeds the first mask to the global model `warmup` times (5)
before tracking. Training does the same (the clip's Z_0 `warmup` times, outputs unused), so
the model is trained in the state it is used in; the loss then counts frames
t = first_frame..T as in the paper (i = 5 of T = 32). `warmup=0` is the paper's literal set-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from tracker.anchor import render_anchor
from tracker.training.curriculum import DilationSchedule, dilate
from tracker.training.hardware import Runtime
from tracker.training.loop import LoopConfig, run_loop
from tracker.training.loss_log import LossLog
from tracker.training.losses import (
    GLOBAL_FIRST_FRAME,
    GLOBAL_LAMBDA,
    GLOBAL_OBJECT_WEIGHT,
    LossParts,
    global_loss,
)

TRACKER_WARMUP = 5
"""`TwoStageTracker`'s default warm-up: the first mask fed this many times at init."""


@dataclass(frozen=True)
class GlobalLossConfig:
    """Eq. 4's constants, the burn-in, the warm-up and the dilation curriculum."""

    object_weight: float = GLOBAL_OBJECT_WEIGHT
    lam: float = GLOBAL_LAMBDA
    first_frame: int = GLOBAL_FIRST_FRAME
    warmup: int = TRACKER_WARMUP
    dilation: DilationSchedule = field(default_factory=DilationSchedule)


class GlobalUnroll(nn.Module):
    """A clip through a `GlobalModel` as one forward (what DDP needs to sync gradients).

    inputs `[B, T, 1, S, S]` (Z_0..Z_{T-1}), aspect `[B]` -> theta `[B, T, 3]` (theta_1..theta_T).
    """

    def __init__(self, model: nn.Module, warmup: int = TRACKER_WARMUP) -> None:
        super().__init__()
        self.model, self.warmup = model, warmup

    def forward(self, inputs: Tensor, aspect: Tensor) -> Tensor:
        state = self.model.initial_state(inputs.shape[0], inputs.device)
        for _ in range(self.warmup):
            _, state = self.model.step(inputs[:, 0], aspect, state)
        thetas = []
        for t in range(inputs.shape[1]):
            theta, state = self.model.step(inputs[:, t], aspect, state)
            thetas.append(theta)
        return torch.stack(thetas, dim=1)


def clip_loss(theta: Tensor, targets: Tensor, aspect: Tensor, loss: GlobalLossConfig) -> LossParts:
    """Eq. 4 of predicted thetas against target maps: the anchor rendered in float32."""
    batch, frames = theta.shape[:2]
    size = targets.shape[-1]
    theta = theta.float()
    rendered = render_anchor(theta.reshape(-1, 3), aspect.float().repeat_interleave(frames), size)
    rendered = rendered.reshape(batch, frames, 1, size, size)
    return global_loss(theta, rendered, targets, object_weight=loss.object_weight, lam=loss.lam,
                       first_frame=loss.first_frame)


def train_global(
    model: nn.Module,
    data: Dataset,
    loop: LoopConfig,
    runtime: Runtime,
    *,
    batch_size: int = 8,
    seed: int = 0,
    loss: GlobalLossConfig = GlobalLossConfig(),
    log: LossLog | None = None,
    resume_path: str | os.PathLike | None = None,
    description: str = "global",
    progress: bool = True,
) -> list[float]:
    """Train `model` (a `GlobalModel`, in place) with Eq. 4 on `data` (a `GlobalClipDataset`).

    Inputs are dilated by `loss.dilation.kernel(iteration)`; targets never are.
    """
    model.to(runtime.device)
    unroll = runtime.wrap(GlobalUnroll(model, loss.warmup))

    def forward_loss(batch: dict[str, Tensor], iteration: int) -> LossParts:
        inputs = batch["inputs"].to(runtime.device, non_blocking=True)
        targets = batch["targets"].to(runtime.device, non_blocking=True)
        aspect = batch["aspect"].to(runtime.device, non_blocking=True)
        inputs = dilate(inputs, loss.dilation.kernel(iteration))
        with runtime.autocast():
            theta = unroll(inputs, aspect)
        return clip_loss(theta, targets, aspect, loss)

    def batches(epoch: int):
        return runtime.loader(data, batch_size, seed=seed, epoch=epoch)

    return run_loop(unroll, forward_loss, batches, loop, runtime, log=log, resume_path=resume_path,
                    description=description, progress=progress)
