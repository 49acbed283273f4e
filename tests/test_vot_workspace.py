"""The VOT workspace end to end: the real `vot evaluate`, `vot analysis` and `vot report`.

The toolkit exits 0 even when it fails, so every test judges it by the files it leaves:
one region a frame in the results, the analysis JSON. The static tracker answers its first
mask, so its results and its accuracy are known without the toolkit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tracker.data import load_sequence, write_vot_list, write_vot_sequence
from tracker.data.synth import generate_sequence

REPO = Path(__file__).resolve().parents[1]
SIZE = (320, 240)  # width, height
FRAMES = 12
ANCHORS = {0: 1, 5: 1, FRAMES - 1: -1}
"""Multistart anchors for the first sequence: forward from 0 and 5, backward from the end."""


def make_workspace(root: Path) -> Path:
    """The repository's workspace configuration and stack in `root`, with the registry
    pointing at the repository's trackers.ini (relative paths would point elsewhere here)."""
    root.mkdir(parents=True)
    config = yaml.safe_load((REPO / "workspace" / "config.yaml").read_text())
    config["registry"] = [str(REPO / "trackers.ini")]
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(REPO / "workspace" / config["stack"], root / config["stack"])
    return root


def vot(workspace: Path, *arguments: str, **env: str) -> str:
    """Run the toolkit's CLI offline with this interpreter; returns its output (never its exit code,
    which is 0 even on failure)."""
    environment = {**os.environ, "VOT_PERSISTENT_CACHE": "0", **env}
    completed = subprocess.run(
        [sys.executable, "-m", "evaluation.vot_offline", *arguments, "--workspace", str(workspace)],
        cwd=workspace, env=environment, capture_output=True, text=True, timeout=600,
    )
    return completed.stdout + completed.stderr


def read_results(path: Path) -> list:
    """A results trajectory (binary or text) with the toolkit's own reader."""
    from vot.region.io import read_trajectory, read_trajectory_binary

    binary = path.with_suffix(".bin")
    if binary.is_file():
        with open(binary, "rb") as handle:
            return read_trajectory_binary(handle)
    return read_trajectory(str(path.with_suffix(".txt")))


def as_mask(region, height: int, width: int) -> np.ndarray:
    from vot.region import Special

    assert not isinstance(region, Special), f"expected a mask, got the special code {region}"
    return region.rasterize((0, 0, width - 1, height - 1)).astype(bool)


def is_initialisation(region) -> bool:
    from vot.region import Special

    return isinstance(region, Special) and region.code == 1


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def analysis_results(workspace: Path, name: str) -> dict:
    """{experiment: {analysis name: per-tracker results}} from `vot analysis --name NAME`."""
    path = workspace / "analysis" / f"{name}.json"
    assert path.is_file(), f"vot analysis wrote no {path}"
    data = json.loads(path.read_text())
    return {
        experiment: dict(zip([a["name"] for a in block["parameters"]["analyses"]], block["results"], strict=True))
        for experiment, block in data["results"].items()
    }


@pytest.fixture(scope="module")
def sequences(tmp_path_factory) -> Path:
    """Two tiny synthetic sequences in VOT layout, the first with extra multistart anchors."""
    root = tmp_path_factory.mktemp("synthetic") / "sequences"
    width, height = SIZE
    first = generate_sequence(1, FRAMES, width, height, name="tiny-a", speed=0.04, deformation=0.2)
    second = generate_sequence(2, FRAMES, width, height, name="tiny-b", scale_change=0.5, camera_pan=0.01)
    for sequence in (first, second):
        write_vot_sequence(root, sequence)
    write_vot_list(root, [first.name, second.name])
    (root / first.name / "anchor.value").write_text("".join(f"{ANCHORS.get(i, 0)}\n" for i in range(FRAMES)))
    return root


@pytest.fixture(scope="module")
def static_workspace(tmp_path_factory, sequences) -> Path:
    workspace = make_workspace(tmp_path_factory.mktemp("static") / "workspace")
    shutil.copytree(sequences, workspace / "sequences")
    vot(workspace, "evaluate", "pixtrack-static")
    vot(workspace, "analysis", "pixtrack-static", "--name", "static")
    return workspace


