"""One entry point for any dataset on disk: `load_sequence` and `load_dataset` recognise the layout.

- A folder with `JPEGImages/` and `Annotations/` is a DAVIS root; any other folder is a VOT
  sequences folder (list.txt).
- `load_sequence` takes a VOT sequence folder, or a DAVIS sequence folder
  (`<root>/JPEGImages/480p/<name>` or `<root>/Annotations/480p/<name>`).
- `names`: None = every sequence (list.txt / all DAVIS folders); a string = a split list
  (`<root>/<names>.txt`, or DAVIS's ImageSets lists, e.g. "train"); a list = those sequences.
Everything checkable without decoding images is checked before these return.
"""

from __future__ import annotations

from collections.abc import Sequence as Names
from pathlib import Path

from tracker.data.davis import is_davis_root, load_davis_dataset, load_davis_sequence
from tracker.data.errors import DatasetError
from tracker.data.sequence import Sequence
from tracker.data.vot import load_vot_dataset, load_vot_sequence


def load_sequence(path: str | Path) -> Sequence:
    """A VOT sequence folder (masks, boxes, polygons or VOT2016 PNG masks) or a DAVIS sequence folder."""
    path = Path(path)
    if path.parent.parent.name in ("JPEGImages", "Annotations") and not (path / "sequence").is_file():
        return load_davis_sequence(path.parents[2], path.name, path.parent.name)
    return load_vot_sequence(path)


def load_dataset(root: str | Path, names: str | Names[str] | None = None) -> list[Sequence]:
    """Every sequence of a VOT sequences folder or a DAVIS root (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder is missing")
    if is_davis_root(root):
        return load_davis_dataset(root, names)
    if names is None and not (root / "list.txt").is_file():
        raise DatasetError(
            root, "neither a VOT sequences folder (no list.txt) nor a DAVIS root (no JPEGImages/ and Annotations/)"
        )
    return load_vot_dataset(root, names)
