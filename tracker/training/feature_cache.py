"""pool4 features of prepared local-model clips, computed once so training epochs skip VGG.

The backbone is frozen (Sec. 3.1), so a clip's pool4 features never change: on a CPU, where
VGG16 costs ~0.3 s an image and the rest of a `lite` step a few ms, caching is what makes
training possible at all. The price: the cache holds a fixed set of clips (`views` passes
over a `LocalClipDataset`, each with fresh frames, perturbations and insertions), where
online training draws new ones every epoch. On a GPU, training online from images is cheap
and the cache is optional.

Layout of a cache folder (numpy .npy files, memory-mapped when read, so DataLoader workers
and several epochs share the page cache):

    plain.npy   float16 [N, T + 1, C, s, s]    features of every clip frame (s = 224 / 16): pool4,
                                               C = 512, or with pool3 folded in (`LocalModel.features`)
    masked.npy  float16 [N, C, s, s]           frame 0's, with the dilated mask before pool1
    masks.npy   uint8   [N, T + 1, 1, 224, 224] ROI ground truth, coverage * 255
    placement.npy float32 [N, T + 1, 3]        where each clip frame's ROI lies (for priors)
    meta.json   written last: a folder without it is incomplete and is rebuilt

A cache is built in a private folder beside its own (`.NAME.building-PID`) and renamed into
place once complete, so two processes that build the same cache (two runs of one stage)
never write into each other's files: the first to finish publishes, the other keeps it.

Frame 0's pair comes from `LocalModel.memory_features` (the model decides how the mask is
dilated and applied), frames 1..T from `LocalModel.features`: T + 2 backbone images a clip.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tracker.local_model import POOL4_CHANNELS
from tracker.training.samples import LocalClipDataset

FLOAT16_MAX = float(torch.finfo(torch.float16).max)
FORMAT = "pixtrack-feature-cache"
VERSION = 2
PARTS = ("plain", "masked", "masks", "placement")


class FeatureCache(Dataset):
    """Cached clips as a dataset: item -> {"plain", "masked", "masks", "placement"} float32 tensors."""

    def __init__(self, plain: np.ndarray, masked: np.ndarray, masks: np.ndarray, placement: np.ndarray) -> None:
        if not (len(plain) == len(masked) == len(masks) == len(placement)):
            raise ValueError(f"feature cache parts disagree: {len(plain)}, {len(masked)}, {len(masks)}, "
                             f"{len(placement)} clips")
        self.plain, self.masked, self.masks, self.placement = plain, masked, masks, placement

    @classmethod
    def open(cls, folder: str | os.PathLike) -> FeatureCache:
        """A complete cache folder, memory-mapped read-only."""
        folder = Path(folder)
        meta = read_meta(folder)
        if meta is None:
            raise FileNotFoundError(f"{folder} holds no complete feature cache (no readable meta.json)")
        parts = [np.load(folder / f"{name}.npy", mmap_mode="r") for name in PARTS]
        return cls(*parts)

    @property
    def frames(self) -> int:
        """T: clip frames after the initial one."""
        return self.plain.shape[1] - 1

    def __len__(self) -> int:
        return len(self.plain)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            "plain": torch.from_numpy(np.asarray(self.plain[index], dtype=np.float32)),
            "masked": torch.from_numpy(np.asarray(self.masked[index], dtype=np.float32)),
            "masks": torch.from_numpy(np.asarray(self.masks[index], dtype=np.float32) / 255.0),
            "placement": torch.from_numpy(np.array(self.placement[index], dtype=np.float32)),
        }


def read_meta(folder: str | os.PathLike) -> dict | None:
    """The cache's meta.json, or None where the folder holds no complete cache."""
    path = Path(folder) / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        return None
    return meta


