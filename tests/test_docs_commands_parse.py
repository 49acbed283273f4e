"""Every `pixtrack ...` and `python -m ...` command in the README's and docs' fenced blocks
parses as written: its command line is given to the real entry point, stopped right after
argparse accepted it (nothing runs), so a renamed option or tracker breaks this test rather
than a reader's first try. (`tests/test_adding_a_tracker.py` runs the adding-a-tracker page's
commands for real; `vot`, `bash` and shell commands are left to their own tests.)"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


class Parsed(Exception):
    """argparse accepted the command line."""


def documented_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every pixtrack / python -m command in a fenced bash block."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for command in re.split(r"&&|;", line):
                    argv = shlex.split(command, comments=True)
                    if argv[:1] == ["pixtrack"] or argv[:2] == ["python", "-m"]:
                        found.append((page.name, argv))
    return found


COMMANDS = documented_commands()


def test_the_docs_have_commands_to_check():
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("page, argv", COMMANDS, ids=[f"{page}: {' '.join(argv)[:70]}" for page, argv in COMMANDS])
def test_documented_command_parses(page, argv, monkeypatch, capsys):
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    if argv[0] == "pixtrack":
        main, arguments = importlib.import_module("tracker.cli").main, argv[1:]
    else:
        main, arguments = importlib.import_module(argv[2]).main, argv[3:]
    try:
        main(arguments)
    except Parsed:
        return
    except SystemExit as exit:
        pytest.fail(f"{page}: `{shlex.join(argv)}` does not parse (exit {exit.code}): {capsys.readouterr().err}")
    pytest.fail(f"{page}: `{shlex.join(argv)}` returned before parsing: {capsys.readouterr().err}")
