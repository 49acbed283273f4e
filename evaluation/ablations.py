"""Ablations (issue 7, item 5), one command each; each writes a table (Markdown on stdout,
CSV in --out) and plots (ROC curves with the AUC, framewise IoU curves; PNG and PDF).

    python -m evaluation.ablations insertion --dataset DIR --folds F --fold I --out DIR
        [pixtrack train local's options: --config, --local-iterations, --clip-frames, ...]
    python -m evaluation.ablations synthesis --dataset DIR --folds F --fold I --out DIR --synthesize N
        [--synthesize-frames F --synthesize-seed S, pixtrack train local's options]
    python -m evaluation.ablations engine --dataset DIR --folds F --fold I --out DIR --feature-store DIR
        --synthesize N [--parts cached store synthesis store+synthesis, pixtrack train local's options]
    python -m evaluation.ablations trackers --dataset DIR [--folds F --fold I] --out DIR
        --checkpoint pixtrack=PATH --checkpoint pixtrack-fcn=PATH [--checkpoint pixtrack-1stage=PATH]
    python -m evaluation.ablations memory --dataset DIR [--folds F --fold I] --out DIR
        --checkpoint PATH [--protocol gt-roi|tracking]
    python -m evaluation.ablations options --dataset DIR --folds F --fold I --out DIR
        --global-from CHECKPOINT [--configs lite lite+prior ...] [pixtrack train local's options]

- insertion (paper Sec. 3.4, Fig. 4): two local models trained exactly alike (`pixtrack train
  local`'s machinery: `IterativeRun`'s `local` stage, same seed and settings) except for
  noisy-frame insertion; then compared on random clips of held-out sequences (fold I's test
  sequences, or --test DIR) with Table 2's protocol, ROIs from the ground truth at t - 5: pixel
  ROC / AUC and framewise IoU. The local model runs inside the 1-stage tracker, whose own
  ROI placement is unused under that protocol. Training resumes in OUT/train/<variant>.
- synthesis (the data engine, issue 16): the same, the variants a local model trained on the
  training sequences' clips and one trained on them plus --synthesize N clips synthesised from
  their annotated frames (`tracker.data.video_synthesis`; never from held-out sequences).
- engine (issue 16): each part of the data engine alone and together, one row each: cached
  clips (as the recipes train), clips cut from the full-frame feature store (--feature-store),
  cached clips plus --synthesize N synthesised ones, and store-fed clips of both (--parts picks
  rows; a synthesis ablation's rows in the same OUT are reused), each row's training time beside it.
- trackers (Table 3): 2-stage vs 1-stage vs FCN under full tracking for given checkpoints
  (a k-fold map `NAME=folds.json` as `python -m evaluation.tables` takes; the 1-stage reads the
  two-stage checkpoint unless given its own), over --lengths, plus the ROC and framewise IoU
  of full-tracking clips.
- memory (Sec. 3.2): one two-stage checkpoint with its learned memory initialisation (M-CNN
  on the first ROI) vs all-zero memory (`LocalModel.zero_state`, through `ZeroMemoryInit`),
  Table 2's protocol by default (the local model alone) or full tracking (--protocol
  tracking). The model was trained with its learned initialisation, so this measures what
  that initialisation contributes at tracking time; a model trained from zero memory would
  need a training option that does not exist yet.

- options (`pixtrack-plus`): local models of configurations with the options beyond Table 1
  (previous-map prior, state alignment; `tracker.config`) trained alike on one set of cached
  clips, each paired with the same global model, then Table 3 and pixel AUC under full
  tracking on held-out sequences, with each row's training time.

--lengths adds the length table (Table 2 for insertion and memory, Table 3 for trackers,
where it is the default) through `evaluation.protocols.evaluate_lengths`. Runs are cached in
OUT/cache (`evaluation.results_cache`, keyed by the checkpoint's content), so a second call
re-reads them. --seed seeds the clips (and, for insertion, the training, as in `pixtrack train`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from evaluation.parallel import Spread, spread_arguments, spread_from
from evaluation.protocols import CLIP_LENGTH, GT_ROI, PAPER_LENGTHS, PAPER_THRESHOLDS, PROTOCOLS, TRACKING, TrackerSpec

ABLATIONS = ("insertion", "synthesis", "engine", "trackers", "memory", "options")
OPTION_CONFIGS = ("lite", "lite+prior-pool4", "lite+prior", "lite+align", "lite+match", "lite+pool3", "lite+all")
"""The options ablation's default rows: Table 1's local model, each option beyond it alone,
and together (tracker.config)."""
OPTION_TRACKERS = {"pixtrack": "", "pixtrack-plus": " (tuned)"}
"""How the options ablation tracks with each configuration's checkpoint -> its rows' label suffix."""
INSERTION_VARIANTS = {"with insertion": True, "without insertion": False}
# The data engine's parts (issue 16), alone and together; "synthesis" is the synthesis
# ablation's second row, so the two ablations share their trained rows in one OUT.
ENGINE_PARTS = ("cached", "store", "synthesis", "store+synthesis")
TRAINING_RECORD = "train-seconds.json"
"""A trained row's cost, in its folder (`timed_training`)."""
MEMORY_VARIANTS = ("learned init", "zero init")
TRACKER_NAMES = ("pixtrack", "pixtrack-1stage", "pixtrack-fcn")
"""The trackers ablation's default rows (any registered name or alias may be given)."""
DEFAULT_CLIPS = 100
TABLE_NUMBER = {GT_ROI: 2, TRACKING: 3}