def test_workspace_config_points_at_the_repository_registry():
    from vot.tracker import Registry

    config = yaml.safe_load((REPO / "workspace" / "config.yaml").read_text())
    registries = [(REPO / "workspace" / entry).resolve() for entry in config["registry"]]
    assert registries == [REPO / "trackers.ini"]
    assert (REPO / "workspace" / config["stack"]).is_file()
    identifiers = Registry([str(path) for path in registries]).identifiers()
    assert {"pixtrack", "pixtrack-1stage", "pixtrack-fcn", "pixtrack-static"} <= set(identifiers)


@pytest.mark.vot
@pytest.mark.slow
def test_static_results_repeat_the_initial_mask_on_every_frame(static_workspace):
    results = static_workspace / "results" / "pixtrack-static"
    for name in ("tiny-a", "tiny-b"):
        sequence = load_sequence(static_workspace / "sequences" / name)
        height, width = sequence.frame_size
        trajectory = read_results(results / "unsupervised" / name / f"{name}_001")
        assert len(trajectory) == len(sequence) == FRAMES
        assert is_initialisation(trajectory[0])
        for region in trajectory[1:]:
            np.testing.assert_array_equal(as_mask(region, height, width), sequence.mask(0))
        confidence = (results / "unsupervised" / name / f"{name}_001_confidence.value").read_text().split()
        assert confidence[1:] == ["1.0000"] * (FRAMES - 1)


@pytest.mark.vot
@pytest.mark.slow
def test_multistart_runs_forward_and_backward_from_every_anchor(static_workspace):
    sequence = load_sequence(static_workspace / "sequences" / "tiny-a")
    height, width = sequence.frame_size
    folder = static_workspace / "results" / "pixtrack-static" / "baseline" / "tiny-a"
    runs = sorted(path.stem for path in folder.glob("*.bin"))
    assert runs == [f"tiny-a_{anchor:08d}" for anchor in sorted(ANCHORS)]
    for anchor, direction in ANCHORS.items():
        trajectory = read_results(folder / f"tiny-a_{anchor:08d}")
        assert len(trajectory) == (FRAMES - anchor if direction > 0 else anchor + 1)
        assert is_initialisation(trajectory[0])
        for region in trajectory[1:]:
            np.testing.assert_array_equal(as_mask(region, height, width), sequence.mask(anchor))
        confidence = (folder / f"tiny-a_{anchor:08d}_confidence.value").read_text().split()
        assert confidence[1:] == ["1.0000"] * (len(trajectory) - 1)


@pytest.mark.vot
@pytest.mark.slow
def test_analysis_matches_the_overlaps_computed_here(static_workspace):
    scores = analysis_results(static_workspace, "static")
    # Accuracy of the unsupervised run: mean IoU of the first mask with frames 1.., per
    # sequence, weighted by sequence length (burnin 1 leaves out only the initial frame).
    per_sequence = []
    for name in ("tiny-a", "tiny-b"):
        sequence = load_sequence(static_workspace / "sequences" / name)
        per_sequence.append(np.mean([iou(sequence.mask(0), sequence.mask(i)) for i in range(1, len(sequence))]))
    (accuracy,) = scores["unsupervised"]["accuracy"][0]
    assert accuracy == pytest.approx(np.mean(per_sequence), abs=1e-6)
    assert 0.2 < accuracy < 0.95  # the targets move: repeating the first mask is not free

    (eao,) = scores["baseline"]["eao"][0]
    curve = scores["baseline"]["eaocurve"][0][0]
    ar_accuracy, robustness, _, _, _ = scores["baseline"]["ar"][0]
    assert 0.0 < eao < 1.0 and 0.0 < ar_accuracy < 1.0 and 0.0 < robustness <= 1.0
    stack = yaml.safe_load((REPO / "workspace" / "stack.yaml").read_text())
    (eao_settings,) = [a for a in stack["experiments"]["baseline"]["analyses"] if a["name"] == "eao"]
    assert len(curve) == eao_settings["high"] and curve[0] == 0


