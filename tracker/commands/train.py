"""`pixtrack train`: cross-validation folds, and training the two-stage tracker.

    pixtrack train folds DATASET --k 10 --seed 0 --out folds.json
    pixtrack train iterative --data DIR [--data DIR ...] [--synthetic N] --config lite --out OUT
    pixtrack train local  --data DIR ... --out OUT      (one local model, Sec. 3.3 + Eq. 2)
    pixtrack train global --data DIR ... --out OUT      (one global model, Sec. 4 + Eq. 4)
    pixtrack train fcn    --data DIR ... --out OUT      (the FCN baseline's offline training, Sec. 3.4)

`iterative` runs paper Sec. 5.1 steps 1-5 and writes OUT/two-stage-CONFIG.safetensors;
rerun the same command to resume after an interruption. `local` and `global` write
OUT/local.safetensors or OUT/global.safetensors; once both are in the same OUT, the
two-stage checkpoint is assembled from them. `fcn` trains the FCN baseline's head on cached
pool4 features of single Sec. 3.3 ROIs and writes `--output` (default
checkpoints/fcn-CONFIG.safetensors, the file the `fcn` tracker loads); its feature cache, loss
log (fcn_loss.csv) and resume file live in OUT, so a rerun resumes. `--folds F --fold I` leaves
fold I's test sequences out of the training data. Several GPUs (not for `fcn`, one process):
`torchrun --nproc_per_node N -m tracker.cli train ...` (DistributedDataParallel).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports happen inside the functions, keeping `pixtrack --help` fast
    from tracker.training.iterative import IterativeSettings

HELP = ("make cross-validation folds; train the local, global or both models (Sec. 5.1 iterative optimisation), "
        "or the FCN baseline")


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training data (any mix)")
    group.add_argument("--data", action="append", default=[], metavar="DIR",
                       help="a VOT sequences folder, one VOT sequence folder or a DAVIS root (repeatable)")
    group.add_argument("--synthetic", type=int, default=0, metavar="N", help="add N generated sequences (default 0)")
    group.add_argument("--synthetic-frames", type=int, default=48, metavar="F", help="frames a synthetic sequence (48)")
    group.add_argument("--synthetic-seed", type=int, default=1000, metavar="S",
                       help="seed of the synthetic training sequences (default 1000, not an evaluation seed)")
    group.add_argument("--folds", default=None, metavar="F", help="folds file from `pixtrack train folds`")
    group.add_argument("--fold", type=int, default=None, metavar="I", help="train without fold I's test sequences")


def _run_arguments(parser: argparse.ArgumentParser, two_stage: bool = True) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--out", required=True, metavar="DIR", help="output folder (a rerun resumes there)")
    group.add_argument("--config", default="lite", help="model configuration: lite (default) or paper")
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


def _local_arguments(parser: argparse.ArgumentParser) -> None:
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


def _global_arguments(parser: argparse.ArgumentParser) -> None:
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


def _fcn_arguments(parser: argparse.ArgumentParser) -> None:
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="train_command", metavar="WHAT")
    sub.required = True
    folds = sub.add_parser("folds", help="k-fold splits of a dataset's sequences, as a JSON file")
    folds.add_argument("dataset", help="VOT sequences folder or DAVIS root")
    folds.add_argument("--k", type=int, default=10, help="number of folds (the paper: 10)")
    folds.add_argument("--seed", type=int, default=0)
    folds.add_argument("--out", required=True, metavar="F", help="the JSON file to write")
    for name, text in (("iterative", "Sec. 5.1 steps 1-5: both models, a two-stage checkpoint"),
                       ("local", "one local model on ground-truth-placed clips (Sec. 3.3)"),
                       ("global", "one global model on ground-truth maps (Sec. 4)")):
        command = sub.add_parser(name, help=text, description=text)
        _data_arguments(command)
        _run_arguments(command)
        if name in ("iterative", "local"):
            _local_arguments(command)
        if name in ("iterative", "global"):
            _global_arguments(command)
    text = "the FCN baseline's offline training (Sec. 3.4): an fcn checkpoint"
    command = sub.add_parser("fcn", help=text, description=text)
    _data_arguments(command)
    _run_arguments(command, two_stage=False)
    _fcn_arguments(command)


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


def _folds(args: argparse.Namespace) -> int:
    import sys

    from tracker.data import load_dataset
    from tracker.training.folds import make_folds, write_folds

    names = [sequence.name for sequence in load_dataset(args.dataset)]
    split = make_folds(names, k=args.k, seed=args.seed, dataset=str(args.dataset))
    path = write_folds(args.out, split)
    sizes = sorted({len(f.test) for f in split.folds})
    print(f"wrote {args.k} folds of {len(names)} sequences ({'-'.join(map(str, sizes))} test sequences a fold) "
          f"to {path}", file=sys.stderr)
    return 0


def _check_common(args: argparse.Namespace) -> None:
    """Refusals before any data is read: an unknown configuration, --folds without --fold."""
    from tracker.config import get_config

    get_config(args.config)
    if (args.folds is None) != (args.fold is None):
        raise ValueError("--folds and --fold go together")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def _training_data(args: argparse.Namespace, out, runtime) -> list:
    """The sequences the data options name, less --fold's test sequences; synthetic ones in OUT/synthetic."""
    from tracker.training.folds import read_folds
    from tracker.training.sources import training_sequences

    fold = read_folds(args.folds).fold(args.fold) if args.folds is not None else None
    exclude = fold.test if fold is not None else ()

    def load():
        return training_sequences(args.data, synthetic=args.synthetic, synthetic_frames=args.synthetic_frames,
                                  synthetic_seed=args.synthetic_seed,
                                  synthetic_folder=out / "synthetic" if args.synthetic else None, exclude=exclude)

    # Rank 0 writes the synthetic sequences; the other ranks read them once written.
    sequences = load() if runtime.is_main else None
    runtime.barrier()
    if sequences is None:
        sequences = load()
    if fold is not None and not set(fold.train) & {s.name for s in sequences}:
        raise ValueError(f"none of fold {args.fold}'s training sequences is in the training data: "
                         f"is {args.folds} a split of another dataset?")
    return sequences


