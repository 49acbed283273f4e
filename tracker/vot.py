"""The TraX entry point: any registered tracker, driven by the VOT toolkit.

    python -m tracker.vot --tracker pixtrack [--checkpoint P] [--device D] [--threshold 0.5]

`trackers.ini` starts it for `vot evaluate`. It accepts a mask, rectangle or polygon as the
initial region (shapes are filled with the toolkit's own rasteriser, so the tracker starts
from the very pixels the toolkit scores against) and answers every frame with a full-frame
binary mask (probability >= threshold) and a `confidence` property (the mean probability
inside the answered mask, 0 for an empty one).

Why it is built the way it is (see docs/vot.md):
- The model is loaded before the TraX server opens: the toolkit's timeout applies to every
  request, but not to the start-up before the handshake.
- stdout is the TraX channel, and the toolkit merges stderr into the same pipe: a partial
  line there glues onto the next protocol message and the session times out. So Python's
  stdout and stderr both go through a writer that passes on whole lines only, and any
  partial line is ended before each answer.
- An error inside the tracker never ends the session: the traceback goes to stderr and the
  frame is answered with the last good mask (the initial one if tracking never worked).

The toolkit keeps a tracker's output only when the session breaks. With PIXTRACK_VOT_LOG=PATH
in the environment, the entry point also appends everything it logs to PATH, so errors that
it survived (and the reason it could not start) stay visible; the main job uses this.

Failure injection, for tests: with PIXTRACK_VOT_FAIL_AT=N in the environment, the tracker
raises on frame N of every run (0 = the initialisation frame).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

FAIL_AT_ENV = "PIXTRACK_VOT_FAIL_AT"
LOG_ENV = "PIXTRACK_VOT_LOG"
FALLBACK_MARK = "answering the last good mask"
"""Logged once for each frame answered with a fallback after an internal error."""

log = logging.getLogger("pixtrack.vot")


class WholeLines(io.TextIOBase):
    """A text stream that passes `target` (and `copy`) whole lines only; `end_line()` ends
    and passes on a pending partial line."""

    def __init__(self, target: TextIO, copy: TextIO | None = None) -> None:
        self._targets = [target] if copy is None else [target, copy]
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        complete, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self._emit(complete + "\n")
        return len(text)

    def end_line(self) -> None:
        self._emit(self._pending + "\n" if self._pending else "")
        self._pending = ""

    def _emit(self, text: str) -> None:
        for target in self._targets:
            target.write(text)
            target.flush()


class InjectedFailure(RuntimeError):
    """Raised on purpose (PIXTRACK_VOT_FAIL_AT) to show the session survives an error."""


def full_frame_mask(region: Any, height: int, width: int) -> np.ndarray:
    """A TraX region (mask patch + offset, rectangle or polygon) as an HxW bool mask."""
    from trax import Region

    if region.type == Region.MASK:
        # The patch covers only its bounding box; `array(normalize=True)` would pad it to
        # (y + h, x + w), not to the frame. Paste it, clipped to the frame.
        patch = region.array() != 0
        x, y = region.offset()
        mask = np.zeros((height, width), dtype=bool)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + patch.shape[1], width), min(y + patch.shape[0], height)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
        return mask
    if region.type in (Region.RECTANGLE, Region.POLYGON):
        from vot.tracker.trax import convert_traxregion

        return convert_traxregion(region).rasterize((0, 0, width - 1, height - 1)) != 0
    raise ValueError(f"unsupported initial region type {region.type!r}")


def read_frame(request: Any) -> np.ndarray:
    """The request's colour image as HxWx3 uint8; an unreadable file raises an error naming it."""
    from pathlib import Path

    from tracker.data.images import read_rgb

    return read_rgb(Path(request.image["color"].path()))


def answer(server: Any, mask: np.ndarray, confidence: float, out: WholeLines) -> None:
    """Reply with a full-frame mask at offset (0, 0); the toolkit crops it itself."""
    from trax import Mask

    region = Mask.create(np.ascontiguousarray(mask, dtype=np.uint8), x=0, y=0)
    out.end_line()
    server.status([(region, {"confidence": f"{confidence:.4f}"})])


