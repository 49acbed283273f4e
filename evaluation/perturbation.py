"""How far a tracker's IoU moves when its input changes by no more than kernel rounding.

Why: a closed-loop tracker feeds its own output back (the next ROI comes from this frame's
map), so a difference in the last bit of one convolution can put the next ROI one pixel
elsewhere, and from there the trajectory is another. Two CPUs whose kernels round
differently (oneDNN against Winograd, AVX-512 against AVX2 code paths, another thread
count) then report other scores from the same code and inputs. Rather than hope every
machine rounds alike, this check measures the sensitivity: it tracks each sequence once as
given and `trials` times with the input perturbed by a seeded noise far below anything
visible, and reports per sequence how far the mean IoU moves.

Noise models (`noise`):
- `lsb`: +-1 grey level on `pixels` randomly chosen pixel channels of every frame (the
  value moves away from 0 / 255 where it is at the end of the range).
- `ulp`: every input value of each convolution that takes the RGB image (in_channels == 3)
  moves to its next fp32 neighbour up or down at random: one unit in the last place, what
  a kernel's rounding does.

The tracker is built afresh for every run (nothing one run learns, e.g. the FCN's
first-frame fine-tuning, leaks into the next).
"""

from __future__ import annotations

import csv
import io
import types
from collections.abc import Callable, Iterator, Sequence as Seq
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluation.metrics import binarize, frame_iou

NOISES = ("lsb", "ulp")
ULP = 2.0 ** -23
"""fp32's unit in the last place relative to 1 (the largest relative step of `--noise ulp`)."""
TIE_BAND = 2.0 ** -20
"""A probability this close to the threshold flips with rounding alone (about 8 fp32 ulps at 0.5)."""


def perturb_frame(frame: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """`frame` (HxWx3 uint8) with `pixels` of its values moved by one grey level."""
    flat = np.array(frame, dtype=np.uint8, copy=True).reshape(-1)
    chosen = rng.choice(flat.size, size=min(pixels, flat.size), replace=False)
    step = rng.choice(np.array([-1, 1]), size=chosen.size)
    values = flat[chosen].astype(np.int16)
    step[values == 0], step[values == 255] = 1, -1
    flat[chosen] = (values + step).astype(np.uint8)
    return flat.reshape(np.shape(frame))


def _takes_the_image(layer: nn.Module) -> bool:
    """A convolution with 3 input channels: nn.Conv2d, or any module with a 4-D `weight` of
    shape [out, 3, kh, kw] (the frozen backbone keeps its kernels as buffers)."""
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels == 3
    weight = getattr(layer, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() == 4 and weight.shape[1] == 3


def _image_convolutions(tracker: Any) -> list[nn.Module]:
    """The convolutions that take the RGB image, in every module the tracker holds, directly
    or through its helper objects (a segmenter holding the backbone), a few levels deep."""
    found: dict[int, nn.Module] = {}
    seen: set[int] = set()

    def visit(value: Any, depth: int) -> None:
        if id(value) in seen or depth > 3:
            return
        seen.add(id(value))
        if isinstance(value, nn.Module):
            found.update({id(layer): layer for layer in value.modules() if _takes_the_image(layer)})
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item, depth + 1)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item, depth + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType, types.FunctionType,
                                                                   types.MethodType)):
            for attribute in vars(value).values():
                visit(attribute, depth + 1)

    visit(tracker, 0)
    return list(found.values())


@contextmanager
def ulp_noise(tracker: Any, seed: int) -> Iterator[int]:
    """While active, every input value of `tracker`'s image convolutions moves one ulp up or
    down (seeded); yields how many convolutions that is (0: the tracker has none, e.g. `static`)."""
    generator = torch.Generator().manual_seed(seed)

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        (x, *rest) = inputs
        up = torch.randint(0, 2, x.shape, generator=generator, dtype=torch.bool).to(x.device)
        towards = torch.where(up, torch.full_like(x, float("inf")), torch.full_like(x, float("-inf")))
        return (torch.nextafter(x, towards), *rest)

    handles = [layer.register_forward_pre_hook(hook) for layer in _image_convolutions(tracker)]
    try:
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class Run:
    """Per-frame IoU over frames 1.. of one run, and its probabilities near the threshold."""

    ious: np.ndarray
    near_ties: int = 0

    @property
    def mean(self) -> float:
        return float(self.ious.mean()) if self.ious.size else float("nan")


def track_once(tracker: Any, sequence: Any, threshold: float, limit: int | None = None,
               frame: Callable[[int], np.ndarray] | None = None) -> Run:
    """Track `sequence` from its first mask; IoU of every later frame (`frame(i)` supplies frames)."""
    frame = frame or sequence.frame
    length = len(sequence) if limit is None else min(limit, len(sequence))
    state = tracker.init(frame(0), np.asarray(sequence.mask(0), dtype=bool))
    ious, ties = [], 0
    for index in range(1, length):
        prob, state = tracker.track(frame(index), state)
        prob = np.asarray(prob, dtype=np.float32)
        ties += int(np.count_nonzero(np.abs(prob - threshold) < TIE_BAND))
        mask = binarize(prob, threshold).numpy()
        ious.append(float(frame_iou(mask, np.asarray(sequence.mask(index), dtype=bool))))
    return Run(np.array(ious, dtype=np.float64), ties)


