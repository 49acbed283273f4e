"""The one error type of the dataset readers and writers.

A `DatasetError` always names the file at fault (and the line, for text files), so a
researcher pointing the tools at a broken folder learns what to fix without a traceback.
It is a `ValueError`, which the `pixtrack` CLI reports as one line.
"""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """Bad or missing dataset input; the message names the file (and line) at fault."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")
