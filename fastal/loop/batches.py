"""Which rows to ask about: a strategy's batch, and the seed set chosen without a model.

Strategies are resolved by name in one function, :func:`_select_batch`, which hands them to
:func:`fastal.select`.
"""

from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from ._common import (SEED_STRATEGIES, STRATEGIES, _check_int, _dense_embeddings,
                      _strategy_name)


def _select_batch(strategy, *, probs, X, labeled_mask, k, rng, info=None,
                  **options) -> np.ndarray:
    """Pool positions of the next ``k`` rows to label, by ``strategy``.

    This is the one place strategy names are resolved.

    Parameters
    ----------
    strategy : str or callable
        A name in :data:`STRATEGIES`, or ``strategy(probs, X, labeled_mask, k, rng)``
        returning ``k`` distinct unlabeled pool positions.
    probs : ndarray (N, C) or None
        The current model's class probabilities for every pool row (None before any model).
    X : ndarray (N, d) or None
        Pool embeddings for the k-center strategies.
    labeled_mask : ndarray of bool (N,)
        Rows that must not be picked (labeled, or handed out and not yet labeled).
    k : int
        Batch size, ``1 <= k <=`` number of unpicked rows.
    rng : numpy.random.Generator
        The loop's generator; every random choice draws from it.
    info : dict, optional
        Filled with ``n_scored``: how many pool rows the strategy needed the model's
        probabilities for (0 for model-free strategies, the candidates with
        ``candidates=``, else the whole pool).
    **options
        ``beta`` (int, default 10) for ``"uncertain_kcenter"``: the k-center step picks
        among the ``beta * k`` highest-margin unlabeled rows. ``metric`` (``"l2"`` or
        ``"cosine"``) for the k-center strategies. ``candidates`` / ``knn`` (SEALS) for any
        strategy, see :func:`fastal.select`.

    Returns
    -------
    ndarray of int64, shape (k,)
        Distinct pool positions, most preferred first.
    """
    unlabeled = np.flatnonzero(~labeled_mask)
    if k > unlabeled.size:
        raise ArgumentError(f"batch size {k} is larger than the remaining pool "
                            f"({unlabeled.size} unlabeled rows)")
    info = {} if info is None else info
    if callable(strategy):
        picked = np.asarray(strategy(probs, X, labeled_mask, k, rng))
        info["n_scored"] = labeled_mask.shape[0]
        return _check_custom_pick(picked, labeled_mask, k, _strategy_name(strategy))
    from ..select import select

    spec = STRATEGIES[strategy]
    # One draw from the loop's generator seeds the strategy, so a loop's seed fixes every batch.
    seed = int(rng.integers(2**31))
    if "embeddings" in spec.needs:
        data, extra = X, ({"probs": probs} if "probs" in spec.needs else {})
    else:
        data, extra = (probs if probs is not None else labeled_mask), {}
        if "embeddings" in spec.options and X is not None and "embeddings" not in options:
            extra = {"embeddings": X}  # auto: optional embeddings
    selection = select(data, k, strategy, labeled=labeled_mask, seed=seed, **extra, **options)
    if "n_candidates" in selection.extra:
        info["n_scored"] = selection.extra["n_candidates"]
    else:
        info["n_scored"] = labeled_mask.shape[0] if "probs" in spec.needs else 0
    return selection.indices.astype(np.int64)


def _check_custom_pick(picked, labeled_mask, k, name):
    n = labeled_mask.shape[0]
    if picked.ndim != 1 or picked.dtype.kind not in "iu":
        raise ArgumentError(f"strategy {name} must return a 1-D array of integer positions; "
                            f"got shape {picked.shape} dtype {picked.dtype}")
    if picked.size != k:
        raise ArgumentError(f"strategy {name} must return {k} positions; got {picked.size}")
    if picked.size and (picked.min() < 0 or picked.max() >= n):
        raise ArgumentError(f"strategy {name} must return positions in [0, {n}); got "
                            f"{int(picked.min() if picked.min() < 0 else picked.max())}")
    if np.unique(picked).size != k:
        raise ArgumentError(f"strategy {name} must return {k} distinct positions; got "
                            f"{np.unique(picked).size} distinct")
    if labeled_mask[picked].any():
        bad = int(picked[labeled_mask[picked]][0])
        raise ArgumentError(f"strategy {name} returned position {bad}, which is already labeled "
                            "or handed out")
    return picked.astype(np.int64)


def initial_positions(kind, n, *, n_pool, X=None, y=None, rng, metric="l2") -> np.ndarray:
    """Pool positions of a seed set of ``n`` rows.

    ``"random"``: uniform without replacement. ``"stratified"``: ``y`` is required; each class
    gets a share proportional to its frequency (largest remainders), at least one row per
    class when ``n`` allows. ``"kcenter"``: greedy k-center on ``X`` from a random first row
    (a cold start that needs no labels). ``"typiclust"``: the most typical row of each of
    ``n`` k-means clusters of ``X`` (Hacohen et al., 2022; a cold start for small budgets).
    """
    if kind not in SEED_STRATEGIES:
        raise ArgumentError(f"seed_strategy must be one of {', '.join(SEED_STRATEGIES)}; "
                            f"got {kind!r}")
    n = _check_int(n, "seed_size", 1, n_pool)
    if kind == "random":
        return np.sort(rng.choice(n_pool, size=n, replace=False)).astype(np.int64)
    if kind == "kcenter":
        from ..diversity import kcenter

        X = _dense_embeddings(X, "X (embeddings)")
        return kcenter(X, n, metric=metric, seed=int(rng.integers(2**31))).indices
    if kind == "typiclust":
        from ..diversity import typiclust

        X = _dense_embeddings(X, "X (embeddings)")
        return np.sort(typiclust(X, n, seed=int(rng.integers(2**31))).indices)
    if y is None:
        raise ArgumentError("seed_strategy='stratified' needs the labels of the pool (as in a "
                            "simulation); with a human annotator pass labeled=(positions, "
                            "labels) or use 'random' / 'kcenter'")
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / counts.sum()
    share = np.floor(exact).astype(np.int64)
    if n >= classes.size:
        share = np.maximum(share, 1)
    # Hand the remaining rows to the largest remainders (ties: lower class first).
    while share.sum() < n:
        room = share < counts
        j = int(np.argmax(np.where(room, exact - share, -np.inf)))
        share[j] += 1
    while share.sum() > n:
        j = int(np.argmax(np.where(share > 1, share - exact, -np.inf)))
        share[j] -= 1
    picked = [rng.choice(np.flatnonzero(y == c), size=int(s), replace=False)
              for c, s in zip(classes, share) if s > 0]
    return np.sort(np.concatenate(picked)).astype(np.int64)
