"""Tables 2 and 3 as Markdown, CSV and LaTeX (booktabs), the per-sequence numbers behind them,
and the clips' summary of Fig. 4: what `evaluation.tables`, the ablations and the
cross-validation write."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from pathlib import Path

import numpy as np

from evaluation.bootstrap import LEVEL, RESAMPLES, SEED, format_interval
from evaluation.protocols import ClipResults, SequenceScores
from evaluation.table_model import Row, Table


def _threshold_label(threshold: float) -> str:
    return f"threshold {threshold:g}"


def interval_note(sequences: int) -> str:
    """The caption line of a table with intervals (also cross-validation's summary)."""
    return (f"[low, high]: {LEVEL:.0%} bootstrap interval of the mean over the {sequences} sequences "
            f"({RESAMPLES} resamples, seed {SEED}; evaluation.bootstrap)")


def _cells_with_intervals(row: Row) -> list[str]:
    cells = row.formatted()
    if row.intervals is None:
        return cells
    return [f"{cell} {format_interval(*interval)}" if interval is not None else cell
            for cell, interval in zip(cells, row.intervals)]


def to_markdown(table: Table) -> str:
    lines = [f"**{table.title}**, {table.sequences} sequences", ""]
    for threshold, rows in table.blocks.items():
        header = [_threshold_label(threshold)] + [str(length) for length in table.lengths]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" + "---:|" * len(table.lengths))
        for row in rows:
            lines.append("| " + " | ".join([row.label] + _cells_with_intervals(row)) + " |")
        lines.append("")
    if table.intervals:
        lines += [f"_{interval_note(table.sequences)}_", ""]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    """Long-ish CSV: one line per (threshold, row), full precision for our numbers; then each
    length's bootstrap interval (`ci_low_<L>`, `ci_high_<L>`; empty where none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    bounds = [f"ci_{side}_{length}" for length in table.lengths for side in ("low", "high")]
    writer.writerow(["table", "threshold", "tracker", "source", *[str(length) for length in table.lengths], *bounds])
    for threshold, rows in table.blocks.items():
        for row in rows:
            cells = row.text if row.text is not None else ["" if v is None else repr(float(v)) for v in row.cells]
            limits: list[str] = []
            for interval in row.intervals or [None] * len(table.lengths):
                limits += [repr(interval[0]), repr(interval[1])] if interval else ["", ""]
            writer.writerow([table.number, f"{threshold:g}", row.label, row.source, *cells, *limits])
    return buffer.getvalue()


def per_sequence_csv(number: int, scores: Seq[SequenceScores], thresholds: Seq[float], lengths: Seq[int]) -> str:
    """The numbers a table averages: one line per (threshold, tracker, sequence), the mean IoU
    over frames 1..L in each length column. Where a tracker wins or loses is read here."""
    cells: dict[tuple[float, str, str], dict[int, float]] = {}
    for score in scores:
        for threshold in thresholds:
            value = float(score.mean()[score.thresholds.index(float(threshold))])
            cells.setdefault((float(threshold), score.tracker, score.sequence), {})[score.length] = value
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["table", "threshold", "tracker", "sequence", *[str(length) for length in lengths]])
    for (threshold, tracker, sequence), by_length in cells.items():
        row = ["" if by_length.get(int(n)) is None else repr(by_length[int(n)]) for n in lengths]
        writer.writerow([number, f"{threshold:g}", tracker, sequence, *row])
    return buffer.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(character, character) for character in text).replace("–", "--")


def to_latex(table: Table) -> str:
    """A booktabs tabular, one block per threshold, the best of our rows in bold."""
    columns = len(table.lengths)
    lines = [
        f"% {table.title}, {table.sequences} sequences (python -m evaluation.tables)",
        r"\begin{tabular}{l" + "r" * columns + "}",
        r"\toprule",
    ]
    for number, (threshold, rows) in enumerate(table.blocks.items()):
        if number:
            lines.append(r"\midrule")
        lines.append(" & ".join([f"Length, {_threshold_label(threshold)}"] + [str(v) for v in table.lengths]) + r" \\")
        lines.append(r"\midrule")
        ours = [row for row in rows if row.source == "ours"]
        best = [
            max((row.cells[i] for row in ours if row.cells[i] is not None), default=None) for i in range(columns)
        ]
        for row in rows:
            cells = row.formatted()
            if row.source == "ours" and len(ours) > 1:
                cells = [
                    rf"\textbf{{{cell}}}" if value is not None and value == best[i] else cell
                    for i, (cell, value) in enumerate(zip(cells, row.cells))
                ]
            lines.append(" & ".join([_latex(row.label)] + [_latex(c) if "textbf" not in c else c for c in cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write_table(table: Table, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"table{table.number}.csv", out / f"table{table.number}.tex"]
    paths[0].write_text(to_csv(table), encoding="utf-8")
    paths[1].write_text(to_latex(table), encoding="utf-8")
    return paths


def emit_table(table: Table, scores: Seq[SequenceScores], out: Path, source: str) -> str:
    """Write `table` as CSV and LaTeX into `out`, and the per-sequence numbers behind it
    (table<N>_per_sequence.csv); return its Markdown, with `source` as a caption line."""
    paths = write_table(table, out)
    paths.append(out / f"table{table.number}_per_sequence.csv")
    paths[-1].write_text(per_sequence_csv(table.number, scores, list(table.blocks), table.lengths), encoding="utf-8")
    print(f"wrote {', '.join(str(path) for path in paths)}", file=sys.stderr)
    return to_markdown(table) + f"\n_{source}_"

def clip_report(
    results: Mapping[str, ClipResults],
    thresholds: Seq[float],
    out: Path,
    heading: str,
    caption: str,
    plots: bool = True,
    csv_name: str = "auc.csv",
    plot_prefix: str = "fig4",
    row_header: str = "tracker",
    dpi: int = 300,
) -> str:
    """The clips' summary (Fig. 4): a Markdown table (rows = `results`' keys; AUC, mean IoU
    at each threshold), the same in `out/csv_name`, and with `plots` the ROC curves (AUC in
    the legend) and framewise IoU curves (first threshold) as `out/<plot_prefix>_roc` and
    `out/<plot_prefix>_framewise_iou` (PNG and PDF, titled `caption`). Returns the Markdown."""
    lines = [
        heading,
        "",
        f"| {row_header} | AUC | " + " | ".join(f"mean IoU @{t:g}" for t in thresholds) + " |",
        "|---|---:|" + "---:|" * len(thresholds),
    ]
    rows = [[row_header, "auc", *[f"mean_iou_{t:g}" for t in thresholds]]]
    for name, result in results.items():
        means = result.ious.mean(axis=(0, 2))
        lines.append(f"| {name} | {result.roc.auc():.4f} | " + " | ".join(f"{m:.4f}" for m in means) + " |")
        rows.append([name, repr(result.roc.auc()), *[repr(float(m)) for m in means]])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / csv_name, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    if plots:
        from evaluation.plots import plot_framewise_iou, plot_roc

        paths = plot_roc({name: result.roc for name, result in results.items()}, out / f"{plot_prefix}_roc",
                         title=caption, dpi=dpi)
        paths += plot_framewise_iou({name: result.framewise_iou()[0] for name, result in results.items()},
                                    out / f"{plot_prefix}_framewise_iou", threshold=thresholds[0], title=caption,
                                    dpi=dpi)
        print(f"wrote {', '.join(str(path) for path in paths)}", file=sys.stderr)
    return "\n".join(lines)


def plot_sequence_ious(scores: Seq[SequenceScores], number: int, length: int, threshold: float, out: Path) -> None:
    """IoU over time per sequence and tracker, the figure behind a table's numbers."""
    from evaluation.plots import plot_sequence_iou

    per_sequence: dict[str, dict[str, np.ndarray]] = {}
    for score in scores:
        if score.length == length:
            row = score.thresholds.index(float(threshold))
            per_sequence.setdefault(score.sequence, {})[score.tracker] = score.ious[row]
    paths = plot_sequence_iou(per_sequence, out / f"table{number}_iou_over_time_L{length}")
    print(f"wrote {', '.join(str(path) for path in paths)}", file=sys.stderr)