def _fail_at() -> int | None:
    value = os.environ.get(FAIL_AT_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{FAIL_AT_ENV} must be a frame index, got {value!r}") from None


class Session:
    """One tracker over successive runs (each INITIALIZE starts one); never raises.

    A step that fails is logged and answered with the last good mask, or an empty one where
    there is none (the initial frame or region could not be read).
    """

    def __init__(self, tracker: Any, threshold: float, fail_at: int | None) -> None:
        self.tracker = tracker
        self.threshold = threshold
        self.fail_at = fail_at
        self.state: Any = None
        self.last = np.zeros((1, 1), dtype=bool)
        self.index = 0
        self.nothing_to_track = False

    def _maybe_fail(self) -> None:
        if self.index == self.fail_at:
            raise InjectedFailure(f"injected failure at frame {self.index} ({FAIL_AT_ENV})")

    def initialize(self, request: Any) -> tuple[np.ndarray, float]:
        self.index, self.state, self.last, self.nothing_to_track = 0, None, np.zeros((1, 1), dtype=bool), False
        try:
            frame = read_frame(request)
            if len(request.objects) != 1:
                raise ValueError(f"one object per sequence is supported, got {len(request.objects)}")
            region, _properties = request.objects[0]
            self.last = full_frame_mask(region, *frame.shape[:2])
            self._maybe_fail()
            if not self.last.any():
                log.info("the initial mask is empty: nothing to track, this run answers empty masks")
                self.nothing_to_track = True
                return self.last, 1.0
            self.state = self.tracker.init(frame, self.last)
        except Exception:
            log.error("initialisation failed; this run answers its initial mask:\n%s", traceback.format_exc())
        return self.last, 1.0

    def track(self, request: Any) -> tuple[np.ndarray, float]:
        self.index += 1
        if self.nothing_to_track:
            return self.last, 0.0
        if self.state is None:
            log.error("frame %d: no tracker state (initialisation failed above); %s", self.index, FALLBACK_MARK)
            return self.last, 0.0
        try:
            self._maybe_fail()
            frame = read_frame(request)
            prob, self.state = self.tracker.track(frame, self.state)
            prob = np.asarray(prob, dtype=np.float32)
            if prob.shape != frame.shape[:2]:
                raise ValueError(f"tracker answered a {prob.shape} map for a {frame.shape[:2]} frame")
            mask = prob >= self.threshold
            self.last = mask
            return mask, float(prob[mask].mean()) if mask.any() else 0.0
        except Exception:
            log.error("frame %d failed; %s:\n%s", self.index, FALLBACK_MARK, traceback.format_exc())
            return self.last, 0.0


def serve(session: Session, out: WholeLines) -> None:
    """Answer TraX requests until the client quits."""
    from trax import Image, Region, Server, TraxStatus

    server = Server([Region.MASK, Region.RECTANGLE, Region.POLYGON], [Image.PATH], tracker_name="pixtrack")
    while True:
        request = server.wait()
        if request.type == TraxStatus.QUIT:
            break
        if request.type == TraxStatus.INITIALIZE:
            mask, confidence = session.initialize(request)
        else:
            mask, confidence = session.track(request)
        answer(server, mask, confidence, out)
    server.quit()


def build_parser() -> argparse.ArgumentParser:
    from tracker.precision import PRECISIONS
    from tracker.registry import tracker_names

    parser = argparse.ArgumentParser(prog="python -m tracker.vot", description="TraX server for the VOT toolkit (see trackers.ini).")
    parser.add_argument("--tracker", required=True, help=f"registered tracker: {', '.join(tracker_names())} (`pixtrack registry` lists their older names too)")
    parser.add_argument("--checkpoint", default=None, help="weights file (default: the tracker's shipped checkpoint)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability at which the map becomes the mask (default 0.5)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fp32 (default), bf16 (CPU with AVX512-BF16, or CUDA) or fp16 (CUDA); pixtrack and pixtrack-1stage only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tracker.arithmetic import pin_blas_branch

    pin_blas_branch()  # before any MKL call (tracker.arithmetic)
    # Everything but the TraX library itself writes through `out`, in whole lines.
    copy = open(os.environ[LOG_ENV], "a", encoding="utf-8") if os.environ.get(LOG_ENV) else None
    out = WholeLines(sys.stderr, copy)
    sys.stdout = sys.stderr = out
    logging.basicConfig(stream=out, level=logging.INFO, format=f"%(asctime)s pid {os.getpid()} %(name)s: %(levelname)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        if not 0.0 < args.threshold <= 1.0:
            raise ValueError(f"--threshold must be in (0, 1], got {args.threshold}")
        from tracker.registry import build_tracker

        started = time.perf_counter()
        tracker = build_tracker(args.tracker, checkpoint=args.checkpoint, device=args.device,
                                precision=args.precision)
        session = Session(tracker, args.threshold, _fail_at())
        log.info("tracker %s ready in %.1f s", args.tracker, time.perf_counter() - started)
    except Exception as error:
        log.error("cannot start: %s: %s", type(error).__name__, error)
        return 2
    serve(session, out)
    out.end_line()
    return 0


if __name__ == "__main__":
    sys.exit(main())
