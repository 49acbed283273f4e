"""First-frame fine-tuning: a tracker's trained layers adapted to one sequence at `init`.

The FCN baseline (paper Sec. 3.4) is fine-tuned on the first frame, and that is most of its
lead over the offline-trained two-stage models on held-out footage (docs/pixtrack-plus.md).
`pixtrack-plus` does the same for the local model: clips of perturbed copies of the first ROI
stand in for the next frames, and the local model, starting from the memory M-CNN made of the
first ROI, is trained on them with Eq. 2's loss. M-CNN is kept as trained (it made that
memory; the first frame cannot teach it anything its own output does not already say) and
the backbone is frozen, so the perturbed ROIs' pool4 features are computed once and each
iteration runs only the head.

The tuned weights live in a copy of the model kept in the sequence's state, never in the
tracker's model, so one sequence's fine-tuning cannot leak into the next.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tracker import roi as geometry
from tracker.training.losses import local_loss


@dataclass(frozen=True)
class FineTuning:
    """How a model is fine-tuned on a test sequence's first frame (paper Sec. 3.4: "small
    learning rate and few iterations"; the values are not published)."""

    iterations: int = 20
    lr: float = 1e-4
    """Adam's learning rate."""
    augmentations: int = 4
    """ROIs (clips, with `steps`) per iteration: the first frame's ROI itself and augmentations - 1
    perturbed copies (the head's cost grows with them: ~3 GFLOP a ROI an iteration for `lite`)."""
    scale_range: tuple[float, float] = (0.9, 1.1)
    """Perturbation of the ROI side (Sec. 3.3, step 3)."""
    max_shift: float = 10.0
    """Largest centre shift in pixels of the 224x224 ROI image, in x and in y (Sec. 3.3, step 3)."""
    seed: int = 0
    """The perturbations are drawn from this seed at every init: a sequence is tuned the same way
    whatever was tracked before it."""
    steps: int = 1
    """Frames of each perturbed clip a recurrent model is tuned on (each frame its own
    perturbation of the first ROI); 1 for a model without memory (the FCN reads one ROI)."""

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"fine-tuning iterations = {self.iterations}: must be >= 0")
        if not self.lr > 0:
            raise ValueError(f"fine-tuning lr = {self.lr}: must be > 0")
        if self.augmentations < 1:
            raise ValueError(f"fine-tuning augmentations = {self.augmentations}: must be >= 1 (the ROI itself)")
        low, high = self.scale_range
        if not 0 < low <= 1 <= high:
            raise ValueError(f"fine-tuning scale_range = {self.scale_range}: need 0 < low <= 1 <= high")
        if self.max_shift < 0:
            raise ValueError(f"fine-tuning max_shift = {self.max_shift}: must be >= 0")
        if self.steps < 1:
            raise ValueError(f"fine-tuning steps = {self.steps}: must be >= 1")

    @classmethod
    def plus(cls) -> FineTuning:
        """What `pixtrack-plus` tunes its local model with (chosen on held-out fold 0,
        docs/pixtrack-plus.md): the FCN's 20 iterations and 4 ROIs doubled, twice its learning
        rate, perturbations far beyond Sec. 3.3's (side x0.6..1.4, centre +-60 ROI pixels) so
        that they stand for the next frames' motion, and 3-frame clips so that the memory
        learns to keep the object through steps."""
        return cls(iterations=40, lr=2e-4, augmentations=8, scale_range=(0.6, 1.4), max_shift=60.0, steps=3)


def perturbed_rois(roi: Tensor, tuning: FineTuning) -> Tensor:
    """`roi` [1, 3] and `augmentations - 1` copies scaled by U(scale_range) and shifted by
    U(-max_shift, max_shift) ROI-image pixels: [augmentations, 3], on `roi`'s device."""
    generator = torch.Generator().manual_seed(tuning.seed)
    count = tuning.augmentations - 1
    low, high = tuning.scale_range
    scale = low + (high - low) * torch.rand(count, generator=generator)
    shift = (2 * torch.rand(count, 2, generator=generator) - 1) * tuning.max_shift
    scale, shift = scale.to(roi.device, roi.dtype), shift.to(roi.device, roi.dtype)
    side = roi[:, 2] * scale  # [count]
    centre = roi[:, :2] + shift * (side / geometry.ROI_SIZE)[:, None]
    return torch.cat((roi, torch.cat((centre, side[:, None]), dim=1)), dim=0)