# ----------------------------------------------------------------------------- memory


class ZeroMemoryInit(nn.Module):
    """A local model whose memory starts at zero (the paper's baseline) instead of M-CNN's
    output: `init_memory` ignores the first ROI and its mask; everything else is the wrapped
    model's. It fits wherever a `LocalModel` goes in a tracker (two-stage or 1-stage)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def init_memory(self, image: Tensor, mask: Tensor) -> Any:
        return self.model.zero_state(image.shape[0], image.device)

    def step(self, image: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.model.step(image, state)


def memory_variant(checkpoint: str, variant: str, device: str | None, backbone: nn.Module | None = None):
    """The two-stage tracker of `checkpoint` with learned (`learned init`) or zero (`zero init`) memory."""
    from tracker.two_stage import TwoStageTracker

    if variant not in MEMORY_VARIANTS:
        raise ValueError(f"unknown memory variant {variant!r}; known: {', '.join(MEMORY_VARIANTS)}")
    tracker = TwoStageTracker.from_checkpoint(checkpoint, device=device, backbone=backbone)
    if variant == "learned init":
        return tracker
    return TwoStageTracker(ZeroMemoryInit(tracker.local_model), tracker.global_model, device=tracker.device,
                           beta=tracker.beta, warmup=tracker.warmup, map_threshold=tracker.map_threshold)


def _one_stage_of_local_weights(path: str, *, model_config: Any, device: str | None, backbone: nn.Module | None):
    """The 1-stage tracker of a local model's weights file (the insertion ablation's variants)."""
    from baselines.centroid import OneStageTracker
    from tracker.local_model import LocalModel
    from tracker.training.weights import load_model_weights

    local = load_model_weights(path, LocalModel(model_config.local, backbone=backbone), model_config, "local")
    return OneStageTracker(local, device=device)


def _memory_variant_at(checkpoint: str, *, variant: str, device: str | None, backbone: nn.Module | None):
    return memory_variant(checkpoint, variant, device, backbone)  # a factory `checkpoint -> tracker` by partial


# ----------------------------------------------------------------------------- trackers


def tracker_factory(name: str, device: str | None, backbone: nn.Module | None = None,
                    fcn_iterations: int | None = None) -> Callable[[str], Any]:
    """checkpoint -> the registry's tracker `name`, sharing `backbone` where the tracker has
    one; `fcn_iterations` sets the first-frame fine-tuning of trackers that fine-tune."""
    from evaluation.running import RegisteredFactory
    from tracker.registry import entry

    options = entry(name).options
    given = {"backbone": backbone, "tuning_iterations": fcn_iterations}
    return RegisteredFactory(name, device, options=tuple((k, v) for k, v in given.items() if k in options))


def tracker_checkpoints(values: Seq[str] | None, names: Seq[str]) -> dict[str, Any]:
    """`--checkpoint NAME=PATH` (PATH.json: a k-fold map) per tracker. A tracker without one
    takes the checkpoint given for another of the same checkpoint kind (the 1-stage reads the
    two-stage file), else its shipped default (an error if missing)."""
    from evaluation.tables import parse_checkpoints
    from tracker.registry import entry

    given = parse_checkpoints(values, names)
    checkpoints: dict[str, Any] = {}
    for name in names:
        kind = entry(name).checkpoint_kind
        same_kind = [other for other in names if other in given and entry(other).checkpoint_kind == kind]
        if name in given or same_kind:
            checkpoints[name] = given[name if name in given else same_kind[0]]
            continue
        path = entry(name).shipped_checkpoint()
        if path is None:
            checkpoints[name] = None
        elif not path.is_file():
            raise FileNotFoundError(f"no checkpoint for {name!r}: pass --checkpoint {name}=PATH "
                                    f"(the shipped default {path} does not exist)")
        else:
            checkpoints[name] = str(path)
    return checkpoints


# ----------------------------------------------------------------------------- evaluation


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How variants are compared: clips (ROC, framewise IoU) and optionally lengths (Table 2/3)."""

    protocol: str = GT_ROI
    clips: int = DEFAULT_CLIPS
    clip_length: int = CLIP_LENGTH
    lengths: tuple[int, ...] = ()
    thresholds: tuple[float, ...] = PAPER_THRESHOLDS
    seed: int = 0
    device: str | None = None
    progress: bool = True
    dpi: int = 300
    spread: Spread = Spread()
    """How the runs are spread (`--eval-workers`, `--eval-shard`, ...; evaluation.parallel)."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}")
        if self.clips < 0 or self.clip_length < 1:
            raise ValueError(f"--clips must be >= 0 and --clip-length >= 1, got {self.clips} and {self.clip_length}")
        if self.clips == 0 and not self.lengths:
            raise ValueError("--clips 0 leaves nothing to compare without --lengths")
        if any(length < 1 for length in self.lengths):
            raise ValueError(f"--lengths must be positive, got {list(self.lengths)}")
        if not self.thresholds or any(not 0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError(f"--thresholds must lie in [0, 1], got {list(self.thresholds)}")


def compare(
    name: str,
    specs: Seq[TrackerSpec],
    sequences: Seq[Any],
    settings: Evaluation,
    out: Path,
    cache: Any,
    dataset_key: str,
    title: str,
) -> str:
    """Every variant of `specs` on clips of `sequences` (and at `settings.lengths`): writes
    OUT/<name>.csv, OUT/<name>_roc.*, OUT/<name>_framewise_iou.* (and OUT/table<N>.csv/.tex,
    OUT/table<N>_iou_over_time_L*.*), returns the Markdown. No clips (`settings.clips` 0): the
    length table alone, which a fine-tuned tracker gives far sooner (it fine-tunes at every clip)."""
    from evaluation.protocols import evaluate_clips, evaluate_lengths, sample_clips
    from evaluation.table_model import build_table
    from evaluation.table_render import clip_report, emit_table, plot_sequence_ious

    if not sequences:
        raise ValueError("the test set is empty: no held-out sequences to evaluate on")
    from evaluation.seen import warn_training_set

    labels = [spec.name for spec in specs]
    caption = warn_training_set(specs, sequences, f"{len(sequences)} held-out sequences")
    clips = sample_clips(sequences, settings.clips, settings.clip_length, seed=settings.seed) if settings.clips else []
    if settings.spread.spreads:
        from evaluation.parallel import fill_cache
        from evaluation.protocols import clip_requests, length_requests

        requests = length_requests(specs, sequences, settings.protocol, settings.lengths) if settings.lengths else []
        requests += clip_requests(specs, clips, settings.protocol)
        report = fill_cache(requests, specs, sequences, cache, dataset_key, settings.spread, settings.device,
                            progress=settings.progress)
        if settings.spread.shard is not None:
            index, count = settings.spread.shard
            return (f"shard {index}/{count}: {report.summary()} into {cache.root}; once every shard is done, the "
                    "same command without --eval-shard writes the tables")
        print(report.summary(), file=sys.stderr)
    outputs = []
    if settings.lengths:
        scores = evaluate_lengths(specs, sequences, settings.protocol, settings.lengths, settings.thresholds, cache,
                                  dataset_key, settings.device, progress=settings.progress)
        table = build_table(TABLE_NUMBER[settings.protocol], scores, settings.thresholds, settings.lengths, labels)
        table.title = f"{title}: {table.title}"
        outputs.append(emit_table(table, scores, out, caption))
        plot_sequence_ious(scores, table.number, max(settings.lengths), settings.thresholds[0], out)
    if not clips:
        return "\n\n".join(outputs)
    results = evaluate_clips(specs, sequences, clips, settings.protocol, settings.thresholds, cache, dataset_key,
                             device=settings.device, progress=settings.progress)
    heading = (f"**{title}**: pixel ROC AUC and mean IoU over {len(clips)} clips of {settings.clip_length} frames "
               f"of {len(sequences)} held-out sequences (protocol {settings.protocol}, seed {settings.seed})")
    caption = f"{len(clips)} clips, protocol {settings.protocol}"  # a column-wide figure: short
    outputs.append(clip_report(results, settings.thresholds, out, heading, caption, plots=True,
                               csv_name=f"{name}.csv", plot_prefix=name, row_header="variant", dpi=settings.dpi))
    return "\n\n".join(outputs)


# ----------------------------------------------------------------------------- data


def held_out(dataset: str | Path, folds: str | None, fold: int | None) -> tuple[list[Any], tuple[str, ...]]:
    """(test sequences, names to keep out of training): fold `fold`'s test sequences of
    `dataset`, or every sequence of it without folds."""
    from tracker.data import load_dataset
    from tracker.training.folds import read_folds

    if (folds is None) != (fold is None):
        raise ValueError("--folds and --fold go together")
    if folds is None:
        return load_dataset(dataset), ()
    test = read_folds(folds).fold(fold).test
    return load_dataset(dataset, list(test)), tuple(test)


def _cache(args: argparse.Namespace):
    from evaluation.results_cache import RunCache

    return RunCache(None if args.no_cache else (args.cache or Path(args.out) / "cache"))


def _settings(args: argparse.Namespace, protocol: str, device: str) -> Evaluation:
    return Evaluation(protocol=protocol, clips=args.clips, clip_length=args.clip_length,
                      lengths=tuple(args.lengths or ()), thresholds=tuple(args.thresholds), seed=args.seed,
                      device=device, progress=not args.quiet, dpi=args.dpi, spread=spread_from(args, "eval-"))


# ----------------------------------------------------------------------------- the ablations


@dataclasses.dataclass
class TrainingSetup:
    """What the ablations that train share: held-out and training sequences, the runtime, one backbone."""

    test: list[Any]
    train: list[Any]
    dataset_key: str
    runtime: Any
    backbone: nn.Module
    base: Any  # IterativeSettings from the command line
    feature_cache: bool | None
    say: Callable[[str], None]


def training_data(args: argparse.Namespace, exclude: Seq[str], synthesize: int = 0) -> list[Any]:
    """--dataset, --data and --synthetic's sequences less `exclude`, plus `synthesize` clips
    synthesised from the real ones kept: what `pixtrack train` would train on."""
    from tracker.training.sources import training_sequences

    options = {"synthesize": synthesize, "synthesize_frames": args.synthesize_frames,
               "synthesize_seed": args.synthesize_seed} if synthesize else {}
    return training_sequences([args.dataset, *args.data], synthetic=args.synthetic,
                              synthetic_frames=args.synthetic_frames, synthetic_seed=args.synthetic_seed,
                              synthetic_folder=Path(args.out) / "synthetic" if args.synthetic else None,
                              exclude=exclude, **options)


def training_setup(args: argparse.Namespace, backbone: nn.Module | None, what: str) -> TrainingSetup:
    """Held-out sequences (--folds/--fold or --test), training ones without them (an overlap is
    an error), the runtime and the backbone, for an ablation that trains its variants."""
    from evaluation.results_cache import dataset_id
    from tracker.config import get_config
    from tracker.data import load_dataset
    from tracker.training.arguments import iterative_settings as training_settings
    from tracker.training.hardware import Runtime

    if args.test is not None:
        if args.folds is not None or args.fold is not None:
            raise ValueError("give held-out sequences either as --test DIR or as --folds F --fold I, not both")
        test, exclude = load_dataset(args.test), ()
        dataset_key = dataset_id(args.test)
    elif args.folds is not None or args.fold is not None:
        test, exclude = held_out(args.dataset, args.folds, args.fold)
        dataset_key = dataset_id(args.dataset)
    else:
        raise ValueError(f"the {what} ablation evaluates on held-out sequences: give --folds F --fold I "
                         "(train on the fold's training sequences, test on its test ones) or --test DIR")
    train = training_data(args, exclude)
    overlap = sorted({s.name for s in train} & {s.name for s in test})
    if overlap:
        raise ValueError(f"sequences both trained on and held out: {', '.join(overlap)}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    runtime = Runtime.start(args.device, amp=not args.no_amp)
    if runtime.distributed:
        raise ValueError(f"run the {what} ablation in one process (not under torchrun)")
    if backbone is None:
        from tracker.backbone import VGG16Pool4

        backbone = VGG16Pool4(get_config(args.config).local.backbone)
    feature_cache = {"auto": None, "on": True, "off": False}[args.feature_cache]
    say = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    return TrainingSetup(test, train, dataset_key, runtime, backbone, training_settings(args), feature_cache, say)


def _local_variants(args: argparse.Namespace, setup: TrainingSetup,
                    variants: Mapping[str, tuple[Any, Seq[Any]]],
                    stores: Mapping[str, str | None] | None = None) -> dict[str, Path]:
    """Train one local model a variant (label -> (IterativeSettings, training sequences)),
    each with `pixtrack train local`'s machinery into OUT/train/<label> (resumable), fed from
    the feature store `stores[label]` (default: --feature-store, if any)."""
    from tracker.training.iterative import IterativeRun

    weights: dict[str, Path] = {}
    for label, (settings, train) in variants.items():
        folder = Path(args.out) / "train" / label.replace(" ", "-")
        store = args.feature_store if stores is None else stores[label]
        setup.say(f"[{label}] training a local model on {len(train)} sequences into {folder}")
        job = IterativeRun(folder, train, settings, setup.runtime, workers=args.workers,
                           feature_cache=setup.feature_cache, keep_cache=args.keep_cache, backbone=setup.backbone,
                           progress=not args.quiet, say=setup.say, feature_store=store)
        timed_training(folder, lambda: job.run_stages(["local"], "run-local"), job.output("local").is_file())
        weights[label] = job.output("local")
    return weights


def timed_training(folder: Path, train: Callable[[], None], done: bool) -> dict[str, float] | None:
    """Run `train` (unless `done`) and add what it cost to OUT/train/<row>/train-seconds.json:
    wall seconds and CPU seconds (this process and its finished workers). A resumed row adds to
    what its interrupted runs spent; CPU seconds do not count time a run was paused (SIGSTOP),
    wall seconds do. Returns the record, None for a row finished before any was kept."""
    record = training_record(folder)
    if done:
        return record
    record = record or {"seconds": 0.0, "cpu_seconds": 0.0}
    wall, cpu = time.perf_counter(), os.times()
    try:
        train()
    finally:
        now = os.times()
        record["seconds"] += time.perf_counter() - wall
        record["cpu_seconds"] = record.get("cpu_seconds", 0.0) + sum(
            getattr(now, field) - getattr(cpu, field) for field in ("user", "system", "children_user", "children_system"))
        record["threads"] = torch.get_num_threads()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / TRAINING_RECORD).write_text(json.dumps(record) + "\n")
    return record


def training_record(folder: Path) -> dict[str, float] | None:
    """What training the row in `folder` cost (`timed_training`), None where none was kept."""
    path = folder / TRAINING_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def _training_rows(out: Path, name: str, rows: Mapping[str, Mapping[str, float] | None]) -> str:
    """Each row's training time: Markdown, and OUT/<name>_training.csv."""
    lines = ["| variant | training (min, wall) | CPU (min) |", "|---|---|---|"]
    with open(out / f"{name}_training.csv", "w", encoding="utf-8") as handle:
        handle.write("variant,training_seconds,cpu_seconds\n")
        for label, record in rows.items():
            wall = f"{record['seconds'] / 60:.1f}" if record else "not recorded"
            cpu = f"{record['cpu_seconds'] / 60:.1f}" if record and "cpu_seconds" in record else "not recorded"
            lines.append(f"| {label} | {wall} | {cpu} |")
            handle.write(f"{label},{record['seconds'] if record else ''},{record.get('cpu_seconds', '') if record else ''}\n")
    return "\n".join(lines)


