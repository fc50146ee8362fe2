"""Slow, obviously correct NumPy versions of the BADGE / clustering / cold-start strategies.

BADGE here forms the explicit gradient embeddings (N, C*d) in float64 and runs the textbook
k-means++ loop with the sampling rule that ``fastal.badge`` documents, drawing from the same
``numpy.random.Generator`` in the same order.
"""

import numpy as np

SAMPLING_BLOCK = 4096  # the block of the documented sampling rule


def gradient_embeddings(X, probs):
    """g_i = (p_i - e_{argmax p_i}) (x) x_i, float64, shape (N, C*d)."""
    x = np.asarray(X, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    yhat = np.argmax(np.asarray(probs), axis=1)  # first maximum, in the input dtype
    ptilde = p - np.eye(p.shape[1])[yhat]
    return (ptilde[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)


def _seq_sum(values):
    """Left-to-right float64 sum (np.cumsum is a sequential accumulate)."""
    return float(np.cumsum(values)[-1]) if values.size else 0.0


def sample_row(d2, u):
    """The documented draw: first row whose running sum exceeds u * total (blockwise)."""
    n = d2.shape[0]
    block_sums = [_seq_sum(d2[s:s + SAMPLING_BLOCK]) for s in range(0, n, SAMPLING_BLOCK)]
    total = 0.0
    for s in block_sums:
        total += s
    if total == 0.0:
        return -1
    threshold = u * total
    cum = 0.0
    for b, s in enumerate(block_sums):
        nxt = cum + s
        if nxt > threshold:
            block = d2[b * SAMPLING_BLOCK:(b + 1) * SAMPLING_BLOCK]
            hit = np.flatnonzero(np.cumsum(block) > threshold - cum)
            if hit.size:
                return b * SAMPLING_BLOCK + int(hit[0])
            return b * SAMPLING_BLOCK + int(np.flatnonzero(block > 0)[-1])
        cum = nxt
    return int(np.flatnonzero(d2 > 0)[-1])


def badge(X, probs, k, labeled=None, seed=0):
    """k-means++ on explicit gradient embeddings; returns (indices, scores)."""
    rng = np.random.default_rng(seed)
    g = gradient_embeddings(X, probs)
    n = g.shape[0]
    candidate = np.ones(n, dtype=bool)
    if labeled is not None and len(labeled):
        candidate[np.asarray(labeled)] = False
    norms = np.sum(g * g, axis=1)
    picks, scores = [], []
    d2 = np.full(n, np.inf)
    d2[~candidate] = 0.0
    for t in range(k):
        if t == 0:
            row = int(np.argmax(np.where(candidate, norms, -1.0)))
            score = norms[row]
        else:
            u = rng.random()
            row = sample_row(d2, u)
            if row >= 0:
                score = d2[row]
            else:
                remaining = np.flatnonzero(candidate)
                row = int(remaining[min(int(u * remaining.size), remaining.size - 1)])
                score = 0.0
        picks.append(row)
        scores.append(score)
        candidate[row] = False
        d2[row] = 0.0
        diff = g - g[row]
        d2 = np.minimum(d2, np.where(candidate, np.sum(diff * diff, axis=1), 0.0))
    return np.array(picks, dtype=np.int64), np.array(scores)


def nearest_rows(X, centroids):
    """For each centroid, all rows by increasing exact float64 distance."""
    x = np.asarray(X, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    dist = ((c[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(dist, axis=1, kind="stable"), dist


def typicality(X, n_neighbors):
    """1 / mean Euclidean distance to the n_neighbors nearest other rows (brute force)."""
    x = np.asarray(X, dtype=np.float64)
    n = x.shape[0]
    if n == 1:
        return np.zeros(1)
    kk = min(n_neighbors, n - 1)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(dist, np.inf)
    mean = np.sort(dist, axis=1)[:, :kk].mean(axis=1)
    with np.errstate(divide="ignore"):
        return 1.0 / mean
