"""The command-line argument groups of training, public: `pixtrack train` and the ablations
(`python -m evaluation.ablations insertion`) declare their options through the same
functions, so that a local model trained by either is trained alike; and the parsed
arguments as `IterativeSettings` (`iterative_settings`).

They live with training, not with the command line, because the evaluation layer uses them
too and may not import the command line (tests/test_layers.py). Every default that a
settings dataclass declares is read from it (`SettingsDefault`), never declared again here.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # heavy imports happen inside the functions, keeping `pixtrack --help` fast
    from tracker.training.iterative import IterativeSettings

T = TypeVar("T")


class SettingsDefault:
    """An option's default as its settings dataclass declares it, read from there only when
    it is used or shown (`%(default)s` in --help): the default is declared once, and building
    the parser imports no torch. An option left at it gives the settings' own value."""

    def __init__(self, settings: str, attribute: str) -> None:
        self.settings = settings
        """`module:Class` of a dataclass whose fields all have defaults."""
        self.attribute = attribute
        """Dotted path to the field in `Class()`, e.g. `local_loop.iterations`."""

    def value(self) -> Any:
        module, _, name = self.settings.partition(":")
        value = getattr(importlib.import_module(module), name)()
        for part in self.attribute.split("."):
            value = getattr(value, part)
        return value

    def __str__(self) -> str:
        return str(self.value())

    def __repr__(self) -> str:
        return f"SettingsDefault({self.settings!r}, {self.attribute!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SettingsDefault) and (other.settings, other.attribute) == (self.settings, self.attribute)

    def __hash__(self) -> int:
        return hash((self.settings, self.attribute))


def resolved(value: Any) -> Any:
    """A parsed option's value, its settings default read where it was left at that."""
    return value.value() if isinstance(value, SettingsDefault) else value


def replace_given(settings: T, **values: Any) -> T:
    """`settings` with the fields in `values` replaced, except those left at their default."""
    return dataclasses.replace(settings, **{k: v for k, v in values.items() if not isinstance(v, SettingsDefault)})


def _iterative(attribute: str) -> SettingsDefault:
    return SettingsDefault("tracker.training.iterative:IterativeSettings", attribute)


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
        group.add_argument("--feature-store", default=None, metavar="DIR",
                           help="train local models on clips cut from full-frame feature stores in DIR (built "
                                "once per set of training sequences, reused): new clips every epoch instead of "
                                "--views cached ones (the data engine; docs/training.md)")

def local_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("local model (Sec. 3.3, Eq. 2)")
    group.add_argument("--clip-frames", type=int, default=_iterative("clip.frames"), metavar="T",
                       help="frames after the initial one (%(default)s)")
    group.add_argument("--no-insert", action="store_true", help="no noisy-frame insertion (the Fig. 3/4 ablation)")
    group.add_argument("--lag", type=int, default=_iterative("clip.lag"),
                       help="ROIs centred by the mask this many frames back (%(default)s)")
    group.add_argument("--clips-per-sequence", type=int, default=_iterative("local_clips_per_sequence"),
                       help="local clips a sequence a pass (%(default)s)")
    group.add_argument("--views", type=int, default=_iterative("local_views"),
                       help="cached passes over the clips (%(default)s; feature cache only)")
    group.add_argument("--local-iterations", type=int, default=_iterative("local_loop.iterations"),
                       help="optimiser steps a local stage (%(default)s)")
    group.add_argument("--local-lr", type=float, default=_iterative("local_loop.lr"),
                       help="Adam's learning rate (%(default)s)")
    group.add_argument("--local-batch", type=int, default=_iterative("local_batch"), help="clips a step (%(default)s)")
    group.add_argument("--local-warm-start", action="store_true", help="step 5 fine-tunes local model 1")
    group.add_argument("--local-init", default=None, metavar="FCN",
                       help="start every local model's F-CNN convs and decoder from this FCN checkpoint "
                            "(`pixtrack train fcn`, same --config; not in the paper: a CPU-budget shortcut)")
    group.add_argument("--validate-every", type=int, default=_iterative("local_loop.validate_every"), metavar="K",
                       help="early termination: Eq. 2 on held-out clips every K iterations (a multiple of 10; "
                            "0 = off; default %(default)s)")
    group.add_argument("--patience", type=int, default=_iterative("local_loop.patience"), metavar="P",
                       help="stop after P validations without improvement, keeping the best weights "
                            "(0 = never; default %(default)s)")


