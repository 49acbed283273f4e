"""The README's main job: benchmark -> `vot evaluate` -> `vot analysis` -> `vot report` -> tables.

    python -m evaluation.main_job [--trackers pixtrack-static pixtrack ...] [--sequences N]
        [--frames F] [--seed S] [--workspace DIR] [--resume] [--threads T] [--budget MINUTES]

1. The benchmark: workspace/sequences as it is (every sequence checked first, as the tables
   would: readable groundtruth lines, one a frame, a non-empty first mask, at least two
   frames; a fault is reported naming the file and line), or, where it holds no list.txt,
   the synthetic benchmark generated there by the data package (N sequences of F frames).
2. `vot evaluate` each tracker on the workspace's stack (unsupervised + multistart), one
   tracker at a time so that one which cannot start (a missing checkpoint) leaves the others
   their results, each within its share of the time budget (--budget). A tracker's old
   results are deleted first unless --resume is given.
3. `vot analysis` and `vot report --format html` for the trackers whose results are complete.
4. `python -m evaluation.tables --workspace W`, where that module exists: Table 3 of the
   paper from the masks `vot evaluate` stored (Table 2 tracks again; run it separately).

Every `vot` command runs offline (`evaluation.vot_offline`: no update check, no connection
outside this machine). The toolkit exits 0 even when it fails, so every step is judged by the files it leaves:
results complete for every sequence and experiment (the toolkit's own `scan`), the analysis
JSON, the report's HTML. The toolkit's output goes to workspace/logs/main_job/; the
console gets one line a step, a summary of the scores and where every output lies. Exit
status 1 when any requested output is missing.

Budget: under 15 minutes on two CPU cores, set-up included. Each tracker runs every frame
twice (the unsupervised run, and the multistart runs: one anchor in each 50 frames), so at
the defaults (the first four synthetic sequences, 32 frames each: deformation, occlusion,
fast motion, small target) the three network trackers process 3 x 2 x 4 x 32 = 768 frames
(on two shared cores, one thread each: two-stage 130 s, 1-stage 140 s, FCN with its
first-frame fine-tuning about 260 s). --budget (12 minutes) is enforced: each tracker gets an
equal share of the evaluation time left, one that exceeds it is stopped and reported rather
than overrunning. Pass more sequences or frames where there is time or a GPU.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import re
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from evaluation.vot_offline import MODULE as VOT_OFFLINE
from tracker.vot import FALLBACK_MARK, LOG_ENV

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKSPACE = REPO / "workspace"
DEFAULT_TRACKERS = ("pixtrack-static", "pixtrack", "pixtrack-1stage", "pixtrack-fcn", "pixtrack-plus")
"""The cheap reference first, the costliest (pixtrack-plus: its first-frame fine-tuning) last:
time each leaves unused passes on to those after it."""
DEFAULT_SEQUENCES = 4
DEFAULT_FRAMES = 32
DEFAULT_SEED = 0
DEFAULT_BUDGET_MINUTES = 12.0
"""The job's own time (set-up excluded): the README promises under 15 minutes with it."""
RESERVE_SECONDS = 120.0
"""Kept back from evaluation for `vot analysis`, `vot report` and the tables."""
RUN_NAME = "main"
"""Name of the analysis JSON (analysis/main.json) and report (reports/main/) this job writes."""


class JobFailed(RuntimeError):
    """A step left no usable output; the message says which and where to look."""


def default_threads() -> int | None:
    """Torch threads a tracker process: 1 on machines of two cores or fewer, where two threads
    stall each other as soon as any other process wants a core (seen here: a two-stage frame
    took 3 s with 2 threads, 1.1 s with 1); elsewhere torch's own choice (None)."""
    return 1 if (os.cpu_count() or 1) <= 2 else None


def default_workers() -> int:
    """`vot evaluate` processes at a time: one a core where each tracker runs on one thread
    (`default_threads`; the two cores of the project's machines: 256 s against 340 s for four
    trackers, scores identical), else 1 (torch's threads take every core)."""
    cores = os.cpu_count() or 1
    return cores if cores <= 2 else 1


def toolkit_environment(workspace: Path, threads: int | None) -> dict[str, str]:
    """The environment for `vot` and the trackers it starts: no persistent analysis cache (it
    is keyed by tracker and sequence names, not by the results' contents, so re-evaluated
    trackers would get stale scores), a writable numba cache, the trackers' thread count,
    MKL's code path pinned (tracker.arithmetic)."""
    from tracker.arithmetic import pin_blas_branch

    env = dict(os.environ)
    env["VOT_PERSISTENT_CACHE"] = "0"
    pin_blas_branch(env)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    import vot

    if "NUMBA_CACHE_DIR" not in env and not os.access(Path(vot.__file__).parent, os.W_OK):
        env["NUMBA_CACHE_DIR"] = str(workspace / "cache" / "numba")
    return env


