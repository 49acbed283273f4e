"""The iterative optimisation of paper Sec. 5.1, stage by stage, resumable.

    split             the training sequences in two halves (seeded)                  split.json
    local-1, local-2  step 1: a local model on each half (Sec. 3.3 clips, Eq. 2)     local-1/2.safetensors
    global-gt         step 2: the global model on ground-truth maps (Eq. 4, dilation) global-gt.safetensors
    track-predicted   step 3: Algorithm 1 (TwoStageTracker) with local 1 on half 2
                      and local 2 on half 1: the maps it feeds its global model      track-predicted.npz
    global-predicted  step 4: the global model updated on inputs Z_0, Z^_1..Z^_T
                      (targets stay the ground truth)                               global-predicted.safetensors
    track-rois        step 5a: the same cross tracking with the updated global
                      model: the ROIs it crops                                      track-rois.npz
    local-final       step 5b: the local model on those ROIs, whole training set    local-final.safetensors
    checkpoint        local-final + global-predicted as one two-stage checkpoint     two-stage-<config>.safetensors

Every stage writes its output under OUT atomically; a rerun skips stages whose output exists
and resumes an interrupted training stage from OUT/resume/<stage>.pt; `--stages` runs only
some stages (`IterativeRun.run_only`), so that independent ones can run side by side in two
processes. OUT/run.json records
the settings: a rerun with other settings (that change results) is refused rather than
mixing two runs. Losses go to OUT/logs/<stage>.csv (and OUT/tensorboard where TensorBoard is
installed); after each global stage, whether the model follows its input goes to
OUT/logs/<stage>-placement.json (`tracker.training.global_check`), with a warning if not.
On a CPU (or with `feature_cache=True`) the local stages train on cached pool4 features
(OUT/cache/<stage>, deleted when the stage is done unless `keep_cache`); with `feature_store`,
on clips cut from full-frame feature stores instead (`tracker.training.store_clips`: new clips
every epoch, the stores built once per set of training sequences and kept), in every local
stage or in those `feature_store_stages` names (pre-train on cut features, finish on crops).

Under torchrun every rank trains (DDP); rank 0 alone tracks, caches and writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys
from collections.abc import Callable, Sequence as SequenceOf
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from tracker.files import write_text_atomic
from tracker.training.curriculum import DilationSchedule
from tracker.training.hardware import Runtime
from tracker.training.loop import LoopConfig
from tracker.training.loss_log import LossLog
from tracker.training.samples import ClipConfig
from tracker.training.weights import load_model_weights, save_model_weights

if TYPE_CHECKING:
    from tracker.training.global_check import PlacementCheck


@dataclass(frozen=True)
class Stage:
    """A stage: its name, the file it writes under OUT (`{config}`: the configuration's name;
    a stage whose file exists is done) and the method that writes it."""

    name: str
    output: str
    run: Callable[[IterativeRun], None]
    needs: tuple[str, ...] = ()
    """The stages whose outputs it reads."""


@dataclass(frozen=True)
class IterativeSettings:
    """Everything that changes what the iterative procedure produces (see `pixtrack train iterative -h`)."""

    config: str = "lite"
    seed: int = 0
    clip: ClipConfig = field(default_factory=ClipConfig)
    local_clips_per_sequence: int = 4
    """Clips a sequence an epoch (or cached view) of local training."""
    local_views: int = 4
    """Cached local-model passes over the clips (different frames, perturbations, insertions)."""
    local_loop: LoopConfig = field(default_factory=lambda: LoopConfig(iterations=2000, lr=1e-4))
    local_batch: int = 4
    local_warm_start: bool = False
    """Step 5 fine-tunes local model 1 instead of training from scratch."""
    local_init: str | None = None
    """An FCN checkpoint whose F-CNN convs and decoder start every local model
    (`tracker.training.warm_start`); None: random initialisation, as the paper."""
    global_frames: int = 32
    global_clips_per_sequence: int = 8
    global_loop: LoopConfig = field(default_factory=lambda: LoopConfig(iterations=20000, lr=1e-4))
    global_update_loop: LoopConfig = field(default_factory=lambda: LoopConfig(iterations=5000, lr=3e-5))
    global_batch: int = 8
    object_weight: float = 40.0
    global_lambda: float = 0.1
    first_frame: int = 5
    warmup: int = 5
    dilation: DilationSchedule = field(default_factory=DilationSchedule)
    track_clips_per_sequence: int = 4
    """Tracked clips a sequence in steps 3 and 5."""

    def to_dict(self) -> dict:
        values = json.loads(json.dumps(dataclasses.asdict(self)))
        if values["local_init"] is None:  # runs recorded before the option existed still resume
            del values["local_init"]
        return values


class IterativeRun:
    """One run of the procedure in folder `out` over `sequences`; `run()` does what is left."""

    def __init__(
        self,
        out: str | os.PathLike,
        sequences: SequenceOf,
        settings: IterativeSettings,
        runtime: Runtime,
        *,
        workers: int = 0,
        feature_cache: bool | None = None,
        keep_cache: bool = False,
        half: bool = False,
        backbone: nn.Module | None = None,
        progress: bool = True,
        say: Callable[[str], None] | None = None,
        feature_store: str | os.PathLike | None = None,
        feature_store_stages: SequenceOf[str] | None = None,
    ) -> None:
        from tracker.config import get_config

        self.out = Path(out)
        self.sequences = list(sequences)
        self.names = [s.name for s in self.sequences]
        if len(set(self.names)) != len(self.names):
            raise ValueError("training sequence names must be unique")
        self.settings, self.runtime = settings, runtime
        self.model_config = get_config(settings.config)
        self.workers, self.keep_cache, self.half, self.progress = workers, keep_cache, half, progress
        self.feature_cache = runtime.device.type == "cpu" if feature_cache is None else feature_cache
        self._backbone = backbone
        self.feature_store = None if feature_store is None else Path(feature_store)
        if self.feature_store is not None and self.model_config.local.pool3_skip:
            raise ValueError(f"configuration {settings.config!r} has the pool3 decoder skip, and the frame store "
                             "(--feature-store) keeps pool4 only: train it on the clip cache (without --feature-store)")
        local_stages = [name for name in STAGES if self._role(name) == "local"]
        unknown = sorted(set(feature_store_stages or ()) - set(local_stages))
        if unknown:
            raise ValueError(f"feature_store_stages: no local stage {', '.join(unknown)} "
                             f"(the local stages: {', '.join(local_stages)})")
        if feature_store_stages is not None and self.feature_store is None:
            raise ValueError("feature_store_stages names stages to train on the feature store: give feature_store")
        self.feature_store_stages = None if feature_store_stages is None else frozenset(feature_store_stages)
        self._stores: dict[tuple[str, ...], tuple] = {}
        self._store_keys: dict[str, str] = {}
        self._boxes = None
        self._maps = None
        self.say = say or (lambda message: print(message, file=sys.stderr) if runtime.is_main else None)

    # ------------------------------------------------------------------ bookkeeping

    def output(self, stage: str) -> Path:
        """Where `stage` (one of `STAGES`, or `local` / `global`) writes its result."""
        if stage not in STAGE_BY_NAME:
            raise ValueError(f"no stage {stage!r}; the stages: {', '.join(STAGE_BY_NAME)}")
        return self.out / STAGE_BY_NAME[stage].output.format(config=self.settings.config)

    def finished(self) -> list[str]:
        return [stage for stage in STAGES if self.output(stage).is_file()]

    def _check_manifest(self, name: str = "run") -> None:
        manifest = {"settings": self.settings.to_dict(), "sequences": sorted(self.names)}
        path = self.out / f"{name}.json"
        if path.is_file():
            previous = json.loads(path.read_text())
            if previous != manifest:
                changed = sorted(k for k in manifest["settings"] if manifest["settings"][k] != previous.get("settings", {}).get(k))
                if previous.get("sequences") != manifest["sequences"]:
                    changed.append("training sequences")
                raise ValueError(f"{self.out} holds a run with other settings ({', '.join(changed)}); "
                                 "resume with the same arguments or use another --out")
        elif self.runtime.is_main:
            write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")
        self.runtime.barrier()

    @staticmethod
    def _role(stage: str) -> str:
        return "local" if stage.startswith("local") else "global"

    def _load(self, stage: str, module: nn.Module) -> nn.Module:
        return load_model_weights(self.output(stage), module, self.model_config, self._role(stage))

    def _log(self, stage: str) -> LossLog:
        return LossLog(self.out / "logs" / f"{stage}.csv", tensorboard_dir=self.out / "tensorboard",
                       enabled=self.runtime.is_main)

    # ------------------------------------------------------------------ shared pieces

    def backbone(self) -> nn.Module:
        if self._backbone is None:
            from tracker.backbone import VGG16Pool4

            self._backbone = VGG16Pool4(self.model_config.local.backbone)
        return self._backbone.to(self.runtime.device)

    def local_model(self) -> nn.Module:
        from tracker.local_model import LocalModel

        return LocalModel(self.model_config.local, backbone=self.backbone())

    def initial_local_model(self) -> nn.Module:
        """A local model to train: random, or warm-started from `settings.local_init`."""
        model = self.local_model()
        if self.settings.local_init is not None:
            from tracker.training.warm_start import warm_start_from_fcn

            warm_start_from_fcn(model, self.settings.local_init)
        return model

    def global_model(self) -> nn.Module:
        from tracker.global_model import GlobalModel

        return GlobalModel(self.model_config.global_)

    def adopt_global(self, checkpoint: str | os.PathLike, stage: str = "global") -> Path:
        """Write the global model of a two-stage checkpoint as this run's `stage` (`global`, or
        `global-gt`: Sec. 5.1 step 2 of an iterative run), so that a local model trained here
        pairs with a global model trained elsewhere (a configuration with other local options
        reuses the global model of `lite`). Its global configuration must equal this run's."""
        if stage not in ("global", "global-gt"):
            raise ValueError(f"adopt_global writes the stage 'global' or 'global-gt', not {stage!r}")
        from tracker.checkpoint import CheckpointError, load_checkpoint, load_weights
        from tracker.config import ModelConfig

        config_dict, states, _ = load_checkpoint(checkpoint, "two-stage")
        theirs = ModelConfig.from_dict(config_dict).global_
        if theirs != self.model_config.global_:
            raise CheckpointError(f"{checkpoint}: its global model is configured {theirs}, this run's "
                                  f"({self.model_config.name}) {self.model_config.global_}")
        model = self.global_model()
        load_weights(model, states["global"], checkpoint, "global")
        if self.runtime.is_main:
            save_model_weights(self.output(stage), model, self.model_config, "global")
        self.runtime.barrier()
        return self.output(stage)

    def boxes(self) -> list:
        from tracker.training.samples import object_boxes

        if self._boxes is None:
            self._boxes = [object_boxes(s) for s in self.sequences]
        return self._boxes

    def maps(self) -> list:
        from tracker.training.global_samples import ground_truth_maps

        if self._maps is None:
            self._maps = [ground_truth_maps(s) for s in self.sequences]
        return self._maps

    def halves(self) -> tuple[list[int], list[int]]:
        split = json.loads(self.output("split").read_text())
        index = {name: i for i, name in enumerate(self.names)}
        return [index[n] for n in split["half1"]], [index[n] for n in split["half2"]]

    # ------------------------------------------------------------------ the stages

    def run(self) -> Path:
        """Run every unfinished stage in order; returns the two-stage checkpoint's path."""
        self._check_enough_sequences()
        self.run_stages(STAGES, "run")
        return self.output("checkpoint")

    def _check_enough_sequences(self) -> None:
        insert = self.settings.clip.insert_noise
        minimum = 4 if insert else 2
        if len(self.sequences) < minimum:
            raise ValueError(
                f"iterative optimisation needs at least {minimum} training sequences (two halves"
                f"{', each with two for noisy-frame insertion' if insert else ''}), got {len(self.sequences)}"
            )

    def run_only(self, stages: SequenceOf[str]) -> None:
        """Run the unfinished ones of `stages` (in Sec. 5.1's order) and no other, so that two
        processes can share one run: step 2 (`global-gt`) needs nothing of step 1, so after
        `split` (which writes the run's record and data for both), one process trains it while
        another trains `local-1` and `local-2` (on a 2-core CPU, one thread each). Refused,
        before any work, if a stage needs one that is neither done nor among `stages`."""
        self._check_enough_sequences()
        unknown = [name for name in stages if name not in STAGES]
        if unknown:
            raise ValueError(f"no stage {', '.join(map(repr, unknown))} in the iterative run; "
                             f"the stages: {', '.join(STAGES)}")
        chosen = [name for name in STAGES if name in stages]
        available = set(self.finished()) | set(chosen)
        for name in chosen:
            missing = [need for need in STAGE_BY_NAME[name].needs if need not in available]
            if missing:
                raise ValueError(f"stage {name} needs {', '.join(missing)}, not done in {self.out} "
                                 "and not asked for: run those first (or together)")
        self.run_stages(chosen, "run")

    def run_stages(self, stages: SequenceOf[str], manifest: str) -> None:
        """Run the unfinished ones of `stages` in order, under the settings record OUT/<manifest>.json."""
        self._check_manifest(manifest)
        for stage in stages:
            if self.output(stage).is_file():
                self.say(f"[{stage}] done already: {self.output(stage)}")
                continue
            self.say(f"[{stage}] ...")
            STAGE_BY_NAME[stage].run(self)
            self.runtime.barrier()
            if not self.output(stage).is_file():
                raise RuntimeError(f"stage {stage} finished without writing {self.output(stage)}")
        if self.runtime.is_main:
            for folder in (self.out / "cache", self.out / "resume"):
                try:
                    folder.rmdir()  # only if empty
                except OSError:  # not empty (another process of the run may be using it), or gone
                    pass

    def stage_split(self) -> None:
        names = sorted(self.names)
        random.Random(self.settings.seed).shuffle(names)
        middle = (len(names) + 1) // 2
        if self.runtime.is_main:
            path = self.output("split")
            path.write_text(json.dumps({"half1": sorted(names[:middle]), "half2": sorted(names[middle:])}, indent=1))

    def stores(self, sequences: SequenceOf) -> tuple:
        """(frame store, clip-start store) of `sequences` (those a stage's clips read, their
        inserted frames' donors included) under `feature_store` (`frames/<backbone id>`,
        `starts/<backbone id>-dilation<d>-min<p>`), each sequence keyed by its own frames:
        computed once (by rank 0) and reused by every stage and every later run on any set of
        sequences that shares them (the folds of a cross-validation). Only what a stage reads is
        computed: a run that feeds step 1's second half alone from the stores
        (`--feature-store-stages local-2`) builds half of them."""
        from tracker.training.frame_features import FrameFeatureStore, backbone_id, sequence_keys_of
        from tracker.training.store_clips import ClipStartStore

        names = tuple(sorted(sequence.name for sequence in sequences))
        if names not in self._stores:
            # Each sequence hashed once, and only when read: synthesised frames are rendered to be hashed.
            self._store_keys.update(sequence_keys_of(sequences, self._store_keys))
            keys = {name: self._store_keys[name] for name in names}
            model = self.local_model()
            backbone = backbone_id(model.backbone)
            least = self.settings.clip.min_object_pixels
            frames = self.feature_store / "frames" / backbone
            starts = self.feature_store / "starts" / f"{backbone}-dilation{int(model.config.mask_dilation)}-min{least}"
            if self.runtime.is_main:
                FrameFeatureStore.build(frames, sequences, model.backbone, self.runtime.device, self.progress,
                                        sequence_keys=keys)
                ClipStartStore.build(starts, sequences, model, least, self.runtime.device, self.progress,
                                     sequence_keys=keys)
            self.runtime.barrier()
            self._stores[names] = FrameFeatureStore.open(frames, keys), ClipStartStore.open(starts, keys)
        return self._stores[names]

    def _fed_from_store(self, stage: str) -> bool:
        """Whether the local stage `stage` trains (and validates) on clips cut from the
        feature stores: every local stage with `feature_store`, or those `feature_store_stages` names."""
        return self.feature_store is not None and (self.feature_store_stages is None
                                                   or stage in self.feature_store_stages)

    def _cached(self, stage: str, name: str, model: nn.Module, dataset, views: int):
        """`dataset`'s clips for the local stage `stage`: cut from the feature stores where
        `stage` is fed from them, else cached features (built by rank 0 into OUT/cache/<name>),
        or itself."""
        from tracker.training.feature_cache import FeatureCache, build_feature_cache

        if self._fed_from_store(stage):
            from tracker.training.store_clips import StoreClipDataset

            return StoreClipDataset(dataset, *self.stores(dataset.sequences))
        if not self.feature_cache:
            return dataset
        folder = self.out / "cache" / name
        if self.runtime.is_main:
            build_feature_cache(model, dataset, views=views, folder=folder, batch_size=self.settings.local_batch,
                                workers=self.workers, device=self.runtime.device, progress=self.progress,
                                description=f"{name} features")
        self.runtime.barrier()
        return FeatureCache.open(folder)

    def _train_local(self, stage: str, model: nn.Module, dataset, indices: SequenceOf[int]) -> None:
        """Train a local model on `dataset`; with early termination on, validated on fresh
        ground-truth-placed clips of the sequences `indices` (another seed)."""
        from tracker.training.local_trainer import train_local
        from tracker.training.samples import LocalClipDataset

        settings = self.settings
        data = self._cached(stage, stage, model, dataset, settings.local_views)
        validation = None
        if settings.local_loop.validate_every:
            clips = LocalClipDataset([self.sequences[i] for i in indices], settings.clip,
                                     seed=settings.seed + 1000 + len(stage), clips_per_sequence=1,
                                     boxes=[self.boxes()[i] for i in indices])
            validation = self._cached(stage, f"{stage}-validation", model, clips, 1)
        resume = self.out / "resume" / f"{stage}.pt"
        resume.parent.mkdir(parents=True, exist_ok=True)
        log = self._log(stage)
        train_local(model, data, settings.local_loop, self.runtime, batch_size=settings.local_batch,
                    workers=0 if self.feature_cache else self.workers, seed=settings.seed, log=log,
                    resume_path=resume, validation=validation, description=stage, progress=self.progress)
        log.close()
        if self.runtime.is_main:
            save_model_weights(self.output(stage), model, self.model_config, self._role(stage))
            resume.unlink(missing_ok=True)
            if not self.keep_cache:
                for folder in (stage, f"{stage}-validation"):
                    shutil.rmtree(self.out / "cache" / folder, ignore_errors=True)

    def _local_stage(self, half: int) -> None:
        from tracker.training.samples import LocalClipDataset

        indices = self.halves()[half - 1]
        torch.manual_seed(self.settings.seed + half)
        dataset = LocalClipDataset([self.sequences[i] for i in indices], self.settings.clip,
                                   seed=self.settings.seed + half,
                                   clips_per_sequence=self.settings.local_clips_per_sequence,
                                   boxes=[self.boxes()[i] for i in indices])
        self._train_local(f"local-{half}", self.initial_local_model(), dataset, indices)

    def stage_local_1(self) -> None:
        self._local_stage(1)

    def stage_local_2(self) -> None:
        self._local_stage(2)

    def _global_loss(self, dilation: DilationSchedule):
        from tracker.training.global_trainer import GlobalLossConfig

        s = self.settings
        return GlobalLossConfig(object_weight=s.object_weight, lam=s.global_lambda, first_frame=s.first_frame,
                                warmup=s.warmup, dilation=dilation)

    def _train_global(self, stage: str, model: nn.Module, dataset, loop: LoopConfig, dilation: DilationSchedule) -> None:
        from tracker.training.global_trainer import train_global

        resume = self.out / "resume" / f"{stage}.pt"
        resume.parent.mkdir(parents=True, exist_ok=True)
        log = self._log(stage)
        train_global(model, dataset, loop, self.runtime, batch_size=self.settings.global_batch,
                     seed=self.settings.seed, loss=self._global_loss(dilation), log=log, resume_path=resume,
                     description=stage, progress=self.progress)
        log.close()
        if self.runtime.is_main:
            save_model_weights(self.output(stage), model, self.model_config, self._role(stage))
            resume.unlink(missing_ok=True)
            self.check_global(stage, model)

    def check_global(self, stage: str, model: nn.Module) -> PlacementCheck:
        """Whether the stage's global model follows its input (`tracker.training.global_check`),
        on one ground-truth clip a sequence (another seed than training's); said, with a warning
        when it does not, and written to OUT/logs/<stage>-placement.json."""
        from tracker.training.global_check import check_placement
        from tracker.training.global_samples import GlobalClipDataset

        s = self.settings
        clips = GlobalClipDataset(self.maps(), s.global_frames, seed=s.seed + 2000)
        result = check_placement(model, clips, warmup=s.warmup, first_frame=s.first_frame,
                                 batch_size=s.global_batch, device=self.runtime.device)
        result.write(self.out / "logs" / f"{stage}-placement.json")
        self.say(f"[{stage}] {'' if result.follows_input else 'WARNING: '}the global model's {result.describe()}")
        return result

    def stage_global_gt(self) -> None:
        from tracker.training.global_samples import GlobalClipDataset

        torch.manual_seed(self.settings.seed + 3)
        dataset = GlobalClipDataset(self.maps(), self.settings.global_frames, seed=self.settings.seed,
                                    clips_per_sequence=self.settings.global_clips_per_sequence)
        self._train_global("global-gt", self.global_model(), dataset, self.settings.global_loop, self.settings.dilation)

    def _cross_track(self, global_stage: str, frames: int, seed: int, description: str):
        """Algorithm 1 with local model 1 on half 2 and local model 2 on half 1."""
        from tracker.training.tracked import choose_starts, track_clips
        from tracker.two_stage import TwoStageTracker

        runs = []
        half1, half2 = self.halves()
        pixels = [b.pixels for b in self.boxes()]
        for local_stage, indices in (("local-1", half2), ("local-2", half1)):
            local = self._load(local_stage, self.local_model())
            global_ = self._load(global_stage, self.global_model())
            tracker = TwoStageTracker(local, global_, device=self.runtime.device, warmup=self.settings.warmup)
            subset = [self.sequences[i] for i in indices]
            starts = choose_starts([pixels[i] for i in indices], frames, self.settings.track_clips_per_sequence,
                                   seed, self.settings.clip.min_object_pixels)
            runs += track_clips(tracker, subset, starts, frames, progress=self.progress,
                                description=f"{description} ({local_stage})")
        if not runs:
            raise ValueError(f"no training sequence has {frames + 1} frames to track")
        return runs

    def stage_track_predicted(self) -> None:
        from tracker.training.tracked import save_runs

        if self.runtime.is_main:
            runs = self._cross_track("global-gt", self.settings.global_frames, self.settings.seed + 5, "step 3")
            save_runs(self.output("track-predicted"), runs)

    def stage_global_predicted(self) -> None:
        from tracker.training.global_samples import GlobalClipDataset
        from tracker.training.tracked import load_runs

        index = {name: i for i, name in enumerate(self.names)}
        clips = [run.predicted_clip(index[run.name]) for run in load_runs(self.output("track-predicted"))]
        dataset = GlobalClipDataset(self.maps(), self.settings.global_frames, predicted=clips)
        model = self._load("global-gt", self.global_model())
        self._train_global("global-predicted", model, dataset, self.settings.global_update_loop,
                           DilationSchedule(start=1))

    def stage_track_rois(self) -> None:
        from tracker.training.tracked import save_runs

        if self.runtime.is_main:
            runs = self._cross_track("global-predicted", self.settings.clip.frames, self.settings.seed + 7, "step 5")
            save_runs(self.output("track-rois"), runs)

    def stage_local_final(self) -> None:
        from tracker.training.samples import LocalClipDataset
        from tracker.training.tracked import load_runs

        index = {name: i for i, name in enumerate(self.names)}
        clips = [run.tracked_clip(index[run.name]) for run in load_runs(self.output("track-rois"))]
        dataset = LocalClipDataset(self.sequences, self.settings.clip, seed=self.settings.seed + 9,
                                   tracked=clips, boxes=self.boxes())
        torch.manual_seed(self.settings.seed + 9)
        if self.settings.local_warm_start:  # local model 1 already started from local_init
            model = self._load("local-1", self.local_model())
        else:
            model = self.initial_local_model()
        self._train_local("local-final", model, dataset, range(len(self.sequences)))

    def stage_checkpoint(self) -> None:
        self.assemble("local-final", "global-predicted", "pixtrack train iterative")

    def assemble(self, local_stage: str, global_stage: str, trained_by: str) -> Path:
        """The two-stage checkpoint (`tracker.checkpoint.save_checkpoint`) of two stages' models."""
        from tracker.checkpoint import save_checkpoint

        path = self.output("checkpoint")
        if self.runtime.is_main:
            local = self._load(local_stage, self.local_model())
            global_ = self._load(global_stage, self.global_model())
            save_checkpoint(path, "two-stage", self.model_config, {"local": local, "global": global_},
                            extra_metadata={"trained_by": trained_by, "settings": self.settings.to_dict(),
                                            "sequences": sorted(self.names)}, half=self.half)
        return path

    # ------------------------------------------------------------------ single models

    def stage_local(self) -> None:
        """One local model on Sec. 3.3 clips of every training sequence (`pixtrack train local`)."""
        from tracker.training.samples import LocalClipDataset

        torch.manual_seed(self.settings.seed)
        dataset = LocalClipDataset(self.sequences, self.settings.clip, seed=self.settings.seed,
                                   clips_per_sequence=self.settings.local_clips_per_sequence, boxes=self.boxes())
        self._train_local("local", self.initial_local_model(), dataset, range(len(self.sequences)))

    def stage_global(self) -> None:
        """One global model on ground-truth maps of every training sequence (`pixtrack train global`)."""
        from tracker.training.global_samples import GlobalClipDataset

        torch.manual_seed(self.settings.seed)
        dataset = GlobalClipDataset(self.maps(), self.settings.global_frames, seed=self.settings.seed,
                                    clips_per_sequence=self.settings.global_clips_per_sequence)
        self._train_global("global", self.global_model(), dataset, self.settings.global_loop, self.settings.dilation)


