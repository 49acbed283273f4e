"""`pixtrack synthesize DATA OUT`: write a few synthesised training clips, to look at.

The clips are those `pixtrack train ... --synthesize N --synthesize-seed S` trains on (the
first `--clips` of them, made from DATA's sequences less `--folds/--fold`'s test ones), as
VOT sequences in OUT, with OUT/strip.png: a few frames of each clip, the mask tinted.
"""

from __future__ import annotations

import argparse

HELP = "write a few synthesised training clips (video synthesis from single frames) and an overlay strip"

# The same defaults as tracker.data.video_synthesis / tracker.training.arguments (kept equal by
# a test), repeated so that building the CLI parser imports no torch.
DEFAULT_FRAMES = 40
DEFAULT_SEED = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="training data: VOT sequences folders, sequence folders or DAVIS roots")
    parser.add_argument("out", help="output folder: VOT sequences and strip.png")
    parser.add_argument("--clips", type=int, default=4, metavar="N", help="clips to write (default 4)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, metavar="F",
                        help=f"frames a clip (default {DEFAULT_FRAMES}, as --synthesize-frames)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S",
                        help=f"seed (default {DEFAULT_SEED}, as --synthesize-seed)")
    parser.add_argument("--folds", default=None, metavar="F", help="folds file from `pixtrack train folds`")
    parser.add_argument("--fold", type=int, default=None, metavar="I", help="leave fold I's test sequences out")
    parser.add_argument("--strip-frames", type=int, default=5, metavar="K", help="frames a clip in strip.png (5)")
    parser.add_argument("--force", action="store_true", help="overwrite clips that already exist in OUT")


def overlay(frame, mask, width: int):
    """`frame` with `mask` tinted red and its outline green, scaled to `width` (a PIL image)."""
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    image = frame.astype(np.float32)
    image[mask] = 0.55 * image[mask] + 0.45 * np.array([255, 0, 0])
    image[mask & ~ndimage.binary_erosion(mask, iterations=2)] = (0, 255, 0)
    picture = Image.fromarray(image.astype(np.uint8))
    return picture.resize((width, max(1, round(picture.height * width / picture.width))), Image.BILINEAR)


def write_strip(path, sequences, frames_each: int, width: int = 240) -> None:
    """A PNG grid: one row a clip, `frames_each` evenly spaced frames of it, masks overlaid."""
    from PIL import Image

    rows = []
    for sequence in sequences:
        picks = sorted({round(i * (len(sequence) - 1) / max(frames_each - 1, 1)) for i in range(frames_each)})
        rows.append([overlay(sequence.frame(i), sequence.mask(i), width) for i in picks])
    height = max(tile.height for row in rows for tile in row)
    strip = Image.new("RGB", (width * max(map(len, rows)), height * len(rows)), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            strip.paste(tile, (c * width, r * height))
    strip.save(path)


def run(args: argparse.Namespace) -> int:
    import sys
    import time
    from pathlib import Path

    from tracker.data import write_vot_list, write_vot_sequence
    from tracker.data.video_synthesis import SynthesisConfig, synthesize_sequences
    from tracker.training.folds import read_folds
    from tracker.training.sources import training_sequences

    if (args.folds is None) != (args.fold is None):
        raise ValueError("--folds and --fold go together")
    if args.clips < 1:
        raise ValueError(f"--clips must be at least 1, got {args.clips}")
    exclude = read_folds(args.folds).fold(args.fold).test if args.folds is not None else ()
    sources = training_sequences(args.data, exclude=exclude)
    clips = synthesize_sequences(sources, args.clips, SynthesisConfig(frames=args.frames), seed=args.seed)
    out = Path(args.out)
    start = time.perf_counter()
    for clip in clips:
        write_vot_sequence(out, clip, overwrite=args.force)
        print(f"{clip.name}: {clip.metadata.get('target')} on {clip.metadata.get('background')}"
              f"{'; distractors ' + clip.metadata['distractors'] if clip.metadata.get('distractors') else ''}",
              file=sys.stderr)
    write_vot_list(out, [clip.name for clip in clips])
    write_strip(out / "strip.png", clips, args.strip_frames)
    print(f"wrote {len(clips)} clips x {args.frames} frames from {len(sources)} sequences to {out} "
          f"in {time.perf_counter() - start:.1f} s; overlays: {out / 'strip.png'}", file=sys.stderr)
    return 0
