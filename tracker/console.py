"""How every command of the project ends: bad input is one line on stderr naming what is
wrong and exit code 2 (no traceback); work that ran but partly failed (`CommandFailed`: some
runs of many) exit code 1 with what failed and what is kept; Ctrl-C exit code 130 with what
is kept; anything else the command's own code. One place, so `pixtrack`, `evaluation.tables`
and the ablations answer alike."""

from __future__ import annotations

import sys
from collections.abc import Callable

FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130


class CommandFailed(Exception):
    """Part of a command's work failed after the rest was done and kept (the message says which)."""


BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError)
"""What the commands raise for input at fault (a missing file, a value out of range)."""


def run_guarded(program: str, body: Callable[[], int | None], interrupted: str = "interrupted") -> int:
    """`body()`'s exit code; bad input -> "`program`: error: ..." and 2; `CommandFailed` ->
    "`program`: failed: ..." and 1; Ctrl-C -> "`program`: `interrupted`" and 130 (say there
    what is kept)."""
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        print(f"{program}: {interrupted}", file=sys.stderr)
        return INTERRUPTED
    except CommandFailed as failure:
        print(f"{program}: failed: {failure}", file=sys.stderr)
        return FAILED
    except BAD_INPUT_ERRORS as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return BAD_INPUT
