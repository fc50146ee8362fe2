"""fastal.loop.stopping: each stopping rule fires, and Cohen's kappa is right."""

import numpy as np
import pytest

from fastal.loop import ActiveLoop, cohen_kappa
from loop_helpers import digits_pool, model, run


@pytest.fixture(scope="module")
def digits():
    return digits_pool()


def test_cohen_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a, b = rng.integers(4, size=200), rng.integers(4, size=200)
    b[:120] = a[:120]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0


def test_each_stopping_criterion_fires(digits):
    X, y, X_test, y_test = digits
    common = dict(batch_size=10, seed_size=20, seed=0)

    loop = ActiveLoop(model(), X, budget=45, **common)
    run(loop, y)
    assert loop.stopped_by == "budget" and loop.n_labeled == 45  # last batch cut to 5

    loop = ActiveLoop(model(), X, max_rounds=2, **common)
    run(loop, y)
    assert loop.stopped_by == "max_rounds" and loop.n_labeled == 40

    loop = ActiveLoop(model(), X, validation=(X_test, y_test), target=0.80, **common)
    run(loop, y)
    assert loop.stopped_by == "target"
    assert loop.history == [] or loop.history[-1].metric < 0.80
    assert loop.model.score(X_test, y_test) >= 0.80

    loop = ActiveLoop(model(), X, kappa_threshold=0.5, kappa_window=2, **common)
    run(loop, y)
    assert loop.stopped_by == "stable_predictions"
    assert len(loop._kappas) >= 2 and np.mean(loop._kappas[-2:]) >= 0.5

    loop = ActiveLoop(model(), X, uncertainty_threshold=0.45, **common)
    run(loop, y)
    assert loop.stopped_by == "low_uncertainty"
    assert all(r.uncertainty >= 0.45 for r in loop.history)

    small = ActiveLoop(model(), X[:45], batch_size=10, seed_size=20, seed=0)
    run(small, y)
    assert small.stopped_by == "pool_exhausted" and small.n_labeled == 45


def test_stop_set_given_explicitly(digits):
    X, y, X_test, _ = digits
    loop = ActiveLoop(model(), X, batch_size=20, seed_size=20, stop_set=X_test,
                      kappa_threshold=0.99, kappa_window=1, budget=100, seed=0)
    run(loop, y)
    assert loop.stopped_by in ("stable_predictions", "budget")
    assert all(r.kappa is None or -1 <= r.kappa <= 1 for r in loop.history)


def test_stopping_points_replays_each_rule():
    from fastal.loop import stopping_points

    counts = np.array([100, 200, 300, 400, 500])
    metric = np.array([[0.5, 0.6, 0.7, 0.75, 0.8], [0.5, 0.6, 0.65, 0.7, 0.72]])
    kappa = np.array([[np.nan, 0.9, 0.995, 0.995, 0.999],   # window 2 first full at t=2
                      [np.nan, 0.5, 0.6, 0.7, 0.8]])        # never stable
    uncertainty = np.array([[0.3, 0.2, 0.09, 0.05, 0.04], [0.3, 0.3, 0.3, 0.3, 0.3]])
    points = stopping_points(counts, metric, kappa, uncertainty, kappa_threshold=0.99,
                             kappa_window=2, uncertainty_thresholds=(0.1,))
    labels, values, fired = points["budget"]
    np.testing.assert_array_equal(labels, [500, 500])
    assert not fired.any()
    labels, values, fired = points["stable predictions (kappa >= 0.99 over 2)"]
    np.testing.assert_array_equal(labels, [400, 500])   # mean(0.995, 0.995) at t=3
    np.testing.assert_array_equal(values, [0.75, 0.72])
    np.testing.assert_array_equal(fired, [True, False])
    labels, values, fired = points["overall uncertainty < 0.1"]
    np.testing.assert_array_equal(labels, [300, 500])
    assert fired.tolist() == [True, False]


def test_simulation_records_kappa_and_uncertainty(digits):
    from fastal.loop import simulate

    X, y, X_test, y_test = digits
    result = simulate(X, y, X_test, y_test, model(), strategies=["random", "margin"],
                      seed_size=20, batch_size=20, budget=100, repeats=1, stop_set_size=200,
                      progress=False)
    assert np.isnan(result.kappa[:, :, 0]).all() and (result.kappa[:, :, 1:] <= 1).all()
    assert np.isnan(result.uncertainty[0]).all()       # random reads no probabilities
    assert (result.uncertainty[1] > 0).all() and (result.uncertainty[1] < 1).all()
    points = result.stopping("margin", kappa_threshold=0.5, kappa_window=1)
    assert set(points) == {"budget", "stable predictions (kappa >= 0.5 over 1)",
                           "overall uncertainty < 0.1"}
    # A loop given the stop set without a threshold records the same kappas, stopping nothing.
    loop = ActiveLoop(model(), X, batch_size=20, seed_size=20, budget=60, stop_set=X[:200],
                      seed=0)
    run(loop, y)
    assert loop.stopped_by == "budget" and loop.history[-1].kappa is not None
