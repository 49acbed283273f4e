"""Per-frame and pixel-level measures of probability maps against ground-truth masks.

Every function is a small pure function of arrays, batched over leading dimensions and run
on the device its inputs are on (torch tensors; numpy arrays are accepted and go to the
CPU). Masks are `[..., H, W]` bool (or integer, nonzero = object); probability maps are
`[..., H, W]` floats in [0, 1].

- `frame_iou`: Eq. 3 of the paper for one frame (the per-frame term of the average over
  objects); an empty prediction of an empty ground truth scores 1, as the VOT toolkit does.
- `PixelROC` / `roc_curve` / `auc`: pixel-level ROC (Fig. 4 left) from fixed threshold bins,
  so that any number of clips streams through a histogram of `2 * num_thresholds` counts
  instead of being held in memory and sorted.
- The DAVIS measures (Perazzi et al. 2016): J mean / recall / decay over a sequence's
  per-frame values, and the boundary F measure.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray

DEFAULT_NUM_THRESHOLDS = 10001
"""Thresholds (bins) of the streaming ROC. Measured against sklearn's exact
`roc_auc_score` on 120k float32 sigmoid scores, smooth to saturated: logit spacing is
within 1.3e-5 with 10001 thresholds (3001 are the fewest within 1e-4; 1001 are off by up
to 3.5e-4); linear spacing is within 1e-6 with 1001 on smooth scores but off by 3e-3 to
1.6e-2 on saturated ones, whatever the count."""

_BIN_TOLERANCE = 0.01
"""Fraction of a bin by which linear-spaced scores are raised before binning (see
`PixelROC._bins`)."""

DAVIS_BOUND_TH = 0.008
"""Boundary tolerance of the DAVIS F measure, as a fraction of the image diagonal."""


def _as_tensor(array: ArrayLike, what: str) -> Tensor:
    if isinstance(array, Tensor):
        return array
    if isinstance(array, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array))
    raise TypeError(f"{what} must be a torch tensor or a numpy array, got {type(array).__name__}")


def _float_dtype(device: torch.device) -> torch.dtype:
    # Counts are exact integers; float64 keeps their ratios exact where the device has it.
    return torch.float32 if device.type == "mps" else torch.float64


def _as_labels(array: ArrayLike, what: str) -> Tensor:
    tensor = _as_tensor(array, what)
    if tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(
            f"{what} must be a binary mask (bool or integer), got dtype {tensor.dtype}; "
            "binarise probability maps first (evaluation.metrics.binarize)"
        )
    return tensor if tensor.dtype == torch.bool else tensor != 0


def _as_mask(array: ArrayLike, what: str) -> Tensor:
    tensor = _as_labels(array, what)
    if tensor.dim() < 2:
        raise ValueError(f"{what} must be [..., H, W], got shape {tuple(tensor.shape)}")
    return tensor


def _check_same_shape(first: Tensor, second: Tensor, names: str) -> None:
    if first.shape != second.shape:
        raise ValueError(f"{names} differ in shape: {tuple(first.shape)} vs {tuple(second.shape)}")
    if first.device != second.device:
        raise ValueError(f"{names} are on different devices: {first.device} vs {second.device}")


def _count(mask: Tensor) -> Tensor:
    """Number of True pixels of masks `[..., H, W]` -> int64 `[...]`. On the CPU through
    numpy (zero-copy), whose bool count is several times faster than torch's."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.asarray(np.count_nonzero(mask.numpy(), axis=(-2, -1)), dtype=np.int64))
    return mask.sum(dim=(-2, -1))


