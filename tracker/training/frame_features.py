"""Full-frame pool4 features: every training frame through the backbone once, at the few scales
its object's ROIs need, kept fp16 on disk and memory-mapped; ROI features are then cut from
them by RoIAlign (`roi_align`) instead of a backbone pass a ROI (the data engine's feature store).

A ROI of side `side` is cropped to 224 pixels, i.e. the frame is seen at scale 224 / side. The
store keeps scales on a geometric grid, `2 ** (k / LEVELS_PER_OCTAVE)`: a ROI reads the level
nearest its own scale, at most 2 ** (1 / 8) = 9 % off, which its pool4 cells absorb the way
they absorb the [0.9, 1.1] side perturbation of Sec. 3.3. The levels a sequence needs come
from its object boxes (ROI side = 2 x object side, clipped to [56, 672], perturbed by `SIDE_JITTER`).

How far a cut ROI is from the ROI cropped and passed through the backbone (padding, receptive
fields that see past the ROI, the grid's scale) is measured, not assumed: `compare_cut_to_crop`
(cosine per pool4 cell), `pixtrack feature-store compare`.

    <folder>/store.json                                  key (format, backbone)
    <folder>/<sequence>-<frames id>/levels.json          its name, frames id, and the frames a level
    <folder>/<sequence>-<frames id>/level<k>.npy         [frames at level k, 512, h_k, w_k] float16
    <folder>/<sequence>-<frames id>/level<k>-origins.npy [frames at level k, 2]: each window's first cell

A level holds only the frames whose ROIs read it, give or take `FRAME_REACH`
(`frames_by_level`), and of each frame at most `WINDOW_CELLS` square around the object: a
sequence whose object is small in a few frames pays for the high scales there, and there a
window, not the whole frame enlarged.

A store is keyed by the backbone's weights (a folder of another backbone is refused), and each
sequence in it by its own frames (the bytes of their files: `frames_id`), so
one store serves every set of training sequences drawn from a dataset (the five folds of a
cross-validation, with and without synthesised clips) and computes each sequence once; frames
that changed get a folder of their own, never a stale one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tracker import roi as geometry

LEVELS_PER_OCTAVE = 4
SIDE_JITTER = (0.9, 1.1)
"""The ROI side perturbation of Sec. 3.3 (`tracker.training.samples`): its levels are stored too."""
FEATURE_STRIDE = 16
FRAME_REACH = 5
"""A level holds the frames within this many of one that needs it: Sec. 3.3 centres a frame's
ROI by the mask `lag` (5) frames back, so its scale is that frame's."""
WINDOW_CELLS = 32
"""A level keeps at most 32 x 32 cells of a frame (512 pixels at its scale, 2.3 ROI sides),
centred on the object: a small object's high scales cost a window, not the frame blown up 4x."""
FORMAT_VERSION = 4


def level_of_scale(scale: float) -> int:
    """The grid level nearest `scale` (log-nearest)."""
    if not scale > 0:
        raise ValueError(f"a scale must be positive, got {scale}")
    return int(round(LEVELS_PER_OCTAVE * math.log2(scale)))


def scale_of_level(level: int) -> float:
    return 2.0 ** (level / LEVELS_PER_OCTAVE)


def levels_for_sides(sides: Seq[float], roi_size: int = geometry.ROI_SIZE,
                     jitter: tuple[float, float] = SIDE_JITTER) -> list[int]:
    """The levels that ROIs of these sides (pixels; perturbed by `jitter`) read."""
    levels = set()
    for side in sides:
        if side > 0:
            for factor in (jitter[0], 1.0, jitter[1]):
                levels.add(level_of_scale(roi_size / (side * factor)))
    return sorted(levels)


def backbone_id(backbone: nn.Module) -> str:
    """A hash of the backbone's weights (its conv weights and input convention)."""
    digest = hashlib.sha1()
    tensors = backbone.conv_weights() if hasattr(backbone, "conv_weights") else dict(backbone.state_dict())
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().to("cpu", torch.float32).numpy().tobytes())
    for name in ("mean", "std"):
        value = getattr(backbone, name, None)
        if isinstance(value, Tensor):
            digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def frames_id(sequences: Seq) -> str:
    """A hash of the sequences' names and frames: a frame file's bytes (in-memory frames: their
    pixels). Not paths or modification times: a dataset copied, moved or provisioned afresh
    keeps its store (hashing DAVIS-2016's 143 MB of frames takes about a second; recomputing
    them, half an hour)."""
    digest = hashlib.sha1()
    for sequence in sequences:
        digest.update(sequence.name.encode())
        for index in range(len(sequence)):
            path = sequence.frame_path(index) if hasattr(sequence, "frame_path") else None
            if path is not None:
                digest.update(hashlib.sha1(Path(path).read_bytes()).digest())
            else:
                digest.update(np.ascontiguousarray(sequence.frame(index)).tobytes())
    return digest.hexdigest()[:16]


