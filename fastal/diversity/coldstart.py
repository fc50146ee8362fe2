"""Cold-start strategies: pick a first batch from embeddings alone (no model yet)."""

from __future__ import annotations

import numpy as np

from .._selection import Selection
from .._validation import (as_embeddings, check_finite, check_int, check_k, check_l2_range,
                           make_rng, parse_labeled)
from .clustering import assign, train_kmeans


def typiclust(X, k, *, labeled=None, seed=0, n_neighbors=20):
    """Pick ``k`` pool rows by TypiClust: the most typical row of uncovered clusters.

    Parameters
    ----------
    X : array-like of shape (N, d)
        Pool embeddings (e.g. self-supervised features), float32/float64 (other real
        dtypes become float32). Finite.
    k : int
        Number of rows to pick, ``1 <= k <=`` number of unlabeled rows.
    labeled : array-like of int of shape (L,) or bool of shape (N,), optional
        Pool positions (or a mask) of labeled rows: never picked; the clusters holding them
        count as covered.
    seed : int, numpy.random.Generator or None
        Seeds FAISS k-means (and its training subsample) via ``numpy.random.default_rng``.
    n_neighbors : int, default 20
        Neighbours in the typicality estimate (capped at the cluster size minus one).

    Returns
    -------
    Selection
        ``indices`` (k,) int64 in pick order; ``scores`` (k,) float32, the typicality of
        each pick (``inf`` when its neighbours are exact duplicates, 0 for a cluster of
        one row); ``method="typiclust"``; ``n_pool=N``; ``extra``: ``"cluster"`` (k,) int64
        the cluster of each pick, ``"cluster_size"`` (k,) int64 its size,
        ``"n_clusters"`` the number of clusters used.

    Raises
    ------
    FastalError
        Bad ``X``, ``labeled`` or ``k`` (see :func:`fastal.diversity.badge.badge`);
        ``n_neighbors < 1``.

    Notes
    -----
    Following Hacohen et al. (2022):

    1. cluster the whole pool (labeled rows included) by FAISS k-means (L2, 20 iterations,
       at most 256 training rows per centroid) into ``min(N, L + k)`` clusters, ``L`` the
       number of labeled rows; each row joins its nearest centroid;
    2. repeat ``k`` times: among clusters with an unpicked unlabeled row, take the one with
       the fewest labeled-or-picked rows, then the largest, then the lowest id (so clusters
       without labeled rows come first, largest first); pick its most typical unpicked
       unlabeled row (ties to the lower row), where

       ``typicality(x) = 1 / mean_{y in kNN(x)} ||x - y||``

       over the ``min(n_neighbors, size - 1)`` nearest *other* rows of the same cluster
       (labeled rows included).

    The neighbours come from an exact FAISS flat search within the cluster (float32
    distances), computed once per visited cluster: O(size^2 d) time and O(size
    n_neighbors) memory for a cluster of ``size`` rows, never anything N x N. Clusters
    have about N / (L + k) rows, so for a small ``k`` on a very large pool this step
    dominates; pass a subsample of the pool in that case.

    References
    ----------
    G. Hacohen, A. Dekel and D. Weinshall, "Active Learning on a Budget: Opposite
    Strategies Suit High and Low Budgets", ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.diversity.coldstart import typiclust
    >>> X = np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [5.1], [9.0]], dtype=np.float32)
    >>> typiclust(X, 2, n_neighbors=2, seed=0).indices.tolist()  # larger cluster first
    [1, 5]
    """
    import faiss

    pool = as_embeddings(X, "X")
    n_pool, d = pool.shape
    positions = parse_labeled(labeled, n_pool)
    n_unlabeled = n_pool - positions.size
    k = check_k(k, n_unlabeled, n_pool)
    n_neighbors = check_int(n_neighbors, "n_neighbors", 1)
    check_l2_range(check_finite(pool, "X"), d, "X")
    rng = make_rng(seed)

    n_clusters = min(n_pool, positions.size + k)
    centroids = train_kmeans(pool, None, n_clusters, rng)
    cluster, _ = assign(pool, None, centroids)
    sizes = np.bincount(cluster, minlength=n_clusters)
    covered = np.bincount(cluster[positions], minlength=n_clusters)
    free = sizes - covered  # unlabeled, unpicked rows per cluster
    members_order = np.argsort(cluster, kind="stable")  # rows grouped by cluster, increasing
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    is_labeled = np.zeros(n_pool, dtype=bool)
    is_labeled[positions] = True

    typicality = {}  # cluster -> (rows, typicality, still pickable mask)
    indices = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    picked_cluster = np.empty(k, dtype=np.int64)
    ids = np.arange(n_clusters)
    for t in range(k):
        open_ = np.flatnonzero(free > 0)
        g = int(open_[np.lexsort((ids[open_], -sizes[open_], covered[open_]))[0]])
        if g not in typicality:
            rows = members_order[offsets[g]:offsets[g + 1]]
            typicality[g] = (rows, _typicality(faiss, pool[rows], n_neighbors),
                             ~is_labeled[rows])
        rows, typ, pickable = typicality[g]
        # most typical pickable row; rows are increasing, so argmax's first hit is the lowest
        j = int(np.argmax(np.where(pickable, typ, -1.0)))
        pickable[j] = False
        indices[t] = rows[j]
        scores[t] = typ[j]
        picked_cluster[t] = g
        covered[g] += 1
        free[g] -= 1
    return Selection(indices=indices, scores=scores.astype(np.float32), method="typiclust",
                     n_pool=n_pool,
                     extra={"cluster": picked_cluster, "cluster_size": sizes[picked_cluster],
                            "n_clusters": n_clusters})


def _typicality(faiss, feats, n_neighbors):
    """1 / mean distance to the n nearest other rows of ``feats``, float64; 0 if alone."""
    size = feats.shape[0]
    if size == 1:
        return np.zeros(1)
    n = min(n_neighbors, size - 1)
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    index = faiss.IndexFlatL2(feats.shape[1])
    index.add(feats)
    dist2, _ = index.search(feats, n + 1)
    dist = np.sqrt(np.maximum(dist2.astype(np.float64), 0.0))
    # the n + 1 nearest include the row itself at distance ~0 (float32 rounding can leave a
    # tiny residue, or put an exact duplicate first): dropping the smallest one per row
    # leaves the n nearest others in every case
    mean = (dist.sum(axis=1) - dist.min(axis=1)) / n
    with np.errstate(divide="ignore"):
        return 1.0 / mean
