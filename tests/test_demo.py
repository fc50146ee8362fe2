"""fastal.demo: the simulation half prints the savings table and the money line."""

import io

import numpy as np

import fastal.loop
from fastal import demo
from fastal.loop import SimulationResult


def test_simulation_prints_money_and_time_saved(monkeypatch, tmp_path):
    seen = {}

    def fake_simulate(X, y, X_test, y_test, estimator, strategies, **kwargs):
        seen.update(kwargs)
        counts = np.array([20, 150, 300])
        curves = {"random": [0.5, 0.8, 0.9], "margin": [0.5, 0.9, 0.95],
                  "kcenter": [0.5, 0.7, 0.85], "uncertain_kcenter": [0.5, 0.85, 0.92]}
        acc = np.array([[curves[s]] for s in strategies], dtype=float)
        zeros = np.zeros_like(acc)
        params = dict(repeats=1, seed_size=20, batch_size=10, n_pool=1400,
                      cost_per_label=kwargs["cost_per_label"],
                      seconds_per_label=kwargs["seconds_per_label"])
        return SimulationResult(tuple(strategies), counts, acc, zeros, zeros, zeros, params)

    monkeypatch.setattr(fastal.loop, "simulate", fake_simulate)
    out = io.StringIO()
    demo.simulation(tmp_path, repeats=1, out=out, progress=False, datasets=("digits",),
                    cost_per_label=100, seconds_per_label=36)
    text = out.getvalue()
    assert seen["cost_per_label"] == 100 and seen["seconds_per_label"] == 36
    # random@300 = 0.9 is reached by margin at 150 labels: 150 saved = $15,000, 1.5 hours.
    assert ("- margin reached random's accuracy at 300 labels (0.9000) with 150 labels: 150 "
            "labels saved (+50.0 %) = $15,000 at $100 per label, 1.5 annotator-hours at 36 s "
            "per label") in text
    assert "money saved @300" in text and (tmp_path / "digits.png").exists()
    assert "(the default, auto, runs margin sampling on this 10-class data)" in text
