"""Input checks shared by the public entry points (one message style, one place).

Each helper validates one argument and returns it in the form the kernels want, or raises
a FastalError naming the argument, what was expected and what was given.
"""

import numbers

import numpy as np

from ._config import CHUNK_BYTES, MIN_CHUNK_ROWS, PROBABILITY_TOLERANCE
from ._errors import ArgumentError, DataError
from .io.arrays import to_numpy

def check_int(value, name, low, high=None):
    """An integer in [low, high] or a FastalError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise ArgumentError(f"{name} must be >= {low}{upper}; got {value}")
    return value


def check_k(k, n_unlabeled, n_pool):
    """``k`` as an int in [1, n_unlabeled]."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise ArgumentError(f"k must be a positive integer; got {k!r}")
    k = int(k)
    if k < 1:
        raise ArgumentError(f"k must be >= 1; got {k}")
    if n_unlabeled == 0:
        raise ArgumentError(f"labeled covers all {n_pool} pool rows; nothing left to pick")
    if k > n_unlabeled:
        raise ArgumentError(f"k must be <= the number of unlabeled pool rows ({n_unlabeled} "
                            f"of {n_pool}); got {k}")
    return k


def make_rng(seed):
    """The one place a seed becomes a ``numpy.random.Generator``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"seed must be None, an int or a numpy.random.Generator; "
                            f"got {seed!r}") from exc


def as_embeddings(X, name="X"):
    """2-D float32/float64 C-contiguous array with at least one row and column.

    Finiteness is checked by the caller (fused into its first pass where it has one).
    """
    a = to_numpy(X, name)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{name} must be a real numeric array; got dtype {a.dtype}")
    if a.ndim != 2:
        raise DataError(f"{name} must be 2-D (rows, dims); got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{name} must have at least one row and one column; "
                        f"got shape {a.shape}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def check_finite(a, name="X", chunk_rows=None):
    """Raise naming the first row with NaN/inf; return the largest |value| (0.0 if empty).

    Checks ``chunk_rows`` rows at a time: min and max propagate NaN and reach +-inf, so no
    chunk-sized boolean temporary unless a row is bad.
    """
    chunk = chunk_rows or max(MIN_CHUNK_ROWS, CHUNK_BYTES // max(1, a.shape[1] * a.itemsize))
    largest = 0.0
    for start in range(0, a.shape[0], chunk):
        block = a[start:start + chunk]
        if not block.size:
            continue
        low, high = float(block.min()), float(block.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise DataError(f"{name} must be finite; row {bad} contains NaN or inf")
        largest = max(largest, -low, high)
    return largest


def l2_value_limit(d):
    """The largest |value| for which squared L2 distances between d-dimensional rows stay a
    factor 4 inside float32's range: 4 d limit^2 = f32max / 4, about 1e19 / sqrt(d)."""
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * d)) / 2.0)


def check_l2_range(largest, d, names):
    """Raise DataError when values as large as ``largest`` (from :func:`check_finite`) could
    make squared L2 distances between d-dimensional rows leave float32's range. FAISS and the
    k-center kernels work on float32 squared distances: past the limit FAISS's k-means aborts
    the process and the kernels read out of bounds. Scaling the rows by a power of two is
    exact, so it changes no pick."""
    limit = l2_value_limit(d)
    if largest > limit:
        raise DataError(
            f"values in {names} reach {largest:.3g}: squared L2 distances between rows "
            f"could exceed float32's range (limit {limit:.3g} per value at d = {d}); scale "
            f"the rows down, e.g. by a power of two (which changes no pick)")


def as_probs(probs, n_pool):
    """2-D float32/float64 C-contiguous (N, C) array with N == n_pool, C >= 1.

    Values (finite, on the simplex) are checked by the caller's first pass.
    """
    p = to_numpy(probs, "probs")
    if p.dtype.kind not in "biuf":
        raise DataError(f"probs must be a real numeric array; got dtype {p.dtype}")
    if p.ndim != 2:
        raise DataError(f"probs must be 2-D (rows, classes); got shape {p.shape}")
    if p.shape[0] != n_pool:
        raise DataError(f"probs must have one row per pool row ({n_pool} rows like X); "
                        f"got {p.shape[0]} rows")
    if p.shape[1] == 0:
        raise DataError(f"probs must have at least one class column; got shape {p.shape}")
    if p.dtype != np.float32 and p.dtype != np.float64:
        p = p.astype(np.float32)
    return np.ascontiguousarray(p)


def parse_labeled(labeled, n_pool):
    """Sorted unique int64 positions from None, int positions or a boolean mask."""
    if labeled is None:
        return np.empty(0, dtype=np.int64)
    lab = to_numpy(labeled, "labeled")
    if lab.ndim != 1:
        raise DataError("labeled must be 1-D: pool row positions or a boolean mask of "
                        f"length {n_pool}; got shape {lab.shape}")
    if lab.size == 0:
        return np.empty(0, dtype=np.int64)
    if lab.dtype.kind == "b":
        if lab.shape[0] != n_pool:
            raise DataError(f"labeled as a boolean mask must have length {n_pool} "
                            f"(pool rows); got length {lab.shape[0]}")
        return np.flatnonzero(lab).astype(np.int64)
    if lab.dtype.kind not in "iu":
        raise DataError("labeled must hold integer pool row positions (or be a boolean "
                        f"mask); got dtype {lab.dtype}")
    lo, hi = int(lab.min()), int(lab.max())
    if lo < 0 or hi >= n_pool:
        raise DataError(f"labeled positions must be in [0, {n_pool}); "
                          f"got {lo if lo < 0 else hi}")
    return np.unique(lab.astype(np.int64))


def raise_bad_probability_row(row, where, from_logits):
    """Raise the FastalError that says why one row of probabilities (or logits) was refused."""
    row = np.asarray(row, dtype=np.float64)
    what = "logits" if from_logits else "probabilities"
    if not np.isfinite(row).all():
        j = int(np.flatnonzero(~np.isfinite(row))[0])
        raise DataError(f"{where} contains {row[j]} at column {j}; {what} must be finite")
    if row.min() < -PROBABILITY_TOLERANCE:
        j = int(np.argmin(row))
        raise DataError(f"{where} has a negative probability {row[j]:.6g} at column {j}; "
                        f"pass from_logits=True if these are logits")
    raise DataError(
        f"{where} sums to {row.sum():.6g}, not 1 (tolerance {PROBABILITY_TOLERANCE}); "
        f"pass from_logits=True if these are logits, or normalise the rows")
