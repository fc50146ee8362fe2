"""Clustering-based batch strategies: Cluster-Margin and k-means sampling (FAISS k-means).

Also the FAISS helpers shared with ``coldstart``: k-means training on a bounded sample,
chunked nearest-centroid assignment, chunked centroid-to-row nearest neighbours.
"""

from __future__ import annotations

import numpy as np

from .._config import CHUNK_BYTES, MIN_CHUNK_ROWS
from .._selection import Selection
from .._validation import (as_embeddings, as_probs, check_finite, check_int, check_k,
                           check_l2_range, make_rng, parse_labeled)
from .badge import badge

#: FAISS k-means iterations.
KMEANS_ITER = 20
#: At most this many training points per centroid (FAISS's own default); more rows are
#: subsampled (with the strategy's generator) before training, which bounds its memory.
KMEANS_POINTS_PER_CENTROID = 256


def cluster_margin(X, probs, k, *, labeled=None, n_clusters=None, margin_pool=None, seed=0):
    """Pick ``k`` pool rows by Cluster-Margin: low-margin rows, spread over clusters.

    Parameters
    ----------
    X : array-like of shape (N, d)
        Pool embeddings, float32/float64 (other real dtypes become float32). Finite.
    probs : array-like of shape (N, C), C >= 2
        Class probabilities of the pool rows (rows summing to 1, as for ``fastal.score``).
    k : int
        Number of rows to pick, ``1 <= k <=`` number of unlabeled rows.
    labeled : array-like of int of shape (L,) or bool of shape (N,), optional
        Pool positions (or a mask) of labeled rows: never picked. They are clustered with
        the rest of the pool.
    n_clusters : int, optional
        Number of k-means clusters of the pool, ``1 <= n_clusters <= N``. Default
        ``min(N, k)``: a full batch can then take one row from each cluster.
    margin_pool : int, optional
        How many lowest-margin unlabeled rows to draw the batch from, at least ``k``.
        Default ``10 k``; values above the number of unlabeled rows are clipped to it.
    seed : int, numpy.random.Generator or None
        Through ``numpy.random.default_rng(seed)``: seeds FAISS k-means (and its training
        subsample), then orders the rows within each cluster.

    Returns
    -------
    Selection
        ``indices`` (k,) int64 in pick order (round by round); ``scores`` (k,) float32,
        the margin score ``1 - (p_(1) - p_(2))`` of each pick (higher = smaller margin,
        as ``fastal.score(probs, "margin")``); ``method="cluster_margin"``; ``n_pool=N``;
        ``extra``: ``"cluster"`` (k,) int64 cluster id of each pick, ``"round"`` (k,)
        int64 the round-robin round it was taken in, ``"n_clusters"`` and
        ``"margin_pool"`` (the values used).

    Raises
    ------
    FastalError
        Bad ``X``, ``probs``, ``labeled`` or ``k`` (as in :func:`fastal.diversity.badge.badge`);
        ``n_clusters`` outside ``[1, N]``; ``margin_pool < k``.

    Notes
    -----
    Algorithm (Citovsky et al., 2021):

    1. cluster the whole pool once into ``n_clusters`` groups. The paper uses hierarchical
       agglomerative clustering with average linkage, which is quadratic in N; here it is
       FAISS k-means (L2, 20 iterations, at most 256 training rows per centroid, sampled),
       and every row belongs to its nearest centroid;
    2. take the ``margin_pool`` unlabeled rows with the smallest margin (highest margin
       score; ties to the lower row);
    3. group them by cluster and sort the non-empty groups by their number of candidates,
       smallest first (ties by cluster id); shuffle each group with the generator;
    4. round-robin: in round r, take the r-th row of every group that has one, groups in
       the order of step 3; stop after ``k`` rows.

    Memory: O(N) for the scores, plus the k-means training sample and O(chunk d) scratch.

    References
    ----------
    G. Citovsky, G. DeSalvo, C. Gentile, L. Karydas, A. Rajagopalan, A. Rostamizadeh and
    S. Kumar, "Batch Active Learning at Scale", NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.diversity.clustering import cluster_margin
    >>> X = np.array([[0.0], [0.1], [10.0], [10.1]], dtype=np.float32)
    >>> probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.55, 0.45], [0.6, 0.4]])
    >>> sel = cluster_margin(X, probs, 2, n_clusters=2, margin_pool=3, seed=0)
    >>> # candidates: row 0 alone in its cluster (visited first), rows 2 and 3 in the other
    >>> int(sel.indices[0]), int(sel.indices[1]) in (2, 3)
    (0, True)
    """
    from ..scoring import score

    pool = as_embeddings(X, "X")
    n_pool = pool.shape[0]
    proba = as_probs(probs, n_pool)
    positions = parse_labeled(labeled, n_pool)
    n_unlabeled = n_pool - positions.size
    k = check_k(k, n_unlabeled, n_pool)
    n_clusters = min(n_pool, k) if n_clusters is None else check_int(
        n_clusters, "n_clusters", 1, n_pool)
    if margin_pool is None:
        margin_pool = 10 * k
    else:
        margin_pool = check_int(margin_pool, "margin_pool", k)
    margin_pool = min(margin_pool, n_unlabeled)
    check_l2_range(check_finite(pool, "X"), pool.shape[1], "X")
    rng = make_rng(seed)

    margin = score(proba, "margin")  # validates probs (finite, simplex, >= 2 classes)
    ranked = margin.copy()
    ranked[positions] = -np.inf
    candidates = _top_rows(ranked, margin_pool)
    del ranked

    centroids = train_kmeans(pool, None, n_clusters, rng)
    cluster, _ = assign(pool, candidates, centroids)

    # groups smallest first (ties by id); rows shuffled within each group
    sizes = np.bincount(cluster, minlength=n_clusters)
    order = np.lexsort((np.arange(n_clusters), sizes))
    order = order[sizes[order] > 0]
    rank_of_cluster = np.empty(n_clusters, dtype=np.int64)
    rank_of_cluster[order] = np.arange(order.size)
    by_cluster = np.argsort(cluster, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    queue_pos = np.empty(candidates.size, dtype=np.int64)
    members = np.empty(candidates.size, dtype=np.int64)
    for g in order.tolist():
        rows = by_cluster[offsets[g]:offsets[g + 1]]
        members[offsets[g]:offsets[g + 1]] = rows[rng.permutation(rows.size)]
        queue_pos[offsets[g]:offsets[g + 1]] = np.arange(rows.size)
    # round r visits groups in rank order: sort by (position in queue, group rank)
    take = np.lexsort((rank_of_cluster[cluster[members]], queue_pos))[:k]
    picked = members[take]
    indices = candidates[picked]
    return Selection(indices=indices.astype(np.int64), scores=margin[indices].astype(np.float32),
                     method="cluster_margin", n_pool=n_pool,
                     extra={"cluster": cluster[picked].astype(np.int64),
                            "round": queue_pos[take].copy(), "n_clusters": n_clusters,
                            "margin_pool": int(margin_pool)})


def kmeans_sample(X, k, *, labeled=None, seed=0):
    """Pick ``k`` pool rows: the unlabeled row nearest to each centroid of a k-means.

    Parameters
    ----------
    X : array-like of shape (N, d)
        Pool embeddings, float32/float64 (other real dtypes become float32). Finite.
    k : int
        Number of rows (and clusters), ``1 <= k <=`` number of unlabeled rows.
    labeled : array-like of int of shape (L,) or bool of shape (N,), optional
        Pool positions (or a mask) of labeled rows: neither clustered nor picked.
    seed : int, numpy.random.Generator or None
        Seeds FAISS k-means (and its training subsample) via ``numpy.random.default_rng``.

    Returns
    -------
    Selection
        ``indices`` (k,) int64, one row per centroid, larger clusters first (ties by
        centroid id); ``scores`` (k,) float32: the size of the pick's cluster (unlabeled
        rows nearest to its centroid); ``method="kmeans"``; ``n_pool=N``; ``extra``:
        ``"centroids"`` (k, d) float32 in pick order, ``"cluster_size"`` (k,) int64,
        ``"distance"`` (k,) float32 Euclidean distance from each pick to its centroid.

    Raises
    ------
    FastalError
        Bad ``X``, ``labeled`` or ``k`` (see :func:`fastal.diversity.badge.badge`).

    Notes
    -----
    FAISS k-means (L2, 20 iterations, at most 256 training rows per centroid, sampled) on
    the unlabeled rows with ``k`` clusters; then, centroid by centroid in pick order, the
    nearest unlabeled row that no earlier centroid took (FAISS float32 distances, ties to
    the lower row). Two centroids never share a row, so ``k`` distinct rows are returned
    even for duplicate-heavy pools or ``k`` equal to the number of unlabeled rows. This
    is the "k-means" baseline of e.g. Ash et al. (2020) and Zhdanov (2019, the
    representative step of "Diverse mini-batch active learning").

    Memory: O(N) plus the training sample, O(k * 16) candidate lists and O(chunk d).

    References
    ----------
    F. Zhdanov, "Diverse mini-batch Active Learning", arXiv:1901.05954, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.diversity.clustering import kmeans_sample
    >>> X = np.array([[0.0], [0.2], [0.1], [10.0], [10.1]], dtype=np.float32)
    >>> kmeans_sample(X, 2, seed=0).indices.tolist()  # centroids 0.1 and 10.05
    [2, 3]
    """
    pool = as_embeddings(X, "X")
    n_pool = pool.shape[0]
    positions = parse_labeled(labeled, n_pool)
    n_unlabeled = n_pool - positions.size
    k = check_k(k, n_unlabeled, n_pool)
    check_l2_range(check_finite(pool, "X"), pool.shape[1], "X")
    rng = make_rng(seed)
    rows = unlabeled_rows(n_pool, positions)

    centroids = train_kmeans(pool, rows, k, rng)
    cluster, _ = assign(pool, rows, centroids)
    sizes = np.bincount(cluster, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))
    picks, dist2 = distinct_nearest(pool, rows, centroids, order)
    return Selection(indices=picks, scores=sizes[order].astype(np.float32),
                     method="kmeans", n_pool=n_pool,
                     extra={"centroids": centroids[order], "cluster_size": sizes[order],
                            "distance": np.sqrt(np.maximum(dist2, 0)).astype(np.float32)})


