"""DAVIS: reading the benchmark's layout, and writing it (for generated data).

    <root>/JPEGImages/480p/<name>/00000.jpg ...   frames, 0-based, 5 digits
    <root>/Annotations/480p/<name>/00000.png ...  one mask a frame
    <root>/ImageSets/...                          split lists (see `split_names`)
    <root>/tags/<name>.json                       optional per-frame tags (written by `pixtrack synth`)

Masks: 0 = background, anything else = object. Real DAVIS files are 0/255 grey or palette
images, and a few are two-channel; empty masks occur (full occlusion). In DAVIS 2017's
multi-object annotations every object index counts as the one object (the union).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence as Names
from pathlib import Path

import numpy as np

from tracker.data.errors import DatasetError
from tracker.data.images import frame_masks, image_size, write_mask_png
from tracker.data.sequence import FileSequence, Sequence
from tracker.data.vot import check_quality, check_sequence_name, commit_folder, prepare_folder, write_frames

RESOLUTION = "480p"


def is_davis_root(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir()


def split_names(root: Path, split: str, resolution: str = RESOLUTION) -> tuple[Path, list[tuple[int, str]]]:
    """The list file of split `split` and its (line, name) entries.

    Looked for, in order: `<root>/<split>.txt` (one name a line), DAVIS 2017's
    `ImageSets/2017/<split>.txt` (one name a line), DAVIS 2016's
    `ImageSets/<resolution>/<split>.txt` (lines `/JPEGImages/480p/<name>/00000.jpg /Annotations/...`).
    """
    candidates = [
        root / f"{split}.txt",
        root / "ImageSets" / "2017" / f"{split}.txt",
        root / "ImageSets" / resolution / f"{split}.txt",
        root / "ImageSets" / "2016" / f"{split}.txt",
    ]
    for list_file in candidates:
        if not list_file.is_file():
            continue
        entries: list[tuple[int, str]] = []
        seen = set()
        for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):  # DAVIS 2016: a frame path, the sequence is its folder
                parts = line.split()[0].strip("/").split("/")
                if len(parts) < 3:
                    expected = "/JPEGImages/<resolution>/<name>/<frame>"
                    raise DatasetError(list_file, f"expected {expected}, got {line[:60]!r}", number)
                line = parts[-2]
            if line not in seen:
                seen.add(line)
                entries.append((number, line))
        return list_file, entries
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetError(root, f"no list for split {split!r} (tried {tried})")


def _read_tags(root: Path, name: str, length: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Per-frame tags and metadata from `<root>/tags/<name>.json`, if there is one."""
    path = root / "tags" / f"{name}.json"
    if not path.is_file():
        return {}, {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tags = {str(tag): np.asarray(values, dtype=bool) for tag, values in data.get("tags", {}).items()}
        metadata = {str(key): str(value) for key, value in data.get("metadata", {}).items()}
    except (ValueError, TypeError, AttributeError) as error:
        raise DatasetError(path, f"unreadable tags ({error})") from None
    for tag, flags in tags.items():
        if flags.ndim != 1 or flags.size > length:
            raise DatasetError(path, f"tag {tag!r} has {flags.size} values for {length} frames")
    return tags, metadata


def load_davis_sequence(root: str | Path, name: str, resolution: str = RESOLUTION) -> FileSequence:
    """One DAVIS sequence; file names, counts and mask sizes are checked up front."""
    root = Path(root)
    frame_folder = root / "JPEGImages" / resolution / name
    mask_folder = root / "Annotations" / resolution / name
    for folder in (frame_folder, mask_folder):
        if not folder.is_dir():
            raise DatasetError(folder, f"folder of sequence {name!r} is missing")
    frames = sorted(frame_folder.glob("*.jpg"))
    if not frames:
        raise DatasetError(frame_folder, "sequence has no frames (no .jpg files)")
    try:
        numbers = [int(frame.stem) for frame in frames]
    except ValueError:
        bad = next(frame for frame in frames if not frame.stem.isdigit())
        raise DatasetError(bad, "frame name is not a frame number") from None
    digits = len(frames[0].stem)
    for expected, number in zip(range(numbers[0], numbers[0] + len(numbers)), numbers):
        if number != expected:
            raise DatasetError(frame_folder / f"{expected:0{digits}d}.jpg", "frame is missing")
    frame_size = image_size(frames[0])
    masks = frame_masks(frames, mask_folder, frame_size)
    expected_masks = {mask.name for mask in masks}
    for extra in sorted(mask_folder.glob("*.png")):
        if extra.name not in expected_masks:
            raise DatasetError(frame_folder / f"{extra.stem}.jpg", f"frame is missing (its mask {extra} exists)")
    tags, metadata = _read_tags(root, name, len(frames))
    return FileSequence(name, frames, masks, frame_size, tags=tags, metadata=metadata, mask_source=mask_folder)


def load_davis_dataset(
    root: str | Path, names: str | Names[str] | None = None, resolution: str = RESOLUTION
) -> list[Sequence]:
    """DAVIS sequences: all of them (None), a split by name (e.g. "train"), or the named ones."""
    root = Path(root)
    frames_root = root / "JPEGImages" / resolution
    if not frames_root.is_dir():
        raise DatasetError(frames_root, "DAVIS frame folder is missing")
    if names is None:
        names = sorted(p.name for p in frames_root.iterdir() if p.is_dir())
        if not names:
            raise DatasetError(frames_root, "no sequences")
    elif isinstance(names, str):
        list_file, entries = split_names(root, names, resolution)
        for number, name in entries:
            if not (frames_root / name).is_dir():
                missing = frames_root / name
                raise DatasetError(list_file, f"names sequence {name!r}, but {missing} does not exist", number)
        names = [name for _, name in entries]
    else:
        for name in names:
            if not (frames_root / name).is_dir():
                raise DatasetError(frames_root / name, f"sequence {name!r} does not exist")
    return [load_davis_sequence(root, name, resolution) for name in names]


def write_davis_sequence(
    root: str | Path,
    sequence: Sequence,
    *,
    quality: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write `sequence` in the DAVIS layout (frames, 0/255 PNG masks, tags JSON); returns its frame folder."""
    check_quality(quality)
    root = Path(root)
    name = check_sequence_name(sequence.name)
    frame_folder = root / "JPEGImages" / RESOLUTION / name
    mask_folder = root / "Annotations" / RESOLUTION / name
    if mask_folder.exists() and not overwrite:
        raise DatasetError(mask_folder, "already exists (overwrite it explicitly, e.g. --force)")
    partial_frames = prepare_folder(frame_folder, overwrite)
    partial_masks = prepare_folder(mask_folder, True)
    try:
        paths = [partial_frames / f"{index:05d}.jpg" for index in range(len(sequence))]
        def save(index: int, mask: np.ndarray) -> None:
            write_mask_png(partial_masks / f"{index:05d}.png", mask)

        write_frames(sequence, paths, quality, save, progress)
        if sequence.tags or sequence.metadata:
            (root / "tags").mkdir(parents=True, exist_ok=True)
            document = {
                "tags": {tag: flags.astype(int).tolist() for tag, flags in sequence.tags.items()},
                "metadata": sequence.metadata,
            }
            (root / "tags" / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    except BaseException:
        for partial in (partial_frames, partial_masks):
            shutil.rmtree(partial, ignore_errors=True)
        raise
    commit_folder(partial_masks, mask_folder)
    return commit_folder(partial_frames, frame_folder)


def write_davis_list(root: str | Path, names: Iterable[str], split: str = "val") -> Path:
    """Write `ImageSets/2017/<split>.txt` (one name a line), the list the VOT toolkit's DAVIS
    loader reads; `load_dataset(root, split)` reads it too."""
    path = Path(root) / "ImageSets" / "2017" / f"{split}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{check_sequence_name(name)}\n" for name in names), encoding="utf-8")
    return path
