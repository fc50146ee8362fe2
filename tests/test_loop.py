"""fastal.loop: the active-learning loop, its stopping criteria, and the simulation."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fastal._errors import FastalError
from fastal.datasets import load_digits
from fastal.loop import (STRATEGIES, ActiveLoop, SimulationResult, _select_batch, cohen_kappa,
                         initial_positions, labels_saved, simulate)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(scale=True)
    return X[:600], y[:600], X[1500:], y[1500:]


def model():
    return LogisticRegression(max_iter=200)


def run(loop, y, limit=50):
    """Answer every batch with the true labels; return the batches."""
    batches = []
    for batch in loop:
        batches.append(batch)
        loop.teach(batch.positions, y[batch.positions])
        assert len(batches) <= limit
    return batches


# --------------------------------------------------------------------------- selection


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


def test_uncertainty_strategy_picks_top_scores(digits):
    X, y, _, _ = digits
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=X.shape[0])
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[:300] = True
    picked = _select_batch("margin", probs=probs, X=X, labeled_mask=mask, k=5, rng=rng)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = 1 - (top2[:, 1] - top2[:, 0])
    margin[mask] = -np.inf
    np.testing.assert_array_equal(picked, np.argsort(-margin, kind="stable")[:5])


def test_uncertain_kcenter_within_top_margin_candidates(digits):
    X, _, _, _ = digits
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(10), size=X.shape[0])
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[::7] = True
    picked = _select_batch("uncertain_kcenter", probs=probs, X=X, labeled_mask=mask, k=6,
                           rng=rng, beta=3)
    candidates = _select_batch("margin", probs=probs, X=X, labeled_mask=mask, k=18, rng=rng)
    assert set(picked.tolist()) <= set(candidates.tolist()) and picked.size == 6


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


def test_stratified_seed_covers_every_class():
    y = np.repeat(np.arange(5), [50, 30, 10, 5, 5])
    pos = initial_positions("stratified", 20, n_pool=y.size, y=y, rng=np.random.default_rng(0))
    assert pos.size == 20 and np.unique(pos).size == 20
    assert set(np.unique(y[pos])) == set(range(5))
    assert np.bincount(y[pos]).tolist() == [10, 6, 2, 1, 1]


def test_cohen_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a, b = rng.integers(4, size=200), rng.integers(4, size=200)
    b[:120] = a[:120]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0


# --------------------------------------------------------------------------- models


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


# --------------------------------------------------------------------------- stopping


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


# --------------------------------------------------------------------------- simulation


def test_simulate_reproducible_and_shapes(digits):
    X, y, X_test, y_test = digits
    kwargs = dict(strategies=["random", "margin"], seed_size=20, batch_size=20, budget=70,
                  repeats=2, seed=5, progress=False)
    a = simulate(X, y, X_test, y_test, model(), **kwargs)
    b = simulate(X, y, X_test, y_test, model(), **kwargs)
    assert isinstance(a, SimulationResult)
    assert a.strategies == ("random", "margin")
    assert a.label_counts.tolist() == [20, 40, 60, 70]
    assert a.accuracy.shape == (2, 2, 4) and np.isfinite(a.accuracy).all()
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    # paired design: both strategies start from the same seed set in each repeat
    np.testing.assert_array_equal(a.accuracy[0, :, 0], a.accuracy[1, :, 0])
    assert a.accuracy[0, 0, 0] != a.accuracy[0, 1, 0]  # repeats differ
    assert a.mean.shape == (2, 4) and a.std.shape == (2, 4)
    assert (a.fit_seconds > 0).all() and (a.select_seconds[:, :, -1] == 0).all()
    assert set(a.timing()) == {"random", "margin"}
    with pytest.raises(AttributeError):
        a.strategies = ()


def test_simulate_writes_csv_parquet_png(digits, tmp_path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    X, y, X_test, y_test = digits
    result = simulate(X, y, X_test, y_test, model(), strategies=["random", "kcenter"],
                      seed_size=20, batch_size=20, budget=60, repeats=1, progress=False)
    csv = result.to_csv(tmp_path / "curves.csv")
    table = pacsv.read_csv(str(csv))
    assert table.num_rows == 2 * 3
    assert table.column_names == ["strategy", "labels", "mean_accuracy", "std_accuracy",
                                  "repeats"]
    raw = pq.read_table(str(result.to_parquet(tmp_path / "raw.parquet", raw=True)))
    assert raw.num_rows == 2 * 1 * 3 and "select_seconds" in raw.column_names
    pytest.importorskip("matplotlib", reason="matplotlib (optional) is not installed")
    png = result.plot(tmp_path / "curves.png", title="digits")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from fastal.report import plot_timing

    plot_timing(result, tmp_path / "timing.png")
    assert (tmp_path / "timing.png").stat().st_size > 1000 and png is not None


def test_simulate_bad_input(digits):
    X, y, X_test, y_test = digits
    with pytest.raises(FastalError, match="y must have shape"):
        simulate(X, y[:10], X_test, y_test, model(), progress=False)
    with pytest.raises(FastalError, match="budget must be >= 100"):
        simulate(X, y, X_test, y_test, model(), budget=50, progress=False)
    with pytest.raises(FastalError, match="strategies must be distinct"):
        simulate(X, y, X_test, y_test, model(), strategies=["random", "random"],
                 progress=False)


# --------------------------------------------------------------------------- savings table


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


# --------------------------------------------------------------------------- real data


def test_fashion_mnist_slice_simulation():
    from fastal.datasets import _locate_fashion_mnist, load_fashion_mnist

    if _locate_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not cached (run fastal.datasets.fetch_fashion_mnist())")
    X, y = load_fashion_mnist(fetch=False, subset="train")
    X_test, y_test = load_fashion_mnist(fetch=False, subset="test")
    rng = np.random.default_rng(0)
    pool = rng.choice(X.shape[0], 1500, replace=False)
    test = rng.choice(X_test.shape[0], 500, replace=False)
    from sklearn.decomposition import PCA

    pca = PCA(20, random_state=0).fit(X[pool])  # fitted on the pool only, without labels
    Z, Z_test = pca.transform(X[pool]), pca.transform(X_test[test])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = simulate(Z, y[pool], Z_test, y_test[test], LogisticRegression(max_iter=300),
                          strategies=["random", "margin"], seed_size=50, batch_size=50,
                          budget=250, repeats=1, seed=0, progress=False)
    assert result.accuracy.shape == (2, 1, 5)
    assert (result.mean[:, -1] > 0.6).all()  # ten classes: chance is 0.1
