"""The `Sequence` every reader returns and every tracker, protocol and metric consumes.

A sequence is frames (HxWx3 uint8 RGB) with one object mask each (HxW bool; empty where the
object is fully occluded). File-backed sequences decode a frame only when asked for it, so
a dataset of thousands of frames costs nothing until it is tracked. Optional per-frame
`tags` (attribute name -> bool per frame, as in VOT's `*.tag` files) let evaluations report
results per challenge; `metadata` holds the sequence file's extra key=value pairs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tracker.data.errors import DatasetError
from tracker.data.images import read_mask, read_rgb
from tracker.data.regions import region_to_mask


class Sequence(ABC):
    """Frames and masks of one object, indexed 0..len-1."""

    def __init__(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.tags: dict[str, np.ndarray] = {}
        for tag, values in (tags or {}).items():
            flags = np.zeros(len(self), dtype=bool)
            values = np.asarray(values, dtype=bool)
            if values.ndim != 1 or values.size > len(self):
                raise ValueError(f"sequence {name!r}: tag {tag!r} has {values.size} values for {len(self)} frames")
            flags[: values.size] = values
            self.tags[tag] = flags
        self.metadata: dict[str, str] = dict(metadata or {})

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    @abstractmethod
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame."""

    @abstractmethod
    def _frame(self, index: int) -> np.ndarray: ...

    @abstractmethod
    def _mask(self, index: int) -> np.ndarray: ...

    def frame_path(self, index: int) -> Path | None:
        """The file frame `index` is decoded from, or None for frames held in memory."""
        return None

    def mask_origin(self, index: int) -> tuple[Path, int | None] | None:
        """Where the mask of frame `index` is read from: (file, line) for a groundtruth.txt
        region, (mask image, None) for a PNG mask, None for masks held in memory. Lets
        errors about a mask's contents name the file and line to fix."""
        return None

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as HxWx3 uint8 RGB."""
        return self._frame(self._check_index(index))

    def mask(self, index: int) -> np.ndarray:
        """Object mask of frame `index` as HxW bool."""
        return self._mask(self._check_index(index))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for index in range(len(self)):
            yield self.frame(index), self.mask(index)

    def _check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"sequence {self.name!r} has {len(self)} frames; no frame {index}")
        return index

    def __repr__(self) -> str:
        height, width = self.frame_size
        return f"{type(self).__name__}({self.name!r}, {len(self)} frames, {width}x{height})"


class InMemorySequence(Sequence):
    """A sequence held in arrays: for tests and generated data. Validated on construction."""

    def __init__(
        self,
        name: str,
        frames: Any,
        masks: Any,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self._frames = [np.asarray(frame) for frame in frames]
        self._masks = [np.asarray(mask) for mask in masks]
        if not self._frames:
            raise ValueError(f"sequence {name!r} has no frames")
        if len(self._frames) != len(self._masks):
            raise ValueError(f"sequence {name!r}: {len(self._frames)} frames but {len(self._masks)} masks")
        height, width = self._frames[0].shape[:2]
        for index, (frame, mask) in enumerate(zip(self._frames, self._masks)):
            if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
                raise ValueError(
                    f"sequence {name!r}, frame {index}: expected a {height}x{width}x3 uint8 RGB frame, "
                    f"got shape {frame.shape} dtype {frame.dtype}"
                )
            if mask.shape != (height, width):
                raise ValueError(
                    f"sequence {name!r}, frame {index}: mask shape {mask.shape} differs from the "
                    f"frame's {(height, width)}"
                )
        self._masks = [mask.astype(bool, copy=False) for mask in self._masks]
        self._size = (height, width)
        super().__init__(name, tags, metadata)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    def _frame(self, index: int) -> np.ndarray:
        return self._frames[index]

    def _mask(self, index: int) -> np.ndarray:
        return self._masks[index]


class FileSequence(Sequence):
    """Frames decoded from image files on demand; masks from PNG files or parsed VOT regions.

    `masks[i]` is a `Path` (a mask image, decoded on demand) or a `vot.region` region
    (rasterised on demand). Readers check up front what is cheap to know (files exist,
    counts agree, mask image sizes); what needs decoding fails when read, naming the file.
    """

    def __init__(
        self,
        name: str,
        frame_paths: list[Path],
        masks: list[Any],
        frame_size: tuple[int, int],
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        mask_source: Path | None = None,
    ) -> None:
        if not frame_paths:
            raise DatasetError(mask_source or Path(name), "sequence has no frames")
        if len(frame_paths) != len(masks):
            raise DatasetError(
                mask_source or frame_paths[0].parent,
                f"{len(masks)} masks for {len(frame_paths)} frames",
            )
        self._frame_paths = list(frame_paths)
        self._masks = list(masks)
        self._mask_source = mask_source
        self._size = (int(frame_size[0]), int(frame_size[1]))
        super().__init__(name, tags, metadata)

    def __len__(self) -> int:
        return len(self._frame_paths)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    def frame_path(self, index: int) -> Path | None:
        return self._frame_paths[self._check_index(index)]

    def mask_origin(self, index: int) -> tuple[Path, int | None] | None:
        source = self._masks[self._check_index(index)]
        if isinstance(source, Path):
            return source, None
        return (self._mask_source, index + 1) if self._mask_source is not None else None

    def _frame(self, index: int) -> np.ndarray:
        path = self._frame_paths[index]
        frame = read_rgb(path)
        if frame.shape[:2] != self._size:
            raise DatasetError(
                path,
                f"frame is {frame.shape[1]}x{frame.shape[0]}, the sequence's frames are "
                f"{self._size[1]}x{self._size[0]}",
            )
        return frame

    def _mask(self, index: int) -> np.ndarray:
        source = self._masks[index]
        if isinstance(source, Path):
            mask = read_mask(source)
            if mask.shape != self._size:
                raise DatasetError(
                    source,
                    f"mask is {mask.shape[1]}x{mask.shape[0]} but its frame is {self._size[1]}x{self._size[0]}",
                )
            return mask
        return region_to_mask(source, self._size)