@dataclass
class SequenceReport:
    """One sequence: the run as given, the perturbed runs, and how far they moved."""

    sequence: str
    base: Run
    perturbed: list[Run] = field(default_factory=list)

    @property
    def largest_shift(self) -> float:
        """Largest |perturbed mean IoU - unperturbed mean IoU| over the trials."""
        return max((abs(run.mean - self.base.mean) for run in self.perturbed), default=0.0)

    @property
    def first_divergence(self) -> int | None:
        """First frame (1-based, as tracked) where any trial's IoU differs from the base by > 0.01."""
        frames = [int(np.flatnonzero(np.abs(run.ious - self.base.ious) > 0.01)[0]) + 1
                  for run in self.perturbed if np.any(np.abs(run.ious - self.base.ious) > 0.01)]
        return min(frames) if frames else None


def perturbation_check(
    build: Callable[[], Any],
    sequences: Seq[Any],
    trials: int = 3,
    noise: str = "lsb",
    pixels: int = 16,
    seed: int = 0,
    threshold: float = 0.5,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[SequenceReport]:
    """Track every sequence as given and `trials` times perturbed (see the module docstring)."""
    if noise not in NOISES:
        raise ValueError(f"noise {noise!r}: expected one of {', '.join(NOISES)}")
    if trials < 1:
        raise ValueError(f"trials {trials}: need at least 1")
    if pixels < 1:
        raise ValueError(f"pixels {pixels}: need at least 1")
    reports = []
    for number, sequence in enumerate(sequences):
        report = SequenceReport(sequence.name, track_once(build(), sequence, threshold, limit))
        for trial in range(trials):
            trial_seed = int(np.random.SeedSequence([seed, number, trial]).generate_state(1)[0])
            tracker = build()
            if noise == "lsb":
                rng = np.random.default_rng(trial_seed)
                run = track_once(tracker, sequence, threshold, limit,
                                 frame=lambda i: perturb_frame(sequence.frame(i), pixels, rng))
            else:
                with ulp_noise(tracker, trial_seed) as hooked:
                    if hooked == 0:
                        raise ValueError(f"--noise ulp: tracker {getattr(tracker, 'name', tracker)!r} has no "
                                         "convolution on the image to perturb; use --noise lsb")
                    run = track_once(tracker, sequence, threshold, limit)
            report.perturbed.append(run)
        if progress is not None:
            progress(f"{sequence.name}: IoU {report.base.mean:.4f}, moved up to {report.largest_shift:.4f}")
        reports.append(report)
    return reports


def summary_markdown(reports: Seq[SequenceReport], caption: str) -> str:
    """Per sequence: mean IoU as given, each trial's, the largest shift, the first frame that
    moved, probabilities within 2^-20 of the threshold; then the same for the mean over sequences."""
    trials = len(reports[0].perturbed) if reports else 0
    header = ["sequence", "IoU", *[f"trial {t + 1}" for t in range(trials)], "largest shift", "first moved", "near ties"]
    lines = [f"**Perturbation check**: {caption}", "", "| " + " | ".join(header) + " |",
             "|---|" + "---:|" * (len(header) - 1)]
    for report in reports:
        first = report.first_divergence
        cells = [report.sequence, f"{report.base.mean:.4f}", *[f"{run.mean:.4f}" for run in report.perturbed],
                 f"{report.largest_shift:.4f}", "–" if first is None else f"frame {first}", str(report.base.near_ties)]
        lines.append("| " + " | ".join(cells) + " |")
    if reports:
        base = float(np.mean([r.base.mean for r in reports]))
        means = [float(np.mean([r.perturbed[t].mean for r in reports])) for t in range(trials)]
        shift = max(abs(m - base) for m in means)
        lines.append("| " + " | ".join(["**mean**", f"{base:.4f}", *[f"{m:.4f}" for m in means], f"{shift:.4f}", "", ""]) + " |")
    return "\n".join(lines)


def summary_csv(reports: Seq[SequenceReport]) -> str:
    """sequence, run (0 = as given), mean IoU, frames, near ties: one line a run."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sequence", "run", "mean_iou", "frames", "near_ties"])
    for report in reports:
        for index, run in enumerate([report.base, *report.perturbed]):
            writer.writerow([report.sequence, index, repr(run.mean), run.ious.size, run.near_ties])
    return buffer.getvalue()


def write_report(reports: Seq[SequenceReport], out: Path, caption: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "perturbation.md", out / "perturbation.csv"]
    paths[0].write_text(summary_markdown(reports, caption) + "\n", encoding="utf-8")
    paths[1].write_text(summary_csv(reports), encoding="utf-8")
    return paths
