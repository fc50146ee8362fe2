"""fastal.loop.model: the user's model as an estimator or a (train, predict_proba) pair."""

import pytest
from sklearn.linear_model import LogisticRegression

from fastal.loop import ActiveLoop
from loop_helpers import digits_pool, model, run


@pytest.fixture(scope="module")
def digits():
    return digits_pool()


def test_callable_pair_model(digits):
    X, y, X_test, y_test = digits
    calls = []

    def train(X, y):
        calls.append(X.shape[0])
        return LogisticRegression(max_iter=200).fit(X, y)

    def predict_proba(m, X):
        return m.predict_proba(X)

    loop = ActiveLoop((train, predict_proba), X, batch_size=20, seed_size=30, budget=90,
                      validation=(X_test, y_test), seed=0)
    run(loop, y)
    assert calls == [30, 50, 70, 90]
    assert all(0.3 < r.metric <= 1 for r in loop.history)
    assert loop.predict(X_test[:5]).shape == (5,)


def test_estimator_is_cloned_not_fitted(digits):
    X, y, _, _ = digits
    estimator = model()
    run(ActiveLoop(estimator, X, batch_size=20, seed_size=20, budget=40, seed=0), y)
    assert not hasattr(estimator, "classes_")