def sequence_folder(name: str, key: str) -> str:
    """A sequence's folder in a store: its name and its frames' id (`frames_id([sequence])`)."""
    return f"{name}-{key}"


def sequence_keys_of(sequences: Seq, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """name -> `frames_id([sequence])` of each of `sequences` (from `known` where it has them);
    names must be unique, as a store's lookups go by name."""
    names = [sequence.name for sequence in sequences]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"sequences named alike cannot share a store: {', '.join(twice)}")
    known = known or {}
    return {sequence.name: known.get(sequence.name) or frames_id([sequence]) for sequence in sequences}


def check_store_key(manifest: Path, key: dict, other: str) -> None:
    """Write a store's key to `manifest`, or refuse a folder whose key differs (`other` says what
    the folder then holds)."""
    if manifest.is_file():
        stored = json.loads(manifest.read_text()).get("key")
        if stored != key:
            raise ValueError(f"{manifest.parent} holds {other} ({stored} != {key}); use another folder")
        return
    manifest.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(manifest, json.dumps({"key": key}) + "\n")


def stored_sequences(folder: Path, marker: str, keys: Mapping[str, str] | None) -> dict[str, Path]:
    """name -> folder of the sequences `keys` (name -> frames id) in a store, each with its
    `marker` file; or of every sequence the store holds when `keys` is None."""
    if keys is not None:
        folders = {name: folder / sequence_folder(name, key) for name, key in keys.items()}
        missing = sorted(name for name, home in folders.items() if not (home / marker).is_file())
        if missing:
            raise FileNotFoundError(f"{folder} holds no {marker} of {', '.join(missing)} (build the store first)")
        return folders
    folders: dict[str, Path] = {}
    for path in sorted(folder.glob(f"*/{marker}")):
        name = path.parent.name.rsplit("-", 1)[0]
        if name in folders:
            raise ValueError(f"{folder} holds two versions of {name!r}: open it with the sequences' keys")
        folders[name] = path.parent
    return folders


def temporary_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: hidden, and this process's own,
    so two runs building one store (folds trained side by side) never write one file."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomically(path: Path, text: str) -> None:
    """`text` to `path` through a temporary name: a reader sees none or all of it."""
    temporary = temporary_name(path)
    temporary.write_text(text)
    temporary.replace(path)


def save_atomically(path: Path, array: np.ndarray) -> None:
    """`np.save` through a temporary name, as `write_atomically`."""
    temporary = temporary_name(path)
    with open(temporary, "wb") as handle:
        np.save(handle, array)
    temporary.replace(path)


def level_cells(frame_size: tuple[int, int], level: int) -> tuple[int, int]:
    """(rows, columns) of pool4 cells of the whole frame at `level`."""
    scale = scale_of_level(level)
    return tuple(max(1, math.ceil(round(side * scale) / FEATURE_STRIDE)) for side in frame_size)


def window_shape(frame_size: tuple[int, int], level: int) -> tuple[int, int]:
    """The cells a level stores of each frame: the whole frame, or `WINDOW_CELLS` around the object."""
    return tuple(min(WINDOW_CELLS, cells) for cells in level_cells(frame_size, level))


def window_origin(centre: tuple[float, float], frame_size: tuple[int, int], level: int) -> tuple[int, int]:
    """The (row, column) cell where a frame's window at `level` starts: centred on `centre`
    (x, y frame pixels), inside the frame."""
    scale = scale_of_level(level) / FEATURE_STRIDE
    rows, columns = level_cells(frame_size, level)
    height, width = window_shape(frame_size, level)
    row = int(np.clip(round(centre[1] * scale - height / 2), 0, rows - height))
    column = int(np.clip(round(centre[0] * scale - width / 2), 0, columns - width))
    return row, column


