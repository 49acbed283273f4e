"""The command-line argument groups of training, public: `pixtrack train` and the ablations
(`python -m evaluation.ablations insertion`) declare their options through the same
functions, so that a local model trained by either is trained alike; and the parsed
arguments as `IterativeSettings` (`iterative_settings`).

They live with training, not with the command line, because the evaluation layer uses them
too and may not import the command line (tests/test_layers.py).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports happen inside the functions, keeping `pixtrack --help` fast
    from tracker.training.iterative import IterativeSettings


def data_arguments(parser: argparse.ArgumentParser, synthesize: bool = False) -> None:
    """The training data options; `synthesize` adds --synthesize N (video synthesis), for the
    commands that pass it to `tracker.training.sources.training_sequences`."""
    group = parser.add_argument_group("training data (any mix)")
    group.add_argument("--data", action="append", default=[], metavar="DIR",
                       help="a VOT sequences folder, one VOT sequence folder or a DAVIS root (repeatable)")
    group.add_argument("--synthetic", type=int, default=0, metavar="N", help="add N generated sequences (default 0)")
    group.add_argument("--synthetic-frames", type=int, default=48, metavar="F", help="frames a synthetic sequence (48)")
    group.add_argument("--synthetic-seed", type=int, default=1000, metavar="S",
                       help="seed of the synthetic training sequences (default 1000, not an evaluation seed)")
    if synthesize:
        group.add_argument("--synthesize", type=int, default=0, metavar="N",
                           help="add N clips synthesised from single annotated frames of the --data sequences "
                                "left after --fold (tracker.data.video_synthesis; default 0)")
        group.add_argument("--synthesize-frames", type=int, default=40, metavar="F",
                           help="frames a synthesised clip (default 40)")
        group.add_argument("--synthesize-seed", type=int, default=0, metavar="S",
                           help="seed of the synthesised clips (default 0)")
    group.add_argument("--folds", default=None, metavar="F", help="folds file from `pixtrack train folds`")
    group.add_argument("--fold", type=int, default=None, metavar="I", help="train without fold I's test sequences")


def run_arguments(parser: argparse.ArgumentParser, two_stage: bool = True) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--out", required=True, metavar="DIR", help="output folder (a rerun resumes there)")
    group.add_argument("--config", default="lite",
                       help="model configuration: lite (default), paper, plus (pixtrack-plus) or an ablation "
                            "of plus (lite+prior, lite+prior-pool4, lite+align, lite+prior+align)")
    group.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    group.add_argument("--half", action="store_true", help="store the checkpoint in float16")
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    if two_stage:
        group.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
        group.add_argument("--workers", type=int, default=2, help="data-loading worker processes (default 2)")
        group.add_argument("--feature-cache", choices=("auto", "on", "off"), default="auto",
                           help="train local models on cached pool4 features (auto: on the CPU only)")
        group.add_argument("--keep-cache", action="store_true", help="keep the feature caches after their stage")


def local_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("local model (Sec. 3.3, Eq. 2)")
    group.add_argument("--clip-frames", type=int, default=16, metavar="T", help="frames after the initial one (16)")
    group.add_argument("--no-insert", action="store_true", help="no noisy-frame insertion (the Fig. 3/4 ablation)")
    group.add_argument("--lag", type=int, default=5, help="ROIs centred by the mask this many frames back (5)")
    group.add_argument("--clips-per-sequence", type=int, default=4, help="local clips a sequence a pass (4)")
    group.add_argument("--views", type=int, default=4, help="cached passes over the clips (4; feature cache only)")
    group.add_argument("--local-iterations", type=int, default=2000)
    group.add_argument("--local-lr", type=float, default=1e-4)
    group.add_argument("--local-batch", type=int, default=4)
    group.add_argument("--local-warm-start", action="store_true", help="step 5 fine-tunes local model 1")
    group.add_argument("--local-init", default=None, metavar="FCN",
                       help="start every local model's F-CNN convs and decoder from this FCN checkpoint "
                            "(`pixtrack train fcn`, same --config; not in the paper: a CPU-budget shortcut)")
    group.add_argument("--validate-every", type=int, default=0, metavar="K",
                       help="early termination: Eq. 2 on held-out clips every K iterations (a multiple of 10; 0 = off)")
    group.add_argument("--patience", type=int, default=0, metavar="P",
                       help="stop after P validations without improvement, keeping the best weights (0 = never)")


def global_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("global model (Sec. 4, Eq. 4)")
    group.add_argument("--global-frames", type=int, default=32, metavar="T", help="sequence length T (32)")
    group.add_argument("--global-clips-per-sequence", type=int, default=8)
    group.add_argument("--global-iterations", type=int, default=20000, help="step 2 iterations (20000)")
    group.add_argument("--global-lr", type=float, default=1e-4)
    group.add_argument("--global-update-iterations", type=int, default=5000, help="step 4 iterations (5000)")
    group.add_argument("--global-update-lr", type=float, default=3e-5)
    group.add_argument("--global-batch", type=int, default=8)
    group.add_argument("--object-weight", type=float, default=40.0, help="Eq. 4 weight of object pixels (40)")
    group.add_argument("--global-lambda", type=float, default=0.1, help="Eq. 4 lambda of ||theta_t - theta_t-1|| (0.1)")
    group.add_argument("--first-frame", type=int, default=5, help="Eq. 4 loss from frame i (5)")
    group.add_argument("--warmup", type=int, default=5, help="first-mask warm-up steps, as the tracker does (5)")
    group.add_argument("--dilation-start", type=int, default=21, help="first dilation kernel side (21; 1 = none)")
    group.add_argument("--dilation-step", type=int, default=4, help="kernel shrink a step (4)")
    group.add_argument("--dilation-every", type=int, default=10000, help="iterations between shrinks (10000)")
    group.add_argument("--track-clips-per-sequence", type=int, default=4, help="tracked clips a sequence, steps 3/5 (4)")


def fcn_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("FCN baseline (Sec. 3.4; single Sec. 3.3 ROIs, Eq. 2)")
    group.add_argument("--output", default=None, metavar="FILE",
                       help="the fcn checkpoint to write (default checkpoints/fcn-CONFIG.safetensors, "
                            "the one the fcn tracker loads)")
    group.add_argument("--clip-frames", type=int, default=8, metavar="T",
                       help="frames after the initial one a clip; every frame is an example (8)")
    group.add_argument("--lag", type=int, default=5, help="ROIs centred by the mask this many frames back (5)")
    group.add_argument("--clips-per-sequence", type=int, default=4, help="clips a sequence a pass (4)")
    group.add_argument("--views", type=int, default=1, help="cached passes over the clips (1)")
    group.add_argument("--iterations", type=int, default=2000, help="optimiser steps (2000)")
    group.add_argument("--lr", type=float, default=1e-4, help="Adam's learning rate (1e-4)")
    group.add_argument("--batch", type=int, default=16, help="ROIs a step (16)")
    group.add_argument("--log-every", type=int, default=50, help="iterations a row of OUT/fcn_loss.csv (50)")
    group.add_argument("--save-every", type=int, default=500, help="iterations between resume points (500)")


def iterative_settings(args: argparse.Namespace) -> IterativeSettings:
    """The parsed command line as `IterativeSettings` (the ablations reuse it to train alike)."""
    from tracker.training.curriculum import DilationSchedule
    from tracker.training.iterative import IterativeSettings
    from tracker.training.loop import LoopConfig
    from tracker.training.samples import ClipConfig

    defaults = IterativeSettings()
    values = {"config": args.config, "seed": args.seed}
    if hasattr(args, "clip_frames"):
        values.update(
            clip=ClipConfig(frames=args.clip_frames, lag=args.lag, insert_noise=not args.no_insert),
            local_clips_per_sequence=args.clips_per_sequence, local_views=args.views,
            local_loop=LoopConfig(iterations=args.local_iterations, lr=args.local_lr,
                                  validate_every=args.validate_every, patience=args.patience),
            local_batch=args.local_batch, local_warm_start=args.local_warm_start, local_init=args.local_init,
        )
    if hasattr(args, "global_frames"):
        values.update(
            global_frames=args.global_frames, global_clips_per_sequence=args.global_clips_per_sequence,
            global_loop=LoopConfig(iterations=args.global_iterations, lr=args.global_lr),
            global_update_loop=LoopConfig(iterations=args.global_update_iterations, lr=args.global_update_lr),
            global_batch=args.global_batch, object_weight=args.object_weight, global_lambda=args.global_lambda,
            first_frame=args.first_frame, warmup=args.warmup,
            dilation=DilationSchedule(start=args.dilation_start, step=args.dilation_step, every=args.dilation_every),
            track_clips_per_sequence=args.track_clips_per_sequence,
        )
    import dataclasses

    return dataclasses.replace(defaults, **values)
