"""Training the local segmentation model on Sec. 3.3 clips with Eq. 2.

A batch is either cached features (`FeatureCache`: `plain`, `masked`, `masks`) or clips of
ROI images (`LocalClipDataset`: `images`, `masks`), whose pool4 features are then computed
on the fly by the frozen backbone (the usual choice on a GPU). Either way one clip runs as at
tracking time: memory from frame 0 (plain and masked pool4, Sec. 3.2), then one ConvLSTM
step a frame for frames 1..T, whose logits meet z_1..z_T in Eq. 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from tracker.training.hardware import Runtime
from tracker.training.loop import LoopConfig, run_loop
from tracker.training.loss_log import LossLog
from tracker.training.losses import LOCAL_BETA, LOCAL_LAMBDA, LossParts, local_loss
from tracker.local_model import align_state
from tracker.roi import reframe
from tracker.training.prior_maps import PriorConfig, deformed_priors, own_prediction_clips


@dataclass(frozen=True)
class LocalLossConfig:
    """Eq. 2's constants and normalisation (see `tracker.training.losses`)."""

    lam: float = LOCAL_LAMBDA
    beta: float = LOCAL_BETA
    reduction: str = "mean"


class LocalUnroll(nn.Module):
    """A whole clip through a `LocalModel`, as one forward (what DDP needs to sync gradients).

    plain `[B, T + 1, 512, s, s]`, masked `[B, 512, s, s]` -> logits `[B, T, 1, S, S]`.
    For a model with a prior: `priors` `[B, T, 1, S, S]` (frame k's at k - 1), and where
    `own` `[B]` is set, frames 2..T read the clip's own previous map instead, moved from
    ROI k - 1 into ROI k by `placement` `[B, T + 1, 3]`. A model with `align_state` gets its
    state moved the same way before each step, as the tracker does; one with
    `first_frame_matching` compares each frame with the first ROI (`reference_mask` `[B, 1, S, S]`).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, plain: Tensor, masked: Tensor, priors: Tensor | None = None,
                placement: Tensor | None = None, own: Tensor | None = None,
                reference_mask: Tensor | None = None) -> Tensor:
        state = self.model.init_memory_from_features(plain[:, 0], masked)
        reference = None if reference_mask is None else self.model.reference(plain[:, 0], reference_mask)
        aligned = getattr(self.model.config, "align_state", False)
        # Read once, not at every step: a device sync per frame otherwise (CUDA).
        any_own = priors is not None and own is not None and bool(own.any())
        logits: list[Tensor] = []
        for k in range(1, plain.shape[1]):
            if aligned:
                state = align_state(state, placement[:, k - 1], placement[:, k])
            prior = None if priors is None else priors[:, k - 1]
            if any_own and k > 1:
                previous = torch.sigmoid(logits[-1].detach().float())
                moved = reframe(previous, placement[:, k - 1], placement[:, k]).to(prior.dtype)
                prior = torch.where(own[:, None, None, None], moved, prior)
            step, state = self.model.step_from_features_logits(plain[:, k], state, prior, reference)
            logits.append(step)
        return torch.stack(logits, dim=1)


def clip_geometry(model: nn.Module, batch: dict[str, Tensor], masks: Tensor, config: PriorConfig,
                  generator: torch.Generator) -> dict[str, Tensor]:
    """LocalUnroll's arguments beyond the features: {} for a Table 1 model; the ROIs for one that
    aligns its state; those and the priors for one that reads the previous map; the first
    ROI's mask for one that matches cells to it."""
    options = model.config.beyond_paper
    # First-frame matching reads the first ROI's features (in the clip) and its mask.
    extra = {"reference_mask": masks[:, 0]} if model.config.first_frame_matching else {}
    if not (model.config.uses_prior or model.config.align_state):
        return extra
    if "placement" not in batch:
        raise ValueError(f"this local model ({', '.join(options)}) needs each clip frame's ROI ('placement'): "
                         "rebuild the feature cache with this version")
    placement = batch["placement"].to(masks.device).float()
    if not model.config.uses_prior:
        return {**extra, "placement": placement}
    own = own_prediction_clips(masks.shape[0], config, generator).to(masks.device)
    return {**extra, "priors": deformed_priors(masks, placement, config, generator), "placement": placement,
            "own": own}


