"""Distributed ``score`` and ``top_k``: the single-machine driver on every partition, one merge.

Each worker plans its partition with ``fastal.scoring._plan`` (the same validation, the same
kernels, the same committee and model paths) and keeps its partition's best rows with
``fastal.scoring.TopK``; the driver merges the candidates by (score descending, global row
ascending), the order ``TopK`` keeps on one machine. Every row's score is computed by the
same kernel from the same values whatever the partition, so the merged result is the
single-machine result, bit for bit.
"""

from __future__ import annotations

import numpy as np

from .._errors import ArgumentError, DataError
from .._selection import Selection
from ..committee import COMMITTEE_METHODS as _COMMITTEE_ONLY
from ..scoring import TopK, _check_out, _plan, check_k, check_method
from ._jobs import ensure_lengths, gather, map_partitions, prepare, scatter_small
from ._pool import open_partition, partition_rows_of
from ._workers import set_task_threads


def _layout(method, model) -> str:
    """Committee methods without a model read the in-memory committee layouts."""
    from ..committee import REGRESSION_METHODS

    method = check_method(method)
    if model is None and method in _COMMITTEE_ONLY + REGRESSION_METHODS:
        return "members"
    return "rows"


def _score_partition(obj, method, opts, out_rows=None):
    """``(method, source or None, scorer-or-scores)`` for one partition (see ``_plan``)."""
    return _plan(obj, method, from_logits=opts["from_logits"], column=None, id_column=None,
                 model=opts["model"], n_classes=opts["n_classes"],
                 chunk_rows=opts["chunk_rows"])


def _score_task(part, data, spec, plan, method, opts):
    set_task_threads(plan)
    obj = open_partition(part, data, spec)
    if partition_rows_of(obj) == 0:
        return 0, np.empty(0, dtype=np.float32)
    method, source, scorer = _score_partition(obj, method, opts)
    if source is None:
        return scorer.shape[0], scorer
    out = np.empty(source.n_rows, dtype=np.float32)
    base = source.offset
    for chunk in source.chunks(opts["chunk_rows"]):
        scorer(chunk, out[chunk.start - base:chunk.stop - base])
    return source.n_rows, out


def _top_k_task(part, data, spec, plan, k, method, opts, labeled=None):
    """The partition's best ``min(k, rows)`` rows: ``(rows, positions, scores, ids)``.

    ``labeled`` (sorted global positions inside this partition) get the score ``-inf``, so
    they can only be kept when the partition has fewer than k other rows, and are dropped.
    Positions are global when the partition's offset is known, else local.
    """
    set_task_threads(plan)
    obj = open_partition(part, data, spec)
    if partition_rows_of(obj) == 0:
        return 0, np.empty(0, np.int64), np.empty(0, np.float32), None
    method, source, scorer = _score_partition(obj, method, opts)
    if source is None:
        n_rows = scorer.shape[0]
        best = TopK(min(k, n_rows))
        scores = scorer
        if labeled is not None and labeled.size:
            scores = scores.copy()
            scores[labeled - max(0, part.offset)] = -np.inf
        best.push(scores, max(0, part.offset))
    else:
        n_rows = source.n_rows
        best = TopK(min(k, n_rows))
        buffer = None
        for chunk in source.chunks(opts["chunk_rows"]):
            rows = chunk.values.shape[0]
            if buffer is None or buffer.shape[0] < rows:
                buffer = np.empty(rows, dtype=np.float32)
            out = buffer[:rows]
            scorer(chunk, out)
            if labeled is not None and labeled.size:
                lo, hi = np.searchsorted(labeled, [chunk.start, chunk.stop])
                out[labeled[lo:hi] - chunk.start] = -np.inf
            best.push(out, chunk.start, chunk.ids)
    keep = best.scores > -np.inf
    ids = None if best.ids is None else best.ids[keep]
    return n_rows, best.rows[keep], best.scores[keep], ids


def opts_for(from_logits, model, n_classes, chunk_rows):
    return {"from_logits": bool(from_logits), "model": model, "n_classes": n_classes,
            "chunk_rows": chunk_rows}


