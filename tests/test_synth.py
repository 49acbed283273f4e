"""The synthetic benchmark: deterministic bytes, every challenge present and truthfully tagged,
not solvable by colour, readable by our readers and by the VOT toolkit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tracker.cli import main
from tracker.data import load_dataset, load_sequence
from tracker.data.synth import (
    BENCHMARK,
    DEFAULT_FRAMES,
    DEFAULT_SEQUENCES,
    benchmark_plan,
    generate_benchmark,
    generate_sequence,
)

# What each of the first six sequences must exercise (its tags), whatever the seed.
EXPECTED = {
    "deform": {"deformation", "camera_motion", "illum_change"},
    "occlude": {"occlusion", "full_occlusion", "distractors"},
    "fast": {"fast_motion", "jump", "motion_blur", "motion_change"},
    "small": {"small_target", "distractors", "camera_motion"},
    "depth": {"size_change", "deformation", "illum_change"},
    "mixed": {"deformation", "size_change", "occlusion", "full_occlusion", "distractors", "camera_motion",
              "motion_blur", "jump"},
}


def small(label: str, seed: int, frames: int = 24):
    """A preset's scenario rendered at half its size (same code path, quicker)."""
    _, (width, height), scenario = next(entry for entry in BENCHMARK if entry[0] == label)
    return generate_sequence(seed, frames, width // 2, height // 2, name=label, **scenario)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_sequence_other_seed_other_sequence():
    first = generate_sequence(5, 6, 96, 64, deformation=0.3, distractors=1, motion_blur=0.5, speed=0.04)
    again = generate_sequence(5, 6, 96, 64, deformation=0.3, distractors=1, motion_blur=0.5, speed=0.04)
    other = generate_sequence(6, 6, 96, 64, deformation=0.3, distractors=1, motion_blur=0.5, speed=0.04)
    for index in range(6):
        assert np.array_equal(first.frame(index), again.frame(index))
        assert np.array_equal(first.mask(index), again.mask(index))
    assert first.tags.keys() == again.tags.keys() and all(
        np.array_equal(first.tags[t], again.tags[t]) for t in first.tags
    )
    assert not np.array_equal(first.frame(0), other.frame(0))


def test_benchmark_files_are_identical_bytes_for_a_seed(tmp_path):
    generate_benchmark(tmp_path / "a", sequences=2, frames=8, seed=3)
    generate_benchmark(tmp_path / "b", sequences=2, frames=8, seed=3)
    first, second = files(tmp_path / "a"), files(tmp_path / "b")
    assert first.keys() == second.keys() and len(first) > 20
    assert all(first[name] == second[name] for name in first), [n for n in first if first[n] != second[n]]
    generate_benchmark(tmp_path / "c", sequences=1, frames=8, seed=4)
    assert files(tmp_path / "c")["synth00-deform/color/00000001.jpg"] != first["synth00-deform/color/00000001.jpg"]


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_each_preset_exercises_its_challenges_and_starts_visible(label):
    for seed in (1, 2):
        sequence = small(label, seed)
        present = set(sequence.metadata["challenges"].split(","))
        assert EXPECTED[label] <= present, (seed, EXPECTED[label] - present)
        assert present == {tag for tag, flags in sequence.tags.items() if flags.any()}
        assert sequence.mask(0).any() and not sequence.tags["occlusion"][0]


def test_tags_tell_the_truth_about_the_ground_truth():
    sequence = small("mixed", 3, frames=32)
    height, width = sequence.frame_size
    areas = np.array([sequence.mask(i).sum() for i in range(len(sequence))])
    full = sequence.tags["full_occlusion"]
    assert full.any() and np.all(areas[full] == 0)  # full occlusion = empty ground truth
    assert np.all(sequence.tags["occlusion"][full])
    visible_small = sequence.tags["small_target"] & ~sequence.tags["occlusion"]
    assert np.all(areas[visible_small] < 0.03 * width * height)
    assert not sequence.tags["jump"][0] and not sequence.tags["camera_motion"][0]


def test_benchmark_plan_spans_sizes_and_aspect_ratios():
    plan = benchmark_plan(DEFAULT_SEQUENCES, 0)
    sizes = [size for _, size, _, _ in plan]
    assert (320, 240) in sizes and (1280, 720) in sizes
    ratios = {round(w / h, 2) for w, h in sizes}
    assert {1.33, 1.78} <= ratios and any(r < 1 for r in ratios)  # 4:3, 16:9 and portrait
    assert [name for name, _, _, _ in plan] == [f"synth{i:02d}-{label}" for i, (label, _, _) in enumerate(BENCHMARK)]
    extra = benchmark_plan(10, 0)
    assert extra[:6] == plan and all(name.endswith("-random") for name, _, _, _ in extra[6:])
    assert benchmark_plan(10, 0) == extra and benchmark_plan(10, 1)[6:] != extra[6:]


def oracle_colour_iou(frame: np.ndarray, mask: np.ndarray) -> float:
    """The best IoU any set of colours (8 levels a channel) can reach, chosen knowing the answer."""
    bins = (frame // 32).astype(int)
    index = bins[..., 0] * 64 + bins[..., 1] * 8 + bins[..., 2]
    target = np.bincount(index[mask], minlength=512).astype(float)
    background = np.bincount(index[~mask], minlength=512).astype(float)
    order = np.argsort(-target / (target + background + 1e-9))
    return float(np.max(np.cumsum(target[order]) / (mask.sum() + np.cumsum(background[order]))))


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_targets_and_background_are_textured_and_colour_cannot_separate_them(label):
    """Frames without motion blur (blur mixes a target's colours into new ones, as in life)."""
    sequence = small(label, 4, frames=8)
    checked = 0
    for index in range(len(sequence)):
        frame, mask = sequence.frame(index), sequence.mask(index)
        if sequence.tags["motion_blur"][index] or not mask.any():
            continue
        assert oracle_colour_iou(frame, mask) < 0.5, index
        grey = frame.astype(float).mean(axis=2)
        assert grey[mask].std() > 12 and grey[~mask].std() > 12, index  # no flat colours
        checked += 1
    assert checked >= 1  # frame 0 at least


def test_scenario_errors_are_raised_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown scenario key\\(s\\) wobble; known: camera_pan, deformation"):
        generate_sequence(0, 4, 64, 48, wobble=1)
    with pytest.raises(ValueError, match=r"scenario target_size=0.9 is outside \[0.002, 0.3\]"):
        generate_sequence(0, 4, 64, 48, target_size=0.9)
    with pytest.raises(ValueError, match="scenario distractors=1.5 must be a whole number"):
        generate_sequence(0, 4, 64, 48, distractors=1.5)
    with pytest.raises(ValueError, match="occlusion and jumps need at least 8 frames"):
        generate_sequence(0, 4, 64, 48, occlusion=True)
    with pytest.raises(ValueError, match="at least 2 frames"):
        generate_sequence(0, 1, 64, 48)
    with pytest.raises(ValueError, match="layout must be 'vot' or 'davis'"):
        generate_benchmark(tmp_path / "x", layout="coco")
    with pytest.raises(ValueError, match="at least 8 frames a sequence"):
        generate_benchmark(tmp_path / "x", frames=4)
    assert not (tmp_path / "x").exists()


def test_cli_defaults_match_the_library():
    from tracker.commands import synth as command

    assert (command.DEFAULT_SEQUENCES, command.DEFAULT_FRAMES) == (DEFAULT_SEQUENCES, DEFAULT_FRAMES)


def test_cli_writes_vot_sequences_the_toolkit_loads(tmp_path, capsys):
    dst = tmp_path / "sequences"
    assert main(["synth", str(dst), "--sequences", "2", "--frames", "8", "--seed", "7"]) == 0
    assert (dst / "list.txt").read_text() == "synth00-deform\nsynth01-occlude\n"
    ours = load_dataset(dst)
    properties = (dst / "synth01-occlude" / "sequence").read_text()
    assert "width=320" in properties and "challenges=" in properties and "seed=" in properties
    assert (dst / "synth00-deform" / "deformation.tag").read_text().split() == ["1"] * 8

    from vot.dataset import load_dataset as vot_load_dataset

    theirs = vot_load_dataset(str(dst))
    for sequence in ours:
        toolkit = theirs[sequence.name]
        height, width = sequence.frame_size
        assert (toolkit.width, toolkit.height, len(toolkit)) == (width, height, len(sequence))
        for index in range(len(sequence)):
            region = toolkit.groundtruth(index).rasterize((0, 0, width - 1, height - 1)).astype(bool)
            assert np.array_equal(region, sequence.mask(index))
        assert set(toolkit.tags(0)) == {t for t, flags in sequence.tags.items() if flags[0]}
    capsys.readouterr()
    assert main(["synth", str(dst), "--sequences", "2", "--frames", "8", "--seed", "7"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_benchmark_extends_an_existing_list(tmp_path):
    from tracker.data import write_vot_list

    write_vot_list(tmp_path, ["mine"])
    generate_benchmark(tmp_path, sequences=1, frames=8)
    assert (tmp_path / "list.txt").read_text() == "mine\nsynth00-deform\n"


def test_davis_layout_round_trips_masks_and_tags(tmp_path):
    dst = tmp_path / "davis"
    names = generate_benchmark(dst, sequences=2, frames=8, seed=2, layout="davis")
    assert (dst / "ImageSets" / "2017" / "val.txt").read_text().split() == names
    expected = generate_sequence(benchmark_plan(2, 2)[1][3], 8, 320, 240, **BENCHMARK[1][2])
    loaded = {s.name: s for s in load_dataset(dst, "val")}
    sequence = loaded["synth01-occlude"]
    assert sequence.frame_size == (240, 320)
    for index in range(8):
        assert np.array_equal(sequence.mask(index), expected.mask(index))
        assert np.abs(sequence.frame(index).astype(int) - expected.frame(index)).mean() < 3
    assert all(np.array_equal(sequence.tags[t], expected.tags[t]) for t in expected.tags)
    assert sequence.metadata["challenges"] == expected.metadata["challenges"]
    assert load_sequence(dst / "JPEGImages" / "480p" / "synth00-deform").name == "synth00-deform"

    from vot.dataset import load_dataset as vot_load_dataset

    from vot.region import Special

    toolkit = vot_load_dataset(str(dst))["synth01-occlude"]  # the toolkit's DAVIS loader
    (object_id,) = toolkit.objects()
    for index in range(8):
        region = toolkit.object(object_id, index)  # "unknown" where the mask is empty
        if isinstance(region, Special):
            assert not expected.mask(index).any()
        else:
            assert np.array_equal(region.rasterize((0, 0, 319, 239)).astype(bool), expected.mask(index))


@pytest.mark.slow
def test_default_benchmark_covers_every_challenge_and_the_toolkit_loads_it(tmp_path):
    names = generate_benchmark(tmp_path, seed=0)
    assert len(names) == DEFAULT_SEQUENCES
    sequences = load_dataset(tmp_path)
    present = set()
    for sequence in sequences:
        assert len(sequence) == DEFAULT_FRAMES and sequence.mask(0).any()
        present |= set(sequence.metadata["challenges"].split(","))
    assert present == {
        "camera_motion", "illum_change", "motion_change", "occlusion", "size_change", "deformation",
        "fast_motion", "jump", "full_occlusion", "distractors", "motion_blur", "small_target",
    }
    from vot.dataset import load_dataset as vot_load_dataset

    assert sorted(vot_load_dataset(str(tmp_path)).keys()) == sorted(names)


@pytest.mark.slow
def test_speed_100_frames_at_640x360():
    start = time.perf_counter()
    generate_sequence(0, 100, 640, 360, **BENCHMARK[0][2])
    elapsed = time.perf_counter() - start
    print(f"100 frames at 640x360 in {elapsed:.2f} s")
    assert elapsed < 20  # a few seconds on one free core; generous for shared CI machines
