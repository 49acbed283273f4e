"""Which evaluated sequences a checkpoint was trained on.

The shipped checkpoints are trained on all 30 DAVIS-2016 training sequences, so a "held-out"
table of a fold scored with them would measure training fit. Every training command records
its sequences in the checkpoint's metadata (`sequences` for two-stage checkpoints, `trained_on`
for the FCN's); the evaluation commands read them back and warn, naming the sequences, before
they track anything. A warning rather than an error: measuring the fit on the training set is
a legitimate question, it just must not pass for a held-out score.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence as Seq
from pathlib import Path
from typing import Any

TRAINING_KEYS = ("sequences", "trained_on")
"""Metadata keys that list a checkpoint's training sequences (two-stage, FCN)."""


def training_names(path: str | os.PathLike | None) -> frozenset[str]:
    """The sequences a checkpoint file was trained on; empty where it records none or cannot be read."""
    if path is None or not Path(path).is_file():
        return frozenset()
    from tracker.checkpoint import read_metadata

    try:
        metadata = read_metadata(path)
    except (OSError, ValueError):
        return frozenset()
    names: set[str] = set()
    for key in TRAINING_KEYS:
        try:
            value = json.loads(metadata.get(key, "[]"))
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            names.update(str(name) for name in value)
    return frozenset(names)


def checkpoint_file(spec: Any, sequence: str) -> Path | None:
    """The file `spec` loads for `sequence`: its own checkpoint, or its registered tracker's
    shipped one where it names none (None for trackers without weights)."""
    path = spec.checkpoint_for(sequence)
    if path is not None:
        return Path(path)
    name = getattr(spec.factory, "name", None)
    if name is None:
        return None
    from tracker.registry import known_names, shipped_checkpoint

    return shipped_checkpoint(name) if name in known_names() else None  # aliases too


def seen_sequences(spec: Any, sequences: Iterable[str]) -> list[str]:
    """The names among `sequences` that the checkpoint `spec` tracks them with was trained on."""
    names_by_file: dict[Path | None, frozenset[str]] = {}
    seen = []
    for sequence in sequences:
        path = checkpoint_file(spec, sequence)
        if path not in names_by_file:
            names_by_file[path] = training_names(path)
        if sequence in names_by_file[path]:
            seen.append(sequence)
    return seen


def training_set_warnings(specs: Seq[Any], sequences: Seq[Any]) -> list[str]:
    """One line per tracker whose checkpoint saw some of the evaluated sequences in training."""
    names = [getattr(sequence, "name", str(sequence)) for sequence in sequences]
    lines = []
    for spec in specs:
        seen = seen_sequences(spec, names)
        if seen:
            lines.append(
                f"warning: {spec.name}: {len(seen)} of the {len(names)} evaluated sequences are in its checkpoint's "
                f"training set ({', '.join(seen)}): its scores there are training fit, not held-out accuracy"
            )
    return lines


def warn_training_set(specs: Seq[Any], sequences: Seq[Any], caption: str = "") -> str:
    """`training_set_warnings` printed to stderr; returns `caption` with them appended, so
    that the table carries them too."""
    lines = training_set_warnings(specs, sequences)
    for line in lines:
        print(line, file=sys.stderr)
    return "; ".join([caption, *lines]) if caption else "; ".join(lines)
