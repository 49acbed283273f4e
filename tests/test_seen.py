"""evaluation.seen: an evaluation names the sequences a checkpoint was trained on, from the
checkpoint's own metadata, so that a training-set score never passes for a held-out one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file

from evaluation.running import registered_tracker
from evaluation.seen import seen_sequences, training_names, training_set_warnings
from tracker.registry import shipped_checkpoint

FOLDS = Path(__file__).resolve().parents[1] / "checkpoints" / "davis2016-train-5folds.json"


def _checkpoint(path: Path, key: str | None = None, names: list[str] | None = None) -> Path:
    """A weights file whose metadata records `names` under `key` (as the training commands do)."""
    save_file({"x": torch.zeros(1)}, str(path), metadata={"kind": "two-stage", **({key: json.dumps(names)} if key else {})})
    return path


def _sequences(*names: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(name=name) for name in names]


def test_training_names_read_both_metadata_keys(tmp_path):
    assert training_names(_checkpoint(tmp_path / "a.safetensors", "sequences", ["bear", "boat"])) == {"bear", "boat"}
    assert training_names(_checkpoint(tmp_path / "b.safetensors", "trained_on", ["lucia"])) == {"lucia"}
    # No record, no file, no checkpoint: nothing is claimed.
    assert training_names(_checkpoint(tmp_path / "c.safetensors")) == frozenset()
    assert training_names(tmp_path / "missing.safetensors") == frozenset()
    assert training_names(None) == frozenset()


def test_a_warning_names_exactly_the_evaluated_sequences_the_checkpoint_saw(tmp_path):
    path = _checkpoint(tmp_path / "two-stage.safetensors", "sequences", ["bear", "boat", "car-turn"])
    spec = registered_tracker("pixtrack", str(path))
    warnings = training_set_warnings([spec], _sequences("bear", "cows", "car-turn"))
    assert len(warnings) == 1
    assert "pixtrack: 2 of the 3 evaluated sequences" in warnings[0] and "(bear, car-turn)" in warnings[0]
    assert "cows" not in warnings[0]
    assert training_set_warnings([spec], _sequences("cows", "goat")) == []


def test_fold_checkpoints_that_hold_their_sequences_out_raise_no_warning(tmp_path):
    # Cross-validation: each sequence is tracked by the checkpoint trained without it.
    first = _checkpoint(tmp_path / "f0.safetensors", "sequences", ["boat"])
    second = _checkpoint(tmp_path / "f1.safetensors", "trained_on", ["bear"])
    spec = registered_tracker("pixtrack-fcn", {"bear": str(first), "boat": str(second)})
    assert seen_sequences(spec, ["bear", "boat"]) == []
    leaky = registered_tracker("pixtrack-fcn", {"bear": str(second), "boat": str(second)})
    assert seen_sequences(leaky, ["bear", "boat"]) == ["bear"]


def test_a_tracker_without_weights_is_never_flagged():
    assert training_set_warnings([registered_tracker("pixtrack-static")], _sequences("bear")) == []


def test_the_shipped_checkpoints_record_all_thirty_training_sequences():
    # The shipped files are trained on all 30 sequences of the folds file (docs/training.md),
    # so the default trackers are flagged on any of them: fold tables need fold checkpoints.
    everything = set(json.loads(FOLDS.read_text(encoding="utf-8"))["sequences"])
    assert len(everything) == 30
    for name in ("pixtrack", "pixtrack-fcn"):
        path = shipped_checkpoint(name)
        if path is None or not path.is_file():
            continue
        assert everything <= training_names(path), (name, sorted(everything - training_names(path)))  # + generated ones
        assert seen_sequences(registered_tracker(name), ["bear", "not-davis"]) == ["bear"]
    assert seen_sequences(registered_tracker("two-stage"), ["bear"]) == ["bear"]  # an older name reads the same file
