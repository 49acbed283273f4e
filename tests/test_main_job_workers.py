"""The main job's `--workers`: trackers' `vot evaluate` runs side by side, each with its share
of the budget, outcomes in tracker order (the `vot` processes are stood in for)."""

from __future__ import annotations

import threading
import time

import pytest

from evaluation import main_job


@pytest.mark.parametrize("workers", [1, 2])
def test_trackers_are_evaluated_workers_at_a_time_with_their_share_of_the_time(monkeypatch, tmp_path, workers):
    running, most, shares = [0], [0], {}
    lock = threading.Lock()

    def fake_evaluate(tracker, workspace, env, timeout, resume):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            shares[tracker] = timeout
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return f"{tracker}: no results" if tracker == "b" else None

    monkeypatch.setattr(main_job, "evaluate", fake_evaluate)
    deadline = time.perf_counter() + 100.0
    outcomes = main_job.evaluate_all(["a", "b", "c", "d"], tmp_path, {}, deadline, False, workers)
    assert list(outcomes) == ["a", "b", "c", "d"]
    assert outcomes == {"a": None, "b": "b: no results", "c": None, "d": None}
    assert most[0] == workers
    # The first trackers started get the whole time left times their share of the workers.
    assert shares["a"] == pytest.approx(100.0 * workers / 4, abs=1.0)
