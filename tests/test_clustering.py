"""Cluster-Margin and k-means sampling (fastal.diversity.clustering)."""

import numpy as np
import pytest

from fastal._errors import FastalError
from fastal.diversity.badge import badge
from fastal.diversity.clustering import cluster_margin, kmeans_sample
from fastal.diversity.coldstart import typiclust
from fastal.scoring import score
from tests import reference_badge as ref
from tests.conftest import random_probs

STRATEGIES = {
    "badge": lambda X, p, k, **kw: badge(X, p, k, **kw),
    "cluster_margin": lambda X, p, k, **kw: cluster_margin(X, p, k, **kw),
    "kmeans": lambda X, p, k, **kw: kmeans_sample(X, k, **kw),
    "typiclust": lambda X, p, k, **kw: typiclust(X, k, **kw),
}


def blobs(sizes, d=2, spread=0.1, distance=100.0, seed=0):
    """Well-separated Gaussian blobs; returns X (float32), blob id of each row, centres."""
    rng = np.random.default_rng(seed)
    centres = distance * np.arange(len(sizes))[:, None] * np.ones((1, d))
    which = np.repeat(np.arange(len(sizes)), sizes)
    X = centres[which] + spread * rng.standard_normal((which.size, d))
    return X.astype(np.float32), which, centres


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("kind", ["random", "duplicates", "tiny"])
@pytest.mark.parametrize("with_labeled", [False, True])
def test_distinct_valid_unlabeled_rows(name, kind, with_labeled):
    rng = np.random.default_rng(3)
    if kind == "random":
        n, k = 400, 25
        X = rng.standard_normal((n, 6)).astype(np.float32)
    elif kind == "duplicates":
        n, k = 200, 20
        X = np.repeat(rng.standard_normal((3, 4)), [150, 40, 10], axis=0)
    else:
        n, k = 12, 12
        X = rng.standard_normal((n, 3))
    labeled = np.array([0, 5, 7]) if with_labeled else None
    if with_labeled and kind == "tiny":
        k = n - 3  # every unlabeled row
    probs = random_probs(rng, n, 3)
    sel = STRATEGIES[name](X, probs, k, labeled=labeled, seed=1)
    assert sel.indices.dtype == np.int64 and sel.indices.shape == (k,)
    assert sel.scores.dtype == np.float32 and sel.scores.shape == (k,)
    assert len(set(sel.indices.tolist())) == k
    assert sel.indices.min() >= 0 and sel.indices.max() < n
    if labeled is not None:
        assert not np.isin(sel.indices, labeled).any()
    assert sel.n_pool == n
    again = STRATEGIES[name](X, probs, k, labeled=labeled, seed=1)
    np.testing.assert_array_equal(again.indices, sel.indices)


def _margin_probs(margins):
    """Two-class probabilities with the given margins p1 - p2."""
    m = np.asarray(margins, dtype=np.float64)
    return np.stack([(1 + m) / 2, (1 - m) / 2], axis=1)


def test_cluster_margin_round_robin_smallest_cluster_first():
    # blob A has 1 low-margin row, B has 2, C has 3; every other row is confident
    X, which, _ = blobs([10, 10, 10])
    margins = np.full(30, 0.9)
    low = {0: [3], 1: [12, 17], 2: [21, 25, 28]}
    for rows in low.values():
        margins[rows] = 0.1
    probs = _margin_probs(margins)
    for seed in range(3):
        sel = cluster_margin(X, probs, 6, n_clusters=3, margin_pool=6, seed=seed)
        assert which[sel.indices].tolist() == [0, 1, 2, 1, 2, 2]
        assert sel.extra["round"].tolist() == [0, 0, 0, 1, 1, 2]
        assert sorted(sel.indices.tolist()) == sorted(sum(low.values(), []))
        # one cluster id per blob
        for blob in range(3):
            assert len(set(sel.extra["cluster"][which[sel.indices] == blob].tolist())) == 1
        np.testing.assert_array_equal(sel.scores, score(probs, "margin")[sel.indices])
    short = cluster_margin(X, probs, 4, n_clusters=3, margin_pool=6, seed=0)
    assert which[short.indices].tolist() == [0, 1, 2, 1]
    # ties in group size go to the lower cluster id: B and C both have 2 candidates
    margins[28] = 0.9
    tie = cluster_margin(X, _margin_probs(margins), 5, n_clusters=3, margin_pool=5, seed=0)
    assert which[tie.indices[0]] == 0
    clusters = tie.extra["cluster"]
    assert clusters[1] < clusters[2] and clusters[3] == clusters[1]


