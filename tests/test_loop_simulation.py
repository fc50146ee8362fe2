"""fastal.loop.simulation: paired learning curves, their files, and bad input."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fastal._errors import FastalError
from fastal.loop import SimulationResult, simulate
from loop_helpers import digits_pool, model


@pytest.fixture(scope="module")
def digits():
    return digits_pool()


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


def test_simulate_macro_f1_money_and_report(digits):
    X, y, X_test, y_test = digits
    result = simulate(X, y, X_test, y_test, model(), strategies=["random", "margin"],
                      seed_size=20, batch_size=20, budget=60, repeats=2, metrics=("macro_f1",),
                      cost_per_label=0.5, seconds_per_label=20, stop_set_size=0,
                      progress=False)
    f1 = result.metrics["macro_f1"]
    assert f1.shape == result.accuracy.shape and np.isfinite(f1).all()
    assert not np.array_equal(f1, result.accuracy) and result.kappa is None
    # The first point is the model of the seed set: recompute it from the same seed set.
    from sklearn.metrics import f1_score

    from fastal.loop import initial_positions

    child = np.random.SeedSequence(0).spawn(2)[0]
    seed_set = initial_positions("stratified", 20, n_pool=len(y), y=y,
                                 rng=np.random.default_rng(child))
    fitted = model().fit(X[seed_set], y[seed_set])
    assert f1[0, 0, 0] == pytest.approx(f1_score(y_test, fitted.predict(X_test), average="macro"))
    table = result.labels_saved_table(budgets=(40, 60), metric="macro_f1")
    assert table.metric == "macro_f1" and table.cost_per_label == 0.5
    text = result.report()
    assert "money saved @40" in text and "annotator-hours saved @60" in text
    assert "AULC (accuracy, mean ± SE)" in text and "per label" in text
    with pytest.raises(FastalError, match="metric must be 'accuracy' or one of the measured"):
        result.values("balanced_accuracy")
    with pytest.raises(FastalError, match="metrics items must be 'accuracy' or one of"):
        simulate(X, y, X_test, y_test, model(), budget=200, metrics=("f2",), progress=False)
    with pytest.raises(FastalError, match="seconds_per_label must be a finite number"):
        simulate(X, y, X_test, y_test, model(), budget=200, seconds_per_label=float("nan"),
                 progress=False)


def test_simulate_typiclust_seed_set(digits):
    X, y, X_test, y_test = digits
    a = simulate(X, y, X_test, y_test, model(), strategies=["margin"], seed_size=20,
                 batch_size=20, budget=40, repeats=1, seed_strategy="typiclust",
                 stop_set_size=0, progress=False)
    b = simulate(X, y, X_test, y_test, model(), strategies=["margin"], seed_size=20,
                 batch_size=20, budget=40, repeats=1, seed_strategy="random",
                 stop_set_size=0, progress=False)
    assert a.accuracy[0, 0, 0] != b.accuracy[0, 0, 0]     # a different seed set
