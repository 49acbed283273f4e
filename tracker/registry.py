"""Short tracker names -> factories, so the CLI, the VOT entry point and the evaluation
protocols all build trackers the same way.

A factory is `"module:callable"`, imported on demand (torch-heavy modules load only when
used); the callable takes `checkpoint: str | None` (None = the shipped default) and
`device: str | None` (and, for the trackers of `PRECISION_TRACKERS`, `precision`) and
returns an object following `tracker.interface.Tracker`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from tracker.interface import Tracker

TRACKER_FACTORIES: dict[str, str] = {
    "static": "baselines.static:build",
    "two-stage": "tracker.two_stage:build",
    "1stage": "baselines.centroid:build",
    "fcn": "baselines.fcn:build",
}


PRECISION_TRACKERS = ("two-stage", "1stage")
"""Trackers that run in bf16 / fp16 as well as fp32 (tracker.precision); the others in fp32."""

SHIPPED_CHECKPOINT_KINDS: dict[str, str] = {"two-stage": "two-stage", "1stage": "two-stage", "fcn": "fcn"}
"""The checkpoint kind each learned tracker loads by default (the 1-stage shares the
two-stage file: it is the same local model)."""
SHIPPED_CONFIG = "lite"


def shipped_checkpoint(name: str) -> Path | None:
    """The default checkpoint file `name` loads (present or not); None for trackers without one."""
    from tracker.checkpoint import default_checkpoint

    kind = SHIPPED_CHECKPOINT_KINDS.get(name)
    return None if kind is None else default_checkpoint(kind, SHIPPED_CONFIG)


def tracker_names() -> list[str]:
    return sorted(TRACKER_FACTORIES)


def build_tracker(name: str, checkpoint: str | None = None, device: str | None = None,
                  precision: str = "fp32") -> Tracker:
    """Build the tracker registered as `name`; an unknown name lists the known ones."""
    if name not in TRACKER_FACTORIES:
        raise ValueError(f"unknown tracker {name!r}; known trackers: {', '.join(tracker_names())}")
    options = {}
    if precision != "fp32":
        if name not in PRECISION_TRACKERS:
            raise ValueError(f"tracker {name!r} runs in fp32 only (precision {precision!r} is for "
                             f"{', '.join(PRECISION_TRACKERS)})")
        options["precision"] = precision
    module_name, _, attribute = TRACKER_FACTORIES[name].partition(":")
    factory: Callable[..., Tracker] = getattr(importlib.import_module(module_name), attribute)
    return factory(checkpoint=checkpoint, device=device, **options)
