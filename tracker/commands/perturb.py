"""`pixtrack perturb`: how far a tracker's IoU moves when its input moves by kernel rounding.

Tracks each sequence once as given and --trials times with a seeded, invisible perturbation
(--noise lsb: +-1 grey level on --pixels values of every frame; --noise ulp: one fp32 ulp on
the input of the image convolutions), and prints per sequence the mean IoU of each run and
the largest shift (evaluation.perturbation). A shift near the differences between trackers
or machines says those differences are rounding, not skill. Writes OUT/perturbation.md and
OUT/perturbation.csv.
"""

from __future__ import annotations

import argparse

HELP = "rerun a tracker on input perturbed at the level of kernel rounding; report how far IoU moves"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracker", default="pixtrack", help="registered tracker name, as `pixtrack registry` lists them (default: pixtrack)")
    parser.add_argument("--checkpoint", default=None, help="weights file (default: the tracker's shipped checkpoint)")
    parser.add_argument("--dataset", required=True, help="VOT sequences folder, DAVIS root, or one sequence folder")
    parser.add_argument("--sequences", nargs="+", default=None, help="only these sequences of --dataset")
    parser.add_argument("--trials", type=int, default=3, help="perturbed runs a sequence (default: 3)")
    parser.add_argument("--noise", choices=("lsb", "ulp"), default="lsb", help="lsb (default) or ulp, see above")
    parser.add_argument("--pixels", type=int, default=16, help="values moved a frame with --noise lsb (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbations (default: 0)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="track only the first N frames")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask threshold (default: 0.5)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--out", default="outputs/perturbation", help="output folder (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from evaluation.perturbation import perturbation_check, summary_markdown, write_report
    from tracker.data import check_all_trackable, load_dataset, load_sequence
    from tracker.registry import build_tracker

    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold {args.threshold}: must lie in [0, 1]")
    if args.limit is not None and args.limit < 2:
        raise ValueError(f"--limit {args.limit}: must be at least 2 frames (one to start from, one to score)")
    dataset = Path(args.dataset)
    if (dataset / "sequence").is_file() or (dataset / "groundtruth.txt").is_file():
        if args.sequences:
            raise ValueError(f"--sequences: {dataset} is one sequence, not a dataset")
        sequences = [load_sequence(dataset)]
    else:
        sequences = load_dataset(dataset, args.sequences)
    sequences = check_all_trackable(sequences)
    build_tracker(args.tracker, checkpoint=args.checkpoint, device=args.device)  # fails before any tracking

    def build():
        return build_tracker(args.tracker, checkpoint=args.checkpoint, device=args.device)

    reports = perturbation_check(build, sequences, trials=args.trials, noise=args.noise, pixels=args.pixels,
                                 seed=args.seed, threshold=args.threshold, limit=args.limit,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    noise = f"+-1 grey level on {args.pixels} values a frame" if args.noise == "lsb" else "1 fp32 ulp on the image convolutions' input"
    caption = (f"{args.tracker} on {len(sequences)} sequences of {dataset}, {args.trials} trials of {noise} "
               f"(seed {args.seed}), threshold {args.threshold:g}")
    paths = write_report(reports, Path(args.out), caption)
    print(summary_markdown(reports, caption))
    print(f"wrote {', '.join(map(str, paths))}", file=sys.stderr)
    return 0
