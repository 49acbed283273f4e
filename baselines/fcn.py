"""The FCN baseline (paper Sec. 3.4 and 5.3): a frame-by-frame segmentation network, fine-tuned
on each test sequence's first frame, its ROI placed by Eq. 5 on its own maps.

    pool4  = VGG16Pool4(x_t)                   frozen, the local model's backbone
    logits = Deconv x4 (Conv3x3 x4 (pool4))     no recurrence, no memory: one ROI at a time

The head mirrors the local model with its recurrence taken out, so the comparison isolates
the ConvLSTM memory: two 3x3 convs as wide as F-CNN, two 3x3 convs as wide as the ConvLSTM
layers (ReLU after each), then the local model's decoder (four 5x5 stride-2 transposed convs,
leaky ReLU, 14 -> 224). Widths follow the model configuration (`paper` or `lite`).

Per sequence (`FCNTracker.init`): the offline weights are copied and fine-tuned with Adam on
the first frame's ROI and a few perturbed copies of it (scale and shift within the Sec. 3.3
bounds), with Eq. 2's loss. The tuned weights live in the sequence's state, never in the
model, so one sequence's fine-tuning cannot leak into the next (or into one tracked
alongside). The backbone is frozen, so the augmented ROIs' pool4 features are computed once
and each iteration only runs the head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from baselines.centroid import CentroidTracker
from tracker import roi as geometry
from tracker.backbone import VGG16Pool4
from tracker.config import ConfigError, LocalConfig, get_config
from tracker.fine_tuning import FineTuning, perturbed_rois
from tracker.training.losses import local_loss

DEFAULT_CONFIG_NAME = "lite"
"""Configuration of the shipped checkpoint (checkpoints/fcn-lite.safetensors)."""

POOL4_CHANNELS = 512

HeadWeights = dict[str, Tensor]
"""The head's parameters by `named_parameters()` name: one sequence's fine-tuned FCN."""


@dataclass(frozen=True)
class FCNConfig:
    """Widths of the FCN head; `from_local` gives the local model's widths without recurrence."""

    backbone: str = "hed"
    """Weights of the frozen VGG16 to pool4 (as `LocalConfig.backbone`)."""
    roi_size: int = 224
    conv_channels: tuple[int, ...] = (512, 512, 256, 256)
    """3x3 convs on pool4, ReLU after each."""
    deconv_channels: tuple[int, ...] = (128, 64, 32, 1)
    conv_kernel: int = 3
    deconv_kernel: int = 5
    leaky_slope: float = 0.2
    name: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_channels", tuple(self.conv_channels))
        object.__setattr__(self, "deconv_channels", tuple(self.deconv_channels))
        # LocalConfig checks backbone, roi size, decoder and kernels by the same rules.
        try:
            LocalConfig(backbone=self.backbone, roi_size=self.roi_size, deconv_channels=self.deconv_channels,
                        conv_kernel=self.conv_kernel, deconv_kernel=self.deconv_kernel)
        except ConfigError as error:
            raise ConfigError(f"fcn: {str(error).replace('local.', '')}") from None
        if not self.conv_channels or any(c <= 0 for c in self.conv_channels):
            raise ConfigError(f"fcn.conv_channels = {self.conv_channels}: must be positive (and not empty)")

    @classmethod
    def from_local(cls, local: LocalConfig, name: str = "custom") -> FCNConfig:
        """The local model's widths: F-CNN x2, one conv per ConvLSTM layer, the same decoder."""
        return cls(
            backbone=local.backbone,
            roi_size=local.roi_size,
            conv_channels=(local.fcnn_channels, local.fcnn_channels, *local.lstm_channels),
            deconv_channels=local.deconv_channels,
            conv_kernel=local.conv_kernel,
            deconv_kernel=local.deconv_kernel,
            leaky_slope=local.leaky_slope,
            name=name,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for the checkpoint's `config` metadata: {"name", "fcn": {...}}."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        return {"name": self.name, "fcn": {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FCNConfig:
        """Inverse of `to_dict`; unknown keys are refused, naming them."""
        if not isinstance(data, dict) or not isinstance(data.get("fcn"), dict):
            raise ConfigError(f"an FCN configuration is {{'name': ..., 'fcn': {{...}}}}, got {data!r:.200}")
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = (set(data) - {"name", "fcn"}) | (set(data["fcn"]) - known)
        if unknown:
            raise ConfigError(f"unknown keys in the FCN configuration: {sorted(unknown)}")
        return cls(**data["fcn"], name=str(data.get("name", "custom")))


def fcn_config(name: str) -> FCNConfig:
    """The FCN matching the named model configuration (`paper`, `lite`) of `tracker.config`."""
    return FCNConfig.from_local(get_config(name).local, name=name)


class FCN(nn.Module):
    """ROI images [B, 3, S, S] RGB 0..255 -> logits [B, 1, S, S]; the backbone is frozen and unsaved.

    `backbone`: a VGG16Pool4 to use (e.g. random weights in tests); by default the one named by
    `config.backbone`, from the weights cache. `state_dict()` holds the head only.
    """

    def __init__(self, config: FCNConfig | None = None, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config = config or FCNConfig()
        self.backbone = backbone if backbone is not None else VGG16Pool4(config.backbone)
        layers: list[nn.Module] = []
        widths = [POOL4_CHANNELS, *config.conv_channels]
        k = config.conv_kernel
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True)]
        widths = [config.conv_channels[-1], *config.deconv_channels]
        kd = config.deconv_kernel
        for index, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            # output_padding=1: each layer exactly doubles the size, 14 -> 28 -> 56 -> 112 -> 224.
            layers.append(nn.ConvTranspose2d(cin, cout, kd, stride=2, padding=kd // 2, output_padding=1))
            if index < len(config.deconv_channels) - 1:
                layers.append(nn.LeakyReLU(config.leaky_slope, inplace=True))
        self.head = nn.Sequential(*layers)

    def features(self, images: Tensor) -> Tensor:
        """pool4 of ROI images (no grad): what the head reads, and what training caches."""
        size = self.config.roi_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"FCN expects ROI images [B, 3, {size}, {size}] (RGB 0..255), got {tuple(images.shape)}")
        with torch.no_grad():
            return self.backbone(images)

    def head_logits(self, pool4: Tensor, weights: HeadWeights | None = None) -> Tensor:
        """pool4 [B, 512, S/16, S/16] -> logits [B, 1, S, S], with the model's or the given head weights."""
        side = self.config.roi_size // 16
        if pool4.dim() != 4 or tuple(pool4.shape[1:]) != (POOL4_CHANNELS, side, side):
            raise ValueError(f"FCN expects pool4 features [B, {POOL4_CHANNELS}, {side}, {side}], got {tuple(pool4.shape)}")
        if weights is None:
            return self.head(pool4)
        return functional_call(self.head, weights, (pool4,))

    def forward(self, images: Tensor, weights: HeadWeights | None = None) -> Tensor:
        """ROI images -> logits (pre-sigmoid; `torch.sigmoid` gives the probability map)."""
        return self.head_logits(self.features(images), weights)

    def head_weights(self) -> HeadWeights:
        """A detached copy of the head's parameters: the start of every fine-tuning."""
        return {name: p.detach().clone() for name, p in self.head.named_parameters()}


def fine_tune(model: FCN, image: Tensor, mask: Tensor, roi: Tensor, tuning: FineTuning) -> tuple[HeadWeights, Tensor]:
    """The model's head weights fine-tuned on one frame's ROI; the model itself is untouched.

    `image` [1, 3, H, W] RGB 0..255 and `mask` [1, 1, H, W] in [0, 1] on the model's device,
    `roi` [1, 3] in pixels. Returns the tuned weights and the loss (Eq. 2) of each iteration
    `[iterations]`, before its update. No host synchronisation inside the loop.
    """
    boxes = perturbed_rois(roi, tuning)
    count = boxes.shape[0]
    images = geometry.crop(image.expand(count, -1, -1, -1), boxes, model.config.roi_size)
    targets = geometry.crop(mask.expand(count, -1, -1, -1), boxes, model.config.roi_size).clamp(0, 1)
    with torch.no_grad():
        pool4 = model.features(images)
    weights = {name: w.requires_grad_(True) for name, w in model.head_weights().items()}
    losses = []
    if tuning.iterations:
        optimiser = torch.optim.Adam(list(weights.values()), lr=tuning.lr)
        with torch.enable_grad():
            for _ in range(tuning.iterations):
                optimiser.zero_grad(set_to_none=True)
                logits = model.head_logits(pool4, weights)
                loss = local_loss(logits[:, None], targets[:, None]).total  # each ROI a clip of one frame
                loss.backward()
                optimiser.step()
                losses.append(loss.detach())
    tuned = {name: w.detach() for name, w in weights.items()}
    return tuned, torch.stack(losses) if losses else torch.zeros(0, device=roi.device)


@dataclass(frozen=True)
class TunedHead:
    """One sequence's FCN: the head weights fine-tuned on its first frame, and the loss of
    each fine-tuning iteration (before its update), both on the device."""

    weights: HeadWeights
    losses: Tensor


class FCNSegmenter:
    """The FCN as a centroid tracker's `Segmenter`: `start` fine-tunes a copy of the offline head."""

    def __init__(self, model: FCN, tuning: FineTuning) -> None:
        self.model = model
        self.tuning = tuning

    def start(self, frame: Tensor, mask: Tensor, roi: Tensor) -> TunedHead:
        return TunedHead(*fine_tune(self.model, frame, mask, roi, self.tuning))

    def segment(self, image: Tensor, state: TunedHead) -> tuple[Tensor, TunedHead]:
        return torch.sigmoid(self.model(image, state.weights)), state


class FCNTracker(CentroidTracker):
    """The FCN baseline: fine-tuned on the first frame at `init`, ROI by Eq. 5 on its own maps.

    The state's `model` is a `TunedHead`; the tracker's `model` keeps the offline weights.
    """

    name = "fcn"

    def __init__(self, model: FCN, device: str | torch.device | None = None, tuning: FineTuning | None = None) -> None:
        self.tuning = tuning or FineTuning()
        super().__init__(FCNSegmenter(model, self.tuning), device)
        self.model = model.to(self.device).eval()  # in place: the segmenter's model too

    def settings(self) -> dict[str, Any]:
        """What changes its maps besides the weights (the run cache keys runs by it)."""
        return {"tuning": dataclasses.asdict(self.tuning)}

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device | None = None, tuning: FineTuning | None = None
    ) -> FCNTracker:
        """The FCN rebuilt from the configuration stored in an `fcn` checkpoint, weights loaded."""
        return cls(load_fcn(path), device=device, tuning=tuning)