def run_vot(
    arguments: Sequence[str], workspace: Path, log_file: Path, env: dict[str, str], timeout: float | None = None
) -> tuple[float, bool]:
    """Run `vot ARGUMENTS --workspace W` offline (`evaluation.vot_offline`) with this
    interpreter (so trackers run in this environment), output to `log_file`. Past `timeout`
    seconds the toolkit and the tracker it started (one process group) are stopped. Returns
    (seconds taken, whether it ran out)."""
    command = [sys.executable, "-m", VOT_OFFLINE, *arguments, "--workspace", str(workspace)]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workspace, start_new_session=True)
        try:
            process.wait(timeout=timeout)
            ran_out = False
        except subprocess.TimeoutExpired:
            ran_out = True
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return time.perf_counter() - started, ran_out


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])


def prepare_sequences(workspace: Path, sequences: int, frames: int, seed: int) -> str:
    """Use workspace/sequences as it is, checked before any `vot` command reads it (a
    DatasetError names the file and line at fault), or generate the synthetic benchmark there."""
    root = workspace / "sequences"
    names_file = root / "list.txt"
    if names_file.is_file():
        from tracker.data import check_all_trackable, load_dataset

        names = check_all_trackable(load_dataset(root))
        return f"{len(names)} sequences already in {root}, checked (kept; delete the folder to regenerate)"
    from tracker.data.synth import generate_benchmark

    generate_benchmark(root, sequences=sequences, frames=frames, seed=seed)
    if not names_file.is_file():
        raise JobFailed(f"the synthetic benchmark generator wrote no {names_file}")
    return f"generated {sequences} synthetic sequences of {frames} frames (seed {seed}) in {root}"


def incomplete_results(workspace_dir: Path, tracker_id: str) -> list[str]:
    """What is missing from a tracker's results, by the toolkit's own `scan` (empty = complete)."""
    from vot.workspace import Workspace

    workspace = Workspace.load(str(workspace_dir))
    tracker = workspace.registry[tracker_id]
    missing = []
    for experiment in workspace.stack:
        for sequence in experiment.transform(workspace.dataset):
            complete, _, _ = experiment.scan(tracker, sequence)
            if not complete:
                missing.append(f"{experiment.identifier}/{sequence.name}")
    return missing


def score_summary(analysis_file: Path) -> list[str]:
    """One line a tracker: accuracy (unsupervised), EAO, A and R (multistart), from the JSON."""
    data = json.loads(analysis_file.read_text(encoding="utf-8"))
    trackers = list(data["trackers"])
    columns: dict[str, list[str]] = {}

    def measure(experiment: str, analysis: str, pick) -> None:
        block = data["results"].get(experiment)
        if block is None:
            return
        names = [entry.get("name") for entry in block["parameters"]["analyses"]]
        if analysis in names:
            values = block["results"][names.index(analysis)]
            for tracker, value in zip(trackers, values, strict=True):
                columns.setdefault(tracker, []).append(f"{pick(value):8.3f}")

    measure("unsupervised", "accuracy", lambda v: v[0])
    measure("baseline", "eao", lambda v: v[0])
    measure("baseline", "ar", lambda v: v[0])
    measure("baseline", "ar", lambda v: v[1])
    width = max(len(t) for t in trackers)
    lines = [f"  {'tracker':<{width}}  accuracy      EAO        A        R"]
    lines += [f"  {tracker:<{width}}  {' '.join(columns.get(tracker, []))}" for tracker in trackers]
    return lines


def run_tables(workspace: Path, trackers: Sequence[str], log_dir: Path, ci: bool | None = None) -> Path | None:
    """`python -m evaluation.tables` (Table 3) from the masks `vot evaluate` stored, where the
    module exists. Table 2 would track every sequence again, resampled to 20..160 frames: far
    beyond this job's budget on a CPU; run `python -m evaluation.tables` for it."""
    if importlib.util.find_spec("evaluation.tables") is None:
        print("tables     skipped: evaluation.tables does not exist yet")
        return None
    out = REPO / "outputs" / "tables" if workspace == DEFAULT_WORKSPACE else workspace / "tables"
    log_file = log_dir / "tables.log"
    command = [
        sys.executable, "-m", "evaluation.tables", "--workspace", str(workspace), "--trackers", *trackers,
        "--out", str(out), "--no-progress",
        *({True: ["--ci"], False: ["--no-ci"]}.get(ci, [])),  # None: the tables' default (from 5 sequences)
    ]
    started = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as log:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO, check=False)
    if completed.returncode != 0:
        raise JobFailed(f"evaluation.tables failed (exit {completed.returncode}):\n{tail(log_file)}")
    print(f"tables     {time.perf_counter() - started:6.0f} s  {out}")
    print("\n".join("  " + line for line in completed.stdout.splitlines()))
    return out


