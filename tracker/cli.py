"""The `pixtrack` console script.

Each subcommand is a module in `tracker.commands` exposing `HELP: str`,
`add_arguments(parser)` and `run(args) -> int` (and, optionally, `prepare(arguments)`, which
rewrites its arguments before they are parsed); modules are discovered, so adding a command
means adding one file. Heavy imports (torch, vot) happen inside `run`, keeping `--help` fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from tracker import __version__, commands
from tracker.console import run_guarded


def _command_modules() -> dict[str, object]:
    found = {}
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"tracker.commands.{info.name}")
        found[getattr(module, "NAME", info.name)] = module
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixtrack",
        description="Pixel-wise object tracking: trackers, datasets, training and benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"pixtrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in _command_modules().items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def prepare(argv: Sequence[str]) -> list[str]:
    """`argv` as the command's module would have it parsed: a module may define
    `prepare(arguments) -> arguments` (e.g. `pixtrack train --recipe FILE` puts the recipe's
    options first), called with what follows the command's name."""
    argv = list(argv)
    position = next((i for i, token in enumerate(argv) if not token.startswith("-")), None)
    if position is None:
        return argv
    module = _command_modules().get(argv[position])
    hook = getattr(module, "prepare", None)
    return argv if hook is None else [*argv[: position + 1], *hook(argv[position + 1 :])]


def main(argv: Sequence[str] | None = None) -> int:
    from tracker.arithmetic import pin_blas_branch

    pin_blas_branch()  # before any MKL call (tracker.arithmetic)
    argv = sys.argv[1:] if argv is None else argv
    prepared: list[str] = []
    status = run_guarded("pixtrack", lambda: prepared.extend(prepare(argv)))  # a recipe file's errors
    if status:
        return status
    args = build_parser().parse_args(prepared)
    return run_guarded(f"pixtrack {args.command}", lambda: args._run(args))


if __name__ == "__main__":
    sys.exit(main())
