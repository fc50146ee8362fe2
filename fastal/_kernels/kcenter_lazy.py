"""Kernels for exact greedy k-center by lazy evaluation (``fastal.diversity.kcenter``).

Plain arrays in, plain arrays out; the driver validates everything once.

The greedy pick is ``argmax_i D(i)``, ``D(i)`` the distance of row ``i`` to the centre set.
Any *upper* bound ``U(i) >= D(i)`` is cheap (the distance to any one centre), and it stays
an upper bound when centres are added. So:

- ``upper`` (N,) float32 holds, for every row outside the *band*, an upper bound of its
  ``D`` rounded up to float32 (``-1`` for centres, ``-2`` for rows moved into the band);
- the band holds the rows with ``upper >= theta``, in a binary heap keyed by a float64
  upper bound that is *exact* (``D`` itself) once the row has been compared with every
  centre (``done`` counts the picks it has seen; the labeled set is settled when it enters);
- a pick is the heap's top once that top is exact and at least ``theta``: every other band
  row has a smaller key (or an equal key and a higher row), and every row outside the band
  has ``D <= upper < theta``. A top that is not exact is compared with the picks it has not
  seen and sifted down; when the exact top falls below ``theta`` the band is widened.

Only rows whose bound can still reach the top are ever compared with a new centre: on data
where greedy k-center's covering radius falls slowly (high-dimensional embeddings, random
data) that is a few thousand rows instead of N per pick.

Distances are accumulated in float64 from ``x - c`` with the arithmetic of
``fastal._kernels.kcenter`` (``_sq_rows``), so the exact keys agree with the other kernels'.

Per-row kernels are serial ``*_tasks(..., rows_per_task, lo, hi)`` functions run on Python
threads by ``_parallel.run_tasks`` (no ``prange``: its lowering compiles 2-4x slower); each
task writes only its own rows.
"""

import numpy as np
from numba import njit

from ._math import FAST32, HELPER, KERNEL, bounds32
from ._parallel import run_tasks
from .kcenter_scan import _nearest_pick32, _row_sums, _sq32, fill_images, pick_images_rows
from .kcenter import (_FASTMATH, _ceil32, _certified_nearest, _scan_labeled,
                      _sq_rows, _to_score_units, metric_flag)

#: Rows per task of the per-row kernels (a Python constant passed in: tests shrink it).
ROWS_PER_TASK = 256


