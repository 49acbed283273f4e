"""evaluation.metrics against independent references: numpy, the VOT toolkit's own overlap,
sklearn's ROC, and hand-made boundary cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluation.metrics import (
    PixelROC,
    auc,
    binarize,
    boundary_f,
    boundary_map,
    davis_statistics,
    frame_iou,
    j_decay,
    j_mean,
    j_recall,
    roc_curve,
)


def _random_masks(rng: np.random.Generator, count: int, height: int, width: int) -> np.ndarray:
    """Blobs of random density, some frames empty, so every IoU regime is exercised."""
    density = rng.uniform(0.0, 0.6, size=(count, 1, 1))
    masks = rng.random((count, height, width)) < density
    masks[rng.random(count) < 0.2] = False
    return masks


def _numpy_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else np.logical_and(pred, gt).sum() / union


# ----------------------------------------------------------------------------- frame_iou


def test_frame_iou_matches_numpy_reference_batched():
    rng = np.random.default_rng(1)
    pred = _random_masks(rng, 24, 17, 23)
    gt = _random_masks(rng, 24, 17, 23)
    gt[:3] = False  # empty vs non-empty and empty vs empty among them
    pred[0] = False
    pred[1, 4, 4] = True
    expected = np.array([_numpy_iou(p, g) for p, g in zip(pred, gt)])
    got = frame_iou(torch.from_numpy(pred).reshape(4, 6, 17, 23), torch.from_numpy(gt).reshape(4, 6, 17, 23))
    assert got.shape == (4, 6)
    np.testing.assert_allclose(got.reshape(-1).numpy(), expected, rtol=0, atol=1e-12)
    assert got.reshape(-1)[0] == 1.0  # empty vs empty
    assert got.reshape(-1)[1] == 0.0  # something found where there is nothing


def test_frame_iou_matches_vot_toolkit_overlap():
    from vot.region.raster import calculate_overlap
    from vot.region.shapes import Mask

    rng = np.random.default_rng(2)
    height, width = 31, 40
    pred = _random_masks(rng, 40, height, width)
    gt = _random_masks(rng, 40, height, width)
    pred[5] = gt[5] = False
    pred[6] = False
    gt[7] = False
    ours = frame_iou(pred, gt).numpy()
    theirs = [
        calculate_overlap(Mask(p.astype(np.uint8)), Mask(g.astype(np.uint8)), bounds=(width, height))
        for p, g in zip(pred, gt)
    ]
    # The toolkit scores a union whose bounding box is a single row or column as 1 (its
    # "both empty" test); these random masks never make one, so every value must agree.
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ours[5] == 1.0 and ours[6] == 0.0 and ours[7] == 0.0


def test_frame_iou_accepts_integer_masks_and_keeps_device_and_rejects_bad_input():
    pred = torch.tensor([[0, 2], [1, 0]], dtype=torch.uint8)
    gt = torch.tensor([[0, 1], [0, 0]], dtype=torch.int64)
    assert frame_iou(pred, gt).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="binar"):
        frame_iou(pred.float(), gt)
    with pytest.raises(ValueError, match=r"\(2, 2\) vs \(2, 3\)"):
        frame_iou(pred, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError):
        frame_iou([[1]], gt)


def test_binarize_uses_greater_or_equal():
    prob = torch.tensor([[0.39, 0.4], [0.7, 1.0]])
    assert binarize(prob, 0.4).tolist() == [[False, True], [True, True]]
    assert binarize(prob, 0.7).tolist() == [[False, False], [True, True]]
    with pytest.raises(ValueError, match="threshold"):
        binarize(prob, 1.5)
    with pytest.raises(ValueError, match="float"):
        binarize(torch.ones(2, 2, dtype=torch.uint8), 0.5)


# ----------------------------------------------------------------------------- ROC / AUC


def _scores(rng: np.random.Generator, count: int, separation: float, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 sigmoid scores, a fifth exactly 0 (outside a ROI), as a tracker produces."""
    labels = rng.random(count) < 0.3
    logits = rng.normal(size=count) + separation * labels
    scores = (1.0 / (1.0 + np.exp(-sharpness * logits))).astype(np.float32)
    scores[rng.random(count) < 0.2] = 0.0
    return scores, labels


@pytest.mark.parametrize(
    "separation, sharpness",
    [(1.0, 1.0), (0.3, 0.5), (2.0, 6.0), (1.0, 20.0)],  # the last two saturate near 0 and 1
)
def test_streaming_auc_matches_sklearn_with_10001_logit_thresholds(separation, sharpness):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    scores, labels = _scores(rng, 120_000, separation, sharpness)
    accumulator = PixelROC(num_thresholds=10001)
    # Streamed in uneven chunks, as clips of different sizes would be.
    for chunk in np.array_split(np.arange(scores.size), 7):
        accumulator.update(torch.from_numpy(scores[chunk]), torch.from_numpy(labels[chunk]))
    assert accumulator.positives == labels.sum() and accumulator.negatives == (~labels).sum()
    assert accumulator.auc() == pytest.approx(roc_auc_score(labels, scores.astype(np.float64)), abs=1e-4)