# --------------------------------------------------------------------------- FAISS helpers


def unlabeled_rows(n_pool, positions):
    mask = np.ones(n_pool, dtype=bool)
    mask[positions] = False
    return np.flatnonzero(mask)


def _chunk_rows(d):
    return max(MIN_CHUNK_ROWS, CHUNK_BYTES // (4 * d))


def _rows_f32(pool, rows, start, stop):
    block = pool[start:stop] if rows is None else pool[rows[start:stop]]
    return np.ascontiguousarray(block, dtype=np.float32)


def train_kmeans(pool, rows, n_clusters, rng):
    """FAISS k-means centroids (n_clusters, d) float32 of ``pool[rows]`` (all rows if None).

    At most ``KMEANS_POINTS_PER_CENTROID * n_clusters`` rows, drawn with ``rng``, are copied
    for training. Lloyd iterations start from k-means++ seeds of the training rows (the
    BADGE kernel with constant probabilities (1/2, 1/2) is exactly k-means++ on ``x``, with
    the largest-norm row first), which avoids the bad local optima of FAISS's uniform
    initialisation on well-separated data.
    """
    import faiss

    n = pool.shape[0] if rows is None else rows.size
    d = pool.shape[1]
    cap = KMEANS_POINTS_PER_CENTROID * n_clusters
    if n > cap:
        sample = np.sort(rng.choice(n, size=cap, replace=False))
        sample = sample if rows is None else rows[sample]
        train = np.ascontiguousarray(pool[sample], dtype=np.float32)
    else:
        train = _rows_f32(pool, rows, 0, n)
    if n_clusters == 1:
        return train.astype(np.float64).mean(axis=0, keepdims=True).astype(np.float32)
    half = np.full((train.shape[0], 2), 0.5, dtype=np.float32)
    seeds = badge(train, half, n_clusters, seed=rng).indices
    init = np.ascontiguousarray(train[seeds])
    # min_points_per_centroid=1: small pools are legitimate here (silences FAISS's warning)
    km = faiss.Kmeans(d, n_clusters, niter=KMEANS_ITER, seed=int(rng.integers(2**31 - 1)),
                      verbose=False, min_points_per_centroid=1,
                      max_points_per_centroid=max(cap, n))
    km.train(train, init_centroids=init)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def assign(pool, rows, centroids):
    """Nearest centroid (int64) and its squared distance (float32) of each of ``pool[rows]``."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    n = pool.shape[0] if rows is None else rows.size
    label = np.empty(n, dtype=np.int64)
    dist2 = np.empty(n, dtype=np.float32)
    chunk = _chunk_rows(pool.shape[1])
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        D, Ik = index.search(_rows_f32(pool, rows, start, stop), 1)
        label[start:stop] = np.maximum(Ik[:, 0], 0)
        dist2[start:stop] = D[:, 0]
    return label, dist2


def nearest_to_centroids(pool, rows, centroids, m):
    """The ``m`` rows of ``pool[rows]`` nearest to each centroid: (dist2 (c, m), rows (c, m)).

    Chunked exact FAISS search, merged per centroid with ties to the lower row. Missing
    entries (fewer than m rows) are (inf, -1).
    """
    import faiss

    n = pool.shape[0] if rows is None else rows.size
    n_cent = centroids.shape[0]
    best_d = np.full((n_cent, 0), np.inf, dtype=np.float32)
    best_i = np.full((n_cent, 0), -1, dtype=np.int64)
    chunk = _chunk_rows(pool.shape[1])
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        D, Ik = faiss.knn(centroids, _rows_f32(pool, rows, start, stop), min(m, stop - start))
        valid = Ik >= 0
        ids = np.where(valid, Ik + start, -1)
        if rows is not None:
            ids = np.where(valid, rows[np.where(valid, ids, 0)], -1)
        D = np.where(valid, D, np.inf).astype(np.float32)
        both_d = np.concatenate([best_d, D], axis=1)
        both_i = np.concatenate([best_i, ids], axis=1)
        # sort by (distance, row), missing (-1) rows last through their inf distance
        order = np.lexsort((np.where(both_i < 0, np.iinfo(np.int64).max, both_i), both_d),
                           axis=-1)[:, :m]
        best_d = np.take_along_axis(both_d, order, axis=1)
        best_i = np.take_along_axis(both_i, order, axis=1)
    return best_d, best_i


def distinct_nearest(pool, rows, centroids, order, m=16):
    """For centroids in ``order``, the nearest row of ``pool[rows]`` not taken by an earlier one.

    Returns (rows (len(order),) int64, squared distances float32). Candidate lists of
    ``m`` rows are searched first; a centroid whose list is used up is searched again with
    ``len(order)`` candidates, which always contains a free row (at most len(order) - 1 are
    taken and ``pool[rows]`` has at least len(order) rows).
    """
    n = pool.shape[0] if rows is None else rows.size
    dist2, cand = nearest_to_centroids(pool, rows, centroids, min(m, n))
    taken = set()
    picks = np.empty(order.size, dtype=np.int64)
    picked_d = np.empty(order.size, dtype=np.float32)
    for t, c in enumerate(order.tolist()):
        row = -1
        for j in range(cand.shape[1]):
            r = int(cand[c, j])
            if r >= 0 and r not in taken:
                row, dd = r, dist2[c, j]
                break
        if row < 0:
            d_all, c_all = nearest_to_centroids(pool, rows, centroids[c:c + 1],
                                                min(order.size, n))
            for j in range(c_all.shape[1]):
                r = int(c_all[0, j])
                if r >= 0 and r not in taken:
                    row, dd = r, d_all[0, j]
                    break
        taken.add(row)
        picks[t] = row
        picked_d[t] = dd
    return picks, picked_d


def _top_rows(values, m):
    """Positions of the m largest values, ties to the lower position, sorted by rank."""
    n = values.shape[0]
    if m < n:
        kth = np.partition(values, n - m)[n - m]
        sel = np.flatnonzero(values >= kth)
    else:
        sel = np.arange(n)
    order = sel[np.lexsort((sel, -values[sel]))][:m]
    return order.astype(np.int64)
