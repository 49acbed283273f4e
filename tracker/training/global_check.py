"""Does a trained global model follow its input? The check run after every global stage.

Why: at a small budget the global model can settle on one box whatever map it is fed; Eq. 4
then sits on a plateau and the loss curve alone does not say so. Step 5 of Sec. 5.1 trains
the final local model on the ROIs that box places, so the whole checkpoint fails (the fold-0
CPU run of 2026-11-26 did exactly that). The check tracks ground-truth clips and compares the
distance of the model's box centres to the object's centres with that of the best fixed
centre (the mean object centre): a model no closer than one fixed box has learnt nothing of
its input.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from tracker.roi import box_from_mask

FOLLOWS_INPUT_RATIO = 0.8
"""A model whose centre error is below this fraction of the fixed centre's follows its input."""


@dataclass(frozen=True)
class PlacementCheck:
    """Mean centre errors over the counted frames, in frame widths."""

    model_error: float
    fixed_error: float
    """Error of the best fixed centre: the mean object centre of the same frames."""
    frames: int

    @property
    def ratio(self) -> float:
        return self.model_error / max(self.fixed_error, 1e-12)

    @property
    def follows_input(self) -> bool:
        return self.ratio < FOLLOWS_INPUT_RATIO

    def describe(self) -> str:
        verdict = ("follows its input" if self.follows_input else
                   "does NOT follow its input: it places boxes no better than one fixed box would; "
                   "ROIs it places (Sec. 5.1 step 5) will be wrong. A lower Eq. 4 object weight "
                   "(--object-weight 5 escaped this on a CPU budget) or longer training (--global-iterations, "
                   "a GPU) before trusting the result")
        return (f"box centres {self.model_error:.3f} frame widths from the object's, a fixed centre "
                f"{self.fixed_error:.3f} (ratio {self.ratio:.2f}, {self.frames} frames): {verdict}")

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**asdict(self), "ratio": self.ratio, "follows_input": self.follows_input},
                                   indent=1) + "\n")
        return path


def _object_centres(targets: Tensor) -> tuple[Tensor, Tensor]:
    """Target maps [B, T, 1, S, S] -> (centres [B, T, 2] in [-1, 1], visible [B, T])."""
    masks = targets[:, :, 0] >= 0.5
    size = masks.shape[-1]
    boxes = box_from_mask(masks)  # [B, T, 3] in map pixels
    return boxes[..., :2] * (2.0 / size) - 1.0, masks.flatten(2).any(dim=2)


def _distance(a: Tensor, b: Tensor, aspect: Tensor) -> Tensor:
    """Distance in frame widths between normalised centres: x spans 2 units of the width,
    y 2 units of the height = width / aspect."""
    dx = (a[..., 0] - b[..., 0]) / 2.0
    dy = (a[..., 1] - b[..., 1]) / (2.0 * aspect)
    return torch.sqrt(dx * dx + dy * dy)


@torch.no_grad()
def check_placement(model: nn.Module, dataset: Dataset, *, warmup: int, first_frame: int,
                    batch_size: int = 8, device: torch.device | str = "cpu") -> PlacementCheck:
    """Run `model` (a `GlobalModel`) over `dataset` (a ground-truth `GlobalClipDataset`) as
    training does (warm-up, then one step a frame) and measure its centres against the
    targets' from frame `first_frame` on (Eq. 4's counted frames)."""
    from tracker.training.global_trainer import GlobalUnroll

    was_training = model.training
    model.eval()
    unroll = GlobalUnroll(model, warmup)
    predicted, actual, aspects = [], [], []
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            inputs = batch["inputs"].to(device)
            aspect = batch["aspect"].to(device)
            theta = unroll(inputs, aspect).float()
            centres, visible = _object_centres(batch["targets"].to(device))
            counted = visible.clone()
            counted[:, : first_frame - 1] = False
            predicted.append(theta[..., :2][counted])  # (tx, ty): the box centre in [-1, 1]
            actual.append(centres[counted])
            aspects.append(aspect[:, None].expand_as(counted)[counted])
    finally:
        model.train(was_training)
    if not predicted or sum(len(p) for p in predicted) == 0:
        raise ValueError("placement check: no frame with a visible object to measure")
    predicted, actual, aspects = torch.cat(predicted), torch.cat(actual), torch.cat(aspects)
    fixed = actual.mean(dim=0, keepdim=True).expand_as(actual)
    return PlacementCheck(
        model_error=float(_distance(predicted, actual, aspects).mean()),
        fixed_error=float(_distance(fixed, actual, aspects).mean()),
        frames=len(actual),
    )
