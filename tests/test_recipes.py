"""recipes/*.toml and `pixtrack train WHAT --recipe FILE`: each recipe parses and names only
options of its commands; the shipped checkpoints' recipes are the commands that made them;
flags given beside a recipe override it."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tracker.cli import build_parser, prepare
from tracker.commands.train import RECIPE_COMMANDS
from tracker.training.arguments import resolved
from tracker.training.recipes import RecipeError, tomllib

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.toml"))

SHIPPED_BY = {"fcn-lite": ("lite.toml", "fcn"), "two-stage-lite": ("lite.toml", "iterative")}
"""Each shipped checkpoint and the recipe table that made it (docs/training.md)."""

MADE_BY = {
    # The command lines that made the shipped checkpoints (all 30 sequences, 2026-12-05), the
    # fold-0 models shipped before them (2026-11-27, as the README gave them; their FCN now lives
    # in runs/, as the shipped one is trained on fold 0 too) and the measured pixtrack-plus models.
    ("lite.toml", "fcn"):
        "train fcn --data data/davis2016-train --synthetic 12 --config lite --out runs/lite/fcn "
        "--output runs/lite/fcn-lite.safetensors --threads 2 --clip-frames 8 --clips-per-sequence 3 --views 1 "
        "--iterations 2000 --lr 3e-4 --batch 16 --half",
    ("lite.toml", "iterative"):
        "train iterative --data data/davis2016-train --synthetic 12 --config lite --out runs/lite/two-stage "
        "--threads 2 --clip-frames 8 --clips-per-sequence 3 --views 2 --local-iterations 1000 --local-lr 3e-4 "
        "--local-warm-start --local-init runs/lite/fcn-lite.safetensors --global-frames 16 --global-iterations 600 "
        "--global-update-iterations 200 --global-batch 4 --dilation-every 150 --object-weight 5 --half",
    ("fold0-two-stage-lite.toml", "global"):
        "train global --data data/davis2016-train --folds checkpoints/davis2016-train-5folds.json "
        "--fold 0 --synthetic 12 --config lite --threads 2 --global-frames 16 --global-iterations 600 "
        "--global-batch 4 --dilation-every 150 --object-weight 5 --out runs/global-ow5",
    ("fold0-two-stage-lite.toml", "iterative"):
        "train iterative --data data/davis2016-train --folds checkpoints/davis2016-train-5folds.json "
        "--fold 0 --synthetic 12 --out runs/davis-f0-v3 --config lite --threads 2 --clip-frames 8 "
        "--clips-per-sequence 3 --views 2 --local-iterations 1000 --local-lr 3e-4 --local-warm-start "
        "--local-init runs/fcn-f0/fcn-lite.safetensors --global-frames 16 --global-iterations 600 "
        "--global-update-iterations 200 --global-batch 4 --dilation-every 150 --object-weight 5 --half",
    ("two-stage-plus.toml", "iterative"):  # 2026-12-02, the better measured fold-0 model (not shipped)
        "train iterative --data data/davis2016-train --folds checkpoints/davis2016-train-5folds.json "
        "--fold 0 --synthetic 12 --out runs/plus-iter-f0 --config plus --threads 1 --clip-frames 8 "
        "--clips-per-sequence 3 --views 2 --local-iterations 1000 --local-lr 3e-4 --local-warm-start "
        "--local-init runs/fcn-f0/fcn-lite.safetensors --global-from runs/davis-f0-v3/two-stage-lite.safetensors "
        "--global-frames 16 --global-iterations 600 --global-update-iterations 200 --global-batch 4 "
        "--dilation-every 150 --object-weight 5 --half",
    ("two-stage-plus.toml", "local"):  # 2026-12-01, the first measured fold-0 model (not shipped)
        "train local --data data/davis2016-train --folds checkpoints/davis2016-train-5folds.json --fold 0 "
        "--synthetic 12 --config plus --threads 1 --clip-frames 8 --clips-per-sequence 4 --views 3 "
        "--local-iterations 1500 --local-lr 3e-4 --local-init runs/fcn-f0/fcn-lite.safetensors --half "
        "--global-from runs/davis-f0-v3/two-stage-lite.safetensors --out runs/plus-f0",
    ("fold0-fcn-lite.toml", "fcn"):
        "train fcn --data data/davis2016-train --folds checkpoints/davis2016-train-5folds.json "
        "--fold 0 --synthetic 12 --config lite --out runs/fcn-f0 --output runs/fcn-f0/fcn-lite.safetensors --threads 1 --clip-frames 8 "
        "--clips-per-sequence 3 --views 1 --iterations 2000 --lr 3e-4 --batch 16 --half",
}


def parse(argv: list[str]):
    return build_parser().parse_args(prepare(argv))


def settings(namespace) -> dict:
    """The parsed options, defaults read from their settings dataclasses."""
    return {key: resolved(value) for key, value in vars(namespace).items() if key not in ("recipe", "_run")}


def test_there_is_a_recipe_for_each_shipped_checkpoint_and_the_paper():
    shipped = {path.name.removesuffix(".safetensors") for path in (REPO / "checkpoints").glob("*.safetensors")}
    assert shipped <= set(SHIPPED_BY) and set(SHIPPED_BY.values()) <= set(MADE_BY)
    assert (REPO / "recipes" / "paper.toml").is_file()


def test_no_recipe_writes_or_starts_from_a_shipped_checkpoint():
    # The shipped files are trained on all 30 sequences: a fold's run that started from one
    # would have seen its held-out sequences; and a recipe never overwrites them.
    shipped = {f"checkpoints/{path.name}" for path in (REPO / "checkpoints").glob("*.safetensors")}
    assert shipped
    for path in RECIPES:
        for command, table in tomllib.loads(path.read_text(encoding="utf-8")).items():
            assert not shipped & {str(value) for value in table.values()}, (path.name, command)


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.name)
def test_each_recipe_parses_and_names_only_options_of_its_commands(path):
    tables = tomllib.loads(path.read_text(encoding="utf-8"))
    assert tables and set(tables) <= set(RECIPE_COMMANDS)
    for command in tables:
        args = parse(["train", command, "--recipe", str(path)])  # an unknown key would raise RecipeError
        assert args.train_command == command and args.recipe == str(path)


@pytest.mark.parametrize("recipe, command", sorted(MADE_BY))
def test_shipped_recipes_are_the_commands_that_made_the_checkpoints(recipe, command):
    from_recipe = parse(["train", command, "--recipe", str(REPO / "recipes" / recipe)])
    from_flags = parse(shlex.split(MADE_BY[recipe, command]))
    assert settings(from_recipe) == settings(from_flags)


def test_flags_beside_a_recipe_override_it_wherever_they_stand():
    recipe = str(REPO / "recipes" / "fold0-two-stage-lite.toml")
    before = parse(["train", "iterative", "--local-iterations", "5", "--no-insert", "--recipe", recipe])
    after = parse(["train", "iterative", "--recipe", recipe, "--local-iterations", "5"])
    assert before.local_iterations == after.local_iterations == 5
    assert before.no_insert and not after.no_insert
    assert after.global_update_iterations == 200 and after.local_lr == 3e-4  # the rest from the recipe
    assert resolved(parse(["train", "iterative", "--out", "x"]).local_iterations) == 2000  # no recipe: the defaults


def test_a_list_reaches_an_option_of_several_values_whole_and_an_append_option_item_by_item(tmp_path):
    # A list given to a nargs="+" option once an item would keep only its last item.
    recipe = tmp_path / "lists.toml"
    recipe.write_text('[iterative]\ndata = ["a", "b"]\nout = "o"\nfeature-store = "s"\n'
                      'feature-store-stages = ["local-1", "local-2"]\n')
    args = parse(["train", "iterative", "--recipe", str(recipe)])
    assert args.feature_store_stages == ["local-1", "local-2"] and args.data == ["a", "b"]
    assert parse(["train", "iterative", "--recipe", str(recipe), "--feature-store-stages", "local-final"]
                 ).feature_store_stages == ["local-final"]  # a flag beside the recipe still overrides it


def test_a_bad_recipe_is_a_clear_error(tmp_path, capsys):
    from tracker.cli import main

    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[fcn]\nout = "o"\ncolour = 3\n')
    with pytest.raises(RecipeError, match=r"unknown.toml \[fcn\]: 'colour' is not an option"):
        prepare(["train", "fcn", "--recipe", str(unknown)])
    with pytest.raises(RecipeError, match=r"has no \[local\] table \(it has: fcn\)"):
        prepare(["train", "local", "--recipe", str(unknown)])
    broken = tmp_path / "broken.toml"
    broken.write_text("[fcn\n")
    assert main(["train", "fcn", "--recipe", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["train", "fcn", "--recipe", str(tmp_path / "absent.toml")]) == 2
    assert "no recipe file" in capsys.readouterr().err


def test_the_recipe_a_run_writes_reruns_it(tmp_path):
    from tracker.commands.train import _write_run_recipe

    out = tmp_path / "run"
    recipe = str(REPO / "recipes" / "fold0-two-stage-lite.toml")
    ran = parse(["train", "iterative", "--recipe", recipe, "--out", str(out), "--local-iterations", "7",
                 "--data", "extra"])
    _write_run_recipe(ran)
    written = out / "recipe.toml"
    again = parse(["train", "iterative", "--recipe", str(written)])
    assert settings(again) == settings(ran) and again.local_iterations == 7
    assert again.data == ["data/davis2016-train", "extra"]
    # A second command run into the same folder adds its table, keeping the first.
    ran_global = parse(["train", "global", "--recipe", recipe, "--out", str(out)])
    _write_run_recipe(ran_global)
    assert set(tomllib.loads(written.read_text())) == {"iterative", "global"}
    assert settings(parse(["train", "iterative", "--recipe", str(written)])) == settings(ran)


def test_the_synthesis_candidate_is_the_shipped_recipe_plus_synthesis():
    # Only the synthesised clips differ (and where runs go), so a fold's FCN serves both.
    def table(name, command):
        values = tomllib.loads((REPO / "recipes" / name).read_text(encoding="utf-8"))[command]
        return {key: value for key, value in values.items() if key not in ("out", "output", "local-init")}

    assert table("lite-synth.toml", "fcn") == table("lite.toml", "fcn")
    assert table("lite-synth.toml", "iterative") == {**table("lite.toml", "iterative"), "synthesize": 48}


def test_the_store_candidate_is_the_shipped_recipe_fed_from_the_feature_store():
    def table(name, command):
        values = tomllib.loads((REPO / "recipes" / name).read_text(encoding="utf-8"))[command]
        return {key: value for key, value in values.items() if key not in ("out", "output", "local-init")}

    assert table("lite-store.toml", "fcn") == table("lite.toml", "fcn")
    assert table("lite-store.toml", "iterative") == {**table("lite.toml", "iterative"),
                                                     "feature-store": "runs/feature-store"}
    assert table("lite-store-crops.toml", "fcn") == table("lite.toml", "fcn")
    assert table("lite-store-crops.toml", "iterative") == {**table("lite-store.toml", "iterative"),
                                                           "feature-store-stages": ["local-2"]}
