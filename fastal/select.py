"""``fastal.select``: the one entry point users reach for first, and its strategy registry.

A strategy is a name, a short description with its reference, what it reads (class
probabilities, embeddings or both), the options it accepts, and a function. ``select``
validates the common arguments once, resolves the strategy and hands it plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._errors import ArgumentError, DataError
from ._selection import Selection
from ._validation import make_rng, parse_labeled
from .io import to_numpy
from .scoring import UNCERTAINTY_METHODS, check_k, score, top_k


@dataclass(frozen=True)
class Strategy:
    """A named batch-selection strategy (see ``STRATEGIES``)."""

    name: str
    needs: tuple          # subset of ("probs", "embeddings")
    options: tuple        # keyword options the strategy accepts
    description: str
    fn: Callable


STRATEGIES: dict[str, Strategy] = {}

#: The strategy used when none is named: ``auto`` (fastal.adaptive), margin sampling or, for a
#: weak many-class model when embeddings are given, BADGE. Chosen by measurement
#: (bench/label_efficiency.md, 12 settings: 6 data sets x batches of 100 and 1,000): it was
#: within one standard error of the better of margin and BADGE in area under the learning
#: curve everywhere and never below random, while margin alone lost to random on 20
#: Newsgroups with batches of 1,000. Without embeddings it is margin sampling.
DEFAULT_STRATEGY = "auto"


def _register(name, needs, options, description):
    def wrap(fn):
        STRATEGIES[name] = Strategy(name, needs, tuple(options), description, fn)
        return fn
    return wrap


_rng = make_rng


@dataclass
class _Pool:
    """What a strategy sees: the pool's arrays, the labeled positions, the seed."""

    n_pool: int
    labeled: np.ndarray          # sorted unique int64 positions
    seed: object
    data: object
    probs_arg: object
    from_logits: bool
    chunk_rows: object
    column: object = None

    @property
    def unlabeled(self) -> np.ndarray:
        mask = np.ones(self.n_pool, dtype=bool)
        mask[self.labeled] = False
        return np.flatnonzero(mask)

    def embeddings(self):
        """The pool's embeddings as an array (files and tables are read whole, once)."""
        if not hasattr(self, "_embeddings"):
            from .io import as_source
            from .io.arrays import ArraySource

            source = as_source(self.data, column=self.column) if _is_table_or_path(self.data) \
                else ArraySource(self.data, "data")
            self._embeddings = source.array if isinstance(source, ArraySource) \
                else source.read_all(self.chunk_rows)
        return self._embeddings

    def probs(self):
        return self.data if self.probs_arg is None else self.probs_arg

    def probabilities(self):
        """The pool's class probabilities as an in-memory array (softmax of logits)."""
        from .io import as_source
        from .io.arrays import ArraySource

        data = self.probs()
        column = self.column if self.probs_arg is None else None
        source = as_source(data, column=column) if _is_table_or_path(data) \
            else ArraySource(data, "probs")
        probs = source.array if isinstance(source, ArraySource) else source.read_all(self.chunk_rows)
        if self.from_logits:
            z = np.asarray(probs, dtype=np.float64)
            z = np.exp(z - z.max(axis=1, keepdims=True))
            probs = (z / z.sum(axis=1, keepdims=True)).astype(source.dtype)
        return probs

    def uncertainty(self, method):
        column = self.column if self.probs_arg is None else None
        return score(self.probs(), method, from_logits=self.from_logits, column=column,
                     chunk_rows=self.chunk_rows)


from .io import is_table_or_path as _is_table_or_path  # noqa: E402


def _top_unlabeled(scores, k, pool: _Pool):
    """Top-k of scores over unlabeled rows; ties to the lower row."""
    candidates = pool.unlabeled
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return candidates[order]


def _uncertainty_strategy(method):
    def run(pool: _Pool, k, **_):
        if pool.labeled.size == 0:
            column = pool.column if pool.probs_arg is None else None
            return top_k(pool.probs(), k, method, from_logits=pool.from_logits, column=column,
                         chunk_rows=pool.chunk_rows)
        scores = pool.uncertainty(method)
        picks = _top_unlabeled(scores, k, pool)
        return Selection(picks, scores[picks], method=method, n_pool=pool.n_pool)
    return run