def test_linear_thresholds_are_enough_only_for_unsaturated_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    smooth, smooth_labels = _scores(rng, 120_000, 1.0, 1.0)
    fpr, tpr, _ = roc_curve(torch.from_numpy(smooth), torch.from_numpy(smooth_labels), 10001, spacing="linear")
    assert auc(fpr, tpr) == pytest.approx(roc_auc_score(smooth_labels, smooth), abs=1e-4)
    # Saturated scores tie inside the first and last 1/10000: the linear ROC is off by
    # more than 1e-3 where the logit one (previous test) is not.
    sharp, sharp_labels = _scores(rng, 120_000, 1.0, 20.0)
    fpr, tpr, _ = roc_curve(torch.from_numpy(sharp), torch.from_numpy(sharp_labels), 10001, spacing="linear")
    assert abs(auc(fpr, tpr) - roc_auc_score(sharp_labels, sharp)) > 1e-3


def test_roc_curve_points_match_sklearn_at_the_bin_thresholds():
    from sklearn.metrics import roc_curve as sklearn_roc_curve

    rng = np.random.default_rng(4)
    # Scores already on the 1/100 grid: the binned ROC is then exact at every threshold.
    scores = rng.integers(0, 101, size=5000) / 100.0
    labels = rng.random(5000) < scores
    fpr, tpr, thresholds = roc_curve(
        torch.from_numpy(scores), torch.from_numpy(labels), num_thresholds=101, spacing="linear"
    )
    assert thresholds[0] == math.inf and fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    sk_fpr, sk_tpr, sk_thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    for value, f, t in zip(sk_thresholds[1:], sk_fpr[1:], sk_tpr[1:]):
        k = int(np.argmin(np.abs(thresholds[1:].numpy() - value))) + 1
        assert thresholds[k].item() == pytest.approx(value)
        assert (fpr[k].item(), tpr[k].item()) == pytest.approx((f, t))


def test_pixel_roc_on_maps_perfect_and_inverted_scores():
    gt = torch.zeros(3, 8, 8, dtype=torch.bool)
    gt[:, 2:5, 3:6] = True
    perfect = gt.float() * 0.9 + 0.05
    accumulator = PixelROC(101)
    accumulator.update(perfect, gt)
    assert accumulator.auc() == pytest.approx(1.0)
    inverted = PixelROC(101)
    inverted.update(1.0 - perfect, gt)
    assert inverted.auc() == pytest.approx(0.0)
    merged = PixelROC(101)
    merged.merge(accumulator)
    merged.merge(inverted)
    assert merged.auc() == pytest.approx(0.5)
    # Counts round-trip (the clip cache stores them).
    restored = PixelROC.from_counts(merged.counts.numpy())
    assert restored.auc() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="cannot merge"):
        merged.merge(PixelROC(101, spacing="linear"))


def test_logit_thresholds_put_zero_and_one_in_bins_of_their_own():
    accumulator = PixelROC(11)
    accumulator.update(torch.tensor([0.0, 0.0, 1e-30, 0.5, 1.0 - 1e-6, 1.0]), torch.tensor([0, 1, 0, 1, 0, 1]))
    assert accumulator.counts[0].tolist()[0] == 1 and accumulator.counts[1].tolist()[0] == 1
    assert accumulator.counts[1].tolist()[-1] == 1 and accumulator.counts[0].tolist()[-1] == 0
    thresholds = accumulator.thresholds()
    assert thresholds[0] == 0 and thresholds[-1] == 1 and bool((thresholds.diff() > 0).all())


@pytest.mark.parametrize("spacing", ["logit", "linear"])
def test_each_score_lands_in_the_bin_whose_threshold_range_holds_it(spacing):
    rng = np.random.default_rng(6)
    scores = np.concatenate([rng.random(40), 10.0 ** -rng.uniform(1, 40, 10), 1 - 10.0 ** -rng.uniform(1, 7, 10)])
    for score in scores.astype(np.float32):
        accumulator = PixelROC(257, spacing=spacing)
        accumulator.update(torch.tensor([score]), torch.tensor([True]))
        k = int(accumulator.counts[1].argmax())
        thresholds = accumulator.thresholds(dtype=torch.float32)
        assert thresholds[k] <= score * (1 + 1e-5) + 1e-6 * (spacing == "linear")
        assert k == 256 or score < thresholds[k + 1] * (1 + 1e-5)