def _tasks(n_rows):
    return -(-n_rows // ROWS_PER_TASK)


@njit(inline="always")
def _before(key_a, row_a, key_b, row_b):
    """Heap order: larger key first, then lower row."""
    return key_a > key_b or (key_a == key_b and row_a < row_b)


@njit(inline="always")
def _sift_down(hkey, hrow, hdone, n, pos):
    key = hkey[pos]
    row = hrow[pos]
    done = hdone[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        right = child + 1
        if right < n and _before(hkey[right], hrow[right], hkey[child], hrow[child]):
            child = right
        if not _before(hkey[child], hrow[child], key, row):
            break
        hkey[pos] = hkey[child]
        hrow[pos] = hrow[child]
        hdone[pos] = hdone[child]
        pos = child
    hkey[pos] = key
    hrow[pos] = row
    hdone[pos] = done


@njit(inline="always")
def _sift_up(hkey, hrow, hdone, pos):
    key = hkey[pos]
    row = hrow[pos]
    done = hdone[pos]
    while pos > 0:
        parent = (pos - 1) // 2
        if not _before(key, row, hkey[parent], hrow[parent]):
            break
        hkey[pos] = hkey[parent]
        hrow[pos] = hrow[parent]
        hdone[pos] = hdone[parent]
        pos = parent
    hkey[pos] = key
    hrow[pos] = row
    hdone[pos] = done


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _exact_upper(X, start, inv_norm, cosine, L, lab_rows, lab_inv, best, inflate, upper):
    """``upper[r]``: the exact float64 distance of row ``start + r`` to labeled point
    ``best[r]`` (a position into ``lab_rows``), inflated by ``inflate`` (a relative margin
    over the float64 summation error, so that it bounds the same distance summed in any
    order) and rounded up to float32. Any labeled point gives an upper bound of the row's
    distance to the labeled set; FAISS's choice of ``best`` only makes it tight.

    Serial and without the GIL: the driver runs it on blocks of rows from several Python
    threads (beside single-threaded FAISS searches)."""
    for r in range(best.shape[0]):
        i = start + r
        scale = inv_norm[i] if cosine is not None else 1.0
        row = lab_rows[best[r]]
        sq = _sq_rows(X, i, scale, L, row, lab_inv[row] if cosine is not None else 1.0)
        upper[r] = _ceil32(_to_score_units(sq, cosine) * inflate)


def exact_upper(X, start, inv_norm, cosine, L, lab_rows, lab_inv, best, inflate, upper):
    """``_exact_upper`` with ``cosine`` as a bool or ``True``/``None`` (see ``metric_flag``)."""
    return _exact_upper(X, start, inv_norm, metric_flag(cosine), L, lab_rows, lab_inv, best,
                        inflate, upper)


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _assign_lists_tasks(L, lab_rows, lab_inv, cosine, probes, label, rows_per_task, lo, hi):
    """``assign_lists`` for points [lo * rows_per_task, hi * rows_per_task); returns 0."""
    n = lab_rows.shape[0]
    for t in range(lo * rows_per_task, min(n, hi * rows_per_task)):
        row = lab_rows[t]
        scale = lab_inv[row] if cosine is not None else 1.0
        best = np.inf
        best_p = 0
        for p in range(probes.shape[0]):
            other = lab_rows[probes[p]]
            sq = _sq_rows(L, row, scale, L, other, lab_inv[other] if cosine is not None else 1.0)
            if sq < best:
                best = sq
                best_p = p
        label[t] = best_p
    return 0


def assign_lists(L, lab_rows, lab_inv, cosine, probes, label):
    """Nearest probe (position into ``probes``) of every labeled point, ties to the lower."""
    cosine = metric_flag(cosine)
    run_tasks(_assign_lists_tasks, _tasks(lab_rows.shape[0]), L, lab_rows, lab_inv, cosine,
              probes, label, ROWS_PER_TASK)


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _distance_to_row_tasks(X, inv_norm, cosine, center, inflate, upper, rows_per_task, lo, hi):
    """``distance_to_row`` for rows [lo * rows_per_task, hi * rows_per_task); returns 0."""
    c_scale = inv_norm[center] if cosine is not None else 1.0
    for i in range(lo * rows_per_task, min(X.shape[0], hi * rows_per_task)):
        scale = inv_norm[i] if cosine is not None else 1.0
        sq = _sq_rows(X, i, scale, X, center, c_scale)
        upper[i] = _ceil32(_to_score_units(sq, cosine) * inflate)
    return 0


@njit(nogil=True, cache=True, **KERNEL)
def _upper_to_row32_tasks(X, center, rel, slack, upper, rows_per_task, lo, hi):
    """``distance_to_row`` of a float32 l2 pool for rows [lo * rows_per_task, hi *
    rows_per_task): the float32 sum ``s`` (``_row_sums``: vectorised, any order, written
    into ``upper`` first) bounds the exact squared distance by ``s (1 + rel) + slack``
    (``bounds32``: any summation order, and the float64 sum (any order) of the exact
    distances inside the margin); its square root, 2^-50 up for its own rounding, rounded
    up to float32. Returns 0."""
    first = lo * rows_per_task
    last = min(X.shape[0], hi * rows_per_task)
    if first >= last:
        return 0
    _row_sums(X, X[center], first, last - first, upper[first:last], 0)
    for i in range(first, last):
        sq = np.float64(upper[i]) * (1.0 + rel) + slack
        upper[i] = _ceil32(np.sqrt(sq) * (1.0 + 2.0**-50))
    return 0


def distance_to_row(X, inv_norm, cosine, center, inflate, upper):
    """``upper[i]``: an upper bound of row ``i``'s distance to pool row ``center`` (the
    first, random pick when there is no labeled set) as a float32: the exact distance,
    inflated and rounded up (see ``exact_upper``), or for float32 l2 pools a bound from a
    vectorised float32 sum (``_upper_to_row32_tasks``; on Fashion-MNIST PCA-50 the pass
    takes 0.7-0.8 ms instead of 1.8-1.9 ms, and only the band's rows, whose exact
    distances are computed, need more)."""
    cosine = metric_flag(cosine)
    if cosine is None and X.dtype == np.float32:
        run_tasks(_upper_to_row32_tasks, _tasks(X.shape[0]), X, center,
                  *bounds32(X.shape[1]), upper, ROWS_PER_TASK)
        return
    run_tasks(_distance_to_row_tasks, _tasks(X.shape[0]), X, inv_norm, cosine, center, inflate,
              upper, ROWS_PER_TASK)


@njit(cache=True, **KERNEL)
def _band_threshold(upper, bits, hist, want):
    """``band_threshold`` on ``bits``, ``upper`` viewed as uint32."""
    for b in range(hist.shape[0]):
        hist[b] = 0
    n_outside = 0
    for i in range(upper.shape[0]):
        if upper[i] >= 0.0:
            hist[bits[i] >> 16] += 1
            n_outside += 1
    count = 0
    for b in range(hist.shape[0] - 1, -1, -1):
        count += hist[b]
        if count >= want and b > 0:
            return b << 16, count, n_outside
    return 0, count, n_outside


def band_threshold(upper, want, hist):
    """``(theta, count, n_outside)``: the largest float32 ``theta`` on a bin edge of the
    rows outside the band (``upper >= 0``) counted by the top 16 bits of their float32 bound
    (monotone in the value for non-negative floats) with at least ``want`` of them at or
    above it (``theta = 0``, every row, when there are fewer), how many that is, and how
    many rows are outside. ``hist``: scratch of 2^16 int32."""
    # the bits are viewed here, not in the kernel: Numba's array.view and slice assignment
    # took half of a kernel's 0.4 s compile
    bits, count, n_outside = _band_threshold(upper, upper.view(np.uint32), hist, want)
    return float(np.uint32(bits).view(np.float32)), int(count), int(n_outside)


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _rows_labeled_mindist_tasks(X, rows, inv_norm, cosine, L, lab_rows, lab_inv, cand, cand_sq,
                                shift, labeled_norm_max, err_coef, key, n_fallback,
                                rows_per_task, lo, hi):
    """``rows_labeled_mindist`` for entries [lo * rows_per_task, hi * rows_per_task) of
    ``rows``; returns 0."""
    for r in range(lo * rows_per_task, min(cand.shape[0], hi * rows_per_task)):
        i = rows[r]
        scale = inv_norm[i] if cosine is not None else 1.0
        best, _, fell_back = _certified_nearest(X, i, scale, cosine,
                                                L, lab_rows, lab_inv, cand[r], cand_sq[r],
                                                shift, labeled_norm_max, err_coef)
        n_fallback[r] += fell_back
        dist = _to_score_units(best, cosine)
        if dist < key[r]:
            key[r] = dist
    return 0


def rows_labeled_mindist(X, rows, inv_norm, cosine, L, lab_rows, lab_inv, cand, cand_sq,
                         shift, labeled_norm_max, err_coef, key, n_fallback):
    """``key[r] = min(key[r], D)``, ``D`` the exact distance (score units) of row ``rows[r]``
    to one chunk of labeled points, certified from FAISS's candidates by the same
    ``_certified_nearest`` as ``fastal._kernels.kcenter.labeled_mindist`` (for a list of
    rows): the exact distance of each candidate is recomputed, and a row whose last
    candidate is not provably farther than the best (float32 error bound) is rescanned."""
    cosine = metric_flag(cosine)
    run_tasks(_rows_labeled_mindist_tasks, _tasks(cand.shape[0]), X, rows, inv_norm, cosine, L,
              lab_rows, lab_inv, cand, cand_sq, shift, labeled_norm_max, err_coef, key,
              n_fallback, ROWS_PER_TASK)


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _rows_labeled_exact_tasks(X, rows, inv_norm, cosine, L, lab_rows, lab_inv, key,
                              rows_per_task, lo, hi):
    """``rows_labeled_exact`` for entries [lo * rows_per_task, hi * rows_per_task) of
    ``rows``; returns 0."""
    for r in range(lo * rows_per_task, min(rows.shape[0], hi * rows_per_task)):
        i = rows[r]
        scale = inv_norm[i] if cosine is not None else 1.0
        best, _ = _scan_labeled(X, i, scale, cosine, L, lab_rows, lab_inv, np.inf, 0)
        dist = _to_score_units(best, cosine)
        if dist < key[r]:
            key[r] = dist
    return 0


def rows_labeled_exact(X, rows, inv_norm, cosine, L, lab_rows, lab_inv, key):
    """``key[r] = min(key[r], D)``: row ``rows[r]``'s exact distance to every labeled point,
    by direct scan (small labeled sets, where FAISS's set-up costs more)."""
    cosine = metric_flag(cosine)
    run_tasks(_rows_labeled_exact_tasks, _tasks(rows.shape[0]), X, rows, inv_norm, cosine, L,
              lab_rows, lab_inv, key, ROWS_PER_TASK)


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _rows_picked_mindist_tasks(X, rows, inv_norm, cosine, picked, n_picked, P, r_P, n_img,
                               rel, slack, key, rows_per_task, low, y, lo, hi):
    """``rows_picked_mindist`` for entries [lo * rows_per_task, hi * rows_per_task) of
    ``rows`` (scratch: ``low``, ``n_picked`` floats; ``y``, d float32); returns 0."""
    for r in range(lo * rows_per_task, min(rows.shape[0], hi * rows_per_task)):
        i = rows[r]
        scale = inv_norm[i] if cosine is not None else 1.0
        # (the images are made: only read here, by every thread)
        best = _nearest_pick32(X, i, scale, inv_norm, cosine, picked, 0, n_picked, rel,
                               slack, low, P, r_P, y, n_img)
        dist = _to_score_units(best, cosine)
        if dist < key[r]:
            key[r] = dist
    return 0


def rows_picked_mindist(X, rows, inv_norm, cosine, picked, n_picked, key, images):
    """``key[r] = min(key[r], D)`` over the first ``n_picked`` picks, exactly: float32
    passes bound the distances first, and only the picks that can be nearest get the
    float64 sum (``_nearest_pick32``; ``images`` from ``pick_images``, holding the picks'
    images as ``lazy_picks`` leaves them)."""
    P, r_P, _, n_img = images
    if P is not None and n_picked <= P.shape[0] and n_img[0] < n_picked:
        raise AssertionError("rows_picked_mindist: the picks' images are not made yet")
    d = X.shape[1]
    run_tasks(_rows_picked_mindist_tasks, _tasks(rows.shape[0]), X, rows, inv_norm,
              metric_flag(cosine), picked, n_picked, P, r_P, n_img, *bounds32(d), key,
              ROWS_PER_TASK, scratch=(("rows_picked", n_picked, d),
                                      lambda: (np.empty(n_picked), np.empty(d, np.float32))))


@njit(inline="always")
def _push(hkey, hrow, hdone, n_heap, keys, rows, t):
    """Push ``rows`` with their ``keys`` (compared with ``t`` picks) onto the heap (it has
    room); returns the new heap size."""
    for r in range(rows.shape[0]):
        hkey[n_heap] = keys[r]
        hrow[n_heap] = rows[r]
        hdone[n_heap] = t
        _sift_up(hkey, hrow, hdone, n_heap)
        n_heap += 1
    return n_heap


@njit(inline="always", fastmath=_FASTMATH)
def _top_distance(X, inv_norm, cosine, i, picked, done, t, rel, slack, low, P, r_P, y, n_img):
    """Row ``i``'s exact distance (score units) to the picks ``done`` to ``t`` it has not
    seen (``_nearest_pick32``)."""
    scale = inv_norm[i] if cosine is not None else 1.0
    best = _nearest_pick32(X, i, scale, inv_norm, cosine, picked, done, t, rel, slack, low, P,
                           r_P, y, n_img)
    return _to_score_units(best, cosine)


@njit(cache=True, fastmath=_FASTMATH, **KERNEL)
def _lazy_picks(X, inv_norm, cosine, P, r_P, y, n_img, rel, slack, keys, rows, hkey, hrow,
                hdone, n_heap, theta, w, picked, scores, t, k, evaluated, low):
    """Greedy picks ``t, t + 1, ...`` up to ``k`` from the band's heap (see the module
    docstring), after pushing the band's new rows ``rows`` with their keys ``keys`` (their
    exact scores given the labeled set and the first ``t`` picks; the heap has room).
    The score of row i is ``D(i)``, or ``D(i) * w[i]`` (float64) when ``w`` is not None:
    ``min(key, dist * w[i])`` is ``min(D, dist) * w[i]`` because rounding is monotone, so a
    key lowered with a new distance stays the exact score.
    Writes ``picked[t]`` and ``scores[t]`` (the exact score); ``evaluated[0]`` counts
    the row-to-pick distances computed, ``evaluated[1]`` the *knock-downs*: tops
    whose key was at least ``theta`` and fell below it when compared with newer picks (on
    clustered data, a pick knocks down its whole cluster; on unstructured data, hardly a
    row, which is what keeps the band small).

    A top's distances to the picks it has not seen: float32 passes bound them first, and
    only the picks that can be the nearest get their float64 sum (``_nearest_pick32``);
    float32 l2 pools read the rows (``P`` None), other pools the picks' float32 images,
    kept in ``P`` and ``r_P`` and made here for picks ``n_img[0]`` on, with ``y`` scratch
    for the top's own image (``pick_images``; past the picks ``P`` holds, every pick's
    float64 sum).

    Returns ``(t, n_heap)``: ``t == k`` when done; otherwise the heap's exact top is below
    ``theta`` (or the heap is empty) and the band must be widened before the next pick.
    ``low``: scratch of ``k`` floats (made by the caller: an allocation in a kernel costs
    0.1 s of compilation in every fresh process).
    """
    n_heap = _push(hkey, hrow, hdone, n_heap, keys, rows, t)
    while t < k:
        if n_heap == 0:
            break
        done = hdone[0]
        if done < t:
            # compare the top with the picks it has not seen, then let it sink
            i = hrow[0]
            dist = _top_distance(X, inv_norm, cosine, i, picked, done, t, rel, slack, low, P,
                                 r_P, y, n_img)
            evaluated[0] += t - done
            if w is not None:
                dist = dist * w[i]
            if dist < hkey[0]:
                if hkey[0] >= theta > dist:
                    evaluated[1] += 1
                hkey[0] = dist
            hdone[0] = t
        else:
            if hkey[0] < theta:
                break
            picked[t] = hrow[0]
            scores[t] = hkey[0]
            t += 1
            n_heap -= 1
            if n_heap == 0:
                continue
            hkey[0] = hkey[n_heap]
            hrow[0] = hrow[n_heap]
            hdone[0] = hdone[n_heap]
        # the top was updated or replaced: let it sink (one inlined sift, not two)
        _sift_down(hkey, hrow, hdone, n_heap, 0)
    if P is not None:  # every pick's image, for the band's next rows (rows_picked_mindist)
        fill_images(X, inv_norm, cosine, picked, min(t, P.shape[0]), P, r_P, n_img)
    return t, n_heap


@njit(cache=True, fastmath=_FASTMATH, **KERNEL)
def _lazy_radii(X, inv_norm, cosine, P, r_P, y, n_img, rel, slack, keys, rows, hkey, hrow,
                hdone, n_heap, theta, picked, radii, t, k, evaluated, low):
    """The covering radius after picks ``t, t + 1, ...`` up to ``k`` of a pick list made
    already (weighted picks, whose scores are not the largest distance): ``radii[t - 1]``
    the largest ``D`` given the labeled set and ``picked[:t]``. The same lazy rule as
    ``_lazy_picks`` on a heap keyed by ``D``, after pushing ``rows`` with their exact
    distances ``keys`` to the labeled set and the first ``t`` picks: a top that has seen
    the first ``t`` picks and is at least ``theta`` is the largest ``D``; it stays on the
    heap (its ``D`` can only fall with later picks; a picked row's falls to 0).

    Returns ``(t, n_heap)``: ``t == k + 1`` when done; otherwise the exact top is below
    ``theta`` (or the heap is empty) and the band must be widened. ``evaluated[0]`` counts
    the row-to-pick distances computed. ``low``: scratch of ``k`` floats."""
    n_heap = _push(hkey, hrow, hdone, n_heap, keys, rows, t)
    while t <= k:
        if n_heap == 0:
            break
        done = hdone[0]
        if done < t:
            dist = _top_distance(X, inv_norm, cosine, hrow[0], picked, done, t, rel, slack,
                                 low, P, r_P, y, n_img)
            evaluated[0] += t - done
            if dist < hkey[0]:
                hkey[0] = dist
            hdone[0] = t
            _sift_down(hkey, hrow, hdone, n_heap, 0)
        else:
            if hkey[0] < theta:
                break
            radii[t - 1] = hkey[0]
            t += 1
    return t, n_heap


def lazy_radii(X, inv_norm, cosine, images, keys, rows, hkey, hrow, hdone, n_heap, theta,
               picked, radii, t, k, evaluated):
    """``_lazy_radii`` with ``cosine`` as a bool or ``True``/``None`` (see ``metric_flag``)
    and ``images`` from ``pick_images`` as ``lazy_picks`` left them (every pick's)."""
    return _lazy_radii(X, inv_norm, metric_flag(cosine), *images, *bounds32(X.shape[1]), keys,
                       rows, hkey, hrow, hdone, n_heap, theta, picked, radii, t, k, evaluated,
                       np.empty(k))


def pick_images(X, cosine, k):
    """The picks' float32 images for ``lazy_picks``: ``(P, r_P, y, n_img)``, up to k x d
    float32 (``PICK_IMAGE_BYTES``), their radii, a row's scratch and the count made; all
    None for float32 l2 pools (their passes read the rows themselves)."""
    if X.dtype == np.float32 and not cosine:
        return None, None, None, None
    d = X.shape[1]
    rows = pick_images_rows(k, d)
    return (np.empty((rows, d), np.float32), np.empty(rows), np.empty(d, np.float32),
            np.zeros(1, np.int64))


def lazy_picks(X, inv_norm, cosine, images, keys, rows, hkey, hrow, hdone, n_heap, theta,
               picked, scores, t, k, evaluated, w=None):
    """``_lazy_picks`` with ``cosine`` as a bool or ``True``/``None`` (see ``metric_flag``)
    and ``images`` from ``pick_images``; ``w``: the weights or None (unweighted: the kernel
    then compiles no weighted code)."""
    return _lazy_picks(X, inv_norm, metric_flag(cosine), *images, *bounds32(X.shape[1]), keys,
                       rows, hkey, hrow, hdone, n_heap, theta, w, picked, scores, t, k,
                       evaluated, np.empty(k))


@njit(nogil=True, fastmath=FAST32, **HELPER)
def _candidate32(x, probes, probe_pts, members, list_offsets, member_pts):
    """The nearest (float32, any summation order) of the probes and of the list of the
    nearest probe to the shifted row ``x``: a position into the labeled set.

    A function of its own, not inlined by Numba: its fast-math flags (reassociation,
    contraction) must not reach the caller's exact float64 distance."""
    near = 0
    best_sq = _sq32(x, probe_pts, 0)
    for p in range(1, probes.shape[0]):
        sq = _sq32(x, probe_pts, p)
        if sq < best_sq:
            best_sq = sq
            near = p
    best = probes[near]
    for q in range(list_offsets[near], list_offsets[near + 1]):
        sq = _sq32(x, member_pts, q)
        if sq < best_sq:
            best_sq = sq
            best = members[q]
    return best


@njit(nogil=True, cache=True, fastmath=_FASTMATH, **KERNEL)
def _probe_upper_tasks(X, inv_norm, cosine, shift, L, lab_rows, lab_inv, probes, probe_pts,
                       members, list_offsets, member_pts, inflate, upper, rows_per_task, x,
                       lo, hi):
    """``probe_upper`` for rows [lo * rows_per_task, hi * rows_per_task) (``x``: scratch of
    d float32); returns 0."""
    d = X.shape[1]
    for i in range(lo * rows_per_task, min(X.shape[0], hi * rows_per_task)):
        scale = inv_norm[i] if cosine is not None else 1.0
        for j in range(d):
            x[j] = np.float32(X[i, j] * scale - shift[j])
        row = lab_rows[_candidate32(x, probes, probe_pts, members, list_offsets, member_pts)]
        sq = _sq_rows(X, i, scale, L, row, lab_inv[row] if cosine is not None else 1.0)
        upper[i] = _ceil32(_to_score_units(sq, cosine) * inflate)
    return 0


def probe_upper(X, inv_norm, cosine, shift, L, lab_rows, lab_inv, probes, probe_pts, members,
                list_offsets, member_pts, inflate, upper):
    """``upper[i]``: an upper bound of row ``i``'s distance to the labeled set, like
    ``exact_upper``, with the candidate chosen here in float32: the nearest of the probes
    (positions ``probes`` into ``lab_rows``, their points in ``probe_pts``) and of the list
    of the nearest probe (positions ``members[list_offsets[p]:list_offsets[p + 1]]``, their
    points the same rows of ``member_pts``). Points float32, in the metric's space (unit
    rows for cosine) minus ``shift``, rows shifted the same way (accurate float32 distances
    for data far from the origin).

    Any candidate gives a valid bound (its exact float64 distance, inflated and rounded up),
    so the float32 choice, in any summation order, only makes it tight."""
    cosine = metric_flag(cosine)
    run_tasks(_probe_upper_tasks, _tasks(X.shape[0]), X, inv_norm, cosine, shift, L, lab_rows,
              lab_inv, probes, probe_pts, members, list_offsets, member_pts, inflate, upper,
              ROWS_PER_TASK,
              scratch=(("probe_upper", X.shape[1]), lambda: (np.empty(X.shape[1], np.float32),)))
