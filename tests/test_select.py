"""fastal.select: the strategy registry, the shared arguments, every strategy's contract."""

import numpy as np
import pytest

import fastal
from fastal import FastalError
from fastal._validation import l2_value_limit

import reference as ref
from conftest import random_probs


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8)) * 5
    X = (centres[rng.integers(0, 6, 600)] + rng.normal(size=(600, 8))).astype(np.float32)
    probs = random_probs(rng, 600, 4, concentration=0.5)
    return X, probs


def run(strategy, X, probs, k, **kw):
    spec = fastal.STRATEGIES[strategy]
    data = probs if spec.needs == ("probs",) else X
    extra = {"probs": probs} if "probs" in spec.needs and "embeddings" in spec.needs else {}
    return fastal.select(data, k, strategy, **extra, **kw)


@pytest.mark.parametrize("strategy", list(fastal.STRATEGIES))
def test_every_strategy_returns_k_distinct_unlabeled_rows(pool, strategy):
    X, probs = pool
    labeled = np.arange(0, 600, 7)
    for lab in (None, labeled):
        sel = run(strategy, X, probs, 25, labeled=lab, seed=3)
        assert isinstance(sel, fastal.Selection)
        assert sel.indices.dtype == np.int64 and len(sel) == 25
        assert np.unique(sel.indices).size == 25
        assert sel.indices.min() >= 0 and sel.indices.max() < 600
        if lab is not None:
            assert not np.isin(sel.indices, lab).any()
        again = run(strategy, X, probs, 25, labeled=lab, seed=3)
        np.testing.assert_array_equal(sel.indices, again.indices)  # deterministic under a seed


def test_default_is_auto_which_is_margin_without_embeddings(pool):
    X, probs = pool
    assert fastal.DEFAULT_STRATEGY == "auto"
    sel = fastal.select(probs, 10)
    assert sel.method == "auto" and sel.extra["chosen"] == "margin"
    np.testing.assert_array_equal(sel.indices, fastal.top_k(probs, 10, "margin").indices)


@pytest.mark.parametrize("method", fastal.UNCERTAINTY_METHODS)
def test_uncertainty_with_labeled_matches_reference(pool, method):
    _, probs = pool
    labeled = np.arange(0, 600, 3)
    sel = fastal.select(probs, 30, method, labeled=labeled)
    scores = fastal.score(probs, method).copy()
    scores[labeled] = -np.inf
    np.testing.assert_array_equal(sel.indices, ref.top_k(scores, 30))


def test_uncertain_kcenter_picks_among_the_most_uncertain(pool):
    X, probs = pool
    sel = fastal.select(X, 10, "uncertain_kcenter", probs=probs, beta=3)
    top = fastal.top_k(probs, 30, "margin").indices
    assert np.isin(sel.indices, top).all()
    # beta=1 degenerates to plain margin top-k (as a set)
    sel = fastal.select(X, 10, "uncertain_kcenter", probs=probs, beta=1)
    assert set(sel.indices) == set(fastal.top_k(probs, 10, "margin").indices)


def test_kcenter_strategy_is_fastal_kcenter(pool):
    X, _ = pool
    labeled = [1, 2, 3]
    np.testing.assert_array_equal(fastal.select(X, 12, "kcenter", labeled=labeled).indices,
                                  fastal.kcenter(X, 12, labeled=labeled).indices)


def test_random_is_seeded(pool):
    _, probs = pool
    a = fastal.select(probs, 20, "random", seed=1).indices
    b = fastal.select(probs, 20, "random", seed=2).indices
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, fastal.select(probs, 20, "random", seed=1).indices)