def frame_features(backbone: nn.Module, frame: np.ndarray, level: int, origin: tuple[int, int] = (0, 0),
                   device: str | torch.device = "cpu") -> Tensor:
    """pool4 [512, h, w] of a frame HxWx3 uint8 resized to scale `scale_of_level(level)`, of the
    window `window_shape` cells from cell `origin` (row, column)."""
    image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].to(device, torch.float32)
    scale = scale_of_level(level)
    size = (max(FEATURE_STRIDE, round(image.shape[-2] * scale)), max(FEATURE_STRIDE, round(image.shape[-1] * scale)))
    # Bilinear without antialiasing: the sampling `tracker.roi.crop` does, so a cut ROI sees the pixels a crop does.
    resized = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    height, width = window_shape(tuple(frame.shape[:2]), level)
    top, left = origin[0] * FEATURE_STRIDE, origin[1] * FEATURE_STRIDE
    return backbone(resized[..., top : top + height * FEATURE_STRIDE, left : left + width * FEATURE_STRIDE])[0]


def frames_by_level(sides: np.ndarray, visible: np.ndarray, reach: int = FRAME_REACH) -> dict[int, list[int]]:
    """level -> the frames stored at it: every frame within `reach` of a frame whose object
    (visible, ROI side `sides[f]`) reads that level. A small object costs its high levels only
    where it is small, not over the whole sequence."""
    count = len(sides)
    wanted: dict[int, set[int]] = {}
    for frame in np.flatnonzero(visible):
        for level in levels_for_sides([float(sides[frame])]):
            wanted.setdefault(level, set()).update(range(max(0, frame - reach), min(count, frame + reach + 1)))
    return {level: sorted(frames) for level, frames in sorted(wanted.items())}


def _window_centres(boxes) -> list[tuple[float, float]]:
    """Where each frame's windows centre: the object's centre over the frame and the `FRAME_REACH`
    before it (a ROI is centred by the mask `lag` frames back), the nearest visible one where
    the object is out of view."""
    visible = np.flatnonzero(boxes.pixels > 0)
    centres = []
    for index in range(len(boxes.pixels)):
        near = visible[(visible >= index - FRAME_REACH) & (visible <= index)]
        if not near.size:
            near = visible[np.argmin(np.abs(visible - index))][None] if visible.size else np.array([], int)
        centres.append(tuple(float(v) for v in boxes.boxes[near, :2].mean(axis=0)) if near.size else (0.0, 0.0))
    return centres


