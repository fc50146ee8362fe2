"""Kernels for BADGE (``fastal.diversity.badge``): k-means++ on implicit gradient embeddings.

Plain arrays in, plain arrays out; the driver validates everything once.

The gradient embedding of row i is ``g_i = p~_i (x) x_i`` with ``p~_i = p_i - e_{yhat_i}``
(C x d values); it is never formed. Per-row state, all O(N):

- ``pnorm2`` (N,) float64: ``||p~_i||^2``; ``xnorm2`` (N,) float64: ``||x_i||^2``; so
  ``||g_i||^2 = pnorm2[i] * xnorm2[i]`` (that exact product, everywhere).
- ``yhat`` (N,) int32: the predicted class (first maximum).
- ``status`` (N,) uint8: ``CANDIDATE``, ``LABELED`` or ``PICKED``.
- ``mindist`` (N,) float64: squared gradient distance to the nearest chosen centre
  (``inf`` before the first centre) for candidates, 0 for labeled and picked rows.

Sampling is defined over fixed blocks of ``SAMPLING_BLOCK`` consecutive rows so that the
sums can be computed in parallel and still be reproduced bit for bit by plain NumPy
(``tests/reference_badge.py``): each block's sum is a left-to-right float64 sum, the total a
left-to-right sum of the block sums. Those sums live in kernels compiled *without*
fastmath, so LLVM cannot reassociate them.

Parallel kernels are serial ``*_tasks(..., lo, hi)`` functions run on Python threads by
``_parallel.run_tasks`` (no ``prange``: its lowering made a first call compile 2-4x
slower); every task writes only its own rows and blocks, so nothing depends on the split.
"""

import numpy as np
from numba import njit

from .._config import FASTMATH
from ._intrinsics import prefetch
from ._parallel import run_tasks

CANDIDATE, LABELED, PICKED = 0, 1, 2

#: Rows per sampling block (a definition, not a tuning knob: changing it changes the picks).
SAMPLING_BLOCK = 4096

# Relative slack on the pruning test: the bound is evaluated with rounding error of order
# 1e-16 * (|g_i|^2 + |g_c|^2); a row is skipped only when the bound clears its current
# distance by far more than that, so skipping never changes a distance that the full
# computation would have lowered.
_PRUNE_SLACK = 1e-9


# Rows that survive the pruning test are scattered over X; fetching each one on demand costs
# a full memory (and TLB) latency. They are first collected per block, then evaluated with
# the row this many places ahead prefetched.
_PREFETCH_AHEAD = 6

# Rows per task of the per-row kernels (a Python constant passed in, so tests can shrink it).
ROWS_PER_TASK = 4096


@njit(nogil=True, cache=True)
def _block_sums_tasks(mindist, out, lo, hi):
    """``block_sums`` for blocks lo <= b < hi; returns 0."""
    n = mindist.shape[0]
    for b in range(lo, hi):
        acc = 0.0
        for i in range(b * SAMPLING_BLOCK, min(n, (b + 1) * SAMPLING_BLOCK)):
            acc += mindist[i]
        out[b] = acc
    return 0


def block_sums(mindist, out):
    """out[b] = left-to-right float64 sum of block b of mindist.

    Compiled without fastmath (so LLVM cannot reassociate the sum and it matches the
    reference bit for bit); one task per block.
    """
    run_tasks(_block_sums_tasks, out.shape[0], mindist, out)


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _row_stats_tasks(X, probs, atol, yhat, pnorm2, xnorm2, bad, rows_per_task, lo, hi):
    """``row_stats`` for rows [lo * rows_per_task, hi * rows_per_task); returns the number
    of bad rows among them."""
    n, d = X.shape
    c = probs.shape[1]
    n_bad = 0
    for i in range(lo * rows_per_task, min(n, hi * rows_per_task)):
        acc = 0.0
        for j in range(d):
            v = np.float64(X[i, j])
            acc += v * v
        top = probs[i, 0]
        arg = 0
        total = 0.0
        lowest = np.inf
        for j in range(c):
            p = np.float64(probs[i, j])
            total += p
            lowest = min(lowest, p)
            if probs[i, j] > top:  # strict: ties keep the lowest class
                top = probs[i, j]
                arg = j
        q = 0.0
        for j in range(c):
            v = np.float64(probs[i, j])
            if j == arg:
                v -= 1.0
            q += v * v
        yhat[i] = arg
        pnorm2[i] = q
        xnorm2[i] = acc
        if not (acc < np.inf):  # NaN or inf
            bad[i] = 1
            n_bad += 1
        elif not (lowest >= -atol and abs(total - 1.0) <= atol):
            bad[i] = 2
            n_bad += 1
        else:
            bad[i] = 0
    return n_bad


