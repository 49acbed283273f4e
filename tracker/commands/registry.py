"""`pixtrack registry`: the registered trackers, and `trackers.ini` generated from them.

    pixtrack registry                         list the trackers (name, aliases, checkpoint, precisions)
    pixtrack registry --write trackers.ini    (re)write the VOT toolkit's tracker registry
    pixtrack registry --check trackers.ini    exit 1 when the file differs from what --write would write

`trackers.ini` is generated, never edited by hand: a tracker is added in `tracker/registry.py`
(docs/adding-a-tracker.md), then this command writes its section. tests/test_registry.py
fails when the committed file and the registry disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "list the registered trackers; write or check trackers.ini, which is generated from them"

HEADER = """\
; The VOT toolkit's tracker registry (workspace/config.yaml points here).
; Generated from tracker/registry.py by `pixtrack registry --write trackers.ini`: edit the
; registry, not this file (a test fails when the two differ).
;
; protocol = traxpython: the toolkit runs `<python> -c "import sys; sys.path.insert(0, <paths>); <command>"`
; where <python> is the interpreter running `vot` itself (.venv/bin/python after
; scripts/setup_env.sh, or whichever `vot` you call) and <paths> are resolved against this
; file's folder, so a fresh clone works wherever it lies, whatever the caller's PYTHONPATH
; (the toolkit replaces PYTHONPATH by `paths`).
; The entry point loads the model before the TraX handshake; `timeout` (seconds) then bounds
; each request, the first-frame fine-tuning of the FCN and pixtrack-plus included.
; Options of the entry point: python -m tracker.vot --help (--checkpoint, --device, --threshold).
"""


def trackers_ini() -> str:
    """The text of trackers.ini: one traxpython section per registered tracker."""
    from tracker.registry import entries

    sections = [
        f"[{entry.name}]\n"
        f"label = {entry.label}\n"
        "protocol = traxpython\n"
        f"command = import tracker.vot; sys.exit(tracker.vot.main(['--tracker', '{entry.name}']))\n"
        "paths = .\n"
        f"timeout = {entry.timeout}\n"
        for entry in entries()
    ]
    return HEADER + "\n" + "\n".join(sections)


def describe() -> str:
    """One Markdown row per tracker: what `pixtrack registry` prints."""
    from tracker.registry import entries

    lines = ["| name | aliases | default checkpoint | precisions | options | what |", "|---|---|---|---|---|---|"]
    for entry in entries():
        checkpoint = entry.shipped_checkpoint()
        where = "none" if checkpoint is None else f"checkpoints/{checkpoint.name}"
        lines.append(f"| {entry.name} | {', '.join(entry.aliases) or '-'} | {where} | {', '.join(entry.precisions)} "
                     f"| {', '.join(entry.options) or '-'} | {entry.description} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="FILE", help="write trackers.ini (e.g. trackers.ini) from the registry")
    group.add_argument("--check", type=Path, metavar="FILE", help="exit 1 when FILE differs from what --write would write")


def run(args: argparse.Namespace) -> int:
    text = trackers_ini()
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
        return 0
    if args.check is not None:
        if not args.check.is_file():
            raise FileNotFoundError(f"--check: no file {args.check}")
        if args.check.read_text(encoding="utf-8") != text:
            print(f"{args.check} differs from the registry; run `pixtrack registry --write {args.check}`",
                  file=sys.stderr)
            return 1
        print(f"{args.check} matches the registry", file=sys.stderr)
        return 0
    print(describe())
    return 0
