"""The VOT2020-2022 multistart protocol (EAO, accuracy-robustness) where the pinned
vot-toolkit 0.9.0 gets it wrong, fixed here; the stack names these classes by import path.

`MultiStartExperiment`: from each anchor frame the tracker runs forward to the end, or
backward to the start. The toolkit's own `execute` crashes ("ObjectQuery.state must be a
Region"): it builds the query from an ObjectStatus instead of its region, offsets it by the
anchor inside a sequence already cut at the anchor, and indexes the run's frame times as if
nested. This subclass runs the same protocol correctly and writes the same files, so the
toolkit's multistart analyses accept it; it also keeps the tracker's per-frame properties
(e.g. `confidence`).

`AverageAccuracyRobustness` (`multistart_average_ar`): the toolkit divides by the frames
tracked before failure, summed over sequences, and raises ZeroDivisionError when every run
of a tracker failed at once (a failure is declared `grace` frames after the first frame
with overlap <= `threshold`, and the initialisation frame counts as overlap 0). Its
`vot analysis` then writes no JSON at all, for any tracker. Here accuracy is 0 in that case,
as the toolkit already has it for a single sequence.
"""

from __future__ import annotations

from typing import Any, Callable

from vot.analysis.multistart import AverageAccuracyRobustness as _UnguardedAverageAR
from vot.dataset import Sequence
from vot.dataset.proxy import FrameMapSequence
from vot.experiment.multistart import MultiStartExperiment as _BrokenMultiStart
from vot.experiment.multistart import find_anchors
from vot.region import Special
from vot.tracker import ObjectQuery, Tracker, Trajectory


class MultiStartExperiment(_BrokenMultiStart):
    """The multistart experiment of vot-toolkit 0.9.0 with a working `execute`."""

    def execute(self, tracker: Tracker, sequence: Sequence, force: bool = False, callback: Callable | None = None) -> None:
        """Run the tracker from every anchor (forward and backward) not yet in the results."""
        results = self.results(tracker, sequence)
        forward, backward = find_anchors(sequence, self.anchor)
        if not forward and not backward:
            raise RuntimeError(f"sequence {sequence.name} has no anchors ({self.anchor}.value): the multistart experiment needs them")
        runs = [(anchor, False) for anchor in forward] + [(anchor, True) for anchor in backward]

        with self._get_runtime(tracker, sequence) as runtime:
            for done, (anchor, reverse) in enumerate(runs, start=1):
                name = f"{sequence.name}_{anchor:08d}"
                if force or not Trajectory.exists(results, name):
                    frames = list(reversed(range(anchor + 1))) if reverse else list(range(anchor, len(sequence)))
                    proxy = FrameMapSequence(sequence, frames)
                    start = self._get_initialization(proxy, 0)
                    status = runtime.run(proxy, [ObjectQuery(start.region, start.properties, 0)])

                    trajectory = Trajectory(len(proxy))
                    for frame, found in enumerate(status.objects[0]):
                        region = Special(Trajectory.INITIALIZATION) if frame == 0 else found.region
                        trajectory.set(frame, region, {**found.properties, "time": status.times[frame]})
                    trajectory.write(results, name)
                if callback:
                    callback(done / len(runs))


class AverageAccuracyRobustness(_UnguardedAverageAR):
    """The toolkit's average accuracy-robustness, defined when no frame was tracked at all."""

    def aggregate(self, tracker: Tracker, sequences: list[Sequence], results: Any) -> tuple:
        rows = list(results)
        if sum(row[3] for row in rows) > 0:
            return super().aggregate(tracker, sequences, results)
        frames = sum(row[4] for row in rows)
        robustness = sum(row[1] * row[4] for row in rows) / frames
        return 0.0, robustness, (robustness, 0.0), 0, frames
