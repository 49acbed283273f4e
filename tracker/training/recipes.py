"""Training recipes as files: `recipes/*.toml`, one for each shipped checkpoint.

A recipe holds one table per `pixtrack train` command it runs (`[global]`, `[iterative]`,
`[local]`, `[fcn]`); a table's keys are that command's option names without the leading
dashes, its values what the command line would give:

    [iterative]
    data = ["data/davis2016-train"]   # a list: once an item (`--data a --data b`), or
                                      # its values at once where the option takes several
    local-iterations = 1000
    half = true                       # a flag: true gives it, false leaves it out

`pixtrack train WHAT --recipe FILE [flags]` runs table WHAT of FILE: the recipe's options
come first on the command line, so any flag given beside it overrides them (an option that
adds up, such as `--data`, adds to the recipe's). A recipe is read before anything runs; a
key that is not an option of its command is an error naming the file, the table and the key.

Every run writes the recipe that ran, every option as it was resolved, to `OUT/recipe.toml`
(`write_run_recipe`; one table per command run into OUT): rerunning it reproduces the run.
"""

from __future__ import annotations

import sys
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tracker.files import write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport (pyproject.toml)
    import tomli as tomllib

RECIPE_OPTION = "--recipe"


class RecipeError(ValueError):
    """A recipe that cannot be used as asked; the message names the file and what is wrong."""


def read_recipe(path: str | Path, command: str) -> dict[str, Any]:
    """Table `command` of the recipe file `path`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{RECIPE_OPTION}: no recipe file {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"recipe {path}: not valid TOML: {error}") from None
    tables = sorted(key for key, value in data.items() if isinstance(value, dict))
    if command not in data or not isinstance(data[command], dict):
        raise RecipeError(f"recipe {path} has no [{command}] table (it has: {', '.join(tables) or 'none'})")
    return dict(data[command])


def recipe_arguments(recipe: dict[str, Any], known: Iterable[str], where: str,
                     several: Iterable[str]) -> list[str]:
    """The recipe's options as command-line arguments; `known` = the command's option strings,
    `several` = those that take several values at once (argparse `nargs="+"`): a list goes to
    one of them as one occurrence (`--feature-store-stages a b`; once an item, the last would
    win), to any other option once an item (`--data a --data b`, an `append` option)."""
    known, several = set(known), set(several)
    arguments: list[str] = []
    for key, value in recipe.items():
        option = f"--{key}"
        if option not in known or option == RECIPE_OPTION:
            raise RecipeError(f"{where}: {key!r} is not an option of this command "
                              f"(known: {', '.join(sorted(o[2:] for o in known if o.startswith('--')))})")
        if isinstance(value, bool):
            arguments += [option] if value else []
        elif isinstance(value, list) and option in several:
            arguments += [option, *(_text(item, where, key) for item in value)]
        elif isinstance(value, list):
            for item in value:
                arguments += [option, _text(item, where, key)]
        else:
            arguments += [option, _text(value, where, key)]
    return arguments


def _text(value: Any, where: str, key: str) -> str:
    if isinstance(value, (dict, list, bool)):
        raise RecipeError(f"{where}: {key} = {value!r}: expected a number or a string")
    return str(value)


def recipe_path(argv: Sequence[str]) -> str | None:
    """The FILE of `--recipe FILE` (or `--recipe=FILE`) in `argv`, if any."""
    for index, token in enumerate(argv):
        if token == RECIPE_OPTION:
            if index + 1 >= len(argv):
                raise RecipeError(f"{RECIPE_OPTION} needs a FILE")
            return argv[index + 1]
        if token.startswith(RECIPE_OPTION + "="):
            return token.partition("=")[2]
    return None


def expand(argv: Sequence[str], command: str, known: Iterable[str], several: Iterable[str]) -> list[str]:
    """`argv` (a command's arguments) with its recipe's options put first, where it names one
    (`known`, `several`: as `recipe_arguments` takes them)."""
    path = recipe_path(argv)
    if path is None:
        return list(argv)
    return [*recipe_arguments(read_recipe(path, command), known, f"recipe {path} [{command}]", several), *argv]


RUN_RECIPE = "recipe.toml"
"""The file in a run's OUT that records the options it ran with."""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def recipe_text(tables: Mapping[str, Mapping[str, Any]], comment: str = "") -> str:
    """TOML of `tables` (command -> option -> value); None values are left out (TOML has no null)."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    for command, options in tables.items():
        lines += ["", f"[{command}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in options.items() if value is not None]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_run_recipe(out: str | Path, command: str, options: Mapping[str, Any]) -> Path:
    """Record in OUT/recipe.toml the options `command` ran with (other commands' tables kept)."""
    path = Path(out) / RUN_RECIPE
    tables: dict[str, Mapping[str, Any]] = {}
    if path.is_file():
        tables = {key: value for key, value in tomllib.loads(path.read_text(encoding="utf-8")).items()
                  if isinstance(value, dict)}
    tables[command] = dict(options)
    comment = (f"The options each `pixtrack train` command run into this folder ran with (its recipe and\n"
               f"flags, resolved). Rerun one: pixtrack train {command} --recipe {path}")
    return write_text_atomic(path, recipe_text(tables, comment))
