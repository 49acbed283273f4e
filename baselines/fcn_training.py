"""Offline training of the FCN baseline on single ROIs (paper Sec. 3.4: "pretrained" before the
first-frame fine-tuning that `baselines.fcn` does per test sequence).

The training data are the local model's Sec. 3.3 ROIs (`tracker.training.samples`: ROI of
twice the object's side, placed by the mask 5 frames earlier, perturbed in scale and shift),
without the noisy-frame insertion of step 4: an FCN has no memory, so an all-zero target
for another sequence's object would only teach it to miss objects. Every frame of every clip
is an independent example. The frozen backbone's pool4 features are cached once
(`tracker.training.feature_cache`, on the CPU) and the head is trained on them with Eq. 2
(cross-entropy plus capped total variation) through the trainers' shared loop
(`tracker.training.loop`: Adam, clipping, logging, resuming).

Entry point: `train_fcn_checkpoint(sequences)` (the command `pixtrack train fcn`), which writes
the `fcn` checkpoint that the `fcn` tracker loads by default (checkpoints/fcn-lite.safetensors).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from baselines.fcn import FCN, FCNConfig, fcn_config, save_fcn
from tracker.checkpoint import default_checkpoint
from tracker.training.feature_cache import FeatureCache, build_feature_cache
from tracker.training.hardware import Runtime
from tracker.training.loop import LoopConfig, run_loop
from tracker.training.loss_log import LossLog
from tracker.training.losses import LossParts, local_loss
from tracker.training.samples import ClipConfig, LocalClipDataset


class RoiExamples(Dataset):
    """The frames of cached clips as independent examples: item -> {"pool4", "mask"}.

    `pool4` float32 `[512, s, s]`, `mask` float32 `[1, 224, 224]` in [0, 1]; item i is frame
    i mod (T + 1) of clip i // (T + 1).
    """

    def __init__(self, cache: FeatureCache) -> None:
        if len(cache) == 0:
            raise ValueError("no cached clips to train the FCN on")
        self.cache = cache
        self.per_clip = cache.frames + 1

    def __len__(self) -> int:
        return len(self.cache) * self.per_clip

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"example {index} out of range for {len(self)} examples")
        clip, frame = divmod(index, self.per_clip)
        plain = torch.from_numpy(self.cache.plain[clip, frame].astype("float32"))
        mask = torch.from_numpy(self.cache.masks[clip, frame].astype("float32") / 255.0)
        return {"pool4": plain, "mask": mask}


class _HeadOnFeatures(nn.Module):
    """pool4 -> logits through the FCN's head: the module the loop trains (and DDP wraps)."""

    def __init__(self, model: FCN) -> None:
        super().__init__()
        self.model = model

    def forward(self, pool4: Tensor) -> Tensor:
        return self.model.head_logits(pool4)


