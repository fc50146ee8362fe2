"""Kernels for exact greedy k-center (``fastal.diversity.kcenter``).

Plain arrays in, plain arrays out; the driver validates everything once.

State shared by the kernels (N pool rows, G groups, d dimensions):

- ``perm`` (N,) int32/int64, in *group* order: ``perm[offsets[g]:offsets[g + 1]]`` are the
  original rows of group ``g``, increasing, so a forward scan breaks ties by lower row.
- ``mindist`` (N,) float32, in group order (position ``p`` is row ``perm[p]``; it is
  computed in row order and permuted once, in place): the distance ``D`` of each row to the
  centre set, in score units (Euclidean distance for l2, ``||a - b||**2 / 2`` for cosine),
  rounded *up* to float32: ``mindist = ceil32(D)``, with ``D`` the exact float64 value.
  ``ceil32`` is monotone, so ``ceil32(min(a, b)) = min(ceil32(a), ceil32(b))`` keeps the
  stored value exact under updates, every bound that reads it stays valid, and a row with
  a smaller ``mindist`` has a strictly smaller ``D``: only rows sharing the top float32
  value need their float64 ``D`` recomputed (``resolve_pick``, ``exact_cover``).
  ``-1.0`` marks a row that is itself a centre (labeled by position, or already picked).
  Group order makes the per-pick scans sequential over the state; only the rows of ``X``
  are gathered (``X`` is never copied).
- ``rowdist`` (N,) uint16, in group order: each row's distance to its group centre as a
  fraction ``q / 65535`` of the group radius ``radius[g]`` (itself rounded up), with ``q``
  rounded *up*, so that the triangle-inequality bound computed from it stays a lower bound
  (2 bytes per row instead of a float32's 4; the bound loosens by at most radius / 65535).
  A group centre is any point: a mean stored as int16 levels, a pool row, or a labeled
  point (then the row's distance is the initial min-distance itself, free).

Distances are always accumulated in float64 from the difference ``x - c`` (no
``|x|^2 + |c|^2 - 2 x.c`` cancellation), so a row and an exact duplicate of a centre get an
exact 0, and integer-valued data gives exact distances.

Parallel kernels are serial ``*_tasks(..., lo, hi)`` functions run on Python threads by
``_parallel.run_tasks`` (no ``prange``: its lowering made a first call compile 2-4x
slower). A task is a range of rows or of groups; it writes only its own rows' and groups'
state, so nothing depends on the split or the thread count.
"""

import numpy as np
from numba import njit

from .._config import FASTMATH
from ._intrinsics import lane_sq, prefetch
from ._math import HELPER, KERNEL
from ._parallel import run_tasks

# No FMA contraction here: for cosine the kernels compute ``x * inv_norm - c`` where ``c`` is
# the centre's own ``x * inv_norm``. A fused multiply-subtract would skip the rounding of the
# product and leave a non-zero distance between a row and its exact duplicate.
_FASTMATH = set(FASTMATH) - {"contract"}

# Helpers and kernels here take ``_math.HELPER`` and ``_math.KERNEL`` (no wrappers Numba
# would otherwise compile and emit for every function): the 40,000-row lazy and scan rows
# of bench/cold_start.py compiled 10-15 % less (CPU 4.0 -> 3.6 s, 3.5 -> 3.0 s).

# Relative slack on every triangle-inequality skip test. Computed distances carry ~1e-15
# relative error; the slack makes a skip provably safe, at no measurable cost in pruning.
_SKIP_SLACK = 1e-9


# Rows of a group are at random positions of X: without prefetching, each evaluated row
# costs a full memory latency. The state is in group order, so the skip test of the row this
# many positions ahead is cheap; its X row is prefetched only if it will be evaluated.
_PREFETCH_AHEAD = 8


def metric_flag(cosine):
    """The ``cosine`` argument of every kernel here: ``True`` for cosine, ``None`` for l2.

    Never ``False``: the kernels test ``cosine is not None``, which Numba decides from the
    argument's type before typing the function, so an l2 call compiles none of the cosine
    code (and the reverse), one cached specialisation per metric. Python wrappers pass
    their ``cosine`` through this, so a bool works there too.
    """
    return True if cosine else None


#: Rows per task of ``labeled_mindist`` (a Python constant passed in: tests shrink it).
ROWS_PER_TASK = 1024
#: Coordinates per task of the group-centre distances of ``add_center`` (a few groups'
#: worth of work; one task, on the calling thread, when there are few groups).
GROUP_COORDS_PER_TASK = 1 << 15
_NO_ROWS = np.empty(0, dtype=np.int64)


# Every exact distance is a float64 sum in ``lane_sums``' order (``_intrinsics.lane_sq``:
# explicit vectors, the same bits on any CPU): l2 callers pass scales of 1.0, and x * 1.0 is
# exact, so l2 distances are the lane sums of (x_j - y_j)^2.
@njit(inline="always", fastmath=_FASTMATH)
def _sq_to(X, i, scale, c):
    """||x_i * scale - c||^2 in float64 (cosine: ``scale`` the row's inverse norm; l2: 1)."""
    return lane_sq(X, i, scale, c, 0, 1.0)


@njit(inline="always", fastmath=_FASTMATH)
def _sq_rows(X, i, scale, Y, r, y_scale):
    """||x_i * scale - y_r * y_scale||^2 in float64 (l2: both scales 1): the same arithmetic
    as ``_sq_to`` with the centre ``c = float64(y_r) * y_scale``."""
    return lane_sq(X, i, scale, Y, r, y_scale)


