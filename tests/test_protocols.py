"""evaluation.protocols and evaluation.results_cache with trackers and sequences of our own:
frames encode their index, so an oracle tracker can answer the exact ground truth."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from evaluation.metrics import PixelROC
from evaluation.protocols import (
    GT_ROI,
    TRACKING,
    TrackerSpec,
    evaluate_clips,
    evaluate_lengths,
    ground_truth_rois,
    load_checkpoint_map,
    plan_runs,
    resample_indices,
    run_tracker,
    sample_clips,
    score_run,
)
from evaluation.results_cache import Run, RunCache, RunKey, dequantise, quantise

# ----------------------------------------------------------------------------- helpers


class TinySequence:
    """A moving square on frames that carry their own index (pixel (0, 0), red = low byte,
    green = high byte) and their sequence's tag (pixel (0, 1)), so trackers can look up the
    ground truth of the frame they see."""

    def __init__(self, name: str, length: int, size: tuple[int, int] = (24, 32), empty: tuple[int, ...] = (),
                 speed: int = 1, side: int = 6):
        self.name = name
        self.frame_size = size
        self._length = length
        self._empty = set(empty)
        self._speed, self._side = speed, side
        self.frames_read: list[int] = []

    def __len__(self) -> int:
        return self._length

    def frame(self, index: int) -> np.ndarray:
        self.frames_read.append(index)
        frame = np.zeros((*self.frame_size, 3), dtype=np.uint8)
        frame[0, 0, 0], frame[0, 0, 1] = index % 256, index // 256
        frame[0, 1, 0] = sequence_tag(self.name)
        return frame

    def mask(self, index: int) -> np.ndarray:
        if not 0 <= index < self._length:
            raise IndexError(index)
        mask = np.zeros(self.frame_size, dtype=bool)
        if index not in self._empty:
            left = (2 + self._speed * index) % (self.frame_size[1] - self._side)
            mask[4 : 4 + self._side, left : left + self._side] = True
        return mask


def frame_index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


def sequence_tag(name: str) -> int:
    return zlib.crc32(name.encode()) % 256


class OracleTracker:
    """Answers the ground truth of the frame it is shown, scaled by `level` (1.0 = perfect;
    0.5 = a map that is right at threshold 0.4 and empty at 0.7)."""

    name = "oracle"

    def __init__(self, sequences, level: float = 1.0, fail_on: str | None = None):
        self.sequences = {sequence.name: sequence for sequence in sequences}
        self.level = level
        self.fail_on = fail_on
        self.calls = 0
        self.rois: list = []

    def init(self, frame, mask):
        (sequence,) = [s for s in self.sequences.values() if sequence_tag(s.name) == frame[0, 1, 0]]
        assert np.array_equal(sequence.mask(frame_index(frame)), mask)
        if sequence.name == self.fail_on:
            raise RuntimeError(f"tracker crashed on {sequence.name}")
        return sequence

    def track(self, frame, state, roi=None):
        self.calls += 1
        self.rois.append(roi)
        return state.mask(frame_index(frame)).astype(np.float32) * self.level, state


def oracle_spec(sequences, name="oracle", level=1.0, **kwargs) -> tuple[TrackerSpec, OracleTracker]:
    tracker = OracleTracker(sequences, level, **kwargs)
    return TrackerSpec(name, lambda checkpoint: tracker), tracker


# ----------------------------------------------------------------------------- resampling


def test_resample_indices_truncates_long_sequences():
    np.testing.assert_array_equal(resample_indices(100, 20), np.arange(21))
    np.testing.assert_array_equal(resample_indices(21, 20), np.arange(21))  # exactly L + 1 frames


def test_resample_indices_stretches_short_sequences_keeping_frame_0_for_init_only():
    # n = 5, L = 8: steps 1..8 are frames 1 + floor((k - 1) * 4 / 8).
    np.testing.assert_array_equal(resample_indices(5, 8), [0, 1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(resample_indices(2, 4), [0, 1, 1, 1, 1])
    for n, length in [(20, 20), (37, 160), (3, 20), (80, 81), (50, 160)]:
        indices = resample_indices(n, length)
        assert indices.size == length + 1 and indices[0] == 0
        assert (np.diff(indices) >= 0).all() and indices.max() <= n - 1
        assert 0 not in indices[1:]  # the initial frame, whose mask is given, is never scored
        assert set(indices[1:]) == set(range(1, n))  # every other frame is scored
        # Evenly: no frame repeated more than ceil(L / (n - 1)) times.
        assert np.bincount(indices[1:]).max() <= -(-length // (n - 1))


def test_resample_indices_rejects_unusable_input():
    with pytest.raises(ValueError, match="at least 2 frames"):
        resample_indices(1, 20)
    with pytest.raises(ValueError, match="at least 1"):
        resample_indices(10, 0)


def test_plan_runs_shares_one_run_between_prefix_lengths():
    plan = plan_runs(100, [20, 40, 80, 160])
    assert [(indices.size, sorted(served)) for indices, served in plan] == [(161, [160]), (81, [20, 40, 80])]
    plan = plan_runs(500, [20, 160, 40])
    assert len(plan) == 1 and sorted(plan[0][1]) == [20, 40, 160]


# ----------------------------------------------------------------------------- Table 2 ROIs


def _box(cx: float, cy: float = 50.0, side: float = 20.0) -> np.ndarray:
    return np.array([cx, cy, side])


def test_ground_truth_rois_smoothing_by_hand():
    # Object moving right by 10 px a step; box side 20 -> ROI side 40, clipped up to 56.
    boxes = [_box(100.0 + 10 * step) for step in range(9)]
    boxes[3] = None  # empty mask at step 3
    rois = ground_truth_rois(boxes)
    expected_cx = [100.0] * 6  # steps 0..5 use step 0's box: the ROI stays put
    expected_cx.append(0.2 * 100.0 + 0.8 * 110.0)  # step 6 <- box of step 1: 108
    expected_cx.append(0.2 * expected_cx[-1] + 0.8 * 120.0)  # step 7 <- step 2: 117.6
    expected_cx.append(expected_cx[-1])  # step 8 <- step 3 is empty: keep the previous ROI
    np.testing.assert_allclose(rois[:, 0], expected_cx)
    np.testing.assert_allclose(rois[:, 1], 50.0)
    np.testing.assert_allclose(rois[:, 2], 56.0)


def test_ground_truth_rois_side_follows_the_box_unsmoothed_and_clipped():
    boxes = [_box(200.0, side=30.0)] + [_box(200.0, side=side) for side in (100.0, 400.0, 30.0, 100.0, 100.0, 100.0, 400.0)]
    rois = ground_truth_rois(boxes, delay=1, smoothing=0.5)
    np.testing.assert_allclose(rois[:, 2], [60.0, 60.0, 200.0, 672.0, 60.0, 200.0, 200.0, 200.0])


def test_ground_truth_rois_needs_an_initial_object():
    with pytest.raises(ValueError, match="initial frame's mask is empty"):
        ground_truth_rois([None, _box(1.0)])


def test_table2_run_feeds_the_ground_truth_rois_and_table3_feeds_none():
    sequence = TinySequence("moving", 12, size=(40, 200), speed=7)
    spec, tracker = oracle_spec([sequence])
    indices = resample_indices(len(sequence), 10)
    run = run_tracker(tracker, sequence, indices, GT_ROI)
    # Object box of frame i: 6 px square at columns 2 + 7 i .. 8 + 7 i, rows 4..10.
    centres = [2 + 7 * i + 3.0 for i in range(12)]
    expected = [centres[0]]
    for step in range(1, 11):
        expected.append(0.2 * expected[-1] + 0.8 * centres[max(step - 5, 0)])
    np.testing.assert_allclose([roi[0] for roi in tracker.rois], expected[1:])
    np.testing.assert_allclose([roi[1:] for roi in tracker.rois], [[7.0, 56.0]] * 10)
    np.testing.assert_allclose(run.rois[:, 0], expected)
    tracker.rois.clear()
    run_tracker(tracker, sequence, indices, TRACKING)
    assert tracker.rois == [None] * 10


# ----------------------------------------------------------------------------- scoring


def test_scores_of_a_perfect_and_a_half_sure_oracle():
    sequence = TinySequence("a", 30, empty=(7,))
    for level, expected in [(1.0, [1.0, 1.0]), (0.5, [1.0, 0.0])]:
        _, tracker = oracle_spec([sequence], level=level)
        run = run_tracker(tracker, sequence, resample_indices(30, 20), TRACKING)
        ious = score_run(run, sequence, thresholds=(0.4, 0.7))
        assert ious.shape == (2, 20)
        # Step 7 shows an empty frame answered by an empty map: IoU 1 at both thresholds.
        np.testing.assert_allclose(ious[:, 6], [1.0, 1.0])
        np.testing.assert_allclose(np.delete(ious, 6, axis=1).mean(axis=1), expected)


def test_a_shifted_oracle_scores_its_overlap():
    class Shifted(OracleTracker):
        def track(self, frame, state, roi=None):
            prob, state = super().track(frame, state, roi)
            return np.roll(prob, 3, axis=1), state  # 6 px square shifted by 3: IoU 3 / 9

    sequence = TinySequence("s", 10)
    run = run_tracker(Shifted([sequence]), sequence, resample_indices(10, 5), TRACKING)
    np.testing.assert_allclose(score_run(run, sequence, (0.5,)), 1 / 3)


def test_scores_of_quantised_maps_equal_binarising_the_dequantised_maps():
    from evaluation.metrics import binarize, frame_iou

    sequence = TinySequence("q", 12)
    rng = np.random.default_rng(9)
    probs = rng.integers(0, 256, size=(11, 24, 32), dtype=np.uint8)
    probs[:, 4:10] = rng.integers(95, 110, size=(11, 6, 32))  # many levels right at 0.4
    run = Run("q", TRACKING, np.arange(12), probs)
    truth = np.stack([sequence.mask(i) for i in range(1, 12)])
    thresholds = (0.0, 0.4, 0.5, 0.7, 1.0)
    expected = [frame_iou(binarize(dequantise(probs), t), truth).numpy() for t in thresholds]
    np.testing.assert_array_equal(score_run(run, sequence, thresholds, batch=4), np.stack(expected))


def test_bad_tracker_output_and_bad_input_are_named():
    sequence = TinySequence("seq-x", 10)

    class WrongSize(OracleTracker):
        def track(self, frame, state, roi=None):
            return np.zeros((5, 5), dtype=np.float32), state

    with pytest.raises(ValueError, match=r"tracker 'oracle', sequence 'seq-x', step 1.*\(5, 5\).*\(24, 32\)"):
        run_tracker(WrongSize([sequence]), sequence, resample_indices(10, 5), TRACKING)

    class OutOfRange(OracleTracker):
        def track(self, frame, state, roi=None):
            return np.full((24, 32), 2.0, dtype=np.float32), state

    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        run_tracker(OutOfRange([sequence]), sequence, resample_indices(10, 5), TRACKING)

    blank_start = TinySequence("blank", 10, empty=(0,))
    with pytest.raises(ValueError, match="'blank'.*initial frame 0 has an empty mask"):
        run_tracker(OracleTracker([blank_start]), blank_start, resample_indices(10, 5), TRACKING)

    run = run_tracker(OracleTracker([sequence]), sequence, resample_indices(10, 5), TRACKING)
    with pytest.raises(ValueError, match="predictions are 32x24 but the ground truth is 33x24"):
        score_run(run, TinySequence("seq-x", 10, size=(24, 33)))
    with pytest.raises(ValueError, match="has 4 frames, but the predictions cover frame 5"):
        score_run(run, TinySequence("seq-x", 4))
    with pytest.raises(ValueError, match="test set is empty"):
        evaluate_lengths([oracle_spec([sequence])[0]], [], TRACKING)


# ----------------------------------------------------------------------------- cache


def test_quantisation_round_trip():
    prob = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(dequantise(quantise(prob)) - prob).max() <= 0.5 / 255 + 1e-7
    assert quantise(np.array([0.0, 1.0])).tolist() == [0, 255]


def test_cache_serves_repeats_and_prefixes_without_tracking(tmp_path):
    sequences = [TinySequence("long", 60), TinySequence("short", 15)]
    spec, tracker = oracle_spec(sequences)
    cache = RunCache(tmp_path)
    first = evaluate_lengths([spec], sequences, TRACKING, lengths=(40,), cache=cache, progress=False)
    calls = tracker.calls
    assert calls == 40 + 40  # "short" is stretched to 40 steps
    again = evaluate_lengths([spec], sequences, TRACKING, lengths=(40, 20), cache=cache, progress=False)
    # 40 from the cache; 20 of "long" is a prefix of its 40; 20 of "short" is a new stretch.
    assert tracker.calls == calls + 20
    by_key = {(s.sequence, s.length): s for s in again}
    np.testing.assert_array_equal(by_key[("long", 40)].ious, first[0].ious)
    assert by_key[("long", 20)].ious.shape == (2, 20)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.npz"))
    assert len(files) == 3 and all(f.startswith("oracle/default-") and "/dataset/tracking/" in f for f in files)


def test_a_crash_midway_keeps_the_sequences_already_done(tmp_path):
    sequences = [TinySequence("first", 12), TinySequence("second", 12), TinySequence("third", 12)]
    spec, tracker = oracle_spec(sequences, fail_on="second")
    cache = RunCache(tmp_path)
    with pytest.raises(RuntimeError, match="crashed on second"):
        evaluate_lengths([spec], sequences, GT_ROI, lengths=(10,), cache=cache, progress=False)
    assert tracker.calls == 10
    spec, tracker = oracle_spec(sequences)
    scores = evaluate_lengths([spec], sequences, GT_ROI, lengths=(10,), cache=cache, progress=False)
    assert tracker.calls == 20  # only "second" and "third" are tracked again
    assert [s.sequence for s in scores] == ["first", "second", "third"]
    np.testing.assert_allclose([s.mean() for s in scores], 1.0)


def test_cache_keys_separate_checkpoints_protocol_options_and_datasets(tmp_path):
    cache = RunCache(tmp_path)
    run = Run("s", TRACKING, np.arange(4), np.zeros((3, 2, 2), dtype=np.uint8))
    key = RunKey("t", "default", "d1", TRACKING, "s")
    cache.save(key, run)
    assert cache.load(key, np.arange(3)) is not None
    assert cache.load(key, np.array([0, 2])) is None  # not a prefix
    for other in (RunKey("t", "ckpt-abc", "d1", TRACKING, "s"), RunKey("t", "default", "d2", TRACKING, "s"),
                  RunKey("t", "default", "d1", GT_ROI, "s"), RunKey("u", "default", "d1", TRACKING, "s")):
        assert cache.load(other, np.arange(3)) is None
    assert RunCache(None).load(key, np.arange(3)) is None and RunCache(None).save(key, run) is None


def test_a_damaged_cache_file_is_tracked_again(tmp_path):
    sequences = [TinySequence("a", 12)]
    spec, tracker = oracle_spec(sequences)
    cache = RunCache(tmp_path)
    evaluate_lengths([spec], sequences, TRACKING, lengths=(10,), cache=cache, progress=False)
    (path,) = tmp_path.rglob("*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable cached run"):
        evaluate_lengths([spec], sequences, TRACKING, lengths=(10,), cache=cache, progress=False)
    assert tracker.calls == 20


# ----------------------------------------------------------------------------- k-fold


def test_each_sequence_is_tracked_with_its_folds_checkpoint(tmp_path):
    sequences = [TinySequence(name, 12) for name in ("a", "b", "c")]
    for fold in ("fold0", "fold1"):
        (tmp_path / f"{fold}.safetensors").write_bytes(fold.encode())
    (tmp_path / "folds.json").write_text(json.dumps({"folds": [
        {"test": ["a", "c"], "checkpoint": "fold0.safetensors"},
        {"test": ["b"], "checkpoint": "fold1.safetensors"},
    ]}))
    mapping = load_checkpoint_map(tmp_path / "folds.json")
    assert mapping == {"a": str(tmp_path / "fold0.safetensors"), "b": str(tmp_path / "fold1.safetensors"),
                       "c": str(tmp_path / "fold0.safetensors")}
    used: dict[str, str] = {}

    class Recording(OracleTracker):
        def __init__(self, checkpoint):
            super().__init__(sequences)
            self.checkpoint = checkpoint

        def init(self, frame, mask):
            state = super().init(frame, mask)
            used[state.name] = self.checkpoint
            return state

    spec = TrackerSpec("cv", Recording, mapping)
    cache = RunCache(tmp_path / "cache")
    evaluate_lengths([spec], sequences, TRACKING, lengths=(5,), cache=cache, progress=False)
    assert used == mapping
    # The checkpoint's content hash is part of the key: each fold's runs are stored apart.
    folders = {p.parents[4].name for p in (tmp_path / "cache").rglob("*.npz")}
    assert len(folders) == 2 and all(name.startswith("fold") for name in folders)
    with pytest.raises(ValueError, match="no entry for sequence 'd'"):
        evaluate_lengths([spec], [TinySequence("d", 12)], TRACKING, lengths=(5,), progress=False)


def test_cached_runs_of_a_fold_map_build_each_folds_tracker_once(tmp_path):
    """Keying cached runs needs the tracker's settings: with folds interleaved in the sequence
    order, three folds (more than the two trackers kept) are still built once each."""
    names = ["a", "b", "c", "d", "e", "f"]
    sequences = [TinySequence(name, 12) for name in names]
    mapping = {name: f"fold{index % 3}" for index, name in enumerate(names)}
    builds: list[str] = []

    def factory(checkpoint):
        builds.append(checkpoint)
        return OracleTracker(sequences)

    spec = TrackerSpec("cv", factory, mapping)
    spec.checkpoint_id_for = lambda sequence: spec.checkpoint_for(sequence)  # no files: the name is the id
    cache = RunCache(tmp_path / "cache")
    evaluate_lengths([spec], sequences, TRACKING, lengths=(5,), cache=cache, progress=False)
    built = len(builds)
    evaluate_lengths([spec], sequences, TRACKING, lengths=(5,), cache=cache, progress=False)  # all cached
    assert len(builds) == built
    assert [spec.settings_id_for(name) for name in names] == [spec.settings_id_for("a")] * 6
    assert sorted(set(builds)) == ["fold0", "fold1", "fold2"] and len(builds) == built


def test_a_tracker_with_other_settings_is_tracked_again_never_read_from_the_cache(tmp_path):
    """Runs are keyed by the tracker's `settings()`: changing a default (say, the fine-tuning
    of pixtrack-plus) tracks again; the same settings read the stored run."""
    sequences = [TinySequence("a", 12)]
    tracked: list[float] = []

    class Tunable(OracleTracker):
        def __init__(self, checkpoint, shift=0.0):
            super().__init__(sequences)
            self.shift = shift

        def settings(self):
            return {"shift": self.shift}

        def init(self, frame, mask):
            tracked.append(self.shift)
            return super().init(frame, mask)

    cache = RunCache(tmp_path / "cache")
    for shift in (0.0, 0.0, 0.5, 0.5, 0.0):
        spec = TrackerSpec("tunable", lambda checkpoint, shift=shift: Tunable(checkpoint, shift), None)
        evaluate_lengths([spec], sequences, TRACKING, lengths=(5,), cache=cache, progress=False)
    assert tracked == [0.0, 0.5]
    assert len({p.parents[3].name for p in (tmp_path / "cache").rglob("*.npz")}) == 2


def test_checkpoint_map_formats_and_errors(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"a": "/abs/a.safetensors", "b": "rel/b.safetensors"}))
    assert load_checkpoint_map(path) == {"a": "/abs/a.safetensors", "b": str(tmp_path / "rel/b.safetensors")}
    path.write_text(json.dumps({"folds": [{"test": ["a"], "checkpoint": "x"}, {"test": ["a"], "checkpoint": "y"}]}))
    with pytest.raises(ValueError, match="'a' is in two test folds"):
        load_checkpoint_map(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="map.json.*not valid JSON"):
        load_checkpoint_map(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_checkpoint_map(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- clips


def test_sample_clips_is_seeded_and_starts_on_a_visible_object():
    sequences = [TinySequence("long", 80, empty=tuple(range(10, 30))), TinySequence("short", 12)]
    clips = sample_clips(sequences, 50, length=32, seed=7)
    assert len(clips) == 50
    again = sample_clips(sequences, 50, length=32, seed=7)
    assert all(a.sequence == b.sequence and np.array_equal(a.indices, b.indices) for a, b in zip(clips, again))
    other = sample_clips(sequences, 50, length=32, seed=8)
    assert any(not np.array_equal(a.indices, b.indices) for a, b in zip(clips, other))
    by_name = {s.name: s for s in sequences}
    for clip in clips:
        assert clip.indices.size == 33
        assert by_name[clip.sequence].mask(int(clip.indices[0])).any()
        if clip.sequence == "short":
            np.testing.assert_array_equal(clip.indices, resample_indices(12, 32))
        else:
            np.testing.assert_array_equal(np.diff(clip.indices), 1)
    # Windows are drawn uniformly over all (sequence, start) pairs: "long" has 48, "short" 1.
    assert sum(clip.sequence == "long" for clip in clips) > 40


def test_clip_roc_and_framewise_iou_and_their_cache(tmp_path):
    sequences = [TinySequence("a", 50), TinySequence("b", 40)]
    clips = sample_clips(sequences, 6, length=8, seed=1)
    perfect, perfect_tracker = oracle_spec(sequences, name="perfect")

    class Blurred(OracleTracker):
        def track(self, frame, state, roi=None):
            prob, state = super().track(frame, state, roi)
            noise = np.random.default_rng(frame_index(frame)).random(prob.shape).astype(np.float32)
            return 0.3 * prob + 0.7 * noise, state

    blurred_tracker = Blurred(sequences)
    blurred = TrackerSpec("blurred", lambda checkpoint: blurred_tracker)
    cache = RunCache(tmp_path)
    results = evaluate_clips([perfect, blurred], sequences, clips, cache=cache, num_thresholds=1001, progress=False)
    assert results["perfect"].roc.auc() == pytest.approx(1.0)
    np.testing.assert_allclose(results["perfect"].framewise_iou(), 1.0)
    assert results["perfect"].framewise_iou().shape == (2, 8)
    # Reference ROC of the blurred maps, pooled over the same clips' frames 1..8.
    reference = PixelROC(1001)
    for clip in clips:
        sequence = {s.name: s for s in sequences}[clip.sequence]
        for index in clip.indices[1:]:
            mask = sequence.mask(int(index))
            noise = np.random.default_rng(int(index)).random(mask.shape).astype(np.float32)
            reference.update(np.float32(0.3) * mask.astype(np.float32) + np.float32(0.7) * noise, mask)
    assert results["blurred"].roc.auc() == pytest.approx(reference.auc(), abs=1e-12)
    assert 0.5 < results["blurred"].roc.auc() < 1.0
    calls = blurred_tracker.calls
    again = evaluate_clips([blurred], sequences, clips, cache=cache, num_thresholds=1001, progress=False)
    assert blurred_tracker.calls == calls  # histograms come back from the cache
    assert again["blurred"].roc.auc() == pytest.approx(results["blurred"].roc.auc(), abs=1e-12)


def test_default_checkpoint_id_follows_the_shipped_checkpoints(tmp_path, monkeypatch):
    import tracker.checkpoint

    from evaluation.results_cache import checkpoint_id

    monkeypatch.setattr(tracker.checkpoint, "CHECKPOINT_DIR", tmp_path)
    empty = checkpoint_id(None)
    (tmp_path / "two-stage-lite.safetensors").write_bytes(b"weights v1")
    first = checkpoint_id(None)
    (tmp_path / "two-stage-lite.safetensors").write_bytes(b"weights v2, retrained")
    second = checkpoint_id(None)
    assert len({empty, first, second}) == 3 and all(i.startswith("default-") for i in (empty, first, second))
    assert checkpoint_id(tmp_path / "two-stage-lite.safetensors").startswith("two-stage-lite-")
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        checkpoint_id(tmp_path / "nope.safetensors")


def test_checkpoint_id_is_the_content_whatever_order_safetensors_wrote_the_metadata_in(tmp_path):
    import torch
    from safetensors.torch import save_file

    from evaluation.results_cache import checkpoint_id

    def written(name: str, metadata: dict, header_order=None, values=(0.0, 1.0)):
        path = tmp_path / name
        path.parent.mkdir()
        save_file({"w": torch.tensor(values)}, str(path), metadata=metadata)
        if header_order is not None:  # the same header, its metadata in another order
            raw = path.read_bytes()
            length = int.from_bytes(raw[:8], "little")
            header = json.loads(raw[8:8 + length])
            header["__metadata__"] = {key: header["__metadata__"][key] for key in header_order}
            text = json.dumps(header, separators=(",", ":")).encode().ljust(length)
            path.write_bytes(raw[:8] + text + raw[8 + length:])
        return path

    metadata = {"kind": "two-stage", "settings": "{}", "trained_by": "test"}
    one = written("a/model.safetensors", metadata, header_order=["kind", "settings", "trained_by"])
    other = written("b/model.safetensors", metadata, header_order=["trained_by", "kind", "settings"])
    assert one.read_bytes() != other.read_bytes()
    assert checkpoint_id(one) == checkpoint_id(other)
    assert checkpoint_id(written("c/model.safetensors", metadata, values=(0.0, 2.0))) != checkpoint_id(one)
    assert checkpoint_id(written("d/model.safetensors", {**metadata, "kind": "fcn"})) != checkpoint_id(one)
