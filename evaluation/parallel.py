"""Spreading an evaluation's runs: over worker processes on one machine (`--workers N`) and
over machines that share a folder (`--shard I/N`, a job array). Every run is independent per
(tracker, checkpoint, sequence, frames, protocol) and the run cache is keyed that way, so the
pool and the shards only fill the cache (`fill_cache`); the tables are then read from it by
the same code that reads one process's runs, and come out byte for byte the same.

    requests = length_requests(specs, sequences, TRACKING, lengths)   # evaluation.protocols
    report = fill_cache(requests, specs, sequences, cache, dataset, Spread(workers=2))

Workers are spawned (not forked: torch's thread pools do not survive a fork), each with
`threads` torch threads (cores / workers by default) and its own device (`devices`, round
robin; else the one given). A run that fails is reported by name after the others finish;
what finished stays in the cache.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.metrics import PixelROC
from evaluation.results_cache import RunCache
from evaluation.running import RunRequest, SequenceLike, TrackerSpec, cached_run, run_key
from tracker.console import CommandFailed

SHOWN = 12
"""Runs named at most in a message (the rest are counted)."""


@dataclass(frozen=True)
class Spread:
    """How an evaluation's runs are spread (`--workers`, `--threads`, `--devices`, `--shard`, `--cache-only`)."""

    workers: int = 1
    threads: int | None = None
    """Torch threads of each worker; None: the machine's cores / workers (at least 1)."""
    devices: tuple[str, ...] = ()
    """One device a worker, round robin (e.g. cuda:0 cuda:1); empty: the evaluation's device."""
    shard: tuple[int, int] | None = None
    """(I, N): only the I-th of N deterministic parts of the runs (0 <= I < N)."""
    cache_only: bool = False
    """Track nothing: every run must be in the cache already (the merge after the shards)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {self.threads}")
        if self.shard is not None:
            index, count = self.shard
            if count < 1 or not 0 <= index < count:
                raise ValueError(f"--shard {index}/{count}: want I/N with 0 <= I < N")
        if self.shard is not None and self.cache_only:
            raise ValueError("--shard fills the cache and --cache-only reads it: give one")

    @property
    def spreads(self) -> bool:
        """Whether the runs are filled ahead of the tables (else the tables track them as they go)."""
        return self.workers > 1 or self.shard is not None or self.cache_only

    def worker_threads(self) -> int:
        if self.threads is not None:
            return self.threads
        return max(1, available_cores() // self.workers)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_shard(text: str) -> tuple[int, int]:
    """`"I/N"` -> (I, N), as `--shard` takes it (SLURM: `--shard $SLURM_ARRAY_TASK_ID/N`)."""
    index, separator, count = text.partition("/")
    try:
        if not separator:
            raise ValueError
        shard = int(index), int(count)
    except ValueError:
        raise ValueError(f"--shard {text!r}: want I/N, e.g. 0/4") from None
    Spread(shard=shard)  # the range check
    return shard


def shard_of(requests: Seq[RunRequest], index: int, count: int) -> list[RunRequest]:
    """The `index`-th of `count` parts of `requests`: every count-th run in an order that depends
    only on the runs themselves (not on the order they were planned in), so N machines given
    the same command split the same list. Each run lies in exactly one part."""
    ordered = sorted(set(requests), key=lambda r: (r.tracker, r.sequence, r.protocol, len(r.indices), r.indices, r.roc or ()))
    return ordered[index::count]


@dataclass
class FillReport:
    """What `fill_cache` did: runs planned (this shard's), found cached, tracked, failed."""

    planned: int = 0
    cached: int = 0
    tracked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """run label -> what went wrong."""

    def summary(self) -> str:
        text = f"{self.planned} runs: {self.cached} cached, {len(self.tracked)} tracked"
        return text + (f", {len(self.failed)} failed" if self.failed else "")


def fill_cache(
    requests: Seq[RunRequest],
    specs: Seq[TrackerSpec],
    sequences: Seq[SequenceLike],
    cache: RunCache,
    dataset: str,
    spread: Spread,
    device: str | None = None,
    progress: bool = True,
    refresh: bool = False,
) -> FillReport:
    """Track every run of `requests` (of this shard) that the cache lacks, `spread.workers` at a
    time, into `cache`. Raises `CommandFailed` naming the runs that failed (or, with
    `cache_only`, the runs that are missing) once every other run is done."""
    if cache.root is None:
        raise ValueError("spreading runs needs the run cache: drop --no-cache")
    by_spec = {spec.name: spec for spec in specs}
    by_sequence = {sequence.name: sequence for sequence in sequences}
    unknown = sorted({r.tracker for r in requests} - set(by_spec)) + sorted({r.sequence for r in requests} - set(by_sequence))
    if unknown:
        raise ValueError(f"runs of unknown trackers or sequences: {', '.join(unknown)}")
    if spread.shard is not None:
        requests = shard_of(requests, *spread.shard)
    else:
        requests = list(dict.fromkeys(requests))
    report = FillReport(planned=len(requests))
    missing = [r for r in requests if refresh or not _is_cached(r, by_spec, cache, dataset)]
    report.cached = len(requests) - len(missing)
    if spread.cache_only and missing:
        raise CommandFailed(f"{len(missing)} of {len(requests)} runs are not in the cache {cache.root} "
                            f"(run the shards first, or drop --cache-only): {_names([r.label for r in missing])}")
    workers = min(spread.workers, len(missing))
    if workers > 1 and not _picklable(specs):
        print(f"note: the trackers cannot be sent to worker processes; tracking {len(missing)} runs in this one",
              file=sys.stderr)
        workers = 1
    bar = tqdm(total=len(missing), desc=f"runs ({workers} worker{'s' if workers != 1 else ''})", unit="run",
               disable=not progress or not missing)
    if workers <= 1:
        for request in missing:
            _record(report, request, _track(request, by_spec, by_sequence, cache, dataset, device, refresh))
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        for number in range(workers):
            queue.put(spread.devices[number % len(spread.devices)] if spread.devices else device)
        initargs = (list(specs), list(sequences), str(cache.root), dataset, spread.worker_threads(), queue, refresh,
                    os.getpid())
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=initargs) as pool:
            futures = {pool.submit(_worker_track, request): request for request in missing}
            for future in as_completed(futures):
                try:
                    error = future.result()
                except Exception as crash:  # the worker process itself died (BrokenProcessPool)
                    error = f"worker process failed: {type(crash).__name__}: {crash}"
                _record(report, futures[future], error)
                bar.update()
    bar.close()
    if report.failed:
        details = "; ".join(f"{label}: {error}" for label, error in list(report.failed.items())[:SHOWN])
        raise CommandFailed(f"{len(report.failed)} of {len(missing)} runs failed ({report.summary()}; the others are "
                            f"in the cache {cache.root}): {details}")
    return report


