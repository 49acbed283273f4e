"""The layering rule, read from every module's imports (ast): dependencies run one way,

    tracker (models, geometry, data, training)  <-  baselines  <-  evaluation  <-  command line

and no module imports a private name (`_x`) of another package. The command line is
`tracker.cli`, `tracker.commands` and `tracker.vot` (the `pixtrack` console script and the
TraX entry point), which live in the `tracker` package for the console script's sake, and
`evaluation.main_job`, which drives `vot` and the tables (scripts/main.sh) and reads the TraX
entry point's log conventions: the top layer, imported by nothing. Imports inside functions count as well: lazy is not looser. A factory named by
string in `tracker/registry.py` is not an import: the registry names trackers of any layer
without depending on them (docs/adding-a-tracker.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("tracker", "baselines", "evaluation")
LAYERS: dict[str, int] = {
    "tracker": 0,
    "baselines": 1,
    "evaluation": 2,
    "tracker.cli": 3,
    "tracker.commands": 3,
    "tracker.vot": 3,
    "evaluation.main_job": 3,
}
"""Module prefix -> layer; the longest matching prefix decides."""
LAYER_NAMES = {0: "tracker", 1: "baselines", 2: "evaluation", 3: "command line"}


def layer(module: str) -> int:
    prefixes = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(prefixes, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def imports(path: Path, module: str) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) of every import in `path`, relative ones resolved."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [(node.lineno, base, alias.name) for alias in node.names]
    return found


def package_of(module: str, all_modules: dict[str, Path]) -> str:
    """The package a module belongs to: itself for a package, else its parent."""
    path = all_modules.get(module)
    return module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]


def violations() -> list[str]:
    all_modules = modules()
    found = []
    for module, path in all_modules.items():
        where = path.relative_to(REPO)
        for line, target, name in imports(path, module):
            if target.split(".")[0] not in PACKAGES:
                continue
            full = f"{target}.{name}" if name and f"{target}.{name}" in all_modules else target
            if layer(full) > layer(module):
                found.append(f"{where}:{line}: {LAYER_NAMES[layer(module)]} module {module} imports {full} "
                             f"of the higher {LAYER_NAMES[layer(full)]} layer")
            private = [part for part in (*full.split("."), name or "") if part.startswith("_") and part != "__init__"]
            if private and package_of(full, all_modules) != package_of(module, all_modules):
                found.append(f"{where}:{line}: {module} imports the private {name or full} of {full}")
    return list(dict.fromkeys(found))  # one line for `from x import a, b`


def test_lower_layers_never_import_higher_ones_nor_private_names_of_other_packages():
    found = violations()
    assert not found, "layering broken (tests/test_layers.py says the rule):\n" + "\n".join(found)


def test_the_checker_sees_what_it_must():
    """The rule's own cases: an upward import, a lazy one, a relative one, a private name."""
    assert layer("tracker.roi") == 0 and layer("tracker.commands.track") == 3 and layer("tracker.vot") == 3
    assert layer("baselines.fcn") == 1 and layer("evaluation.speed") == 2 and layer("evaluation.main_job") == 3
    all_modules = modules()
    assert package_of("tracker.training.loop", all_modules) == "tracker.training"
    assert package_of("tracker.training", all_modules) == "tracker.training"


@pytest.mark.parametrize("source, expected", [
    ("def f():\n    from evaluation.metrics import frame_iou\n", ("evaluation.metrics", "frame_iou")),
    ("from .roi import crop\n", ("tracker.roi", "crop")),
    ("from . import roi\n", ("tracker", "roi")),
])
def test_imports_are_resolved(tmp_path, source, expected):
    path = tmp_path / "x.py"
    path.write_text(source)
    assert [(target, name) for _, target, name in imports(path, "tracker.x")] == [expected]
