"""The quick commands of the README's and docs' fenced blocks run as written, for real: each in a
fresh folder laid out as a clone is (trackers.ini, the main job's synthetic benchmark in
workspace/sequences, data/ where DAVIS is there), and each must exit 0 and write what it says.
Which commands are quick is `QUICK` (a few seconds each on the 2-core CPU); every other
documented command is parsed only (`tests/test_docs_commands_parse.py`). Commands that read
DAVIS 2016 at data/davis2016-train skip where it is absent (as on CI)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from test_docs_commands_parse import COMMANDS
from tracker.cli import main

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO / "data" / "davis2016-train"
QUICK: tuple[tuple[str, ...], ...] = (
    ("pixtrack", "registry"),
    ("pixtrack", "synth"),
    ("pixtrack", "track"),
    ("pixtrack", "synthesize"),
    ("pixtrack", "convert", "davis"),
)
"""Command prefixes that run here; `convert` only with `--sequences` (all 30 DAVIS sequences take longer)."""


def is_quick(argv: list[str]) -> bool:
    if argv[:3] == ["pixtrack", "convert", "davis"] and "--sequences" not in argv:
        return False
    return any(tuple(argv[: len(prefix)]) == prefix for prefix in QUICK)


def files(folder: Path) -> set[Path]:
    """The files under `folder`, not following links (data/ is a link to DAVIS)."""
    return {Path(root) / name for root, _, names in os.walk(folder) for name in names}


RUN = [(page, argv) for page, argv in COMMANDS if is_quick(argv) and page != "adding-a-tracker.md"]
"""adding-a-tracker.md's commands need the tracker the page writes: tests/test_adding_a_tracker.py runs them."""


def test_the_docs_have_quick_commands_to_run():
    pages = {page for page, _ in RUN}
    assert {"README.md", "vot.md", "training.md", "evaluation.md"} <= pages, pages


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    """The main job's benchmark (scripts/main.sh generates it with these settings first)."""
    folder = tmp_path_factory.mktemp("benchmark")
    threads = torch.get_num_threads()
    try:
        assert main(["synth", str(folder / "sequences"), "--sequences", "4", "--frames", "32", "--seed", "0"]) == 0
    finally:
        torch.set_num_threads(threads)
    return folder / "sequences"


@pytest.mark.slow
@pytest.mark.parametrize("page, argv", RUN, ids=[f"{page}: {' '.join(argv)[:70]}" for page, argv in RUN])
def test_documented_quick_command_runs(page, argv, benchmark, tmp_path, monkeypatch):
    if any(argument.startswith("data/davis2016-train") for argument in argv):
        if not DAVIS.is_dir():
            pytest.skip(f"DAVIS 2016 is not at {DAVIS} (docs/training.md says where to get it)")
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "davis2016-train").symlink_to(DAVIS, target_is_directory=True)
    shutil.copy(REPO / "trackers.ini", tmp_path / "trackers.ini")
    if argv[1] != "synth":  # the synth command makes the benchmark itself
        shutil.copytree(benchmark, tmp_path / "workspace" / "sequences")
    monkeypatch.chdir(tmp_path)
    before = files(tmp_path)
    threads = torch.get_num_threads()
    try:
        status = main(argv[1:])
    finally:
        torch.set_num_threads(threads)
    assert status == 0, f"{page}: `{' '.join(argv)}` exited {status}"
    written = files(tmp_path) - before
    if argv[1] in ("track", "synth", "synthesize", "convert"):
        assert written, f"{page}: `{' '.join(argv)}` wrote nothing under {os.getcwd()}"
