"""Slow, obviously correct NumPy versions of the diversity strategies (see tests/reference.py)."""

import numpy as np


def _as_float(a):
    a = np.asarray(a)
    if a.dtype != np.float32 and a.dtype != np.float64:
        a = a.astype(np.float32)
    return a.astype(np.float64)


def _unit_rows(a64):
    # Same formula as fastal's driver, so exact duplicates normalise to identical vectors.
    return a64 * (1.0 / np.sqrt(np.sum(a64 * a64, axis=1)))[:, None]


def kcenter_greedy(X, k, labeled=None, metric="l2", seed=0, weights=None):
    """Textbook greedy k-center with float64 distances recomputed per centre.

    Returns ``(indices int64 (k,), scores float64 (k,), covering_radius float64 (k,))``.
    ``labeled``: None, 1-D int positions, 1-D bool mask or 2-D embeddings. Distances:
    l2 = ||x - c||, cosine = ||x/|x| - c/|c| ||^2 / 2. Centres are excluded from picking;
    ties (including all-zero) go to the lowest row index.
    """
    P = _as_float(X)
    n = P.shape[0]
    if metric == "cosine":
        P = _unit_rows(P)

    def dist(c):
        sq = ((P - c) ** 2).sum(axis=1)
        return sq / 2.0 if metric == "cosine" else np.sqrt(sq)

    mind = np.full(n, np.inf)
    is_center = np.zeros(n, dtype=bool)
    if labeled is not None:
        lab = np.asarray(labeled)
        if lab.ndim == 1 and lab.dtype == bool:
            lab = np.flatnonzero(lab)
        if lab.ndim == 1 and lab.size:
            for p in lab:
                is_center[p] = True
                mind = np.minimum(mind, dist(P[p]))
        elif lab.ndim == 2 and lab.size:
            L = _as_float(lab)
            if metric == "cosine":
                L = _unit_rows(L)
            for y in L:
                mind = np.minimum(mind, dist(y))
    w = np.ones(n) if weights is None else np.asarray(weights).astype(np.float64)

    idx, scores, cover = [], [], []
    for t in range(k):
        if t == 0 and not is_center.any() and np.isinf(mind).all():
            row = int(np.random.default_rng(seed).integers(n))
            score = np.inf
        else:
            s = np.where(is_center, -np.inf, w * mind)
            row = int(np.argmax(s))  # first maximum = lowest row index
            score = float(s[row])
        idx.append(row)
        scores.append(score)
        is_center[row] = True
        mind = np.minimum(mind, dist(P[row]))
        cover.append(float(np.where(is_center, 0.0, mind).max()))
    return np.array(idx, dtype=np.int64), np.array(scores), np.array(cover)