def binarize(prob: ArrayLike, threshold: float) -> Tensor:
    """Object mask of a probability map: `prob >= threshold` (the tables' 0.4 / 0.7).

    `>=` matches the ROC, where a threshold t counts every pixel scoring at least t.
    """
    tensor = _as_tensor(prob, "prob")
    if not tensor.is_floating_point():
        raise ValueError(f"prob must be a float probability map in [0, 1], got dtype {tensor.dtype}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    return tensor >= float(threshold)


def frame_iou(pred: ArrayLike, gt: ArrayLike) -> Tensor:
    """Intersection over union of masks `[..., H, W]` -> `[...]` (Eq. 3, one frame).

    Empty vs empty is 1 (nothing to find, nothing found), as the VOT toolkit scores it; a
    prediction of an empty ground truth, or an empty prediction of an object, is 0.
    """
    pred_mask = _as_mask(pred, "pred")
    gt_mask = _as_mask(gt, "gt")
    _check_same_shape(pred_mask, gt_mask, "pred and gt")
    dtype = _float_dtype(pred_mask.device)
    intersection = _count(pred_mask & gt_mask).to(dtype)
    union = _count(pred_mask | gt_mask).to(dtype)
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


# --------------------------------------------------------------------------- ROC / AUC


class PixelROC:
    """Streaming pixel-level ROC over fixed thresholds t_0 = 0 < t_1 < ... < t_last = 1.

    `update(prob, gt)` adds a batch of maps to two histograms (object and background pixels
    by score bin) kept on the inputs' device; `curve()` turns them into the ROC. Bin k holds
    the scores in [t_k, t_k+1), so the counts at every t_k are exact: the only
    approximation is that scores inside one bin are tied.

    `spacing="logit"` (default) places t_1 .. t_last-1 evenly in logit(p) over
    [-104, 17], the range float32 can tell apart (p = 0 and p = 1 keep bins of their own).
    Trained sigmoid outputs pile up within 1e-4 of 0 and 1, where evenly spaced thresholds
    would tie most pixels; with logit spacing the AUC stays within 1e-4 of sklearn's exact
    value with 10001 thresholds, saturated or not (`DEFAULT_NUM_THRESHOLDS`).
    `spacing="linear"` gives t_k = k / (num_thresholds - 1) (scores on that grid are then
    counted exactly).
    """

    SPACINGS = ("logit", "linear")
    LOGIT_RANGE = (-104.0, 17.0)
    """logit(p) of the smallest positive float32 (1.4e-45) and of 1 - 2**-24."""

    def __init__(
        self,
        num_thresholds: int = DEFAULT_NUM_THRESHOLDS,
        spacing: str = "logit",
        device: str | torch.device | None = None,
    ):
        if spacing not in self.SPACINGS:
            raise ValueError(f"spacing must be one of {', '.join(self.SPACINGS)}, got {spacing!r}")
        if not 4 <= int(num_thresholds) <= 2**22:
            raise ValueError(f"num_thresholds must lie in [4, 2**22], got {num_thresholds!r}")
        self.num_thresholds = int(num_thresholds)
        self.spacing = spacing
        self.counts: Tensor | None = None
        """int64 `[2, num_thresholds]`: background, then object pixels by bin (None before
        the first update)."""
        if device is not None:
            self.counts = torch.zeros(2, self.num_thresholds, dtype=torch.int64, device=device)

    @property
    def device(self) -> torch.device | None:
        return None if self.counts is None else self.counts.device

    def thresholds(self, device: torch.device | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """t_0 .. t_last, increasing."""
        last = self.num_thresholds - 1
        if self.spacing == "linear":
            return torch.linspace(0.0, 1.0, self.num_thresholds, dtype=dtype, device=device)
        low, high = self.LOGIT_RANGE
        inner = torch.sigmoid(torch.linspace(low, high, last - 1, dtype=torch.float64, device=device)).to(dtype)
        return torch.cat((torch.zeros(1, dtype=dtype, device=device), inner, torch.ones(1, dtype=dtype, device=device)))

    def _bins(self, scores: Tensor) -> Tensor:
        """Bin index of each score in [0, 1], as floats (exact integers)."""
        last = self.num_thresholds - 1
        if self.spacing == "linear":
            # floor(score * last + 0.01): a score equal to a threshold (up to rounding) lands
            # in its bin, at the cost of lowering every threshold by 1/100 of a bin.
            return (scores * last).add_(_BIN_TOLERANCE).floor_().clamp_(0, last)
        low, high = self.LOGIT_RANGE
        step = (high - low) / (last - 2)
        # logit(0) = -inf -> bin 0; logit < low -> bin 0; (0, 1) -> 1 .. last - 1; 1 -> last.
        # log(p / (1 - p)) rather than torch.logit, which costs ~20 ms a call on CPU; the
        # affine map and clamp in place. In float32 every p < 1 has logit < 16.7 < high, so
        # only p = 1 (logit +inf) reaches bin `last`; float64 can get closer to 1 and needs
        # the explicit test.
        index = torch.log(scores / (1.0 - scores)).mul_(1.0 / step).add_(1.0 - low / step).floor_()
        index.clamp_(0, last)
        if scores.dtype == torch.float64:
            index.clamp_(max=last - 1).masked_fill_(scores == 1, last)
        return index

    def update(self, prob: ArrayLike, gt: ArrayLike) -> None:
        """Add maps `prob` in [0, 1] with their masks `gt` (same shape, any layout)."""
        scores = _as_tensor(prob, "prob")
        if not scores.is_floating_point():
            raise ValueError(f"prob must be a float probability map in [0, 1], got dtype {scores.dtype}")
        labels = _as_labels(gt, "gt")
        if self.counts is None:
            self.counts = torch.zeros(2, self.num_thresholds, dtype=torch.int64, device=scores.device)
        scores = scores.to(self.counts.device)
        labels = labels.to(self.counts.device)
        _check_same_shape(scores, labels, "prob and gt")
        if scores.numel() == 0:
            return
        # float32 unless the input is float64 or the bins are too fine for its rounding.
        fine = scores.dtype == torch.float64 or self.num_thresholds > 65537
        working = scores.reshape(-1).to(torch.float64 if fine else torch.float32)
        # One host sync per batch: a NaN or an out-of-range score would silently land in a
        # border bin and bend the curve (aminmax propagates NaN, which fails both tests).
        low, high = torch.stack(torch.aminmax(working)).tolist()
        if not (low >= 0.0 and high <= 1.0):
            raise ValueError(f"prob must lie in [0, 1] without NaN; got values in [{low}, {high}]")
        # Object pixels count in the second half of a flat histogram of 2 * num_thresholds.
        index = self._bins(working).add_(labels.reshape(-1).to(working.dtype), alpha=self.num_thresholds)
        flat = torch.bincount(index.to(torch.int32), minlength=2 * self.num_thresholds)
        self.counts += flat.view(2, self.num_thresholds)

    def merge(self, other: "PixelROC") -> None:
        """Add another accumulator's counts (one per clip, worker or fold)."""
        if (other.num_thresholds, other.spacing) != (self.num_thresholds, self.spacing):
            raise ValueError(
                f"cannot merge a ROC of {other.num_thresholds} {other.spacing} thresholds into one of "
                f"{self.num_thresholds} {self.spacing} thresholds"
            )
        if other.counts is None:
            return
        if self.counts is None:
            self.counts = other.counts.clone()
        else:
            self.counts += other.counts.to(self.counts.device)

    @classmethod
    def from_counts(cls, counts: ArrayLike, spacing: str = "logit") -> "PixelROC":
        """An accumulator holding stored `counts` `[2, num_thresholds]` (see `counts`)."""
        tensor = _as_tensor(counts, "counts")
        if tensor.dim() != 2 or tensor.shape[0] != 2 or tensor.is_floating_point():
            raise ValueError(f"counts must be integer [2, num_thresholds], got {tensor.dtype} {tuple(tensor.shape)}")
        accumulator = cls(tensor.shape[1], spacing=spacing)
        accumulator.counts = tensor.to(torch.int64).clone()
        return accumulator

    @property
    def positives(self) -> int:
        return 0 if self.counts is None else int(self.counts[1].sum())

    @property
    def negatives(self) -> int:
        return 0 if self.counts is None else int(self.counts[0].sum())

    def curve(self) -> tuple[Tensor, Tensor, Tensor]:
        """(fpr, tpr, thresholds), thresholds decreasing as in sklearn: the first point is
        (0, 0) at threshold +inf, then one point per t_k from 1 down to 0 (which is (1, 1))."""
        positives, negatives = self.positives, self.negatives
        if positives == 0 or negatives == 0:
            raise ValueError(
                f"a ROC needs both object and background pixels; got {positives} object and "
                f"{negatives} background pixels"
            )
        assert self.counts is not None
        device = self.counts.device
        dtype = _float_dtype(device)
        zero = torch.zeros(2, 1, dtype=torch.int64, device=device)
        # Pixels scoring at least t_k = all pixels in bins k and above: cumulated from the top.
        at_least = torch.cat((zero, self.counts.flip(1).cumsum(1)), dim=1).to(dtype)
        inf = torch.full((1,), math.inf, dtype=dtype, device=device)
        thresholds = torch.cat((inf, self.thresholds(device, dtype).flip(0)))
        return at_least[0] / negatives, at_least[1] / positives, thresholds

    def auc(self) -> float:
        fpr, tpr, _ = self.curve()
        return auc(fpr, tpr)


def roc_curve(
    prob: ArrayLike, gt: ArrayLike, num_thresholds: int = DEFAULT_NUM_THRESHOLDS, spacing: str = "logit"
) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel-level ROC of maps against masks: (fpr, tpr, thresholds), as `PixelROC.curve`."""
    accumulator = PixelROC(num_thresholds, spacing=spacing)
    accumulator.update(prob, gt)
    return accumulator.curve()


def auc(fpr: ArrayLike, tpr: ArrayLike) -> float:
    """Area under a curve by the trapezoidal rule; `fpr` must be monotonic (either way)."""
    x = _as_tensor(fpr, "fpr")
    x = x.to(_float_dtype(x.device))
    y = _as_tensor(tpr, "tpr").to(device=x.device, dtype=x.dtype)
    if x.dim() != 1 or x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"fpr and tpr must be 1-D of the same length >= 2, got {tuple(x.shape)} and {tuple(y.shape)}")
    steps = x.diff()
    if bool((steps < 0).any()) and bool((steps > 0).any()):
        raise ValueError("fpr is not monotonic; an AUC needs the points in threshold order")
    return abs(float(torch.trapezoid(y, x)))


# --------------------------------------------------------------------------- DAVIS measures


class DavisStatistics(NamedTuple):
    """A sequence's summary of per-frame values (J = IoU or F), as the DAVIS benchmark
    reports them."""

    mean: float
    recall: float
    decay: float


def _per_frame(values: ArrayLike) -> Tensor:
    tensor = _as_tensor(values, "values")
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ValueError(f"per-frame values must be a non-empty 1-D array, got shape {tuple(tensor.shape)}")
    return tensor.to(_float_dtype(tensor.device))


def j_mean(values: ArrayLike) -> float:
    """Mean of per-frame values, frames without a value (NaN) left out."""
    return float(torch.nanmean(_per_frame(values)))


def j_recall(values: ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of frames whose value exceeds `threshold` (0.5 in DAVIS)."""
    tensor = _per_frame(values)
    valid = ~torch.isnan(tensor)
    return float((tensor[valid] > threshold).to(tensor.dtype).mean()) if bool(valid.any()) else math.nan


def _quarter_edges(length: int) -> list[int]:
    # DAVIS: 5 edges rounded from linspace(1, T, 5), as 0-based frame numbers; quarter i
    # runs from edge i to edge i + 1 inclusive (neighbouring quarters share a frame).
    return [int(round(float(v) + 1e-10)) - 1 for v in np.linspace(1, length, 5)]


def j_decay(values: ArrayLike) -> float:
    """Mean over the first quarter of the frames minus the mean over the last quarter:
    how much a tracker loses over time (DAVIS' decay, quarters as DAVIS cuts them)."""
    tensor = _per_frame(values)
    edges = _quarter_edges(tensor.numel())
    first = tensor[edges[0] : edges[1] + 1]
    last = tensor[edges[3] : edges[4] + 1]
    return float(torch.nanmean(first) - torch.nanmean(last))


def davis_statistics(values: ArrayLike) -> DavisStatistics:
    """Mean, recall (> 0.5) and decay of one sequence's per-frame J or F values."""
    return DavisStatistics(j_mean(values), j_recall(values), j_decay(values))


def boundary_map(mask: ArrayLike) -> Tensor:
    """One-pixel-wide boundaries of masks `[..., H, W]` (DAVIS' seg2bmap convention).

    A pixel is on the boundary when it differs from its east, south or south-east
    neighbour (outside the image counts as background); in the last row only the east
    neighbour counts, in the last column only the south one, and the bottom-right pixel
    never is: the boundary sits half a pixel towards the origin from the true edge.
    """
    seg = _as_mask(mask, "mask")
    east = torch.zeros_like(seg)
    south = torch.zeros_like(seg)
    south_east = torch.zeros_like(seg)
    east[..., :, :-1] = seg[..., :, 1:]
    south[..., :-1, :] = seg[..., 1:, :]
    south_east[..., :-1, :-1] = seg[..., 1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[..., -1, :] = seg[..., -1, :] ^ east[..., -1, :]
    boundary[..., :, -1] = seg[..., :, -1] ^ south[..., :, -1]
    boundary[..., -1, -1] = False
    return boundary


def _disk(radius: float, device: torch.device) -> Tensor:
    """Pixels (y, x) with x^2 + y^2 <= radius^2 on a (2r + 1)^2 grid (skimage's disk)."""
    reach = int(math.floor(radius))
    offsets = torch.arange(-reach, reach + 1, device=device, dtype=torch.float32)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).to(torch.float32)


def _dilate(boundary: Tensor, radius: float) -> Tensor:
    """Binary dilation of `[N, H, W]` by a disk, as a convolution (runs on any device)."""
    kernel = _disk(radius, boundary.device)
    reach = kernel.shape[-1] // 2
    response = torch.nn.functional.conv2d(boundary[:, None].to(torch.float32), kernel[None, None], padding=reach)
    return response[:, 0] > 0.5


def boundary_f(pred: ArrayLike, gt: ArrayLike, bound_th: float = DAVIS_BOUND_TH) -> Tensor:
    """DAVIS boundary F measure of masks `[..., H, W]` -> `[...]`.

    Boundary pixels of one mask count as matched when they lie within `bound_th` of the
    other's boundary: a distance in pixels when >= 1, else a fraction of the image
    diagonal, rounded up (0.008 of 854x480 -> 8 px). Precision over the prediction's
    boundary, recall over the ground truth's, F their harmonic mean. No boundary on either
    side scores 1; a boundary on one side only scores 0.
    """
    pred_mask = _as_mask(pred, "pred")
    gt_mask = _as_mask(gt, "gt")
    _check_same_shape(pred_mask, gt_mask, "pred and gt")
    if bound_th <= 0:
        raise ValueError(f"bound_th must be positive, got {bound_th!r}")
    height, width = pred_mask.shape[-2:]
    radius = float(bound_th) if bound_th >= 1 else math.ceil(bound_th * math.hypot(height, width))
    leading = pred_mask.shape[:-2]
    pred_boundary = boundary_map(pred_mask).reshape(-1, height, width)
    gt_boundary = boundary_map(gt_mask).reshape(-1, height, width)
    dtype = _float_dtype(pred_mask.device)
    pred_count = _count(pred_boundary).to(dtype)
    gt_count = _count(gt_boundary).to(dtype)
    pred_matched = _count(pred_boundary & _dilate(gt_boundary, radius)).to(dtype)
    gt_matched = _count(gt_boundary & _dilate(pred_boundary, radius)).to(dtype)
    # DAVIS' conventions for missing boundaries: none predicted -> precision 1, recall 0;
    # none in the ground truth -> precision 0, recall 1; neither -> both 1.
    precision = torch.where(pred_count > 0, pred_matched / pred_count.clamp_min(1), (gt_count > 0).to(dtype))
    recall = torch.where(gt_count > 0, gt_matched / gt_count.clamp_min(1), (pred_count > 0).to(dtype))
    neither = (pred_count == 0) & (gt_count == 0)
    precision = torch.where(neither, torch.ones_like(precision), precision)
    recall = torch.where(neither, torch.ones_like(recall), recall)
    total = precision + recall
    f_measure = torch.where(total > 0, 2 * precision * recall / total.clamp_min(1e-12), torch.zeros_like(total))
    return f_measure.reshape(leading)
