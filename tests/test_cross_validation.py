"""evaluation.cross_validation: each fold trains into its own folder with its own held-out
sequences, evaluates with its own checkpoints, and the summary holds one row per fold plus
the all-folds row, computed by the real `evaluation.tables` on small made-up data."""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import pytest
from stand_ins import write_synthetic_vot_folds  # tests/ is on sys.path under pytest

from evaluation.cross_validation import evaluated_earlier, main, plan_folds, run_step, train_folds, write_checkpoint_map
from evaluation.protocols import load_checkpoint_map
from tracker.training.folds import make_folds, read_folds

NAMES = ["a", "b", "c", "d", "e"]


def _plans(tmp_path: Path, iterative_args=("--local-init", "{fcn}", "--half")):
    split = make_folds(NAMES, k=2, seed=0)
    return split, plan_folds(split, [0, 1], dataset="DATA", folds_file="folds.json", out=tmp_path / "cv",
                             config="lite", trackers=["two-stage", "1stage", "fcn", "static"], lengths=[20, 40],
                             tables=[3], fcn_args=["--iterations", "5"], iterative_args=list(iterative_args),
                             python="PY")


def _value(command, flag):
    return command[command.index(flag) + 1]


def test_each_fold_trains_on_its_own_split_into_its_own_folder(tmp_path):
    split, plans = _plans(tmp_path)
    for plan in plans:
        fold = split.fold(plan.index)
        assert plan.test == fold.test
        for command in (plan.train_fcn, plan.train_two_stage):
            assert command[:3] == ("PY", "-m", "tracker.cli")
            assert _value(command, "--fold") == str(plan.index) and _value(command, "--folds") == "folds.json"
            assert _value(command, "--config") == "lite"
        # The fold's FCN never replaces the shipped checkpoints/fcn-lite.safetensors.
        assert Path(_value(plan.train_fcn, "--output")) == plan.fcn_checkpoint
        assert plan.fcn_checkpoint.parent == tmp_path / "cv" / f"fold-{plan.index}" / "fcn"
        assert plan.train_fcn[-2:] == ("--iterations", "5")
        # {fcn} is this fold's FCN, so --local-init never reads another fold's (or the shipped) model.
        assert _value(plan.train_two_stage, "--local-init") == str(plan.fcn_checkpoint)
        assert Path(_value(plan.train_two_stage, "--out")) == plan.two_stage_checkpoint.parent
        assert plan.two_stage_checkpoint.name == "two-stage-lite.safetensors"
        evaluate = list(plan.evaluate)
        tested = evaluate[evaluate.index("--sequences") + 1:evaluate.index("--trackers")]
        assert tested == list(fold.test)
        checkpoints = [evaluate[i + 1] for i, arg in enumerate(evaluate) if arg == "--checkpoint"]
        assert checkpoints == [f"two-stage={plan.two_stage_checkpoint}", f"1stage={plan.two_stage_checkpoint}",
                               f"fcn={plan.fcn_checkpoint}"]
    assert plans[0].fcn_checkpoint != plans[1].fcn_checkpoint


def test_checkpoint_maps_give_every_sequence_its_folds_checkpoint(tmp_path):
    split, plans = _plans(tmp_path)
    (tmp_path / "cv").mkdir()
    path = write_checkpoint_map(tmp_path / "cv" / "two-stage.json", [(p.test, p.two_stage_checkpoint) for p in plans])
    mapping = load_checkpoint_map(path)
    assert sorted(mapping) == NAMES
    for plan in plans:
        for name in plan.test:
            assert Path(mapping[name]) == plan.two_stage_checkpoint