for _m in UNCERTAINTY_METHODS:
    _register(_m, ("probs",), (), {
        "entropy": "top-k Shannon entropy of the predicted distribution",
        "least_confidence": "top-k 1 - max probability (Lewis & Gale, 1994)",
        "margin": "top-k smallest gap between the two most likely classes (Scheffer et al., 2001)",
        "ratio": "top-k ratio of the second to the first probability",
    }[_m])(_uncertainty_strategy(_m))


@_register("random", (), (), "uniform sample of unlabeled rows (the baseline every strategy must beat)")
def _random(pool: _Pool, k):
    picks = _rng(pool.seed).choice(pool.unlabeled, size=k, replace=False)
    return Selection(picks.astype(np.int64), np.zeros(k, dtype=np.float32), method="random",
                     n_pool=pool.n_pool)


@_register("kcenter", ("embeddings",), ("metric",),
           "greedy k-center / core-set in embedding space (Sener & Savarese, 2018); "
           "with no labels the first centre is drawn with `seed` (cold start)")
def _kcenter(pool: _Pool, k, metric="l2"):
    from .diversity.kcenter import kcenter

    labeled = pool.labeled if pool.labeled.size else None
    return kcenter(pool.embeddings(), k, labeled=labeled, metric=metric, seed=pool.seed,
                   chunk_rows=pool.chunk_rows)


@_register("uncertain_kcenter", ("probs", "embeddings"), ("beta", "method", "metric"),
           "the beta*k most uncertain unlabeled rows (default beta=10, margin), then k-center "
           "among them with the labeled set as centres (uncertainty first, diversity within)")
def _uncertain_kcenter(pool: _Pool, k, beta=10, method="margin", metric="l2"):
    from .diversity.kcenter import kcenter

    if not isinstance(beta, (int, float, np.integer, np.floating)) or beta < 1:
        raise ArgumentError(f"beta must be a number >= 1; got {beta!r}")
    if method not in UNCERTAINTY_METHODS:
        raise ArgumentError(f"method must be one of {', '.join(UNCERTAINTY_METHODS)}; got {method!r}")
    scores = pool.uncertainty(method)
    n_candidates = min(pool.unlabeled.size, max(k, int(np.ceil(beta * k))))
    candidates = np.sort(_top_unlabeled(scores, n_candidates, pool))
    X = to_numpy(pool.embeddings(), "data")
    labeled = X[pool.labeled] if pool.labeled.size else None
    inner = kcenter(X[candidates], k, labeled=labeled, metric=metric, seed=pool.seed)
    picks = candidates[inner.indices]
    return Selection(picks, inner.scores, method="uncertain_kcenter", n_pool=pool.n_pool,
                     extra={"uncertainty": scores[picks], "candidates": n_candidates})


@_register("weighted_kcenter", ("probs", "embeddings"), ("method", "metric"),
           "k-center whose distances are scaled by each row's uncertainty "
           "(argmax of score * distance to the nearest centre)")
def _weighted_kcenter(pool: _Pool, k, method="margin", metric="l2"):
    from .diversity.kcenter import kcenter

    if method not in UNCERTAINTY_METHODS:
        raise ArgumentError(f"method must be one of {', '.join(UNCERTAINTY_METHODS)}; got {method!r}")
    weights = pool.uncertainty(method).astype(np.float64)
    labeled = pool.labeled if pool.labeled.size else None
    sel = kcenter(pool.embeddings(), k, labeled=labeled, metric=metric, seed=pool.seed,
                  weights=weights, chunk_rows=pool.chunk_rows)
    return Selection(sel.indices, sel.scores, method="weighted_kcenter", n_pool=pool.n_pool,
                     extra=sel.extra)


@_register("badge", ("probs", "embeddings"), (),
           "k-means++ seeding on gradient embeddings (p - e_yhat) x (Ash et al., 2020), "
           "computed without materialising them")
