"""VOT ground-truth regions <-> full-frame boolean masks, through vot-toolkit's own region I/O.

Reading and writing go through `vot.region` (no second RLE implementation), so what this
package writes is what the toolkit reads. Two toolkit traps are handled here:

- `vot.region.shapes.Mask(..., optimize=True)`, used by the writer and by the toolkit's
  reader (`config.mask_optimize_read`), treats a patch whose set pixels all lie in its
  first column as empty. A mask one pixel wide would be written as empty, and even when
  written correctly the toolkit would read it back as empty. Such masks are written as a
  two-column patch with an empty column on the left (offset x - 1, possibly -1), which both
  the toolkit and this reader decode to the exact mask.
- The toolkit's RLE decoder (numba, no bounds checks) writes past its buffer when the run
  lengths add up to more than the patch; lines are validated before they reach it.

Rectangles and polygons are rasterised with the toolkit's rasteriser into filled masks;
special codes (a single number, or NaN coordinates) mean "no object" and give empty masks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tracker.data.errors import DatasetError

EMPTY_MASK_LINE = "m0,0,0,0,0"


def mask_to_region(mask: np.ndarray) -> Any:
    """A full-frame HxW bool mask as a `vot.region.shapes.Mask` that the toolkit reads back exactly."""
    from vot.region.shapes import Mask

    mask = np.asarray(mask, dtype=bool)
    columns = np.flatnonzero(mask.any(axis=0))
    if columns.size and columns[0] == columns[-1]:
        # One column wide: pad an empty column on the left (see the module docstring).
        rows = np.flatnonzero(mask[:, columns[0]])
        x, top, bottom = int(columns[0]), int(rows[0]), int(rows[-1])
        patch = np.zeros((bottom - top + 1, 2), dtype=np.uint8)
        patch[:, 1] = mask[top : bottom + 1, x]
        return Mask(patch, offset=(x - 1, top), optimize=False)
    return Mask(mask.astype(np.uint8), offset=(0, 0), optimize=True)


def write_groundtruth(path: Path, masks: Iterable[np.ndarray]) -> None:
    """Write one `m...` line a mask with `vot.region.io.write_trajectory` (empty -> `m0,0,0,0,0`)."""
    write_regions(path, [mask_to_region(mask) for mask in masks])


def write_regions(path: Path, regions: list[Any]) -> None:
    """Write toolkit regions (e.g. from `mask_to_region`) one a line with `write_trajectory`."""
    from vot.region.io import write_trajectory

    write_trajectory(str(path), regions)


def _check_mask_line(text: str) -> str | None:
    """Why a `m...` line cannot be decoded safely, or None when it can."""
    try:
        values = [int(token) for token in text[1:].split(",")]
    except ValueError:
        return "mask values must be integers"
    if len(values) < 4:
        return "a mask needs x, y, width, height and run lengths"
    width, height = values[2:4]
    runs = values[4:]
    if width < 0 or height < 0 or any(run < 0 for run in runs):
        return "negative mask size or run length"
    if sum(runs) > width * height:
        return f"run lengths add up to {sum(runs)}, more than the {width}x{height} patch"
    return None


def parse_region_line(text: str, path: Path, line: int, frame_size: tuple[int, int]) -> Any:
    """Parse one ground-truth line with `vot.region.io`; errors name `path` and `line`."""
    from vot.region import Special
    from vot.region.io import create_mask_from_string, parse_region
    from vot.region.shapes import Mask, Polygon, Rectangle

    text = text.strip()
    if not text:
        raise DatasetError(path, "empty ground-truth line", line)
    if text[0] == "m":
        problem = _check_mask_line(text)
        if problem:
            raise DatasetError(path, f"unreadable mask ({problem}): {text[:60]!r}", line)
        # Decoded without the toolkit's optimisation, which would empty one-column patches.
        patch, offset = create_mask_from_string(text[1:].split(","))
        region = Mask(patch, offset=offset, optimize=False)
        height, width = frame_size
        rows = np.flatnonzero(patch.any(axis=1))
        columns = np.flatnonzero(patch.any(axis=0))
        if rows.size and (
            offset[0] + columns[0] < 0
            or offset[1] + rows[0] < 0
            or offset[0] + columns[-1] >= width
            or offset[1] + rows[-1] >= height
        ):
            raise DatasetError(
                path,
                f"mask pixels lie outside the {width}x{height} frame (patch at {offset}, "
                f"size {patch.shape[1]}x{patch.shape[0]})",
                line,
            )
        return region
    try:
        region = parse_region(text)
    except (ValueError, AssertionError, IndexError) as error:
        raise DatasetError(path, f"unreadable region {text[:60]!r} ({error or 'bad values'})", line) from None
    if not isinstance(region, (Rectangle, Polygon, Special)):
        raise DatasetError(path, f"not a rectangle, polygon or mask: {text[:60]!r}", line)
    return region


def read_groundtruth(path: Path, frame_size: tuple[int, int]) -> list[Any]:
    """Parse every line of a ground-truth file up front, so a bad line fails at load time.

    Trailing blank lines are ignored; a blank line inside the file is an error.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(path, "ground-truth file is missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"cannot read ground truth ({error})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [parse_region_line(text, path, number, frame_size) for number, text in enumerate(lines, start=1)]


def region_to_mask(region: Any, frame_size: tuple[int, int]) -> np.ndarray:
    """Rasterise a toolkit region to an HxW bool mask (special codes -> empty)."""
    from vot.region import Special

    height, width = frame_size
    if isinstance(region, Special):
        return np.zeros((height, width), dtype=bool)
    return region.rasterize((0, 0, width - 1, height - 1)).astype(bool)
