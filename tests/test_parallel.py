"""Spreading an evaluation (`evaluation.parallel`): a worker pool and shards give byte for byte
the tables of one process; a failing run is named and the others finish; two processes
writing one cache leave one whole file a run; shards split deterministically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.parallel import Spread, fill_cache, parse_shard, shard_of
from evaluation.protocols import TRACKING, length_requests
from evaluation.results_cache import RunCache
from evaluation.running import RunRequest, TrackerSpec
from evaluation.tables import main as tables
from tracker.console import CommandFailed
from tracker.data import load_dataset
from tracker.data.synth import generate_benchmark
from stand_ins import FirstMaskFactory

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parallel") / "sequences"
    generate_benchmark(folder, sequences=4, frames=12, seed=0)
    return folder


def table_command(dataset: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return ["--dataset", str(dataset), "--trackers", "pixtrack-static", "--tables", "2", "3", "--lengths", "4", "8",
            "--cache", str(cache), "--out", str(out), "--no-progress", "--no-ci", *extra]


def written(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.glob("*.csv"))}


def test_a_pool_and_two_shards_write_the_tables_of_one_process(dataset, tmp_path, capsys):
    assert tables(table_command(dataset, tmp_path / "c1", tmp_path / "one")) == 0
    capsys.readouterr()
    assert tables(table_command(dataset, tmp_path / "c2", tmp_path / "pool", "--workers", "2", "--threads", "1")) == 0
    assert "8 runs: 0 cached, 8 tracked" in capsys.readouterr().err  # by the workers, before the tables read them
    for index in (0, 1):
        assert tables(table_command(dataset, tmp_path / "c3", tmp_path / "shard", "--shard", f"{index}/2")) == 0
    assert not (tmp_path / "shard").exists()  # a shard writes runs, not tables
    assert tables(table_command(dataset, tmp_path / "c3", tmp_path / "merged", "--cache-only")) == 0
    one = written(tmp_path / "one")
    assert set(one) == {"table2.csv", "table3.csv", "table2_per_sequence.csv", "table3_per_sequence.csv"}
    assert written(tmp_path / "pool") == one
    assert written(tmp_path / "merged") == one
    runs = lambda cache: sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.npz"))  # noqa: E731
    assert runs(tmp_path / "c2") == runs(tmp_path / "c3") == runs(tmp_path / "c1")
    assert len(runs(tmp_path / "c1")) == 2 * 4  # two protocols, four sequences, one run serving both lengths


def test_the_merge_names_the_runs_no_shard_made(dataset, tmp_path, capsys):
    assert tables(table_command(dataset, tmp_path / "c", tmp_path / "shard", "--shard", "0/2")) == 0
    capsys.readouterr()
    assert tables(table_command(dataset, tmp_path / "c", tmp_path / "merged", "--cache-only")) == 1
    error = capsys.readouterr().err
    assert "4 of 8 runs are not in the cache" in error and "pixtrack-static on synth" in error
    assert not (tmp_path / "merged").exists()


def crashing_on(sequence: str, sequences, folder: Path) -> list[TrackerSpec]:
    """The stand-in tracker with one checkpoint a sequence: `sequence`'s makes it fail."""
    for name in ("ok.ckpt", "crash.ckpt"):
        (folder / name).write_text(name)
    checkpoints = {s.name: str(folder / ("crash.ckpt" if s.name == sequence else "ok.ckpt")) for s in sequences}
    return [TrackerSpec("first-mask", FirstMaskFactory(), checkpoints)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_is_named_and_the_others_finish(dataset, tmp_path, workers):
    sequences = load_dataset(dataset)
    trackers = crashing_on("synth01-occlude", sequences, tmp_path)
    cache = RunCache(tmp_path / "cache")
    requests = length_requests(trackers, sequences, TRACKING, [8])
    with pytest.raises(CommandFailed, match=r"1 of 4 runs failed .*first-mask on synth01-occlude .*"
                                            r"RuntimeError: stand-in tracker crashed"):
        fill_cache(requests, trackers, sequences, cache, "d", Spread(workers=workers, threads=1), progress=False)
    stored = sorted(path.parts[-2] for path in (tmp_path / "cache").rglob("*.npz"))
    assert stored == sorted(s.name for s in sequences if s.name != "synth01-occlude")


def test_two_processes_writing_one_cache_leave_one_whole_run_each(dataset, tmp_path):
    command = [sys.executable, "-m", "evaluation.tables",
               *table_command(dataset, tmp_path / "cache", tmp_path / "out", "--refresh")]
    first = subprocess.Popen([*command[:-1], "--out", str(tmp_path / "a")], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([*command[:-1], "--out", str(tmp_path / "b")], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    for process in (first, second):
        _, error = process.communicate(timeout=600)
        assert process.returncode == 0, error
    cache = tmp_path / "cache"
    assert not [path for path in cache.rglob("*") if path.name.endswith(".tmp")]
    assert len(list(cache.rglob("*.npz"))) == 8
    assert written(tmp_path / "a") == written(tmp_path / "b")
    assert tables(table_command(dataset, cache, tmp_path / "read", "--cache-only")) == 0
    assert written(tmp_path / "read") == written(tmp_path / "a")


def request(tracker: str, sequence: str, steps: int) -> RunRequest:
    return RunRequest(tracker, sequence, TRACKING, tuple(range(steps + 1)))


def test_shards_split_every_run_into_exactly_one_part_whatever_the_planned_order():
    runs = [request(t, f"s{i}", n) for t in ("a", "b") for i in range(5) for n in (4, 8)]
    parts = [shard_of(runs, index, 3) for index in range(3)]
    together = [r for part in parts for r in part]
    assert len(together) == len(set(together)) == len(runs) and set(together) == set(runs)
    assert [len(part) for part in parts] == [7, 7, 6]
    shuffled = [runs[i] for i in np.random.default_rng(0).permutation(len(runs))]
    assert [shard_of(shuffled, index, 3) for index in range(3)] == parts


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0"])
def test_a_bad_shard_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def test_spreading_without_a_cache_is_refused():
    with pytest.raises(ValueError, match="drop --no-cache"):
        fill_cache([], [], [], RunCache(None), "d", Spread(workers=2))


PARENT_THAT_DIES = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from evaluation.parallel import exit_with_parent

def wait(_):
    time.sleep(60)

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(), 0.1))
    pool.submit(wait, None)
    while not pool._processes:
        time.sleep(0.05)
    print(next(iter(pool._processes)), flush=True)
    os._exit(0)  # as a killed command: no pool shutdown, the worker perhaps not even started yet
"""


def test_a_worker_ends_when_the_command_that_started_it_is_killed(tmp_path):
    import os
    import time

    script = tmp_path / "parent.py"
    script.write_text(PARENT_THAT_DIES)
    root = Path(__file__).resolve().parents[1]
    output = tmp_path / "worker.txt"  # not a pipe: the worker would hold it open
    with open(output, "w") as handle:
        subprocess.run([sys.executable, str(script)], stdout=handle, timeout=60, cwd=root,
                       env={**os.environ, "PYTHONPATH": str(root)}, check=True)
    worker = int(output.read_text().split()[0])

    def alive() -> bool:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{worker}/stat").is_file() and Path(f"/proc/{worker}/stat").read_text().split()[2] != "Z"

    deadline = time.monotonic() + 40  # its task would sleep 60 s; starting it may take seconds
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive()
