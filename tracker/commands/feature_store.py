"""`pixtrack feature-store DATA STORE`: the full-frame pool4 store of the data engine
(`tracker.training.frame_features`), built where missing, then how far its cut ROIs are from
cropped ones: cosine similarity per pool4 cell over random ground-truth ROIs, inside the frame
and outside it (written to STORE/compare.json)."""

from __future__ import annotations

import argparse

NAME = "feature-store"
HELP = "build the full-frame feature store and measure its cut ROIs against cropped ones"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="VOT sequences folders, sequence folders or DAVIS roots")
    parser.add_argument("store", help="the store's folder (reused when it holds these frames and weights)")
    parser.add_argument("--sequences", nargs="+", default=None, help="only these sequences (names)")
    parser.add_argument("--rois", type=int, default=8, metavar="N", help="ROIs a sequence to compare (default 8; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the ROIs (default 0)")
    parser.add_argument("--config", default="lite", help="model configuration whose backbone to use (default lite)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    import torch

    from tracker.backbone import VGG16Pool4
    from tracker.config import get_config
    from tracker.device import resolve_device
    from tracker.training.frame_features import FrameFeatureStore, compare_cut_to_crop
    from tracker.training.sources import training_sequences

    if args.rois < 0:
        raise ValueError(f"--rois must be >= 0, got {args.rois}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sequences = training_sequences(args.data)
    if args.sequences:
        wanted = [name for value in args.sequences for name in value.split(",") if name]
        unknown = sorted(set(wanted) - {s.name for s in sequences})
        if unknown:
            raise ValueError(f"--sequences: not in {' '.join(args.data)}: {', '.join(unknown)}")
        sequences = [s for s in sequences if s.name in wanted]
    backbone = VGG16Pool4(get_config(args.config).local.backbone).to(device)
    started = time.perf_counter()
    store = FrameFeatureStore.build(args.store, sequences, backbone, device=device, progress=not args.quiet)
    frames = sum(len(s) * len(store.levels[s.name]) for s in sequences)
    print(f"store {args.store}: {len(sequences)} sequences, {frames} frame-levels "
          f"({time.perf_counter() - started:.0f} s this call)", file=sys.stderr)
    if not args.rois:
        return 0
    comparison = compare_cut_to_crop(store, sequences, backbone, args.rois, args.seed, device)
    summary = comparison.summary()
    (Path(args.store) / "compare.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("cosine(cut, cropped) per pool4 cell: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
    return 0
