"""Tracker runs kept on disk, so that tables and plots re-read them instead of re-tracking.

A `Run` is what one tracker produced on one sequence under one protocol: the frame index
of every step (step 0 is the initial frame), the probability map of every later step
quantised to uint8 (p ~ q / 255, at most 1/510 off, so binarising at 0.4 or 0.7 can differ
from the float map only for pixels within 0.002 of the threshold), the ROIs fed from
outside (Table 2), and optionally the ROC histogram taken from the float maps while
tracking (exact, unlike a ROC of quantised maps).

`RunCache` stores one compressed .npz per run under

    <root>/<tracker>/<checkpoint id>/<settings id>/<dataset id>/<protocol>/<sequence>/<T>-<indices hash>.npz

written atomically as soon as a run ends: a crash midway loses only the run in progress.
Trackers are causal, so a stored run also answers every request whose frame indices are a
prefix of its own (a 160-frame run gives the 20-, 40- and 80-frame columns of a long
sequence).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import uuid
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


def quantise(prob: np.ndarray) -> np.ndarray:
    """Probability map(s) in [0, 1] -> uint8 q = round(255 p)."""
    return np.rint(np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def dequantise(levels: np.ndarray) -> np.ndarray:
    """uint8 levels -> float32 probabilities q / 255."""
    return np.asarray(levels, dtype=np.float32) / np.float32(255.0)


@dataclass
class Run:
    """One tracker's output on one sequence under one protocol.

    `indices[k]` is the source frame tracked at step k (k = 0 the initial frame);
    `probs[k - 1]` is the quantised map of step k; `rois[k]` the box (cx, cy, side) fed at
    step k (row 0: the initial ROI) where the protocol feeds ROIs. `roc_counts` is the
    pixel ROC histogram (`metrics.PixelROC.counts`) over steps 1..T, where it was asked for.
    """

    sequence: str
    protocol: str
    indices: np.ndarray
    probs: np.ndarray
    rois: np.ndarray | None = None
    roc_counts: np.ndarray | None = None
    roc_spacing: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        if self.indices.ndim != 1 or self.indices.size < 2:
            raise ValueError(f"run of {self.sequence!r}: indices must list the initial frame and at least one step")
        if self.probs.dtype != np.uint8 or self.probs.ndim != 3 or self.probs.shape[0] != self.indices.size - 1:
            raise ValueError(
                f"run of {self.sequence!r}: probs must be uint8 [T, H, W] with T = {self.indices.size - 1}, "
                f"got {self.probs.dtype} {self.probs.shape}"
            )

    @property
    def steps(self) -> int:
        """T, the number of tracked frames after the initial one."""
        return int(self.indices.size - 1)

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.probs.shape[1]), int(self.probs.shape[2])

    def prob(self, step: int) -> np.ndarray:
        """Float32 probability map of step 1..T."""
        if not 1 <= step <= self.steps:
            raise IndexError(f"run of {self.sequence!r} has steps 1..{self.steps}; no step {step}")
        return dequantise(self.probs[step - 1])

    def prefix(self, steps: int) -> Run:
        """The first `steps` steps: what a shorter run on the same frames would hold (not its
        ROC histogram, which covers the whole run)."""
        if not 1 <= steps <= self.steps:
            raise ValueError(f"run of {self.sequence!r} has {self.steps} steps; cannot take {steps}")
        if steps == self.steps:
            return self
        rois = None if self.rois is None else self.rois[: steps + 1]
        return Run(self.sequence, self.protocol, self.indices[: steps + 1], self.probs[:steps], rois, meta=dict(self.meta))


@dataclass(frozen=True)
class RunKey:
    """What a run depends on besides its frame indices."""

    tracker: str
    checkpoint: str
    dataset: str
    protocol: str
    sequence: str
    settings: str = "default"
    """The tracker's settings besides its weights (`settings_id`): a run of other settings is another run."""


def settings_id(settings: dict | None) -> str:
    """A short, stable name for a tracker's settings (`settings()` of the tracker: what changes
    its maps besides its weights); "default" for a tracker that declares none."""
    if not settings:
        return "default"
    text = json.dumps(settings, sort_keys=True, default=str)
    return "settings-" + hashlib.sha1(text.encode()).hexdigest()[:10]


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _safe(part: str) -> str:
    """A path component from any name (names stay readable; odd characters become '_')."""
    cleaned = _UNSAFE.sub("_", str(part)).strip(".") or "_"
    return cleaned if cleaned == str(part) else f"{cleaned}-{hashlib.sha1(str(part).encode()).hexdigest()[:6]}"


def indices_digest(indices: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:12]


_checkpoint_ids: dict[tuple[str, int, int], str] = {}


def checkpoint_id(checkpoint: str | os.PathLike | None) -> str:
    """A short content hash of a checkpoint file. Re-training into the same path changes
    the id, so stale runs are never re-used; hashes are remembered per (path, size, mtime).

    None (a tracker's shipped weights, or none at all) -> "default-<hash of every shipped
    checkpoint>": re-training any shipped checkpoint retires every default run, which is
    safe without knowing which file a tracker loads.
    """
    if checkpoint is None:
        from tracker.checkpoint import CHECKPOINT_DIR

        shipped = sorted(Path(CHECKPOINT_DIR).glob("*.safetensors")) if Path(CHECKPOINT_DIR).is_dir() else []
        combined = hashlib.sha1("".join(checkpoint_id(path) for path in shipped).encode()).hexdigest()[:8]
        return f"default-{combined}"
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _checkpoint_ids:
        _checkpoint_ids[key] = f"{_safe(path.stem)}-{_content_digest(path)[:12]}"
    return _checkpoint_ids[key]