@pytest.mark.vot
@pytest.mark.slow
def test_a_tracker_that_fails_every_run_at_once_still_gets_an_analysis(tmp_path, sequences):
    """The toolkit's own multistart_average_ar divides by zero here, and its `vot analysis`
    then writes no JSON at all (evaluation.vot_experiments.AverageAccuracyRobustness)."""
    workspace = make_workspace(tmp_path / "workspace")
    shutil.copytree(sequences / "tiny-b", workspace / "sequences" / "tiny-b")  # one anchor, a 12-frame run
    write_vot_list(workspace / "sequences", ["tiny-b"])
    lost = tmp_path / "lost.ini"
    lost.write_text(
        "[lost]\nprotocol = traxpython\n"
        "command = import tracker.vot, baselines.static as s; "
        "s.StaticTracker.track = lambda self, frame, state, roi=None: (state * 0, state); "
        "sys.exit(tracker.vot.main(['--tracker', 'static']))\n"
        f"paths = {REPO}\n"
    )
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    config["registry"].append(str(lost))
    (workspace / "config.yaml").write_text(yaml.safe_dump(config))

    vot(workspace, "evaluate", "lost", "--experiments", "baseline")
    output = vot(workspace, "analysis", "lost", "--name", "lost", "--experiments", "baseline")
    assert (workspace / "analysis" / "lost.json").is_file(), output[-2000:]
    accuracy, robustness, _, _, _ = analysis_results(workspace, "lost")["baseline"]["ar"][0]
    assert accuracy == 0.0 and robustness == 0.0


@pytest.mark.vot
@pytest.mark.slow
def test_internal_errors_still_give_results_for_every_frame(tmp_path, sequences):
    """With a failure injected at frame 3 of every run, the evaluation completes: frame 3 is
    answered with the last good mask at confidence 0, and the analysis runs."""
    workspace = make_workspace(tmp_path / "workspace")
    shutil.copytree(sequences, workspace / "sequences")
    vot(workspace, "evaluate", "pixtrack-static", PIXTRACK_VOT_FAIL_AT="3")
    results = workspace / "results" / "pixtrack-static"
    for name in ("tiny-a", "tiny-b"):
        sequence = load_sequence(workspace / "sequences" / name)
        height, width = sequence.frame_size
        trajectory = read_results(results / "unsupervised" / name / f"{name}_001")
        assert len(trajectory) == FRAMES
        for region in trajectory[1:]:
            np.testing.assert_array_equal(as_mask(region, height, width), sequence.mask(0))
        confidence = (results / "unsupervised" / name / f"{name}_001_confidence.value").read_text().split()
        assert confidence[3] == "0.0000" and confidence[2] == confidence[4] == "1.0000"
    for anchor in ANCHORS:
        assert len(read_results(results / "baseline" / "tiny-a" / f"tiny-a_{anchor:08d}")) > 0

    vot(workspace, "analysis", "pixtrack-static", "--name", "injected")
    scores = analysis_results(workspace, "injected")
    assert scores["unsupervised"]["accuracy"][0][0] > 0


@pytest.mark.vot
@pytest.mark.slow
def test_pixtrack_synth_workspace_is_evaluated_by_the_toolkit(tmp_path):
    workspace = make_workspace(tmp_path / "workspace")
    subprocess.run(
        [sys.executable, "-m", "tracker.cli", "synth", str(workspace / "sequences"), "--sequences", "2", "--frames", "8", "--seed", "3"],
        check=True, capture_output=True, timeout=300,
    )
    names = (workspace / "sequences" / "list.txt").read_text().split()
    assert len(names) == 2
    vot(workspace, "evaluate", "pixtrack-static", "--experiments", "unsupervised")
    for name in names:
        sequence = load_sequence(workspace / "sequences" / name)
        height, width = sequence.frame_size
        trajectory = read_results(workspace / "results" / "pixtrack-static" / "unsupervised" / name / f"{name}_001")
        assert len(trajectory) == len(sequence)
        for region in trajectory[1:]:
            np.testing.assert_array_equal(as_mask(region, height, width), sequence.mask(0))


def _unavailable(registry_name: str) -> str | None:
    """Why a registered tracker cannot be built here (not registered, no checkpoint), or None."""
    from tracker.registry import build_tracker, known_names

    if registry_name not in known_names():
        return f"tracker {registry_name!r} is not registered yet (tracker/registry.py)"
    try:
        build_tracker(registry_name, device="cpu")
    except FileNotFoundError as error:
        return str(error)
    return None