FROZEN_LOCAL_PREFIXES = ("backbone.", "mcnn.")
"""Parameters of the local model that first-frame fine-tuning leaves as trained."""


def fine_tune_local(model: nn.Module, image: Tensor, mask: Tensor, roi: Tensor,
                    tuning: FineTuning) -> tuple[nn.Module, Tensor]:
    """A copy of the local model (sharing its frozen backbone) fine-tuned on one frame's ROI.

    `image` [1, 3, H, W] RGB 0..255 and `mask` [1, 1, H, W] in [0, 1] on the model's device,
    `roi` [1, 3] in pixels. Each of `augmentations` clips: memory from the first ROI
    (`init_memory`), then `steps` steps on perturbed crops, Eq. 2 against their cropped masks.
    A model with a previous-map prior reads the previous step's mask moved into the step's ROI
    and deformed as in training (`tracker.training.prior_maps`); one with first-frame matching,
    the first ROI's reference. Returns the tuned copy (in eval mode) and the loss of each iteration
    `[iterations]`, before its update.
    """
    from tracker.training.prior_maps import PriorConfig, deformed_priors

    size, steps = model.config.roi_size, tuning.steps
    clips = tuning.augmentations
    boxes = perturbed_rois(roi, dataclasses.replace(tuning, augmentations=clips * steps))  # [clips * steps, 3]
    images = geometry.crop(image.expand(len(boxes), -1, -1, -1), boxes, size)
    targets = geometry.crop(mask.expand(len(boxes), -1, -1, -1), boxes, size).clamp(0, 1)
    first_image, first_mask = geometry.crop(image, roi, size), geometry.crop(mask, roi, size).clamp(0, 1)
    tuned = copy.deepcopy(model, memo={id(model.backbone): model.backbone})
    config = tuned.config
    with torch.no_grad():
        pool4 = tuned.features(images).unflatten(0, (clips, steps))
        plain, masked = tuned.memory_features(first_image, first_mask)
        memory = tuple((h.expand(clips, -1, -1, -1), c.expand(clips, -1, -1, -1))
                       for h, c in tuned.init_memory_from_features(plain, masked))
        targets = targets.unflatten(0, (clips, steps))
        priors = reference = None
        if config.uses_prior:  # step k reads step k - 1's mask (the first ROI's before step 1), deformed
            clip_masks = torch.cat((first_mask[None].expand(clips, -1, -1, -1, -1), targets), dim=1)
            placement = torch.cat((roi[None].expand(clips, -1, -1), boxes.unflatten(0, (clips, steps))), dim=1)
            generator = torch.Generator().manual_seed(tuning.seed)
            priors = deformed_priors(clip_masks, placement, PriorConfig(own_rate=0.0), generator)
        if config.first_frame_matching:
            features, coverage = tuned.reference(plain, first_mask)
            reference = (features.expand(clips, -1, -1), coverage.expand(clips, -1))
    trained = [p.requires_grad_(True) for name, p in tuned.named_parameters()
               if not name.startswith(FROZEN_LOCAL_PREFIXES)]
    losses: list[Tensor] = []
    if tuning.iterations:
        optimiser = torch.optim.Adam(trained, lr=tuning.lr)
        with torch.enable_grad():
            for _ in range(tuning.iterations):
                optimiser.zero_grad(set_to_none=True)
                state, logits = memory, []
                for k in range(steps):
                    prior = None if priors is None else priors[:, k]
                    step_logits, state = tuned.step_from_features_logits(pool4[:, k], state, prior, reference)
                    logits.append(step_logits)
                loss = local_loss(torch.stack(logits, dim=1), targets).total
                loss.backward()
                optimiser.step()
                losses.append(loss.detach())
    for parameter in tuned.parameters():
        parameter.requires_grad_(False)
    return tuned.eval(), torch.stack(losses) if losses else torch.zeros(0, device=roi.device)
