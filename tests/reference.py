"""Slow, obviously correct NumPy versions of fastal's kernels (float64 throughout)."""

import numpy as np


def softmax(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def entropy(probs):
    p = np.asarray(probs, dtype=np.float64)
    safe = np.where(p > 0, p, 1.0)
    return -(np.where(p > 0, p * np.log(safe), 0.0)).sum(axis=1)


def least_confidence(probs):
    p = np.asarray(probs, dtype=np.float64)
    return 1.0 - p.max(axis=1)


def margin(probs):
    s = np.sort(np.asarray(probs, dtype=np.float64), axis=1)
    return 1.0 - (s[:, -1] - s[:, -2])


def ratio(probs):
    s = np.sort(np.asarray(probs, dtype=np.float64), axis=1)
    return np.maximum(s[:, -2], 0.0) / s[:, -1]


UNCERTAINTY = {
    "entropy": entropy,
    "least_confidence": least_confidence,
    "margin": margin,
    "ratio": ratio,
}


def uncertainty(values, method, from_logits=False):
    probs = softmax(values) if from_logits else values
    return UNCERTAINTY[method](probs)


def top_k(scores, k):
    """Rows of the k highest scores; ties broken by the lower row index."""
    scores = np.asarray(scores)
    order = np.lexsort((np.arange(scores.shape[0]), -scores))
    return order[:k]


def linear_logits_in_order(X, W, b):
    """b + X[:, 0] W[0] + X[:, 1] W[1] + ..., left to right in X's dtype (the kernel's order).

    NumPy's elementwise multiply and add round each operation once, exactly as the kernel
    does, so the two must agree bit for bit.
    """
    acc = np.broadcast_to(b.astype(X.dtype), (X.shape[0], W.shape[1])).copy()
    W = W.astype(X.dtype)
    for j in range(X.shape[1]):
        acc = acc + X[:, j:j + 1] * W[j]
    return acc


def lane_sum(terms, lanes=32):
    """Each row's sum of ``terms`` (rows, d) in the order ``_intrinsics.lane_sums``
    defines: term j added to lane j mod ``lanes`` (each lane from +0.0, in coordinate
    order), then the lanes combined by halving (lane h += lane h + s, s = lanes / 2, ..., 1).
    Element-wise NumPy additions only, so this is that order exactly."""
    terms = np.asarray(terms, dtype=np.float64)
    n, d = terms.shape
    acc = np.zeros((n, lanes))
    for j0 in range(0, d, lanes):
        m = min(lanes, d - j0)
        acc[:, :m] = acc[:, :m] + terms[:, j0:j0 + m]
    half = lanes // 2
    while half:
        acc[:, :half] = acc[:, :half] + acc[:, half:2 * half]
        half //= 2
    return acc[:, 0]