def _names(labels: Seq[str]) -> str:
    shown = ", ".join(labels[:SHOWN])
    return shown + (f" and {len(labels) - SHOWN} more" if len(labels) > SHOWN else "")


def _is_cached(request: RunRequest, specs: Mapping[str, TrackerSpec], cache: RunCache, dataset: str) -> bool:
    key = run_key(specs[request.tracker], request.sequence, request.protocol, dataset)
    return cache.load(key, np.asarray(request.indices, dtype=np.int64), with_roc=request.roc is not None) is not None


def _picklable(specs: Seq[TrackerSpec]) -> bool:
    try:
        pickle.dumps(list(specs))
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


def _record(report: FillReport, request: RunRequest, error: str | None) -> None:
    if error is None:
        report.tracked.append(request.label)
    else:
        report.failed[request.label] = error


def _track(request: RunRequest, specs: Mapping[str, TrackerSpec], sequences: Mapping[str, SequenceLike],
           cache: RunCache, dataset: str, device: str | None, refresh: bool) -> str | None:
    """Track one run into the cache; what went wrong, or None."""
    roc = None if request.roc is None else PixelROC(request.roc[0], spacing=request.roc[1], device=device or "cpu")
    try:
        cached_run(specs[request.tracker], sequences[request.sequence], np.asarray(request.indices, dtype=np.int64),
                   request.protocol, cache, dataset, roc=roc, device=device, refresh=refresh)
    except Exception as error:  # one bad run must not take the others down
        return f"{type(error).__name__}: {error}"
    return None


_WORKER: dict[str, object] = {}
"""A worker process's trackers, sequences, cache and device (set once by `_start_worker`)."""


def _start_worker(specs: list[TrackerSpec], sequences: list[SequenceLike], cache_root: str, dataset: str,
                  threads: int, devices, refresh: bool, parent: int) -> None:
    exit_with_parent(parent)
    torch.set_num_threads(threads)
    _WORKER.update(specs={spec.name: spec for spec in specs}, sequences={s.name: s for s in sequences},
                   cache=RunCache(Path(cache_root)), dataset=dataset, device=devices.get(), refresh=refresh)


def exit_with_parent(parent: int, every: float = 2.0) -> None:
    """End this worker process once `parent` (the process id of the command that started it) is
    gone, even before this runs. A command killed by a signal (SIGTERM, SIGKILL) shuts no pool
    down, and its workers would go on tracking the runs already handed to them, for nobody, on
    cores a new command needs; the runs they finished are in the cache either way."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_track(request: RunRequest) -> str | None:
    w = _WORKER
    return _track(request, w["specs"], w["sequences"], w["cache"], w["dataset"], w["device"], w["refresh"])


def spread_arguments(parser, prefix: str = "") -> None:
    """`--workers`, `--threads`, `--devices`, `--shard`, `--cache-only`: one group for the tables,
    the ablations and the cross-validation alike. `prefix` ("eval-") where a command's own
    `--workers` / `--threads` mean something else (the ablations' training)."""
    group = parser.add_argument_group("spreading the runs (docs/evaluation.md)")
    group.add_argument(f"--{prefix}workers", type=int, default=1, metavar="N",
                       help="track N runs at a time, in worker processes (default 1: in this one)")
    group.add_argument(f"--{prefix}threads", type=int, default=None, metavar="T",
                       help="torch threads of each worker, and of this process where it tracks (default: the "
                            "cores / N; closed-loop trackers' scores move with the thread count)")
    group.add_argument(f"--{prefix}devices", nargs="+", default=[], metavar="DEVICE",
                       help="one device a worker, round robin (e.g. cuda:0 cuda:1; default: --device)")
    group.add_argument(f"--{prefix}shard", type=parse_shard, default=None, metavar="I/N",
                       help="track only the I-th of N parts of the runs into the cache (0 <= I < N) and stop; "
                            "a last call without it writes the tables")
    group.add_argument(f"--{prefix}cache-only", action="store_true",
                       help="track nothing: read every run from the cache, naming those missing")


def spread_from(args, prefix: str = "") -> Spread:
    """The `Spread` of the options `spread_arguments(parser, prefix)` added."""
    field_prefix = prefix.replace("-", "_")
    value = lambda name: getattr(args, field_prefix + name)  # noqa: E731
    return Spread(workers=value("workers"), threads=value("threads"), devices=tuple(value("devices")),
                  shard=value("shard"), cache_only=value("cache_only"))