def score(data, method, *, client, from_logits=False, column=None, chunk_rows=None,
          progress=False, model=None, n_classes=None, out=None, partition_rows=None):
    """:func:`fastal.score` over a distributed pool: the same float32 scores, in pool order.

    The scores of the whole pool come back to the driver (4 bytes per row); for a pool that
    large, :func:`top_k` is the verb that scales (k rows per partition come back).
    """
    layout = _layout(method, model)
    pool, plan = prepare(client, data, column=column, partition_rows=partition_rows,
                         layout=layout)
    opts = opts_for(from_logits, scatter_small(client, model), n_classes, chunk_rows)
    results = gather(client, map_partitions(client, _score_task, [pool], pool.spec, plan,
                                            method, opts), progress, f"scoring ({method})")
    n_rows = sum(n for n, _ in results)
    if out is None:
        out = np.empty(n_rows, dtype=np.float32)
    else:
        _check_out(out, n_rows)
    start = 0
    for n, scores in results:
        out[start:start + n] = scores
        start += n
    return out


def top_k(data, k, method, *, client, from_logits=False, column=None, id_column=None,
          chunk_rows=None, progress=False, model=None, n_classes=None, labeled=None,
          partition_rows=None):
    """:func:`fastal.top_k` over a distributed pool (``labeled``: global positions never
    returned, as in :func:`fastal.select`). Returns the single-machine ``Selection``."""
    canonical = check_method(method)
    if model is not None:
        from ..models import check_model_methods

        (canonical,) = check_model_methods(model, canonical)
    layout = _layout(canonical, model)
    pool, plan = prepare(client, data, column=column, id_column=id_column,
                         partition_rows=partition_rows, layout=layout)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        check_k(k, 1, pool.name)  # raises the single-machine message
    if labeled is not None:
        pool = ensure_lengths(client, pool)
    if pool.n_rows is not None:
        k = check_k(k, pool.n_rows, pool.name)
    opts = opts_for(from_logits, scatter_small(client, model), n_classes, chunk_rows)
    return top_k_pool(client, pool, plan, k, canonical, opts, labeled, progress)


def top_k_pool(client, pool, plan, k, method, opts, labeled=None, progress=False):
    """``top_k`` on an opened pool (``labeled``: sorted global positions, or None)."""
    per_part = _split_labeled(labeled, pool)
    futures = map_partitions(client, _top_k_task, [pool], pool.spec, plan, k, method, opts,
                             per_partition=None if per_part is None
                             else [(x,) for x in per_part])
    results = gather(client, futures, progress, f"top-{k} ({method})")
    return merge_top_k(results, pool, k, method, n_unlabeled_check=labeled is not None)


def _split_labeled(labeled, pool):
    if labeled is None:
        return None
    offsets = pool.offsets()
    bounds = np.searchsorted(labeled, offsets)
    return [labeled[bounds[i]:bounds[i + 1]] for i in range(pool.n_partitions)]


def merge_top_k(results, pool, k, method, n_unlabeled_check=False) -> Selection:
    """Merge the partitions' candidates: the k best by (score desc, global row asc)."""
    lengths = [n for n, _, _, _ in results]
    if pool.n_rows is None:
        pool = pool.with_lengths(lengths)
        if k > pool.n_rows:
            check_k(k, pool.n_rows, pool.name)
        shift = pool.offsets()[:-1]
    else:
        for part, n in zip(pool.partitions, lengths):
            if n != part.n_rows:
                raise DataError(f"partition {part.index} of {pool.name} has {n} rows but its "
                                f"metadata says {part.n_rows}")
        shift = np.zeros(pool.n_partitions, dtype=np.int64)
    rows = np.concatenate([r + s for (_, r, _, _), s in zip(results, shift)])
    scores = np.concatenate([s for _, _, s, _ in results])
    order = np.lexsort((rows, -scores))[:k]
    if n_unlabeled_check and order.shape[0] < k:
        raise ArgumentError(f"k={k} is larger than the unlabeled pool ({order.shape[0]} "
                            f"unlabeled rows)")
    ids = None
    if pool.has_ids:
        ids = np.concatenate([i for _, _, _, i in results if i is not None])[order]
    return Selection(indices=rows[order].astype(np.int64), scores=scores[order], ids=ids,
                     method=method, n_pool=int(sum(lengths)))
