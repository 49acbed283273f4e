"""Tables 2 and 3 of the paper: average IoU per tracker and sequence length, one block per
mask threshold, as Markdown on stdout and CSV / LaTeX (booktabs) files.

    python -m evaluation.tables [--trackers pixtrack,pixtrack-1stage,pixtrack-fcn] [--checkpoint NAME=PATH]
        [--thresholds 0.4 0.7] [--lengths 20 40 80 160] [--dataset DIR] [--device cpu]
        [--out DIR] [--workspace W] [--paper] [--clips N]

With no arguments: the registered trackers' shipped checkpoints on the default benchmark
(workspace/sequences); trackers that cannot be built are left out with a note. A cell is
the mean over sequences of the mean IoU over frames 1..L (evaluation.protocols), with its 95%
bootstrap interval over sequences where there are at least 5 (`--ci` / `--no-ci` force it on
or off; evaluation.bootstrap). Runs are
cached (outputs/cache/runs by default), so a second call re-reads rather than re-tracks.
`--workspace W` scores the masks `vot evaluate` stored in W instead of tracking (Table 3
only: VOT runs are full tracking). `--checkpoint NAME=folds.json` evaluates k-fold
checkpoints (evaluation.protocols.load_checkpoint_map). `--clips N` adds the pixel AUC
over N random 32-frame clips (Fig. 4).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.bootstrap import LEVEL, RESAMPLES, SEED, bootstrap_interval, format_interval, wants_interval
from evaluation.protocols import (
    CLIP_LENGTH,
    GT_ROI,
    PAPER_LENGTHS,
    PAPER_THRESHOLDS,
    PROTOCOLS,
    TRACKING,
    ClipResults,
    SequenceScores,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO / "workspace" / "sequences"
DEFAULT_OUT = REPO / "outputs" / "tables"
DEFAULT_CACHE = REPO / "outputs" / "cache" / "runs"
DEFAULT_TRACKERS = ("pixtrack", "pixtrack-1stage", "pixtrack-fcn")

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


# ----------------------------------------------------------------------------- command line


def _names(values: Seq[str] | None) -> list[str] | None:
    """`--trackers a,b c` -> [a, b, c]."""
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def _same_tracker(name: str, trackers: Seq[str]) -> str:
    """The one of `trackers` that `name` names, by name or alias (`two-stage` = `pixtrack`);
    `name` itself when none does or it is not registered (a label, a typo: reported by the caller)."""
    from tracker.registry import canonical_name, known_names

    if name in trackers or name not in known_names():
        return name
    same = [tracker for tracker in trackers if tracker in known_names() and canonical_name(tracker) == canonical_name(name)]
    return same[0] if len(same) == 1 else name


def parse_checkpoints(values: Seq[str] | None, trackers: Seq[str]) -> dict[str, object]:
    """`--checkpoint NAME=PATH` (or a bare PATH for a single tracker) -> {name: path or
    sequence -> path mapping (a .json file of k-fold checkpoints)}."""
    from evaluation.protocols import load_checkpoint_map

    result: dict[str, object] = {}
    for value in values or []:
        name, separator, path = value.partition("=")
        if not separator:
            if len(trackers) != 1:
                raise ValueError(f"--checkpoint {value!r}: say which tracker it is for (NAME=PATH), as {len(trackers)} trackers run")
            name, path = trackers[0], value
        name = _same_tracker(name, trackers)
        if name not in trackers:
            raise ValueError(f"--checkpoint {value!r}: {name!r} is not among the trackers ({', '.join(trackers)})")
        if path.endswith(".json"):
            result[name] = load_checkpoint_map(path)
        else:
            if not Path(path).is_file():
                raise FileNotFoundError(f"--checkpoint {value!r}: no file {path!r}")
            result[name] = path
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.tables",
        description="Tables 2 and 3 of the paper (average IoU per tracker and sequence length).",
    )
    parser.add_argument("--trackers", nargs="+", help=f"tracker names, comma or space separated (default: {','.join(DEFAULT_TRACKERS)}; with --workspace: every tracker with results)")
    parser.add_argument("--checkpoint", action="append", metavar="NAME=PATH", help="checkpoint of a tracker (repeatable); PATH.json = a k-fold map sequence -> checkpoint")
    parser.add_argument("--thresholds", nargs="+", type=float, default=list(PAPER_THRESHOLDS), help="mask thresholds, one block each (default: %(default)s)")
    parser.add_argument("--lengths", nargs="+", type=int, default=list(PAPER_LENGTHS), help="sequence lengths, one column each (default: %(default)s)")
    parser.add_argument("--tables", nargs="+", type=int, choices=(2, 3), help="which tables (default: 2 3; with --workspace: 3)")
    parser.add_argument("--dataset", type=Path, help=f"VOT sequences folder or DAVIS root (default: {DEFAULT_DATASET.relative_to(REPO)}, or the workspace's sequences)")
    parser.add_argument("--sequences", nargs="+", help="only these sequences (names, comma or space separated)")
    parser.add_argument("--split", help="only the sequences of a split list (<dataset>/<split>.txt, or DAVIS's ImageSets), e.g. train")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="fp32 (default), bf16 (CPU with AVX512-BF16, or CUDA) or fp16 (CUDA); pixtrack and pixtrack-1stage only; rows are then labelled e.g. pixtrack@bf16 (and cached apart)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for table<N>.csv / .tex (default: %(default)s)")
    parser.add_argument("--workspace", type=Path, help="score the masks `vot evaluate` stored in this VOT workspace instead of tracking")
    parser.add_argument("--experiment", default="unsupervised", help="the workspace's experiment to read (default: %(default)s)")
    parser.add_argument("--paper", action="store_true", help="print the paper's numbers beside ours")
    parser.add_argument("--ci", action=argparse.BooleanOptionalAction, default=None,
                        help="95%% bootstrap interval over sequences beside each mean (default: on from 5 sequences)")
    parser.add_argument("--clips", type=int, default=0, help="also the pixel ROC AUC over this many random clips (the paper: 1200)")
    parser.add_argument("--clip-length", type=int, default=CLIP_LENGTH, help="frames a clip scores after its initial one (default: %(default)s)")
    parser.add_argument("--clip-protocol", choices=PROTOCOLS, default=GT_ROI, help="ROIs of the clips (default: %(default)s, as Fig. 4)")
    parser.add_argument("--plots", action="store_true", help="also write figures to --out: IoU over time per sequence (Table 3) and, with --clips, Fig. 4's ROC and framewise IoU")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clips (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="run cache folder (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="keep no runs")
    parser.add_argument("--refresh", action="store_true", help="track again even where runs are cached (and replace them)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _load_sequences(dataset: Path, sequences: Seq[str] | None, split: str | None):
    """The test set, every sequence checked trackable (two frames, a first mask) before any is tracked."""
    from tracker.data import check_all_trackable, load_dataset

    names = _names(sequences)
    if names is not None and split is not None:
        raise ValueError("give --sequences or --split, not both")
    loaded = load_dataset(dataset, split if split is not None else names)
    if not loaded:
        raise ValueError(f"the test set is empty: no sequences in {dataset}")
    return check_all_trackable(loaded)


def _tracker_specs(args, device: str | None, sequences) -> list:
    from evaluation.protocols import registered_tracker
    from tracker.registry import tracker_names

    explicit = _names(args.trackers)
    names = explicit or [name for name in DEFAULT_TRACKERS if name in tracker_names()]
    if not names:
        raise ValueError(f"none of the default trackers ({', '.join(DEFAULT_TRACKERS)}) is registered; known: {', '.join(tracker_names())}")
    checkpoints = parse_checkpoints(args.checkpoint, names)
    specs = []
    for name in names:
        spec = registered_tracker(name, checkpoints.get(name), device=device, precision=args.precision)
        if explicit is None:
            # Defaults: a tracker whose shipped checkpoint is missing is left out, with a note.
            try:
                spec.tracker_for(sequences[0].name)
            except (FileNotFoundError, ValueError, RuntimeError, OSError) as error:
                print(f"note: left out tracker {name!r}: {error}", file=sys.stderr)
                continue
        specs.append(spec)
    if not specs:
        raise ValueError("no tracker could be built; pass --trackers and --checkpoint")
    return specs


def run(args: argparse.Namespace) -> int:
    from evaluation.results_cache import RunCache, dataset_id

    tables = sorted(set(args.tables or ([3] if args.workspace else [2, 3])))
    thresholds = [float(value) for value in args.thresholds]
    for threshold in thresholds:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"--thresholds: {threshold} is not in [0, 1]")
    lengths = [int(value) for value in args.lengths]
    if min(lengths) < 1:
        raise ValueError(f"--lengths must be positive, got {lengths}")
    outputs: list[str] = []
    if args.workspace is not None:
        from evaluation.vot_results import results_folder, workspace_scores, workspace_sequences_folder, workspace_trackers

        if 2 in tables:
            raise ValueError("--workspace gives Table 3 only: `vot evaluate` runs full tracking, not Table 2's ROIs")
        if args.clips:
            raise ValueError("--clips needs probability maps; VOT results hold binary masks")
        results_folder(args.workspace)  # the most likely mistake first
        dataset = args.dataset or workspace_sequences_folder(args.workspace)
        sequences = _load_sequences(dataset, args.sequences, args.split)
        trackers = _names(args.trackers) or workspace_trackers(args.workspace, args.experiment)
        scores = workspace_scores(args.workspace, sequences, trackers, args.experiment, lengths, thresholds)
        source = (f"VOT results in {args.workspace} ({args.experiment}): masks binarised by the tracker "
                  "(`python -m tracker.vot --threshold`, 0.5), so every threshold block is the same")
        table = build_table(3, scores, thresholds, lengths, trackers, paper=args.paper, ci=args.ci)
        outputs.append(emit_table(table, scores, args.out, source))
        if args.plots:
            plot_sequence_ious(scores, 3, max(lengths), thresholds[0], args.out)
        print("\n\n".join(outputs))
        return 0

    from tracker.device import resolve_device

    device = str(resolve_device(args.device))
    dataset = args.dataset or DEFAULT_DATASET
    if not Path(dataset).exists():
        raise FileNotFoundError(
            f"dataset {str(dataset)!r} does not exist; generate the benchmark (`pixtrack synth`) or pass --dataset"
        )
    sequences = _load_sequences(dataset, args.sequences, args.split)
    specs = _tracker_specs(args, device, sequences)
    cache = RunCache(None if args.no_cache else args.cache)
    dataset_key = dataset_id(dataset)
    source = f"{len(sequences)} sequences of {dataset}"
    from evaluation.protocols import evaluate_lengths

    for number in tables:
        scores = evaluate_lengths(
            specs, sequences, TABLE_PROTOCOLS[number], lengths, thresholds, cache, dataset_key, device,
            progress=not args.no_progress, refresh=args.refresh,
        )
        table = build_table(number, scores, thresholds, lengths, [spec.name for spec in specs], paper=args.paper,
                            ci=args.ci)
        outputs.append(emit_table(table, scores, args.out, source))
        if args.plots:
            plot_sequence_ious(scores, number, max(lengths), thresholds[0], args.out)
    if args.clips:
        outputs.append(_clip_auc(args, specs, sequences, cache, dataset_key, device, thresholds))
    print("\n\n".join(outputs))
    return 0


def emit_table(table: Table, scores: Seq[SequenceScores], out: Path, source: str) -> str:
    """Write `table` as CSV and LaTeX into `out`, and the per-sequence numbers behind it
    (table<N>_per_sequence.csv); return its Markdown, with `source` as a caption line."""
    paths = write_table(table, out)
    paths.append(out / f"table{table.number}_per_sequence.csv")
    paths[-1].write_text(per_sequence_csv(table.number, scores, list(table.blocks), table.lengths), encoding="utf-8")
    print(f"wrote {', '.join(str(path) for path in paths)}", file=sys.stderr)
    return to_markdown(table) + f"\n_{source}_"


def _clip_auc(args, specs, sequences, cache, dataset_key: str, device: str, thresholds: Seq[float]) -> str:
    from evaluation.protocols import evaluate_clips, sample_clips

    clips = sample_clips(sequences, args.clips, args.clip_length, seed=args.seed)
    results = evaluate_clips(
        specs, sequences, clips, args.clip_protocol, thresholds, cache, dataset_key,
        device=device, progress=not args.no_progress, refresh=args.refresh,
    )
    heading = (f"**Pixel ROC AUC** over {len(clips)} clips of {args.clip_length} frames "
               f"(protocol {args.clip_protocol}, seed {args.seed})")
    return clip_report(results, thresholds, args.out, heading, f"{len(clips)} clips, protocol {args.clip_protocol}",
                       plots=args.plots)


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


def main(argv: Seq[str] | None = None) -> int:
    from tracker.arithmetic import pin_blas_branch

    pin_blas_branch()  # before any MKL call (tracker.arithmetic)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("evaluation.tables: interrupted (finished sequences are cached)", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as error:
        print(f"evaluation.tables: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
