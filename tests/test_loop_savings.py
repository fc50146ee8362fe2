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
