"""Where a tracker's IoU goes: each frame's 1 - IoU split into the part its map adds beyond the
object (leak), the part of the object it misses inside its ROI (miss) and the part of the
object outside its ROI (placement), with the ROI's centre and scale error against the
ground truth. Run under full tracking (Table 3) and with ground-truth ROIs (Table 2's
protocol), it says which part of a two-stage tracker fails: placement drift (the global
model), maps that leak past the object, or maps that lose it (the local model and its memory).

    python -m evaluation.diagnosis --dataset data/davis2016-train --sequences bear bus elephant \
        --trackers pixtrack --length 80 --out outputs/diagnosis [--checkpoint NAME=PATH]

For a tracker whose map is zero outside the ROI it cropped (every tracker here: the map is
pasted back into the ROI), the three parts add up to 1 - IoU exactly. The ROI is read from the
tracker's state after each step (`state.roi`: the box that cropped the frame); a tracker
without one gets the placement part from the map alone (none) and no ROI errors.

Writes OUT/frames.csv (one row a frame), OUT/summary.csv and OUT/summary.md (means over
frames 1..L per tracker, protocol and sequence, and over all sequences) and, per tracker and
protocol, OUT/<tracker>-<protocol>.png: each sequence's losses stacked over time.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence as Seq
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.running import GT_ROI, PROTOCOLS, TRACKING, local_roi, object_box, resample_indices, run_tracker

PARTS = ("leak", "miss", "outside")
"""The three parts of 1 - IoU."""


@dataclass(frozen=True)
class FrameErrors:
    """One frame's IoU and where the rest went (fractions of the union of map and object)."""

    iou: float
    leak: float
    """Map pixels beyond the object."""
    miss: float
    """Object pixels inside the ROI that the map misses."""
    outside: float
    """Object pixels outside the ROI (no map can reach them): placement."""
    centre_error: float
    """Distance of the ROI's centre from the object box's, in ROI sides (NaN: no object or no ROI)."""
    scale_ratio: float
    """ROI side over the side the object's box gives (`local_roi`; NaN: no object or no ROI)."""


def roi_region(roi: Seq[float] | None, frame_size: tuple[int, int]) -> np.ndarray:
    """The frame pixels whose centres lie in the square ROI (cx, cy, side); all of them for None."""
    height, width = frame_size
    if roi is None:
        return np.ones((height, width), dtype=bool)
    cx, cy, side = (float(value) for value in roi)
    xs, ys = np.arange(width) + 0.5, np.arange(height) + 0.5
    inside_x = (xs >= cx - side / 2) & (xs < cx + side / 2)
    inside_y = (ys >= cy - side / 2) & (ys < cy + side / 2)
    return inside_y[:, None] & inside_x[None, :]


def decompose(prob: np.ndarray, truth: np.ndarray, roi: Seq[float] | None, threshold: float = 0.4) -> FrameErrors:
    """A frame's IoU (`evaluation.metrics.frame_iou`'s, map binarised at `threshold`) and its
    losses. Empty map and empty object: IoU 1, no losses."""
    predicted = np.asarray(prob) >= threshold
    truth = np.asarray(truth, dtype=bool)
    region = roi_region(roi, truth.shape)
    union = int(np.count_nonzero(predicted | truth))
    if union == 0:
        return FrameErrors(1.0, 0.0, 0.0, 0.0, math.nan, math.nan)
    iou = np.count_nonzero(predicted & truth) / union
    leak = np.count_nonzero(predicted & ~truth) / union
    miss = np.count_nonzero(truth & region & ~predicted) / union
    outside = np.count_nonzero(truth & ~region & ~predicted) / union
    centre_error = scale_ratio = math.nan
    box = object_box(truth)
    if box is not None and roi is not None:
        cx, cy, side = (float(value) for value in roi)
        centre_error = math.hypot(cx - box[0], cy - box[1]) / side
        scale_ratio = side / float(local_roi(box)[2])
    return FrameErrors(float(iou), float(leak), float(miss), float(outside), centre_error, scale_ratio)


def _roi_of(state: Any) -> list[float] | None:
    roi = getattr(state, "roi", None)
    if roi is None:
        return None
    values = roi.detach().cpu().double().numpy().reshape(-1) if hasattr(roi, "detach") else np.ravel(roi)
    return [float(value) for value in values[:3]]


def diagnose_sequence(tracker: Any, sequence: Any, length: int, protocol: str = TRACKING,
                      threshold: float = 0.4) -> list[FrameErrors]:
    """`tracker` on steps 1..`length` of `sequence` (resampled as the tables do) under `protocol`."""
    from evaluation.running import FrameReader

    reader = FrameReader(sequence)
    indices = resample_indices(len(sequence), length)
    errors: list[FrameErrors] = []

    def record(step: int, prob: np.ndarray, state: Any) -> None:
        errors.append(decompose(prob, reader.mask(indices[step]), _roi_of(state), threshold))

    run_tracker(tracker, sequence, indices, protocol, on_step=record)
    return errors


@dataclass(frozen=True)
class Row:
    """Means over a sequence's frames (or over all sequences' means)."""

    tracker: str
    protocol: str
    sequence: str
    errors: FrameErrors