def roi_examples(
    model: FCN,
    sequences: SequenceOf,
    clip: ClipConfig = ClipConfig(frames=8),
    *,
    clips_per_sequence: int = 4,
    views: int = 1,
    seed: int = 0,
    cache_folder: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> RoiExamples:
    """Sec. 3.3 ROIs of `sequences` (no insertion), their pool4 through the FCN's backbone, cached.

    `cache_folder`: keep the cache on disk (memory-mapped; reused where complete); None keeps
    it in memory. Features are stored as float16 on the CPU.
    """
    from tracker.config import LocalConfig
    from tracker.local_model import LocalModel

    clip = dataclasses.replace(clip, insert_noise=False)
    dataset = LocalClipDataset(sequences, clip, seed=seed, clips_per_sequence=clips_per_sequence)
    # The cache asks a LocalModel for pool4 (and frame 0's masked pool4, unused here); a
    # narrow one around the FCN's own backbone computes exactly the FCN's features.
    extractor = LocalModel(
        LocalConfig(backbone=model.config.backbone, roi_size=model.config.roi_size, fcnn_channels=1,
                    mcnn_channels=1, lstm_channels=(1,), deconv_channels=(1, 1, 1, 1)),
        backbone=model.backbone,
    )
    cache = build_feature_cache(extractor, dataset, views=views, folder=cache_folder, device=device,
                                progress=progress, description="fcn features")
    return RoiExamples(cache)


def train_fcn(
    model: FCN,
    data: Dataset,
    loop: LoopConfig,
    runtime: Runtime,
    *,
    batch_size: int = 16,
    workers: int = 0,
    seed: int = 0,
    log: LossLog | None = None,
    resume_path: str | os.PathLike | None = None,
    description: str = "fcn",
    progress: bool = True,
) -> list[float]:
    """Train the FCN's head in place on `RoiExamples` with Eq. 2; returns the logged mean losses."""
    model.to(runtime.device)
    trained = runtime.wrap(_HeadOnFeatures(model))

    def forward_loss(batch: dict[str, Tensor], iteration: int) -> LossParts:
        pool4 = batch["pool4"].to(runtime.device, non_blocking=True)
        masks = batch["mask"].to(runtime.device, non_blocking=True)
        with runtime.autocast():
            logits = trained(pool4)
        return local_loss(logits[:, None], masks[:, None])  # each example a clip of one frame

    def batches(epoch: int):
        return runtime.loader(data, batch_size, seed=seed, epoch=epoch, workers=workers)

    return run_loop(trained, forward_loss, batches, loop, runtime, log=log, resume_path=resume_path,
                    description=description, progress=progress)


@dataclass(frozen=True)
class FCNTrainingConfig:
    """Everything `train_fcn_checkpoint` needs beyond the data (defaults sized for a CPU)."""

    config_name: str = "lite"
    """Model configuration (`tracker.config`) whose widths the FCN copies."""
    fcn: FCNConfig | None = None
    """Explicit FCN widths instead of `config_name`'s."""
    clip: ClipConfig = ClipConfig(frames=8)
    clips_per_sequence: int = 4
    views: int = 1
    """Passes over the clip dataset when caching (each with fresh frames and perturbations)."""
    loop: LoopConfig = LoopConfig(iterations=2000, lr=1e-4, log_every=50, save_every=500)
    batch_size: int = 16
    seed: int = 0


def train_fcn_checkpoint(
    sequences: SequenceOf,
    output: str | os.PathLike | None = None,
    settings: FCNTrainingConfig = FCNTrainingConfig(),
    *,
    device: str | None = None,
    work_dir: str | os.PathLike | None = None,
    backbone: nn.Module | None = None,
    half: bool = False,
    progress: bool = True,
) -> Path:
    """Cache ROI features of `sequences`, train a fresh FCN on them, write an `fcn` checkpoint.

    `output`: the checkpoint's path; None = the shipped default, checkpoints/fcn-NAME.safetensors
    with NAME the FCN configuration's (`lite`: what `pixtrack-fcn` loads). `work_dir`: where
    the feature cache, the loss log (fcn_loss.csv) and the resume file go (a rerun of an
    interrupted run resumes; the resume file is removed once the checkpoint is written);
    None keeps everything in memory. `backbone`: as in `FCN` (tests pass random weights).
    `half`: store the weights as float16 (half the file). Returns the checkpoint's path.
    """
    runtime = Runtime.start(device)
    torch.manual_seed(settings.seed)
    model = FCN(settings.fcn or fcn_config(settings.config_name), backbone=backbone)
    work = Path(work_dir) if work_dir is not None else None
    examples = roi_examples(
        model, sequences, settings.clip, clips_per_sequence=settings.clips_per_sequence, views=settings.views,
        seed=settings.seed, cache_folder=work / "fcn_features" if work else None, device=runtime.device,
        progress=progress and runtime.is_main,
    )
    log = LossLog(work / "fcn_loss.csv", enabled=runtime.is_main) if work else None
    history = train_fcn(
        model, examples, settings.loop, runtime, batch_size=settings.batch_size, seed=settings.seed, log=log,
        resume_path=work / "fcn_resume.pt" if work else None, progress=progress,
    )
    extra = {
        "trained_on": [getattr(s, "name", str(i)) for i, s in enumerate(sequences)],
        "examples": len(examples),
        "iterations": settings.loop.iterations,
        "final_loss": history[-1] if history else None,
    }
    path = Path(output) if output is not None else default_checkpoint("fcn", model.config.name)
    if runtime.is_main:
        save_fcn(path, model, extra_metadata=extra, half=half)
        if work:  # finished: nothing left to resume (a rerun trains again, the feature cache kept)
            (work / "fcn_resume.pt").unlink(missing_ok=True)
    runtime.barrier()
    return path