@pytest.mark.vot
@pytest.mark.slow
@pytest.mark.parametrize("identifier", ["pixtrack", "pixtrack-1stage", "pixtrack-fcn"])
def test_trained_trackers_are_evaluated_and_analysed(tmp_path, sequences, identifier):
    from tracker.vot import FALLBACK_MARK, LOG_ENV

    reason = _unavailable(identifier)  # the VOT identifier is the registry name
    if reason:
        pytest.skip(reason)
    workspace = make_workspace(tmp_path / "workspace")
    shutil.copytree(sequences / "tiny-a", workspace / "sequences" / "tiny-a")  # one sequence: networks are slow on a CPU
    write_vot_list(workspace / "sequences", ["tiny-a"])
    tracker_log = tmp_path / "tracker.log"
    # One thread: on two shared cores, two threads stall each other (3x slower seen here).
    output = vot(workspace, "evaluate", identifier, "--experiments", "unsupervised", OMP_NUM_THREADS="1", **{LOG_ENV: str(tracker_log)})

    path = workspace / "results" / identifier / "unsupervised" / "tiny-a" / "tiny-a_001"
    assert path.with_suffix(".bin").is_file(), f"no results; vot said:\n{output[-3000:]}"
    trajectory = read_results(path)
    assert len(trajectory) == FRAMES
    assert is_initialisation(trajectory[0])
    assert all(as_mask(region, SIZE[1], SIZE[0]).shape == (SIZE[1], SIZE[0]) for region in trajectory[1:])
    assert FALLBACK_MARK not in tracker_log.read_text(), "the tracker failed on some frames (answered by the fallback)"
    vot(workspace, "analysis", identifier, "--name", "trained", "--experiments", "unsupervised")
    (accuracy,) = analysis_results(workspace, "trained")["unsupervised"]["accuracy"][0]
    assert 0.0 <= accuracy <= 1.0


@pytest.mark.vot
@pytest.mark.slow
def test_main_job_reports_every_output_and_a_tracker_that_cannot_start(tmp_path, sequences, capsys):
    from evaluation.main_job import main

    workspace = make_workspace(tmp_path / "workspace")
    shutil.copytree(sequences, workspace / "sequences")
    broken = tmp_path / "broken.ini"
    broken.write_text(
        "[broken]\nprotocol = traxpython\n"
        "command = import tracker.vot; sys.exit(tracker.vot.main(['--tracker', 'no-such-tracker']))\n"
        f"paths = {REPO}\n"
    )
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    config["registry"].append(str(broken))
    (workspace / "config.yaml").write_text(yaml.safe_dump(config))

    status = main(["--workspace", str(workspace), "--trackers", "pixtrack-static", "broken"])
    printed = capsys.readouterr()
    assert status == 1
    assert "broken: no results" in printed.out and "unknown tracker 'no-such-tracker'" in printed.out
    assert "broken" in printed.err  # listed among the missing outputs
    assert (workspace / "reports" / "main" / "report.html").is_file()
    scores = analysis_results(workspace, "main")
    assert list(json.loads((workspace / "analysis" / "main.json").read_text())["trackers"]) == ["pixtrack-static"]
    assert f"{scores['unsupervised']['accuracy'][0][0]:8.3f}" in printed.out


@pytest.mark.vot
@pytest.mark.slow
def test_main_job_stops_a_tracker_that_exceeds_its_time_share(tmp_path, sequences, capsys):
    from evaluation.main_job import RESERVE_SECONDS, main

    workspace = make_workspace(tmp_path / "workspace")
    shutil.copytree(sequences, workspace / "sequences")
    budget_minutes = (RESERVE_SECONDS + 1.0) / 60.0  # one second to evaluate: too little
    status = main(["--workspace", str(workspace), "--trackers", "pixtrack-static", "--budget", str(budget_minutes)])
    printed = capsys.readouterr()
    assert status == 1
    assert "ran out" in printed.out and "pixtrack-static" in printed.err
    assert not (workspace / "analysis" / "main.json").exists()