def training_hint(tracker: str) -> str:
    """How to make a tracker's missing default checkpoint: its registry entry's command."""
    from tracker.registry import entry

    return entry(tracker).train_command or "docs/training.md"


def without_checkpoint(trackers: Sequence[str]) -> dict[str, Path]:
    """The trackers.ini identifiers among `trackers` whose shipped default checkpoint is absent."""
    from tracker.registry import shipped_checkpoint

    registry = configparser.ConfigParser()
    registry.read(REPO / "trackers.ini")
    missing = {}
    for identifier in trackers:
        command = registry.get(identifier, "command", fallback="")
        name = re.search(r"'--tracker',\s*'([^']+)'", command)
        if "--checkpoint" in command or not name:
            continue
        path = shipped_checkpoint(name.group(1))
        if path is not None and not path.is_file():
            missing[identifier] = path
    return missing


def evaluate(tracker: str, workspace: Path, env: dict[str, str], timeout: float, resume: bool) -> str | None:
    """`vot evaluate` one tracker within `timeout` seconds; None when its results are complete,
    else what is missing, why, and the log that tells more."""
    log_dir = workspace / "logs" / "main_job"
    log_file = log_dir / f"evaluate-{tracker}.log"
    tracker_log = log_dir / f"tracker-{tracker}.log"
    tracker_log.unlink(missing_ok=True)
    if not resume:  # removed, not overwritten: a run cut short must not pass on old files
        shutil.rmtree(workspace / "results" / tracker, ignore_errors=True)
    seconds, ran_out = run_vot(["evaluate", tracker], workspace, log_file, {**env, LOG_ENV: str(tracker_log)}, timeout)
    missing = incomplete_results(workspace, tracker)
    if missing:
        problem = f"{tracker}: no results for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
        if ran_out:
            problem += (
                f" (stopped: its share of the --budget, {timeout:.0f} s, ran out; pass fewer --sequences "
                "or --frames, a larger --budget, or --resume to go on from here)"
            )
        evidence = tracker_log if tracker_log.is_file() else log_file
        print(f"evaluate   {seconds:6.0f} s  {problem}; {evidence}:\n{tail(evidence)}", flush=True)
        return problem
    print(f"evaluate   {seconds:6.0f} s  {tracker}: results complete in {workspace / 'results' / tracker}", flush=True)
    errors = tracker_log.read_text(encoding="utf-8").count(FALLBACK_MARK) if tracker_log.is_file() else 0
    if errors:
        print(f"           warning: {errors} frames answered with a fallback mask after an internal error; see {tracker_log}")
    return None


def evaluate_all(trackers: Sequence[str], workspace: Path, env: dict[str, str], deadline: float, resume: bool,
                 workers: int = 1) -> dict[str, str | None]:
    """`evaluate` every tracker, `workers` `vot evaluate` processes at a time (vot-toolkit 0.9.0
    runs one tracker's sequences one after another whatever VOT_WORKER_POOL_SIZE says: that
    pool serves `vot analysis` and `vot report` only). Each tracker may run for an equal share
    of the time left, times the trackers running beside it. tracker -> its problem (None: its
    results are complete), in `trackers`' order."""
    from concurrent.futures import ThreadPoolExecutor

    problems: dict[str, str | None] = {}
    start_lock = threading.Lock()
    remaining = list(trackers)

    def one(tracker: str) -> None:
        with start_lock:
            left = len(remaining)
            remaining.remove(tracker)
            share = max(deadline - time.perf_counter(), 0.0) * min(workers, left) / left
        problems[tracker] = evaluate(tracker, workspace, env, share, resume)

    with ThreadPoolExecutor(max(1, workers)) as pool:  # threads: each waits on its own `vot` process
        list(pool.map(one, trackers))
    return {tracker: problems[tracker] for tracker in trackers}


