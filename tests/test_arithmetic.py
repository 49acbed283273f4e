"""MKL's code path is pinned for every tracker the main job and the entry points start,
unless the environment already chose one."""

from __future__ import annotations

import pytest

import tracker.arithmetic as arithmetic
from evaluation.main_job import toolkit_environment


def test_the_branch_is_set_where_unset_and_kept_where_chosen(monkeypatch):
    monkeypatch.setattr(arithmetic, "_has_avx2", lambda: True)
    assert arithmetic.pin_blas_branch(env := {}) == "AVX2" and env == {"MKL_CBWR": "AVX2"}
    assert arithmetic.pin_blas_branch(env := {"MKL_CBWR": "AUTO"}) == "AUTO" and env == {"MKL_CBWR": "AUTO"}
    monkeypatch.setattr(arithmetic, "_has_avx2", lambda: False)
    assert arithmetic.pin_blas_branch(env := {}) is None and env == {}


def test_the_main_jobs_trackers_get_the_pinned_branch(monkeypatch, tmp_path):
    monkeypatch.setattr(arithmetic, "_has_avx2", lambda: True)
    monkeypatch.delenv("MKL_CBWR", raising=False)
    assert toolkit_environment(tmp_path, threads=1)["MKL_CBWR"] == "AVX2"
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    assert toolkit_environment(tmp_path, threads=1)["MKL_CBWR"] == "AUTO"


@pytest.mark.parametrize("entry", ["tracker.cli", "tracker.vot", "evaluation.tables"])
def test_entry_points_pin_before_parsing(entry, monkeypatch):
    import importlib

    import sys

    calls = []
    monkeypatch.setattr(arithmetic, "pin_blas_branch", lambda environ=None: calls.append(entry))
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # tracker.vot redirects both; restored after
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    module = importlib.import_module(entry)
    with pytest.raises(BaseException):
        module.main(["--no-such-option"])
    assert calls == [entry]
