"""`pixtrack convert davis|vot2016 SRC DST`: DAVIS, or VOT2016 sequences with their per-frame
PNG segmentation masks, -> VOT sequences whose ground truth is those masks, stored exactly.

VOT2016 ships polygons in groundtruth.txt; the toolkit would score masks against them. Our
reader takes the PNG masks where a sequence has them (tracker.data.vot), so rewriting the
sequences puts the masks into groundtruth.txt, where `vot evaluate` reads them."""

from __future__ import annotations

import argparse

FORMATS = ("davis", "vot2016")
HELP = "convert a dataset into VOT sequences (list.txt, sequence files, color/, groundtruth.txt, anchor.value)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="source format")
    parser.add_argument("src", help="source root (DAVIS: the folder holding JPEGImages/ and Annotations/; "
                                    "vot2016: the sequences folder holding list.txt)")
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

    from pathlib import Path

    from tracker.data import load_davis_dataset, load_vot_dataset, write_vot_dataset

    if args.quality is not None and not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be 1..100, got {args.quality}")
    names = args.split
    if args.sequences is not None:
        names = [name.strip() for name in args.sequences.split(",") if name.strip()]
        if not names:
            raise ValueError("--sequences names no sequence")
    start = time.perf_counter()
    if Path(args.src).resolve() == Path(args.dst).resolve():
        raise ValueError(f"convert: source and destination are the same folder ({args.src}); "
                         "write the converted sequences elsewhere")
    load = load_davis_dataset if args.format == "davis" else load_vot_dataset
    sequences = load(args.src, names)  # every sequence checked before writing
    write_vot_dataset(args.dst, sequences, quality=args.quality, overwrite=args.force, progress=True)
    frames = sum(len(sequence) for sequence in sequences)
    print(f"wrote {len(sequences)} sequences ({frames} frames) to {args.dst} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
