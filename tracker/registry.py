"""The trackers, one entry each: the only way anything in the project builds one.

Each `TrackerEntry` holds everything that is said about a tracker outside its own module:
its name (the one `vot evaluate NAME`, `pixtrack track --tracker NAME` and
`evaluation.tables --trackers NAME` take), the factory that builds it, the checkpoint it
loads by default, the precisions it runs in, the options its factory takes, older names
kept as aliases, and its `trackers.ini` section (label, timeout), which
`pixtrack registry --write trackers.ini` generates from these entries.

A factory is `"module:callable"`, imported on demand (torch-heavy modules load only when
used). It is called as `factory(checkpoint=..., device=..., **options)`. For a tracker with
weights the registry passes the file to load: the one asked for, or else the entry's own
default (`checkpoint_kind`, `checkpoint_config`; a missing default is an error saying how
to make it, `train_command`), so that two entries may share one file and differ in their
factory (`pixtrack-plus` and `pixtrack`: the same checkpoint, tuned on the first frame or not). `precision` is passed only outside fp32 and only
to trackers whose `precisions` list it; every other keyword must be named in the entry's
`options`. It returns an object following `tracker.interface.Tracker`. Adding a tracker is one module
with such a factory and one entry in `ENTRIES` (docs/adding-a-tracker.md).

The factories live in `baselines` and above: this module names them by string, so the
`tracker` layer never imports a higher one (tests/test_layers.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tracker.interface import Tracker

FP32 = "fp32"

STANDARD_OPTIONS: dict[str, str] = {
    "backbone": "a VGG16Pool4 module to share instead of loading one (ablations, speed)",
    "config": "untrained models of this configuration (paper, lite) instead of a checkpoint (speed, tests)",
    "tuning_iterations": "first-frame fine-tuning iterations instead of the default (FCN, pixtrack-plus)",
}
"""The options factories may take, and what each means; an entry naming another is an error,
so that the same option means the same thing for every tracker."""


@dataclass(frozen=True)
class TrackerEntry:
    """One tracker: how to build it and how it is named and run everywhere."""

    name: str
    factory: str
    """`module:callable`, called as `callable(checkpoint=..., device=..., **options)`."""
    label: str
    """What `vot report` and `trackers.ini` call it."""
    description: str
    checkpoint_kind: str | None = None
    """The kind of checkpoint it loads (`tracker.checkpoint`); None: it has no weights."""
    checkpoint_config: str = "lite"
    """The configuration of the shipped default: checkpoints/KIND-CONFIG.safetensors."""
    train_command: str = ""
    """How to make the default checkpoint, said when it is missing."""
    precisions: tuple[str, ...] = (FP32,)
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    timeout: int = 120
    """Seconds the VOT toolkit waits for one TraX request (the FCN's fine-tuning included)."""

    def __post_init__(self) -> None:
        module, separator, attribute = self.factory.partition(":")
        if not (module and separator and attribute):
            raise ValueError(f"tracker {self.name!r}: factory {self.factory!r} must be 'module:callable'")
        if FP32 not in self.precisions:
            raise ValueError(f"tracker {self.name!r}: every tracker runs in fp32; precisions {self.precisions}")
        unknown = sorted(set(self.options) - set(STANDARD_OPTIONS))
        if unknown:
            raise ValueError(f"tracker {self.name!r}: unknown options {unknown}; known: {sorted(STANDARD_OPTIONS)} "
                             "(add a new one to STANDARD_OPTIONS with what it means)")

    def shipped_checkpoint(self) -> Path | None:
        """The default checkpoint file (present or not); None for a tracker without weights."""
        from tracker.checkpoint import default_checkpoint

        return None if self.checkpoint_kind is None else default_checkpoint(self.checkpoint_kind, self.checkpoint_config)

    def load_factory(self) -> Callable[..., Tracker]:
        module_name, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


FCN_RECIPE = "pixtrack train fcn --recipe recipes/lite.toml && cp runs/lite/fcn-lite.safetensors checkpoints/"
"""How the shipped FCN checkpoint was made (docs/training.md), said when it is missing."""
TWO_STAGE_RECIPE = ("pixtrack train fcn --recipe recipes/lite.toml && pixtrack train iterative --recipe recipes/lite.toml "
                    "&& cp runs/lite/two-stage/two-stage-lite.safetensors checkpoints/")
"""How the shipped two-stage checkpoint was made: its local models start from the recipe's FCN."""


ENTRIES: tuple[TrackerEntry, ...] = (
    TrackerEntry(
        name="pixtrack",
        factory="tracker.two_stage:build",
        label="pixtrack (two-stage)",
        description="global ConvLSTM attention model + local ConvLSTM segmentation (Algorithm 1)",
        checkpoint_kind="two-stage",
        train_command=TWO_STAGE_RECIPE,
        precisions=(FP32, "bf16", "fp16"),
        aliases=("two-stage",),
        options=("backbone", "config"),
    ),
    TrackerEntry(
        name="pixtrack-plus",
        factory="tracker.two_stage:build_plus",  # the checkpoint's stored configuration picks the models
        label="pixtrack-plus (two-stage, first-frame fine-tuning)",
        description="the two-stage tracker with its local model fine-tuned on the first frame (beyond the paper)",
        checkpoint_kind="two-stage",  # pixtrack's file by default; any two-stage checkpoint (priors too)
        train_command=TWO_STAGE_RECIPE,
        precisions=(FP32, "bf16", "fp16"),
        options=("backbone", "config", "tuning_iterations"),
    ),
    TrackerEntry(
        name="pixtrack-1stage",
        factory="baselines.centroid:build",
        label="pixtrack 1-stage",
        description="the two-stage tracker's local model; ROI centre by Eq. 5, size fixed at the first frame's",
        checkpoint_kind="two-stage",  # the same file: it is the same local model
        train_command=TWO_STAGE_RECIPE,
        precisions=(FP32, "bf16", "fp16"),
        aliases=("1stage",),
        options=("backbone", "config"),
    ),
    TrackerEntry(
        name="pixtrack-fcn",
        factory="baselines.fcn:build",
        label="pixtrack FCN",
        description="VGG16-to-pool4 + a convolutional head fine-tuned on the first frame; ROI by Eq. 5",
        checkpoint_kind="fcn",
        train_command=FCN_RECIPE,
        aliases=("fcn",),
        options=("backbone", "config", "tuning_iterations"),
    ),
    TrackerEntry(
        name="pixtrack-static",
        factory="baselines.static:build",
        label="static (first mask)",
        description="repeats the first mask: the floor every tracker must beat",
        aliases=("static",),
    ),
)
"""Every tracker, in the order `trackers.ini` lists them."""


def _index(entries: tuple[TrackerEntry, ...]) -> dict[str, TrackerEntry]:
    """Name and alias -> entry; a name given twice is an error at import, not a silent shadow."""
    index: dict[str, TrackerEntry] = {}
    for entry in entries:
        for name in (entry.name, *entry.aliases):
            if name in index:
                raise ValueError(f"tracker name {name!r} is registered twice ({index[name].name}, {entry.name})")
            index[name] = entry
    return index


_BY_NAME = _index(ENTRIES)


def entries() -> tuple[TrackerEntry, ...]:
    """Every entry, in registry order (those added by `register` last)."""
    return ENTRIES


def tracker_names() -> list[str]:
    """The trackers' names (not their aliases), in registry order."""
    return [entry.name for entry in ENTRIES]


def known_names() -> list[str]:
    """Names and aliases alike: what `entry` accepts."""
    return sorted(_BY_NAME)


def entry(name: str) -> TrackerEntry:
    """The entry registered as `name` or under the alias `name`; an unknown name lists the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        aliases = ", ".join(f"{alias} = {e.name}" for e in ENTRIES for alias in e.aliases)
        raise ValueError(f"unknown tracker {name!r}; known trackers: {', '.join(tracker_names())} "
                         f"(older names: {aliases})") from None


def canonical_name(name: str) -> str:
    """`name` itself, or the tracker whose alias it is."""
    return entry(name).name


def shipped_checkpoint(name: str) -> Path | None:
    """The default checkpoint file `name` loads (present or not); None for trackers without one."""
    return entry(name).shipped_checkpoint()


def register(new: TrackerEntry) -> None:
    """Add an entry at run time (tests, experiments in a notebook); the project's own trackers
    are entries of `ENTRIES`, so that `trackers.ini` lists them."""
    global ENTRIES, _BY_NAME
    index = _index((*ENTRIES, new))
    ENTRIES, _BY_NAME = (*ENTRIES, new), index


def unregister(name: str) -> None:
    """Remove an entry added with `register` (tests clean up after themselves)."""
    global ENTRIES, _BY_NAME
    removed = entry(name)
    ENTRIES = tuple(e for e in ENTRIES if e is not removed)
    _BY_NAME = _index(ENTRIES)


def build_tracker(name: str, checkpoint: str | None = None, device: str | None = None,
                  precision: str = FP32, **options: Any) -> Tracker:
    """Build the tracker registered as `name` (or under that alias).

    `precision` outside fp32 must be one of the entry's `precisions`; `options` must be among
    its `options` (see `STANDARD_OPTIONS`). Options given as None are left to the factory.
    """
    found = entry(name)
    called = repr(name) if name == found.name else f"{name!r} ({found.name})"
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(found.options))
    if unknown:
        raise ValueError(f"tracker {called} takes no option {', '.join(unknown)} "
                         f"(its options: {', '.join(found.options) or 'none'})")
    if precision != FP32:
        if precision not in found.precisions:
            runs = [e.name for e in ENTRIES if precision in e.precisions]
            raise ValueError(f"tracker {called} runs in fp32 only (precision {precision!r} is for "
                             f"{', '.join(runs)})")
        given["precision"] = precision
    if found.checkpoint_kind is not None and "config" not in given:  # untrained models take no file
        from tracker.checkpoint import resolve_checkpoint

        checkpoint = str(resolve_checkpoint(checkpoint, found.checkpoint_kind, found.checkpoint_config,
                                            tracker=f"{found.name} tracker",
                                            train_command=found.train_command or "pixtrack train"))
    return found.load_factory()(checkpoint=checkpoint, device=device, **given)