def _compare_local_models(args: argparse.Namespace, setup: TrainingSetup, weights: Mapping[str, Path], name: str,
                          title: str) -> str:
    """Local models on held-out clips with Table 2's protocol (inside the 1-stage tracker, whose
    own placement that protocol leaves unused)."""
    from tracker.config import get_config

    device = str(setup.runtime.device)
    factory = functools.partial(_one_stage_of_local_weights, model_config=get_config(args.config), device=device,
                                backbone=setup.backbone)
    specs = [TrackerSpec(label, factory, str(path)) for label, path in weights.items()]
    return compare(name, specs, setup.test, _settings(args, GT_ROI, device), Path(args.out), _cache(args),
                   setup.dataset_key, title)


def run_insertion(args: argparse.Namespace, backbone: nn.Module | None = None) -> str:
    """Train the two local models (resumable), then compare them on held-out clips (Table 2 protocol)."""
    if args.no_insert:
        raise ValueError("--no-insert: the insertion ablation trains both variants, with and without")
    setup = training_setup(args, backbone, "insertion")
    base = setup.base
    variants = {label: (dataclasses.replace(base, clip=dataclasses.replace(base.clip, insert_noise=insert)), setup.train)
                for label, insert in INSERTION_VARIANTS.items()}
    return _compare_local_models(args, setup, _local_variants(args, setup, variants), "insertion",
                                 "Noisy-frame insertion (local model)")