ITERATIVE_STAGES: tuple[Stage, ...] = (
    Stage("split", "split.json", IterativeRun.stage_split),
    Stage("local-1", "local-1.safetensors", IterativeRun.stage_local_1, ("split",)),
    Stage("local-2", "local-2.safetensors", IterativeRun.stage_local_2, ("split",)),
    Stage("global-gt", "global-gt.safetensors", IterativeRun.stage_global_gt),
    Stage("track-predicted", "track-predicted.npz", IterativeRun.stage_track_predicted,
          ("split", "local-1", "local-2", "global-gt")),
    Stage("global-predicted", "global-predicted.safetensors", IterativeRun.stage_global_predicted,
          ("global-gt", "track-predicted")),
    Stage("track-rois", "track-rois.npz", IterativeRun.stage_track_rois,
          ("split", "local-1", "local-2", "global-predicted")),
    Stage("local-final", "local-final.safetensors", IterativeRun.stage_local_final, ("local-1", "track-rois")),
    Stage("checkpoint", "two-stage-{config}.safetensors", IterativeRun.stage_checkpoint,
          ("local-final", "global-predicted")),
)
"""Sec. 5.1 in order (the module docstring says what each does)."""
SINGLE_STAGES: tuple[Stage, ...] = (
    Stage("local", "local.safetensors", IterativeRun.stage_local),
    Stage("global", "global.safetensors", IterativeRun.stage_global),
)
"""`pixtrack train local` and `pixtrack train global`."""
STAGE_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in ITERATIVE_STAGES + SINGLE_STAGES}
STAGES: tuple[str, ...] = tuple(stage.name for stage in ITERATIVE_STAGES)
