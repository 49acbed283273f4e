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

from tracker.training.arguments import (
    SettingsDefault,
    data_arguments,
    global_arguments,
    iterative_settings,
    local_arguments,
    replace_given,
    resolved,
    run_arguments,
)

HELP = ("make cross-validation folds; train the local, global or both models (Sec. 5.1 iterative optimisation), "
        "or the FCN baseline")


RECIPE_COMMANDS = ("iterative", "local", "global", "fcn")
"""The commands a recipe file (tracker.training.recipes) may hold a table for."""


def _recipe_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", metavar="FILE",
                        help="a recipe (recipes/*.toml): its table for this command gives the options; "
                             "flags given beside it override them")


def prepare(argv: list[str]) -> list[str]:
    """`pixtrack train WHAT --recipe FILE ...`: the recipe's options put before the flags given
    (tracker.cli calls this before parsing), so that those flags override them."""
    from tracker.training.recipes import expand, recipe_path

    if not argv or argv[0] not in RECIPE_COMMANDS or recipe_path(argv[1:]) is None:
        return argv
    actions = [action for action in _options(argv[0]) if "--stages" not in action.option_strings]
    # (a recipe says what a run is, not which part of it this process does)
    known = [option for action in actions for option in action.option_strings]
    several = [option for action in actions if action.nargs in ("+", "*") for option in action.option_strings]
    return [argv[0], *expand(argv[1:], argv[0], known, several)]


