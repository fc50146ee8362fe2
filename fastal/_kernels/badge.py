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
``picks`` runs the later picks' whole loop in one gang of threads (``_parallel.run_gang``)
meeting at barriers: the same steps and bits as ``add_center``, ``block_sums`` and
``sample_row`` called per pick, without a hand-off to the threads per pick.
"""

import numba
import numpy as np
from numba import njit

from .._config import FASTMATH
from ._intrinsics import lane_sums, prefetch
from ._math import FAST32, HELPER, bounds32
from ._parallel import barrier, run_gang, run_tasks

CANDIDATE, LABELED, PICKED = 0, 1, 2

#: Rows per sampling block (a definition, not a tuning knob: changing it changes the picks).
SAMPLING_BLOCK = 4096

# Relative slack on the Cauchy-Schwarz tests: the bound and the exact distance are evaluated
# with rounding errors of order 1e-16 * (|p~_i|^2 + |p~_c|^2)(|x_i|^2 + |x_c|^2) (which
# bounds every term of the exact formula); a row is skipped only when the bound clears its
# current distance by far more than that, so skipping never changes a distance that the
# full computation would have lowered.
_PRUNE_SLACK = 1e-9
# The same for the filter's bound (``_cleared``), relative to the same quantity.
_FILTER_SLACK = 2.0**-30


# Rows that survive the pruning tests are scattered over X; fetching each one on demand costs
# a full memory (and TLB) latency. They are first collected per piece, then evaluated with
# the row this many places ahead prefetched.
_PREFETCH_AHEAD = 6

# Rows that survive the pruning tests are then filtered by their dot product with the centre,
# summed in the pool's dtype in any order (``_dots4``, vectorised), with a rigorous bound
# (``_math.bounds32``, ``_cleared``): only rows whose distance can still fall below their
# current one get the exact float64 pass.


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _dots4(A, i0, i1, i2, i3, v):
    """``<A[i], v>`` of four rows in ``A``'s dtype, summed in any order (vectorised). A
    function of its own, not inlined: its fast-math flags must not reach the caller's
    float64 sums."""
    s0 = s1 = s2 = s3 = A[i0, 0] - A[i0, 0]
    for j in range(A.shape[1]):
        c = v[j]
        s0 += A[i0, j] * c
        s1 += A[i1, j] * c
        s2 += A[i2, j] * c
        s3 += A[i3, j] * c
    return s0, s1, s2, s3


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _dense_dots(A, first, last, v, out):
    """``out[i - first] = <A[i], v>`` for every row i in [first, last), in ``A``'s dtype,
    summed in any order (vectorised, several chains per row), rows in order: a stream
    the hardware prefetches, at about the speed of a BLAS mat-vec. Its own function, as
    ``_dots4``."""
    for i in range(first, last):
        s = A[i, 0] - A[i, 0]
        for j in range(A.shape[1]):
            s += A[i, j] * v[j]
        out[i - first] = s


@njit(inline="always")
def _cleared(dot, pn, xn, pp, pp_e, current, pc2, xc2, rel, slack):
    """True when ``dot`` (``_dots4``'s ``<x_i, x_c>``) proves that row i's exact float64
    distance to the centre is above ``current`` (so its minimum cannot change).

    ``||g_i - g_c||^2 = |p~_i|^2 |x_i|^2 + |p~_c|^2 |x_c|^2 - 2 <p~_i, p~_c> <x_i, x_c>``
    exactly; ``pp`` is ``<p~_i, p~_c>`` within ``pp_e``; ``dot`` is within ``rel |x_i|
    |x_c| + slack <= rel (|x_i|^2 + |x_c|^2) / 2 + slack`` of ``<x_i, x_c>`` (the norms'
    own rounding inside the ``1 + rel``). The bound is off by rounding only, relative to
    ``(|p~_i|^2 + |p~_c|^2) (|x_i|^2 + |x_c|^2)``, which is also at least a tenth of the
    sum of the magnitudes of the exact formula's terms; ``_FILTER_SLACK`` of it covers
    both roundings."""
    err = rel * 0.5 * (xn + xc2) * (1.0 + rel) + slack
    ppa = abs(pp) + pp_e
    low = pn * xn + pc2 * xc2 - 2.0 * pp * dot - 2.0 * (ppa * err + pp_e * abs(dot))
    size = (pn + pc2) * (xn + xc2) + 2.0 * ppa * (abs(dot) + err)
    return low - _FILTER_SLACK * size - 1e-300 > current


# In ``picks``, pass 3 sweeps a piece's rows in order when more than this share of them is
# left after the first two tests (``_filter_pass``): a sequential sweep reads a row in ~17
# ns, a gathered one ~32 ns (Rotten Tomatoes' 256 float32 columns, in the caches). A Python
# constant passed in (tests set it to 0 or 2: always or never).
DENSE_SHARE = 0.6

# Rows per piece of add_center's passes (their survivor lists), and the smallest task: a
# pool of few sampling blocks is split into tasks of this many rows, so that the threads
# get about as many rows each.
_PIECE = 1024

# block_sums of up to this many blocks run on the calling thread (a Python constant read
# at each call: tests set it to 0)
SERIAL_BLOCKS = 16

# Rows per task of the per-row kernels (a Python constant passed in, so tests can shrink it).
ROWS_PER_TASK = 4096


@njit(nogil=True, cache=True)
def _block_sums_tasks(mindist, out, lo, hi):
    """``block_sums`` for blocks lo <= b < hi, four at a time (four independent chains of
    additions, each block's still left to right); returns 0."""
    n = mindist.shape[0]
    b = lo
    while b + 4 <= hi and (b + 4) * SAMPLING_BLOCK <= n:
        s0 = s1 = s2 = s3 = 0.0
        first = b * SAMPLING_BLOCK
        for r in range(SAMPLING_BLOCK):
            s0 += mindist[first + r]
            s1 += mindist[first + SAMPLING_BLOCK + r]
            s2 += mindist[first + 2 * SAMPLING_BLOCK + r]
            s3 += mindist[first + 3 * SAMPLING_BLOCK + r]
        out[b] = s0
        out[b + 1] = s1
        out[b + 2] = s2
        out[b + 3] = s3
        b += 4
    for b in range(b, hi):
        acc = 0.0
        for i in range(b * SAMPLING_BLOCK, min(n, (b + 1) * SAMPLING_BLOCK)):
            acc += mindist[i]
        out[b] = acc
    return 0


def block_sums(mindist, out):
    """out[b] = left-to-right float64 sum of block b of mindist.

    Compiled without fastmath (so LLVM cannot reassociate the sum and it matches the
    reference bit for bit); up to ``SERIAL_BLOCKS`` blocks on the calling thread (a
    hand-off costs more than their sums), more in one contiguous range of blocks per
    thread.
    """
    n_blocks = out.shape[0]
    if n_blocks <= SERIAL_BLOCKS:
        _block_sums_tasks(mindist, out, 0, n_blocks)
    else:
        run_tasks(_block_sums_tasks, n_blocks, mindist, out)


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _row_stats_tasks(X, probs, atol, yhat, pnorm2, xnorm2, bad, rows_per_task, sums, lo, hi):
    """``row_stats`` for rows [lo * rows_per_task, hi * rows_per_task); returns the number
    of bad rows among them. ``sums``: (2,) float64 scratch."""
    n = X.shape[0]
    c = probs.shape[1]
    n_bad = 0
    for i in range(lo * rows_per_task, min(n, hi * rows_per_task)):
        lane_sums(X, i, None, sums)
        acc = sums[0]
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
    """Fill yhat, pnorm2 = ||p - e_yhat||^2 (class order) and xnorm2 = ||x||^2 (float64,
    ``lane_sums``) for every row.

    ``bad[i]`` is set to 1 when x_i has a NaN/inf (or its squared norm overflows), 2 when
    p_i is not a probability vector (NaN/inf, an entry below -atol, or a sum off 1 by more
    than atol), else 0. Returns the number of bad rows.
    """
    n_tasks = -(-X.shape[0] // ROWS_PER_TASK)
    return run_tasks(_row_stats_tasks, n_tasks, X, probs, atol, yhat, pnorm2, xnorm2, bad,
                     ROWS_PER_TASK, scratch=(("badge-row-stats",), lambda: (np.empty(2),)))


@njit(nogil=True, **HELPER)
def _norms_pass(start, stop, mindist, pnorm2, xnorm2, pc2, xc2, todo):
    """Pass 1, over rows [start, stop): rows at distance 0 are left; a zero gradient on
    either side gives ``|g_i|^2 + |g_c|^2`` directly; the rest are kept in ``todo`` unless
    the Cauchy-Schwarz test of ``_dots_pass`` with ``|pp| <= |p~_i| |p~_c|`` prunes them
    (no O(C) work: rows whose gradient norm is far from the centre's). Returns how many
    were kept."""
    gc = pc2 * xc2
    n_todo = 0
    for i in range(start, stop):
        current = mindist[i]
        if current == 0.0:
            continue
        pn = pnorm2[i]
        xn = xnorm2[i]
        gi = pn * xn
        if gi == 0.0 or gc == 0.0:
            dist = gi + gc
            if dist < current:
                mindist[i] = dist
            continue
        room = gi + gc - current - _PRUNE_SLACK * (pn + pc2) * (xn + xc2)
        # branch-free: the test's outcome is data-dependent (a mispredicted branch costs
        # more than writing the row and not counting it)
        todo[n_todo] = i
        n_todo += not (room > 0.0 and room * room > (4.0 + 2.0**-40) * gi * gc)
    return n_todo


@njit(nogil=True, **HELPER)
def _dots_pass(probs, yhat, pnorm2, xnorm2, mindist, pcs, pc, pc2, xc2, todo, n_todo,
               todo_pp, todo_pp_e, four):
    """Pass 2, four rows at a time: ``pp = <p~_i, p~_c>`` from ``<p_i, p~_c>`` summed in
    the probabilities' dtype in any order against ``pcs`` (p~_c rounded to it), minus
    ``p~_c[yhat_i]`` in float64; the Cauchy-Schwarz test ``|g_i|^2 + |g_c|^2 - 2 |pp| |x_i|
    |x_c| > mindist[i]`` (squared: no square root) prunes. Keeps the rest in ``todo`` with
    ``pp`` and its error bound; returns how many.

    The error: within ``(c + 3) 2^-24 sum_j |p_ij p~_cj|`` (+ ``(c + 2) 2^-149`` for
    underflow), and ``sum_j |p_ij p~_cj| <= |p_i| |p~_c|`` with ``|p_i| <= |p~_i| + 1 <=
    (|p~_i|^2 + 3) / 2``: so within ``pp_err (|p~_i|^2 + 5) + pp_slack``, a margin of 2x.
    """
    c = pcs.shape[0]
    gc = pc2 * xc2
    pp_err = (c + 4) * 2.0**-24 * np.sqrt(pc2)
    pp_slack = (c + 2) * 2.0**-148
    kept = 0
    last = n_todo - 1
    for t in range(0, n_todo, 4):
        four[0], four[1], four[2], four[3] = _dots4(
            probs, todo[t], todo[t + 1 if t + 1 < last else last],
            todo[t + 2 if t + 2 < last else last], todo[t + 3 if t + 3 < last else last], pcs)
        for h in range(min(4, n_todo - t)):
            i = todo[t + h]
            pn = pnorm2[i]
            xn = xnorm2[i]
            pp = np.float64(four[h]) - pc[yhat[i]]
            pp_e = pp_err * (pn + 5.0) + pp_slack
            room = pn * xn + gc - mindist[i] - _PRUNE_SLACK * (pn + pc2) * (xn + xc2)
            ppa = abs(pp) + pp_e
            todo[kept] = i  # branch-free, as in _norms_pass
            todo_pp[kept] = pp
            todo_pp_e[kept] = pp_e
            kept += not (room > 0.0 and room * room > (4.0 + 2.0**-40) * ppa * ppa * xn * xc2)
    return kept


@njit(nogil=True, **HELPER)
def _filter_pass(X, pnorm2, xnorm2, mindist, x_c, pc2, xc2, rel, slack, todo, n_todo,
                 todo_pp, todo_pp_e, four, first, last, dense, dots):
    """Pass 3: ``<x_i, x_c>`` summed in the pool's dtype (vectorised) bounds each row's
    distance from below (``_cleared``); keeps in ``todo`` the rows whose bound does not
    clear their current distance; returns how many.

    The rows in ``todo`` lie in the piece [first, last). When ``dense`` is not None and
    they are more than ``dense`` of it (the earlier tests pruned little: binary
    classifiers, whose ``p~`` all lie on one line), every row's dot is computed in one
    sequential sweep (``_dense_dots`` into ``dots``); else only theirs, four at a time,
    gathered with prefetches. Either way a dot is within ``rel |x_i| |x_c| + slack`` of
    the exact one and only the rows that bound clears are dropped: which rows reach the
    exact pass may differ by the dots' rounding, every distance is the same."""
    if dense is not None:  # None: pruned before compilation (see ``add_center``)
        if n_todo > dense * (last - first):
            _dense_dots(X, first, last, x_c, dots)
            kept = 0
            for t in range(n_todo):
                i = todo[t]
                pp = todo_pp[t]
                pp_e = todo_pp_e[t]
                todo[kept] = i  # branch-free, as in _norms_pass
                kept += not _cleared(np.float64(dots[i - first]), pnorm2[i], xnorm2[i], pp,
                                     pp_e, mindist[i], pc2, xc2, rel, slack)
            return kept
    for t in range(min(n_todo, _PREFETCH_AHEAD)):
        prefetch(X, todo[t])
    kept = 0
    last = n_todo - 1
    for t in range(0, n_todo, 4):
        for h in range(4):
            if t + h + _PREFETCH_AHEAD < n_todo:
                prefetch(X, todo[t + h + _PREFETCH_AHEAD])
        four[0], four[1], four[2], four[3] = _dots4(
            X, todo[t], todo[t + 1 if t + 1 < last else last],
            todo[t + 2 if t + 2 < last else last], todo[t + 3 if t + 3 < last else last], x_c)
        for h in range(min(4, n_todo - t)):
            i = todo[t + h]
            pp = todo_pp[t + h]
            pp_e = todo_pp_e[t + h]
            todo[kept] = i  # branch-free, as in _norms_pass
            kept += not _cleared(np.float64(four[h]), pnorm2[i], xnorm2[i], pp, pp_e,
                                 mindist[i], pc2, xc2, rel, slack)
    return kept


@njit(nogil=True, **HELPER)
def _exact_pass(X, probs, yhat, pnorm2, mindist, xc, pc, xc2, todo, n_todo, sums):
    """Pass 4, over the rows left: the exact distance (the formula of ``add_center``, in
    float64: the O(d) sums ``|x_i - x_c|^2`` and ``<x_i - x_c, x_c>`` by ``lane_sums``, the
    O(C) sums in class order); rows prefetched ahead. ``sums``: (2,) float64 scratch."""
    c = probs.shape[1]
    for t in range(min(n_todo, _PREFETCH_AHEAD)):
        prefetch(X, todo[t])
    for t in range(n_todo):
        if t + _PREFETCH_AHEAD < n_todo:
            prefetch(X, todo[t + _PREFETCH_AHEAD])
        i = todo[t]
        lane_sums(X, i, xc, sums)
        # the O(C) part, in class order: |p~_i - p~_c|^2 and <p~_i, p~_i - p~_c>
        yi = yhat[i]
        dp2 = 0.0
        pdp = 0.0
        for j in range(c):
            v = np.float64(probs[i, j])
            if j == yi:
                v -= 1.0
            e = v - pc[j]
            dp2 += e * e
            pdp += v * e
        dist = pnorm2[i] * sums[0] + dp2 * xc2 + 2.0 * pdp * sums[1]
        if dist < 0.0:
            dist = 0.0
        if dist < mindist[i]:
            mindist[i] = dist


@njit(inline="always")
def _add_center_rows(X, probs, yhat, pnorm2, xnorm2, center, mindist, start, stop, rel, slack,
                     dense, pc, pcs, xc, todo, todo_pp, todo_pp_e, four, sums, dots):
    """``add_center``'s pass over rows [start, stop), in pieces of ``_PIECE`` rows through
    the four passes; ``mindist[center]`` is already 0. The other arguments are scratch:
    ``pc`` (C,) float64, ``pcs`` (C,) in the probabilities' dtype, ``xc`` (d,) float64,
    ``todo`` (``_PIECE``,) int64, ``todo_pp`` and ``todo_pp_e`` (``_PIECE``,) float64,
    ``four`` (4,) and ``sums`` (2,) float64, ``dots`` (``_PIECE``,) in the pool's dtype;
    ``dense``: ``_filter_pass``'s."""
    c = probs.shape[1]
    yc = yhat[center]
    pc2 = pnorm2[center]
    xc2 = xnorm2[center]
    for j in range(c):
        pc[j] = np.float64(probs[center, j])
        pcs[j] = probs[center, j]
    pc[yc] -= 1.0
    pcs[yc] -= 1.0
    for j in range(X.shape[1]):
        xc[j] = np.float64(X[center, j])
    for first in range(start, stop, _PIECE):
        last = min(stop, first + _PIECE)
        n_todo = _norms_pass(first, last, mindist, pnorm2, xnorm2, pc2, xc2, todo)
        n_todo = _dots_pass(probs, yhat, pnorm2, xnorm2, mindist, pcs, pc, pc2, xc2, todo,
                            n_todo, todo_pp, todo_pp_e, four)
        n_todo = _filter_pass(X, pnorm2, xnorm2, mindist, X[center], pc2, xc2, rel, slack,
                              todo, n_todo, todo_pp, todo_pp_e, four, first, last, dense, dots)
        _exact_pass(X, probs, yhat, pnorm2, mindist, xc, pc, xc2, todo, n_todo, sums)


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _add_center_tasks(X, probs, yhat, pnorm2, xnorm2, center, mindist, rows_per_task, rel,
                      slack, dense, pc, pcs, xc, todo, todo_pp, todo_pp_e, four, sums, dots, lo,
                      hi):
    """``add_center`` for rows [lo * rows_per_task, hi * rows_per_task) (``rows_per_task`` a
    multiple of ``_PIECE``); ``mindist[center]`` is already 0; ``pc`` ... ``dots``: the
    thread's ``_pass_scratch``. Returns 0."""
    _add_center_rows(X, probs, yhat, pnorm2, xnorm2, center, mindist, lo * rows_per_task,
                     min(X.shape[0], hi * rows_per_task), rel, slack, dense, pc, pcs, xc, todo,
                     todo_pp, todo_pp_e, four, sums, dots)
    return 0


def _pass_scratch(X, probs):
    """``run_tasks``' scratch of ``_add_center_rows`` (``pc``, ``pcs``, ``xc``, ``todo``,
    ``todo_pp``, ``todo_pp_e``, ``four``, ``sums``, ``dots``), made per thread by the
    drivers (``np.empty`` in a kernel costs compile time in a fresh process)."""
    c, d = probs.shape[1], X.shape[1]

    def make():
        return (np.empty(c), np.empty(c, probs.dtype), np.empty(d), np.empty(_PIECE, np.int64),
                np.empty(_PIECE), np.empty(_PIECE), np.empty(4), np.empty(2),
                np.empty(_PIECE, X.dtype))
    return ("badge", c, d, probs.dtype.str, X.dtype.str), make


def add_center(X, probs, yhat, pnorm2, xnorm2, center, mindist, blocks_per_task, dense=None):
    """Lower ``mindist`` with the gradient distance to row ``center``.

    For each row i with ``mindist[i] > 0`` (candidates not yet at distance 0):

    ``||g_i - g_c||^2 = |p~_i|^2 |dx|^2 + |dp|^2 |x_c|^2 + 2 <p~_i, dp> <dx, x_c>``

    with ``dx = x_i - x_c`` and ``dp = p~_i - p~_c`` (expand
    ``g_i - g_c = p~_i (x) dx + dp (x) x_c``). Unlike ``|g_i|^2 + |g_c|^2 - 2 <.,.><.,.>``
    this has no cancellation at duplicates: identical rows get exactly 0. A zero gradient
    (one-hot p or zero x) on either side gives ``|g_i|^2 + |g_c|^2`` directly. Tiny negative
    values from rounding are clamped at 0.

    Pruning, in two steps, each skipping only rows whose minimum cannot change (their
    exact distance is above ``mindist[i]``, with margins for every rounding):

    1. with ``pp = <p~_i, p~_c>`` (O(C)) and Cauchy-Schwarz on ``<x_i, x_c>``,
       ``||g_i - g_c||^2 >= |g_i|^2 + |g_c|^2 - 2 |pp| |x_i| |x_c|``;
    2. for the rows left, ``||g_i - g_c||^2 = |g_i|^2 + |g_c|^2 - 2 pp <x_i, x_c>`` with
       ``<x_i, x_c>`` summed in the pool's dtype in any order (vectorised: one multiply-add
       per coordinate against the exact pass's four float64 operations) and bounded
       (``_math.bounds32``, ``_cleared``).

    The exact float64 pass above runs only on the rows left after both.

    Work is split into tasks of ``blocks_per_task`` sampling blocks, or of fewer rows (a
    multiple of ``_PIECE``) when the pool has fewer than 16 such tasks; each row's result is
    independent of the split and of the thread count.

    ``dense``: ``_filter_pass``'s share above which a piece's dots are swept in order, or
    None (always gathered): then that code is not compiled, which keeps a cold process's
    first BADGE call ~0.45 s shorter (its picks go step by step through this function;
    ``picks``, the gang of warm processes, passes ``DENSE_SHARE``).
    """
    n = X.shape[0]
    rows_per_task = min(blocks_per_task * SAMPLING_BLOCK,
                        max(1, -(-n // (16 * _PIECE))) * _PIECE)
    mindist[center] = 0.0
    rel, slack = bounds32(X.shape[1])
    run_tasks(_add_center_tasks, -(-n // rows_per_task), X, probs, yhat, pnorm2, xnorm2,
              center, mindist, rows_per_task, rel, slack, dense,
              scratch=_pass_scratch(X, probs))


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


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _picks_tasks(X, probs, yhat, pnorm2, xnorm2, status, mindist, block_sums, us, row,
                 n_unlabeled, t0, rel, slack, dense, indices, scores, probability, shared,
                 sync, n_threads, pc, pcs, xc, todo, todo_pp, todo_pp_e, four, sums, dots, lo,
                 hi):
    """``picks`` as thread ``lo`` of ``n_threads``, all running at once
    (``_parallel.run_gang``). Thread ``tid`` owns the pieces of rows
    [P tid / T, P (tid + 1) / T) (P pieces of ``_PIECE`` rows) for ``add_center``'s pass
    and the sampling blocks [B tid / T, B (tid + 1) / T) for their sums. Per pick: every
    thread lowers its rows' ``mindist`` to the last pick (``_add_center_rows``: each row's
    result does not depend on the split), a barrier, its blocks' sums (``_block_sums_tasks``,
    each left to right), a barrier; thread 0 draws the next pick as the driver would
    (``sample_row`` with ``us[t - t0]``, else the uniform fallback), records it, marks it
    picked (status, ``mindist = 0``) and shares it; a barrier. ``dense``:
    ``_filter_pass``'s (``DENSE_SHARE``). Returns thread 0's count of uniform picks (0 in
    the others)."""
    tid = lo
    n = X.shape[0]
    n_pieces = (n + _PIECE - 1) // _PIECE
    start = n_pieces * tid // n_threads * _PIECE
    stop = min(n, n_pieces * (tid + 1) // n_threads * _PIECE)
    n_blocks = block_sums.shape[0]
    b0 = n_blocks * tid // n_threads
    b1 = n_blocks * (tid + 1) // n_threads
    n_uniform = 0
    generation = 0
    for t in range(t0, t0 + us.shape[0]):
        _add_center_rows(X, probs, yhat, pnorm2, xnorm2, row, mindist, start, stop, rel,
                         slack, dense, pc, pcs, xc, todo, todo_pp, todo_pp_e, four, sums, dots)
        generation += 1
        barrier(sync, n_threads, generation)
        _block_sums_tasks(mindist, block_sums, b0, b1)
        generation += 1
        barrier(sync, n_threads, generation)
        if tid == 0:
            u = us[t - t0]
            row = sample_row(mindist, block_sums, u)
            if row >= 0:
                total = 0.0
                for b in range(n_blocks):
                    total += block_sums[b]
                score = mindist[row]
                prob = score / total
            else:
                remaining = n_unlabeled - t
                rank = int(u * remaining)
                row = nth_candidate(status, rank if rank < remaining - 1 else remaining - 1)
                score = 0.0
                prob = 1.0 / remaining
                n_uniform += 1
            indices[t] = row
            scores[t] = score
            probability[t] = prob
            status[row] = PICKED
            mindist[row] = 0.0
            shared[0] = row
        generation += 1
        barrier(sync, n_threads, generation)
        row = shared[0]
    return n_uniform


#: Coordinate visits (rows x (d + C)) per call of ``_picks_tasks``: a long job is several
#: calls, so that an interrupt (Ctrl-C) is seen between them.
PICKS_WORK = 1 << 27


def picks(X, probs, yhat, pnorm2, xnorm2, status, mindist, block_sums, us, row, n_unlabeled,
          t0, indices, scores, probability):
    """Picks ``t0, t0 + 1, ..., t0 + len(us) - 1`` of BADGE's k-means++ after pick ``row``
    (pick ``t0 - 1``, already recorded and marked): per pick, ``add_center`` of the last
    pick, ``block_sums`` and the draw with ``u = us[t - t0]`` (``sample_row``, else the
    ``u``-th remaining candidate uniformly) into ``indices``, ``scores`` (its ``mindist``
    when drawn, 0 if uniform) and ``probability`` at ``t``; each pick is marked
    (``status``, ``mindist = 0``). The same picks, bit for bit, as those steps called one by
    one from Python; the threads meet at barriers instead of a Python round trip per pick
    (~0.1 ms on 2 threads: on Rotten Tomatoes' 13 MB pool, in the caches, 0.29-0.38 ms per
    pass on two threads against 0.48 on one). Pieces whose rows the first tests mostly
    keep get their filter's dots in one sequential sweep (``DENSE_SHARE``, ``_filter_pass``).
    Returns the number of uniform picks."""
    n = X.shape[0]
    threads = max(1, min(numba.get_num_threads(), -(-n // _PIECE)))
    rel, slack = bounds32(X.shape[1])
    step = max(1, PICKS_WORK // max(1, n * (X.shape[1] + probs.shape[1])))
    scratch = _pass_scratch(X, probs)
    n_uniform = 0
    for first in range(0, us.shape[0], step):
        last = min(us.shape[0], first + step)
        n_uniform += run_gang(_picks_tasks, threads, X, probs, yhat, pnorm2, xnorm2, status,
                              mindist, block_sums, us[first:last], row, n_unlabeled,
                              t0 + first, rel, slack, DENSE_SHARE, indices, scores,
                              probability,
                              np.zeros(1, np.int64), np.zeros(8, np.int64), threads,
                              scratch=scratch)
        row = int(indices[t0 + last - 1])
    return n_uniform
