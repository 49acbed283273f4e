"""One training set from any mix of VOT sequences folders, single sequence folders, DAVIS
roots and generated synthetic sequences (`--data DIR --data DIR --synthetic N`).

Synthetic training sequences use `tracker.data.synth`'s benchmark plan with their own seed
(default 1000, away from the evaluation benchmark's seeds) and are named `train-...`, so they
can never be mistaken for, or collide with, the sequences a tracker is evaluated on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tracker.data import DatasetError, Sequence, load_dataset, load_sequence

SYNTHETIC_SEED = 1000
SYNTHETIC_FRAMES = 48
SYNTHETIC_PREFIX = "train-"
SYNTHESIZE_FRAMES = 40  # tracker.data.video_synthesis.SynthesisConfig.frames
SYNTHESIZE_SEED = 0


def load_folder(path: str | os.PathLike) -> list[Sequence]:
    """A VOT sequences folder or DAVIS root (`load_dataset`), or one sequence folder."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"training data folder {path} does not exist")
    if (path / "sequence").is_file() or (path / "groundtruth.txt").is_file():
        return [load_sequence(path)]
    return load_dataset(path)


def synthetic_sequences(count: int, frames: int = SYNTHETIC_FRAMES, seed: int = SYNTHETIC_SEED,
                        folder: str | os.PathLike | None = None) -> list[Sequence]:
    """`count` generated sequences; in memory, or written once as VOT sequences into `folder`
    (sequences already there are reused, so a resumed run does not regenerate them)."""
    if count <= 0:
        return []
    from tracker.data.synth import benchmark_plan, generate_sequence

    plan = [(SYNTHETIC_PREFIX + name, size, scenario, s) for name, size, scenario, s in benchmark_plan(count, seed)]
    if folder is None:
        return [generate_sequence(s, frames, w, h, name=name, **scenario) for name, (w, h), scenario, s in plan]
    from tracker.data import write_vot_list, write_vot_sequence

    folder = Path(folder)
    for name, (width, height), scenario, sequence_seed in plan:
        if not (folder / name / "sequence").is_file():
            sequence = generate_sequence(sequence_seed, frames, width, height, name=name, **scenario)
            write_vot_sequence(folder, sequence, overwrite=True)
    write_vot_list(folder, [name for name, *_ in plan])
    return load_dataset(folder)


def training_sequences(
    data: Iterable[str | os.PathLike] = (),
    *,
    synthetic: int = 0,
    synthetic_frames: int = SYNTHETIC_FRAMES,
    synthetic_seed: int = SYNTHETIC_SEED,
    synthetic_folder: str | os.PathLike | None = None,
    exclude: Iterable[str] = (),
    synthesize: int = 0,
    synthesize_frames: int = SYNTHESIZE_FRAMES,
    synthesize_seed: int = SYNTHESIZE_SEED,
) -> list[Sequence]:
    """Every sequence of every `data` folder plus `synthetic` generated ones, less `exclude`
    (e.g. a fold's test sequences), plus `synthesize` clips synthesised from the annotated
    frames of the `data` sequences kept (`tracker.data.video_synthesis`: never from excluded
    ones). Names must be unique across the mix."""
    sequences: list[Sequence] = []
    origin: dict[str, str] = {}
    for folder in data:
        for sequence in load_folder(folder):
            if sequence.name in origin:
                raise DatasetError(Path(folder), f"sequence name {sequence.name!r} also comes from {origin[sequence.name]}; "
                                   "names must be unique across --data folders")
            origin[sequence.name] = str(folder)
            sequences.append(sequence)
    for sequence in synthetic_sequences(synthetic, synthetic_frames, synthetic_seed, synthetic_folder):
        if sequence.name in origin:
            raise ValueError(f"synthetic sequence name {sequence.name!r} also comes from {origin[sequence.name]}")
        origin[sequence.name] = "synthetic"
        sequences.append(sequence)
    excluded = set(exclude)
    kept = [s for s in sequences if s.name not in excluded]
    if not kept:
        raise ValueError("no training sequences (give --data folders or --synthetic N)")
    if synthesize:
        from tracker.data.video_synthesis import SynthesisConfig, synthesize_sequences

        sources = [s for s in kept if origin[s.name] != "synthetic"]
        if not sources:
            raise ValueError("--synthesize makes clips from the --data sequences, and none is left")
        for clip in synthesize_sequences(sources, synthesize, SynthesisConfig(frames=synthesize_frames),
                                         seed=synthesize_seed):
            if clip.name in origin:
                raise ValueError(f"synthesised clip name {clip.name!r} also comes from {origin[clip.name]}")
            kept.append(clip)
    return kept
