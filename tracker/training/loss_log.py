"""Training losses to a CSV file, and to TensorBoard where `tensorboard` is installed.

CSV is always written (one row a logged step, appended across resumed runs, flushed at once
so an interrupted run keeps what it logged). A resumed run first drops the rows logged after
its save point (`resume_at`): training repeats those steps, and the CSV must hold each step once. `torch.utils.tensorboard` needs the
`tensorboard` package, which pixtrack does not depend on: without it only the CSV is
written, and `LossLog.tensorboard` is False.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from torch import Tensor


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed
        return None
    return SummaryWriter(log_dir=str(folder))


class LossLog:
    """Rows of `step` plus named values; the first row fixes the columns.

    `path`: the CSV file. `tensorboard_dir`: event files go there too, if TensorBoard is
    importable. `enabled=False` (non-main distributed ranks) logs nothing.
    """

    def __init__(self, path: str | os.PathLike, tensorboard_dir: str | os.PathLike | None = None,
                 enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.columns: list[str] | None = None
        self._writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file() and self.path.stat().st_size:
                with self.path.open(newline="") as handle:
                    self.columns = next(csv.reader(handle), None)
            if tensorboard_dir is not None:
                self._writer = _tensorboard_writer(Path(tensorboard_dir))

    def resume_at(self, step: int) -> None:
        """Drop the rows of steps after `step` (0: every row), which a run resumed from the save
        point at `step` logs again. The file is rewritten whole, then renamed into place."""
        if not self.enabled or self.columns is None or not self.path.is_file():
            return
        with self.path.open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        kept = [row for row in rows if row and float(row[self.columns.index("step")]) <= step]
        if len(kept) == len(rows):
            return
        partial = self.path.with_name(self.path.name + ".tmp")
        with partial.open("w", newline="") as handle:
            csv.writer(handle).writerows([self.columns, *kept])
        os.replace(partial, self.path)

    @property
    def tensorboard(self) -> bool:
        return self._writer is not None

    def log(self, step: int, **values: float | Tensor) -> None:
        """Append one row; tensors are read back as floats (one host sync, so log sparingly)."""
        if not self.enabled:
            return
        row = {"step": int(step), **{k: float(v) for k, v in values.items()}}
        if self.columns is None:
            self.columns = list(row)
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        if set(row) != set(self.columns):
            raise ValueError(f"{self.path}: logged columns {sorted(row)} differ from the file's {self.columns}")
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([row[c] for c in self.columns])
        if self._writer is not None:
            for key, value in row.items():
                if key != "step":
                    self._writer.add_scalar(f"{self.path.stem}/{key}", value, int(step))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a CSV written by `LossLog` (for tests, plots and the closing summary)."""
    with Path(path).open(newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