@dataclass
class FrameFeatureStore:
    """The store in `folder` (built by `build`): `cut` gives ROI features of any stored frame."""

    folder: Path
    levels: dict[str, dict[int, list[int]]]
    """sequence -> level -> the frames stored at that level (`frames_by_level`)."""
    rows: dict[str, dict[int, dict[int, int]]]
    """sequence -> frame -> {level: its row in that level's file}: `cut`'s lookup."""
    _maps: dict[tuple, np.ndarray]
    folders: dict[str, Path] = field(default_factory=dict)
    """sequence -> its folder in the store (`sequence_folder`)."""

    @classmethod
    def build(cls, folder: str | Path, sequences: Seq, backbone: nn.Module, device: str | torch.device = "cpu",
              progress: bool = True, sequence_keys: Mapping[str, str] | None = None) -> FrameFeatureStore:
        """Compute what is missing (each level of a sequence is written atomically) and open the
        store on `sequences`; refuses a folder that holds a store of another backbone.
        `sequence_keys`: name -> `frames_id([sequence])` where the caller has them (hashing
        rendered frames costs)."""
        from tracker.training.samples import object_boxes

        folder = Path(folder)
        check_store_key(folder / "store.json", {"format_version": FORMAT_VERSION, "backbone": backbone_id(backbone)},
                        "a feature store of another backbone")
        keys = sequence_keys_of(sequences, sequence_keys)
        levels, object_tables = {}, {}
        for sequence in sequences:
            home = folder / sequence_folder(sequence.name, keys[sequence.name])
            manifest = home / "levels.json"
            if manifest.is_file():
                stored = json.loads(manifest.read_text())["levels"]
                levels[sequence.name] = {int(k): list(v) for k, v in stored.items()}
                continue
            boxes = object_tables[sequence.name] = object_boxes(sequence)  # every mask read once
            sides = np.clip(boxes.boxes[:, 2] * geometry.ROI_SCALE, geometry.MIN_ROI_SIDE, geometry.MAX_ROI_SIDE)
            # Frames without the object place no ROI of their own (an empty mask's box has side 0).
            levels[sequence.name] = frames_by_level(sides, boxes.pixels > 0)
            home.mkdir(parents=True, exist_ok=True)
            write_atomically(manifest, json.dumps({"name": sequence.name, "frames": keys[sequence.name], "levels": {
                str(k): v for k, v in levels[sequence.name].items()}}) + "\n")
        backbone = backbone.to(device)
        homes = {s.name: folder / sequence_folder(s.name, keys[s.name]) for s in sequences}
        todo = [(s, level, frames) for s in sequences for level, frames in levels[s.name].items()
                if not (homes[s.name] / f"level{level}.npy").is_file()]
        bar = tqdm(total=sum(len(frames) for _, _, frames in todo), desc="frame features", unit="frame",
                   disable=not progress)
        for sequence, level, frames in todo:
            home = homes[sequence.name]
            target = home / f"level{level}.npy"
            if sequence.name not in object_tables:
                object_tables[sequence.name] = object_boxes(sequence)
            centres = _window_centres(object_tables[sequence.name])
            origins = np.array([window_origin(centres[index], sequence.frame_size, level) for index in frames],
                               dtype=np.int32)
            save_atomically(home / f"level{level}-origins.npy", origins)
            temporary = temporary_name(target)
            stored = None
            for row, index in enumerate(frames):
                features = frame_features(backbone, sequence.frame(index), level, tuple(origins[row]), device)
                if stored is None:
                    stored = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16,
                                                       shape=(len(frames), *features.shape))
                stored[row] = features.to("cpu", torch.float16).numpy()
                bar.update()
            stored.flush()
            del stored
            temporary.replace(target)
        bar.close()
        if not (folder / "padding.npy").is_file():
            save_atomically(folder / "padding.npy", padding_features(backbone, device).cpu().numpy())
        return cls.open(folder, keys)

    @classmethod
    def open(cls, folder: str | Path, sequence_keys: Mapping[str, str] | None = None) -> FrameFeatureStore:
        """The store's sequences `sequence_keys` (name -> frames id), or all it holds (an error
        where it holds two versions of one name: say which with `sequence_keys`)."""
        folder = Path(folder)
        if not (folder / "store.json").is_file():
            raise FileNotFoundError(f"no feature store in {folder} (no store.json)")
        folders = stored_sequences(folder, "levels.json", sequence_keys)
        levels = {name: {int(k): list(v) for k, v in json.loads((home / "levels.json").read_text())["levels"].items()}
                  for name, home in folders.items()}
        rows: dict[str, dict[int, dict[int, int]]] = {}
        for name, by_level in levels.items():
            for level, frames in by_level.items():
                for row, frame in enumerate(frames):
                    rows.setdefault(name, {}).setdefault(frame, {})[level] = row
        return cls(folder, levels, rows, {}, folders)

    def features(self, sequence: str, level: int) -> np.ndarray:
        """The memory-mapped [stored frames, 512, h, w] float16 features of a sequence at a level."""
        if (sequence, level) not in self._maps:
            path = self.folders.get(sequence, self.folder / sequence) / f"level{level}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: the store has no level {level} of {sequence!r} "
                                        f"(it has {sorted(self.levels.get(sequence, {}))})")
            self._maps[(sequence, level)] = np.load(path, mmap_mode="r")
        return self._maps[(sequence, level)]

    @property
    def padding(self) -> Tensor:
        """[512]: what cells outside the frame read (`padding_features`)."""
        if "padding" not in self._maps:
            self._maps["padding"] = np.load(self.folder / "padding.npy")
        return torch.from_numpy(self._maps["padding"])

    def origins(self, sequence: str, level: int) -> np.ndarray:
        """[stored frames, 2]: the (row, column) cell where each stored frame's window starts."""
        if (sequence, level, "origins") not in self._maps:
            self._maps[(sequence, level, "origins")] = np.load(self.folders[sequence] / f"level{level}-origins.npy")
        return self._maps[(sequence, level, "origins")]

    def cut(self, sequence: str, frame: int, boxes: Tensor, size: int = geometry.ROI_SIZE // FEATURE_STRIDE) -> Tensor:
        """pool4 features [B, 512, size, size] of the ROIs `boxes` [B, 3] (cx, cy, side in frame
        pixels) of one frame, each read at the level nearest its scale among those that hold
        the frame."""
        boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 3)
        available = self.rows.get(sequence, {}).get(frame, {})
        if not available:
            raise ValueError(f"the store holds frame {frame} of {sequence!r} at no level")
        out = []
        for cx, cy, side in boxes.tolist():
            wanted = level_of_scale(size * FEATURE_STRIDE / side)
            level = min(available, key=lambda k: abs(k - wanted))
            row = available[level]
            grid = torch.from_numpy(np.asarray(self.features(sequence, level)[row], dtype=np.float32))[None]
            top, left = (int(v) for v in self.origins(sequence, level)[row])
            cells = torch.tensor([[cx, cy, side]]) * (scale_of_level(level) / FEATURE_STRIDE)
            out.append(roi_align(grid, cells - torch.tensor([[left, top, 0.0]]), size, self.padding))
        return torch.cat(out)


