"""VOT sequences: reading the toolkit's "default" layout (and VOT2016's), writing it.

Layout read and written (what `vot.dataset.common.read_sequence` loads):

    <root>/list.txt                   one sequence name a line
    <root>/<name>/sequence            key=value: channels.color=color/%08d.jpg, format=default,
                                      fps, name, width, height, length (+ extra keys, kept as metadata)
    <root>/<name>/color/00000001.jpg  frames, 1-based, 8 digits
    <root>/<name>/groundtruth.txt     one region a line: `m...` masks (RLE), rectangles, polygons
    <root>/<name>/anchor.value        one number a frame, 1 = forward start of the multistart experiment
    <root>/<name>/<attribute>.tag     optional, one 0/1 a frame (VOT's per-frame attributes)

Also read: the legacy VOT2016 layout (no `sequence` file, frames `<name>/00000001.jpg`), and
VOT2016-style per-frame PNG masks: one PNG a frame, named like the frame with `.png`
(`00000001.png` for frame 1), in `<name>/masks/` or directly beside legacy frames in
`<name>/`. PNG masks, when present, take precedence over groundtruth.txt (VOT2016's
groundtruth.txt holds rotated boxes; the segmentation annotations were released as PNGs).
Any non-zero pixel is object.

Writing: frames that are already JPEG files are copied byte for byte (after a decode check);
others are encoded at `JPEG_QUALITY` (95, 4:4:4). Masks are written exactly (RLE), so
masks read back equal masks written. Anchors (multistart starts): the first frame whose
mask is not empty, then again every `ANCHOR_INTERVAL` (50) frames or at the next frame with
a visible object after that.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Sequence as Names
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracker.data.errors import DatasetError
from tracker.data.images import JPEG_QUALITY, frame_masks, image_size, write_jpeg
from tracker.data.regions import mask_to_region, read_groundtruth, write_regions
from tracker.data.sequence import FileSequence, Sequence
from tracker.files import write_text_atomic

ANCHOR_INTERVAL = 50
DEFAULT_PATTERN = "color/%08d.jpg"
LEGACY_PATTERN = "%08d.jpg"
_STANDARD_KEYS = ("channels.color", "format", "fps", "name", "width", "height", "length")
_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


# ---------------------------------------------------------------------------- reading


def read_properties(path: Path) -> dict[str, str]:
    """A VOT `sequence` file as a dict; a line that is not key=value is an error naming it."""
    properties: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"cannot read the sequence file ({error})") from None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY.match(key.strip()):
            raise DatasetError(path, f"expected key=value, got {line[:60]!r}", number)
        properties[key.strip()] = value.strip()
    return properties


def _int_property(properties: dict[str, str], key: str, path: Path) -> int | None:
    if key not in properties:
        return None
    try:
        value = int(properties[key])
    except ValueError:
        raise DatasetError(path, f"{key}={properties[key]!r} is not an integer") from None
    if value <= 0:
        raise DatasetError(path, f"{key}={value} must be positive")
    return value


def _frame_files(folder: Path, properties: dict[str, str], sequence_file: Path) -> tuple[list[Path], str]:
    pattern = properties.get("channels.color")
    if pattern is None:
        pattern = DEFAULT_PATTERN if (folder / "color").is_dir() else LEGACY_PATTERN
    elif "%" not in pattern:
        pattern = pattern.rstrip("/") + "/%08d.jpg"
    length = _int_property(properties, "length", sequence_file)
    if length is not None:
        files = [folder / (pattern % number) for number in range(1, length + 1)]
        for number, file in enumerate(files, start=1):
            if not file.is_file():
                declared = f"{sequence_file.name} says length={length}"
                raise DatasetError(file, f"frame {number} of {length} is missing ({declared})")
        return files, pattern
    files = []
    while (folder / (pattern % (len(files) + 1))).is_file():
        files.append(folder / (pattern % (len(files) + 1)))
    if not files:
        raise DatasetError(folder, f"sequence has no frames (looked for {pattern % 1})")
    return files, pattern


def _png_masks(folder: Path, frames: list[Path], frame_size: tuple[int, int]) -> list[Path] | None:
    """VOT2016-style per-frame PNG masks, or None when the sequence has none."""
    if (folder / "masks").is_dir():
        mask_folder = folder / "masks"
    elif frames[0].parent == folder and (folder / f"{frames[0].stem}.png").is_file():
        mask_folder = folder
    else:
        return None
    masks = frame_masks(frames, mask_folder, frame_size)
    return masks


def _read_tags(folder: Path, length: int) -> dict[str, np.ndarray]:
    """Per-frame `*.tag` / `*.label` files: one 0/1 a line (blank = 0, missing lines = 0, as the toolkit reads them)."""
    tags = {}
    for file in sorted([*folder.glob("*.tag"), *folder.glob("*.label")]):
        lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        if len(lines) > length:
            raise DatasetError(file, f"{len(lines)} values for {length} frames")
        flags = np.zeros(length, dtype=bool)
        for number, value in enumerate(lines, start=1):
            if value not in ("", "0", "1"):
                raise DatasetError(file, f"expected 0 or 1, got {value[:20]!r}", number)
            flags[number - 1] = value == "1"
        tags[file.stem] = flags
    return tags


def load_vot_sequence(path: str | Path) -> FileSequence:
    """A VOT sequence folder (default or VOT2016 layout), checked up front, frames read lazily."""
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(folder, "sequence folder is missing")
    sequence_file = folder / "sequence"
    properties = read_properties(sequence_file) if sequence_file.is_file() else {}
    frames, pattern = _frame_files(folder, properties, sequence_file)

    height, width = image_size(frames[0])
    declared = (_int_property(properties, "height", sequence_file), _int_property(properties, "width", sequence_file))
    if None not in declared and declared != (height, width):
        raise DatasetError(
            frames[0], f"frame is {width}x{height} but {sequence_file} says {declared[1]}x{declared[0]}"
        )
    frame_size = (height, width)

    masks = _png_masks(folder, frames, frame_size)
    mask_source = folder / "masks" if masks is not None else None
    if masks is None:
        groundtruth = folder / properties.get("groundtruth", "groundtruth.txt")
        if not groundtruth.is_file() and list(folder.glob("groundtruth_*.txt")):
            raise DatasetError(folder, "multi-object sequence (groundtruth_*.txt); one object a sequence is supported")
        masks = read_groundtruth(groundtruth, frame_size)
        mask_source = groundtruth
        if len(masks) != len(frames):
            hint = ""
            if len(masks) > len(frames):
                hint = f"; frame file {folder / (pattern % (len(frames) + 1))} is missing"
            raise DatasetError(groundtruth, f"{len(masks)} regions for {len(frames)} frames{hint}")

    metadata = {key: value for key, value in properties.items() if key not in _STANDARD_KEYS}
    return FileSequence(
        folder.name,
        frames,
        masks,
        frame_size,
        tags=_read_tags(folder, len(frames)),
        metadata=metadata,
        mask_source=mask_source,
    )


def read_vot_list(list_file: Path) -> list[tuple[int, str]]:
    """(line number, name) for each non-blank line of a list file."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(list_file, "sequence list is missing") from None
    return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]


