"""The TraX entry point (tracker/vot.py), driven by the VOT toolkit's own runtime.

Each test starts the tracker the way `vot evaluate` does: from the repository's
trackers.ini, through vot's traxpython adapter, over a real TraX pipe. The static tracker
answers its initial mask, so every answer is known exactly.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracker.vot import FAIL_AT_ENV, FALLBACK_MARK, LOG_ENV, WholeLines

REPO = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 240, 320


class FileFrame:
    """The one thing vot's TraX runtime asks of a frame: its image file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def filename(self, channel: str | None = None) -> str:
        return self.path


@pytest.fixture
def frames(tmp_path: Path) -> list[FileFrame]:
    rng = np.random.default_rng(0)
    result = []
    for index in range(4):
        path = tmp_path / f"{index:08d}.jpg"
        Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)
        result.append(FileFrame(path))
    return result


def start(identifier: str = "pixtrack-static", registry: Path = REPO / "trackers.ini"):
    from vot.tracker import Registry

    return Registry([str(registry)])[identifier].runtime(log=False)


def full_frame(region) -> np.ndarray:
    """A toolkit region as an HxW bool mask, rasterised by the toolkit."""
    return region.rasterize((0, 0, WIDTH - 1, HEIGHT - 1)).astype(bool)


def run(runtime, frames: list[FileFrame], region) -> list:
    """Initialise on frames[0] with `region`, track the rest; the toolkit's ObjectStatus list."""
    from vot.tracker import ObjectStatus

    answers = [runtime.initialize(frames[0], [ObjectStatus(region, {})])[0][0]]
    for frame in frames[1:]:
        answers.append(runtime.update(frame, [])[0][0])
    return answers


@pytest.mark.vot
def test_rectangle_initialisation_is_filled_and_answered_as_a_mask(frames):
    from vot.region.shapes import Mask, Rectangle

    rectangle = Rectangle(40.5, 30.25, 100, 60)
    runtime = start()
    try:
        answers = run(runtime, frames, rectangle)
    finally:
        runtime.stop()
    expected = full_frame(rectangle)
    assert expected.sum() > 5000
    for answer in answers:
        assert isinstance(answer.region, Mask)
        np.testing.assert_array_equal(full_frame(answer.region), expected)
    assert [answer.properties["confidence"] for answer in answers[1:]] == ["1.0000"] * 3


@pytest.mark.vot
def test_polygon_initialisation_is_filled(frames):
    from vot.region.shapes import Polygon

    polygon = Polygon([(10, 10), (200, 40), (120, 200)])
    runtime = start()
    try:
        answers = run(runtime, frames, polygon)
    finally:
        runtime.stop()
    expected = full_frame(polygon)
    assert expected.sum() > 10000
    np.testing.assert_array_equal(full_frame(answers[-1].region), expected)


@pytest.mark.vot
def test_mask_patch_with_offset_becomes_the_full_frame_mask(frames):
    """The toolkit sends a patch at an offset; one reaching past the frame is clipped."""
    from vot.region.shapes import Mask

    patch = np.zeros((80, 70), dtype=np.uint8)
    patch[5:, 10:] = 1
    patch[0:3, 0:2] = 1  # a separate blob at the patch's top-left corner
    inside = Mask(patch, offset=(200, 120), optimize=False)
    beyond = Mask(patch, offset=(WIDTH - 40, HEIGHT - 30), optimize=False)
    runtime = start()
    try:
        inside_answers = run(runtime, frames, inside)
        beyond_answers = run(runtime, frames, beyond)  # a second run in the same process
    finally:
        runtime.stop()

    expected = np.zeros((HEIGHT, WIDTH), dtype=bool)
    expected[120:200, 200:270] = patch.astype(bool)
    np.testing.assert_array_equal(full_frame(inside_answers[-1].region), expected)
    expected = np.zeros((HEIGHT, WIDTH), dtype=bool)
    expected[HEIGHT - 30 :, WIDTH - 40 :] = patch[:30, :40].astype(bool)
    np.testing.assert_array_equal(full_frame(beyond_answers[-1].region), expected)


@pytest.mark.vot
def test_internal_error_answers_the_last_good_mask_and_the_session_goes_on(frames, monkeypatch):
    from vot.region.shapes import Rectangle

    monkeypatch.setenv(FAIL_AT_ENV, "2")  # the tracker process inherits vot's environment
    rectangle = Rectangle(50, 60, 80, 40)
    runtime = start()
    try:
        answers = run(runtime, frames, rectangle)
        again = run(runtime, frames, rectangle)  # every run fails at its frame 2
    finally:
        runtime.stop()
    expected = full_frame(rectangle)
    for answer in answers + again:
        np.testing.assert_array_equal(full_frame(answer.region), expected)
    confidences = [answer.properties["confidence"] for answer in answers]
    assert confidences == ["1.0000", "1.0000", "0.0000", "1.0000"]


@pytest.mark.vot
def test_empty_initial_mask_is_answered_with_empty_masks_not_errors(frames, tmp_path, monkeypatch):
    from vot.region.shapes import Mask

    log_file = tmp_path / "tracker.log"
    monkeypatch.setenv(LOG_ENV, str(log_file))
    runtime = start()
    try:
        answers = run(runtime, frames, Mask(np.zeros((5, 5), dtype=np.uint8), offset=(10, 10), optimize=False))
    finally:
        runtime.stop()
    assert all(not full_frame(answer.region).any() for answer in answers)
    log = log_file.read_text()
    assert "nothing to track" in log and FALLBACK_MARK not in log and "ERROR" not in log


@pytest.mark.vot
def test_partial_lines_on_stdout_do_not_break_the_protocol(frames, tmp_path):
    """stdout and stderr share the toolkit's pipe: a library printing without a newline
    would glue its text to the next TraX message and stall the session."""
    from vot.region.shapes import Rectangle

    chatty = tmp_path / "trackers.ini"
    chatty.write_text(
        "[chatty-static]\n"
        "protocol = traxpython\n"
        "command = import tracker.vot, baselines.static as s; step = s.StaticTracker.track; "
        "s.StaticTracker.track = lambda *a, **k: (print('progress 50 percent', end=''), step(*a, **k))[1]; "
        "sys.exit(tracker.vot.main(['--tracker', 'static']))\n"
        f"paths = {REPO}\n"
        "timeout = 10\n"
    )
    rectangle = Rectangle(50, 60, 80, 40)
    runtime = start("chatty-static", chatty)
    try:
        answers = run(runtime, frames, rectangle)
    finally:
        runtime.stop()
    for answer in answers:
        np.testing.assert_array_equal(full_frame(answer.region), full_frame(rectangle))


def test_whole_lines_holds_a_partial_line_until_ended():
    target = io.StringIO()
    out = WholeLines(target)
    out.write("one\ntw")
    assert target.getvalue() == "one\n"
    out.write("o\nthree")
    assert target.getvalue() == "one\ntwo\n"
    out.end_line()
    assert target.getvalue() == "one\ntwo\nthree\n"
    out.end_line()
    assert target.getvalue() == "one\ntwo\nthree\n"