def analyse(workspace: Path, trackers: Sequence[str], env: dict[str, str], ci: bool | None = None) -> list[str]:
    """`vot analysis`, `vot report --format html` and the tables for `trackers`; what failed."""
    log_dir = workspace / "logs" / "main_job"
    problems = []
    analysis_file = workspace / "analysis" / f"{RUN_NAME}.json"
    report_file = workspace / "reports" / RUN_NAME / "report.html"
    # Only output written now counts: the previous run's goes first.
    analysis_file.unlink(missing_ok=True)
    shutil.rmtree(report_file.parent, ignore_errors=True)
    steps = (
        ("analysis", ["analysis", *trackers, "--name", RUN_NAME], analysis_file),
        ("report", ["report", *trackers, "--format", "html", "--name", RUN_NAME], report_file),
    )
    for step, arguments, expected in steps:
        seconds, _ = run_vot(arguments, workspace, log_dir / f"{step}.log", env)
        if expected.is_file():
            print(f"{step:<10} {seconds:6.0f} s  {expected}")
        else:
            problems.append(f"vot {step} wrote no {expected}")
            print(f"{step:<10} {seconds:6.0f} s  FAILED, no {expected}:\n{tail(log_dir / f'{step}.log')}")
    if analysis_file.is_file():
        print("\n".join(score_summary(analysis_file)))
    try:
        run_tables(workspace, trackers, log_dir, ci)
    except JobFailed as error:
        problems.append(str(error))
        print(f"tables     FAILED: {error}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.main_job", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trackers", nargs="+", default=None,
        help="trackers.ini identifiers (default: %s; of those, trackers whose shipped checkpoint is "
        "absent are skipped with a note)" % " ".join(DEFAULT_TRACKERS),
    )
    parser.add_argument("--sequences", type=int, default=DEFAULT_SEQUENCES, help="synthetic sequences to generate where none exist (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames a synthetic sequence (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the synthetic benchmark (default: %(default)s)")
    parser.add_argument("--workspace", type=Path, default=DEFAULT_WORKSPACE, help="VOT workspace (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help="keep results already computed instead of recomputing them")
    parser.add_argument(
        "--threads", type=int, default=default_threads(),
        help="torch threads of each tracker process (default: 1 on machines with two cores or fewer, else torch's choice)",
    )
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET_MINUTES, metavar="MINUTES",
        help="time for the whole job: each tracker may evaluate for an equal share of what is left "
        "(after %.0f s kept for analysis, report and tables); one that runs out is stopped and "
        "reported (default: %%(default)s)" % RESERVE_SECONDS,
    )
    parser.add_argument(
        "--workers", type=int, default=default_workers(), metavar="N",
        help="evaluate N trackers at a time, each in its own `vot evaluate` (default: one a core on "
        "machines of two cores or fewer, where each runs on one thread, else 1; with --threads, "
        "N x threads should not exceed the cores)",
    )
    parser.add_argument(
        "--ci", action=argparse.BooleanOptionalAction, default=None,
        help="95%% bootstrap intervals over sequences in the tables (default: from 5 sequences on; "
        "the default benchmark has 4)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    workspace = args.workspace.resolve()
    if not (workspace / "config.yaml").is_file():
        parser.error(f"{workspace} is not a VOT workspace (no config.yaml)")
    env = toolkit_environment(workspace, args.threads)
    started = time.perf_counter()
    if args.trackers is None:
        args.trackers = list(DEFAULT_TRACKERS)
        for tracker, path in without_checkpoint(args.trackers).items():
            args.trackers.remove(tracker)
            print(f"skipped    {tracker}: no checkpoint at {path} (train one: {training_hint(tracker)})", flush=True)

    try:
        print(f"sequences  {prepare_sequences(workspace, args.sequences, args.frames, args.seed)}", flush=True)
    except (JobFailed, ValueError, OSError) as error:
        print(f"sequences  FAILED: {error}", file=sys.stderr)
        return 1

    deadline = started + 60.0 * args.budget - RESERVE_SECONDS
    outcomes = evaluate_all(args.trackers, workspace, env, deadline, args.resume, args.workers)
    problems = [problem for problem in outcomes.values() if problem]
    evaluated = [tracker for tracker, problem in outcomes.items() if not problem]
    if evaluated:
        problems += analyse(workspace, evaluated, env, args.ci)

    print(f"\nresults in {workspace / 'results'}, toolkit output in {workspace / 'logs' / 'main_job'}")
    print(f"main job: {time.perf_counter() - started:.0f} s, {len(evaluated)}/{len(args.trackers)} trackers evaluated")
    if problems:
        print("missing outputs:\n" + "\n".join(f"  - {problem}" for problem in problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
