"""evaluation.ablations end to end at tiny scale: tiny synthetic sequences, the lite
configuration, a few iterations and clips, a cheap stand-in for VGG16 (tests/test_two_stage.py's).
Each ablation writes its table with the right rows and columns and its plots; the memory
variants give different maps on the same input."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch
from stand_ins import write_synthetic_vot_folds  # tests/ is on sys.path under pytest
from test_two_stage import TinyBackbone

from baselines.fcn import FCN, fcn_config, save_fcn
from evaluation.ablations import MEMORY_VARIANTS, ZeroMemoryInit, main, memory_variant
from tracker.checkpoint import save_checkpoint
from tracker.config import get_config
from tracker.data.synth import generate_sequence
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel

DPI = ["--dpi", "50"]  # the drawing is the same; 300 dpi costs seconds a figure on a busy CPU
CLIPS = ["--clips", "2", "--clip-length", "3", "--thresholds", "0.4", "0.7", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four 10-frame 96x72 synthetic sequences as VOT, and two folds of them."""
    return write_synthetic_vot_folds(tmp_path_factory.mktemp("ablation-data"), 4, 10, seed=100, prefix="tiny")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Freshly initialised lite checkpoints: a two-stage one and an FCN."""
    root = tmp_path_factory.mktemp("ablation-checkpoints")
    config = get_config("lite")
    torch.manual_seed(0)
    two_stage = save_checkpoint(root / "two-stage-lite.safetensors", "two-stage", config,
                                {"local": LocalModel(config.local, backbone=TinyBackbone()),
                                 "global": GlobalModel(config.global_)})
    fcn = save_fcn(root / "fcn-lite.safetensors", FCN(fcn_config("lite"), backbone=TinyBackbone()))
    return two_stage, fcn


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _assert_plots(out, *stems):
    for stem in stems:
        for suffix in (".png", ".pdf"):
            path = out / f"{stem}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path


def _check_clip_table(out, name, variants, stdout):
    rows = _rows(out / f"{name}.csv")
    assert list(rows[0]) == ["variant", "auc", "mean_iou_0.4", "mean_iou_0.7"]
    assert [row["variant"] for row in rows] == list(variants)
    for row in rows:
        assert 0.0 <= float(row["auc"]) <= 1.0
        assert 0.0 <= float(row["mean_iou_0.4"]) <= 1.0 and 0.0 <= float(row["mean_iou_0.7"]) <= 1.0
    assert "| variant | AUC | mean IoU @0.4 | mean IoU @0.7 |" in stdout
    for variant in variants:
        assert f"| {variant} | " in stdout
    _assert_plots(out, f"{name}_roc", f"{name}_framewise_iou")


def test_zero_memory_wrapper_starts_from_zeros_and_steps_the_same_model():
    config = get_config("lite")
    torch.manual_seed(0)
    local = LocalModel(config.local, backbone=TinyBackbone()).eval()
    wrapped = ZeroMemoryInit(local)
    image = torch.rand(1, 3, 224, 224) * 255
    mask = torch.zeros(1, 1, 224, 224)
    mask[..., 80:140, 90:150] = 1
    with torch.no_grad():
        zero = wrapped.init_memory(image, mask)
        assert all(float(t.abs().max()) == 0.0 for pair in zero for t in pair)
        learned = local.init_memory(image, mask)
        assert any(float(t.abs().max()) > 0.0 for pair in learned for t in pair)
        assert torch.equal(wrapped.step(image, zero)[0], local.step(image, zero)[0])
    assert wrapped.config is local.config
    assert list(wrapped.state_dict()) == [f"model.{key}" for key in local.state_dict()]


def test_memory_variants_give_different_maps_on_the_same_input(checkpoints):
    two_stage, _ = checkpoints
    sequence = generate_sequence(7, 3, 96, 72, name="probe")
    maps = {}
    for variant in MEMORY_VARIANTS:
        tracker = memory_variant(str(two_stage), variant, "cpu", backbone=TinyBackbone())
        state = tracker.init(sequence.frame(0), sequence.mask(0))
        maps[variant], _ = tracker.track(sequence.frame(1), state)
    learned, zero = (maps[v] for v in MEMORY_VARIANTS)
    assert learned.shape == zero.shape == (72, 96)
    assert float(np.abs(learned - zero).max()) > 1e-4


def test_memory_ablation_end_to_end(dataset, checkpoints, tmp_path, capsys):
    sequences, folds = dataset
    two_stage, _ = checkpoints
    out = tmp_path / "memory"
    code = main(["memory", "--dataset", str(sequences), "--folds", str(folds), "--fold", "0",
                 "--checkpoint", str(two_stage), "--out", str(out), "--lengths", "4", *CLIPS, *DPI],
                backbone=TinyBackbone())
    captured = capsys.readouterr()
    assert code == 0, captured.err
    _check_clip_table(out, "memory", MEMORY_VARIANTS, captured.out)
    # --lengths adds Table 2 (the memory ablation's default protocol gives ground-truth ROIs).
    table = _rows(out / "table2.csv")
    assert [(r["threshold"], r["tracker"]) for r in table] == [
        ("0.4", "learned init"), ("0.4", "zero init"), ("0.7", "learned init"), ("0.7", "zero init")]
    assert all(r["table"] == "2" and "4" in r for r in table)
    assert "Memory initialisation: learned vs zeros: Table 2" in captured.out
    assert any((out / "cache").rglob("*.npz"))


def test_an_ablations_runs_spread_over_workers_give_the_same_tables(dataset, checkpoints, tmp_path, capsys):
    sequences, folds = dataset
    two_stage, _ = checkpoints
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"workers-{workers}"
        code = main(["memory", "--dataset", str(sequences), "--folds", str(folds), "--fold", "0",
                     "--checkpoint", str(two_stage), "--out", str(out), "--lengths", "4", *CLIPS, *DPI,
                     "--eval-workers", workers, "--eval-threads", "1"], backbone=TinyBackbone())
        captured = capsys.readouterr()
        assert code == 0, captured.err
        outputs[workers] = {name: (out / name).read_bytes() for name in ("memory.csv", "table2.csv")}
    # The pool's report: the workers tracked the runs (the variants' factories went to them).
    assert re.search(r"\d+ runs: 0 cached, [1-9]\d* tracked", captured.err), captured.err
    assert "cannot be sent" not in captured.err
    assert outputs["1"] == outputs["2"]


@pytest.mark.slow
def test_trackers_ablation_end_to_end(dataset, checkpoints, tmp_path, capsys):
    sequences, folds = dataset
    two_stage, fcn = checkpoints
    out = tmp_path / "trackers"
    code = main(["trackers", "--dataset", str(sequences), "--folds", str(folds), "--fold", "1",
                 "--checkpoint", f"two-stage={two_stage}", "--checkpoint", f"fcn={fcn}", "--fcn-iterations", "1",
                 "--lengths", "3", "5", "--out", str(out), *CLIPS, *DPI], backbone=TinyBackbone())
    captured = capsys.readouterr()
    assert code == 0, captured.err
    labels = ("pixtrack", "pixtrack-1stage", "pixtrack-fcn (tuned 1 it.)")
    _check_clip_table(out, "trackers", labels, captured.out)
    table = _rows(out / "table3.csv")
    assert list(table[0]) == ["table", "threshold", "tracker", "source", "3", "5",
                              "ci_low_3", "ci_high_3", "ci_low_5", "ci_high_5"]
    assert all(r["ci_low_3"] == "" for r in table)  # two held-out sequences: no interval
    assert [r["tracker"] for r in table] == [*labels, *labels]
    assert all(0.0 <= float(r[length]) <= 1.0 for r in table for length in ("3", "5"))
    assert (out / "table3.tex").is_file()
    _assert_plots(out, "table3_iou_over_time_L5")
    assert "| threshold 0.4 | 3 | 5 |" in captured.out
    # --clips 0: the length table alone, the same rows from the same runs; no clip outputs.
    alone = tmp_path / "lengths-alone"
    code = main(["trackers", "--dataset", str(sequences), "--folds", str(folds), "--fold", "1",
                 "--checkpoint", f"two-stage={two_stage}", "--checkpoint", f"fcn={fcn}", "--fcn-iterations", "1",
                 "--lengths", "3", "5", "--out", str(alone), "--cache", str(out / "cache"),
                 "--clips", "0", *CLIPS[2:], *DPI], backbone=TinyBackbone())
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert _rows(alone / "table3.csv") == table
    assert not (alone / "trackers.csv").exists() and "ROC AUC" not in captured.out


@pytest.mark.slow
def test_insertion_ablation_trains_both_variants_and_compares_them(dataset, tmp_path, capsys):
    sequences, folds = dataset
    out = tmp_path / "insertion"
    argv = ["insertion", "--dataset", str(sequences), "--folds", str(folds), "--fold", "0", "--out", str(out),
            "--config", "lite", "--threads", "1", "--workers", "0", "--clip-frames", "3",
            "--clips-per-sequence", "1", "--views", "1", "--local-iterations", "2", "--local-batch", "2",
            *CLIPS, *DPI]
    code = main(argv, backbone=TinyBackbone())
    captured = capsys.readouterr()
    assert code == 0, captured.err
    _check_clip_table(out, "insertion", ("with insertion", "without insertion"), captured.out)
    settings = {}
    for variant in ("with-insertion", "without-insertion"):
        assert (out / "train" / variant / "local.safetensors").is_file()
        manifest = json.loads((out / "train" / variant / "run-local.json").read_text())
        settings[variant] = manifest["settings"]
        # Trained on fold 0's training sequences only.
        assert manifest["sequences"] == sorted(json.loads(folds.read_text())["folds"][0]["train"])
    # The same settings but for the insertion switch.
    assert settings["with-insertion"]["clip"].pop("insert_noise") is True
    assert settings["without-insertion"]["clip"].pop("insert_noise") is False
    assert settings["with-insertion"] == settings["without-insertion"]
    # A rerun resumes: both models are there, so nothing trains again (and runs are re-read).
    stamps = {v: (out / "train" / v / "local.safetensors").stat().st_mtime_ns for v in settings}
    assert main(argv, backbone=TinyBackbone()) == 0
    assert stamps == {v: (out / "train" / v / "local.safetensors").stat().st_mtime_ns for v in settings}


@pytest.mark.slow
def test_synthesis_ablation_adds_only_synthesised_clips_of_the_training_sequences(dataset, tmp_path, capsys):
    sequences, folds = dataset
    out = tmp_path / "synthesis"
    argv = ["synthesis", "--dataset", str(sequences), "--folds", str(folds), "--fold", "0", "--out", str(out),
            "--synthesize", "3", "--synthesize-frames", "6", "--config", "lite", "--threads", "1", "--workers", "0",
            "--clip-frames", "3", "--clips-per-sequence", "1", "--views", "1", "--local-iterations", "2",
            "--local-batch", "2", *CLIPS, *DPI]
    code = main(argv, backbone=TinyBackbone())
    captured = capsys.readouterr()
    assert code == 0, captured.err
    _check_clip_table(out, "synthesis", ("real clips", "real + 3 synthesised"), captured.out)
    manifests = {variant: json.loads((out / "train" / variant / "run-local.json").read_text())
                 for variant in ("real-clips", "real-+-3-synthesised")}
    train = sorted(json.loads(folds.read_text())["folds"][0]["train"])
    assert manifests["real-clips"]["sequences"] == train
    added = sorted(set(manifests["real-+-3-synthesised"]["sequences"]) - set(train))
    assert added == [f"synthesized-s0-{index:05d}" for index in range(3)]
    # Trained alike otherwise: the same settings, and the held-out sequences in neither.
    assert manifests["real-clips"]["settings"] == manifests["real-+-3-synthesised"]["settings"]


@pytest.mark.slow
def test_engine_ablation_trains_each_part_alike_and_reuses_the_synthesis_rows(dataset, tmp_path, capsys):
    sequences, folds = dataset
    out, store = tmp_path / "engine", tmp_path / "store"
    common = ["--dataset", str(sequences), "--folds", str(folds), "--fold", "0", "--out", str(out),
              "--synthesize", "2", "--synthesize-frames", "6", "--config", "lite", "--threads", "1", "--workers", "0",
              "--clip-frames", "3", "--clips-per-sequence", "1", "--views", "1", "--local-iterations", "2",
              "--local-batch", "2", *CLIPS, *DPI]
    # The synthesis ablation's two rows first: the engine ablation in the same OUT reuses them.
    assert main(["synthesis", *common], backbone=TinyBackbone()) == 0
    cached = {v: (out / "train" / v / "local.safetensors").stat().st_mtime_ns
              for v in ("real-clips", "real-+-2-synthesised")}
    capsys.readouterr()
    assert main(["engine", *common, "--feature-store", str(store)], backbone=TinyBackbone()) == 0
    captured = capsys.readouterr()
    labels = ("real clips", "store-fed real clips", "real + 2 synthesised", "store-fed real + 2 synthesised")
    _check_clip_table(out, "engine", labels, captured.out)
    assert cached == {v: (out / "train" / v / "local.safetensors").stat().st_mtime_ns for v in cached}
    manifests = {label: json.loads((out / "train" / label.replace(" ", "-") / "run-local.json").read_text())
                 for label in labels}
    # Trained alike but for the feature source: the store rows on the cached rows' sequences.
    for real, fed in ((labels[0], labels[1]), (labels[2], labels[3])):
        assert manifests[real] == manifests[fed]
    train = sorted(json.loads(folds.read_text())["folds"][0]["train"])
    assert manifests[labels[1]]["sequences"] == train and manifests[labels[3]]["sequences"] != train
    # One store where --feature-store says, each sequence in it once: both store rows read the
    # real sequences' features from the same folders.
    assert sorted(p.name for p in store.iterdir()) == ["frames", "starts"]
    (frames,) = (store / "frames").iterdir()
    stored = sorted(p.name.rsplit("-", 1)[0] for p in frames.iterdir() if p.is_dir())
    assert stored == sorted([*train, "synthesized-s0-00000", "synthesized-s0-00001"])
    training = _rows(out / "engine_training.csv")
    assert [r["variant"] for r in training] == list(labels)
    assert all(float(r["training_seconds"]) > 0 and float(r["cpu_seconds"]) > 0 for r in training)
    assert re.search(r"\| store-fed real clips \| \d+\.\d \| \d+\.\d \|", captured.out)


@pytest.mark.slow
def test_options_ablation_trains_each_configuration_on_one_set_of_clips(dataset, checkpoints, tmp_path, capsys,
                                                                         monkeypatch):
    from tracker.training import feature_cache

    shared = []
    original = feature_cache.share_feature_cache
    monkeypatch.setattr(feature_cache, "share_feature_cache",
                        lambda source, target: shared.append((source.parent.parent.name, original(source, target)))
                        or shared[-1][1])
    sequences, folds = dataset
    two_stage, _ = checkpoints
    out = tmp_path / "options"
    argv = ["options", "--dataset", str(sequences), "--folds", str(folds), "--fold", "0", "--out", str(out),
            "--configs", "lite", "lite+prior+align", "--trackers", "pixtrack", "--global-from", str(two_stage),
            "--threads", "1",
            "--workers", "0", "--clip-frames", "3", "--clips-per-sequence", "1", "--views", "1",
            "--local-iterations", "2", "--local-batch", "2", "--lengths", "3", *CLIPS, *DPI]
    code = main(argv, backbone=TinyBackbone())
    captured = capsys.readouterr()
    assert code == 0, captured.err
    _check_clip_table(out, "options", ("lite", "lite+prior+align"), captured.out)
    assert [r["tracker"] for r in _rows(out / "table3.csv")] == ["lite", "lite+prior+align"] * 2
    # The second configuration trained on the first one's cached clips: the backbone ran once.
    assert shared == [("lite", True)]
    training = _rows(out / "options_training.csv")
    assert [(r["configuration"], r["options"]) for r in training] == [
        ("lite", "none (Table 1)"), ("lite+prior+align", "previous_map_prior+align_state")]
    assert all(float(r["training_seconds"]) > 0 for r in training)
    assert "| lite+prior+align | previous_map_prior+align_state |" in captured.out
    settings = {}
    for name in ("lite", "lite+prior+align"):
        folder = out / "train" / name
        assert (folder / f"two-stage-{name}.safetensors").is_file() and not (folder / "cache").exists()
        settings[name] = json.loads((folder / "run-local.json").read_text())["settings"]
    # Trained alike but for the configuration.
    assert settings["lite"].pop("config") == "lite" and settings["lite+prior+align"].pop("config") == "lite+prior+align"
    assert settings["lite"] == settings["lite+prior+align"]
    # A rerun trains nothing again and reports the first run's training times.
    stamps = {n: (out / "train" / n / "local.safetensors").stat().st_mtime_ns for n in settings}
    assert main(argv, backbone=TinyBackbone()) == 0
    assert stamps == {n: (out / "train" / n / "local.safetensors").stat().st_mtime_ns for n in settings}
    assert _rows(out / "options_training.csv") == training
    assert shared == [("lite", True)]  # no cache left to share: none was needed
    # Tracked as pixtrack-plus too (fine-tuned on the first frame): more rows, nothing retrained.
    at, configs = argv.index("--trackers") + 1, argv.index("--configs") + 1
    tuned = [*argv[:configs], "lite", *argv[configs + 2:at], "pixtrack", "pixtrack-plus", *argv[at + 1:]]
    assert main(tuned, backbone=TinyBackbone()) == 0
    assert [r["tracker"] for r in _rows(out / "table3.csv")] == ["lite", "lite (tuned)"] * 2
    assert stamps == {n: (out / "train" / n / "local.safetensors").stat().st_mtime_ns for n in settings}
    # Rows added later share one new cache: the first new row builds it, the next reuses it.
    added = [*argv[:configs], "lite", "lite+align", "lite+prior-pool4", *argv[configs + 2:]]
    assert main(added, backbone=TinyBackbone()) == 0
    assert shared[1:] == [("lite+align", True)]
    assert [r["configuration"] for r in _rows(out / "options_training.csv")] == ["lite", "lite+align",
                                                                                "lite+prior-pool4"]


@pytest.mark.parametrize("argv, message", [
    (["insertion", "--dataset", "{sequences}", "--out", "{out}"], "held-out sequences"),
    (["insertion", "--dataset", "{sequences}", "--folds", "{folds}", "--fold", "0", "--out", "{out}", "--no-insert"],
     "--no-insert"),
    (["synthesis", "--dataset", "{sequences}", "--folds", "{folds}", "--fold", "0", "--out", "{out}"],
     "--synthesize"),
    (["engine", "--dataset", "{sequences}", "--folds", "{folds}", "--fold", "0", "--out", "{out}", "--parts", "store"],
     "--feature-store DIR"),
    (["engine", "--dataset", "{sequences}", "--folds", "{folds}", "--fold", "0", "--out", "{out}",
      "--parts", "synthesis"], "--synthesize N >= 1"),
    (["memory", "--dataset", "{sequences}", "--checkpoint", "/nonexistent.safetensors", "--out", "{out}"],
     "/nonexistent.safetensors"),
    (["trackers", "--dataset", "{sequences}", "--folds", "{folds}", "--out", "{out}"], "--folds and --fold"),
    (["trackers", "--dataset", "{sequences}", "--trackers", "siamese", "--out", "{out}"], "siamese"),
    (["trackers", "--dataset", "{sequences}", "--out", "{out}", "--clips", "0", "--lengths"], "--clips 0"),
    (["options", "--dataset", "{sequences}", "--folds", "{folds}", "--fold", "0", "--out", "{out}",
      "--global-from", "/nonexistent.safetensors", "--configs", "lite", "huge"], "unknown model configuration 'huge'"),
])
def test_bad_input_is_one_line_naming_it(dataset, tmp_path, capsys, argv, message):
    sequences, folds = dataset
    argv = [a.format(sequences=sequences, folds=folds, out=tmp_path / "out") for a in argv]
    assert main(argv, backbone=TinyBackbone()) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
