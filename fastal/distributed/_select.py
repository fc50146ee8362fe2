"""Distributed ``fastal.select``: the strategies that have a distributed form.

The arguments are checked with the single-machine rules and messages; each strategy then
runs on the cluster and returns the single-machine ``Selection``.
"""

from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._selection import Selection
from .._validation import make_rng, parse_labeled
from ..scoring import UNCERTAINTY_METHODS, check_k
from ._jobs import ensure_lengths, gather, map_partitions, prepare
from ._kcenter import (Block, Greedy, Shard, _LocalProxy, as_float_rows, inverse_norms,
                       kcenter, metric_rows)
from ._pool import aligned, open_partition
from ._scoring import opts_for, top_k_pool
from ._workers import set_task_threads

#: Strategies ``fastal.select`` runs with ``client=``.
DISTRIBUTED_STRATEGIES = UNCERTAINTY_METHODS + (
    "random", "kcenter", "weighted_kcenter", "uncertain_kcenter", "badge")
#: Options only the distributed form takes.
DISTRIBUTED_OPTIONS = {"kcenter": ("mode", "core_set_factor")}


def select(data, k, strategy=None, *, client, probs=None, labeled=None, seed=0,
           from_logits=False, column=None, chunk_rows=None, partition_rows=None,
           _on_pick=None, **options):
    """:func:`fastal.select` on a Dask cluster: the same ``Selection``.

    Runs the strategies of ``DISTRIBUTED_STRATEGIES``; ``data``, ``probs`` (an array, a
    dask array, or a column name of the same files / dataframe) and the other arguments
    are those of :func:`fastal.select`. ``kcenter`` also takes ``mode`` and
    ``core_set_factor`` (see :func:`fastal.distributed.kcenter`).
    """
    from ..select import DEFAULT_STRATEGY, STRATEGIES

    name = DEFAULT_STRATEGY if strategy is None else strategy
    if not isinstance(name, str) or name not in STRATEGIES:
        raise ArgumentError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if name not in DISTRIBUTED_STRATEGIES:
        raise ArgumentError(f"strategy {name!r} has no distributed form (it clusters the "
                            f"whole pool in one process); with client= use one of "
                            f"{', '.join(DISTRIBUTED_STRATEGIES)}")
    spec = STRATEGIES[name]
    accepted = tuple(spec.options) + DISTRIBUTED_OPTIONS.get(name, ())
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ArgumentError(f"strategy {name!r} does not take {', '.join(unknown)}; it accepts "
                            f"{', '.join(accepted) or 'no options'}")
    if "probs" in spec.needs and "embeddings" in spec.needs and probs is None:
        raise ArgumentError(
            f"strategy {name!r} needs class probabilities and embeddings: pass the embeddings "
            f"as data and the probabilities as probs=... (with client=, also a column name "
            f"of the same files)")
    pool, plan = prepare(client, data, column=column, partition_rows=partition_rows)
    pool = ensure_lengths(client, pool)
    n_pool = pool.n_rows
    probs_pool = None if probs is None else aligned(probs, pool)
    labeled_pos = parse_labeled(labeled, n_pool)
    n_unlabeled = n_pool - labeled_pos.size
    if n_unlabeled == 0:
        raise ArgumentError(f"every one of the {n_pool} pool rows is labeled: nothing left to "
                            f"select")
    k = check_k(k, n_pool, "data")
    if k > n_unlabeled:
        raise ArgumentError(f"k={k} is larger than the unlabeled pool ({n_unlabeled} of "
                            f"{n_pool} rows are unlabeled)")
    make_rng(seed)  # validate the seed once, whatever the strategy
    job = _Job(client, pool, plan, probs_pool, labeled_pos, seed, from_logits, chunk_rows)
    job.on_pick = _on_pick
    if name in UNCERTAINTY_METHODS:
        return job.uncertainty(name, k)
    return _RUNNERS[name](job, k, **options)


class _Job:
    """What a distributed strategy sees (the distributed ``_Pool`` of ``fastal.select``)."""

    def __init__(self, client, pool, plan, probs_pool, labeled, seed, from_logits,
                 chunk_rows):
        self.client, self.pool, self.plan = client, pool, plan
        self.probs_pool, self.labeled, self.seed = probs_pool, labeled, seed
        self.from_logits, self.chunk_rows = from_logits, chunk_rows

    @property
    def scores_pool(self):
        return self.pool if self.probs_pool is None else self.probs_pool

    def uncertainty(self, method, k, n=None):
        """The k best unlabeled rows by ``method`` (ties to the lower row)."""
        opts = opts_for(self.from_logits, None, None, self.chunk_rows)
        labeled = self.labeled if self.labeled.size else None
        sel = top_k_pool(self.client, self.scores_pool, self.plan, k, method, opts, labeled)
        return Selection(sel.indices, sel.scores, method=method, n_pool=self.pool.n_rows)


def _random(job: _Job, k):
    # The single-machine draw is rng.choice(unlabeled, k, replace=False), i.e. the rows of
    # unlabeled at the drawn ranks: the ranks are drawn here and mapped to rows without
    # building the unlabeled array (only n_pool and the labeled positions are needed).
    n_unlabeled = job.pool.n_rows - job.labeled.size
    ranks = make_rng(job.seed).choice(n_unlabeled, size=k, replace=False)
    picks = _rank_to_row(ranks.astype(np.int64), job.labeled)
    return Selection(picks, np.zeros(k, dtype=np.float32), method="random",
                     n_pool=job.pool.n_rows)


