"""Timing of the trackers (issue 8): init, per-frame tracking and its parts, against a floor.

For each tracker, model configuration and frame size, on one device:

    init       tracker.init(frame, mask)                       (FCN: includes its fine-tuning)
    track      tracker.track(frame, state), state carried on    the per-frame total
    upload     the frame host -> device (the tracker's own helper)
    global     GlobalModel.step on the tracker's state           (two-stage only)
    crop       tracker.roi.crop of the ROI from the frame
    local      LocalModel.step on the crop (1-stage: the same; FCN: its network with the tuned head)
    paste      tracker.roi.paste of the ROI map into the frame
    next       what prepares the next frame: the map binarised and resized to the global
               model's input (two-stage), or Eq. 5's centroid ROI (1-stage, FCN)
    download   the full-frame map device -> host

and, once per device, the floor: the frozen VGG16-to-pool4 forward alone on one 224x224 ROI.
The ratio track / floor says how much the tracker costs beyond the backbone it cannot avoid.
On a machine shared with other work, `interleave_floor` times the floor again inside each
result's rounds, so that the ratio compares times taken under the same load.

The components are timed through the same public functions `track` calls, on the inputs it
would give them (the state after `init`), not through hooks in the trackers; they are
interleaved with the `track` calls round by round, so that a machine whose load changes
during the run slows all of them alike. What `track` does beyond them (theta smoothing,
box arithmetic, dataclass bookkeeping) is the difference between `track` and their sum.

Timing does not depend on weight values: models are freshly initialised in the named
configuration (seeded) unless a checkpoint is given; the backbone has its real VGG16 weights
(the cache of `tracker.vgg_weights`). CPU times come from `time.perf_counter`; on CUDA from CUDA
events around each call, with the device synchronised before each, so a time is the call's
own wall time on the device's timeline.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tracker import roi as geometry

DEFAULT_TRACKERS = ("pixtrack",)
"""Timed when none is named; any registered tracker with models (a `config` option) can be."""
CONFIGS = ("paper", "lite")
SIZES: tuple[tuple[int, int], ...] = ((640, 360), (1280, 720), (1920, 1080))
"""(width, height) of the frames timed by default."""
COMPONENTS = ("upload", "global", "crop", "local", "paste", "next", "download")
FLOOR_ROI = 224
FORMAT = "pixtrack-speed"
VERSION = 1


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stats:
    """Repeated timings of one thing, in seconds; reported in milliseconds."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("no timings to summarise")

    def quantile(self, q: float) -> float:
        return float(np.quantile(np.asarray(self.samples, dtype=np.float64), q))

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def iqr(self) -> float:
        """Interquartile range (numpy's linear interpolation between order statistics)."""
        return self.quantile(0.75) - self.quantile(0.25)

    def to_dict(self) -> dict[str, Any]:
        ms = [1000.0 * s for s in self.samples]
        return {
            "median_ms": 1000.0 * self.median,
            "q1_ms": 1000.0 * self.quantile(0.25),
            "q3_ms": 1000.0 * self.quantile(0.75),
            "iqr_ms": 1000.0 * self.iqr,
            "min_ms": min(ms),
            "max_ms": max(ms),
            "mean_ms": float(np.mean(ms)),
            "n": len(ms),
            "samples_ms": ms,
        }


class Timer:
    """Times one call on `device`: perf_counter on the CPU, CUDA events on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"

    def __call__(self, function: Callable[[], Any]) -> tuple[float, Any]:
        """(seconds, result) of one call of `function`."""
        if self.cuda:
            # Both events on the device's current stream (the one the trackers enqueue on),
            # recorded while it is idle: the interval is the call's wall time on the device,
            # host-side work (e.g. pinning a frame) included.
            stream = torch.cuda.current_stream(self.device)
            torch.cuda.synchronize(self.device)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record(stream)
            result = function()
            end.record(stream)
            end.synchronize()
            return start.elapsed_time(end) / 1000.0, result
        begin = time.perf_counter()
        result = function()
        return time.perf_counter() - begin, result


def measure(functions: Mapping[str, Callable[[], Any]], timer: Timer, repeats: int, warmup: int) -> dict[str, Stats]:
    """Each function called `warmup` times untimed, then `repeats` timed times, round-robin
    (one call of each per round, in the mapping's order); under no_grad."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    samples: dict[str, list[float]] = {name: [] for name in functions}
    with torch.no_grad():
        for round_index in range(warmup + repeats):
            for name, function in functions.items():
                seconds, _ = timer(function)
                if round_index >= warmup:
                    samples[name].append(seconds)
    return {name: Stats(tuple(values)) for name, values in samples.items()}


# ----------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on (recorded in the JSON and the table header)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "gpu": None,
        "cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average"] = list(os.getloadavg())
    except (AttributeError, OSError):
        info["load_average"] = None
    return info


