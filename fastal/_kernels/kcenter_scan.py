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
from .kcenter import _FASTMATH, _sq_rows, _sq_rows4, _to_score_units, metric_flag

#: Rows per task (a Python constant passed in: tests shrink it).
ROWS_PER_TASK = 8192


@njit(nogil=True, fastmath=_FASTMATH)
def _nearest_sq(X, i, scale, C, c_inv, cosine, c_rows):
    """The smallest ``_sq_rows`` of row ``i`` to the rows ``c_rows`` of ``C`` (scales
    ``c_inv``), four at a time (``_sq_rows4``: the same bits, four independent chains
    instead of one latency-bound one). Not inlined: compiled once for its callers here and
    in the lazy path (distances to the picks); float32 l2 pools' lazy kernels never compile
    it."""
    best = np.inf
    n = c_rows.shape[0]
    s = 0
    while s + 4 <= n:
        c0 = c_rows[s]
        c1 = c_rows[s + 1]
        c2 = c_rows[s + 2]
        c3 = c_rows[s + 3]
        if cosine is not None:
            y0, y1, y2, y3 = c_inv[c0], c_inv[c1], c_inv[c2], c_inv[c3]
        else:
            y0 = y1 = y2 = y3 = 1.0
        a0, a1, a2, a3 = _sq_rows4(X, i, scale, C, c0, c1, c2, c3, y0, y1, y2, y3)
        best = min(best, a0, a1, a2, a3)
        s += 4
    while s < n:
        c = c_rows[s]
        sq = _sq_rows(X, i, scale, C, c, c_inv[c] if cosine is not None else 1.0)
        if sq < best:
            best = sq
        s += 1
    return best


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _add_center_tasks(X, inv_norm, cosine, C, c_inv, c_rows, weights, mindist, best,
                      rows_per_task, lo, hi):
    """Lower ``mindist`` of rows [lo * rows_per_task, hi * rows_per_task) to the centres
    ``C[c_rows]`` (scaled by ``c_inv`` for cosine); task ``t`` writes to ``best[t]`` the
    largest score ``w_i D_i`` (``D_i`` unweighted when ``weights`` is None) of its rows that
    are not centres, that row (the lowest of equal ones) and their largest ``D_i`` (0 for
    none).

    One centre (a pick): one sum per row in coordinate order. (Interleaving two to eight
    rows' sums, each still in coordinate order, was no faster overall for those passes:
    1.2x at d = 32, 0.7x at d = 128.) Several (a labeled set): four centres per step."""
    n = X.shape[0]
    one = c_rows.shape[0] == 1
    for task in range(lo, hi):
        top = -np.inf
        top_row = -1
        cover = 0.0
        for i in range(task * rows_per_task, min(n, (task + 1) * rows_per_task)):
            m = mindist[i]
            if m < 0.0:  # a centre
                continue
            scale = inv_norm[i] if cosine is not None else 1.0
            if one:
                c = c_rows[0]
                sq = _sq_rows(X, i, scale, C, c, c_inv[c] if cosine is not None else 1.0)
            else:
                sq = _nearest_sq(X, i, scale, C, c_inv, cosine, c_rows)
            new = _to_score_units(sq, cosine)
            if new < m:
                m = new
                mindist[i] = new
            s = m * weights[i] if weights is not None else m
            if s > top:
                top = s
                top_row = i
            if m > cover:
                cover = m
        best[task, 0] = top
        best[task, 1] = top_row
        best[task, 2] = cover
    return 0


def add_center(X, inv_norm, cosine, center, mindist, best, weights=None):
    """Make pool row ``center`` a centre (``mindist[center] = -1``), lower every row's
    ``mindist`` to it and return ``(largest score, its row, largest D)`` over the rows that
    are not centres: the score is ``weights[i] * D_i`` (``D_i`` without weights), the row
    the lowest of equal ones; ``(-inf, -1, 0)`` when every row is a centre. ``best``:
    (``n_tasks(N)``, 3) float64 scratch."""
    mindist[center] = -1.0
    return _lower(X, inv_norm, cosine, X, inv_norm, np.array([center], dtype=np.int64),
                  mindist, best, weights, ROWS_PER_TASK)