@njit(inline="always", fastmath=_FASTMATH)
def _sq_rows4(X, i, scale, Y, r0, r1, r2, r3, y0, y1, y2, y3):
    """``_sq_rows`` of row ``i`` to rows ``r0..r3`` of ``Y`` (scales ``y0..y3``)."""
    return (lane_sq(X, i, scale, Y, r0, y0), lane_sq(X, i, scale, Y, r1, y1),
            lane_sq(X, i, scale, Y, r2, y2), lane_sq(X, i, scale, Y, r3, y3))


@njit(inline="always", fastmath=_FASTMATH)
def _sq_4rows(X, inv_norm, cosine, i0, i1, i2, i3, Y, r, y_scale):
    """``_sq_rows`` of rows ``i0..i3`` of ``X`` (cosine: each scaled by its inverse norm)
    to row ``r`` of ``Y``."""
    if cosine is not None:
        s0, s1, s2, s3 = inv_norm[i0], inv_norm[i1], inv_norm[i2], inv_norm[i3]
    else:
        s0 = s1 = s2 = s3 = 1.0
    return (lane_sq(X, i0, s0, Y, r, y_scale), lane_sq(X, i1, s1, Y, r, y_scale),
            lane_sq(X, i2, s2, Y, r, y_scale), lane_sq(X, i3, s3, Y, r, y_scale))


@njit(inline="always", fastmath=_FASTMATH)
def _sq_4of(X, inv_norm, cosine, rows, p, last, Y, r, y_scale):
    """``_sq_4rows`` of the rows ``rows[p..p + 3]`` of ``X`` (positions past ``last``
    repeat ``rows[last]``) to row ``r`` of ``Y``."""
    return _sq_4rows(X, inv_norm, cosine, rows[p], rows[p + 1 if p + 1 < last else last],
                     rows[p + 2 if p + 2 < last else last],
                     rows[p + 3 if p + 3 < last else last], Y, r, y_scale)


@njit(nogil=True, fastmath=_FASTMATH, **HELPER)
def _nearest_sq(X, i, scale, C, c_inv, cosine, c_rows):
    """The smallest ``_sq_rows`` of row ``i`` to the rows ``c_rows`` of ``C`` (scales
    ``c_inv``), four at a time (``_sq_rows4``: the same bits as one at a time). Not
    inlined: compiled once for its callers (the full scans' labeled set, the lazy path's
    distances to the picks, ``exact_mindist``); float32 l2 pools' lazy kernels never
    compile it."""
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


_Q = 65535.0  # rowdist levels per group radius


@njit(inline="always")
def _ceil32(x):
    """The smallest float32 >= x (x >= 0 or inf)."""
    f = np.float32(x)
    if np.float64(f) < x:
        f = np.nextafter(f, np.float32(np.inf))
    return f


@njit(inline="always")
def _quantize(r, r_max):
    """The uint16 level q with ``q * r_max / 65535 >= r`` (0 <= r <= r_max)."""
    if r_max <= 0.0 or r <= 0.0:
        return np.uint16(0)
    q = np.floor(r / r_max * _Q * (1.0 + 1e-12)) + 1.0
    return np.uint16(min(q, _Q))


@njit(inline="always")
def _up32(dist):
    """A Euclidean distance rounded up generously (float32-representable upper bound)."""
    return np.float64(np.float32(dist * (1.0 + 2.5e-7) + 1e-300))


@njit(inline="always")
def _skip(dg, rowdist, m, cosine):
    """True if a row cannot get closer to a centre at distance ``dg`` from its group centre
    (a row that is already a centre, ``m < 0``, is skipped too)."""
    if m < 0.0:
        return True
    lower = dg - rowdist
    return lower - _SKIP_SLACK * (dg + rowdist) >= _to_chord(m, cosine)


@njit(inline="always")
def _to_score_units(sq, cosine):
    # l2: Euclidean distance. cosine: ||a - b||^2 / 2 == 1 - cos(a, b) for unit vectors.
    if cosine is not None:
        return 0.5 * sq
    return np.sqrt(sq)


@njit(inline="always")
def _to_chord(dist, cosine):
    # Back from score units to the Euclidean distance the triangle inequality holds for.
    if cosine is not None:
        return np.sqrt(2.0 * dist)
    return dist


@njit(inline="always", fastmath=_FASTMATH)
def _scan_labeled(X, i, scale, cosine, L, lab_rows, lab_inv, best, best_t):
    """``(best, best_t)`` lowered to row ``i``'s nearest labeled point of the chunk (ties to
    the lower position). One sum at a time: four interleaved chains ran the (rare) rescans
    1.9x faster but cost ~0.5 s of compilation in every kernel that inlines this."""
    for t in range(lab_rows.shape[0]):
        row = lab_rows[t]
        sq = _sq_rows(X, i, scale, L, row, lab_inv[row] if cosine is not None else 1.0)
        if sq < best or (sq == best and t < best_t):
            best = sq
            best_t = t
    return best, best_t


