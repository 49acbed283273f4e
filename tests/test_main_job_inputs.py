"""The main job checks a workspace's existing sequences before any `vot` command reads them,
and runs every `vot` command offline."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import evaluation.main_job as main_job
from tests.test_trackable import square_sequence
from tracker.data import write_vot_list, write_vot_sequence


def workspace_with(root: Path, *sequences) -> Path:
    (root / "config.yaml").parent.mkdir(parents=True)
    (root / "config.yaml").write_text("registry: []\nstack: ./stack.yaml\nsequences: sequences\n")
    for sequence in sequences:
        write_vot_sequence(root / "sequences", sequence)
    write_vot_list(root / "sequences", [sequence.name for sequence in sequences])
    return root


@pytest.fixture
def no_vot(monkeypatch):
    monkeypatch.setattr(main_job, "run_vot", lambda *a, **k: pytest.fail("vot ran on a bad workspace"))


def run_job(workspace: Path, capsys) -> tuple[int, str]:
    status = main_job.main(["--workspace", str(workspace), "--trackers", "pixtrack-static"])
    printed = capsys.readouterr()
    return status, printed.out + printed.err


def test_a_malformed_groundtruth_line_is_named_before_vot_runs(tmp_path, capsys, no_vot):
    workspace = workspace_with(tmp_path / "ws", square_sequence("good", 4), square_sequence("bad", 4))
    groundtruth = workspace / "sequences" / "bad" / "groundtruth.txt"
    lines = groundtruth.read_text().splitlines()
    lines[2] = "m1,2,oops"
    groundtruth.write_text("\n".join(lines) + "\n")
    status, printed = run_job(workspace, capsys)
    assert status == 1
    assert re.search(re.escape(f"sequences  FAILED: {groundtruth}:3: "), printed)


def test_a_groundtruth_shorter_than_the_frames_is_named_before_vot_runs(tmp_path, capsys, no_vot):
    workspace = workspace_with(tmp_path / "ws", square_sequence("short", 5))
    groundtruth = workspace / "sequences" / "short" / "groundtruth.txt"
    groundtruth.write_text("\n".join(groundtruth.read_text().splitlines()[:3]) + "\n")
    status, printed = run_job(workspace, capsys)
    assert status == 1 and f"{groundtruth}: 3 regions for 5 frames" in printed


def test_an_empty_first_mask_is_named_before_vot_runs(tmp_path, capsys, no_vot):
    workspace = workspace_with(tmp_path / "ws", square_sequence("hidden", 4, empty_first=True))
    status, printed = run_job(workspace, capsys)
    groundtruth = workspace / "sequences" / "hidden" / "groundtruth.txt"
    assert status == 1 and f"{groundtruth}:1: sequence 'hidden': the first frame's mask is empty" in printed


def test_every_vot_command_of_the_main_job_runs_offline(tmp_path, monkeypatch):
    launched = []

    class Process:
        pid = 0

        def __init__(self, command, **kwargs):
            launched.append(command)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(main_job.subprocess, "Popen", Process)
    main_job.run_vot(["evaluate", "pixtrack"], tmp_path, tmp_path / "log.txt", {})
    assert launched == [[sys.executable, "-m", "evaluation.vot_offline", "evaluate", "pixtrack",
                         "--workspace", str(tmp_path)]]


@pytest.mark.parametrize("ci, flags", [(None, []), (True, ["--ci"]), (False, ["--no-ci"])])
def test_the_main_job_passes_its_interval_choice_to_the_tables(tmp_path, monkeypatch, ci, flags):
    import types

    ran = []
    monkeypatch.setattr(main_job.subprocess, "run",
                        lambda command, **kwargs: ran.append(command) or types.SimpleNamespace(returncode=0, stdout=""))
    main_job.run_tables(tmp_path, ["pixtrack"], tmp_path, ci)
    command = ran[0]
    assert command[command.index("--no-progress") + 1:] == flags


def test_a_skipped_tracker_is_told_how_to_make_its_checkpoint(monkeypatch, tmp_path):
    """A default tracker without its checkpoint is skipped, naming the command its registry entry gives."""
    import tracker.registry as registry

    missing = tmp_path / "two-stage-lite.safetensors"
    monkeypatch.setattr(registry.TrackerEntry, "shipped_checkpoint",
                        lambda self: missing if self.name == "pixtrack-plus" else None)
    assert main_job.without_checkpoint(["pixtrack-static", "pixtrack-plus"]) == {"pixtrack-plus": missing}
    assert main_job.training_hint("pixtrack-plus").startswith("pixtrack train fcn --recipe recipes/lite.toml && ")
    assert main_job.training_hint("pixtrack-plus").endswith("cp runs/lite/two-stage/two-stage-lite.safetensors checkpoints/")
