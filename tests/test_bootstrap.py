"""Bootstrap intervals over sequences: numbers a person can work out, determinism, and the
tables printing them (by default from 5 sequences, `--ci` / `--no-ci` to force)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from evaluation.bootstrap import bootstrap_interval, format_interval, wants_interval
from evaluation.cross_validation import write_summary
from evaluation.protocols import TRACKING, SequenceScores
from evaluation.table_model import build_table
from evaluation.table_render import to_csv, to_markdown


def test_two_sequences_0_and_1_give_the_whole_range():
    # Resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5%
    # percentiles fall inside the masses at 0 and at 1.
    assert bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)


def test_one_good_sequence_in_four_is_the_upper_end():
    # [0, 0, 0, 1]: the mean is k/4, k ~ Binomial(4, 1/4); P(k = 0) = 0.316 > 2.5%,
    # P(k <= 2) = 0.949 < 97.5% <= P(k <= 3) = 0.996, so the interval is [0, 3/4].
    assert bootstrap_interval([0.0, 0.0, 0.0, 1.0]) == (0.0, 0.75)


def test_the_width_matches_the_normal_approximation_on_many_sequences():
    values = np.random.default_rng(1).uniform(0.0, 1.0, 60)
    low, high = bootstrap_interval(values)
    expected = 2 * 1.96 * values.std() / np.sqrt(values.size)
    assert high - low == pytest.approx(expected, rel=0.1)
    assert low < values.mean() < high


def test_equal_sequences_give_a_degenerate_interval_and_seeds_repeat():
    assert bootstrap_interval([0.42] * 7) == (pytest.approx(0.42), pytest.approx(0.42))
    values = [0.1, 0.5, 0.35, 0.8, 0.62, 0.2]
    assert bootstrap_interval(values) == bootstrap_interval(values)
    assert bootstrap_interval(values, seed=1) != bootstrap_interval(values)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_interval([0.1, float("nan")])
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_interval([])


def test_intervals_by_default_from_five_sequences():
    assert [wants_interval(None, n) for n in (1, 4, 5, 40)] == [False, False, True, True]
    assert wants_interval(True, 2) and not wants_interval(False, 9)
    assert format_interval(0.41234, 0.5) == "[0.412, 0.500]" and format_interval(None, None) == ""


def scores(values_by_tracker: dict[str, list[float]]) -> list[SequenceScores]:
    """One score a (tracker, sequence), constant IoU `value` over 4 steps, one threshold."""
    return [SequenceScores(tracker, f"seq{index}", TRACKING, 4, (0.5,), np.full((1, 4), value))
            for tracker, values in values_by_tracker.items() for index, value in enumerate(values)]


def test_tables_print_each_mean_with_its_interval():
    values = {"a": [0.2, 0.4, 0.6, 0.8, 1.0], "b": [0.5] * 5}
    table = build_table(3, scores(values), (0.5,), (4,), ["a", "b"])
    low, high = bootstrap_interval(values["a"])
    markdown = to_markdown(table)
    assert f"| a | 0.6000 {format_interval(low, high)} |" in markdown
    assert "| b | 0.5000 [0.500, 0.500] |" in markdown
    assert "95% bootstrap interval of the mean over the 5 sequences" in markdown
    row = next(r for r in csv.DictReader(io.StringIO(to_csv(table))) if r["tracker"] == "a")
    assert (float(row["ci_low_4"]), float(row["ci_high_4"])) == (low, high)

    four = {"a": values["a"][:4]}
    assert "[" not in to_markdown(build_table(3, scores(four), (0.5,), (4,), ["a"]))
    forced = to_markdown(build_table(3, scores(four), (0.5,), (4,), ["a"], ci=True))
    assert f"0.5000 {format_interval(*bootstrap_interval(four['a']))}" in forced
    assert "[" not in to_markdown(build_table(3, scores(values), (0.5,), (4,), ["a"], ci=False))


def test_cross_validation_summary_carries_the_tables_intervals(tmp_path):
    table = build_table(3, scores({"a": [0.2, 0.4, 0.6, 0.8, 1.0]}), (0.5,), (4,), ["a"])
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    _, markdown = write_summary(tmp_path, {"0": rows}, [4])
    low, high = table.blocks[0.5][0].intervals[0]
    assert f"| 0 | 3 | 0.5 | a | 0.6000 {format_interval(low, high)} |" in markdown.read_text()