@njit(inline="always", fastmath=_FASTMATH)
def _certified_nearest(X, i, scale, cosine, L, lab_rows, lab_inv, cand_r, cand_sq_r, shift,
                       labeled_norm_max, err_coef):
    """(exact squared distance of row ``i`` to its nearest point of a labeled chunk, that
    point's index in the chunk (the lowest on ties), 1 if the chunk had to be scanned).

    ``cand_r`` holds FAISS's kk candidates of the chunk for the row and ``cand_sq_r`` their
    float32 squared distances (see ``labeled_mindist``): the exact distance of each is
    recomputed, and unless the kk-th FAISS distance exceeds the best exact one by more than
    its error bound, every point of the chunk is scanned.
    """
    kk = cand_r.shape[0]
    n_chunk = lab_rows.shape[0]
    best = np.inf
    best_t = 0
    fell_back = 0
    # One loop over the candidates, then (on a fall-back) every point of the chunk: one
    # float64 sum inlined per caller instead of two (compilation in a fresh process).
    for t in range(kk + n_chunk):
        if t == kk:
            if kk >= n_chunk:
                break
            norm_sq = 0.0
            for j in range(X.shape[1]):
                v = X[i, j] * scale - shift[j]
                norm_sq += v * v
            bound = np.sqrt(norm_sq) + labeled_norm_max
            if cand_sq_r[kk - 1] > best + err_coef * bound * bound:
                break
            fell_back = 1
        c = cand_r[t] if t < kk else t - kk
        if c < 0:
            continue
        row = lab_rows[c]
        sq = _sq_rows(X, i, scale, L, row, lab_inv[row] if cosine is not None else 1.0)
        if sq < best or (sq == best and c < best_t):
            best = sq
            best_t = c
    return best, best_t, fell_back


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _labeled_mindist_tasks(X, start, inv_norm, cosine, L, lab_rows, lab_inv, first, cand,
                           cand_sq, shift, labeled_norm_max, err_coef, mindist, nearest,
                           n_fallback, rows_per_task, lo, hi):
    """``labeled_mindist`` for rows ``start + r``, lo * rows_per_task <= r <
    hi * rows_per_task; returns 0. (19 arguments: under 20, see ``_update_groups_tasks``.)"""
    n_rows = cand.shape[0]
    want_nearest = nearest.shape[0] > 0
    for r in range(lo * rows_per_task, min(n_rows, hi * rows_per_task)):
        i = start + r
        scale = inv_norm[i] if cosine is not None else 1.0
        best, best_t, fell_back = _certified_nearest(X, i, scale, cosine, L, lab_rows, lab_inv,
                                                     cand[r], cand_sq[r], shift,
                                                     labeled_norm_max, err_coef)
        n_fallback[r] += fell_back
        new = _ceil32(_to_score_units(best, cosine))
        if new < mindist[i]:
            mindist[i] = new
            if want_nearest:
                nearest[i] = first + best_t
    return 0