def _options(command: str) -> list[argparse.Action]:
    """The options of `pixtrack train COMMAND`."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    # argparse lists a parser's options and subcommands only through private attributes.
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return [action for action in subparsers.choices[command]._actions if action.option_strings]


def _write_run_recipe(args: argparse.Namespace) -> None:
    """OUT/recipe.toml: every option this run resolved (tracker.training.recipes)."""
    from tracker.training.recipes import RECIPE_OPTION, write_run_recipe

    options = {}
    for action in _options(args.train_command):
        option = max(action.option_strings, key=len)
        if option.startswith("--") and option not in ("--help", "--stages", RECIPE_OPTION):
            options[option[2:]] = resolved(getattr(args, action.dest))
    write_run_recipe(args.out, args.train_command, options)


def _fcn_default(attribute: str) -> SettingsDefault:
    return SettingsDefault("baselines.fcn_training:FCNTrainingConfig", attribute)


def fcn_arguments(parser: argparse.ArgumentParser) -> None:
    """The FCN's training options; their defaults are `baselines.fcn_training.FCNTrainingConfig`'s."""
    group = parser.add_argument_group("FCN baseline (Sec. 3.4; single Sec. 3.3 ROIs, Eq. 2)")
    group.add_argument("--output", default=None, metavar="FILE",
                       help="the fcn checkpoint to write (default checkpoints/fcn-CONFIG.safetensors, "
                            "the one the fcn tracker loads)")
    group.add_argument("--clip-frames", type=int, default=_fcn_default("clip.frames"), metavar="T",
                       help="frames after the initial one a clip; every frame is an example (%(default)s)")
    group.add_argument("--lag", type=int, default=_fcn_default("clip.lag"),
                       help="ROIs centred by the mask this many frames back (%(default)s)")
    group.add_argument("--clips-per-sequence", type=int, default=_fcn_default("clips_per_sequence"),
                       help="clips a sequence a pass (%(default)s)")
    group.add_argument("--views", type=int, default=_fcn_default("views"), help="cached passes over the clips (%(default)s)")
    group.add_argument("--iterations", type=int, default=_fcn_default("loop.iterations"), help="optimiser steps (%(default)s)")
    group.add_argument("--lr", type=float, default=_fcn_default("loop.lr"), help="Adam's learning rate (%(default)s)")
    group.add_argument("--batch", type=int, default=_fcn_default("batch_size"), help="ROIs a step (%(default)s)")
    group.add_argument("--log-every", type=int, default=_fcn_default("loop.log_every"),
                       help="iterations a row of OUT/fcn_loss.csv (%(default)s)")
    group.add_argument("--save-every", type=int, default=_fcn_default("loop.save_every"),
                       help="iterations between resume points (%(default)s)")


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
        _recipe_argument(command)
        data_arguments(command, synthesize=True)
        run_arguments(command)
        if name in ("iterative", "local"):
            local_arguments(command)
        if name in ("iterative", "global"):
            global_arguments(command)
        if name == "local":
            command.add_argument("--global-from", default=None, metavar="CHECKPOINT",
                                 help="pair the local model with the global model of this two-stage checkpoint "
                                      "(same global configuration): writes OUT/two-stage-CONFIG.safetensors")
        if name == "iterative":
            command.add_argument("--global-from", default=None, metavar="CHECKPOINT",
                                 help="take Sec. 5.1 step 2 (OUT/global-gt.safetensors) from the global model of "
                                      "this two-stage checkpoint (same global configuration) instead of training it")
            command.add_argument("--feature-store-stages", nargs="+", default=None, metavar="STAGE",
                                 choices=("local-1", "local-2", "local-final"),
                                 help="with --feature-store: only these local stages train on the store, the "
                                      "others on cached crops (default: all three; e.g. local-1 local-2 pre-trains "
                                      "on cut features and finishes step 5 on true crops)")
            command.add_argument("--stages", nargs="+", default=None, metavar="STAGE",
                                 help="run only these stages of OUT (tracker.training.iterative), e.g. global-gt in "
                                      "one process beside split local-1 local-2 in another; default: all")
    text = "the FCN baseline's offline training (Sec. 3.4): an fcn checkpoint"
    command = sub.add_parser("fcn", help=text, description=text)
    _recipe_argument(command)
    data_arguments(command, synthesize=True)
    run_arguments(command, two_stage=False)
    fcn_arguments(command)


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
    """The sequences the data options name, less --fold's test sequences; synthetic ones in OUT/synthetic;
    --synthesize's clips (in memory) from the real ones kept."""
    from tracker.training.folds import read_folds
    from tracker.training.sources import training_sequences

    fold = read_folds(args.folds).fold(args.fold) if args.folds is not None else None
    exclude = fold.test if fold is not None else ()

    def load():
        return training_sequences(args.data, synthetic=args.synthetic, synthetic_frames=args.synthetic_frames,
                                  synthetic_seed=args.synthetic_seed,
                                  synthetic_folder=out / "synthetic" if args.synthetic else None, exclude=exclude,
                                  synthesize=args.synthesize, synthesize_frames=args.synthesize_frames,
                                  synthesize_seed=args.synthesize_seed)

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
    """The parsed command line as `FCNTrainingConfig`: its own defaults, replaced by what was given."""
    from baselines.fcn_training import FCNTrainingConfig

    defaults = FCNTrainingConfig()
    return replace_given(
        defaults, config_name=args.config, seed=args.seed,
        clip=replace_given(defaults.clip, frames=args.clip_frames, lag=args.lag, insert_noise=False),
        clips_per_sequence=args.clips_per_sequence, views=args.views,
        loop=replace_given(defaults.loop, iterations=args.iterations, lr=args.lr, log_every=args.log_every,
                           save_every=args.save_every),
        batch_size=args.batch,
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
        _write_run_recipe(args)
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
                           keep_cache=args.keep_cache, half=args.half, progress=not args.quiet,
                           feature_store=args.feature_store,
                           feature_store_stages=getattr(args, "feature_store_stages", None))
        if runtime.is_main:
            _write_run_recipe(args)
            print(f"training on {len(sequences)} sequences ({runtime.device}, world size {runtime.world_size}) "
                  f"into {out}", file=sys.stderr)
        if args.train_command == "iterative":
            adopts = not args.stages or "global-gt" in args.stages  # one process of a shared run adopts it
            if getattr(args, "global_from", None) and adopts and not job.output("global-gt").is_file():
                job.adopt_global(args.global_from, "global-gt")
            if args.stages:
                job.run_only(args.stages)
                path = job.output("checkpoint") if job.output("checkpoint").is_file() else None
            else:
                path = job.run()
        else:
            job.run_stages([args.train_command], f"run-{args.train_command}")
            if getattr(args, "global_from", None):
                job.adopt_global(args.global_from)
            other = "global" if args.train_command == "local" else "local"
            path = None
            if job.output(other).is_file():
                path = job.assemble("local", "global", "pixtrack train local + global")
        if runtime.is_main:
            if path is not None:
                print(f"two-stage checkpoint: {path}", file=sys.stderr)
            elif args.train_command == "iterative":
                print(f"stages done in {out}: {', '.join(job.finished())}", file=sys.stderr)
            else:
                print(f"{args.train_command} model: {job.output(args.train_command)}", file=sys.stderr)
    finally:
        runtime.close()
    return 0