def _badge(pool: _Pool, k):
    from .diversity.badge import badge

    return badge(pool.embeddings(), pool.probabilities(), k, labeled=pool.labeled, seed=pool.seed)


@_register("cluster_margin", ("probs", "embeddings"), ("n_clusters", "margin_pool"),
           "the lowest-margin rows spread round-robin over k-means clusters, smallest "
           "clusters first (Citovsky et al., 2021)")
def _cluster_margin(pool: _Pool, k, n_clusters=None, margin_pool=None):
    from .diversity.clustering import cluster_margin

    return cluster_margin(pool.embeddings(), pool.probabilities(), k, labeled=pool.labeled,
                          n_clusters=n_clusters, margin_pool=margin_pool, seed=pool.seed)


@_register("kmeans", ("embeddings",), (),
           "k-means (FAISS) on the unlabeled rows, the row nearest each centroid")
def _kmeans(pool: _Pool, k):
    from .diversity.clustering import kmeans_sample

    return kmeans_sample(pool.embeddings(), k, labeled=pool.labeled, seed=pool.seed)


@_register("typiclust", ("embeddings",), ("n_neighbors",),
           "cold start: the most typical row of the largest uncovered k-means clusters "
           "(Hacohen et al., 2022)")
def _typiclust(pool: _Pool, k, n_neighbors=20):
    from .diversity.coldstart import typiclust

    return typiclust(pool.embeddings(), k, labeled=pool.labeled, seed=pool.seed,
                     n_neighbors=n_neighbors)


@_register("auto", ("probs",), ("embeddings",),
           "adaptive: margin sampling, or BADGE (needs embeddings=) for a weak model over "
           "many classes; the rule was chosen by measurement (fastal.adaptive)")
def _auto(pool: _Pool, k, embeddings=None):
    from .adaptive import auto

    return auto(pool, k, embeddings=embeddings)


def _n_rows(data, what, column=None):
    if _is_table_or_path(data):
        from .io import as_source
        return as_source(data, column=column).n_rows
    shape = getattr(data, "shape", None)
    if shape is None:
        data = to_numpy(data, what)
        shape = data.shape
    if len(shape) < 1:
        raise DataError(f"{what} must be an array with one row per pool example; got a scalar")
    return int(shape[0])