def labeled_mindist(X, start, inv_norm, cosine, L, lab_rows, lab_inv, first, cand, cand_sq,
                    shift, labeled_norm_max, err_coef, mindist, nearest, n_fallback):
    """Lower the min-distance of rows ``start:start + len(cand)`` to one chunk of labeled
    points, exactly.

    The chunk is the labeled points ``L[lab_rows[t]] * lab_inv[lab_rows[t]]`` (cosine) or
    ``L[lab_rows[t]]`` (l2), labeled positions ``first + t``. ``cand`` (rows, kk) holds
    FAISS's kk nearest points of the chunk for each row and ``cand_sq`` their float32
    squared distances (computed on ``x - shift`` in float32, so with error at most
    ``err_coef * (|x - shift| + max|y - shift|)^2``, the max over the chunk). The exact
    distance is recomputed for every candidate; if the kk-th FAISS distance does not exceed
    the best exact one by more than that error bound, the true nearest point of the chunk
    might be outside the candidates, so the row falls back to an exact scan of the chunk.
    The result is merged: ``mindist[start + r]`` (rounded up to float32) is lowered if the
    chunk is strictly closer, and then, if ``nearest`` is not empty, ``nearest[start + r]``
    is set to the labeled position of that point (chunks come in increasing position
    order, so the lower position keeps a tie). ``n_fallback[r]`` counts the fallbacks.
    """
    cosine = metric_flag(cosine)
    run_tasks(_labeled_mindist_tasks, -(-cand.shape[0] // ROWS_PER_TASK), X, start, inv_norm,
              cosine, L, lab_rows, lab_inv, first, cand, cand_sq, shift, labeled_norm_max,
              err_coef, mindist, nearest, n_fallback, ROWS_PER_TASK)


@njit(cache=True, **KERNEL)
def _group_order(labels, n_groups, perm, offsets, cursor):
    """``group_order`` with ``cursor``: scratch of ``n_groups`` int64."""
    # element loops, no slice assignment or copy: cheaper to compile (cold start)
    for g in range(n_groups + 1):
        offsets[g] = 0
    for i in range(labels.shape[0]):
        offsets[labels[i] + 1] += 1
    for g in range(n_groups):
        offsets[g + 1] += offsets[g]
    for g in range(n_groups):
        cursor[g] = offsets[g]
    for i in range(labels.shape[0]):
        g = labels[i]
        perm[cursor[g]] = i
        cursor[g] += 1


def group_order(labels, n_groups, perm, offsets):
    """Counting sort of rows by group label: fills ``perm`` (group order) and ``offsets``.

    Rows are visited in increasing order, so each group's rows stay increasing. (The
    kernels here allocate nothing: an allocation in a kernel is typed and compiled in every
    fresh process; their scratch comes from these wrappers.)
    """
    _group_order(labels, n_groups, perm, offsets, np.empty(n_groups, dtype=np.int64))


@njit(cache=True, **KERNEL)
def position_of(perm, row):
    """Group-order position of original ``row``."""
    for p in range(perm.shape[0]):
        if perm[p] == row:
            return p
    return -1


@njit(cache=True, **KERNEL)
def permute_in_place(values, perm, visited):
    """``values[:] = values[perm]`` without a second N-array: follows the cycles of ``perm``.

    ``visited`` is a zeroed bit set of at least ``ceil(N / 8)`` bytes (N / 8 bytes of
    scratch instead of a copy of ``values``).
    """
    n = values.shape[0]
    for start in range(n):
        if visited[start >> 3] & (1 << (start & 7)):
            continue
        saved = values[start]
        q = start
        while True:
            visited[q >> 3] |= np.uint8(1 << (q & 7))
            src = perm[q]
            if src == start:
                values[q] = saved
                break
            values[q] = values[src]
            q = src


@njit(nogil=True, cache=True, **KERNEL)
def _rowdist_from_mindist_tasks(mindist, cosine, offsets, rowdist, radius, lo, hi):
    """``rowdist_from_mindist`` for groups lo <= g < hi; returns 0."""
    for g in range(lo, hi):
        r_max = 0.0
        for p in range(offsets[g], offsets[g + 1]):
            m = mindist[p]
            if m > 0.0:  # not a centre (-1) nor a duplicate of its group centre
                r_max = max(r_max, _up32(_to_chord(m, cosine)))
        radius[g] = r_max
        for p in range(offsets[g], offsets[g + 1]):
            m = mindist[p]
            rowdist[p] = _quantize(_to_chord(m, cosine), r_max) if m > 0.0 else np.uint16(0)
    return 0


def rowdist_from_mindist(mindist, cosine, offsets, rowdist, radius):
    """Groups centred on labeled points: each row's distance to its centre is its initial
    min-distance (group order). Writes the group radii (rounded up) and the rows' levels."""
    cosine = metric_flag(cosine)
    run_tasks(_rowdist_from_mindist_tasks, offsets.shape[0] - 1, mindist, cosine, offsets,
              rowdist, radius)


@njit(inline="always")
def _centre(X, inv_norm, cosine, cq, grid, rep, g, out):
    """Group ``g``'s centre into ``out`` (float64): the pool row ``rep[g]`` in the metric's
    space if ``rep`` is not None (the same float64 values as a picked centre), else
    ``grid[0] + cq[g] * grid[1]`` (levels ``cq`` on the grid of origin ``grid[0]`` and step
    ``grid[1]`` per coordinate)."""
    if rep is not None:  # decided by rep's type: only one branch is compiled
        r = rep[g]
        scale = inv_norm[r] if cosine is not None else 1.0
        for j in range(out.shape[0]):
            out[j] = np.float64(X[r, j]) * scale
    else:
        for j in range(out.shape[0]):
            out[j] = grid[0, j] + cq[g, j] * grid[1, j]


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _centroid_distances_tasks(X, inv_norm, cosine, perm, offsets, cq, grid, rep, rowdist,
                              radius, c, dist, lo, hi):
    """``centroid_distances`` for groups lo <= g < hi (scratch: ``c`` (1, d) floats,
    ``dist`` as many as the largest group's rows); returns 0."""
    for g in range(lo, hi):
        if rep.shape[0] > 0:  # rows (the cells' pool rows) or levels: both calls are made
            _centre(X, inv_norm, cosine, cq, grid, rep, g, c[0])
        else:
            _centre(X, inv_norm, cosine, cq, grid, None, g, c[0])
        begin = offsets[g]
        end = offsets[g + 1]
        last = end - 1
        r_max = 0.0
        for p in range(begin, end, 4):  # four rows at a time (each its own lane sum)
            sums = _sq_4of(X, inv_norm, cosine, perm, p, last, c, 0, 1.0)
            for h in range(4 if p + 4 <= end else end - p):
                dist[p + h - begin] = np.sqrt(sums[h])
                # inflating before the float32 rounding keeps the radius an upper bound
                r_max = max(r_max, _up32(dist[p + h - begin]))
        radius[g] = r_max
        for p in range(begin, offsets[g + 1]):
            rowdist[p] = _quantize(dist[p - begin], r_max)
    return 0


def centroid_distances(X, inv_norm, cosine, perm, offsets, cq, grid, rep, rowdist, radius):
    """Distance of every row to its group centre (see ``_centre``), as a uint16 level, and
    the group radii. Float centroids come with the grid ``(0, 1)`` (exact)."""
    cosine = metric_flag(cosine)
    rep = _NO_ROWS if rep is None else rep  # one specialisation for both calls
    d, most = X.shape[1], _largest_group(offsets)
    run_tasks(_centroid_distances_tasks, offsets.shape[0] - 1, X, inv_norm, cosine, perm,
              offsets, cq, grid, rep, rowdist, radius,
              scratch=(("centroid_distances", d, most),
                       lambda: (np.empty((1, d)), np.empty(most))))


def _largest_group(offsets):
    """Rows of the largest group (at least 1: scratch sizes)."""
    return max(1, int(np.diff(offsets).max(initial=0)))


@njit(nogil=True, cache=True, **KERNEL)
def _group_stats_tasks(mindist, weights, perm, offsets, gstats, gbest_pos, lo, hi):
    """``group_stats`` for groups lo <= g < hi; returns 0."""
    for g in range(lo, hi):
        _scan_group(mindist, weights, perm, offsets[g], offsets[g + 1], g, gstats,
                    gbest_pos)
    return 0


def group_stats(mindist, weights, perm, offsets, gstats, gbest_pos):
    """Per group: largest min-distance, best (weighted) score and its position (see
    ``_scan_group``)."""
    run_tasks(_group_stats_tasks, offsets.shape[0] - 1, mindist, weights, perm, offsets,
              gstats, gbest_pos)


# Columns of the per-group statistics ``gstats`` (G, 4) float64.
GMAX, GBEST, GSECOND, GLOW = 0, 1, 2, 3


@njit(inline="always")
def _scan_group(mindist, weights, perm, lo, hi, g, gstats, gbest_pos):
    """Group g's statistics from the stored (rounded-up) min-distances ``m`` (``weights``
    None for unweighted picks: decided by its type, the weighted code is then not compiled):

    - GMAX: the largest ``m`` (-1 if every row is a centre);
    - GBEST / gbest_pos: the largest score upper bound ``U = m * w`` and its first position;
    - GSECOND: the largest ``U`` of the other rows (ties with the best included);
    - GLOW: a lower bound of the best row's true score, ``prev32(m) * w`` (its float64
      ``D`` is above the float32 below ``m``), so the group's true best is at least that.
    """
    m_max = -1.0
    best = -np.inf
    second = -np.inf
    best_pos = -1
    for p in range(lo, hi):
        m = mindist[p]
        if m < 0.0:
            continue
        if m > m_max:
            m_max = m
        u = m * weights[perm[p]] if weights is not None else np.float64(m)
        if u > best:  # strict: the earlier (lower) row wins ties
            second = best
            best = u
            best_pos = p
        elif u > second:
            second = u
    low = -np.inf
    if best_pos >= 0:
        below = np.float64(np.nextafter(mindist[best_pos], np.float32(-np.inf)))
        low = below * weights[perm[best_pos]] if weights is not None else below
    gstats[g, GMAX] = m_max
    gstats[g, GBEST] = best
    gstats[g, GSECOND] = second
    gstats[g, GLOW] = low
    gbest_pos[g] = best_pos


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _centre_distances_tasks(X, inv_norm, cosine, center, cq, grid, rep, dcm, groups_per_task,
                            lo, hi):
    """``dcm[g]``: the distance of ``center`` to group ``g``'s centre (see ``_centre``), for
    groups [lo * groups_per_task, hi * groups_per_task); returns 0."""
    d = X.shape[1]
    for g in range(lo * groups_per_task, min(dcm.shape[0], hi * groups_per_task)):
        acc = 0.0
        if rep is not None:
            r = rep[g]
            acc = _sq_to(X, r, inv_norm[r] if cosine is not None else 1.0, center)
        else:
            for j in range(d):
                t = (grid[0, j] + cq[g, j] * grid[1, j]) - center[j]
                acc += t * t
        dcm[g] = np.sqrt(acc)
    return 0


@njit(cache=True, **KERNEL)
def active_groups(dcm, radius, gstats, forced_group, cosine, active):
    """The groups ``add_center`` must visit, in increasing order, into ``active``; returns
    how many (see ``add_center``)."""
    n_active = 0
    for g in range(dcm.shape[0]):
        if g != forced_group:
            gmax = gstats[g, GMAX]
            if gmax < 0.0:
                continue  # every row of the group is a centre already
            lower = dcm[g] - radius[g]
            if lower - _SKIP_SLACK * (dcm[g] + radius[g]) >= _to_chord(gmax, cosine):
                continue
        active[n_active] = g
        n_active += 1
    return n_active


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _update_groups_tasks(X, inv_norm, cosine, center, forced_group, perm, offsets, radius,
                         rowdist, mindist, weights, gstats, gbest_pos, dcm, active, lo, hi):
    """The row pass of ``add_center`` over groups ``active[lo:hi]``: lowers their rows'
    ``mindist``, rescans the statistics of the groups that changed, and returns the number
    of exact row-distance evaluations.

    (17 arguments: Numba's dispatcher leaves ~400 bytes of cyclic garbage per call of a
    function with 20 or more, which piles up over thousands of picks until a full GC.)
    """
    n_eval = 0
    due = np.empty(4, dtype=np.int64)  # positions of rows the bound does not skip
    c = center.reshape((1, center.shape[0]))
    for a in range(lo, hi):
        g = active[a]
        dg = dcm[g]
        level = radius[g] / _Q  # rowdist level -> distance (an upper bound)
        # the statistics only change if a row moved closer (or for the forced group,
        # whose best row was just taken)
        changed = g == forced_group
        stop = offsets[g + 1]
        n_due = 0
        for p in range(offsets[g], stop + 1):
            if p < stop:
                ahead = p + _PREFETCH_AHEAD
                if ahead < stop and not _skip(dg, rowdist[ahead] * level, mindist[ahead],
                                              cosine):
                    prefetch(X, perm[ahead])
                if _skip(dg, rowdist[p] * level, mindist[p], cosine):
                    continue
                due[n_due] = p
                n_due += 1
            if n_due == 4 or (p == stop and n_due):
                # four rows' sums at once (each _sq_to's bits); fewer
                # at a group's end: the first one summed again, not stored again
                sums = _sq_4rows(X, inv_norm, cosine, perm[due[0]],
                                 perm[due[1 if n_due > 1 else 0]],
                                 perm[due[2 if n_due > 2 else 0]],
                                 perm[due[3 if n_due > 3 else 0]], c, 0, 1.0)
                for h in range(n_due):
                    new = _ceil32(_to_score_units(sums[h], cosine))
                    m = mindist[due[h]]
                    if new < m:
                        mindist[due[h]] = new
                        changed = True
                n_eval += n_due
                n_due = 0
        if changed:
            _scan_group(mindist, weights, perm, offsets[g], stop, g, gstats,
                        gbest_pos)
    return n_eval


def add_center(X, inv_norm, cosine, center, forced_group, perm, offsets, cq, grid, rep,
               radius, rowdist, mindist, weights, gstats, gbest_pos, dcm, active):
    """Lower ``mindist`` to the new ``center`` and refresh the touched groups' statistics.

    A group is skipped when ``d(center, m_g) - r_g >= max mindist in g``: by the triangle
    inequality every row of the group is then at least its current min-distance away from the
    centre. Inside a visited group, a row is skipped when ``d(center, m_g) - rowdist >=
    mindist`` for the same reason. ``forced_group`` (the group of the row that was just
    picked and excluded; -1 for none) is always rescanned. Returns the number of exact
    row-distance evaluations.

    Three steps: the centre-to-group distances ``dcm`` (tasks of a few groups), the list of
    groups the bound cannot skip (serial), and the row pass over those groups (one task per
    group). Each task writes only its own groups' rows and statistics.
    """
    cosine = metric_flag(cosine)
    n_groups = offsets.shape[0] - 1
    per_task = max(1, GROUP_COORDS_PER_TASK // max(1, X.shape[1]))
    run_tasks(_centre_distances_tasks, -(-n_groups // per_task), X, inv_norm, cosine, center,
              cq, grid, rep, dcm, per_task)
    n_active = active_groups(dcm, radius, gstats, forced_group, cosine, active)
    # Groups differ in size and in how many rows the per-row bound skips, but handing them
    # out one at a time (a shared counter) was measured 1.2-2x slower than one contiguous
    # range of groups per thread (1M x 128, k = 1000: picks 1.94 s vs 0.98 s).
    return run_tasks(_update_groups_tasks, n_active, X, inv_norm, cosine, center, forced_group,
                     perm, offsets, radius, rowdist, mindist, weights, gstats, gbest_pos, dcm,
                     active)


@njit(cache=True, fastmath=_FASTMATH, **KERNEL)
def exact_mindist(X, inv_norm, cosine, i, L, lab_rows, lab_inv, picked, n_picked):
    """The float64 distance ``D`` of row ``i`` to the centre set, recomputed: the labeled
    points (rows ``lab_rows`` of ``L``, see ``labeled_mindist``) and the first ``n_picked``
    rows of ``picked``, with the same arithmetic as ``labeled_mindist`` and ``add_center``."""
    scale = inv_norm[i] if cosine is not None else 1.0
    best = _nearest_sq(X, i, scale, L, lab_inv, cosine, lab_rows)
    to_picks = _nearest_sq(X, i, scale, X, inv_norm, cosine, picked[:n_picked])
    return _to_score_units(best if best < to_picks else to_picks, cosine)


@njit(cache=True, fastmath=_FASTMATH, **KERNEL)
def _resolve_pick(X, inv_norm, cosine, L, lab_rows, lab_inv, picked, n_picked, perm, offsets,
                  mindist, weights, gstats, gbest_pos):
    """The exact greedy pick: ``(group-order position, exact score)``, or ``(-1, -inf)``
    when every row is a centre.

    The stored ``m`` are float32 upper bounds of ``D``, so a row whose score upper bound
    ``U`` is below ``lam``, the largest lower bound of a group's best row's true score,
    cannot be the argmax.
    Usually one row is left; otherwise the float64 ``D`` of every row with ``U >= lam`` is
    recomputed and the largest wins (ties to the lower row). If the top bound is 0, every
    row scores 0 and the lowest row wins without recomputation.
    """
    n_groups = gstats.shape[0]
    top = -1
    lam = -np.inf
    for g in range(n_groups):
        if gbest_pos[g] < 0:
            continue
        if gstats[g, GLOW] > lam:
            lam = gstats[g, GLOW]
        if top < 0:
            top = g
            continue
        b = gstats[g, GBEST]
        bt = gstats[top, GBEST]
        if b > bt or (b == bt and perm[gbest_pos[g]] < perm[gbest_pos[top]]):
            top = g
    if top < 0:
        return -1, -np.inf
    pos = gbest_pos[top]
    if gstats[top, GBEST] <= 0.0:
        return pos, 0.0
    unique = gstats[top, GSECOND] < lam
    if unique:
        for g in range(n_groups):
            if g != top and gbest_pos[g] >= 0 and gstats[g, GBEST] >= lam:
                unique = False
                break
    if unique:
        dist = exact_mindist(X, inv_norm, cosine, perm[pos], L, lab_rows, lab_inv, picked,
                                 n_picked)
        return pos, dist * weights[perm[pos]] if weights is not None else dist
    best = -np.inf
    best_pos = -1
    for g in range(n_groups):
        if gbest_pos[g] < 0 or gstats[g, GBEST] < lam:
            continue
        for p in range(offsets[g], offsets[g + 1]):
            m = mindist[p]
            if m < 0.0:
                continue
            u = m * weights[perm[p]] if weights is not None else np.float64(m)
            if u < lam:
                continue
            dist = exact_mindist(X, inv_norm, cosine, perm[p], L, lab_rows, lab_inv, picked,
                                     n_picked)
            s = dist * weights[perm[p]] if weights is not None else dist
            if s > best or (s == best and perm[p] < perm[best_pos]):
                best = s
                best_pos = p
    return best_pos, best


def resolve_pick(X, inv_norm, cosine, L, lab_rows, lab_inv, picked, n_picked, perm, offsets,
                 mindist, weights, gstats, gbest_pos):
    """``_resolve_pick`` with ``cosine`` as a bool or ``True``/``None`` (see ``metric_flag``)."""
    return _resolve_pick(X, inv_norm, metric_flag(cosine), L, lab_rows, lab_inv, picked, n_picked,
                         perm, offsets, mindist, weights, gstats, gbest_pos)


@njit(cache=True, fastmath=_FASTMATH, **KERNEL)
def _exact_cover(X, inv_norm, cosine, L, lab_rows, lab_inv, picked, n_picked, perm, offsets,
                 mindist, gstats):
    """The covering radius: the largest float64 ``D`` over all rows (centres count as 0).

    Only rows whose stored ``m`` equals the largest one can hold it (``ceil32`` is
    monotone); their ``D`` is recomputed.
    """
    top = -1.0
    for g in range(gstats.shape[0]):
        if gstats[g, GMAX] > top:
            top = gstats[g, GMAX]
    if top <= 0.0:
        return 0.0
    radius = 0.0
    for g in range(gstats.shape[0]):
        if gstats[g, GMAX] != top:
            continue
        for p in range(offsets[g], offsets[g + 1]):
            if mindist[p] == top:
                dist = exact_mindist(X, inv_norm, cosine, perm[p], L, lab_rows, lab_inv, picked,
                                     n_picked)
                if dist > radius:
                    radius = dist
    return radius


def exact_cover(X, inv_norm, cosine, L, lab_rows, lab_inv, picked, n_picked, perm, offsets,
                mindist, gstats):
    """``_exact_cover`` with ``cosine`` as a bool or ``True``/``None`` (see ``metric_flag``)."""
    return _exact_cover(X, inv_norm, metric_flag(cosine), L, lab_rows, lab_inv, picked, n_picked,
                        perm, offsets, mindist, gstats)


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _seed_cells_tasks(X, inv_norm, cosine, perm, mindist, offsets, max_seeds, seed_offsets,
                      split_radius, seed_pos, n_seeds, near, seed, lo, hi):
    """``seed_cells`` for cells lo <= g < hi (scratch: ``near`` as many floats as the
    largest cell's rows, ``seed`` (1, d) floats); returns 0."""
    d = X.shape[1]
    limit_sq = split_radius * split_radius
    for g in range(lo, hi):
        begin = offsets[g]
        end = offsets[g + 1]
        n = end - begin
        if n == 0:
            n_seeds[g] = 0
            continue
        base = seed_offsets[g]
        far = begin
        for p in range(begin, end):
            if mindist[p] > mindist[far]:
                far = p
        seed_pos[base] = far
        count = 1
        if max_seeds[g] > 1:
            for p in range(n):
                near[p] = np.inf
            while True:
                i = perm[seed_pos[base + count - 1]]
                scale = inv_norm[i] if cosine is not None else 1.0
                for j in range(d):
                    seed[0, j] = X[i, j] * scale
                far_sq = -1.0
                last = end - 1
                for p in range(begin, end, 4):  # four rows at a time (each its own lane sum)
                    sums = _sq_4of(X, inv_norm, cosine, perm, p, last, seed, 0, 1.0)
                    for h in range(4 if p + 4 <= end else end - p):
                        a = near[p + h - begin]
                        a = sums[h] if sums[h] < a else a
                        near[p + h - begin] = a
                        far = p + h if a > far_sq else far  # strict: the first row stays
                        far_sq = a if a > far_sq else far_sq
                if far_sq <= limit_sq or count == max_seeds[g]:
                    break
                seed_pos[base + count] = far
                count += 1
        n_seeds[g] = count
    return 0


def seed_cells(X, inv_norm, cosine, perm, mindist, offsets, max_seeds, seed_offsets,
               split_radius, seed_pos, n_seeds):
    """Farthest-first seeds inside each cell (rows nearest to one labeled point, in group
    order): the first seed is the row farthest from the cell's labeled point, each next one
    the row farthest from the seeds so far, until every row is within ``split_radius``
    (Euclidean) of a seed or ``max_seeds[g]`` seeds are placed. One seed per cluster when a
    cell straddles several. Writes group-order positions ``seed_pos[seed_offsets[g] + q]``
    and ``n_seeds[g]``.
    """
    cosine = metric_flag(cosine)
    d, most = X.shape[1], _largest_group(offsets)
    run_tasks(_seed_cells_tasks, offsets.shape[0] - 1, X, inv_norm, cosine, perm, mindist,
              offsets, max_seeds, seed_offsets, split_radius, seed_pos, n_seeds,
              scratch=(("seed_cells", d, most), lambda: (np.empty(most), np.empty((1, d)))))


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _lloyd_cells_tasks(X, inv_norm, cosine, perm, mindist, offsets, seed_pos, seed_offsets,
                       sub_offsets, n_iter, cq, grid, rep, sub_counts, sublabel, centroids,
                       counts, near, cursor, sorted_perm, sorted_min, lo, hi):
    """``lloyd_cells`` for cells lo <= g < hi; returns 0. Scratch: ``centroids`` (s, d)
    float64, ``counts``, ``near`` and ``cursor`` (s,), s the most sub-groups of a cell,
    ``sorted_perm`` and ``sorted_min`` as many as the largest cell's rows."""
    d = X.shape[1]
    for g in range(lo, hi):
        begin = offsets[g]
        end = offsets[g + 1]
        n = end - begin
        s = sub_offsets[g + 1] - sub_offsets[g]
        if s == 0:
            continue
        base = sub_offsets[g]
        for q in range(s):
            i = perm[seed_pos[seed_offsets[g] + q]]
            scale = inv_norm[i] if cosine is not None else 1.0
            for j in range(d):
                centroids[q, j] = X[i, j] * scale
        for it in range(n_iter + 1):
            for q in range(s):
                counts[q] = 0
            for p in range(begin, end):
                i = perm[p]
                scale = inv_norm[i] if cosine is not None else 1.0
                best = np.inf
                best_q = 0
                if s > 1:
                    # four centroids at a time (the same sums as
                    # _sq_to's); a last group of fewer repeats the last centroid
                    for q in range(0, s, 4):
                        q1 = q + 1 if q + 1 < s else s - 1
                        q2 = q + 2 if q + 2 < s else s - 1
                        q3 = q + 3 if q + 3 < s else s - 1
                        sums = _sq_rows4(X, i, scale, centroids, q, q1, q2, q3, 1.0, 1.0,
                                         1.0, 1.0)
                        for h in range(4):
                            if sums[h] < best:  # strict: the lowest centroid of equal ones
                                best = sums[h]
                                best_q = q + h
                sublabel[p] = best_q
                counts[best_q] += 1
            if it == n_iter:
                break
            # update: mean of the assigned rows (an empty group keeps its seed)
            for q in range(s):
                if counts[q] > 0:
                    for j in range(d):
                        centroids[q, j] = 0.0
            for p in range(begin, end):
                i = perm[p]
                q = sublabel[p]
                scale = inv_norm[i] if cosine is not None else 1.0
                for j in range(d):
                    centroids[q, j] += X[i, j] * scale
            for q in range(s):
                if counts[q] > 0:
                    inv = 1.0 / counts[q]
                    for j in range(d):
                        centroids[q, j] *= inv
        for q in range(s):
            sub_counts[base + q] = counts[q]
            if rep is not None:
                rep[base + q] = perm[seed_pos[seed_offsets[g] + q]]
            else:
                for j in range(d):
                    # np.rint: the same llvm.rint as np.round(x), without compiling
                    # np.round's decimals != 0 branch (0.5 s of a cold start)
                    level = np.rint((centroids[q, j] - grid[0, j]) / grid[1, j])
                    cq[base + q, j] = np.int16(min(max(level, -32767.0), 32767.0))
        if rep is not None:
            for q in range(s):
                near[q] = np.inf
            for p in range(begin, end):
                i = perm[p]
                q = sublabel[p]
                sq = _sq_to(X, i, inv_norm[i] if cosine is not None else 1.0, centroids[q])
                if sq < near[q]:
                    near[q] = sq
                    rep[base + q] = i
        if s == 1:
            continue
        # stable counting sort of the cell by sub-group
        acc = 0
        for q in range(s):
            cursor[q] = acc
            acc += counts[q]
        for p in range(begin, end):
            q = sublabel[p]
            sorted_perm[cursor[q]] = perm[p]
            sorted_min[cursor[q]] = mindist[p]
            cursor[q] += 1
        for r in range(n):
            perm[begin + r] = sorted_perm[r]
            mindist[begin + r] = sorted_min[r]
    return 0


def lloyd_cells(X, inv_norm, cosine, perm, mindist, offsets, seed_pos, seed_offsets,
                sub_offsets, n_iter, cq, grid, rep, sub_counts, sublabel):
    """Lloyd iterations inside each cell, from its seeds, then a stable reorder of the
    cell's ``perm`` and ``mindist`` by sub-group (rows stay increasing within a group).

    Cell ``g`` becomes groups ``sub_offsets[g]:sub_offsets[g + 1]`` with sizes
    ``sub_counts[...]`` (possibly 0) and centres either stored quantised: ``cq[...]`` int16,
    ``grid[0] + cq * grid[1]`` per coordinate (the grid covers the pool's range; the
    centre is then within half a step of the mean, and any point keeps the bounds valid),
    or, if ``rep`` is not None, as the member row nearest the centroid, ``rep[...]`` (a
    group without rows keeps its seed row).
    Each row is compared with its own cell's few seeds only, where a FAISS assignment
    compares it with every centroid. Any centroids and any assignment keep the selection
    exact; this only makes the groups tight. ``sublabel`` (N,) integers is scratch (group
    order).
    """
    cosine = metric_flag(cosine)
    d, most, subs = X.shape[1], _largest_group(offsets), _largest_group(sub_offsets)

    def make():
        return (np.empty((subs, d)), np.empty(subs, np.int64), np.empty(subs),
                np.empty(subs, np.int64), np.empty(most, perm.dtype),
                np.empty(most, mindist.dtype))

    run_tasks(_lloyd_cells_tasks, offsets.shape[0] - 1, X, inv_norm, cosine, perm, mindist,
              offsets, seed_pos, seed_offsets, sub_offsets, n_iter, cq, grid, rep, sub_counts,
              sublabel, scratch=(("lloyd_cells", d, most, subs, perm.dtype, mindist.dtype),
                                 make))
