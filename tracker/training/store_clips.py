"""Sec. 3.3 clips whose features come from stores instead of backbone passes: the data engine's
training input. Every epoch draws new clips (start frames, the t - 5 lag, ROI perturbations,
inserted noisy frames: `LocalClipDataset.plan`), and each costs a RoIAlign cut a frame
(`FrameFeatureStore.cut`) rather than ten VGG passes, so training sees fresh clips every epoch
where the feature cache (`tracker.training.feature_cache`) repeats `views` fixed sets.

Frame 0 is the exception: memory initialisation (Sec. 3.2) multiplies the dilated mask into
the backbone's activations before pool1, which no store of plain features can give. So
`ClipStartStore` keeps, for every frame a clip may start at, the (plain, masked) pool4 pair of
its ROI as the tracker's `init` crops it (the object's box doubled, unperturbed: what the
tracker sees at tracking time), computed once like the frame store. Items are the feature
cache's (`plain`, `masked`, `masks`, `placement`), so `train_local` takes either.

    <folder>/starts.json                                 key (format, backbone, mask dilation, least object)
    <folder>/<sequence>-<frames id>/starts.npy           [S] the start frames
    <folder>/<sequence>-<frames id>/plain.npy, masked.npy [S, 512, s, s] float16

Keyed like the frame store (`tracker.training.frame_features`): one folder a backbone, mask
dilation and least object size, each sequence in it by its own frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from tracker.training.frame_features import (FrameFeatureStore, backbone_id, check_store_key, save_atomically,
                                             sequence_folder, sequence_keys_of, stored_sequences)
from tracker.training.samples import LocalClipDataset, _roi_boxes, crop_mask, crop_roi, object_boxes

FORMAT_VERSION = 2


@dataclass
class ClipStartStore:
    """Frame 0's (plain, masked) pool4 of every frame a clip may start at, by sequence."""

    folder: Path
    starts: dict[str, np.ndarray]
    _rows: dict[str, dict[int, int]]
    _maps: dict[tuple[str, str], np.ndarray]
    folders: dict[str, Path] = field(default_factory=dict)
    """sequence -> its folder in the store."""

    @classmethod
    @torch.no_grad()
    def build(cls, folder: str | Path, sequences: Seq, model: nn.Module, min_object_pixels: int = 64,
              device: str | torch.device = "cpu", progress: bool = True,
              sequence_keys: Mapping[str, str] | None = None) -> ClipStartStore:
        """Compute what is missing for the frames of `sequences` whose object covers at least
        `min_object_pixels` (through `model.memory_features`, a `LocalModel`'s) and open the
        store on them; refuses a folder built with another backbone, mask dilation or least
        object size. `sequence_keys` as `FrameFeatureStore.build` takes them."""
        folder = Path(folder)
        check_store_key(folder / "starts.json", {"format_version": FORMAT_VERSION, "backbone": backbone_id(model.backbone),
                                                 "mask_dilation": int(model.config.mask_dilation),
                                                 "min_object_pixels": int(min_object_pixels)},
                        "clip starts of another backbone, another mask dilation or another least object size")
        keys = sequence_keys_of(sequences, sequence_keys)
        homes = {s.name: folder / sequence_folder(s.name, keys[s.name]) for s in sequences}
        model = model.to(device).eval()
        todo = [s for s in sequences if not (homes[s.name] / "masked.npy").is_file()]
        tables = {s.name: object_boxes(s) for s in todo}
        bar = tqdm(total=sum(int((tables[s.name].pixels >= min_object_pixels).sum()) for s in todo),
                   desc="clip starts", unit="frame", disable=not progress)
        for sequence in todo:
            table = tables[sequence.name]
            starts = np.flatnonzero(table.pixels >= min_object_pixels)
            target = homes[sequence.name]
            target.mkdir(parents=True, exist_ok=True)
            pairs = []
            for start in starts:
                image, mask = crop_roi(sequence, int(start), _roi_boxes(table.boxes[start][None])[0])
                pair = model.memory_features(image[None].to(device).float(), mask[None].to(device))
                pairs.append([part[0].to("cpu", torch.float16).numpy() for part in pair])
                bar.update()
            empty = np.zeros((0,), np.float16)  # no frame to start a clip at
            plain, masked = (np.stack([pair[i] for pair in pairs]) if pairs else empty for i in (0, 1))
            save_atomically(target / "starts.npy", starts)
            save_atomically(target / "plain.npy", plain)
            save_atomically(target / "masked.npy", masked)  # written last: a folder without it is redone
        bar.close()
        return cls.open(folder, keys)

    @classmethod
    def open(cls, folder: str | Path, sequence_keys: Mapping[str, str] | None = None) -> ClipStartStore:
        """The store's sequences `sequence_keys` (name -> frames id), or all it holds."""
        folder = Path(folder)
        if not (folder / "starts.json").is_file():
            raise FileNotFoundError(f"no clip-start store in {folder} (no starts.json)")
        folders = stored_sequences(folder, "masked.npy", sequence_keys)
        starts = {name: np.load(home / "starts.npy") for name, home in folders.items()}
        rows = {name: {int(frame): row for row, frame in enumerate(frames)} for name, frames in starts.items()}
        return cls(folder, starts, rows, {}, folders)

    def get(self, sequence: str, frame: int) -> tuple[Tensor, Tensor]:
        """(plain, masked) [512, s, s] float32 of a clip of `sequence` starting at `frame`."""
        row = self._rows.get(sequence, {}).get(int(frame))
        if row is None:
            raise KeyError(f"the clip-start store holds no start {frame} of {sequence!r}")
        out = []
        for part in ("plain", "masked"):
            if (sequence, part) not in self._maps:
                self._maps[(sequence, part)] = np.load(self.folders[sequence] / f"{part}.npy", mmap_mode="r")
            out.append(torch.from_numpy(np.asarray(self._maps[(sequence, part)][row], dtype=np.float32)))
        return out[0], out[1]


class StoreClipDataset(Dataset):
    """`clips`' plans (new every epoch: `set_epoch`) as the feature cache's items, their features
    read from `frames` (frames 1..T, inserted ones too) and `starts` (frame 0, at the start's
    unperturbed ROI; the clip's `placement` says so). Tracked clips (Sec. 5.1 step 5) work alike."""

    def __init__(self, clips: LocalClipDataset, frames: FrameFeatureStore, starts: ClipStartStore) -> None:
        self.clips, self.frames, self.starts = clips, frames, starts

    @property
    def config(self):
        return self.clips.config

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        plan = self.clips.plan(index)
        sequence = self.clips.sequences[plan.sequence]
        start = int(plan.frames[0])
        plain0, masked = self.starts.get(sequence.name, start)
        placement = plan.boxes.copy()
        placement[0] = _roi_boxes(self.clips.boxes[plan.sequence].boxes[start][None])[0]
        plain, masks = [plain0], [crop_mask(sequence, start, placement[0])]
        for k in range(1, len(plan.frames)):
            if k == plan.inserted:
                donor = self.clips.sequences[plan.insert_sequence]
                plain.append(self.frames.cut(donor.name, plan.insert_frame, plan.insert_box[None])[0])
                masks.append(torch.zeros_like(masks[0]))
            else:
                frame = int(plan.frames[k])
                plain.append(self.frames.cut(sequence.name, frame, plan.boxes[k][None])[0])
                masks.append(crop_mask(sequence, frame, plan.boxes[k]))
        return {"plain": torch.stack(plain), "masked": masked, "masks": torch.stack(masks),
                "placement": torch.from_numpy(placement), "inserted": torch.tensor(plan.inserted)}