def load_vot_dataset(root: str | Path, names: str | Names[str] | None = None) -> list[Sequence]:
    """The sequences of a VOT sequences folder: all of list.txt, a split list `<root>/<names>.txt`
    when `names` is a string, or the named sequences. Every sequence is checked before returning."""
    root = Path(root)
    if names is None or isinstance(names, str):
        list_file = root / f"{names or 'list'}.txt"
        entries = read_vot_list(list_file)
        if not entries:
            raise DatasetError(list_file, "sequence list is empty")
        for number, name in entries:
            if not (root / name).is_dir():
                raise DatasetError(list_file, f"names sequence {name!r}, but {root / name} does not exist", number)
        names = [name for _, name in entries]
    else:
        for name in names:
            if not (root / name).is_dir():
                raise DatasetError(root / name, f"sequence {name!r} does not exist")
    return [load_vot_sequence(root / name) for name in names]


# ---------------------------------------------------------------------------- writing


def anchor_values(nonempty: Names[bool], interval: int = ANCHOR_INTERVAL) -> list[int]:
    """anchor.value contents: 1 at forward starts, 0 elsewhere. The first start is the first
    frame with a visible object; each next one the first such frame `interval` or more
    frames after the previous start."""
    values = [0] * len(nonempty)
    index = 0
    while index < len(nonempty):
        if nonempty[index]:
            values[index] = 1
            index += interval
        else:
            index += 1
    return values


