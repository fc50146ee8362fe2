"""SEALS candidate pools: restrict each round to the nearest neighbours of the labeled rows.

Coleman et al. ("Similarity Search for Efficient Active Learning and Search of Rare
Concepts", AAAI 2022) observe that the rows worth labeling next sit near rows already
labeled, in a good embedding space. Each round's candidates are the union of the ``knn``
nearest pool neighbours of every labeled row; the model then only needs to score those rows,
a small fraction of a huge pool, and any strategy picks among them.

:class:`KnnCandidates` holds the pool's embeddings and remembers each labeled row's
neighbours, so a loop searches only the rows labeled since the last round (the FAISS flat
search runs on ``new labeled rows x pool``, never on the whole labeled set again).
"""

from __future__ import annotations

import numpy as np

from .._config import CHUNK_BYTES, MIN_CHUNK_ROWS
from .._errors import ArgumentError
from .._validation import as_embeddings, check_finite, check_int, check_l2_range, parse_labeled
from ._faiss import knn_l2, query_block, small_search_blocks

_METRICS = ("l2", "cosine")


class KnnCandidates:
    """The SEALS candidate pool of an embedding matrix: build once, call every round.

    Parameters
    ----------
    embeddings : array-like (N, d)
        Pool embeddings (float32 is used as is; other real dtypes are converted once).
    knn : int, default 100
        Neighbours per labeled row (Coleman et al. use 100).
    metric : {"l2", "cosine"}, default "l2"
        Distance of the neighbour search ("cosine" searches unit-length rows).

    Examples
    --------
    >>> import numpy as np
    >>> from fastal.diversity.seals import KnnCandidates
    >>> X = np.arange(20, dtype=np.float32).reshape(10, 2)
    >>> pool = KnnCandidates(X, knn=2)
    >>> pool([0, 9]).tolist()        # the 2 nearest unlabeled rows of rows 0 and 9
    [1, 2, 7, 8]
    """

    def __init__(self, embeddings, knn=100, metric="l2"):
        X = as_embeddings(embeddings, "embeddings")
        largest = check_finite(X, "embeddings")
        if metric not in _METRICS:
            raise ArgumentError(f"metric must be one of {', '.join(_METRICS)}; got {metric!r}")
        if metric == "l2":
            check_l2_range(largest, X.shape[1], "embeddings")
        self.knn = check_int(knn, "knn", 1)
        self.metric = metric
        self._X = _unit_rows(X) if metric == "cosine" else np.ascontiguousarray(X, np.float32)
        self.n_pool = self._X.shape[0]
        self._neighbours = {}  # labeled row -> its neighbours (int64, nearest first)
        self._searched_k = self.knn

    def _search(self, rows, k):
        k = min(k, self.n_pool)
        distances = np.empty((rows.size, k), dtype=np.float32)
        labels = np.empty((rows.size, k), dtype=np.int64)
        with small_search_blocks(query_block(self.n_pool)):
            knn_l2(np.ascontiguousarray(self._X[rows]), self._X, k, distances, labels)
        for row, found in zip(rows.tolist(), labels):
            self._neighbours[row] = found[found >= 0]

    def __call__(self, labeled, *, at_least=1) -> np.ndarray:
        """Sorted positions of unlabeled rows among the neighbours of the ``labeled`` rows.

        ``at_least``: when fewer candidates than this remain (every neighbour is labeled),
        the search widens (2x, 4x, ... neighbours) until there are enough or the whole
        unlabeled pool is in.
        """
        positions = parse_labeled(labeled, self.n_pool)
        if positions.size == 0:
            raise ArgumentError("candidates='knn' needs labeled rows: the candidates are "
                                "their nearest neighbours (label a seed set first)")
        at_least = min(int(at_least), self.n_pool - positions.size)
        k = self._searched_k
        while True:
            new = np.asarray([p for p in positions.tolist() if p not in self._neighbours],
                             dtype=np.int64)
            if new.size:
                # +1: a labeled row is its own nearest neighbour.
                self._search(new, k + 1)
            mask = np.zeros(self.n_pool, dtype=bool)
            for p in positions.tolist():
                mask[self._neighbours[p]] = True
            mask[positions] = False
            if mask.sum() >= at_least or k + 1 >= self.n_pool:
                return np.flatnonzero(mask).astype(np.int64)
            k = min(2 * k, self.n_pool)
            self._searched_k = k
            self._neighbours.clear()  # search again, wider