def run_synthesis(args: argparse.Namespace, backbone: nn.Module | None = None) -> str:
    """Train a local model on the real training clips and one on them plus --synthesize N clips
    synthesised from their annotated frames (tracker.data.video_synthesis), alike otherwise
    (resumable); then compare them on held-out clips (Table 2 protocol)."""
    if args.synthesize < 1:
        raise ValueError(f"--synthesize: the synthesis ablation adds N >= 1 synthesised clips, got {args.synthesize}")
    setup = training_setup(args, backbone, "synthesis")
    held_out_names = [sequence.name for sequence in setup.test]
    variants = {"real clips": (setup.base, setup.train),
                f"real + {args.synthesize} synthesised": (setup.base, training_data(args, held_out_names, args.synthesize))}
    return _compare_local_models(args, setup, _local_variants(args, setup, variants), "synthesis",
                                 "Video synthesis (local model)")


def engine_label(part: str, synthesize: int) -> str:
    """The row of `part` (one of ENGINE_PARTS): cached rows are labelled as the synthesis
    ablation labels them, so one OUT shares their trained models."""
    real = "real clips" if "synthesis" not in part else f"real + {synthesize} synthesised"
    return f"store-fed {real}" if part.startswith("store") else real


def run_engine(args: argparse.Namespace, backbone: nn.Module | None = None) -> str:
    """The data engine's parts alone and together: local models trained alike on the training
    sequences' cached clips (--views cached passes, the recipe as shipped), on clips cut anew
    every epoch from the full-frame feature store (--feature-store DIR), on cached clips plus
    --synthesize N synthesised ones, and on store-fed clips of both (--parts picks the rows);
    then compared on held-out clips (Table 2 protocol), each row's training time beside it."""
    parts = list(dict.fromkeys(args.parts))
    if any(part.startswith("store") for part in parts) and args.feature_store is None:
        raise ValueError("--parts store / store+synthesis train from the feature store: give --feature-store DIR")
    if any("synthesis" in part for part in parts) and args.synthesize < 1:
        raise ValueError(f"--parts synthesis / store+synthesis add --synthesize N >= 1 synthesised clips, "
                         f"got {args.synthesize}")
    setup = training_setup(args, backbone, "engine")
    held_out_names = [sequence.name for sequence in setup.test]
    synthesised = (training_data(args, held_out_names, args.synthesize)
                   if any("synthesis" in part for part in parts) else None)
    labels = {part: engine_label(part, args.synthesize) for part in parts}
    variants = {labels[part]: (setup.base, synthesised if "synthesis" in part else setup.train) for part in parts}
    stores = {labels[part]: args.feature_store if part.startswith("store") else None for part in parts}
    weights = _local_variants(args, setup, variants, stores)
    text = _compare_local_models(args, setup, weights, "engine", "The data engine's parts (local model)")
    timings = {label: training_record(Path(args.out) / "train" / label.replace(" ", "-")) for label in weights}
    return text + "\n\n" + _training_rows(Path(args.out), "engine", timings)