def test_cluster_margin_draws_from_the_lowest_margins_only():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 4)).astype(np.float32)
    probs = random_probs(rng, 500, 4)
    labeled = np.arange(0, 500, 3)
    sel = cluster_margin(X, probs, 20, labeled=labeled, n_clusters=8, margin_pool=60, seed=2)
    margin = score(probs, "margin")
    ranked = margin.astype(np.float64)
    ranked[labeled] = -np.inf
    top = np.lexsort((np.arange(500), -ranked))[:60]
    assert np.isin(sel.indices, top).all()
    assert sel.extra["margin_pool"] == 60 and sel.extra["n_clusters"] == 8
    np.testing.assert_array_equal(sel.scores, margin[sel.indices])
    # default margin pool 10 k, clipped to the unlabeled rows
    big = cluster_margin(X, probs, 40, labeled=labeled, seed=2)
    assert big.extra["margin_pool"] == 500 - labeled.size


def test_kmeans_sample_picks_nearest_rows_to_centroids():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((600, 5))
    labeled = np.arange(0, 600, 5)
    sel = kmeans_sample(X, 12, labeled=labeled, seed=0)
    unl = np.setdiff1d(np.arange(600), labeled)
    order, dist = ref.nearest_rows(X[unl], sel.extra["centroids"])
    taken = set()
    for t, row in enumerate(sel.indices.tolist()):
        free = [unl[j] for j in order[t] if unl[j] not in taken]
        best = np.min([dist[t, np.flatnonzero(unl == r)[0]] for r in free[:3]])
        picked = dist[t, np.flatnonzero(unl == row)[0]]
        assert picked <= best + 1e-4 * (1 + best)  # FAISS float32 distances
        taken.add(row)
    assert np.all(np.diff(sel.extra["cluster_size"]) <= 0)
    assert sel.extra["cluster_size"].sum() == unl.size
    np.testing.assert_array_equal(sel.scores, sel.extra["cluster_size"].astype(np.float32))
    np.testing.assert_allclose(sel.extra["distance"] ** 2,
                               [dist[t, np.flatnonzero(unl == r)[0]]
                                for t, r in enumerate(sel.indices)], rtol=1e-3, atol=1e-4)


def test_kmeans_sample_one_row_per_blob_near_its_centre():
    X, which, centres = blobs([30, 20, 50, 40])
    sel = kmeans_sample(X, 4, seed=3)
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3]
    assert which[sel.indices].tolist() == [2, 3, 0, 1]  # larger clusters first
    assert np.all(np.linalg.norm(X[sel.indices] - centres[which[sel.indices]], axis=1) < 0.3)


def test_kmeans_sample_shared_nearest_row_goes_to_next_unused():
    X = np.zeros((5, 2), dtype=np.float32)  # every centroid has the same nearest rows
    sel = kmeans_sample(X, 5, seed=0)
    assert sorted(sel.indices.tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("fn", ["cluster_margin", "kmeans"])
def test_bad_input(fn):
    X = np.zeros((5, 2))
    probs = np.full((5, 2), 0.5)
    call = STRATEGIES[fn]
    with pytest.raises(FastalError, match="k must be >= 1"):
        call(X, probs, 0)
    with pytest.raises(FastalError, match="unlabeled pool rows"):
        call(X, probs, 4, labeled=[1, 2])
    with pytest.raises(FastalError, match="X must be 2-D"):
        call(np.zeros(5), probs, 1)
    with pytest.raises(FastalError, match=r"labeled positions must be in \[0, 5\)"):
        call(X, probs, 1, labeled=[9])
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(FastalError, match="X must be finite; row 3"):
        call(bad, probs, 1)


def test_cluster_margin_bad_input():
    X = np.zeros((5, 2))
    probs = np.full((5, 2), 0.5)
    with pytest.raises(FastalError, match="one row per pool row"):
        cluster_margin(X, probs[:4], 1)
    with pytest.raises(FastalError, match="n_clusters must be >= 1 and <= 5"):
        cluster_margin(X, probs, 1, n_clusters=6)
    with pytest.raises(FastalError, match="margin_pool must be >= 2"):
        cluster_margin(X, probs, 2, margin_pool=1)
    nan = probs.copy()
    nan[1, 1] = np.nan
    with pytest.raises(FastalError):
        cluster_margin(X, nan, 1)
    with pytest.raises(FastalError):
        cluster_margin(X, np.full((5, 2), 0.7), 1)
