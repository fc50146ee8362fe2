"""Kernel for exact greedy k-center by full scans (``fastal.diversity.kcenter``), for data
on which neither the lazy bounds nor the triangle-inequality groups prune.

Each pick costs one sequential pass over X: every row's distance to the newest centre,
the min-update of its distance ``D`` to the centre set and a running argmax, fused. Rows
are read in storage order (the groups read them in group order, a cache miss per row when
nothing is skipped). Each distance is a float64 sum in ``lane_sums``' order
(``_intrinsics.lane_sq``, explicit vectors: 3-5x faster per row than the coordinate-order
chains it replaced at d >= 50).

``mindist`` (N,) float64 holds ``D`` exactly, in score units (l2: the distance; cosine:
``||a - b||^2 / 2``), ``-1`` for centres. Distances are accumulated in float64 from
``x - c`` with the arithmetic of ``fastal._kernels.kcenter`` (``_sq_rows``), so they agree
bit for bit with the other paths' exact distances.
"""

import numba
import numpy as np
from numba import njit
from numba.extending import overload

from ._intrinsics import as_float32, half_bits, prefetch
from ._math import FAST32, HELPER, KERNEL, bounds32
from ._parallel import barrier, run_gang, run_tasks
from .kcenter import (_FASTMATH, _nearest_sq, _sq_4rows, _sq_rows, _to_score_units,
                      metric_flag)

#: Rows per task (a Python constant passed in: tests shrink it).
ROWS_PER_TASK = 8192


@njit(nogil=True, **HELPER)
def _lowered(mindist, weights, i, m, new, top, top_row, largest):
    """Row ``i``'s ``D`` (``m``, not a centre) lowered to ``new`` if that is smaller; returns
    the running (largest score ``w_i D_i``, its row, largest ``D``) with row ``i`` taken in
    (strict: the first, lowest row of equal scores stays)."""
    m = new if new < m else m
    mindist[i] = m  # selects and a store, no branches: lowered rows are not predictable
    s = m * weights[i] if weights is not None else m
    top_row = i if s > top else top_row
    top = s if s > top else top
    largest = m if m > largest else largest
    return top, top_row, largest


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _add_center_tasks(X, inv_norm, cosine, C, c_inv, c_rows, weights, mindist, best,
                      rows_per_task, lo, hi):
    """Lower ``mindist`` of rows [lo * rows_per_task, hi * rows_per_task) to the centres
    ``C[c_rows]`` (scaled by ``c_inv`` for cosine); task ``t`` writes to ``best[t]`` the
    largest score ``w_i D_i`` (``D_i`` unweighted when ``weights`` is None) of its rows that
    are not centres, that row (the lowest of equal ones) and their largest ``D_i`` (0 for
    none).

    The labeled set's pass (the picks run in ``_picks_tasks``, the same one-centre sums
    four rows at a time). One centre: one sum per row. Several: four centres per step."""
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
            top, top_row, cover = _lowered(mindist, weights, i, m, _to_score_units(sq, cosine),
                                           top, top_row, cover)
        best[task, 0] = top
        best[task, 1] = top_row
        best[task, 2] = cover
    return 0


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _picks_tasks(X, inv_norm, cosine, weights, mindist, k, row, score, indices, scores, cover,
                 shared, sync, n_threads, after, lo, hi):
    """``picks`` as thread ``lo`` of ``n_threads``, all running at once
    (``_parallel.run_gang``): thread ``tid`` owns rows [N tid / T, N (tid + 1) / T). Each
    pick is ``_add_center_tasks``'s one-centre pass over the thread's rows, four rows' sums
    at a time (``_sq_4rows``, the same bits as one row at a time; ``_lowered``'s selects
    instead of branches were 1.7-1.8x faster at d = 16-784 with the coordinate-order sums;
    a last group of fewer than four rows sums a row again and lowers only its own rows);
    the threads' (largest score, its row, largest ``D``) meet in ``shared`` (two slots,
    alternating per pick, so one barrier per pick suffices) and every thread reduces them
    alike, threads in row order and the first of equal scores kept: the lowest row.
    ``after`` gets the next pick's (score, row)."""
    tid = lo
    n = X.shape[0]
    start = n * tid // n_threads
    stop = n * (tid + 1) // n_threads
    for t in range(k):
        if tid == 0:
            indices[t] = row
            scores[t] = score
        if start <= row < stop:
            mindist[row] = -1.0
        c_scale = inv_norm[row] if cosine is not None else 1.0
        top = -np.inf
        top_row = -1
        largest = 0.0
        last = stop - 1  # past it (the last group): rows summed again, not lowered
        for i in range(start, stop, 4):  # four rows at once, each its own lane sum
            sums = _sq_4rows(X, inv_norm, cosine, i, i + 1 if i + 1 < last else last,
                             i + 2 if i + 2 < last else last,
                             i + 3 if i + 3 < last else last, X, row, c_scale)
            for q in range(4 if i + 4 <= stop else stop - i):
                m = mindist[i + q]
                if m >= 0.0:  # not a centre
                    top, top_row, largest = _lowered(mindist, weights, i + q, m,
                                                     _to_score_units(sums[q], cosine), top,
                                                     top_row, largest)
        slot = t % 2
        shared[slot, tid, 0] = top
        shared[slot, tid, 1] = top_row
        shared[slot, tid, 2] = largest
        barrier(sync, n_threads, t + 1)
        score = shared[slot, 0, 0]
        row = np.int64(shared[slot, 0, 1])
        largest = shared[slot, 0, 2]
        for u in range(1, n_threads):
            if shared[slot, u, 0] > score:
                score = shared[slot, u, 0]
                row = np.int64(shared[slot, u, 1])
            if shared[slot, u, 2] > largest:
                largest = shared[slot, u, 2]
        if tid == 0:
            cover[t] = largest
    if tid == 0:
        after[0] = score
        after[1] = row
    return 0