def padding_features(backbone: nn.Module, device: str | torch.device = "cpu") -> Tensor:
    """[C]: the backbone's features deep inside an all-black image, which is what a crop's cells
    beyond the frame see (`tracker.roi.crop` reads zeros there)."""
    black = torch.zeros(1, 3, 224, 224, device=device)
    return backbone(black)[0, :, 7, 7].float()


def roi_align(features: Tensor, boxes: Tensor, size: int, padding: Tensor | None = None) -> Tensor:
    """RoIAlign (Mask R-CNN's, aligned, 2 x 2 bilinear samples a bin, averaged) of square `boxes`
    [B, 3] given in feature cells: `tracker.roi.crop` at twice the size, then 2 x 2 means. The
    samples are where a crop of the frame puts its pixels; samples beyond the features read
    `padding` [C] (zeros where None), blended with it across the edge."""
    if padding is None:
        return F.avg_pool2d(geometry.crop(features.expand(boxes.shape[0], -1, -1, -1), boxes, 2 * size), 2)
    fill = padding.to(features.dtype).view(1, -1, 1, 1)
    return roi_align(features - fill, boxes, size) + fill


@dataclass(frozen=True)
class CutComparison:
    """Cosine similarity per pool4 cell between cut and cropped ROI features."""

    cosines: np.ndarray
    """[ROIs, 14, 14]."""
    inside: np.ndarray
    """[ROIs, 14, 14] bool: the cell's centre lies inside the frame."""

    def summary(self) -> dict[str, float]:
        inner, outer = self.cosines[self.inside], self.cosines[~self.inside]
        result = {"rois": float(len(self.cosines)), "cells_mean": float(self.cosines.mean()),
                  "cells_p10": float(np.percentile(self.cosines, 10)), "inside_mean": float(inner.mean())}
        if outer.size:
            result["outside_mean"] = float(outer.mean())
        return result


def compare_cut_to_crop(store: FrameFeatureStore, sequences: Seq, backbone: nn.Module, rois_per_sequence: int = 8,
                        seed: int = 0, device: str | torch.device = "cpu") -> CutComparison:
    """Random ground-truth ROIs (object box doubled, side perturbed by `SIDE_JITTER`): their cut
    features against the backbone's features of the cropped ROI, cell by cell."""
    from tracker.training.samples import object_boxes

    rng = np.random.default_rng(seed)
    cosines, inside = [], []
    cells = geometry.ROI_SIZE // FEATURE_STRIDE
    offsets = (np.arange(cells) + 0.5) / cells - 0.5
    for sequence in sequences:
        boxes = object_boxes(sequence).boxes
        visible = [i for i in range(len(sequence)) if boxes[i, 2] > 0]
        for index in rng.choice(visible, size=min(rois_per_sequence, len(visible)), replace=False):
            cx, cy, side = boxes[index]
            side = float(np.clip(side * geometry.ROI_SCALE * rng.uniform(*SIDE_JITTER),
                                 geometry.MIN_ROI_SIDE, geometry.MAX_ROI_SIDE))
            box = torch.tensor([[float(cx), float(cy), side]])
            image = torch.from_numpy(np.ascontiguousarray(sequence.frame(int(index)))).permute(2, 0, 1)[None]
            cropped = backbone(geometry.crop(image.to(device), box.to(device)))[0].float().cpu()
            cut = store.cut(sequence.name, int(index), box)[0]
            cosines.append(F.cosine_similarity(cut, cropped, dim=0, eps=1e-6).numpy())
            height, width = sequence.frame_size
            xs, ys = float(cx) + offsets * side, float(cy) + offsets * side
            inside.append(((ys >= 0) & (ys < height))[:, None] & ((xs >= 0) & (xs < width))[None, :])
    return CutComparison(np.stack(cosines), np.stack(inside))