def machine_line(info: Mapping[str, Any]) -> str:
    gpu = f", GPU {info['gpu']} (CUDA {info['cuda']})" if info.get("gpu") else ""
    load = info.get("load_average")
    load_text = f", load average {load[0]:.2f} at start" if load else ""
    return (f"CPU {info['cpu']} ({info['usable_cores']} of {info['cores']} cores usable), "
            f"torch {info['torch']} with {info['torch_threads']} thread(s){gpu}; device {info['device']}{load_text}")


# ----------------------------------------------------------------------------- inputs


def parse_size(text: str) -> tuple[int, int]:
    """'640x360' -> (640, 360) = (width, height)."""
    width, separator, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not separator or min(size) < 16:
        raise ValueError(f"frame size {text!r}: expected WIDTHxHEIGHT, e.g. 640x360, each side at least 16")
    return size


def synthetic_frame(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noise frame and a centred object mask (a quarter of the height, an eighth of the width):
    timing depends on the frame's size, not on what it shows."""
    frame = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=bool)
    h, w = max(height // 4, 2), max(width // 8, 2)
    top, left = (height - h) // 2, (width - w) // 2
    mask[top : top + h, left : left + w] = True
    return frame, mask


def load_backbone(source: str = "hed") -> nn.Module:
    """The real frozen VGG16 to pool4 (`tracker.vgg_weights`'s cache); tests replace this."""
    from tracker.backbone import VGG16Pool4

    return VGG16Pool4(source)


# ----------------------------------------------------------------------------- trackers


def tracker_checkpoint(name: str, checkpoint: str | os.PathLike | None,
                       fcn_checkpoint: str | os.PathLike | None) -> str | os.PathLike | None:
    """Which of the two checkpoints `pixtrack speed` takes serves tracker `name`: the one of
    its checkpoint kind (`--checkpoint` is a two-stage file, `--fcn-checkpoint` an fcn one)."""
    from tracker.registry import entry

    return {"two-stage": checkpoint, "fcn": fcn_checkpoint}.get(entry(name).checkpoint_kind or "")


def build_tracker(
    name: str,
    config: str,
    device: torch.device,
    backbone: nn.Module,
    checkpoint: str | os.PathLike | None = None,
    fcn_checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    precision: str = "fp32",
) -> tuple[Any, str]:
    """(tracker, configuration name), built by the registry: fresh models of `config`
    (seeded), or the checkpoint of the tracker's kind (see `tracker_checkpoint`)."""
    from tracker.registry import build_tracker as build, entry

    if "config" not in entry(name).options:
        raise ValueError(f"tracker {name!r} has no models to time (its registry entry takes no 'config' option)")
    torch.manual_seed(seed)
    path = tracker_checkpoint(name, checkpoint, fcn_checkpoint)
    if path is not None:
        tracker = build(name, checkpoint=str(path), device=device, precision=precision, backbone=backbone)
        return tracker, _checkpoint_config_name(path)
    return build(name, device=device, precision=precision, backbone=backbone, config=config), config


def _checkpoint_config_name(path: str | os.PathLike) -> str:
    import json

    from tracker.checkpoint import read_metadata

    try:
        return str(json.loads(read_metadata(path)["config"]).get("name", "custom"))
    except (KeyError, ValueError):
        return "custom"


def components(tracker: Any, frame: np.ndarray, state: Any) -> dict[str, Callable[[], Any]]:
    """The parts of one `track` call as separate calls, on the inputs `track` would give them
    from `state` (the ROI: the state's; each part's input: the previous part's output)."""
    from baselines.centroid import CentroidTracker, centroid_roi
    from tracker.device import frame_to_device
    from tracker.two_stage import TwoStageTracker

    with torch.no_grad():
        if isinstance(tracker, TwoStageTracker):
            image = frame_to_device(frame, tracker.device)
            box = state.roi
            roi_image = geometry.crop(image, box, tracker.roi_size)
            prob_roi, _ = tracker.segment_roi(roi_image, box, state)
            prob = geometry.paste(prob_roi, box, state.frame_size)
            threshold = tracker.map_threshold

            def next_input():
                source = prob if threshold is None else (prob >= threshold).to(prob.dtype)
                return geometry.resize_map(source, tracker.global_size)

            return {
                "upload": lambda: frame_to_device(frame, tracker.device),
                "global": lambda: tracker.global_model.step(state.global_input, state.aspect, state.global_state),
                "crop": lambda: geometry.crop(image, box, tracker.roi_size),
                "local": lambda: tracker.segment_roi(roi_image, box, state),
                "paste": lambda: geometry.paste(prob_roi, box, state.frame_size),
                "next": next_input,
                "download": lambda: prob[0, 0].float().cpu().numpy(),
            }
        if isinstance(tracker, CentroidTracker):
            device = tracker.device
            image = frame_to_device(frame, device)
            box = state.next_roi
            roi_image = geometry.crop(image, box)
            prob_roi, _ = tracker.segmenter.segment(roi_image, state.model)
            prob = geometry.paste(prob_roi, box, state.frame_size)
            return {
                "upload": lambda: frame_to_device(frame, device),
                "crop": lambda: geometry.crop(image, box),
                "local": lambda: tracker.segmenter.segment(roi_image, state.model),
                "paste": lambda: geometry.paste(prob_roi, box, state.frame_size),
                "next": lambda: centroid_roi(prob[:, 0], box, state.side),
                "download": lambda: prob[0, 0].float().cpu().numpy(),
            }
    raise TypeError(f"no component timing for a {type(tracker).__name__}")


# ----------------------------------------------------------------------------- the benchmark


@dataclass
class Result:
    """One tracker, configuration and frame size."""

    tracker: str
    config: str
    width: int
    height: int
    init: Stats
    track: Stats
    parts: dict[str, Stats] = field(default_factory=dict)
    floor: Stats | None = None
    """The floor timed in the same rounds as `track` (`interleave_floor`), else None."""

    def ratio(self, floor: Stats) -> float:
        """track / floor (medians), against this result's own floor where it has one."""
        floor = self.floor or floor
        return self.track.median / floor.median if floor.median > 0 else float("nan")

    def to_dict(self, floor: Stats) -> dict[str, Any]:
        parts_sum = sum(stats.median for stats in self.parts.values())
        return {
            "tracker": self.tracker,
            "config": self.config,
            "frame_size": [self.width, self.height],
            "init": self.init.to_dict(),
            "track": self.track.to_dict(),
            "fps": 1.0 / self.track.median if self.track.median > 0 else None,
            "components": {name: stats.to_dict() for name, stats in self.parts.items()},
            "components_sum_median_ms": 1000.0 * parts_sum,
            "floor": None if self.floor is None else self.floor.to_dict(),
            "ratio_to_floor": self.ratio(floor),
        }


def floor_call(backbone: nn.Module, device: torch.device) -> Callable[[], Any]:
    """The floor as a call: VGG16 to pool4 alone on one 224x224 ROI (RGB 0..255) on `device`."""
    backbone = backbone.to(device)
    roi = torch.rand(1, 3, FLOOR_ROI, FLOOR_ROI, generator=torch.Generator().manual_seed(0)).mul_(255).to(device)
    return lambda: backbone(roi)


def time_floor(backbone: nn.Module, device: torch.device, repeats: int, warmup: int, timer: Timer | None = None) -> Stats:
    """The floor's timings (see `floor_call`)."""
    return measure({"floor": floor_call(backbone, device)}, timer or Timer(device), repeats, warmup)["floor"]


def time_tracker(
    tracker: Any,
    width: int,
    height: int,
    timer: Timer,
    repeats: int,
    warmup: int,
    init_repeats: int,
    init_warmup: int = 1,
    seed: int = 0,
    floor: Callable[[], Any] | None = None,
) -> tuple[Stats, Stats, dict[str, Stats]]:
    """(init, track, parts) of one tracker on frames of width x height; `floor`, where given,
    is timed in the same rounds and returned among the parts as "floor"."""
    frame, mask = synthetic_frame(width, height, seed)
    init = measure({"init": lambda: tracker.init(frame, mask)}, timer, init_repeats, init_warmup)["init"]
    state = tracker.init(frame, mask)
    parts = components(tracker, frame, state)
    carried = {"state": state}

    def track() -> None:
        _, carried["state"] = tracker.track(frame, carried["state"])

    extra = {} if floor is None else {"floor": floor}
    timed = measure({"track": track, **parts, **extra}, timer, repeats, warmup)
    return init, timed.pop("track"), timed


@dataclass
class Benchmark:
    """Everything `pixtrack speed` measured: the machine, the settings, the floor, the results."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    floor: Stats
    results: list[Result]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "machine": self.machine,
            "settings": self.settings,
            "floor": {"what": f"VGG16 to pool4, one {FLOOR_ROI}x{FLOOR_ROI} ROI", **self.floor.to_dict()},
            "results": [result.to_dict(self.floor) for result in self.results],
        }


def run_benchmark(
    trackers: Sequence[str] = DEFAULT_TRACKERS,
    configs: Sequence[str] = CONFIGS,
    sizes: Iterable[tuple[int, int]] = SIZES,
    device: str | torch.device | None = None,
    repeats: int = 10,
    warmup: int = 3,
    init_repeats: int = 3,
    checkpoint: str | os.PathLike | None = None,
    fcn_checkpoint: str | os.PathLike | None = None,
    backbone: nn.Module | None = None,
    seed: int = 0,
    interleave_floor: bool = False,
    progress: Callable[[str], None] | None = None,
    precision: str = "fp32",
) -> Benchmark:
    """Time every (tracker, configuration, frame size); `backbone` defaults to the real one.

    With a checkpoint, the trackers it serves are timed once, in its configuration, instead
    of once per entry of `configs`. The floor is timed once, first; with `interleave_floor`
    also in every result's rounds (a third more time), whose ratio then uses that floor: on
    a machine shared with other work, the two are then slowed alike. `precision` (bf16, fp16)
    runs everything timed under that autocast, the floor included, so the ratio compares
    like with like.
    """
    from tracker.device import resolve_device
    from tracker.precision import autocast, check_precision

    device = resolve_device(device)
    check_precision(precision, device)
    sizes = [tuple(int(v) for v in size) for size in sizes]
    if not trackers or not sizes or not configs:
        raise ValueError("nothing to time: give at least one tracker, configuration and frame size")
    machine = machine_info(device)
    backbone = (backbone if backbone is not None else load_backbone()).to(device)
    timer = Timer(device)
    say = progress or (lambda message: None)
    say("floor: VGG16 to pool4")
    with autocast(device, precision):
        floor = time_floor(backbone, device, repeats, warmup, timer)
    results = []
    for name in trackers:
        from_checkpoint = tracker_checkpoint(name, checkpoint, fcn_checkpoint) is not None
        for config in configs[:1] if from_checkpoint else configs:
            tracker, config_name = build_tracker(name, config, device, backbone, checkpoint, fcn_checkpoint, seed,
                                                 precision)
            for width, height in sizes:
                say(f"{name} {config_name} {width}x{height}")
                own = floor_call(backbone, device) if interleave_floor else None
                with autocast(device, precision):
                    init, track, parts = time_tracker(tracker, width, height, timer, repeats, warmup,
                                                      init_repeats, seed=seed, floor=own)
                own_floor = parts.pop("floor", None)
                results.append(Result(name, config_name, width, height, init, track, parts, own_floor))
            del tracker
    settings = {
        "trackers": list(trackers),
        "configs": list(configs),
        "sizes": [list(size) for size in sizes],
        "repeats": repeats,
        "warmup": warmup,
        "init_repeats": init_repeats,
        "interleave_floor": interleave_floor,
        "precision": precision,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "fcn_checkpoint": None if fcn_checkpoint is None else str(fcn_checkpoint),
        "backbone": getattr(backbone, "source", type(backbone).__name__),
        "weights": "checkpoint" if checkpoint or fcn_checkpoint else "fresh (seeded); timing does not depend on them",
        "timer": "cuda events" if timer.cuda else "time.perf_counter",
    }
    return Benchmark(machine, settings, floor, results)


# ----------------------------------------------------------------------------- reports


def _cell(stats: Stats | None) -> str:
    if stats is None:
        return "–"
    return f"{1000 * stats.median:.1f} ({1000 * stats.iqr:.1f})"


def to_markdown(benchmark: Benchmark) -> str:
    """The table: median (interquartile range) in ms of each part, the total, fps and x floor."""
    settings = benchmark.settings
    lines = [
        f"**pixtrack speed**: {machine_line(benchmark.machine)}",
        f"precision {settings.get('precision', 'fp32')}; "
        f"{settings['repeats']} timed runs after {settings['warmup']} warm-up ({settings['init_repeats']} for init); "
        f"times in ms, median (interquartile range); {settings['timer']}",
        "",
        "| tracker | config | frame | init | track | fps | x floor | "
        + " | ".join(COMPONENTS) + " |",
        "|---|---|---|" + "---:|" * (4 + len(COMPONENTS)),
    ]
    for result in benchmark.results:
        ratio = result.ratio(benchmark.floor)
        cells = [
            result.tracker, result.config, f"{result.width}x{result.height}", _cell(result.init),
            _cell(result.track), f"{1 / result.track.median:.2f}", f"{ratio:.2f}",
            *[_cell(result.parts.get(name)) for name in COMPONENTS],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    own = [f"{r.tracker} {r.config} {r.width}x{r.height}: {_cell(r.floor)}" for r in benchmark.results if r.floor]
    lines += ["", f"floor (VGG16 to pool4, one {FLOOR_ROI}x{FLOOR_ROI} ROI): {_cell(benchmark.floor)} ms"
              + (f"; timed with each result (its x floor uses it): {'; '.join(own)}" if own else "")
              + ". x floor = track / floor. local = the local model (FCN: its network), "
              "next = the next frame's global input (two-stage) or Eq. 5 ROI (1-stage, FCN)."]
    return "\n".join(lines)


def write_json(benchmark: Benchmark, path: str | os.PathLike) -> Path:
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(benchmark.to_dict(), indent=1) + "\n", encoding="utf-8")
    return path
