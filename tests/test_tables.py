"""evaluation.tables and evaluation.vot_results: the paper's table shape, numbers a person
can check by hand, the CLI end to end, and bad input named in one line."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from test_protocols import OracleTracker, TinySequence  # tests/ is on sys.path under pytest

from evaluation.protocols import GT_ROI, TRACKING, TrackerSpec, evaluate_lengths
from evaluation.table_model import PAPER, build_table
from evaluation.table_render import to_csv, to_latex, to_markdown
from evaluation.tables import main
from evaluation.vot_results import workspace_scores


class ShiftedOracle(OracleTracker):
    """The ground truth shifted 3 px right: a 6 px square then overlaps by 3 / 9 = 1/3."""

    def track(self, frame, state, roi=None):
        prob, state = super().track(frame, state, roi)
        return np.roll(prob, 3, axis=1), state


def _tiny_run(protocol: str):
    # Lengths 20..160 on sequences of 30 and 200 frames: stretched and cut ones both.
    sequences = [TinySequence("short", 30), TinySequence("long", 200, speed=0)]
    trackers = {
        "perfect": OracleTracker(sequences, 1.0),
        "half-sure": OracleTracker(sequences, 0.5),
        "shifted": ShiftedOracle(sequences),
    }
    specs = [TrackerSpec(name, lambda checkpoint, t=tracker: t) for name, tracker in trackers.items()]
    scores = evaluate_lengths(specs, sequences, protocol, (20, 40, 80, 160), (0.4, 0.7), progress=False)
    return scores, list(trackers)


@pytest.mark.parametrize("number, protocol", [(2, GT_ROI), (3, TRACKING)])
def test_table_from_a_tiny_run_has_the_papers_shape_and_hand_checked_numbers(number, protocol):
    scores, trackers = _tiny_run(protocol)
    table = build_table(number, scores, (0.4, 0.7), (20, 40, 80, 160), trackers)
    assert table.lengths == (20, 40, 80, 160) and table.sequences == 2
    assert list(table.blocks) == [0.4, 0.7]
    for rows in table.blocks.values():
        assert [row.label for row in rows] == ["perfect", "half-sure", "shifted"]
        assert all(len(row.cells) == 4 for row in rows)
    expected = {
        (0.4, "perfect"): 1.0, (0.7, "perfect"): 1.0,
        (0.4, "half-sure"): 1.0, (0.7, "half-sure"): 0.0,  # a 0.5 map: object at 0.4, nothing at 0.7
        (0.4, "shifted"): 1 / 3, (0.7, "shifted"): 1 / 3,
    }
    for (threshold, row), value in expected.items():
        for length in table.lengths:
            assert table.value(threshold, row, length) == pytest.approx(value)


def test_renderings_carry_the_same_numbers():
    scores, trackers = _tiny_run(TRACKING)
    table = build_table(3, scores, (0.4, 0.7), (20, 40, 80, 160), trackers, paper=True)
    markdown = to_markdown(table)
    assert "| threshold 0.4 | 20 | 40 | 80 | 160 |" in markdown
    assert "| shifted | 0.3333 | 0.3333 | 0.3333 | 0.3333 |" in markdown
    # The paper's digits exactly as printed, in the block of their threshold.
    assert "| 1-stage ConLSTM (paper) | 0.380 | 0.34601 | 0.3046 | 0.2419 |" in markdown
    assert "| FCN (paper) | 0.1030 | 0.093 | 0.0711 | 0.058 |" in markdown
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert len(rows) == 2 * (3 + 3)
    ours = {(r["threshold"], r["tracker"]): r for r in rows if r["source"] == "ours"}
    assert float(ours[("0.4", "shifted")]["160"]) == pytest.approx(1 / 3, abs=1e-12)
    assert float(ours[("0.7", "half-sure")]["20"]) == 0.0
    paper = [r for r in rows if r["source"] == "paper" and r["threshold"] == "0.7"]
    assert [r["tracker"] for r in paper] == ["2-stage ConLSTM (paper)", "1-stage ConLSTM (paper)", "FCN (paper)"]
    latex = to_latex(table)
    assert latex.count(r"\toprule") == 1 and latex.count(r"\bottomrule") == 1
    assert r"Length, threshold 0.7 & 20 & 40 & 80 & 160 \\" in latex
    assert r"perfect & \textbf{1.0000} & \textbf{1.0000}" in latex
    assert r"half-sure & \textbf{1.0000}" in latex and "shifted & 0.3333" in latex


def test_paper_numbers_are_those_printed_in_the_paper():
    assert PAPER[2][0.4][0] == ("ConLSTM", ("0.4690", "0.4405", "0.3962", "0.3342"))
    assert PAPER[2][0.4][1] == ("FCN", ("0.3785", "0.3582", "0.3157", "0.2304"))
    assert PAPER[3][0.4][0] == ("2-stage ConLSTM", ("0.3992", "0.3606", "0.3201", "0.2564"))
    assert PAPER[3][0.7][0] == ("2-stage ConLSTM", ("0.2485", "0.2302", "0.202", "0.1854"))
    assert set(PAPER[2]) == {0.4} and set(PAPER[3]) == {0.4, 0.7}


def test_paper_rows_only_where_the_paper_has_the_threshold_and_length():
    scores, trackers = _tiny_run(GT_ROI)
    table = build_table(2, scores, (0.4, 0.7), (20, 50), trackers, paper=True)
    assert [row.label for row in table.blocks[0.7]] == trackers  # Table 2 has no 0.7 block
    conlstm = table.blocks[0.4][3]
    assert conlstm.label == "ConLSTM (paper)" and conlstm.formatted() == ["0.4690", "–"]


def test_an_empty_score_list_is_an_error():
    with pytest.raises(ValueError, match="table 3: no scores"):
        build_table(3, [], (0.4,), (20,), ["x"])


# ----------------------------------------------------------------------------- end to end


def _write_dataset(root, sequences):
    from tracker.data import InMemorySequence, write_vot_list, write_vot_sequence

    for sequence in sequences:
        frames = [sequence.frame(i) for i in range(len(sequence))]
        masks = [sequence.mask(i) for i in range(len(sequence))]
        write_vot_sequence(root, InMemorySequence(sequence.name, frames, masks))
    write_vot_list(root, [sequence.name for sequence in sequences])


def test_cli_tracks_registered_trackers_and_writes_every_table(tmp_path, capsys):
    # The registered "static" tracker repeats the first mask; on a still object it is perfect,
    # on an object moving 1 px a frame it loses 1 column of 6 per frame.
    dataset = tmp_path / "sequences"
    _write_dataset(dataset, [TinySequence("still", 12, speed=0), TinySequence("moving", 4, size=(24, 40))])
    out, cache = tmp_path / "tables", tmp_path / "cache"
    argv = ["--trackers", "static", "--dataset", str(dataset), "--out", str(out), "--cache", str(cache),
            "--lengths", "3", "6", "--thresholds", "0.5", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    markdown = capsys.readouterr().out
    assert "**Table 2" in markdown and "**Table 3" in markdown
    # "moving" (4 frames): the object is at columns 2+i..8+i; the static mask overlaps frame
    # i by (6 - i) / (6 + i). Length 3 = frames 1, 2, 3; length 6 = frames 1,1,2,2,3,3.
    moving = [(6 - i) / (6 + i) for i in (1, 2, 3)]
    expected = (1.0 + np.mean(moving)) / 2
    assert f"| static | {expected:.4f} | {expected:.4f} |" in markdown
    for name in ("table2.csv", "table2.tex", "table3.csv", "table3.tex"):
        assert (out / name).stat().st_size > 0
    # The per-sequence numbers behind the cell: "still" perfect, "moving" its own mean.
    per_sequence = {(row["table"], row["sequence"]): row for row in csv.DictReader((out / "table3_per_sequence.csv").read_text(encoding="utf-8").splitlines())}
    assert sorted(per_sequence) == [("3", "moving"), ("3", "still")]
    assert float(per_sequence["3", "still"]["3"]) == pytest.approx(1.0)
    assert float(per_sequence["3", "moving"]["3"]) == pytest.approx(np.mean(moving))
    assert float(per_sequence["3", "moving"]["6"]) == pytest.approx(np.mean(moving))
    assert per_sequence["3", "moving"]["tracker"] == "static" and per_sequence["3", "moving"]["threshold"] == "0.5"
    assert len(list(cache.rglob("*.npz"))) == 2 * 3  # per table: "still" once (3 is a prefix of 6), "moving" twice
    # A second call re-reads the cache: same numbers.
    assert main(argv + ["--paper"]) == 0
    again = capsys.readouterr().out
    assert f"| static | {expected:.4f} | {expected:.4f} |" in again and "(paper)" not in again  # no paper length 3


def test_cli_clip_auc_and_figures(tmp_path, capsys):
    dataset = tmp_path / "sequences"
    _write_dataset(dataset, [TinySequence("still", 12, speed=0), TinySequence("moving", 30, size=(24, 40))])
    out = tmp_path / "out"
    argv = ["--trackers", "static", "--dataset", str(dataset), "--out", str(out), "--no-cache", "--tables", "3",
            "--lengths", "5", "--clips", "4", "--clip-length", "8", "--plots", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    markdown = capsys.readouterr().out
    assert "**Pixel ROC AUC** over 4 clips of 8 frames" in markdown
    rows = list(csv.DictReader(open(out / "auc.csv")))
    assert [row["tracker"] for row in rows] == ["static"] and 0.5 < float(rows[0]["auc"]) <= 1.0
    for name in ("fig4_roc", "fig4_framewise_iou", "table3_iou_over_time_L5"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0


def _write_vot_results(workspace, tracker, sequence, masks, suffix=".bin"):
    from vot.region import Special
    from vot.region.io import write_trajectory

    from tracker.data.regions import mask_to_region

    folder = workspace / "results" / tracker / "unsupervised" / sequence
    folder.mkdir(parents=True)
    write_trajectory(str(folder / f"{sequence}_001{suffix}"), [Special(1)] + [mask_to_region(m) for m in masks[1:]])


def test_workspace_results_are_scored_like_runs(tmp_path, capsys):
    workspace = tmp_path / "ws"
    sequences = [TinySequence("alpha", 10), TinySequence("beta", 6)]
    _write_dataset(workspace / "sequences", sequences)
    for sequence in sequences:
        truth = [sequence.mask(i) for i in range(len(sequence))]
        _write_vot_results(workspace, "pixtrack", sequence.name, truth)
        _write_vot_results(workspace, "pixtrack-fcn", sequence.name, [np.roll(m, 3, axis=1) for m in truth], ".txt")
    assert main(["--workspace", str(workspace), "--lengths", "5", "8", "--out", str(tmp_path / "out"), "--paper"]) == 0
    markdown = capsys.readouterr().out
    assert "| pixtrack | 1.0000 | 1.0000 |" in markdown
    assert "| pixtrack-fcn | 0.3333 | 0.3333 |" in markdown
    assert "**Table 2" not in markdown
    from tracker.data import load_dataset

    loaded = load_dataset(workspace / "sequences")
    scores = workspace_scores(workspace, loaded, ["pixtrack-fcn"], lengths=(8,), thresholds=(0.4, 0.7))
    # "beta" has 6 frames: length 8 weighs frames 1..5 as the stretch does.
    beta = [s for s in scores if s.sequence == "beta"][0]
    assert beta.ious.shape == (2, 8)
    np.testing.assert_allclose(beta.ious, 1 / 3)


def test_workspace_scores_of_a_training_sequence_carry_a_warning(tmp_path, capsys):
    # The shipped checkpoints list the DAVIS-2016 training sequences they saw (bear among them).
    workspace = tmp_path / "ws"
    sequence = TinySequence("bear", 6)
    _write_dataset(workspace / "sequences", [sequence])
    truth = [sequence.mask(i) for i in range(len(sequence))]
    for tracker in ("pixtrack", "pixtrack-static"):
        _write_vot_results(workspace, tracker, sequence.name, truth)
    assert main(["--workspace", str(workspace), "--lengths", "5", "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    warning = "warning: pixtrack: 1 of the 1 evaluated sequences are in its checkpoint's training set (bear)"
    assert warning in captured.out and warning in captured.err
    assert "warning: pixtrack-static" not in captured.out


def test_workspace_errors_name_what_is_missing(tmp_path, capsys):
    workspace = tmp_path / "ws"
    sequences = [TinySequence("alpha", 10), TinySequence("beta", 6)]
    _write_dataset(workspace / "sequences", sequences)
    truth = [sequences[0].mask(i) for i in range(10)]
    _write_vot_results(workspace, "pixtrack", "alpha", truth)
    assert main(["--workspace", str(workspace), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "no results of tracker 'pixtrack' on sequence 'beta'" in error and "beta_001.bin" in error
    _write_vot_results(workspace, "pixtrack", "beta", truth[:4])
    assert main(["--workspace", str(workspace), "--out", str(tmp_path / "out")]) == 2
    assert "4 frames of results for the 6 frames of 'beta'" in capsys.readouterr().err
    assert main(["--workspace", str(workspace), "--trackers", "nobody"]) == 2
    assert "no 'unsupervised' results of nobody; it has: pixtrack" in capsys.readouterr().err
    assert main(["--workspace", str(workspace), "--tables", "2"]) == 2
    assert "Table 3 only" in capsys.readouterr().err
    assert main(["--workspace", str(tmp_path / "nothing")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["--dataset", str(tmp_path / "absent"), "--trackers", "static"]) == 2
    assert "absent" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "list.txt").write_text("")
    assert main(["--dataset", str(empty), "--trackers", "static", "--out", str(tmp_path / "o")]) == 2
    assert "empty" in capsys.readouterr().err
    dataset = tmp_path / "sequences"
    _write_dataset(dataset, [TinySequence("still", 5, speed=0)])
    assert main(["--dataset", str(dataset), "--trackers", "nonexistent", "--no-progress"]) == 2
    assert "unknown tracker 'nonexistent'" in capsys.readouterr().err
    assert main(["--dataset", str(dataset), "--trackers", "static", "--thresholds", "1.5"]) == 2
    assert "1.5 is not in [0, 1]" in capsys.readouterr().err
