"""The paper's figures from evaluation results: ROC curves (Fig. 4 left), framewise IoU
(Fig. 4 right), IoU over time per sequence, masks overlaid on frames (Fig. 7), ConvLSTM
memory cells over time (Fig. 3).

Every `*_figure` function builds a matplotlib `Figure` (no pyplot, no global state: safe in
scripts, tests and worker processes; PNGs render through Agg); `save_figure` writes it as
PNG and PDF. Fonts are sized for a printed page (figures are drawn at column or page
width), and a tracker keeps its colour in every figure (`tracker_color`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.metrics import PixelROC, auc

COLUMN_WIDTH = 3.4
"""Inches: one column of a two-column paper."""
PAGE_WIDTH = 7.0

STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
}

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_KNOWN = {
    "two-stage": 0, "pixtrack": 0, "2-stage": 0,
    "1stage": 1, "pixtrack-1stage": 1, "1-stage": 1,
    "fcn": 2, "pixtrack-fcn": 2,
    "static": 7, "pixtrack-static": 7,
}


def tracker_color(name: str) -> str:
    """The colour of a tracker in every figure: fixed for the project's trackers (under
    their registry and VOT names alike), a stable hash of the name for any other."""
    if name in _KNOWN:
        return _PALETTE[_KNOWN[name]]
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    return _PALETTE[(3, 4, 5, 6, 8, 9)[digest % 6]]


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 300) -> list[Path]:
    """Write `figure` as `<path>.png` (at `dpi`) and `<path>.pdf` (any suffix of `path` is
    replaced)."""
    import matplotlib

    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".png", ".pdf") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(STYLE):
        for suffix in (".png", ".pdf"):
            target = base.with_name(base.name + suffix)
            figure.savefig(target, dpi=dpi)
            written.append(target)
    return written


def _styled(build):
    """Run a figure builder under the publication style (fonts are fixed at draw time)."""
    import functools

    import matplotlib

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------- Fig. 4


RocLike = PixelROC | tuple[np.ndarray, np.ndarray]


def _roc_points(roc: RocLike) -> tuple[np.ndarray, np.ndarray, float]:
    if isinstance(roc, PixelROC):
        fpr, tpr, _ = roc.curve()
        fpr, tpr = fpr.cpu().numpy(), tpr.cpu().numpy()
    else:
        fpr, tpr = (np.asarray(values, dtype=np.float64) for values in roc)
    return fpr, tpr, auc(fpr, tpr)


def roc_label(name: str, area: float) -> str:
    return f"{name} (AUC = {area:.3f})"


@_styled
def roc_figure(curves: Mapping[str, RocLike], title: str | None = None) -> Figure:
    """Pixel-level ROC per tracker, the AUC in the legend (Fig. 4 left)."""
    if not curves:
        raise ValueError("no ROC curves to plot")
    figure = _figure(COLUMN_WIDTH, COLUMN_WIDTH * 0.85)
    axes = figure.add_subplot()
    for name, roc in curves.items():
        fpr, tpr, area = _roc_points(roc)
        axes.plot(fpr, tpr, color=tracker_color(name), label=roc_label(name, area))
    axes.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=0.8)
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", aspect="equal")
    if title:
        axes.set_title(title)
    axes.legend(loc="lower right")
    return figure


@_styled
def framewise_iou_figure(curves: Mapping[str, np.ndarray], threshold: float | None = None,
                         title: str | None = None) -> Figure:
    """Mean IoU at each frame after the initial one, per tracker (Fig. 4 right)."""
    if not curves:
        raise ValueError("no IoU curves to plot")
    figure = _figure(COLUMN_WIDTH, COLUMN_WIDTH * 0.7)
    axes = figure.add_subplot()
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"IoU curve of {name!r} must be 1-D (one value a frame), got shape {values.shape}")
        axes.plot(np.arange(1, values.size + 1), values, color=tracker_color(name), label=name)
    axes.set(xlabel="frame", ylabel="IoU" if threshold is None else f"IoU (threshold {threshold:g})", ylim=(0, 1.01))
    axes.set_xlim(1, max(np.asarray(v).size for v in curves.values()))
    if title:
        axes.set_title(title)
    axes.legend(loc="best")
    return figure


def _panel_grid(count: int, columns: int, row_height: float, extra: float) -> tuple[Figure, np.ndarray]:
    """A page-wide figure of `count` panels sharing y, `columns` a row; the unused panels hidden."""
    if count < 1:
        raise ValueError("no sequences to plot")
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    figure = _figure(PAGE_WIDTH, row_height * rows + extra)
    axes_grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    for axes in list(axes_grid.flat)[count:]:
        axes.set_visible(False)
    return figure, axes_grid


def _label_panels(axes_grid: np.ndarray, ylabel: str) -> None:
    """y label on the first column; x label ("frame") on the lowest panel in use of each column."""
    for axes in axes_grid[:, 0]:
        axes.set_ylabel(ylabel)
    for column in range(axes_grid.shape[1]):
        visible = [axes for axes in axes_grid[:, column] if axes.get_visible()]
        visible[-1].set_xlabel("frame")


@_styled
def sequence_iou_figure(per_sequence: Mapping[str, Mapping[str, np.ndarray]], columns: int = 4) -> Figure:
    """IoU over time: one panel per sequence (`per_sequence[sequence][tracker]` = per-frame
    IoUs of frames 1..T), trackers in their colours."""
    figure, axes_grid = _panel_grid(len(per_sequence), columns, 1.5, 0.4)
    for axes, (sequence, trackers) in zip(axes_grid.flat, per_sequence.items()):
        for name, values in trackers.items():
            values = np.asarray(values, dtype=np.float64)
            axes.plot(np.arange(1, values.size + 1), values, color=tracker_color(name), label=name)
        axes.set_title(sequence)
        axes.set_ylim(0, 1.01)
    _label_panels(axes_grid, "IoU")
    handles, labels = axes_grid.flat[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 5))
    return figure


@_styled
def error_parts_figure(per_sequence: Mapping[str, Mapping[str, np.ndarray]], iou: Mapping[str, np.ndarray],
                       title: str | None = None, columns: int = 3) -> Figure:
    """Where each sequence's IoU goes over time (`evaluation.diagnosis`): `per_sequence[sequence]
    [part]` = per-frame losses of frames 1..T, stacked in the order given, with the IoU line."""
    figure, axes_grid = _panel_grid(len(per_sequence), columns, 1.6, 0.6)
    colours = ["#d62728", "#ff7f0e", "#7f7f7f", "#9467bd"]
    for axes, (sequence, parts) in zip(axes_grid.flat, per_sequence.items()):
        steps = np.arange(1, len(iou[sequence]) + 1)
        axes.stackplot(steps, *parts.values(), colors=colours[: len(parts)], labels=list(parts), alpha=0.8)
        axes.plot(steps, iou[sequence], color="black", linewidth=1.0, label="IoU")
        axes.set_title(sequence)
        axes.set_ylim(0, 1.0)
    _label_panels(axes_grid, "fraction of union")
    handles, labels = axes_grid.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    if title:
        figure.suptitle(title)
    return figure


# ----------------------------------------------------------------------------- Fig. 7


def overlay(frame: np.ndarray, mask: np.ndarray, color: str = "#ff3030", alpha: float = 0.5) -> np.ndarray:
    """An RGB frame with a mask (bool, or probabilities used as opacity) blended in."""
    from matplotlib.colors import to_rgb

    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.shape[:2] != np.shape(mask):
        raise ValueError(f"mask {np.shape(mask)} does not fit the frame {frame.shape[:2]}")
    weight = alpha * np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)[..., None]
    tint = np.asarray(to_rgb(color), dtype=np.float32) * 255.0
    blended = frame[..., :3].astype(np.float32) * (1.0 - weight) + tint * weight
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


@_styled
def overlay_grid_figure(
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    columns: int = 4,
    ground_truth: Sequence[np.ndarray] | None = None,
    color: str = "#ff3030",
) -> Figure:
    """Predicted masks overlaid on frames in a grid (Fig. 7); the ground truth, where
    given, as a contour."""
    if len(frames) == 0 or len(frames) != len(masks):
        raise ValueError(f"need as many masks as frames (at least one): {len(frames)} frames, {len(masks)} masks")
    if titles is not None and len(titles) != len(frames):
        raise ValueError(f"{len(titles)} titles for {len(frames)} frames")
    count = len(frames)
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    height, width = np.shape(frames[0])[:2]
    figure = _figure(PAGE_WIDTH, PAGE_WIDTH / columns * height / width * rows + 0.3 * rows)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(axes_grid.flat):
        axes.set_axis_off()
        if index >= count:
            continue
        axes.imshow(overlay(frames[index], masks[index], color), interpolation="nearest")
        if ground_truth is not None:
            axes.contour(np.asarray(ground_truth[index], dtype=float), levels=[0.5], colors=["#30ff30"], linewidths=0.8)
        if titles is not None:
            axes.set_title(titles[index])
    return figure


# ----------------------------------------------------------------------------- Fig. 3


def top_channels(cells: np.ndarray, count: int = 16) -> np.ndarray:
    """Indices of the `count` channels of `cells` `[T, C, h, w]` with the largest mean
    absolute activation over time and space (the "top activations" of Fig. 3)."""
    cells = np.asarray(cells)
    if cells.ndim != 4:
        raise ValueError(f"memory cells must be [T, C, h, w], got shape {cells.shape}")
    strength = np.abs(cells).mean(axis=(0, 2, 3))
    return np.argsort(-strength, kind="stable")[: min(count, cells.shape[1])]


def _mosaic(maps: np.ndarray, columns: int) -> np.ndarray:
    """`[N, h, w]` -> one image of the maps in a grid with 1-pixel NaN gaps."""
    count, height, width = maps.shape
    rows = -(-count // columns)
    canvas = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan, dtype=np.float32)
    for index in range(count):
        row, column = divmod(index, columns)
        canvas[row * (height + 1) : row * (height + 1) + height, column * (width + 1) : column * (width + 1) + width] = maps[index]
    return canvas


@_styled
def memory_cells_figure(
    layers: Mapping[str, np.ndarray],
    frames: Sequence[np.ndarray] | None = None,
    count: int = 16,
    steps: Sequence[int] | None = None,
) -> Figure:
    """ConvLSTM memory cells over time (Fig. 3): a column per time step; a row per layer,
    each cell a 4x4 mosaic of the layer's `count` strongest channels (the same channels at
    every step, one colour scale per layer); above them, where given, the frames (e.g.
    segmentations overlaid)."""
    if not layers:
        raise ValueError("no ConvLSTM layers to plot")
    arrays = {name: np.asarray(cells, dtype=np.float32) for name, cells in layers.items()}
    lengths = {cells.shape[0] for cells in arrays.values() if cells.ndim == 4}
    if len(lengths) != 1 or any(cells.ndim != 4 for cells in arrays.values()):
        raise ValueError(f"every layer must be [T, C, h, w] with the same T; got {[c.shape for c in arrays.values()]}")
    total = lengths.pop()
    if frames is not None and len(frames) != total:
        raise ValueError(f"{len(frames)} frames for {total} time steps")
    steps = list(range(total)) if steps is None else [int(step) for step in steps]
    if not steps or min(steps) < 0 or max(steps) >= total:
        raise ValueError(f"steps must lie in 0..{total - 1}, got {steps}")
    rows = len(arrays) + (frames is not None)
    figure = _figure(PAGE_WIDTH, PAGE_WIDTH / len(steps) * rows + 0.4)
    axes_grid = figure.subplots(rows, len(steps), squeeze=False)
    row = 0
    if frames is not None:
        for column, step in enumerate(steps):
            axes = axes_grid[0, column]
            axes.imshow(np.asarray(frames[step]), interpolation="nearest")
            axes.set_title(f"t = {step}")
        row = 1
    side = int(np.ceil(np.sqrt(min(count, min(cells.shape[1] for cells in arrays.values())))))
    for name, cells in arrays.items():
        chosen = cells[:, top_channels(cells, count)]
        limit = float(np.abs(chosen).max()) or 1.0
        for column, step in enumerate(steps):
            axes = axes_grid[row, column]
            image = axes.imshow(_mosaic(chosen[step], side), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            if frames is None and row == 0:
                axes.set_title(f"t = {step}")
        axes_grid[row, 0].set_ylabel(name)
        figure.colorbar(image, ax=axes_grid[row, :].tolist(), shrink=0.8, pad=0.01)
        row += 1
    for axes in axes_grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
        axes.grid(False)
    return figure


# ----------------------------------------------------------------------------- files


def plot_roc(curves: Mapping[str, RocLike], path: str | os.PathLike, title: str | None = None,
             dpi: int = 300) -> list[Path]:
    return save_figure(roc_figure(curves, title), path, dpi)


def plot_framewise_iou(curves: Mapping[str, np.ndarray], path: str | os.PathLike, threshold: float | None = None,
                       title: str | None = None, dpi: int = 300) -> list[Path]:
    return save_figure(framewise_iou_figure(curves, threshold, title), path, dpi)


def plot_sequence_iou(per_sequence: Mapping[str, Mapping[str, np.ndarray]], path: str | os.PathLike,
                      columns: int = 4, dpi: int = 300) -> list[Path]:
    return save_figure(sequence_iou_figure(per_sequence, columns), path, dpi)


def plot_error_parts(per_sequence: Mapping[str, Mapping[str, np.ndarray]], iou: Mapping[str, np.ndarray],
                     path: str | os.PathLike, title: str | None = None, dpi: int = 300) -> list[Path]:
    return save_figure(error_parts_figure(per_sequence, iou, title), path, dpi)


def plot_overlays(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], path: str | os.PathLike,
                  titles: Sequence[str] | None = None, columns: int = 4,
                  ground_truth: Sequence[np.ndarray] | None = None, dpi: int = 300) -> list[Path]:
    return save_figure(overlay_grid_figure(frames, masks, titles, columns, ground_truth), path, dpi)


def plot_memory_cells(layers: Mapping[str, np.ndarray], path: str | os.PathLike,
                      frames: Sequence[np.ndarray] | None = None, count: int = 16,
                      steps: Sequence[int] | None = None, dpi: int = 300) -> list[Path]:
    return save_figure(memory_cells_figure(layers, frames, count, steps), path, dpi)
