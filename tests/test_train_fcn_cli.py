"""`pixtrack train fcn` end to end on a tiny synthetic set: it writes an fcn checkpoint that the
`fcn` factory loads, logs its losses, resumes, and refuses a rerun with other settings.

The frozen VGG16 is replaced by the tests' cheap stand-in (the command builds its backbone
through `baselines.fcn.VGG16Pool4`), so no weight file is read and the test takes seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stand_ins import TinyBackbone  # tests/ is on sys.path under pytest

from baselines.fcn import FCNTracker, build, fcn_config
from tracker.checkpoint import read_metadata
from tracker.cli import main
from tracker.training.loss_log import read_log

TINY = [
    "--synthetic", "2", "--synthetic-frames", "8", "--config", "lite", "--device", "cpu", "--threads", "1",
    "--quiet", "--clip-frames", "1", "--lag", "1", "--clips-per-sequence", "1", "--iterations", "4",
    "--batch", "2", "--lr", "1e-3", "--log-every", "2", "--save-every", "2", "--half",
]


@pytest.fixture
def stand_in_backbone(monkeypatch):
    monkeypatch.setattr("baselines.fcn.VGG16Pool4", lambda weights: TinyBackbone())


def test_train_fcn_writes_a_checkpoint_the_factory_loads(tmp_path, capsys, stand_in_backbone):
    out, output = tmp_path / "run", tmp_path / "fcn.safetensors"
    assert main(["train", "fcn", *TINY, "--out", str(out), "--output", str(output)]) == 0
    assert f"fcn checkpoint: {output}" in capsys.readouterr().err
    meta = read_metadata(output)
    assert meta["kind"] == "fcn" and meta["dtype"] == "float16" and meta["iterations"] == "4"
    assert meta["trained_on"] == '["train-synth00-deform", "train-synth01-occlude"]'
    rows = read_log(out / "fcn_loss.csv")
    assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["loss"]) for r in rows)
    assert (out / "fcn_features" / "meta.json").is_file()
    assert not (out / "fcn_resume.pt").exists()  # finished: nothing left to resume

    tracker = build(checkpoint=str(output), device="cpu")
    assert isinstance(tracker, FCNTracker) and tracker.model.config == fcn_config("lite")
    frame = np.zeros((96, 128, 3), np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[30:60, 40:80] = True
    frame[mask] = (220, 40, 40)
    prob, _ = tracker.track(frame, tracker.init(frame, mask))
    assert prob.shape == (96, 128) and np.isfinite(prob).all()

    # A rerun trains again from the cached features and writes the same weights.
    weights = tracker.model.state_dict()
    output.unlink()
    assert main(["train", "fcn", *TINY, "--out", str(out), "--output", str(output)]) == 0
    again = build(checkpoint=str(output), device="cpu").model.state_dict()
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert [r["step"] for r in read_log(out / "fcn_loss.csv")] == [2, 4]  # each step logged once

    # Other settings in the same folder are refused before any work.
    changed = [a if a != "1e-3" else "2e-3" for a in TINY]
    assert main(["train", "fcn", *changed, "--out", str(out), "--output", str(output)]) == 2
    assert "other settings (loop)" in capsys.readouterr().err


def test_train_fcn_refusals(tmp_path, capsys, stand_in_backbone):
    assert main(["train", "fcn", "--synthetic", "1", "--folds", "f.json", "--out", str(tmp_path)]) == 2
    assert "--folds and --fold go together" in capsys.readouterr().err
    assert main(["train", "fcn", "--synthetic", "1", "--config", "huge", "--out", str(tmp_path)]) == 2
    assert "huge" in capsys.readouterr().err


def test_the_missing_checkpoint_message_names_the_command(monkeypatch, tmp_path):
    monkeypatch.setattr("tracker.checkpoint.CHECKPOINT_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"pixtrack train fcn .*--checkpoint PATH"):
        build()
