"""fastal.loop.loop: ActiveLoop hands out batches, records labels and refuses bad ones."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fastal._errors import FastalError
from fastal.loop import STRATEGIES, ActiveLoop
from loop_helpers import digits_pool, model, run


@pytest.fixture(scope="module")
def digits():
    return digits_pool()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batches_valid_distinct_never_relabeled(digits, strategy):
    X, y, _, _ = digits
    loop = ActiveLoop(model(), X, strategy=strategy, batch_size=15, seed_size=20, budget=80,
                      seed=3)
    seen = set()
    for batch in run(loop, y):
        pos = batch.positions
        assert pos.dtype == np.int64 and pos.ndim == 1
        assert ((pos >= 0) & (pos < X.shape[0])).all()
        assert np.unique(pos).size == pos.size
        assert not seen & set(pos.tolist())
        seen |= set(pos.tolist())
    assert len(seen) == 80 and loop.n_labeled == 80 and loop.stopped_by == "budget"
    np.testing.assert_array_equal(np.sort(loop.labeled_positions), np.sort(list(seen)))
    np.testing.assert_array_equal(loop.labels, y[loop.labeled_positions])


@pytest.mark.parametrize("strategy", ["random", "margin", "kcenter", "uncertain_kcenter"])
def test_same_seed_same_batches(digits, strategy):
    X, y, _, _ = digits

    def batches(seed):
        loop = ActiveLoop(model(), X, strategy=strategy, batch_size=10, seed_size=20,
                          budget=60, seed=seed)
        return [b.positions.tolist() for b in run(loop, y)]

    first = batches(7)
    assert first == batches(7)
    assert first != batches(8)  # the seed set differs


def test_callable_strategy_and_kcenter_cold_start(digits):
    X, y, _, _ = digits

    def lowest_unlabeled(probs, X_given, labeled_mask, k, rng):
        assert X_given is X and probs.shape[0] == X.shape[0]
        return np.flatnonzero(~labeled_mask)[:k]

    loop = ActiveLoop(model(), X, strategy=lowest_unlabeled, batch_size=10, seed_size=10,
                      budget=40, seed=0)
    batches = run(loop, y)
    assert batches[1].strategy == "lowest_unlabeled"
    assert batches[1].positions.tolist() == [p for p in range(40) if p not in
                                             batches[0].positions][:10]
    cold = ActiveLoop(model(), X, strategy="kcenter", batch_size=10, budget=30, seed=0)
    batches = run(cold, y)
    assert [b.strategy for b in batches] == ["kcenter"] * 3


# --------------------------------------------------------------------------- bad input


@pytest.fixture()
def started(digits):
    """A loop whose seed batch was labeled and whose first model batch is handed out."""
    X, y, _, _ = digits
    loop = ActiveLoop(model(), X, batch_size=10, seed_size=20, classes=range(10), seed=0)
    seed = next(loop)
    loop.teach(seed.positions, y[seed.positions])
    batch = next(loop)
    return loop, batch, y


def test_teach_rejects_rows_not_in_pool(started):
    loop, batch, _ = started
    with pytest.raises(FastalError, match="row 600 is not in the pool"):
        loop.teach([600], [1])
    with pytest.raises(FastalError, match="not in the pool"):
        loop.teach([-1], [1])


def test_teach_rejects_already_labeled(started):
    loop, _, y = started
    row = int(loop.labeled_positions[0])
    with pytest.raises(FastalError, match=f"row {row} is already labeled"):
        loop.teach([row], [y[row]])


def test_teach_rejects_rows_not_in_last_batch(started):
    loop, batch, y = started
    outside = next(p for p in range(600) if p not in batch.positions
                   and p not in loop.labeled_positions)
    with pytest.raises(FastalError, match=f"row {outside} is not in a batch"):
        loop.teach([outside], [y[outside]])


def test_teach_rejects_unknown_class_and_bad_shapes(started):
    loop, batch, y = started
    with pytest.raises(FastalError, match="label 11 is not one of the declared classes"):
        loop.teach(batch.positions[:2], [1, 11])
    with pytest.raises(FastalError, match=r"labels must have shape \(2,\)"):
        loop.teach(batch.positions[:2], [1])
    with pytest.raises(FastalError, match="more than once"):
        loop.teach([batch.positions[0]] * 2, [1, 1])
    assert loop.n_labeled == 20  # nothing of a refused call is recorded


def test_stale_model_refused_unless_allowed(digits):
    X, y, _, _ = digits
    loop = ActiveLoop(model(), X, batch_size=10, seed_size=20, seed=0)
    seed = next(loop)
    loop.teach(seed.positions, y[seed.positions])
    first = next(loop)
    with pytest.raises(FastalError, match="stale"):
        next(loop)
    loop.teach(first.positions[:3], y[first.positions[:3]])  # part of a batch is enough
    second = next(loop)
    assert not set(second.positions) & set(first.positions)

    stale = ActiveLoop(model(), X, batch_size=10, seed_size=20, seed=0, allow_stale=True)
    seed = next(stale)
    stale.teach(seed.positions, y[seed.positions])
    a, b = next(stale), next(stale)
    assert not set(a.positions) & set(b.positions)
    assert stale.pending.size == 20


def test_batch_size_larger_than_remaining_pool(digits):
    X, y, _, _ = digits
    with pytest.raises(FastalError, match="batch_size=700 is larger than the remaining pool"):
        ActiveLoop(model(), X, batch_size=700, seed_size=20)
    with pytest.raises(FastalError, match="larger than the remaining pool"):
        ActiveLoop(model(), X[:30], batch_size=20, labeled=(np.arange(20), y[:20]))
    loop = ActiveLoop(model(), X, batch_size=10, labeled=(np.arange(20), y[:20]))
    with pytest.raises(FastalError, match="batch size 581 is larger than the remaining pool"):
        loop.next_batch(k=581)


def test_fit_failure_wrapped_and_labels_kept(digits):
    X, y, _, _ = digits

    def train(X, y):
        if X.shape[0] > 20:
            raise RuntimeError("out of memory on the GPU")
        return LogisticRegression(max_iter=200).fit(X, y)

    loop = ActiveLoop((train, lambda m, X: m.predict_proba(X)), X, batch_size=10,
                      seed_size=20, seed=0)
    seed = next(loop)
    loop.teach(seed.positions, y[seed.positions])
    batch = next(loop)
    loop.teach(batch.positions, y[batch.positions])
    with pytest.raises(FastalError, match="estimator failed to fit on 30 labeled rows: "
                                          "RuntimeError: out of memory on the GPU"):
        next(loop)
    assert loop.n_labeled == 30
    np.testing.assert_array_equal(loop.labeled_positions,
                                  np.concatenate([seed.positions, batch.positions]))
    np.testing.assert_array_equal(loop.labels, y[loop.labeled_positions])


def test_sklearn_fit_failure_wrapped(digits):
    X, y, _, _ = digits
    loop = ActiveLoop(model(), X, batch_size=10, labeled=(np.arange(5), np.zeros(5, int)))
    with pytest.raises(FastalError, match="estimator failed to fit on 5 labeled rows"):
        next(loop)
    assert loop.labels.tolist() == [0] * 5


def test_empty_seed_with_model_strategy(digits):
    X, _, _, _ = digits
    with pytest.raises(FastalError, match="seed set is empty and strategy 'margin' needs a model"):
        ActiveLoop(model(), X, strategy="margin")
    with pytest.raises(FastalError, match="stratified needs labels"):
        ActiveLoop(model(), X, seed_size=10, seed_strategy="stratified")


def test_bad_arguments(digits):
    X, y, _, _ = digits
    with pytest.raises(FastalError, match="strategy must be one of"):
        ActiveLoop(model(), X, strategy="magin", seed_size=10)
    with pytest.raises(FastalError, match="model must be a scikit-learn style estimator"):
        ActiveLoop(object(), X, seed_size=10)
    with pytest.raises(FastalError, match="target needs validation"):
        ActiveLoop(model(), X, seed_size=10, target=0.9)
    with pytest.raises(FastalError, match="seed must be"):
        ActiveLoop(model(), X, seed_size=10, seed=-1)
    with pytest.raises(FastalError, match="batch_size must be >= 1"):
        ActiveLoop(model(), X, seed_size=10, batch_size=0)
    with pytest.raises(FastalError, match="dense NumPy array"):
        from scipy import sparse
        ActiveLoop(model(), sparse.csr_matrix(X), strategy="kcenter")