def test_pixel_roc_rejects_bad_scores_and_one_class_data():
    accumulator = PixelROC(11)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        accumulator.update(torch.tensor([0.5, 1.5]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="NaN"):
        accumulator.update(torch.tensor([0.5, math.nan]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="shape"):
        accumulator.update(torch.rand(4), torch.ones(5, dtype=torch.bool))
    accumulator.update(torch.rand(10), torch.ones(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="0 background pixels"):
        accumulator.curve()


def test_auc_trapezoid_and_monotonicity():
    assert auc(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 1.0, 1.0])) == pytest.approx(0.75)
    assert auc(np.array([1.0, 0.5, 0.0]), np.array([1.0, 1.0, 0.0])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="monotonic"):
        auc(torch.tensor([0.0, 1.0, 0.5]), torch.tensor([0.0, 1.0, 1.0]))


# ----------------------------------------------------------------------------- DAVIS measures


def test_j_statistics_by_hand():
    values = torch.tensor([1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.6, 0.4, 0.2])
    assert j_mean(values) == pytest.approx(values.mean().item())
    assert j_recall(values) == pytest.approx(4 / 9)  # 1.0, 0.8, 0.6, 0.6
    # DAVIS quarters of 9 frames: edges round(linspace(1, 9, 5)) - 1 = 0, 2, 4, 6, 8, each
    # inclusive: first = frames 0..2 (mean 0.8), last = frames 6..8 (mean 0.4).
    assert j_decay(values) == pytest.approx(0.8 - 0.4)
    stats = davis_statistics(np.array([0.5, 0.5]))
    assert stats.mean == pytest.approx(0.5) and stats.recall == 0.0 and stats.decay == pytest.approx(0.0)
    with pytest.raises(ValueError, match="non-empty"):
        j_mean(torch.tensor([]))


def test_j_recall_counts_frames_strictly_above_half():
    assert j_recall(torch.tensor([0.5, 0.51, 0.9, 0.1])) == pytest.approx(0.5)


def test_boundary_map_of_a_square():
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[1:4, 1:4] = True
    boundary = boundary_map(mask)
    # The seg2bmap convention: boundaries half a pixel towards the origin, so the pixels
    # just left of and above the square are marked along with its own last row and column.
    expected = np.zeros((6, 6), dtype=bool)
    expected[0, 0:4] = True  # row above: their south (or south-east) neighbour differs
    expected[0:4, 0] = True  # column to the left
    expected[1:4, 3] = True  # the square's right column: east neighbour is background
    expected[3, 1:4] = True  # the square's bottom row
    np.testing.assert_array_equal(boundary.numpy(), expected)
    assert not boundary_map(torch.zeros(4, 4, dtype=torch.bool)).any()


def test_boundary_f_hand_made_cases():
    square = torch.zeros(100, 100, dtype=torch.bool)
    square[30:70, 30:70] = True
    empty = torch.zeros_like(square)
    # Identical masks, and nothing vs nothing: 1.
    assert boundary_f(square, square).item() == pytest.approx(1.0)
    assert boundary_f(empty, empty).item() == pytest.approx(1.0)
    # Missing on one side: 0.
    assert boundary_f(empty, square).item() == 0.0
    assert boundary_f(square, empty).item() == 0.0
    # The tolerance is ceil(0.008 * diagonal) = ceil(1.13) = 2 px here: a shift of 2 px
    # matches every boundary pixel, a shift of 5 px matches only the two sides that run
    # along the shift.
    shifted = torch.roll(square, 2, dims=1)
    assert boundary_f(shifted, square).item() == pytest.approx(1.0)
    far = torch.roll(square, 5, dims=1)
    f_far = boundary_f(far, square).item()
    assert 0.3 < f_far < 0.7
    # An absolute tolerance in pixels (>= 1) brings the far square back within reach.
    assert boundary_f(far, square, bound_th=5).item() == pytest.approx(1.0)
    # Batched: one value per frame.
    batch = boundary_f(torch.stack([square, far, empty]), torch.stack([square, square, square]))
    assert batch.shape == (3,)
    np.testing.assert_allclose(batch.numpy(), [1.0, f_far, 0.0])


def test_boundary_f_precision_and_recall_differ_for_a_noisy_prediction():
    gt = torch.zeros(64, 64, dtype=torch.bool)
    gt[16:48, 16:48] = True
    noisy = gt.clone()
    noisy[2, 2] = True  # an isolated false blob far from the object: extra boundary
    noisy[60, 5] = True
    f = boundary_f(noisy, gt).item()
    assert 0.9 < f < 1.0  # recall 1, precision just under 1