@torch.no_grad()
def build_feature_cache(
    model,
    dataset: LocalClipDataset,
    *,
    views: int = 1,
    folder: str | os.PathLike | None = None,
    batch_size: int = 4,
    workers: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    description: str = "features",
) -> FeatureCache:
    """Run the frozen backbone of `model` (a `LocalModel`) over `views` epochs of `dataset`.

    `folder`: write the cache there (memory-mapped .npy files; any incomplete cache in it is
    replaced) and reuse it if it is already complete; None keeps it in memory.
    """
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    channels = model.feature_channels
    if folder is not None and (meta := read_meta(folder)) is not None:
        if meta.get("channels", POOL4_CHANNELS) == channels:  # caches without the key hold pool4
            return FeatureCache.open(folder)
        shutil.rmtree(folder)  # another model's features (e.g. without pool3): rebuild for this one
    device = torch.device(device)
    count, frames = views * len(dataset), dataset.config.frames
    side, size = model.config.feature_size, model.config.roi_size
    shapes = {
        "plain": ((count, frames + 1, channels, side, side), np.float16),
        "masked": ((count, channels, side, side), np.float16),
        "masks": ((count, frames + 1, 1, size, size), np.uint8),
        "placement": ((count, frames + 1, 3), np.float32),
    }
    if folder is None:
        arrays = {name: np.empty(shape, dtype) for name, (shape, dtype) in shapes.items()}
    else:
        folder = Path(folder)
        remove_stale_builds(folder)
        building = folder.with_name(f".{folder.name}.building-{os.getpid()}")
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        arrays = {name: np.lib.format.open_memmap(building / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
                  for name, (shape, dtype) in shapes.items()}
    model = model.to(device).eval()
    written = 0
    bar = tqdm(total=count, desc=description, unit="clip", disable=not progress, leave=False)
    for view in range(views):
        dataset.set_epoch(view)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
        for batch in loader:
            images = batch["images"].to(device, non_blocking=True).float()
            masks = batch["masks"].to(device, non_blocking=True)
            n = images.shape[0]
            plain0, masked = model.memory_features(images[:, 0], masks[:, 0])
            rest = model.features(images[:, 1:].flatten(0, 1)).reshape(n, frames, *plain0.shape[1:])
            plain = torch.cat((plain0[:, None], rest), dim=1)
            largest = float(torch.maximum(plain.abs().amax(), masked.abs().amax()))
            if not largest <= FLOAT16_MAX:
                raise ValueError(f"backbone features reach {largest:g}, beyond float16's range: cannot cache them")
            span = slice(written, written + n)
            arrays["plain"][span] = plain.to(torch.float16).cpu().numpy()
            arrays["masked"][span] = masked.to(torch.float16).cpu().numpy()
            arrays["masks"][span] = (masks * 255).round().to(torch.uint8).cpu().numpy()
            arrays["placement"][span] = batch["placement"].numpy()
            written += n
            bar.update(n)
    bar.close()
    if folder is None:
        return FeatureCache(*(arrays[name] for name in PARTS))
    for array in arrays.values():
        array.flush()
    del arrays
    meta = {"format": FORMAT, "version": VERSION, "clips": count, "frames": frames, "views": views,
            "seed": dataset.seed, "channels": channels}
    (building / "meta.json").write_text(json.dumps(meta, indent=1))
    publish(building, folder)
    return FeatureCache.open(folder)


def publish(building: Path, folder: Path) -> None:
    """Move the complete cache `building` to `folder`, replacing an incomplete one there; where
    another process published a complete cache first, keep that one and drop `building`."""
    if read_meta(folder) is None:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            building.replace(folder)
            return
        except OSError:
            if read_meta(folder) is None:
                raise
    shutil.rmtree(building, ignore_errors=True)


def remove_stale_builds(folder: Path) -> None:
    """Delete the private build folders of `folder` whose process is gone (an interrupted build)."""
    for path in folder.parent.glob(f".{folder.name}.building-*"):
        pid = path.name.rpartition("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return True


def share_feature_cache(source: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Give `target` the complete cache in `source` (hard links where the file system allows,
    copies elsewhere), so that runs training other heads on the same clips pay the backbone
    once. False, and nothing written, where `source` holds no complete cache or `target`
    already holds one. Only for runs whose clips, seed, backbone inputs and features (pool4,
    or with pool3) are the same."""
    source, target = Path(source), Path(target)
    if read_meta(source) is None or read_meta(target) is not None:
        return False
    if target.exists():
        shutil.rmtree(target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in (*PARTS, "meta"):
        file = f"{name}.json" if name == "meta" else f"{name}.npy"
        try:
            os.link(source / file, partial / file)
        except OSError:
            shutil.copy2(source / file, partial / file)
    os.replace(partial, target)
    return True