def test_a_failing_stage_names_the_command_to_rerun():
    with pytest.raises(RuntimeError, match=r"(?s)fold 3: FCN failed \(exit status 3\).*raise SystemExit\(3\)"):
        run_step([sys.executable, "-c", "raise SystemExit(3)"], "fold 3: FCN", dry_run=False)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Four 12-frame synthetic VOT sequences and two folds of them."""
    return write_synthetic_vot_folds(tmp_path_factory.mktemp("cv-data"), 4, 12, seed=200, prefix="cv")


def test_end_to_end_the_summary_has_each_fold_and_all_folds(tiny_dataset, tmp_path, capsys):
    sequences, folds = tiny_dataset
    out = tmp_path / "cv"
    # The static tracker needs no checkpoint, so the real evaluation.tables runs in seconds.
    assert main(["--dataset", str(sequences), "--folds", str(folds), "--out", str(out), "--trackers", "static",
                 "--lengths", "5", "10", "--evaluate-only", "--cache", str(tmp_path / "runs"), "--threads", "1"]) == 0
    # One run a sequence (its 10 frames answer L = 5 too), tracked for its fold, read again for all folds.
    assert len(list((tmp_path / "runs").rglob("*.npz"))) == 4
    with (out / "cross_validation.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["fold"], r["threshold"], r["tracker"]) for r in rows] == [
        (fold, threshold, "static") for fold in ("0", "1", "all") for threshold in ("0.4", "0.7")]
    # Repeating the first mask does not depend on a threshold, and the all-folds cell is the
    # mean over sequences: with two sequences a fold, the mean of the two folds' cells.
    by_fold = {r["fold"]: float(r["10"]) for r in rows if r["threshold"] == "0.4"}
    assert 0.0 < by_fold["0"] < 1.0 and by_fold["0"] != by_fold["1"]
    assert by_fold["all"] == pytest.approx((by_fold["0"] + by_fold["1"]) / 2)
    assert "| all | 3 | 0.4 | static |" in (out / "cross_validation.md").read_text(encoding="utf-8")
    assert not (out / "two-stage.json").exists()  # no map of checkpoints that were never asked for


def test_folds_evaluated_piece_by_piece_all_reach_the_summary(tiny_dataset, tmp_path, capsys):
    sequences, folds = tiny_dataset
    out, cache = tmp_path / "cv", tmp_path / "runs"
    common = ["--dataset", str(sequences), "--folds", str(folds), "--out", str(out), "--trackers", "static",
              "--lengths", "10", "--evaluate-only", "--cache", str(cache), "--threads", "1"]
    assert main([*common, "--fold-indices", "1"]) == 0
    assert main([*common, "--fold-indices", "0"]) == 0
    assert "also holds folds 1, evaluated earlier" in capsys.readouterr().err
    with (out / "cross_validation.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["threshold"] == "0.4"]
    assert [r["fold"] for r in rows] == ["0", "1", "all"]
    by_fold = {r["fold"]: float(r["10"]) for r in rows}
    assert by_fold["all"] == pytest.approx((by_fold["0"] + by_fold["1"]) / 2)
    # A fold whose tables lack a tracker asked for now, or whose checkpoint is gone, is not mixed in.
    split = read_folds(folds)
    plan = plan_folds(split, [1], dataset=str(sequences), folds_file=str(folds), out=out, config="lite",
                      trackers=["static"], lengths=[10], tables=[3], fcn_args=[], iterative_args=[])[0]
    assert evaluated_earlier(plan, [3], ["static"], needs_fcn=False, needs_two_stage=False)
    assert not evaluated_earlier(plan, [3], ["static", "fcn"], needs_fcn=False, needs_two_stage=False)
    assert not evaluated_earlier(plan, [3], ["static"], needs_fcn=True, needs_two_stage=False)


def test_clips_give_each_folds_pixel_auc_and_their_mean(tiny_dataset, tmp_path):
    sequences, folds = tiny_dataset
    out = tmp_path / "cv"
    assert main(["--dataset", str(sequences), "--folds", str(folds), "--out", str(out), "--trackers", "static",
                 "--lengths", "10", "--evaluate-only", "--cache", str(tmp_path / "runs"), "--threads", "1",
                 "--clips", "3"]) == 0
    per_fold = {}
    for fold in ("0", "1"):  # each fold's own clips, scored by evaluation.tables
        with (out / "tables" / f"fold-{fold}" / "auc.csv").open(newline="", encoding="utf-8") as handle:
            per_fold[fold] = float(next(csv.DictReader(handle))["auc"])
    assert not (out / "tables" / "all" / "auc.csv").exists()  # no clips tracked again over all folds
    with (out / "cross_validation_auc.csv").open(newline="", encoding="utf-8") as handle:
        rows = {(r["fold"], r["tracker"]): float(r["auc"]) for r in csv.DictReader(handle)}
    assert rows[("0", "static")] == per_fold["0"] and rows[("1", "static")] == per_fold["1"]
    assert 0.5 < per_fold["0"] <= 1.0 and per_fold["0"] != per_fold["1"]
    assert rows[("mean", "static")] == pytest.approx((per_fold["0"] + per_fold["1"]) / 2)
    summary = (out / "cross_validation.md").read_text(encoding="utf-8")
    assert "**Pixel ROC AUC** over 3 clips a fold" in summary
    assert f"| static | {per_fold['0']:.4f} | {per_fold['1']:.4f} | {rows[('mean', 'static')]:.4f} |" in summary


def test_a_fold_that_does_not_exist_is_refused_before_anything_runs(tiny_dataset, tmp_path):
    sequences, folds = tiny_dataset
    with pytest.raises(ValueError, match="fold 7 does not exist"):
        main(["--dataset", str(sequences), "--folds", str(folds), "--out", str(tmp_path / "cv"),
              "--fold-indices", "0", "7", "--dry-run"])
    assert not (tmp_path / "cv").exists()


def test_evaluate_only_names_a_missing_checkpoint_and_the_command_that_makes_it(tiny_dataset, tmp_path, capsys):
    sequences, folds = tiny_dataset
    out = tmp_path / "cv"
    assert main(["--dataset", str(sequences), "--folds", str(folds), "--out", str(out), "--cache", str(tmp_path / "runs"),
                 "--trackers", "two-stage", "static", "--lengths", "5", "--evaluate-only"]) == 1
    error = capsys.readouterr().err
    assert f"fold 0: no checkpoint {out / 'fold-0' / 'two-stage' / 'two-stage-lite.safetensors'}" in error
    assert "train iterative" in error and "folds not finished: 0, 1" in error


def test_a_recipe_gives_the_data_and_settings_and_each_fold_starts_from_its_own_fcn(tmp_path):
    split = make_folds(NAMES, k=2, seed=0)
    plans = plan_folds(split, [0, 1], dataset="DATA", folds_file="folds.json", out=tmp_path / "cv", config="lite",
                       trackers=["pixtrack", "pixtrack-fcn"], lengths=[20], tables=[3], fcn_args=[],
                       iterative_args=[], python="PY", recipe="recipes/lite.toml")
    for plan in plans:
        for command in (plan.train_fcn, plan.train_two_stage):
            # --data would add to the recipe's data (the same sequences twice): the recipe gives it.
            assert "--data" not in command and _value(command, "--recipe") == "recipes/lite.toml"
            assert _value(command, "--fold") == str(plan.index)
        # The recipe's own --local-init (the all-sequences FCN) is overridden by the fold's.
        assert _value(plan.train_two_stage, "--local-init") == str(plan.fcn_checkpoint)
        assert _value(plan.evaluate, "--dataset") == "DATA"


def test_the_lite_recipe_runs_per_fold_with_the_flags_the_cross_validation_gives(tmp_path):
    """Flags beside the recipe override its scalar options: the fold's split, folders and FCN."""
    from tracker.cli import build_parser, prepare

    split = make_folds(NAMES, k=2, seed=0)
    repo = Path(__file__).resolve().parents[1]
    plan = plan_folds(split, [1], dataset="DATA", folds_file="folds.json", out=tmp_path / "cv", config="lite",
                      trackers=["pixtrack"], lengths=[20], tables=[3], fcn_args=[], iterative_args=[],
                      python="PY", recipe=str(repo / "recipes" / "lite.toml"))[0]
    for command in (plan.train_fcn, plan.train_two_stage):
        args = build_parser().parse_args(prepare(list(command[3:])))
        assert args.data == ["data/davis2016-train"] and args.fold == 1 and args.folds == "folds.json"
        assert Path(args.out).parent == tmp_path / "cv" / "fold-1"
    assert args.local_init == str(plan.fcn_checkpoint) and args.global_iterations == 600