def row_stats(X, probs, atol, yhat, pnorm2, xnorm2, bad):
    """Fill yhat, pnorm2 = ||p - e_yhat||^2 and xnorm2 = ||x||^2 (float64) for every row.

    ``bad[i]`` is set to 1 when x_i has a NaN/inf (or its squared norm overflows), 2 when
    p_i is not a probability vector (NaN/inf, an entry below -atol, or a sum off 1 by more
    than atol), else 0. Returns the number of bad rows.
    """
    n_tasks = -(-X.shape[0] // ROWS_PER_TASK)
    return run_tasks(_row_stats_tasks, n_tasks, X, probs, atol, yhat, pnorm2, xnorm2, bad,
                     ROWS_PER_TASK)


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _add_center_tasks(X, probs, yhat, pnorm2, xnorm2, center, mindist, blocks_per_task, lo,
                      hi):
    """``add_center`` for tasks lo <= task < hi (``blocks_per_task`` sampling blocks each);
    ``mindist[center]`` is already 0. Returns 0."""
    n, d = X.shape
    c = probs.shape[1]
    n_blocks = (n + SAMPLING_BLOCK - 1) // SAMPLING_BLOCK
    yc = yhat[center]
    pc_norm2 = pnorm2[center]
    xc_norm2 = xnorm2[center]
    gc = pc_norm2 * xc_norm2
    xc_norm = np.sqrt(xc_norm2)
    pc = np.empty(c, dtype=np.float64)
    for j in range(c):
        pc[j] = np.float64(probs[center, j])
    pc[yc] -= 1.0
    xc = np.empty(d, dtype=np.float64)
    for j in range(d):
        xc[j] = np.float64(X[center, j])
    todo = np.empty(SAMPLING_BLOCK, dtype=np.int64)
    todo_dp2 = np.empty(SAMPLING_BLOCK, dtype=np.float64)
    todo_pdp = np.empty(SAMPLING_BLOCK, dtype=np.float64)
    for task in range(lo, hi):
        b_stop = min(n_blocks, (task + 1) * blocks_per_task)
        for b in range(task * blocks_per_task, b_stop):
            start = b * SAMPLING_BLOCK
            stop = min(n, start + SAMPLING_BLOCK)
            # pass 1, sequential over the block: the O(C) part and the pruning test
            n_todo = 0
            for i in range(start, stop):
                current = mindist[i]
                if current == 0.0:
                    continue
                gi = pnorm2[i] * xnorm2[i]
                if gi == 0.0 or gc == 0.0:
                    dist = gi + gc
                    if dist < current:
                        mindist[i] = dist
                    continue
                yi = yhat[i]
                pp = 0.0
                dp2 = 0.0
                pdp = 0.0
                for j in range(c):
                    pij = np.float64(probs[i, j])
                    if j == yi:
                        pij -= 1.0
                    diff = pij - pc[j]
                    pp += pij * pc[j]
                    dp2 += diff * diff
                    pdp += pij * diff
                bound = gi + gc - 2.0 * abs(pp) * np.sqrt(xnorm2[i]) * xc_norm
                if bound - _PRUNE_SLACK * (gi + gc) > current:
                    continue
                todo[n_todo] = i
                todo_dp2[n_todo] = dp2
                todo_pdp[n_todo] = pdp
                n_todo += 1
            # pass 2, over the surviving rows only: the O(d) part, rows prefetched ahead
            for t in range(min(n_todo, _PREFETCH_AHEAD)):
                prefetch(X, todo[t])
            last = n_todo - 1
            for t in range(0, n_todo, 4):
                # four rows at a time: eight independent chains of float64 additions
                # instead of two, each row's sums still in coordinate order (the same bits);
                # a last group of fewer repeats its last row, stored once
                for h in range(4):
                    if t + h + _PREFETCH_AHEAD < n_todo:
                        prefetch(X, todo[t + h + _PREFETCH_AHEAD])
                i0 = todo[t]
                i1 = todo[t + 1 if t + 1 < last else last]
                i2 = todo[t + 2 if t + 2 < last else last]
                i3 = todo[t + 3 if t + 3 < last else last]
                a0 = a1 = a2 = a3 = 0.0
                b0 = b1 = b2 = b3 = 0.0
                for j in range(d):
                    x = xc[j]
                    u0 = np.float64(X[i0, j]) - x
                    u1 = np.float64(X[i1, j]) - x
                    u2 = np.float64(X[i2, j]) - x
                    u3 = np.float64(X[i3, j]) - x
                    a0 += u0 * u0
                    a1 += u1 * u1
                    a2 += u2 * u2
                    a3 += u3 * u3
                    b0 += u0 * x
                    b1 += u1 * x
                    b2 += u2 * x
                    b3 += u3 * x
                for h, dx2, dxc in ((0, a0, b0), (1, a1, b1), (2, a2, b2), (3, a3, b3)):
                    if t + h < n_todo:
                        i = todo[t + h]
                        dist = (pnorm2[i] * dx2 + todo_dp2[t + h] * xc_norm2
                                + 2.0 * todo_pdp[t + h] * dxc)
                        if dist < 0.0:
                            dist = 0.0
                        if dist < mindist[i]:
                            mindist[i] = dist
    return 0


def add_center(X, probs, yhat, pnorm2, xnorm2, center, mindist, blocks_per_task):
    """Lower ``mindist`` with the gradient distance to row ``center``.

    For each row i with ``mindist[i] > 0`` (candidates not yet at distance 0):

    ``||g_i - g_c||^2 = |p~_i|^2 |dx|^2 + |dp|^2 |x_c|^2 + 2 <p~_i, dp> <dx, x_c>``

    with ``dx = x_i - x_c`` and ``dp = p~_i - p~_c`` (expand
    ``g_i - g_c = p~_i (x) dx + dp (x) x_c``). Unlike ``|g_i|^2 + |g_c|^2 - 2 <.,.><.,.>``
    this has no cancellation at duplicates: identical rows get exactly 0. A zero gradient
    (one-hot p or zero x) on either side gives ``|g_i|^2 + |g_c|^2`` directly. Tiny negative
    values from rounding are clamped at 0.

    Pruning: with ``pp = <p~_i, p~_c>`` (O(C)) and Cauchy-Schwarz on ``<x_i, x_c>``,
    ``||g_i - g_c||^2 >= |g_i|^2 + |g_c|^2 - 2 |pp| |x_i| |x_c|``; when that bound exceeds
    ``mindist[i]`` the O(d) pass is skipped (the minimum cannot change).

    Work is split into tasks of ``blocks_per_task`` sampling blocks (each row's result is
    independent of the split and of the thread count).
    """
    n_blocks = -(-X.shape[0] // SAMPLING_BLOCK)
    mindist[center] = 0.0
    run_tasks(_add_center_tasks, -(-n_blocks // blocks_per_task), X, probs, yhat, pnorm2,
              xnorm2, center, mindist, blocks_per_task)


@njit(cache=True)
def sample_row(mindist, block_sums, u):
    """The row drawn by ``u`` in [0, 1) with probability proportional to ``mindist``.

    Definition (reproduced exactly by the reference): ``total`` is the left-to-right sum of
    the block sums and ``t = u * total``; the pick is in the first block whose running
    (left-to-right) cumulative sum ``cum_b`` exceeds ``t``, at the first row whose
    within-block running sum exceeds ``t - cum_{b-1}``. When rounding leaves no such row,
    the last row with positive ``mindist`` of that block (or of the pool) is taken.
    Returns -1 when ``total == 0`` (the caller falls back to a uniform pick).
    No fastmath: every sum's order is part of the definition.
    """
    n = mindist.shape[0]
    total = 0.0
    for b in range(block_sums.shape[0]):
        total += block_sums[b]
    if total == 0.0:
        return -1
    threshold = u * total
    cum = 0.0
    for b in range(block_sums.shape[0]):
        nxt = cum + block_sums[b]
        if nxt > threshold:
            start = b * SAMPLING_BLOCK
            stop = min(n, start + SAMPLING_BLOCK)
            rest = threshold - cum
            run = 0.0
            last = -1
            for i in range(start, stop):
                run += mindist[i]
                if mindist[i] > 0.0:
                    last = i
                if run > rest:
                    return i
            return last
        cum = nxt
    for i in range(n - 1, -1, -1):
        if mindist[i] > 0.0:
            return i
    return -1


@njit(cache=True)
def nth_candidate(status, rank):
    """Row of the ``rank``-th (0-based) candidate in index order; -1 if there are fewer."""
    seen = 0
    for i in range(status.shape[0]):
        if status[i] == CANDIDATE:
            if seen == rank:
                return i
            seen += 1
    return -1
