"""fastal.loop.savings: labels each strategy needs to reach the baseline's accuracy."""

import numpy as np
import pytest

from fastal._errors import FastalError
from fastal.loop import SimulationResult, labels_saved


def test_labels_saved_interpolates_and_flags_not_reached():
    counts = np.array([100, 200, 300, 400])
    curves = {
        "random": np.array([0.50, 0.60, 0.70, 0.80]),
        "fast": np.array([0.50, 0.70, 0.80, 0.85]),     # random@200=0.6 at 150; @400=0.8 at 300
        "slow": np.array([0.50, 0.55, 0.60, 0.65]),     # reaches 0.6 at 300; never 0.8
        "above": np.array([0.90, 0.91, 0.92, 0.93]),    # starts above every target
    }
    table = labels_saved(counts, curves, (200, 400, 250))
    assert table.strategies == ("random", "fast", "slow", "above")
    np.testing.assert_allclose(table.target_accuracy, [0.6, 0.8, 0.65])
    needed = table.labels_needed
    np.testing.assert_allclose(needed[0], [200, 400, 250])
    np.testing.assert_allclose(needed[1], [150, 300, 175])
    assert needed[2, 0] == pytest.approx(300) and np.isnan(needed[2, 1])
    assert needed[2, 2] == pytest.approx(400)
    np.testing.assert_allclose(needed[3], [100, 100, 100])
    np.testing.assert_allclose(table.saved_percent[1], [25.0, 25.0, 30.0])
    assert table.saved_percent[2, 0] == pytest.approx(-50.0)
    markdown = table.to_markdown()
    assert "not reached" in markdown and "+25.0 %" in markdown and "-50.0 %" in markdown
    with pytest.raises(FastalError, match="outside the measured label counts"):
        labels_saved(counts, curves, (500,))
    with pytest.raises(FastalError, match="baseline 'random'"):
        labels_saved(counts, {"fast": curves["fast"]}, (200,))


def test_labels_saved_table_on_a_result():
    counts = np.array([10, 20, 30])
    accuracy = np.array([[[0.5, 0.6, 0.7], [0.5, 0.6, 0.7]],
                         [[0.5, 0.8, 0.9], [0.5, 0.6, 0.7]]])  # margin mean: .5 .7 .8
    zeros = np.zeros_like(accuracy)
    result = SimulationResult(("random", "margin"), counts, accuracy, zeros, zeros, zeros)
    table = result.labels_saved_table(budgets=(20, 30))
    np.testing.assert_allclose(table.labels_needed[1], [15, 20])
    np.testing.assert_allclose(table.saved_percent[1], [25.0, 100 / 3])


def test_money_and_annotator_time_in_table_and_sentences():
    counts = np.array([1000, 2000, 3000])
    curves = {"random": np.array([0.5, 0.6, 0.7]), "margin": np.array([0.6, 0.7, 0.8])}
    table = labels_saved(counts, curves, (3000,), cost_per_label=100, seconds_per_label=36)
    # random@3000 = 0.7, reached by margin at 2000: 1000 labels saved.
    np.testing.assert_allclose(table.labels_saved_count[:, 0], [0, 1000])
    np.testing.assert_allclose(table.money_saved[:, 0], [0, 100_000])
    np.testing.assert_allclose(table.hours_saved[:, 0], [0, 10])
    markdown = table.to_markdown()
    assert "money saved @3000" in markdown and "$100,000" in markdown and "| 10.0 |" in markdown
    (sentence,) = table.sentences()
    assert sentence == ("margin reached random's accuracy at 3,000 labels (0.7000) with 2,000 "
                        "labels: 1,000 labels saved (+33.3 %) = $100,000 at $100 per label, "
                        "10.0 annotator-hours at 36 s per label")
    plain = labels_saved(counts, curves, (3000,))
    assert plain.money_saved is None and "money" not in plain.to_markdown()
    with pytest.raises(FastalError, match="cost_per_label must be a finite number >= 0"):
        labels_saved(counts, curves, (3000,), cost_per_label=-1)
    with pytest.raises(FastalError, match="strategy must be one of random, margin"):
        table.sentences("badge")


def test_aulc_and_paired_standard_errors():
    from fastal.loop import aulc

    counts = np.array([0, 10, 30])
    np.testing.assert_allclose(aulc(counts, [0.5, 0.5, 0.5]), 0.5)
    # trapezoids: 10 * (0 + 1) / 2 + 20 * (1 + 1) / 2 = 25, over 30
    np.testing.assert_allclose(aulc(counts, [[0, 1, 1]]), [25 / 30])
    accuracy = np.array([[[0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.6, 0.7, 0.8]],
                         [[0.6, 0.7, 0.8], [0.5, 0.6, 0.7], [0.6, 0.7, 0.8]]])
    zeros = np.zeros_like(accuracy)
    result = SimulationResult(("random", "margin"), counts, accuracy, zeros, zeros, zeros)
    table = result.aulc_table()
    per = table.per_repeat
    np.testing.assert_allclose(table.mean, per.mean(axis=1))
    np.testing.assert_allclose(table.se, per.std(axis=1, ddof=1) / np.sqrt(3))
    diffs = per[1] - per[0]          # 0.1, 0.1, 0.0
    assert table.diff[1] == pytest.approx(diffs.mean())
    assert table.diff_se[1] == pytest.approx(diffs.std(ddof=1) / np.sqrt(3))
    assert table.verdict(1) == "better" and "better" in table.to_markdown()
    name, text = result.recommendation(noise=3.0)
    assert name == "random" and "use random sampling" in text   # 0.067 < 3 * 0.033
    assert result.recommendation(noise=1.0)[0] == "margin"
    with pytest.raises(FastalError, match="label_counts must be 1-D, strictly increasing"):
        aulc([0, 0, 1], [1, 1, 1])


def test_strategy_losing_to_random_is_flagged():
    counts = np.array([0, 10])
    accuracy = np.array([[[0.6, 0.7], [0.6, 0.8]], [[0.5, 0.6], [0.5, 0.65]]])
    zeros = np.zeros_like(accuracy)
    result = SimulationResult(("random", "entropy"), counts, accuracy, zeros, zeros, zeros)
    assert result.aulc_table().verdict(1) == "worse"
    assert "**loses to random**" in result.aulc_table().to_markdown()
