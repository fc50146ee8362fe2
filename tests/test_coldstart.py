"""TypiClust (fastal.diversity.coldstart)."""

import numpy as np
import pytest

from fastal._errors import FastalError
from fastal.diversity.coldstart import typiclust
from tests import reference_badge as ref


def blobs(sizes, d=3, spread=1.0, distance=100.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = distance * rng.standard_normal((len(sizes), d))
    which = np.repeat(np.arange(len(sizes)), sizes)
    X = centres[which] + spread * rng.standard_normal((which.size, d))
    return X.astype(np.float32), which, centres


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_row_per_blob_most_typical(seed):
    sizes = [60, 90, 30, 120, 45]
    X, which, centres = blobs(sizes, seed=seed)
    sel = typiclust(X, 5, seed=seed, n_neighbors=10)
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3, 4]
    # largest (uncovered) cluster first
    assert which[sel.indices].tolist() == list(np.argsort(sizes)[::-1])
    for row, blob, typ in zip(sel.indices, which[sel.indices], sel.scores):
        members = np.flatnonzero(which == blob)
        expected = ref.typicality(X[members], 10)
        j = int(np.flatnonzero(members == row)[0])
        # FAISS float32 distances: the pick is the most typical up to rounding
        assert expected[j] >= expected.max() * (1 - 1e-4)
        np.testing.assert_allclose(typ, expected[j], rtol=1e-3)
        # a typical point sits near its blob's centre (spread 1, d = 3)
        assert np.linalg.norm(X[row] - centres[blob]) < 1.5
    assert sel.method == "typiclust" and sel.extra["n_clusters"] == 5
    assert sorted(sel.extra["cluster_size"].tolist()) == sorted(sizes)


def test_labeled_clusters_are_covered_last():
    sizes = [50, 50, 50, 50]
    X, which, _ = blobs(sizes, seed=4)
    labeled = [int(np.flatnonzero(which == 0)[0]), int(np.flatnonzero(which == 2)[0])]
    sel = typiclust(X, 2, labeled=labeled, seed=0)
    assert sel.extra["n_clusters"] == 4  # L + k
    assert sorted(which[sel.indices].tolist()) == [1, 3]


def test_more_picks_than_uncovered_clusters_revisits_the_least_covered():
    X, which, _ = blobs([40, 20], seed=5)
    sel = typiclust(X, 4, seed=0, n_neighbors=5)
    assert len(set(sel.indices.tolist())) == 4


def test_duplicates_and_tiny_pools():
    X = np.zeros((6, 2), dtype=np.float32)
    sel = typiclust(X, 6, seed=0)
    assert sorted(sel.indices.tolist()) == list(range(6))
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    sel = typiclust(X, 1, labeled=[0, 2], seed=0)
    assert sel.indices.tolist() == [1]
    one = typiclust(np.ones((1, 4)), 1)
    assert one.indices.tolist() == [0] and one.scores[0] == 0.0


def test_bad_input():
    X = np.zeros((5, 2))
    with pytest.raises(FastalError, match="n_neighbors must be >= 1"):
        typiclust(X, 1, n_neighbors=0)
    with pytest.raises(FastalError, match="k must be >= 1"):
        typiclust(X, 0)
    with pytest.raises(FastalError, match="unlabeled pool rows"):
        typiclust(X, 5, labeled=[0])
    with pytest.raises(FastalError, match="X must be 2-D"):
        typiclust(np.zeros((2, 2, 2)), 1)
    X[2, 1] = np.inf
    with pytest.raises(FastalError, match="X must be finite; row 2"):
        typiclust(X, 1)