def _unit_rows(X):
    """X's rows scaled to unit length, as float32 (zero rows stay zero). Norms in float64,
    a chunk at a time: float32 norms overflow for values past ~1e19."""
    out = np.empty(X.shape, dtype=np.float32)
    chunk = max(MIN_CHUNK_ROWS, CHUNK_BYTES // (8 * X.shape[1]))
    for start in range(0, X.shape[0], chunk):
        block = X[start:start + chunk].astype(np.float64)
        norms = np.sqrt(np.sum(block * block, axis=1, keepdims=True))
        out[start:start + chunk] = block / np.where(norms > 0, norms, 1.0)
    return out


def knn_candidates(embeddings, labeled, knn=100, *, metric="l2") -> np.ndarray:
    """SEALS candidates in one call: sorted positions of the unlabeled rows among the
    ``knn`` nearest neighbours of each labeled row. In a loop, keep a
    :class:`KnnCandidates` instead (the index and the neighbours found are reused)."""
    return KnnCandidates(embeddings, knn, metric)(labeled)


def select_among_candidates(select, data, k, strategy, *, candidates, knn, probs, labeled,
                            seed, from_logits, chunk_rows, **options):
    """``select`` restricted to a candidate pool (see ``candidates=`` of :func:`fastal.select`).

    The strategy runs on the candidates (plus the labeled rows, still labeled, for strategies
    that read embeddings: they use them as centres), and its picks are mapped back to pool
    positions; other rows of ``data`` and ``probs`` are never read. ``extra["candidates"]`` holds the candidate positions and
    ``extra["n_candidates"]`` their number.
    """
    from ..io import is_table_or_path
    from ..io.arrays import to_numpy
    from ..select import STRATEGIES

    if knn is not None and not (isinstance(candidates, str) and candidates == "knn"):
        raise ArgumentError(f"knn is the neighbour count of candidates='knn'; got knn={knn!r} "
                            f"with candidates={candidates!r}")
    for given, what in ((data, "data"), (probs, "probs")):
        if given is not None and is_table_or_path(given):
            raise ArgumentError(f"candidates= works on in-memory arrays; {what} is a "
                                f"{type(given).__name__} (read it into an array first)")
    data = to_numpy(data, "data")
    n_pool = int(data.shape[0]) if data.ndim else 0
    probs = None if probs is None else to_numpy(probs, "probs")
    if probs is not None and probs.shape[0] != n_pool:
        raise ArgumentError(f"probs has {probs.shape[0]} rows but data has {n_pool}; they "
                            "must describe the same pool")
    positions = parse_labeled(labeled, n_pool)
    spec = STRATEGIES[strategy]
    if isinstance(candidates, str):
        if candidates != "knn":
            raise ArgumentError(f"candidates must be 'knn', a KnnCandidates or an array of pool "
                                f"positions; got {candidates!r}")
        if "embeddings" not in spec.needs:
            raise ArgumentError(
                f"candidates='knn' with strategy {strategy!r} needs the pool's embeddings, but "
                f"data holds its probabilities: pass candidates=KnnCandidates(embeddings, "
                f"knn={knn or 100}) (fastal.diversity.seals), built once for every round")
        metric = options.get("metric", "l2")
        candidates = KnnCandidates(data, 100 if knn is None else knn, metric)
    if isinstance(candidates, KnnCandidates):
        if candidates.n_pool != n_pool:
            raise ArgumentError(f"candidates was built on {candidates.n_pool} rows but the pool "
                                f"has {n_pool}")
        chosen = candidates(positions, at_least=k)
    else:
        chosen = to_numpy(candidates, "candidates")
        if chosen.ndim != 1 or (chosen.size and chosen.dtype.kind not in "iu"):
            raise ArgumentError("candidates as an array must hold 1-D integer pool positions; "
                                f"got shape {chosen.shape} dtype {chosen.dtype}")
        chosen = np.unique(chosen.astype(np.int64))
        if chosen.size and (chosen[0] < 0 or chosen[-1] >= n_pool):
            raise ArgumentError(f"candidates positions must be in [0, {n_pool}); got "
                                f"{int(chosen[0] if chosen[0] < 0 else chosen[-1])}")
        chosen = np.setdiff1d(chosen, positions)
    if chosen.size < k:
        raise ArgumentError(f"k={k} is larger than the candidate pool ({chosen.size} unlabeled "
                            "candidates)")
    if "embeddings" in spec.needs:
        # Diversity strategies measure distances to the labeled rows: keep them, labeled.
        sub = np.union1d(positions, chosen)
        inner_labeled = np.searchsorted(sub, positions)
    else:
        # Scores alone: the labeled rows' probabilities are never needed.
        sub, inner_labeled = chosen, None
    if options.get("embeddings") is not None:  # auto's optional embeddings: the same rows
        options["embeddings"] = to_numpy(options["embeddings"], "embeddings")[sub]
    inner = select(data[sub], k, strategy, probs=None if probs is None else probs[sub],
                   labeled=inner_labeled, seed=seed, from_logits=from_logits,
                   chunk_rows=chunk_rows, **options)
    extra = dict(inner.extra)
    extra.update(candidates=chosen, n_candidates=int(chosen.size))
    return type(inner)(sub[inner.indices], inner.scores, ids=None, method=inner.method,
                       n_pool=n_pool, extra=extra)