def select(data, k, strategy=None, *, probs=None, labeled=None, seed=0, from_logits=False,
           column=None, chunk_rows=None, client=None, **options):
    """Pick the next batch of k rows to label.

    Parameters
    ----------
    data : array-like or path
        The pool: class probabilities (rows, C) for uncertainty strategies, embeddings
        (rows, d) for diversity and hybrid strategies. Uncertainty strategies also accept
        Arrow tables and Parquet/IPC paths (see :func:`fastal.top_k`).
    k : int
        Batch size; at most the number of unlabeled rows.
    strategy : str, optional
        A name from ``fastal.STRATEGIES`` (default ``DEFAULT_STRATEGY``, ``"auto"``: margin
        sampling, or BADGE for a weak many-class model when ``embeddings=`` are given).
        ``fastal.strategies()`` lists them with their descriptions.
    probs : array-like (rows, C), optional
        Class probabilities (or logits with ``from_logits``) when ``data`` holds embeddings
        and the strategy needs both (hybrids, BADGE, cluster-margin).
    labeled : array-like of int, or bool mask, optional
        Pool positions that are already labeled: never picked; diversity strategies use them
        as centres.
    seed : int or numpy.random.Generator, default 0
        Controls every random choice; the same inputs and seed give the same batch.
    from_logits : bool, default False
        The probabilities are logits.
    column : str or list of str, optional
        For Arrow tables and files given as ``data``: the column of probabilities (uncertainty
        strategies) or of embeddings (diversity strategies), as in :func:`fastal.top_k`.
    chunk_rows : int, optional
        Rows per chunk in streamed passes; the result does not depend on it.
    client : dask.distributed.Client, optional
        Run on a Dask cluster (:func:`fastal.distributed.select`: the same batch; ``data``
        may be a list of files or a dask collection, ``probs`` a column name of the same
        files).
    **options
        Strategy options (e.g. ``beta`` for ``uncertain_kcenter``, ``metric`` for k-center);
        an option the strategy does not take is an error. Any strategy also takes
        ``candidates`` (SEALS, Coleman et al. 2022): ``"knn"`` (with ``knn``, default 100:
        the strategy runs only on the ``knn`` nearest unlabeled neighbours of the labeled
        rows in the embeddings given as ``data``), a
        :class:`fastal.diversity.seals.KnnCandidates` built once on the embeddings (for
        every strategy, and reused across rounds), or an array of candidate positions.
        Rows outside the candidates are never read, so the model needs to score only those
        (``extra["candidates"]`` of the result lists them).

    Returns
    -------
    Selection
        ``indices`` of the picked rows (int64, in pick order), their ``scores`` (the
        strategy's criterion), ``method`` (the strategy), ``extra`` diagnostics.

    Raises
    ------
    FastalError
        Unknown strategy or option; k < 1 or larger than the unlabeled pool; labeled
        positions outside the pool; a strategy that needs probabilities or embeddings that
        were not given; every input error of the underlying scorer or strategy.

    Examples
    --------
    >>> import numpy as np, fastal
    >>> probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.7, 0.3]])
    >>> fastal.select(probs, 2).indices          # auto: margin sampling (no embeddings)
    array([1, 2])
    >>> fastal.select(probs, 2, labeled=[1]).indices
    array([2, 3])
    """
    if client is not None:
        from .distributed import select as distributed_select

        if strategy in (None, "auto") and options.get("embeddings") is None:
            strategy = "margin"  # auto without embeddings is margin sampling, pick for pick
        return distributed_select(data, k, strategy, client=client, probs=probs,
                                  labeled=labeled, seed=seed, from_logits=from_logits,
                                  column=column, chunk_rows=chunk_rows, **options)
    name = DEFAULT_STRATEGY if strategy is None else strategy
    if not isinstance(name, str) or name not in STRATEGIES:
        raise ArgumentError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    candidates, knn = options.pop("candidates", None), options.pop("knn", None)
    if candidates is not None or knn is not None:
        from .diversity.seals import select_among_candidates

        return select_among_candidates(select, data, k, name, candidates=candidates, knn=knn,
                                       probs=probs, labeled=labeled, seed=seed,
                                       from_logits=from_logits, chunk_rows=chunk_rows,
                                       **options)
    spec = STRATEGIES[name]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(spec.options) or "no options"
        raise ArgumentError(f"strategy {name!r} does not take {', '.join(unknown)}; it accepts {accepted}")
    if "probs" in spec.needs and "embeddings" in spec.needs and probs is None:
        raise ArgumentError(
            f"strategy {name!r} needs class probabilities and embeddings: pass the embeddings "
            f"as data and the probabilities as probs=...")
    n_pool = _n_rows(data, "data", column)
    if probs is not None:
        n_probs = _n_rows(probs, "probs")
        if n_probs != n_pool:
            raise DataError(f"probs has {n_probs} rows but data has {n_pool}; they must describe the same pool")
    if n_pool == 0:
        raise DataError("data is empty: the pool has no rows to select from")
    labeled_pos = parse_labeled(labeled, n_pool)
    n_unlabeled = n_pool - labeled_pos.size
    if n_unlabeled == 0:
        raise ArgumentError(f"every one of the {n_pool} pool rows is labeled: nothing left to select")
    k = check_k(k, n_pool, "data")
    if k > n_unlabeled:
        raise ArgumentError(
            f"k={k} is larger than the unlabeled pool ({n_unlabeled} of {n_pool} rows are unlabeled)")
    pool = _Pool(n_pool, labeled_pos, seed, data, probs, from_logits, chunk_rows, column)
    _rng(seed)  # validate the seed once, whatever the strategy
    return spec.fn(pool, k, **options)


def strategies() -> dict:
    """``{name: description}`` of every registered strategy."""
    return {name: s.description for name, s in STRATEGIES.items()}
