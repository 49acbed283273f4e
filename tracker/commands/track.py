"""`pixtrack track`: run one tracker over one sequence, outside the VOT toolkit.

Writes, for every frame i of the sequence (file names 1-based like VOT frames,
00000001.png = frame 0):

    OUT/prob/%08d.png   the probability map as 8-bit grey, round(prob * 255)
    OUT/mask/%08d.png   the binary mask prob >= threshold, 0 / 255
    OUT/iou.csv         frame,iou for every tracked frame that has a ground-truth mask

PNG rather than .npz for the maps: any image viewer shows them, they compress well, and
8 bits (steps of 1/255) are finer than any threshold the tables use. Frame 0 is the
initialisation: its files hold the given mask. The mean IoU printed (and in iou.csv) is over
frames 1.. only, as in the paper's tables. iou.csv gets its row as each frame is tracked, so
a run stopped by a corrupt frame keeps every IoU computed before it. The sequence is checked
before any model is built (`tracker.data.check_trackable`: two frames, a non-empty first mask).
"""

from __future__ import annotations

import argparse

HELP = "track one sequence from its first mask; write probability maps, masks and IoU"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracker", default="pixtrack", help="registered tracker name, as `pixtrack registry` lists them (default: pixtrack)")
    parser.add_argument("--checkpoint", default=None, help="weights file (default: the tracker's shipped checkpoint)")
    parser.add_argument("--sequence", required=True, help="sequence folder (VOT sequence or DAVIS-style)")
    parser.add_argument("--out", required=True, help="output folder (created; existing files are overwritten)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask threshold on the maps (default: 0.5)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="track only the first N frames")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="fp32 (default), bf16 (CPU with AVX512-BF16, or CUDA) or fp16 (CUDA); pixtrack and pixtrack-1stage only")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from evaluation.metrics import binarize, frame_iou
    from tracker.data import check_trackable, load_sequence
    from tracker.registry import build_tracker

    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold {args.threshold}: must lie in [0, 1]")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: must be at least 1 frame")
    sequence = check_trackable(load_sequence(args.sequence))
    length = len(sequence) if args.limit is None else min(args.limit, len(sequence))
    tracker = build_tracker(args.tracker, checkpoint=args.checkpoint, device=args.device, precision=args.precision)

    out = Path(args.out)
    (out / "prob").mkdir(parents=True, exist_ok=True)
    (out / "mask").mkdir(parents=True, exist_ok=True)

    def write(index: int, prob: np.ndarray, mask: np.ndarray) -> None:
        name = f"{index + 1:08d}.png"
        levels = np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)
        Image.fromarray(levels).save(out / "prob" / name)
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / "mask" / name)

    first_mask = sequence.mask(0)
    state = tracker.init(sequence.frame(0), first_mask)
    first = np.asarray(first_mask).astype(bool)
    write(0, first.astype(np.float32), first)

    ious: list[tuple[int, float]] = []
    with open(out / "iou.csv", "w", encoding="utf-8") as handle:
        handle.write("frame,iou\n")
        try:
            for index in tqdm(range(1, length), desc=f"{args.tracker} {sequence.name}", unit="frame", file=sys.stderr):
                prob, state = tracker.track(sequence.frame(index), state)
                mask = binarize(prob, args.threshold).numpy()
                write(index, prob, mask)
                truth = sequence.mask(index)
                if truth is not None:
                    ious.append((index, float(frame_iou(mask, np.asarray(truth).astype(bool)))))
                    handle.write(f"{index},{ious[-1][1]:.6f}\n")
                    handle.flush()
        except BaseException:
            kept = f"frames 1..{ious[-1][0]}" if ious else "no frame"
            print(f"pixtrack track: stopped; {out / 'iou.csv'} keeps the IoU of {kept}", file=sys.stderr)
            raise
    summary = f"{sequence.name}: {length} frames ({length - 1} tracked) -> {out}"
    if ious:
        summary += f"; mean IoU {np.mean([iou for _, iou in ious]):.4f} over {len(ious)} frames at threshold {args.threshold}"
    else:
        summary += "; no ground truth after frame 0, no IoU"
    print(summary)
    return 0
