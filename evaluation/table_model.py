"""The table model of Tables 2 and 3: rows of mean IoU per tracker and sequence length, one
block per mask threshold, and the paper's printed numbers beside them. Rendering is
`evaluation.table_render`; the command line `evaluation.tables`."""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

import numpy as np

from evaluation.bootstrap import bootstrap_interval, wants_interval
from evaluation.protocols import GT_ROI, PAPER_LENGTHS, TRACKING, SequenceScores


TABLE_PROTOCOLS = {2: GT_ROI, 3: TRACKING}
TITLES = {
    2: "Table 2: local segmentation with ROIs from the ground truth at t-5 (average IoU)",
    3: "Table 3: full tracking (average IoU)",
}

# The paper's numbers, copied exactly as printed (strings keep their printed digits).
PAPER = {
    2: {
        0.4: [
            ("ConLSTM", ("0.4690", "0.4405", "0.3962", "0.3342")),
            ("FCN", ("0.3785", "0.3582", "0.3157", "0.2304")),
        ],
    },
    3: {
        0.4: [
            ("2-stage ConLSTM", ("0.3992", "0.3606", "0.3201", "0.2564")),
            ("1-stage ConLSTM", ("0.380", "0.34601", "0.3046", "0.2419")),
            ("FCN", ("0.2275", "0.2058", "0.1678", "0.1437")),
        ],
        0.7: [
            ("2-stage ConLSTM", ("0.2485", "0.2302", "0.202", "0.1854")),
            ("1-stage ConLSTM", ("0.2080", "0.1926", "0.1679", "0.1518")),
            ("FCN", ("0.1030", "0.093", "0.0711", "0.058")),
        ],
    },
}
PAPER_LENGTH_COLUMNS = PAPER_LENGTHS


@dataclass
class Row:
    """One line of a block: a label and one cell per length (None = no value)."""

    label: str
    cells: list[float | None]
    source: str = "ours"
    text: list[str] | None = None
    """Cells as printed (the paper's own digits); None = format the floats."""
    intervals: list[tuple[float, float] | None] | None = None
    """Each cell's bootstrap interval over sequences (evaluation.bootstrap); None = none computed."""

    def formatted(self, digits: int = 4) -> list[str]:
        if self.text is not None:
            return list(self.text)
        return ["–" if value is None or math.isnan(value) else f"{value:.{digits}f}" for value in self.cells]


@dataclass
class Table:
    """Table 2 or 3: `blocks[threshold]` = rows (trackers, then the paper's where asked)."""

    number: int
    title: str
    lengths: tuple[int, ...]
    blocks: dict[float, list[Row]] = field(default_factory=dict)
    sequences: int = 0
    intervals: bool = False
    """Whether our rows carry bootstrap intervals."""

    def value(self, threshold: float, row: str, length: int) -> float | None:
        for candidate in self.blocks[threshold]:
            if candidate.label == row and candidate.source == "ours":
                return candidate.cells[self.lengths.index(length)]
        raise KeyError(f"table {self.number} has no row {row!r} at threshold {threshold}")


def build_table(
    number: int,
    scores: Seq[SequenceScores],
    thresholds: Seq[float],
    lengths: Seq[int],
    trackers: Seq[str],
    paper: bool = False,
    ci: bool | None = None,
) -> Table:
    """Average the per-sequence means into a table (rows = `trackers`, in that order); with
    `paper`, the paper's rows follow ours in each block where the paper has that threshold.
    `ci`: each cell's 95% bootstrap interval over its sequences (None: where there are at
    least `evaluation.bootstrap.MIN_SEQUENCES`)."""
    if not scores:
        raise ValueError(f"table {number}: no scores (empty test set?)")
    table = Table(number, TITLES.get(number, f"Table {number}"), tuple(int(v) for v in lengths))
    table.sequences = len({score.sequence for score in scores})
    table.intervals = wants_interval(ci, table.sequences)
    for threshold in thresholds:
        rows = []
        for tracker in trackers:
            cells: list[float | None] = []
            intervals: list[tuple[float, float] | None] = []
            for length in table.lengths:
                means = [
                    float(score.mean()[score.thresholds.index(float(threshold))])
                    for score in scores
                    if score.tracker == tracker and score.length == length
                ]
                cells.append(float(np.mean(means)) if means else None)
                intervals.append(bootstrap_interval(means) if means and table.intervals else None)
            rows.append(Row(tracker, cells, intervals=intervals if table.intervals else None))
        if paper:
            rows.extend(paper_block(number, float(threshold), table.lengths))
        table.blocks[float(threshold)] = rows
    return table


def paper_block(number: int, threshold: float, lengths: Seq[int]) -> list[Row]:
    """The paper's rows of table `number` at `threshold`, on our length columns."""
    rows = []
    for label, printed in PAPER.get(number, {}).get(threshold, []):
        text = [printed[PAPER_LENGTH_COLUMNS.index(length)] if length in PAPER_LENGTH_COLUMNS else "–" for length in lengths]
        cells = [float(value) if value != "–" else None for value in text]
        rows.append(Row(f"{label} (paper)", cells, source="paper", text=text))
    return rows


# ----------------------------------------------------------------------------- rendering