def test_strategies_are_discoverable():
    names = fastal.strategies()
    for name in ("margin", "entropy", "random", "kcenter", "uncertain_kcenter", "weighted_kcenter",
                 "badge", "cluster_margin", "kmeans", "typiclust"):
        assert name in names and len(names[name]) > 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(strategy="nope"), "strategy must be one of"),
    (dict(strategy="margin", beta=3), "strategy 'margin' does not take beta; it accepts no options"),
    (dict(strategy="uncertain_kcenter"), "needs class probabilities and embeddings"),
    (dict(strategy="uncertain_kcenter", probs=np.full((5, 2), 0.5)), "probs has 5 rows but data has 600"),
    (dict(strategy="uncertain_kcenter", probs="P", beta=0), "beta must be a number >= 1"),
    (dict(labeled=[600]), r"labeled positions must be in \[0, 600\); got 600"),
    (dict(labeled=[[1, 2]]), "labeled must be 1-D"),
    (dict(labeled=np.ones(5, dtype=bool)), "labeled as a boolean mask must have length 600"),
    (dict(labeled=np.arange(600)), "every one of the 600 pool rows is labeled"),
    (dict(labeled=np.arange(590)), r"k=20 is larger than the unlabeled pool \(10 of 600"),
    (dict(seed="x"), "seed must be None, an int or a numpy.random.Generator"),
])
def test_bad_arguments(pool, kwargs, message):
    X, probs = pool
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("probs"), str):
        kwargs["probs"] = probs
    data = X if kwargs.get("strategy", "margin") not in fastal.UNCERTAINTY_METHODS else probs
    with pytest.raises(FastalError, match=message):
        fastal.select(data, 20, **kwargs)


def test_k_larger_than_pool(pool):
    _, probs = pool
    with pytest.raises(FastalError, match="larger than the pool"):
        fastal.select(probs, 601)


def test_embeddings_from_arrow_files(pool, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, probs = pool
    emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    prb = pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), probs.shape[1])
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"emb": emb, "probs": prb}), path, row_group_size=100)
    np.testing.assert_array_equal(
        fastal.select(path, 15, "kcenter", column="emb", labeled=[0, 5]).indices,
        fastal.select(X, 15, "kcenter", labeled=[0, 5]).indices)
    np.testing.assert_array_equal(
        fastal.select(path, 15, "margin", column="probs", labeled=[0, 5]).indices,
        fastal.select(probs, 15, "margin", labeled=[0, 5]).indices)
    np.testing.assert_array_equal(fastal.select(path, 15, column="probs").indices,
                                  fastal.select(probs, 15).indices)


def test_hybrids_accept_logits(pool):
    X, probs = pool
    logits = np.log(probs.astype(np.float64) + 1e-12)
    for strategy in ("badge", "cluster_margin", "uncertain_kcenter"):
        a = fastal.select(X, 12, strategy, probs=probs, seed=4).indices
        b = fastal.select(X, 12, strategy, probs=logits, from_logits=True, seed=4).indices
        assert len(set(a) & set(b)) >= 10  # same rows up to rounding of the softmax


@pytest.mark.parametrize("strategy", ["kcenter", "uncertain_kcenter", "weighted_kcenter", "badge",
                                      "cluster_margin", "kmeans", "typiclust"])
def test_embeddings_too_large_for_float32_distances_are_an_error(strategy):
    # FAISS's k-means aborted the process (a C++ terminate) and BADGE reported infinite
    # scores on such values. Just under the limit every strategy answers, with the picks of
    # the unscaled rows (a power-of-two scale is exact).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 8)).astype(np.float32)
    X[17, 3] = 4.5  # the largest |value|
    P = random_probs(rng, 400, 4)
    limit = l2_value_limit(8)
    under = 2.0 ** np.floor(np.log2(limit / 4.5))
    assert 4.5 * under <= limit < 4.5 * under * 2
    expected = fastal.select(X, 10, strategy, probs=P, labeled=np.arange(5))
    got = fastal.select(X * np.float32(under), 10, strategy, probs=P, labeled=np.arange(5))
    np.testing.assert_array_equal(got.indices, expected.indices)
    assert np.isfinite(got.scores).all()
    with pytest.raises(fastal.DataError, match="float32.s range"):
        fastal.select(X * np.float32(under * 2), 10, strategy, probs=P, labeled=np.arange(5))