#: Coordinate visits per call of ``_picks_tasks`` (~0.05-0.1 s on 2 threads): a long job is
#: several calls, so that an interrupt (Ctrl-C) is seen between them.
PICKS_WORK = 1 << 27


def picks(X, inv_norm, cosine, row, score, mindist, k, weights=None):
    """The next ``k`` picks of the greedy from pool row ``row`` (with score ``score``):
    ``(indices, scores, cover)``: ``indices[t]`` becomes a centre (``mindist = -1``), every
    row's ``mindist`` is lowered to it (``_add_center_tasks``'s one-centre pass, the same
    bits), ``scores[t]`` is its score when picked and ``cover[t]`` the largest ``D`` after
    it; the next pick is the largest ``weights[i] * D_i`` (``D_i`` without weights), the
    lowest row of equal ones. One kernel call per ``PICKS_WORK`` coordinate visits: the
    threads meet at a barrier per pick instead of a Python round trip per pick (~0.2 ms on
    2 threads: k = 1,000 picks on a 40,000 x 16 pool took 0.48-0.55 s that way, 0.31 s
    in one call, 0.21 s with four rows' sums at a time)."""
    n, d = X.shape
    threads = max(1, min(numba.get_num_threads(), n // MIN_ROWS_PER_THREAD))
    indices = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    cover = np.empty(k, dtype=np.float64)
    shared = np.empty((2, threads, 3))
    after = np.array([score, row], dtype=np.float64)
    step = max(1, PICKS_WORK // max(1, n * d))
    for t in range(0, k, step):
        stop = min(k, t + step)
        run_gang(_picks_tasks, threads, X, inv_norm, metric_flag(cosine), weights, mindist,
                 stop - t, int(after[1]), float(after[0]), indices[t:stop], scores[t:stop],
                 cover[t:stop], shared, np.zeros(8, np.int64), threads, after)
    return indices, scores, cover


def lower_to(X, inv_norm, cosine, C, c_inv, c_rows, mindist, weights=None):
    """Lower every row's ``mindist`` to the points ``C[c_rows]`` (labeled points, which need
    not be pool rows; nothing becomes a centre; ``c_inv``: their inverse norms for cosine)
    and return ``(largest score, its row, largest D)`` over the rows that are not centres:
    the score is ``weights[i] * D_i`` (``D_i`` without weights), the row the lowest of equal
    ones; ``(-inf, -1, 0)`` when every row is a centre."""
    n = X.shape[0]
    rows_per_task = _rows_per_task(n)
    best = np.empty((-(-n // rows_per_task), 3), dtype=np.float64)
    run_tasks(_add_center_tasks, best.shape[0], X, inv_norm, metric_flag(cosine), C, c_inv,
              np.ascontiguousarray(c_rows, np.int64), weights, mindist, best, rows_per_task)
    task = int(np.argmax(best[:, 0]))  # the first task of the largest: the lowest row
    return float(best[task, 0]), int(best[task, 1]), float(best[:, 2].max())


def _rows_per_task(n_rows):
    """Tasks of at most ``ROWS_PER_TASK`` rows and at least eight tasks, so that small pools
    use every thread evenly (5 tasks of 8,192 rows on 2 threads ran 3 against 2)."""
    return max(1, min(ROWS_PER_TASK, -(-n_rows // 8)))


# --------------------------------------------------------------------------- float32 scans
#
# The same greedy rule with the pass in float32 (float32 l2 pools): vectorised sums in any
# order, each row's squared distance to the centre set kept as an interval [lower, upper]
# of float32 bounds, and the exact float64 distance recomputed only for the rows whose
# interval can still reach the top.
#
# The float32 passes bound their sums by ``_math.bounds32`` (any order). (A BLAS ``X @ c``
# and ``|x|^2 + |c|^2 - 2 x.c`` was measured no faster: its bounds need the norms and a
# square root per row, and its error is relative to the norms, not to the distance.)


@njit(inline="always", fastmath=FAST32)
def _sq32(x, P, r):
    """||x - P[r]||^2 in float32, summed in any order (callers bound or only
    compare it)."""
    acc = np.float32(0.0)
    for j in range(x.shape[0]):
        t = x[j] - P[r, j]
        acc += t * t
    return acc


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _pick_bounds32(X, i, picked, first, last, rel, slack, low):
    """float32 pass (float32 l2 pools): ``low[s - first]``, a lower bound of the squared
    distance of row ``i`` to pick ``s`` for ``first <= s < last``; returns the smallest
    upper bound. Vectorised sums in any order, bounded as in
    ``bounds32`` (``rel``, ``slack``), whose margin also
    covers the float64 sum the exact distances are (in any order). A function of its own,
    not inlined: its fast-math flags must not reach the caller's float64 sums."""
    least = np.inf
    for s in range(first, last):
        v = np.float64(_sq32(X[i], X, picked[s]))
        low[s - first] = v * (1.0 - rel) - slack
        least = min(least, v * (1.0 + rel) + slack)
    return least


@njit(inline="always", fastmath=_FASTMATH)
def _nearest_pick32(X, i, scale, inv_norm, cosine, picked, first, last, rel, slack, low, P,
                    r_P, y, n_img):
    """``_nearest_sq`` of row ``i`` (``scale``: its inverse norm for cosine, else 1) to the
    picks ``picked[first:last]``, exactly the same value: a float32 pass first bounds every
    pick's distance, and only the picks whose lower bound reaches the smallest upper bound
    get their float64 sum (usually one or two): any other pick is provably farther.

    ``P`` None (float32 l2 pools): the pass reads the rows themselves. Otherwise ``P[s]``
    is pick ``s``'s float32 image with ``r_P[s]`` its radius, made here from pick
    ``n_img[0]`` on (``fill_images``), and ``y`` scratch for row ``i``'s
    (``_image_bounds32``); past the picks ``P`` holds (``PICK_IMAGE_BYTES``), every pick's
    float64 sum (``_nearest_sq``). (Callers choose the path by None types, which Numba
    resolves before typing: a float32 l2 call compiles no image code, and no
    ``_nearest_sq``.)"""
    # int64 indices whatever the caller's (int32 heap rows, a literal 0): one compiled
    # bounds function for every caller (0.2-0.3 s of compilation each)
    if last - first == 1:  # one pick (the newest, most often): its sum alone, in the loop
        low[0] = 0.0      # below (one float64 sum inlined per caller, not two)
        least = np.inf
    elif P is None:
        least = _pick_bounds32(X, np.int64(i), picked, np.int64(first), np.int64(last), rel,
                               slack, low)
    else:
        if last > P.shape[0]:
            return _nearest_sq(X, np.int64(i), scale, X, inv_norm, cosine,
                               picked[first:last])
        fill_images(X, inv_norm, cosine, picked, last, P, r_P, n_img)
        r_y = image_of(X, np.int64(i), scale, y)
        least = _image_bounds32(y, r_y, P, r_P, np.int64(first), np.int64(last), rel, slack,
                                low)
    best = np.inf
    for s in range(first, last):
        if low[s - first] <= least:
            p = picked[s]
            sq = _sq_rows(X, i, scale, X, p, inv_norm[p] if cosine is not None else 1.0)
            if sq < best:
                best = sq
    return best


@njit(nogil=True, fastmath=_FASTMATH, **HELPER)
def image_of(X, i, scale, out):
    """Row ``i``'s point (``X[i] * scale`` in float64, as ``_sq_rows`` forms it) rounded to
    float32 into ``out``; returns a float64 bound of the rounding's norm (the difference is
    exact in float64; its sum of squares inflated for its own rounding, and 2^-500 for
    squares that underflow)."""
    acc = 0.0
    for j in range(X.shape[1]):
        v = X[i, j] * scale
        f = np.float32(v)
        out[j] = f
        e = v - np.float64(f)
        acc += e * e
    return np.sqrt(acc) * (1.0 + (X.shape[1] + 8) * 2.0**-52) + 2.0**-500


@njit(inline="always")
def fill_images(X, inv_norm, cosine, picked, n_picked, P, r_P, n_img):
    """The float32 images and radii (``image_of``) of picks ``n_img[0]`` to ``n_picked``
    into ``P`` and ``r_P``."""
    while n_img[0] < n_picked:
        q = picked[n_img[0]]
        r_P[n_img[0]] = image_of(X, q, inv_norm[q] if cosine is not None else 1.0,
                                 P[n_img[0]])
        n_img[0] += 1


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _image_bounds32(y, r_y, P, r_P, first, last, rel, slack, low):
    """``_pick_bounds32`` through images (float64 and cosine pools): ``low[s - first]`` a
    lower bound of the float64 squared distance of the row (image ``y``, radius ``r_y``) to
    pick ``s`` (image ``P[s]``, radius ``r_P[s]``), for ``first <= s < last``; returns the
    smallest upper bound. The float32 sum bounds the images' distance (``rel``, ``slack``);
    the points' distance is within ``r_y + r_P[s]`` of it (the triangle inequality), and
    the float64 sum (any order) within ``(d + 16) 2^-52`` of its square (margins on
    each float64 step besides)."""
    m = (y.shape[0] + 16) * 2.0**-52
    least = np.inf
    for s in range(first, last):
        v = np.float64(_sq32(y, P, s))
        w = r_y + r_P[s]
        a = np.sqrt(max(v * (1.0 - rel) - slack, 0.0)) * (1.0 - 2.0**-50) - w
        b = np.sqrt(v * (1.0 + rel) + slack) * (1.0 + 2.0**-50) + w
        low[s - first] = a * a * (1.0 - m) if a > 0.0 else 0.0
        least = min(least, b * b * (1.0 + m))
    return least


def factors32(d):
    """``(down, up, slack)`` float32: a row's bounds from its float32 sum ``s`` in float32
    arithmetic, ``lower = max(s * down - slack, 0) <= S <= s * up + slack = upper``.

    ``bounds32(d)`` gives ``S >= s (1 - rel) - slack0`` and ``S <= s (1 + rel) + slack0``;
    each float32 product and sum below rounds by at most 2^-24 of itself, so ``down`` is
    taken below ``(1 - rel)(1 - 2^-21)``, ``up`` above ``(1 + rel)(1 + 2^-21)`` and
    ``slack`` above ``slack0 (1 + 2^-20)`` (each constant rounded to float32 by at most
    2^-24 the safe way). A product that underflows (``s`` below ~2^-126) is below
    ``slack``: its lower bound is 0, and ``slack``'s own margin covers the product's
    absolute rounding of 2^-150 in the upper one. An upper bound that overflows is inf."""
    rel, slack = bounds32(d)
    down = np.float32((1.0 - rel) * (1.0 - 2.0**-21) * (1.0 - 2.0**-23))
    up = np.float32((1.0 + rel) * (1.0 + 2.0**-21) * (1.0 + 2.0**-23))
    return down, up, np.float32(slack * (1.0 + 2.0**-20) * (1.0 + 2.0**-23))


#: Bytes of the picks' float32 images kept per thread (float64 and cosine pools: the
#: distances to the first picks that fit are bounded in float32 first).
PICK_IMAGE_BYTES = 64 << 20


def pick_images_rows(k, d):
    """Picks whose float32 images are kept (``PICK_IMAGE_BYTES``), at most ``k``."""
    return int(min(k, max(1, PICK_IMAGE_BYTES // (4 * d))))


#: Rows per block of a thread's pass: their float32 sums (16 KiB) stay in L1/L2 between
#: the sums (one row at a time) and the bounds' update (vectorised over the block).
BLOCK32 = 4096
#: Rows per thread at least (fewer threads on smaller pools: a barrier costs more than
#: its share of the pass). Python constants passed in: tests shrink them.
MIN_ROWS_PER_THREAD = 4096
#: Pools larger than this many bytes are read with software prefetches 4 KiB (and at least
#: 8 rows) ahead: 300,000 x 128 passes went 4.8-5.5 -> 3.4 ms on 2 threads (as fast as
#: BLAS's mat-vec), 1M x 32 and 60,000 x 784 about the same; pools that stay in the
#: caches (60,000 x 50) were slower with them (0.19-0.31 -> 0.36-0.40 ms).
PREFETCH_BYTES = 16 << 20
_LOWEST_INT32 = -2**31


@njit(nogil=True, fastmath=_FASTMATH, **HELPER)
def _exact_top(X, inv_norm, cosine, radius, rows, sq, seen, picked, n_picked, rel, slack,
               low, P, r_P, y, n_img, weights):
    """The row of ``rows`` (increasing) with the largest exact distance to the first
    ``n_picked`` picks (the lowest of equal ones) and that distance in score units; (-1,
    -1.0) for no rows. ``sq[r]``: the exact squared distance of ``rows[r]`` to its first
    ``seen[r]`` picks (inf, 0 for none), brought up to ``n_picked`` here. float32 l2 pools
    (``P`` None: no images of the picks): a float32 pass bounds the distance to each pick
    it has not seen (``_nearest_pick32``; ``low``: scratch of ``n_picked`` floats), and
    only the picks that can be the nearest get their float64 sum (a new candidate late in a
    run meets hundreds of picks). Other pools likewise through the picks' float32 images
    (``P``, ``r_P``: made here from pick ``n_img[0]`` on; ``y``: the row's), for as many
    picks as ``P`` holds, then every pick's float64 sum (``_nearest_sq``). ``radius`` is
    unused (the passes' image's).

    Returns ``(row, distance, w_row, score)``: with ``weights``, also the row of the
    largest score ``D w`` (the lowest of equal ones) and that score (float64, as every path
    computes it); without, ``w_row, score`` repeat ``row, distance``."""
    top = -1.0
    top_row = -1
    w_top = -1.0
    w_row = -1
    for r in range(rows.shape[0]):
        i = rows[r]
        best = sq[r]
        if seen[r] < n_picked:
            if P is None:  # float32 l2: no images (nor their kernels compiled)
                near = _nearest_pick32(X, i, 1.0, inv_norm, cosine, picked, seen[r],
                                       n_picked, rel, slack, low, None, None, None, None)
            else:
                near = _nearest_pick32(X, i, inv_norm[i] if cosine is not None else 1.0,
                                       inv_norm, cosine, picked, seen[r], n_picked, rel,
                                       slack, low, P, r_P, y, n_img)
            if near < best:
                best = near
        sq[r] = best
        seen[r] = n_picked
        dist = _to_score_units(best, cosine)
        if dist > top:
            top = dist
            top_row = i
        if weights is not None:
            score = dist * weights[i]
            if score > w_top:
                w_top = score
                w_row = i
    if weights is None:
        return top_row, top, top_row, top
    return top_row, top, w_row, w_top


@njit(inline="always")
def _up32(x):
    """A float32 >= x >= 0 (rounding to nearest moves a float32-normal value by at most
    2^-24 of itself, less than the 2^-22 added first)."""
    return np.float32(max(x, 2.0**-126) * (1.0 + 2.0**-22))


@njit(inline="always")
def _down32(x):
    """A float32 <= x, >= 0: the same margin, and 2^-148 for subnormal results."""
    return np.float32(max(0.0, x * (1.0 - 2.0**-22) - 2.0**-148))


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _row_sums(X, c, start, m, dist, ahead):
    """``dist[r]``: the float32 sum of ``(X[start + r] - c)^2`` for ``r < m``, in any
    order, one row at a time; ``ahead`` > 0: prefetch the row that many rows ahead."""
    n = X.shape[0]
    for r in range(m):
        if ahead and start + r + ahead < n:
            prefetch(X, start + r + ahead)
        acc = np.float32(0.0)
        for j in range(X.shape[1]):
            t = as_float32(X[start + r, j]) - c[j]
            acc += t * t
        dist[r] = acc


def _block_sums(X, c, start, m, dist, ahead):
    """``_row_sums`` for 2-D pools and images; for half images (``HALF_BLOCK`` rows per
    block, ``start`` a multiple of it) the sums of the blocks that hold rows [start, start
    + m) (Numba only: ``_block_sums_impl`` picks by ``X``'s dimensions)."""
    raise NotImplementedError


@overload(_block_sums, jit_options={"fastmath": FAST32, "nogil": True})
def _block_sums_impl(X, c, start, m, dist, ahead):
    """A half image's block holds each column of its rows contiguously: the sums run over
    the block's rows in vectors, four columns per sweep, in ``dist`` (L1), with no
    horizontal sum and no padding of short rows (one thread, 60,000 x 50: 0.25 -> 0.15 ms;
    60,000 x 32: 0.18 -> 0.09-0.11 ms; 60,000 x 128 and 10,000 x 784 about the same).
    ``dist`` holds the blocks' rows: m rounded up to a block (the rows past the pool's end
    sum its zeros); ``ahead`` is for 2-D pools (``scan32`` passes 0 with half images)."""
    if X.ndim == 2:
        return lambda X, c, start, m, dist, ahead: _row_sums(X, c, start, m, dist, ahead)

    def blocks(X, c, start, m, dist, ahead):
        d = X.shape[1]
        first = start // HALF_BLOCK
        for q in range((m + HALF_BLOCK - 1) // HALF_BLOCK):
            b = first + q
            acc = dist[q * HALF_BLOCK:(q + 1) * HALF_BLOCK]
            for r in range(HALF_BLOCK):
                acc[r] = 0.0
            j = 0
            while j + 4 <= d:
                c0 = c[j]
                c1 = c[j + 1]
                c2 = c[j + 2]
                c3 = c[j + 3]
                for r in range(HALF_BLOCK):
                    t0 = as_float32(X[b, j, r]) - c0
                    t1 = as_float32(X[b, j + 1, r]) - c1
                    t2 = as_float32(X[b, j + 2, r]) - c2
                    t3 = as_float32(X[b, j + 3, r]) - c3
                    acc[r] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
                j += 4
            while j < d:
                cj = c[j]
                for r in range(HALF_BLOCK):
                    t = as_float32(X[b, j, r]) - cj
                    acc[r] += t * t
                j += 1

    return blocks


def _center_row(X, center, c):
    """Row ``center`` of a pool, an image or a half image (blocks) as float32 into ``c``
    (Numba only)."""
    raise NotImplementedError


@overload(_center_row, inline="always")
def _center_row_impl(X, center, c):
    if X.ndim == 2:
        def row(X, center, c):
            for j in range(X.shape[1]):
                c[j] = as_float32(X[center, j])
        return row

    def block_row(X, center, c):
        b = center // HALF_BLOCK
        r = center - b * HALF_BLOCK
        for j in range(X.shape[1]):
            c[j] = as_float32(X[b, j, r])
    return block_row


#: Rows per block of a half image (``half_blocks``); the threads' rows start at multiples.
HALF_BLOCK = 128


def half_blocks(n):
    """Blocks of a half image of ``n`` rows: its shape is ``(half_blocks(n), d,
    HALF_BLOCK)``, uint16."""
    return -(-n // HALF_BLOCK)


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _pass32(X, center, down, up, slack, radius, scale2, rel, slack0, m64, lower, upper,
            lower_bits, dist, c, first, last, ahead):
    """Rows [first, last): lower their bounds to row ``center`` (``factors32``); returns
    the largest ``lower_bits`` (``lower`` as int32: the same order for the non-negative
    floats, a centre's -1 below them all; an integer maximum vectorises, a float one with
    a select does not), INT32_MIN for no rows. ``ahead`` > 0: prefetch the row that many
    rows ahead (pools larger than the caches, see ``scan32``).

    ``radius`` (float64, or None for float32 l2 pools): ``X`` is then an image of the
    points (float64 rows rounded, cosine rows normalised): float32, or the bits of IEEE
    halves (uint16, in blocks: ``half_blocks``) of the points times ``s`` (a power of
    two), with ``||x_i / s - p_i|| <= radius[i]``, so the points' distance is within
    ``radius[i] + radius[center]`` of the images' (the triangle inequality): the bounds
    are widened by it, in float64, by ``m64`` relative (the float64 sums of the exact
    distances) and rounded outwards to float32. ``scale2``: ``1 / s^2`` (1 for float32
    images), exact in float64. ``c``: scratch of ``X.shape[1]`` float32 (the centre's
    row); ``dist``: of the rows per step, for half images a multiple of ``HALF_BLOCK``, as
    ``first`` is."""
    _center_row(X, center, c)
    zero = np.float32(0.0)
    # one square root per row: sqrt(s (1 - rel) - slack) >= sqrt(s) sqrt(1 - rel) -
    # sqrt(slack) and sqrt(s (1 + rel) + slack) <= sqrt(s) sqrt(1 + rel) + sqrt(slack);
    # the 2^-50 margins cover the roundings of sqrt(s), the constants and the product
    f_low = np.sqrt(1.0 - rel) * (1.0 - 2.0**-50)
    f_high = np.sqrt(1.0 + rel) * (1.0 + 2.0**-50)
    root_slack = np.sqrt(slack0 * scale2) * (1.0 + 2.0**-50)
    block = dist.shape[0]
    top = np.int32(_LOWEST_INT32)
    for start in range(first, last, block):
        m = min(block, last - start)
        _block_sums(X, c, start, m, dist, ahead)
        low_w = lower[start:start + m]
        up_w = upper[start:start + m]
        bits_w = lower_bits[start:start + m]
        if radius is None:
            for r in range(m):  # min, not "if the new bound is lower": the same, branch-free
                s = dist[r]
                low = max(s * down - slack, zero)
                a = low_w[r]
                low_w[r] = a if a < low else low  # a centre's -1 stays
                high = s * up + slack
                b = up_w[r]
                up_w[r] = b if b < high else high
        else:
            rad_w = radius[start:start + m]
            rc = radius[center] + root_slack
            for r in range(m):
                q = np.sqrt(np.float64(dist[r]) * scale2)
                e = rad_w[r] + rc
                root = q * f_low - e
                low = _down32(root * root * (1.0 - m64)) if root > 0.0 else zero
                root = q * f_high + e
                high = _up32(root * root * (1.0 + m64))
                a = low_w[r]
                low_w[r] = a if a < low else low
                b = up_w[r]
                up_w[r] = b if b < high else high
        for r in range(m):
            b = bits_w[r]
            top = top if top > b else b
    return top


# Weighted scans compare keys g(w) sq, monotone in the score w D for w >= 0 (l2: D = sqrt(sq),
# g(w) = w^2; cosine: D = sq / 2, g(w) = w), from the float32 bounds of sq. A row is a
# candidate when its upper key reaches the largest lower key times _KEY_MARGIN: the key's own
# float64 roundings (a few 2^-53) are far inside that margin, and a row left out has a score
# below the best by a relative 2^-42 at least, more than the float64 score's rounding, so it
# cannot even tie. Weights must keep g(w) sq normal and finite (scan32's caller checks).
_KEY_MARGIN = 1.0 - 2.0**-40


@njit(inline="always")
def _key(w, bound, cosine):
    w = np.float64(w)
    return (w * w if cosine is None else w) * np.float64(bound)


@njit(nogil=True, cache=True, fastmath=FAST32, **KERNEL)
def _scan32_tasks(X, inv_norm, cosine, Y, radius, scale2, half_s, k, first_row, down, up,
                  slack, rel, slack0, m64, lower, upper, lower_bits, upper_bits, weights,
                  indices, scores, cover, shared_i, shared_f, sync, status, n_threads, ahead,
                  dist, c, low, rows_a, sq_a, seen_a, rows_b, sq_b, seen_b, P, r_P, y, n_img,
                  lo, hi):
    """The float32 scans' whole greedy (``scan32``) as thread ``lo`` of ``n_threads``, all
    running at once (``_parallel.run_gang``). Thread ``tid`` owns the rows [N tid /
    n_threads, N (tid + 1) / n_threads) (each end rounded down to a block of the half image,
    if any; the last thread's to N); per pick: its pass (``_pass32``), a barrier, the
    largest lower bound over all threads, its rows whose upper bound reaches it (the
    candidates) and their exact float64 distances to the picks (``_exact_top``, kept for the
    next pick while a row stays a candidate), a barrier, then the best candidate over all
    threads: the largest distance, the lowest row among equal ones (threads in row order).
    Every thread makes the same choices from the same shared values; thread 0 writes the
    outputs. Shared slots alternate between picks (``shared_i`` (2, 4, n_threads): top bits,
    candidate counts, best rows, best weighted rows; ``shared_f`` (2, 3, n_threads): best
    distances, largest lower keys, best scores), so a thread one barrier ahead never
    overwrites what another still reads. Weighted (``weights`` not None; see ``scan32``), a
    row is also a candidate when its upper bound of the key ``g(w) sq`` reaches the largest
    lower bound of it (less a 2^-40 margin), the pick is the candidate of the largest exact
    score ``D w`` and the covering radius the largest exact ``D``. ``status``: [pick at
    which the candidates outgrew ``rows_a`` (0: none), their number then, candidates over
    all picks]. The passes read ``Y``: ``X`` itself (float32 l2 pools, ``radius`` None) or
    its image (float32 or halves, with ``radius`` and ``scale2``: see ``_pass32``); exact
    distances come from ``X`` (scaled by ``inv_norm`` for cosine). ``half_s`` (None, or the
    half image's scale ``s``): each thread first makes its rows of the half image ``Y`` and
    their ``radius`` (``_half_rows``), then waits for the others. ``rel`` and ``slack0``
    (``bounds32``) bound every float32 sum: the passes' and the picks' images' (the larger
    of the two dimensions)."""
    tid = lo
    n = X.shape[0]
    if n_img is not None:
        n_img[0] = 0  # the picks' images (float64, cosine pools) are this thread's, made anew
    align = 1 if half_s is None else HALF_BLOCK  # a half image's threads own whole blocks
    first = n * tid // n_threads // align * align
    last = n if tid == n_threads - 1 else n * (tid + 1) // n_threads // align * align
    cap = rows_a.shape[0]
    n_cached = 0
    row = first_row
    score = np.inf
    generation = 0
    if half_s is not None:
        _half_rows(X, inv_norm, cosine, half_s, Y, radius, first, last)
        generation += 1
        barrier(sync, n_threads, generation)
    for t in range(k):
        par = t & 1
        if tid == 0:
            indices[t] = row
            scores[t] = score
        if first <= row < last:
            lower[row] = -1.0
            upper[row] = -1.0
        shared_i[par, 0, tid] = _pass32(Y, row, down, up, slack, radius, scale2, rel,
                                        slack0, m64, lower, upper, lower_bits, dist, c,
                                        first, last, ahead)
        if weights is not None:  # this thread's largest lower bound of the key g(w) sq
            w_low = -1.0  # (a centre's bound is -1: its key is <= 0, never above a row's)
            for i in range(first, last):
                w_low = max(w_low, _key(weights[i], lower[i], cosine))
            shared_f[par, 1, tid] = w_low
        generation += 1
        barrier(sync, n_threads, generation)
        top = shared_i[par, 0, 0]
        for q in range(1, n_threads):
            top = max(top, shared_i[par, 0, q])
        if top < 0:  # every row is a centre
            if tid == 0:
                cover[t] = 0.0
            continue
        w_cut = 0.0
        if weights is not None:
            w_low = shared_f[par, 1, 0]
            for q in range(1, n_threads):
                w_low = max(w_low, shared_f[par, 1, q])
            w_cut = w_low * _KEY_MARGIN
        m = 0
        for i in range(first, last):  # upper >= the top lower bound, compared as int32
            cand = upper_bits[i] >= top
            if weights is not None:  # (not a centre: a key of -0.0 would pass a cut of 0)
                cand = cand | ((upper_bits[i] >= 0)
                               & (_key(weights[i], upper[i], cosine) >= w_cut))
            if cand:
                if m < cap:
                    rows_b[m] = i
                m += 1
        shared_i[par, 1, tid] = m
        best_row = -1
        best = -1.0
        w_best_row = -1
        w_best = -1.0
        if m <= cap:
            p = 0  # the exact state of rows that were candidates at the last pick
            for r in range(m):
                i = rows_b[r]
                while p < n_cached and rows_a[p] < i:
                    p += 1
                if p < n_cached and rows_a[p] == i:
                    sq_b[r] = sq_a[p]
                    seen_b[r] = seen_a[p]
                else:
                    sq_b[r] = np.inf
                    seen_b[r] = 0
            best_row, best, w_best_row, w_best = _exact_top(
                X, inv_norm, cosine, radius, rows_b[:m], sq_b[:m], seen_b[:m], indices, t + 1,
                rel, slack0, low, P, r_P, y, n_img, weights)
            rows_a, rows_b = rows_b, rows_a
            sq_a, sq_b = sq_b, sq_a
            seen_a, seen_b = seen_b, seen_a
            n_cached = m
        shared_i[par, 2, tid] = best_row
        shared_f[par, 0, tid] = best
        shared_i[par, 3, tid] = w_best_row
        shared_f[par, 2, tid] = w_best
        generation += 1
        barrier(sync, n_threads, generation)
        total = 0
        for q in range(n_threads):
            total += shared_i[par, 1, q]
        if total > cap:
            if tid == 0:
                status[0] = t + 1
                status[1] = total
            return 0
        score = -1.0
        for q in range(n_threads):  # the first thread of the largest: the lowest row
            if shared_i[par, 2, q] >= 0 and shared_f[par, 0, q] > score:
                score = shared_f[par, 0, q]
                row = shared_i[par, 2, q]
        if tid == 0:
            status[2] += total
            cover[t] = score  # the largest D after pick t
        if weights is not None:  # the pick: the largest score
            score = -1.0
            for q in range(n_threads):
                if shared_i[par, 3, q] >= 0 and shared_f[par, 2, q] > score:
                    score = shared_f[par, 2, q]
                    row = shared_i[par, 3, q]
    return 0


def scan32(X, k, first_row, max_candidates, inv_norm=None, cosine=False, image=None,
           radius=None, half=None, weights=None):
    """Exact greedy k-center by float32 scans, starting from ``first_row``: ``(indices,
    scores, cover, stats)`` (``_scan32_tasks``), or None and the stats when the rows whose
    interval reaches the top outgrow ``max_candidates`` at some pick. ``X``: a float32 l2
    pool, or any pool with its float32 ``image`` and ``radius`` (``float32_image``;
    cosine: with ``inv_norm``); or any pool scanned through a half image of scale
    ``2^half`` (``half_scale``), made by the kernel's threads (``_half_rows``). On Numba's
    threads, each owning at least ``MIN_ROWS_PER_THREAD`` rows. ``weights``: weighted
    k-center (the pick the largest ``w D``, ``scores`` those; ``cover`` the largest ``D``),
    the non-zero weights within [2^-300, 2^300] (``weights_fit``)."""
    n, d = X.shape
    half_s, scale2 = None, 1.0
    if half is not None:
        image = np.empty((half_blocks(n), d, HALF_BLOCK), dtype=np.uint16)
        radius = np.empty(n)
        half_s, scale2 = 2.0**half, 2.0**(-2 * half)
    Y = X if image is None else image
    row_bytes = d * Y.itemsize
    threads = max(1, min(numba.get_num_threads(), n // MIN_ROWS_PER_THREAD))
    down, up, slack = factors32(d)
    lower = np.full(n, np.inf, dtype=np.float32)
    upper = np.full(n, np.inf, dtype=np.float32)
    indices = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    cover = np.empty(k, dtype=np.float64)
    status = np.zeros(3, dtype=np.int64)
    cap = int(max_candidates)
    block = BLOCK32 if half is None else -(-BLOCK32 // HALF_BLOCK) * HALF_BLOCK
    # a half image's blocks are one sequential read per thread: no software prefetches
    # (Fashion-MNIST raw, 60,000 x 784, and Gaussian 1M x 32: as fast without as with
    # them 4 KiB ahead; one block ahead was 10 % slower on the former)
    ahead = 0 if n * row_bytes <= PREFETCH_BYTES or half is not None else \
        max(8, 4096 // row_bytes)
    if inv_norm is None:
        inv_norm = np.empty(0)

    # the picks' float32 images: float64 and cosine pools (float32 l2 pools: None)
    images = (pick_images_rows(k, d), d) if X.dtype != np.float32 or cosine else None
    width = Y.shape[1]

    def make():  # per thread: the block's sums, the centre's row, pick bounds, two sets of
        # candidate state, the picks' images
        state = (np.empty(block, np.float32), np.empty(width, np.float32), np.empty(k),
                 np.empty(cap, np.int64), np.empty(cap), np.empty(cap, np.int64),
                 np.empty(cap, np.int64), np.empty(cap), np.empty(cap, np.int64))
        if images is None:
            return state + (None, None, None, None)
        return state + (np.empty(images, np.float32), np.empty(images[0]),
                        np.empty(images[1], np.float32), np.zeros(1, np.int64))

    run_gang(_scan32_tasks, threads, X, inv_norm, metric_flag(cosine), Y, radius, scale2,
             half_s, k, first_row, down, up, slack, *bounds32(max(d, width)),
             (d + 8) * 2.0**-52, lower, upper, lower.view(np.int32), upper.view(np.int32),
             weights, indices, scores, cover, np.zeros((2, 4, threads), np.int64),
             np.zeros((2, 3, threads)), np.zeros(8, np.int64), status, threads, ahead,
             scratch=(("scan32", cap, block, k, images, width), make))
    stats = {"abandoned_at": int(status[0]), "candidates": int(status[1]),
             "exact_candidates": int(status[2])}
    if status[0]:
        return None, stats
    return (indices, scores, cover), stats


def weights_fit(weights):
    """Whether ``scan32`` takes these weights: every non-zero one within [2^-300, 2^300]
    (its keys then stay normal, finite float64 numbers)."""
    w = np.asarray(weights)
    nonzero = w[w != 0]
    return nonzero.size == 0 or (float(nonzero.min()) >= 2.0**-300
                                 and float(nonzero.max()) <= 2.0**300)


def float32_image(X, inv_norm, cosine, chunk):
    """``(image, radius)``: the pool's points (rows, or rows times ``inv_norm`` for cosine,
    as the exact float64 distances scale them) rounded to float32, and for each row a
    float64 bound of ``||image_i - point_i||`` (the norm of the exact float64 difference,
    inflated for its own rounding and for underflowing squares). Made ``chunk`` rows at a
    time."""
    n, d = X.shape
    image = np.empty((n, d), dtype=np.float32)
    radius = np.empty(n, dtype=np.float64)
    inflate = 1.0 + (d + 8) * 2.0**-52
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        points = X[start:stop].astype(np.float64)
        if cosine:
            points *= inv_norm[start:stop, None]
        image[start:stop] = points
        points -= image[start:stop]
        radius[start:stop] = np.sqrt(np.einsum("ij,ij->i", points, points)) * inflate \
            + 2.0**-500
    return image, radius


#: A half image scales the points by ``2^e``, |e| at most this (pools whose largest
#: coordinate is within ~2^-100 to 2^100 of 1; others keep the float32 image).
HALF_MAX_EXPONENT = 100


def half_scale(X, inv_norm, cosine):
    """The exponent ``e`` of the half image's scale ``2^e``: the points' largest magnitude
    times it below 2^14 (the halves' range ends at 65,504); None when ``|e|`` would pass
    ``HALF_MAX_EXPONENT`` or the pool is all zeros."""
    if cosine:
        largest = 1.0  # normalised rows (2^14 leaves room for their rounding)
    else:
        largest = max(float(X.max()), -float(X.min())) if X.size else 0.0  # no temporary
    if not largest > 0.0 or not np.isfinite(largest):
        return None
    e = 14 - int(np.frexp(largest)[1])  # largest < 2^frexp, so largest * 2^e < 2^14
    return e if abs(e) <= HALF_MAX_EXPONENT else None


@njit(nogil=True, fastmath=_FASTMATH, **HELPER)
def _half_rows(X, inv_norm, cosine, s, image, radius, first, last):
    """Rows [first, last) of the half image of scale ``s = 2^e`` (``half_scale``; blocks of
    ``HALF_BLOCK`` rows, ``half_blocks``): each row's point (the row, or the row times
    ``inv_norm`` for cosine, as the exact float64 distances scale them) times ``s`` rounded
    to IEEE halves (their bits, uint16; the last block's rows past the pool's end zeros,
    written with its last row), and in ``radius`` a float64 bound of ``||image_i / s -
    point_i||``: the norm of the scaled difference, exact in float64 (the half is within a
    factor 2 of the value, or zero), inflated for its own rounding and underflow, divided
    by ``s`` exactly."""
    n, d = X.shape
    inflate = 1.0 + (d + 8) * 2.0**-52
    inv_s = 1.0 / s
    for i in range(first, last):
        scale = s * inv_norm[i] if cosine is not None else s
        b = i // HALF_BLOCK
        r = i - b * HALF_BLOCK
        acc = 0.0
        for j in range(d):
            v = X[i, j] * scale
            h = half_bits(np.float32(v))
            image[b, j, r] = h
            e = v - np.float64(as_float32(h))
            acc += e * e
        radius[i] = (np.sqrt(acc) * inflate + 2.0**-500) * inv_s
    if last == n:
        for i in range(n, image.shape[0] * HALF_BLOCK):  # the last block's rows past n
            b = i // HALF_BLOCK
            for j in range(d):
                image[b, j, i - b * HALF_BLOCK] = 0