def save_fcn(path: str | Path, model: FCN, extra_metadata: dict[str, Any] | None = None, half: bool = False) -> Path:
    """An `fcn` checkpoint (prefix `fcn.`, the head only; the backbone is never saved)."""
    from tracker.checkpoint import save_checkpoint

    return save_checkpoint(path, "fcn", model.config.to_dict(), {"fcn": model}, extra_metadata, half=half)


def load_fcn(path: str | Path, backbone: nn.Module | None = None) -> FCN:
    """The FCN of an `fcn` checkpoint; `backbone` as in `FCN` (default: the configured weights)."""
    from tracker.checkpoint import CheckpointError, load_checkpoint, load_weights

    config_dict, states, _ = load_checkpoint(path, "fcn")
    try:
        config = FCNConfig.from_dict(config_dict)
    except ConfigError as error:
        raise CheckpointError(f"{path}: {error}") from error
    model = FCN(config, backbone=backbone)
    load_weights(model, states["fcn"], path, "fcn")
    return model


def build(checkpoint: str | None = None, device: str | None = None, backbone: nn.Module | None = None,
          config: str | None = None, tuning_iterations: int | None = None) -> FCNTracker:
    """Registry factory: the shipped FCN checkpoint unless `checkpoint` names another file.

    Never falls back to untrained weights; an untrained FCN only when asked, by `config` (a
    configuration name: timing, tests). `backbone` is shared instead of loaded;
    `tuning_iterations` replaces the first-frame fine-tuning's default count.
    """
    from tracker.checkpoint import resolve_checkpoint

    tuning = FineTuning() if tuning_iterations is None else FineTuning(iterations=tuning_iterations)
    if config is not None:
        if checkpoint is not None:
            raise ValueError("give a checkpoint or a configuration of untrained models, not both")
        return FCNTracker(FCN(fcn_config(config), backbone=backbone), device=device, tuning=tuning)
    path = resolve_checkpoint(
        checkpoint, "fcn", DEFAULT_CONFIG_NAME,
        tracker="FCN tracker", train_command="pixtrack train fcn --data DIR [--synthetic N] --config lite --out DIR",
    )
    return FCNTracker(load_fcn(path, backbone=backbone), device=device, tuning=tuning)
