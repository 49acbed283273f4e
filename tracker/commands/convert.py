"""`pixtrack convert davis SRC DST`: DAVIS sequences -> VOT sequences (masks stored exactly)."""

from __future__ import annotations

import argparse

HELP = "convert a dataset into VOT sequences (list.txt, sequence files, color/, groundtruth.txt, anchor.value)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=("davis",), help="source format")
    parser.add_argument("src", help="source root (DAVIS: the folder holding JPEGImages/ and Annotations/)")
    parser.add_argument("dst", help="VOT sequences folder to write into (created; its list.txt is extended)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sequences", metavar="A,B", help="comma-separated sequence names (default: all)")
    which.add_argument("--split", metavar="NAME", help="a split list, e.g. train (SRC/train.txt or ImageSets/...)")
    parser.add_argument("--quality", type=int, metavar="Q",
                        help="re-encode frames as JPEG at quality Q; default: JPEG frames are copied unchanged")
    parser.add_argument("--force", action="store_true", help="overwrite sequences that already exist in DST")


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from tracker.data import load_davis_dataset, write_vot_dataset

    if args.quality is not None and not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be 1..100, got {args.quality}")
    names = args.split
    if args.sequences is not None:
        names = [name.strip() for name in args.sequences.split(",") if name.strip()]
        if not names:
            raise ValueError("--sequences names no sequence")
    start = time.perf_counter()
    sequences = load_davis_dataset(args.src, names)  # every sequence checked before writing
    write_vot_dataset(args.dst, sequences, quality=args.quality, overwrite=args.force, progress=True)
    frames = sum(len(sequence) for sequence in sequences)
    print(f"wrote {len(sequences)} sequences ({frames} frames) to {args.dst} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
