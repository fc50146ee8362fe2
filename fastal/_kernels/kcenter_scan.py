"""Kernel for exact greedy k-center by full scans (``fastal.diversity.kcenter``), for data
on which neither the lazy bounds nor the triangle-inequality groups prune.

Each pick costs one sequential pass over X: every row's distance to the newest centre,
the min-update of its distance ``D`` to the centre set and a running argmax, fused. Rows
are read in storage order (the groups read them in group order, a cache miss per row when
nothing is skipped): about 1 ns per coordinate per thread, the float64 sum in coordinate
order being latency-bound, 3-4x faster per row than the groups' pass.

``mindist`` (N,) float64 holds ``D`` exactly, in score units (l2: the distance; cosine:
``||a - b||^2 / 2``), ``-1`` for centres. Distances are accumulated in float64 from
``x - c`` with the arithmetic of ``fastal._kernels.kcenter`` (``_sq_rows``), so they agree
bit for bit with the other paths' exact distances.
"""

import numpy as np
from numba import njit

from ._parallel import run_tasks
from .kcenter import _FASTMATH, _sq_rows, _to_score_units, metric_flag

#: Rows per task (a Python constant passed in: tests shrink it).
ROWS_PER_TASK = 8192


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _add_center_tasks(X, inv_norm, cosine, center, mindist, best, rows_per_task, lo, hi):
    """``add_center`` for rows [lo * rows_per_task, hi * rows_per_task); task ``t`` writes
    its largest ``D`` and that row (the lowest of equal ones) to ``best[t]``.

    (Interleaving two to eight rows' sums, each still in coordinate order, was no faster
    overall: 1.2x at d = 32, 0.7x at d = 128.)"""
    c_scale = inv_norm[center] if cosine is not None else 1.0
    n = X.shape[0]
    for task in range(lo, hi):
        top = -np.inf
        top_row = -1
        for i in range(task * rows_per_task, min(n, (task + 1) * rows_per_task)):
            m = mindist[i]
            if m < 0.0:  # a centre
                continue
            scale = inv_norm[i] if cosine is not None else 1.0
            new = _to_score_units(_sq_rows(X, i, scale, X, center, c_scale), cosine)
            if new < m:
                m = new
                mindist[i] = new
            if m > top:
                top = m
                top_row = i
        best[task, 0] = top
        best[task, 1] = top_row
    return 0


def add_center(X, inv_norm, cosine, center, mindist, best):
    """Make pool row ``center`` a centre (``mindist[center] = -1``), lower every row's
    ``mindist`` to it and return ``(largest D, its row)`` over the rows that are not centres
    (the lowest row of equal ones; ``(-inf, -1)`` when every row is a centre). ``best``:
    (``n_tasks(N)``, 2) float64 scratch."""
    mindist[center] = -1.0
    run_tasks(_add_center_tasks, best.shape[0], X, inv_norm, metric_flag(cosine), center,
              mindist, best, ROWS_PER_TASK)
    task = int(np.argmax(best[:, 0]))  # the first task of the largest: the lowest row
    return float(best[task, 0]), int(best[task, 1])


def n_tasks(n_rows):
    return -(-n_rows // ROWS_PER_TASK)
