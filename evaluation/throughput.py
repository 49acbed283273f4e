"""Throughput of the evaluation metrics: is the harness ever the bottleneck? (issue 8, item 3)

    python -m evaluation.throughput [--device cpu|cuda] [--frames 32] [--roi 224]
        [--frame-size 854x480] [--repeats 10] [--threads N] [--out throughput.json]

Times, on the inputs' device, what the protocols run per clip or sequence:

- `PixelROC.update` on one ROC clip (`frames` maps of `roi` x `roi`, 10001 logit bins);
- `frame_iou` of `frames` full-frame masks (the tables' per-frame IoU);
- `binarize` + `frame_iou` of probability maps (what a table does at one threshold);
- `boundary_f` of `frames` full-frame masks (the DAVIS extra; the slowest measure).

Prints a Markdown table (median ms a call, pixels per second, and frames per second next to
a tracker's ~5 frames/s on the CPU) and writes JSON. The maps are random but realistic:
sigmoid scores of a smooth blob plus noise, masks of about a tenth of the frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from evaluation.metrics import PixelROC, binarize, boundary_f, frame_iou

DEFAULT_OUT = "outputs/throughput-{device}.json"


def synthetic_maps(frames: int, height: int, width: int, device: torch.device,
                   seed: int = 0) -> tuple[Tensor, Tensor]:
    """(prob [frames, H, W] float32 in [0, 1], gt [frames, H, W] bool): an elliptic object of
    about a tenth of the frame drifting across it, and noisy sigmoid scores around it."""
    generator = torch.Generator().manual_seed(seed)
    ys = torch.linspace(-1.0, 1.0, height).view(1, height, 1)
    xs = torch.linspace(-1.0, 1.0, width).view(1, 1, width)
    centre = torch.linspace(-0.4, 0.4, frames).view(frames, 1, 1)
    distance = ((xs - centre) / 0.35) ** 2 + (ys / 0.35) ** 2
    gt = distance < 1.0
    logits = 4.0 * (1.0 - distance) + 2.0 * torch.randn(frames, height, width, generator=generator)
    return torch.sigmoid(logits).to(device), gt.to(device)


def benchmarks(frames: int, roi: int, frame_size: tuple[int, int], device: torch.device,
               roc: PixelROC | None = None) -> dict[str, tuple[Callable[[], Any], int]]:
    """name -> (the call to time, pixels it processes); the ROC clips go into `roc`."""
    width, height = frame_size
    roi_prob, roi_gt = synthetic_maps(frames, roi, roi, device)
    prob, gt = synthetic_maps(frames, height, width, device, seed=1)
    masks = prob >= 0.5
    roc = roc if roc is not None else PixelROC(device=device)
    full = frames * height * width
    return {
        f"PixelROC.update, {frames} x {roi}x{roi}": (lambda: roc.update(roi_prob, roi_gt), frames * roi * roi),
        f"frame_iou, {frames} x {width}x{height} masks": (lambda: frame_iou(masks, gt), full),
        f"binarize + frame_iou, {frames} x {width}x{height}": (lambda: frame_iou(binarize(prob, 0.4), gt), full),
        f"boundary_f, {frames} x {width}x{height}": (lambda: boundary_f(masks, gt), full),
    }


def run(device: torch.device, frames: int = 32, roi: int = 224, frame_size: tuple[int, int] = (854, 480),
        repeats: int = 10, warmup: int = 2) -> dict[str, Any]:
    """Time every benchmark; returns {"machine": ..., "settings": ..., "results": [...]}."""
    from evaluation.speed import Timer, machine_info, measure

    if frames < 1 or roi < 1 or min(frame_size) < 1:
        raise ValueError(f"need frames, roi and frame size >= 1, got {frames}, {roi}, {frame_size}")
    calls = benchmarks(frames, roi, frame_size, device)
    stats = measure({name: call for name, (call, _) in calls.items()}, Timer(device), repeats, warmup)
    results = []
    for name, (_, pixels) in calls.items():
        seconds = stats[name].median
        results.append({
            "name": name,
            "pixels": pixels,
            "frames": frames,
            "median_ms": 1000.0 * seconds,
            "iqr_ms": 1000.0 * stats[name].iqr,
            "pixels_per_second": pixels / seconds,
            "frames_per_second": frames / seconds,
        })
    settings = {"frames": frames, "roi": roi, "frame_size": list(frame_size), "repeats": repeats, "warmup": warmup}
    return {"machine": machine_info(device), "settings": settings, "results": results}


def to_markdown(report: dict[str, Any]) -> str:
    from evaluation.speed import machine_line

    lines = [
        f"**evaluation throughput**: {machine_line(report['machine'])}",
        f"median of {report['settings']['repeats']} calls after {report['settings']['warmup']} warm-up",
        "",
        "| measure | ms a call (IQR) | Mpixels/s | frames/s |",
        "|---|---:|---:|---:|",
    ]
    for row in report["results"]:
        lines.append(f"| {row['name']} | {row['median_ms']:.1f} ({row['iqr_ms']:.1f}) | "
                     f"{row['pixels_per_second'] / 1e6:.1f} | {row['frames_per_second']:.0f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from evaluation.speed import parse_size

    parser = argparse.ArgumentParser(prog="python -m evaluation.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--frames", type=int, default=32, help="frames a call (default: %(default)s, one ROC clip)")
    parser.add_argument("--roi", type=int, default=224, help="side of the ROC's ROI maps (default: %(default)s)")
    parser.add_argument("--frame-size", type=parse_size, default=(854, 480), metavar="WxH",
                        help="full-frame size for the IoU and boundary measures (default: 854x480, DAVIS 480p)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of each (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=None, help=f"JSON to write (default: {DEFAULT_OUT.format(device='DEVICE')})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tracker.device import resolve_device

    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    report = run(device, args.frames, args.roi, args.frame_size, args.repeats, args.warmup)
    print(to_markdown(report))
    out = Path(args.out or DEFAULT_OUT.format(device=device.type))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