def global_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("global model (Sec. 4, Eq. 4)")
    group.add_argument("--global-frames", type=int, default=_iterative("global_frames"), metavar="T",
                       help="sequence length T (%(default)s)")
    group.add_argument("--global-clips-per-sequence", type=int, default=_iterative("global_clips_per_sequence"),
                       help="global clips a sequence (%(default)s)")
    group.add_argument("--global-iterations", type=int, default=_iterative("global_loop.iterations"),
                       help="step 2 iterations (%(default)s)")
    group.add_argument("--global-lr", type=float, default=_iterative("global_loop.lr"),
                       help="step 2 learning rate (%(default)s)")
    group.add_argument("--global-update-iterations", type=int, default=_iterative("global_update_loop.iterations"),
                       help="step 4 iterations (%(default)s)")
    group.add_argument("--global-update-lr", type=float, default=_iterative("global_update_loop.lr"),
                       help="step 4 learning rate (%(default)s)")
    group.add_argument("--global-batch", type=int, default=_iterative("global_batch"), help="clips a step (%(default)s)")
    group.add_argument("--object-weight", type=float, default=_iterative("object_weight"),
                       help="Eq. 4 weight of object pixels (%(default)s)")
    group.add_argument("--global-lambda", type=float, default=_iterative("global_lambda"),
                       help="Eq. 4 lambda of ||theta_t - theta_t-1|| (%(default)s)")
    group.add_argument("--first-frame", type=int, default=_iterative("first_frame"),
                       help="Eq. 4 loss from frame i (%(default)s)")
    group.add_argument("--warmup", type=int, default=_iterative("warmup"),
                       help="first-mask warm-up steps, as the tracker does (%(default)s)")
    group.add_argument("--dilation-start", type=int, default=_iterative("dilation.start"),
                       help="first dilation kernel side (%(default)s; 1 = none)")
    group.add_argument("--dilation-step", type=int, default=_iterative("dilation.step"),
                       help="kernel shrink a step (%(default)s)")
    group.add_argument("--dilation-every", type=int, default=_iterative("dilation.every"),
                       help="iterations between shrinks (%(default)s)")
    group.add_argument("--track-clips-per-sequence", type=int, default=_iterative("track_clips_per_sequence"),
                       help="tracked clips a sequence, steps 3/5 (%(default)s)")


def iterative_settings(args: argparse.Namespace) -> IterativeSettings:
    """The parsed command line as `IterativeSettings` (the ablations reuse it to train alike):
    the settings' own defaults, replaced by what was given."""
    from tracker.training.iterative import IterativeSettings

    defaults = IterativeSettings()
    values = {"config": args.config, "seed": args.seed}
    if hasattr(args, "clip_frames"):
        values.update(
            clip=replace_given(defaults.clip, frames=args.clip_frames, lag=args.lag, insert_noise=not args.no_insert),
            local_loop=replace_given(defaults.local_loop, iterations=args.local_iterations, lr=args.local_lr,
                                     validate_every=args.validate_every, patience=args.patience),
            local_clips_per_sequence=args.clips_per_sequence, local_views=args.views, local_batch=args.local_batch,
            local_warm_start=args.local_warm_start, local_init=args.local_init,
        )
    if hasattr(args, "global_frames"):
        values.update(
            global_loop=replace_given(defaults.global_loop, iterations=args.global_iterations, lr=args.global_lr),
            global_update_loop=replace_given(defaults.global_update_loop, iterations=args.global_update_iterations,
                                             lr=args.global_update_lr),
            dilation=replace_given(defaults.dilation, start=args.dilation_start, step=args.dilation_step,
                                   every=args.dilation_every),
            global_frames=args.global_frames, global_clips_per_sequence=args.global_clips_per_sequence,
            global_batch=args.global_batch, object_weight=args.object_weight, global_lambda=args.global_lambda,
            first_frame=args.first_frame, warmup=args.warmup, track_clips_per_sequence=args.track_clips_per_sequence,
        )
    return replace_given(defaults, **values)