def _rank_to_row(ranks, labeled):
    """Row of the ``rank``-th (0-based) unlabeled row, ``labeled`` sorted unique."""
    if not labeled.size:
        return ranks
    # the unlabeled rows before labeled[j] number labeled[j] - j (non-decreasing)
    gaps = labeled - np.arange(labeled.size)
    return ranks + np.searchsorted(gaps, ranks, side="right")


def _kcenter(job: _Job, k, metric="l2", mode="exact", core_set_factor=4):
    labeled = job.labeled if job.labeled.size else None
    return kcenter(job.pool, k, client=job.client, labeled=labeled, metric=metric,
                   seed=job.seed, mode=mode, core_set_factor=core_set_factor,
                   _on_pick=job.on_pick)


def _weighted_kcenter(job: _Job, k, method="margin", metric="l2"):
    if method not in UNCERTAINTY_METHODS:
        raise ArgumentError(f"method must be one of {', '.join(UNCERTAINTY_METHODS)}; "
                            f"got {method!r}")
    labeled = job.labeled if job.labeled.size else None
    sel = kcenter(job.pool, k, client=job.client, labeled=labeled, metric=metric,
                  seed=job.seed, _weights={"probs": job.probs_pool, "method": method,
                                           "from_logits": job.from_logits})
    return Selection(sel.indices, sel.scores, method="weighted_kcenter",
                     n_pool=job.pool.n_rows, extra=sel.extra)


def _uncertain_kcenter(job: _Job, k, beta=10, method="margin", metric="l2"):
    if not isinstance(beta, (int, float, np.integer, np.floating)) or beta < 1:
        raise ArgumentError(f"beta must be a number >= 1; got {beta!r}")
    if method not in UNCERTAINTY_METHODS:
        raise ArgumentError(f"method must be one of {', '.join(UNCERTAINTY_METHODS)}; "
                            f"got {method!r}")
    if metric not in ("l2", "cosine"):
        raise ArgumentError(f"metric must be one of ('l2', 'cosine'); got {metric!r}")
    cosine = metric == "cosine"
    n_unlabeled = job.pool.n_rows - job.labeled.size
    n_candidates = min(n_unlabeled, max(k, int(np.ceil(beta * k))))
    best = job.uncertainty(method, n_candidates)
    order = np.argsort(best.indices)
    candidates = best.indices[order]
    uncertainty = best.scores[order]
    # the candidates' rows come to the driver (beta * k of them); their distances to the
    # labeled set are computed where the labeled rows live
    X = _gather_rows(job, candidates)
    d = X.shape[1]
    block = Block(X, 0, cosine, "candidates")
    if job.labeled.size:
        block.mindist[:] = _labeled_distances(job, X, cosine)
    greedy = Greedy([_LocalProxy(Shard.of_blocks([block]))])
    greedy.locate()
    inner, scores, _ = greedy.run(k, candidates.shape[0], d, labeled_rows=None,
                                  labeled_vectors=None, seed=job.seed,
                                  warm=bool(job.labeled.size))
    picks = candidates[inner]
    return Selection(picks, scores.astype(np.float32), method="uncertain_kcenter",
                     n_pool=job.pool.n_rows,
                     extra={"uncertainty": uncertainty[inner], "candidates": n_candidates})


def _rows_task(part, data, spec, plan, rows):
    """The raw rows ``rows`` (global positions inside this partition)."""
    set_task_threads(plan)
    if rows is None or not rows.size:
        return None
    source = open_partition(part, data, spec)
    X = source.read_all()
    return X[rows - source.offset]


def _gather_rows(job, rows):
    per_part = _per_partition(rows, job.pool)
    futures = map_partitions(job.client, _rows_task, [job.pool], job.pool.spec, job.plan,
                             per_partition=[(r,) for r in per_part])
    parts = [p for p in gather(job.client, futures) if p is not None]
    return as_float_rows(np.concatenate(parts), "data")


def _labeled_distance_task(part, data, spec, plan, candidates, rows, cosine):
    """Each candidate's distance to the nearest of this partition's labeled ``rows``."""
    set_task_threads(plan)
    out = np.full(candidates.shape[0], np.inf)
    if rows is None or not rows.size:
        return out
    source = open_partition(part, data, spec)
    X = as_float_rows(source.read_all()[rows - source.offset], source.name)
    labeled = metric_rows(X, inverse_norms(X, source.name) if cosine else None, cosine)
    block = Block(candidates, 0, cosine, "candidates")
    block.step(labeled)
    return block.mindist


def _labeled_distances(job, candidates, cosine):
    per_part = _per_partition(job.labeled, job.pool)
    futures = map_partitions(job.client, _labeled_distance_task, [job.pool], job.pool.spec,
                             job.plan, candidates, per_partition=[(r, cosine) for r in per_part])
    out = np.full(candidates.shape[0], np.inf)
    for dist in gather(job.client, futures):
        np.minimum(out, dist, out=out)
    return out


def _per_partition(rows, pool):
    bounds = np.searchsorted(rows, pool.offsets())
    return [rows[bounds[i]:bounds[i + 1]] for i in range(pool.n_partitions)]


def _badge(job: _Job, k):
    from ._badge import badge

    return badge(job, k, on_pick=job.on_pick)


_RUNNERS = {
    "random": _random,
    "kcenter": _kcenter,
    "weighted_kcenter": _weighted_kcenter,
    "uncertain_kcenter": _uncertain_kcenter,
    "badge": _badge,
}