def _stand_in_training(tmp_path: Path, fail_fold: int | None = None, meet: bool = False):
    """Plans whose training commands are small Python programs that write their checkpoint file
    (or fail, for `fail_fold`'s FCN; a two-stage program run for some `--stages` writes
    nothing). With `meet`, each FCN program first leaves a mark and waits (up to 60 s) for the
    other fold's: they finish only if they run at the same time."""
    split = make_folds(NAMES, k=2, seed=0)
    plans = plan_folds(split, [0, 1], dataset="DATA", folds_file="folds.json", out=tmp_path / "cv", config="lite",
                       trackers=["pixtrack", "pixtrack-fcn"], lengths=[20], tables=[3], fcn_args=[],
                       iterative_args=[], python="PY")
    marks = tmp_path / "marks"
    marks.mkdir()

    def program(path: Path, index: int, wait: bool, fail: bool) -> tuple[str, ...]:
        code = ("import pathlib, sys, time\n"
                f"sys.exit(3) if {fail} else None\n"
                "sys.exit(0) if '--stages' in sys.argv else None\n"
                f"marks = pathlib.Path({str(marks)!r}); (marks / '{index}').touch()\n"
                f"deadline = time.monotonic() + 60\n"
                f"while {wait} and len(list(marks.iterdir())) < 2 and time.monotonic() < deadline: time.sleep(0.05)\n"
                f"sys.exit(4) if {wait} and len(list(marks.iterdir())) < 2 else None\n"
                f"p = pathlib.Path({str(path)!r}); p.parent.mkdir(parents=True, exist_ok=True); p.write_text('')")
        return (sys.executable, "-c", code)

    return [dataclasses.replace(plan, train_fcn=program(plan.fcn_checkpoint, plan.index, meet, plan.index == fail_fold),
                                train_two_stage=program(plan.two_stage_checkpoint, plan.index, False, False))
            for plan in plans]


