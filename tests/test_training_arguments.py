"""tracker.training.arguments: every training default is declared once, in the settings
dataclasses; the command line reads it from there, and what is given replaces it."""

from __future__ import annotations

import sys

import pytest

from tracker.cli import build_parser
from tracker.training.arguments import SettingsDefault, iterative_settings


def parse(*argv: str):
    return build_parser().parse_args(["train", *argv])


@pytest.mark.parametrize("command", ["iterative", "local", "global"])
def test_no_flags_give_the_settings_own_defaults(command):
    from tracker.training.iterative import IterativeSettings

    assert iterative_settings(parse(command, "--out", "x")) == IterativeSettings()


def test_fcn_flags_default_to_its_training_config():
    from baselines.fcn_training import FCNTrainingConfig
    from tracker.commands.train import _fcn_settings

    defaults = FCNTrainingConfig()
    settings = _fcn_settings(parse("fcn", "--out", "x"))
    assert settings.loop == defaults.loop and settings.clip.frames == defaults.clip.frames
    assert settings.batch_size == defaults.batch_size and settings.clip.insert_noise is False  # single ROIs


def test_a_given_value_replaces_the_default_even_when_equal_to_it():
    args = parse("iterative", "--out", "x", "--local-iterations", "2000", "--global-lr", "3e-4", "--dilation-step", "2")
    assert args.local_iterations == 2000 and not isinstance(args.local_iterations, SettingsDefault)
    settings = iterative_settings(args)
    assert settings.local_loop.iterations == 2000 and settings.global_loop.lr == 3e-4
    assert settings.dilation.step == 2 and settings.dilation.start == 21  # the rest of the schedule kept


def test_help_shows_the_settings_defaults_and_building_the_parser_imports_no_torch(capsys):
    import subprocess

    code = "import sys, tracker.cli; tracker.cli.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    with pytest.raises(SystemExit):
        parse("iterative", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "step 2 iterations (20000)" in text and "frames after the initial one (16)" in text