def check_sequence_name(name: str) -> str:
    """A sequence name must be usable as a folder name and a list.txt line."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\n\r\t") or name != name.strip():
        raise ValueError(f"sequence name {name!r} cannot be a folder name")
    return name


def _check_tag_name(tag: str) -> str:
    if not _KEY.match(tag):
        raise ValueError(f"tag name {tag!r} must be letters, digits, '_', '-' or '.'")
    return tag


def write_frames(
    sequence: Sequence,
    paths: Names[Path],
    quality: int | None,
    on_mask: Callable[[int, np.ndarray], None],
    progress: bool = False,
) -> None:
    """Write every frame (JPEG sources copied, others encoded) and hand each mask, checked, to
    `on_mask(index, mask)`; shared by the VOT and DAVIS writers, which store masks their way.

    Each frame is decoded once, which also proves the source readable; one frame and one
    mask are in memory at a time.
    """
    height, width = sequence.frame_size
    for index in tqdm(range(len(sequence)), desc=sequence.name, unit="frame", disable=not progress, leave=False):
        frame = sequence.frame(index)
        source = sequence.frame_path(index)
        if quality is None and source is not None and source.suffix.lower() in (".jpg", ".jpeg"):
            shutil.copyfile(source, paths[index])
        else:
            write_jpeg(paths[index], frame, JPEG_QUALITY if quality is None else quality)
        mask = np.asarray(sequence.mask(index), dtype=bool)
        if mask.shape != (height, width):
            raise DatasetError(
                source or Path(sequence.name),
                f"mask of frame {index} is {mask.shape[1]}x{mask.shape[0]}, the frame is {width}x{height}",
            )
        on_mask(index, mask)


def check_quality(quality: int | None) -> int | None:
    if quality is not None and not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    return quality


def prepare_folder(folder: Path, overwrite: bool) -> Path:
    """A fresh temporary folder beside `folder`; renamed into place once complete, so an
    interrupted write never leaves a half-written sequence under the real name."""
    if folder.exists() and not overwrite:
        raise DatasetError(folder, "already exists (overwrite it explicitly, e.g. --force)")
    partial = folder.with_name(f".{folder.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def commit_folder(partial: Path, folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return folder


def write_vot_sequence(
    root: str | Path,
    sequence: Sequence,
    *,
    quality: int | None = None,
    fps: int = 30,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write `sequence` as `<root>/<name>/` in the toolkit's default layout; returns the folder.

    `quality` None copies JPEG source frames unchanged and encodes others at quality 95; a
    number re-encodes every frame at that quality. Ground truth goes through
    `vot.region.io.write_trajectory`; tags become `<tag>.tag` files, metadata extra
    key=value lines of the sequence file.
    """
    check_quality(quality)
    name = check_sequence_name(sequence.name)
    for key, value in sequence.metadata.items():
        if not _KEY.match(key) or "\n" in str(value):
            raise ValueError(f"sequence {name!r}: metadata {key}={value!r} cannot be a sequence-file line")
    tags = {_check_tag_name(tag): flags for tag, flags in sequence.tags.items()}
    folder = Path(root) / name
    partial = prepare_folder(folder, overwrite)
    try:
        (partial / "color").mkdir()
        paths = [partial / (DEFAULT_PATTERN % (index + 1)) for index in range(len(sequence))]
        regions, visible = [], []

        def keep(index: int, mask: np.ndarray) -> None:
            regions.append(mask_to_region(mask))
            visible.append(bool(mask.any()))

        write_frames(sequence, paths, quality, keep, progress)
        write_regions(partial / "groundtruth.txt", regions)
        anchors = anchor_values(visible)
        (partial / "anchor.value").write_text("".join(f"{value}\n" for value in anchors), encoding="utf-8")
        for tag, flags in tags.items():
            (partial / f"{tag}.tag").write_text("".join("1\n" if f else "0\n" for f in flags), encoding="utf-8")
        height, width = sequence.frame_size
        properties = {
            "channels.color": DEFAULT_PATTERN,
            "format": "default",
            "fps": str(fps),
            "name": name,
            "width": str(width),
            "height": str(height),
            "length": str(len(sequence)),
        }
        extra = sorted((key, str(value)) for key, value in sequence.metadata.items() if key not in properties)
        properties.update(extra)
        (partial / "sequence").write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return commit_folder(partial, folder)


def write_vot_list(root: str | Path, names: Iterable[str]) -> Path:
    """Write `<root>/list.txt`, one sequence name a line; returns its path."""
    names = [check_sequence_name(name) for name in names]
    return write_text_atomic(Path(root) / "list.txt", "".join(f"{name}\n" for name in names))


def write_vot_dataset(
    root: str | Path,
    sequences: Names[Sequence],
    *,
    quality: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Write sequences into a VOT sequences folder and add them to its list.txt (names already
    listed there stay listed). Existing sequence folders are an error unless `overwrite`,
    checked before anything is written."""
    root = Path(root)
    check_quality(quality)
    names = [check_sequence_name(sequence.name) for sequence in sequences]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate sequence names: {sorted({n for n in names if names.count(n) > 1})}")
    for name in names:
        if (root / name).exists() and not overwrite:
            raise DatasetError(root / name, "already exists (overwrite it explicitly, e.g. --force)")
    root.mkdir(parents=True, exist_ok=True)
    folders = []
    for sequence in tqdm(sequences, desc="sequences", unit="seq", disable=not progress):
        folders.append(write_vot_sequence(root, sequence, quality=quality, overwrite=overwrite, progress=progress))
    extend_vot_list(root, names)
    return folders


def extend_vot_list(root: str | Path, names: Iterable[str]) -> Path:
    """Add names to `<root>/list.txt` (created if absent), keeping those already listed first."""
    root = Path(root)
    listed = [name for _, name in read_vot_list(root / "list.txt")] if (root / "list.txt").is_file() else []
    return write_vot_list(root, [*listed, *(name for name in names if name not in listed)])
