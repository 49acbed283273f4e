"""The README's and docs' example commands name things that exist: every
`workspace/sequences/<name>` a `pixtrack track` example points at is a sequence the main job's
synthetic benchmark generates (`benchmark_plan`, seed 0)."""

from __future__ import annotations

import re
from pathlib import Path

from evaluation.main_job import DEFAULT_SEED, DEFAULT_SEQUENCES
from tracker.data.synth import benchmark_plan

REPO = Path(__file__).resolve().parents[1]
TRACK_EXAMPLE = re.compile(r"pixtrack track\b[^\n`]*--sequence\s+workspace/sequences/([^\s/`]+)")


def test_track_examples_name_a_generated_sequence():
    generated = {name for name, _, _, _ in benchmark_plan(DEFAULT_SEQUENCES, DEFAULT_SEED)}
    documents = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    named = {(path.name, name) for path in documents for name in TRACK_EXAMPLE.findall(path.read_text(encoding="utf-8"))}
    assert named, "no `pixtrack track --sequence workspace/sequences/...` example found"
    assert [f"{doc}: {name}" for doc, name in sorted(named) if name not in generated] == []