def _means(table: Seq[FrameErrors]) -> FrameErrors:
    """Each field's mean, NaNs left out (a sequence whose object is never visible has no ROI errors)."""
    values = np.array([astuple(e) for e in table], dtype=np.float64)
    with np.errstate(all="ignore"):
        return FrameErrors(*(float(np.nanmean(c)) if np.isfinite(c).any() else math.nan for c in values.T))


def summarise(tracker: str, protocol: str, sequence: str, errors: Seq[FrameErrors]) -> Row:
    return Row(tracker, protocol, sequence, _means(errors))


def overall(rows: Seq[Row]) -> list[Row]:
    """Per tracker and protocol, the mean over sequences of their means (as the tables average)."""
    keys = dict.fromkeys((row.tracker, row.protocol) for row in rows)
    return [Row(*key, "all", _means([row.errors for row in rows if (row.tracker, row.protocol) == key]))
            for key in keys]


NAMES = [field.name for field in fields(FrameErrors)]


def write_frames(path: Path, records: Seq[tuple[str, str, str, int, FrameErrors]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tracker", "protocol", "sequence", "step", *NAMES])
        for tracker, protocol, sequence, step, errors in records:
            writer.writerow([tracker, protocol, sequence, step, *(f"{value:.5f}" for value in astuple(errors))])


def summary_markdown(rows: Seq[Row]) -> str:
    lines = ["| tracker | protocol | sequence | IoU | leak | miss (in ROI) | outside ROI | ROI centre error | ROI scale |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        e = row.errors
        cells = [f"{value:.3f}" if math.isfinite(value) else "-" for value in astuple(e)]
        lines.append(f"| {row.tracker} | {row.protocol} | {row.sequence} | " + " | ".join(cells) + " |")
    lines += ["", "leak + miss + outside = 1 - IoU (fractions of the union of map and object, means over frames "
              "1..L); ROI centre error in ROI sides; ROI scale = ROI side / the side the object's box gives."]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, rows: Seq[Row]) -> Path:
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tracker", "protocol", "sequence", *NAMES])
        for row in rows:
            writer.writerow([row.tracker, row.protocol, row.sequence, *(f"{v:.5f}" for v in astuple(row.errors))])
    path = out / "summary.md"
    path.write_text(summary_markdown(rows), encoding="utf-8")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.diagnosis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="DAVIS root or VOT sequences folder")
    parser.add_argument("--sequences", nargs="+", default=None, help="only these sequences (default: all)")
    parser.add_argument("--trackers", nargs="+", default=["pixtrack"], help="registered trackers (default: pixtrack)")
    parser.add_argument("--checkpoint", action="append", default=None, metavar="NAME=PATH",
                        help="a tracker's checkpoint (file or k-fold map .json), as evaluation.tables takes it")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=[TRACKING, GT_ROI],
                        help="full tracking and/or ground-truth ROIs (default: both)")
    parser.add_argument("--length", type=int, default=80, help="frames tracked after the first (default: 80)")
    parser.add_argument("--threshold", type=float, default=0.4, help="where maps are binarised (default: 0.4)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("outputs/diagnosis"), help="output folder")
    return parser


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from evaluation.plots import plot_error_parts
    from evaluation.running import registered_tracker
    from evaluation.seen import warn_training_set
    from evaluation.tables import parse_checkpoints
    from tracker.data import check_all_trackable, load_dataset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold {args.threshold} is not in [0, 1]")
    sequences = check_all_trackable(load_dataset(args.dataset, args.sequences))
    if not sequences:
        raise ValueError(f"no sequences in {args.dataset}")
    checkpoints = parse_checkpoints(args.checkpoint, args.trackers)
    args.out.mkdir(parents=True, exist_ok=True)
    records, rows = [], []
    jobs = [(name, protocol) for name in args.trackers for protocol in args.protocols]
    bar = tqdm(total=len(jobs) * len(sequences), desc="diagnosis", unit="run")
    for name, protocol in jobs:
        spec = registered_tracker(name, checkpoints.get(name), device=args.device)
        warn_training_set([spec], sequences)
        per_sequence = {}
        for sequence in sequences:
            errors = diagnose_sequence(spec.tracker_for(sequence.name), sequence, args.length, protocol, args.threshold)
            per_sequence[sequence.name] = errors
            records += [(name, protocol, sequence.name, step, e) for step, e in enumerate(errors, start=1)]
            rows.append(summarise(name, protocol, sequence.name, errors))
            bar.update()
        parts = {sequence: {part: np.array([getattr(e, part) for e in errors]) for part in PARTS}
                 for sequence, errors in per_sequence.items()}
        iou = {sequence: np.array([e.iou for e in errors]) for sequence, errors in per_sequence.items()}
        plot_error_parts(parts, iou, args.out / f"{name}-{protocol}.png",
                         f"{name}, {protocol}: 1 - IoU by cause (threshold {args.threshold})")
    bar.close()
    write_frames(args.out / "frames.csv", records)
    rows += overall(rows)
    path = write_summary(args.out, rows)
    print(path.read_text(encoding="utf-8") + f"\nwrote {args.out}/frames.csv, summary.csv, summary.md and the figures")
    return 0


def main(argv: Seq[str] | None = None) -> int:
    from tracker.arithmetic import pin_blas_branch
    from tracker.console import run_guarded

    pin_blas_branch()
    args = build_parser().parse_args(argv)
    return run_guarded("evaluation.diagnosis", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
