"""k-fold cross-validation splits of a dataset's sequences (paper Sec. 3.3: 10 folds), as one
JSON file that training (`pixtrack train ... --folds F --fold I`) and evaluation both read.

Format (version 1):

    {"format": "pixtrack-folds", "version": 1, "k": 10, "seed": 0,
     "dataset": "<path given when made>", "sequences": [all names, sorted],
     "folds": [{"index": 0, "test": [...], "train": [...]}, ...]}

Each sequence is in exactly one fold's `test`; `train` is every other sequence. Names are
sorted before a seeded shuffle, so the split depends on the names and the seed only (not on
listing order); fold sizes differ by at most one.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FORMAT = "pixtrack-folds"
VERSION = 1
PAPER_FOLDS = 10


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class FoldSplit:
    k: int
    seed: int
    sequences: tuple[str, ...]
    folds: tuple[Fold, ...]
    dataset: str = ""

    def fold(self, index: int) -> Fold:
        if not 0 <= index < self.k:
            raise ValueError(f"fold {index} does not exist: the split has folds 0..{self.k - 1}")
        return self.folds[index]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "k": self.k, "seed": self.seed, "dataset": self.dataset,
            "sequences": list(self.sequences),
            "folds": [{"index": f.index, "test": list(f.test), "train": list(f.train)} for f in self.folds],
        }


def make_folds(names: Iterable[str], k: int = PAPER_FOLDS, seed: int = 0, dataset: str = "") -> FoldSplit:
    """Split `names` into `k` folds: shuffle (seeded), then deal them out round-robin."""
    names = sorted(set(names))
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2, got {k}")
    if len(names) < k:
        raise ValueError(f"{len(names)} sequences cannot fill {k} folds (each fold needs a test sequence)")
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    tests = [sorted(shuffled[i::k]) for i in range(k)]
    folds = tuple(
        Fold(i, tuple(n for n in names if n not in set(test)), tuple(test)) for i, test in enumerate(tests)
    )
    return FoldSplit(k, seed, tuple(names), folds, dataset)


def write_folds(path: str | os.PathLike, split: FoldSplit) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.to_dict(), indent=1) + "\n", encoding="utf-8")
    return path


def read_folds(path: str | os.PathLike) -> FoldSplit:
    """A folds file, checked: every sequence in exactly one test set, train = the rest."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no folds file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{path} is not a {FORMAT} file of version {VERSION}")
    try:
        sequences = tuple(data["sequences"])
        folds = tuple(Fold(int(f["index"]), tuple(f["train"]), tuple(f["test"])) for f in data["folds"])
        split = FoldSplit(int(data["k"]), int(data["seed"]), sequences, folds, str(data.get("dataset", "")))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: malformed folds file ({error})") from error
    everything = set(sequences)
    tested = [n for f in folds for n in f.test]
    if len(folds) != split.k or [f.index for f in folds] != list(range(split.k)):
        raise ValueError(f"{path}: expected folds 0..{split.k - 1}, found {[f.index for f in folds]}")
    if sorted(tested) != sorted(everything):
        raise ValueError(f"{path}: the test sets do not cover every sequence exactly once")
    for fold in folds:
        if set(fold.train) != everything - set(fold.test):
            raise ValueError(f"{path}: fold {fold.index}'s train set is not the other folds' test sequences")
    return split