@torch.no_grad()
def clip_features(model: nn.Module, batch: dict[str, Tensor], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(plain, masked, masks) of a batch on `device`, from the cache or through the backbone."""
    masks = batch["masks"].to(device, non_blocking=True).float()
    if "plain" in batch:
        return batch["plain"].to(device, non_blocking=True), batch["masked"].to(device, non_blocking=True), masks
    images = batch["images"].to(device, non_blocking=True).float()
    batch_size, frames = images.shape[:2]
    plain0, masked = model.memory_features(images[:, 0], masks[:, 0])
    rest = model.features(images[:, 1:].flatten(0, 1)).reshape(batch_size, frames - 1, *plain0.shape[1:])
    return torch.cat((plain0[:, None], rest), dim=1), masked, masks


def train_local(
    model: nn.Module,
    data: Dataset,
    loop: LoopConfig,
    runtime: Runtime,
    *,
    batch_size: int = 4,
    workers: int = 0,
    seed: int = 0,
    loss: LocalLossConfig = LocalLossConfig(),
    prior: PriorConfig = PriorConfig(),
    log: LossLog | None = None,
    resume_path: str | os.PathLike | None = None,
    validation: Dataset | None = None,
    description: str = "local",
    progress: bool = True,
) -> list[float]:
    """Train `model` (a `LocalModel`, trained in place) with Eq. 2; returns logged mean losses.

    `prior`: how a model with a previous-map prior gets its priors (deformation seeded by
    (seed, iteration), so a resumed run draws what an uninterrupted one would).
    """
    model.to(runtime.device)
    unroll = runtime.wrap(LocalUnroll(model))

    def forward_loss(batch: dict[str, Tensor], iteration: int) -> LossParts:
        plain, masked, masks = clip_features(model, batch, runtime.device)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + iteration)
        extra = clip_geometry(model, batch, masks, prior, generator)
        with runtime.autocast():
            logits = unroll(plain, masked, **extra)
        return local_loss(logits, masks[:, 1:], lam=loss.lam, beta=loss.beta, reduction=loss.reduction)

    def batches(epoch: int):
        return runtime.loader(data, batch_size, seed=seed, epoch=epoch, workers=workers)

    validate = None
    if validation is not None:
        def validate() -> float:
            return evaluate_local(model, validation, runtime, batch_size=batch_size, loss=loss, prior=prior)

    return run_loop(unroll, forward_loss, batches, loop, runtime, log=log, resume_path=resume_path,
                    validate=validate, description=description, progress=progress)


@torch.no_grad()
def evaluate_local(model: nn.Module, data: Dataset, runtime: Runtime, *, batch_size: int = 4,
                   loss: LocalLossConfig = LocalLossConfig(), prior: PriorConfig = PriorConfig()) -> float:
    """Mean Eq. 2 loss of `model` over `data` (every item once, in order; priors drawn from seed 0)."""
    unroll = LocalUnroll(model).eval()
    total, count = torch.zeros((), device=runtime.device), 0
    generator = torch.Generator().manual_seed(0)
    for batch in runtime.loader(data, batch_size, seed=0, epoch=0, shuffle=False):
        plain, masked, masks = clip_features(model, batch, runtime.device)
        extra = clip_geometry(model, batch, masks, prior, generator)
        with runtime.autocast():
            logits = unroll(plain, masked, **extra)
        parts = local_loss(logits, masks[:, 1:], lam=loss.lam, beta=loss.beta, reduction=loss.reduction)
        total += parts.total * plain.shape[0]
        count += plain.shape[0]
    return float(runtime.average(total / max(count, 1)))
