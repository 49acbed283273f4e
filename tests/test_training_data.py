"""Folds files and the training-data mix (VOT folder, DAVIS root, synthetic), through the
library and the `pixtrack train folds` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracker.cli import main
from tracker.data import InMemorySequence, write_davis_list, write_davis_sequence, write_vot_list, write_vot_sequence
from tracker.training.folds import make_folds, read_folds, write_folds
from tracker.training.sources import training_sequences


def _sequence(name: str, frames: int = 3, seed: int = 0) -> InMemorySequence:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(frames, 48, 64, 3), dtype=np.uint8)
    masks = np.zeros((frames, 48, 64), bool)
    masks[:, 10:20, 12 + seed : 30 + seed] = True
    return InMemorySequence(name, images, masks)


def test_folds_partition_the_sequences_and_depend_only_on_names_and_seed(tmp_path):
    names = [f"seq{i:02d}" for i in range(23)]
    split = make_folds(names, k=10, seed=3)
    tests = [set(f.test) for f in split.folds]
    assert sorted(n for t in tests for n in t) == sorted(names)  # each sequence tested exactly once
    assert sorted(len(t) for t in tests) == [2] * 7 + [3] * 3
    for fold in split.folds:
        assert set(fold.train) == set(names) - set(fold.test)
    assert make_folds(reversed(names), k=10, seed=3) == split  # listing order does not matter
    assert make_folds(names, k=10, seed=4).folds != split.folds
    path = write_folds(tmp_path / "folds.json", split)
    assert read_folds(path) == split
    with pytest.raises(ValueError, match="cannot fill"):
        make_folds(names[:3], k=10)


def test_a_tampered_folds_file_is_refused(tmp_path):
    path = write_folds(tmp_path / "folds.json", make_folds([f"s{i}" for i in range(6)], k=3))
    data = json.loads(path.read_text())
    data["folds"][0]["test"].append(data["folds"][1]["test"][0])  # one sequence tested twice
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="exactly once"):
        read_folds(path)
    with pytest.raises(ValueError, match="fold 5 does not exist"):
        make_folds([f"s{i}" for i in range(6)], k=3).fold(5)


def test_train_folds_command_writes_what_training_reads(tmp_path, capsys):
    root = tmp_path / "vot"
    for i in range(4):
        write_vot_sequence(root, _sequence(f"clip{i}", seed=i))
    write_vot_list(root, [f"clip{i}" for i in range(4)])
    out = tmp_path / "folds.json"
    assert main(["train", "folds", str(root), "--k", "2", "--seed", "1", "--out", str(out)]) == 0
    split = read_folds(out)
    assert split.k == 2 and split.sequences == ("clip0", "clip1", "clip2", "clip3")
    assert split == make_folds(split.sequences, k=2, seed=1, dataset=str(root))
    assert main(["train", "folds", str(root), "--k", "5", "--out", str(out)]) == 2  # 4 sequences, 5 folds
    assert "cannot fill" in capsys.readouterr().err


def test_training_data_mixes_vot_davis_and_synthetic(tmp_path):
    vot, davis = tmp_path / "vot", tmp_path / "davis"
    write_vot_sequence(vot, _sequence("alpha", seed=1))
    write_vot_sequence(vot, _sequence("beta", seed=2))
    write_vot_list(vot, ["alpha", "beta"])
    write_davis_sequence(davis, _sequence("gamma", seed=3))
    write_davis_list(davis, ["gamma"])
    single = tmp_path / "single"
    write_vot_sequence(single, _sequence("delta", seed=4))

    sequences = training_sequences([vot, davis, single / "delta"], synthetic=2, synthetic_frames=8,
                                   exclude=["beta"])
    names = [s.name for s in sequences]
    assert names[:3] == ["alpha", "gamma", "delta"]
    assert len(names) == 5 and all(n.startswith("train-synth") for n in names[3:])
    assert len(sequences[3]) == 8
    # Synthetic sequences written to a folder come back identical, and are reused.
    folder = tmp_path / "synthetic"
    written = training_sequences(synthetic=2, synthetic_frames=8, synthetic_folder=folder)
    assert [s.name for s in written] == names[3:]
    assert np.array_equal(written[1].mask(5), sequences[4].mask(5))
    stamp = (folder / names[3] / "sequence").stat().st_mtime_ns
    training_sequences(synthetic=2, synthetic_frames=8, synthetic_folder=folder)
    assert (folder / names[3] / "sequence").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="unique"):
        training_sequences([vot, vot])
    with pytest.raises(ValueError, match="no training sequences"):
        training_sequences([davis], exclude=["gamma"])
    with pytest.raises(FileNotFoundError):
        training_sequences([tmp_path / "missing"])


def test_train_command_refuses_bad_arguments_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["train", "local", "--synthetic", "2", "--config", "huge", "--out", out]) == 2
    assert "unknown model configuration 'huge'" in capsys.readouterr().err
    assert main(["train", "local", "--synthetic", "2", "--folds", "f.json", "--out", out]) == 2
    assert "--folds and --fold go together" in capsys.readouterr().err
    assert main(["train", "iterative", "--synthetic", "2", "--synthetic-frames", "8", "--device", "cpu",
                 "--quiet", "--out", out]) == 2
    assert "at least 4 training sequences" in capsys.readouterr().err
    folds = write_folds(tmp_path / "folds.json", make_folds(["x1", "x2", "x3"], k=3))
    assert main(["train", "local", "--synthetic", "2", "--synthetic-frames", "8", "--device", "cpu",
                 "--folds", str(folds), "--fold", "0", "--out", out]) == 2
    assert "a split of another dataset" in capsys.readouterr().err