def run_trackers(args: argparse.Namespace, backbone: nn.Module | None = None) -> str:
    """Table 3 (full tracking) of the 2-stage, 1-stage and FCN trackers, plus their clips."""
    from evaluation.results_cache import dataset_id
    from tracker.device import resolve_device

    from tracker.registry import entry

    names = [name for value in args.trackers for name in value.split(",") if name]
    for name in names:
        entry(name)  # an unknown name fails before anything runs, listing the known ones
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    test, _ = held_out(args.dataset, args.folds, args.fold)
    checkpoints = tracker_checkpoints(args.checkpoint, names)
    specs = []
    for name in names:
        tunes = "tuning_iterations" in entry(name).options
        label = name if args.fcn_iterations is None or not tunes else f"{name} (tuned {args.fcn_iterations} it.)"
        specs.append(TrackerSpec(label, tracker_factory(name, device, backbone, args.fcn_iterations), checkpoints[name]))
    settings = _settings(args, TRACKING, device)
    return compare("trackers", specs, test, settings, Path(args.out), _cache(args), dataset_id(args.dataset),
                   "2-stage vs 1-stage vs FCN")


def run_memory(args: argparse.Namespace, backbone: nn.Module | None = None) -> str:
    """Learned memory initialisation vs zeros, one checkpoint (or k-fold map)."""
    from evaluation.protocols import load_checkpoint_map
    from evaluation.results_cache import dataset_id
    from tracker.device import resolve_device

    checkpoint: Any = args.checkpoint
    if checkpoint.endswith(".json"):
        checkpoint = load_checkpoint_map(checkpoint)
    elif not Path(checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint: no two-stage checkpoint at {checkpoint}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    test, _ = held_out(args.dataset, args.folds, args.fold)
    specs = [TrackerSpec(variant, functools.partial(_memory_variant_at, variant=variant, device=device, backbone=backbone),
                         checkpoint) for variant in MEMORY_VARIANTS]
    settings = _settings(args, args.protocol, device)
    return compare("memory", specs, test, settings, Path(args.out), _cache(args), dataset_id(args.dataset),
                   "Memory initialisation: learned vs zeros")



# ----------------------------------------------------------------------------- command line


def run_options(args: argparse.Namespace, backbone: nn.Module | None = None) -> str:
    """Local models of several configurations (the options beyond Table 1: tracker.config),
    trained exactly alike on the same cached clips (the backbone runs once per kind of
    features: pool4, or pool4 and pool3), each paired with the same global model
    (--global-from), then Table 3 (full tracking) and pixel AUC on the held-out sequences, as
    `pixtrack` tracks (no fine-tuning) and as `pixtrack-plus` does (fine-tuned on the first
    frame; rows "(tuned)"); the training time of each row beside it."""
    from evaluation.running import RegisteredFactory
    from tracker.config import get_config
    from tracker.local_model import feature_channels
    from tracker.training.feature_cache import read_meta, share_feature_cache
    from tracker.training.iterative import IterativeRun

    configs = [name for value in args.configs for name in value.split(",") if name]
    models = {name: get_config(name) for name in configs}  # an unknown name fails before anything runs
    inputs = {(m.local.backbone, m.local.roi_size, m.local.mask_dilation) for m in models.values()}
    if len(inputs) > 1:
        raise ValueError(f"configurations {configs} feed the backbone differently (backbone, ROI size, mask "
                         "dilation): their cached clips differ, compare them with separate runs")
    out = Path(args.out)
    setup = training_setup(args, backbone, "options")
    checkpoints: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    # A complete cache of each kind of features (pool4 alone, or with pool3 folded in), once
    # one row has built it: rows trained by an earlier run left none, so the first row of this
    # run to need the backbone builds it and the rows after it share it.
    built_caches: dict[int, Path] = {}
    for name in configs:
        settings = dataclasses.replace(setup.base, config=name)
        folder = out / "train" / name
        cache = folder / "cache" / "local"
        channels = feature_channels(models[name].local)
        source = built_caches.get(channels)
        if source is not None and share_feature_cache(source, cache):
            setup.say(f"[{name}] reusing the cached clips of {source.parent.parent.name}")
        job = IterativeRun(folder, setup.train, settings, setup.runtime, workers=args.workers,
                           feature_cache=setup.feature_cache, keep_cache=True, backbone=setup.backbone,
                           progress=not args.quiet, say=setup.say, feature_store=args.feature_store)
        record = timed_training(folder, lambda: job.run_stages(["local"], "run-local"), job.output("local").is_file())
        if read_meta(cache) is not None:
            built_caches.setdefault(channels, cache)
        seconds[name] = record["seconds"] if record else float("nan")
        job.adopt_global(args.global_from)
        checkpoints[name] = job.assemble("local", "global", "evaluation.ablations options")
    if not args.keep_cache:
        for name in configs:
            shutil.rmtree(out / "train" / name / "cache", ignore_errors=True)

    device = str(setup.runtime.device)

    specs = []
    for tracker in dict.fromkeys(args.trackers):
        factory = RegisteredFactory(tracker, device, options=(("backbone", setup.backbone),))
        suffix = OPTION_TRACKERS[tracker]
        specs += [TrackerSpec(f"{name}{suffix}", factory, str(path)) for name, path in checkpoints.items()]
    settings = _settings(args, TRACKING, device)
    text = compare("options", specs, setup.test, settings, out, _cache(args), setup.dataset_key,
                   "Local-model options beyond Table 1 (two-stage, full tracking)")
    rows = ["| configuration | options | training (min) |", "|---|---|---|"]
    with open(out / "options_training.csv", "w", encoding="utf-8") as handle:
        handle.write("configuration,options,training_seconds\n")
        for name in configs:
            options = "+".join(models[name].local.beyond_paper) or "none (Table 1)"
            rows.append(f"| {name} | {options} | {seconds[name] / 60:.1f} |")
            handle.write(f"{name},{options},{seconds[name]:.1f}\n")
    return text + "\n\n" + "\n".join(rows)


RUNNERS: Mapping[str, Callable[..., str]] = {"insertion": run_insertion, "synthesis": run_synthesis, "engine": run_engine,
                                             "trackers": run_trackers, "memory": run_memory, "options": run_options}


def _evaluation_arguments(parser: argparse.ArgumentParser, lengths: Seq[int]) -> None:
    group = parser.add_argument_group("evaluation")
    group.add_argument("--dataset", required=True, help="VOT sequences folder or DAVIS root")
    group.add_argument("--thresholds", nargs="+", type=float, default=list(PAPER_THRESHOLDS),
                       help="mask thresholds of the IoUs (default: %(default)s)")
    group.add_argument("--clips", type=int, default=DEFAULT_CLIPS,
                       help="random clips for the ROC and framewise IoU (default: %(default)s; the paper: 1200; "
                            "0: none, the length table alone)")
    group.add_argument("--clip-length", type=int, default=CLIP_LENGTH,
                       help="frames a clip scores after its initial one (default: %(default)s)")
    group.add_argument("--lengths", nargs="*", type=int, default=list(lengths),
                       help=f"sequence lengths of the length table (default: {' '.join(map(str, lengths)) or 'none'})")
    group.add_argument("--cache", type=Path, default=None, help="run cache folder (default: OUT/cache)")
    group.add_argument("--no-cache", action="store_true", help="keep no runs")
    group.add_argument("--dpi", type=int, default=300, help="resolution of the PNG plots (default: %(default)s)")
    spread_arguments(parser, "eval-")  # --workers / --threads are the training's here


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--folds", default=None, metavar="F", help="folds file (pixtrack train folds)")
    group.add_argument("--fold", type=int, default=None, metavar="I", help="evaluate on fold I's test sequences")
    group.add_argument("--out", required=True, metavar="DIR", help="output folder (tables, plots, run cache)")
    group.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    group.add_argument("--seed", type=int, default=0, help="seed of the clips (default 0)")
    group.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from tracker.training.arguments import data_arguments, local_arguments, run_arguments

    parser = argparse.ArgumentParser(prog="python -m evaluation.ablations",
                                     description="Ablations: noisy-frame insertion, 2-stage vs 1-stage vs FCN, "
                                                 "learned memory initialisation vs zeros, local-model options.")
    sub = parser.add_subparsers(dest="ablation", metavar="ABLATION")
    sub.required = True

    insertion = sub.add_parser("insertion", help="local models trained with vs without noisy-frame insertion",
                               description=run_insertion.__doc__)
    _evaluation_arguments(insertion, ())
    insertion.add_argument("--test", default=None, metavar="DIR",
                           help="held-out sequences (instead of --folds/--fold); all of --dataset then trains")
    data_arguments(insertion)
    run_arguments(insertion)
    local_arguments(insertion)

    synthesis = sub.add_parser("synthesis", help="local models trained on real clips vs real plus synthesised ones",
                               description=run_synthesis.__doc__)
    _evaluation_arguments(synthesis, ())
    synthesis.add_argument("--test", default=None, metavar="DIR",
                           help="held-out sequences (instead of --folds/--fold); all of --dataset then trains")
    data_arguments(synthesis, synthesize=True)
    run_arguments(synthesis)
    local_arguments(synthesis)

    engine = sub.add_parser("engine", help="the data engine's parts: cached clips, feature store, synthesis, both",
                            description=run_engine.__doc__)
    _evaluation_arguments(engine, ())
    engine.add_argument("--test", default=None, metavar="DIR",
                        help="held-out sequences (instead of --folds/--fold); all of --dataset then trains")
    engine.add_argument("--parts", nargs="+", choices=ENGINE_PARTS, default=list(ENGINE_PARTS),
                        help="rows to train and compare (default: all); store rows need --feature-store DIR, "
                             "synthesis rows --synthesize N")
    data_arguments(engine, synthesize=True)
    run_arguments(engine)
    local_arguments(engine)

    trackers = sub.add_parser("trackers", help="Table 3: 2-stage vs 1-stage vs FCN for given checkpoints",
                              description=run_trackers.__doc__)
    _evaluation_arguments(trackers, PAPER_LENGTHS)
    _common_arguments(trackers)
    trackers.add_argument("--trackers", nargs="+", default=list(TRACKER_NAMES),
                          help=f"trackers, comma or space separated (default: {' '.join(TRACKER_NAMES)})")
    trackers.add_argument("--checkpoint", action="append", metavar="NAME=PATH",
                          help="checkpoint of a tracker (repeatable); PATH.json = a k-fold map; "
                               "pixtrack-1stage defaults to the pixtrack checkpoint")
    trackers.add_argument("--fcn-iterations", type=int, default=None,
                          help="FCN first-frame fine-tuning iterations (default: baselines.fcn.FineTuning's)")

    memory = sub.add_parser("memory", help="learned memory initialisation vs zeros, same local model",
                            description=run_memory.__doc__)
    _evaluation_arguments(memory, ())
    _common_arguments(memory)
    memory.add_argument("--checkpoint", required=True,
                        help="two-stage checkpoint (or a k-fold map .json sequence -> checkpoint)")
    memory.add_argument("--protocol", choices=PROTOCOLS, default=GT_ROI,
                        help="gt-roi (default: Table 2, the local model alone) or tracking (Table 3)")
    options = sub.add_parser("options", help="local-model options beyond Table 1, each alone and together",
                             description=run_options.__doc__)
    _evaluation_arguments(options, (20, 40, 80))
    options.add_argument("--test", default=None, metavar="DIR",
                         help="held-out sequences (instead of --folds/--fold); all of --dataset then trains")
    options.add_argument("--configs", nargs="+", default=list(OPTION_CONFIGS),
                         help=f"model configurations, one row each (default: {' '.join(OPTION_CONFIGS)})")
    options.add_argument("--trackers", nargs="+", choices=list(OPTION_TRACKERS), default=list(OPTION_TRACKERS),
                         help="track each checkpoint as pixtrack (no fine-tuning) and/or as pixtrack-plus "
                              "(fine-tuned on the first frame, rows '(tuned)'); default: both")
    options.add_argument("--global-from", required=True, metavar="CHECKPOINT",
                         help="the two-stage checkpoint whose global model every row uses (trained without "
                              "the held-out sequences)")
    data_arguments(options)
    run_arguments(options)
    local_arguments(options)
    return parser


def main(argv: Seq[str] | None = None, backbone: nn.Module | None = None) -> int:
    """The command line; `backbone` replaces the VGG16 of every model (tests use a stand-in)."""
    args = build_parser().parse_args(argv)
    from tracker.console import run_guarded

    def ablation() -> None:
        print(RUNNERS[args.ablation](args, backbone=backbone))

    return run_guarded(f"evaluation.ablations {args.ablation}", ablation,
                       "interrupted (finished training stages and runs are kept)")


if __name__ == "__main__":
    sys.exit(main())