@pytest.mark.parametrize("workers", [1, 2])
def test_folds_train_side_by_side_and_a_failing_fold_leaves_the_others_trained(tmp_path, workers):
    plans = _stand_in_training(tmp_path, fail_fold=0)
    failed = train_folds(plans, needs_fcn=True, needs_two_stage=True, dry_run=False, workers=workers)
    assert list(failed) == [0] and "fold 0: FCN failed (exit status 3)" in failed[0]
    assert plans[1].fcn_checkpoint.is_file() and plans[1].two_stage_checkpoint.is_file()
    assert not plans[0].two_stage_checkpoint.exists()  # its FCN failed, so its two-stage run never started
    if workers > 1:  # each job's output in its own log, named in the error; the FCN's is not overwritten
        assert str(tmp_path / "cv" / "fold-0" / "train-fcn.log") in failed[0]
        assert (tmp_path / "cv" / "fold-1" / "train-fcn.log").is_file()
        assert (tmp_path / "cv" / "fold-1" / "train.log").is_file()


def test_two_training_workers_run_two_folds_at_once(tmp_path):
    plans = _stand_in_training(tmp_path, meet=True)
    assert train_folds(plans, needs_fcn=True, needs_two_stage=False, dry_run=False, workers=2) == {}
    assert all(plan.fcn_checkpoint.is_file() for plan in plans)