def lower_to(X, inv_norm, cosine, C, c_inv, c_rows, mindist, weights=None):
    """Lower every row's ``mindist`` to the points ``C[c_rows]`` (labeled points, which need
    not be pool rows; nothing becomes a centre; ``c_inv``: their inverse norms for cosine)
    and return ``add_center``'s triple. Rows go in tasks of at most ``ROWS_PER_TASK`` and
    at least eight tasks, so that small pools use every thread."""
    rows_per_task = max(1, min(ROWS_PER_TASK, -(-X.shape[0] // 8)))
    best = np.empty((-(-X.shape[0] // rows_per_task), 3), dtype=np.float64)
    return _lower(X, inv_norm, cosine, C, c_inv, np.ascontiguousarray(c_rows, np.int64),
                  mindist, best, weights, rows_per_task)


def _lower(X, inv_norm, cosine, C, c_inv, c_rows, mindist, best, weights, rows_per_task):
    run_tasks(_add_center_tasks, best.shape[0], X, inv_norm, metric_flag(cosine), C, c_inv,
              c_rows, weights, mindist, best, rows_per_task)
    task = int(np.argmax(best[:, 0]))  # the first task of the largest: the lowest row
    return float(best[task, 0]), int(best[task, 1]), float(best[:, 2].max())


def n_tasks(n_rows):
    return -(-n_rows // ROWS_PER_TASK)


# --------------------------------------------------------------------------- float32 scans
#
# The same greedy rule with the pass in float32 (float32 l2 pools): vectorised sums in any
# order, each row's squared distance to the centre set kept as an interval [lower, upper]
# of float32 bounds, and the exact float64 distance recomputed only for the rows whose
# interval can still reach the top.
#
# Bound: s = fl(sum_j (x_j - c_j)^2) over d non-negative terms, each a difference rounded
# once and a square rounded once (or fused), summed in any order: |s - S| <= g S with
# g = (d + 2) u / (1 - (d + 2) u), u = 2^-24, S the exact sum, as long as nothing
# underflows; a flushed or subnormal term adds at most 2^-126 (the absolute slack). The
# pool's values are within the l2 range check, so nothing overflows. (A BLAS ``X @ c`` and
# ``|x|^2 + |c|^2 - 2 x.c`` was measured no faster: its bounds need the norms and a square
# root per row, and its error is relative to the norms, not to the distance.)

_FAST32 = {"reassoc", "contract"}  # any summation order: the bound holds for all of them
_MIN_NORMAL32 = 2.0**-126


def bounds32(d):
    """``(rel, slack)`` of the float32 pass at dimension ``d`` (see above), with margin."""
    u = 2.0**-24
    g = (d + 2) * u / (1.0 - (d + 2) * u)
    return 2.0 * g, (d + 2) * 2.0**-124


@njit(inline="always")
def _up32(x):
    """A float32 >= x (finite): rounding to nearest moves a float32-normal x by at most
    2^-24 of itself, less than the 2^-22 added first. (No nextafter: a libm call per row.)"""
    return np.float32(max(x, _MIN_NORMAL32) * (1.0 + 2.0**-22))


@njit(inline="always")
def _down32(x):
    """A float32 <= x, >= 0 (finite): the same margin, and 2^-148 for subnormal results."""
    return np.float32(max(0.0, x * (1.0 - 2.0**-22) - 2.0**-148))


@njit(nogil=True, cache=True, fastmath=_FAST32)
def _add_center32_tasks(X, center, rel, slack, lower, upper, best, rows_per_task, lo, hi):
    """``add_center32`` for rows [lo * rows_per_task, hi * rows_per_task); task ``t`` writes
    the largest lower bound of its rows that are not centres to ``best[t, 0]``."""
    n = X.shape[0]
    d = X.shape[1]
    c = X[center]
    for task in range(lo, hi):
        top = np.float32(-1.0)
        for i in range(task * rows_per_task, min(n, (task + 1) * rows_per_task)):
            u = upper[i]
            if u < 0.0:  # a centre
                continue
            acc = np.float32(0.0)
            for j in range(d):
                t = X[i, j] - c[j]
                acc += t * t
            s = np.float64(acc)
            low = s * (1.0 - rel) - slack
            if low < u:  # else the centre is farther than the set: neither bound moves
                up = _up32(s * (1.0 + rel) + slack)
                if up < u:
                    upper[i] = up
                low32 = _down32(low)
                if low32 < lower[i]:
                    lower[i] = low32
            if lower[i] > top:
                top = lower[i]
        best[task, 0] = top
    return 0


def add_center32(X, center, bounds, lower, upper, best):
    """Make pool row ``center`` a centre and lower every other row's float32 bounds of its
    squared distance to the centre set; returns the largest lower bound over the rows that
    are not centres (-1 when every row is a centre). ``bounds``: ``bounds32(d)``; ``best``
    (``n_tasks(N)``, 2) float64: scratch."""
    upper[center] = -1.0
    lower[center] = -1.0
    run_tasks(_add_center32_tasks, best.shape[0], X, center, *bounds, lower, upper, best,
              ROWS_PER_TASK)
    return float(best[:, 0].max())


@njit(cache=True, fastmath=_FASTMATH)
def exact_top(X, rows, sq, seen, picked, n_picked):
    """The row of ``rows`` (increasing) with the largest exact float64 distance to the first
    ``n_picked`` picks (the lowest of equal ones) and that distance (l2). ``sq[r]``: the
    exact squared distance of ``rows[r]`` to its first ``seen[r]`` picks (inf, 0 for none),
    brought up to ``n_picked`` here."""
    top = -1.0
    top_row = -1
    for r in range(rows.shape[0]):
        i = rows[r]
        best = sq[r]
        for p in range(seen[r], n_picked):
            d2 = _sq_rows(X, i, 1.0, X, picked[p], 1.0)
            if d2 < best:
                best = d2
        sq[r] = best
        seen[r] = n_picked
        dist = np.sqrt(best)
        if dist > top:
            top = dist
            top_row = i
    return top_row, top
