"""fastal.diversity.seals: SEALS candidate pools, checked against a brute-force neighbour search."""

import numpy as np
import pytest

import fastal
from fastal._errors import FastalError
from fastal.diversity.seals import KnnCandidates, knn_candidates


def brute_candidates(X, labeled, knn):
    d = ((X[labeled][:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    near = np.argsort(d, axis=1, kind="stable")[:, : knn + 1]
    out = np.setdiff1d(np.unique(near), labeled)
    return out


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6)).astype(np.float32)   # continuous: no distance ties
    probs = rng.dirichlet(np.ones(4), size=3000).astype(np.float32)
    return X, probs


def test_candidates_are_the_neighbours_of_labeled_rows(pool):
    X, _ = pool
    labeled = np.arange(0, 3000, 97)
    got = knn_candidates(X, labeled, knn=7)
    np.testing.assert_array_equal(got, brute_candidates(X, labeled, 7))
    # Incremental: a second call searches only the new rows and gives the same answer.
    cands = KnnCandidates(X, knn=7)
    cands(labeled[:10])
    np.testing.assert_array_equal(cands(labeled), got)
    assert len(cands._neighbours) == labeled.size


def test_candidates_widen_when_neighbours_are_all_labeled():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert KnnCandidates(X, knn=2)([0, 1, 2, 9], at_least=5).tolist() == [3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("strategy", ["margin", "random", "kcenter", "badge", "cluster_margin"])
def test_every_strategy_picks_among_candidates(pool, strategy):
    X, probs = pool
    labeled = np.arange(40)
    spec = fastal.STRATEGIES[strategy]
    data = X if "embeddings" in spec.needs else probs
    extra = {"probs": probs} if len(spec.needs) == 2 else {}
    cands = KnnCandidates(X, knn=10)
    sel = fastal.select(data, 25, strategy, labeled=labeled, candidates=cands, seed=1, **extra)
    expected = brute_candidates(X, labeled, 10)
    np.testing.assert_array_equal(sel.extra["candidates"], expected)
    assert set(sel.indices.tolist()) <= set(expected.tolist())
    assert sel.indices.size == 25 and np.unique(sel.indices).size == 25 and sel.n_pool == 3000
    if strategy == "margin":
        # The same as margin sampling on the candidate rows alone.
        full = fastal.select(probs[expected], 25, "margin")
        np.testing.assert_array_equal(sel.indices, expected[full.indices])


def test_candidate_rows_outside_are_never_read(pool):
    X, probs = pool
    labeled = np.arange(40)
    cands = knn_candidates(X, labeled, knn=10)
    partial = np.full_like(probs, np.nan)      # the model scored only the candidates
    partial[cands] = probs[cands]
    sel = fastal.select(partial, 10, "margin", labeled=labeled, candidates=cands)
    np.testing.assert_array_equal(
        sel.indices, fastal.select(probs, 10, "margin", labeled=labeled, candidates=cands).indices)


def test_candidates_bad_arguments(pool):
    X, probs = pool
    with pytest.raises(FastalError, match="needs the pool's embeddings"):
        fastal.select(probs, 5, "margin", labeled=[0], candidates="knn")
    with pytest.raises(FastalError, match="needs labeled rows"):
        fastal.select(X, 5, "kcenter", candidates="knn")
    with pytest.raises(FastalError, match="knn is the neighbour count"):
        fastal.select(X, 5, "kcenter", labeled=[0], knn=5)
    with pytest.raises(FastalError, match="candidates must be 'knn'"):
        fastal.select(X, 5, "kcenter", labeled=[0], candidates="all")
    with pytest.raises(FastalError, match="larger than the candidate pool"):
        fastal.select(probs, 5, "margin", labeled=[0], candidates=[1, 2])
    with pytest.raises(FastalError, match=r"candidates positions must be in \[0, 3000\)"):
        fastal.select(probs, 1, "margin", candidates=[3000])
    with pytest.raises(FastalError, match="knn must be >= 1"):
        KnnCandidates(X, knn=0)


def test_loop_with_candidates_scores_a_fraction_of_the_pool(pool):
    from sklearn.linear_model import LogisticRegression

    X, _ = pool
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    loop = fastal.ActiveLoop(LogisticRegression(), X, batch_size=20, seed_size=20, budget=80,
                             strategy_options={"candidates": "knn", "knn": 5}, seed=0)
    for batch in loop:
        loop.teach(batch.positions, y[batch.positions])
    scored = [r.n_scored for r in loop.history]
    assert len(scored) == 3 and all(0 < s < 400 for s in scored)
    assert scored == sorted(scored)       # the candidate pool grows with the labels


def test_l2_neighbours_of_values_too_large_for_float32_distances_are_an_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    huge = X * np.float32(2.0 ** 64)
    with pytest.raises(fastal.DataError, match="float32's range"):
        KnnCandidates(huge, knn=3)
    # cosine normalises the rows first: the same values are fine, and so are a scaled copy's
    np.testing.assert_array_equal(KnnCandidates(huge, knn=3, metric="cosine")([0, 1]),
                                  KnnCandidates(X, knn=3, metric="cosine")([0, 1]))
    np.testing.assert_array_equal(KnnCandidates(X * np.float32(2.0 ** 50), knn=3)([0, 1]),
                                  KnnCandidates(X, knn=3)([0, 1]))
