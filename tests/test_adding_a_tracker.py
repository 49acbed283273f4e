"""docs/adding-a-tracker.md, run as written: its module, its registry entry (registered
in-process rather than edited into `ENTRIES`) and its commands, through the build path every
command uses (`tracker.registry.build_tracker`)."""

from __future__ import annotations

import ast
import re
import shlex
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tracker import registry
from tracker.registry import TrackerEntry

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-tracker.md"


def fenced(language: str) -> list[str]:
    """The doc's fenced blocks in `language`, in order."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def commands(block: str) -> list[list[str]]:
    """The block's command lines (continuations joined, comments dropped) as argument lists."""
    text = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]


@pytest.fixture
def box_entry(monkeypatch):
    module_code, entry_code = fenced("python")[:2]
    entry = eval(compile(ast.parse(entry_code.strip().rstrip(","), mode="eval"), str(DOC), "eval"),
                 {"TrackerEntry": TrackerEntry})
    module_name = entry.factory.partition(":")[0]
    module = types.ModuleType(module_name)
    exec(compile(module_code, str(DOC), "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module_name, module)  # importlib finds it as if it were a file
    registry.register(entry)
    yield entry
    registry.unregister(entry.name)


def test_the_example_entries_are_valid_entries():
    for code in fenced("python")[1:]:
        eval(compile(ast.parse(code.strip().rstrip(","), mode="eval"), str(DOC), "eval"), {"TrackerEntry": TrackerEntry})


def test_the_documented_tracker_is_built_and_run_by_the_documented_commands(box_entry, tmp_path, monkeypatch, capsys):
    from evaluation.tables import main as tables
    from tracker.cli import main as pixtrack
    from tracker.commands.registry import trackers_ini

    assert f"[{box_entry.name}]" in trackers_ini()  # `pixtrack registry --write` would list it
    tracker = registry.build_tracker(box_entry.name)
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:3, 2:5] = True
    mask[4, 6] = True
    prob, _ = tracker.track(np.zeros((6, 8, 3), np.uint8), tracker.init(np.zeros((6, 8, 3), np.uint8), mask))
    assert prob.shape == (6, 8) and prob.sum() == 4 * 5 and prob[1:5, 2:7].all()

    monkeypatch.chdir(tmp_path)
    use = commands(fenced("bash")[-1])
    ran = 0
    for argv in use:
        if argv[0] == "pixtrack":
            assert pixtrack(argv[1:]) == 0, capsys.readouterr().err
        elif argv[:3] == ["python", "-m", "evaluation.tables"]:
            assert tables(argv[3:]) == 0, capsys.readouterr().err
        else:
            continue  # `vot evaluate` needs the toolkit's subprocesses: tests/test_vot_workspace.py
        ran += 1
    assert ran == 3
    assert len((tmp_path / "outputs" / "box" / "iou.csv").read_text().splitlines()) == 8  # header + 7 frames
    rows = (tmp_path / "outputs" / "box-tables" / "table3.csv").read_text()
    assert box_entry.name in rows and "pixtrack-static" in rows