def _stand_in_steps(plan):
    """`plan` whose two-stage command is a small program: `--stages split` writes split.json;
    steps 1 and 2 each leave a mark and wait (up to 60 s) for the other's, so they finish only
    if they run at the same time; the plain command needs both steps' files."""
    folder = plan.two_stage_checkpoint.parent
    code = ("import pathlib, sys, time\n"
            f"folder = pathlib.Path({str(folder)!r}); folder.mkdir(parents=True, exist_ok=True)\n"
            "args = sys.argv[1:]\n"
            "if '--stages' in args:\n"
            "    stages = args[args.index('--stages') + 1:]\n"
            "    sys.exit(6) if stages != ['split'] and not (folder / 'split.json').is_file() else None\n"
            "    (folder / ('mark-' + stages[0])).touch() if stages != ['split'] else None\n"
            "    deadline = time.monotonic() + 60\n"
            "    while stages != ['split'] and len(list(folder.glob('mark-*'))) < 2 and time.monotonic() < deadline: time.sleep(0.05)\n"
            "    sys.exit(4) if stages != ['split'] and len(list(folder.glob('mark-*'))) < 2 else None\n"
            "    names = {'split': 'split.json', 'local-1': 'local-1.safetensors', 'local-2': 'local-2.safetensors',"
            " 'global-gt': 'global-gt.safetensors'}\n"
            "    [(folder / names[stage]).write_text('') for stage in stages]\n"
            "else:\n"
            "    sys.exit(5) if not ((folder / 'local-2.safetensors').is_file() and (folder / 'global-gt.safetensors').is_file()) else None\n"
            f"    pathlib.Path({str(plan.two_stage_checkpoint)!r}).write_text('')\n")
    return dataclasses.replace(plan, train_two_stage=(sys.executable, "-c", code))


def test_two_workers_train_steps_1_and_2_of_one_fold_at_once_then_the_rest(tmp_path):
    """Sec. 5.1 step 2 needs nothing of step 1: with two workers they are two processes that
    run at the same time, after the split (which writes the run's shared files), and the plain
    command then finishes the run once both steps' files exist. With two folds, fold 0's two
    steps pair up before fold 1's (the splits all go first)."""
    split = make_folds(NAMES, k=2, seed=0)
    plans = [_stand_in_steps(plan) for plan in plan_folds(
        split, [0, 1], dataset="DATA", folds_file="folds.json", out=tmp_path / "cv", config="lite",
        trackers=["pixtrack"], lengths=[20], tables=[3], fcn_args=[], iterative_args=[], python="PY")]
    assert train_folds(plans, needs_fcn=False, needs_two_stage=True, dry_run=False, workers=2) == {}
    assert all(plan.two_stage_checkpoint.is_file() for plan in plans)
    step_1 = (tmp_path / "cv" / "fold-0" / "train-step-1.log").read_text()
    assert (tmp_path / "cv" / "fold-0" / "train-step-2.log").is_file() and "exit status" not in step_1
    # Done steps are not run again: a second call has nothing to do.
    assert train_folds(plans, needs_fcn=False, needs_two_stage=True, dry_run=False, workers=2) == {}


def test_the_split_steps_are_the_fold_command_with_stages(tmp_path, capsys):
    split, plans = _plans(tmp_path)
    assert train_folds(plans[:1], needs_fcn=True, needs_two_stage=True, dry_run=True, workers=2) == {}
    printed = [line for line in capsys.readouterr().out.splitlines() if "$" in line]
    two_stage = " ".join(plans[0].train_two_stage)
    assert [line.split("] $")[0] for line in printed] == [
        "[fold 0: FCN", "[fold 0: two-stage split", "[fold 0: two-stage step 1", "[fold 0: two-stage step 2",
        "[fold 0: two-stage"]
    assert printed[1].endswith(two_stage + " --stages split")
    assert printed[2].endswith(two_stage + " --stages local-1 local-2")
    assert printed[3].endswith(two_stage + " --stages global-gt")
    assert printed[4].endswith(two_stage)
