"""`pixtrack synth DST`: write the synthetic benchmark (VOT sequences, or the DAVIS layout)."""

from __future__ import annotations

import argparse

HELP = "generate the synthetic benchmark: textured, deforming targets in hard scenes, as VOT or DAVIS sequences"

# The same numbers as tracker.data.synth.DEFAULT_* (a test keeps them equal); repeated here so
# that building the CLI parser imports no numpy.
DEFAULT_SEQUENCES = 6
DEFAULT_FRAMES = 48


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dst", help="output folder (a VOT sequences folder, or a DAVIS root with --layout davis)")
    parser.add_argument("--sequences", type=int, default=DEFAULT_SEQUENCES, metavar="N",
                        help=f"number of sequences (default {DEFAULT_SEQUENCES}; the first six cover every challenge)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, metavar="F",
                        help=f"frames a sequence (default {DEFAULT_FRAMES}, at least 8)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed: same seed, same bytes (default 0)")
    parser.add_argument("--layout", choices=("vot", "davis"), default="vot",
                        help="vot: list.txt + sequence folders (default); davis: JPEGImages/480p + Annotations/480p")
    parser.add_argument("--force", action="store_true", help="overwrite sequences that already exist in DST")


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from tracker.data.synth import generate_benchmark

    start = time.perf_counter()
    names = generate_benchmark(
        args.dst, sequences=args.sequences, frames=args.frames, seed=args.seed, layout=args.layout,
        overwrite=args.force, progress=True,
    )
    print(f"wrote {len(names)} sequences x {args.frames} frames to {args.dst} "
          f"({args.layout} layout) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