def _fcn_settings(args: argparse.Namespace):
    from baselines.fcn_training import FCNTrainingConfig
    from tracker.training.loop import LoopConfig
    from tracker.training.samples import ClipConfig

    return FCNTrainingConfig(
        config_name=args.config,
        clip=ClipConfig(frames=args.clip_frames, lag=args.lag, insert_noise=False),
        clips_per_sequence=args.clips_per_sequence, views=args.views,
        loop=LoopConfig(iterations=args.iterations, lr=args.lr, log_every=args.log_every, save_every=args.save_every),
        batch_size=args.batch, seed=args.seed,
    )


def _fcn(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys
    from pathlib import Path

    from baselines.fcn_training import train_fcn_checkpoint
    from tracker.training.hardware import Runtime

    _check_common(args)
    settings = _fcn_settings(args)
    out = Path(args.out)
    runtime = Runtime.start(args.device)
    try:
        if runtime.distributed:
            raise ValueError("`train fcn` runs as one process (one feature cache): run it without torchrun")
        sequences = _training_data(args, out, runtime)
        # The settings that change the result: a rerun resumes with them or is refused.
        record = {"settings": json.loads(json.dumps(dataclasses.asdict(settings))),
                  "sequences": sorted(s.name for s in sequences)}
        for key in ("log_every", "save_every"):
            del record["settings"]["loop"][key]
        path = out / "fcn-run.json"
        if path.is_file():
            previous = json.loads(path.read_text())
            if previous != record:
                changed = sorted(k for k, v in record["settings"].items() if previous.get("settings", {}).get(k) != v)
                if previous.get("sequences") != record["sequences"]:
                    changed.append("training sequences")
                raise ValueError(f"{out} holds an fcn run with other settings ({', '.join(changed)}); "
                                 "resume with the same arguments or use another --out")
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"training the FCN on {len(sequences)} sequences ({runtime.device}) in {out}", file=sys.stderr)
        written = train_fcn_checkpoint(sequences, args.output, settings, device=args.device, work_dir=out,
                                       half=args.half, progress=not args.quiet)
        print(f"fcn checkpoint: {written}", file=sys.stderr)
    finally:
        runtime.close()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.train_command == "folds":
        return _folds(args)
    if args.train_command == "fcn":
        return _fcn(args)

    import sys
    from pathlib import Path

    from tracker.training.hardware import Runtime
    from tracker.training.iterative import IterativeRun

    _check_common(args)  # an unknown configuration fails before any data is read
    settings = iterative_settings(args)
    out = Path(args.out)
    runtime = Runtime.start(args.device, amp=not args.no_amp)

    try:
        sequences = _training_data(args, out, runtime)
        feature_cache = {"auto": None, "on": True, "off": False}[args.feature_cache]
        job = IterativeRun(out, sequences, settings, runtime, workers=args.workers, feature_cache=feature_cache,
                           keep_cache=args.keep_cache, half=args.half, progress=not args.quiet)
        if runtime.is_main:
            print(f"training on {len(sequences)} sequences ({runtime.device}, world size {runtime.world_size}) "
                  f"into {out}", file=sys.stderr)
        if args.train_command == "iterative":
            path = job.run()
        else:
            job.run_stages([args.train_command], f"run-{args.train_command}")
            other = "global" if args.train_command == "local" else "local"
            path = None
            if job.output(other).is_file():
                path = job.assemble("local", "global", "pixtrack train local + global")
        if runtime.is_main:
            if path is not None:
                print(f"two-stage checkpoint: {path}", file=sys.stderr)
            else:
                print(f"{args.train_command} model: {job.output(args.train_command)}", file=sys.stderr)
    finally:
        runtime.close()
    return 0