def _content_digest(path: Path) -> str:
    """SHA-256 of a checkpoint's content. A safetensors file's JSON header is hashed with its
    keys sorted: safetensors writes the metadata in a different order in every process, so the
    same model saved twice (an ablation assembling its rows again) would otherwise get two
    ids and retire its runs. Any other file: its bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        header = _safetensors_header(handle)
        if header is not None:
            digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
        else:
            handle.seek(0)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safetensors_header(handle) -> dict | None:
    """The parsed header of a safetensors file (its first 8 bytes give the header's length),
    leaving `handle` at the tensor data; None where the file is not one."""
    size = handle.read(8)
    if len(size) < 8:
        return None
    length = int.from_bytes(size, "little")
    if not 2 <= length <= 100_000_000:
        return None
    try:
        header = json.loads(handle.read(length))
    except (ValueError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) else None


def dataset_id(root: str | os.PathLike) -> str:
    """Name of a dataset folder plus a hash of its absolute path: two datasets with a
    sequence of the same name never share runs."""
    path = Path(root).resolve()
    return f"{_safe(path.name)}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


class RunCache:
    """Runs on disk (see the module docstring); `root=None` keeps nothing."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root)

    def folder(self, key: RunKey) -> Path:
        if self.root is None:
            raise ValueError("this cache keeps nothing (root=None)")
        parts = (key.tracker, key.checkpoint, key.settings, key.dataset, key.protocol, key.sequence)
        return self.root.joinpath(*(_safe(part) for part in parts))

    def load(self, key: RunKey, indices: np.ndarray, with_roc: bool = False) -> Run | None:
        """A stored run whose frame indices start with `indices`, cut to their length; None
        when there is none. `with_roc`: only a run of exactly these indices with its ROC
        histogram will do (a prefix's histogram is not known)."""
        if self.root is None:
            return None
        folder = self.folder(key)
        if not folder.is_dir():
            return None
        wanted = np.asarray(indices, dtype=np.int64)
        steps = wanted.size - 1
        # The file of exactly these indices first; then longer runs that may start with them.
        exact = folder / f"{steps}-{indices_digest(wanted)}.npz"
        candidates = [exact] if exact.is_file() else []
        if not with_roc:
            longer = []
            for path in folder.glob("*.npz"):
                match = re.fullmatch(r"(\d+)-[0-9a-f]+", path.stem)
                if match and int(match.group(1)) > steps:
                    longer.append((int(match.group(1)), path.name, path))
            candidates += [path for _, _, path in sorted(longer)]  # shortest first: cheapest to read
        for path in candidates:
            try:
                with np.load(path, allow_pickle=False) as data:
                    stored = data["indices"]
                    if stored.size < wanted.size or not np.array_equal(stored[: wanted.size], wanted):
                        continue
                    if with_roc and "roc_counts" not in data.files:
                        continue
                    run = _run_from_npz(data, key)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
                # A damaged file (e.g. the disk filled up): tell, then track again.
                warnings.warn(f"ignoring unreadable cached run {path}: {error}", stacklevel=2)
                continue
            return run.prefix(steps)
        return None

    def save(self, key: RunKey, run: Run) -> Path | None:
        """Write `run` atomically; returns its path (None for a cache that keeps nothing)."""
        if self.root is None:
            return None
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run.steps}-{indices_digest(run.indices)}.npz"
        arrays: dict[str, np.ndarray] = {"indices": run.indices, "probs": run.probs}
        if run.rois is not None:
            arrays["rois"] = np.asarray(run.rois, dtype=np.float64)
        if run.roc_counts is not None:
            arrays["roc_counts"] = np.asarray(run.roc_counts, dtype=np.int64)
        meta = {
            "format_version": FORMAT_VERSION,
            "tracker": key.tracker,
            "checkpoint": key.checkpoint,
            "settings": key.settings,
            "dataset": key.dataset,
            "protocol": key.protocol,
            "sequence": key.sequence,
            "roc_spacing": run.roc_spacing,
            **run.meta,
        }
        arrays["meta"] = np.array(json.dumps(meta))
        # A name no other writer uses (processes of this machine, and of others sharing the folder):
        # each writes its own file, and the rename makes one whole file the run, whoever wins.
        temporary = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(temporary, path)
        return path


def _run_from_npz(data, key: RunKey) -> Run:
    meta = json.loads(str(data["meta"]))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    return Run(
        sequence=key.sequence,
        protocol=key.protocol,
        indices=data["indices"],
        probs=data["probs"],
        rois=data["rois"] if "rois" in data.files else None,
        roc_counts=data["roc_counts"] if "roc_counts" in data.files else None,
        roc_spacing=meta.get("roc_spacing"),
        meta={k: v for k, v in meta.items() if k not in ("format_version", "roc_spacing")},
    )
