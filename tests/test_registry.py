"""tracker.registry: one entry per tracker, names and aliases, and trackers.ini generated from it."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from tracker import registry
from tracker.commands.registry import trackers_ini
from tracker.registry import TrackerEntry

REPO = Path(__file__).resolve().parents[1]


def test_committed_trackers_ini_is_the_generated_one():
    committed = (REPO / "trackers.ini").read_text(encoding="utf-8")
    assert committed == trackers_ini(), "trackers.ini differs from the registry: run `pixtrack registry --write trackers.ini`"


def test_every_vot_section_runs_the_tracker_of_its_own_name():
    ini = configparser.ConfigParser()
    ini.read_string(trackers_ini())
    assert ini.sections() == registry.tracker_names()
    for name in ini.sections():
        assert f"'--tracker', '{name}'" in ini[name]["command"]


@pytest.mark.parametrize("alias, name", [("two-stage", "pixtrack"), ("1stage", "pixtrack-1stage"),
                                         ("fcn", "pixtrack-fcn"), ("static", "pixtrack-static")])
def test_old_names_are_aliases_of_the_same_entry(alias, name):
    assert registry.entry(alias) is registry.entry(name)
    assert registry.canonical_name(alias) == name
    assert registry.shipped_checkpoint(alias) == registry.shipped_checkpoint(name)


def test_the_1stage_reads_the_two_stage_file_and_static_has_none():
    assert registry.shipped_checkpoint("pixtrack-1stage") == registry.shipped_checkpoint("pixtrack")
    assert registry.shipped_checkpoint("pixtrack").name == "two-stage-lite.safetensors"
    assert registry.shipped_checkpoint("pixtrack-static") is None


def test_an_unknown_name_lists_the_known_ones_and_their_aliases():
    with pytest.raises(ValueError, match=r"unknown tracker 'siamese'; known trackers: pixtrack, .*two-stage = pixtrack"):
        registry.build_tracker("siamese")


def test_an_option_the_entry_does_not_declare_is_refused():
    with pytest.raises(ValueError, match=r"'static' \(pixtrack-static\) takes no option backbone"):
        registry.build_tracker("static", backbone=object())
    assert registry.build_tracker("static", backbone=None).name == "static"  # None = not given


def test_fresh_models_of_a_configuration_through_the_registry():
    from stand_ins import TinyBackbone  # tests/ is on sys.path under pytest

    tracker = registry.build_tracker("pixtrack-1stage", device="cpu", backbone=TinyBackbone(), config="lite")
    assert type(tracker).__name__ == "OneStageTracker"
    with pytest.raises(ValueError, match="not both"):
        registry.build_tracker("pixtrack", checkpoint="x.safetensors", backbone=TinyBackbone(), config="lite")


def test_entries_are_checked_when_declared():
    with pytest.raises(ValueError, match="module:callable"):
        TrackerEntry(name="x", factory="baselines.static", label="x", description="x")
    with pytest.raises(ValueError, match="unknown options"):
        TrackerEntry(name="x", factory="a:b", label="x", description="x", options=("colour",))
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(TrackerEntry(name="y", factory="a:b", label="y", description="y", aliases=("fcn",)))
    assert "y" not in registry.known_names()


def test_registry_command_writes_and_checks(tmp_path, capsys):
    from tracker.cli import main

    path = tmp_path / "trackers.ini"
    assert main(["registry", "--write", str(path)]) == 0
    assert main(["registry", "--check", str(path)]) == 0
    path.write_text(path.read_text() + "\n[stale]\n")
    assert main(["registry", "--check", str(path)]) == 1
    assert "differs from the registry" in capsys.readouterr().err
    assert main(["registry"]) == 0
    assert "| pixtrack | two-stage |" in capsys.readouterr().out


def test_the_registry_loads_the_entrys_own_default_checkpoint(monkeypatch, tmp_path):
    """Two entries can share a factory and differ in their default checkpoint: adding
    `pixtrack-plus` is one entry, not an edit of the two-stage factory."""
    from tracker import checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_DIR", tmp_path)
    registry.register(TrackerEntry(name="pixtrack-x", factory="tracker.two_stage:build", label="x", description="x",
                                   checkpoint_kind="two-stage", checkpoint_config="x",
                                   train_command="pixtrack train iterative --recipe recipes/x.toml"))
    try:
        with pytest.raises(FileNotFoundError, match=r"two-stage-x\.safetensors does not exist.*recipes/x\.toml"):
            registry.build_tracker("pixtrack-x")
        assert registry.shipped_checkpoint("pixtrack-x") == tmp_path / "two-stage-x.safetensors"
    finally:
        registry.unregister("pixtrack-x")
